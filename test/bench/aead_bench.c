/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * aead-bench: per-packet ChaCha20-Poly1305 (RFC 8439: 96-bit nonce, 16-byte
 * tag), in place, as the relay does it, in the Debian-packaged libraries
 * the project links: libsodium and OpenSSL 3 EVP (the latter also with the
 * key given per packet, as an API taking the key per call must), and, where
 * the build has it, intel-ipsec-mb through lib/oxtunnel's ox_aead (the job
 * API on the CPU's best path, as the relay runs it).
 * Used to choose one by measurement; the results are kept in
 * doc/aead-performance.md (usertools/oxidize-aead-bench.sh).
 *
 *   aead-bench [--json] [--seconds X] [--rounds N]
 *
 * --seconds: timed seconds per cell (default 0.3), spread over --rounds
 * (default 10) rounds interleaved across all cells.
 *
 * Packet: a 16-byte header authenticated as AAD, the payload (64, 512 or
 * 1400 bytes) encrypted in place, a 16-byte tag after it. Nonce: 4 zero
 * bytes then a 64-bit little-endian counter, one per packet.
 *
 * Before measuring, both backends are checked against RFC 8439 section
 * 2.8.2 and against each other (same output, each opens the other's, a
 * forged tag is refused); any mismatch exits 1.
 *
 * Each cell (backend, operation, size) works on a ring of RING packets
 * that fit in L2: a timed pass seals or opens them all in place, then an
 * untimed copy restores the ring, so that every open is of a genuine
 * packet and seal and open see the same cache state. The figure reported
 * is the median pass (robust to the other work on a shared machine); the
 * mean and the spread of per-round medians are in the JSON output too.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "ox_tunnel_private.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_LEN 16 /* authenticated, not encrypted */
#define MAX_PAYLOAD 1400
#define RING 64 /* packets per timed pass */
/* Header, payload and tag, rounded up to a cache line. */
#define SLOT ((HDR_LEN + MAX_PAYLOAD + TAG_LEN + 63) & ~63)

static const size_t sizes[] = { 64, 512, 1400 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

struct aead;

struct aead_ops {
	const char *name;
	int (*init)(struct aead *a, const uint8_t key[KEY_LEN]);
	void (*fini)(struct aead *a);
	int (*seal)(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
		    const uint8_t nonce[NONCE_LEN], uint8_t tag[TAG_LEN]);
	/* 0 if the tag is good; p then holds the plaintext */
	int (*open)(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
		    const uint8_t nonce[NONCE_LEN], const uint8_t tag[TAG_LEN]);
	/* Optional: a timed pass in bursts instead of one packet per call. */
	int (*burst)(struct aead *a, int seal, uint8_t *work, size_t len, uint64_t ctr);
};

struct aead {
	const struct aead_ops *ops;
	uint8_t key[KEY_LEN];
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	struct ox_aead *ox;
};

/* libsodium */

static int
sodium_be_init(struct aead *a, const uint8_t key[KEY_LEN])
{
	memcpy(a->key, key, KEY_LEN);
	return 0;
}

static void
sodium_be_fini(struct aead *a)
{
	sodium_memzero(a->key, KEY_LEN);
}

static int
sodium_be_seal(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
	       const uint8_t nonce[NONCE_LEN], uint8_t tag[TAG_LEN])
{
	unsigned long long taglen;

	if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(p, tag, &taglen, p, len, ad, adlen,
							       NULL, nonce, a->key) != 0)
		return -1;
	return taglen == TAG_LEN ? 0 : -1;
}

static int
sodium_be_open(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
	       const uint8_t nonce[NONCE_LEN], const uint8_t tag[TAG_LEN])
{
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(p, NULL, p, len, tag, ad, adlen,
								  nonce, a->key) == 0
		       ? 0
		       : -1;
}

/* OpenSSL EVP: contexts made once, only the IV set per packet. */

static void
ossl_be_fini(struct aead *a)
{
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	EVP_CIPHER_free(a->cipher);
	a->enc = NULL;
	a->dec = NULL;
	a->cipher = NULL;
	OPENSSL_cleanse(a->key, KEY_LEN);
}

static int
ossl_ctx_init(EVP_CIPHER_CTX **ctx, EVP_CIPHER *cipher, const uint8_t key[KEY_LEN], int enc)
{
	*ctx = EVP_CIPHER_CTX_new();
	if (*ctx == NULL)
		return -1;
	if (EVP_CipherInit_ex(*ctx, cipher, NULL, NULL, NULL, enc) != 1)
		return -1;
	/* 12 is the default; set it anyway so the nonce length is explicit. */
	if (EVP_CIPHER_CTX_ctrl(*ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) != 1)
		return -1;
	if (EVP_CipherInit_ex(*ctx, NULL, NULL, key, NULL, enc) != 1)
		return -1;
	return 0;
}

static int
ossl_be_init(struct aead *a, const uint8_t key[KEY_LEN])
{
	memcpy(a->key, key, KEY_LEN);
	a->cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (a->cipher == NULL)
		goto fail;
	if (EVP_CIPHER_get_iv_length(a->cipher) != NONCE_LEN ||
	    EVP_CIPHER_get_key_length(a->cipher) != KEY_LEN)
		goto fail;
	if (ossl_ctx_init(&a->enc, a->cipher, key, 1) != 0 ||
	    ossl_ctx_init(&a->dec, a->cipher, key, 0) != 0)
		goto fail;
	return 0;
fail:
	ERR_print_errors_fp(stderr);
	ossl_be_fini(a);
	return -1;
}

/* key is NULL to keep the context's key, else it is set with the IV */
static int
ossl_seal_key(struct aead *a, const uint8_t *key, uint8_t *p, size_t len, const uint8_t *ad,
	      size_t adlen, const uint8_t nonce[NONCE_LEN], uint8_t tag[TAG_LEN])
{
	int outl;

	if (len > INT32_MAX || adlen > INT32_MAX)
		return -1;
	if (EVP_CipherInit_ex(a->enc, NULL, NULL, key, nonce, 1) != 1)
		return -1;
	if (adlen && EVP_EncryptUpdate(a->enc, NULL, &outl, ad, (int)adlen) != 1)
		return -1;
	if (len && (EVP_EncryptUpdate(a->enc, p, &outl, p, (int)len) != 1 || outl != (int)len))
		return -1;
	/* A stream cipher: Final writes nothing, only computes the tag. */
	if (EVP_EncryptFinal_ex(a->enc, p + len, &outl) != 1 || outl != 0)
		return -1;
	if (EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) != 1)
		return -1;
	return 0;
}

static int
ossl_open_key(struct aead *a, const uint8_t *key, uint8_t *p, size_t len, const uint8_t *ad,
	      size_t adlen, const uint8_t nonce[NONCE_LEN], const uint8_t tag[TAG_LEN])
{
	int outl;

	if (len > INT32_MAX || adlen > INT32_MAX)
		return -1;
	if (EVP_CipherInit_ex(a->dec, NULL, NULL, key, nonce, 0) != 1)
		return -1;
	if (adlen && EVP_DecryptUpdate(a->dec, NULL, &outl, ad, (int)adlen) != 1)
		return -1;
	/* OpenSSL decrypts before it checks the tag: on failure the buffer
	 * holds garbage, which a relay drops anyway. */
	if (len && (EVP_DecryptUpdate(a->dec, p, &outl, p, (int)len) != 1 || outl != (int)len))
		return -1;
	/* The tag is copied; the ctrl argument is not const only by API. */
	if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(uintptr_t)tag) !=
	    1)
		return -1;
	if (EVP_DecryptFinal_ex(a->dec, p + len, &outl) != 1 || outl != 0)
		return -1;
	return 0;
}

static int
ossl_be_seal(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
	     const uint8_t nonce[NONCE_LEN], uint8_t tag[TAG_LEN])
{
	return ossl_seal_key(a, NULL, p, len, ad, adlen, nonce, tag);
}

static int
ossl_be_open(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
	     const uint8_t nonce[NONCE_LEN], const uint8_t tag[TAG_LEN])
{
	return ossl_open_key(a, NULL, p, len, ad, adlen, nonce, tag);
}

/*
 * The same EVP path with the key given again with every IV, as an API that
 * takes the key per call (lib/oxtunnel's ox_aead_seal) has to: what the
 * context reuse saves or not.
 */
static int
ossl_rekey_be_seal(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[NONCE_LEN], uint8_t tag[TAG_LEN])
{
	return ossl_seal_key(a, a->key, p, len, ad, adlen, nonce, tag);
}

static int
ossl_rekey_be_open(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[NONCE_LEN], const uint8_t tag[TAG_LEN])
{
	return ossl_open_key(a, a->key, p, len, ad, adlen, nonce, tag);
}

#ifdef OX_HAVE_IPSECMB
/* lib/oxtunnel's ox_aead on intel-ipsec-mb, given the nonce itself (its
 * private _iv calls), so that the RFC's nonce can be checked too. */

static int
imb_be_init(struct aead *a, const uint8_t key[KEY_LEN])
{
	memcpy(a->key, key, KEY_LEN);
	a->ox = ox_aead_create(OX_AEAD_IPSECMB);
	return a->ox != NULL ? 0 : -1;
}

static void
imb_be_fini(struct aead *a)
{
	ox_aead_free(a->ox);
	a->ox = NULL;
	sodium_memzero(a->key, KEY_LEN);
}

static int
imb_be_seal(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
	    const uint8_t nonce[NONCE_LEN], uint8_t tag[TAG_LEN])
{
	return ox_aead_seal_iv(a->ox, a->key, nonce, ad, adlen, p, len, tag) == 0 ? 0 : -1;
}

static int
imb_be_open(struct aead *a, uint8_t *p, size_t len, const uint8_t *ad, size_t adlen,
	    const uint8_t nonce[NONCE_LEN], const uint8_t tag[TAG_LEN])
{
	return ox_aead_open_iv(a->ox, a->key, nonce, ad, adlen, p, len, tag) == 0 ? 0 : -1;
}

#define BURST 32

/* A pass in bursts of BURST, each one ox_aead_*_burst() submission. */
static int
imb_be_burst(struct aead *a, int seal, uint8_t *work, size_t len, uint64_t ctr)
{
	struct ox_aead_op ops[BURST];
	unsigned int i, j;
	int n;

	for (i = 0; i < RING; i += BURST) {
		for (j = 0; j < BURST; j++) {
			uint8_t *pkt = work + (size_t)(i + j) * SLOT;

			ops[j] = (struct ox_aead_op){ .key = a->key,
						      .counter = ctr + i + j,
						      .ad = pkt,
						      .adlen = HDR_LEN,
						      .buf = pkt + HDR_LEN,
						      .len = len,
						      .tag = pkt + HDR_LEN + len };
		}
		n = seal ? ox_aead_seal_burst(a->ox, ops, BURST)
			 : ox_aead_open_burst(a->ox, ops, BURST);
		if (n != BURST)
			return -1;
	}
	return 0;
}
_Static_assert(RING % BURST == 0, "a pass is whole bursts");
#endif

static const struct aead_ops backends[] = {
	{ "libsodium", sodium_be_init, sodium_be_fini, sodium_be_seal, sodium_be_open },
	{ "openssl-evp", ossl_be_init, ossl_be_fini, ossl_be_seal, ossl_be_open },
	{ "openssl-evp-rekey", ossl_be_init, ossl_be_fini, ossl_rekey_be_seal, ossl_rekey_be_open },
#ifdef OX_HAVE_IPSECMB
	{ "intel-ipsec-mb", imb_be_init, imb_be_fini, imb_be_seal, imb_be_open },
	{ "intel-ipsec-mb-burst32", imb_be_init, imb_be_fini, imb_be_seal, imb_be_open,
	  imb_be_burst },
#endif
};
#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

static int
aead_init(struct aead *a, const struct aead_ops *ops, const uint8_t key[KEY_LEN])
{
	memset(a, 0, sizeof(*a));
	a->ops = ops;
	if (ops->init(a, key) != 0) {
		fprintf(stderr, "aead-bench: %s: cannot initialise\n", ops->name);
		return -1;
	}
	return 0;
}

static void
nonce_of(uint8_t nonce[NONCE_LEN], uint64_t counter)
{
	unsigned int i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

/* Deterministic filler: the checks and runs are the same every time. */
static void
fill(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Correctness */

/* RFC 8439 section 2.8.2, "Example and Test Vector for AEAD_CHACHA20_POLY1305". */
static const uint8_t rfc_key[KEY_LEN] = {
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
	0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
	0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
};
static const uint8_t rfc_nonce[NONCE_LEN] = {
	0x07, 0x00, 0x00, 0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
};
static const uint8_t rfc_aad[12] = {
	0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
};
static const char rfc_plain[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only one "
	"tip for the future, sunscreen would be it.";
static const uint8_t rfc_cipher[114] = {
	0xd3, 0x1a, 0x8d, 0x34, 0x64, 0x8e, 0x60, 0xdb, 0x7b, 0x86, 0xaf, 0xbc, 0x53, 0xef, 0x7e,
	0xc2, 0xa4, 0xad, 0xed, 0x51, 0x29, 0x6e, 0x08, 0xfe, 0xa9, 0xe2, 0xb5, 0xa7, 0x36, 0xee,
	0x62, 0xd6, 0x3d, 0xbe, 0xa4, 0x5e, 0x8c, 0xa9, 0x67, 0x12, 0x82, 0xfa, 0xfb, 0x69, 0xda,
	0x92, 0x72, 0x8b, 0x1a, 0x71, 0xde, 0x0a, 0x9e, 0x06, 0x0b, 0x29, 0x05, 0xd6, 0xa5, 0xb6,
	0x7e, 0xcd, 0x3b, 0x36, 0x92, 0xdd, 0xbd, 0x7f, 0x2d, 0x77, 0x8b, 0x8c, 0x98, 0x03, 0xae,
	0xe3, 0x28, 0x09, 0x1b, 0x58, 0xfa, 0xb3, 0x24, 0xe4, 0xfa, 0xd6, 0x75, 0x94, 0x55, 0x85,
	0x80, 0x8b, 0x48, 0x31, 0xd7, 0xbc, 0x3f, 0xf4, 0xde, 0xf0, 0x8e, 0x4b, 0x7a, 0x9d, 0xe5,
	0x76, 0xd2, 0x65, 0x86, 0xce, 0xc6, 0x4b, 0x61, 0x16,
};
static const uint8_t rfc_tag[TAG_LEN] = {
	0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a,
	0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60, 0x06, 0x91,
};

static int
check_rfc8439(const struct aead_ops *ops)
{
	uint8_t buf[sizeof(rfc_cipher)], tag[TAG_LEN];
	struct aead a;
	int bad = 0;

	if (sizeof(rfc_plain) - 1 != sizeof(rfc_cipher)) {
		fprintf(stderr, "aead-bench: RFC 8439 vector mistranscribed\n");
		return -1;
	}
	if (aead_init(&a, ops, rfc_key) != 0)
		return -1;
	memcpy(buf, rfc_plain, sizeof(buf));
	if (ops->seal(&a, buf, sizeof(buf), rfc_aad, sizeof(rfc_aad), rfc_nonce, tag) != 0 ||
	    memcmp(buf, rfc_cipher, sizeof(buf)) != 0 || memcmp(tag, rfc_tag, TAG_LEN) != 0) {
		fprintf(stderr, "aead-bench: %s: RFC 8439 2.8.2 seal mismatch\n", ops->name);
		bad = 1;
	}
	memcpy(buf, rfc_cipher, sizeof(buf));
	if (ops->open(&a, buf, sizeof(buf), rfc_aad, sizeof(rfc_aad), rfc_nonce, rfc_tag) != 0 ||
	    memcmp(buf, rfc_plain, sizeof(buf)) != 0) {
		fprintf(stderr, "aead-bench: %s: RFC 8439 2.8.2 open mismatch\n", ops->name);
		bad = 1;
	}
	ops->fini(&a);
	return bad ? -1 : 0;
}

/*
 * Backend x against reference r (libsodium) on one context each, many
 * packets in a row as in use: same bytes out, each opens the other's,
 * a flipped tag bit or AAD bit is refused, and the context still works
 * after a refusal.
 */
static int
check_cross(const struct aead_ops *r_ops, const struct aead_ops *x_ops)
{
	static const size_t lens[] = { 0,   1,	 15,  16,  63,	64,   65,   127,  128,
				       255, 256, 511, 512, 513, 1023, 1024, 1399, 1400 };
	uint8_t key[KEY_LEN], hdr[HDR_LEN], orig[MAX_PAYLOAD], ct[MAX_PAYLOAD];
	uint8_t p1[MAX_PAYLOAD], p2[MAX_PAYLOAD], t1[TAG_LEN], t2[TAG_LEN];
	uint8_t nonce[NONCE_LEN];
	struct aead r, x;
	unsigned int i;
	int bad = 0;

	fill(key, sizeof(key), 1);
	if (aead_init(&r, r_ops, key) != 0)
		return -1;
	if (aead_init(&x, x_ops, key) != 0) {
		r_ops->fini(&r);
		return -1;
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]) && !bad; i++) {
		size_t n = lens[i];
		/* counters that exercise every byte of the nonce */
		uint64_t ctr = (uint64_t)i * 0x0101010101010101ull + i;

		nonce_of(nonce, ctr);
		fill(hdr, sizeof(hdr), 100 + i);
		fill(orig, n, 200 + i);
		memcpy(p1, orig, n);
		memcpy(p2, orig, n);
		if (r_ops->seal(&r, p1, n, hdr, HDR_LEN, nonce, t1) != 0 ||
		    x_ops->seal(&x, p2, n, hdr, HDR_LEN, nonce, t2) != 0) {
			fprintf(stderr, "aead-bench: seal failed at %zu bytes\n", n);
			bad = 1;
			break;
		}
		if (memcmp(p1, p2, n) != 0 || memcmp(t1, t2, TAG_LEN) != 0) {
			fprintf(stderr, "aead-bench: %s and %s differ at %zu bytes\n", r_ops->name,
				x_ops->name, n);
			bad = 1;
			break;
		}
		/* each opens the other's output */
		if (x_ops->open(&x, p1, n, hdr, HDR_LEN, nonce, t1) != 0 ||
		    memcmp(p1, orig, n) != 0 ||
		    r_ops->open(&r, p2, n, hdr, HDR_LEN, nonce, t2) != 0 ||
		    memcmp(p2, orig, n) != 0) {
			fprintf(stderr, "aead-bench: cross open failed at %zu bytes\n", n);
			bad = 1;
			break;
		}
		/*
		 * Forgeries: a tag bit, then an AAD bit. Each attempt starts
		 * from a copy: OpenSSL leaves garbage in a refused buffer and
		 * libsodium zeroes it.
		 */
		memcpy(ct, orig, n);
		if (x_ops->seal(&x, ct, n, hdr, HDR_LEN, nonce, t1) != 0) {
			bad = 1;
			break;
		}
		t1[i % TAG_LEN] ^= 0x01;
		memcpy(p1, ct, n);
		memcpy(p2, ct, n);
		if (x_ops->open(&x, p1, n, hdr, HDR_LEN, nonce, t1) == 0 ||
		    r_ops->open(&r, p2, n, hdr, HDR_LEN, nonce, t1) == 0) {
			fprintf(stderr, "aead-bench: forged tag accepted at %zu bytes\n", n);
			bad = 1;
			break;
		}
		t1[i % TAG_LEN] ^= 0x01;
		hdr[i % HDR_LEN] ^= 0x80;
		memcpy(p1, ct, n);
		memcpy(p2, ct, n);
		if (x_ops->open(&x, p1, n, hdr, HDR_LEN, nonce, t1) == 0 ||
		    r_ops->open(&r, p2, n, hdr, HDR_LEN, nonce, t1) == 0) {
			fprintf(stderr, "aead-bench: forged AAD accepted at %zu bytes\n", n);
			bad = 1;
			break;
		}
		hdr[i % HDR_LEN] ^= 0x80;
		/* and the context is usable after a refusal */
		memcpy(p1, ct, n);
		if (x_ops->open(&x, p1, n, hdr, HDR_LEN, nonce, t1) != 0 ||
		    memcmp(p1, orig, n) != 0) {
			fprintf(stderr, "aead-bench: %s unusable after a refusal (%zu bytes)\n",
				x_ops->name, n);
			bad = 1;
			break;
		}
	}
	r_ops->fini(&r);
	x_ops->fini(&x);
	return bad ? -1 : 0;
}

/* Measurement */

struct cell {
	const struct aead_ops *ops;
	int seal;
	size_t bytes;
	uint64_t *pass_ns; /* every timed pass, all rounds */
	uint64_t *pass_ticks;
	size_t n, cap;
	uint64_t total_ns;
	uint64_t ctr;	  /* next seal counter */
	double round_min; /* lowest and highest per-round median, ns/packet */
	double round_max;
	/* results */
	double ns; /* median pass, per packet */
	double ns_mean;
	double cycles; /* median pass, TSC ticks per packet */
	uint64_t packets;
};

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC via the vDSO cannot fail with a valid clock id */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
ticks(void)
{
#if HAVE_TSC
	return __rdtsc();
#else
	return 0;
#endif
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v. */
static double
median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + v[n / 2]) / 2;
}

struct ring {
	uint8_t *work;	   /* RING slots, sealed or opened in place */
	uint8_t *pristine; /* what a pass starts from */
	uint64_t *scratch; /* for one round's median */
	size_t scratch_cap;
};

/* One timed pass over the ring; ctr is the first packet's counter. */
static int
pass(struct aead *a, int seal, uint8_t *work, size_t len, uint64_t ctr)
{
	uint8_t nonce[NONCE_LEN];
	unsigned int i;

	if (a->ops->burst != NULL)
		return a->ops->burst(a, seal, work, len, ctr);
	for (i = 0; i < RING; i++) {
		uint8_t *pkt = work + (size_t)i * SLOT;
		int rc;

		nonce_of(nonce, ctr + i);
		if (seal)
			rc = a->ops->seal(a, pkt + HDR_LEN, len, pkt, HDR_LEN, nonce,
					  pkt + HDR_LEN + len);
		else
			rc = a->ops->open(a, pkt + HDR_LEN, len, pkt, HDR_LEN, nonce,
					  pkt + HDR_LEN + len);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int
grow(uint64_t **v, size_t cap)
{
	uint64_t *p = realloc(*v, cap * sizeof(*p));

	if (p == NULL)
		return -1;
	*v = p;
	return 0;
}

/*
 * One round of a cell: about `seconds` of timed passes, after a warm-up.
 * Rounds of all cells are interleaved so that other work on the machine
 * falls on every cell alike rather than on whichever ran at the time.
 */
static int
measure_round(struct cell *c, double seconds, struct ring *ring)
{
	uint64_t total = 0, warm_end, budget;
	uint8_t key[KEY_LEN], nonce[NONCE_LEN];
	size_t first = c->n, len = c->bytes;
	struct aead a;
	unsigned int i;
	double med;
	int rc = -1;

	fill(key, sizeof(key), 7);
	if (aead_init(&a, c->ops, key) != 0)
		return -1;

	/* The pristine ring: plaintexts to seal, or sealed packets to open
	 * (counters 0..RING-1, which the open passes reuse). */
	for (i = 0; i < RING; i++) {
		uint8_t *pkt = ring->pristine + (size_t)i * SLOT;

		fill(pkt, HDR_LEN + len, 1000 + i);
		if (!c->seal) {
			nonce_of(nonce, i);
			if (c->ops->seal(&a, pkt + HDR_LEN, len, pkt, HDR_LEN, nonce,
					 pkt + HDR_LEN + len) != 0)
				goto fail;
		}
	}

	/* Warm up caches, branch predictors and the clock. */
	warm_end = now_ns() + (uint64_t)(seconds * 0.1e9) + 5000000u;
	while (now_ns() < warm_end) {
		memcpy(ring->work, ring->pristine, (size_t)RING * SLOT);
		if (pass(&a, c->seal, ring->work, len, c->seal ? c->ctr : 0) != 0)
			goto fail;
		if (c->seal)
			c->ctr += RING;
	}

	budget = (uint64_t)(seconds * 1e9);
	while (total < budget) {
		uint64_t t0, t1, k0, k1;

		if (c->n == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 4096;

			if (grow(&c->pass_ns, ncap) != 0 || grow(&c->pass_ticks, ncap) != 0)
				goto out;
			c->cap = ncap;
		}
		memcpy(ring->work, ring->pristine, (size_t)RING * SLOT);
		t0 = now_ns();
		k0 = ticks();
		if (pass(&a, c->seal, ring->work, len, c->seal ? c->ctr : 0) != 0)
			goto fail;
		k1 = ticks();
		t1 = now_ns();
		if (c->seal)
			c->ctr += RING;
		c->pass_ns[c->n] = t1 - t0;
		c->pass_ticks[c->n] = k1 - k0;
		c->n++;
		total += t1 - t0;
	}
	c->total_ns += total;

	/* This round's median, to show how much rounds differ. */
	if (ring->scratch_cap < c->n - first) {
		if (grow(&ring->scratch, c->cap) != 0)
			goto out;
		ring->scratch_cap = c->cap;
	}
	memcpy(ring->scratch, c->pass_ns + first, (c->n - first) * sizeof(uint64_t));
	med = median(ring->scratch, c->n - first) / RING;
	if (first == 0 || med < c->round_min)
		c->round_min = med;
	if (first == 0 || med > c->round_max)
		c->round_max = med;
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "aead-bench: %s %s failed during the run (%zu bytes)\n", c->ops->name,
		c->seal ? "seal" : "open", len);
out:
	c->ops->fini(&a);
	return rc;
}

static void
cell_finish(struct cell *c)
{
	c->packets = (uint64_t)c->n * RING;
	c->ns_mean = (double)c->total_ns / (double)c->packets;
	c->ns = median(c->pass_ns, c->n) / RING;
	c->cycles = HAVE_TSC ? median(c->pass_ticks, c->n) / RING : 0;
}

static double
gbit_s(const struct cell *c)
{
	return (double)c->bytes * 8 / c->ns;
}

static void
print_table(const struct cell *cells, size_t n, double seconds, unsigned int rounds)
{
	size_t i;

	printf("ChaCha20-Poly1305 (RFC 8439), in place, %d-byte AAD, %.2f s per cell "
	       "in %u interleaved rounds\n",
	       HDR_LEN, seconds, rounds);
	printf("libsodium %s; %s\n", sodium_version_string(), OpenSSL_version(OPENSSL_VERSION));
	printf("correctness: RFC 8439 2.8.2 and cross-checks passed\n");
	printf("ns%s: median of passes of %d packets; rounds: lowest and highest "
	       "round median\n\n",
	       HAVE_TSC ? " and cycles (TSC ticks)" : "", RING);
	printf("%-18s %-4s %6s %9s %9s %15s", "backend", "op", "bytes", "ns/pkt", "mean ns",
	       "rounds ns");
	if (HAVE_TSC)
		printf(" %10s", "cycles/pkt");
	printf(" %8s %8s\n", "Gbit/s", "Mpps");
	for (i = 0; i < n; i++) {
		const struct cell *c = &cells[i];

		printf("%-18s %-4s %6zu %9.1f %9.1f %7.1f-%-7.1f", c->ops->name,
		       c->seal ? "seal" : "open", c->bytes, c->ns, c->ns_mean, c->round_min,
		       c->round_max);
		if (HAVE_TSC)
			printf(" %10.0f", c->cycles);
		printf(" %8.2f %8.2f\n", gbit_s(c), 1e3 / c->ns);
	}
}

/* Only library version strings come here: dropping quotes, backslashes
 * and control characters is escaping enough. */
static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++)
		if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
			putchar(*s);
	putchar('"');
}

static void
print_json(const struct cell *cells, size_t n, double seconds, unsigned int rounds)
{
	size_t i;

	printf("{\"tool\": \"aead-bench\", \"seconds_per_cell\": %g, \"rounds\": %u, ", seconds,
	       rounds);
	printf("\"aad_bytes\": %d, \"ring\": %d, \"estimator\": \"median pass\", ", HDR_LEN, RING);
	printf("\"libsodium\": ");
	json_str(sodium_version_string());
	printf(", \"openssl\": ");
	json_str(OpenSSL_version(OPENSSL_VERSION));
#ifdef OX_HAVE_IPSECMB
	{
		struct ox_aead *x = ox_aead_create(OX_AEAD_IPSECMB);

		if (x != NULL) {
			printf(", \"ipsec_mb\": ");
			json_str(ox_aead_name(x));
			ox_aead_free(x);
		}
	}
#endif
	printf(", \"tsc\": %s, \"verified\": true, \"results\": [\n", HAVE_TSC ? "true" : "false");
	for (i = 0; i < n; i++) {
		const struct cell *c = &cells[i];

		printf("  {\"backend\": \"%s\", \"op\": \"%s\", \"bytes\": %zu, "
		       "\"ns_per_packet\": %.2f, \"ns_per_packet_mean\": %.2f, "
		       "\"round_median_min\": %.2f, \"round_median_max\": %.2f, ",
		       c->ops->name, c->seal ? "seal" : "open", c->bytes, c->ns, c->ns_mean,
		       c->round_min, c->round_max);
		if (HAVE_TSC)
			printf("\"cycles_per_packet\": %.1f, ", c->cycles);
		printf("\"gbit_s\": %.3f, \"packets\": %llu}%s\n", gbit_s(c),
		       (unsigned long long)c->packets, i + 1 < n ? "," : "");
	}
	printf("]}\n");
}

static void
usage(void)
{
	fprintf(stderr, "usage: aead-bench [--json] [--seconds X] [--rounds N]\n");
}

static int
parse_double(const char *arg, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	return errno != 0 || end == arg || *end != '\0' || !(*out >= lo && *out <= hi) ? -1 : 0;
}

int
main(int argc, char **argv)
{
	struct cell cells[N_BACKENDS * 2 * N_SIZES];
	struct ring ring = { NULL, NULL, NULL, 0 };
	double seconds = 0.3, r = 10;
	unsigned int rounds, round;
	size_t n = 0, b, s, k;
	int json = 0, i, op, rc = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			if (parse_double(argv[++i], 1e-3, 600, &seconds) != 0) {
				usage();
				return 2;
			}
		} else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			if (parse_double(argv[++i], 1, 1000, &r) != 0 || r != (unsigned int)r) {
				usage();
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	rounds = (unsigned int)r;
	/* Without it libsodium keeps its portable code, not AVX2. */
	if (sodium_init() < 0) {
		fprintf(stderr, "aead-bench: sodium_init failed\n");
		return 1;
	}

	for (b = 0; b < N_BACKENDS; b++)
		if (check_rfc8439(&backends[b]) != 0)
			return 1;
	for (b = 1; b < N_BACKENDS; b++)
		if (check_cross(&backends[0], &backends[b]) != 0)
			return 1;

	memset(cells, 0, sizeof(cells));
	for (s = 0; s < N_SIZES; s++)
		for (b = 0; b < N_BACKENDS; b++)
			for (op = 1; op >= 0; op--) {
				cells[n].ops = &backends[b];
				cells[n].seal = op;
				cells[n].bytes = sizes[s];
				n++;
			}

	ring.work = aligned_alloc(64, (size_t)RING * SLOT);
	ring.pristine = aligned_alloc(64, (size_t)RING * SLOT);
	if (ring.work == NULL || ring.pristine == NULL) {
		perror("aead-bench: aligned_alloc");
		goto out;
	}
	/* Every other round backwards, so that no cell always follows another. */
	for (round = 0; round < rounds; round++)
		for (k = 0; k < n; k++)
			if (measure_round(&cells[round % 2 ? n - 1 - k : k], seconds / rounds,
					  &ring) != 0)
				goto out;
	for (k = 0; k < n; k++)
		cell_finish(&cells[k]);

	if (json)
		print_json(cells, n, seconds, rounds);
	else
		print_table(cells, n, seconds, rounds);
	rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
	for (k = 0; k < n; k++) {
		free(cells[k].pass_ns);
		free(cells[k].pass_ticks);
	}
	free(ring.work);
	free(ring.pristine);
	free(ring.scratch);
	return rc;
}
