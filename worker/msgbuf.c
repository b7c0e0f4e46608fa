/* msgbuf.c: see msgbuf.h. */
#include "worker/msgbuf.h"

#include <stdlib.h>
#include <string.h>

static struct {
	size_t payload_cap;
	msgbuf *free;
} pool;

void msgbuf_pool_init(size_t max_payload) { pool.payload_cap = max_payload; }

msgbuf *msgbuf_audio(void)
{
	msgbuf *m = pool.free;
	if (m)
		pool.free = m->next_free;
	else if (!(m = malloc(sizeof *m + LWS_PRE + pool.payload_cap)))
		return NULL;
	m->refs = 1;
	m->len = 0;
	m->text = 0;
	m->pooled = 1;
	return m;
}

msgbuf *msgbuf_text(const char *text, size_t len)
{
	msgbuf *m = malloc(sizeof *m + LWS_PRE + len);
	if (!m)
		return NULL;
	m->refs = 1;
	m->len = (uint32_t)len;
	m->text = 1;
	m->pooled = 0;
	m->recv_us = 0;
	memcpy(msgbuf_payload(m), text, len);
	return m;
}

void msgbuf_unref(msgbuf *m)
{
	if (--m->refs)
		return;
	if (m->pooled) {
		m->next_free = pool.free;
		pool.free = m;
	} else {
		free(m);
	}
}
