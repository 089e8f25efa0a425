/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_SERVER_H
#define OX_SERVER_H
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

extern int ox_server_logtype;
#define SRV_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_ ## level, ox_server_logtype, "oxidize: " fmt "\n", ##__VA_ARGS__)

#define OX_MAX_BURST 512
#define OX_MAX_SLOTS 128	/* (port, queue) pairs one server drives */
#define OX_PREFETCH_AHEAD 4

/** Options; every one settable by flag and in the config file. */
struct ox_server_conf {
	uint16_t port;			/* OxTunnel UDP port */
	char iface[32];			/* FLASH interface; "" = use EAL's ports */
	uint16_t queues;		/* 0 = all the interface / port has */
	uint16_t burst;
	char xdp_prog[256];		/* ox_steer object */
	bool xdp_replace;
	bool force_copy;
	int busy_budget;
	uint16_t rx_desc, tx_desc;
	uint32_t drain_us;
	uint32_t stats_interval;	/* seconds between log lines; 0 = none */
	uint32_t duration;		/* seconds to run; 0 = until signalled */
	char config[256];
	char tap[16];			/* exit TAP interface; "" = none */
	char pool4[32];			/* tunnel IPv4 pool, CIDR */
	char pool6[64];			/* tunnel IPv6 pool, CIDR */
	uint32_t max_sessions;
	char key_file[256];		/* server private key; "" = echo only, no relay */
	char allow_file[256];		/* allow-list of client public keys */
	char state_file[256];		/* handshake timestamps kept across restarts; "" = none */
	uint16_t mtu;			/* tunnel MTU given to clients */
	uint16_t keepalive;		/* keepalive interval given to clients, s */
	uint32_t idle_timeout;		/* session reaped after this long silent, s */
	uint32_t hs_queue;		/* handshake queue to the control thread */
	uint32_t hs_load_pps;		/* initiations/s above which cookies are required */
	char exit_allow[512];		/* prefixes clients may reach, "a/n,b/m" */
	char exit_deny[512];		/* prefixes they may not */
	char exit_open[256];		/* relay host ports open to them, "udp/53,tcp/53" */
	bool probes_off;		/* OXPI probes go unanswered */
	uint32_t probe_rate;		/* probes answered per source per second; 0 = all */
	uint32_t worker_fifo;		/* SCHED_FIFO priority of worker lcores; 0 = none */
};

/** Datapath drop reasons past the outer checks (lib/pkt has those). */
#define OX_DP_DROP_REASONS(X) \
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
	X(PROBE_LIMITED, "probe_limited") \
	X(PROBES_OFF, "probes_off") \
	X(NO_EXIT, "no_exit") \
	X(NO_ROOM, "no_headroom") \
	X(NO_KEYS, "no_keys") \
	X(NO_MBUF, "no_mbuf")

enum ox_dp_drop {
#define OX_DP_ENUM(e, s) OX_DP_DROP_ ## e,
	OX_DP_DROP_REASONS(OX_DP_ENUM)
#undef OX_DP_ENUM
	OX_DP_DROP_MAX
};

extern const char *const ox_dp_drop_names[OX_DP_DROP_MAX];

/** What the relay did, per lcore. */
#define OX_RELAY_CTRS(X) \
	X(DECRYPTED, "decrypted") \
	X(TO_TAP, "to_tap") \
	X(FROM_TAP, "from_tap") \
	X(CLIENT_TO_CLIENT, "client_to_client") \
	X(KEEPALIVE, "keepalive") \
	X(ACK, "ack_sent") \
	X(KEY_CONFIRM, "key_confirm") \
	X(HANDOFF, "handoff") \
	X(ROAMED, "roamed") \
	X(DISCONNECT, "disconnect") \
	X(HS_QUEUED, "hs_queued") \
	X(BATCH_PKTS, "batch_pkts")

enum ox_relay_ctr {
#define OX_RELAY_ENUM(e, s) OX_RELAY_ ## e,
	OX_RELAY_CTRS(OX_RELAY_ENUM)
#undef OX_RELAY_ENUM
	OX_RELAY_CTR_MAX
};

extern const char *const ox_relay_ctr_names[OX_RELAY_CTR_MAX];

/** Per-lcore counters: written by that lcore only, summed by readers. */
struct ox_lcore_stats {
	uint64_t rx_pkts;
	uint64_t rx_bytes;
	uint64_t tx_pkts;
	uint64_t tx_bytes;
	uint64_t echo;
	uint64_t busy_cycles;	/* cycles of loop turns that moved packets */
	uint64_t pkt_drops[OX_PKT_DROP_MAX];
	uint64_t dp_drops[OX_DP_DROP_MAX];
	uint64_t ox_drops[OX_DROP_MAX];	/* OxTunnel protocol drops (lib/oxtunnel) */
	uint64_t relay[OX_RELAY_CTR_MAX];
} __rte_cache_aligned;

/** One (port, queue) pair polled by one lcore, which also owns its TX queue. */
struct ox_slot {
	uint16_t port_id;
	uint16_t queue;
	bool tap;			/* the exit TAP: inner IP packets from the kernel */
	uint64_t rx_pkts;
	uint64_t tx_pkts;
	struct rte_eth_dev_tx_buffer *txb;
	struct rte_ether_addr mac;	/* the port's own address */
};

struct ox_worker;
struct ox_relay;

/**
 * Hook for datagrams that are not OXPI probes (the relay's entry point).
 * Returns true if it took the mbuf (sent or freed it), false to have it
 * counted as not_oxtunnel and freed.
 */
typedef bool (*ox_dp_hook_t)(struct ox_worker *w, struct ox_slot *s, struct rte_mbuf *m,
			     struct ox_pkt *p);

/**
 * Hook for packets from the exit TAP whose destination has a session (the
 * relay encrypts them for that client). Returns true if it took the mbuf.
 */
typedef bool (*ox_tap_hook_t)(struct ox_worker *w, struct ox_slot *s, struct rte_mbuf *m,
			      struct ox_session *sess);

/** A worker lcore and what it owns. */
struct ox_worker {
	struct ox_lcore_stats stats;	/* first: cache-aligned, hot */
	unsigned int lcore_id;
	uint16_t n_slots;
	uint16_t burst;
	uint16_t udp_port;
	uint64_t drain_tsc;
	ox_dp_hook_t hook;
	ox_tap_hook_t tap_hook;
	struct ox_sessions *sessions;	/* shared, lock-free for readers */
	struct rte_rcu_qsbr *rcu;	/* this lcore reports quiescent states */
	uint16_t id;			/* position in ox_server.workers */
	struct ox_slot *tx_slot;	/* where this lcore sends to clients */
	struct ox_slot *tap_slot;	/* its exit TAP queue, or NULL */
	struct rte_ring *inbox;		/* mbufs other lcores hand to this one */
	struct ox_aead *aead;		/* this lcore's AEAD context */
	struct ox_relay *relay;		/* NULL: echo only */
	void (*poll_hook)(struct ox_worker *w);	/* single-lcore: the control work */
	uint64_t now_ns;		/* relay: ox_mono_ns() at the current burst */
	bool probes_off;		/* OXPI probes dropped */
	uint32_t fifo_prio;		/* SCHED_FIFO priority to take; 0 = stay as started */
	struct ox_ratelimit *probe_rl;	/* OXPI per source; NULL: unlimited */
	struct ox_slot slots[OX_MAX_SLOTS];
} __rte_cache_aligned;

/** Port as the control plane describes it (telemetry, logs). */
struct ox_port_info {
	uint16_t port_id;
	char name[RTE_DEV_NAME_MAX_LEN];
	char iface[32];
	uint16_t queue;		/* NIC queue (FLASH) or first queue */
	uint16_t n_queues;
	bool flash;
	const char *copy_mode;	/* "zero-copy", "copy", "n/a" */
	const char *umem;	/* "shared", "per-queue", "n/a" */
	const char *xdp_mode;
};

struct ox_server {
	struct ox_server_conf conf;
	struct ox_flash flash;
	struct ox_addrpool_conf pool_conf;
	struct ox_sessions *sessions;
	uint16_t tap_port;
	bool has_tap;
	bool use_flash;
	struct rte_mempool *pool;	/* the pool every RX queue uses */
	unsigned int baseline_in_use;
	uint16_t n_ports;
	struct ox_port_info ports[RTE_MAX_ETHPORTS];
	unsigned int n_workers;
	struct ox_worker *workers[RTE_MAX_LCORE];
	uint64_t start_tsc;
	struct ox_relay *relay;		/* NULL without --key */
};

extern volatile bool ox_stop;

/** Add to a counter only this lcore writes (readers may load it any time). */
static inline void
ox_ctr_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

/** Count a drop under its datapath reason and free the mbuf. */
static inline void
ox_drop_dp(struct ox_worker *w, struct rte_mbuf *m, enum ox_dp_drop why)
{
	ox_ctr_add(&w->stats.dp_drops[why], 1);
	rte_pktmbuf_free(m);
}

/**
 * Queue m for transmission on slot s of worker w. The buffer sends by
 * itself when full: what it sent then is counted here, the rest when
 * flushed.
 */
static inline void
ox_worker_tx(struct ox_worker *w, struct ox_slot *s, struct rte_mbuf *m)
{
	uint16_t sent;

	ox_ctr_add(&w->stats.tx_bytes, m->pkt_len);
	sent = rte_eth_tx_buffer(s->port_id, s->queue, s->txb, m);
	if (sent) {
		ox_ctr_add(&s->tx_pkts, sent);
		ox_ctr_add(&w->stats.tx_pkts, sent);
	}
}

/* conf.c */
int ox_conf_parse(struct ox_server_conf *c, int argc, char **argv);
void ox_conf_error_stream(FILE *f);
void ox_conf_usage(const char *prog);

/* datapath.c */
int ox_worker_main(void *arg);
int ox_worker_init_txb(struct ox_worker *w, struct ox_slot *s);
unsigned int ox_worker_flush(struct ox_worker *w);
void ox_stats_sum(const struct ox_server *srv, struct ox_lcore_stats *sum);

/* exit.c */
int srv_exit_policy(const struct ox_server *srv, const struct ox_tunnel_addr *gw,
		    struct ox_policy **out);

/* tap.c */
int ox_tap_setup(struct ox_server *srv);
int ox_parse_pools(const struct ox_server_conf *c, struct ox_addrpool_conf *pc);

/* relay.c */
uint32_t ox_relay_priv_size(void);
/** Most mbufs the relay can park in its handshake ring and the workers'
 * inboxes: the pool holds this many on top of the rings and bursts. */
uint32_t ox_relay_mbufs_held(const struct ox_server_conf *c, unsigned int n_workers);
int ox_relay_init(struct ox_server *srv);
unsigned int ox_relay_control(struct ox_server *srv);
void ox_relay_inbox(struct ox_worker *w, struct rte_mbuf *m);
void ox_relay_free(struct ox_server *srv);
void ox_relay_request_reload(void);
void ox_relay_telemetry(const struct ox_server *srv, struct rte_tel_data *d);

/* telemetry.c */
int ox_telemetry_register(struct ox_server *srv);

#endif /* OX_SERVER_H */
