/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relays of a fleet (`--server` given more than once): they share one
 * key and one allow-list, so any of them gives this client the same
 * addresses (doc/fleet.md). At start each is asked for its OXPI round trip
 * and the fastest is used; when the one in use stops answering (traffic
 * unanswered for DEAD_NS, or a handshake for REKEY_TIMEOUT) the client
 * handshakes with the next, round the list.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sodium.h>

#include "tunnel.h"

#define PROBE_LEN 24 /* "OXPI", the relay's index, a nonce, the send time */

int
cli_relays_resolve(struct tunnel *t)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP };
	unsigned int i;

	for (i = 0; i < t->conf->n_servers; i++) {
		const struct client_server *sv = &t->conf->servers[i];
		struct cli_relay *r = &t->relays[t->n_relays];
		struct addrinfo *ai = NULL;
		char a[INET6_ADDRSTRLEN];
		int ret;

		ret = getaddrinfo(sv->host, sv->port, &hints, &ai);
		if (ret != 0) {
			say("%s: %s%s\n", sv->host, gai_strerror(ret),
			    t->conf->n_servers > 1 ? "; left out" : "");
			continue;
		}
		memset(r, 0, sizeof(*r));
		memcpy(&r->sa, ai->ai_addr, ai->ai_addrlen);
		r->salen = ai->ai_addrlen;
		r->addr.family = ai->ai_family;
		if (ai->ai_family == AF_INET) {
			memcpy(r->addr.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
			r->addr.len = 32;
		} else {
			memcpy(r->addr.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
			r->addr.len = 128;
		}
		freeaddrinfo(ai);
		inet_ntop(r->addr.family, r->addr.addr, a, sizeof(a));
		snprintf(r->str, sizeof(r->str), r->addr.family == AF_INET6 ? "[%s]:%s" : "%s:%s",
			 a, sv->port);
		r->rtt_ns = -1;
		t->order[t->n_relays] = t->n_relays;
		t->n_relays++;
	}
	if (t->n_relays == 0) {
		say("no relay address resolved\n");
		return -EINVAL;
	}
	return 0;
}

static int
by_rtt(const void *a, const void *b, void *arg)
{
	const struct tunnel *t = arg;
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;
	int64_t rx = t->relays[x].rtt_ns, ry = t->relays[y].rtt_ns;

	/* Answering relays first, fastest first; then the silent ones, and
	 * ties, in the order given. */
	if ((rx < 0) != (ry < 0))
		return rx < 0 ? 1 : -1;
	if (rx != ry && rx >= 0)
		return rx < ry ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* What a probe says: the relay it went to, this run's nonce, its time. */
static void
probe_fill(uint8_t p[PROBE_LEN], uint32_t relay, const uint8_t nonce[8], uint64_t now)
{
	memcpy(p, "OXPI", 4);
	memcpy(p + 4, &relay, 4);
	memcpy(p + 8, nonce, 8);
	memcpy(p + 16, &now, 8);
}

void
cli_relays_rank(struct tunnel *t)
{
	struct pollfd pfd[CLIENT_MAX_SERVERS];
	uint8_t nonce[8], p[PROBE_LEN], reply[PROBE_LEN + 1];
	uint64_t start = ox_mono_ns(), now;
	unsigned int i, k, answered = 0;

	if (t->n_relays < 2)
		return;
	randombytes_buf(nonce, sizeof(nonce));
	for (i = 0; i < t->n_relays; i++) {
		const struct cli_relay *r = &t->relays[i];

		pfd[i].events = POLLIN;
		pfd[i].fd = socket(r->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (pfd[i].fd >= 0 &&
		    connect(pfd[i].fd, (const struct sockaddr *)&r->sa, r->salen) != 0) {
			close(pfd[i].fd);
			pfd[i].fd = -1;
		}
		/* Spaced by the loop below: one lost probe is not a dead relay. */
		if (pfd[i].fd >= 0) {
			probe_fill(p, i, nonce, ox_mono_ns());
			if (send(pfd[i].fd, p, sizeof(p), 0) < 0)
				verbose(t, "OXPI to %s: %s\n", r->str, strerror(errno));
		}
	}
	for (k = 1; answered < t->n_relays && (now = ox_mono_ns()) - start < RANK_NS;) {
		int n = poll(pfd, t->n_relays, 50);

		for (i = 0; n > 0 && i < t->n_relays; i++) {
			struct cli_relay *r = &t->relays[i];
			uint32_t idx;
			uint64_t sent;
			ssize_t len;

			if (pfd[i].fd < 0 || !(pfd[i].revents & POLLIN))
				continue;
			while ((len = recv(pfd[i].fd, reply, sizeof(reply), 0)) >= 0) {
				memcpy(&idx, reply + 4, 4);
				memcpy(&sent, reply + 16, 8);
				/* Only the relay's own answer to this run counts. */
				if (len != PROBE_LEN || memcmp(reply, "OXPO", 4) != 0 || idx != i ||
				    sodium_memcmp(reply + 8, nonce, 8) != 0 || sent < start)
					continue;
				now = ox_mono_ns();
				if (r->rtt_ns < 0)
					answered++;
				if (r->rtt_ns < 0 || (int64_t)(now - sent) < r->rtt_ns)
					r->rtt_ns = (int64_t)(now - sent);
			}
		}
		/* The next probe of each relay, RANK_NS / 4 after the last. */
		if (k < RANK_PROBES && ox_mono_ns() - start >= k * (RANK_NS / 4)) {
			for (i = 0; i < t->n_relays; i++) {
				if (pfd[i].fd < 0)
					continue;
				probe_fill(p, i, nonce, ox_mono_ns());
				if (send(pfd[i].fd, p, sizeof(p), 0) < 0)
					verbose(t, "OXPI to %s: %s\n", t->relays[i].str,
						strerror(errno));
			}
			k++;
		}
	}
	for (i = 0; i < t->n_relays; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	qsort_r(t->order, t->n_relays, sizeof(t->order[0]), by_rtt, t);
	for (i = 0; i < t->n_relays; i++) {
		const struct cli_relay *r = &t->relays[t->order[i]];

		if (r->rtt_ns >= 0)
			say("relay %s: OXPI round trip %.2f ms\n", r->str, (double)r->rtt_ns / 1e6);
		else
			say("relay %s: no OXPI answer in %llu ms\n", r->str,
			    (unsigned long long)(RANK_NS / 1000000));
	}
}

void
cli_relay_next(struct tunnel *t, uint64_t now, const char *why)
{
	char from[sizeof(t->server_str)];
	int ret;

	memcpy(from, t->server_str, sizeof(from));
	t->cur = (t->cur + 1) % t->n_relays;
	t->st.failovers++;
	/* The old relay's keys are of no use with another: until the new
	 * handshake, packets from TUN wait in no queue but are dropped
	 * (no_session), as at start. */
	ox_peer_wipe(&t->peer);
	ox_peer_init(&t->peer);
	t->established = false;
	t->unanswered_ns = 0;
	t->hs_first_ns = 0;
	ret = cli_udp_reopen(t);
	say("relay %s %s; failing over to %s (%u of %u)\n", from, why, t->server_str, t->cur + 1,
	    t->n_relays);
	if (ret != 0) {
		/* No socket: the next tick's handshake fails to send, and the
		 * one after moves on again. */
		t->st.drop[CD_UDP_SEND]++;
		return;
	}
	cli_hs_begin(t, now);
}
