/* control.c: the client's JSON control messages (SPEC 4.2): ping, join,
 * mute, unmute. Bad messages get an error and the connection stays; more
 * than BAD_CTL_LIMIT of them within BAD_CTL_WINDOW_MS closes it 1008. */
#include "worker/worker.h"
#include "common/clock.h"
#include "proto/bus.h"
#include "proto/control.h"

#include <string.h>

#define BAD_CTL_LIMIT 10
#define BAD_CTL_WINDOW_MS 10000

static void on_bad(worker *w, session *s, const char *why)
{
	int64_t now = clock_mono_ms();
	if (now - s->bad_ctl_since_ms > BAD_CTL_WINDOW_MS) {
		s->bad_ctl_since_ms = now;
		s->bad_ctl_count = 0;
	}
	if (++s->bad_ctl_count > BAD_CTL_LIMIT) {
		session_close(s, 1008);
		return;
	}
	session_send_text(w, s, ctl_error("bad_request", why));
}

static int granted(const session *s, const char *room)
{
	if (s->rooms_any)
		return 1;
	const char *g = s->grants;
	for (int i = 0; i < s->n_grants; i++, g += strlen(g) + 1)
		if (!strcmp(g, room))
			return 1;
	return 0;
}

static void on_join(worker *w, session *s, const char *room)
{
	if (!granted(s, room)) {
		session_send_text(w, s, ctl_error("forbidden", "the token does not allow this room"));
		return;
	}
	if (strcmp(s->room->name, room) != 0) {
		event_session(w, "leave", s, NULL, NULL);
		room_member_event(w, s, BUS_LEFT);
		room_exit(w, s);
		reg_move(w->reg, s->reg, room);
		room_enter(w, s, room);
		room_member_event(w, s, BUS_JOINED);
		event_session(w, "join", s, NULL, NULL);
	}
	ctl_buf members = { 0 };
	session_room_members(w, room, s->reg, &members);
	session_send_text(w, s, ctl_joined(room, &members));
	ctl_buf_free(&members);
}

/* Self mute, or an operator's: members hear it once per change. */
void session_set_muted(worker *w, session *s, int muted, const char *by)
{
	if (s->muted == muted)
		return;
	event_session(w, muted ? "mute" : "unmute", s, by, NULL);
	s->muted = (uint8_t)muted;
	reg_set_muted(w->reg, s->reg, muted);
	room_member_event(w, s, muted ? BUS_MUTED : BUS_UNMUTED);
}

void control_on_message(worker *w, session *s, const char *text, size_t len)
{
	ctl_request req;
	switch (ctl_parse(text, len, &req)) {
	case CTL_PING:
		session_send_text(w, s, ctl_pong(req.id, clock_wall_us() / 1000));
		break;
	case CTL_JOIN:
		on_join(w, s, req.room);
		break;
	case CTL_MUTE:
		session_set_muted(w, s, 1, "self");
		break;
	case CTL_UNMUTE:
		session_set_muted(w, s, 0, "self");
		break;
	case CTL_BAD:
		on_bad(w, s, req.error);
		break;
	}
	ctl_request_clear(&req);
}
