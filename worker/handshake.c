/* handshake.c: everything decided before the upgrade (SPEC 4.1): the path,
 * draining, the host-wide connection cap, and the token (query "token=" or
 * "Authorization: Bearer"). A refusal is a plain HTTP answer with a JSON
 * body {"error":"CODE"}; the token itself is never logged. */
#include "worker/worker.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/resume.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int refuse(worker *w, struct lws *wsi, unsigned status, const char *code, int reason,
                  const char *user)
{
	char body[96];
	snprintf(body, sizeof body, "{\"error\":\"%s\"}", code);
	atomic_fetch_add_explicit(&w->me->c.handshake_rejected[reason], 1, memory_order_relaxed);
	event_handshake(w, status == 401 ? "auth_fail" : "rejected", w->pending_ip, user, code, status);
	server_http_reply(wsi, status, body);
	return 1;
}

/* The token: from the query or the Authorization header. A token too long
 * for buf is reported as longer than TOKEN_MAX_LEN, not as missing. */
static const char *find_token(struct lws *wsi, char *buf, int len, size_t *n)
{
	const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, len);
	if (v) {
		*n = strlen(v);
		return v;
	}
	int h = lws_hdr_copy(wsi, buf, len, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (h > 7 && !strncasecmp(buf, "Bearer ", 7)) {
		*n = (size_t)h - 7;
		return buf + 7;
	}
	*n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) >= len ||
	     lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) >= len ? TOKEN_MAX_LEN + 1 : 0;
	return buf;
}

/* A resume token that is valid for this token's user: its registry index. */
static int find_resume(worker *w, struct lws *wsi, char *buf, int len)
{
	const char *v = lws_get_urlarg_by_name(wsi, "resume=", buf, len);
	if (!v)
		return -1;
	return resume_check(w->shm->resume_key, v, w->pending.sub, w->pending_resume_id,
	                    sizeof w->pending_resume_id);
}

int handshake_check(worker *w, struct lws *wsi)
{
	static char buf[TOKEN_MAX_LEN + 16];
	char uri[256];
	w->pending_ip[0] = '\0';
	lws_get_peer_simple(wsi, w->pending_ip, sizeof w->pending_ip);
	if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, w->cfg.path))
		return refuse(w, wsi, 404, "not_found", REJ_PATH, NULL);
	if (w->stopping || w->draining)
		return refuse(w, wsi, 503, "draining", REJ_DRAINING, NULL);
	if (atomic_load_explicit(&w->shm->host_connections, memory_order_relaxed) >=
	    w->cfg.max_connections)
		return refuse(w, wsi, 503, "server_full", REJ_FULL, NULL);
	if (!tb_take(&w->handshakes, (int64_t)uv_now(&w->loop)))
		return refuse(w, wsi, 429, "rate_limited", REJ_RATE, NULL);
	if (reg_ip_count(w->reg, w->pending_ip) >= w->cfg.max_conns_per_ip)
		return refuse(w, wsi, 429, "too_many_connections", REJ_IP_LIMIT, NULL);
	size_t n;
	const char *token = find_token(wsi, buf, sizeof buf, &n);
	token_status st = token_verify(token, n, &w->keys, (int64_t)time(NULL),
	                               w->cfg.leeway_ms / 1000, &w->pending);
	sodium_memzero(buf, sizeof buf);
	if (st != TOKEN_OK)
		return refuse(w, wsi, 401, token_status_reason(st), REJ_AUTH, NULL);
	if (reg_is_banned(w->reg, w->pending.sub, clock_wall_us()))
		return refuse(w, wsi, 403, "banned", REJ_BANNED, w->pending.sub);
	w->pending_resume = find_resume(w, wsi, buf, sizeof buf);
	w->pending_wsi = wsi;
	return 0;
}
