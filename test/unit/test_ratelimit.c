/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/ratelimit: a source's burst and rate; an IPv6 /64 is one source
 * however many addresses it uses; IPv4 sources stay apart; a full table
 * refuses new sources instead of admitting them, and frees buckets that
 * have refilled.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ox_test.h"
#include "ox_ratelimit.h"

#define SEC 1000000000ull

static void
v4(uint8_t a[16], uint32_t ip)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = (uint8_t)(ip >> 24);
	a[13] = (uint8_t)(ip >> 16);
	a[14] = (uint8_t)(ip >> 8);
	a[15] = (uint8_t)ip;
}

/* 2001:db8:0:NET::HOST */
static void
v6(uint8_t a[16], uint16_t net, uint64_t host)
{
	int i;

	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[6] = (uint8_t)(net >> 8);
	a[7] = (uint8_t)net;
	for (i = 0; i < 8; i++)
		a[15 - i] = (uint8_t)(host >> (8 * i));
}

static void
test_bad_conf(void)
{
	struct ox_ratelimit_conf c = { .per_second = 20, .burst = 5, .entries = 4096 };

	c.entries = 100;
	EXPECT(ox_ratelimit_create(&c) == NULL && errno == EINVAL, "entries not a power of 2");
	c.entries = 2;
	EXPECT(ox_ratelimit_create(&c) == NULL && errno == EINVAL, "fewer entries than one set");
	c.entries = 4096;
	c.burst = 0;
	EXPECT(ox_ratelimit_create(&c) == NULL && errno == EINVAL, "burst 0");
	c.burst = 5;
	c.per_second = 0;
	EXPECT(ox_ratelimit_create(&c) == NULL && errno == EINVAL, "rate 0");
}

static void
test_one_source(void)
{
	struct ox_ratelimit_conf c = { .per_second = 20, .burst = 5, .entries = 4096 };
	struct ox_ratelimit *rl = ox_ratelimit_create(&c);
	uint8_t a[16], b[16];
	int i, ok = 0, r;

	EXPECT(rl != NULL, "create");
	if (rl == NULL)
		return;
	v4(a, 0xc6120010);
	v4(b, 0xc6120011);
	for (i = 0; i < 20; i++)
		ok += ox_ratelimit_take(rl, a, SEC) == OX_RL_ALLOW;
	EXPECT(ok == 5, "a burst of 5 from one IPv4 source, then refused (%d allowed)", ok);
	r = ox_ratelimit_take(rl, a, SEC);
	EXPECT(r == OX_RL_LIMITED, "an empty bucket says limited (%d)", r);
	EXPECT(ox_ratelimit_take(rl, b, SEC) == OX_RL_ALLOW, "the next IPv4 address is its own "
							     "source");
	EXPECT(ox_ratelimit_take(rl, a, SEC + SEC / 20) == OX_RL_ALLOW, "refilled after 1/rate");
	EXPECT(ox_ratelimit_take(rl, a, SEC + SEC / 20) == OX_RL_LIMITED,
	       "one packet's worth only");
	/* A clock that goes back gives no credit. */
	EXPECT(ox_ratelimit_take(rl, a, SEC / 2) == OX_RL_LIMITED, "no credit from the past");
	ox_ratelimit_free(rl);
}

static void
test_ipv6_prefix(void)
{
	struct ox_ratelimit_conf c = { .per_second = 20, .burst = 5, .entries = 4096 };
	struct ox_ratelimit *rl = ox_ratelimit_create(&c);
	uint8_t a[16];
	uint64_t h;
	int ok = 0, full = 0, r;

	EXPECT(rl != NULL, "create");
	if (rl == NULL)
		return;
	/* 10,000 addresses of one /64 in the same second: one source. */
	for (h = 1; h <= 10000; h++) {
		v6(a, 1, h * 0x9e3779b97f4a7c15ull);
		r = ox_ratelimit_take(rl, a, SEC);
		ok += r == OX_RL_ALLOW;
		full += r == OX_RL_TABLE_FULL;
	}
	EXPECT(ok == 5 && full == 0,
	       "10,000 addresses of one /64: %d allowed (want 5), %d "
	       "refused as table full (want 0)",
	       ok, full);
	EXPECT(ox_ratelimit_active(rl, SEC) == 1, "one bucket for the /64 (%u)",
	       ox_ratelimit_active(rl, SEC));
	v6(a, 2, 1);
	EXPECT(ox_ratelimit_take(rl, a, SEC) == OX_RL_ALLOW, "the next /64 is its own source");
	ox_ratelimit_free(rl);
}

static void
test_full(void)
{
	struct ox_ratelimit_conf c = { .per_second = 20, .burst = 5, .entries = 16 };
	struct ox_ratelimit *rl = ox_ratelimit_create(&c);
	uint8_t a[16];
	uint32_t i, ok = 0, full = 0, later = 0;
	int r;

	EXPECT(rl != NULL, "create");
	if (rl == NULL)
		return;
	/* 1,000 new sources at once into 16 buckets: at most 16 get one. */
	for (i = 0; i < 1000; i++) {
		v4(a, 0x0a000000 + i);
		r = ox_ratelimit_take(rl, a, SEC);
		ok += r == OX_RL_ALLOW;
		full += r == OX_RL_TABLE_FULL;
	}
	EXPECT(ok <= 16 && ok >= 4, "a full table admits only the sources it holds (%u)", ok);
	EXPECT(full == 1000 - ok, "every other new source refused as table full (%u)", full);
	EXPECT(ox_ratelimit_active(rl, SEC) == ok, "%u buckets in use", ok);
	/* Their buckets refill within burst / rate (250 ms): free again. */
	for (i = 0; i < 1000; i++) {
		v4(a, 0x0b000000 + i);
		later += ox_ratelimit_take(rl, a, SEC + SEC / 4) == OX_RL_ALLOW;
	}
	EXPECT(later >= 4 && later <= 16, "refilled buckets are reused by new sources (%u)", later);
	ox_ratelimit_free(rl);
}

/*
 * The Linux module's rate limiter self-test (drivers/net/wireguard/
 * selftest/ratelimiter.c, timings_test), its expectations transcribed:
 * 20 a second, a burst of 5. For each step, after the sleep it gives, one
 * source (IPv4, and IPv6 with a new host part in the same /64) gets the
 * expected answer, and a source next to it (another IPv4 address, another
 * /64) is always let through. Our clock is an argument, so the sleeps are
 * exact and the kernel's retries for a slow scheduler are not needed.
 * Its capacity test does not apply as written: a full table here refuses
 * as soon as a source's probe sequence is full, not at exactly N entries
 * (test_full above).
 */
static void
test_wg_timings(void)
{
	static const struct {
		bool result;
		uint64_t ns_before;
	} expected[] = {
		{ true, 0 },	    { true, 0 },  { true, 0 },
		{ true, 0 },	    { true, 0 },  { false, 0 },
		{ true, SEC / 20 }, { false, 0 }, { true, SEC / 20 * 2 },
		{ true, 0 },	    { false, 0 },
	};
	struct ox_ratelimit_conf c = { .per_second = 20, .burst = 5, .entries = 4096 };
	struct ox_ratelimit *rl = ox_ratelimit_create(&c);
	uint64_t now = SEC;
	uint8_t a[16];
	unsigned int i;

	EXPECT(rl != NULL, "create");
	if (rl == NULL)
		return;
	for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		now += expected[i].ns_before;
		v4(a, 8182);
		EXPECT((ox_ratelimit_take(rl, a, now) == OX_RL_ALLOW) == expected[i].result,
		       "wg timings %u (IPv4): %s", i, expected[i].result ? "allowed" : "limited");
		v4(a, 8182 + i + 1);
		EXPECT(ox_ratelimit_take(rl, a, now) == OX_RL_ALLOW,
		       "wg timings %u: another IPv4 source allowed", i);
		/* 1212:289188::i:i, the same /64 each step: one source. */
		v6(a, 0, ((uint64_t)i << 32) | i);
		a[0] = 0, a[1] = 0, a[2] = 0x04, a[3] = 0xbc;	 /* 1212 */
		a[4] = 0, a[5] = 0x04, a[6] = 0x69, a[7] = 0xa4; /* 289188 */
		EXPECT((ox_ratelimit_take(rl, a, now) == OX_RL_ALLOW) == expected[i].result,
		       "wg timings %u (IPv6 /64): %s", i,
		       expected[i].result ? "allowed" : "limited");
		a[3] = (uint8_t)(0xbc + i + 1);
		EXPECT(ox_ratelimit_take(rl, a, now) == OX_RL_ALLOW,
		       "wg timings %u: another /64 allowed", i);
	}
	ox_ratelimit_free(rl);
}

int
main(void)
{
	test_bad_conf();
	test_one_source();
	test_ipv6_prefix();
	test_full();
	test_wg_timings();
	return ox_test_finish("ratelimit");
}
