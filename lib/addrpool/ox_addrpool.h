/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_ADDRPOOL_H
#define OX_ADDRPOOL_H
/**
 * @file
 * Tunnel address pool: one IPv4 and one IPv6 address per client key.
 *
 * A client keeps its addresses for as long as the pool lives, across any
 * number of reconnects: the pool maps its static public key to a host
 * number, from which both addresses derive (IPv4: net + n, IPv6: prefix +
 * n). A new key's host number is searched from a hash of the key, so the
 * same key tends to get the same address after a server restart too.
 * Addresses named in the allow-list are reserved for their key: an IPv4, an
 * IPv6 inside the IPv6 prefix (which then replaces the derived one), or
 * both. No IPv4 and no IPv6 is ever held by two keys, derived or fixed.
 *
 * Single writer (the control plane); no DPDK dependency.
 */
#include <stdbool.h>
#include <stdint.h>

/** Length of the client keys the pool is indexed by (X25519 public keys). */
#define OX_ADDRPOOL_KEY_LEN 32

/** Where the pool's addresses come from. */
struct ox_addrpool_conf {
	uint32_t v4_net;      /**< IPv4 network, host order (default 100.64.0.0) */
	uint8_t v4_prefix;    /**< its prefix length, 8..30 (default 10) */
	uint8_t v6_net[16];   /**< IPv6 prefix (default fd6f:7869:647a::/64) */
	uint8_t v6_prefix;    /**< its prefix length, 48..120 (default 64) */
	uint32_t max_clients; /**< most keys held at once (default and cap: what v4 allows) */
};

/** The addresses of one client. */
struct ox_tunnel_addr {
	uint32_t v4;	/**< IPv4, host order */
	uint8_t v6[16]; /**< IPv6 */
	uint32_t host;	/**< host number inside the pool (>= 2) */
};

struct ox_addrpool;

/**
 * Fill a configuration with the defaults (100.64.0.0/10, fd6f:7869:647a::/64).
 *
 * @param c
 *   Configuration to fill.
 */
void ox_addrpool_conf_default(struct ox_addrpool_conf *c);

/**
 * Create a pool. Host number 0 is the network, 1 the relay itself (its
 * tunnel address), the last IPv4 one the broadcast address: never given out.
 *
 * @param c
 *   Configuration.
 * @return
 *   The pool, or NULL with errno EINVAL (bad prefix) or ENOMEM.
 */
struct ox_addrpool *ox_addrpool_create(const struct ox_addrpool_conf *c);

/**
 * Free a pool. NULL is allowed.
 *
 * @param p
 *   Pool.
 */
void ox_addrpool_free(struct ox_addrpool *p);

/**
 * Reserve fixed addresses for a key (from the allow-list).
 *
 * @param p
 *   Pool.
 * @param key
 *   Client key.
 * @param v4
 *   IPv4 inside the pool, host order; 0 = none fixed (one from the pool
 *   at ox_addrpool_get()).
 * @param v6
 *   IPv6 inside the IPv6 prefix; NULL or all zero = none fixed (derived
 *   from the host number).
 * @return
 *   0 (also when the key holds exactly these already), -EINVAL nothing
 *   fixed, outside the pool or not assignable, -EEXIST an address (or the
 *   IPv6 derived from the IPv4) held by another key, -EBUSY the key holds
 *   other addresses, -ENOSPC pool full.
 */
int ox_addrpool_reserve(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN], uint32_t v4,
			const uint8_t *v6);

/**
 * Give a key a pool address it held before, not as a fixed one: a reload
 * rebuilding the pool carries sticky addresses over this way.
 *
 * @param p
 *   Pool.
 * @param key
 *   Client key.
 * @param v4
 *   Its IPv4, host order (the IPv6 is derived).
 * @return
 *   0, -EINVAL not assignable, -EEXIST taken (by a fixed address), -EBUSY
 *   the key holds others, -ENOSPC pool full.
 */
int ox_addrpool_claim(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN], uint32_t v4);

/**
 * The addresses of a key, assigned now if it has none yet.
 *
 * @param p
 *   Pool.
 * @param key
 *   Client key.
 * @param out
 *   Its addresses.
 * @return
 *   0, or -ENOSPC if the pool is full.
 */
int ox_addrpool_get(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		    struct ox_tunnel_addr *out);

/**
 * The addresses a key holds, without assigning any.
 *
 * @param p
 *   Pool.
 * @param key
 *   Client key.
 * @param out
 *   Its addresses.
 * @return
 *   0, or -ENOENT if it holds none (yet).
 */
int ox_addrpool_find(const struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		     struct ox_tunnel_addr *out);

/**
 * Walk the keys holding addresses.
 *
 * @param p
 *   Pool.
 * @param iter
 *   0 to start; advanced by each call.
 * @param key
 *   Set to the key (valid until the pool changes).
 * @param out
 *   Its addresses.
 * @param fixed
 *   Set when they are (partly) fixed ones.
 * @return
 *   0, or -ENOENT past the last.
 */
int ox_addrpool_next(const struct ox_addrpool *p, uint32_t *iter, const uint8_t **key,
		     struct ox_tunnel_addr *out, bool *fixed);

/**
 * Give a key's addresses back (its key left the allow-list).
 *
 * @param p
 *   Pool.
 * @param key
 *   Client key.
 * @return
 *   0, or -ENOENT if the key had none.
 */
int ox_addrpool_release(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN]);

/**
 * The relay's own tunnel addresses (host number 1).
 *
 * @param p
 *   Pool.
 * @param out
 *   Its addresses.
 */
void ox_addrpool_gateway(const struct ox_addrpool *p, struct ox_tunnel_addr *out);

/**
 * Keys holding an address.
 *
 * @param p
 *   Pool.
 * @return
 *   Count.
 */
uint32_t ox_addrpool_count(const struct ox_addrpool *p);

#endif /* OX_ADDRPOOL_H */
