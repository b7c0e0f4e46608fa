/* test_rtp.c: unit tests for proto/rtp.c (packet checks, accessors and
 * sequence accounting of SPEC 4.3). */
#include "proto/rtp.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A valid packet: V=2, PT 111, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304,
 * followed by payload_len bytes of 0xaa. Returns its length. */
static size_t make_packet(uint8_t *p, size_t payload_len)
{
	static const uint8_t header[RTP_HEADER_LEN] = {
		0x80, 111, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04
	};
	memcpy(p, header, sizeof header);
	memset(p + RTP_HEADER_LEN, 0xaa, payload_len);
	return RTP_HEADER_LEN + payload_len;
}

/* ---- rtp_check ---------------------------------------------------------- */

START_TEST(test_short_packets)
{
	uint8_t p[64];
	make_packet(p, 20);
	ck_assert_int_eq(rtp_check(p, (size_t)_i), RTP_TOO_SHORT);   /* 0..11 */
}
END_TEST

START_TEST(test_minimal_and_null)
{
	uint8_t p[RTP_HEADER_LEN + 160];
	ck_assert_int_eq(rtp_check(p, make_packet(p, 0)), RTP_OK);     /* header only */
	ck_assert_int_eq(rtp_check(p, make_packet(p, 160)), RTP_OK);
	ck_assert_int_eq(rtp_check(NULL, 0), RTP_TOO_SHORT);
	ck_assert_int_eq(rtp_check(NULL, 100), RTP_TOO_SHORT);
}
END_TEST

START_TEST(test_versions)
{
	uint8_t p[64];
	size_t len = make_packet(p, 10);
	for (int v = 0; v < 4; v++) {
		p[0] = (uint8_t)((p[0] & 0x3f) | (v << 6));
		ck_assert_int_eq(rtp_check(p, len), v == 2 ? RTP_OK : RTP_BAD_VERSION);
	}
}
END_TEST

START_TEST(test_csrc)
{
	uint8_t p[128];
	size_t len = make_packet(p, 80);   /* room for the CSRCs: still rejected */
	for (int cc = 1; cc < 16; cc++) {
		p[0] = (uint8_t)(0x80 | cc);
		ck_assert_int_eq(rtp_check(p, len), RTP_HAS_CSRC);
	}
}
END_TEST

/* X=1 with an extension of `words` 32-bit words, then payload_len bytes. */
static size_t make_ext_packet(uint8_t *p, uint16_t words, size_t payload_len)
{
	make_packet(p, 0);
	p[0] |= 0x10;
	p[12] = 0xbe;
	p[13] = 0xde;
	p[14] = (uint8_t)(words >> 8);
	p[15] = (uint8_t)words;
	memset(p + 16, 0x11, 4u * words);
	memset(p + 16 + 4u * words, 0xaa, payload_len);
	return 16 + 4u * words + payload_len;
}

START_TEST(test_extension)
{
	uint8_t p[512];
	size_t len = make_ext_packet(p, 0, 0);            /* empty extension */
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
	len = make_ext_packet(p, 2, 0);                    /* exactly fits */
	ck_assert_uint_eq(len, 24);
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
	ck_assert_int_eq(rtp_check(p, len - 1), RTP_BAD_EXTENSION);
	len = make_ext_packet(p, 3, 100);
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
	/* extension header itself cut off */
	make_ext_packet(p, 0, 0);
	for (size_t n = 12; n < 16; n++)
		ck_assert_int_eq(rtp_check(p, n), RTP_BAD_EXTENSION);
	/* length field claims far more than the packet */
	len = make_ext_packet(p, 1, 20);   /* 40 bytes */
	p[14] = 0xff;
	p[15] = 0xff;
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_EXTENSION);
	p[14] = 0;
	p[15] = 7;   /* 16 + 28 = 44 > 40 */
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_EXTENSION);
	p[15] = 6;   /* 16 + 24 = 40 = len: no payload left, still valid */
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
}
END_TEST

START_TEST(test_padding)
{
	uint8_t p[128];
	size_t len = make_packet(p, 10);
	p[0] |= 0x20;
	p[len - 1] = 4;
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
	p[len - 1] = 10;                 /* the whole payload is padding */
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
	p[len - 1] = 11;                 /* eats into the header */
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_PADDING);
	p[len - 1] = 0;                  /* the count includes itself */
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_PADDING);
	p[len - 1] = 255;
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_PADDING);
	/* P set on a header-only packet: the last header byte is not a count */
	len = make_packet(p, 0);
	p[0] |= 0x20;
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_PADDING);
	/* padding after an extension: counted against the payload only */
	len = make_ext_packet(p, 1, 3);  /* 20 bytes of header, 3 of payload */
	p[0] |= 0x20;
	p[len - 1] = 3;
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
	p[len - 1] = 4;
	ck_assert_int_eq(rtp_check(p, len), RTP_BAD_PADDING);
}
END_TEST

START_TEST(test_reasons)
{
	ck_assert_str_eq(rtp_status_reason(RTP_OK), "ok");
	ck_assert_str_eq(rtp_status_reason(RTP_TOO_SHORT), "too_short");
	ck_assert_str_eq(rtp_status_reason(RTP_BAD_VERSION), "bad_version");
	ck_assert_str_eq(rtp_status_reason(RTP_HAS_CSRC), "has_csrc");
	ck_assert_str_eq(rtp_status_reason(RTP_BAD_EXTENSION), "bad_extension");
	ck_assert_str_eq(rtp_status_reason(RTP_BAD_PADDING), "bad_padding");
	ck_assert_str_eq(rtp_status_reason((rtp_status)42), "unknown");
}
END_TEST

/* ---- accessors ---------------------------------------------------------- */

START_TEST(test_accessors)
{
	uint8_t p[64];
	make_packet(p, 4);
	ck_assert_uint_eq(rtp_seq(p), 0x1234);
	ck_assert_uint_eq(rtp_timestamp(p), 0xdeadbeefu);
	ck_assert_uint_eq(rtp_ssrc(p), 0x01020304u);
	ck_assert_uint_eq(rtp_payload_type(p), 111);
	ck_assert_int_eq(rtp_marker(p), 0);
	p[1] = 0x80 | 8;                 /* marker + PCMA */
	ck_assert_uint_eq(rtp_payload_type(p), 8);
	ck_assert_int_eq(rtp_marker(p), 1);
	p[2] = 0xff;
	p[3] = 0xfe;
	ck_assert_uint_eq(rtp_seq(p), 65534);
	memset(p + 4, 0xff, 4);
	ck_assert_uint_eq(rtp_timestamp(p), 0xffffffffu);
}
END_TEST

START_TEST(test_set_ssrc)
{
	uint8_t p[64], before[64];
	size_t len = make_packet(p, 30);
	memcpy(before, p, len);
	rtp_set_ssrc(p, 0xcafef00du);
	ck_assert_uint_eq(rtp_ssrc(p), 0xcafef00du);
	ck_assert_uint_eq(p[8], 0xca);
	ck_assert_uint_eq(p[11], 0x0d);
	/* nothing else changed */
	ck_assert_mem_eq(p, before, 8);
	ck_assert_mem_eq(p + 12, before + 12, len - 12);
	rtp_set_ssrc(p, 0);
	ck_assert_uint_eq(rtp_ssrc(p), 0);
	ck_assert_int_eq(rtp_check(p, len), RTP_OK);
}
END_TEST

/* ---- sequence accounting ----------------------------------------------- */

static void feed(rtp_seq_stats *s, const uint16_t *seqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rtp_seq_update(s, seqs[i]);
}

static void assert_stats(const rtp_seq_stats *s, uint64_t received, uint64_t lost,
	uint64_t duplicate, uint64_t out_of_order)
{
	ck_assert_uint_eq(s->received, received);
	ck_assert_uint_eq(s->lost, lost);
	ck_assert_uint_eq(s->duplicate, duplicate);
	ck_assert_uint_eq(s->out_of_order, out_of_order);
}

START_TEST(test_seq_in_order)
{
	rtp_seq_stats s = { 0 };
	for (uint16_t q = 100; q < 1100; q++)
		rtp_seq_update(&s, q);
	assert_stats(&s, 1000, 0, 0, 0);
	ck_assert_uint_eq(s.max_seq, 1099);
	ck_assert_uint_eq(s.resets, 0);
}
END_TEST

START_TEST(test_seq_first_packet_any_value)
{
	rtp_seq_stats s = { 0 };
	rtp_seq_update(&s, 65535);
	rtp_seq_update(&s, 0);
	assert_stats(&s, 2, 0, 0, 0);
	ck_assert_uint_eq(s.max_seq, 0);
}
END_TEST

START_TEST(test_seq_gap)
{
	rtp_seq_stats s = { 0 };
	static const uint16_t seqs[] = { 1, 2, 5, 6, 10 };   /* 3,4 and 7,8,9 missing */
	feed(&s, seqs, 5);
	assert_stats(&s, 5, 5, 0, 0);
	ck_assert_uint_eq(s.max_seq, 10);
}
END_TEST

START_TEST(test_seq_duplicate)
{
	rtp_seq_stats s = { 0 };
	static const uint16_t seqs[] = { 1, 2, 2, 3, 1, 3, 3 };
	feed(&s, seqs, 7);
	assert_stats(&s, 3, 0, 4, 0);
}
END_TEST

START_TEST(test_seq_reorder)
{
	rtp_seq_stats s = { 0 };
	static const uint16_t seqs[] = { 1, 2, 4, 3, 5 };
	feed(&s, seqs, 5);
	assert_stats(&s, 5, 0, 0, 1);
	ck_assert_uint_eq(s.max_seq, 5);
	/* the late one again is a duplicate, not a second reorder */
	rtp_seq_update(&s, 3);
	assert_stats(&s, 5, 0, 1, 1);
	/* late by 63: still inside the window */
	for (uint16_t q = 6; q < 70; q++)
		if (q != 7)
			rtp_seq_update(&s, q);
	assert_stats(&s, 68, 1, 1, 1);
	rtp_seq_update(&s, 7);          /* 69 - 7 = 62 behind */
	assert_stats(&s, 69, 0, 1, 2);
	rtp_seq_update(&s, 7);
	assert_stats(&s, 69, 0, 2, 2);
}
END_TEST

START_TEST(test_seq_late_beyond_window)
{
	rtp_seq_stats s = { 0 };
	rtp_seq_update(&s, 10);
	rtp_seq_update(&s, 200);        /* 189 lost */
	assert_stats(&s, 2, 189, 0, 0);
	rtp_seq_update(&s, 50);         /* 150 behind: late, cannot tell if seen */
	assert_stats(&s, 3, 189, 0, 1);
	ck_assert_uint_eq(s.max_seq, 200);
}
END_TEST

START_TEST(test_seq_big_forward_gap_clears_window)
{
	rtp_seq_stats s = { 0 };
	rtp_seq_update(&s, 1);
	rtp_seq_update(&s, 2);
	rtp_seq_update(&s, 102);        /* 99 lost; the window no longer holds 1, 2 */
	assert_stats(&s, 3, 99, 0, 0);
	rtp_seq_update(&s, 101);        /* in the window, not seen: fills a gap */
	assert_stats(&s, 4, 98, 0, 1);
	rtp_seq_update(&s, 164);        /* exactly 62 ahead: the window shifts */
	rtp_seq_update(&s, 101);        /* 63 behind: remembered as seen */
	assert_stats(&s, 5, 159, 1, 1);
}
END_TEST

START_TEST(test_seq_wraparound)
{
	rtp_seq_stats s = { 0 };
	rtp_seq_update(&s, 65533);
	rtp_seq_update(&s, 65534);
	rtp_seq_update(&s, 1);          /* 65535 and 0 missing */
	assert_stats(&s, 3, 2, 0, 0);
	ck_assert_uint_eq(s.max_seq, 1);
	rtp_seq_update(&s, 0);          /* late across the wrap */
	assert_stats(&s, 4, 1, 0, 1);
	rtp_seq_update(&s, 65535);
	assert_stats(&s, 5, 0, 0, 2);
	rtp_seq_update(&s, 65534);      /* seen before the wrap */
	assert_stats(&s, 5, 0, 1, 2);
	rtp_seq_update(&s, 2);
	assert_stats(&s, 6, 0, 1, 2);
	ck_assert_uint_eq(s.resets, 0);
}
END_TEST

START_TEST(test_seq_long_run_wraps)
{
	rtp_seq_stats s = { 0 };
	uint16_t q = 60000;
	for (int i = 0; i < 200000; i++)
		rtp_seq_update(&s, q++);
	assert_stats(&s, 200000, 0, 0, 0);
	ck_assert_uint_eq(s.resets, 0);
}
END_TEST

START_TEST(test_seq_jump_resets)
{
	rtp_seq_stats s = { 0 };
	rtp_seq_update(&s, 100);
	rtp_seq_update(&s, 101);
	rtp_seq_update(&s, 40000);      /* sender restart forward */
	assert_stats(&s, 3, 0, 0, 0);
	ck_assert_uint_eq(s.resets, 1);
	ck_assert_uint_eq(s.max_seq, 40000);
	rtp_seq_update(&s, 40001);
	rtp_seq_update(&s, 5);          /* restart backwards */
	assert_stats(&s, 5, 0, 0, 0);
	ck_assert_uint_eq(s.resets, 2);
	rtp_seq_update(&s, 6);
	rtp_seq_update(&s, 8);
	assert_stats(&s, 7, 1, 0, 0);
}
END_TEST

START_TEST(test_seq_jump_threshold)
{
	rtp_seq_stats s = { 0 };
	rtp_seq_update(&s, 1000);
	rtp_seq_update(&s, 1000 + RTP_SEQ_RESET_JUMP);   /* a gap, not a restart */
	assert_stats(&s, 2, RTP_SEQ_RESET_JUMP - 1, 0, 0);
	ck_assert_uint_eq(s.resets, 0);
	rtp_seq_update(&s, 1000 + 2 * RTP_SEQ_RESET_JUMP + 1);   /* 3001 ahead */
	assert_stats(&s, 3, RTP_SEQ_RESET_JUMP - 1, 0, 0);
	ck_assert_uint_eq(s.resets, 1);
	/* backwards: exactly 3000 is late, 3001 restarts */
	rtp_seq_stats b = { 0 };
	rtp_seq_update(&b, 10000);
	rtp_seq_update(&b, 10000 - RTP_SEQ_RESET_JUMP);
	assert_stats(&b, 2, 0, 0, 1);
	rtp_seq_update(&b, 10000 - RTP_SEQ_RESET_JUMP - 1);
	ck_assert_uint_eq(b.resets, 1);
	ck_assert_uint_eq(b.max_seq, 10000 - RTP_SEQ_RESET_JUMP - 1);
	assert_stats(&b, 3, 0, 0, 1);
}
END_TEST

static Suite *rtp_suite(void)
{
	Suite *s = suite_create("rtp");
	TCase *check = tcase_create("check");
	tcase_add_loop_test(check, test_short_packets, 0, RTP_HEADER_LEN);
	tcase_add_test(check, test_minimal_and_null);
	tcase_add_test(check, test_versions);
	tcase_add_test(check, test_csrc);
	tcase_add_test(check, test_extension);
	tcase_add_test(check, test_padding);
	tcase_add_test(check, test_reasons);
	suite_add_tcase(s, check);

	TCase *acc = tcase_create("accessors");
	tcase_add_test(acc, test_accessors);
	tcase_add_test(acc, test_set_ssrc);
	suite_add_tcase(s, acc);

	TCase *seq = tcase_create("sequence");
	tcase_add_test(seq, test_seq_in_order);
	tcase_add_test(seq, test_seq_first_packet_any_value);
	tcase_add_test(seq, test_seq_gap);
	tcase_add_test(seq, test_seq_duplicate);
	tcase_add_test(seq, test_seq_reorder);
	tcase_add_test(seq, test_seq_late_beyond_window);
	tcase_add_test(seq, test_seq_big_forward_gap_clears_window);
	tcase_add_test(seq, test_seq_wraparound);
	tcase_add_test(seq, test_seq_long_run_wraps);
	tcase_add_test(seq, test_seq_jump_resets);
	tcase_add_test(seq, test_seq_jump_threshold);
	suite_add_tcase(s, seq);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rtp_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
