/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay, send and seal: where a client is (its endpoint, written by the
 * session's owner under a seqlock), sealing an inner packet or a control
 * message for a session from any lcore, and the exit TAP's return path.
 */
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "relay.h"

/* ------------------------------------------------------------ endpoint */

void
relay_ep_from_pkt(struct relay_ep *ep, const struct ox_pkt *p)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)p->frame;
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(p->frame + p->l4_off);

	memset(ep, 0, sizeof(*ep));
	rte_ether_addr_copy(&eth->src_addr, &ep->peer_mac);
	ep->ipv6 = p->ipv6;
	if (p->ipv6) {
		const struct rte_ipv6_hdr *ip6 =
			(const struct rte_ipv6_hdr *)(p->frame + p->l3_off);

		memcpy(ep->peer_ip, ip6->src_addr, 16);
		memcpy(ep->local_ip, ip6->dst_addr, 16);
	} else {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p->frame + p->l3_off);

		memcpy(ep->peer_ip, &ip->src_addr, 4);
		memcpy(ep->local_ip, &ip->dst_addr, 4);
	}
	ep->peer_port = udp->src_port;
}

static void
ep_read(struct relay_sess *rs, struct relay_ep *ep)
{
	uint32_t sn;

	do {
		sn = rte_seqlock_read_begin(&rs->ep_lock);
		*ep = rs->ep;
	} while (rte_seqlock_read_retry(&rs->ep_lock, sn));
}

void
relay_ep_write(struct relay_sess *rs, const struct relay_ep *ep)
{
	rte_seqlock_write_lock(&rs->ep_lock);
	rs->ep = *ep;
	rte_seqlock_write_unlock(&rs->ep_lock);
}

/* ---------------------------------------------------------------- seal */

/*
 * m holds exactly one plaintext (an inner packet, or a control message):
 * put the DATA header and outer Ethernet/IP/UDP in front of it, the tag
 * behind, seal for the session and send from this worker.
 */
void
relay_seal_to(struct srv_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now)
{
	struct relay_sess *rs = ox_session_priv(sess);
	struct ox_sendkey *sk;
	struct relay_ep ep;
	struct rte_ether_hdr *eth;
	struct rte_udp_hdr *udp;
	uint16_t plain = (uint16_t)m->data_len, l3len, outer;
	uint8_t *hdr;
	int ret;

	sk = &rs->tx[__atomic_load_n(&rs->tx_cur, __ATOMIC_ACQUIRE)];
	if (unlikely(!sk->valid)) {
		srv_drop_dp(w, m, SRV_DP_DROP_NO_KEYS);
		return;
	}
	ep_read(rs, &ep);
	l3len = ep.ipv6 ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr);
	outer = (uint16_t)(sizeof(*eth) + l3len + sizeof(*udp));
	if (unlikely(rte_pktmbuf_headroom(m) < outer + OX_DATA_HDR_LEN ||
		     rte_pktmbuf_tailroom(m) < OX_TAG_LEN)) {
		srv_drop_dp(w, m, SRV_DP_DROP_NO_ROOM);
		return;
	}
	hdr = (uint8_t *)rte_pktmbuf_prepend(m, OX_DATA_HDR_LEN);
	rte_pktmbuf_append(m, OX_TAG_LEN);
	ret = ox_data_seal_sk(w->aead, sk, hdr, plain, now);
	if (unlikely(ret < 0)) {
		drop_ox(w, m, ret);
		return;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, outer);
	rte_ether_addr_copy(&ep.peer_mac, &eth->dst_addr);
	rte_ether_addr_copy(&w->tx_queue->mac, &eth->src_addr);
	udp = (struct rte_udp_hdr *)((uint8_t *)(eth + 1) + l3len);
	udp->src_port = rte_cpu_to_be_16(w->udp_port);
	udp->dst_port = ep.peer_port;
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + ret));
	udp->dgram_cksum = 0;
	if (ep.ipv6) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);

		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
		ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
		ip6->payload_len = udp->dgram_len;
		ip6->proto = IPPROTO_UDP;
		ip6->hop_limits = OX_PKT_TTL;
		memcpy(ip6->src_addr, ep.local_ip, 16);
		memcpy(ip6->dst_addr, ep.peer_ip, 16);
		/* IPv6 forbids a zero UDP checksum. */
		udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);

		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->type_of_service = 0;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(l3len + sizeof(*udp) + ret));
		ip->packet_id = 0;
		ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
		ip->time_to_live = OX_PKT_TTL;
		ip->next_proto_id = IPPROTO_UDP;
		memcpy(&ip->src_addr, ep.local_ip, 4);
		memcpy(&ip->dst_addr, ep.peer_ip, 4);
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	srv_worker_tx(w, w->tx_queue, m);
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

/* The TAP hook: a packet for a client's tunnel address. */
bool
relay_tap(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m, struct ox_session *sess)
{
	(void)s;
	rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
	/* Client addresses live behind the relay, never in front of it: from
	 * the kernel's side such a source is someone posing as a client. */
	if (unlikely(from_client_pool(w->relay, rte_pktmbuf_mtod(m, const uint8_t *)))) {
		srv_drop_dp(w, m, SRV_DP_DROP_TAP_SPOOFED_SRC);
		return true;
	}
	if (unlikely(m->data_len > w->relay->srv->conf.mtu)) {
		srv_drop_dp(w, m, SRV_DP_DROP_INNER_TOO_BIG);
		return true;
	}
	srv_ctr_add(&w->stats.relay[RELAY_FROM_TAP], 1);
	relay_seal_to(w, sess, m, w->now_ns);
	return true;
}
