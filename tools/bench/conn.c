/* conn.c: one client connection of an audiogw-bench load process: a
 * non-blocking TCP connect from its 127.0.0.x source, the HTTP/1.1 upgrade
 * (status 101 and a Sec-WebSocket-Accept header are required; the accept
 * value itself is not verified: that needs SHA-1, which libsodium lacks),
 * masked client frames, and the server's frames: pings are answered, close
 * codes counted, "welcome" gives the connection its ssrc and worker,
 * "drain" delays the reconnect, binary RTP frames are timed by the send
 * time the sender put at payload offset 0 (RTP offset 12).
 *
 * Frame payload after the 12-byte RTP header: send time (CLOCK_MONOTONIC ns,
 * big-endian, 8 bytes), flags (bit 0: sent inside the measured window),
 * sender's global connection index (4), sender's global room index (4),
 * zeros up to --payload bytes.
 *
 * Every write goes through conn_write: a frame is written whole or kept
 * whole in a per-connection backlog (bounded; audio beyond it is dropped
 * and counted). A connection that breaks is closed and, unless the run is
 * ending, retried with exponential backoff and full jitter. */
#include "load.h"
#include "proto/rtp.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define OP_CONT  0x0
#define OP_TEXT  0x1
#define OP_BIN   0x2
#define OP_CLOSE 0x8
#define OP_PING  0x9
#define OP_PONG  0xA
#define CTRL_BACKLOG_MAX (WBUF_MAX + 16384)   /* control frames may exceed the audio bound */

/* ---- byte order -------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
	return ((uint64_t)rtp_read32(p) << 32) | rtp_read32(p + 4);
}

/* ---- buffers ----------------------------------------------------------------- */

static int buf_append(uint8_t **buf, uint32_t *len, uint32_t *cap, const uint8_t *d, size_t n,
	size_t max)
{
	if (*len + n > max)
		return -1;
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < *len + n)
			c *= 2;
		uint8_t *nb = realloc(*buf, c);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = (uint32_t)c;
	}
	memcpy(*buf + *len, d, n);
	*len += (uint32_t)n;
	return 0;
}

static void conn_free_bufs(conn *c)
{
	free(c->rbuf);
	free(c->wbuf);
	free(c->frag);
	c->rbuf = c->wbuf = c->frag = NULL;
	c->rlen = c->rcap = c->wlen = c->wcap = c->flen = c->fcap = 0;
	c->frag_op = 0;
}

static uint64_t conn_tag(lp *p, conn *c)
{
	return ((uint64_t)c->gen << 32) | (uint64_t)(c - p->c);
}

static void ep_want_out(lp *p, conn *c, int want)
{
	if (c->fd < 0 || c->out_armed == want)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0u) };
	ev.data.u64 = conn_tag(p, c);
	if (epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->out_armed = (uint8_t)want;
}

/* ---- dropping and retrying -------------------------------------------------- */

static int64_t backoff_ns(lp *p, conn *c)
{
	uint32_t shift = c->attempts < 16 ? c->attempts : 16;
	uint64_t cap = (uint64_t)BACKOFF_BASE_MS << shift;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	c->attempts++;
	return (int64_t)(lp_rand(p) % (cap + 1)) * 1000000;
}

/* Closes the socket; schedules the next attempt unless the run is ending. */
static void conn_drop(lp *p, conn *c, int64_t now)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->gen++;
	c->out_armed = 0;
	conn_free_bufs(c);
	if (c->state == C_OPEN) {
		c->t_down = now;
		if (p->phase == PH_WINDOW && c->worker >= 0 && c->worker < BENCH_MAX_WORKERS)
			p->res->worker_dropped[c->worker]++;
	}
	if (p->phase >= PH_GRACE) {
		c->tgen++;
		lp_set_state(p, c, C_DONE);
		return;
	}
	int64_t when = now + backoff_ns(p, c);
	if (c->drain_at) {
		when = c->drain_at > now ? c->drain_at : now;
		c->drain_at = 0;
	}
	lp_set_state(p, c, C_BACKOFF);
	lp_timer_set(p, c, when);
}

static void resolve_initial(lp *p, conn *c, int ok, int64_t now)
{
	if (!c->initial)
		return;
	c->initial = 0;
	if (ok) {
		p->res->init_ok++;
		if (!p->res->first_ok_ns)
			p->res->first_ok_ns = now;
		p->res->last_ok_ns = now;
	} else {
		p->res->init_fail++;
	}
	atomic_fetch_add_explicit(&p->res->resolved, 1, memory_order_relaxed);
}

static void attempt_failed(lp *p, conn *c, int64_t now)
{
	resolve_initial(p, c, 0, now);
	if (p->phase == PH_WINDOW)
		p->res->refused_window++;
	conn_drop(p, c, now);
}

/* The socket broke (err = errno, 0 = end of stream). */
static void conn_broken(lp *p, conn *c, int64_t now, int err)
{
	if (c->state == C_CONNECTING) {
		kv_add(&p->res->conn_errno, err, 1);
		attempt_failed(p, c, now);
		return;
	}
	if (c->state == C_HANDSHAKE) {
		p->res->hs_fail++;
		kv_add(&p->res->hs_status, 0, 1);   /* no (complete) answer */
		attempt_failed(p, c, now);
		return;
	}
	p->res->lost++;
	if (p->phase == PH_WINDOW)
		p->res->lost_window++;
	conn_drop(p, c, now);
}

static void ws_error(lp *p, conn *c, int64_t now)
{
	p->res->ws_errors++;
	conn_drop(p, c, now);
}

/* ---- writing ---------------------------------------------------------------- */

/* 0 written or queued, 1 dropped (droppable and the backlog is full),
 * -1 the connection broke (already dropped). */
static int conn_write(lp *p, conn *c, const uint8_t *d, size_t n, int droppable, int64_t now)
{
	if (c->wlen) {
		if (droppable && c->wlen + n > WBUF_MAX)
			return 1;
		if (buf_append(&c->wbuf, &c->wlen, &c->wcap, d, n, CTRL_BACKLOG_MAX) < 0) {
			conn_broken(p, c, now, ENOBUFS);
			return -1;
		}
		return 0;
	}
	ssize_t w;
	do
		w = send(c->fd, d, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_broken(p, c, now, errno);
			return -1;
		}
		w = 0;
	}
	if ((size_t)w == n)
		return 0;
	if (buf_append(&c->wbuf, &c->wlen, &c->wcap, d + w, n - (size_t)w, CTRL_BACKLOG_MAX) < 0) {
		conn_broken(p, c, now, ENOBUFS);
		return -1;
	}
	ep_want_out(p, c, 1);
	return 0;
}

static void conn_flush(lp *p, conn *c, int64_t now)
{
	if (!c->wlen) {
		ep_want_out(p, c, 0);
		return;
	}
	ssize_t w = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_broken(p, c, now, errno);
		return;
	}
	memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
	c->wlen -= (uint32_t)w;
	if (!c->wlen) {
		free(c->wbuf);
		c->wbuf = NULL;
		c->wcap = 0;
		ep_want_out(p, c, 0);
	}
}

/* Writes a client frame header with a random mask into f; returns its
 * length. The mask key is the last 4 bytes. */
static size_t ws_header(lp *p, uint8_t *f, int op, size_t len)
{
	size_t h = 2;
	f[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		f[1] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		f[1] = 0x80 | 126;
		f[2] = (uint8_t)(len >> 8);
		f[3] = (uint8_t)len;
		h = 4;
	} else {
		f[1] = 0x80 | 127;
		put_be64(f + 2, len);
		h = 10;
	}
	put_be32(f + h, (uint32_t)lp_rand(p));
	return h + 4;
}

static void ws_mask(uint8_t *d, size_t n, const uint8_t key[4])
{
	for (size_t i = 0; i < n; i++)
		d[i] ^= key[i & 3];
}

static size_t control_frame(lp *p, uint8_t *f, int op, const uint8_t *d, size_t n)
{
	if (n > 125)
		n = 125;
	size_t h = ws_header(p, f, op, n);
	memcpy(f + h, d, n);
	ws_mask(f + h, n, f + h - 4);
	return h + n;
}

static int send_control(lp *p, conn *c, int op, const uint8_t *d, size_t n, int64_t now)
{
	uint8_t f[6 + 125];
	size_t len = control_frame(p, f, op, d, n);
	return conn_write(p, c, f, len, 0, now) < 0 ? -1 : 0;
}

/* A close frame right before closing the socket: best effort, no backlog. */
static void send_close_now(lp *p, conn *c, const uint8_t *code, size_t n)
{
	uint8_t f[6 + 125];
	size_t len = control_frame(p, f, OP_CLOSE, code, n);
	if (c->fd >= 0 && !c->wlen && send(c->fd, f, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;
}

void conn_send_audio(lp *p, conn *c, int in_window)
{
	size_t plen = RTP_HEADER_LEN + p->o->payload;
	size_t h = ws_header(p, p->tx, OP_BIN, plen);
	uint8_t *r = p->tx + h;
	memset(r, 0, plen);
	r[0] = 0x80;                       /* V=2 */
	r[1] = 111;                        /* Opus */
	r[2] = (uint8_t)(c->seq >> 8);
	r[3] = (uint8_t)c->seq;
	put_be32(r + 4, c->rtp_ts);
	put_be32(r + 8, c->ssrc);
	int64_t now = now_ns();
	put_be64(r + 12, (uint64_t)now);
	r[20] = (uint8_t)(in_window ? 1 : 0);
	put_be32(r + 21, c->idx);
	put_be32(r + 25, c->room + p->first_room);
	ws_mask(r, plen, p->tx + h - 4);
	int w = conn_write(p, c, p->tx, h + plen, 1, now);
	if (w < 0)
		return;
	if (w > 0) {
		p->res->send_dropped++;
		return;
	}
	c->seq++;
	c->rtp_ts += (uint32_t)(48000.0 / p->o->rate);
	p->res->sent_total++;
	if (in_window) {
		p->res->sent_window++;
		p->res->expected += p->room_open[c->room] - 1;
	}
}

/* ---- connecting --------------------------------------------------------------- */

static int build_request(lp *p, conn *c)
{
	const bench_opts *o = p->o;
	uint8_t key[16];
	for (int i = 0; i < 16; i += 8) {
		uint64_t r = lp_rand(p);
		memcpy(key + i, &r, 8);
	}
	char k64[32];
	sodium_bin2base64(k64, sizeof k64, key, sizeof key, sodium_base64_VARIANT_ORIGINAL);
	int n = snprintf(p->req, sizeof p->req,
		"GET %s%stoken=%s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		o->path, strchr(o->path, '?') ? "&" : "?", p->tokens + p->tok_off[c - p->c],
		o->host, (unsigned)o->port, k64);
	return n > 0 && (size_t)n < sizeof p->req ? n : -1;
}

void conn_start(lp *p, conn *c, int64_t now)
{
	const bench_opts *o = p->o;
	c->t_attempt = now;
	lp_set_state(p, c, C_CONNECTING);
	lp_timer_set(p, c, now + ATTEMPT_TIMEOUT_NS);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_broken(p, c, now, errno);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = o->src[c->idx % (uint32_t)o->nsrc] };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(o->port), .sin_addr = o->dst };
	if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0 ||
	    (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
		conn_broken(p, c, now, errno);
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
	ev.data.u64 = conn_tag(p, c);
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		conn_broken(p, c, now, errno);
		return;
	}
	c->out_armed = 1;
}

static void conn_connected(lp *p, conn *c, int64_t now)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn_broken(p, c, now, err);
		return;
	}
	int n = build_request(p, c);
	if (n < 0) {
		conn_broken(p, c, now, ENAMETOOLONG);
		return;
	}
	lp_set_state(p, c, C_HANDSHAKE);
	if (conn_write(p, c, (const uint8_t *)p->req, (size_t)n, 0, now) == 0 && !c->wlen)
		ep_want_out(p, c, 0);
}

void conn_timeout(lp *p, conn *c, int64_t now)
{
	p->res->hs_timeout++;
	if (c->state == C_UPGRADED) {
		conn_drop(p, c, now);       /* 101 but no welcome */
		return;
	}
	if (c->state == C_HANDSHAKE)
		p->res->hs_fail++;
	else
		kv_add(&p->res->conn_errno, ETIMEDOUT, 1);
	attempt_failed(p, c, now);
}

/* ---- the upgrade answer -------------------------------------------------------- */

static int has_header(const uint8_t *b, size_t len, const char *name)
{
	size_t k = strlen(name);
	for (size_t i = 0; i + k <= len; i++)
		if (strncasecmp((const char *)b + i, name, k) == 0)
			return 1;
	return 0;
}

static int http_status(const uint8_t *b, size_t len)
{
	char line[64];
	size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
	memcpy(line, b, n);
	line[n] = '\0';
	int status = 0;
	if (sscanf(line, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	return status;
}

/* Bytes of the answer's head when complete, 0 when more is needed, -1 when
 * the attempt failed (connection dropped). */
static long parse_upgrade(lp *p, conn *c, const uint8_t *b, size_t len, int64_t now)
{
	const uint8_t *end = memmem(b, len, "\r\n\r\n", 4);
	if (!end && len <= HTTP_MAX)
		return 0;
	size_t hl = end ? (size_t)(end - b) + 4 : len;
	int status = end ? http_status(b, hl) : 0;
	if (status != 101) {
		p->res->hs_fail++;
		kv_add(&p->res->hs_status, status, 1);
		attempt_failed(p, c, now);
		return -1;
	}
	if (!has_header(b, hl, "\r\nSec-WebSocket-Accept:")) {
		p->res->hs_fail++;
		p->res->bad_accept++;
		attempt_failed(p, c, now);
		return -1;
	}
	p->res->hs_ok++;
	hist_add(&p->res->hs, (uint64_t)(now - c->t_attempt) / 1000);
	resolve_initial(p, c, 1, now);
	lp_set_state(p, c, C_UPGRADED);
	return (long)hl;
}

/* ---- server messages ---------------------------------------------------------- */

static void on_audio(lp *p, conn *c, const uint8_t *d, size_t n, int64_t now)
{
	if (n < RTP_HEADER_LEN + FRAME_MIN_PAYLOAD || (d[0] >> 6) != 2) {
		p->res->bad_frames++;
		return;
	}
	const uint8_t *pl = d + RTP_HEADER_LEN;
	int64_t sent = (int64_t)get_be64(pl);
	if (rtp_read32(pl + 9) == c->idx)
		p->res->self_echo++;
	if (rtp_read32(pl + 13) != c->room + p->first_room)
		p->res->wrong_room++;
	if (!(pl[8] & 1)) {
		p->res->received_other++;
		return;
	}
	if (sent < c->t_open) {               /* not counted as expected when sent */
		p->res->received_early++;
		return;
	}
	p->res->received++;
	hist_add(&p->res->lat, now > sent ? (uint64_t)(now - sent) / 1000 : 0);
}

static void on_welcome(lp *p, conn *c, json_t *j, int64_t now)
{
	if (c->state != C_UPGRADED)
		return;
	c->ssrc = (uint32_t)json_integer_value(json_object_get(j, "ssrc"));
	json_t *w = json_object_get(j, "worker");
	c->worker = json_is_integer(w) ? (int16_t)json_integer_value(w) : -1;
	c->attempts = 0;
	c->t_open = now;
	c->tgen++;                         /* cancels the attempt timeout */
	if (c->t_down) {
		p->res->reconnects++;
		hist_add(&p->res->reconn, (uint64_t)(now - c->t_down) / 1000);
		c->t_down = 0;
	}
	lp_set_state(p, c, C_OPEN);
}

/* Only welcome, drain and error are looked at (member events are not parsed). */
static void on_text(lp *p, conn *c, const uint8_t *d, size_t n, int64_t now)
{
	int welcome = memmem(d, n, "\"welcome\"", 9) != NULL;
	int drain = !welcome && memmem(d, n, "\"drain\"", 7) != NULL;
	int error = !welcome && !drain && memmem(d, n, "\"error\"", 7) != NULL;
	if (!welcome && !drain && !error)
		return;
	json_t *j = json_loadb((const char *)d, n, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	if (type && welcome && strcmp(type, "welcome") == 0) {
		on_welcome(p, c, j, now);
	} else if (type && drain && strcmp(type, "drain") == 0) {
		p->res->drains++;
		json_int_t ms = json_integer_value(json_object_get(j, "reconnect_in_ms"));
		c->drain_at = now + (ms > 0 ? (int64_t)ms * 1000000 : 0);
	} else if (type && error && strcmp(type, "error") == 0) {
		p->res->error_msgs++;
		const char *code = json_string_value(json_object_get(j, "code"));
		if (code && strcmp(code, "rate_limited") == 0)
			p->res->rate_limited++;
	}
	json_decref(j);
}

static int on_close(lp *p, conn *c, const uint8_t *d, size_t n, int64_t now)
{
	int code = n >= 2 ? (d[0] << 8) | d[1] : 1005;
	kv_add(&p->res->closes, code, 1);
	if (p->phase == PH_WINDOW)
		p->res->closes_window++;
	uint8_t echo[2] = { (uint8_t)(code >> 8), (uint8_t)code };
	send_close_now(p, c, echo, n >= 2 ? 2 : 0);
	conn_drop(p, c, now);
	return -1;
}

/* 0, or -1 when the connection was dropped. */
static int on_message(lp *p, conn *c, int op, const uint8_t *d, size_t n, int64_t now)
{
	if (op == OP_BIN)
		on_audio(p, c, d, n, now);
	else
		on_text(p, c, d, n, now);
	return 0;
}

static int on_fragment(lp *p, conn *c, int fin, int op, const uint8_t *d, size_t n, int64_t now)
{
	if ((op == OP_CONT) == !c->frag_op) {
		ws_error(p, c, now);
		return -1;
	}
	if (op != OP_CONT)
		c->frag_op = (uint8_t)op;
	if (buf_append(&c->frag, &c->flen, &c->fcap, d, n, RBUF_MAX) < 0) {
		ws_error(p, c, now);
		return -1;
	}
	if (!fin)
		return 0;
	op = c->frag_op;
	c->frag_op = 0;
	on_message(p, c, op, c->frag, c->flen, now);
	free(c->frag);
	c->frag = NULL;
	c->flen = c->fcap = 0;
	return 0;
}

static int on_frame(lp *p, conn *c, int fin, int op, const uint8_t *d, size_t n, int64_t now)
{
	switch (op) {
	case OP_CLOSE:
		return on_close(p, c, d, n, now);
	case OP_PING:
		return send_control(p, c, OP_PONG, d, n, now);
	case OP_PONG:
		return 0;
	case OP_TEXT:
	case OP_BIN:
		if (fin && !c->frag_op)
			return on_message(p, c, op, d, n, now);
		return on_fragment(p, c, fin, op, d, n, now);
	case OP_CONT:
		return on_fragment(p, c, fin, op, d, n, now);
	default:
		ws_error(p, c, now);
		return -1;
	}
}

/* Frame bytes consumed, 0 when incomplete, -1 when the connection was dropped. */
static long parse_frame(lp *p, conn *c, uint8_t *b, size_t len, int64_t now)
{
	size_t h = 2;
	uint64_t n = b[1] & 0x7f;
	if (n == 126) {
		if (len < 4)
			return 0;
		n = ((uint64_t)b[2] << 8) | b[3];
		h = 4;
	} else if (n == 127) {
		if (len < 10)
			return 0;
		n = get_be64(b + 2);
		h = 10;
	}
	int masked = b[1] & 0x80;
	if (masked)
		h += 4;
	if (n > RBUF_MAX - 16) {
		ws_error(p, c, now);
		return -1;
	}
	if (len < h + n)
		return 0;
	if (masked)
		ws_mask(b + h, (size_t)n, b + h - 4);
	if (on_frame(p, c, b[0] & 0x80, b[0] & 0x0f, b + h, (size_t)n, now) < 0)
		return -1;
	return (long)(h + n);
}

static long conn_parse(lp *p, conn *c, uint8_t *b, size_t len, int64_t now)
{
	size_t off = 0;
	if (c->state == C_HANDSHAKE) {
		long h = parse_upgrade(p, c, b, len, now);
		if (h <= 0)
			return h;
		off = (size_t)h;
	}
	while (len - off >= 2) {
		long f = parse_frame(p, c, b + off, len - off, now);
		if (f < 0)
			return -1;
		if (f == 0)
			break;
		off += (size_t)f;
	}
	return (long)off;
}

/* Parses d (plus what was left over before); keeps the incomplete tail. */
static int conn_feed(lp *p, conn *c, uint8_t *d, size_t n, int64_t now)
{
	int from_rbuf = c->rlen > 0;
	if (from_rbuf) {
		if (buf_append(&c->rbuf, &c->rlen, &c->rcap, d, n, RBUF_MAX) < 0) {
			ws_error(p, c, now);
			return -1;
		}
		d = c->rbuf;
		n = c->rlen;
	}
	long used = conn_parse(p, c, d, n, now);
	if (used < 0)
		return -1;
	size_t rest = n - (size_t)used;
	if (from_rbuf) {
		memmove(c->rbuf, c->rbuf + used, rest);
		c->rlen = (uint32_t)rest;
		if (!rest) {
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
	} else if (rest && buf_append(&c->rbuf, &c->rlen, &c->rcap, d + used, rest, RBUF_MAX) < 0) {
		ws_error(p, c, now);
		return -1;
	}
	return 0;
}

/* 0, or -1 when the connection was dropped. */
static int conn_read(lp *p, conn *c, int64_t now)
{
	for (int i = 0; i < 8; i++) {
		ssize_t r = recv(c->fd, p->scratch, sizeof p->scratch, 0);
		if (r == 0) {
			conn_broken(p, c, now, 0);
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_broken(p, c, now, errno);
			return -1;
		}
		if (conn_feed(p, c, p->scratch, (size_t)r, now) < 0)
			return -1;
		if ((size_t)r < sizeof p->scratch)
			return 0;
	}
	return 0;
}

void conn_event(lp *p, conn *c, uint32_t events)
{
	int64_t now = now_ns();
	if (c->state == C_CONNECTING) {
		conn_connected(p, c, now);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(p, c, now) < 0)
		return;
	if ((events & EPOLLOUT) && c->fd >= 0)
		conn_flush(p, c, now);
}

/* End of the run: a normal close (1000), best effort, and no retry. */
void conn_finish(lp *p, conn *c)
{
	static const uint8_t normal[2] = { 0x03, 0xe8 };
	if (c->state == C_OPEN || c->state == C_UPGRADED)
		send_close_now(p, c, normal, 2);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->gen++;
	c->tgen++;
	conn_free_bufs(c);
	lp_set_state(p, c, C_DONE);
}
