/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay, send and seal: where a client is (its endpoint, written by the
 * session's owner under a seqlock), sealing an inner packet or a control
 * message for a session from any lcore, and the exit TAP's return path.
 */
#include <string.h>

#include <stdio.h>

#include <arpa/inet.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "relay.h"

/* ------------------------------------------------------------ endpoint */

static inline void
txc_add(struct relay_txc *c, uint64_t bytes)
{
#ifndef OX_BENCH_NO_PEER_COUNTERS
	__atomic_store_n(&c->pkts, c->pkts + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->bytes, c->bytes + bytes, __ATOMIC_RELAXED);
#else
	RTE_SET_USED(c);
	RTE_SET_USED(bytes);
#endif
}

void
relay_ep_read(struct relay_sess *rs, struct ox_pkt_flow *ep)
{
	uint32_t sn;

	do {
		sn = rte_seqlock_read_begin(&rs->ep_lock);
		*ep = rs->ep;
	} while (rte_seqlock_read_retry(&rs->ep_lock, sn));
}

const char *
relay_ep_str(const struct ox_pkt_flow *ep, char *b, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	/* The flow answers the client: its address and port are the dst. */
	inet_ntop(ep->ipv6 ? AF_INET6 : AF_INET, ep->dst_ip, a, sizeof(a));
	snprintf(b, len, ep->ipv6 ? "[%s]:%u" : "%s:%u", a, (unsigned int)ntohs(ep->dst_port));
	return b;
}

void
relay_ep_write(struct relay_sess *rs, const struct ox_pkt_flow *ep)
{
	rte_seqlock_write_lock(&rs->ep_lock);
	rs->ep = *ep;
	rte_seqlock_write_unlock(&rs->ep_lock);
}

/* ---------------------------------------------------------------- seal */

/*
 * m holds exactly one plaintext (an inner packet, or a control message):
 * put the DATA header in front of it and room for the tag behind, ready it
 * for the session's send key, and stage it; relay_seal_flush() seals the
 * stage in one submission and sends from this worker.
 */
void
relay_seal_to(struct srv_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now)
{
	struct relay_sess *rs = ox_session_priv(sess);
	const struct relay_proto *proto = relay_protos[rs->proto];
	struct relay_stage *st = w->stage;
	struct relay_seal_slot *slot;
	struct ox_sendkey *sk;
	uint16_t plain = (uint16_t)m->data_len, outer;
	uint8_t *hdr;
	int ret;

	sk = &rs->tx[__atomic_load_n(&rs->tx_cur, __ATOMIC_ACQUIRE)];
	if (unlikely(!sk->valid)) {
		srv_drop_dp(w, m, SRV_DP_DROP_NO_KEYS);
		return;
	}
	slot = &st->seal[st->n_seal];
	relay_ep_read(rs, &slot->ep);
	outer = OX_PKT_HDR_LEN(slot->ep.ipv6);
	if (unlikely(rte_pktmbuf_headroom(m) < outer + proto->data_hdr_len ||
		     rte_pktmbuf_tailroom(m) < proto->data_tail_max)) {
		srv_drop_dp(w, m, SRV_DP_DROP_NO_ROOM);
		return;
	}
	hdr = (uint8_t *)rte_pktmbuf_prepend(m, proto->data_hdr_len);
	ret = ox_data_seal_sk_prep(sk, hdr, plain, now, &st->seal_op[st->n_seal]);
	if (unlikely(ret < 0)) {
		drop_ox(w, m, ret);
		return;
	}
	if (proto->passive_keepalive)
		__atomic_store_n(&rs->unanswered_ns, 0, __ATOMIC_RELAXED);
	/* Per-peer status: this worker's own line for the slot, no atomic op. */
	txc_add(&st->txc[sess->slot], (uint64_t)ret);
	/* The DATA is ret bytes from hdr: the tag (and any padding) behind. */
	rte_pktmbuf_append(m, (uint16_t)(ret - proto->data_hdr_len - plain));
	/* From this worker's port, whichever lcore the client last came in on,
	 * and from the UDP port it last sent to (ep: one of --port's). */
	memcpy(slot->ep.src_mac, &w->tx_queue->mac, sizeof(slot->ep.src_mac));
	slot->m = m;
	slot->len = (uint16_t)ret;
	/* The send key stays until this lcore's next quiescent state, after
	 * the stage is flushed (publish_tx() waits for it). */
	if (++st->n_seal == RELAY_STAGE_MAX)
		relay_seal_flush(w);
}

/*
 * The outer headers in front of a sealed DATA. Over IPv4 there is no UDP
 * checksum: the AEAD tag covers the datagram. IPv6 forbids a zero one (RFC
 * 8200 8.1), a pass over the whole ciphertext: the port makes it where it
 * can, from the pseudo-header sum, else ox_pkt_build sums it here.
 */
static inline void
relay_outer(const struct srv_queue *s, struct rte_mbuf *m, const struct ox_pkt_flow *ep,
	    uint16_t len)
{
	uint8_t *frame = (uint8_t *)rte_pktmbuf_prepend(m, OX_PKT_HDR_LEN(ep->ipv6));

	if (!ep->ipv6 || !s->tx_udp_csum) {
		ox_pkt_build(frame, ep, len, OX_PKT_CSUM_NONE);
		return;
	}
	ox_pkt_build(frame, ep, len, OX_PKT_CSUM_PARTIAL);
	m->l2_len = sizeof(struct rte_ether_hdr);
	m->l3_len = sizeof(struct rte_ipv6_hdr);
	m->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
}

void
relay_seal_flush(struct srv_worker *w)
{
	struct relay_stage *st = w->stage;
	unsigned int i, n = st->n_seal;

	if (n == 0)
		return;
	st->n_seal = 0;
	ox_aead_seal_burst(w->aead, st->seal_op, n);
	for (i = 0; i < n; i++) {
		struct relay_seal_slot *slot = &st->seal[i];
		struct rte_mbuf *m = slot->m;

		if (unlikely(st->seal_op[i].status != 0)) {
			drop_ox(w, m, -OX_DROP_CRYPTO);
			continue;
		}
		relay_outer(w->tx_queue, m, &slot->ep, slot->len);
		srv_worker_tx(w, w->tx_queue, m);
	}
}

/* Is this source one of the tunnel pools' client addresses (not the
 * relay's own)? */
static inline bool
from_client_pool(const struct srv_relay *r, const uint8_t *ip)
{
	const struct ox_addrpool_conf *pc = &r->srv->pool_conf;

	if ((ip[0] >> 4) == 4) {
		const struct rte_ipv4_hdr *h = (const struct rte_ipv4_hdr *)ip;
		uint32_t src = rte_be_to_cpu_32(h->src_addr);

		return src != r->gw.v4 && (src ^ pc->v4_net) >> (32 - pc->v4_prefix) == 0;
	} else {
		const struct rte_ipv6_hdr *h = (const struct rte_ipv6_hdr *)ip;
		unsigned int bits = pc->v6_prefix, i;

		if (memcmp(h->src_addr, r->gw.v6, 16) == 0)
			return false;
		for (i = 0; i < bits / 8; i++)
			if (h->src_addr[i] != pc->v6_net[i])
				return false;
		return bits % 8 == 0 ||
		       ((h->src_addr[i] ^ pc->v6_net[i]) & (uint8_t)(0xff00 >> (bits % 8))) == 0;
	}
}

/* The TAP hook: a packet for a client's tunnel address (@p sess), or for
 * none (NULL): then perhaps for a subnet routed to a peer. */
bool
relay_tap(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m, struct ox_session *sess)
{
	struct ox_session *via;
	const uint8_t *ip;

	(void)s;
	rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
	ip = rte_pktmbuf_mtod(m, const uint8_t *);
	if (sess == NULL)
		relay_route_ip(w->relay, w->sessions, ip, true, &sess);
	if (sess == NULL) {
		srv_drop_dp(w, m, SRV_DP_DROP_TAP_NO_SESSION);
		return true;
	}
	/* Client addresses and their subnets live behind the relay, never in
	 * front of it: from the kernel's side such a source is someone posing
	 * as a client. */
	if (unlikely(from_client_pool(w->relay, ip) ||
		     relay_route_ip(w->relay, w->sessions, ip, false, &via))) {
		srv_drop_dp(w, m, SRV_DP_DROP_TAP_SPOOFED_SRC);
		return true;
	}
	if (unlikely(m->data_len > w->relay->srv->conf.mtu)) {
		srv_drop_dp(w, m, SRV_DP_DROP_INNER_TOO_BIG);
		return true;
	}
	if (unlikely(!relay_rate_to(w, sess, m, w->now_ns)))
		return true;
	srv_ctr_add(&w->stats.relay[RELAY_FROM_TAP], 1);
	relay_seal_to(w, sess, m, w->now_ns);
	return true;
}
