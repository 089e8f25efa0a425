/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/oxtunnel's Noise with WireGuard's suite,
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s:
 *  - BLAKE2s-256 against RFC 7693 appendix B ("abc");
 *  - HMAC-BLAKE2s against HMAC built here by hand (RFC 2104) over OpenSSL's
 *    plain BLAKE2s-256;
 *  - the initial chaining key and hash of the construction, as the
 *    WireGuard whitepaper (section 5.4) and the Linux module define them;
 *  - an IKpsk2 handshake between two of its own ends: the same transport
 *    keys with and without a preshared key, and a responder with another
 *    preshared key refused;
 *  - WireGuard's messages through lib/oxtunnel's responder and initiator:
 *    header bytes and lengths, mac1 (the server's on the INIT, the
 *    client's on the RESPONSE), cookies under load, stale and unknown
 *    initiations, DATA padded to 16 bytes with an empty AD, keepalives.
 * Interoperability with an implementation we did not write is the netns
 * suite's part.
 */
#include <openssl/evp.h>
#include <sodium.h>

#include "ox_test.h"
#include "ox_tunnel_private.h"
#include "test_util.h"

#define WG_IDENTIFIER "WireGuard v1 zx2c4 Jason@zx2c4.com"
#define WG_TAI64N_LEN 12

/* RFC 2104 over BLAKE2s-256 (block 64 bytes), independent of the library. */
static void
hmac_by_hand(uint8_t out[32], const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len)
{
	uint8_t k0[64] = { 0 }, pad[64], inner[32];
	unsigned int n, i;

	if (keylen > sizeof(k0))
		EVP_Digest(key, keylen, k0, &n, EVP_blake2s256(), NULL);
	else
		memcpy(k0, key, keylen);
	for (i = 0; i < 64; i++)
		pad[i] = k0[i] ^ 0x36;
	{
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		EVP_DigestInit_ex(c, EVP_blake2s256(), NULL);
		EVP_DigestUpdate(c, pad, 64);
		EVP_DigestUpdate(c, msg, len);
		EVP_DigestFinal_ex(c, inner, &n);
		for (i = 0; i < 64; i++)
			pad[i] = k0[i] ^ 0x5c;
		EVP_DigestInit_ex(c, EVP_blake2s256(), NULL);
		EVP_DigestUpdate(c, pad, 64);
		EVP_DigestUpdate(c, inner, 32);
		EVP_DigestFinal_ex(c, out, &n);
		EVP_MD_CTX_free(c);
	}
}

static void
test_primitives(void)
{
	uint8_t want[32], got[32], key[80], msg[200];
	unsigned int i;

	/* RFC 7693, appendix B: BLAKE2s-256("abc"). */
	hex_decode(want, 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	ox_noise_wireguard.hash(got, (const uint8_t *)"ab", 2, (const uint8_t *)"c", 1);
	EXPECT(memcmp(got, want, 32) == 0, "BLAKE2s-256(\"abc\") is RFC 7693's");

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 5);
	/* Key lengths below, at and above the block; messages split in two. */
	for (i = 0; i < 4; i++) {
		size_t kl = (size_t[]){ 32, 16, 64, 80 }[i], ml = (size_t[]){ 1, 33, 64, 200 }[i];

		hmac_by_hand(want, key, kl, msg, ml);
		ox_noise_wireguard.hmac(got, key, kl, msg, ml / 2, msg + ml / 2, ml - ml / 2);
		EXPECT(memcmp(got, want, 32) == 0, "HMAC-BLAKE2s, key %zu, message %zu bytes", kl,
		       ml);
	}
}

static void
test_initial_state(void)
{
	uint8_t ci[32], hi[32];
	struct ox_noise ns;

	hex_decode(ci, 32, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	hex_decode(hi, 32, "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
	EXPECT(strlen(ox_noise_wireguard.name) == 37, "construction of 37 bytes");
	ox_noise_init(&ns, &ox_noise_wireguard, (const uint8_t *)WG_IDENTIFIER,
		      strlen(WG_IDENTIFIER));
	EXPECT(memcmp(ns.ck, ci, 32) == 0, "initial chaining key = BLAKE2s(construction)");
	EXPECT(memcmp(ns.h, hi, 32) == 0, "initial hash = BLAKE2s(Ci || identifier)");
	EXPECT(!ns.has_k && ns.n == 0, "no key yet");
}

/* One IKpsk2 handshake; 0 and both ends' transport keys when it completes. */
static int
handshake(const uint8_t *psk_i, const uint8_t *psk_r, uint8_t i_k[2][32], uint8_t r_k[2][32])
{
	uint8_t i_s[32], i_s_pub[32], i_e[32], r_s[32], r_s_pub[32], r_e[32];
	uint8_t msg1[32 + 48 + WG_TAI64N_LEN + 16], msg2[32 + 16], ts[WG_TAI64N_LEN] = { 1, 2, 3 };
	uint8_t re[32], rs[32], got[WG_TAI64N_LEN];
	struct ox_noise ini, res;
	int ret = -1;

	ox_key_generate(i_s, i_s_pub);
	ox_key_generate(i_e, msg1); /* scratch: write1 puts e there again */
	ox_key_generate(r_s, r_s_pub);
	ox_key_generate(r_e, msg2);
	ox_noise_init(&ini, &ox_noise_wireguard, (const uint8_t *)WG_IDENTIFIER,
		      strlen(WG_IDENTIFIER));
	ox_noise_mix_hash(&ini, r_s_pub, 32);
	ox_noise_init(&res, &ox_noise_wireguard, (const uint8_t *)WG_IDENTIFIER,
		      strlen(WG_IDENTIFIER));
	ox_noise_mix_hash(&res, r_s_pub, 32);
	if (ox_ik_write1(&ini, i_s, i_s_pub, i_e, r_s_pub, ts, sizeof(ts), msg1) != 0 ||
	    ox_ik_read1(&res, r_s, msg1, sizeof(msg1), re, rs, got) != 0)
		goto out;
	EXPECT(memcmp(rs, i_s_pub, 32) == 0 && memcmp(got, ts, sizeof(ts)) == 0,
	       "message 1: the initiator's key and timestamp");
	/* Message 2 carries an empty payload: only its tag. */
	if (ox_ik_write2(&res, r_e, re, rs, psk_r, NULL, 0, msg2) != 0 ||
	    ox_ik_read2(&ini, i_e, i_s, psk_i, msg2, sizeof(msg2), got) != 0)
		goto out;
	EXPECT(memcmp(ini.h, res.h, 32) == 0, "both ends end with one handshake hash");
	ox_noise_split(&ini, i_k[0], i_k[1]);
	ox_noise_split(&res, r_k[0], r_k[1]);
	ret = 0;
out:
	ox_noise_wipe(&ini);
	ox_noise_wipe(&res);
	return ret;
}

static void
test_handshake(void)
{
	uint8_t psk[32], other[32], i_k[2][32], r_k[2][32];

	randombytes_buf(psk, sizeof(psk));
	memcpy(other, psk, sizeof(other));
	other[31] ^= 1;
	EXPECT(handshake(NULL, NULL, i_k, r_k) == 0, "handshake without a preshared key");
	EXPECT(memcmp(i_k, r_k, sizeof(i_k)) == 0 && memcmp(i_k[0], i_k[1], 32) != 0,
	       "the same two transport keys at both ends");
	EXPECT(handshake(psk, psk, i_k, r_k) == 0, "handshake with a preshared key");
	EXPECT(memcmp(i_k, r_k, sizeof(i_k)) == 0, "the same transport keys with it");
	EXPECT(handshake(psk, other, i_k, r_k) != 0, "another preshared key: message 2 refused");
	memset(other, 0, sizeof(other));
	EXPECT(handshake(other, NULL, i_k, r_k) == 0, "no preshared key is the all-zero one");
}

#define NS(s) ((uint64_t)(s)*1000000000u)

static const struct ox_src src_a = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 }, 40000 };

/* An INIT, its RESPONSE, both keypairs; the server's drop or 0. */
static int
wg_handshake(struct ox_hs_server *srv, struct ox_initiator *in, uint64_t now, bool load,
	     uint8_t cookie[OX_COOKIE_LEN], struct ox_keypair *ckp, struct ox_keypair *skp)
{
	uint8_t init[OX_INIT_LEN], resp[OX_WG_RESPONSE_LEN], ts[12];
	struct ox_hs_payload got;
	struct ox_responder r;
	struct ox_msg m;
	int ret;

	ox_tai64n_now(ts);
	EXPECT(ox_initiator_begin(in, 0x11223344, ts, now, init) == 0, "begin");
	EXPECT(init[0] == 1 && init[1] == 0 && init[2] == 0 && init[3] == 0 &&
		       ox_wg_match(init, sizeof(init)) && !ox_wg_match(init, 3),
	       "INIT: type 1, three zero bytes");
	EXPECT(ox_wg_msg_parse(init, sizeof(init), &m) == OX_MSG_INIT && m.index == 0x11223344,
	       "INIT parses, sender index");
	EXPECT(ox_msg_parse(init, sizeof(init), &m) == -OX_DROP_BAD_MAGIC,
	       "an OxTunnel parse refuses it");
	ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, now, load, &r, cookie);
	if (ret != 0)
		return ret;
	EXPECT(ox_hs_response_len(srv) == OX_WG_RESPONSE_LEN, "92-byte response");
	EXPECT(ox_hs_make_response(srv, &r, NULL, 0x55667788, now, resp, skp) == 0, "response");
	EXPECT(resp[0] == 2 && resp[1] == 0 && ox_wg_msg_parse(resp, sizeof(resp), &m) == 2 &&
		       m.index == 0x11223344,
	       "RESPONSE: type 2, receiver index = the INIT's sender");
	ret = ox_initiator_consume_response(in, resp, sizeof(resp), now, &got, ckp);
	EXPECT(ret == 0 && got.index == 0x55667788, "client takes the response: %s",
	       ox_drop_name(ret));
	return 0;
}

/* Client to server and back, WireGuard DATA: padding, no AD. */
static void
wg_exchange(struct ox_aead *x, struct ox_keypair *c, struct ox_keypair *s)
{
	uint8_t pkt[256];
	struct ox_msg m;
	int len, n;

	memcpy(pkt + 16, "twenty-one bytes here", 21);
	len = ox_data_seal(x, c, pkt, 21, NS(1000));
	EXPECT(len == 16 + 32 + 16, "21 bytes padded to 32: %d", len);
	EXPECT(pkt[0] == 4 && pkt[1] == 0 && ox_wg_msg_parse(pkt, (size_t)len, &m) == 4 &&
		       m.index == c->remote_index && m.counter == 0,
	       "DATA: type 4, receiver index, counter 0");
	/* As the whitepaper has it, by libsodium directly: nonce = 32 zero
	 * bits and the counter (LE), no associated data. */
	{
		uint8_t nonce[12] = { 0 }, plain[64];
		unsigned long long pl;

		memcpy(nonce + 4, pkt + 8, 8);
		EXPECT(crypto_aead_chacha20poly1305_ietf_decrypt(plain, &pl, NULL, pkt + 16,
								 (size_t)len - 16, NULL, 0, nonce,
								 c->send_key) == 0 &&
			       pl == 32 && memcmp(plain, "twenty-one bytes here", 21) == 0,
		       "DATA opens with libsodium: empty AD, counter nonce");
	}
	n = ox_data_open(x, s, pkt, (size_t)len, NS(1000));
	EXPECT(n == 32 && memcmp(pkt + 16, "twenty-one bytes here", 21) == 0 &&
		       sodium_is_zero(pkt + 16 + 21, 11),
	       "opens to the bytes and zero padding (%d)", n);
	/* A keepalive is an empty plaintext: 32 bytes on the wire. */
	len = ox_data_seal(x, s, pkt, 0, NS(1000));
	EXPECT(len == 32 && ox_data_open(x, c, pkt, (size_t)len, NS(1000)) == 0, "keepalive");
	/* No associated data: a changed header byte is the index, not a tag. */
	len = ox_data_seal(x, c, pkt, 16, NS(1000));
	EXPECT(len == 48, "16 bytes need no padding");
	pkt[len - 1] ^= 1;
	EXPECT(ox_data_open(x, s, pkt, (size_t)len, NS(1000)) == -OX_DROP_BAD_TAG, "forged tag");
}

static void
test_messages(void)
{
	uint8_t server_priv[32], server_pub[32], a_priv[32], a_pub[32], b_priv[32], b_pub[32];
	uint8_t c_priv[32], c_pub[32], c_psk[32];
	uint8_t cookie[OX_COOKIE_LEN], init[OX_INIT_LEN], ts[12], psk[32];
	char text[512], err[256], a64[OX_KEY_B64_LEN + 1], c64[OX_KEY_B64_LEN + 1];
	char psk64[OX_KEY_B64_LEN + 1];
	struct ox_aead *x = ox_aead_create(OX_AEAD_OPENSSL);
	struct ox_keypair ckp, skp;
	struct ox_initiator in;
	struct ox_hs_server *srv;
	struct ox_hs_conf conf;
	struct ox_allowlist al, al2;
	struct ox_responder r;
	struct ox_msg m;
	int ret;

	ox_key_generate(server_priv, server_pub);
	ox_key_generate(a_priv, a_pub);
	ox_key_generate(b_priv, b_pub);
	ox_key_generate(c_priv, c_pub);
	randombytes_buf(c_psk, sizeof(c_psk));
	ox_key_to_base64(a64, a_pub);
	ox_key_to_base64(c64, c_pub);
	ox_key_to_base64(psk64, c_psk);
	snprintf(text, sizeof(text), "%s alice\n%s carol psk=%s\n", a64, c64, psk64);
	EXPECT(ox_allowlist_parse(&al, text, strlen(text), NULL, 10, err, sizeof(err)) == 0,
	       "allow-list: %s", err);
	ox_hs_conf_default(&conf);
	conf.wire = OX_WIRE_WIREGUARD;
	srv = ox_hs_create(server_priv, &conf);
	EXPECT(srv != NULL, "WireGuard responder");
	if (srv == NULL || x == NULL)
		return;
	ox_hs_set_allowlist(srv, &al);

	EXPECT(ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, a_priv, server_pub, NULL) == 0,
	       "initiator");
	ret = wg_handshake(srv, &in, NS(1000), false, cookie, &ckp, &skp);
	EXPECT(ret == 0, "handshake: %s", ox_drop_name(ret));
	EXPECT(ckp.wire == OX_WIRE_WIREGUARD && skp.wire == OX_WIRE_WIREGUARD, "WireGuard keys");
	wg_exchange(x, &ckp, &skp);

	/* The worker's check: the server's mac1 key, keyed BLAKE2s. */
	{
		uint8_t k[32], ok[32];

		ox_tai64n_now(ts);
		ox_initiator_begin(&in, 9, ts, NS(1001), init);
		ox_wg_mac1_key(k, server_pub);
		EXPECT(ox_wg_init_check_mac1(k, init, sizeof(init)) == 0, "mac1 holds");
		EXPECT(ox_init_check_mac1(k, init, sizeof(init)) != 0, "not as OxTunnel's");
		ox_mac1_key(ok, server_pub);
		EXPECT(ox_init_check_mac1(ok, init, sizeof(init)) != 0, "nor with its key");
		init[40] ^= 1;
		EXPECT(ox_wg_init_check_mac1(k, init, sizeof(init)) == -OX_DROP_BAD_MAC1,
		       "a flipped byte fails mac1");
		init[40] ^= 1;
		EXPECT(ox_wg_init_check_mac1(k, init, sizeof(init) - 1) == -OX_DROP_BAD_LENGTH,
		       "length");
		/* The same INIT again: its timestamp is not newer. */
		ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1001), false, &r,
					 cookie);
		EXPECT(ret == 0, "fresh INIT accepted: %s", ox_drop_name(ret));
		ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1002), false, &r,
					 cookie);
		EXPECT(ret == -OX_DROP_STALE_INIT, "replayed INIT: %s", ox_drop_name(ret));
	}

	/* Under load: a cookie reply, then mac2 from it gets through. */
	ret = wg_handshake(srv, &in, NS(1010), true, cookie, &ckp, &skp);
	EXPECT(ret == -OX_DROP_COOKIE_SENT && cookie[0] == 3 && cookie[1] == 0 &&
		       ox_wg_msg_parse(cookie, OX_COOKIE_LEN, &m) == 3,
	       "under load: a cookie reply of type 3 (%s)", ox_drop_name(ret));
	EXPECT(ox_initiator_consume_cookie(&in, cookie, OX_COOKIE_LEN, NS(1010)) == 0,
	       "client takes the cookie");
	ret = wg_handshake(srv, &in, NS(1011), true, cookie, &ckp, &skp);
	EXPECT(ret == 0, "with mac2 under load: %s", ox_drop_name(ret));

	/* A key not on the allow-list. */
	ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, b_priv, server_pub, NULL);
	ret = wg_handshake(srv, &in, NS(1020), false, cookie, &ckp, &skp);
	EXPECT(ret == -OX_DROP_UNKNOWN_PEER, "unlisted key: %s", ox_drop_name(ret));

	/* A preshared key on the client that the allow-list does not have. */
	randombytes_buf(psk, sizeof(psk));
	ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, a_priv, server_pub, psk);
	{
		uint8_t resp[OX_WG_RESPONSE_LEN];
		struct ox_hs_payload got;

		ox_tai64n_now(ts);
		ox_initiator_begin(&in, 5, ts, NS(1030), init);
		ret = ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1030), false, &r,
					 cookie);
		EXPECT(ret == 0, "INIT accepted: %s", ox_drop_name(ret));
		ox_hs_make_response(srv, &r, NULL, 6, NS(1030), resp, &skp);
		ret = ox_initiator_consume_response(&in, resp, sizeof(resp), NS(1030), &got, &ckp);
		EXPECT(ret == -OX_DROP_HS_DECRYPT, "other preshared keys: refused (%s)",
		       ox_drop_name(ret));
		/* mac1 of the response is under the client's key. */
		resp[20] ^= 1;
		ret = ox_initiator_consume_response(&in, resp, sizeof(resp), NS(1030), &got, &ckp);
		EXPECT(ret == -OX_DROP_BAD_MAC1, "a changed response fails mac1 (%s)",
		       ox_drop_name(ret));
	}
	/* Carol's line has a preshared key: with it she gets in, without not. */
	ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, c_priv, server_pub, c_psk);
	ret = wg_handshake(srv, &in, NS(1040), false, cookie, &ckp, &skp);
	EXPECT(ret == 0, "the allow-list's preshared key: %s", ox_drop_name(ret));
	wg_exchange(x, &ckp, &skp);
	ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, c_priv, server_pub, NULL);
	{
		uint8_t resp[OX_WG_RESPONSE_LEN];
		struct ox_hs_payload got;

		ox_tai64n_now(ts);
		ox_initiator_begin(&in, 5, ts, NS(1050), init);
		EXPECT(ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1050), false, &r,
					  cookie) == 0,
		       "INIT without the preshared key (it is not in message 1)");
		ox_hs_make_response(srv, &r, NULL, 6, NS(1050), resp, &skp);
		EXPECT(ox_initiator_consume_response(&in, resp, sizeof(resp), NS(1050), &got,
						     &ckp) == -OX_DROP_HS_DECRYPT,
		       "but no keys without it");
	}
	/* A response made one X25519 a call (a worker's engine between its
	 * bursts), the allow-list replaced and freed between the INIT and the
	 * last step, as a reload may: the preshared key went with the INIT. */
	ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, c_priv, server_pub, c_psk);
	{
		uint8_t resp[OX_WG_RESPONSE_LEN];
		struct ox_hs_payload got;
		int steps = 0;

		ox_tai64n_now(ts);
		ox_initiator_begin(&in, 7, ts, NS(1060), init);
		EXPECT(ox_hs_consume_init(srv, init, sizeof(init), &src_a, NS(1060), false, &r,
					  cookie) == 0,
		       "carol's INIT");
		EXPECT(ox_allowlist_parse(&al2, text, strlen(text), NULL, 10, err, sizeof(err)) ==
			       0,
		       "the list again: %s", err);
		ox_hs_set_allowlist(srv, &al2);
		ox_allowlist_free(&al);
		do
			ret = ox_hs_respond_step(srv, &r, NULL, 8, NS(1060), resp, &skp);
		while (ret == 1 && ++steps < 10);
		EXPECT(ret == 0 && steps == 2,
		       "three calls: the ephemeral, ee, then se and the "
		       "message (%d, %d)",
		       ret, steps);
		EXPECT(sodium_is_zero((const unsigned char *)&r, sizeof(r)), "the state wiped");
		ret = ox_initiator_consume_response(&in, resp, sizeof(resp), NS(1060), &got, &ckp);
		EXPECT(ret == 0 && got.index == 8, "carol takes it: %s", ox_drop_name(ret));
		wg_exchange(x, &ckp, &skp);
	}
	ox_hs_free(srv);
	ox_allowlist_free(&al2);
	ox_aead_free(x);
}

/*
 * The Linux module's nonce counter self-test (drivers/net/wireguard/
 * selftest/counter.c), transcribed: the same 34 steps and six sweeps, in
 * its terms. Its COUNTER_WINDOW_SIZE W accepts a counter W behind the
 * greatest; ours accepts OX_REPLAY_WINDOW - 1 behind, so W is that here.
 * Its counter_validate() is our limit check, ox_replay_check() and, for a
 * packet that authenticated, ox_replay_commit().
 */
#define CWS ((uint64_t)OX_REPLAY_WINDOW - 1)

static bool
counter_validate(struct ox_replay *r, uint64_t n)
{
	if (n >= OX_REJECT_AFTER_MESSAGES)
		return false;
	if (ox_replay_check(r, n) != 0)
		return false;
	ox_replay_commit(r, n);
	return true;
}

static void
test_counter_selftest(void)
{
	const uint64_t lim = CWS + 1, rej = OX_REJECT_AFTER_MESSAGES;
	static const struct {
		int base; /* 0: n; 1: lim * k + n; 2: rej + n */
		int64_t k, n;
		bool v;
	} steps[] = {
		{ 0, 0, 0, true },   { 0, 0, 1, true },	  { 0, 0, 1, false },  { 0, 0, 9, true },
		{ 0, 0, 8, true },   { 0, 0, 7, true },	  { 0, 0, 7, false },  { 1, 1, 0, true },
		{ 1, 1, -1, true },  { 1, 1, -1, false }, { 1, 1, -2, true },  { 0, 0, 2, true },
		{ 0, 0, 2, false },  { 1, 1, 16, true },  { 0, 0, 3, false },  { 1, 1, 16, false },
		{ 1, 4, 0, true },   { 1, 3, 1, true },	  { 0, 0, 10, false }, { 1, 3, 0, false },
		{ 1, 3, -1, false }, { 1, 3, 2, true },	  { 1, 3, 1, false },  { 0, 0, 0, false },
		{ 2, 0, 0, false },  { 2, 0, -1, true },  { 2, 0, 0, false },  { 2, 0, -1, false },
		{ 2, 0, -2, true },  { 2, 0, 1, false },  { 2, 0, 2, false },  { 2, 0, -2, false },
		{ 2, 0, -3, true },  { 0, 0, 0, false },
	};
	struct ox_replay r;
	uint64_t i, n;
	unsigned int t;

	/* Steps 18-23 are T_LIM * 4 - (T_LIM - 1) and the like: 3 * lim + 1. */
	ox_replay_init(&r);
	for (t = 0; t < sizeof(steps) / sizeof(steps[0]); t++) {
		n = steps[t].base == 0	 ? (uint64_t)steps[t].n
		    : steps[t].base == 1 ? lim * (uint64_t)steps[t].k + (uint64_t)steps[t].n
					 : rej + (uint64_t)steps[t].n;
		EXPECT(counter_validate(&r, n) == steps[t].v, "counter self-test %u (%lu): %s",
		       t + 1, (unsigned long)n, steps[t].v ? "accepted" : "refused");
	}

	ox_replay_init(&r);
	for (i = 1; i <= CWS; ++i)
		EXPECT(counter_validate(&r, i), "sweep 1: %lu", (unsigned long)i);
	EXPECT(counter_validate(&r, 0), "sweep 1: 0 just inside");
	EXPECT(!counter_validate(&r, 0), "sweep 1: 0 again");

	ox_replay_init(&r);
	for (i = 2; i <= CWS + 1; ++i)
		EXPECT(counter_validate(&r, i), "sweep 2: %lu", (unsigned long)i);
	EXPECT(counter_validate(&r, 1), "sweep 2: 1 just inside");
	EXPECT(!counter_validate(&r, 0), "sweep 2: 0 just outside");

	ox_replay_init(&r);
	for (i = CWS + 1; i-- > 0;)
		EXPECT(counter_validate(&r, i), "sweep 3: %lu", (unsigned long)i);

	ox_replay_init(&r);
	for (i = CWS + 2; i-- > 1;)
		EXPECT(counter_validate(&r, i), "sweep 4: %lu", (unsigned long)i);
	EXPECT(!counter_validate(&r, 0), "sweep 4: 0 outside");

	ox_replay_init(&r);
	for (i = CWS + 1; i-- > 1;)
		EXPECT(counter_validate(&r, i), "sweep 5: %lu", (unsigned long)i);
	EXPECT(counter_validate(&r, CWS + 1), "sweep 5: W + 1");
	EXPECT(!counter_validate(&r, 0), "sweep 5: 0 now outside");

	ox_replay_init(&r);
	for (i = CWS + 1; i-- > 1;)
		EXPECT(counter_validate(&r, i), "sweep 6: %lu", (unsigned long)i);
	EXPECT(counter_validate(&r, 0), "sweep 6: 0 still inside");
	EXPECT(counter_validate(&r, CWS + 1), "sweep 6: W + 1");
}

int
main(void)
{
	if (sodium_init() < 0) {
		printf("sodium_init failed\n");
		return 1;
	}
	test_primitives();
	test_initial_state();
	test_handshake();
	test_messages();
	test_counter_selftest();
	return ox_test_finish("oxtunnel-wireguard");
}
