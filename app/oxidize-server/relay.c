/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay: OxTunnel v2 sessions on the lcore loops.
 *
 * Who writes what:
 *  - the control thread (main lcore) owns the handshake (lib/oxtunnel's
 *    ox_hs_server, the allow-list, cookies, rate limits), creates and
 *    removes sessions, and reaps idle ones. Workers hand it INIT datagrams
 *    over one multi-producer ring; it answers through the worker that owns
 *    the session, never touching a TX queue itself;
 *  - each session has one owner worker (the one whose queue got its first
 *    INIT; RSS keeps a client's flow there). Only the owner opens the
 *    session's DATA (the replay window has one writer), installs and
 *    promotes its keypairs, and updates where the client is (roaming).
 *    DATA arriving on another worker is handed to the owner's inbox;
 *  - any worker may seal for any session (TAP return path, client to
 *    client) with the send key its owner published (two per session, the
 *    one in use flipped with a release store; the other is written again
 *    only a grace period later, so no lcore ever seals with a key being
 *    replaced or wiped): the send counter is one atomic add, and the
 *    endpoint is read under a seqlock;
 *  - receiver indexes are random 32-bit numbers, one per keypair (as
 *    WireGuard's), issued by the control thread into a lock-free hash that
 *    every worker reads; the owner hands back those of keypairs it drops.
 *    A session's keys are wiped once it has ended and no lcore can hold it.
 * No locks, syscalls or allocations per packet; mbufs are reused in place.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <rte_rcu_qsbr.h>
#include <rte_seqlock.h>
#include <rte_udp.h>
#include <sodium.h>

#include "server.h"

const char *const ox_relay_ctr_names[OX_RELAY_CTR_MAX] = {
#define OX_RELAY_NAME(e, s) [OX_RELAY_ ## e] = s,
	OX_RELAY_CTRS(OX_RELAY_NAME)
#undef OX_RELAY_NAME
};

#define INBOX_SIZE	4096
#define INSTALLS	1024		/* keypairs in flight to their owners */
#define EVENTS_SIZE	4096
#define CTRL_BURST	32
#define IDX_MAX		8		/* receiver indexes one session holds at once */
#define HANDOFF_MAX	64		/* DATA of one session waiting in its owner's inbox */

/* What workers tell the control thread (the events ring): a kind in the
 * high 32 bits of the pointer-sized word, a value in the low 32. */
enum relay_event {
	EV_END = 1,		/* a DISCONNECT: end session (value: its handle) */
	EV_RETIRE = 2,		/* a keypair left its peer (value: receiver index) */
};
_Static_assert(sizeof(void *) == 8, "events pack a kind and a 32-bit value in a pointer");

/* Why the control thread refused an initiation that lib/oxtunnel accepted,
 * or lost its answer; one counter each (telemetry: hs_drop_<name>). */
#define RELAY_HS_DROPS(X) \
	X(INSTALLS_FULL, "installs_full") \
	X(NO_ADDRESS, "no_address") \
	X(SESSIONS_FULL, "sessions_full") \
	X(ADDRESS_IN_USE, "address_in_use") \
	X(NO_INDEX, "no_receiver_index") \
	X(REPLY_INBOX_FULL, "reply_inbox_full")

enum relay_hs_drop {
#define RELAY_HS_ENUM(e, s) RELAY_HS_ ## e,
	RELAY_HS_DROPS(RELAY_HS_ENUM)
#undef RELAY_HS_ENUM
	RELAY_HS_MAX
};

static const char *const relay_hs_drop_names[RELAY_HS_MAX] = {
#define RELAY_HS_NAME(e, s) [RELAY_HS_ ## e] = s,
	RELAY_HS_DROPS(RELAY_HS_NAME)
#undef RELAY_HS_NAME
};

/* What an mbuf in a worker's inbox is (mbuf hash.usr). */
enum inbox_kind {
	INBOX_SEND = 1,		/* a finished frame: send it */
	INBOX_RESPONSE = 2,	/* a RESPONSE frame: install its keypair, then send */
	INBOX_DATA = 3,		/* a DATA datagram this worker owns: process it */
};

/* Where a client is, as the last authenticated packet said. */
struct relay_ep {
	struct rte_ether_addr peer_mac;	/* next hop toward the client */
	bool ipv6;
	uint8_t peer_ip[16];		/* IPv4 in the first 4 bytes */
	uint8_t local_ip[16];		/* our address the client sent to */
	uint16_t peer_port;		/* network order */
};

/* A session's private area (lib/sessions). */
struct relay_sess {
	struct ox_peer peer;		/* owner only: receive keys, replay windows */
	struct ox_sendkey tx[2];	/* owner writes, anyone seals with tx[tx_cur] */
	uint8_t tx_cur;			/* owner stores (release), anyone loads (acquire) */
	bool tx_old_live;		/* owner: tx[!tx_cur] still holds a key to wipe */
	uint32_t tx_index;		/* owner: receiver index tx[tx_cur] comes from */
	uint64_t tx_token;		/* owner: RCU token of the last flip */
	bool ending;			/* owner: a DISCONNECT was passed on */
	rte_seqlock_t ep_lock;
	struct relay_ep ep;		/* owner writes, anyone reads */
	uint16_t owner;			/* worker id; set before the session is used */
	uint32_t handoffs;		/* DATA in the owner's inbox (atomic, any lcore) */
	uint8_t n_idx;			/* control: receiver indexes held in by_index */
	uint32_t idx[IDX_MAX];		/* control */
};

/* A keypair on its way from the control thread to the owner. */
struct relay_install {
	struct ox_keypair kp;
	uint32_t sess_index;
	uint32_t busy;			/* control sets, owner clears (release) */
};

struct ox_relay {
	struct ox_server *srv;
	uint8_t mac1_key[OX_KEY_LEN];	/* set at init, then read by every worker */
	struct ox_hs_server *hs;
	struct ox_allowlist allow;
	struct ox_tsstore *ts;		/* greatest accepted timestamp per key */
	bool ts_failing;		/* the state file could not be written */
	struct ox_addrpool *pool;
	struct rte_ring *hs_ring;	/* INIT mbufs, workers -> control */
	struct rte_ring *events;	/* enum relay_event, workers -> control */
	struct rte_hash *by_key;	/* control only: client key -> session */
	struct rte_hash *by_index;	/* receiver index -> session; control writes */
	struct rte_rcu_qsbr *rcu;	/* the workers' quiescent states (lib/sessions) */
	struct ox_policy *policy;	/* exit policy; read-only once built */
	struct ox_tunnel_addr gw;	/* the relay's own tunnel addresses */
	struct relay_install *installs;
	unsigned int next_install;
	int dyn_off;			/* mbuf dynfield: union relay_dyn */
	uint64_t last_reap_ns;
	/* Control thread counters. */
	uint64_t hs_ok, hs_new, hs_rekey, cookies, reaped, removed, reloads, reload_errors;
	uint64_t hs_drops[OX_DROP_MAX];
	uint64_t relay_hs_drops[RELAY_HS_MAX];
	uint64_t cycles_ok, cycles_bad, n_bad;	/* control time per initiation */
	uint64_t under_load_polls;			/* polls spent under load */
	uint64_t win_start_ns;			/* initiation rate window */
	uint64_t win_inits, last_win_inits;
	bool under_load;
};

static volatile sig_atomic_t reload_requested;

uint32_t
ox_relay_mbufs_held(const struct ox_server_conf *c, unsigned int n_workers)
{
	if (c->key_file[0] == '\0')
		return 0;
	/* rte_ring holds one less than its power-of-two size. */
	return rte_align32pow2(c->hs_queue) + n_workers * INBOX_SIZE;
}

uint32_t
ox_relay_priv_size(void)
{
	return sizeof(struct relay_sess);
}

void
ox_relay_request_reload(void)
{
	reload_requested = 1;
}

/*
 * Where relay_rx's parse found the headers, kept in the mbuf for whoever
 * takes a datagram next (a session's owner, the control thread for an
 * INIT): the frame is not parsed, nor its checksum summed, a second time.
 */
struct relay_pkt_mark {
	uint16_t l3_off, l4_off, payload_off, payload_len;
	uint32_t sess;		/* DATA handed to its owner: the session's handle */
};

union relay_dyn {
	struct relay_install *install;	/* a RESPONSE on its way to the owner */
	struct relay_pkt_mark pkt;	/* a datagram relay_rx has parsed */
};

static inline union relay_dyn *
relay_dyn(const struct ox_relay *r, struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, r->dyn_off, union relay_dyn *);
}

static inline void
pkt_mark(const struct ox_relay *r, struct rte_mbuf *m, const struct ox_pkt *p)
{
	struct relay_pkt_mark *k = &relay_dyn(r, m)->pkt;

	k->l3_off = p->l3_off;
	k->l4_off = p->l4_off;
	k->payload_off = p->payload_off;
	k->payload_len = p->payload_len;
}

static inline void
pkt_unmark(const struct ox_relay *r, struct rte_mbuf *m, struct ox_pkt *p)
{
	const struct relay_pkt_mark *k = &relay_dyn(r, m)->pkt;

	p->frame = rte_pktmbuf_mtod(m, uint8_t *);
	p->frame_len = (uint16_t)m->data_len;
	p->l3_off = k->l3_off;
	p->l4_off = k->l4_off;
	p->payload_off = k->payload_off;
	p->payload_len = k->payload_len;
	p->ipv6 = (p->frame[p->l3_off] >> 4) == 6;
}

static inline void
drop_ox(struct ox_worker *w, struct rte_mbuf *m, int reason)
{
	ox_ctr_add(&w->stats.ox_drops[-reason], 1);
	rte_pktmbuf_free(m);
}

/* ------------------------------------------------------------ endpoint */

static void
ep_from_pkt(struct relay_ep *ep, const struct ox_pkt *p)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)p->frame;
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(p->frame + p->l4_off);

	memset(ep, 0, sizeof(*ep));
	rte_ether_addr_copy(&eth->src_addr, &ep->peer_mac);
	ep->ipv6 = p->ipv6;
	if (p->ipv6) {
		const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)(p->frame + p->l3_off);

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

static void
ep_write(struct relay_sess *rs, const struct relay_ep *ep)
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
static void
seal_to(struct ox_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now)
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
		ox_drop_dp(w, m, OX_DP_DROP_NO_KEYS);
		return;
	}
	ep_read(rs, &ep);
	l3len = ep.ipv6 ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr);
	outer = (uint16_t)(sizeof(*eth) + l3len + sizeof(*udp));
	if (unlikely(rte_pktmbuf_headroom(m) < outer + OX_DATA_HDR_LEN ||
		     rte_pktmbuf_tailroom(m) < OX_TAG_LEN)) {
		ox_drop_dp(w, m, OX_DP_DROP_NO_ROOM);
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
	rte_ether_addr_copy(&w->tx_slot->mac, &eth->src_addr);
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
	ox_worker_tx(w, w->tx_slot, m);
}

/* ------------------------------------------------------------- inner */

/* Trim m to the plaintext [off, off + len). */
static inline void
to_plaintext(struct rte_mbuf *m, uint16_t off, uint16_t len)
{
	rte_pktmbuf_adj(m, off);
	rte_pktmbuf_trim(m, (uint16_t)(m->data_len - len));
}

/* An inner IP packet from a session: to another client, or out the TAP. */
static void
forward_inner(struct ox_worker *w, struct ox_session *sess, struct rte_mbuf *m,
	      uint64_t now)
{
	uint8_t *ip = rte_pktmbuf_mtod(m, uint8_t *);
	uint16_t len = (uint16_t)m->data_len, tot;
	struct ox_session *dst;
	struct rte_ether_hdr *eth;

	if ((ip[0] >> 4) == 4) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;
		uint32_t src, daddr;

		if (unlikely(len < sizeof(*h))) {
			ox_drop_dp(w, m, OX_DP_DROP_INNER_MALFORMED);
			return;
		}
		/* An IHL below 5 (first byte 0x40..0x44) is no IPv4 header. */
		if (unlikely((ip[0] & 0xf) < 5)) {
			ox_drop_dp(w, m, OX_DP_DROP_INNER_MALFORMED);
			return;
		}
		tot = rte_be_to_cpu_16(h->total_length);
		if (unlikely(tot < (ip[0] & 0xf) * 4u || tot > len)) {
			ox_drop_dp(w, m, OX_DP_DROP_INNER_MALFORMED);
			return;
		}
		src = rte_be_to_cpu_32(h->src_addr);
		if (unlikely(src != sess->addr.v4)) {
			ox_drop_dp(w, m, OX_DP_DROP_SPOOFED_SRC);
			return;
		}
		daddr = rte_be_to_cpu_32(h->dst_addr);
		rte_pktmbuf_trim(m, (uint16_t)(len - tot));	/* padding */
		dst = ox_sessions_by_v4(w->sessions, daddr);
	} else if ((ip[0] >> 4) == 6) {
		struct rte_ipv6_hdr *h = (struct rte_ipv6_hdr *)ip;
		uint32_t tot6;

		if (unlikely(len < sizeof(*h))) {
			ox_drop_dp(w, m, OX_DP_DROP_INNER_MALFORMED);
			return;
		}
		/* Summed in 32 bits: a payload length near 64 KB must not wrap. */
		tot6 = rte_be_to_cpu_16(h->payload_len) + (uint32_t)sizeof(*h);
		if (unlikely(tot6 > len)) {
			ox_drop_dp(w, m, OX_DP_DROP_INNER_MALFORMED);
			return;
		}
		tot = (uint16_t)tot6;
		if (unlikely(memcmp(h->src_addr, sess->addr.v6, 16) != 0)) {
			ox_drop_dp(w, m, OX_DP_DROP_SPOOFED_SRC);
			return;
		}
		rte_pktmbuf_trim(m, (uint16_t)(len - tot));
		dst = ox_sessions_by_v6(w->sessions, h->dst_addr);
	} else {
		drop_ox(w, m, -OX_DROP_BAD_INNER);
		return;
	}
	if (unlikely(m->data_len > w->relay->srv->conf.mtu)) {
		ox_drop_dp(w, m, OX_DP_DROP_INNER_TOO_BIG);
		return;
	}
	/* The exit policy: to other clients and the internet by default,
	 * never to the relay host's own services unless opened. */
	if (unlikely(!ox_policy_check(w->relay->policy, ip, tot))) {
		ox_drop_dp(w, m, OX_DP_DROP_EXIT_REFUSED);
		return;
	}
	if (dst != NULL) {
		/* Client to client: re-sealed in the same mbuf, never leaves
		 * the data plane. */
		ox_ctr_add(&w->stats.relay[OX_RELAY_CLIENT_TO_CLIENT], 1);
		seal_to(w, dst, m, now);
		return;
	}
	if (unlikely(w->tap_slot == NULL)) {
		ox_drop_dp(w, m, OX_DP_DROP_NO_EXIT);
		return;
	}
	if (unlikely(rte_pktmbuf_headroom(m) < sizeof(*eth))) {
		ox_drop_dp(w, m, OX_DP_DROP_NO_ROOM);
		return;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(*eth));
	rte_ether_addr_copy(&w->tap_slot->mac, &eth->dst_addr);
	rte_ether_addr_copy(&w->tx_slot->mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16((ip[0] >> 4) == 4 ? RTE_ETHER_TYPE_IPV4 :
					   RTE_ETHER_TYPE_IPV6);
	ox_ctr_add(&w->stats.relay[OX_RELAY_TO_TAP], 1);
	ox_worker_tx(w, w->tap_slot, m);
}

/* Each packet of a BATCH into an mbuf of its own. */
static void
unbatch(struct ox_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *), *pkt;
	size_t off = 0, plen, room;
	struct rte_mbuf *n;
	int r;

	/* A fresh mbuf keeps its headroom for the outer headers a
	 * client-to-client packet gets; the rest must hold packet and tag. */
	room = rte_pktmbuf_data_room_size(m->pool) - RTE_PKTMBUF_HEADROOM;
	while ((r = ox_batch_next(p, m->data_len, &off, &pkt, &plen)) == 1) {
		if (unlikely(plen + OX_TAG_LEN > room)) {
			ox_ctr_add(&w->stats.dp_drops[OX_DP_DROP_INNER_TOO_BIG], 1);
			continue;
		}
		n = rte_pktmbuf_alloc(m->pool);
		if (unlikely(n == NULL)) {
			ox_ctr_add(&w->stats.dp_drops[OX_DP_DROP_NO_MBUF], 1);
			continue;
		}
		memcpy(rte_pktmbuf_append(n, (uint16_t)plen), pkt, plen);
		ox_ctr_add(&w->stats.relay[OX_RELAY_BATCH_PKTS], 1);
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
post_retired(struct ox_worker *w, struct relay_sess *rs)
{
	uint32_t idx[OX_PEER_RETIRED_MAX];
	unsigned int n, i;

	n = ox_peer_take_retired(&rs->peer, idx);
	for (i = 0; i < n; i++)
		if (rte_ring_mp_enqueue(w->relay->events,
				(void *)((uintptr_t)EV_RETIRE << 32 | idx[i])) != 0)
			ox_ctr_add(&w->stats.dp_drops[OX_DP_DROP_EVENT_QUEUE_FULL], 1);
}

/*
 * Owner: publish the send half of the current keypair when it changed, in
 * the send key slot not in use, and wipe the one left behind once a grace
 * period has passed. A slot is rewritten only after every lcore has passed
 * a quiescent state since it was last in use: until then the change waits
 * (the old key still seals; the client keeps its previous keypair).
 */
static void
publish_tx(struct ox_worker *w, struct relay_sess *rs)
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

/* A DATA datagram this worker owns the session of. */
static void
owner_data(struct ox_worker *w, struct ox_session *sess, struct rte_mbuf *m,
	   struct ox_pkt *p)
{
	struct relay_sess *rs = ox_session_priv(sess);
	uint8_t *payload = p->frame + p->payload_off;
	uint64_t now = w->now_ns;
	struct relay_ep ep;
	uint8_t kind;
	int n;

	n = ox_peer_open(w->aead, &rs->peer, payload, p->payload_len, now);
	if (unlikely(n < 0)) {
		drop_ox(w, m, n);
		return;
	}
	ox_ctr_add(&w->stats.relay[OX_RELAY_DECRYPTED], 1);
	/* A first packet under new keys promoted them. */
	if (unlikely(rs->peer.n_retired != 0))
		post_retired(w, rs);
	publish_tx(w, rs);
	__atomic_store_n(&sess->last_rx_ns, now, __ATOMIC_RELAXED);
	/* Roaming: a new source is adopted only now that it authenticated. */
	ep_from_pkt(&ep, p);
	if (unlikely(memcmp(&ep, &rs->ep, sizeof(ep)) != 0)) {
		ep_write(rs, &ep);
		ox_ctr_add(&w->stats.relay[OX_RELAY_ROAMED], 1);
	}
	if (n == 0) {
		ox_ctr_add(&w->stats.relay[OX_RELAY_KEY_CONFIRM], 1);
		rte_pktmbuf_free(m);
		return;
	}
	to_plaintext(m, (uint16_t)(payload - rte_pktmbuf_mtod(m, uint8_t *) + OX_DATA_HDR_LEN),
		     (uint16_t)n);
	kind = *rte_pktmbuf_mtod(m, uint8_t *);
	switch (kind) {
	case OX_INNER_KEEPALIVE:
		if (unlikely(n > 1 + OX_KEEPALIVE_MAX_ECHO)) {
			drop_ox(w, m, -OX_DROP_BAD_INNER);
			return;
		}
		ox_ctr_add(&w->stats.relay[OX_RELAY_KEEPALIVE], 1);
		*rte_pktmbuf_mtod(m, uint8_t *) = OX_INNER_ACK;
		ox_ctr_add(&w->stats.relay[OX_RELAY_ACK], 1);
		seal_to(w, sess, m, now);
		return;
	case OX_INNER_DISCONNECT:
		ox_ctr_add(&w->stats.relay[OX_RELAY_DISCONNECT], 1);
		/* Passed on once: more DISCONNECTs of a session that is ending
		 * cannot fill the queue. Lost when it is full anyway: the idle
		 * timeout ends the session. */
		if (!rs->ending) {
			if (rte_ring_mp_enqueue(w->relay->events,
					(void *)((uintptr_t)EV_END << 32 | sess->index)) != 0)
				ox_ctr_add(&w->stats.dp_drops[OX_DP_DROP_EVENT_QUEUE_FULL], 1);
			else
				rs->ending = true;
		}
		rte_pktmbuf_free(m);
		return;
	case OX_INNER_BATCH:
		unbatch(w, sess, m, now);
		return;
	default:
		forward_inner(w, sess, m, now);
	}
}

/* The session a receiver index was issued to, or NULL (any lcore). */
static inline struct ox_session *
by_index(const struct ox_relay *r, uint32_t index)
{
	void *data;

	return rte_hash_lookup_data(r->by_index, &index, &data) >= 0 ? data : NULL;
}

/* The worker hook: every datagram to our port that is not an OXPI probe. */
static bool
relay_rx(struct ox_worker *w, struct ox_slot *s, struct rte_mbuf *m, struct ox_pkt *p)
{
	struct ox_session *sess;
	struct relay_sess *rs;
	struct ox_msg msg;
	int r;

	(void)s;
	r = ox_msg_parse(p->frame + p->payload_off, p->payload_len, &msg);
	if (unlikely(r < 0)) {
		drop_ox(w, m, r);
		return true;
	}
	switch (r) {
	case OX_MSG_DATA:
		sess = by_index(w->relay, msg.index);
		if (unlikely(sess == NULL)) {
			drop_ox(w, m, -OX_DROP_UNKNOWN_INDEX);
			return true;
		}
		rs = ox_session_priv(sess);
		if (likely(rs->owner == w->id)) {
			owner_data(w, sess, m, p);
			return true;
		}
		/* The client moved to another queue: its owner decides. Only
		 * the owner can tell a forgery, so one session (anyone who
		 * knows its index) may hold only so much of the inbox. */
		if (__atomic_fetch_add(&rs->handoffs, 1, __ATOMIC_RELAXED) >= HANDOFF_MAX) {
			__atomic_fetch_sub(&rs->handoffs, 1, __ATOMIC_RELAXED);
			ox_drop_dp(w, m, OX_DP_DROP_HANDOFF_SESSION_LIMIT);
			return true;
		}
		m->hash.usr = INBOX_DATA;
		pkt_mark(w->relay, m, p);
		relay_dyn(w->relay, m)->pkt.sess = sess->index;
		if (rte_ring_mp_enqueue(w->relay->srv->workers[rs->owner]->inbox, m) != 0) {
			__atomic_fetch_sub(&rs->handoffs, 1, __ATOMIC_RELAXED);
			ox_drop_dp(w, m, OX_DP_DROP_HANDOFF_FULL);
		} else {
			ox_ctr_add(&w->stats.relay[OX_RELAY_HANDOFF], 1);
		}
		return true;
	case OX_MSG_INIT:
		/* Without the server's public key an initiation never reaches
		 * the control thread's one queue: flooding it takes the key. */
		r = ox_init_check_mac1(w->relay->mac1_key, p->frame + p->payload_off,
				       p->payload_len);
		if (unlikely(r < 0)) {
			drop_ox(w, m, r);
			return true;
		}
		/* Which worker got it: that one owns a new session. */
		m->hash.usr = w->id;
		pkt_mark(w->relay, m, p);
		if (rte_ring_mp_enqueue(w->relay->hs_ring, m) != 0)
			ox_drop_dp(w, m, OX_DP_DROP_HS_QUEUE_FULL);
		else
			ox_ctr_add(&w->stats.relay[OX_RELAY_HS_QUEUED], 1);
		return true;
	default:
		/* RESPONSE, COOKIE: a server never takes them; OXPI is done. */
		drop_ox(w, m, -OX_DROP_UNEXPECTED);
		return true;
	}
}

/* Is this source one of the tunnel pools' client addresses (not the
 * relay's own)? */
static inline bool
from_client_pool(const struct ox_relay *r, const uint8_t *ip)
{
	const struct ox_addrpool_conf *pc = &r->srv->pool_conf;

	if ((ip[0] >> 4) == 4) {
		const struct rte_ipv4_hdr *h = (const struct rte_ipv4_hdr *)ip;
		uint32_t src = rte_be_to_cpu_32(h->src_addr);

		return src != r->gw.v4 &&
			(src ^ pc->v4_net) >> (32 - pc->v4_prefix) == 0;
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
static bool
relay_tap(struct ox_worker *w, struct ox_slot *s, struct rte_mbuf *m, struct ox_session *sess)
{
	(void)s;
	rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
	/* Client addresses live behind the relay, never in front of it: from
	 * the kernel's side such a source is someone posing as a client. */
	if (unlikely(from_client_pool(w->relay, rte_pktmbuf_mtod(m, const uint8_t *)))) {
		ox_drop_dp(w, m, OX_DP_DROP_TAP_SPOOFED_SRC);
		return true;
	}
	if (unlikely(m->data_len > w->relay->srv->conf.mtu)) {
		ox_drop_dp(w, m, OX_DP_DROP_INNER_TOO_BIG);
		return true;
	}
	ox_ctr_add(&w->stats.relay[OX_RELAY_FROM_TAP], 1);
	seal_to(w, sess, m, w->now_ns);
	return true;
}

void
ox_relay_inbox(struct ox_worker *w, struct rte_mbuf *m)
{
	struct ox_relay *r = w->relay;
	struct relay_install *in;
	struct ox_session *sess;
	struct ox_pkt p;
	uint32_t idx;

	switch (m->hash.usr) {
	case INBOX_RESPONSE:
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
		ox_worker_tx(w, w->tx_slot, m);
		return;
	case INBOX_SEND:
		ox_worker_tx(w, w->tx_slot, m);
		return;
	case INBOX_DATA:
		/* Off the session's count, if it is still the same session. */
		sess = ox_sessions_by_index(w->sessions, relay_dyn(r, m)->pkt.sess);
		if (sess != NULL)
			__atomic_fetch_sub(&((struct relay_sess *)ox_session_priv(sess))->handoffs, 1,
					   __ATOMIC_RELAXED);
		/* relay_rx parsed it and classified it as DATA already. */
		pkt_unmark(r, m, &p);
		memcpy(&idx, p.frame + p.payload_off + 4, sizeof(idx));
		sess = by_index(r, rte_le_to_cpu_32(idx));
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

/* ------------------------------------------------------------- control */

static struct relay_install *
install_slot(struct ox_relay *r)
{
	unsigned int i;

	for (i = 0; i < INSTALLS; i++) {
		struct relay_install *in = &r->installs[(r->next_install + i) % INSTALLS];

		if (__atomic_load_n(&in->busy, __ATOMIC_ACQUIRE) == 0) {
			r->next_install = (r->next_install + i + 1) % INSTALLS;
			return in;
		}
	}
	return NULL;
}

/* Hand a finished frame to a worker's TX. @return 0, or -ENOBUFS (freed). */
static int
to_worker(struct ox_relay *r, uint16_t wid, struct rte_mbuf *m, enum inbox_kind kind)
{
	m->hash.usr = kind;
	if (rte_ring_mp_enqueue(r->srv->workers[wid]->inbox, m) != 0) {
		r->relay_hs_drops[RELAY_HS_REPLY_INBOX_FULL]++;
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	return 0;
}

/* A new receiver index: random, never 0, held by nobody. */
static int
index_issue(struct ox_relay *r, struct ox_session *sess, uint32_t *out)
{
	struct relay_sess *rs = ox_session_priv(sess);
	uint32_t idx;
	int i;

	if (rs->n_idx == IDX_MAX)
		return -ENOSPC;
	for (i = 0; i < 16; i++) {
		idx = (uint32_t)rte_rand();
		if (idx != 0 && rte_hash_lookup(r->by_index, &idx) < 0)
			break;
	}
	if (i == 16 || rte_hash_add_key_data(r->by_index, &idx, sess) != 0)
		return -ENOSPC;
	rs->idx[rs->n_idx++] = idx;
	*out = idx;
	return 0;
}

/* A receiver index no keypair of its session uses any more. */
static void
index_retire(struct ox_relay *r, uint32_t idx)
{
	struct ox_session *sess = by_index(r, idx);
	struct relay_sess *rs;
	unsigned int i;

	if (sess == NULL)
		return;
	rs = ox_session_priv(sess);
	for (i = 0; i < rs->n_idx; i++) {
		if (rs->idx[i] == idx) {
			rs->idx[i] = rs->idx[--rs->n_idx];
			rte_hash_del_key(r->by_index, &idx);
			return;
		}
	}
}

/*
 * Wipe what a session held, once lib/sessions says no lcore can hold it
 * any more (a grace period after its end).
 */
static void
session_released(struct ox_session *sess, void *arg)
{
	struct relay_sess *rs = ox_session_priv(sess);

	(void)arg;
	ox_peer_wipe(&rs->peer);
	ox_sendkey_wipe(&rs->tx[0]);
	ox_sendkey_wipe(&rs->tx[1]);
}

/*
 * End a session: lookups stop finding it at once; its keys are wiped a
 * grace period later (session_released), when no worker can hold it.
 */
static void
remove_session(struct ox_relay *r, struct ox_session *sess)
{
	struct relay_sess *rs = ox_session_priv(sess);
	int32_t pos;

	while (rs->n_idx > 0)
		rte_hash_del_key(r->by_index, &rs->idx[--rs->n_idx]);
	pos = rte_hash_del_key(r->by_key, sess->key);
	if (pos < 0)
		SRV_LOG(WARNING, "session %#x had no key entry", sess->index);
	ox_sessions_del(r->srv->sessions, sess);
	r->removed++;
}

static void
handle_init(struct ox_relay *r, struct rte_mbuf *m, uint64_t now)
{
	uint16_t wid = (uint16_t)m->hash.usr;
	uint8_t cookie[OX_COOKIE_LEN];
	struct ox_responder resp;
	struct ox_hs_payload pl;
	struct relay_install *in;
	struct ox_session *sess = NULL;
	struct relay_sess *rs;
	struct ox_tunnel_addr addr;
	struct ox_src src;
	struct ox_pkt p;
	uint8_t *payload;
	uint32_t idx;
	void *data;
	int ret;

	pkt_unmark(r, m, &p);
	payload = p.frame + p.payload_off;
	memset(&src, 0, sizeof(src));
	if (p.ipv6) {
		memcpy(src.addr, ((struct rte_ipv6_hdr *)(p.frame + p.l3_off))->src_addr, 16);
	} else {
		src.addr[10] = 0xff;
		src.addr[11] = 0xff;
		memcpy(src.addr + 12, &((struct rte_ipv4_hdr *)(p.frame + p.l3_off))->src_addr, 4);
	}
	src.port = rte_be_to_cpu_16(((struct rte_udp_hdr *)(p.frame + p.l4_off))->src_port);

	ret = ox_hs_consume_init(r->hs, payload, p.payload_len, &src, now, r->under_load,
				 &resp, cookie);
	if (ret == -OX_DROP_COOKIE_SENT) {
		r->cookies++;
		r->hs_drops[OX_DROP_COOKIE_SENT]++;
		memcpy(payload, cookie, sizeof(cookie));
		ox_pkt_reply(&p);
		ox_pkt_finish(&p, sizeof(cookie));
		m->data_len = m->pkt_len = (uint16_t)(p.payload_off + sizeof(cookie));
		to_worker(r, wid, m, INBOX_SEND);
		return;
	}
	if (ret < 0) {
		r->hs_drops[-ret]++;
		goto free;
	}
	/* Accepted: its timestamp outlives the allow-list entry. */
	if (ox_tsstore_note(r->ts, resp.peer_key, resp.peer->last_init) != 0)
		r->ts_failing = true;
	in = install_slot(r);
	if (in == NULL) {
		/* Owners are not keeping up; the client retries in 5 s. */
		r->relay_hs_drops[RELAY_HS_INSTALLS_FULL]++;
		goto free_resp;
	}
	if (rte_hash_lookup_data(r->by_key, resp.peer_key, &data) >= 0) {
		sess = data;
		r->hs_rekey++;
	} else {
		ret = ox_addrpool_get(r->pool, resp.peer_key, &addr);
		if (ret != 0) {
			r->relay_hs_drops[RELAY_HS_NO_ADDRESS]++;
			goto free_resp;
		}
		ret = ox_sessions_add(r->srv->sessions, resp.peer_key, &addr, now, &sess);
		if (ret != 0) {
			r->relay_hs_drops[ret == -EEXIST ? RELAY_HS_ADDRESS_IN_USE :
					  RELAY_HS_SESSIONS_FULL]++;
			goto free_resp;
		}
		rs = ox_session_priv(sess);
		ox_peer_init(&rs->peer);
		rte_seqlock_init(&rs->ep_lock);
		ep_from_pkt(&rs->ep, &p);
		rs->owner = wid;
		if (rte_hash_add_key_data(r->by_key, resp.peer_key, sess) != 0) {
			ox_sessions_del(r->srv->sessions, sess);
			r->relay_hs_drops[RELAY_HS_SESSIONS_FULL]++;
			goto free_resp;
		}
		r->hs_new++;
	}
	rs = ox_session_priv(sess);
	if (index_issue(r, sess, &idx) != 0) {
		r->relay_hs_drops[RELAY_HS_NO_INDEX]++;
		goto free_resp;
	}
	memset(&pl, 0, sizeof(pl));
	pl.v4 = sess->addr.v4;
	memcpy(pl.v6, sess->addr.v6, 16);
	pl.v4_prefix = r->srv->pool_conf.v4_prefix;
	pl.v6_prefix = r->srv->pool_conf.v6_prefix;
	pl.mtu = r->srv->conf.mtu;
	pl.keepalive_s = r->srv->conf.keepalive;
	in->sess_index = sess->index;
	if (ox_hs_make_response(r->hs, &resp, &pl, idx, now, payload, &in->kp) != 0) {
		r->hs_drops[OX_DROP_CRYPTO]++;
		index_retire(r, idx);
		goto free;
	}
	r->hs_ok++;
	__atomic_store_n(&in->busy, 1, __ATOMIC_RELEASE);
	ox_pkt_reply(&p);
	ox_pkt_finish(&p, OX_RESPONSE_LEN);
	m->data_len = m->pkt_len = (uint16_t)(p.payload_off + OX_RESPONSE_LEN);
	relay_dyn(r, m)->install = in;
	/* The owner installs the keypair before the client can use it. */
	if (to_worker(r, rs->owner, m, INBOX_RESPONSE) != 0) {
		/* Never reaches the owner: the slot and the index would
		 * stay taken. */
		ox_keypair_wipe(&in->kp);
		__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
		index_retire(r, idx);
	}
	return;
free_resp:
	sodium_memzero(&resp, sizeof(resp));
free:
	rte_pktmbuf_free(m);
}

static bool
zero16(const uint8_t *b)
{
	static const uint8_t z[16];

	return memcmp(b, z, 16) == 0;
}

/*
 * The address pool an allow-list gives, the same at start and at every
 * reload: its fixed addresses reserved first, then, from @p old, the pool
 * addresses of keys still listed without fixed ones, where no fixed one took
 * them (clients keep their addresses across reloads). A key left off the
 * list is not carried over: its addresses are free again.
 */
static struct ox_addrpool *
pool_build(const struct ox_allowlist *al, const struct ox_addrpool *old,
	   const struct ox_addrpool_conf *pc, char *err, size_t errlen)
{
	const struct ox_allow_entry *e;
	struct ox_addrpool *p;
	struct ox_tunnel_addr a;
	const uint8_t *key;
	uint32_t i, iter = 0;
	bool fixed;
	int ret;

	p = ox_addrpool_create(pc);
	if (p == NULL) {
		snprintf(err, errlen, "cannot make the address pool: %s", strerror(errno));
		return NULL;
	}
	for (i = 0; i < al->n; i++) {
		e = &al->e[i];
		if (e->v4 == 0 && zero16(e->v6))
			continue;
		ret = ox_addrpool_reserve(p, e->key, e->v4, zero16(e->v6) ? NULL : e->v6);
		if (ret != 0) {
			snprintf(err, errlen, "allow-list line %u: %s", e->line,
				 ret == -EINVAL ? "address outside the pools, or the relay's own" :
				 ret == -EEXIST ? "address (or the IPv6 derived from the IPv4) "
						  "is another line's" :
				 strerror(-ret));
			ox_addrpool_free(p);
			return NULL;
		}
	}
	while (old != NULL && ox_addrpool_next(old, &iter, &key, &a, &fixed) == 0) {
		e = ox_allowlist_find(al, key);
		if (e == NULL || e->v4 != 0 || !zero16(e->v6))
			continue;
		/* -EEXIST: a fixed address took it; the key gets another. */
		ox_addrpool_claim(p, key, a.v4);
	}
	return p;
}

/*
 * After a reload: end the sessions of keys no longer listed, and of keys
 * whose addresses are not the ones the new pool holds for them (a fixed
 * address added, changed or taken from them).
 */
static void
end_stale_sessions(struct ox_relay *r)
{
	const void *key;
	void *data;
	uint32_t iter = 0;
	struct ox_session *gone[CTRL_BURST];
	const char *why[CTRL_BURST];
	struct ox_tunnel_addr a;
	unsigned int n, i;

	/* Deleting a key moves no other (no extendable buckets): the walk
	 * goes on where it stopped. */
	do {
		n = 0;
		while (n < CTRL_BURST && rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0) {
			struct ox_session *sess = data;

			if (ox_allowlist_find(&r->allow, key) == NULL) {
				why[n] = "key no longer on the allow-list";
				gone[n++] = sess;
			} else if (ox_addrpool_find(r->pool, key, &a) != 0 ||
				   a.v4 != sess->addr.v4 || memcmp(a.v6, sess->addr.v6, 16) != 0) {
				why[n] = "its tunnel addresses changed";
				gone[n++] = sess;
			}
		}
		for (i = 0; i < n; i++) {
			SRV_LOG(INFO, "session %#x ended: %s", gone[i]->index, why[i]);
			remove_session(r, gone[i]);
		}
	} while (n == CTRL_BURST);
}

static void
reload_allowlist(struct ox_relay *r)
{
	struct ox_allowlist fresh;
	struct ox_addrpool *pool;
	char err[512];
	int ret;

	ret = ox_allowlist_load(&fresh, r->srv->conf.allow_file, &r->allow,
				r->srv->conf.max_sessions, err, sizeof(err));
	if (ret == 0) {
		/* A key listed again keeps refusing its old initiations. */
		ox_tsstore_apply(r->ts, &fresh);
		pool = pool_build(&fresh, r->pool, &r->srv->pool_conf, err, sizeof(err));
		if (pool == NULL) {
			ox_allowlist_free(&fresh);
			ret = -EINVAL;
		}
	}
	if (ret != 0) {
		r->reload_errors++;
		SRV_LOG(ERR, "allow-list not reloaded, the previous one stays: %s", err);
		return;
	}
	/* Only the control thread reads the list and the pool: swap and free
	 * at once. */
	ox_hs_set_allowlist(r->hs, &fresh);
	ox_allowlist_free(&r->allow);
	r->allow = fresh;
	ox_hs_set_allowlist(r->hs, &r->allow);
	ox_addrpool_free(r->pool);
	r->pool = pool;
	r->reloads++;
	SRV_LOG(NOTICE, "allow-list reloaded: %u key(s)", r->allow.n);
	end_stale_sessions(r);
}

static void
reap_idle(struct ox_relay *r, uint64_t now)
{
	uint64_t idle = (uint64_t)r->srv->conf.idle_timeout * 1000000000u;
	struct ox_session *gone[CTRL_BURST];
	const void *key;
	void *data;
	uint32_t iter = 0;
	unsigned int n = 0, i;

	while (n < CTRL_BURST && rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0) {
		struct ox_session *sess = data;
		uint64_t last = __atomic_load_n(&sess->last_rx_ns, __ATOMIC_RELAXED);

		if (now > last && now - last > idle)
			gone[n++] = sess;
	}
	for (i = 0; i < n; i++) {
		SRV_LOG(INFO, "session %#x ended: idle for %u s", gone[i]->index,
			r->srv->conf.idle_timeout);
		remove_session(r, gone[i]);
		r->reaped++;
	}
}

unsigned int
ox_relay_control(struct ox_server *srv)
{
	struct ox_relay *r = srv->relay;
	struct rte_mbuf *ms[CTRL_BURST];
	void *ev[CTRL_BURST];
	unsigned int n, i, work;
	uint64_t now;

	if (r == NULL)
		return 0;
	now = ox_mono_ns();
	/* Under load when initiations queue up or arrive faster than
	 * --hs-load-pps (over the last 100 ms): then only sources that proved
	 * their address (mac2) get a Diffie-Hellman. */
	if (now - r->win_start_ns >= 100000000u) {
		r->last_win_inits = r->win_inits;
		r->win_inits = 0;
		r->win_start_ns = now;
	}
	r->under_load = rte_ring_count(r->hs_ring) > rte_ring_get_capacity(r->hs_ring) / 8 ||
		r->last_win_inits * 10 > srv->conf.hs_load_pps ||
		r->win_inits * 10 > srv->conf.hs_load_pps;
	if (r->under_load)
		r->under_load_polls++;
	n = rte_ring_sc_dequeue_burst(r->hs_ring, (void **)ms, CTRL_BURST, NULL);
	work = n;
	r->win_inits += n;
	for (i = 0; i < n; i++) {
		uint64_t t0 = rte_rdtsc(), ok0 = r->hs_ok;

		handle_init(r, ms[i], now);
		/* What an initiation costs the control thread, bogus or not. */
		if (r->hs_ok != ok0) {
			r->cycles_ok += rte_rdtsc() - t0;
		} else {
			r->cycles_bad += rte_rdtsc() - t0;
			r->n_bad++;
		}
	}
	/* Every event waiting: none is left to fill the ring. */
	while ((n = rte_ring_sc_dequeue_burst(r->events, ev, CTRL_BURST, NULL)) > 0) {
		work += n;
		for (i = 0; i < n; i++) {
			uintptr_t e = (uintptr_t)ev[i];
			uint32_t v = (uint32_t)e;
			struct ox_session *sess;

			switch (e >> 32) {
			case EV_END:
				sess = ox_sessions_by_index(srv->sessions, v);
				if (sess != NULL) {
					SRV_LOG(INFO, "session %#x ended by its client",
						sess->index);
					remove_session(r, sess);
				}
				break;
			case EV_RETIRE:
				index_retire(r, v);
				break;
			}
		}
	}
	if (reload_requested) {
		reload_requested = 0;
		reload_allowlist(r);
	}
	if (now - r->last_reap_ns > 1000000000u) {
		char err[256];

		r->last_reap_ns = now;
		reap_idle(r, now);
		ox_sessions_reclaim(srv->sessions);
		/* Said once when it starts failing, once when it works again. */
		if (ox_tsstore_flush(r->ts, err, sizeof(err)) != 0) {
			if (!r->ts_failing)
				SRV_LOG(ERR, "handshake state not saved: %s", err);
			r->ts_failing = true;
		} else if (r->ts_failing) {
			SRV_LOG(NOTICE, "handshake state saved again");
			r->ts_failing = false;
		}
	}
	return work;
}

int
ox_relay_init(struct ox_server *srv)
{
	static const struct rte_mbuf_dynfield dyn = {
		.name = "oxidize_relay_install",
		.size = sizeof(union relay_dyn),
		.align = __alignof__(union relay_dyn),
	};
	struct rte_hash_parameters hp = {
		.name = "ox_by_key",
		.entries = RTE_MAX(srv->conf.max_sessions, 16u),
		.key_len = OX_KEY_LEN,
		.socket_id = (int)rte_socket_id(),
	};
	/* Three keypairs a session (current, previous, next), each with its
	 * index; lock-free readers, entries recycled after a grace period. */
	struct rte_hash_parameters ip = {
		.name = "ox_by_index",
		.entries = RTE_MAX(srv->conf.max_sessions * 3, 64u),
		.key_len = sizeof(uint32_t),
		.socket_id = (int)rte_socket_id(),
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
			      RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash_rcu_config irc = {
		.v = ox_sessions_rcu(srv->sessions),
		.mode = RTE_HASH_QSBR_MODE_DQ,
	};
	uint8_t priv[OX_KEY_LEN];
	char err[512], pub64[OX_KEY_B64_LEN + 1];
	struct ox_relay *r;
	unsigned int i;
	int ret;

	if (srv->conf.key_file[0] == '\0')
		return 0;
	if (srv->conf.allow_file[0] == '\0') {
		fprintf(stderr, "oxidize-server: --key needs --allow (the allow-list of client "
			"public keys)\n");
		return -EINVAL;
	}
	r = rte_zmalloc("ox_relay", sizeof(*r), RTE_CACHE_LINE_SIZE);
	if (r == NULL)
		return -ENOMEM;
	r->srv = srv;
	ret = ox_key_load(srv->conf.key_file, priv, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "oxidize-server: %s\n", err);
		goto fail;
	}
	r->hs = ox_hs_create(priv, NULL);
	sodium_memzero(priv, sizeof(priv));
	if (r->hs == NULL) {
		ret = -errno;
		fprintf(stderr, "oxidize-server: key file %s does not hold a usable X25519 key\n",
			srv->conf.key_file);
		goto fail;
	}
	ret = ox_allowlist_load(&r->allow, srv->conf.allow_file, NULL, srv->conf.max_sessions,
				err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "oxidize-server: %s\n", err);
		goto fail;
	}
	r->ts = ox_tsstore_open(srv->conf.state_file[0] ? srv->conf.state_file : NULL,
				err, sizeof(err));
	if (r->ts == NULL) {
		ret = -errno;
		fprintf(stderr, "oxidize-server: --state: %s\n", err);
		goto fail;
	}
	if (srv->conf.state_file[0] == '\0')
		SRV_LOG(NOTICE, "relay: no --state file: after a restart, initiations captured "
			"before it are not recognised as replays");
	ox_tsstore_apply(r->ts, &r->allow);
	ox_hs_set_allowlist(r->hs, &r->allow);
	ox_mac1_key(r->mac1_key, ox_hs_public(r->hs));
	r->pool = pool_build(&r->allow, NULL, &srv->pool_conf, err, sizeof(err));
	if (r->pool == NULL) {
		fprintf(stderr, "oxidize-server: %s\n", err);
		ret = -EINVAL;
		goto fail;
	}
	ox_addrpool_gateway(r->pool, &r->gw);
	ret = srv_exit_policy(srv, &r->gw, &r->policy);
	if (ret != 0)
		goto fail;
	r->hs_ring = rte_ring_create("ox_hs", rte_align32pow2(srv->conf.hs_queue),
				     (int)rte_socket_id(), RING_F_SC_DEQ);
	r->events = rte_ring_create("ox_events", EVENTS_SIZE, (int)rte_socket_id(),
				    RING_F_SC_DEQ);
	r->by_key = rte_hash_create(&hp);
	r->rcu = ox_sessions_rcu(srv->sessions);
	r->by_index = rte_hash_create(&ip);
	if (r->by_index != NULL && rte_hash_rcu_qsbr_add(r->by_index, &irc) != 0) {
		rte_hash_free(r->by_index);
		r->by_index = NULL;
	}
	r->installs = rte_zmalloc("ox_installs", sizeof(*r->installs) * INSTALLS,
				  RTE_CACHE_LINE_SIZE);
	r->dyn_off = rte_mbuf_dynfield_register(&dyn);
	if (r->hs_ring == NULL || r->events == NULL || r->by_key == NULL ||
	    r->by_index == NULL || r->installs == NULL || r->dyn_off < 0) {
		ret = -rte_errno;
		fprintf(stderr, "oxidize-server: relay setup failed: %s\n", rte_strerror(rte_errno));
		goto fail;
	}
	for (i = 0; i < srv->n_workers; i++) {
		struct ox_worker *w = srv->workers[i];
		char name[RTE_RING_NAMESIZE];

		snprintf(name, sizeof(name), "ox_inbox%u", i);
		w->inbox = rte_ring_create(name, INBOX_SIZE, (int)rte_lcore_to_socket_id(w->lcore_id),
					   RING_F_SC_DEQ);
		w->aead = ox_aead_create(OX_AEAD_AUTO);
		if (w->inbox == NULL || w->aead == NULL) {
			ret = -ENOMEM;
			goto fail;
		}
		if (w->tx_slot == NULL) {
			fprintf(stderr, "oxidize-server: lcore %u has no port queue to send from; "
				"use no more lcores than queues\n", w->lcore_id);
			ret = -EINVAL;
			goto fail;
		}
		w->relay = r;
		w->hook = relay_rx;
		w->tap_hook = relay_tap;
	}
	ox_sessions_set_release(srv->sessions, session_released, r);
	srv->relay = r;
	ox_key_to_base64(pub64, ox_hs_public(r->hs));
	SRV_LOG(NOTICE, "relay: public key %s, %u allowed key(s), tunnel MTU %u",
		pub64, r->allow.n, srv->conf.mtu);
	return 0;
fail:
	sodium_memzero(priv, sizeof(priv));
	srv->relay = r;
	ox_relay_free(srv);
	return ret < 0 ? ret : -EINVAL;
}

void
ox_relay_free(struct ox_server *srv)
{
	struct ox_relay *r = srv->relay;
	struct rte_mbuf *m;
	unsigned int i;

	if (r == NULL)
		return;
	for (i = 0; i < srv->n_workers; i++) {
		struct ox_worker *w = srv->workers[i];

		if (w->inbox != NULL) {
			while (rte_ring_dequeue(w->inbox, (void **)&m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(w->inbox);
			w->inbox = NULL;
		}
		ox_aead_free(w->aead);
		w->aead = NULL;
		w->relay = NULL;
		w->hook = NULL;
		w->tap_hook = NULL;
	}
	if (r->hs_ring != NULL) {
		while (rte_ring_dequeue(r->hs_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(r->hs_ring);
	}
	rte_ring_free(r->events);
	/* The workers have stopped: no key outlives the process in memory. */
	if (r->by_key != NULL) {
		const void *key;
		void *data;
		uint32_t iter = 0;

		while (rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0)
			session_released(data, r);
	}
	rte_hash_free(r->by_key);
	rte_hash_free(r->by_index);
	ox_sessions_set_release(srv->sessions, NULL, NULL);
	if (r->installs != NULL) {
		for (i = 0; i < INSTALLS; i++)
			ox_keypair_wipe(&r->installs[i].kp);
		rte_free(r->installs);
	}
	if (r->ts != NULL) {
		char err[256];

		if (ox_tsstore_flush(r->ts, err, sizeof(err)) != 0)
			SRV_LOG(ERR, "handshake state not saved: %s", err);
		ox_tsstore_close(r->ts);
	}
	ox_addrpool_free(r->pool);
	ox_policy_free(r->policy);
	ox_allowlist_free(&r->allow);
	ox_hs_free(r->hs);
	rte_free(r);
	srv->relay = NULL;
}

void
ox_relay_telemetry(const struct ox_server *srv, struct rte_tel_data *d)
{
	const struct ox_relay *r = srv->relay;
	char key[64];
	unsigned int k;

	rte_tel_data_add_dict_u64(d, "sessions", ox_sessions_count(srv->sessions));
	if (r == NULL)
		return;
	rte_tel_data_add_dict_u64(d, "handshakes", r->hs_ok);
	rte_tel_data_add_dict_u64(d, "handshakes_new", r->hs_new);
	rte_tel_data_add_dict_u64(d, "handshakes_rekey", r->hs_rekey);
	rte_tel_data_add_dict_u64(d, "cookies_sent", r->cookies);
	rte_tel_data_add_dict_u64(d, "under_load", r->under_load);
	rte_tel_data_add_dict_u64(d, "under_load_polls", r->under_load_polls);
	rte_tel_data_add_dict_u64(d, "hs_cycles_per_accepted",
				  r->hs_ok ? r->cycles_ok / r->hs_ok : 0);
	rte_tel_data_add_dict_u64(d, "hs_cycles_per_refused",
				  r->n_bad ? r->cycles_bad / r->n_bad : 0);
	rte_tel_data_add_dict_u64(d, "hs_refused", r->n_bad);
	rte_tel_data_add_dict_u64(d, "sessions_reaped", r->reaped);
	rte_tel_data_add_dict_u64(d, "sessions_removed", r->removed);
	rte_tel_data_add_dict_u64(d, "allowlist_keys", r->allow.n);
	rte_tel_data_add_dict_u64(d, "allowlist_reloads", r->reloads);
	rte_tel_data_add_dict_u64(d, "allowlist_reload_errors", r->reload_errors);
	for (k = 1; k < OX_DROP_MAX; k++) {
		snprintf(key, sizeof(key), "hs_drop_%s", ox_drop_name((int)k));
		rte_tel_data_add_dict_u64(d, key, r->hs_drops[k]);
	}
	for (k = 0; k < RELAY_HS_MAX; k++) {
		snprintf(key, sizeof(key), "hs_drop_%s", relay_hs_drop_names[k]);
		rte_tel_data_add_dict_u64(d, key, r->relay_hs_drops[k]);
	}
}
