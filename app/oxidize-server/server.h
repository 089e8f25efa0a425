/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H
/* Shared between the files of oxidize-server. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_telemetry.h>

#include "ox_addrpool.h"
#include "ox_flash.h"
#include "ox_pkt.h"
#include "ox_policy.h"
#include "ox_ratelimit.h"
#include "ox_sessions.h"
#include "ox_tunnel.h"

extern int srv_server_logtype;
#define SRV_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, srv_server_logtype, "oxidize: " fmt "\n", ##__VA_ARGS__)

/* Why the relay is under load (srv_server.load_bits): kept on the server,
 * which outlives the relay, so that health never reads a relay being freed. */
#define SRV_LOAD_COOKIES 1u  /* initiations above --hs-load-pps: cookies required */
#define SRV_LOAD_HS_QUEUE 2u /* the handshake queue over half full */

#define SRV_MAX_BURST 512
#define SRV_MAX_QUEUES 128 /* (port, queue) pairs one server drives */
#define SRV_PREFETCH_AHEAD 4

#define SRV_MAX_UDP_PORTS 8 /* --port 51820,443,...: ox_steer's OX_STEER_MAX_PORTS */

/** The UDP ports the relay answers on. */
struct srv_ports {
	uint16_t port[SRV_MAX_UDP_PORTS]; /* host order; port[0] the first given */
	uint16_t be[SRV_MAX_UDP_PORTS];	  /* the same in network order */
	uint8_t n;
};

/** Options; every one settable by flag and in the config file. */
struct srv_server_conf {
	struct srv_ports ports; /* OxTunnel UDP ports */
	char iface[32];		/* FLASH interface; "" = use EAL's ports */
	uint16_t queues;	/* 0 = all the interface / port has */
	uint16_t burst;
	char xdp_prog[256]; /* ox_steer object */
	bool xdp_replace;
	bool force_copy;
	int busy_budget;
	uint16_t rx_desc, tx_desc;
	uint32_t drain_us;
	uint32_t stats_interval; /* seconds between log lines; 0 = none */
	uint32_t duration;	 /* seconds to run; 0 = until signalled */
	char config[256];
	char tap[16];	/* exit TAP interface; "" = none */
	char pool4[32]; /* tunnel IPv4 pool, CIDR */
	char pool6[64]; /* tunnel IPv6 pool, CIDR */
	uint32_t max_sessions;
	char key_file[256];    /* server private key; "" = echo only, no relay */
	char allow_file[256];  /* allow-list of client public keys */
	char state_file[256];  /* handshake timestamps kept across restarts; "" = none */
	uint16_t mtu;	       /* tunnel MTU given to clients */
	uint16_t keepalive;    /* keepalive interval given to clients, s */
	uint32_t idle_timeout; /* session reaped after this long silent, s */
	uint32_t hs_queue;     /* handshakes queued for the engines, in all */
	uint32_t hs_workers;   /* workers that are handshake engines too */
	uint32_t hs_load_pps;  /* initiations/s above which cookies are required */
	char exit_allow[512];  /* prefixes clients may reach, "a/n,b/m" */
	char exit_deny[512];   /* prefixes they may not */
	char exit_open[256];   /* relay host ports open to them, "udp/53,tcp/53" */
	char exit_host[512];   /* addresses refused as this host's, on it or not */
	char wg_name[16];      /* `wg` interface name (UAPI socket); "" = none */
	char c2c[8];	       /* client to client: "all", "group" or "none" */
	char c2c_allow[512];   /* group rules beside it, "from:to,..." */
	char dns[512];	       /* DNS servers handed to clients, "a,b" */
	bool probes_off;       /* OXPI probes go unanswered */
	uint32_t probe_rate;   /* probes answered per source per second; 0 = all */
	uint32_t worker_fifo;  /* SCHED_FIFO priority of worker lcores; 0 = none */
};

/** Datapath drop reasons past the outer checks (lib/pkt has those). */
#define SRV_DP_DROP_REASONS(X) \
	X(MULTI_SEGMENT, "multi_segment") \
	X(NOT_OXTUNNEL, "not_oxtunnel") \
	X(TX_FULL, "tx_full") \
	X(TAP_NOT_IP, "tap_not_ip") \
	X(TAP_NO_SESSION, "tap_no_session") \
	X(HS_QUEUE_FULL, "hs_queue_full") \
	X(HANDOFF_FULL, "handoff_full") \
	X(HANDOFF_SESSION_LIMIT, "handoff_session_limit") \
	X(EVENT_QUEUE_FULL, "event_queue_full") \
	X(SPOOFED_SRC, "spoofed_src") \
	X(INNER_MALFORMED, "inner_malformed") \
	X(INNER_TOO_BIG, "inner_too_big") \
	X(EXIT_REFUSED, "exit_refused") \
	X(TAP_SPOOFED_SRC, "tap_spoofed_src") \
	X(ROUTE_PEER_DOWN, "route_peer_down") \
	X(PROBE_LIMITED, "probe_limited") \
	X(PROBES_OFF, "probes_off") \
	X(NO_EXIT, "no_exit") \
	X(C2C_REFUSED, "c2c_refused") \
	X(RATE_FROM_PEER, "rate_from_peer") \
	X(RATE_TO_PEER, "rate_to_peer") \
	X(NO_ROOM, "no_headroom") \
	X(NO_KEYS, "no_keys") \
	X(NO_MBUF, "no_mbuf")

enum srv_dp_drop {
/* clang-format off */
#define SRV_DP_ENUM(e, s) SRV_DP_DROP_##e,
	SRV_DP_DROP_REASONS(SRV_DP_ENUM)
#undef SRV_DP_ENUM
	SRV_DP_DROP_MAX
	/* clang-format on */
};

extern const char *const srv_dp_drop_names[SRV_DP_DROP_MAX];

/** What the relay did, per lcore. */
#define RELAY_CTRS(X) \
	X(DECRYPTED, "decrypted") \
	X(TO_TAP, "to_tap") \
	X(FROM_TAP, "from_tap") \
	X(CLIENT_TO_CLIENT, "client_to_client") \
	X(KEEPALIVE, "keepalive") \
	X(ACK, "ack_sent") \
	X(CONFIG_SENT, "config_sent") \
	X(KEY_CONFIRM, "key_confirm") \
	X(HANDOFF, "handoff") \
	X(ROAMED, "roamed") \
	X(DISCONNECT, "disconnect") \
	X(HS_QUEUED, "hs_queued") \
	X(BATCH_PKTS, "batch_pkts") \
	X(KEEPALIVE_SENT, "keepalive_sent")

enum relay_ctr {
/* clang-format off */
#define RELAY_ENUM(e, s) RELAY_##e,
	RELAY_CTRS(RELAY_ENUM)
#undef RELAY_ENUM
	RELAY_CTR_MAX
	/* clang-format on */
};

extern const char *const relay_ctr_names[RELAY_CTR_MAX];

#define SRV_LOOP_GAPS 3 /* loop_gaps[k]: turns over 100 us * 10^k apart */

/** Per-lcore counters: written by that lcore only, summed by readers. */
struct srv_lcore_stats {
	uint64_t rx_pkts;
	uint64_t rx_bytes;
	uint64_t tx_pkts;
	uint64_t tx_bytes;
	uint64_t echo;
	uint64_t busy_cycles; /* cycles of loop turns that moved packets */
	uint64_t alive_tsc;   /* when the loop last came round (/oxidize/health) */
	/* Loop turns that began more than 100 us, 1 ms, 10 ms after the one
	 * before (the longest a packet arriving then waited): where the lcore
	 * ran meanwhile (its own pause: a burst, a handshake step, a wait) and
	 * where the kernel ran something else on its cpu (preempted). */
	uint64_t loop_gaps[SRV_LOOP_GAPS];
	uint64_t loop_preempted[SRV_LOOP_GAPS];
	uint64_t pkt_drops[OX_PKT_DROP_MAX];
	uint64_t dp_drops[SRV_DP_DROP_MAX];
	uint64_t ox_drops[OX_DROP_MAX]; /* OxTunnel protocol drops (lib/oxtunnel) */
	uint64_t relay[RELAY_CTR_MAX];
} __rte_cache_aligned;

/** One (port, queue) pair polled by one lcore, which also owns its TX queue. */
struct srv_queue {
	uint16_t port_id;
	uint16_t queue;
	bool tap;	  /* the exit TAP: inner IP packets from the kernel */
	bool tx_udp_csum; /* the port computes UDP checksums on send */
	uint64_t rx_pkts;
	uint64_t tx_pkts;
	struct rte_eth_dev_tx_buffer *txb;
	struct rte_ether_addr mac; /* the port's own address */
};

struct srv_worker;
struct srv_relay;
struct relay_hs_engine;
struct relay_stage;

/**
 * Hook for datagrams that are not OXPI probes (the relay's entry point).
 * Returns true if it took the mbuf (sent or freed it), false to have it
 * counted as not_oxtunnel and freed.
 */
typedef bool (*srv_dp_hook_t)(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m,
			      struct ox_pkt *p);

/**
 * Hook for packets from the exit TAP whose destination has a session (the
 * relay encrypts them for that client). Returns true if it took the mbuf.
 */
typedef bool (*srv_tap_hook_t)(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m,
			       struct ox_session *sess);

/** A worker lcore and what it owns. */
struct srv_worker {
	struct srv_lcore_stats stats; /* first: cache-aligned, hot */
	unsigned int lcore_id;
	uint16_t n_queues_polled;
	uint16_t burst;
	const struct srv_ports *ports; /* the server's conf.ports */
	uint64_t drain_tsc;
	uint64_t gap_tsc[SRV_LOOP_GAPS]; /* loop_gaps' thresholds, TSC */
	uint64_t mark_tsc, mark_cpu_ns;	 /* the thread's cpu time, read every 1 ms */
	srv_dp_hook_t hook;
	srv_tap_hook_t tap_hook;
	struct ox_sessions *sessions;		 /* shared, lock-free for readers */
	struct rte_rcu_qsbr *rcu;		 /* this lcore reports quiescent states */
	uint16_t id;				 /* position in srv_server.workers */
	struct srv_queue *tx_queue;		 /* where this lcore sends to clients */
	struct srv_queue *tap_queue;		 /* its exit TAP queue, or NULL */
	struct rte_ring *inbox;			 /* mbufs other lcores hand to this one */
	struct ox_aead *aead;			 /* this lcore's AEAD context */
	struct srv_relay *relay;		 /* NULL: echo only */
	struct relay_hs_engine *hs_engine;	 /* NULL: judges no handshakes */
	void (*poll_hook)(struct srv_worker *w); /* single-lcore: the control work */
	/* Before a burst's packets are handled one by one: what is better
	 * done for all of them at once (the relay's session lookups). */
	void (*burst_hook)(struct srv_worker *w, struct rte_mbuf **pkts, uint16_t n);
	/* After each burst the hooks took: finish what they staged. */
	void (*stage_hook)(struct srv_worker *w);
	struct relay_stage *stage;     /* the relay's work in stages, per lcore */
	uint64_t now_ns;	       /* relay: ox_mono_ns() at the current burst */
	bool probes_off;	       /* OXPI probes dropped */
	uint32_t fifo_prio;	       /* SCHED_FIFO priority to take; 0 = stay as started */
	struct ox_ratelimit *probe_rl; /* OXPI per source; NULL: unlimited */
	struct srv_queue queues[SRV_MAX_QUEUES];
} __rte_cache_aligned;

/** Port as the control plane describes it (telemetry, logs). */
struct srv_port_info {
	uint16_t port_id;
	char name[RTE_DEV_NAME_MAX_LEN];
	char iface[32];
	uint16_t queue; /* NIC queue (FLASH) or first queue */
	uint16_t n_queues;
	bool flash;
	const char *copy_mode; /* "zero-copy", "copy", "n/a" */
	const char *umem;      /* "shared", "per-queue", "n/a" */
	const char *xdp_mode;
	bool tx_udp_csum; /* RTE_ETH_TX_OFFLOAD_UDP_CKSUM offered and enabled */
};

struct srv_server {
	struct srv_server_conf conf;
	struct ox_flash flash;
	struct ox_addrpool_conf pool_conf;
	struct ox_sessions *sessions;
	uint16_t tap_port;
	bool has_tap;
	bool use_flash;
	struct rte_mempool *pool; /* the pool every RX queue uses */
	unsigned int baseline_in_use;
	uint16_t n_ports;
	struct srv_port_info ports[RTE_MAX_ETHPORTS];
	unsigned int n_workers;
	struct srv_worker *workers[RTE_MAX_LCORE];
	uint64_t start_tsc;
	uint64_t ctl_alive_tsc;	 /* the control loop last came round (rte_rdtsc) */
	uint32_t load_bits;	 /* SRV_LOAD_*: the relay's control thread says, health reads */
	struct srv_relay *relay; /* NULL without --key */
	/* Prefixes routed to peers, which the exit policy allows (the relay's
	 * live table's list; control thread). */
	const struct ox_allow_route *peer_routes;
	uint32_t n_peer_routes;
};

extern volatile bool srv_stop;

/* CPU time of the calling thread, ns (a system call, about 7,000 cycles
 * here: for sampled handshakes, a reload, a worker's loop once a ms). */
static inline uint64_t
srv_thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** Add to a counter only this lcore writes (readers may load it any time). */
static inline void
srv_ctr_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

/** Count a drop under its datapath reason and free the mbuf. */
static inline void
srv_drop_dp(struct srv_worker *w, struct rte_mbuf *m, enum srv_dp_drop why)
{
	srv_ctr_add(&w->stats.dp_drops[why], 1);
	rte_pktmbuf_free(m);
}

/**
 * Queue m for transmission on queue s of worker w. The buffer sends by
 * itself when full: what it sent then is counted here, the rest when
 * flushed.
 */
static inline void
srv_worker_tx(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m)
{
	uint16_t sent;

	srv_ctr_add(&w->stats.tx_bytes, m->pkt_len);
	sent = rte_eth_tx_buffer(s->port_id, s->queue, s->txb, m);
	if (sent) {
		srv_ctr_add(&s->tx_pkts, sent);
		srv_ctr_add(&w->stats.tx_pkts, sent);
	}
}

/* conf.c */
int srv_conf_parse(struct srv_server_conf *c, int argc, char **argv);
void srv_conf_error_stream(FILE *f);
void srv_conf_usage(const char *prog);

/* datapath.c */
int srv_worker_main(void *arg);
int srv_worker_init_txb(struct srv_worker *w, struct srv_queue *s);
unsigned int srv_worker_flush(struct srv_worker *w);
void srv_stats_sum(const struct srv_server *srv, struct srv_lcore_stats *sum);

/* exit.c */
/* Following the host's addresses: one writer, the control thread. */
struct srv_exit_watch {
	int nl;		       /* NETLINK_ROUTE, address groups; -1: none */
	bool dirty;	       /* an address changed since the live policy was built */
	bool routes_dirty;     /* the peers' routed prefixes changed (relay_routes.c) */
	bool failing;	       /* the last rebuild failed (said once) */
	unsigned int gen;      /* generation of the live policy (its rte_lpm name) */
	struct ox_policy *old; /* replaced; freed once the workers came round */
	uint64_t old_token;    /* rte_rcu_qsbr_start() when it was replaced */
	uint64_t retry_ns;     /* after a failed rebuild, not before this */
	uint64_t rebuilds, errors;
};
int srv_exit_policy(const struct srv_server *srv, const struct ox_tunnel_addr *gw,
		    struct ox_policy **out);
int srv_exit_watch_open(struct srv_exit_watch *w);
void srv_exit_watch_close(struct srv_exit_watch *w);
void srv_exit_watch_poll(struct srv_server *srv, struct srv_exit_watch *w, struct ox_policy **live,
			 const struct ox_tunnel_addr *gw, struct rte_rcu_qsbr *rcu,
			 uint64_t now_ns);

/* tap.c */
int srv_tap_setup(struct srv_server *srv);
int srv_tap_route(const struct srv_server *srv, bool add, const struct ox_allow_route *rt);
int srv_parse_pools(const struct srv_server_conf *c, struct ox_addrpool_conf *pc);

/* relay.c */
uint32_t relay_priv_size(void);
/** Most mbufs the relay can park in its handshake ring and the workers'
 * inboxes: the pool holds this many on top of the rings and bursts. */
uint32_t relay_mbufs_held(const struct srv_server_conf *c, unsigned int n_workers);
int relay_init(struct srv_server *srv);
unsigned int relay_control(struct srv_server *srv);
void relay_inbox(struct srv_worker *w, struct rte_mbuf *m);
/* A worker's turn as a handshake engine: @return handshakes judged. */
unsigned int relay_worker_hs(struct srv_worker *w);
void relay_free(struct srv_server *srv);
void relay_request_reload(void);
void relay_telemetry(const struct srv_server *srv, struct rte_tel_data *d);

/* telemetry.c */
int srv_telemetry_register(struct srv_server *srv);

#endif /* SRV_SERVER_H */
