/* reload.c: the config's life in the supervisor. Loading and checking it;
 * SIGHUP (reload): a new generation of workers on the same listening
 * sockets (new ones only for new addresses or slots), and once it is ready
 * the old generation drains and exits; an invalid config changes nothing.
 * And the host drain (audiogwctl drain). */
#include "supervisor/supervisor.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RELOAD_READY_TIMEOUT_MS 10000

int config_load(const char *file, cfg *out, char **text, size_t *len, cfg_errors *errs)
{
	memset(errs, 0, sizeof *errs);
	char *t = cfg_read_file(file, len);
	if (!t) {
		errs->n = 1;
		snprintf(errs->msg[0], sizeof errs->msg[0], "%.200s: cannot read: %s", file, strerror(errno));
		return -1;
	}
	cfg_defaults(out);
	if (cfg_load_buffer(out, file, t, errs) > 0) {
		free(t);
		return -1;
	}
	*text = t;
	return 0;
}

int config_memfd(const char *text, size_t len)
{
	int fd = memfd_create("audiogwd-config", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return fd;
}

static void reload_failed(supervisor *s, const char *why)
{
	snprintf(s->last_error, sizeof s->last_error, "%s", why);
	log_error("config_error", "reload refused, still running generation %d: %s", s->generation, why);
	command_audit(s, "config_error", NULL, NULL, "reload", why);
}

/* Keys whose change needs a restart: a reload that changes one is refused
 * (the workers read the new text, so the old value cannot be kept quietly). */
static int restart_only_key_changed(supervisor *s, const cfg *next, char *err, size_t errlen)
{
	static const struct { const char *name; size_t off; } keys[] = {
		{ "server.run_dir", offsetof(cfg, run_dir) },
		{ "server.user", offsetof(cfg, user) },
		{ "admin.listen", offsetof(cfg, admin_listen) },
		{ "admin.control_socket", offsetof(cfg, control_socket) },
		{ "audit.database", offsetof(cfg, audit_database) },
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp((const char *)&s->cfg + keys[i].off, (const char *)next + keys[i].off)) {
			snprintf(err, errlen, "%s changed: restart audiogwd to apply it", keys[i].name);
			return 1;
		}
	if (next->max_connections > shm_registry(s->shm)->capacity) {
		snprintf(err, errlen, "server.max_connections above %d needs a restart",
		         shm_registry(s->shm)->capacity);
		return 1;
	}
	return 0;
}

int supervisor_reload(supervisor *s)
{
	static cfg next;
	static cfg_errors errs;
	char *text, err[512];
	size_t len;
	if (s->stopping) {
		reload_failed(s, "the daemon is stopping");
		return -1;
	}
	if (fleet_count(s, FLEET_RETIRING)) {
		reload_failed(s, "the previous generation is still draining; try again later");
		return -1;
	}
	if (config_load(s->cfg.file, &next, &text, &len, &errs) < 0) {
		snprintf(err, sizeof err, "%s%s", errs.msg[0], errs.n > 1 ? " (and more errors)" : "");
		reload_failed(s, err);
		return -1;
	}
	if (restart_only_key_changed(s, &next, err, sizeof err)) {
		free(text);
		reload_failed(s, err);
		return -1;
	}
	listener_set nl;
	int fd = config_memfd(text, len);
	if (fd < 0 || listeners_reopen(&s->listeners, &nl, &s->cfg, &next, err, sizeof err) < 0) {
		if (fd < 0)
			snprintf(err, sizeof err, "cannot keep the config: %s", strerror(errno));
		else
			close(fd);
		free(text);
		reload_failed(s, err);
		return -1;
	}
	/* commit */
	s->leftover = s->listeners;
	s->listeners = nl;
	close(s->cfg_fd);
	s->cfg_fd = fd;
	free(s->cfg_text);
	s->cfg_text = text;
	s->cfg_len = len;
	s->cfg = next;
	log_set_level(s->cfg.log_level);
	fleet_start_generation(s);
	int late = fleet_wait_ready(s, RELOAD_READY_TIMEOUT_MS);
	if (late)
		log_warn("reload", "%d workers of generation %d are not ready yet", late, s->generation);
	fleet_command(s, FLEET_RETIRING, SHM_CMD_DRAIN_RELOAD);
	log_info("reload", "generation %d started, the previous one drains", s->generation);
	char detail[64];
	snprintf(detail, sizeof detail, "{\"generation\":%d}", s->generation);
	command_audit(s, "reload", NULL, NULL, NULL, detail);
	sup_downstream_reload(s);
	fleet_retired(s);
	return 0;
}

/* Once the retiring generation is gone, the sockets only it used go too. */
void fleet_retired(supervisor *s)
{
	if (!fleet_count(s, FLEET_RETIRING))
		listeners_close(&s->leftover);
}

void supervisor_drain(supervisor *s)
{
	if (!s->draining) {
		s->draining = 1;
		log_info("drain", "host drain: new connections are refused, sessions are drained");
		command_audit(s, "drain", NULL, NULL, "operator", NULL);
	}
	fleet_command(s, FLEET_ALL, SHM_CMD_DRAIN_HOST);
}
