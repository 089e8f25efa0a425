/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-3-Clause) */
#ifndef OX_STEER_H
#define OX_STEER_H

#include <linux/types.h>
/**
 * @file
 * What drivers/xdp/ox_steer.bpf.c shares with user space: its map names,
 * the layout of its configuration and the index of its counters.
 */

/** Program name, as the kernel reports it (used to recognise our own). */
#define OX_STEER_PROG_NAME "ox_steer"
/** Name of the XSKMAP net_af_xdp fills (the PMD requires this name). */
#define OX_STEER_XSKS_MAP "xsks_map"
/** Name of the configuration map. */
#define OX_STEER_CFG_MAP "ox_steer_cfg"
/** Name of the per-CPU counter map. */
#define OX_STEER_STATS_MAP "ox_steer_stats"
/** Queues the XSKMAP can hold. */
#define OX_STEER_MAX_QUEUES 64

/** Value at key 0 of ox_steer_cfg. */
struct ox_steer_cfg {
	__u16 port_be;	/**< OxTunnel UDP port, network order; 0 = steer nothing */
	__u16 pad;
};

/** Counters in ox_steer_stats (per CPU). */
enum ox_steer_stat {
	OX_STEER_STAT_REDIRECT = 0,	/**< handed to the queue's socket (or passed if none) */
	OX_STEER_STAT_PASS,		/**< not ours: left to the kernel */
	OX_STEER_STAT_MAX,
};

#endif /* OX_STEER_H */
