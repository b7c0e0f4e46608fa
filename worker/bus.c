/* bus.c: room traffic between workers over NNG pub/sub.
 *
 * Every worker publishes on its own PUB socket at ipc://RUN_DIR/bus-N.ipc
 * (N = its entry in the shared area) and its SUB socket dials every other
 * live worker's address, found by scanning the shared area's process table
 * (at start, then every BUS_DISCOVER_MS). An entry that is reused by a
 * restarted worker keeps its address, and NNG redials it by itself. Room
 * traffic travels in one batch per loop turn (proto/bus.h) that every
 * worker receives and filters by its local rooms: no subscription per room
 * (NNG 1.5.2 keeps topics in a list it scans on every subscribe and every
 * message: subscribing per room cost 9% of a worker's CPU in a handshake
 * ramp). Each frame is published once, whatever the number of remote
 * members; local members get it without a bus hop. Pub/sub is best effort:
 * a full queue drops the oldest message.
 *
 * How a worker knows a room's members on other workers (welcome.members):
 * not from the bus but from the host-wide session registry in the shared
 * area (common/registry.h); the bus carries only the live events. */
#include "worker/worker.h"
#include "common/clock.h"
#include "common/ipc.h"
#include "common/log.h"
#include "proto/bus.h"
#include "proto/control.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUS_DISCOVER_MS 100
#define BUS_RECV_BATCH 1024
#define BUS_QUEUE_MSGS 4096
#define BUS_INBOX_MAX 16384
#define BUS_FLUSH_MS 2      /* a batch at most this often: the added latency, at most */

static void bus_address(const worker *w, int index, char *buf, size_t len)
{
	ipc_bus_url(w->cfg.run_dir, index, buf, len);
}

/* The mesh is complete when we hear every live peer and the supervisor, and
 * every live peer hears us. */
int bus_connected(worker *w)
{
	int peers = 0;
	for (int i = 0; i < SHM_MAX_PROCS; i++)
		peers += i != w->shm_index && shm_proc_live(atomic_load(&w->shm->procs[i].state));
	return atomic_load(&w->bus_sub_pipes) >= peers + 1 && atomic_load(&w->bus_pub_pipes) >= peers;
}

static void bus_dial_peers(worker *w)
{
	char url[CFG_PATH_MAX + 32];
	if (!w->bus_dialed_sup) {
		ipc_bus_url(w->cfg.run_dir, -1, url, sizeof url);
		w->bus_dialed_sup = nng_dial(w->bus_sub, url, NULL, NNG_FLAG_NONBLOCK) == 0;
	}
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		if (i == w->shm_index || w->bus_dialed[i] ||
		    !shm_proc_live(atomic_load(&w->shm->procs[i].state)))
			continue;
		bus_address(w, i, url, sizeof url);
		int rv = nng_dial(w->bus_sub, url, NULL, NNG_FLAG_NONBLOCK);
		if (rv != 0)
			log_warn("bus", "cannot dial %s: %s", url, nng_strerror(rv));
		else
			w->bus_dialed[i] = 1;
	}
}

static void on_discover(uv_timer_t *t)
{
	bus_dial_peers(t->loop->data);
}

static void bus_deliver_frame(worker *w, local_room *r, const bus_msg *m)
{
	if (m->payload_len < RTP_HEADER_LEN || m->payload_len > (size_t)w->cfg.max_frame_bytes)
		return;
	msgbuf *f = msgbuf_audio();
	if (!f)
		return;
	memcpy(msgbuf_payload(f), m->payload, m->payload_len);
	f->len = (uint32_t)m->payload_len;
	f->recv_us = m->recv_us;
	f->sampled = (++w->frames_seen & LATENCY_SAMPLE_MASK) == 0;
	room_relay(w, r, f, NULL);
	msgbuf_unref(f);
}

static void bus_deliver_member(worker *w, local_room *r, const bus_msg *m)
{
	char user[REG_NAME_MAX + 1];
	size_t n = m->payload_len < REG_NAME_MAX ? m->payload_len : REG_NAME_MAX;
	memcpy(user, m->payload, n);
	user[n] = '\0';
	char *json = ctl_member_event(bus_event_name(m->event), user, m->ssrc);
	room_send_text(w, r, json, NULL);
	free(json);
}

static void bus_worker_topic(int proc, char *buf, size_t len)
{
	snprintf(buf, len, "%c%d", BUS_WORKER_TOPIC_PREFIX, proc);
}

/* Another worker asks us to close one of our sessions. */
static void bus_on_close(worker *w, const bus_msg *m)
{
	uint32_t index = m->ssrc;
	if (index >= (uint32_t)w->reg->capacity || !w->by_reg[index])
		return;
	const char *id = w->reg->s[index].id;
	if (m->payload_len == strlen(id) && !memcmp(m->payload, id, m->payload_len))
		session_close(w->by_reg[index], (uint16_t)m->recv_us);
}

void bus_close_remote(worker *w, int reg_index, uint16_t code)
{
	char topic[16];
	const reg_session *r = &w->reg->s[reg_index];
	bus_worker_topic(r->proc, topic, sizeof topic);
	bus_publish(w, topic, BUS_CLOSE, 0, (uint32_t)reg_index, code, r->id, strlen(r->id));
}

static void bus_dispatch(worker *w, const uint8_t *p, size_t len)
{
	bus_msg m;
	if (bus_decode(p, len, &m) < 0)
		return;
	if (m.type == BUS_CLOSE) {
		bus_on_close(w, &m);
		return;
	}
	if (m.type == BUS_ADMIN) {
		admin_on_bus(w, m.room, &m);
		return;
	}
	if (m.type == BUS_BATCH) {
		const uint8_t *inner;
		size_t off = 0, n;
		while (bus_batch_next(&m, &off, &inner, &n) == 0)
			if (n > 0 && inner[0] != BUS_BATCH_TOPIC[0])  /* no batches in batches */
				bus_dispatch(w, inner, n);
		return;
	}
	local_room *r = room_find(w, m.room);
	if (!r)
		return;  /* a message that raced our unsubscribe */
	if (m.type == BUS_FRAME)
		bus_deliver_frame(w, r, &m);
	else
		bus_deliver_member(w, r, &m);
}

/* Receiving: an NNG aio re-armed from its own callback (on an NNG thread)
 * hands each message to a bounded inbox and wakes the loop with a uv_async
 * (coalesced). NNG 1.5.2's pollable receive fd was seen to stay readable
 * with nothing to receive, spinning the worker at up to a core. */
static void on_bus_message(void *arg)
{
	worker *w = arg;
	if (nng_aio_result(w->bus_aio) != 0)
		return;  /* stopped (exit) */
	nng_msg *msg = nng_aio_get_msg(w->bus_aio);
	pthread_mutex_lock(&w->bus_lock);
	int kept = w->bus_inbox_n < BUS_INBOX_MAX;
	if (kept)
		w->bus_inbox[(w->bus_inbox_head + w->bus_inbox_n++) % BUS_INBOX_MAX] = msg;
	pthread_mutex_unlock(&w->bus_lock);
	if (!kept)
		nng_msg_free(msg);  /* full: dropped, as a full SUB queue would */
	uv_async_send(&w->bus_async);
	nng_recv_aio(w->bus_sub, w->bus_aio);
}

static void on_bus_wakeup(uv_async_t *h)
{
	worker *w = h->loop->data;
	for (int i = 0; i < BUS_RECV_BATCH; i++) {
		pthread_mutex_lock(&w->bus_lock);
		nng_msg *msg = NULL;
		if (w->bus_inbox_n) {
			msg = w->bus_inbox[w->bus_inbox_head];
			w->bus_inbox_head = (w->bus_inbox_head + 1) % BUS_INBOX_MAX;
			w->bus_inbox_n--;
		}
		pthread_mutex_unlock(&w->bus_lock);
		if (!msg)
			return;
		atomic_fetch_add_explicit(&w->me->c.bus_in_total, 1, memory_order_relaxed);
		bus_dispatch(w, nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
	}
	uv_async_send(&w->bus_async);  /* more than a batch waiting: come back after other work */
}

static void bus_flush(worker *w);
static void on_loop_turn(uv_check_t *h);

static int bus_open_sockets(worker *w)
{
	char url[CFG_PATH_MAX + 32];
	int rv;
	bus_address(w, w->shm_index, url, sizeof url);
	unlink(url + strlen("ipc://"));  /* left by a previous owner of this entry */
	if ((rv = nng_pub0_open(&w->bus_pub)) || (rv = nng_sub0_open(&w->bus_sub)) ||
	    (rv = nng_socket_set_int(w->bus_pub, NNG_OPT_SENDBUF, BUS_QUEUE_MSGS)) ||
	    (rv = nng_socket_set_int(w->bus_sub, NNG_OPT_RECVBUF, BUS_QUEUE_MSGS)) ||
	    (rv = nng_socket_set_ms(w->bus_sub, NNG_OPT_RECONNMINT, 20)) ||
	    (rv = nng_socket_set_ms(w->bus_sub, NNG_OPT_RECONNMAXT, 1000)) ||
	    (rv = ipc_count_pipes(w->bus_sub, &w->bus_sub_pipes)) ||
	    (rv = ipc_count_pipes(w->bus_pub, &w->bus_pub_pipes)) ||
	    (rv = nng_listen(w->bus_pub, url, NULL, 0)) ||
	    (rv = nng_aio_alloc(&w->bus_aio, on_bus_message, w))) {
		log_error("bus", "cannot open the bus at %s: %s", url, nng_strerror(rv));
		return -1;
	}
	return 0;
}

int bus_start(worker *w)
{
	if (bus_open_sockets(w) < 0 || !(w->bus_inbox = calloc(BUS_INBOX_MAX, sizeof(nng_msg *))))
		return -1;
	pthread_mutex_init(&w->bus_lock, NULL);
	char topic[16];
	bus_worker_topic(w->shm_index, topic, sizeof topic);
	nng_socket_set(w->bus_sub, NNG_OPT_SUB_SUBSCRIBE, topic, strlen(topic) + 1);
	nng_socket_set(w->bus_sub, NNG_OPT_SUB_SUBSCRIBE, BUS_ALL_TOPIC, sizeof BUS_ALL_TOPIC);
	nng_socket_set(w->bus_sub, NNG_OPT_SUB_SUBSCRIBE, BUS_BATCH_TOPIC, sizeof BUS_BATCH_TOPIC);
	nng_socket_set(w->bus_sub, NNG_OPT_SUB_SUBSCRIBE, BUS_ROOM_TOPIC_PREFIX,
	               strlen(BUS_ROOM_TOPIC_PREFIX));  /* a prefix: every room's */
	uv_check_init(&w->loop, &w->bus_turn);
	uv_check_start(&w->bus_turn, on_loop_turn);
	uv_timer_init(&w->loop, &w->bus_flush_timer);
	uv_async_init(&w->loop, &w->bus_async, on_bus_wakeup);
	nng_recv_aio(w->bus_sub, w->bus_aio);
	uv_timer_init(&w->loop, &w->bus_discover);
	uv_timer_start(&w->bus_discover, on_discover, 0, BUS_DISCOVER_MS);
	return 0;
}

void bus_stop(worker *w)
{
	bus_flush(w);
	uv_close((uv_handle_t *)&w->bus_turn, NULL);
	uv_close((uv_handle_t *)&w->bus_flush_timer, NULL);
	nng_aio_stop(w->bus_aio);  /* waits for a running callback */
	uv_close((uv_handle_t *)&w->bus_async, NULL);
	uv_close((uv_handle_t *)&w->bus_discover, NULL);
}

static void bus_send_encoded(worker *w, size_t n)
{
	if (n && nng_send(w->bus_pub, w->bus_buf, n, NNG_FLAG_NONBLOCK) == 0)
		atomic_fetch_add_explicit(&w->me->c.bus_out_total, 1, memory_order_relaxed);
}

/* Sends the frames gathered during this turn of the loop as one message. */
static void bus_flush(worker *w)
{
	w->bus_flushed_ms = (int64_t)uv_now(&w->loop);
	if (!w->batch_len)
		return;
	bus_msg m = { .type = BUS_BATCH, .origin = (uint16_t)w->shm_index, .payload = w->batch,
	              .payload_len = w->batch_len };
	bus_send_encoded(w, bus_encode(w->bus_buf, sizeof w->bus_buf, BUS_BATCH_TOPIC, &m));
	w->batch_len = 0;
}

static void on_flush_timer(uv_timer_t *t)
{
	bus_flush(t->loop->data);
}

/* A batch goes at the end of the loop turn, but at most once per
 * BUS_FLUSH_MS: a lightly loaded worker turns its loop thousands of times a
 * second, and each NNG message costs both workers several thread switches
 * (measured at seed 2k: NNG's threads were 40% of a worker's CPU, 27k
 * futex calls a second). Under load turns are longer than that anyway. */
static void on_loop_turn(uv_check_t *h)
{
	worker *w = h->loop->data;
	if (w->batch_len && worker_turn_due(w, &w->bus_flush_timer, on_flush_timer, w->bus_flushed_ms,
	                                    BUS_FLUSH_MS))
		bus_flush(w);
}

/* Room traffic (frames and member events, in order) joins the batch, sent
 * at the end of this loop turn (or now if it is full); messages to one
 * worker or to all (close, admin) go at once, after the batch before them. */
void bus_publish(worker *w, const char *room, uint8_t type, uint8_t event, uint32_t ssrc,
                 int64_t recv_us, const void *payload, size_t len)
{
	bus_msg m = { .type = type, .event = event, .origin = (uint16_t)w->shm_index,
	              .ssrc = ssrc, .recv_us = recv_us, .payload = payload, .payload_len = len };
	if (type != BUS_FRAME && type != BUS_MEMBER) {
		bus_flush(w);
		bus_send_encoded(w, bus_encode(w->bus_buf, sizeof w->bus_buf, room, &m));
		return;
	}
	if (bus_batch_append(w->batch, sizeof w->batch, &w->batch_len, room, &m) == 0)
		return;
	bus_flush(w);  /* full: send what is there, then try once more */
	bus_batch_append(w->batch, sizeof w->batch, &w->batch_len, room, &m);
}

