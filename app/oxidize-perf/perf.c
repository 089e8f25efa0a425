/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-perf: load generator for the relay, on DPDK (AF_XDP on the client
 * side of the testbed, or any port). Two modes.
 *
 * OXPI probes (the default):
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
 *
 * Relay (simulated OxTunnel v2 clients, relay.c):
 *
 *   oxidize-perf keys DIR N
 *   oxidize-perf [EAL] -- --iface IF --dst IP --dst-mac MAC --relay DIR
 *                         [--clients N] [--size INNER] [--exit IP]
 *                         [--verify-every K] [--packets P] [--rate PPS]
 *                         [--duration S] [--json]
 *
 * `keys` writes a server key, N client keys and the allow-list to DIR (for
 * the relay's --key and --allow). With --relay, N clients each do a real
 * Noise IK handshake with their own key, then send DATA with inner IPv4/UDP
 * packets of INNER bytes to the next client's tunnel address (or to --exit
 * IP, out of the relay's TAP), every packet sealed before the timed run.
 * See relay.c for what is measured.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
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
#include "perf.h"

#define BURST PERF_BURST
#define MAX_FLOWS PERF_MAX_FLOWS
#define HIST_US PERF_HIST_US
#define PROBE_HDR 20 /* "OXPI" + u64 seq + u64 tsc */

struct flow {
	uint8_t frame[RTE_ETHER_HDR_LEN + 20 + 8 + 1500];
	uint16_t len;
};

volatile int perf_stop;
static uint64_t hist[HIST_US + 1];
static struct flow flows[MAX_FLOWS];

static void
on_signal(int sig __rte_unused)
{
	perf_stop = 1;
}

/* A load generator's loop under SCHED_FIFO (--fifo): the clients it plays
 * have cpus of their own, so on a testbed where it shares one with the
 * relay none of them should wait behind the relay's threads for it (a
 * storm's answers would overflow their ring; an RTT would time the
 * scheduler). Such a loop sleeps whenever a turn finds little, so the
 * relay keeps the rest of the cpu. */
int
perf_fifo_set(int policy)
{
	struct sched_param sp = { .sched_priority = policy == SCHED_FIFO ? 1 : 0 };

	if (sched_setscheduler(0, policy, &sp) != 0) {
		/* A container may have no real-time budget: the load still
		 * runs, and what it loses is counted (rx_missed, lost). */
		fprintf(stderr,
			"oxidize-perf: --fifo: sched_setscheduler: %s; running without it\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

double
perf_thread_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
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

/* The outer flow of every frame this generator sends, from source port sport. */
void
perf_flow(const struct perf_conf *c, uint16_t sport, struct ox_pkt_flow *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->dst_mac, &c->dst_mac, sizeof(f->dst_mac));
	memcpy(f->src_mac, &c->src_mac, sizeof(f->src_mac));
	memcpy(f->src_ip, &c->src.s_addr, 4);
	memcpy(f->dst_ip, &c->dst.s_addr, 4);
	f->src_port = rte_cpu_to_be_16(sport);
	f->dst_port = rte_cpu_to_be_16(c->port);
}

/* One complete frame per flow, checksummed with seq and tsc zero. */
static void
build_flow(const struct perf_conf *c, struct flow *f, uint16_t sport)
{
	uint8_t *pl = f->frame + OX_PKT_HDR_LEN(false);
	struct ox_pkt_flow fl;
	uint16_t i;

	memset(f->frame, 0, sizeof(f->frame));
	memcpy(pl, "OXPI", 4);
	for (i = PROBE_HDR; i < c->size; i++)
		pl[i] = (uint8_t)i;
	perf_flow(c, sport, &fl);
	f->len = ox_pkt_build(f->frame, &fl, c->size, OX_PKT_CSUM_FULL);
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
fill(struct rte_mempool *mp, struct rte_mbuf **pkts, uint16_t n, uint64_t *seq, uint16_t n_flows)
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
		udp = (struct rte_udp_hdr *)(d + OX_PKT_HDR_LEN(false) - sizeof(*udp));
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

static uint64_t hist_max;

void
perf_hist_add(uint64_t us)
{
	hist[us < HIST_US ? us : HIST_US]++;
	if (us > hist_max)
		hist_max = us;
}

uint64_t
perf_max_us(void)
{
	return hist_max;
}

double
perf_percentile(uint64_t total, double pct)
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

static inline void
receive(struct rte_mbuf *m, uint64_t us_cycles, uint64_t *received, uint64_t *foreign)
{
	struct ox_pkt p;
	uint64_t sent_tsc;
	uint8_t *pl;

	if (ox_pkt_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, 0, &p) < 0 ||
	    ox_pkt_csum_check(&p) < 0 || p.payload_len < PROBE_HDR ||
	    memcmp(p.frame + p.payload_off, "OXPO", 4) != 0) {
		(*foreign)++;
		return;
	}
	pl = p.frame + p.payload_off;
	memcpy(&sent_tsc, pl + 12, 8);
	perf_hist_add((rte_rdtsc() - sent_tsc) / us_cycles);
	(*received)++;
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: oxidize-perf [EAL] -- --iface IF --dst IP --dst-mac MAC [options]\n"
		"       oxidize-perf keys DIR N\n\n"
		"  --port P            the relay's UDP port (default 51820)\n"
		"  --rate PPS          offered packets/s; 0 = flat out (default)\n"
		"  --duration S        seconds of load, <= 3600 (default 5)\n"
		"  --queues N          client queues to drive; 0 = all (default)\n"
		"  --busy-budget N     preferred busy-poll budget; -1 = off\n"
		"  --json              one JSON line instead of text\n"
		"OXPI probes (default):\n"
		"  --flows N           source ports, <= %d (default 16)\n"
		"  --size BYTES        UDP payload, %d..1472 (default 64)\n"
		"Relay (simulated OxTunnel v2 or WireGuard clients):\n"
		"  --relay DIR         keys from `oxidize-perf keys DIR N`; turns the mode on\n"
		"                      (--duration <= %d: the clients do not rekey)\n"
		"  --clients N         clients, 1..N of DIR, client to client needs 2 (default 2)\n"
		"  --size BYTES        inner IPv4 packet, %d..%d (default 64)\n"
		"  --exit IP           inner destination out of the relay's exit (default: the\n"
		"                      next client's tunnel address, client to client)\n"
		"  --verify-every K    open and time one received packet in K (default 4)\n"
		"  --packets P         packets sealed before the run (default: rate, or 0.7 Mpps,\n"
		"                      times duration, within 2 GiB of frames)\n"
		"  --wireguard         speak WireGuard (addresses from DIR/allow), not OxTunnel\n"
		"  --fifo              with --rate: run under SCHED_FIFO (priority 1), asleep\n"
		"                      between sends, so that on a cpu shared with the relay\n"
		"                      its RTTs time the relay, not the scheduler\n"
		"  (SIGINT or SIGTERM during the run: stop sending, report 200 ms later)\n"
		"keys DIR N: writes DIR/server.key, server.pub, client<i>.key (mode 600) and\n"
		"            DIR/allow (the relay's --key and --allow) for N clients, client i\n"
		"            with the fixed tunnel address 100.96.0.0 + i + 1\n"
		"Storm (N listed clients arriving at once; see storm.c):\n"
		"  --storm DIR         DIR/storm.seed and DIR/server.pub; turns the mode on\n"
		"  --clients N         clients, 1..N of DIR/storm.allow\n"
		"  --rate R            first initiations a second (default: all within 1 s)\n"
		"  --duration S        give up after S seconds (default 5)\n"
		"  --sources K         source addresses 198.19.0.0 + 1.. (default 4096)\n"
		"  --verify-every V    open one response in V (default 4); with --steps, one\n"
		"                      DATA received in V\n"
		"  --steps N:S,...     then DATA steps: the first N clients send S-byte inner\n"
		"                      packets to each other, in random order (OxTunnel)\n"
		"  --step-packets P    frames a step sends, within 1 GiB (default 1000000)\n"
		"  --step-wait         begin each step on a line from stdin\n"
		"  --start-wait        once the initiations are made, print {\"mode\": \"ready\"}\n"
		"                      and begin the storm on a line from stdin\n"
		"  --fifo              read answers under SCHED_FIFO (priority 1) during the\n"
		"                      storm: the clients' cpus are not the relay's\n"
		"storm-keys DIR N: writes DIR/storm.seed (mode 600) and DIR/storm.allow, N lines\n"
		"            \"KEY sI\" for the relay's allow-list\n",
		MAX_FLOWS, PROBE_HDR, PERF_RELAY_MAX_S, PERF_RELAY_INNER_MIN, PERF_RELAY_INNER_MAX);
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
		{ "relay", required_argument, NULL, 'R' },
		{ "clients", required_argument, NULL, 'c' },
		{ "exit", required_argument, NULL, 'x' },
		{ "verify-every", required_argument, NULL, 'v' },
		{ "packets", required_argument, NULL, 'n' },
		{ "wireguard", no_argument, NULL, 'w' },
		{ "storm", required_argument, NULL, 'S' },
		{ "sources", required_argument, NULL, 'k' },
		{ "steps", required_argument, NULL, 'T' },
		{ "step-packets", required_argument, NULL, 'P' },
		{ "step-wait", no_argument, NULL, 'W' },
		{ "start-wait", no_argument, NULL, 'G' },
		{ "fifo", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long clients = -1, n_flows = 16, size = 64, sources = 4096;
	int opt;

	c->port = 51820;
	c->duration = 5;
	c->verify_every = 4;
	c->step_packets = 1000000;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'i':
			c->iface = optarg;
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &c->dst) != 1)
				goto bad;
			break;
		case 'm':
			if (rte_ether_unformat_addr(optarg, &c->dst_mac) != 0)
				goto bad;
			break;
		case 'p':
			c->port = (uint16_t)atoi(optarg);
			break;
		case 'f':
			n_flows = atol(optarg);
			break;
		case 's':
			size = atol(optarg);
			break;
		case 'r':
			c->rate = strtoull(optarg, NULL, 0);
			break;
		case 't':
			c->duration = atof(optarg);
			break;
		case 'q':
			c->queues = (uint16_t)atoi(optarg);
			break;
		case 'j':
			c->json = true;
			break;
		case 'b':
			c->busy_budget = atoi(optarg);
			break;
		case 'R':
			c->relay_dir = optarg;
			break;
		case 'c':
			clients = atol(optarg);
			break;
		case 'x':
			if (inet_pton(AF_INET, optarg, &c->exit_ip) != 1 || c->exit_ip.s_addr == 0)
				goto bad;
			break;
		case 'v':
			c->verify_every = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			c->packets = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			c->wire = OX_WIRE_WIREGUARD;
			break;
		case 'S':
			c->storm_dir = optarg;
			break;
		case 'k':
			sources = atol(optarg);
			break;
		case 'T':
			if (perf_steps_parse(optarg, c) != 0) {
				fprintf(stderr,
					"oxidize-perf: --steps wants N:SIZE[,N:SIZE...], N "
					"2..clients, SIZE %d..%d, at most %d steps\n",
					PERF_RELAY_INNER_MIN, PERF_RELAY_INNER_MAX, PERF_STEPS_MAX);
				goto bad;
			}
			break;
		case 'P':
			c->step_packets = strtoull(optarg, NULL, 0);
			break;
		case 'W':
			c->step_wait = true;
			break;
		case 'G':
			c->start_wait = true;
			break;
		case 'F':
			c->fifo = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			goto bad;
		}
	}
	if (c->iface == NULL || c->dst.s_addr == 0 || c->duration <= 0 || c->duration > 3600)
		goto bad;
	if (c->storm_dir != NULL) {
		/* verify_every: one response in K opened (default 4, as relay mode). */
		if (c->relay_dir != NULL || clients < 1 || clients > PERF_STORM_MAX ||
		    sources < 1 || sources > 65534 || c->verify_every == 0)
			goto bad;
		/* Steps take the tunnel address from OxTunnel's RESPONSE. */
		if (c->n_steps != 0 && (c->wire != OX_WIRE_OXTUNNEL || c->step_packets == 0))
			goto bad;
		c->storm_clients = (uint32_t)clients;
		c->sources = (uint32_t)sources;
		return 0;
	}
	if (c->n_steps != 0 || c->step_wait)
		goto bad; /* storm mode's */
	if (c->relay_dir == NULL) {
		if (n_flows < 1 || n_flows > MAX_FLOWS || size < PROBE_HDR || size > 1472 ||
		    c->wire != OX_WIRE_OXTUNNEL)
			goto bad;
	} else {
		n_flows = clients < 0 ? 2 : clients;
		/* The clients never rekey: a run ends before the keys are due. */
		if (n_flows < 1 || n_flows > MAX_FLOWS || (n_flows < 2 && c->exit_ip.s_addr == 0) ||
		    size < PERF_RELAY_INNER_MIN || size > PERF_RELAY_INNER_MAX ||
		    c->verify_every == 0 || c->duration > PERF_RELAY_MAX_S)
			goto bad;
	}
	c->flows = (uint16_t)n_flows;
	c->size = (uint16_t)size;
	return 0;
bad:
	usage(stderr);
	return -1;
}

int
perf_flash_up(struct ox_flash *f, const struct perf_conf *c)
{
	struct ox_flash_conf fc = { 0 };
	int ret;

	/* The client's queues, with libxdp's program: in the client's own
	 * namespace every frame on them is ours. */
	fc.iface = c->iface;
	fc.n_queues = c->queues;
	fc.rx_desc = c->rx_desc;
	fc.extra_mbufs = 8192 + 2u * c->rx_desc;
	fc.busy_budget = c->busy_budget;
	ret = ox_flash_create(f, &fc);
	if (ret != 0)
		fprintf(stderr, "oxidize-perf: AF_XDP setup on %s failed: %s\n", c->iface,
			strerror(-ret));
	return ret;
}

void *
perf_arena(size_t len)
{
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED) {
		fprintf(stderr, "oxidize-perf: no memory for %zu bytes of frames\n", len);
		return NULL;
	}
	(void)madvise(mem, len, MADV_HUGEPAGE);
	return mem;
}

unsigned int
perf_n_threads(unsigned int max)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	return cores < 1 ? 1 : cores > (long)max ? max : (unsigned int)cores;
}

void
perf_on_threads(void *(*fn)(void *), void *arg, size_t size, unsigned int n)
{
	pthread_t th[PERF_MAX_THREADS];
	unsigned int t, started = 0;

	n = RTE_MIN(n, (unsigned int)PERF_MAX_THREADS);
	for (t = 0; t < n; t++) {
		if (pthread_create(&th[t], NULL, fn, (uint8_t *)arg + t * size) != 0)
			break;
		started++;
	}
	/* A thread that could not start: its share here. */
	for (t = started; t < n; t++)
		fn((uint8_t *)arg + t * size);
	for (t = 0; t < started; t++)
		pthread_join(th[t], NULL);
}

void
perf_pacing(const struct perf_conf *c, uint16_t n_ports, uint64_t hz, uint16_t *bsz, uint64_t *gap)
{
	uint64_t want;

	*bsz = BURST;
	*gap = 0;
	if (c->rate == 0)
		return;
	/* Paced: small bursts, so a packet does not queue behind 31 others
	 * and the RTT measures the relay, not the burst. */
	want = c->rate * n_ports / 100000;
	*bsz = want < 1 ? 1 : want > BURST ? BURST : (uint16_t)want;
	*gap = hz * *bsz * n_ports / c->rate; /* one burst per port per turn */
}

static int
probe_run(struct perf_conf *c)
{
	static struct ox_flash f;
	struct rte_mbuf *pkts[BURST];
	uint64_t hz, start, end, next_tx, gap, seq = 0, received = 0, foreign = 0;
	uint64_t tx_fail = 0, us_cycles, t_end;
	uint16_t i, j, n, sent, bsz;
	double secs, lost;

	for (i = 0; i < c->flows; i++)
		build_flow(c, &flows[i], (uint16_t)(40000 + i));
	if (perf_flash_up(&f, c) != 0)
		return -1;
	hz = rte_get_tsc_hz();
	us_cycles = hz / 1000000;
	perf_pacing(c, f.n_ports, hz, &bsz, &gap);
	start = rte_rdtsc();
	end = start + (uint64_t)(c->duration * hz);
	next_tx = start;
	while (!perf_stop) {
		uint64_t now = rte_rdtsc();

		if (now < end && (c->rate == 0 || now >= next_tx)) {
			for (j = 0; j < f.n_ports; j++) {
				if (fill(f.pool, pkts, bsz, &seq, c->flows) != 0) {
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
	secs = (double)(RTE_MIN(t_end, end) - start) / hz;
	lost = seq ? (double)(seq - received) / seq : 0;
	if (c->json)
		printf("{\"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"lost\": %" PRIu64
		       ", \"loss\": %.6f, \"tx_pps\": %.0f, \"rx_pps\": %.0f, \"seconds\": %.3f"
		       ", \"not_sent\": %" PRIu64 ", \"foreign\": %" PRIu64
		       ", \"rtt_p50_us\": %.1f, \"rtt_p99_us\": %.1f, \"rtt_p999_us\": %.1f"
		       ", \"size\": %u, \"flows\": %u, \"rate\": %" PRIu64 "}\n",
		       seq, received, seq - received, lost, seq / secs, received / secs, secs,
		       tx_fail, foreign, perf_percentile(received, 50),
		       perf_percentile(received, 99), perf_percentile(received, 99.9), c->size,
		       c->flows, c->rate);
	else
		printf("sent %" PRIu64 " (%.0f pps), received %" PRIu64 " (%.0f pps), "
		       "loss %.4f%%, RTT p50 %.1f us p99 %.1f us p99.9 %.1f us\n",
		       seq, seq / secs, received, received / secs, lost * 100,
		       perf_percentile(received, 50), perf_percentile(received, 99),
		       perf_percentile(received, 99.9));
	ox_flash_destroy(&f);
	return 0;
}

int
main(int argc, char **argv)
{
	struct perf_conf c = { 0 };
	int ret, rc = 1;

	/* Key material needs no EAL (and no root). */
	if (argc > 1 && strcmp(argv[1], "keys") == 0)
		return perf_relay_keys(argc - 1, argv + 1) == 0 ? 0 : 1;
	if (argc > 1 && strcmp(argv[1], "storm-keys") == 0)
		return perf_storm_keys(argc - 1, argv + 1) == 0 ? 0 : 1;
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		return 1;
	ret = parse_args(&c, argc - ret, argv + ret);
	if (ret != 0) {
		rc = ret > 0 ? 0 : 1; /* --help */
		goto out_eal;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (iface_addrs(c.iface, &c.src_mac, &c.src) != 0) {
		fprintf(stderr, "oxidize-perf: %s has no MAC or IPv4 address\n", c.iface);
		goto out_eal;
	}
	ret = c.storm_dir != NULL   ? perf_storm_run(&c)
	      : c.relay_dir != NULL ? perf_relay_run(&c)
				    : probe_run(&c);
	if (ret == 0)
		rc = 0;
out_eal:
	rte_eal_cleanup();
	return rc;
}
