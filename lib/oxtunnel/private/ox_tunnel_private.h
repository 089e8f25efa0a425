/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TUNNEL_PRIVATE_H
#define OX_TUNNEL_PRIVATE_H
/*
 * Inside lib/oxtunnel: the Noise symmetric state and the two IK messages,
 * shared by the handshake code and the test-vector test. One implementation
 * serves both wire protocols, parameterised by a suite: OxTunnel v2's
 * Noise_IK_25519_ChaChaPoly_SHA256 and WireGuard's
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ox_tunnel.h"

#define OX_PROLOGUE "OxTunnel v2" /* then the first 8 bytes of INIT */
#define OX_PROLOGUE_LEN (sizeof(OX_PROLOGUE) - 1 + 8)
#define OX_HASH_LEN 32
#define OX_TAI64N_LEN 12
#define OX_HS_PAYLOAD_LEN 32 /* response payload in clear */
/* Noise bytes of the two messages with our payloads. */
#define OX_IK1_LEN (32 + 32 + OX_TAG_LEN + OX_TAI64N_LEN + OX_TAG_LEN)
#define OX_IK2_LEN (32 + OX_HS_PAYLOAD_LEN + OX_TAG_LEN)

/*
 * A Noise protocol's name and hash. hash() and hmac() take their input in
 * two parts (a || b; b may be empty) and give OX_HASH_LEN bytes.
 */
struct ox_noise_suite {
	const char *name;
	bool psk2; /* IKpsk2: e tokens also MixKey(e); a PSK after the response's se */
	void (*hash)(uint8_t out[OX_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
		     size_t blen);
	void (*hmac)(uint8_t out[OX_HASH_LEN], const uint8_t *key, size_t keylen, const uint8_t *a,
		     size_t alen, const uint8_t *b, size_t blen);
};

/* Noise_IK_25519_ChaChaPoly_SHA256 (libsodium) */
extern const struct ox_noise_suite ox_noise_oxtunnel;
/* Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (OpenSSL's BLAKE2s and HMAC) */
extern const struct ox_noise_suite ox_noise_wireguard;

/* Noise SymmetricState (with its CipherState). */
struct ox_noise {
	const struct ox_noise_suite *suite;
	uint8_t h[OX_HASH_LEN];
	uint8_t ck[OX_HASH_LEN];
	uint8_t k[OX_KEY_LEN];
	uint64_t n;
	bool has_k;
};

/* InitializeSymmetric(suite's name), then MixHash(prologue). */
void ox_noise_init(struct ox_noise *ns, const struct ox_noise_suite *suite, const uint8_t *prologue,
		   size_t plen);
/* Pick a handshake up again from h and ck kept between its messages. */
void ox_noise_resume(struct ox_noise *ns, const struct ox_noise_suite *suite,
		     const uint8_t h[OX_HASH_LEN], const uint8_t ck[OX_HASH_LEN]);
void ox_noise_mix_hash(struct ox_noise *ns, const uint8_t *data, size_t len);
int ox_noise_mix_dh(struct ox_noise *ns, const uint8_t priv[OX_KEY_LEN],
		    const uint8_t pub[OX_KEY_LEN]);
/* MixKey of a DH result computed before (all zero: -1). */
int ox_noise_mix_dh_result(struct ox_noise *ns, const uint8_t dh[OX_KEY_LEN]);
/* MixKeyAndHash(psk): what psk2 mixes after the response's se. */
void ox_noise_mix_psk(struct ox_noise *ns, const uint8_t psk[OX_KEY_LEN]);
void ox_noise_split(const struct ox_noise *ns, uint8_t k1[OX_KEY_LEN], uint8_t k2[OX_KEY_LEN]);
void ox_noise_wipe(struct ox_noise *ns);

/*
 * IK message 1 (-> e, es, s, ss, payload) and 2 (<- e, ee, se, payload).
 * The caller has done ox_noise_init() and mixed the pre-message (the
 * responder's static key). Outputs are 32 + 48 + plen + 16 and 32 + plen +
 * 16 bytes. Return 0 or -1 (degenerate DH, or a tag that fails). With a
 * psk2 suite, message 2 mixes psk (all zeros when the peer has none);
 * other suites take NULL.
 */
int ox_ik_write1(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN],
		 const uint8_t s_pub[OX_KEY_LEN], const uint8_t e_priv[OX_KEY_LEN],
		 const uint8_t rs[OX_KEY_LEN], const uint8_t *payload, size_t plen, uint8_t *out);
int ox_ik_read1(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN], const uint8_t *in,
		size_t len, uint8_t re[OX_KEY_LEN], uint8_t rs[OX_KEY_LEN], uint8_t *payload);
/* ox_ik_read1() in two steps, as a responder that keeps DH(s, rs) per
 * listed key (WireGuard's precomputed static-static) takes it: e, es and s
 * (the initiator's key into rs), then ss given and the payload. */
int ox_ik_read1_static(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN], const uint8_t *in,
		       size_t len, uint8_t re[OX_KEY_LEN], uint8_t rs[OX_KEY_LEN]);
int ox_ik_read1_finish(struct ox_noise *ns, const uint8_t ss[OX_KEY_LEN], const uint8_t *in,
		       size_t len, uint8_t *payload);
int ox_ik_write2(struct ox_noise *ns, const uint8_t e_priv[OX_KEY_LEN],
		 const uint8_t re[OX_KEY_LEN], const uint8_t rs[OX_KEY_LEN], const uint8_t *psk,
		 const uint8_t *payload, size_t plen, uint8_t *out);
/* The same with its Diffie-Hellman work done by the caller: the ephemeral's
 * public half and the ee and se results (a responder that spreads its
 * X25519 over turns, ox_hs_respond_step). */
int ox_ik_write2_dh(struct ox_noise *ns, const uint8_t e_pub[OX_KEY_LEN],
		    const uint8_t ee[OX_KEY_LEN], const uint8_t se[OX_KEY_LEN], const uint8_t *psk,
		    const uint8_t *payload, size_t plen, uint8_t *out);
int ox_ik_read2(struct ox_noise *ns, const uint8_t e_priv[OX_KEY_LEN],
		const uint8_t s_priv[OX_KEY_LEN], const uint8_t *psk, const uint8_t *in, size_t len,
		uint8_t *payload);

/* The per-packet AEAD with a whole 96-bit nonce (RFC 8439 vectors). */
int ox_aead_seal_iv(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], const uint8_t nonce[12],
		    const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
		    uint8_t tag[OX_TAG_LEN]);
int ox_aead_open_iv(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], const uint8_t nonce[12],
		    const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
		    const uint8_t tag[OX_TAG_LEN]);

/* snprintf into an error buffer that may be NULL (then nothing). */
void ox_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Keyed BLAKE2b-128 (mac1, mac2, cookie) and BLAKE2b-256 (derived keys). */
void ox_mac(uint8_t out[OX_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *in,
	    size_t len);
void ox_label_key(uint8_t out[OX_KEY_LEN], const char label[8], const uint8_t pub[OX_KEY_LEN]);
/* WireGuard's: keyed BLAKE2s-128, and BLAKE2s-256 of label and key. */
void ox_wg_mac(uint8_t out[OX_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *in,
	       size_t len);
void ox_wg_label_key(uint8_t out[OX_KEY_LEN], const char label[8], const uint8_t pub[OX_KEY_LEN]);

static inline uint32_t
ox_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
ox_get_le64(const uint8_t *p)
{
	return (uint64_t)ox_get_le32(p) | (uint64_t)ox_get_le32(p + 4) << 32;
}

static inline void
ox_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static inline void
ox_put_le64(uint8_t *p, uint64_t v)
{
	ox_put_le32(p, (uint32_t)v);
	ox_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ChaCha20-Poly1305 nonce of Noise and of DATA: 32 zero bits, counter LE. */
static inline void
ox_nonce(uint8_t nonce[12], uint64_t counter)
{
	memset(nonce, 0, 4);
	ox_put_le64(nonce + 4, counter);
}

static inline void
ox_put_hdr(uint8_t *p, uint8_t type)
{
	p[0] = OX_MAGIC0;
	p[1] = OX_MAGIC1;
	p[2] = OX_WIRE_VERSION;
	p[3] = type;
}

/* A message's first four bytes in a wire's format: OxTunnel's magic,
 * version and type, or WireGuard's type and three zero bytes. */
static inline void
ox_put_wire_hdr(uint8_t *p, uint8_t wire, uint8_t type)
{
	if (wire == OX_WIRE_WIREGUARD) {
		p[0] = type;
		p[1] = p[2] = p[3] = 0;
	} else {
		ox_put_hdr(p, type);
	}
}

#endif /* OX_TUNNEL_PRIVATE_H */
