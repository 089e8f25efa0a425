/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Token buckets in a set-associative table. Credit is kept in nanoseconds:
 * one packet costs 1e9 / per_second, a bucket holds burst packets' worth.
 * A bucket idle for its whole size has refilled, so it is free: no sweep
 * is needed to age entries out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ox_ratelimit.h"

#define WAYS 4

struct rl_bucket {
	uint8_t key[16]; /* the source, IPv6 masked to its /64 */
	uint64_t credit_ns;
	uint64_t last_ns;
	bool used;
};

struct ox_ratelimit {
	uint8_t sip_key[crypto_shorthash_KEYBYTES];
	uint64_t cost_ns; /* credit one packet takes */
	uint64_t max_ns;  /* bucket size */
	uint32_t set_mask;
	struct rl_bucket b[]; /* sets of WAYS buckets */
};

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

struct ox_ratelimit *
ox_ratelimit_create(const struct ox_ratelimit_conf *c)
{
	struct ox_ratelimit *rl;

	if (c == NULL || c->per_second == 0 || c->burst == 0 || c->entries < WAYS ||
	    (c->entries & (c->entries - 1)) != 0 || c->entries > (1u << 24) ||
	    c->per_second > 1000000000u) {
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	rl = calloc(1, sizeof(*rl) + (size_t)c->entries * sizeof(rl->b[0]));
	if (rl == NULL)
		return NULL;
	randombytes_buf(rl->sip_key, sizeof(rl->sip_key));
	rl->cost_ns = UINT64_C(1000000000) / c->per_second;
	rl->max_ns = rl->cost_ns * c->burst;
	rl->set_mask = c->entries / WAYS - 1;
	return rl;
}

void
ox_ratelimit_free(struct ox_ratelimit *rl)
{
	free(rl);
}

/* Credit a bucket would hold now. */
static uint64_t
credit_at(const struct ox_ratelimit *rl, const struct rl_bucket *b, uint64_t now_ns)
{
	uint64_t c = b->credit_ns;

	if (now_ns > b->last_ns)
		c += now_ns - b->last_ns;
	return c > rl->max_ns ? rl->max_ns : c;
}

int
ox_ratelimit_take(struct ox_ratelimit *rl, const uint8_t addr[16], uint64_t now_ns)
{
	uint8_t key[16], h[crypto_shorthash_BYTES];
	struct rl_bucket *set, *b = NULL, *spare = NULL;
	uint64_t idx;
	unsigned int i;

	memcpy(key, addr, 16);
	/* A native IPv6 source is its /64; IPv4 (mapped) stays whole. */
	if (memcmp(key, v4_mapped, sizeof(v4_mapped)) != 0)
		memset(key + 8, 0, 8);
	crypto_shorthash(h, key, sizeof(key), rl->sip_key);
	memcpy(&idx, h, sizeof(idx));
	set = &rl->b[(idx & rl->set_mask) * WAYS];
	for (i = 0; i < WAYS; i++) {
		if (set[i].used && memcmp(set[i].key, key, sizeof(key)) == 0) {
			b = &set[i];
			break;
		}
		if (spare == NULL && (!set[i].used || credit_at(rl, &set[i], now_ns) >= rl->max_ns))
			spare = &set[i];
	}
	if (b == NULL) {
		/* A new source gets a bucket only if one is free: a full table
		 * refuses, it does not hand out fresh buckets. */
		if (spare == NULL)
			return OX_RL_TABLE_FULL;
		b = spare;
		memcpy(b->key, key, sizeof(key));
		b->used = true;
		b->credit_ns = rl->max_ns;
		b->last_ns = now_ns;
	}
	b->credit_ns = credit_at(rl, b, now_ns);
	if (now_ns > b->last_ns)
		b->last_ns = now_ns;
	if (b->credit_ns < rl->cost_ns)
		return OX_RL_LIMITED;
	b->credit_ns -= rl->cost_ns;
	return OX_RL_ALLOW;
}

uint32_t
ox_ratelimit_active(const struct ox_ratelimit *rl, uint64_t now_ns)
{
	uint32_t i, n = 0, total = (rl->set_mask + 1) * WAYS;

	for (i = 0; i < total; i++)
		if (rl->b[i].used && credit_at(rl, &rl->b[i], now_ns) < rl->max_ns)
			n++;
	return n;
}
