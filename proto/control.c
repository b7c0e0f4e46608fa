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

/* -- the messages of every connect, written directly ---------------------
 *
 * welcome, member events and member lists go out on every handshake (a
 * welcome, and a member event to each member of the room): building them
 * with jansson (pack, then dump with preserved key order) was a quarter of a
 * worker's CPU in a handshake ramp (perf). They have a fixed shape, so they
 * are written straight into a buffer; their strings are escaped as jansson
 * does (quote, backslash, control characters; UTF-8 passes as it is). */

static int buf_reserve(ctl_buf *b, size_t more)
{
	if (b->failed)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void buf_raw(ctl_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_lit(ctl_buf *b, const char *s) { buf_raw(b, s, strlen(s)); }

static void buf_str(ctl_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_raw(b, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_raw(b, run, (size_t)(s - run));
		if (!c)
			break;
		char esc[6] = { '\\', (char)c, 0, 0, 0, 0 };
		size_t n = 2;
		const char *shortform = c < 0x20 ? strchr("\bb\ff\nn\rr\tt", c) : NULL;
		if (shortform)
			esc[1] = shortform[1];
		else if (c < 0x20) {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		buf_raw(b, esc, n);
		run = s + 1;
	}
	buf_raw(b, "\"", 1);
}

static void buf_num(ctl_buf *b, int64_t v)
{
	char n[24];
	buf_raw(b, n, (size_t)snprintf(n, sizeof n, "%lld", (long long)v));
}

/* A "key":value pair; key_lit carries its quotes, colon and leading comma. */
static void buf_key_str(ctl_buf *b, const char *key_lit, const char *v)
{
	buf_lit(b, key_lit);
	buf_str(b, v);
}

static void buf_key_num(ctl_buf *b, const char *key_lit, int64_t v)
{
	buf_lit(b, key_lit);
	buf_num(b, v);
}

/* The buffer's text handed over as a malloc'd string, or NULL. */
static char *buf_take(ctl_buf *b)
{
	if (b->failed || !b->p) {
		free(b->p);
		return NULL;
	}
	return b->p;
}

void ctl_members_add(ctl_buf *members, const char *user, uint32_t ssrc, int muted)
{
	buf_key_str(members, members->len ? ",{\"user\":" : "{\"user\":", user);
	buf_key_num(members, ",\"ssrc\":", ssrc);
	buf_lit(members, muted ? ",\"muted\":true}" : ",\"muted\":false}");
}

void ctl_buf_free(ctl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static void buf_members(ctl_buf *b, const ctl_buf *members)
{
	buf_lit(b, ",\"members\":[");
	if (members->failed)
		b->failed = 1;
	else if (members->len)
		buf_raw(b, members->p, members->len);
	buf_lit(b, "]}");
}

char *ctl_welcome(const char *session, const char *user, const char *room, uint32_t ssrc,
                  int worker, int heartbeat_s, const char *resume, const ctl_buf *members)
{
	ctl_buf b = { 0 };
	buf_key_str(&b, "{\"type\":\"welcome\",\"session\":", session);
	buf_key_str(&b, ",\"user\":", user);
	buf_key_str(&b, ",\"room\":", room);
	buf_key_num(&b, ",\"ssrc\":", ssrc);
	buf_key_num(&b, ",\"worker\":", worker);
	buf_key_num(&b, ",\"heartbeat_s\":", heartbeat_s);
	buf_key_str(&b, ",\"resume\":", resume);
	buf_members(&b, members);
	return buf_take(&b);
}

char *ctl_joined(const char *room, const ctl_buf *members)
{
	ctl_buf b = { 0 };
	buf_key_str(&b, "{\"type\":\"joined\",\"room\":", room);
	buf_members(&b, members);
	return buf_take(&b);
}

char *ctl_member_event(const char *event, const char *user, uint32_t ssrc)
{
	ctl_buf b = { 0 };
	buf_key_str(&b, "{\"type\":\"member\",\"event\":", event);
	buf_key_str(&b, ",\"user\":", user);
	buf_key_num(&b, ",\"ssrc\":", ssrc);
	buf_lit(&b, "}");
	return buf_take(&b);
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
