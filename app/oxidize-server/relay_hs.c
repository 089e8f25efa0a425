/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Handshake engines: where an INIT is judged and answered, which is almost
 * all X25519 (three variable-base and one fixed-base multiplications a
 * handshake, the fourth variable-base one kept per listed key). The control
 * thread is engine 0; every worker given handshakes (--hs-workers) is one
 * more, doing one X25519's worth between its bursts (judging an INIT, which
 * holds one DH, then each of the answer's three multiplications, the
 * answer in hand meanwhile), and only when its queues are not backlogged:
 * DATA waits for one multiplication at most (about 25 us here), not a
 * handshake's four.
 *
 * INITs wait in one queue, and whichever engine is free takes the next: an
 * engine's servers are siblings of the relay's (ox_hs_create_sibling), so a
 * source has one cookie secret and one token bucket whichever engine judges
 * it, kept by lib/oxtunnel under its lock. (Engines of their own per source
 * hash left one busy while another idled: the control thread's, on a cpu
 * it shares, took 2 to 3 times as long for its half of a storm.) What else
 * engines share is read-only (the allow-list view, the mac1 keys) or changed
 * atomically by lib/oxtunnel (an entry's replay state and kept DH). An
 * engine does not touch sessions, receiver indexes or the allow-list: it
 * answers with an index the control thread reserved for it (in by_index,
 * pointing at nothing until the handshake is finished) and hands every
 * INIT back, accepted or not, for the control thread to count, log and
 * finish (relay_ctl.c), but those the relay refuses on its own (waited too
 * long, no room): it counts them itself, as a storm's would fill the done
 * queue while the control thread is away and crowd out accepted ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <sodium.h>

#include "relay.h"

#define VIEW_DQ_SIZE 8 /* replaced views awaiting their grace period */

int
relay_hs_consume(struct srv_relay *r, struct ox_hs_server *hs, uint8_t *msg, uint16_t len,
		 const struct ox_src *src, uint64_t now, struct ox_responder *resp)
{
	uint8_t cookie[OX_COOKIE_LEN];
	int ret;

	ret = ox_hs_consume_init(hs, msg, len, src, now,
				 __atomic_load_n(&r->under_load, __ATOMIC_RELAXED), resp, cookie);
	if (ret == -OX_DROP_COOKIE_SENT) {
		memcpy(msg, cookie, sizeof(cookie));
		return (int)sizeof(cookie);
	}
	return ret;
}

/* ---------------------------------------------------------------- judge */

static struct relay_install *
install_take(struct relay_hs_engine *e)
{
	unsigned int i;

	for (i = 0; i < ENGINE_INSTALLS; i++) {
		struct relay_install *in = &e->installs[(e->next_install + i) % ENGINE_INSTALLS];

		if (__atomic_load_n(&in->busy, __ATOMIC_ACQUIRE) == 0) {
			e->next_install = (e->next_install + i + 1) % ENGINE_INSTALLS;
			in->busy = 1;
			return in;
		}
	}
	return NULL;
}

static int
index_take(struct relay_hs_engine *e, uint32_t *idx)
{
	void *v;

	if (e->n_spare > 0) {
		*idx = e->spare[--e->n_spare];
		return 0;
	}
	if (rte_ring_sc_dequeue(e->stash, &v) != 0)
		return -ENOSPC;
	*idx = (uint32_t)(uintptr_t)v;
	return 0;
}

/* An index taken but not sent: this engine's again. */
static void
index_put_back(struct relay_hs_engine *e, uint32_t idx)
{
	/* An engine holds one index at a time: the spares never overflow. */
	if (e->n_spare < RTE_DIM(e->spare))
		e->spare[e->n_spare++] = idx;
}

static void
count(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

/* Hand an INIT back to the control thread. @return 0, or -ENOBUFS (the
 * done queue is full: the caller undoes what it took). */
static int
hand_back(struct srv_relay *r, struct relay_hs_engine *e, struct rte_mbuf *m, uint16_t wid,
	  enum relay_hs_outcome out)
{
	m->hash.usr = (uint32_t)wid | (uint32_t)out << 16;
	if (rte_ring_mp_enqueue(r->hs_done, m) != 0) {
		count(&e->done_full, 1);
		return -ENOBUFS;
	}
	return 0;
}

static void
refuse(struct srv_relay *r, struct relay_hs_engine *e, struct rte_mbuf *m, uint16_t wid,
       int ox_drop, int relay_why)
{
	struct relay_pkt_mark *k = &relay_dyn(r, m)->pkt;

	if (relay_why >= 0) {
		/* Nothing for the control thread to do but count it. */
		count(&e->refused[relay_why], 1);
		rte_pktmbuf_free(m);
		return;
	}
	k->hs_drop = (int16_t)ox_drop;
	if (hand_back(r, e, m, wid, HS_OUT_REFUSED) != 0)
		rte_pktmbuf_free(m);
}

/* What a refusal of a proven key for its allow-list line's sake says, or
 * NULL for any other refusal. */
static const char *
refusal_of_line(int ret)
{
	switch (ret) {
	case -OX_DROP_PEER_EXPIRED:
		return "handshake refused, the line expired (expires=)";
	case -OX_DROP_PSK_WIREGUARD_ONLY:
		return "OxTunnel handshake refused, the line has a preshared key that only "
		       "WireGuard carries";
	default:
		return NULL;
	}
}

/* Judge one INIT: refused, a cookie reply, or taken in hand (e->cur) to be
 * answered by answer_step(). @p w: the worker the engine runs on, NULL on
 * the control thread. */
static void
judge(struct srv_relay *r, struct relay_hs_engine *e, struct srv_worker *w,
      const struct relay_view *v, struct rte_mbuf *m, uint64_t now)
{
	uint16_t wid = (uint16_t)m->hash.usr;
	uint8_t pi = relay_dyn(r, m)->pkt.proto;
	const struct relay_proto *proto = relay_protos[pi];
	struct relay_hs_cur *c = &e->cur;
	struct relay_install *in;
	struct ox_src src;
	struct ox_pkt p;
	uint8_t *payload;
	uint32_t idx;
	int ret;

	/* Wrapping milliseconds: a difference is right for 49 days. */
	if ((uint32_t)(now / 1000000) - relay_dyn(r, m)->pkt.rx_ms > ENGINE_MAX_WAIT_MS) {
		refuse(r, e, m, wid, 0, RELAY_HS_QUEUED_TOO_LONG);
		return;
	}
	pkt_unmark(r, m, &p);
	payload = p.frame + p.payload_off;
	relay_src_of(&p, &src);
	ret = proto->hs_consume(r, e->hs[pi], payload, p.payload_len, &src, now, &c->resp);
	if (ret > 0) {
		/* A cookie reply, written in place: back as it is. One that
		 * came in on this engine's own worker goes out from here (the
		 * control thread only counts it, folding in e->cookies): in a
		 * storm's first second every INIT draws one, faster than the
		 * control thread drains the done queue. */
		ox_pkt_reply(&p);
		ox_pkt_finish(&p, (uint16_t)ret);
		m->data_len = m->pkt_len = (uint16_t)(p.payload_off + ret);
		if (w != NULL && wid == w->id) {
			count(&e->cookies, 1);
			srv_worker_tx(w, w->tx_queue, m);
			return;
		}
		if (hand_back(r, e, m, wid, HS_OUT_COOKIE) != 0)
			rte_pktmbuf_free(m);
		return;
	}
	if (ret < 0) {
		const char *why = refusal_of_line(ret);

		if (why != NULL &&
		    !__atomic_exchange_n(&c->resp.peer->refusal_said, true, __ATOMIC_RELAXED))
			SRV_LOG(WARNING,
				"allow-list line %u%s%s: %s (said once per key; counted as "
				"hs_drop_%s)",
				c->resp.peer->line, c->resp.peer->name[0] ? " " : "",
				c->resp.peer->name, why, ox_drop_name(ret));
		refuse(r, e, m, wid, ret, -1);
		return;
	}
	in = install_take(e);
	if (in == NULL) {
		/* Owners are not keeping up; the client retries in 5 s. */
		ret = RELAY_HS_INSTALLS_FULL;
		goto refused;
	}
	/* Every listed key has its addresses in the view's pool. */
	if (ox_addrpool_find(v->pool, c->resp.peer_key, &in->addr) != 0) {
		ret = RELAY_HS_NO_ADDRESS;
		goto refused_in;
	}
	if (index_take(e, &idx) != 0) {
		ret = RELAY_HS_NO_INDEX;
		goto refused_in;
	}
	memcpy(in->peer_key, c->resp.peer_key, OX_KEY_LEN);
	memcpy(in->ts, c->resp.ts, sizeof(in->ts));
	/* The view may be gone by the answer's last step. */
	in->gen = v->gen;
	in->index = idx;
	in->proto = pi;
	c->m = m;
	c->in = in;
	c->p = p;
	c->now = now;
	c->wid = wid;
	return;
refused_in:
	__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
refused:
	sodium_memzero(&c->resp, sizeof(c->resp));
	refuse(r, e, m, wid, 0, ret);
}

/* One X25519 of the answer in hand (ox_hs_respond_step): the last one sends
 * it back to the control thread, accepted, or refused. */
static void
answer_step(struct srv_relay *r, struct relay_hs_engine *e)
{
	struct relay_hs_cur *c = &e->cur;
	struct relay_install *in = c->in;
	struct rte_mbuf *m = c->m;
	uint8_t pi = in->proto;
	int ret;

	ret = relay_protos[pi]->hs_respond(r, e->hs[pi], &c->resp, &in->addr, in->index, c->now,
					   c->p.frame + c->p.payload_off, &in->kp);
	if (ret == 0)
		return;
	c->m = NULL;
	if (ret < 0) {
		index_put_back(e, in->index);
		__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
		refuse(r, e, m, c->wid, ret, -1);
		return;
	}
	ox_pkt_flow_reply(&in->from, &c->p);
	ox_pkt_reply(&c->p);
	ox_pkt_finish(&c->p, (uint16_t)ret);
	m->data_len = m->pkt_len = (uint16_t)(c->p.payload_off + ret);
	relay_dyn(r, m)->install = in;
	if (hand_back(r, e, m, c->wid, HS_OUT_ACCEPTED) != 0) {
		ox_keypair_wipe(&in->kp);
		index_put_back(e, in->index);
		__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
		rte_pktmbuf_free(m);
		return;
	}
	count(&e->accepted, 1);
}

/* One X25519's worth of an engine's work: the next step of the answer in
 * hand, or the next INIT judged. @return 1 if there was work. */
static unsigned int
engine_turn(struct srv_relay *r, struct relay_hs_engine *e, struct srv_worker *w)
{
	uint64_t t0, c0 = 0, ok0 = e->accepted, d;
	struct relay_view *v;
	struct rte_mbuf *m;
	unsigned int pi;
	int step = -1;

	if (e->cur.m != NULL) {
		step = e->cur.resp.step;
		t0 = rte_rdtsc();
		if (e->sampled)
			c0 = srv_thread_cpu_ns();
		answer_step(r, e);
	} else {
		/* No receiver index to answer with (the control thread has
		 * not come round to reserve more): the INITs wait in the
		 * queue, not refused. */
		if (e->n_spare == 0 && rte_ring_empty(e->stash)) {
			count(&e->stash_waits, 1);
			return 0;
		}
		/* Nor room for a keypair until the control thread installs
		 * some: they are taken and given back in turn, so the next one
		 * tells. An INIT judged now would cost its DH and be refused. */
		if (__atomic_load_n(&e->installs[e->next_install].busy, __ATOMIC_ACQUIRE) != 0) {
			count(&e->stash_waits, 1);
			return 0;
		}
		if (rte_ring_mc_dequeue(r->hs_in, (void **)&m) != 0)
			return 0;
		t0 = rte_rdtsc();
		e->sampled = e->judged % RELAY_CPU_SAMPLE == 0;
		if (e->sampled)
			c0 = srv_thread_cpu_ns();
		/* Held until this lcore's next quiescent state: judge() only. */
		v = __atomic_load_n(&r->view, __ATOMIC_ACQUIRE);
		if (v != e->view) {
			for (pi = 0; pi < RELAY_PROTO_MAX; pi++)
				ox_hs_set_allowlist(e->hs[pi], &v->allow);
			e->view = v;
		}
		judge(r, e, w, v, m, ox_mono_ns());
		count(&e->judged, 1);
	}
	/* What an initiation costs its engine, accepted or not, over its
	 * turns. */
	t0 = rte_rdtsc() - t0;
	e->spent_tsc += t0;
	if (unlikely(t0 > e->long_tsc))
		count(&e->long_turns, 1);
	if (e->sampled) {
		d = relay_cpu_since(c0);
		e->spent_cpu += d;
		/* Steps 0 and 1 are one X25519 each (ox_hs_respond_step). */
		if (step == 0) {
			count(&e->x_base_cpu, d);
			count(&e->x_base_n, 1);
		} else if (step == 1) {
			count(&e->x_var_cpu, d);
			count(&e->x_var_n, 1);
		}
	}
	if (e->cur.m == NULL) {
		if (e->accepted != ok0) {
			count(&e->cycles_ok, e->spent_tsc);
			if (e->sampled) {
				count(&e->cpu_ok, e->spent_cpu);
				count(&e->cpu_ok_n, 1);
			}
		} else {
			count(&e->cycles_bad, e->spent_tsc);
		}
		e->spent_tsc = e->spent_cpu = 0;
	}
	return 1;
}

unsigned int
relay_engine_run(struct srv_relay *r, struct relay_hs_engine *e, unsigned int max)
{
	unsigned int n = 0;

	while (n < max && engine_turn(r, e, NULL) != 0)
		n++;
	return n;
}

unsigned int
relay_worker_hs(struct srv_worker *w)
{
	return engine_turn(w->relay, w->hs_engine, w);
}

/* ------------------------------------------------------------- control */

/* Outcomes the engines counted rather than handed back (their own
 * worker's cookie replies, the relay's refusals), counted as if they had
 * come back: the relay's counters and the load window stay the control
 * thread's alone. */
void
relay_engines_fold(struct srv_relay *r)
{
	unsigned int i, k;
	uint64_t c, d;

	for (i = 0; i < r->n_engines; i++) {
		struct relay_hs_engine *e = r->engines[i];

		c = __atomic_load_n(&e->cookies, __ATOMIC_RELAXED);
		d = c - e->folded.cookies;
		e->folded.cookies = c;
		r->win_inits += d;
		r->n_bad += d;
		r->cookies += d;
		r->hs_drops[OX_DROP_COOKIE_SENT] += d;
		for (k = 0; k < RELAY_HS_MAX; k++) {
			c = __atomic_load_n(&e->refused[k], __ATOMIC_RELAXED);
			d = c - e->folded.refused[k];
			e->folded.refused[k] = c;
			r->win_inits += d;
			r->n_bad += d;
			r->relay_hs_drops[k] += d;
		}
	}
}

void
relay_engines_stash(struct srv_relay *r)
{
	unsigned int i, k;

	for (i = 0; i < r->n_engines; i++) {
		struct relay_hs_engine *e = r->engines[i];
		unsigned int want = ENGINE_STASH - rte_ring_count(e->stash);

		for (k = 0; k < want; k++) {
			uint32_t idx;
			int tries, ret;

			/* A CSPRNG (lib/oxtunnel's, seeded by the OS), not
			 * rte_rand(): a client that sees its own indexes must
			 * not predict others'. */
			for (tries = 0; tries < 16; tries++) {
				ox_random(&idx, sizeof(idx));
				if (idx != 0 && rte_hash_lookup(r->by_index, &idx) < 0)
					break;
			}
			/* Reserved: found by nobody's DATA until it has a session. */
			ret = tries == 16 ? -EEXIST
					  : rte_hash_add_key_data(r->by_index, &idx, NULL);
			if (ret != 0) {
				if (r->stash_errors++ == 0)
					SRV_LOG(WARNING,
						"receiver indexes not reserved: %s (counted as "
						"index_stash_errors)",
						strerror(-ret));
				return;
			}
			if (rte_ring_sp_enqueue(e->stash, (void *)(uintptr_t)idx) != 0) {
				rte_hash_del_key(r->by_index, &idx);
				break;
			}
		}
	}
}

void
relay_view_free(struct relay_view *v)
{
	if (v == NULL)
		return;
	ox_allowlist_free(&v->allow);
	ox_addrpool_free(v->pool);
	free(v);
}

static void
view_dq_free(void *p, void *e, unsigned int n)
{
	struct relay_view **v = e;
	unsigned int i;

	RTE_SET_USED(p);
	for (i = 0; i < n; i++)
		relay_view_free(v[i]);
}

void
relay_view_publish(struct srv_relay *r, struct relay_view *v)
{
	struct relay_view *old = r->view;

	v->gen = old != NULL ? old->gen + 1 : 1;
	/* Claims the list's DH cache for the relay's key before any engine
	 * sees it (a reload carried the claim over already). */
	ox_hs_set_allowlist(r->hs, &v->allow);
	ox_hs_set_allowlist(r->wg_hs, &v->allow);
	__atomic_store_n(&r->view, v, __ATOMIC_RELEASE);
	r->allow = &v->allow;
	r->pool = v->pool;
	__atomic_store_n(&r->allow_keys, v->allow.n, __ATOMIC_RELAXED);
	if (old == NULL)
		return;
	relay_retire(r, &r->view_dq, "ox_view_dq", VIEW_DQ_SIZE, view_dq_free, old);
}

void
relay_views_poll(struct srv_relay *r)
{
	if (r->view_dq != NULL)
		rte_rcu_qsbr_dq_reclaim(r->view_dq, VIEW_DQ_SIZE, NULL, NULL, NULL);
}

/* --------------------------------------------------------- setup, teardown */

static struct relay_hs_engine *
engine_create(struct srv_relay *r, uint16_t id, uint16_t wid, int socket)
{
	struct relay_hs_engine *e;
	char name[RTE_RING_NAMESIZE];

	e = rte_zmalloc_socket("ox_engine", sizeof(*e), RTE_CACHE_LINE_SIZE, socket);
	if (e == NULL)
		return NULL;
	e->id = id;
	e->wid = wid;
	e->long_tsc = rte_get_tsc_hz() / 10000;
	snprintf(name, sizeof(name), "ox_stash%u", id);
	/* One more than ENGINE_STASH: a ring holds one less than its size. */
	e->stash = rte_ring_create(name, rte_align32pow2(ENGINE_STASH + 1), socket,
				   RING_F_SP_ENQ | RING_F_SC_DEQ);
	e->installs = rte_zmalloc_socket("ox_installs", sizeof(*e->installs) * ENGINE_INSTALLS,
					 RTE_CACHE_LINE_SIZE, socket);
	if (e->stash == NULL || e->installs == NULL)
		return e;
	/* The control thread's engine uses the relay's own servers; every
	 * other, siblings of them: the same key, cookie secret and buckets. */
	if (id == 0) {
		e->hs[0] = r->hs;
		e->hs[1] = r->wg_hs;
		return e;
	}
	e->hs[0] = ox_hs_create_sibling(r->hs);
	e->hs[1] = ox_hs_create_sibling(r->wg_hs);
	return e;
}

static bool
engine_ok(const struct relay_hs_engine *e)
{
	return e != NULL && e->stash != NULL && e->installs != NULL && e->hs[0] != NULL &&
	       e->hs[1] != NULL;
}

static void
engine_free(struct srv_relay *r, struct relay_hs_engine *e)
{
	unsigned int i;

	if (e == NULL)
		return;
	if (e->cur.m != NULL) {
		sodium_memzero(&e->cur.resp, sizeof(e->cur.resp));
		rte_pktmbuf_free(e->cur.m);
	}
	rte_ring_free(e->stash);
	if (e->installs != NULL) {
		for (i = 0; i < ENGINE_INSTALLS; i++)
			ox_keypair_wipe(&e->installs[i].kp);
		rte_free(e->installs);
	}
	if (e->id != 0) {
		ox_hs_free(e->hs[0]);
		ox_hs_free(e->hs[1]);
	}
	(void)r;
	rte_free(e);
}

uint64_t relay_cpu_read_ns;

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* relay_cpu_read_ns, from 255 back-to-back pairs of reads. */
static void
cpu_read_calibrate(void)
{
	uint64_t d[255], c0;
	unsigned int i;

	for (i = 0; i < RTE_DIM(d); i++) {
		c0 = srv_thread_cpu_ns();
		d[i] = srv_thread_cpu_ns() - c0;
	}
	qsort(d, RTE_DIM(d), sizeof(d[0]), cmp_u64);
	relay_cpu_read_ns = d[RTE_DIM(d) / 2];
}

/* Engines and the rings to them; the relay's servers and by_index exist. */
int
relay_engines_init(struct srv_relay *r)
{
	struct srv_server *srv = r->srv;
	unsigned int n_w, i;

	r->n_engines = relay_n_engines(&srv->conf, srv->n_workers);
	n_w = r->n_engines - 1;
	r->hs_in = rte_ring_create("ox_hs_in", relay_hs_ring_size(&srv->conf), (int)rte_socket_id(),
				   0);
	r->hs_done = rte_ring_create("ox_hs_done", relay_done_ring_size(&srv->conf),
				     (int)rte_socket_id(), RING_F_SC_DEQ);
	if (r->hs_in == NULL || r->hs_done == NULL)
		return -ENOMEM;
	r->engines[0] = engine_create(r, 0, RELAY_ENGINE_CONTROL, (int)rte_socket_id());
	if (!engine_ok(r->engines[0]))
		return -ENOMEM;
	for (i = 0; i < n_w; i++) {
		struct srv_worker *w = srv->workers[i];
		struct relay_hs_engine *e;

		e = engine_create(r, (uint16_t)(i + 1), w->id,
				  (int)rte_lcore_to_socket_id(w->lcore_id));
		r->engines[i + 1] = e;
		if (!engine_ok(e))
			return -ENOMEM;
		w->hs_engine = e;
	}
	relay_engines_stash(r);
	cpu_read_calibrate();
	SRV_LOG(NOTICE, "handshakes: %u engine(s), the control thread and %u worker(s)",
		r->n_engines, n_w);
	return 0;
}

void
relay_engines_free(struct srv_relay *r)
{
	struct rte_mbuf *m;
	unsigned int i;

	for (i = 0; i < r->srv->n_workers; i++)
		r->srv->workers[i]->hs_engine = NULL;
	if (r->hs_in != NULL) {
		while (rte_ring_dequeue(r->hs_in, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(r->hs_in);
		r->hs_in = NULL;
	}
	/* Accepted ones not finished: their keys are wiped with the engines'. */
	if (r->hs_done != NULL) {
		while (rte_ring_dequeue(r->hs_done, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(r->hs_done);
		r->hs_done = NULL;
	}
	for (i = 0; i < r->n_engines; i++) {
		engine_free(r, r->engines[i]);
		r->engines[i] = NULL;
	}
	r->n_engines = 0;
	if (r->view_dq != NULL)
		rte_rcu_qsbr_dq_delete(r->view_dq);
	r->view_dq = NULL;
	relay_view_free(r->view);
	r->view = NULL;
	r->allow = NULL;
	r->pool = NULL;
}
