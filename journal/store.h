/* store.h: the audit database on the writer's side (SPEC 6.4): opening it
 * (WAL, synchronous=FULL: see store.c), creating or checking the schema,
 * writing a producer's batch of events in one transaction exactly once,
 * deleting expired rows in small chunks. Used
 * by the journal process and, through journal_check_database(), by the
 * supervisor at startup. Single-threaded. */
#ifndef AGW_JOURNAL_STORE_H
#define AGW_JOURNAL_STORE_H

#include "common/audit.h"

#include <stddef.h>
#include <stdint.h>

#define JSTORE_SCHEMA_VERSION 1
#define JSTORE_BUSY_TIMEOUT_MS 5000

typedef struct jstore jstore;

/* Opens or creates the database, creates the schema on first use, checks it
 * otherwise, and proves it writable. NULL with a message naming the file in
 * err when the file cannot be opened or written, is not SQLite, or holds a
 * newer or foreign schema. */
jstore *jstore_open(const char *path, char *err, size_t errlen);

/* Writes n records in one transaction (BEGIN IMMEDIATE ... COMMIT) with the
 * prepared INSERT. 0, or -1 with nothing written (rolled back): see
 * jstore_errmsg(). */
int jstore_write_batch(jstore *s, const audit_record *recs, int n);

/* Writes batch seq of a producer (audit.h's header) exactly once: in one
 * transaction, unless the table audit_producers says that producer's batch
 * seq (or a later one) is in already, the n records and the producer's new
 * last seq (and seen_us = now). 1 when written, 0 when it was in already
 * (nothing written), -1 on error (nothing written). n may be 0. */
int jstore_write_once(jstore *s, uint64_t producer, uint64_t seq, const audit_record *recs, int n);

/* The last seq of a producer written (0: none, or forgotten), -1 on error. */
int64_t jstore_producer_seq(jstore *s, uint64_t producer);

/* Forgets the producers last seen before cutoff_us (wall clock): their
 * batches, should one come again, are written again. Returns how many, -1
 * on error. */
int jstore_forget_producers(jstore *s, int64_t cutoff_us);

/* Deletes at most chunk rows with ts_us < cutoff_us (its own short
 * transaction). Returns the rows deleted, -1 on error. */
int jstore_prune(jstore *s, int64_t cutoff_us, int chunk);

/* A passive WAL checkpoint (never waits for readers). SQLite checkpoints
 * by itself; this is for tests and tools. 0 or -1. */
int jstore_checkpoint(jstore *s);

const char *jstore_errmsg(const jstore *s);
const char *jstore_path(const jstore *s);
void jstore_close(jstore *s);

#endif
