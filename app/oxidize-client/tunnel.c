/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `oxidize-client up`: everything set up, the loop, and the teardown that
 * removes what was added. tunnel.h has the design and the other files.
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

static int
run(struct tunnel *t)
{
	struct epoll_event ev[8];
	int n, i;

	t->start_ns = ox_mono_ns();
	t->next_stats_ns = t->start_ns + STATS_EVERY_NS;
	cli_hs_begin(t, t->start_ns);
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
				cli_on_udp(t);
			else if (ev[i].data.fd == t->tun)
				cli_on_tun(t);
			else if (ev[i].data.fd == t->tfd)
				cli_on_tick(t);
			else if (ev[i].data.fd == t->sfd)
				cli_on_signal(t);
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
	cli_bufs_init(t);
	/* What a killed run left is put back before anything else. */
	cli_dns_recover(c);
	if (cli_relays_resolve(t) != 0)
		goto out;
	cli_relays_rank(t);
	if (cli_udp_open(t) != 0 || cli_tun_open(t) != 0)
		goto out;
	ret = nl_open(&t->nl);
	if (ret != 0) {
		say("rtnetlink: %s\n", strerror(-ret));
		goto out;
	}
	ret = cli_loop_open(t, &old);
	if (ret != 0) {
		say("event loop: %s\n", strerror(-ret));
		goto out;
	}
	say("tunnel %s to relay %s%s, UDP GRO %s, AEAD %s\n", c->tun, t->server_str,
	    t->n_relays > 1 ? " (first of the fleet's)" : "", t->gro ? "on" : "off",
	    ox_aead_name(t->aead));
	rc = run(t);
	if (ox_peer_current(&t->peer) != NULL)
		cli_send_ctl(t, &disconnect, 1, ox_mono_ns());
	cli_stats_print(t, rc == 0 ? "exit: " : "failed: ");
out:
	/* While the TUN link still exists (resolved keeps its settings). */
	cli_dns_restore(t);
	cli_routes_del(t);
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
