/* timeline.c: RTP timestamps to recording positions (see timeline.h). */
#include "downstream/timeline.h"

#include <string.h>

void tl_init(tl_state *t, uint32_t rate)
{
	memset(t, 0, sizeof *t);
	t->rate = rate;
}

int tl_place(tl_state *t, uint32_t ts, uint16_t seq, int64_t recv_us, int64_t *gap)
{
	*gap = 0;
	if (!t->started) {
		t->started = 1;
		t->last_ts = ts;
		t->last_seq = seq;
		t->last_pos = 0;
		t->last_recv_us = recv_us;
		return TL_WRITE;
	}
	int64_t rate = t->rate;
	int64_t delta = (int32_t)(ts - t->last_ts);
	int64_t elapsed_us = recv_us > t->last_recv_us ? recv_us - t->last_recv_us : 0;
	int64_t wall = elapsed_us / 1000 * rate / 1000 + elapsed_us % 1000 * rate / 1000000;
	int16_t dseq = (int16_t)(uint16_t)(seq - t->last_seq);
	int64_t pos = t->last_pos + delta;
	int jump = delta > wall + TL_JUMP_SLACK_S * rate || delta < -TL_BACK_S * rate;
	if (!jump && pos < t->end && dseq <= 0) {
		if (++t->lates_in_row < TL_LATE_RESET) {
			t->late++;
			return TL_LATE;
		}
		jump = 1;   /* a sender that restarted just behind its old clock */
	}
	if (jump) {
		t->jumps++;
		pos = t->last_pos + wall;
		if (pos < t->end)
			pos = t->end;
	}
	t->lates_in_row = 0;
	if (pos > t->end) {
		int64_t g = pos - t->end;
		if (g > TL_MAX_GAP_S * rate) {
			g = TL_MAX_GAP_S * rate;
			pos = t->end + g;   /* rebased: what follows is relative to here */
			t->capped++;
		}
		*gap = g;
	}
	t->last_ts = ts;
	t->last_seq = seq;
	t->last_pos = pos;
	t->last_recv_us = recv_us;
	return TL_WRITE;
}
