/* control.h: the JSON control messages of SPEC 4.2: parsing what clients
 * send, building what the server sends. Pure functions over jansson; the
 * builders return malloc'd compact JSON (free with free()). */
#ifndef AGW_PROTO_CONTROL_H
#define AGW_PROTO_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_ROOM_MAX 128

typedef enum { CTL_BAD = 0, CTL_PING, CTL_JOIN, CTL_MUTE, CTL_UNMUTE } ctl_type;

typedef struct ctl_request {
	ctl_type type;
	json_t *id;                  /* ping: the client's id (any JSON value), or NULL */
	char room[CTL_ROOM_MAX + 1]; /* join */
	const char *error;           /* CTL_BAD: what is wrong, for the error message */
} ctl_request;

/* Always fills req; returns req->type. Call ctl_request_clear() after. */
ctl_type ctl_parse(const char *text, size_t len, ctl_request *req);
void ctl_request_clear(ctl_request *req);

/* A growing text buffer: members lists are built in one, entry by entry
 * ({"user","ssrc","muted"}, comma-separated). Start zeroed; an allocation
 * failure makes the message built from it NULL. */
typedef struct ctl_buf {
	char *p;
	size_t len, cap;
	int failed;
} ctl_buf;
void ctl_members_add(ctl_buf *members, const char *user, uint32_t ssrc, int muted);
void ctl_buf_free(ctl_buf *b);
char *ctl_welcome(const char *session, const char *user, const char *room, uint32_t ssrc,
                  int worker, int heartbeat_s, const char *resume, const ctl_buf *members);
char *ctl_joined(const char *room, const ctl_buf *members);
char *ctl_member_event(const char *event, const char *user, uint32_t ssrc);
char *ctl_pong(json_t *id, int64_t t_ms);
char *ctl_error(const char *code, const char *msg);
char *ctl_system(const char *text);
char *ctl_kicked(const char *reason);
char *ctl_by_admin(const char *type);          /* {"type":"muted"|"unmuted","by":"admin"} */
char *ctl_message(const char *data_json);     /* {"type":"message","data":DATA}; NULL if not JSON */
char *ctl_drain(int64_t reconnect_in_ms);

#endif
