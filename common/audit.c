/* audit.c: the audit producer (see audit.h). Owns the REQ socket, the
 * backlog (an open batch being filled, a ring of full batches, and the batch
 * in flight) and the two nng_aios that pump it: tx sends the batch in
 * flight as a request, and its completion starts rx, which waits for the
 * journal's reply; the reply (sent once the batch's transaction committed)
 * frees the batch and sends the next one. Every event not yet acknowledged
 * is in our backlog, counted in a->events: an exiting process can wait for
 * them (audit_flush) and knows what it would lose.
 *
 * NNG's req0 keeps the request it sends and sends it again, under the same
 * request id, when the pipe it went out on closes (the journal died: it
 * goes to the next journal once the dialer reconnects) and every
 * AUDIT_RESEND_MS without a reply (a journal that lost it). The journal
 * replies to a batch it had committed already (same producer, seq) without
 * storing it again.
 *
 * One batch at a time: while it waits, the open batch keeps filling (up to
 * AUDIT_BATCH_EVENTS; full ones go to the ring) and leaves with the reply
 * if it is AUDIT_LINGER_MS old by then, so a slow journal gets larger
 * transactions rather than more of them. Otherwise the open batch leaves
 * when an emit finds it AUDIT_LINGER_MS old (and nothing in flight) or at
 * audit_flush(); there is no timer of our own: an
 * nng_sleep_aio per batch costs NNG 1.5's expire thread more CPU than
 * everything else here together (measured).
 *
 * Locking: a->mu guards the backlog and the state; the aios are always
 * started with it held, and never once a->closing is set, so audit_close()
 * can stop the pump for certain. NNG completes aios on its own threads,
 * never inside nng_send_aio / nng_recv_aio. */
#include "common/audit.h"
#include "common/clock.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <sodium.h>
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
#define AUDIT_RETRY_MS 100      /* after an aio failed (not expected but closing) */

typedef struct batch {
	nng_msg *m;                /* the header (seq set when it leaves), then records */
	int n;                     /* events in it */
} batch;

struct audit_sink {
	nng_socket sock;
	nng_aio *tx, *rx;          /* sends the batch in flight / waits for its reply */
	pthread_mutex_t mu;
	pthread_cond_t acked;      /* signalled when a batch is acknowledged */
	uint64_t producer, seq;    /* our id; the last seq given */
	batch open;                /* being filled; not in the ring yet */
	int64_t open_since_ms;     /* when its first event came */
	int open_flushed;          /* audit_flush() wants it sent: it leaves with the next reply */
	batch *ring;               /* full batches, oldest at head */
	size_t cap, head, len, ring_max;
	batch in_flight;           /* sent, not acknowledged (m: our copy; NULL = idle) */
	int busy;                  /* tx or rx under way for it */
	int64_t resend_ms;         /* an aio failed: send in_flight again from then on */
	int backlog_max;
	int closing;
	_Atomic int events;        /* events not acknowledged: open, ring, in flight */
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
	return decode_record(buf, len, r) == (long)len ? AUDIT_KIND_EVENT : -1;
}

void audit_encode_batch(uint8_t *buf, uint64_t producer, uint64_t seq)
{
	buf[0] = AUDIT_KIND_BATCH;
	put_be(buf + 1, producer, 8);
	put_be(buf + 9, seq, 8);
}

int audit_decode_batch(const void *buf, size_t len, uint64_t *producer, uint64_t *seq,
                       size_t *off)
{
	const uint8_t *p = buf;
	if (len < AUDIT_BATCH_HEADER_LEN || p[0] != AUDIT_KIND_BATCH)
		return -1;
	*producer = get_be(p + 1, 8);
	*seq = get_be(p + 9, 8);
	*off = AUDIT_BATCH_HEADER_LEN;
	return 0;
}

int audit_decode_next(const void *buf, size_t len, size_t *off, audit_record *r)
{
	const uint8_t *p = buf;
	if (*off >= len)
		return 0;
	long n = decode_record(p + *off, len - *off, r);
	if (n < 0)
		return -1;
	*off += (size_t)n;
	return AUDIT_KIND_EVENT;
}

/* ---- the ring of full batches (a->mu held) ---- */

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

/* Sends (a copy of) the batch in flight; the copy is NNG's from here on,
 * ours stays for a send again should an aio fail. */
static void send_in_flight_locked(audit_sink *a)
{
	nng_msg *m;
	if (nng_msg_dup(&m, a->in_flight.m) != 0) {
		a->resend_ms = clock_mono_ms() + AUDIT_RETRY_MS;
		return;
	}
	a->busy = 1;
	nng_aio_set_msg(a->tx, m);
	nng_send_aio(a->sock, a->tx);
}

/* If nothing is under way: sends the oldest full batch, else (take_open)
 * the open one, under the next seq; or sends again a batch whose aio
 * failed. */
static void pump_locked(audit_sink *a, int take_open)
{
	if (a->busy || a->closing)
		return;
	if (!a->in_flight.m) {
		batch b = ring_pop(a);
		if (!b.m && take_open && a->open.n > 0) {
			b = a->open;
			a->open = (batch){ NULL, 0 };
			a->open_flushed = 0;
		}
		if (!b.m)
			return;
		audit_encode_batch(nng_msg_body(b.m), a->producer, ++a->seq);
		a->in_flight = b;
	} else if (clock_mono_ms() < a->resend_ms) {
		return;
	}
	send_in_flight_locked(a);
}

/* The open batch may leave (when nothing is in flight): it is
 * AUDIT_LINGER_MS old, or audit_flush() asked for it. Younger, it waits for
 * company, so that a journal quicker than that is not given a transaction
 * per event or two. */
static int open_due_locked(const audit_sink *a)
{
	return a->open.n > 0 &&
	       (a->open_flushed || clock_mono_ms() - a->open_since_ms >= AUDIT_LINGER_MS);
}

/* Moves the (full) open batch to the ring. Failing to (no memory for the
 * ring) drops its events. */
static void close_open_locked(audit_sink *a)
{
	if (a->open.n > 0 && ring_push(a, a->open) < 0) {
		nng_msg_free(a->open.m);
		atomic_fetch_sub(&a->events, a->open.n);
		atomic_fetch_add(&a->dropped, (uint64_t)a->open.n);
	}
	a->open = (batch){ NULL, 0 };
	a->open_flushed = 0;
}

/* An aio failed: with the socket closing that is the end; otherwise (not
 * expected) the batch in flight is sent again by the next emit or flush
 * after AUDIT_RETRY_MS, under its seq. */
static void failed_locked(audit_sink *a)
{
	a->busy = 0;
	a->resend_ms = clock_mono_ms() + AUDIT_RETRY_MS;
}

/* The request went out (NNG keeps it for resending): wait for the reply. */
static void on_tx(void *arg)
{
	audit_sink *a = arg;
	int rv = nng_aio_result(a->tx);
	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(a->tx));
		nng_aio_set_msg(a->tx, NULL);
	}
	pthread_mutex_lock(&a->mu);
	if (rv == 0 && !a->closing)
		nng_recv_aio(a->sock, a->rx);
	else
		failed_locked(a);
	pthread_mutex_unlock(&a->mu);
}

/* The journal's reply: the batch is committed. */
static void on_rx(void *arg)
{
	audit_sink *a = arg;
	int rv = nng_aio_result(a->rx);
	if (rv == 0) {
		nng_msg_free(nng_aio_get_msg(a->rx));
		nng_aio_set_msg(a->rx, NULL);
	}
	pthread_mutex_lock(&a->mu);
	if (rv != 0) {
		failed_locked(a);
	} else {
		a->busy = 0;
		int n = a->in_flight.n;
		nng_msg_free(a->in_flight.m);
		a->in_flight = (batch){ NULL, 0 };
		atomic_fetch_sub(&a->events, n);
		atomic_fetch_add(&a->sent, (uint64_t)n);
		pthread_cond_broadcast(&a->acked);
		pump_locked(a, open_due_locked(a));
	}
	pthread_mutex_unlock(&a->mu);
}

/* Appends one encoded event of n bytes to the open batch. */
static int append_locked(audit_sink *a, const audit_event *e, size_t n)
{
	if (!a->open.m && nng_msg_alloc(&a->open.m, AUDIT_BATCH_HEADER_LEN) != 0)
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

/* ---- public API ---- */

static int sink_socket(audit_sink *a, const char *url)
{
	int rv;
	if ((rv = nng_req0_open(&a->sock)) != 0)
		return rv;
	if ((rv = nng_socket_set_ms(a->sock, NNG_OPT_REQ_RESENDTIME, AUDIT_RESEND_MS)) ||
	    (rv = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMINT, 20)) ||
	    (rv = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMAXT, 500)) ||
	    (rv = nng_aio_alloc(&a->tx, on_tx, a)) ||
	    (rv = nng_aio_alloc(&a->rx, on_rx, a)) ||
	    (rv = nng_dial(a->sock, url, NULL, NNG_FLAG_NONBLOCK))) {
		nng_close(a->sock);
		return rv;
	}
	nng_aio_set_timeout(a->tx, NNG_DURATION_INFINITE);
	nng_aio_set_timeout(a->rx, NNG_DURATION_INFINITE);
	return 0;
}

audit_sink *audit_open(const char *url, int backlog_max)
{
	pthread_condattr_t ca;
	if (sodium_init() < 0)
		return NULL;
	audit_sink *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	randombytes_buf(&a->producer, sizeof a->producer);
	a->backlog_max = backlog_max > 0 ? backlog_max : AUDIT_BACKLOG_DEFAULT;
	a->ring_max = (size_t)a->backlog_max;  /* batches of one event at worst */
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->acked, &ca);
	pthread_condattr_destroy(&ca);
	if (sink_socket(a, url) != 0)
		goto err;
	return a;
err:
	if (a->tx)
		nng_aio_free(a->tx);
	if (a->rx)
		nng_aio_free(a->rx);
	pthread_cond_destroy(&a->acked);
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
	if (rv == 0) {
		if (a->open.n >= AUDIT_BATCH_EVENTS || nng_msg_len(a->open.m) >= AUDIT_BATCH_BYTES)
			close_open_locked(a);
		pump_locked(a, open_due_locked(a));
	}
	pthread_mutex_unlock(&a->mu);
	if (rv != 0)
		atomic_fetch_add(&a->dropped, 1);
}

static int before(const struct timespec *x, const struct timespec *y)
{
	return x->tv_sec < y->tv_sec || (x->tv_sec == y->tv_sec && x->tv_nsec < y->tv_nsec);
}

int audit_flush(audit_sink *a, int timeout_ms)
{
	if (!a)
		return 0;
	pthread_mutex_lock(&a->mu);
	a->open_flushed = a->open.n > 0;  /* now, or with the reply in flight */
	pump_locked(a, 1);
	if (timeout_ms > 0) {
		struct timespec deadline = clock_deadline_ms(timeout_ms);
		while (!a->closing && atomic_load(&a->events) > 0) {
			/* wake up now and then to send again after a failed aio */
			struct timespec step = clock_deadline_ms(AUDIT_RETRY_MS), now = clock_deadline_ms(0);
			if (!before(&now, &deadline))
				break;
			pthread_cond_timedwait(&a->acked, &a->mu, before(&step, &deadline) ? &step : &deadline);
			pump_locked(a, 1);
		}
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
	nng_close(a->sock);        /* fails the aio under way, if any */
	nng_aio_free(a->tx);       /* each waits for its callback */
	nng_aio_free(a->rx);
	if (a->in_flight.m)
		nng_msg_free(a->in_flight.m);
	for (batch b = ring_pop(a); b.m; b = ring_pop(a))
		nng_msg_free(b.m);
	if (a->open.m)
		nng_msg_free(a->open.m);
	free(a->ring);
	pthread_cond_destroy(&a->acked);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
