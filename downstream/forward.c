/* forward.c: RTP forward. A forward sends a room's frames (or one
 * speaker's, with an SSRC) unchanged as plain RTP over UDP: the gateway
 * already rewrote each packet's SSRC to its sender's, so a receiver can
 * tell the speakers apart. Destinations are numeric udp://HOST:PORT
 * addresses inside [downstream] allow; the check happens before any socket
 * exists, so a refused destination never sees a packet. Each forward has
 * its own connected, non-blocking UDP socket: a send that would block is
 * dropped and counted, never waited for. */
#include "downstream/downstream.h"
#include "downstream/media.h"
#include "common/clock.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

forward *forward_open(downstream *d, const char *room, const char *url, uint32_t ssrc,
                      int *status, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char canon[CIDR_URL_MAX];
	if (cidr_parse_udp_url(url, &ss, &len, err, errlen) < 0) {
		*status = 400;
		return NULL;
	}
	cidr_format((struct sockaddr *)&ss, 1, canon, sizeof canon);
	if (!cidr_match(&d->allow, (struct sockaddr *)&ss)) {
		*status = 403;
		snprintf(err, errlen, "destination %s is not allowed: it is outside [downstream] allow (%.200s)",
		         canon, d->cfg.downstream_allow[0] ? d->cfg.downstream_allow : "empty: nothing is");
		return NULL;
	}
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		*status = 500;
		snprintf(err, errlen, "cannot open a UDP socket to %s: %s", canon, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	forward *f = calloc(1, sizeof *f);
	if (!f) {
		close(fd);
		*status = 500;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(f->room, sizeof f->room, "%s", room);
	snprintf(f->url, sizeof f->url, "%s", canon);
	f->ssrc = ssrc;
	f->dst = ss;
	f->dst_len = len;
	f->fd = fd;
	f->started_us = clock_wall_us();
	return f;
}

void forward_close(forward *f)
{
	if (!f)
		return;
	close(f->fd);
	free(f);
}

void forward_frame(downstream *d, forward *f, const bus_msg *m)
{
	if (f->ssrc && m->ssrc != f->ssrc)
		return;
	ssize_t n = send(f->fd, m->payload, m->payload_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)m->payload_len) {
		f->frames++;
		f->bytes += m->payload_len;
		f->pts |= ds_pt_bit(m->payload[1] & 0x7f);
		atomic_fetch_add_explicit(&d->counters->frames[SHM_DS_FORWARD], 1, memory_order_relaxed);
		return;
	}
	/* full socket buffer, or the last packet's ICMP error (nobody listens) */
	f->dropped++;
	f->last_errno = n < 0 ? errno : EMSGSIZE;
	atomic_fetch_add_explicit(&d->counters->dropped, 1, memory_order_relaxed);
}

json_t *forward_json(const forward *f)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:o}", "room", f->room, "url", f->url,
	                 "ssrc", f->ssrc ? json_integer(f->ssrc) : json_null(),
	                 "started_at", ds_timestamp(f->started_us), "frames", (json_int_t)f->frames,
	                 "bytes", (json_int_t)f->bytes, "dropped", (json_int_t)f->dropped,
	                 "error", f->last_errno ? json_string(strerror(f->last_errno)) : json_null());
}

/* An SDP (RFC 4566) for a receiver of f: its address and port, the payload
 * types it gets (those forwarded so far, else those the room sent, else
 * Opus, the usual one), Opus first. Receivers such as ffmpeg need exactly
 * one payload type on the line: forward one speaker (--ssrc) that uses one
 * codec, and ask for the SDP once audio flowed. */
char *forward_sdp(const forward *f, unsigned room_pts)
{
	static const struct { unsigned bit; int pt; const char *map; } codecs[] = {
		{ DS_PT_OPUS, PT_OPUS, "opus/48000/2" }, { DS_PT_PCMU, PT_PCMU, "PCMU/8000" },
		{ DS_PT_PCMA, PT_PCMA, "PCMA/8000" }, { DS_PT_L16, PT_L16, "L16/48000/1" },
	};
	unsigned pts = f->pts ? f->pts : room_pts ? room_pts : DS_PT_OPUS;
	char host[64], list[64] = "", maps[256] = "";
	cidr_format((const struct sockaddr *)&f->dst, 0, host, sizeof host);
	int port = f->dst.ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)&f->dst)->sin6_port)
	                                         : ntohs(((const struct sockaddr_in *)&f->dst)->sin_port);
	const char *ipv = f->dst.ss_family == AF_INET6 ? "IP6" : "IP4";
	for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
		if (!(pts & codecs[i].bit))
			continue;
		size_t l = strlen(list), m = strlen(maps);
		snprintf(list + l, sizeof list - l, " %d", codecs[i].pt);
		snprintf(maps + m, sizeof maps - m, "a=rtpmap:%d %s\r\n", codecs[i].pt, codecs[i].map);
	}
	char ssrc_line[64] = "";
	if (f->ssrc)
		snprintf(ssrc_line, sizeof ssrc_line, "a=ssrc:%u cname:audiogwd\r\n", f->ssrc);
	char *out = NULL;
	if (asprintf(&out, "v=0\r\n"
	                   "o=- %lld 1 IN %s %s\r\n"
	                   "s=audiogwd room %s\r\n"
	                   "c=IN %s %s\r\n"
	                   "t=0 0\r\n"
	                   "m=audio %d RTP/AVP%s\r\n"
	                   "%s%s"
	                   "a=recvonly\r\n",
	             (long long)(f->started_us / 1000000), ipv, host, f->room, ipv, host, port, list,
	             maps, ssrc_line) < 0)
		return NULL;
	return out;
}
