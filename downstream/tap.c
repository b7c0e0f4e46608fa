/* tap.c: the tap, an NNG PUB socket listening at [downstream] tap for
 * services (speech recognition, analytics) that want every room's audio
 * without being a WebSocket client. It republishes the bus messages of
 * rooms as they are: topic = the room name and a NUL (subscribe to "ROOM\0"
 * for one room, to "" for all), a 16-byte header (proto/bus.h: type 1 =
 * frame, 2 = member event; event; origin; ssrc; receive time), then the
 * RTP packet (SSRC rewritten to the speaker's) or, for a member event, the
 * user id. NNG publishers never block: a subscriber that cannot keep up
 * loses messages in its own queue. */
#include "downstream/downstream.h"
#include "common/log.h"

#include <nng/protocol/pubsub0/pub.h>
#include <string.h>
#include <unistd.h>

#define TAP_QUEUE_MSGS 4096

int tap_open(downstream *d, const char *url)
{
	int rv;
	if (!strncmp(url, "ipc://", 6))
		unlink(url + 6);   /* left by a previous run of this process */
	if ((rv = nng_pub0_open(&d->tap)) != 0) {
		log_error("tap", "cannot open the tap socket: %s", nng_strerror(rv));
		return -1;
	}
	nng_socket_set_int(d->tap, NNG_OPT_SENDBUF, TAP_QUEUE_MSGS);
	if ((rv = nng_listen(d->tap, url, NULL, 0)) != 0) {
		log_error("tap", "cannot listen on %s: %s", url, nng_strerror(rv));
		nng_close(d->tap);
		return -1;
	}
	d->tap_open = 1;
	snprintf(d->tap_url, sizeof d->tap_url, "%s", url);
	log_info("tap", "publishing every room's frames at %s", url);
	return 0;
}

void tap_close(downstream *d)
{
	if (!d->tap_open)
		return;
	nng_close(d->tap);
	d->tap_open = 0;
	if (!strncmp(d->tap_url, "ipc://", 6))
		unlink(d->tap_url + 6);
	d->tap_url[0] = '\0';
}

void tap_publish(downstream *d, const void *msg, size_t len)
{
	if (nng_send(d->tap, (void *)msg, len, NNG_FLAG_NONBLOCK) != 0)
		atomic_fetch_add_explicit(&d->counters->dropped, 1, memory_order_relaxed);
}
