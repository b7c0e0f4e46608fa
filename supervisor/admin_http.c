/* admin_http.c: the admin HTTP API (SPEC 6.2) on libevent's evhttp at
 * admin.listen: routes to the command layer (command.c), Bearer key check
 * in constant time, JSON in and out, /healthz, /readyz and /metrics. */
#include "supervisor/supervisor.h"
#include "common/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY 65536

static void reply_text(struct evhttp_request *req, int status, const char *type, const char *body)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	reply_text(req, status, "application/json", text ? text : "{}");
	free(text);
}

static void reply_error(struct evhttp_request *req, int status, const char *msg)
{
	reply_json(req, status, json_pack("{s:s}", "error", msg));
}

static int authorized(supervisor *s, struct evhttp_request *req)
{
	if (!s->cfg.api_key[0])
		return 1;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7))
		return 0;
	size_t n = strlen(h + 7), k = strlen(s->cfg.api_key);
	return n == k && sodium_memcmp(h + 7, s->cfg.api_key, k) == 0;
}

/* The request body as a JSON object (empty body = {}); NULL on bad JSON. */
static json_t *body_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return json_object();
	if (len > MAX_BODY)
		return NULL;
	json_t *j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static void query_into(struct evhttp_request *req, json_t *args)
{
	struct evkeyvalq q;
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (!query || evhttp_parse_query_str(query, &q) < 0)
		return;
	for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
		if (!strcmp(kv->key, "limit"))
			json_object_set_new(args, "limit", json_integer(atoi(kv->value)));
		else if (!strcmp(kv->key, "since")) {
			int64_t ms;
			char err[128];
			if (cfg_parse_duration(kv->value, &ms, err, sizeof err) == 0)
				json_object_set_new(args, "since_ms", json_integer(ms));
			else
				json_object_set_new(args, "since_ms", json_integer(-1));
		} else
			json_object_set_new(args, kv->key, json_string(kv->value));
	}
	evhttp_clear_headers(&q);
}

static void run(supervisor *s, struct evhttp_request *req, const char *cmd, json_t *args)
{
	char err[256];
	int status;
	json_t *r = command_run(s, cmd, args, &status, err, sizeof err);
	json_decref(args);
	if (!r)
		reply_error(req, status, err);
	else if (json_is_string(r) && !strcmp(cmd, "metrics")) {
		reply_text(req, 200, "text/plain; version=0.0.4", json_string_value(r));
		json_decref(r);
	} else if (!strcmp(cmd, "forward-sdp") && json_string_value(json_object_get(r, "sdp"))) {
		reply_text(req, 200, "application/sdp", json_string_value(json_object_get(r, "sdp")));
		json_decref(r);
	} else
		reply_json(req, 200, r);
}

#define MAX_PARTS 5

/* A path "/v1/users/{user}/kick" into its parts, each percent-decoded after
 * the split (so "%2F" inside a user id stays in its part). */
static int split_path(const char *path, char parts[MAX_PARTS][256])
{
	int n = 0;
	char raw[2048];
	snprintf(raw, sizeof raw, "%s", path);
	for (char *p = raw, *tok; (tok = strsep(&p, "/"));) {
		if (!*tok)
			continue;
		char *decoded = evhttp_uridecode(tok, 0, NULL);
		if (!decoded || n == MAX_PARTS) {
			free(decoded);
			return -1;
		}
		snprintf(parts[n++], 256, "%s", decoded);
		free(decoded);
	}
	return n;
}

typedef struct route {
	int method;                /* EVHTTP_REQ_GET, _POST or _DELETE */
	const char *pattern[MAX_PARTS]; /* "*" = a parameter */
	const char *cmd, *param;   /* the command and the argument name of the parameter */
} route;

static const route routes[] = {
	{ EVHTTP_REQ_GET, { "v1", "status" }, "status", NULL },
	{ EVHTTP_REQ_GET, { "v1", "workers" }, "workers", NULL },
	{ EVHTTP_REQ_GET, { "v1", "rooms" }, "rooms", NULL },
	{ EVHTTP_REQ_GET, { "v1", "rooms", "*" }, "room", "room" },
	{ EVHTTP_REQ_GET, { "v1", "sessions" }, "sessions", NULL },
	{ EVHTTP_REQ_POST, { "v1", "users", "*", "kick" }, "kick", "user" },
	{ EVHTTP_REQ_POST, { "v1", "sessions", "*", "kick" }, "kick-session", "session" },
	{ EVHTTP_REQ_POST, { "v1", "users", "*", "mute" }, "mute", "user" },
	{ EVHTTP_REQ_POST, { "v1", "users", "*", "unmute" }, "unmute", "user" },
	{ EVHTTP_REQ_POST, { "v1", "rooms", "*", "broadcast" }, "broadcast", "room" },
	{ EVHTTP_REQ_POST, { "v1", "users", "*", "message" }, "send", "user" },
	{ EVHTTP_REQ_POST, { "v1", "reload" }, "reload", NULL },
	{ EVHTTP_REQ_POST, { "v1", "drain" }, "drain", NULL },
	{ EVHTTP_REQ_GET, { "v1", "audit" }, "audit", NULL },
	{ EVHTTP_REQ_GET, { "metrics" }, "metrics", NULL },
	/* downstream: recording and RTP forward (audiogwd-downstream(7)) */
	{ EVHTTP_REQ_POST, { "v1", "rooms", "*", "record" }, "record-start", "room" },
	{ EVHTTP_REQ_DELETE, { "v1", "rooms", "*", "record" }, "record-stop", "room" },
	{ EVHTTP_REQ_POST, { "v1", "rooms", "*", "record", "stop" }, "record-stop", "room" },
	{ EVHTTP_REQ_GET, { "v1", "recordings" }, "recordings", NULL },
	{ EVHTTP_REQ_POST, { "v1", "rooms", "*", "forward" }, "forward-start", "room" },
	{ EVHTTP_REQ_DELETE, { "v1", "rooms", "*", "forward" }, "forward-stop", "room" },
	{ EVHTTP_REQ_POST, { "v1", "rooms", "*", "forward", "stop" }, "forward-stop", "room" },
	{ EVHTTP_REQ_GET, { "v1", "forwards" }, "forwards", NULL },
	{ EVHTTP_REQ_GET, { "v1", "rooms", "*", "sdp" }, "forward-sdp", "room" },
};

static int route_matches(const route *r, char parts[MAX_PARTS][256], int n, const char **param)
{
	int len = 0;
	while (len < MAX_PARTS && r->pattern[len])
		len++;
	if (len != n)
		return 0;
	for (int i = 0; i < n; i++) {
		if (!strcmp(r->pattern[i], "*"))
			*param = parts[i];
		else if (strcmp(r->pattern[i], parts[i]))
			return 0;
	}
	return 1;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	supervisor *s = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	int method = evhttp_request_get_command(req);
	char parts[MAX_PARTS][256];
	int n = split_path(path ? path : "/", parts);
	if (n == 1 && (!strcmp(parts[0], "healthz") || !strcmp(parts[0], "readyz"))) {
		int ready = parts[0][0] == 'h' || !s->draining;
		reply_json(req, ready ? 200 : 503, json_pack("{s:s}", "status", ready ? "ok" : "draining"));
		return;
	}
	if (!authorized(s, req)) {
		reply_error(req, 401, "unauthorized");
		return;
	}
	int path_known = 0;
	for (size_t i = 0; n > 0 && i < sizeof routes / sizeof routes[0]; i++) {
		const char *param = NULL;
		if (!route_matches(&routes[i], parts, n, &param))
			continue;
		path_known = 1;
		if (routes[i].method != method)
			continue;
		json_t *args = method == EVHTTP_REQ_GET ? json_object() : body_json(req);
		if (!args) {
			reply_error(req, 400, "the body is not a JSON object");
			return;
		}
		if (method != EVHTTP_REQ_POST)
			query_into(req, args);
		if (param)
			json_object_set_new(args, routes[i].param, json_string(param));
		run(s, req, routes[i].cmd, args);
		return;
	}
	if (path_known)
		reply_error(req, 405, "method not allowed");
	else
		reply_error(req, 404, "not found");
}

int admin_http_open(supervisor *s)
{
	if (!s->cfg.admin_listen[0])
		return 0;
	cfg_addr a;
	char err[256];
	if (cfg_parse_addr(s->cfg.admin_listen, &a, err, sizeof err) < 0)
		return -1;
	s->http = evhttp_new(s->base);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                    EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(s->http, MAX_BODY);
	evhttp_set_gencb(s->http, on_request, s);
	int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a.ss, a.len) < 0 || listen(fd, 128) < 0 ||
	    !evhttp_accept_socket_with_handle(s->http, fd)) {
		log_error("startup", "cannot listen on admin.listen %s: %s", s->cfg.admin_listen,
		          strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}
