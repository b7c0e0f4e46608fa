/* ctl.h: shared declarations of audiogwctl, the operator CLI (SPEC 6.1).
 *
 * main.c     options, the command table, help, dispatch
 * conn.c     the NNG req0 connection to admin.control_socket
 * fmt.c      human units, JSON field access, aligned tables
 * commands.c one handler per command, and the local token minting
 * top.c      the live view */
#ifndef AGW_CTL_H
#define AGW_CTL_H

#include <jansson.h>
#include <nng/nng.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef AGW_VERSION
#define AGW_VERSION "unknown"
#endif

/* Exit codes (SPEC 6.1). */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2, CTL_UNREACHABLE = 3,
	CTL_ABANDONED = 100 /* the waiter gave up; not an exit code */ };

#define CTL_TIMEOUT_MS 5000
#define CTL_MAX_POS 4
#define CTL_MAX_OPTS 8

struct cfg;

/* Called while a request is in flight when set (top): blocks until fd is
 * readable (the request is done) and returns 0, or returns 1 to abandon it. */
typedef int (*ctl_waiter)(void *arg, int fd);

typedef struct ctl_conn {
	nng_socket sock;
	int open;
	char url[600];
	ctl_waiter waiter;
	void *waiter_arg;
	int pipe[2];               /* the waiter's wake-up: written when an aio ends */
} ctl_conn;

/* What every handler gets. */
typedef struct ctx {
	int json;                  /* --json */
	const char *config_file;   /* -c, or the default */
	int config_given;          /* -c was given */
	const char *socket_arg;    /* -s, NULL if not given */
	ctl_conn conn;
	const char *cmd;           /* the command's name, for messages */
} ctx;

/* A command's parsed arguments: positionals and --name VALUE options. */
typedef struct cmd_args {
	const char *pos[CTL_MAX_POS];
	int npos;
	const char *const *opt_names;   /* the command's options, NULL-terminated */
	const char *opt[CTL_MAX_OPTS];  /* value per option name, NULL if absent */
} cmd_args;

/* The value of option name (without "--"), or NULL. */
const char *arg_opt(const cmd_args *a, const char *name);

/* Messages on stderr, prefixed "audiogwctl: CMD: "; each returns code. */
int ctl_fail(const ctx *x, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A usage error of the current command: the message, then its usage line. */
int ctl_usage(const ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- conn.c ---- */

/* "ipc://..." or any URL is kept; a bare path becomes ipc://PATH. */
void ctl_url_from_arg(const char *arg, char *out, size_t outlen);
/* Resolves the socket URL (from -s, else the config) and dials it.
 * Returns CTL_OK or an exit code, with the message printed. */
int ctl_connect(ctx *x);
void ctl_close(ctx *x);
/* From now on requests are asynchronous and fn is their waiter.
 * Returns CTL_OK or CTL_FAIL (printed). */
int ctl_set_waiter(ctx *x, ctl_waiter fn, void *arg);
/* Sends req (consumed) and waits for the reply. On CTL_OK *result is a new
 * reference to the reply's result. Otherwise the message has been printed
 * and the exit code is returned: CTL_FAIL for ok:false or a bad reply,
 * CTL_UNREACHABLE for no reply within CTL_TIMEOUT_MS. Connects first if
 * needed. quiet: do not print (for top); the message goes to err. */
int ctl_call(ctx *x, json_t *req, json_t **result, int quiet, char *err, size_t errlen);
/* ctl_call with the message printed; a NULL req means {"cmd": x->cmd}. */
int ctl_request(ctx *x, json_t *req, json_t **result);

/* Loads the config (cfg_defaults + cfg_load_file). Prints every error and
 * returns CTL_USAGE when it has errors, else CTL_OK. */
int ctl_load_config(const ctx *x, struct cfg *c);

/* ---- fmt.c ---- */

/* Human units, into caller buffers (at least 32 bytes); each returns buf. */
char *fmt_count(char *buf, size_t n, int64_t v);      /* 950, 12.3k, 4.5M */
char *fmt_rate(char *buf, size_t n, double v);        /* 0.5, 950, 12.3k */
char *fmt_duration(char *buf, size_t n, int64_t s);   /* 45s, 3m12s, 3h12m, 2d3h */
/* "2026-11-22T10:00:00.123456Z" -> "2026-11-22 10:00:00" (with frac_digits
 * of the fraction kept, up to 3). Anything else is copied as is. */
char *fmt_time(char *buf, size_t n, const char *rfc3339, int frac_digits);
/* Seconds since an RFC 3339 UTC time, or -1 if it does not parse. */
int64_t age_of(const char *rfc3339);

/* JSON field access for display. Missing or null gives "-". The strings live
 * in a ring of static buffers: use them before 32 more calls. */
const char *jf_str(const json_t *o, const char *key);       /* any scalar, raw */
const char *jf_count(const json_t *o, const char *key);     /* numbers via fmt_count */
const char *jf_time(const json_t *o, const char *key, int frac_digits);
const char *jf_age(const json_t *o, const char *key);       /* fmt_duration of age_of */
const char *jf_bool(const json_t *o, const char *key);      /* yes / no */
const char *jf_ssrc(const json_t *o, const char *key);      /* 0x1a2b3c4d */
int64_t jf_int(const json_t *o, const char *key, int64_t dflt);

/* An aligned text table. The spec lists the columns, space separated;
 * a trailing ">" right-aligns one: "SLOT> PID> STATE". */
typedef struct table {
	int ncols;
	char *hdr[16];
	int right[16];
	char **cells;              /* nrows * ncols copies, control chars replaced */
	size_t nrows, cap;
} table;

void table_init(table *t, const char *spec);
/* Exactly ncols strings; NULL counts as "-". */
void table_add(table *t, ...);
void table_print(const table *t, FILE *f);
void table_free(table *t);

/* Prints a JSON value as one indented document with a newline. */
void print_json(const json_t *v, FILE *f);

/* ---- printers shared by commands.c and top.c ---- */
int print_workers(const json_t *res, FILE *f);
int print_rooms(const json_t *res, FILE *f, size_t limit);

/* ---- commands.c ---- */
int cmd_status(ctx *, const cmd_args *);
int cmd_workers(ctx *, const cmd_args *);
int cmd_rooms(ctx *, const cmd_args *);
int cmd_room(ctx *, const cmd_args *);
int cmd_sessions(ctx *, const cmd_args *);
int cmd_kick(ctx *, const cmd_args *);
int cmd_kick_session(ctx *, const cmd_args *);
int cmd_mute(ctx *, const cmd_args *);
int cmd_unmute(ctx *, const cmd_args *);
int cmd_broadcast(ctx *, const cmd_args *);
int cmd_send(ctx *, const cmd_args *);
int cmd_reload(ctx *, const cmd_args *);
int cmd_drain(ctx *, const cmd_args *);
int cmd_audit(ctx *, const cmd_args *);
int cmd_token(ctx *, const cmd_args *);
int cmd_metrics(ctx *, const cmd_args *);
int cmd_record(ctx *, const cmd_args *);
int cmd_forward(ctx *, const cmd_args *);

/* ---- top.c ---- */
int cmd_top(ctx *, const cmd_args *);

#endif
