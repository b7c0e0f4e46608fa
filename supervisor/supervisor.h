/* supervisor.h: the supervisor's state and the modules that act on it:
 * listeners.c (the listening sockets), fleet.c (worker processes),
 * runfile.c (run_dir and the pid file), main.c (startup, signals, loop). */
#ifndef AGW_SUPERVISOR_H
#define AGW_SUPERVISOR_H

#include "common/config.h"
#include "common/shm.h"

#include <event2/event.h>
#include <nng/nng.h>
#include <sys/types.h>

#define SUP_MAX_WORKERS 256

/* One listening socket per (listen address, worker slot). */
typedef struct listener_set {
	int n_addrs, n_slots;
	int fds[CFG_MAX_LISTEN][SUP_MAX_WORKERS];
} listener_set;

struct supervisor;

typedef struct worker_proc {
	struct supervisor *sup;
	pid_t pid;                 /* 0 = not running */
	int slot;
	int generation;
	int shm_index;
	int64_t started_ms;        /* monotonic */
	int crashes;               /* consecutive quick deaths, for the backoff */
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
	shm_area *shm;
	int shm_fd;
	int generation;
	worker_proc workers[SUP_MAX_WORKERS];
	int n_workers;
	int stopping;              /* SIGTERM/SIGINT received */
	int64_t stop_deadline_ms;
	nng_socket bus;            /* bus.c: speaks for dead workers */
	int runfile_fd;
	char pid_path[CFG_PATH_MAX + 32];
} supervisor;

/* listeners.c */
int listeners_open(listener_set *ls, const cfg *c, char *err, size_t errlen);
void listeners_close(listener_set *ls);

/* bus.c */
int sup_bus_open(supervisor *s);
int sup_bus_worker_gone(supervisor *s, int proc);  /* sessions it held, now removed */

/* runfile.c */
int runfile_acquire(supervisor *s, char *err, size_t errlen);
void runfile_release(supervisor *s);

/* fleet.c */
int fleet_start_all(supervisor *s);
void fleet_reap(supervisor *s);
void fleet_signal_all(supervisor *s, int sig);
int fleet_running(const supervisor *s);
void fleet_free(supervisor *s);

#endif
