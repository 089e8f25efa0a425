/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `oxidize-client up`: one thread, one epoll over a TUN device, a UDP
 * socket connected to the relay, a timerfd and a signalfd.
 *
 *   TUN -> read up to 32 packets -> seal each in place -> sendmmsg
 *   UDP -> recvmmsg 32 (GRO super-datagrams split by segment size)
 *       -> classify -> open in place -> TUN, or handshake/ACK/DISCONNECT
 *   tick (250 ms) -> handshake resend, rekey, keepalive, silence, --duration
 *
 * Only the client initiates (doc/oxtunnel.md 7). It keeps handshaking
 * every REKEY_TIMEOUT for as long as the relay does not answer, so a
 * relay restart heals without anyone acting: the keepalive probes go
 * unanswered, the relay is declared silent, and the next handshake with
 * the new process succeeds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <sodium.h>

#include "client.h"

#define BURST			32
#define GRO_BUF			65536	/* one GRO super-datagram */
#define TX_BUF			OX_MAX_DATAGRAM	/* header, packet, tag */
#define CTL_BUF			(OX_DATA_OVERHEAD + 128)
#define TICK_NS			(UINT64_C(250) * 1000000)
#define NS_PER_S		UINT64_C(1000000000)
#define SILENCE_SLACK_NS	(UINT64_C(5) * NS_PER_S)
#define STATS_EVERY_NS		(UINT64_C(10) * NS_PER_S)
#define KEEPALIVE_NONCE		8
#define SOCK_BUF		(4 << 20)

/* The client's own drop and error counters, beside enum ox_drop's. */
#define CLIENT_DROPS(X) \
	X(NO_SESSION, "no_session") \
	X(NOT_IP, "not_ip") \
	X(TUN_WRITE, "tun_write_failed") \
	X(TUN_READ, "tun_read_failed") \
	X(UDP_SEND, "udp_send_failed") \
	X(UDP_RECV, "udp_recv_failed") \
	X(TRUNCATED, "truncated")

enum client_drop {
#define CD_ENUM(n, s) CD_##n,
	CLIENT_DROPS(CD_ENUM)
#undef CD_ENUM
	CD_MAX
};

static const char *const client_drop_names[] = {
#define CD_NAME(n, s) s,
	CLIENT_DROPS(CD_NAME)
#undef CD_NAME
};

struct client_stats {
	uint64_t rx_dgrams, rx_bytes;	/* UDP datagrams in (GRO segments apart) */
	uint64_t rx_gro;		/* super-datagrams GRO made of several */
	uint64_t tx_dgrams, tx_bytes;
	uint64_t tun_in, tun_out;	/* IP packets read from / written to TUN */
	uint64_t hs_sent, hs_done, cookies;
	uint64_t keepalives, acks;
	uint64_t ox_drop[OX_DROP_MAX];
	uint64_t drop[CD_MAX];
};

struct tunnel {
	const struct client_conf *conf;
	int udp, tun, tfd, sfd, ep;
	int tun_index;
	struct nl nl;
	struct ox_aead *aead;
	struct ox_initiator in;
	struct ox_peer peer;
	struct client_prefix server;	/* the relay's address, as a host prefix */
	char server_str[INET6_ADDRSTRLEN + 8];
	bool gro;

	/* What the TUN device carries now. */
	bool configured;
	struct client_prefix addr4, addr6;	/* family 0: none */
	unsigned int mtu;
	struct nl_route added[CLIENT_MAX_ROUTES * 2 + 1];	/* to remove at exit */
	unsigned int n_added;

	/* Timers, CLOCK_MONOTONIC nanoseconds. */
	uint64_t start_ns;
	uint64_t hs_sent_ns;		/* last initiation */
	uint64_t hs_first_ns;		/* first initiation of the series; 0: none */
	bool hs_warned;			/* REKEY_ATTEMPT_TIME passed in this series */
	bool established;		/* keys agreed and the relay not silent */
	uint64_t last_tx_ns, last_rx_ns, last_ka_ns;
	uint64_t keepalive_ns;
	uint64_t next_stats_ns;
	bool stop;
	bool failed;			/* stopped by an error */

	struct client_stats st;

	/* Burst buffers. */
	uint8_t (*rx)[GRO_BUF];
	uint8_t (*tx)[TX_BUF];
	uint8_t ctl[CTL_BUF];
	struct mmsghdr rx_msg[BURST], tx_msg[BURST];
	struct iovec rx_iov[BURST], tx_iov[BURST];
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int))];
	} rx_cmsg[BURST];
};

#define say(...) do { fprintf(stderr, "oxidize-client: " __VA_ARGS__); } while (0)
#define verbose(t, ...) do { if ((t)->conf->verbose) say(__VA_ARGS__); } while (0)

static const char *
prefix_str(const struct client_prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
	return buf;
}

static void
count_ox(struct tunnel *t, int ret)
{
	if (ret < 0 && -ret < OX_DROP_MAX)
		t->st.ox_drop[-ret]++;
}

static void
stats_print(const struct tunnel *t, const char *what)
{
	const struct client_stats *s = &t->st;
	char line[2048];
	size_t off, mark;
	int i;

	off = (size_t)snprintf(line, sizeof(line),
		"%srx %llu datagrams %llu bytes, tx %llu datagrams %llu bytes, "
		"tun in %llu out %llu, handshakes %llu sent %llu done, keepalives %llu acks %llu",
		what, (unsigned long long)s->rx_dgrams, (unsigned long long)s->rx_bytes,
		(unsigned long long)s->tx_dgrams, (unsigned long long)s->tx_bytes,
		(unsigned long long)s->tun_in, (unsigned long long)s->tun_out,
		(unsigned long long)s->hs_sent, (unsigned long long)s->hs_done,
		(unsigned long long)s->keepalives, (unsigned long long)s->acks);
	if (s->rx_gro && off < sizeof(line))
		off += (size_t)snprintf(line + off, sizeof(line) - off, " gro %llu",
					(unsigned long long)s->rx_gro);
	if (s->cookies && off < sizeof(line))
		off += (size_t)snprintf(line + off, sizeof(line) - off, " cookies %llu",
					(unsigned long long)s->cookies);
	if (off < sizeof(line))
		off += (size_t)snprintf(line + off, sizeof(line) - off, ", drops:");
	mark = off;
	for (i = 1; i < OX_DROP_MAX && off < sizeof(line); i++)
		if (s->ox_drop[i])
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %s %llu",
						ox_drop_name(i), (unsigned long long)s->ox_drop[i]);
	for (i = 0; i < CD_MAX && off < sizeof(line); i++)
		if (s->drop[i])
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %s %llu",
						client_drop_names[i],
						(unsigned long long)s->drop[i]);
	if (off == mark && off < sizeof(line))
		snprintf(line + off, sizeof(line) - off, " none");
	say("%s\n", line);
}

/* ---------------------------------------------------------------- setup */

static int
tun_open(struct tunnel *t)
{
	struct ifreq ifr;

	t->tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->tun < 0) {
		say("cannot open /dev/net/tun: %s\n", strerror(errno));
		return -errno;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	/* conf.c checked it fits, with its NUL. */
	memcpy(ifr.ifr_name, t->conf->tun, strlen(t->conf->tun) + 1);
	if (ioctl(t->tun, TUNSETIFF, &ifr) != 0) {
		int ret = -errno;

		say("cannot create TUN device %s: %s%s\n", t->conf->tun, strerror(errno),
		    errno == EPERM ? " (needs CAP_NET_ADMIN)" :
		    errno == EBUSY ? " (in use)" : "");
		return ret;
	}
	t->tun_index = (int)if_nametoindex(ifr.ifr_name);
	if (t->tun_index == 0)
		return -errno;
	return 0;
}

static int
udp_open(struct tunnel *t)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP };
	struct addrinfo *ai = NULL;
	int one = 1, sz = SOCK_BUF, ret;
	char a[INET6_ADDRSTRLEN];

	ret = getaddrinfo(t->conf->host, t->conf->port, &hints, &ai);
	if (ret != 0) {
		say("%s: %s\n", t->conf->host, gai_strerror(ret));
		return -EINVAL;
	}
	memset(&t->server, 0, sizeof(t->server));
	t->server.family = ai->ai_family;
	if (ai->ai_family == AF_INET) {
		memcpy(t->server.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		t->server.len = 32;
	} else {
		memcpy(t->server.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		t->server.len = 128;
	}
	inet_ntop(t->server.family, t->server.addr, a, sizeof(a));
	snprintf(t->server_str, sizeof(t->server_str), ai->ai_family == AF_INET6 ?
		 "[%s]:%s" : "%s:%s", a, t->conf->port);
	t->udp = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->udp < 0 || connect(t->udp, ai->ai_addr, ai->ai_addrlen) != 0) {
		ret = -errno;
		say("%s: %s\n", t->server_str, strerror(errno));
		freeaddrinfo(ai);
		return ret;
	}
	freeaddrinfo(ai);
	/* Bursts of 32 from TUN and from the relay; root may exceed rmem_max. */
	if (setsockopt(t->udp, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
		setsockopt(t->udp, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(t->udp, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
		setsockopt(t->udp, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	t->gro = setsockopt(t->udp, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	return 0;
}

static int
epoll_add(struct tunnel *t, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int
loop_open(struct tunnel *t, sigset_t *old)
{
	struct itimerspec its = {
		.it_interval = { 0, (long)TICK_NS },
		.it_value = { 0, (long)TICK_NS },
	};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, old) != 0)
		return -errno;
	t->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	if (t->sfd < 0 || t->tfd < 0 || t->ep < 0 ||
	    timerfd_settime(t->tfd, 0, &its, NULL) != 0)
		return -errno;
	if (epoll_add(t, t->udp) || epoll_add(t, t->tun) || epoll_add(t, t->tfd) ||
	    epoll_add(t, t->sfd))
		return -errno;
	return 0;
}

static void
bufs_init(struct tunnel *t)
{
	int i;

	for (i = 0; i < BURST; i++) {
		t->rx_iov[i] = (struct iovec){ t->rx[i], GRO_BUF };
		t->rx_msg[i].msg_hdr.msg_iov = &t->rx_iov[i];
		t->rx_msg[i].msg_hdr.msg_iovlen = 1;
		t->tx_msg[i].msg_hdr.msg_iov = &t->tx_iov[i];
		t->tx_msg[i].msg_hdr.msg_iovlen = 1;
	}
}

/* --------------------------------------------------- interface, routes */

static bool
prefix_contains(const struct client_prefix *p, const struct client_prefix *a)
{
	unsigned int i;

	if (p->family != a->family)
		return false;
	for (i = 0; i < p->len; i++)
		if ((p->addr[i / 8] ^ a->addr[i / 8]) & (0x80 >> (i % 8)))
			return false;
	return true;
}

static int
route_add(struct tunnel *t, const struct nl_route *r)
{
	char b[INET6_ADDRSTRLEN + 8];
	int ret;

	ret = nl_route(&t->nl, true, r);
	if (ret == -EEXIST) {
		say("route %s exists already; left as it is\n", prefix_str(&r->dst, b, sizeof(b)));
		return 0;
	}
	if (ret != 0) {
		say("cannot add route %s: %s\n", prefix_str(&r->dst, b, sizeof(b)), strerror(-ret));
		return ret;
	}
	t->added[t->n_added++] = *r;
	verbose(t, "route %s dev %s\n", prefix_str(&r->dst, b, sizeof(b)),
		r->oif == t->tun_index ? t->conf->tun : "(path to the relay)");
	return 0;
}

/* Keep the relay itself off the tunnel: a host route via the path it has
 * now, taken before any of our routes exist. */
static int
pin_server_route(struct tunnel *t)
{
	struct nl_route cur;
	char ifname[IF_NAMESIZE] = "?";
	int ret;

	ret = nl_route_get(&t->nl, &t->server, &cur);
	if (ret != 0) {
		say("no route to the relay %s: %s\n", t->server_str, strerror(-ret));
		return ret;
	}
	if (cur.oif == t->tun_index) {
		say("the route to the relay already goes through %s\n", t->conf->tun);
		return -ELOOP;
	}
	cur.dst = t->server;
	if_indextoname((unsigned int)cur.oif, ifname);
	say("relay %s pinned to dev %s\n", t->server_str, ifname);
	return route_add(t, &cur);
}

static int
routes_add(struct tunnel *t)
{
	const struct client_conf *c = t->conf;
	bool pinned = false;
	unsigned int i, h;
	int ret;

	for (i = 0; i < c->n_routes; i++) {
		const struct client_prefix *p = &c->routes[i];
		struct nl_route r = { .oif = t->tun_index, .dst = *p };

		if (!pinned && prefix_contains(p, &t->server)) {
			ret = pin_server_route(t);
			if (ret != 0)
				return ret;
			pinned = true;
		}
		if (p->len != 0) {
			ret = route_add(t, &r);
			if (ret != 0)
				return ret;
			continue;
		}
		/* All traffic: two halves that beat the default route without
		 * replacing it, so nothing needs restoring after a crash. */
		for (h = 0; h < 2; h++) {
			r.dst.len = 1;
			r.dst.addr[0] = h ? 0x80 : 0;
			ret = route_add(t, &r);
			if (ret != 0)
				return ret;
		}
	}
	if (c->n_routes)
		say("%u route(s) through %s\n", c->n_routes, c->tun);
	return 0;
}

static void
routes_del(struct tunnel *t)
{
	char b[INET6_ADDRSTRLEN + 8];
	int ret;

	while (t->n_added > 0) {
		const struct nl_route *r = &t->added[--t->n_added];

		ret = nl_route(&t->nl, false, r);
		/* Routes through the TUN device may have gone with it. */
		if (ret != 0 && ret != -ESRCH)
			say("cannot remove route %s: %s\n", prefix_str(&r->dst, b, sizeof(b)),
			    strerror(-ret));
	}
}

static bool
prefix_eq(const struct client_prefix *a, const struct client_prefix *b)
{
	return a->family == b->family && a->len == b->len && !memcmp(a->addr, b->addr, 16);
}

/* Replace one of the device's addresses if the relay handed out another. */
static int
set_addr(struct tunnel *t, struct client_prefix *cur, const struct client_prefix *want)
{
	char b[INET6_ADDRSTRLEN + 8];
	int ret;

	if (prefix_eq(cur, want))
		return 0;
	if (cur->family) {
		ret = nl_addr(&t->nl, false, t->tun_index, cur);
		if (ret != 0)
			say("cannot remove address %s: %s\n", prefix_str(cur, b, sizeof(b)),
			    strerror(-ret));
		memset(cur, 0, sizeof(*cur));
	}
	if (!want->family)
		return 0;
	ret = nl_addr(&t->nl, true, t->tun_index, want);
	if (ret != 0) {
		say("cannot set address %s on %s: %s\n", prefix_str(want, b, sizeof(b)),
		    t->conf->tun, strerror(-ret));
		return ret;
	}
	*cur = *want;
	return 0;
}

static int
configure(struct tunnel *t, const struct ox_hs_payload *pl)
{
	struct client_prefix v4 = { 0 }, v6 = { 0 };
	static const uint8_t zero[16];
	unsigned int mtu = t->conf->mtu;
	uint32_t a4 = htonl(pl->v4);
	int ret;

	if (mtu == 0) {
		mtu = pl->mtu;
		if (mtu < CLIENT_MIN_MTU || mtu > CLIENT_MAX_MTU) {
			if (mtu != 0)
				say("relay's MTU %u out of range; using %u\n", mtu, OX_DEFAULT_MTU);
			mtu = OX_DEFAULT_MTU;
		}
	}
	if (pl->v4) {
		v4.family = AF_INET;
		memcpy(v4.addr, &a4, 4);
		v4.len = pl->v4_prefix ? pl->v4_prefix : 32;
	}
	if (memcmp(pl->v6, zero, 16) != 0) {
		v6.family = AF_INET6;
		memcpy(v6.addr, pl->v6, 16);
		v6.len = pl->v6_prefix ? pl->v6_prefix : 128;
	}
	/* Only the relay is on the other end: a link-local address would
	 * only send it solicitations and reports from a source it refuses. */
	if (!t->configured && nl_link_no_lladdr(&t->nl, t->tun_index) != 0)
		verbose(t, "%s keeps its IPv6 link-local address\n", t->conf->tun);
	if (!t->configured || mtu != t->mtu) {
		ret = nl_link_up(&t->nl, t->tun_index, mtu);
		if (ret != 0) {
			say("cannot bring %s up with mtu %u: %s\n", t->conf->tun, mtu,
			    strerror(-ret));
			return ret;
		}
		t->mtu = mtu;
	}
	ret = set_addr(t, &t->addr4, &v4);
	if (ret != 0)
		return ret;
	/* IPv6 may be off on this host, or the MTU below its minimum: the
	 * IPv4 side still works. */
	if (v6.family && mtu < 1280)
		say("mtu %u is below IPv6's 1280: no IPv6 address on %s\n", mtu, t->conf->tun);
	else if (set_addr(t, &t->addr6, &v6) != 0)
		say("continuing without IPv6 on %s\n", t->conf->tun);
	if (!t->configured) {
		ret = routes_add(t);
		if (ret != 0)
			return ret;
		t->configured = true;
	}
	return 0;
}

/* ------------------------------------------------------------ sending */

static int
udp_send(struct tunnel *t, const uint8_t *buf, size_t len, uint64_t now)
{
	if (send(t->udp, buf, len, 0) != (ssize_t)len) {
		t->st.drop[CD_UDP_SEND]++;
		return -errno;
	}
	t->st.tx_dgrams++;
	t->st.tx_bytes += len;
	t->last_tx_ns = now;
	return 0;
}

/* Seal and send a short control plaintext (empty, KEEPALIVE, ACK,
 * DISCONNECT) under the current keys. */
static int
send_ctl(struct tunnel *t, const uint8_t *plain, size_t len, uint64_t now)
{
	struct ox_keypair *kp = ox_peer_current(&t->peer);
	int ret;

	if (kp == NULL) {
		t->st.drop[CD_NO_SESSION]++;
		return -ENOKEY;
	}
	if (len)
		memcpy(t->ctl + OX_DATA_HDR_LEN, plain, len);
	ret = ox_data_seal(t->aead, kp, t->ctl, len, now);
	if (ret < 0) {
		count_ox(t, ret);
		return ret;
	}
	return udp_send(t, t->ctl, (size_t)ret, now);
}

static void
send_keepalive(struct tunnel *t, uint64_t now)
{
	uint8_t ka[1 + KEEPALIVE_NONCE];

	ka[0] = OX_INNER_KEEPALIVE;
	randombytes_buf(ka + 1, KEEPALIVE_NONCE);
	t->last_ka_ns = now;
	if (send_ctl(t, ka, sizeof(ka), now) == 0)
		t->st.keepalives++;
}

static void
hs_begin(struct tunnel *t, uint64_t now)
{
	uint8_t init[OX_INIT_LEN], ts[12];
	uint32_t idx;
	int i;

	/* A fresh index per attempt, never one a live keypair answers to. */
	idx = randombytes_random();
	for (i = 0; i < 8 && ox_peer_find(&t->peer, idx) != NULL; i++)
		idx = randombytes_random();
	ox_tai64n_now(ts);
	if (t->hs_first_ns == 0) {
		t->hs_first_ns = now;
		t->hs_warned = false;
	}
	t->hs_sent_ns = now;
	if (ox_initiator_begin(&t->in, idx, ts, now, init) != 0) {
		say("cannot build a handshake initiation\n");
		return;
	}
	t->st.hs_sent++;
	verbose(t, "handshake initiation to %s (index %08x)\n", t->server_str, idx);
	udp_send(t, init, sizeof(init), now);
}

/* ---------------------------------------------------------- receiving */

static void
on_response(struct tunnel *t, const uint8_t *buf, size_t len, uint64_t now)
{
	struct ox_hs_payload pl;
	struct ox_keypair kp;
	char b4[INET6_ADDRSTRLEN + 8] = "", b6[INET6_ADDRSTRLEN + 8] = "";
	bool was_up = t->established;
	int ret;

	ret = ox_initiator_consume_response(&t->in, buf, len, now, &pl, &kp);
	if (ret != 0) {
		count_ox(t, ret);
		return;
	}
	ox_peer_install(&t->peer, &kp, true);
	ox_keypair_wipe(&kp);
	t->st.hs_done++;
	t->hs_first_ns = 0;
	t->last_rx_ns = now;
	t->keepalive_ns = pl.keepalive_s ? pl.keepalive_s * NS_PER_S : OX_KEEPALIVE_NS;
	t->established = true;
	/* Key confirmation: the relay takes the keys into use on the first
	 * packet it receives under them. */
	send_ctl(t, NULL, 0, now);
	if (configure(t, &pl) != 0) {
		t->failed = true;
		t->stop = true;
		return;
	}
	if (was_up) {
		verbose(t, "rekeyed\n");
		return;
	}
	if (t->addr4.family)
		prefix_str(&t->addr4, b4, sizeof(b4));
	if (t->addr6.family)
		prefix_str(&t->addr6, b6, sizeof(b6));
	say("handshake complete: %s%s%s mtu %u\n", b4, *b4 && *b6 ? " " : "", b6, t->mtu);
}

static void
tun_write(struct tunnel *t, const uint8_t *pkt, size_t len)
{
	if (write(t->tun, pkt, len) != (ssize_t)len) {
		t->st.drop[CD_TUN_WRITE]++;
		return;
	}
	t->st.tun_out++;
}

static void
on_data(struct tunnel *t, uint8_t *buf, size_t len, uint64_t now)
{
	const uint8_t *pkt;
	uint8_t *p = buf + OX_DATA_HDR_LEN;
	size_t off = 0, plen;
	int n, ret;

	n = ox_peer_open(t->aead, &t->peer, buf, len, now);
	if (n < 0) {
		count_ox(t, n);
		return;
	}
	t->last_rx_ns = now;
	if (n == 0)
		return;
	if (p[0] >= 0x45 && p[0] <= 0x6f && (p[0] < 0x50 || p[0] >= 0x60)) {
		tun_write(t, p, (size_t)n);
		return;
	}
	switch (p[0]) {
	case OX_INNER_KEEPALIVE:
		if (n > 1 + OX_KEEPALIVE_MAX_ECHO) {
			t->st.ox_drop[OX_DROP_BAD_INNER]++;
			return;
		}
		/* The same bytes back, kind ACK. */
		p[0] = OX_INNER_ACK;
		send_ctl(t, p, (size_t)n, now);
		return;
	case OX_INNER_ACK:
		t->st.acks++;
		return;
	case OX_INNER_DISCONNECT:
		say("relay ended the session; handshaking again\n");
		ox_peer_wipe(&t->peer);
		t->established = false;
		if (!t->in.pending)
			hs_begin(t, now);
		return;
	case OX_INNER_BATCH:
		while ((ret = ox_batch_next(p, (size_t)n, &off, &pkt, &plen)) == 1)
			tun_write(t, pkt, plen);
		if (ret < 0)
			count_ox(t, ret);
		return;
	default:
		t->st.ox_drop[OX_DROP_BAD_INNER]++;
	}
}

static void
on_datagram(struct tunnel *t, uint8_t *buf, size_t len, uint64_t now)
{
	struct ox_msg m;
	int ret;

	t->st.rx_dgrams++;
	t->st.rx_bytes += len;
	ret = ox_msg_parse(buf, len, &m);
	switch (ret) {
	case OX_MSG_DATA:
		on_data(t, buf, len, now);
		return;
	case OX_MSG_RESPONSE:
		on_response(t, buf, len, now);
		return;
	case OX_MSG_COOKIE:
		ret = ox_initiator_consume_cookie(&t->in, buf, len, now);
		if (ret != 0) {
			count_ox(t, ret);
			return;
		}
		/* The timer resends with mac2 after REKEY_TIMEOUT (4.2). */
		t->st.cookies++;
		verbose(t, "relay is under load: cookie taken, retrying in %llu s\n",
			(unsigned long long)(OX_REKEY_TIMEOUT_NS / NS_PER_S));
		return;
	default:
		count_ox(t, ret < 0 ? ret : -OX_DROP_UNEXPECTED);
	}
}

static int
gro_size(struct msghdr *h)
{
	struct cmsghdr *c;
	int gso = 0;

	for (c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&gso, CMSG_DATA(c), sizeof(int));
	return gso;
}

static void
on_udp(struct tunnel *t)
{
	uint64_t now;
	int n, i;

	for (i = 0; i < BURST; i++) {
		t->rx_msg[i].msg_hdr.msg_control = t->rx_cmsg[i].buf;
		t->rx_msg[i].msg_hdr.msg_controllen = sizeof(t->rx_cmsg[i].buf);
		t->rx_msg[i].msg_hdr.msg_flags = 0;
	}
	n = recvmmsg(t->udp, t->rx_msg, BURST, MSG_DONTWAIT, NULL);
	if (n < 0) {
		/* ECONNREFUSED: an ICMP error from the relay's host, e.g.
		 * while it restarts. Silence detection deals with it. */
		if (errno != EAGAIN && errno != EINTR)
			t->st.drop[CD_UDP_RECV]++;
		return;
	}
	now = ox_mono_ns();
	for (i = 0; i < n; i++) {
		size_t len = t->rx_msg[i].msg_len, off, seg;
		int gso = gro_size(&t->rx_msg[i].msg_hdr);

		if (t->rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
			t->st.drop[CD_TRUNCATED]++;
			continue;
		}
		/* A GRO super-datagram: equal segments, the last may be short. */
		if (gso > 0 && (size_t)gso < len)
			t->st.rx_gro++;
		for (off = 0; off < len; off += seg) {
			seg = gso > 0 && (size_t)gso < len - off ? (size_t)gso : len - off;
			on_datagram(t, t->rx[i] + off, seg, now);
		}
	}
}

static void
tx_flush(struct tunnel *t, unsigned int n, uint64_t now)
{
	unsigned int i = 0, k;
	int r;

	/* Each round sends at least one message or drops one: bounded. A
	 * full socket buffer drops the rest at once, not one per call. */
	while (i < n) {
		r = sendmmsg(t->udp, t->tx_msg + i, n - i, MSG_DONTWAIT);
		if (r <= 0) {
			if (r < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
				t->st.drop[CD_UDP_SEND] += n - i;
				break;
			}
			t->st.drop[CD_UDP_SEND]++;
			i++;
			continue;
		}
		for (k = i; k < i + (unsigned int)r; k++) {
			t->st.tx_dgrams++;
			t->st.tx_bytes += t->tx_iov[k].iov_len;
		}
		i += (unsigned int)r;
		t->last_tx_ns = now;
	}
}

static void
on_tun(struct tunnel *t)
{
	struct ox_keypair *kp = ox_peer_current(&t->peer);
	uint64_t now = ox_mono_ns();
	unsigned int n = 0, reads;
	int ret;

	for (reads = 0; reads < BURST; reads++) {
		uint8_t *b = t->tx[n], v;
		ssize_t len = read(t->tun, b + OX_DATA_HDR_LEN, OX_MAX_PLAINTEXT);

		if (len <= 0) {
			if (len < 0 && errno != EAGAIN && errno != EINTR)
				t->st.drop[CD_TUN_READ]++;
			break;
		}
		t->st.tun_in++;
		if (kp == NULL) {
			t->st.drop[CD_NO_SESSION]++;
			continue;
		}
		v = b[OX_DATA_HDR_LEN] >> 4;
		if (v != 4 && v != 6) {
			t->st.drop[CD_NOT_IP]++;
			continue;
		}
		ret = ox_data_seal(t->aead, kp, b, (size_t)len, now);
		if (ret < 0) {
			/* Expired keys: the tick starts the handshake. */
			count_ox(t, ret);
			continue;
		}
		t->tx_iov[n].iov_base = b;
		t->tx_iov[n].iov_len = (size_t)ret;
		n++;
	}
	if (n)
		tx_flush(t, n, now);
}

/* --------------------------------------------------------------- timers */

static void
on_tick(struct tunnel *t)
{
	uint64_t now = ox_mono_ns(), exp;
	struct ox_keypair *kp = ox_peer_current(&t->peer);

	/* The expiry count does not matter: every tick looks at the clock. */
	if (read(t->tfd, &exp, sizeof(exp)) < 0)
		exp = 0;
	if (t->in.pending) {
		if (now - t->hs_sent_ns >= OX_REKEY_TIMEOUT_NS) {
			if (!t->hs_warned && now - t->hs_first_ns >= OX_REKEY_ATTEMPT_NS) {
				say("no answer from the relay %s for %llu s; still trying every "
				    "%llu s\n", t->server_str,
				    (unsigned long long)(OX_REKEY_ATTEMPT_NS / NS_PER_S),
				    (unsigned long long)(OX_REKEY_TIMEOUT_NS / NS_PER_S));
				t->hs_warned = true;
			}
			hs_begin(t, now);
		}
	} else if (kp == NULL) {
		hs_begin(t, now);
	} else if (ox_keypair_needs_rekey(kp, now)) {
		verbose(t, "keys are due for renewal\n");
		hs_begin(t, now);
	}
	if (t->established) {
		if (now - t->last_rx_ns >= 2 * t->keepalive_ns + SILENCE_SLACK_NS) {
			say("server silent for %llu s, re-handshaking\n",
			    (unsigned long long)((now - t->last_rx_ns) / NS_PER_S));
			t->established = false;
			if (!t->in.pending)
				hs_begin(t, now);
		} else if (kp != NULL &&
			   (now - t->last_tx_ns >= t->keepalive_ns ||
			    (now - t->last_rx_ns >= t->keepalive_ns &&
			     now - t->last_ka_ns >= t->keepalive_ns))) {
			/* Nothing sent, or sent without an answer: ask for an
			 * ACK so silence means the relay is gone. */
			send_keepalive(t, now);
		}
	}
	if (t->conf->verbose && now >= t->next_stats_ns) {
		t->next_stats_ns = now + STATS_EVERY_NS;
		stats_print(t, "");
	}
	if (t->conf->duration_s &&
	    now - t->start_ns >= (uint64_t)t->conf->duration_s * NS_PER_S)
		t->stop = true;
}

static void
on_signal(struct tunnel *t)
{
	struct signalfd_siginfo si;

	while (read(t->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			stats_print(t, "");
			continue;
		}
		say("%s: disconnecting\n", strsignal((int)si.ssi_signo));
		t->stop = true;
	}
}

/* ------------------------------------------------------------------ up */

static int
run(struct tunnel *t)
{
	struct epoll_event ev[8];
	int n, i;

	t->start_ns = ox_mono_ns();
	t->next_stats_ns = t->start_ns + STATS_EVERY_NS;
	hs_begin(t, t->start_ns);
	while (!t->stop) {
		n = epoll_wait(t->ep, ev, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			say("epoll: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n && !t->stop; i++) {
			if (ev[i].data.fd == t->udp)
				on_udp(t);
			else if (ev[i].data.fd == t->tun)
				on_tun(t);
			else if (ev[i].data.fd == t->tfd)
				on_tick(t);
			else if (ev[i].data.fd == t->sfd)
				on_signal(t);
		}
	}
	return t->failed ? 1 : 0;
}

int
client_up(const struct client_conf *c)
{
	static const uint8_t disconnect = OX_INNER_DISCONNECT;
	struct tunnel *t;
	uint8_t priv[OX_KEY_LEN];
	char err[256];
	sigset_t old;
	int ret, rc = 1;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return 1;
	t->conf = c;
	t->udp = t->tun = t->tfd = t->sfd = t->ep = -1;
	t->nl.fd = -1;
	ox_peer_init(&t->peer);
	sigemptyset(&old);
	ret = ox_key_load(c->key_file, priv, err, sizeof(err));
	if (ret != 0) {
		say("%s\n", err);
		goto out;
	}
	ret = ox_initiator_init(&t->in, priv, c->server_key);
	sodium_memzero(priv, sizeof(priv));
	if (ret != 0) {
		say("%s holds a degenerate key\n", c->key_file);
		goto out;
	}
	t->rx = calloc(BURST, GRO_BUF);
	t->tx = calloc(BURST, TX_BUF);
	t->aead = ox_aead_create(OX_AEAD_AUTO);
	if (t->rx == NULL || t->tx == NULL || t->aead == NULL) {
		say("out of memory\n");
		goto out;
	}
	bufs_init(t);
	if (udp_open(t) != 0 || tun_open(t) != 0)
		goto out;
	ret = nl_open(&t->nl);
	if (ret != 0) {
		say("rtnetlink: %s\n", strerror(-ret));
		goto out;
	}
	ret = loop_open(t, &old);
	if (ret != 0) {
		say("event loop: %s\n", strerror(-ret));
		goto out;
	}
	say("tunnel %s to relay %s, UDP GRO %s\n", c->tun, t->server_str, t->gro ? "on" : "off");
	rc = run(t);
	if (ox_peer_current(&t->peer) != NULL)
		send_ctl(t, &disconnect, 1, ox_mono_ns());
	stats_print(t, rc == 0 ? "exit: " : "failed: ");
out:
	routes_del(t);
	sigprocmask(SIG_SETMASK, &old, NULL);
	ox_initiator_wipe(&t->in);
	ox_peer_wipe(&t->peer);
	if (t->aead != NULL)
		ox_aead_free(t->aead);
	nl_close(&t->nl);
	if (t->ep >= 0)
		close(t->ep);
	if (t->tfd >= 0)
		close(t->tfd);
	if (t->sfd >= 0)
		close(t->sfd);
	if (t->tun >= 0)
		close(t->tun);
	if (t->udp >= 0)
		close(t->udp);
	free(t->rx);
	free(t->tx);
	free(t);
	return rc;
}
