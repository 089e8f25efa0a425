/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: lib/oxtunnel's datagram path. The first byte's bit 0 picks
 *  0: a received datagram: clear-field parse, probe reply, DATA open
 *     against a peer with fixed keys (receiver index 1);
 *  1: a plaintext: sealed with the sender's keys, so it opens, then walked
 *     as an inner BATCH (what the relay does after decryption);
 * bit 1 picks WireGuard's wire instead of OxTunnel's (its parse, and DATA
 * padded to 16 bytes with no associated data).
 * Inputs are copied into exact-size buffers so ASan sees any overrun.
 */
#include <stdlib.h>
#include <string.h>

#include "ox_tunnel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ox_aead *aead;
/* [wire]: what mode 0 feeds, mode 1's own receiver, the sender */
static struct ox_peer rx[2];
static struct ox_peer rx_own[2];
static struct ox_keypair tx[2];

static void
setup(void)
{
	struct ox_keypair kp;
	uint8_t k40[OX_KEY_LEN], k80[OX_KEY_LEN];
	int i;

	aead = ox_aead_create(OX_AEAD_OPENSSL);
	if (aead == NULL)
		abort();
	for (i = 0; i < OX_KEY_LEN; i++) {
		k40[i] = (uint8_t)(0x40 + i);
		k80[i] = (uint8_t)(0x80 + i);
	}
	for (i = 0; i < 2; i++) {
		ox_keypair_init(&kp, k40, k80, 1, 1, 1, false);
		kp.wire = (uint8_t)(i ? OX_WIRE_WIREGUARD : OX_WIRE_OXTUNNEL);
		ox_peer_init(&rx[i]);
		ox_peer_install(&rx[i], &kp, true);
		ox_peer_init(&rx_own[i]);
		ox_peer_install(&rx_own[i], &kp, true);
		/* The sender's keys are the receiver's, swapped. */
		ox_keypair_init(&tx[i], k80, k40, 1, 1, 1, false);
		tx[i].wire = kp.wire;
	}
}

static void
walk_batch(const uint8_t *p, size_t len)
{
	const uint8_t *pkt;
	size_t off = 0, plen, total = 0;
	int r;

	while ((r = ox_batch_next(p, len, &off, &pkt, &plen)) == 1) {
		if (pkt < p || pkt + plen > p + len)
			abort();
		total += plen;
	}
	if (r == 0 && total > len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ox_msg m;
	uint8_t *buf;
	size_t len, padded;
	int r, w;

	if (aead == NULL)
		setup();
	if (size < 1)
		return 0;
	len = size - 1;
	w = (data[0] >> 1) & 1;
	if (data[0] & 1) {
		if (len > OX_MAX_PLAINTEXT)
			return 0;
		padded = w ? (len + OX_WG_PAD - 1) / OX_WG_PAD * OX_WG_PAD : len;
		if (padded > OX_MAX_PLAINTEXT)
			padded = OX_MAX_PLAINTEXT;
		buf = malloc(padded + OX_DATA_OVERHEAD);
		if (buf == NULL)
			return 0;
		memcpy(buf + OX_DATA_HDR_LEN, data + 1, len);
		r = ox_data_seal(aead, &tx[w], buf, len, 2);
		if (r != (int)(padded + OX_DATA_OVERHEAD))
			abort();
		r = ox_peer_open(aead, &rx_own[w], buf, (size_t)r, 2);
		if (r != (int)padded || memcmp(buf + OX_DATA_HDR_LEN, data + 1, len) != 0)
			abort();
		walk_batch(buf + OX_DATA_HDR_LEN, len);
		free(buf);
		return 0;
	}
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	r = w ? ox_wg_msg_parse(buf, len, &m) : ox_msg_parse(buf, len, &m);
	if (r == OX_MSG_PROBE) {
		if (ox_probe_reply(buf, len) != (int)len)
			abort();
	} else if (r == OX_MSG_DATA) {
		r = ox_peer_open(aead, &rx[w], buf, len, 2);
		if (r > (int)len)
			abort();
		if (r >= 0)
			walk_batch(buf + OX_DATA_HDR_LEN, (size_t)r);
	}
	free(buf);
	return 0;
}
