/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-server: the OxTunnel relay on DPDK.
 *
 *   oxidize-server [EAL options] -- [options]      (see --help)
 *
 * Control flow: EAL, options, ports (FLASH on --iface, or whatever ports
 * EAL made), one worker per lcore with its (port, queue) pairs, telemetry;
 * then the main lcore waits for a signal or --duration while the workers
 * run to completion; then an orderly stop that checks every mbuf came back.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/resource.h>

#include <bpf/libbpf.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pdump.h>

#include "server.h"

RTE_LOG_REGISTER(srv_server_logtype, ox.server, INFO);

volatile bool srv_stop;

static void
on_signal(int sig __rte_unused)
{
	__atomic_store_n(&srv_stop, true, __ATOMIC_RELAXED);
}

static void
on_sighup(int sig __rte_unused)
{
	relay_request_reload();
}

static struct srv_server *poll_srv;

/* One lcore does everything: the control work every millisecond. */
static void
single_lcore_control(struct srv_worker *w __rte_unused)
{
	static uint64_t next;
	uint64_t now = rte_get_timer_cycles();

	if (now < next)
		return;
	if (relay_control(poll_srv) == 0)
		next = now + rte_get_timer_hz() / 1000;
}

/* Capability bits (linux/capability.h) FLASH needs. CAP_BPF is not enough:
 * finding the PMD's XDP program and maps by id (BPF_*_GET_FD_BY_ID) takes
 * CAP_SYS_ADMIN. CAP_NET_RAW opens AF_XDP sockets, CAP_NET_ADMIN attaches
 * XDP, CAP_IPC_LOCK (or an unlimited memlock limit) pins the UMEM. */
#define CAP_NET_ADMIN_BIT 12
#define CAP_NET_RAW_BIT 13
#define CAP_IPC_LOCK_BIT 14
#define CAP_SYS_ADMIN_BIT 21

static uint64_t
effective_caps(void)
{
	unsigned long long caps = 0;
	char line[256];
	FILE *f;

	f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps;
}

static int
check_privileges(void)
{
	uint64_t caps = effective_caps();
	char missing[160] = "";

	if (!(caps & (1ULL << CAP_NET_ADMIN_BIT)))
		strcat(missing, " CAP_NET_ADMIN");
	if (!(caps & (1ULL << CAP_NET_RAW_BIT)))
		strcat(missing, " CAP_NET_RAW");
	/* CAP_IPC_LOCK is needed only when the memlock limit is below the
	 * UMEM; explain_umem_failure() says so if registration fails. */
	if (!(caps & (1ULL << CAP_SYS_ADMIN_BIT)))
		strcat(missing, " CAP_SYS_ADMIN");
	if (missing[0] == '\0')
		return 0;
	SRV_LOG(ERR,
		"missing privileges:%s. Run as root, or grant them: "
		"setcap cap_net_admin,cap_net_raw,cap_ipc_lock,cap_sys_admin+ep "
		"oxidize-server (config/oxidize-server.service grants the same)",
		missing);
	return -EPERM;
}

static void
explain_eal_failure(void)
{
	unsigned long total = 0, free_pages = 0;
	bool mounted = false;
	char line[256];
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			sscanf(line, "HugePages_Total: %lu", &total);
			sscanf(line, "HugePages_Free: %lu", &free_pages);
		}
		fclose(f);
	}
	f = fopen("/proc/mounts", "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, " hugetlbfs ") != NULL)
				mounted = true;
		fclose(f);
	}
	SRV_LOG(ERR,
		"hugepages missing or unusable (%lu reserved, %lu free, "
		"hugetlbfs %s; a --huge-dir must be a hugetlbfs mount): reserve and mount them "
		"with usertools/flash-bind.py --prepare IF or usertools/oxidize-setup.sh",
		total, free_pages, mounted ? "mounted" : "not mounted");
}

static void
explain_umem_failure(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    !(effective_caps() & (1ULL << CAP_IPC_LOCK_BIT)))
		SRV_LOG(ERR,
			"UMEM registration needs locked memory: memlock "
			"limit is %llu KB without CAP_IPC_LOCK; raise it (ulimit -l unlimited, "
			"LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK",
			(unsigned long long)rl.rlim_cur / 1024);
}

static const char *
default_xdp_prog(void)
{
	if (access(OX_XDP_PROG_BUILD, R_OK) == 0)
		return OX_XDP_PROG_BUILD;
	return OX_XDP_PROG_INSTALL;
}

/* FLASH: create one net_af_xdp port per queue of --iface, or adopt the
 * ones EAL made from --vdev arguments (adopt). */
static int
setup_flash(struct srv_server *srv, bool adopt)
{
	const struct srv_server_conf *c = &srv->conf;
	struct ox_flash_conf fc = {
		.iface = c->iface,
		.n_queues = c->queues,
		.xdp_prog = c->xdp_prog[0] ? c->xdp_prog : default_xdp_prog(),
		.xdp_replace = c->xdp_replace,
		.force_copy = c->force_copy,
		.busy_budget = c->busy_budget,
		.rx_desc = c->rx_desc,
		.tx_desc = c->tx_desc,
		/* Bursts in flight per lcore, the exit TAP's RX rings, and what
		 * the relay's handshake queues and inboxes can hold. */
		.extra_mbufs = rte_lcore_count() * (SRV_MAX_BURST * 2 + (c->tap[0] ? 1024 : 0)) +
			       relay_mbufs_held(c, rte_lcore_count()),
	};
	uint16_t i;
	int ret;

	_Static_assert(SRV_MAX_UDP_PORTS <= OX_FLASH_MAX_STEER_PORTS, "ox_steer takes every port");
	memcpy(fc.steer_ports, c->ports.port, c->ports.n * sizeof(fc.steer_ports[0]));
	if (!adopt && access(fc.xdp_prog, R_OK) != 0) {
		SRV_LOG(ERR, "XDP program %s: %s (give --xdp-prog PATH)", fc.xdp_prog,
			strerror(errno));
		return -ENOENT;
	}
	ret = adopt ? ox_flash_adopt(&srv->flash, &fc) : ox_flash_create(&srv->flash, &fc);
	if (ret != 0) {
		/* lib/flash said what happened; what to do is ours to say. */
		const char *ifn = c->iface[0] ? c->iface : srv->flash.iface;

		switch (ret) {
		case -EIO:
			explain_umem_failure();
			break;
		case -ENOMEM:
			SRV_LOG(ERR,
				"reserve more hugepages (usertools/flash-bind.py --prepare %s "
				"--hugepages N, or usertools/oxidize-setup.sh --hugepages N), or "
				"drive fewer --queues",
				ifn);
			break;
		case -ERANGE:
			SRV_LOG(ERR,
				"raise the queues with ethtool -L %s combined N (or "
				"usertools/flash-bind.py --prepare %s --queues N), or ask for "
				"fewer "
				"--queues",
				ifn, ifn);
			break;
		case -EEXIST:
			SRV_LOG(ERR,
				"remove that program (usertools/flash-bind.py --reset %s) or "
				"pass --xdp-replace",
				ifn);
			break;
		}
		return ret;
	}
	if (srv->flash.umem_mode == OX_FLASH_UMEM_PER_QUEUE)
		SRV_LOG(NOTICE, "usertools/oxidize-setup.sh builds a net_af_xdp with shared UMEM");
	srv->use_flash = true;
	srv->pool = srv->flash.pool;
	for (i = 0; i < srv->flash.n_ports; i++) {
		const struct ox_flash_port *fp = &srv->flash.ports[i];
		struct srv_port_info *p = &srv->ports[srv->n_ports++];

		p->port_id = fp->port_id;
		memcpy(p->name, fp->name, sizeof(p->name));
		memcpy(p->iface, srv->flash.iface, sizeof(p->iface));
		p->queue = fp->queue;
		p->n_queues = 1;
		p->flash = true;
		p->copy_mode = !fp->zc_known ? "unknown" : fp->zero_copy ? "zero-copy" : "copy";
		p->umem = ox_flash_umem_mode_str(srv->flash.umem_mode);
		p->xdp_mode = srv->flash.xdp_mode;
	}
	if (strcmp(srv->flash.xdp_mode, "generic") == 0)
		SRV_LOG(WARNING,
			"%s: the driver has no native XDP; ox_steer runs in generic (skb) "
			"mode, which costs a copy per packet - use a NIC with native XDP for speed",
			srv->flash.iface);
	return 0;
}

static unsigned int
n_worker_lcores(void)
{
	unsigned int n = rte_lcore_count();

	return n > 1 ? n - 1 : 1;
}

/* Ports EAL made (-a PCI, --vdev): one queue per worker lcore unless
 * --queues says otherwise, RSS across them. */
static uint16_t
generic_queues(const struct srv_server_conf *c, const struct rte_eth_dev_info *info)
{
	uint16_t nq = c->queues ? c->queues : (uint16_t)n_worker_lcores();
	uint16_t most = RTE_MIN(info->max_rx_queues, info->max_tx_queues);

	if (c->queues == 0)
		nq = RTE_MIN(nq, most);
	return RTE_MIN(nq, (uint16_t)SRV_MAX_QUEUES);
}

static int
setup_generic(struct srv_server *srv)
{
	const struct srv_server_conf *c = &srv->conf;
	unsigned int n_mbufs = 0;
	uint16_t port_id, q, nq;
	int ret;

	RTE_ETH_FOREACH_DEV(port_id)
	{
		struct rte_eth_dev_info info;

		ret = rte_eth_dev_info_get(port_id, &info);
		if (ret != 0)
			return ret;
		nq = generic_queues(c, &info);
		if (nq > info.max_rx_queues || nq > info.max_tx_queues) {
			SRV_LOG(ERR,
				"port %u has %u RX / %u TX queues; %u asked "
				"for",
				port_id, info.max_rx_queues, info.max_tx_queues, nq);
			return -EINVAL;
		}
		n_mbufs += nq * (uint32_t)((c->rx_desc ? c->rx_desc : 1024) +
					   (c->tx_desc ? c->tx_desc : 1024));
	}
	if (n_mbufs == 0) {
		SRV_LOG(ERR, "no ports: give --iface IF for FLASH, or EAL "
			     "--vdev/-a arguments");
		return -ENODEV;
	}
	n_mbufs += rte_lcore_count() * (SRV_MAX_BURST * 2 + 512 + (c->tap[0] ? 1024 : 0)) +
		   relay_mbufs_held(c, rte_lcore_count());
	srv->pool = ox_flash_pool_create("ox_pool", n_mbufs, rte_socket_id());
	if (srv->pool == NULL) {
		SRV_LOG(ERR, "cannot create a pool of %u mbufs: %s", n_mbufs,
			rte_strerror(rte_errno));
		return -ENOMEM;
	}
	RTE_ETH_FOREACH_DEV(port_id)
	{
		struct rte_eth_conf pc = { 0 };
		struct rte_eth_dev_info info;
		struct srv_port_info *p = &srv->ports[srv->n_ports++];

		rte_eth_dev_info_get(port_id, &info);
		nq = generic_queues(c, &info);
		if (nq > 1) {
			pc.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			pc.rx_adv_conf.rss_conf.rss_hf =
				(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		}
		/* IPv6 DATA must carry a UDP checksum over its whole ciphertext:
		 * where the port can sum it on send, it does (net_af_xdp cannot). */
		p->tx_udp_csum = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
		if (p->tx_udp_csum)
			pc.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
		ret = rte_eth_dev_configure(port_id, nq, nq, &pc);
		for (q = 0; ret == 0 && q < nq; q++) {
			ret = rte_eth_rx_queue_setup(port_id, q, c->rx_desc, rte_socket_id(), NULL,
						     srv->pool);
			if (ret == 0)
				ret = rte_eth_tx_queue_setup(port_id, q, c->tx_desc,
							     rte_socket_id(), NULL);
		}
		if (ret == 0)
			ret = rte_eth_dev_start(port_id);
		if (ret != 0) {
			SRV_LOG(ERR, "port %u (%s) setup failed: %s", port_id, info.driver_name,
				rte_strerror(-ret));
			return ret;
		}
		p->port_id = port_id;
		rte_eth_dev_get_name_by_port(port_id, p->name);
		snprintf(p->iface, sizeof(p->iface), "%s", info.driver_name);
		p->queue = 0;
		p->n_queues = nq;
		p->copy_mode = "n/a";
		p->umem = "n/a";
		p->xdp_mode = "n/a";
	}
	return 0;
}

static int
setup_workers(struct srv_server *srv)
{
	unsigned int lcores[RTE_MAX_LCORE], n = 0, lcore, i, k = 0;
	uint16_t q;
	int ret;

	RTE_LCORE_FOREACH_WORKER(lcore)
	lcores[n++] = lcore;
	if (n == 0) /* -l with one core: the main lcore polls too */
		lcores[n++] = rte_get_main_lcore();
	for (i = 0; i < n; i++) {
		struct srv_worker *w =
			rte_zmalloc_socket("srv_worker", sizeof(*w), RTE_CACHE_LINE_SIZE,
					   rte_lcore_to_socket_id(lcores[i]));
		if (w == NULL)
			return -ENOMEM;
		w->lcore_id = lcores[i];
		w->id = (uint16_t)i;
		w->burst = srv->conf.burst;
		w->ports = &srv->conf.ports;
		w->drain_tsc = rte_get_tsc_hz() / 1000000 * srv->conf.drain_us;
		w->sessions = srv->sessions;
		w->rcu = ox_sessions_rcu(srv->sessions);
		w->probes_off = srv->conf.probes_off;
		if (lcores[i] != rte_get_main_lcore())
			w->fifo_prio = srv->conf.worker_fifo;
		if (srv->conf.probe_rate != 0) {
			struct ox_ratelimit_conf rc = {
				.per_second = srv->conf.probe_rate,
				.burst = srv->conf.probe_rate,
				.entries = 4096,
			};

			w->probe_rl = ox_ratelimit_create(&rc);
			if (w->probe_rl == NULL)
				return -errno;
		}
		srv->workers[srv->n_workers++] = w;
	}
	/* Every (port, queue) to exactly one lcore, round robin: a queue and
	 * its TX twin are never shared. */
	for (i = 0; i < srv->n_ports; i++) {
		for (q = 0; q < srv->ports[i].n_queues; q++, k++) {
			struct srv_worker *w = srv->workers[k % srv->n_workers];
			struct srv_queue *s;

			if (w->n_queues_polled == SRV_MAX_QUEUES)
				return -E2BIG;
			s = &w->queues[w->n_queues_polled++];
			s->port_id = srv->ports[i].port_id;
			s->queue = q;
			s->tx_udp_csum = srv->ports[i].tx_udp_csum;
			rte_eth_macaddr_get(s->port_id, &s->mac);
			if (w->tx_queue == NULL)
				w->tx_queue = s;
			ret = srv_worker_init_txb(w, s);
			if (ret != 0)
				return ret;
		}
	}
	/* Lcores with nothing to poll would only spin. */
	for (i = 0; i < srv->n_workers; i++)
		if (srv->workers[i]->n_queues_polled == 0)
			SRV_LOG(NOTICE, "lcore %u has no queue to poll (more lcores than queues)",
				srv->workers[i]->lcore_id);
	return 0;
}

/*
 * The interface of the default route: IPv4 from /proc/net/route, else IPv6
 * from /proc/net/ipv6_route. @return 0, or -ENOENT when there is none.
 */
static int
default_route_iface(char *out, size_t len)
{
	char line[512], ifn[64];
	unsigned int dst, flags, plen;
	char dst6[40];
	FILE *f;
	int found = 0;

	f = fopen("/proc/net/route", "re");
	if (f != NULL) {
		/* Iface Destination Gateway Flags ...; RTF_UP is 1. */
		while (!found && fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "%63s %x %*x %x", ifn, &dst, &flags) == 3 && dst == 0 &&
			    (flags & 1) && strcmp(ifn, "Iface") != 0)
				found = 1;
		fclose(f);
	}
	f = found ? NULL : fopen("/proc/net/ipv6_route", "re");
	if (f != NULL) {
		/* dst plen src plen next-hop metric refcnt use flags iface */
		while (!found && fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "%32s %x %*s %*x %*s %*x %*x %*x %x %63s", dst6, &plen,
				   &flags, ifn) == 4 &&
			    plen == 0 && (flags & 1) && strcmp(ifn, "lo") != 0)
				found = 1;
		fclose(f);
	}
	if (!found || strlen(ifn) >= len)
		return -ENOENT;
	snprintf(out, len, "%s", ifn);
	return 0;
}

static uint16_t
count_af_xdp_ports(void)
{
	struct rte_eth_dev_info info;
	uint16_t port_id, n = 0;

	RTE_ETH_FOREACH_DEV(port_id)
	if (rte_eth_dev_info_get(port_id, &info) == 0 &&
	    strcmp(info.driver_name, "net_af_xdp") == 0)
		n++;
	return n;
}

static void
log_totals(struct srv_server *srv, const char *what)
{
	struct srv_lcore_stats st;
	uint64_t drops = 0;
	unsigned int k;

	srv_stats_sum(srv, &st);
	for (k = 0; k < OX_PKT_DROP_MAX; k++)
		drops += st.pkt_drops[k];
	for (k = 0; k < SRV_DP_DROP_MAX; k++)
		drops += st.dp_drops[k];
	SRV_LOG(INFO,
		"%s: rx %" PRIu64 " tx %" PRIu64 " echo %" PRIu64 " dropped %" PRIu64
		" busy cycles/pkt %" PRIu64,
		what, st.rx_pkts, st.tx_pkts, st.echo, drops,
		st.rx_pkts ? st.busy_cycles / st.rx_pkts : 0);
}

static void
log_final(struct srv_server *srv)
{
	struct srv_lcore_stats st;
	unsigned int i, j, k;

	log_totals(srv, "totals");
	for (i = 0; i < srv->n_workers; i++) {
		const struct srv_worker *w = srv->workers[i];

		for (j = 0; j < w->n_queues_polled; j++) {
			const struct srv_queue *s = &w->queues[j];
			const struct srv_port_info *p = NULL;

			for (k = 0; k < srv->n_ports; k++)
				if (srv->ports[k].port_id == s->port_id)
					p = &srv->ports[k];
			SRV_LOG(INFO, "queue %s:%u (port %u, lcore %u): rx %" PRIu64 " tx %" PRIu64,
				p ? p->iface : "?", p && p->flash ? p->queue : s->queue, s->port_id,
				w->lcore_id, s->rx_pkts, s->tx_pkts);
		}
	}
	srv_stats_sum(srv, &st);
	for (k = 1; k < OX_PKT_DROP_MAX; k++)
		if (st.pkt_drops[k])
			SRV_LOG(INFO, "drop %s: %" PRIu64, ox_pkt_drop_names[k], st.pkt_drops[k]);
	for (k = 0; k < SRV_DP_DROP_MAX; k++)
		if (st.dp_drops[k])
			SRV_LOG(INFO, "drop %s: %" PRIu64, srv_dp_drop_names[k], st.dp_drops[k]);
}

/* TX completions free mbufs only when the PMD is called again: call it
 * with nothing to send until every mbuf is back, or 200 ms pass. */
static unsigned int
reap_tx(struct srv_server *srv)
{
	uint64_t deadline = rte_get_timer_cycles() + rte_get_timer_hz() / 5;
	unsigned int i, j, in_use;

	do {
		for (i = 0; i < srv->n_workers; i++)
			for (j = 0; j < srv->workers[i]->n_queues_polled; j++)
				rte_eth_tx_burst(srv->workers[i]->queues[j].port_id,
						 srv->workers[i]->queues[j].queue, NULL, 0);
		in_use = rte_mempool_in_use_count(srv->pool);
		if (in_use <= srv->baseline_in_use)
			break;
		rte_delay_us_sleep(1000);
	} while (rte_get_timer_cycles() < deadline);
	return in_use;
}

static int
shutdown_server(struct srv_server *srv, bool workers_launched)
{
	unsigned int i, j, in_use;
	int rc = 0;

	__atomic_store_n(&srv_stop, true, __ATOMIC_RELAXED);
	if (workers_launched)
		rte_eal_mp_wait_lcore();
	/* Its rings may hold mbufs: back to the pool before counting. */
	relay_free(srv);
	if (srv->pool != NULL && workers_launched) {
		log_final(srv);
		in_use = reap_tx(srv);
		if (in_use == srv->baseline_in_use) {
			SRV_LOG(INFO, "all mbufs back in the pool (%u in the RX rings)", in_use);
		} else {
			SRV_LOG(ERR, "mbuf leak: %u in use, %u expected", in_use,
				srv->baseline_in_use);
			rc = 1;
		}
	}
	for (i = 0; i < srv->n_workers; i++) {
		for (j = 0; j < srv->workers[i]->n_queues_polled; j++)
			rte_free(srv->workers[i]->queues[j].txb);
		ox_ratelimit_free(srv->workers[i]->probe_rl);
		rte_free(srv->workers[i]);
	}
	srv->n_workers = 0;
	if (srv->has_tap) {
		/* Closing it removes the kernel interface too. */
		rte_eth_dev_stop(srv->tap_port);
		rte_eth_dev_close(srv->tap_port);
		rte_eal_hotplug_remove("vdev", "net_tap_oxexit");
		srv->has_tap = false;
	}
	if (srv->use_flash) {
		unsigned int ifindex = srv->flash.ifindex;
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		char iface[sizeof(srv->flash.iface)];

		memcpy(iface, srv->flash.iface, sizeof(iface));
		ox_flash_destroy(&srv->flash);
		if (bpf_xdp_query((int)ifindex, 0, &q) == 0 && q.prog_id == 0)
			SRV_LOG(INFO, "XDP program detached from %s", iface);
		else
			SRV_LOG(WARNING, "an XDP program is still attached to %s", iface);
	} else {
		for (i = 0; i < srv->n_ports; i++) {
			rte_eth_dev_stop(srv->ports[i].port_id);
			rte_eth_dev_close(srv->ports[i].port_id);
		}
		rte_mempool_free(srv->pool);
	}
	srv->pool = NULL;
	ox_sessions_free(srv->sessions);
	srv->sessions = NULL;
	SRV_LOG(INFO, "stopped");
	return rc;
}

int
main(int argc, char **argv)
{
	static struct srv_server srv;
	bool launched = false;
	uint64_t hz, next_stats, end;
	unsigned int i;
	int ret, rc = 1;

	/* What an allow-list reload frees stays in the heap for the next one:
	 * the same pages again, not fresh ones faulted in and unmapped after
	 * (tens of thousands a million-key reload). On a virtual machine that
	 * shadows the guest's page tables that churn, in the workers' own
	 * process, stretched their loop turns: ten times the pauses over
	 * 100 us while a reload ran, and twice or more those over 1 ms; a
	 * reload now adds none. Large buffers (a reload reads the file whole)
	 * come from the heap too, not from mappings of their own. */
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
	mallopt(M_MMAP_THRESHOLD, INT_MAX);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		SRV_LOG(ERR, "EAL initialisation failed: %s", rte_strerror(rte_errno));
		/* EAL's failures here are nearly always privileges or hugepages. */
		if (check_privileges() == 0)
			explain_eal_failure();
		return 1;
	}
	argc -= ret;
	argv += ret;
	/* dpdk-dumpcap, a secondary process, captures the ports through this;
	 * nothing runs on the packet path until a capture starts. */
	if (rte_eal_process_type() == RTE_PROC_PRIMARY && rte_pdump_init() != 0)
		SRV_LOG(WARNING, "no capture with dpdk-dumpcap: %s", rte_strerror(rte_errno));
	ret = srv_conf_parse(&srv.conf, argc, argv);
	if (ret != 0) {
		rc = ret > 0 ? 0 : 1;
		goto out_eal;
	}

	if (srv_parse_pools(&srv.conf, &srv.pool_conf) != 0)
		goto out_eal;
	srv.sessions = ox_sessions_create(&(struct ox_sessions_conf){
		.name = "oxsess",
		.capacity = srv.conf.max_sessions,
		.socket_id = rte_socket_id(),
		.max_readers = RTE_MAX_LCORE,
		.priv_size = srv.conf.key_file[0] != '\0' ? relay_priv_size() : 0 });
	if (srv.sessions == NULL) {
		SRV_LOG(ERR,
			"cannot make a table of %u sessions: %s (lower "
			"--max-sessions or reserve more hugepages)",
			srv.conf.max_sessions, rte_strerror(rte_errno));
		goto out_eal;
	}

	/* No interface and no ports from EAL: the one the default route
	 * leaves by, as a relay's uplink usually is. */
	if (srv.conf.iface[0] == '\0' && rte_eth_dev_count_avail() == 0) {
		if (default_route_iface(srv.conf.iface, sizeof(srv.conf.iface)) != 0) {
			SRV_LOG(ERR, "no --iface and no default route to take "
				     "one from: give --iface IF (or EAL --vdev/-a ports)");
			goto out_eal;
		}
		SRV_LOG(NOTICE, "no --iface: using %s, the interface of the default route",
			srv.conf.iface);
	}
	if (srv.conf.iface[0] != '\0' && rte_eth_dev_count_avail() == 0) {
		if (check_privileges() != 0)
			goto out_eal;
		if (if_nametoindex(srv.conf.iface) == 0) {
			SRV_LOG(ERR,
				"interface %s does not exist (see ip link; "
				"inside a namespace, run the server in it)",
				srv.conf.iface);
			goto out_eal;
		}
		ret = setup_flash(&srv, false);
	} else if (count_af_xdp_ports() > 0) {
		if (count_af_xdp_ports() != rte_eth_dev_count_avail()) {
			SRV_LOG(ERR, "net_af_xdp ports mixed with other ports; "
				     "run FLASH ports on their own");
			goto out_eal;
		}
		if (srv.conf.iface[0] != '\0')
			SRV_LOG(WARNING,
				"--iface %s ignored: the --vdev arguments name the "
				"interface",
				srv.conf.iface);
		ret = setup_flash(&srv, true);
	} else {
		if (srv.conf.iface[0] != '\0')
			SRV_LOG(WARNING, "EAL already has ports; --iface %s ignored",
				srv.conf.iface);
		ret = setup_generic(&srv);
	}
	if (ret != 0) {
		SRV_LOG(ERR, "port setup failed: %s", strerror(-ret));
		goto out;
	}
	ret = setup_workers(&srv);
	if (ret != 0) {
		SRV_LOG(ERR, "worker setup failed: %s", strerror(-ret));
		goto out;
	}
	if (srv.conf.tap[0] != '\0') {
		ret = srv_tap_setup(&srv);
		if (ret != 0)
			goto out;
	}
	ret = relay_init(&srv);
	if (ret != 0)
		goto out;
	SRV_LOG(INFO,
		"mbuf pool: %u mbufs, %u of them for what the handshake queues and the "
		"lcores' inboxes can hold",
		srv.pool->size, relay_mbufs_held(&srv.conf, rte_lcore_count()));
	signal(SIGHUP, on_sighup);
	if (srv_telemetry_register(&srv) != 0)
		SRV_LOG(WARNING, "telemetry commands not registered");
	srv.baseline_in_use = rte_mempool_in_use_count(srv.pool);

	for (i = 0; i < srv.n_ports; i++) {
		const struct srv_port_info *p = &srv.ports[i];

		SRV_LOG(INFO,
			"port %u: %s:%u, %u queue(s), %s, UMEM %s, XDP %s, UDP checksum on send: "
			"%s",
			p->port_id, p->iface, p->queue, p->n_queues, p->copy_mode, p->umem,
			p->xdp_mode, p->tx_udp_csum ? "offloaded" : "software");
	}
	for (i = 0; i < srv.n_workers; i++)
		if (srv.workers[i]->lcore_id != rte_get_main_lcore())
			rte_eal_remote_launch(srv_worker_main, srv.workers[i],
					      srv.workers[i]->lcore_id);
	launched = true;
	{
		char ports[SRV_MAX_UDP_PORTS * 7] = "";
		size_t o = 0;

		for (i = 0; i < srv.conf.ports.n; i++)
			o += (size_t)snprintf(ports + o, sizeof(ports) - o, "%s%u", i ? "," : "",
					      srv.conf.ports.port[i]);
		if (srv.use_flash)
			SRV_LOG(NOTICE, "up on AF_XDP: %s, %u queue(s), %s UMEM, UDP port %s",
				srv.flash.iface, srv.flash.n_ports,
				ox_flash_umem_mode_str(srv.flash.umem_mode), ports);
		else
			SRV_LOG(NOTICE, "up on %u DPDK port(s), UDP port %s", srv.n_ports, ports);
	}

	hz = rte_get_timer_hz();
	srv.start_tsc = rte_get_timer_cycles();
	end = srv.conf.duration ? srv.start_tsc + srv.conf.duration * hz : UINT64_MAX;
	next_stats = srv.start_tsc + srv.conf.stats_interval * hz;
	if (srv.workers[0]->lcore_id == rte_get_main_lcore()) {
		/* Single lcore: it polls; only a signal stops it. */
		signal(SIGALRM, on_signal);
		if (srv.conf.duration)
			alarm(srv.conf.duration);
		poll_srv = &srv;
		if (srv.relay != NULL)
			srv.workers[0]->poll_hook = single_lcore_control;
		srv_worker_main(srv.workers[0]);
	} else {
		rc = 0;
		while (!__atomic_load_n(&srv_stop, __ATOMIC_RELAXED)) {
			uint64_t now = rte_get_timer_cycles();

			__atomic_store_n(&srv.ctl_alive_tsc, rte_rdtsc(), __ATOMIC_RELAXED);
			if (now >= end)
				break;
			if (srv.conf.stats_interval && now >= next_stats) {
				log_totals(&srv, "stats");
				next_stats += srv.conf.stats_interval * hz;
			}
			/* A deleted TAP would swallow the exit path silently: stop
			 * with an error and let the service manager start afresh. */
			if (srv.has_tap && if_nametoindex(srv.conf.tap) == 0) {
				SRV_LOG(ERR,
					"exit TAP %s was deleted from under the server; stopping "
					"(a restart recreates it)",
					srv.conf.tap);
				rc = 1;
				break;
			}
			/* Handshakes waiting: no sleep until they are done. */
			if (relay_control(&srv) == 0)
				rte_delay_us_sleep(srv.relay != NULL ? 1000 : 50 * 1000);
		}
		goto out;
	}
	rc = 0;
out:
	if (shutdown_server(&srv, launched) != 0)
		rc = 1;
out_eal:
	rte_pdump_uninit();
	rte_eal_cleanup();
	return rc;
}
