/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exit TAP: a net_tap port whose kernel side is the relay's way out.
 * Inner packets for destinations that are not clients go to the kernel
 * through it, which routes (and NATs) them; packets the kernel routes to a
 * tunnel address come back through it, one queue per worker.
 *
 * The kernel interface gets the relay's own tunnel addresses (host 1 of
 * each pool) with the pools' prefixes, so the kernel routes the pools into
 * it, NOARP (there is no link layer to resolve: the datapath reads the IP
 * header) and the tunnel MTU (--mtu, OX_DEFAULT_MTU by default), so the
 * kernel never routes toward a client a packet the client would not take.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/ipv6.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <rte_ethdev.h>

#include "server.h"

static int
parse_cidr(const char *s, int af, void *addr, uint8_t *len)
{
	char buf[64], *slash, *end;
	long l;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash == NULL)
		return -EINVAL;
	*slash = '\0';
	l = strtol(slash + 1, &end, 10);
	if (*end != '\0' || l < 0 || l > (af == AF_INET ? 32 : 128))
		return -EINVAL;
	if (inet_pton(af, buf, addr) != 1)
		return -EINVAL;
	*len = (uint8_t)l;
	return 0;
}

int
srv_parse_pools(const struct srv_server_conf *c, struct ox_addrpool_conf *pc)
{
	struct in_addr a4;
	struct ox_addrpool *test;

	ox_addrpool_conf_default(pc);
	if (parse_cidr(c->pool4, AF_INET, &a4, &pc->v4_prefix) != 0) {
		SRV_LOG(ERR, "--pool4 %s is not an IPv4 CIDR (a.b.c.d/len)", c->pool4);
		return -EINVAL;
	}
	pc->v4_net = ntohl(a4.s_addr);
	if (parse_cidr(c->pool6, AF_INET6, pc->v6_net, &pc->v6_prefix) != 0) {
		SRV_LOG(ERR, "--pool6 %s is not an IPv6 CIDR", c->pool6);
		return -EINVAL;
	}
	pc->max_clients = c->max_sessions;
	test = ox_addrpool_create(pc);
	if (test == NULL) {
		SRV_LOG(ERR,
			"pools %s and %s do not fit together: IPv4 /8 to "
			"/30 with its host bits clear, IPv6 /48 to /120 with at least as many "
			"host bits",
			c->pool4, c->pool6);
		return -EINVAL;
	}
	ox_addrpool_free(test);
	return 0;
}

/* Kernel side: addresses, NOARP, up. */
static int
tap_configure_kernel(const char *name, const struct ox_addrpool_conf *pc,
		     const struct ox_tunnel_addr *gw)
{
	struct sockaddr_in *sin;
	struct in6_ifreq ifr6;
	struct ifreq ifr;
	int fd, fd6 = -1, ret = -errno;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(gw->v4);
	if (ioctl(fd, SIOCSIFADDR, &ifr) != 0)
		goto fail;
	sin->sin_addr.s_addr = htonl(~0u << (32 - pc->v4_prefix));
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0)
		goto fail;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_NOARP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
		goto fail;
	fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd6 < 0)
		goto fail;
	memset(&ifr6, 0, sizeof(ifr6));
	memcpy(&ifr6.ifr6_addr, gw->v6, 16);
	ifr6.ifr6_prefixlen = pc->v6_prefix;
	ifr6.ifr6_ifindex = (int)if_nametoindex(name);
	if (ioctl(fd6, SIOCSIFADDR, &ifr6) != 0 && errno != EEXIST)
		goto fail;
	ret = 0;
fail:
	if (ret != 0)
		ret = -errno;
	if (fd6 >= 0)
		close(fd6);
	close(fd);
	return ret;
}

/* Append an attribute to a netlink message of room @p cap. */
static int
nl_attr(struct nlmsghdr *h, size_t cap, unsigned short type, const void *v, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));

	/* h is the start of a buffer of cap bytes. */

	if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > cap)
		return -ENOBUFS;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), v, len);
	h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len));
	return 0;
}

/*
 * A route of a peer's prefix into the TAP, added (replacing any) or
 * removed: the relay host reaches the subnets behind peers as it reaches
 * the pools. @return 0, or -errno from the kernel.
 */
int
srv_tap_route(const struct srv_server *srv, bool add, const struct ox_allow_route *rt)
{
	char req[NLMSG_SPACE(sizeof(struct rtmsg)) + 64] __rte_aligned(sizeof(struct nlmsghdr));
	char ack[256] __rte_aligned(sizeof(struct nlmsghdr));
	struct nlmsghdr *h = (struct nlmsghdr *)req;
	struct rtmsg *r = NLMSG_DATA(h);
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	uint32_t ifindex = if_nametoindex(srv->conf.tap);
	struct nlmsgerr *e;
	ssize_t n;
	int fd, ret;

	if (ifindex == 0)
		return -ENODEV;
	memset(req, 0, sizeof(req));
	h->nlmsg_len = NLMSG_LENGTH(sizeof(*r));
	h->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	h->nlmsg_seq = 1;
	r->rtm_family = rt->v6 ? AF_INET6 : AF_INET;
	r->rtm_dst_len = rt->depth;
	r->rtm_table = RT_TABLE_MAIN;
	r->rtm_protocol = RTPROT_STATIC;
	r->rtm_scope = RT_SCOPE_LINK;
	r->rtm_type = RTN_UNICAST;
	ret = nl_attr(h, sizeof(req), RTA_DST, rt->addr, rt->v6 ? 16 : 4);
	if (ret == 0)
		ret = nl_attr(h, sizeof(req), RTA_OIF, &ifindex, sizeof(ifindex));
	if (ret != 0)
		return ret;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (sendto(fd, req, h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		ret = -errno;
		goto out;
	}
	/* The kernel answers a request with its ack at once. */
	n = recv(fd, ack, sizeof(ack), 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	e = NLMSG_DATA((struct nlmsghdr *)ack);
	if ((size_t)n < NLMSG_LENGTH(sizeof(*e)) ||
	    ((struct nlmsghdr *)ack)->nlmsg_type != NLMSG_ERROR)
		ret = -EPROTO;
	else
		ret = e->error;
out:
	close(fd);
	return ret;
}

int
srv_tap_setup(struct srv_server *srv)
{
	char args[64], addr4[INET_ADDRSTRLEN], addr6[INET6_ADDRSTRLEN];
	const char *name = srv->conf.tap;
	struct rte_eth_conf pc = { 0 };
	struct rte_eth_dev_info info;
	struct ox_tunnel_addr gw;
	struct ox_addrpool *pool;
	struct srv_port_info *p;
	uint16_t nq, q;
	uint32_t v4;
	int ret;

	snprintf(args, sizeof(args), "iface=%s", name);
	ret = rte_eal_hotplug_add("vdev", "net_tap_oxexit", args);
	if (ret == 0)
		ret = rte_eth_dev_get_port_by_name("net_tap_oxexit", &srv->tap_port);
	if (ret != 0) {
		SRV_LOG(ERR,
			"cannot create the exit TAP %s: %s (does an "
			"interface of that name exist already?)",
			name, rte_strerror(-ret));
		return ret;
	}
	srv->has_tap = true;
	ret = rte_eth_dev_info_get(srv->tap_port, &info);
	if (ret != 0)
		return ret;
	/* One queue per worker: each worker owns its TAP queue pair too. */
	nq = RTE_MIN(info.max_rx_queues, info.max_tx_queues);
	if (srv->n_workers < nq)
		nq = (uint16_t)srv->n_workers;
	ret = rte_eth_dev_configure(srv->tap_port, nq, nq, &pc);
	for (q = 0; ret == 0 && q < nq; q++) {
		ret = rte_eth_rx_queue_setup(srv->tap_port, q, 512, rte_socket_id(), NULL,
					     srv->pool);
		if (ret == 0)
			ret = rte_eth_tx_queue_setup(srv->tap_port, q, 512, rte_socket_id(), NULL);
	}
	if (ret == 0)
		/* The tunnel's MTU: what the kernel routes toward clients is
		 * never larger than they accept. */
		ret = rte_eth_dev_set_mtu(srv->tap_port, srv->conf.mtu);
	if (ret == 0)
		ret = rte_eth_dev_start(srv->tap_port);
	if (ret != 0) {
		SRV_LOG(ERR, "exit TAP %s setup failed: %s", name, rte_strerror(-ret));
		return ret;
	}
	pool = ox_addrpool_create(&srv->pool_conf);
	if (pool == NULL)
		return -ENOMEM;
	ox_addrpool_gateway(pool, &gw);
	ox_addrpool_free(pool);
	ret = tap_configure_kernel(name, &srv->pool_conf, &gw);
	if (ret != 0) {
		SRV_LOG(ERR, "cannot configure %s in the kernel: %s", name, strerror(-ret));
		return ret;
	}
	for (q = 0; q < nq; q++) {
		struct srv_worker *w = srv->workers[q];
		struct srv_queue *s;

		if (w->n_queues_polled == SRV_MAX_QUEUES)
			return -E2BIG;
		s = &w->queues[w->n_queues_polled++];
		s->port_id = srv->tap_port;
		s->queue = q;
		s->tap = true;
		/* Frames into the TAP go to the kernel side's own address. */
		rte_eth_macaddr_get(srv->tap_port, &s->mac);
		w->tap_queue = s;
		ret = srv_worker_init_txb(w, s);
		if (ret != 0)
			return ret;
	}
	p = &srv->ports[srv->n_ports++];
	p->port_id = srv->tap_port;
	snprintf(p->name, sizeof(p->name), "net_tap_oxexit");
	snprintf(p->iface, sizeof(p->iface), "%s", name);
	p->queue = 0;
	p->n_queues = nq;
	p->copy_mode = "n/a";
	p->umem = "n/a";
	p->xdp_mode = "n/a";
	v4 = htonl(gw.v4);
	inet_ntop(AF_INET, &v4, addr4, sizeof(addr4));
	inet_ntop(AF_INET6, gw.v6, addr6, sizeof(addr6));
	SRV_LOG(INFO, "exit TAP %s: %s/%u and %s/%u, MTU %u, %u queue(s)", name, addr4,
		srv->pool_conf.v4_prefix, addr6, srv->pool_conf.v6_prefix, srv->conf.mtu, nq);
	return 0;
}
