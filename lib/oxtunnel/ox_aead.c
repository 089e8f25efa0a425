/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-packet ChaCha20-Poly1305 (RFC 8439), in place. Two implementations
 * behind one call: OpenSSL's EVP (AVX-512/AVX2 code: faster on long
 * packets) and libsodium's (less fixed cost per call: faster on short
 * ones); OX_AEAD_AUTO picks per packet, see doc/aead-performance.md. Each
 * thread owns one context; the key comes with every call, so contexts are
 * not per keypair.
 */
#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "private/ox_tunnel_private.h"

struct ox_aead {
	size_t sodium_below; /* packets shorter than this go to libsodium */
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

struct ox_aead *
ox_aead_create(enum ox_aead_impl impl)
{
	struct ox_aead *a;

	if (impl != OX_AEAD_OPENSSL && impl != OX_AEAD_SODIUM && impl != OX_AEAD_AUTO) {
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->sodium_below = impl == OX_AEAD_SODIUM ? SIZE_MAX
			  : impl == OX_AEAD_AUTO ? OX_AEAD_AUTO_THRESHOLD
						 : 0;
	if (impl == OX_AEAD_SODIUM)
		return a;

	a->cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (a->cipher == NULL)
		goto fail;
	a->enc = EVP_CIPHER_CTX_new();
	if (a->enc == NULL)
		goto fail;
	a->dec = EVP_CIPHER_CTX_new();
	if (a->dec == NULL)
		goto fail;
	/* Bind the cipher once; each packet then only sets key and IV. */
	if (EVP_CipherInit_ex(a->enc, a->cipher, NULL, NULL, NULL, 1) != 1)
		goto fail;
	if (EVP_CipherInit_ex(a->dec, a->cipher, NULL, NULL, NULL, 0) != 1)
		goto fail;
	return a;
fail:
	ox_aead_free(a);
	errno = EIO;
	return NULL;
}

void
ox_aead_free(struct ox_aead *a)
{
	if (a == NULL)
		return;
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	EVP_CIPHER_free(a->cipher);
	free(a);
}

int
ox_aead_seal_iv(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], const uint8_t nonce[12],
		const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len, uint8_t tag[OX_TAG_LEN])
{
	int outl;

	if (len < a->sodium_below)
		return crypto_aead_chacha20poly1305_ietf_encrypt_detached(
			       buf, tag, NULL, buf, len, ad, adlen, NULL, nonce, key) == 0
			       ? 0
			       : -EIO;

	if (len > INT32_MAX || adlen > INT32_MAX)
		return -EIO;
	if (EVP_CipherInit_ex(a->enc, NULL, NULL, key, nonce, 1) != 1)
		return -EIO;
	if (adlen && EVP_CipherUpdate(a->enc, NULL, &outl, ad, (int)adlen) != 1)
		return -EIO;
	if (len && EVP_CipherUpdate(a->enc, buf, &outl, buf, (int)len) != 1)
		return -EIO;
	if (EVP_CipherFinal_ex(a->enc, buf + len, &outl) != 1)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, OX_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

int
ox_aead_open_iv(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], const uint8_t nonce[12],
		const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
		const uint8_t tag[OX_TAG_LEN])
{
	int outl;

	if (len < a->sodium_below)
		return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			       buf, NULL, buf, len, tag, ad, adlen, nonce, key) == 0
			       ? 0
			       : -EBADMSG;

	if (len > INT32_MAX || adlen > INT32_MAX)
		return -EBADMSG;
	if (EVP_CipherInit_ex(a->dec, NULL, NULL, key, nonce, 0) != 1)
		return -EBADMSG;
	if (adlen && EVP_CipherUpdate(a->dec, NULL, &outl, ad, (int)adlen) != 1)
		return -EBADMSG;
	/* OpenSSL decrypts before the tag is checked: on failure the caller
	 * drops the buffer, whose content is then undefined. */
	if (len && EVP_CipherUpdate(a->dec, buf, &outl, buf, (int)len) != 1)
		return -EBADMSG;
	if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, OX_TAG_LEN,
				(void *)(uintptr_t)tag) != 1)
		return -EBADMSG;
	if (EVP_CipherFinal_ex(a->dec, buf + len, &outl) != 1)
		return -EBADMSG;
	return 0;
}

int
ox_aead_seal(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], uint64_t counter, const uint8_t *ad,
	     size_t adlen, uint8_t *buf, size_t len, uint8_t tag[OX_TAG_LEN])
{
	uint8_t nonce[12];

	ox_nonce(nonce, counter);
	return ox_aead_seal_iv(a, key, nonce, ad, adlen, buf, len, tag);
}

int
ox_aead_open(struct ox_aead *a, const uint8_t key[OX_KEY_LEN], uint64_t counter, const uint8_t *ad,
	     size_t adlen, uint8_t *buf, size_t len, const uint8_t tag[OX_TAG_LEN])
{
	uint8_t nonce[12];

	ox_nonce(nonce, counter);
	return ox_aead_open_iv(a, key, nonce, ad, adlen, buf, len, tag);
}
