/* test_config.c: unit tests of common/config.c (SPEC section 3): defaults,
 * every value type, every error message with its FILE:LINE, cross-key rules,
 * the secret and key files, and the example config etc/audiogwd.conf. */
#include "common/config.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base64 of the bytes 0..31, with and without padding */
#define PK64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define PK64_NOPAD "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
/* appended to texts that must otherwise be valid: a token key */
#define AUTH "[auth]\ned25519_public_key = " PK64 "\n"

static cfg C;
static cfg_errors E;

static int load(const char *text)
{
	cfg_defaults(&C);
	return cfg_load_buffer(&C, "t.conf", text, &E);
}

static void dump_errors(void)
{
	for (int i = 0; i < E.n && i < CFG_MAX_ERRORS; i++)
		fprintf(stderr, "  %s\n", E.msg[i]);
}

#define OK(text) do { \
	if (load(text) != 0) dump_errors(); \
	ck_assert_int_eq(E.n, 0); \
} while (0)

/* exactly one error, with this text */
#define ERR1(text, want) do { \
	if (load(text) != 1) dump_errors(); \
	ck_assert_int_eq(E.n, 1); \
	ck_assert_str_eq(E.msg[0], want); \
} while (0)

/* A temp file in /tmp holding len bytes of s; the caller unlinks and frees. */
static char *temp_file(const char *s, size_t len)
{
	char *path = strdup("/tmp/agw-test-cfg-XXXXXX");
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, s, len), (ssize_t)len);
	close(fd);
	return path;
}

static void drop_file(char *path)
{
	unlink(path);
	free(path);
}

static int port_of(const cfg_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static int expected_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* ---- defaults and the example ---- */

START_TEST(test_defaults)
{
	cfg_defaults(&C);
	ck_assert_int_eq(C.n_listen, 1);
	ck_assert_str_eq(C.listen[0].text, "0.0.0.0:8080");
	ck_assert_int_eq(C.listen[0].ss.ss_family, AF_INET);
	ck_assert_int_eq(C.listen[0].len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(port_of(&C.listen[0]), 8080);
	ck_assert_str_eq(C.path, "/v1/audio");
	ck_assert_int_eq(C.workers, expected_workers());
	ck_assert_int_eq(C.max_connections, 200000);
	ck_assert_int_eq(C.resume_window_ms, 30000);
	ck_assert_str_eq(C.tls_cert, "");
	ck_assert_str_eq(C.tls_key, "");
	ck_assert_str_eq(C.user, "");
	ck_assert_str_eq(C.run_dir, "./run");
	ck_assert_str_eq(C.hs256_secret_file, "");
	ck_assert_uint_eq(C.hs256_secret_len, 0);
	ck_assert_int_eq(C.has_ed25519, 0);
	ck_assert_int_eq(C.leeway_ms, 30000);
	ck_assert_int_eq(C.max_frame_bytes, 1500);
	ck_assert_int_eq(C.frames_per_second, 100);
	ck_assert_int_eq(C.frames_burst, 200);
	ck_assert_int_eq(C.max_conns_per_ip, 1000);
	ck_assert_int_eq(C.max_conns_per_user, 3);
	ck_assert_int_eq(C.handshakes_per_second, 0);
	ck_assert_int_eq(C.outbound_queue_frames, 64);
	ck_assert_int_eq(C.send_buffer, 65536);
	ck_assert_int_eq(C.slow_consumer_timeout_ms, 5000);
	ck_assert_int_eq(C.write_coalesce_ms, CFG_AUTO);
	ck_assert_int_eq(C.heartbeat_interval_ms, 20000);
	ck_assert_int_eq(C.heartbeat_timeout_ms, 45000);
	ck_assert_int_eq(C.drain_timeout_ms, 30000);
	ck_assert_int_eq(C.reconnect_spread_ms, 10000);
	ck_assert_str_eq(C.admin_listen, "127.0.0.1:9090");
	ck_assert_str_eq(C.api_key_file, "");
	ck_assert_str_eq(C.api_key, "");
	ck_assert_str_eq(C.control_socket, "ipc://./run/ctl.ipc");
	ck_assert_str_eq(C.audit_database, "./run/audit.db");
	ck_assert_int_eq(C.audit_retention_ms, 30LL * 24 * 3600 * 1000);
	ck_assert_int_eq(C.log_level, LOG_INFO);
	ck_assert_str_eq(C.log_file, "");
}
END_TEST

START_TEST(test_minimal_valid)
{
	OK(AUTH);
	ck_assert_str_eq(C.file, "t.conf");
	ck_assert_int_eq(C.has_ed25519, 1);
	for (int i = 0; i < 32; i++)
		ck_assert_int_eq(C.ed25519_pk[i], i);
	ck_assert_int_eq(C.n_listen, 1);
	ck_assert_str_eq(C.listen[0].text, "0.0.0.0:8080");
	/* the defaults alone are not enough: no token key */
	ERR1("", "t.conf: no token key: set auth.hs256_secret_file or auth.ed25519_public_key");
}
END_TEST

/* The tests may run in the build, the tests or the source directory. */
static void chdir_to_repo_root(void)
{
	static const char *const up[] = { ".", "..", "../..", "../../.." };
	const char *root = getenv("MESON_SOURCE_ROOT");

	if (root && *root && chdir(root) == 0 && access("etc/audiogwd.conf", R_OK) == 0)
		return;
	for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
		char probe[64];
		snprintf(probe, sizeof probe, "%s/etc/audiogwd.conf", up[i]);
		if (access(probe, R_OK) == 0) {
			ck_assert_int_eq(chdir(up[i]), 0);
			return;
		}
	}
	ck_abort_msg("etc/audiogwd.conf not found from the working directory");
}

START_TEST(test_example_config)
{
	cfg d;

	chdir_to_repo_root();
	cfg_defaults(&C);
	if (cfg_load_file(&C, "etc/audiogwd.conf", &E) != 0)
		dump_errors();
	ck_assert_int_eq(E.n, 0);
	ck_assert_str_eq(C.file, "etc/audiogwd.conf");
	ck_assert_str_eq(C.hs256_secret_file, "etc/dev-secret.key");
	ck_assert_uint_ge(C.hs256_secret_len, 32);
	ck_assert_str_eq(C.admin_listen, "127.0.0.1:9090");
	ck_assert_str_eq(C.run_dir, "./run");
	/* every other value is the documented default */
	cfg_defaults(&d);
	ck_assert_int_eq(C.n_listen, d.n_listen);
	ck_assert_str_eq(C.listen[0].text, d.listen[0].text);
	ck_assert_str_eq(C.path, d.path);
	ck_assert_int_eq(C.workers, d.workers);
	ck_assert_int_eq(C.max_connections, d.max_connections);
	ck_assert_int_eq(C.resume_window_ms, d.resume_window_ms);
	ck_assert_int_eq(C.leeway_ms, d.leeway_ms);
	ck_assert_int_eq(C.max_frame_bytes, d.max_frame_bytes);
	ck_assert_int_eq(C.frames_per_second, d.frames_per_second);
	ck_assert_int_eq(C.frames_burst, d.frames_burst);
	ck_assert_int_eq(C.max_conns_per_ip, d.max_conns_per_ip);
	ck_assert_int_eq(C.max_conns_per_user, d.max_conns_per_user);
	ck_assert_int_eq(C.handshakes_per_second, d.handshakes_per_second);
	ck_assert_int_eq(C.outbound_queue_frames, d.outbound_queue_frames);
	ck_assert_int_eq(C.send_buffer, d.send_buffer);
	ck_assert_int_eq(C.slow_consumer_timeout_ms, d.slow_consumer_timeout_ms);
	ck_assert_int_eq(C.heartbeat_interval_ms, d.heartbeat_interval_ms);
	ck_assert_int_eq(C.heartbeat_timeout_ms, d.heartbeat_timeout_ms);
	ck_assert_int_eq(C.drain_timeout_ms, d.drain_timeout_ms);
	ck_assert_int_eq(C.reconnect_spread_ms, d.reconnect_spread_ms);
	ck_assert_str_eq(C.control_socket, d.control_socket);
	ck_assert_str_eq(C.audit_database, d.audit_database);
	ck_assert_str_eq(C.downstream_allow, d.downstream_allow);
	ck_assert_str_eq(C.downstream_tap, d.downstream_tap);
	ck_assert_str_eq(C.record_dir, "./run/recordings");
	ck_assert_int_eq(C.audit_retention_ms, d.audit_retention_ms);
	ck_assert_int_eq(C.log_level, d.log_level);
	ck_assert_str_eq(C.log_file, d.log_file);
	ck_assert_int_eq(C.has_ed25519, 0);
}
END_TEST

/* ---- integers ---- */

START_TEST(test_int)
{
	char err[160];
	int64_t v = 0;

	OK("[server]\nmax_connections = 5000\n" AUTH);
	ck_assert_int_eq(C.max_connections, 5000);
	OK("[server]\nmax_connections = 7 ; an inline comment\n" AUTH);
	ck_assert_int_eq(C.max_connections, 7);
	OK("[limits]\nhandshakes_per_second = 0\nmax_conns_per_user = 1\n" AUTH);
	ck_assert_int_eq(C.max_conns_per_user, 1);

	ERR1("[server]\nmax_connections = abc\n" AUTH,
		"t.conf:2: bad number \"abc\" for max_connections");
	ERR1("[server]\nmax_connections = 12abc\n" AUTH,
		"t.conf:2: bad number \"12abc\" for max_connections");
	ERR1("[server]\nmax_connections =\n" AUTH,
		"t.conf:2: bad number \"\" for max_connections");
	ERR1("[server]\nmax_connections = 0\n" AUTH,
		"t.conf:2: value 0 out of range 1..1000000 for max_connections");
	ERR1("[server]\nmax_connections = 1000001\n" AUTH,
		"t.conf:2: value 1000001 out of range 1..1000000 for max_connections");
	ERR1("[server]\nmax_connections = -3\n" AUTH,
		"t.conf:2: value -3 out of range 1..1000000 for max_connections");
	ERR1("[server]\nmax_connections = 99999999999999999999\n" AUTH,
		"t.conf:2: bad number \"99999999999999999999\" for max_connections: too large");
	ERR1("[limits]\nframes_burst = 0\n" AUTH,
		"t.conf:2: value 0 out of range 1..1000000 for frames_burst");

	ck_assert_int_eq(cfg_parse_int("42", 0, 100, &v, err, sizeof err), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(cfg_parse_int("-5", 0, 100, &v, err, sizeof err), -1);
	ck_assert_str_eq(err, "value -5 out of range 0..100");
	ck_assert_int_eq(cfg_parse_int("x", 0, 100, &v, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad number \"x\"");
	ck_assert_int_eq(v, 42);
}
END_TEST

/* ---- sizes ---- */

START_TEST(test_size)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "64k", 65536 }, { "0", 0 }, { "1m", 1048576 }, { "1500", 1500 },
		{ "2K", 2048 }, { "3M", 3 * 1048576 }, { "1g", 1073741824 }, { "2G", 2147483648LL },
	};
	static const struct { const char *s, *err; } bad[] = {
		{ "5q", "bad size \"5q\": unknown unit (k, m, g)" },
		{ "64kb", "bad size \"64kb\": unknown unit (k, m, g)" },
		{ "-1", "bad size \"-1\": must not be negative" },
		{ "k", "bad size \"k\": expected a number of bytes with an optional k, m or g suffix" },
		{ "", "bad size \"\": expected a number of bytes with an optional k, m or g suffix" },
		{ "9999999999999g", "bad size \"9999999999999g\": too large" },
	};
	char err[160];
	int64_t v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_msg(cfg_parse_size(good[i].s, &v, err, sizeof err) == 0, "%s: %s", good[i].s, err);
		ck_assert_int_eq(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(cfg_parse_size(bad[i].s, &v, err, sizeof err), -1);
		ck_assert_str_eq(err, bad[i].err);
	}

	OK("[limits]\nsend_buffer = 1m\nmax_frame_bytes = 2k\n" AUTH);
	ck_assert_int_eq(C.send_buffer, 1048576);
	ck_assert_int_eq(C.max_frame_bytes, 2048);
	OK("[limits]\nsend_buffer = 0\n" AUTH);
	ck_assert_int_eq(C.send_buffer, 0);
	ERR1("[limits]\nsend_buffer = 64x\n" AUTH,
		"t.conf:2: bad size \"64x\" for send_buffer: unknown unit (k, m, g)");
	ERR1("[limits]\nmax_frame_bytes = 1m\n" AUTH,
		"t.conf:2: value 1m out of range 12..64k for max_frame_bytes");
	ERR1("[limits]\nmax_frame_bytes = 11\n" AUTH,
		"t.conf:2: value 11 out of range 12..64k for max_frame_bytes");
}
END_TEST

/* ---- durations ---- */

START_TEST(test_duration_parse)
{
	static const struct { const char *s; int64_t ms; } good[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "2m", 120000 }, { "1h", 3600000 },
		{ "30d", 30LL * 86400000 }, { "0s", 0 }, { "1m30s", 90000 }, { "1h1ms", 3600001 },
	};
	static const struct { const char *s, *err; } bad[] = {
		{ "5x", "bad duration \"5x\": unknown unit (ms, s, m, h, d)" },
		{ "5 s", "bad duration \"5 s\": unknown unit (ms, s, m, h, d)" },
		{ "-1s", "bad duration \"-1s\": must not be negative" },
		{ "s", "bad duration \"s\": expected a number followed by a unit (ms, s, m, h, d)" },
		{ "", "bad duration \"\": expected a number followed by a unit (ms, s, m, h, d)" },
		{ "30", "bad duration \"30\": missing unit (ms, s, m, h, d)" },
		{ "1m30", "bad duration \"1m30\": missing unit (ms, s, m, h, d)" },
		{ "1.5s", "bad duration \"1.5s\": no fractions, use a smaller unit (1500ms)" },
		{ "99999999999999999d", "bad duration \"99999999999999999d\": too large" },
	};
	char err[160];
	int64_t v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_msg(cfg_parse_duration(good[i].s, &v, err, sizeof err) == 0, "%s: %s",
			good[i].s, err);
		ck_assert_int_eq(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(cfg_parse_duration(bad[i].s, &v, err, sizeof err), -1);
		ck_assert_str_eq(err, bad[i].err);
	}
}
END_TEST

START_TEST(test_duration_config)
{
	OK("[server]\nresume_window = 2m\n[auth]\nleeway = 500ms\ned25519_public_key = " PK64 "\n"
	   "[limits]\nslow_consumer_timeout = 1h\nwrite_coalesce = 20ms\n[audit]\nretention = 30d\n");
	ck_assert_int_eq(C.resume_window_ms, 120000);
	ck_assert_int_eq(C.write_coalesce_ms, 20);
	ck_assert_int_eq(C.leeway_ms, 500);
	ck_assert_int_eq(C.slow_consumer_timeout_ms, 3600000);
	ck_assert_int_eq(C.audit_retention_ms, 30LL * 86400000);
	ERR1("[auth]\nleeway = 30\ned25519_public_key = " PK64 "\n",
		"t.conf:2: bad duration \"30\" for leeway: missing unit (ms, s, m, h, d)");
	ERR1(AUTH "[server]\nresume_window = 5x\n",
		"t.conf:4: bad duration \"5x\" for resume_window: unknown unit (ms, s, m, h, d)");
	ERR1("[heartbeat]\ninterval = 50ms\n" AUTH,
		"t.conf:2: value 50ms out of range 100ms..1h for interval");
	ERR1("[audit]\nretention = 0s\n" AUTH,
		"t.conf:2: value 0s out of range 1s..3650d for retention");
	ERR1("[limits]\nwrite_coalesce = 1s\n" AUTH,
		"t.conf:2: value 1s out of range 0ms..100ms for write_coalesce");
	ERR1("[limits]\nwrite_coalesce = sometimes\n" AUTH,
		"t.conf:2: bad duration \"sometimes\" for write_coalesce: expected auto or a "
		"number followed by a unit (ms, s, m, h, d)");
	ERR1("[limits]\nwrite_coalesce = 5\n" AUTH,
		"t.conf:2: bad duration \"5\" for write_coalesce: expected auto or a "
		"number followed by a unit (ms, s, m, h, d)");
	ERR1("[server]\nresume_window = auto\n" AUTH,
		"t.conf:2: bad duration \"auto\" for resume_window: expected a number followed by a unit (ms, s, m, h, d)");
	OK("[limits]\nwrite_coalesce = auto\n" AUTH);
	ck_assert_int_eq(C.write_coalesce_ms, CFG_AUTO);
	OK("[limits]\nwrite_coalesce = 0ms\n" AUTH);
	ck_assert_int_eq(C.write_coalesce_ms, 0);
}
END_TEST

/* ---- addresses ---- */

START_TEST(test_listen_repeat)
{
	OK("[server]\nlisten = 127.0.0.1:8081\nlisten = [::]:8080\nlisten = [::1]:9000\n" AUTH);
	ck_assert_int_eq(C.n_listen, 3);  /* the default 0.0.0.0:8080 was replaced */
	ck_assert_str_eq(C.listen[0].text, "127.0.0.1:8081");
	ck_assert_int_eq(C.listen[0].ss.ss_family, AF_INET);
	ck_assert_int_eq(port_of(&C.listen[0]), 8081);
	ck_assert_str_eq(C.listen[1].text, "[::]:8080");
	ck_assert_int_eq(C.listen[1].ss.ss_family, AF_INET6);
	ck_assert_int_eq(C.listen[1].len, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(port_of(&C.listen[1]), 8080);
	ck_assert(IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&C.listen[1].ss)->sin6_addr));
	ck_assert_str_eq(C.listen[2].text, "[::1]:9000");
	ck_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&C.listen[2].ss)->sin6_addr));

	/* the default may be restated without a duplicate error */
	OK("[server]\nlisten = 0.0.0.0:8080\n" AUTH);
	ck_assert_int_eq(C.n_listen, 1);

	ERR1("[server]\nlisten = 127.0.0.1:80\nlisten = 127.0.0.1:80\n" AUTH,
		"t.conf:3: duplicate listen address \"127.0.0.1:80\"");
	ck_assert_int_eq(C.n_listen, 1);
	ERR1("[server]\nlisten = example.com:80\n" AUTH,
		"t.conf:2: bad address \"example.com:80\" for listen: not an IPv4 address (host names are not allowed)");
}
END_TEST

START_TEST(test_listen_too_many)
{
	char text[2048];
	size_t n = 0;

	n += (size_t)snprintf(text + n, sizeof text - n, "[server]\n");
	for (int i = 0; i < CFG_MAX_LISTEN + 1; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "listen = 127.0.0.1:%d\n", 8000 + i);
	snprintf(text + n, sizeof text - n, AUTH);
	ERR1(text, "t.conf:18: too many listen addresses (at most 16)");
	ck_assert_int_eq(C.n_listen, CFG_MAX_LISTEN);
}
END_TEST

START_TEST(test_addr_parse)
{
	static const struct { const char *s, *err; } bad[] = {
		{ "localhost:80", "bad address \"localhost:80\": not an IPv4 address (host names are not allowed)" },
		{ "1.2.3:80", "bad address \"1.2.3:80\": not an IPv4 address (host names are not allowed)" },
		{ "1.2.3.4", "bad address \"1.2.3.4\": missing port, expected IPV4:PORT" },
		{ "1.2.3.4:0", "bad address \"1.2.3.4:0\": bad port \"0\" (1-65535)" },
		{ "1.2.3.4:65536", "bad address \"1.2.3.4:65536\": bad port \"65536\" (1-65535)" },
		{ "1.2.3.4:http", "bad address \"1.2.3.4:http\": bad port \"http\" (1-65535)" },
		{ "1.2.3.4:", "bad address \"1.2.3.4:\": bad port \"\" (1-65535)" },
		{ "::1:80", "bad address \"::1:80\": an IPv6 address needs brackets, e.g. [::]:8080" },
		{ "[::1]", "bad address \"[::1]\": missing port, expected [IPV6]:PORT" },
		{ "[::1:80", "bad address \"[::1:80\": missing ']' after the IPv6 address" },
		{ "[zz::1]:80", "bad address \"[zz::1]:80\": not an IPv6 address" },
		{ "[1.2.3.4]:80", "bad address \"[1.2.3.4]:80\": not an IPv6 address" },
		{ "", "bad address \"\": expected IPV4:PORT or [IPV6]:PORT" },
	};
	char err[160];
	cfg_addr a;

	ck_assert_int_eq(cfg_parse_addr("1.2.3.4:80", &a, err, sizeof err), 0);
	ck_assert_int_eq(a.ss.ss_family, AF_INET);
	ck_assert_int_eq(a.len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(port_of(&a), 80);
	ck_assert_uint_eq(ntohl(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr), 0x01020304);
	ck_assert_str_eq(a.text, "1.2.3.4:80");
	ck_assert_int_eq(cfg_parse_addr("[2001:db8::7]:65535", &a, err, sizeof err), 0);
	ck_assert_int_eq(a.ss.ss_family, AF_INET6);
	ck_assert_int_eq(port_of(&a), 65535);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(cfg_parse_addr(bad[i].s, &a, err, sizeof err), -1);
		ck_assert_str_eq(err, bad[i].err);
	}
}
END_TEST

START_TEST(test_admin_listen)
{
	OK("[admin]\nlisten =\n" AUTH);
	ck_assert_str_eq(C.admin_listen, "");
	OK("[admin]\nlisten = [::1]:9091\n" AUTH);
	ck_assert_str_eq(C.admin_listen, "[::1]:9091");
	ck_assert_int_eq(C.n_listen, 1);  /* server.listen untouched */
	ERR1("[admin]\nlisten = nohost\n" AUTH,
		"t.conf:2: bad address \"nohost\" for listen: missing port, expected IPV4:PORT");
}
END_TEST

/* ---- workers, log level, strings ---- */

START_TEST(test_workers)
{
	OK("[server]\nworkers = auto\n" AUTH);
	ck_assert_int_eq(C.workers, expected_workers());
	OK("[server]\nworkers = 4\n" AUTH);
	ck_assert_int_eq(C.workers, 4);
	OK("[server]\nworkers = 256\n" AUTH);
	ck_assert_int_eq(C.workers, 256);
	ERR1("[server]\nworkers = 0\n" AUTH, "t.conf:2: value 0 out of range 1..256 for workers");
	ERR1("[server]\nworkers = 257\n" AUTH, "t.conf:2: value 257 out of range 1..256 for workers");
	ERR1("[server]\nworkers = many\n" AUTH,
		"t.conf:2: bad number \"many\" for workers: expected a number or auto");
}
END_TEST

START_TEST(test_log_level)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	static const int levels[] = { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
	char text[256];

	for (int i = 0; i < 4; i++) {
		snprintf(text, sizeof text, "[log]\nlevel = %s\nfile = /tmp/x.log\n" AUTH, names[i]);
		OK(text);
		ck_assert_int_eq(C.log_level, levels[i]);
		ck_assert_str_eq(C.log_file, "/tmp/x.log");
	}
	ERR1("[log]\nlevel = verbose\n" AUTH,
		"t.conf:2: bad log level \"verbose\" for level: expected debug, info, warn or error");
}
END_TEST

START_TEST(test_strings)
{
	OK("[server]\npath = /ws\nuser = nobody\nrun_dir = /var/run/agw\n"
	   "[admin]\ncontrol_socket = tcp://127.0.0.1:5555\n[audit]\ndatabase = /tmp/a.db\n" AUTH);
	ck_assert_str_eq(C.path, "/ws");
	ck_assert_str_eq(C.user, "nobody");
	ck_assert_str_eq(C.run_dir, "/var/run/agw");
	ck_assert_str_eq(C.control_socket, "tcp://127.0.0.1:5555");
	ck_assert_str_eq(C.audit_database, "/tmp/a.db");
	OK("[admin]\ncontrol_socket = inproc://ctl\n" AUTH);
	ERR1("[server]\npath = ws\n" AUTH, "t.conf:2: bad path \"ws\" for path: must start with '/'");
	ERR1("[server]\npath = /a?b\n" AUTH,
		"t.conf:2: bad path \"/a?b\" for path: must not contain '?', '#' or blanks");
	ERR1("[admin]\ncontrol_socket = /tmp/ctl\n" AUTH,
		"t.conf:2: bad URL \"/tmp/ctl\" for control_socket: must start with ipc://, tcp:// or inproc://");
	ERR1("[admin]\ncontrol_socket = ipc://\n" AUTH,
		"t.conf:2: bad URL \"ipc://\" for control_socket: nothing after the scheme");
	ERR1("[server]\nrun_dir =\n" AUTH, "t.conf:2: bad value \"\" for run_dir: must not be empty");
	ERR1("[audit]\ndatabase =\n" AUTH, "t.conf:2: bad value \"\" for database: must not be empty");
	ERR1("[server]\nuser = " "0123456789012345678901234567890123456789012345678901234567890123" "\n" AUTH,
		"t.conf:2: bad value \"0123456789012345678901234567890123456789012345678901234567890123\""
		" for user: too long (at most 63 bytes)");
}
END_TEST

/* ---- structural errors ---- */

START_TEST(test_unknown_key)
{
	ERR1("[server]\nfoo = 1\n" AUTH, "t.conf:2: unknown key \"foo\" in section [server]");
	ERR1(AUTH "[heartbeat]\nlisten = 1.2.3.4:5\n",
		"t.conf:4: unknown key \"listen\" in section [heartbeat]");
}
END_TEST

START_TEST(test_unknown_section)
{
	/* reported once, at the section line; its keys are not reported again */
	ERR1("[foo]\nbar = 1\nbaz = 2\n" AUTH, "t.conf:1: unknown section [foo]");
	ERR1(AUTH "[Server]\n", "t.conf:3: unknown section [Server]");
}
END_TEST

START_TEST(test_outside_section)
{
	ERR1("foo = 1\n" AUTH, "t.conf:1: key \"foo\" outside any section");
}
END_TEST

START_TEST(test_syntax)
{
	ERR1("[server]\nthis is not a pair\n" AUTH, "t.conf:2: syntax error (expected key = value)");
	ERR1("[server\n" AUTH, "t.conf:1: syntax error (expected ']' after the section name)");
	/* every syntax error is collected, not only the first */
	ck_assert_int_eq(load("[server]\noops\nmax_connections = 5\nagain\n" AUTH), 2);
	ck_assert_str_eq(E.msg[0], "t.conf:2: syntax error (expected key = value)");
	ck_assert_str_eq(E.msg[1], "t.conf:4: syntax error (expected key = value)");
	ck_assert_int_eq(C.max_connections, 5);
}
END_TEST

START_TEST(test_duplicate_key)
{
	ERR1("[server]\npath = /a\npath = /b\n" AUTH,
		"t.conf:3: duplicate key \"path\" in section [server] (first set on line 2)");
	ck_assert_str_eq(C.path, "/a");
	/* the same name in two sections is two keys */
	OK("[heartbeat]\ntimeout = 50s\n[drain]\ntimeout = 50s\n" AUTH);
	ck_assert_int_eq(C.heartbeat_timeout_ms, 50000);
	ck_assert_int_eq(C.drain_timeout_ms, 50000);
	/* a section may be opened twice, its keys still count once */
	ERR1("[server]\npath = /a\n" AUTH "[server]\npath = /b\n",
		"t.conf:6: duplicate key \"path\" in section [server] (first set on line 2)");
}
END_TEST

START_TEST(test_long_line)
{
	char text[1024], fill[300];

	memset(fill, 'x', 250);
	fill[250] = '\0';
	snprintf(text, sizeof text, "[server]\n; %s\nfoo = 1\n" AUTH, fill);
	ck_assert_int_eq(load(text), 2);
	ck_assert_str_eq(E.msg[0], "t.conf:2: line too long (252 characters, at most 199)");
	ck_assert_str_eq(E.msg[1], "t.conf:3: unknown key \"foo\" in section [server]");
	/* 199 characters is fine */
	fill[197] = '\0';
	snprintf(text, sizeof text, "[server]\n; %s\n" AUTH, fill);
	OK(text);
}
END_TEST

START_TEST(test_layout)
{
	/* CRLF line ends, indented keys (never a continuation), blank lines, comments */
	OK("# comment\r\n[server]\r\n  path = /x\r\n\tmax_connections = 10\r\n\r\n"
	   "; another\r\n" AUTH);
	ck_assert_str_eq(C.path, "/x");
	ck_assert_int_eq(C.max_connections, 10);
	/* a UTF-8 byte order mark */
	OK("\xEF\xBB\xBF[server]\npath = /z\n" AUTH);
	ck_assert_str_eq(C.path, "/z");
	/* no newline at the end of the file */
	OK(AUTH "[server]\npath = /y");
	ck_assert_str_eq(C.path, "/y");
}
END_TEST

START_TEST(test_multiple_errors)
{
	const char *text =
		"[server]\n"                     /* 1 */
		"listen = 1.2.3.4\n"             /* 2 */
		"max_connections = lots\n"       /* 3 */
		"bogus = 1\n"                    /* 4 */
		"[nope]\n"                       /* 5 */
		"x = 1\n"                        /* 6 */
		"[heartbeat]\n"                  /* 7 */
		"interval = 30\n"                /* 8 */
		"no equals sign\n"               /* 9 */
		"[log]\n"                        /* 10 */
		"level = loud\n";                /* 11 */

	ck_assert_int_eq(load(text), 8);
	ck_assert_str_eq(E.msg[0], "t.conf:2: bad address \"1.2.3.4\" for listen: missing port, expected IPV4:PORT");
	ck_assert_str_eq(E.msg[1], "t.conf:3: bad number \"lots\" for max_connections");
	ck_assert_str_eq(E.msg[2], "t.conf:4: unknown key \"bogus\" in section [server]");
	ck_assert_str_eq(E.msg[3], "t.conf:5: unknown section [nope]");
	ck_assert_str_eq(E.msg[4], "t.conf:8: bad duration \"30\" for interval: missing unit (ms, s, m, h, d)");
	ck_assert_str_eq(E.msg[5], "t.conf:9: syntax error (expected key = value)");
	ck_assert_str_eq(E.msg[6], "t.conf:11: bad log level \"loud\" for level: expected debug, info, warn or error");
	/* the cross-key and file checks still run */
	ck_assert_str_eq(E.msg[7], "t.conf: no token key: set auth.hs256_secret_file or auth.ed25519_public_key");
}
END_TEST

START_TEST(test_error_cap)
{
	char text[4096];
	size_t n = 0;

	n += (size_t)snprintf(text + n, sizeof text - n, AUTH "[server]\n");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "k%d = 1\n", i);
	ck_assert_int_eq(load(text), 70);
	ck_assert_int_eq(E.n, 70);
	ck_assert_str_eq(E.msg[0], "t.conf:4: unknown key \"k0\" in section [server]");
	ck_assert_str_eq(E.msg[CFG_MAX_ERRORS - 1], "t.conf:67: unknown key \"k63\" in section [server]");
}
END_TEST

/* ---- cross-key rules ---- */

START_TEST(test_heartbeat_cross)
{
	ERR1("[heartbeat]\ninterval = 20s\ntimeout = 20s\n" AUTH,
		"t.conf:3: heartbeat.timeout (20s) must exceed heartbeat.interval (20s)");
	ERR1("[heartbeat]\ninterval = 1m\n" AUTH,
		"t.conf:2: heartbeat.timeout (45s) must exceed heartbeat.interval (1m)");
	OK("[heartbeat]\ninterval = 1s\ntimeout = 1001ms\n" AUTH);
}
END_TEST

START_TEST(test_drain_cross)
{
	ERR1("[drain]\nreconnect_spread = 40s\n" AUTH,
		"t.conf:2: drain.reconnect_spread (40s) must not exceed drain.timeout (30s)");
	ERR1("[drain]\ntimeout = 5s\n" AUTH,
		"t.conf:2: drain.reconnect_spread (10s) must not exceed drain.timeout (5s)");
	OK("[drain]\nreconnect_spread = 30s\n" AUTH);
	OK("[drain]\ntimeout = 0s\nreconnect_spread = 0s\n" AUTH);
	ck_assert_int_eq(C.drain_timeout_ms, 0);
}
END_TEST

START_TEST(test_tls)
{
	char *cert = temp_file("CERT\n", 5), *key = temp_file("KEY\n", 4);
	char text[512];

	ERR1("[server]\ntls_cert = /tmp/c.pem\n" AUTH, "t.conf:2: tls_cert and tls_key must be set together");
	ERR1("[server]\ntls_key = /tmp/k.pem\n" AUTH, "t.conf:2: tls_cert and tls_key must be set together");
	ck_assert_int_eq(load("[server]\ntls_cert = /nonexistent/c.pem\ntls_key = /nonexistent/k.pem\n" AUTH), 2);
	ck_assert_str_eq(E.msg[0], "t.conf:2: cannot read tls_cert \"/nonexistent/c.pem\": No such file or directory");
	ck_assert_str_eq(E.msg[1], "t.conf:3: cannot read tls_key \"/nonexistent/k.pem\": No such file or directory");
	snprintf(text, sizeof text, "[server]\ntls_cert = %s\ntls_key = %s\n" AUTH, cert, key);
	OK(text);
	ck_assert_str_eq(C.tls_cert, cert);
	ck_assert_str_eq(C.tls_key, key);
	drop_file(cert);
	drop_file(key);
}
END_TEST

/* ---- secret and key files ---- */

START_TEST(test_hs256)
{
	const char *secret = "0123456789abcdef0123456789abcdefXYZ!";  /* 36 bytes */
	char *good = temp_file("0123456789abcdef0123456789abcdefXYZ!\n \t\n", 40);
	char *exact = temp_file("0123456789abcdef0123456789abcdef", 32);
	char *shrt = temp_file("0123456789abcdef0123456789abcde   \n", 35);
	char text[512], want[512], big[1100];
	char *huge;

	snprintf(text, sizeof text, "[auth]\nhs256_secret_file = %s\n", good);
	OK(text);
	ck_assert_uint_eq(C.hs256_secret_len, 36);
	ck_assert_int_eq(memcmp(C.hs256_secret, secret, 36), 0);
	ck_assert_int_eq(C.has_ed25519, 0);

	snprintf(text, sizeof text, "[auth]\nhs256_secret_file = %s\n", exact);
	OK(text);
	ck_assert_uint_eq(C.hs256_secret_len, 32);

	/* both keys at once */
	snprintf(text, sizeof text, "[auth]\nhs256_secret_file = %s\ned25519_public_key = " PK64 "\n", exact);
	OK(text);
	ck_assert_uint_eq(C.hs256_secret_len, 32);
	ck_assert_int_eq(C.has_ed25519, 1);

	snprintf(text, sizeof text, "[auth]\nhs256_secret_file = %s\n", shrt);
	snprintf(want, sizeof want, "t.conf:2: hs256_secret_file \"%s\" holds 31 bytes, at least 32 are needed", shrt);
	ERR1(text, want);
	ck_assert_uint_eq(C.hs256_secret_len, 0);

	ERR1("[auth]\nhs256_secret_file = /nonexistent/x.key\n",
		"t.conf:2: cannot read hs256_secret_file \"/nonexistent/x.key\": No such file or directory");

	memset(big, 'a', 1025);
	huge = temp_file(big, 1025);
	snprintf(text, sizeof text, "[auth]\nhs256_secret_file = %s\n", huge);
	snprintf(want, sizeof want, "t.conf:2: hs256_secret_file \"%s\" holds 1025 bytes, at most 1024 are allowed", huge);
	ERR1(text, want);

	drop_file(good);
	drop_file(exact);
	drop_file(shrt);
	drop_file(huge);
}
END_TEST

START_TEST(test_no_token_key)
{
	ERR1("[auth]\nleeway = 1s\n",
		"t.conf: no token key: set auth.hs256_secret_file or auth.ed25519_public_key");
	ERR1("[auth]\ned25519_public_key =\nhs256_secret_file =\n",
		"t.conf: no token key: set auth.hs256_secret_file or auth.ed25519_public_key");
}
END_TEST

START_TEST(test_ed25519)
{
	OK("[auth]\ned25519_public_key = " PK64 "\n");
	ck_assert_int_eq(C.has_ed25519, 1);
	ck_assert_int_eq(C.ed25519_pk[31], 31);
	OK("[auth]\ned25519_public_key = " PK64_NOPAD "\n");
	ck_assert_int_eq(C.has_ed25519, 1);
	ck_assert_int_eq(C.ed25519_pk[0], 0);
	ck_assert_int_eq(C.ed25519_pk[17], 17);

	/* only the key's own error, not also "no token key" */
	ERR1("[auth]\ned25519_public_key = not-base64!\n",
		"t.conf:2: bad key \"not-base64!\" for ed25519_public_key: not base64");
	ck_assert_int_eq(C.has_ed25519, 0);
	ERR1("[auth]\ned25519_public_key = AAAA\n",
		"t.conf:2: bad key \"AAAA\" for ed25519_public_key: 3 bytes, expected 32");
	ERR1("[auth]\ned25519_public_key = " PK64_NOPAD "AAA\n",
		"t.conf:2: bad key \"" PK64_NOPAD "AAA\" for ed25519_public_key: 34 bytes, expected 32");
}
END_TEST

START_TEST(test_api_key)
{
	char *good = temp_file("s3cr3t-api-key \n\n", 17), *empty = temp_file(" \n\t\n", 4);
	char text[512], want[512];

	snprintf(text, sizeof text, "[admin]\napi_key_file = %s\n" AUTH, good);
	OK(text);
	ck_assert_str_eq(C.api_key, "s3cr3t-api-key");
	snprintf(text, sizeof text, "[admin]\napi_key_file = %s\n" AUTH, empty);
	snprintf(want, sizeof want, "t.conf:2: api_key_file \"%s\" is empty", empty);
	ERR1(text, want);
	ck_assert_str_eq(C.api_key, "");
	ERR1("[admin]\napi_key_file = /nonexistent/api.key\n" AUTH,
		"t.conf:2: cannot read api_key_file \"/nonexistent/api.key\": No such file or directory");
	drop_file(good);
	drop_file(empty);
}
END_TEST

/* ---- files ---- */

START_TEST(test_load_file)
{
	const char *body = "[server]\nmax_connections = 9\nfoo = bar\n" AUTH;
	char *path = temp_file(body, strlen(body));
	char want[512];

	cfg_defaults(&C);
	ck_assert_int_eq(cfg_load_file(&C, "/nonexistent/audiogwd.conf", &E), 1);
	ck_assert_int_eq(E.n, 1);
	ck_assert_str_eq(E.msg[0], "/nonexistent/audiogwd.conf: cannot read: No such file or directory");

	cfg_defaults(&C);
	ck_assert_int_eq(cfg_load_file(&C, path, &E), 1);
	snprintf(want, sizeof want, "%s:3: unknown key \"foo\" in section [server]", path);
	ck_assert_str_eq(E.msg[0], want);
	ck_assert_str_eq(C.file, path);
	ck_assert_int_eq(C.max_connections, 9);

	/* a NULL error list still gives the count */
	cfg_defaults(&C);
	ck_assert_int_eq(cfg_load_file(&C, path, NULL), 1);
	drop_file(path);
}
END_TEST

START_TEST(test_read_file)
{
	size_t size = 3 * 1024 * 1024 + 17, len = 0;
	char *big = malloc(size), *path, *got;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < size; i++)
		big[i] = (char)('a' + i % 26);
	path = temp_file(big, size);
	got = cfg_read_file(path, &len);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, size);
	ck_assert_int_eq(memcmp(got, big, size), 0);
	ck_assert_int_eq(got[size], '\0');
	free(got);

	got = cfg_read_file("/tmp", &len);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(errno, EISDIR);
	got = cfg_read_file("/nonexistent/file", &len);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(errno, ENOENT);

	drop_file(path);
	free(big);
}
END_TEST

START_TEST(test_downstream)
{
	cfg_defaults(&C);
	ck_assert_str_eq(C.downstream_allow, "127.0.0.0/8,::1/128");
	ck_assert_str_eq(C.downstream_tap, "");
	OK(AUTH);
	ck_assert_str_eq(C.record_dir, "./run/recordings");     /* RUN_DIR/recordings */
	OK("[server]\nrun_dir = /var/run/agw\n" AUTH);
	ck_assert_str_eq(C.record_dir, "/var/run/agw/recordings");
	OK("[downstream]\nallow = 10.0.0.0/8, 192.168.1.7 ,::1/128\ntap = ipc:///tmp/tap.ipc\n"
	   "record_dir = /srv/rec\n" AUTH);
	ck_assert_str_eq(C.downstream_allow, "10.0.0.0/8, 192.168.1.7 ,::1/128");
	ck_assert_str_eq(C.downstream_tap, "ipc:///tmp/tap.ipc");
	ck_assert_str_eq(C.record_dir, "/srv/rec");
	OK("[downstream]\nallow =\ntap =\n" AUTH);               /* nothing allowed, no tap */
	ck_assert_str_eq(C.downstream_allow, "");
	ERR1("[downstream]\nallow = 10.0.0.0/33\n" AUTH,
	     "t.conf:2: bad address list \"10.0.0.0/33\" for allow: "
	     "bad prefix length \"33\" in \"10.0.0.0/33\" (0-32)");
	ERR1("[downstream]\nallow = localhost\n" AUTH,
	     "t.conf:2: bad address list \"localhost\" for allow: "
	     "bad address \"localhost\" (numeric IPv4 or IPv6 expected)");
	ERR1("[downstream]\nallow = 127.0.0.1,,::1\n" AUTH,
	     "t.conf:2: bad address list \"127.0.0.1,,::1\" for allow: empty item in the address list");
	ERR1("[downstream]\ntap = /tmp/tap\n" AUTH,
	     "t.conf:2: bad URL \"/tmp/tap\" for tap: must start with ipc://, tcp:// or inproc://");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t = tcase_create("core");

	tcase_add_test(t, test_defaults);
	tcase_add_test(t, test_minimal_valid);
	tcase_add_test(t, test_example_config);
	tcase_add_test(t, test_int);
	tcase_add_test(t, test_size);
	tcase_add_test(t, test_duration_parse);
	tcase_add_test(t, test_duration_config);
	tcase_add_test(t, test_listen_repeat);
	tcase_add_test(t, test_listen_too_many);
	tcase_add_test(t, test_addr_parse);
	tcase_add_test(t, test_admin_listen);
	tcase_add_test(t, test_workers);
	tcase_add_test(t, test_log_level);
	tcase_add_test(t, test_strings);
	tcase_add_test(t, test_unknown_key);
	tcase_add_test(t, test_unknown_section);
	tcase_add_test(t, test_outside_section);
	tcase_add_test(t, test_syntax);
	tcase_add_test(t, test_duplicate_key);
	tcase_add_test(t, test_long_line);
	tcase_add_test(t, test_layout);
	tcase_add_test(t, test_multiple_errors);
	tcase_add_test(t, test_error_cap);
	tcase_add_test(t, test_heartbeat_cross);
	tcase_add_test(t, test_drain_cross);
	tcase_add_test(t, test_tls);
	tcase_add_test(t, test_hs256);
	tcase_add_test(t, test_no_token_key);
	tcase_add_test(t, test_ed25519);
	tcase_add_test(t, test_api_key);
	tcase_add_test(t, test_load_file);
	tcase_add_test(t, test_read_file);
	tcase_add_test(t, test_downstream);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
