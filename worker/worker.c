/* worker.c: a worker process's life. The supervisor fork+execs it with
 *   fd 3 = shared area, fd 4 = config text, fd 5.. = listening sockets
 * and "--slot S --generation G --shm-index I --listen-fds N -c FILE".
 * The worker owns a libuv loop that lws runs on as a foreign loop; the
 * listening sockets are uv_poll_t handles: on readable it accepts until
 * EAGAIN (another worker may win the race) and adopts each connection into
 * lws (lws 4.1.6 cannot listen on an inherited socket itself). */
#include "worker/worker.h"
#include "common/audit.h"
#include "common/child.h"
#include "common/log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKER_FD_SHM 3
#define WORKER_FD_LISTEN 5
#define ACCEPT_BATCH 256        /* bounded work per wakeup, fairness with traffic */
#define SHUTDOWN_POLL_MS 10
#define SWEEP_MS 1000
#define AUDIT_EXIT_FLUSH_MS 3000
#define AUDIT_FLUSH_MS 20
#define READY_CHECK_MS 10
#define READY_WAIT_MAX_MS 3000

static shm_counters *latency_counters;

/* Relay latency of a sampled frame, receive to last send (SPEC 6.3). */
static void record_latency(int64_t us)
{
	shm_counters *c = latency_counters;
	int b = 0;
	while (b < SHM_LATENCY_BUCKETS - 1 && us > shm_latency_bounds_us[b])
		b++;
	atomic_fetch_add_explicit(&c->latency_buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->latency_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->latency_sum_us, (uint64_t)(us > 0 ? us : 0), memory_order_relaxed);
}

static int parse_args(worker *w, int argc, char **argv, const char **file)
{
	*file = NULL;
	w->slot = w->generation = w->shm_index = w->n_listen = -1;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--slot")) w->slot = atoi(v);
		else if (!strcmp(k, "--generation")) w->generation = atoi(v);
		else if (!strcmp(k, "--shm-index")) w->shm_index = atoi(v);
		else if (!strcmp(k, "--listen-fds")) w->n_listen = atoi(v);
		else if (!strcmp(k, "-c")) *file = v;
		else return -1;
	}
	return w->slot < 0 || w->generation < 0 || w->shm_index < 0 || w->shm_index >= SHM_MAX_PROCS ||
	       w->n_listen < 1 || w->n_listen > CFG_MAX_LISTEN || !*file ? -1 : 0;
}


static void on_listen_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	worker *w = h->loop->data;
	int lfd = *(int *)h->data;
	if (status < 0 || w->stopping)
		return;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("accept", "out of file descriptors: %s", strerror(errno));
			return;  /* EAGAIN: another worker took it, or the queue is empty */
		}
		atomic_fetch_add_explicit(&w->me->c.tcp_accepted_total, 1, memory_order_relaxed);
		server_adopt(w, fd);
	}
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

/* Ready (for the supervisor, for a reload) once the bus reaches every peer:
 * until then frames to members on other workers could be lost. A peer that
 * never answers does not hold us back longer than READY_WAIT_MAX_MS. */
static void on_ready_check(uv_timer_t *t)
{
	worker *w = t->loop->data;
	int64_t waited = (int64_t)uv_now(&w->loop) - w->started_ms;
	if (!w->stopping && !bus_connected(w) && waited < READY_WAIT_MAX_MS)
		return;
	uv_close((uv_handle_t *)t, on_handle_closed);
	if (w->stopping)
		return;
	atomic_store(&w->me->state, SHM_PROC_READY);
	log_info("worker_ready", "generation %d pid %d%s", w->generation, (int)getpid(),
	         bus_connected(w) ? "" : " (bus mesh incomplete)");
	int cmd = atomic_exchange(&w->me->command, SHM_CMD_NONE);
	if (cmd != SHM_CMD_NONE)  /* started during a host drain */
		drain_begin(w, cmd);
}

/* Audit events leave within AUDIT_FLUSH_MS: the audit sink has no timer of
 * its own, and a worker killed with SIGKILL loses what it still holds. */
static void on_audit_flush(uv_timer_t *t)
{
	event_publish_counters(t->loop->data);
}

int worker_turn_due(worker *w, uv_timer_t *t, uv_timer_cb cb, int64_t last_ms, int64_t every_ms)
{
	int64_t wait = every_ms - ((int64_t)uv_now(&w->loop) - last_ms);
	if (wait <= 0)
		return 1;
	if (!uv_is_active((uv_handle_t *)t))
		uv_timer_start(t, cb, (uint64_t)wait, 0);
	return 0;
}

static void on_sweep(uv_timer_t *t)
{
	session_sweep(t->loop->data);
	send_pace(t->loop->data);
}

static void on_shutdown_poll(uv_timer_t *t)
{
	worker *w = t->loop->data;
	if (w->ctx) {
		server_destroy_step(w);
		return;
	}
	uv_close((uv_handle_t *)t, on_handle_closed);
}

void worker_stop_accepting(worker *w)
{
	for (int i = 0; i < w->n_listen; i++)
		if (!uv_is_closing((uv_handle_t *)&w->listen_polls[i]))
			uv_close((uv_handle_t *)&w->listen_polls[i], on_handle_closed);
	atomic_store(&w->me->state, SHM_PROC_DRAINING);
}

/* The end: every session is gone (drained) or is dropped now; lws is torn
 * down and the loop ends when the last handle is closed. */
void worker_stop(worker *w)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	worker_stop_accepting(w);
	uv_close((uv_handle_t *)&w->sig_term, on_handle_closed);
	uv_close((uv_handle_t *)&w->sig_int, on_handle_closed);
	uv_close((uv_handle_t *)&w->sig_usr1, on_handle_closed);
	uv_close((uv_handle_t *)&w->sig_usr2, on_handle_closed);
	signal(SIGINT, SIG_IGN);   /* already on the way out: a late signal is no crash */
	signal(SIGTERM, SIG_IGN);
	if (w->drain_active)
		uv_close((uv_handle_t *)&w->drain_timer, on_handle_closed);
	send_stop(w);
	bus_stop(w);
	uv_close((uv_handle_t *)&w->sweep, on_handle_closed);
	uv_close((uv_handle_t *)&w->audit_timer, on_handle_closed);
	server_destroy_step(w);
	uv_timer_init(&w->loop, &w->shutdown_timer);
	uv_timer_start(&w->shutdown_timer, on_shutdown_poll, SHUTDOWN_POLL_MS, SHUTDOWN_POLL_MS);
}

/* SIGTERM: drain then exit; SIGINT: the same at once; SIGUSR2: the
 * supervisor's command in the shared area; SIGUSR1: reopen the log. */
static void on_signal(uv_signal_t *h, int signum)
{
	worker *w = h->loop->data;
	int cmd;
	switch (signum) {
	case SIGUSR1:
		log_reopen();
		return;
	case SIGTERM:
		drain_begin(w, SHM_CMD_SHUTDOWN);
		return;
	case SIGINT:
		drain_begin(w, SHM_CMD_SHUTDOWN_NOW);
		return;
	case SIGUSR2:
		cmd = atomic_exchange(&w->me->command, SHM_CMD_NONE);
		if (cmd != SHM_CMD_NONE)
			drain_begin(w, cmd);
		return;
	}
}

/* Accepted sockets inherit TCP_NODELAY and SO_SNDBUF from their listener:
 * set here, they cost no system call per connection. The listener is
 * shared with the other generation during a reload; the newest sets it. */
static void set_accepted_options(worker *w, int fd)
{
	int one = 1, bytes = (int)w->cfg.send_buffer;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (bytes > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

static int watch_listeners(worker *w)
{
	for (int i = 0; i < w->n_listen; i++) {
		w->listen_fds[i] = WORKER_FD_LISTEN + i;
		set_accepted_options(w, w->listen_fds[i]);
		w->listen_polls[i].data = &w->listen_fds[i];
		if (uv_poll_init(&w->loop, &w->listen_polls[i], w->listen_fds[i]) < 0 ||
		    uv_poll_start(&w->listen_polls[i], UV_READABLE, on_listen_readable) < 0)
			return -1;
	}
	return 0;
}

static void watch_signals(worker *w)
{
	uv_signal_init(&w->loop, &w->sig_term);
	uv_signal_init(&w->loop, &w->sig_int);
	uv_signal_init(&w->loop, &w->sig_usr1);
	uv_signal_init(&w->loop, &w->sig_usr2);
	uv_signal_start(&w->sig_term, on_signal, SIGTERM);
	uv_signal_start(&w->sig_int, on_signal, SIGINT);
	uv_signal_start(&w->sig_usr1, on_signal, SIGUSR1);
	uv_signal_start(&w->sig_usr2, on_signal, SIGUSR2);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);  /* reload is the supervisor's business */
}

int worker_main(int argc, char **argv)
{
	static worker w;
	const char *file;
	if (parse_args(&w, argc, argv, &file) < 0) {
		fprintf(stderr, "audiogwd: --worker is internal: the supervisor starts workers\n");
		return 2;
	}
	if (child_load_config(&w.cfg, file, "worker") < 0)
		return 1;
	if (log_open(w.cfg.log_file, w.cfg.log_level, w.slot) < 0)
		log_open(NULL, w.cfg.log_level, w.slot);
	if (!(w.shm = shm_attach(WORKER_FD_SHM))) {
		log_error("startup", "the shared area (fd %d) is missing or foreign", WORKER_FD_SHM);
		return 1;
	}
	w.me = &w.shm->procs[w.shm_index];
	w.reg = shm_registry(w.shm);
	latency_counters = &w.me->c;
	w.keys = (token_keys){ w.cfg.hs256_secret_len ? w.cfg.hs256_secret : NULL,
	                       w.cfg.hs256_secret_len, w.cfg.has_ed25519 ? w.cfg.ed25519_pk : NULL };
	msgbuf_pool_init((size_t)w.cfg.max_frame_bytes, record_latency);
	/* virtual: only the pages of indexes this worker uses are touched */
	w.by_reg = calloc((size_t)w.reg->capacity, sizeof *w.by_reg);
	tb_init(&w.handshakes, w.cfg.handshakes_per_second, w.cfg.handshakes_per_second, 0);
	if (child_drop_privileges(w.cfg.user) < 0)
		return 1;
	uv_loop_init(&w.loop);
	uv_loop_configure(&w.loop, UV_METRICS_IDLE_TIME);  /* send_pace() */
	w.loop.data = &w;
	watch_signals(&w);
	char audit_url[CFG_PATH_MAX + 32];
	snprintf(audit_url, sizeof audit_url, "ipc://%s/audit.ipc", w.cfg.run_dir);
	if (!(w.audit = audit_open(audit_url, AUDIT_BACKLOG_DEFAULT)))
		log_error("startup", "cannot open the audit sink %s: events are not recorded", audit_url);
	if (!w.by_reg || sodium_init() < 0 || bus_start(&w) < 0 || server_create(&w) < 0 ||
	    watch_listeners(&w) < 0)
		return 1;
	send_start(&w);
	uv_timer_init(&w.loop, &w.sweep);
	uv_timer_start(&w.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	uv_timer_init(&w.loop, &w.audit_timer);
	uv_timer_start(&w.audit_timer, on_audit_flush, AUDIT_FLUSH_MS, AUDIT_FLUSH_MS);
	w.started_ms = (int64_t)uv_now(&w.loop);
	uv_timer_init(&w.loop, &w.ready_check);
	uv_timer_start(&w.ready_check, on_ready_check, 0, READY_CHECK_MS);
	uv_run(&w.loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&w.loop);
	if (w.audit && audit_flush(w.audit, AUDIT_EXIT_FLUSH_MS))
		log_warn("worker_exit", "audit events still pending at exit: the journal is not there");
	event_publish_counters(&w);
	log_info("worker_exit", "stopped%s", rc ? " (loop not clean)" : "");
	return 0;
}
