/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-perf storm, then DATA: the relay's data plane as sessions grow.
 *
 *   oxidize-perf [EAL] -- ... --storm DIR --clients N --steps N1:S1,N2:S2,...
 *                         [--step-packets P] [--step-wait]
 *
 * After a storm in which every client got its session (storm.c), each
 * step sends client-to-client DATA from the first Ni clients, inner IPv4
 * packets of Si bytes: round after round, every one of the Ni clients in
 * a fresh random order (so that neither the relay's session and key
 * lookups nor its caches see a pattern), client i to client (i + 1) % Ni's
 * tunnel address. A step's frames are built and sealed before it starts
 * (on every core), then sent flat out: one copy per packet on the send
 * side, as relay mode does. Before the first step every client sends one
 * empty DATA, which confirms its keys at the relay (else it could not be
 * sent to).
 *
 * With --step-wait a step begins only when a line comes on stdin, after
 * "step-ready" is printed: the caller reads the relay's counters on both
 * sides of each step. Each step ends with one JSON line: sent, received
 * (DATA to one of our clients' indexes), and one received packet in
 * --verify-every opened with the client's keys and its inner packet
 * checked (from the previous client's tunnel address to this one's).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <sodium.h>

#include "ox_pkt.h"
#include "ox_tunnel.h"
#include "perf.h"

#define STEP_MAX_S 20			   /* a step's sending gives up after this */
#define STEP_ARENA_MAX (UINT64_C(1) << 30) /* one step's sealed frames */
#define STEP_TAIL_HZ_DIV 5		   /* after the last frame: 200 ms for stragglers */
#define INNER_SPORT 40000
#define INNER_DPORT 7 /* echo: only the generator reads them */
#define INNER_MAGIC "OXSD"
#define INNER_HDRS OX_PKT_IP_HDR_LEN(false)
#define INNER_MARK 12 /* magic + u64 j */
#define FRAME_HDRS OX_PKT_HDR_LEN(false)

struct step_run {
	const struct perf_conf *c;
	struct perf_session *ss;
	uint32_t n_all; /* the storm's clients */
	uint32_t n;	/* this step's: clients 0 .. n - 1 */
	uint16_t size;	/* inner bytes; 0: the empty DATA that confirms keys */
	uint8_t *arena; /* frame j at j * stride */
	size_t arena_len;
	uint32_t stride;
	uint16_t frame_len;
	uint32_t *who; /* frame j: its client */
	uint64_t n_pkts;
	uint64_t sent, not_sent, received, verified, bad_auth, bad_inner, replayed, foreign;
	int err;
};

int
perf_steps_parse(const char *arg, struct perf_conf *c)
{
	const char *p = arg;
	char *end;

	c->n_steps = 0;
	while (*p != '\0') {
		unsigned long n, size;

		if (c->n_steps == PERF_STEPS_MAX)
			return -E2BIG;
		n = strtoul(p, &end, 10);
		if (end == p || *end != ':' || n < 2 || n > PERF_STORM_MAX)
			return -EINVAL;
		p = end + 1;
		size = strtoul(p, &end, 10);
		if (end == p || size < PERF_RELAY_INNER_MIN || size > PERF_RELAY_INNER_MAX ||
		    (*end != ',' && *end != '\0'))
			return -EINVAL;
		c->steps[c->n_steps].sessions = (uint32_t)n;
		c->steps[c->n_steps].size = (uint16_t)size;
		c->n_steps++;
		p = *end == ',' ? end + 1 : end;
	}
	return c->n_steps ? 0 : -EINVAL;
}

/* ---------------------------------------------------------------- build */

/* Seal frame j (client who[j]) at its place in the arena. */
static int
seal_frame(struct step_run *r, struct ox_aead *a, uint64_t j, uint64_t now)
{
	uint32_t i = r->who[j], to = (i + 1) % r->n;
	struct perf_session *s = &r->ss[i];
	uint8_t *fr = r->arena + j * r->stride, *dg = fr + FRAME_HDRS;
	struct ox_pkt_flow in = { .ipv6 = false }, out;
	int ret;

	if (r->size != 0) {
		uint8_t *pl = dg + OX_DATA_HDR_LEN + INNER_HDRS;
		uint16_t plen = (uint16_t)(r->size - INNER_HDRS), k;

		memcpy(pl, INNER_MAGIC, 4);
		memcpy(pl + 4, &j, sizeof(j));
		for (k = INNER_MARK; k < plen; k++)
			pl[k] = (uint8_t)k;
		memcpy(in.src_ip, &s->v4, 4);
		memcpy(in.dst_ip, &r->ss[to].v4, 4);
		in.src_port = rte_cpu_to_be_16(INNER_SPORT);
		in.dst_port = rte_cpu_to_be_16(INNER_DPORT);
		ox_pkt_build_ip(dg + OX_DATA_HDR_LEN, &in, plen, OX_PKT_CSUM_FULL);
	}
	ret = ox_data_seal(a, &s->kp, dg, r->size, now);
	if (ret < 0)
		return ret;
	perf_storm_flow(r->c, i, &out);
	ox_pkt_build(fr, &out, (uint16_t)ret, OX_PKT_CSUM_FULL);
	return 0;
}

struct seal_arg {
	struct step_run *r;
	unsigned int t, n_th;
};

/* Thread t seals the frames of clients i % n_th == t, in frame order: a
 * client's counters rise in the order its frames are sent. */
static void *
seal_range(void *arg)
{
	struct seal_arg *sa = arg;
	struct step_run *r = sa->r;
	struct ox_aead *a = ox_aead_create(OX_AEAD_AUTO);
	uint64_t j, now = ox_mono_ns();
	int ret;

	if (a == NULL) {
		r->err = -ENOMEM;
		return NULL;
	}
	for (j = 0; j < r->n_pkts && !perf_stop; j++) {
		if (r->who[j] % sa->n_th != sa->t)
			continue;
		ret = seal_frame(r, a, j, now);
		if (ret < 0) {
			fprintf(stderr, "oxidize-perf: sealing frame %" PRIu64 " failed: %s\n", j,
				ox_drop_name(-ret));
			r->err = -EIO;
			break;
		}
	}
	ox_aead_free(a);
	return NULL;
}

/* The step's frames: rounds of every client in a fresh random order. */
static int
build(struct step_run *r, uint64_t want)
{
	struct seal_arg sa[PERF_MAX_THREADS];
	unsigned int t, n_th;
	uint32_t *perm;
	uint64_t j;

	n_th = perf_n_threads(PERF_MAX_THREADS);
	r->frame_len = (uint16_t)(FRAME_HDRS + OX_DATA_OVERHEAD + r->size);
	r->stride = RTE_ALIGN_CEIL(r->frame_len, RTE_CACHE_LINE_SIZE);
	want = RTE_MIN(want, STEP_ARENA_MAX / r->stride);
	want = RTE_MAX(want - want % r->n, (uint64_t)r->n); /* whole rounds */
	r->arena_len = want * r->stride;
	r->arena = perf_arena(r->arena_len);
	if (r->arena == NULL) {
		r->arena_len = 0;
		return -ENOMEM;
	}
	r->who = malloc(want * sizeof(*r->who));
	perm = malloc((size_t)r->n * sizeof(*perm));
	if (r->who == NULL || perm == NULL) {
		free(perm);
		return -ENOMEM;
	}
	for (j = 0; j < r->n; j++)
		perm[j] = (uint32_t)j;
	for (j = 0; j < want; j++) {
		uint32_t k = (uint32_t)(j % r->n), x, tmp;

		/* Fisher-Yates, one swap a frame: each round a fresh order. */
		x = k + randombytes_uniform(r->n - k);
		tmp = perm[k];
		perm[k] = perm[x];
		perm[x] = tmp;
		r->who[j] = perm[k];
	}
	free(perm);
	r->n_pkts = want;
	for (t = 0; t < n_th; t++)
		sa[t] = (struct seal_arg){ .r = r, .t = t, .n_th = n_th };
	perf_on_threads(seal_range, sa, sizeof(sa[0]), n_th);
	return r->err != 0 ? r->err : perf_stop ? -EINTR : 0;
}

/* -------------------------------------------------------------- receive */

/* Open one of client i's packets; check what it carries. */
static void
verify(struct step_run *r, struct ox_aead *a, uint32_t i, uint8_t *d, uint16_t len, uint64_t now)
{
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(d + OX_DATA_HDR_LEN);
	uint32_t from = (i + r->n - 1) % r->n;
	int ret;

	ret = ox_data_open(a, &r->ss[i].kp, d, len, now);
	if (ret == -OX_DROP_REPLAY || ret == -OX_DROP_TOO_OLD) {
		r->replayed++;
		return;
	}
	if (ret < 0) {
		r->bad_auth++;
		return;
	}
	if (ret != r->size || ip->version_ihl != RTE_IPV4_VHL_DEF ||
	    ip->src_addr != r->ss[from].v4 || ip->dst_addr != r->ss[i].v4 ||
	    memcmp(d + OX_DATA_HDR_LEN + INNER_HDRS, INNER_MAGIC, 4) != 0) {
		r->bad_inner++;
		return;
	}
	r->verified++;
}

static void
step_receive(struct step_run *r, struct ox_aead *a, struct rte_mbuf *m, uint64_t now)
{
	struct ox_msg msg;
	struct ox_pkt p;
	uint32_t i;
	uint8_t *d;

	if (ox_pkt_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, 0, &p) < 0)
		goto foreign;
	d = p.frame + p.payload_off;
	if (ox_msg_parse(d, p.payload_len, &msg) != OX_MSG_DATA)
		goto foreign;
	i = msg.index & 0xfffff;
	if (i >= r->n || r->ss[i].kp.local_index != msg.index)
		goto foreign;
	r->received++;
	/* Spread over the clients: every client's first packet has counter 0. */
	if ((msg.counter + i) % r->c->verify_every == 0)
		verify(r, a, i, d, p.payload_len, now);
	return;
foreign:
	r->foreign++;
}

/* ----------------------------------------------------------------- send */

struct stxq {
	struct rte_mbuf *m[PERF_BURST];
	uint16_t n;
};

/* The step's frames out flat out, each client's on its port (its queue at
 * the relay: the one its handshake came by), the relay's packets in. */
static void
blast(struct step_run *r, struct ox_flash *f, struct ox_aead *a, double *secs)
{
	static struct stxq tx[RTE_MAX_ETHPORTS];
	struct rte_mbuf *pkts[PERF_BURST];
	uint64_t hz = rte_get_tsc_hz(), start = rte_rdtsc(), end = start + STEP_MAX_S * hz;
	uint64_t seq = 0, last_tx = start, now;
	uint16_t j, k, n, sent;
	bool queued;

	memset(tx, 0, sizeof(tx[0]) * f->n_ports);
	for (;;) {
		now = rte_rdtsc();
		/* Up to a burst of frames, as far as their ports have room. */
		for (k = 0; k < PERF_BURST && seq < r->n_pkts && now < end && !perf_stop; k++) {
			struct stxq *q = &tx[r->who[seq] % f->n_ports];
			struct rte_mbuf *m;

			if (q->n == PERF_BURST)
				break;
			m = rte_pktmbuf_alloc(f->pool);
			if (m == NULL)
				break;
			memcpy(rte_pktmbuf_mtod(m, void *), r->arena + seq * r->stride,
			       r->frame_len);
			m->data_len = m->pkt_len = r->frame_len;
			q->m[q->n++] = m;
			seq++;
		}
		queued = false;
		for (j = 0; j < f->n_ports; j++) {
			if (tx[j].n == 0)
				continue;
			sent = rte_eth_tx_burst(f->ports[j].port_id, 0, tx[j].m, tx[j].n);
			if (sent != 0) {
				last_tx = now;
				r->sent += sent;
			}
			/* What was not taken goes first next turn. */
			memmove(tx[j].m, tx[j].m + sent, (tx[j].n - sent) * sizeof(tx[j].m[0]));
			tx[j].n = (uint16_t)(tx[j].n - sent);
			queued |= tx[j].n != 0;
		}
		for (j = 0; j < f->n_ports; j++) {
			uint64_t now_ns;

			n = rte_eth_rx_burst(f->ports[j].port_id, 0, pkts, PERF_BURST);
			if (n == 0)
				continue;
			now_ns = ox_mono_ns(); /* one clock read a burst */
			for (k = 0; k < n; k++)
				step_receive(r, a, pkts[k], now_ns);
			rte_pktmbuf_free_bulk(pkts, n);
		}
		if (perf_stop || ((seq == r->n_pkts || now >= end) && now >= last_tx + hz / 5 &&
				  (!queued || now >= end)))
			break;
	}
	for (j = 0; j < f->n_ports; j++) {
		r->not_sent += tx[j].n;
		rte_pktmbuf_free_bulk(tx[j].m, tx[j].n);
	}
	r->not_sent += r->n_pkts - seq;
	*secs = (double)(RTE_MAX(last_tx, start + 1) - start) / hz;
}

static void
step_free(struct step_run *r)
{
	if (r->arena != NULL)
		munmap(r->arena, r->arena_len);
	r->arena = NULL;
	free(r->who);
	r->who = NULL;
}

int
perf_steps_run(const struct perf_conf *c, struct ox_flash *f, struct perf_session *ss, uint32_t n)
{
	struct ox_aead *a = ox_aead_create(OX_AEAD_AUTO);
	char line[64];
	double secs;
	int k, ret = 0;

	if (a == NULL)
		return -ENOMEM;
	/* Step -1: one empty DATA from every client, which confirms its keys. */
	for (k = -1; k < (int)c->n_steps && ret == 0 && !perf_stop; k++) {
		struct step_run r = { .c = c, .ss = ss, .n_all = n };

		r.n = k < 0 ? n : c->steps[k].sessions;
		r.size = k < 0 ? 0 : c->steps[k].size;
		if (r.n > n) {
			fprintf(stderr,
				"oxidize-perf: step %d wants %u sessions, the storm made %u\n", k,
				r.n, n);
			ret = -EINVAL;
			break;
		}
		ret = build(&r, k < 0 ? n : c->step_packets);
		if (ret == 0 && k >= 0) {
			printf("{\"mode\": \"step-ready\", \"step\": %d}\n", k);
			fflush(stdout);
			if (c->step_wait && fgets(line, sizeof(line), stdin) == NULL) {
				fprintf(stderr, "oxidize-perf: stdin closed before step %d\n", k);
				ret = -EPIPE;
			}
		}
		if (ret == 0)
			blast(&r, f, a, &secs);
		if (ret == 0 && k >= 0) {
			printf("{\"mode\": \"step\", \"step\": %d, \"sessions\": %u, \"size\": %u"
			       ", \"prepared\": %" PRIu64 ", \"sent\": %" PRIu64
			       ", \"not_sent\": %" PRIu64 ", \"received\": %" PRIu64
			       ", \"seconds\": %.3f, \"tx_pps\": %.0f, \"rx_pps\": %.0f"
			       ", \"verified\": %" PRIu64 ", \"bad_auth\": %" PRIu64
			       ", \"bad_inner\": %" PRIu64 ", \"replayed\": %" PRIu64
			       ", \"foreign\": %" PRIu64 ", \"tsc_hz\": %" PRIu64 "}\n",
			       k, r.n, r.size, r.n_pkts, r.sent, r.not_sent, r.received, secs,
			       r.sent / secs, r.received / secs, r.verified, r.bad_auth,
			       r.bad_inner, r.replayed, r.foreign, rte_get_tsc_hz());
			fflush(stdout);
		}
		step_free(&r);
	}
	ox_aead_free(a);
	return ret;
}
