/* bus.c (supervisor): the supervisor's own publisher on the workers' bus, at
 * ipc://RUN_DIR/bus-sup.ipc (every worker dials it). It speaks for workers
 * that cannot any more: when one dies, the sessions it held are removed from
 * the registry and the members of their rooms on other workers hear "left". */
#include "supervisor/supervisor.h"
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
	snprintf(url, sizeof url, "ipc://%s/bus-sup.ipc", s->cfg.run_dir);
	unlink(url + strlen("ipc://"));
	int rv;
	if ((rv = nng_pub0_open(&s->bus)) || (rv = nng_listen(s->bus, url, NULL, 0))) {
		log_error("bus", "cannot open %s: %s", url, nng_strerror(rv));
		return -1;
	}
	return 0;
}

static void publish_left(const reg_session *r, int index, void *arg)
{
	(void)index;
	supervisor *s = arg;
	uint8_t buf[2 * REG_NAME_MAX + BUS_HEADER_LEN + 8];
	bus_msg m = { .type = BUS_MEMBER, .event = BUS_LEFT, .origin = (uint16_t)r->proc,
	              .ssrc = r->ssrc, .payload = (const uint8_t *)r->user, .payload_len = strlen(r->user) };
	size_t n = bus_encode(buf, sizeof buf, r->room, &m);
	if (n)
		nng_send(s->bus, buf, n, NNG_FLAG_NONBLOCK);
}

int sup_bus_worker_gone(supervisor *s, int proc)
{
	return reg_remove_proc(shm_registry(s->shm), proc, publish_left, s);
}
