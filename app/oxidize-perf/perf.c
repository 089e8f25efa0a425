/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-perf: load generator for the relay, on DPDK (AF_XDP on the client
 * side of the testbed, or any port).
 *
 *   oxidize-perf [EAL] -- --iface IF --dst IP --dst-mac MAC [--rate PPS]
 *                         [--duration S] [--flows N] [--size BYTES] [--json]
 *
 * Sends OXPI probes from --flows source ports at --rate packets/s (0 = as
 * fast as it can) for --duration seconds, receives the OXPO answers, and
 * reports offered and received rates, loss and the RTT distribution. Each
 * probe carries its send time (TSC), so the RTT needs no per-probe state.
 * Frames are built once per flow; per packet only the sequence number,
 * timestamp and UDP checksum change (incrementally).
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "ox_flash.h"
#include "ox_pkt.h"

#define BURST 32
#define MAX_FLOWS 4096
#define HIST_US 20000		/* 1 us buckets up to 20 ms, then one overflow bucket */
#define PROBE_HDR 20		/* "OXPI" + u64 seq + u64 tsc */

struct perf_conf {
	const char *iface;
	struct in_addr src, dst;
	struct rte_ether_addr dst_mac, src_mac;
	uint16_t port;
	uint16_t flows;
	uint16_t size;		/* UDP payload bytes, >= PROBE_HDR */
	uint16_t queues;
	uint64_t rate;		/* packets/s, 0 = flat out */
	int busy_budget;	/* as oxidize-server's --busy-budget */
	double duration;
	bool json;
};

struct flow {
	uint8_t frame[RTE_ETHER_HDR_LEN + 20 + 8 + 1500];
	uint16_t len;
};

static volatile int stop;
static uint64_t hist[HIST_US + 1];
static struct flow flows[MAX_FLOWS];

static void
on_signal(int sig __rte_unused)
{
	stop = 1;
}

/* SIOCGIFHWADDR or SIOCGIFADDR of iface into ifr. */
static int
iface_ioctl(const char *iface, unsigned long req, struct ifreq *ifr)
{
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", iface);
	ret = ioctl(fd, req, ifr);
	close(fd);
	return ret;
}

static int
iface_addrs(const char *iface, struct rte_ether_addr *mac, struct in_addr *ip)
{
	struct ifreq ifr;

	if (iface_ioctl(iface, SIOCGIFHWADDR, &ifr) != 0)
		return -1;
	memcpy(mac->addr_bytes, ifr.ifr_hwaddr.sa_data, RTE_ETHER_ADDR_LEN);
	if (iface_ioctl(iface, SIOCGIFADDR, &ifr) != 0)
		return -1;
	*ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	return 0;
}

/* One complete frame per flow, checksummed with seq and tsc zero. */
static void
build_flow(const struct perf_conf *c, struct flow *f, uint16_t sport)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f->frame;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint8_t *pl = (uint8_t *)(udp + 1);
	uint16_t i;

	memset(f->frame, 0, sizeof(f->frame));
	rte_ether_addr_copy(&c->dst_mac, &eth->dst_addr);
	rte_ether_addr_copy(&c->src_mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*udp) + c->size);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = c->src.s_addr;
	ip->dst_addr = c->dst.s_addr;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(c->port);
	udp->dgram_len = rte_cpu_to_be_16(sizeof(*udp) + c->size);
	memcpy(pl, "OXPI", 4);
	for (i = PROBE_HDR; i < c->size; i++)
		pl[i] = (uint8_t)i;
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	f->len = (uint16_t)(sizeof(*eth) + sizeof(*ip) + sizeof(*udp) + c->size);
}

/* Add the 16-bit words of the now non-zero seq and tsc to the checksum. */
static inline uint16_t
csum_add_fields(uint16_t csum, const uint8_t *fields, unsigned int len)
{
	uint32_t sum = (uint16_t)~csum;
	unsigned int i;
	uint16_t w;

	for (i = 0; i < len; i += 2) {
		memcpy(&w, fields + i, 2);
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = (uint16_t)~sum;
	return sum == 0 ? 0xffff : (uint16_t)sum;
}

static inline int
fill(struct rte_mempool *mp, struct rte_mbuf **pkts, uint16_t n, uint64_t *seq,
     uint16_t n_flows)
{
	uint64_t now = rte_rdtsc();
	uint16_t i;

	if (rte_pktmbuf_alloc_bulk(mp, pkts, n) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		const struct flow *f = &flows[*seq % n_flows];
		uint8_t *d = rte_pktmbuf_mtod(pkts[i], uint8_t *);
		struct rte_udp_hdr *udp;
		uint8_t *pl;

		memcpy(d, f->frame, f->len);
		udp = (struct rte_udp_hdr *)(d + RTE_ETHER_HDR_LEN + 20);
		pl = (uint8_t *)(udp + 1);
		memcpy(pl + 4, seq, 8);
		memcpy(pl + 12, &now, 8);
		udp->dgram_cksum = csum_add_fields(udp->dgram_cksum, pl + 4, 16);
		pkts[i]->data_len = f->len;
		pkts[i]->pkt_len = f->len;
		(*seq)++;
	}
	return 0;
}

static inline void
receive(struct rte_mbuf *m, uint64_t us_cycles, uint64_t *received, uint64_t *foreign)
{
	struct ox_pkt p;
	uint64_t sent_tsc, us;
	uint8_t *pl;

	if (ox_pkt_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len,
			 rte_be_to_cpu_16(((struct rte_udp_hdr *)(rte_pktmbuf_mtod(m, uint8_t *) +
				RTE_ETHER_HDR_LEN + 20))->dst_port), &p) >= 0 ||
	    p.payload_len < PROBE_HDR || memcmp(p.frame + p.payload_off, "OXPO", 4) != 0) {
		(*foreign)++;
		return;
	}
	pl = p.frame + p.payload_off;
	memcpy(&sent_tsc, pl + 12, 8);
	us = (rte_rdtsc() - sent_tsc) / us_cycles;
	hist[us < HIST_US ? us : HIST_US]++;
	(*received)++;
}

static double
percentile(uint64_t total, double pct)
{
	uint64_t want = (uint64_t)(total * pct / 100.0), acc = 0;
	unsigned int i;

	if (total == 0)
		return -1;
	for (i = 0; i <= HIST_US; i++) {
		acc += hist[i];
		if (acc > want)
			return i + 0.5;
	}
	return HIST_US;
}

static int
parse_args(struct perf_conf *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "dst", required_argument, NULL, 'd' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "flows", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 't' },
		{ "queues", required_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "busy-budget", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	c->port = 51820;
	c->flows = 16;
	c->size = 64;
	c->duration = 5;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'i': c->iface = optarg; break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &c->dst) != 1)
				goto bad;
			break;
		case 'm':
			if (rte_ether_unformat_addr(optarg, &c->dst_mac) != 0)
				goto bad;
			break;
		case 'p': c->port = (uint16_t)atoi(optarg); break;
		case 'f': c->flows = (uint16_t)atoi(optarg); break;
		case 's': c->size = (uint16_t)atoi(optarg); break;
		case 'r': c->rate = strtoull(optarg, NULL, 0); break;
		case 't': c->duration = atof(optarg); break;
		case 'q': c->queues = (uint16_t)atoi(optarg); break;
		case 'j': c->json = true; break;
		case 'b': c->busy_budget = atoi(optarg); break;
		default:
			goto bad;
		}
	}
	if (c->iface == NULL || c->dst.s_addr == 0 || c->flows == 0 || c->flows > MAX_FLOWS ||
	    c->size < PROBE_HDR || c->size > 1472 || c->duration <= 0 || c->duration > 3600)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "usage: oxidize-perf [EAL] -- --iface IF --dst IP --dst-mac MAC "
		"[--port P] [--flows N<=%d] [--size %d..1472] [--rate PPS, 0 = flat out] "
		"[--duration S<=3600] [--queues N] [--busy-budget N, -1 = off] [--json]\n", MAX_FLOWS, PROBE_HDR);
	return -1;
}

int
main(int argc, char **argv)
{
	struct perf_conf c = { 0 };
	struct ox_flash_conf fc = { 0 };
	static struct ox_flash f;
	struct rte_mbuf *pkts[BURST];
	uint64_t hz, start, end, next_tx, gap = 0, seq = 0, received = 0, foreign = 0;
	uint64_t tx_fail = 0, us_cycles, t_end;
	uint16_t i, j, n, sent, bsz = BURST;
	int ret, rc = 1;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		return 1;
	if (parse_args(&c, argc - ret, argv + ret) != 0)
		goto out_eal;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (iface_addrs(c.iface, &c.src_mac, &c.src) != 0) {
		fprintf(stderr, "oxidize-perf: %s has no MAC or IPv4 address\n", c.iface);
		goto out_eal;
	}
	for (i = 0; i < c.flows; i++)
		build_flow(&c, &flows[i], (uint16_t)(40000 + i));

	/* The client's queues, with libxdp's program: in the client's own
	 * namespace every frame on them is ours. */
	fc.iface = c.iface;
	fc.n_queues = c.queues;
	fc.extra_mbufs = 8192;
	fc.busy_budget = c.busy_budget;
	ret = ox_flash_create(&f, &fc);
	if (ret != 0) {
		fprintf(stderr, "oxidize-perf: AF_XDP setup on %s failed: %s\n", c.iface,
			strerror(-ret));
		goto out_eal;
	}

	hz = rte_get_tsc_hz();
	us_cycles = hz / 1000000;
	/* Paced: small bursts, so a probe does not queue behind 31 others and
	 * the RTT measures the relay, not the burst. */
	if (c.rate) {
		uint64_t want = c.rate * f.n_ports / 100000;

		bsz = want < 1 ? 1 : want > BURST ? BURST : (uint16_t)want;
		gap = hz * bsz * f.n_ports / c.rate;	/* one burst per port per turn */
	}
	start = rte_rdtsc();
	end = start + (uint64_t)(c.duration * hz);
	next_tx = start;
	while (!stop) {
		uint64_t now = rte_rdtsc();

		if (now < end && (c.rate == 0 || now >= next_tx)) {
			for (j = 0; j < f.n_ports; j++) {
				if (fill(f.pool, pkts, bsz, &seq, c.flows) != 0) {
					tx_fail += bsz;
					break;
				}
				sent = rte_eth_tx_burst(f.ports[j].port_id, 0, pkts, bsz);
				if (sent < bsz) {
					/* Not offered: take the sequence numbers back. */
					tx_fail += bsz - sent;
					seq -= bsz - sent;
					rte_pktmbuf_free_bulk(pkts + sent, bsz - sent);
				}
			}
			next_tx += gap;
		}
		for (j = 0; j < f.n_ports; j++) {
			n = rte_eth_rx_burst(f.ports[j].port_id, 0, pkts, BURST);
			for (i = 0; i < n; i++)
				receive(pkts[i], us_cycles, &received, &foreign);
			rte_pktmbuf_free_bulk(pkts, n);
		}
		/* After the last probe, wait 200 ms for stragglers. */
		if (now >= end + hz / 5)
			break;
	}
	t_end = rte_rdtsc();
	{
		double secs = (double)(RTE_MIN(t_end, end) - start) / hz;
		double lost = seq ? (double)(seq - received) / seq : 0;

		if (c.json)
			printf("{\"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"lost\": %" PRIu64
			       ", \"loss\": %.6f, \"tx_pps\": %.0f, \"rx_pps\": %.0f, \"seconds\": %.3f"
			       ", \"not_sent\": %" PRIu64 ", \"foreign\": %" PRIu64
			       ", \"rtt_p50_us\": %.1f, \"rtt_p99_us\": %.1f, \"rtt_p999_us\": %.1f"
			       ", \"size\": %u, \"flows\": %u, \"rate\": %" PRIu64 "}\n",
			       seq, received, seq - received, lost, seq / secs, received / secs, secs,
			       tx_fail, foreign, percentile(received, 50), percentile(received, 99),
			       percentile(received, 99.9), c.size, c.flows, c.rate);
		else
			printf("sent %" PRIu64 " (%.0f pps), received %" PRIu64 " (%.0f pps), "
			       "loss %.4f%%, RTT p50 %.1f us p99 %.1f us p99.9 %.1f us\n", seq,
			       seq / secs, received, received / secs, lost * 100,
			       percentile(received, 50), percentile(received, 99),
			       percentile(received, 99.9));
	}
	rc = 0;
	ox_flash_destroy(&f);
out_eal:
	rte_eal_cleanup();
	return rc;
}
