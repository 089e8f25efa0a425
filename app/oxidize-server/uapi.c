/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * WireGuard's cross-platform userspace API (wireguard.com/xplatform), so
 * that the stock `wg` of wireguard-tools reads a running relay: a unix
 * socket /var/run/wireguard/NAME.sock (mode 0600, root's), on which a
 * client writes "get=1\n\n" and reads key=value lines, the interface's
 * then each peer's, closed by "errno=0\n\n".
 *
 * "set=1\n...\n\n" changes peers as `wg set` and `wg syncconf` say: the
 * allow-list file is written anew (through a renamed file, its mode kept)
 * and read again as at a SIGHUP, so the file stays the one source of
 * truth and a restart keeps what was set; a request the relay would refuse
 * in any part changes nothing and is answered errno=-EINVAL (or -EPERM for
 * what only a restart changes: the key, the port), negated as wireguard-go
 * answers and wg reads it.
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
	/* A buffer before the first vsnprintf: no arithmetic on NULL. */
	if (o->b == NULL) {
		o->b = malloc(4096);
		if (o->b == NULL) {
			o->failed = true;
			return;
		}
		o->cap = 4096;
		o->len = 0;
	}
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
		size_t cap = o->cap * 2;
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
put_peer(struct srv_relay *r, const struct ox_allow_entry *e, uint64_t now, struct outbuf *o)
{
	struct relay_peer_status st;
	struct ox_tunnel_addr a;
	char s4[INET_ADDRSTRLEN], s6[INET6_ADDRSTRLEN], ep[64];
	uint32_t v4, i;
	void *data;

	put_hex(o, "public_key", e->key);
	put_hex(o, "preshared_key", e->psk);
	if (rte_hash_lookup_data(r->by_key, e->key, &data) >= 0) {
		relay_peer_status(r, data, now, &st);
		put(o, "endpoint=%s\n", relay_ep_str(&st.ep, ep, sizeof(ep)));
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
	/* The subnets routed to it. */
	for (i = 0; i < e->route_n; i++) {
		const struct ox_allow_route *rt = &r->allow->routes[e->route_first + i];

		ox_allow_route_str(rt, ep, sizeof(ep));
		put(o, "allowed_ip=%s\n", ep);
	}
	put(o, "protocol_version=1\n");
}

/* Peers one part of a get holds: a million listed keys are sent over many
 * control loops, each spending about as long on it as on a burst of
 * handshakes, while the client reads what came before. */
#define GET_PART 256

/* get=1: the interface, then every listed key, GET_PART at a time; the
 * last part ends with errno (EAGAIN if the list was reloaded meanwhile:
 * what came before is of another list, and wg says so). */
static void
do_get(struct srv_relay *r, struct uapi_conn *c, uint64_t now, struct outbuf *o)
{
	uint8_t priv[OX_KEY_LEN];
	uint32_t end;

	if (!c->get_more) {
		ox_hs_private_key(r->hs, priv);
		put_hex(o, "private_key", priv);
		sodium_memzero(priv, sizeof(priv));
		put(o, "listen_port=%u\n", (unsigned int)r->srv->conf.ports.port[0]);
		c->get_more = true;
		c->get_next = 0;
		c->get_reloads = r->reloads;
	}
	if (r->reloads != c->get_reloads) {
		put(o, "errno=%d\n\n", -EAGAIN);
		c->get_more = false;
		return;
	}
	end = RTE_MIN(r->allow->n, c->get_next + GET_PART);
	for (; c->get_next < end; c->get_next++)
		put_peer(r, &r->allow->e[c->get_next], now, o);
	if (c->get_next == r->allow->n) {
		put(o, "errno=0\n\n");
		c->get_more = false;
	}
}

/* -------------------------------------------------------------- set=1 */

/* One peer of a set request. */
struct set_peer {
	uint8_t key[OX_KEY_LEN];
	uint8_t psk[OX_KEY_LEN];
	bool remove, update_only, has_psk, replace_ips;
	bool has_v4, has_v6;
	uint32_t v4; /* host order */
	uint8_t v6[16];
	struct ox_allow_route *routes; /* allowed IPs shorter than a host's */
	uint32_t n_routes;
};

#define SET_PEERS_MAX 4096 /* peers one request may name (64 KiB of it) */

static int
hex_key(const char *v, uint8_t out[OX_KEY_LEN])
{
	size_t n;

	if (strlen(v) != 2 * OX_KEY_LEN ||
	    sodium_hex2bin(out, OX_KEY_LEN, v, 2 * OX_KEY_LEN, NULL, &n, NULL) != 0 ||
	    n != OX_KEY_LEN)
		return -EINVAL;
	return 0;
}

/* An allowed IP of a peer: its host address (a /32 or /128), or a subnet
 * routed to it (host bits clear, as in the allow-list). */
static int
add_ip(struct set_peer *p, const char *v, char *why, size_t whylen)
{
	struct ox_allow_route rt = { 0 };
	uint8_t b[16], depth;

	if (strchr(v, '/') == NULL) {
		snprintf(why, whylen, "allowed_ip %s: no prefix length", v);
		return -EINVAL;
	}
	if (ox_policy_parse_prefix(v, &rt.v6, b, &depth) != 0) {
		snprintf(why, whylen, "allowed_ip %s: not ADDR/LEN", v);
		return -EINVAL;
	}
	if (!rt.v6 && depth == 32 && !p->has_v4) {
		p->v4 = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
		p->has_v4 = true;
		return 0;
	}
	if (rt.v6 && depth == 128 && !p->has_v6) {
		memcpy(p->v6, b, 16);
		p->has_v6 = true;
		return 0;
	}
	if (depth == (rt.v6 ? 128 : 32)) {
		snprintf(why, whylen,
			 "allowed_ip %s: a peer has one IPv4 and one IPv6 address of its own; "
			 "more are subnets (shorter prefixes)",
			 v);
		return -EINVAL;
	}
	if (p->n_routes % 16 == 0) {
		struct ox_allow_route *n;

		if (p->n_routes >= OX_ALLOW_ROUTES_PER_LINE) {
			snprintf(why, whylen, "allowed_ip %s: more than %u subnets for one peer", v,
				 OX_ALLOW_ROUTES_PER_LINE);
			return -E2BIG;
		}
		n = realloc(p->routes, sizeof(*n) * (p->n_routes + 16));
		if (n == NULL)
			return -ENOMEM;
		p->routes = n;
	}
	memcpy(rt.addr, b, 16);
	rt.depth = depth;
	p->routes[p->n_routes++] = rt;
	return 0;
}

/* Parse a set request into its peers. @return 0, or -errno with why. */
static int
parse_set(struct srv_relay *r, char *req, struct set_peer *peers, unsigned int *n_peers,
	  bool *replace_peers, char *why, size_t whylen)
{
	struct set_peer *p = NULL;
	char *line, *save = NULL, *v;
	uint8_t k[OX_KEY_LEN], mine[OX_KEY_LEN];

	*n_peers = 0;
	*replace_peers = false;
	for (line = strtok_r(req, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		v = strchr(line, '=');
		if (v == NULL) {
			snprintf(why, whylen, "'%.40s': not key=value", line);
			return -EINVAL;
		}
		*v++ = '\0';
		if (strcmp(line, "set") == 0) {
			continue;
		} else if (strcmp(line, "public_key") == 0) {
			if (*n_peers == SET_PEERS_MAX || hex_key(v, k) != 0) {
				snprintf(why, whylen,
					 "public_key: not a hex key, or too many peers");
				return -EINVAL;
			}
			p = &peers[(*n_peers)++];
			memset(p, 0, sizeof(*p));
			memcpy(p->key, k, OX_KEY_LEN);
		} else if (p == NULL && strcmp(line, "private_key") == 0) {
			ox_hs_private_key(r->hs, mine);
			if (hex_key(v, k) != 0 || sodium_memcmp(k, mine, OX_KEY_LEN) != 0) {
				sodium_memzero(mine, sizeof(mine));
				sodium_memzero(k, sizeof(k));
				snprintf(why, whylen,
					 "the private key changes only with a restart "
					 "(--key)");
				return -EPERM;
			}
			sodium_memzero(mine, sizeof(mine));
			sodium_memzero(k, sizeof(k));
		} else if (p == NULL && strcmp(line, "listen_port") == 0) {
			if (strtoul(v, NULL, 10) != r->srv->conf.ports.port[0]) {
				snprintf(why, whylen,
					 "the port changes only with a restart (--port)");
				return -EPERM;
			}
		} else if (p == NULL && strcmp(line, "fwmark") == 0) {
			if (strcmp(v, "0") != 0) {
				snprintf(why, whylen,
					 "fwmark: the relay sends from the data plane");
				return -EINVAL;
			}
		} else if (p == NULL && strcmp(line, "replace_peers") == 0) {
			*replace_peers = strcmp(v, "true") == 0;
		} else if (p != NULL && strcmp(line, "remove") == 0) {
			p->remove = strcmp(v, "true") == 0;
		} else if (p != NULL && strcmp(line, "update_only") == 0) {
			p->update_only = strcmp(v, "true") == 0;
		} else if (p != NULL && strcmp(line, "preshared_key") == 0) {
			if (hex_key(v, p->psk) != 0) {
				snprintf(why, whylen, "preshared_key: not a hex key");
				return -EINVAL;
			}
			p->has_psk = true;
		} else if (p != NULL && strcmp(line, "replace_allowed_ips") == 0) {
			p->replace_ips = strcmp(v, "true") == 0;
		} else if (p != NULL && strcmp(line, "allowed_ip") == 0) {
			if (add_ip(p, v, why, whylen) != 0)
				return -EINVAL;
		} else if (p != NULL && (strcmp(line, "endpoint") == 0 ||
					 strcmp(line, "persistent_keepalive_interval") == 0 ||
					 strcmp(line, "protocol_version") == 0)) {
			/* The relay is the responder: endpoints are what the
			 * peers say, keepalives theirs. Taken, not kept. */
		} else {
			snprintf(why, whylen, "'%.40s': not a key this relay takes", line);
			return -EINVAL;
		}
	}
	return 0;
}

/* The allow-list file's lines (NUL-terminated in place). */
struct lines {
	char *orig; /* the file as it was */
	char *text; /* the same, split into lines */
	size_t len;
	char **l;
	unsigned int n;
};

static int
read_lines(const char *path, struct lines *ls, mode_t *mode)
{
	struct stat st;
	size_t got = 0;
	ssize_t k;
	char *c;
	int fd;

	memset(ls, 0, sizeof(*ls));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || (ls->text = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	*mode = st.st_mode & 0777;
	while (got < (size_t)st.st_size && (k = read(fd, ls->text + got, st.st_size - got)) > 0)
		got += (size_t)k;
	close(fd);
	ls->text[got] = '\0';
	ls->len = got;
	ls->orig = strdup(ls->text);
	ls->l = malloc(sizeof(*ls->l) * (got + 2));
	if (ls->l == NULL || ls->orig == NULL)
		return -ENOMEM;
	for (c = ls->text; *c != '\0' || (c == ls->text && got == 0);) {
		char *nl = strchr(c, '\n');

		ls->l[ls->n++] = c;
		if (nl == NULL)
			break;
		*nl = '\0';
		c = nl + 1;
	}
	return 0;
}

static void
free_lines(struct lines *ls)
{
	if (ls->orig != NULL)
		sodium_memzero(ls->orig, strlen(ls->orig));
	free(ls->orig);
	if (ls->text != NULL)
		sodium_memzero(ls->text, ls->len);
	free(ls->text);
	free(ls->l);
}

static bool
route_in(const struct ox_allow_route *rt, const struct ox_allow_route *l, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (ox_allow_route_eq(&l[i], rt))
			return true;
	return false;
}

/* A line's subnets: those it had (@p a), then those added (@p b). */
static void
put_routes(struct outbuf *o, const struct ox_allow_route *a, uint32_t na,
	   const struct ox_allow_route *b, uint32_t nb)
{
	char s[64];
	uint32_t i;

	for (i = 0; i < na + nb; i++) {
		const struct ox_allow_route *rt = i < na ? &a[i] : &b[i - na];

		if (i >= na && (route_in(rt, a, na) || route_in(rt, b, i - na)))
			continue;
		ox_allow_route_str(rt, s, sizeof(s));
		put(o, " %s", s);
	}
}

/* The policy the old line @p e (of @p al) had, which `wg` knows nothing
 * of: its groups, rate and expiry, written as the parser reads them. */
static void
put_policy(struct outbuf *o, const struct ox_allowlist *al, const struct ox_allow_entry *e)
{
	static const struct {
		uint64_t mul;
		const char *unit;
	} units[] = { { 1000000000, "gbit" }, { 1000000, "mbit" }, { 1000, "kbit" }, { 1, "" } };
	unsigned int g, u;
	char when[32];
	struct tm tm;
	time_t t;

	if (e == NULL)
		return;
	for (g = 0; g < al->n_groups; g++)
		if (e->groups & (1ull << g))
			put(o, " group=%s", al->group[g]);
	if (e->rate != 0) {
		for (u = 0; e->rate % units[u].mul != 0; u++)
			;
		put(o, " rate=%" PRIu64 "%s", e->rate / units[u].mul, units[u].unit);
	}
	t = (time_t)e->expires;
	if (e->expires != 0 && gmtime_r(&t, &tm) != NULL &&
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%MZ", &tm) != 0)
		put(o, " expires=%s", when);
}

/* An allow-list line for a peer: key, name, fixed addresses, subnets, psk,
 * the policy the old line @p old had (NULL: none), and its comment. */
static void
put_line(struct outbuf *o, const uint8_t key[OX_KEY_LEN], const char *name, uint32_t v4,
	 const uint8_t v6[16], const struct ox_allow_route *a, uint32_t na,
	 const struct ox_allow_route *b, uint32_t nb, const uint8_t psk[OX_KEY_LEN],
	 const struct ox_allowlist *al, const struct ox_allow_entry *old, const char *comment)
{
	char b64[OX_KEY_B64_LEN + 1], s[INET6_ADDRSTRLEN];
	uint32_t n4 = htonl(v4);
	static const uint8_t zero[16];

	ox_key_to_base64(b64, key);
	put(o, "%s", b64);
	if (name[0] != '\0')
		put(o, " %s", name);
	if (v4 != 0)
		put(o, " %s", inet_ntop(AF_INET, &n4, s, sizeof(s)));
	if (memcmp(v6, zero, 16) != 0)
		put(o, " %s", inet_ntop(AF_INET6, v6, s, sizeof(s)));
	put_routes(o, a, na, b, nb);
	if (!sodium_is_zero(psk, OX_KEY_LEN)) {
		ox_key_to_base64(b64, psk);
		put(o, " psk=%s", b64);
		sodium_memzero(b64, sizeof(b64));
	}
	put_policy(o, al, old);
	if (comment != NULL)
		put(o, " %s", comment);
	put(o, "\n");
}

/* The file anew: one new file, written whole, synced and renamed over. */
static int
write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	char tmp[4096];
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.wgXXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
		ret = -errno ? -errno : -EIO;
	if (close(fd) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) != 0)
		ret = -errno;
	if (ret != 0)
		unlink(tmp);
	return ret;
}

/* set=1: the allow-list file changed as the request says, then read again
 * as at a SIGHUP; nothing changes unless all of it can. */
static int
do_set(struct srv_relay *r, char *req, char *why, size_t whylen)
{
	const char *path = r->srv->conf.allow_file;
	struct set_peer *peers;
	struct lines ls = { 0 };
	struct outbuf o = { 0 }, *repl = NULL, *line;
	struct ox_allowlist check;
	struct ox_addrpool *pool;
	bool replace_peers, *gone = NULL, *named = NULL, psk_left = false;
	unsigned int n, i, j;
	mode_t mode = 0600;
	int ret;

	peers = calloc(SET_PEERS_MAX, sizeof(*peers));
	if (peers == NULL)
		return -ENOMEM;
	ret = parse_set(r, req, peers, &n, &replace_peers, why, whylen);
	if (ret != 0)
		goto out;
	ret = read_lines(path, &ls, &mode);
	if (ret != 0) {
		snprintf(why, whylen, "allow-list %.128s: %s", path, strerror(-ret));
		goto out;
	}
	gone = calloc(ls.n + 1, sizeof(*gone));
	named = calloc(r->allow->n + 1, sizeof(*named));
	repl = calloc(ls.n + 1, sizeof(*repl));
	if (gone == NULL || named == NULL || repl == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	/* Lines of listed keys the request changes or removes. */
	for (i = 0; i < n; i++) {
		struct set_peer *p = &peers[i];
		struct ox_allow_entry *e = ox_allowlist_find(r->allow, p->key);
		struct ox_tunnel_addr cur;
		uint32_t v4 = e ? e->v4 : 0;
		uint8_t v6[16] = { 0 }, psk[OX_KEY_LEN] = { 0 };
		const char *comment = NULL;

		if (e != NULL) {
			named[e - r->allow->e] = true;
			memcpy(v6, e->v6, 16);
			memcpy(psk, e->psk, OX_KEY_LEN);
			if (e->line - 1 < ls.n) {
				comment = strchr(ls.l[e->line - 1], '#');
				gone[e->line - 1] = true;
			}
		}
		/* A listed key's line is written where it was: the pool gives
		 * addresses in file order, and they must not move. */
		line = e != NULL && e->line - 1 < ls.n ? &repl[e->line - 1] : &o;
		if (p->remove || (p->update_only && e == NULL))
			continue;
		if (p->has_psk)
			memcpy(psk, p->psk, OX_KEY_LEN);
		/* Allowed IPs that are the key's addresses already (wg
		 * showconf | wg syncconf) change nothing. */
		if ((p->has_v4 || p->has_v6 || p->replace_ips) &&
		    !(e != NULL && ox_addrpool_find(r->pool, p->key, &cur) == 0 &&
		      (!p->has_v4 || p->v4 == cur.v4) &&
		      (!p->has_v6 || memcmp(p->v6, cur.v6, 16) == 0) &&
		      (!p->replace_ips || (p->has_v4 && p->has_v6)))) {
			if (p->has_v4 || p->replace_ips)
				v4 = p->has_v4 ? p->v4 : 0;
			if (p->has_v6 || p->replace_ips)
				memcpy(v6, p->has_v6 ? p->v6 : (const uint8_t[16]){ 0 }, 16);
		}
		/* Subnets: those the request gives in place of the line's
		 * (replace_allowed_ips), or added to them. */
		{
			const struct ox_allow_route *had =
				e != NULL && !p->replace_ips ? &r->allow->routes[e->route_first]
							     : NULL;

			put_line(line, p->key, e ? e->name : "", v4, v6, had,
				 had != NULL ? e->route_n : 0, p->routes, p->n_routes, psk,
				 r->allow, e, comment);
		}
		if (line != &o)
			gone[e->line - 1] = false;
		psk_left |= !sodium_is_zero(psk, OX_KEY_LEN);
		sodium_memzero(psk, sizeof(psk));
	}
	if (replace_peers)
		for (j = 0; j < r->allow->n; j++)
			if (!named[j] && r->allow->e[j].line - 1 < ls.n)
				gone[r->allow->e[j].line - 1] = true;
	/* The new text: the old lines kept, in place, then the changed ones. */
	{
		struct outbuf all = { 0 };

		for (i = 0; i < ls.n; i++) {
			if (gone[i])
				continue;
			if (repl[i].len > 0 || repl[i].failed) {
				put(&all, "%s", repl[i].b ? repl[i].b : "");
				all.failed |= repl[i].failed;
				continue;
			}
			if (i + 1 == ls.n && ls.l[i][0] == '\0')
				break; /* the file's last newline */
			put(&all, "%s\n", ls.l[i]);
			psk_left |= strstr(ls.l[i], "psk=") != NULL;
		}
		o.failed |= all.failed;
		if (o.len > 0)
			put(&all, "%s", o.b);
		if (o.b != NULL)
			sodium_memzero(o.b, o.len);
		free(o.b);
		o = all;
	}
	if (o.failed) {
		ret = -ENOMEM;
		goto out;
	}
	/* Refused whole if the relay would refuse the file. */
	ret = ox_allowlist_parse(&check, o.b ? o.b : "", o.len, NULL, r->srv->conf.max_sessions,
				 why, whylen);
	if (ret == 0) {
		pool = relay_pool_build(&check, &r->srv->pool_conf, why, whylen);
		if (pool == NULL)
			ret = -EINVAL;
		else
			ret = relay_routes_check(r, &check, why, whylen);
		ox_allowlist_free(&check);
		ox_addrpool_free(pool);
	}
	if (ret != 0)
		goto out;
	/* Nothing to change (wg showconf | wg syncconf): nothing written. */
	if (strcmp(o.b ? o.b : "", ls.orig) == 0)
		goto out;
	/* Preshared keys in it: for root alone (the loader insists). */
	if (psk_left)
		mode &= 0700;
	ret = write_file(path, o.b ? o.b : "", o.len, mode);
	if (ret != 0) {
		snprintf(why, whylen, "allow-list %.128s not written: %s", path, strerror(-ret));
		goto out;
	}
	ret = relay_reload_allowlist(r);
	if (ret != 0)
		snprintf(why, whylen, "allow-list written but not reloaded (see the log)");
out:
	if (o.b != NULL)
		sodium_memzero(o.b, o.len);
	free(o.b);
	for (i = 0; repl != NULL && i < ls.n; i++) {
		if (repl[i].b != NULL)
			sodium_memzero(repl[i].b, repl[i].len);
		free(repl[i].b);
	}
	free(repl);
	free(gone);
	free(named);
	free_lines(&ls);
	for (i = 0; i < SET_PEERS_MAX; i++)
		free(peers[i].routes);
	sodium_memzero(peers, SET_PEERS_MAX * sizeof(*peers));
	free(peers);
	return ret;
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

	if (c->get_more) {
		do_get(r, c, now, &o);
	} else if (strncmp(c->in, "get=1\n", 6) == 0) {
		do_get(r, c, now, &o);
		r->uapi.gets++;
	} else if (strncmp(c->in, "set=1\n", 6) == 0) {
		char why[512] = "";
		int ret;

		*strstr(c->in, "\n\n") = '\0';
		ret = do_set(r, c->in, why, sizeof(why));
		if (ret == 0) {
			r->uapi.sets++;
		} else {
			r->uapi.refused++;
			SRV_LOG(WARNING, "wg set refused, nothing changed: %s", why);
		}
		put(&o, "errno=%d\n\n", ret);
	} else {
		put(&o, "errno=%d\n\n", -EINVAL);
		r->uapi.refused++;
	}
	if (o.failed) {
		free(o.b);
		o = (struct outbuf){ 0 };
		put(&o, "errno=%d\n\n", -ENOMEM);
		c->get_more = false;
	}
	if (c->out != NULL)
		sodium_memzero(c->out, c->out_len); /* a get's first part has the key */
	free(c->out);
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
		if (n > 0) {
			c->out_off += (size_t)n;
			/* A reader that keeps reading keeps its connection. */
			c->deadline_ns = now;
		}
		if (c->out_off == c->out_len && c->get_more && n >= 0) {
			handle(r, c, now); /* the get's next part */
			continue;
		}
		if ((n < 0 && errno != EAGAIN && errno != EINTR) || c->out_off == c->out_len ||
		    now > c->deadline_ns + UAPI_IDLE_NS)
			conn_close(u, c);
	}
}
