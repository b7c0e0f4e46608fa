/* floor.c: audiogw-floor, what this machine's kernel costs before any
 * gateway code runs: the CPU a process spends per send() of a small message
 * to a loopback TCP peer that another process drains with epoll ("send"),
 * and per accepted connection that reads a request and writes an answer
 * ("accept"). The gateway cannot deliver a frame for less than a send()
 * divided by the frames that share it, nor accept a WebSocket for less than
 * the accept floor: bench/RESULTS.md compares the two. Loopback only,
 * bounded in time and sockets; no gateway needed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_S 5.0
#define MSG_BYTES 114        /* a 100-byte payload RTP frame in a WebSocket frame */
#define MAX_CONNS 8000       /* both ends in this process tree: under the fd limit */

static double cpu_s(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
	       (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int listener(struct sockaddr_in *a)
{
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t len = sizeof *a;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = 0;
	setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (l < 0 || bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 4096) < 0 ||
	    getsockname(l, (struct sockaddr *)a, &len) < 0) {
		perror("audiogw-floor: listen");
		exit(1);
	}
	return l;
}

/* The child drains every socket it is given until killed. */
static pid_t drainer(const int *fds, int n)
{
	pid_t p = fork();
	if (p)
		return p;
	int ep = epoll_create1(0);
	for (int i = 0; i < n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.fd = fds[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
	}
	static char buf[65536];
	struct epoll_event ev[512];
	for (double end = now_s() + RUN_S + 5; now_s() < end;) {
		int k = epoll_wait(ep, ev, 512, 100);
		for (int j = 0; j < k; j++)
			if (read(ev[j].data.fd, buf, sizeof buf) <= 0)
				epoll_ctl(ep, EPOLL_CTL_DEL, ev[j].data.fd, NULL);
	}
	_exit(0);
}

/* send: n connections, messages of per frames, round robin, flat out. */
static void floor_send(int n, int per)
{
	struct sockaddr_in a;
	int l = listener(&a), *cl = calloc((size_t)n, sizeof *cl), *sv = calloc((size_t)n, sizeof *sv);
	for (int i = 0; i < n; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cl[i], (struct sockaddr *)&a, sizeof a) < 0 || (sv[i] = accept(l, NULL, NULL)) < 0) {
			perror("audiogw-floor: connect");
			exit(1);
		}
	}
	pid_t child = drainer(cl, n);
	static char msg[MSG_BYTES * 64];
	memset(msg, 0x5a, sizeof msg);
	long sends = 0;
	double t0 = now_s(), c0 = cpu_s();
	for (int i = 0; now_s() - t0 < RUN_S; i = (i + 1) % n)
		sends += send(sv[i], msg, (size_t)MSG_BYTES * (size_t)per, MSG_NOSIGNAL) > 0;
	double c = cpu_s() - c0, t = now_s() - t0;
	printf("send: %d connections, %d x %d bytes per send(): %ld sends in %.1f s, "
	       "%.2f us CPU per send(), %.2f us per frame\n",
	       n, per, MSG_BYTES, sends, t, c / (double)sends * 1e6, c / (double)sends / per * 1e6);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* accept: the child connects n clients and sends each a request; they wait
 * in the listen backlog (n <= ACCEPT_MAX) until the child says all are
 * there. Then the parent, timed, accepts each, reads its request and
 * writes an answer, keeping the socket (as a gateway keeps its clients):
 * no sleeping in accept, only the accepting side's work is measured. */
#define ACCEPT_MAX 4000

static void floor_accept(int n)
{
	struct sockaddr_in a;
	int l = listener(&a), ready[2];
	static const char req[] = "GET /v1/audio?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	if (pipe(ready) < 0) {
		perror("audiogw-floor: pipe");
		exit(1);
	}
	pid_t p = fork();
	if (!p) {
		for (int i = 0; i < n; i++) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			if (connect(c, (struct sockaddr *)&a, sizeof a) < 0 || write(c, req, sizeof req - 1) < 0)
				_exit(1);
		}
		if (write(ready[1], "r", 1) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	char buf[4096];
	if (read(ready[0], buf, 1) != 1) {
		fprintf(stderr, "audiogw-floor: the connecting process failed\n");
		exit(1);
	}
	int held = 0;
	double t0 = now_s(), c0 = cpu_s();
	while (held < n && now_s() - t0 < RUN_S) {
		int s = accept4(l, NULL, NULL, 0);
		if (s < 0)
			continue;
		if (read(s, buf, sizeof buf) > 0 && write(s, resp, sizeof resp - 1) > 0)
			held++;
	}
	double c = cpu_s() - c0, t = now_s() - t0;
	printf("accept: %d queued connections accepted in %.3f s: %.2f us CPU per accept + read + "
	       "write (accepting side only)\n", held, t, c / held * 1e6);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 5000, per = argc > 3 ? atoi(argv[3]) : 1;
	int accept_mode = argc >= 2 && !strcmp(argv[1], "accept");
	if (argc < 2 || n < 1 || n > (accept_mode ? ACCEPT_MAX : MAX_CONNS) || per < 1 || per > 64 ||
	    (strcmp(argv[1], "send") && !accept_mode)) {
		fprintf(stderr, "usage: audiogw-floor send [CONNECTIONS [FRAMES_PER_SEND]] | "
		                "accept [CONNECTIONS]\n  CONNECTIONS 1..%d for send (5000), 1..%d for "
		                "accept; FRAMES_PER_SEND 1..64 (1)\n", MAX_CONNS, ACCEPT_MAX);
		return 2;
	}
	if (!strcmp(argv[1], "send"))
		floor_send(n, per);
	else
		floor_accept(n);
	return 0;
}
