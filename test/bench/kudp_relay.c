/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kudp-relay: the OxTunnel v2 relay on a kernel UDP socket, for the tests
 * and benchmarks that need a relay without DPDK: the "standard UDP"
 * baseline of the benchmarks, and the relay oxidize-client's tests talk to.
 * One thread, recvmmsg/sendmmsg in bursts of 32, lib/oxtunnel for every
 * protocol step:
 *
 *  - OXPI probes are answered as OXPO from the same buffer;
 *  - with --key and --allow (the files oxidize-server takes): handshakes
 *    through ox_hs_* (the same allow-list, mac1 and per-source limits), one
 *    session per allowed key, DATA opened in place (replay window, next
 *    keypair promoted, roaming after authentication), KEEPALIVE answered
 *    with an ACK, DISCONNECT honoured, BATCH plaintexts taken apart;
 *  - an inner packet for another client's tunnel address (IPv4 or IPv6) is
 *    re-sealed for that client and sent to it, in the same buffer when it
 *    came alone; an ICMP echo request to the relay's own tunnel addresses
 *    (100.64.0.1, fd6f:7869:647a::1) is answered, so ping works through a
 *    tunnel. It has no exit: any other inner packet is counted (no_exit)
 *    and dropped, as are spoofed inner sources (spoofed_src);
 *  - with --gso, the datagrams of one burst that go to one client with one
 *    size leave as one UDP GSO send, so a client's GRO path is exercised.
 *
 *   kudp-relay [--port P] [--duration S] [--key FILE --allow FILE]
 *              [--keepalive S] [--gso] [--verbose]
 *
 * Tunnel addresses: 100.64.0.0/10 and fd6f:7869:647a::/64, the relay being
 * .1 and ::1; an allow-list address is kept for its key, the others are
 * handed out from .2 and ::2 on, in allow-list order. It keeps nothing
 * across restarts, like a relay killed and started again.
 *
 * Prints "ready" when it listens, and one JSON line at exit: datagrams in
 * and out, dropped ("other"), CPU seconds used (user + system, from
 * getrusage), wall seconds, the relay's counters and its drops by reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ox_tunnel.h"

#define BURST 32
#define OUT_MAX (BURST * 2) /* datagrams one burst may send */
#define SCRATCH OUT_MAX	    /* buffers for what BATCH plaintexts carry */
#define MAX_SESSIONS 65536
#define SLOT_BITS 20 /* receiver index: generation << 20 | slot */
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MASK 0xfffu
#define POOL4 0x64400000u /* 100.64.0.0 */
#define POOL4_PREFIX 10
#define POOL6_PREFIX 64
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 65000
#define INNER_TTL 64 /* of an echo reply: a host answering, not a router */

/* fd6f:7869:647a::/64, the relay's own address being ::1 */
static const uint8_t pool6[16] = { 0xfd, 0x6f, 0x78, 0x69, 0x64, 0x7a };

/* Relay counters, in JSON order. */
#define KUDP_CTRS(X) \
	X(handshakes) \
	X(decrypted) \
	X(client_to_client) \
	X(echo_replies) \
	X(keepalive) \
	X(key_confirm) \
	X(disconnect) \
	X(roamed) \
	X(no_exit) \
	X(spoofed_src) \
	X(inner_malformed) \
	X(no_keys) \
	X(out_full) \
	X(send_failed) \
	X(gso_sends)

struct kudp_ctrs {
#define KUDP_FIELD(n) uint64_t n;
	KUDP_CTRS(KUDP_FIELD)
#undef KUDP_FIELD
};

/* One allowed key's session: slot = its place in the allow-list. */
struct ksess {
	struct ox_peer peer;
	struct sockaddr_in6 ep; /* the client, per its last authenticated datagram */
	uint8_t v4[16];		/* tunnel IPv4 as ::ffff:a.b.c.d, the address table's form */
	uint8_t v6[16];		/* tunnel IPv6 */
	uint16_t gen;		/* handshakes: high bits of its receiver indexes */
	bool live;
};

/* A datagram to send once the burst is processed. */
struct kout {
	uint8_t *buf;
	size_t len;
	struct sockaddr_in6 to;
};

struct kudp {
	int fd;
	bool gso, verbose;
	uint16_t keepalive_s;
	struct ox_hs_server *hs;
	struct ox_allowlist allow;
	struct ox_aead *aead;
	struct ksess *sess; /* allow.n of them */
	uint32_t *by_addr;  /* open addressing: tunnel address -> slot + 1 */
	uint32_t addr_mask;
	struct kout out[OUT_MAX];
	unsigned int n_out, n_scratch;
	uint8_t (*scratch)[OX_MAX_DATAGRAM];
	struct kudp_ctrs ctr;
	uint64_t drops[OX_DROP_MAX];
	unsigned long rx, tx, other;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* ------------------------------------------------------------ addresses */

static void
v4_mapped(uint8_t out[16], uint32_t v4)
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	out[12] = (uint8_t)(v4 >> 24);
	out[13] = (uint8_t)(v4 >> 16);
	out[14] = (uint8_t)(v4 >> 8);
	out[15] = (uint8_t)v4;
}

static uint32_t
addr_hash(const uint8_t a[16])
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ a[i]) * 16777619u;
	return h;
}

static struct ksess *
by_addr(struct kudp *k, const uint8_t a[16])
{
	uint32_t h, s;

	for (h = addr_hash(a);; h++) {
		s = k->by_addr[h & k->addr_mask];
		if (s == 0)
			return NULL;
		if (memcmp(k->sess[s - 1].v4, a, 16) == 0 || memcmp(k->sess[s - 1].v6, a, 16) == 0)
			return &k->sess[s - 1];
	}
}

static void
addr_insert(struct kudp *k, const uint8_t a[16], uint32_t slot)
{
	uint32_t h = addr_hash(a);

	while (k->by_addr[h & k->addr_mask] != 0)
		h++;
	k->by_addr[h & k->addr_mask] = slot + 1;
}

/* A fixed address of allow-list entry i: in the pool and not taken. */
static int
fixed_addr(struct kudp *k, uint32_t i, const uint8_t a[16], bool in_pool)
{
	if (!in_pool || by_addr(k, a) != NULL) {
		fprintf(stderr,
			"kudp-relay: allow-list line %u: address outside the pool or taken\n",
			k->allow.e[i].line);
		return -EINVAL;
	}
	addr_insert(k, a, i);
	return 0;
}

/* Every key's tunnel addresses, fixed ones first so the others avoid them. */
static int
sessions_init(struct kudp *k)
{
	uint32_t i, size = 2, next4 = POOL4 + 2, next6 = 2;
	const struct ox_allow_entry *e;
	struct ksess *s;
	int ret;

	while (size < 4 * k->allow.n)
		size <<= 1;
	k->sess = calloc(k->allow.n ? k->allow.n : 1, sizeof(*k->sess));
	k->by_addr = calloc(size, sizeof(*k->by_addr));
	if (k->sess == NULL || k->by_addr == NULL)
		return -ENOMEM;
	k->addr_mask = size - 1;
	for (i = 0; i < k->allow.n; i++) {
		e = &k->allow.e[i];
		s = &k->sess[i];
		if (e->v4 != 0) {
			v4_mapped(s->v4, e->v4);
			ret = fixed_addr(k, i, s->v4,
					 (e->v4 & ~0u << (32 - POOL4_PREFIX)) == POOL4);
			if (ret < 0)
				return ret;
		}
		if (!sodium_is_zero(e->v6, 16)) {
			memcpy(s->v6, e->v6, 16);
			ret = fixed_addr(k, i, s->v6, memcmp(e->v6, pool6, 8) == 0);
			if (ret < 0)
				return ret;
		}
	}
	for (i = 0; i < k->allow.n; i++) {
		e = &k->allow.e[i];
		s = &k->sess[i];
		if (e->v4 == 0) {
			do
				v4_mapped(s->v4, next4++);
			while (by_addr(k, s->v4) != NULL);
			addr_insert(k, s->v4, i);
		}
		if (sodium_is_zero(e->v6, 16)) {
			do {
				memcpy(s->v6, pool6, 16);
				s->v6[12] = (uint8_t)(next6 >> 24);
				s->v6[13] = (uint8_t)(next6 >> 16);
				s->v6[14] = (uint8_t)(next6 >> 8);
				s->v6[15] = (uint8_t)next6++;
			} while (by_addr(k, s->v6) != NULL);
			addr_insert(k, s->v6, i);
		}
	}
	return 0;
}

static uint32_t
sess_v4(const struct ksess *s)
{
	return (uint32_t)s->v4[12] << 24 | (uint32_t)s->v4[13] << 16 | (uint32_t)s->v4[14] << 8 |
	       s->v4[15];
}

/* ----------------------------------------------------------- counting */

static void
drop(struct kudp *k, int reason)
{
	reason = reason < 0 ? -reason : reason;
	if (reason > 0 && reason < OX_DROP_MAX)
		k->drops[reason]++;
	k->other++;
}

static void
count_drop(struct kudp *k, uint64_t *ctr)
{
	(*ctr)++;
	k->other++;
}

/* ------------------------------------------------------------- sending */

static void
emit(struct kudp *k, uint8_t *buf, size_t len, const struct sockaddr_in6 *to)
{
	struct kout *o;

	if (k->n_out == OUT_MAX) {
		count_drop(k, &k->ctr.out_full);
		return;
	}
	o = &k->out[k->n_out++];
	o->buf = buf;
	o->len = len;
	o->to = *to;
}

/* Seal the plaintext at buf + OX_DATA_HDR_LEN in place for session s. */
static void
seal_to(struct kudp *k, struct ksess *s, uint8_t *buf, size_t plain, uint64_t now)
{
	struct ox_keypair *kp = ox_peer_current(&s->peer);
	int ret;

	if (kp == NULL) {
		count_drop(k, &k->ctr.no_keys);
		return;
	}
	ret = ox_data_seal(k->aead, kp, buf, plain, now);
	if (ret < 0) {
		drop(k, ret);
		return;
	}
	emit(k, buf, (size_t)ret, &s->ep);
}

/* One sendmmsg entry for out[i], with the run after it when GSO takes it. */
static unsigned int
gso_run(struct kudp *k, unsigned int i, struct mmsghdr *mh, struct iovec *iov, void *ctl)
{
	struct kout *o = &k->out[i];
	unsigned int n = 1;
	size_t bytes = o->len;
	struct cmsghdr *c;
	uint16_t seg;

	iov[0].iov_base = o->buf;
	iov[0].iov_len = o->len;
	while (k->gso && i + n < k->n_out && n < GSO_MAX_SEGS && k->out[i + n].len == o->len &&
	       bytes + o->len <= GSO_MAX_BYTES &&
	       memcmp(&k->out[i + n].to, &o->to, sizeof(o->to)) == 0) {
		iov[n].iov_base = k->out[i + n].buf;
		iov[n].iov_len = o->len;
		bytes += o->len;
		n++;
	}
	memset(mh, 0, sizeof(*mh));
	mh->msg_hdr.msg_name = &o->to;
	mh->msg_hdr.msg_namelen = sizeof(o->to);
	mh->msg_hdr.msg_iov = iov;
	mh->msg_hdr.msg_iovlen = n;
	if (n > 1) {
		seg = (uint16_t)o->len;
		mh->msg_hdr.msg_control = ctl;
		mh->msg_hdr.msg_controllen = CMSG_SPACE(sizeof(seg));
		c = CMSG_FIRSTHDR(&mh->msg_hdr);
		c->cmsg_level = IPPROTO_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		k->ctr.gso_sends++;
	}
	return n;
}

/* Send what the burst produced: one sendmmsg, GSO runs as one entry each. */
static void
flush(struct kudp *k)
{
	static struct iovec iov[OUT_MAX];
	static struct mmsghdr mh[OUT_MAX];
	static union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(uint16_t))];
	} ctl[OUT_MAX];
	unsigned int segs[OUT_MAX];
	unsigned int i, m = 0;
	int s;

	for (i = 0; i < k->n_out; i += segs[m++])
		segs[m] = gso_run(k, i, &mh[m], &iov[i], &ctl[m]);
	for (i = 0; i < m;) {
		s = sendmmsg(k->fd, mh + i, m - i, 0);
		/* A datagram the kernel refuses is skipped, not the burst. */
		if (s <= 0) {
			k->ctr.send_failed += segs[i];
			i++;
			continue;
		}
		while (s-- > 0)
			k->tx += segs[i++];
	}
	k->n_out = 0;
	k->n_scratch = 0;
}

/* ------------------------------------------------------------ inner IP */

static uint32_t
csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static void
put_csum(uint8_t *p, uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	p[0] = (uint8_t)(sum >> 8);
	p[1] = (uint8_t)sum;
}

static void
swap(uint8_t *a, uint8_t *b, size_t len)
{
	uint8_t t[16];

	memcpy(t, a, len);
	memcpy(a, b, len);
	memcpy(b, t, len);
}

/* An ICMP echo request to the relay's IPv4 address becomes the reply. */
static bool
echo4(uint8_t *ip, size_t ihl, size_t tot)
{
	uint8_t *icmp = ip + ihl;

	if (ip[9] != IPPROTO_ICMP || tot < ihl + 8 || icmp[0] != 8 || icmp[1] != 0)
		return false;
	swap(ip + 12, ip + 16, 4);
	ip[8] = INNER_TTL;
	icmp[0] = 0;
	icmp[2] = icmp[3] = 0;
	put_csum(icmp + 2, csum_add(0, icmp, tot - ihl));
	ip[10] = ip[11] = 0;
	put_csum(ip + 10, csum_add(0, ip, ihl));
	return true;
}

/* An ICMPv6 echo request to the relay's IPv6 address becomes the reply. */
static bool
echo6(uint8_t *ip, size_t tot)
{
	uint8_t *icmp = ip + 40;

	if (ip[6] != IPPROTO_ICMPV6 || tot < 48 || icmp[0] != 128 || icmp[1] != 0)
		return false;
	swap(ip + 8, ip + 24, 16);
	ip[7] = INNER_TTL;
	icmp[0] = 129;
	icmp[2] = icmp[3] = 0;
	/* Pseudo-header: addresses, upper-layer length, next header. */
	put_csum(icmp + 2, csum_add(csum_add(0, ip + 8, 32) + (uint32_t)(tot - 40) + IPPROTO_ICMPV6,
				    icmp, tot - 40));
	return true;
}

/*
 * One inner IP packet of len bytes at buf + OX_DATA_HDR_LEN from session s:
 * sealed in place for another client, answered if it pings the relay, else
 * dropped with its reason.
 */
static void
inner_ip(struct kudp *k, struct ksess *s, uint8_t *buf, size_t len, uint64_t now)
{
	uint8_t *ip = buf + OX_DATA_HDR_LEN, dst[16];
	struct ksess *to;
	size_t ihl, tot;
	bool v6 = (ip[0] >> 4) == 6;

	if (!v6 && (ip[0] >> 4) != 4) {
		drop(k, -OX_DROP_BAD_INNER);
		return;
	}
	if (len < (v6 ? 40u : 20u)) {
		count_drop(k, &k->ctr.inner_malformed);
		return;
	}
	ihl = v6 ? 40 : (size_t)(ip[0] & 15) * 4;
	tot = v6 ? 40 + (size_t)(ip[4] << 8 | ip[5]) : (size_t)(ip[2] << 8 | ip[3]);
	if (ihl < 20 || tot < ihl || tot > len) {
		count_drop(k, &k->ctr.inner_malformed);
		return;
	}
	if (v6 ? memcmp(ip + 8, s->v6, 16) != 0 : memcmp(ip + 12, s->v4 + 12, 4) != 0) {
		count_drop(k, &k->ctr.spoofed_src);
		return;
	}
	if (v6) {
		memcpy(dst, ip + 24, 16);
	} else {
		memcpy(dst, s->v4, 12);
		memcpy(dst + 12, ip + 16, 4);
	}
	if (v6 ? (memcmp(dst, pool6, 15) == 0 && dst[15] == 1)
	       : (memcmp(dst + 12, "\x64\x40\x00\x01", 4) == 0)) {
		if (v6 ? echo6(ip, tot) : echo4(ip, ihl, tot)) {
			k->ctr.echo_replies++;
			seal_to(k, s, buf, tot, now);
		} else {
			count_drop(k, &k->ctr.no_exit);
		}
		return;
	}
	to = by_addr(k, dst);
	if (to == NULL || !to->live) {
		count_drop(k, &k->ctr.no_exit);
		return;
	}
	k->ctr.client_to_client++;
	seal_to(k, to, buf, tot, now);
}

/* The packets of a BATCH plaintext, each copied out to be sealed alone. */
static void
inner_batch(struct kudp *k, struct ksess *s, const uint8_t *pt, size_t n, uint64_t now)
{
	const uint8_t *pkt;
	size_t off = 0, plen;
	uint8_t *buf;
	int ret;

	while ((ret = ox_batch_next(pt, n, &off, &pkt, &plen)) == 1) {
		if (k->n_scratch == SCRATCH) {
			count_drop(k, &k->ctr.out_full);
			continue;
		}
		buf = k->scratch[k->n_scratch++];
		memcpy(buf + OX_DATA_HDR_LEN, pkt, plen);
		inner_ip(k, s, buf, plen, now);
	}
	if (ret < 0)
		drop(k, ret);
}

/* ----------------------------------------------------------- datagrams */

static void
handle_init(struct kudp *k, uint8_t *d, size_t len, const struct sockaddr_in6 *from, uint64_t now)
{
	uint8_t cookie[OX_COOKIE_LEN];
	struct ox_responder resp;
	struct ox_hs_payload pl;
	struct ox_keypair kp;
	struct ox_src src;
	struct ksess *s;
	uint32_t slot;
	int ret;

	memcpy(src.addr, &from->sin6_addr, 16);
	src.port = ntohs(from->sin6_port);
	ret = ox_hs_consume_init(k->hs, d, len, &src, now, false, &resp, cookie);
	if (ret < 0) {
		drop(k, ret);
		return;
	}
	slot = (uint32_t)(resp.peer - k->allow.e);
	s = &k->sess[slot];
	if (!s->live) {
		ox_peer_init(&s->peer);
		s->ep = *from;
		s->live = true;
	}
	s->gen = (uint16_t)((s->gen + 1) & GEN_MASK);
	memset(&pl, 0, sizeof(pl));
	pl.v4 = sess_v4(s);
	pl.v4_prefix = POOL4_PREFIX;
	memcpy(pl.v6, s->v6, 16);
	pl.v6_prefix = POOL6_PREFIX;
	pl.mtu = OX_DEFAULT_MTU;
	pl.keepalive_s = k->keepalive_s;
	/* The RESPONSE goes out of the INIT's buffer, now consumed. */
	if (ox_hs_make_response(k->hs, &resp, &pl, (uint32_t)s->gen << SLOT_BITS | slot, now, d,
				&kp) != 0) {
		drop(k, -OX_DROP_HS_DECRYPT);
		return;
	}
	/* Next until a DATA under it arrives. */
	ox_peer_install(&s->peer, &kp, false);
	ox_keypair_wipe(&kp);
	k->ctr.handshakes++;
	emit(k, d, OX_RESPONSE_LEN, from);
	if (k->verbose) {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &from->sin6_addr, a, sizeof(a));
		fprintf(stderr, "kudp-relay: handshake from %s port %u: allow-list line %u\n", a,
			src.port, k->allow.e[slot].line);
	}
}

static void
handle_data(struct kudp *k, uint32_t index, uint8_t *d, size_t len, const struct sockaddr_in6 *from,
	    uint64_t now)
{
	uint32_t slot = index & SLOT_MASK;
	uint8_t *in = d + OX_DATA_HDR_LEN;
	struct ksess *s;
	int n;

	if (slot >= k->allow.n || !k->sess[slot].live) {
		drop(k, -OX_DROP_UNKNOWN_INDEX);
		return;
	}
	s = &k->sess[slot];
	n = ox_peer_open(k->aead, &s->peer, d, len, now);
	if (n < 0) {
		drop(k, n);
		return;
	}
	k->ctr.decrypted++;
	/* Roaming: a new source is adopted only now that it authenticated. */
	if (memcmp(&s->ep, from, sizeof(*from)) != 0) {
		s->ep = *from;
		k->ctr.roamed++;
	}
	if (n == 0) {
		k->ctr.key_confirm++;
		return;
	}
	switch (in[0]) {
	case OX_INNER_KEEPALIVE:
		if (n > 1 + OX_KEEPALIVE_MAX_ECHO) {
			drop(k, -OX_DROP_BAD_INNER);
			return;
		}
		k->ctr.keepalive++;
		in[0] = OX_INNER_ACK;
		seal_to(k, s, d, (size_t)n, now);
		return;
	case OX_INNER_DISCONNECT:
		k->ctr.disconnect++;
		ox_peer_wipe(&s->peer);
		s->live = false;
		return;
	case OX_INNER_BATCH:
		inner_batch(k, s, in, (size_t)n, now);
		return;
	default:
		inner_ip(k, s, d, (size_t)n, now);
	}
}

/* One datagram in d from *from; what it calls for is queued for flush(). */
static void
relay_datagram(struct kudp *k, uint8_t *d, size_t len, const struct sockaddr_in6 *from,
	       uint64_t now)
{
	struct ox_msg m;
	int r;

	if (ox_probe_reply(d, len) > 0) {
		emit(k, d, len, from);
		return;
	}
	if (k->hs == NULL) {
		k->other++;
		return;
	}
	r = ox_msg_parse(d, len, &m);
	if (r < 0) {
		drop(k, r);
		return;
	}
	switch (r) {
	case OX_MSG_INIT:
		handle_init(k, d, len, from, now);
		return;
	case OX_MSG_DATA:
		handle_data(k, m.index, d, len, from, now);
		return;
	default:
		drop(k, -OX_DROP_UNEXPECTED);
	}
}

/* --------------------------------------------------------------- setup */

static int
relay_init(struct kudp *k, const char *key_file, const char *allow_file)
{
	uint8_t priv[OX_KEY_LEN];
	char err[512], pub64[OX_KEY_B64_LEN + 1];
	int ret;

	ret = ox_key_load(key_file, priv, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "kudp-relay: %s\n", err);
		return ret;
	}
	k->hs = ox_hs_create(priv, NULL);
	sodium_memzero(priv, sizeof(priv));
	if (k->hs == NULL) {
		fprintf(stderr, "kudp-relay: %s holds no usable X25519 key\n", key_file);
		return -EINVAL;
	}
	ret = ox_allowlist_load(&k->allow, allow_file, NULL, MAX_SESSIONS, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "kudp-relay: %s\n", err);
		return ret;
	}
	ox_hs_set_allowlist(k->hs, &k->allow);
	k->aead = ox_aead_create(OX_AEAD_AUTO);
	if (k->aead == NULL)
		return -ENOMEM;
	ret = sessions_init(k);
	if (ret != 0)
		return ret;
	ox_key_to_base64(pub64, ox_hs_public(k->hs));
	fprintf(stderr, "kudp-relay: public key %s, %u allowed key(s), keepalive %u s\n", pub64,
		k->allow.n, k->keepalive_s);
	return 0;
}

static void
relay_free(struct kudp *k)
{
	uint32_t i;

	if (k->sess != NULL)
		for (i = 0; i < k->allow.n; i++)
			ox_peer_wipe(&k->sess[i].peer);
	free(k->sess);
	free(k->by_addr);
	free(k->scratch);
	ox_aead_free(k->aead);
	ox_allowlist_free(&k->allow);
	ox_hs_free(k->hs);
}

static int
open_socket(uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int fd, one = 1, zero = 0, bufsz = 16 << 20;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Dual-stack: every source is a sockaddr_in6. */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static void
print_json(const struct kudp *k, double wall)
{
	struct rusage ru;
	int i, first = 1;

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"rx\": %lu, \"tx\": %lu, \"other\": %lu, \"cpu_s\": %.3f, \"wall_s\": %.3f",
	       k->rx, k->tx, k->other,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
		       ru.ru_stime.tv_usec / 1e6,
	       wall);
	if (k->hs != NULL) {
#define KUDP_PRINT(n) printf(", \"" #n "\": %" PRIu64, k->ctr.n);
		KUDP_CTRS(KUDP_PRINT)
#undef KUDP_PRINT
		printf(", \"drops\": {");
		for (i = 1; i < OX_DROP_MAX; i++) {
			if (k->drops[i] == 0)
				continue;
			printf("%s\"%s\": %" PRIu64, first ? "" : ", ", ox_drop_name(i),
			       k->drops[i]);
			first = 0;
		}
		printf("}");
	}
	printf("}\n");
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr, "usage: kudp-relay [--port P] [--duration S] [--key FILE --allow FILE]\n"
			"                  [--keepalive S] [--gso] [--verbose]\n");
}

static void
run(struct kudp *k, double duration)
{
	static uint8_t bufs[BURST][OX_MAX_DATAGRAM];
	struct sockaddr_in6 addrs[BURST];
	struct mmsghdr in[BURST];
	struct iovec iov[BURST];
	uint64_t t0 = ox_mono_ns(), end = t0 + (uint64_t)(duration * 1e9), now;
	int n, i;

	for (i = 0; i < BURST; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&in[i], 0, sizeof(in[i]));
		in[i].msg_hdr.msg_iov = &iov[i];
		in[i].msg_hdr.msg_iovlen = 1;
		in[i].msg_hdr.msg_name = &addrs[i];
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop && (now = ox_mono_ns()) < end) {
		struct pollfd pfd = { .fd = k->fd, .events = POLLIN };

		for (i = 0; i < BURST; i++)
			in[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		n = recvmmsg(k->fd, in, BURST, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			poll(&pfd, 1, 50);
			continue;
		}
		k->rx += (unsigned long)n;
		for (i = 0; i < n; i++) {
			if (in[i].msg_hdr.msg_namelen != sizeof(addrs[i])) {
				k->other++;
				continue;
			}
			relay_datagram(k, bufs[i], in[i].msg_len, &addrs[i], now);
		}
		flush(k);
	}
	print_json(k, (double)(ox_mono_ns() - t0) / 1e9);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "key", required_argument, NULL, 'k' },
		{ "allow", required_argument, NULL, 'a' },
		{ "keepalive", required_argument, NULL, 'K' },
		{ "gso", no_argument, NULL, 'g' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sig = { .sa_handler = on_signal };
	const char *key_file = NULL, *allow_file = NULL;
	unsigned long port = 51820, keepalive = 25;
	static struct kudp k = { .fd = -1 };
	double duration = 10;
	char *end;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end != '\0' || port == 0 || port > 65535)
				goto usage;
			break;
		case 'd':
			duration = strtod(optarg, &end);
			if (*end != '\0' || !(duration > 0))
				goto usage;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'a':
			allow_file = optarg;
			break;
		case 'K':
			keepalive = strtoul(optarg, &end, 10);
			if (*end != '\0' || keepalive == 0 || keepalive > 3600)
				goto usage;
			break;
		case 'g':
			k.gso = true;
			break;
		case 'v':
			k.verbose = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || (key_file == NULL) != (allow_file == NULL))
		goto usage;
	if (sodium_init() < 0)
		return 1;
	k.keepalive_s = (uint16_t)keepalive;
	k.scratch = calloc(SCRATCH, sizeof(*k.scratch));
	if (k.scratch == NULL)
		goto out;
	if (key_file != NULL && relay_init(&k, key_file, allow_file) != 0)
		goto out;
	k.fd = open_socket((uint16_t)port);
	if (k.fd < 0) {
		fprintf(stderr, "kudp-relay: port %lu: %s\n", port, strerror(-k.fd));
		goto out;
	}
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGTERM, &sig, NULL);
	run(&k, duration);
	rc = 0;
	close(k.fd);
out:
	relay_free(&k);
	return rc;
usage:
	usage();
	return 2;
}
