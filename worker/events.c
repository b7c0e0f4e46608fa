/* events.c: what a worker records about its sessions: one call writes the
 * audit row (SPEC 6.4, through the non-blocking audit sink) and the debug
 * log line (SPEC 6.5). Session events, never per frame. */
#include "worker/worker.h"
#include "common/audit.h"
#include "common/log.h"

void event_session(worker *w, const char *event, const session *s, const char *reason,
                   const char *detail)
{
	const reg_session *r = &w->reg->s[s->reg];
	audit_event e = { .event = event, .worker = w->slot, .session = r->id, .user = r->user,
	                  .room = r->room, .ip = r->ip, .reason = reason, .detail = detail };
	if (w->audit)
		audit_emit(w->audit, &e);
	log_msg(LOG_DEBUG, event, &(log_fields){ .session = r->id, .user = r->user, .room = r->room,
	        .ip = r->ip, .reason = reason, .latency_ms = -1 }, "%s", detail ? detail : "");
}

void event_handshake(worker *w, const char *event, const char *ip, const char *user,
                     const char *reason, unsigned status)
{
	char detail[32];
	snprintf(detail, sizeof detail, "{\"status\":%u}", status);
	audit_event e = { .event = event, .worker = w->slot, .user = user, .ip = ip,
	                  .reason = reason, .detail = detail };
	if (w->audit)
		audit_emit(w->audit, &e);
	log_msg(LOG_DEBUG, event, &(log_fields){ .ip = ip, .user = user, .reason = reason,
	        .latency_ms = -1 }, "HTTP %u", status);
}

/* The sink's counters into the shared area, for /metrics (from the sweep). */
void event_publish_counters(worker *w)
{
	if (!w->audit)
		return;
	audit_flush(w->audit, 0);
	atomic_store_explicit(&w->me->c.audit_events, audit_sent(w->audit), memory_order_relaxed);
	atomic_store_explicit(&w->me->c.audit_dropped, audit_dropped(w->audit), memory_order_relaxed);
}
