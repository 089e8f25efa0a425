/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Routes and addresses: what the handshake gave goes on the TUN device, the
 * routes asked for go through it, the relay itself is pinned outside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <sodium.h>

#include "tunnel.h"

const char *
cli_prefix_str(const struct client_prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
	return buf;
}

static bool
prefix_contains(const struct client_prefix *p, const struct client_prefix *a)
{
	unsigned int i;

	if (p->family != a->family)
		return false;
	for (i = 0; i < p->len; i++)
		if ((p->addr[i / 8] ^ a->addr[i / 8]) & (0x80 >> (i % 8)))
			return false;
	return true;
}

static int
route_add(struct tunnel *t, const struct nl_route *r)
{
	char b[INET6_ADDRSTRLEN + 8];
	int ret;

	ret = nl_route(&t->nl, true, r);
	if (ret == -EEXIST) {
		say("route %s exists already; left as it is\n",
		    cli_prefix_str(&r->dst, b, sizeof(b)));
		return 0;
	}
	if (ret != 0) {
		say("cannot add route %s: %s\n", cli_prefix_str(&r->dst, b, sizeof(b)),
		    strerror(-ret));
		return ret;
	}
	t->added[t->n_added++] = *r;
	verbose(t, "route %s dev %s\n", cli_prefix_str(&r->dst, b, sizeof(b)),
		r->oif == t->tun_index ? t->conf->tun : "(path to the relay)");
	return 0;
}

/* Keep a relay itself off the tunnel: a host route via the path it has
 * now, taken before any of our routes exist. Every relay of a fleet, so
 * that a failover finds its way too. */
static int
pin_relay_route(struct tunnel *t, const struct cli_relay *relay)
{
	struct nl_route cur;
	char ifname[IF_NAMESIZE] = "?";
	int ret;

	ret = nl_route_get(&t->nl, &relay->addr, &cur);
	if (ret != 0) {
		say("no route to the relay %s: %s\n", relay->str, strerror(-ret));
		return ret;
	}
	if (cur.oif == t->tun_index) {
		say("the route to the relay %s already goes through %s\n", relay->str,
		    t->conf->tun);
		return -ELOOP;
	}
	cur.dst = relay->addr;
	if_indextoname((unsigned int)cur.oif, ifname);
	say("relay %s pinned to dev %s\n", relay->str, ifname);
	return route_add(t, &cur);
}

static int
routes_add(struct tunnel *t)
{
	const struct client_conf *c = t->conf;
	bool pinned[CLIENT_MAX_SERVERS] = { false };
	unsigned int i, h, k;
	int ret;

	for (i = 0; i < c->n_routes; i++) {
		const struct client_prefix *p = &c->routes[i];
		struct nl_route r = { .oif = t->tun_index, .dst = *p };

		for (k = 0; k < t->n_relays; k++) {
			if (pinned[k] || !prefix_contains(p, &t->relays[k].addr))
				continue;
			ret = pin_relay_route(t, &t->relays[k]);
			if (ret != 0)
				return ret;
			pinned[k] = true;
		}
		if (p->len != 0) {
			ret = route_add(t, &r);
			if (ret != 0)
				return ret;
			continue;
		}
		/* All traffic: two halves that beat the default route without
		 * replacing it, so nothing needs restoring after a crash. */
		for (h = 0; h < 2; h++) {
			r.dst.len = 1;
			r.dst.addr[0] = h ? 0x80 : 0;
			ret = route_add(t, &r);
			if (ret != 0)
				return ret;
		}
	}
	if (c->n_routes)
		say("%u route(s) through %s\n", c->n_routes, c->tun);
	return 0;
}

void
cli_routes_del(struct tunnel *t)
{
	char b[INET6_ADDRSTRLEN + 8];
	int ret;

	while (t->n_added > 0) {
		const struct nl_route *r = &t->added[--t->n_added];

		ret = nl_route(&t->nl, false, r);
		/* Routes through the TUN device may have gone with it. */
		if (ret != 0 && ret != -ESRCH)
			say("cannot remove route %s: %s\n", cli_prefix_str(&r->dst, b, sizeof(b)),
			    strerror(-ret));
	}
}

static bool
prefix_eq(const struct client_prefix *a, const struct client_prefix *b)
{
	return a->family == b->family && a->len == b->len && !memcmp(a->addr, b->addr, 16);
}

/* Replace one of the device's addresses if the relay handed out another. */
static int
set_addr(struct tunnel *t, struct client_prefix *cur, const struct client_prefix *want)
{
	char b[INET6_ADDRSTRLEN + 8];
	int ret;

	if (prefix_eq(cur, want))
		return 0;
	if (cur->family) {
		ret = nl_addr(&t->nl, false, t->tun_index, cur);
		if (ret != 0)
			say("cannot remove address %s: %s\n", cli_prefix_str(cur, b, sizeof(b)),
			    strerror(-ret));
		memset(cur, 0, sizeof(*cur));
	}
	if (!want->family)
		return 0;
	ret = nl_addr(&t->nl, true, t->tun_index, want);
	if (ret != 0) {
		say("cannot set address %s on %s: %s\n", cli_prefix_str(want, b, sizeof(b)),
		    t->conf->tun, strerror(-ret));
		return ret;
	}
	*cur = *want;
	return 0;
}

int
cli_configure(struct tunnel *t, const struct ox_hs_payload *pl)
{
	struct client_prefix v4 = { 0 }, v6 = { 0 };
	static const uint8_t zero[16];
	unsigned int mtu = t->conf->mtu;
	uint32_t a4 = htonl(pl->v4);
	int ret;

	if (mtu == 0) {
		mtu = pl->mtu;
		if (mtu < CLIENT_MIN_MTU || mtu > CLIENT_MAX_MTU) {
			if (mtu != 0)
				say("relay's MTU %u out of range; using %u\n", mtu, OX_DEFAULT_MTU);
			mtu = OX_DEFAULT_MTU;
		}
	}
	if (pl->v4) {
		v4.family = AF_INET;
		memcpy(v4.addr, &a4, 4);
		v4.len = pl->v4_prefix ? pl->v4_prefix : 32;
	}
	if (memcmp(pl->v6, zero, 16) != 0) {
		v6.family = AF_INET6;
		memcpy(v6.addr, pl->v6, 16);
		v6.len = pl->v6_prefix ? pl->v6_prefix : 128;
	}
	/* Only the relay is on the other end: a link-local address would
	 * only send it solicitations and reports from a source it refuses. */
	if (!t->configured && nl_link_no_lladdr(&t->nl, t->tun_index) != 0)
		verbose(t, "%s keeps its IPv6 link-local address\n", t->conf->tun);
	if (!t->configured || mtu != t->mtu) {
		ret = nl_link_up(&t->nl, t->tun_index, mtu);
		if (ret != 0) {
			say("cannot bring %s up with mtu %u: %s\n", t->conf->tun, mtu,
			    strerror(-ret));
			return ret;
		}
		t->mtu = mtu;
	}
	ret = set_addr(t, &t->addr4, &v4);
	if (ret != 0)
		return ret;
	/* IPv6 may be off on this host, or the MTU below its minimum: the
	 * IPv4 side still works. */
	if (v6.family && mtu < 1280)
		say("mtu %u is below IPv6's 1280: no IPv6 address on %s\n", mtu, t->conf->tun);
	else if (set_addr(t, &t->addr6, &v6) != 0)
		say("continuing without IPv6 on %s\n", t->conf->tun);
	if (!t->configured) {
		ret = routes_add(t);
		if (ret != 0)
			return ret;
		t->configured = true;
	}
	return 0;
}
