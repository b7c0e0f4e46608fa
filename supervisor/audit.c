/* audit.c (supervisor): its side of the audit journal. It checks the
 * database before anything starts, runs the journal process (fork + exec
 * like a worker, restarted with backoff when it dies, workers keep their
 * events meanwhile), records its own events through a non-blocking sink, and
 * at shutdown stops the journal last, after every worker flushed to it. */
#include "supervisor/supervisor.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/log.h"
#include "journal/journal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOURNAL_FD_CONFIG 4
#define JOURNAL_BACKOFF_MAX_MS 10000
#define SUP_AUDIT_FLUSH_MS 2000
#define SUP_AUDIT_TICK_MS 25       /* audit.h: flush the open batch every 10-50 ms */

/* Sends the sink's open batch: without it an event emitted after a quiet
 * spell (a crashed worker's disconnect rows, a kick) would wait in the batch
 * for the next event or for shutdown. One supervisor per process. */
static struct event *audit_tick;

static void on_audit_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	supervisor *s = arg;
	if (s->audit)
		audit_flush(s->audit, 0);
}

static void audit_tick_start(supervisor *s)
{
	if (audit_tick || !s->base)
		return;
	audit_tick = event_new(s->base, -1, EV_PERSIST, on_audit_tick, s);
	struct timeval tv = { 0, SUP_AUDIT_TICK_MS * 1000 };
	if (audit_tick)
		evtimer_add(audit_tick, &tv);
}

static void journal_url(const supervisor *s, char *buf, size_t len)
{
	snprintf(buf, len, "ipc://%s/audit.ipc", s->cfg.run_dir);
}

int sup_audit_open(supervisor *s, char *err, size_t errlen)
{
	char url[CFG_PATH_MAX + 32];
	if (journal_check_database(s->cfg.audit_database, err, errlen) < 0)
		return -1;
	journal_url(s, url, sizeof url);
	if (!(s->audit = audit_open(url, AUDIT_BACKLOG_DEFAULT))) {
		snprintf(err, errlen, "cannot open the audit sink %s", url);
		return -1;
	}
	return 0;
}

/* The journal gets the config the supervisor validated (at fd 4), not the
 * file, which may have been edited into something invalid since. */
static void journal_exec_child(const supervisor *s, char *const argv[], pid_t parent)
{
	sup_exec_child(s, argv, parent, &s->cfg_fd, 1, JOURNAL_FD_CONFIG);
}

void sup_journal_start(supervisor *s)
{
	char url[CFG_PATH_MAX + 32];
	journal_url(s, url, sizeof url);
	char *const argv[] = { s->exe, "--journal", "-c", "/dev/fd/4", "--listen", url, NULL };
	audit_tick_start(s);
	pid_t parent = getpid(), pid = fork();
	if (pid < 0) {
		log_error("journal", "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		journal_exec_child(s, argv, parent);
	s->journal_pid = pid;
	s->journal_started_ms = clock_mono_ms();
	log_info("journal_start", "pid %d, database %s", (int)pid, s->cfg.audit_database);
}

static void on_journal_restart(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	supervisor *s = arg;
	if (!s->stopping && s->journal_pid <= 0)
		sup_journal_start(s);
}

void journal_reaped(supervisor *s, pid_t pid, int status)
{
	if (pid != s->journal_pid)
		return;
	s->journal_pid = 0;
	int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (s->stopping) {
		log_info("journal_exit", "stopped%s", clean ? "" : " (not cleanly)");
		return;
	}
	int64_t lived = clock_mono_ms() - s->journal_started_ms;
	s->journal_crashes = lived < 5000 ? s->journal_crashes + 1 : 1;
	int64_t delay = s->journal_crashes <= 1 ? 0 : 100LL << (s->journal_crashes > 8 ? 7 : s->journal_crashes - 2);
	if (delay > JOURNAL_BACKOFF_MAX_MS)
		delay = JOURNAL_BACKOFF_MAX_MS;
	log_warn("journal_exit", "the journal died (%s %d): restart in %lld ms; events wait meanwhile",
	         WIFSIGNALED(status) ? "signal" : "status",
	         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), (long long)delay);
	if (!s->journal_timer)
		s->journal_timer = evtimer_new(s->base, on_journal_restart, s);
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	evtimer_add(s->journal_timer, &tv);
}

/* Shutdown, once the workers are gone: our own events, then the journal. */
void sup_journal_stop(supervisor *s)
{
	if (s->audit && audit_flush(s->audit, SUP_AUDIT_FLUSH_MS))
		log_warn("shutdown", "some audit events of the supervisor could not be delivered");
	if (s->journal_pid > 0)
		kill(s->journal_pid, SIGTERM);
}

void sup_audit_close(supervisor *s)
{
	if (s->journal_timer)
		event_free(s->journal_timer);
	if (audit_tick)
		event_free(audit_tick);
	audit_tick = NULL;
	audit_close(s->audit);
	s->audit = NULL;
}

static void emit(supervisor *s, const audit_event *e)
{
	if (s->audit)
		audit_emit(s->audit, e);
}

void sup_audit_session(supervisor *s, const char *event, const reg_session *r, const char *reason,
                       const char *detail)
{
	emit(s, &(audit_event){ .event = event, .worker = r->worker, .session = r->id,
	                        .user = r->user, .room = r->room, .ip = r->ip, .reason = reason,
	                        .detail = detail });
	log_msg(LOG_DEBUG, event, &(log_fields){ .session = r->id, .user = r->user, .room = r->room,
	        .ip = r->ip, .reason = reason, .latency_ms = -1 }, "%s", detail ? detail : "");
}

void command_audit(supervisor *s, const char *event, const char *user, const char *session,
                   const char *reason, const char *detail)
{
	emit(s, &(audit_event){ .event = event, .worker = -1, .session = session, .user = user,
	                        .reason = reason, .detail = detail });
	log_msg(LOG_INFO, event, &(log_fields){ .user = user, .session = session, .reason = reason,
	                                        .latency_ms = -1 }, "%s", detail ? detail : "");
}

void sup_audit_worker(supervisor *s, const char *event, int slot, const char *reason,
                      const char *detail)
{
	emit(s, &(audit_event){ .event = event, .worker = slot, .reason = reason, .detail = detail });
}
