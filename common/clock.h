/* clock.h: time sources. Monotonic milliseconds for timers and rate limits,
 * wall-clock microseconds for audit rows and log lines. */
#ifndef AGW_CLOCK_H
#define AGW_CLOCK_H
#include <stdint.h>
#include <time.h>

int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
int64_t clock_wall_us(void);
/* CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a condition
 * variable set to CLOCK_MONOTONIC. */
struct timespec clock_deadline_ms(int ms);
/* RFC 3339 UTC with seconds, e.g. 2026-11-22T10:00:00Z. */
void clock_format_rfc3339(int64_t wall_us, char *buf, int len);

#endif
