/* tap_probe: a test helper that subscribes to the tap of audiogwd
 * ([downstream] tap) and prints what it receives, one line per message:
 * "ROOM TYPE SSRC PAYLOAD_BYTES" (TYPE 1 = frame, 2 = member event).
 *   tap_probe URL TOPIC COUNT TIMEOUT_MS
 * TOPIC "" subscribes to every room, otherwise to "TOPIC\0". It prints
 * "connected" once its pipe to the tap is up, then stops after COUNT
 * messages or TIMEOUT_MS without one. */
#include "proto/bus.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int pipes;

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev, (void)arg;
	atomic_fetch_add(&pipes, 1);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: tap_probe URL TOPIC COUNT TIMEOUT_MS\n");
		return 2;
	}
	nng_socket s;
	int count = atoi(argv[3]), timeout = atoi(argv[4]);
	size_t tlen = strlen(argv[2]);
	if (nng_sub0_open(&s) || nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, argv[2], tlen ? tlen + 1 : 0) ||
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout) ||
	    nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_pipe, NULL) ||
	    nng_dial(s, argv[1], NULL, NNG_FLAG_NONBLOCK)) {
		fprintf(stderr, "tap_probe: cannot dial %s\n", argv[1]);
		return 1;
	}
	for (int i = 0; i < timeout / 10 && !atomic_load(&pipes); i++)
		usleep(10000);
	printf("%s\n", atomic_load(&pipes) ? "connected" : "not connected");
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		char *buf;
		size_t len;
		bus_msg m;
		if (nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) != 0)
			break;
		if (bus_decode((const uint8_t *)buf, len, &m) == 0)
			printf("%s %d %u %zu\n", m.room, m.type, m.ssrc, m.payload_len);
		else
			printf("? 0 0 %zu\n", len);
		fflush(stdout);
		nng_free(buf, len);
	}
	nng_close(s);
	return 0;
}
