// SPDX-License-Identifier: BSD-3-Clause
/*
 * RSS for the testbed: veth has no receive-side scaling, so the switch-side
 * peer of a multi-queue veth runs this tc egress program, which picks the TX
 * queue (and so the peer's RX queue) from the flow hash, as a NIC's RSS
 * would. One section per queue count: tc/rss2, tc/rss3, tc/rss4, tc/rss8.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

static __always_inline int
rss(struct __sk_buff *skb, __u32 n)
{
	skb->queue_mapping = bpf_get_hash_recalc(skb) % n;
	return TC_ACT_OK;
}

#define RSS_SECTION(n) \
	SEC("tc/rss" #n) int rss##n(struct __sk_buff *skb) { return rss(skb, n); }

RSS_SECTION(2)
RSS_SECTION(3)
RSS_SECTION(4)
RSS_SECTION(8)

char _license[] SEC("license") = "Dual BSD/GPL";
