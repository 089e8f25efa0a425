/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lcore loop: run to completion. Each worker polls the (port, queue)
 * pairs it owns, validates and processes every datagram in place in its
 * mbuf, and sends the reply from the same mbuf on the queue it came in on,
 * through a TX buffer drained at least every drain_us. No locks, no
 * allocation; the only syscalls are the PMD's own (AF_XDP wake-ups).
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include "server.h"

const char *const srv_dp_drop_names[SRV_DP_DROP_MAX] = {
#define SRV_DP_NAME(e, s) [SRV_DP_DROP_##e] = s,
	SRV_DP_DROP_REASONS(SRV_DP_NAME)
#undef SRV_DP_NAME
};

/* OXPI probe: answered with the same bytes but "OXPO", never larger. */
static inline bool
is_probe(const uint8_t *payload, uint16_t len)
{
	return len >= 4 && memcmp(payload, "OXPI", 4) == 0;
}

/* The probe's source within its per-source rate (IPv4 as ::ffff:a.b.c.d). */
static inline bool
probe_allowed(struct srv_worker *w, const struct ox_pkt *p)
{
	uint8_t src[16] = { [10] = 0xff, [11] = 0xff };

	if (p->ipv6)
		memcpy(src, ((const struct rte_ipv6_hdr *)(p->frame + p->l3_off))->src_addr, 16);
	else
		memcpy(src + 12, &((const struct rte_ipv4_hdr *)(p->frame + p->l3_off))->src_addr,
		       4);
	return ox_ratelimit_take(w->probe_rl, src, w->now_ns) == OX_RL_ALLOW;
}

static inline void
handle(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m)
{
	struct ox_pkt p;
	uint16_t old_w, new_w;
	uint8_t *payload;
	int r, csum;

	/* The PMDs we run on hand over single-segment mbufs; a chained one
	 * would need a linearising copy we do not do on this path. */
	if (unlikely(m->nb_segs != 1)) {
		srv_drop_dp(w, m, SRV_DP_DROP_MULTI_SEGMENT);
		return;
	}
	r = ox_pkt_parse_ports(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, w->ports->be,
			       w->ports->n, &p);
	if (unlikely(r < 0)) {
		srv_ctr_add(&w->stats.pkt_drops[-r], 1);
		rte_pktmbuf_free(m);
		return;
	}
	payload = p.frame + p.payload_off;
	if (is_probe(payload, p.payload_len)) {
		if (unlikely(w->probes_off)) {
			srv_drop_dp(w, m, SRV_DP_DROP_PROBES_OFF);
			return;
		}
		/* Nothing authenticates a probe but its UDP checksum. */
		csum = ox_pkt_csum_check(&p);
		if (unlikely(csum < 0)) {
			srv_ctr_add(&w->stats.pkt_drops[-csum], 1);
			rte_pktmbuf_free(m);
			return;
		}
		/* Anyone can ask, with any source: answers per source are
		 * limited, so the relay reflects little toward a victim. */
		if (w->probe_rl != NULL && !probe_allowed(w, &p)) {
			srv_drop_dp(w, m, SRV_DP_DROP_PROBE_LIMITED);
			return;
		}
		ox_pkt_reply(&p);
		memcpy(&old_w, payload + 2, 2);
		payload[3] = 'O';
		memcpy(&new_w, payload + 2, 2);
		/* A partial checksum is no checksum to update: the reply
		 * leaves with a whole one. */
		if (csum == OX_PKT_CSUM_PARTIAL)
			ox_pkt_finish(&p, p.payload_len);
		else
			ox_pkt_csum_update(&p, old_w, new_w);
		/* Ethernet padding is not echoed. */
		m->data_len = p.frame_len;
		m->pkt_len = p.frame_len;
		srv_ctr_add(&w->stats.echo, 1);
		srv_worker_tx(w, s, m);
		return;
	}
	if (w->hook != NULL && w->hook(w, s, m, &p))
		return;
	srv_drop_dp(w, m, SRV_DP_DROP_NOT_OXTUNNEL);
}

/* A packet the kernel routed into the exit TAP: an inner IP packet for a
 * tunnel address. Without a session for it there is nobody to send it to. */
static inline void
handle_tap(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	struct ox_session *sess = NULL;

	if (m->data_len >= sizeof(*eth) + sizeof(struct rte_ipv4_hdr) &&
	    eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);

		sess = ox_sessions_by_v4(w->sessions, rte_be_to_cpu_32(ip->dst_addr));
	} else if (m->data_len >= sizeof(*eth) + sizeof(struct rte_ipv6_hdr) &&
		   eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
		const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)(eth + 1);

		sess = ox_sessions_by_v6(w->sessions, ip6->dst_addr);
	} else {
		srv_drop_dp(w, m, SRV_DP_DROP_TAP_NOT_IP);
		return;
	}
	/* Sessions are made by the relay, whose hook takes the packet on (and
	 * finds one for a subnet routed to a peer). */
	if (w->tap_hook != NULL && w->tap_hook(w, s, m, sess))
		return;
	srv_drop_dp(w, m, SRV_DP_DROP_TAP_NO_SESSION);
}

static inline uint16_t
flush_queue(struct srv_worker *w, struct srv_queue *s)
{
	uint16_t sent;

	if (s->txb->length == 0)
		return 0;
	sent = rte_eth_tx_buffer_flush(s->port_id, s->queue, s->txb);
	if (sent) {
		srv_ctr_add(&s->tx_pkts, sent);
		srv_ctr_add(&w->stats.tx_pkts, sent);
	}
	return sent;
}

unsigned int
srv_worker_flush(struct srv_worker *w)
{
	unsigned int sent = 0;
	uint16_t i;

	for (i = 0; i < w->n_queues_polled; i++)
		sent += flush_queue(w, &w->queues[i]);
	return sent;
}

static void
cpu_mark(struct srv_worker *w, uint64_t tsc)
{
	w->mark_tsc = tsc;
	w->mark_cpu_ns = srv_thread_cpu_ns();
}

/* A turn that came round gap TSC cycles after the one before: counted by
 * size, as the lcore's own pause or as a preemption (its thread ran for
 * less than half of it, by its cpu time since the last mark). The marks
 * are a millisecond apart (a read is a system call, about 7,000 cycles
 * here): short preemptions elsewhere in that millisecond can make a gap
 * near 100 us look preempted; from 1 ms up the split holds. */
static void
loop_gap(struct srv_worker *w, uint64_t now, uint64_t gap)
{
	double ns_per_tsc = 1e9 / rte_get_tsc_hz();
	uint64_t cpu = srv_thread_cpu_ns();
	/* In double: a stall of seconds (SIGSTOP) overflows ns in u64 TSC math. */
	bool preempted = (double)(cpu - w->mark_cpu_ns) + gap * ns_per_tsc / 2 <
			 (now - w->mark_tsc) * ns_per_tsc;
	uint64_t *c = preempted ? w->stats.loop_preempted : w->stats.loop_gaps;
	unsigned int k;

	for (k = 0; k < SRV_LOOP_GAPS && gap > w->gap_tsc[k]; k++)
		srv_ctr_add(&c[k], 1);
	w->mark_tsc = now;
	w->mark_cpu_ns = cpu;
}

int
srv_worker_main(void *arg)
{
	struct srv_worker *w = arg;
	struct rte_mbuf *pkts[SRV_MAX_BURST];
	uint64_t t0, last_drain = rte_rdtsc(), last_turn, bytes;
	unsigned int sent, k;
	uint16_t i, j, n;

	SRV_LOG(INFO, "lcore %u polls %u queue(s)", w->lcore_id, w->n_queues_polled);
	__atomic_store_n(&w->stats.alive_tsc, rte_rdtsc(), __ATOMIC_RELAXED);
	if (w->fifo_prio != 0) {
		struct sched_param sp = { .sched_priority = (int)w->fifo_prio };
		int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

		if (err != 0)
			SRV_LOG(WARNING,
				"lcore %u stays SCHED_OTHER: SCHED_FIFO %u refused: %s "
				"(needs CAP_SYS_NICE)",
				w->lcore_id, w->fifo_prio, strerror(err));
		else
			SRV_LOG(NOTICE, "lcore %u runs SCHED_FIFO at priority %u", w->lcore_id,
				w->fifo_prio);
	}
	if (w->rcu != NULL) {
		rte_rcu_qsbr_thread_register(w->rcu, w->lcore_id);
		rte_rcu_qsbr_thread_online(w->rcu, w->lcore_id);
	}
	for (k = 0; k < SRV_LOOP_GAPS; k++)
		w->gap_tsc[k] = rte_get_tsc_hz() / (k == 0 ? 10000 : k == 1 ? 1000 : 100);
	last_turn = rte_rdtsc();
	cpu_mark(w, last_turn);
	while (likely(!__atomic_load_n(&srv_stop, __ATOMIC_RELAXED))) {
		bool backlog = false;

		t0 = rte_rdtsc();
		if (unlikely(t0 - last_turn > w->gap_tsc[0]))
			loop_gap(w, t0, t0 - last_turn);
		else if (t0 - w->mark_tsc > w->gap_tsc[1])
			cpu_mark(w, t0);
		last_turn = t0;

		for (i = 0; i < w->n_queues_polled; i++) {
			struct srv_queue *s = &w->queues[i];

			t0 = rte_rdtsc();
			n = rte_eth_rx_burst(s->port_id, s->queue, pkts, w->burst);
			if (n == 0)
				continue;
			/* One clock read per burst serves the relay's timers
			 * and the probe rate limit. */
			if (w->relay != NULL || w->probe_rl != NULL)
				w->now_ns = ox_mono_ns();
			bytes = 0;
			for (j = 0; j < n && j < SRV_PREFETCH_AHEAD; j++)
				rte_prefetch0(rte_pktmbuf_mtod(pkts[j], void *));
			if (w->burst_hook != NULL && !s->tap)
				w->burst_hook(w, pkts, n);
			for (j = 0; j < n; j++) {
				if (j + SRV_PREFETCH_AHEAD < n)
					rte_prefetch0(rte_pktmbuf_mtod(pkts[j + SRV_PREFETCH_AHEAD],
								       void *));
				bytes += pkts[j]->pkt_len;
				if (s->tap)
					handle_tap(w, s, pkts[j]);
				else
					handle(w, s, pkts[j]);
			}
			/* What the hooks staged over the burst (the relay's opens and
			 * seals, each in one submission) is finished now. */
			if (w->stage_hook != NULL)
				w->stage_hook(w);
			/* A short burst means the queue is empty: send now rather
			 * than hold replies for the drain timer, on every queue (the
			 * relay sends from the TX queue and the TAP, not only here). */
			if (n < w->burst)
				srv_worker_flush(w);
			else
				backlog = true;
			srv_ctr_add(&w->stats.rx_pkts, n);
			srv_ctr_add(&w->stats.rx_bytes, bytes);
			srv_ctr_add(&s->rx_pkts, n);
			srv_ctr_add(&w->stats.busy_cycles, rte_rdtsc() - t0);
		}
		if (unlikely(rte_rdtsc() - last_drain > w->drain_tsc)) {
			t0 = rte_rdtsc();
			sent = srv_worker_flush(w);
			last_drain = rte_rdtsc();
			__atomic_store_n(&w->stats.alive_tsc, last_drain, __ATOMIC_RELAXED);
			if (sent)
				srv_ctr_add(&w->stats.busy_cycles, last_drain - t0);
		}
		if (w->inbox != NULL) {
			n = rte_ring_sc_dequeue_burst(w->inbox, (void **)pkts, w->burst, NULL);
			if (n)
				w->now_ns = ox_mono_ns();
			for (j = 0; j < n; j++)
				relay_inbox(w, pkts[j]);
			if (n) {
				if (w->stage_hook != NULL)
					w->stage_hook(w);
				srv_worker_flush(w);
			}
		}
		/* A handshake between bursts, when no queue is backlogged: DATA
		 * waits for one at most. */
		if (w->hs_engine != NULL && !backlog) {
			t0 = rte_rdtsc();
			if (relay_worker_hs(w) != 0)
				srv_ctr_add(&w->stats.busy_cycles, rte_rdtsc() - t0);
		}
		if (w->poll_hook != NULL)
			w->poll_hook(w);
		/* No session pointer is held past this point of the loop. */
		if (w->rcu != NULL)
			rte_rcu_qsbr_quiescent(w->rcu, w->lcore_id);
	}
	srv_worker_flush(w);
	if (w->rcu != NULL) {
		rte_rcu_qsbr_thread_offline(w->rcu, w->lcore_id);
		rte_rcu_qsbr_thread_unregister(w->rcu, w->lcore_id);
	}
	return 0;
}

/* Counted by the TX buffer when the queue stays full: the packet is gone. */
static void
tx_drop_cb(struct rte_mbuf **pkts, uint16_t unsent, void *userdata)
{
	struct srv_worker *w = userdata;
	uint16_t i;
	uint64_t bytes = 0;

	for (i = 0; i < unsent; i++)
		bytes += pkts[i]->pkt_len;
	srv_ctr_add(&w->stats.dp_drops[SRV_DP_DROP_TX_FULL], unsent);
	srv_ctr_add(&w->stats.tx_bytes, (uint64_t)0 - bytes); /* counted at enqueue */
	rte_pktmbuf_free_bulk(pkts, unsent);
}

int
srv_worker_init_txb(struct srv_worker *w, struct srv_queue *s)
{
	s->txb = rte_zmalloc_socket("ox_txb", RTE_ETH_TX_BUFFER_SIZE(w->burst), 0,
				    rte_lcore_to_socket_id(w->lcore_id));
	if (s->txb == NULL)
		return -ENOMEM;
	rte_eth_tx_buffer_init(s->txb, w->burst);
	rte_eth_tx_buffer_set_err_callback(s->txb, tx_drop_cb, w);
	return 0;
}

void
srv_stats_sum(const struct srv_server *srv, struct srv_lcore_stats *sum)
{
	unsigned int i, k;

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < srv->n_workers; i++) {
		const struct srv_lcore_stats *st = &srv->workers[i]->stats;

		sum->rx_pkts += __atomic_load_n(&st->rx_pkts, __ATOMIC_RELAXED);
		sum->rx_bytes += __atomic_load_n(&st->rx_bytes, __ATOMIC_RELAXED);
		sum->tx_pkts += __atomic_load_n(&st->tx_pkts, __ATOMIC_RELAXED);
		sum->tx_bytes += __atomic_load_n(&st->tx_bytes, __ATOMIC_RELAXED);
		sum->echo += __atomic_load_n(&st->echo, __ATOMIC_RELAXED);
		sum->busy_cycles += __atomic_load_n(&st->busy_cycles, __ATOMIC_RELAXED);
		for (k = 0; k < SRV_LOOP_GAPS; k++) {
			sum->loop_gaps[k] += __atomic_load_n(&st->loop_gaps[k], __ATOMIC_RELAXED);
			sum->loop_preempted[k] +=
				__atomic_load_n(&st->loop_preempted[k], __ATOMIC_RELAXED);
		}
		for (k = 0; k < OX_PKT_DROP_MAX; k++)
			sum->pkt_drops[k] += __atomic_load_n(&st->pkt_drops[k], __ATOMIC_RELAXED);
		for (k = 0; k < SRV_DP_DROP_MAX; k++)
			sum->dp_drops[k] += __atomic_load_n(&st->dp_drops[k], __ATOMIC_RELAXED);
		for (k = 0; k < OX_DROP_MAX; k++)
			sum->ox_drops[k] += __atomic_load_n(&st->ox_drops[k], __ATOMIC_RELAXED);
		for (k = 0; k < RELAY_CTR_MAX; k++)
			sum->relay[k] += __atomic_load_n(&st->relay[k], __ATOMIC_RELAXED);
	}
}
