/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small rtnetlink helper: link up and MTU, addresses, routes, and the
 * route lookup the all-traffic mode needs. One request at a time, each
 * acknowledged, so every error comes back to the call that caused it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "client.h"

#define NL_BUF 8192

struct nl_req {
	struct nlmsghdr h;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
		struct rtmsg rt;
	};
	uint8_t attrs[256];
};

int
nl_open(struct nl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	/* The kernel answers at once; never wait forever on it. */
	struct timeval tv = { .tv_sec = 2 };

	nl->seq = 1;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl->fd < 0)
		return -errno;
	if (setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int ret = -errno;

		close(nl->fd);
		nl->fd = -1;
		return ret;
	}
	return 0;
}

void
nl_close(struct nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

static void
req_init(struct nl_req *q, uint16_t type, uint16_t flags, size_t body)
{
	memset(q, 0, sizeof(*q));
	q->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(body);
	q->h.nlmsg_type = type;
	q->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
}

static void
req_attr(struct nl_req *q, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((uint8_t *)q + NLMSG_ALIGN(q->h.nlmsg_len));

	/* Requests are built from fixed fields; they always fit. */
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	q->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(a->rta_len));
}

static size_t
addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* The route reply of an RTM_GETROUTE, if @p out is given. */
static void
parse_route(struct nlmsghdr *h, struct nl_route *out)
{
	struct rtmsg *rt = NLMSG_DATA(h);
	struct rtattr *a = RTM_RTA(rt);
	int len = (int)RTM_PAYLOAD(h);
	size_t alen = addr_len(rt->rtm_family);

	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == sizeof(int))
			memcpy(&out->oif, RTA_DATA(a), sizeof(int));
		else if (a->rta_type == RTA_GATEWAY && RTA_PAYLOAD(a) == alen) {
			memcpy(out->gw, RTA_DATA(a), alen);
			out->has_gw = true;
		}
	}
}

static int
nl_talk(struct nl *nl, struct nl_req *q, struct nl_route *reply)
{
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	uint8_t buf[NL_BUF] __attribute__((aligned(4)));
	uint32_t seq = nl->seq++;
	int tries;

	q->h.nlmsg_seq = seq;
	if (sendto(nl->fd, q, q->h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	/* A stray message from an older request cannot keep us here. */
	for (tries = 0; tries < 64; tries++) {
		ssize_t n = recv(nl->fd, buf, sizeof(buf), 0);
		size_t off;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* NLMSG_OK() by hand: the macro mixes signed and unsigned. */
		for (off = 0; off + sizeof(struct nlmsghdr) <= (size_t)n;) {
			struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);

			if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > (size_t)n - off)
				break;
			off += NLMSG_ALIGN(h->nlmsg_len);
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error;
			}
			if (h->nlmsg_type == RTM_NEWROUTE && reply != NULL)
				parse_route(h, reply);
		}
	}
	return -EIO;
}

int
nl_link_up(struct nl *nl, int ifindex, unsigned int mtu)
{
	struct nl_req q;
	uint32_t m = mtu;
	/* A TUN starts with a 500-packet queue: a TCP burst from the host
	 * overflows it before the client's next read. */
	uint32_t qlen = 4096;

	req_init(&q, RTM_NEWLINK, 0, sizeof(q.ifi));
	q.ifi.ifi_family = AF_UNSPEC;
	q.ifi.ifi_index = ifindex;
	q.ifi.ifi_flags = IFF_UP;
	q.ifi.ifi_change = IFF_UP;
	if (mtu)
		req_attr(&q, IFLA_MTU, &m, sizeof(m));
	req_attr(&q, IFLA_TXQLEN, &qlen, sizeof(qlen));
	return nl_talk(nl, &q, NULL);
}

int
nl_link_no_lladdr(struct nl *nl, int ifindex)
{
	struct nl_req q;
	struct rtattr *spec, *inet6;
	uint8_t mode = IN6_ADDR_GEN_MODE_NONE;

	req_init(&q, RTM_NEWLINK, 0, sizeof(q.ifi));
	q.ifi.ifi_family = AF_UNSPEC;
	q.ifi.ifi_index = ifindex;
	/* IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE } }: open the
	 * nests empty, then grow them by what follows. */
	spec = (struct rtattr *)((uint8_t *)&q + NLMSG_ALIGN(q.h.nlmsg_len));
	req_attr(&q, IFLA_AF_SPEC, NULL, 0);
	inet6 = (struct rtattr *)((uint8_t *)&q + NLMSG_ALIGN(q.h.nlmsg_len));
	req_attr(&q, AF_INET6, NULL, 0);
	req_attr(&q, IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof(mode));
	inet6->rta_len = (unsigned short)((uint8_t *)&q + q.h.nlmsg_len - (uint8_t *)inet6);
	spec->rta_len = (unsigned short)((uint8_t *)&q + q.h.nlmsg_len - (uint8_t *)spec);
	return nl_talk(nl, &q, NULL);
}

int
nl_addr(struct nl *nl, bool add, int ifindex, const struct client_prefix *a)
{
	struct nl_req q;
	size_t alen = addr_len(a->family);

	req_init(&q, add ? RTM_NEWADDR : RTM_DELADDR, add ? NLM_F_CREATE | NLM_F_REPLACE : 0,
		 sizeof(q.ifa));
	q.ifa.ifa_family = (uint8_t)a->family;
	q.ifa.ifa_prefixlen = a->len;
	q.ifa.ifa_index = (uint32_t)ifindex;
	q.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	/* Nobody else is on a point-to-point tunnel: duplicate address
	 * detection would only keep the address tentative for a second. */
	if (a->family == AF_INET6)
		q.ifa.ifa_flags = IFA_F_NODAD;
	req_attr(&q, IFA_LOCAL, a->addr, alen);
	req_attr(&q, IFA_ADDRESS, a->addr, alen);
	return nl_talk(nl, &q, NULL);
}

int
nl_route(struct nl *nl, bool add, const struct nl_route *r)
{
	struct nl_req q;
	size_t alen = addr_len(r->dst.family);

	req_init(&q, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_EXCL : 0,
		 sizeof(q.rt));
	q.rt.rtm_family = (uint8_t)r->dst.family;
	q.rt.rtm_dst_len = r->dst.len;
	q.rt.rtm_table = RT_TABLE_MAIN;
	q.rt.rtm_protocol = RTPROT_STATIC;
	q.rt.rtm_type = RTN_UNICAST;
	/* IPv4 routes without a gateway are on the link; IPv6 knows no
	 * such distinction. */
	q.rt.rtm_scope = r->has_gw || r->dst.family == AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	req_attr(&q, RTA_DST, r->dst.addr, alen);
	req_attr(&q, RTA_OIF, &r->oif, sizeof(r->oif));
	if (r->has_gw)
		req_attr(&q, RTA_GATEWAY, r->gw, alen);
	return nl_talk(nl, &q, NULL);
}

int
nl_route_get(struct nl *nl, const struct client_prefix *dst, struct nl_route *out)
{
	struct nl_req q;
	int ret;

	req_init(&q, RTM_GETROUTE, 0, sizeof(q.rt));
	q.rt.rtm_family = (uint8_t)dst->family;
	q.rt.rtm_dst_len = dst->len;
	req_attr(&q, RTA_DST, dst->addr, addr_len(dst->family));
	memset(out, 0, sizeof(*out));
	out->dst = *dst;
	ret = nl_talk(nl, &q, out);
	if (ret == 0 && out->oif == 0)
		ret = -ENETUNREACH;
	return ret;
}
