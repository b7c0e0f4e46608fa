/* log.h: JSON-lines logging (SPEC 6.5). One object per line with ts, level,
 * worker, event and, where given, session/user/room/ip/reason/latency_ms/msg.
 * Not for the per-frame path. */
#ifndef AGW_LOG_H
#define AGW_LOG_H

#include <stdarg.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

typedef struct log_fields {
	const char *session, *user, *room, *ip, *reason;
	double latency_ms;         /* < 0 = absent */
} log_fields;

/* worker: -1 for the supervisor, the slot number for a worker. */
int log_open(const char *file, int level, int worker);
int log_reopen(void);          /* SIGUSR1: reopen the file; no-op on stderr */
void log_set_level(int level);
int log_level_from_name(const char *name); /* -1 if unknown */
const char *log_level_name(int level);
int log_enabled(int level);

void log_msg(int level, const char *event, const log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(ev, ...) log_msg(LOG_ERROR, ev, NULL, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_WARN, ev, NULL, __VA_ARGS__)
#define log_info(ev, ...)  log_msg(LOG_INFO, ev, NULL, __VA_ARGS__)
#define log_debug(ev, ...) log_msg(LOG_DEBUG, ev, NULL, __VA_ARGS__)

#endif
