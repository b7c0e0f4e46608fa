/* rtp.c: RTP packet validation and sequence accounting (see rtp.h).
 * Owns the RFC 3550 header rules the gateway enforces on binary frames. */
#include "proto/rtp.h"

#define RTP_FLAG_PADDING 0x20
#define RTP_FLAG_EXTENSION 0x10
#define RTP_CC_MASK 0x0f
#define RTP_EXT_HEADER_LEN 4
#define RTP_WINDOW_BITS 64

rtp_status rtp_check(const uint8_t *p, size_t len)
{
	if (!p || len < RTP_HEADER_LEN)
		return RTP_TOO_SHORT;
	if ((p[0] >> 6) != RTP_VERSION)
		return RTP_BAD_VERSION;
	if (p[0] & RTP_CC_MASK)
		return RTP_HAS_CSRC;
	size_t header_len = RTP_HEADER_LEN;
	if (p[0] & RTP_FLAG_EXTENSION) {
		if (len - header_len < RTP_EXT_HEADER_LEN)
			return RTP_BAD_EXTENSION;
		size_t words = ((size_t)p[14] << 8) | p[15];
		header_len += RTP_EXT_HEADER_LEN + 4 * words;
		if (header_len > len)
			return RTP_BAD_EXTENSION;
	}
	if (p[0] & RTP_FLAG_PADDING) {
		size_t pad = p[len - 1];   /* counts itself, so at least 1 */
		if (pad == 0 || pad > len - header_len)
			return RTP_BAD_PADDING;
	}
	return RTP_OK;
}

const char *rtp_status_reason(rtp_status s)
{
	switch (s) {
	case RTP_OK:            return "ok";
	case RTP_TOO_SHORT:     return "too_short";
	case RTP_BAD_VERSION:   return "bad_version";
	case RTP_HAS_CSRC:      return "has_csrc";
	case RTP_BAD_EXTENSION: return "bad_extension";
	case RTP_BAD_PADDING:   return "bad_padding";
	}
	return "unknown";
}

static void seq_restart(rtp_seq_stats *s, uint16_t seq)
{
	s->started = 1;
	s->max_seq = seq;
	s->window = 1;
	s->received++;
}

static void seq_advance(rtp_seq_stats *s, uint16_t seq, unsigned ahead)
{
	s->lost += ahead - 1;
	s->window = ahead >= RTP_WINDOW_BITS ? 1 : (s->window << ahead) | 1;
	s->max_seq = seq;
	s->received++;
}

static void seq_late(rtp_seq_stats *s, unsigned behind)
{
	if (behind < RTP_WINDOW_BITS) {
		uint64_t bit = (uint64_t)1 << behind;
		if (s->window & bit) {
			s->duplicate++;
			return;
		}
		s->window |= bit;
		if (s->lost > 0)
			s->lost--;
	}
	s->out_of_order++;
	s->received++;
}

void rtp_seq_update(rtp_seq_stats *s, uint16_t seq)
{
	if (!s->started) {
		seq_restart(s, seq);
		return;
	}
	/* Signed distance from max_seq in [-32768, 32767], wrap-around included. */
	int delta = (int)(uint16_t)(seq - s->max_seq);
	if (delta >= 0x8000)
		delta -= 0x10000;
	if (delta == 0) {
		s->duplicate++;
	} else if (delta > RTP_SEQ_RESET_JUMP || delta < -RTP_SEQ_RESET_JUMP) {
		s->resets++;
		seq_restart(s, seq);
	} else if (delta > 0) {
		seq_advance(s, seq, (unsigned)delta);
	} else {
		seq_late(s, (unsigned)-delta);
	}
}
