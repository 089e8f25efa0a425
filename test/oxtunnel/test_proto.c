/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/oxtunnel, table by table: clear-field parsing, probes, the replay
 * window, DATA sealing and every way a DATA message must fail, nonce
 * uniqueness under concurrent senders, the handshake with its allow-list,
 * mac1, cookie and rate limit paths, rekey, BATCH limits, keys, the
 * allow-list format and the handshakes' random bytes (ox_random).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "ox_test.h"
#include "ox_tunnel_private.h"
#include "test_util.h"

#define NS(s) ((uint64_t)(s)*1000000000u)

/* ------------------------------------------------------------ parsing */

struct parse_case {
	const char *name;
	const char *bytes; /* hex of the first bytes; the rest is zero */
	size_t len;
	int want;
};

static const struct parse_case parse_cases[] = {
	{ "empty", "", 0, -OX_DROP_TOO_SHORT },
	{ "3 bytes", "4f5882", 3, -OX_DROP_TOO_SHORT },
	{ "over 9216", "4f588204", OX_MAX_DATAGRAM + 1, -OX_DROP_TOO_LONG },
	{ "bad magic 0", "5058820400", 64, -OX_DROP_BAD_MAGIC },
	{ "bad magic 1", "4f59820400", 64, -OX_DROP_BAD_MAGIC },
	{ "probe", "4f585049", 4, OX_MSG_PROBE },
	{ "probe long", "4f58504900", 1400, OX_MSG_PROBE },
	{ "probe reply", "4f58504f", 64, -OX_DROP_UNEXPECTED },
	{ "v1 plain", "4f5800", 64, -OX_DROP_V1 },
	{ "v1 encrypted+control", "4f5809", 64, -OX_DROP_V1 },
	{ "v1 all flags", "4f581f", 64, -OX_DROP_V1 },
	{ "version 3", "4f588304", 64, -OX_DROP_BAD_VERSION },
	{ "version 0x80", "4f588004", 64, -OX_DROP_BAD_VERSION },
	{ "type 0", "4f588200", 64, -OX_DROP_BAD_TYPE },
	{ "type 5", "4f588205", 64, -OX_DROP_BAD_TYPE },
	{ "type 0xff", "4f5882ff", 64, -OX_DROP_BAD_TYPE },
	{ "init", "4f58820101000000", OX_INIT_LEN, OX_MSG_INIT },
	{ "init short", "4f58820101000000", OX_INIT_LEN - 1, -OX_DROP_BAD_LENGTH },
	{ "init long", "4f58820101000000", OX_INIT_LEN + 1, -OX_DROP_BAD_LENGTH },
	{ "response", "4f58820201000000", OX_RESPONSE_LEN, OX_MSG_RESPONSE },
	{ "response short", "4f58820201000000", OX_RESPONSE_LEN - 1, -OX_DROP_BAD_LENGTH },
	{ "cookie", "4f58820301000000", OX_COOKIE_LEN, OX_MSG_COOKIE },
	{ "cookie long", "4f58820301000000", OX_COOKIE_LEN + 1, -OX_DROP_BAD_LENGTH },
	{ "data empty", "4f58820401000000", OX_DATA_OVERHEAD, OX_MSG_DATA },
	{ "data short", "4f58820401000000", OX_DATA_OVERHEAD - 1, -OX_DROP_BAD_LENGTH },
	{ "data header only", "4f58820401000000", OX_DATA_HDR_LEN, -OX_DROP_BAD_LENGTH },
	{ "data max", "4f58820401000000", OX_MAX_DATAGRAM, OX_MSG_DATA },
};

static void
test_parse(void)
{
	static uint8_t buf[OX_MAX_DATAGRAM + 8];
	unsigned int i;
	struct ox_msg m;
	int ret;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];

		memset(buf, 0, sizeof(buf));
		hex_decode(buf, sizeof(buf), c->bytes);
		ret = ox_msg_parse(buf, c->len, &m);
		EXPECT(ret == c->want, "parse %s: got %d (%s), want %d (%s)", c->name, ret,
		       ox_drop_name(ret), c->want, ox_drop_name(c->want));
	}
	/* Fields come out little-endian. */
	hex_decode(buf, sizeof(buf), "4f58820478563412efcdab8967452301");
	EXPECT(ox_msg_parse(buf, 64, &m) == OX_MSG_DATA && m.index == 0x12345678 &&
		       m.counter == UINT64_C(0x0123456789abcdef),
	       "data fields");
	/* Every drop reason has a distinct name. */
	for (i = 1; i < OX_DROP_MAX; i++)
		for (unsigned int j = i + 1; j < OX_DROP_MAX; j++)
			EXPECT(strcmp(ox_drop_name((int)i), ox_drop_name((int)j)) != 0,
			       "drop names %u %u", i, j);
	EXPECT(strcmp(ox_drop_name(-OX_DROP_REPLAY), "replay") == 0, "name of a negative");
	EXPECT(strcmp(ox_drop_name(OX_DROP_MAX + 5), "?") == 0, "name out of range");
}

static void
test_probe(void)
{
	uint8_t b[64] = "OXPIabcdef";

	EXPECT(ox_probe_reply(b, 10) == 10 && memcmp(b, "OXPOabcdef", 10) == 0, "probe reply");
	EXPECT(ox_probe_reply(b, 10) == -OX_DROP_BAD_MAGIC, "OXPO is not a probe");
	EXPECT(ox_probe_reply(b, 3) == -OX_DROP_TOO_SHORT, "short probe");
}

/* ------------------------------------------------------------ replay */

static void
test_replay(void)
{
	struct ox_replay r;
	uint64_t c;

	ox_replay_init(&r);
	EXPECT(ox_replay_check(&r, 0) == 0, "first 0");
	ox_replay_commit(&r, 0);
	EXPECT(ox_replay_check(&r, 0) == -OX_DROP_REPLAY, "0 again");
	/* Out of order inside the window. */
	EXPECT(ox_replay_check(&r, 100) == 0, "100");
	ox_replay_commit(&r, 100);
	for (c = 99; c > 0; c--) {
		EXPECT(ox_replay_check(&r, c) == 0, "reordered %lu", (unsigned long)c);
		ox_replay_commit(&r, c);
	}
	for (c = 0; c <= 100; c++)
		EXPECT(ox_replay_check(&r, c) == -OX_DROP_REPLAY, "dup %lu", (unsigned long)c);
	/* The window edge: top - WINDOW + 1 is in, top - WINDOW is out. */
	ox_replay_commit(&r, 10000);
	EXPECT(ox_replay_check(&r, 10000 - OX_REPLAY_WINDOW + 1) == 0, "window edge in");
	EXPECT(ox_replay_check(&r, 10000 - OX_REPLAY_WINDOW) == -OX_DROP_TOO_OLD,
	       "window edge out");
	EXPECT(ox_replay_check(&r, 100) == -OX_DROP_TOO_OLD, "far behind");
	EXPECT(OX_REPLAY_WINDOW >= 2048, "window of at least 2048");
	/* A jump of more than the whole bitmap clears it. */
	ox_replay_commit(&r, 10000 - 5);
	ox_replay_commit(&r, 1000000);
	EXPECT(ox_replay_check(&r, 1000000 - OX_REPLAY_WINDOW + 1) == 0, "cleared after jump");
	EXPECT(ox_replay_check(&r, 1000000) == -OX_DROP_REPLAY, "top after jump");
	/* Near the top of the counter space. */
	ox_replay_init(&r);
	ox_replay_commit(&r, UINT64_MAX - 10);
	EXPECT(ox_replay_check(&r, UINT64_MAX - 10) == -OX_DROP_REPLAY, "high dup");
	EXPECT(ox_replay_check(&r, UINT64_MAX - 11) == 0, "high reorder");
}

/* -------------------------------------------------------------- data */

static void
keypair_pair(struct ox_keypair *a, struct ox_keypair *b)
{
	uint8_t k1[32], k2[32];

	randombytes_buf(k1, 32);
	randombytes_buf(k2, 32);
	ox_keypair_init(a, k1, k2, 0x1111, 0x2222, NS(1), true);
	ox_keypair_init(b, k2, k1, 0x2222, 0x1111, NS(1), false);
}

static int
seal(struct ox_aead *x, struct ox_keypair *kp, uint8_t *pkt, const char *text, uint64_t now)
{
	size_t n = strlen(text);

	memcpy(pkt + OX_DATA_HDR_LEN, text, n);
	return ox_data_seal(x, kp, pkt, n, now);
}

struct tamper_case {
	const char *name;
	size_t off; /* byte flipped; SIZE_MAX: none */
	int want;
};

static void
test_data(enum ox_aead_impl impl, const char *iname)
{
	struct ox_aead *x = ox_aead_create(impl);
	struct ox_keypair a, b;
	uint8_t pkt[256], copy[256];
	int len, ret;
	const char *msg = "an inner packet of some length";
	size_t mlen = strlen(msg);
	/* Any flip in the header (it is the associated data), payload or tag. */
	const struct tamper_case tc[] = {
		{ "version", 2, -OX_DROP_BAD_TAG },
		{ "type", 3, -OX_DROP_BAD_TAG },
		{ "index", 5, -OX_DROP_BAD_TAG },
		{ "counter", 8, -OX_DROP_BAD_TAG },
		{ "counter high", 15, -OX_DROP_BAD_TAG },
		{ "payload first", 16, -OX_DROP_BAD_TAG },
		{ "payload last", 16 + 29, -OX_DROP_BAD_TAG },
		{ "tag first", 16 + 30, -OX_DROP_BAD_TAG },
		{ "tag last", 16 + 30 + 15, -OX_DROP_BAD_TAG },
		{ "untouched", SIZE_MAX, 30 },
	};
	unsigned int i;

	EXPECT(x != NULL, "%s: aead", iname);
	if (x == NULL)
		return;
	keypair_pair(&a, &b);
	len = seal(x, &a, pkt, msg, NS(2));
	EXPECT(len == (int)(mlen + OX_DATA_OVERHEAD), "%s: sealed length %d", iname, len);
	EXPECT(memcmp(pkt + OX_DATA_HDR_LEN, msg, mlen) != 0, "%s: encrypted", iname);
	for (i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		memcpy(copy, pkt, (size_t)len);
		if (tc[i].off != SIZE_MAX)
			copy[tc[i].off] ^= 0x01;
		/* A fresh window for each, so only the tamper decides. */
		ox_replay_init(&b.replay);
		ret = ox_data_open(x, &b, copy, (size_t)len, NS(2));
		EXPECT(ret == tc[i].want, "%s: tamper %s: %d (%s)", iname, tc[i].name, ret,
		       ox_drop_name(ret));
	}
	EXPECT(memcmp(copy + OX_DATA_HDR_LEN, msg, mlen) == 0, "%s: decrypted in place", iname);
	/* Counter 0 was just accepted: the same packet again is a replay. */
	memcpy(copy, pkt, (size_t)len);
	EXPECT(ox_data_open(x, &b, copy, (size_t)len, NS(2)) == -OX_DROP_REPLAY, "%s: replayed",
	       iname);
	/* Truncated by one. */
	ox_replay_init(&b.replay);
	memcpy(copy, pkt, (size_t)len);
	EXPECT(ox_data_open(x, &b, copy, (size_t)len - 1, NS(2)) == -OX_DROP_BAD_TAG,
	       "%s: truncated", iname);
	EXPECT(ox_data_open(x, &b, copy, OX_DATA_OVERHEAD - 1, NS(2)) == -OX_DROP_TOO_SHORT,
	       "%s: too short", iname);
	/* Keepalive: empty plaintext. */
	len = ox_data_seal(x, &b, pkt, 0, NS(2));
	EXPECT(len == OX_DATA_OVERHEAD && ox_data_open(x, &a, pkt, (size_t)len, NS(2)) == 0,
	       "%s: empty message", iname);
	/* Wrong direction: a's own message does not open with a's keys. */
	len = seal(x, &a, pkt, msg, NS(2));
	EXPECT(ox_data_open(x, &a, pkt, (size_t)len, NS(2)) == -OX_DROP_BAD_TAG, "%s: reflected",
	       iname);
	/* Too old to use: REJECT_AFTER elapsed. */
	EXPECT(seal(x, &a, pkt, msg, NS(1) + OX_REJECT_AFTER_NS) == -OX_DROP_KEY_EXPIRED,
	       "%s: seal expired", iname);
	len = seal(x, &a, pkt, msg, NS(2));
	EXPECT(ox_data_open(x, &b, pkt, (size_t)len, NS(1) + OX_REJECT_AFTER_NS) ==
		       -OX_DROP_KEY_EXPIRED,
	       "%s: open expired", iname);
	/* Rekey by time, initiator only. */
	EXPECT(!ox_keypair_needs_rekey(&a, NS(1) + OX_REKEY_AFTER_NS - 1), "%s: no rekey yet",
	       iname);
	EXPECT(ox_keypair_needs_rekey(&a, NS(1) + OX_REKEY_AFTER_NS), "%s: rekey by time", iname);
	EXPECT(!ox_keypair_needs_rekey(&b, NS(1) + OX_REKEY_AFTER_NS), "%s: responder never",
	       iname);
	ox_keypair_wipe(&a);
	EXPECT(seal(x, &a, pkt, msg, NS(2)) == -OX_DROP_KEY_EXPIRED && !a.valid, "%s: wiped",
	       iname);
	ox_aead_free(x);
}

/* The counter limit: the last counter goes out, the next is refused. */
/*
 * The staged halves, as the relay runs a burst: seals readied and sealed
 * in one submission open as ox_data_seal's would; opens readied together
 * let a counter twice through the first half, and the second half takes it
 * once; a forged tag fails its packet alone and leaves its counter free; a
 * peer's next keypair is promoted by a staged open.
 */
static void
test_staged(void)
{
	enum { N = 8 };
	struct ox_aead *x = ox_aead_create(OX_AEAD_AUTO);
	struct ox_keypair a, b, *kp;
	struct ox_sendkey sk;
	struct ox_aead_op ops[N + 2];
	struct ox_peer peer;
	uint8_t pkt[N + 2][128], copy[128];
	int len[N + 2], ret;
	unsigned int i, good = 0;

	EXPECT(x != NULL, "staged: aead");
	if (x == NULL)
		return;
	keypair_pair(&a, &b);
	ox_sendkey_from(&sk, &a);
	for (i = 0; i < N; i++) {
		int n = snprintf((char *)pkt[i] + OX_DATA_HDR_LEN, 64, "staged packet %u", i);

		len[i] = ox_data_seal_sk_prep(&sk, pkt[i], (size_t)n, NS(2), &ops[i]);
		EXPECT(len[i] == n + OX_DATA_OVERHEAD, "staged: seal prep %u: %d", i, len[i]);
	}
	EXPECT(ox_aead_seal_burst(x, ops, N) == N, "staged: seal burst");
	/* Packet 3 again at the end of the burst, and packet 5 forged. */
	memcpy(pkt[N], pkt[3], (size_t)len[3]);
	len[N] = len[3];
	memcpy(copy, pkt[5], (size_t)len[5]);
	pkt[5][len[5] - 1] ^= 1;
	for (i = 0; i <= N; i++)
		EXPECT(ox_data_open_prep(&b, pkt[i], (size_t)len[i], NS(2), &ops[i]) == 0,
		       "staged: open prep %u", i);
	EXPECT(ox_aead_open_burst(x, ops, N + 1) == N, "staged: open burst, one forged");
	for (i = 0; i <= N; i++) {
		char want[64];

		snprintf(want, sizeof(want), "staged packet %u", i == N ? 3 : i);
		ret = ox_data_open_done(&b, &ops[i]);
		if (i == 5)
			good += ret == -OX_DROP_BAD_TAG;
		else if (i == N)
			good += ret == -OX_DROP_REPLAY;
		else
			good += ret == (int)strlen(want) &&
				memcmp(pkt[i] + OX_DATA_HDR_LEN, want, strlen(want)) == 0;
	}
	EXPECT(good == N + 1, "staged: %u of %d opened, refused as replay or forged right", good,
	       N + 1);
	/* The forged packet's counter was not taken: the genuine one opens. */
	EXPECT(ox_data_open(x, &b, copy, (size_t)len[5], NS(2)) == len[5] - OX_DATA_OVERHEAD,
	       "staged: a forged packet leaves its counter free");

	/* A responder's next keypair becomes current through the halves. */
	keypair_pair(&a, &b);
	ox_peer_init(&peer);
	ox_peer_install(&peer, &b, false);
	EXPECT(ox_peer_current(&peer) == NULL, "staged: next keypair not yet current");
	memcpy(pkt[N + 1] + OX_DATA_HDR_LEN, "confirm", 7);
	len[N + 1] = ox_data_seal(x, &a, pkt[N + 1], 7, NS(3));
	ret = ox_peer_open_prep(&peer, pkt[N + 1], (size_t)len[N + 1], NS(3), &ops[0], &kp);
	EXPECT(ret == 0 && kp != NULL, "staged: peer open prep");
	if (ret == 0) {
		ox_aead_open_burst(x, ops, 1);
		EXPECT(ox_peer_open_done(&peer, kp, &ops[0]) == 7, "staged: peer open done");
		EXPECT(ox_peer_current(&peer) != NULL &&
			       ox_peer_current(&peer)->local_index == b.local_index,
		       "staged: the next keypair is current");
	}
	ox_peer_wipe(&peer);
	ox_aead_free(x);
	printf("staged: seal and open bursts, replay and forgery inside a burst\n");
}

static void
test_counter_limit(void)
{
	struct ox_aead *x = ox_aead_create(OX_AEAD_OPENSSL);
	struct ox_keypair a, b;
	uint8_t pkt[128];
	int len;

	keypair_pair(&a, &b);
	a.send_limit = b.send_limit = 1000;
	a.rekey_messages = 900;
	atomic_store(&a.send_counter, 899);
	EXPECT(!ox_keypair_needs_rekey(&a, NS(2)), "899 < 900");
	len = seal(x, &a, pkt, "0123456789012345678901234", NS(2));
	EXPECT(len > 0 && ox_data_open(x, &b, pkt, (size_t)len, NS(2)) > 0, "899 goes");
	EXPECT(ox_keypair_needs_rekey(&a, NS(2)), "rekey at 900");
	atomic_store(&a.send_counter, 999);
	len = seal(x, &a, pkt, "0123456789012345678901234", NS(2));
	EXPECT(len > 0 && ox_data_open(x, &b, pkt, (size_t)len, NS(2)) > 0, "999 goes");
	EXPECT(seal(x, &a, pkt, "0123456789012345678901234", NS(2)) == -OX_DROP_KEY_EXPIRED,
	       "1000 refused");
	EXPECT(seal(x, &a, pkt, "0123456789012345678901234", NS(2)) == -OX_DROP_KEY_EXPIRED,
	       "still refused");
	/* Refusals do not move the counter on: it cannot wrap to 0. */
	EXPECT(atomic_load(&a.send_counter) == 1000, "counter pinned at the limit (%llu)",
	       (unsigned long long)atomic_load(&a.send_counter));
	a.send_limit = UINT64_MAX;
	atomic_store(&a.send_counter, UINT64_MAX);
	EXPECT(seal(x, &a, pkt, "0123456789012345678901234", NS(2)) == -OX_DROP_KEY_EXPIRED &&
		       seal(x, &a, pkt, "0123456789012345678901234", NS(2)) ==
			       -OX_DROP_KEY_EXPIRED &&
		       atomic_load(&a.send_counter) == UINT64_MAX,
	       "no wrap past 2^64 - 1");
	a.send_limit = 1000;
	/* A forged counter at the limit is refused before the AEAD. */
	ox_put_le64(pkt + 8, 1000);
	EXPECT(ox_data_open(x, &b, pkt, 64, NS(2)) == -OX_DROP_KEY_EXPIRED, "counter past limit");
	/* A receiver's counters also trigger the initiator's rekey. */
	keypair_pair(&a, &b);
	a.rekey_messages = 10;
	atomic_store(&b.send_counter, 10);
	len = seal(x, &b, pkt, "0123456789012345678901234", NS(2));
	EXPECT(ox_data_open(x, &a, pkt, (size_t)len, NS(2)) > 0 &&
		       ox_keypair_needs_rekey(&a, NS(2)),
	       "rekey on received counters");
	ox_aead_free(x);
}

/* A send key seals exactly as its keypair; a peer reports the receiver
 * indexes of the keypairs it drops. */
static void
test_sendkey_retired(void)
{
	struct ox_aead *x = ox_aead_create(OX_AEAD_OPENSSL);
	struct ox_keypair a, b, n1, n2, n3;
	struct ox_sendkey sk;
	struct ox_peer p;
	uint8_t p1[128], p2[128];
	uint32_t idx[OX_PEER_RETIRED_MAX];
	int l1, l2;
	unsigned int k;

	keypair_pair(&a, &b);
	atomic_store(&a.send_counter, 41);
	ox_sendkey_from(&sk, &a);
	l1 = seal(x, &a, p1, "same bytes either way", NS(2));
	memcpy(p2 + OX_DATA_HDR_LEN, "same bytes either way", 21);
	l2 = ox_data_seal_sk(x, &sk, p2, 21, NS(2));
	EXPECT(l1 == l2 && l1 > 0 && memcmp(p1, p2, (size_t)l1) == 0,
	       "a send key seals the keypair's bytes");
	EXPECT(ox_data_open(x, &b, p2, (size_t)l2, NS(2)) == 21, "and it opens");
	ox_sendkey_wipe(&sk);
	EXPECT(ox_data_seal_sk(x, &sk, p2, 21, NS(2)) == -OX_DROP_KEY_EXPIRED,
	       "a wiped send key seals nothing");

	/* Responder: current 0x10, then three unconfirmed ones in a row. */
	ox_peer_init(&p);
	keypair_pair(&a, &b);
	b.local_index = 0x10;
	ox_peer_install(&p, &b, true);
	n1 = b, n2 = b, n3 = b;
	n1.local_index = 0x11;
	n2.local_index = 0x12;
	n3.local_index = 0x13;
	ox_peer_install(&p, &n1, false);
	EXPECT(ox_peer_take_retired(&p, idx) == 0, "nothing dropped yet");
	ox_peer_install(&p, &n2, false);
	ox_peer_install(&p, &n3, false);
	k = ox_peer_take_retired(&p, idx);
	EXPECT(k == 2 && idx[0] == 0x11 && idx[1] == 0x12,
	       "the replaced next keypairs "
	       "reported (%u)",
	       k);
	EXPECT(ox_peer_current(&p) != NULL && ox_peer_current(&p)->local_index == 0x10,
	       "the current one stays");
	EXPECT(ox_peer_take_retired(&p, idx) == 0, "taken once");
	ox_aead_free(x);
}

/* The timestamp store: notes survive a reopen of its file, apply raises
 * an allow-list's timestamps, a torn last line is skipped. */
static void
test_tsstore(void)
{
	char dir[] = "/tmp/oxtsXXXXXX", path[64], err[256];
	uint8_t k1[32], k2[32], t1[12] = { 0x40, 0, 0, 0, 0, 0, 0, 9 }, t0[12] = { 0x40 };
	struct ox_allowlist al;
	struct ox_tsstore *ts;
	char text[256], b1[OX_KEY_B64_LEN + 1], b2[OX_KEY_B64_LEN + 1];
	FILE *f;

	EXPECT(mkdtemp(dir) != NULL, "tmp dir");
	snprintf(path, sizeof(path), "%s/state", dir);
	randombytes_buf(k1, 32);
	randombytes_buf(k2, 32);
	ts = ox_tsstore_open(path, err, sizeof(err));
	EXPECT(ts != NULL, "open a new store: %s", err);
	if (ts == NULL)
		return;
	EXPECT(ox_tsstore_note(ts, k1, t1) == 0 && ox_tsstore_note(ts, k1, t0) == 0,
	       "note, and an older one (ignored)");
	EXPECT(ox_tsstore_flush(ts, err, sizeof(err)) == 0, "flush: %s", err);
	ox_tsstore_close(ts);
	/* A crash in the middle of a line. */
	f = fopen(path, "a");
	fputs("garbage-that-is-no-line", f);
	fclose(f);
	ts = ox_tsstore_open(path, err, sizeof(err));
	EXPECT(ts != NULL, "reopen: %s", err);
	if (ts == NULL)
		return;
	ox_key_to_base64(b1, k1);
	ox_key_to_base64(b2, k2);
	snprintf(text, sizeof(text), "%s one\n%s two\n", b1, b2);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0,
	       "list: %s", err);
	ox_tsstore_apply(ts, &al);
	EXPECT(memcmp(ox_allowlist_find(&al, k1)->last_init, t1, 12) == 0,
	       "the noted timestamp came back from the file");
	EXPECT(memcmp(ox_allowlist_find(&al, k2)->last_init, (uint8_t[12]){ 0 }, 12) == 0,
	       "an unknown key keeps none");
	ox_allowlist_free(&al);
	ox_tsstore_close(ts);
	ts = ox_tsstore_open(NULL, err, sizeof(err));
	EXPECT(ts != NULL && ox_tsstore_note(ts, k2, t1) == 0 &&
		       ox_tsstore_flush(ts, err, sizeof(err)) == 0,
	       "a store in memory only");
	ox_tsstore_close(ts);
	snprintf(text, sizeof(text), "%s/nosuchdir/state", dir);
	EXPECT(ox_tsstore_open(text, err, sizeof(err)) == NULL && strstr(err, "nosuchdir") != NULL,
	       "an unwritable path is refused with its name (%s)", err);
	unlink(path);
	rmdir(dir);
}

/* Nonces never repeat, however many threads send on one keypair. */
#define SEAL_THREADS 4
#define SEAL_EACH 50000

struct seal_arg {
	struct ox_keypair *kp;
	uint64_t *counters;
	int failures;
};

static void *
seal_thread(void *p)
{
	struct seal_arg *s = p;
	struct ox_aead *x = ox_aead_create(OX_AEAD_OPENSSL);
	uint8_t pkt[64];
	int i;

	if (x == NULL) {
		s->failures++;
		return NULL;
	}
	for (i = 0; i < SEAL_EACH; i++) {
		memset(pkt + OX_DATA_HDR_LEN, 0x45, 20);
		if (ox_data_seal(x, s->kp, pkt, 20, NS(2)) != 20 + OX_DATA_OVERHEAD)
			s->failures++;
		s->counters[i] = ox_get_le64(pkt + 8);
	}
	ox_aead_free(x);
	return NULL;
}

static void
test_nonce_unique(void)
{
	static uint64_t counters[SEAL_THREADS][SEAL_EACH];
	struct seal_arg args[SEAL_THREADS];
	pthread_t th[SEAL_THREADS];
	struct ox_keypair a, b;
	uint8_t *seen;
	unsigned int i, j, dups = 0, failures = 0;
	const unsigned int total = SEAL_THREADS * SEAL_EACH;

	keypair_pair(&a, &b);
	for (i = 0; i < SEAL_THREADS; i++) {
		args[i] = (struct seal_arg){ &a, counters[i], 0 };
		EXPECT(pthread_create(&th[i], NULL, seal_thread, &args[i]) == 0, "thread");
	}
	for (i = 0; i < SEAL_THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += (unsigned int)args[i].failures;
	}
	seen = calloc(total, 1);
	for (i = 0; i < SEAL_THREADS; i++)
		for (j = 0; j < SEAL_EACH; j++) {
			uint64_t c = counters[i][j];

			if (c >= total || seen[c]++)
				dups++;
		}
	EXPECT(failures == 0 && dups == 0,
	       "%u threads x %u seals: %u failures, %u reused or "
	       "out-of-range counters",
	       SEAL_THREADS, SEAL_EACH, failures, dups);
	printf("nonces: %u seals from %u threads, every counter used once\n", total, SEAL_THREADS);
	free(seen);
}

/* --------------------------------------------------------- handshake */

struct party {
	uint8_t priv[32], pub[32];
	char b64[OX_KEY_B64_LEN + 1];
};

static void
party_make(struct party *p)
{
	ox_key_generate(p->priv, p->pub);
	ox_key_to_base64(p->b64, p->pub);
}

static const struct ox_src src_a = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 }, 40000 };
static const struct ox_src src_b = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 3 }, 40000 };

/* One full handshake; returns the server's drop (0 = done). */
static int
handshake(struct ox_hs_server *srv, struct ox_initiator *in, const struct ox_src *src, uint64_t now,
	  bool load, uint32_t cidx, uint32_t sidx, struct ox_keypair *ckp, struct ox_keypair *skp,
	  uint8_t cookie[OX_COOKIE_LEN])
{
	uint8_t init[OX_INIT_LEN], resp[OX_RESPONSE_LEN], ts[12];
	struct ox_hs_payload pl = { .v4 = 0x64400002,
				    .v4_prefix = 10,
				    .v6_prefix = 64,
				    .mtu = 1420,
				    .keepalive_s = 25 },
			     got;
	struct ox_responder r;
	struct ox_msg m;
	int ret;

	pl.v6[0] = 0xfd;
	pl.v6[15] = 2;
	ox_tai64n_now(ts);
	EXPECT(ox_initiator_begin(in, cidx, ts, now, init) == 0, "begin");
	EXPECT(ox_msg_parse(init, sizeof(init), &m) == OX_MSG_INIT && m.index == cidx,
	       "init parses");
	ret = ox_hs_consume_init(srv, init, sizeof(init), src, now, load, &r, cookie);
	if (ret != 0)
		return ret;
	EXPECT(ox_hs_make_response(srv, &r, &pl, sidx, now, resp, skp) == 0, "response");
	EXPECT(ox_msg_parse(resp, sizeof(resp), &m) == OX_MSG_RESPONSE && m.index == cidx,
	       "response parses");
	ret = ox_initiator_consume_response(in, resp, sizeof(resp), now, &got, ckp);
	EXPECT(ret == 0, "client takes response: %s", ox_drop_name(ret));
	EXPECT(got.index == sidx && got.v4 == pl.v4 && got.mtu == 1420 &&
		       memcmp(got.v6, pl.v6, 16) == 0 && got.v4_prefix == 10 &&
		       got.v6_prefix == 64 && got.keepalive_s == 25,
	       "payload arrives");
	EXPECT(ckp->remote_index == sidx && skp->remote_index == cidx && ckp->local_index == cidx &&
		       skp->local_index == sidx,
	       "indexes");
	return 0;
}

static void
exchange_ok(struct ox_aead *x, struct ox_keypair *c, struct ox_keypair *s, const char *what)
{
	uint8_t pkt[128];
	int len;

	len = seal(x, c, pkt, "client to server payload", NS(1000));
	EXPECT(len > 0 && ox_data_open(x, s, pkt, (size_t)len, NS(1000)) == 24 &&
		       memcmp(pkt + 16, "client to server payload", 24) == 0,
	       "%s: c->s", what);
	len = seal(x, s, pkt, "server to client payload", NS(1000));
	EXPECT(len > 0 && ox_data_open(x, c, pkt, (size_t)len, NS(1000)) == 24 &&
		       memcmp(pkt + 16, "server to client payload", 24) == 0,
	       "%s: s->c", what);
}

static void
test_handshake(void)
{
	struct party server, alice, mallory;
	struct ox_hs_conf conf;
	struct ox_hs_server *srv;
	struct ox_initiator in, in_m;
	struct ox_keypair ckp, skp;
	struct ox_allowlist al, al2;
	struct ox_aead *x = ox_aead_create(OX_AEAD_OPENSSL);
	uint8_t cookie[OX_COOKIE_LEN], init[OX_INIT_LEN], ts[12], old_init[OX_INIT_LEN];
	char text[512], err[256];
	struct ox_responder r;
	int ret, i, limited;

	party_make(&server);
	party_make(&alice);
	party_make(&mallory);
	snprintf(text, sizeof(text), "# test\n%s alice 100.64.0.9\n", alice.b64);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 100, err, sizeof(err)) == 0,
	       "allow-list: %s", err);
	ox_hs_conf_default(&conf);
	srv = ox_hs_create(server.priv, &conf);
	EXPECT(srv != NULL && memcmp(ox_hs_public(srv), server.pub, 32) == 0, "server");
	ox_hs_set_allowlist(srv, &al);

	/* The happy path, then data both ways. */
	EXPECT(ox_initiator_init(&in, alice.priv, server.pub) == 0, "initiator");
	ret = handshake(srv, &in, &src_a, NS(1000), false, 7, 9, &ckp, &skp, cookie);
	EXPECT(ret == 0, "handshake: %s", ox_drop_name(ret));
	exchange_ok(x, &ckp, &skp, "first handshake");

	/* A key not on the allow-list. */
	EXPECT(ox_initiator_init(&in_m, mallory.priv, server.pub) == 0, "mallory");
	ret = handshake(srv, &in_m, &src_b, NS(1000), false, 1, 2, &ckp, &skp, cookie);
	EXPECT(ret == -OX_DROP_UNKNOWN_PEER, "unknown key refused: %s", ox_drop_name(ret));

	/* A line past its expiry admits no one, and records nothing: the same
	 * client is admitted once the expiry is moved on. */
	{
		struct ox_allow_entry *ea = ox_allowlist_find(&al, alice.pub);

		ea->expires = (int64_t)time(NULL) - 60;
		ret = handshake(srv, &in, &src_a, NS(1000) + OX_INIT_MIN_GAP_NS, false, 7, 9, &ckp,
				&skp, cookie);
		EXPECT(ret == -OX_DROP_PEER_EXPIRED, "an expired line refused: %s",
		       ox_drop_name(ret));
		ea->expires = (int64_t)time(NULL) + 3600;
		ret = handshake(srv, &in, &src_a, NS(1000) + OX_INIT_MIN_GAP_NS, false, 7, 9, &ckp,
				&skp, cookie);
		EXPECT(ret == 0, "one that expires in an hour admitted: %s", ox_drop_name(ret));
		ea->expires = 0;
	}

	/* A client that has the wrong server key fails mac1: no DH spent. */
	{
		struct party other;
		struct ox_initiator wrong;

		party_make(&other);
		ox_initiator_init(&wrong, alice.priv, other.pub);
		ret = handshake(srv, &wrong, &src_a, NS(1000), false, 1, 2, &ckp, &skp, cookie);
		EXPECT(ret == -OX_DROP_BAD_MAC1, "wrong server key: %s", ox_drop_name(ret));
	}

	/* Flipped bytes: mac1 catches them all. */
	ox_tai64n_now(ts);
	ox_initiator_begin(&in, 7, ts, NS(1000), init);
	memcpy(old_init, init, sizeof(init));
	for (i = 0; i < OX_INIT_MAC1_OFF; i += 9) {
		init[i] ^= 0x20;
		ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1000), false, &r,
					 cookie);
		EXPECT(ret == -OX_DROP_BAD_MAC1 || (i == 3 && ret == -OX_DROP_UNEXPECTED),
		       "flip at %d: %s", i, ox_drop_name(ret));
		init[i] ^= 0x20;
	}
	/* mac2 is not checked when not under load. */
	init[OX_INIT_MAC2_OFF] ^= 1;
	ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1001), false, &r, cookie);
	EXPECT(ret == 0, "mac2 ignored without load: %s", ox_drop_name(ret));
	/* The same initiation again: stale timestamp. */
	ret = ox_hs_consume_init(srv, old_init, sizeof(old_init), &src_a, NS(1002), false, &r,
				 cookie);
	EXPECT(ret == -OX_DROP_STALE_INIT, "replayed initiation: %s", ox_drop_name(ret));
	/* An allow-list reload keeps the last timestamp. */
	EXPECT(ox_allowlist_parse(&al2, text, strlen(text), &al, 100, err, sizeof(err)) == 0,
	       "reload");
	ox_hs_set_allowlist(srv, &al2);
	ret = ox_hs_consume_init(srv, old_init, sizeof(old_init), &src_a, NS(1002), false, &r,
				 cookie);
	EXPECT(ret == -OX_DROP_STALE_INIT, "replayed after reload: %s", ox_drop_name(ret));
	ox_allowlist_free(&al);

	/* Under load: no cookie yet -> cookie reply; with it -> accepted. */
	ret = handshake(srv, &in, &src_a, NS(2000), true, 7, 10, &ckp, &skp, cookie);
	EXPECT(ret == -OX_DROP_COOKIE_SENT, "under load, no cookie: %s", ox_drop_name(ret));
	{
		struct ox_msg m;

		EXPECT(ox_msg_parse(cookie, sizeof(cookie), &m) == OX_MSG_COOKIE && m.index == 7,
		       "cookie reply parses");
		/* A tampered cookie reply is refused. */
		cookie[40] ^= 1;
		EXPECT(ox_initiator_consume_cookie(&in, cookie, sizeof(cookie), NS(2000)) ==
			       -OX_DROP_BAD_TAG,
		       "tampered cookie");
		cookie[40] ^= 1;
		EXPECT(ox_initiator_consume_cookie(&in, cookie, sizeof(cookie), NS(2000)) == 0,
		       "cookie taken");
	}
	ret = handshake(srv, &in, &src_a, NS(2001), true, 7, 10, &ckp, &skp, cookie);
	EXPECT(ret == 0, "under load with cookie: %s", ox_drop_name(ret));
	exchange_ok(x, &ckp, &skp, "after cookie");
	/* The cookie is bound to the source address and port. */
	ret = handshake(srv, &in, &src_b, NS(2002), true, 7, 10, &ckp, &skp, cookie);
	EXPECT(ret == -OX_DROP_COOKIE_SENT, "cookie from another source: %s", ox_drop_name(ret));
	/* Stale cookies are not used by the client. */
	ox_initiator_consume_cookie(&in, cookie, sizeof(cookie), NS(2002));
	ret = handshake(srv, &in, &src_b, NS(2002) + OX_COOKIE_SECRET_NS, true, 7, 10, &ckp, &skp,
			cookie);
	EXPECT(ret == -OX_DROP_COOKIE_SENT, "old cookie: %s", ox_drop_name(ret));
	/* A cookie reply for no pending handshake is ignored. */
	EXPECT(ox_initiator_consume_cookie(&in_m, cookie, sizeof(cookie), NS(2003)) ==
			       -OX_DROP_UNKNOWN_INDEX ||
		       ox_initiator_consume_cookie(&in_m, cookie, sizeof(cookie), NS(2003)) ==
			       -OX_DROP_UNEXPECTED,
	       "cookie for someone else");

	/* No per-source limit below load (WireGuard's rule): one source gets
	 * 20 handshakes in 0.4 s, where its bucket (burst 5, 20/s) holds 13. */
	for (i = 0, limited = 0; i < 20; i++) {
		ret = handshake(srv, &in, &src_b, NS(3000) + (uint64_t)i * OX_INIT_MIN_GAP_NS,
				false, 7, 11, &ckp, &skp, cookie);
		limited += ret != 0;
	}
	EXPECT(limited == 0, "not under load, no source is limited (%d of 20 refused)", limited);

	/* The per-key gap: a second initiation of one key within 1/50 s is a
	 * flood, whatever its source; at 1/50 s it is taken. */
	ret = handshake(srv, &in, &src_a, NS(3100), false, 7, 11, &ckp, &skp, cookie);
	EXPECT(ret == 0, "gap: first: %s", ox_drop_name(ret));
	ret = handshake(srv, &in, &src_b, NS(3100) + OX_INIT_MIN_GAP_NS / 2, false, 7, 11, &ckp,
			&skp, cookie);
	EXPECT(ret == -OX_DROP_INIT_FLOOD, "gap: 10 ms later, another source: %s",
	       ox_drop_name(ret));
	ret = handshake(srv, &in, &src_b, NS(3100) + OX_INIT_MIN_GAP_NS, false, 7, 11, &ckp, &skp,
			cookie);
	EXPECT(ret == 0, "gap: 20 ms after the accepted one: %s", ox_drop_name(ret));

	/* Under load a spoofer who knows our public key sends valid-mac1
	 * initiations from a victim's address: each gets a cookie reply (to
	 * the victim) and spends nothing of the victim's bucket. */
	{
		struct ox_initiator spoof;

		EXPECT(ox_initiator_init(&spoof, mallory.priv, server.pub) == 0, "spoofer");
		for (i = 0, limited = 0; i < 50; i++) {
			ret = handshake(srv, &spoof, &src_b, NS(3200), true, 3, 4, &ckp, &skp,
					cookie);
			limited += ret != -OX_DROP_COOKIE_SENT;
		}
		EXPECT(limited == 0, "50 spoofed initiations under load: all cookie replies");
		ox_initiator_wipe(&spoof);
	}
	/* The victim, with its cookie, still has its whole burst; past it the
	 * bucket of the source mac2 proved refuses. */
	ret = handshake(srv, &in, &src_b, NS(3200), true, 7, 12, &ckp, &skp, cookie);
	EXPECT(ret == -OX_DROP_COOKIE_SENT, "victim: cookie first: %s", ox_drop_name(ret));
	EXPECT(ox_initiator_consume_cookie(&in, cookie, sizeof(cookie), NS(3200)) == 0,
	       "victim takes the cookie");
	for (i = 0, limited = 0; i < 20; i++) {
		ret = handshake(srv, &in, &src_b, NS(3200) + (uint64_t)i * OX_INIT_MIN_GAP_NS, true,
				7, 12, &ckp, &skp, cookie);
		EXPECT(ret == 0 || ret == -OX_DROP_RATE_LIMITED, "proved: %s", ox_drop_name(ret));
		if (i < (int)conf.hs_burst)
			EXPECT(ret == 0, "victim's burst intact after the spoofing: #%d %s", i,
			       ox_drop_name(ret));
		limited += ret == -OX_DROP_RATE_LIMITED;
	}
	EXPECT(limited > 0 && limited < 20 - (int)conf.hs_burst,
	       "under load the proved source is rate limited (%d of 20 refused)", limited);

	/* OxTunnel refuses a key listed with a preshared key, naming it. */
	{
		struct ox_allowlist al3;
		struct party carol;
		char psk64[OX_KEY_B64_LEN + 1];
		uint8_t psk[32];

		party_make(&carol);
		randombytes_buf(psk, sizeof(psk));
		ox_key_to_base64(psk64, psk);
		snprintf(text, sizeof(text), "%s alice 100.64.0.9\n%s carol psk=%s\n", alice.b64,
			 carol.b64, psk64);
		EXPECT(ox_allowlist_parse(&al3, text, strlen(text), &al2, 100, err, sizeof(err)) ==
			       0,
		       "psk list: %s", err);
		ox_hs_set_allowlist(srv, &al3);
		EXPECT(ox_initiator_init(&in_m, carol.priv, server.pub) == 0, "carol");
		ox_tai64n_now(ts);
		ox_initiator_begin(&in_m, 5, ts, NS(3300), init);
		ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(3300), false, &r,
					 cookie);
		EXPECT(ret == -OX_DROP_PSK_WIREGUARD_ONLY && r.peer != NULL &&
			       strcmp(r.peer->name, "carol") == 0,
		       "a psk= key over OxTunnel refused, naming its line: %s", ox_drop_name(ret));
		ox_hs_set_allowlist(srv, &al2);
		ox_allowlist_free(&al3);
	}

	/* A response the client did not ask for, or tampered. */
	{
		uint8_t resp[OX_RESPONSE_LEN];
		struct ox_hs_payload pl = { 0 }, got;

		ox_tai64n_now(ts);
		ox_initiator_begin(&in, 21, ts, NS(4000), init);
		ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(4000), false, &r,
					 cookie);
		EXPECT(ret == 0, "consume: %s", ox_drop_name(ret));
		ox_hs_make_response(srv, &r, &pl, 22, NS(4000), resp, &skp);
		resp[50] ^= 1;
		EXPECT(ox_initiator_consume_response(&in, resp, sizeof(resp), NS(4000), &got,
						     &ckp) == -OX_DROP_HS_DECRYPT,
		       "tampered response");
		resp[50] ^= 1;
		resp[4] ^= 1;
		EXPECT(ox_initiator_consume_response(&in, resp, sizeof(resp), NS(4000), &got,
						     &ckp) == -OX_DROP_UNKNOWN_INDEX,
		       "response for another index");
		resp[4] ^= 1;
		EXPECT(ox_initiator_consume_response(&in, resp, sizeof(resp), NS(4000), &got,
						     &ckp) == 0,
		       "the genuine one still works");
		EXPECT(ox_initiator_consume_response(&in, resp, sizeof(resp), NS(4000), &got,
						     &ckp) == -OX_DROP_UNEXPECTED,
		       "a second copy");
	}
	ox_hs_free(srv);
	ox_allowlist_free(&al2);
	ox_initiator_wipe(&in);
	ox_initiator_wipe(&in_m);
	ox_aead_free(x);
}

/* Rekey: packets under the old keys still open while the new ones come
 * into use, the responder switches on the first packet under the new. */
/* The static-static DH kept per listed key: computed ahead (or by the
 * first handshake), equal to DH(server, key), carried over a reload, and
 * not used by a server of another key that shares the list. */
static void
test_static_static(void)
{
	struct party server, other, c[3];
	struct ox_hs_conf conf;
	struct ox_hs_server *srv, *srv2;
	struct ox_initiator in;
	struct ox_keypair ckp, skp;
	struct ox_allowlist al, al2;
	uint8_t cookie[OX_COOKIE_LEN], want[32];
	char text[512], err[256];
	uint32_t i;
	int ret;

	party_make(&server);
	party_make(&other);
	for (i = 0; i < 3; i++)
		party_make(&c[i]);
	snprintf(text, sizeof(text), "%s a\n%s b\n%s c\n", c[0].b64, c[1].b64, c[2].b64);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0, "%s",
	       err);
	ox_hs_conf_default(&conf);
	srv = ox_hs_create(server.priv, &conf);
	srv2 = ox_hs_create(other.priv, &conf);
	ox_hs_set_allowlist(srv, &al);
	ox_hs_set_allowlist(srv2, &al);

	/* The first handshake computes its peer's. */
	EXPECT(ox_initiator_init(&in, c[1].priv, server.pub) == 0, "initiator");
	ret = handshake(srv, &in, &src_a, NS(1000), false, 7, 9, &ckp, &skp, cookie);
	EXPECT(ret == 0 && ox_allowlist_find(&al, c[1].pub)->ss_ready,
	       "a handshake keeps its peer's static-static DH: %s", ox_drop_name(ret));
	EXPECT(ox_hs_precompute(srv, 1) == 1 && ox_hs_precompute(srv, 10) == 1 &&
		       ox_hs_precompute(srv, 10) == 0,
	       "the other two computed ahead, a few at a time, then nothing left");
	for (i = 0; i < 3; i++) {
		struct ox_allow_entry *e = ox_allowlist_find(&al, c[i].pub);

		EXPECT(crypto_scalarmult(want, server.priv, c[i].pub) == 0 && e->ss_ready &&
			       memcmp(e->ss, want, 32) == 0,
		       "entry %u: DH(server, key)", i);
	}
	ret = handshake(srv, &in, &src_a, NS(2000), false, 8, 10, &ckp, &skp, cookie);
	EXPECT(ret == 0, "a handshake with the kept DH: %s", ox_drop_name(ret));

	/* Another server key on the same list: computes its own each time. */
	EXPECT(ox_hs_precompute(srv2, 10) == 0, "no precomputing for another key's list");
	EXPECT(ox_initiator_init(&in, c[2].priv, other.pub) == 0, "initiator 2");
	ret = handshake(srv2, &in, &src_a, NS(3000), false, 9, 11, &ckp, &skp, cookie);
	EXPECT(ret == 0 && crypto_scalarmult(want, server.priv, c[2].pub) == 0 &&
		       memcmp(ox_allowlist_find(&al, c[2].pub)->ss, want, 32) == 0,
	       "the other server handshakes, the kept DH stays the first key's: %s",
	       ox_drop_name(ret));

	/* A reload keeps what was computed; a new key has none yet. */
	{
		struct party d;

		party_make(&d);
		snprintf(text, sizeof(text), "%s a\n%s d\n", c[0].b64, d.b64);
		EXPECT(ox_allowlist_parse(&al2, text, strlen(text), &al, 10, err, sizeof(err)) == 0,
		       "%s", err);
		EXPECT(ox_allowlist_find(&al2, c[0].pub)->ss_ready &&
			       !ox_allowlist_find(&al2, d.pub)->ss_ready && al2.ss_set,
		       "carried over a reload");
	}
	ox_hs_set_allowlist(srv, &al2);
	EXPECT(ox_hs_precompute(srv, 10) == 1, "the new key's computed after the reload");
	ox_allowlist_free(&al2);
	ox_allowlist_free(&al);
	ox_hs_free(srv);
	ox_hs_free(srv2);
}

/*
 * Servers of one key on two threads sharing an allow-list (the relay's
 * handshake engines): the same INIT given to both at once is accepted by
 * exactly one (the other finds it stale, or too soon), round after round;
 * the first handshakes of the list's keys race to keep the static-static
 * DH and it ends right.
 */
#define SHARED_ROUNDS 200
struct shared_arg {
	struct ox_hs_server *srv;
	const uint8_t *init;
	uint64_t now;
	int ret;
	pthread_barrier_t *go;
};

static void *
shared_consume(void *p)
{
	struct shared_arg *a = p;
	struct ox_src src = { .addr = { [10] = 0xff, [11] = 0xff, 198, 18, 0, 10 }, .port = 4000 };
	struct ox_responder r;
	uint8_t cookie[OX_COOKIE_LEN];

	pthread_barrier_wait(a->go);
	a->ret = ox_hs_consume_init(a->srv, a->init, OX_INIT_LEN, &src, a->now, false, &r, cookie);
	sodium_memzero(&r, sizeof(r));
	return NULL;
}

static void
test_shared_list(void)
{
	struct party server, c[4];
	struct ox_hs_server *srv[2];
	struct ox_initiator in[4];
	struct ox_allowlist al;
	struct shared_arg arg[2];
	pthread_barrier_t go;
	pthread_t th[2];
	uint8_t init[OX_INIT_LEN], ts[12], want[32];
	char text[1024], err[128];
	unsigned int round, k, accepted_once = 0, both = 0;

	party_make(&server);
	text[0] = '\0';
	for (k = 0; k < 4; k++) {
		party_make(&c[k]);
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s c%u\n", c[k].b64, k);
		EXPECT(ox_initiator_init(&in[k], c[k].priv, server.pub) == 0, "initiator %u", k);
	}
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0, "%s",
	       err);
	srv[0] = ox_hs_create(server.priv, NULL);
	srv[1] = ox_hs_create_sibling(srv[0]);
	for (k = 0; k < 2; k++)
		ox_hs_set_allowlist(srv[k], &al);
	pthread_barrier_init(&go, NULL, 2);
	for (round = 0; round < SHARED_ROUNDS; round++) {
		/* Past the flood gap each round; a later timestamp each. */
		uint64_t now = NS(1000) + (uint64_t)round * 100000000u;

		ox_tai64n_now(ts);
		ts[8] = (uint8_t)(round >> 8);
		ts[9] = (uint8_t)round;
		EXPECT(ox_initiator_begin(&in[round % 4], 100 + round, ts, now, init) == 0,
		       "begin");
		for (k = 0; k < 2; k++) {
			arg[k] = (struct shared_arg){
				.srv = srv[k], .init = init, .now = now, .go = &go
			};
			pthread_create(&th[k], NULL, shared_consume, &arg[k]);
		}
		for (k = 0; k < 2; k++)
			pthread_join(th[k], NULL);
		accepted_once += (arg[0].ret == 0) != (arg[1].ret == 0);
		both += arg[0].ret == 0 && arg[1].ret == 0;
		EXPECT((arg[0].ret == 0 || arg[0].ret == -OX_DROP_STALE_INIT) &&
			       (arg[1].ret == 0 || arg[1].ret == -OX_DROP_STALE_INIT),
		       "round %u: accepted or stale (%s, %s)", round, ox_drop_name(arg[0].ret),
		       ox_drop_name(arg[1].ret));
	}
	EXPECT(accepted_once == SHARED_ROUNDS && both == 0,
	       "each INIT accepted by exactly one of two threads (%u of %u, %u by both)",
	       accepted_once, SHARED_ROUNDS, both);
	for (k = 0; k < 4; k++) {
		const struct ox_allow_entry *e = ox_allowlist_find(&al, c[k].pub);

		EXPECT(crypto_scalarmult(want, server.priv, c[k].pub) == 0 && e->ss_ready &&
			       memcmp(e->ss, want, 32) == 0,
		       "key %u: the kept DH is right after the race", k);
	}
	pthread_barrier_destroy(&go);
	for (k = 0; k < 2; k++)
		ox_hs_free(srv[k]);
	for (k = 0; k < 4; k++)
		ox_initiator_wipe(&in[k]);
	ox_allowlist_free(&al);
}

/* A server and one client, alice, on its list. */
static void
alice_listed(struct party *server, struct party *alice, struct ox_allowlist *al)
{
	char text[256], err[128];

	party_make(server);
	party_make(alice);
	snprintf(text, sizeof(text), "%s alice\n", alice->b64);
	EXPECT(ox_allowlist_parse(al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0, "%s",
	       err);
}

/* Siblings judge a source as one server would: a cookie one of them sent
 * proves the source to the other, and the source has one bucket. */
static void
test_siblings(void)
{
	struct party server, alice;
	struct ox_hs_server *a, *b;
	struct ox_initiator in;
	struct ox_responder r;
	struct ox_allowlist al;
	struct ox_src src = { .addr = { [10] = 0xff, [11] = 0xff, 198, 18, 0, 12 }, .port = 5000 };
	struct ox_hs_conf conf;
	uint8_t init[OX_INIT_LEN], cookie[OX_COOKIE_LEN], ts[12];
	unsigned int k;
	int ret;

	alice_listed(&server, &alice, &al);
	ox_hs_conf_default(&conf);
	a = ox_hs_create(server.priv, &conf);
	b = ox_hs_create_sibling(a);
	EXPECT(a != NULL && b != NULL, "a server and its sibling");
	EXPECT(memcmp(ox_hs_public(a), ox_hs_public(b), OX_KEY_LEN) == 0, "one key");
	ox_hs_set_allowlist(a, &al);
	ox_hs_set_allowlist(b, &al);
	EXPECT(ox_initiator_init(&in, alice.priv, server.pub) == 0, "initiator");
	ox_tai64n_now(ts);
	EXPECT(ox_initiator_begin(&in, 1, ts, NS(1000), init) == 0, "INIT");
	ret = ox_hs_consume_init(a, init, sizeof(init), &src, NS(1000), true, &r, cookie);
	EXPECT(ret == -OX_DROP_COOKIE_SENT, "under load, one sends a cookie (%s)",
	       ox_drop_name(ret));
	EXPECT(ox_initiator_consume_cookie(&in, cookie, sizeof(cookie), NS(1001)) == 0,
	       "cookie taken");
	ts[11]++;
	EXPECT(ox_initiator_begin(&in, 2, ts, NS(1002), init) == 0, "INIT with mac2");
	ret = ox_hs_consume_init(b, init, sizeof(init), &src, NS(1002), true, &r, cookie);
	EXPECT(ret == 0, "the other takes its mac2: %s", ox_drop_name(ret));
	sodium_memzero(&r, sizeof(r));
	/* The bucket: a burst in all, whichever judges (a replay still takes
	 * its credit: the limit comes before the DH). */
	for (k = 1; k < conf.hs_burst; k++) {
		ret = ox_hs_consume_init(k % 2 ? a : b, init, sizeof(init), &src, NS(1002), true,
					 &r, cookie);
		EXPECT(ret != -OX_DROP_RATE_LIMITED, "INIT %u of the burst not limited", k + 1);
	}
	ret = ox_hs_consume_init(a, init, sizeof(init), &src, NS(1002), true, &r, cookie);
	EXPECT(ret == -OX_DROP_RATE_LIMITED, "one past the burst, at the first: %s",
	       ox_drop_name(ret));
	ret = ox_hs_consume_init(b, init, sizeof(init), &src, NS(1002), true, &r, cookie);
	EXPECT(ret == -OX_DROP_RATE_LIMITED, "and at its sibling: %s", ox_drop_name(ret));
	/* Freed in either order: the sibling keeps what they share. */
	ox_hs_free(a);
	ret = ox_hs_consume_init(b, init, sizeof(init), &src, NS(1002), true, &r, cookie);
	EXPECT(ret == -OX_DROP_RATE_LIMITED, "the sibling alone still limits: %s",
	       ox_drop_name(ret));
	ox_hs_free(b);
	ox_initiator_wipe(&in);
	ox_allowlist_free(&al);
}

/* An INIT made before its cookie came gets mac2 put on it afterwards. */
static void
test_put_mac2(void)
{
	struct party server, alice;
	struct ox_hs_server *srv;
	struct ox_initiator in;
	struct ox_responder r;
	struct ox_allowlist al;
	struct ox_src src = { .addr = { [10] = 0xff, [11] = 0xff, 198, 18, 0, 11 }, .port = 5000 };
	uint8_t a[OX_INIT_LEN], b[OX_INIT_LEN], cookie[OX_COOKIE_LEN], ts[12];
	int ret;

	alice_listed(&server, &alice, &al);
	srv = ox_hs_create(server.priv, NULL);
	ox_hs_set_allowlist(srv, &al);
	EXPECT(ox_initiator_init(&in, alice.priv, server.pub) == 0, "initiator");
	ox_tai64n_now(ts);
	EXPECT(ox_initiator_begin(&in, 1, ts, NS(1000), a) == 0, "first INIT");
	EXPECT(ox_initiator_put_mac2(&in, a, NS(1000)) == -ENOENT, "no cookie: no mac2 put");
	ret = ox_hs_consume_init(srv, a, sizeof(a), &src, NS(1000), true, &r, cookie);
	EXPECT(ret == -OX_DROP_COOKIE_SENT, "under load: a cookie (%s)", ox_drop_name(ret));
	/* The next INIT, made ahead (before the cookie is taken). */
	{
		struct ox_initiator next = in;

		ts[11]++;
		EXPECT(ox_initiator_begin(&next, 2, ts, NS(1000), b) == 0,
		       "second INIT, made ahead");
		EXPECT(ox_initiator_consume_cookie(&in, cookie, sizeof(cookie), NS(1001)) == 0,
		       "cookie taken");
		next.cookie_ns = in.cookie_ns;
		memcpy(next.cookie, in.cookie, sizeof(in.cookie));
		ret = ox_hs_consume_init(srv, b, sizeof(b), &src, NS(1002), true, &r, cookie);
		EXPECT(ret == -OX_DROP_COOKIE_SENT, "without mac2 it draws a cookie again");
		EXPECT(ox_initiator_put_mac2(&next, b, NS(1002)) == 0, "mac2 put on it");
		ret = ox_hs_consume_init(srv, b, sizeof(b), &src, NS(1002), true, &r, cookie);
		EXPECT(ret == 0, "with mac2 it is judged under load: %s", ox_drop_name(ret));
		EXPECT(ox_initiator_put_mac2(&next, b, NS(1001) + OX_COOKIE_SECRET_NS) == -ENOENT,
		       "a cookie too old puts nothing");
		sodium_memzero(&r, sizeof(r));
		ox_initiator_wipe(&next);
	}
	ox_initiator_wipe(&in);
	ox_hs_free(srv);
	ox_allowlist_free(&al);
}

static void
test_rekey(void)
{
	struct party server, alice;
	struct ox_hs_server *srv;
	struct ox_initiator in;
	struct ox_keypair ckp, skp;
	struct ox_peer cp, sp;
	struct ox_allowlist al;
	struct ox_aead *x = ox_aead_create(OX_AEAD_OPENSSL);
	uint8_t cookie[OX_COOKIE_LEN], old_pkt[128], pkt[128];
	char text[256], err[128];
	int len, old_len, ret;

	party_make(&server);
	party_make(&alice);
	snprintf(text, sizeof(text), "%s\n", alice.b64);
	ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err));
	srv = ox_hs_create(server.priv, NULL);
	ox_hs_set_allowlist(srv, &al);
	ox_initiator_init(&in, alice.priv, server.pub);
	ox_peer_init(&cp);
	ox_peer_init(&sp);

	EXPECT(handshake(srv, &in, &src_a, NS(10), false, 100, 200, &ckp, &skp, cookie) == 0,
	       "hs1");
	ox_peer_install(&cp, &ckp, true);
	ox_peer_install(&sp, &skp, false);
	EXPECT(ox_peer_current(&sp) == NULL, "responder waits for confirmation");
	len = seal(x, ox_peer_current(&cp), pkt, "confirm the first keys", NS(11));
	EXPECT(ox_peer_open(x, &sp, pkt, (size_t)len, NS(11)) == 22, "confirmed");
	EXPECT(ox_peer_current(&sp) != NULL && ox_peer_current(&sp)->local_index == 200, "current");

	/* A packet sealed before the rekey, delivered after it. */
	old_len = seal(x, ox_peer_current(&cp), old_pkt, "in flight during rekey", NS(12));
	EXPECT(handshake(srv, &in, &src_a, NS(130), false, 101, 201, &ckp, &skp, cookie) == 0,
	       "hs2");
	ox_peer_install(&cp, &ckp, true);
	ox_peer_install(&sp, &skp, false);
	EXPECT(ox_peer_current(&cp)->local_index == 101, "client switched");
	EXPECT(ox_peer_current(&sp)->local_index == 200, "server still on the old keys");
	/* The server's reply under the old keys still opens at the client. */
	len = seal(x, ox_peer_current(&sp), pkt, "server on old keys", NS(130));
	EXPECT(ox_peer_open(x, &cp, pkt, (size_t)len, NS(130)) == 18, "old keys open at client");
	ret = ox_peer_open(x, &sp, old_pkt, (size_t)old_len, NS(130));
	EXPECT(ret == 22, "in-flight old packet opens: %s", ox_drop_name(ret));
	len = seal(x, ox_peer_current(&cp), pkt, "first under new keys", NS(131));
	EXPECT(ox_peer_open(x, &sp, pkt, (size_t)len, NS(131)) == 20, "new keys");
	EXPECT(ox_peer_current(&sp)->local_index == 201, "server switched");
	/* Old keys expire REJECT_AFTER after their handshake. */
	old_len = seal(x, ox_peer_find(&cp, 100), old_pkt, "late", NS(140));
	EXPECT(old_len > 0 && ox_peer_open(x, &sp, old_pkt, (size_t)old_len,
					   NS(10) + OX_REJECT_AFTER_NS) == -OX_DROP_KEY_EXPIRED,
	       "previous keys expire");
	/* Unknown index. */
	pkt[4] ^= 0x55;
	EXPECT(ox_peer_open(x, &sp, pkt, (size_t)len, NS(131)) == -OX_DROP_UNKNOWN_INDEX,
	       "unknown index");
	/* A third handshake wipes the first keypair. */
	EXPECT(handshake(srv, &in, &src_a, NS(250), false, 102, 202, &ckp, &skp, cookie) == 0,
	       "hs3");
	ox_peer_install(&cp, &ckp, true);
	EXPECT(ox_peer_find(&cp, 100) == NULL && ox_peer_find(&cp, 101) != NULL &&
		       ox_peer_find(&cp, 102) != NULL,
	       "two keypairs kept");
	/* An index used again replaces the keypair that had it. */
	{
		struct ox_keypair again = ckp;

		/* cur 102, prev 101: a pending keypair with index 101. */
		again.local_index = 101;
		ox_peer_install(&cp, &again, false);
		EXPECT(ox_peer_find(&cp, 101) == &cp.kp[cp.next] &&
			       ox_peer_current(&cp)->local_index == 102 && cp.prev < 0,
		       "a reused index names one keypair only");
	}
	ox_peer_wipe(&cp);
	ox_peer_wipe(&sp);
	EXPECT(ox_peer_current(&cp) == NULL && ox_peer_find(&sp, 201) == NULL, "wiped");
	ox_hs_free(srv);
	ox_allowlist_free(&al);
	ox_aead_free(x);
}

/* ------------------------------------------------------------- BATCH */

/* The first bytes that start an inner IP packet (doc/oxtunnel.md), at the
 * edges of both ranges, and how many there are. */
static void
test_inner_is_ip(void)
{
	static const struct {
		uint8_t b;
		bool ip;
	} edges[] = {
		{ 0x00, false },
		{ OX_INNER_KEEPALIVE, false },
		{ OX_INNER_BATCH, false },
		{ 0x40, false },
		{ 0x44, false },
		{ 0x45, true },
		{ 0x4f, true },
		{ 0x50, false },
		{ 0x5f, false },
		{ 0x60, true },
		{ 0x6f, true },
		{ 0x70, false },
		{ 0xff, false },
	};
	unsigned int i, n = 0;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		EXPECT(ox_inner_is_ip(edges[i].b) == edges[i].ip, "first byte %#04x: IP %d",
		       edges[i].b, edges[i].ip);
	for (i = 0; i < 256; i++)
		n += ox_inner_is_ip((uint8_t)i);
	EXPECT(n == 27, "27 first bytes start an IP packet (%u)", n);
}

static void
test_batch(void)
{
	uint8_t buf[OX_MAX_PLAINTEXT], pkt[1500], copy[OX_MAX_PLAINTEXT];
	struct ox_batch b;
	const uint8_t *p;
	size_t off, plen, len;
	int ret, n;

	memset(pkt, 0x45, sizeof(pkt));
	EXPECT(ox_batch_init(&b, buf, 2) == -ENOSPC, "no room for preamble");
	EXPECT(ox_batch_init(&b, buf, sizeof(buf)) == 0, "init");
	EXPECT(ox_batch_add(&b, pkt, OX_INNER_MIN - 1) == -EINVAL, "too small packet");
	for (n = 0; ox_batch_add(&b, pkt, 100) == 0; n++)
		;
	EXPECT(n == OX_BATCH_MAX, "at most %d packets (%d)", OX_BATCH_MAX, n);
	len = ox_batch_finish(&b);
	EXPECT(len == 3 + (size_t)n * 102, "length");
	off = 0;
	for (n = 0; (ret = ox_batch_next(buf, len, &off, &p, &plen)) == 1; n++)
		EXPECT(plen == 100 && p[0] == 0x45, "packet %d", n);
	EXPECT(ret == 0 && n == OX_BATCH_MAX, "decoded %d", n);
	/* Room runs out before the count does. */
	ox_batch_init(&b, buf, 3 + 2 * 1502);
	EXPECT(ox_batch_add(&b, pkt, 1500) == 0 && ox_batch_add(&b, pkt, 1500) == 0 &&
		       ox_batch_add(&b, pkt, 20) == -ENOSPC,
	       "full by size");
	len = ox_batch_finish(&b);

	/* Malformed batches yield nothing. buf is now 04 | 02 00 | dc 05
	 * <1500 bytes> | dc 05 <1500 bytes>. */
	const struct {
		const char *name;
		size_t trunc;
		int at[2]; /* bytes to set, -1: none */
		uint8_t val[2];
	} bad[] = {
		{ "truncated by one", 1, { -1, -1 }, { 0, 0 } },
		{ "kind", 0, { 0, -1 }, { 0x05, 0 } },
		{ "count zero", 0, { 1, 2 }, { 0, 0 } },
		{ "count one more", 0, { 1, -1 }, { 3, 0 } },
		{ "length past end", 0, { 3, 4 }, { 0xff, 0xff } },
		{ "length too small", 0, { 3, 4 }, { OX_INNER_MIN - 1, 0 } },
	};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(copy, buf, len);
		for (int j = 0; j < 2; j++)
			if (bad[i].at[j] >= 0)
				copy[bad[i].at[j]] = bad[i].val[j];
		off = 0;
		ret = ox_batch_next(copy, len - bad[i].trunc, &off, &p, &plen);
		EXPECT(ret == -OX_DROP_BAD_BATCH, "bad batch %s: %d", bad[i].name, ret);
	}
	/* Trailing bytes after the last packet. */
	memcpy(copy, buf, len);
	copy[len] = 0;
	off = 0;
	EXPECT(ox_batch_next(copy, len + 1, &off, &p, &plen) == -OX_DROP_BAD_BATCH, "trailing");
	off = 0;
	EXPECT(ox_batch_next(copy, 2, &off, &p, &plen) == -OX_DROP_BAD_BATCH, "2 bytes");
	/* A count above the maximum. */
	copy[1] = OX_BATCH_MAX + 1;
	copy[2] = 0;
	off = 0;
	EXPECT(ox_batch_next(copy, len, &off, &p, &plen) == -OX_DROP_BAD_BATCH, "count > max");
}

/* -------------------------------------------------------------- keys */

static void
test_keys(void)
{
	uint8_t priv[32], pub[32], back[32], pub2[32];
	char b64[OX_KEY_B64_LEN + 1], path[] = "/tmp/oxtunnel-key-XXXXXX", err[256];
	int fd;

	ox_key_generate(priv, pub);
	ox_key_to_base64(b64, pub);
	EXPECT(strlen(b64) == 44 && b64[43] == '=', "base64 form");
	EXPECT(ox_key_from_base64(back, b64, 44) == 0 && memcmp(back, pub, 32) == 0, "round trip");
	EXPECT(ox_key_from_base64(back, b64, 43) == -EINVAL, "43 characters");
	b64[43] = 'A';
	EXPECT(ox_key_from_base64(back, b64, 44) == -EINVAL, "no padding");
	ox_key_to_base64(b64, pub);
	b64[5] = '*';
	EXPECT(ox_key_from_base64(back, b64, 44) == -EINVAL, "bad alphabet");
	/* A non-canonical last character (low bits set) is refused. */
	ox_key_to_base64(b64, pub);
	b64[42] = b64[42] == 'A' ? 'B' : (b64[42] == 'E' ? 'F' : b64[42]);
	if (b64[42] == 'B' || b64[42] == 'F')
		EXPECT(ox_key_from_base64(back, b64, 44) == -EINVAL, "non-canonical");
	/* Private key files: mode 600 only. */
	fd = mkstemp(path);
	EXPECT(fd >= 0, "mkstemp");
	ox_key_to_base64(b64, priv);
	EXPECT(write(fd, b64, 44) == 44 && write(fd, "\n", 1) == 1, "write");
	close(fd);
	chmod(path, 0600);
	EXPECT(ox_key_load(path, back, err, sizeof(err)) == 0 && memcmp(back, priv, 32) == 0,
	       "key file: %s", err);
	EXPECT(ox_key_public(pub2, back) == 0 && memcmp(pub2, pub, 32) == 0, "public of loaded");
	chmod(path, 0644);
	EXPECT(ox_key_load(path, back, err, sizeof(err)) == -EPERM && strstr(err, "chmod 600"),
	       "world-readable key file refused: %s", err);
	chmod(path, 0600);
	truncate(path, 30);
	EXPECT(ox_key_load(path, back, err, sizeof(err)) == -EINVAL && strstr(err, "30 bytes"),
	       "truncated key file: %s", err);
	unlink(path);
	EXPECT(ox_key_load(path, back, err, sizeof(err)) == -ENOENT && strstr(err, "cannot open"),
	       "missing key file: %s", err);
}

/* --------------------------------------------------------- allow-list */

struct allow_case {
	const char *name;
	const char *text; /* K0, K1: replaced by keys */
	int want;
	uint32_t n;
	const char *err; /* substring of the message */
};

static const struct allow_case allow_cases[] = {
	{ "empty", "", 0, 0, NULL },
	{ "comments", "# nothing\n   \n\t# x\n", 0, 0, NULL },
	{ "one key", "K0\n", 0, 1, NULL },
	{ "no final newline", "K0", 0, 1, NULL },
	{ "crlf", "K0\r\nK1\r\n", 0, 2, NULL },
	{ "name and addresses", "K0 alice 100.64.0.5 fd6f:7869:647a::5 # laptop\nK1 bob\n", 0, 2,
	  NULL },
	{ "address without name", "K0 100.64.0.5\n", 0, 1, NULL },
	{ "bad key", "AAAA alice\n", -EINVAL, 0, "line 1: 'AAAA' is not a base64" },
	{ "bad name", "# c\nK0 9lives\n", -EINVAL, 0, "line 2: '9lives'" },
	{ "name after address", "K0 100.64.0.5 alice\n", -EINVAL, 0, "line 1: 'alice'" },
	{ "two v4", "K0 a 100.64.0.5 100.64.0.6\n", -EINVAL, 0, "a second IPv4" },
	{ "name late", "K0 a 100.64.0.5 fd00::1 psk=K1 x\n", -EINVAL, 0, "'x' is neither" },
	{ "routes", "K0 a 198.18.90.0/24 fd00:90::/64 10.9.0.0/16\nK1 198.18.91.0/24\n", 0, 2,
	  NULL },
	{ "host prefix", "K0 100.64.0.5/32 fd00::5/128\n", 0, 1, NULL },
	{ "two host prefixes", "K0 100.64.0.5/32 100.64.0.6/32\n", -EINVAL, 0, "a second IPv4" },
	{ "host bits", "K0 198.18.90.1/24\n", -EINVAL, 0, "host bits set after /24" },
	{ "host bits v6", "K0 fd00:90::1/64\n", -EINVAL, 0, "host bits set after /64" },
	{ "default route", "K0 0.0.0.0/0\n", -EINVAL, 0, "a default route" },
	{ "long prefix", "K0 198.18.90.0/33\n", -EINVAL, 0, "the length is 0 to 32" },
	{ "no length", "K0 198.18.90.0/\n", -EINVAL, 0, "is not a prefix (ADDR/LEN)" },
	{ "bad length", "K0 198.18.90.0/2x\n", -EINVAL, 0, "the length is 0 to 32" },
	{ "overlap", "K0 198.18.90.0/24\n# branch\nK1 b 198.18.90.128/25\n", -EINVAL, 0,
	  "lines 1 and 3: prefixes 198.18.90.0/24 and 198.18.90.128/25 overlap" },
	{ "overlap later", "K0 198.18.0.0/16\nK1 198.17.0.0/24 198.18.200.0/24\n", -EINVAL, 0,
	  "lines 1 and 2: prefixes 198.18.0.0/16 and 198.18.200.0/24 overlap" },
	{ "overlap one line", "K0 198.18.90.0/24 198.18.0.0/16\n", -EINVAL, 0,
	  "line 1: prefixes 198.18.0.0/16 and 198.18.90.0/24 overlap" },
	{ "overlap v6", "K0 fd00:90::/64\nK1 fd00:90::/48\n", -EINVAL, 0,
	  "lines 1 and 2: prefixes fd00:90::/64 and fd00:90::/48 overlap" },
	{ "v4 and v6 apart", "K0 0.0.0.0/8\nK1 ::/8\n", 0, 2, NULL },
	{ "preshared key", "K0 alice psk=K1 100.64.0.5\nK1 psk=K2\n", 0, 2, NULL },
	{ "short preshared key", "K0 psk=AAAA\n", -EINVAL, 0, "line 1: psk= takes a base64 key" },
	{ "two preshared keys", "K0 psk=K1 psk=K2\n", -EINVAL, 0, "a second preshared key" },
	{ "groups", "K0 alice group=staff group=ops 100.64.0.5\nK1 group=ops\n", 0, 2, NULL },
	{ "group twice", "K0 group=ops group=ops\n", -EINVAL, 0, "line 1: group ops twice" },
	{ "group empty", "K0 group=\n", -EINVAL, 0, "line 1: group= takes a name" },
	{ "group bad", "K0 group=9x\n", -EINVAL, 0, "line 1: group= takes a name" },
	{ "group long", "K0 group=abcdefghijklmnopqrstuvwxyz0123456\n", -EINVAL, 0,
	  "line 1: group= takes a name" },
	{ "rate and expiry", "K0 a rate=20mbit expires=2027-01-31T18:00Z\nK1 rate=1.5Gbit\n", 0, 2,
	  NULL },
	{ "rate bare bits", "K0 rate=8000\n", 0, 1, NULL },
	{ "rate no unit word", "K0 rate=20mb\n", -EINVAL, 0, "line 1: rate= takes a rate" },
	{ "rate empty", "K0 rate=\n", -EINVAL, 0, "line 1: rate= takes a rate" },
	{ "rate no fraction", "K0 rate=1.mbit\n", -EINVAL, 0, "line 1: rate= takes a rate" },
	{ "rate low", "K0 rate=7999\n", -ERANGE, 0,
	  "line 1: 'rate=7999' is outside 8kbit..400gbit" },
	{ "rate high", "K0 rate=401gbit\n", -ERANGE, 0, "is outside 8kbit..400gbit" },
	{ "rate huge", "K0 rate=999999999999gbit\n", -ERANGE, 0, "is outside" },
	{ "rate wrapping", "K0 rate=18446744074gbit\n", -ERANGE, 0, "is outside" },
	{ "rate twice", "K0 rate=1mbit rate=2mbit\n", -EINVAL, 0, "line 1: rate= twice" },
	{ "expires twice", "K0 expires=2027-01-31T18:00Z expires=2028-01-31T18:00Z\n", -EINVAL, 0,
	  "line 1: expires= twice" },
	{ "expires no Z", "K0 expires=2027-01-31T18:00\n", -EINVAL, 0, "line 1: expires= takes" },
	{ "expires seconds", "K0 expires=2027-01-31T18:00:00Z\n", -EINVAL, 0, "expires= takes" },
	{ "expires Feb 30", "K0 expires=2027-02-30T18:00Z\n", -EINVAL, 0, "expires= takes" },
	{ "expires Feb 29", "K0 expires=2027-02-29T18:00Z\n", -EINVAL, 0, "expires= takes" },
	{ "expires leap", "K0 expires=2028-02-29T18:00Z\n", 0, 1, NULL },
	{ "expires hour 24", "K0 expires=2027-01-31T24:00Z\n", -EINVAL, 0, "expires= takes" },
	{ "expires sign", "K0 expires=2027-+1-31T18:00Z\n", -EINVAL, 0, "expires= takes" },
	{ "duplicate key", "K0\n# x\nK0 again\n", -EINVAL, 0, "lines 1 and 3: the same key" },
	{ "duplicate v4", "K0 a 100.64.0.5\nK1 b 100.64.0.5\n", -EINVAL, 0, "the same IPv4" },
	{ "duplicate v6", "K0 a fd00::1\nK1 b fd00::1\n", -EINVAL, 0, "the same IPv6" },
	{ "zero v4", "K0 0.0.0.0\n", -EINVAL, 0, "0.0.0.0" },
	{ "nul byte", "K0\n\0\n", -EINVAL, 0, "line 2: NUL" },
	{ "over max", "K0\nK1\nK2\n", -E2BIG, 0, "more than 2 keys" },
};

/* Preshared keys at rest: a file holding one that group or others can
 * read is refused, naming the file and its mode; without one, or at 600,
 * it loads. */
static void
test_allowlist_mode(char keys[3][OX_KEY_B64_LEN + 1])
{
	char path[] = "/tmp/ox-allow-XXXXXX", text[512], err[256];
	struct ox_allowlist al;
	int fd;

	fd = mkstemp(path);
	EXPECT(fd >= 0, "mkstemp");
	snprintf(text, sizeof(text), "%s alice\n%s carol psk=%s\n", keys[0], keys[1], keys[2]);
	EXPECT(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
	close(fd);
	chmod(path, 0644);
	EXPECT(ox_allowlist_load(&al, path, NULL, 10, err, sizeof(err)) == -EACCES &&
		       strstr(err, path) && strstr(err, "mode 644") && strstr(err, "chmod 600") &&
		       al.n == 0 && al.e == NULL,
	       "a 0644 allow-list with psk= refused: %s", err);
	chmod(path, 0640);
	EXPECT(ox_allowlist_load(&al, path, NULL, 10, err, sizeof(err)) == -EACCES,
	       "and at 0640: %s", err);
	chmod(path, 0600);
	EXPECT(ox_allowlist_load(&al, path, NULL, 10, err, sizeof(err)) == 0 && al.n == 2,
	       "at 0600 it loads: %s", err);
	ox_allowlist_free(&al);
	snprintf(text, sizeof(text), "%s alice\n", keys[0]);
	fd = open(path, O_WRONLY | O_TRUNC);
	EXPECT(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "rewrite");
	close(fd);
	chmod(path, 0644);
	EXPECT(ox_allowlist_load(&al, path, NULL, 10, err, sizeof(err)) == 0 && al.n == 1,
	       "without preshared keys 0644 is fine: %s", err);
	ox_allowlist_free(&al);
	unlink(path);
}

/* Groups: each line's bitmap, the names in order of first use, and the
 * 65th group refused by line. */
static void
test_allowlist_groups(char keys[3][OX_KEY_B64_LEN + 1])
{
	static char text[65 * 120];
	char err[256];
	struct ox_allowlist al;
	const struct ox_allow_entry *a = NULL, *b = NULL, *c = NULL;
	uint8_t k[3][OX_KEY_LEN];
	unsigned int i;
	size_t o;

	for (i = 0; i < 3; i++)
		ox_key_from_base64(k[i], keys[i], OX_KEY_B64_LEN);
	snprintf(text, sizeof(text), "%s group=staff group=ops\n%s group=ops\n%s bob\n", keys[0],
		 keys[1], keys[2]);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0, "%s",
	       err);
	a = ox_allowlist_find(&al, k[0]);
	b = ox_allowlist_find(&al, k[1]);
	c = ox_allowlist_find(&al, k[2]);
	EXPECT(al.n_groups == 2 && ox_allowlist_group(&al, "staff") == 0 &&
		       ox_allowlist_group(&al, "ops") == 1 && ox_allowlist_group(&al, "x") == -1,
	       "groups: %u named", al.n_groups);
	EXPECT(a && b && c && a->groups == 3 && b->groups == 2 && c->groups == 0,
	       "groups: bitmaps %llx %llx %llx", a ? (unsigned long long)a->groups : 0,
	       b ? (unsigned long long)b->groups : 0, c ? (unsigned long long)c->groups : 0);
	ox_allowlist_free(&al);
	/* 64 groups on one line are fine, a 65th on the next is not. */
	o = (size_t)snprintf(text, sizeof(text), "%s", keys[0]);
	for (i = 0; i < 64; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, " group=g%u", i);
	o += (size_t)snprintf(text + o, sizeof(text) - o, "\n%s group=g0\n", keys[1]);
	EXPECT(ox_allowlist_parse(&al, text, o, NULL, 10, err, sizeof(err)) == 0 &&
		       al.n_groups == 64,
	       "groups: 64 on a line: %s", err);
	ox_allowlist_free(&al);
	snprintf(text + o, sizeof(text) - o, "%s group=g64\n", keys[2]);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == -E2BIG &&
		       strstr(err, "line 3: group g64 is one more than 64"),
	       "groups: a 65th refused: %s", err);
}

/* rate= and expires= as numbers; the next expiry after a time. */
static void
test_allowlist_policy(char keys[3][OX_KEY_B64_LEN + 1])
{
	char text[512], err[256];
	struct ox_allowlist al;
	const struct ox_allow_entry *a, *b, *c;
	uint8_t k[3][OX_KEY_LEN];
	unsigned int i;

	for (i = 0; i < 3; i++)
		ox_key_from_base64(k[i], keys[i], OX_KEY_B64_LEN);
	snprintf(text, sizeof(text),
		 "%s rate=20mbit expires=2027-01-31T18:00Z\n%s rate=1.5Gbit "
		 "expires=1970-01-01T00:01Z\n%s rate=12.345kbit\n",
		 keys[0], keys[1], keys[2]);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0, "%s",
	       err);
	a = ox_allowlist_find(&al, k[0]);
	b = ox_allowlist_find(&al, k[1]);
	c = ox_allowlist_find(&al, k[2]);
	EXPECT(a && b && c && a->rate == 20000000 && b->rate == 1500000000 && c->rate == 12345,
	       "rates %llu %llu %llu", a ? (unsigned long long)a->rate : 0,
	       b ? (unsigned long long)b->rate : 0, c ? (unsigned long long)c->rate : 0);
	/* date -u -d 2027-01-31T18:00Z +%s */
	EXPECT(a && b && c && a->expires == 1801418400 && b->expires == 60 && c->expires == 0,
	       "expiries %lld %lld %lld", a ? (long long)a->expires : 0,
	       b ? (long long)b->expires : 0, c ? (long long)c->expires : 0);
	EXPECT(b && ox_allow_entry_expired(b) && a && !ox_allow_entry_expired(a) && c &&
		       !ox_allow_entry_expired(c),
	       "expired: only the line of 1970");
	EXPECT(ox_allowlist_next_expiry(&al, 0) == 60 &&
		       ox_allowlist_next_expiry(&al, 60) == 1801418400 &&
		       ox_allowlist_next_expiry(&al, 1801418400) == 0,
	       "next expiry after 0, 60 and the last");
	ox_allowlist_free(&al);
}

/* CONFIG (doc/oxtunnel.md 2.6): a list parsed, written and read back; each
 * malformed plaintext refused, items of unknown kinds skipped. */
static void
test_config(void)
{
	struct ox_config c, back;
	uint8_t pt[OX_CONFIG_MAX + 32];
	char err[128];
	size_t n;
	unsigned int i;
	static const struct {
		const char *what;
		uint8_t b[24];
		size_t len;
		int ok;
	} bad[] = {
		{ "empty CONFIG", { 0x06 }, 1, 1 },
		{ "unknown kind skipped", { 0x06, 9, 2, 0xaa, 0xbb, 1, 4, 9, 9, 9, 9 }, 11, 1 },
		{ "not a CONFIG", { 0x05 }, 1, 0 },
		{ "half an item", { 0x06, 1 }, 2, 0 },
		{ "item past the end", { 0x06, 1, 4, 9, 9, 9 }, 6, 0 },
		{ "IPv4 of 5 bytes", { 0x06, 1, 5, 9, 9, 9, 9, 9 }, 8, 0 },
		{ "IPv6 of 4 bytes", { 0x06, 2, 4, 9, 9, 9, 9 }, 7, 0 },
		{ "zero address", { 0x06, 1, 4, 0, 0, 0, 0 }, 7, 0 },
		{ "multicast", { 0x06, 1, 4, 224, 0, 0, 1 }, 7, 0 },
	};

	EXPECT(ox_config_dns_parse(" 9.9.9.9, 2620:fe::fe ,1.1.1.1", &c, err, sizeof(err)) == 0 &&
		       c.n_dns == 3 && !c.dns[0].v6 && c.dns[1].v6 && c.dns[2].addr[0] == 1,
	       "config: a list of three: %s", err);
	n = ox_config_put(&c, pt);
	EXPECT(n == 1 + 6 + 18 + 6 && pt[0] == OX_INNER_CONFIG, "config: written in %zu bytes", n);
	EXPECT(ox_config_get(pt, n, &back) == 0 && back.n_dns == 3 &&
		       memcmp(back.dns, c.dns, sizeof(c.dns)) == 0,
	       "config: read back the same");
	for (i = 1; i < n; i++)
		EXPECT(ox_config_get(pt, i, &back) == -OX_DROP_BAD_INNER || i == 1 || i == 7 ||
			       i == 25,
		       "config: cut at %u refused", i);
	EXPECT(ox_config_dns_parse("", &c, err, sizeof(err)) == 0 && c.n_dns == 0,
	       "config: an empty list");
	EXPECT(ox_config_dns_parse("9.9.9.9,nine", &c, err, sizeof(err)) == -EINVAL &&
		       strstr(err, "'nine' is not a DNS server"),
	       "config: a name refused: %s", err);
	EXPECT(ox_config_dns_parse("0.0.0.0", &c, err, sizeof(err)) == -EINVAL, "config: 0.0.0.0");
	EXPECT(ox_config_dns_parse("ff02::fb", &c, err, sizeof(err)) == -EINVAL,
	       "config: multicast IPv6");
	EXPECT(ox_config_dns_parse("1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,"
				   "1.1.1.8,1.1.1.9",
				   &c, err, sizeof(err)) == -E2BIG,
	       "config: a ninth server refused: %s", err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = ox_config_get(bad[i].b, bad[i].len, &back);

		EXPECT(bad[i].ok ? ret == 0 : ret == -OX_DROP_BAD_INNER, "config: %s (%d)",
		       bad[i].what, ret);
	}
	EXPECT(ox_config_get(bad[1].b, bad[1].len, &back) == 0 && back.n_dns == 1 &&
		       back.dns[0].addr[0] == 9,
	       "config: the known item after an unknown one read");
	/* Nine servers in a CONFIG: refused. */
	pt[0] = OX_INNER_CONFIG;
	for (i = 0; i < 9; i++) {
		pt[1 + i * 6] = OX_CONFIG_DNS4;
		pt[2 + i * 6] = 4;
		memset(pt + 3 + i * 6, 10 + (int)i, 4);
	}
	EXPECT(ox_config_get(pt, 1 + 9 * 6, &back) == -OX_DROP_BAD_INNER,
	       "config: nine servers refused");
}

static void
test_allowlist(void)
{
	char keys[3][OX_KEY_B64_LEN + 1], text[1024], err[256];
	struct ox_allowlist al;
	uint8_t priv[32], pub[3][32];
	unsigned int i, k;

	for (k = 0; k < 3; k++) {
		ox_key_generate(priv, pub[k]);
		ox_key_to_base64(keys[k], pub[k]);
	}
	for (i = 0; i < sizeof(allow_cases) / sizeof(allow_cases[0]); i++) {
		const struct allow_case *c = &allow_cases[i];
		size_t o = 0, tl = strlen(c->text);
		int ret;

		if (strcmp(c->name, "nul byte") == 0)
			tl = 5;
		for (size_t j = 0; j < tl; j++) {
			if (c->text[j] == 'K' && j + 1 < tl && c->text[j + 1] >= '0' &&
			    c->text[j + 1] <= '2') {
				memcpy(text + o, keys[c->text[j + 1] - '0'], 44);
				o += 44;
				j++;
			} else {
				text[o++] = c->text[j];
			}
		}
		err[0] = '\0';
		ret = ox_allowlist_parse(&al, text, o, NULL, 2, err, sizeof(err));
		EXPECT(ret == c->want, "allow-list %s: %d (%s)", c->name, ret, err);
		if (ret == 0) {
			EXPECT(al.n == c->n, "allow-list %s: %u entries", c->name, al.n);
			ox_allowlist_free(&al);
		} else if (c->err) {
			EXPECT(strstr(err, c->err) != NULL, "allow-list %s: message '%s'", c->name,
			       err);
		}
	}
	/* Lookup, fields. */
	snprintf(text, sizeof(text), "%s alice 100.64.0.5 fd6f:7869:647a::5\n%s\n", keys[0],
		 keys[1]);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0,
	       "parse");
	{
		struct ox_allow_entry *e = ox_allowlist_find(&al, pub[0]);

		EXPECT(e && strcmp(e->name, "alice") == 0 && e->v4 == 0x64400005 &&
			       e->v6[15] == 5 && e->v6[0] == 0xfd && e->line == 1,
		       "entry fields");
		e = ox_allowlist_find(&al, pub[1]);
		EXPECT(e && e->name[0] == '\0' && e->v4 == 0 && e->line == 2, "bare entry");
		EXPECT(ox_allowlist_find(&al, pub[2]) == NULL, "absent key");
		EXPECT(al.n_routes == 0, "no routes");
	}
	ox_allowlist_free(&al);
	/* Routes name their peer by its place in the sorted list. */
	snprintf(text, sizeof(text), "%s site 198.18.90.0/24 fd00:90::/64\n%s 10.9.0.0/16\n",
		 keys[0], keys[1]);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0,
	       "parse routes: %s", err);
	{
		struct ox_allow_entry *e = ox_allowlist_find(&al, pub[0]);
		const struct ox_allow_route *r = e ? &al.routes[e->route_first] : NULL;

		EXPECT(al.n_routes == 3 && e && e->route_n == 2 && e->v4 == 0, "site's routes");
		EXPECT(r && !r[0].v6 && r[0].depth == 24 && r[0].addr[0] == 198 &&
			       r[0].addr[2] == 90 && r[0].entry == (uint32_t)(e - al.e) &&
			       r[1].v6 && r[1].depth == 64 && r[1].addr[3] == 0x90,
		       "route fields");
		e = ox_allowlist_find(&al, pub[1]);
		EXPECT(e && e->route_n == 1 &&
			       al.routes[e->route_first].entry == (uint32_t)(e - al.e),
		       "second peer's route");
	}
	ox_allowlist_free(&al);
	EXPECT(ox_allowlist_load(&al, "/nonexistent/allow", NULL, 10, err, sizeof(err)) ==
			       -ENOENT &&
		       strstr(err, "cannot open allow-list /nonexistent/allow"),
	       "missing file: %s", err);
	EXPECT(ox_allowlist_load(&al, "/tmp", NULL, 10, err, sizeof(err)) == -EINVAL &&
		       strstr(err, "not a regular file"),
	       "directory: %s", err);
	test_allowlist_mode(keys);
	test_allowlist_groups(keys);
	test_allowlist_policy(keys);
	test_config();
}

/* 2,000 keys in random order through the allow-list's own base64 decoder
 * and sort: every one found at its line, in key order; a non-canonical last
 * character, a character outside the alphabet or a missing '=' refused. */
static void
test_allowlist_many(void)
{
	enum { N = 2000 };
	static uint8_t keys[N][OX_KEY_LEN];
	static char text[N * (OX_KEY_B64_LEN + 1) + 1];
	char b64[OX_KEY_B64_LEN + 1], err[256];
	struct ox_allowlist al;
	const struct ox_allow_entry *e;
	unsigned int i, bad = 0;
	size_t o = 0;

	for (i = 0; i < N; i++) {
		randombytes_buf(keys[i], OX_KEY_LEN);
		ox_key_to_base64(b64, keys[i]);
		memcpy(text + o, b64, OX_KEY_B64_LEN);
		o += OX_KEY_B64_LEN;
		text[o++] = '\n';
	}
	text[o] = '\0';
	EXPECT(ox_allowlist_parse(&al, text, o, NULL, N, err, sizeof(err)) == 0, "%s", err);
	EXPECT(al.n == N, "many: %u keys", al.n);
	for (i = 1; i < al.n; i++)
		bad += memcmp(al.e[i - 1].key, al.e[i].key, OX_KEY_LEN) >= 0;
	EXPECT(bad == 0, "many: %u entries out of key order", bad);
	for (i = 0, bad = 0; i < N; i++) {
		e = ox_allowlist_find(&al, keys[i]);
		bad += e == NULL || e->line != i + 1;
	}
	EXPECT(bad == 0, "many: %u keys not found at their line", bad);
	ox_allowlist_free(&al);

	/* Line 7's last character before '=' with a low bit set: another
	 * encoding of the same key, refused as libsodium's decoder does. */
	o = 6 * (OX_KEY_B64_LEN + 1) + OX_KEY_B64_LEN - 2;
	for (const char *c = "BCD"; *c; c++) {
		char was = text[o];
		const char *p = strchr(
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", was);

		/* Its value with the low bits replaced: a non-canonical form. */
		text[o] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
			[((p - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") &
			  ~3) |
			 (*c - 'A')];
		EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, N, err, sizeof(err)) ==
				       -EINVAL &&
			       strstr(err, "line 7:") != NULL,
		       "many: non-canonical key refused: %s", err);
		text[o] = was;
	}
	text[o - 5] = '*';
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, N, err, sizeof(err)) == -EINVAL &&
		       strstr(err, "line 7:") != NULL,
	       "many: a character outside the alphabet refused: %s", err);
	text[o - 5] = 'A';
	text[o + 1] = 'A';
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, N, err, sizeof(err)) == -EINVAL &&
		       strstr(err, "line 7:") != NULL,
	       "many: no '=' refused: %s", err);
}

/* --------------------------------------------------------------- random */

static void *
random_thread(void *arg)
{
	ox_random(arg, 32);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ox_random(): every size up to a refill and past it, no repeats, about
 * half the bits set, another thread's and a forked child's streams are
 * not this one's. */
static void
test_random(void)
{
	enum { N = 32768 };
	static uint64_t heads[N];
	uint8_t a[32], b[32], big[1000] = { 0 }, buf[256];
	uint64_t ones = 0, bits = 0;
	pthread_t t;
	unsigned int i, k;
	int fds[2];
	pid_t pid;
	size_t len;

	/* Odd sizes, so that requests straddle every refill boundary. */
	for (i = 0; i < N; i++) {
		len = 8 + i % 249;
		ox_random(buf, len);
		memcpy(&heads[i], buf, 8);
		for (k = 0; k < len; k++)
			ones += (uint64_t)__builtin_popcount(buf[k]);
		bits += 8 * len;
	}
	/* 34 M bits: 0.5 +- 0.002 is over 20 standard deviations. */
	EXPECT(ones > bits / 2 - bits / 500 && ones < bits / 2 + bits / 500,
	       "random: %llu of %llu bits set", (unsigned long long)ones, (unsigned long long)bits);
	qsort(heads, N, sizeof(heads[0]), cmp_u64);
	for (i = 1; i < N && heads[i] != heads[i - 1]; i++)
		;
	EXPECT(i == N, "random: a 64-bit value repeated in %u requests", N);
	ox_random(big, sizeof(big));
	for (i = 0, k = 0; i < sizeof(big); i++)
		k += big[i] != 0;
	EXPECT(k > sizeof(big) / 2, "random: a request over 256 bytes was filled (%u non-zero)", k);

	ox_random(a, sizeof(a));
	EXPECT(pthread_create(&t, NULL, random_thread, b) == 0, "random: thread");
	pthread_join(t, NULL);
	EXPECT(memcmp(a, b, sizeof(a)) != 0, "random: another thread's first bytes are not ours");

	/* A forked child must not hand out what its parent does next. */
	EXPECT(pipe(fds) == 0, "random: pipe");
	pid = fork();
	if (pid == 0) {
		ox_random(a, sizeof(a));
		_exit(write(fds[1], a, sizeof(a)) == (ssize_t)sizeof(a) ? 0 : 1);
	}
	EXPECT(pid > 0, "random: fork");
	ox_random(a, sizeof(a));
	EXPECT(read(fds[0], b, sizeof(b)) == (ssize_t)sizeof(b), "random: child's bytes");
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	EXPECT(memcmp(a, b, sizeof(a)) != 0, "random: a forked child's bytes are not its parent's");
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_parse();
	test_probe();
	test_replay();
	test_data(OX_AEAD_OPENSSL, "openssl");
	test_data(OX_AEAD_SODIUM, "libsodium");
	test_staged();
	test_counter_limit();
	test_sendkey_retired();
	test_tsstore();
	test_nonce_unique();
	test_handshake();
	test_static_static();
	test_shared_list();
	test_siblings();
	test_put_mac2();
	test_rekey();
	test_inner_is_ip();
	test_batch();
	test_keys();
	test_allowlist();
	test_allowlist_many();
	test_random();
	return ox_test_finish("oxtunnel-proto");
}
