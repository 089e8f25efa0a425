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

/** UDP ports ox_steer hands to the sockets at most. */
#define OX_STEER_MAX_PORTS 8

/** Value at key 0 of ox_steer_cfg. */
struct ox_steer_cfg {
	/** OxTunnel UDP ports, network order, the used ones first; 0 ends the
	 * list (port_be[0] 0: steer nothing). */
	__u16 port_be[OX_STEER_MAX_PORTS];
};

/** Counters in ox_steer_stats (per CPU): one redirect, the rest say why a
 * frame was left to the kernel. The names are in OX_STEER_STAT_NAMES. */
enum ox_steer_stat {
	OX_STEER_STAT_REDIRECT = 0,    /**< handed to the queue's socket (or passed if none) */
	OX_STEER_STAT_PASS_DISABLED,   /**< no port configured yet */
	OX_STEER_STAT_PASS_SHORT,      /**< headers cut short, or an IPv4 IHL below 5 */
	OX_STEER_STAT_PASS_NOT_IP,     /**< ARP, LLDP, ... */
	OX_STEER_STAT_PASS_NOT_UDP,    /**< ICMP, TCP, IPv6 extension headers, ... */
	OX_STEER_STAT_PASS_FRAGMENT,   /**< a non-first IPv4 fragment: no ports to match */
	OX_STEER_STAT_PASS_OTHER_PORT, /**< UDP to another port */
	OX_STEER_STAT_MAX,
};

/** Names of enum ox_steer_stat, in order (for telemetry). */
#define OX_STEER_STAT_NAMES \
	"redirect", "pass_disabled", "pass_short", "pass_not_ip", "pass_not_udp", "pass_fragment", \
		"pass_other_port"

#endif /* OX_STEER_H */
