/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flash-rx: bring FLASH up on an interface and count what each queue's port
 * receives. Driven by test_flash_umem.py inside the relay namespace.
 *
 *   flash-rx [EAL args] -- --iface IF [--queues N] [--expect PKTS] [--timeout SEC]
 *
 * Prints "READY" once every port is started, then per port
 * "port P queue Q rx N" (IPv4 UDP datagrams to --port; anything else the
 * queue sees, such as IPv6 neighbour discovery, is counted apart), the UMEM
 * mode and the pool's in-use count before and after; exits 0 when --expect
 * datagrams arrived and every mbuf is back.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "ox_flash.h"

#define BURST 32

static volatile sig_atomic_t stop;

/* An IPv4 UDP datagram to port? Test traffic only: the server validates
 * properly; here a short or foreign frame is simply not ours. */
static int
is_test_udp(const struct rte_mbuf *m, uint16_t port)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	const struct rte_udp_hdr *udp;

	if (m->data_len < sizeof(*eth) + sizeof(*ip) + sizeof(*udp) ||
	    eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ip->next_proto_id != IPPROTO_UDP)
		return 0;
	udp = (const struct rte_udp_hdr *)((const uint8_t *)ip + rte_ipv4_hdr_len(ip));
	if ((const uint8_t *)(udp + 1) > rte_pktmbuf_mtod(m, const uint8_t *) + m->data_len)
		return 0;
	return udp->dst_port == rte_cpu_to_be_16(port);
}

static void
on_signal(int sig __rte_unused)
{
	stop = 1;
}

int
main(int argc, char **argv)
{
	struct ox_flash_conf conf = { 0 };
	static struct ox_flash f;
	uint64_t rx[OX_FLASH_MAX_QUEUES] = { 0 }, other = 0;
	struct rte_mbuf *pkts[BURST];
	unsigned long expect = 0, total = 0;
	unsigned int baseline, in_use;
	double timeout = 10.0;
	uint64_t deadline;
	int ret, opt, rc = 1;
	uint16_t i, j, n, port = 51820;
	static const struct option longopts[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "queues", required_argument, NULL, 'q' },
		{ "expect", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' },
		{ "xdp-prog", required_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};

	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "flash-rx: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= ret;
	argv += ret;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			conf.iface = optarg;
			break;
		case 'q':
			conf.n_queues = (uint16_t)atoi(optarg);
			break;
		case 'e':
			expect = strtoul(optarg, NULL, 0);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'p':
			port = (uint16_t)atoi(optarg);
			break;
		case 'x':
			conf.xdp_prog = optarg;
			break;
		default:
			fprintf(stderr, "usage: flash-rx [EAL] -- --iface IF [--queues N] "
					"[--expect N] [--timeout S] [--port P]\n");
			goto out_eal;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	conf.steer_ports[0] = port;
	ret = ox_flash_create(&f, &conf);
	if (ret != 0) {
		fprintf(stderr, "flash-rx: FLASH setup on %s failed: %s\n",
			conf.iface ? conf.iface : "(none)", strerror(-ret));
		goto out_eal;
	}
	baseline = rte_mempool_in_use_count(f.pool);
	printf("umem %s\n", ox_flash_umem_mode_str(f.umem_mode));
	for (i = 0; i < f.n_ports; i++)
		printf("port %u queue %u mode %s\n", f.ports[i].port_id, f.ports[i].queue,
		       !f.ports[i].zc_known   ? "unknown"
		       : f.ports[i].zero_copy ? "zero-copy"
					      : "copy");
	printf("READY\n");
	fflush(stdout);

	deadline = rte_get_timer_cycles() + (uint64_t)(timeout * rte_get_timer_hz());
	while (!stop && rte_get_timer_cycles() < deadline && (expect == 0 || total < expect)) {
		for (i = 0; i < f.n_ports; i++) {
			n = rte_eth_rx_burst(f.ports[i].port_id, 0, pkts, BURST);
			for (j = 0; j < n; j++) {
				if (is_test_udp(pkts[j], port)) {
					rx[i]++;
					total++;
				} else {
					other++;
				}
			}
			rte_pktmbuf_free_bulk(pkts, n);
		}
	}
	in_use = rte_mempool_in_use_count(f.pool);
	for (i = 0; i < f.n_ports; i++)
		printf("port %u queue %u rx %lu\n", f.ports[i].port_id, f.ports[i].queue,
		       (unsigned long)rx[i]);
	printf("total rx %lu\n", total);
	printf("other frames %lu\n", (unsigned long)other);
	printf("mbufs in use: baseline %u now %u\n", baseline, in_use);
	rc = (expect == 0 || total >= expect) && in_use == baseline ? 0 : 1;
	ox_flash_destroy(&f);
out_eal:
	rte_eal_cleanup();
	return rc;
}
