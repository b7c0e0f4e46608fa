/* gwstat.c: the gateway's resource use, read from /proc. The process tree
 * under the supervisor pid (via /proc/PID/task/TID/children) is walked on
 * every sample, so workers that a reload or a crash replaced are picked up:
 * CPU = utime+stime of every live process plus cutime+cstime (the children
 * they have reaped, e.g. a killed worker), RSS = sum of VmRSS, PSS = sum of
 * Pss from smaps_rollup when readable (shared pages counted once). */
#include "bench.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GW_MAX_PROCS 512

static int read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (int)n;
}

/* Appends the children of pid (all its threads) to out[*n..max). */
static void add_children(pid_t pid, pid_t *out, int *n, int max)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[128];
		snprintf(cpath, sizeof cpath, "/proc/%d/task/%.20s/children", (int)pid, e->d_name);
		if (read_file(cpath, buf, sizeof buf) <= 0)
			continue;
		char *s = buf, *end;
		for (long v = strtol(s, &end, 10); end != s && *n < max; v = strtol(s, &end, 10)) {
			out[(*n)++] = (pid_t)v;
			s = end;
		}
	}
	closedir(d);
}

static int gw_tree(pid_t root, pid_t *out, int max)
{
	int n = 0;
	out[n++] = root;
	for (int i = 0; i < n && i < max; i++)
		add_children(out[i], out, &n, max);
	return n;
}

/* utime+stime+cutime+cstime in clock ticks, or -1. */
static long long proc_ticks(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof buf) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	long long cut, cst;
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
	                 &ut, &st, &cut, &cst) != 4)
		return -1;
	return (long long)(ut + st) + cut + cst;
}

/* The kB value of the first line starting with key in path, or -1. */
static long long proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], buf[8192];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	if (read_file(path, buf, sizeof buf) <= 0)
		return -1;
	size_t kl = strlen(key);
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, key, kl) == 0)
			return strtoll(line + kl, NULL, 10);
	return -1;
}

/* "--slot N" from a NUL-separated command line, or -1 if it is no worker. */
static int worker_slot(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	int n = read_file(path, buf, sizeof buf);
	int is_worker = 0, slot = -1;
	for (int i = 0; i < n; i += (int)strlen(buf + i) + 1) {
		if (strcmp(buf + i, "--worker") == 0)
			is_worker = 1;
		if (strcmp(buf + i, "--slot") == 0 && i + 7 < n)
			slot = atoi(buf + i + 7);
	}
	return is_worker ? (slot >= 0 ? slot : 0) : -1;
}

void gw_sample_take(pid_t root, gw_sample *s)
{
	memset(s, 0, sizeof *s);
	s->t_ns = now_ns();
	if (root <= 0)
		return;
	pid_t pids[GW_MAX_PROCS];
	int n = gw_tree(root, pids, GW_MAX_PROCS);
	long hz = sysconf(_SC_CLK_TCK);
	long long ticks = 0;
	s->pss_ok = 1;
	for (int i = 0; i < n; i++) {
		long long t = proc_ticks(pids[i]);
		if (t < 0)
			continue;          /* exited meanwhile */
		ticks += t;
		s->nproc++;
		long long rss = proc_kb(pids[i], "status", "VmRSS:");
		if (s->nper < GW_PER_MAX) {
			gw_proc *pp = &s->per[s->nper++];
			pp->pid = pids[i];
			pp->slot = worker_slot(pids[i]);
			pp->cpu_s = hz > 0 ? (double)t / (double)hz : 0;
			pp->rss_kb = rss > 0 ? (uint64_t)rss : 0;
		}
		long long pss = proc_kb(pids[i], "smaps_rollup", "Pss:");
		s->rss_kb += rss > 0 ? (uint64_t)rss : 0;
		if (pss < 0)
			s->pss_ok = 0;
		else
			s->pss_kb += (uint64_t)pss;
	}
	s->ok = s->nproc > 0;
	s->cpu_s = hz > 0 ? (double)ticks / (double)hz : 0;
}

pid_t gw_pick_worker(pid_t root, int *slot)
{
	pid_t kids[GW_MAX_PROCS];
	int n = 0;
	add_children(root, kids, &n, GW_MAX_PROCS);
	for (int i = 0; i < n; i++) {
		int s = worker_slot(kids[i]);
		if (s >= 0) {
			*slot = s;
			return kids[i];
		}
	}
	*slot = -1;
	return -1;
}
