/* control.c: see control.h. */
#include "proto/control.h"

#include <string.h>

static ctl_type bad(ctl_request *req, const char *why)
{
	req->type = CTL_BAD;
	req->error = why;
	return CTL_BAD;
}

static ctl_type parse_join(json_t *o, ctl_request *req)
{
	json_t *room = json_object_get(o, "room");
	if (!json_is_string(room))
		return bad(req, "join needs a \"room\" string");
	size_t n = json_string_length(room);
	if (n == 0 || n > CTL_ROOM_MAX)
		return bad(req, "room must be 1 to 128 bytes");
	const char *v = json_string_value(room);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return bad(req, "room must not contain control characters");
	memcpy(req->room, v, n + 1);
	req->type = CTL_JOIN;
	return CTL_JOIN;
}

ctl_type ctl_parse(const char *text, size_t len, ctl_request *req)
{
	memset(req, 0, sizeof *req);
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!o)
		return bad(req, "malformed JSON");
	const char *type = json_string_value(json_object_get(o, "type"));
	if (!json_is_object(o))
		bad(req, "a control message is a JSON object");
	else if (!type)
		bad(req, "missing \"type\"");
	else if (!strcmp(type, "ping")) {
		req->type = CTL_PING;
		req->id = json_incref(json_object_get(o, "id"));
	} else if (!strcmp(type, "join"))
		parse_join(o, req);
	else if (!strcmp(type, "mute"))
		req->type = CTL_MUTE;
	else if (!strcmp(type, "unmute"))
		req->type = CTL_UNMUTE;
	else
		bad(req, "unknown type");
	json_decref(o);
	return req->type;
}

void ctl_request_clear(ctl_request *req)
{
	json_decref(req->id);
	req->id = NULL;
}

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

json_t *ctl_member_entry(const char *user, uint32_t ssrc, int muted)
{
	return json_pack("{s:s, s:I, s:b}", "user", user, "ssrc", (json_int_t)ssrc, "muted", muted);
}

char *ctl_welcome(const char *session, const char *user, const char *room, uint32_t ssrc,
                  int worker, int heartbeat_s, const char *resume, json_t *members)
{
	return dump(json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:s, s:o}", "type", "welcome",
	                      "session", session, "user", user, "room", room, "ssrc",
	                      (json_int_t)ssrc, "worker", worker, "heartbeat_s", heartbeat_s,
	                      "resume", resume, "members", members));
}

char *ctl_joined(const char *room, json_t *members)
{
	return dump(json_pack("{s:s, s:s, s:o}", "type", "joined", "room", room, "members", members));
}

char *ctl_member_event(const char *event, const char *user, uint32_t ssrc)
{
	return dump(json_pack("{s:s, s:s, s:s, s:I}", "type", "member", "event", event, "user", user,
	                      "ssrc", (json_int_t)ssrc));
}

char *ctl_pong(json_t *id, int64_t t_ms)
{
	return dump(json_pack("{s:s, s:O?, s:I}", "type", "pong", "id", id, "t", (json_int_t)t_ms));
}

char *ctl_error(const char *code, const char *msg)
{
	return dump(json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "msg", msg));
}

char *ctl_system(const char *text)
{
	return dump(json_pack("{s:s, s:s}", "type", "system", "text", text));
}

char *ctl_kicked(const char *reason)
{
	return dump(json_pack("{s:s, s:s}", "type", "kicked", "reason", reason));
}

char *ctl_by_admin(const char *type)
{
	return dump(json_pack("{s:s, s:s}", "type", type, "by", "admin"));
}

char *ctl_message(const char *data_json)
{
	json_t *data = json_loads(data_json, JSON_DECODE_ANY, NULL);
	if (!data)
		return NULL;
	return dump(json_pack("{s:s, s:o}", "type", "message", "data", data));
}

char *ctl_drain(int64_t reconnect_in_ms)
{
	return dump(json_pack("{s:s, s:I}", "type", "drain", "reconnect_in_ms", (json_int_t)reconnect_in_ms));
}
