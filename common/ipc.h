/* ipc.h: NNG listeners that other processes of the daemon dial. When the
 * supervisor runs as root and workers drop to server.user, a socket file
 * created by root must still be connectable by them: ipc:// listeners get
 * mode 0666 inside run_dir (which is the daemon's own directory). */
#ifndef AGW_IPC_H
#define AGW_IPC_H

#include <nng/nng.h>

/* nng_listen() with shared permissions for ipc:// URLs; NNG error code. */
int ipc_listen_shared(nng_socket s, const char *url);

#endif
