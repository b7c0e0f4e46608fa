/* top.c: audiogwctl top, a live view of the daemon refreshed every second:
 * totals from "status", rates from the difference of successive status
 * polls, the workers table and the ten busiest rooms.
 *
 * On a terminal it draws with plain ANSI escapes on the alternate screen,
 * with the terminal in non-canonical no-echo mode; q quits, as do SIGINT,
 * SIGTERM and SIGHUP, and the terminal is restored in every case (also
 * around Ctrl-Z). When stdout is not a terminal, or with --json, it prints
 * one snapshot (two status polls a second apart, for the rates) and exits. */
#include "tools/audiogwctl/ctl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define REFRESH_MS 1000
#define TOP_ROOMS 10

typedef struct snap {
	json_t *status, *workers, *rooms;   /* rooms: the busiest, sorted */
	double t;                           /* monotonic seconds of the status reply */
} snap;

typedef struct rates {
	int valid;
	double in, out, dropped;
} rates;

static volatile sig_atomic_t got_quit, got_winch, got_tstp;
static struct termios saved_tio;
static int tio_saved;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void snap_clear(snap *s)
{
	json_decref(s->status);
	json_decref(s->workers);
	json_decref(s->rooms);
	memset(s, 0, sizeof *s);
}

/* ---- polling ---- */

static int by_members_desc(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	int64_t ma = jf_int(a, "members", 0), mb = jf_int(b, "members", 0);
	return ma > mb ? -1 : ma < mb ? 1 : 0;
}

/* A new array of the n busiest rooms of all. */
static json_t *busiest(const json_t *all, size_t n)
{
	size_t total = json_array_size(all);
	json_t **v = calloc(total ? total : 1, sizeof *v);
	json_t *out = json_array();

	if (!v || !out) {
		free(v);
		return out;
	}
	for (size_t i = 0; i < total; i++)
		v[i] = json_array_get(all, i);
	qsort(v, total, sizeof *v, by_members_desc);
	for (size_t i = 0; i < total && i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

static int call(ctx *x, const char *cmd, json_t **res, int quiet, char *err, size_t errlen)
{
	return ctl_call(x, json_pack("{s:s}", "cmd", cmd), res, quiet, err, errlen);
}

static int poll_status(ctx *x, snap *s, int quiet, char *err, size_t errlen)
{
	json_t *st = NULL;
	int rc = call(x, "status", &st, quiet, err, errlen);

	if (rc != CTL_OK)
		return rc;
	if (!json_is_object(st)) {
		json_decref(st);
		snprintf(err, errlen, "unexpected reply from audiogwd: status is not an object");
		if (!quiet)
			ctl_fail(x, CTL_FAIL, "%s", err);
		return CTL_FAIL;
	}
	json_decref(s->status);
	s->status = st;
	s->t = now_s();
	return CTL_OK;
}

/* status, workers and rooms into s (replacing what was there). */
static int poll_all(ctx *x, snap *s, int quiet, char *err, size_t errlen)
{
	json_t *w = NULL, *r = NULL;
	int rc = poll_status(x, s, quiet, err, errlen);

	if (rc == CTL_OK)
		rc = call(x, "workers", &w, quiet, err, errlen);
	if (rc == CTL_OK)
		rc = call(x, "rooms", &r, quiet, err, errlen);
	if (rc != CTL_OK) {
		json_decref(w);
		json_decref(r);
		return rc;
	}
	json_decref(s->workers);
	json_decref(s->rooms);
	s->workers = w;
	s->rooms = busiest(r, TOP_ROOMS);
	json_decref(r);
	return CTL_OK;
}

static double rate_of(const json_t *a, const json_t *b, const char *key, double dt, int *ok)
{
	json_t *va = json_object_get(a, key), *vb = json_object_get(b, key);
	if (!json_is_number(va) || !json_is_number(vb) || dt <= 0) {
		*ok = 0;
		return 0;
	}
	double d = json_number_value(vb) - json_number_value(va);
	if (d < 0)
		*ok = 0;                  /* counters went back: a worker restarted */
	return d / dt;
}

static rates rates_between(const json_t *prev, double tprev, const json_t *cur, double tcur)
{
	rates r = { 0, 0, 0, 0 };
	int ok = prev && cur;
	if (!ok)
		return r;
	double dt = tcur - tprev;
	r.in = rate_of(prev, cur, "frames_in", dt, &ok);
	r.out = rate_of(prev, cur, "frames_out", dt, &ok);
	r.dropped = rate_of(prev, cur, "frames_dropped", dt, &ok);
	r.valid = ok;
	return r;
}

/* ---- rendering ---- */

static const char *rate_str(char *buf, size_t n, const rates *r, double v)
{
	if (!r->valid)
		return "-";
	fmt_rate(buf, n, v);
	return buf;
}

static void render(FILE *f, const snap *s, const rates *r, const char *err, int live)
{
	const json_t *st = s->status;
	char up[32], b1[32], b2[32], b3[32], clock[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(clock, sizeof clock, "%Y-%m-%d %H:%M:%S UTC", &tm);
	fmt_duration(up, sizeof up, json_is_number(json_object_get(st, "uptime_s")) ?
		jf_int(st, "uptime_s", 0) : -1);
	fprintf(f, "audiogwd %s  pid %s  up %s  generation %s  %s\n", jf_str(st, "version"),
		jf_str(st, "pid"), up, jf_str(st, "generation"), clock);
	fprintf(f, "workers %s  connections %s  rooms %s%s\n", jf_count(st, "workers"),
		jf_count(st, "connections"), jf_count(st, "rooms"),
		json_is_true(json_object_get(st, "draining")) ? "  DRAINING" : "");
	fprintf(f, "frames in %s/s  out %s/s  dropped %s/s", rate_str(b1, sizeof b1, r, r->in),
		rate_str(b2, sizeof b2, r, r->out), rate_str(b3, sizeof b3, r, r->dropped));
	json_t *p99 = json_object_get(st, "relay_p99_ms");
	if (json_is_number(p99))
		fprintf(f, "  relay p99 %.2f ms\n", json_number_value(p99));
	else
		fprintf(f, "  relay p99 -\n");
	if (err && err[0])
		fprintf(f, "!! %s (retrying)\n", err);
	fputs("\nWORKERS\n", f);
	if (print_workers(s->workers, f) != 0)
		fputs("(no workers list)\n", f);
	fprintf(f, "\nBUSIEST ROOMS (top %d by members)\n", TOP_ROOMS);
	if (print_rooms(s->rooms, f, TOP_ROOMS) != 0)
		fputs("(no rooms list)\n", f);
	if (live)
		fputs("\nq: quit\n", f);
}

static json_t *snapshot_json(const snap *s, const rates *r)
{
	json_t *rt = r->valid ?
		json_pack("{s:f,s:f,s:f}", "frames_in_per_s", r->in, "frames_out_per_s", r->out,
			"frames_dropped_per_s", r->dropped) :
		json_null();
	return json_pack("{s:O,s:o,s:O,s:O}", "status", s->status, "rates", rt,
		"workers", s->workers ? s->workers : json_null(),
		"rooms", s->rooms ? s->rooms : json_null());
}

/* ---- one snapshot ---- */

static int top_once(ctx *x)
{
	snap s = { 0 }, first = { 0 };
	char err[1024];
	int rc = poll_status(x, &first, 0, err, sizeof err);

	if (rc == CTL_OK) {
		struct timespec ts = { REFRESH_MS / 1000, (REFRESH_MS % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		rc = poll_all(x, &s, 0, err, sizeof err);
	}
	if (rc == CTL_OK) {
		rates r = rates_between(first.status, first.t, s.status, s.t);
		if (x->json) {
			json_t *j = snapshot_json(&s, &r);
			print_json(j, stdout);
			json_decref(j);
		} else {
			render(stdout, &s, &r, NULL, 0);
		}
	}
	snap_clear(&first);
	snap_clear(&s);
	return rc;
}

/* ---- terminal ---- */

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGTSTP)
		got_tstp = 1;
	else
		got_quit = 1;
}

static void set_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;          /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
}

static void term_enter(void)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
			tio_saved = 1;
	}
	fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
	fflush(stdout);
}

static void term_leave(void)
{
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		tio_saved = 0;
	}
}

/* Ctrl-Z: restore the terminal, stop, and take it back on SIGCONT. */
static void suspend(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	term_leave();
	sigaction(SIGTSTP, &dfl, NULL);
	raise(SIGTSTP);
	set_handlers();
	term_enter();
}

static void term_size(int *rows, int *cols)
{
	struct winsize ws;
	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* Writes text to the screen from the top: lines cut to the width (in code
 * points), at most rows - 1 of them, each line's rest and the rest of the
 * screen cleared. */
static void draw(const char *text)
{
	int rows, cols, row = 0;

	term_size(&rows, &cols);
	fputs("\033[H", stdout);
	for (const char *p = text; *p && row < rows - 1; row++) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		int w = 0;
		size_t cut = 0;
		for (; cut < len; cut++) {
			if (((unsigned char)p[cut] & 0xc0) != 0x80 && ++w > cols)
				break;
		}
		fwrite(p, 1, cut, stdout);
		fputs("\033[K\n", stdout);
		p += len + (eol != NULL);
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

static void redraw(const snap *s, const rates *r, const char *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return;
	render(m, s, r, err, 1);
	fclose(m);
	draw(buf);
	free(buf);
}

/* Returns 1 when q was pressed. */
static int read_keys(void)
{
	char k[64];
	ssize_t n = read(STDIN_FILENO, k, sizeof k);
	for (ssize_t i = 0; i < n; i++)
		if (k[i] == 'q' || k[i] == 'Q')
			return 1;
	return 0;
}

/* The waiter of every request while live: returns 0 when fd (the request's
 * completion) is readable, 1 to abandon it on q or a quit signal. */
static int live_wait(void *arg, int fd)
{
	int *keys = arg;

	while (!got_quit) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
		int n = poll(p, *keys ? 2 : 1, -1);
		if (n < 0 && errno != EINTR)
			return 0;             /* cannot poll: just wait for the request */
		if (n <= 0)
			continue;
		if (p[0].revents)
			return 0;
		if ((p[1].revents & POLLIN) && read_keys())
			got_quit = 1;
		else if (p[1].revents & (POLLHUP | POLLERR | POLLNVAL))
			*keys = 0;
	}
	return 1;
}

static int top_live(ctx *x)
{
	snap s = { 0 };
	json_t *prev = NULL;
	double tprev = 0, next = 0;
	rates r = { 0, 0, 0, 0 };
	char err[1024] = "";
	int keys = isatty(STDIN_FILENO);
	int rc = poll_all(x, &s, 0, err, sizeof err);   /* unreachable: exit 3 here */

	if (rc != CTL_OK)
		return rc;
	if ((rc = ctl_set_waiter(x, live_wait, &keys)) != CTL_OK)
		return rc;
	set_handlers();
	term_enter();
	next = now_s() + REFRESH_MS / 1000.0;
	redraw(&s, &r, err);
	while (!got_quit) {
		double wait = next - now_s();
		if (wait <= 0) {
			json_decref(prev);
			prev = json_incref(s.status);
			tprev = s.t;
			if (poll_all(x, &s, 1, err, sizeof err) == CTL_OK) {
				err[0] = '\0';
				r = rates_between(prev, tprev, s.status, s.t);
			} else {
				r.valid = 0;
			}
			next = now_s() + REFRESH_MS / 1000.0;
			if (!got_quit)
				redraw(&s, &r, err);
			continue;
		}
		struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
		int n = poll(&pfd, keys ? 1 : 0, (int)(wait * 1000) + 1);
		if (n > 0 && (pfd.revents & POLLIN) && read_keys())
			break;
		if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
			keys = 0;
		if (got_tstp) {
			got_tstp = 0;
			suspend();
			got_winch = 1;
		}
		if (got_winch) {
			got_winch = 0;
			redraw(&s, &r, err);
		}
		if (n < 0 && errno != EINTR)
			break;
	}
	term_leave();
	json_decref(prev);
	snap_clear(&s);
	return CTL_OK;
}

int cmd_top(ctx *x, const cmd_args *a)
{
	(void)a;
	if (x->json || !isatty(STDOUT_FILENO))
		return top_once(x);
	/* Dial before the handlers are set, with the signals blocked, so that
	 * NNG's threads inherit the block and the main thread gets them. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGTSTP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	int rc = ctl_connect(x);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != CTL_OK)
		return rc;
	return top_live(x);
}
