/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * WireGuard's cross-platform userspace API (wireguard.com/xplatform), so
 * that the stock `wg` of wireguard-tools reads a running relay: a unix
 * socket /var/run/wireguard/NAME.sock (mode 0600, root's), on which a
 * client writes "get=1\n\n" and reads key=value lines, the interface's
 * then each peer's, closed by "errno=0\n\n".
 *
 * Served by the control thread, which owns what it reports (the
 * allow-list, the sessions): every socket is non-blocking and polled once
 * per control loop, at most UAPI_CONNS clients at once, each with a bounded
 * request and UAPI_IDLE_NS to send it; a client that says nothing, or too
 * much, is dropped without costing the loop more than a recv(). Nothing of
 * this touches the data plane.
 *
 * Every listed key is a peer, OxTunnel and WireGuard alike: its public and
 * preshared keys, its addresses as allowed IPs, and, while it has a
 * session, its endpoint, last handshake and transfer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "relay.h"

#define UAPI_DIR "/var/run/wireguard"
#define UAPI_IDLE_NS (UINT64_C(5) * 1000000000) /* to send a whole request */
#define UAPI_REQ_MAX 65536			/* bytes of one request */

/* A growing response; on no memory it is cut and the client told ENOMEM. */
struct outbuf {
	char *b;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) put(struct outbuf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->b + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 4096;
		char *nb;

		while (cap - o->len <= (size_t)n)
			cap *= 2;
		nb = realloc(o->b, cap);
		if (nb == NULL) {
			o->failed = true;
			return;
		}
		o->b = nb;
		o->cap = cap;
	}
}

static void
put_hex(struct outbuf *o, const char *key, const uint8_t k[OX_KEY_LEN])
{
	char hex[2 * OX_KEY_LEN + 1];

	sodium_bin2hex(hex, sizeof(hex), k, OX_KEY_LEN);
	put(o, "%s=%s\n", key, hex);
	sodium_memzero(hex, sizeof(hex));
}

static void
put_endpoint(struct outbuf *o, const struct ox_pkt_flow *ep)
{
	char a[INET6_ADDRSTRLEN];

	/* The flow answers the client: its address and port are the dst. */
	inet_ntop(ep->ipv6 ? AF_INET6 : AF_INET, ep->dst_ip, a, sizeof(a));
	put(o, ep->ipv6 ? "endpoint=[%s]:%u\n" : "endpoint=%s:%u\n", a,
	    (unsigned int)ntohs(ep->dst_port));
}

static void
put_peer(struct srv_relay *r, const struct ox_allow_entry *e, uint64_t now, struct outbuf *o)
{
	struct relay_peer_status st;
	struct ox_tunnel_addr a;
	char s4[INET_ADDRSTRLEN], s6[INET6_ADDRSTRLEN];
	uint32_t v4;
	void *data;

	put_hex(o, "public_key", e->key);
	put_hex(o, "preshared_key", e->psk);
	if (rte_hash_lookup_data(r->by_key, e->key, &data) >= 0) {
		relay_peer_status(r, data, now, &st);
		put_endpoint(o, &st.ep);
		put(o, "last_handshake_time_sec=%llu\nlast_handshake_time_nsec=%llu\n",
		    (unsigned long long)(st.hs_realtime_ns / 1000000000u),
		    (unsigned long long)(st.hs_realtime_ns % 1000000000u));
		put(o, "rx_bytes=%llu\ntx_bytes=%llu\n", (unsigned long long)st.rx_bytes,
		    (unsigned long long)st.tx_bytes);
	} else {
		put(o, "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
		       "rx_bytes=0\ntx_bytes=0\n");
	}
	/* The relay is the responder only: it keeps no keepalive of its own. */
	put(o, "persistent_keepalive_interval=0\n");
	if (ox_addrpool_find(r->pool, e->key, &a) == 0) {
		v4 = htonl(a.v4);
		inet_ntop(AF_INET, &v4, s4, sizeof(s4));
		inet_ntop(AF_INET6, a.v6, s6, sizeof(s6));
		put(o, "allowed_ip=%s/32\nallowed_ip=%s/128\n", s4, s6);
	}
	put(o, "protocol_version=1\n");
}

/* get=1: the interface, then every listed key. */
static void
do_get(struct srv_relay *r, uint64_t now, struct outbuf *o)
{
	uint8_t priv[OX_KEY_LEN];
	uint32_t i;

	ox_hs_private_key(r->hs, priv);
	put_hex(o, "private_key", priv);
	sodium_memzero(priv, sizeof(priv));
	put(o, "listen_port=%u\n", (unsigned int)r->srv->conf.port);
	for (i = 0; i < r->allow.n; i++)
		put_peer(r, &r->allow.e[i], now, o);
}

/* ------------------------------------------------------------ sockets */

static void
conn_close(struct srv_uapi *u, struct uapi_conn *c)
{
	close(c->fd);
	c->fd = -1;
	free(c->in);
	if (c->out != NULL)
		sodium_memzero(c->out, c->out_len); /* it held the private key */
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	u->open_conns--;
}

int
srv_uapi_open(struct srv_uapi *u, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	unsigned int i;
	int fd, ret;

	memset(u, 0, sizeof(*u));
	u->lfd = -1;
	for (i = 0; i < UAPI_CONNS; i++)
		u->conn[i].fd = -1;
	/* An interface name as wg takes it: nothing that walks the path. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=+.-") !=
		    strlen(name))
		return -EINVAL;
	if (snprintf(u->path, sizeof(u->path), "%s/%s.sock", UAPI_DIR, name) >=
	    (int)sizeof(u->path))
		return -ENAMETOOLONG;
	if (mkdir(UAPI_DIR, 0755) != 0 && errno != EEXIST)
		return -errno;
	memcpy(sa.sun_path, u->path, strlen(u->path) + 1);
	/* Another live process's socket stays; a dead one's is taken over. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(u->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* 0600 from the start: the socket answers with the private key. */
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret != 0 || listen(fd, UAPI_CONNS) != 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	u->lfd = fd;
	return 0;
}

void
srv_uapi_close(struct srv_uapi *u)
{
	unsigned int i;

	if (u->lfd < 0)
		return;
	for (i = 0; i < UAPI_CONNS; i++)
		if (u->conn[i].fd >= 0)
			conn_close(u, &u->conn[i]);
	close(u->lfd);
	unlink(u->path);
	u->lfd = -1;
}

/* A whole request in c->in: answer it. */
static void
handle(struct srv_relay *r, struct uapi_conn *c, uint64_t now)
{
	struct outbuf o = { 0 };

	if (strncmp(c->in, "get=1\n", 6) == 0) {
		do_get(r, now, &o);
		put(&o, "errno=0\n\n");
		r->uapi.gets++;
	} else {
		/* Not (yet) a request this relay takes: the protocol's answer. */
		put(&o, "errno=%d\n\n", strncmp(c->in, "set=1\n", 6) == 0 ? EPERM : EINVAL);
		r->uapi.refused++;
	}
	if (o.failed) {
		free(o.b);
		o = (struct outbuf){ 0 };
		put(&o, "errno=%d\n\n", ENOMEM);
	}
	c->out = o.b;
	c->out_len = o.len;
	c->out_off = 0;
}

void
relay_uapi_poll(struct srv_relay *r, uint64_t now)
{
	struct srv_uapi *u = &r->uapi;
	unsigned int i;
	ssize_t n;
	int fd;

	if (u->lfd < 0)
		return;
	while (u->open_conns < UAPI_CONNS &&
	       (fd = accept4(u->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		for (i = 0; u->conn[i].fd >= 0; i++)
			;
		u->conn[i].fd = fd;
		u->conn[i].deadline_ns = now + UAPI_IDLE_NS;
		u->open_conns++;
	}
	for (i = 0; i < UAPI_CONNS; i++) {
		struct uapi_conn *c = &u->conn[i];

		if (c->fd < 0)
			continue;
		if (c->out == NULL) {
			if (c->in == NULL && (c->in = malloc(UAPI_REQ_MAX + 1)) == NULL) {
				conn_close(u, c);
				continue;
			}
			n = recv(c->fd, c->in + c->in_len, UAPI_REQ_MAX - c->in_len, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				conn_close(u, c);
				continue;
			}
			if (n > 0) {
				c->in_len += (size_t)n;
				c->in[c->in_len] = '\0';
			}
			if (c->in_len >= 2 && strstr(c->in, "\n\n") != NULL) {
				handle(r, c, now);
			} else if (c->in_len == UAPI_REQ_MAX || now > c->deadline_ns) {
				/* Too much, or too slow: no answer owed. */
				u->dropped++;
				conn_close(u, c);
				continue;
			} else {
				continue;
			}
		}
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			c->out_off += (size_t)n;
		if ((n < 0 && errno != EAGAIN && errno != EINTR) || c->out_off == c->out_len ||
		    now > c->deadline_ns + UAPI_IDLE_NS)
			conn_close(u, c);
	}
}
