/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exit policy of the relay (lib/policy): what clients' inner packets
 * may reach. Built at start in the relay's network namespace, and again
 * whenever the host's addresses change:
 *  - refused: this host (0.0.0.0/8, 127.0.0.0/8, ::, ::1), link-local
 *    (169.254.0.0/16, fe80::/10, where cloud metadata services answer) and
 *    AWS's IPv6 metadata address (fd00:ec2::254), multicast, broadcast and
 *    reserved space, IPv4-mapped IPv6, and the private ranges (10/8,
 *    172.16/12, 192.168/16, fc00::/7 but for the tunnel pools): a relay in
 *    a cloud network would otherwise hand its clients the hosts beside it;
 *  - every address of the host's interfaces, and the --exit-host ones (a
 *    fleet's anycast addresses, on this host or not yet): refused but for
 *    the ports the operator opens (--exit-open); its tunnel addresses
 *    answer pings too;
 *  - every interface's IPv4 broadcast address: refused;
 *  - then the operator's --exit-deny and --exit-allow prefixes;
 *  - anything else, the internet and other clients, allowed.
 * The longest matching prefix decides.
 *
 * Addresses come and go after start (the anycast announcer, DHCP, an
 * operator): a netlink socket on the control thread hears of every change,
 * the whole policy is built anew and swapped in for the workers, and the
 * old one freed a grace period later (the workers' RCU).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_rcu_qsbr.h>

#include "server.h"

static const char *const deny4[] = {
	"0.0.0.0/8",	 "10.0.0.0/8",	   "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
};
static const char *const deny6[] = {
	"::/128",    "::1/128",	 "::ffff:0:0/96", "fc00::/7", "fd00:ec2::254/128",
	"fe80::/10", "ff00::/8",
};

static int
add_strs(struct ox_policy *p, const char *const *list, size_t n, char *err, size_t errlen)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = ox_policy_add_list(p, list[i], OX_POLICY_DENY, err, errlen);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* Every address of every interface of this namespace: the relay host's. */
static int
add_host_addresses(struct ox_policy *p, unsigned int *n_host, char *err, size_t errlen)
{
	struct ifaddrs *ifa, *i;
	int ret = 0;

	if (getifaddrs(&ifa) != 0) {
		snprintf(err, errlen, "cannot list the host's addresses: %s", strerror(errno));
		return -errno;
	}
	for (i = ifa; i != NULL && ret == 0; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;

			ret = ox_policy_add(p, false, (const uint8_t *)&a->sin_addr, 32,
					    OX_POLICY_HOST);
			(*n_host)++;
			if (ret == 0 && (i->ifa_flags & IFF_BROADCAST) &&
			    i->ifa_broadaddr != NULL) {
				a = (const struct sockaddr_in *)i->ifa_broadaddr;
				ret = ox_policy_add(p, false, (const uint8_t *)&a->sin_addr, 32,
						    OX_POLICY_DENY);
			}
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)i->ifa_addr;

			ret = ox_policy_add(p, true, a->sin6_addr.s6_addr, 128, OX_POLICY_HOST);
			(*n_host)++;
		}
	}
	freeifaddrs(ifa);
	if (ret != 0)
		snprintf(err, errlen, "cannot add the host's addresses: %s", strerror(-ret));
	return ret;
}

/* The tunnel pools stay reachable (client to client) inside fc00::/7. */
static int
allow_pools(struct ox_policy *p, const struct ox_addrpool_conf *pc)
{
	uint32_t v4 = htonl(pc->v4_net);
	int ret;

	ret = ox_policy_add(p, false, (const uint8_t *)&v4, pc->v4_prefix, OX_POLICY_ALLOW);
	if (ret == 0)
		ret = ox_policy_add(p, true, pc->v6_net, pc->v6_prefix, OX_POLICY_ALLOW);
	return ret;
}

/* Subnets behind peers are reached like the pools, whatever range they
 * are in. */
static int
allow_peer_routes(struct ox_policy *p, const struct srv_server *srv, char *err, size_t errlen)
{
	uint32_t i;
	int ret;

	for (i = 0; i < srv->n_peer_routes; i++) {
		const struct ox_allow_route *rt = &srv->peer_routes[i];

		ret = ox_policy_add(p, rt->v6, rt->addr, rt->depth, OX_POLICY_ALLOW);
		if (ret != 0) {
			snprintf(err, errlen, "cannot add the peers' routed prefixes: %s",
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* "FLAG: what failed (want FORM)" */
static void
prefix_err(char *err, size_t errlen, const char *flag, const char *form)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", err);
	snprintf(err, errlen, "%s: %s (want %s)", flag, msg, form);
}

static int
add_list(struct ox_policy *p, const char *list, enum ox_policy_action action, const char *flag,
	 const char *form, char *err, size_t errlen)
{
	int ret = ox_policy_add_list(p, list, action, err, errlen);

	if (ret != 0)
		prefix_err(err, errlen, flag, form);
	return ret;
}

/* tbl8 groups: the defaults' own, and what the peers' prefixes take. */
static uint32_t
tbl8s(const struct srv_server *srv, bool v6)
{
	uint32_t n = v6 ? 1024 : 256, i;

	for (i = 0; i < srv->n_peer_routes; i++)
		if (srv->peer_routes[i].v6 == v6)
			n += ox_policy_tbl8s(v6, srv->peer_routes[i].depth);
	return n;
}

/* One complete policy, named by its generation (rte_lpm names are global). */
static int
build(const struct srv_server *srv, const struct ox_tunnel_addr *gw, unsigned int gen,
      unsigned int *n_host, struct ox_policy **out, char *err, size_t errlen)
{
	const struct srv_server_conf *c = &srv->conf;
	struct ox_policy *p;
	uint32_t gw4 = htonl(gw->v4);
	char name[32];
	int ret;

	*n_host = 0;
	snprintf(name, sizeof(name), "ox_exit%u", gen);
	p = ox_policy_create_sized(name, 1024 + srv->n_peer_routes, tbl8s(srv, false),
				   tbl8s(srv, true), (int)rte_socket_id());
	if (p == NULL) {
		snprintf(err, errlen, "cannot make the exit policy: %s", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	ret = add_strs(p, deny4, RTE_DIM(deny4), err, errlen);
	if (ret == 0)
		ret = add_strs(p, deny6, RTE_DIM(deny6), err, errlen);
	if (ret == 0 && (ret = allow_pools(p, &srv->pool_conf)) != 0)
		snprintf(err, errlen, "cannot add the tunnel pools: %s", strerror(-ret));
	if (ret == 0)
		ret = allow_peer_routes(p, srv, err, errlen);
	if (ret == 0)
		ret = add_host_addresses(p, n_host, err, errlen);
	if (ret == 0)
		ret = add_list(p, c->exit_host, OX_POLICY_HOST, "--exit-host", "ADDR/LEN,...", err,
			       errlen);
	/* The relay's tunnel addresses, on the TAP or not. */
	if (ret == 0)
		ret = ox_policy_add(p, false, (const uint8_t *)&gw4, 32, OX_POLICY_GATEWAY);
	if (ret == 0)
		ret = ox_policy_add(p, true, gw->v6, 128, OX_POLICY_GATEWAY);
	if (ret == 0)
		ret = add_list(p, c->exit_deny, OX_POLICY_DENY, "--exit-deny",
			       "ADDR/LEN,ADDR/LEN,...", err, errlen);
	if (ret == 0)
		ret = add_list(p, c->exit_allow, OX_POLICY_ALLOW, "--exit-allow",
			       "ADDR/LEN,ADDR/LEN,...", err, errlen);
	if (ret == 0 && (ret = ox_policy_open_list(p, c->exit_open, err, errlen)) != 0)
		prefix_err(err, errlen, "--exit-open", "udp/PORT,tcp/PORT,...");
	if (ret != 0) {
		ox_policy_free(p);
		return ret < 0 ? ret : -EINVAL;
	}
	*out = p;
	return 0;
}

int
srv_exit_policy(const struct srv_server *srv, const struct ox_tunnel_addr *gw,
		struct ox_policy **out)
{
	const struct srv_server_conf *c = &srv->conf;
	unsigned int n_host;
	char err[512] = "";
	int ret;

	ret = build(srv, gw, 0, &n_host, out, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "%s%s", err[0] == '-' ? "" : "exit policy: ", err);
		return ret;
	}
	SRV_LOG(INFO,
		"exit policy: %u address(es) of this host refused%s%s, and [%s]; private "
		"ranges refused; deny [%s], allow [%s]",
		n_host, c->exit_open[0] ? " but for ports " : "", c->exit_open, c->exit_host,
		c->exit_deny, c->exit_allow);
	return 0;
}

int
srv_exit_watch_open(struct srv_exit_watch *w)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };

	memset(w, 0, sizeof(*w));
	w->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (w->nl < 0)
		return -errno;
	if (bind(w->nl, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int ret = -errno;

		close(w->nl);
		w->nl = -1;
		return ret;
	}
	return 0;
}

void
srv_exit_watch_close(struct srv_exit_watch *w)
{
	if (w->nl >= 0)
		close(w->nl);
	w->nl = -1;
	ox_policy_free(w->old);
	w->old = NULL;
}

/* Anything an address message says: the whole list is read anew. */
static void
drain(struct srv_exit_watch *w)
{
	char buf[8192] __rte_aligned(sizeof(struct nlmsghdr));
	ssize_t n;

	for (;;) {
		n = recv(w->nl, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			/* Overrun: changes were lost, so something changed. */
			if (errno == ENOBUFS)
				w->dirty = true;
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR)
				w->dirty = true;
	}
}

void
srv_exit_watch_poll(struct srv_server *srv, struct srv_exit_watch *w, struct ox_policy **live,
		    const struct ox_tunnel_addr *gw, struct rte_rcu_qsbr *rcu, uint64_t now_ns)
{
	struct ox_policy *fresh, *prev;
	unsigned int n_host;
	char err[512] = "";
	int ret;

	if (w->nl < 0)
		return;
	drain(w);
	/* The one replaced before: no worker can be in it once each has
	 * come round (RCU); only then is the next one built. */
	if (w->old != NULL) {
		if (rte_rcu_qsbr_check(rcu, w->old_token, false) != 1)
			return;
		ox_policy_free(w->old);
		w->old = NULL;
	}
	if ((!w->dirty && !w->routes_dirty) || now_ns < w->retry_ns)
		return;
	ret = build(srv, gw, ++w->gen, &n_host, &fresh, err, sizeof(err));
	if (ret != 0) {
		/* The previous policy stays; said once until it works. */
		w->errors++;
		w->retry_ns = now_ns + 1000000000u;
		if (!w->failing)
			SRV_LOG(ERR,
				"exit policy not rebuilt for %s, the previous one stays "
				"(retried every second): %s",
				w->dirty ? "the host's new addresses" : "the peers' new prefixes",
				err);
		w->failing = true;
		return;
	}
	w->failing = false;
	w->rebuilds++;
	prev = *live;
	__atomic_store_n(live, fresh, __ATOMIC_RELEASE);
	w->old = prev;
	w->old_token = rte_rcu_qsbr_start(rcu);
	if (w->dirty)
		SRV_LOG(NOTICE,
			"exit policy: the host's addresses changed; %u address(es) refused now",
			n_host);
	if (w->routes_dirty)
		SRV_LOG(INFO, "exit policy: the peers' %u routed prefix(es) allowed now",
			srv->n_peer_routes);
	w->dirty = false;
	w->routes_dirty = false;
}
