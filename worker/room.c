/* room.c: the rooms this worker has members in. A room exists here while it
 * has at least one local member (bus traffic for other rooms is dropped on
 * arrival). Fan-out to local members shares one buffer. */
#include "worker/worker.h"
#include "common/log.h"
#include "proto/bus.h"
#include "proto/control.h"

#include <utlist.h>

local_room *room_find(worker *w, const char *name)
{
	local_room *r = NULL;
	HASH_FIND_STR(w->rooms, name, r);
	return r;
}

local_room *room_enter(worker *w, session *s, const char *name)
{
	local_room *r = room_find(w, name);
	if (!r) {
		if (!(r = calloc(1, sizeof *r)))
			return NULL;
		snprintf(r->name, sizeof r->name, "%s", name);
		HASH_ADD_STR(w->rooms, name, r);
	}
	DL_APPEND2(r->members, s, room_prev, room_next);
	r->n++;
	s->room = r;
	return r;
}

void room_exit(worker *w, session *s)
{
	local_room *r = s->room;
	if (!r)
		return;
	DL_DELETE2(r->members, s, room_prev, room_next);
	s->room = NULL;
	if (--r->n > 0)
		return;
	HASH_DEL(w->rooms, r);
	free(r);
}

void room_relay(worker *w, local_room *r, msgbuf *m, session *except)
{
	for (session *s = r->members; s; s = s->room_next)
		if (s != except)
			session_send(w, s, m);
}

void room_send_text(worker *w, local_room *r, const char *json, session *except)
{
	if (!json)
		return;
	msgbuf *m = msgbuf_text(json, strlen(json));
	if (!m)
		return;
	for (session *s = r->members; s; s = s->room_next)
		if (s != except)
			session_send(w, s, m);
	msgbuf_unref(m);
}

/* A member event for s's room: to the local members now, to the other
 * workers' members over the bus. */
void room_member_event(worker *w, session *s, uint8_t event)
{
	const char *user = w->reg->s[s->reg].user;
	char *json = ctl_member_event(bus_event_name(event), user, s->ssrc);
	room_send_text(w, s->room, json, s);
	free(json);
	bus_publish(w, s->room->name, BUS_MEMBER, event, s->ssrc, 0, user, strlen(user));
}
