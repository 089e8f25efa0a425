/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subnets behind peers (site to site): cryptokey routing. An allow-list
 * line's routed prefixes go into an rte_lpm / rte_lpm6 whose next hop is
 * the line's place in the allow-list; per place, the receiver index of the
 * peer's session (RELAY_NO_SESS while it has none). Workers look up inner
 * destinations there when no client has the address (to the peer), and
 * inner sources that are not the sender's own address (from the peer).
 *
 * Who writes what: the control thread builds a table whole at start and
 * at each reload, fills in the live sessions, publishes it with a release
 * store and frees the one it replaced once every worker has come round
 * (RCU). While a table is live, only its sidx[] changes: the control
 * thread stores a session's index as the session starts and RELAY_NO_SESS
 * as it ends; a worker that reads an index of a session since ended finds
 * nothing (ox_sessions_by_index checks the generation).
 *
 * The kernel routes the prefixes into the exit TAP (so the relay host and
 * what is behind its exit reach the subnets) and the exit policy allows
 * them, as it allows the tunnel pools.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_lpm.h>
#include <rte_lpm6.h>

#include "relay.h"

void
relay_routes_free(struct relay_routes *rt)
{
	if (rt == NULL)
		return;
	rte_lpm_free(rt->lpm4);
	rte_lpm6_free(rt->lpm6);
	free(rt->sidx);
	free(rt->list);
	free(rt);
}

/* Does a prefix share an address with a pool ([net, net + 2^(len - plen)))?
 * The shorter of the two decides. */
static bool
overlaps(const uint8_t *a, unsigned int alen, const uint8_t *b, unsigned int blen)
{
	unsigned int bits = RTE_MIN(alen, blen), i;

	for (i = 0; i < bits / 8; i++)
		if (a[i] != b[i])
			return false;
	return bits % 8 == 0 || ((a[i] ^ b[i]) & (uint8_t)(0xff00 >> (bits % 8))) == 0;
}

/* The tunnel pools are the clients' own addresses: no subnet inside them. */
int
relay_routes_check(const struct srv_relay *r, const struct ox_allowlist *al, char *err,
		   size_t errlen)
{
	const struct ox_addrpool_conf *pc = &r->srv->pool_conf;
	uint32_t net4 = htonl(pc->v4_net), i;
	char s[64];

	for (i = 0; i < al->n_routes; i++) {
		const struct ox_allow_route *rt = &al->routes[i];
		bool hit = rt->v6 ? overlaps(rt->addr, rt->depth, pc->v6_net, pc->v6_prefix)
				  : overlaps(rt->addr, rt->depth, (const uint8_t *)&net4,
					     pc->v4_prefix);

		if (hit) {
			ox_allow_route_str(rt, s, sizeof(s));
			snprintf(err, errlen,
				 "allow-list line %u: routed prefix %s overlaps the tunnel pool "
				 "(--pool%c)",
				 al->e[rt->entry].line, s, rt->v6 ? '6' : '4');
			return -EINVAL;
		}
	}
	return 0;
}

int
relay_routes_build(struct srv_relay *r, const struct ox_allowlist *al, struct relay_routes **out,
		   char *err, size_t errlen)
{
	struct rte_lpm_config c4 = { 0 };
	struct rte_lpm6_config c6 = { 0 };
	struct relay_routes *rt;
	uint32_t n4 = 0, n6 = 0, i;
	char name[RTE_LPM_NAMESIZE], s[64];
	int ret;

	*out = NULL;
	ret = relay_routes_check(r, al, err, errlen);
	if (ret != 0)
		return ret;
	rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		goto nomem;
	if (al->n_routes == 0) {
		*out = rt;
		return 0;
	}
	rt->list = malloc(sizeof(*rt->list) * al->n_routes);
	rt->sidx = malloc(sizeof(*rt->sidx) * al->n);
	if (rt->list == NULL || rt->sidx == NULL)
		goto nomem;
	memcpy(rt->list, al->routes, sizeof(*rt->list) * al->n_routes);
	rt->n = al->n_routes;
	for (i = 0; i < al->n; i++)
		rt->sidx[i] = RELAY_NO_SESS;
	/* tbl8 groups sized to the list, not to a guess. */
	for (i = 0; i < al->n_routes; i++) {
		const struct ox_allow_route *a = &al->routes[i];

		if (a->v6) {
			n6++;
			c6.number_tbl8s += ox_policy_tbl8s(true, a->depth);
		} else {
			n4++;
			c4.number_tbl8s += ox_policy_tbl8s(false, a->depth);
		}
	}
	/* rte_lpm names are global: one per generation. */
	r->routes_gen++;
	if (n4 > 0) {
		c4.max_rules = n4;
		c4.number_tbl8s += 1;
		snprintf(name, sizeof(name), "ox_rt4_%u", r->routes_gen);
		rt->lpm4 = rte_lpm_create(name, (int)rte_socket_id(), &c4);
		if (rt->lpm4 == NULL)
			goto lpm_fail;
	}
	if (n6 > 0) {
		c6.max_rules = n6;
		c6.number_tbl8s += 1;
		snprintf(name, sizeof(name), "ox_rt6_%u", r->routes_gen);
		rt->lpm6 = rte_lpm6_create(name, (int)rte_socket_id(), &c6);
		if (rt->lpm6 == NULL)
			goto lpm_fail;
	}
	for (i = 0; i < al->n_routes; i++) {
		const struct ox_allow_route *a = &al->routes[i];

		if (a->v6)
			ret = rte_lpm6_add(rt->lpm6, a->addr, a->depth, a->entry);
		else
			ret = rte_lpm_add(rt->lpm4,
					  (uint32_t)a->addr[0] << 24 | (uint32_t)a->addr[1] << 16 |
						  (uint32_t)a->addr[2] << 8 | a->addr[3],
					  a->depth, a->entry);
		if (ret != 0) {
			ox_allow_route_str(a, s, sizeof(s));
			snprintf(err, errlen, "allow-list line %u: routed prefix %s: %s",
				 al->e[a->entry].line, s, strerror(-ret));
			relay_routes_free(rt);
			return ret;
		}
	}
	*out = rt;
	return 0;
lpm_fail:
	snprintf(err, errlen, "cannot make the routing table of %u prefixes: %s", al->n_routes,
		 rte_strerror(rte_errno));
	relay_routes_free(rt);
	return -ENOMEM;
nomem:
	snprintf(err, errlen, "out of memory for %u routed prefixes", al->n_routes);
	relay_routes_free(rt);
	return -ENOMEM;
}

/* Is the prefix in the table's list? (The lists are small.) */
static bool
listed(const struct relay_routes *rt, const struct ox_allow_route *a)
{
	uint32_t i;

	for (i = 0; rt != NULL && i < rt->n; i++)
		if (ox_allow_route_eq(&rt->list[i], a))
			return true;
	return false;
}

/* The kernel's routes into the TAP follow the list: the old table's
 * prefixes not in the new one go, the new ones come. A failure is said, the
 * relay goes on (only the kernel's side of those prefixes is missing). */
static void
sync_kernel(struct srv_relay *r, const struct relay_routes *old, const struct relay_routes *fresh)
{
	unsigned int failed = 0;
	char s[64] = "";
	int ret, first = 0;
	uint32_t i;

	if (!r->srv->has_tap)
		return;
	for (i = 0; old != NULL && i < old->n; i++)
		if (!listed(fresh, &old->list[i])) {
			ret = srv_tap_route(r->srv, false, &old->list[i]);
			if (ret != 0 && ret != -ESRCH && failed++ == 0) {
				first = ret;
				ox_allow_route_str(&old->list[i], s, sizeof(s));
			}
		}
	for (i = 0; i < fresh->n; i++)
		if (!listed(old, &fresh->list[i])) {
			ret = srv_tap_route(r->srv, true, &fresh->list[i]);
			if (ret != 0 && failed++ == 0) {
				first = ret;
				ox_allow_route_str(&fresh->list[i], s, sizeof(s));
			}
		}
	if (failed > 0) {
		r->route_errors += failed;
		SRV_LOG(ERR,
			"%u kernel route(s) to %s not changed (the first: %s, %s): the relay "
			"host does not reach those subnets; their peers and other clients do",
			failed, r->srv->conf.tap, s, strerror(-first));
	}
}

/* rte_rcu_qsbr_dq's free_fn: tables replaced, a grace period ago. */
static void
routes_dq_free(void *p, void *e, unsigned int n)
{
	struct relay_routes **rt = e;
	unsigned int i;

	RTE_SET_USED(p);
	for (i = 0; i < n; i++)
		relay_routes_free(rt[i]);
}

/* Free the tables replaced before whose grace period has ended. */
void
relay_routes_poll(struct srv_relay *r)
{
	if (r->routes_dq != NULL)
		rte_rcu_qsbr_dq_reclaim(r->routes_dq, ROUTES_DQ_SIZE, NULL, NULL, NULL);
}

/* A replaced table goes to the defer queue (made at the first reload),
 * freed once every worker has come round; if the queue cannot take it,
 * the workers are waited for here. */
void
relay_routes_publish(struct srv_relay *r, struct relay_routes *fresh)
{
	struct relay_routes *old = r->routes;
	const struct ox_allow_entry *e;
	const void *key;
	void *data;
	uint32_t iter = 0, i;
	bool changed;

	/* The live sessions of peers with prefixes, before anyone reads it. */
	if (fresh->n > 0 && r->by_key != NULL)
		while (rte_hash_iterate(r->by_key, &key, &data, &iter) >= 0) {
			e = ox_allowlist_find(r->allow, key);
			if (e != NULL && e->route_n > 0)
				fresh->sidx[e - r->allow->e] = ((struct ox_session *)data)->index;
		}
	/* The same prefixes (their peers' places aside) need no new policy. */
	changed = old == NULL ? fresh->n > 0 : old->n != fresh->n;
	for (i = 0; !changed && old != NULL && i < fresh->n; i++)
		changed = !listed(old, &fresh->list[i]);
	sync_kernel(r, old, fresh);
	__atomic_store_n(&r->routes, fresh, __ATOMIC_RELEASE);
	/* The exit policy allows the prefixes: built again for a new list. */
	r->srv->peer_routes = fresh->list;
	r->srv->n_peer_routes = fresh->n;
	if (changed && old != NULL)
		r->exitw.routes_dirty = true;
	if (fresh->n > 0 || (old != NULL && old->n > 0))
		SRV_LOG(INFO, "routed prefixes: %u behind %s", fresh->n,
			fresh->n == 1 ? "one peer" : "their peers");
	if (old != NULL)
		relay_retire(r, &r->routes_dq, "ox_routes_dq", ROUTES_DQ_SIZE, routes_dq_free, old);
}

void
relay_routes_session(struct srv_relay *r, const struct ox_session *sess, bool up)
{
	struct relay_routes *rt = r->routes;
	const struct ox_allow_entry *e;

	if (rt == NULL || rt->n == 0)
		return;
	e = ox_allowlist_find(r->allow, sess->key);
	if (e == NULL || e->route_n == 0)
		return;
	__atomic_store_n(&rt->sidx[e - r->allow->e], up ? sess->index : RELAY_NO_SESS,
			 __ATOMIC_RELAXED);
}
