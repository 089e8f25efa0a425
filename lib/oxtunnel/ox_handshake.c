/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The handshake around Noise IK, for OxTunnel v2 and for WireGuard: the
 * INIT / RESPONSE / COOKIE messages, mac1 (any initiation must prove it
 * knows the server's public key before any Diffie-Hellman is spent on it),
 * mac2 and cookies (under load, proof of owning the source address), a
 * per-source token bucket for sources mac2 proved, and a per-key gap. The two differ in their
 * header bytes, hash and MAC, prologue and response (struct hs_wire); the steps are the same. A
 * server has one thread; what its siblings share (struct hs_admission) is under a lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <sodium.h>

#include "ox_ratelimit.h"
#include "private/ox_tunnel_private.h"

/* What differs between the wire protocols' handshakes. */
struct hs_wire {
	const struct ox_noise_suite *suite;
	void (*mac)(uint8_t out[OX_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *in,
		    size_t len);
	void (*label_key)(uint8_t out[OX_KEY_LEN], const char label[8],
			  const uint8_t pub[OX_KEY_LEN]);
	size_t response_len;
};

static const struct hs_wire wires[] = {
	[OX_WIRE_OXTUNNEL] = { &ox_noise_oxtunnel, ox_mac, ox_label_key, OX_RESPONSE_LEN },
	[OX_WIRE_WIREGUARD] = { &ox_noise_wireguard, ox_wg_mac, ox_wg_label_key,
				OX_WG_RESPONSE_LEN },
};

static uint8_t
msg_type(const uint8_t *p, enum ox_wire wire)
{
	return wire == OX_WIRE_WIREGUARD ? p[0] : p[3];
}

/* The Noise prologue: OxTunnel binds the INIT's first 8 bytes; WireGuard
 * has its identifier. @return its length. */
#define PROLOGUE_MAX 64
static size_t
prologue_of(uint8_t p[PROLOGUE_MAX], enum ox_wire wire, const uint8_t *init)
{
	if (wire == OX_WIRE_WIREGUARD) {
		memcpy(p, OX_WG_IDENTIFIER, sizeof(OX_WG_IDENTIFIER) - 1);
		return sizeof(OX_WG_IDENTIFIER) - 1;
	}
	memcpy(p, OX_PROLOGUE, sizeof(OX_PROLOGUE) - 1);
	memcpy(p + sizeof(OX_PROLOGUE) - 1, init, 8);
	return OX_PROLOGUE_LEN;
}

/* What decides whether an INIT gets a DH at all, shared by a server and its
 * siblings (ox_hs_create_sibling) on other threads, so that any of them may
 * judge any source: one cookie secret and one bucket per source, as one
 * server would have. The lock is held to copy the secret or to update a
 * bucket, never across a MAC or a DH. */
struct hs_admission {
	pthread_spinlock_t lock;
	uint8_t secret[OX_KEY_LEN]; /* cookie secret, rotated */
	uint64_t secret_ns;	    /* when it was made; 0 = never */
	struct ox_ratelimit *rl;
	unsigned int refs; /* servers sharing it (atomic) */
};

struct ox_hs_server {
	enum ox_wire wire;
	uint8_t s_priv[OX_KEY_LEN];
	uint8_t s_pub[OX_KEY_LEN];
	uint8_t mac1_key[OX_KEY_LEN];
	uint8_t cookie_key[OX_KEY_LEN];
	struct ox_allowlist *allow;
	struct hs_admission *adm; /* shared with its siblings */
};

static const uint8_t zero_mac[OX_MAC_LEN];

void
ox_hs_conf_default(struct ox_hs_conf *c)
{
	c->hs_per_second = 20;
	c->hs_burst = 5;
	c->ratelimit_entries = 4096;
	c->wire = OX_WIRE_OXTUNNEL;
}

struct ox_hs_server *
ox_hs_create(const uint8_t priv[OX_KEY_LEN], const struct ox_hs_conf *c)
{
	struct ox_ratelimit_conf rlc;
	struct ox_hs_conf def;
	struct ox_hs_server *s;
	int ret;

	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	if (c == NULL) {
		ox_hs_conf_default(&def);
		c = &def;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	memcpy(s->s_priv, priv, OX_KEY_LEN);
	if ((c->wire != OX_WIRE_OXTUNNEL && c->wire != OX_WIRE_WIREGUARD) ||
	    ox_key_public(s->s_pub, s->s_priv) != 0) {
		sodium_memzero(s, sizeof(*s));
		free(s);
		errno = EINVAL;
		return NULL;
	}
	s->wire = c->wire;
	wires[s->wire].label_key(s->mac1_key, "mac1----", s->s_pub);
	wires[s->wire].label_key(s->cookie_key, "cookie--", s->s_pub);
	rlc.per_second = c->hs_per_second;
	rlc.burst = c->hs_burst;
	rlc.entries = c->ratelimit_entries;
	s->adm = calloc(1, sizeof(*s->adm));
	if (s->adm == NULL)
		goto fail;
	s->adm->refs = 1;
	s->adm->rl = ox_ratelimit_create(&rlc);
	if (s->adm->rl == NULL)
		goto fail;
	errno = pthread_spin_init(&s->adm->lock, PTHREAD_PROCESS_PRIVATE);
	if (errno != 0)
		goto fail;
	return s;
fail:
	ret = errno;
	if (s->adm != NULL) {
		ox_ratelimit_free(s->adm->rl);
		free(s->adm);
	}
	sodium_memzero(s, sizeof(*s));
	free(s);
	errno = ret;
	return NULL;
}

struct ox_hs_server *
ox_hs_create_sibling(const struct ox_hs_server *first)
{
	struct ox_hs_server *s = malloc(sizeof(*s));

	if (s == NULL)
		return NULL;
	memcpy(s, first, sizeof(*s));
	__atomic_add_fetch(&s->adm->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void
ox_hs_free(struct ox_hs_server *s)
{
	if (s == NULL)
		return;
	if (__atomic_sub_fetch(&s->adm->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		ox_ratelimit_free(s->adm->rl);
		pthread_spin_destroy(&s->adm->lock);
		sodium_memzero(s->adm, sizeof(*s->adm));
		free(s->adm);
	}
	sodium_memzero(s, sizeof(*s));
	free(s);
}

void
ox_hs_private_key(const struct ox_hs_server *s, uint8_t out[OX_KEY_LEN])
{
	memcpy(out, s->s_priv, OX_KEY_LEN);
}

const uint8_t *
ox_hs_public(const struct ox_hs_server *s)
{
	return s->s_pub;
}

void
ox_hs_set_allowlist(struct ox_hs_server *s, struct ox_allowlist *al)
{
	/* The first server set on a list keeps its DH cache. */
	if (al != NULL && !al->ss_set) {
		memcpy(al->ss_pub, s->s_pub, OX_KEY_LEN);
		al->ss_set = true;
	}
	s->allow = al;
}

size_t
ox_hs_response_len(const struct ox_hs_server *s)
{
	return wires[s->wire].response_len;
}

/* The cookie of a source: MAC of its address and port under the secret. */
static void
cookie_of(struct ox_hs_server *s, const struct ox_src *src, uint64_t now_ns,
	  uint8_t cookie[OX_MAC_LEN])
{
	struct hs_admission *adm = s->adm;
	uint8_t a[18], secret[OX_KEY_LEN];

	pthread_spin_lock(&adm->lock);
	if (adm->secret_ns == 0 || now_ns - adm->secret_ns >= OX_COOKIE_SECRET_NS) {
		randombytes_buf(adm->secret, sizeof(adm->secret));
		adm->secret_ns = now_ns ? now_ns : 1;
	}
	memcpy(secret, adm->secret, sizeof(secret));
	pthread_spin_unlock(&adm->lock);
	memcpy(a, src->addr, 16);
	a[16] = (uint8_t)(src->port >> 8);
	a[17] = (uint8_t)src->port;
	wires[s->wire].mac(cookie, secret, sizeof(secret), a, sizeof(a));
	sodium_memzero(secret, sizeof(secret));
}

void
ox_mac1_key(uint8_t out[OX_KEY_LEN], const uint8_t server_pub[OX_KEY_LEN])
{
	ox_label_key(out, "mac1----", server_pub);
}

void
ox_wg_mac1_key(uint8_t out[OX_KEY_LEN], const uint8_t pub[OX_KEY_LEN])
{
	ox_wg_label_key(out, "mac1----", pub);
}

/* Both protocols' INITs are 148 bytes with mac1 and mac2 in one place. */
static int
check_mac1(enum ox_wire wire, const uint8_t mac1_key[OX_KEY_LEN], const uint8_t *pkt, size_t len)
{
	uint8_t mac[OX_MAC_LEN];

	if (len != OX_INIT_LEN)
		return -OX_DROP_BAD_LENGTH;
	if (msg_type(pkt, wire) != OX_MSG_INIT)
		return -OX_DROP_UNEXPECTED;
	wires[wire].mac(mac, mac1_key, OX_KEY_LEN, pkt, OX_INIT_MAC1_OFF);
	if (sodium_memcmp(mac, pkt + OX_INIT_MAC1_OFF, OX_MAC_LEN) != 0)
		return -OX_DROP_BAD_MAC1;
	return 0;
}

int
ox_init_check_mac1(const uint8_t mac1_key[OX_KEY_LEN], const uint8_t *pkt, size_t len)
{
	return check_mac1(OX_WIRE_OXTUNNEL, mac1_key, pkt, len);
}

int
ox_wg_init_check_mac1(const uint8_t mac1_key[OX_KEY_LEN], const uint8_t *pkt, size_t len)
{
	return check_mac1(OX_WIRE_WIREGUARD, mac1_key, pkt, len);
}

/*
 * DH(server key, peer key), which every initiation of that peer needs:
 * computed once and kept on its allow-list entry (WireGuard's
 * precomputed_static_static), so a handshake costs three variable-base and
 * one fixed-base X25519 instead of four and one. The cache belongs to one
 * server key (the list says which): a server with another key sharing the
 * list computes each time. Servers on other threads may share the list:
 * the first to claim an entry writes its DH and publishes it; one that
 * finds it claimed but not ready uses its own. @return the DH, or NULL for
 * a low-order key.
 */
static const uint8_t *
static_static(struct ox_hs_server *s, struct ox_allow_entry *peer, uint8_t buf[OX_KEY_LEN])
{
	bool mine = s->allow->ss_set && sodium_memcmp(s->allow->ss_pub, s->s_pub, OX_KEY_LEN) == 0;

	if (mine && __atomic_load_n(&peer->ss_ready, __ATOMIC_ACQUIRE))
		return peer->ss;
	if (crypto_scalarmult(buf, s->s_priv, peer->key) != 0)
		return NULL;
	if (mine && !__atomic_test_and_set(&peer->ss_busy, __ATOMIC_RELAXED)) {
		memcpy(peer->ss, buf, OX_KEY_LEN);
		__atomic_store_n(&peer->ss_ready, true, __ATOMIC_RELEASE);
	}
	return buf;
}

uint32_t
ox_hs_precompute(struct ox_hs_server *s, uint32_t max)
{
	struct ox_allowlist *al = s->allow;
	uint8_t buf[OX_KEY_LEN];
	uint32_t done = 0;

	/* The list's cache is another key's: nothing here would be kept. */
	if (al == NULL || (al->ss_set && sodium_memcmp(al->ss_pub, s->s_pub, OX_KEY_LEN) != 0))
		return 0;
	while (done < max && al->ss_next < al->n) {
		struct ox_allow_entry *e = &al->e[al->ss_next++];

		if (__atomic_load_n(&e->ss_ready, __ATOMIC_ACQUIRE))
			continue;
		/* A low-order key gets no handshake: nothing to keep. */
		if (static_static(s, e, buf) == NULL)
			continue;
		done++;
	}
	sodium_memzero(buf, sizeof(buf));
	return done;
}

int
ox_hs_consume_init(struct ox_hs_server *s, const uint8_t *pkt, size_t len, const struct ox_src *src,
		   uint64_t now_ns, bool under_load, struct ox_responder *r,
		   uint8_t reply[OX_COOKIE_LEN])
{
	const struct hs_wire *w = &wires[s->wire];
	uint8_t mac[OX_MAC_LEN], cookie[OX_MAC_LEN];
	uint8_t prologue[PROLOGUE_MAX];
	uint8_t ts[OX_TAI64N_LEN];
	struct ox_allow_entry *peer, *named = NULL;
	uint8_t ss_buf[OX_KEY_LEN];
	const uint8_t *ss;
	struct ox_noise ns;
	size_t plen;
	int ret;

	ret = check_mac1(s->wire, s->mac1_key, pkt, len);
	if (ret < 0)
		return ret;

	if (under_load) {
		cookie_of(s, src, now_ns, cookie);
		w->mac(mac, cookie, OX_MAC_LEN, pkt, OX_INIT_MAC2_OFF);
		if (sodium_memcmp(mac, pkt + OX_INIT_MAC2_OFF, OX_MAC_LEN) != 0) {
			/* Prove the source is reachable before spending DH on it:
			 * the cookie, sealed under a key derived from our public
			 * key and bound to this initiation's mac1. */
			ox_put_wire_hdr(reply, (uint8_t)s->wire, OX_MSG_COOKIE);
			memcpy(reply + 4, pkt + 4, 4);
			ox_random(reply + 8, 24);
			crypto_aead_xchacha20poly1305_ietf_encrypt(
				reply + 32, NULL, cookie, OX_MAC_LEN, pkt + OX_INIT_MAC1_OFF,
				OX_MAC_LEN, NULL, reply + 8, s->cookie_key);
			sodium_memzero(cookie, sizeof(cookie));
			return -OX_DROP_COOKIE_SENT;
		}
		sodium_memzero(cookie, sizeof(cookie));
		/* mac2 proved the source: only now is its bucket its own. Taken
		 * for any valid-mac1 INIT, a spoofer who knows our public key
		 * would empty a victim's bucket (or a carrier-grade NAT's). */
		pthread_spin_lock(&s->adm->lock);
		ret = ox_ratelimit_take(s->adm->rl, src->addr, now_ns);
		pthread_spin_unlock(&s->adm->lock);
		switch (ret) {
		case OX_RL_ALLOW:
			break;
		case OX_RL_TABLE_FULL:
			return -OX_DROP_SOURCES_FULL;
		default:
			return -OX_DROP_RATE_LIMITED;
		}
	}

	plen = prologue_of(prologue, s->wire, pkt);
	ox_noise_init(&ns, w->suite, prologue, plen);
	ox_noise_mix_hash(&ns, s->s_pub, OX_KEY_LEN);
	if (ox_ik_read1_static(&ns, s->s_priv, pkt + 8, OX_IK1_LEN, r->re, r->peer_key) != 0) {
		ret = -OX_DROP_HS_DECRYPT;
		goto out;
	}
	/* A key not listed costs no second DH. */
	peer = s->allow ? ox_allowlist_find(s->allow, r->peer_key) : NULL;
	if (peer == NULL) {
		ret = -OX_DROP_UNKNOWN_PEER;
		goto out;
	}
	ss = static_static(s, peer, ss_buf);
	if (ss == NULL || ox_ik_read1_finish(&ns, ss, pkt + 8, OX_IK1_LEN, ts) != 0) {
		ret = -OX_DROP_HS_DECRYPT;
		goto out;
	}
	/* A line past its expiry admits no one. Judged once the key is proven
	 * (the refusal names the peer, so no one else may cause it). */
	if (ox_allow_entry_expired(peer)) {
		ret = -OX_DROP_PEER_EXPIRED;
		named = peer;
		goto out;
	}
	/* OxTunnel has no preshared key: a line that has one would lose what
	 * it protects (a later break of X25519) over the other wire. */
	if (s->wire == OX_WIRE_OXTUNNEL && !sodium_is_zero(peer->psk, OX_KEY_LEN)) {
		ret = -OX_DROP_PSK_WIREGUARD_ONLY;
		named = peer;
		goto out;
	}
	/* A captured initiation replayed later carries an old timestamp; one
	 * key spread over many sources gets no more than its share
	 * (WireGuard's 50 initiations a second, by static key). */
	ret = ox_allow_entry_accept(peer, ts, now_ns, OX_INIT_MIN_GAP_NS);
	if (ret != 0)
		goto out;
	memcpy(r->ts, ts, OX_TAI64N_LEN);
	memcpy(r->h, ns.h, sizeof(r->h));
	memcpy(r->ck, ns.ck, sizeof(r->ck));
	r->remote_index = ox_get_le32(pkt + 4);
	r->peer = peer;
	/* Copied: a response made in steps may outlive the list. */
	memcpy(r->psk, peer->psk, OX_KEY_LEN);
	r->step = 0;
	ret = 0;
out:
	sodium_memzero(ss_buf, sizeof(ss_buf));
	ox_noise_wipe(&ns);
	if (ret != 0) {
		sodium_memzero(r, sizeof(*r));
		r->peer = named;
	}
	return ret;
}

static void
payload_put(uint8_t p[OX_HS_PAYLOAD_LEN], const struct ox_hs_payload *pl, uint32_t index)
{
	memset(p, 0, OX_HS_PAYLOAD_LEN);
	ox_put_le32(p, index);
	p[4] = (uint8_t)(pl->v4 >> 24);
	p[5] = (uint8_t)(pl->v4 >> 16);
	p[6] = (uint8_t)(pl->v4 >> 8);
	p[7] = (uint8_t)pl->v4;
	memcpy(p + 8, pl->v6, 16);
	p[24] = pl->v4_prefix;
	p[25] = pl->v6_prefix;
	p[26] = (uint8_t)pl->mtu;
	p[27] = (uint8_t)(pl->mtu >> 8);
	p[28] = (uint8_t)pl->keepalive_s;
	p[29] = (uint8_t)(pl->keepalive_s >> 8);
	/* 30..31 reserved, zero */
}

static int
payload_get(const uint8_t p[OX_HS_PAYLOAD_LEN], struct ox_hs_payload *pl)
{
	pl->index = ox_get_le32(p);
	pl->v4 = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	memcpy(pl->v6, p + 8, 16);
	pl->v4_prefix = p[24];
	pl->v6_prefix = p[25];
	pl->mtu = (uint16_t)(p[26] | p[27] << 8);
	pl->keepalive_s = (uint16_t)(p[28] | p[29] << 8);
	if (pl->v4_prefix > 32)
		return -1;
	if (pl->v6_prefix > 128)
		return -1;
	if (p[30] != 0 || p[31] != 0)
		return -1;
	return 0;
}

/* WireGuard's response: sender and receiver index, e, an empty payload,
 * mac1 under the initiator's key, no mac2 (we hold no cookie of theirs). */
static int
write_wg_response(struct ox_noise *ns, const struct ox_responder *r, const uint8_t se[OX_KEY_LEN],
		  uint32_t local_index, uint8_t *out)
{
	uint8_t key[OX_KEY_LEN];

	ox_put_wire_hdr(out, OX_WIRE_WIREGUARD, OX_MSG_RESPONSE);
	ox_put_le32(out + 4, local_index);
	ox_put_le32(out + 8, r->remote_index);
	if (ox_ik_write2_dh(ns, r->e_pub, r->ee, se, r->psk, NULL, 0, out + 12) != 0)
		return -EIO;
	ox_wg_mac1_key(key, r->peer_key);
	ox_wg_mac(out + OX_WG_RESPONSE_MAC1_OFF, key, sizeof(key), out, OX_WG_RESPONSE_MAC1_OFF);
	memset(out + OX_WG_RESPONSE_MAC2_OFF, 0, OX_MAC_LEN);
	return 0;
}

/* The last step: se, then the message and the keypair. */
static int
respond_finish(struct ox_hs_server *s, struct ox_responder *r, const struct ox_hs_payload *pl,
	       uint32_t local_index, uint64_t now_ns, uint8_t *out, struct ox_keypair *kp)
{
	uint8_t payload[OX_HS_PAYLOAD_LEN];
	uint8_t k1[OX_KEY_LEN], k2[OX_KEY_LEN], se[OX_KEY_LEN];
	struct ox_noise ns;
	int ret = -EIO;

	ox_noise_resume(&ns, wires[s->wire].suite, r->h, r->ck);
	if (crypto_scalarmult(se, r->e_priv, r->peer_key) != 0)
		goto out;
	if (s->wire == OX_WIRE_WIREGUARD) {
		if (write_wg_response(&ns, r, se, local_index, out) != 0)
			goto out;
	} else {
		payload_put(payload, pl, local_index);
		ox_put_wire_hdr(out, (uint8_t)s->wire, OX_MSG_RESPONSE);
		ox_put_le32(out + 4, r->remote_index);
		if (ox_ik_write2_dh(&ns, r->e_pub, r->ee, se, NULL, payload, sizeof(payload),
				    out + 8) != 0)
			goto out;
	}
	/* k1 carries initiator -> responder. */
	ox_noise_split(&ns, k1, k2);
	ox_keypair_init(kp, k2, k1, local_index, r->remote_index, now_ns, false);
	kp->wire = (uint8_t)s->wire;
	ret = 0;
out:
	sodium_memzero(se, sizeof(se));
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	ox_noise_wipe(&ns);
	return ret;
}

int
ox_hs_respond_step(struct ox_hs_server *s, struct ox_responder *r, const struct ox_hs_payload *pl,
		   uint32_t local_index, uint64_t now_ns, uint8_t *out, struct ox_keypair *kp)
{
	int ret = 1;

	switch (r->step) {
	case 0:
		/* The ephemeral's public half is made once, by the message's "e". */
		ox_random(r->e_priv, sizeof(r->e_priv));
		if (crypto_scalarmult_base(r->e_pub, r->e_priv) != 0)
			ret = -EIO;
		break;
	case 1:
		/* libsodium refuses a low-order point (all-zero result). */
		if (crypto_scalarmult(r->ee, r->e_priv, r->re) != 0)
			ret = -EIO;
		break;
	default:
		ret = respond_finish(s, r, pl, local_index, now_ns, out, kp);
		break;
	}
	if (ret == 1)
		r->step++;
	else
		sodium_memzero(r, sizeof(*r));
	return ret;
}

int
ox_hs_make_response(struct ox_hs_server *s, struct ox_responder *r, const struct ox_hs_payload *pl,
		    uint32_t local_index, uint64_t now_ns, uint8_t *out, struct ox_keypair *kp)
{
	int ret;

	do
		ret = ox_hs_respond_step(s, r, pl, local_index, now_ns, out, kp);
	while (ret == 1);
	return ret;
}

int
ox_initiator_init(struct ox_initiator *in, const uint8_t priv[OX_KEY_LEN],
		  const uint8_t server_pub[OX_KEY_LEN])
{
	return ox_initiator_init_wire(in, OX_WIRE_OXTUNNEL, priv, server_pub, NULL);
}

int
ox_initiator_init_wire(struct ox_initiator *in, enum ox_wire wire, const uint8_t priv[OX_KEY_LEN],
		       const uint8_t server_pub[OX_KEY_LEN], const uint8_t *psk)
{
	uint8_t dh[OX_KEY_LEN];

	if (sodium_init() < 0)
		return -EIO;
	if (wire != OX_WIRE_OXTUNNEL && wire != OX_WIRE_WIREGUARD)
		return -EINVAL;
	memset(in, 0, sizeof(*in));
	in->wire = wire;
	if (psk != NULL)
		memcpy(in->psk, psk, OX_KEY_LEN);
	memcpy(in->s_priv, priv, OX_KEY_LEN);
	if (ox_key_public(in->s_pub, priv) != 0)
		goto bad;
	/* A server key of low order would make every DH with it zero. */
	if (crypto_scalarmult(dh, priv, server_pub) != 0)
		goto bad;
	sodium_memzero(dh, sizeof(dh));
	memcpy(in->server_pub, server_pub, OX_KEY_LEN);
	wires[wire].label_key(in->mac1_key, "mac1----", server_pub);
	wires[wire].label_key(in->cookie_key, "cookie--", server_pub);
	return 0;
bad:
	ox_initiator_wipe(in);
	return -EINVAL;
}

int
ox_initiator_begin(struct ox_initiator *in, uint32_t local_index, const uint8_t tai64n[12],
		   uint64_t now_ns, uint8_t out[OX_INIT_LEN])
{
	const struct hs_wire *w = &wires[in->wire];
	uint8_t prologue[PROLOGUE_MAX];
	struct ox_noise ns;
	size_t plen;
	int ret = 0;

	/* The ephemeral's public half is made once, by the message's "e". */
	ox_random(in->e_priv, OX_KEY_LEN);
	ox_put_wire_hdr(out, (uint8_t)in->wire, OX_MSG_INIT);
	ox_put_le32(out + 4, local_index);
	plen = prologue_of(prologue, in->wire, out);
	ox_noise_init(&ns, w->suite, prologue, plen);
	ox_noise_mix_hash(&ns, in->server_pub, OX_KEY_LEN);
	if (ox_ik_write1(&ns, in->s_priv, in->s_pub, in->e_priv, in->server_pub, tai64n,
			 OX_TAI64N_LEN, out + 8) != 0) {
		ret = -EIO;
		goto out;
	}
	w->mac(out + OX_INIT_MAC1_OFF, in->mac1_key, OX_KEY_LEN, out, OX_INIT_MAC1_OFF);
	memcpy(in->last_mac1, out + OX_INIT_MAC1_OFF, OX_MAC_LEN);
	if (in->cookie_ns != 0 && now_ns >= in->cookie_ns &&
	    now_ns - in->cookie_ns < OX_COOKIE_SECRET_NS)
		w->mac(out + OX_INIT_MAC2_OFF, in->cookie, OX_MAC_LEN, out, OX_INIT_MAC2_OFF);
	else
		memcpy(out + OX_INIT_MAC2_OFF, zero_mac, OX_MAC_LEN);
	memcpy(in->h, ns.h, sizeof(in->h));
	memcpy(in->ck, ns.ck, sizeof(in->ck));
	in->local_index = local_index;
	in->pending = true;
out:
	ox_noise_wipe(&ns);
	return ret;
}

int
ox_initiator_put_mac2(const struct ox_initiator *in, uint8_t init[OX_INIT_LEN], uint64_t now_ns)
{
	if (in->cookie_ns == 0 || now_ns < in->cookie_ns ||
	    now_ns - in->cookie_ns >= OX_COOKIE_SECRET_NS)
		return -ENOENT;
	wires[in->wire].mac(init + OX_INIT_MAC2_OFF, in->cookie, OX_MAC_LEN, init,
			    OX_INIT_MAC2_OFF);
	return 0;
}

int
ox_initiator_consume_cookie(struct ox_initiator *in, const uint8_t *pkt, size_t len,
			    uint64_t now_ns)
{
	uint8_t cookie[OX_MAC_LEN];

	if (len != OX_COOKIE_LEN)
		return -OX_DROP_BAD_LENGTH;
	if (msg_type(pkt, in->wire) != OX_MSG_COOKIE)
		return -OX_DROP_UNEXPECTED;
	if (!in->pending)
		return -OX_DROP_UNEXPECTED;
	if (ox_get_le32(pkt + 4) != in->local_index)
		return -OX_DROP_UNKNOWN_INDEX;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, pkt + 32,
						       OX_MAC_LEN + OX_TAG_LEN, in->last_mac1,
						       OX_MAC_LEN, pkt + 8, in->cookie_key) != 0)
		return -OX_DROP_BAD_TAG;
	memcpy(in->cookie, cookie, OX_MAC_LEN);
	in->cookie_ns = now_ns ? now_ns : 1;
	sodium_memzero(cookie, sizeof(cookie));
	return 0;
}

/* The initiator's end of the handshake once a keypair is derived. */
static void
initiator_done(struct ox_initiator *in)
{
	in->pending = false;
	sodium_memzero(in->e_priv, sizeof(in->e_priv));
	sodium_memzero(in->h, sizeof(in->h));
	sodium_memzero(in->ck, sizeof(in->ck));
}

static int
consume_wg_response(struct ox_initiator *in, const uint8_t *pkt, size_t len, uint64_t now_ns,
		    struct ox_hs_payload *pl, struct ox_keypair *kp)
{
	uint8_t k1[OX_KEY_LEN], k2[OX_KEY_LEN], key[OX_KEY_LEN], mac[OX_MAC_LEN], none[1];
	struct ox_noise ns;
	int ret;

	if (len != OX_WG_RESPONSE_LEN)
		return -OX_DROP_BAD_LENGTH;
	if (pkt[0] != OX_MSG_RESPONSE || pkt[1] != 0 || pkt[2] != 0 || pkt[3] != 0)
		return -OX_DROP_UNEXPECTED;
	if (!in->pending)
		return -OX_DROP_UNEXPECTED;
	if (ox_get_le32(pkt + 8) != in->local_index)
		return -OX_DROP_UNKNOWN_INDEX;
	/* mac1 under our own key: the server knew who it answers. */
	ox_wg_mac1_key(key, in->s_pub);
	ox_wg_mac(mac, key, sizeof(key), pkt, OX_WG_RESPONSE_MAC1_OFF);
	if (sodium_memcmp(mac, pkt + OX_WG_RESPONSE_MAC1_OFF, OX_MAC_LEN) != 0)
		return -OX_DROP_BAD_MAC1;
	ox_noise_resume(&ns, &ox_noise_wireguard, in->h, in->ck);
	if (ox_ik_read2(&ns, in->e_priv, in->s_priv, in->psk, pkt + 12, 32 + OX_TAG_LEN, none) !=
	    0) {
		ret = -OX_DROP_HS_DECRYPT;
		goto out;
	}
	memset(pl, 0, sizeof(*pl));
	pl->index = ox_get_le32(pkt + 4);
	ox_noise_split(&ns, k1, k2);
	ox_keypair_init(kp, k1, k2, in->local_index, pl->index, now_ns, true);
	kp->wire = OX_WIRE_WIREGUARD;
	initiator_done(in);
	ret = 0;
out:
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	ox_noise_wipe(&ns);
	return ret;
}

int
ox_initiator_consume_response(struct ox_initiator *in, const uint8_t *pkt, size_t len,
			      uint64_t now_ns, struct ox_hs_payload *pl, struct ox_keypair *kp)
{
	uint8_t payload[OX_HS_PAYLOAD_LEN];
	uint8_t k1[OX_KEY_LEN], k2[OX_KEY_LEN];
	struct ox_noise ns;
	int ret;

	if (in->wire == OX_WIRE_WIREGUARD)
		return consume_wg_response(in, pkt, len, now_ns, pl, kp);
	if (len != OX_RESPONSE_LEN)
		return -OX_DROP_BAD_LENGTH;
	if (pkt[3] != OX_MSG_RESPONSE)
		return -OX_DROP_UNEXPECTED;
	if (!in->pending)
		return -OX_DROP_UNEXPECTED;
	if (ox_get_le32(pkt + 4) != in->local_index)
		return -OX_DROP_UNKNOWN_INDEX;
	ox_noise_resume(&ns, &ox_noise_oxtunnel, in->h, in->ck);
	if (ox_ik_read2(&ns, in->e_priv, in->s_priv, NULL, pkt + 8, OX_IK2_LEN, payload) != 0) {
		/* Not for this handshake (or forged): keep waiting. */
		ret = -OX_DROP_HS_DECRYPT;
		goto out;
	}
	if (payload_get(payload, pl) != 0) {
		/* Authenticated but malformed: a broken server. */
		ret = -OX_DROP_HS_DECRYPT;
		goto out;
	}
	ox_noise_split(&ns, k1, k2);
	ox_keypair_init(kp, k1, k2, in->local_index, pl->index, now_ns, true);
	initiator_done(in);
	ret = 0;
out:
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	sodium_memzero(payload, sizeof(payload));
	ox_noise_wipe(&ns);
	return ret;
}

void
ox_initiator_wipe(struct ox_initiator *in)
{
	sodium_memzero(in, sizeof(*in));
}
