/* metrics.c: the Prometheus text of SPEC 6.3, read from the shared area
 * (workers never stop to answer) and the supervisor's own state. Totals of
 * dead worker processes are folded into their slot's retired counters, so
 * a counter never goes backwards across restarts and reloads. */
#include "supervisor/supervisor.h"
#include "common/clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reject_names[SHM_REJECT_REASONS] = {
	"auth", "banned", "path", "ip_limit", "rate", "draining", "full" };
static const char *const drop_names[SHM_DROP_REASONS] = {
	"invalid", "rate", "muted", "queue", "listen_only" };
static const char *const close_names[SHM_CLOSE_CODES] = {
	"1000", "1001", "1006", "1008", "1009", "1011", "4001", "4002", "4003", "4004", "4008" };

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void add_counters(metric_totals *t, shm_counters *c, int with_gauges)
{
	t->accepted += LOAD(c->accepted_total);
	for (int i = 0; i < SHM_REJECT_REASONS; i++)
		t->rejected[i] += LOAD(c->handshake_rejected[i]);
	t->frames_in += LOAD(c->frames_in);
	t->frames_out += LOAD(c->frames_out);
	t->bytes_in += LOAD(c->bytes_in);
	t->bytes_out += LOAD(c->bytes_out);
	for (int i = 0; i < SHM_DROP_REASONS; i++)
		t->dropped[i] += LOAD(c->frames_dropped[i]);
	for (int i = 0; i < SHM_CLOSE_CODES; i++)
		t->closes[i] += LOAD(c->closes[i]);
	t->bus_in += LOAD(c->bus_in_total);
	t->bus_out += LOAD(c->bus_out_total);
	for (int i = 0; i < SHM_LATENCY_BUCKETS; i++)
		t->latency[i] += LOAD(c->latency_buckets[i]);
	t->latency_count += LOAD(c->latency_count);
	t->latency_sum_us += LOAD(c->latency_sum_us);
	t->audit_events += LOAD(c->audit_events);
	t->audit_dropped += LOAD(c->audit_dropped);
	if (with_gauges) {
		t->connections += LOAD(c->connections);
		t->queued += LOAD(c->outbound_queue_frames);
		int64_t hold = LOAD(c->write_coalesce_ms);
		if (hold > 0 && (uint64_t)hold > t->coalesce_ms)
			t->coalesce_ms = (uint64_t)hold;
	}
}

void metrics_retire(supervisor *s, int slot, int shm_index)
{
	add_counters(&s->retired[slot], &s->shm->procs[shm_index].c, 0);
}

/* Totals of one slot: what its dead processes did plus its live ones. */
void metrics_slot(supervisor *s, int slot, metric_totals *t)
{
	*t = s->retired[slot];
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		shm_proc *p = &s->shm->procs[i];
		int st = atomic_load(&p->state);
		if (st != SHM_PROC_FREE && p->slot == slot)
			add_counters(t, &p->c, 1);
	}
}

void metrics_host(supervisor *s, metric_totals *t)
{
	memset(t, 0, sizeof *t);
	for (int slot = 0; slot < SUP_MAX_WORKERS; slot++) {
		metric_totals one;
		metrics_slot(s, slot, &one);
		uint64_t *a = (uint64_t *)t, *b = (uint64_t *)&one;
		for (size_t i = 0; i < sizeof *t / sizeof(uint64_t); i++)
			a[i] += b[i];
	}
}

/* The latency quantile q from the histogram, in ms (bucket upper bound). */
double metrics_latency_ms(const metric_totals *t, double q)
{
	uint64_t total = 0, seen = 0;
	for (int i = 0; i < SHM_LATENCY_BUCKETS; i++)
		total += t->latency[i];
	if (!total)
		return 0;
	for (int i = 0; i < SHM_LATENCY_BUCKETS - 1; i++) {
		seen += t->latency[i];
		if ((double)seen >= q * (double)total)
			return (double)shm_latency_bounds_us[i] / 1000.0;
	}
	return (double)shm_latency_bounds_us[SHM_LATENCY_BUCKETS - 2] / 1000.0;
}

/* -- text ---------------------------------------------------------------- */

typedef struct outbuf {
	char *p;
	size_t len, cap;
} outbuf;

static void out(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(outbuf *o, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *np = realloc(o->p, o->cap * 2);
		if (!np)
			return;
		o->p = np;
		o->cap *= 2;
	}
}

static void head(outbuf *o, const char *name, const char *type, const char *help)
{
	out(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef uint64_t (*metric_get)(const metric_totals *t, int i);

static void per_worker(outbuf *o, supervisor *s, metric_totals *slots, const char *name,
                       const char *label, const char *const *values, int nvalues, metric_get get)
{
	for (int w = 0; w < s->n_slots_seen; w++)
		for (int i = 0; i < nvalues; i++) {
			if (label)
				out(o, "%s{worker=\"%d\",%s=\"%s\"} %llu\n", name, w, label, values[i],
				    (unsigned long long)get(&slots[w], i));
			else
				out(o, "%s{worker=\"%d\"} %llu\n", name, w, (unsigned long long)get(&slots[w], i));
		}
}

#define GETTER(fname, expr) \
	static uint64_t fname(const metric_totals *t, int i) { (void)i; return (uint64_t)(expr); }
GETTER(get_conns, t->connections)
GETTER(get_accepted, t->accepted)
GETTER(get_rejected, t->rejected[i])
GETTER(get_fin, t->frames_in)
GETTER(get_fout, t->frames_out)
GETTER(get_dropped, t->dropped[i])
GETTER(get_bin, t->bytes_in)
GETTER(get_bout, t->bytes_out)
GETTER(get_queued, t->queued)
GETTER(get_closes, t->closes[i])
GETTER(get_audit, t->audit_events)
GETTER(get_audit_dropped, t->audit_dropped)

static void latency_histogram(outbuf *o, supervisor *s, metric_totals *slots)
{
	const char *name = "audiogw_relay_latency_seconds";
	head(o, name, "histogram", "Relay latency, receive to last send (sampled 1 in 16 frames).");
	for (int w = 0; w < s->n_slots_seen; w++) {
		uint64_t cum = 0;
		for (int b = 0; b < SHM_LATENCY_BUCKETS; b++) {
			cum += slots[w].latency[b];
			if (b < SHM_LATENCY_BUCKETS - 1)
				out(o, "%s_bucket{worker=\"%d\",le=\"%g\"} %llu\n", name, w,
				    (double)shm_latency_bounds_us[b] / 1e6, (unsigned long long)cum);
			else
				out(o, "%s_bucket{worker=\"%d\",le=\"+Inf\"} %llu\n", name, w,
				    (unsigned long long)cum);
		}
		out(o, "%s_sum{worker=\"%d\"} %.6f\n", name, w, (double)slots[w].latency_sum_us / 1e6);
		out(o, "%s_count{worker=\"%d\"} %llu\n", name, w, (unsigned long long)slots[w].latency_count);
	}
}

/* The downstream process (recording, RTP forward, tap): its totals live at
 * the end of the shared area and survive its restarts. */
static void downstream_metrics(outbuf *o, supervisor *s)
{
	static const char *const kinds[SHM_DS_KINDS] = { "record", "forward", "tap" };
	shm_downstream *d = &s->shm->downstream;
	head(o, "audiogw_downstream_frames_total", "counter",
	     "Frames recorded (written to a file), forwarded (sent by UDP) or tapped (published).");
	for (int i = 0; i < SHM_DS_KINDS; i++)
		out(o, "audiogw_downstream_frames_total{kind=\"%s\"} %llu\n", kinds[i],
		    (unsigned long long)LOAD(d->frames[i]));
	head(o, "audiogw_downstream_dropped_total", "counter",
	     "Frames the downstream process could not keep: writer queue full, send failed.");
	out(o, "audiogw_downstream_dropped_total %llu\n", (unsigned long long)LOAD(d->dropped));
	head(o, "audiogw_downstream_recordings", "gauge", "Rooms being recorded.");
	out(o, "audiogw_downstream_recordings %d\n", (int)LOAD(d->recordings));
	head(o, "audiogw_downstream_forwards", "gauge", "RTP forwards running.");
	out(o, "audiogw_downstream_forwards %d\n", (int)LOAD(d->forwards));
	head(o, "audiogw_downstream_restarts_total", "counter", "Downstream process restarts after dying.");
	out(o, "audiogw_downstream_restarts_total %llu\n", (unsigned long long)sup_downstream_restarts());
}

char *metrics_text(supervisor *s, const metric_room_stats *rs)
{
	static metric_totals slots[SUP_MAX_WORKERS];
	outbuf o = { malloc(16384), 0, 16384 };
	if (!o.p)
		return NULL;
	for (int w = 0; w < s->n_slots_seen; w++)
		metrics_slot(s, w, &slots[w]);
	metric_totals bus = { 0 };
	for (int w = 0; w < s->n_slots_seen; w++) {
		bus.bus_in += slots[w].bus_in;
		bus.bus_out += slots[w].bus_out;
	}
	static const char *const dirs[] = { "in", "out" };

	head(&o, "audiogw_connections", "gauge", "Open WebSocket sessions.");
	per_worker(&o, s, slots, "audiogw_connections", NULL, NULL, 1, get_conns);
	head(&o, "audiogw_connections_accepted_total", "counter", "WebSocket upgrades completed.");
	per_worker(&o, s, slots, "audiogw_connections_accepted_total", NULL, NULL, 1, get_accepted);
	head(&o, "audiogw_handshake_rejected_total", "counter", "Handshakes refused, by reason.");
	per_worker(&o, s, slots, "audiogw_handshake_rejected_total", "reason", reject_names,
	           SHM_REJECT_REASONS, get_rejected);
	head(&o, "audiogw_active_speakers", "gauge", "Sessions that sent audio in the last 2 s.");
	out(&o, "audiogw_active_speakers %d\n", rs->speakers);
	head(&o, "audiogw_rooms", "gauge", "Rooms with at least one member.");
	out(&o, "audiogw_rooms %d\n", rs->rooms);
	head(&o, "audiogw_audio_frames_in_total", "counter", "Audio frames received.");
	per_worker(&o, s, slots, "audiogw_audio_frames_in_total", NULL, NULL, 1, get_fin);
	head(&o, "audiogw_audio_frames_out_total", "counter", "Audio frames sent, one per recipient.");
	per_worker(&o, s, slots, "audiogw_audio_frames_out_total", NULL, NULL, 1, get_fout);
	head(&o, "audiogw_audio_frames_dropped_total", "counter", "Audio frames dropped, by reason.");
	per_worker(&o, s, slots, "audiogw_audio_frames_dropped_total", "reason", drop_names,
	           SHM_DROP_REASONS, get_dropped);
	head(&o, "audiogw_audio_bytes_in_total", "counter", "Audio bytes received.");
	per_worker(&o, s, slots, "audiogw_audio_bytes_in_total", NULL, NULL, 1, get_bin);
	head(&o, "audiogw_audio_bytes_out_total", "counter", "Audio bytes sent.");
	per_worker(&o, s, slots, "audiogw_audio_bytes_out_total", NULL, NULL, 1, get_bout);
	head(&o, "audiogw_outbound_queue_frames", "gauge", "Audio frames waiting in session queues.");
	per_worker(&o, s, slots, "audiogw_outbound_queue_frames", NULL, NULL, 1, get_queued);
	head(&o, "audiogw_write_coalesce_seconds", "gauge",
	     "How long a worker holds a client's output (limits.write_coalesce; auto: 0 or 0.02).");
	for (int w = 0; w < s->n_slots_seen; w++)
		out(&o, "audiogw_write_coalesce_seconds{worker=\"%d\"} %g\n", w,
		    (double)slots[w].coalesce_ms / 1000);
	head(&o, "audiogw_closes_total", "counter", "Closed sessions, by close code.");
	per_worker(&o, s, slots, "audiogw_closes_total", "code", close_names, SHM_CLOSE_CODES,
	           get_closes);
	latency_histogram(&o, s, slots);
	head(&o, "audiogw_bus_messages_total", "counter", "Messages between workers, by direction.");
	out(&o, "audiogw_bus_messages_total{dir=\"%s\"} %llu\n", dirs[0], (unsigned long long)bus.bus_in);
	out(&o, "audiogw_bus_messages_total{dir=\"%s\"} %llu\n", dirs[1], (unsigned long long)bus.bus_out);
	head(&o, "audiogw_worker_restarts_total", "counter", "Workers restarted after dying.");
	out(&o, "audiogw_worker_restarts_total %llu\n", (unsigned long long)s->worker_restarts);
	head(&o, "audiogw_audit_events_total", "counter", "Audit events handed to the journal.");
	per_worker(&o, s, slots, "audiogw_audit_events_total", NULL, NULL, 1, get_audit);
	head(&o, "audiogw_audit_dropped_total", "counter", "Audit events that could not be kept.");
	per_worker(&o, s, slots, "audiogw_audit_dropped_total", NULL, NULL, 1, get_audit_dropped);
	downstream_metrics(&o, s);
	return o.p;
}
