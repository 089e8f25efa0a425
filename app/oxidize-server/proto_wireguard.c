/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * WireGuard at the relay's seam (relay_proto.h): a type byte 1..4 and three
 * zero bytes, lib/oxtunnel's handshake and data path with the WireGuard
 * wire (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, BLAKE2s MACs, padded DATA
 * with an empty AD). The relay is the responder only: clients sit behind
 * NAT and initiate and rekey on their own timers. A DATA plaintext is an
 * inner IP packet (its padding goes with the IP length) or, empty, a
 * keepalive; a response carries no addresses: a WireGuard peer is
 * configured with the ones the relay gives its key.
 */
#include <string.h>

#include "relay.h"

static int
wg_classify(const struct srv_relay *r, const uint8_t *d, uint16_t len, uint32_t *index)
{
	struct ox_msg msg;

	return relay_classify(ox_wg_msg_parse(d, len, &msg), &msg, d, len, ox_wg_init_check_mac1,
			      r->wg_mac1_key, index);
}

static int
wg_opened(uint8_t *d, uint16_t n, uint16_t *pt_off, uint16_t *pt_len)
{
	(void)d;
	*pt_off = OX_DATA_HDR_LEN;
	*pt_len = n;
	/* Empty: a keepalive, or the first DATA confirming new keys. */
	return n == 0 ? RELAY_OPEN_EMPTY : RELAY_OPEN_PACKET;
}

static int
wg_hs_respond(struct srv_relay *r, struct ox_hs_server *hs, struct ox_responder *resp,
	      const struct ox_tunnel_addr *addr, uint32_t index, uint64_t now, uint8_t *out,
	      struct ox_keypair *kp)
{
	int ret;

	(void)r;
	(void)addr;
	ret = ox_hs_respond_step(hs, resp, NULL, index, now, out, kp);
	return ret < 0 ? -OX_DROP_CRYPTO : ret == 1 ? 0 : OX_WG_RESPONSE_LEN;
}

const struct relay_proto relay_proto_wireguard = {
	.name = "wireguard",
	.data_hdr_len = OX_DATA_HDR_LEN,
	.data_tail_max = OX_TAG_LEN + OX_WG_PAD - 1,
	/* Without it a peer that only sends hears nothing for 15 s and
	 * handshakes again. */
	.passive_keepalive = true,
	.match = ox_wg_match,
	.classify = wg_classify,
	.opened = wg_opened,
	.next_packet = NULL, /* no BATCH in WireGuard */
	.hs_consume = relay_hs_consume,
	.hs_respond = wg_hs_respond,
};
