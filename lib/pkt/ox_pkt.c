/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "ox_pkt.h"

const char *const ox_pkt_drop_names[OX_PKT_DROP_MAX] = { [OX_PKT_DROP_NONE] = "none",
#define OX_PKT_NAME(e, s) [OX_PKT_DROP_##e] = s,
							 OX_PKT_DROP_REASONS(OX_PKT_NAME)
#undef OX_PKT_NAME
};

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static inline uint16_t
csum_replace16(uint16_t csum, uint16_t old_word, uint16_t new_word)
{
	uint32_t sum = (uint16_t)~csum;

	sum += (uint16_t)~old_word;
	sum += new_word;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ones' complement sum of len bytes (RFC 1071), folded to 16 bits in the
 * bytes' own order. Adding 32-bit words into 64 bits defers the carries to
 * the end: 2^32 words before it could overflow. */
static inline uint16_t
sum_fold(const uint8_t *b, size_t len, uint64_t sum)
{
	uint32_t w;

	for (; len >= 16; b += 16, len -= 16) {
		uint32_t v[4];

		memcpy(v, b, 16);
		sum += (uint64_t)v[0] + v[1] + v[2] + v[3];
	}
	for (; len >= 4; b += 4, len -= 4) {
		memcpy(&w, b, 4);
		sum += w;
	}
	if (len > 0) {
		w = 0;
		memcpy(&w, b, len);
		sum += w;
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t
ox_pkt_udp6_cksum(const struct rte_ipv6_hdr *ip6, const struct rte_udp_hdr *udp)
{
	uint32_t ulen = rte_be_to_cpu_16(ip6->payload_len);
	/* Pseudo-header: addresses, upper-layer length, next header. */
	uint64_t sum = (uint64_t)rte_cpu_to_be_32(ulen) + rte_cpu_to_be_32(IPPROTO_UDP);
	uint16_t c;

	sum += sum_fold(ip6->src_addr, 32, 0);
	c = (uint16_t)~sum_fold((const uint8_t *)udp, ulen, sum);
	return c == 0 ? 0xffff : c;
}

static int
parse_ipv4(struct ox_pkt *p, uint32_t len, uint32_t *l4_len)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p->frame + p->l3_off);
	uint32_t hlen, tot;

	if (len < p->l3_off + sizeof(*ip))
		return -OX_PKT_DROP_SHORT_FRAME;
	if ((ip->version_ihl >> 4) != 4)
		return -OX_PKT_DROP_BAD_IP_VERSION;
	hlen = (uint32_t)(ip->version_ihl & 0xf) * 4;
	/* An IHL below 5 would put the UDP header inside the IP header. */
	if (hlen < sizeof(*ip))
		return -OX_PKT_DROP_BAD_IP_HDR_LEN;
	if (len < p->l3_off + hlen)
		return -OX_PKT_DROP_SHORT_FRAME;
	tot = rte_be_to_cpu_16(ip->total_length);
	/* The IP length may be shorter than the frame (Ethernet padding),
	 * never longer, and never shorter than its own header. */
	if (tot < hlen || tot > len - p->l3_off)
		return -OX_PKT_DROP_BAD_IP_LEN;
	if (rte_raw_cksum(ip, hlen) != 0xffff)
		return -OX_PKT_DROP_BAD_IP_CSUM;
	/* Fragments are never reassembled here: MF set or an offset. */
	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
		return -OX_PKT_DROP_IP_FRAGMENT;
	if (ip->next_proto_id != IPPROTO_UDP)
		return -OX_PKT_DROP_NOT_UDP;
	p->l4_off = (uint16_t)(p->l3_off + hlen);
	p->frame_len = (uint16_t)(p->l3_off + tot);
	*l4_len = tot - hlen;
	return 0;
}

static int
parse_ipv6(struct ox_pkt *p, uint32_t len, uint32_t *l4_len)
{
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(p->frame + p->l3_off);
	uint32_t plen;

	if (len < p->l3_off + sizeof(*ip6))
		return -OX_PKT_DROP_SHORT_FRAME;
	if ((rte_be_to_cpu_32(ip6->vtc_flow) >> 28) != 6)
		return -OX_PKT_DROP_BAD_IP_VERSION;
	plen = rte_be_to_cpu_16(ip6->payload_len);
	if (plen > len - p->l3_off - sizeof(*ip6))
		return -OX_PKT_DROP_BAD_IP_LEN;
	if (ip6->proto == IPPROTO_FRAGMENT)
		return -OX_PKT_DROP_IP_FRAGMENT;
	/* Hop-by-hop, routing, destination options: not on a tunnel's path. */
	if (ip6->proto == IPPROTO_HOPOPTS || ip6->proto == IPPROTO_ROUTING ||
	    ip6->proto == IPPROTO_DSTOPTS)
		return -OX_PKT_DROP_IP6_EXT_HDR;
	if (ip6->proto != IPPROTO_UDP)
		return -OX_PKT_DROP_NOT_UDP;
	p->l4_off = (uint16_t)(p->l3_off + sizeof(*ip6));
	p->frame_len = (uint16_t)(p->l4_off + plen);
	*l4_len = plen;
	return 0;
}

int
ox_pkt_parse(uint8_t *frame, uint32_t len, uint16_t dst_port, struct ox_pkt *out)
{
	uint16_t be = rte_cpu_to_be_16(dst_port);

	return ox_pkt_parse_ports(frame, len, &be, dst_port != 0, out);
}

int
ox_pkt_parse_ports(uint8_t *frame, uint32_t len, const uint16_t *ports_be, unsigned int n_ports,
		   struct ox_pkt *out)
{
	unsigned int i;
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_udp_hdr *udp;
	uint32_t l4_len, ulen;
	uint16_t type;
	int ret;

	if (len < sizeof(*eth))
		return -OX_PKT_DROP_SHORT_FRAME;
	/* Frames beyond 64 KB cannot carry one IP packet; offsets are 16-bit. */
	if (len > UINT16_MAX)
		return -OX_PKT_DROP_BAD_IP_LEN;
	out->frame = frame;
	out->l3_off = sizeof(*eth);
	type = eth->ether_type;
	if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) ||
	    type == rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ)) {
		const struct rte_vlan_hdr *vh = (const struct rte_vlan_hdr *)(eth + 1);

		if (len < sizeof(*eth) + sizeof(*vh))
			return -OX_PKT_DROP_SHORT_FRAME;
		type = vh->eth_proto;
		out->l3_off += sizeof(*vh);
	}
	if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		out->ipv6 = false;
		ret = parse_ipv4(out, len, &l4_len);
	} else if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
		out->ipv6 = true;
		ret = parse_ipv6(out, len, &l4_len);
	} else {
		return -OX_PKT_DROP_NOT_IP;
	}
	if (ret < 0)
		return ret;

	if (l4_len < sizeof(*udp))
		return -OX_PKT_DROP_BAD_UDP_LEN;
	udp = (struct rte_udp_hdr *)(frame + out->l4_off);
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	/* The UDP length must fit the IP payload and cover its own header. */
	if (ulen < sizeof(*udp) || ulen > l4_len)
		return -OX_PKT_DROP_BAD_UDP_LEN;
	/* Most relays have one port: one comparison. */
	for (i = 0; i < n_ports && udp->dst_port != ports_be[i]; i++)
		;
	if (n_ports != 0 && i == n_ports)
		return -OX_PKT_DROP_WRONG_PORT;
	out->payload_off = (uint16_t)(out->l4_off + sizeof(*udp));
	out->payload_len = (uint16_t)(ulen - sizeof(*udp));
	return 0;
}

int
ox_pkt_csum_check(const struct ox_pkt *p)
{
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(p->frame + p->l4_off);
	uint16_t c = udp->dgram_cksum, ph;

	if (p->ipv6) {
		const struct rte_ipv6_hdr *ip6 =
			(const struct rte_ipv6_hdr *)(p->frame + p->l3_off);

		/* A zero checksum is not allowed over IPv6 (RFC 8200 8.1). */
		if (c == 0)
			return -OX_PKT_DROP_BAD_UDP_CSUM;
		ph = rte_ipv6_phdr_cksum(ip6, 0);
		/* 0 and 0xffff are the same number in ones' complement. */
		if (c == ph || (c == 0xffff && ph == 0))
			return OX_PKT_CSUM_PARTIAL;
		if (rte_ipv6_udptcp_cksum_verify(ip6, udp) != 0)
			return -OX_PKT_DROP_BAD_UDP_CSUM;
	} else {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p->frame + p->l3_off);

		if (c == 0)
			return OX_PKT_CSUM_NONE;
		ph = rte_ipv4_phdr_cksum(ip, 0);
		if (c == ph || (c == 0xffff && ph == 0))
			return OX_PKT_CSUM_PARTIAL;
		if (rte_ipv4_udptcp_cksum_verify(ip, udp) != 0)
			return -OX_PKT_DROP_BAD_UDP_CSUM;
	}
	return OX_PKT_CSUM_FULL;
}

void
ox_pkt_reply(struct ox_pkt *p)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p->frame;
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(p->frame + p->l4_off);
	struct rte_ether_addr mac;
	uint16_t port;

	/* Swaps leave every checksum as it was: the sums are commutative. */
	rte_ether_addr_copy(&eth->src_addr, &mac);
	rte_ether_addr_copy(&eth->dst_addr, &eth->src_addr);
	rte_ether_addr_copy(&mac, &eth->dst_addr);
	port = udp->src_port;
	udp->src_port = udp->dst_port;
	udp->dst_port = port;
	if (p->ipv6) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(p->frame + p->l3_off);
		uint8_t a[16];

		memcpy(a, ip6->src_addr, 16);
		memcpy(ip6->src_addr, ip6->dst_addr, 16);
		memcpy(ip6->dst_addr, a, 16);
		ip6->hop_limits = OX_PKT_TTL;
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p->frame + p->l3_off);
		uint16_t old_word, new_word;
		uint32_t a;

		a = ip->src_addr;
		ip->src_addr = ip->dst_addr;
		ip->dst_addr = a;
		memcpy(&old_word, &ip->time_to_live, 2);
		ip->time_to_live = OX_PKT_TTL;
		memcpy(&new_word, &ip->time_to_live, 2);
		ip->hdr_checksum = csum_replace16(ip->hdr_checksum, old_word, new_word);
	}
}

void
ox_pkt_csum_update(struct ox_pkt *p, uint16_t old_word, uint16_t new_word)
{
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(p->frame + p->l4_off);
	uint16_t c;

	if (udp->dgram_cksum == 0 && !p->ipv6)
		return;
	c = csum_replace16(udp->dgram_cksum, old_word, new_word);
	/* 0 means "no checksum" on the wire; its ones' complement twin is 0xffff. */
	udp->dgram_cksum = c == 0 ? 0xffff : c;
}

uint16_t
ox_pkt_finish(struct ox_pkt *p, uint16_t payload_len)
{
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(p->frame + p->l4_off);
	uint16_t ulen = (uint16_t)(payload_len + sizeof(*udp));

	p->payload_len = payload_len;
	udp->dgram_len = rte_cpu_to_be_16(ulen);
	udp->dgram_cksum = 0;
	if (p->ipv6) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(p->frame + p->l3_off);

		ip6->payload_len = rte_cpu_to_be_16(ulen);
		udp->dgram_cksum = ox_pkt_udp6_cksum(ip6, udp);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p->frame + p->l3_off);

		ip->total_length = rte_cpu_to_be_16((uint16_t)(p->l4_off - p->l3_off + ulen));
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	}
	p->frame_len = (uint16_t)(p->payload_off + payload_len);
	return p->frame_len;
}

void
ox_pkt_flow_reply(struct ox_pkt_flow *f, const struct ox_pkt *p)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)p->frame;
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(p->frame + p->l4_off);

	memset(f, 0, sizeof(*f));
	memcpy(f->dst_mac, &eth->src_addr, 6);
	memcpy(f->src_mac, &eth->dst_addr, 6);
	f->ipv6 = p->ipv6;
	if (p->ipv6) {
		const struct rte_ipv6_hdr *ip6 =
			(const struct rte_ipv6_hdr *)(p->frame + p->l3_off);

		memcpy(f->dst_ip, ip6->src_addr, 16);
		memcpy(f->src_ip, ip6->dst_addr, 16);
	} else {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p->frame + p->l3_off);

		memcpy(f->dst_ip, &ip->src_addr, 4);
		memcpy(f->src_ip, &ip->dst_addr, 4);
	}
	f->dst_port = udp->src_port;
	f->src_port = udp->dst_port;
}

uint16_t
ox_pkt_build_ip(uint8_t *l3, const struct ox_pkt_flow *f, uint16_t payload_len,
		enum ox_pkt_csum csum)
{
	uint16_t l3len = f->ipv6 ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(l3 + l3len);
	uint16_t ulen = (uint16_t)(sizeof(*udp) + payload_len);

	udp->src_port = f->src_port;
	udp->dst_port = f->dst_port;
	udp->dgram_len = rte_cpu_to_be_16(ulen);
	udp->dgram_cksum = 0;
	if (f->ipv6) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)l3;

		ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
		ip6->payload_len = udp->dgram_len;
		ip6->proto = IPPROTO_UDP;
		ip6->hop_limits = OX_PKT_TTL;
		memcpy(ip6->src_addr, f->src_ip, 16);
		memcpy(ip6->dst_addr, f->dst_ip, 16);
		/* IPv6 forbids a zero UDP checksum (RFC 8200 8.1). */
		if (csum == OX_PKT_CSUM_PARTIAL)
			udp->dgram_cksum = rte_ipv6_phdr_cksum(ip6, 0);
		else
			udp->dgram_cksum = ox_pkt_udp6_cksum(ip6, udp);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l3;

		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->type_of_service = 0;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(l3len + ulen));
		ip->packet_id = 0;
		ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
		ip->time_to_live = OX_PKT_TTL;
		ip->next_proto_id = IPPROTO_UDP;
		memcpy(&ip->src_addr, f->src_ip, 4);
		memcpy(&ip->dst_addr, f->dst_ip, 4);
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		if (csum == OX_PKT_CSUM_PARTIAL)
			udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, 0);
		else if (csum == OX_PKT_CSUM_FULL)
			udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	}
	return (uint16_t)(l3len + ulen);
}

uint16_t
ox_pkt_build(uint8_t *frame, const struct ox_pkt_flow *f, uint16_t payload_len,
	     enum ox_pkt_csum csum)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;

	memcpy(&eth->dst_addr, f->dst_mac, 6);
	memcpy(&eth->src_addr, f->src_mac, 6);
	eth->ether_type = rte_cpu_to_be_16(f->ipv6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
	return (uint16_t)(sizeof(*eth) +
			  ox_pkt_build_ip(frame + sizeof(*eth), f, payload_len, csum));
}
