/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Noise IK as the Noise Protocol Framework (revision 34) defines it:
 * SymmetricState, HKDF over the suite's HMAC, and the two IK messages, with
 * the psk2 modifier (section 9) where the suite asks for it. Two suites:
 *  - OxTunnel v2: Noise_IK_25519_ChaChaPoly_SHA256; checked against
 *    published vectors in test/oxtunnel;
 *  - WireGuard: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s.
 * The hashes come from OpenSSL 3, HMAC made over them here; X25519 and
 * ChaCha20-Poly1305 from libsodium for both (hs-bench, dh-bench).
 */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "private/ox_tunnel_private.h"

/* ------------------------------------------------------ the hash functions */

/*
 * SHA-256 (OxTunnel) and BLAKE2s-256 (WireGuard) from OpenSSL 3, which has
 * both, SHA-256 with the CPU's SHA extensions where it has them; libsodium
 * has SHA-256 only in portable C and no BLAKE2s. The algorithms are fetched
 * once (a fetch searches the provider store); each thread makes its
 * contexts on first use and reuses them (OpenSSL's per-call allocation and
 * parameters cost more than hashing a handshake's short inputs), freed
 * when the thread exits.
 */
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md, *b2s_md;
static EVP_MAC *b2s_keyed_mac;
static pthread_key_t hash_key;
static bool hash_key_ok;

struct hash_tls {
	EVP_MD_CTX *md;
	EVP_MAC_CTX *mac;
};

static void
hash_tls_free(void *p)
{
	struct hash_tls *t = p;

	EVP_MD_CTX_free(t->md);
	EVP_MAC_CTX_free(t->mac);
	free(t);
}

static void
hash_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	b2s_md = EVP_MD_fetch(NULL, "BLAKE2S-256", NULL);
	b2s_keyed_mac = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
	hash_key_ok = pthread_key_create(&hash_key, hash_tls_free) == 0;
}

static struct hash_tls *
hash_tls(void)
{
	struct hash_tls *t;

	pthread_once(&hash_once, hash_fetch);
	if (!hash_key_ok || sha256_md == NULL || b2s_md == NULL || b2s_keyed_mac == NULL)
		return NULL;
	t = pthread_getspecific(hash_key);
	if (t != NULL)
		return t;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->md = EVP_MD_CTX_new();
	t->mac = EVP_MAC_CTX_new(b2s_keyed_mac);
	if (t->md == NULL || t->mac == NULL || pthread_setspecific(hash_key, t) != 0) {
		hash_tls_free(t);
		return NULL;
	}
	return t;
}

/* The 32-byte digest of a || b || c; all 0xff if OpenSSL fails (no key or
 * MAC made from it then matches anything). */
static void
digest(bool b2s, uint8_t out[OX_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
       size_t blen, const uint8_t *c, size_t clen)
{
	struct hash_tls *t = hash_tls();
	unsigned int n = 0;

	if (t == NULL || EVP_DigestInit_ex2(t->md, b2s ? b2s_md : sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(t->md, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(t->md, b, blen) != 1) ||
	    (clen && EVP_DigestUpdate(t->md, c, clen) != 1) ||
	    EVP_DigestFinal_ex(t->md, out, &n) != 1 || n != OX_HASH_LEN)
		memset(out, 0xff, OX_HASH_LEN);
}

#define HASH_BLOCK 64 /* SHA-256's and BLAKE2s's */

/* HMAC (RFC 2104) over the digest: two hashes of the padded key. */
static void
hmac(bool b2s, uint8_t out[OX_HASH_LEN], const uint8_t *key, size_t keylen, const uint8_t *a,
     size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t k[HASH_BLOCK] = { 0 }, inner[OX_HASH_LEN];
	unsigned int i;

	if (keylen > HASH_BLOCK)
		digest(b2s, k, key, keylen, NULL, 0, NULL, 0);
	else
		memcpy(k, key, keylen);
	for (i = 0; i < HASH_BLOCK; i++)
		k[i] ^= 0x36;
	digest(b2s, inner, k, HASH_BLOCK, a, alen, b, blen);
	for (i = 0; i < HASH_BLOCK; i++)
		k[i] ^= 0x36 ^ 0x5c;
	digest(b2s, out, k, HASH_BLOCK, inner, OX_HASH_LEN, NULL, 0);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(inner, sizeof(inner));
}

/* ------------------------------------------------------------- SHA-256 */

static void
sha256_hash(uint8_t out[OX_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	digest(false, out, a, alen, b, blen, NULL, 0);
}

static void
sha256_hmac(uint8_t out[OX_HASH_LEN], const uint8_t *key, size_t keylen, const uint8_t *a,
	    size_t alen, const uint8_t *b, size_t blen)
{
	hmac(false, out, key, keylen, a, alen, b, blen);
}

const struct ox_noise_suite ox_noise_oxtunnel = {
	.name = "Noise_IK_25519_ChaChaPoly_SHA256",
	.psk2 = false,
	.hash = sha256_hash,
	.hmac = sha256_hmac,
};

/* ------------------------------------------------------------- BLAKE2s */

static void
b2s_hash(uint8_t out[OX_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	digest(true, out, a, alen, b, blen, NULL, 0);
}

static void
b2s_hmac(uint8_t out[OX_HASH_LEN], const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
	 const uint8_t *b, size_t blen)
{
	hmac(true, out, key, keylen, a, alen, b, blen);
}

void
ox_wg_mac(uint8_t out[OX_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *in, size_t len)
{
	size_t size = OX_MAC_LEN, n = 0;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};
	struct hash_tls *t = hash_tls();

	if (t == NULL || EVP_MAC_init(t->mac, key, keylen, params) != 1 ||
	    EVP_MAC_update(t->mac, in, len) != 1 ||
	    EVP_MAC_final(t->mac, out, &n, OX_MAC_LEN) != 1 || n != OX_MAC_LEN)
		memset(out, 0xff, OX_MAC_LEN);
}

void
ox_wg_label_key(uint8_t out[OX_KEY_LEN], const char label[8], const uint8_t pub[OX_KEY_LEN])
{
	b2s_hash(out, (const uint8_t *)label, 8, pub, OX_KEY_LEN);
}

const struct ox_noise_suite ox_noise_wireguard = {
	.name = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
	.psk2 = true,
	.hash = b2s_hash,
	.hmac = b2s_hmac,
};

/* ---------------------------------------------------------- HKDF, state */

/* HKDF(ck, ikm) with three outputs; o3 may be NULL (two outputs). */
static void
hkdf(const struct ox_noise_suite *su, const uint8_t ck[OX_HASH_LEN], const uint8_t *ikm,
     size_t ikmlen, uint8_t o1[OX_HASH_LEN], uint8_t o2[OX_HASH_LEN], uint8_t o3[OX_HASH_LEN])
{
	uint8_t temp[OX_HASH_LEN], t1[OX_HASH_LEN], t2[OX_HASH_LEN];
	const uint8_t one = 1, two = 2, three = 3;

	su->hmac(temp, ck, OX_HASH_LEN, ikm, ikmlen, NULL, 0);
	su->hmac(t1, temp, OX_HASH_LEN, &one, 1, NULL, 0);
	su->hmac(t2, temp, OX_HASH_LEN, t1, OX_HASH_LEN, &two, 1);
	if (o3 != NULL)
		su->hmac(o3, temp, OX_HASH_LEN, t2, OX_HASH_LEN, &three, 1);
	memcpy(o1, t1, OX_HASH_LEN);
	memcpy(o2, t2, OX_HASH_LEN);
	sodium_memzero(temp, sizeof(temp));
	sodium_memzero(t1, sizeof(t1));
	sodium_memzero(t2, sizeof(t2));
}

void
ox_noise_init(struct ox_noise *ns, const struct ox_noise_suite *suite, const uint8_t *prologue,
	      size_t plen)
{
	size_t len = strlen(suite->name);

	/* A name of HASHLEN bytes or fewer is h itself, zero-padded; a
	 * longer one is hashed. */
	memset(ns, 0, sizeof(*ns));
	ns->suite = suite;
	if (len <= OX_HASH_LEN)
		memcpy(ns->h, suite->name, len);
	else
		suite->hash(ns->h, (const uint8_t *)suite->name, len, NULL, 0);
	memcpy(ns->ck, ns->h, OX_HASH_LEN);
	ox_noise_mix_hash(ns, prologue, plen);
}

void
ox_noise_resume(struct ox_noise *ns, const struct ox_noise_suite *suite,
		const uint8_t h[OX_HASH_LEN], const uint8_t ck[OX_HASH_LEN])
{
	memset(ns, 0, sizeof(*ns));
	ns->suite = suite;
	memcpy(ns->h, h, OX_HASH_LEN);
	memcpy(ns->ck, ck, OX_HASH_LEN);
}

void
ox_noise_mix_hash(struct ox_noise *ns, const uint8_t *data, size_t len)
{
	uint8_t h[OX_HASH_LEN];

	ns->suite->hash(h, ns->h, OX_HASH_LEN, data, len);
	memcpy(ns->h, h, OX_HASH_LEN);
}

static void
mix_key(struct ox_noise *ns, const uint8_t *ikm, size_t len)
{
	hkdf(ns->suite, ns->ck, ikm, len, ns->ck, ns->k, NULL);
	ns->n = 0;
	ns->has_k = true;
}

void
ox_noise_mix_psk(struct ox_noise *ns, const uint8_t psk[OX_KEY_LEN])
{
	static const uint8_t none[OX_KEY_LEN];
	uint8_t th[OX_HASH_LEN];

	/* No preshared key is the all-zero one (WireGuard). */
	hkdf(ns->suite, ns->ck, psk != NULL ? psk : none, OX_KEY_LEN, ns->ck, th, ns->k);
	ox_noise_mix_hash(ns, th, sizeof(th));
	ns->n = 0;
	ns->has_k = true;
	sodium_memzero(th, sizeof(th));
}

/* The e token: MixHash(e), and in psk handshakes MixKey(e) too. */
static void
mix_e(struct ox_noise *ns, const uint8_t e[OX_KEY_LEN])
{
	ox_noise_mix_hash(ns, e, OX_KEY_LEN);
	if (ns->suite->psk2)
		mix_key(ns, e, OX_KEY_LEN);
}

int
ox_noise_mix_dh(struct ox_noise *ns, const uint8_t priv[OX_KEY_LEN], const uint8_t pub[OX_KEY_LEN])
{
	uint8_t dh[OX_KEY_LEN];
	int ret;

	/* libsodium refuses a low-order point (all-zero result). */
	ret = crypto_scalarmult(dh, priv, pub) == 0 ? ox_noise_mix_dh_result(ns, dh) : -1;
	sodium_memzero(dh, sizeof(dh));
	return ret;
}

int
ox_noise_mix_dh_result(struct ox_noise *ns, const uint8_t dh[OX_KEY_LEN])
{
	/* What libsodium refuses to compute: a low-order point's result. */
	if (sodium_is_zero(dh, OX_KEY_LEN))
		return -1;
	mix_key(ns, dh, OX_KEY_LEN);
	return 0;
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
	hkdf(ns->suite, ns->ck, NULL, 0, k1, k2, NULL);
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
	mix_e(ns, out);
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

#define IK1_FIXED (32 + 32 + OX_TAG_LEN)

int
ox_ik_read1_static(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN], const uint8_t *in,
		   size_t len, uint8_t re[OX_KEY_LEN], uint8_t rs[OX_KEY_LEN])
{
	if (len < IK1_FIXED + OX_TAG_LEN)
		return -1;
	/* e */
	memcpy(re, in, OX_KEY_LEN);
	mix_e(ns, re);
	/* es */
	if (ox_noise_mix_dh(ns, s_priv, re) != 0)
		return -1;
	/* s */
	return decrypt_and_hash(ns, in + 32, 32 + OX_TAG_LEN, rs);
}

int
ox_ik_read1_finish(struct ox_noise *ns, const uint8_t ss[OX_KEY_LEN], const uint8_t *in, size_t len,
		   uint8_t *payload)
{
	if (len < IK1_FIXED + OX_TAG_LEN)
		return -1;
	/* ss */
	if (ox_noise_mix_dh_result(ns, ss) != 0)
		return -1;
	return decrypt_and_hash(ns, in + IK1_FIXED, len - IK1_FIXED, payload);
}

int
ox_ik_read1(struct ox_noise *ns, const uint8_t s_priv[OX_KEY_LEN], const uint8_t *in, size_t len,
	    uint8_t re[OX_KEY_LEN], uint8_t rs[OX_KEY_LEN], uint8_t *payload)
{
	uint8_t ss[OX_KEY_LEN];
	int ret = -1;

	if (ox_ik_read1_static(ns, s_priv, in, len, re, rs) == 0 &&
	    crypto_scalarmult(ss, s_priv, rs) == 0)
		ret = ox_ik_read1_finish(ns, ss, in, len, payload);
	sodium_memzero(ss, sizeof(ss));
	return ret;
}

int
ox_ik_write2(struct ox_noise *ns, const uint8_t e_priv[OX_KEY_LEN], const uint8_t re[OX_KEY_LEN],
	     const uint8_t rs[OX_KEY_LEN], const uint8_t *psk, const uint8_t *payload, size_t plen,
	     uint8_t *out)
{
	uint8_t e_pub[OX_KEY_LEN], ee[OX_KEY_LEN], se[OX_KEY_LEN];
	int ret = -1;

	/* libsodium refuses a low-order point (all-zero result). */
	if (crypto_scalarmult_base(e_pub, e_priv) == 0 && crypto_scalarmult(ee, e_priv, re) == 0 &&
	    crypto_scalarmult(se, e_priv, rs) == 0)
		ret = ox_ik_write2_dh(ns, e_pub, ee, se, psk, payload, plen, out);
	sodium_memzero(ee, sizeof(ee));
	sodium_memzero(se, sizeof(se));
	return ret;
}

int
ox_ik_write2_dh(struct ox_noise *ns, const uint8_t e_pub[OX_KEY_LEN], const uint8_t ee[OX_KEY_LEN],
		const uint8_t se[OX_KEY_LEN], const uint8_t *psk, const uint8_t *payload,
		size_t plen, uint8_t *out)
{
	/* e */
	memcpy(out, e_pub, OX_KEY_LEN);
	mix_e(ns, out);
	/* ee */
	if (ox_noise_mix_dh_result(ns, ee) != 0)
		return -1;
	/* se */
	if (ox_noise_mix_dh_result(ns, se) != 0)
		return -1;
	/* psk */
	if (ns->suite->psk2)
		ox_noise_mix_psk(ns, psk);
	return encrypt_and_hash(ns, payload, plen, out + 32);
}

int
ox_ik_read2(struct ox_noise *ns, const uint8_t e_priv[OX_KEY_LEN], const uint8_t s_priv[OX_KEY_LEN],
	    const uint8_t *psk, const uint8_t *in, size_t len, uint8_t *payload)
{
	if (len < 32 + OX_TAG_LEN)
		return -1;
	/* e */
	mix_e(ns, in);
	/* ee */
	if (ox_noise_mix_dh(ns, e_priv, in) != 0)
		return -1;
	/* se */
	if (ox_noise_mix_dh(ns, s_priv, in) != 0)
		return -1;
	/* psk */
	if (ns->suite->psk2)
		ox_noise_mix_psk(ns, psk);
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
