/* worker.h: one worker process and the modules that act on it:
 *   worker.c     its life: arguments, inherited descriptors, the libuv loop
 *                it owns, signals, accepting on its listening sockets
 *   server.c     the libwebsockets context and the protocol callback
 *   handshake.c  what happens before the upgrade: path, token, refusals
 *   session.c    one client connection: queues, writes, audio in, close
 *   control.c    the client's JSON control messages
 *   room.c       rooms with local members, local fan-out
 *   bus.c        NNG pub/sub between workers */
#ifndef AGW_WORKER_H
#define AGW_WORKER_H

#include "common/config.h"
#include "common/shm.h"
#include "common/token.h"
#include "common/ptrq.h"
#include "common/ratelimit.h"
#include "proto/control.h"
#include "proto/rtp.h"
#include "worker/msgbuf.h"

#include <libwebsockets.h>
#include <jansson.h>
#include <nng/nng.h>
#include <pthread.h>
#include <uthash.h>
#include <uv.h>

#define SESSION_CTRL_MAX 32
#define SEND_GATHER_BYTES (32 * 1024) /* bytes of frames per write(); larger messages go alone */
#define LATENCY_SAMPLE_MASK 15           /* one frame in 16 has its relay latency recorded */

typedef struct local_room local_room;

typedef struct session {
	struct lws *wsi;
	local_room *room;
	struct session *room_prev, *room_next;
	struct session *all_prev, *all_next;   /* every session of the worker, for sweeps */
	struct session *dirty_prev, *dirty_next; /* queued output, written at the turn's end */
	int reg;                         /* registry index, -1 until registered */
	uint32_t ssrc;
	uint8_t established, muted, listen_only, closing, rooms_any;
	uint8_t parked;                  /* its registry entry is resumable: no longer ours */
	uint8_t dirty;                   /* on the worker's dirty list */
	uint16_t close_code;             /* sent, or received from the client; 1006 = none */
	const char *end_reason;          /* audit/log disconnect reason (SPEC 6.4) */
	uint32_t msg_bytes;              /* bytes of the message being received */
	msgbuf *partial;                 /* a message arriving in pieces, else NULL */
	char *grants;                    /* token's room then its rooms, packed NUL-separated */
	int n_grants;
	rtp_seq_stats seq;
	ptrq audio;                      /* outbound_queue_frames shared frames, drop-oldest */
	ptrq ctrl;                       /* SESSION_CTRL_MAX, written first, never dropped */
	token_bucket rate;               /* frames_per_second, frames_burst */
	abuse_meter abuse;               /* > 5x the rate for 5 s: close 4004 */
	int64_t rate_error_ms;           /* last rate_limited error sent (loop ms) */
	int64_t overflow_since_ms;       /* audio queue overflowing since (0 = it is not) */
	int64_t last_rx_ms;              /* last inbound traffic, for heartbeat.timeout */
	int64_t last_ping_ms;
	int64_t drain_at_ms;             /* drain: close 1001 at this time (0 = not draining) */
	int64_t bad_ctl_since_ms;
	int bad_ctl_count;
} session;

struct local_room {
	char name[REG_NAME_MAX + 1];
	session *members;                /* utlist, linked through room_prev/room_next */
	int n;
	UT_hash_handle hh;
};

typedef struct worker {
	cfg cfg;
	int slot, generation, shm_index;
	shm_area *shm;
	shm_proc *me;                    /* this process's entry in the shared area */
	reg_area *reg;
	token_keys keys;

	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_usr1;
	uv_poll_t listen_polls[CFG_MAX_LISTEN];
	int listen_fds[CFG_MAX_LISTEN];
	int n_listen;
	uv_timer_t shutdown_timer;
	int stopping;                    /* the lws context is being destroyed */
	int draining;                    /* new upgrades get 503 (host drain, shutdown) */
	int drain_active;                /* any drain: new sessions are told to reconnect at once */
	int pending_http;                /* adopted connections still alive (sessions or not) */
	int drain_exit;                  /* exit once drained; not accepting any more */
	const char *drain_reason;        /* "drain" or "shutdown" */
	int64_t drain_deadline_ms;
	int64_t drain_spread_ms;
	uv_timer_t drain_timer;
	uv_signal_t sig_usr2;

	struct lws_context *ctx;
	struct lws_vhost *vh;

	/* The claims of the handshake being upgraded: HTTP_CONFIRM_UPGRADE has
	 * no per-session storage yet, ESTABLISHED for the same wsi follows. */
	struct lws *pending_wsi;
	token_claims pending;
	int pending_resume;              /* registry index from a valid resume token, or -1 */
	char pending_resume_id[REG_ID_LEN + 1];
	char pending_ip[REG_IP_LEN];     /* the client's address, read once */
	unsigned char id_pool[1200];     /* random bytes for session ids */
	size_t id_pool_left;

	local_room *rooms;               /* room.c's table (uthash), rooms with local members */
	session *sessions;               /* every established session (utlist via all_*) */
	session **by_reg;                /* registry index -> local session */
	session *dirty;                  /* send.c: sessions with output queued this turn */
	uv_check_t send_turn;            /* writes them once per loop turn ... */
	uv_timer_t coalesce_timer;       /* ... or once per limits.write_coalesce */
	int64_t last_flush_ms;
	int64_t coalesce_ms;             /* in force: the config's, or paced (write_coalesce = auto) */
	uint64_t pace_wall_ns, pace_idle_ns; /* the loop's clock and idle time at the last pacing */
	uint64_t pace_frames_out;        /* and the frames written by then */
	uint8_t tx[LWS_PRE + SEND_GATHER_BYTES]; /* frames gathered for one write */
	uv_timer_t sweep;                /* heartbeat timeouts, once a second */
	uv_timer_t audit_timer;          /* hands audit events to the journal */
	token_bucket handshakes;         /* handshakes_per_second */
	uint64_t frames_seen;            /* for latency sampling */
	struct audit_sink *audit;        /* to the journal; never blocks */

	/* bus.c */
	nng_socket bus_pub, bus_sub;
	nng_aio *bus_aio;                /* receives on an NNG thread ... */
	uv_async_t bus_async;            /* ... and wakes the loop */
	pthread_mutex_t bus_lock;        /* guards the inbox */
	nng_msg **bus_inbox;
	uint32_t bus_inbox_head, bus_inbox_n;
	uv_timer_t bus_discover;
	uint8_t bus_dialed[SHM_MAX_PROCS], bus_dialed_sup;
	_Atomic int bus_sub_pipes, bus_pub_pipes;
	uv_timer_t ready_check;
	int64_t started_ms;
	uint8_t bus_buf[64 * 1024];
	uint8_t batch[60 * 1024];        /* frames of this loop turn, see proto/bus.h */
	size_t batch_len;
	uv_check_t bus_turn;             /* flushes the batch once per loop turn ... */
	uv_timer_t bus_flush_timer;      /* ... at most once per BUS_FLUSH_MS */
	int64_t bus_flushed_ms;
} worker;

/* Entry point of "audiogwd --worker ..." (started by the supervisor only). */
int worker_main(int argc, char **argv);

/* worker.c */
void worker_stop(worker *w);            /* destroy the lws context and leave the loop */
void worker_stop_accepting(worker *w);
/* End-of-turn work (the bus batch, the clients' writes) done at most once
 * per every_ms since last_ms: 1 when it is due now; else t is armed (once)
 * to call cb when it is, and 0. */
int worker_turn_due(worker *w, uv_timer_t *t, uv_timer_cb cb, int64_t last_ms, int64_t every_ms);

/* drain.c */
#define DRAIN_GRACE_MS 3000             /* after drain.timeout, for close frames to go out */
void drain_begin(worker *w, int command);  /* enum shm_command */
void drain_tell(worker *w, session *s, int64_t now, int64_t spread);

/* server.c */
int server_create(worker *w);
void server_adopt(worker *w, int fd);
void server_destroy_step(worker *w);    /* call until w->ctx is NULL */
worker *server_worker(struct lws *wsi);
int server_http_reply(struct lws *wsi, unsigned status, const char *body);

/* handshake.c: 0 = let the upgrade proceed (claims in w->pending), 1 = refused */
int handshake_check(worker *w, struct lws *wsi);

/* session.c */
int session_open(worker *w, session *s, struct lws *wsi);
void session_closed(worker *w, session *s);
int session_on_writeable(worker *w, session *s);  /* send.c */
int session_on_receive(worker *w, session *s, const void *in, size_t len);
void session_lost(worker *w, session *s);  /* a write failed: the peer is gone */
void session_count_drop(worker *w, session *s, int reason);

/* send.c: outgoing queues, written once per loop turn */
void send_start(worker *w);
void send_stop(worker *w);
void send_flush(worker *w);
void send_pace(worker *w);       /* once a second: write_coalesce = auto */
void send_forget(worker *w, session *s);   /* off the dirty list (closed, or written) */
void session_send(worker *w, session *s, msgbuf *m);
void session_send_text(worker *w, session *s, char *json);  /* takes ownership of json */
void session_close(session *s, uint16_t code);
void session_close_for(session *s, uint16_t code, const char *reason);
void session_peer_closed(session *s, const void *payload, size_t len);
void session_sweep(worker *w);       /* heartbeat.timeout: close 4008 */
void session_evict(worker *w, int reg_index, uint16_t code);
void session_room_members(worker *w, const char *room, int except_reg, ctl_buf *out);

/* control.c */
void control_on_message(worker *w, session *s, const char *text, size_t len);
void session_set_muted(worker *w, session *s, int muted, const char *by);

/* events.c: audit rows and debug log lines */
void event_session(worker *w, const char *event, const session *s, const char *reason,
                   const char *detail);
void event_handshake(worker *w, const char *event, const char *ip, const char *user,
                     const char *reason, unsigned status);
void event_publish_counters(worker *w);

/* admin.c */
struct bus_msg;
void admin_on_bus(worker *w, const char *topic, const struct bus_msg *m);

/* room.c */
local_room *room_find(worker *w, const char *name);
local_room *room_enter(worker *w, session *s, const char *name);
void room_exit(worker *w, session *s);
void room_relay(worker *w, local_room *r, msgbuf *m, session *except);
void room_send_text(worker *w, local_room *r, const char *json, session *except);
void room_member_event(worker *w, session *s, uint8_t event);  /* local + bus */

/* bus.c */
int bus_start(worker *w);
void bus_stop(worker *w);
int bus_connected(worker *w);     /* 1 once the mesh with every live peer is up */
void bus_close_remote(worker *w, int reg_index, uint16_t code);
void bus_publish(worker *w, const char *room, uint8_t type, uint8_t event, uint32_t ssrc,
                 int64_t recv_us, const void *payload, size_t len);

#endif
