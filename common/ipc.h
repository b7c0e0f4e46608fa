/* ipc.h: NNG listeners that other processes of the daemon dial. When the
 * supervisor runs as root and workers drop to server.user, a socket file
 * created by root must still be connectable by them: ipc:// listeners get
 * mode 0666 inside run_dir (which is the daemon's own directory). */
#ifndef AGW_IPC_H
#define AGW_IPC_H

#include <nng/nng.h>
#include <stdatomic.h>
#include <stddef.h>

/* nng_listen() with shared permissions for ipc:// URLs; NNG error code. */
int ipc_listen_shared(nng_socket s, const char *url);

/* The bus addresses in run_dir: a worker's publisher by its entry in the
 * shared area (index >= 0), or the supervisor's (index < 0). */
void ipc_bus_url(const char *run_dir, int index, char *buf, size_t len);

/* Keeps *pipes equal to the socket's connected pipes (updated on NNG's
 * threads). NNG error code. */
int ipc_count_pipes(nng_socket s, _Atomic int *pipes);

#endif
