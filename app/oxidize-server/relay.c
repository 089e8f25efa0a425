/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's setup and teardown: its rings, tables, keys, allow-list,
 * address pool and exit policy, and the hooks it puts on the workers.
 * relay.h says who writes what, and where the rest lives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <rte_rcu_qsbr.h>
#include <sodium.h>

#include "relay.h"

/* The wire protocols on the port, asked in this order (relay_proto.h). */
const struct relay_proto *const relay_protos[RELAY_PROTO_MAX] = {
	&relay_proto_oxtunnel,
	&relay_proto_wireguard,
};

const char *const relay_ctr_names[RELAY_CTR_MAX] = {
#define RELAY_NAME(e, s) [RELAY_##e] = s,
	RELAY_CTRS(RELAY_NAME)
#undef RELAY_NAME
};

/* --hs-queue: INITs waiting for whichever engine is free. */
uint32_t
relay_hs_ring_size(const struct srv_server_conf *c)
{
	return rte_align32pow2(RTE_MAX(c->hs_queue, 64u));
}

/* The control thread drains it every loop, and finishes an outcome in
 * a few microseconds where an engine takes one to judge: --hs-queue, up to
 * 16384, holds what the engines judge meanwhile (an outcome that does not
 * fit is undone and counted, hs_done_queue_full). */
uint32_t
relay_done_ring_size(const struct srv_server_conf *c)
{
	return rte_align32pow2(RTE_MIN(c->hs_queue, 16384u));
}

uint32_t
relay_mbufs_held(const struct srv_server_conf *c, unsigned int n_workers)
{
	if (c->key_file[0] == '\0')
		return 0;
	/* rte_ring holds one less than its power-of-two size; each engine
	 * holds the INIT it answers. */
	return relay_hs_ring_size(c) + relay_done_ring_size(c) + n_workers * INBOX_SIZE +
	       relay_n_engines(c, n_workers);
}

/* The control thread's engine and one per worker given handshakes. */
unsigned int
relay_n_engines(const struct srv_server_conf *c, unsigned int n_workers)
{
	unsigned int n = RTE_MIN((unsigned int)c->hs_workers, n_workers);

	return 1 + RTE_MIN(n, RELAY_ENGINES_MAX - 1u);
}

uint32_t
relay_priv_size(void)
{
	return sizeof(struct relay_sess);
}

int
relay_init(struct srv_server *srv)
{
	static const struct rte_mbuf_dynfield dyn = {
		.name = "oxidize_relay_install",
		.size = sizeof(union relay_dyn),
		.align = __alignof__(union relay_dyn),
	};
	struct rte_hash_parameters hp = {
		.name = "ox_by_key",
		.entries = RTE_MAX(srv->conf.max_sessions, 16u),
		.key_len = OX_KEY_LEN,
		.socket_id = (int)rte_socket_id(),
	};
	/* Three keypairs a session (current, previous, next), each with its
	 * index; lock-free readers, entries recycled after a grace period. */
	struct rte_hash_parameters ip = {
		.name = "ox_by_index",
		.entries = RTE_MAX(srv->conf.max_sessions * 3, 64u) +
			   relay_n_engines(&srv->conf, srv->n_workers) *
				   (ENGINE_STASH + ENGINE_BURST_CTRL),
		.key_len = sizeof(uint32_t),
		.socket_id = (int)rte_socket_id(),
		.extra_flag =
			RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash_rcu_config irc = {
		.v = ox_sessions_rcu(srv->sessions),
		.mode = RTE_HASH_QSBR_MODE_DQ,
	};
	uint8_t priv[OX_KEY_LEN];
	struct ox_hs_conf hs_conf, wg_conf;
	uint32_t rl_entries;
	char err[512], pub64[OX_KEY_B64_LEN + 1];
	struct srv_relay *r;
	struct relay_view *v;
	unsigned int i;
	int ret;

	if (srv->conf.key_file[0] == '\0')
		return 0;
	if (srv->conf.allow_file[0] == '\0') {
		SRV_LOG(ERR, "--key needs --allow (the allow-list of client "
			     "public keys)");
		return -EINVAL;
	}
	r = rte_zmalloc("ox_relay", sizeof(*r), RTE_CACHE_LINE_SIZE);
	if (r == NULL)
		return -ENOMEM;
	r->srv = srv;
	r->exitw.nl = -1;
	r->uapi.lfd = -1;
	ret = ox_key_load(srv->conf.key_file, priv, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "%s", err);
		goto fail;
	}
	/* Sources with a bucket at once, under load: one for every four
	 * sessions the relay may hold (clients behind NATs share one), 40
	 * bytes each; the engines share the table. */
	ox_hs_conf_default(&hs_conf);
	rl_entries = RTE_MIN(srv->conf.max_sessions / 4, 1u << 20);
	hs_conf.ratelimit_entries = rte_align32pow2(RTE_MAX(hs_conf.ratelimit_entries, rl_entries));
	r->hs = ox_hs_create(priv, &hs_conf);
	wg_conf = hs_conf;
	wg_conf.wire = OX_WIRE_WIREGUARD;
	r->wg_hs = ox_hs_create(priv, &wg_conf);
	sodium_memzero(priv, sizeof(priv));
	if (r->hs == NULL || r->wg_hs == NULL) {
		ret = -errno;
		SRV_LOG(ERR, "key file %s does not hold a usable X25519 key", srv->conf.key_file);
		goto fail;
	}
	ret = ox_config_dns_parse(srv->conf.dns, &r->config, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "--dns: %s", err);
		goto fail;
	}
	if (r->config.n_dns != 0)
		SRV_LOG(NOTICE, "DNS servers for OxTunnel clients: %s", srv->conf.dns);
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = ox_allowlist_load(&v->allow, srv->conf.allow_file, NULL, srv->conf.max_sessions, err,
				sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "%s", err);
		free(v);
		goto fail;
	}
	r->ts = ox_tsstore_open(srv->conf.state_file[0] ? srv->conf.state_file : NULL, err,
				sizeof(err));
	if (r->ts == NULL) {
		ret = -errno;
		SRV_LOG(ERR, "--state: %s", err);
		relay_view_free(v);
		goto fail;
	}
	if (srv->conf.state_file[0] == '\0')
		SRV_LOG(NOTICE, "relay: no --state file: after a restart, initiations captured "
				"before it are not recognised as replays");
	ox_tsstore_apply(r->ts, &v->allow);
	ox_mac1_key(r->mac1_key, ox_hs_public(r->hs));
	ox_wg_mac1_key(r->wg_mac1_key, ox_hs_public(r->wg_hs));
	v->pool = relay_pool_build(&v->allow, &srv->pool_conf, err, sizeof(err));
	if (v->pool == NULL) {
		SRV_LOG(ERR, "%s", err);
		relay_view_free(v);
		ret = -EINVAL;
		goto fail;
	}
	ret = relay_c2c_build(&srv->conf, &v->allow, &v->c2c, err, sizeof(err));
	if (ret != 0) {
		SRV_LOG(ERR, "%s", err);
		relay_view_free(v);
		goto fail;
	}
	relay_c2c_say(&v->c2c, &v->allow);
	relay_view_publish(r, v);
	relay_expiry_schedule(r);
	ox_addrpool_gateway(r->pool, &r->gw);
	{
		struct relay_routes *rt;

		/* Before the exit policy, which allows the prefixes. */
		ret = relay_routes_build(r, r->allow, &rt, err, sizeof(err));
		if (ret != 0) {
			SRV_LOG(ERR, "%s", err);
			goto fail;
		}
		relay_routes_publish(r, rt);
	}
	ret = srv_exit_policy(srv, &r->gw, &r->policy);
	if (ret != 0)
		goto fail;
	/* Addresses added after start (an anycast address, DHCP) must be
	 * refused too: without the watch they would not be. */
	ret = srv_exit_watch_open(&r->exitw);
	if (ret != 0) {
		SRV_LOG(ERR, "cannot follow the host's addresses (netlink): %s", strerror(-ret));
		goto fail;
	}
	/* `wg show`: an operator's window, never a reason not to relay. */
	if (srv->conf.wg_name[0] != '\0') {
		ret = srv_uapi_open(&r->uapi, srv->conf.wg_name);
		if (ret == 0)
			SRV_LOG(NOTICE, "wg: `wg show %s` reads this relay (%s)", srv->conf.wg_name,
				r->uapi.path);
		else
			SRV_LOG(WARNING, "wg: no `wg show %s`: %s%s", srv->conf.wg_name,
				ret == -EADDRINUSE ? "another process serves that name"
						   : strerror(-ret),
				ret == -EADDRINUSE ? " (--wg-name NAME)" : "");
		ret = 0;
	}
	r->events = rte_ring_create("ox_events", EVENTS_SIZE, (int)rte_socket_id(), RING_F_SC_DEQ);
	r->by_key = rte_hash_create(&hp);
	r->rcu = ox_sessions_rcu(srv->sessions);
	r->by_index = rte_hash_create(&ip);
	if (r->by_index != NULL && rte_hash_rcu_qsbr_add(r->by_index, &irc) != 0) {
		rte_hash_free(r->by_index);
		r->by_index = NULL;
	}
	r->dyn_off = rte_mbuf_dynfield_register(&dyn);
	if (r->events == NULL || r->by_key == NULL || r->by_index == NULL || r->dyn_off < 0) {
		ret = -rte_errno;
		SRV_LOG(ERR, "relay setup failed: %s", rte_strerror(rte_errno));
		goto fail;
	}
	for (i = 0; i < srv->n_workers; i++) {
		struct srv_worker *w = srv->workers[i];
		char name[RTE_RING_NAMESIZE];

		snprintf(name, sizeof(name), "ox_inbox%u", i);
		w->inbox = rte_ring_create(name, INBOX_SIZE,
					   (int)rte_lcore_to_socket_id(w->lcore_id), RING_F_SC_DEQ);
		w->aead = ox_aead_create(OX_AEAD_AUTO);
		w->stage = rte_zmalloc_socket("ox_stage", sizeof(*w->stage), RTE_CACHE_LINE_SIZE,
					      (int)rte_lcore_to_socket_id(w->lcore_id));
		if (w->stage != NULL)
			w->stage->txc = rte_zmalloc_socket(
				"ox_txc", sizeof(struct relay_txc) * srv->conf.max_sessions,
				RTE_CACHE_LINE_SIZE, (int)rte_lcore_to_socket_id(w->lcore_id));
		if (w->inbox == NULL || w->aead == NULL || w->stage == NULL ||
		    w->stage->txc == NULL) {
			ret = -ENOMEM;
			goto fail;
		}
		if (w->tx_queue == NULL) {
			SRV_LOG(ERR,
				"lcore %u has no port queue to send from; "
				"use no more lcores than queues",
				w->lcore_id);
			ret = -EINVAL;
			goto fail;
		}
		w->relay = r;
		w->hook = relay_rx;
		w->tap_hook = relay_tap;
		w->stage_hook = relay_stage_flush;
		w->burst_hook = relay_burst;
	}
	ret = relay_engines_init(r);
	if (ret != 0) {
		SRV_LOG(ERR, "handshake engines not made: %s", strerror(-ret));
		goto fail;
	}
	if (srv->n_workers > 0)
		SRV_LOG(NOTICE, "AEAD: %s", ox_aead_name(srv->workers[0]->aead));
	ox_sessions_set_release(srv->sessions, relay_session_released, r);
	srv->relay = r;
	ox_key_to_base64(pub64, ox_hs_public(r->hs));
	SRV_LOG(NOTICE, "relay: public key %s, %u allowed key(s), tunnel MTU %u", pub64,
		r->allow->n, srv->conf.mtu);
	return 0;
fail:
	sodium_memzero(priv, sizeof(priv));
	srv->relay = r;
	relay_free(srv);
	return ret < 0 ? ret : -EINVAL;
}

void
relay_free(struct srv_server *srv)
{
	struct srv_relay *r = srv->relay;
	struct rte_mbuf *m;
	unsigned int i;

	if (r == NULL)
		return;
	/* The refusals of the last, short interval are told too. */
	conn_log_interval(r, ox_mono_ns(), true);
	__atomic_store_n(&srv->load_bits, 0, __ATOMIC_RELAXED);
	for (i = 0; i < srv->n_workers; i++) {
		struct srv_worker *w = srv->workers[i];

		if (w->inbox != NULL) {
			while (rte_ring_dequeue(w->inbox, (void **)&m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(w->inbox);
			w->inbox = NULL;
		}
		ox_aead_free(w->aead);
		w->aead = NULL;
		if (w->stage != NULL)
			rte_free(w->stage->txc);
		rte_free(w->stage);
		w->stage = NULL;
		w->relay = NULL;
		w->hook = NULL;
		w->tap_hook = NULL;
		w->stage_hook = NULL;
		w->burst_hook = NULL;
	}
	rte_ring_free(r->events);
	/* The workers have stopped: no key outlives the process in memory. */
	if (r->by_key != NULL) {
		const void *key;
		void *data;
		uint32_t iter = 0;

		while (rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0)
			relay_session_released(data, r);
	}
	rte_hash_free(r->by_key);
	rte_hash_free(r->by_index);
	ox_sessions_set_release(srv->sessions, NULL, NULL);
	if (r->ts != NULL) {
		char err[256];

		if (ox_tsstore_flush(r->ts, err, sizeof(err)) != 0)
			SRV_LOG(ERR, "handshake state not saved: %s", err);
		ox_tsstore_close(r->ts);
	}
	srv_uapi_close(&r->uapi);
	srv_exit_watch_close(&r->exitw);
	ox_policy_free(r->policy);
	/* The workers are gone: every replaced table can go. */
	if (r->routes_dq != NULL)
		rte_rcu_qsbr_dq_delete(r->routes_dq);
	relay_routes_free(r->routes);
	srv->peer_routes = NULL;
	srv->n_peer_routes = 0;
	relay_engines_free(r);
	ox_hs_free(r->hs);
	ox_hs_free(r->wg_hs);
	rte_free(r);
	srv->relay = NULL;
}

void
relay_retire(struct srv_relay *r, struct rte_rcu_qsbr_dq **dq, const char *name, uint32_t size,
	     rte_rcu_qsbr_free_resource_t free_fn, void *obj)
{
	if (*dq == NULL) {
		struct rte_rcu_qsbr_dq_parameters dqp = {
			.name = name,
			.size = size,
			.esize = sizeof(obj),
			.max_reclaim_size = size,
			.free_fn = free_fn,
			.v = r->rcu,
		};

		*dq = rte_rcu_qsbr_dq_create(&dqp);
	}
	if (*dq != NULL && rte_rcu_qsbr_dq_enqueue(*dq, &obj) == 0)
		return;
	/* The queue cannot take it: wait for the workers here. */
	rte_rcu_qsbr_synchronize(r->rcu, RTE_QSBR_THRID_INVALID);
	free_fn(NULL, &obj, 1);
}
