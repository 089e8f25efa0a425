/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kudp-relay: the "standard UDP" baseline of the benchmarks. One thread, a
 * kernel UDP socket, recvmmsg/sendmmsg in batches of 32, doing the relay's
 * work for each datagram:
 *  - OXPI probes are answered as OXPO from the same buffer;
 *  - with --key and --allow (the files oxidize-server takes), it is an
 *    OxTunnel v2 relay on lib/oxtunnel: handshakes through ox_hs_* (the
 *    same allow-list, mac1 and per-source limits), one session per allowed
 *    key in a flat table, DATA opened in place (replay window, next keypair
 *    promoted, roaming after authentication), KEEPALIVE answered with an
 *    ACK, DISCONNECT honoured, and an inner IPv4 packet for another
 *    client's tunnel address re-sealed in the same buffer for that client
 *    and sent to it. It has no exit: any other inner packet is counted
 *    (no_exit) and dropped, as are spoofed inner sources (spoofed_src) and
 *    BATCH plaintexts (unsupported).
 *
 *   kudp-relay [--port P] [--duration S] [--key FILE --allow FILE]
 *
 * Tunnel addresses: 100.64.0.0/10, the relay being .1; an allow-list
 * address is kept for its key, the others are handed out from .2 on.
 *
 * Prints one JSON line at exit: datagrams in and out, dropped ("other"),
 * CPU seconds used (user + system, from getrusage), wall seconds, and the
 * relay's counters.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
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

#define BATCH 32
#define MAX_DGRAM OX_MAX_DATAGRAM
#define MAX_SESSIONS 65536
#define SLOT_BITS 20 /* receiver index: generation << 20 | slot */
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MASK 0xfffu
#define POOL4 0x64400000u /* 100.64.0.0 */
#define POOL4_PREFIX 10
#define TUNNEL_MTU OX_DEFAULT_MTU
#define KEEPALIVE_S 25

/* Relay counters, in JSON order. */
#define KUDP_CTRS(X) \
	X(handshakes) \
	X(decrypted) \
	X(client_to_client) \
	X(keepalive) \
	X(key_confirm) \
	X(disconnect) \
	X(roamed) \
	X(no_exit) \
	X(spoofed_src) \
	X(inner_malformed) \
	X(unsupported) \
	X(no_keys)

struct kudp_ctrs {
#define KUDP_FIELD(n) uint64_t n;
	KUDP_CTRS(KUDP_FIELD)
#undef KUDP_FIELD
};

/* One allowed key's session: slot = its place in the allow-list. */
struct ksess {
	struct ox_peer peer;
	struct sockaddr_in6 ep; /* the client, per its last authenticated datagram */
	uint32_t v4;		/* tunnel address, host order */
	uint16_t gen;		/* handshakes: high bits of its receiver indexes */
	bool live;
};

struct kudp {
	struct ox_hs_server *hs;
	struct ox_allowlist allow;
	struct ox_aead *aead;
	struct ksess *sess; /* allow.n of them */
	uint32_t *by_v4;    /* open addressing: v4 -> slot + 1 */
	uint32_t v4_mask;
	struct kudp_ctrs ctr;
	uint64_t drops[OX_DROP_MAX];
	unsigned long other;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ----------------------------------------------------------- sessions */

static inline uint32_t
v4_hash(uint32_t v4)
{
	return (v4 * 0x9e3779b1u) >> 7;
}

static struct ksess *
by_v4(struct kudp *k, uint32_t v4)
{
	uint32_t h, s;

	for (h = v4_hash(v4);; h++) {
		s = k->by_v4[h & k->v4_mask];
		if (s == 0)
			return NULL;
		if (k->sess[s - 1].v4 == v4)
			return &k->sess[s - 1];
	}
}

static void
v4_insert(struct kudp *k, uint32_t v4, uint32_t slot)
{
	uint32_t h = v4_hash(v4);

	while (k->by_v4[h & k->v4_mask] != 0)
		h++;
	k->by_v4[h & k->v4_mask] = slot + 1;
	k->sess[slot].v4 = v4;
}

/* Every key's tunnel address, fixed ones first so the others avoid them. */
static int
sessions_init(struct kudp *k)
{
	uint32_t i, size = 2, next = POOL4 + 2;

	while (size < 2 * k->allow.n)
		size <<= 1;
	k->sess = calloc(k->allow.n ? k->allow.n : 1, sizeof(*k->sess));
	k->by_v4 = calloc(size, sizeof(*k->by_v4));
	if (k->sess == NULL || k->by_v4 == NULL)
		return -ENOMEM;
	k->v4_mask = size - 1;
	for (i = 0; i < k->allow.n; i++) {
		uint32_t v4 = k->allow.e[i].v4;

		if (v4 == 0)
			continue;
		if ((v4 & ~0u << (32 - POOL4_PREFIX)) != POOL4 || by_v4(k, v4) != NULL) {
			fprintf(stderr,
				"kudp-relay: allow-list line %u: address outside "
				"100.64.0.0/10 or taken\n",
				k->allow.e[i].line);
			return -EINVAL;
		}
		v4_insert(k, v4, i);
	}
	for (i = 0; i < k->allow.n; i++) {
		if (k->allow.e[i].v4 != 0)
			continue;
		while (by_v4(k, next) != NULL)
			next++;
		v4_insert(k, next++, i);
	}
	return 0;
}

/* ------------------------------------------------------------ datagrams */

static int
drop(struct kudp *k, int reason)
{
	k->drops[reason < 0 ? -reason : reason]++;
	k->other++;
	return 0;
}

static int
count_drop(struct kudp *k, uint64_t *ctr)
{
	(*ctr)++;
	k->other++;
	return 0;
}

static int
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
	if (ret < 0)
		return drop(k, ret);
	slot = (uint32_t)(resp.peer - k->allow.e);
	s = &k->sess[slot];
	if (!s->live) {
		ox_peer_init(&s->peer);
		s->ep = *from;
		s->live = true;
	}
	s->gen = (uint16_t)((s->gen + 1) & GEN_MASK);
	memset(&pl, 0, sizeof(pl));
	pl.v4 = s->v4;
	pl.v4_prefix = POOL4_PREFIX;
	pl.mtu = TUNNEL_MTU;
	pl.keepalive_s = KEEPALIVE_S;
	/* The RESPONSE goes out of the INIT's buffer, now consumed. */
	if (ox_hs_make_response(k->hs, &resp, &pl, (uint32_t)s->gen << SLOT_BITS | slot, now, d,
				&kp) != 0)
		return drop(k, -OX_DROP_HS_DECRYPT);
	/* Next until a DATA under it arrives. */
	ox_peer_install(&s->peer, &kp, false);
	ox_keypair_wipe(&kp);
	k->ctr.handshakes++;
	return OX_RESPONSE_LEN;
}

/* Seal the plaintext at d + OX_DATA_HDR_LEN in place for session s. */
static int
seal_for(struct kudp *k, struct ksess *s, uint8_t *d, size_t plain, uint64_t now,
	 struct sockaddr_in6 *to)
{
	struct ox_keypair *kp = ox_peer_current(&s->peer);
	int ret;

	if (kp == NULL)
		return count_drop(k, &k->ctr.no_keys);
	ret = ox_data_seal(k->aead, kp, d, plain, now);
	if (ret < 0)
		return drop(k, ret);
	*to = s->ep;
	return ret;
}

static int
handle_data(struct kudp *k, uint32_t index, uint8_t *d, size_t len, const struct sockaddr_in6 *from,
	    uint64_t now, struct sockaddr_in6 *to)
{
	uint32_t slot = index & SLOT_MASK, tot;
	struct ksess *s, *dst;
	uint8_t *in = d + OX_DATA_HDR_LEN;
	int n;

	if (slot >= k->allow.n || !k->sess[slot].live)
		return drop(k, -OX_DROP_UNKNOWN_INDEX);
	s = &k->sess[slot];
	n = ox_peer_open(k->aead, &s->peer, d, len, now);
	if (n < 0)
		return drop(k, n);
	k->ctr.decrypted++;
	/* Roaming: a new source is adopted only now that it authenticated. */
	if (memcmp(&s->ep, from, sizeof(*from)) != 0) {
		s->ep = *from;
		k->ctr.roamed++;
	}
	if (n == 0) {
		k->ctr.key_confirm++;
		return 0;
	}
	switch (in[0]) {
	case OX_INNER_KEEPALIVE:
		if (n > 1 + 64)
			return drop(k, -OX_DROP_BAD_INNER);
		k->ctr.keepalive++;
		in[0] = OX_INNER_ACK;
		return seal_for(k, s, d, (size_t)n, now, to);
	case OX_INNER_DISCONNECT:
		k->ctr.disconnect++;
		ox_peer_wipe(&s->peer);
		s->live = false;
		return 0;
	case OX_INNER_BATCH:
		return count_drop(k, &k->ctr.unsupported);
	default:
		break;
	}
	if ((in[0] >> 4) != 4)
		return (in[0] >> 4) == 6 ? count_drop(k, &k->ctr.no_exit)
					 : drop(k, -OX_DROP_BAD_INNER);
	if (n < 20)
		return count_drop(k, &k->ctr.inner_malformed);
	tot = (uint32_t)in[2] << 8 | in[3];
	if (tot < 20 || tot > (uint32_t)n)
		return count_drop(k, &k->ctr.inner_malformed);
	if (get_be32(in + 12) != s->v4)
		return count_drop(k, &k->ctr.spoofed_src);
	dst = by_v4(k, get_be32(in + 16));
	if (dst == NULL || !dst->live)
		return count_drop(k, &k->ctr.no_exit);
	k->ctr.client_to_client++;
	return seal_for(k, dst, d, tot, now, to);
}

/*
 * One datagram in d: the length of the reply or forward now in d, to be
 * sent to *to, or 0.
 */
static int
relay_datagram(struct kudp *k, uint8_t *d, size_t len, const struct sockaddr_in6 *from,
	       uint64_t now, struct sockaddr_in6 *to)
{
	struct ox_msg m;
	int r;

	if (ox_probe_reply(d, len) > 0) {
		*to = *from;
		return (int)len;
	}
	if (k->hs == NULL) {
		k->other++;
		return 0;
	}
	r = ox_msg_parse(d, len, &m);
	if (r < 0)
		return drop(k, r);
	switch (r) {
	case OX_MSG_INIT:
		r = handle_init(k, d, len, from, now);
		*to = *from;
		return r;
	case OX_MSG_DATA:
		return handle_data(k, m.index, d, len, from, now, to);
	default:
		return drop(k, -OX_DROP_UNEXPECTED);
	}
}

/* ---------------------------------------------------------------- setup */

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
	printf("relay: public key %s, %u allowed key(s)\n", pub64, k->allow.n);
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
	free(k->by_v4);
	ox_aead_free(k->aead);
	ox_allowlist_free(&k->allow);
	ox_hs_free(k->hs);
}

static void
print_json(const struct kudp *k, unsigned long rx, unsigned long tx, double wall)
{
	struct rusage ru;
	int i, first = 1;

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"rx\": %lu, \"tx\": %lu, \"other\": %lu, \"cpu_s\": %.3f, \"wall_s\": %.3f", rx,
	       tx, k->other,
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
}

int
main(int argc, char **argv)
{
	static uint8_t bufs[BATCH][MAX_DGRAM];
	static struct kudp k;
	struct sockaddr_in6 addrs[BATCH], oaddrs[BATCH], bind_addr = { .sin6_family = AF_INET6 };
	struct mmsghdr in[BATCH], out[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	unsigned long rx = 0, tx = 0;
	const char *key_file = NULL, *allow_file = NULL;
	double duration = 10, t0, end;
	uint64_t now;
	int fd, opt, n, i, r, kk, one = 1, zero = 0, bufsz = 16 << 20, rc = 1;
	uint16_t port = 51820;
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "key", required_argument, NULL, 'k' },
		{ "allow", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt == 'p')
			port = (uint16_t)atoi(optarg);
		else if (opt == 'd')
			duration = atof(optarg);
		else if (opt == 'k')
			key_file = optarg;
		else if (opt == 'a')
			allow_file = optarg;
		else
			goto usage;
	}
	if ((key_file == NULL) != (allow_file == NULL))
		goto usage;
	if (key_file != NULL && relay_init(&k, key_file, allow_file) != 0)
		goto out;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		goto out;
	}
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	bind_addr.sin6_port = htons(port);
	bind_addr.sin6_addr = in6addr_any;
	if (bind(fd, (struct sockaddr *)&bind_addr, sizeof(bind_addr)) != 0) {
		perror("bind");
		goto out_fd;
	}
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = MAX_DGRAM;
		memset(&in[i], 0, sizeof(in[i]));
		in[i].msg_hdr.msg_iov = &iov[i];
		in[i].msg_hdr.msg_iovlen = 1;
		in[i].msg_hdr.msg_name = &addrs[i];
	}
	printf("ready\n");
	fflush(stdout);
	t0 = now_s();
	end = t0 + duration;
	while (!stop && now_s() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		for (i = 0; i < BATCH; i++)
			in[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		n = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			poll(&pfd, 1, 50);
			continue;
		}
		rx += n;
		now = ox_mono_ns();
		for (i = 0, kk = 0; i < n; i++) {
			/* The socket is dual-stack: every source is a sockaddr_in6. */
			if (in[i].msg_hdr.msg_namelen != sizeof(addrs[i])) {
				k.other++;
				continue;
			}
			r = relay_datagram(&k, bufs[i], in[i].msg_len, &addrs[i], now, &oaddrs[kk]);
			if (r <= 0)
				continue;
			oiov[kk].iov_base = bufs[i];
			oiov[kk].iov_len = (size_t)r;
			memset(&out[kk], 0, sizeof(out[kk]));
			out[kk].msg_hdr.msg_iov = &oiov[kk];
			out[kk].msg_hdr.msg_iovlen = 1;
			out[kk].msg_hdr.msg_name = &oaddrs[kk];
			out[kk].msg_hdr.msg_namelen = sizeof(oaddrs[kk]);
			kk++;
		}
		for (i = 0; i < kk;) {
			int s = sendmmsg(fd, out + i, kk - i, 0);

			/* A datagram the kernel refuses is skipped, not the batch. */
			if (s <= 0) {
				i++;
				continue;
			}
			tx += s;
			i += s;
		}
	}
	print_json(&k, rx, tx, now_s() - t0);
	rc = 0;
out_fd:
	close(fd);
out:
	relay_free(&k);
	return rc;
usage:
	fprintf(stderr, "usage: kudp-relay [--port P] [--duration S] [--key FILE --allow FILE]\n");
	return 2;
}
