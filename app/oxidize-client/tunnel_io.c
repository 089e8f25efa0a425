/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sockets and batching: the TUN device, the UDP socket to the relay (GRO on
 * receive), epoll, and the bursts in and out (recvmmsg, sendmmsg).
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

#include "tunnel.h"

int
cli_tun_open(struct tunnel *t)
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
		    errno == EPERM   ? " (needs CAP_NET_ADMIN)"
		    : errno == EBUSY ? " (in use)"
				     : "");
		return ret;
	}
	t->tun_index = (int)if_nametoindex(ifr.ifr_name);
	if (t->tun_index == 0)
		return -errno;
	return 0;
}

/* A socket connected to the relay in use, t->relays[t->order[t->cur]]. */
int
cli_udp_open(struct tunnel *t)
{
	const struct cli_relay *r = &t->relays[t->order[t->cur]];
	int one = 1, sz = SOCK_BUF, ret;

	t->server = r->addr;
	memcpy(t->server_str, r->str, sizeof(t->server_str));
	t->udp = socket(r->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->udp < 0 || connect(t->udp, (const struct sockaddr *)&r->sa, r->salen) != 0) {
		ret = -errno;
		say("%s: %s\n", t->server_str, strerror(errno));
		return ret;
	}
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

/* Another relay: a fresh socket (its family may differ), in the loop in
 * place of the old one, whose queued datagrams go with it. */
int
cli_udp_reopen(struct tunnel *t)
{
	int ret;

	if (t->udp >= 0)
		close(t->udp); /* also leaves the epoll set */
	t->udp = -1;
	ret = cli_udp_open(t);
	if (ret == 0)
		ret = epoll_add(t, t->udp);
	return ret;
}

int
cli_loop_open(struct tunnel *t, sigset_t *old)
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
	if (t->sfd < 0 || t->tfd < 0 || t->ep < 0 || timerfd_settime(t->tfd, 0, &its, NULL) != 0)
		return -errno;
	if (epoll_add(t, t->udp) || epoll_add(t, t->tun) || epoll_add(t, t->tfd) ||
	    epoll_add(t, t->sfd))
		return -errno;
	return 0;
}

void
cli_bufs_init(struct tunnel *t)
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

int
cli_udp_send(struct tunnel *t, const uint8_t *buf, size_t len, uint64_t now)
{
	if (send(t->udp, buf, len, 0) != (ssize_t)len) {
		t->st.drop[CD_UDP_SEND]++;
		return -errno;
	}
	t->st.tx_dgrams++;
	t->st.tx_bytes += len;
	cli_sent(t, now);
	return 0;
}

void
cli_tun_write(struct tunnel *t, const uint8_t *pkt, size_t len)
{
	if (write(t->tun, pkt, len) != (ssize_t)len) {
		t->st.drop[CD_TUN_WRITE]++;
		return;
	}
	t->st.tun_out++;
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

void
cli_on_udp(struct tunnel *t)
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
			cli_on_datagram(t, t->rx[i] + off, seg, now);
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
		cli_sent(t, now);
	}
}

void
cli_on_tun(struct tunnel *t)
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
			cli_count_ox(t, ret);
			continue;
		}
		t->tx_iov[n].iov_base = b;
		t->tx_iov[n].iov_len = (size_t)ret;
		n++;
	}
	if (n)
		tx_flush(t, n, now);
}
