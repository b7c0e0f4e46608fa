/* conn.c: audiogwctl's connection to the daemon: the control socket URL
 * (-s, or admin.control_socket of the config), an NNG req0 socket dialled
 * synchronously (a missing socket fails at once), and one JSON request and
 * reply per call, each within CTL_TIMEOUT_MS. Requests are blocking
 * nng_send/nng_recv, or, once a waiter is set (top, which must stay
 * responsive to q and signals), aios whose completion writes to a pipe the
 * waiter polls together with its own events. */
#include "tools/audiogwctl/ctl.h"
#include "common/config.h"

#include <nng/protocol/reqrep0/req.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ctl_url_from_arg(const char *arg, char *out, size_t outlen)
{
	if (strstr(arg, "://"))
		snprintf(out, outlen, "%s", arg);
	else
		snprintf(out, outlen, "ipc://%s", arg);
}

int ctl_load_config(const ctx *x, cfg *c)
{
	static cfg_errors errs;   /* large: not on the stack */

	cfg_defaults(c);
	int n = cfg_load_file(c, x->config_file, &errs);
	if (n == 0)
		return CTL_OK;
	int token = x->cmd && strcmp(x->cmd, "token") == 0;
	fprintf(stderr, "audiogwctl: %s%s: the config has %d error%s%s\n",
		token ? "token: " : "", x->config_file, n, n == 1 ? "" : "s",
		token ? " (token needs -c CONFIG with [auth] hs256_secret_file)" :
		x->socket_arg ? "" : " (use -s SOCKET to reach the daemon without it)");
	for (int i = 0; i < n && i < CFG_MAX_ERRORS; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	if (n > CFG_MAX_ERRORS)
		fprintf(stderr, "... and %d more\n", n - CFG_MAX_ERRORS);
	return CTL_USAGE;
}

static int resolve_url(ctx *x)
{
	if (x->socket_arg) {
		ctl_url_from_arg(x->socket_arg, x->conn.url, sizeof x->conn.url);
		return CTL_OK;
	}
	static cfg c;             /* large: not on the stack */
	int rc = ctl_load_config(x, &c);
	if (rc != CTL_OK)
		return rc;
	ctl_url_from_arg(c.control_socket, x->conn.url, sizeof x->conn.url);
	return CTL_OK;
}

int ctl_connect(ctx *x)
{
	int rv, rc;

	if (x->conn.open)
		return CTL_OK;
	if ((rc = resolve_url(x)) != CTL_OK)
		return rc;
	if ((rv = nng_req0_open(&x->conn.sock)) != 0)
		return ctl_fail(x, CTL_FAIL, "cannot open an NNG socket: %s", nng_strerror(rv));
	x->conn.open = 1;
	if ((rv = nng_socket_set_ms(x->conn.sock, NNG_OPT_RECVTIMEO, CTL_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(x->conn.sock, NNG_OPT_SENDTIMEO, CTL_TIMEOUT_MS)) != 0)
		return ctl_fail(x, CTL_FAIL, "cannot set the NNG timeouts: %s", nng_strerror(rv));
	if ((rv = nng_dial(x->conn.sock, x->conn.url, NULL, 0)) == 0)
		return CTL_OK;
	if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP) {
		fprintf(stderr, "audiogwctl: bad control socket URL \"%s\": %s\n"
			"it must be an NNG URL such as ipc:///run/audiogwd/ctl.ipc "
			"or tcp://127.0.0.1:9091, or a path\n", x->conn.url, nng_strerror(rv));
		return CTL_USAGE;
	}
	fprintf(stderr, "audiogwctl: cannot reach audiogwd at %s: %s\n"
		"is audiogwd running? (control socket %s%s)\n", x->conn.url, nng_strerror(rv),
		x->socket_arg ? "given with -s" : "admin.control_socket in ",
		x->socket_arg ? "" : x->config_file);
	return CTL_UNREACHABLE;
}

void ctl_close(ctx *x)
{
	if (x->conn.open) {
		nng_close(x->conn.sock);
		x->conn.open = 0;
	}
	if (x->conn.waiter) {
		close(x->conn.pipe[0]);
		close(x->conn.pipe[1]);
		x->conn.waiter = NULL;
	}
}

int ctl_set_waiter(ctx *x, ctl_waiter fn, void *arg)
{
	if (pipe2(x->conn.pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return ctl_fail(x, CTL_FAIL, "pipe: %s", strerror(errno));
	x->conn.waiter = fn;
	x->conn.waiter_arg = arg;
	return CTL_OK;
}

/* ---- asynchronous requests, for a waiter ---- */

static void aio_done(void *arg)
{
	ctl_conn *c = arg;
	char b = 1;
	ssize_t n = write(c->pipe[1], &b, 1);
	(void)n;
}

/* Waits for aio through the waiter; its result, or NNG_ECANCELED. */
static int wait_aio(ctl_conn *c, nng_aio *aio)
{
	char b;
	int gave_up = c->waiter(c->waiter_arg, c->pipe[0]);

	if (gave_up)
		nng_aio_cancel(aio);
	nng_aio_wait(aio);
	while (read(c->pipe[0], &b, 1) == 1)
		;
	return gave_up ? NNG_ECANCELED : nng_aio_result(aio);
}

static int exchange_async(ctl_conn *c, const char *buf, size_t len, nng_msg **reply)
{
	nng_aio *aio = NULL;
	nng_msg *m = NULL;
	int rv = nng_aio_alloc(&aio, aio_done, c);

	if (rv == 0)
		rv = nng_msg_alloc(&m, 0);
	if (rv == 0)
		rv = nng_msg_append(m, buf, len);
	if (rv == 0) {
		nng_aio_set_msg(aio, m);
		nng_aio_set_timeout(aio, CTL_TIMEOUT_MS);
		nng_send_aio(c->sock, aio);
		m = NULL;
		if ((rv = wait_aio(c, aio)) != 0)
			m = nng_aio_get_msg(aio);   /* not sent: still ours */
	}
	if (rv == 0) {
		nng_aio_set_timeout(aio, CTL_TIMEOUT_MS);
		nng_recv_aio(c->sock, aio);
		if ((rv = wait_aio(c, aio)) == 0)
			*reply = nng_aio_get_msg(aio);
	}
	if (m)
		nng_msg_free(m);
	if (aio)
		nng_aio_free(aio);
	return rv;
}


/* Checks the reply envelope. On success *result is a new reference. */
static int unwrap_reply(json_t *reply, json_t **result, char *err, size_t errlen)
{
	json_t *ok = json_object_get(reply, "ok");

	if (!json_is_object(reply) || !json_is_boolean(ok)) {
		snprintf(err, errlen, "bad reply from audiogwd: not {\"ok\":...}");
		return CTL_FAIL;
	}
	if (!json_is_true(ok)) {
		const char *e = json_string_value(json_object_get(reply, "error"));
		snprintf(err, errlen, "%s", e && e[0] ? e : "failed (no error message)");
		return CTL_FAIL;
	}
	json_t *r = json_object_get(reply, "result");
	if (r) {
		*result = json_incref(r);
	} else {
		/* {"ok":true,"connections":N} style: the reply is the result. */
		*result = json_deep_copy(reply);
		json_object_del(*result, "ok");
	}
	return CTL_OK;
}

static int transact(ctx *x, const char *buf, size_t len, json_t **reply, char *err, size_t errlen)
{
	ctl_conn *c = &x->conn;
	char *rbuf = NULL;
	size_t rlen = 0;
	nng_msg *msg = NULL;
	int rv;

	if (c->waiter) {
		if ((rv = exchange_async(c, buf, len, &msg)) == 0) {
			rbuf = nng_msg_body(msg);
			rlen = nng_msg_len(msg);
		}
	} else if ((rv = nng_send(c->sock, (void *)buf, len, 0)) == 0) {
		rv = nng_recv(c->sock, &rbuf, &rlen, NNG_FLAG_ALLOC);
	}
	if (rv == NNG_ECANCELED) {
		snprintf(err, errlen, "request abandoned");
		return CTL_ABANDONED;
	}
	if (rv == NNG_ETIMEDOUT) {
		snprintf(err, errlen, "no reply from audiogwd at %s within %d s",
			c->url, CTL_TIMEOUT_MS / 1000);
		return CTL_UNREACHABLE;
	}
	if (rv != 0) {
		snprintf(err, errlen, "lost audiogwd at %s: %s", c->url, nng_strerror(rv));
		return CTL_UNREACHABLE;
	}
	json_error_t jerr;
	*reply = json_loadb(rbuf, rlen, 0, &jerr);
	if (msg)
		nng_msg_free(msg);
	else
		nng_free(rbuf, rlen);
	if (!*reply) {
		snprintf(err, errlen, "bad reply from audiogwd: not JSON: %s", jerr.text);
		return CTL_FAIL;
	}
	return CTL_OK;
}

int ctl_call(ctx *x, json_t *req, json_t **result, int quiet, char *err, size_t errlen)
{
	json_t *reply = NULL;
	char *buf = NULL;
	int rc;

	*result = NULL;
	err[0] = '\0';
	if ((rc = ctl_connect(x)) != CTL_OK) {
		json_decref(req);
		snprintf(err, errlen, "cannot reach audiogwd");
		return rc;
	}
	buf = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		rc = CTL_FAIL;
	} else if ((rc = transact(x, buf, strlen(buf), &reply, err, errlen)) == CTL_OK) {
		rc = unwrap_reply(reply, result, err, errlen);
	}
	free(buf);
	json_decref(reply);
	if (rc != CTL_OK && rc != CTL_ABANDONED && !quiet)
		ctl_fail(x, rc, "%s", err);
	return rc;
}

int ctl_request(ctx *x, json_t *req, json_t **result)
{
	char err[1024];

	if (!req)
		req = json_pack("{s:s}", "cmd", x->cmd);
	return ctl_call(x, req, result, 0, err, sizeof err);
}
