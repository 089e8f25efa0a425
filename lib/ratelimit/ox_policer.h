/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_POLICER_H
#define OX_POLICER_H
/**
 * @file
 * A byte rate on one flow (a peer's packets in one direction): a token
 * bucket of @c burst bytes filled at @c rate, kept as the generic cell rate
 * algorithm keeps it, in one word: the time at which the bucket would be
 * full again (the "theoretical arrival time", TAT). A packet of L bytes
 * fits if, its cost added, that time is no more than the burst's worth of
 * time ahead of now; a packet that does not fit takes nothing.
 *
 * One word makes it cheap to share: ox_policer_take() for a flow with one
 * writer, ox_policer_take_shared() (one compare-and-swap) for a flow that
 * several threads send on. Excess is dropped, never queued (a policer, as
 * `tc police`, not a shaper).
 *
 * Header only, no DPDK.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/** Rates a policer takes, bits a second. */
#define OX_POLICER_RATE_MIN UINT64_C(8000)	   /* 1,000 bytes a second */
#define OX_POLICER_RATE_MAX UINT64_C(400000000000) /* 400 Gbit/s */
/** Bursts a policer takes, bytes. */
#define OX_POLICER_BURST_MIN UINT32_C(1500)
#define OX_POLICER_BURST_MAX UINT32_C(1 << 30)

/**
 * A rate and burst, as the packets' cost reads them. Both fields are read
 * relaxed by the lcores taking from the bucket: set again while they run
 * (a reload), a packet may see the old rate and the new burst, which is
 * harmless.
 */
struct ox_policer_conf {
	uint64_t ns_per_byte_q16; /**< a byte's time at the rate, ns * 65536; 0: no limit */
	uint64_t tau_ns;	  /**< the burst's time at the rate */
};

/**
 * Set a rate and burst.
 *
 * @param bits_per_s
 *   The rate, OX_POLICER_RATE_MIN..OX_POLICER_RATE_MAX; 0 for no limit.
 * @param burst
 *   Bytes a quiet flow may send at once, OX_POLICER_BURST_MIN..MAX.
 * @return
 *   0, or -EINVAL with @p c unchanged.
 */
static inline int
ox_policer_conf_set(struct ox_policer_conf *c, uint64_t bits_per_s, uint32_t burst)
{
	uint64_t q16;

	if (bits_per_s == 0) {
		__atomic_store_n(&c->ns_per_byte_q16, 0, __ATOMIC_RELAXED);
		return 0;
	}
	if (bits_per_s < OX_POLICER_RATE_MIN || bits_per_s > OX_POLICER_RATE_MAX ||
	    burst < OX_POLICER_BURST_MIN || burst > OX_POLICER_BURST_MAX)
		return -EINVAL;
	/* 8e9 ns * 65536 / rate: at most 6.6e10 at 8 kbit/s, at least 1,310
	 * at 400 Gbit/s (a byte's cost to 1/65536 ns, at most 0.08% over).
	 * Costs are rounded up: the rate is never exceeded. */
	q16 = ((UINT64_C(8000000000) << 16) + bits_per_s - 1) / bits_per_s;
	__atomic_store_n(&c->tau_ns, (uint64_t)((unsigned __int128)burst * q16 >> 16),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&c->ns_per_byte_q16, q16, __ATOMIC_RELAXED);
	return 0;
}

/** @return true if @p c limits anything. */
static inline bool
ox_policer_on(const struct ox_policer_conf *c)
{
	return __atomic_load_n(&c->ns_per_byte_q16, __ATOMIC_RELAXED) != 0;
}

/* The TAT after a packet of @p len at @p now, or 0 when it does not fit. */
static inline uint64_t
ox_policer_next(uint64_t tat, uint64_t q16, uint64_t tau, uint64_t now, uint32_t len)
{
	/* len < 2^16 and q16 < 2^37: the product fits. */
	uint64_t t = (tat > now ? tat : now) + (((uint64_t)len * q16 + 0xffff) >> 16);

	return t - now <= tau ? t : 0;
}

/**
 * Take a packet's bytes from a bucket with one writer.
 *
 * @param tat
 *   The bucket (0 when new: full).
 * @param now_ns
 *   A monotonic clock, never 0.
 * @param len
 *   The packet's bytes (below 65,536).
 * @return
 *   true if the packet fits (and was taken), false if it is excess.
 */
static inline bool
ox_policer_take(const struct ox_policer_conf *c, uint64_t *tat, uint64_t now_ns, uint32_t len)
{
	uint64_t q16 = __atomic_load_n(&c->ns_per_byte_q16, __ATOMIC_RELAXED), t;

	if (q16 == 0)
		return true;
	t = ox_policer_next(__atomic_load_n(tat, __ATOMIC_RELAXED), q16,
			    __atomic_load_n(&c->tau_ns, __ATOMIC_RELAXED), now_ns, len);
	if (t == 0)
		return false;
	__atomic_store_n(tat, t, __ATOMIC_RELAXED);
	return true;
}

/** ox_policer_take() of a bucket that several threads take from. */
static inline bool
ox_policer_take_shared(const struct ox_policer_conf *c, uint64_t *tat, uint64_t now_ns,
		       uint32_t len)
{
	uint64_t q16 = __atomic_load_n(&c->ns_per_byte_q16, __ATOMIC_RELAXED);
	uint64_t tau = __atomic_load_n(&c->tau_ns, __ATOMIC_RELAXED);
	uint64_t old = __atomic_load_n(tat, __ATOMIC_RELAXED), t;

	if (q16 == 0)
		return true;
	do {
		/* Each thread's clock: one behind another's by a little takes
		 * the later TAT as it is (max(tat, now)). */
		t = ox_policer_next(old, q16, tau, now_ns, len);
		if (t == 0)
			return false;
	} while (!__atomic_compare_exchange_n(tat, &old, t, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

#endif /* OX_POLICER_H */
