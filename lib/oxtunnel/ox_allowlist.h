/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_ALLOWLIST_H
#define OX_ALLOWLIST_H
/**
 * @file
 * The allow-list (who may handshake, their fixed addresses and preshared
 * keys) and the store of their handshake timestamps. One writer: the
 * control thread. Part of lib/oxtunnel.
 */
#include "ox_wire.h"

/* ----------------------------------------------------------- allow-list */

/** Routed prefixes one allow-list line may give (a site's subnets). */
#define OX_ALLOW_ROUTES_PER_LINE 256
/** Routed prefixes in a whole allow-list. */
#define OX_ALLOW_ROUTES_MAX 65536

/** Groups one allow-list may name (`group=NAME`): a peer's are a bitmap. */
#define OX_ALLOW_GROUPS_MAX 64

/** A prefix routed to a peer: a subnet behind it (site to site). */
struct ox_allow_route {
	uint8_t addr[16]; /**< network; IPv4 in the first 4 bytes, network order */
	uint8_t depth;	  /**< prefix length, shorter than a host's */
	bool v6;	  /**< IPv6 */
	uint32_t entry;	  /**< index of its peer in ox_allowlist.e */
};

/** One allowed client. */
struct ox_allow_entry {
	uint8_t key[OX_KEY_LEN]; /**< static public key */
	char name[32];		 /**< "" when the line has none */
	uint32_t v4;		 /**< fixed IPv4 (host order), 0 = from the pool */
	uint8_t v6[16];		 /**< fixed IPv6, all zero = from the pool */
	uint8_t last_init[12];	 /**< greatest TAI64N accepted (replay of initiations) */
	uint8_t psk[OX_KEY_LEN]; /**< WireGuard preshared key; all zero = none */
	uint32_t line;		 /**< line in the file */
	uint32_t route_first;	 /**< its routed prefixes: ox_allowlist.routes[route_first..] */
	uint32_t route_n;	 /**< how many */
	uint64_t groups;	 /**< bit i: in ox_allowlist.group[i] */
	uint64_t rate;		 /**< bits a second each way, 0 = no limit */
	int64_t expires;	 /**< admitted until (UNIX time, s), 0 = for ever */
	uint64_t last_init_ns;	 /**< when an initiation was last accepted; 0 = never */
	bool refusal_said;	 /**< for the caller: a refusal of this key was logged
				      (atomic exchange: said once by one thread) */
	bool init_lock;		 /**< held over last_init and last_init_ns */
	bool ss_ready;		 /**< ss holds DH(server key, key) (release store) */
	bool ss_busy;		 /**< a thread claimed ss to write it */
	uint8_t ss[OX_KEY_LEN];	 /**< the precomputed static-static DH (a secret) */
};

/**
 * Immutable after load apart from an entry's handshake state, which the
 * handshake servers sharing the list (one per thread) change concurrently:
 * last_init and last_init_ns under init_lock (ox_allow_entry_accept()),
 * the static-static DH cache written once by whoever claims ss_busy and
 * published by ss_ready, refusal_said by atomic exchange. ss_set, ss_pub and
 * ss_next belong to the first server set on the list (ox_hs_set_allowlist()),
 * on one thread.
 */
struct ox_allowlist {
	struct ox_allow_entry *e; /**< sorted by key */
	uint32_t n;
	uint32_t e_cap;		       /**< entries room was made for */
	bool ss_set;		       /**< ss_pub names the key the cache is of */
	uint8_t ss_pub[OX_KEY_LEN];    /**< the server public key of every entry's ss */
	uint32_t ss_next;	       /**< ox_hs_precompute()'s place */
	struct ox_allow_route *routes; /**< every line's routed prefixes, in file order */
	uint32_t n_routes;
	char group[OX_ALLOW_GROUPS_MAX][32]; /**< group names, in order of first use */
	uint32_t n_groups;
};

/**
 * Parse an allow-list. A line is
 * `KEY [NAME] [ADDRESS]... [psk=KEY] [group=GROUP]... [rate=RATE]
 * [expires=YYYY-MM-DDTHH:MMZ]` with KEY the base64 public key, NAME and
 * GROUP [A-Za-z0-9_.-]{1,31} not starting with a digit, RATE a number and
 * a unit (bit, kbit, mbit, gbit; 8kbit to 400gbit), the expiry a UTC time, ADDRESS at most one IPv4
 * and one IPv6 literal (a /32 or /128 may be written) and any number of routed prefixes (ADDR/LEN,
 * host bits clear, up to OX_ALLOW_ROUTES_PER_LINE); '#' starts a comment. A duplicate key or
 * address, and prefixes that overlap (one line's or two lines'), are errors naming the lines; so
 * are a group named twice on a line and a list naming more than OX_ALLOW_GROUPS_MAX groups.
 *
 * @param prev
 *   The list being replaced, or NULL: last_init carries over per key, so a
 *   reload does not reopen replay of old initiations, and so does the
 *   precomputed static-static DH (a reload computes only new keys').
 * @return
 *   0, or -errno with a message naming the line in @p err.
 */
int ox_allowlist_parse(struct ox_allowlist *al, const char *text, size_t len,
		       const struct ox_allowlist *prev, uint32_t max_entries, char *err,
		       size_t errlen);

/** ox_allowlist_parse() of a file. */
int ox_allowlist_load(struct ox_allowlist *al, const char *path, const struct ox_allowlist *prev,
		      uint32_t max_entries, char *err, size_t errlen);

/** @return the index of group @p name in @p al, or -1 if no line names it. */
int ox_allowlist_group(const struct ox_allowlist *al, const char *name);

/** @return the earliest expiry in @p al later than @p after (UNIX time,
 * s), or 0 when none is: the time a caller ends sessions next. Walks the
 * list. */
int64_t ox_allowlist_next_expiry(const struct ox_allowlist *al, int64_t after);

/** @return true if @p e has expired (reads the wall clock if it expires). */
bool ox_allow_entry_expired(const struct ox_allow_entry *e);

/** @return true if two routes are the same prefix (their peers aside). */
bool ox_allow_route_eq(const struct ox_allow_route *a, const struct ox_allow_route *b);

/** Write a route as "ADDR/LEN" into @p buf (64 bytes hold any). */
void ox_allow_route_str(const struct ox_allow_route *r, char *buf, size_t len);

/**
 * Accept an initiation's timestamp for an entry, atomically against other
 * threads doing the same: it must be greater than the greatest accepted
 * (a replayed initiation is not) and, with @p min_gap_ns, the last
 * acceptance at least that old (WireGuard's flood limit by key).
 *
 * @return 0 (recorded), -OX_DROP_STALE_INIT or -OX_DROP_INIT_FLOOD.
 */
int ox_allow_entry_accept(struct ox_allow_entry *e, const uint8_t ts[12], uint64_t now_ns,
			  uint64_t min_gap_ns);

/** Copy an entry's greatest accepted timestamp (under its lock). */
void ox_allow_entry_last_init(struct ox_allow_entry *e, uint8_t ts[12]);

/** @return the entry of a key, or NULL. */
struct ox_allow_entry *ox_allowlist_find(const struct ox_allowlist *al,
					 const uint8_t key[OX_KEY_LEN]);

void ox_allowlist_free(struct ox_allowlist *al);

/* ------------------------------------------------- handshake timestamps */

/**
 * The greatest handshake timestamp accepted from each key, beyond the
 * allow-list (a key removed and listed again) and, with a file, beyond a
 * restart: a captured initiation cannot be replayed to a server that has
 * forgotten it. The file is an append-only log: ox_tsstore_note() writes
 * each line to the kernel at once (a killed process loses nothing),
 * ox_tsstore_flush() puts it on the disk (a power cut loses at most what
 * came since); compacted when opened and when it has grown to four times
 * its keys. One thread.
 */
struct ox_tsstore;

/**
 * Open a store.
 *
 * @param path
 *   Its file (created, mode 600), or NULL for memory only.
 * @return
 *   The store, or NULL with errno set and a message in @p err.
 */
struct ox_tsstore *ox_tsstore_open(const char *path, char *err, size_t errlen);

/** Close a store (flushes nothing: call ox_tsstore_flush() first). */
void ox_tsstore_close(struct ox_tsstore *s);

/** Raise each entry's last_init of @p al to what the store holds. */
void ox_tsstore_apply(struct ox_tsstore *s, struct ox_allowlist *al);

/**
 * Record an accepted timestamp: in memory, and written to the file (not
 * synced) before it returns. Call it before the response leaves.
 *
 * @return 0, -ENOMEM, or -EIO (the file could not be written).
 */
int ox_tsstore_note(struct ox_tsstore *s, const uint8_t key[OX_KEY_LEN], const uint8_t ts[12]);

/**
 * Sync what was noted to the disk; compact the file when it has grown.
 *
 * @return 0, or -errno with a message in @p err.
 */
int ox_tsstore_flush(struct ox_tsstore *s, char *err, size_t errlen);

#endif /* OX_ALLOWLIST_H */
