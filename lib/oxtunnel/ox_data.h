/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_DATA_H
#define OX_DATA_H
/**
 * @file
 * DATA messages: keypairs and their limits, the replay window, sealing and
 * opening in place (one packet, or staged around a burst), a peer's three
 * keypairs, send keys, BATCH. A keypair's send side is safe from any number
 * of threads (atomic counter), its receive side has one writer. Part of
 * lib/oxtunnel.
 */
#include <stdatomic.h>

#include "ox_aead.h"
#include "ox_wire.h"

/* ---------------------------------------------------- keypairs, replay */

/**
 * CLOCK_MONOTONIC in nanoseconds: the clock of every timer and limit of
 * this library (the now_ns arguments), for the server, the client and the
 * tools alike.
 */
static inline uint64_t
ox_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/** Limits and timers (doc/oxtunnel.md, "Timers and limits"). */
#define OX_REKEY_AFTER_MESSAGES (UINT64_C(1) << 60)
#define OX_REJECT_AFTER_MESSAGES (UINT64_MAX - (UINT64_C(1) << 13))
#define OX_REKEY_AFTER_NS (UINT64_C(120) * 1000000000)
#define OX_REJECT_AFTER_NS (UINT64_C(180) * 1000000000)
#define OX_REKEY_TIMEOUT_NS (UINT64_C(5) * 1000000000)
#define OX_REKEY_ATTEMPT_NS (UINT64_C(90) * 1000000000)
#define OX_KEEPALIVE_NS (UINT64_C(10) * 1000000000)
#define OX_COOKIE_SECRET_NS (UINT64_C(120) * 1000000000)
/** Least time between two initiations accepted from one key (50 a second). */
#define OX_INIT_MIN_GAP_NS (UINT64_C(1000000000) / 50)
#define OX_SESSION_IDLE_NS (UINT64_C(180) * 1000000000)

/** Replay bitmap words (RFC 6479): one word is always being recycled. */
#define OX_REPLAY_WORDS 34
#define OX_REPLAY_WINDOW ((OX_REPLAY_WORDS - 1) * 64) /**< 2112 counters */

/** RFC 6479 sliding window. One writer. */
struct ox_replay {
	uint64_t top; /**< highest counter accepted */
	bool any;     /**< anything accepted yet */
	uint64_t bits[OX_REPLAY_WORDS];
};

void ox_replay_init(struct ox_replay *r);

/**
 * Check a counter without recording it.
 * @return 0, -OX_DROP_REPLAY (seen) or -OX_DROP_TOO_OLD (left the window).
 */
int ox_replay_check(const struct ox_replay *r, uint64_t counter);

/** Record a counter that passed ox_replay_check() and authenticated. */
void ox_replay_commit(struct ox_replay *r, uint64_t counter);

/**
 * Transport keys of one handshake, one key per direction.
 *
 * Send side: any thread; the counter is taken with one atomic add, so no
 * two packets ever get the same nonce. Receive side: one writer (the replay
 * window), which the server arranges by owning each session on one lcore.
 */
struct ox_keypair {
	uint8_t send_key[OX_KEY_LEN];
	uint8_t recv_key[OX_KEY_LEN];
	_Atomic uint64_t send_counter; /**< next counter to send */
	uint64_t send_limit;	       /**< counters >= this are never sent, nor accepted */
	uint64_t rekey_messages;       /**< initiator rekeys past this many */
	uint64_t birth_ns;	       /**< when the handshake completed */
	uint64_t rekey_ns;	       /**< initiator rekeys past birth + this */
	uint64_t expire_ns;	       /**< unusable past birth + this */
	uint32_t local_index;	       /**< receiver index the peer sends to us */
	uint32_t remote_index;	       /**< receiver index we send to the peer */
	bool initiator;
	bool valid;
	uint8_t wire; /**< enum ox_wire of its DATA messages (OxTunnel unless set) */
	struct ox_replay replay;
};

/**
 * Seal a DATA message in place. @p pkt holds OX_DATA_HDR_LEN bytes of
 * room, then @p plain_len bytes of plaintext, then OX_TAG_LEN bytes of room
 * (WireGuard: OX_WG_PAD - 1 more, for the padding). OxTunnel authenticates
 * the header as associated data; WireGuard pads the plaintext with zeros to
 * a multiple of OX_WG_PAD and has no associated data.
 *
 * @return
 *   The datagram length, or -OX_DROP_KEY_EXPIRED (too old, or the counter
 *   limit reached: rekey), or -OX_DROP_CRYPTO if the backend failed.
 */
int ox_data_seal(struct ox_aead *a, struct ox_keypair *kp, uint8_t *pkt, size_t plain_len,
		 uint64_t now_ns);

/**
 * Open a DATA message in place (already classified by ox_msg_parse() and
 * its receiver index resolved to @p kp). Checks the counter against the
 * limit and the replay window before the AEAD, records it after.
 *
 * @return
 *   The plaintext length (it starts at pkt + OX_DATA_HDR_LEN), or a
 *   negative enum ox_drop.
 */
int ox_data_open(struct ox_aead *a, struct ox_keypair *kp, uint8_t *pkt, size_t len,
		 uint64_t now_ns);

/**
 * ox_data_open() in two halves around the AEAD, for a burst of them in one
 * ox_aead_open_burst(): the checks before it (limits, the replay window),
 * then @p op filled. @return 0 or a negative enum ox_drop.
 */
int ox_data_open_prep(struct ox_keypair *kp, uint8_t *pkt, size_t len, uint64_t now_ns,
		      struct ox_aead_op *op);

/**
 * The second half: the AEAD's status, the window checked again (an earlier
 * packet of the burst may have taken the counter) and written.
 * @return the plaintext length, or a negative enum ox_drop.
 */
int ox_data_open_done(struct ox_keypair *kp, const struct ox_aead_op *op);

/**
 * @return true when the initiator should start a new handshake: the
 * keypair is older than rekey_ns, or either direction's counter passed
 * rekey_messages (the responder never initiates, so the initiator watches
 * the counters it receives too).
 */
bool ox_keypair_needs_rekey(const struct ox_keypair *kp, uint64_t now_ns);

/**
 * Fill a keypair with a handshake's keys (or a test's): counters at 0, the
 * limits and timers of doc/oxtunnel.md, an empty replay window, valid.
 *
 * @param kp
 *   Keypair to fill.
 * @param send, recv
 *   The key of each direction.
 * @param local
 *   Receiver index the peer sends to us.
 * @param remote
 *   Receiver index we send to the peer.
 * @param now_ns
 *   Its birth.
 * @param initiator
 *   The side that rekeys.
 */
void ox_keypair_init(struct ox_keypair *kp, const uint8_t send[OX_KEY_LEN],
		     const uint8_t recv[OX_KEY_LEN], uint32_t local, uint32_t remote,
		     uint64_t now_ns, bool initiator);

/** Wipe a keypair's keys and mark it unusable. */
void ox_keypair_wipe(struct ox_keypair *kp);

/**
 * The send half of a keypair on its own (a few dozen bytes, where a keypair
 * with its replay window is a few hundred): what a server publishes for
 * every thread to seal with, while the receive half stays with the one
 * thread that opens. Same threading as the send side of struct ox_keypair.
 */
struct ox_sendkey {
	uint8_t key[OX_KEY_LEN];
	_Atomic uint64_t counter; /**< next counter to send */
	uint64_t limit;		  /**< counters >= this are never sent */
	uint64_t birth_ns;
	uint64_t expire_ns;
	uint32_t remote_index;
	bool valid;
	uint8_t wire; /**< enum ox_wire */
};

/**
 * Copy a keypair's send half, with its counter as it is now. Not atomic
 * with respect to senders of @p kp: call it while nobody sends with @p kp.
 */
void ox_sendkey_from(struct ox_sendkey *sk, const struct ox_keypair *kp);

/** Wipe a send key and mark it unusable. */
void ox_sendkey_wipe(struct ox_sendkey *sk);

/** ox_data_seal() with a send key. */
int ox_data_seal_sk(struct ox_aead *a, struct ox_sendkey *sk, uint8_t *pkt, size_t plain_len,
		    uint64_t now_ns);

/**
 * ox_data_seal_sk() but the AEAD: the counter taken, padding and header
 * written, @p op filled for ox_aead_seal_burst() (whose status says
 * whether the datagram may leave).
 * @return the datagram's length, or a negative enum ox_drop.
 */
int ox_data_seal_sk_prep(struct ox_sendkey *sk, uint8_t *pkt, size_t plain_len, uint64_t now_ns,
			 struct ox_aead_op *op);

/** Receiver indexes of dropped keypairs an ox_peer remembers. */
#define OX_PEER_RETIRED_MAX 4

/**
 * The keypairs of one peer: current, the one before it (kept for in-flight
 * packets until it expires) and, on the responder, the next one (from a
 * handshake whose first data packet has not come yet). One writer.
 *
 * The receiver indexes of keypairs it drops (replaced, or pushed out by a
 * newer one) are noted, for a server that hands out unique indexes to take
 * back with ox_peer_take_retired(). One install or open drops at most three.
 */
struct ox_peer {
	struct ox_keypair kp[3];
	int8_t cur, prev, next; /**< slot in kp[], or -1 */
	uint8_t n_retired;
	uint32_t retired[OX_PEER_RETIRED_MAX];
};

void ox_peer_init(struct ox_peer *p);

/**
 * Install the keypair of a completed handshake. The initiator uses it at
 * once (@p confirmed true); the responder keeps it as next until a data
 * packet under it arrives. The slot of the oldest keypair is reused.
 */
void ox_peer_install(struct ox_peer *p, const struct ox_keypair *kp, bool confirmed);

/** @return the keypair with this receiver index, or NULL. */
struct ox_keypair *ox_peer_find(struct ox_peer *p, uint32_t local_index);

/** @return the keypair to send with, or NULL when there is none. */
struct ox_keypair *ox_peer_current(struct ox_peer *p);

/**
 * ox_data_open() with the keypair found by the message's receiver index; a
 * packet that opens under the next keypair makes it current.
 */
int ox_peer_open(struct ox_aead *a, struct ox_peer *p, uint8_t *pkt, size_t len, uint64_t now_ns);

/**
 * ox_peer_open() in halves (see ox_data_open_prep()): the keypair found,
 * its checks, @p op filled; @p kp is what ox_peer_open_done() takes. Between
 * the halves nothing may install keypairs into the peer.
 */
int ox_peer_open_prep(struct ox_peer *p, uint8_t *pkt, size_t len, uint64_t now_ns,
		      struct ox_aead_op *op, struct ox_keypair **kp);

/** The second half: ox_data_open_done(), and the next keypair promoted. */
int ox_peer_open_done(struct ox_peer *p, struct ox_keypair *kp, const struct ox_aead_op *op);

/** Wipe every keypair. */
void ox_peer_wipe(struct ox_peer *p);

/**
 * Take the receiver indexes of the keypairs dropped since the last call.
 *
 * @return how many were written to @p out.
 */
unsigned int ox_peer_take_retired(struct ox_peer *p, uint32_t out[OX_PEER_RETIRED_MAX]);

/* ---------------------------------------------------------------- BATCH */

/** Most packets one BATCH plaintext may carry. */
#define OX_BATCH_MAX 64
/** Smallest inner packet (an IPv4 header). */
#define OX_INNER_MIN 20

/** Builds a BATCH plaintext: kind byte, u16 LE count, (u16 LE len, packet)*. */
struct ox_batch {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint16_t count;
};

/** @return 0, or -ENOSPC if @p cap cannot hold the 3-byte preamble. */
int ox_batch_init(struct ox_batch *b, uint8_t *buf, size_t cap);

/** @return 0, -ENOSPC (full: send and start a new one) or -EINVAL (size). */
int ox_batch_add(struct ox_batch *b, const uint8_t *pkt, size_t len);

/** Write the count. @return the plaintext length. */
size_t ox_batch_finish(struct ox_batch *b);

/**
 * Walk a BATCH plaintext. Call with *off = 0; each call yields one packet.
 * The whole batch is validated on the first call (count, every length, no
 * trailing bytes) so that a bad batch yields nothing.
 *
 * @return 1 with *pkt and *pkt_len set, 0 at the end, or -OX_DROP_BAD_BATCH.
 */
int ox_batch_next(const uint8_t *p, size_t len, size_t *off, const uint8_t **pkt, size_t *pkt_len);

/* ---------------------------------------------------------------- CONFIG */

/** DNS servers a CONFIG carries at most. */
#define OX_CONFIG_DNS_MAX 8
/** Bytes of the largest CONFIG plaintext (kind, then 8 IPv6 items). */
#define OX_CONFIG_MAX (1 + OX_CONFIG_DNS_MAX * 18)
/** Item kinds of a CONFIG (doc/oxtunnel.md 2.6). */
#define OX_CONFIG_DNS4 1
#define OX_CONFIG_DNS6 2

/** What a relay tells a client in a CONFIG: its DNS servers. */
struct ox_config {
	uint8_t n_dns;
	struct {
		bool v6;
		uint8_t addr[16]; /**< IPv4 in the first 4 bytes, network order */
	} dns[OX_CONFIG_DNS_MAX];
};

/**
 * Parse a list of DNS servers, IPv4 and IPv6 literals separated by commas
 * (spaces allowed around them), into @p c.
 *
 * @return 0, or -EINVAL (-E2BIG past OX_CONFIG_DNS_MAX) with the reason in
 *   @p err.
 */
int ox_config_dns_parse(const char *list, struct ox_config *c, char *err, size_t errlen);

/** Write @p c as a CONFIG plaintext: @return its length (<= OX_CONFIG_MAX). */
size_t ox_config_put(const struct ox_config *c, uint8_t *pt);

/**
 * Read a CONFIG plaintext (its kind byte first), one item at a time: each
 * item whole inside it, a known kind of its exact length; items of kinds
 * not known are skipped; more DNS servers than OX_CONFIG_DNS_MAX, or an
 * address that is no server's (zero, multicast), are refused.
 *
 * @return 0, or -OX_DROP_BAD_INNER.
 */
int ox_config_get(const uint8_t *pt, size_t len, struct ox_config *c);

#endif /* OX_DATA_H */
