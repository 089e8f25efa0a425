/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>

#include "ox_sessions.h"

RTE_LOG_REGISTER(ox_sessions_logtype, ox.sessions, INFO);
#define SESS_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, ox_sessions_logtype, "sessions: " fmt "\n", ##__VA_ARGS__)

struct ox_sessions {
	uint32_t capacity;
	uint32_t slot_size;
	uint32_t slot_bits;
	uint32_t slot_mask;
	uint32_t count;
	uint32_t n_free;
	uint32_t *free; /* stack of free slot numbers */
	uint8_t *slots;
	struct rte_hash *by_v4;
	struct rte_hash *by_v6;
	struct rte_rcu_qsbr *qsbr;
	struct rte_rcu_qsbr_dq *dq; /* removed slots waiting for a grace period */
	ox_sessions_release_t release;
	void *release_arg;
};

static inline struct ox_session *
slot_at(const struct ox_sessions *s, uint32_t slot)
{
	return (struct ox_session *)(s->slots + (size_t)slot * s->slot_size);
}

/* Grace period over: nobody can hold the slot any more. */
static void
slot_free_cb(void *p, void *e, unsigned int n)
{
	struct ox_sessions *s = p;
	const uint32_t *slots = e;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (s->release != NULL)
			s->release(slot_at(s, slots[i]), s->release_arg);
		s->free[s->n_free++] = slots[i];
	}
}

void
ox_sessions_set_release(struct ox_sessions *s, ox_sessions_release_t fn, void *arg)
{
	s->release = fn;
	s->release_arg = arg;
}

/* rte_hash_crc reads keys 8 bytes at a time: hand it an aligned copy (an
 * address in a packet or a struct seldom is). */
struct key6 {
	uint64_t w[2];
};

static inline struct key6
key6_of(const uint8_t *v6)
{
	struct key6 k;

	memcpy(&k, v6, sizeof(k));
	return k;
}

static struct rte_hash *
make_hash(const struct ox_sessions_conf *c, const char *suffix, uint32_t key_len,
	  struct rte_rcu_qsbr *qsbr)
{
	struct rte_hash_rcu_config rcu = {
		.v = qsbr,
		.mode = RTE_HASH_QSBR_MODE_DQ,
	};
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		/* rte_hash wants at least one bucket's worth (8). */
		.entries = RTE_MAX(c->capacity + c->capacity / 4, 16u),
		.key_len = key_len,
		.hash_func = rte_hash_crc,
		.socket_id = c->socket_id,
		/* Lock-free readers; the control thread is the only writer. */
		.extra_flag =
			RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash *h;

	snprintf(name, sizeof(name), "%s_%s", c->name, suffix);
	h = rte_hash_create(&hp);
	if (h == NULL)
		return NULL;
	/* Deleted keys' entries are recycled only after a grace period too. */
	if (rte_hash_rcu_qsbr_add(h, &rcu) != 0) {
		rte_hash_free(h);
		return NULL;
	}
	return h;
}

struct ox_sessions *
ox_sessions_create(const struct ox_sessions_conf *c)
{
	struct rte_rcu_qsbr_dq_parameters dqp = { 0 };
	char dq_name[RTE_RCU_QSBR_DQ_NAMESIZE];
	uint32_t i, readers;
	struct ox_sessions *s;
	size_t sz;

	if (c == NULL || c->name == NULL || c->capacity == 0 || c->capacity > (1u << 24)) {
		rte_errno = EINVAL;
		return NULL;
	}
	s = rte_zmalloc_socket("ox_sessions", sizeof(*s), 0, c->socket_id);
	if (s == NULL)
		goto nomem;
	s->capacity = c->capacity;
	s->slot_size =
		RTE_ALIGN_CEIL(sizeof(struct ox_session) + c->priv_size, RTE_CACHE_LINE_SIZE);
	for (s->slot_bits = 1; (1u << s->slot_bits) < c->capacity; s->slot_bits++)
		;
	s->slot_mask = (1u << s->slot_bits) - 1;
	s->slots = rte_zmalloc_socket("ox_session_slots", (size_t)c->capacity * s->slot_size,
				      RTE_CACHE_LINE_SIZE, c->socket_id);
	s->free = rte_malloc_socket("ox_session_free", sizeof(uint32_t) * c->capacity, 0,
				    c->socket_id);
	readers = c->max_readers ? c->max_readers : RTE_MAX_LCORE;
	sz = rte_rcu_qsbr_get_memsize(readers);
	s->qsbr = rte_zmalloc_socket("ox_sessions_rcu", sz, RTE_CACHE_LINE_SIZE, c->socket_id);
	if (s->slots == NULL || s->free == NULL || s->qsbr == NULL ||
	    rte_rcu_qsbr_init(s->qsbr, readers) != 0)
		goto nomem;
	/* Slots are handed out from the top of the stack; each starts at a
	 * random generation, so indices do not count sessions. */
	for (i = 0; i < c->capacity; i++) {
		struct ox_session *sess = slot_at(s, i);

		sess->slot = i;
		sess->index = (i | (uint32_t)(rte_rand() << s->slot_bits)) & OX_SESSIONS_INDEX_MASK;
		s->free[i] = c->capacity - 1 - i;
	}
	s->n_free = c->capacity;

	snprintf(dq_name, sizeof(dq_name), "%s_dq", c->name);
	dqp.name = dq_name;
	dqp.size = c->capacity;
	dqp.esize = sizeof(uint32_t);
	dqp.trigger_reclaim_limit = 0;
	dqp.max_reclaim_size = c->capacity;
	dqp.free_fn = slot_free_cb;
	dqp.p = s;
	dqp.v = s->qsbr;
	s->dq = rte_rcu_qsbr_dq_create(&dqp);
	s->by_v4 = s->dq ? make_hash(c, "v4", sizeof(uint32_t), s->qsbr) : NULL;
	s->by_v6 = s->by_v4 ? make_hash(c, "v6", 16, s->qsbr) : NULL;
	if (s->by_v6 == NULL) {
		int err = rte_errno;

		SESS_LOG(ERR, "cannot create the tables of %u sessions: %s", c->capacity,
			 rte_strerror(err));
		ox_sessions_free(s);
		rte_errno = err;
		return NULL;
	}
	return s;
nomem:
	ox_sessions_free(s);
	rte_errno = ENOMEM;
	return NULL;
}

void
ox_sessions_free(struct ox_sessions *s)
{
	if (s == NULL)
		return;
	rte_hash_free(s->by_v4);
	rte_hash_free(s->by_v6);
	if (s->dq != NULL)
		rte_rcu_qsbr_dq_delete(s->dq);
	if (s->slots != NULL)
		memset(s->slots, 0, (size_t)s->capacity * s->slot_size); /* keys, secrets */
	rte_free(s->slots);
	rte_free(s->free);
	rte_free(s->qsbr);
	rte_free(s);
}

struct rte_rcu_qsbr *
ox_sessions_rcu(struct ox_sessions *s)
{
	return s->qsbr;
}

unsigned int
ox_sessions_reclaim(struct ox_sessions *s)
{
	unsigned int freed = 0, pending = 0, avail = 0;

	rte_rcu_qsbr_dq_reclaim(s->dq, s->capacity, &freed, &pending, &avail);
	return freed;
}

int
ox_sessions_add(struct ox_sessions *s, const uint8_t key[OX_ADDRPOOL_KEY_LEN],
		const struct ox_tunnel_addr *addr, uint64_t now_ns, struct ox_session **out)
{
	uint32_t slot, gen, v4 = addr->v4;
	struct ox_session *sess;
	int ret;

	if (s->n_free == 0)
		ox_sessions_reclaim(s);
	if (s->n_free == 0)
		return -ENOSPC;
	struct key6 k6 = key6_of(addr->v6);

	if (rte_hash_lookup(s->by_v4, &v4) >= 0 || rte_hash_lookup(s->by_v6, &k6) >= 0)
		return -EEXIST;
	slot = s->free[--s->n_free];
	sess = slot_at(s, slot);
	/* A new generation: packets carrying the slot's old index miss. */
	gen = (sess->index >> s->slot_bits) + 1;
	sess->index = (slot | (gen << s->slot_bits)) & OX_SESSIONS_INDEX_MASK;
	if (sess->index == slot)
		sess->index = slot | (1u << s->slot_bits);
	memcpy(sess->key, key, OX_ADDRPOOL_KEY_LEN);
	sess->addr = *addr;
	sess->created_ns = now_ns;
	sess->last_rx_ns = now_ns;
	memset(ox_session_priv(sess), 0, s->slot_size - sizeof(*sess));
	/* Visible by index only once complete. */
	__atomic_store_n(&sess->live, true, __ATOMIC_RELEASE);
	ret = rte_hash_add_key_data(s->by_v4, &v4, sess);
	if (ret == 0) {
		ret = rte_hash_add_key_data(s->by_v6, &k6, sess);
		if (ret != 0)
			rte_hash_del_key(s->by_v4, &v4);
	}
	if (ret != 0) {
		__atomic_store_n(&sess->live, false, __ATOMIC_RELEASE);
		s->free[s->n_free++] = slot;
		return ret == -ENOSPC ? -ENOSPC : ret;
	}
	s->count++;
	*out = sess;
	return 0;
}

int
ox_sessions_del(struct ox_sessions *s, struct ox_session *sess)
{
	struct key6 k6 = key6_of(sess->addr.v6);
	uint32_t v4 = sess->addr.v4;

	if (!__atomic_load_n(&sess->live, __ATOMIC_ACQUIRE))
		return -ENOENT;
	__atomic_store_n(&sess->live, false, __ATOMIC_RELEASE);
	rte_hash_del_key(s->by_v4, &v4);
	rte_hash_del_key(s->by_v6, &k6);
	s->count--;
	/* The slot keeps its index (a reader may still compare it) until the
	 * grace period ends and it is handed out again. */
	if (rte_rcu_qsbr_dq_enqueue(s->dq, &sess->slot) != 0) {
		/* Queue full (cannot happen: it holds the whole table); wait. */
		rte_rcu_qsbr_synchronize(s->qsbr, RTE_QSBR_THRID_INVALID);
		slot_free_cb(s, &sess->slot, 1);
	}
	return 0;
}

struct ox_session *
ox_sessions_by_index(struct ox_sessions *s, uint32_t index)
{
	uint32_t slot = index & s->slot_mask;
	struct ox_session *sess;

	index &= OX_SESSIONS_INDEX_MASK;
	if (unlikely(slot >= s->capacity))
		return NULL;
	sess = slot_at(s, slot);
	if (sess->index != index || !__atomic_load_n(&sess->live, __ATOMIC_ACQUIRE))
		return NULL;
	return sess;
}

struct ox_session *
ox_sessions_by_v4(struct ox_sessions *s, uint32_t v4)
{
	void *data;

	return rte_hash_lookup_data(s->by_v4, &v4, &data) >= 0 ? data : NULL;
}

void
ox_sessions_by_v4_bulk(struct ox_sessions *s, const uint32_t *v4, unsigned int n,
		       struct ox_session **out)
{
	const void *keys[RTE_HASH_LOOKUP_BULK_MAX];
	unsigned int i, k, m;
	uint64_t hits;

	for (i = 0; i < n; i += m) {
		m = RTE_MIN(n - i, (unsigned int)RTE_HASH_LOOKUP_BULK_MAX);
		for (k = 0; k < m; k++)
			keys[k] = &v4[i + k];
		hits = 0;
		if (rte_hash_lookup_bulk_data(s->by_v4, keys, m, &hits, (void **)&out[i]) < 0)
			hits = 0;
		/* Misses leave out[] as it was. */
		for (k = 0; k < m; k++)
			if (!(hits >> k & 1))
				out[i + k] = NULL;
	}
}

struct ox_session *
ox_sessions_by_v6(struct ox_sessions *s, const uint8_t v6[16])
{
	struct key6 k6 = key6_of(v6);
	void *data;

	return rte_hash_lookup_data(s->by_v6, &k6, &data) >= 0 ? data : NULL;
}

uint32_t
ox_sessions_count(const struct ox_sessions *s)
{
	return s->count;
}
