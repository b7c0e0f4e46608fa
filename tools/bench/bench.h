/* bench.h: shared types of audiogw-bench, the load generator of SPEC 8.
 *
 * The parent process (main.c) parses the options, forks the load processes
 * (load.c, conn.c), drives the phases through a shared control block and
 * samples the gateway's processes (gwstat.c); each load process writes its
 * counters and histograms (hist.c) into its own slot of a shared result
 * array, which the parent merges and prints (report.c). */
#ifndef AGW_BENCH_H
#define AGW_BENCH_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_PROCS    32
#define BENCH_MAX_SOURCES  64
#define BENCH_MAX_WORKERS  64      /* welcome.worker slots tracked */
#define BENCH_MAX_SECRET   1024    /* as auth.hs256_secret_file */
#define BENCH_KV_MAX       32      /* distinct keys per counting table */

/* ---- histogram: log-linear, values in microseconds -------------------- */
/* Values below 256 are exact; above, 128 sub-buckets per power of two
 * (< 0.8% error) up to 2^26 us (67 s); larger values land in the top bucket
 * (max stays exact). Fixed size: mergeable by addition. */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_TOP_BIT  26
#define HIST_BUCKETS  ((HIST_TOP_BIT - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct hist {
	uint64_t n, sum, max;
	uint64_t b[HIST_BUCKETS];
} hist;

void hist_add(hist *h, uint64_t v);
void hist_merge(hist *dst, const hist *src);
/* The highest value equivalent to the q-quantile's bucket (q in [0,1]),
 * capped by the exact max; 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);

/* ---- small counting tables (close codes, HTTP statuses, errnos) --------- */
typedef struct kv_table {
	uint32_t used;
	uint64_t other;                /* counts of keys that did not fit */
	struct { int32_t key; uint64_t n; } e[BENCH_KV_MAX];
} kv_table;

void kv_add(kv_table *t, int32_t key, uint64_t n);
void kv_merge(kv_table *dst, const kv_table *src);
uint64_t kv_total(const kv_table *t);

/* ---- options ------------------------------------------------------------ */
enum { ACT_NONE, ACT_SIGHUP, ACT_KILL_WORKER };

typedef struct bench_opts {
	char preset[16];
	char url[512];
	char host[256];
	char path[256];                /* "/v1/audio" */
	struct in_addr dst;
	uint16_t port;
	unsigned char secret[BENCH_MAX_SECRET];
	size_t secret_len;
	uint32_t n;                    /* connections */
	uint32_t room_size;
	double speakers;               /* fraction of each room */
	uint32_t speakers_per_room;    /* derived */
	double rate;                   /* frames per second per speaker */
	uint32_t payload;              /* RTP payload bytes after the 12-byte header */
	double ramp;                   /* new connections per second, all processes */
	double warmup, duration, grace;
	uint32_t inflight;             /* per process: connections not yet welcomed */
	int procs;
	struct in_addr src[BENCH_MAX_SOURCES];
	int nsrc;
	pid_t pid;                     /* gateway supervisor, 0 = not measured */
	int json;
	int action;
	double action_at;              /* seconds after the window start */
	char user_prefix[64];
	char audit_db[512];            /* --audit-db: the gateway's journal, "" = not read */
} bench_opts;

/* ---- shared control block (parent writes, load processes read) ---------- */
enum { PH_WAIT, PH_RAMP, PH_WARMUP, PH_WINDOW, PH_GRACE, PH_STOP };

typedef struct bench_ctl {
	_Atomic int phase;
	_Atomic int64_t ramp_t0;       /* CLOCK_MONOTONIC ns */
	_Atomic int64_t deadline;      /* hard stop for everyone */
} bench_ctl;

/* ---- one load process's results (shared, written by that process) ------ */
typedef struct bench_res {
	/* progress, read by the parent while running */
	_Atomic uint32_t ready;        /* tokens minted, waiting for the ramp */
	_Atomic uint32_t resolved;     /* first attempts that succeeded or failed */
	_Atomic uint32_t open;         /* connections welcomed right now */
	_Atomic uint32_t done;         /* results below are final */
	uint32_t conns;
	/* connecting */
	uint64_t init_ok, init_fail;   /* first attempts */
	int64_t first_ok_ns, last_ok_ns;
	uint64_t hs_ok, hs_fail, hs_timeout, bad_accept;
	kv_table hs_status;            /* non-101 answers by HTTP status */
	kv_table conn_errno;           /* TCP connect failures by errno */
	/* closing */
	kv_table closes;               /* server close frames by code */
	uint64_t lost;                 /* dropped without a close frame */
	uint64_t closes_window, lost_window, refused_window;
	uint64_t drains, error_msgs, rate_limited, ws_errors;
	uint64_t reconnects;           /* welcomed again after a drop */
	uint64_t open_ws, open_we;     /* welcomed at window start / end */
	uint32_t worker_open[BENCH_MAX_WORKERS];   /* at window start */
	uint32_t worker_dropped[BENCH_MAX_WORKERS];/* dropped in the window */
	/* audio */
	uint64_t sent_total, sent_window, send_skipped, send_dropped, send_lag;
	uint64_t expected, received, received_other;
	uint64_t received_early;       /* window frames sent before the receiver's welcome */
	uint64_t self_echo, wrong_room, bad_frames;
	/* own CPU (us) at window start / end */
	uint64_t cpu_ws_us, cpu_we_us;
	hist lat;                      /* relay latency, window frames */
	hist hs;                       /* connect start to 101 */
	hist reconn;                   /* drop to welcome again */
} bench_res;

/* load.c: runs one load process until the stop phase or the deadline. */
int load_main(const bench_opts *o, bench_ctl *ctl, bench_res *res, int id);

/* ---- gateway process tree (gwstat.c) ------------------------------------- */
#define GW_PER_MAX 16

typedef struct gw_proc {
	pid_t pid;
	int slot;                      /* worker --slot, -1 = not a worker */
	double cpu_s;
	uint64_t rss_kb;
} gw_proc;

typedef struct gw_sample {
	int ok;
	int nproc;
	int64_t t_ns;
	double cpu_s;                  /* utime+stime (+ reaped children) of the tree */
	uint64_t rss_kb, pss_kb;
	int pss_ok;
	int nper;                      /* the first GW_PER_MAX processes, one by one */
	gw_proc per[GW_PER_MAX];
} gw_sample;

void gw_sample_take(pid_t root, gw_sample *s);
/* A worker child of root ("--worker" in its command line), or -1; *slot
 * gets its "--slot" value or -1. */
pid_t gw_pick_worker(pid_t root, int *slot);

/* ---- the audit journal after the run (audit.c) ---------------------------- */
typedef struct bench_audit {
	int checked;                   /* the rows below were read */
	char error[600];               /* why not, when asked for */
	uint64_t handshakes;           /* answered 101, as the load processes saw them */
	uint64_t connects, disconnects;/* rows of the run's users */
	uint64_t unpaired;             /* sessions whose connect and disconnect counts differ */
	double waited_s;               /* until the rows added up, or the wait ended */
} bench_audit;

/* 0 when path is a database with an audit table (err gets why not). */
int bench_audit_open(const char *path, char *err, size_t errlen);
void bench_audit_check(const bench_opts *o, uint64_t handshakes, bench_audit *a);

/* ---- report (report.c) ---------------------------------------------------- */
typedef struct bench_run {
	const bench_opts *o;
	bench_res total;               /* merged */
	int64_t ramp_t0, ramp_t1, window_t0, window_t1;
	gw_sample gw_idle, gw_before, gw_ramp, gw_ws, gw_we, gw_end;
	int action_done;
	pid_t action_pid;
	int action_slot;
	double action_t;               /* seconds after window start */
	int children_failed;
	bench_audit audit;             /* --audit-db */
} bench_run;

void bench_merge(bench_res *dst, const bench_res *src);
void report_human(const bench_run *r);
void report_json(const bench_run *r);

int64_t now_ns(void);

#endif
