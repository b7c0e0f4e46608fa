/* stats.c: the bounded-memory counters of audiogw-bench: a log-linear
 * latency histogram (fixed array, mergeable by addition), small key/count
 * tables, and the merge of the load processes' results. */
#include "bench.h"

#include <string.h>
#include <time.h>

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- histogram ------------------------------------------------------------ */

static uint32_t hist_index(uint64_t v)
{
	if (v >= (1ull << HIST_TOP_BIT))
		v = (1ull << HIST_TOP_BIT) - 1;
	if (v < 2 * HIST_SUB)
		return (uint32_t)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - (int)HIST_SUB_BITS;
	return (uint32_t)(shift + 1) * HIST_SUB + (uint32_t)((v >> shift) - HIST_SUB);
}

static uint64_t hist_upper(uint32_t idx)
{
	if (idx < 2 * HIST_SUB)
		return idx;
	uint32_t shift = idx / HIST_SUB - 1;
	uint64_t m = idx % HIST_SUB + HIST_SUB;
	return ((m + 1) << shift) - 1;
}

void hist_add(hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(hist *dst, const hist *src)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->n += src->n;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_quantile(const hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t target = (uint64_t)(q * (double)h->n + 0.999999);
	if (target < 1)
		target = 1;
	uint64_t cum = 0;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		cum += h->b[i];
		if (cum >= target) {
			uint64_t u = hist_upper(i);
			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

/* ---- key/count tables ------------------------------------------------------ */

void kv_add(kv_table *t, int32_t key, uint64_t n)
{
	for (uint32_t i = 0; i < t->used; i++)
		if (t->e[i].key == key) {
			t->e[i].n += n;
			return;
		}
	if (t->used == BENCH_KV_MAX) {
		t->other += n;
		return;
	}
	t->e[t->used].key = key;
	t->e[t->used].n = n;
	t->used++;
}

void kv_merge(kv_table *dst, const kv_table *src)
{
	for (uint32_t i = 0; i < src->used; i++)
		kv_add(dst, src->e[i].key, src->e[i].n);
	dst->other += src->other;
}

uint64_t kv_total(const kv_table *t)
{
	uint64_t s = t->other;
	for (uint32_t i = 0; i < t->used; i++)
		s += t->e[i].n;
	return s;
}

/* ---- merge of the load processes' results ----------------------------------- */

static void merge_times(bench_res *d, const bench_res *s)
{
	if (s->first_ok_ns && (!d->first_ok_ns || s->first_ok_ns < d->first_ok_ns))
		d->first_ok_ns = s->first_ok_ns;
	if (s->last_ok_ns > d->last_ok_ns)
		d->last_ok_ns = s->last_ok_ns;
}

void bench_merge(bench_res *d, const bench_res *s)
{
	d->conns += s->conns;
	d->init_ok += s->init_ok;
	d->init_fail += s->init_fail;
	merge_times(d, s);
	d->hs_ok += s->hs_ok;
	d->hs_fail += s->hs_fail;
	d->hs_timeout += s->hs_timeout;
	d->bad_accept += s->bad_accept;
	kv_merge(&d->hs_status, &s->hs_status);
	kv_merge(&d->conn_errno, &s->conn_errno);
	kv_merge(&d->closes, &s->closes);
	d->lost += s->lost;
	d->closes_window += s->closes_window;
	d->lost_window += s->lost_window;
	d->refused_window += s->refused_window;
	d->drains += s->drains;
	d->error_msgs += s->error_msgs;
	d->rate_limited += s->rate_limited;
	d->ws_errors += s->ws_errors;
	d->reconnects += s->reconnects;
	d->open_ws += s->open_ws;
	d->open_we += s->open_we;
	for (int i = 0; i < BENCH_MAX_WORKERS; i++) {
		d->worker_open[i] += s->worker_open[i];
		d->worker_dropped[i] += s->worker_dropped[i];
	}
	d->sent_total += s->sent_total;
	d->sent_window += s->sent_window;
	d->send_skipped += s->send_skipped;
	d->send_dropped += s->send_dropped;
	d->send_lag += s->send_lag;
	d->expected += s->expected;
	d->received += s->received;
	d->received_other += s->received_other;
	d->received_early += s->received_early;
	d->self_echo += s->self_echo;
	d->wrong_room += s->wrong_room;
	d->bad_frames += s->bad_frames;
	d->cpu_ws_us += s->cpu_ws_us;
	d->cpu_we_us += s->cpu_we_us;
	hist_merge(&d->lat, &s->lat);
	hist_merge(&d->hs, &s->hs);
	hist_merge(&d->reconn, &s->reconn);
}
