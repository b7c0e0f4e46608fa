/* audit.c: the audit producer (see audit.h). Owns the PUSH socket, the
 * backlog (an open batch being filled plus a ring of closed batches) and the
 * nng_aio that pumps the ring.
 *
 * Why an aio pump and not nng_send(NONBLOCK) into NNG_OPT_SENDBUF: messages
 * inside NNG's send buffer cannot be counted or waited for, so an exiting
 * process would lose them silently. Here NNG buffers nothing (SENDBUF 0):
 * every undelivered event is in our backlog, and the pump aio hands one
 * batch at a time to the journal's connection; its completion callback (on
 * an NNG thread) hands the next one, so the backlog drains without the
 * caller's loop. A pipe takes a new message only once it has written the
 * previous one, which gives audit_flush() its fence: once a fence message
 * has been handed over, every event before it is in the journal's socket.
 *
 * The open batch is closed by the emit that finds it AUDIT_LINGER_MS old
 * (or full), and by audit_flush(); there is no timer of our own: an
 * nng_sleep_aio per batch costs NNG 1.5's expire thread more CPU than
 * everything else here together (measured).
 *
 * Locking: a->mu guards the backlog and the state; nng_send_aio is always
 * called with it held, so audit_close() can stop the pump for certain. NNG
 * completes aios on its own threads, never inside nng_send_aio. */
#include "common/audit.h"
#include "common/clock.h"

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_HEADER_LEN 13     /* kind, ts_us, worker */
#define AUDIT_NFIELDS 7
#define AUDIT_NULL_LEN 0xffffffffu
#define AUDIT_RING_MIN 64
#define AUDIT_BATCH_RESERVE 4096

typedef struct batch {
	nng_msg *m;
	int n;                     /* events in it; 0 = a fence */
} batch;

struct audit_sink {
	nng_socket sock;
	nng_aio *pump;             /* sends the ring's head */
	pthread_mutex_t mu;
	pthread_cond_t idle;       /* signalled when the pump goes idle or a fence passes */
	batch open;                /* being filled; not in the ring yet */
	int64_t open_since_ms;     /* when its first event came */
	batch *ring;               /* closed batches, oldest at head */
	size_t cap, head, len, ring_max;
	batch in_flight;           /* what the pump holds (m NULL = idle) */
	int backlog_max;
	int fence_out;             /* a fence is queued or in flight */
	int unfenced;              /* events were handed over after the last fence */
	int closing;
	_Atomic int events;        /* events in the open batch, the ring, or in flight */
	_Atomic uint64_t sent, dropped;
};

/* ---- wire format ---- */

typedef struct field {
	const char *p;
	uint32_t len;              /* AUDIT_NULL_LEN = NULL */
} field;

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static field field_of(const char *s, size_t max)
{
	if (!s || !*s)
		return (field){ NULL, AUDIT_NULL_LEN };
	size_t n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return (field){ s, (uint32_t)n };
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

size_t audit_encode(const audit_event *e, uint8_t *buf, size_t cap)
{
	char truncated[64];
	if (!e || !e->event || !*e->event)
		return 0;
	field f[AUDIT_NFIELDS] = {
		field_of(e->event, AUDIT_FIELD_MAX), field_of(e->session, AUDIT_FIELD_MAX),
		field_of(e->user, AUDIT_FIELD_MAX),  field_of(e->room, AUDIT_FIELD_MAX),
		field_of(e->ip, AUDIT_FIELD_MAX),    field_of(e->reason, AUDIT_FIELD_MAX),
		field_of(e->detail, AUDIT_DETAIL_MAX),
	};
	size_t detail_len = f[6].p ? strlen(e->detail) : 0;
	if (detail_len > AUDIT_DETAIL_MAX) {  /* cut JSON is no JSON: say so instead */
		snprintf(truncated, sizeof truncated, "{\"truncated\":true,\"bytes\":%zu}", detail_len);
		f[6] = field_of(truncated, sizeof truncated);
	}
	size_t n = AUDIT_HEADER_LEN;
	for (int i = 0; i < AUDIT_NFIELDS; i++)
		n += 4 + (f[i].p ? f[i].len : 0);
	if (!buf || n > cap)
		return n;
	int64_t ts = e->ts_us ? e->ts_us : clock_wall_us();
	buf[0] = AUDIT_KIND_EVENT;
	put_be(buf + 1, (uint64_t)ts, 8);
	put_be(buf + 9, (uint32_t)(e->worker < 0 ? -1 : e->worker), 4);
	uint8_t *p = buf + AUDIT_HEADER_LEN;
	for (int i = 0; i < AUDIT_NFIELDS; i++) {
		put_be(p, f[i].len, 4);
		p += 4;
		if (f[i].p) {
			memcpy(p, f[i].p, f[i].len);
			p += f[i].len;
		}
	}
	return n;
}

/* One record at p; returns its length, -1 if malformed. */
static long decode_record(const uint8_t *p, size_t len, audit_record *r)
{
	const uint8_t *start = p, *end = p + len;
	if (len < AUDIT_HEADER_LEN || p[0] != AUDIT_KIND_EVENT)
		return -1;
	r->ts_us = (int64_t)get_be(p + 1, 8);
	r->worker = (int32_t)(uint32_t)get_be(p + 9, 4);
	audit_text *t[AUDIT_NFIELDS] = { &r->event, &r->session, &r->user, &r->room,
	                                 &r->ip, &r->reason, &r->detail };
	p += AUDIT_HEADER_LEN;
	for (int i = 0; i < AUDIT_NFIELDS; i++) {
		if (end - p < 4)
			return -1;
		uint32_t n = (uint32_t)get_be(p, 4);
		p += 4;
		if (n == AUDIT_NULL_LEN) {
			*t[i] = (audit_text){ NULL, 0 };
			continue;
		}
		if ((size_t)(end - p) < n)
			return -1;
		*t[i] = (audit_text){ (const char *)p, n };
		p += n;
	}
	if (!r->event.p || r->event.len == 0)
		return -1;
	return (long)(p - start);
}

int audit_decode(const void *buf, size_t len, audit_record *r)
{
	const uint8_t *p = buf;
	if (len == 1 && p[0] == AUDIT_KIND_FENCE)
		return AUDIT_KIND_FENCE;
	return decode_record(p, len, r) == (long)len ? AUDIT_KIND_EVENT : -1;
}

int audit_decode_next(const void *buf, size_t len, size_t *off, audit_record *r)
{
	const uint8_t *p = buf;
	if (*off >= len || (*off == 0 && len == 1 && p[0] == AUDIT_KIND_FENCE))
		return 0;
	long n = decode_record(p + *off, len - *off, r);
	if (n < 0)
		return -1;
	*off += (size_t)n;
	return AUDIT_KIND_EVENT;
}

/* ---- the ring of closed batches (a->mu held) ---- */

static int ring_grow(audit_sink *a)
{
	if (a->cap >= a->ring_max)
		return -1;
	size_t ncap = a->cap ? a->cap * 2 : AUDIT_RING_MIN;
	if (ncap > a->ring_max)
		ncap = a->ring_max;
	batch *r = malloc(ncap * sizeof *r);
	if (!r)
		return -1;
	for (size_t i = 0; i < a->len; i++)
		r[i] = a->ring[(a->head + i) % a->cap];
	free(a->ring);
	a->ring = r;
	a->cap = ncap;
	a->head = 0;
	return 0;
}

static int ring_push(audit_sink *a, batch b)
{
	if (a->len == a->cap && ring_grow(a) < 0)
		return -1;
	a->ring[(a->head + a->len) % a->cap] = b;
	a->len++;
	return 0;
}

static batch ring_pop(audit_sink *a)
{
	batch b = { NULL, 0 };
	if (a->len > 0) {
		b = a->ring[a->head];
		a->head = (a->head + 1) % a->cap;
		a->len--;
	}
	return b;
}

/* ---- the pump (a->mu held) ---- */

/* Hands the oldest closed batch to NNG if the pump is free. */
static void pump_locked(audit_sink *a)
{
	if (a->in_flight.m || a->closing)
		return;
	a->in_flight = ring_pop(a);
	if (!a->in_flight.m) {
		pthread_cond_broadcast(&a->idle);
		return;
	}
	nng_aio_set_msg(a->pump, a->in_flight.m);
	nng_send_aio(a->sock, a->pump);
}

/* Moves the open batch to the ring and starts sending. Failing to (no
 * memory for the ring) drops its events. */
static void close_open_locked(audit_sink *a)
{
	if (a->open.n > 0) {
		if (ring_push(a, a->open) < 0) {
			nng_msg_free(a->open.m);
			atomic_fetch_sub(&a->events, a->open.n);
			atomic_fetch_add(&a->dropped, (uint64_t)a->open.n);
		}
		a->open = (batch){ NULL, 0 };
	}
	pump_locked(a);
}

/* The pump's send finished: on success the batch now belongs to a journal
 * connection that had written everything before it. */
static void on_sent(void *arg)
{
	audit_sink *a = arg;
	int rv = nng_aio_result(a->pump);
	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(a->pump));
		nng_aio_set_msg(a->pump, NULL);
	}
	pthread_mutex_lock(&a->mu);
	int n = a->in_flight.n;
	if (n > 0) {
		atomic_fetch_sub(&a->events, n);
		atomic_fetch_add(rv == 0 ? &a->sent : &a->dropped, (uint64_t)n);
		a->unfenced |= rv == 0;
	} else {
		a->fence_out = 0;
		if (rv == 0)
			a->unfenced = 0;
		pthread_cond_broadcast(&a->idle);
	}
	a->in_flight = (batch){ NULL, 0 };
	pump_locked(a);
	pthread_mutex_unlock(&a->mu);
}

/* Appends one encoded event of n bytes to the open batch. */
static int append_locked(audit_sink *a, const audit_event *e, size_t n)
{
	if (!a->open.m && nng_msg_alloc(&a->open.m, 0) != 0)
		return -1;
	if (a->open.n == 0)
		a->open_since_ms = clock_mono_ms();
	nng_msg *m = a->open.m;
	size_t len = nng_msg_len(m), cap = nng_msg_capacity(m);
	if (len + n > cap) {
		size_t want = cap < AUDIT_BATCH_RESERVE ? AUDIT_BATCH_RESERVE : 2 * cap;
		if (nng_msg_reserve(m, want > len + n ? want : len + n) != 0)
			return -1;
	}
	if (nng_msg_realloc(m, len + n) != 0)
		return -1;
	audit_encode(e, (uint8_t *)nng_msg_body(m) + len, n);
	a->open.n++;
	atomic_fetch_add(&a->events, 1);
	return 0;
}

static int enqueue_fence_locked(audit_sink *a)
{
	batch b = { NULL, 0 };
	if (nng_msg_alloc(&b.m, 1) != 0)
		return -1;
	((uint8_t *)nng_msg_body(b.m))[0] = AUDIT_KIND_FENCE;
	if (ring_push(a, b) < 0) {
		nng_msg_free(b.m);
		return -1;
	}
	a->fence_out = 1;
	pump_locked(a);
	return 0;
}

/* ---- public API ---- */

static int sink_socket(audit_sink *a, const char *url)
{
	int rv;
	if ((rv = nng_push0_open(&a->sock)) != 0)
		return rv;
	if ((rv = nng_socket_set_int(a->sock, NNG_OPT_SENDBUF, 0)) ||  /* see the top */
	    (rv = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMINT, 20)) ||
	    (rv = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMAXT, 500)) ||
	    (rv = nng_aio_alloc(&a->pump, on_sent, a)) ||
	    (rv = nng_dial(a->sock, url, NULL, NNG_FLAG_NONBLOCK))) {
		nng_close(a->sock);
		return rv;
	}
	nng_aio_set_timeout(a->pump, NNG_DURATION_INFINITE);
	return 0;
}

audit_sink *audit_open(const char *url, int backlog_max)
{
	pthread_condattr_t ca;
	audit_sink *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->backlog_max = backlog_max > 0 ? backlog_max : AUDIT_BACKLOG_DEFAULT;
	a->ring_max = (size_t)a->backlog_max + 1;  /* batches of one event at worst, + a fence */
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->idle, &ca);
	pthread_condattr_destroy(&ca);
	if (sink_socket(a, url) != 0)
		goto err;
	return a;
err:
	if (a->pump)
		nng_aio_free(a->pump);
	pthread_cond_destroy(&a->idle);
	pthread_mutex_destroy(&a->mu);
	free(a);
	return NULL;
}

void audit_emit(audit_sink *a, const audit_event *e)
{
	if (!a)
		return;
	size_t n = audit_encode(e, NULL, 0);
	if (n == 0 || atomic_load_explicit(&a->events, memory_order_relaxed) >= a->backlog_max) {
		atomic_fetch_add(&a->dropped, 1);
		return;
	}
	pthread_mutex_lock(&a->mu);
	int rv = a->closing || append_locked(a, e, n);
	if (rv == 0 && (a->open.n >= AUDIT_BATCH_EVENTS || nng_msg_len(a->open.m) >= AUDIT_BATCH_BYTES ||
	                clock_mono_ms() - a->open_since_ms >= AUDIT_LINGER_MS))
		close_open_locked(a);
	pthread_mutex_unlock(&a->mu);
	if (rv != 0)
		atomic_fetch_add(&a->dropped, 1);
}

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int audit_flush(audit_sink *a, int timeout_ms)
{
	struct timespec deadline;
	if (!a)
		return 0;
	pthread_mutex_lock(&a->mu);
	if (!a->closing)
		close_open_locked(a);
	if (timeout_ms > 0)
		deadline_after(&deadline, timeout_ms);
	while (timeout_ms > 0 && !a->closing && (atomic_load(&a->events) > 0 || a->unfenced)) {
		/* The fence goes after the last event; requeue it if it was lost. */
		if (!a->fence_out && enqueue_fence_locked(a) < 0)
			break;
		if (pthread_cond_timedwait(&a->idle, &a->mu, &deadline) != 0)
			break;
	}
	int left = atomic_load(&a->events);
	pthread_mutex_unlock(&a->mu);
	return left;
}

uint64_t audit_sent(const audit_sink *a) { return a ? atomic_load(&a->sent) : 0; }
uint64_t audit_dropped(const audit_sink *a) { return a ? atomic_load(&a->dropped) : 0; }
int audit_pending(const audit_sink *a) { return a ? atomic_load(&a->events) : 0; }

void audit_close(audit_sink *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->closing = 1;            /* from here on no one starts an aio */
	pthread_mutex_unlock(&a->mu);
	nng_close(a->sock);        /* fails the send in flight, if any */
	nng_aio_free(a->pump);     /* waits for its callback */
	for (batch b = ring_pop(a); b.m; b = ring_pop(a))
		nng_msg_free(b.m);
	if (a->open.m)
		nng_msg_free(a->open.m);
	free(a->ring);
	pthread_cond_destroy(&a->idle);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
