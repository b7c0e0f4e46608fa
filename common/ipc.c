/* ipc.c: see ipc.h. */
#include "common/ipc.h"

#include <stdio.h>
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

void ipc_bus_url(const char *run_dir, int index, char *buf, size_t len)
{
	if (index < 0)
		snprintf(buf, len, "ipc://%s/bus-sup.ipc", run_dir);
	else
		snprintf(buf, len, "ipc://%s/bus-%d.ipc", run_dir, index);
}

static void on_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev;
	atomic_fetch_add((_Atomic int *)arg, 1);
}

static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev;
	atomic_fetch_sub((_Atomic int *)arg, 1);
}

int ipc_count_pipes(nng_socket s, _Atomic int *pipes)
{
	int rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_pipe_added, pipes);
	return rv ? rv : nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, on_pipe_removed, pipes);
}
