/* ipc.c: see ipc.h. */
#include "common/ipc.h"

#include <string.h>

int ipc_listen_shared(nng_socket s, const char *url)
{
	nng_listener l;
	int rv = nng_listener_create(&l, s, url);
	if (rv)
		return rv;
	if (!strncmp(url, "ipc://", 6) && (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0666)))
		return rv;
	return nng_listener_start(l, 0);
}
