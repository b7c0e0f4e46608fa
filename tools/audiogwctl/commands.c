/* commands.c: audiogwctl's command handlers. Each validates its arguments
 * (bad ones are usage errors, exit 2) before it talks to the daemon, sends
 * one request, and prints the result: as JSON with --json, else as a table,
 * "key: value" lines or one sentence. token mints locally instead. */
#include "tools/audiogwctl/ctl.h"
#include "common/config.h"
#include "common/token.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int bad_reply(const ctx *x, const char *what)
{
	return ctl_fail(x, CTL_FAIL, "unexpected reply from audiogwd: %s", what);
}

/* Requests, then prints with printer unless --json. */
static int call_and_print(ctx *x, json_t *req, int (*printer)(const ctx *, const json_t *))
{
	json_t *res = NULL;
	int rc = ctl_request(x, req, &res);

	if (rc == CTL_OK) {
		if (x->json)
			print_json(res, stdout);
		else
			rc = printer(x, res);
	}
	json_decref(res);
	return rc;
}

static json_t *request(const ctx *x)
{
	return json_pack("{s:s}", "cmd", x->cmd);
}

static void set_str(json_t *req, const char *key, const char *val)
{
	if (val)
		json_object_set_new(req, key, json_string(val));
}

/* ---- status ---- */

static void status_line(const char *key, const char *val)
{
	printf("%s: %s\n", key, val);
}

static int print_status(const ctx *x, const json_t *r)
{
	static const char *const shown[] = { "version", "pid", "generation", "uptime_s",
		"workers", "connections", "rooms", "draining", "frames_in", "frames_out",
		"frames_dropped", "relay_p99_ms", NULL };
	static const char *const totals[] = { "frames_in", "frames_out", "frames_dropped", NULL };
	char buf[64];

	if (!json_is_object(r))
		return bad_reply(x, "status is not an object");
	status_line("version", jf_str(r, "version"));
	status_line("pid", jf_str(r, "pid"));
	status_line("generation", jf_str(r, "generation"));
	status_line("uptime", json_is_number(json_object_get(r, "uptime_s")) ?
		fmt_duration(buf, sizeof buf, jf_int(r, "uptime_s", 0)) : "-");
	status_line("workers", jf_count(r, "workers"));
	status_line("connections", jf_count(r, "connections"));
	status_line("rooms", jf_count(r, "rooms"));
	status_line("draining", jf_bool(r, "draining"));
	for (int i = 0; totals[i]; i++)
		if (json_object_get(r, totals[i]))
			status_line(totals[i], jf_count(r, totals[i]));
	json_t *p99 = json_object_get(r, "relay_p99_ms");
	if (json_is_number(p99)) {
		snprintf(buf, sizeof buf, "%.2f ms", json_number_value(p99));
		status_line("relay_p99", buf);
	}
	/* Fields added later: shown as they come. */
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)r, key, v) {
		int known = 0;
		for (int i = 0; shown[i]; i++)
			known |= strcmp(key, shown[i]) == 0;
		if (!known)
			status_line(key, jf_str(r, key));
	}
	return CTL_OK;
}

int cmd_status(ctx *x, const cmd_args *a)
{
	(void)a;
	return call_and_print(x, request(x), print_status);
}

/* ---- workers, rooms ---- */

int print_workers(const json_t *res, FILE *f)
{
	table t;
	size_t i;
	json_t *w;

	if (!json_is_array(res))
		return -1;
	table_init(&t, "SLOT> PID> GEN> STATE CONNS> STARTED UP>");
	json_array_foreach(res, i, w)
		table_add(&t, jf_str(w, "slot"), jf_str(w, "pid"), jf_str(w, "generation"),
			jf_str(w, "state"), jf_count(w, "connections"), jf_time(w, "started_at", 0),
			jf_age(w, "started_at"));
	table_print(&t, f);
	table_free(&t);
	return 0;
}

static int by_members(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	int64_t ma = jf_int(a, "members", 0), mb = jf_int(b, "members", 0);
	if (ma != mb)
		return ma > mb ? -1 : 1;
	const char *ra = json_string_value(json_object_get(a, "room"));
	const char *rb = json_string_value(json_object_get(b, "room"));
	return strcmp(ra ? ra : "", rb ? rb : "");
}

int print_rooms(const json_t *res, FILE *f, size_t limit)
{
	size_t n = json_array_size(res);
	table t;

	if (!json_is_array(res))
		return -1;
	json_t **v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(res, i);
	qsort(v, n, sizeof *v, by_members);
	if (limit && n > limit)
		n = limit;
	table_init(&t, "ROOM MEMBERS> SPEAKERS>");
	for (size_t i = 0; i < n; i++)
		table_add(&t, jf_str(v[i], "room"), jf_count(v[i], "members"),
			jf_count(v[i], "speakers"));
	table_print(&t, f);
	table_free(&t);
	free(v);
	return 0;
}

static int show_workers(const ctx *x, const json_t *r)
{
	return print_workers(r, stdout) == 0 ? CTL_OK : bad_reply(x, "workers is not an array");
}

static int show_rooms(const ctx *x, const json_t *r)
{
	return print_rooms(r, stdout, 0) == 0 ? CTL_OK : bad_reply(x, "rooms is not an array");
}

int cmd_workers(ctx *x, const cmd_args *a)
{
	(void)a;
	return call_and_print(x, request(x), show_workers);
}

int cmd_rooms(ctx *x, const cmd_args *a)
{
	(void)a;
	return call_and_print(x, request(x), show_rooms);
}

/* ---- room, sessions ---- */

static int show_room(const ctx *x, const json_t *r)
{
	json_t *members = json_object_get(r, "members"), *m;
	size_t i, n = json_array_size(members);
	table t;

	if (!json_is_object(r) || !json_is_array(members))
		return bad_reply(x, "room has no members array");
	printf("room %s: %zu member%s\n", jf_str(r, "room"), n, n == 1 ? "" : "s");
	table_init(&t, "USER SESSION WORKER> SSRC PERM MUTED IN> OUT> DROPPED> LOST>");
	json_array_foreach(members, i, m)
		table_add(&t, jf_str(m, "user"), jf_str(m, "session"), jf_str(m, "worker"),
			jf_ssrc(m, "ssrc"), jf_str(m, "perm"), jf_bool(m, "muted"),
			jf_count(m, "frames_in"), jf_count(m, "frames_out"),
			jf_count(m, "frames_dropped"), jf_count(m, "frames_lost"));
	table_print(&t, stdout);
	table_free(&t);
	return CTL_OK;
}

int cmd_room(ctx *x, const cmd_args *a)
{
	json_t *req = request(x);
	set_str(req, "room", a->pos[0]);
	return call_and_print(x, req, show_room);
}

static int show_sessions(const ctx *x, const json_t *r)
{
	size_t i;
	json_t *s;
	table t;

	if (!json_is_array(r))
		return bad_reply(x, "sessions is not an array");
	table_init(&t, "SESSION USER ROOM WORKER> SSRC IP CONNECTED AGE> MUTED");
	json_array_foreach(r, i, s)
		table_add(&t, jf_str(s, "session"), jf_str(s, "user"), jf_str(s, "room"),
			jf_str(s, "worker"), jf_ssrc(s, "ssrc"), jf_str(s, "ip"),
			jf_time(s, "connected_at", 0), jf_age(s, "connected_at"),
			jf_bool(s, "muted"));
	table_print(&t, stdout);
	table_free(&t);
	return CTL_OK;
}

int cmd_sessions(ctx *x, const cmd_args *a)
{
	json_t *req = request(x);
	set_str(req, "user", arg_opt(a, "user"));
	return call_and_print(x, req, show_sessions);
}

/* ---- actions: kick, kick-session, mute, unmute, broadcast, send ---- */

/* The daemon answers {"connections":N} (as result, or beside "ok"). */
static int action(ctx *x, json_t *req, const char *verb, const char *suffix)
{
	json_t *res = NULL;
	int rc = ctl_request(x, req, &res);

	if (rc != CTL_OK)
		return rc;
	json_t *nv = json_is_integer(res) ? res : json_object_get(res, "connections");
	if (!json_is_integer(nv)) {
		json_decref(res);
		return bad_reply(x, "no connections count");
	}
	json_int_t n = json_integer_value(nv);
	if (x->json) {
		json_t *out = json_pack("{s:b,s:I}", "ok", 1, "connections", n);
		if (json_is_object(res))
			json_object_update_missing(out, res);
		print_json(out, stdout);
		json_decref(out);
	} else {
		printf("%s %" JSON_INTEGER_FORMAT " connection%s%s\n", verb, n, n == 1 ? "" : "s",
			suffix ? suffix : "");
	}
	json_decref(res);
	return CTL_OK;
}

static int user_action(ctx *x, const cmd_args *a, const char *verb)
{
	json_t *req = request(x);
	set_str(req, "user", a->pos[0]);
	return action(x, req, verb, NULL);
}

int cmd_kick(ctx *x, const cmd_args *a)
{
	const char *ban = arg_opt(a, "ban"), *reason = arg_opt(a, "reason");
	char err[160], suffix[300] = "";
	int64_t ban_ms = 0;

	if (ban && cfg_parse_duration(ban, &ban_ms, err, sizeof err) != 0)
		return ctl_usage(x, "--ban: %s", err);
	if (ban && ban_ms <= 0)
		return ctl_usage(x, "bad --ban \"%s\": must be more than 0", ban);
	json_t *req = request(x);
	set_str(req, "user", a->pos[0]);
	set_str(req, "reason", reason);
	if (ban) {
		json_object_set_new(req, "ban_ms", json_integer(ban_ms));
		snprintf(suffix, sizeof suffix, "; %s banned for %s", a->pos[0], ban);
	}
	return action(x, req, "kicked", suffix);
}

int cmd_kick_session(ctx *x, const cmd_args *a)
{
	json_t *req = request(x);
	set_str(req, "session", a->pos[0]);
	return action(x, req, "kicked", NULL);
}

int cmd_mute(ctx *x, const cmd_args *a)
{
	return user_action(x, a, "muted");
}

int cmd_unmute(ctx *x, const cmd_args *a)
{
	return user_action(x, a, "unmuted");
}

int cmd_broadcast(ctx *x, const cmd_args *a)
{
	json_t *req = request(x);
	set_str(req, "room", a->pos[0]);
	set_str(req, "text", a->pos[1]);
	return action(x, req, "broadcast to", NULL);
}

int cmd_send(ctx *x, const cmd_args *a)
{
	json_error_t jerr;
	json_t *data = json_loads(a->pos[1], JSON_DECODE_ANY, &jerr);

	if (!data)
		return ctl_usage(x, "JSON is not valid: %s (column %d)", jerr.text, jerr.column);
	json_t *req = request(x);
	set_str(req, "user", a->pos[0]);
	json_object_set_new(req, "data", data);
	return action(x, req, "sent to", NULL);
}

/* ---- reload, drain ---- */

static int generation_cmd(ctx *x, const char *done)
{
	json_t *res = NULL;
	int rc = ctl_request(x, NULL, &res);

	if (rc != CTL_OK)
		return rc;
	json_t *g = json_is_integer(res) ? res : json_object_get(res, "generation");
	if (x->json) {
		json_t *out = json_pack("{s:b}", "ok", 1);
		if (g)
			json_object_set(out, "generation", g);
		if (json_is_object(res))
			json_object_update_missing(out, res);
		print_json(out, stdout);
		json_decref(out);
	} else if (json_is_integer(g)) {
		printf("%s (generation %" JSON_INTEGER_FORMAT ")\n", done, json_integer_value(g));
	} else {
		printf("%s\n", done);
	}
	json_decref(res);
	return CTL_OK;
}

int cmd_reload(ctx *x, const cmd_args *a)
{
	(void)a;
	return generation_cmd(x, "reloaded: every worker acknowledged");
}

int cmd_drain(ctx *x, const cmd_args *a)
{
	(void)a;
	return generation_cmd(x, "draining: every worker acknowledged");
}

/* ---- audit ---- */

static int show_audit(const ctx *x, const json_t *r)
{
	size_t i;
	json_t *e;
	table t;

	if (!json_is_array(r))
		return bad_reply(x, "audit is not an array");
	table_init(&t, "TS EVENT WORKER> USER ROOM IP REASON");
	json_array_foreach(r, i, e)
		table_add(&t, jf_time(e, "ts", 3), jf_str(e, "event"), jf_str(e, "worker"),
			jf_str(e, "user"), jf_str(e, "room"), jf_str(e, "ip"), jf_str(e, "reason"));
	table_print(&t, stdout);
	table_free(&t);
	return CTL_OK;
}

int cmd_audit(ctx *x, const cmd_args *a)
{
	const char *since = arg_opt(a, "since"), *limit = arg_opt(a, "limit");
	char err[160];
	int64_t since_ms = 0, lim = 0;

	if (since && cfg_parse_duration(since, &since_ms, err, sizeof err) != 0)
		return ctl_usage(x, "--since: %s", err);
	if (limit && cfg_parse_int(limit, 1, 1000000, &lim, err, sizeof err) != 0)
		return ctl_usage(x, "bad --limit \"%s\": %s", limit, err);
	json_t *req = request(x);
	if (since)
		json_object_set_new(req, "since_ms", json_integer(since_ms));
	set_str(req, "user", arg_opt(a, "user"));
	set_str(req, "room", arg_opt(a, "room"));
	set_str(req, "event", arg_opt(a, "event"));
	if (limit)
		json_object_set_new(req, "limit", json_integer(lim));
	return call_and_print(x, req, show_audit);
}

/* ---- metrics ---- */

static int show_metrics(const ctx *x, const json_t *r)
{
	const char *s = json_string_value(r);
	if (!s)
		return bad_reply(x, "metrics is not a string");
	size_t n = strlen(s);
	fputs(s, stdout);
	if (n && s[n - 1] != '\n')
		fputc('\n', stdout);
	return CTL_OK;
}

int cmd_metrics(ctx *x, const cmd_args *a)
{
	(void)a;
	return call_and_print(x, request(x), show_metrics);
}

/* ---- token ---- */

static int add_rooms(token_claims *c, const char *list)
{
	char buf[TOKEN_ROOMS_MAX + 1];
	char *save = NULL;

	if (strlen(list) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *r = strtok_r(buf, ",", &save); r; r = strtok_r(NULL, ",", &save))
		if (token_claims_add_room(c, r) != 0)
			return -1;
	return 0;
}

/* Fills c from the options; CTL_OK or a usage error (printed). */
static int token_claims_from_args(ctx *x, const cmd_args *a, token_claims *c, int64_t *ttl_s)
{
	const char *user = arg_opt(a, "user"), *room = arg_opt(a, "room");
	const char *ttl = arg_opt(a, "ttl"), *perm = arg_opt(a, "perm");
	const char *rooms = arg_opt(a, "rooms"), *dev = arg_opt(a, "dev");
	char err[160];
	int64_t ttl_ms = 3600 * 1000;

	memset(c, 0, sizeof *c);
	if (!user || !room)
		return ctl_usage(x, "--user and --room are required");
	if (ttl && (cfg_parse_duration(ttl, &ttl_ms, err, sizeof err) != 0))
		return ctl_usage(x, "--ttl: %s", err);
	if (ttl_ms < 1000)
		return ctl_usage(x, "bad --ttl \"%s\": must be at least 1s", ttl);
	if (perm && strcmp(perm, "listen") != 0 && strcmp(perm, "speak") != 0)
		return ctl_usage(x, "bad --perm \"%s\": must be listen or speak", perm);
	if (strlen(user) > TOKEN_NAME_MAX || strlen(room) > TOKEN_NAME_MAX ||
	    (dev && strlen(dev) > TOKEN_NAME_MAX))
		return ctl_usage(x, "--user, --room and --dev are at most %d bytes", TOKEN_NAME_MAX);
	snprintf(c->sub, sizeof c->sub, "%s", user);
	snprintf(c->room, sizeof c->room, "%s", room);
	snprintf(c->dev, sizeof c->dev, "%s", dev ? dev : "");
	if (rooms && add_rooms(c, rooms) != 0)
		return ctl_usage(x, "bad --rooms \"%s\": comma-separated room names "
			"(1-%d bytes, no control characters) or \"*\"", rooms, TOKEN_NAME_MAX);
	c->perm_listen = perm && strcmp(perm, "listen") == 0;
	*ttl_s = (ttl_ms + 999) / 1000;
	return CTL_OK;
}

int cmd_token(ctx *x, const cmd_args *a)
{
	static cfg conf;          /* large: not on the stack */
	static const unsigned char probe_key[32];
	token_claims c;
	char jwt[TOKEN_MAX_LEN + 1];
	int64_t ttl_s = 0, now = (int64_t)time(NULL);
	int rc = token_claims_from_args(x, a, &c, &ttl_s);

	if (rc != CTL_OK)
		return rc;
	c.iat = now;
	c.has_iat = 1;
	c.exp = now + ttl_s;
	if (token_mint_hs256(&c, probe_key, sizeof probe_key, jwt, sizeof jwt) < 0)
		return ctl_usage(x, "cannot mint such a token: --user is 1-%d visible ASCII "
			"characters, --room and --dev at most %d bytes without control characters",
			TOKEN_NAME_MAX, TOKEN_NAME_MAX);
	if ((rc = ctl_load_config(x, &conf)) != CTL_OK)
		return rc;
	if (conf.hs256_secret_len == 0)
		return ctl_fail(x, CTL_FAIL, "%s has no HS256 secret ([auth] hs256_secret_file); "
			"cannot mint a token", x->config_file);
	int n = token_mint_hs256(&c, conf.hs256_secret, conf.hs256_secret_len, jwt, sizeof jwt);
	memset(conf.hs256_secret, 0, sizeof conf.hs256_secret);
	if (n < 0)
		return ctl_fail(x, CTL_FAIL, "cannot mint the token");
	if (x->json) {
		json_t *out = json_pack("{s:s,s:s,s:s,s:I,s:s}", "token", jwt, "user", c.sub,
			"room", c.room, "exp", (json_int_t)c.exp,
			"perm", c.perm_listen ? "listen" : "speak");
		print_json(out, stdout);
		json_decref(out);
	} else {
		printf("%s\n", jwt);
	}
	return CTL_OK;
}

/* ---- record, forward (the downstream process: audiogwd-downstream(7)) ---- */

static json_t *sub_request(const char *cmd, const char *room)
{
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	set_str(req, "room", room);
	return req;
}

static int show_recording_files(const json_t *list)
{
	size_t i, k;
	json_t *r, *f;
	table t;
	table_init(&t, "ROOM USER SSRC CODEC FRAMES> OPEN FILE");
	json_array_foreach(list, i, r)
		json_array_foreach(json_object_get(r, "files"), k, f)
			table_add(&t, jf_str(r, "room"), jf_str(f, "user"), jf_str(f, "ssrc"),
				jf_str(f, "codec"), jf_count(f, "frames"), jf_bool(f, "open"),
				jf_str(f, "file"));
	if (t.nrows)
		table_print(&t, stdout);
	table_free(&t);
	return CTL_OK;
}

static int show_recordings(const ctx *x, const json_t *r)
{
	size_t i;
	json_t *e;
	table t;
	if (!json_is_array(r))
		return bad_reply(x, "recordings is not an array");
	table_init(&t, "ROOM SPEAKERS> FRAMES> DROPPED> LATE> STARTED DIR");
	json_array_foreach(r, i, e)
		table_add(&t, jf_str(e, "room"), jf_count(e, "speakers"), jf_count(e, "frames"),
			jf_count(e, "dropped"), jf_count(e, "late"), jf_time(e, "started_at", 0),
			jf_str(e, "dir"));
	table_print(&t, stdout);
	table_free(&t);
	if (json_array_size(r)) {
		putchar('\n');
		show_recording_files(r);
	}
	return CTL_OK;
}

static int show_record_start(const ctx *x, const json_t *r)
{
	if (!json_is_object(r))
		return bad_reply(x, "not an object");
	printf("recording %s into %s\n", jf_str(r, "room"), jf_str(r, "dir"));
	return CTL_OK;
}

static int show_record_stop(const ctx *x, const json_t *r)
{
	if (!json_is_object(r))
		return bad_reply(x, "not an object");
	size_t n = json_array_size(json_object_get(r, "files"));
	printf("stopped recording %s: %s frames, %s dropped, %zu file%s%s\n", jf_str(r, "room"),
		jf_count(r, "frames"), jf_count(r, "dropped"), n, n == 1 ? "" : "s",
		json_is_true(json_object_get(r, "finalizing")) ? " (still being finished)" : "");
	json_t *one = json_pack("[O]", (json_t *)r);
	show_recording_files(one);
	json_decref(one);
	return CTL_OK;
}

int cmd_record(ctx *x, const cmd_args *a)
{
	const char *sub = a->pos[0], *dir = arg_opt(a, "dir");
	if (!strcmp(sub, "start")) {
		if (a->npos != 2)
			return ctl_usage(x, "record start needs a ROOM");
		json_t *req = sub_request("record-start", a->pos[1]);
		set_str(req, "dir", dir);
		return call_and_print(x, req, show_record_start);
	}
	if (dir)
		return ctl_usage(x, "--dir goes with record start");
	if (!strcmp(sub, "stop")) {
		if (a->npos != 2)
			return ctl_usage(x, "record stop needs a ROOM");
		return call_and_print(x, sub_request("record-stop", a->pos[1]), show_record_stop);
	}
	if (!strcmp(sub, "list")) {
		if (a->npos != 1)
			return ctl_usage(x, "record list takes no ROOM");
		return call_and_print(x, sub_request("recordings", NULL), show_recordings);
	}
	return ctl_usage(x, "unknown record command \"%s\" (start, stop or list)", sub);
}

static int show_forwards(const ctx *x, const json_t *r)
{
	size_t i;
	json_t *e;
	table t;
	if (!json_is_array(r))
		return bad_reply(x, "forwards is not an array");
	table_init(&t, "ROOM URL SSRC FRAMES> DROPPED> STARTED ERROR");
	json_array_foreach(r, i, e)
		table_add(&t, jf_str(e, "room"), jf_str(e, "url"), jf_str(e, "ssrc"),
			jf_count(e, "frames"), jf_count(e, "dropped"), jf_time(e, "started_at", 0),
			jf_str(e, "error"));
	table_print(&t, stdout);
	table_free(&t);
	return CTL_OK;
}

static int show_forward_start(const ctx *x, const json_t *r)
{
	if (!json_is_object(r))
		return bad_reply(x, "not an object");
	json_t *ssrc = json_object_get(r, "ssrc");
	if (json_is_integer(ssrc))
		printf("forwarding %s (ssrc %s) to %s\n", jf_str(r, "room"), jf_str(r, "ssrc"),
			jf_str(r, "url"));
	else
		printf("forwarding %s to %s\n", jf_str(r, "room"), jf_str(r, "url"));
	printf("receive it with the SDP of: audiogwctl forward sdp %s %s\n", jf_str(r, "room"),
		jf_str(r, "url"));
	return CTL_OK;
}

static int show_forward_stop(const ctx *x, const json_t *r)
{
	json_t *stopped = json_object_get(r, "stopped");
	if (!json_is_array(stopped))
		return bad_reply(x, "no stopped list");
	size_t n = json_array_size(stopped);
	printf("stopped %zu forward%s of %s\n", n, n == 1 ? "" : "s", jf_str(r, "room"));
	return show_forwards(x, stopped);
}

static int show_sdp(const ctx *x, const json_t *r)
{
	const char *sdp = json_string_value(json_object_get(r, "sdp"));
	if (!sdp)
		return bad_reply(x, "no sdp");
	fputs(sdp, stdout);
	return CTL_OK;
}

int cmd_forward(ctx *x, const cmd_args *a)
{
	const char *sub = a->pos[0], *ssrc = arg_opt(a, "ssrc");
	char err[160];
	int64_t n = 0;
	if (!strcmp(sub, "start")) {
		if (a->npos != 3)
			return ctl_usage(x, "forward start needs a ROOM and a udp://HOST:PORT");
		if (ssrc && cfg_parse_int(ssrc, 1, 4294967295LL, &n, err, sizeof err) != 0)
			return ctl_usage(x, "bad --ssrc \"%s\": %s", ssrc, err);
		json_t *req = sub_request("forward-start", a->pos[1]);
		set_str(req, "url", a->pos[2]);
		if (ssrc)
			json_object_set_new(req, "ssrc", json_integer(n));
		return call_and_print(x, req, show_forward_start);
	}
	if (ssrc)
		return ctl_usage(x, "--ssrc goes with forward start");
	if (!strcmp(sub, "stop") || !strcmp(sub, "sdp")) {
		if (a->npos < 2)
			return ctl_usage(x, "forward %s needs a ROOM", sub);
		json_t *req = sub_request(sub[1] == 't' ? "forward-stop" : "forward-sdp", a->pos[1]);
		set_str(req, "url", a->npos == 3 ? a->pos[2] : NULL);
		return call_and_print(x, req, sub[1] == 't' ? show_forward_stop : show_sdp);
	}
	if (!strcmp(sub, "list")) {
		if (a->npos != 1)
			return ctl_usage(x, "forward list takes no arguments");
		return call_and_print(x, sub_request("forwards", NULL), show_forwards);
	}
	return ctl_usage(x, "unknown forward command \"%s\" (start, stop, list or sdp)", sub);
}
