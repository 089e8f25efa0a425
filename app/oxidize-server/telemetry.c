/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rte_telemetry commands:
 *   /oxidize/stats  totals and per-lcore counters, every drop reason,
 *                   busy cycles per packet
 *   /oxidize/ports  per port: interface, queue, copy mode, UMEM, XDP mode,
 *                   packets in and out
 *   /oxidize/relay  sessions, handshakes, cookies, allow-list reloads,
 *                   handshake drops by reason
 *   /oxidize/xdp    ox_steer: redirected, and left to the kernel by reason
 *   /oxidize/health healthy or not and why: what a fleet's route announcer
 *                   (usertools/oxidize-anycast.py) asks before announcing
 * Read with usertools/dpdk-telemetry.py -f <file-prefix>. Counters are
 * single-writer per lcore; this reader sums them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "relay.h"

const char *const relay_hs_drop_names[RELAY_HS_MAX] = {
#define RELAY_HS_NAME(e, s) [RELAY_HS_##e] = s,
	RELAY_HS_DROPS(RELAY_HS_NAME)
#undef RELAY_HS_NAME
};

/* rte_telemetry callbacks take no user pointer: one server per process. */
static struct srv_server *tel_srv;

/* One counter of a reason list: the key is prefix + the reason's name. */
static void
put_reason(struct rte_tel_data *d, const char *prefix, const char *name, uint64_t v)
{
	char key[64];

	snprintf(key, sizeof(key), "%s%s", prefix, name);
	rte_tel_data_add_dict_u64(d, key, v);
}

static void
put_stats(struct rte_tel_data *d, const struct srv_lcore_stats *st)
{
	unsigned int k;

#define PUT_LCORE(n) rte_tel_data_add_dict_u64(d, #n, st->n);
	PUT_LCORE(rx_pkts)
	PUT_LCORE(rx_bytes)
	PUT_LCORE(tx_pkts)
	PUT_LCORE(tx_bytes)
	PUT_LCORE(echo)
	PUT_LCORE(busy_cycles)
#undef PUT_LCORE
	rte_tel_data_add_dict_u64(d, "busy_cycles_per_pkt",
				  st->rx_pkts ? st->busy_cycles / st->rx_pkts : 0);
	for (k = 0; k < SRV_LOOP_GAPS; k++) {
		static const char *const over[SRV_LOOP_GAPS] = { "100us", "1ms", "10ms" };

		put_reason(d, "loop_gaps_over_", over[k], st->loop_gaps[k]);
		put_reason(d, "loop_preempted_over_", over[k], st->loop_preempted[k]);
	}
	for (k = 1; k < OX_PKT_DROP_MAX; k++)
		put_reason(d, "drop_", ox_pkt_drop_names[k], st->pkt_drops[k]);
	for (k = 0; k < SRV_DP_DROP_MAX; k++)
		put_reason(d, "drop_", srv_dp_drop_names[k], st->dp_drops[k]);
	for (k = 1; k < OX_DROP_MAX; k++)
		put_reason(d, "drop_ox_", ox_drop_name((int)k), st->ox_drops[k]);
	for (k = 0; k < RELAY_CTR_MAX; k++)
		rte_tel_data_add_dict_u64(d, relay_ctr_names[k], st->relay[k]);
}

static int
tel_stats(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	struct srv_lcore_stats sum, one;
	struct rte_tel_data *c;
	char key[32];
	unsigned int i;

	rte_tel_data_start_dict(d);
	srv_stats_sum(tel_srv, &sum);
	c = rte_tel_data_alloc();
	if (c == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(c);
	put_stats(c, &sum);
	rte_tel_data_add_dict_container(d, "total", c, 0);
	/* Pool occupancy: the RX rings hold the baseline; anything above it
	 * is in flight (or leaked, if it never comes down). */
	rte_tel_data_add_dict_u64(d, "mbufs_in_use", rte_mempool_in_use_count(tel_srv->pool));
	rte_tel_data_add_dict_u64(d, "mbufs_baseline", tel_srv->baseline_in_use);
	rte_tel_data_add_dict_u64(d, "mbufs_total", tel_srv->pool->size);
	for (i = 0; i < tel_srv->n_workers; i++) {
		struct srv_server one_srv = { .n_workers = 1 };

		one_srv.workers[0] = tel_srv->workers[i];
		srv_stats_sum(&one_srv, &one);
		c = rte_tel_data_alloc();
		if (c == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(c);
		put_stats(c, &one);
		snprintf(key, sizeof(key), "lcore_%u", tel_srv->workers[i]->lcore_id);
		rte_tel_data_add_dict_container(d, key, c, 0);
	}
	return 0;
}

static void
queue_counts(uint16_t port_id, uint64_t *rx, uint64_t *tx)
{
	unsigned int i, j;

	*rx = 0;
	*tx = 0;
	for (i = 0; i < tel_srv->n_workers; i++) {
		const struct srv_worker *w = tel_srv->workers[i];

		for (j = 0; j < w->n_queues_polled; j++) {
			if (w->queues[j].port_id != port_id)
				continue;
			*rx += __atomic_load_n(&w->queues[j].rx_pkts, __ATOMIC_RELAXED);
			*tx += __atomic_load_n(&w->queues[j].tx_pkts, __ATOMIC_RELAXED);
		}
	}
}

static int
tel_ports(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	struct rte_tel_data *c;
	struct rte_eth_stats es;
	uint64_t rx, tx;
	char key[32];
	uint16_t i;

	rte_tel_data_start_dict(d);
	for (i = 0; i < tel_srv->n_ports; i++) {
		const struct srv_port_info *p = &tel_srv->ports[i];

		c = rte_tel_data_alloc();
		if (c == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(c);
		rte_tel_data_add_dict_string(c, "name", p->name);
		rte_tel_data_add_dict_string(c, "iface", p->iface);
		rte_tel_data_add_dict_u64(c, "queue", p->queue);
		rte_tel_data_add_dict_u64(c, "queues", p->n_queues);
		rte_tel_data_add_dict_string(c, "mode", p->copy_mode);
		rte_tel_data_add_dict_string(c, "umem", p->umem);
		rte_tel_data_add_dict_string(c, "xdp", p->xdp_mode);
		queue_counts(p->port_id, &rx, &tx);
		rte_tel_data_add_dict_u64(c, "rx_pkts", rx);
		rte_tel_data_add_dict_u64(c, "tx_pkts", tx);
		if (rte_eth_stats_get(p->port_id, &es) == 0) {
			rte_tel_data_add_dict_u64(c, "pmd_ipackets", es.ipackets);
			rte_tel_data_add_dict_u64(c, "pmd_opackets", es.opackets);
			rte_tel_data_add_dict_u64(c, "pmd_imissed", es.imissed);
			rte_tel_data_add_dict_u64(c, "pmd_oerrors", es.oerrors);
		}
		snprintf(key, sizeof(key), "port_%u", p->port_id);
		rte_tel_data_add_dict_container(d, key, c, 0);
	}
	return 0;
}

static int
tel_relay(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	relay_telemetry(tel_srv, d);
	return 0;
}

/* An engine's sampled cpu time (ns) per sample, in cpu cycles (0: none
 * yet): accepted INITs, or its X25519 steps. */
static uint64_t
cpu_per(const uint64_t *ns, const uint64_t *n, double tsc_ghz)
{
	uint64_t k = __atomic_load_n(n, __ATOMIC_RELAXED);

	return k ? (uint64_t)(__atomic_load_n(ns, __ATOMIC_RELAXED) * tsc_ghz / k) : 0;
}

/* The handshake engines, one entry each: [0] is the control thread. */
static int
tel_engines(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	static const char *const names[] = {
		"judged",
		"accepted",
		"cycles_per_accepted",
		"cycles_per_refused",
		"cpu_cycles_per_accepted",
		"done_full",
		"indexes_reserved",
		"index_waits",
		"turns_over_100us",
		"x25519_cpu_cycles",
		"x25519_base_cpu_cycles",
	};
	double tsc_ghz = rte_get_tsc_hz() / 1e9;
	const struct srv_relay *r = tel_srv->relay;
	unsigned int i, k;

	rte_tel_data_start_dict(d);
	if (r == NULL)
		return 0;
	for (k = 0; k < RTE_DIM(names); k++) {
		struct rte_tel_data *a = rte_tel_data_alloc();

		if (a == NULL)
			return -ENOMEM;
		rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
		for (i = 0; i < r->n_engines; i++) {
			const struct relay_hs_engine *e = r->engines[i];
			uint64_t judged = __atomic_load_n(&e->judged, __ATOMIC_RELAXED);
			uint64_t ok = __atomic_load_n(&e->accepted, __ATOMIC_RELAXED);
			uint64_t v[] = {
				judged,
				ok,
				ok ? __atomic_load_n(&e->cycles_ok, __ATOMIC_RELAXED) / ok : 0,
				judged > ok ? __atomic_load_n(&e->cycles_bad, __ATOMIC_RELAXED) /
						      (judged - ok)
					    : 0,
				cpu_per(&e->cpu_ok, &e->cpu_ok_n, tsc_ghz),
				__atomic_load_n(&e->done_full, __ATOMIC_RELAXED),
				rte_ring_count(e->stash) + e->n_spare,
				__atomic_load_n(&e->stash_waits, __ATOMIC_RELAXED),
				__atomic_load_n(&e->long_turns, __ATOMIC_RELAXED),
				cpu_per(&e->x_var_cpu, &e->x_var_n, tsc_ghz),
				cpu_per(&e->x_base_cpu, &e->x_base_n, tsc_ghz),
			};

			rte_tel_data_add_array_u64(a, v[k]);
		}
		rte_tel_data_add_dict_container(d, names[k], a, 0);
	}
	return 0;
}

/* ox_steer's view: what the XDP program handed over and what it left to
 * the kernel, by reason. */
static int
tel_xdp(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	uint64_t v[OX_STEER_STAT_MAX];
	unsigned int k;

	rte_tel_data_start_dict(d);
	if (!tel_srv->use_flash || ox_flash_steer_stats(&tel_srv->flash, v) != 0)
		return 0;
	rte_tel_data_add_dict_string(d, "mode", tel_srv->flash.xdp_mode);
	rte_tel_data_add_dict_u64(d, "prog_id", tel_srv->flash.xdp_prog_id);
	for (k = 0; k < OX_STEER_STAT_MAX; k++)
		rte_tel_data_add_dict_u64(d, ox_flash_steer_stat_names[k], v[k]);
	return 0;
}

/* A loop that has not come round for this long is stuck. */
#define HEALTH_STALL_MS 1000

/* One more reason, after the others. */
static void __attribute__((format(printf, 4, 5)))
why_add(char *why, size_t len, unsigned int *n, const char *fmt, ...)
{
	size_t off = strlen(why);
	va_list ap;

	if (off > 0 && off + 2 < len) {
		memcpy(why + off, "; ", 3);
		off += 2;
	}
	va_start(ap, fmt);
	if (off < len)
		vsnprintf(why + off, len - off, fmt, ap);
	va_end(ap);
	(*n)++;
}

/*
 * Healthy: running and not stopping, every worker lcore and the control
 * thread (handshakes) coming round, every port's link up, mbufs left in
 * the pool. Read from the telemetry thread: a stuck lcore cannot hide.
 * Under load (cookies required, the handshake queue filling, the pool
 * nearly taken) is said beside it, with its reasons, and is not unhealthy.
 */
static int
tel_health(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	const struct srv_server *srv = tel_srv;
	uint64_t now = rte_rdtsc(), hz = rte_get_tsc_hz(), stall = hz * HEALTH_STALL_MS / 1000;
	char why[RTE_TEL_MAX_STRING_LEN] = "", load[RTE_TEL_MAX_STRING_LEN] = "";
	unsigned int i, n = 0, n_load = 0;

	if (__atomic_load_n(&srv_stop, __ATOMIC_RELAXED))
		why_add(why, sizeof(why), &n, "stopping");
	for (i = 0; i < srv->n_workers; i++) {
		uint64_t t = __atomic_load_n(&srv->workers[i]->stats.alive_tsc, __ATOMIC_RELAXED);

		/* A loop that came round after our clock read (a busy lcore
		 * stamps every 100 us) is no older than now, not 2^64 old. */
		if (now > t && now - t > stall)
			why_add(why, sizeof(why), &n, "lcore %u stalled %llu ms",
				srv->workers[i]->lcore_id,
				(unsigned long long)((now - t) / (hz / 1000)));
	}
	/* One lcore: its worker loop runs the control work too. */
	if (srv->workers[0]->lcore_id != rte_get_main_lcore()) {
		uint64_t t = __atomic_load_n(&srv->ctl_alive_tsc, __ATOMIC_RELAXED);

		if (now > t && now - t > stall)
			why_add(why, sizeof(why), &n, "control thread stalled %llu ms",
				(unsigned long long)((now - t) / (hz / 1000)));
	}
	for (i = 0; i < srv->n_ports; i++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(srv->ports[i].port_id, &link) == 0 &&
		    link.link_status == RTE_ETH_LINK_DOWN)
			why_add(why, sizeof(why), &n, "port %u link down", srv->ports[i].port_id);
	}
	if (rte_mempool_avail_count(srv->pool) == 0)
		why_add(why, sizeof(why), &n, "mbuf pool exhausted");
	/* Load is reported, never unhealthy: remote traffic alone must not
	 * make a working relay withdraw itself (and its clients move, and the
	 * attacker follow them round a fleet). */
	{
		/* The server's copy: the relay may be freed under us at stop. */
		uint32_t bits = __atomic_load_n(&srv->load_bits, __ATOMIC_RELAXED);

		if (bits & SRV_LOAD_COOKIES)
			why_add(load, sizeof(load), &n_load,
				"initiations above --hs-load-pps or queued: cookies required");
		if (bits & SRV_LOAD_HS_QUEUE)
			why_add(load, sizeof(load), &n_load, "handshake queue over half full");
	}
	if (rte_mempool_in_use_count(srv->pool) > srv->pool->size / 10 * 9)
		why_add(load, sizeof(load), &n_load, "mbuf pool over 90%% in use");
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "healthy", n == 0);
	rte_tel_data_add_dict_string(d, "reasons", n ? why : "none");
	rte_tel_data_add_dict_u64(d, "under_load", n_load != 0);
	rte_tel_data_add_dict_string(d, "load", n_load ? load : "none");
	rte_tel_data_add_dict_u64(d, "uptime_s",
				  (rte_get_timer_cycles() - srv->start_tsc) / rte_get_timer_hz());
	return 0;
}

/*
 * /oxidize/peers[,START]: every listed key from START on, PEERS_PAGE at a
 * time (a million peers read page by page, "next" says where), each with
 * its name, protocol, endpoint, addresses, last handshake, session age and
 * counters. The allow-list and the sessions are the control thread's: this
 * thread leaves it the request and waits (2 s at most) for its answer.
 */
static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;

static int
tel_peers(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	struct srv_relay *r = tel_srv->relay;
	struct relay_peers_req *q;
	uint32_t want = PEERS_CANCELLED, state;
	unsigned long start = 0;
	char *end = NULL;
	int i;

	/* A stopping server frees the relay: no request left for it then. */
	if (r == NULL || __atomic_load_n(&srv_stop, __ATOMIC_RELAXED))
		return -ENOTSUP;
	if (params != NULL && params[0] != '\0') {
		start = strtoul(params, &end, 10);
		if (end == params || *end != '\0' || start > UINT32_MAX)
			return -EINVAL;
	}
	q = &r->peers_req;
	pthread_mutex_lock(&peers_lock);
	rte_tel_data_start_dict(d);
	q->d = d;
	q->start = (uint32_t)start;
	__atomic_store_n(&q->state, PEERS_ASKED, __ATOMIC_RELEASE);
	for (i = 0; i < 2000; i++) {
		state = __atomic_load_n(&q->state, __ATOMIC_ACQUIRE);
		if (state == PEERS_DONE)
			break;
		rte_delay_us_sleep(1000);
	}
	/* Not taken in time (a stalled control thread): cancelled, unless the
	 * control thread is filling d now, which it finishes. */
	if (state != PEERS_DONE) {
		uint32_t asked = PEERS_ASKED;

		if (!__atomic_compare_exchange_n(&q->state, &asked, want, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			while (__atomic_load_n(&q->state, __ATOMIC_ACQUIRE) != PEERS_DONE)
				rte_delay_us_sleep(100);
	}
	state = __atomic_load_n(&q->state, __ATOMIC_ACQUIRE);
	__atomic_store_n(&q->state, PEERS_IDLE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&peers_lock);
	return state == PEERS_DONE ? 0 : -ETIMEDOUT;
}

static void
peer_dict(struct srv_relay *r, const struct ox_allow_entry *e, uint64_t now, struct rte_tel_data *c)
{
	struct relay_peer_status st;
	struct ox_tunnel_addr a;
	char s4[INET_ADDRSTRLEN] = "", s6[INET6_ADDRSTRLEN] = "", ep[64] = "";
	void *data;
	uint32_t v4;

	char groups[RTE_TEL_MAX_STRING_LEN] = "";
	size_t o = 0, len;
	unsigned int g;

	rte_tel_data_start_dict(c);
	rte_tel_data_add_dict_string(c, "name", e->name[0] ? e->name : "-");
	/* Its groups, as many as a telemetry string holds, then "...". */
	for (g = 0; g < r->allow->n_groups; g++) {
		if (!(e->groups & (1ull << g)))
			continue;
		len = strlen(r->allow->group[g]) + (o ? 1 : 0);
		if (o + len + 4 >= sizeof(groups)) {
			snprintf(groups + o, sizeof(groups) - o, "%s...", o ? "," : "");
			break;
		}
		o += (size_t)snprintf(groups + o, sizeof(groups) - o, "%s%s", o ? "," : "",
				      r->allow->group[g]);
	}
	rte_tel_data_add_dict_string(c, "groups", groups);
	/* Its line's policy: rate= (bits a second, 0: none), expires= (UNIX
	 * time, 0: never). */
	rte_tel_data_add_dict_u64(c, "rate_bps", e->rate);
	rte_tel_data_add_dict_u64(c, "expires", (uint64_t)e->expires);
	rte_tel_data_add_dict_u64(c, "expired", ox_allow_entry_expired(e));
	if (ox_addrpool_find(r->pool, e->key, &a) == 0) {
		v4 = htonl(a.v4);
		inet_ntop(AF_INET, &v4, s4, sizeof(s4));
		inet_ntop(AF_INET6, a.v6, s6, sizeof(s6));
	}
	rte_tel_data_add_dict_string(c, "v4", s4);
	rte_tel_data_add_dict_string(c, "v6", s6);
	if (rte_hash_lookup_data(r->by_key, e->key, &data) < 0) {
		rte_tel_data_add_dict_u64(c, "connected", 0);
		return;
	}
	relay_peer_status(r, data, now, &st);
	relay_ep_str(&st.ep, ep, sizeof(ep));
	rte_tel_data_add_dict_u64(c, "connected", 1);
	rte_tel_data_add_dict_string(c, "proto", relay_protos[st.proto]->name);
	rte_tel_data_add_dict_string(c, "endpoint", ep);
	rte_tel_data_add_dict_u64(c, "last_handshake", st.hs_realtime_ns / 1000000000u);
	rte_tel_data_add_dict_u64(c, "age_s", st.age_ns / 1000000000u);
	rte_tel_data_add_dict_u64(c, "rx_pkts", st.rx_pkts);
	rte_tel_data_add_dict_u64(c, "rx_bytes", st.rx_bytes);
	rte_tel_data_add_dict_u64(c, "tx_pkts", st.tx_pkts);
	rte_tel_data_add_dict_u64(c, "tx_bytes", st.tx_bytes);
	rte_tel_data_add_dict_u64(c, "c2c_refused", st.c2c_refused);
	rte_tel_data_add_dict_u64(c, "rate_drops_from", st.rate_in_dropped);
	rte_tel_data_add_dict_u64(c, "rate_drops_to", st.rate_out_dropped);
}

void
relay_peers_answer(struct srv_relay *r, uint64_t now)
{
	struct relay_peers_req *q = &r->peers_req;
	uint32_t asked = PEERS_ASKED, i, end;
	char key[OX_KEY_B64_LEN + 1];

	if (__atomic_load_n(&q->state, __ATOMIC_ACQUIRE) != PEERS_ASKED ||
	    !__atomic_compare_exchange_n(&q->state, &asked, PEERS_BUSY, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	end = q->start + PEERS_PAGE < r->allow->n ? q->start + PEERS_PAGE : r->allow->n;
	rte_tel_data_add_dict_u64(q->d, "total", r->allow->n);
	rte_tel_data_add_dict_u64(q->d, "start", q->start);
	rte_tel_data_add_dict_int(q->d, "next", end < r->allow->n ? (int)end : -1);
	/* One dict per peer, named by its allow-list position: a base64 key
	 * is no telemetry name ('+', '/', '='), and DPDK nests one level. */
	for (i = q->start; i < end; i++) {
		struct rte_tel_data *c = rte_tel_data_alloc();
		char name[32];

		if (c == NULL)
			break;
		peer_dict(r, &r->allow->e[i], now, c);
		ox_key_to_base64(key, r->allow->e[i].key);
		rte_tel_data_add_dict_string(c, "key", key);
		snprintf(name, sizeof(name), "peer_%u", i);
		rte_tel_data_add_dict_container(q->d, name, c, 0);
	}
	__atomic_store_n(&q->state, PEERS_DONE, __ATOMIC_RELEASE);
}

int
srv_telemetry_register(struct srv_server *srv)
{
	int ret;

	tel_srv = srv;
	ret = rte_telemetry_register_cmd(
		"/oxidize/stats", tel_stats,
		"Returns totals and per-lcore counters. Takes no parameters");
	if (ret == 0)
		ret = rte_telemetry_register_cmd(
			"/oxidize/ports", tel_ports,
			"Returns per-port interface, queue, mode and counters. No parameters");
	if (ret == 0)
		ret = rte_telemetry_register_cmd("/oxidize/relay", tel_relay,
						 "Relay: sessions, handshakes, cookies, handshake "
						 "drops by reason. No parameters");
	if (ret == 0)
		ret = rte_telemetry_register_cmd(
			"/oxidize/engines", tel_engines,
			"Relay: per handshake engine ([0] the control thread) INITs judged, "
			"accepted, cycles each, queued. No parameters");
	if (ret == 0)
		ret = rte_telemetry_register_cmd(
			"/oxidize/xdp", tel_xdp,
			"Returns ox_steer's redirect and per-reason pass counters. No parameters");
	if (ret == 0)
		ret = rte_telemetry_register_cmd(
			"/oxidize/health", tel_health,
			"Returns healthy (1/0) and the reasons it is not. No parameters");
	if (ret == 0)
		ret = rte_telemetry_register_cmd(
			"/oxidize/peers", tel_peers,
			"Returns a page of listed peers from START, with status and counters; "
			"next: the next page's START (-1: none). Parameter: START");
	return ret;
}

void
relay_telemetry(const struct srv_server *srv, struct rte_tel_data *d)
{
	const struct srv_relay *r = srv->relay;
	uint64_t cyc_ok = 0, cyc_bad = 0, cpu_ok = 0, cpu_ok_n = 0, done_full = 0;
	uint64_t xb = 0, xb_n = 0, xv = 0, xv_n = 0;
	unsigned int k;

	rte_tel_data_add_dict_u64(d, "sessions", ox_sessions_count(srv->sessions));
	if (r == NULL)
		return;
	rte_tel_data_add_dict_u64(d, "handshakes", r->hs_ok);
	rte_tel_data_add_dict_u64(d, "handshakes_new", r->hs_new);
	rte_tel_data_add_dict_u64(d, "handshakes_rekey", r->hs_rekey);
	rte_tel_data_add_dict_u64(d, "cookies_sent", r->cookies);
	rte_tel_data_add_dict_u64(d, "exit_policy_rebuilds", r->exitw.rebuilds);
	rte_tel_data_add_dict_u64(d, "exit_policy_errors", r->exitw.errors);
	rte_tel_data_add_dict_u64(d, "static_static_precomputed", r->precomputed);
	rte_tel_data_add_dict_u64(d, "routed_prefixes", r->srv->n_peer_routes);
	rte_tel_data_add_dict_u64(d, "route_errors", r->route_errors);
	rte_tel_data_add_dict_u64(d, "under_load", r->under_load);
	rte_tel_data_add_dict_u64(d, "under_load_polls", r->under_load_polls);
	/* Engines' cycles over every engine, and the control thread's for
	 * finishing: what a handshake costs the relay, wherever it ran. */
	for (k = 0; k < r->n_engines; k++) {
		const struct relay_hs_engine *e = r->engines[k];

		cyc_ok += __atomic_load_n(&e->cycles_ok, __ATOMIC_RELAXED);
		cpu_ok += __atomic_load_n(&e->cpu_ok, __ATOMIC_RELAXED);
		cpu_ok_n += __atomic_load_n(&e->cpu_ok_n, __ATOMIC_RELAXED);
		cyc_bad += __atomic_load_n(&e->cycles_bad, __ATOMIC_RELAXED);
		done_full += __atomic_load_n(&e->done_full, __ATOMIC_RELAXED);
		xb += __atomic_load_n(&e->x_base_cpu, __ATOMIC_RELAXED);
		xb_n += __atomic_load_n(&e->x_base_n, __ATOMIC_RELAXED);
		xv += __atomic_load_n(&e->x_var_cpu, __ATOMIC_RELAXED);
		xv_n += __atomic_load_n(&e->x_var_n, __ATOMIC_RELAXED);
	}
	rte_tel_data_add_dict_u64(d, "hs_engines", r->n_engines);
	rte_tel_data_add_dict_u64(d, "hs_waiting", rte_ring_count(r->hs_in));
	rte_tel_data_add_dict_u64(d, "hs_cycles_per_accepted",
				  r->hs_ok ? (cyc_ok + r->cycles_fin) / r->hs_ok : 0);
	/* The same from the threads' cpu time: what it costs where the
	 * engines share their cpus with other work (less what reading it
	 * adds: hs_cpu_read_ns a turn). */
	rte_tel_data_add_dict_u64(d, "hs_cpu_cycles_per_accepted",
				  cpu_ok_n && r->cpu_fin_n
					  ? (uint64_t)(((double)cpu_ok / cpu_ok_n +
							(double)r->cpu_fin / r->cpu_fin_n) *
						       (rte_get_tsc_hz() / 1e9))
					  : 0);
	/* The X25519 floor in situ: three variable-base and one fixed-base
	 * multiplications, each as the engines' sampled answer steps took
	 * them, in the same turns as the handshakes above. */
	rte_tel_data_add_dict_u64(d, "hs_floor_cpu_cycles",
				  xb_n && xv_n ? (uint64_t)((3.0 * xv / xv_n + (double)xb / xb_n) *
							    (rte_get_tsc_hz() / 1e9))
					       : 0);
	rte_tel_data_add_dict_u64(d, "hs_cpu_read_ns", relay_cpu_read_ns);
	rte_tel_data_add_dict_u64(d, "hs_cycles_per_refused", r->n_bad ? cyc_bad / r->n_bad : 0);
	rte_tel_data_add_dict_u64(d, "hs_refused", r->n_bad);
	rte_tel_data_add_dict_u64(d, "hs_done_queue_full", done_full);
	rte_tel_data_add_dict_u64(d, "index_stash_errors", r->stash_errors);
	rte_tel_data_add_dict_u64(d, "sessions_reaped", r->reaped);
	rte_tel_data_add_dict_u64(d, "sessions_removed", r->removed);
	rte_tel_data_add_dict_u64(d, "allowlist_keys", r->allow_keys);
	rte_tel_data_add_dict_u64(d, "allowlist_reloads", r->reloads);
	rte_tel_data_add_dict_u64(d, "allowlist_reload_errors", r->reload_errors);
	rte_tel_data_add_dict_u64(d, "allowlist_reload_ms", r->reload_ms);
	rte_tel_data_add_dict_u64(d, "allowlist_reload_cpu_ms", r->reload_cpu_ms);
	for (k = 0; k < RELAY_PROTO_MAX; k++) {
		put_reason(d, "sessions_", relay_protos[k]->name, r->sessions_by_proto[k]);
		put_reason(d, "handshakes_", relay_protos[k]->name, r->hs_by_proto[k]);
	}
	for (k = 1; k < OX_DROP_MAX; k++)
		put_reason(d, "hs_drop_", ox_drop_name((int)k), r->hs_drops[k]);
	for (k = 0; k < RELAY_HS_MAX; k++)
		put_reason(d, "hs_drop_", relay_hs_drop_names[k], r->relay_hs_drops[k]);
}
