/* test_ratelimit.c: unit tests for common/ratelimit.c: the token bucket
 * (per session frames, per worker handshakes) and the abuse meter that
 * closes a sender staying far above its rate (4004). */
#include "common/ratelimit.h"

#include <check.h>
#include <stdlib.h>

/* Takes tokens at time now until refused; returns how many were granted
 * (stops at limit to catch an unlimited bucket). */
static int drain(token_bucket *b, int64_t now, int limit)
{
	int n = 0;
	while (n < limit && tb_take(b, now))
		n++;
	return n;
}

/* ---- token bucket ------------------------------------------------------- */

START_TEST(test_tb_burst_at_start)
{
	token_bucket b;
	tb_init(&b, 50, 10, 1000);
	ck_assert_int_eq(drain(&b, 1000, 1000), 10);
	ck_assert_int_eq(tb_take(&b, 1000), 0);
	/* a burst of 1 */
	tb_init(&b, 50, 1, 0);
	ck_assert_int_eq(drain(&b, 0, 1000), 1);
	/* burst 0 with a rate: never anything */
	tb_init(&b, 50, 0, 0);
	ck_assert_int_eq(drain(&b, 0, 1000), 0);
	ck_assert_int_eq(drain(&b, 100000, 1000), 0);
}
END_TEST

START_TEST(test_tb_refill_exact)
{
	token_bucket b;
	tb_init(&b, 50, 5, 0);          /* one token every 20 ms */
	ck_assert_int_eq(drain(&b, 0, 1000), 5);
	ck_assert_int_eq(tb_take(&b, 19), 0);
	ck_assert_int_eq(tb_take(&b, 20), 1);
	ck_assert_int_eq(tb_take(&b, 20), 0);
	ck_assert_int_eq(tb_take(&b, 39), 0);
	ck_assert_int_eq(tb_take(&b, 40), 1);
	/* 1 ms steps: exactly one token every 20 ms, no rounding loss */
	int granted = 0;
	for (int64_t t = 41; t <= 40 + 10000; t++)
		granted += tb_take(&b, t);
	ck_assert_int_eq(granted, 500);
	/* a rate that does not divide 1000: 3 per second = 1 per 333.3 ms */
	tb_init(&b, 3, 1, 0);
	ck_assert_int_eq(tb_take(&b, 0), 1);
	ck_assert_int_eq(tb_take(&b, 333), 0);
	ck_assert_int_eq(tb_take(&b, 334), 1);
	granted = 0;
	for (int64_t t = 335; t < 334 + 60000; t++)
		granted += tb_take(&b, t);
	ck_assert_int_eq(granted, 179);   /* 60 s at 3/s less the token just taken */
	/* high rate: 1000/s = one per ms */
	tb_init(&b, 1000, 1, 0);
	ck_assert_int_eq(drain(&b, 0, 10), 1);
	for (int64_t t = 1; t <= 1000; t++) {
		ck_assert_int_eq(tb_take(&b, t), 1);
		ck_assert_int_eq(tb_take(&b, t), 0);
	}
	/* more than one token per ms */
	tb_init(&b, 5000, 5, 0);
	ck_assert_int_eq(drain(&b, 0, 100), 5);
	ck_assert_int_eq(drain(&b, 1, 100), 5);
	ck_assert_int_eq(drain(&b, 3, 100), 5);   /* 10 refilled, capped at 5 */
}
END_TEST

START_TEST(test_tb_cap_at_burst)
{
	token_bucket b;
	tb_init(&b, 100, 8, 0);
	ck_assert_int_eq(drain(&b, 0, 1000), 8);
	/* an hour idle refills to the burst only */
	ck_assert_int_eq(drain(&b, 3600 * 1000, 1000), 8);
	/* partially used, then idle: still capped */
	ck_assert_int_eq(drain(&b, 3600 * 1000 + 30, 2), 2);   /* 3 refilled, take 2 */
	ck_assert_int_eq(drain(&b, 3600 * 1000 + 10000, 1000), 8);
	/* very long idle with a large rate does not overflow */
	tb_init(&b, 1000000, 3, 0);
	ck_assert_int_eq(drain(&b, 0, 100), 3);
	ck_assert_int_eq(drain(&b, (int64_t)1000 * 1000 * 1000 * 1000, 100), 3);
}
END_TEST

START_TEST(test_tb_unlimited)
{
	token_bucket b;
	tb_init(&b, 0, 0, 0);
	ck_assert_int_eq(drain(&b, 0, 100000), 100000);
	ck_assert_int_eq(drain(&b, -5, 100000), 100000);
	tb_init(&b, 0, 5, 0);
	ck_assert_int_eq(drain(&b, 0, 100000), 100000);
	/* switching a limited bucket to unlimited and back */
	tb_init(&b, 10, 2, 0);
	ck_assert_int_eq(drain(&b, 0, 100), 2);
	tb_set(&b, 0, 2);
	ck_assert_int_eq(drain(&b, 0, 1000), 1000);
	tb_set(&b, 10, 2);
	ck_assert_int_eq(drain(&b, 0, 100), 0);      /* no tokens were made meanwhile */
	ck_assert_int_eq(drain(&b, 100, 100), 1);
}
END_TEST

START_TEST(test_tb_set)
{
	token_bucket b;
	tb_init(&b, 10, 20, 0);
	tb_set(&b, 10, 5);                           /* shrink: tokens capped */
	ck_assert_int_eq(drain(&b, 0, 1000), 5);
	ck_assert_int_eq(drain(&b, 100000, 1000), 5);  /* refills to the new burst */
	/* growing keeps the tokens; the new burst is reached by refill */
	tb_set(&b, 10, 50);
	ck_assert_int_eq(drain(&b, 100000, 1000), 0);
	ck_assert_int_eq(drain(&b, 100000 + 1000, 1000), 10);
	ck_assert_int_eq(drain(&b, 100000 + 60000, 1000), 50);
	/* shrinking a partly used bucket to above its tokens keeps them */
	tb_init(&b, 10, 10, 0);
	ck_assert_int_eq(drain(&b, 0, 7), 7);        /* 3 left */
	tb_set(&b, 10, 5);
	ck_assert_int_eq(drain(&b, 0, 1000), 3);
	/* a new rate applies from the next refill */
	tb_init(&b, 10, 1, 0);
	ck_assert_int_eq(drain(&b, 0, 10), 1);
	tb_set(&b, 1000, 1);
	ck_assert_int_eq(tb_take(&b, 1), 1);
	ck_assert_int_eq(tb_take(&b, 1), 0);
	/* shrink to 0 */
	tb_init(&b, 10, 10, 0);
	tb_set(&b, 10, 0);
	ck_assert_int_eq(drain(&b, 0, 100), 0);
	ck_assert_int_eq(drain(&b, 10000, 100), 0);
}
END_TEST

START_TEST(test_tb_time_backwards)
{
	token_bucket b;
	/* a step back neither adds nor takes away tokens */
	tb_init(&b, 10, 2, 10000);                  /* one token per 100 ms */
	ck_assert_int_eq(drain(&b, 9000, 100), 2);
	ck_assert_int_eq(drain(&b, 10000, 100), 0);
	ck_assert_int_eq(drain(&b, 10100, 100), 1);
	tb_init(&b, 10, 2, 10000);
	ck_assert_int_eq(drain(&b, 10000, 100), 2);
	ck_assert_int_eq(drain(&b, 5000, 100), 0);  /* backwards: nothing */
	ck_assert_int_eq(drain(&b, 0, 100), 0);
	ck_assert_int_eq(drain(&b, -100000, 100), 0);
	ck_assert_int_eq(drain(&b, 10000, 100), 0); /* back to where it was */
	ck_assert_int_eq(drain(&b, 10099, 100), 0);
	ck_assert_int_eq(drain(&b, 10100, 100), 1); /* measured from 10000, not 5000 */
	/* a step backwards does not move the reference time either */
	ck_assert_int_eq(drain(&b, 10150, 100), 0);
	ck_assert_int_eq(drain(&b, 10050, 100), 0);
	ck_assert_int_eq(drain(&b, 10199, 100), 0);
	ck_assert_int_eq(drain(&b, 10200, 100), 1);
}
END_TEST

/* ---- abuse meter -------------------------------------------------------- */

/* Sends n events spread over the second [start, start + 1000); returns the
 * number of them for which the meter fired. */
static int second_of(abuse_meter *m, int64_t threshold, int seconds, int64_t start, int n)
{
	int fired = 0;
	for (int i = 0; i < n; i++)
		fired += abuse_note(m, threshold, seconds, start + (int64_t)i * 1000 / n);
	return fired;
}

START_TEST(test_abuse_exact_seconds)
{
	const int64_t T = 20;
	for (int S = 1; S <= 6; S++) {
		abuse_meter m = { .second_start_ms = 5000 };
		int64_t t = 5000;
		/* S - 1 whole seconds over the threshold: nothing */
		for (int k = 0; k < S - 1; k++, t += 1000)
			ck_assert_int_eq(second_of(&m, T, S, t, (int)T + 1), 0);
		/* the S-th second: its first T events are not over yet */
		ck_assert_int_eq(second_of(&m, T, S, t, (int)T), 0);
		/* its (T+1)-th event makes it an over second (the meter may fire
		 * here or at the next event: either is S whole seconds) */
		abuse_note(&m, T, S, t + 999);
		t += 1000;
		/* S whole seconds over: the meter fires, and keeps firing while
		 * the traffic stays over */
		ck_assert_int_eq(abuse_note(&m, T, S, t), 1);
		ck_assert_int_eq(second_of(&m, T, S, t + 1, (int)T * 3), (int)T * 3);
		ck_assert_int_eq(abuse_note(&m, T, S, t + 1000), 1);
	}
}
END_TEST

START_TEST(test_abuse_start_from_zero)
{
	/* a zeroed meter and a monotonic clock far from 0 */
	abuse_meter m = { 0 };
	int64_t t = 123456789;
	int fired = 0;
	for (int k = 0; k < 3; k++, t += 1000)
		fired += second_of(&m, 10, 3, t, 50);
	ck_assert_int_eq(fired, 0);
	ck_assert_int_eq(abuse_note(&m, 10, 3, t), 1);
}
END_TEST

START_TEST(test_abuse_at_threshold_resets)
{
	const int64_t T = 10;
	const int S = 3;
	abuse_meter m = { .second_start_ms = 0 };
	int64_t t = 0;
	/* over, over, exactly at the threshold, over, over: never 3 in a row */
	int counts[] = { 11, 50, 10, 11, 11, 10, 100, 100, 9, 11, 11 };
	for (size_t k = 0; k < sizeof counts / sizeof *counts; k++, t += 1000)
		ck_assert_int_eq(second_of(&m, T, S, t, counts[k]), 0);
	ck_assert_int_eq(abuse_note(&m, T, S, t), 0);
	/* the run 11, 11 at the end plus one more over second does fire */
	m = (abuse_meter){ .second_start_ms = 0 };
	t = 0;
	int counts2[] = { 11, 11, 10, 11, 11, 11 };
	for (size_t k = 0; k < sizeof counts2 / sizeof *counts2; k++, t += 1000)
		ck_assert_int_eq(second_of(&m, T, S, t, counts2[k]), 0);
	ck_assert_int_eq(abuse_note(&m, T, S, t), 1);
}
END_TEST

START_TEST(test_abuse_silent_gap_resets)
{
	const int64_t T = 10;
	const int S = 3;
	abuse_meter m = { .second_start_ms = 0 };
	/* two over seconds, then a silent second, then two more over seconds */
	ck_assert_int_eq(second_of(&m, T, S, 0, 20), 0);
	ck_assert_int_eq(second_of(&m, T, S, 1000, 20), 0);
	ck_assert_int_eq(second_of(&m, T, S, 3000, 20), 0);   /* 2000 ms after 1000 */
	ck_assert_int_eq(second_of(&m, T, S, 4000, 20), 0);
	ck_assert_int_eq(abuse_note(&m, T, S, 5000), 0);      /* only 2 in a row */
	/* a long silence also resets */
	m = (abuse_meter){ .second_start_ms = 0 };
	ck_assert_int_eq(second_of(&m, T, S, 0, 20), 0);
	ck_assert_int_eq(second_of(&m, T, S, 1000, 20), 0);
	ck_assert_int_eq(second_of(&m, T, S, 60000, 20), 0);
	ck_assert_int_eq(second_of(&m, T, S, 61000, 20), 0);
	ck_assert_int_eq(abuse_note(&m, T, S, 62000), 0);
	ck_assert_int_eq(second_of(&m, T, S, 62001, 20), 0);
	ck_assert_int_eq(abuse_note(&m, T, S, 63000), 1);     /* 60000, 61000, 62000 */
	/* just under 2 s after the start of the last second: no reset */
	m = (abuse_meter){ .second_start_ms = 0 };
	ck_assert_int_eq(second_of(&m, T, S, 0, 20), 0);
	ck_assert_int_eq(second_of(&m, T, S, 1000, 20), 0);
	for (int i = 0; i < 20; i++)        /* the whole third second in its last ms */
		ck_assert_int_eq(abuse_note(&m, T, S, 2999), 0);
	ck_assert_int_eq(abuse_note(&m, T, S, 3000), 1);
}
END_TEST

START_TEST(test_abuse_below_never)
{
	const int64_t T = 25;
	abuse_meter m = { .second_start_ms = 0 };
	int fired = 0;
	for (int k = 0; k < 600; k++)
		fired += second_of(&m, T, 1, (int64_t)k * 1000, (int)T);   /* exactly T */
	ck_assert_int_eq(fired, 0);
	/* bursty but at most T per whole second */
	m = (abuse_meter){ .second_start_ms = 0 };
	for (int k = 0; k < 600; k++)
		for (int i = 0; i < T; i++)
			fired += abuse_note(&m, T, 1, (int64_t)k * 1000 + 999);
	ck_assert_int_eq(fired, 0);
	/* time going backwards only adds to the current second */
	m = (abuse_meter){ .second_start_ms = 10000 };
	for (int i = 0; i < T; i++)
		fired += abuse_note(&m, T, 1, 10000 - i);
	fired += abuse_note(&m, T, 1, 11000);
	ck_assert_int_eq(fired, 0);
}
END_TEST

/* write_coalesce = auto: on when busy, off when idle, unchanged between,
 * for clients that get enough frames to gather (500/s: 10 per hold). */
START_TEST(test_pace_hysteresis)
{
	const double fps = 500;
	ck_assert_int_eq(pace_interval(0, 0.0, fps), 0);
	ck_assert_int_eq(pace_interval(0, 0.5, fps), 0);                  /* between: stays off */
	ck_assert_int_eq(pace_interval(0, PACE_BUSY_HIGH, fps), PACE_COALESCE_MS);
	ck_assert_int_eq(pace_interval(0, 1.0, fps), PACE_COALESCE_MS);
	ck_assert_int_eq(pace_interval(PACE_COALESCE_MS, 0.79, fps), PACE_COALESCE_MS); /* stays on */
	ck_assert_int_eq(pace_interval(PACE_COALESCE_MS, 0.41, fps), PACE_COALESCE_MS);
	ck_assert_int_eq(pace_interval(PACE_COALESCE_MS, PACE_BUSY_LOW, fps), 0);
	ck_assert_int_eq(pace_interval(PACE_COALESCE_MS, 0.0, fps), 0);
}
END_TEST

/* Holding gathers nothing for clients that get a frame every 40 ms (seed:
 * 24 frames/s): never on for them, however busy; off when the rate drops. */
START_TEST(test_pace_only_where_it_gathers)
{
	double least = PACE_MIN_GATHER * 1000 / PACE_COALESCE_MS;   /* 100 frames/s */
	ck_assert_int_eq(pace_interval(0, 1.0, 24), 0);
	ck_assert_int_eq(pace_interval(0, 1.0, least - 1), 0);
	ck_assert_int_eq(pace_interval(0, 1.0, least), PACE_COALESCE_MS);
	ck_assert_int_eq(pace_interval(PACE_COALESCE_MS, 1.0, 24), 0);
	ck_assert_int_eq(pace_interval(0, 1.0, 0), 0);              /* no connections */
}
END_TEST

static Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tb = tcase_create("token_bucket");
	tcase_add_test(tb, test_tb_burst_at_start);
	tcase_add_test(tb, test_tb_refill_exact);
	tcase_add_test(tb, test_tb_cap_at_burst);
	tcase_add_test(tb, test_tb_unlimited);
	tcase_add_test(tb, test_tb_set);
	tcase_add_test(tb, test_tb_time_backwards);
	suite_add_tcase(s, tb);

	TCase *ab = tcase_create("abuse");
	tcase_add_test(ab, test_abuse_exact_seconds);
	tcase_add_test(ab, test_abuse_start_from_zero);
	tcase_add_test(ab, test_abuse_at_threshold_resets);
	tcase_add_test(ab, test_abuse_silent_gap_resets);
	tcase_add_test(ab, test_abuse_below_never);
	suite_add_tcase(s, ab);

	TCase *pc = tcase_create("pace");
	tcase_add_test(pc, test_pace_hysteresis);
	tcase_add_test(pc, test_pace_only_where_it_gathers);
	suite_add_tcase(s, pc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ratelimit_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
