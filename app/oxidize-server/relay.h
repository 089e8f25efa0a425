/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef SRV_RELAY_H
#define SRV_RELAY_H
/*
 * The relay: OxTunnel v2 sessions on the lcore loops.
 *
 * Who writes what:
 *  - handshake engines (relay_hs.c: the control thread and, by default,
 *    every worker between its bursts) do a handshake's cryptography. INITs
 *    wait in one queue and the first free engine takes the next; engines'
 *    ox_hs_servers (one per engine and protocol) are siblings, so a
 *    source's cookie secret and rate limit are one, under lib/oxtunnel's
 *    lock; engines share the allow-list view the control thread
 *    publishes, whose entries' replay state lib/oxtunnel changes
 *    atomically. An engine answers with receiver indexes the
 *    control thread reserved for it, and hands every outcome back but the
 *    relay's own refusals (waited too long, no room), which it counts;
 *  - the control thread (main lcore) owns the allow-list and the address
 *    pool, creates and removes sessions, and reaps idle ones; it finishes
 *    what engines accepted and answers through the worker that owns the
 *    session, never touching a TX queue itself;
 *  - each session has one owner worker (the one whose queue got its first
 *    INIT; RSS keeps a client's flow there). Only the owner opens the
 *    session's DATA (the replay window has one writer), installs and
 *    promotes its keypairs, and updates where the client is (roaming).
 *    DATA arriving on another worker is handed to the owner's inbox;
 *  - any worker may seal for any session (TAP return path, client to
 *    client) with the send key its owner published (two per session, the
 *    one in use flipped with a release store; the other is written again
 *    only a grace period later, so no lcore ever seals with a key being
 *    replaced or wiped): the send counter is one atomic add, and the
 *    endpoint is read under a seqlock;
 *  - who may reach whom client to client (relay_c2c.c): the control
 *    thread stores a session's groups and the groups it may send to at
 *    its handshake and at every reload (relaxed); the owner, forwarding,
 *    loads them and counts its refusals;
 *  - receiver indexes are random 32-bit numbers, one per keypair (as
 *    WireGuard's), issued by the control thread into a lock-free hash that
 *    every worker reads; the owner hands back those of keypairs it drops.
 *    A session's keys are wiped once it has ended and no lcore can hold it.
 * No locks, syscalls or allocations per packet; mbufs are reused in place.
 *
 * The files, by role (as the WireGuard module splits itself):
 *   relay_proto.h  the seam to the wire protocols: a handshake message for
 *                the control thread, or a DATA that opens to inner packets
 *                for a session; proto_oxtunnel.c is OxTunnel v2 behind it
 *   relay_rx.c   receive and dispatch: the worker hook, DATA on its owner,
 *                inner packets to a client or the exit, the inbox
 *   relay_tx.c   send and seal: endpoints, sealing for a session, the TAP
 *                return path
 *   relay_hs.c   handshake engines: an INIT judged and answered
 *   relay_ctl.c  the control thread: handshakes finished, receiver indexes,
 *                allow-list reloads and the address pool, idle reaping
 *   relay_c2c.c  which peers may reach which (--c2c, --c2c-allow)
 *   relay.c      setup and teardown
 *   telemetry.c  /oxidize/relay, beside the rest of the telemetry
 */
#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_mbuf_dyn.h>
#include <rte_seqlock.h>
#include <rte_udp.h>

#include "ox_policer.h"
#include "relay_proto.h"
#include "server.h"

#define INBOX_SIZE 4096
#define EVENTS_SIZE 4096
#define CTRL_BURST 32
#define IDX_MAX 8      /* receiver indexes one session holds at once */
#define HANDOFF_MAX 64 /* DATA of one session waiting in its owner's inbox */
/* A protocol with passive keepalives answers a session's packets with an
 * empty DATA when it has sent it nothing for this long (WireGuard's
 * KEEPALIVE_TIMEOUT). */
#define PASSIVE_KEEPALIVE_NS (UINT64_C(10) * 1000000000)
/* A peer's rate (rate= on its line) lets a quiet peer send this much at
 * once: 250 ms of the rate, and at least 64 KB (one TCP segmentation
 * offload's worth, handed over back to back). A TCP flow that lost its
 * tail to the policer waits out a retransmission timeout, 200 ms at least
 * on Linux: a bucket smaller than what the rate earns meanwhile costs the
 * flow the difference each time. At 100 ms, iperf3 through a 20 Mbit/s
 * peer on a sub-millisecond path got 10.6-11.1 Mbit/s; at 250 ms,
 * 19.1-20.3. */
#define RELAY_RATE_BURST_NS UINT64_C(250000000)
#define RELAY_RATE_BURST_MIN UINT64_C(65536)

/* What workers tell the control thread (the events ring): a kind in the
 * high 32 bits of the pointer-sized word, a value in the low 32. */
enum relay_event {
	EV_END = 1,    /* a DISCONNECT: end session (value: its handle) */
	EV_RETIRE = 2, /* a keypair left its peer (value: receiver index) */
	EV_ROAM = 3,   /* a session's endpoint moved (value: its handle) */
};
_Static_assert(sizeof(void *) == 8, "events pack a kind and a 32-bit value in a pointer");

/* Why the control thread refused an initiation that lib/oxtunnel accepted,
 * or lost its answer; one counter each (telemetry: hs_drop_<name>). */
#define RELAY_HS_DROPS(X) \
	X(INSTALLS_FULL, "installs_full") \
	X(NO_ADDRESS, "no_address") \
	X(SESSIONS_FULL, "sessions_full") \
	X(ADDRESS_IN_USE, "address_in_use") \
	X(NO_INDEX, "no_receiver_index") \
	X(REPLY_INBOX_FULL, "reply_inbox_full") \
	X(LIST_CHANGED, "list_changed") \
	X(QUEUED_TOO_LONG, "queued_too_long")

enum relay_hs_drop {
/* clang-format off */
#define RELAY_HS_ENUM(e, s) RELAY_HS_##e,
	RELAY_HS_DROPS(RELAY_HS_ENUM)
#undef RELAY_HS_ENUM
	RELAY_HS_MAX
	/* clang-format on */
};

/* What an mbuf in a worker's inbox is (mbuf hash.usr). */
enum inbox_kind {
	INBOX_SEND = 1,	     /* a finished frame: send it */
	INBOX_RESPONSE = 2,  /* a RESPONSE frame: install its keypair, then send */
	INBOX_DATA = 3,	     /* a DATA datagram this worker owns: process it */
	INBOX_KEEPALIVE = 4, /* an empty mbuf: seal a keepalive for its session */
};

/* A session's private area (lib/sessions). */
struct relay_sess {
	struct ox_peer peer;	 /* owner only: receive keys, replay windows */
	struct ox_sendkey tx[2]; /* owner writes, anyone seals with tx[tx_cur] */
	uint8_t tx_cur;		 /* owner stores (release), anyone loads (acquire) */
	bool tx_old_live;	 /* owner: tx[!tx_cur] still holds a key to wipe */
	uint32_t tx_index;	 /* owner: receiver index tx[tx_cur] comes from */
	uint64_t tx_token;	 /* owner: RCU token of the last flip */
	bool ending;		 /* owner: a DISCONNECT was passed on */
	uint8_t proto;		 /* relay_protos[] index; set before the session is used */
	/* Client to client (relay_c2c.c): the control thread stores them
	 * (relaxed) at the handshake and at every reload; workers load them. */
	uint64_t groups;      /* its allow-list line's groups */
	uint64_t reach;	      /* the groups it may send to; RELAY_REACH_ALL = any peer */
	uint64_t c2c_refused; /* owner: its packets to peers refused by them */
	/* Its rate (lib/ratelimit's policer), one bucket each way: the control
	 * thread sets the rate (relaxed) at the handshake and at every reload. */
	struct ox_policer_conf rate;
	uint64_t rate_in_tat;	  /* owner: inner packets from the peer */
	uint64_t rate_out_tat;	  /* any lcore sealing to it (compare-and-swap) */
	uint64_t rate_in_dropped; /* owner: from the peer, over its rate */
	rte_seqlock_t ep_lock;
	struct ox_pkt_flow ep;	/* where the client is, as the last authenticated
				   packet said: owner writes, anyone reads */
	uint64_t unanswered_ns; /* when the first DATA with packets came since the
				   last one sealed for the session, 0 = none: the
				   owner sets it, a sealing lcore clears it (relaxed) */
	uint16_t owner;		/* worker id; set before the session is used */
	uint32_t handoffs;	/* DATA in the owner's inbox (atomic, any lcore) */
	uint8_t n_idx;		/* control: receiver indexes held in by_index */
	uint32_t idx[IDX_MAX];	/* control */
	/* Per-peer status. The owner counts what it opens (relaxed stores:
	 * one writer, no atomic operation, readers never see a torn value);
	 * what any worker seals is in that worker's relay_txc (below). */
	uint64_t rx_pkts, rx_bytes;	      /* owner: DATA opened, their datagram bytes */
	uint64_t tx_base_pkts, tx_base_bytes; /* control: the slot's relay_txc sums at start */
	uint64_t tx_base_limited;
	uint64_t start_ns;	 /* control: when the session began (monotonic) */
	uint64_t hs_realtime_ns; /* control: the last handshake (wall clock) */
	/* The connection log's (control). */
	char name[32];		      /* the allow-list line's name, "" = none */
	struct ox_pkt_flow ep_logged; /* the endpoint the log last said */
	uint64_t roam_logged_ns;      /* when it last logged a roam */
	uint32_t roams_unlogged;      /* roams since, not logged (1 a second at most) */
};

/* What one worker sealed for each session slot (the DATA it sent, their
 * datagram bytes): written by that worker alone with relaxed stores, summed
 * by the control thread. A slot's counts carry on across its sessions: a
 * session's are the sums less the ones at its start (tx_base_*). */
struct relay_txc {
	uint64_t pkts, bytes;
	uint64_t limited; /* inner packets to it over its rate, dropped */
};

/* One peer's status, as the control thread reads it (relay_peer_status). */
struct relay_peer_status {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes;
	uint64_t c2c_refused;			    /* its packets to peers that --c2c refused */
	uint64_t rate_in_dropped, rate_out_dropped; /* over its rate, from it and to it */
	uint64_t hs_realtime_ns;		    /* 0: no handshake */
	uint64_t age_ns;
	struct ox_pkt_flow ep;
	uint8_t proto;
};

/* A keypair on its way from an engine, through the control thread, to the
 * session's owner, and what the engine accepted (relay_hs.c). */
struct relay_install {
	struct ox_keypair kp;
	uint32_t sess_index; /* control */
	uint32_t busy;	     /* engine sets; owner (or control, refusing) clears (release) */
	/* Set by the engine for the control thread: */
	uint8_t peer_key[OX_KEY_LEN];
	uint8_t ts[12];		    /* the INIT's timestamp, accepted */
	struct ox_tunnel_addr addr; /* the addresses the response gives */
	struct ox_pkt_flow from;    /* where the INIT came from */
	uint64_t gen;		    /* the allow-list view it was judged on */
	uint32_t index;		    /* the receiver index it answered with */
	uint8_t proto;
};

/*
 * What handshake engines judge against: the allow-list and the address
 * pool made from it, published together by the control thread (release
 * store), freed a grace period after being replaced.
 */
/* Client to client (relay_c2c.c): --c2c's mode. */
enum relay_c2c_mode {
	RELAY_C2C_ALL = 0,   /* every peer reaches every other (the default) */
	RELAY_C2C_GROUP = 1, /* peers reach peers that share a group */
	RELAY_C2C_NONE = 2,  /* peers reach only the exit and the relay */
};

#define RELAY_REACH_ALL UINT64_MAX /* relay_sess.reach: any peer, grouped or not */

/* A view's client-to-client policy: --c2c and --c2c-allow against its
 * allow-list's groups. */
struct relay_c2c {
	uint8_t mode;				/* enum relay_c2c_mode */
	uint64_t reach_of[OX_ALLOW_GROUPS_MAX]; /* group i's members may send to these */
	uint32_t n_rules, n_unknown;		/* rules, and those naming no group here */
	char unknown[32];			/* the first group a rule names that no line has */
};

struct relay_view {
	struct ox_allowlist allow;
	struct ox_addrpool *pool;
	struct relay_c2c c2c;
	uint64_t gen;
};

/* How an engine hands an INIT back (mbuf hash.usr, high 16 bits; the low
 * 16 keep the worker that received it). */
enum relay_hs_outcome {
	HS_OUT_COOKIE = 1,  /* a cookie reply written in place: send it */
	HS_OUT_REFUSED = 2, /* relay_pkt_mark.hs_drop says why */
	HS_OUT_ACCEPTED = 3 /* relay_dyn.install: finish and send the response */
};

#define RELAY_ENGINES_MAX 128
#define RELAY_ENGINE_CONTROL UINT16_MAX /* an engine's wid: the control thread */
/* Receiver indexes reserved per engine: a worker's engine answers with them
 * while the control thread is away (on a cpu it shares, for a scheduler's
 * slice or more): about 80 ms of one engine's handshakes. */
#define ENGINE_STASH 512
#define ENGINE_INSTALLS 512 /* keypairs in flight per engine */
#define ENGINE_BURST_CTRL 8 /* handshakes per control loop */
#define ENGINE_TURNS 4	    /* turns a handshake takes: judged, then 3 X25519 */
/* One INIT in this many has its cpu time read, by the engine and by the
 * control thread finishing it: a read is a system call, about 7,000 cycles
 * here against a handshake's 400,000, and an engine reads twice a turn. */
#define RELAY_CPU_SAMPLE 16

/* What a pair of srv_thread_cpu_ns() reads adds to the interval between
 * them, ns: the median of back-to-back pairs, measured by
 * relay_engines_init(). The sampled INITs' cpu time is given without it,
 * as the 15 in 16 that are not read do not pay it. */
extern uint64_t relay_cpu_read_ns;

/* The thread's cpu time since @p c0 (a srv_thread_cpu_ns() reading), less
 * what the two reads add to it. */
static inline uint64_t
relay_cpu_since(uint64_t c0)
{
	uint64_t d = srv_thread_cpu_ns() - c0;

	return d > relay_cpu_read_ns ? d - relay_cpu_read_ns : 0;
}
/* An INIT that waited longer than this is not judged: its client gives up on
 * it at REKEY_TIMEOUT (5 s) and sends another; the answer would be work
 * thrown away, and would delay the fresh one. 400 ms are left for the way
 * back (the control thread's finishing, the network). In a storm a wave of
 * retries reaches this age at once and the next comes REKEY_TIMEOUT after
 * its clients sent: with 4 s the engines idled about a second between
 * waves of a 100,000-client storm, with 4.6 s half that, and no answer came
 * after its client had retried. */
#define ENGINE_MAX_WAIT_MS 4600

/* A handshake engine: its fields are its own unless marked. */
struct relay_hs_engine {
	struct ox_hs_server *hs[RELAY_PROTO_MAX]; /* this engine's, per relay_protos[]
						     (siblings: one admission) */
	struct rte_ring *stash;			  /* receiver indexes: control -> engine */
	struct relay_install *installs;
	unsigned int next_install;
	struct relay_view *view; /* the one its servers use */
	uint16_t id;
	uint16_t wid; /* the worker it runs on, or RELAY_ENGINE_CONTROL */
	uint32_t n_spare;
	uint32_t spare[ENGINE_BURST_CTRL]; /* indexes of answers that found the done
					      queue full: used before the stash */
	/* Its counters (relaxed stores; the control thread reads them). */
	uint64_t judged, accepted, cycles_ok, cycles_bad;
	/* The same in the thread's cpu time (ns), for one accepted INIT in
	 * RELAY_CPU_SAMPLE (cpu_ok_n of them): without what another thread on
	 * its cpu took meanwhile, which TSC cycles include. */
	uint64_t cpu_ok, cpu_ok_n;
	/* The floor in situ: the cpu time of those INITs' answer steps that
	 * are one X25519 alone, the ephemeral's fixed-base one (x_base) and
	 * DH(e, re) (x_var), in the same turns and on the same cpu as the
	 * handshakes they are held against (ns, and how many). */
	uint64_t x_base_cpu, x_base_n, x_var_cpu, x_var_n;
	uint64_t done_full; /* outcomes lost: the done queue was full */
	uint64_t cookies;   /* cookie replies it sent itself (its worker's) */
	/* The relay's own refusals (RELAY_HS_*), counted here rather than
	 * handed back: a storm's INITs that waited too long would fill the
	 * done queue, and crowd out accepted ones, while the control thread is
	 * away. */
	uint64_t refused[RELAY_HS_MAX];
	uint64_t stash_waits; /* turns it found no receiver index, or no keypair
			       slot, to answer with */
	uint64_t long_turns;  /* turns over 100 us: what DATA on its worker waited */
	uint64_t long_tsc;    /* 100 us of TSC */
	/* The INIT it answers, over turns (its own). */
	struct relay_hs_cur {
		struct rte_mbuf *m; /* NULL: none in hand */
		struct ox_responder resp;
		struct ox_pkt p;	  /* its frame, parsed, in m */
		struct relay_install *in; /* its keypair, index and addresses */
		uint64_t now;		  /* when it was judged */
		uint16_t wid;		  /* the worker it came in on */
	} cur;
	uint64_t spent_tsc, spent_cpu; /* on the INIT being judged or answered */
	bool sampled;		       /* its cpu time is read (RELAY_CPU_SAMPLE) */
	/* The control thread's: how much of cookies and refused it has folded
	 * into the relay's counters (relay_engines_fold), on a line of its own. */
	struct {
		uint64_t cookies, refused[RELAY_HS_MAX];
	} folded __rte_cache_aligned;
} __rte_cache_aligned;

/* WireGuard's userspace API on a unix socket (uapi.c): control thread. */
#define UAPI_CONNS 8 /* clients served at once */
struct uapi_conn {
	int fd;	  /* -1: free */
	char *in; /* the request so far, NUL-terminated */
	size_t in_len;
	char *out; /* the response, being sent */
	size_t out_len, out_off;
	uint64_t deadline_ns; /* the whole request by then; then, progress */
	bool get_more;	      /* a get's peers are written a part at a time */
	uint32_t get_next;    /* the next allow-list place to write */
	uint64_t get_reloads; /* the allow-list's reloads when the get began */
};
struct srv_uapi {
	int lfd; /* listening; -1: off */
	char path[108];
	struct uapi_conn conn[UAPI_CONNS];
	unsigned int open_conns;
	uint64_t gets, sets, refused, dropped;
};

/* Refused initiations over one interval of the connection log: counts by
 * reason are the counters' deltas; the sources that sent most are kept by
 * Misra-Gries over REFUSAL_TOP slots (control thread). */
#define REFUSAL_TOP 16
#define REFUSAL_LOG_NS (UINT64_C(10) * 1000000000)
struct relay_refusals {
	uint64_t since_ns;
	uint64_t hs_drops[OX_DROP_MAX], relay_hs_drops[RELAY_HS_MAX]; /* at its start */
	uint64_t bad_mac1;					      /* at its start */
	struct {
		struct ox_src src;
		uint32_t n;
	} top[REFUSAL_TOP];
};

/* /oxidize/peers: the telemetry thread asks, the control thread (which
 * owns the allow-list and the sessions) answers into its rte_tel_data. */
#define PEERS_PAGE 32
#define PRECOMPUTE_BURST 16 /* static-static DH per idle control loop (~1 ms) */
enum peers_req_state {
	PEERS_IDLE = 0,
	PEERS_ASKED,	 /* telemetry: start and d are set */
	PEERS_BUSY,	 /* control: filling d */
	PEERS_DONE,	 /* control: d filled */
	PEERS_CANCELLED, /* telemetry gave up waiting; control leaves d alone */
};
struct relay_peers_req {
	uint32_t state; /* enum peers_req_state, atomic */
	uint32_t start;
	struct rte_tel_data *d;
};

/*
 * Routed prefixes, subnets behind peers (relay_routes.c): made whole by the
 * control thread, published with a release store, read by every worker,
 * freed a grace period after being replaced. While live only sidx[]
 * changes, one relaxed store by the control thread as a peer's session
 * starts or ends.
 */
#define RELAY_NO_SESS UINT32_MAX
#define ROUTES_DQ_SIZE 8 /* replaced tables awaiting their grace period */
struct relay_routes {
	struct rte_lpm *lpm4;	     /* NULL: no IPv4 prefix; next hop = allow-list place */
	struct rte_lpm6 *lpm6;	     /* NULL: no IPv6 prefix */
	uint32_t *sidx;		     /* per allow-list place: its session's index */
	struct ox_allow_route *list; /* the prefixes: kernel routes, exit policy */
	uint32_t n;
};

struct srv_relay {
	struct srv_server *srv;
	uint8_t mac1_key[OX_KEY_LEN];	 /* set at init, then read by every worker */
	uint8_t wg_mac1_key[OX_KEY_LEN]; /* the same for WireGuard */
	struct ox_hs_server *hs;	 /* OxTunnel v2 handshakes (control's engine) */
	struct ox_hs_server *wg_hs;	 /* WireGuard's, same key and allow-list */
	struct ox_config config;	 /* what a CONFIG tells clients (--dns); set at init */
	struct relay_view *view;	 /* control swaps it (release), engines read */
	struct rte_rcu_qsbr_dq *view_dq; /* replaced views, freed a grace period on */
	struct ox_allowlist *allow;	 /* control: &view->allow */
	uint32_t allow_keys;		 /* allow->n, for the telemetry thread */
	struct ox_tsstore *ts;		 /* greatest accepted timestamp per key */
	bool ts_failing;		 /* the state file could not be written */
	struct ox_addrpool *pool;	 /* control: view->pool */
	struct relay_hs_engine *engines[RELAY_ENGINES_MAX]; /* [0]: the control thread */
	unsigned int n_engines;
	struct rte_ring *hs_in;		   /* INITs: workers (mp) -> engines (mc) */
	struct rte_ring *hs_done;	   /* judged INITs, engines -> control */
	struct rte_ring *events;	   /* enum relay_event, workers -> control */
	struct rte_hash *by_key;	   /* control only: client key -> session */
	struct rte_hash *by_index;	   /* receiver index -> session; control writes */
	struct rte_rcu_qsbr *rcu;	   /* the workers' quiescent states (lib/sessions) */
	struct ox_policy *policy;	   /* exit policy: read-only once built; control swaps it */
	struct srv_exit_watch exitw;	   /* control: the host's addresses followed */
	struct srv_uapi uapi;		   /* control: `wg` (WireGuard's userspace API) */
	struct ox_tunnel_addr gw;	   /* the relay's own tunnel addresses */
	struct relay_routes *routes;	   /* never NULL once running; control swaps it */
	struct rte_rcu_qsbr_dq *routes_dq; /* replaced tables, freed a grace period on */
	unsigned int routes_gen;
	uint64_t route_errors; /* kernel routes to the TAP not changed */
	int dyn_off;	       /* mbuf dynfield: union relay_dyn */
	uint64_t last_reap_ns;
	int64_t next_expiry; /* control: the allow-list's next expiry (UNIX time), 0 = none */
	/* Control thread counters. */
	uint64_t hs_ok, hs_new, hs_rekey, cookies, reaped, removed, reloads, reload_errors;
	uint64_t precomputed;	/* static-static DH made ahead (ox_hs_precompute) */
	uint64_t stash_errors;	/* receiver indexes that could not be reserved */
	uint64_t reload_ms;	/* how long the last reload took */
	uint64_t reload_cpu_ms; /* of it, the control thread on a cpu */
	uint64_t sessions_by_proto[RELAY_PROTO_MAX]; /* live, by relay_protos[] */
	uint64_t hs_by_proto[RELAY_PROTO_MAX];	     /* completed handshakes */
	uint64_t hs_drops[OX_DROP_MAX];
	uint64_t relay_hs_drops[RELAY_HS_MAX];
	uint64_t cycles_fin, n_bad;  /* control time finishing accepted ones; refused ones */
	uint64_t cpu_fin, cpu_fin_n; /* its cpu time, ns, for cpu_fin_n sampled ones */
	uint64_t fin_seq;	     /* outcomes finished: which to sample */
	uint64_t under_load_polls;   /* polls spent under load */
	uint64_t win_start_ns;	     /* initiation rate window */
	uint64_t win_inits, last_win_inits;
	bool under_load;	       /* control stores, engines load (relaxed) */
	struct relay_refusals refused; /* control: the connection log's interval */
	struct relay_peers_req peers_req;
};

/*
 * Where relay_rx's parse found the headers, kept in the mbuf for whoever
 * takes a datagram next (a session's owner, the control thread for an
 * INIT): the frame is not parsed, nor its checksum summed, a second time.
 */
struct relay_pkt_mark {
	uint16_t l3_off, l4_off, payload_off, payload_len;
	uint32_t sess;	 /* DATA handed to its owner: the session's handle */
	uint32_t index;	 /* DATA: its receiver index */
	uint8_t proto;	 /* relay_protos[] index */
	uint32_t rx_ms;	 /* INIT: when its worker got it (ox_mono_ns() / 1e6) */
	int16_t hs_drop; /* HS_OUT_REFUSED by the protocol: -OX_DROP_* */
};

union relay_dyn {
	struct relay_install *install; /* a RESPONSE on its way to the owner */
	struct relay_pkt_mark pkt;     /* a datagram relay_rx has parsed */
};

static inline union relay_dyn *
relay_dyn(const struct srv_relay *r, struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, r->dyn_off, union relay_dyn *);
}

static inline void
pkt_mark(const struct srv_relay *r, struct rte_mbuf *m, const struct ox_pkt *p)
{
	struct relay_pkt_mark *k = &relay_dyn(r, m)->pkt;

	k->l3_off = p->l3_off;
	k->l4_off = p->l4_off;
	k->payload_off = p->payload_off;
	k->payload_len = p->payload_len;
}

static inline void
pkt_unmark(const struct srv_relay *r, struct rte_mbuf *m, struct ox_pkt *p)
{
	const struct relay_pkt_mark *k = &relay_dyn(r, m)->pkt;

	p->frame = rte_pktmbuf_mtod(m, uint8_t *);
	p->frame_len = (uint16_t)m->data_len;
	p->l3_off = k->l3_off;
	p->l4_off = k->l4_off;
	p->payload_off = k->payload_off;
	p->payload_len = k->payload_len;
	p->ipv6 = (p->frame[p->l3_off] >> 4) == 6;
}

/* Where a parsed datagram came from, as lib/oxtunnel's handshake takes it. */
static inline void
relay_src_of(const struct ox_pkt *p, struct ox_src *src)
{
	memset(src, 0, sizeof(*src));
	if (p->ipv6) {
		memcpy(src->addr, ((const struct rte_ipv6_hdr *)(p->frame + p->l3_off))->src_addr,
		       16);
	} else {
		src->addr[10] = 0xff;
		src->addr[11] = 0xff;
		memcpy(src->addr + 12,
		       &((const struct rte_ipv4_hdr *)(p->frame + p->l3_off))->src_addr, 4);
	}
	src->port =
		rte_be_to_cpu_16(((const struct rte_udp_hdr *)(p->frame + p->l4_off))->src_port);
}

/* The session of the peer behind next hop @p nh (NULL while it has none). */
static inline struct ox_session *
relay_route_sess(const struct relay_routes *rt, struct ox_sessions *ss, uint32_t nh)
{
	uint32_t idx = __atomic_load_n(&rt->sidx[nh], __ATOMIC_RELAXED);

	return idx == RELAY_NO_SESS ? NULL : ox_sessions_by_index(ss, idx);
}

/*
 * The peer a prefix routes an address to (any lcore): 1 and its session in
 * *out (NULL while the peer has none), or 0 when no prefix holds it.
 */
static inline int
relay_route4(const struct srv_relay *r, struct ox_sessions *ss, uint32_t a, struct ox_session **out)
{
	const struct relay_routes *rt = __atomic_load_n(&r->routes, __ATOMIC_ACQUIRE);
	uint32_t nh;

	if (likely(rt->lpm4 == NULL) || rte_lpm_lookup(rt->lpm4, a, &nh) != 0)
		return 0;
	*out = relay_route_sess(rt, ss, nh);
	return 1;
}

/** relay_route4() for IPv6. */
static inline int
relay_route6(const struct srv_relay *r, struct ox_sessions *ss, const uint8_t a[16],
	     struct ox_session **out)
{
	const struct relay_routes *rt = __atomic_load_n(&r->routes, __ATOMIC_ACQUIRE);
	uint32_t nh;

	if (likely(rt->lpm6 == NULL) || rte_lpm6_lookup(rt->lpm6, a, &nh) != 0)
		return 0;
	*out = relay_route_sess(rt, ss, nh);
	return 1;
}

/** relay_route4() or relay_route6() of an inner packet's source or
 * destination address. */
static inline int
relay_route_ip(const struct srv_relay *r, struct ox_sessions *ss, const uint8_t *ip, bool dst,
	       struct ox_session **out)
{
	if ((ip[0] >> 4) == 4) {
		const struct rte_ipv4_hdr *h = (const struct rte_ipv4_hdr *)ip;

		return relay_route4(r, ss, rte_be_to_cpu_32(dst ? h->dst_addr : h->src_addr), out);
	}
	return relay_route6(r, ss,
			    dst ? ((const struct rte_ipv6_hdr *)ip)->dst_addr
				: ((const struct rte_ipv6_hdr *)ip)->src_addr,
			    out);
}

static inline void
drop_ox(struct srv_worker *w, struct rte_mbuf *m, int reason)
{
	srv_ctr_add(&w->stats.ox_drops[-reason], 1);
	rte_pktmbuf_free(m);
}

/* The session a receiver index was issued to, or NULL (any lcore). */
static inline struct ox_session *
by_index(const struct srv_relay *r, uint32_t index)
{
	void *data;

	return rte_hash_lookup_data(r->by_index, &index, &data) >= 0 ? data : NULL;
}

/*
 * A burst in stages (VPP's way, per lcore): relay_rx() checks each DATA of
 * a session this lcore owns and readies its open; at the end of the burst
 * one AEAD submission opens them all, then each is finished in arrival
 * order (replay window, keys, roaming, its inner packet's way). What goes
 * to clients is readied by relay_seal_to() and sealed the same way, then
 * sent. Nothing installs keypairs between the halves: relay_inbox()
 * finishes the stage before it does.
 */
#define RELAY_STAGE_MAX OX_AEAD_BURST_MAX

struct relay_open_slot {
	struct rte_mbuf *m;
	struct ox_session *sess;
	struct ox_keypair *kp; /* for ox_peer_open_done() */
	struct ox_pkt p;
};

struct relay_seal_slot {
	struct rte_mbuf *m;
	struct ox_pkt_flow ep; /* the outer headers to put in front */
	uint16_t len;	       /* of the DATA */
};

/* Lines of a session ahead of its packet's turn (relay_rx.c). */
#define RELAY_SESS_AHEAD 4

struct relay_stage {
	struct relay_txc *txc; /* per session slot: what this worker sealed */
	unsigned int n_open, n_seal;
	/* The burst's receiver indexes looked up at once before its packets
	 * are handled (relay_burst), then taken in order by relay_rx(). */
	unsigned int n_hint, hint_next;
	struct rte_mbuf *hint_m[SRV_MAX_BURST];
	uint32_t hint_idx[SRV_MAX_BURST];
	struct ox_session *hint_sess[SRV_MAX_BURST];
	/* The opened stage's inner IPv4 destinations, looked up at once:
	 * valid while its slots are finished (dst_cur < n_dst). */
	unsigned int n_dst, dst_cur;
	uint32_t dst_v4[RELAY_STAGE_MAX];
	struct ox_session *dst_sess[RELAY_STAGE_MAX];
	struct relay_open_slot open[RELAY_STAGE_MAX];
	struct ox_aead_op open_op[RELAY_STAGE_MAX];
	struct relay_seal_slot seal[RELAY_STAGE_MAX];
	struct ox_aead_op seal_op[RELAY_STAGE_MAX];
};

/* The stage_hook: open what is staged, then seal and send. */
void relay_stage_flush(struct srv_worker *w);

/* The burst_hook: the burst's receiver indexes looked up at once. */
void relay_burst(struct srv_worker *w, struct rte_mbuf **pkts, uint16_t n);

/* relay_ctl.c: a session's status (control thread; any thread that holds
 * the session, for its own reads). */
void relay_peer_status(const struct srv_relay *r, struct ox_session *sess, uint64_t now,
		       struct relay_peer_status *st);

/* conn_log.c: the connection log (control thread), one key=value line per
 * event under the log type ox.conn, never one per packet. */
void conn_log_handshake(struct srv_relay *r, struct ox_session *sess, bool rekey,
			const struct ox_pkt_flow *from);
void conn_log_roam(struct srv_relay *r, struct ox_session *sess, uint64_t now);
void conn_log_end(struct srv_relay *r, struct ox_session *sess, const char *why, uint64_t now);
void conn_log_refused(struct srv_relay *r, const struct ox_src *src);
void conn_log_interval(struct srv_relay *r, uint64_t now, bool last);

/* telemetry.c: answer a pending /oxidize/peers (control thread). */
void relay_peers_answer(struct srv_relay *r, uint64_t now);

/* relay_routes.c: the routed prefixes (control thread). */
int relay_routes_build(struct srv_relay *r, const struct ox_allowlist *al,
		       struct relay_routes **out, char *err, size_t errlen);
int relay_routes_check(const struct srv_relay *r, const struct ox_allowlist *al, char *err,
		       size_t errlen);
void relay_routes_publish(struct srv_relay *r, struct relay_routes *fresh);
void relay_routes_session(struct srv_relay *r, const struct ox_session *sess, bool up);
void relay_routes_poll(struct srv_relay *r);
void relay_routes_free(struct relay_routes *rt);

/*
 * Free obj, a table the workers may still be reading, once every one of
 * them has passed a quiescent state: through *dq (made on first use with
 * name, size and free_fn, DPDK's RCU defer queue), or, when the queue cannot
 * take it, after waiting for them here. free_fn(NULL, &obj, 1) frees one.
 */
void relay_retire(struct srv_relay *r, struct rte_rcu_qsbr_dq **dq, const char *name, uint32_t size,
		  rte_rcu_qsbr_free_resource_t free_fn, void *obj);

/* relay_c2c.c */
int relay_c2c_mode(const char *s); /* enum relay_c2c_mode, or -EINVAL */
const char *relay_c2c_mode_name(unsigned int mode);
/* The policy of --c2c and --c2c-allow over @p al's groups. A rule naming a
 * group no line has is kept aside (n_unknown) for the caller to say.
 * @return 0, or -EINVAL with the reason in @p err. */
int relay_c2c_build(const struct srv_server_conf *c, const struct ox_allowlist *al,
		    struct relay_c2c *p, char *err, size_t errlen);
/* Log the policy in force, and rules naming groups no line has. */
void relay_c2c_say(const struct relay_c2c *p, const struct ox_allowlist *al);
/* The groups a peer in @p groups may send to (RELAY_REACH_ALL: any). */
uint64_t relay_c2c_reach(const struct relay_c2c *p, uint64_t groups);
/* Control: set a session's groups and reach from its line @p e (NULL: none)
 * under the published view's policy. */
void relay_c2c_apply(struct srv_relay *r, struct ox_session *sess, const struct ox_allow_entry *e);
/* May the session @p from send to the session @p to? */
static inline bool
relay_c2c_ok(const struct relay_sess *from, const struct relay_sess *to)
{
	uint64_t reach = __atomic_load_n(&from->reach, __ATOMIC_RELAXED);

	return reach == RELAY_REACH_ALL || (reach & __atomic_load_n(&to->groups, __ATOMIC_RELAXED));
}

/* relay_hs.c */
int relay_engines_init(struct srv_relay *r);
void relay_engines_free(struct srv_relay *r);
/* Up to @p max turns of the control thread's engine @p e (a turn is one
 * X25519's worth: an INIT judged or a step of its answer). @return how many
 * found work. */
unsigned int relay_engine_run(struct srv_relay *r, struct relay_hs_engine *e, unsigned int max);
/* Control: top up every engine's reserved receiver indexes. */
void relay_engines_stash(struct srv_relay *r);
/* What the engines counted themselves, into the relay's counters. */
void relay_engines_fold(struct srv_relay *r);
/* Control: publish a new view (the old one freed a grace period later). */
void relay_view_publish(struct srv_relay *r, struct relay_view *v);
void relay_view_free(struct relay_view *v);
void relay_views_poll(struct srv_relay *r); /* free views past their grace period */
/* relay.c: ring sizes, also for relay_mbufs_held(). */
uint32_t relay_hs_ring_size(const struct srv_server_conf *c);
unsigned int relay_n_engines(const struct srv_server_conf *c, unsigned int n_workers);
uint32_t relay_done_ring_size(const struct srv_server_conf *c);

/* relay_ctl.c: when sessions end next for their lines' expiry, from the
 * published allow-list (and say what it holds). */
void relay_expiry_schedule(struct srv_relay *r);

/* relay_ctl.c: read the allow-list file again (SIGHUP, `wg set`).
 * @return 0, or -errno with the previous list kept (logged). */
int relay_reload_allowlist(struct srv_relay *r);

/* uapi.c (control thread) */
int srv_uapi_open(struct srv_uapi *u, const char *name);
void srv_uapi_close(struct srv_uapi *u);
void relay_uapi_poll(struct srv_relay *r, uint64_t now);

/* relay_tx.c */
/* An inner packet to @p sess within its rate (any lcore): true, or dropped
 * and counted. */
static inline bool
relay_rate_to(struct srv_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now)
{
	struct relay_sess *rs = ox_session_priv(sess);
	struct relay_txc *c;

	if (likely(ox_policer_take_shared(&rs->rate, &rs->rate_out_tat, now, m->data_len)))
		return true;
	c = &w->stage->txc[sess->slot];
	__atomic_store_n(&c->limited, c->limited + 1, __ATOMIC_RELAXED);
	srv_drop_dp(w, m, SRV_DP_DROP_RATE_TO_PEER);
	return false;
}
void relay_ep_read(struct relay_sess *rs, struct ox_pkt_flow *ep);
/* "ADDR:PORT" or "[ADDR6]:PORT" of where a flow sends (the client). */
const char *relay_ep_str(const struct ox_pkt_flow *ep, char *b, size_t len);
void relay_ep_write(struct relay_sess *rs, const struct ox_pkt_flow *ep);
void relay_seal_to(struct srv_worker *w, struct ox_session *sess, struct rte_mbuf *m, uint64_t now);
void relay_seal_flush(struct srv_worker *w);
bool relay_tap(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m,
	       struct ox_session *sess);

/* relay_rx.c */
bool relay_rx(struct srv_worker *w, struct srv_queue *s, struct rte_mbuf *m, struct ox_pkt *p);

/* relay_ctl.c */
void relay_session_released(struct ox_session *sess, void *arg);
struct ox_addrpool *relay_pool_build(const struct ox_allowlist *al,
				     const struct ox_addrpool_conf *pc, char *err, size_t errlen);

/* telemetry.c */
extern const char *const relay_hs_drop_names[RELAY_HS_MAX];

#endif /* SRV_RELAY_H */
