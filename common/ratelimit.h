/* ratelimit.h: a token bucket in integer arithmetic (per session frames,
 * per worker handshakes), the abuse detector of SPEC 4.4/issue 4 (a sender
 * that stays above a multiple of its rate for several whole seconds), and
 * the pace of a worker's writes under limits.write_coalesce = auto.
 * Pure functions of the time passed in: no clock reads, no allocation. */
#ifndef AGW_RATELIMIT_H
#define AGW_RATELIMIT_H

#include <stdint.h>

typedef struct token_bucket {
	int64_t tokens_milli;        /* thousandths of a token */
	int64_t last_ms;
	int64_t rate;                /* tokens per second; 0 = unlimited */
	int64_t burst;               /* capacity in tokens */
} token_bucket;

void tb_init(token_bucket *b, int64_t rate, int64_t burst, int64_t now_ms);
/* Changes the limits, keeping the tokens (capped to the new burst). */
void tb_set(token_bucket *b, int64_t rate, int64_t burst);
/* 1 = take one token (allowed), 0 = over the limit. */
int tb_take(token_bucket *b, int64_t now_ms);

typedef struct abuse_meter {
	int64_t second_start_ms;
	int64_t count;               /* events in the current second */
	int32_t over_seconds;        /* consecutive whole seconds over the threshold */
} abuse_meter;

/* Counts one event; returns 1 when the rate has been above threshold per
 * second for at least `seconds` consecutive seconds. */
int abuse_note(abuse_meter *m, int64_t threshold, int seconds, int64_t now_ms);

/* write_coalesce = auto. Holding output pays only where it gathers: a
 * client that gets fewer than PACE_MIN_GATHER frames per PACE_COALESCE_MS
 * would get the same number of send()s, each later (seed-like rooms: 24
 * frames/s per listener), so below that rate nothing is held. Above it, a
 * worker whose event loop was busy (not waiting in epoll) for at least
 * PACE_BUSY_HIGH of the last period writes each client at most every
 * PACE_COALESCE_MS; one busy for at most PACE_BUSY_LOW writes at the end of
 * every turn again; in between it keeps what it had, so that the CPU which
 * holding saves does not switch it straight back. busy is the share in
 * [0, 1], client_fps the audio frames written per second per connection;
 * returns the interval (ms) for the next period. */
#define PACE_COALESCE_MS 20
#define PACE_MIN_GATHER 2.0
#define PACE_BUSY_HIGH 0.80
#define PACE_BUSY_LOW 0.40
int64_t pace_interval(int64_t current_ms, double busy, double client_fps);

#endif
