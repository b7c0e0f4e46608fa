/* test_ptrq.c: unit tests for common/ptrq.c, the bounded pointer ring under
 * the session queues (SPEC 4.4: the audio queue drops the oldest frame). */
#include "common/ptrq.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

/* Distinct non-NULL pointers standing for entries: 1, 2, 3, ... */
#define P(n) ((void *)(uintptr_t)(n))
#define N(p) ((uintptr_t)(p))

/* What a drop callback saw, in order. */
static uintptr_t dropped[4096];
static int n_dropped;

static void record_drop(void *p)
{
	ck_assert_int_lt(n_dropped, 4096);
	dropped[n_dropped++] = N(p);
}

START_TEST(test_init_empty)
{
	ptrq q;
	ck_assert_int_eq(ptrq_init(&q, 4), 0);
	ck_assert_int_eq(ptrq_empty(&q), 1);
	ck_assert_int_eq(ptrq_full(&q), 0);
	ck_assert_ptr_null(ptrq_pop(&q));
	ck_assert_ptr_null(ptrq_pop(&q));
	ck_assert_int_eq(ptrq_empty(&q), 1);
	ptrq_free(&q);
	ck_assert_ptr_null(q.slots);
	ck_assert_uint_eq(q.cap, 0);
	ptrq_free(&q);                  /* twice is harmless */
}
END_TEST

START_TEST(test_fifo)
{
	ptrq q;
	ck_assert_int_eq(ptrq_init(&q, 5), 0);
	for (uintptr_t i = 1; i <= 5; i++) {
		ck_assert_int_eq(ptrq_full(&q), 0);
		ck_assert_int_eq(ptrq_push(&q, P(i)), 0);
		ck_assert_int_eq(ptrq_empty(&q), 0);
	}
	ck_assert_int_eq(ptrq_full(&q), 1);
	ck_assert_uint_eq(q.count, 5);
	for (uintptr_t i = 1; i <= 5; i++)
		ck_assert_uint_eq(N(ptrq_pop(&q)), i);
	ck_assert_int_eq(ptrq_empty(&q), 1);
	ck_assert_ptr_null(ptrq_pop(&q));
	/* interleaved */
	ptrq_push(&q, P(10));
	ptrq_push(&q, P(11));
	ck_assert_uint_eq(N(ptrq_pop(&q)), 10);
	ptrq_push(&q, P(12));
	ck_assert_uint_eq(N(ptrq_pop(&q)), 11);
	ck_assert_uint_eq(N(ptrq_pop(&q)), 12);
	ck_assert_ptr_null(ptrq_pop(&q));
	ptrq_free(&q);
}
END_TEST

START_TEST(test_push_full_fails)
{
	ptrq q;
	ck_assert_int_eq(ptrq_init(&q, 3), 0);
	for (uintptr_t i = 1; i <= 3; i++)
		ck_assert_int_eq(ptrq_push(&q, P(i)), 0);
	ck_assert_int_eq(ptrq_push(&q, P(4)), -1);
	ck_assert_int_eq(ptrq_push(&q, P(5)), -1);
	ck_assert_uint_eq(q.count, 3);
	/* nothing was overwritten */
	ck_assert_uint_eq(N(ptrq_pop(&q)), 1);
	ck_assert_int_eq(ptrq_push(&q, P(6)), 0);    /* room again */
	ck_assert_int_eq(ptrq_push(&q, P(7)), -1);
	ck_assert_uint_eq(N(ptrq_pop(&q)), 2);
	ck_assert_uint_eq(N(ptrq_pop(&q)), 3);
	ck_assert_uint_eq(N(ptrq_pop(&q)), 6);
	ck_assert_ptr_null(ptrq_pop(&q));
	ptrq_free(&q);
}
END_TEST

START_TEST(test_drop_oldest)
{
	ptrq q;
	ck_assert_int_eq(ptrq_init(&q, 4), 0);
	for (uintptr_t i = 1; i <= 4; i++)
		ck_assert_ptr_null(ptrq_push_drop_oldest(&q, P(i)));   /* not full: NULL */
	/* full: each push hands back the oldest */
	for (uintptr_t i = 5; i <= 100; i++) {
		ck_assert_uint_eq(N(ptrq_push_drop_oldest(&q, P(i))), i - 4);
		ck_assert_uint_eq(q.count, 4);
	}
	/* the newest 4 are kept, in order */
	for (uintptr_t i = 97; i <= 100; i++)
		ck_assert_uint_eq(N(ptrq_pop(&q)), i);
	ck_assert_ptr_null(ptrq_pop(&q));
	/* cap 1 */
	ptrq_free(&q);
	ck_assert_int_eq(ptrq_init(&q, 1), 0);
	ck_assert_ptr_null(ptrq_push_drop_oldest(&q, P(1)));
	ck_assert_uint_eq(N(ptrq_push_drop_oldest(&q, P(2))), 1);
	ck_assert_uint_eq(N(ptrq_push_drop_oldest(&q, P(3))), 2);
	ck_assert_uint_eq(N(ptrq_pop(&q)), 3);
	ck_assert_ptr_null(ptrq_pop(&q));
	ptrq_free(&q);
}
END_TEST

START_TEST(test_wraparound)
{
	ptrq q;
	const uint32_t cap = 7;
	ck_assert_int_eq(ptrq_init(&q, cap), 0);
	uintptr_t next_in = 1, next_out = 1;
	/* varying fill levels so head and tail cross the end many times */
	for (int round = 0; round < 5000; round++) {
		uint32_t k = (uint32_t)(round * 5 + 3) % (cap + 1);
		for (uint32_t i = 0; i < k; i++)
			if (ptrq_push(&q, P(next_in)) == 0)
				next_in++;
		ck_assert_uint_le(q.count, cap);
		uint32_t m = (uint32_t)(round * 3 + 1) % (cap + 1);
		for (uint32_t i = 0; i < m; i++) {
			void *p = ptrq_pop(&q);
			if (!p) {
				ck_assert_uint_eq(next_out, next_in);
				break;
			}
			ck_assert_uint_eq(N(p), next_out++);
		}
		ck_assert_uint_lt(q.head, cap);
	}
	ck_assert_uint_gt(next_in, 10 * cap);
	void *p;
	while ((p = ptrq_pop(&q)))
		ck_assert_uint_eq(N(p), next_out++);
	ck_assert_uint_eq(next_out, next_in);
	/* and with drop-oldest only */
	uintptr_t v = 1;
	for (; v <= 10000; v++) {
		void *old = ptrq_push_drop_oldest(&q, P(v));
		if (v <= cap)
			ck_assert_ptr_null(old);
		else
			ck_assert_uint_eq(N(old), v - cap);
	}
	for (uintptr_t i = 10001 - cap; i <= 10000; i++)
		ck_assert_uint_eq(N(ptrq_pop(&q)), i);
	ck_assert_int_eq(ptrq_empty(&q), 1);
	ptrq_free(&q);
}
END_TEST

START_TEST(test_cap_zero)
{
	ptrq q;
	ck_assert_int_eq(ptrq_init(&q, 0), 0);
	ck_assert_int_eq(ptrq_empty(&q), 1);
	ck_assert_int_eq(ptrq_full(&q), 1);
	ck_assert_int_eq(ptrq_push(&q, P(1)), -1);
	ck_assert_ptr_null(ptrq_pop(&q));
	/* nothing can be kept: the new entry itself comes back */
	ck_assert_uint_eq(N(ptrq_push_drop_oldest(&q, P(2))), 2);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_ptr_null(ptrq_pop(&q));
	/* grow from 0, shrink to 0 */
	n_dropped = 0;
	ck_assert_int_eq(ptrq_resize(&q, 2, record_drop), 0);
	ck_assert_int_eq(n_dropped, 0);
	ck_assert_int_eq(ptrq_push(&q, P(3)), 0);
	ck_assert_int_eq(ptrq_push(&q, P(4)), 0);
	ck_assert_int_eq(ptrq_resize(&q, 0, record_drop), 0);
	ck_assert_int_eq(n_dropped, 2);
	ck_assert_uint_eq(dropped[0], 3);
	ck_assert_uint_eq(dropped[1], 4);
	ck_assert_int_eq(ptrq_empty(&q), 1);
	ck_assert_int_eq(ptrq_push(&q, P(5)), -1);
	ck_assert_ptr_null(ptrq_pop(&q));
	ptrq_free(&q);
}
END_TEST

/* Fills a ring of cap with entries 1..n via drop-oldest after rotating the
 * head to offset, so the contents wrap inside the slot array. */
static void fill_rotated(ptrq *q, uint32_t cap, uint32_t offset, uintptr_t n)
{
	ck_assert_int_eq(ptrq_init(q, cap), 0);
	for (uint32_t i = 0; i < offset; i++) {
		ptrq_push(q, P(1000000));
		ptrq_pop(q);
	}
	for (uintptr_t i = 1; i <= n; i++)
		ptrq_push_drop_oldest(q, P(i));
}

START_TEST(test_resize_larger)
{
	for (uint32_t off = 0; off < 6; off++) {
		ptrq q;
		fill_rotated(&q, 6, off, 6);    /* full: 1..6 */
		n_dropped = 0;
		ck_assert_int_eq(ptrq_resize(&q, 10, record_drop), 0);
		ck_assert_int_eq(n_dropped, 0);
		ck_assert_uint_eq(q.cap, 10);
		ck_assert_uint_eq(q.count, 6);
		for (uintptr_t i = 7; i <= 10; i++)
			ck_assert_int_eq(ptrq_push(&q, P(i)), 0);
		ck_assert_int_eq(ptrq_push(&q, P(11)), -1);
		for (uintptr_t i = 1; i <= 10; i++)
			ck_assert_uint_eq(N(ptrq_pop(&q)), i);
		ck_assert_ptr_null(ptrq_pop(&q));
		ptrq_free(&q);
	}
	/* a partly filled ring, resized larger, then used with drop-oldest */
	ptrq q;
	fill_rotated(&q, 4, 3, 2);
	n_dropped = 0;
	ck_assert_int_eq(ptrq_resize(&q, 5, record_drop), 0);
	ck_assert_int_eq(n_dropped, 0);
	for (uintptr_t i = 3; i <= 5; i++)
		ck_assert_ptr_null(ptrq_push_drop_oldest(&q, P(i)));
	ck_assert_uint_eq(N(ptrq_push_drop_oldest(&q, P(6))), 1);
	for (uintptr_t i = 2; i <= 6; i++)
		ck_assert_uint_eq(N(ptrq_pop(&q)), i);
	ptrq_free(&q);
}
END_TEST

START_TEST(test_resize_smaller)
{
	for (uint32_t off = 0; off < 8; off++) {
		ptrq q;
		fill_rotated(&q, 8, off, 20);    /* keeps 13..20 */
		n_dropped = 0;
		ck_assert_int_eq(ptrq_resize(&q, 3, record_drop), 0);
		/* the oldest five went to the callback, oldest first */
		ck_assert_int_eq(n_dropped, 5);
		for (int i = 0; i < 5; i++)
			ck_assert_uint_eq(dropped[i], 13 + (uintptr_t)i);
		ck_assert_uint_eq(q.cap, 3);
		ck_assert_uint_eq(q.count, 3);
		ck_assert_int_eq(ptrq_full(&q), 1);
		ck_assert_int_eq(ptrq_push(&q, P(99)), -1);
		/* the newest three remain, in order, and the ring keeps working */
		ck_assert_uint_eq(N(ptrq_push_drop_oldest(&q, P(21))), 18);
		for (uintptr_t i = 19; i <= 21; i++)
			ck_assert_uint_eq(N(ptrq_pop(&q)), i);
		ck_assert_ptr_null(ptrq_pop(&q));
		ptrq_free(&q);
	}
	/* shrinking to exactly the count drops nothing */
	ptrq q;
	fill_rotated(&q, 8, 5, 4);
	n_dropped = 0;
	ck_assert_int_eq(ptrq_resize(&q, 4, record_drop), 0);
	ck_assert_int_eq(n_dropped, 0);
	for (uintptr_t i = 1; i <= 4; i++)
		ck_assert_uint_eq(N(ptrq_pop(&q)), i);
	ptrq_free(&q);
	/* a large ring shrunk by many */
	ck_assert_int_eq(ptrq_init(&q, 3000), 0);
	for (uintptr_t i = 1; i <= 3000; i++)
		ck_assert_int_eq(ptrq_push(&q, P(i)), 0);
	n_dropped = 0;
	ck_assert_int_eq(ptrq_resize(&q, 1, record_drop), 0);
	ck_assert_int_eq(n_dropped, 2999);
	for (int i = 0; i < 2999; i++)
		ck_assert_uint_eq(dropped[i], (uintptr_t)i + 1);
	ck_assert_uint_eq(N(ptrq_pop(&q)), 3000);
	ptrq_free(&q);
}
END_TEST

START_TEST(test_resize_same)
{
	ptrq q;
	fill_rotated(&q, 5, 2, 7);          /* keeps 3..7 */
	n_dropped = 0;
	ck_assert_int_eq(ptrq_resize(&q, 5, record_drop), 0);
	ck_assert_int_eq(n_dropped, 0);
	for (uintptr_t i = 3; i <= 7; i++)
		ck_assert_uint_eq(N(ptrq_pop(&q)), i);
	ptrq_free(&q);
}
END_TEST

static Suite *ptrq_suite(void)
{
	Suite *s = suite_create("ptrq");
	TCase *basic = tcase_create("basic");
	tcase_add_test(basic, test_init_empty);
	tcase_add_test(basic, test_fifo);
	tcase_add_test(basic, test_push_full_fails);
	tcase_add_test(basic, test_drop_oldest);
	tcase_add_test(basic, test_wraparound);
	tcase_add_test(basic, test_cap_zero);
	suite_add_tcase(s, basic);

	TCase *resize = tcase_create("resize");
	tcase_add_test(resize, test_resize_larger);
	tcase_add_test(resize, test_resize_smaller);
	tcase_add_test(resize, test_resize_same);
	suite_add_tcase(s, resize);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ptrq_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
