/* audiogw-play.c: streams an audio file into an audiogwd room as a speaker.
 *
 *   audiogw-play [--url ws://HOST:PORT/v1/audio] (--token JWT | --token-file F)
 *                [--ptime MS] [--verbose] FILE.opus|FILE.wav
 *
 * The file is read whole first and cut into RTP packets (RFC 3550), each
 * with its position in the file in the codec's clock:
 *   Ogg Opus (RFC 7845): one packet per Opus packet (OpusHead and OpusTags
 *     skipped), PT 111, timestamps from the packet durations; one-byte
 *     concealment packets (what audiogwd's recorder writes for gaps) are not
 *     sent, they only advance the clock: a pause stays a pause.
 *   WAV PCM 16-bit 48 kHz mono: PT 96 (L16, big-endian), 10 ms packets by
 *     default (960 bytes: 20 ms would exceed the default max_frame_bytes).
 *   WAV mu-law / A-law 8 kHz mono: PT 0 / 8, 20 ms (160-byte) packets.
 * It connects like audiogw-client (libwebsockets client, token in
 * ?token=), waits for the welcome, then sends each packet when its time
 * comes: start + position / clock rate, so the room hears the file in real
 * time. Sequence numbers and timestamps start at random values; the SSRC is
 * 0 (the gateway sets the speaker's). At the end of the file it closes the
 * connection with 1000 and exits 0. Progress and errors go to stderr, one
 * JSON object per line. Exit status: 0 done, 1 connection or server
 * failure, 2 bad usage or an unreadable file. */
#include "downstream/media.h"
#include "proto/rtp.h"

#include <libwebsockets.h>
#include <jansson.h>
#include <ogg/ogg.h>
#include <sodium.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_URL "ws://127.0.0.1:8080/v1/audio"
#define MAX_FILE (1LL << 31)
#define MAX_PACKET 65000
#define TX_MAX (MAX_PACKET + RTP_HEADER_LEN)
#define CLOSE_GUARD_US (3 * 1000000)
#define MAX_BEHIND_US 200000        /* later than this: the pacing restarts from now */
#define TOKEN_MAX 8192

typedef struct packet {
	uint32_t pos;                   /* in the clock of the codec, from the file's start */
	uint32_t off, len;              /* into the payload store */
	int gap_before;                 /* marker bit: first packet after silence */
} packet;

typedef struct app {
	/* options */
	const char *url, *token_opt, *token_file, *file;
	long ptime_ms;
	int verbose, insecure;
	/* the file */
	int pt;
	uint32_t rate;
	packet *pk;
	size_t n, cap;
	uint8_t *store;
	size_t store_len, store_cap;
	/* the connection */
	char url_buf[2048], base[2048], path[4 * TOKEN_MAX], host_hdr[512], token[TOKEN_MAX + 1];
	const char *address;
	int port, tls;
	struct lws_context *ctx;
	struct lws *wsi;
	lws_sorted_usec_list_t sul_pace, sul_guard;
	int established, welcomed, close_requested, done, exit_code;
	unsigned http_status;
	char *msg;
	size_t msg_len, msg_cap;
	/* sending */
	size_t next;
	int64_t start_us;
	uint16_t seq;
	uint32_t ts0;
	uint64_t sent, skipped_late;
	unsigned char txbuf[LWS_PRE + TX_MAX];
} app;

static app g;
static volatile sig_atomic_t g_signal;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void event(const char *name, const char *fmt, ...)
{
	json_t *ev = json_pack("{s:s}", "event", name);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		json_t *more = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
		if (more)
			json_object_update(ev, more);
		json_decref(more);
	}
	char *s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (s)
		fprintf(stderr, "%s\n", s);
	free(s);
	json_decref(ev);
}

static int fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("audiogw-play: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 2;
}

/* ---- the file ---- */

static int add_packet(app *a, uint32_t pos, const uint8_t *p, size_t len, int gap_before)
{
	if (len > MAX_PACKET)
		return fail_usage("%s: a packet of %zu bytes is too large", a->file, len);
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 1024;
		packet *n = realloc(a->pk, cap * sizeof *n);
		if (!n)
			return fail_usage("out of memory");
		a->pk = n;
		a->cap = cap;
	}
	if (a->store_len + len > a->store_cap) {
		size_t cap = a->store_cap ? a->store_cap : 65536;
		while (cap < a->store_len + len)
			cap *= 2;
		uint8_t *n = realloc(a->store, cap);
		if (!n)
			return fail_usage("out of memory");
		a->store = n;
		a->store_cap = cap;
	}
	memcpy(a->store + a->store_len, p, len);
	a->pk[a->n++] = (packet){ pos, (uint32_t)a->store_len, (uint32_t)len, gap_before };
	a->store_len += len;
	return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			if ((long long)cap > MAX_FILE) {
				errno = EFBIG;
				break;
			}
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f))
				break;
			fclose(f);
			*len = n;
			return buf ? buf : malloc(1);
		}
	}
	int e = errno;
	free(buf);
	fclose(f);
	errno = e;
	return NULL;
}

/* Ogg Opus: the first logical stream's packets after its two headers. */
static int load_ogg(app *a, const uint8_t *data, size_t len)
{
	ogg_sync_state oy;
	ogg_stream_state os;
	ogg_page og;
	ogg_packet op;
	int have_stream = 0, packets = 0, rc = 0, gap = 0;
	int64_t pos = 0;
	ogg_sync_init(&oy);
	char *buf = ogg_sync_buffer(&oy, (long)len);
	memcpy(buf, data, len);
	ogg_sync_wrote(&oy, (long)len);
	while (rc == 0 && ogg_sync_pageout(&oy, &og) == 1) {
		if (!have_stream) {
			ogg_stream_init(&os, ogg_page_serialno(&og));
			have_stream = 1;
		}
		if (ogg_page_serialno(&og) != os.serialno || ogg_stream_pagein(&os, &og) != 0)
			continue;   /* another logical stream */
		while (rc == 0 && ogg_stream_packetout(&os, &op) == 1) {
			const uint8_t *p = op.packet;
			size_t n = (size_t)op.bytes;
			if (packets == 0 && (n < 19 || memcmp(p, "OpusHead", 8)))
				rc = fail_usage("%s: not an Ogg Opus file (no OpusHead)", a->file);
			else if (packets == 1 && (n < 8 || memcmp(p, "OpusTags", 8)))
				rc = fail_usage("%s: not an Ogg Opus file (no OpusTags)", a->file);
			else if (packets >= 2) {
				int dur = opus_packet_samples(p, n);
				if (dur <= 0) {
					dur = 960;   /* malformed: skipped, its time kept */
					gap = 1;
				} else if (n == 1) {
					gap = 1;     /* concealment (a recorded gap): not sent */
				} else {
					if (pos > 0xffffffffLL)
						rc = fail_usage("%s: longer than 24 hours", a->file);
					else
						rc = add_packet(a, (uint32_t)pos, p, n, gap || a->n == 0);
					gap = 0;
				}
				pos += dur;
			}
			packets++;
		}
	}
	if (have_stream)
		ogg_stream_clear(&os);
	ogg_sync_clear(&oy);
	if (rc == 0 && packets < 2)
		rc = fail_usage("%s: not an Ogg Opus file", a->file);
	a->pt = PT_OPUS;
	a->rate = 48000;
	return rc;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static int load_wav(app *a, const uint8_t *d, size_t len)
{
	if (len < 12 || memcmp(d, "RIFF", 4) || memcmp(d + 8, "WAVE", 4))
		return fail_usage("%s: not a WAV file", a->file);
	const uint8_t *fmt = NULL, *data = NULL;
	size_t fmt_len = 0, data_len = 0;
	for (size_t off = 12; off + 8 <= len;) {
		size_t clen = rd32(d + off + 4), body = off + 8;
		if (clen > len - body)
			clen = len - body;   /* a file cut short, or sizes never fixed up */
		if (!memcmp(d + off, "fmt ", 4)) {
			fmt = d + body;
			fmt_len = clen;
		} else if (!memcmp(d + off, "data", 4)) {
			data = d + body;
			data_len = clen;
			break;
		}
		off = body + clen + (clen & 1);
	}
	if (!fmt || fmt_len < 16 || !data)
		return fail_usage("%s: a WAV file without fmt or data chunk", a->file);
	uint16_t tag = rd16(fmt), channels = rd16(fmt + 2), bits = rd16(fmt + 14);
	uint32_t rate = rd32(fmt + 4);
	if (tag == 0xfffe && fmt_len >= 26)      /* WAVE_FORMAT_EXTENSIBLE: the subformat */
		tag = rd16(fmt + 24);
	size_t frame;
	if (tag == WAV_PCM && bits == 16 && channels == 1 && rate == 48000) {
		a->pt = PT_L16;
		a->rate = 48000;
		frame = (size_t)(a->ptime_ms ? a->ptime_ms : 10) * 48 * 2;
	} else if ((tag == WAV_MULAW || tag == WAV_ALAW) && bits == 8 && channels == 1 && rate == 8000) {
		a->pt = tag == WAV_MULAW ? PT_PCMU : PT_PCMA;
		a->rate = 8000;
		frame = (size_t)(a->ptime_ms ? a->ptime_ms : 20) * 8;
	} else {
		return fail_usage("%s: WAV format %u, %u channels, %u Hz, %u bits: only 16-bit PCM "
		                  "48 kHz mono and 8-bit mu-law or A-law 8 kHz mono are streamed "
		                  "(convert with: ffmpeg -i IN -ac 1 -ar 48000 -c:a pcm_s16le OUT.wav)",
		                  a->file, tag, channels, rate, bits);
	}
	uint8_t buf[MAX_PACKET];
	if (frame > sizeof buf)
		return fail_usage("--ptime too large for this file");
	size_t bytes_per_sample = a->pt == PT_L16 ? 2 : 1;
	for (size_t off = 0; off + bytes_per_sample <= data_len; off += frame) {
		size_t n = data_len - off < frame ? data_len - off : frame;
		n -= n % bytes_per_sample;
		if (a->pt == PT_L16)
			l16_be_to_le(buf, data + off, n);   /* the same swap, the other way */
		else
			memcpy(buf, data + off, n);
		int rc = add_packet(a, (uint32_t)(off / bytes_per_sample), buf, n, off == 0);
		if (rc)
			return rc;
	}
	return 0;
}

static int load(app *a)
{
	size_t len;
	uint8_t *d = read_file(a->file, &len);
	if (!d)
		return fail_usage("%s: %s", a->file, strerror(errno));
	int rc = len >= 4 && !memcmp(d, "OggS", 4) ? load_ogg(a, d, len)
	       : len >= 4 && !memcmp(d, "RIFF", 4) ? load_wav(a, d, len)
	       : fail_usage("%s: neither Ogg Opus nor WAV", a->file);
	free(d);
	if (rc == 0 && a->n == 0)
		rc = fail_usage("%s: no audio in it", a->file);
	return rc;
}

/* ---- connection ---- */

static void set_done(app *a, int code)
{
	a->exit_code = code;
	a->done = 1;
	if (a->ctx)
		lws_cancel_service(a->ctx);
}

static int64_t due_us(const app *a, size_t i)
{
	return a->start_us + (int64_t)((uint64_t)a->pk[i].pos * 1000000u / a->rate);
}

static void on_pace(lws_sorted_usec_list_t *sul)
{
	app *a = lws_container_of(sul, app, sul_pace);
	if (a->wsi && !a->close_requested)
		lws_callback_on_writable(a->wsi);
}

static void schedule_next(app *a)
{
	if (a->next >= a->n) {
		a->close_requested = 1;
		lws_callback_on_writable(a->wsi);
		return;
	}
	int64_t wait = due_us(a, a->next) - mono_us();
	lws_sul_schedule(a->ctx, 0, &a->sul_pace, on_pace, wait > 0 ? (lws_usec_t)wait : 1);
}

static void build_path(app *a)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t pos = (size_t)snprintf(a->path, sizeof a->path, "%s%ctoken=", a->base,
	                              strchr(a->base, '?') ? '&' : '?');
	for (const char *s = a->token; *s && pos + 4 < sizeof a->path; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			a->path[pos++] = (char)c;
		} else {
			a->path[pos++] = '%';
			a->path[pos++] = hex[c >> 4];
			a->path[pos++] = hex[c & 15];
		}
	}
	a->path[pos] = '\0';
}

static int send_packet(app *a, struct lws *wsi)
{
	const packet *p = &a->pk[a->next];
	unsigned char *b = a->txbuf + LWS_PRE;
	b[0] = 0x80;
	b[1] = (unsigned char)((p->gap_before ? 0x80 : 0) | a->pt);
	b[2] = (unsigned char)(a->seq >> 8);
	b[3] = (unsigned char)a->seq;
	uint32_t ts = a->ts0 + p->pos;
	b[4] = (unsigned char)(ts >> 24);
	b[5] = (unsigned char)(ts >> 16);
	b[6] = (unsigned char)(ts >> 8);
	b[7] = (unsigned char)ts;
	memset(b + 8, 0, 4);
	memcpy(b + RTP_HEADER_LEN, a->store + p->off, p->len);
	size_t len = RTP_HEADER_LEN + p->len;
	if (lws_write(wsi, b, len, LWS_WRITE_BINARY) < (int)len)
		return -1;
	a->seq++;
	a->next++;
	a->sent++;
	return 0;
}

static int on_writeable(app *a, struct lws *wsi)
{
	if (a->close_requested) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"end of file", 11);
		return -1;
	}
	if (!a->welcomed || a->next >= a->n)
		return 0;
	int64_t now = mono_us();
	int64_t late = now - due_us(a, a->next);
	if (late < 0) {
		schedule_next(a);
		return 0;
	}
	if (late > MAX_BEHIND_US) {   /* we were stopped (or starved): no burst to catch up */
		a->start_us += late;
		a->skipped_late++;
	}
	if (send_packet(a, wsi) < 0)
		return -1;
	if (a->next < a->n && due_us(a, a->next) <= mono_us())
		lws_callback_on_writable(wsi);
	else
		schedule_next(a);
	return 0;
}

static void on_text(app *a, const char *s, size_t len)
{
	json_t *j = json_loadb(s, len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	if (type && !strcmp(type, "welcome") && !a->welcomed) {
		a->welcomed = 1;
		event("welcome", "{s:O?, s:O?, s:O?, s:I, s:f}", "room", json_object_get(j, "room"),
		      "user", json_object_get(j, "user"), "ssrc", json_object_get(j, "ssrc"),
		      "packets", (json_int_t)a->n,
		      "seconds", (double)(a->pk[a->n - 1].pos) / a->rate);
		a->start_us = mono_us();
		lws_callback_on_writable(a->wsi);
	} else if (type && (!strcmp(type, "error") || !strcmp(type, "kicked") || !strcmp(type, "drain") ||
	                    a->verbose)) {
		fprintf(stderr, "%.*s\n", (int)len, s);
	}
	json_decref(j);
}

static int on_receive(app *a, struct lws *wsi, void *in, size_t len)
{
	if (lws_frame_is_binary(wsi))
		return 0;   /* the others' audio: not ours to play */
	if (lws_is_first_fragment(wsi))
		a->msg_len = 0;
	if (a->msg_len + len <= (1 << 20)) {
		if (a->msg_len + len > a->msg_cap) {
			size_t cap = a->msg_cap ? a->msg_cap : 4096;
			while (cap < a->msg_len + len)
				cap *= 2;
			char *m = realloc(a->msg, cap);
			if (!m)
				return -1;
			a->msg = m;
			a->msg_cap = cap;
		}
		memcpy(a->msg + a->msg_len, in, len);
		a->msg_len += len;
	}
	if (lws_is_final_fragment(wsi))
		on_text(a, a->msg, a->msg_len);
	return 0;
}

static void on_guard(lws_sorted_usec_list_t *sul)
{
	set_done(lws_container_of(sul, app, sul_guard), 0);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	app *a = lws_context_user(lws_get_context(wsi));
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		a->http_status = lws_http_client_http_response(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (a->http_status && a->http_status != 101)
			event("rejected", "{s:i}", "status", (int)a->http_status);
		else
			event("connect_error", "{s:s#}", "error", in ? (const char *)in : "unknown",
			      in ? strnlen(in, len) : (size_t)7);
		a->wsi = NULL;
		set_done(a, 1);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		a->established = 1;
		a->wsi = wsi;
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return on_receive(a, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (on_writeable(a, wsi) < 0) {
			if (a->close_requested)
				lws_sul_schedule(a->ctx, 0, &a->sul_guard, on_guard, CLOSE_GUARD_US);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
		int code = len >= 2 ? ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1] : 1005;
		if (!a->close_requested)
			event("closed_by_server", "{s:i, s:s#}", "code", code, "reason",
			      len > 2 ? (const char *)in + 2 : "", len > 2 ? len - 2 : (size_t)0);
		return 0;
	}
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		a->wsi = NULL;
		if (!a->done) {
			int ok = a->close_requested && a->next >= a->n;
			if (!ok)
				event("closed", "{s:I, s:I}", "sent", (json_int_t)a->sent,
				      "left", (json_int_t)(a->n - a->next));
			set_done(a, ok ? 0 : 1);
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "audiogw-play", callback, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static int parse_url(app *a)
{
	const char *prot, *ads, *path;
	int port;
	if (strlen(a->url) >= sizeof a->url_buf)
		return fail_usage("--url too long");
	strcpy(a->url_buf, a->url);
	if (!strstr(a->url_buf, "://") || lws_parse_uri(a->url_buf, &prot, &ads, &port, &path))
		return fail_usage("bad --url \"%s\"", a->url);
	if (!strcmp(prot, "ws"))
		a->tls = 0;
	else if (!strcmp(prot, "wss"))
		a->tls = 1;
	else
		return fail_usage("--url must be ws:// or wss://, not \"%s\"", a->url);
	a->address = ads;
	a->port = port;
	snprintf(a->base, sizeof a->base, "/%s", path);
	int v6 = strchr(ads, ':') != NULL;
	snprintf(a->host_hdr, sizeof a->host_hdr, v6 ? "[%s]:%d" : "%s:%d", ads, port);
	return 0;
}

static int read_token(app *a)
{
	if (!!a->token_opt == !!a->token_file)
		return fail_usage("give exactly one of --token and --token-file");
	if (a->token_opt) {
		if (strlen(a->token_opt) > TOKEN_MAX)
			return fail_usage("--token too long");
		strcpy(a->token, a->token_opt);
		return 0;
	}
	FILE *f = fopen(a->token_file, "r");
	if (!f)
		return fail_usage("%s: %s", a->token_file, strerror(errno));
	size_t n = fread(a->token, 1, TOKEN_MAX, f);
	fclose(f);
	a->token[n] = '\0';
	while (n && (a->token[n - 1] == '\n' || a->token[n - 1] == '\r' || a->token[n - 1] == ' '))
		a->token[--n] = '\0';
	return n ? 0 : fail_usage("%s: empty", a->token_file);
}

static void usage(FILE *f)
{
	fputs("usage: audiogw-play [--url ws://HOST:PORT/v1/audio] (--token JWT | --token-file FILE)\n"
	      "                    [--ptime MS] [--insecure] [--verbose] FILE\n"
	      "\n"
	      "Streams FILE into the token's room as a speaker, in real time, then closes (1000).\n"
	      "FILE: Ogg Opus (.opus), or WAV: 16-bit PCM 48 kHz mono (sent as L16, PT 96) or\n"
	      "8-bit mu-law / A-law 8 kHz mono (PCMU / PCMA, PT 0 / 8).\n"
	      "  --url URL          endpoint (default " DEFAULT_URL ")\n"
	      "  --token JWT        the client token; --token-file FILE reads it from a file\n"
	      "  --ptime MS         WAV packet duration (default 10 for L16, 20 for G.711)\n"
	      "  --insecure         wss://: accept self-signed certificates\n"
	      "  --verbose          print the server's messages\n"
	      "exit status: 0 the whole file was sent, 1 connection failure, 2 bad usage or file\n", f);
}

static void on_signal(int sig)
{
	(void)sig;
	g_signal = 1;
}

int main(int argc, char **argv)
{
	app *a = &g;
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' }, { "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' }, { "ptime", required_argument, NULL, 'p' },
		{ "insecure", no_argument, NULL, 'k' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	a->url = DEFAULT_URL;
	int c;
	while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		switch (c) {
		case 'u': a->url = optarg; break;
		case 't': a->token_opt = optarg; break;
		case 'T': a->token_file = optarg; break;
		case 'k': a->insecure = 1; break;
		case 'v': a->verbose = 1; break;
		case 'p': {
			char *end;
			a->ptime_ms = strtol(optarg, &end, 10);
			if (*end || a->ptime_ms < 1 || a->ptime_ms > 120)
				return fail_usage("--ptime: 1 to 120 milliseconds");
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	a->file = argv[optind];
	int rc;
	if ((rc = read_token(a)) || (rc = parse_url(a)) || (rc = load(a)))
		return rc;
	if (sodium_init() < 0)
		return 1;
	a->seq = (uint16_t)randombytes_random();
	a->ts0 = randombytes_random();
	build_path(a);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	lws_set_log_level(a->verbose ? LLL_ERR | LLL_WARN : LLL_ERR, NULL);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = a;
	info.gid = -1;
	info.uid = -1;
	info.options = a->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
	info.max_http_header_data = (unsigned short)(sizeof a->path < 32768 ? sizeof a->path + 2048 : 32768);
	info.pt_serv_buf_size = sizeof a->path + 4096;
	if (!(a->ctx = lws_create_context(&info))) {
		fprintf(stderr, "audiogw-play: cannot create the libwebsockets context\n");
		return 1;
	}
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof ci);
	ci.context = a->ctx;
	ci.address = a->address;
	ci.port = a->port;
	ci.path = a->path;
	ci.host = a->host_hdr;
	ci.ssl_connection = !a->tls ? 0 : LCCSCF_USE_SSL | (a->insecure ?
		LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED : 0);
	if (!lws_client_connect_via_info(&ci) && !a->done) {
		event("connect_error", "{s:s}", "error", "cannot start the connection");
		a->exit_code = 1;
		a->done = 1;
	}
	while (!a->done) {
		if (lws_service(a->ctx, 0) < 0)
			break;
		if (g_signal && !a->close_requested) {
			a->close_requested = 1;
			if (a->wsi)
				lws_callback_on_writable(a->wsi);
			else
				set_done(a, 1);
		}
	}
	lws_context_destroy(a->ctx);
	if (a->exit_code == 0)
		event("done", "{s:s, s:I, s:f, s:I}", "file", a->file, "packets", (json_int_t)a->sent,
		      "seconds", (double)(mono_us() - a->start_us) / 1e6, "late_restarts",
		      (json_int_t)a->skipped_late);
	free(a->pk);
	free(a->store);
	free(a->msg);
	return g_signal && a->exit_code == 0 ? 1 : a->exit_code;
}
