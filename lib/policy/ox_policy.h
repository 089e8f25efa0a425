/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_POLICY_H
#define OX_POLICY_H
/**
 * @file
 * Exit policy: where the inner packets of tunnel clients may go.
 *
 * Destination prefixes, IPv4 in rte_lpm and IPv6 in rte_lpm6, each with an
 * action; the longest matching prefix decides, no match allows. Two actions
 * are about the relay host itself: HOST (one of its addresses: refused but
 * for the TCP and UDP ports opened with ox_policy_open_port()) and GATEWAY
 * (its tunnel address: the same, and ICMP/ICMPv6 echo requests allowed).
 *
 * Built by one thread before use, then read-only: ox_policy_check() may run
 * on any number of lcores at once.
 */
#include <stdbool.h>
#include <stdint.h>

/** What a prefix's packets get. */
enum ox_policy_action {
	OX_POLICY_ALLOW = 0,   /**< forwarded */
	OX_POLICY_DENY = 1,    /**< refused */
	OX_POLICY_HOST = 2,    /**< the relay host: open ports only */
	OX_POLICY_GATEWAY = 3, /**< its tunnel address: open ports and echo requests */
};

struct ox_policy;

/**
 * Make an empty policy (everything allowed). Needs EAL.
 *
 * @param name
 *   Unique name (rte_lpm's).
 * @param max_rules
 *   Most prefixes of either family.
 * @param socket_id
 *   NUMA socket.
 * @return
 *   The policy, or NULL with rte_errno set.
 */
struct ox_policy *ox_policy_create(const char *name, uint32_t max_rules, int socket_id);

/**
 * ox_policy_create() with room for prefixes past /24 given: @p tbl8_v4 and
 * @p tbl8_v6 groups (ox_policy_tbl8s() of each prefix, plus what the rest
 * takes; ox_policy_create() gives 256 and 1024).
 */
struct ox_policy *ox_policy_create_sized(const char *name, uint32_t max_rules, uint32_t tbl8_v4,
					 uint32_t tbl8_v6, int socket_id);

/**
 * tbl8 groups one prefix can take at most.
 *
 * @param ipv6
 *   IPv6 prefix.
 * @param depth
 *   Its length.
 * @return
 *   0 up to /24, then 1 for IPv4 and one per 8 bits past /24 for IPv6.
 */
uint32_t ox_policy_tbl8s(bool ipv6, uint8_t depth);

/**
 * Free a policy; NULL is allowed.
 *
 * @param p
 *   Policy.
 */
void ox_policy_free(struct ox_policy *p);

/**
 * Add a prefix, or give an existing one a new action.
 *
 * @param p
 *   Policy.
 * @param ipv6
 *   IPv6 (16 bytes at @p addr), else IPv4 (4 bytes, network order).
 * @param addr
 *   The prefix's address; bits past @p depth are ignored.
 * @param depth
 *   Prefix length: 0..32 (IPv4), 0..128 (IPv6). 0 is the default route.
 * @param action
 *   An enum ox_policy_action.
 * @return
 *   0, -EINVAL (depth, action), -ENOSPC (rules or tables full).
 */
int ox_policy_add(struct ox_policy *p, bool ipv6, const uint8_t *addr, uint8_t depth,
		  enum ox_policy_action action);

/**
 * Parse "ADDR/LEN" (or an address alone: a host) of either family.
 *
 * @return
 *   0, or -EINVAL.
 */
int ox_policy_parse_prefix(const char *s, bool *ipv6, uint8_t addr[16], uint8_t *depth);

/**
 * Add every prefix of a comma-separated list with one action.
 *
 * @param p
 *   Policy.
 * @param list
 *   "ADDR/LEN,ADDR/LEN,..."; empty adds nothing.
 * @param action
 *   Their action.
 * @param err
 *   Message naming the item that failed.
 * @param errlen
 *   Its size.
 * @return
 *   0, or a negative errno.
 */
int ox_policy_add_list(struct ox_policy *p, const char *list, enum ox_policy_action action,
		       char *err, size_t errlen);

/**
 * Open a port of the relay host (HOST and GATEWAY addresses) to clients.
 *
 * @param p
 *   Policy.
 * @param proto
 *   IPPROTO_TCP or IPPROTO_UDP.
 * @param port
 *   Port, host order.
 * @return
 *   0, or -EINVAL.
 */
int ox_policy_open_port(struct ox_policy *p, uint8_t proto, uint16_t port);

/**
 * Open ports from a list "udp/53,tcp/53,tcp/8080".
 *
 * @return
 *   0, or -EINVAL with a message in @p err.
 */
int ox_policy_open_list(struct ox_policy *p, const char *list, char *err, size_t errlen);

/**
 * Judge an inner IP packet by its destination (any lcore).
 *
 * @param p
 *   Policy.
 * @param ip
 *   The packet, from its IP header; its total length was checked against
 *   @p len by the caller, and its version is 4 or 6.
 * @param len
 *   Bytes of packet.
 * @return
 *   true to forward, false to refuse.
 */
bool ox_policy_check(const struct ox_policy *p, const uint8_t *ip, uint16_t len);

#endif /* OX_POLICY_H */
