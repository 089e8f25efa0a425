/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transport data: the RFC 6479 replay window, sealing and opening DATA
 * messages in place, and the keypairs of a peer across rekeys.
 */
#include <sodium.h>

#include "private/ox_tunnel_private.h"

void
ox_replay_init(struct ox_replay *r)
{
	memset(r, 0, sizeof(*r));
}

int
ox_replay_check(const struct ox_replay *r, uint64_t counter)
{
	uint64_t word, bit;

	if (!r->any || counter > r->top)
		return 0;
	if (r->top - counter >= OX_REPLAY_WINDOW)
		return -OX_DROP_TOO_OLD;
	word = (counter >> 6) % OX_REPLAY_WORDS;
	bit = UINT64_C(1) << (counter & 63);
	if (r->bits[word] & bit)
		return -OX_DROP_REPLAY;
	return 0;
}

void
ox_replay_commit(struct ox_replay *r, uint64_t counter)
{
	uint64_t cur, new, n;

	if (!r->any) {
		r->any = true;
		r->top = counter;
		memset(r->bits, 0, sizeof(r->bits));
	} else if (counter > r->top) {
		/* Clear the words the window slides onto; they held counters
		 * that have just fallen out of it. */
		cur = r->top >> 6;
		new = counter >> 6;
		n = new - cur;
		if (n > OX_REPLAY_WORDS)
			n = OX_REPLAY_WORDS;
		while (n--)
			r->bits[(++cur) % OX_REPLAY_WORDS] = 0;
		r->top = counter;
	}
	r->bits[(counter >> 6) % OX_REPLAY_WORDS] |= UINT64_C(1) << (counter & 63);
}

/* now - since >= limit, for clocks that may read "before" since. */
static bool
elapsed(uint64_t now_ns, uint64_t since_ns, uint64_t limit_ns)
{
	return now_ns > since_ns && now_ns - since_ns >= limit_ns;
}

/* The AEAD's arguments for a DATA message of plain_len bytes at pkt: the
 * header is OxTunnel's associated data, WireGuard has none. */
static void
data_op(struct ox_aead_op *op, const uint8_t key[OX_KEY_LEN], uint64_t counter, uint8_t wire,
	uint8_t *pkt, size_t plain_len)
{
	*op = (struct ox_aead_op){ .key = key,
				   .counter = counter,
				   .ad = pkt,
				   .adlen = wire == OX_WIRE_WIREGUARD ? 0 : OX_DATA_HDR_LEN,
				   .buf = pkt + OX_DATA_HDR_LEN,
				   .len = plain_len,
				   .tag = pkt + OX_DATA_HDR_LEN + plain_len };
}

/*
 * Everything of sealing with the send fields of a keypair or of a send key
 * but the AEAD: the counter, the padding, the header, and the AEAD's
 * arguments in @p op. @return the datagram's length, or a negative drop.
 */
static int
seal_prep(const uint8_t key[OX_KEY_LEN], _Atomic uint64_t *next, uint64_t limit, uint64_t birth_ns,
	  uint64_t expire_ns, uint32_t remote_index, uint8_t wire, uint8_t *pkt, size_t plain_len,
	  uint64_t now_ns, struct ox_aead_op *op)
{
	bool wg = wire == OX_WIRE_WIREGUARD;
	uint64_t counter;
	size_t pad;

	if (plain_len > OX_MAX_PLAINTEXT)
		return -OX_DROP_TOO_LONG;
	if (elapsed(now_ns, birth_ns, expire_ns))
		return -OX_DROP_KEY_EXPIRED;
	/* One atomic add hands out each counter once, whatever the number
	 * of senders; past the limit every caller is refused, and the
	 * counter cannot wrap: it is pinned there. */
	counter = atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
	if (counter >= limit) {
		atomic_store_explicit(next, limit, memory_order_relaxed);
		return -OX_DROP_KEY_EXPIRED;
	}

	/* WireGuard hides lengths to OX_WG_PAD bytes (never past the largest
	 * plaintext). */
	pad = wg ? (OX_WG_PAD - plain_len % OX_WG_PAD) % OX_WG_PAD : 0;
	if (plain_len + pad > OX_MAX_PLAINTEXT)
		pad = OX_MAX_PLAINTEXT - plain_len;
	memset(pkt + OX_DATA_HDR_LEN + plain_len, 0, pad);
	plain_len += pad;
	ox_put_wire_hdr(pkt, wire, OX_MSG_DATA);
	ox_put_le32(pkt + 4, remote_index);
	ox_put_le64(pkt + 8, counter);
	data_op(op, key, counter, wire, pkt, plain_len);
	return (int)(plain_len + OX_DATA_OVERHEAD);
}

/* A prepared seal, run on its own. */
static int
seal_one(struct ox_aead *a, int len, struct ox_aead_op *op)
{
	if (len < 0)
		return len;
	if (ox_aead_seal(a, op->key, op->counter, op->ad, op->adlen, op->buf, op->len, op->tag) !=
	    0)
		return -OX_DROP_CRYPTO;
	return len;
}

int
ox_data_seal(struct ox_aead *a, struct ox_keypair *kp, uint8_t *pkt, size_t plain_len,
	     uint64_t now_ns)
{
	struct ox_aead_op op;

	if (!kp->valid)
		return -OX_DROP_KEY_EXPIRED;
	return seal_one(a,
			seal_prep(kp->send_key, &kp->send_counter, kp->send_limit, kp->birth_ns,
				  kp->expire_ns, kp->remote_index, kp->wire, pkt, plain_len, now_ns,
				  &op),
			&op);
}

int
ox_data_seal_sk_prep(struct ox_sendkey *sk, uint8_t *pkt, size_t plain_len, uint64_t now_ns,
		     struct ox_aead_op *op)
{
	if (!sk->valid)
		return -OX_DROP_KEY_EXPIRED;
	return seal_prep(sk->key, &sk->counter, sk->limit, sk->birth_ns, sk->expire_ns,
			 sk->remote_index, sk->wire, pkt, plain_len, now_ns, op);
}

int
ox_data_seal_sk(struct ox_aead *a, struct ox_sendkey *sk, uint8_t *pkt, size_t plain_len,
		uint64_t now_ns)
{
	struct ox_aead_op op;

	return seal_one(a, ox_data_seal_sk_prep(sk, pkt, plain_len, now_ns, &op), &op);
}

void
ox_sendkey_from(struct ox_sendkey *sk, const struct ox_keypair *kp)
{
	memcpy(sk->key, kp->send_key, OX_KEY_LEN);
	atomic_store_explicit(&sk->counter,
			      atomic_load_explicit(&kp->send_counter, memory_order_relaxed),
			      memory_order_relaxed);
	sk->limit = kp->send_limit;
	sk->birth_ns = kp->birth_ns;
	sk->expire_ns = kp->expire_ns;
	sk->remote_index = kp->remote_index;
	sk->wire = kp->wire;
	sk->valid = kp->valid;
}

void
ox_sendkey_wipe(struct ox_sendkey *sk)
{
	sodium_memzero(sk->key, sizeof(sk->key));
	sk->valid = false;
}

int
ox_data_open_prep(struct ox_keypair *kp, uint8_t *pkt, size_t len, uint64_t now_ns,
		  struct ox_aead_op *op)
{
	uint64_t counter;
	size_t plain_len;
	int ret;

	if (len < OX_DATA_OVERHEAD)
		return -OX_DROP_TOO_SHORT;
	if (len > OX_MAX_DATAGRAM)
		return -OX_DROP_TOO_LONG;
	if (!kp->valid)
		return -OX_DROP_UNKNOWN_INDEX;
	if (elapsed(now_ns, kp->birth_ns, kp->expire_ns))
		return -OX_DROP_KEY_EXPIRED;
	counter = ox_get_le64(pkt + 8);
	if (counter >= kp->send_limit)
		return -OX_DROP_KEY_EXPIRED;
	/* Cheap checks before the AEAD; the window is only written once
	 * the packet has authenticated. */
	ret = ox_replay_check(&kp->replay, counter);
	if (ret < 0)
		return ret;
	plain_len = len - OX_DATA_OVERHEAD;
	data_op(op, kp->recv_key, counter, kp->wire, pkt, plain_len);
	return 0;
}

int
ox_data_open_done(struct ox_keypair *kp, const struct ox_aead_op *op)
{
	int ret;

	if (op->status != 0)
		return -OX_DROP_BAD_TAG;
	/* Since the prep, a packet of the same burst may have promoted
	 * another keypair over this one, or taken the same counter. */
	if (!kp->valid)
		return -OX_DROP_UNKNOWN_INDEX;
	ret = ox_replay_check(&kp->replay, op->counter);
	if (ret < 0)
		return ret;
	ox_replay_commit(&kp->replay, op->counter);
	return (int)op->len;
}

/* A prepared open, run on its own. */
static void
open_one(struct ox_aead *a, struct ox_aead_op *op)
{
	op->status =
		ox_aead_open(a, op->key, op->counter, op->ad, op->adlen, op->buf, op->len, op->tag);
}

int
ox_data_open(struct ox_aead *a, struct ox_keypair *kp, uint8_t *pkt, size_t len, uint64_t now_ns)
{
	struct ox_aead_op op;
	int ret;

	ret = ox_data_open_prep(kp, pkt, len, now_ns, &op);
	if (ret < 0)
		return ret;
	open_one(a, &op);
	return ox_data_open_done(kp, &op);
}

bool
ox_keypair_needs_rekey(const struct ox_keypair *kp, uint64_t now_ns)
{
	if (!kp->valid || !kp->initiator)
		return false;
	if (atomic_load_explicit(&kp->send_counter, memory_order_relaxed) >= kp->rekey_messages)
		return true;
	if (kp->replay.any && kp->replay.top >= kp->rekey_messages)
		return true;
	return elapsed(now_ns, kp->birth_ns, kp->rekey_ns);
}

void
ox_keypair_init(struct ox_keypair *kp, const uint8_t send[OX_KEY_LEN],
		const uint8_t recv[OX_KEY_LEN], uint32_t local, uint32_t remote, uint64_t now_ns,
		bool initiator)
{
	memset(kp, 0, sizeof(*kp));
	memcpy(kp->send_key, send, OX_KEY_LEN);
	memcpy(kp->recv_key, recv, OX_KEY_LEN);
	atomic_store_explicit(&kp->send_counter, 0, memory_order_relaxed);
	kp->send_limit = OX_REJECT_AFTER_MESSAGES;
	kp->rekey_messages = OX_REKEY_AFTER_MESSAGES;
	kp->birth_ns = now_ns;
	kp->rekey_ns = OX_REKEY_AFTER_NS;
	kp->expire_ns = OX_REJECT_AFTER_NS;
	kp->local_index = local;
	kp->remote_index = remote;
	kp->initiator = initiator;
	kp->valid = true;
	ox_replay_init(&kp->replay);
}

void
ox_keypair_wipe(struct ox_keypair *kp)
{
	sodium_memzero(kp->send_key, sizeof(kp->send_key));
	sodium_memzero(kp->recv_key, sizeof(kp->recv_key));
	kp->valid = false;
}

void
ox_peer_init(struct ox_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->cur = p->prev = p->next = -1;
}

static void
wipe_slot(struct ox_peer *p, int8_t *role)
{
	if (*role >= 0) {
		struct ox_keypair *kp = &p->kp[*role];

		/* A caller that never takes them back (a client) loses none
		 * that matter: only the newest are kept. */
		if (kp->valid) {
			if (p->n_retired == OX_PEER_RETIRED_MAX) {
				memmove(p->retired, p->retired + 1,
					sizeof(p->retired) - sizeof(p->retired[0]));
				p->n_retired--;
			}
			p->retired[p->n_retired++] = kp->local_index;
		}
		ox_keypair_wipe(kp);
	}
	*role = -1;
}

void
ox_peer_install(struct ox_peer *p, const struct ox_keypair *kp, bool confirmed)
{
	int8_t slot;

	/* An unconfirmed keypair replaces an unconfirmed one. */
	wipe_slot(p, &p->next);
	if (confirmed)
		wipe_slot(p, &p->prev);
	/* Receiver indexes must stay unique within the peer: an old keypair
	 * that had this one's index goes (callers that recycle indexes). */
	if (p->prev >= 0 && p->kp[p->prev].local_index == kp->local_index)
		wipe_slot(p, &p->prev);
	if (p->cur >= 0 && p->kp[p->cur].local_index == kp->local_index)
		wipe_slot(p, &p->cur);
	for (slot = 0; slot < 3; slot++)
		if (slot != p->cur && slot != p->prev)
			break;
	/* Copy field by field: the counter is atomic. */
	memcpy(p->kp[slot].send_key, kp->send_key, OX_KEY_LEN);
	memcpy(p->kp[slot].recv_key, kp->recv_key, OX_KEY_LEN);
	atomic_store_explicit(&p->kp[slot].send_counter,
			      atomic_load_explicit(&kp->send_counter, memory_order_relaxed),
			      memory_order_relaxed);
	p->kp[slot].send_limit = kp->send_limit;
	p->kp[slot].rekey_messages = kp->rekey_messages;
	p->kp[slot].birth_ns = kp->birth_ns;
	p->kp[slot].rekey_ns = kp->rekey_ns;
	p->kp[slot].expire_ns = kp->expire_ns;
	p->kp[slot].local_index = kp->local_index;
	p->kp[slot].remote_index = kp->remote_index;
	p->kp[slot].initiator = kp->initiator;
	p->kp[slot].wire = kp->wire;
	p->kp[slot].replay = kp->replay;
	p->kp[slot].valid = kp->valid;
	if (confirmed) {
		p->prev = p->cur;
		p->cur = slot;
	} else {
		p->next = slot;
	}
}

struct ox_keypair *
ox_peer_find(struct ox_peer *p, uint32_t local_index)
{
	int i;

	for (i = 0; i < 3; i++)
		if (p->kp[i].valid && p->kp[i].local_index == local_index &&
		    (i == p->cur || i == p->prev || i == p->next))
			return &p->kp[i];
	return NULL;
}

struct ox_keypair *
ox_peer_current(struct ox_peer *p)
{
	if (p->cur < 0 || !p->kp[p->cur].valid)
		return NULL;
	return &p->kp[p->cur];
}

int
ox_peer_open_prep(struct ox_peer *p, uint8_t *pkt, size_t len, uint64_t now_ns,
		  struct ox_aead_op *op, struct ox_keypair **kp)
{
	if (len < OX_DATA_OVERHEAD)
		return -OX_DROP_TOO_SHORT;
	*kp = ox_peer_find(p, ox_get_le32(pkt + 4));
	if (*kp == NULL)
		return -OX_DROP_UNKNOWN_INDEX;
	return ox_data_open_prep(*kp, pkt, len, now_ns, op);
}

int
ox_peer_open(struct ox_aead *a, struct ox_peer *p, uint8_t *pkt, size_t len, uint64_t now_ns)
{
	struct ox_keypair *kp;
	struct ox_aead_op op;
	int ret;

	ret = ox_peer_open_prep(p, pkt, len, now_ns, &op, &kp);
	if (ret < 0)
		return ret;
	open_one(a, &op);
	return ox_peer_open_done(p, kp, &op);
}

int
ox_peer_open_done(struct ox_peer *p, struct ox_keypair *kp, const struct ox_aead_op *op)
{
	int ret = ox_data_open_done(kp, op);

	if (ret >= 0 && p->next >= 0 && kp == &p->kp[p->next]) {
		/* The initiator has the new keys: they become current. */
		wipe_slot(p, &p->prev);
		p->prev = p->cur;
		p->cur = p->next;
		p->next = -1;
	}
	return ret;
}

void
ox_peer_wipe(struct ox_peer *p)
{
	int i;

	for (i = 0; i < 3; i++)
		ox_keypair_wipe(&p->kp[i]);
	p->cur = p->prev = p->next = -1;
	p->n_retired = 0;
}

unsigned int
ox_peer_take_retired(struct ox_peer *p, uint32_t out[OX_PEER_RETIRED_MAX])
{
	unsigned int n = p->n_retired;

	memcpy(out, p->retired, n * sizeof(out[0]));
	p->n_retired = 0;
	return n;
}
