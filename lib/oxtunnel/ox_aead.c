/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-packet ChaCha20-Poly1305 (RFC 8439), in place. Three implementations
 * behind one call: intel-ipsec-mb's job API (AVX-512, AVX2 or SSE code
 * chosen by the library from the CPU: the fastest at every size where it
 * runs), OpenSSL's EVP (faster on long packets) and libsodium's (less fixed
 * cost per call: faster on short ones). OX_AEAD_AUTO takes ipsec-mb when
 * the build has it and the CPU runs one of its SIMD paths, else picks
 * between the other two per packet; see doc/aead-performance.md. Each
 * thread owns one context; the key comes with every call, so contexts are
 * not per keypair.
 */
#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <sodium.h>
#ifdef OX_HAVE_IPSECMB
#include <intel-ipsec-mb.h>
#endif

#include "private/ox_tunnel_private.h"

#define OX_STR_(x) #x
#define OX_STR(x) OX_STR_(x)

struct ox_aead {
	enum ox_aead_impl impl; /* what the context uses: never OX_AEAD_AUTO */
	size_t sodium_below;	/* packets shorter than this go to libsodium */
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	char name[64];
#ifdef OX_HAVE_IPSECMB
	IMB_MGR *mb;
	/* A burst's nonces and computed tags, alive until its jobs are out. */
	uint8_t nonce[OX_AEAD_BURST_MAX][12];
	uint8_t tag[OX_AEAD_BURST_MAX][OX_TAG_LEN];
#endif
};

#ifdef OX_HAVE_IPSECMB
static const char *
imb_arch_name(IMB_ARCH arch)
{
	switch (arch) {
	case IMB_ARCH_SSE:
		return "sse";
	case IMB_ARCH_AVX:
		return "avx";
	case IMB_ARCH_AVX2:
		return "avx2";
	case IMB_ARCH_AVX512:
		return "avx512";
	default:
		return NULL;
	}
}

/* A manager on the CPU's best path; -ENOTSUP where it has none of the SIMD
 * paths (then the caller falls back). */
static int
imb_setup(struct ox_aead *a)
{
	IMB_ARCH arch = IMB_ARCH_NONE;
	const char *name;

	a->mb = alloc_mb_mgr(0);
	if (a->mb == NULL)
		return -ENOMEM;
	init_mb_mgr_auto(a->mb, &arch);
	name = imb_arch_name(arch);
	if (name == NULL || imb_get_errno(a->mb) != 0) {
		free_mb_mgr(a->mb);
		a->mb = NULL;
		return -ENOTSUP;
	}
	snprintf(a->name, sizeof(a->name), "intel-ipsec-mb %s %s", IMB_VERSION_STR, name);
	return 0;
}

/* Fill the next job of the manager. */
static void
imb_job(IMB_MGR *mb, IMB_CIPHER_DIRECTION dir, const uint8_t key[OX_KEY_LEN],
	const uint8_t nonce[12], const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
	uint8_t tag[OX_TAG_LEN], void *user)
{
	IMB_JOB *job = IMB_GET_NEXT_JOB(mb);

	job->cipher_direction = dir;
	job->chain_order = dir == IMB_DIR_ENCRYPT ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
	job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
	job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
	job->enc_keys = key;
	job->dec_keys = key;
	job->key_len_in_bytes = IMB_KEY_256_BYTES;
	job->src = buf;
	job->dst = buf;
	job->cipher_start_src_offset_in_bytes = 0;
	job->msg_len_to_cipher_in_bytes = len;
	job->hash_start_src_offset_in_bytes = 0;
	job->msg_len_to_hash_in_bytes = len;
	job->iv = nonce;
	job->iv_len_in_bytes = 12;
	job->u.CHACHA20_POLY1305.aad = ad;
	job->u.CHACHA20_POLY1305.aad_len_in_bytes = adlen;
	job->auth_tag_output = tag;
	job->auth_tag_output_len_in_bytes = OX_TAG_LEN;
	job->user_data = user;
}

/*
 * One job, run to completion: a multi-buffer path may hold a submitted job
 * back for more lanes, so flush until it comes out. The returned job's
 * status is checked, not assumed.
 */
static int
imb_run(IMB_MGR *mb, IMB_CIPHER_DIRECTION dir, const uint8_t key[OX_KEY_LEN],
	const uint8_t nonce[12], const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
	uint8_t tag[OX_TAG_LEN])
{
	IMB_JOB *done;

	imb_job(mb, dir, key, nonce, ad, adlen, buf, len, tag, buf);
	done = IMB_SUBMIT_JOB(mb);
	while (done == NULL)
		done = IMB_FLUSH_JOB(mb);
	/* One job in flight at a time: what comes out is ours. */
	if (done->user_data != buf || done->status != IMB_STATUS_COMPLETED)
		return -EIO;
	return 0;
}

/* A job out of the manager: its op's status (open: the tag compared). */
static void
imb_done(struct ox_aead *a, const IMB_JOB *job, struct ox_aead_op *ops, bool seal)
{
	struct ox_aead_op *op = job->user_data;
	unsigned int i = (unsigned int)(op - ops);

	if (job->status != IMB_STATUS_COMPLETED)
		op->status = seal ? -EIO : -EBADMSG;
	else if (!seal)
		op->status = sodium_memcmp(a->tag[i], op->tag, OX_TAG_LEN) == 0 ? 0 : -EBADMSG;
	else
		op->status = 0;
}

/* Every op submitted, then the manager flushed: all come out, in order. */
static void
imb_burst(struct ox_aead *a, struct ox_aead_op *ops, unsigned int n, bool seal)
{
	IMB_CIPHER_DIRECTION dir = seal ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
	IMB_JOB *done;
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct ox_aead_op *op = &ops[i];

		ox_nonce(a->nonce[i], op->counter);
		imb_job(a->mb, dir, op->key, a->nonce[i], op->ad, op->adlen, op->buf, op->len,
			seal ? op->tag : a->tag[i], op);
		done = IMB_SUBMIT_JOB(a->mb);
		while (done != NULL) {
			imb_done(a, done, ops, seal);
			done = IMB_GET_COMPLETED_JOB(a->mb);
		}
	}
	while ((done = IMB_FLUSH_JOB(a->mb)) != NULL)
		imb_done(a, done, ops, seal);
}
#endif /* OX_HAVE_IPSECMB */

struct ox_aead *
ox_aead_create(enum ox_aead_impl impl)
{
	struct ox_aead *a;

	int ret;

	if (impl != OX_AEAD_OPENSSL && impl != OX_AEAD_SODIUM && impl != OX_AEAD_AUTO &&
	    impl != OX_AEAD_IPSECMB) {
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
	if (impl == OX_AEAD_IPSECMB || impl == OX_AEAD_AUTO) {
#ifdef OX_HAVE_IPSECMB
		ret = imb_setup(a);
#else
		ret = -ENOTSUP;
#endif
		if (ret == 0) {
			a->impl = OX_AEAD_IPSECMB;
			return a;
		}
		if (impl == OX_AEAD_IPSECMB) {
			free(a);
			errno = -ret;
			return NULL;
		}
	}
	a->impl = impl;
	a->sodium_below = impl == OX_AEAD_SODIUM ? SIZE_MAX
			  : impl == OX_AEAD_AUTO ? OX_AEAD_AUTO_THRESHOLD
						 : 0;
	snprintf(a->name, sizeof(a->name), "%s",
		 impl == OX_AEAD_SODIUM ? "libsodium"
		 : impl == OX_AEAD_AUTO ? "libsodium below " OX_STR(
						  OX_AEAD_AUTO_THRESHOLD) " B, OpenSSL from there"
					: "OpenSSL");
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

const char *
ox_aead_name(const struct ox_aead *a)
{
	return a->name;
}

enum ox_aead_impl
ox_aead_impl_of(const struct ox_aead *a)
{
	return a->impl;
}

void
ox_aead_free(struct ox_aead *a)
{
	if (a == NULL)
		return;
#ifdef OX_HAVE_IPSECMB
	free_mb_mgr(a->mb);
#endif
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

#ifdef OX_HAVE_IPSECMB
	if (a->mb != NULL)
		return imb_run(a->mb, IMB_DIR_ENCRYPT, key, nonce, ad, adlen, buf, len, tag);
#endif
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

#ifdef OX_HAVE_IPSECMB
	if (a->mb != NULL) {
		uint8_t mine[OX_TAG_LEN];

		/* Decrypted before the tag is compared, as with OpenSSL: on
		 * failure the caller drops the buffer. */
		if (imb_run(a->mb, IMB_DIR_DECRYPT, key, nonce, ad, adlen, buf, len, mine) != 0)
			return -EBADMSG;
		return sodium_memcmp(mine, tag, OX_TAG_LEN) == 0 ? 0 : -EBADMSG;
	}
#endif
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

static int
burst(struct ox_aead *a, struct ox_aead_op *ops, unsigned int n, bool seal)
{
	unsigned int i;
	int ok = 0;

	if (n > OX_AEAD_BURST_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		ops[i].status = seal ? -EIO : -EBADMSG;
#ifdef OX_HAVE_IPSECMB
	if (a->mb != NULL)
		imb_burst(a, ops, n, seal);
	else
#endif
		for (i = 0; i < n; i++) {
			struct ox_aead_op *op = &ops[i];

			op->status = seal ? ox_aead_seal(a, op->key, op->counter, op->ad, op->adlen,
							 op->buf, op->len, op->tag)
					  : ox_aead_open(a, op->key, op->counter, op->ad, op->adlen,
							 op->buf, op->len, op->tag);
		}
	for (i = 0; i < n; i++)
		ok += ops[i].status == 0;
	return ok;
}

int
ox_aead_seal_burst(struct ox_aead *a, struct ox_aead_op *ops, unsigned int n)
{
	return burst(a, ops, n, true);
}

int
ox_aead_open_burst(struct ox_aead *a, struct ox_aead_op *ops, unsigned int n)
{
	return burst(a, ops, n, false);
}
