/* test_downstream.c: unit tests of the pure parts of the downstream process:
 * the address allowlist and udp:// destinations (common/cidr.c), the RTP
 * timeline with gaps, late packets, discontinuities and the 32-bit
 * timestamp wrap (downstream/timeline.c), and the Ogg Opus and WAV writers,
 * read back from a temporary file (downstream/media.c). */
#include "common/cidr.h"
#include "downstream/media.h"
#include "downstream/timeline.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <ogg/ogg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- allowlist ---- */

static int allowed(const cidr_list *l, const char *url)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[200];
	ck_assert_msg(cidr_parse_udp_url(url, &ss, &len, err, sizeof err) == 0, "%s: %s", url, err);
	return cidr_match(l, (struct sockaddr *)&ss);
}

START_TEST(test_cidr_parse)
{
	cidr_list l;
	char err[200];
	ck_assert_int_eq(cidr_parse_list("127.0.0.0/8,::1/128", &l, err, sizeof err), 0);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.r[0].family, AF_INET);
	ck_assert_int_eq(l.r[0].prefix, 8);
	ck_assert_int_eq(l.r[1].family, AF_INET6);
	ck_assert_int_eq(l.r[1].prefix, 128);
	/* blanks, a bare host, host bits cleared */
	ck_assert_int_eq(cidr_parse_list(" 10.1.2.3 , 192.168.7.9/16 ", &l, err, sizeof err), 0);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.r[0].prefix, 32);
	ck_assert_int_eq(l.r[1].addr[2], 0);
	ck_assert_int_eq(l.r[1].addr[3], 0);
	/* empty lists */
	ck_assert_int_eq(cidr_parse_list("", &l, err, sizeof err), 0);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(cidr_parse_list("   ", &l, err, sizeof err), 0);
	ck_assert_int_eq(l.n, 0);
	/* errors */
	ck_assert_int_eq(cidr_parse_list("10.0.0.0/33", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad prefix length \"33\" in \"10.0.0.0/33\" (0-32)");
	ck_assert_int_eq(cidr_parse_list("::/129", &l, err, sizeof err), -1);
	ck_assert_int_eq(cidr_parse_list("10.0.0.0/", &l, err, sizeof err), -1);
	ck_assert_int_eq(cidr_parse_list("10.0.0.0/8x", &l, err, sizeof err), -1);
	ck_assert_int_eq(cidr_parse_list("example.com", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad address \"example.com\" (numeric IPv4 or IPv6 expected)");
	ck_assert_int_eq(cidr_parse_list("1.2.3.4,", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "empty item in the address list");
	ck_assert_int_eq(cidr_parse_list("/8", &l, err, sizeof err), -1);
}
END_TEST

START_TEST(test_cidr_match)
{
	cidr_list l;
	char err[200];
	ck_assert_int_eq(cidr_parse_list("127.0.0.0/8,::1/128,10.20.0.0/14", &l, err, sizeof err), 0);
	ck_assert(allowed(&l, "udp://127.0.0.1:5000"));
	ck_assert(allowed(&l, "udp://127.255.255.254:1"));
	ck_assert(!allowed(&l, "udp://128.0.0.1:5000"));
	ck_assert(!allowed(&l, "udp://192.0.2.1:5000"));
	ck_assert(allowed(&l, "udp://[::1]:5000"));
	ck_assert(!allowed(&l, "udp://[::2]:5000"));
	ck_assert(allowed(&l, "udp://10.23.255.1:9"));    /* 10.20.0.0 - 10.23.255.255 */
	ck_assert(!allowed(&l, "udp://10.24.0.1:9"));
	ck_assert(!allowed(&l, "udp://10.19.255.255:9"));
	/* an IPv4-mapped IPv6 address is its IPv4 address */
	ck_assert(allowed(&l, "udp://[::ffff:127.0.0.1]:5000"));
	ck_assert(!allowed(&l, "udp://[::ffff:192.0.2.1]:5000"));
	/* nothing allowed; everything allowed */
	ck_assert_int_eq(cidr_parse_list("", &l, err, sizeof err), 0);
	ck_assert(!allowed(&l, "udp://127.0.0.1:5000"));
	ck_assert_int_eq(cidr_parse_list("0.0.0.0/0,::/0", &l, err, sizeof err), 0);
	ck_assert(allowed(&l, "udp://192.0.2.1:5000"));
	ck_assert(allowed(&l, "udp://[2001:db8::1]:5000"));
}
END_TEST

START_TEST(test_udp_url)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[200], text[80];
	ck_assert_int_eq(cidr_parse_udp_url("udp://127.0.0.1:5004", &ss, &len, err, sizeof err), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_int_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5004);
	cidr_format((struct sockaddr *)&ss, 1, text, sizeof text);
	ck_assert_str_eq(text, "udp://127.0.0.1:5004");
	ck_assert_int_eq(cidr_parse_udp_url("udp://[::1]:65535", &ss, &len, err, sizeof err), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	cidr_format((struct sockaddr *)&ss, 1, text, sizeof text);
	ck_assert_str_eq(text, "udp://[::1]:65535");
	cidr_format((struct sockaddr *)&ss, 0, text, sizeof text);
	ck_assert_str_eq(text, "::1");
	static const char *const bad[] = {
		"tcp://127.0.0.1:5000", "udp://127.0.0.1", "udp://127.0.0.1:0", "udp://127.0.0.1:65536",
		"udp://127.0.0.1:50x", "udp://localhost:5000", "udp://::1:5000", "udp://[::1]5000",
		"udp://:5000", "udp://0.0.0.0:5000", "udp://[::]:5000", "udp://[127.0.0.1]:5000",
		"udp://127.0.0.1:123456", "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(cidr_parse_udp_url(bad[i], &ss, &len, err, sizeof err) == -1, "%s", bad[i]);
	cidr_parse_udp_url("udp://localhost:5000", &ss, &len, err, sizeof err);
	ck_assert_str_eq(err, "bad destination \"udp://localhost:5000\": the host must be a numeric "
	                      "IPv4 address or an IPv6 address in brackets");
}
END_TEST

/* ---- Opus TOC ---- */

START_TEST(test_opus_toc)
{
	uint8_t p[4] = { 0 };
	p[0] = 0xf8;                                 /* config 31: CELT 20 ms, code 0 */
	ck_assert_int_eq(opus_packet_samples(p, 3), 960);
	ck_assert_int_eq(opus_packet_channels(p, 3), 1);
	p[0] = 0xf8 | 0x04 | 1;                      /* stereo, code 1: two frames */
	ck_assert_int_eq(opus_packet_samples(p, 3), 1920);
	ck_assert_int_eq(opus_packet_channels(p, 3), 2);
	p[0] = (1 << 3);                             /* SILK NB 20 ms */
	ck_assert_int_eq(opus_packet_samples(p, 1), 960);
	p[0] = (3 << 3);                             /* SILK NB 60 ms */
	ck_assert_int_eq(opus_packet_samples(p, 1), 2880);
	p[0] = (13 << 3);                            /* hybrid 20 ms */
	ck_assert_int_eq(opus_packet_samples(p, 1), 960);
	p[0] = (16 << 3) | 3;                        /* CELT 2.5 ms, code 3 */
	p[1] = 6;
	ck_assert_int_eq(opus_packet_samples(p, 2), 720);
	ck_assert_int_eq(opus_packet_samples(p, 1), -1);
	p[1] = 0;
	ck_assert_int_eq(opus_packet_samples(p, 2), -1);
	p[0] = (3 << 3) | 3;                         /* 3 x 60 ms > 120 ms */
	p[1] = 3;
	ck_assert_int_eq(opus_packet_samples(p, 2), -1);
	ck_assert_int_eq(opus_packet_samples(p, 0), -1);
	ck_assert_int_eq(opus_packet_samples((uint8_t[]){ opus_filler_toc(960) }, 1), 960);
	ck_assert_int_eq(opus_packet_samples((uint8_t[]){ opus_filler_toc(480) }, 1), 480);
	ck_assert_int_eq(opus_packet_samples((uint8_t[]){ opus_filler_toc(240) }, 1), 240);
	ck_assert_int_eq(opus_packet_samples((uint8_t[]){ opus_filler_toc(120) }, 1), 120);
}
END_TEST

START_TEST(test_rtp_payload)
{
	uint8_t p[64] = { 0x80, 111 };
	size_t off, n;
	ck_assert_int_eq(rtp_payload_bounds(p, 20, &off, &n), 0);
	ck_assert_uint_eq(off, 12);
	ck_assert_uint_eq(n, 8);
	p[0] = 0x90;                                 /* extension of 1 word */
	p[14] = 0;
	p[15] = 1;
	ck_assert_int_eq(rtp_payload_bounds(p, 20, &off, &n), 0);
	ck_assert_uint_eq(off, 20);
	ck_assert_uint_eq(n, 0);
	p[0] = 0xa0;                                 /* padding of 3 */
	p[19] = 3;
	ck_assert_int_eq(rtp_payload_bounds(p, 20, &off, &n), 0);
	ck_assert_uint_eq(off, 12);
	ck_assert_uint_eq(n, 5);
	p[19] = 9;
	ck_assert_int_eq(rtp_payload_bounds(p, 20, &off, &n), -1);
	ck_assert_int_eq(rtp_payload_bounds(p, 11, &off, &n), -1);
}
END_TEST

/* ---- timeline ---- */

/* Feeds one 20 ms packet; returns the gap (or -1 for late) and advances. */
static int64_t feed(tl_state *t, uint32_t ts, uint16_t seq, int64_t recv_us, int64_t dur)
{
	int64_t gap;
	if (tl_place(t, ts, seq, recv_us, &gap) == TL_LATE)
		return -1;
	tl_advance(t, gap + dur);
	return gap;
}

START_TEST(test_timeline_steady_and_gap)
{
	tl_state t;
	tl_init(&t, 48000);
	uint32_t ts = 1000;
	uint16_t seq = 7;
	int64_t now = 5000000;
	for (int i = 0; i < 50; i++, ts += 960, seq++, now += 20000)
		ck_assert_int_eq(feed(&t, ts, seq, now, 960), 0);
	ck_assert_int_eq(t.end, 50 * 960);
	/* a 1 s pause: the timestamps jump 1 s further than the packets cover */
	ts += 48000;
	now += 1000000;
	ck_assert_int_eq(feed(&t, ts, seq++, now, 960), 48000);
	ck_assert_int_eq(t.end, 51 * 960 + 48000);
	ts += 960;
	now += 20000;
	ck_assert_int_eq(feed(&t, ts, seq++, now, 960), 0);
	/* a lost packet leaves a 20 ms gap */
	ts += 2 * 960;
	now += 40000;
	ck_assert_int_eq(feed(&t, ts, seq + 1, now, 960), 960);
	ck_assert_int_eq(t.late, 0);
	ck_assert_int_eq(t.jumps, 0);
}
END_TEST

START_TEST(test_timeline_wrap)
{
	tl_state t;
	tl_init(&t, 8000);
	uint32_t ts = 0xffffffffu - 160 * 5 + 1;     /* wraps after 5 packets */
	uint16_t seq = 65533;                        /* and the sequence too */
	int64_t now = 0;
	for (int i = 0; i < 20; i++, ts += 160, seq++, now += 20000)
		ck_assert_int_eq(feed(&t, ts, seq, now, 160), 0);
	ck_assert_int_eq(t.end, 20 * 160);
	/* a gap across the wrap */
	tl_init(&t, 48000);
	ts = 0xffffffffu - 959;
	ck_assert_int_eq(feed(&t, ts, 1, 0, 960), 0);
	ts += 960 + 48000;                           /* 0xffffffff - 959 + 48960 wraps */
	ck_assert_uint_lt(ts, 50000);
	ck_assert_int_eq(feed(&t, ts, 2, 1020000, 960), 48000);
	ck_assert_int_eq(t.end, 960 + 48000 + 960);
	ck_assert_int_eq(t.jumps, 0);
}
END_TEST

START_TEST(test_timeline_late_and_overlap)
{
	tl_state t;
	tl_init(&t, 48000);
	ck_assert_int_eq(feed(&t, 0, 10, 0, 960), 0);
	ck_assert_int_eq(feed(&t, 960, 11, 20000, 960), 0);
	/* seq 13 before 12: 13 leaves a gap, 12 comes too late for it */
	ck_assert_int_eq(feed(&t, 2880, 13, 60000, 960), 960);
	ck_assert_int_eq(feed(&t, 1920, 12, 61000, 960), -1);
	/* a duplicate */
	ck_assert_int_eq(feed(&t, 2880, 13, 62000, 960), -1);
	ck_assert_int_eq(t.late, 2);
	/* a newer packet whose timestamp overlaps the last: appended */
	ck_assert_int_eq(feed(&t, 2880 + 900, 14, 80000, 960), 0);
	ck_assert_int_eq(t.end, 5 * 960);
	ck_assert_int_eq(t.last_pos, 3780);
	/* the next one follows its own timestamp again */
	ck_assert_int_eq(feed(&t, 2880 + 900 + 960 + 960, 15, 120000, 960), 960 - 60);
}
END_TEST

START_TEST(test_timeline_discontinuity)
{
	tl_state t;
	tl_init(&t, 48000);
	int64_t now = 0;
	ck_assert_int_eq(feed(&t, 100, 1, now, 960), 0);
	ck_assert_int_eq(feed(&t, 1060, 2, now + 20000, 960), 0);
	/* the sender restarts its clock 2^31 away, 3 s later: placed by receive time */
	now += 20000 + 3000000;
	ck_assert_int_eq(feed(&t, 1060 + 0x80000000u, 3, now, 960), 3 * 48000 - 960);
	ck_assert_int_eq(t.jumps, 1);
	ck_assert_int_eq(feed(&t, 1060 + 0x80000000u + 960, 4, now + 20000, 960), 0);
	/* a restart just behind its old clock with a lower sequence: late for a
	 * while, then taken as a discontinuity */
	uint32_t ts = 1060 + 0x80000000u + 960 - 48000;
	int64_t lates = 0, gap;
	for (int i = 0; i < 100; i++, ts += 960) {
		gap = feed(&t, ts, (uint16_t)(100 + i) - 200, now + 40000 + 20000 * i, 960);
		if (gap < 0)
			lates++;
	}
	ck_assert_int_eq(lates, TL_LATE_RESET - 1);
	ck_assert_int_eq(t.jumps, 2);
	/* a very long pause is capped */
	tl_init(&t, 8000);
	ck_assert_int_eq(feed(&t, 0, 1, 0, 160), 0);
	ck_assert_int_eq(feed(&t, 8000 * 3600, 2, 3600LL * 1000000, 160), TL_MAX_GAP_S * 8000);
	ck_assert_int_eq(t.capped, 1);
	ck_assert_int_eq(feed(&t, 8000 * 3600 + 160, 3, 3600LL * 1000000 + 20000, 160), 0);
}
END_TEST

/* ---- Ogg Opus writer ---- */

static FILE *temp_stream(char *path)
{
	strcpy(path, "/tmp/agw-test-ds-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w+b");
	ck_assert_ptr_nonnull(f);
	return f;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(*len + 1);
	ck_assert_uint_eq(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

START_TEST(test_ogg_opus_writer)
{
	char path[64];
	FILE *f = temp_stream(path);
	oggw w;
	const char *comments[] = { "ROOM=r1", "USER=alice" };
	ck_assert_int_eq(oggw_start(&w, f, 1234, 2, "audiogwd test", comments, 2), 0);
	uint8_t pkt[40];
	memset(pkt, 0x55, sizeof pkt);
	pkt[0] = 0xfc;                               /* CELT 20 ms, stereo */
	int64_t granule = 0;
	for (int i = 0; i < 300; i++) {
		if (i == 150) {                      /* a 1 s gap: 50 fillers */
			for (int k = 0; k < 50; k++) {
				uint8_t toc = opus_filler_toc(960);
				granule += 960;
				ck_assert_int_eq(oggw_packet(&w, &toc, 1, granule), 0);
			}
		}
		granule += 960;
		ck_assert_int_eq(oggw_packet(&w, pkt, sizeof pkt, granule), 0);
		if (i == 100)
			ck_assert_int_eq(oggw_flush(&w), 0);
	}
	ck_assert_int_eq(oggw_finish(&w), 0);
	fclose(f);

	size_t len;
	unsigned char *data = slurp(path, &len);
	ck_assert_uint_eq(len, w.bytes);
	ogg_sync_state oy;
	ogg_stream_state os;
	ogg_page og;
	ogg_packet op;
	ogg_sync_init(&oy);
	char *buf = ogg_sync_buffer(&oy, (long)len);
	memcpy(buf, data, len);
	ogg_sync_wrote(&oy, (long)len);
	int pages = 0, packets = 0, eos = 0, fillers = 0;
	int64_t last_granule = -1, sum = 0;
	while (ogg_sync_pageout(&oy, &og) == 1) {
		if (pages == 0) {
			ck_assert(ogg_page_bos(&og));
			ck_assert_int_eq(ogg_page_serialno(&og), 1234);
			ogg_stream_init(&os, ogg_page_serialno(&og));
		} else {
			ck_assert(!ogg_page_bos(&og));
		}
		ck_assert(!eos);
		eos = ogg_page_eos(&og);
		int64_t g = ogg_page_granulepos(&og);
		if (pages >= 2) {
			ck_assert_int_gt(g, last_granule);   /* granules increase */
		} else {
			ck_assert_int_eq(g, 0);              /* the header pages */
		}
		last_granule = g;
		ck_assert_int_eq(ogg_stream_pagein(&os, &og), 0);
		int on_page = 0;
		while (ogg_stream_packetout(&os, &op) == 1) {
			if (packets == 0) {
				ck_assert_int_eq(op.bytes, 19);
				ck_assert_int_eq(memcmp(op.packet, "OpusHead", 8), 0);
				ck_assert_int_eq(op.packet[8], 1);
				ck_assert_int_eq(op.packet[9], 2);
				ck_assert_int_eq(op.packet[10] | op.packet[11] << 8, 0);
				ck_assert_int_eq(op.packet[12] | op.packet[13] << 8 | op.packet[14] << 16, 48000);
				ck_assert_int_eq(op.packet[18], 0);
			} else if (packets == 1) {
				ck_assert_int_eq(memcmp(op.packet, "OpusTags", 8), 0);
				ck_assert_int_eq(op.packet[8], 13);
				ck_assert_int_eq(memcmp(op.packet + 12, "audiogwd test", 13), 0);
				ck_assert_int_eq(op.packet[25], 2);
				ck_assert_int_eq(memcmp(op.packet + 33, "ROOM=r1", 7), 0);
			} else {
				sum += opus_packet_samples(op.packet, (size_t)op.bytes);
				fillers += op.bytes == 1;
			}
			packets++;
			on_page++;
		}
		if (pages < 2)
			ck_assert_int_eq(on_page, 1);       /* each header alone on its page */
		else
			ck_assert_int_eq(sum, g);           /* durations add up to the granule */
		pages++;
	}
	ck_assert(eos);
	ck_assert_int_eq(packets, 2 + 300 + 50);
	ck_assert_int_eq(fillers, 50);
	ck_assert_int_eq(last_granule, (300 + 50) * 960);
	ogg_stream_clear(&os);
	ogg_sync_clear(&oy);
	free(data);
	unlink(path);
}
END_TEST

/* ---- WAV writer ---- */

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

START_TEST(test_wav_pcm)
{
	char path[64];
	FILE *f = temp_stream(path);
	wavw w;
	ck_assert_int_eq(wavw_start(&w, f, WAV_PCM, 48000, 16, 1), 0);
	uint8_t be[4] = { 0x12, 0x34, 0xff, 0xfe }, le[4];
	l16_be_to_le(le, be, 4);
	ck_assert_int_eq(le[0], 0x34);
	ck_assert_int_eq(le[1], 0x12);
	ck_assert_int_eq(le[2], 0xfe);
	ck_assert_int_eq(le[3], 0xff);
	ck_assert_int_eq(wavw_write(&w, le, 4), 0);
	ck_assert_int_eq(wavw_fixup(&w), 0);       /* mid-file fixup keeps appending at the end */
	ck_assert_int_eq(wavw_silence(&w, 3000), 0);
	ck_assert_int_eq(wavw_write(&w, le, 4), 0);
	ck_assert_int_eq(wavw_finish(&w), 0);
	fclose(f);
	size_t len;
	unsigned char *d = slurp(path, &len);
	ck_assert_uint_eq(len, 44 + 4 + 6000 + 4);
	ck_assert_int_eq(memcmp(d, "RIFF", 4), 0);
	ck_assert_uint_eq(rd32(d + 4), len - 8);
	ck_assert_int_eq(memcmp(d + 8, "WAVEfmt ", 8), 0);
	ck_assert_uint_eq(rd32(d + 16), 16);
	ck_assert_uint_eq(rd16(d + 20), 1);           /* PCM */
	ck_assert_uint_eq(rd16(d + 22), 1);           /* mono */
	ck_assert_uint_eq(rd32(d + 24), 48000);
	ck_assert_uint_eq(rd32(d + 28), 96000);
	ck_assert_uint_eq(rd16(d + 32), 2);
	ck_assert_uint_eq(rd16(d + 34), 16);
	ck_assert_int_eq(memcmp(d + 36, "data", 4), 0);
	ck_assert_uint_eq(rd32(d + 40), 4 + 6000 + 4);
	ck_assert_int_eq(memcmp(d + 44, le, 4), 0);
	ck_assert_int_eq(d[44 + 4 + 2999], 0);
	ck_assert_int_eq(memcmp(d + 44 + 6004, le, 4), 0);
	free(d);
	unlink(path);
}
END_TEST

START_TEST(test_wav_g711)
{
	static const struct { uint16_t tag; uint8_t silence; } cases[] = {
		{ WAV_MULAW, 0xff }, { WAV_ALAW, 0xd5 } };
	for (size_t c = 0; c < 2; c++) {
		char path[64];
		FILE *f = temp_stream(path);
		wavw w;
		uint8_t s[3] = { 1, 2, 3 };
		ck_assert_int_eq(wavw_start(&w, f, cases[c].tag, 8000, 8, 1), 0);
		ck_assert_int_eq(wavw_write(&w, s, 3), 0);
		ck_assert_int_eq(wavw_silence(&w, 160), 0);
		ck_assert_int_eq(wavw_finish(&w), 0);    /* 163 bytes of data: a pad byte */
		fclose(f);
		size_t len;
		unsigned char *d = slurp(path, &len);
		ck_assert_uint_eq(len, 58 + 163 + 1);
		ck_assert_uint_eq(rd32(d + 4), len - 8);
		ck_assert_uint_eq(rd32(d + 16), 18);
		ck_assert_uint_eq(rd16(d + 20), cases[c].tag);
		ck_assert_uint_eq(rd32(d + 24), 8000);
		ck_assert_uint_eq(rd32(d + 28), 8000);
		ck_assert_uint_eq(rd16(d + 32), 1);
		ck_assert_uint_eq(rd16(d + 34), 8);
		ck_assert_uint_eq(rd16(d + 36), 0);       /* cbSize */
		ck_assert_int_eq(memcmp(d + 38, "fact", 4), 0);
		ck_assert_uint_eq(rd32(d + 42), 4);
		ck_assert_uint_eq(rd32(d + 46), 163);     /* samples */
		ck_assert_int_eq(memcmp(d + 50, "data", 4), 0);
		ck_assert_uint_eq(rd32(d + 54), 163);
		ck_assert_int_eq(memcmp(d + 58, s, 3), 0);
		ck_assert_int_eq(d[58 + 3], cases[c].silence);
		ck_assert_int_eq(d[58 + 162], cases[c].silence);
		free(d);
		unlink(path);
	}
}
END_TEST

START_TEST(test_wav_full)
{
	char path[64];
	FILE *f = temp_stream(path);
	wavw w;
	ck_assert_int_eq(wavw_start(&w, f, WAV_PCM, 48000, 16, 1), 0);
	w.data_bytes = WAV_MAX_DATA - 2;              /* pretend: a file near 4 GiB */
	ck_assert_int_eq(wavw_write(&w, "ab", 2), 0);
	ck_assert_int_eq(wavw_write(&w, "c", 1), WAV_FULL);
	fclose(f);
	unlink(path);
}
END_TEST

static Suite *downstream_suite(void)
{
	Suite *s = suite_create("downstream");
	TCase *t = tcase_create("core");
	tcase_add_test(t, test_cidr_parse);
	tcase_add_test(t, test_cidr_match);
	tcase_add_test(t, test_udp_url);
	tcase_add_test(t, test_opus_toc);
	tcase_add_test(t, test_rtp_payload);
	tcase_add_test(t, test_timeline_steady_and_gap);
	tcase_add_test(t, test_timeline_wrap);
	tcase_add_test(t, test_timeline_late_and_overlap);
	tcase_add_test(t, test_timeline_discontinuity);
	tcase_add_test(t, test_ogg_opus_writer);
	tcase_add_test(t, test_wav_pcm);
	tcase_add_test(t, test_wav_g711);
	tcase_add_test(t, test_wav_full);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(downstream_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
