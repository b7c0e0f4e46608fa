/* cidr.h: address allowlists ("127.0.0.0/8,::1/128") and udp://HOST:PORT
 * destinations, for [downstream] allow: the RTP forward may only send to
 * addresses the config allows, so the admin API cannot be turned into a
 * packet cannon. Pure: no I/O, no name resolution (hosts are numeric). */
#ifndef AGW_CIDR_H
#define AGW_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_MAX 64                /* rules in one list */
#define CIDR_URL_MAX 128           /* longest udp:// URL */

typedef struct cidr_rule {
	int family;                    /* AF_INET or AF_INET6 */
	uint8_t addr[16];              /* network byte order, host bits cleared */
	int prefix;                    /* 0..32 or 0..128 */
} cidr_rule;

typedef struct cidr_list {
	int n;
	cidr_rule r[CIDR_MAX];
} cidr_list;

/* Parses a comma-separated list of ADDRESS[/PREFIX] (blanks around items are
 * ignored; an address without a prefix is one host; host bits past the
 * prefix are cleared). "" is an empty list, which allows nothing.
 * 0, or -1 with a message in err. */
int cidr_parse_list(const char *text, cidr_list *out, char *err, size_t errlen);

/* 1 if the address is in one of the rules. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is matched as the IPv4 address it carries. */
int cidr_match(const cidr_list *l, const struct sockaddr *sa);

/* udp://IPV4:PORT or udp://[IPV6]:PORT (numeric hosts only, port 1-65535,
 * not the unspecified address). 0, or -1 with a message in err. */
int cidr_parse_udp_url(const char *url, struct sockaddr_storage *ss, socklen_t *len, char *err,
                       size_t errlen);

/* "udp://1.2.3.4:5" / "udp://[::1]:5" of an address; host alone without
 * the port when port_too is 0 ("1.2.3.4", "::1"). */
void cidr_format(const struct sockaddr *sa, int port_too, char *buf, size_t len);

#endif
