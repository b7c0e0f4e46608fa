/* fleet.c: the worker processes. Each worker is started with fork + exec of
 * the audiogwd binary on disk (NNG is not fork-safe, and a fresh image lets a
 * reload pick up a new binary), inheriting the shared area, the validated
 * config and its slot's listening sockets at fixed descriptor numbers:
 *   3 = shared area, 4 = config text, 5.. = one listening socket per address.
 * A worker that dies is restarted in its slot at once; one that keeps dying
 * soon after its start is restarted with exponential backoff. */
#include "supervisor/supervisor.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLEET_FD_SHM 3
#define FLEET_FD_CONFIG 4
#define FLEET_FD_LISTEN 5
#define FLEET_HIGH_FD 1000          /* staging area for the fd shuffle in the child */
#define FLEET_QUICK_DEATH_MS 5000   /* dying sooner than this counts as a crash loop */
#define FLEET_BACKOFF_MAX_MS 30000

static void fleet_spawn(supervisor *s, worker_proc *w);

/* In the child, between fork and exec (async-signal-safe calls only), for
 * every process the supervisor starts: die with the supervisor, unblock the
 * signals it blocked, then put fds[0..n) at first_fd, first_fd + 1, ...
 * (staged high first, so that no target overwrites a source). */
void sup_exec_child(const supervisor *s, char *const argv[], pid_t parent, const int *fds, int n,
                    int first_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(111);  /* the supervisor died before prctl took effect */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	int staged[SUP_CHILD_FDS_MAX];
	if (n > SUP_CHILD_FDS_MAX)
		_exit(112);
	for (int i = 0; i < n; i++)
		if ((staged[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, FLEET_HIGH_FD)) < 0)
			_exit(112);
	for (int i = 0; i < n; i++)
		if (dup2(staged[i], first_fd + i) < 0)  /* dup2 clears CLOEXEC */
			_exit(113);
	execv(s->exe, argv);
	_exit(127);
}

static void fleet_exec_child(const supervisor *s, const worker_proc *w, char *const argv[],
                             pid_t parent)
{
	int fds[2 + CFG_MAX_LISTEN], n = 0;
	fds[n++] = s->shm_fd;
	fds[n++] = s->cfg_fd;
	for (int a = 0; a < s->listeners.n_addrs; a++)
		fds[n++] = s->listeners.fds[a][w->slot];
	sup_exec_child(s, argv, parent, fds, n, FLEET_FD_SHM);
}

static void fleet_spawn(supervisor *s, worker_proc *w)
{
	char slot[16], gen[16], idx[16], nlisten[16];
	w->shm_index = shm_proc_claim(s->shm, w->slot, w->generation);
	if (w->shm_index < 0) {
		log_error("worker_start", "slot %d: no free entry in the shared area", w->slot);
		return;
	}
	snprintf(slot, sizeof slot, "%d", w->slot);
	snprintf(gen, sizeof gen, "%d", w->generation);
	snprintf(idx, sizeof idx, "%d", w->shm_index);
	snprintf(nlisten, sizeof nlisten, "%d", s->listeners.n_addrs);
	char *const argv[] = { s->exe, "--worker", "--slot", slot, "--generation", gen,
	                       "--shm-index", idx, "--listen-fds", nlisten,
	                       "-c", (char *)s->cfg.file, NULL };
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("worker_start", "slot %d: fork: %s", w->slot, strerror(errno));
		shm_proc_release(s->shm, w->shm_index);
		return;
	}
	if (pid == 0)
		fleet_exec_child(s, w, argv, parent);
	w->pid = pid;
	w->started_ms = clock_mono_ms();
	atomic_store(&s->shm->procs[w->shm_index].pid, pid);
	if (s->draining)  /* a worker restarted during a host drain drains too */
		atomic_store(&s->shm->procs[w->shm_index].command, SHM_CMD_DRAIN_HOST);
	log_info("worker_start", "slot %d pid %d generation %d", w->slot, (int)pid, w->generation);
	char detail[80];
	snprintf(detail, sizeof detail, "{\"pid\":%d,\"generation\":%d}", (int)pid, w->generation);
	sup_audit_worker(s, "worker_start", w->slot, NULL, detail);
}

static void fleet_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	worker_proc *w = arg;
	if (!w->sup->stopping && w->pid == 0)
		fleet_spawn(w->sup, w);
}

/* Backoff: the first death is restarted at once; consecutive quick deaths
 * wait 100 ms, 200 ms, 400 ms ... up to FLEET_BACKOFF_MAX_MS. */
static int64_t fleet_backoff_ms(worker_proc *w, int64_t lived_ms)
{
	w->crashes = lived_ms < FLEET_QUICK_DEATH_MS ? w->crashes + 1 : 1;
	if (w->crashes <= 1)
		return 0;
	int shift = w->crashes - 2 > 10 ? 10 : w->crashes - 2;
	int64_t ms = 100LL << shift;
	return ms > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS : ms;
}

static void fleet_describe_status(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
}

static void fleet_worker_exited(supervisor *s, worker_proc *w, int status)
{
	char how[96];
	int64_t lived = clock_mono_ms() - w->started_ms;
	fleet_describe_status(status, how, sizeof how);
	int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	log_msg(s->stopping || w->retiring || clean ? LOG_INFO : LOG_WARN, "worker_exit", NULL,
	        "slot %d pid %d %s after %lld ms", w->slot, (int)w->pid, how, (long long)lived);
	char detail[160];
	snprintf(detail, sizeof detail, "{\"pid\":%d,\"generation\":%d,\"%s\":%d,\"lived_ms\":%lld}",
	         (int)w->pid, w->generation, WIFSIGNALED(status) ? "signal" : "status",
	         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), (long long)lived);
	sup_audit_worker(s, "worker_exit", w->slot, clean ? "exit" : "crash", detail);
	int lost = sup_bus_worker_gone(s, w->shm_index);
	if (lost)
		log_warn("worker_exit", "slot %d: %d sessions lost with the worker", w->slot, lost);
	metrics_retire(s, w->slot, w->shm_index);
	shm_proc_release(s->shm, w->shm_index);
	w->pid = 0;
	if (w->retiring) {
		fleet_retired(s);
		return;
	}
	if (s->stopping)
		return;
	s->worker_restarts++;
	int64_t delay = fleet_backoff_ms(w, lived);
	if (delay > 0)
		log_warn("worker_restart", "slot %d keeps crashing (%d in a row): restart in %lld ms",
		         w->slot, w->crashes, (long long)delay);
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	evtimer_add(w->restart_timer, &tv);
}

static worker_proc *fleet_find(supervisor *s, pid_t pid)
{
	for (int g = 0; g < 2; g++)
		for (int i = 0; i < s->n_gen[g]; i++)
			if (s->gens[g][i].pid == pid)
				return &s->gens[g][i];
	return NULL;
}

void fleet_reap(supervisor *s)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		worker_proc *w = fleet_find(s, pid);
		if (w)
			fleet_worker_exited(s, w, status);
		else if (!sup_downstream_reaped(s, pid, status))
			journal_reaped(s, pid, status);
	}
}

/* Starts generation s->generation + 1 in the other array: from now on the
 * current array is the new one, the old one is retiring (its workers are
 * not restarted when they exit). */
int fleet_start_generation(supervisor *s)
{
	int next = !s->cur;
	for (int i = 0; i < s->n_gen[next]; i++)
		if (s->gens[next][i].pid > 0)
			return -1;  /* the generation before the last is still draining */
	for (int i = 0; i < s->n_gen[s->cur]; i++)
		s->gens[s->cur][i].retiring = 1;
	s->cur = next;
	s->generation++;
	s->n_gen[next] = s->cfg.workers;
	if (s->n_slots_seen < s->cfg.workers)
		s->n_slots_seen = s->cfg.workers;
	int started = 0;
	for (int i = 0; i < s->cfg.workers; i++) {
		worker_proc *w = &s->gens[next][i];
		if (!w->restart_timer)
			w->restart_timer = evtimer_new(s->base, fleet_restart_cb, w);
		evtimer_del(w->restart_timer);
		w->sup = s;
		w->slot = i;
		w->generation = s->generation;
		w->retiring = 0;
		w->crashes = 0;
		fleet_spawn(s, w);
		started += w->pid > 0;
	}
	return started == s->cfg.workers ? 0 : -1;
}

/* Blocks until every worker of the current generation is ready (the
 * shared area says so) or timeout_ms pass; reaps meanwhile. Returns the
 * number not ready. Reloads are rare and short: the supervisor's loop may
 * wait that long. */
int fleet_wait_ready(supervisor *s, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	for (;;) {
		int waiting = 0;
		fleet_reap(s);
		for (int i = 0; i < s->n_gen[s->cur]; i++) {
			worker_proc *w = &s->gens[s->cur][i];
			waiting += w->pid <= 0 ||
			           atomic_load(&s->shm->procs[w->shm_index].state) != SHM_PROC_READY;
		}
		if (!waiting || clock_mono_ms() >= deadline)
			return waiting;
		usleep(10000);
	}
}

static void fleet_tell(supervisor *s, worker_proc *w, int command)
{
	if (w->pid <= 0)
		return;
	atomic_store(&s->shm->procs[w->shm_index].command, command);
	kill(w->pid, SIGUSR2);
}

void fleet_command(supervisor *s, int which, int command)
{
	for (int g = 0; g < 2; g++) {
		if ((which == FLEET_CURRENT && g != s->cur) || (which == FLEET_RETIRING && g == s->cur))
			continue;
		for (int i = 0; i < s->n_gen[g]; i++)
			fleet_tell(s, &s->gens[g][i], command);
	}
}

void fleet_signal_all(supervisor *s, int sig)
{
	for (int g = 0; g < 2; g++)
		for (int i = 0; i < s->n_gen[g]; i++) {
			if (s->gens[g][i].pid > 0)
				kill(s->gens[g][i].pid, sig);
			if (s->gens[g][i].restart_timer)
				evtimer_del(s->gens[g][i].restart_timer);
		}
}

int fleet_count(const supervisor *s, int which)
{
	int n = 0;
	for (int g = 0; g < 2; g++) {
		if ((which == FLEET_CURRENT && g != s->cur) || (which == FLEET_RETIRING && g == s->cur))
			continue;
		for (int i = 0; i < s->n_gen[g]; i++)
			n += s->gens[g][i].pid > 0;
	}
	return n;
}

int fleet_running(const supervisor *s)
{
	return fleet_count(s, FLEET_ALL);
}

void fleet_free(supervisor *s)
{
	for (int g = 0; g < 2; g++)
		for (int i = 0; i < SUP_MAX_WORKERS; i++)
			if (s->gens[g][i].restart_timer)
				event_free(s->gens[g][i].restart_timer);
}
