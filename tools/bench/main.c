/* main.c: audiogw-bench, the load generator of SPEC 8 (tools/bench/).
 *
 * The parent process parses the options (a --preset first, then any
 * override), raises RLIMIT_NOFILE, maps a shared control block and one
 * result slot per load process, forks the load processes (load.c) and
 * drives the phases: wait ready (tokens minted), ramp (until every first
 * attempt resolved, bounded), warmup, measured window (with the optional
 * SIGHUP / worker SIGKILL), grace (senders stopped, stragglers counted),
 * stop. Around the phases it samples the gateway's process tree (gwstat.c).
 * A hard deadline (ramp + warmup + duration + 30 s) bounds everything:
 * load processes stop by themselves at it and the parent SIGKILLs any that
 * did not. It connects only to 127.0.0.0/8. */
#include "bench.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PER_PROC_DEFAULT 15000
#define FD_RESERVE       64
#define READY_WAIT_S     8.0
#define RAMP_EXTRA_S     10.0
#define STOP_WAIT_S      5.0
#define DEADLINE_EXTRA_S 30.0
#define POLL_NS          (5 * 1000000LL)
#define IDLE_SAMPLE_NS   (500 * 1000000LL)

typedef struct preset {
	const char *name;
	uint32_t n, room_size;
	double speakers, rate;
	uint32_t payload;
	double ramp, warmup, duration;
	int action;
	double action_at;
} preset;

static const preset presets[] = {
	{ "capacity", 50000, 10, 0.0, 0, 100, 100000, 3, 5, ACT_NONE, 0 },
	{ "seed", 10000, 10, 0.2, 12, 100, 2000, 5, 20, ACT_NONE, 0 },
	{ "fanout", 2000, 100, 0.1, 50, 100, 1000, 5, 20, ACT_NONE, 0 },
	{ "reload", 10000, 10, 0.2, 12, 100, 2000, 5, 30, ACT_SIGHUP, 5 },
	{ "crash", 10000, 10, 0.2, 12, 100, 2000, 5, 20, ACT_KILL_WORKER, 5 },
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "audiogw-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: audiogw-bench --url ws://127.0.0.1:PORT/v1/audio --secret-file FILE [options]\n"
"  --preset NAME        capacity | seed | fanout | reload | crash (SPEC 8)\n"
"  -n, --connections N  connections (all load processes)\n"
"  --room-size K        members per room (room \"bench-<i/K>\")\n"
"  --speakers F         fraction of each room that speaks (0..1)\n"
"  --rate R             frames per second per speaker\n"
"  --payload B          RTP payload bytes after the 12-byte header (>= 17)\n"
"  --ramp C             new connections per second\n"
"  --warmup S           seconds between the ramp and the measured window\n"
"  --duration S         measured window, seconds\n"
"  --grace S            after the window, for frames in flight (default 1, <= 5)\n"
"  --inflight N         per process: connections not yet welcomed (default 500)\n"
"  --procs P            load processes (default ceil(N / 15000))\n"
"  --sources A-B|A,B    127.0.0.x source addresses (default 127.0.0.1-127.0.0.8)\n"
"  --pid PID            gateway supervisor: measure its process tree\n"
"  --pid-file FILE      the same, read from run_dir/audiogwd.pid\n"
"  --action sighup|kill-worker  --action-at S (seconds after the window start)\n"
"  --user-prefix P      token users are P u<i> (default bench<pid>-)\n"
"  --audit-db FILE      after the run, check the gateway's audit journal: a connect\n"
"                       row per handshake, a disconnect per connect\n"
"  --json               print the results as one JSON object\n");
}

/* ---- parsing helpers -------------------------------------------------------- */

static double num(const char *s, double lo, double hi, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		die("bad value for %s", what);
	return v;
}

static int loopback(const char *s, struct in_addr *a)
{
	if (strcmp(s, "localhost") == 0)
		s = "127.0.0.1";
	return inet_pton(AF_INET, s, a) == 1 && (ntohl(a->s_addr) >> 24) == 127;
}

static void parse_url(bench_opts *o, const char *url)
{
	snprintf(o->url, sizeof o->url, "%s", url);
	if (strncmp(url, "ws://", 5) != 0)
		die("only ws:// URLs are supported: %s", url);
	const char *h = url + 5, *slash = strchr(h, '/');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	if (hl == 0 || hl >= sizeof o->host)
		die("bad URL %s", url);
	memcpy(o->host, h, hl);
	o->host[hl] = '\0';
	char *colon = strrchr(o->host, ':');
	o->port = 80;
	if (colon) {
		*colon = '\0';
		o->port = (uint16_t)num(colon + 1, 1, 65535, "the URL port");
	}
	if (!loopback(o->host, &o->dst))
		die("refusing a non-loopback host: %s (127.0.0.0/8 only)", o->host);
	snprintf(o->path, sizeof o->path, "%s", slash ? slash : "/");
}

static void add_source(bench_opts *o, struct in_addr a)
{
	if (o->nsrc == BENCH_MAX_SOURCES)
		die("too many source addresses (max 64)");
	o->src[o->nsrc++] = a;
}

static void parse_sources(bench_opts *o, const char *spec)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", spec);
	o->nsrc = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		struct in_addr a, b;
		if (dash)
			*dash = '\0';
		if (!loopback(tok, &a) || (dash && !loopback(dash + 1, &b)))
			die("source addresses must be in 127.0.0.0/8: %s", spec);
		if (!dash) {
			add_source(o, a);
			continue;
		}
		for (uint32_t x = ntohl(a.s_addr); x <= ntohl(b.s_addr); x++) {
			struct in_addr s = { .s_addr = htonl(x) };
			add_source(o, s);
		}
	}
	if (!o->nsrc)
		die("no source address in %s", spec);
}

static void read_secret(bench_opts *o, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot read the secret file %s", path);
	size_t n = fread(o->secret, 1, sizeof o->secret, f);
	int more = fgetc(f) != EOF;
	fclose(f);
	if (more)
		die("secret file too long: %s", path);
	while (n && isspace(o->secret[n - 1]))
		n--;
	if (!n)
		die("empty secret file: %s", path);
	o->secret_len = n;
}

static pid_t read_pid_file(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = 0;
	if (!f || fscanf(f, "%ld", &v) != 1 || v <= 0)
		die("cannot read a pid from %s", path);
	fclose(f);
	return (pid_t)v;
}

static void apply_preset(bench_opts *o, const char *name)
{
	for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
		const preset *p = &presets[i];
		if (strcmp(p->name, name) != 0)
			continue;
		snprintf(o->preset, sizeof o->preset, "%s", p->name);
		o->n = p->n;
		o->room_size = p->room_size;
		o->speakers = p->speakers;
		o->rate = p->rate;
		o->payload = p->payload;
		o->ramp = p->ramp;
		o->warmup = p->warmup;
		o->duration = p->duration;
		o->action = p->action;
		o->action_at = p->action_at;
		return;
	}
	die("unknown preset %s (capacity, seed, fanout, reload, crash)", name);
}

/* ---- options ------------------------------------------------------------------ */

enum { O_URL = 256, O_SECRET, O_PRESET, O_ROOM, O_SPK, O_RATE, O_PAYLOAD, O_RAMP, O_DUR,
       O_WARM, O_GRACE, O_INFL, O_PROCS, O_SRC, O_PID, O_PIDFILE, O_JSON, O_ACT, O_ACTAT,
       O_PREFIX, O_AUDIT };

static const struct option longopts[] = {
	{ "url", required_argument, 0, O_URL }, { "secret-file", required_argument, 0, O_SECRET },
	{ "preset", required_argument, 0, O_PRESET }, { "connections", required_argument, 0, 'n' },
	{ "room-size", required_argument, 0, O_ROOM }, { "speakers", required_argument, 0, O_SPK },
	{ "rate", required_argument, 0, O_RATE }, { "payload", required_argument, 0, O_PAYLOAD },
	{ "ramp", required_argument, 0, O_RAMP }, { "duration", required_argument, 0, O_DUR },
	{ "warmup", required_argument, 0, O_WARM }, { "grace", required_argument, 0, O_GRACE },
	{ "inflight", required_argument, 0, O_INFL }, { "procs", required_argument, 0, O_PROCS },
	{ "sources", required_argument, 0, O_SRC }, { "pid", required_argument, 0, O_PID },
	{ "pid-file", required_argument, 0, O_PIDFILE }, { "json", no_argument, 0, O_JSON },
	{ "action", required_argument, 0, O_ACT }, { "action-at", required_argument, 0, O_ACTAT },
	{ "user-prefix", required_argument, 0, O_PREFIX }, { "audit-db", required_argument, 0, O_AUDIT },
	{ "help", no_argument, 0, 'h' },
	{ 0, 0, 0, 0 }
};

static void set_action(bench_opts *o, const char *s)
{
	if (strcmp(s, "sighup") == 0)
		o->action = ACT_SIGHUP;
	else if (strcmp(s, "kill-worker") == 0)
		o->action = ACT_KILL_WORKER;
	else if (strcmp(s, "none") == 0)
		o->action = ACT_NONE;
	else
		die("unknown action %s (sighup, kill-worker, none)", s);
}

static void set_option(bench_opts *o, int c, const char *a, const char **secret)
{
	switch (c) {
	case O_URL: parse_url(o, a); break;
	case O_SECRET: *secret = a; break;
	case O_PRESET: break;                 /* applied first */
	case 'n': o->n = (uint32_t)num(a, 1, 1000000, "--connections"); break;
	case O_ROOM: o->room_size = (uint32_t)num(a, 1, 100000, "--room-size"); break;
	case O_SPK: o->speakers = num(a, 0, 1, "--speakers"); break;
	case O_RATE: o->rate = num(a, 0, 1000, "--rate"); break;
	case O_PAYLOAD: o->payload = (uint32_t)num(a, 17, 60000, "--payload"); break;
	case O_RAMP: o->ramp = num(a, 1, 10000000, "--ramp"); break;
	case O_DUR: o->duration = num(a, 0, 3600, "--duration"); break;
	case O_WARM: o->warmup = num(a, 0, 3600, "--warmup"); break;
	case O_GRACE: o->grace = num(a, 0, 5, "--grace"); break;
	case O_INFL: o->inflight = (uint32_t)num(a, 1, 100000, "--inflight"); break;
	case O_PROCS: o->procs = (int)num(a, 1, BENCH_MAX_PROCS, "--procs"); break;
	case O_SRC: parse_sources(o, a); break;
	case O_PID: o->pid = (pid_t)num(a, 1, 1e9, "--pid"); break;
	case O_PIDFILE: o->pid = read_pid_file(a); break;
	case O_JSON: o->json = 1; break;
	case O_ACT: set_action(o, a); break;
	case O_ACTAT: o->action_at = num(a, 0, 3600, "--action-at"); break;
	case O_PREFIX: snprintf(o->user_prefix, sizeof o->user_prefix, "%s", a); break;
	case O_AUDIT: snprintf(o->audit_db, sizeof o->audit_db, "%s", a); break;
	case 'h': usage(stdout); exit(0);
	default: usage(stderr); exit(2);
	}
}

static void defaults(bench_opts *o)
{
	memset(o, 0, sizeof *o);
	snprintf(o->preset, sizeof o->preset, "custom");
	o->n = 1000;
	o->room_size = 10;
	o->payload = 100;
	o->ramp = 1000;
	o->warmup = 2;
	o->duration = 10;
	o->grace = 1;
	o->inflight = 500;
	o->user_prefix[0] = '\0';
	parse_sources(o, "127.0.0.1-127.0.0.8");
}

static void check_options(bench_opts *o, const char *secret)
{
	if (!o->url[0])
		die("--url is required");
	if (!secret)
		die("--secret-file is required");
	read_secret(o, secret);
	if (!o->user_prefix[0])
		snprintf(o->user_prefix, sizeof o->user_prefix, "bench%d-", (int)getpid());
	uint32_t rooms = (o->n + o->room_size - 1) / o->room_size;
	if (!o->procs)
		o->procs = (int)((o->n + PER_PROC_DEFAULT - 1) / PER_PROC_DEFAULT);
	if (o->procs > BENCH_MAX_PROCS)
		die("too many connections for %d load processes", BENCH_MAX_PROCS);
	if ((uint32_t)o->procs > rooms)
		o->procs = (int)rooms;
	double spk = o->speakers * o->room_size;
	o->speakers_per_room = o->rate > 0 ? (uint32_t)lround(spk) : 0;
	if (o->rate > 0 && o->speakers > 0 && !o->speakers_per_room)
		o->speakers_per_room = 1;
	if (o->action != ACT_NONE && o->pid <= 0)
		die("--action needs --pid (the gateway supervisor)");
	char err[512];
	if (o->audit_db[0] && bench_audit_open(o->audit_db, err, sizeof err) != 0)
		die("--audit-db %s: %s", o->audit_db, err);
}

/* Raises the soft fd limit to the hard one; checks the per-process share. */
static void raise_nofile(const bench_opts *o)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	uint32_t rooms = (o->n + o->room_size - 1) / o->room_size;
	uint64_t per = ((uint64_t)(rooms + (uint32_t)o->procs - 1) / (uint32_t)o->procs) * o->room_size;
	if (rl.rlim_cur != RLIM_INFINITY && per + FD_RESERVE > rl.rlim_cur) {
		die("a load process would hold %llu sockets, RLIMIT_NOFILE is %llu: raise --procs",
		    (unsigned long long)per, (unsigned long long)rl.rlim_cur);
	}
}

static void parse_options(bench_opts *o, int argc, char **argv)
{
	defaults(o);
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1)
		if (c == O_PRESET)
			apply_preset(o, optarg);
	optind = 0;
	opterr = 1;
	const char *secret = NULL;
	while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1)
		set_option(o, c, optarg, &secret);
	if (optind < argc)
		die("unexpected argument %s", argv[optind]);
	check_options(o, secret);
	raise_nofile(o);
}

/* ---- the run ----------------------------------------------------------------- */

typedef struct parent {
	bench_opts *o;
	bench_ctl *ctl;
	bench_res *res;
	pid_t kids[BENCH_MAX_PROCS];
	int nkids;
	int64_t deadline;
	int failed;
} parent;

static void nap(void)
{
	struct timespec ts = { 0, POLL_NS };
	nanosleep(&ts, NULL);
}

/* Reaps load processes that exited; counts those that did early. */
static int reap(parent *pp, int expect_done)
{
	int alive = 0;
	for (int i = 0; i < pp->nkids; i++) {
		if (pp->kids[i] <= 0)
			continue;
		int st;
		pid_t r = waitpid(pp->kids[i], &st, WNOHANG);
		if (r == pp->kids[i]) {
			if (!expect_done || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				pp->failed++;
			pp->kids[i] = 0;
		} else {
			alive++;
		}
	}
	return alive;
}

static int stop_early(parent *pp)
{
	return interrupted || pp->failed || now_ns() >= pp->deadline;
}

static uint32_t sum_field(parent *pp, int which)
{
	uint32_t s = 0;
	for (int i = 0; i < pp->o->procs; i++)
		s += which == 0 ? atomic_load(&pp->res[i].ready) : atomic_load(&pp->res[i].resolved);
	return s;
}

static void wait_until(parent *pp, int64_t t)
{
	while (now_ns() < t && !stop_early(pp)) {
		reap(pp, 0);
		nap();
	}
}

static void spawn(parent *pp)
{
	fflush(NULL);
	for (int i = 0; i < pp->o->procs; i++) {
		pid_t k = fork();
		if (k < 0)
			die("fork: %s", strerror(errno));
		if (k == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			signal(SIGINT, SIG_IGN);
			signal(SIGTERM, SIG_DFL);
			_exit(load_main(pp->o, pp->ctl, &pp->res[i], i));
		}
		pp->kids[pp->nkids++] = k;
	}
}

static void do_action(parent *pp, bench_run *r, int64_t t0)
{
	const bench_opts *o = pp->o;
	r->action_done = 1;
	r->action_t = (double)(now_ns() - t0) / 1e9;
	if (o->action == ACT_SIGHUP) {
		r->action_pid = o->pid;
		r->action_slot = -1;
		if (kill(o->pid, SIGHUP) < 0)
			r->action_done = -1;
		return;
	}
	r->action_pid = gw_pick_worker(o->pid, &r->action_slot);
	if (r->action_pid <= 0 || kill(r->action_pid, SIGKILL) < 0)
		r->action_done = -1;
}

static void phase(parent *pp, int ph)
{
	atomic_store(&pp->ctl->phase, ph);
}

static void run_ramp(parent *pp, bench_run *r)
{
	const bench_opts *o = pp->o;
	gw_sample_take(o->pid, &r->gw_before);
	r->ramp_t0 = now_ns();
	atomic_store(&pp->ctl->ramp_t0, r->ramp_t0);
	phase(pp, PH_RAMP);
	int64_t limit = r->ramp_t0 + (int64_t)((o->n / o->ramp + RAMP_EXTRA_S) * 1e9);
	while (sum_field(pp, 1) < o->n && now_ns() < limit && !stop_early(pp)) {
		reap(pp, 0);
		nap();
	}
	r->ramp_t1 = now_ns();
	gw_sample_take(o->pid, &r->gw_ramp);
}

static void run_window(parent *pp, bench_run *r)
{
	const bench_opts *o = pp->o;
	phase(pp, PH_WARMUP);
	wait_until(pp, r->ramp_t1 + (int64_t)(o->warmup * 1e9));
	gw_sample_take(o->pid, &r->gw_ws);
	r->window_t0 = now_ns();
	phase(pp, PH_WINDOW);
	int64_t end = r->window_t0 + (int64_t)(o->duration * 1e9);
	if (o->action != ACT_NONE && o->action_at < o->duration) {
		wait_until(pp, r->window_t0 + (int64_t)(o->action_at * 1e9));
		if (!stop_early(pp))
			do_action(pp, r, r->window_t0);
	}
	wait_until(pp, end);
	gw_sample_take(o->pid, &r->gw_we);
	r->window_t1 = now_ns();
	phase(pp, PH_GRACE);
	int saved = interrupted;
	interrupted = 0;                       /* the grace still runs after ^C */
	wait_until(pp, r->window_t1 + (int64_t)(o->grace * 1e9));
	interrupted = saved;
	gw_sample_take(o->pid, &r->gw_end);
}

static void run_stop(parent *pp)
{
	phase(pp, PH_STOP);
	int64_t limit = now_ns() + (int64_t)(STOP_WAIT_S * 1e9);
	if (limit > pp->deadline + 2000000000LL)
		limit = pp->deadline + 2000000000LL;
	while (reap(pp, 1) > 0 && now_ns() < limit)
		nap();
	for (int i = 0; i < pp->nkids; i++)
		if (pp->kids[i] > 0) {
			kill(pp->kids[i], SIGKILL);
			waitpid(pp->kids[i], NULL, 0);
			pp->kids[i] = 0;
			pp->failed++;
		}
}

static int run(bench_opts *o, bench_run *r)
{
	parent pp = { .o = o };
	size_t ctl_sz = (sizeof(bench_ctl) + 63) & ~(size_t)63;
	size_t sz = ctl_sz + (size_t)o->procs * sizeof(bench_res);
	void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	pp.ctl = m;
	pp.res = (bench_res *)((char *)m + ctl_sz);
	double ramp_s = o->n / o->ramp;
	pp.deadline = now_ns() + (int64_t)((ramp_s + o->warmup + o->duration + DEADLINE_EXTRA_S) * 1e9);
	atomic_store(&pp.ctl->deadline, pp.deadline);
	spawn(&pp);
	gw_sample_take(o->pid, &r->gw_idle);
	int64_t ready_limit = now_ns() + (int64_t)(READY_WAIT_S * 1e9);
	while (sum_field(&pp, 0) < (uint32_t)o->procs && now_ns() < ready_limit && !stop_early(&pp)) {
		reap(&pp, 0);
		nap();
	}
	wait_until(&pp, r->gw_idle.t_ns + IDLE_SAMPLE_NS);   /* the gateway's idle CPU */
	run_ramp(&pp, r);
	run_window(&pp, r);
	run_stop(&pp);
	memset(&r->total, 0, sizeof r->total);
	for (int i = 0; i < o->procs; i++)
		bench_merge(&r->total, &pp.res[i]);
	r->children_failed = pp.failed;
	munmap(m, sz);
	return pp.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static bench_opts o;
	parse_options(&o, argc, argv);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	static bench_run r;
	r.o = &o;
	r.action_slot = -1;
	int rc = run(&o, &r);
	if (o.audit_db[0])
		bench_audit_check(&o, r.total.hs_ok, &r.audit);
	if (o.json)
		report_json(&r);
	else
		report_human(&r);
	return rc;
}
