/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's control thread: initiations (lib/oxtunnel's responder, the
 * allow-list, cookies and rate limits), receiver indexes, sessions made and
 * ended, keypairs handed to their owners, allow-list reloads with the
 * address pool rebuilt, idle reaping and the handshake timestamps' file.
 * It never touches a TX queue: replies go out through the owner's inbox.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <sodium.h>

#include "relay.h"

static volatile sig_atomic_t reload_requested;

void
relay_request_reload(void)
{
	reload_requested = 1;
}

/* ------------------------------------------------------------- control */

/* Hand a finished frame to a worker's TX. @return 0, or -ENOBUFS (freed). */
static int
to_worker(struct srv_relay *r, uint16_t wid, struct rte_mbuf *m, enum inbox_kind kind)
{
	m->hash.usr = kind;
	if (rte_ring_mp_enqueue(r->srv->workers[wid]->inbox, m) != 0) {
		r->relay_hs_drops[RELAY_HS_REPLY_INBOX_FULL]++;
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	return 0;
}

/* A receiver index no keypair of its session uses any more. */
static void
index_retire(struct srv_relay *r, uint32_t idx)
{
	struct ox_session *sess = by_index(r, idx);
	struct relay_sess *rs;
	unsigned int i;

	if (sess == NULL)
		return;
	rs = ox_session_priv(sess);
	for (i = 0; i < rs->n_idx; i++) {
		if (rs->idx[i] == idx) {
			rs->idx[i] = rs->idx[--rs->n_idx];
			rte_hash_del_key(r->by_index, &idx);
			return;
		}
	}
}

/*
 * Wipe what a session held, once lib/sessions says no lcore can hold it
 * any more (a grace period after its end).
 */
void
relay_session_released(struct ox_session *sess, void *arg)
{
	struct relay_sess *rs = ox_session_priv(sess);

	(void)arg;
	ox_peer_wipe(&rs->peer);
	ox_sendkey_wipe(&rs->tx[0]);
	ox_sendkey_wipe(&rs->tx[1]);
}

/*
 * End a session: lookups stop finding it at once; its keys are wiped a
 * grace period later (relay_session_released), when no worker can hold it.
 */
static void
remove_session(struct srv_relay *r, struct ox_session *sess, const char *why)
{
	struct relay_sess *rs = ox_session_priv(sess);
	int32_t pos;

	conn_log_end(r, sess, why, ox_mono_ns());

	while (rs->n_idx > 0)
		rte_hash_del_key(r->by_index, &rs->idx[--rs->n_idx]);
	relay_routes_session(r, sess, false);
	pos = rte_hash_del_key(r->by_key, sess->key);
	if (pos < 0)
		SRV_LOG(WARNING, "session %#x had no key entry", sess->index);
	ox_sessions_del(r->srv->sessions, sess);
	r->sessions_by_proto[rs->proto]--;
	r->removed++;
}

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What every worker has sealed for a slot, over all its sessions. */
static void
txc_sum(const struct srv_relay *r, uint32_t slot, uint64_t *pkts, uint64_t *bytes,
	uint64_t *limited)
{
	uint64_t p = 0, b = 0, l = 0;
	unsigned int i;

	for (i = 0; i < r->srv->n_workers; i++) {
		const struct relay_txc *c = &r->srv->workers[i]->stage->txc[slot];

		p += __atomic_load_n(&c->pkts, __ATOMIC_RELAXED);
		b += __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
		l += __atomic_load_n(&c->limited, __ATOMIC_RELAXED);
	}
	if (pkts != NULL) {
		*pkts = p;
		*bytes = b;
	}
	if (limited != NULL)
		*limited = l;
}

/* A new session's status starts at zero (before any worker can see it). */
static void
status_start(struct srv_relay *r, struct ox_session *sess, uint64_t now)
{
	struct relay_sess *rs = ox_session_priv(sess);

	rs->rx_pkts = rs->rx_bytes = 0;
	rs->c2c_refused = 0;
	rs->rate_in_tat = rs->rate_out_tat = 0;
	rs->rate_in_dropped = 0;
	rs->hs_realtime_ns = 0;
	rs->start_ns = now;
	txc_sum(r, sess->slot, &rs->tx_base_pkts, &rs->tx_base_bytes, &rs->tx_base_limited);
}

/*
 * What a session's allow-list line @p e (NULL: none) sets: whom it may
 * reach and its rate (control; at the handshake and at every reload; its
 * expiry stays the line's). The rate's burst: RELAY_RATE_BURST_NS of it,
 * at least RELAY_RATE_BURST_MIN bytes, at most what the policer holds.
 */
static void
peer_apply(struct srv_relay *r, struct ox_session *sess, const struct ox_allow_entry *e)
{
	struct relay_sess *rs = ox_session_priv(sess);
	uint64_t rate = e != NULL ? e->rate : 0;
	uint64_t burst = rate / 8 * RELAY_RATE_BURST_NS / 1000000000u;

	relay_c2c_apply(r, sess, e);
	burst = RTE_MAX(burst, RELAY_RATE_BURST_MIN);
	burst = RTE_MIN(burst, (uint64_t)OX_POLICER_BURST_MAX);
	/* The allow-list takes only the rates the policer takes. */
	ox_policer_conf_set(&rs->rate, rate, (uint32_t)burst);
}

void
relay_peer_status(const struct srv_relay *r, struct ox_session *sess, uint64_t now,
		  struct relay_peer_status *st)
{
	struct relay_sess *rs = ox_session_priv(sess);
	uint64_t pkts, bytes, limited;

	st->rx_pkts = __atomic_load_n(&rs->rx_pkts, __ATOMIC_RELAXED);
	st->rx_bytes = __atomic_load_n(&rs->rx_bytes, __ATOMIC_RELAXED);
	txc_sum(r, sess->slot, &pkts, &bytes, &limited);
	st->tx_pkts = pkts - rs->tx_base_pkts;
	st->tx_bytes = bytes - rs->tx_base_bytes;
	st->rate_out_dropped = limited - rs->tx_base_limited;
	st->rate_in_dropped = __atomic_load_n(&rs->rate_in_dropped, __ATOMIC_RELAXED);
	st->c2c_refused = __atomic_load_n(&rs->c2c_refused, __ATOMIC_RELAXED);
	st->hs_realtime_ns = rs->hs_realtime_ns;
	st->age_ns = now > rs->start_ns ? now - rs->start_ns : 0;
	st->proto = rs->proto;
	relay_ep_read(rs, &st->ep);
}

/* An accepted handshake not finished: its keypair, install entry and
 * receiver index go back. */
static void
unaccept(struct srv_relay *r, struct relay_install *in, struct rte_mbuf *m)
{
	ox_keypair_wipe(&in->kp);
	rte_hash_del_key(r->by_index, &in->index);
	__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
	rte_pktmbuf_free(m);
	r->n_bad++;
}

/*
 * What an engine accepted: its session (made, or found for a rekey), the
 * reserved receiver index pointed at it, the keypair on its way to the
 * owner with the response. An engine judged on the view of its time: after
 * a reload the key must still be listed with the same addresses, and its
 * timestamp still the greatest the new list knows.
 */
static void
finish_accepted(struct srv_relay *r, struct rte_mbuf *m, uint16_t wid, uint64_t now)
{
	struct relay_install *in = relay_dyn(r, m)->install;
	struct ox_allow_entry *cur = ox_allowlist_find(r->allow, in->peer_key);
	uint8_t pi = in->proto;
	struct ox_session *sess = NULL;
	struct relay_sess *rs;
	struct ox_tunnel_addr a;
	void *data;
	bool rekey = false;
	int ret;

	if (in->gen != r->view->gen) {
		if (cur == NULL || ox_addrpool_find(r->pool, in->peer_key, &a) != 0 ||
		    a.v4 != in->addr.v4 || memcmp(a.v6, in->addr.v6, 16) != 0) {
			r->relay_hs_drops[RELAY_HS_LIST_CHANGED]++;
			goto refuse;
		}
		ret = ox_allow_entry_accept(cur, in->ts, now, 0);
		if (ret < 0) {
			r->hs_drops[-ret]++;
			goto refuse;
		}
	}
	/* Judged a moment before its line expired: the session would outlive
	 * the expiry that end_stale_sessions() has already passed. */
	if (cur != NULL && ox_allow_entry_expired(cur)) {
		r->hs_drops[OX_DROP_PEER_EXPIRED]++;
		goto refuse;
	}
	/* Its timestamp outlives the allow-list entry, and reaches the kernel
	 * before the response leaves (a kill -9 cannot reopen it). A store
	 * that cannot be written refuses nobody: said once. */
	ret = ox_tsstore_note(r->ts, in->peer_key, in->ts);
	if (ret != 0) {
		if (!r->ts_failing)
			SRV_LOG(ERR, "handshake state not saved: %s", strerror(-ret));
		r->ts_failing = true;
	}
	if (rte_hash_lookup_data(r->by_key, in->peer_key, &data) >= 0) {
		sess = data;
		/* A key that comes back with the other protocol starts over. */
		if (((struct relay_sess *)ox_session_priv(sess))->proto != pi) {
			remove_session(r, sess, "protocol_changed");
			sess = NULL;
		} else {
			rekey = true;
		}
	}
	if (sess == NULL) {
		ret = ox_sessions_add(r->srv->sessions, in->peer_key, &in->addr, now, &sess);
		if (ret != 0) {
			r->relay_hs_drops[ret == -EEXIST ? RELAY_HS_ADDRESS_IN_USE
							 : RELAY_HS_SESSIONS_FULL]++;
			goto refuse;
		}
		rs = ox_session_priv(sess);
		ox_peer_init(&rs->peer);
		status_start(r, sess, now);
		rte_seqlock_init(&rs->ep_lock);
		rs->ep = in->from;
		rs->owner = wid;
		rs->proto = pi;
		peer_apply(r, sess, cur);
		if (rte_hash_add_key_data(r->by_key, in->peer_key, sess) != 0) {
			ox_sessions_del(r->srv->sessions, sess);
			r->relay_hs_drops[RELAY_HS_SESSIONS_FULL]++;
			goto refuse;
		}
		r->sessions_by_proto[pi]++;
		r->hs_new++;
		relay_routes_session(r, sess, true);
	}
	rs = ox_session_priv(sess);
	if (rs->n_idx == IDX_MAX || rte_hash_add_key_data(r->by_index, &in->index, sess) != 0) {
		r->relay_hs_drops[RELAY_HS_NO_INDEX]++;
		goto refuse;
	}
	rs->idx[rs->n_idx++] = in->index;
	in->sess_index = sess->index;
	if (rekey)
		r->hs_rekey++;
	r->hs_ok++;
	r->hs_by_proto[pi]++;
	rs->hs_realtime_ns = realtime_ns();
	conn_log_handshake(r, sess, rekey, &in->from);
	/* The owner installs the keypair before the client can use it. */
	if (to_worker(r, rs->owner, m, INBOX_RESPONSE) != 0) {
		/* Never reaches the owner: the install entry and the index would
		 * stay taken. */
		ox_keypair_wipe(&in->kp);
		__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
		index_retire(r, in->index);
	}
	return;
refuse:
	unaccept(r, in, m);
}

/* An INIT an engine has judged. */
static void
finish(struct srv_relay *r, struct rte_mbuf *m, uint64_t now)
{
	uint16_t wid = (uint16_t)m->hash.usr;
	const struct relay_pkt_mark *k = &relay_dyn(r, m)->pkt;
	struct ox_src src;
	struct ox_pkt p;

	switch (m->hash.usr >> 16) {
	case HS_OUT_COOKIE:
		r->n_bad++;
		r->cookies++;
		r->hs_drops[OX_DROP_COOKIE_SENT]++;
		to_worker(r, wid, m, INBOX_SEND);
		return;
	case HS_OUT_ACCEPTED:
		finish_accepted(r, m, wid, now);
		return;
	default:
		break;
	}
	/* Refused by lib/oxtunnel (the engine counted the relay's own). */
	r->n_bad++;
	r->hs_drops[-k->hs_drop]++;
	pkt_unmark(r, m, &p);
	relay_src_of(&p, &src);
	conn_log_refused(r, &src);
	rte_pktmbuf_free(m);
}

static bool
zero16(const uint8_t *b)
{
	static const uint8_t z[16];

	return memcmp(b, z, 16) == 0;
}

/*
 * The address pool an allow-list gives: a function of the list alone, so
 * that every relay of a fleet sharing the list gives a key the same
 * addresses, and so does one relay at start and at every reload. First the
 * fixed addresses, in file order; then, in file order too, every other key
 * gets the pool address its hash points at or, where an earlier line holds
 * that one, the next free after it. A key appended to the list moves no
 * other; a key removed frees its address, and the one later line that had
 * stepped past it (if any) moves back to where its hash points.
 */
struct ox_addrpool *
relay_pool_build(const struct ox_allowlist *al, const struct ox_addrpool_conf *pc, char *err,
		 size_t errlen)
{
	const struct ox_allow_entry *e, **order;
	struct ox_addrpool *p;
	struct ox_tunnel_addr a;
	uint32_t i, k, max_line = 0;
	int ret;

	p = ox_addrpool_create(pc);
	/* The list is sorted by key for lookups: take its lines in file order,
	 * each put at its line number (a sort would reach into every entry
	 * n log n times, in no order the cache can follow). */
	for (i = 0; i < al->n; i++)
		max_line = RTE_MAX(max_line, al->e[i].line);
	order = calloc((size_t)max_line + 1, sizeof(*order));
	if (p == NULL || order == NULL) {
		snprintf(err, errlen, "cannot make the address pool: %s", strerror(ENOMEM));
		goto fail;
	}
	for (i = 0; i < al->n; i++)
		order[al->e[i].line] = &al->e[i];
	for (i = 0, k = 0; i <= max_line; i++)
		if (order[i] != NULL)
			order[k++] = order[i];
	for (i = 0; i < al->n; i++) {
		e = order[i];
		if (e->v4 == 0 && zero16(e->v6))
			continue;
		ret = ox_addrpool_reserve(p, e->key, e->v4, zero16(e->v6) ? NULL : e->v6);
		if (ret != 0) {
			snprintf(err, errlen, "allow-list line %u: %s", e->line,
				 ret == -EINVAL	  ? "address outside the pools, or the relay's own"
				 : ret == -EEXIST ? "address (or the IPv6 derived from the IPv4) "
						    "is another line's"
						  : strerror(-ret));
			goto fail;
		}
	}
	for (i = 0; i < al->n; i++) {
		e = order[i];
		if (e->v4 != 0)
			continue;
		ret = ox_addrpool_get(p, e->key, &a);
		if (ret != 0) {
			snprintf(err, errlen, "allow-list line %u: no pool address left (%s)",
				 e->line, strerror(-ret));
			goto fail;
		}
	}
	free(order);
	return p;
fail:
	free(order);
	ox_addrpool_free(p);
	return NULL;
}

/*
 * After a reload: end the sessions of keys no longer listed, and of keys
 * whose addresses are not the ones the new pool holds for them (a fixed
 * address added, changed or taken from them).
 */
static void
end_stale_sessions(struct srv_relay *r)
{
	const void *key;
	void *data;
	uint32_t iter = 0;
	struct ox_session *gone[CTRL_BURST];
	const char *why[CTRL_BURST], *why_key[CTRL_BURST];
	struct ox_tunnel_addr a;
	unsigned int n, i;

	/* Deleting a key moves no other (no extendable buckets): the walk
	 * goes on where it stopped. */
	do {
		n = 0;
		while (n < CTRL_BURST && rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0) {
			struct ox_session *sess = data;
			const struct ox_allow_entry *e = ox_allowlist_find(r->allow, key);

			if (e == NULL) {
				why[n] = "key no longer on the allow-list";
				why_key[n] = "removed";
				gone[n++] = sess;
			} else if (ox_allow_entry_expired(e)) {
				why[n] = "its allow-list line expired";
				why_key[n] = "expired";
				gone[n++] = sess;
			} else if (ox_addrpool_find(r->pool, key, &a) != 0 ||
				   a.v4 != sess->addr.v4 || memcmp(a.v6, sess->addr.v6, 16) != 0) {
				why[n] = "its tunnel addresses changed";
				why_key[n] = "addresses_changed";
				gone[n++] = sess;
			} else {
				/* Its groups, rate or expiry, or the rules, may
				 * have changed. */
				peer_apply(r, sess, e);
			}
		}
		for (i = 0; i < n; i++) {
			SRV_LOG(INFO, "session %#x ended: %s", gone[i]->index, why[i]);
			remove_session(r, gone[i], why_key[i]);
		}
	} while (n == CTRL_BURST);
}

void
relay_expiry_schedule(struct srv_relay *r)
{
	int64_t now_s = (int64_t)(realtime_ns() / 1000000000u);
	uint32_t i, rated = 0, expired = 0, expiring = 0;
	char when[32];
	struct tm tm;
	time_t t;

	for (i = 0; i < r->allow->n; i++) {
		rated += r->allow->e[i].rate != 0;
		expired += r->allow->e[i].expires != 0 && r->allow->e[i].expires <= now_s;
		expiring += r->allow->e[i].expires > now_s;
	}
	r->next_expiry = ox_allowlist_next_expiry(r->allow, now_s);
	if (rated == 0 && expired == 0 && expiring == 0)
		return;
	when[0] = '\0';
	t = (time_t)r->next_expiry;
	if (r->next_expiry != 0 && gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), ", the next at %Y-%m-%dT%H:%MZ", &tm);
	SRV_LOG(NOTICE,
		"allow-list: %u line(s) with a rate, %u expired (admit no one), %u to expire%s",
		rated, expired, expiring, when);
}

/* Lines whose expiry has come: their sessions end (once a second). */
static void
expiry_poll(struct srv_relay *r)
{
	int64_t now_s = (int64_t)(realtime_ns() / 1000000000u);

	if (r->next_expiry == 0 || now_s < r->next_expiry)
		return;
	end_stale_sessions(r);
	r->next_expiry = ox_allowlist_next_expiry(r->allow, now_s);
}

int
relay_reload_allowlist(struct srv_relay *r)
{
	struct relay_routes *routes = NULL;
	struct relay_view *v;
	uint64_t t0 = ox_mono_ns(), c0 = srv_thread_cpu_ns(), t_parse, t_pool;
	char err[512];
	int ret;

	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		snprintf(err, sizeof(err), "%s", strerror(ENOMEM));
		ret = -ENOMEM;
		goto fail;
	}
	ret = ox_allowlist_load(&v->allow, r->srv->conf.allow_file, r->allow,
				r->srv->conf.max_sessions, err, sizeof(err));
	if (ret != 0) {
		free(v);
		goto fail;
	}
	/* A key listed again keeps refusing its old initiations. */
	ox_tsstore_apply(r->ts, &v->allow);
	t_parse = ox_mono_ns();
	v->pool = relay_pool_build(&v->allow, &r->srv->pool_conf, err, sizeof(err));
	t_pool = ox_mono_ns();
	if (v->pool == NULL)
		ret = -EINVAL;
	else
		ret = relay_c2c_build(&r->srv->conf, &v->allow, &v->c2c, err, sizeof(err));
	if (ret == 0)
		ret = relay_routes_build(r, &v->allow, &routes, err, sizeof(err));
	if (ret != 0) {
		relay_view_free(v);
		goto fail;
	}
	/* Engines judging on the old view until their next quiescent state
	 * are finished against this one (finish_accepted). */
	relay_view_publish(r, v);
	r->reloads++;
	r->reload_ms = (ox_mono_ns() - t0) / 1000000;
	r->reload_cpu_ms = (srv_thread_cpu_ns() - c0) / 1000000;
	/* Wall time above CPU time: the control thread shared its cpu. */
	SRV_LOG(NOTICE,
		"allow-list reloaded: %u key(s) in %" PRIu64 " ms (read and parsed %" PRIu64
		", pool %" PRIu64 ", routes %" PRIu64 "; %" PRIu64 " ms of cpu)",
		r->allow->n, r->reload_ms, (t_parse - t0) / 1000000, (t_pool - t_parse) / 1000000,
		(ox_mono_ns() - t_pool) / 1000000, r->reload_cpu_ms);
	relay_c2c_say(&v->c2c, &v->allow);
	/* Built on the new list's places: published before the sessions of
	 * the keys it dropped end, which clear theirs in it. */
	relay_routes_publish(r, routes);
	end_stale_sessions(r);
	relay_expiry_schedule(r);
	return 0;
fail:
	r->reload_errors++;
	SRV_LOG(ERR, "allow-list not reloaded, the previous one stays: %s", err);
	return ret;
}

/*
 * A session of a protocol with passive keepalives that sent packets
 * PASSIVE_KEEPALIVE_NS ago and has been sent nothing since: its owner seals
 * an empty DATA. Cleared here, so that a slow owner is not asked twice; one
 * that cannot be asked (no mbuf, a full inbox) is asked next second.
 */
static void
passive_keepalive(struct srv_relay *r, struct ox_session *sess, uint64_t now)
{
	struct relay_sess *rs = ox_session_priv(sess);
	uint64_t since = __atomic_load_n(&rs->unanswered_ns, __ATOMIC_RELAXED);
	struct rte_mbuf *m;

	if (since == 0 || now < since || now - since < PASSIVE_KEEPALIVE_NS)
		return;
	m = rte_pktmbuf_alloc(r->srv->pool);
	if (m == NULL)
		return;
	m->hash.usr = INBOX_KEEPALIVE;
	relay_dyn(r, m)->pkt.sess = sess->index;
	if (rte_ring_mp_enqueue(r->srv->workers[rs->owner]->inbox, m) != 0) {
		rte_pktmbuf_free(m);
		return;
	}
	__atomic_store_n(&rs->unanswered_ns, 0, __ATOMIC_RELAXED);
}

static void
reap_idle(struct srv_relay *r, uint64_t now)
{
	uint64_t idle = (uint64_t)r->srv->conf.idle_timeout * 1000000000u;
	struct ox_session *gone[CTRL_BURST];
	const void *key;
	void *data;
	uint32_t iter = 0;
	unsigned int n, i;

	/* Every session every pass: under a mass expiry the others still get
	 * their passive keepalives, and no idle keys stay for another second.
	 * Deleting a key moves no other, so the walk goes on where it was. */
	do {
		n = 0;
		while (n < CTRL_BURST && rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0) {
			struct ox_session *sess = data;
			uint64_t last = __atomic_load_n(&sess->last_rx_ns, __ATOMIC_RELAXED);

			if (now > last && now - last > idle)
				gone[n++] = sess;
			else
				passive_keepalive(r, sess, now);
		}
		for (i = 0; i < n; i++) {
			SRV_LOG(INFO, "session %#x ended: idle for %u s", gone[i]->index,
				r->srv->conf.idle_timeout);
			remove_session(r, gone[i], "idle");
			r->reaped++;
		}
	} while (n == CTRL_BURST);
}

unsigned int
relay_control(struct srv_server *srv)
{
	struct srv_relay *r = srv->relay;
	struct rte_mbuf *ms[CTRL_BURST];
	void *ev[CTRL_BURST];
	unsigned int n, i, work, queued, cap;
	bool under_load;
	uint64_t now;

	if (r == NULL)
		return 0;
	now = ox_mono_ns();
	/* Under load when initiations queue up or arrive faster than
	 * --hs-load-pps (over the last 100 ms): then only sources that proved
	 * their address (mac2) get a Diffie-Hellman. */
	if (now - r->win_start_ns >= 100000000u) {
		r->last_win_inits = r->win_inits;
		r->win_inits = 0;
		r->win_start_ns = now;
	}
	queued = rte_ring_count(r->hs_in);
	cap = rte_ring_get_capacity(r->hs_in);
	under_load = queued > cap / 8 || r->last_win_inits * 10 > srv->conf.hs_load_pps ||
		     r->win_inits * 10 > srv->conf.hs_load_pps;
	__atomic_store_n(&r->under_load, under_load, __ATOMIC_RELAXED);
	if (under_load)
		r->under_load_polls++;
	__atomic_store_n(&srv->load_bits,
			 (under_load ? SRV_LOAD_COOKIES : 0) |
				 (queued > cap / 2 ? SRV_LOAD_HS_QUEUE : 0),
			 __ATOMIC_RELAXED);
	relay_engines_stash(r);
	/* The control thread's own engine, a few handshakes a loop. */
	work = relay_engine_run(r, r->engines[0], ENGINE_BURST_CTRL * ENGINE_TURNS);
	relay_engines_fold(r);
	/* Every judged INIT waiting, the engines' and its own. */
	while ((n = rte_ring_sc_dequeue_burst(r->hs_done, (void **)ms, CTRL_BURST, NULL)) > 0) {
		work += n;
		r->win_inits += n;
		for (i = 0; i < n; i++) {
			bool sample = r->fin_seq++ % RELAY_CPU_SAMPLE == 0;
			uint64_t t0 = rte_rdtsc(), c0 = sample ? srv_thread_cpu_ns() : 0;
			uint64_t ok0 = r->hs_ok;

			finish(r, ms[i], now);
			if (r->hs_ok != ok0) {
				r->cycles_fin += rte_rdtsc() - t0;
				if (sample) {
					r->cpu_fin += relay_cpu_since(c0);
					r->cpu_fin_n++;
				}
			}
		}
	}
	/* Every event waiting: none is left to fill the ring. */
	while ((n = rte_ring_sc_dequeue_burst(r->events, ev, CTRL_BURST, NULL)) > 0) {
		work += n;
		for (i = 0; i < n; i++) {
			uintptr_t e = (uintptr_t)ev[i];
			uint32_t v = (uint32_t)e;
			struct ox_session *sess;

			switch (e >> 32) {
			case EV_END:
				sess = ox_sessions_by_index(srv->sessions, v);
				if (sess != NULL) {
					SRV_LOG(INFO, "session %#x ended by its client",
						sess->index);
					remove_session(r, sess, "client");
				}
				break;
			case EV_RETIRE:
				index_retire(r, v);
				break;
			case EV_ROAM:
				sess = ox_sessions_by_index(srv->sessions, v);
				if (sess != NULL)
					conn_log_roam(r, sess, now);
				break;
			}
		}
	}
	if (reload_requested) {
		reload_requested = 0;
		relay_reload_allowlist(r);
	}
	srv_exit_watch_poll(srv, &r->exitw, &r->policy, &r->gw, r->rcu, now);
	relay_routes_poll(r);
	relay_views_poll(r);
	relay_uapi_poll(r, now);
	relay_peers_answer(r, now);
	conn_log_interval(r, now, false);
	if (now - r->last_reap_ns > 1000000000u) {
		char err[256];

		r->last_reap_ns = now;
		reap_idle(r, now);
		expiry_poll(r);
		ox_sessions_reclaim(srv->sessions);
		/* Said once when it starts failing, once when it works again. */
		if (ox_tsstore_flush(r->ts, err, sizeof(err)) != 0) {
			if (!r->ts_failing)
				SRV_LOG(ERR, "handshake state not saved: %s", err);
			r->ts_failing = true;
		} else if (r->ts_failing) {
			SRV_LOG(NOTICE, "handshake state saved again");
			r->ts_failing = false;
		}
	}
	/* Idle: the listed keys' static-static DH, a few at a time (about a
	 * millisecond), so that first handshakes find it made. One server
	 * computes for both protocols' shared list. */
	if (work == 0 && (n = ox_hs_precompute(r->hs, PRECOMPUTE_BURST)) > 0) {
		r->precomputed += n;
		work = n;
	}
	return work;
}
