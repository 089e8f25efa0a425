/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>

#include "ox_policy.h"

#define ICMP_ECHO_REQUEST 8
#define ICMP6_ECHO_REQUEST 128
#define ICMP_ECHO_REPLY 0
#define ICMP6_ECHO_REPLY 129

struct ox_policy {
	struct rte_lpm *v4;
	struct rte_lpm6 *v6;
	uint64_t open_tcp[65536 / 64]; /* ports of the relay host clients may reach */
	uint64_t open_udp[65536 / 64];
};

uint32_t
ox_policy_tbl8s(bool ipv6, uint8_t depth)
{
	if (depth <= 24)
		return 0;
	return ipv6 ? (depth - 24u + 7) / 8 : 1;
}

struct ox_policy *
ox_policy_create(const char *name, uint32_t max_rules, int socket_id)
{
	/* Few prefixes longer than /24 (/48 in IPv6): a few tbl8 groups do. */
	return ox_policy_create_sized(name, max_rules, 256, 1024, socket_id);
}

struct ox_policy *
ox_policy_create_sized(const char *name, uint32_t max_rules, uint32_t tbl8_v4, uint32_t tbl8_v6,
		       int socket_id)
{
	struct rte_lpm_config c4 = { .max_rules = max_rules, .number_tbl8s = tbl8_v4 };
	struct rte_lpm6_config c6 = { .max_rules = max_rules, .number_tbl8s = tbl8_v6 };
	char n[64];
	struct ox_policy *p;

	if (max_rules == 0) {
		rte_errno = EINVAL;
		return NULL;
	}
	p = rte_zmalloc_socket("ox_policy", sizeof(*p), 0, socket_id);
	if (p == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	snprintf(n, sizeof(n), "%s4", name);
	p->v4 = rte_lpm_create(n, socket_id, &c4);
	snprintf(n, sizeof(n), "%s6", name);
	p->v6 = p->v4 ? rte_lpm6_create(n, socket_id, &c6) : NULL;
	if (p->v6 == NULL) {
		int err = rte_errno;

		ox_policy_free(p);
		rte_errno = err;
		return NULL;
	}
	return p;
}

void
ox_policy_free(struct ox_policy *p)
{
	if (p == NULL)
		return;
	rte_lpm_free(p->v4);
	rte_lpm6_free(p->v6);
	rte_free(p);
}

int
ox_policy_add(struct ox_policy *p, bool ipv6, const uint8_t *addr, uint8_t depth,
	      enum ox_policy_action action)
{
	uint32_t a4;
	int ret;

	if (action > OX_POLICY_GATEWAY || depth > (ipv6 ? 128 : 32))
		return -EINVAL;
	if (ipv6) {
		/* rte_lpm6 has no /0: two /1 halves cover everything. */
		if (depth == 0) {
			uint8_t half[16] = { 0 };

			ret = rte_lpm6_add(p->v6, half, 1, action);
			half[0] = 0x80;
			if (ret == 0)
				ret = rte_lpm6_add(p->v6, half, 1, action);
		} else {
			ret = rte_lpm6_add(p->v6, addr, depth, action);
		}
	} else {
		memcpy(&a4, addr, 4);
		/* rte_lpm has no /0 either. */
		if (depth == 0) {
			ret = rte_lpm_add(p->v4, 0, 1, action);
			if (ret == 0)
				ret = rte_lpm_add(p->v4, 0x80000000u, 1, action);
		} else {
			ret = rte_lpm_add(p->v4, rte_be_to_cpu_32(a4), depth, action);
		}
	}
	return ret == 0 ? 0 : ret == -EINVAL ? -EINVAL : -ENOSPC;
}

int
ox_policy_parse_prefix(const char *s, bool *ipv6, uint8_t addr[16], uint8_t *depth)
{
	char buf[64], *slash, *end;
	long d;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1)
		*ipv6 = false;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		*ipv6 = true;
	else
		return -EINVAL;
	if (slash == NULL) {
		*depth = *ipv6 ? 128 : 32;
		return 0;
	}
	errno = 0;
	d = strtol(slash + 1, &end, 10);
	if (errno != 0 || end == slash + 1 || *end != '\0' || d < 0 || d > (*ipv6 ? 128 : 32))
		return -EINVAL;
	*depth = (uint8_t)d;
	return 0;
}

/* Walk a comma-separated list: fn for each non-empty item. */
static int
each_item(const char *list, int (*fn)(void *arg, const char *item), void *arg, char *err,
	  size_t errlen)
{
	char item[128];
	const char *p = list, *c;
	size_t n;
	int ret;

	while (*p != '\0') {
		c = strchr(p, ',');
		n = c ? (size_t)(c - p) : strlen(p);
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n >= sizeof(item)) {
			snprintf(err, errlen, "'%.40s...' is too long", p);
			return -EINVAL;
		}
		if (n > 0) {
			memcpy(item, p, n);
			item[n] = '\0';
			ret = fn(arg, item);
			if (ret != 0) {
				snprintf(err, errlen, "'%s': %s", item,
					 ret == -ENOSPC ? "too many rules" : "not understood");
				return ret;
			}
		}
		if (c == NULL)
			break;
		p = c + 1;
	}
	return 0;
}

struct add_arg {
	struct ox_policy *p;
	enum ox_policy_action action;
};

static int
add_item(void *arg, const char *item)
{
	struct add_arg *a = arg;
	uint8_t addr[16], depth;
	bool v6;

	if (ox_policy_parse_prefix(item, &v6, addr, &depth) != 0)
		return -EINVAL;
	return ox_policy_add(a->p, v6, addr, depth, a->action);
}

int
ox_policy_add_list(struct ox_policy *p, const char *list, enum ox_policy_action action, char *err,
		   size_t errlen)
{
	struct add_arg a = { p, action };

	return each_item(list, add_item, &a, err, errlen);
}

int
ox_policy_open_port(struct ox_policy *p, uint8_t proto, uint16_t port)
{
	uint64_t *set;

	if (proto == IPPROTO_TCP)
		set = p->open_tcp;
	else if (proto == IPPROTO_UDP)
		set = p->open_udp;
	else
		return -EINVAL;
	set[port / 64] |= UINT64_C(1) << (port % 64);
	return 0;
}

static int
open_item(void *arg, const char *item)
{
	const char *slash = strchr(item, '/');
	char *end;
	long port;
	uint8_t proto;

	if (slash == NULL)
		return -EINVAL;
	if (strncmp(item, "tcp/", 4) == 0)
		proto = IPPROTO_TCP;
	else if (strncmp(item, "udp/", 4) == 0)
		proto = IPPROTO_UDP;
	else
		return -EINVAL;
	errno = 0;
	port = strtol(slash + 1, &end, 10);
	if (errno != 0 || end == slash + 1 || *end != '\0' || port < 1 || port > 65535)
		return -EINVAL;
	return ox_policy_open_port(arg, proto, (uint16_t)port);
}

int
ox_policy_open_list(struct ox_policy *p, const char *list, char *err, size_t errlen)
{
	return each_item(list, open_item, p, err, errlen);
}

static inline bool
port_open(const uint64_t *set, const uint8_t *l4)
{
	uint16_t port = (uint16_t)(l4[2] << 8 | l4[3]); /* destination port */

	return (set[port / 64] >> (port % 64)) & 1;
}

/*
 * To the relay host: only open ports, and (GATEWAY) echo requests and
 * replies (the relay host pings clients and the subnets behind them from
 * that address). The transport header must be there and be the first
 * fragment's.
 */
static bool
host_allows(const struct ox_policy *p, uint8_t action, uint8_t proto, const uint8_t *l4,
	    uint32_t l4_len, bool echo_type)
{
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		if (l4_len < 4)
			return false;
		return port_open(proto == IPPROTO_TCP ? p->open_tcp : p->open_udp, l4);
	}
	return action == OX_POLICY_GATEWAY && echo_type && l4_len >= 8;
}

bool
ox_policy_check(const struct ox_policy *p, const uint8_t *ip, uint16_t len)
{
	uint32_t hop, ihl;

	if ((ip[0] >> 4) == 4) {
		const struct rte_ipv4_hdr *h = (const struct rte_ipv4_hdr *)ip;

		if (rte_lpm_lookup(p->v4, rte_be_to_cpu_32(h->dst_addr), &hop) != 0 ||
		    hop == OX_POLICY_ALLOW)
			return true;
		if (hop == OX_POLICY_DENY)
			return false;
		ihl = (uint32_t)(ip[0] & 0xf) * 4;
		/* Later fragments carry no ports to judge. */
		if (ihl < sizeof(*h) || ihl > len ||
		    (h->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK)) != 0)
			return false;
		return host_allows(
			p, (uint8_t)hop, h->next_proto_id, ip + ihl, len - ihl,
			h->next_proto_id == IPPROTO_ICMP && len - ihl >= 1 &&
				(ip[ihl] == ICMP_ECHO_REQUEST || ip[ihl] == ICMP_ECHO_REPLY));
	} else {
		const struct rte_ipv6_hdr *h = (const struct rte_ipv6_hdr *)ip;

		if (len < sizeof(*h))
			return false;
		if (rte_lpm6_lookup(p->v6, h->dst_addr, &hop) != 0 || hop == OX_POLICY_ALLOW)
			return true;
		if (hop == OX_POLICY_DENY)
			return false;
		/* Extension headers are not walked: to the host, refused. */
		return host_allows(p, (uint8_t)hop, h->proto, ip + sizeof(*h), len - sizeof(*h),
				   h->proto == IPPROTO_ICMPV6 && len > sizeof(*h) &&
					   (ip[sizeof(*h)] == ICMP6_ECHO_REQUEST ||
					    ip[sizeof(*h)] == ICMP6_ECHO_REPLY));
	}
}
