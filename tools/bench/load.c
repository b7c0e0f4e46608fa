/* load.c: one load process of audiogw-bench. It owns a contiguous block of
 * whole rooms (so the expected deliveries of a frame, the members of its
 * room welcomed right now minus the sender, are known locally), mints
 * their tokens before the ramp, then runs one epoll loop: a timerfd armed
 * for the next due time (>= 1 ms apart, <= 5 ms for phase changes) drives
 * the ramp (its share of --ramp), the retry/timeout heap and the
 * speakers, whose sends are spread evenly over the frame period (the k-th
 * send of the process is due at t0 + k * period / speakers). The parent
 * moves the phases through the shared control block; every loop is bounded
 * and the process stops at the stop phase or the hard deadline. */
#include "load.h"
#include "common/token.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS          1000000
#define PHASE_POLL_NS    (5 * 1000000LL)
#define EVENTS_MAX       512
#define TIMERS_PER_TICK  4096
#define RETRY_LATER_NS   (10 * 1000000LL)
#define TIMER_TAG        UINT64_MAX

uint64_t lp_rand(lp *p)
{
	uint64_t x = p->rng;          /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	p->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int is_inflight(int s)
{
	return s == C_CONNECTING || s == C_HANDSHAKE || s == C_UPGRADED;
}

void lp_set_state(lp *p, conn *c, int s)
{
	int old = c->state;
	if (old == s)
		return;
	if (is_inflight(old))
		p->inflight--;
	if (is_inflight(s))
		p->inflight++;
	if (old == C_OPEN) {
		p->room_open[c->room]--;
		atomic_fetch_sub_explicit(&p->res->open, 1, memory_order_relaxed);
	}
	if (s == C_OPEN) {
		p->room_open[c->room]++;
		atomic_fetch_add_explicit(&p->res->open, 1, memory_order_relaxed);
	}
	c->state = (uint8_t)s;
}

/* ---- timer heap (min by time; stale entries are skipped by tgen) -------- */

static void heap_swap(tentry *a, tentry *b)
{
	tentry t = *a;
	*a = *b;
	*b = t;
}

static void heap_push(lp *p, tentry e)
{
	if (p->hn == p->hcap) {
		uint32_t cap = p->hcap ? p->hcap * 2 : 1024;
		tentry *h = realloc(p->heap, cap * sizeof *h);
		if (!h)
			return;                /* the connection stays parked; counted at the end */
		p->heap = h;
		p->hcap = cap;
	}
	uint32_t i = p->hn++;
	p->heap[i] = e;
	while (i && p->heap[(i - 1) / 2].when > p->heap[i].when) {
		heap_swap(&p->heap[(i - 1) / 2], &p->heap[i]);
		i = (i - 1) / 2;
	}
}

static tentry heap_pop(lp *p)
{
	tentry top = p->heap[0];
	p->heap[0] = p->heap[--p->hn];
	for (uint32_t i = 0;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < p->hn && p->heap[l].when < p->heap[m].when)
			m = l;
		if (r < p->hn && p->heap[r].when < p->heap[m].when)
			m = r;
		if (m == i)
			break;
		heap_swap(&p->heap[i], &p->heap[m]);
		i = m;
	}
	return top;
}

void lp_timer_set(lp *p, conn *c, int64_t when)
{
	c->tgen++;
	tentry e = { .when = when, .idx = (uint32_t)(c - p->c), .tgen = c->tgen };
	heap_push(p, e);
}

static void run_timers(lp *p, int64_t now)
{
	for (int i = 0; i < TIMERS_PER_TICK && p->hn && p->heap[0].when <= now; i++) {
		tentry e = heap_pop(p);
		conn *c = &p->c[e.idx];
		if (e.tgen != c->tgen)
			continue;
		if (c->state == C_BACKOFF) {
			if (p->phase >= PH_GRACE)
				lp_set_state(p, c, C_DONE);
			else if (p->inflight >= p->o->inflight)
				lp_timer_set(p, c, now + RETRY_LATER_NS);
			else
				conn_start(p, c, now);
		} else if (is_inflight(c->state)) {
			conn_timeout(p, c, now);
		}
	}
}

/* ---- ramp and speakers ----------------------------------------------------- */

static void ramp(lp *p, int64_t now)
{
	if (p->phase < PH_RAMP || p->phase >= PH_GRACE || p->next_open >= p->n)
		return;
	double allowed = (double)(now - p->ramp_t0) * p->ramp_per_ns + 1;
	for (uint32_t i = 0; i < p->o->inflight && p->next_open < p->n &&
	     (double)p->next_open < allowed && p->inflight < p->o->inflight; i++)
		conn_start(p, &p->c[p->next_open++], now);
}

static void send_due(lp *p, int64_t now)
{
	if (!p->nspk || p->phase < PH_RAMP || p->phase >= PH_GRACE)
		return;
	int in_window = p->phase == PH_WINDOW;
	for (uint32_t i = 0; i < p->nspk; i++) {
		if (p->send_t0 + (int64_t)((double)p->send_k * p->step_ns) > now)
			return;
		conn *c = &p->c[p->spk[p->send_k % p->nspk]];
		p->send_k++;
		if (c->state == C_OPEN)
			conn_send_audio(p, c, in_window);
		else
			p->res->send_skipped++;
	}
	/* a whole cycle late: skip what cannot be sent on time */
	uint64_t k = (uint64_t)((double)(now - p->send_t0) / p->step_ns);
	if (k > p->send_k) {
		p->res->send_lag += k - p->send_k;
		p->send_k = k;
	}
}

/* ---- phases ------------------------------------------------------------------ */

static uint64_t own_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void window_started(lp *p)
{
	p->res->open_ws = atomic_load(&p->res->open);
	for (uint32_t i = 0; i < p->n; i++)
		if (p->c[i].state == C_OPEN && p->c[i].worker >= 0 && p->c[i].worker < BENCH_MAX_WORKERS)
			p->res->worker_open[p->c[i].worker]++;
	p->res->cpu_ws_us = own_cpu_us();
}

static void on_phase(lp *p, int ph)
{
	if (ph >= PH_RAMP && p->phase < PH_RAMP) {
		p->ramp_t0 = atomic_load(&p->ctl->ramp_t0);
		p->send_t0 = p->ramp_t0 + (int64_t)(p->step_ns * p->id / p->o->procs);
	}
	if (ph >= PH_WINDOW && p->phase < PH_WINDOW)
		window_started(p);
	if (ph >= PH_GRACE && p->phase < PH_GRACE) {
		p->res->open_we = atomic_load(&p->res->open);
		p->res->cpu_we_us = own_cpu_us();
	}
	p->phase = ph;
}

/* The next time something is due (at least TICK_NS, at most PHASE_POLL_NS
 * away): the timerfd is armed for it, so an idle process sleeps. */
static int64_t next_due(lp *p, int64_t now)
{
	int64_t t = now + PHASE_POLL_NS;
	int ramping = p->phase >= PH_RAMP && p->phase < PH_GRACE && p->next_open < p->n;
	if (ramping)
		t = now + TICK_NS;
	if (p->hn && p->heap[0].when < t)
		t = p->heap[0].when;
	if (p->nspk && p->phase >= PH_RAMP && p->phase < PH_GRACE) {
		int64_t s = p->send_t0 + (int64_t)((double)p->send_k * p->step_ns);
		if (s < t)
			t = s;
	}
	return t > now + TICK_NS ? t : now + TICK_NS;
}

static void arm_timer(lp *p, int64_t when)
{
	if (when == p->armed)
		return;
	struct itimerspec its = { .it_value = { when / 1000000000, when % 1000000000 } };
	if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		p->armed = when;
}

static void tick(lp *p, int64_t now)
{
	int ph = atomic_load(&p->ctl->phase);
	if (ph != p->phase)
		on_phase(p, ph);
	ramp(p, now);
	run_timers(p, now);
	send_due(p, now);
	arm_timer(p, next_due(p, now));
}

/* ---- setup ---------------------------------------------------------------------- */

static int mint_tokens(lp *p)
{
	const bench_opts *o = p->o;
	size_t cap = (size_t)p->n * 320 + 1024, used = 0;
	p->tokens = malloc(cap);
	p->tok_off = malloc(p->n * sizeof *p->tok_off);
	if (!p->tokens || !p->tok_off)
		return -1;
	int64_t now = (int64_t)time(NULL);
	for (uint32_t i = 0; i < p->n; i++) {
		token_claims cl;
		memset(&cl, 0, sizeof cl);
		uint32_t g = p->first_idx + i;
		snprintf(cl.sub, sizeof cl.sub, "%su%u", o->user_prefix, g);
		snprintf(cl.room, sizeof cl.room, "bench-%u", g / o->room_size);
		cl.iat = now;
		cl.has_iat = 1;
		cl.exp = now + 3600;
		if (cap - used < TOKEN_MAX_LEN + 1) {
			char *t = realloc(p->tokens, cap * 2);
			if (!t)
				return -1;
			p->tokens = t;
			cap *= 2;
		}
		int len = token_mint_hs256(&cl, o->secret, o->secret_len, p->tokens + used,
		                           TOKEN_MAX_LEN + 1);   /* it may clear all of outlen */
		if (len < 0)
			return -1;
		p->tok_off[i] = (uint32_t)used;
		used += (size_t)len + 1;
	}
	return 0;
}

/* Speakers in send order: member m of every room, then member m + 1, so
 * consecutive sends go to different rooms. */
static int plan_speakers(lp *p)
{
	const bench_opts *o = p->o;
	p->spk = malloc((p->n + 1) * sizeof *p->spk);
	if (!p->spk)
		return -1;
	if (o->rate <= 0)
		return 0;
	for (uint32_t m = 0; m < o->speakers_per_room; m++)
		for (uint32_t r = 0; r < p->nrooms; r++) {
			uint64_t g = (uint64_t)(p->first_room + r) * o->room_size + m;
			if (g >= (uint64_t)p->first_idx + p->n)
				continue;
			p->spk[p->nspk++] = (uint32_t)(g - p->first_idx);
			p->c[g - p->first_idx].speaker = 1;
		}
	if (p->nspk)
		p->step_ns = 1e9 / o->rate / p->nspk;
	return 0;
}

static void split_rooms(lp *p)
{
	const bench_opts *o = p->o;
	uint64_t rooms = (o->n + o->room_size - 1) / o->room_size;
	uint64_t r0 = rooms * (uint64_t)p->id / (uint64_t)o->procs;
	uint64_t r1 = rooms * (uint64_t)(p->id + 1) / (uint64_t)o->procs;
	uint64_t i1 = r1 * o->room_size < o->n ? r1 * o->room_size : o->n;
	p->first_room = (uint32_t)r0;
	p->nrooms = (uint32_t)(r1 - r0);
	p->first_idx = (uint32_t)(r0 * o->room_size);
	p->n = (uint32_t)(i1 - p->first_idx);
}

static int init_conns(lp *p)
{
	p->c = calloc(p->n ? p->n : 1, sizeof *p->c);
	p->room_open = calloc(p->nrooms ? p->nrooms : 1, sizeof *p->room_open);
	if (!p->c || !p->room_open)
		return -1;
	for (uint32_t i = 0; i < p->n; i++) {
		conn *c = &p->c[i];
		c->fd = -1;
		c->idx = p->first_idx + i;
		c->room = c->idx / p->o->room_size - p->first_room;
		c->worker = -1;
		c->initial = 1;
		c->seq = (uint16_t)lp_rand(p);
		c->rtp_ts = (uint32_t)lp_rand(p);
	}
	return 0;
}

static int init_loop(lp *p)
{
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->ep < 0 || p->tfd < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u64 = TIMER_TAG;
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->tfd, &ev) < 0)
		return -1;
	return 0;
}

static int lp_init(lp *p, const bench_opts *o, bench_ctl *ctl, bench_res *res, int id)
{
	p->o = o;
	p->ctl = ctl;
	p->res = res;
	p->id = id;
	p->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)now_ns() ^ 0x9E3779B97F4A7C15ull;
	p->ramp_per_ns = o->ramp / o->procs / 1e9;
	p->deadline = atomic_load(&ctl->deadline);
	split_rooms(p);
	res->conns = p->n;
	if (init_conns(p) < 0 || plan_speakers(p) < 0 || mint_tokens(p) < 0 || init_loop(p) < 0)
		return -1;
	return 0;
}

/* ---- loop ---------------------------------------------------------------------- */

static void dispatch(lp *p, const struct epoll_event *ev)
{
	if (ev->data.u64 == TIMER_TAG) {
		uint64_t ticks;
		if (read(p->tfd, &ticks, sizeof ticks) < 0)
			return;            /* EAGAIN: already read; tick() runs anyway */
		return;
	}
	uint32_t i = (uint32_t)ev->data.u64, gen = (uint32_t)(ev->data.u64 >> 32);
	if (i < p->n && p->c[i].gen == gen && p->c[i].fd >= 0)
		conn_event(p, &p->c[i], ev->events);
}

static void finish(lp *p)
{
	for (uint32_t i = 0; i < p->n; i++)
		conn_finish(p, &p->c[i]);
	if (p->phase < PH_GRACE) {           /* deadline hit before the window closed */
		p->res->open_we = 0;
		p->res->cpu_we_us = own_cpu_us();
	}
}

int load_main(const bench_opts *o, bench_ctl *ctl, bench_res *res, int id)
{
	lp *p = calloc(1, sizeof *p);
	if (!p || lp_init(p, o, ctl, res, id) < 0) {
		fprintf(stderr, "audiogw-bench: load process %d: setup failed: %s\n", id, strerror(errno));
		return 1;
	}
	atomic_store(&res->ready, 1);
	struct epoll_event evs[EVENTS_MAX];
	while (p->phase != PH_STOP && now_ns() < p->deadline) {
		int n = epoll_wait(p->ep, evs, EVENTS_MAX, PHASE_POLL_NS / 1000000 + 1);
		for (int i = 0; i < n; i++)
			dispatch(p, &evs[i]);
		tick(p, now_ns());
	}
	finish(p);
	atomic_store(&res->done, 1);
	return 0;
}
