/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_HANDSHAKE_H
#define OX_HANDSHAKE_H
/**
 * @file
 * The handshake around Noise IK for OxTunnel v2 and WireGuard: mac1, mac2
 * and cookies, the rate limits, the responder and the initiator. One
 * thread per object; a server's siblings (ox_hs_create_sibling), one per
 * further thread, share its cookie secret and rate limits under a lock, so
 * any of them may judge any source; servers of one key on several threads
 * may share an allow-list, whose entries' handshake state they change
 * atomically. Part of lib/oxtunnel.
 */
#include "ox_allowlist.h"
#include "ox_data.h"
#include "ox_wire.h"

/* ------------------------------------------------------------ handshake */

/** Where a datagram came from: IPv4 as ::ffff:a.b.c.d, port in host order. */
struct ox_src {
	uint8_t addr[16];
	uint16_t port;
};

/** What the response carries to the client (encrypted). */
struct ox_hs_payload {
	uint32_t index; /**< the server's receiver index for this client (set on
			     the client side; ox_hs_make_response() writes its
			     local_index argument instead) */
	uint32_t v4;	/**< tunnel IPv4, host order */
	uint8_t v6[16]; /**< tunnel IPv6 */
	uint8_t v4_prefix;
	uint8_t v6_prefix;
	uint16_t mtu;	      /**< tunnel MTU the client should set */
	uint16_t keepalive_s; /**< keepalive interval the server expects */
};

/** Server side: static key, MAC keys, cookie secret, allow-list, limits. */
struct ox_hs_server;

/** Server settings. */
struct ox_hs_conf {
	uint32_t hs_per_second;	    /**< initiations per source per second (20) */
	uint32_t hs_burst;	    /**< burst of the same (5) */
	uint32_t ratelimit_entries; /**< sources tracked at once (lib/ratelimit: an IPv4
					 address or an IPv6 /64), power of two (4096);
					 a new source past them is refused */
	enum ox_wire wire;	    /**< the messages it reads and writes (OxTunnel) */
};

void ox_hs_conf_default(struct ox_hs_conf *c);

/** @return the server, or NULL with errno set. */
struct ox_hs_server *ox_hs_create(const uint8_t priv[OX_KEY_LEN], const struct ox_hs_conf *c);
/**
 * A server for another thread that shares @p first's key, cookie secret and
 * rate limits (a source has one bucket and one cookie whichever of them
 * judges its INIT); its allow-list is set on its own (ox_hs_set_allowlist).
 * Make siblings before @p first is in use; they may be freed in any order.
 *
 * @return the server, or NULL with errno set.
 */
struct ox_hs_server *ox_hs_create_sibling(const struct ox_hs_server *first);

/** Free a server (its shared state with the last of its siblings). */
void ox_hs_free(struct ox_hs_server *s);

/** @return the server's static public key. */
const uint8_t *ox_hs_public(const struct ox_hs_server *s);

/** Copy the server's private key (for an operator's interface that shows
 * it to root, as `wg showconf` does); wipe @p out after use. */
void ox_hs_private_key(const struct ox_hs_server *s, uint8_t out[OX_KEY_LEN]);

/**
 * Use this allow-list from now on (not copied; the caller keeps it alive
 * while it is set). Sessions are not touched. The first server set on a
 * list makes its static-static DH cache this server key's: set it on one
 * server before other threads see the list.
 */
void ox_hs_set_allowlist(struct ox_hs_server *s, struct ox_allowlist *al);

/**
 * Compute the static-static DH of up to @p max listed keys that have none
 * yet (a handshake computes its peer's itself when it finds none): for the
 * control thread's idle time after a start or a reload, so that a storm of
 * first handshakes spends three variable-base X25519 each, not four.
 *
 * @return
 *   How many were computed; 0 once every listed key has its own.
 */
uint32_t ox_hs_precompute(struct ox_hs_server *s, uint32_t max);

/** Handshake state between reading an initiation and answering it. */
struct ox_responder {
	uint8_t h[32], ck[32];
	uint8_t re[OX_KEY_LEN];	      /**< client's ephemeral */
	uint8_t peer_key[OX_KEY_LEN]; /**< client's static public key */
	uint8_t ts[12];		      /**< its timestamp (TAI64N), now the entry's */
	uint32_t remote_index;	      /**< client's sender index */
	struct ox_allow_entry *peer;  /**< its allow-list entry (while that list lives) */
	uint8_t psk[OX_KEY_LEN];      /**< the entry's preshared key (WireGuard), copied */
	/* The response so far (ox_hs_respond_step): */
	uint8_t step;
	uint8_t e_priv[OX_KEY_LEN], e_pub[OX_KEY_LEN]; /**< our ephemeral */
	uint8_t ee[OX_KEY_LEN];			       /**< DH(e, re) */
};

/**
 * Derive the key that checks mac1 of initiations to a server: keyed
 * BLAKE2b of "mac1----" and the server's public key.
 */
void ox_mac1_key(uint8_t out[OX_KEY_LEN], const uint8_t server_pub[OX_KEY_LEN]);

/** ox_mac1_key() for WireGuard: BLAKE2s of "mac1----" and the public key. */
void ox_wg_mac1_key(uint8_t out[OX_KEY_LEN], const uint8_t pub[OX_KEY_LEN]);

/**
 * Check an initiation's length and mac1, the proof that its sender knows
 * the server's public key. Needs no server object and no state, so any
 * thread may call it: the relay's workers do, so that initiations without
 * the key never reach the control thread's queue.
 *
 * @param mac1_key
 *   From ox_mac1_key().
 * @return
 *   0, -OX_DROP_BAD_LENGTH, -OX_DROP_UNEXPECTED (not an INIT) or
 *   -OX_DROP_BAD_MAC1.
 */
int ox_init_check_mac1(const uint8_t mac1_key[OX_KEY_LEN], const uint8_t *pkt, size_t len);

/** ox_init_check_mac1() for WireGuard (mac1 is keyed BLAKE2s-128). */
int ox_wg_init_check_mac1(const uint8_t mac1_key[OX_KEY_LEN], const uint8_t *pkt, size_t len);

/**
 * Read an initiation from @p src: length, mac1, then (under load only)
 * mac2 or a cookie reply and the rate limit of the source mac2 proved, then
 * Noise. The client key must be on the allow-list, its timestamp newer than
 * the last one accepted and its last accepted initiation at least
 * OX_INIT_MIN_GAP_NS old; OxTunnel refuses a key listed with a preshared key.
 * Below load no source is limited, as in WireGuard: a bucket taken for any
 * valid mac1 could be emptied by whoever spoofs a victim's address.
 *
 * @param reply
 *   OX_COOKIE_LEN bytes; on -OX_DROP_COOKIE_SENT it holds the cookie reply
 *   to send back to @p src.
 * @return
 *   0 with @p r filled in, or a negative enum ox_drop. On
 *   -OX_DROP_PSK_WIREGUARD_ONLY, r->peer names the refused entry.
 */
int ox_hs_consume_init(struct ox_hs_server *s, const uint8_t *pkt, size_t len,
		       const struct ox_src *src, uint64_t now_ns, bool under_load,
		       struct ox_responder *r, uint8_t reply[OX_COOKIE_LEN]);

/**
 * Answer a consumed initiation and derive the keypair (not yet confirmed,
 * see ox_peer_install()). @p r is wiped.
 *
 * @param pl
 *   What an OxTunnel response carries; a WireGuard response carries nothing
 *   (NULL is fine) and mixes the peer's preshared key from the allow-list.
 * @param out
 *   ox_hs_response_len() bytes.
 * @return 0, or -EIO (a degenerate key: nothing to send).
 */
int ox_hs_make_response(struct ox_hs_server *s, struct ox_responder *r,
			const struct ox_hs_payload *pl, uint32_t local_index, uint64_t now_ns,
			uint8_t *out, struct ox_keypair *kp);

/**
 * ox_hs_make_response() one X25519 at a time, for a caller that must not
 * be away long (a worker between its bursts): the first call makes the
 * ephemeral (fixed-base), the second its DH with the client's, the third
 * the DH with the client's static and the message. The arguments must be
 * the same every call; @p r holds the work between them and nothing
 * else does (no allow-list entry is read after ox_hs_consume_init()).
 *
 * @return 1: call again; 0: done, as ox_hs_make_response(); or -EIO.
 *   @p r is wiped once it is not 1.
 */
int ox_hs_respond_step(struct ox_hs_server *s, struct ox_responder *r,
		       const struct ox_hs_payload *pl, uint32_t local_index, uint64_t now_ns,
		       uint8_t *out, struct ox_keypair *kp);

/** Bytes of the server's response: OX_RESPONSE_LEN or OX_WG_RESPONSE_LEN. */
size_t ox_hs_response_len(const struct ox_hs_server *s);

/** Client side of one handshake (and the cookie it may have been given). */
struct ox_initiator {
	uint8_t h[32], ck[32];
	uint8_t s_priv[OX_KEY_LEN], s_pub[OX_KEY_LEN];
	uint8_t e_priv[OX_KEY_LEN];
	uint8_t server_pub[OX_KEY_LEN];
	uint8_t mac1_key[OX_KEY_LEN];
	uint8_t cookie_key[OX_KEY_LEN];
	uint8_t last_mac1[OX_MAC_LEN]; /**< of the last initiation sent */
	uint8_t cookie[OX_MAC_LEN];
	uint64_t cookie_ns; /**< when the cookie came; 0 = none */
	uint32_t local_index;
	bool pending;		 /**< an initiation awaits its response */
	enum ox_wire wire;	 /**< the messages it writes and reads */
	uint8_t psk[OX_KEY_LEN]; /**< WireGuard's preshared key; zeros = none */
};

/**
 * Set up the client side for a server.
 * @return 0, or -EINVAL for a degenerate key pair.
 */
int ox_initiator_init(struct ox_initiator *in, const uint8_t priv[OX_KEY_LEN],
		      const uint8_t server_pub[OX_KEY_LEN]);

/**
 * ox_initiator_init() for a wire protocol; @p psk (WireGuard; NULL = none)
 * is copied.
 */
int ox_initiator_init_wire(struct ox_initiator *in, enum ox_wire wire,
			   const uint8_t priv[OX_KEY_LEN], const uint8_t server_pub[OX_KEY_LEN],
			   const uint8_t *psk);

/**
 * Write an initiation (new ephemeral key; mac2 when a cookie younger than
 * OX_COOKIE_SECRET_NS is held). @p tai64n is the wall clock (see
 * ox_tai64n_now()).
 *
 * @return 0 or -EIO.
 */
int ox_initiator_begin(struct ox_initiator *in, uint32_t local_index, const uint8_t tai64n[12],
		       uint64_t now_ns, uint8_t out[OX_INIT_LEN]);

/**
 * Put mac2 on an initiation made by ox_initiator_begin() before the cookie
 * @p in holds came (a client that makes its next initiation ahead of
 * sending it): the MAC of its first 132 bytes under the cookie.
 *
 * @return 0, or -ENOENT when @p in holds no cookie younger than
 *   OX_COOKIE_SECRET_NS (mac2 is left as it is).
 */
int ox_initiator_put_mac2(const struct ox_initiator *in, uint8_t init[OX_INIT_LEN],
			  uint64_t now_ns);

/** Take a cookie reply. @return 0 or a negative enum ox_drop. */
int ox_initiator_consume_cookie(struct ox_initiator *in, const uint8_t *pkt, size_t len,
				uint64_t now_ns);

/**
 * Take the response: derive the keypair (confirmed; send a DATA message,
 * e.g. an empty one, so the server confirms it too) and the payload (from
 * WireGuard: only the index).
 *
 * @return 0 or a negative enum ox_drop.
 */
int ox_initiator_consume_response(struct ox_initiator *in, const uint8_t *pkt, size_t len,
				  uint64_t now_ns, struct ox_hs_payload *pl, struct ox_keypair *kp);

/** Wipe the client side's secrets. */
void ox_initiator_wipe(struct ox_initiator *in);

/** The wall clock as TAI64N (12 bytes, big-endian). */
void ox_tai64n_now(uint8_t out[12]);

#endif /* OX_HANDSHAKE_H */
