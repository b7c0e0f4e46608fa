/* rtp.h: RTP (RFC 3550) checks and sequence accounting for the relay hot path
 * (SPEC 4.3). No allocation, no syscalls: everything works on the caller's
 * packet bytes and a small per-session struct. */
#ifndef AGW_RTP_H
#define AGW_RTP_H

#include <stddef.h>
#include <stdint.h>

#define RTP_HEADER_LEN 12
#define RTP_VERSION 2
#define RTP_SEQ_RESET_JUMP 3000   /* a larger jump either way = sender restart */

typedef enum {
	RTP_OK = 0,
	RTP_TOO_SHORT,       /* fewer than 12 bytes */
	RTP_BAD_VERSION,     /* V != 2 */
	RTP_HAS_CSRC,        /* CC != 0 */
	RTP_BAD_EXTENSION,   /* X set but the extension does not fit */
	RTP_BAD_PADDING      /* P set but the pad count is 0 or exceeds the payload */
} rtp_status;

/* Checks the fixed header, the extension and the padding against len. */
rtp_status rtp_check(const uint8_t *p, size_t len);
/* Short snake_case reason: "ok", "too_short", "bad_version", "has_csrc",
 * "bad_extension", "bad_padding". */
const char *rtp_status_reason(rtp_status s);

/* Accessors: p must hold at least RTP_HEADER_LEN bytes (rtp_check passed). */
static inline uint8_t rtp_payload_type(const uint8_t *p) { return p[1] & 0x7f; }
static inline int rtp_marker(const uint8_t *p) { return (p[1] >> 7) & 1; }

static inline uint16_t rtp_seq(const uint8_t *p)
{
	return (uint16_t)((p[2] << 8) | p[3]);
}

static inline uint32_t rtp_read32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint32_t rtp_timestamp(const uint8_t *p) { return rtp_read32(p + 4); }
static inline uint32_t rtp_ssrc(const uint8_t *p) { return rtp_read32(p + 8); }

static inline void rtp_set_ssrc(uint8_t *p, uint32_t ssrc)
{
	p[8] = (uint8_t)(ssrc >> 24);
	p[9] = (uint8_t)(ssrc >> 16);
	p[10] = (uint8_t)(ssrc >> 8);
	p[11] = (uint8_t)ssrc;
}

/* Per-session sequence accounting. Zero it to start. */
typedef struct rtp_seq_stats {
	uint16_t max_seq;        /* highest sequence seen (modulo wrap) */
	uint8_t started;
	uint64_t window;         /* bit i set = max_seq - i was seen (i < 64) */
	/* 32 bits: 2^32 packets is 2.7 years of one sender at 50 frames/s */
	uint32_t received;       /* packets counted, duplicates excluded */
	uint32_t lost;           /* gaps, less the late arrivals that filled them */
	uint32_t duplicate;      /* seen before (within the last 64) */
	uint32_t out_of_order;   /* arrived after a higher sequence */
	uint32_t resets;         /* jumps over RTP_SEQ_RESET_JUMP (sender restarts) */
} rtp_seq_stats;

/* Accounts one packet's sequence number. Wraps at 65535. A gap adds to lost;
 * a late packet not seen before counts out_of_order and, if within the last
 * 64, gives back one lost; one older than 64 cannot be told from a duplicate
 * and only counts out_of_order. A jump of more than RTP_SEQ_RESET_JUMP either
 * way restarts the tracking at that packet without counting a loss. */
void rtp_seq_update(rtp_seq_stats *s, uint16_t seq);

#endif
