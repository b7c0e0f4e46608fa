/* bus.c: encoding and decoding of bus messages (see bus.h). */
#include "proto/bus.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

size_t bus_encode(uint8_t *out, size_t cap, const char *room, const bus_msg *m)
{
	size_t rlen = strlen(room) + 1;
	size_t total = rlen + BUS_HEADER_LEN + m->payload_len;
	if (total > cap)
		return 0;
	memcpy(out, room, rlen);
	uint8_t *h = out + rlen;
	h[0] = m->type;
	h[1] = m->event;
	put16(h + 2, m->origin);
	put32(h + 4, m->ssrc);
	put32(h + 8, (uint32_t)((uint64_t)m->recv_us >> 32));
	put32(h + 12, (uint32_t)m->recv_us);
	if (m->payload_len)
		memcpy(h + BUS_HEADER_LEN, m->payload, m->payload_len);
	return total;
}

int bus_decode(const uint8_t *p, size_t len, bus_msg *m)
{
	const uint8_t *nul = memchr(p, '\0', len);
	if (!nul)
		return -1;
	size_t rlen = (size_t)(nul - p) + 1;
	if (len < rlen + BUS_HEADER_LEN)
		return -1;
	const uint8_t *h = p + rlen;
	m->room = (const char *)p;
	m->type = h[0];
	m->event = h[1];
	m->origin = get16(h + 2);
	m->ssrc = get32(h + 4);
	m->recv_us = (int64_t)((uint64_t)get32(h + 8) << 32 | get32(h + 12));
	m->payload = h + BUS_HEADER_LEN;
	m->payload_len = len - rlen - BUS_HEADER_LEN;
	if (m->type == BUS_MEMBER && (m->event < BUS_JOINED || m->event > BUS_UNMUTED))
		return -1;
	return m->type >= BUS_FRAME && m->type <= BUS_BATCH ? 0 : -1;
}

const char *bus_event_name(uint8_t event)
{
	static const char *const names[] = { "?", "joined", "left", "muted", "unmuted" };
	return event <= BUS_UNMUTED ? names[event] : "?";
}

int bus_batch_append(uint8_t *batch, size_t cap, size_t *len, const char *room, const bus_msg *m)
{
	size_t room_left = cap - *len;
	size_t n = room_left > 2 ? bus_encode(batch + *len + 2, room_left - 2, room, m) : 0;
	if (!n || n > 0xffff)
		return -1;
	put16(batch + *len, (uint16_t)n);
	*len += 2 + n;
	return 0;
}

int bus_batch_next(const bus_msg *batch, size_t *off, const uint8_t **inner, size_t *inner_len)
{
	if (*off == batch->payload_len)
		return 1;
	if (batch->payload_len - *off < 2)
		return -1;
	size_t n = get16(batch->payload + *off);
	if (n == 0 || batch->payload_len - *off - 2 < n)
		return -1;
	*inner = batch->payload + *off + 2;
	*inner_len = n;
	*off += 2 + n;
	return 0;
}
