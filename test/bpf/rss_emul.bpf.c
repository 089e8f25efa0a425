// SPDX-License-Identifier: BSD-3-Clause
/*
 * RSS for the testbed: veth has no receive-side scaling, so the switch-side
 * peer of a multi-queue veth runs this tc egress program, which picks the TX
 * queue (and so the peer's RX queue) from a hash of the IPv4/IPv6 addresses
 * and TCP/UDP ports, as a NIC's RSS would. Other frames go to queue 0. One
 * section per queue count: tc/rss2, tc/rss3, tc/rss4, tc/rss8.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* murmur3's finaliser: every input bit reaches every output bit. */
static __always_inline __u32
mix(__u32 h, __u32 v)
{
	h ^= v;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32
flow_hash(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 h = 0x9e3779b9, *ports;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return 0;
		h = mix(h, ip->saddr);
		h = mix(h, ip->daddr);
		proto = ip->protocol;
		ports = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return 0;
		h = mix(h, ip6->saddr.in6_u.u6_addr32[3]);
		h = mix(h, ip6->daddr.in6_u.u6_addr32[3]);
		proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	if ((proto == IPPROTO_UDP || proto == IPPROTO_TCP) && (void *)(ports + 1) <= end)
		h = mix(h, *ports);
	return mix(h, proto);
}

/*
 * The kernel picks the TX queue after tc egress: with no socket and no XPS,
 * skb_tx_hash() treats a non-zero queue_mapping as "received on queue
 * mapping - 1" and keeps that queue. So queue q is asked for as q + 1.
 */
#define RSS_SECTION(n) \
	SEC("tc/rss" #n) int rss##n(struct __sk_buff *skb) \
	{ \
		skb->queue_mapping = flow_hash(skb) % n + 1; \
		return TC_ACT_OK; \
	}

RSS_SECTION(2)
RSS_SECTION(3)
RSS_SECTION(4)
RSS_SECTION(8)

char _license[] SEC("license") = "Dual BSD/GPL";
