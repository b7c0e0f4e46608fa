/* drain.c: taking a worker's sessions away gracefully (SPEC 5). Each
 * client is told {"type":"drain","reconnect_in_ms":N} with N uniformly
 * random in [0, reconnect_spread] and is closed 1001 at its N; whatever is
 * left at drain.timeout is closed then. A reload or shutdown drain stops
 * accepting first (the new generation accepts) and ends the process when
 * the last session is gone; a shutdown answers 503 until then; a host drain
 * (audiogwctl drain) answers 503 and stays. */
#include "worker/worker.h"
#include "common/log.h"
#include "proto/control.h"

#include <sodium.h>

#define DRAIN_TICK_MS 20

static void drain_close_due(worker *w, int64_t now)
{
	int all = now >= w->drain_deadline_ms;
	for (session *s = w->sessions; s; s = s->all_next)
		if (!s->closing && (all || (s->drain_at_ms && s->drain_at_ms <= now)))
			session_close_for(s, 1001, w->drain_reason);
}

static void on_drain_tick(uv_timer_t *t)
{
	worker *w = t->loop->data;
	int64_t now = (int64_t)uv_now(&w->loop);
	drain_close_due(w, now);
	int idle = w->pending_http <= 0;  /* sessions and handshakes in flight */
	if (w->drain_exit && (idle || now >= w->drain_deadline_ms + DRAIN_GRACE_MS)) {
		uv_timer_stop(t);
		worker_stop(w);
	}
}

void drain_tell(worker *w, session *s, int64_t now, int64_t spread)
{
	int64_t n = spread > 0 ? (int64_t)randombytes_uniform((uint32_t)spread + 1) : 0;
	s->drain_at_ms = now + n;
	session_send_text(w, s, ctl_drain(n));
}

void drain_begin(worker *w, int command)
{
	int exit_after = command != SHM_CMD_DRAIN_HOST;
	int64_t now = (int64_t)uv_now(&w->loop);
	int64_t timeout = command == SHM_CMD_SHUTDOWN_NOW ? 0 : w->cfg.drain_timeout_ms;
	int64_t spread = w->cfg.reconnect_spread_ms < timeout ? w->cfg.reconnect_spread_ms : timeout;
	if (w->drain_active && (!exit_after || w->drain_exit) && timeout >= w->drain_deadline_ms - now)
		return;  /* already draining at least as hard */
	w->drain_active = 1;
	w->drain_spread_ms = spread;
	/* A reload's handshakes in flight complete (the new generation has the
	 * sockets now; SPEC 2: no attempt is refused) and are drained at once. */
	if (command != SHM_CMD_DRAIN_RELOAD)
		w->draining = 1;
	w->drain_reason = command == SHM_CMD_SHUTDOWN || command == SHM_CMD_SHUTDOWN_NOW ? "shutdown"
	                                                                                 : "drain";
	w->drain_deadline_ms = now + timeout;
	if (exit_after)
		w->drain_exit = 1;
	/* A reload's new generation takes the listening sockets over; a host
	 * drain and a shutdown keep answering 503 until the end. */
	if (command == SHM_CMD_DRAIN_RELOAD)
		worker_stop_accepting(w);
	int n = 0;
	for (session *s = w->sessions; s; s = s->all_next, n++)
		if (!s->drain_at_ms && !s->closing)
			drain_tell(w, s, now, spread);
	log_info("drain", "%s: %d sessions, timeout %lld ms%s", w->drain_reason, n,
	         (long long)timeout, exit_after ? ", then exit" : "");
	if (!uv_is_active((uv_handle_t *)&w->drain_timer)) {
		uv_timer_init(&w->loop, &w->drain_timer);
		uv_timer_start(&w->drain_timer, on_drain_tick, 0, DRAIN_TICK_MS);
	}
}
