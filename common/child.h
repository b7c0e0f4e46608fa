/* child.h: what every process the supervisor fork+execs does first (workers,
 * the downstream process): read the config the supervisor validated from the
 * inherited descriptor, and drop to server.user when started as root. */
#ifndef AGW_CHILD_H
#define AGW_CHILD_H

#include "common/config.h"

#define CHILD_FD_SHM 3      /* the shared area */
#define CHILD_FD_CONFIG 4   /* the validated config text */

/* Parses the inherited config (file is the name for messages), closes the
 * descriptor; errors go to stderr prefixed with who. 0 or -1. */
int child_load_config(cfg *c, const char *file, const char *who);
/* No-op unless root and user is set. 0 or -1 (logged). */
int child_drop_privileges(const char *user);

#endif
