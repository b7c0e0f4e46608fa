/* bus.h: messages between workers on the NNG pub/sub bus.
 * Each message starts with its topic, the room name and a NUL (NNG filters
 * by byte prefix; the NUL keeps room "a" from matching room "ab"), then a
 * 16-byte header: type, event, origin (sender's process entry), ssrc, and
 * the receive time of a frame (CLOCK_MONOTONIC, the same in every process),
 * then the payload: the RTP packet of a frame, or the user of a member event. */
#ifndef AGW_PROTO_BUS_H
#define AGW_PROTO_BUS_H

#include <stddef.h>
#include <stdint.h>

#define BUS_HEADER_LEN 16

enum bus_type { BUS_FRAME = 1, BUS_MEMBER = 2, BUS_CLOSE = 3, BUS_ADMIN = 4, BUS_BATCH = 5 };

/* BUS_BATCH carries the frames one worker published during one turn of its
 * loop, on BUS_BATCH_TOPIC (every worker subscribes to it): NNG costs tens
 * of microseconds per message, so one message per frame made the bus half
 * of a worker's CPU (measured: 20.9 vs 11.4 us per delivered frame with 2
 * workers vs 1). Its payload is records of [u16 length][an encoded
 * message], each with its own room topic; receivers filter by room. */
#define BUS_BATCH_TOPIC "\x03"


/* BUS_ADMIN: an operator's action, from the supervisor. event = the op;
 * for ops on one session the topic is its worker's, ssrc its registry index
 * and the payload "SESSION_ID\0TEXT"; ADMIN_SYSTEM goes to
 * BUS_ROOM_TOPIC_PREFIX + the room (every worker subscribes to the prefix
 * and keeps what is for its rooms), or to BUS_ALL_TOPIC for every room, with
 * the text as payload. */
enum bus_admin_op { ADMIN_KICK = 1, ADMIN_MUTE, ADMIN_UNMUTE, ADMIN_MESSAGE, ADMIN_SYSTEM };
#define BUS_ALL_TOPIC "\x02"
#define BUS_ROOM_TOPIC_PREFIX "\x04"

/* BUS_CLOSE asks the worker owning a session to close it. Its topic is the
 * worker's own, "\x01" + its process entry number (room names cannot hold
 * control characters); ssrc carries the registry index, recv_us the close
 * code, the payload the session id (checked: registry entries are reused). */
#define BUS_WORKER_TOPIC_PREFIX '\x01'
enum bus_member_event { BUS_JOINED = 1, BUS_LEFT, BUS_MUTED, BUS_UNMUTED };

typedef struct bus_msg {
	const char *room;            /* NUL-terminated inside the message */
	uint8_t type, event;
	uint16_t origin;
	uint32_t ssrc;
	int64_t recv_us;
	const uint8_t *payload;
	size_t payload_len;
} bus_msg;

/* Both return the encoded length, or 0 if it does not fit in cap. */
size_t bus_encode(uint8_t *out, size_t cap, const char *room, const bus_msg *m);
/* 0, or -1 for a malformed message (no NUL topic, short header, bad type). */
int bus_decode(const uint8_t *p, size_t len, bus_msg *m);
const char *bus_event_name(uint8_t event);   /* "joined", "left", "muted", "unmuted" */
/* Appends m (for room) as a record to the batch payload of *len bytes in
 * batch[cap]: 0, or -1 (nothing appended) when it does not fit. */
int bus_batch_append(uint8_t *batch, size_t cap, size_t *len, const char *room, const bus_msg *m);
/* Iterates the records of a BUS_BATCH: 0 with the next record in inner and
 * inner_len, 1 at the end, -1 if malformed. Start with *off = 0. */
int bus_batch_next(const bus_msg *batch, size_t *off, const uint8_t **inner, size_t *inner_len);

#endif
