/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Noise_IK_25519_ChaChaPoly_SHA256 as the Noise Protocol Framework
 * (revision 34) defines it: SymmetricState, HKDF over HMAC-SHA256, and the
 * two IK messages. Checked against published vectors in test/oxtunnel.
 */
#include <sodium.h>

#include "private/ox_tunnel_private.h"

/* HMAC-SHA256 of the concatenation a || b. */
static void
hmac2(uint8_t out[OX_HASH_LEN], const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
      const uint8_t *b, size_t blen)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, a, alen);
	if (blen)
		crypto_auth_hmacsha256_update(&st, b, blen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* HKDF(ck, ikm) with two outputs. */
static void
hkdf2(const uint8_t ck[OX_HASH_LEN], const uint8_t *ikm, size_t ikmlen, uint8_t o1[OX_HASH_LEN],
      uint8_t o2[OX_HASH_LEN])
{
	uint8_t temp[OX_HASH_LEN];
	const uint8_t one = 1, two = 2;
	uint8_t t1[OX_HASH_LEN];

	hmac2(temp, ck, OX_HASH_LEN, ikm, ikmlen, NULL, 0);
	hmac2(t1, temp, OX_HASH_LEN, &one, 1, NULL, 0);
	hmac2(o2, temp, OX_HASH_LEN, t1, OX_HASH_LEN, &two, 1);
	memcpy(o1, t1, OX_HASH_LEN);
	sodium_memzero(temp, sizeof(temp));
	sodium_memzero(t1, sizeof(t1));
}

void
ox_noise_init(struct ox_noise *ns, const uint8_t *prologue, size_t plen)
{
	/* The name is exactly HASHLEN bytes, so h is the name itself. */
	_Static_assert(sizeof(OX_NOISE_NAME) - 1 == OX_HASH_LEN, "protocol name length");
	memcpy(ns->h, OX_NOISE_NAME, OX_HASH_LEN);
	memcpy(ns->ck, ns->h, OX_HASH_LEN);
	sodium_memzero(ns->k, sizeof(ns->k));
	ns->n = 0;
	ns->has_k = false;
	ox_noise_mix_hash(ns, prologue, plen);
}

void
ox_noise_mix_hash(struct ox_noise *ns, const uint8_t *data, size_t len)
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, ns->h, OX_HASH_LEN);
	crypto_hash_sha256_update(&st, data, len);
	crypto_hash_sha256_final(&st, ns->h);
}

static void
mix_key(struct ox_noise *ns, const uint8_t *ikm, size_t len)
{
	hkdf2(ns->ck, ikm, len, ns->ck, ns->k);
	ns->n = 0;
	ns->has_k = true;
}

int
ox_noise_mix_dh(struct ox_noise *ns, const uint8_t priv[OX_KEY_LEN], const uint8_t pub[OX_KEY_LEN])
{
	uint8_t dh[OX_KEY_LEN];
	int ret = 0;

	/* libsodium refuses a low-order point (all-zero result). */
	if (crypto_scalarmult(dh, priv, pub) != 0)
		ret = -1;
	else
		mix_key(ns, dh, sizeof(dh));
	sodium_memzero(dh, sizeof(dh));
	return ret;
}

/* EncryptAndHash: out gets len + 16 bytes (a key is always set here). */
static int
encrypt_and_hash(struct ox_noise *ns, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t nonce[12];
	unsigned long long clen;

	if (!ns->has_k)
		return -1;
	ox_nonce(nonce, ns->n);
	if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, in, len, ns->h, OX_HASH_LEN, NULL,
						      nonce, ns->k) != 0)
		return -1;
	ns->n++;
	ox_noise_mix_hash(ns, out, clen);
	return 0;
}

/* DecryptAndHash of len bytes (tag included) into len - 16 bytes. */
static int
decrypt_and_hash(struct ox_noise *ns, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t nonce[12];
	unsigned long long mlen;

	if (!ns->has_k)
		return -1;
	if (len < OX_TAG_LEN)
		return -1;
	ox_nonce(nonce, ns->n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, in, len, ns->h, OX_HASH_LEN,
						      nonce, ns->k) != 0)
		return -1;
	ns->n++;
	ox_noise_mix_hash(ns, in, len);
	return 0;
}

void
ox_noise_split(const struct ox_noise *ns, uint8_t k1[OX_KEY_LEN], uint8_t k2[OX_KEY_LEN])
{
	hkdf2(ns->ck, NULL, 0, k1, k2);
}

void
ox_noise_wipe(struct ox_noise *ns)
{
	sodium_memzero(ns, sizeof(*ns));
}

int
ox_ik_write1(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN], const uint8_t s_pub[OX_KEY_LEN],
	     const uint8_t e_priv[OX_KEY_LEN], const uint8_t rs[OX_KEY_LEN], const uint8_t *payload,
	     size_t plen, uint8_t *out)
{
	/* e */
	if (crypto_scalarmult_base(out, e_priv) != 0)
		return -1;
	ox_noise_mix_hash(ns, out, OX_KEY_LEN);
	/* es */
	if (ox_noise_mix_dh(ns, e_priv, rs) != 0)
		return -1;
	/* s */
	if (encrypt_and_hash(ns, s_pub, OX_KEY_LEN, out + 32) != 0)
		return -1;
	/* ss */
	if (ox_noise_mix_dh(ns, s_priv, rs) != 0)
		return -1;
	return encrypt_and_hash(ns, payload, plen, out + 32 + 32 + OX_TAG_LEN);
}

int
ox_ik_read1(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN], const uint8_t *in, size_t len,
	    uint8_t re[OX_KEY_LEN], uint8_t rs[OX_KEY_LEN], uint8_t *payload)
{
	const size_t fixed = 32 + 32 + OX_TAG_LEN;

	if (len < fixed + OX_TAG_LEN)
		return -1;
	/* e */
	memcpy(re, in, OX_KEY_LEN);
	ox_noise_mix_hash(ns, re, OX_KEY_LEN);
	/* es */
	if (ox_noise_mix_dh(ns, s_priv, re) != 0)
		return -1;
	/* s */
	if (decrypt_and_hash(ns, in + 32, 32 + OX_TAG_LEN, rs) != 0)
		return -1;
	/* ss */
	if (ox_noise_mix_dh(ns, s_priv, rs) != 0)
		return -1;
	return decrypt_and_hash(ns, in + fixed, len - fixed, payload);
}

int
ox_ik_write2(struct ox_noise *ns, const uint8_t e_priv[OX_KEY_LEN], const uint8_t re[OX_KEY_LEN],
	     const uint8_t rs[OX_KEY_LEN], const uint8_t *payload, size_t plen, uint8_t *out)
{
	/* e */
	if (crypto_scalarmult_base(out, e_priv) != 0)
		return -1;
	ox_noise_mix_hash(ns, out, OX_KEY_LEN);
	/* ee */
	if (ox_noise_mix_dh(ns, e_priv, re) != 0)
		return -1;
	/* se */
	if (ox_noise_mix_dh(ns, e_priv, rs) != 0)
		return -1;
	return encrypt_and_hash(ns, payload, plen, out + 32);
}

int
ox_ik_read2(struct ox_noise *ns, const uint8_t e_priv[OX_KEY_LEN], const uint8_t s_priv[OX_KEY_LEN],
	    const uint8_t *in, size_t len, uint8_t *payload)
{
	if (len < 32 + OX_TAG_LEN)
		return -1;
	/* e */
	ox_noise_mix_hash(ns, in, OX_KEY_LEN);
	/* ee */
	if (ox_noise_mix_dh(ns, e_priv, in) != 0)
		return -1;
	/* se */
	if (ox_noise_mix_dh(ns, s_priv, in) != 0)
		return -1;
	return decrypt_and_hash(ns, in + 32, len - 32, payload);
}

void
ox_mac(uint8_t out[OX_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *in, size_t len)
{
	crypto_generichash_blake2b(out, OX_MAC_LEN, in, len, key, keylen);
}

void
ox_label_key(uint8_t out[OX_KEY_LEN], const char label[8], const uint8_t pub[OX_KEY_LEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, OX_KEY_LEN);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)label, 8);
	crypto_generichash_blake2b_update(&st, pub, OX_KEY_LEN);
	crypto_generichash_blake2b_final(&st, out, OX_KEY_LEN);
}
