/* config.c: owns audiogwd.conf (SPEC section 3). It knows every key through
 * one table (section, key, type, field, range), parses the INI text with inih
 * over its own line reader (so it counts lines itself), turns each value into
 * its field, collects every problem as "FILE:LINE: message", then runs the
 * cross-key checks and loads the secret files. It logs nothing and never
 * exits: the caller decides what to do with the errors. */
#include "common/config.h"
#include "common/cidr.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS_S  INT64_C(1000)
#define MS_M  (60 * MS_S)
#define MS_H  (60 * MS_M)
#define MS_D  (24 * MS_H)
#define KIB   INT64_C(1024)
#define MIB   (KIB * KIB)
#define GIB   (MIB * KIB)

#define HS256_MIN 32
#define UNITS "(ms, s, m, h, d)"

enum ktype {
	K_STR,      /* plain string; K_NONEMPTY flag forbids "" */
	K_PATH,     /* URL path, starts with '/' */
	K_INT,      /* int64, range checked */
	K_SIZE,     /* bytes with k/m/g suffix, range checked */
	K_DUR,      /* milliseconds from ms/s/m/h/d, range checked */
	K_LISTEN,   /* server.listen: repeatable address list */
	K_ADDR,     /* one address kept as text, "" = off */
	K_WORKERS,  /* "auto" or an int */
	K_LEVEL,    /* debug, info, warn, error */
	K_URL,      /* NNG URL: ipc://, tcp://, inproc:// */
	K_ED25519,  /* base64 of a 32-byte public key */
	K_CIDRS,    /* comma-separated ADDRESS[/PREFIX] list, kept as text */
};

#define K_NONEMPTY 1u
#define K_OPTIONAL 2u   /* K_URL: "" = off */
#define K_AUTO 4u       /* K_DUR: "auto" = CFG_AUTO */

typedef struct key {
	const char *sec, *name;
	enum ktype type;
	size_t off, size;
	int64_t min, max;
	unsigned flags;
} key;

#define F(m) offsetof(cfg, m), sizeof(((cfg *)0)->m)

static const key keys[] = {
	{ "server", "listen",                K_LISTEN,  F(listen), 0, 0, 0 },
	{ "server", "path",                  K_PATH,    F(path), 0, 0, 0 },
	{ "server", "workers",               K_WORKERS, F(workers), 1, 256, 0 },
	{ "server", "max_connections",       K_INT,     F(max_connections), 1, 1000000, 0 },
	{ "server", "resume_window",         K_DUR,     F(resume_window_ms), 0, MS_D, 0 },
	{ "server", "tls_cert",              K_STR,     F(tls_cert), 0, 0, 0 },
	{ "server", "tls_key",               K_STR,     F(tls_key), 0, 0, 0 },
	{ "server", "user",                  K_STR,     F(user), 0, 0, 0 },
	{ "server", "run_dir",               K_STR,     F(run_dir), 0, 0, K_NONEMPTY },
	{ "auth",   "hs256_secret_file",     K_STR,     F(hs256_secret_file), 0, 0, 0 },
	{ "auth",   "ed25519_public_key",    K_ED25519, F(ed25519_pk), 0, 0, 0 },
	{ "auth",   "leeway",                K_DUR,     F(leeway_ms), 0, MS_D, 0 },
	{ "limits", "max_frame_bytes",       K_SIZE,    F(max_frame_bytes), 12, 64 * KIB, 0 },
	{ "limits", "frames_per_second",     K_INT,     F(frames_per_second), 1, 100000, 0 },
	{ "limits", "frames_burst",          K_INT,     F(frames_burst), 1, 1000000, 0 },
	{ "limits", "max_conns_per_ip",      K_INT,     F(max_conns_per_ip), 1, 10000000, 0 },
	{ "limits", "max_conns_per_user",    K_INT,     F(max_conns_per_user), 1, 1000000, 0 },
	{ "limits", "handshakes_per_second", K_INT,     F(handshakes_per_second), 0, 10000000, 0 },
	{ "limits", "outbound_queue_frames", K_INT,     F(outbound_queue_frames), 1, 65536, 0 },
	{ "limits", "send_buffer",           K_SIZE,    F(send_buffer), 0, 256 * MIB, 0 },
	{ "limits", "slow_consumer_timeout", K_DUR,     F(slow_consumer_timeout_ms), 1, MS_D, 0 },
	{ "limits", "write_coalesce",        K_DUR,     F(write_coalesce_ms), 0, 100, K_AUTO },
	{ "heartbeat", "interval",           K_DUR,     F(heartbeat_interval_ms), 100, MS_H, 0 },
	{ "heartbeat", "timeout",            K_DUR,     F(heartbeat_timeout_ms), 100, MS_D, 0 },
	{ "drain",  "timeout",               K_DUR,     F(drain_timeout_ms), 0, MS_D, 0 },
	{ "drain",  "reconnect_spread",      K_DUR,     F(reconnect_spread_ms), 0, MS_D, 0 },
	{ "admin",  "listen",                K_ADDR,    F(admin_listen), 0, 0, 0 },
	{ "admin",  "api_key_file",          K_STR,     F(api_key_file), 0, 0, 0 },
	{ "admin",  "control_socket",        K_URL,     F(control_socket), 0, 0, 0 },
	{ "audit",  "database",              K_STR,     F(audit_database), 0, 0, K_NONEMPTY },
	{ "audit",  "retention",             K_DUR,     F(audit_retention_ms), MS_S, 3650 * MS_D, 0 },
	{ "log",    "level",                 K_LEVEL,   F(log_level), 0, 0, 0 },
	{ "log",    "file",                  K_STR,     F(log_file), 0, 0, 0 },
	{ "downstream", "allow",             K_CIDRS,   F(downstream_allow), 0, 0, 0 },
	{ "downstream", "tap",               K_URL,     F(downstream_tap), 0, 0, K_OPTIONAL },
	{ "downstream", "record_dir",        K_STR,     F(record_dir), 0, 0, 0 },
};

#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* Parse state shared by the reader, the handler and the checks. */
typedef struct pctx {
	cfg *c;
	cfg_errors *e;
	const char *file;
	const char *p;          /* next unread byte of the text */
	int line;               /* number of the line last handed to inih */
	int first_syntax;       /* first line we reported as a syntax error */
	int ed25519_bad;        /* auth.ed25519_public_key was set but invalid */
	int seen[NKEYS];        /* line where each key was first set, 0 = not */
} pctx;

/* ---- errors ---- */

static void add_err(cfg_errors *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_err(cfg_errors *e, const char *file, int line, const char *fmt, ...)
{
	size_t cap = sizeof e->msg[0];
	va_list ap;
	char *m;
	int k;

	if (e->n++ >= CFG_MAX_ERRORS)
		return;
	m = e->msg[e->n - 1];
	k = line > 0 ? snprintf(m, cap, "%s:%d: ", file, line) : snprintf(m, cap, "%s: ", file);
	if (k < 0 || (size_t)k >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(m + k, cap - (size_t)k, fmt, ap);
	va_end(ap);
}

/* "bad WHAT "VALUE"[ for KEY][: DETAIL]" into err; returns -1. */
static int bad(char *err, size_t n, const char *what, const char *s, const char *k,
	const char *detail)
{
	snprintf(err, n, "bad %s \"%s\"%s%s%s%s", what, s, k ? " for " : "", k ? k : "",
		detail ? ": " : "", detail ? detail : "");
	return -1;
}

/* ---- value formatting for range messages ---- */

static void fmt_dur(int64_t ms, char *b, size_t n)
{
	static const struct { int64_t f; const char *u; } u[] = {
		{ MS_D, "d" }, { MS_H, "h" }, { MS_M, "m" }, { MS_S, "s" },
	};
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
		if (ms != 0 && ms % u[i].f == 0) {
			snprintf(b, n, "%lld%s", (long long)(ms / u[i].f), u[i].u);
			return;
		}
	snprintf(b, n, "%lldms", (long long)ms);
}

static void fmt_size(int64_t v, char *b, size_t n)
{
	if (v != 0 && v % GIB == 0)
		snprintf(b, n, "%lldg", (long long)(v / GIB));
	else if (v != 0 && v % MIB == 0)
		snprintf(b, n, "%lldm", (long long)(v / MIB));
	else if (v != 0 && v % KIB == 0)
		snprintf(b, n, "%lldk", (long long)(v / KIB));
	else
		snprintf(b, n, "%lld", (long long)v);
}

static void fmt_val(enum ktype t, int64_t v, char *b, size_t n)
{
	if (t == K_DUR)
		fmt_dur(v, b, n);
	else if (t == K_SIZE)
		fmt_size(v, b, n);
	else
		snprintf(b, n, "%lld", (long long)v);
}

static int in_range(enum ktype t, const char *s, const char *k, int64_t v,
	int64_t min, int64_t max, char *err, size_t n)
{
	char lo[32], hi[32];

	if (v >= min && v <= max)
		return 0;
	fmt_val(t, min, lo, sizeof lo);
	fmt_val(t, max, hi, sizeof hi);
	snprintf(err, n, "value %s out of range %s..%s%s%s", s, lo, hi, k ? " for " : "",
		k ? k : "");
	return -1;
}

/* ---- value parsers ---- */

/* Reads the decimal digits at *p into *v; 0 ok, -1 overflow. */
static int digits(const char **p, int64_t *v)
{
	int64_t x = 0;

	for (; isdigit((unsigned char)**p); (*p)++) {
		int d = **p - '0';
		if (x > (INT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static int p_int(const char *s, const char *k, const char *hint, int64_t *out,
	char *err, size_t n)
{
	const char *p = s;
	int neg = 0;
	int64_t v;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p))
		return bad(err, n, "number", s, k, hint);
	if (digits(&p, &v) < 0)
		return bad(err, n, "number", s, k, "too large");
	if (*p)
		return bad(err, n, "number", s, k, hint);
	*out = neg ? -v : v;
	return 0;
}

static int p_size(const char *s, const char *k, int64_t *out, char *err, size_t n)
{
	const char *p = s;
	int64_t v, mult = 1;

	if (*p == '-')
		return bad(err, n, "size", s, k, "must not be negative");
	if (!isdigit((unsigned char)*p))
		return bad(err, n, "size", s, k, "expected a number of bytes with an optional k, m or g suffix");
	if (digits(&p, &v) < 0)
		return bad(err, n, "size", s, k, "too large");
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = KIB; p++; break;
	case 'm': case 'M': mult = MIB; p++; break;
	case 'g': case 'G': mult = GIB; p++; break;
	default:
		return bad(err, n, "size", s, k, "unknown unit (k, m, g)");
	}
	if (*p)
		return bad(err, n, "size", s, k, "unknown unit (k, m, g)");
	if (v > INT64_MAX / mult)
		return bad(err, n, "size", s, k, "too large");
	*out = v * mult;
	return 0;
}

/* Reads one unit name at *p; returns its factor in ms, 0 if unknown. */
static int64_t dur_unit(const char **p)
{
	static const struct { const char *u; int64_t f; } u[] = {
		{ "ms", 1 }, { "s", MS_S }, { "m", MS_M }, { "h", MS_H }, { "d", MS_D },
	};
	size_t len = 0;

	while (isalpha((unsigned char)(*p)[len]))
		len++;
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
		if (len == strlen(u[i].u) && strncmp(*p, u[i].u, len) == 0) {
			*p += len;
			return u[i].f;
		}
	return 0;
}

/* One or more NUMBER UNIT groups: "30s", "1m30s". */
static int p_dur(const char *s, const char *k, int64_t *out, char *err, size_t n)
{
	const char *p = s;
	int64_t total = 0, v, f;

	if (*p == '-')
		return bad(err, n, "duration", s, k, "must not be negative");
	if (!isdigit((unsigned char)*p))
		return bad(err, n, "duration", s, k, "expected a number followed by a unit " UNITS);
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return bad(err, n, "duration", s, k, "expected a number after the unit");
		if (digits(&p, &v) < 0)
			return bad(err, n, "duration", s, k, "too large");
		if (!*p)
			return bad(err, n, "duration", s, k, "missing unit " UNITS);
		if (*p == '.')
			return bad(err, n, "duration", s, k, "no fractions, use a smaller unit (1500ms)");
		if ((f = dur_unit(&p)) == 0)
			return bad(err, n, "duration", s, k, "unknown unit " UNITS);
		if (v > (INT64_MAX - total) / f)
			return bad(err, n, "duration", s, k, "too large");
		total += v * f;
	}
	*out = total;
	return 0;
}

static int p_port(const char *ps, in_port_t *port)
{
	const char *p = ps;
	int64_t v;

	if (!isdigit((unsigned char)*p) || digits(&p, &v) < 0 || *p || v < 1 || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

static int p_addr(const char *s, const char *k, cfg_addr *a, char *err, size_t n)
{
	char host[80], detail[120];
	const char *ps, *end;
	in_port_t port;
	size_t hl;
	int v6 = s[0] == '[';

	if (!*s)
		return bad(err, n, "address", s, k, "expected IPV4:PORT or [IPV6]:PORT");
	if (strlen(s) >= sizeof a->text)
		return bad(err, n, "address", s, k, "too long");
	if (v6) {
		if (!(end = strchr(s, ']')))
			return bad(err, n, "address", s, k, "missing ']' after the IPv6 address");
		if (end[1] != ':')
			return bad(err, n, "address", s, k, "missing port, expected [IPV6]:PORT");
		hl = (size_t)(end - s - 1);
		memcpy(host, s + 1, hl);
		ps = end + 2;
	} else {
		if (!(end = strrchr(s, ':')))
			return bad(err, n, "address", s, k, "missing port, expected IPV4:PORT");
		hl = (size_t)(end - s);
		memcpy(host, s, hl);
		ps = end + 1;
	}
	host[hl] = '\0';
	if (!v6 && strchr(host, ':'))
		return bad(err, n, "address", s, k, "an IPv6 address needs brackets, e.g. [::]:8080");
	if (p_port(ps, &port) < 0) {
		snprintf(detail, sizeof detail, "bad port \"%s\" (1-65535)", ps);
		return bad(err, n, "address", s, k, detail);
	}
	memset(a, 0, sizeof *a);
	if (v6) {
		struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&a->ss;
		if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
			return bad(err, n, "address", s, k, "not an IPv6 address");
		sa->sin6_family = AF_INET6;
		sa->sin6_port = port;
		a->len = sizeof *sa;
	} else {
		struct sockaddr_in *sa = (struct sockaddr_in *)&a->ss;
		if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
			return bad(err, n, "address", s, k,
				"not an IPv4 address (host names are not allowed)");
		sa->sin_family = AF_INET;
		sa->sin_port = port;
		a->len = sizeof *sa;
	}
	snprintf(a->text, sizeof a->text, "%s", s);
	return 0;
}

int cfg_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	int64_t v;

	if (p_int(s, NULL, NULL, &v, err, errlen) < 0 ||
	    in_range(K_INT, s, NULL, v, min, max, err, errlen) < 0)
		return -1;
	*out = v;
	return 0;
}

int cfg_parse_size(const char *s, int64_t *bytes, char *err, size_t errlen)
{
	return p_size(s, NULL, bytes, err, errlen);
}

int cfg_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen)
{
	return p_dur(s, NULL, ms, err, errlen);
}

int cfg_parse_addr(const char *s, cfg_addr *a, char *err, size_t errlen)
{
	return p_addr(s, NULL, a, err, errlen);
}

/* ---- defaults ---- */

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

void cfg_defaults(cfg *c)
{
	char err[160];

	memset(c, 0, sizeof *c);
	p_addr("0.0.0.0:8080", NULL, &c->listen[0], err, sizeof err);
	c->n_listen = 1;
	snprintf(c->path, sizeof c->path, "/v1/audio");
	c->workers = online_cpus();
	c->max_connections = 200000;
	c->resume_window_ms = 30 * MS_S;
	snprintf(c->run_dir, sizeof c->run_dir, "./run");
	c->leeway_ms = 30 * MS_S;
	c->max_frame_bytes = 1500;
	c->frames_per_second = 100;
	c->frames_burst = 200;
	c->max_conns_per_ip = 1000;
	c->max_conns_per_user = 3;
	c->handshakes_per_second = 0;
	c->outbound_queue_frames = 64;
	c->send_buffer = 64 * KIB;
	c->slow_consumer_timeout_ms = 5 * MS_S;
	c->write_coalesce_ms = CFG_AUTO;
	c->heartbeat_interval_ms = 20 * MS_S;
	c->heartbeat_timeout_ms = 45 * MS_S;
	c->drain_timeout_ms = 30 * MS_S;
	c->reconnect_spread_ms = 10 * MS_S;
	snprintf(c->admin_listen, sizeof c->admin_listen, "127.0.0.1:9090");
	snprintf(c->control_socket, sizeof c->control_socket, "ipc://./run/ctl.ipc");
	snprintf(c->audit_database, sizeof c->audit_database, "./run/audit.db");
	c->audit_retention_ms = 30 * MS_D;
	c->log_level = LOG_INFO;
	snprintf(c->downstream_allow, sizeof c->downstream_allow, "127.0.0.0/8,::1/128");
}

/* ---- the table-driven handler ---- */

static int find_key(const char *sec, const char *name)
{
	for (int i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].sec, sec) == 0 && strcmp(keys[i].name, name) == 0)
			return i;
	return -1;
}

static int known_section(const char *sec)
{
	for (int i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].sec, sec) == 0)
			return 1;
	return 0;
}

static int key_line(const pctx *x, const char *sec, const char *name)
{
	int i = find_key(sec, name);

	return i < 0 ? 0 : x->seen[i];
}

/* The first listen line replaces the default list, later ones append. */
static int set_listen(pctx *x, const key *k, const char *v, char *err, size_t n)
{
	cfg *c = x->c;
	cfg_addr a;

	if (!x->seen[k - keys])
		c->n_listen = 0;
	if (p_addr(v, k->name, &a, err, n) < 0)
		return -1;
	for (int i = 0; i < c->n_listen; i++)
		if (c->listen[i].len == a.len && memcmp(&c->listen[i].ss, &a.ss, a.len) == 0) {
			snprintf(err, n, "duplicate listen address \"%s\"", v);
			return -1;
		}
	if (c->n_listen >= CFG_MAX_LISTEN) {
		snprintf(err, n, "too many listen addresses (at most %d)", CFG_MAX_LISTEN);
		return -1;
	}
	c->listen[c->n_listen++] = a;
	return 0;
}

static int set_string(const key *k, char *dst, const char *v, char *err, size_t n)
{
	char detail[64];

	if ((k->flags & K_NONEMPTY) && !*v)
		return bad(err, n, "value", v, k->name, "must not be empty");
	if (strlen(v) >= k->size) {
		snprintf(detail, sizeof detail, "too long (at most %zu bytes)", k->size - 1);
		return bad(err, n, "value", v, k->name, detail);
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set_ed25519(cfg *c, const key *k, const char *v, char *err, size_t n)
{
	static const int variants[] = { sodium_base64_VARIANT_ORIGINAL,
		sodium_base64_VARIANT_ORIGINAL_NO_PADDING };
	unsigned char bin[256];
	char detail[64];
	size_t len = 0;
	int ok = 0;

	c->has_ed25519 = 0;
	if (!*v)
		return 0;
	for (size_t i = 0; i < 2 && !ok; i++)
		ok = sodium_base642bin(bin, sizeof bin, v, strlen(v), NULL, &len, NULL,
			variants[i]) == 0;
	if (!ok)
		return bad(err, n, "key", v, k->name, "not base64");
	if (len != sizeof c->ed25519_pk) {
		snprintf(detail, sizeof detail, "%zu bytes, expected %zu", len, sizeof c->ed25519_pk);
		return bad(err, n, "key", v, k->name, detail);
	}
	memcpy(c->ed25519_pk, bin, len);
	c->has_ed25519 = 1;
	return 0;
}

static int set_value(pctx *x, const key *k, const char *v, char *err, size_t n)
{
	void *dst = (char *)x->c + k->off;
	int64_t i64;
	cfg_addr a;

	switch (k->type) {
	case K_STR:
		return set_string(k, dst, v, err, n);
	case K_PATH:
		if (v[0] != '/')
			return bad(err, n, "path", v, k->name, "must start with '/'");
		if (strpbrk(v, "?# \t"))
			return bad(err, n, "path", v, k->name, "must not contain '?', '#' or blanks");
		return set_string(k, dst, v, err, n);
	case K_INT:
	case K_SIZE:
	case K_DUR:
		if ((k->flags & K_AUTO) && strcmp(v, "auto") == 0) {
			*(int64_t *)dst = CFG_AUTO;
			return 0;
		}
		if ((k->flags & K_AUTO) && p_dur(v, k->name, &i64, err, n) < 0)
			return bad(err, n, "duration", v, k->name, "expected auto or a number "
			           "followed by a unit " UNITS);
		if ((k->type == K_INT ? p_int(v, k->name, NULL, &i64, err, n) :
		     k->type == K_SIZE ? p_size(v, k->name, &i64, err, n) :
		     p_dur(v, k->name, &i64, err, n)) < 0 ||
		    in_range(k->type, v, k->name, i64, k->min, k->max, err, n) < 0)
			return -1;
		*(int64_t *)dst = i64;
		return 0;
	case K_WORKERS:
		if (strcmp(v, "auto") == 0)
			i64 = online_cpus();
		else if (p_int(v, k->name, "expected a number or auto", &i64, err, n) < 0 ||
			 in_range(K_INT, v, k->name, i64, k->min, k->max, err, n) < 0)
			return -1;
		*(int *)dst = (int)i64;
		return 0;
	case K_LEVEL:
		for (int l = LOG_DEBUG; l <= LOG_ERROR; l++)
			if (strcmp(v, level_names[l]) == 0) {
				*(int *)dst = l;
				return 0;
			}
		return bad(err, n, "log level", v, k->name, "expected debug, info, warn or error");
	case K_LISTEN:
		return set_listen(x, k, v, err, n);
	case K_ADDR:
		if (*v && p_addr(v, k->name, &a, err, n) < 0)
			return -1;
		return set_string(k, dst, v, err, n);
	case K_CIDRS: {
		static cidr_list l;  /* large: not on the stack */
		char detail[200];
		if (cidr_parse_list(v, &l, detail, sizeof detail) < 0)
			return bad(err, n, "address list", v, k->name, detail);
		return set_string(k, dst, v, err, n);
	}
	case K_URL:
		if (!*v && (k->flags & K_OPTIONAL))
			return set_string(k, dst, v, err, n);
		if (strncmp(v, "ipc://", 6) && strncmp(v, "tcp://", 6) && strncmp(v, "inproc://", 9))
			return bad(err, n, "URL", v, k->name,
				"must start with ipc://, tcp:// or inproc://");
		if (!strstr(v, "://")[3])
			return bad(err, n, "URL", v, k->name, "nothing after the scheme");
		return set_string(k, dst, v, err, n);
	case K_ED25519:
		return set_ed25519(x->c, k, v, err, n);
	}
	return -1;
}

static int on_key(void *user, const char *sec, const char *name, const char *val)
{
	pctx *x = user;
	char err[300];
	int i;

	if (!name)               /* a section line, if inih reports those */
		return 1;
	if (!*sec) {
		add_err(x->e, x->file, x->line, "key \"%s\" outside any section", name);
		return 1;
	}
	if (!known_section(sec)) /* already reported at the [section] line */
		return 1;
	if ((i = find_key(sec, name)) < 0) {
		add_err(x->e, x->file, x->line, "unknown key \"%s\" in section [%s]", name, sec);
		return 1;
	}
	if (x->seen[i] && keys[i].type != K_LISTEN) {
		add_err(x->e, x->file, x->line, "duplicate key \"%s\" in section [%s] (first set on line %d)",
			name, sec, x->seen[i]);
		return 1;
	}
	if (set_value(x, &keys[i], val, err, sizeof err) < 0) {
		add_err(x->e, x->file, x->line, "%s", err);
		x->ed25519_bad |= keys[i].type == K_ED25519;
	}
	if (!x->seen[i])
		x->seen[i] = x->line;
	return 1;
}

/* ---- the line reader ---- */

/* inih's own scan: up to one of chars or an inline comment (" ;"). */
static const char *scan(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

static void syntax_error(pctx *x, const char *what)
{
	add_err(x->e, x->file, x->line, "syntax error (%s)", what);
	if (!x->first_syntax)
		x->first_syntax = x->line;
}

/* Looks at a line before inih does: reports syntax errors and unknown
 * sections here, so that every one of them is collected with its line. */
static void precheck(pctx *x, const char *s)
{
	const char *end;
	char sec[CFG_PATH_MAX];

	if (!*s || *s == ';' || *s == '#')
		return;
	if (*s == '[') {
		end = scan(s + 1, "]");
		if (*end != ']') {
			syntax_error(x, "expected ']' after the section name");
			return;
		}
		snprintf(sec, sizeof sec, "%.*s", (int)(end - s - 1), s + 1);
		if (!known_section(sec))
			add_err(x->e, x->file, x->line, "unknown section [%s]", sec);
		return;
	}
	end = scan(s, "=:");
	if (*end != '=' && *end != ':')
		syntax_error(x, "expected key = value");
}

/* fgets-style reader over the text. Leading blanks are dropped so that an
 * indented line is never taken as a continuation of the previous value. */
static char *reader(char *buf, int num, void *stream)
{
	pctx *x = stream;
	const char *s = x->p, *eol;
	size_t len, raw;

	if (!*s)
		return NULL;
	eol = strchr(s, '\n');
	raw = eol ? (size_t)(eol - s) : strlen(s);
	x->p = s + raw + (eol ? 1 : 0);
	x->line++;
	len = raw;
	if (len && s[len - 1] == '\r')
		len--;
	if (x->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;     /* a UTF-8 byte order mark */
		len -= 3;
	}
	if (len > (size_t)num - 1) {
		add_err(x->e, x->file, x->line, "line too long (%zu characters, at most %d)",
			len, num - 1);
		buf[0] = '\0';
		return buf;
	}
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	precheck(x, buf);
	return buf;
}

/* ---- after the parse: cross-key rules and files ---- */

static void check_readable(pctx *x, const char *sec, const char *name, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		add_err(x->e, x->file, key_line(x, sec, name), "cannot read %s \"%s\": %s",
			name, path, strerror(errno));
	else
		close(fd);
}

/* Reads a key file, trailing whitespace removed; NULL after reporting. */
static char *read_key_file(pctx *x, const char *sec, const char *name, const char *path,
	size_t *len)
{
	char *b = cfg_read_file(path, len);

	if (!b) {
		add_err(x->e, x->file, key_line(x, sec, name), "cannot read %s \"%s\": %s",
			name, path, strerror(errno));
		return NULL;
	}
	while (*len && isspace((unsigned char)b[*len - 1]))
		b[--*len] = '\0';
	return b;
}

static void load_hs256(pctx *x)
{
	cfg *c = x->c;
	int line = key_line(x, "auth", "hs256_secret_file");
	size_t len;
	char *b;

	c->hs256_secret_len = 0;
	if (!*c->hs256_secret_file)
		return;
	if (!(b = read_key_file(x, "auth", "hs256_secret_file", c->hs256_secret_file, &len)))
		return;
	if (len < HS256_MIN)
		add_err(x->e, x->file, line, "hs256_secret_file \"%s\" holds %zu bytes, at least %d are needed",
			c->hs256_secret_file, len, HS256_MIN);
	else if (len > sizeof c->hs256_secret)
		add_err(x->e, x->file, line, "hs256_secret_file \"%s\" holds %zu bytes, at most %zu are allowed",
			c->hs256_secret_file, len, sizeof c->hs256_secret);
	else {
		memcpy(c->hs256_secret, b, len);
		c->hs256_secret_len = len;
	}
	sodium_memzero(b, len);
	free(b);
}

static void load_api_key(pctx *x)
{
	cfg *c = x->c;
	int line = key_line(x, "admin", "api_key_file");
	size_t len;
	char *b;

	c->api_key[0] = '\0';
	if (!*c->api_key_file)
		return;
	if (!(b = read_key_file(x, "admin", "api_key_file", c->api_key_file, &len)))
		return;
	if (len == 0)
		add_err(x->e, x->file, line, "api_key_file \"%s\" is empty", c->api_key_file);
	else if (len >= sizeof c->api_key)
		add_err(x->e, x->file, line, "api_key_file \"%s\" holds %zu bytes, at most %zu are allowed",
			c->api_key_file, len, sizeof c->api_key - 1);
	else
		memcpy(c->api_key, b, len + 1);
	sodium_memzero(b, len);
	free(b);
}

static void check_tls(pctx *x)
{
	cfg *c = x->c;

	if (!*c->tls_cert != !*c->tls_key) {
		add_err(x->e, x->file, key_line(x, "server", *c->tls_cert ? "tls_cert" : "tls_key"),
			"tls_cert and tls_key must be set together");
		return;
	}
	if (*c->tls_cert) {
		check_readable(x, "server", "tls_cert", c->tls_cert);
		check_readable(x, "server", "tls_key", c->tls_key);
	}
}

/* The line of the first of two keys set in the file, 0 if neither is. */
static int either_line(const pctx *x, const char *sec, const char *a, const char *b)
{
	int l = key_line(x, sec, a);

	return l ? l : key_line(x, sec, b);
}

static void check_cross(pctx *x)
{
	cfg *c = x->c;
	char a[32], b[32];

	if (c->heartbeat_timeout_ms <= c->heartbeat_interval_ms) {
		fmt_dur(c->heartbeat_timeout_ms, a, sizeof a);
		fmt_dur(c->heartbeat_interval_ms, b, sizeof b);
		add_err(x->e, x->file, either_line(x, "heartbeat", "timeout", "interval"),
			"heartbeat.timeout (%s) must exceed heartbeat.interval (%s)", a, b);
	}
	if (c->reconnect_spread_ms > c->drain_timeout_ms) {
		fmt_dur(c->reconnect_spread_ms, a, sizeof a);
		fmt_dur(c->drain_timeout_ms, b, sizeof b);
		add_err(x->e, x->file, either_line(x, "drain", "reconnect_spread", "timeout"),
			"drain.reconnect_spread (%s) must not exceed drain.timeout (%s)", a, b);
	}
	check_tls(x);
	load_hs256(x);
	if (!*c->hs256_secret_file && !c->has_ed25519 && !x->ed25519_bad)
		add_err(x->e, x->file, 0,
			"no token key: set auth.hs256_secret_file or auth.ed25519_public_key");
	load_api_key(x);
	if (!*c->record_dir)
		snprintf(c->record_dir, sizeof c->record_dir, "%.*s/recordings",
			(int)sizeof c->record_dir - 16, c->run_dir);
}

/* ---- entry points ---- */

char *cfg_read_file(const char *file, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = NULL, *nb;
	ssize_t r;
	int fd, e;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	for (;;) {
		if (!b || n + 1 >= cap) {
			cap = b ? cap * 2 : cap;
			if (!(nb = realloc(b, cap)))
				goto fail;
			b = nb;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = '\0';
	if (len)
		*len = n;
	return b;
fail:
	e = errno;
	free(b);
	close(fd);
	errno = e;
	return NULL;
}

int cfg_load_buffer(cfg *c, const char *file, const char *text, cfg_errors *errs)
{
	cfg_errors local;
	pctx x;
	int r;

	if (!errs)
		errs = &local;
	memset(&x, 0, sizeof x);
	x.c = c;
	x.e = errs;
	x.file = file;
	x.p = text;
	errs->n = 0;
	snprintf(c->file, sizeof c->file, "%s", file);
	r = ini_parse_stream(reader, &x, on_key, &x);
	if (r > 0 && r != x.first_syntax)   /* a case our precheck did not see */
		add_err(errs, file, r, "syntax error (expected key = value)");
	check_cross(&x);
	return errs->n;
}

int cfg_load_file(cfg *c, const char *file, cfg_errors *errs)
{
	size_t len;
	char *text = cfg_read_file(file, &len);
	int n;

	if (!text) {
		cfg_errors local;
		int e = errno;

		if (!errs)
			errs = &local;
		errs->n = 0;
		add_err(errs, file, 0, "cannot read: %s", strerror(e));
		return 1;
	}
	n = cfg_load_buffer(c, file, text, errs);
	free(text);
	return n;
}
