/* bus.c (supervisor): the supervisor's own publisher on the workers' bus, at
 * ipc://RUN_DIR/bus-sup.ipc (every worker dials it). It speaks for workers
 * that cannot any more: when one dies, the sessions it held are removed from
 * the registry and the members of their rooms on other workers hear "left". */
#include "supervisor/supervisor.h"
#include "common/clock.h"
#include "common/ipc.h"
#include "common/log.h"
#include "proto/bus.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sup_bus_open(supervisor *s)
{
	char url[CFG_PATH_MAX + 32];
	ipc_bus_url(s->cfg.run_dir, -1, url, sizeof url);
	unlink(url + strlen("ipc://"));
	int rv;
	if ((rv = nng_pub0_open(&s->bus)) || (rv = ipc_listen_shared(s->bus, url))) {
		log_error("bus", "cannot open %s: %s", url, nng_strerror(rv));
		return -1;
	}
	return 0;
}

/* At exit: NNG frees the messages still queued to subscribers (a "left"
 * sent while the dead worker's pipe was going away stayed queued). */
void sup_bus_close(supervisor *s)
{
	if (nng_socket_id(s->bus) > 0)
		nng_close(s->bus);
}

static void sup_bus_send(supervisor *s, const char *topic, const bus_msg *m)
{
	static uint8_t buf[16384];
	size_t n = bus_encode(buf, sizeof buf, topic, m);
	if (n)
		nng_send(s->bus, buf, n, NNG_FLAG_NONBLOCK);
}

/* Room traffic travels in batches (the topic every worker takes and filters
 * by room, see worker/bus.c): a batch of one record. */
static void publish_left(const reg_session *r, int index, void *arg)
{
	(void)index;
	supervisor *s = arg;
	uint8_t batch[2 * REG_NAME_MAX + BUS_HEADER_LEN + 8];
	size_t len = 0;
	bus_msg left = { .type = BUS_MEMBER, .event = BUS_LEFT, .origin = (uint16_t)r->proc,
	                 .ssrc = r->ssrc, .payload = (const uint8_t *)r->user,
	                 .payload_len = strlen(r->user) };
	if (bus_batch_append(batch, sizeof batch, &len, r->room, &left) == 0)
		sup_bus_send(s, BUS_BATCH_TOPIC, &(bus_msg){ .type = BUS_BATCH, .origin = left.origin,
		                                             .payload = batch, .payload_len = len });
}

typedef struct gone_arg {
	supervisor *s;
	int parked;
} gone_arg;

/* A session of a dead worker: its disconnect row now; "left" for the
 * others now, or when its resume window passes. */
static void worker_session_gone(const reg_session *r, int index, void *arg)
{
	gone_arg *a = arg;
	sup_audit_session(a->s, "disconnect", r, "worker_crash", NULL);
	if (!a->parked)
		publish_left(r, index, a->s);
}

int sup_bus_worker_gone(supervisor *s, int proc)
{
	int64_t until = s->cfg.resume_window_ms > 0 ? clock_mono_ms() + s->cfg.resume_window_ms : 0;
	gone_arg a = { s, until > 0 };
	return reg_remove_proc(shm_registry(s->shm), proc, until, worker_session_gone, &a);
}

/* Sessions whose resume window passed: now the others hear "left". */
int sup_bus_expire_resumable(supervisor *s)
{
	return reg_expire(shm_registry(s->shm), clock_mono_ms(), publish_left, s);
}

/* An operator's action for one session (kick, mute, unmute, message): to
 * the topic of the worker that owns it. */
void sup_bus_admin_session(supervisor *s, const reg_session *r, int index, uint8_t op,
                           const char *text)
{
	char topic[16];
	uint8_t payload[REG_ID_LEN + 1 + 8192];
	size_t idlen = strlen(r->id), tlen = strlen(text);
	if (tlen > sizeof payload - idlen - 2)
		tlen = sizeof payload - idlen - 2;
	memcpy(payload, r->id, idlen + 1);
	memcpy(payload + idlen + 1, text, tlen);
	payload[idlen + 1 + tlen] = '\0';
	snprintf(topic, sizeof topic, "%c%d", BUS_WORKER_TOPIC_PREFIX, r->proc);
	sup_bus_send(s, topic, &(bus_msg){ .type = BUS_ADMIN, .event = op, .ssrc = (uint32_t)index,
	                                   .payload = payload, .payload_len = idlen + tlen + 2 });
}

/* A system message to a room's members, or to every room's with room NULL. */
void sup_bus_system(supervisor *s, const char *room, const char *text)
{
	char topic[REG_NAME_MAX + 2];
	if (room)
		snprintf(topic, sizeof topic, "%s%s", BUS_ROOM_TOPIC_PREFIX, room);
	sup_bus_send(s, room ? topic : BUS_ALL_TOPIC,
	             &(bus_msg){ .type = BUS_ADMIN, .event = ADMIN_SYSTEM,
	                         .payload = (const uint8_t *)text, .payload_len = strlen(text) });
}
