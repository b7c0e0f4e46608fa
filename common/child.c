/* child.c: see child.h. */
#include "common/child.h"
#include "common/log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int child_load_config(cfg *c, const char *file, const char *who)
{
	static cfg_errors errs;
	char path[32];
	size_t len;
	snprintf(path, sizeof path, "/proc/self/fd/%d", CHILD_FD_CONFIG);
	char *text = cfg_read_file(path, &len);
	if (!text) {
		fprintf(stderr, "audiogwd %s: the config (fd %d) is missing\n", who, CHILD_FD_CONFIG);
		return -1;
	}
	cfg_defaults(c);
	int nerr = cfg_load_buffer(c, file, text, &errs);
	free(text);
	close(CHILD_FD_CONFIG);
	for (int i = 0; i < nerr && i < CFG_MAX_ERRORS; i++)
		fprintf(stderr, "audiogwd %s: %s\n", who, errs.msg[i]);
	return nerr ? -1 : 0;
}

int child_drop_privileges(const char *user)
{
	if (!*user || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_error("startup", "server.user \"%s\" does not exist", user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("startup", "cannot drop privileges to %s: %s", user, strerror(errno));
		return -1;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);  /* setuid clears it */
	return 0;
}

volatile sig_atomic_t child_stop_signal, child_reopen_log;

static void on_child_signal(int sig)
{
	if (sig == SIGUSR1)
		child_reopen_log = 1;
	else
		child_stop_signal = sig;
}

void child_watch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_child_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}
