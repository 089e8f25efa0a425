/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/pkt: every outer drop reason is reached by the frame built to reach
 * it and by nothing else; replies keep valid checksums; parsing never reads
 * past the frame (frames are copied into exact-size heap buffers, so ASan
 * catches any over-read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "ox_test.h"
#include "ox_pkt.h"

#define PORT 51820

struct frame {
	uint8_t b[2048];
	uint32_t len;
};

enum { V4, V6 };

/* A valid datagram: [vlan] ip udp payload, checksums right. */
static void
build(struct frame *f, int ver, bool vlan, const char *payload, uint16_t plen)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f->b;
	struct rte_udp_hdr *udp;
	uint8_t *l3;

	memset(f, 0, sizeof(*f));
	memcpy(eth->dst_addr.addr_bytes, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(eth->src_addr.addr_bytes, "\x02\x00\x00\x00\x00\x02", 6);
	l3 = (uint8_t *)(eth + 1);
	if (vlan) {
		struct rte_vlan_hdr *vh = (struct rte_vlan_hdr *)l3;

		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
		vh->vlan_tci = rte_cpu_to_be_16(42);
		vh->eth_proto =
			rte_cpu_to_be_16(ver == V4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
		l3 += sizeof(*vh);
	} else {
		eth->ether_type =
			rte_cpu_to_be_16(ver == V4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
	}
	if (ver == V4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l3;

		ip->version_ihl = 0x45;
		ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*udp) + plen);
		ip->time_to_live = 7;
		ip->next_proto_id = IPPROTO_UDP;
		ip->src_addr = rte_cpu_to_be_32(0xc612000a);
		ip->dst_addr = rte_cpu_to_be_32(0xc6120001);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		udp = (struct rte_udp_hdr *)(ip + 1);
		udp->src_port = rte_cpu_to_be_16(40000);
		udp->dst_port = rte_cpu_to_be_16(PORT);
		udp->dgram_len = rte_cpu_to_be_16(sizeof(*udp) + plen);
		memcpy(udp + 1, payload, plen);
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	} else {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)l3;

		ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
		ip6->payload_len = rte_cpu_to_be_16(sizeof(*udp) + plen);
		ip6->proto = IPPROTO_UDP;
		ip6->hop_limits = 9;
		memcpy(ip6->src_addr,
		       "\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a", 16);
		memcpy(ip6->dst_addr,
		       "\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16);
		udp = (struct rte_udp_hdr *)(ip6 + 1);
		udp->src_port = rte_cpu_to_be_16(40000);
		udp->dst_port = rte_cpu_to_be_16(PORT);
		udp->dgram_len = rte_cpu_to_be_16(sizeof(*udp) + plen);
		memcpy(udp + 1, payload, plen);
		udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
	}
	f->len = (uint32_t)((uint8_t *)(udp + 1) + plen - f->b);
}

/* Parse a copy in an exact-size buffer. */
static int
parse_exact(const struct frame *f, struct ox_pkt *p, uint8_t **buf)
{
	*buf = malloc(f->len ? f->len : 1);
	memcpy(*buf, f->b, f->len);
	return ox_pkt_parse(*buf, f->len, PORT, p);
}

static const char *reason(int r);

/*
 * What the server does with an unauthenticated datagram (a probe): parse,
 * then check the UDP checksum. -1 accepted, else the drop reason.
 */
static int
parse_once(const struct frame *f)
{
	struct ox_pkt p;
	uint8_t *buf;
	int r = parse_exact(f, &p, &buf);

	if (r == 0) {
		int c = ox_pkt_csum_check(&p);

		r = c < 0 ? c : 0;
	}
	free(buf);
	return r;
}

static uint16_t
l3off(bool vlan)
{
	return (uint16_t)(sizeof(struct rte_ether_hdr) + (vlan ? 4 : 0));
}

static struct rte_ipv4_hdr *
ip4(struct frame *f, bool vlan)
{
	return (struct rte_ipv4_hdr *)(f->b + l3off(vlan));
}

static struct rte_ipv6_hdr *
ip6(struct frame *f, bool vlan)
{
	return (struct rte_ipv6_hdr *)(f->b + l3off(vlan));
}

static struct rte_udp_hdr *
udp4(struct frame *f, bool vlan)
{
	return (struct rte_udp_hdr *)(f->b + l3off(vlan) + 20);
}

static void
refresh_ip4_csum(struct frame *f, bool vlan)
{
	ip4(f, vlan)->hdr_checksum = 0;
	ip4(f, vlan)->hdr_checksum = rte_ipv4_cksum(ip4(f, vlan));
}

/* Each mutation of a valid frame, and the reason it must give. */
struct mutation {
	const char *name;
	int ver;
	void (*mutate)(struct frame *f, bool vlan);
	int expect;
};

static void
m_none(struct frame *f, bool v)
{
	(void)f;
	(void)v;
}
static void
m_trunc_eth(struct frame *f, bool v)
{
	(void)v;
	f->len = 10;
}
static void
m_arp(struct frame *f, bool v)
{
	if (v)
		((struct rte_vlan_hdr *)(f->b + 14))->eth_proto =
			rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	else
		((struct rte_ether_hdr *)f->b)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
}
static void
m_trunc_ip4(struct frame *f, bool v)
{
	f->len = l3off(v) + 12;
}
static void
m_ver4(struct frame *f, bool v)
{
	ip4(f, v)->version_ihl = 0x55;
	refresh_ip4_csum(f, v);
}
static void
m_ihl(struct frame *f, bool v)
{
	ip4(f, v)->version_ihl = 0x44;
}
static void
m_ihl_long(struct frame *f, bool v)
{
	ip4(f, v)->version_ihl = 0x4f;
	f->len = l3off(v) + 40;
}
static void
m_iplen_long(struct frame *f, bool v)
{
	ip4(f, v)->total_length = rte_cpu_to_be_16(rte_be_to_cpu_16(ip4(f, v)->total_length) + 1);
	refresh_ip4_csum(f, v);
}
static void
m_iplen_short(struct frame *f, bool v)
{
	ip4(f, v)->total_length = rte_cpu_to_be_16(19);
	refresh_ip4_csum(f, v);
}
static void
m_ipcsum(struct frame *f, bool v)
{
	ip4(f, v)->hdr_checksum ^= 0x0100;
}
static void
m_frag_mf(struct frame *f, bool v)
{
	ip4(f, v)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
	refresh_ip4_csum(f, v);
}
static void
m_frag_off(struct frame *f, bool v)
{
	ip4(f, v)->fragment_offset = rte_cpu_to_be_16(3);
	refresh_ip4_csum(f, v);
}
static void
m_df(struct frame *f, bool v)
{
	ip4(f, v)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	refresh_ip4_csum(f, v);
}
static void
m_tcp4(struct frame *f, bool v)
{
	ip4(f, v)->next_proto_id = IPPROTO_TCP;
	refresh_ip4_csum(f, v);
}
static void
m_udplen_long(struct frame *f, bool v)
{
	udp4(f, v)->dgram_len = rte_cpu_to_be_16(rte_be_to_cpu_16(udp4(f, v)->dgram_len) + 1);
}
static void
m_udplen_short(struct frame *f, bool v)
{
	udp4(f, v)->dgram_len = rte_cpu_to_be_16(7);
}
static void
m_udp_trunc_ip(struct frame *f, bool v)
{
	ip4(f, v)->total_length = rte_cpu_to_be_16(20 + 4);
	refresh_ip4_csum(f, v);
}
static void
m_udpcsum(struct frame *f, bool v)
{
	(void)v;
	f->b[f->len - 1] ^= 0x55;
}
static void
m_udpcsum0(struct frame *f, bool v)
{
	udp4(f, v)->dgram_cksum = 0;
}
static void
m_port(struct frame *f, bool v)
{
	struct rte_udp_hdr *u = udp4(f, v);

	u->dst_port = rte_cpu_to_be_16(PORT + 1);
	u->dgram_cksum = 0;
	u->dgram_cksum = rte_ipv4_udptcp_cksum(ip4(f, v), u);
}
static void
m_pad(struct frame *f, bool v)
{
	(void)v;
	f->len += 6; /* Ethernet padding */
}
static void
m_trunc_ip6(struct frame *f, bool v)
{
	f->len = l3off(v) + 30;
}
static void
m_ver6(struct frame *f, bool v)
{
	ip6(f, v)->vtc_flow = rte_cpu_to_be_32(4u << 28);
}
static void
m_ip6len(struct frame *f, bool v)
{
	ip6(f, v)->payload_len = rte_cpu_to_be_16(rte_be_to_cpu_16(ip6(f, v)->payload_len) + 1);
}
static void
m_frag6(struct frame *f, bool v)
{
	ip6(f, v)->proto = IPPROTO_FRAGMENT;
}
static void
m_hbh6(struct frame *f, bool v)
{
	ip6(f, v)->proto = IPPROTO_HOPOPTS;
}
static void
m_tcp6(struct frame *f, bool v)
{
	ip6(f, v)->proto = IPPROTO_TCP;
}
static void
m_udpcsum0_6(struct frame *f, bool v)
{
	((struct rte_udp_hdr *)(ip6(f, v) + 1))->dgram_cksum = 0;
}
/* What a local sender with checksum offload hands over (CHECKSUM_PARTIAL):
 * the pseudo-header sum, not complemented, and nothing over the data. */
static void
m_partial4(struct frame *f, bool v)
{
	udp4(f, v)->dgram_cksum = rte_ipv4_phdr_cksum(ip4(f, v), 0);
}
static void
m_partial6(struct frame *f, bool v)
{
	((struct rte_udp_hdr *)(ip6(f, v) + 1))->dgram_cksum = rte_ipv6_phdr_cksum(ip6(f, v), 0);
}

static const struct mutation mutations[] = {
	{ "valid v4", V4, m_none, 0 },
	{ "valid v4 with Ethernet padding", V4, m_pad, 0 },
	{ "valid v4 with DF", V4, m_df, 0 },
	{ "valid v4 without UDP checksum", V4, m_udpcsum0, 0 },
	{ "v4 partial UDP checksum (offloaded by a local sender)", V4, m_partial4, 0 },
	{ "truncated Ethernet", V4, m_trunc_eth, -OX_PKT_DROP_SHORT_FRAME },
	{ "ARP", V4, m_arp, -OX_PKT_DROP_NOT_IP },
	{ "truncated IPv4 header", V4, m_trunc_ip4, -OX_PKT_DROP_SHORT_FRAME },
	{ "IPv4 version 5", V4, m_ver4, -OX_PKT_DROP_BAD_IP_VERSION },
	{ "IHL 4", V4, m_ihl, -OX_PKT_DROP_BAD_IP_HDR_LEN },
	{ "IHL past the frame", V4, m_ihl_long, -OX_PKT_DROP_SHORT_FRAME },
	{ "IP length past the frame", V4, m_iplen_long, -OX_PKT_DROP_BAD_IP_LEN },
	{ "IP length below header", V4, m_iplen_short, -OX_PKT_DROP_BAD_IP_LEN },
	{ "IP checksum", V4, m_ipcsum, -OX_PKT_DROP_BAD_IP_CSUM },
	{ "first fragment (MF)", V4, m_frag_mf, -OX_PKT_DROP_IP_FRAGMENT },
	{ "later fragment", V4, m_frag_off, -OX_PKT_DROP_IP_FRAGMENT },
	{ "TCP", V4, m_tcp4, -OX_PKT_DROP_NOT_UDP },
	{ "UDP length past IP", V4, m_udplen_long, -OX_PKT_DROP_BAD_UDP_LEN },
	{ "UDP length below header", V4, m_udplen_short, -OX_PKT_DROP_BAD_UDP_LEN },
	{ "IP payload shorter than UDP header", V4, m_udp_trunc_ip, -OX_PKT_DROP_BAD_UDP_LEN },
	{ "UDP checksum", V4, m_udpcsum, -OX_PKT_DROP_BAD_UDP_CSUM },
	{ "other port", V4, m_port, -OX_PKT_DROP_WRONG_PORT },
	{ "valid v6", V6, m_none, 0 },
	{ "truncated IPv6 header", V6, m_trunc_ip6, -OX_PKT_DROP_SHORT_FRAME },
	{ "IPv6 version 4", V6, m_ver6, -OX_PKT_DROP_BAD_IP_VERSION },
	{ "IPv6 length past the frame", V6, m_ip6len, -OX_PKT_DROP_BAD_IP_LEN },
	{ "IPv6 fragment header", V6, m_frag6, -OX_PKT_DROP_IP_FRAGMENT },
	{ "IPv6 hop-by-hop header", V6, m_hbh6, -OX_PKT_DROP_IP6_EXT_HDR },
	{ "IPv6 TCP", V6, m_tcp6, -OX_PKT_DROP_NOT_UDP },
	{ "IPv6 zero UDP checksum", V6, m_udpcsum0_6, -OX_PKT_DROP_BAD_UDP_CSUM },
	{ "IPv6 UDP checksum", V6, m_udpcsum, -OX_PKT_DROP_BAD_UDP_CSUM },
	{ "v6 partial UDP checksum (offloaded by a local sender)", V6, m_partial6, 0 },
};

static const char *
reason(int r)
{
	return r == 0 ? "accepted" : r < 0 && -r < OX_PKT_DROP_MAX ? ox_pkt_drop_names[-r] : "?";
}

/* ox_pkt_build() writes frames ox_pkt_parse() accepts, with the checksum
 * form asked for, and ox_pkt_flow_reply() of one is its flow turned round. */
static void
test_builder(void)
{
	static const struct {
		bool ipv6;
		enum ox_pkt_csum ask, want;
	} cases[] = {
		{ false, OX_PKT_CSUM_NONE, OX_PKT_CSUM_NONE },
		{ false, OX_PKT_CSUM_FULL, OX_PKT_CSUM_FULL },
		{ false, OX_PKT_CSUM_PARTIAL, OX_PKT_CSUM_PARTIAL },
		/* IPv6 has no checksum-less form: a full one instead. */
		{ true, OX_PKT_CSUM_NONE, OX_PKT_CSUM_FULL },
		{ true, OX_PKT_CSUM_FULL, OX_PKT_CSUM_FULL },
		{ true, OX_PKT_CSUM_PARTIAL, OX_PKT_CSUM_PARTIAL },
	};
	struct ox_pkt_flow f = {
		.dst_mac = { 2, 0, 0, 0, 0, 1 },
		.src_mac = { 2, 0, 0, 0, 0, 2 },
		.src_port = RTE_BE16(51820),
		.dst_port = RTE_BE16(40000),
	}, back;
	static const uint8_t a6[16] = { 0xfd, 0x6f, [15] = 1 }, b6[16] = { 0xfd, 0x6f, [15] = 2 };
	static const uint8_t a4[4] = { 198, 18, 0, 1 }, b4[4] = { 198, 18, 0, 2 };
	uint8_t frame[256], *pl;
	struct ox_pkt p;
	unsigned int i, k;
	uint16_t len;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f.ipv6 = cases[i].ipv6;
		memset(f.src_ip, 0, 16);
		memset(f.dst_ip, 0, 16);
		memcpy(f.src_ip, f.ipv6 ? a6 : a4, f.ipv6 ? 16 : 4);
		memcpy(f.dst_ip, f.ipv6 ? b6 : b4, f.ipv6 ? 16 : 4);
		memset(frame, 0xee, sizeof(frame));
		pl = frame + OX_PKT_HDR_LEN(f.ipv6);
		for (k = 0; k < 101; k++)
			pl[k] = (uint8_t)(k * 7);
		len = ox_pkt_build(frame, &f, 101, cases[i].ask);
		EXPECT(len == OX_PKT_HDR_LEN(f.ipv6) + 101, "build %u: length %u", i, len);
		r = ox_pkt_parse(frame, len, 40000, &p);
		EXPECT(r == 0, "build %u: parse says %s", i, reason(r));
		if (r != 0)
			continue;
		EXPECT(p.ipv6 == f.ipv6 && p.payload_off == OX_PKT_HDR_LEN(f.ipv6) &&
			       p.payload_len == 101 && p.frame_len == len,
		       "build %u: payload at %u, %u bytes", i, p.payload_off, p.payload_len);
		r = ox_pkt_csum_check(&p);
		EXPECT(r == (int)cases[i].want, "build %u: checksum form %d, want %d", i, r,
		       cases[i].want);
		ox_pkt_flow_reply(&back, &p);
		EXPECT(memcmp(back.dst_mac, f.src_mac, 6) == 0 &&
			       memcmp(back.src_mac, f.dst_mac, 6) == 0 &&
			       memcmp(back.src_ip, f.dst_ip, 16) == 0 &&
			       memcmp(back.dst_ip, f.src_ip, 16) == 0 &&
			       back.src_port == f.dst_port && back.dst_port == f.src_port &&
			       back.ipv6 == f.ipv6,
		       "build %u: the reply flow is the flow turned round", i);
	}
	/* The IP-level builder alone: an inner packet, IPv4 header valid. */
	f.ipv6 = false;
	memcpy(f.src_ip, a4, 4);
	memcpy(f.dst_ip, b4, 4);
	len = ox_pkt_build_ip(frame, &f, 12, OX_PKT_CSUM_FULL);
	EXPECT(len == OX_PKT_IP_HDR_LEN(false) + 12 && rte_raw_cksum(frame, 20) == 0xffff &&
		       rte_ipv4_udptcp_cksum_verify((struct rte_ipv4_hdr *)frame,
						    (struct rte_udp_hdr *)(frame + 20)) == 0,
	       "build_ip: a valid IPv4/UDP packet of %u bytes", len);
}

/* Authenticated datagrams skip the checksum: the parse alone accepts a
 * wrong one, the check refuses it; and each form is told apart. */
static void
test_csum_forms(void)
{
	static const struct {
		const char *name;
		int ver;
		void (*mutate)(struct frame *f, bool vlan);
		int form;
	} cases[] = {
		{ "v4 full", V4, m_none, OX_PKT_CSUM_FULL },
		{ "v4 none", V4, m_udpcsum0, OX_PKT_CSUM_NONE },
		{ "v4 partial", V4, m_partial4, OX_PKT_CSUM_PARTIAL },
		{ "v4 wrong", V4, m_udpcsum, -OX_PKT_DROP_BAD_UDP_CSUM },
		{ "v6 full", V6, m_none, OX_PKT_CSUM_FULL },
		{ "v6 zero", V6, m_udpcsum0_6, -OX_PKT_DROP_BAD_UDP_CSUM },
		{ "v6 partial", V6, m_partial6, OX_PKT_CSUM_PARTIAL },
		{ "v6 wrong", V6, m_udpcsum, -OX_PKT_DROP_BAD_UDP_CSUM },
	};
	struct ox_pkt p, q;
	struct frame f;
	uint8_t *buf;
	unsigned int i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&f, cases[i].ver, false, "OXPI0123456789", 14);
		cases[i].mutate(&f, false);
		r = parse_exact(&f, &p, &buf);
		EXPECT(r == 0, "%s: the parse does not judge the UDP checksum (%s)", cases[i].name,
		       reason(r));
		r = ox_pkt_csum_check(&p);
		EXPECT(r == cases[i].form, "%s: form %d, want %d", cases[i].name, r, cases[i].form);
		if (r == OX_PKT_CSUM_PARTIAL) {
			/* The reply of a partial datagram leaves with a whole checksum. */
			ox_pkt_reply(&p);
			ox_pkt_finish(&p, p.payload_len);
			r = ox_pkt_parse(buf, p.frame_len, 40000, &q);
			EXPECT(r == 0 && ox_pkt_csum_check(&q) == OX_PKT_CSUM_FULL,
			       "%s: the reply has a full checksum", cases[i].name);
		}
		free(buf);
	}
}

static void
test_mutations(void)
{
	bool seen[OX_PKT_DROP_MAX] = { false };
	struct frame f;
	unsigned int i, v;
	int r;

	for (v = 0; v < 2; v++) {
		for (i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
			const struct mutation *m = &mutations[i];

			build(&f, m->ver, v, "OXPI0123456789", 14);
			m->mutate(&f, v);
			r = parse_once(&f);
			EXPECT(r == m->expect, "%s%s: got %s, want %s", m->name, v ? " (VLAN)" : "",
			       reason(r), reason(m->expect));
			if (m->expect < 0)
				seen[-m->expect] = true;
		}
	}
	for (i = 1; i < OX_PKT_DROP_MAX; i++)
		EXPECT(seen[i], "no test reaches drop reason %s", ox_pkt_drop_names[i]);
}

/* Every prefix of a valid frame is rejected (or accepted only if whole). */
static void
test_truncations(void)
{
	struct frame f;
	uint32_t full, n;
	int ver, r;

	for (ver = V4; ver <= V6; ver++) {
		build(&f, ver, true, "OXPI-truncation", 15);
		full = f.len;
		for (n = 0; n < full; n++) {
			f.len = n;
			r = parse_once(&f);
			EXPECT(r != 0, "v%d prefix of %u bytes accepted", ver == V4 ? 4 : 6, n);
		}
	}
}

static void
test_reply(void)
{
	struct ox_pkt p, q;
	struct frame f;
	uint8_t *buf;
	uint16_t old_w, new_w;
	int ver, vlan, r;

	for (ver = V4; ver <= V6; ver++) {
		for (vlan = 0; vlan < 2; vlan++) {
			build(&f, ver, vlan, "OXPI-probe-payload", 18);
			r = parse_exact(&f, &p, &buf);
			EXPECT(r == 0, "valid frame parses");
			EXPECT(p.payload_len == 18, "payload length %u", p.payload_len);
			EXPECT(memcmp(buf + p.payload_off, "OXPI", 4) == 0, "payload offset");
			ox_pkt_reply(&p);
			memcpy(&old_w, buf + p.payload_off + 2, 2);
			memcpy(buf + p.payload_off + 2, "PO", 2);
			memcpy(&new_w, buf + p.payload_off + 2, 2);
			ox_pkt_csum_update(&p, old_w, new_w);
			/* The reply goes to the client's port: parse it as such. */
			r = ox_pkt_parse(buf, f.len, 40000, &q);
			if (r == 0 && ox_pkt_csum_check(&q) != OX_PKT_CSUM_FULL)
				r = -OX_PKT_DROP_BAD_UDP_CSUM;
			EXPECT(r == 0, "reply v%d%s parses with valid checksums (%s)",
			       ver == V4 ? 4 : 6, vlan ? " VLAN" : "", reason(r));
			EXPECT(memcmp(buf + q.payload_off, "OXPO", 4) == 0, "reply payload");
			EXPECT(memcmp(buf, "\x02\x00\x00\x00\x00\x02", 6) == 0, "MACs swapped");
			/* finish() with a shorter payload also yields a valid frame. */
			ox_pkt_finish(&q, 4);
			r = ox_pkt_parse(buf, q.frame_len, 40000, &p);
			if (r == 0 && ox_pkt_csum_check(&p) != OX_PKT_CSUM_FULL)
				r = -OX_PKT_DROP_BAD_UDP_CSUM;
			EXPECT(r == 0 && p.payload_len == 4, "finished frame parses (%s)",
			       reason(r));
			r = ox_pkt_parse(buf, q.frame_len, 0, &p);
			EXPECT(r == 0, "port 0 accepts any destination port (%s)", reason(r));
			free(buf);
		}
	}
}

/* lib/pkt's IPv6 UDP checksum is DPDK's, at every length up to a jumbo
 * frame's and at every alignment of the datagram in memory. */
static void
test_udp6_cksum(void)
{
	static uint8_t buf[9100 + 64] __attribute__((aligned(64)));
	uint32_t seed = 12345, n, i, bad = 0;

	for (n = 0; n <= 9000; n += n < 1600 ? 1 : 97) {
		uint8_t *b = buf + n % 8;
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)b;
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
		uint16_t ulen = (uint16_t)(sizeof(*udp) + n), want, got;

		for (i = 0; i < sizeof(*ip6) + ulen; i++) {
			seed = seed * 1103515245u + 12345u;
			b[i] = (uint8_t)(seed >> 16);
		}
		ip6->payload_len = rte_cpu_to_be_16(ulen);
		ip6->proto = IPPROTO_UDP;
		udp->dgram_len = ip6->payload_len;
		udp->dgram_cksum = 0;
		want = rte_ipv6_udptcp_cksum(ip6, udp);
		got = ox_pkt_udp6_cksum(ip6, udp);
		if (got != want && bad++ < 5)
			EXPECT(false, "udp6 checksum of %u bytes: %04x, DPDK %04x", n, got, want);
	}
	EXPECT(bad == 0, "udp6 checksum: %u lengths differ from DPDK's", bad);
}

/* Several ports: each of the list taken, one outside refused, an empty
 * list takes any. */
static void
test_ports(void)
{
	static const uint16_t ports[] = { 443, PORT, 8443 };
	uint16_t be[3];
	struct frame f;
	struct ox_pkt p;
	unsigned int i, v;

	for (i = 0; i < 3; i++)
		be[i] = rte_cpu_to_be_16(ports[i]);
	for (v = 0; v < 2; v++) {
		build(&f, v ? V6 : V4, false, "OXPI0123456789", 14);
		EXPECT(ox_pkt_parse_ports(f.b, f.len, be, 3, &p) == 0,
		       "ports: %u in the middle of three taken (IPv%d)", PORT, v ? 6 : 4);
		EXPECT(ox_pkt_parse_ports(f.b, f.len, be, 1, &p) == -OX_PKT_DROP_WRONG_PORT,
		       "ports: %u refused by a list of 443 alone", PORT);
		EXPECT(ox_pkt_parse_ports(f.b, f.len, be + 1, 1, &p) == 0, "ports: %u alone", PORT);
		EXPECT(ox_pkt_parse_ports(f.b, f.len, be, 0, &p) == 0,
		       "ports: none given takes any");
		be[1] = rte_cpu_to_be_16(PORT + 1);
		EXPECT(ox_pkt_parse_ports(f.b, f.len, be, 3, &p) == -OX_PKT_DROP_WRONG_PORT,
		       "ports: %u refused by 443, %u, 8443", PORT, PORT + 1);
		be[1] = rte_cpu_to_be_16(PORT);
	}
}

int
main(void)
{
	test_mutations();
	test_ports();
	test_csum_forms();
	test_builder();
	test_truncations();
	test_reply();
	test_udp6_cksum();
	return ox_test_finish("pkt");
}
