/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mini-relay: the smallest OxTunnel v2 responder, only for testing
 * oxidize-client without DPDK. One UDP socket, one thread, lib/oxtunnel:
 *
 *   - answers initiations from keys on the allow-list (one peer per key;
 *     peer n gets 100.64.0.2+n/10 and fd6f:7869:647a::2+n/64 unless the
 *     list fixes its addresses; mtu 1420);
 *   - opens DATA; ACKs KEEPALIVEs; forgets a peer on DISCONNECT;
 *   - answers ICMP echo requests to 100.64.0.1 and fd6f:7869:647a::1 with
 *     sealed echo replies, so ping works through the tunnel;
 *   - drops everything else, counted;
 *   - with --gso, sends the replies to one burst of requests as UDP GSO
 *     super-datagrams, so a client's GRO receive path gets exercised.
 *
 *   mini-relay --key FILE --allow FILE [--port P] [--keepalive S]
 *              [--duration S] [--gso] [--verbose]
 *
 * It keeps nothing across restarts, like a relay killed and started again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <sodium.h>

#include "ox_tunnel.h"

#define MAX_PEERS 64
#define NS_PER_S UINT64_C(1000000000)
#define TUN_MTU OX_DEFAULT_MTU
#define RX_BURST 64
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 60000

#define MR_COUNTERS(X) \
	X(HANDSHAKES, "handshakes") \
	X(CONFIRMED, "key_confirmations") \
	X(DATA, "data_opened") \
	X(KEEPALIVES, "keepalives_acked") \
	X(ECHO4, "echo_replies_v4") \
	X(ECHO6, "echo_replies_v6") \
	X(DISCONNECTS, "disconnects") \
	X(NOT_FOR_US, "not_for_us") \
	X(FULL, "peer_table_full") \
	X(SEND_FAILED, "send_failed") \
	X(GSO_SENDS, "gso_sends")

enum mr_counter {
/* clang-format off */
#define MR_ENUM(n, s) MR_##n,
	MR_COUNTERS(MR_ENUM)
#undef MR_ENUM
	MR_MAX
	/* clang-format on */
};

static const char *const mr_names[] = {
#define MR_NAME(n, s) s,
	MR_COUNTERS(MR_NAME)
#undef MR_NAME
};

struct mr_peer {
	bool used;
	uint8_t key[OX_KEY_LEN];
	struct ox_peer peer;
	struct sockaddr_in6 ep; /* where the last authenticated packet came from */
	uint32_t v4;		/* host order */
	uint8_t v6[16];
};

/* Sealed replies of one size to one peer, to go out as one GSO send. */
struct gso_batch {
	struct mr_peer *p;
	size_t seg, len;
	unsigned int n;
	uint8_t buf[GSO_MAX_BYTES];
};

struct mini_relay {
	int fd;
	bool verbose;
	bool gso;
	struct gso_batch batch;
	uint16_t keepalive_s;
	struct ox_hs_server *hs;
	struct ox_aead *aead;
	struct mr_peer peers[MAX_PEERS];
	uint64_t drops[OX_DROP_MAX];
	uint64_t ctr[MR_MAX];
	uint8_t rx[OX_MAX_DATAGRAM];
	uint8_t tx[OX_MAX_DATAGRAM];
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
drop(struct mini_relay *r, int reason)
{
	if (reason < 0 && -reason < OX_DROP_MAX)
		r->drops[-reason]++;
}

static uint16_t
csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

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
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
swap(uint8_t *a, uint8_t *b, size_t len)
{
	uint8_t t[16];

	memcpy(t, a, len);
	memcpy(a, b, len);
	memcpy(b, t, len);
}

static void
gso_flush(struct mini_relay *r)
{
	struct gso_batch *b = &r->batch;
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(uint16_t))];
	} ctl;
	struct iovec iov = { b->buf, b->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	uint16_t seg = (uint16_t)b->seg;

	if (b->n == 0)
		return;
	mh.msg_name = &b->p->ep;
	mh.msg_namelen = sizeof(b->p->ep);
	if (b->n > 1) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = IPPROTO_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		r->ctr[MR_GSO_SENDS]++;
	}
	if (sendmsg(r->fd, &mh, 0) != (ssize_t)b->len)
		r->ctr[MR_SEND_FAILED]++;
	b->n = 0;
	b->len = 0;
}

/* Seal tx's plaintext of @p len bytes back to the peer. */
static void
reply(struct mini_relay *r, struct mr_peer *p, size_t len, uint64_t now)
{
	struct ox_keypair *kp = ox_peer_current(&p->peer);
	int n;

	if (kp == NULL) {
		drop(r, -OX_DROP_UNKNOWN_INDEX);
		return;
	}
	n = ox_data_seal(r->aead, kp, r->tx, len, now);
	if (n < 0) {
		drop(r, n);
		return;
	}
	if (r->gso) {
		struct gso_batch *b = &r->batch;

		if (b->n && (b->p != p || b->seg != (size_t)n || b->n == GSO_MAX_SEGS ||
			     b->len + (size_t)n > sizeof(b->buf)))
			gso_flush(r);
		if (b->n == 0) {
			b->p = p;
			b->seg = (size_t)n;
		}
		memcpy(b->buf + b->len, r->tx, (size_t)n);
		b->len += (size_t)n;
		b->n++;
		return;
	}
	if (sendto(r->fd, r->tx, (size_t)n, 0, (struct sockaddr *)&p->ep, sizeof(p->ep)) != n)
		r->ctr[MR_SEND_FAILED]++;
}

/* One IP packet from the client: echo requests to the relay's tunnel
 * addresses are answered, the rest is dropped. */
static void
ip_in(struct mini_relay *r, struct mr_peer *p, const uint8_t *pkt, size_t len, uint64_t now)
{
	static const uint8_t v4_self[4] = { 100, 64, 0, 1 };
	static const uint8_t v6_self[16] = { 0xfd, 0x6f, 0x78, 0x69, 0x64, 0x7a, [15] = 1 };
	uint8_t *b = r->tx + OX_DATA_HDR_LEN;
	size_t ihl, tot;
	uint32_t sum;

	if (len > TUN_MTU || len < 20) {
		r->ctr[MR_NOT_FOR_US]++;
		return;
	}
	memcpy(b, pkt, len);
	if (b[0] >> 4 == 4) {
		ihl = (size_t)(b[0] & 15) * 4;
		tot = (size_t)(b[2] << 8 | b[3]);
		if (ihl < 20 || tot > len || tot < ihl + 8 || b[9] != IPPROTO_ICMP ||
		    memcmp(b + 16, v4_self, 4) != 0 || b[ihl] != 8 || b[ihl + 1] != 0) {
			r->ctr[MR_NOT_FOR_US]++;
			return;
		}
		swap(b + 12, b + 16, 4);
		b[8] = 64;
		b[ihl] = 0; /* echo reply */
		put_be16(b + ihl + 2, 0);
		put_be16(b + ihl + 2, csum_fold(csum_add(0, b + ihl, tot - ihl)));
		put_be16(b + 10, 0);
		put_be16(b + 10, csum_fold(csum_add(0, b, ihl)));
		r->ctr[MR_ECHO4]++;
		reply(r, p, tot, now);
		return;
	}
	tot = len >= 40 ? 40 + (size_t)(b[4] << 8 | b[5]) : 0;
	if (b[0] >> 4 != 6 || len < 48 || tot > len || tot < 48 || b[6] != IPPROTO_ICMPV6 ||
	    memcmp(b + 24, v6_self, 16) != 0 || b[40] != 128 || b[41] != 0) {
		r->ctr[MR_NOT_FOR_US]++;
		return;
	}
	swap(b + 8, b + 24, 16);
	b[7] = 64;
	b[40] = 129; /* echo reply */
	put_be16(b + 42, 0);
	/* Pseudo-header: addresses, upper-layer length, next header. */
	sum = csum_add(0, b + 8, 32);
	sum += (uint32_t)(tot - 40) + IPPROTO_ICMPV6;
	put_be16(b + 42, csum_fold(csum_add(sum, b + 40, tot - 40)));
	r->ctr[MR_ECHO6]++;
	reply(r, p, tot, now);
}

static struct mr_peer *
peer_by_index(struct mini_relay *r, uint32_t index)
{
	int i;

	for (i = 0; i < MAX_PEERS; i++)
		if (r->peers[i].used && ox_peer_find(&r->peers[i].peer, index) != NULL)
			return &r->peers[i];
	return NULL;
}

static void
data_in(struct mini_relay *r, size_t len, const struct sockaddr_in6 *from, uint32_t index,
	uint64_t now)
{
	uint8_t *pt = r->rx + OX_DATA_HDR_LEN;
	const uint8_t *pkt;
	struct mr_peer *p;
	size_t off = 0, plen;
	int n, ret;

	p = peer_by_index(r, index);
	if (p == NULL) {
		drop(r, -OX_DROP_UNKNOWN_INDEX);
		return;
	}
	n = ox_peer_open(r->aead, &p->peer, r->rx, len, now);
	if (n < 0) {
		drop(r, n);
		return;
	}
	r->ctr[MR_DATA]++;
	p->ep = *from; /* roaming, after authentication only */
	if (n == 0) {
		r->ctr[MR_CONFIRMED]++;
		return;
	}
	switch (pt[0]) {
	case OX_INNER_KEEPALIVE:
		if (n > 1 + 64) {
			drop(r, -OX_DROP_BAD_INNER);
			return;
		}
		memcpy(r->tx + OX_DATA_HDR_LEN, pt, (size_t)n);
		r->tx[OX_DATA_HDR_LEN] = OX_INNER_ACK;
		r->ctr[MR_KEEPALIVES]++;
		reply(r, p, (size_t)n, now);
		return;
	case OX_INNER_DISCONNECT:
		r->ctr[MR_DISCONNECTS]++;
		if (r->verbose)
			fprintf(stderr, "mini-relay: peer %ld disconnected\n",
				(long)(p - r->peers));
		gso_flush(r);
		ox_peer_wipe(&p->peer);
		return;
	case OX_INNER_BATCH:
		while ((ret = ox_batch_next(pt, (size_t)n, &off, &pkt, &plen)) == 1)
			ip_in(r, p, pkt, plen, now);
		drop(r, ret);
		return;
	}
	if ((pt[0] >= 0x45 && pt[0] <= 0x4f) || (pt[0] >= 0x60 && pt[0] <= 0x6f))
		ip_in(r, p, pt, (size_t)n, now);
	else
		drop(r, -OX_DROP_BAD_INNER);
}

static uint32_t
new_index(struct mini_relay *r)
{
	uint32_t idx = 0;
	int i;

	/* 64 peers of 3 keypairs among 2^32: a few draws at most. */
	for (i = 0; i < 64; i++) {
		idx = randombytes_random();
		if (peer_by_index(r, idx) == NULL)
			break;
	}
	return idx;
}

static void
init_in(struct mini_relay *r, size_t len, const struct sockaddr_in6 *from, uint64_t now)
{
	struct ox_hs_payload pl = { 0 };
	uint8_t cookie[OX_COOKIE_LEN], resp[OX_RESPONSE_LEN];
	struct ox_responder rs;
	struct ox_keypair kp;
	struct ox_src src;
	struct mr_peer *p = NULL, *free_slot = NULL;
	char a[INET6_ADDRSTRLEN], v4[INET_ADDRSTRLEN];
	uint32_t nv4;
	int i, ret;

	memcpy(src.addr, &from->sin6_addr, 16);
	src.port = ntohs(from->sin6_port);
	ret = ox_hs_consume_init(r->hs, r->rx, len, &src, now, false, &rs, cookie);
	if (ret != 0) {
		drop(r, ret);
		return;
	}
	for (i = 0; i < MAX_PEERS && p == NULL; i++) {
		if (r->peers[i].used && !memcmp(r->peers[i].key, rs.peer_key, OX_KEY_LEN))
			p = &r->peers[i];
		else if (!r->peers[i].used && free_slot == NULL)
			free_slot = &r->peers[i];
	}
	if (p == NULL) {
		if (free_slot == NULL) {
			r->ctr[MR_FULL]++;
			sodium_memzero(&rs, sizeof(rs));
			return;
		}
		p = free_slot;
		i = (int)(p - r->peers);
		p->used = true;
		memcpy(p->key, rs.peer_key, OX_KEY_LEN);
		ox_peer_init(&p->peer);
		p->v4 = rs.peer->v4 ? rs.peer->v4 : 0x64400002u + (uint32_t)i;
		memcpy(p->v6, rs.peer->v6, 16);
		if (sodium_is_zero(p->v6, 16)) {
			static const uint8_t net[6] = { 0xfd, 0x6f, 0x78, 0x69, 0x64, 0x7a };

			memcpy(p->v6, net, sizeof(net));
			p->v6[14] = (uint8_t)((2 + i) >> 8);
			p->v6[15] = (uint8_t)(2 + i);
		}
	}
	pl.v4 = p->v4;
	pl.v4_prefix = 10;
	memcpy(pl.v6, p->v6, 16);
	pl.v6_prefix = 64;
	pl.mtu = TUN_MTU;
	pl.keepalive_s = r->keepalive_s;
	if (ox_hs_make_response(r->hs, &rs, &pl, new_index(r), now, resp, &kp) != 0) {
		drop(r, -OX_DROP_HS_DECRYPT);
		return;
	}
	ox_peer_install(&p->peer, &kp, false);
	ox_keypair_wipe(&kp);
	r->ctr[MR_HANDSHAKES]++;
	if (sendto(r->fd, resp, sizeof(resp), 0, (const struct sockaddr *)from, sizeof(*from)) !=
	    (ssize_t)sizeof(resp))
		r->ctr[MR_SEND_FAILED]++;
	nv4 = htonl(p->v4);
	inet_ntop(AF_INET6, &from->sin6_addr, a, sizeof(a));
	inet_ntop(AF_INET, &nv4, v4, sizeof(v4));
	fprintf(stderr, "mini-relay: handshake from %s port %u: %s\n", a, ntohs(from->sin6_port),
		v4);
}

static void
datagram_in(struct mini_relay *r, size_t len, const struct sockaddr_in6 *from, uint64_t now)
{
	struct ox_msg m;
	int ret;

	ret = ox_msg_parse(r->rx, len, &m);
	switch (ret) {
	case OX_MSG_INIT:
		init_in(r, len, from, now);
		return;
	case OX_MSG_DATA:
		data_in(r, len, from, m.index, now);
		return;
	case OX_MSG_PROBE:
		if (ox_probe_reply(r->rx, len) > 0)
			sendto(r->fd, r->rx, len, 0, (const struct sockaddr *)from, sizeof(*from));
		return;
	default:
		drop(r, ret < 0 ? ret : -OX_DROP_UNEXPECTED);
	}
}

static void
print_counters(const struct mini_relay *r)
{
	int i;

	fprintf(stderr, "mini-relay:");
	for (i = 0; i < MR_MAX; i++)
		if (r->ctr[i])
			fprintf(stderr, " %s %llu", mr_names[i], (unsigned long long)r->ctr[i]);
	for (i = 1; i < OX_DROP_MAX; i++)
		if (r->drops[i])
			fprintf(stderr, " %s %llu", ox_drop_name(i),
				(unsigned long long)r->drops[i]);
	fprintf(stderr, "\n");
}

static void
usage(void)
{
	fprintf(stderr, "usage: mini-relay --key FILE --allow FILE [--port P] [--keepalive S] "
			"[--duration S] [--gso] [--verbose]\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "key", required_argument, NULL, 'k' },
		{ "allow", required_argument, NULL, 'a' },
		{ "keepalive", required_argument, NULL, 'K' },
		{ "duration", required_argument, NULL, 'd' },
		{ "gso", no_argument, NULL, 'g' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	struct sigaction sig = { .sa_handler = on_signal };
	const char *key_file = NULL, *allow_file = NULL;
	unsigned long port = 51820, keepalive = 10, duration = 0;
	struct ox_allowlist al = { 0 };
	uint8_t priv[OX_KEY_LEN];
	struct mini_relay *r;
	char err[256];
	uint64_t t0, now;
	bool verbose = false, gso = false;
	int opt, zero = 0, rc = 1;

	if (sodium_init() < 0)
		return 1;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = strtoul(optarg, NULL, 10);
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'a':
			allow_file = optarg;
			break;
		case 'K':
			keepalive = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			duration = strtoul(optarg, NULL, 10);
			break;
		case 'g':
			gso = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (key_file == NULL || allow_file == NULL || port == 0 || port > 65535 || keepalive == 0 ||
	    keepalive > 3600) {
		usage();
		return 2;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return 1;
	r->fd = -1;
	r->keepalive_s = (uint16_t)keepalive;
	r->verbose = verbose;
	r->gso = gso;
	if (ox_key_load(key_file, priv, err, sizeof(err)) != 0 ||
	    ox_allowlist_load(&al, allow_file, NULL, 1024, err, sizeof(err)) != 0) {
		fprintf(stderr, "mini-relay: %s\n", err);
		goto out;
	}
	r->hs = ox_hs_create(priv, NULL);
	sodium_memzero(priv, sizeof(priv));
	r->aead = ox_aead_create(OX_AEAD_OPENSSL);
	if (r->hs == NULL || r->aead == NULL) {
		fprintf(stderr, "mini-relay: %s\n", strerror(errno));
		goto out;
	}
	ox_hs_set_allowlist(r->hs, &al);
	r->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sa.sin6_port = htons((uint16_t)port);
	if (r->fd < 0 || setsockopt(r->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0 ||
	    bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "mini-relay: port %lu: %s\n", port, strerror(errno));
		goto out;
	}
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGTERM, &sig, NULL);
	fprintf(stderr, "mini-relay: listening on port %lu, %u allowed key(s), keepalive %lu s\n",
		port, al.n, keepalive);
	t0 = ox_mono_ns();
	while (!stop) {
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		int i;

		now = ox_mono_ns();
		if (duration && now - t0 >= duration * NS_PER_S)
			break;
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		/* A burst, then its replies (one GSO send with --gso). */
		for (i = 0; i < RX_BURST; i++) {
			struct sockaddr_in6 from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(r->fd, r->rx, sizeof(r->rx), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fl);

			if (n < 0)
				break;
			if (fl == sizeof(from))
				datagram_in(r, (size_t)n, &from, ox_mono_ns());
		}
		gso_flush(r);
	}
	print_counters(r);
	rc = 0;
out:
	for (opt = 0; opt < MAX_PEERS; opt++)
		ox_peer_wipe(&r->peers[opt].peer);
	if (r->fd >= 0)
		close(r->fd);
	ox_hs_free(r->hs);
	if (r->aead != NULL)
		ox_aead_free(r->aead);
	ox_allowlist_free(&al);
	free(r);
	return rc;
}
