/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_AEAD_H
#define OX_AEAD_H
/**
 * @file
 * Per-packet ChaCha20-Poly1305 over OpenSSL, libsodium or
 * intel-ipsec-mb, one packet or a burst. Part of lib/oxtunnel.
 */
#include "ox_wire.h"

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

#endif /* OX_AEAD_H */
