/* report.c: the figures of an audiogw-bench run, derived once from the
 * merged counters and the gateway samples, printed as a human summary or as
 * one JSON object (--json) with the same fields. Figures that could not be
 * measured (no --pid, nothing expected) are "n/a" / null. */
#include "bench.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct derived {
	double ramp_s, hs_span_s, hs_rate, window_s, delivery;
	double gw_cpu_ramp, us_per_hs, gw_cpu_window, gw_span_s, gw_share;
	double us_per_frame, per_cpu_s, rss_per_conn, pss_per_conn, load_cpu_window, idle_share;
	int has_delivery, gw, gw_frames, gw_mem, gw_pss;
} derived;

static double secs(int64_t a, int64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0;
}

static void derive_gateway(const bench_run *r, derived *d)
{
	const bench_res *t = &r->total;
	d->gw = r->gw_before.ok && r->gw_end.ok;
	if (!d->gw)
		return;
	double idle_s = secs(r->gw_idle.t_ns, r->gw_before.t_ns);
	d->idle_share = r->gw_idle.ok && idle_s > 0 ? (r->gw_before.cpu_s - r->gw_idle.cpu_s) / idle_s : 0;
	d->gw_cpu_ramp = r->gw_ramp.cpu_s - r->gw_before.cpu_s;
	d->us_per_hs = t->init_ok ? d->gw_cpu_ramp * 1e6 / (double)t->init_ok : 0;
	d->gw_cpu_window = r->gw_end.cpu_s - r->gw_ws.cpu_s;
	d->gw_span_s = secs(r->gw_ws.t_ns, r->gw_end.t_ns);
	d->gw_share = d->gw_span_s > 0 ? d->gw_cpu_window / d->gw_span_s : 0;
	d->gw_frames = t->received > 0 && d->gw_cpu_window > 0;
	if (d->gw_frames) {
		d->us_per_frame = d->gw_cpu_window * 1e6 / (double)t->received;
		d->per_cpu_s = (double)t->received / d->gw_cpu_window;
	}
	d->gw_mem = t->open_ws > 0;
	if (d->gw_mem)
		d->rss_per_conn = ((double)r->gw_ws.rss_kb - (double)r->gw_before.rss_kb) * 1024 /
		                  (double)t->open_ws;
	d->gw_pss = d->gw_mem && r->gw_before.pss_ok && r->gw_ws.pss_ok;
	if (d->gw_pss)
		d->pss_per_conn = ((double)r->gw_ws.pss_kb - (double)r->gw_before.pss_kb) * 1024 /
		                  (double)t->open_ws;
}

static void derive(const bench_run *r, derived *d)
{
	const bench_res *t = &r->total;
	memset(d, 0, sizeof *d);
	d->ramp_s = secs(r->ramp_t0, r->ramp_t1);
	d->hs_span_s = secs(r->ramp_t0, t->last_ok_ns);
	d->hs_rate = d->hs_span_s > 0 ? (double)t->init_ok / d->hs_span_s : 0;
	d->window_s = secs(r->window_t0, r->window_t1);
	d->has_delivery = t->expected > 0;
	d->delivery = d->has_delivery ? (double)t->received / (double)t->expected : 0;
	d->load_cpu_window = (double)(t->cpu_we_us - t->cpu_ws_us) / 1e6;
	derive_gateway(r, d);
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static const char *action_name(int a)
{
	return a == ACT_SIGHUP ? "sighup" : a == ACT_KILL_WORKER ? "kill-worker" : "none";
}

static const char *errno_name(int e, char *buf, size_t n)
{
	const char *s = e ? strerrorname_np(e) : "EOF";
	if (s)
		return s;
	snprintf(buf, n, "%d", e);
	return buf;
}

/* CPU seconds of process i of the last sample between the window start
 * and the end of the grace, or -1 if it was not there at the start. */
static double proc_window_cpu(const bench_run *r, int i)
{
	const gw_proc *e = &r->gw_end.per[i];
	for (int j = 0; j < r->gw_ws.nper; j++)
		if (r->gw_ws.per[j].pid == e->pid)
			return e->cpu_s - r->gw_ws.per[j].cpu_s;
	return -1;
}

/* ---- human ------------------------------------------------------------------ */

static void print_kv(const char *title, const kv_table *t, int errnos)
{
	printf("%s:", title);
	if (!t->used && !t->other)
		printf(" none");
	for (uint32_t i = 0; i < t->used; i++) {
		char b[16];
		if (errnos)
			printf(" %s=%llu", errno_name(t->e[i].key, b, sizeof b), (unsigned long long)t->e[i].n);
		else
			printf(" %d=%llu", t->e[i].key, (unsigned long long)t->e[i].n);
	}
	if (t->other)
		printf(" other=%llu", (unsigned long long)t->other);
	printf("\n");
}

static void print_hist_ms(const char *title, const hist *h)
{
	printf("%s: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f ms (%llu samples)\n", title,
	       ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)), ms(hist_quantile(h, 0.99)),
	       ms(hist_quantile(h, 0.999)), ms(h->max), (unsigned long long)h->n);
}

static void human_setup(const bench_run *r)
{
	const bench_opts *o = r->o;
	printf("audiogw-bench: preset %s, %s, %u connections (%d load processes, %d sources), "
	       "rooms of %u, %u speakers/room at %g frames/s, %u-byte payload, ramp %g/s\n",
	       o->preset, o->url, o->n, o->procs, o->nsrc, o->room_size, o->speakers_per_room,
	       o->rate, o->payload, o->ramp);
}

static void human_connect(const bench_run *r, const derived *d)
{
	const bench_res *t = &r->total;
	printf("connections: %llu ok, %llu failed at the first attempt, %llu never tried or "
	       "unresolved; ramp %.2f s; handshakes %.0f/s (first attempts, %.2f s)\n",
	       (unsigned long long)t->init_ok, (unsigned long long)t->init_fail,
	       (unsigned long long)(t->conns - t->init_ok - t->init_fail), d->ramp_s,
	       d->hs_rate, d->hs_span_s);
	printf("handshakes: %llu ok, %llu failed, %llu timeouts, %llu without accept header\n",
	       (unsigned long long)t->hs_ok, (unsigned long long)t->hs_fail,
	       (unsigned long long)t->hs_timeout, (unsigned long long)t->bad_accept);
	print_hist_ms("handshake time", &t->hs);
	print_kv("handshake failures by HTTP status (0 = no answer)", &t->hs_status, 0);
	print_kv("connect errors", &t->conn_errno, 1);
}

static void human_frames(const bench_run *r, const derived *d)
{
	const bench_res *t = &r->total;
	printf("window %.2f s: open %llu at start, %llu at end; frames sent %llu, expected %llu, "
	       "received %llu, delivery ",
	       d->window_s, (unsigned long long)t->open_ws, (unsigned long long)t->open_we,
	       (unsigned long long)t->sent_window, (unsigned long long)t->expected,
	       (unsigned long long)t->received);
	if (d->has_delivery)
		printf("%.4f%% (lost %lld)\n", d->delivery * 100,
		       (long long)t->expected - (long long)t->received);
	else
		printf("n/a\n");
	printf("sender: %llu sent in all, %llu skipped (not connected), %llu dropped (client "
	       "backlog), %llu late-skipped; received outside the window %llu, before the receiver's "
	       "welcome %llu; errors: self %llu, wrong room %llu, bad %llu\n",
	       (unsigned long long)t->sent_total, (unsigned long long)t->send_skipped,
	       (unsigned long long)t->send_dropped, (unsigned long long)t->send_lag,
	       (unsigned long long)t->received_other, (unsigned long long)t->received_early,
	       (unsigned long long)t->self_echo,
	       (unsigned long long)t->wrong_room, (unsigned long long)t->bad_frames);
	print_hist_ms("relay latency", &t->lat);
}

static void human_closes(const bench_run *r)
{
	const bench_res *t = &r->total;
	print_kv("closes by code", &t->closes, 0);
	printf("lost without close %llu; in the window: closed %llu, lost %llu, refused %llu; "
	       "drain messages %llu, error messages %llu (rate_limited %llu), protocol errors %llu\n",
	       (unsigned long long)t->lost, (unsigned long long)t->closes_window,
	       (unsigned long long)t->lost_window, (unsigned long long)t->refused_window,
	       (unsigned long long)t->drains, (unsigned long long)t->error_msgs,
	       (unsigned long long)t->rate_limited, (unsigned long long)t->ws_errors);
	if (t->reconnects)
		print_hist_ms("reconnect time (drop to welcome)", &t->reconn);
	printf("reconnected %llu; not connected at the window end %llu\n",
	       (unsigned long long)t->reconnects,
	       (unsigned long long)(t->conns - t->open_we));
	printf("per worker (open at window start / dropped in window):");
	for (int i = 0; i < BENCH_MAX_WORKERS; i++)
		if (t->worker_open[i] || t->worker_dropped[i])
			printf(" w%d %u/%u", i, t->worker_open[i], t->worker_dropped[i]);
	printf("\n");
}

static void human_action(const bench_run *r)
{
	if (r->o->action == ACT_NONE)
		return;
	printf("action %s at %.2f s into the window: pid %d slot %d%s\n", action_name(r->o->action),
	       r->action_t, (int)r->action_pid, r->action_slot,
	       r->action_done > 0 ? "" : r->action_done < 0 ? " (FAILED)" : " (not done)");
}

static void human_gateway(const bench_run *r, const derived *d)
{
	if (!d->gw) {
		printf("gateway: not measured (no --pid)\n");
		return;
	}
	printf("gateway (pid %d, %d processes): ramp CPU %.2f s = %.1f us per handshake; window CPU "
	       "%.2f s over %.2f s (%.1f%% of a core)\n",
	       (int)r->o->pid, r->gw_end.nproc, d->gw_cpu_ramp, d->us_per_hs, d->gw_cpu_window,
	       d->gw_span_s, d->gw_share * 100);
	printf("gateway CPU by process in the window (new processes: since they started):");
	for (int i = 0; i < r->gw_end.nper; i++) {
		double c = proc_window_cpu(r, i);
		printf(" %s%d pid %d %.2f s%s", r->gw_end.per[i].slot >= 0 ? "w" : "p",
		       r->gw_end.per[i].slot >= 0 ? r->gw_end.per[i].slot : i, (int)r->gw_end.per[i].pid,
		       c >= 0 ? c : r->gw_end.per[i].cpu_s, c >= 0 ? "" : " (new)");
	}
	printf("\ngateway idle CPU before the ramp: %.1f%% of a core%s\n", d->idle_share * 100,
	       d->idle_share > 0.05 ? " (WARNING: busy while idle, CPU figures are inflated)" : "");
	if (d->gw_frames)
		printf("gateway CPU per delivered frame %.3f us; %.0f deliveries per gateway CPU-second\n",
		       d->us_per_frame, d->per_cpu_s);
	printf("gateway RSS: %.1f MiB before, %.1f MiB after the ramp, %.1f MiB at the window end",
	       r->gw_before.rss_kb / 1024.0, r->gw_ws.rss_kb / 1024.0, r->gw_we.rss_kb / 1024.0);
	if (d->gw_mem)
		printf("; %.0f bytes per connection", d->rss_per_conn);
	if (d->gw_pss)
		printf(" (PSS %.0f bytes)", d->pss_per_conn);
	printf("\n");
}

static void human_audit(const bench_run *r)
{
	const bench_audit *a = &r->audit;
	if (!r->o->audit_db[0])
		return;
	if (!a->checked) {
		printf("audit journal: not read: %s\n", a->error);
		return;
	}
	printf("audit journal: %llu connect rows for %llu handshakes answered 101, %llu disconnect "
	       "rows, %llu sessions without their pair (read after %.1f s)\n",
	       (unsigned long long)a->connects, (unsigned long long)a->handshakes,
	       (unsigned long long)a->disconnects, (unsigned long long)a->unpaired, a->waited_s);
}

void report_human(const bench_run *r)
{
	derived d;
	derive(r, &d);
	human_setup(r);
	human_connect(r, &d);
	human_frames(r, &d);
	human_closes(r);
	human_action(r);
	human_audit(r);
	human_gateway(r, &d);
	printf("load generator CPU in the window: %.2f s%s\n", d.load_cpu_window,
	       r->children_failed ? "; WARNING: a load process failed" : "");
	fflush(stdout);
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *jnum(double v, int ok)
{
	return ok ? json_real(v) : json_null();
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *jkv(const kv_table *t, int errnos)
{
	json_t *o = json_object();
	for (uint32_t i = 0; i < t->used; i++) {
		char k[32], b[16];
		if (errnos)
			snprintf(k, sizeof k, "%s", errno_name(t->e[i].key, b, sizeof b));
		else
			snprintf(k, sizeof k, "%d", t->e[i].key);
		json_object_set_new(o, k, jint(t->e[i].n));
	}
	if (t->other)
		json_object_set_new(o, "other", jint(t->other));
	return o;
}

static json_t *jhist_ms(const hist *h)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
		"p50", json_real(ms(hist_quantile(h, 0.5))), "p90", json_real(ms(hist_quantile(h, 0.9))),
		"p99", json_real(ms(hist_quantile(h, 0.99))), "p99_9", json_real(ms(hist_quantile(h, 0.999))),
		"max", json_real(ms(h->max)), "mean", json_real(h->n ? ms(h->sum / h->n) : 0),
		"samples", (json_int_t)h->n);
}

static json_t *jsetup(const bench_run *r)
{
	const bench_opts *o = r->o;
	return json_pack("{s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:f, s:I, s:f, s:f, s:f, s:f, s:s, s:f}",
		"preset", o->preset, "url", o->url, "connections", (json_int_t)o->n,
		"procs", o->procs, "sources", o->nsrc, "room_size", (json_int_t)o->room_size,
		"speakers_per_room", (json_int_t)o->speakers_per_room, "rate", o->rate,
		"payload_bytes", (json_int_t)o->payload, "ramp_per_s", o->ramp, "warmup_s", o->warmup,
		"duration_s", o->duration, "grace_s", o->grace, "action", action_name(o->action),
		"action_at_s", o->action_at);
}

static json_t *jconnect(const bench_run *r, const derived *d)
{
	const bench_res *t = &r->total;
	return json_pack("{s:o, s:o, s:o, s:f, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"ok", jint(t->init_ok), "failed", jint(t->init_fail),
		"unresolved", jint(t->conns - t->init_ok - t->init_fail), "ramp_s", d->ramp_s,
		"handshakes_per_s", d->hs_rate, "handshake_span_s", d->hs_span_s,
		"handshakes_ok", jint(t->hs_ok), "handshake_failures", jint(t->hs_fail),
		"timeouts", jint(t->hs_timeout), "bad_accept", jint(t->bad_accept),
		"handshake_ms", jhist_ms(&t->hs), "http_status", jkv(&t->hs_status, 0),
		"connect_errors", jkv(&t->conn_errno, 1));
}

static json_t *jframes(const bench_run *r, const derived *d)
{
	const bench_res *t = &r->total;
	return json_pack("{s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
	                 " s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"window_s", d->window_s, "open_at_window_start", jint(t->open_ws),
		"open_at_window_end", jint(t->open_we), "sent", jint(t->sent_window),
		"expected", jint(t->expected), "received", jint(t->received),
		"delivery_ratio", jnum(d->delivery, d->has_delivery),
		"lost", json_integer((json_int_t)t->expected - (json_int_t)t->received),
		"sent_total", jint(t->sent_total), "skipped", jint(t->send_skipped),
		"client_dropped", jint(t->send_dropped), "late_skipped", jint(t->send_lag),
		"received_outside_window", jint(t->received_other),
		"received_before_welcome", jint(t->received_early), "self_echo", jint(t->self_echo),
		"wrong_room", jint(t->wrong_room), "bad", jint(t->bad_frames));
}

static json_t *jworkers(const bench_res *t)
{
	json_t *a = json_array();
	for (int i = 0; i < BENCH_MAX_WORKERS; i++)
		if (t->worker_open[i] || t->worker_dropped[i])
			json_array_append_new(a, json_pack("{s:i, s:I, s:I}", "worker", i,
				"open_at_window_start", (json_int_t)t->worker_open[i],
				"dropped_in_window", (json_int_t)t->worker_dropped[i]));
	return a;
}

static json_t *jcloses(const bench_run *r)
{
	const bench_res *t = &r->total;
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"by_code", jkv(&t->closes, 0), "lost_without_close", jint(t->lost),
		"closed_in_window", jint(t->closes_window), "lost_in_window", jint(t->lost_window),
		"refused_in_window", jint(t->refused_window), "drain_messages", jint(t->drains),
		"error_messages", jint(t->error_msgs), "rate_limited", jint(t->rate_limited),
		"protocol_errors", jint(t->ws_errors), "reconnects", jint(t->reconnects),
		"reconnect_ms", jhist_ms(&t->reconn),
		"not_connected_at_window_end", jint(t->conns - t->open_we),
		"workers", jworkers(t));
}

static json_t *jprocs(const bench_run *r)
{
	json_t *a = json_array();
	for (int i = 0; i < r->gw_end.nper; i++) {
		double c = proc_window_cpu(r, i);
		json_array_append_new(a, json_pack("{s:i, s:i, s:f, s:b, s:I}", "pid",
			(int)r->gw_end.per[i].pid, "slot", r->gw_end.per[i].slot,
			"cpu_s_window", c >= 0 ? c : r->gw_end.per[i].cpu_s, "new", c < 0,
			"rss_kb", (json_int_t)r->gw_end.per[i].rss_kb));
	}
	return a;
}

static json_t *jgateway(const bench_run *r, const derived *d)
{
	return json_pack("{s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
	                 " s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"pid", (int)r->o->pid, "processes", r->gw_end.nproc,
		"cpu_core_share_idle", jnum(d->idle_share, d->gw), "by_process", jprocs(r),
		"cpu_s_ramp", jnum(d->gw_cpu_ramp, d->gw), "cpu_us_per_handshake", jnum(d->us_per_hs, d->gw),
		"cpu_s_window", jnum(d->gw_cpu_window, d->gw), "cpu_core_share_window", jnum(d->gw_share, d->gw),
		"cpu_us_per_delivered_frame", jnum(d->us_per_frame, d->gw_frames),
		"deliveries_per_cpu_s", jnum(d->per_cpu_s, d->gw_frames),
		"rss_kb_before", jint(r->gw_before.rss_kb), "rss_kb_after_ramp", jint(r->gw_ws.rss_kb),
		"rss_kb_window_end", jint(r->gw_we.rss_kb),
		"rss_bytes_per_connection", jnum(d->rss_per_conn, d->gw_mem),
		"pss_kb_before", jnum((double)r->gw_before.pss_kb, d->gw_pss),
		"pss_kb_after_ramp", jnum((double)r->gw_ws.pss_kb, d->gw_pss),
		"pss_bytes_per_connection", jnum(d->pss_per_conn, d->gw_pss),
		"measured", json_boolean(d->gw));
}

static json_t *jaction(const bench_run *r)
{
	return json_pack("{s:s, s:b, s:f, s:i, s:i}", "kind", action_name(r->o->action),
		"done", r->action_done > 0, "at_s", r->action_t, "pid", (int)r->action_pid,
		"slot", r->action_slot);
}

static json_t *jaudit(const bench_run *r)
{
	const bench_audit *a = &r->audit;
	if (!r->o->audit_db[0])
		return json_null();
	if (!a->checked)
		return json_pack("{s:b, s:s}", "checked", 0, "error", a->error);
	return json_pack("{s:b, s:o, s:o, s:o, s:o, s:f}", "checked", 1,
		"handshakes", jint(a->handshakes), "connects", jint(a->connects),
		"disconnects", jint(a->disconnects), "unpaired", jint(a->unpaired),
		"waited_s", a->waited_s);
}

void report_json(const bench_run *r)
{
	derived d;
	derive(r, &d);
	json_t *o = json_object();
	json_object_set_new(o, "setup", jsetup(r));
	json_object_set_new(o, "connect", jconnect(r, &d));
	json_object_set_new(o, "frames", jframes(r, &d));
	json_object_set_new(o, "latency_ms", jhist_ms(&r->total.lat));
	json_object_set_new(o, "closes", jcloses(r));
	json_object_set_new(o, "action", jaction(r));
	json_object_set_new(o, "audit", jaudit(r));
	json_object_set_new(o, "gateway", jgateway(r, &d));
	json_object_set_new(o, "load", json_pack("{s:f, s:b}", "cpu_s_window", d.load_cpu_window,
		"process_failed", r->children_failed > 0));
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}
