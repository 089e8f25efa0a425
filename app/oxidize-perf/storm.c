/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-perf storm: a failover storm, N listed clients that all arrive at
 * once, as a dead relay's do at the next one.
 *
 *   oxidize-perf storm-keys DIR N [--fixed K] [--psk K]
 *   oxidize-perf [EAL] -- --iface IF --dst IP --dst-mac MAC --storm DIR
 *                         [--clients N] [--rate INITS/S] [--duration S]
 *                         [--sources K] [--verify-every V] [--wireguard] [--fifo]
 *                         [--start-wait] [--json]
 *
 * `storm-keys` writes DIR/storm.seed (mode 600) and DIR/storm.allow, N
 * allow-list lines "KEY sI": client i's private key is BLAKE2b-256 keyed
 * by the seed over "oxstorm" and i, so 100,000 clients need no key files;
 * every K-th line may carry a fixed address, or a preshared key (for lists
 * like an operator's; an OxTunnel client of a line with one is refused).
 * The relay's key is DIR/server.pub (from `oxidize-perf keys DIR M`).
 *
 * Before the clock starts every client makes its first five initiations
 * (real Noise IK, lib/oxtunnel's ox_initiator), on every core there is
 * (minutes for 100,000 on a small machine: with --start-wait it says when
 * it is ready and begins on a line from stdin, so other load can be timed
 * across the storm alone).
 * Client i sends from source address 198.19.0.0 + 1 + (i % K) (the
 * testbed's range) and port 20000 + i / K, so the relay sees K sources; its replies come back to
 * this interface whatever their address, since the relay answers by swapping the frame's addresses.
 *
 * The run sends every client's first INIT at --rate (default: all within
 * one second), then behaves as clients do (doc/oxtunnel.md section 5):
 *  - a COOKIE is taken (ox_initiator_consume_cookie): the cookie serves the
 *    next initiation's mac2;
 *  - a client with no RESPONSE REKEY_TIMEOUT (5 s, plus up to 333 ms of
 *    jitter as WireGuard adds) after its INIT sends the next one: made
 *    before the run (the first five), mac2 put on it then; later ones made
 *    then, a few a turn;
 *  - a RESPONSE to the INIT in flight (its receiver index) ends the client's
 *    storm; one in --verify-every is opened (ox_initiator_consume_response),
 *    the others matched by index.
 * It ends when every client has its response, or after --duration seconds.
 * Reported: the time until the last response, responses per 100 ms (the
 * timeline), initiations sent by attempt, cookies taken, responses that
 * did not verify.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_udp.h>
#include <sodium.h>

#include "ox_pkt.h"
#include "ox_tunnel.h"
#include "perf.h"

#define STORM_MADE 5		   /* initiations made before the run */
#define STORM_JITTER_NS 333000000u /* WireGuard's REKEY_TIMEOUT_JITTER_MAX */
#define STORM_BIN_NS 100000000u	   /* timeline: responses per 100 ms */
#define STORM_RX_DESC 8192
#define STORM_LIVE_PER_TURN 2 /* initiations made during the run, per turn */
#define STORM_NAP_US 1000     /* a turn that found little sleeps this long */
/* Initiations a turn sends at most. Each costs the sender the kernel's
 * whole way to the relay's socket (a few microseconds on veth); unbounded,
 * a wave of 100,000 retries kept the cpu it shares with the relay's
 * control thread for a second under SCHED_FIFO, and the worker's engine
 * waited on that thread. 256 a turn, with a nap between, leave that thread
 * part of the cpu while a wave goes out (index waits: 116,794 in 0.5 s
 * before, none to 14,000 a storm after). */
#define STORM_SEND_PER_TURN 256

enum sstate {
	S_IDLE = 0, /* not sent yet */
	S_WAIT,	    /* an INIT in flight */
	S_DONE,	    /* its RESPONSE came */
};

struct sclient {
	struct ox_initiator in[STORM_MADE]; /* [attempt % STORM_MADE]: its state */
	uint8_t init[STORM_MADE][OX_INIT_LEN];
	uint8_t state;
	uint8_t attempt; /* INITs sent */
	uint64_t sent_ns, due_ns;
};

struct storm {
	const struct perf_conf *c;
	struct sclient *cl;
	uint32_t n;
	uint8_t seed[32];
	uint8_t server_pub[OX_KEY_LEN];
	uint32_t *timers; /* clients in the order their retry is due */
	uint32_t t_head, t_tail;
	uint64_t start_ns, last_done_ns;
	uint64_t sent_by_attempt[8], cookies, done, verified, bad_response, foreign, not_sent, late,
		rx_missed;
	uint32_t *bins;
	uint32_t n_bins;
	int prep_err;
	bool fifo;    /* the loop ran under SCHED_FIFO (--fifo, and allowed) */
	double cpu_s; /* the loop's cpu time */
	/* With DATA steps: every RESPONSE kept, opened after the storm. */
	uint8_t (*resp)[OX_RESPONSE_LEN];
	struct perf_session *sess;
};

/* ---------------------------------------------------------------- keys */

static void
client_priv(const uint8_t seed[32], uint32_t i, uint8_t priv[OX_KEY_LEN])
{
	uint8_t msg[11];

	memcpy(msg, "oxstorm", 7);
	msg[7] = (uint8_t)i;
	msg[8] = (uint8_t)(i >> 8);
	msg[9] = (uint8_t)(i >> 16);
	msg[10] = (uint8_t)(i >> 24);
	crypto_generichash(priv, OX_KEY_LEN, msg, sizeof(msg), seed, 32);
}

static int
read_seed(const char *dir, uint8_t seed[32])
{
	char path[PATH_MAX];
	FILE *fp;
	size_t got;

	snprintf(path, sizeof(path), "%s/storm.seed", dir);
	fp = fopen(path, "re");
	if (fp == NULL) {
		fprintf(stderr, "oxidize-perf: cannot open %s: %s (oxidize-perf storm-keys)\n",
			path, strerror(errno));
		return -ENOENT;
	}
	got = fread(seed, 1, 32, fp);
	fclose(fp);
	if (got != 32) {
		fprintf(stderr, "oxidize-perf: %s is not 32 bytes\n", path);
		return -EINVAL;
	}
	return 0;
}

int
perf_storm_keys(int argc, char **argv)
{
	char path[PATH_MAX], pub64[OX_KEY_B64_LEN + 1], psk64[OX_KEY_B64_LEN + 1];
	uint8_t seed[32], priv[OX_KEY_LEN], pub[OX_KEY_LEN], psk[OX_KEY_LEN];
	unsigned long n = 0, fixed = 0, psk_every = 0, i;
	char *end = NULL;
	FILE *fp;
	int fd, a, ret = 0;

	if (argc >= 3)
		n = strtoul(argv[2], &end, 10);
	for (a = 3; a + 1 < argc && end != NULL && *end == '\0'; a += 2) {
		if (strcmp(argv[a], "--fixed") == 0)
			fixed = strtoul(argv[a + 1], &end, 10);
		else if (strcmp(argv[a], "--psk") == 0)
			psk_every = strtoul(argv[a + 1], &end, 10);
		else
			end = argv[a];
	}
	if (argc < 3 || (argc - 3) % 2 != 0 || end == NULL || *end != '\0' || n < 1 ||
	    n > PERF_STORM_MAX) {
		fprintf(stderr,
			"usage: oxidize-perf storm-keys DIR N [--fixed K] [--psk K] (1..%u "
			"clients; every K-th line with a fixed address, a preshared key)\n",
			PERF_STORM_MAX);
		return -EINVAL;
	}
	if (sodium_init() < 0)
		return -EIO;
	randombytes_buf(seed, sizeof(seed));
	snprintf(path, sizeof(path), "%s/storm.seed", argv[1]);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, seed, sizeof(seed)) != (ssize_t)sizeof(seed)) {
		ret = -errno;
		fprintf(stderr, "oxidize-perf: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/storm.allow", argv[1]);
	fp = fopen(path, "we");
	if (fp == NULL) {
		ret = -errno;
		fprintf(stderr, "oxidize-perf: cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	fprintf(fp, "# oxidize-perf storm-keys: %lu client(s)\n", n);
	for (i = 0; i < n; i++) {
		client_priv(seed, (uint32_t)i, priv);
		crypto_scalarmult_base(pub, priv);
		ox_key_to_base64(pub64, pub);
		fprintf(fp, "%s s%lu", pub64, i);
		/* Fixed addresses from 100.80.0.0, clear of `keys`' 100.96.0.0. */
		if (fixed != 0 && i % fixed == 0)
			fprintf(fp, " 100.%lu.%lu.%lu", 80 + (i >> 16), (i >> 8) & 0xff,
				(i & 0xff) ? (i & 0xff) : 1);
		if (psk_every != 0 && i % psk_every == 0) {
			randombytes_buf(psk, sizeof(psk));
			ox_key_to_base64(psk64, psk);
			fprintf(fp, " psk=%s", psk64);
		}
		fputc('\n', fp);
	}
	if (fclose(fp) != 0) {
		ret = -EIO;
		fprintf(stderr, "oxidize-perf: cannot write %s\n", path);
	}
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(psk, sizeof(psk));
	return ret;
}

/* ------------------------------------------------------------- prepare */

/* Sender index of client i's attempt a: the client in the low 20 bits. */
static uint32_t
sender_index(uint32_t i, uint8_t a)
{
	return i | (uint32_t)a << 20 | 1u << 28;
}

struct prep_arg {
	struct storm *s;
	uint32_t from, to;
};

static void *
prep_range(void *arg)
{
	struct prep_arg *pa = arg;
	struct storm *s = pa->s;
	uint8_t priv[OX_KEY_LEN], tai[12];
	uint32_t i;
	int k;

	for (i = pa->from; i < pa->to; i++) {
		struct sclient *cl = &s->cl[i];

		client_priv(s->seed, i, priv);
		if (ox_initiator_init_wire(&cl->in[0], s->c->wire, priv, s->server_pub, NULL) !=
		    0) {
			s->prep_err = -EINVAL;
			break;
		}
		for (k = 1; k < STORM_MADE; k++)
			cl->in[k] = cl->in[0];
		for (k = 0; k < STORM_MADE; k++) {
			/* Later attempts carry later timestamps. */
			ox_tai64n_now(tai);
			tai[11] = (uint8_t)(tai[11] + k);
			if (ox_initiator_begin(&cl->in[k], sender_index(i, (uint8_t)k), tai, 0,
					       cl->init[k]) != 0)
				s->prep_err = -EIO;
		}
	}
	sodium_memzero(priv, sizeof(priv));
	return NULL;
}

/* After the storm: every client's RESPONSE opened, its keys and address. */
static void *
finish_range(void *arg)
{
	struct prep_arg *pa = arg;
	struct storm *s = pa->s;
	struct ox_hs_payload pl;
	uint64_t now = ox_mono_ns();
	uint32_t i;

	for (i = pa->from; i < pa->to; i++) {
		struct sclient *cl = &s->cl[i];

		if (ox_initiator_consume_response(&cl->in[(cl->attempt - 1) % STORM_MADE],
						  s->resp[i], OX_RESPONSE_LEN, now, &pl,
						  &s->sess[i].kp) != 0 ||
		    pl.v4 == 0) {
			s->prep_err = -EPROTO;
			break;
		}
		s->sess[i].v4 = rte_cpu_to_be_32(pl.v4);
	}
	return NULL;
}

/* fn over every client, on as many threads as there are cores. */
static int
on_threads(struct storm *s, void *(*fn)(void *))
{
	struct prep_arg pa[PERF_MAX_THREADS];
	unsigned int t, n_th = perf_n_threads(PERF_MAX_THREADS);

	for (t = 0; t < n_th; t++) {
		pa[t].s = s;
		pa[t].from = (uint32_t)((uint64_t)s->n * t / n_th);
		pa[t].to = (uint32_t)((uint64_t)s->n * (t + 1) / n_th);
	}
	perf_on_threads(fn, pa, sizeof(pa[0]), n_th);
	return s->prep_err;
}

/* ----------------------------------------------------------------- run */

void
perf_storm_flow(const struct perf_conf *c, uint32_t i, struct ox_pkt_flow *f)
{
	uint32_t src = rte_cpu_to_be_32(PERF_STORM_NET + 1 + i % c->sources);

	perf_flow(c, (uint16_t)(PERF_STORM_SPORT + i / c->sources), f);
	memcpy(f->src_ip, &src, 4);
}

/* Client i's frame for its attempt's INIT. */
static struct rte_mbuf *
frame(struct storm *s, struct rte_mempool *mp, uint32_t i, const uint8_t *init)
{
	const struct perf_conf *c = s->c;
	struct ox_pkt_flow f;
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	uint8_t *d;

	if (m == NULL)
		return NULL;
	perf_storm_flow(c, i, &f);
	d = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(d + OX_PKT_HDR_LEN(false), init, OX_INIT_LEN);
	ox_pkt_build(d, &f, OX_INIT_LEN, OX_PKT_CSUM_FULL);
	m->data_len = m->pkt_len = (uint16_t)(OX_PKT_HDR_LEN(false) + OX_INIT_LEN);
	return m;
}

static void
timer_add(struct storm *s, uint32_t i, uint64_t now)
{
	struct sclient *cl = &s->cl[i];

	cl->due_ns = now + OX_REKEY_TIMEOUT_NS + randombytes_uniform(STORM_JITTER_NS);
	s->timers[s->t_tail++ % s->n] = i;
}

/* What a turn sends, per port, in one burst each. */
struct txq {
	struct rte_mbuf *m[PERF_BURST];
	uint16_t n;
};

static void
tx_flush(struct storm *s, struct ox_flash *f, struct txq *q, uint16_t port)
{
	uint16_t sent;

	if (q->n == 0)
		return;
	sent = rte_eth_tx_burst(f->ports[port].port_id, 0, q->m, q->n);
	if (sent < q->n) {
		s->not_sent += q->n - sent;
		rte_pktmbuf_free_bulk(q->m + sent, q->n - sent);
	}
	q->n = 0;
}

/* Client i's next INIT (made before the run, or now) into its port's
 * burst; the client waits for an answer from now on. */
static int
send_init(struct storm *s, struct ox_flash *f, struct txq *tx, uint32_t i, uint64_t now)
{
	struct sclient *cl = &s->cl[i];
	uint8_t a = cl->attempt, k = a % STORM_MADE;
	uint16_t port = (uint16_t)(i % f->n_ports);
	struct rte_mbuf *m;

	if (a > 0) {
		struct ox_initiator *prev = &cl->in[(a - 1) % STORM_MADE];

		/* The cookie the last one drew serves this one. */
		cl->in[k].cookie_ns = prev->cookie_ns;
		memcpy(cl->in[k].cookie, prev->cookie, OX_MAC_LEN);
		if (a >= STORM_MADE) {
			uint8_t tai[12];

			ox_tai64n_now(tai);
			if (ox_initiator_begin(&cl->in[k], sender_index(i, a & 0xf), tai, now,
					       cl->init[k]) != 0)
				return -EIO;
		} else {
			ox_initiator_put_mac2(&cl->in[k], cl->init[k], now);
		}
	}
	m = frame(s, f->pool, i, cl->init[k]);
	if (m == NULL)
		return -ENOBUFS;
	tx[port].m[tx[port].n++] = m;
	if (tx[port].n == PERF_BURST)
		tx_flush(s, f, &tx[port], port);
	s->sent_by_attempt[RTE_MIN(a, RTE_DIM(s->sent_by_attempt) - 1)]++;
	cl->attempt++;
	cl->state = S_WAIT;
	cl->sent_ns = now;
	timer_add(s, i, now);
	return 0;
}

static void
storm_receive(struct storm *s, struct rte_mbuf *m, uint64_t now)
{
	const struct perf_conf *c = s->c;
	struct ox_hs_payload pl;
	struct ox_keypair kp;
	struct sclient *cl;
	struct ox_pkt p;
	uint32_t idx, i;
	uint8_t *d, type;
	int k;

	if (ox_pkt_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, 0, &p) < 0 ||
	    p.payload_len < 12)
		goto foreign;
	d = p.frame + p.payload_off;
	type = c->wire == OX_WIRE_WIREGUARD ? d[0] : d[3];
	/* COOKIE and OxTunnel's RESPONSE name our index at 4, WireGuard's
	 * RESPONSE at 8 (after its own). */
	memcpy(&idx, d + (type == OX_MSG_RESPONSE && c->wire == OX_WIRE_WIREGUARD ? 8 : 4),
	       sizeof(idx));
	idx = rte_le_to_cpu_32(idx);
	i = idx & 0xfffff;
	if (i >= s->n || (idx >> 28) != 1)
		goto foreign;
	cl = &s->cl[i];
	k = (cl->attempt - 1) % STORM_MADE;
	if (cl->state != S_WAIT || cl->in[k].local_index != idx) {
		s->late++; /* an answer to an INIT the client gave up */
		return;
	}
	if (type == OX_MSG_COOKIE) {
		if (ox_initiator_consume_cookie(&cl->in[k], d, p.payload_len, now) == 0)
			s->cookies++;
		else
			s->bad_response++;
		return;
	}
	if (type != OX_MSG_RESPONSE)
		goto foreign;
	if (s->resp != NULL) {
		/* Opened after the storm, on every core. */
		if (p.payload_len != OX_RESPONSE_LEN) {
			s->bad_response++;
			return;
		}
		memcpy(s->resp[i], d, OX_RESPONSE_LEN);
	} else if (i % c->verify_every == 0) {
		if (ox_initiator_consume_response(&cl->in[k], d, p.payload_len, now, &pl, &kp) !=
		    0) {
			s->bad_response++;
			return;
		}
		ox_keypair_wipe(&kp);
		s->verified++;
	}
	cl->state = S_DONE;
	s->done++;
	s->last_done_ns = now;
	if ((now - s->start_ns) / STORM_BIN_NS < s->n_bins)
		s->bins[(now - s->start_ns) / STORM_BIN_NS]++;
	return;
foreign:
	s->foreign++;
}

static void
report(const struct storm *s, double secs)
{
	const struct perf_conf *c = s->c;
	uint32_t b, last = 0;

	for (b = 0; b < s->n_bins; b++)
		if (s->bins[b])
			last = b + 1;
	if (!c->json) {
		printf("storm %s: %u clients from %u sources, %" PRIu64 " with sessions after "
		       "%.3f s; INITs sent %" PRIu64 " + %" PRIu64 " + %" PRIu64
		       " retries, cookies %" PRIu64 ", verified %" PRIu64 ", bad %" PRIu64 "\n",
		       c->wire == OX_WIRE_WIREGUARD ? "WireGuard" : "OxTunnel", s->n, c->sources,
		       s->done, s->last_done_ns ? (s->last_done_ns - s->start_ns) / 1e9 : 0.0,
		       s->sent_by_attempt[0], s->sent_by_attempt[1], s->sent_by_attempt[2],
		       s->cookies, s->verified, s->bad_response);
		return;
	}
	printf("{\"mode\": \"storm\", \"wire\": \"%s\", \"clients\": %u, \"sources\": %u"
	       ", \"rate\": %" PRIu64 ", \"done\": %" PRIu64 ", \"all_s\": %.3f"
	       ", \"seconds\": %.3f, \"cookies\": %" PRIu64 ", \"verified\": %" PRIu64
	       ", \"bad_response\": %" PRIu64 ", \"foreign\": %" PRIu64 ", \"not_sent\": %" PRIu64
	       ", \"late\": %" PRIu64 ", \"rx_missed\": %" PRIu64 ", \"fifo\": %s"
	       ", \"cpu_s\": %.3f, \"tsc_hz\": %" PRIu64 ", \"sent_by_attempt\": [",
	       c->wire == OX_WIRE_WIREGUARD ? "wireguard" : "oxtunnel", s->n, c->sources, c->rate,
	       s->done, s->done == s->n ? (s->last_done_ns - s->start_ns) / 1e9 : -1.0, secs,
	       s->cookies, s->verified, s->bad_response, s->foreign, s->not_sent, s->late,
	       s->rx_missed, s->fifo ? "true" : "false", s->cpu_s, rte_get_tsc_hz());
	for (b = 0; b < RTE_DIM(s->sent_by_attempt); b++)
		printf("%s%" PRIu64, b ? ", " : "", s->sent_by_attempt[b]);
	printf("], \"bin_s\": %.3f, \"done_per_bin\": [", STORM_BIN_NS / 1e9);
	for (b = 0; b < last; b++)
		printf("%s%u", b ? ", " : "", s->bins[b]);
	printf("]}\n");
}

static void
storm_loop(struct storm *s, struct ox_flash *f)
{
	const struct perf_conf *c = s->c;
	struct rte_mbuf *pkts[PERF_BURST];
	struct txq tx[RTE_MAX_ETHPORTS];
	uint64_t rate = c->rate ? c->rate : s->n, gap_ns = 1000000000u / rate, next_tx, end;
	uint32_t next_first = 0, got, live, sent;
	uint64_t now;
	uint16_t j, n, k;

	memset(tx, 0, sizeof(tx[0]) * f->n_ports);
	s->cpu_s = perf_thread_cpu_s();
	s->fifo = c->fifo && perf_fifo_set(SCHED_FIFO) == 0;
	s->start_ns = now = ox_mono_ns();
	next_tx = now;
	end = now + (uint64_t)(c->duration * 1e9);
	while (!perf_stop && now < end && s->done < s->n) {
		now = ox_mono_ns();
		/* First INITs, paced. */
		sent = 0;
		while (next_first < s->n && now >= next_tx && sent < STORM_SEND_PER_TURN) {
			if (send_init(s, f, tx, next_first, now) != 0) {
				s->not_sent++;
				break;
			}
			next_first++;
			next_tx += gap_ns;
			sent++;
		}
		/* Retries that are due (in the order they were set; jitter makes
		 * one wait at most 333 ms behind another). One made now costs
		 * three X25519: a few a turn, so that answers are read between. */
		live = 0;
		while (s->t_head != s->t_tail && live < STORM_LIVE_PER_TURN &&
		       sent < STORM_SEND_PER_TURN) {
			uint32_t i = s->timers[s->t_head % s->n];
			struct sclient *cl = &s->cl[i];

			if (cl->state == S_DONE) {
				s->t_head++;
				continue;
			}
			if (now < cl->due_ns)
				break;
			s->t_head++;
			live += cl->attempt >= STORM_MADE;
			if (send_init(s, f, tx, i, now) != 0) {
				/* Next time round. */
				s->not_sent++;
				s->t_head--;
				break;
			}
			sent++;
		}
		for (j = 0; j < f->n_ports; j++)
			tx_flush(s, f, &tx[j], j);
		/* Every answer waiting: a full ring drops them. */
		for (j = 0, got = 0; j < f->n_ports; j++) {
			do {
				n = rte_eth_rx_burst(f->ports[j].port_id, 0, pkts, PERF_BURST);
				for (k = 0; k < n; k++)
					storm_receive(s, pkts[k], now);
				rte_pktmbuf_free_bulk(pkts, n);
				got += n;
			} while (n == PERF_BURST);
		}
		/* Leave the core to the relay (on a small testbed they share
		 * it) a while each turn that found little, the first INITs'
		 * pacing too (they go out a turn's worth at a time): answers
		 * wait in the RX ring meanwhile (2,048 buffers: a storm's
		 * cookies come at under 100,000 a second), and the timeline's
		 * unit is 100 ms. Shorter naps cost the relay's thread on this
		 * cpu more than the time: each wake evicts its caches. */
		if (got < PERF_BURST)
			rte_delay_us_sleep(STORM_NAP_US);
	}
	/* What the kernel dropped before it reached us (a full RX ring):
	 * answers the relay sent that no client saw. */
	for (j = 0; j < f->n_ports; j++) {
		struct rte_eth_stats st;

		if (rte_eth_stats_get(f->ports[j].port_id, &st) == 0)
			s->rx_missed += st.imissed;
	}
	if (s->fifo)
		perf_fifo_set(SCHED_OTHER);
	s->cpu_s = perf_thread_cpu_s() - s->cpu_s;
	report(s, (ox_mono_ns() - s->start_ns) / 1e9);
}

int
perf_storm_run(struct perf_conf *c)
{
	static struct ox_flash f;
	struct storm s = { .c = c };
	int ret;

	if (sodium_init() < 0)
		return -EIO;
	s.n = c->storm_clients;
	ret = read_seed(c->storm_dir, s.seed);
	if (ret != 0)
		return ret;
	ret = perf_read_server_pub(c->storm_dir, s.server_pub);
	if (ret != 0)
		return ret;
	s.cl = calloc(s.n, sizeof(*s.cl));
	s.timers = calloc(s.n, sizeof(*s.timers));
	s.n_bins = (uint32_t)(c->duration * 1e9 / STORM_BIN_NS) + 1;
	s.bins = calloc(s.n_bins, sizeof(*s.bins));
	if (s.cl == NULL || s.timers == NULL || s.bins == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	if (c->n_steps != 0) {
		s.resp = calloc(s.n, sizeof(*s.resp));
		s.sess = calloc(s.n, sizeof(*s.sess));
		if (s.resp == NULL || s.sess == NULL) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = on_threads(&s, prep_range);
	if (ret != 0) {
		fprintf(stderr, "oxidize-perf: storm initiations not made: %s\n", strerror(-ret));
		goto out;
	}
	/* Answers come in bursts as large as the relay's queues: a deep ring. */
	c->rx_desc = STORM_RX_DESC;
	ret = perf_flash_up(&f, c);
	if (ret != 0)
		goto out;
	if (c->start_wait) {
		char line[64];

		/* A caller starting other load first: the storm's clock
		 * starts on its word, not after the minutes the INITs took. */
		printf("{\"mode\": \"ready\", \"clients\": %u}\n", s.n);
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL) {
			fprintf(stderr, "oxidize-perf: stdin closed before the storm\n");
			ret = -EPIPE;
			goto out_flash;
		}
	}
	storm_loop(&s, &f);
	if (c->n_steps != 0 && !perf_stop) {
		if (s.done != s.n) {
			fprintf(stderr,
				"oxidize-perf: %" PRIu64 " of %u clients got sessions: no "
				"DATA steps\n",
				s.done, s.n);
			ret = -ETIMEDOUT;
		} else if ((ret = on_threads(&s, finish_range)) != 0) {
			fprintf(stderr, "oxidize-perf: a RESPONSE did not open: no DATA steps\n");
		} else {
			ret = perf_steps_run(c, &f, s.sess, s.n);
		}
	}
out_flash:
	ox_flash_destroy(&f);
out:
	if (s.sess != NULL) {
		sodium_memzero(s.sess, (size_t)s.n * sizeof(*s.sess));
		free(s.sess);
	}
	free(s.resp);
	if (s.cl != NULL) {
		sodium_memzero(s.cl, (size_t)s.n * sizeof(*s.cl));
		free(s.cl);
	}
	sodium_memzero(s.seed, sizeof(s.seed));
	free(s.timers);
	free(s.bins);
	return ret;
}
