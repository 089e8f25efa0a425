/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TUNNEL_H
#define OX_TUNNEL_H
/**
 * @file
 * OxTunnel v2: framing, Noise IK handshake, per-packet AEAD, replay window,
 * rekey limits and handshake DoS defences. The normative description is
 * doc/oxtunnel.md; every constant below is named there.
 *
 * Pure C11 on libsodium and OpenSSL libcrypto, no DPDK: the server calls it
 * on mbuf data in place, the standard-UDP client links it too.
 *
 * Functions that judge untrusted bytes return a length or message type
 * (>= 0) or a negative enum ox_drop, so the caller counts the drop under
 * its name. Functions that set things up return 0 or -errno.
 *
 * Threading: see each structure. In short, the handshake objects (struct
 * ox_hs_server, ox_initiator, ox_responder, ox_allowlist) have one writer, the
 * control thread; a keypair's send side is safe from any number of threads
 * (atomic counter), its receive side (replay window) has one writer.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------------------------------------------------------------- wire */

#define OX_KEY_LEN 32	     /**< X25519 key, symmetric key */
#define OX_KEY_B64_LEN 44    /**< base64 of a key, without NUL */
#define OX_TAG_LEN 16	     /**< Poly1305 tag */
#define OX_MAC_LEN 16	     /**< mac1, mac2, cookie */
#define OX_MAX_DATAGRAM 9216 /**< largest datagram either side sends or takes */

#define OX_MAGIC0 0x4f /**< 'O' */
#define OX_MAGIC1 0x58 /**< 'X' */
/** Byte 2 of every v2 message. The high bit never occurs in a v1 flags byte. */
#define OX_WIRE_VERSION 0x82

/**
 * The two wire protocols lib/oxtunnel speaks: OxTunnel v2 (doc/oxtunnel.md)
 * and WireGuard (the whitepaper and the Linux module). One Noise
 * implementation, handshake and data path serve both; this says which bytes.
 */
enum ox_wire {
	OX_WIRE_OXTUNNEL = 0,
	OX_WIRE_WIREGUARD = 1,
};

/** Message types (OxTunnel: byte 3; WireGuard: byte 0, the same numbers). */
enum ox_msg_type {
	OX_MSG_INIT = 1,     /**< handshake initiation, client -> server */
	OX_MSG_RESPONSE = 2, /**< handshake response, server -> client */
	OX_MSG_COOKIE = 3,   /**< cookie reply to an initiation under load */
	OX_MSG_DATA = 4,     /**< transport data */
	OX_MSG_PROBE = 0x50, /**< "OXPI" RTT probe (no version byte) */
};

#define OX_HDR_LEN 4	   /**< magic, version, type */
#define OX_DATA_HDR_LEN 16 /**< + receiver index u32, counter u64 */
#define OX_DATA_OVERHEAD (OX_DATA_HDR_LEN + OX_TAG_LEN)
#define OX_MAX_PLAINTEXT (OX_MAX_DATAGRAM - OX_DATA_OVERHEAD)
#define OX_INIT_LEN 148
#define OX_INIT_MAC1_OFF 116 /**< mac1 covers bytes [0, 116) */
#define OX_INIT_MAC2_OFF 132 /**< mac2 covers bytes [0, 132) */
#define OX_RESPONSE_LEN 88
#define OX_COOKIE_LEN 64
#define OX_PROBE_MIN_LEN 4

/* WireGuard: a type byte, three zero bytes, then the fields; the sizes of
 * DATA's header and tag, and the INIT's mac offsets, are OxTunnel's. */
#define OX_WG_RESPONSE_LEN 92
#define OX_WG_RESPONSE_MAC1_OFF 60 /**< mac1 covers bytes [0, 60) */
#define OX_WG_RESPONSE_MAC2_OFF 76 /**< mac2 covers bytes [0, 76) */
#define OX_WG_PAD 16		   /**< DATA plaintexts are zero-padded to this */
/** The WireGuard identifier: the prologue of its handshake. */
#define OX_WG_IDENTIFIER "WireGuard v1 zx2c4 Jason@zx2c4.com"

/**
 * The tunnel MTU a relay gives clients by default: a 1500-byte path less
 * an outer IPv6 header (40), UDP (8) and the DATA overhead (32).
 */
#define OX_DEFAULT_MTU 1420
/** Most bytes a KEEPALIVE carries after its kind byte (echoed in the ACK). */
#define OX_KEEPALIVE_MAX_ECHO 64

/** First byte of a decrypted DATA plaintext other than an IP packet. */
enum ox_inner_kind {
	OX_INNER_KEEPALIVE = 0x01, /**< asks for an ACK; echoes its bytes */
	OX_INNER_ACK = 0x02,
	OX_INNER_DISCONNECT = 0x03,
	OX_INNER_BATCH = 0x04,
};

/**
 * Whether a plaintext's first byte starts an inner IP packet: IPv4 with a
 * header length of at least 5 words (0x45..0x4f) or IPv6 (0x60..0x6f).
 */
static inline bool
ox_inner_is_ip(uint8_t first)
{
	return (first >= 0x45 && first <= 0x4f) || (first >= 0x60 && first <= 0x6f);
}

/**
 * Drop reasons of the protocol layer, in counting order. X(name, text): the
 * text is the counter's name in telemetry.
 */
#define OX_DROP_REASONS(X) \
	X(TOO_SHORT, "too_short") \
	X(TOO_LONG, "too_long") \
	X(BAD_MAGIC, "bad_magic") \
	X(V1, "v1_datagram") \
	X(BAD_VERSION, "bad_version") \
	X(BAD_TYPE, "bad_type") \
	X(BAD_LENGTH, "bad_length") \
	X(UNEXPECTED, "unexpected_type") \
	X(BAD_MAC1, "bad_mac1") \
	X(COOKIE_SENT, "cookie_sent") \
	X(RATE_LIMITED, "hs_rate_limited") \
	X(SOURCES_FULL, "hs_sources_full") \
	X(HS_DECRYPT, "hs_decrypt_failed") \
	X(UNKNOWN_PEER, "unknown_peer") \
	X(STALE_INIT, "stale_init") \
	X(INIT_FLOOD, "init_flood") \
	X(PSK_WIREGUARD_ONLY, "psk_wireguard_only") \
	X(UNKNOWN_INDEX, "unknown_index") \
	X(BAD_TAG, "bad_tag") \
	X(REPLAY, "replay") \
	X(TOO_OLD, "too_old") \
	X(KEY_EXPIRED, "key_expired") \
	X(BAD_INNER, "bad_inner") \
	X(BAD_BATCH, "bad_batch") \
	X(CRYPTO, "crypto_failed") \
	X(NO_MEMORY, "no_memory")

enum ox_drop {
	OX_DROP_NONE = 0,
/* clang-format off */
#define OX_DROP_ENUM(n, s) OX_DROP_##n,
	OX_DROP_REASONS(OX_DROP_ENUM)
#undef OX_DROP_ENUM
	OX_DROP_MAX
	/* clang-format on */
};

/** @return the counter name of a drop reason ("?" when out of range). */
const char *ox_drop_name(int reason);

/** What ox_msg_parse() learnt from a datagram's clear fields. */
struct ox_msg {
	uint8_t type;	  /**< enum ox_msg_type */
	uint32_t index;	  /**< INIT: sender index; others: receiver index */
	uint64_t counter; /**< DATA only */
};

/**
 * Classify a datagram by its clear fields, one condition at a time; reads
 * nothing past @p len. Each type has its exact length (DATA: a range).
 *
 * @return
 *   The enum ox_msg_type, or a negative enum ox_drop.
 */
int ox_msg_parse(const uint8_t *buf, size_t len, struct ox_msg *m);

/** Whether a datagram starts like an OxTunnel message or probe: "OX". */
bool ox_match(const uint8_t *buf, size_t len);

/**
 * Whether a datagram starts like a WireGuard message: a type byte 1..4
 * and three zero bytes.
 */
bool ox_wg_match(const uint8_t *buf, size_t len);

/**
 * ox_msg_parse() for WireGuard: one condition at a time, each type with its
 * exact length (DATA: at least header and tag).
 *
 * @return
 *   The enum ox_msg_type, or a negative enum ox_drop.
 */
int ox_wg_msg_parse(const uint8_t *buf, size_t len, struct ox_msg *m);

/**
 * Turn an "OXPI" probe into its "OXPO" reply in place (same length).
 *
 * @return
 *   @p len, or -OX_DROP_TOO_SHORT / -OX_DROP_BAD_MAGIC.
 */
int ox_probe_reply(uint8_t *buf, size_t len);

/* ---------------------------------------------------------------- keys */

/** Make an X25519 key pair from the system's CSPRNG. */
void ox_key_generate(uint8_t priv[OX_KEY_LEN], uint8_t pub[OX_KEY_LEN]);

/** @return 0, or -EINVAL if @p priv gives a degenerate public key. */
int ox_key_public(uint8_t pub[OX_KEY_LEN], const uint8_t priv[OX_KEY_LEN]);

/** Write the base64 form (44 characters and a NUL) of a key. */
void ox_key_to_base64(char out[OX_KEY_B64_LEN + 1], const uint8_t key[OX_KEY_LEN]);

/**
 * Read a key's base64 form: exactly 44 characters, standard alphabet, one
 * '=' of padding, nothing else.
 *
 * @return 0 or -EINVAL.
 */
int ox_key_from_base64(uint8_t key[OX_KEY_LEN], const char *s, size_t len);

/**
 * Read a private key file: the base64 key, optional trailing whitespace.
 * Refuses a file that others may read (mode & 077), with -EPERM.
 *
 * @return 0 or -errno (-EINVAL: content; message in @p err).
 */
int ox_key_load(const char *path, uint8_t key[OX_KEY_LEN], char *err, size_t errlen);

/* ---------------------------------------------------------------- AEAD */

/** Per-packet ChaCha20-Poly1305 implementations. */
enum ox_aead_impl {
	OX_AEAD_OPENSSL = 0, /**< OpenSSL 3 EVP: faster from about 600 bytes up */
	OX_AEAD_SODIUM = 1,  /**< libsodium: less fixed cost per call, faster below */
	/** intel-ipsec-mb where built in and the CPU has one of its SIMD paths
	 * (AVX-512, AVX2, AVX, SSE); else the faster of the two above by length */
	OX_AEAD_AUTO = 2,
	OX_AEAD_IPSECMB = 3, /**< intel-ipsec-mb's job API, or fail with ENOTSUP */
};

/**
 * OX_AEAD_AUTO's switch-over: shorter plaintexts go to libsodium, longer
 * to OpenSSL (both give the same bytes). From doc/aead-performance.md.
 */
#define OX_AEAD_AUTO_THRESHOLD 640

/**
 * A per-thread AEAD context: keys are given per call, so one context
 * serves every keypair of its thread. Not shareable between threads.
 */
struct ox_aead;

/**
 * @return a context, or NULL with errno set (ENOTSUP: OX_AEAD_IPSECMB
 * without the library or a CPU it runs on).
 */
struct ox_aead *ox_aead_create(enum ox_aead_impl impl);
void ox_aead_free(struct ox_aead *a);

/** What a context runs, for the log: e.g. "intel-ipsec-mb 1.3.0 avx512". */
const char *ox_aead_name(const struct ox_aead *a);

/** The implementation a context chose (OX_AEAD_AUTO resolved). */
enum ox_aead_impl ox_aead_impl_of(const struct ox_aead *a);

/**
 * Encrypt @p len bytes at @p buf in place and write the tag. The nonce is
 * 32 zero bits then @p counter little-endian (RFC 8439 layout, as Noise).
 *
 * @return 0, or -EIO if the backend failed.
 */
int ox_aead_seal(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], uint64_t counter,
		 const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
		 uint8_t tag[OX_TAG_LEN]);

/** Decrypt in place. @return 0, or -EBADMSG if the tag does not verify. */
int ox_aead_open(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], uint64_t counter,
		 const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
		 const uint8_t tag[OX_TAG_LEN]);

/** Most operations one burst call takes. */
#define OX_AEAD_BURST_MAX 64

/** One packet of a burst: ox_aead_seal()'s or ox_aead_open()'s arguments. */
struct ox_aead_op {
	const uint8_t *key; /**< OX_KEY_LEN bytes */
	uint64_t counter;   /**< the nonce's counter */
	const uint8_t *ad;
	size_t adlen;
	uint8_t *buf; /**< sealed or opened in place */
	size_t len;
	uint8_t *tag; /**< seal: written; open: the tag received */
	int status;   /**< out: 0, -EIO (seal) or -EBADMSG (open) */
};

/**
 * Seal @p n packets (at most OX_AEAD_BURST_MAX) in one submission:
 * intel-ipsec-mb's multi-buffer lanes take them together; the other
 * implementations one after the other. Each op's status is set.
 *
 * @return the number sealed (ops with status 0), or -EINVAL for @p n.
 */
int ox_aead_seal_burst(struct ox_aead *a, struct ox_aead_op *ops, unsigned int n);

/** ox_aead_seal_burst() for opening. @return the number opened. */
int ox_aead_open_burst(struct ox_aead *a, struct ox_aead_op *ops, unsigned int n);

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

/* ----------------------------------------------------------- allow-list */

/** One allowed client. */
struct ox_allow_entry {
	uint8_t key[OX_KEY_LEN]; /**< static public key */
	char name[32];		 /**< "" when the line has none */
	uint32_t v4;		 /**< fixed IPv4 (host order), 0 = from the pool */
	uint8_t v6[16];		 /**< fixed IPv6, all zero = from the pool */
	uint8_t last_init[12];	 /**< greatest TAI64N accepted (replay of initiations) */
	uint8_t psk[OX_KEY_LEN]; /**< WireGuard preshared key; all zero = none */
	uint32_t line;		 /**< line in the file */
	uint64_t last_init_ns;	 /**< when an initiation was last accepted; 0 = never */
	bool refusal_said;	 /**< for the caller: a refusal of this key was logged */
};

/** Immutable after load apart from last_init, last_init_ns and refusal_said
 * (control thread). */
struct ox_allowlist {
	struct ox_allow_entry *e; /**< sorted by key */
	uint32_t n;
};

/**
 * Parse an allow-list. A line is `KEY [NAME] [ADDRESS]...` with KEY the
 * base64 public key, NAME [A-Za-z0-9_.-]{1,31} not starting with a digit,
 * ADDRESS at most one IPv4 and one IPv6 literal; '#' starts a comment.
 * A duplicate key or address is an error.
 *
 * @param prev
 *   The list being replaced, or NULL: last_init carries over per key, so a
 *   reload does not reopen replay of old initiations.
 * @return
 *   0, or -errno with a message naming the line in @p err.
 */
int ox_allowlist_parse(struct ox_allowlist *al, const char *text, size_t len,
		       const struct ox_allowlist *prev, uint32_t max_entries, char *err,
		       size_t errlen);

/** ox_allowlist_parse() of a file. */
int ox_allowlist_load(struct ox_allowlist *al, const char *path, const struct ox_allowlist *prev,
		      uint32_t max_entries, char *err, size_t errlen);

/** @return the entry of a key, or NULL. */
struct ox_allow_entry *ox_allowlist_find(const struct ox_allowlist *al,
					 const uint8_t key[OX_KEY_LEN]);

void ox_allowlist_free(struct ox_allowlist *al);

/* ------------------------------------------------- handshake timestamps */

/**
 * The greatest handshake timestamp accepted from each key, beyond the
 * allow-list (a key removed and listed again) and, with a file, beyond a
 * restart: a captured initiation cannot be replayed to a server that has
 * forgotten it. The file is an append-only log: ox_tsstore_note() writes
 * each line to the kernel at once (a killed process loses nothing),
 * ox_tsstore_flush() puts it on the disk (a power cut loses at most what
 * came since); compacted when opened and when it has grown to four times
 * its keys. One thread.
 */
struct ox_tsstore;

/**
 * Open a store.
 *
 * @param path
 *   Its file (created, mode 600), or NULL for memory only.
 * @return
 *   The store, or NULL with errno set and a message in @p err.
 */
struct ox_tsstore *ox_tsstore_open(const char *path, char *err, size_t errlen);

/** Close a store (flushes nothing: call ox_tsstore_flush() first). */
void ox_tsstore_close(struct ox_tsstore *s);

/** Raise each entry's last_init of @p al to what the store holds. */
void ox_tsstore_apply(struct ox_tsstore *s, struct ox_allowlist *al);

/**
 * Record an accepted timestamp: in memory, and written to the file (not
 * synced) before it returns. Call it before the response leaves.
 *
 * @return 0, -ENOMEM, or -EIO (the file could not be written).
 */
int ox_tsstore_note(struct ox_tsstore *s, const uint8_t key[OX_KEY_LEN], const uint8_t ts[12]);

/**
 * Sync what was noted to the disk; compact the file when it has grown.
 *
 * @return 0, or -errno with a message in @p err.
 */
int ox_tsstore_flush(struct ox_tsstore *s, char *err, size_t errlen);

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
void ox_hs_free(struct ox_hs_server *s);

/** @return the server's static public key. */
const uint8_t *ox_hs_public(const struct ox_hs_server *s);

/**
 * Use this allow-list from now on (not copied; the caller keeps it alive
 * while it is set). Sessions are not touched.
 */
void ox_hs_set_allowlist(struct ox_hs_server *s, const struct ox_allowlist *al);

/** Handshake state between reading an initiation and answering it. */
struct ox_responder {
	uint8_t h[32], ck[32];
	uint8_t re[OX_KEY_LEN];	      /**< client's ephemeral */
	uint8_t peer_key[OX_KEY_LEN]; /**< client's static public key */
	uint32_t remote_index;	      /**< client's sender index */
	struct ox_allow_entry *peer;  /**< its allow-list entry */
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

#endif /* OX_TUNNEL_H */
