/* server.c: the worker's libwebsockets context on the worker's own libuv
 * loop, one vhost that never listens (connections are adopted), and the one
 * protocol callback: plain HTTP gets a JSON error, upgrades are checked by
 * handshake.c, sessions live in session.c. */
#include "worker/worker.h"
#include "common/log.h"

#include <string.h>

#define RX_BUFFER_BYTES 128  /* per-connection lws receive buffer, see server_create */

worker *server_worker(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* A complete HTTP response with a JSON body, written at once (small enough
 * for the socket buffer; lws buffers any remainder). */
int server_http_reply(struct lws *wsi, unsigned status, const char *body)
{
	unsigned char buf[LWS_PRE + 1024];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
	size_t len = strlen(body);
	if (lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if ((size_t)(end - p) < len)
		return -1;
	memcpy(p, body, len);
	return lws_write(wsi, p, len, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 0;
}

/* Plain HTTP (no upgrade): 404 anywhere but the endpoint, 426 on it. */
static int on_http(struct lws *wsi, worker *w)
{
	char uri[256];
	int ours = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 &&
	           !strcmp(uri, w->cfg.path);
	server_http_reply(wsi, ours ? 426 : 404,
	                  ours ? "{\"error\":\"upgrade_required\"}" : "{\"error\":\"not_found\"}");
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	worker *w = server_worker(wsi);
	session *s = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, w);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return handshake_check(w, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		return session_open(w, s, wsi);
	case LWS_CALLBACK_WSI_DESTROY:
		w->pending_http--;  /* every adopted connection ends here */
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return session_on_writeable(w, s);
	case LWS_CALLBACK_RECEIVE:
		return session_on_receive(w, s, in, len);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		session_peer_closed(s, in, len);
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		s->last_rx_ms = (int64_t)uv_now(&w->loop);
		return 0;
	case LWS_CALLBACK_CLOSED:
		session_closed(w, s);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static struct lws_protocols server_protocols[] = {
	{ .name = "audiogw", .callback = on_event, .per_session_data_size = sizeof(session) },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void lws_log_to_ours(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", NULL, "%.*s", (int)n, line);
}

int server_create(worker *w)
{
	struct lws_context_creation_info info;
	void *foreign_loops[1] = { &w->loop };
	memset(&info, 0, sizeof info);
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours);
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	               LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (w->cfg.tls_cert[0])
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = foreign_loops;
	info.pcontext = &w->ctx;
	info.user = w;
	info.max_http_header_data = 8192;  /* the token may be in the URI: up to 4 KiB */
	/* session_sweep() sends the pings and closes 4008 on silence. lws's own
	 * validity timers are off: each is a sul in a list lws keeps sorted by
	 * linear insertion, O(connections) per connection (12% of the worker's
	 * CPU in a 5k-connection ramp). */
	static const lws_retry_bo_t retry = { .secs_since_valid_ping = 0,
	                                      .secs_since_valid_hangup = 0 };
	info.retry_and_idle_policy = &retry;
	w->ctx = lws_create_context(&info);
	if (!w->ctx) {
		log_error("startup", "lws_create_context failed: is the libwebsockets-evlib-uv "
		                     "package installed? (apt-get install libwebsockets-evlib-uv)");
		return -1;
	}
	/* lws gives every connection a receive buffer of this size (allocated
	 * for the connection's life) and reads at most that much + LWS_PRE per
	 * recv(): a message that fits arrives in one read and one callback and
	 * is used in place; a larger one (up to max_frame_bytes) comes in
	 * pieces that session.c gathers in the pooled buffer it is then relayed
	 * in. The size trades idle memory against the cost of a frame: 128
	 * bytes holds a voice frame (RTP payload up to ~110 bytes: Opus 20 ms
	 * up to ~44 kbit/s) and costs ~85 bytes per connection more than 64,
	 * which split every such frame over two reads (bench/RESULTS.md: seed
	 * with two workers 5.6-5.8 instead of 6.1-6.9 us per delivered frame,
	 * 100% delivery instead of 94-100%); max_frame_bytes (1500) would cost
	 * ~1.4 KB per connection. */
	server_protocols[0].rx_buffer_size = (size_t)(w->cfg.max_frame_bytes < RX_BUFFER_BYTES
	                                              ? w->cfg.max_frame_bytes : RX_BUFFER_BYTES);
	/* lws caps one send() at tx_packet_size, or at rx_buffer_size when that
	 * is 0, and buffers the rest as a partial write (measured: a third of
	 * the gathered writes went partial and through POLLOUT). */
	server_protocols[0].tx_packet_size = SEND_GATHER_BYTES + LWS_PRE;
	struct lws_context_creation_info vinfo;
	memset(&vinfo, 0, sizeof vinfo);
	vinfo.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	vinfo.protocols = server_protocols;
	vinfo.vhost_name = "audiogw";
	vinfo.retry_and_idle_policy = info.retry_and_idle_policy;  /* the vhost's is the one used */
	if (w->cfg.tls_cert[0]) {  /* wss:// on every listen address */
		vinfo.ssl_cert_filepath = w->cfg.tls_cert;
		vinfo.ssl_private_key_filepath = w->cfg.tls_key;
		/* a vhost that does not listen gets no TLS context unless asked */
		vinfo.options |= LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	}
	w->vh = lws_create_vhost(w->ctx, &vinfo);
	if (!w->vh) {
		log_error("startup", "lws_create_vhost failed");
		return -1;
	}
	return 0;
}

void server_adopt(worker *w, int fd)
{
	lws_sock_file_fd_type desc = { .sockfd = fd };
	int type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | (w->cfg.tls_cert[0] ? LWS_ADOPT_ALLOW_SSL : 0);
	if (!lws_adopt_descriptor_vhost(w->vh, (lws_adoption_type)type, desc, NULL, NULL))
		log_warn("accept", "lws could not adopt a connection");  /* lws closed fd */
	else
		w->pending_http++;
}

void server_destroy_step(worker *w)
{
	if (w->ctx)
		lws_context_destroy(w->ctx);
}
