/* command.c: every operator command, once (SPEC 6.1/6.2). The control
 * socket (control.c) and the admin HTTP API (admin_http.c) both call
 * command_run(); listings read the host-wide registry in the shared area
 * directly, actions on sessions go to their workers over the bus and answer
 * how many connections they reached. */
#include "supervisor/supervisor.h"
#include "common/audit_query.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/bus.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SPEAKER_WINDOW_MS 2000

typedef struct cmd_ctx {
	supervisor *s;
	json_t *args;
	int status;                /* HTTP-like: 200, 400, 404, 409, 500, 501 */
	char error[600];
} cmd_ctx;

static json_t *fail(cmd_ctx *c, int status, const char *msg)
{
	c->status = status;
	snprintf(c->error, sizeof c->error, "%.590s", msg);
	return NULL;
}

static const char *arg_str(cmd_ctx *c, const char *key)
{
	return json_string_value(json_object_get(c->args, key));
}

static json_t *timestamp(int64_t wall_us)
{
	char buf[40];
	clock_format_rfc3339(wall_us, buf, sizeof buf);
	return json_string(buf);
}

/* -- listings ------------------------------------------------------------- */

typedef struct room_scan {
	json_t *rooms;             /* room -> [members, speakers] */
	int64_t speaking_since_ms;
	int speakers;
} room_scan;

static void scan_room(const reg_session *r, int index, void *arg)
{
	(void)index;
	room_scan *a = arg;
	json_t *e = json_object_get(a->rooms, r->room);
	if (!e) {
		e = json_pack("[i,i]", 0, 0);
		json_object_set_new(a->rooms, r->room, e);
	}
	int speaking = atomic_load_explicit(&((reg_session *)r)->last_audio_ms, memory_order_relaxed) >=
	               a->speaking_since_ms;
	json_array_set_new(e, 0, json_integer(json_integer_value(json_array_get(e, 0)) + 1));
	json_array_set_new(e, 1, json_integer(json_integer_value(json_array_get(e, 1)) + speaking));
	a->speakers += speaking;
}

static json_t *rooms_table(supervisor *s, room_scan *a)
{
	a->rooms = json_object();
	a->speaking_since_ms = clock_mono_ms() - SPEAKER_WINDOW_MS;
	a->speakers = 0;
	reg_each_live(shm_registry(s->shm), scan_room, a);
	return a->rooms;
}

void command_room_stats(supervisor *s, metric_room_stats *rs)
{
	room_scan a;
	json_t *t = rooms_table(s, &a);
	rs->rooms = (int)json_object_size(t);
	rs->speakers = a.speakers;
	json_decref(t);
}

static const char *state_name(int st)
{
	static const char *const names[] = { "free", "starting", "ready", "draining", "exited" };
	return st >= 0 && st <= SHM_PROC_EXITED ? names[st] : "?";
}

static json_t *cmd_status(cmd_ctx *c)
{
	supervisor *s = c->s;
	metric_totals t;
	metric_room_stats rs;
	metrics_host(s, &t);
	command_room_stats(s, &rs);
	uint64_t dropped = 0;
	for (int i = 0; i < SHM_DROP_REASONS; i++)
		dropped += t.dropped[i];
	return json_pack("{s:s, s:i, s:i, s:I, s:i, s:I, s:i, s:b, s:I, s:I, s:I, s:f}",
	                 "version", AGW_VERSION, "pid", (int)getpid(), "generation", s->generation,
	                 "uptime_s", (json_int_t)((clock_wall_us() - s->started_us) / 1000000),
	                 "workers", fleet_running(s),
	                 "connections", (json_int_t)atomic_load(&s->shm->host_connections),
	                 "rooms", rs.rooms, "draining", s->draining,
	                 "frames_in", (json_int_t)t.frames_in, "frames_out", (json_int_t)t.frames_out,
	                 "frames_dropped", (json_int_t)dropped,
	                 "relay_p99_ms", metrics_latency_ms(&t, 0.99));
}

static json_t *cmd_workers(cmd_ctx *c)
{
	json_t *list = json_array();
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		shm_proc *p = &c->s->shm->procs[i];
		int st = atomic_load(&p->state);
		if (st == SHM_PROC_FREE)
			continue;
		json_array_append_new(list, json_pack("{s:i, s:i, s:i, s:s, s:I, s:o}", "slot", p->slot,
		        "pid", (int)atomic_load(&p->pid), "generation", p->generation,
		        "state", state_name(st), "connections", (json_int_t)atomic_load(&p->c.connections),
		        "started_at", timestamp(p->started_at_us)));
	}
	return list;
}

static json_t *cmd_rooms(cmd_ctx *c)
{
	room_scan a;
	json_t *t = rooms_table(c->s, &a), *list = json_array();
	const char *name;
	json_t *e;
	json_object_foreach(t, name, e)
		json_array_append_new(list, json_pack("{s:s, s:O, s:O}", "room", name,
		                      "members", json_array_get(e, 0), "speakers", json_array_get(e, 1)));
	json_decref(t);
	return list;
}

static void add_room_member(const reg_session *r, int index, void *arg)
{
	(void)index;
	reg_session *m = (reg_session *)r;
	json_array_append_new(arg, json_pack("{s:s, s:s, s:i, s:I, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
	        "user", r->user, "session", r->id, "worker", r->worker, "ssrc", (json_int_t)r->ssrc,
	        "muted", r->muted, "perm", r->listen_only ? "listen" : "speak",
	        "frames_in", (json_int_t)atomic_load(&m->frames_in),
	        "frames_out", (json_int_t)atomic_load(&m->frames_out),
	        "frames_dropped", (json_int_t)atomic_load(&m->frames_dropped),
	        "frames_lost", (json_int_t)atomic_load(&m->frames_lost),
	        "frames_duplicate", (json_int_t)atomic_load(&m->frames_duplicate),
	        "frames_out_of_order", (json_int_t)atomic_load(&m->frames_out_of_order)));
}

static json_t *cmd_room(cmd_ctx *c)
{
	const char *room = arg_str(c, "room");
	if (!room)
		return fail(c, 400, "room: a room name is required");
	json_t *members = json_array();
	if (!reg_each_in_room(shm_registry(c->s->shm), room, add_room_member, members)) {
		json_decref(members);
		return fail(c, 404, "no such room");
	}
	return json_pack("{s:s, s:o}", "room", room, "members", members);
}

static void add_session(const reg_session *r, int index, void *arg)
{
	(void)index;
	json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:o, s:b}",
	        "session", r->id, "user", r->user, "room", r->room, "worker", r->worker,
	        "ssrc", (json_int_t)r->ssrc, "ip", r->ip, "connected_at", timestamp(r->connected_at_us),
	        "muted", r->muted));
}

static json_t *cmd_sessions(cmd_ctx *c)
{
	const char *user = arg_str(c, "user");
	json_t *list = json_array();
	reg_area *r = shm_registry(c->s->shm);
	if (user)
		reg_each_of_user(r, user, add_session, list);
	else
		reg_each_live(r, add_session, list);
	return list;
}

/* -- actions -------------------------------------------------------------- */

typedef struct target {
	reg_session copy;
	int index;
} target;

typedef struct targets {
	target t[64];
	int n, total;
	const char *session;      /* kick-session: match this id */
} targets;

static void collect(const reg_session *r, int index, void *arg)
{
	targets *a = arg;
	if (a->session && strcmp(r->id, a->session))
		return;
	a->total++;
	if (a->n < (int)(sizeof a->t / sizeof a->t[0]))
		a->t[a->n++] = (target){ *r, index };
}

static json_t *reached(int n)
{
	return json_pack("{s:b, s:i}", "ok", 1, "connections", n);
}

/* Sends op to every session of the user (at most 64: a user has few). */
static int act_on_user(cmd_ctx *c, const char *user, uint8_t op, const char *text)
{
	targets a = { .n = 0 };
	reg_each_of_user(shm_registry(c->s->shm), user, collect, &a);
	for (int i = 0; i < a.n; i++)
		sup_bus_admin_session(c->s, &a.t[i].copy, a.t[i].index, op, text);
	return a.n;
}

static json_t *user_action(cmd_ctx *c, uint8_t op, const char *text, const char *audit_event)
{
	const char *user = arg_str(c, "user");
	if (!user)
		return fail(c, 400, "user: a user id is required");
	int n = act_on_user(c, user, op, text);
	command_audit(c->s, audit_event, user, NULL, NULL, text);
	return n ? reached(n) : fail(c, 404, "no such user connected");
}

static json_t *cmd_kick(cmd_ctx *c)
{
	const char *user = arg_str(c, "user"), *reason = arg_str(c, "reason");
	json_int_t ban_ms = json_integer_value(json_object_get(c->args, "ban_ms"));
	if (!user)
		return fail(c, 400, "user: a user id is required");
	if (ban_ms < 0)
		return fail(c, 400, "ban_ms: must not be negative");
	if (ban_ms > 0) {
		int64_t now = clock_wall_us();
		if (reg_ban_user(shm_registry(c->s->shm), user, now + ban_ms * 1000, now) < 0)
			return fail(c, 500, "the ban table is full");
	}
	int n = act_on_user(c, user, ADMIN_KICK, reason ? reason : "kicked by an operator");
	char detail[128];
	snprintf(detail, sizeof detail, "{\"connections\":%d,\"ban_ms\":%lld}", n, (long long)ban_ms);
	command_audit(c->s, "kick", user, NULL, reason, detail);
	return n || ban_ms > 0 ? reached(n) : fail(c, 404, "no such user connected");
}

static json_t *cmd_kick_session(cmd_ctx *c)
{
	const char *id = arg_str(c, "session");
	if (!id)
		return fail(c, 400, "session: a session id is required");
	targets a = { .n = 0, .session = id };
	reg_each_live(shm_registry(c->s->shm), collect, &a);
	for (int i = 0; i < a.n; i++)
		sup_bus_admin_session(c->s, &a.t[i].copy, a.t[i].index, ADMIN_KICK, "kicked by an operator");
	if (a.n)
		command_audit(c->s, "kick", a.t[0].copy.user, id, NULL, NULL);
	return a.n ? reached(a.n) : fail(c, 404, "no such session");
}

static json_t *cmd_mute(cmd_ctx *c) { return user_action(c, ADMIN_MUTE, "", "mute"); }
static json_t *cmd_unmute(cmd_ctx *c) { return user_action(c, ADMIN_UNMUTE, "", "unmute"); }

static json_t *cmd_send(cmd_ctx *c)
{
	json_t *data = json_object_get(c->args, "data");
	if (!data)
		return fail(c, 400, "data: a JSON value is required");
	char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text || strlen(text) > 8000) {
		free(text);
		return fail(c, 400, "data: too large (at most 8000 bytes of JSON)");
	}
	json_t *r = user_action(c, ADMIN_MESSAGE, text, "message");
	free(text);
	return r;
}

static json_t *cmd_broadcast(cmd_ctx *c)
{
	const char *room = arg_str(c, "room"), *text = arg_str(c, "text");
	if (!room || !text)
		return fail(c, 400, "broadcast needs a room and a text");
	if (strlen(text) > 8000)
		return fail(c, 400, "text: too long (at most 8000 bytes)");
	int all = !strcmp(room, "*");
	reg_area *r = shm_registry(c->s->shm);
	targets a = { .n = 0 };
	int n = all ? reg_each_live(r, collect, &a) : reg_each_in_room(r, room, collect, &a);
	if (!n)
		return fail(c, 404, all ? "no connections" : "no such room");
	sup_bus_system(c->s, all ? NULL : room, text);
	command_audit(c->s, "broadcast", NULL, NULL, NULL, text);
	return reached(n);
}

static json_t *cmd_audit(cmd_ctx *c)
{
	char err[256] = "";
	json_t *v = json_object_get(c->args, "since_ms");
	json_int_t since_ms = json_integer_value(v), limit = json_integer_value(json_object_get(c->args, "limit"));
	if (since_ms < 0 || (v && !json_is_integer(v)))
		return fail(c, 400, "since: a duration such as 1h or 30m");
	if (limit < 0 || limit > 10000)
		return fail(c, 400, "limit: 1 to 10000");
	int64_t since_us = since_ms > 0 ? clock_wall_us() - since_ms * 1000 : 0;
	json_t *rows = audit_query(c->s->cfg.audit_database, since_us, arg_str(c, "user"),
	                           arg_str(c, "room"), arg_str(c, "event"), (int)limit, err, sizeof err);
	return rows ? rows : fail(c, 500, err[0] ? err : "cannot read the audit journal");
}

static json_t *cmd_metrics(cmd_ctx *c)
{
	metric_room_stats rs;
	command_room_stats(c->s, &rs);
	char *text = metrics_text(c->s, &rs);
	json_t *r = text ? json_string(text) : fail(c, 500, "out of memory");
	free(text);
	return r;
}

static json_t *cmd_reload(cmd_ctx *c)
{
	return supervisor_reload(c->s) < 0 ? fail(c, 409, c->s->last_error)
	       : json_pack("{s:b, s:i}", "ok", 1, "generation", c->s->generation);
}

static json_t *cmd_drain(cmd_ctx *c)
{
	supervisor_drain(c->s);
	return json_pack("{s:b, s:i}", "ok", 1, "generation", c->s->generation);
}

/* -- downstream: recording, RTP forward (the downstream process answers) -- */

static json_t *downstream(cmd_ctx *c, const char *name)
{
	return sup_downstream_command(c->s, name, c->args, &c->status, c->error, sizeof c->error);
}

static json_t *cmd_record_start(cmd_ctx *c) { return downstream(c, "record-start"); }
static json_t *cmd_record_stop(cmd_ctx *c) { return downstream(c, "record-stop"); }
static json_t *cmd_recordings(cmd_ctx *c) { return downstream(c, "recordings"); }
static json_t *cmd_forward_start(cmd_ctx *c) { return downstream(c, "forward-start"); }
static json_t *cmd_forward_stop(cmd_ctx *c) { return downstream(c, "forward-stop"); }
static json_t *cmd_forwards(cmd_ctx *c) { return downstream(c, "forwards"); }
static json_t *cmd_forward_sdp(cmd_ctx *c) { return downstream(c, "forward-sdp"); }

static const struct command {
	const char *name;
	json_t *(*run)(cmd_ctx *c);
} commands[] = {
	{ "status", cmd_status }, { "workers", cmd_workers }, { "rooms", cmd_rooms },
	{ "room", cmd_room }, { "sessions", cmd_sessions }, { "kick", cmd_kick },
	{ "kick-session", cmd_kick_session }, { "mute", cmd_mute }, { "unmute", cmd_unmute },
	{ "broadcast", cmd_broadcast }, { "send", cmd_send }, { "reload", cmd_reload },
	{ "drain", cmd_drain }, { "audit", cmd_audit }, { "metrics", cmd_metrics },
	{ "record-start", cmd_record_start }, { "record-stop", cmd_record_stop },
	{ "recordings", cmd_recordings }, { "forward-start", cmd_forward_start },
	{ "forward-stop", cmd_forward_stop }, { "forwards", cmd_forwards },
	{ "forward-sdp", cmd_forward_sdp },
};

json_t *command_run(supervisor *s, const char *name, json_t *args, int *status, char *err,
                    size_t errlen)
{
	cmd_ctx c = { s, args, 200, "" };
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].name, name))
			continue;
		json_t *r = commands[i].run(&c);
		*status = r ? 200 : c.status;
		snprintf(err, errlen, "%.*s", (int)(errlen > 0 ? errlen - 1 : 0), c.error);
		return r;
	}
	*status = 400;
	snprintf(err, errlen, "unknown command \"%s\"", name);
	return NULL;
}
