/* send.c: a session's outgoing side.
 *
 * Outgoing messages sit in two queues: control (text and pings, written
 * first, never dropped: overflowing it means the client does not read, and
 * it is closed 4002) and audio (shared frame buffers, at most
 * outbound_queue_frames; when full the oldest frame is dropped). Both rings
 * start empty and grow on demand, and the control ring is released once
 * written, so an idle connection holds no queue memory.
 *
 * Writes are corked: session_send() only queues and marks the session
 * dirty; once per loop turn (a uv_check, after all the I/O of the turn)
 * send_flush() writes each dirty session's queue as WebSocket frames
 * gathered into one buffer and one lws_write(LWS_WRITE_RAW): one send() for
 * everything a client got during the turn (frames from local speakers and
 * from the bus batch, member events, pings). The busier the worker, the
 * longer its turns and the more frames share a syscall; limits.write_coalesce
 * stretches that to at most one write per interval. Server frames are
 * framed here (FIN, opcode, no mask, 1/3/9-byte length); lws sends RAW
 * bytes as they are and keeps what the socket did not take, reporting it
 * with lws_partial_buffered() (no syscall, unlike lws_send_pipe_choked(),
 * which polls the socket). */
#include "worker/worker.h"
#include "common/log.h"

#include <string.h>
#include <utlist.h>

#define SEND_ROUNDS 4       /* gather buffers written per session per flush */
#define QUEUE_START 4       /* first ring size; doubled up to the limit */

enum { WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2, WS_OP_PING = 0x9 };

static size_t ws_header(uint8_t *h, uint8_t kind, size_t len)
{
	static const uint8_t opcode[] = { WS_OP_BINARY, WS_OP_TEXT, WS_OP_PING };
	h[0] = (uint8_t)(0x80 | opcode[kind]);
	if (len < 126) {
		h[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

static void mark_dirty(worker *w, session *s)
{
	if (s->dirty)
		return;
	s->dirty = 1;
	DL_APPEND2(w->dirty, s, dirty_prev, dirty_next);
}

void send_forget(worker *w, session *s)
{
	if (s->dirty)
		DL_DELETE2(w->dirty, s, dirty_prev, dirty_next);
	s->dirty = 0;
}

/* Pushes onto q, growing it up to max first: 0, or -1 when it is full. */
static int push_growing(ptrq *q, void *p, uint32_t max)
{
	if (ptrq_full(q) && q->cap < max) {
		uint32_t cap = q->cap ? q->cap * 2 : QUEUE_START;
		ptrq_resize(q, cap < max ? cap : max, NULL);  /* on failure: stays full */
	}
	return ptrq_push(q, p);
}

/* A listener whose audio queue keeps overflowing for slow_consumer_timeout
 * is closed 4002; the overflow clock stops when its queue empties. */
static void enqueue_audio(worker *w, session *s, msgbuf *m)
{
	uint32_t max = (uint32_t)w->cfg.outbound_queue_frames;
	if (push_growing(&s->audio, msgbuf_ref(m), max) == 0) {
		atomic_fetch_add_explicit(&w->me->c.outbound_queue_frames, 1, memory_order_relaxed);
		return;
	}
	msgbuf_unref(ptrq_push_drop_oldest(&s->audio, m));
	session_count_drop(w, s, DROP_QUEUE);
	int64_t now = (int64_t)uv_now(&w->loop);
	if (!s->overflow_since_ms)
		s->overflow_since_ms = now;
	else if (now - s->overflow_since_ms >= w->cfg.slow_consumer_timeout_ms)
		session_close(s, 4002);
}

static int write_queued(worker *w, session *s);

/* A queue that is full at its limit is written out now if the socket takes
 * it: only a client whose socket is full overflows its queues (the turn's
 * corking must not: one turn may bring a room's worth of member events). */
static void make_room(worker *w, session *s, const ptrq *q, uint32_t max)
{
	if (!ptrq_full(q) || q->cap < max || lws_partial_buffered(s->wsi))
		return;
	if (write_queued(w, s) < 0)
		session_lost(w, s);
}

void session_send(worker *w, session *s, msgbuf *m)
{
	if (s->closing || !s->established)
		return;
	if (m->kind == MSG_AUDIO)
		make_room(w, s, &s->audio, (uint32_t)w->cfg.outbound_queue_frames);
	else
		make_room(w, s, &s->ctrl, SESSION_CTRL_MAX);
	if (s->closing)
		return;
	if (m->kind == MSG_AUDIO) {
		enqueue_audio(w, s, m);
	} else if (push_growing(&s->ctrl, msgbuf_ref(m), SESSION_CTRL_MAX) < 0) {
		msgbuf_unref(m);
		session_close(s, 4002);  /* it does not even read its control messages */
		return;
	}
	mark_dirty(w, s);
}

void session_send_text(worker *w, session *s, char *json)
{
	if (!json)
		return;
	msgbuf *m = msgbuf_text(json, strlen(json));
	free(json);
	if (!m)
		return;
	session_send(w, s, m);
	msgbuf_unref(m);
}

/* The next message to write: control first; no more audio once closing. */
static msgbuf *peek_next(session *s, ptrq **from)
{
	*from = &s->ctrl;
	msgbuf *m = ptrq_peek(&s->ctrl);
	if (m || s->closing)
		return m;
	*from = &s->audio;
	return ptrq_peek(&s->audio);
}

typedef struct sent {
	uint64_t frames, bytes;
} sent;

static void take(worker *w, ptrq *from, session *s, msgbuf *m, sent *out)
{
	ptrq_pop(from);
	if (from == &s->audio) {
		atomic_fetch_sub_explicit(&w->me->c.outbound_queue_frames, 1, memory_order_relaxed);
		out->frames++;
		out->bytes += m->len;
	}
	msgbuf_unref(m);
}

/* Frames queued messages into w->tx until the next one does not fit;
 * returns the bytes gathered (0 with *big set: the next message is larger
 * than the whole buffer). */
static size_t gather(worker *w, session *s, msgbuf **big, sent *out)
{
	size_t n = 0, cap = sizeof w->tx - LWS_PRE;
	uint8_t *p = w->tx + LWS_PRE;
	ptrq *from;
	msgbuf *m;
	*big = NULL;
	while ((m = peek_next(s, &from))) {
		if (n + 10 + m->len > cap) {
			if (!n)
				*big = m;
			break;
		}
		n += ws_header(p + n, m->kind, m->len);
		memcpy(p + n, msgbuf_payload(m), m->len);
		n += m->len;
		take(w, from, s, m, out);
	}
	return n;
}

/* A message larger than the gather buffer (a welcome with a long member
 * list) goes on its own, framed by lws in its own headroom. */
static int write_big(worker *w, session *s, msgbuf *m, sent *out)
{
	static const enum lws_write_protocol op[] = { LWS_WRITE_BINARY, LWS_WRITE_TEXT, LWS_WRITE_PING };
	ptrq *from;
	peek_next(s, &from);
	msgbuf_ref(m);
	take(w, from, s, m, out);
	int rc = lws_write(s->wsi, msgbuf_payload(m), m->len, op[m->kind]) < 0 ? -1 : 0;
	msgbuf_unref(m);
	return rc;
}

/* Writes what the socket takes: -1 when the connection is gone. */
static int write_queued(worker *w, session *s)
{
	sent out = { 0, 0 };
	int rc = 0;
	for (int round = 0; round < SEND_ROUNDS && !lws_partial_buffered(s->wsi); round++) {
		msgbuf *big;
		size_t n = gather(w, s, &big, &out);
		if (n)
			rc = lws_write(s->wsi, w->tx + LWS_PRE, n, LWS_WRITE_RAW) < 0 ? -1 : 0;
		else if (big)
			rc = write_big(w, s, big, &out);
		else
			break;  /* nothing left */
		if (rc < 0)
			break;
	}
	if (out.frames) {
		atomic_fetch_add_explicit(&w->me->c.frames_out, out.frames, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->me->c.bytes_out, out.bytes, memory_order_relaxed);
		if (!s->parked)
			atomic_fetch_add_explicit(&w->reg->s[s->reg].frames_out, out.frames,
			                          memory_order_relaxed);
	}
	if (ptrq_empty(&s->audio))
		s->overflow_since_ms = 0;
	if (ptrq_empty(&s->ctrl) && s->ctrl.cap)
		ptrq_free(&s->ctrl);  /* control messages are rare: idle sessions keep no ring */
	return rc;
}

static int has_queued(const session *s)
{
	return !ptrq_empty(&s->ctrl) || (!ptrq_empty(&s->audio) && !s->closing);
}

/* lws 4.1.6 sends the lws_close_reason() frame when a callback returns -1
 * while receiving, but from WRITEABLE it only shuts the socket down: there we
 * write the close frame ourselves (LWS_WRITE_CLOSE is lws's opcode 4,
 * "handled by lws_close_reason()" in its header), then hang up. */
static int write_close_frame(session *s)
{
	if (s->close_code == 1006)
		return -1;  /* the connection is gone: no frame, just hang up */
	unsigned char buf[LWS_PRE + 2];
	buf[LWS_PRE] = (unsigned char)(s->close_code >> 8);
	buf[LWS_PRE + 1] = (unsigned char)s->close_code;
	lws_write(s->wsi, buf + LWS_PRE, 2, (enum lws_write_protocol)4);
	return -1;
}

int session_on_writeable(worker *w, session *s)
{
	send_forget(w, s);  /* written now, not again at the end of the turn */
	if (write_queued(w, s) < 0)
		return -1;
	if (has_queued(s) || lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return 0;
	}
	return s->closing ? write_close_frame(s) : 0;
}

/* End of a loop turn: every session that got something writes it. */
void send_flush(worker *w)
{
	session *s;
	w->last_flush_ms = (int64_t)uv_now(&w->loop);
	while ((s = w->dirty)) {
		send_forget(w, s);
		if (s->closing)
			continue;  /* its WRITEABLE writes the rest and the close frame */
		if (write_queued(w, s) < 0)
			session_lost(w, s);
		else if (has_queued(s) || lws_partial_buffered(s->wsi))
			lws_callback_on_writable(s->wsi);
	}
}

static void on_coalesce_timer(uv_timer_t *t)
{
	send_flush(t->loop->data);
}

/* limits.write_coalesce: the dirty sessions are written at most once per
 * that many ms (a timer covers the rest of the window), so a busy client
 * gets more frames per send() for at most that much added latency. 0 writes
 * at the end of every loop turn; auto (the default) does that until the
 * loop gets busy (send_pace). */
static void on_turn_end(uv_check_t *h)
{
	worker *w = h->loop->data;
	if (w->dirty && worker_turn_due(w, &w->coalesce_timer, on_coalesce_timer, w->last_flush_ms,
	                                w->coalesce_ms))
		send_flush(w);
}

/* write_coalesce = auto, from the once-a-second sweep: the share of the
 * last period the loop did not wait in epoll (libuv's idle-time metric,
 * two clock reads a second) and the frames written per connection set the
 * interval for the next (pace_interval). Busy, a worker's CPU goes to
 * send(): holding each client's output for 20 ms then puts ~10 frames in
 * one send() where it wrote ~5 to clients of rooms with many speakers
 * (fanout: 0.72M -> 1.10M deliveries per CPU-second, bench/RESULTS.md);
 * idle, or with clients that get a frame every 40 ms, it writes at once. */
void send_pace(worker *w)
{
	if (w->cfg.write_coalesce_ms != CFG_AUTO)
		return;  /* fixed: set once by send_start */
	uint64_t wall = uv_hrtime(), idle = uv_metrics_idle_time(&w->loop);
	uint64_t frames = atomic_load_explicit(&w->me->c.frames_out, memory_order_relaxed);
	int64_t conns = atomic_load_explicit(&w->me->c.connections, memory_order_relaxed);
	if (w->pace_wall_ns && wall > w->pace_wall_ns) {
		double secs = (double)(wall - w->pace_wall_ns) / 1e9;
		double busy = 1.0 - (double)(idle - w->pace_idle_ns) / 1e9 / secs;
		double fps = conns > 0 ? (double)(frames - w->pace_frames_out) / secs / (double)conns : 0;
		int64_t next = pace_interval(w->coalesce_ms, busy < 0 ? 0 : busy, fps);
		if (next != w->coalesce_ms)
			log_info("write_pace", "write_coalesce auto: %lld ms (event loop %.0f%% busy, "
			         "%.0f frames/s per connection)", (long long)next, busy * 100, fps);
		w->coalesce_ms = next;
		atomic_store_explicit(&w->me->c.write_coalesce_ms, next, memory_order_relaxed);
	}
	w->pace_wall_ns = wall;
	w->pace_idle_ns = idle;
	w->pace_frames_out = frames;
}

void send_start(worker *w)
{
	w->coalesce_ms = w->cfg.write_coalesce_ms == CFG_AUTO ? 0 : w->cfg.write_coalesce_ms;
	atomic_store_explicit(&w->me->c.write_coalesce_ms, w->coalesce_ms, memory_order_relaxed);
	uv_check_init(&w->loop, &w->send_turn);
	uv_check_start(&w->send_turn, on_turn_end);
	uv_timer_init(&w->loop, &w->coalesce_timer);
}

void send_stop(worker *w)
{
	uv_close((uv_handle_t *)&w->send_turn, NULL);
	uv_close((uv_handle_t *)&w->coalesce_timer, NULL);
}
