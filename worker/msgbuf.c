/* msgbuf.c: see msgbuf.h. */
#include "worker/msgbuf.h"
#include "common/clock.h"

#include <stdlib.h>
#include <string.h>

static struct {
	size_t payload_cap;
	msgbuf *free;
	void (*latency_sink)(int64_t us);
} pool;

void msgbuf_pool_init(size_t max_payload, void (*latency_sink)(int64_t us))
{
	pool.payload_cap = max_payload;
	pool.latency_sink = latency_sink;
}

msgbuf *msgbuf_audio(void)
{
	msgbuf *m = pool.free;
	if (m)
		pool.free = m->next_free;
	else if (!(m = malloc(sizeof *m + LWS_PRE + pool.payload_cap)))
		return NULL;
	m->refs = 1;
	m->len = 0;
	m->kind = MSG_AUDIO;
	m->sampled = 0;
	m->pooled = 1;
	return m;
}

static msgbuf *msgbuf_copy(uint8_t kind, const void *data, size_t len)
{
	msgbuf *m = malloc(sizeof *m + LWS_PRE + len);
	if (!m)
		return NULL;
	m->refs = 1;
	m->len = (uint32_t)len;
	m->kind = kind;
	m->pooled = 0;
	m->sampled = 0;
	m->recv_us = 0;
	memcpy(msgbuf_payload(m), data, len);
	return m;
}

msgbuf *msgbuf_text(const char *text, size_t len) { return msgbuf_copy(MSG_TEXT, text, len); }
msgbuf *msgbuf_ping(const void *payload, size_t len) { return msgbuf_copy(MSG_PING, payload, len); }

void msgbuf_unref(msgbuf *m)
{
	if (--m->refs)
		return;
	if (m->sampled && pool.latency_sink)
		pool.latency_sink(clock_mono_us() - m->recv_us);
	if (m->pooled) {
		m->next_free = pool.free;
		pool.free = m;
	} else {
		free(m);
	}
}
