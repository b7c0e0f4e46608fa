/* test_bus.c: unit tests for proto/bus.c, the messages between workers on
 * the NNG pub/sub bus: room topic + NUL, 16-byte header, payload. */
#include "proto/bus.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t rtp[] = {
	0x80, 111, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xaa, 0x00, 0xff
};

START_TEST(test_frame_round_trip)
{
	uint8_t buf[256];
	bus_msg m = { .type = BUS_FRAME, .origin = 0xbeef, .ssrc = 0x89abcdefu,
	              .recv_us = (int64_t)0x8123456789abcdefull,    /* high bit set */
	              .payload = rtp, .payload_len = sizeof rtp };
	size_t n = bus_encode(buf, sizeof buf, "lobby", &m);
	ck_assert_uint_eq(n, 6 + BUS_HEADER_LEN + sizeof rtp);
	/* the wire layout: topic, NUL, big-endian header, payload */
	ck_assert_mem_eq(buf, "lobby\0", 6);
	static const uint8_t header[BUS_HEADER_LEN] = {
		BUS_FRAME, 0, 0xbe, 0xef, 0x89, 0xab, 0xcd, 0xef,
		0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
	};
	ck_assert_mem_eq(buf + 6, header, BUS_HEADER_LEN);
	ck_assert_mem_eq(buf + 6 + BUS_HEADER_LEN, rtp, sizeof rtp);

	bus_msg d;
	memset(&d, 0x5a, sizeof d);
	ck_assert_int_eq(bus_decode(buf, n, &d), 0);
	ck_assert_str_eq(d.room, "lobby");
	ck_assert_ptr_eq(d.room, (const char *)buf);
	ck_assert_uint_eq(d.type, BUS_FRAME);
	ck_assert_uint_eq(d.event, 0);
	ck_assert_uint_eq(d.origin, 0xbeef);
	ck_assert_uint_eq(d.ssrc, 0x89abcdefu);
	ck_assert_int_eq(d.recv_us, (int64_t)0x8123456789abcdefull);
	ck_assert_int_lt(d.recv_us, 0);
	ck_assert_uint_eq(d.payload_len, sizeof rtp);
	ck_assert_ptr_eq(d.payload, buf + 6 + BUS_HEADER_LEN);
	ck_assert_mem_eq(d.payload, rtp, sizeof rtp);
}
END_TEST

START_TEST(test_recv_us_values)
{
	static const int64_t values[] = {
		0, 1, -1, INT64_MAX, INT64_MIN, (int64_t)0xffffffff, (int64_t)0x100000000ll,
		(int64_t)0x80000000ll, (int64_t)0x00000001ffffffffll, (int64_t)0xfffffffe00000001ull,
		1712345678901234ll,
	};
	uint8_t buf[64];
	for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
		bus_msg m = { .type = BUS_FRAME, .recv_us = values[i] };
		size_t n = bus_encode(buf, sizeof buf, "r", &m);
		ck_assert_uint_eq(n, 2 + BUS_HEADER_LEN);
		bus_msg d;
		ck_assert_int_eq(bus_decode(buf, n, &d), 0);
		ck_assert_int_eq(d.recv_us, values[i]);
		ck_assert_uint_eq(d.payload_len, 0);
	}
}
END_TEST

START_TEST(test_member_round_trip)
{
	uint8_t buf[256];
	for (uint8_t ev = BUS_JOINED; ev <= BUS_UNMUTED; ev++) {
		bus_msg m = { .type = BUS_MEMBER, .event = ev, .origin = 3, .ssrc = 77,
		              .payload = (const uint8_t *)"alice", .payload_len = 5 };
		size_t n = bus_encode(buf, sizeof buf, "room/ß", &m);
		ck_assert_uint_eq(n, strlen("room/ß") + 1 + BUS_HEADER_LEN + 5);
		bus_msg d;
		ck_assert_int_eq(bus_decode(buf, n, &d), 0);
		ck_assert_str_eq(d.room, "room/ß");
		ck_assert_uint_eq(d.type, BUS_MEMBER);
		ck_assert_uint_eq(d.event, ev);
		ck_assert_uint_eq(d.origin, 3);
		ck_assert_uint_eq(d.ssrc, 77);
		ck_assert_int_eq(d.recv_us, 0);
		ck_assert_uint_eq(d.payload_len, 5);
		ck_assert_mem_eq(d.payload, "alice", 5);
	}
	ck_assert_str_eq(bus_event_name(BUS_JOINED), "joined");
	ck_assert_str_eq(bus_event_name(BUS_LEFT), "left");
	ck_assert_str_eq(bus_event_name(BUS_MUTED), "muted");
	ck_assert_str_eq(bus_event_name(BUS_UNMUTED), "unmuted");
	ck_assert_str_eq(bus_event_name(0), "?");
	ck_assert_str_eq(bus_event_name(5), "?");
	ck_assert_str_eq(bus_event_name(255), "?");
}
END_TEST

START_TEST(test_close_round_trip)
{
	/* worker topic "\x01" + process entry; ssrc = registry index,
	 * recv_us = close code, payload = session id */
	uint8_t buf[128];
	const char topic[] = { BUS_WORKER_TOPIC_PREFIX, '1', '2', '\0' };
	bus_msg m = { .type = BUS_CLOSE, .origin = 65535, .ssrc = 123456, .recv_us = 4003,
	              .payload = (const uint8_t *)"AbCdEfGhIjKlMnOp", .payload_len = 16 };
	size_t n = bus_encode(buf, sizeof buf, topic, &m);
	ck_assert_uint_eq(n, 4 + BUS_HEADER_LEN + 16);
	bus_msg d;
	ck_assert_int_eq(bus_decode(buf, n, &d), 0);
	ck_assert_str_eq(d.room, topic);
	ck_assert_uint_eq((uint8_t)d.room[0], 1);
	ck_assert_uint_eq(d.type, BUS_CLOSE);
	ck_assert_uint_eq(d.origin, 65535);
	ck_assert_uint_eq(d.ssrc, 123456);
	ck_assert_int_eq(d.recv_us, 4003);
	ck_assert_uint_eq(d.payload_len, 16);
	ck_assert_mem_eq(d.payload, "AbCdEfGhIjKlMnOp", 16);
}
END_TEST

START_TEST(test_empty_room_and_payload)
{
	uint8_t buf[BUS_HEADER_LEN + 1];
	bus_msg m = { .type = BUS_FRAME, .ssrc = 1 };
	ck_assert_uint_eq(bus_encode(buf, sizeof buf, "", &m), BUS_HEADER_LEN + 1);
	bus_msg d;
	ck_assert_int_eq(bus_decode(buf, sizeof buf, &d), 0);
	ck_assert_str_eq(d.room, "");
	ck_assert_uint_eq(d.payload_len, 0);
}
END_TEST

START_TEST(test_too_small)
{
	uint8_t buf[256];
	bus_msg m = { .type = BUS_FRAME, .ssrc = 9, .payload = rtp, .payload_len = sizeof rtp };
	size_t need = 5 + BUS_HEADER_LEN + sizeof rtp;
	memset(buf, 0xee, sizeof buf);
	for (size_t cap = 0; cap < need; cap++) {
		ck_assert_uint_eq(bus_encode(buf, cap, "room", &m), 0);
		ck_assert_uint_eq(buf[0], 0xee);          /* nothing written */
	}
	ck_assert_uint_eq(bus_encode(buf, need, "room", &m), need);
	ck_assert_uint_eq(bus_encode(buf, need + 1, "room", &m), need);
	/* NULL buffer with capacity 0 */
	ck_assert_uint_eq(bus_encode(NULL, 0, "room", &m), 0);
}
END_TEST

START_TEST(test_decode_rejects)
{
	uint8_t buf[128];
	bus_msg m = { .type = BUS_MEMBER, .event = BUS_LEFT, .payload = (const uint8_t *)"u",
	              .payload_len = 1 };
	size_t n = bus_encode(buf, sizeof buf, "abc", &m);
	bus_msg d;
	ck_assert_int_eq(bus_decode(buf, n, &d), 0);
	/* no NUL anywhere */
	uint8_t nonul[40];
	memset(nonul, 'a', sizeof nonul);
	ck_assert_int_eq(bus_decode(nonul, sizeof nonul, &d), -1);
	ck_assert_int_eq(bus_decode(buf, 3, &d), -1);            /* topic cut before its NUL */
	ck_assert_int_eq(bus_decode(buf, 0, &d), -1);
	/* header too short: every length from the NUL to a full header */
	for (size_t len = 4; len < 4 + BUS_HEADER_LEN; len++)
		ck_assert_int_eq(bus_decode(buf, len, &d), -1);
	ck_assert_int_eq(bus_decode(buf, 4 + BUS_HEADER_LEN, &d), 0);   /* empty payload */
	ck_assert_uint_eq(d.payload_len, 0);
	/* unknown types */
	static const uint8_t bad_types[] = { 0, 6, 7, 0x7f, 0x80, 0xff };
	for (size_t i = 0; i < sizeof bad_types; i++) {
		uint8_t c[128];
		memcpy(c, buf, n);
		c[4] = bad_types[i];
		ck_assert_int_eq(bus_decode(c, n, &d), -1);
	}
	/* member events outside 1..4 */
	static const uint8_t bad_events[] = { 0, 5, 6, 0xff };
	for (size_t i = 0; i < sizeof bad_events; i++) {
		uint8_t c[128];
		memcpy(c, buf, n);
		c[5] = bad_events[i];
		ck_assert_int_eq(bus_decode(c, n, &d), -1);
	}
	/* the event byte does not matter for frames and closes */
	for (uint8_t t = BUS_FRAME; t <= BUS_CLOSE; t += 2) {
		uint8_t c[128];
		memcpy(c, buf, n);
		c[4] = t;
		c[5] = 0xff;
		ck_assert_int_eq(bus_decode(c, n, &d), 0);
	}
}
END_TEST

START_TEST(test_topic_prefix)
{
	/* NNG subscriptions match a byte prefix: the topic of room "a" must not
	 * be a prefix of any message for room "ab" (nor the other way) */
	static const char *const pairs[][2] = {
		{ "a", "ab" }, { "room", "room2" }, { "room", "room/sub" }, { "", "x" },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		uint8_t a[64], b[64];
		bus_msg m = { .type = BUS_FRAME };
		size_t na = bus_encode(a, sizeof a, pairs[i][0], &m);
		size_t nb = bus_encode(b, sizeof b, pairs[i][1], &m);
		size_t ta = strlen(pairs[i][0]) + 1, tb = strlen(pairs[i][1]) + 1;
		ck_assert_uint_gt(na, 0);
		ck_assert_uint_gt(nb, 0);
		/* the topic (the subscription) of one against the other's message */
		ck_assert_int_ne(memcmp(b, a, ta), 0);
		ck_assert(tb > na || memcmp(a, b, tb) != 0);
		/* and the topic a subscriber would use: room + NUL */
		ck_assert_mem_eq(a, pairs[i][0], ta);
		ck_assert_mem_eq(b, pairs[i][1], tb);
	}
}
END_TEST

/* A batch of two frames round-trips; truncated or empty records stop the walk. */
START_TEST(test_batch)
{
	uint8_t recs[512], out[1024], rtp[12] = { 0x80, 111 };
	size_t len = 0;
	const char *rooms[] = { "a", "bb" };
	for (int i = 0; i < 2; i++) {
		bus_msg f = { .type = BUS_FRAME, .ssrc = (uint32_t)(7 + i), .payload = rtp,
		              .payload_len = sizeof rtp };
		ck_assert_int_eq(bus_batch_append(recs, sizeof recs, &len, rooms[i], &f), 0);
	}
	ck_assert_uint_eq(len, 2 * 2 + (2 + 16 + 12) + (3 + 16 + 12));
	bus_msg b = { .type = BUS_BATCH, .payload = recs, .payload_len = len }, m, got;
	size_t n = bus_encode(out, sizeof out, BUS_BATCH_TOPIC, &b);
	ck_assert_int_eq(bus_decode(out, n, &m), 0);
	ck_assert_int_eq(m.type, BUS_BATCH);
	size_t off = 0, ilen;
	const uint8_t *inner;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(bus_batch_next(&m, &off, &inner, &ilen), 0);
		ck_assert_int_eq(bus_decode(inner, ilen, &got), 0);
		ck_assert_str_eq(got.room, rooms[i]);
		ck_assert_uint_eq(got.ssrc, (uint32_t)(7 + i));
	}
	ck_assert_int_eq(bus_batch_next(&m, &off, &inner, &ilen), 1);

	bus_msg cut = m;  /* the last record loses a byte */
	cut.payload_len = m.payload_len - 1;
	off = 0;
	ck_assert_int_eq(bus_batch_next(&cut, &off, &inner, &ilen), 0);
	ck_assert_int_eq(bus_batch_next(&cut, &off, &inner, &ilen), -1);
	cut.payload_len = 1;  /* not even a length */
	off = 0;
	ck_assert_int_eq(bus_batch_next(&cut, &off, &inner, &ilen), -1);
	static const uint8_t zero[] = { 0, 0, 1 };  /* a zero-length record */
	bus_msg z = { .type = BUS_BATCH, .payload = zero, .payload_len = sizeof zero };
	off = 0;
	ck_assert_int_eq(bus_batch_next(&z, &off, &inner, &ilen), -1);
}
END_TEST

/* A record that does not fit leaves the batch as it was. */
START_TEST(test_batch_full)
{
	uint8_t recs[64], rtp[12] = { 0x80, 111 };
	bus_msg f = { .type = BUS_FRAME, .payload = rtp, .payload_len = sizeof rtp };
	size_t len = 0;
	ck_assert_int_eq(bus_batch_append(recs, sizeof recs, &len, "room", &f), 0);
	ck_assert_uint_eq(len, 2 + 5 + 16 + 12);
	ck_assert_int_eq(bus_batch_append(recs, sizeof recs, &len, "room", &f), -1);
	ck_assert_uint_eq(len, 35);
	ck_assert_int_eq(bus_batch_append(recs, 36, &len, "r", &f), -1);  /* 1 byte left */
	ck_assert_int_eq(bus_batch_append(recs, 37, &len, "r", &f), -1);  /* the length only */
	ck_assert_uint_eq(len, 35);
}
END_TEST

static Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, test_frame_round_trip);
	tcase_add_test(tc, test_recv_us_values);
	tcase_add_test(tc, test_member_round_trip);
	tcase_add_test(tc, test_close_round_trip);
	tcase_add_test(tc, test_empty_room_and_payload);
	tcase_add_test(tc, test_too_small);
	tcase_add_test(tc, test_decode_rejects);
	tcase_add_test(tc, test_topic_prefix);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_batch_full);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bus_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
