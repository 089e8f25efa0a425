/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ox_random(): a fast-key-erasure ChaCha20 generator per thread, seeded by
 * libsodium's randombytes_buf() (getrandom()).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "ox_rng.h"

#define RNG_BUF 512	      /* one refill: the next key, then output */
#define RNG_KEY 32	      /* crypto_stream_chacha20_ietf_KEYBYTES */
#define RNG_MAX_REQ 256	      /* larger requests go to the OS */
#define RNG_RESEED_EVERY 4096 /* refills (about 2 MB) between OS bytes */

struct rng {
	uint8_t buf[RNG_BUF]; /* [0, RNG_KEY): the next key; [pos, RNG_BUF): unused output */
	uint32_t pos;
	uint32_t refills;
	bool seeded;
};

static _Thread_local struct rng tl_rng;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child's only thread is the one that forked: without this, it
 * would hand out what its parent hands out next. */
static void
rng_forget(void)
{
	sodium_memzero(&tl_rng, sizeof(tl_rng));
}

static void
rng_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, rng_forget);
}

static void
rng_refill(struct rng *g)
{
	static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
	uint8_t key[RNG_KEY];
	unsigned int i;

	memcpy(key, g->buf, RNG_KEY);
	if (g->refills++ % RNG_RESEED_EVERY == 0) {
		uint8_t fresh[RNG_KEY];

		randombytes_buf(fresh, sizeof(fresh));
		for (i = 0; i < RNG_KEY; i++)
			key[i] ^= fresh[i];
		sodium_memzero(fresh, sizeof(fresh));
	}
	/* A key is used once, so one nonce serves every refill. */
	crypto_stream_chacha20_ietf(g->buf, RNG_BUF, nonce, key);
	sodium_memzero(key, sizeof(key));
	g->pos = RNG_KEY;
}

void
ox_random(void *out, size_t len)
{
	struct rng *g = &tl_rng;

	if (len > RNG_MAX_REQ) {
		randombytes_buf(out, len);
		return;
	}
	if (!g->seeded) {
		(void)pthread_once(&atfork_once, rng_atfork);
		/* The first refill mixes OS bytes into this (zero) key. */
		g->refills = 0;
		memset(g->buf, 0, RNG_KEY);
		rng_refill(g);
		g->seeded = true;
	}
	if (RNG_BUF - g->pos < len)
		rng_refill(g);
	memcpy(out, g->buf + g->pos, len);
	sodium_memzero(g->buf + g->pos, len);
	g->pos += (uint32_t)len;
}
