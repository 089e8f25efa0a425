// SPDX-License-Identifier: BSD-3-Clause
/* Someone else's XDP program: oxidize-server must refuse to replace it
 * unless told to (--xdp-replace). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int
foreign_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
