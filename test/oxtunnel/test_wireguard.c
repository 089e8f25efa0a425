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
 *    preshared key refused.
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
	return ox_test_finish("oxtunnel-wireguard");
}
