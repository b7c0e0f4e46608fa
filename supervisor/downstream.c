/* downstream.c (supervisor): its side of the downstream process
 * (`audiogwd --downstream`, see downstream/downstream.h): recording, RTP
 * forward and the tap. The supervisor starts it like the journal (fork +
 * exec, fd 3 = shared area, fd 4 = validated config, restarted with
 * backoff when it dies: its recordings and forwards are restored from its
 * state file), relays the operator commands to it over an NNG req socket
 * dialled to ipc://RUN_DIR/downstream.ipc (synchronously, at most
 * DS_CALL_TIMEOUT_MS), audits what they did (record_start, record_stop,
 * forward_start, forward_stop), passes it the new config on a reload, and
 * stops it at shutdown once the workers are gone, before the journal. */
#include "supervisor/supervisor.h"
#include "common/audit.h"
#include "common/cidr.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DS_FD_SHM 3
#define DS_FD_CONFIG 4
#define DS_CALL_TIMEOUT_MS 2000
#define DS_CONNECT_WAIT_MS 1000     /* a just started process: its socket is coming up */
#define DS_BACKOFF_MAX_MS 10000
#define DS_QUICK_DEATH_MS 5000

static struct {
	pid_t pid;
	int64_t started_ms;
	int crashes;
	int started_once;          /* later starts restore the saved state */
	int stop_sent;
	uint64_t restarts;
	struct event *timer;
	nng_socket req;
	int req_open;
	_Atomic int pipes;
} ds;

/* ---- the process ---- */

static void exec_child(const supervisor *s, char *const argv[], pid_t parent)
{
	const int fds[] = { s->shm_fd, s->cfg_fd };   /* at DS_FD_SHM, DS_FD_CONFIG */
	sup_exec_child(s, argv, parent, fds, 2, DS_FD_SHM);
}

void sup_downstream_start(supervisor *s)
{
	char *const argv[] = { s->exe, "--downstream", "-c", (char *)s->cfg.file,
	                       ds.started_once ? "--restore" : NULL, NULL };
	pid_t parent = getpid(), pid = fork();
	if (pid < 0) {
		log_error("downstream", "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		exec_child(s, argv, parent);
	ds.pid = pid;
	ds.started_ms = clock_mono_ms();
	ds.started_once = 1;
	log_info("downstream_start", "pid %d", (int)pid);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	supervisor *s = arg;
	if (!s->stopping && ds.pid <= 0)
		sup_downstream_start(s);
}

int sup_downstream_reaped(supervisor *s, pid_t pid, int status)
{
	if (pid <= 0 || pid != ds.pid)
		return 0;
	ds.pid = 0;
	if (s->stopping) {
		log_info("downstream_exit", "stopped%s",
		         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "" : " (not cleanly)");
		return 1;
	}
	int64_t lived = clock_mono_ms() - ds.started_ms;
	ds.crashes = lived < DS_QUICK_DEATH_MS ? ds.crashes + 1 : 1;
	int64_t delay = ds.crashes <= 1 ? 0 : 100LL << (ds.crashes > 8 ? 7 : ds.crashes - 2);
	if (delay > DS_BACKOFF_MAX_MS)
		delay = DS_BACKOFF_MAX_MS;
	ds.restarts++;
	log_warn("downstream_exit", "the downstream process died (%s %d): restart in %lld ms; "
	         "its recordings and forwards resume then (recordings in new files)",
	         WIFSIGNALED(status) ? "signal" : "status",
	         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), (long long)delay);
	if (!ds.timer)
		ds.timer = evtimer_new(s->base, on_restart, s);
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	evtimer_add(ds.timer, &tv);
	return 1;
}

uint64_t sup_downstream_restarts(void)
{
	return ds.restarts;
}

/* ---- the command socket ---- */

static void on_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev, (void)arg;
	atomic_fetch_add(&ds.pipes, 1);
}

static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev, (void)arg;
	atomic_fetch_sub(&ds.pipes, 1);
}

int sup_downstream_open(supervisor *s)
{
	char url[CFG_PATH_MAX + 32];
	int rv;
	snprintf(url, sizeof url, "ipc://%s/downstream.ipc", s->cfg.run_dir);
	if ((rv = nng_req0_open(&ds.req)) ||
	    (rv = nng_socket_set_ms(ds.req, NNG_OPT_SENDTIMEO, DS_CALL_TIMEOUT_MS)) ||
	    (rv = nng_socket_set_ms(ds.req, NNG_OPT_RECVTIMEO, DS_CALL_TIMEOUT_MS)) ||
	    (rv = nng_socket_set_ms(ds.req, NNG_OPT_RECONNMINT, 20)) ||
	    (rv = nng_socket_set_ms(ds.req, NNG_OPT_RECONNMAXT, 500)) ||
	    (rv = nng_pipe_notify(ds.req, NNG_PIPE_EV_ADD_POST, on_pipe_added, NULL)) ||
	    (rv = nng_pipe_notify(ds.req, NNG_PIPE_EV_REM_POST, on_pipe_removed, NULL)) ||
	    (rv = nng_dial(ds.req, url, NULL, NNG_FLAG_NONBLOCK))) {
		log_error("startup", "cannot dial the downstream process at %s: %s", url, nng_strerror(rv));
		return -1;
	}
	ds.req_open = 1;
	return 0;
}

/* One request to the downstream process: its result, or NULL with
 * *status and err (503 not there, 504 no answer, or its own failure). */
static json_t *call(supervisor *s, const char *name, json_t *args, int *status, char *err,
                    size_t errlen)
{
	(void)s;
	if (!ds.req_open || ds.pid <= 0) {
		*status = 503;
		snprintf(err, errlen, "the downstream process is not running%s",
		         ds.req_open ? " (it is being restarted): try again" : "");
		return NULL;
	}
	int64_t until = clock_mono_ms() + DS_CONNECT_WAIT_MS;
	while (atomic_load(&ds.pipes) <= 0 && clock_mono_ms() < until)
		usleep(5000);
	if (atomic_load(&ds.pipes) <= 0) {
		*status = 503;
		snprintf(err, errlen, "the downstream process does not answer on its socket: try again");
		return NULL;
	}
	json_t *req = args ? json_deep_copy(args) : json_object();
	json_object_set_new(req, "cmd", json_string(name));
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	char *body = NULL;
	size_t len = 0;
	int rv = text ? nng_send(ds.req, text, strlen(text), 0) : NNG_ENOMEM;
	free(text);
	if (rv == 0)
		rv = nng_recv(ds.req, &body, &len, NNG_FLAG_ALLOC);
	if (rv != 0) {
		*status = rv == NNG_ETIMEDOUT ? 504 : 503;
		snprintf(err, errlen, "the downstream process did not answer: %s", nng_strerror(rv));
		return NULL;
	}
	json_t *reply = json_loadb(body, len, 0, NULL);
	nng_free(body, len);
	json_t *result = json_object_get(reply, "result");
	if (json_is_true(json_object_get(reply, "ok")) && result) {
		json_incref(result);
		json_decref(reply);
		return result;
	}
	const char *msg = json_string_value(json_object_get(reply, "error"));
	json_int_t st = json_integer_value(json_object_get(reply, "status"));
	*status = st >= 400 && st < 600 ? (int)st : 500;
	snprintf(err, errlen, "%s", msg ? msg : "bad answer from the downstream process");
	json_decref(reply);
	return NULL;
}

/* ---- audit ---- */

static void audit(supervisor *s, const char *event, const char *room, const char *reason,
                  json_t *detail)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	json_decref(detail);
	if (s->audit) {
		audit_emit(s->audit, &(audit_event){ .event = event, .worker = -1, .room = room,
		                                     .reason = reason, .detail = text });
		audit_flush(s->audit, 0);
	}
	log_msg(LOG_INFO, event, &(log_fields){ .room = room, .reason = reason, .latency_ms = -1 },
	        "%s", text ? text : "");
	free(text);
}

static void audit_record_stop(supervisor *s, json_t *rec, const char *reason)
{
	json_t *files = json_array(), *f;
	size_t i;
	json_array_foreach(json_object_get(rec, "files"), i, f)
		json_array_append(files, json_object_get(f, "file"));
	audit(s, "record_stop", json_string_value(json_object_get(rec, "room")), reason,
	      json_pack("{s:O?, s:O?, s:O?, s:o}", "dir", json_object_get(rec, "dir"),
	                "frames", json_object_get(rec, "frames"),
	                "dropped", json_object_get(rec, "dropped"), "files", files));
}

static void audit_forward_stop(supervisor *s, json_t *fwd, const char *reason)
{
	audit(s, "forward_stop", json_string_value(json_object_get(fwd, "room")), reason,
	      json_pack("{s:O?, s:O?, s:O?, s:O?}", "url", json_object_get(fwd, "url"),
	                "ssrc", json_object_get(fwd, "ssrc"), "frames", json_object_get(fwd, "frames"),
	                "dropped", json_object_get(fwd, "dropped")));
}

/* ---- commands ---- */

/* The destination check, here too: refused even with the downstream
 * process away, and never handed to it. */
static int check_destination(supervisor *s, json_t *args, int *status, char *err, size_t errlen)
{
	static cidr_list allow;
	struct sockaddr_storage ss;
	socklen_t len;
	const char *url = json_string_value(json_object_get(args, "url"));
	if (!url) {
		*status = 400;
		snprintf(err, errlen, "url: a destination udp://HOST:PORT is required");
		return -1;
	}
	if (cidr_parse_udp_url(url, &ss, &len, err, errlen) < 0) {
		*status = 400;
		return -1;
	}
	if (cidr_parse_list(s->cfg.downstream_allow, &allow, err, errlen) < 0 ||
	    !cidr_match(&allow, (struct sockaddr *)&ss)) {
		char canon[CIDR_URL_MAX];
		cidr_format((struct sockaddr *)&ss, 1, canon, sizeof canon);
		*status = 403;
		snprintf(err, errlen, "destination %s is not allowed: it is outside [downstream] allow (%.200s)",
		         canon, s->cfg.downstream_allow[0] ? s->cfg.downstream_allow : "empty: nothing is");
		return -1;
	}
	return 0;
}

json_t *sup_downstream_command(supervisor *s, const char *name, json_t *args, int *status,
                               char *err, size_t errlen)
{
	int forward_start = !strcmp(name, "forward-start");
	if (forward_start && check_destination(s, args, status, err, errlen) < 0)
		return NULL;
	json_t *r = call(s, name, args, status, err, errlen);
	if (!r)
		return NULL;
	const char *room = json_string_value(json_object_get(args, "room"));
	if (!strcmp(name, "record-start")) {
		audit(s, "record_start", room, NULL,
		      json_pack("{s:O?}", "dir", json_object_get(r, "dir")));
	} else if (!strcmp(name, "record-stop")) {
		audit_record_stop(s, r, "operator");
	} else if (forward_start) {
		audit(s, "forward_start", room, NULL,
		      json_pack("{s:O?, s:O?}", "url", json_object_get(r, "url"),
		                "ssrc", json_object_get(r, "ssrc")));
	} else if (!strcmp(name, "forward-stop")) {
		size_t i;
		json_t *f;
		json_array_foreach(json_object_get(r, "stopped"), i, f)
			audit_forward_stop(s, f, "operator");
	}
	return r;
}

/* A reload: the new config (allowlist, tap, record_dir). */
void sup_downstream_reload(supervisor *s)
{
	int status;
	char err[300];
	json_t *args = json_pack("{s:s%}", "config", s->cfg_text, s->cfg_len);
	json_t *r = call(s, "reconfigure", args, &status, err, sizeof err);
	json_decref(args);
	if (!r) {
		if (ds.pid > 0)
			log_warn("reload", "the downstream process keeps its config: %s", err);
		return;   /* not running: it starts with the new config */
	}
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(r, "stopped"), i, f)
		audit_forward_stop(s, f, "not_allowed");
	json_decref(r);
}

/* Shutdown, once the workers are gone: what it was doing is audited, it
 * finishes its files and exits. 1 while it is still running. */
int sup_downstream_stop(supervisor *s)
{
	if (ds.timer)
		evtimer_del(ds.timer);
	if (ds.pid <= 0)
		return 0;
	if (!ds.stop_sent) {
		ds.stop_sent = 1;
		int status;
		char err[300];
		json_t *r = call(s, "shutdown", NULL, &status, err, sizeof err);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r, "recordings"), i, e)
			audit_record_stop(s, e, "shutdown");
		json_array_foreach(json_object_get(r, "forwards"), i, e)
			audit_forward_stop(s, e, "shutdown");
		json_decref(r);
		kill(ds.pid, SIGTERM);
	}
	return 1;
}

void sup_downstream_signal(supervisor *s, int sig)
{
	(void)s;
	if (ds.pid > 0)
		kill(ds.pid, sig);
}

void sup_downstream_close(supervisor *s)
{
	(void)s;
	if (ds.timer)
		event_free(ds.timer);
	ds.timer = NULL;
	if (ds.req_open)
		nng_close(ds.req);
	ds.req_open = 0;
}
