/* audit.h: the producer side of the audit journal (SPEC 6.4), used by the
 * workers and the supervisor, and the wire format the journal decodes.
 *
 * audit_emit() never blocks: it encodes the event into one NNG message and
 * queues it in the sink's bounded FIFO backlog; NNG's own threads push the
 * backlog to the journal (PUSH socket dialing its PULL socket) one message
 * after the other, and keep doing so while the caller's loop is busy. When
 * the journal is slow, restarting or absent, events wait in the backlog; an
 * event that finds it full is counted in audit_dropped() and discarded.
 *
 * Callers: one thread per sink (the worker's or the supervisor's loop). */
#ifndef AGW_AUDIT_H
#define AGW_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_BACKLOG_DEFAULT 100000
#define AUDIT_FIELD_MAX 1024       /* event/session/user/room/ip/reason: longer is cut */
#define AUDIT_DETAIL_MAX 65536     /* longer detail is replaced by {"truncated":true,...} */

typedef struct audit_event {
	const char *event;         /* SPEC 6.4 name: connect, disconnect, ... (required) */
	int worker;                /* -1 = supervisor (stored as NULL) */
	const char *session, *user, *room, *ip, *reason;  /* NULL or "" = absent */
	const char *detail;        /* JSON text or NULL */
	int64_t ts_us;             /* unix microseconds, 0 = now */
} audit_event;

typedef struct audit_sink audit_sink;

/* Opens a PUSH socket dialing url (e.g. ipc://RUN_DIR/audit.ipc) without
 * waiting for the journal to be there; NNG redials by itself. backlog_max
 * (<= 0: AUDIT_BACKLOG_DEFAULT) bounds the events kept while undelivered.
 * NULL on error (bad URL, no memory). */
audit_sink *audit_open(const char *url, int backlog_max);

/* Never blocks. Strings are copied: they need not outlive the call. */
void audit_emit(audit_sink *a, const audit_event *e);

/* Returns how many events are still waiting (not yet handed to the journal's
 * connection). timeout_ms = 0 only reports; the backlog moves by itself, so a
 * periodic call is not needed for delivery (it is cheap if you want the
 * number for metrics). timeout_ms > 0 (at exit) waits up to that long until
 * every event has been written to the journal's socket, so that exiting
 * right after a return of 0 loses nothing. */
int audit_flush(audit_sink *a, int timeout_ms);

uint64_t audit_sent(const audit_sink *a);     /* events handed to the journal's connection */
uint64_t audit_dropped(const audit_sink *a);  /* events discarded: backlog full */
int audit_pending(const audit_sink *a);       /* events in the backlog */

/* Discards whatever is still pending (call audit_flush first). NULL is fine. */
void audit_close(audit_sink *a);

/* The wire format, one message per event (big-endian):
 *   u8 kind (AUDIT_KIND_EVENT), i64 ts_us, i32 worker, then event, session,
 *   user, room, ip, reason, detail, each a u32 length (0xffffffff = NULL)
 *   followed by that many bytes (no NUL).
 * A message of kind AUDIT_KIND_FENCE carries nothing and is ignored. */
enum { AUDIT_KIND_FENCE = 0x00, AUDIT_KIND_EVENT = 0x61 };

typedef struct audit_text {
	const char *p;             /* NULL = SQL NULL; not NUL-terminated */
	uint32_t len;
} audit_text;

typedef struct audit_record {
	int64_t ts_us;
	int worker;                /* < 0 = supervisor */
	audit_text event, session, user, room, ip, reason, detail;
} audit_record;

/* Encodes e into buf if it fits in cap; returns the encoded length either way
 * (call with cap 0 to measure), 0 when e has no event name. */
size_t audit_encode(const audit_event *e, uint8_t *buf, size_t cap);

/* Decodes one message; r's texts point into buf. Returns AUDIT_KIND_EVENT,
 * AUDIT_KIND_FENCE, or -1 for a malformed message. */
int audit_decode(const void *buf, size_t len, audit_record *r);

#endif
