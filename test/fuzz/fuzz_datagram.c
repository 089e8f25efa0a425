/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: lib/oxtunnel's datagram path. The first byte picks
 *  0: a received datagram: clear-field parse, probe reply, DATA open
 *     against a peer with fixed keys (receiver index 1);
 *  1: a plaintext: sealed with the sender's keys, so it opens, then walked
 *     as an inner BATCH (what the relay does after decryption).
 * Inputs are copied into exact-size buffers so ASan sees any overrun.
 */
#include <stdlib.h>
#include <string.h>

#include "ox_tunnel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ox_aead *aead;
static struct ox_peer rx;     /* what mode 0 feeds */
static struct ox_peer rx_own; /* mode 1's own receiver: counters of its own */
static struct ox_keypair tx;

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
	ox_keypair_init(&kp, k40, k80, 1, 1, 1, false);
	ox_peer_init(&rx);
	ox_peer_install(&rx, &kp, true);
	ox_peer_init(&rx_own);
	ox_peer_install(&rx_own, &kp, true);
	/* The sender's keys are the receiver's, swapped. */
	tx = kp;
	memcpy(tx.send_key, kp.recv_key, OX_KEY_LEN);
	memcpy(tx.recv_key, kp.send_key, OX_KEY_LEN);
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
	size_t len;
	int r;

	if (aead == NULL)
		setup();
	if (size < 1)
		return 0;
	len = size - 1;
	if (data[0] & 1) {
		if (len > OX_MAX_PLAINTEXT)
			return 0;
		buf = malloc(len + OX_DATA_OVERHEAD);
		if (buf == NULL)
			return 0;
		memcpy(buf + OX_DATA_HDR_LEN, data + 1, len);
		r = ox_data_seal(aead, &tx, buf, len, 2);
		if (r != (int)(len + OX_DATA_OVERHEAD))
			abort();
		r = ox_peer_open(aead, &rx_own, buf, (size_t)r, 2);
		if (r != (int)len || memcmp(buf + OX_DATA_HDR_LEN, data + 1, len) != 0)
			abort();
		walk_batch(buf + OX_DATA_HDR_LEN, len);
		free(buf);
		return 0;
	}
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	r = ox_msg_parse(buf, len, &m);
	if (r == OX_MSG_PROBE) {
		if (ox_probe_reply(buf, len) != (int)len)
			abort();
	} else if (r == OX_MSG_DATA) {
		r = ox_peer_open(aead, &rx, buf, len, 2);
		if (r > (int)len)
			abort();
		if (r >= 0)
			walk_batch(buf + OX_DATA_HDR_LEN, (size_t)r);
	}
	free(buf);
	return 0;
}
