/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef CLI_TUNNEL_H
#define CLI_TUNNEL_H
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
 *
 * The files, by role:
 *   tunnel_io.c    sockets and batching: TUN, UDP, epoll, recvmmsg/sendmmsg
 *   tunnel_net.c   routes and the TUN device's addresses
 *   tunnel_hs.c    the handshake and the timers
 *   tunnel_fleet.c the relays of a fleet: the fastest first, the next on failure
 *   tunnel_dns.c   the relay's DNS servers set while the tunnel is up
 *   tunnel_data.c  the data path and the counters
 *   tunnel.c       `up`: setting it all up, the loop, the teardown
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "client.h"

#define BURST 32
#define GRO_BUF 65536	       /* one GRO super-datagram */
#define TX_BUF OX_MAX_DATAGRAM /* header, packet, tag */
#define CTL_BUF (OX_DATA_OVERHEAD + 128)
#define TICK_NS (UINT64_C(250) * 1000000)
#define NS_PER_S UINT64_C(1000000000)
#define SILENCE_SLACK_NS (UINT64_C(5) * NS_PER_S)
/* Traffic sent and nothing authenticated back for ASK_NS: a KEEPALIVE
 * asks the relay for an ACK; for DEAD_NS: the relay is gone, the client
 * handshakes again (with the next relay when it has several). */
#define ASK_NS (UINT64_C(1) * NS_PER_S)
#define DEAD_NS (UINT64_C(3) * NS_PER_S)
#define RANK_NS (UINT64_C(1) * NS_PER_S) /* OXPI answers awaited at start */
#define RANK_PROBES 3			 /* OXPI probes per relay at start */
#define STATS_EVERY_NS (UINT64_C(10) * NS_PER_S)
#define KEEPALIVE_NONCE 8
#define SOCK_BUF (4 << 20)

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
/* clang-format off */
#define CD_ENUM(n, s) CD_##n,
	CLIENT_DROPS(CD_ENUM)
#undef CD_ENUM
	CD_MAX
	/* clang-format on */
};

struct client_stats {
	uint64_t rx_dgrams, rx_bytes; /* UDP datagrams in (GRO segments apart) */
	uint64_t rx_gro;	      /* super-datagrams GRO made of several */
	uint64_t tx_dgrams, tx_bytes;
	uint64_t tun_in, tun_out; /* IP packets read from / written to TUN */
	uint64_t hs_sent, hs_done, cookies;
	uint64_t keepalives, acks;
	uint64_t failovers; /* switches to another relay */
	uint64_t ox_drop[OX_DROP_MAX];
	uint64_t drop[CD_MAX];
};

/* One relay of the fleet, resolved (tunnel_fleet.c). */
struct cli_relay {
	struct sockaddr_storage sa;
	socklen_t salen;
	struct client_prefix addr; /* as a host prefix */
	char str[INET6_ADDRSTRLEN + 8];
	int64_t rtt_ns; /* best OXPI round trip at start; -1: no answer */
};

struct tunnel {
	const struct client_conf *conf;
	int udp, tun, tfd, sfd, ep;
	int tun_index;
	struct nl nl;
	struct ox_aead *aead;
	struct ox_initiator in;
	struct ox_peer peer;
	struct client_prefix server; /* the relay in use, as a host prefix */
	char server_str[INET6_ADDRSTRLEN + 8];
	struct cli_relay relays[CLIENT_MAX_SERVERS];
	unsigned int n_relays;
	unsigned int order[CLIENT_MAX_SERVERS]; /* fastest first */
	unsigned int cur;			/* relays[order[cur]] is in use */
	bool gro;

	/* What the TUN device carries now. */
	bool configured;
	struct client_prefix addr4, addr6; /* family 0: none */
	unsigned int mtu;
	struct nl_route added[CLIENT_MAX_ROUTES * 2 + CLIENT_MAX_SERVERS]; /* to remove at exit */
	unsigned int n_added;

	/* Timers, CLOCK_MONOTONIC nanoseconds. */
	uint64_t start_ns;
	uint64_t hs_sent_ns;  /* last initiation */
	uint64_t hs_first_ns; /* first initiation of the series; 0: none */
	bool hs_warned;	      /* REKEY_ATTEMPT_TIME passed in this series */
	bool established;     /* keys agreed and the relay not silent */
	uint64_t last_tx_ns, last_rx_ns, last_ka_ns;
	uint64_t unanswered_ns; /* first send since the last authenticated receive */
	uint64_t keepalive_ns;
	uint64_t next_stats_ns;
	bool stop;
	bool failed; /* stopped by an error */

	/* DNS (tunnel_dns.c): how it was set (0: not), and to what; the
	 * relay's CONFIG asked for after each new session. */
	uint8_t dns_via;
	struct ox_config dns_cur;
	uint8_t cfg_asks; /* CONFIG_REQUESTs sent for this session; 0: none due */
	uint64_t cfg_ask_ns;
	bool cfg_said_none;

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

#define say(...) \
	do { \
		fprintf(stderr, "oxidize-client: " __VA_ARGS__); \
	} while (0)
#define verbose(t, ...) \
	do { \
		if ((t)->conf->verbose) \
			say(__VA_ARGS__); \
	} while (0)

/* Something went to the relay / came from it authenticated. */
static inline void
cli_sent(struct tunnel *t, uint64_t now)
{
	t->last_tx_ns = now;
	if (t->unanswered_ns == 0)
		t->unanswered_ns = now;
}

static inline void
cli_heard(struct tunnel *t, uint64_t now)
{
	t->last_rx_ns = now;
	t->unanswered_ns = 0;
}

/* tunnel_io.c */
int cli_tun_open(struct tunnel *t);
int cli_udp_open(struct tunnel *t);
int cli_udp_reopen(struct tunnel *t);
int cli_loop_open(struct tunnel *t, sigset_t *old);
void cli_bufs_init(struct tunnel *t);
int cli_udp_send(struct tunnel *t, const uint8_t *buf, size_t len, uint64_t now);
void cli_tun_write(struct tunnel *t, const uint8_t *pkt, size_t len);
void cli_on_udp(struct tunnel *t);
void cli_on_tun(struct tunnel *t);

/* tunnel_fleet.c */
int cli_relays_resolve(struct tunnel *t);
void cli_relays_rank(struct tunnel *t);
void cli_relay_next(struct tunnel *t, uint64_t now, const char *why);

/* tunnel_net.c */
const char *cli_prefix_str(const struct client_prefix *p, char *buf, size_t len);
void cli_routes_del(struct tunnel *t);
int cli_configure(struct tunnel *t, const struct ox_hs_payload *pl);

/* tunnel_hs.c */
int cli_send_ctl(struct tunnel *t, const uint8_t *plain, size_t len, uint64_t now);
void cli_hs_begin(struct tunnel *t, uint64_t now);
void cli_on_response(struct tunnel *t, const uint8_t *buf, size_t len, uint64_t now);
void cli_on_tick(struct tunnel *t);
void cli_on_signal(struct tunnel *t);

/* tunnel_data.c */
void cli_count_ox(struct tunnel *t, int ret);
void cli_stats_print(const struct tunnel *t, const char *what);
void cli_on_datagram(struct tunnel *t, uint8_t *buf, size_t len, uint64_t now);

extern const char *const client_drop_names[CD_MAX];

void cli_config_ask(struct tunnel *t, uint64_t now);

/* tunnel_dns.c */
#define CONFIG_ASKS 5 /* CONFIG_REQUESTs a session sends, one a second */
/* Put back the DNS settings an earlier run left (its state file). */
int cli_dns_recover(const struct client_conf *c);
/* Set these DNS servers while the tunnel is up (the same again: nothing). */
int cli_dns_set(struct tunnel *t, const struct ox_config *cfg);
/* Put the system's DNS settings back. */
void cli_dns_restore(struct tunnel *t);

#endif /* CLI_TUNNEL_H */
