/* supervisor.h: the supervisor's state and the modules that act on it:
 * listeners.c (the listening sockets), fleet.c (worker processes),
 * runfile.c (run_dir and the pid file), main.c (startup, signals, loop). */
#ifndef AGW_SUPERVISOR_H
#define AGW_SUPERVISOR_H

#include "common/config.h"
#include "common/shm.h"

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <nng/nng.h>
#include <sys/types.h>

#define SUP_MAX_WORKERS 256

/* One listening socket per (listen address, worker slot). */
typedef struct listener_set {
	int n_addrs, n_slots;
	int fds[CFG_MAX_LISTEN][SUP_MAX_WORKERS];
} listener_set;

/* Counter totals, plain copies of shm_counters (all uint64_t: summed as an array). */
typedef struct metric_totals {
	uint64_t connections, queued, accepted, frames_in, frames_out, bytes_in, bytes_out;
	uint64_t rejected[SHM_REJECT_REASONS], dropped[SHM_DROP_REASONS], closes[SHM_CLOSE_CODES];
	uint64_t bus_in, bus_out;
	uint64_t latency[SHM_LATENCY_BUCKETS], latency_count, latency_sum_us;
	uint64_t audit_events, audit_dropped;
	uint64_t coalesce_ms;      /* gauge: the slot's largest (old and new generation) */
} metric_totals;

typedef struct metric_room_stats {
	int rooms, speakers;
} metric_room_stats;

struct supervisor;

typedef struct worker_proc {
	struct supervisor *sup;
	pid_t pid;                 /* 0 = not running */
	int slot;
	int generation;
	int shm_index;
	int64_t started_ms;        /* monotonic */
	int crashes;               /* consecutive quick deaths, for the backoff */
	int retiring;              /* an older generation's: drains and is not restarted */
	struct event *restart_timer;
} worker_proc;

typedef struct supervisor {
	struct event_base *base;
	cfg cfg;
	char *cfg_text;            /* the validated config, handed to workers */
	size_t cfg_len;
	int cfg_fd;                /* memfd holding cfg_text */
	char exe[4096];            /* binary to exec for workers (re-read on disk) */
	listener_set listeners;
	listener_set leftover;     /* sockets the new config dropped: closed once the old generation is gone */
	shm_area *shm;
	int shm_fd;
	int generation;
	worker_proc gens[2][SUP_MAX_WORKERS];  /* the current generation and a retiring one */
	int n_gen[2];
	int cur;                   /* index of the current generation in gens */
	int stopping;              /* SIGTERM/SIGINT received */
	int journal_stopping;
	int64_t stop_deadline_ms;
	nng_socket bus;            /* bus.c: speaks for dead workers */
	metric_totals retired[SUP_MAX_WORKERS]; /* counters of dead processes, per slot */
	int n_slots_seen;          /* slots ever started, for metric labels */
	uint64_t worker_restarts;
	int64_t started_us;        /* wall clock */
	int draining;
	nng_socket control;        /* control.c */
	struct event *control_ev;
	struct evhttp *http;       /* admin_http.c */
	char last_error[512];      /* why the last reload failed */
	struct audit_sink *audit;  /* audit.c: the supervisor's own events */
	pid_t journal_pid;
	int64_t journal_started_ms;
	int journal_crashes;
	struct event *journal_timer;
	int runfile_fd;
	char pid_path[CFG_PATH_MAX + 32];
} supervisor;

/* listeners.c */
int listeners_open(listener_set *ls, const cfg *c, char *err, size_t errlen);
void listeners_close(listener_set *ls);
int listeners_reopen(listener_set *cur, listener_set *next, const cfg *oldc, const cfg *c,
                     char *err, size_t errlen);

/* bus.c */
/* fleet.c: the child's side of starting any process (never returns). */
#define SUP_CHILD_FDS_MAX (2 + CFG_MAX_LISTEN)
void sup_exec_child(const supervisor *s, char *const argv[], pid_t parent, const int *fds, int n,
                    int first_fd);

int sup_bus_open(supervisor *s);
void sup_bus_close(supervisor *s);
int sup_bus_worker_gone(supervisor *s, int proc);  /* sessions it held, now removed or parked */
int sup_bus_expire_resumable(supervisor *s);
void sup_bus_admin_session(supervisor *s, const reg_session *r, int index, uint8_t op,
                           const char *text);
void sup_bus_system(supervisor *s, const char *room, const char *text);

/* command.c: one operator command; NULL with *status and err on failure */
json_t *command_run(supervisor *s, const char *name, json_t *args, int *status, char *err,
                    size_t errlen);
void command_room_stats(supervisor *s, metric_room_stats *rs);
void command_audit(supervisor *s, const char *event, const char *user, const char *session,
                   const char *reason, const char *detail);
void sup_audit_session(supervisor *s, const char *event, const reg_session *r, const char *reason,
                       const char *detail);

/* control.c, admin_http.c */
int control_open(supervisor *s);
int admin_http_open(supervisor *s);

/* reload.c */
int config_load(const char *file, cfg *out, char **text, size_t *len, cfg_errors *errs);
int config_memfd(const char *text, size_t len);
int supervisor_reload(supervisor *s);   /* -1 with s->last_error */
void supervisor_drain(supervisor *s);

/* metrics.c */
void metrics_retire(supervisor *s, int slot, int shm_index);
void metrics_slot(supervisor *s, int slot, metric_totals *t);
void metrics_host(supervisor *s, metric_totals *t);
double metrics_latency_ms(const metric_totals *t, double q);
char *metrics_text(supervisor *s, const metric_room_stats *rs);   /* malloc'd */

/* runfile.c */
int runfile_acquire(supervisor *s, char *err, size_t errlen);
void runfile_release(supervisor *s);

/* fleet.c */
enum { FLEET_ALL, FLEET_CURRENT, FLEET_RETIRING };
int fleet_start_generation(supervisor *s);   /* -1 if the retiring one is not gone yet */
int fleet_wait_ready(supervisor *s, int timeout_ms);
void fleet_reap(supervisor *s);
void fleet_command(supervisor *s, int which, int command);  /* enum shm_command */
void fleet_signal_all(supervisor *s, int sig);
int fleet_count(const supervisor *s, int which);
int fleet_running(const supervisor *s);
void fleet_free(supervisor *s);

void fleet_retired(supervisor *s);     /* reload.c: a retiring worker is gone */

/* audit.c */
int sup_audit_open(supervisor *s, char *err, size_t errlen);   /* checks the database too */
void sup_journal_start(supervisor *s);
void sup_journal_stop(supervisor *s);
void journal_reaped(supervisor *s, pid_t pid, int status);
void sup_audit_close(supervisor *s);
void sup_audit_worker(supervisor *s, const char *event, int slot, const char *reason,
                      const char *detail);

/* downstream.c: the downstream process (recording, RTP forward, tap) */
int sup_downstream_open(supervisor *s);
void sup_downstream_start(supervisor *s);
int sup_downstream_reaped(supervisor *s, pid_t pid, int status);   /* 1 if pid was it */
json_t *sup_downstream_command(supervisor *s, const char *name, json_t *args, int *status,
                               char *err, size_t errlen);
void sup_downstream_reload(supervisor *s);
int sup_downstream_stop(supervisor *s);    /* shutdown: 1 while it still runs */
void sup_downstream_signal(supervisor *s, int sig);
void sup_downstream_close(supervisor *s);
uint64_t sup_downstream_restarts(void);

#endif
