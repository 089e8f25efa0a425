/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_RATELIMIT_H
#define OX_RATELIMIT_H
/**
 * @file
 * Per-source token buckets for traffic that costs the receiver more than
 * the sender (handshake initiations, RTT probes).
 *
 * A source is an IPv4 address, or the /64 of an IPv6 address: one host
 * holds a whole /64 and could otherwise take a fresh bucket per packet.
 * Buckets live in a fixed table of 4-way sets, hashed with a secret key so
 * that a remote party cannot aim many sources at one set. A bucket that has
 * refilled completely is as good as no bucket and is reused; when a
 * source's set holds no such bucket, the source is refused, never let
 * through: a full table fails closed.
 *
 * Pure C on libsodium, no DPDK. One writer at a time (no locking inside):
 * lib/oxtunnel's servers that share a table take a lock around each call.
 */
#include <stdbool.h>
#include <stdint.h>

/** Settings of a table. */
struct ox_ratelimit_conf {
	uint32_t per_second; /**< sustained packets per source per second, > 0 */
	uint32_t burst;	     /**< packets a quiet source may send at once, > 0 */
	uint32_t entries;    /**< sources tracked at once: a power of two, 4..2^24 */
};

/** Why a packet was refused. */
enum ox_ratelimit_verdict {
	OX_RL_ALLOW = 0,      /**< within the source's rate */
	OX_RL_LIMITED = 1,    /**< the source's bucket is empty */
	OX_RL_TABLE_FULL = 2, /**< a new source, and no bucket free for it */
};

struct ox_ratelimit;

/**
 * Make a table.
 *
 * @param c
 *   Settings.
 * @return
 *   The table, or NULL with errno EINVAL (settings) or ENOMEM.
 */
struct ox_ratelimit *ox_ratelimit_create(const struct ox_ratelimit_conf *c);

/**
 * Free a table; NULL is allowed.
 *
 * @param rl
 *   Table.
 */
void ox_ratelimit_free(struct ox_ratelimit *rl);

/**
 * Take one packet's credit from a source's bucket.
 *
 * @param rl
 *   Table (one writer).
 * @param addr
 *   The source: an IPv6 address, or IPv4 as ::ffff:a.b.c.d. Only the /64
 *   of a native IPv6 address counts.
 * @param now_ns
 *   A monotonic clock.
 * @return
 *   An enum ox_ratelimit_verdict.
 */
int ox_ratelimit_take(struct ox_ratelimit *rl, const uint8_t addr[16], uint64_t now_ns);

/**
 * Sources currently holding a bucket that has not refilled.
 *
 * @param rl
 *   Table.
 * @param now_ns
 *   A monotonic clock.
 * @return
 *   Count (walks the table: for tests and telemetry, not per packet).
 */
uint32_t ox_ratelimit_active(const struct ox_ratelimit *rl, uint64_t now_ns);

#endif /* OX_RATELIMIT_H */
