/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * csum-bench: what the outer UDP checksum of an IPv6 DATA costs in
 * software, the pass the relay makes over every sealed ciphertext sent
 * over IPv6 when its port cannot make it (net_af_xdp): DPDK's
 * rte_ipv6_udptcp_cksum, and lib/pkt's ox_pkt_udp6_cksum, which
 * ox_pkt_build calls, over UDP datagrams of 64, 512 and 1400 bytes of
 * payload.
 *
 *   csum-bench [--seconds X]
 *
 * Prints one JSON object per implementation and size: median ns and TSC cycles per datagram
 * over passes of RING datagrams that fit in L1/L2 (the relay sums a packet
 * it has just sealed, so the bytes are in cache). Before measuring, each
 * size's sum is checked against a plain byte-wise ones' complement sum
 * written here, at even and odd lengths; a mismatch exits 1.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "ox_pkt.h"

#define RING 64
#define SLOT 2048
#define PASSES_MAX 200000

static const uint16_t sizes[] = { 64, 512, 1400 };
static uint8_t ring[RING][SLOT] __attribute__((aligned(64)));
static double pass_ns[PASSES_MAX];
static double pass_cyc[PASSES_MAX];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* A datagram as the relay sends it: IPv6 header, UDP header, payload. */
static void
fill(uint8_t *p, uint16_t payload, uint32_t seed)
{
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)p;
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	uint16_t ulen = (uint16_t)(sizeof(*udp) + payload);
	uint8_t *d = (uint8_t *)(udp + 1);
	unsigned int i;

	memset(p, 0, sizeof(*ip6) + sizeof(*udp));
	ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip6->payload_len = rte_cpu_to_be_16(ulen);
	ip6->proto = IPPROTO_UDP;
	ip6->hop_limits = 64;
	for (i = 0; i < 16; i++) {
		ip6->src_addr[i] = (uint8_t)(0x20 + i + seed);
		ip6->dst_addr[i] = (uint8_t)(0x90 - i + seed);
	}
	udp->src_port = rte_cpu_to_be_16(51820);
	udp->dst_port = rte_cpu_to_be_16((uint16_t)(40000 + seed));
	udp->dgram_len = rte_cpu_to_be_16(ulen);
	for (i = 0; i < payload; i++) {
		seed = seed * 1103515245u + 12345u;
		d[i] = (uint8_t)(seed >> 16);
	}
}

/* RFC 768 over RFC 8200 8.1's pseudo-header, a byte pair at a time. */
static uint16_t
reference(const uint8_t *p, uint16_t payload)
{
	const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)p;
	const uint8_t *u = p + sizeof(*ip6);
	uint32_t ulen = (uint32_t)sizeof(struct rte_udp_hdr) + payload, sum = 0, i;
	uint16_t c;

	for (i = 0; i < 16; i += 2)
		sum += (uint32_t)(ip6->src_addr[i] << 8 | ip6->src_addr[i + 1]) +
		       (uint32_t)(ip6->dst_addr[i] << 8 | ip6->dst_addr[i + 1]);
	sum += ulen + IPPROTO_UDP;
	for (i = 0; i < ulen; i += 2)
		sum += (uint32_t)u[i] << 8 | (i + 1 < ulen ? u[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	return c == 0 ? 0xffff : c;
}

typedef uint16_t (*cksum_fn)(const struct rte_ipv6_hdr *, const struct rte_udp_hdr *);

static uint16_t
dpdk_cksum(const struct rte_ipv6_hdr *ip6, const struct rte_udp_hdr *udp)
{
	return rte_ipv6_udptcp_cksum(ip6, udp);
}

static const struct {
	const char *name;
	cksum_fn fn;
} impls[] = {
	{ "rte_ipv6_udptcp_cksum", dpdk_cksum },
	{ "ox_pkt_udp6_cksum", ox_pkt_udp6_cksum },
};

static int
check(cksum_fn fn, const char *name, uint16_t n)
{
	unsigned int i;

	for (i = 0; i < RING; i++) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)ring[i];
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
		uint16_t want;

		/* Odd lengths too: the last byte is summed as a padded word. */
		fill(ring[i], (uint16_t)(n - i % 2), i + n);
		want = reference(ring[i], (uint16_t)(n - i % 2)); /* over a zero field */
		udp->dgram_cksum = fn(ip6, udp);
		if (rte_be_to_cpu_16(udp->dgram_cksum) != want ||
		    rte_ipv6_udptcp_cksum_verify(ip6, udp) != 0) {
			fprintf(stderr, "csum-bench: %s, %u bytes: %04x, reference %04x\n", name,
				n - i % 2, rte_be_to_cpu_16(udp->dgram_cksum), want);
			return -1;
		}
	}
	return 0;
}

static void
measure(cksum_fn fn, const char *name, uint16_t n, double seconds)
{
	unsigned int passes = 0, i;
	double t_end = now_s() + seconds;

	for (i = 0; i < RING; i++)
		fill(ring[i], n, i);
	while (passes < PASSES_MAX && now_s() < t_end) {
		double t0 = now_s();
		uint64_t c0 = rte_rdtsc_precise();

		for (i = 0; i < RING; i++) {
			struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)ring[i];
			struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);

			udp->dgram_cksum = 0;
			udp->dgram_cksum = fn(ip6, udp);
		}
		pass_cyc[passes] = (double)(rte_rdtsc_precise() - c0) / RING;
		pass_ns[passes] = (now_s() - t0) * 1e9 / RING;
		passes++;
	}
	qsort(pass_ns, passes, sizeof(double), cmp_double);
	qsort(pass_cyc, passes, sizeof(double), cmp_double);
	printf("{\"impl\": \"%s\", \"size\": %u, \"ns\": %.1f, \"cycles\": %.0f, \"passes\": %u}\n",
	       name, n, pass_ns[passes / 2], pass_cyc[passes / 2], passes);
}

int
main(int argc, char **argv)
{
	double seconds = 1.0;
	unsigned int s, k;

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		seconds = atof(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: csum-bench [--seconds X]\n");
		return 2;
	}
	if (!(seconds > 0 && seconds < 600)) {
		fprintf(stderr, "csum-bench: --seconds wants 0 < X < 600\n");
		return 2;
	}
	for (s = 0; s < RTE_DIM(sizes); s++)
		for (k = 0; k < RTE_DIM(impls); k++)
			if (check(impls[k].fn, impls[k].name, sizes[s]) != 0)
				return 1;
	for (s = 0; s < RTE_DIM(sizes); s++)
		for (k = 0; k < RTE_DIM(impls); k++)
			measure(impls[k].fn, impls[k].name, sizes[s],
				seconds / (double)(RTE_DIM(sizes) * RTE_DIM(impls)));
	return 0;
}
