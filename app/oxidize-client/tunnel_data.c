/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data path and the counters: a datagram from the relay classified and
 * opened in place, its plaintext to the TUN device or to the handshake side.
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

const char *const client_drop_names[CD_MAX] = {
#define CD_NAME(n, s) s,
	CLIENT_DROPS(CD_NAME)
#undef CD_NAME
};

void
cli_count_ox(struct tunnel *t, int ret)
{
	if (ret < 0 && -ret < OX_DROP_MAX)
		t->st.ox_drop[-ret]++;
}

void
cli_stats_print(const struct tunnel *t, const char *what)
{
	const struct client_stats *s = &t->st;
	char line[2048];
	size_t off, mark;
	int i;

	off = (size_t)snprintf(
		line, sizeof(line),
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
	if (t->n_relays > 1 && off < sizeof(line))
		off += (size_t)snprintf(line + off, sizeof(line) - off, ", failovers %llu",
					(unsigned long long)s->failovers);
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

static void
on_data(struct tunnel *t, uint8_t *buf, size_t len, uint64_t now)
{
	const uint8_t *pkt;
	uint8_t *p = buf + OX_DATA_HDR_LEN;
	size_t off = 0, plen;
	int n, ret;

	n = ox_peer_open(t->aead, &t->peer, buf, len, now);
	if (n < 0) {
		cli_count_ox(t, n);
		return;
	}
	cli_heard(t, now);
	if (n == 0)
		return;
	if (ox_inner_is_ip(p[0])) {
		cli_tun_write(t, p, (size_t)n);
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
		cli_send_ctl(t, p, (size_t)n, now);
		return;
	case OX_INNER_ACK:
		t->st.acks++;
		return;
	case OX_INNER_DISCONNECT:
		say("relay ended the session; handshaking again\n");
		ox_peer_wipe(&t->peer);
		t->established = false;
		if (!t->in.pending)
			cli_hs_begin(t, now);
		return;
	case OX_INNER_CONFIG: {
		struct ox_config cfg;

		ret = ox_config_get(p, (size_t)n, &cfg);
		if (ret < 0) {
			cli_count_ox(t, ret);
			return;
		}
		t->cfg_asks = 0; /* answered: ask no more this session */
		if (t->conf->dns_mode != CLIENT_DNS_RELAY)
			return;
		if (cfg.n_dns == 0 && !t->cfg_said_none) {
			say("relay hands out no DNS servers: names resolve as before, outside "
			    "the tunnel (--dns to choose some)\n");
			t->cfg_said_none = true;
		}
		cli_dns_set(t, &cfg);
		return;
	}
	case OX_INNER_BATCH:
		while ((ret = ox_batch_next(p, (size_t)n, &off, &pkt, &plen)) == 1)
			cli_tun_write(t, pkt, plen);
		if (ret < 0)
			cli_count_ox(t, ret);
		return;
	default:
		t->st.ox_drop[OX_DROP_BAD_INNER]++;
	}
}

void
cli_on_datagram(struct tunnel *t, uint8_t *buf, size_t len, uint64_t now)
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
		cli_on_response(t, buf, len, now);
		return;
	case OX_MSG_COOKIE:
		ret = ox_initiator_consume_cookie(&t->in, buf, len, now);
		if (ret != 0) {
			cli_count_ox(t, ret);
			return;
		}
		/* The timer resends with mac2 after REKEY_TIMEOUT (4.2). */
		t->st.cookies++;
		verbose(t, "relay is under load: cookie taken, retrying in %llu s\n",
			(unsigned long long)(OX_REKEY_TIMEOUT_NS / NS_PER_S));
		return;
	default:
		cli_count_ox(t, ret < 0 ? ret : -OX_DROP_UNEXPECTED);
	}
}
