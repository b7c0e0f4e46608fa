/* log.c: JSON-lines logger (SPEC 6.5). Owns the log file descriptor and the
 * level; each call builds one object with jansson and writes it with a single
 * write(2), so lines from several processes sharing the file never interleave. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
	int fd;
	int level;
	int worker;
	char file[512];
} log_state = { 2, LOG_INFO, -1, "" };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

const char *log_level_name(int level)
{
	return level >= LOG_DEBUG && level <= LOG_ERROR ? level_names[level] : "info";
}

int log_level_from_name(const char *name)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

static int log_open_file(const char *file)
{
	return open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open(const char *file, int level, int worker)
{
	log_state.level = level;
	log_state.worker = worker;
	if (!file || !*file) {
		log_state.file[0] = '\0';
		log_state.fd = 2;
		return 0;
	}
	int fd = log_open_file(file);
	if (fd < 0)
		return -1;
	if (log_state.fd > 2)
		close(log_state.fd);
	log_state.fd = fd;
	snprintf(log_state.file, sizeof log_state.file, "%s", file);
	return 0;
}

int log_reopen(void)
{
	if (!log_state.file[0])
		return 0;
	int fd = log_open_file(log_state.file);
	if (fd < 0)
		return -1;
	int old = log_state.fd;
	log_state.fd = fd;
	if (old > 2)
		close(old);
	return 0;
}

void log_set_level(int level) { log_state.level = level; }
int log_enabled(int level) { return level >= log_state.level; }

static void log_timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06ldZ", (long)tv.tv_usec);
}

static void log_set_str(json_t *o, const char *key, const char *val)
{
	if (val && *val)
		json_object_set_new(o, key, json_string(val));
}

void log_msg(int level, const char *event, const log_fields *f, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved_errno = errno;
	char ts[40], msg[1024];
	log_timestamp(ts, sizeof ts);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	json_t *o = json_object();
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(log_level_name(level)));
	json_object_set_new(o, "worker", log_state.worker < 0 ? json_string("supervisor")
	                                                       : json_integer(log_state.worker));
	json_object_set_new(o, "event", json_string(event));
	if (f) {
		log_set_str(o, "session", f->session);
		log_set_str(o, "user", f->user);
		log_set_str(o, "room", f->room);
		log_set_str(o, "ip", f->ip);
		log_set_str(o, "reason", f->reason);
		if (f->latency_ms >= 0)
			json_object_set_new(o, "latency_ms", json_real(f->latency_ms));
	}
	if (*msg)
		json_object_set_new(o, "msg", json_string(msg));
	char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line) {
		size_t n = strlen(line);
		line[n] = '\n';  /* the NUL becomes the newline: one write(2) */
		ssize_t w = write(log_state.fd, line, n + 1);
		(void)w;
		free(line);
	}
	errno = saved_errno;
}
