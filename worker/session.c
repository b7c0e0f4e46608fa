/* session.c: one client connection after the upgrade: opening (registry,
 * welcome, room), receiving (reassembly, rate limits, relay), liveness
 * sweeps, closing and parking for resume. The outgoing side (queues,
 * corked writes) is send.c. */
#include "worker/worker.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/bus.h"
#include "proto/control.h"
#include "common/resume.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <string.h>
#include <utlist.h>

static void count_close(worker *w, uint16_t code)
{
	static const uint16_t codes[SHM_CLOSE_CODES] = { 1000, 1001, 1006, 1008, 1009, 1011,
	                                                 4001, 4002, 4003, 4004, 4008 };
	for (int i = 0; i < SHM_CLOSE_CODES; i++)
		if (codes[i] == code)
			atomic_fetch_add_explicit(&w->me->c.closes[i], 1, memory_order_relaxed);
}

void session_count_drop(worker *w, session *s, int reason)
{
	atomic_fetch_add_explicit(&w->me->c.frames_dropped[reason], 1, memory_order_relaxed);
	if (s->reg >= 0 && !s->parked)
		atomic_fetch_add_explicit(&w->reg->s[s->reg].frames_dropped, 1, memory_order_relaxed);
}

#define CLOSE_GRACE_S 2  /* a client that cannot take its close frame is dropped */

static const char *reason_for_code(uint16_t code)
{
	switch (code) {
	case 4001: return "kicked";
	case 4002: return "slow_consumer";
	case 4003: return "replaced";
	case 4004: return "rate_limit";
	case 4008: return "heartbeat";
	case 1001: return "shutdown";
	default: return "error";
	}
}

/* SPEC 4.6: a session that dropped without the client's close frame, or
 * that a drain closed, may be resumed; one the client closed, or the
 * server closed for a reason, ends at once. */
static int resumable(const worker *w, const char *reason)
{
	static const char *const reasons[] = { "lost", "heartbeat", "drain", "shutdown" };
	if (w->cfg.resume_window_ms <= 0 || !reason)
		return 0;
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (!strcmp(reason, reasons[i]))
			return 1;
	return 0;
}

/* The session becomes resumable now, not when its socket is finally gone:
 * the client may reconnect before lws has finished closing the old one. */
static void session_park(worker *w, session *s)
{
	if (s->parked || s->reg < 0 || !s->established)
		return;
	s->parked = 1;
	w->by_reg[s->reg] = NULL;
	reg_park(w->reg, s->reg, clock_mono_ms() + w->cfg.resume_window_ms);
}

/* A write failed: the peer is gone (it reset the connection) and nothing
 * more can be sent. That is a drop without a close frame (SPEC 4.6): "lost"
 * and resumable, not a server error. lws closes the socket on its next turn
 * (the caller may be walking a room's sessions). */
void session_lost(worker *w, session *s)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->close_code = 1006;
	if (!s->end_reason)
		s->end_reason = "lost";
	if (resumable(w, s->end_reason))
		session_park(w, s);
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void session_close_for(session *s, uint16_t code, const char *reason)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->close_code = code;
	s->end_reason = reason;
	worker *w = server_worker(s->wsi);
	if (resumable(w, reason))
		session_park(w, s);
	lws_callback_on_writable(s->wsi);
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

void session_close(session *s, uint16_t code)
{
	session_close_for(s, code, reason_for_code(code));
}

/* The client sent a close frame: its session ends with its own code. */
void session_peer_closed(session *s, const void *payload, size_t len)
{
	const unsigned char *p = payload;
	if (s->end_reason)
		return;
	s->end_reason = "client";
	s->close_code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1005;
}

/* -- opening ------------------------------------------------------------ */

/* max_conns_per_user, host-wide: the user's oldest connections beyond the
 * cap are closed 4003 by whichever worker owns them. */
static void replace_older_connections(worker *w, const char *user)
{
	int victims[16];
	int n = reg_user_evict(w->reg, user, (int)w->cfg.max_conns_per_user, victims, 16);
	for (int i = 0; i < n; i++)
		session_evict(w, victims[i], 4003);
}

/* Closes a session by registry index: here if it is ours, else its owner's. */
void session_evict(worker *w, int reg_index, uint16_t code)
{
	if (w->reg->s[reg_index].proc == w->shm_index) {
		if (w->by_reg[reg_index])
			session_close(w->by_reg[reg_index], code);
	} else {
		bus_close_remote(w, reg_index, code);
	}
}

/* Heartbeat, once a second over every session (O(sessions), a few ns
 * each): a ping every heartbeat.interval, and close 4008 after
 * heartbeat.timeout without inbound traffic. The pings carry a payload:
 * lws 4.1.6 reports no RECEIVE_PONG for an empty pong (so lws's own
 * validity pings cannot tell a live client). One ping buffer is shared. */
void session_sweep(worker *w)
{
	int64_t now = (int64_t)uv_now(&w->loop);
	int64_t silent_since = now - w->cfg.heartbeat_timeout_ms;
	int64_t ping_before = now - w->cfg.heartbeat_interval_ms;
	msgbuf *ping = NULL;
	for (session *s = w->sessions; s; s = s->all_next) {
		if (s->closing)
			continue;
		if (s->last_rx_ms < silent_since) {
			session_close(s, 4008);
			continue;
		}
		if (s->last_ping_ms > ping_before)
			continue;
		if (!ping && !(ping = msgbuf_ping("agw", 3)))
			return;
		s->last_ping_ms = now;
		session_send(w, s, ping);
	}
	if (ping)
		msgbuf_unref(ping);
}

typedef struct members_arg {
	ctl_buf *list;
	int except;
} members_arg;

static void add_member(const reg_session *r, int index, void *arg)
{
	members_arg *a = arg;
	if (index != a->except)
		ctl_members_add(a->list, r->user, r->ssrc, r->muted);
}

void session_room_members(worker *w, const char *room, int except_reg, ctl_buf *out)
{
	members_arg a = { out, except_reg };
	reg_each_in_room(w->reg, room, add_member, &a);
}

/* 96 random bits, base64url. Drawn from a pool refilled every
 * SESSION_ID_POOL / 12 sessions: libsodium asks the kernel (getrandom) on
 * every call. */
static void make_session_id(worker *w, char *out, size_t len)
{
	enum { RAW = 12 };
	if (w->id_pool_left < RAW) {
		randombytes_buf(w->id_pool, sizeof w->id_pool);
		w->id_pool_left = sizeof w->id_pool;
	}
	unsigned char *raw = w->id_pool + sizeof w->id_pool - w->id_pool_left;
	w->id_pool_left -= RAW;
	sodium_bin2base64(out, len, raw, RAW, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, RAW);
}

static int copy_grants(session *s, const token_claims *c)
{
	size_t rooms_len = 0;
	for (int i = 0; i < c->n_rooms; i++)
		rooms_len += strlen(c->rooms + rooms_len) + 1;
	size_t room_len = strlen(c->room) + 1;
	if (!(s->grants = malloc(room_len + rooms_len)))
		return -1;
	memcpy(s->grants, c->room, room_len);
	memcpy(s->grants + room_len, c->rooms, rooms_len);
	s->n_grants = 1 + c->n_rooms;
	s->rooms_any = (uint8_t)c->rooms_any;
	return 0;
}

/* A reconnect with a valid resume token takes its parked session back:
 * same id, ssrc and room, and the members hear nothing. */
static int try_resume(worker *w, session *s, const token_claims *c, const char *ip)
{
	int index = w->pending_resume;
	if (index < 0 || reg_resume(w->reg, index, w->pending_resume_id, c->sub, w->shm_index,
	                            w->slot, ip, clock_wall_us()) < 0)
		return 0;
	reg_session *r = &w->reg->s[index];
	s->reg = index;
	s->ssrc = r->ssrc;
	s->muted = r->muted;
	r->listen_only = s->listen_only;
	return 1;
}

static int register_new(worker *w, session *s, const token_claims *c, const char *ip)
{
	char id[REG_ID_LEN + 1];
	s->ssrc = shm_next_ssrc(w->shm);
	make_session_id(w, id, sizeof id);
	reg_info info = { id, c->sub, c->room, c->dev, ip, s->ssrc, c->perm_listen, clock_wall_us() };
	return (s->reg = reg_add(w->reg, w->shm_index, w->slot, &info)) < 0 ? -1 : 0;
}

int session_open(worker *w, session *s, struct lws *wsi)
{
	if (w->pending_wsi != wsi)
		return -1;  /* no claims: cannot happen with lws 4.1's upgrade sequence */
	const token_claims *c = &w->pending;
	w->pending_wsi = NULL;
	const char *ip = w->pending_ip;  /* handshake_check read it */
	char resume[RESUME_TOKEN_MAX];
	memset(s, 0, sizeof *s);
	s->wsi = wsi;
	s->reg = -1;
	if (copy_grants(s, c) < 0)
		return -1;  /* the queues start empty: send.c grows them on demand */
	int64_t now = (int64_t)uv_now(&w->loop);
	tb_init(&s->rate, w->cfg.frames_per_second, w->cfg.frames_burst, now);
	s->abuse.second_start_ms = now;
	s->last_rx_ms = s->last_ping_ms = now;
	s->listen_only = (uint8_t)c->perm_listen;
	int resumed = try_resume(w, s, c, ip);
	if (!resumed && register_new(w, s, c, ip) < 0)
		return -1;
	const reg_session *r = &w->reg->s[s->reg];
	w->by_reg[s->reg] = s;
	DL_APPEND2(w->sessions, s, all_prev, all_next);
	s->established = 1;
	atomic_fetch_add_explicit(&w->me->c.connections, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->me->c.accepted_total, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->shm->host_connections, 1, memory_order_relaxed);

	resume_make(w->shm->resume_key, r->id, s->reg, c->sub, resume, sizeof resume);
	ctl_buf members = { 0 };
	session_room_members(w, r->room, s->reg, &members);
	session_send_text(w, s, ctl_welcome(r->id, c->sub, r->room, s->ssrc, w->slot,
	                                    (int)(w->cfg.heartbeat_interval_ms / 1000), resume,
	                                    &members));
	ctl_buf_free(&members);
	room_enter(w, s, r->room);
	if (!resumed)
		room_member_event(w, s, BUS_JOINED);
	replace_older_connections(w, c->sub);
	if (w->drain_active)  /* upgraded while its worker drains */
		drain_tell(w, s, now, w->drain_spread_ms);
	char detail[64];
	snprintf(detail, sizeof detail, "{\"ssrc\":%u%s}", s->ssrc, resumed ? ",\"resumed\":true" : "");
	event_session(w, "connect", s, NULL, detail);
	return 0;
}

void session_closed(worker *w, session *s)
{
	if (s->established) {
		if (!s->end_reason) {
			s->end_reason = "lost";  /* no close frame either way */
			s->close_code = 1006;
		}
		count_close(w, s->close_code);
		char detail[32];
		snprintf(detail, sizeof detail, "{\"code\":%u}", s->close_code);
		event_session(w, "disconnect", s, s->end_reason, detail);
		int park = s->parked || resumable(w, s->end_reason);
		if (s->room && !park)
			room_member_event(w, s, BUS_LEFT);
		room_exit(w, s);
		if (park)
			session_park(w, s);
		else {
			w->by_reg[s->reg] = NULL;
			reg_remove(w->reg, s->reg);
		}
		DL_DELETE2(w->sessions, s, all_prev, all_next);
		atomic_fetch_sub_explicit(&w->me->c.connections, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&w->shm->host_connections, 1, memory_order_relaxed);
		s->established = 0;
	}
	send_forget(w, s);
	msgbuf *m;
	while ((m = ptrq_pop(&s->ctrl)))
		msgbuf_unref(m);
	while ((m = ptrq_pop(&s->audio))) {
		atomic_fetch_sub_explicit(&w->me->c.outbound_queue_frames, 1, memory_order_relaxed);
		msgbuf_unref(m);
	}
	ptrq_free(&s->ctrl);
	ptrq_free(&s->audio);
	if (s->partial)
		msgbuf_unref(s->partial);
	s->partial = NULL;
	free(s->grants);
	s->grants = NULL;
}

/* -- receiving ---------------------------------------------------------- */

#define ABUSE_FACTOR 5
#define ABUSE_SECONDS 5
#define RATE_ERROR_EVERY_MS 1000

/* The session's token bucket; a sender that stays above ABUSE_FACTOR times
 * its rate for ABUSE_SECONDS is closed 4004. */
static int within_rate(worker *w, session *s)
{
	int64_t now = (int64_t)uv_now(&w->loop);
	if (abuse_note(&s->abuse, ABUSE_FACTOR * w->cfg.frames_per_second, ABUSE_SECONDS, now)) {
		session_close(s, 4004);
		return 0;
	}
	if (tb_take(&s->rate, now))
		return 1;
	if (now - s->rate_error_ms >= RATE_ERROR_EVERY_MS) {
		s->rate_error_ms = now;
		session_send_text(w, s, ctl_error("rate_limited", "audio frames over the rate limit are dropped"));
	}
	return 0;
}

/* Accounts the frame's sequence number and moves what changed into the
 * registry entry, where room listings read it (a resumed session's entry
 * keeps counting). Losses, duplicates and reordering are rare: most frames
 * touch nothing shared here. Unsigned deltas: a late frame gives a loss back. */
static void count_sequence(reg_session *r, rtp_seq_stats *q, uint16_t seq)
{
	uint32_t lost = q->lost, duplicate = q->duplicate, late = q->out_of_order;
	rtp_seq_update(q, seq);
	if (q->lost != lost)
		atomic_fetch_add_explicit(&r->frames_lost, q->lost - lost, memory_order_relaxed);
	if (q->duplicate != duplicate)
		atomic_fetch_add_explicit(&r->frames_duplicate, q->duplicate - duplicate,
		                          memory_order_relaxed);
	if (q->out_of_order != late)
		atomic_fetch_add_explicit(&r->frames_out_of_order, q->out_of_order - late,
		                          memory_order_relaxed);
}

/* Counts an incoming audio frame and decides whether it is relayed: 0 when
 * it is dropped (and counted as such). Decided on the bytes where they are,
 * so a dropped frame is never copied. */
static int audio_admitted(worker *w, session *s, const uint8_t *p, size_t len)
{
	reg_session *r = &w->reg->s[s->reg];
	atomic_fetch_add_explicit(&w->me->c.frames_in, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->me->c.bytes_in, len, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->frames_in, 1, memory_order_relaxed);
	int drop = rtp_check(p, len) != RTP_OK ? DROP_INVALID
	         : s->listen_only              ? DROP_LISTEN_ONLY
	         : s->muted                    ? DROP_MUTED
	         : !within_rate(w, s)          ? DROP_RATE : -1;
	if (drop >= 0) {
		session_count_drop(w, s, drop);
		return 0;
	}
	count_sequence(r, &s->seq, rtp_seq(p));
	return 1;
}

/* An admitted audio frame, in a pooled buffer of its own (the caller's
 * reference): its SSRC rewritten in place, then shared by every local
 * member's queue and published once on the bus. */
static void relay_audio(worker *w, session *s, msgbuf *m)
{
	m->recv_us = clock_mono_us();
	m->sampled = (++w->frames_seen & LATENCY_SAMPLE_MASK) == 0;
	rtp_set_ssrc(msgbuf_payload(m), s->ssrc);
	atomic_store_explicit(&w->reg->s[s->reg].last_audio_ms, m->recv_us / 1000,
	                      memory_order_relaxed);
	room_relay(w, s->room, m, s);
	bus_publish(w, s->room->name, BUS_FRAME, 0, s->ssrc, m->recv_us, msgbuf_payload(m), m->len);
}

/* A whole message still in lws's buffer: an admitted audio frame is copied
 * into a pooled buffer (it outlives this callback in the members' queues). */
static void on_message_in_place(worker *w, session *s, const void *data, size_t len, int binary)
{
	if (!binary) {
		control_on_message(w, s, data, len);
		return;
	}
	if (!audio_admitted(w, s, data, len))
		return;
	msgbuf *m = msgbuf_audio();
	if (!m) {
		session_count_drop(w, s, DROP_QUEUE);
		return;
	}
	memcpy(msgbuf_payload(m), data, len);
	m->len = (uint32_t)len;
	relay_audio(w, s, m);
	msgbuf_unref(m);
}

/* lws hands a message over in pieces when a socket read ends inside it (or
 * the client fragments it): those pieces are gathered in one pooled buffer,
 * never more than max_frame_bytes; a whole message is used in place. */
int session_on_receive(worker *w, session *s, const void *in, size_t len)
{
	if (!s->established || s->closing)
		return 0;
	s->last_rx_ms = (int64_t)uv_now(&w->loop);
	size_t remaining = lws_remaining_packet_payload(s->wsi);
	int complete = lws_is_final_fragment(s->wsi) && remaining == 0;
	s->msg_bytes += (uint32_t)len;
	if (s->msg_bytes + remaining > (uint64_t)w->cfg.max_frame_bytes) {
		/* Never buffered whole: refuse at the first piece that tells. */
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
		s->close_code = 1009;
		s->end_reason = "error";
		return -1;
	}
	int binary = lws_frame_is_binary(s->wsi);
	if (complete && !s->partial) {
		s->msg_bytes = 0;
		on_message_in_place(w, s, in, len, binary);
		return 0;
	}
	if (!s->partial && !(s->partial = msgbuf_audio()))
		return -1;
	memcpy(msgbuf_payload(s->partial) + s->partial->len, in, len);
	s->partial->len += (uint32_t)len;
	if (complete) {
		msgbuf *m = s->partial;  /* gathered: the frame's buffer as it is */
		s->partial = NULL;
		s->msg_bytes = 0;
		if (binary) {
			if (audio_admitted(w, s, msgbuf_payload(m), m->len))
				relay_audio(w, s, m);
		} else
			control_on_message(w, s, (const char *)msgbuf_payload(m), m->len);
		msgbuf_unref(m);
	}
	return 0;
}
