/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: both ends of the lib/oxtunnel handshake. The first byte's
 * bits pick the role and shortcuts:
 *  bit 0: 0 = server reads the datagram as an initiation (responder),
 *         1 = client with a handshake pending reads it as a response or
 *             cookie reply (initiator);
 *  bit 1: server under load (mac2 and cookies);
 *  bit 2: recompute mac1 over the input first, so mutations reach the
 *         Noise layer instead of dying at mac1;
 *  bit 3: WireGuard's messages instead of OxTunnel's (the same keys).
 * Keys are fixed; the allow-list holds the seed client's key.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ox_tunnel_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ox_hs_server *srv, *srv_wg;
static struct ox_allowlist al;
static struct ox_initiator in, in_wg;
static uint8_t mac1_key[OX_KEY_LEN], wg_mac1_key[OX_KEY_LEN];
static const struct ox_src src = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 }, 40000 };

static void
fixed_key(uint8_t k[OX_KEY_LEN], uint8_t base)
{
	for (int i = 0; i < OX_KEY_LEN; i++)
		k[i] = (uint8_t)(base + i);
}

static void
setup(void)
{
	uint8_t spriv[OX_KEY_LEN], spub[OX_KEY_LEN], cpriv[OX_KEY_LEN], cpub[OX_KEY_LEN];
	char text[OX_KEY_B64_LEN + 8], err[128];
	uint8_t ts[12] = { 0 }, init[OX_INIT_LEN];
	struct ox_hs_conf wg;

	if (sodium_init() < 0)
		abort();
	fixed_key(spriv, 0x01);
	fixed_key(cpriv, 0x21);
	if (ox_key_public(spub, spriv) != 0 || ox_key_public(cpub, cpriv) != 0)
		abort();
	srv = ox_hs_create(spriv, NULL);
	ox_hs_conf_default(&wg);
	wg.wire = OX_WIRE_WIREGUARD;
	srv_wg = ox_hs_create(spriv, &wg);
	if (srv == NULL || srv_wg == NULL)
		abort();
	ox_key_to_base64(text, cpub);
	strcat(text, " seed\n");
	if (ox_allowlist_parse(&al, text, strlen(text), NULL, 4, err, sizeof(err)) != 0)
		abort();
	ox_hs_set_allowlist(srv, &al);
	ox_hs_set_allowlist(srv_wg, &al);
	ox_label_key(mac1_key, "mac1----", spub);
	ox_wg_mac1_key(wg_mac1_key, spub);
	if (ox_initiator_init(&in, cpriv, spub) != 0 ||
	    ox_initiator_init_wire(&in_wg, OX_WIRE_WIREGUARD, cpriv, spub, NULL) != 0)
		abort();
	if (ox_initiator_begin(&in, 7, ts, 1, init) != 0 ||
	    ox_initiator_begin(&in_wg, 7, ts, 1, init) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t now = 1000000000;
	uint8_t reply[OX_COOKIE_LEN], resp[OX_WG_RESPONSE_LEN], *buf;
	bool wire_wg;
	struct ox_hs_server *s;
	struct ox_initiator *ini;
	struct ox_hs_payload pl = { 0 };
	struct ox_responder r;
	struct ox_keypair kp;
	struct ox_msg m;
	size_t len;
	int ret;

	if (srv == NULL)
		setup();
	if (size < 1)
		return 0;
	len = size - 1;
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	/* Time moves on so the rate limit refills now and then. */
	now += 10000000;
	wire_wg = data[0] & 8;
	s = wire_wg ? srv_wg : srv;
	ini = wire_wg ? &in_wg : &in;
	ret = wire_wg ? ox_wg_msg_parse(buf, len, &m) : ox_msg_parse(buf, len, &m);
	if (!(data[0] & 1)) {
		if (ret == OX_MSG_INIT) {
			if ((data[0] & 4) && wire_wg)
				ox_wg_mac(buf + OX_INIT_MAC1_OFF, wg_mac1_key, OX_KEY_LEN, buf,
					  OX_INIT_MAC1_OFF);
			else if (data[0] & 4)
				ox_mac(buf + OX_INIT_MAC1_OFF, mac1_key, OX_KEY_LEN, buf,
				       OX_INIT_MAC1_OFF);
			ret = ox_hs_consume_init(s, buf, len, &src, now, data[0] & 2, &r, reply);
			if (ret == 0) {
				if (ox_hs_make_response(s, &r, &pl, 9, now, resp, &kp) != 0)
					abort();
				if ((wire_wg ? ox_wg_msg_parse(resp, ox_hs_response_len(s), &m)
					     : ox_msg_parse(resp, ox_hs_response_len(s), &m)) !=
				    OX_MSG_RESPONSE)
					abort();
			} else if (ret == -OX_DROP_COOKIE_SENT) {
				if ((wire_wg ? ox_wg_msg_parse(reply, sizeof(reply), &m)
					     : ox_msg_parse(reply, sizeof(reply), &m)) !=
				    OX_MSG_COOKIE)
					abort();
			}
		}
	} else {
		ini->pending = true; /* stays waiting whatever comes */
		if (ret == OX_MSG_RESPONSE)
			ox_initiator_consume_response(ini, buf, len, now, &pl, &kp);
		else if (ret == OX_MSG_COOKIE)
			ox_initiator_consume_cookie(ini, buf, len, now);
	}
	free(buf);
	return 0;
}
