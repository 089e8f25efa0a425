/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ox_addrpool.h"

#define DEFAULT_MAX_CLIENTS 65536

enum slot_state { SLOT_EMPTY = 0, SLOT_USED, SLOT_DELETED };

struct slot {
	uint8_t key[OX_ADDRPOOL_KEY_LEN];
	uint32_t host;	/* 0: none yet (a key with only a fixed IPv6) */
	uint8_t v6[16]; /* fixed IPv6, when v6_fixed */
	bool v4_fixed;
	bool v6_fixed;
	uint8_t state;
};

struct ox_addrpool {
	struct ox_addrpool_conf conf;
	uint32_t n_hosts; /* 2^(32 - v4_prefix) */
	uint32_t count;
	uint32_t cap;	 /* slots, a power of two >= 2 * max_clients */
	uint64_t *used;	 /* one bit per host number: its IPv4 is taken */
	uint64_t *used6; /* one bit per host number: prefix + n (IPv6) is taken */
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
		p->conf.v6_net[i] &=
			i == c->v6_prefix / 8 ? (uint8_t)(0xff00 >> (c->v6_prefix % 8)) : 0;
	p->n_hosts = 1u << (32 - c->v4_prefix);
	assignable = p->n_hosts - 3; /* network, relay, broadcast */
	if (p->conf.max_clients == 0 || p->conf.max_clients > assignable)
		p->conf.max_clients = assignable;
	for (cap = 16; cap < 2 * p->conf.max_clients; cap <<= 1)
		;
	p->cap = cap;
	/* Written now, not left to the probes: a page first read is the shared
	 * zero page, and its first write then costs a fault and a TLB flush on
	 * every cpu (a pool for a million keys is 100 MB). */
	p->used = malloc((p->n_hosts + 63) / 64 * sizeof(uint64_t));
	p->used6 = malloc((p->n_hosts + 63) / 64 * sizeof(uint64_t));
	p->slots = mmap(NULL, (size_t)cap * sizeof(*p->slots), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->slots == MAP_FAILED)
		p->slots = NULL;
	else /* 100 MB probed at random: 2 MB pages where the kernel has them */
		(void)madvise(p->slots, (size_t)cap * sizeof(*p->slots), MADV_HUGEPAGE);
	if (p->used == NULL || p->used6 == NULL || p->slots == NULL) {
		ox_addrpool_free(p);
		errno = ENOMEM;
		return NULL;
	}
	memset(p->used, 0, (p->n_hosts + 63) / 64 * sizeof(uint64_t));
	memset(p->used6, 0, (p->n_hosts + 63) / 64 * sizeof(uint64_t));
	memset(p->slots, 0, (size_t)cap * sizeof(*p->slots));
	bit_set(p->used, 0, true);
	bit_set(p->used, 1, true);
	bit_set(p->used, p->n_hosts - 1, true);
	bit_set(p->used6, 0, true);
	bit_set(p->used6, 1, true);
	bit_set(p->used6, p->n_hosts - 1, true);
	return p;
}

void
ox_addrpool_free(struct ox_addrpool *p)
{
	if (p == NULL)
		return;
	free(p->used);
	free(p->used6);
	if (p->slots != NULL) {
		memset(p->slots, 0, sizeof(*p->slots) * p->cap); /* keys are identities */
		munmap(p->slots, sizeof(*p->slots) * p->cap);
	}
	free(p);
}

/* The slot holding key, or NULL; *free_slot gets the first reusable one
 * on the probe path (for an insert). */
static struct slot *
find(const struct ox_addrpool *p, const uint8_t *key, struct slot **free_slot)
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
derive_v6(const struct ox_addrpool *p, uint32_t host, uint8_t v6[16])
{
	int i;

	memcpy(v6, p->conf.v6_net, 16);
	/* The host number in the low 32 bits, under the prefix. */
	for (i = 0; i < 4; i++)
		v6[15 - i] |= (uint8_t)(host >> (8 * i));
}

static void
fill(const struct ox_addrpool *p, const struct slot *s, struct ox_tunnel_addr *out)
{
	out->host = s->host;
	out->v4 = p->conf.v4_net + s->host;
	if (s->v6_fixed)
		memcpy(out->v6, s->v6, 16);
	else
		derive_v6(p, s->host, out->v6);
}

static bool
in_v6_pool(const struct ox_addrpool *p, const uint8_t v6[16])
{
	uint8_t pfx = p->conf.v6_prefix;
	int i;

	for (i = 0; i < pfx / 8; i++)
		if (v6[i] != p->conf.v6_net[i])
			return false;
	return pfx % 8 == 0 ||
	       ((v6[pfx / 8] ^ p->conf.v6_net[pfx / 8]) & (uint8_t)(0xff00 >> (pfx % 8))) == 0;
}

/* The host number whose derived IPv6 this is, or UINT32_MAX if no host's
 * is (bits between the prefix and the low 32, or a number past the pool). */
static uint32_t
v6_host(const struct ox_addrpool *p, const uint8_t v6[16])
{
	uint8_t d[16];
	uint32_t host =
		(uint32_t)v6[12] << 24 | (uint32_t)v6[13] << 16 | (uint32_t)v6[14] << 8 | v6[15];

	if (host >= p->n_hosts)
		return UINT32_MAX;
	derive_v6(p, host, d);
	return memcmp(d, v6, 16) == 0 ? host : UINT32_MAX;
}

/* Mark or clear what a slot holds in the bitmaps. */
static void
mark(struct ox_addrpool *p, const struct slot *s, bool v)
{
	uint32_t m;

	if (s->host != 0)
		bit_set(p->used, s->host, v);
	if (s->v6_fixed) {
		m = v6_host(p, s->v6);
		if (m != UINT32_MAX)
			bit_set(p->used6, m, v);
	} else if (s->host != 0) {
		bit_set(p->used6, s->host, v);
	}
}

static int
insert(struct ox_addrpool *p, const uint8_t *key, uint32_t host, bool v4_fixed, const uint8_t *v6,
       struct slot *s)
{
	if (p->count >= p->conf.max_clients || s == NULL)
		return -ENOSPC;
	memcpy(s->key, key, OX_ADDRPOOL_KEY_LEN);
	s->host = host;
	s->v4_fixed = v4_fixed;
	s->v6_fixed = v6 != NULL;
	if (v6 != NULL)
		memcpy(s->v6, v6, 16);
	else
		memset(s->v6, 0, 16);
	s->state = SLOT_USED;
	mark(p, s, true);
	p->count++;
	return 0;
}

static bool
all_zero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

int
ox_addrpool_reserve(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN], uint32_t v4,
		    const uint8_t *v6)
{
	struct slot *s, *free_slot;
	uint32_t host = 0, m = UINT32_MAX;

	if (v6 != NULL && all_zero(v6, 16))
		v6 = NULL;
	if (v4 == 0 && v6 == NULL)
		return -EINVAL;
	if (v4 != 0) {
		if (v4 - p->conf.v4_net >= p->n_hosts)
			return -EINVAL;
		host = v4 - p->conf.v4_net;
		if (host < 2 || host == p->n_hosts - 1)
			return -EINVAL;
	}
	if (v6 != NULL) {
		if (!in_v6_pool(p, v6))
			return -EINVAL;
		m = v6_host(p, v6);
		/* The prefix's own address and the relay's are never a client's. */
		if (m == 0 || m == 1)
			return -EINVAL;
	}
	s = find(p, key, &free_slot);
	if (s != NULL) {
		if ((v4 == 0 || (s->v4_fixed && s->host == host)) &&
		    (v6 == NULL ? !s->v6_fixed : s->v6_fixed && memcmp(s->v6, v6, 16) == 0) &&
		    (v4 != 0 || !s->v4_fixed))
			return 0;
		return -EBUSY;
	}
	if (host != 0 && bit_get(p->used, host))
		return -EEXIST;
	/* The IPv6 this key will use must be nobody else's either. */
	if (v6 == NULL && bit_get(p->used6, host))
		return -EEXIST;
	if (m != UINT32_MAX && bit_get(p->used6, m))
		return -EEXIST;
	return insert(p, key, host, host != 0, v6, free_slot);
}

int
ox_addrpool_claim(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN], uint32_t v4)
{
	struct slot *s, *free_slot;
	uint32_t host = v4 - p->conf.v4_net;

	if (host >= p->n_hosts || host < 2 || host == p->n_hosts - 1)
		return -EINVAL;
	s = find(p, key, &free_slot);
	if (s != NULL)
		return s->host == host && !s->v4_fixed && !s->v6_fixed ? 0 : -EBUSY;
	if (bit_get(p->used, host) || bit_get(p->used6, host))
		return -EEXIST;
	return insert(p, key, host, false, NULL, free_slot);
}

/* A free host number for a key, searched from where the key points so that
 * it tends to land on the same address every time. 0 if none. */
static uint32_t
pick_host(const struct ox_addrpool *p, const uint8_t *key, bool need_v6)
{
	uint32_t assignable = p->n_hosts - 3, host, n;

	host = 2 + (uint32_t)(key_hash(key) >> 32) % assignable;
	for (n = 0; n < assignable; n++) {
		if (!bit_get(p->used, host) && !(need_v6 && bit_get(p->used6, host)))
			return host;
		host = host + 1 > p->n_hosts - 2 ? 2 : host + 1;
	}
	return 0;
}

int
ox_addrpool_get(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		struct ox_tunnel_addr *out)
{
	struct slot *s, *free_slot;
	uint32_t host;
	int ret;

	s = find(p, key, &free_slot);
	if (s != NULL && s->host != 0) {
		fill(p, s, out);
		return 0;
	}
	if (s == NULL && p->count >= p->conf.max_clients)
		return -ENOSPC;
	host = pick_host(p, key, s == NULL || !s->v6_fixed);
	if (host == 0)
		return -ENOSPC;
	if (s != NULL) {
		/* A fixed IPv6 only: its IPv4 comes from the pool now. */
		s->host = host;
		bit_set(p->used, host, true);
	} else {
		ret = insert(p, key, host, false, NULL, free_slot);
		if (ret != 0)
			return ret;
		s = find(p, key, NULL);
	}
	fill(p, s, out);
	return 0;
}

int
ox_addrpool_find(const struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		 struct ox_tunnel_addr *out)
{
	struct slot *s = find(p, key, NULL);

	if (s == NULL || s->host == 0)
		return -ENOENT;
	fill(p, s, out);
	return 0;
}

int
ox_addrpool_next(const struct ox_addrpool *p, uint32_t *iter, const uint8_t **key,
		 struct ox_tunnel_addr *out, bool *fixed)
{
	while (*iter < p->cap) {
		const struct slot *s = &p->slots[(*iter)++];

		if (s->state != SLOT_USED || s->host == 0)
			continue;
		*key = s->key;
		fill(p, s, out);
		*fixed = s->v4_fixed || s->v6_fixed;
		return 0;
	}
	return -ENOENT;
}

int
ox_addrpool_release(struct ox_addrpool *p, const uint8_t key[OX_ADDRPOOL_KEY_LEN])
{
	struct slot *s = find(p, key, NULL);

	if (s == NULL)
		return -ENOENT;
	mark(p, s, false);
	memset(s->key, 0, sizeof(s->key));
	memset(s->v6, 0, sizeof(s->v6));
	s->host = 0;
	s->v4_fixed = s->v6_fixed = false;
	s->state = SLOT_DELETED;
	p->count--;
	return 0;
}

void
ox_addrpool_gateway(const struct ox_addrpool *p, struct ox_tunnel_addr *out)
{
	out->host = 1;
	out->v4 = p->conf.v4_net + 1;
	derive_v6(p, 1, out->v6);
}

uint32_t
ox_addrpool_count(const struct ox_addrpool *p)
{
	return p->count;
}
