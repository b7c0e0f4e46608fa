/* admin.c: operators' actions reaching this worker over the bus from the
 * supervisor (SPEC 6.1/6.2): kick, mute, unmute, message for one session;
 * system broadcasts for a room or for every room. */
#include "worker/worker.h"
#include "proto/bus.h"
#include "proto/control.h"

#include <string.h>

/* The session an admin message targets, if it is still the same session
 * (registry entries are reused: the id must match). */
static session *admin_target(worker *w, const bus_msg *m, const char **text)
{
	const char *id = (const char *)m->payload;
	size_t idlen = strnlen(id, m->payload_len);
	if (idlen == m->payload_len || m->ssrc >= (uint32_t)w->reg->capacity)
		return NULL;
	session *s = w->by_reg[m->ssrc];
	if (!s || strcmp(w->reg->s[m->ssrc].id, id))
		return NULL;
	*text = id + idlen + 1;
	return s;
}

static void admin_mute(worker *w, session *s, int muted)
{
	session_send_text(w, s, ctl_by_admin(muted ? "muted" : "unmuted"));
	session_set_muted(w, s, muted, "admin");
}

static void admin_system(worker *w, const char *room, const char *text)
{
	char *json = ctl_system(text);
	if (!json)
		return;
	if (room) {
		local_room *r = room_find(w, room);
		if (r)
			room_send_text(w, r, json, NULL);
	} else {
		for (local_room *r = w->rooms; r; r = r->hh.next)
			room_send_text(w, r, json, NULL);
	}
	free(json);
}

void admin_on_bus(worker *w, const char *topic, const bus_msg *m)
{
	/* copy the text out: the message is NUL-terminated only by convention */
	char text[8192];
	if (m->event == ADMIN_SYSTEM) {
		size_t n = m->payload_len < sizeof text - 1 ? m->payload_len : sizeof text - 1;
		memcpy(text, m->payload, n);
		text[n] = '\0';
		admin_system(w, topic[0] == BUS_ROOM_TOPIC_PREFIX[0] ? topic + 1 : NULL, text);
		return;
	}
	const char *arg;
	session *s = admin_target(w, m, &arg);
	if (!s)
		return;
	size_t n = strnlen(arg, (size_t)((const char *)m->payload + m->payload_len - arg));
	if (n > sizeof text - 1)
		n = sizeof text - 1;
	memcpy(text, arg, n);
	text[n] = '\0';
	switch (m->event) {
	case ADMIN_KICK:
		session_send_text(w, s, ctl_kicked(text));
		session_close_for(s, 4001, "kicked");
		break;
	case ADMIN_MUTE:
		admin_mute(w, s, 1);
		break;
	case ADMIN_UNMUTE:
		admin_mute(w, s, 0);
		break;
	case ADMIN_MESSAGE:
		session_send_text(w, s, ctl_message(text));
		break;
	}
}
