/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Noise IK implementation against published vectors (noise_vectors.h)
 * and the per-packet AEAD against RFC 8439 section 2.8.2, in both
 * implementations.
 */
#include <errno.h>

#include <sodium.h>

#include "ox_test.h"
#include "ox_tunnel_private.h"
#include "noise_vectors.h"
#include "test_util.h"

#define BUF 1024

static void
check_vector(const struct ox_noise_vector *v)
{
	uint8_t prologue[256], i_s[32], i_s_pub[32], i_e[32], rs[32], r_s[32], r_s_pub[32];
	uint8_t r_e[32], hh[32], payload[BUF], ct[BUF], out[BUF], got[BUF];
	uint8_t re[32], learnt_rs[32], i_k1[32], i_k2[32], r_k1[32], r_k2[32];
	struct ox_noise ini, res;
	struct ox_aead *aead = ox_aead_create(OX_AEAD_SODIUM);
	int plen, pl, cl;
	unsigned int m;
	uint64_t n_i = 0, n_r = 0;

	plen = hex_decode(prologue, sizeof(prologue), v->prologue);
	EXPECT(plen >= 0 && hex_decode(i_s, 32, v->init_static) == 32 &&
		       hex_decode(i_e, 32, v->init_ephemeral) == 32 &&
		       hex_decode(rs, 32, v->init_remote_static) == 32 &&
		       hex_decode(r_s, 32, v->resp_static) == 32 &&
		       hex_decode(r_e, 32, v->resp_ephemeral) == 32 &&
		       hex_decode(hh, 32, v->handshake_hash) == 32,
	       "%s: decode", v->source);
	EXPECT(ox_key_public(i_s_pub, i_s) == 0, "%s: initiator public", v->source);
	EXPECT(ox_key_public(r_s_pub, r_s) == 0, "%s: responder public", v->source);
	EXPECT(memcmp(r_s_pub, rs, 32) == 0, "%s: responder key", v->source);

	ox_noise_init(&ini, &ox_noise_oxtunnel, prologue, (size_t)plen);
	ox_noise_mix_hash(&ini, rs, 32);
	ox_noise_init(&res, &ox_noise_oxtunnel, prologue, (size_t)plen);
	ox_noise_mix_hash(&res, r_s_pub, 32);

	/* -> e, es, s, ss */
	pl = hex_decode(payload, BUF, v->messages[0].payload);
	cl = hex_decode(ct, BUF, v->messages[0].ciphertext);
	EXPECT(pl >= 0 && cl == 32 + 48 + pl + 16, "%s: msg0 sizes", v->source);
	EXPECT(ox_ik_write1(&ini, i_s, i_s_pub, i_e, rs, payload, (size_t)pl, out) == 0 &&
		       memcmp(out, ct, (size_t)cl) == 0,
	       "%s: msg0 bytes", v->source);
	EXPECT(ox_ik_read1(&res, r_s, ct, (size_t)cl, re, learnt_rs, got) == 0 &&
		       memcmp(got, payload, (size_t)pl) == 0 && memcmp(learnt_rs, i_s_pub, 32) == 0,
	       "%s: msg0 read", v->source);

	/* <- e, ee, se */
	pl = hex_decode(payload, BUF, v->messages[1].payload);
	cl = hex_decode(ct, BUF, v->messages[1].ciphertext);
	EXPECT(pl >= 0 && cl == 32 + pl + 16, "%s: msg1 sizes", v->source);
	EXPECT(ox_ik_write2(&res, r_e, re, learnt_rs, NULL, payload, (size_t)pl, out) == 0 &&
		       memcmp(out, ct, (size_t)cl) == 0,
	       "%s: msg1 bytes", v->source);
	EXPECT(ox_ik_read2(&ini, i_e, i_s, NULL, ct, (size_t)cl, got) == 0 &&
		       memcmp(got, payload, (size_t)pl) == 0,
	       "%s: msg1 read", v->source);

	EXPECT(memcmp(ini.h, hh, 32) == 0 && memcmp(res.h, hh, 32) == 0, "%s: handshake hash",
	       v->source);
	ox_noise_split(&ini, i_k1, i_k2);
	ox_noise_split(&res, r_k1, r_k2);
	EXPECT(memcmp(i_k1, r_k1, 32) == 0 && memcmp(i_k2, r_k2, 32) == 0, "%s: split", v->source);

	/* Transport messages alternate initiator, responder. */
	for (m = 2; m < v->n_messages; m++) {
		bool from_init = (m % 2) == 0;
		const uint8_t *k = from_init ? i_k1 : i_k2;
		uint64_t *n = from_init ? &n_i : &n_r;

		pl = hex_decode(payload, BUF, v->messages[m].payload);
		cl = hex_decode(ct, BUF, v->messages[m].ciphertext);
		EXPECT(aead != NULL && pl >= 0 && cl == pl + 16, "%s: msg%u sizes", v->source, m);
		/* Noise transport messages are DATA's AEAD with no associated data. */
		memcpy(out, payload, (size_t)pl);
		EXPECT(ox_aead_seal(aead, k, *n, NULL, 0, out, (size_t)pl, out + pl) == 0 &&
			       memcmp(out, ct, (size_t)cl) == 0,
		       "%s: msg%u bytes", v->source, m);
		memcpy(got, ct, (size_t)pl);
		EXPECT(ox_aead_open(aead, k, *n, NULL, 0, got, (size_t)pl, ct + pl) == 0 &&
			       memcmp(got, payload, (size_t)pl) == 0,
		       "%s: msg%u open", v->source, m);
		(*n)++;
	}
	ox_aead_free(aead);
	printf("%s: %u messages and the handshake hash match\n", v->source, v->n_messages);
}

/* RFC 8439 section 2.8.2, transcribed from the RFC. */
static const char rfc_key[] = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
static const char rfc_nonce[] = "070000004041424344454647";
static const char rfc_aad[] = "50515253c0c1c2c3c4c5c6c7";
static const char rfc_plain[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only one "
	"tip for the future, sunscreen would be it.";
static const char rfc_cipher[] = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
				 "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
				 "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
				 "3ff4def08e4b7a9de576d26586cec64b6116";
static const char rfc_tag[] = "1ae10b594f09e26a7e902ecbd0600691";

static void
check_rfc8439(enum ox_aead_impl impl, const char *name)
{
	uint8_t key[32], nonce[12], aad[12], ct[128], tag[16], buf[128], t[16];
	size_t len = strlen(rfc_plain);
	struct ox_aead *a = ox_aead_create(impl);

	EXPECT(a != NULL, "%s: create", name);
	if (a == NULL)
		return;
	hex_decode(key, 32, rfc_key);
	hex_decode(nonce, 12, rfc_nonce);
	hex_decode(aad, 12, rfc_aad);
	EXPECT(hex_decode(ct, sizeof(ct), rfc_cipher) == (int)len, "rfc ciphertext length");
	hex_decode(tag, 16, rfc_tag);
	memcpy(buf, rfc_plain, len);
	EXPECT(ox_aead_seal_iv(a, key, nonce, aad, 12, buf, len, t) == 0 &&
		       memcmp(buf, ct, len) == 0 && memcmp(t, tag, 16) == 0,
	       "%s: RFC 8439 2.8.2 seal", name);
	EXPECT(ox_aead_open_iv(a, key, nonce, aad, 12, buf, len, tag) == 0 &&
		       memcmp(buf, rfc_plain, len) == 0,
	       "%s: RFC 8439 2.8.2 open", name);
	ox_aead_free(a);
	printf("%s: RFC 8439 2.8.2 checked\n", name);
}

/* Implementation x agrees with OpenSSL's (o), each opens the other's
 * output, and x refuses a wrong counter, AD or tag. */
static void
check_pair(struct ox_aead *o, struct ox_aead *x, const char *name)
{
	uint8_t key[32], ad[16], p1[1500], p2[1500], orig[1500], t1[16], t2[16];
	size_t sizes[] = { 0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 512, 1400, 1500 };
	unsigned int i;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(ad, sizeof(ad));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint64_t ctr = (uint64_t)i * 0x100000001ull;

		randombytes_buf(orig, n);
		memcpy(p1, orig, n);
		memcpy(p2, orig, n);
		EXPECT(ox_aead_seal(o, key, ctr, ad, 16, p1, n, t1) == 0, "openssl seal %zu", n);
		EXPECT(ox_aead_seal(x, key, ctr, ad, 16, p2, n, t2) == 0, "%s seal %zu", name, n);
		EXPECT(memcmp(p1, p2, n) == 0 && memcmp(t1, t2, 16) == 0,
		       "%s: same output as openssl %zu", name, n);
		EXPECT(ox_aead_open(x, key, ctr, ad, 16, p1, n, t1) == 0 &&
			       memcmp(p1, orig, n) == 0,
		       "%s opens openssl %zu", name, n);
		EXPECT(ox_aead_open(o, key, ctr, ad, 16, p2, n, t2) == 0 &&
			       memcmp(p2, orig, n) == 0,
		       "openssl opens %s %zu", name, n);
		/* wrong counter, wrong AD, flipped tag */
		memcpy(p1, orig, n);
		ox_aead_seal(o, key, ctr, ad, 16, p1, n, t1);
		memcpy(p2, p1, n);
		EXPECT(ox_aead_open(x, key, ctr + 1, ad, 16, p2, n, t1) == -EBADMSG,
		       "%s wrong counter %zu", name, n);
		memcpy(p2, p1, n);
		ad[3] ^= 1;
		EXPECT(ox_aead_open(x, key, ctr, ad, 16, p2, n, t1) == -EBADMSG, "%s wrong ad %zu",
		       name, n);
		ad[3] ^= 1;
		t1[15] ^= 0x80;
		memcpy(p2, p1, n);
		EXPECT(ox_aead_open(x, key, ctr, ad, 16, p2, n, t1) == -EBADMSG, "%s wrong tag %zu",
		       name, n);
		memcpy(p2, p1, n);
		EXPECT(ox_aead_open(o, key, ctr, ad, 16, p2, n, t1) == -EBADMSG,
		       "openssl wrong tag %zu", n);
	}
	printf("aead: %s and OpenSSL agree at %u sizes\n", name, i);
}

/* x's bursts give what OpenSSL gives packet by packet; a forged tag in
 * the middle of a burst fails that packet alone. */
static void
check_burst(struct ox_aead *o, struct ox_aead *x, const char *name)
{
	enum { N = 40, CAP = 1408 };
	static uint8_t bufs[N][CAP], want[N][CAP], orig[N][CAP], tags[N][16], wtags[N][16];
	struct ox_aead_op ops[OX_AEAD_BURST_MAX + 1];
	uint8_t key[N][32], ad[16];
	unsigned int i, same = 0, back = 0;
	int ret;

	randombytes_buf(ad, sizeof(ad));
	for (i = 0; i < N; i++) {
		size_t len = (i * 97) % CAP; /* 0 .. 1407, all lanes' lengths differ */

		randombytes_buf(key[i], 32);
		randombytes_buf(orig[i], len);
		memcpy(bufs[i], orig[i], len);
		memcpy(want[i], orig[i], len);
		EXPECT(ox_aead_seal(o, key[i], 1000 + i, ad, i % 2 ? 16 : 0, want[i], len,
				    wtags[i]) == 0,
		       "openssl seal");
		ops[i] = (struct ox_aead_op){ .key = key[i],
					      .counter = 1000 + i,
					      .ad = ad,
					      .adlen = i % 2 ? 16 : 0,
					      .buf = bufs[i],
					      .len = len,
					      .tag = tags[i] };
	}
	ret = ox_aead_seal_burst(x, ops, N);
	EXPECT(ret == N, "%s: burst of %d sealed %d", name, N, ret);
	for (i = 0; i < N; i++)
		same += ops[i].status == 0 && memcmp(bufs[i], want[i], ops[i].len) == 0 &&
			memcmp(tags[i], wtags[i], 16) == 0;
	EXPECT(same == N, "%s: %u of %d burst seals as OpenSSL's", name, same, N);
	/* Open OpenSSL's packets in a burst, one tag forged. */
	for (i = 0; i < N; i++) {
		memcpy(bufs[i], want[i], ops[i].len);
		memcpy(tags[i], wtags[i], 16);
	}
	tags[N / 2][0] ^= 1;
	ret = ox_aead_open_burst(x, ops, N);
	EXPECT(ret == N - 1, "%s: burst opened %d of %d", name, ret, N);
	for (i = 0; i < N; i++)
		back += i == N / 2
				? ops[i].status == -EBADMSG
				: ops[i].status == 0 && memcmp(bufs[i], orig[i], ops[i].len) == 0;
	EXPECT(back == N, "%s: %u of %d burst opens right (the forged one refused)", name, back, N);
	EXPECT(ox_aead_open_burst(x, ops, 0) == 0, "%s: empty burst", name);
	EXPECT(ox_aead_seal_burst(x, ops, OX_AEAD_BURST_MAX + 1) == -EINVAL,
	       "%s: burst over OX_AEAD_BURST_MAX refused", name);
	printf("aead: %s bursts of %d agree with OpenSSL\n", name, N);
}

/* Every implementation against OpenSSL's. */
static void
check_cross(void)
{
	struct ox_aead *o = ox_aead_create(OX_AEAD_OPENSSL);
	struct ox_aead *s = ox_aead_create(OX_AEAD_SODIUM);
	struct ox_aead *m = ox_aead_create(OX_AEAD_IPSECMB);
	int m_err = errno;
	struct ox_aead *a = ox_aead_create(OX_AEAD_AUTO);

	EXPECT(o && s && a, "create");
	if (!o || !s || !a)
		goto out;
	check_pair(o, s, "libsodium");
	check_pair(o, a, "auto");
	check_burst(o, s, "libsodium");
	check_burst(o, o, "openssl");
	printf("aead: auto runs %s\n", ox_aead_name(a));
#ifdef OX_HAVE_IPSECMB
	if (m == NULL) {
		EXPECT(m_err == ENOTSUP, "ipsec-mb create: %s", strerror(m_err));
		printf("aead: intel-ipsec-mb has no SIMD path on this CPU: not checked\n");
	} else {
		check_rfc8439(OX_AEAD_IPSECMB, "intel-ipsec-mb");
		check_pair(o, m, "ipsec-mb");
		check_burst(o, m, "ipsec-mb");
		EXPECT(ox_aead_impl_of(a) == OX_AEAD_IPSECMB, "auto picks intel-ipsec-mb");
	}
#else
	EXPECT(m == NULL && m_err == ENOTSUP, "no ipsec-mb in this build: ENOTSUP");
	EXPECT(ox_aead_impl_of(a) == OX_AEAD_AUTO, "auto without intel-ipsec-mb");
#endif
out:
	ox_aead_free(o);
	ox_aead_free(s);
	ox_aead_free(m);
	ox_aead_free(a);
}

int
main(void)
{
	unsigned int i;

	if (sodium_init() < 0) {
		printf("sodium_init failed\n");
		return 1;
	}
	EXPECT(OX_NOISE_N_VECTORS > 0, "vectors present");
	for (i = 0; i < OX_NOISE_N_VECTORS; i++)
		check_vector(&ox_noise_vectors[i]);
	check_rfc8439(OX_AEAD_OPENSSL, "openssl");
	check_rfc8439(OX_AEAD_SODIUM, "libsodium");
	check_cross();
	return ox_test_finish("oxtunnel-vectors");
}
