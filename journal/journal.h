/* journal.h: the audit journal process (SPEC 6.4). The supervisor starts it
 * with fork + exec like a worker:
 *     audiogwd --journal -c CONFIG_FILE --listen URL
 * (URL e.g. ipc://RUN_DIR/audit.ipc, the address every audit_open() dials).
 * It receives events on an NNG PULL socket and writes them to
 * audit.database in batched transactions; it deletes rows older than
 * audit.retention in the background. SIGTERM/SIGINT: it drains what is still
 * arriving (until 200 ms of silence), commits, and exits 0. Exit 1 on a
 * startup error, with the message on stderr and in the log. */
#ifndef AGW_JOURNAL_H
#define AGW_JOURNAL_H

#include <stddef.h>

int journal_main(int argc, char **argv);

/* For the supervisor at startup, before starting anything: opens or creates
 * the database, creates or checks the schema, proves it writable, closes it.
 * 0, or -1 with a message naming the file in err. */
int journal_check_database(const char *path, char *err, size_t errlen);

#endif
