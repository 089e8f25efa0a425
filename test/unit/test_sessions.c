/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/sessions under EAL (--no-huge, --in-memory: no root, no hugepages):
 * a table of 1,048,576 sessions found by index, IPv4 and IPv6; stale
 * indices miss; full tables refuse; and a worker lcore looking sessions up
 * while the control thread removes and re-adds them never sees a slot
 * reused under it (RCU).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>

#include "ox_test.h"
#include "ox_test_eal.h"
#include "ox_addrpool.h"
#include "ox_sessions.h"

#define BIG (1u << 20)

static void
key_of(uint32_t n, uint8_t key[32])
{
	memset(key, 0, 32);
	memcpy(key, &n, sizeof(n));
	key[31] = 0x5a;
}

/* Addresses without a pool: host n in 100.64.0.0/10 and fd6f::/64. */
static void
addr_of(uint32_t n, struct ox_tunnel_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->host = n + 2;
	a->v4 = (100u << 24 | 64u << 16) + a->host;
	a->v6[0] = 0xfd;
	a->v6[1] = 0x6f;
	memcpy(a->v6 + 12, &a->host, 4);
}

static void
test_big(void)
{
	struct ox_sessions_conf c = { .name = "big", .capacity = BIG, .socket_id = SOCKET_ID_ANY };
	struct ox_session **all = calloc(BIG, sizeof(*all));
	struct ox_tunnel_addr a;
	struct ox_sessions *s;
	uint8_t key[32];
	uint64_t t0;
	uint32_t i, bad = 0, old;
	struct ox_session *sess;

	s = ox_sessions_create(&c);
	EXPECT(s != NULL, "table of %u sessions: %s", BIG, rte_strerror(rte_errno));
	if (s == NULL)
		return;
	t0 = rte_get_timer_cycles();
	for (i = 0; i < BIG; i++) {
		key_of(i, key);
		addr_of(i, &a);
		if (ox_sessions_add(s, key, &a, 1000, &all[i]) != 0)
			bad++;
	}
	printf("added %u sessions in %.2f s\n", BIG,
	       (double)(rte_get_timer_cycles() - t0) / rte_get_timer_hz());
	EXPECT(bad == 0 && ox_sessions_count(s) == BIG, "all %u added (%u failed)", BIG, bad);
	key_of(0, key);
	addr_of(BIG, &a);
	EXPECT(ox_sessions_add(s, key, &a, 0, &sess) == -ENOSPC, "full table refuses");
	addr_of(5, &a);
	bad = 0;
	for (i = 0; i < BIG; i++) {
		addr_of(i, &a);
		if (ox_sessions_by_index(s, all[i]->index) != all[i] ||
		    ox_sessions_by_v4(s, a.v4) != all[i] || ox_sessions_by_v6(s, a.v6) != all[i])
			bad++;
	}
	EXPECT(bad == 0, "every session found by index, IPv4 and IPv6 (%u misses)", bad);
	/* Remove one; its index, and its addresses, miss at once. */
	old = all[7]->index;
	addr_of(7, &a);
	EXPECT(ox_sessions_del(s, all[7]) == 0, "remove");
	EXPECT(ox_sessions_del(s, all[7]) == -ENOENT, "remove twice");
	EXPECT(ox_sessions_by_index(s, old) == NULL, "removed index misses");
	EXPECT(ox_sessions_by_v4(s, a.v4) == NULL && ox_sessions_by_v6(s, a.v6) == NULL,
	       "removed addresses miss");
	/* No reader is registered: the slot comes back at once, new index. */
	key_of(7, key);
	EXPECT(ox_sessions_add(s, key, &a, 2000, &sess) == 0, "re-add into the freed slot");
	EXPECT(sess->slot == all[7]->slot && sess->index != old &&
		       ox_sessions_by_index(s, old) == NULL &&
		       ox_sessions_by_index(s, sess->index) == sess,
	       "same slot, new index; the old one still misses");
	addr_of(BIG + 1, &a);
	EXPECT(ox_sessions_add(s, key, &a, 0, &sess) == -ENOSPC, "full again: refused");
	bad = 0;
	for (i = 0; i < 64; i++)
		if (ox_sessions_by_index(s, (uint32_t)rte_rand()) != NULL)
			bad++;
	EXPECT(bad <= 1, "random indices almost never hit (%u of 64)", bad);
	ox_sessions_free(s);
	free(all);
}

/* An address already in the table is refused while there is room. */
static void
test_exists(void)
{
	struct ox_sessions_conf c = { .name = "dup", .capacity = 8, .socket_id = SOCKET_ID_ANY };
	struct ox_tunnel_addr a, b;
	struct ox_session *sess;
	struct ox_sessions *s;
	uint8_t key[32];

	s = ox_sessions_create(&c);
	EXPECT(s != NULL, "table of 8");
	if (s == NULL)
		return;
	key_of(1, key);
	addr_of(1, &a);
	EXPECT(ox_sessions_add(s, key, &a, 0, &sess) == 0, "first session");
	key_of(2, key);
	addr_of(2, &b);
	b.v4 = a.v4;
	EXPECT(ox_sessions_add(s, key, &b, 0, &sess) == -EEXIST, "IPv4 in use refused");
	addr_of(2, &b);
	memcpy(b.v6, a.v6, 16);
	EXPECT(ox_sessions_add(s, key, &b, 0, &sess) == -EEXIST, "IPv6 in use refused");
	EXPECT(ox_sessions_count(s) == 1, "nothing added by the refusals");
	addr_of(2, &b);
	EXPECT(ox_sessions_add(s, key, &b, 0, &sess) == 0, "free addresses accepted");
	ox_sessions_free(s);
}

static unsigned int released;

static void
on_release(struct ox_session *sess, void *arg)
{
	(void)arg;
	released++;
	memset(ox_session_priv(sess), 0, 64); /* what the relay does: wipe keys */
}

/* A removed session is handed to the release hook once no reader can hold
 * it: not before its grace period, and once. */
static void
test_release(void)
{
	struct ox_sessions_conf c = { .name = "rel",
				      .capacity = 8,
				      .priv_size = 64,
				      .socket_id = SOCKET_ID_ANY,
				      .max_readers = 4 };
	struct ox_tunnel_addr a;
	struct ox_session *sess;
	struct ox_sessions *s;
	struct rte_rcu_qsbr *v;
	uint8_t key[32];

	s = ox_sessions_create(&c);
	EXPECT(s != NULL, "table");
	if (s == NULL)
		return;
	v = ox_sessions_rcu(s);
	ox_sessions_set_release(s, on_release, NULL);
	/* A reader (thread id 3) that is online and has not moved on. */
	rte_rcu_qsbr_thread_register(v, 3);
	rte_rcu_qsbr_thread_online(v, 3);
	key_of(1, key);
	addr_of(1, &a);
	EXPECT(ox_sessions_add(s, key, &a, 0, &sess) == 0, "add");
	memset(ox_session_priv(sess), 0xaa, 64);
	released = 0;
	EXPECT(ox_sessions_del(s, sess) == 0, "remove");
	ox_sessions_reclaim(s);
	EXPECT(released == 0 && ((uint8_t *)ox_session_priv(sess))[0] == 0xaa,
	       "not released while a reader may hold it");
	rte_rcu_qsbr_quiescent(v, 3);
	ox_sessions_reclaim(s);
	EXPECT(released == 1 && ((uint8_t *)ox_session_priv(sess))[0] == 0,
	       "released (keys wiped) once the reader moved on (%u)", released);
	ox_sessions_reclaim(s);
	EXPECT(released == 1, "released once");
	rte_rcu_qsbr_thread_offline(v, 3);
	rte_rcu_qsbr_thread_unregister(v, 3);
	ox_sessions_free(s);
}

/* Reader side of the RCU test, on a worker lcore. */
struct reader {
	struct ox_sessions *s;
	int stop;	  /* the control side stores, the reader loads (atomics) */
	uint64_t lookups; /* the reader stores, the control side loads (atomics) */
	uint64_t torn;	  /* a found session whose address was not the one asked for */
};

static int
reader_main(void *arg)
{
	struct reader *r = arg;
	struct rte_rcu_qsbr *v = ox_sessions_rcu(r->s);
	unsigned int id = rte_lcore_id();
	struct ox_tunnel_addr a;
	uint32_t n = 0;

	rte_rcu_qsbr_thread_register(v, id);
	rte_rcu_qsbr_thread_online(v, id);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct ox_session *sess;

		addr_of(n++ % 64, &a);
		sess = ox_sessions_by_v4(r->s, a.v4);
		if (sess != NULL) {
			/* Hold it a little, as a worker processing a burst would. */
			rte_delay_us_block(1);
			if (sess->addr.v4 != a.v4)
				r->torn++;
		}
		__atomic_store_n(&r->lookups, r->lookups + 1, __ATOMIC_RELEASE);
		rte_rcu_qsbr_quiescent(v, id);
	}
	rte_rcu_qsbr_thread_offline(v, id);
	rte_rcu_qsbr_thread_unregister(v, id);
	return 0;
}

static void
test_rcu(void)
{
	struct ox_sessions_conf c = { .name = "rcu", .capacity = 64, .socket_id = SOCKET_ID_ANY };
	struct ox_session *sess[64];
	struct ox_tunnel_addr a;
	struct reader r = { 0 };
	unsigned int lcore, round;
	uint8_t key[32];
	uint32_t i;

	lcore = rte_get_next_lcore(-1, 1, 0);
	if (lcore >= RTE_MAX_LCORE) {
		SKIP_PART("rcu: no second lcore to read from while the table churns");
		return;
	}
	r.s = ox_sessions_create(&c);
	EXPECT(r.s != NULL, "small table");
	if (r.s == NULL)
		return;
	for (i = 0; i < 64; i++) {
		key_of(i, key);
		addr_of(i, &a);
		ox_sessions_add(r.s, key, &a, 0, &sess[i]);
	}
	rte_eal_remote_launch(reader_main, &r, lcore);
	while (__atomic_load_n(&r.lookups, __ATOMIC_ACQUIRE) == 0)
		rte_pause();
	/* Churn: remove every session and add it back under another address
	 * range and back again; slots are reused only after the reader's
	 * quiescent states. */
	for (round = 0; round < 200; round++) {
		for (i = 0; i < 64; i++) {
			ox_sessions_del(r.s, sess[i]);
			key_of(i, key);
			addr_of(i + (round % 2 ? 0 : 64), &a);
			while (ox_sessions_add(r.s, key, &a, 0, &sess[i]) == -ENOSPC)
				rte_pause(); /* slots wait for the reader's grace period */
		}
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	rte_eal_wait_lcore(lcore);
	printf("rcu: %" PRIu64 " lookups during 200 rounds of churn\n", r.lookups);
	EXPECT(r.lookups > 1000, "the reader ran (%" PRIu64 " lookups)", r.lookups);
	EXPECT(r.torn == 0, "no slot reused under a reader (%" PRIu64 " torn)", r.torn);
	ox_sessions_free(r.s);
}

static void
test_bad(void)
{
	struct ox_sessions_conf c = { .name = "bad", .capacity = 0 };

	EXPECT(ox_sessions_create(&c) == NULL && rte_errno == EINVAL, "capacity 0 refused");
	c.capacity = 1u << 25;
	EXPECT(ox_sessions_create(&c) == NULL && rte_errno == EINVAL, "capacity > 2^24 refused");
}

int
main(int argc, char **argv)
{
	(void)argc;
	if (ox_test_eal_init(argv[0], "oxsess", "0-1", "1024") != 0)
		return 77;
	test_bad();
	test_big();
	test_exists();
	test_release();
	test_rcu();
	rte_eal_cleanup();
	return ox_test_finish("sessions");
}
