/* SPDX-License-Identifier: BSD-3-Clause */
/* lib/addrpool: sticky per-key addresses, reservations, exhaustion, churn. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ox_test.h"
#include "ox_addrpool.h"

static void
key_of(uint32_t n, uint8_t key[OX_ADDRPOOL_KEY_LEN])
{
	uint32_t i, x = n * 2654435761u + 12345;

	for (i = 0; i < OX_ADDRPOOL_KEY_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		key[i] = (uint8_t)x;
	}
}

static uint32_t
ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return ntohl(a.s_addr);
}

static void
test_defaults(void)
{
	struct ox_addrpool_conf c;
	struct ox_tunnel_addr gw, a, b;
	struct ox_addrpool *p;
	uint8_t k1[32], k2[32], v6[16];
	char s[64];

	ox_addrpool_conf_default(&c);
	p = ox_addrpool_create(&c);
	EXPECT(p != NULL, "default pool");
	ox_addrpool_gateway(p, &gw);
	EXPECT(gw.v4 == ip4("100.64.0.1"), "gateway 100.64.0.1");
	inet_pton(AF_INET6, "fd6f:7869:647a::1", v6);
	EXPECT(memcmp(gw.v6, v6, 16) == 0, "gateway fd6f:7869:647a::1");
	key_of(1, k1);
	key_of(2, k2);
	EXPECT(ox_addrpool_get(p, k1, &a) == 0, "get");
	EXPECT(ox_addrpool_get(p, k1, &b) == 0 && a.v4 == b.v4 && !memcmp(a.v6, b.v6, 16),
	       "a key keeps its addresses");
	EXPECT((a.v4 & 0xffc00000) == ip4("100.64.0.0") && a.v4 != gw.v4, "inside 100.64.0.0/10");
	inet_ntop(AF_INET6, a.v6, s, sizeof(s));
	EXPECT(memcmp(a.v6, v6, 8) == 0 && a.v6[12] == (a.host >> 24 & 0xff) &&
		       a.v6[15] == (a.host & 0xff),
	       "IPv6 = prefix + host number (%s)", s);
	EXPECT(ox_addrpool_get(p, k2, &b) == 0 && b.v4 != a.v4, "another key, another address");
	EXPECT(ox_addrpool_count(p) == 2, "two keys held");
	/* Released and back: the key's preferred address again. */
	EXPECT(ox_addrpool_release(p, k1) == 0, "release");
	EXPECT(ox_addrpool_release(p, k1) == -ENOENT, "release twice");
	EXPECT(ox_addrpool_get(p, k1, &b) == 0 && b.v4 == a.v4, "reconnect after release: "
								"same address");
	ox_addrpool_free(p);
}

/* A default pool and two keys, seed and seed + 1. */
static struct ox_addrpool *
pool_and_keys(uint32_t seed, uint8_t k1[32], uint8_t k2[32])
{
	struct ox_addrpool_conf c;

	ox_addrpool_conf_default(&c);
	key_of(seed, k1);
	key_of(seed + 1, k2);
	return ox_addrpool_create(&c);
}

static void
test_reserve(void)
{
	struct ox_tunnel_addr a;
	struct ox_addrpool *p;
	uint8_t k1[32], k2[32];

	p = pool_and_keys(10, k1, k2);
	EXPECT(ox_addrpool_reserve(p, k1, ip4("100.64.0.50"), NULL) == 0, "reserve");
	EXPECT(ox_addrpool_reserve(p, k1, ip4("100.64.0.50"), NULL) == 0, "reserve again, same");
	EXPECT(ox_addrpool_get(p, k1, &a) == 0 && a.v4 == ip4("100.64.0.50"), "get reserved");
	EXPECT(ox_addrpool_reserve(p, k2, ip4("100.64.0.50"), NULL) == -EEXIST, "held by another");
	EXPECT(ox_addrpool_reserve(p, k1, ip4("100.64.0.51"), NULL) == -EBUSY, "key has another");
	EXPECT(ox_addrpool_reserve(p, k2, ip4("10.0.0.5"), NULL) == -EINVAL, "outside the pool");
	EXPECT(ox_addrpool_reserve(p, k2, ip4("100.64.0.0"), NULL) == -EINVAL, "network address");
	EXPECT(ox_addrpool_reserve(p, k2, ip4("100.64.0.1"), NULL) == -EINVAL, "relay's address");
	EXPECT(ox_addrpool_reserve(p, k2, ip4("100.127.255.255"), NULL) == -EINVAL, "broadcast");
	EXPECT(ox_addrpool_reserve(p, k2, 0, NULL) == -EINVAL, "nothing fixed");
	ox_addrpool_free(p);
}

static void
ip6(const char *s, uint8_t out[16])
{
	if (inet_pton(AF_INET6, s, out) != 1)
		abort();
}

/* Fixed IPv6 addresses: used instead of the derived one, never given to
 * two keys, nor derived for another key. */
static void
test_reserve_v6(void)
{
	struct ox_addrpool_conf c;
	struct ox_tunnel_addr a, b, g;
	struct ox_addrpool *p;
	uint8_t k1[32], k2[32], k3[32], k4[32], v6[16], w6[16];
	uint32_t i, hits = 0;
	char txt[64];

	ox_addrpool_conf_default(&c);
	p = ox_addrpool_create(&c);
	key_of(20, k1);
	key_of(21, k2);
	key_of(22, k3);
	key_of(23, k4);
	ip6("fd6f:7869:647a::beef", v6);
	EXPECT(ox_addrpool_reserve(p, k1, ip4("100.64.0.60"), v6) == 0, "IPv4 and IPv6 fixed");
	EXPECT(ox_addrpool_get(p, k1, &a) == 0 && a.v4 == ip4("100.64.0.60") &&
		       memcmp(a.v6, v6, 16) == 0,
	       "both as fixed");
	EXPECT(ox_addrpool_reserve(p, k2, 0, v6) == -EEXIST, "the same IPv6 for another key");
	ip6("fd6f:7869:647a::1:2", w6);
	EXPECT(ox_addrpool_reserve(p, k2, 0, w6) == 0, "IPv6 only");
	EXPECT(ox_addrpool_find(p, k2, &b) == -ENOENT, "no IPv4 yet");
	EXPECT(ox_addrpool_get(p, k2, &b) == 0 && b.v4 != 0 && memcmp(b.v6, w6, 16) == 0,
	       "IPv4 from the pool, IPv6 as fixed");
	EXPECT(ox_addrpool_find(p, k2, &g) == 0 && g.v4 == b.v4, "found");
	ip6("2001:db8::5", w6);
	EXPECT(ox_addrpool_reserve(p, k3, 0, w6) == -EINVAL, "IPv6 outside the prefix");
	ip6("fd6f:7869:647a::1", w6);
	EXPECT(ox_addrpool_reserve(p, k3, 0, w6) == -EINVAL, "the relay's IPv6");
	/* A fixed IPv6 of the derived form takes that host's IPv6: the key
	 * that gets host 0x70 by IPv4 would collide. */
	ip6("fd6f:7869:647a::70", w6);
	EXPECT(ox_addrpool_reserve(p, k3, 0, w6) == 0, "derived-form IPv6 reserved");
	EXPECT(ox_addrpool_reserve(p, k4, ip4("100.64.0.112"), NULL) == -EEXIST,
	       "an IPv4 whose derived IPv6 is someone's fixed one refused");
	/* No key ever gets host 0x70 from the pool. */
	for (i = 0; i < 3000; i++) {
		key_of(1000 + i, k4);
		if (ox_addrpool_get(p, k4, &b) == 0 && b.host == 0x70)
			hits++;
	}
	EXPECT(hits == 0, "host 0x70 never handed out with its derived IPv6 taken (%u)", hits);
	/* Released: free for someone else. */
	EXPECT(ox_addrpool_release(p, k1) == 0, "release");
	EXPECT(ox_addrpool_reserve(p, k2, 0, v6) == -EBUSY, "k2 holds another");
	EXPECT(ox_addrpool_reserve(p, k3, ip4("100.64.0.60"), NULL) == -EBUSY, "k3 holds another");
	key_of(30, k1);
	EXPECT(ox_addrpool_reserve(p, k1, ip4("100.64.0.60"), v6) == 0,
	       "both addresses of a released key reserved by another");
	/* Walk. */
	i = 0;
	{
		const uint8_t *k;
		bool fixed;
		uint32_t it = 0, n = 0, nfixed = 0;

		while (ox_addrpool_next(p, &it, &k, &g, &fixed) == 0) {
			n++;
			nfixed += fixed;
		}
		snprintf(txt, sizeof(txt), "%u/%u", n, nfixed);
		EXPECT(n == ox_addrpool_count(p) - 1 && nfixed == 2,
		       "walk: every key with an address once, fixed ones marked (%s)", txt);
	}
	ox_addrpool_free(p);
}

/* A reload carries pool addresses over as pool (not fixed) ones. */
static void
test_claim(void)
{
	struct ox_tunnel_addr a;
	struct ox_addrpool *p;
	uint8_t k1[32], k2[32];

	p = pool_and_keys(40, k1, k2);
	EXPECT(ox_addrpool_reserve(p, k1, ip4("100.64.0.70"), NULL) == 0, "fixed");
	EXPECT(ox_addrpool_claim(p, k2, ip4("100.64.0.70")) == -EEXIST, "claim of a fixed one");
	EXPECT(ox_addrpool_claim(p, k2, ip4("100.64.0.71")) == 0, "claim");
	EXPECT(ox_addrpool_claim(p, k2, ip4("100.64.0.71")) == 0, "claim again");
	EXPECT(ox_addrpool_get(p, k2, &a) == 0 && a.v4 == ip4("100.64.0.71"), "kept");
	EXPECT(ox_addrpool_reserve(p, k2, ip4("100.64.0.71"), NULL) == -EBUSY,
	       "a claimed address is not a fixed one");
	ox_addrpool_free(p);
}

static void
test_exhaustion(void)
{
	struct ox_addrpool_conf c;
	struct ox_tunnel_addr a;
	struct ox_addrpool *p;
	uint8_t k[32];
	uint32_t i, seen = 0;

	ox_addrpool_conf_default(&c);
	c.v4_net = ip4("198.51.100.8");
	c.v4_prefix = 29; /* 8: network, relay, 5 clients, broadcast */
	p = ox_addrpool_create(&c);
	EXPECT(p != NULL, "/29 pool");
	for (i = 0; i < 5; i++) {
		key_of(100 + i, k);
		EXPECT(ox_addrpool_get(p, k, &a) == 0, "client %u of 5", i);
		EXPECT(a.host >= 2 && a.host <= 6, "host %u assignable", a.host);
		EXPECT(!(seen & (1u << a.host)), "host %u given once", a.host);
		seen |= 1u << a.host;
	}
	key_of(200, k);
	EXPECT(ox_addrpool_get(p, k, &a) == -ENOSPC, "sixth client refused");
	key_of(102, k);
	ox_addrpool_release(p, k);
	key_of(200, k);
	EXPECT(ox_addrpool_get(p, k, &a) == 0, "room again after a release");
	ox_addrpool_free(p);

	ox_addrpool_conf_default(&c);
	c.max_clients = 3;
	p = ox_addrpool_create(&c);
	for (i = 0; i < 3; i++) {
		key_of(300 + i, k);
		ox_addrpool_get(p, k, &a);
	}
	key_of(400, k);
	EXPECT(ox_addrpool_get(p, k, &a) == -ENOSPC, "max_clients is a limit");
	ox_addrpool_free(p);
}

static void
test_many_and_churn(void)
{
	struct ox_addrpool_conf c;
	struct ox_tunnel_addr a;
	struct ox_addrpool *p;
	uint64_t *bits;
	uint8_t k[32];
	uint32_t i, round, dup = 0;

	ox_addrpool_conf_default(&c);
	c.max_clients = 200000;
	p = ox_addrpool_create(&c);
	bits = calloc((1u << 22) / 64, sizeof(uint64_t));
	for (i = 0; i < 200000; i++) {
		key_of(i + 1000, k);
		if (ox_addrpool_get(p, k, &a) != 0 || (bits[a.host / 64] >> (a.host % 64) & 1))
			dup++;
		bits[a.host / 64] |= 1ull << (a.host % 64);
	}
	EXPECT(dup == 0 && ox_addrpool_count(p) == 200000, "200000 clients, all distinct (%u)",
	       dup);
	free(bits);
	ox_addrpool_free(p);

	/* Insert and release over and over: deleted slots are reused. */
	ox_addrpool_conf_default(&c);
	c.max_clients = 1000;
	p = ox_addrpool_create(&c);
	for (round = 0; round < 50; round++) {
		for (i = 0; i < 1000; i++) {
			key_of(round * 1000 + i, k);
			EXPECT(ox_addrpool_get(p, k, &a) == 0, "round %u get %u", round, i);
		}
		for (i = 0; i < 1000; i++) {
			key_of(round * 1000 + i, k);
			EXPECT(ox_addrpool_release(p, k) == 0, "round %u release %u", round, i);
		}
	}
	EXPECT(ox_addrpool_count(p) == 0, "empty after churn");
	ox_addrpool_free(p);
}

static void
test_bad_conf(void)
{
	static const struct {
		uint32_t net;
		uint8_t p4, p6;
	} bad[] = {
		{ 0x64400000, 7, 64 },	 /* v4 prefix too short */
		{ 0x64400000, 31, 64 },	 /* too long */
		{ 0x64400001, 10, 64 },	 /* host bits set */
		{ 0x64400000, 10, 47 },	 /* v6 prefix too short */
		{ 0x64400000, 10, 121 }, /* v6 cannot hold 22 host bits */
		{ 0x64000000, 8, 112 },	 /* 24 host bits > 16 */
	};
	struct ox_addrpool_conf c;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ox_addrpool_conf_default(&c);
		c.v4_net = bad[i].net;
		c.v4_prefix = bad[i].p4;
		c.v6_prefix = bad[i].p6;
		errno = 0;
		EXPECT(ox_addrpool_create(&c) == NULL && errno == EINVAL, "bad config %u refused",
		       i);
	}
}

int
main(void)
{
	test_defaults();
	test_reserve();
	test_reserve_v6();
	test_claim();
	test_exhaustion();
	test_many_and_churn();
	test_bad_conf();
	return ox_test_finish("addrpool");
}
