/* audit.h: the producer side of the audit journal (SPEC 6.4), used by the
 * workers and the supervisor, and the wire format the journal decodes.
 *
 * audit_emit() never blocks: it encodes the event and appends it to the
 * sink's bounded FIFO backlog. Events travel in batches: one NNG request
 * holds up to AUDIT_BATCH_EVENTS / AUDIT_BATCH_BYTES of them, because one
 * message per event costs the journal more in thread hand-offs and
 * transactions than SQLite costs per row.
 *
 * Delivery is acknowledged end to end: the sink is a REQ socket dialing the
 * journal's REP socket, and sends one batch at a time; the journal replies
 * once the batch's transaction has committed, and only that reply frees the
 * batch and sends the next one. A batch whose journal dies or restarts
 * before replying is sent again (to the next journal, or after
 * AUDIT_RESEND_MS); every batch carries the producer's random id and a
 * sequence number, by which the journal recognises and skips a batch it
 * already committed. So a SIGKILLed journal loses nothing, and stores
 * nothing twice.
 *
 * While a batch waits for its reply, new events fill the next one (up to
 * AUDIT_BATCH_EVENTS; full ones queue up), which leaves with the reply if
 * it is AUDIT_LINGER_MS old by then: the slower the journal, the larger the
 * batches. Otherwise a batch leaves when full, when an emit finds it
 * AUDIT_LINGER_MS old and nothing in flight, or at the next audit_flush():
 * call audit_flush(a, 0) from a timer every 10-50 ms so the last events of
 * a burst do not wait for the next one. NNG's own
 * threads do the sending and receiving. When the journal is slow,
 * restarting or absent, events wait in the backlog; an event that finds it
 * full is counted in audit_dropped() and discarded.
 *
 * Callers: one thread per sink (the worker's or the supervisor's loop). */
#ifndef AGW_AUDIT_H
#define AGW_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_BACKLOG_DEFAULT 100000
#define AUDIT_FIELD_MAX 1024       /* event/session/user/room/ip/reason: longer is cut */
#define AUDIT_DETAIL_MAX 65536     /* longer detail is replaced by {"truncated":true,...} */
#define AUDIT_LINGER_MS 10         /* a batch takes events for this long (see above) */
#define AUDIT_BATCH_EVENTS 512     /* per message */
#define AUDIT_BATCH_BYTES 65536    /* a batch is closed once it holds this much */
#define AUDIT_RESEND_MS 1000       /* a batch not acknowledged within this is sent again */

typedef struct audit_event {
	const char *event;         /* SPEC 6.4 name: connect, disconnect, ... (required) */
	int worker;                /* -1 = supervisor (stored as NULL) */
	const char *session, *user, *room, *ip, *reason;  /* NULL or "" = absent */
	const char *detail;        /* JSON text or NULL */
	int64_t ts_us;             /* unix microseconds, 0 = now */
} audit_event;

typedef struct audit_sink audit_sink;

/* Opens a REQ socket dialing url (e.g. ipc://RUN_DIR/audit.ipc) without
 * waiting for the journal to be there; NNG redials by itself. backlog_max
 * (<= 0: AUDIT_BACKLOG_DEFAULT) bounds the events kept while not yet
 * acknowledged. Draws the sink's producer id (random). NULL on error (bad
 * URL, no memory). */
audit_sink *audit_open(const char *url, int backlog_max);

/* Never blocks. Strings are copied: they need not outlive the call. An
 * event without a name counts as dropped. */
void audit_emit(audit_sink *a, const audit_event *e);

/* Sends the open batch (now, or with the reply to the batch in flight),
 * and returns how many events are not acknowledged yet. timeout_ms = 0 does not wait: call
 * it from a timer every 10-50 ms (cheap: a lock, no syscall when there is
 * nothing to send). timeout_ms > 0 (at exit) waits up to that long until
 * the journal has committed every event, so that a return of 0 means every
 * event emitted before the call is in the database. */
int audit_flush(audit_sink *a, int timeout_ms);

uint64_t audit_sent(const audit_sink *a);     /* events acknowledged (committed) by the journal */
uint64_t audit_dropped(const audit_sink *a);  /* events discarded: backlog full, no name */
int audit_pending(const audit_sink *a);       /* events not acknowledged yet */

/* Discards whatever is still pending (call audit_flush first). NULL is fine. */
void audit_close(audit_sink *a);

/* The wire format. A request is a batch: the header
 *   u8 AUDIT_KIND_BATCH, u64 producer (random per audit_open), u64 seq
 *   (1, 2, ...: strictly increasing per producer, in sending order; a batch
 *   sent again keeps its seq)
 * then one or more event records back to back. A record (big-endian):
 *   u8 AUDIT_KIND_EVENT, i64 ts_us, i32 worker, then event, session, user,
 *   room, ip, reason, detail, each a u32 length (0xffffffff = NULL) followed
 *   by that many bytes (no NUL).
 * The reply (any message, empty here) means "committed". */
enum { AUDIT_KIND_EVENT = 0x61, AUDIT_KIND_BATCH = 0x62 };
#define AUDIT_BATCH_HEADER_LEN 17

typedef struct audit_text {
	const char *p;             /* NULL = SQL NULL; not NUL-terminated */
	uint32_t len;
} audit_text;

typedef struct audit_record {
	int64_t ts_us;
	int worker;                /* < 0 = supervisor */
	audit_text event, session, user, room, ip, reason, detail;
} audit_record;

/* Encodes e as one record into buf if it fits in cap; returns the record's
 * length either way (cap 0 measures), 0 when e has no event name. */
size_t audit_encode(const audit_event *e, uint8_t *buf, size_t cap);

/* Decodes a buffer holding exactly one record; r's texts point into buf.
 * Returns AUDIT_KIND_EVENT or -1. */
int audit_decode(const void *buf, size_t len, audit_record *r);

/* Writes a batch header (AUDIT_BATCH_HEADER_LEN bytes) at buf. */
void audit_encode_batch(uint8_t *buf, uint64_t producer, uint64_t seq);

/* Reads a request's batch header: 0 with *producer and *seq set and *off
 * where its records begin, -1 when it does not start with one. */
int audit_decode_batch(const void *buf, size_t len, uint64_t *producer, uint64_t *seq,
                       size_t *off);

/* Walks records: call with *off at the first (0, or what
 * audit_decode_batch() gave), then again while it returns AUDIT_KIND_EVENT
 * (r filled, *off advanced). Returns 0 at the end, -1 on a malformed
 * record (ignore the rest). */
int audit_decode_next(const void *buf, size_t len, size_t *off, audit_record *r);

#endif
