/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_WIRE_H
#define OX_WIRE_H
/**
 * @file
 * OxTunnel v2 framing and keys: lengths, message types, drop reasons,
 * message parsing, OXPI probes, X25519 keys and their base64 form
 * (doc/oxtunnel.md). Part of lib/oxtunnel; ox_tunnel.h has them all.
 */
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
	OX_INNER_CONFIG_REQUEST = 0x05, /**< client asks for its settings */
	OX_INNER_CONFIG = 0x06,		/**< relay: the settings (ox_config) */
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
	X(PEER_EXPIRED, "expired") \
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

#endif /* OX_WIRE_H */
