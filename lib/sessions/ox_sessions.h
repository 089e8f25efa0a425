/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_SESSIONS_H
#define OX_SESSIONS_H
/**
 * @file
 * The relay's session table.
 *
 * Sessions live in one array of fixed-size slots made at start (no
 * allocation afterwards). The datapath finds a session three ways, all
 * lock-free and callable from every worker lcore at once:
 *  - by the receiver index a data packet carries: slot number in the low
 *    bits, a per-slot generation above, so an index is O(1) to resolve and
 *    a stale one (of a session since replaced) never matches;
 *  - by the client's tunnel IPv4 or IPv6 address (rte_hash, lock-free
 *    readers), for packets back from the TAP and from client to client.
 *
 * Writers: one control thread adds and removes sessions. Removal is made
 * safe for readers with RCU (rte_rcu_qsbr): every worker registers its
 * lcore and reports a quiescent state once per loop turn, and a removed
 * slot is reused only after every worker has done so since the removal.
 *
 * Each slot carries a private area of the size given at creation, for the
 * protocol's per-session state.
 */
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_rcu_qsbr.h>

#include "ox_addrpool.h"

/**
 * Bits of a receiver index that name a session; the two above are the
 * caller's (the relay numbers a session's keypairs with them), ignored by
 * ox_sessions_by_index().
 */
#define OX_SESSIONS_INDEX_MASK 0x3fffffffu

/** A session slot. Fields written by the control thread before the
 * session is published are read-only for workers afterwards. */
struct ox_session {
	uint32_t index;			  /**< receiver index: slot | generation << slot bits */
	uint32_t slot;			  /**< position in the table */
	uint8_t key[OX_ADDRPOOL_KEY_LEN]; /**< client's static public key */
	struct ox_tunnel_addr addr;	  /**< its tunnel addresses */
	uint64_t created_ns;		  /**< when the control thread added it */
	uint64_t last_rx_ns; /**< last authenticated packet; written by workers (relaxed) */
	bool live;	     /**< published and not removed */
} __rte_cache_aligned;

/** Options of ox_sessions_create(). */
struct ox_sessions_conf {
	const char *name;     /**< unique name (rte_hash and memzone names) */
	uint32_t capacity;    /**< most sessions at once (>= 1,000,000 for a relay) */
	uint32_t priv_size;   /**< bytes of private state per session */
	int socket_id;	      /**< NUMA socket */
	uint32_t max_readers; /**< worker lcores that will register for RCU */
};

struct ox_sessions;

/**
 * Create a table. Needs EAL.
 *
 * @param c
 *   Options.
 * @return
 *   The table, or NULL with rte_errno set.
 */
struct ox_sessions *ox_sessions_create(const struct ox_sessions_conf *c);

/**
 * Free a table. NULL is allowed. No reader may be running.
 *
 * @param s
 *   Table.
 */
void ox_sessions_free(struct ox_sessions *s);

/**
 * RCU variable the workers register with (rte_rcu_qsbr_thread_register,
 * _online) and report quiescent states to (rte_rcu_qsbr_quiescent).
 *
 * @param s
 *   Table.
 * @return
 *   Its QSBR variable.
 */
struct rte_rcu_qsbr *ox_sessions_rcu(struct ox_sessions *s);

/**
 * Add a session (control thread). The session is found by index and by
 * both tunnel addresses when this returns.
 *
 * @param s
 *   Table.
 * @param key
 *   Client static public key.
 * @param addr
 *   Its tunnel addresses (from lib/addrpool).
 * @param now_ns
 *   Current time.
 * @param out
 *   The new session; its private area is zeroed, to be filled by the caller
 *   before packets can refer to it.
 * @return
 *   0, -ENOSPC table full, -EEXIST an address is already in the table.
 */
int ox_sessions_add(struct ox_sessions *s, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		    const struct ox_tunnel_addr *addr, uint64_t now_ns, struct ox_session **out);

/**
 * Remove a session (control thread). Lookups stop finding it at once; its
 * slot is reused only once every registered worker has passed a
 * quiescent state.
 *
 * @param s
 *   Table.
 * @param sess
 *   Session from this table.
 * @return
 *   0, or -ENOENT if it was not live.
 */
int ox_sessions_del(struct ox_sessions *s, struct ox_session *sess);

/**
 * Resolve a receiver index (any lcore).
 *
 * @param s
 *   Table.
 * @param index
 *   Index from a packet.
 * @return
 *   The live session with that index, or NULL.
 */
struct ox_session *ox_sessions_by_index(struct ox_sessions *s, uint32_t index);

/**
 * Find a session by tunnel IPv4 address, host order (any lcore).
 *
 * @param s
 *   Table.
 * @param v4
 *   Address.
 * @return
 *   The session, or NULL.
 */
struct ox_session *ox_sessions_by_v4(struct ox_sessions *s, uint32_t v4);

/**
 * Find the sessions of several tunnel IPv4 addresses at once (any lcore):
 * rte_hash's bulk lookup overlaps their cache misses, which single lookups
 * take one after another.
 *
 * @param s
 *   Table.
 * @param v4
 *   Addresses, host order.
 * @param n
 *   How many.
 * @param out
 *   out[i]: the session of v4[i], or NULL.
 */
void ox_sessions_by_v4_bulk(struct ox_sessions *s, const uint32_t *v4, unsigned int n,
			    struct ox_session **out);

/**
 * Find a session by tunnel IPv6 address (any lcore).
 *
 * @param s
 *   Table.
 * @param v6
 *   Address.
 * @return
 *   The session, or NULL.
 */
struct ox_session *ox_sessions_by_v6(struct ox_sessions *s, const uint8_t v6[16]);

/**
 * The private area of a session.
 *
 * @param sess
 *   Session.
 * @return
 *   Its priv_size bytes, cache-line aligned.
 */
static inline void *
ox_session_priv(struct ox_session *sess)
{
	return sess + 1;
}

/**
 * Live sessions.
 *
 * @param s
 *   Table.
 * @return
 *   Count.
 */
uint32_t ox_sessions_count(const struct ox_sessions *s);

/** Called for a removed session once no reader can hold it. */
typedef void (*ox_sessions_release_t)(struct ox_session *sess, void *arg);

/**
 * Have @p fn called (by the control thread, from ox_sessions_reclaim() or
 * ox_sessions_add()) for every removed session once its grace period has
 * ended, before its slot can be handed out again: the place to wipe the
 * keys in its private area.
 *
 * @param s
 *   Table.
 * @param fn
 *   Callback, or NULL for none.
 * @param arg
 *   Its argument.
 */
void ox_sessions_set_release(struct ox_sessions *s, ox_sessions_release_t fn, void *arg);

/**
 * Reclaim slots whose grace period has ended (control thread; also done
 * by ox_sessions_add() when it runs short).
 *
 * @param s
 *   Table.
 * @return
 *   Slots returned to the free list.
 */
unsigned int ox_sessions_reclaim(struct ox_sessions *s);

#endif /* OX_SESSIONS_H */
