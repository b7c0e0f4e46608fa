/* journal.h: the audit journal process (SPEC 6.4). The supervisor starts it
 * with fork + exec like a worker:
 *     audiogwd --journal -c CONFIG_FILE --listen URL
 * (URL e.g. ipc://RUN_DIR/audit.ipc, the address every audit_open() dials).
 * It receives the producers' batches of events as requests on an NNG REP
 * socket, writes each to audit.database in one transaction (once: a batch
 * sent again after a lost reply is recognised by its producer and seq) and
 * replies once it committed; it deletes rows older than audit.retention in
 * the background. SIGTERM/SIGINT: it stops receiving, commits and answers
 * the batch in hand, and exits 0 (what producers still hold goes to the
 * next journal, or was flushed before: the supervisor stops the journal
 * last). Exit 1 on a startup error, with the message on stderr and in the
 * log, or when the batch in hand could not be written at exit. */
#ifndef AGW_JOURNAL_H
#define AGW_JOURNAL_H

#include <stddef.h>

int journal_main(int argc, char **argv);

/* For the supervisor at startup, before starting anything: opens or creates
 * the database, creates or checks the schema, proves it writable, closes it.
 * 0, or -1 with a message naming the file in err. */
int journal_check_database(const char *path, char *err, size_t errlen);

#endif
