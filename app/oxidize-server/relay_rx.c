/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay, receive and dispatch: the worker hook has every datagram to
 * the port classified by its wire protocol (relay_proto.h); DATA is opened
 * on its session's owner lcore (handed over if it arrived elsewhere), its
 * inner packet goes to another client or out through the exit TAP after
 * the exit policy; handshake messages that pass the protocol's cheap checks
 * go to the control thread; the inbox takes what other lcores hand over.
 */
#include <string.h>

#include <stddef.h>

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_udp.h>

#include "relay.h"

/* Trim m to the plaintext [off, off + len). */
static inline void
to_plaintext(struct rte_mbuf *m, uint16_t off, uint16_t len)
{
	rte_pktmbuf_adj(m, off);
	rte_pktmbuf_trim(m, (uint16_t)(m->data_len - len));
}

/* ------------------------------------------------------------ lookups */

/*
 * What the packet path reads of a session, asked of memory ahead of its
 * turn: at 100,000 sessions each is a cache miss, and taken one packet
 * after another they add up to more than the rest of the packet's work.
 */
static inline void
prefetch_src(struct ox_session *sess)
{
	const struct relay_sess *rs = ox_session_priv(sess);
	unsigned int k;

	rte_prefetch0(sess);
	for (k = 0; k < RTE_DIM(rs->peer.kp); k++) {
		rte_prefetch0(&rs->peer.kp[k].recv_key);
		rte_prefetch0(&rs->peer.kp[k].local_index);
	}
	rte_prefetch0(&rs->peer.cur);
	rte_prefetch0(&rs->ep);
	rte_prefetch0(&rs->owner);
	rte_prefetch0(&rs->rx_pkts);
}

static inline void
prefetch_dst(const struct relay_stage *st, struct ox_session *sess)
{
	const struct relay_sess *rs = ox_session_priv(sess);

	rte_prefetch0(&rs->tx[0]);
	rte_prefetch0(&rs->tx[1]);
	rte_prefetch0(&rs->tx_cur);
	rte_prefetch0(&rs->ep);
	rte_prefetch0(&st->txc[sess->slot]);
}

/* The receiver index of a DATA message in frame m, read where it is when
 * the frame is what a client sends (IPv4 or IPv6, UDP): only a guess, to
 * look up ahead; relay_rx() looks at what classify() found. */
static inline int
peek_index(const struct rte_mbuf *m, uint32_t *index)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t off, v;

	if (m->data_len < RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr))
		return -1;
	if (d[12] == 0x08 && d[13] == 0x00)
		off = RTE_ETHER_HDR_LEN + (d[RTE_ETHER_HDR_LEN] & 0xfu) * 4u;
	else if (d[12] == 0x86 && d[13] == 0xdd)
		off = RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv6_hdr);
	else
		return -1;
	off += sizeof(struct rte_udp_hdr) + 4; /* both protocols' DATA: index at 4 */
	if (off + sizeof(v) > m->data_len)
		return -1;
	memcpy(&v, d + off, sizeof(v));
	*index = rte_le_to_cpu_32(v);
	return 0;
}

void
relay_burst(struct srv_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	struct relay_stage *st = w->stage;
	const void *keys[RTE_HASH_LOOKUP_BULK_MAX];
	unsigned int i, k, c, at;
	uint64_t hits;

	st->n_hint = st->hint_next = 0;
	for (i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i < n; i++) {
		if (peek_index(pkts[i], &st->hint_idx[st->n_hint]) != 0)
			continue;
		st->hint_m[st->n_hint++] = pkts[i];
	}
	for (at = 0; at < st->n_hint; at += c) {
		c = RTE_MIN(st->n_hint - at, (unsigned int)RTE_HASH_LOOKUP_BULK_MAX);
		for (k = 0; k < c; k++)
			keys[k] = &st->hint_idx[at + k];
		hits = 0;
		if (rte_hash_lookup_bulk_data(w->relay->by_index, keys, c, &hits,
					      (void **)&st->hint_sess[at]) < 0)
			hits = 0;
		for (k = 0; k < c; k++)
			if (!(hits >> k & 1))
				st->hint_sess[at + k] = NULL;
	}
	for (i = 0; i < st->n_hint && i < RELAY_SESS_AHEAD; i++)
		if (st->hint_sess[i] != NULL)
			prefetch_src(st->hint_sess[i]);
}

/* The session of the receiver index of m: what relay_burst() found for it
 * when it guessed the same index, else a lookup now. */
static inline struct ox_session *
sess_by_index(struct srv_worker *w, struct rte_mbuf *m, uint32_t index)
{
	struct relay_stage *st = w->stage;
	unsigned int h;

	/* Those passed over went no further than the datapath's checks. */
	while (st->hint_next < st->n_hint && st->hint_m[st->hint_next] != m)
		st->hint_next++;
	if (st->hint_next == st->n_hint || st->hint_idx[st->hint_next] != index)
		return by_index(w->relay, index);
	h = st->hint_next++;
	if (h + RELAY_SESS_AHEAD < st->n_hint && st->hint_sess[h + RELAY_SESS_AHEAD] != NULL)
		prefetch_src(st->hint_sess[h + RELAY_SESS_AHEAD]);
	return st->hint_sess[h];
}

/* The session of inner destination daddr: the stage's lookup for the slot
 * being finished when it is the same address, else a lookup now. */
static inline struct ox_session *
dst_by_v4(struct srv_worker *w, uint32_t daddr)
{
	struct relay_stage *st = w->stage;

	if (st->dst_cur < st->n_dst && st->dst_v4[st->dst_cur] == daddr)
		return st->dst_sess[st->dst_cur];
	return ox_sessions_by_v4(w->sessions, daddr);
}

/* The opened stage's inner IPv4 destinations, all at once (a guess from
 * where they are in a plaintext that is an IPv4 packet; forward_inner()
 * uses one only for the address it parsed). */
static void
lookup_dsts(struct srv_worker *w, unsigned int n)
{
	struct relay_stage *st = w->stage;
	unsigned int i;

	for (i = 0; i < n; i++) {
		const struct relay_open_slot *slot = &st->open[i];
		const struct relay_sess *rs = ox_session_priv(slot->sess);
		const uint8_t *pt =
			slot->p.frame + slot->p.payload_off + relay_protos[rs->proto]->data_hdr_len;
		uint32_t v = 0;

		if (slot->p.payload_len >=
			    relay_protos[rs->proto]->data_hdr_len + sizeof(struct rte_ipv4_hdr) &&
		    (pt[0] >> 4) == 4)
			memcpy(&v, pt + offsetof(struct rte_ipv4_hdr, dst_addr), sizeof(v));
		st->dst_v4[i] = rte_be_to_cpu_32(v);
	}
	ox_sessions_by_v4_bulk(w->sessions, st->dst_v4, n, st->dst_sess);
	for (i = 0; i < n && i < RELAY_SESS_AHEAD; i++)
		if (st->dst_sess[i] != NULL)
			prefetch_dst(st, st->dst_sess[i]);
	st->n_dst = n;
}

/* ------------------------------------------------------------- inner */

/* An inner IP packet from a session: to another client, or out the TAP. */
static void
forward_inner(struct srv_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now)
{
	uint8_t *ip = rte_pktmbuf_mtod(m, uint8_t *);
	uint16_t len = (uint16_t)m->data_len, tot;
	struct relay_sess *rs = ox_session_priv(sess);
	struct ox_session *dst, *via = NULL;
	struct rte_ether_hdr *eth;
	int routed = 0;

	if ((ip[0] >> 4) == 4) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;
		uint32_t src, daddr;

		if (unlikely(len < sizeof(*h))) {
			srv_drop_dp(w, m, SRV_DP_DROP_INNER_MALFORMED);
			return;
		}
		/* An IHL below 5 (first byte 0x40..0x44) is no IPv4 header. */
		if (unlikely((ip[0] & 0xf) < 5)) {
			srv_drop_dp(w, m, SRV_DP_DROP_INNER_MALFORMED);
			return;
		}
		tot = rte_be_to_cpu_16(h->total_length);
		if (unlikely(tot < (ip[0] & 0xf) * 4u || tot > len)) {
			srv_drop_dp(w, m, SRV_DP_DROP_INNER_MALFORMED);
			return;
		}
		src = rte_be_to_cpu_32(h->src_addr);
		/* Its own address, or one of the subnets routed to it. */
		if (unlikely(src != sess->addr.v4) &&
		    (relay_route4(w->relay, w->sessions, src, &via) == 0 || via != sess)) {
			srv_drop_dp(w, m, SRV_DP_DROP_SPOOFED_SRC);
			return;
		}
		daddr = rte_be_to_cpu_32(h->dst_addr);
		rte_pktmbuf_trim(m, (uint16_t)(len - tot)); /* padding */
		dst = dst_by_v4(w, daddr);
		if (dst == NULL)
			routed = relay_route4(w->relay, w->sessions, daddr, &dst);
	} else if ((ip[0] >> 4) == 6) {
		struct rte_ipv6_hdr *h = (struct rte_ipv6_hdr *)ip;
		uint32_t tot6;

		if (unlikely(len < sizeof(*h))) {
			srv_drop_dp(w, m, SRV_DP_DROP_INNER_MALFORMED);
			return;
		}
		/* Summed in 32 bits: a payload length near 64 KB must not wrap. */
		tot6 = rte_be_to_cpu_16(h->payload_len) + (uint32_t)sizeof(*h);
		if (unlikely(tot6 > len)) {
			srv_drop_dp(w, m, SRV_DP_DROP_INNER_MALFORMED);
			return;
		}
		tot = (uint16_t)tot6;
		if (unlikely(memcmp(h->src_addr, sess->addr.v6, 16) != 0) &&
		    (relay_route6(w->relay, w->sessions, h->src_addr, &via) == 0 || via != sess)) {
			srv_drop_dp(w, m, SRV_DP_DROP_SPOOFED_SRC);
			return;
		}
		rte_pktmbuf_trim(m, (uint16_t)(len - tot));
		dst = ox_sessions_by_v6(w->sessions, h->dst_addr);
		if (dst == NULL)
			routed = relay_route6(w->relay, w->sessions, h->dst_addr, &dst);
	} else {
		drop_ox(w, m, -OX_DROP_BAD_INNER);
		return;
	}
	if (unlikely(m->data_len > w->relay->srv->conf.mtu)) {
		srv_drop_dp(w, m, SRV_DP_DROP_INNER_TOO_BIG);
		return;
	}
	/* Its rate= (the owner's bucket alone: no atomic operation). */
	if (unlikely(!ox_policer_take(&rs->rate, &rs->rate_in_tat, now, m->data_len))) {
		srv_ctr_add(&rs->rate_in_dropped, 1);
		srv_drop_dp(w, m, SRV_DP_DROP_RATE_FROM_PEER);
		return;
	}
	/* The exit policy: to other clients and the internet by default,
	 * never to the relay host's own services unless opened. */
	if (unlikely(!ox_policy_check(__atomic_load_n(&w->relay->policy, __ATOMIC_ACQUIRE), ip,
				      tot))) {
		srv_drop_dp(w, m, SRV_DP_DROP_EXIT_REFUSED);
		return;
	}
	/* A subnet whose peer is not connected: nowhere to go (the exit
	 * would route it back into the TAP). */
	if (unlikely(routed && dst == NULL)) {
		srv_drop_dp(w, m, SRV_DP_DROP_ROUTE_PEER_DOWN);
		return;
	}
	if (dst != NULL) {
		/* Client to client (or to a subnet behind one), where --c2c lets
		 * it: re-sealed in the same mbuf, never leaves the data plane. */
		if (unlikely(!relay_c2c_ok(rs, ox_session_priv(dst)))) {
			srv_ctr_add(&rs->c2c_refused, 1);
			srv_drop_dp(w, m, SRV_DP_DROP_C2C_REFUSED);
			return;
		}
		if (unlikely(!relay_rate_to(w, dst, m, now)))
			return;
		srv_ctr_add(&w->stats.relay[RELAY_CLIENT_TO_CLIENT], 1);
		relay_seal_to(w, dst, m, now);
		return;
	}
	if (unlikely(w->tap_queue == NULL)) {
		srv_drop_dp(w, m, SRV_DP_DROP_NO_EXIT);
		return;
	}
	if (unlikely(rte_pktmbuf_headroom(m) < sizeof(*eth))) {
		srv_drop_dp(w, m, SRV_DP_DROP_NO_ROOM);
		return;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(*eth));
	rte_ether_addr_copy(&w->tap_queue->mac, &eth->dst_addr);
	rte_ether_addr_copy(&w->tx_queue->mac, &eth->src_addr);
	eth->ether_type =
		rte_cpu_to_be_16((ip[0] >> 4) == 4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
	srv_ctr_add(&w->stats.relay[RELAY_TO_TAP], 1);
	srv_worker_tx(w, w->tap_queue, m);
}

/* Each packet of a BATCH into an mbuf of its own. */
static void
unbatch(struct srv_worker *w, const struct relay_proto *proto, struct ox_session *sess,
	struct rte_mbuf *m, uint64_t now)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *), *pkt;
	size_t off = 0, plen, room;
	struct rte_mbuf *n;
	int r;

	/* A fresh mbuf keeps its headroom for the outer headers a
	 * client-to-client packet gets; the rest must hold packet and tag. */
	room = rte_pktmbuf_data_room_size(m->pool) - RTE_PKTMBUF_HEADROOM;
	while ((r = proto->next_packet(p, m->data_len, &off, &pkt, &plen)) == 1) {
		if (unlikely(plen + OX_TAG_LEN > room)) {
			srv_ctr_add(&w->stats.dp_drops[SRV_DP_DROP_INNER_TOO_BIG], 1);
			continue;
		}
		n = rte_pktmbuf_alloc(m->pool);
		if (unlikely(n == NULL)) {
			srv_ctr_add(&w->stats.dp_drops[SRV_DP_DROP_NO_MBUF], 1);
			continue;
		}
		memcpy(rte_pktmbuf_append(n, (uint16_t)plen), pkt, plen);
		srv_ctr_add(&w->stats.relay[RELAY_BATCH_PKTS], 1);
		forward_inner(w, sess, n, now);
	}
	if (r < 0)
		drop_ox(w, m, r);
	else
		rte_pktmbuf_free(m);
}

/* ------------------------------------------------------------ keys */

/* Hand the receiver indexes of dropped keypairs back to the control thread.
 * One that cannot be posted stays in by_index until the session ends, which
 * is harmless: it resolves to a session that has no keypair under it. */
static void
post_retired(struct srv_worker *w, struct relay_sess *rs)
{
	uint32_t idx[OX_PEER_RETIRED_MAX];
	unsigned int n, i;

	n = ox_peer_take_retired(&rs->peer, idx);
	for (i = 0; i < n; i++)
		if (rte_ring_mp_enqueue(w->relay->events,
					(void *)((uintptr_t)EV_RETIRE << 32 | idx[i])) != 0)
			srv_ctr_add(&w->stats.dp_drops[SRV_DP_DROP_EVENT_QUEUE_FULL], 1);
}

/*
 * Owner: publish the send half of the current keypair when it changed, in
 * the send key not in use (tx[], two per session), and wipe the one left
 * behind once a grace period has passed. One is rewritten only after every
 * lcore has passed a quiescent state since it was last in use: until then
 * the change waits (the old key still seals; the client keeps its previous
 * keypair).
 */
static void
publish_tx(struct srv_worker *w, struct relay_sess *rs)
{
	const struct ox_keypair *kp = ox_peer_current(&rs->peer);
	uint8_t next;

	if (likely(kp == NULL || kp->local_index == rs->tx_index) && !rs->tx_old_live)
		return;
	if (rte_rcu_qsbr_check(w->relay->rcu, rs->tx_token, false) != 1)
		return;
	next = (uint8_t)(rs->tx_cur ^ 1);
	if (kp != NULL && kp->local_index != rs->tx_index) {
		ox_sendkey_from(&rs->tx[next], kp);
		__atomic_store_n(&rs->tx_cur, next, __ATOMIC_RELEASE);
		rs->tx_index = kp->local_index;
		rs->tx_token = rte_rcu_qsbr_start(w->relay->rcu);
		rs->tx_old_live = rs->tx[rs->tx_cur ^ 1].valid;
		return;
	}
	ox_sendkey_wipe(&rs->tx[next]);
	rs->tx_old_live = false;
}

/* ---------------------------------------------------------------- DATA */

/* A DATA datagram this worker owns the session of: checked and staged
 * (relay.h); relay_stage_flush() opens it with the rest of the burst. */
static void
owner_data(struct srv_worker *w, struct ox_session *sess, struct rte_mbuf *m, struct ox_pkt *p)
{
	struct relay_sess *rs = ox_session_priv(sess);
	struct relay_stage *st = w->stage;
	struct relay_open_slot *slot = &st->open[st->n_open];
	int ret;

	ret = ox_peer_open_prep(&rs->peer, p->frame + p->payload_off, p->payload_len, w->now_ns,
				&st->open_op[st->n_open], &slot->kp);
	if (unlikely(ret < 0)) {
		drop_ox(w, m, ret);
		return;
	}
	slot->m = m;
	slot->sess = sess;
	slot->p = *p;
	if (++st->n_open == RELAY_STAGE_MAX)
		relay_stage_flush(w);
}

/* An opened DATA: the keys' and the session's bookkeeping, then what it held. */
static void
owner_opened(struct srv_worker *w, struct relay_open_slot *slot, const struct ox_aead_op *op)
{
	struct ox_session *sess = slot->sess;
	struct relay_sess *rs = ox_session_priv(sess);
	const struct relay_proto *proto = relay_protos[rs->proto];
	struct ox_pkt *p = &slot->p;
	struct rte_mbuf *m = slot->m;
	uint8_t *payload = p->frame + p->payload_off;
	uint64_t now = w->now_ns;
	struct ox_pkt_flow ep;
	uint16_t pt_off, pt_len;
	int what;

	what = ox_peer_open_done(&rs->peer, slot->kp, op);
	if (likely(what >= 0))
		what = proto->opened(payload, (uint16_t)what, &pt_off, &pt_len);
	if (unlikely(what < 0)) {
		drop_ox(w, m, what);
		return;
	}
	srv_ctr_add(&w->stats.relay[RELAY_DECRYPTED], 1);
	/* Per-peer status, on the owner: one writer, relaxed stores. (Left out
	 * only in the benchmark's build that measures what they cost.) */
#ifndef OX_BENCH_NO_PEER_COUNTERS
	__atomic_store_n(&rs->rx_pkts, rs->rx_pkts + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&rs->rx_bytes, rs->rx_bytes + p->payload_len, __ATOMIC_RELAXED);
#endif
	/* A first packet under new keys promoted them. */
	if (unlikely(rs->peer.n_retired != 0))
		post_retired(w, rs);
	publish_tx(w, rs);
	__atomic_store_n(&sess->last_rx_ns, now, __ATOMIC_RELAXED);
	/* Roaming: a new source is adopted only now that it authenticated. */
	ox_pkt_flow_reply(&ep, p);
	if (unlikely(memcmp(&ep, &rs->ep, sizeof(ep)) != 0)) {
		relay_ep_write(rs, &ep);
		srv_ctr_add(&w->stats.relay[RELAY_ROAMED], 1);
		/* For the connection log; lost with a full ring (counted). */
		if (rte_ring_mp_enqueue(w->relay->events,
					(void *)((uintptr_t)EV_ROAM << 32 | sess->index)) != 0)
			srv_ctr_add(&w->stats.dp_drops[SRV_DP_DROP_EVENT_QUEUE_FULL], 1);
	}
	if (what == RELAY_OPEN_EMPTY) {
		srv_ctr_add(&w->stats.relay[RELAY_KEY_CONFIRM], 1);
		rte_pktmbuf_free(m);
		return;
	}
	if (unlikely(what == RELAY_OPEN_END)) {
		srv_ctr_add(&w->stats.relay[RELAY_DISCONNECT], 1);
		/* Passed on once: more DISCONNECTs of a session that is ending
		 * cannot fill the queue. Lost when it is full anyway: the idle
		 * timeout ends the session. */
		if (!rs->ending) {
			if (rte_ring_mp_enqueue(w->relay->events, (void *)((uintptr_t)EV_END << 32 |
									   sess->index)) != 0)
				srv_ctr_add(&w->stats.dp_drops[SRV_DP_DROP_EVENT_QUEUE_FULL], 1);
			else
				rs->ending = true;
		}
		rte_pktmbuf_free(m);
		return;
	}
	to_plaintext(m, (uint16_t)(payload - rte_pktmbuf_mtod(m, uint8_t *) + pt_off), pt_len);
	if (proto->passive_keepalive && __atomic_load_n(&rs->unanswered_ns, __ATOMIC_RELAXED) == 0)
		__atomic_store_n(&rs->unanswered_ns, now, __ATOMIC_RELAXED);
	switch (what) {
	case RELAY_OPEN_REPLY:
		/* A KEEPALIVE, its ACK now in place. */
		srv_ctr_add(&w->stats.relay[RELAY_KEEPALIVE], 1);
		srv_ctr_add(&w->stats.relay[RELAY_ACK], 1);
		relay_seal_to(w, sess, m, now);
		return;
	case RELAY_OPEN_BATCH:
		unbatch(w, proto, sess, m, now);
		return;
	case RELAY_OPEN_CONFIG:
		/* The answer in place of the request. */
		if (unlikely(rte_pktmbuf_tailroom(m) + m->data_len < OX_CONFIG_MAX)) {
			srv_drop_dp(w, m, SRV_DP_DROP_NO_ROOM);
			return;
		}
		m->data_len = m->pkt_len = proto->config(w->relay, rte_pktmbuf_mtod(m, uint8_t *));
		srv_ctr_add(&w->stats.relay[RELAY_CONFIG_SENT], 1);
		relay_seal_to(w, sess, m, now);
		return;
	default:
		forward_inner(w, sess, m, now);
	}
}

void
relay_stage_flush(struct srv_worker *w)
{
	struct relay_stage *st = w->stage;
	unsigned int i, n = st->n_open;

	if (n != 0) {
		st->n_open = 0;
		ox_aead_open_burst(w->aead, st->open_op, n);
		lookup_dsts(w, n);
		for (i = 0; i < n; i++) {
			st->dst_cur = i;
			if (i + RELAY_SESS_AHEAD < n && st->dst_sess[i + RELAY_SESS_AHEAD] != NULL)
				prefetch_dst(st, st->dst_sess[i + RELAY_SESS_AHEAD]);
			owner_opened(w, &st->open[i], &st->open_op[i]);
		}
		st->n_dst = 0;
	}
	relay_seal_flush(w);
}

int
relay_classify(int type, const struct ox_msg *msg, const uint8_t *d, uint16_t len,
	       int (*check_mac1)(const uint8_t key[OX_KEY_LEN], const uint8_t *pkt, size_t len),
	       const uint8_t key[OX_KEY_LEN], uint32_t *index)
{
	int ret;

	if (type < 0)
		return type;
	switch (type) {
	case OX_MSG_DATA:
		*index = msg->index;
		return RELAY_MSG_DATA;
	case OX_MSG_INIT:
		/* Without the server's public key an initiation never reaches
		 * the control thread's one queue: flooding it takes the key. */
		ret = check_mac1(key, d, len);
		return ret < 0 ? ret : RELAY_MSG_HANDSHAKE;
	default:
		/* RESPONSE, COOKIE: a server never takes them; OXPI is done. */
		return -OX_DROP_UNEXPECTED;
	}
}

/* The worker hook: every datagram to our port that is not an OXPI probe. */
bool
relay_rx(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m, struct ox_pkt *p)
{
	const uint8_t *d = p->frame + p->payload_off;
	struct ox_session *sess;
	struct relay_sess *rs;
	uint32_t index = 0;
	int pi, r;

	(void)s;
	pi = relay_proto_find(d, p->payload_len);
	if (unlikely(pi < 0)) {
		/* Every protocol's messages start with four bytes it knows. */
		drop_ox(w, m,
			p->payload_len < OX_HDR_LEN ? -OX_DROP_TOO_SHORT : -OX_DROP_BAD_MAGIC);
		return true;
	}
	r = relay_protos[pi]->classify(w->relay, d, p->payload_len, &index);
	if (unlikely(r < 0)) {
		drop_ox(w, m, r);
		return true;
	}
	if (r == RELAY_MSG_HANDSHAKE) {
		/* Which worker got it: that one owns a new session. Any
		 * engine may judge it, the first free. */
		m->hash.usr = w->id;
		pkt_mark(w->relay, m, p);
		relay_dyn(w->relay, m)->pkt.proto = (uint8_t)pi;
		relay_dyn(w->relay, m)->pkt.rx_ms = (uint32_t)(w->now_ns / 1000000);
		if (rte_ring_mp_enqueue(w->relay->hs_in, m) != 0)
			srv_drop_dp(w, m, SRV_DP_DROP_HS_QUEUE_FULL);
		else
			srv_ctr_add(&w->stats.relay[RELAY_HS_QUEUED], 1);
		return true;
	}
	sess = sess_by_index(w, m, index);
	/* An index is issued to a session of one protocol. */
	if (unlikely(sess == NULL ||
		     ((struct relay_sess *)ox_session_priv(sess))->proto != (uint8_t)pi)) {
		drop_ox(w, m, -OX_DROP_UNKNOWN_INDEX);
		return true;
	}
	rs = ox_session_priv(sess);
	if (likely(rs->owner == w->id)) {
		owner_data(w, sess, m, p);
		return true;
	}
	/* The client moved to another queue: its owner decides. Only the
	 * owner can tell a forgery, so one session (anyone who knows its
	 * index) may hold only so much of the inbox. */
	if (__atomic_fetch_add(&rs->handoffs, 1, __ATOMIC_RELAXED) >= HANDOFF_MAX) {
		__atomic_fetch_sub(&rs->handoffs, 1, __ATOMIC_RELAXED);
		srv_drop_dp(w, m, SRV_DP_DROP_HANDOFF_SESSION_LIMIT);
		return true;
	}
	m->hash.usr = INBOX_DATA;
	pkt_mark(w->relay, m, p);
	relay_dyn(w->relay, m)->pkt.sess = sess->index;
	relay_dyn(w->relay, m)->pkt.index = index;
	if (rte_ring_mp_enqueue(w->relay->srv->workers[rs->owner]->inbox, m) != 0) {
		__atomic_fetch_sub(&rs->handoffs, 1, __ATOMIC_RELAXED);
		srv_drop_dp(w, m, SRV_DP_DROP_HANDOFF_FULL);
	} else {
		srv_ctr_add(&w->stats.relay[RELAY_HANDOFF], 1);
	}
	return true;
}

void
relay_inbox(struct srv_worker *w, struct rte_mbuf *m)
{
	struct srv_relay *r = w->relay;
	struct relay_install *in;
	struct ox_session *sess;
	struct ox_pkt p;
	uint32_t idx;

	switch (m->hash.usr) {
	case INBOX_RESPONSE:
		/* Staged opens hold keypairs of their peers: finish them first. */
		relay_stage_flush(w);
		in = relay_dyn(r, m)->install;
		sess = ox_sessions_by_index(w->sessions, in->sess_index);
		if (sess != NULL) {
			struct relay_sess *rs = ox_session_priv(sess);

			ox_peer_install(&rs->peer, &in->kp, false);
			if (rs->peer.n_retired != 0)
				post_retired(w, rs);
		}
		ox_keypair_wipe(&in->kp);
		__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
		if (sess == NULL) {
			rte_pktmbuf_free(m);
			return;
		}
		srv_worker_tx(w, w->tx_queue, m);
		return;
	case INBOX_SEND:
		srv_worker_tx(w, w->tx_queue, m);
		return;
	case INBOX_KEEPALIVE:
		sess = ox_sessions_by_index(w->sessions, relay_dyn(r, m)->pkt.sess);
		if (sess == NULL) {
			rte_pktmbuf_free(m);
			return;
		}
		srv_ctr_add(&w->stats.relay[RELAY_KEEPALIVE_SENT], 1);
		relay_seal_to(w, sess, m, w->now_ns);
		return;
	case INBOX_DATA:
		/* Off the session's count, if it is still the same session. */
		sess = ox_sessions_by_index(w->sessions, relay_dyn(r, m)->pkt.sess);
		if (sess != NULL)
			__atomic_fetch_sub(&((struct relay_sess *)ox_session_priv(sess))->handoffs,
					   1, __ATOMIC_RELAXED);
		/* relay_rx parsed it and classified it as DATA already. */
		pkt_unmark(r, m, &p);
		idx = relay_dyn(r, m)->pkt.index;
		sess = by_index(r, idx);
		if (sess == NULL || ((struct relay_sess *)ox_session_priv(sess))->owner != w->id) {
			drop_ox(w, m, -OX_DROP_UNKNOWN_INDEX);
			return;
		}
		owner_data(w, sess, m, &p);
		return;
	default:
		rte_pktmbuf_free(m);
	}
}
