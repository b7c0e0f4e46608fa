/* cidr.c: address allowlists and udp:// destinations (see cidr.h). */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_prefix(const char *s, int max, int *out)
{
	if (!*s || strlen(s) > 3)
		return -1;
	int v = 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static void clear_host_bits(cidr_rule *r)
{
	int bytes = r->family == AF_INET ? 4 : 16;
	for (int i = 0; i < bytes; i++) {
		int keep = r->prefix - i * 8;
		if (keep >= 8)
			continue;
		r->addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

static int parse_rule(const char *item, cidr_rule *r, char *err, size_t errlen)
{
	char host[64];
	const char *slash = strchr(item, '/');
	size_t hl = slash ? (size_t)(slash - item) : strlen(item);
	if (hl == 0 || hl >= sizeof host) {
		snprintf(err, errlen, "bad address \"%s\"", item);
		return -1;
	}
	memcpy(host, item, hl);
	host[hl] = '\0';
	memset(r, 0, sizeof *r);
	if (inet_pton(AF_INET, host, r->addr) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, host, r->addr) == 1)
		r->family = AF_INET6;
	else {
		snprintf(err, errlen, "bad address \"%s\" (numeric IPv4 or IPv6 expected)", host);
		return -1;
	}
	int max = r->family == AF_INET ? 32 : 128;
	r->prefix = max;
	if (slash && parse_prefix(slash + 1, max, &r->prefix) < 0) {
		snprintf(err, errlen, "bad prefix length \"%s\" in \"%s\" (0-%d)", slash + 1, item, max);
		return -1;
	}
	clear_host_bits(r);
	return 0;
}

int cidr_parse_list(const char *text, cidr_list *out, char *err, size_t errlen)
{
	out->n = 0;
	const char *p = text;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return 0;           /* all blank: an empty list */
	p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[96];
		while (len && isspace((unsigned char)*p))
			p++, len--;
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0) {
			snprintf(err, errlen, "empty item in the address list");
			return -1;
		}
		if (len >= sizeof item) {
			snprintf(err, errlen, "bad address \"%.*s...\"", 40, p);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (out->n >= CIDR_MAX) {
			snprintf(err, errlen, "too many addresses (at most %d)", CIDR_MAX);
			return -1;
		}
		if (parse_rule(item, &out->r[out->n], err, errlen) < 0)
			return -1;
		out->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

static int rule_has(const cidr_rule *r, int family, const uint8_t *a)
{
	if (r->family != family)
		return 0;
	int full = r->prefix / 8, rest = r->prefix % 8;
	if (memcmp(r->addr, a, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == r->addr[full];
}

int cidr_match(const cidr_list *l, const struct sockaddr *sa)
{
	uint8_t a[16];
	int family = sa->sa_family;
	if (family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			family = AF_INET;
			memcpy(a, in6->s6_addr + 12, 4);
		} else {
			memcpy(a, in6->s6_addr, 16);
		}
	} else {
		return 0;
	}
	for (int i = 0; i < l->n; i++)
		if (rule_has(&l->r[i], family, a))
			return 1;
	return 0;
}

int cidr_parse_udp_url(const char *url, struct sockaddr_storage *ss, socklen_t *len, char *err,
                       size_t errlen)
{
	char host[64];
	const char *h, *end, *ps;
	if (strncmp(url, "udp://", 6) != 0) {
		snprintf(err, errlen, "bad destination \"%.100s\": expected udp://HOST:PORT", url);
		return -1;
	}
	if (strlen(url) >= CIDR_URL_MAX) {
		snprintf(err, errlen, "bad destination: longer than %d bytes", CIDR_URL_MAX - 1);
		return -1;
	}
	h = url + 6;
	if (*h == '[') {
		if (!(end = strchr(h, ']')) || end[1] != ':') {
			snprintf(err, errlen, "bad destination \"%s\": expected udp://[IPV6]:PORT", url);
			return -1;
		}
		h++;
		ps = end + 2;
	} else {
		if (!(end = strrchr(h, ':'))) {
			snprintf(err, errlen, "bad destination \"%s\": missing :PORT", url);
			return -1;
		}
		ps = end + 1;
	}
	size_t hl = (size_t)(end - h);
	if (hl == 0 || hl >= sizeof host) {
		snprintf(err, errlen, "bad destination \"%s\": missing host", url);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	long port = 0;
	int digits = 0;
	for (const char *p = ps; *p; p++, digits++) {
		if (!isdigit((unsigned char)*p) || digits >= 5) {
			port = -1;
			break;
		}
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "bad destination \"%s\": port must be 1-65535", url);
		return -1;
	}
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (h[-1] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof *s4;
		if (s4->sin_addr.s_addr == htonl(INADDR_ANY)) {
			snprintf(err, errlen, "bad destination \"%s\": the unspecified address", url);
			return -1;
		}
		return 0;
	}
	if (h[-1] == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof *s6;
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr)) {
			snprintf(err, errlen, "bad destination \"%s\": the unspecified address", url);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "bad destination \"%s\": the host must be a numeric IPv4 address "
	         "or an IPv6 address in brackets", url);
	return -1;
}

void cidr_format(const struct sockaddr *sa, int port_too, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		port = ntohs(s6->sin6_port);
	}
	if (!port_too)
		snprintf(buf, len, "%s", host);
	else if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "udp://[%s]:%d", host, port);
	else
		snprintf(buf, len, "udp://%s:%d", host, port);
}
