// SPDX-License-Identifier: (GPL-2.0-only OR BSD-3-Clause)
/*
 * ox_steer: the XDP program of FLASH.
 *
 * Redirects to the AF_XDP socket of the receiving queue only UDP datagrams
 * (IPv4 with or without options, IPv6 without extension headers, either one
 * optionally behind one 802.1Q/802.1ad tag) whose destination port is one
 * of the OxTunnel ports (up to 8). Everything else - ARP, SSH, ICMP, the host's own traffic -
 * is passed to the kernel untouched. A queue with no socket bound passes too
 * (bpf_redirect_map's fallback action), so the program never drops.
 *
 * The ports live in the ox_steer_cfg map and are written by oxidize-server
 * after the program is loaded; until then (no port) everything passes.
 * net_af_xdp inserts each socket into xsks_map at key = its queue index.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ox_steer.h"

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, OX_STEER_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ox_steer_cfg);
} ox_steer_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OX_STEER_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ox_steer_stats SEC(".maps");

static __always_inline void
count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&ox_steer_stats, &what);

	if (c)
		*c += 1;
}

static __always_inline int
pass(__u32 why)
{
	count(why);
	return XDP_PASS;
}

SEC("xdp")
int
ox_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ox_steer_cfg *cfg;
	struct udphdr *udp;
	__u32 key = 0, i;
	__be16 proto;
	void *l3;

	cfg = bpf_map_lookup_elem(&ox_steer_cfg, &key);
	if (!cfg || cfg->port_be[0] == 0)
		return pass(OX_STEER_STAT_PASS_DISABLED);
	if ((void *)(eth + 1) > data_end)
		return pass(OX_STEER_STAT_PASS_SHORT);
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > data_end)
			return pass(OX_STEER_STAT_PASS_SHORT);
		proto = vh->encap_proto;
		l3 = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return pass(OX_STEER_STAT_PASS_SHORT);
		if (ip->protocol != IPPROTO_UDP)
			return pass(OX_STEER_STAT_PASS_NOT_UDP);
		/* A non-first fragment carries no UDP header: the kernel's. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return pass(OX_STEER_STAT_PASS_FRAGMENT);
		udp = (void *)ip + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return pass(OX_STEER_STAT_PASS_SHORT);
		if (ip6->nexthdr != IPPROTO_UDP)
			return pass(OX_STEER_STAT_PASS_NOT_UDP);
		udp = (void *)(ip6 + 1);
	} else {
		return pass(OX_STEER_STAT_PASS_NOT_IP);
	}
	if ((void *)(udp + 1) > data_end)
		return pass(OX_STEER_STAT_PASS_SHORT);
	for (i = 0; i < OX_STEER_MAX_PORTS && cfg->port_be[i] != 0; i++) {
		if (udp->dest == cfg->port_be[i]) {
			count(OX_STEER_STAT_REDIRECT);
			return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
		}
	}
	return pass(OX_STEER_STAT_PASS_OTHER_PORT);
}

char _license[] SEC("license") = "Dual BSD/GPL";
