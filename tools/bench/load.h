/* load.h: internals of one load process of audiogw-bench: its connections
 * (conn.c: socket, HTTP upgrade, WebSocket frames) and its schedule
 * (load.c: ramp, speakers, timers, phases). Single-threaded, one epoll. */
#ifndef AGW_BENCH_LOAD_H
#define AGW_BENCH_LOAD_H

#include "bench.h"

#define SCRATCH_BYTES   65536
#define RBUF_MAX        (1u << 20)     /* larger server messages: protocol error */
#define WBUF_MAX        (64u * 1024)   /* client-side audio backlog per connection */
#define HTTP_MAX        16384          /* upgrade answer headers */
#define ATTEMPT_TIMEOUT_NS (15 * 1000000000LL)   /* connect start to welcome */
#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS  10000
#define FRAME_MIN_PAYLOAD 17           /* send time 8, flags 1, sender 4, room 4 */
#define TX_MAX          (14 + 12 + 65536)

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_UPGRADED, C_OPEN, C_BACKOFF, C_DONE };

typedef struct conn {
	int fd;
	uint32_t gen;          /* attempt number: tags epoll events */
	uint32_t tgen;         /* timer generation: stale heap entries are ignored */
	uint32_t idx;          /* global connection index */
	uint32_t room;         /* local room index */
	uint8_t state;
	uint8_t speaker;
	uint8_t initial;       /* first attempt not resolved yet */
	uint8_t out_armed;     /* EPOLLOUT registered */
	uint8_t frag_op;       /* opcode of a fragmented message in progress */
	int16_t worker;        /* welcome.worker, -1 unknown */
	uint16_t seq;
	uint32_t rtp_ts;
	uint32_t ssrc;
	uint32_t attempts;     /* backoff exponent */
	int64_t t_attempt;     /* this attempt's start */
	int64_t t_down;        /* dropped after a welcome, waiting for the next */
	int64_t t_open;        /* last welcome */
	int64_t drain_at;      /* do not reconnect before (drain), 0 = none */
	uint8_t *rbuf, *wbuf, *frag;
	uint32_t rlen, rcap, wlen, wcap, flen, fcap;
} conn;

typedef struct tentry {
	int64_t when;
	uint32_t idx, tgen;
} tentry;

typedef struct lp {
	const bench_opts *o;
	bench_ctl *ctl;
	bench_res *res;
	int id, ep, tfd, phase;
	conn *c;
	uint32_t n, first_idx, first_room, nrooms;
	uint32_t *room_open;   /* welcomed members per local room */
	char *tokens;          /* NUL-terminated tokens, one per connection */
	uint32_t *tok_off;
	uint32_t *spk;         /* local conn indices of the speakers, send order */
	uint32_t nspk;
	double step_ns;        /* between two sends of this process */
	int64_t send_t0;
	uint64_t send_k;
	uint32_t next_open, inflight;
	double ramp_per_ns;
	int64_t ramp_t0, deadline, armed;
	tentry *heap;
	uint32_t hn, hcap;
	uint64_t rng;
	uint8_t scratch[SCRATCH_BYTES];
	uint8_t tx[TX_MAX];
	char req[8192];
} lp;

/* load.c */
uint64_t lp_rand(lp *p);
void lp_timer_set(lp *p, conn *c, int64_t when);
void lp_set_state(lp *p, conn *c, int state);

/* conn.c */
void conn_start(lp *p, conn *c, int64_t now);
void conn_event(lp *p, conn *c, uint32_t events);
void conn_timeout(lp *p, conn *c, int64_t now);
void conn_send_audio(lp *p, conn *c, int in_window);
void conn_finish(lp *p, conn *c);

#endif
