/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The handshake and the timers: initiations and their resends, the
 * response, control messages (keepalive), and the 250 ms tick that rekeys,
 * keeps alive, notices a silent relay (and fails over to the next of a
 * fleet) and ends --duration.
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

/* Seal and send a short control plaintext (empty, KEEPALIVE, ACK,
 * DISCONNECT) under the current keys. */
int
cli_send_ctl(struct tunnel *t, const uint8_t *plain, size_t len, uint64_t now)
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
		cli_count_ox(t, ret);
		return ret;
	}
	return cli_udp_send(t, t->ctl, (size_t)ret, now);
}

static void
send_keepalive(struct tunnel *t, uint64_t now)
{
	uint8_t ka[1 + KEEPALIVE_NONCE];

	ka[0] = OX_INNER_KEEPALIVE;
	randombytes_buf(ka + 1, KEEPALIVE_NONCE);
	t->last_ka_ns = now;
	if (cli_send_ctl(t, ka, sizeof(ka), now) == 0)
		t->st.keepalives++;
}

/* Ask the relay for its CONFIG (doc/oxtunnel.md 2.6): once a second until
 * one comes, CONFIG_ASKS times at most. */
void
cli_config_ask(struct tunnel *t, uint64_t now)
{
	static const uint8_t req = OX_INNER_CONFIG_REQUEST;

	if (t->cfg_asks == CONFIG_ASKS) {
		say("relay %s sent no CONFIG (a relay that does not know it?): DNS left as it "
		    "is\n",
		    t->server_str);
		t->cfg_asks = UINT8_MAX;
		return;
	}
	t->cfg_asks++;
	t->cfg_ask_ns = now;
	cli_send_ctl(t, &req, 1, now);
}

void
cli_hs_begin(struct tunnel *t, uint64_t now)
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
	cli_udp_send(t, init, sizeof(init), now);
}

void
cli_on_response(struct tunnel *t, const uint8_t *buf, size_t len, uint64_t now)
{
	struct ox_hs_payload pl;
	struct ox_keypair kp;
	char b4[INET6_ADDRSTRLEN + 8] = "", b6[INET6_ADDRSTRLEN + 8] = "";
	bool was_up = t->established;
	int ret;

	ret = ox_initiator_consume_response(&t->in, buf, len, now, &pl, &kp);
	if (ret != 0) {
		cli_count_ox(t, ret);
		return;
	}
	ox_peer_install(&t->peer, &kp, true);
	ox_keypair_wipe(&kp);
	t->st.hs_done++;
	t->hs_first_ns = 0;
	cli_heard(t, now);
	t->keepalive_ns = pl.keepalive_s ? pl.keepalive_s * NS_PER_S : OX_KEEPALIVE_NS;
	t->established = true;
	/* Key confirmation: the relay takes the keys into use on the first
	 * packet it receives under them. */
	cli_send_ctl(t, NULL, 0, now);
	if (cli_configure(t, &pl) != 0) {
		t->failed = true;
		t->stop = true;
		return;
	}
	if (was_up) {
		verbose(t, "rekeyed\n");
		return;
	}
	/* A new session: its DNS servers, given or the relay's. */
	if (t->conf->dns_mode == CLIENT_DNS_GIVEN) {
		cli_dns_set(t, &t->conf->dns);
	} else if (t->conf->dns_mode == CLIENT_DNS_RELAY) {
		t->cfg_asks = 0;
		cli_config_ask(t, now);
	}
	if (t->addr4.family)
		cli_prefix_str(&t->addr4, b4, sizeof(b4));
	if (t->addr6.family)
		cli_prefix_str(&t->addr6, b6, sizeof(b6));
	say("handshake complete: %s%s%s mtu %u%s%s\n", b4, *b4 && *b6 ? " " : "", b6, t->mtu,
	    t->n_relays > 1 ? " via relay " : "", t->n_relays > 1 ? t->server_str : "");
}

void
cli_on_tick(struct tunnel *t)
{
	uint64_t now = ox_mono_ns(), exp;
	struct ox_keypair *kp = ox_peer_current(&t->peer);

	/* The expiry count does not matter: every tick looks at the clock. */
	if (read(t->tfd, &exp, sizeof(exp)) < 0)
		exp = 0;
	if (t->in.pending) {
		if (now - t->hs_sent_ns >= OX_REKEY_TIMEOUT_NS && t->n_relays > 1) {
			/* A fleet: the next relay may answer where this one did not. */
			cli_relay_next(t, now, "did not answer the handshake");
		} else if (now - t->hs_sent_ns >= OX_REKEY_TIMEOUT_NS) {
			if (!t->hs_warned && now - t->hs_first_ns >= OX_REKEY_ATTEMPT_NS) {
				say("no answer from the relay %s for %llu s; still trying every "
				    "%llu s\n",
				    t->server_str,
				    (unsigned long long)(OX_REKEY_ATTEMPT_NS / NS_PER_S),
				    (unsigned long long)(OX_REKEY_TIMEOUT_NS / NS_PER_S));
				t->hs_warned = true;
			}
			cli_hs_begin(t, now);
		}
	} else if (kp == NULL) {
		cli_hs_begin(t, now);
	} else if (ox_keypair_needs_rekey(kp, now)) {
		verbose(t, "keys are due for renewal\n");
		cli_hs_begin(t, now);
	}
	if (t->established) {
		if (t->unanswered_ns != 0 && now - t->unanswered_ns >= DEAD_NS) {
			if (t->n_relays > 1) {
				cli_relay_next(t, now, "stopped answering");
			} else {
				say("relay %s: traffic unanswered for %llu s, re-handshaking\n",
				    t->server_str,
				    (unsigned long long)((now - t->unanswered_ns) / NS_PER_S));
				t->established = false;
				t->unanswered_ns = 0;
				if (!t->in.pending)
					cli_hs_begin(t, now);
			}
		} else if (now - t->last_rx_ns >= 2 * t->keepalive_ns + SILENCE_SLACK_NS) {
			say("server silent for %llu s, re-handshaking\n",
			    (unsigned long long)((now - t->last_rx_ns) / NS_PER_S));
			t->established = false;
			if (t->n_relays > 1)
				cli_relay_next(t, now, "went silent");
			else if (!t->in.pending)
				cli_hs_begin(t, now);
		} else if (kp != NULL &&
			   (now - t->last_tx_ns >= t->keepalive_ns ||
			    (now - t->last_rx_ns >= t->keepalive_ns &&
			     now - t->last_ka_ns >= t->keepalive_ns) ||
			    (t->unanswered_ns != 0 && now - t->unanswered_ns >= ASK_NS &&
			     now - t->last_ka_ns >= ASK_NS))) {
			/* Nothing sent, or sent without an answer: ask for an
			 * ACK so silence means the relay is gone. */
			send_keepalive(t, now);
		}
	}
	if (t->established && t->cfg_asks != 0 && t->cfg_asks != UINT8_MAX &&
	    now - t->cfg_ask_ns >= NS_PER_S)
		cli_config_ask(t, now);
	if (t->conf->verbose && now >= t->next_stats_ns) {
		t->next_stats_ns = now + STATS_EVERY_NS;
		cli_stats_print(t, "");
	}
	if (t->conf->duration_s && now - t->start_ns >= (uint64_t)t->conf->duration_s * NS_PER_S)
		t->stop = true;
}

void
cli_on_signal(struct tunnel *t)
{
	struct signalfd_siginfo si;

	while (read(t->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			cli_stats_print(t, "");
			continue;
		}
		say("%s: disconnecting\n", strsignal((int)si.ssi_signo));
		t->stop = true;
	}
}
