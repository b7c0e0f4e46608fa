/* msgbuf.h: reference-counted outgoing message buffers. One buffer holds one
 * WebSocket message with LWS_PRE bytes of headroom and is shared by every
 * session queue it sits in: relaying a frame to N members costs N pointer
 * copies and reference increments, no copy of the payload. Audio buffers come
 * from a free list (no allocation per frame once warm); control messages
 * (rare, variable size) are allocated. Single-threaded: plain counters. */
#ifndef AGW_MSGBUF_H
#define AGW_MSGBUF_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

enum msgbuf_kind { MSG_AUDIO = 0, MSG_TEXT, MSG_PING };

typedef struct msgbuf {
	uint32_t refs;
	uint32_t len;                /* payload bytes at data + LWS_PRE */
	uint8_t kind;                /* enum msgbuf_kind */
	uint8_t pooled;
	uint8_t sampled;             /* relay latency is recorded when the last reference goes */
	int64_t recv_us;             /* monotonic time the frame arrived (audio) */
	struct msgbuf *next_free;
	unsigned char data[];        /* LWS_PRE + payload */
} msgbuf;

static inline unsigned char *msgbuf_payload(msgbuf *m) { return m->data + LWS_PRE; }

/* latency_sink receives (now - recv_us) of sampled frames when they are done. */
void msgbuf_pool_init(size_t max_payload, void (*latency_sink)(int64_t us));
msgbuf *msgbuf_audio(void);                        /* refs = 1, len = 0 */
msgbuf *msgbuf_text(const char *text, size_t len); /* refs = 1, a copy */
msgbuf *msgbuf_ping(const void *payload, size_t len); /* a WebSocket ping */
static inline msgbuf *msgbuf_ref(msgbuf *m) { m->refs++; return m; }
void msgbuf_unref(msgbuf *m);

#endif
