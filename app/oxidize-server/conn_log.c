/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The connection log: one line per event, never per packet, key=value so
 * that a person and a log shipper both read it, through rte_log (log type
 * ox.conn, INFO) so journald files it under the unit:
 *
 *   oxidize: conn event=handshake kind=new peer=alice key=BASE64 proto=wireguard
 *        endpoint=198.18.0.10:40000 session=0x12 v4=100.64.0.2
 *   oxidize: conn event=roam peer=alice key=... from=A:P to=B:Q [unlogged=N]
 *   oxidize: conn event=end peer=alice key=... why=idle duration_s=12.5
 *        rx_pkts=.. rx_bytes=.. tx_pkts=.. tx_bytes=..
 *   oxidize: conn event=refused interval_s=10 total=N reasons=a:1,b:2
 *        top=198.18.0.20:40,...
 *
 * Roams are logged at most once a second per session (the rest counted in
 * the next line's unlogged=); refusals once per interval, summed. All of it
 * runs on the control thread, which owns what it reads.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"

RTE_LOG_REGISTER(srv_conn_logtype, ox.conn, INFO);

#define CONN_LOG(fmt, ...) \
	rte_log(RTE_LOG_INFO, srv_conn_logtype, "oxidize: conn " fmt "\n", ##__VA_ARGS__)

static const char *
src_str(const struct ox_src *s, char *b, size_t len)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	char a[INET6_ADDRSTRLEN];

	if (memcmp(s->addr, v4mapped, 12) == 0)
		inet_ntop(AF_INET, s->addr + 12, a, sizeof(a));
	else
		inet_ntop(AF_INET6, s->addr, a, sizeof(a));
	snprintf(b, len, "%s", a);
	return b;
}

/* "peer=NAME key=BASE64" of a session. */
static const char *
who(struct ox_session *sess, char *b, size_t len)
{
	const struct relay_sess *rs = ox_session_priv(sess);
	char key[OX_KEY_B64_LEN + 1];

	ox_key_to_base64(key, sess->key);
	snprintf(b, len, "peer=%s key=%s", rs->name[0] ? rs->name : "-", key);
	return b;
}

void
conn_log_handshake(struct srv_relay *r, struct ox_session *sess, bool rekey,
		   const struct ox_pkt_flow *from)
{
	struct relay_sess *rs = ox_session_priv(sess);
	const struct ox_allow_entry *e = ox_allowlist_find(r->allow, sess->key);
	char w[128], ep[64], v4[INET_ADDRSTRLEN];
	uint32_t a = htonl(sess->addr.v4);

	snprintf(rs->name, sizeof(rs->name), "%s", e != NULL ? e->name : "");
	/* Where the initiation came from: the owner adopts it with the first
	 * DATA from there, and that is no roam. */
	rs->ep_logged = *from;
	CONN_LOG("event=handshake kind=%s %s proto=%s endpoint=%s session=%#x v4=%s",
		 rekey ? "rekey" : "new", who(sess, w, sizeof(w)), relay_protos[rs->proto]->name,
		 relay_ep_str(&rs->ep_logged, ep, sizeof(ep)), sess->index,
		 inet_ntop(AF_INET, &a, v4, sizeof(v4)));
}

void
conn_log_roam(struct srv_relay *r, struct ox_session *sess, uint64_t now)
{
	struct relay_sess *rs = ox_session_priv(sess);
	struct ox_pkt_flow ep;
	char w[128], from[64], to[64];

	(void)r;
	relay_ep_read(rs, &ep);
	if (memcmp(&ep, &rs->ep_logged, sizeof(ep)) == 0)
		return;
	if (rs->roam_logged_ns != 0 && now - rs->roam_logged_ns < 1000000000u) {
		rs->roams_unlogged++;
		return;
	}
	CONN_LOG("event=roam %s from=%s to=%s unlogged=%u", who(sess, w, sizeof(w)),
		 relay_ep_str(&rs->ep_logged, from, sizeof(from)),
		 relay_ep_str(&ep, to, sizeof(to)), rs->roams_unlogged);
	rs->ep_logged = ep;
	rs->roam_logged_ns = now;
	rs->roams_unlogged = 0;
}

void
conn_log_end(struct srv_relay *r, struct ox_session *sess, const char *why, uint64_t now)
{
	struct relay_peer_status st;
	char w[128];

	relay_peer_status(r, sess, now, &st);
	CONN_LOG("event=end %s why=%s duration_s=%.1f rx_pkts=%llu rx_bytes=%llu tx_pkts=%llu "
		 "tx_bytes=%llu",
		 who(sess, w, sizeof(w)), why, (double)st.age_ns / 1e9,
		 (unsigned long long)st.rx_pkts, (unsigned long long)st.rx_bytes,
		 (unsigned long long)st.tx_pkts, (unsigned long long)st.tx_bytes);
}

/* One more refused initiation from src (Misra-Gries heavy hitters). */
void
conn_log_refused(struct srv_relay *r, const struct ox_src *src)
{
	struct relay_refusals *f = &r->refused;
	unsigned int i, free_slot = REFUSAL_TOP;

	for (i = 0; i < REFUSAL_TOP; i++) {
		if (f->top[i].n != 0 && memcmp(f->top[i].src.addr, src->addr, 16) == 0) {
			f->top[i].n++;
			return;
		}
		if (f->top[i].n == 0 && free_slot == REFUSAL_TOP)
			free_slot = i;
	}
	if (free_slot < REFUSAL_TOP) {
		f->top[free_slot].src = *src;
		f->top[free_slot].n = 1;
		return;
	}
	for (i = 0; i < REFUSAL_TOP; i++)
		f->top[i].n--;
}

static void put(char *b, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
put(char *b, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n;
}

/* "name:n" after the others, if n. @return n. */
static uint64_t
add_reason(char *b, size_t len, size_t *off, const char *name, uint64_t n)
{
	if (n != 0)
		put(b, len, off, "%s%s:%llu", *off ? "," : "", name, (unsigned long long)n);
	return n;
}

/* Every REFUSAL_LOG_NS (and at the end): what was refused, if anything. */
void
conn_log_interval(struct srv_relay *r, uint64_t now, bool last)
{
	struct relay_refusals *f = &r->refused;
	struct srv_lcore_stats sum;
	char reasons[512] = "", top[256] = "", a[INET6_ADDRSTRLEN];
	size_t ro = 0, to = 0;
	uint64_t total = 0, bad_mac1;
	unsigned int k, i, shown;

	if (f->since_ns == 0) {
		f->since_ns = now;
		return;
	}
	if (!last && now - f->since_ns < REFUSAL_LOG_NS)
		return;
	srv_stats_sum(r->srv, &sum);
	bad_mac1 = sum.ox_drops[OX_DROP_BAD_MAC1];
	if (bad_mac1 > f->bad_mac1)
		total += add_reason(reasons, sizeof(reasons), &ro, "bad_mac1",
				    bad_mac1 - f->bad_mac1);
	for (k = 1; k < OX_DROP_MAX; k++)
		total += add_reason(reasons, sizeof(reasons), &ro, ox_drop_name(-(int)k),
				    r->hs_drops[k] - f->hs_drops[k]);
	for (k = 0; k < RELAY_HS_MAX; k++)
		total += add_reason(reasons, sizeof(reasons), &ro, relay_hs_drop_names[k],
				    r->relay_hs_drops[k] - f->relay_hs_drops[k]);
	/* The three busiest sources, most first. */
	for (shown = 0; shown < 3; shown++) {
		unsigned int best = REFUSAL_TOP;

		for (i = 0; i < REFUSAL_TOP; i++)
			if (f->top[i].n != 0 &&
			    (best == REFUSAL_TOP || f->top[i].n > f->top[best].n))
				best = i;
		if (best == REFUSAL_TOP)
			break;
		put(top, sizeof(top), &to, "%s%s:%u", to ? "," : "",
		    src_str(&f->top[best].src, a, sizeof(a)), f->top[best].n);
		f->top[best].n = 0;
	}
	if (total > 0)
		CONN_LOG("event=refused interval_s=%.1f total=%llu reasons=%s top=%s",
			 (double)(now - f->since_ns) / 1e9, (unsigned long long)total, reasons,
			 to ? top : "-");
	memcpy(f->hs_drops, r->hs_drops, sizeof(f->hs_drops));
	memcpy(f->relay_hs_drops, r->relay_hs_drops, sizeof(f->relay_hs_drops));
	f->bad_mac1 = bad_mac1;
	memset(f->top, 0, sizeof(f->top));
	f->since_ns = now;
}
