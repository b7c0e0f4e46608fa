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
