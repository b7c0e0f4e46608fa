/* clock.c: see clock.h. */
#include "common/clock.h"

#include <stdio.h>
#include <time.h>

static int64_t clock_read_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_us(void) { return clock_read_us(CLOCK_MONOTONIC); }
int64_t clock_mono_ms(void) { return clock_read_us(CLOCK_MONOTONIC) / 1000; }
int64_t clock_wall_us(void) { return clock_read_us(CLOCK_REALTIME); }

void clock_format_rfc3339(int64_t wall_us, char *buf, int len)
{
	time_t t = (time_t)(wall_us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, (size_t)len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct timespec clock_deadline_ms(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}
