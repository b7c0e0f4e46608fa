/* audiogwctl: the operator CLI of audiogwd (SPEC 6.1).
 *
 *   audiogwctl [-c CONFIG | -s CONTROL_SOCKET] [--json] COMMAND [ARGS]
 *
 * Every command but token and help is one JSON request {"cmd": NAME, ...}
 * on an NNG req0 socket dialled to admin.control_socket, answered by
 * {"ok":true,"result":X} or {"ok":false,"error":"..."}. The result is shown
 * as a table (or "key: value" lines), or as JSON with --json.
 * token mints an HS256 client token locally with the config's secret.
 * Exit codes: 0 ok, 1 failed command, 2 bad usage, 3 daemon unreachable.
 *
 * This file: global options, the command table, per-command argument
 * parsing, help and dispatch. */
#include "tools/audiogwctl/ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/audiogwd/audiogwd.conf"

typedef struct command {
	const char *name;
	int min_args, max_args;
	const char *const *opts;   /* options taking a value, NULL-terminated */
	int (*run)(ctx *, const cmd_args *);
	const char *usage;         /* what follows the name */
	const char *summary;
} command;

static const char *const no_opts[] = { NULL };
static const char *const o_sessions[] = { "user", NULL };
static const char *const o_kick[] = { "reason", "ban", NULL };
static const char *const o_audit[] = { "since", "user", "room", "event", "limit", NULL };
static const char *const o_token[] = { "user", "room", "rooms", "ttl", "perm", "dev", NULL };
static const char *const o_record[] = { "dir", NULL };
static const char *const o_forward[] = { "ssrc", NULL };

static int cmd_help(ctx *, const cmd_args *);

static const command commands[] = {
	{ "status", 0, 0, no_opts, cmd_status, "",
	  "supervisor, generation, workers, totals" },
	{ "workers", 0, 0, no_opts, cmd_workers, "",
	  "slot, pid, generation, state, connections" },
	{ "rooms", 0, 0, no_opts, cmd_rooms, "",
	  "room, members, speakers" },
	{ "room", 1, 1, no_opts, cmd_room, "ROOM",
	  "its members: user, session, worker, ssrc, muted, counters" },
	{ "sessions", 0, 0, o_sessions, cmd_sessions, "[--user U]",
	  "connected sessions, all or one user's" },
	{ "kick", 1, 1, o_kick, cmd_kick, "USER [--reason TEXT] [--ban DURATION]",
	  "close every connection of USER (4001); --ban: refuse it for DURATION" },
	{ "kick-session", 1, 1, no_opts, cmd_kick_session, "SESSION",
	  "close one session (4001)" },
	{ "mute", 1, 1, no_opts, cmd_mute, "USER",
	  "drop USER's audio" },
	{ "unmute", 1, 1, no_opts, cmd_unmute, "USER",
	  "relay USER's audio again" },
	{ "broadcast", 2, 2, no_opts, cmd_broadcast, "ROOM TEXT",
	  "system message to a room (\"*\" = every room)" },
	{ "send", 2, 2, no_opts, cmd_send, "USER JSON",
	  "push {\"type\":\"message\",\"data\":JSON} to USER" },
	{ "reload", 0, 0, no_opts, cmd_reload, "",
	  "re-read the config, start a new generation of workers" },
	{ "drain", 0, 0, no_opts, cmd_drain, "",
	  "drain every connection (SPEC 5)" },
	{ "audit", 0, 0, o_audit, cmd_audit,
	  "[--since DURATION] [--user U] [--room R] [--event E] [--limit N]",
	  "rows of the audit journal" },
	{ "token", 0, 0, o_token, cmd_token,
	  "--user U --room R [--rooms A,B] [--ttl 1h] [--perm listen] [--dev D]",
	  "mint an HS256 client token with the config's secret" },
	{ "metrics", 0, 0, no_opts, cmd_metrics, "",
	  "the Prometheus text, as /metrics serves it" },
	{ "record", 1, 2, o_record, cmd_record,
	  "start ROOM [--dir DIR] | stop ROOM | list",
	  "record a room: one Ogg Opus or WAV file per speaker (audiogwd-downstream(7))" },
	{ "forward", 1, 3, o_forward, cmd_forward,
	  "start ROOM udp://HOST:PORT [--ssrc N] | stop ROOM [udp://HOST:PORT] | list | sdp ROOM [udp://HOST:PORT]",
	  "send a room's frames (or one speaker's) as plain RTP over UDP; sdp: the SDP to receive them" },
	{ "top", 0, 0, no_opts, cmd_top, "",
	  "live view: totals, rates, workers, busiest rooms (q quits)" },
	{ "help", 0, 1, no_opts, cmd_help, "[COMMAND]",
	  "this help, or one command's" },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* ---- messages ---- */

static void vmessage(const ctx *x, const char *fmt, va_list ap)
{
	fputs("audiogwctl: ", stderr);
	if (x && x->cmd)
		fprintf(stderr, "%s: ", x->cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int ctl_fail(const ctx *x, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(x, fmt, ap);
	va_end(ap);
	return code;
}

static void print_usage_line(const command *c, FILE *f)
{
	fprintf(f, "usage: audiogwctl [-c CONFIG | -s CONTROL_SOCKET] [--json] %s%s%s\n",
		c->name, c->usage[0] ? " " : "", c->usage);
}

int ctl_usage(const ctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(x, fmt, ap);
	va_end(ap);
	const command *c = x && x->cmd ? find_command(x->cmd) : NULL;
	if (c)
		print_usage_line(c, stderr);
	else
		fputs("run 'audiogwctl help' for the commands\n", stderr);
	return CTL_USAGE;
}

/* ---- help ---- */

static void print_help(FILE *f)
{
	fputs("usage: audiogwctl [-c CONFIG | -s CONTROL_SOCKET] [--json] COMMAND [ARGS]\n"
	      "\n"
	      "  -c CONFIG          audiogwd.conf to read admin.control_socket (and, for\n"
	      "                     token, the HS256 secret) from; default " DEFAULT_CONFIG "\n"
	      "  -s SOCKET          the control socket's NNG URL (a bare path means ipc://PATH);\n"
	      "                     the config is then not read, except by token\n"
	      "  --json             print the result as JSON\n"
	      "  -h, --help         this help;  -V, --version  the version\n"
	      "\n"
	      "commands:\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const command *c = &commands[i];
		char head[128];
		snprintf(head, sizeof head, "%s%s%s", c->name, c->usage[0] ? " " : "", c->usage);
		if (strlen(head) <= 26)
			fprintf(f, "  %-26s  %s\n", head, c->summary);
		else
			fprintf(f, "  %s\n  %-26s  %s\n", head, "", c->summary);
	}
	fputs("\nDURATION: a number with ms, s, m, h or d, e.g. 90s, 10m, 1h.\n"
	      "exit status: 0 ok, 1 the command failed, 2 bad usage, 3 audiogwd unreachable\n", f);
}

static int cmd_help(ctx *x, const cmd_args *a)
{
	if (a->npos == 0) {
		print_help(stdout);
		return CTL_OK;
	}
	const command *c = find_command(a->pos[0]);
	if (!c)
		return ctl_usage(x, "no command \"%s\"", a->pos[0]);
	print_usage_line(c, stdout);
	printf("  %s\n", c->summary);
	return CTL_OK;
}

/* ---- argument parsing ---- */

const char *arg_opt(const cmd_args *a, const char *name)
{
	for (int i = 0; a->opt_names[i]; i++)
		if (strcmp(a->opt_names[i], name) == 0)
			return a->opt[i];
	return NULL;
}

/* If argv[*i] is "--NAME", "--NAME=V" or (short != 0) "-S", "-SV": stores
 * the value (the next argument if not attached) and returns 1; 0 if it is
 * not that option; -1 if its value is missing. */
static int take_value(int argc, char **argv, int *i, const char *name, char shortname,
	const char **val)
{
	const char *s = argv[*i];
	size_t n = strlen(name);

	if (s[0] == '-' && s[1] == '-' && strncmp(s + 2, name, n) == 0 &&
	    (s[2 + n] == '\0' || s[2 + n] == '=')) {
		if (s[2 + n] == '=') {
			*val = s + 3 + n;
			return 1;
		}
	} else if (shortname && s[0] == '-' && s[1] == shortname) {
		if (s[2]) {
			*val = s + 2;
			return 1;
		}
	} else {
		return 0;
	}
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

static int is_flag(const char *s, const char *shortf, const char *longf)
{
	return (shortf && strcmp(s, shortf) == 0) || strcmp(s, longf) == 0;
}

/* Parses a command's own arguments (after its name). --json, -h and
 * --help are accepted among them too; "--" ends the options.
 * Returns CTL_OK, CTL_USAGE (printed), or -1 for "help was asked". */
static int parse_cmd_args(ctx *x, const command *c, int argc, char **argv, cmd_args *a)
{
	int only_pos = 0;

	memset(a, 0, sizeof *a);
	a->opt_names = c->opts;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (only_pos || s[0] != '-' || s[1] == '\0') {
			if (a->npos >= c->max_args || a->npos >= CTL_MAX_POS)
				return ctl_usage(x, "unexpected argument \"%s\"", s);
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(s, "--json") == 0) {
			x->json = 1;
			continue;
		}
		if (is_flag(s, "-h", "--help"))
			return -1;
		int k = 0, r = 0;
		const char *val = NULL;
		for (; c->opts[k]; k++)
			if ((r = take_value(argc, argv, &i, c->opts[k], 0, &val)) != 0)
				break;
		if (!c->opts[k])
			return ctl_usage(x, "unknown option \"%s\"", s);
		if (r < 0)
			return ctl_usage(x, "option --%s needs a value", c->opts[k]);
		if (a->opt[k])
			return ctl_usage(x, "option --%s given twice", c->opts[k]);
		a->opt[k] = val;
	}
	if (a->npos < c->min_args)
		return ctl_usage(x, "missing argument%s", c->min_args - a->npos > 1 ? "s" : "");
	return CTL_OK;
}

/* Global options before the command. Returns the index of the command
 * name, or -1 with *rc set (help/version printed, or a usage error). */
static int parse_global(ctx *x, int argc, char **argv, int *rc)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *s = argv[i], *val = NULL;
		int r;
		if (strcmp(s, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(s, "--json") == 0) {
			x->json = 1;
		} else if (is_flag(s, "-h", "--help")) {
			print_help(stdout);
			*rc = CTL_OK;
			return -1;
		} else if (is_flag(s, "-V", "--version")) {
			printf("audiogwctl %s\n", AGW_VERSION);
			*rc = CTL_OK;
			return -1;
		} else if ((r = take_value(argc, argv, &i, "config", 'c', &val)) != 0) {
			if (r < 0 || !val[0]) {
				*rc = ctl_usage(x, "-c needs a config file");
				return -1;
			}
			x->config_file = val;
			x->config_given = 1;
		} else if ((r = take_value(argc, argv, &i, "socket", 's', &val)) != 0) {
			if (r < 0 || !val[0]) {
				*rc = ctl_usage(x, "-s needs a control socket URL or path");
				return -1;
			}
			x->socket_arg = val;
		} else {
			*rc = ctl_usage(x, "unknown option \"%s\"", s);
			return -1;
		}
	}
	if (i >= argc) {
		fputs("audiogwctl: no command given\n", stderr);
		print_help(stderr);
		*rc = CTL_USAGE;
		return -1;
	}
	return i;
}

int main(int argc, char **argv)
{
	ctx x;
	cmd_args a;
	int rc = CTL_OK;

	memset(&x, 0, sizeof x);
	x.config_file = DEFAULT_CONFIG;
	int ci = parse_global(&x, argc, argv, &rc);
	if (ci < 0)
		return rc;
	const command *c = find_command(argv[ci]);
	if (!c)
		return ctl_usage(&x, "unknown command \"%s\"", argv[ci]);
	x.cmd = c->name;
	rc = parse_cmd_args(&x, c, argc - ci - 1, argv + ci + 1, &a);
	if (rc < 0) {
		print_usage_line(c, stdout);
		printf("  %s\n", c->summary);
		return CTL_OK;
	}
	if (rc == CTL_OK)
		rc = c->run(&x, &a);
	ctl_close(&x);
	if (fflush(stdout) != 0 && rc == CTL_OK)
		rc = ctl_fail(&x, CTL_FAIL, "cannot write the output");
	return rc;
}
