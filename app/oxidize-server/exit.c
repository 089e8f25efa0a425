/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exit policy of the relay (lib/policy): what clients' inner packets
 * may reach. Built once at start, in the relay's network namespace:
 *  - refused: this host (0.0.0.0/8, 127.0.0.0/8, ::, ::1), link-local
 *    (169.254.0.0/16, fe80::/10, where cloud metadata services answer),
 *    multicast, broadcast and reserved space, IPv4-mapped IPv6;
 *  - every address of the host's interfaces: refused but for the ports the
 *    operator opens (--exit-open); its tunnel addresses answer pings too;
 *  - every interface's IPv4 broadcast address: refused;
 *  - then the operator's --exit-deny and --exit-allow prefixes;
 *  - anything else, the internet and other clients, allowed.
 * The longest matching prefix decides.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

#include "server.h"

static const char *const deny4[] = {
	"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
};
static const char *const deny6[] = {
	"::/128", "::1/128", "::ffff:0:0/96", "fe80::/10", "ff00::/8",
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

int
srv_exit_policy(const struct srv_server *srv, const struct ox_tunnel_addr *gw,
		struct ox_policy **out)
{
	const struct srv_server_conf *c = &srv->conf;
	struct ox_policy *p;
	unsigned int n_host = 0;
	char err[256];
	uint32_t gw4 = htonl(gw->v4);
	int ret;

	p = ox_policy_create("ox_exit", 1024, (int)rte_socket_id());
	if (p == NULL) {
		SRV_LOG(ERR, "cannot make the exit policy: %s", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	ret = add_strs(p, deny4, RTE_DIM(deny4), err, sizeof(err));
	if (ret == 0)
		ret = add_strs(p, deny6, RTE_DIM(deny6), err, sizeof(err));
	if (ret == 0)
		ret = add_host_addresses(p, &n_host, err, sizeof(err));
	/* The relay's tunnel addresses, on the TAP or not. */
	if (ret == 0)
		ret = ox_policy_add(p, false, (const uint8_t *)&gw4, 32, OX_POLICY_GATEWAY);
	if (ret == 0)
		ret = ox_policy_add(p, true, gw->v6, 128, OX_POLICY_GATEWAY);
	if (ret != 0) {
		SRV_LOG(ERR, "exit policy: %s", err);
		goto fail;
	}
	ret = ox_policy_add_list(p, c->exit_deny, OX_POLICY_DENY, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "--exit-deny: %s (want ADDR/LEN,ADDR/LEN,...)", err);
		goto fail;
	}
	ret = ox_policy_add_list(p, c->exit_allow, OX_POLICY_ALLOW, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "--exit-allow: %s (want ADDR/LEN,ADDR/LEN,...)", err);
		goto fail;
	}
	ret = ox_policy_open_list(p, c->exit_open, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "--exit-open: %s (want udp/PORT,tcp/PORT,...)", err);
		goto fail;
	}
	SRV_LOG(INFO,
		"exit policy: %u address(es) of this host refused%s%s, deny [%s], "
		"allow [%s]",
		n_host, c->exit_open[0] ? " but for ports " : "", c->exit_open, c->exit_deny,
		c->exit_allow);
	*out = p;
	return 0;
fail:
	ox_policy_free(p);
	return ret < 0 ? ret : -EINVAL;
}
