/* runfile.c: run_dir and the pid file. The pid file is held with an
 * exclusive flock for the supervisor's life, so a second instance on the
 * same run_dir refuses to start, and a stale file from a crash is harmless. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path)
{
	char tmp[CFG_PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Started as root with server.user: workers, which drop to that user,
 * create their bus sockets in run_dir, so it becomes theirs. */
static int give_run_dir(supervisor *s, char *err, size_t errlen)
{
	if (!s->cfg.user[0] || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(s->cfg.user);
	if (!pw) {
		snprintf(err, errlen, "server.user \"%s\" does not exist", s->cfg.user);
		return -1;
	}
	if (chown(s->cfg.run_dir, pw->pw_uid, pw->pw_gid) < 0) {
		snprintf(err, errlen, "cannot give run_dir %s to %s: %s", s->cfg.run_dir, s->cfg.user,
		         strerror(errno));
		return -1;
	}
	return 0;
}

int runfile_acquire(supervisor *s, char *err, size_t errlen)
{
	if (mkdir_p(s->cfg.run_dir) < 0) {
		snprintf(err, errlen, "cannot create run_dir %s: %s", s->cfg.run_dir, strerror(errno));
		return -1;
	}
	if (give_run_dir(s, err, errlen) < 0)
		return -1;
	snprintf(s->pid_path, sizeof s->pid_path, "%s/audiogwd.pid", s->cfg.run_dir);
	int fd = open(s->pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", s->pid_path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char old[32] = "";
		ssize_t n = pread(fd, old, sizeof old - 1, 0);
		old[n > 0 ? n : 0] = '\0';
		old[strcspn(old, "\n")] = '\0';
		snprintf(err, errlen, "another audiogwd (pid %s) is running with run_dir %s",
		         *old ? old : "?", s->cfg.run_dir);
		close(fd);
		return -1;
	}
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		snprintf(err, errlen, "cannot write %s: %s", s->pid_path, strerror(errno));
		close(fd);
		return -1;
	}
	s->runfile_fd = fd;
	return 0;
}

void runfile_release(supervisor *s)
{
	if (s->runfile_fd <= 0)
		return;
	unlink(s->pid_path);
	close(s->runfile_fd);
	s->runfile_fd = -1;
}
