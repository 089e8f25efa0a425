/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hs-bench: what a responder's handshake costs against its floor, the
 * X25519 operations it cannot avoid (three variable-base and one
 * fixed-base, with the static-static DH kept per listed key), measured in
 * the same run with the same library (libsodium, dh-bench's choice).
 *
 *   hs-bench [--json] [--clients N] [--rounds R]
 *
 * N listed clients (default 512) each send one INIT a round; every INIT is
 * made before the timed part (the clients' own DH is not counted). A round
 * times lib/oxtunnel's responder, ox_hs_consume_init() and
 * ox_hs_make_response(), over all N: mac1, the Noise IK reads and writes
 * (BLAKE2s or BLAKE2b, ChaCha20-Poly1305), the allow-list lookup, the
 * timestamp check and the keypair. Cells: OxTunnel and WireGuard, each with
 * the static-static DH kept (computed ahead, ox_hs_precompute) and without
 * (a first handshake after a start or a reload). The floor cell times
 * 3 crypto_scalarmult + 1 crypto_scalarmult_base per handshake; cells are
 * interleaved round by round and reported as the median round, in TSC
 * ticks per handshake.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ox_handshake.h"
#include "ox_tunnel.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#define TICKS() __rdtsc()
#else
#define TICKS() 0
#endif

#define NS(s) ((uint64_t)(s)*1000000000u)

struct client {
	uint8_t priv[OX_KEY_LEN], pub[OX_KEY_LEN];
	struct ox_initiator in;
	uint8_t init[OX_INIT_LEN];
};

enum cell { FLOOR, OX_KEPT, OX_FIRST, WG_KEPT, WG_FIRST, N_CELLS };
static const char *const cell_names[N_CELLS] = {
	"floor: 3 variable-base + 1 fixed-base X25519", "OxTunnel, static-static DH kept",
	"OxTunnel, first handshake (no DH kept)",	"WireGuard, static-static DH kept",
	"WireGuard, first handshake (no DH kept)",
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every client's INIT for this round (timestamps grow round by round). */
static int
make_inits(struct client *c, unsigned int n, enum ox_wire wire, const uint8_t server_pub[32],
	   unsigned int round)
{
	uint8_t ts[12];
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (ox_initiator_init_wire(&c[i].in, wire, c[i].priv, server_pub, NULL) != 0)
			return -1;
		ox_tai64n_now(ts);
		if (ox_initiator_begin(&c[i].in, i + 1, ts, NS(round + 1), c[i].init) != 0)
			return -1;
	}
	return 0;
}

/* One round of the responder over every client's INIT; -1 on a refusal. */
static int
respond_all(struct ox_hs_server *s, struct client *c, unsigned int n, unsigned int round,
	    uint64_t *ticks)
{
	struct ox_hs_payload pl = {
		.v4 = 0x64400002, .v4_prefix = 10, .v6_prefix = 64, .mtu = 1420, .keepalive_s = 25
	};
	uint8_t cookie[OX_COOKIE_LEN],
		resp[OX_WG_RESPONSE_LEN > OX_RESPONSE_LEN ? OX_WG_RESPONSE_LEN : OX_RESPONSE_LEN];
	struct ox_src src = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 }, 40000 };
	struct ox_responder r;
	struct ox_keypair kp;
	unsigned int i;
	uint64_t t0 = TICKS();
	int ret;

	for (i = 0; i < n; i++) {
		ret = ox_hs_consume_init(s, c[i].init, OX_INIT_LEN, &src, NS(round + 1), false, &r,
					 cookie);
		if (ret == 0)
			ret = ox_hs_make_response(s, &r, &pl, 1000 + i, NS(round + 1), resp, &kp);
		ox_keypair_wipe(&kp);
		if (ret != 0) {
			fprintf(stderr, "hs-bench: handshake %u refused: %s\n", i,
				ox_drop_name(ret));
			return -1;
		}
	}
	*ticks = TICKS() - t0;
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned int n = 512, rounds = 7, i, k, cl;
	uint8_t spriv[OX_KEY_LEN], spub[OX_KEY_LEN], out[OX_KEY_LEN];
	uint64_t *t[N_CELLS];
	struct ox_hs_server *srv[2];
	struct ox_hs_conf conf;
	struct client *c;
	bool json = false;
	char *text, b64[OX_KEY_B64_LEN + 1], err[256];
	size_t len = 0;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--clients") == 0 && i + 1 < (unsigned int)argc)
			n = (unsigned int)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < (unsigned int)argc)
			rounds = (unsigned int)strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: hs-bench [--json] [--clients N] [--rounds R]\n");
			return 2;
		}
	}
	if (n == 0 || rounds == 0 || sodium_init() < 0)
		return 2;
	c = calloc(n, sizeof(*c));
	text = malloc((size_t)n * (OX_KEY_B64_LEN + 2) + 1);
	if (c == NULL || text == NULL)
		return 2;
	randombytes_buf(spriv, sizeof(spriv));
	crypto_scalarmult_base(spub, spriv);
	for (i = 0; i < n; i++) {
		randombytes_buf(c[i].priv, OX_KEY_LEN);
		crypto_scalarmult_base(c[i].pub, c[i].priv);
		ox_key_to_base64(b64, c[i].pub);
		len += (size_t)sprintf(text + len, "%s\n", b64);
	}
	ox_hs_conf_default(&conf);
	srv[0] = ox_hs_create(spriv, &conf);
	conf.wire = OX_WIRE_WIREGUARD;
	srv[1] = ox_hs_create(spriv, &conf);
	for (k = 0; k < N_CELLS; k++)
		t[k] = calloc(rounds, sizeof(uint64_t));
	for (i = 0; i < rounds; i++) {
		/* The floor: what IK's responder cannot do without. */
		uint64_t t0 = TICKS();

		for (k = 0; k < n; k++) {
			int bad = crypto_scalarmult(out, spriv, c[k].pub);

			bad |= crypto_scalarmult(out, c[k].priv, spub);
			bad |= crypto_scalarmult(out, c[k].priv, c[(k + 1) % n].pub);
			bad |= crypto_scalarmult_base(out, c[k].priv);
			if (bad)
				return 1;
		}
		t[FLOOR][i] = TICKS() - t0;
		for (cl = OX_KEPT; cl < N_CELLS; cl++) {
			bool wg = cl == WG_KEPT || cl == WG_FIRST;
			bool first = cl == OX_FIRST || cl == WG_FIRST;
			struct ox_hs_server *s = srv[wg];
			struct ox_allowlist al;

			if (ox_allowlist_parse(&al, text, len, NULL, n, err, sizeof(err)) != 0) {
				fprintf(stderr, "hs-bench: %s\n", err);
				return 1;
			}
			ox_hs_set_allowlist(s, &al);
			if (!first)
				while (ox_hs_precompute(s, 1024) > 0)
					;
			if (make_inits(c, n, wg ? OX_WIRE_WIREGUARD : OX_WIRE_OXTUNNEL, spub, i) !=
				    0 ||
			    respond_all(s, c, n, i, &t[cl][i]) != 0)
				return 1;
			ox_hs_set_allowlist(s, NULL);
			ox_allowlist_free(&al);
		}
	}
	if (json)
		printf("{\"clients\": %u, \"rounds\": %u, \"cells\": [", n, rounds);
	double floor_med = 0;

	for (k = 0; k < N_CELLS; k++) {
		qsort(t[k], rounds, sizeof(uint64_t), cmp_u64);
		double med = (double)t[k][(rounds - 1) / 2] / n;

		if (k == FLOOR)
			floor_med = med;
		if (json)
			printf("%s{\"cell\": \"%s\", \"ticks\": %.0f, \"vs_floor\": %.3f}",
			       k ? ", " : "", cell_names[k], med, med / floor_med);
		else
			printf("  %-46s %8.0f ticks/handshake  %.2fx the floor\n", cell_names[k],
			       med, med / floor_med);
		free(t[k]);
	}
	if (json)
		printf("]}\n");
	ox_hs_free(srv[0]);
	ox_hs_free(srv[1]);
	sodium_memzero(spriv, sizeof(spriv));
	sodium_memzero(c, (size_t)n * sizeof(*c));
	free(c);
	free(text);
	return 0;
}
