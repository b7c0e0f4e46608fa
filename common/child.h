/* child.h: what every process the supervisor fork+execs does first (workers,
 * the downstream process): read the config the supervisor validated from the
 * inherited descriptor, and drop to server.user when started as root. */
#ifndef AGW_CHILD_H
#define AGW_CHILD_H

#include "common/config.h"

#include <signal.h>

#define CHILD_FD_SHM 3      /* the shared area */
#define CHILD_FD_CONFIG 4   /* the validated config text */

/* Parses the inherited config (file is the name for messages), closes the
 * descriptor; errors go to stderr prefixed with who. 0 or -1. */
int child_load_config(cfg *c, const char *file, const char *who);
/* No-op unless root and user is set. 0 or -1 (logged). */
int child_drop_privileges(const char *user);

/* For processes with a plain poll loop (journal, downstream): SIGTERM and
 * SIGINT set child_stop_signal, SIGUSR1 sets child_reopen_log (handlers
 * only set flags, without SA_RESTART so poll() returns EINTR); SIGPIPE and
 * SIGHUP are ignored (reload is the supervisor's business). */
extern volatile sig_atomic_t child_stop_signal, child_reopen_log;
void child_watch_signals(void);

#endif
