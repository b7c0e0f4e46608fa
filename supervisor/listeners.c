/* listeners.c: binds one SO_REUSEPORT listening socket per worker slot on
 * every listen address. The supervisor keeps them open for its whole life
 * (closing one drops the connections queued on it); workers inherit them. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

struct cfg;
static int same_addr(const cfg_addr *a, const cfg_addr *b);

static int listener_bind(const cfg_addr *a, char *err, size_t errlen)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		goto err;
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		goto err;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0)
		goto err;
	return fd;
err:
	snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* A failed reopen: give the moved sockets back to cur, close the new ones. */
static void listeners_undo(listener_set *cur, listener_set *next, const cfg *oldc, const cfg *c)
{
	for (int a = 0; a < next->n_addrs; a++)
		for (int s = 0; s < next->n_slots; s++) {
			int fd = next->fds[a][s], back = 0;
			if (fd < 0)
				continue;
			for (int o = 0; o < cur->n_addrs && !back; o++)
				if (same_addr(&oldc->listen[o], &c->listen[a]) && s < cur->n_slots &&
				    cur->fds[o][s] < 0) {
					cur->fds[o][s] = fd;
					back = 1;
				}
			if (!back)
				close(fd);
		}
}

int listeners_open(listener_set *ls, const cfg *c, char *err, size_t errlen)
{
	ls->n_addrs = c->n_listen;
	ls->n_slots = c->workers;
	memset(ls->fds, 0xff, sizeof ls->fds);  /* every fd -1 */
	for (int a = 0; a < c->n_listen; a++)
		for (int s = 0; s < c->workers; s++) {
			ls->fds[a][s] = listener_bind(&c->listen[a], err, errlen);
			if (ls->fds[a][s] < 0) {
				listeners_close(ls);
				return -1;
			}
		}
	return 0;
}

void listeners_close(listener_set *ls)
{
	for (int a = 0; a < ls->n_addrs; a++)
		for (int s = 0; s < ls->n_slots; s++)
			if (ls->fds[a][s] >= 0)
				close(ls->fds[a][s]);
	ls->n_addrs = ls->n_slots = 0;
}

static int same_addr(const cfg_addr *a, const cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* For a reload: the sockets of next (per the new config) reuse the open
 * ones of cur where address and slot match (so nothing queued on them is
 * lost); what cur keeps afterwards is for the caller to close once the old
 * generation is gone. */
int listeners_reopen(listener_set *cur, listener_set *next, const cfg *oldc, const cfg *c,
                     char *err, size_t errlen)
{
	next->n_addrs = c->n_listen;
	next->n_slots = c->workers;
	memset(next->fds, 0xff, sizeof next->fds);
	for (int a = 0; a < c->n_listen; a++) {
		int old = -1;
		for (int o = 0; o < cur->n_addrs && old < 0; o++)
			if (same_addr(&oldc->listen[o], &c->listen[a]))
				old = o;
		for (int s = 0; s < c->workers; s++) {
			if (old >= 0 && s < cur->n_slots && cur->fds[old][s] >= 0) {
				next->fds[a][s] = cur->fds[old][s];
				cur->fds[old][s] = -1;
				continue;
			}
			if ((next->fds[a][s] = listener_bind(&c->listen[a], err, errlen)) < 0) {
				listeners_undo(cur, next, oldc, c);
				return -1;
			}
		}
	}
	return 0;
}
