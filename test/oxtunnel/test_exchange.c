/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A client and a server in one process: a real handshake, then 1,000,000
 * DATA packets each way through a lossless link that reorders (a pool of
 * 64 in flight, delivered in random order) and duplicates 2% of packets.
 * The client rekeys every 250,000 messages, so packets in flight cross
 * keypair changes. Every duplicate must be rejected as a replay, every
 * other packet must arrive once with its exact bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "ox_test.h"
#include "ox_tunnel_private.h"
#include "test_util.h"

#define PACKETS 1000000u
#define POOL 64
#define DUP_PER_MILLE 20
#define REKEY_EVERY 250000u
#define SLOT 1500

struct link {
	uint8_t pkt[POOL][SLOT];
	size_t len[POOL];
	unsigned int n;
};

struct side {
	const char *name;
	struct ox_peer peer;
	uint8_t *seen; /* per sequence number */
	uint64_t received, dups_sent, dups_rejected, other_drops, corrupt;
	uint32_t sent;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t now = 1000000000ull;

static void
fill(uint8_t *p, size_t len, uint32_t seq)
{
	size_t i;

	ox_put_le32(p, seq);
	for (i = 4; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i);
}

static bool
check(const uint8_t *p, size_t len, uint32_t *seq)
{
	size_t i;

	if (len < 4)
		return false;
	*seq = ox_get_le32(p);
	for (i = 4; i < len; i++)
		if (p[i] != (uint8_t)(*seq * 31 + i))
			return false;
	return true;
}

static void
deliver(struct ox_aead *x, struct link *l, unsigned int i, struct side *to)
{
	uint8_t buf[SLOT];
	uint32_t seq;
	struct ox_msg m;
	int ret;

	memcpy(buf, l->pkt[i], l->len[i]);
	ret = ox_msg_parse(buf, l->len[i], &m);
	if (ret == OX_MSG_DATA)
		ret = ox_peer_open(x, &to->peer, buf, l->len[i], now);
	if (ret >= 0) {
		if (!check(buf + OX_DATA_HDR_LEN, (size_t)ret, &seq) || seq >= PACKETS ||
		    to->seen[seq]++)
			to->corrupt++;
		else
			to->received++;
	} else if (ret == -OX_DROP_REPLAY) {
		/* Whichever copy of a duplicated packet comes second. */
		to->dups_rejected++;
	} else {
		to->other_drops++;
		if (to->other_drops < 5)
			printf("%s: unexpected drop %s\n", to->name, ox_drop_name(ret));
	}
	/* Remove slot i (order inside the pool does not matter). */
	l->n--;
	if (i != l->n) {
		memcpy(l->pkt[i], l->pkt[l->n], l->len[l->n]);
		l->len[i] = l->len[l->n];
	}
}

static void
push(struct ox_aead *x, struct link *l, const uint8_t *pkt, size_t len, bool dup, struct side *to)
{
	if (l->n == POOL)
		deliver(x, l, (unsigned int)(rng_next(&rng) % POOL), to);
	memcpy(l->pkt[l->n], pkt, len);
	l->len[l->n] = len;
	(void)dup;
	l->n++;
}

static void
send_one(struct ox_aead *x, struct side *from, struct link *l, struct side *to)
{
	uint8_t pkt[SLOT];
	size_t len = OX_INNER_MIN + rng_next(&rng) % (1400 - OX_INNER_MIN + 1);
	struct ox_keypair *kp = ox_peer_current(&from->peer);
	int ret;

	fill(pkt + OX_DATA_HDR_LEN, len, from->sent);
	ret = ox_data_seal(x, kp, pkt, len, now);
	EXPECT(ret == (int)(len + OX_DATA_OVERHEAD), "%s: seal %u: %s", from->name, from->sent,
	       ox_drop_name(ret));
	from->sent++;
	push(x, l, pkt, (size_t)ret, false, to);
	if (rng_next(&rng) % 1000 < DUP_PER_MILLE) {
		push(x, l, pkt, (size_t)ret, true, to);
		from->dups_sent++;
	}
}

struct hs_ctx {
	struct ox_hs_server *srv;
	struct ox_initiator in;
	uint32_t next_index;
	unsigned int handshakes;
};

static const struct ox_src src = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 }, 51820 };

static int
rekey(struct hs_ctx *h, struct side *c, struct side *s)
{
	uint8_t init[OX_INIT_LEN], resp[OX_RESPONSE_LEN], cookie[OX_COOKIE_LEN], ts[12];
	struct ox_hs_payload pl = { .v4 = 0x64400002, .v4_prefix = 10, .mtu = 1420 }, got;
	struct ox_keypair ckp, skp;
	struct ox_responder r;
	uint32_t cidx = h->next_index++, sidx = h->next_index++;
	int ret;

	ox_tai64n_now(ts);
	/* Distinct timestamps even within one clock tick. */
	ts[11] = (uint8_t)h->handshakes;
	ts[10] = (uint8_t)(h->handshakes >> 8);
	if (ox_initiator_begin(&h->in, cidx, ts, now, init) != 0)
		return -1;
	ret = ox_hs_consume_init(h->srv, init, sizeof(init), &src, now, false, &r, cookie);
	if (ret != 0) {
		printf("consume_init: %s\n", ox_drop_name(ret));
		return -1;
	}
	if (ox_hs_make_response(h->srv, &r, &pl, sidx, now, resp, &skp) != 0)
		return -1;
	ret = ox_initiator_consume_response(&h->in, resp, sizeof(resp), now, &got, &ckp);
	if (ret != 0) {
		printf("consume_response: %s\n", ox_drop_name(ret));
		return -1;
	}
	ckp.rekey_messages = REKEY_EVERY;
	ox_peer_install(&c->peer, &ckp, true);
	ox_peer_install(&s->peer, &skp, false);
	h->handshakes++;
	return 0;
}

int
main(void)
{
	static struct link up, down; /* client -> server, server -> client */
	struct side c = { .name = "client" }, s = { .name = "server" };
	uint8_t spriv[32], spub[32], cpriv[32], cpub[32];
	char text[128], err[128];
	struct ox_allowlist al;
	struct hs_ctx h = { .next_index = 1 };
	struct ox_aead *x;
	uint64_t t0 = ox_mono_ns();

	if (sodium_init() < 0)
		return 1;
	x = ox_aead_create(getenv("OX_AEAD_SODIUM") ? OX_AEAD_SODIUM : OX_AEAD_OPENSSL);
	ox_key_generate(spriv, spub);
	ox_key_generate(cpriv, cpub);
	ox_key_to_base64(text, cpub);
	strcat(text, " client\n");
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 1, err, sizeof(err)) == 0, "%s",
	       err);
	h.srv = ox_hs_create(spriv, NULL);
	EXPECT(x && h.srv, "setup");
	if (!x || !h.srv)
		return ox_test_finish("oxtunnel-exchange");
	ox_hs_set_allowlist(h.srv, &al);
	EXPECT(ox_initiator_init(&h.in, cpriv, spub) == 0, "initiator");
	ox_peer_init(&c.peer);
	ox_peer_init(&s.peer);
	c.seen = calloc(PACKETS, 1);
	s.seen = calloc(PACKETS, 1);
	EXPECT(rekey(&h, &c, &s) == 0, "first handshake");

	while (c.sent < PACKETS || s.sent < PACKETS) {
		now += 1000;
		if (ox_keypair_needs_rekey(ox_peer_current(&c.peer), now))
			EXPECT(rekey(&h, &c, &s) == 0, "rekey at %u", c.sent);
		if (c.sent < PACKETS)
			send_one(x, &c, &up, &s);
		/* The server answers on its current keys; until the first
		 * packet under a new keypair arrives that is the old one. */
		if (s.sent < PACKETS && ox_peer_current(&s.peer) != NULL)
			send_one(x, &s, &down, &c);
	}
	while (up.n)
		deliver(x, &up, (unsigned int)(rng_next(&rng) % up.n), &s);
	while (down.n)
		deliver(x, &down, (unsigned int)(rng_next(&rng) % down.n), &c);

	printf("client->server: %lu of %u delivered, %lu duplicates injected, %lu rejected, "
	       "%lu other drops, %lu corrupt\n",
	       (unsigned long)s.received, PACKETS, (unsigned long)c.dups_sent,
	       (unsigned long)s.dups_rejected, (unsigned long)s.other_drops,
	       (unsigned long)s.corrupt);
	printf("server->client: %lu of %u delivered, %lu duplicates injected, %lu rejected, "
	       "%lu other drops, %lu corrupt\n",
	       (unsigned long)c.received, PACKETS, (unsigned long)s.dups_sent,
	       (unsigned long)c.dups_rejected, (unsigned long)c.other_drops,
	       (unsigned long)c.corrupt);
	printf("handshakes: %u; %.2f s\n", h.handshakes, (double)(ox_mono_ns() - t0) / 1e9);
	EXPECT(s.received == PACKETS && c.received == PACKETS, "everything delivered once");
	EXPECT(s.dups_rejected == c.dups_sent && c.dups_rejected == s.dups_sent,
	       "every duplicate rejected");
	EXPECT(c.dups_sent > 0 && s.dups_sent > 0, "duplicates were injected");
	EXPECT(s.other_drops == 0 && c.other_drops == 0 && s.corrupt == 0 && c.corrupt == 0,
	       "no other drop, no corruption");
	EXPECT(h.handshakes >= PACKETS / REKEY_EVERY, "rekeyed %u times", h.handshakes - 1);

	ox_peer_wipe(&c.peer);
	ox_peer_wipe(&s.peer);
	ox_initiator_wipe(&h.in);
	ox_hs_free(h.srv);
	ox_allowlist_free(&al);
	ox_aead_free(x);
	free(c.seen);
	free(s.seen);
	return ox_test_finish("oxtunnel-exchange");
}
