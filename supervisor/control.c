/* control.c: the control socket (admin.control_socket), an NNG
 * request/reply socket in the supervisor's libevent loop. A request is a
 * JSON object {"cmd": NAME, ...args}; the reply {"ok":true,"result":X} or
 * {"ok":false,"error":"message"}. audiogwctl is its client. */
#include "supervisor/supervisor.h"
#include "common/log.h"

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *control_answer(supervisor *s, const char *body, size_t len)
{
	char err[256] = "";
	int status = 400;
	json_t *result = NULL, *req = json_loadb(body, len, 0, NULL);
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!req || !json_is_object(req))
		snprintf(err, sizeof err, "the request is not a JSON object");
	else if (!cmd)
		snprintf(err, sizeof err, "the request has no \"cmd\"");
	else
		result = command_run(s, cmd, req, &status, err, sizeof err);
	json_t *reply = result ? json_pack("{s:b, s:o}", "ok", 1, "result", result)
	                       : json_pack("{s:b, s:s}", "ok", 0, "error", err);
	char *text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	json_decref(req);
	return text;
}

static void on_control_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	supervisor *s = arg;
	for (int i = 0; i < 64; i++) {
		char *body;
		size_t len;
		if (nng_recv(s->control, &body, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) != 0)
			return;
		char *reply = control_answer(s, body, len);
		nng_free(body, len);
		if (reply) {
			nng_send(s->control, reply, strlen(reply), NNG_FLAG_NONBLOCK);
			free(reply);
		}
	}
}

int control_open(supervisor *s)
{
	const char *url = s->cfg.control_socket;
	int rv, fd;
	if (!strncmp(url, "ipc://", 6))
		unlink(url + 6);  /* a socket file left by a crash; the pid file lock says we are alone */
	if ((rv = nng_rep0_open(&s->control)) || (rv = nng_listen(s->control, url, NULL, 0)) ||
	    (rv = nng_socket_get_int(s->control, NNG_OPT_RECVFD, &fd))) {
		log_error("startup", "cannot open the control socket %s: %s", url, nng_strerror(rv));
		return -1;
	}
	s->control_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_control_readable, s);
	return event_add(s->control_ev, NULL);
}
