/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_CLIENT_H
#define OX_CLIENT_H
/*
 * oxidize-client internals: the `up` settings (conf.c), the rtnetlink
 * helper (netlink.c) and the tunnel (tunnel.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <net/if.h>

#include "ox_tunnel.h"

#define CLIENT_DEFAULT_PORT "51820"
#define CLIENT_DEFAULT_TUN "ox0"
#define CLIENT_MAX_ROUTES 32
#define CLIENT_MAX_SERVERS 8
#define CLIENT_MIN_MTU 576
#define CLIENT_MAX_MTU OX_MAX_PLAINTEXT

/** One destination prefix; family AF_INET or AF_INET6. */
struct client_prefix {
	int family;
	uint8_t addr[16]; /**< network order, IPv4 in the first 4 bytes */
	uint8_t len;
};

/** One relay: a name or address, and a port. */
struct client_server {
	char host[256];
	char port[8];
};

/** Whose DNS servers the client sets while the tunnel is up. */
enum client_dns_mode {
	CLIENT_DNS_RELAY = 0, /**< the relay's (CONFIG), the default */
	CLIENT_DNS_GIVEN = 1, /**< --dns */
	CLIENT_DNS_OFF = 2,   /**< --no-dns: the system's stay */
};

/** How they are set. */
enum client_dns_via {
	CLIENT_DNS_VIA_AUTO = 0,
	CLIENT_DNS_VIA_RESOLVED = 1,   /**< systemd-resolved, on the TUN link */
	CLIENT_DNS_VIA_RESOLVCONF = 2, /**< resolvconf -a */
	CLIENT_DNS_VIA_FILE = 3,       /**< /etc/resolv.conf replaced, then put back */
};

#define CLIENT_DEFAULT_STATE_DIR "/var/lib/oxidize-client"

/** Settings of `oxidize-client up`, from flags and the config file. */
struct client_conf {
	struct client_server servers[CLIENT_MAX_SERVERS]; /**< relays of one fleet */
	unsigned int n_servers;
	uint8_t server_key[OX_KEY_LEN];
	bool have_server_key;
	char key_file[4096];
	char tun[IFNAMSIZ];
	struct client_prefix routes[CLIENT_MAX_ROUTES];
	unsigned int n_routes;
	unsigned int mtu;	 /**< 0: the server's */
	unsigned int duration_s; /**< 0: until a signal */
	bool verbose;
	uint8_t dns_mode;     /**< enum client_dns_mode */
	uint8_t dns_via;      /**< enum client_dns_via */
	struct ox_config dns; /**< --dns */
	char state_dir[256];  /**< where replaced DNS settings wait to be put back */
};

/**
 * Fill @p c from `up`'s arguments (argv[0] is "up") and the --config file.
 * @return 0, 1 for --help (printed), or -EINVAL (message printed).
 */
int client_conf_parse(struct client_conf *c, int argc, char **argv);

/** Print `up`'s usage. */
void client_up_usage(FILE *f);

/** Parse "A.B.C.D/N" or "X::Y/N". @return 0 or -EINVAL. */
int client_prefix_parse(struct client_prefix *p, const char *s);

/** Run the tunnel until a signal or --duration. @return the exit status. */
int client_up(const struct client_conf *c);

/* ------------------------------------------------------------ netlink */

struct nl {
	int fd;
	uint32_t seq;
};

/** A route: destination, device, gateway (when has_gw). */
struct nl_route {
	struct client_prefix dst;
	int oif;
	bool has_gw;
	uint8_t gw[16];
};

int nl_open(struct nl *nl);
void nl_close(struct nl *nl);

/** Set a link's MTU (0: leave it) and bring it up. */
int nl_link_up(struct nl *nl, int ifindex, unsigned int mtu);

/** No IPv6 link-local address (nor the router solicitations and MLD
 * reports sent from it) on this link. */
int nl_link_no_lladdr(struct nl *nl, int ifindex);

/** Add (@p add) or remove an address with its prefix length. */
int nl_addr(struct nl *nl, bool add, int ifindex, const struct client_prefix *a);

/** Add (exclusively) or remove a route in the main table. */
int nl_route(struct nl *nl, bool add, const struct nl_route *r);

/** The route the kernel would take to @p dst (a host prefix). */
int nl_route_get(struct nl *nl, const struct client_prefix *dst, struct nl_route *out);

#endif /* OX_CLIENT_H */
