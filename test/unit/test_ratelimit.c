/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/ratelimit: a source's burst and rate; an IPv6 /64 is one source
 * however many addresses it uses; IPv4 sources stay apart; a full table
 * refuses new sources instead of admitting them, and frees buckets that
 * have refilled. lib/ratelimit's policer: a burst, then the rate to a
 * fraction of a percent over simulated seconds at rates from 8 kbit/s to
 * 100 Gbit/s; excess takes nothing; two threads sharing one bucket get no
 * more than its rate together.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ox_test.h"
#include "ox_policer.h"
#include "ox_ratelimit.h"

#include <pthread.h>

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

static void
test_policer_conf(void)
{
	struct ox_policer_conf c = { 0 };

	EXPECT(ox_policer_conf_set(&c, 0, 0) == 0 && !ox_policer_on(&c), "rate 0: no limit");
	EXPECT(ox_policer_conf_set(&c, 7999, 65536) == -EINVAL, "below 8 kbit/s refused");
	EXPECT(ox_policer_conf_set(&c, OX_POLICER_RATE_MAX + 1, 65536) == -EINVAL,
	       "above the most refused");
	EXPECT(ox_policer_conf_set(&c, 1000000, 1499) == -EINVAL, "a burst below a packet refused");
	EXPECT(!ox_policer_on(&c), "a refused setting changes nothing");
	EXPECT(ox_policer_conf_set(&c, 1000000, 1500) == 0 && ox_policer_on(&c), "1 Mbit/s set");
	EXPECT(ox_policer_conf_set(&c, OX_POLICER_RATE_MIN, OX_POLICER_BURST_MAX) == 0 &&
		       c.tau_ns == UINT64_C(1000000) * OX_POLICER_BURST_MAX,
	       "the slowest rate with the largest burst: %llu ns", (unsigned long long)c.tau_ns);
}

/* Packets of @p len offered every @p gap_ns for @p secs: what got through,
 * in bits a second, after a first burst taken at once. */
static double
policer_run(uint64_t rate, uint32_t burst, uint32_t len, uint64_t gap_ns, unsigned int secs,
	    uint64_t *burst_got)
{
	struct ox_policer_conf c = { 0 };
	uint64_t tat = 0, now = SEC, end, bytes = 0;

	*burst_got = 0;
	if (ox_policer_conf_set(&c, rate, burst) != 0)
		return -1;
	/* A quiet flow: its burst at once, and no more. */
	while (ox_policer_take(&c, &tat, now, len))
		*burst_got += len;
	end = now + secs * SEC;
	for (; now < end; now += gap_ns)
		if (ox_policer_take(&c, &tat, now, len))
			bytes += len;
	return (double)bytes * 8 / secs;
}

static void
test_policer_rates(void)
{
	static const struct {
		uint64_t rate;
		uint32_t burst, len;
		uint64_t gap_ns; /* offered at least twice the rate */
	} t[] = {
		{ 8000, 1500, 100, 50000000 },	     { 1000000, 15000, 1500, 5000000 },
		{ 20000000, 250000, 1420, 250000 },  { 20000000, 250000, 60, 10000 },
		{ 1000000000, 1 << 20, 1500, 5000 }, { 100000000000, 1 << 24, 9000, 300 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t got;
		double bps = policer_run(t[i].rate, t[i].burst, t[i].len, t[i].gap_ns, 20, &got);

		/* Costs rounded up to a whole ns a packet: 0.14% at 720 ns. */
		EXPECT(got <= t[i].burst && got + t[i].len > t[i].burst * 0.998,
		       "rate %llu: a quiet flow's burst is %u bytes, got %llu",
		       (unsigned long long)t[i].rate, t[i].burst, (unsigned long long)got);
		/* Whole packets: up to one packet short of the rate a gap. */
		EXPECT(bps <= t[i].rate * 1.001 && bps >= t[i].rate * 0.99,
		       "rate %llu bit/s, %u-byte packets: %.0f bit/s through",
		       (unsigned long long)t[i].rate, t[i].len, bps);
	}
}

/* Under the rate nothing is dropped. */
static void
test_policer_under(void)
{
	struct ox_policer_conf c = { 0 };
	uint64_t tat = 0, now = SEC;
	unsigned int i, dropped = 0;

	ox_policer_conf_set(&c, 20000000, 1500);
	/* 1,500 bytes every 700 us: 17.1 Mbit/s, the burst a single packet. */
	for (i = 0; i < 100000; i++, now += 700000)
		dropped += !ox_policer_take(&c, &tat, now, 1500);
	EXPECT(dropped == 0, "17 Mbit/s through a 20 Mbit/s policer: %u dropped", dropped);
}

struct policer_thread {
	struct ox_policer_conf *c;
	uint64_t *tat;
	uint64_t bytes;
};

/* Each thread offers a packet every 1 us of the same simulated clock. */
static void *
policer_thread(void *arg)
{
	struct policer_thread *t = arg;
	uint64_t now;

	for (now = SEC; now < 3 * SEC; now += 1000)
		if (ox_policer_take_shared(t->c, t->tat, now, 1000))
			t->bytes += 1000;
	return NULL;
}

static void
test_policer_shared(void)
{
	struct ox_policer_conf c = { 0 };
	struct policer_thread t[2];
	pthread_t th[2];
	uint64_t tat = 0, total;
	unsigned int i;

	ox_policer_conf_set(&c, 100000000, 100000); /* 100 Mbit/s: 12.5 MB/s */
	for (i = 0; i < 2; i++) {
		t[i] = (struct policer_thread){ .c = &c, .tat = &tat };
		if (pthread_create(&th[i], NULL, policer_thread, &t[i]) != 0) {
			SKIP_PART("no second thread for the shared policer");
			return;
		}
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	total = t[0].bytes + t[1].bytes;
	/* 2 s at 12.5 MB/s, plus one burst: each thread's clock runs alone,
	 * so one ahead of the other can only make the pair get less. */
	EXPECT(total <= 25000000 + 100000 && total >= 25000000 * 0.5,
	       "two threads on one bucket: %llu bytes in 2 s at 100 Mbit/s "
	       "(%llu and %llu)",
	       (unsigned long long)total, (unsigned long long)t[0].bytes,
	       (unsigned long long)t[1].bytes);
}

int
main(void)
{
	test_policer_conf();
	test_policer_rates();
	test_policer_under();
	test_policer_shared();
	test_bad_conf();
	test_one_source();
	test_ipv6_prefix();
	test_full();
	test_wg_timings();
	return ox_test_finish("ratelimit");
}
