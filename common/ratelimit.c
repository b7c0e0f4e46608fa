/* ratelimit.c: see ratelimit.h. */
#include "common/ratelimit.h"

void tb_init(token_bucket *b, int64_t rate, int64_t burst, int64_t now_ms)
{
	b->rate = rate;
	b->burst = burst;
	b->tokens_milli = burst * 1000;
	b->last_ms = now_ms;
}

void tb_set(token_bucket *b, int64_t rate, int64_t burst)
{
	b->rate = rate;
	b->burst = burst;
	if (b->tokens_milli > burst * 1000)
		b->tokens_milli = burst * 1000;
}

int tb_take(token_bucket *b, int64_t now_ms)
{
	if (b->rate <= 0)
		return 1;
	int64_t elapsed = now_ms - b->last_ms;
	if (elapsed > 0) {
		/* rate tokens/s = rate milli-tokens/ms */
		int64_t cap = b->burst * 1000;
		b->tokens_milli += elapsed * b->rate;
		if (b->tokens_milli > cap)
			b->tokens_milli = cap;
		b->last_ms = now_ms;
	}
	if (b->tokens_milli < 1000)
		return 0;
	b->tokens_milli -= 1000;
	return 1;
}

int abuse_note(abuse_meter *m, int64_t threshold, int seconds, int64_t now_ms)
{
	int64_t gap = now_ms - m->second_start_ms;
	if (gap >= 1000) {
		/* close the finished second; a silent second in between breaks the run */
		if (m->count > threshold && gap < 2000)
			m->over_seconds++;
		else
			m->over_seconds = 0;
		m->second_start_ms = gap < 2000 ? m->second_start_ms + 1000 : now_ms;
		m->count = 0;
	}
	m->count++;
	return m->over_seconds >= seconds;
}

int64_t pace_interval(int64_t current_ms, double busy, double client_fps)
{
	if (client_fps * PACE_COALESCE_MS / 1000 < PACE_MIN_GATHER)
		return 0;
	if (busy >= PACE_BUSY_HIGH)
		return PACE_COALESCE_MS;
	if (busy <= PACE_BUSY_LOW)
		return 0;
	return current_ms;
}
