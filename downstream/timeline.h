/* timeline.h: where each RTP packet of one speaker goes in a recording.
 *
 * A recording is a continuous stream of samples; RTP packets carry 32-bit
 * timestamps in the codec's clock (48 kHz for Opus and L16, 8 kHz for
 * G.711) that wrap, start anywhere, and may jump when a sender restarts.
 * The timeline turns them into 64-bit positions counted from the first
 * packet (position 0) and tells the writer how much silence to put before
 * a packet so that pauses are kept: a 1 s pause in the timestamps is 1 s
 * (48000 ticks at 48 kHz) in the file.
 *
 *   position = previous position + (int32_t)(ts - previous ts)   (wrap safe)
 *
 * A timestamp step that the receive times contradict (more than
 * TL_JUMP_SLACK_S ahead of the time that passed, or more than TL_BACK_S
 * back) is a discontinuity: the sender restarted its clock. The packet is
 * then placed by its receive time instead. A packet whose place is already
 * written (late, duplicate) is dropped, unless its sequence number is newer,
 * in which case its timestamps overlap the previous packet slightly and it
 * is appended. Gaps are capped at TL_MAX_GAP_S. Pure: no I/O. */
#ifndef AGW_DS_TIMELINE_H
#define AGW_DS_TIMELINE_H

#include <stdint.h>

#define TL_JUMP_SLACK_S 5
#define TL_BACK_S 2
#define TL_MAX_GAP_S 600
#define TL_LATE_RESET 50            /* this many lates in a row: a discontinuity */

typedef struct tl_state {
	uint32_t rate;                  /* ticks per second: the RTP clock */
	int started;
	uint32_t last_ts;
	uint16_t last_seq;
	int64_t last_pos;               /* position of the last placed packet's timestamp */
	int64_t last_recv_us;
	int64_t end;                    /* where what was written so far ends */
	int lates_in_row;
	uint64_t late, jumps, capped;   /* counters, for the listing */
} tl_state;

enum { TL_WRITE = 0, TL_LATE = 1 };

void tl_init(tl_state *t, uint32_t rate);
/* Places a packet. TL_WRITE: write *gap ticks of silence (>= 0), then the
 * packet, and tell tl_advance() how many ticks were written in all.
 * TL_LATE: drop it. recv_us: any monotonic microsecond clock. */
int tl_place(tl_state *t, uint32_t ts, uint16_t seq, int64_t recv_us, int64_t *gap);
static inline void tl_advance(tl_state *t, int64_t ticks) { t->end += ticks; }

#endif
