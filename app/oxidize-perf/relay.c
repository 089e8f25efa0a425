/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-perf relay mode: N simulated clients, OxTunnel v2 or (with
 * --wireguard) WireGuard.
 *
 * Before the clock starts:
 *  1. each client does a real Noise IK handshake (lib/oxtunnel's
 *     ox_initiator, told the wire) with its own static key, over a kernel
 *     UDP socket bound to the source port its DATA uses later, so the
 *     relay's RSS puts both on the same queue (the worker that owns the
 *     session). Initiations are spaced under the relay's per-source limit,
 *     since all clients share one address. Then:
 *     - OxTunnel: a KEEPALIVE, whose ACK shows that the relay took the keys
 *       (a first DATA confirms them) and reaches the client; the tunnel
 *       address is the handshake's;
 *     - WireGuard: an empty DATA (WireGuard's keepalive), which confirms
 *       the keys and draws no answer; the tunnel address is the fixed one
 *       of the client's allow-list line (WireGuard negotiates none), so any
 *       WireGuard hub configured from DIR/allow serves;
 *  2. every DATA frame of the run is built and sealed in bulk: packet j is
 *     client j % N's, under that client's next counter (strictly
 *     increasing, never resent), and carries one inner IPv4/UDP packet of
 *     --size bytes from the client's tunnel address to the next client's
 *     (client to client), or to --exit IP (out of the relay's exit). The
 *     inner UDP payload holds "OXRB" and j. Outer and inner checksums are
 *     complete, as a kernel client's would be.
 * During the run, sending a packet is one copy of a prepared frame into an
 * mbuf and one TSC store (send_tsc[j]): no cryptography on the send side,
 * so the generator is not what limits the relay.
 *
 * Receiving: every DATA frame with a payload to one of our receiver
 * indexes counts as received (empty ones, keepalives, are counted apart).
 * One in --verify-every (by counter) is opened with the client's
 * keys and replay window, its inner packet checked (from the previous
 * client's tunnel address to this one's, a j of that client that was sent)
 * and timed: RTT = now - send_tsc[j]. bad_auth counts frames that did not
 * authenticate, bad_inner opened ones that carried something else,
 * replayed ones the window refused. With --exit nothing is expected back:
 * what left the relay is counted there (its to_tap counter, or the
 * destination's own count).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <sodium.h>

#include "ox_pkt.h"
#include "ox_tunnel.h"
#include "perf.h"

#define SPORT_BASE 42000   /* client i sends from this + i */
#define INNER_SPORT 40000  /* inner UDP source port base */
#define INNER_DPORT_C2C 7  /* echo: only the generator reads them */
#define INNER_DPORT_EXIT 9 /* discard */
#define INNER_MAGIC "OXRB"
#define INNER_HDRS OX_PKT_IP_HDR_LEN(false)
#define INNER_MARK 12 /* magic + u64 j */
#define FRAME_HDRS OX_PKT_HDR_LEN(false)
#define ARENA_MAX (UINT64_C(2) << 30) /* prepared frames */
#define DEFAULT_PPS 700000.0	      /* flat out: frames for this rate */
#define HS_TRIES 3
#define HS_WAIT_NS (UINT64_C(1000) * 1000000)
/* The relay allows one source 20 initiations/s after a burst of 5
 * (doc/oxtunnel.md section 8): stay under it. */
#define HS_BURST 4
#define HS_GAP_NS (UINT64_C(60) * 1000000)
#define PERF_NS_PER_S 1e9

_Static_assert(PERF_RELAY_INNER_MIN >= INNER_HDRS + INNER_MARK, "inner packet too small");

struct rclient {
	struct ox_keypair kp;
	uint32_t v4;	/* tunnel address from the handshake, network order */
	uint16_t sport; /* outer UDP source port, host order */
	uint64_t rx;	/* DATA frames received for this client */
};

struct relay_run {
	const struct perf_conf *c;
	struct rclient *cl;
	struct ox_aead *aead;
	uint8_t server_pub[OX_KEY_LEN];
	uint64_t inits_sent, last_init_ns;
	uint8_t *arena; /* prepared frames: packet j at j * stride */
	size_t arena_len;
	uint32_t stride;
	uint16_t frame_len;
	uint64_t n_pkts;
	uint64_t *send_tsc; /* TSC when packet j was handed to a port */
	uint64_t us_cycles;
	bool fifo;    /* the run's loop under SCHED_FIFO (--fifo, paced, allowed) */
	double cpu_s; /* the run's loop's cpu time */
	uint64_t received, keepalives, foreign, verified, bad_auth, bad_inner, replayed;
};

/* ---------------------------------------------------------------- keys */

static int
write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	size_t len = strlen(text);
	int fd, ret = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* An existing file keeps its mode through O_CREAT: set it. */
	if (fchmod(fd, mode) != 0)
		ret = -errno;
	else if (write(fd, text, len) != (ssize_t)len)
		ret = -EIO;
	if (close(fd) != 0 && ret == 0)
		ret = -errno;
	if (ret != 0)
		fprintf(stderr, "oxidize-perf: cannot write %s: %s\n", path, strerror(-ret));
	return ret;
}

/* A new key pair: NAME.key (private, mode 600); the public key's base64 in pub64. */
static int
new_key(const char *dir, const char *name, char pub64[OX_KEY_B64_LEN + 1])
{
	uint8_t priv[OX_KEY_LEN], pub[OX_KEY_LEN];
	char text[OX_KEY_B64_LEN + 2], file[64];
	int ret;

	ox_key_generate(priv, pub);
	ox_key_to_base64(text, priv);
	strcat(text, "\n");
	snprintf(file, sizeof(file), "%s.key", name);
	ret = write_file(dir, file, text, 0600);
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(text, sizeof(text));
	ox_key_to_base64(pub64, pub);
	return ret;
}

int
perf_relay_keys(int argc, char **argv)
{
	char pub64[OX_KEY_B64_LEN + 1], line[OX_KEY_B64_LEN + 2], name[32];
	char *allow, *end = NULL;
	unsigned long n = 0, i;
	size_t cap, off;
	int ret;

	if (argc == 3)
		n = strtoul(argv[2], &end, 10);
	if (argc != 3 || *end != '\0' || n < 1 || n > PERF_MAX_FLOWS) {
		fprintf(stderr, "usage: oxidize-perf keys DIR N (1..%d clients)\n", PERF_MAX_FLOWS);
		return -EINVAL;
	}
	if (sodium_init() < 0)
		return -EIO;
	if (mkdir(argv[1], 0700) != 0 && errno != EEXIST) {
		ret = -errno;
		fprintf(stderr, "oxidize-perf: cannot create %s: %s\n", argv[1], strerror(errno));
		return ret;
	}
	cap = (n + 2) * (OX_KEY_B64_LEN + 16 + INET_ADDRSTRLEN);
	allow = malloc(cap);
	if (allow == NULL)
		return -ENOMEM;
	off = (size_t)snprintf(allow, cap, "# oxidize-perf keys: %lu client(s)\n", n);
	ret = new_key(argv[1], "server", pub64);
	if (ret != 0)
		goto out;
	snprintf(line, sizeof(line), "%s\n", pub64);
	ret = write_file(argv[1], "server.pub", line, 0644);
	for (i = 0; i < n && ret == 0; i++) {
		struct in_addr a = { .s_addr = htonl(PERF_RELAY_ADDR_BASE + (uint32_t)i + 1) };
		char addr[INET_ADDRSTRLEN];

		snprintf(name, sizeof(name), "client%lu", i);
		ret = new_key(argv[1], name, pub64);
		inet_ntop(AF_INET, &a, addr, sizeof(addr));
		off += (size_t)snprintf(allow + off, cap - off, "%s c%lu %s\n", pub64, i, addr);
	}
	if (ret == 0)
		ret = write_file(argv[1], "allow", allow, 0644);
out:
	free(allow);
	return ret;
}

int
perf_read_server_pub(const char *dir, uint8_t key[OX_KEY_LEN])
{
	char path[PATH_MAX], buf[OX_KEY_B64_LEN + 8];
	size_t len;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/server.pub", dir);
	fp = fopen(path, "re");
	if (fp == NULL) {
		int err = errno;

		fprintf(stderr, "oxidize-perf: cannot open %s: %s\n", path, strerror(err));
		return -err;
	}
	len = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (ox_key_from_base64(key, buf, len) != 0) {
		fprintf(stderr, "oxidize-perf: %s holds no base64 key\n", path);
		return -EINVAL;
	}
	return 0;
}

/* The plaintext of one DATA: the inner packet, padded for WireGuard. */
static uint16_t
plain_len(const struct perf_conf *c)
{
	return c->wire == OX_WIRE_WIREGUARD ? RTE_ALIGN_CEIL(c->size, OX_WG_PAD) : c->size;
}

/* ----------------------------------------------------------- handshake */

/* The next datagram on fd before deadline (ns): its length, or -1. */
static ssize_t
recv_until(int fd, uint8_t *buf, size_t cap, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t now = ox_mono_ns();

	if (now >= deadline)
		return -1;
	if (poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
		return -1;
	return recv(fd, buf, cap, MSG_DONTWAIT);
}

static void
hs_pace(struct relay_run *r)
{
	uint64_t now = ox_mono_ns();
	struct timespec ts;

	if (r->inits_sent >= HS_BURST && now < r->last_init_ns + HS_GAP_NS) {
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(r->last_init_ns + HS_GAP_NS - now);
		nanosleep(&ts, NULL);
	}
	r->inits_sent++;
	r->last_init_ns = ox_mono_ns();
}

/* KEEPALIVE -> ACK: the relay has the client's keys confirmed and its address. */
static int
client_keepalive(struct relay_run *r, struct rclient *cl, int fd)
{
	uint8_t buf[256], probe[10];
	uint64_t deadline;
	struct ox_msg m;
	ssize_t len;
	int tries, n;

	memcpy(probe, "oxperf", 6);
	memcpy(probe + 6, &cl->kp.local_index, 4);
	for (tries = 0; tries < HS_TRIES && !perf_stop; tries++) {
		buf[OX_DATA_HDR_LEN] = OX_INNER_KEEPALIVE;
		memcpy(buf + OX_DATA_HDR_LEN + 1, probe, sizeof(probe));
		n = ox_data_seal(r->aead, &cl->kp, buf, 1 + sizeof(probe), ox_mono_ns());
		if (n < 0)
			return -EIO;
		if (send(fd, buf, (size_t)n, 0) != n)
			return -errno;
		deadline = ox_mono_ns() + HS_WAIT_NS;
		while (ox_mono_ns() < deadline) {
			len = recv_until(fd, buf, sizeof(buf), deadline);
			if (len < 0 || ox_msg_parse(buf, (size_t)len, &m) != OX_MSG_DATA ||
			    m.index != cl->kp.local_index)
				continue;
			n = ox_data_open(r->aead, &cl->kp, buf, (size_t)len, ox_mono_ns());
			if (n == 1 + (int)sizeof(probe) && buf[OX_DATA_HDR_LEN] == OX_INNER_ACK &&
			    memcmp(buf + OX_DATA_HDR_LEN + 1, probe, sizeof(probe)) == 0)
				return 0;
		}
	}
	return -ETIMEDOUT;
}

/* WireGuard's keepalive, an empty DATA: the relay confirms the keys. */
static int
client_wg_keepalive(struct relay_run *r, struct rclient *cl, int fd)
{
	uint8_t buf[OX_DATA_OVERHEAD + OX_WG_PAD];
	int n = ox_data_seal(r->aead, &cl->kp, buf, 0, ox_mono_ns());

	if (n < 0)
		return -EIO;
	return send(fd, buf, (size_t)n, 0) == n ? 0 : -errno;
}

/* Handshake of client i from its own source port, then its keepalive. */
static int
client_connect(struct relay_run *r, uint32_t i, const uint8_t priv[OX_KEY_LEN])
{
	struct rclient *cl = &r->cl[i];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct ox_initiator in;
	struct ox_hs_payload pl;
	uint8_t buf[2048], tai[12];
	uint64_t deadline;
	ssize_t len;
	int fd, tries, ret;

	cl->sport = (uint16_t)(SPORT_BASE + i);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sa.sin_addr = r->c->src;
	sa.sin_port = htons(cl->sport);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		ret = -errno;
		goto out;
	}
	sa.sin_addr = r->c->dst;
	sa.sin_port = htons(r->c->port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		ret = -errno;
		goto out;
	}
	if (ox_initiator_init_wire(&in, r->c->wire, priv, r->server_pub, NULL) != 0) {
		ret = -EINVAL;
		goto out;
	}
	ret = -ETIMEDOUT;
	for (tries = 0; tries < HS_TRIES && !perf_stop; tries++) {
		/* Low 16 bits: the client, so a reply finds it in O(1). */
		uint32_t index = (randombytes_random() & 0xffff0000u) | i;

		hs_pace(r);
		ox_tai64n_now(tai);
		if (ox_initiator_begin(&in, index, tai, ox_mono_ns(), buf) != 0) {
			ret = -EIO;
			goto out_wipe;
		}
		if (send(fd, buf, OX_INIT_LEN, 0) != OX_INIT_LEN) {
			ret = -errno;
			goto out_wipe;
		}
		deadline = ox_mono_ns() + HS_WAIT_NS;
		while (ox_mono_ns() < deadline) {
			len = recv_until(fd, buf, sizeof(buf), deadline);
			if (len > 0 &&
			    ox_initiator_consume_response(&in, buf, (size_t)len, ox_mono_ns(), &pl,
							  &cl->kp) == 0) {
				if (r->c->wire == OX_WIRE_WIREGUARD) {
					ret = client_wg_keepalive(r, cl, fd);
					goto out_wipe;
				}
				cl->v4 = htonl(pl.v4);
				ret = client_keepalive(r, cl, fd);
				goto out_wipe;
			}
		}
	}
out_wipe:
	ox_initiator_wipe(&in);
out:
	close(fd);
	return ret;
}

/* A WireGuard client's tunnel address: its fixed one on DIR/allow. */
static int
allowed_v4(const struct ox_allowlist *al, const uint8_t priv[OX_KEY_LEN], uint32_t i, uint32_t *v4)
{
	uint8_t pub[OX_KEY_LEN];
	const struct ox_allow_entry *e;

	crypto_scalarmult_base(pub, priv);
	e = ox_allowlist_find(al, pub);
	if (e == NULL || e->v4 == 0) {
		fprintf(stderr,
			"oxidize-perf: client %u: no fixed IPv4 address on the allow-list\n", i);
		return -ENOENT;
	}
	*v4 = htonl(e->v4);
	return 0;
}

static int
connect_all(struct relay_run *r)
{
	const struct perf_conf *c = r->c;
	struct ox_allowlist al = { 0 };
	uint8_t priv[OX_KEY_LEN];
	char path[PATH_MAX], err[256];
	uint32_t i;
	int ret;

	ret = perf_read_server_pub(c->relay_dir, r->server_pub);
	if (ret != 0)
		return ret;
	if (c->wire == OX_WIRE_WIREGUARD) {
		snprintf(path, sizeof(path), "%s/allow", c->relay_dir);
		ret = ox_allowlist_load(&al, path, NULL, PERF_MAX_FLOWS + 1, err, sizeof(err));
		if (ret != 0) {
			fprintf(stderr, "oxidize-perf: %s: %s\n", path, err);
			return ret;
		}
	}
	for (i = 0; i < c->flows; i++) {
		snprintf(path, sizeof(path), "%s/client%u.key", c->relay_dir, i);
		ret = ox_key_load(path, priv, err, sizeof(err));
		if (ret != 0) {
			fprintf(stderr, "oxidize-perf: %s\n", err);
			break;
		}
		if (c->wire == OX_WIRE_WIREGUARD)
			ret = allowed_v4(&al, priv, i, &r->cl[i].v4);
		if (ret == 0)
			ret = client_connect(r, i, priv);
		sodium_memzero(priv, sizeof(priv));
		if (ret != 0) {
			fprintf(stderr, "oxidize-perf: client %u: no session with the relay: %s\n",
				i, strerror(-ret));
			break;
		}
		if (r->cl[i].v4 == 0) {
			fprintf(stderr, "oxidize-perf: client %u: the relay gave no IPv4 address\n",
				i);
			ret = -EPROTO;
			break;
		}
	}
	ox_allowlist_free(&al);
	return ret;
}

/* ------------------------------------------------------------- prepare */

/* Build and seal packet j (client j % N) at its place in the arena. */
static int
build_frame(struct relay_run *r, uint64_t j, uint64_t now_ns)
{
	const struct perf_conf *c = r->c;
	uint32_t n = c->flows, i = (uint32_t)(j % n);
	struct rclient *cl = &r->cl[i];
	uint8_t *f = r->arena + j * r->stride;
	uint8_t *dg = f + FRAME_HDRS;
	uint8_t *pl = dg + OX_DATA_HDR_LEN + INNER_HDRS;
	uint16_t plen = (uint16_t)(c->size - INNER_HDRS), k;
	struct ox_pkt_flow in = { .ipv6 = false }, out;
	uint32_t dst = c->exit_ip.s_addr ? c->exit_ip.s_addr : r->cl[(i + 1) % n].v4;
	int ret;

	memcpy(pl, INNER_MAGIC, 4);
	memcpy(pl + 4, &j, sizeof(j));
	for (k = INNER_MARK; k < plen; k++)
		pl[k] = (uint8_t)k;
	memcpy(in.src_ip, &cl->v4, 4);
	memcpy(in.dst_ip, &dst, 4);
	in.src_port = rte_cpu_to_be_16((uint16_t)(INNER_SPORT + i));
	in.dst_port = rte_cpu_to_be_16(c->exit_ip.s_addr ? INNER_DPORT_EXIT : INNER_DPORT_C2C);
	ox_pkt_build_ip(dg + OX_DATA_HDR_LEN, &in, plen, OX_PKT_CSUM_FULL);

	ret = ox_data_seal(r->aead, &cl->kp, dg, c->size, now_ns);
	if (ret < 0) {
		fprintf(stderr, "oxidize-perf: sealing packet %" PRIu64 " failed: %s\n", j,
			ox_drop_name(-ret));
		return -EIO;
	}
	perf_flow(c, cl->sport, &out);
	ox_pkt_build(f, &out, (uint16_t)ret, OX_PKT_CSUM_FULL);
	return 0;
}

static int
prepare(struct relay_run *r)
{
	const struct perf_conf *c = r->c;
	uint64_t want = c->packets, j, now = ox_mono_ns();
	int ret;

	r->frame_len = (uint16_t)(FRAME_HDRS + OX_DATA_OVERHEAD + plain_len(c));
	r->stride = RTE_ALIGN_CEIL(r->frame_len, RTE_CACHE_LINE_SIZE);
	if (want == 0)
		want = (uint64_t)((c->rate ? (double)c->rate : DEFAULT_PPS) * c->duration * 1.05) +
		       PERF_BURST * 4;
	want = RTE_MIN(want, ARENA_MAX / r->stride);
	/* Every client the same number of packets. */
	want = RTE_MAX(want - want % c->flows, (uint64_t)c->flows);
	r->arena_len = want * r->stride;
	r->arena = perf_arena(r->arena_len);
	if (r->arena == NULL) {
		r->arena_len = 0;
		return -ENOMEM;
	}
	r->send_tsc = calloc(want, sizeof(*r->send_tsc));
	if (r->send_tsc == NULL)
		return -ENOMEM;
	for (j = 0; j < want && !perf_stop; j++) {
		ret = build_frame(r, j, now);
		if (ret != 0)
			return ret;
	}
	r->n_pkts = want;
	return perf_stop ? -EINTR : 0;
}

/* ------------------------------------------------------------- receive */

/* Open one of client i's packets; check and time what it carries. */
static void
verify(struct relay_run *r, uint32_t i, uint8_t *d, uint16_t len, uint64_t now_ns)
{
	const struct perf_conf *c = r->c;
	uint32_t n = c->flows, from = (i + n - 1) % n;
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(d + OX_DATA_HDR_LEN);
	const uint8_t *pl = d + OX_DATA_HDR_LEN + INNER_HDRS;
	uint64_t j, tsc;
	int ret;

	ret = ox_data_open(r->aead, &r->cl[i].kp, d, len, now_ns);
	if (ret == -OX_DROP_REPLAY || ret == -OX_DROP_TOO_OLD) {
		r->replayed++;
		return;
	}
	if (ret < 0) {
		r->bad_auth++;
		return;
	}
	if (ret != plain_len(c) || ip->version_ihl != RTE_IPV4_VHL_DEF ||
	    ip->next_proto_id != IPPROTO_UDP || ip->src_addr != r->cl[from].v4 ||
	    ip->dst_addr != r->cl[i].v4 || memcmp(pl, INNER_MAGIC, 4) != 0) {
		r->bad_inner++;
		return;
	}
	memcpy(&j, pl + 4, sizeof(j));
	if (j >= r->n_pkts || j % n != from || (tsc = r->send_tsc[j]) == 0) {
		r->bad_inner++;
		return;
	}
	perf_hist_add((rte_rdtsc() - tsc) / r->us_cycles);
	r->verified++;
}

static void
relay_receive(struct relay_run *r, struct rte_mbuf *m, uint64_t now_ns)
{
	const struct perf_conf *c = r->c;
	struct ox_msg msg;
	struct ox_pkt p;
	uint32_t i;
	uint8_t *d;

	if (ox_pkt_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, 0, &p) < 0)
		goto foreign;
	d = p.frame + p.payload_off;
	if ((c->wire == OX_WIRE_WIREGUARD ? ox_wg_msg_parse(d, p.payload_len, &msg)
					  : ox_msg_parse(d, p.payload_len, &msg)) != OX_MSG_DATA)
		goto foreign;
	i = msg.index & 0xffff;
	if (i >= c->flows || r->cl[i].kp.local_index != msg.index)
		goto foreign;
	if (p.payload_len == OX_DATA_OVERHEAD) {
		r->keepalives++;
		return;
	}
	r->cl[i].rx++;
	r->received++;
	if (msg.counter % c->verify_every == 0)
		verify(r, i, d, p.payload_len, now_ns);
	return;
foreign:
	r->foreign++;
}

/* ----------------------------------------------------------------- run */

static void
report(const struct relay_run *r, uint64_t sent, uint64_t not_sent, double secs, bool exhausted,
       double hs_s, double seal_s)
{
	const struct perf_conf *c = r->c;
	bool exit_mode = c->exit_ip.s_addr != 0;
	double loss = sent ? (double)(sent - RTE_MIN(r->received, sent)) / sent : 0;
	char lost[32], lossbuf[32];

	if (exit_mode) {
		snprintf(lost, sizeof(lost), "null");
		snprintf(lossbuf, sizeof(lossbuf), "null");
	} else {
		snprintf(lost, sizeof(lost), "%" PRIu64, sent - RTE_MIN(r->received, sent));
		snprintf(lossbuf, sizeof(lossbuf), "%.6f", loss);
	}
	if (!c->json) {
		printf("relay %s %s, %u clients, inner %u B: sent %" PRIu64 " (%.0f pps), "
		       "received %" PRIu64 " (%.0f pps), verified %" PRIu64 " (bad auth %" PRIu64
		       ", bad inner %" PRIu64 "), RTT p50 %.1f us p99 %.1f us p99.9 %.1f us\n",
		       c->wire == OX_WIRE_WIREGUARD ? "WireGuard" : "OxTunnel",
		       exit_mode ? "exit" : "client to client", c->flows, c->size, sent,
		       sent / secs, r->received, r->received / secs, r->verified, r->bad_auth,
		       r->bad_inner, perf_percentile(r->verified, 50),
		       perf_percentile(r->verified, 99), perf_percentile(r->verified, 99.9));
		return;
	}
	printf("{\"mode\": \"relay\", \"wire\": \"%s\", \"inner\": \"%s\", \"sent\": %" PRIu64
	       ", \"received\": %" PRIu64 ", \"lost\": %s, \"loss\": %s, \"tx_pps\": %.0f"
	       ", \"rx_pps\": %.0f, \"seconds\": %.3f, \"not_sent\": %" PRIu64
	       ", \"foreign\": %" PRIu64 ", \"keepalives\": %" PRIu64
	       ", \"rtt_p50_us\": %.1f, \"rtt_p99_us\": %.1f"
	       ", \"rtt_p999_us\": %.1f, \"rtt_max_us\": %" PRIu64
	       ", \"size\": %u, \"flows\": %u, \"clients\": %u"
	       ", \"rate\": %" PRIu64 ", \"verified\": %" PRIu64 ", \"verify_every\": %u"
	       ", \"bad_auth\": %" PRIu64 ", \"bad_inner\": %" PRIu64 ", \"replayed\": %" PRIu64
	       ", \"prepared\": %" PRIu64 ", \"exhausted\": %s, \"handshake_s\": %.3f"
	       ", \"seal_s\": %.3f, \"tsc_hz\": %" PRIu64 ", \"rx_inner_gbps\": %.3f"
	       ", \"fifo\": %s, \"cpu_s\": %.3f}\n",
	       c->wire == OX_WIRE_WIREGUARD ? "wireguard" : "oxtunnel",
	       exit_mode ? "exit" : "client-to-client", sent, r->received, lost, lossbuf,
	       sent / secs, r->received / secs, secs, not_sent, r->foreign, r->keepalives,
	       perf_percentile(r->verified, 50), perf_percentile(r->verified, 99),
	       perf_percentile(r->verified, 99.9), perf_max_us(), c->size, c->flows, c->flows,
	       c->rate, r->verified, c->verify_every, r->bad_auth, r->bad_inner, r->replayed,
	       r->n_pkts, exhausted ? "true" : "false", hs_s, seal_s, rte_get_tsc_hz(),
	       r->received * c->size * 8.0 / secs / 1e9, r->fifo ? "true" : "false", r->cpu_s);
}

/* Under --fifo, between paced sends: asleep until a socket has a frame or
 * the TSC reaches until, so an answer is read (and timed) as it lands,
 * not a poll loop's turn later, and the cpu is the relay's meanwhile. */
static void
wait_rx(const struct ox_flash *f, uint64_t now, uint64_t until, uint64_t hz)
{
	struct pollfd pfd[RTE_MAX_ETHPORTS];
	struct timespec ts;
	uint64_t ns;
	nfds_t k = 0;
	uint16_t j;

	if (until <= now)
		return;
	ns = (until - now) * 1000000000u / hz;
	for (j = 0; j < f->n_ports; j++)
		if (f->ports[j].xsk_fd >= 0)
			pfd[k++] = (struct pollfd){ .fd = f->ports[j].xsk_fd, .events = POLLIN };
	ts.tv_sec = (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	if (k == 0)
		nanosleep(&ts, NULL);
	else
		ppoll(pfd, k, &ts, NULL);
}

/* The timed run: prepared frames out, the relay's packets in. */
static void
blast(struct relay_run *r, struct ox_flash *f, double hs_s, double seal_s)
{
	const struct perf_conf *c = r->c;
	struct rte_mbuf *pkts[PERF_BURST];
	uint64_t hz = rte_get_tsc_hz(), start, end, next_tx, gap, seq = 0, not_sent = 0;
	uint64_t last_tx, t_end, now_ns;
	uint16_t i, j, n, sent, bsz, want, got;
	double cpu0 = perf_thread_cpu_s();

	r->fifo = c->fifo && c->rate != 0 && perf_fifo_set(SCHED_FIFO) == 0;
	r->us_cycles = hz / 1000000;
	perf_pacing(c, f->n_ports, hz, &bsz, &gap);
	start = rte_rdtsc();
	end = start + (uint64_t)(c->duration * hz);
	next_tx = start;
	last_tx = start;
	for (;;) {
		uint64_t now = rte_rdtsc();

		/* A signal ends the sending; what is in flight still counts. */
		if (perf_stop && now < end)
			end = now;
		if (now < end && seq < r->n_pkts && (c->rate == 0 || now >= next_tx)) {
			for (j = 0; j < f->n_ports && seq < r->n_pkts; j++) {
				want = (uint16_t)RTE_MIN((uint64_t)bsz, r->n_pkts - seq);
				if (rte_pktmbuf_alloc_bulk(f->pool, pkts, want) != 0) {
					not_sent += want;
					break;
				}
				for (i = 0; i < want; i++) {
					memcpy(rte_pktmbuf_mtod(pkts[i], void *),
					       r->arena + (seq + i) * r->stride, r->frame_len);
					pkts[i]->data_len = r->frame_len;
					pkts[i]->pkt_len = r->frame_len;
					r->send_tsc[seq + i] = now;
				}
				sent = rte_eth_tx_burst(f->ports[j].port_id, 0, pkts, want);
				if (sent < want) {
					/* Not offered: these frames go out on a later turn. */
					not_sent += want - sent;
					rte_pktmbuf_free_bulk(pkts + sent, want - sent);
				}
				seq += sent;
			}
			last_tx = now;
			next_tx += gap;
		}
		for (j = 0, got = 0; j < f->n_ports; j++) {
			n = rte_eth_rx_burst(f->ports[j].port_id, 0, pkts, PERF_BURST);
			if (n == 0)
				continue;
			now_ns = ox_mono_ns();
			for (i = 0; i < n; i++)
				relay_receive(r, pkts[i], now_ns);
			rte_pktmbuf_free_bulk(pkts, n);
			got += n;
		}
		/* After the last packet, 200 ms for stragglers. */
		if ((now >= end || seq == r->n_pkts) && now >= last_tx + hz / 5)
			break;
		if (r->fifo && got == 0)
			wait_rx(f, now, now < end && seq < r->n_pkts ? next_tx : last_tx + hz / 5,
				hz);
	}
	if (r->fifo)
		perf_fifo_set(SCHED_OTHER);
	r->cpu_s = perf_thread_cpu_s() - cpu0;
	t_end = seq == r->n_pkts ? last_tx : RTE_MIN(rte_rdtsc(), end);
	report(r, seq, not_sent, (double)(RTE_MAX(t_end, start + 1) - start) / hz,
	       seq == r->n_pkts && last_tx < end, hs_s, seal_s);
}

int
perf_relay_run(struct perf_conf *c)
{
	static struct ox_flash f;
	struct relay_run r = { .c = c };
	uint64_t t0, t1, t2;
	int ret;

	if (sodium_init() < 0)
		return -EIO;
	r.cl = calloc(c->flows, sizeof(*r.cl));
	r.aead = ox_aead_create(OX_AEAD_AUTO);
	if (r.cl == NULL || r.aead == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	t0 = ox_mono_ns();
	ret = connect_all(&r);
	if (ret != 0)
		goto out;
	t1 = ox_mono_ns();
	ret = prepare(&r);
	if (ret != 0)
		goto out;
	t2 = ox_mono_ns();
	ret = perf_flash_up(&f, c);
	if (ret != 0)
		goto out;
	blast(&r, &f, (t1 - t0) / PERF_NS_PER_S, (t2 - t1) / PERF_NS_PER_S);
	ox_flash_destroy(&f);
out:
	if (r.arena != NULL)
		munmap(r.arena, r.arena_len);
	free(r.send_tsc);
	if (r.cl != NULL) {
		sodium_memzero(r.cl, c->flows * sizeof(*r.cl));
		free(r.cl);
	}
	ox_aead_free(r.aead);
	return ret;
}
