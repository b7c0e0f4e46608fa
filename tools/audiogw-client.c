/* audiogw-client.c: the command-line client of the audiogwd protocol
 * (SPEC 4.1-4.7). Owns option parsing, the token (given, read from a file,
 * or minted with token_mint_hs256), one libwebsockets client connection on
 * lws's default poll loop, reconnection (exponential backoff with full
 * jitter, drain and resume), the synthetic RTP sender and the receive
 * statistics. stdout carries the server's text messages, one JSON per line;
 * stderr carries this client's own events, one JSON object per line.
 * Every write to the socket happens in LWS_CALLBACK_CLIENT_WRITEABLE. */
#include "common/token.h"
#include "proto/rtp.h"

#include <libwebsockets.h>
#include <jansson.h>
#include <sodium.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_URL      "ws://127.0.0.1:8080/v1/audio"
#define BACKOFF_BASE_MS  500
#define BACKOFF_CAP_MS   30000
#define STABLE_US        (10 * 1000000LL)   /* a connection this old resets the backoff */
#define STATS_US         1000000
#define CLOSE_GUARD_US   (3 * 1000000)      /* wait this long for the close handshake */
#define RTP_CLOCK_HZ     48000
#define MAX_RATE         10000
#define MAX_PAYLOAD      65000
#define MAX_MESSAGE      (1 << 20)          /* larger received messages are dropped */
#define MAX_SSRCS        256
#define MAX_SECRET       1024               /* as auth.hs256_secret_file */
#define RESUME_MAX       1024
#define PATH_LEN         (3 * (TOKEN_MAX_LEN + RESUME_MAX) + 1024)
#define REPLY_MAX        4096               /* raw handshake answer kept for its body */
#define REPLY_WAIT_MS    300                /* to collect a rejection body */
#define LATENCY_MAX_US   (10 * 1000000LL)   /* larger: not our clock, ignored */
#define TX_MAX           (MAX_PAYLOAD + RTP_HEADER_LEN)

/* ---- state ------------------------------------------------------------- */

typedef struct options {
	const char *url;
	const char *token, *token_file;
	const char *secret_file, *user, *room, *rooms, *perm;
	long ttl;
	long send_rate;          /* frames per second, 0 = send no audio */
	long payload_bytes;
	long pt;
	double duration;         /* seconds, 0 = run until stopped */
	long long count;         /* frames to send, 0 = unlimited */
	const char **sends;
	int n_sends;
	int no_reconnect;
	long max_retries;        /* -1 = unlimited */
	int quiet_audio;
	int insecure;
	int verbose;
} options;

/* The one connection. Reset at every attempt, except its message buffer. */
typedef struct conn {
	struct lws *wsi;
	int active;              /* an attempt is under way and its end not yet handled */
	int established;
	int64_t established_us;
	int resume_offered;
	int close_requested;     /* we close it (1000) at the next WRITEABLE */
	int peer_closed;
	int peer_code;
	char peer_reason[124];
	int drain_seen;
	int64_t drain_at_us;     /* reconnect at this time after a drain message */
	int watch_reply;         /* request sent, ws://: keep a copy of the answer */
	char reply[REPLY_MAX];   /* raw answer, later the rejection body */
	size_t reply_len;
	unsigned http_status;    /* a non-101 handshake answer */
	int body_known;
	int send_next;           /* next --send message, -1 before the welcome */
	unsigned audio_due;      /* frames owed by the pacer */
	int first_frame;         /* RTP marker on the first frame */
	unsigned char *msg;      /* received message being reassembled */
	size_t msg_len, msg_cap;
	int msg_binary, msg_oversize;
} conn;

typedef struct ssrc_stat {
	int used;
	uint32_t ssrc;
	char user[TOKEN_NAME_MAX + 1];
	uint64_t frames, interval_frames, lost;
	uint16_t last_seq;
	int seq_started;
} ssrc_stat;

typedef struct app {
	options opt;
	/* endpoint */
	char url_buf[2048];
	const char *address;
	int port, tls;
	char base_path[2048];
	char host_hdr[512];
	/* token */
	int mint;
	char token[TOKEN_MAX_LEN + 1];
	unsigned char secret[MAX_SECRET];
	size_t secret_len;
	token_claims claims;
	/* loop */
	struct lws_context *ctx;
	conn c;
	lws_sorted_usec_list_t sul_reconnect, sul_pace, sul_stats, sul_deadline, sul_guard;
	char resume[RESUME_MAX + 1];
	unsigned attempt;        /* reconnect attempts in a row (backoff exponent) */
	unsigned connections;
	int stopping, done, destroying, exit_code;
	/* sender */
	uint16_t seq;
	uint32_t ts, ts_step, counter;
	int64_t pace_start_us;
	uint64_t pace_ticks;
	int sending_done;
	uint64_t tx_total, tx_interval, tx_skipped;
	unsigned char txbuf[LWS_PRE + TX_MAX];
	/* receiver */
	uint64_t rx_total, rx_interval, rx_bytes_interval, rx_invalid;
	int64_t lat_sum_us, lat_max_us;
	uint64_t lat_n;
	ssrc_stat ssrcs[MAX_SSRCS];
	uint64_t ssrc_overflow;
} app;

static app g_app;
static struct lws_context *volatile g_ctx;   /* for the signal handler */
static volatile sig_atomic_t g_signals;

/* ---- small helpers ----------------------------------------------------- */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const unsigned char *p)
{
	return ((uint64_t)rtp_read32(p) << 32) | rtp_read32(p + 4);
}

/* Percent-encodes s (RFC 3986 unreserved characters stay) onto out+*pos. */
static int append_pct(char *out, size_t n, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
		if (*pos + (plain ? 1 : 3) >= n)
			return -1;
		if (plain) {
			out[(*pos)++] = (char)ch;
		} else {
			out[(*pos)++] = '%';
			out[(*pos)++] = hex[ch >> 4];
			out[(*pos)++] = hex[ch & 15];
		}
	}
	out[*pos] = '\0';
	return 0;
}

/* ---- events on stderr --------------------------------------------------- */

static json_t *event_new(const char *name)
{
	json_t *ev = json_object();
	if (ev) {
		json_object_set_new(ev, "event", json_string(name));
		json_object_set_new(ev, "ts", json_integer(unix_ms()));
	}
	return ev;
}

/* Prints one event as a JSON line and releases it. */
static void emit(json_t *ev)
{
	if (!ev)
		return;
	char *s = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!s)
		return;
	fprintf(stderr, "%s\n", s);
	fflush(stderr);
	free(s);
}

static void set_int(json_t *o, const char *key, long long v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* A string field from bytes that may not be UTF-8 or NUL-terminated. */
static void set_bytes(json_t *o, const char *key, const char *s, size_t n)
{
	json_t *v = json_stringn(s, n);
	if (!v) {
		char *clean = malloc(n + 1);
		for (size_t i = 0; clean && i < n; i++)
			clean[i] = (s[i] & 0x80) || (unsigned char)s[i] < 0x20 ? '?' : s[i];
		v = clean ? json_stringn(clean, n) : NULL;
		free(clean);
	}
	json_object_set_new(o, key, v ? v : json_null());
}

static void lws_log_line(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	json_t *ev = event_new("lws");
	json_object_set_new(ev, "level", json_string(level == LLL_ERR ? "err" :
	                                              level == LLL_WARN ? "warn" : "notice"));
	set_bytes(ev, "msg", line, n);
	emit(ev);
}

/* ---- usage and options -------------------------------------------------- */

static const char *const usage_text[] = {
"usage: audiogw-client [--url ws://HOST:PORT/v1/audio]\n"
"         (--token JWT | --token-file FILE |\n"
"          --secret-file FILE --user U --room R [--rooms A,B] [--perm listen] [--ttl 3600])\n"
"         [--send-rate N] [--payload-bytes B] [--pt 111] [--duration SECONDS] [--count N]\n"
"         [--send JSON]... [--no-reconnect] [--max-retries N] [--quiet-audio]\n"
"         [--insecure] [--verbose]\n"
"\n"
"Connects to audiogwd with the token in ?token=, prints every text (control)\n"
"message from the server on stdout as one JSON line (the server's own JSON),\n"
"and its own events on stderr as JSON lines.\n"
"\n",
"Token (exactly one source):\n"
"  --token JWT          use this token\n"
"  --token-file FILE    read the token from FILE (surrounding whitespace removed)\n"
"  --secret-file FILE   mint an HS256 token with the secret in FILE: its bytes,\n"
"                       trailing whitespace removed (like auth.hs256_secret_file);\n"
"                       a fresh token is minted for every connection attempt\n"
"  --user U, --room R   its sub and room claims (required with --secret-file)\n"
"  --rooms A,B          its rooms claim, rooms it may join (\"*\" = any)\n"
"  --perm listen|speak  its perm claim (default speak)\n"
"  --ttl SECONDS        its lifetime (default 3600)\n"
"\n"
"Connection:\n"
"  --url URL            ws:// or wss:// endpoint (default " DEFAULT_URL ")\n"
"  --insecure           wss://: accept self-signed or mismatched certificates\n"
"  --send JSON          send this text message after each welcome (repeatable,\n"
"                       in order, as given: invalid JSON is sent as well)\n"
"  --duration SECONDS   close (1000) and exit 0 after this long\n"
"  --no-reconnect       exit after the first close: 0 if it was 1000, else 1\n"
"  --max-retries N      give up (exit 1) after N reconnect attempts in a row\n"
"  --verbose            also report libwebsockets warnings and notices\n"
"  -h, --help           print this text\n"
"\n",
"Audio:\n"
"  --send-rate N        send N synthetic RTP frames a second (1-10000): V=2, CC=0,\n"
"                       SSRC 0 (the gateway sets it), sequence from a random start,\n"
"                       timestamp += 48000/N, paced by a timer\n"
"  --payload-bytes B    payload size (default 100, at most 65000): bytes 0-7 the\n"
"                       send time (CLOCK_MONOTONIC microseconds), 8-11 a frame\n"
"                       counter, both big-endian, the rest zero\n"
"  --pt PT              RTP payload type (default 111)\n"
"  --count N            send N frames, then close (1000) and exit 0; with\n"
"                       --duration, stop sending and keep listening instead\n"
"  --quiet-audio        no per-second stats events\n"
"\n",
"Reconnection: after a drop or a close other than 1000, 1008, 4001 (kicked) or\n"
"4003 (replaced), it waits random(0, min(30 s, 500 ms * 2^attempt)) and\n"
"reconnects; the attempt count restarts after a connection that lived more\n"
"than 10 s. After {\"type\":\"drain\",\"reconnect_in_ms\":N} it reconnects N ms\n"
"after that message. The welcome's resume string is sent back as &resume=.\n"
"HTTP answers instead of the upgrade: 401, 403, 404 (any 4xx but 429) are\n"
"final, exit 1; 429, 503 and the others are retried with the backoff.\n"
"\n"
"stderr events: connected, closed {code, reason, by}, reconnecting {in_ms,\n"
"attempt}, rejected {status, body}, connect_error, stats (each second while\n"
"audio flows: frames sent and received, per-SSRC counts, latency when the\n"
"sender is on this host), giving_up, exit, lws.\n"
"\n"
"Exit status: 0 after --duration, --count, SIGINT or SIGTERM (the connection\n"
"is closed 1000) or a 1000 close; 1 on a final close or rejection or when the\n"
"retries run out; 2 on bad usage.\n",
};

static void usage(FILE *f)
{
	for (size_t i = 0; i < sizeof usage_text / sizeof usage_text[0]; i++)
		fputs(usage_text[i], f);
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("audiogw-client: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\ntry audiogw-client --help\n", stderr);
	va_end(ap);
	return -1;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum {
	OPT_URL = 256, OPT_TOKEN, OPT_TOKEN_FILE, OPT_SECRET_FILE, OPT_USER, OPT_ROOM,
	OPT_ROOMS, OPT_PERM, OPT_TTL, OPT_SEND_RATE, OPT_PAYLOAD, OPT_PT, OPT_DURATION,
	OPT_COUNT, OPT_SEND, OPT_NO_RECONNECT, OPT_MAX_RETRIES, OPT_QUIET, OPT_INSECURE,
	OPT_VERBOSE
};

static const struct option long_opts[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "user", required_argument, NULL, OPT_USER },
	{ "room", required_argument, NULL, OPT_ROOM },
	{ "rooms", required_argument, NULL, OPT_ROOMS },
	{ "perm", required_argument, NULL, OPT_PERM },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "send-rate", required_argument, NULL, OPT_SEND_RATE },
	{ "payload-bytes", required_argument, NULL, OPT_PAYLOAD },
	{ "pt", required_argument, NULL, OPT_PT },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "send", required_argument, NULL, OPT_SEND },
	{ "no-reconnect", no_argument, NULL, OPT_NO_RECONNECT },
	{ "max-retries", required_argument, NULL, OPT_MAX_RETRIES },
	{ "quiet-audio", no_argument, NULL, OPT_QUIET },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Numeric options. -1 on a bad value. */
static int parse_number_opt(options *o, int id, const char *arg)
{
	long v;
	char *end;
	switch (id) {
	case OPT_TTL:
		return parse_long(arg, 1, 10L * 365 * 86400, &o->ttl);
	case OPT_SEND_RATE:
		return parse_long(arg, 1, MAX_RATE, &o->send_rate);
	case OPT_PAYLOAD:
		return parse_long(arg, 0, MAX_PAYLOAD, &o->payload_bytes);
	case OPT_PT:
		return parse_long(arg, 0, 127, &o->pt);
	case OPT_MAX_RETRIES:
		return parse_long(arg, 0, 1000000000L, &o->max_retries);
	case OPT_COUNT:
		if (parse_long(arg, 1, 2000000000L, &v) != 0)
			return -1;
		o->count = v;
		return 0;
	case OPT_DURATION:
		errno = 0;
		o->duration = strtod(arg, &end);
		return errno || end == arg || *end || !(o->duration > 0) ||
		       o->duration > 1e7 ? -1 : 0;
	}
	return -1;
}

static int add_send(options *o, const char *json)
{
	if (strlen(json) > TX_MAX)
		return -1;
	const char **n = realloc(o->sends, (size_t)(o->n_sends + 1) * sizeof *n);
	if (!n)
		return -1;
	o->sends = n;
	o->sends[o->n_sends++] = json;
	return 0;
}

/* One option; -1 on a bad value. */
static int apply_option(options *o, int id, const char *arg)
{
	switch (id) {
	case OPT_URL:          o->url = arg; return 0;
	case OPT_TOKEN:        o->token = arg; return 0;
	case OPT_TOKEN_FILE:   o->token_file = arg; return 0;
	case OPT_SECRET_FILE:  o->secret_file = arg; return 0;
	case OPT_USER:         o->user = arg; return 0;
	case OPT_ROOM:         o->room = arg; return 0;
	case OPT_ROOMS:        o->rooms = arg; return 0;
	case OPT_PERM:         o->perm = arg; return 0;
	case OPT_SEND:         return add_send(o, arg);
	case OPT_NO_RECONNECT: o->no_reconnect = 1; return 0;
	case OPT_QUIET:        o->quiet_audio = 1; return 0;
	case OPT_INSECURE:     o->insecure = 1; return 0;
	case OPT_VERBOSE:      o->verbose = 1; return 0;
	}
	return parse_number_opt(o, id, arg);
}

static int check_options(const options *o)
{
	int sources = !!o->token + !!o->token_file + !!o->secret_file;
	if (sources != 1)
		return bad_usage("give exactly one of --token, --token-file, --secret-file");
	if (o->secret_file && (!o->user || !o->room))
		return bad_usage("--secret-file needs --user and --room");
	if (!o->secret_file && (o->user || o->room || o->rooms || o->perm))
		return bad_usage("--user, --room, --rooms and --perm need --secret-file");
	if (o->count && !o->send_rate)
		return bad_usage("--count needs --send-rate");
	if (o->perm && strcmp(o->perm, "listen") != 0 && strcmp(o->perm, "speak") != 0)
		return bad_usage("--perm must be listen or speak, not \"%s\"", o->perm);
	return 0;
}

/* 0 to run, 1 after --help, -1 on bad usage. */
static int parse_options(options *o, int argc, char **argv)
{
	o->url = DEFAULT_URL;
	o->ttl = 3600;
	o->payload_bytes = 100;
	o->pt = 111;
	o->max_retries = -1;
	int id, idx = 0;
	while ((id = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
		if (id == 'h') {
			usage(stdout);
			return 1;
		}
		if (id == '?')
			return bad_usage("unknown option or missing value");
		if (apply_option(o, id, optarg) != 0)
			return bad_usage("bad value \"%s\" for --%s", optarg ? optarg : "",
			                 long_opts[idx].name);
	}
	if (optind < argc)
		return bad_usage("unexpected argument \"%s\"", argv[optind]);
	return check_options(o);
}

/* ---- endpoint and token ------------------------------------------------- */

static int parse_url(app *a)
{
	const char *prot, *ads, *path;
	int port;
	if (strlen(a->opt.url) >= sizeof a->url_buf)
		return bad_usage("--url too long: %s", a->opt.url);
	strcpy(a->url_buf, a->opt.url);
	if (!strstr(a->url_buf, "://") || lws_parse_uri(a->url_buf, &prot, &ads, &port, &path))
		return bad_usage("bad --url \"%s\"", a->opt.url);
	if (strcmp(prot, "ws") == 0)
		a->tls = 0;
	else if (strcmp(prot, "wss") == 0)
		a->tls = 1;
	else
		return bad_usage("--url must be ws:// or wss://, not \"%s\"", a->opt.url);
	if (!*ads || port <= 0 || port > 65535)
		return bad_usage("bad host or port in --url \"%s\"", a->opt.url);
	a->address = ads;
	a->port = port;
	snprintf(a->base_path, sizeof a->base_path, "/%s", path);
	int v6 = strchr(ads, ':') != NULL;
	if (port == (a->tls ? 443 : 80))
		snprintf(a->host_hdr, sizeof a->host_hdr, v6 ? "[%s]" : "%s", ads);
	else
		snprintf(a->host_hdr, sizeof a->host_hdr, v6 ? "[%s]:%d" : "%s:%d", ads, port);
	return 0;
}

/* Reads a whole small file; trailing whitespace removed. -1 after reporting. */
static int read_small_file(const char *path, unsigned char *buf, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "audiogw-client: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(buf, 1, max, f);
	int err = ferror(f), more = !err && fgetc(f) != EOF;
	fclose(f);
	if (err || more) {
		fprintf(stderr, "audiogw-client: %s: %s\n", path,
		        err ? "read error" : "file too large");
		return -1;
	}
	while (n && is_space(buf[n - 1]))
		n--;
	*len = n;
	return 0;
}

static int load_token_file(app *a)
{
	unsigned char buf[TOKEN_MAX_LEN + 64];
	size_t n, start = 0;
	if (read_small_file(a->opt.token_file, buf, sizeof buf, &n) != 0)
		return -1;
	while (start < n && is_space(buf[start]))
		start++;
	if (n - start == 0 || n - start > TOKEN_MAX_LEN) {
		fprintf(stderr, "audiogw-client: %s: no token of 1-%d bytes\n", a->opt.token_file,
		        TOKEN_MAX_LEN);
		return -1;
	}
	memcpy(a->token, buf + start, n - start);
	a->token[n - start] = '\0';
	return 0;
}

static int copy_claim(char *dst, const char *src, const char *what)
{
	size_t n = strlen(src);
	if (n < 1 || n > TOKEN_NAME_MAX) {
		fprintf(stderr, "audiogw-client: --%s must be 1-%d bytes\n", what, TOKEN_NAME_MAX);
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static int add_rooms(token_claims *c, const char *list)
{
	char buf[TOKEN_ROOMS_MAX + 2];
	if (strlen(list) >= sizeof buf) {
		fprintf(stderr, "audiogw-client: --rooms too long\n");
		return -1;
	}
	strcpy(buf, list);
	for (char *save = NULL, *r = strtok_r(buf, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		if (token_claims_add_room(c, r) != 0) {
			fprintf(stderr, "audiogw-client: bad room \"%s\" in --rooms\n", r);
			return -1;
		}
	}
	return 0;
}

static int mint_token(app *a, char *out, size_t n)
{
	token_claims c = a->claims;
	int64_t now = (int64_t)time(NULL);
	c.iat = now;
	c.has_iat = 1;
	c.exp = now + a->opt.ttl;
	return token_mint_hs256(&c, a->secret, a->secret_len, out, n) < 0 ? -1 : 0;
}

static int setup_minting(app *a)
{
	char probe[TOKEN_MAX_LEN + 1];
	if (read_small_file(a->opt.secret_file, a->secret, sizeof a->secret, &a->secret_len) != 0)
		return -1;
	if (!a->secret_len) {
		fprintf(stderr, "audiogw-client: %s is empty\n", a->opt.secret_file);
		return -1;
	}
	if (copy_claim(a->claims.sub, a->opt.user, "user") != 0 ||
	    copy_claim(a->claims.room, a->opt.room, "room") != 0 ||
	    (a->opt.rooms && add_rooms(&a->claims, a->opt.rooms) != 0))
		return -1;
	a->claims.perm_listen = a->opt.perm && strcmp(a->opt.perm, "listen") == 0;
	a->mint = 1;
	if (mint_token(a, probe, sizeof probe) != 0) {
		fprintf(stderr, "audiogw-client: cannot mint a token: check --user and --room "
		                "(sub: visible ASCII; room: no control characters)\n");
		return -1;
	}
	sodium_memzero(probe, sizeof probe);
	return 0;
}

static int setup_token(app *a)
{
	if (a->opt.secret_file)
		return setup_minting(a);
	if (a->opt.token_file)
		return load_token_file(a);
	if (strlen(a->opt.token) > TOKEN_MAX_LEN) {
		fprintf(stderr, "audiogw-client: --token longer than %d bytes\n", TOKEN_MAX_LEN);
		return -1;
	}
	strcpy(a->token, a->opt.token);
	return 0;
}

/* The request path: base?token=T[&resume=R]. -1 if it does not fit. */
static int build_path(app *a, char *out, size_t n)
{
	char token[TOKEN_MAX_LEN + 1];
	if (a->mint ? mint_token(a, token, sizeof token) != 0 :
	              snprintf(token, sizeof token, "%s", a->token) < 0)
		return -1;
	size_t pos = (size_t)snprintf(out, n, "%s%ctoken=", a->base_path,
	                              strchr(a->base_path, '?') ? '&' : '?');
	int rc = pos < n ? append_pct(out, n, &pos, token) : -1;
	sodium_memzero(token, sizeof token);
	if (rc == 0 && a->resume[0]) {
		if (pos + 8 >= n)
			return -1;
		memcpy(out + pos, "&resume=", 9);
		pos += 8;
		rc = append_pct(out, n, &pos, a->resume);
	}
	a->c.resume_offered = rc == 0 && a->resume[0];
	return rc;
}

/* ---- connection lifecycle ------------------------------------------------ */

static void connect_now(app *a);
static void begin_stop(app *a, int exit_code);

/* Ends the loop; wakes lws_service, which may be about to wait in poll(). */
static void set_done(app *a)
{
	a->done = 1;
	if (a->ctx && !a->destroying)
		lws_cancel_service(a->ctx);
}

static void finish(app *a, int exit_code)
{
	a->exit_code = exit_code;
	set_done(a);
}

static void conn_reset(conn *c)
{
	unsigned char *msg = c->msg;
	size_t cap = c->msg_cap;
	memset(c, 0, sizeof *c);
	c->msg = msg;
	c->msg_cap = cap;
	c->send_next = -1;
}

static void on_reconnect_timer(lws_sorted_usec_list_t *sul)
{
	app *a = lws_container_of(sul, app, sul_reconnect);
	if (!a->stopping)
		connect_now(a);
}

/* random(0, min(cap, base * 2^attempt)) milliseconds: full jitter. */
static uint32_t backoff_ms(unsigned attempt)
{
	uint32_t cap = attempt >= 6 ? BACKOFF_CAP_MS : (uint32_t)BACKOFF_BASE_MS << attempt;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	return randombytes_uniform(cap + 1);
}

static void schedule_reconnect(app *a)
{
	conn *c = &a->c;
	int64_t delay_ms;
	const char *why = "backoff";
	if (c->drain_seen) {
		int64_t left = c->drain_at_us - mono_us();
		delay_ms = left > 0 ? left / 1000 : 0;
		a->attempt = 1;          /* planned: the next failure backs off from the start */
		why = "drain";
	} else {
		if (a->opt.max_retries >= 0 && a->attempt >= (unsigned long)a->opt.max_retries) {
			json_t *ev = event_new("giving_up");
			set_int(ev, "attempts", a->attempt);
			emit(ev);
			finish(a, 1);
			return;
		}
		delay_ms = backoff_ms(a->attempt);
		a->attempt++;
	}
	json_t *ev = event_new("reconnecting");
	set_int(ev, "in_ms", delay_ms);
	set_int(ev, "attempt", a->attempt);
	json_object_set_new(ev, "reason", json_string(why));
	emit(ev);
	lws_sul_schedule(a->ctx, 0, &a->sul_reconnect, on_reconnect_timer,
	                 (lws_usec_t)delay_ms * 1000 + 1);
}

/* After an attempt ended: exit, or try again. */
static void after_end(app *a, int final, int exit_code)
{
	if (a->stopping) {
		set_done(a);
		return;
	}
	if (final || a->opt.no_reconnect)
		finish(a, exit_code);
	else
		schedule_reconnect(a);
}

static void connect_now(app *a)
{
	static char path[PATH_LEN];
	conn *c = &a->c;
	conn_reset(c);
	if (build_path(a, path, sizeof path) != 0) {
		fprintf(stderr, "audiogw-client: request path too long\n");
		finish(a, 1);
		return;
	}
	struct lws_client_connect_info i;
	memset(&i, 0, sizeof i);
	i.context = a->ctx;
	i.address = a->address;
	i.port = a->port;
	i.path = path;
	i.host = a->host_hdr;
	i.ssl_connection = !a->tls ? 0 : LCCSCF_USE_SSL | (a->opt.insecure ?
		LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
		LCCSCF_ALLOW_EXPIRED : 0);
	c->active = 1;
	c->wsi = lws_client_connect_via_info(&i);
	sodium_memzero(path, sizeof path);
	if (!c->wsi && c->active) {     /* failed without a CONNECTION_ERROR callback */
		c->active = 0;
		json_t *ev = event_new("connect_error");
		json_object_set_new(ev, "error", json_string("cannot start the connection"));
		emit(ev);
		after_end(a, 0, 1);
	}
}

/* ---- sender ------------------------------------------------------------- */

static int64_t pace_due_us(const app *a, uint64_t tick)
{
	return a->pace_start_us + (int64_t)(tick * 1000000u / (uint64_t)a->opt.send_rate);
}

/* Frames still to be owed under --count. */
static uint64_t count_left(const app *a)
{
	if (!a->opt.count)
		return UINT64_MAX;
	uint64_t owed = a->tx_total + a->c.audio_due;
	return owed >= (uint64_t)a->opt.count ? 0 : (uint64_t)a->opt.count - owed;
}

static void on_pace_timer(lws_sorted_usec_list_t *sul)
{
	app *a = lws_container_of(sul, app, sul_pace);
	conn *c = &a->c;
	if (!c->established || a->stopping || a->sending_done)
		return;
	int64_t now = mono_us();
	unsigned backlog = (unsigned)(a->opt.send_rate / 5 + 1);   /* 200 ms */
	while (pace_due_us(a, a->pace_ticks) <= now && count_left(a)) {
		a->pace_ticks++;
		if (c->audio_due < backlog)
			c->audio_due++;
		else
			a->tx_skipped++;
	}
	if (c->audio_due)
		lws_callback_on_writable(c->wsi);
	if (count_left(a))
		lws_sul_schedule(a->ctx, 0, &a->sul_pace, on_pace_timer,
		                 (lws_usec_t)(pace_due_us(a, a->pace_ticks) - now));
}

static void pace_start(app *a)
{
	if (!a->opt.send_rate || a->sending_done)
		return;
	a->pace_start_us = mono_us();
	a->pace_ticks = 0;
	a->c.first_frame = 1;
	lws_sul_schedule(a->ctx, 0, &a->sul_pace, on_pace_timer, 1);
}

/* Builds the next RTP packet (RFC 3550) at txbuf + LWS_PRE; returns its length. */
static size_t build_frame(app *a)
{
	unsigned char *p = a->txbuf + LWS_PRE;
	size_t plen = (size_t)a->opt.payload_bytes;
	unsigned char head[12];
	p[0] = 0x80;                                   /* V=2, P=0, X=0, CC=0 */
	p[1] = (unsigned char)((a->c.first_frame ? 0x80 : 0) | (a->opt.pt & 0x7f));
	p[2] = (unsigned char)(a->seq >> 8);
	p[3] = (unsigned char)a->seq;
	put_be32(p + 4, a->ts);
	put_be32(p + 8, 0);                            /* the gateway writes our ssrc */
	put_be64(head, (uint64_t)mono_us());
	put_be32(head + 8, a->counter);
	memset(p + RTP_HEADER_LEN, 0, plen);
	memcpy(p + RTP_HEADER_LEN, head, plen < sizeof head ? plen : sizeof head);
	a->seq++;
	a->ts += a->ts_step;
	a->counter++;
	a->c.first_frame = 0;
	return RTP_HEADER_LEN + plen;
}

static int write_frame(app *a, struct lws *wsi)
{
	size_t len = build_frame(a);
	if (lws_write(wsi, a->txbuf + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len)
		return -1;
	a->c.audio_due--;
	a->tx_total++;
	a->tx_interval++;
	if (a->opt.count && a->tx_total >= (uint64_t)a->opt.count) {
		a->sending_done = 1;
		if (a->opt.duration <= 0)
			begin_stop(a, 0);
	}
	return 0;
}

static int write_text(app *a, struct lws *wsi, const char *text)
{
	size_t len = strlen(text);
	memcpy(a->txbuf + LWS_PRE, text, len);         /* at most TX_MAX: add_send */
	return lws_write(wsi, a->txbuf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len ? -1 : 0;
}

static int wants_write(const app *a)
{
	const conn *c = &a->c;
	return c->close_requested || c->audio_due ||
	       (c->send_next >= 0 && c->send_next < a->opt.n_sends);
}

/* The only place that writes: close first, then control, then audio. */
static int on_writeable(app *a, struct lws *wsi)
{
	conn *c = &a->c;
	if (c->close_requested) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"client exit", 11);
		return -1;
	}
	if (c->send_next >= 0 && c->send_next < a->opt.n_sends) {
		if (write_text(a, wsi, a->opt.sends[c->send_next++]) != 0)
			return -1;
	} else if (c->audio_due) {
		if (write_frame(a, wsi) != 0)
			return -1;
	}
	if (wants_write(a))
		lws_callback_on_writable(wsi);
	return 0;
}

/* ---- receiver: audio ---------------------------------------------------- */

static ssrc_stat *ssrc_get(app *a, uint32_t ssrc)
{
	ssrc_stat *free_slot = NULL;
	for (int i = 0; i < MAX_SSRCS; i++) {
		if (a->ssrcs[i].used && a->ssrcs[i].ssrc == ssrc)
			return &a->ssrcs[i];
		if (!a->ssrcs[i].used && !free_slot)
			free_slot = &a->ssrcs[i];
	}
	if (free_slot) {
		free_slot->used = 1;
		free_slot->ssrc = ssrc;
	}
	return free_slot;
}

static void ssrc_set_user(app *a, json_t *ssrc, json_t *user)
{
	if (!json_is_integer(ssrc) || !json_is_string(user))
		return;
	ssrc_stat *s = ssrc_get(a, (uint32_t)json_integer_value(ssrc));
	if (s)
		snprintf(s->user, sizeof s->user, "%s", json_string_value(user));
}

/* Sequence gaps, wrapping at 16 bits; big jumps are sender restarts. */
static void ssrc_account(ssrc_stat *s, uint16_t seq)
{
	uint16_t ahead = (uint16_t)(seq - s->last_seq);
	if (!s->seq_started || (ahead > RTP_SEQ_RESET_JUMP && ahead < 65536 - RTP_SEQ_RESET_JUMP)) {
		s->seq_started = 1;
		s->last_seq = seq;
	} else if (ahead > 0 && ahead <= RTP_SEQ_RESET_JUMP) {
		s->lost += (uint64_t)(ahead - 1);
		s->last_seq = seq;
	}
	s->frames++;
	s->interval_frames++;
}

/* Offset of the payload, or 0 if the header does not fit. */
static size_t rtp_payload_offset(const unsigned char *p, size_t len)
{
	size_t off = RTP_HEADER_LEN + (size_t)(p[0] & 0x0f) * 4;
	if (p[0] & 0x10) {
		if (off + 4 > len)
			return 0;
		off += 4 + (size_t)((p[off + 2] << 8) | p[off + 3]) * 4;
	}
	return off <= len ? off : 0;
}

static void account_latency(app *a, const unsigned char *p, size_t len)
{
	size_t off = rtp_payload_offset(p, len);
	if (!off || off + 8 > len)
		return;
	int64_t d = mono_us() - (int64_t)get_be64(p + off);
	if (d < 0 || d > LATENCY_MAX_US)
		return;                 /* another host's clock or not our payload */
	a->lat_sum_us += d;
	a->lat_n++;
	if (d > a->lat_max_us)
		a->lat_max_us = d;
}

static void on_audio(app *a, const unsigned char *p, size_t len)
{
	if (len < RTP_HEADER_LEN || (p[0] >> 6) != RTP_VERSION) {
		a->rx_invalid++;
		return;
	}
	a->rx_total++;
	a->rx_interval++;
	a->rx_bytes_interval += len;
	ssrc_stat *s = ssrc_get(a, rtp_ssrc(p));
	if (s)
		ssrc_account(s, rtp_seq(p));
	else
		a->ssrc_overflow++;
	account_latency(a, p, len);
}

static json_t *ssrcs_json(app *a)
{
	json_t *arr = json_array();
	for (int i = 0; i < MAX_SSRCS; i++) {
		ssrc_stat *s = &a->ssrcs[i];
		if (!s->used || !s->interval_frames)
			continue;
		json_t *o = json_object();
		set_int(o, "ssrc", s->ssrc);
		if (s->user[0])
			json_object_set_new(o, "user", json_string(s->user));
		set_int(o, "frames", (long long)s->interval_frames);
		set_int(o, "total", (long long)s->frames);
		set_int(o, "lost", (long long)s->lost);
		json_array_append_new(arr, o);
		s->interval_frames = 0;
	}
	return arr;
}

static void emit_stats(app *a)
{
	json_t *ev = event_new("stats");
	set_int(ev, "rx_frames", (long long)a->rx_interval);
	set_int(ev, "rx_bytes", (long long)a->rx_bytes_interval);
	set_int(ev, "rx_total", (long long)a->rx_total);
	set_int(ev, "tx_frames", (long long)a->tx_interval);
	set_int(ev, "tx_total", (long long)a->tx_total);
	if (a->tx_skipped)
		set_int(ev, "tx_skipped", (long long)a->tx_skipped);
	if (a->rx_invalid)
		set_int(ev, "rx_invalid", (long long)a->rx_invalid);
	if (a->lat_n) {
		set_int(ev, "lat_us_avg", a->lat_sum_us / (int64_t)a->lat_n);
		set_int(ev, "lat_us_max", a->lat_max_us);
	}
	json_object_set_new(ev, "ssrcs", ssrcs_json(a));
	emit(ev);
}

static void on_stats_timer(lws_sorted_usec_list_t *sul)
{
	app *a = lws_container_of(sul, app, sul_stats);
	if (!a->opt.quiet_audio && (a->rx_interval || a->tx_interval))
		emit_stats(a);
	for (int i = 0; i < MAX_SSRCS; i++)
		a->ssrcs[i].interval_frames = 0;
	a->rx_interval = a->rx_bytes_interval = a->tx_interval = 0;
	a->lat_sum_us = a->lat_max_us = 0;
	a->lat_n = 0;
	lws_sul_schedule(a->ctx, 0, &a->sul_stats, on_stats_timer, STATS_US);
}

/* ---- receiver: control -------------------------------------------------- */

static void map_members(app *a, json_t *members)
{
	size_t i;
	json_t *m;
	json_array_foreach(members, i, m)
		ssrc_set_user(a, json_object_get(m, "ssrc"), json_object_get(m, "user"));
}

static void on_welcome(app *a, json_t *j)
{
	conn *c = &a->c;
	const char *resume = json_string_value(json_object_get(j, "resume"));
	if (resume && strlen(resume) <= RESUME_MAX)
		strcpy(a->resume, resume);
	else
		a->resume[0] = '\0';
	map_members(a, json_object_get(j, "members"));
	c->send_next = 0;
	if (wants_write(a))
		lws_callback_on_writable(c->wsi);
}

static void on_control(app *a, json_t *j)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	if (!type)
		return;
	if (strcmp(type, "welcome") == 0) {
		on_welcome(a, j);
	} else if (strcmp(type, "drain") == 0) {
		json_t *ms = json_object_get(j, "reconnect_in_ms");
		a->c.drain_seen = 1;
		a->c.drain_at_us = mono_us() +
			(json_is_integer(ms) && json_integer_value(ms) > 0 ?
			 (int64_t)json_integer_value(ms) * 1000 : 0);
	} else if (strcmp(type, "member") == 0) {
		ssrc_set_user(a, json_object_get(j, "ssrc"), json_object_get(j, "user"));
	} else if (strcmp(type, "joined") == 0) {
		map_members(a, json_object_get(j, "members"));
	}
}

/* One line on stdout: the server's bytes, raw line breaks (only legal
 * between JSON tokens) written as spaces. */
static void on_text(app *a, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fputc(s[i] == '\n' || s[i] == '\r' ? ' ' : s[i], stdout);
	fputc('\n', stdout);
	fflush(stdout);
	json_t *j = json_loadb(s, len, 0, NULL);
	if (j) {
		on_control(a, j);
		json_decref(j);
	}
}

static int msg_append(conn *c, const void *in, size_t len)
{
	if (c->msg_len + len > MAX_MESSAGE)
		return -1;
	if (c->msg_len + len > c->msg_cap) {
		size_t cap = c->msg_cap ? c->msg_cap : 4096;
		while (cap < c->msg_len + len)
			cap *= 2;
		unsigned char *m = realloc(c->msg, cap);
		if (!m)
			return -1;
		c->msg = m;
		c->msg_cap = cap;
	}
	memcpy(c->msg + c->msg_len, in, len);
	c->msg_len += len;
	return 0;
}

static void on_message(app *a, int binary, unsigned char *p, size_t len)
{
	if (binary)
		on_audio(a, p, len);
	else
		on_text(a, (const char *)p, len);
}

/* Reassembles fragments; a whole message in one piece is used in place. */
static int on_receive(app *a, struct lws *wsi, void *in, size_t len)
{
	conn *c = &a->c;
	int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
	if (first && final) {
		on_message(a, lws_frame_is_binary(wsi), in, len);
		return 0;
	}
	if (first) {
		c->msg_len = 0;
		c->msg_binary = lws_frame_is_binary(wsi);
		c->msg_oversize = 0;
	}
	if (!c->msg_oversize && msg_append(c, in, len) != 0)
		c->msg_oversize = 1;
	if (!final)
		return 0;
	if (c->msg_oversize) {
		json_t *ev = event_new("dropped_message");
		json_object_set_new(ev, "reason", json_string("larger than 1 MiB"));
		emit(ev);
		return 0;
	}
	on_message(a, c->msg_binary, c->msg, c->msg_len);
	return 0;
}

/* ---- handshake rejections ----------------------------------------------- */

/* lws 4.1 gives a ws client no way to read the body of a non-101 answer: it
 * swallows it. So while the request is out on a ws:// connection, the main
 * loop waits for the socket itself and peeks (MSG_PEEK) each chunk just
 * before lws reads it; lws then reads everything that is there. */
static void peek_reply(app *a)
{
	conn *c = &a->c;
	int fd = c->wsi ? (int)lws_get_socket_fd(c->wsi) : -1;
	if (fd < 0 || c->reply_len >= sizeof c->reply)
		return;
	struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
	if (poll(&p, 1, 10) <= 0 || !(p.revents & POLLIN))
		return;
	ssize_t n = recv(fd, c->reply + c->reply_len, sizeof c->reply - c->reply_len,
	                 MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		c->reply_len += (size_t)n;
}

/* Body bytes lws left on the socket (the answer came in two pieces). */
static void read_rest(conn *c, int fd, size_t want)
{
	int64_t until = mono_us() + REPLY_WAIT_MS * 1000;
	while (c->reply_len < want && c->reply_len < sizeof c->reply) {
		int64_t left_ms = (until - mono_us()) / 1000;
		struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
		if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0)
			return;
		ssize_t n = recv(fd, c->reply + c->reply_len, sizeof c->reply - c->reply_len,
		                 MSG_DONTWAIT);
		if (n <= 0)
			return;
		c->reply_len += (size_t)n;
	}
}

/* Leaves the rejection body at c->reply, c->reply_len; body_known if whole. */
static void collect_body(app *a, struct lws *wsi)
{
	conn *c = &a->c;
	char cl[24];
	long clen = -1;
	if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		clen = atol(cl);
	char *end = memmem(c->reply, c->reply_len, "\r\n\r\n", 4);
	if (a->tls || !end || clen < 0 || clen > REPLY_MAX) {
		c->reply_len = 0;
		return;
	}
	size_t head = (size_t)(end + 4 - c->reply);
	memmove(c->reply, end + 4, c->reply_len - head);
	c->reply_len -= head;
	if (c->reply_len < (size_t)clen)
		read_rest(c, (int)lws_get_socket_fd(wsi), (size_t)clen);
	c->body_known = c->reply_len == (size_t)clen;
	if (!c->body_known)
		c->reply_len = 0;
}

/* LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP: the answer's headers are in. */
static int on_http_answer(app *a, struct lws *wsi)
{
	conn *c = &a->c;
	unsigned status = lws_http_client_http_response(wsi);
	c->watch_reply = 0;
	if (status != 101) {
		c->http_status = status;
		collect_body(a, wsi);
	}
	return 0;        /* lws then fails the upgrade: CLIENT_CONNECTION_ERROR */
}

static int status_is_final(unsigned status)
{
	return status >= 400 && status < 500 && status != 429;
}

static void on_connect_error(app *a, struct lws *wsi, const char *msg, size_t len)
{
	conn *c = &a->c;
	if (!c->active)
		return;
	c->active = 0;
	c->watch_reply = 0;
	if (!c->http_status && wsi) {
		unsigned status = lws_http_client_http_response(wsi);
		if (status && status != 101)
			c->http_status = status;
	}
	if (a->stopping || a->destroying) {
		set_done(a);
		return;
	}
	json_t *ev = event_new(c->http_status ? "rejected" : "connect_error");
	if (c->http_status) {
		set_int(ev, "status", c->http_status);
		if (c->body_known)
			set_bytes(ev, "body", c->reply, c->reply_len);
		else
			json_object_set_new(ev, "body", json_null());
		json_object_set_new(ev, "final", json_boolean(status_is_final(c->http_status)));
	} else {
		set_bytes(ev, "error", msg ? msg : "unknown", msg ? strnlen(msg, len) : 7);
	}
	emit(ev);
	after_end(a, c->http_status && status_is_final(c->http_status), 1);
}

/* ---- established connection --------------------------------------------- */

static void on_established(app *a, struct lws *wsi)
{
	conn *c = &a->c;
	c->wsi = wsi;
	c->established = 1;
	c->established_us = mono_us();
	c->watch_reply = 0;
	a->connections++;
	json_t *ev = event_new("connected");
	json_object_set_new(ev, "url", json_string(a->opt.url));
	set_int(ev, "connection", a->connections);
	json_object_set_new(ev, "resume", json_boolean(c->resume_offered));
	emit(ev);
	pace_start(a);
}

static void on_peer_close(app *a, const unsigned char *in, size_t len)
{
	conn *c = &a->c;
	c->peer_closed = 1;
	c->peer_code = len >= 2 ? (in[0] << 8) | in[1] : 1005;
	size_t n = len > 2 ? len - 2 : 0;
	if (n >= sizeof c->peer_reason)
		n = sizeof c->peer_reason - 1;
	memcpy(c->peer_reason, in + 2 * (len >= 2), n);
	c->peer_reason[n] = '\0';
}

static int close_is_final(int code)
{
	return code == 1000 || code == 1008 || code == 4001 || code == 4003;
}

static void on_closed(app *a)
{
	conn *c = &a->c;
	if (!c->active)
		return;
	c->active = 0;
	lws_sul_cancel(&a->sul_pace);
	c->audio_due = 0;
	int code = c->close_requested ? 1000 : c->peer_closed ? c->peer_code : 1006;
	const char *by = c->close_requested ? "client" : c->peer_closed ? "server" : "network";
	const char *reason = c->close_requested ? "client exit" :
	                     c->peer_closed ? c->peer_reason : "connection lost";
	int64_t lived_us = mono_us() - c->established_us;
	json_t *ev = event_new("closed");
	set_int(ev, "code", code);
	set_bytes(ev, "reason", reason, strlen(reason));
	json_object_set_new(ev, "by", json_string(by));
	set_int(ev, "lived_ms", lived_us / 1000);
	emit(ev);
	if (lived_us > STABLE_US)
		a->attempt = 0;
	if (a->destroying)
		return;
	after_end(a, close_is_final(code), code == 1000 ? 0 : 1);
}

/* Normally the attempt has ended by now; if lws ended it silently, end it. */
static void on_destroy(app *a, struct lws *wsi)
{
	conn *c = &a->c;
	if (wsi != c->wsi)
		return;
	c->wsi = NULL;
	if (c->active && c->established)
		on_closed(a);
	else if (c->active)
		on_connect_error(a, NULL, "connection ended", 16);
}

static int on_lws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len)
{
	app *a = lws_context_user(lws_get_context(wsi));
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		a->c.watch_reply = !a->tls;      /* the request goes out right after this */
		return 0;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		return on_http_answer(a, wsi);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		on_connect_error(a, wsi, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		on_established(a, wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return on_receive(a, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(a, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		on_peer_close(a, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		on_closed(a);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		on_destroy(a, wsi);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "audiogw-client", on_lws_event, 0, TX_MAX + 64, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ---- stopping and signals ----------------------------------------------- */

static void on_guard_timer(lws_sorted_usec_list_t *sul)
{
	app *a = lws_container_of(sul, app, sul_guard);
	set_done(a);
}

static void on_deadline_timer(lws_sorted_usec_list_t *sul)
{
	begin_stop(lws_container_of(sul, app, sul_deadline), 0);
}

/* Ends the run: an open connection is closed 1000 first. */
static void begin_stop(app *a, int exit_code)
{
	conn *c = &a->c;
	if (a->stopping)
		return;
	a->stopping = 1;
	a->exit_code = exit_code;
	lws_sul_cancel(&a->sul_reconnect);
	lws_sul_cancel(&a->sul_pace);
	if (c->active && c->established && c->wsi) {
		c->close_requested = 1;
		lws_callback_on_writable(c->wsi);
		lws_sul_schedule(a->ctx, 0, &a->sul_guard, on_guard_timer, CLOSE_GUARD_US);
	} else {
		set_done(a);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	g_signals++;
	if (g_ctx)
		lws_cancel_service(g_ctx);   /* wakes the poll */
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void check_signals(app *a)
{
	if (!g_signals)
		return;
	if (!a->stopping)
		begin_stop(a, 0);
	else if (g_signals > 1)
		set_done(a);                 /* a second signal: do not wait */
}

/* ---- main ---------------------------------------------------------------- */

static int create_context(app *a)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	lws_set_log_level(LLL_ERR | (a->opt.verbose ? LLL_WARN | LLL_NOTICE : 0), lws_log_line);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = a;
	info.gid = -1;
	info.uid = -1;
	info.options = a->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
	info.fd_limit_per_thread = 1 + 1 + 1;
	info.max_http_header_data = PATH_LEN + 2048;    /* the request URI lives there */
	info.pt_serv_buf_size = PATH_LEN + 4096;        /* the request is built there */
	a->ctx = lws_create_context(&info);
	if (!a->ctx) {
		fprintf(stderr, "audiogw-client: cannot create the libwebsockets context\n");
		return -1;
	}
	g_ctx = a->ctx;
	return 0;
}

static void start_timers(app *a)
{
	lws_sul_schedule(a->ctx, 0, &a->sul_stats, on_stats_timer, STATS_US);
	if (a->opt.duration > 0)
		lws_sul_schedule(a->ctx, 0, &a->sul_deadline, on_deadline_timer,
		                 (lws_usec_t)(a->opt.duration * 1e6));
}

static void init_sender(app *a)
{
	a->seq = (uint16_t)randombytes_random();
	a->ts = randombytes_random();
	if (a->opt.send_rate)
		a->ts_step = (uint32_t)((RTP_CLOCK_HZ + a->opt.send_rate / 2) / a->opt.send_rate);
}

static void run(app *a)
{
	connect_now(a);
	while (!a->done) {
		int watching = a->c.watch_reply && a->c.wsi;
		if (watching)
			peek_reply(a);
		if (lws_service(a->ctx, watching ? -1 : 0) < 0)
			break;
		check_signals(a);
	}
}

static void emit_exit(app *a)
{
	json_t *ev = event_new("exit");
	set_int(ev, "code", a->exit_code);
	set_int(ev, "tx_frames", (long long)a->tx_total);
	set_int(ev, "rx_frames", (long long)a->rx_total);
	emit(ev);
}

int main(int argc, char **argv)
{
	app *a = &g_app;
	int rc = parse_options(&a->opt, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (sodium_init() < 0) {
		fprintf(stderr, "audiogw-client: libsodium failed to initialise\n");
		return 1;
	}
	if (parse_url(a) != 0)
		return 2;
	if (setup_token(a) != 0)
		return 2;
	init_sender(a);
	install_signals();
	if (create_context(a) != 0)
		return 1;
	start_timers(a);
	run(a);
	a->destroying = 1;
	g_ctx = NULL;
	lws_context_destroy(a->ctx);
	emit_exit(a);
	sodium_memzero(a->secret, sizeof a->secret);
	sodium_memzero(a->token, sizeof a->token);
	free(a->c.msg);
	free(a->opt.sends);
	return a->exit_code;
}
