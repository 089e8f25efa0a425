/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_PERF_H
#define OX_PERF_H
/*
 * oxidize-perf internals shared by its two modes: OXPI probes (perf.c) and
 * simulated OxTunnel v2 clients (relay.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "ox_flash.h"
#include "ox_pkt.h"
#include "ox_tunnel.h"

#define PERF_BURST 32
#define PERF_MAX_FLOWS 4096
#define PERF_HIST_US 20000  /* 1 us buckets up to 20 ms, then one overflow bucket */
#define PERF_STEPS_MAX 32   /* storm mode's DATA steps */
#define PERF_MAX_THREADS 16 /* perf_on_threads() */

/* A DATA step after a storm: its first `sessions` clients send `size`-byte
 * inner packets to each other (sessions.c). */
struct perf_step {
	uint32_t sessions;
	uint16_t size;
};

struct perf_conf {
	const char *iface;
	struct in_addr src, dst;
	struct rte_ether_addr dst_mac, src_mac;
	uint16_t port;
	uint16_t flows; /* OXPI: source ports; relay: clients */
	uint16_t size;	/* OXPI: UDP payload bytes; relay: inner IPv4 packet bytes */
	uint16_t queues;
	uint64_t rate;	 /* packets/s, 0 = flat out */
	int busy_budget; /* as oxidize-server's --busy-budget */
	double duration;
	bool json;
	/* Relay mode. */
	const char *relay_dir;	/* key directory from `oxidize-perf keys`; NULL: OXPI mode */
	struct in_addr exit_ip; /* inner destination; 0: the next client */
	uint32_t verify_every;	/* open and time one received packet in this many */
	uint64_t packets;	/* packets to pre-seal; 0: from rate and duration */
	enum ox_wire wire;	/* what the simulated clients speak */
	/* Storm mode. */
	const char *storm_dir;			/* seed and server key; NULL: not a storm */
	uint32_t storm_clients;			/* clients */
	uint32_t sources;			/* source addresses they come from */
	uint16_t rx_desc;			/* RX ring size; 0 = the PMD's default */
	struct perf_step steps[PERF_STEPS_MAX]; /* DATA after the storm */
	uint8_t n_steps;
	uint64_t step_packets; /* frames a step sends */
	bool step_wait;	       /* a step begins on a line from stdin */
	bool fifo;	       /* the run's loop under SCHED_FIFO, sleeping when idle */
	bool start_wait;       /* the storm begins on a line from stdin */
};

/* Storm clients: the client's number fits a sender index's low 20 bits. */
#define PERF_STORM_MAX ((1u << 20) - 1)
/* Their source addresses: 198.19.0.0 + 1 + (i % sources), in the testbed's
 * range; their source ports PERF_STORM_SPORT + i / sources. */
#define PERF_STORM_NET 0xc6130000u
#define PERF_STORM_SPORT 20000

/* A storm client with a session, for the DATA steps. */
struct perf_session {
	struct ox_keypair kp;
	uint32_t v4; /* its tunnel address, network order */
};

/* Set by SIGINT/SIGTERM: end the run early. */
extern volatile int perf_stop;

/* This thread to policy (SCHED_FIFO at priority 1, or back to SCHED_OTHER):
 * 0, or -1 said on stderr (the run goes on without it). */
int perf_fifo_set(int policy);

/* This thread's cpu time so far (user and system), seconds: what a run's
 * loop took from the cpu it shares with the relay. */
double perf_thread_cpu_s(void);

/* Inner IPv4 packet sizes the relay mode sends: headers and its marker up
 * to the relay's default tunnel MTU. */
#define PERF_RELAY_INNER_MIN 48
#define PERF_RELAY_INNER_MAX OX_DEFAULT_MTU
/* Longest relay run: under REKEY_AFTER_TIME (doc/oxtunnel.md), as the
 * simulated clients keep their first keys. */
#define PERF_RELAY_MAX_S 100
/* Client i's fixed tunnel address on the allow-list `keys` writes: inside
 * the relays' default pool 100.64.0.0/10, clear of their own .1. */
#define PERF_RELAY_ADDR_BASE 0x64600000u /* 100.96.0.0 */

/* The outer flow of the frames sent from source port sport (perf.c). */
void perf_flow(const struct perf_conf *c, uint16_t sport, struct ox_pkt_flow *f);

/* RTT histogram in microseconds, shared by both modes. */
void perf_hist_add(uint64_t us);
double perf_percentile(uint64_t total, double pct);
uint64_t perf_max_us(void); /* the longest RTT added, us */

/* The client interface's queues over AF_XDP, as both modes use them. */
int perf_flash_up(struct ox_flash *f, const struct perf_conf *c);

/* Burst size and TSC gap between turns for a paced run (rate > 0). */
void perf_pacing(const struct perf_conf *c, uint16_t n_ports, uint64_t hz, uint16_t *bsz,
		 uint64_t *gap);

/* Prepared frames: len bytes of zeroed memory in transparent huge pages
 * where the kernel has them (munmap it). NULL, said, when there is none. */
void *perf_arena(size_t len);

/* fn(arg + i * size) for i < n on as many threads (those that cannot start
 * run on the caller's); returns when all are done. */
void perf_on_threads(void *(*fn)(void *), void *arg, size_t size, unsigned int n);

/* Threads worth starting for work spread over every core, at most max. */
unsigned int perf_n_threads(unsigned int max);

/* DIR/server.pub, the relay's key `keys` wrote (relay.c). @return 0 or -errno (said). */
int perf_read_server_pub(const char *dir, uint8_t key[OX_KEY_LEN]);

/* `oxidize-perf keys DIR N`: key files and allow-list; no EAL. */
int perf_relay_keys(int argc, char **argv);

/* Relay mode after EAL: handshakes, pre-sealing, the timed run, the report. */
int perf_relay_run(struct perf_conf *c);

/* `oxidize-perf storm-keys DIR N` (storm.c): seed and allow-list; no EAL. */
int perf_storm_keys(int argc, char **argv);

/* Storm mode after EAL: initiations made, the storm, the report (storm.c). */
int perf_storm_run(struct perf_conf *c);

/* Storm client i's outer flow to the relay (storm.c). */
void perf_storm_flow(const struct perf_conf *c, uint32_t i, struct ox_pkt_flow *f);

/* "N:SIZE,..." into c->steps (sessions.c). @return 0 or -errno. */
int perf_steps_parse(const char *arg, struct perf_conf *c);

/* The DATA steps over the storm's n sessions (sessions.c). @return 0 or -errno (said). */
int perf_steps_run(const struct perf_conf *c, struct ox_flash *f, struct perf_session *ss,
		   uint32_t n);

#endif /* OX_PERF_H */
