/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ox_addrpool.h"

#define DEFAULT_MAX_CLIENTS 65536

enum slot_state { SLOT_EMPTY = 0, SLOT_USED, SLOT_DELETED };

struct slot {
	uint8_t key[OX_ADDRPOOL_KEY_LEN];
	uint32_t host;
	uint8_t state;
};

struct ox_addrpool {
	struct ox_addrpool_conf conf;
	uint32_t n_hosts;	/* 2^(32 - v4_prefix) */
	uint32_t count;
	uint32_t cap;		/* slots, a power of two >= 2 * max_clients */
	uint64_t *used;		/* one bit per host number */
	struct slot *slots;
};

void
ox_addrpool_conf_default(struct ox_addrpool_conf *c)
{
	static const uint8_t ula[16] = { 0xfd, 0x6f, 0x78, 0x69, 0x64, 0x7a };

	memset(c, 0, sizeof(*c));
	c->v4_net = 100u << 24 | 64u << 16;
	c->v4_prefix = 10;
	memcpy(c->v6_net, ula, sizeof(ula));
	c->v6_prefix = 64;
	c->max_clients = DEFAULT_MAX_CLIENTS;
}

/* Keys are X25519 public keys, uniform already; mix anyway so that a
 * chosen key cannot pick its neighbours' slots cheaply. */
static uint64_t
key_hash(const uint8_t *key)
{
	uint64_t h, k2;

	memcpy(&h, key, 8);
	memcpy(&k2, key + 8, 8);
	h ^= k2 * 0x9e3779b97f4a7c15ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static bool
bit_get(const uint64_t *b, uint32_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static void
bit_set(uint64_t *b, uint32_t i, bool v)
{
	if (v)
		b[i / 64] |= 1ull << (i % 64);
	else
		b[i / 64] &= ~(1ull << (i % 64));
}

struct ox_addrpool *
ox_addrpool_create(const struct ox_addrpool_conf *c)
{
	struct ox_addrpool *p;
	uint32_t assignable, cap;
	int i;

	if (c->v4_prefix < 8 || c->v4_prefix > 30 || c->v6_prefix < 48 || c->v6_prefix > 120 ||
	    128 - c->v6_prefix < 32 - c->v4_prefix ||
	    (c->v4_net & ((1u << (32 - c->v4_prefix)) - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->conf = *c;
	/* Only the prefix of the IPv6 network counts; the host number goes
	 * below it. */
	for (i = c->v6_prefix / 8; i < 16; i++)
		p->conf.v6_net[i] &= i == c->v6_prefix / 8 ?
			(uint8_t)(0xff00 >> (c->v6_prefix % 8)) : 0;
	p->n_hosts = 1u << (32 - c->v4_prefix);
	assignable = p->n_hosts - 3;	/* network, relay, broadcast */
	if (p->conf.max_clients == 0 || p->conf.max_clients > assignable)
		p->conf.max_clients = assignable;
	for (cap = 16; cap < 2 * p->conf.max_clients; cap <<= 1)
		;
	p->cap = cap;
	p->used = calloc((p->n_hosts + 63) / 64, sizeof(uint64_t));
	p->slots = calloc(cap, sizeof(*p->slots));
	if (p->used == NULL || p->slots == NULL) {
		ox_addrpool_free(p);
		errno = ENOMEM;
		return NULL;
	}
	bit_set(p->used, 0, true);
	bit_set(p->used, 1, true);
	bit_set(p->used, p->n_hosts - 1, true);
	return p;
}

void
ox_addrpool_free(struct ox_addrpool *p)
{
	if (p == NULL)
		return;
	free(p->used);
	if (p->slots != NULL)
		memset(p->slots, 0, sizeof(*p->slots) * p->cap);	/* keys are identities */
	free(p->slots);
	free(p);
}

/* The slot holding key, or NULL; *free_slot gets the first reusable one
 * on the probe path (for an insert). */
static struct slot *
find(struct ox_addrpool *p, const uint8_t *key, struct slot **free_slot)
{
	uint32_t i, n, mask = p->cap - 1;

	if (free_slot != NULL)
		*free_slot = NULL;
	for (i = (uint32_t)key_hash(key) & mask, n = 0; n < p->cap; i = (i + 1) & mask, n++) {
		struct slot *s = &p->slots[i];

		if (s->state == SLOT_EMPTY) {
			if (free_slot != NULL && *free_slot == NULL)
				*free_slot = s;
			return NULL;
		}
		if (s->state == SLOT_DELETED) {
			if (free_slot != NULL && *free_slot == NULL)
				*free_slot = s;
			continue;
		}
		if (memcmp(s->key, key, OX_ADDRPOOL_KEY_LEN) == 0)
			return s;
	}
	return NULL;
}

static void
fill(const struct ox_addrpool *p, uint32_t host, struct ox_tunnel_addr *out)
{
	int i;

	out->host = host;
	out->v4 = p->conf.v4_net + host;
	memcpy(out->v6, p->conf.v6_net, 16);
	/* The host number in the low 32 bits, under the prefix. */
	for (i = 0; i < 4; i++)
		out->v6[15 - i] |= (uint8_t)(host >> (8 * i));
}

static int
insert(struct ox_addrpool *p, const uint8_t *key, uint32_t host, struct slot *s)
{
	if (p->count >= p->conf.max_clients || s == NULL)
		return -ENOSPC;
	memcpy(s->key, key, OX_ADDRPOOL_KEY_LEN);
	s->host = host;
	s->state = SLOT_USED;
	bit_set(p->used, host, true);
	p->count++;
	return 0;
}

int
ox_addrpool_reserve(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN], uint32_t v4)
{
	struct slot *s, *free_slot;
	uint32_t host;

	if (v4 - p->conf.v4_net >= p->n_hosts)
		return -EINVAL;
	host = v4 - p->conf.v4_net;
	if (host < 2 || host == p->n_hosts - 1)
		return -EINVAL;
	s = find(p, key, &free_slot);
	if (s != NULL)
		return s->host == host ? 0 : -EBUSY;
	if (bit_get(p->used, host))
		return -EEXIST;
	return insert(p, key, host, free_slot);
}

int
ox_addrpool_get(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		struct ox_tunnel_addr *out)
{
	uint32_t assignable = p->n_hosts - 3, host, n;
	struct slot *s, *free_slot;
	int ret;

	s = find(p, key, &free_slot);
	if (s != NULL) {
		fill(p, s->host, out);
		return 0;
	}
	if (p->count >= p->conf.max_clients)
		return -ENOSPC;
	/* Start where the key points, so it tends to land on the same address
	 * every time; walk on to the next free one. */
	host = 2 + (uint32_t)(key_hash(key) >> 32) % assignable;
	for (n = 0; n < assignable && bit_get(p->used, host); n++)
		host = host + 1 > p->n_hosts - 2 ? 2 : host + 1;
	if (n == assignable)
		return -ENOSPC;
	ret = insert(p, key, host, free_slot);
	if (ret == 0)
		fill(p, host, out);
	return ret;
}

int
ox_addrpool_release(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN])
{
	struct slot *s = find(p, key, NULL);

	if (s == NULL)
		return -ENOENT;
	bit_set(p->used, s->host, false);
	memset(s->key, 0, sizeof(s->key));
	s->state = SLOT_DELETED;
	p->count--;
	return 0;
}

void
ox_addrpool_gateway(const struct ox_addrpool *p, struct ox_tunnel_addr *out)
{
	fill(p, 1, out);
}

uint32_t
ox_addrpool_count(const struct ox_addrpool *p)
{
	return p->count;
}
