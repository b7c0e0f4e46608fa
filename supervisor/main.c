/* main.c: audiogwd's entry point and the supervisor's life: command line,
 * config check (-t), startup (run_dir, pid file, listening sockets, shared
 * area, workers), the libevent loop and its signals, and shutdown.
 * Signal handlers only record what happened (libevent delivers them as
 * events); the loop acts on them here, in one place. */
#include "supervisor/supervisor.h"
#include "common/clock.h"
#include "common/log.h"
#include "downstream/downstream.h"
#include "journal/journal.h"
#include "worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/audiogwd/audiogwd.conf"
#define STOP_GRACE_MS 5000  /* after drain.timeout, leftover workers are killed */

static void usage(FILE *out)
{
	fprintf(out, "usage: audiogwd [-c FILE] [-t] [-f] [-V]\n"
	             "  -c FILE  config file (default " DEFAULT_CONFIG ")\n"
	             "  -t       check the config and exit\n"
	             "  -f       stay in the foreground, log to stderr\n"
	             "  -V       print the version\n");
}

static void print_errors(const cfg_errors *e)
{
	int kept = e->n < CFG_MAX_ERRORS ? e->n : CFG_MAX_ERRORS;
	for (int i = 0; i < kept; i++)
		fprintf(stderr, "%s\n", e->msg[i]);
	if (e->n > kept)
		fprintf(stderr, "(%d more errors)\n", e->n - kept);
}

/* Reads and validates the config; on success keeps its text for the workers. */
static int load_config(supervisor *s, const char *file)
{
	static cfg_errors errs;
	if (config_load(file, &s->cfg, &s->cfg_text, &s->cfg_len, &errs) < 0) {
		print_errors(&errs);
		return -1;
	}
	return 0;
}

#define HOUSEKEEPING_MS 250

/* Periodic chores: resume windows that passed. */
static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sup_bus_expire_resumable(arg);
}

static void on_stop_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	supervisor *s = arg;
	log_warn("shutdown", "%d workers still running after the drain timeout: killing them",
	         fleet_running(s));
	fleet_signal_all(s, SIGKILL);
	sup_downstream_signal(s, SIGKILL);
	if (s->journal_pid > 0 && !fleet_running(s))
		kill(s->journal_pid, SIGKILL);
}

/* Shutdown order: workers drain and exit (flushing their audit events),
 * then the supervisor's own events, then the journal, then the loop ends. */
static void stop_when_done(supervisor *s)
{
	if (fleet_running(s) || sup_downstream_stop(s))
		return;
	if (s->journal_pid > 0) {
		if (!s->journal_stopping) {
			s->journal_stopping = 1;
			sup_journal_stop(s);
		}
		return;
	}
	event_base_loopbreak(s->base);
}

static void begin_stop(supervisor *s, int sig)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	s->draining = 1;  /* /readyz 503 */
	int64_t wait_ms = (sig == SIGINT ? 0 : s->cfg.drain_timeout_ms) + STOP_GRACE_MS;
	log_info("shutdown", "%s: stopping %d workers", strsignal(sig), fleet_running(s));
	fleet_signal_all(s, sig);
	struct event *deadline = evtimer_new(s->base, on_stop_deadline, s);
	struct timeval tv = { wait_ms / 1000, (wait_ms % 1000) * 1000 };
	evtimer_add(deadline, &tv);
	stop_when_done(s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	supervisor *s = arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		begin_stop(s, (int)sig);
		break;
	case SIGCHLD:
		fleet_reap(s);
		if (s->stopping)
			stop_when_done(s);
		break;
	case SIGHUP:
		supervisor_reload(s);
		break;
	case SIGUSR1:
		if (log_reopen() < 0)
			log_error("log_reopen", "cannot reopen %s: %s", s->cfg.log_file, strerror(errno));
		fleet_signal_all(s, SIGUSR1);
		sup_downstream_signal(s, SIGUSR1);
		break;
	}
}

/* Room for every allowed connection plus sessions waiting for a resume. */
static int registry_capacity(const cfg *c)
{
	int64_t n = c->max_connections + c->max_connections / 4 + 1024;
	return n > 4000000 ? 4000000 : (int)n;
}

static int resolve_exe(supervisor *s)
{
	ssize_t n = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
	if (n <= 0)
		return -1;
	s->exe[n] = '\0';
	return 0;
}

static int supervisor_run(supervisor *s, int foreground)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD };
	struct event *sig_ev[sizeof sigs / sizeof sigs[0]] = { 0 };
	char err[512] = "";
	int rc = 1;

	if (!foreground && !isatty(2) && daemon(1, s->cfg.log_file[0] ? 0 : 1) < 0) {
		fprintf(stderr, "audiogwd: daemon: %s\n", strerror(errno));
		return 1;
	}
	if (log_open(s->cfg.log_file, s->cfg.log_level, -1) < 0) {
		fprintf(stderr, "audiogwd: cannot open log file %s: %s\n", s->cfg.log_file,
		        strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	s->runfile_fd = -1;
	if (resolve_exe(s) < 0 || runfile_acquire(s, err, sizeof err) < 0) {
		log_error("startup", "%s", s->exe[0] ? err : "cannot resolve /proc/self/exe");
		fprintf(stderr, "audiogwd: %s\n", s->exe[0] ? err : "cannot resolve /proc/self/exe");
		return 1;
	}
	if (listeners_open(&s->listeners, &s->cfg, err, sizeof err) < 0)
		goto err;
	if (!(s->shm = shm_create(registry_capacity(&s->cfg), &s->shm_fd)) ||
	    (s->cfg_fd = config_memfd(s->cfg_text, s->cfg_len)) < 0) {
		snprintf(err, sizeof err, "cannot create shared memory: %s", strerror(errno));
		goto err;
	}
	if (sup_audit_open(s, err, sizeof err) < 0)
		goto err;
	if (sup_bus_open(s) < 0) {
		snprintf(err, sizeof err, "cannot open the bus in %.400s", s->cfg.run_dir);
		goto err;
	}
	s->base = event_base_new();
	s->started_us = clock_wall_us();
	if (control_open(s) < 0 || admin_http_open(s) < 0) {
		snprintf(err, sizeof err, "cannot open the admin interfaces (see the log)");
		goto err;
	}
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sig_ev[i] = evsignal_new(s->base, sigs[i], on_signal, s);
		evsignal_add(sig_ev[i], NULL);
	}
	s->generation = 0;
	log_info("startup", "audiogwd %s: %d workers, %d listen addresses, run_dir %s",
	         AGW_VERSION, s->cfg.workers, s->cfg.n_listen, s->cfg.run_dir);
	struct event *chores = event_new(s->base, -1, EV_PERSIST, on_housekeeping, s);
	struct timeval every = { 0, HOUSEKEEPING_MS * 1000 };
	evtimer_add(chores, &every);
	sup_journal_start(s);
	if (sup_downstream_open(s) == 0)
		sup_downstream_start(s);
	if (fleet_start_generation(s) < 0) {
		snprintf(err, sizeof err, "cannot start workers");
		begin_stop(s, SIGTERM);
	}
	event_base_dispatch(s->base);
	rc = s->stopping && err[0] == '\0' ? 0 : rc;
	fleet_reap(s);
	event_free(chores);
	log_info("shutdown", "stopped");
	goto out;
err:
	log_error("startup", "%s", err);
	fprintf(stderr, "audiogwd: %s\n", err);
out:
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sig_ev[i])
			event_free(sig_ev[i]);
	fleet_free(s);
	sup_downstream_close(s);
	sup_audit_close(s);
	sup_bus_close(s);
	listeners_close(&s->listeners);
	runfile_release(s);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--journal") == 0)
		return journal_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--downstream") == 0)
		return downstream_main(argc, argv);

	static supervisor sup;
	const char *file = DEFAULT_CONFIG;
	int check = 0, foreground = 0, opt;
	while ((opt = getopt(argc, argv, "c:tfVh")) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 't': check = 1; break;
		case 'f': foreground = 1; break;
		case 'V': printf("audiogwd %s\n", AGW_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "audiogwd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "audiogwd: libsodium failed to initialise\n");
		return 1;
	}
	if (load_config(&sup, file) < 0)
		return 1;
	if (check) {
		printf("ok\n");
		return 0;
	}
	return supervisor_run(&sup, foreground);
}
