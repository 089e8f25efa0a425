/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dh-bench: X25519 (RFC 7748) as a handshake responder spends it, in the
 * Debian-packaged libraries the project links: libsodium
 * (crypto_scalarmult, crypto_scalarmult_base) and OpenSSL 3 EVP (a
 * persistent private-key object, the peer's public key made an object per
 * operation, EVP_PKEY_derive; the fixed-base one as the public key of a new
 * raw private key). Used to choose one by measurement; the results are kept
 * in doc/handshake-performance.md.
 *
 *   dh-bench [--json] [--ops N] [--rounds R]
 *
 * Before measuring, both are checked against RFC 7748 section 5.2's vectors
 * and against each other on random keys (any mismatch exits 1). Each cell
 * times R rounds of N operations, interleaved across cells; the figure is
 * the median round's TSC ticks per operation (robust to the other work on
 * a shared machine).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#define KEY 32

static uint64_t
ticks(void)
{
#if HAVE_TSC
	return __rdtsc();
#else
	return 0;
#endif
}

/* ---------------------------------------------------------------- openssl */

static int
ossl_dh(uint8_t out[KEY], EVP_PKEY *priv, const uint8_t pub[KEY])
{
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, KEY);
	EVP_PKEY_CTX *ctx = peer ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	size_t len = KEY;
	int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
		 EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, out, &len) == 1 &&
		 len == KEY;

	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return ok ? 0 : -1;
}

static int
ossl_base(uint8_t pub[KEY], const uint8_t priv[KEY])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY);
	size_t len = KEY;
	int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == KEY;

	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

/* ----------------------------------------------------- the Edwards route */

/*
 * The fixed-base operation on the Edwards curve: libsodium's X25519
 * implementation for CPUs with AVX (sandy2x) computes it with the same
 * Montgomery ladder as any other point, while Ed25519's fixed-base
 * multiplication uses a precomputed table; the Montgomery u of s*B is
 * X25519(s, 9) for the clamped scalar s.
 */
static int
edwards_base(uint8_t pub[KEY], const uint8_t priv[KEY])
{
	uint8_t s[KEY], ed[KEY];
	int ret;

	memcpy(s, priv, KEY);
	s[0] &= 248;
	s[31] &= 127;
	s[31] |= 64;
	ret = crypto_scalarmult_ed25519_base_noclamp(ed, s);
	if (ret == 0)
		ret = crypto_sign_ed25519_pk_to_curve25519(pub, ed);
	sodium_memzero(s, sizeof(s));
	return ret;
}

/* ------------------------------------------------------------------ check */

static int
unhex(uint8_t *out, const char *hex)
{
	size_t n;

	return sodium_hex2bin(out, KEY, hex, 2 * KEY, NULL, &n, NULL) == 0 && n == KEY ? 0 : -1;
}

/* RFC 7748 section 5.2, the two X25519 vectors (scalar, u-coordinate, out). */
static const char *const vectors[][3] = {
	{ "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
	  "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
	  "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
	{ "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	  "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
	  "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
};

static int
check(void)
{
	uint8_t k[KEY], u[KEY], want[KEY], a[KEY], b[KEY], pa[KEY], pb[KEY];
	EVP_PKEY *priv;
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		if (unhex(k, vectors[i][0]) || unhex(u, vectors[i][1]) ||
		    unhex(want, vectors[i][2]))
			return -1;
		priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, k, KEY);
		if (crypto_scalarmult(a, k, u) != 0 || priv == NULL || ossl_dh(b, priv, u) != 0 ||
		    memcmp(a, want, KEY) != 0 || memcmp(b, want, KEY) != 0) {
			fprintf(stderr, "dh-bench: RFC 7748 vector %zu: mismatch\n", i + 1);
			EVP_PKEY_free(priv);
			return -1;
		}
		EVP_PKEY_free(priv);
	}
	for (i = 0; i < 64; i++) {
		randombytes_buf(k, KEY);
		randombytes_buf(u, KEY);
		if (crypto_scalarmult_base(pa, k) != 0 || ossl_base(pb, k) != 0 ||
		    memcmp(pa, pb, KEY) != 0 || edwards_base(pb, k) != 0 ||
		    memcmp(pa, pb, KEY) != 0) {
			fprintf(stderr, "dh-bench: fixed-base results differ\n");
			return -1;
		}
		priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, k, KEY);
		crypto_scalarmult_base(u, u); /* a valid public key */
		if (crypto_scalarmult(a, k, u) != 0 || priv == NULL || ossl_dh(b, priv, u) != 0 ||
		    memcmp(a, b, KEY) != 0) {
			fprintf(stderr, "dh-bench: variable-base results differ\n");
			EVP_PKEY_free(priv);
			return -1;
		}
		EVP_PKEY_free(priv);
	}
	return 0;
}

/* ------------------------------------------------------------------ cells */

enum op { SODIUM_VAR, SODIUM_BASE, EDWARDS_BASE, OSSL_VAR, OSSL_BASE, N_OPS };
static const char *const op_names[N_OPS] = {
	"libsodium crypto_scalarmult (variable base)",
	"libsodium crypto_scalarmult_base (fixed base)",
	"libsodium Ed25519 base + to Montgomery (fixed base)",
	"OpenSSL 3 EVP_PKEY_derive (variable base)",
	"OpenSSL 3 raw private key -> public (fixed base)",
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	unsigned int ops = 2000, rounds = 9, r, o, i;
	uint8_t priv[KEY], pubs[64][KEY], out[KEY];
	uint64_t *t[N_OPS];
	EVP_PKEY *spriv;
	bool json = false;
	int fail = 0;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--ops") == 0 && i + 1 < (unsigned int)argc)
			ops = (unsigned int)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < (unsigned int)argc)
			rounds = (unsigned int)strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: dh-bench [--json] [--ops N] [--rounds R]\n");
			return 2;
		}
	}
	if (ops == 0 || rounds == 0 || sodium_init() < 0)
		return 2;
	if (check() != 0)
		return 1;
	if (!json)
		printf("dh-bench: RFC 7748 vectors and 64 random keys agree in both libraries\n");
	randombytes_buf(priv, KEY);
	for (i = 0; i < 64; i++) {
		randombytes_buf(out, KEY);
		crypto_scalarmult_base(pubs[i], out);
	}
	spriv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY);
	for (o = 0; o < N_OPS; o++)
		t[o] = calloc(rounds, sizeof(uint64_t));
	/* Rounds interleaved across the cells: drift falls on all alike. */
	for (r = 0; r < rounds; r++)
		for (o = 0; o < N_OPS; o++) {
			uint64_t t0 = ticks();

			for (i = 0; i < ops; i++) {
				const uint8_t *pub = pubs[i % 64];

				switch (o) {
				case SODIUM_VAR:
					fail |= crypto_scalarmult(out, priv, pub);
					break;
				case SODIUM_BASE:
					fail |= crypto_scalarmult_base(out, pub);
					break;
				case EDWARDS_BASE:
					fail |= edwards_base(out, pub);
					break;
				case OSSL_VAR:
					fail |= ossl_dh(out, spriv, pub);
					break;
				case OSSL_BASE:
					fail |= ossl_base(out, pub);
					break;
				}
			}
			t[o][r] = ticks() - t0;
		}
	if (fail) {
		fprintf(stderr, "dh-bench: an operation failed\n");
		return 1;
	}
	if (json)
		printf("{\"ops\": %u, \"rounds\": %u, \"cells\": [", ops, rounds);
	for (o = 0; o < N_OPS; o++) {
		qsort(t[o], rounds, sizeof(uint64_t), cmp_u64);
		double med = (double)t[o][(rounds - 1) / 2] / ops;
		double lo = (double)t[o][0] / ops, hi = (double)t[o][rounds - 1] / ops;

		if (json)
			printf("%s{\"op\": \"%s\", \"ticks\": %.0f, \"min\": %.0f, \"max\": %.0f}",
			       o ? ", " : "", op_names[o], med, lo, hi);
		else
			printf("  %-50s %8.0f ticks/op (rounds %.0f-%.0f)\n", op_names[o], med, lo,
			       hi);
		free(t[o]);
	}
	if (json)
		printf("]}\n");
	EVP_PKEY_free(spriv);
	sodium_memzero(priv, sizeof(priv));
	return 0;
}
