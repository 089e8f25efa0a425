/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * OxTunnel v2 at the relay's seam (relay_proto.h): "OX" datagrams, lib/oxtunnel
 * for every byte. Its DATA plaintexts start with a kind byte: KEEPALIVE
 * (answered with an ACK), DISCONNECT, BATCH, CONFIG_REQUEST (answered with
 * a CONFIG: --dns), or the first byte of an inner IP packet. Its response carries the client's
 * addresses, MTU and keepalive.
 */
#include <string.h>

#include "relay.h"

static int
oxt_classify(const struct srv_relay *r, const uint8_t *d, uint16_t len, uint32_t *index)
{
	struct ox_msg msg;

	return relay_classify(ox_msg_parse(d, len, &msg), &msg, d, len, ox_init_check_mac1,
			      r->mac1_key, index);
}

static int
oxt_opened(uint8_t *d, uint16_t n, uint16_t *pt_off, uint16_t *pt_len)
{
	uint8_t *pt = d + OX_DATA_HDR_LEN;

	*pt_off = OX_DATA_HDR_LEN;
	*pt_len = n;
	if (n == 0)
		return RELAY_OPEN_EMPTY;
	switch (pt[0]) {
	case OX_INNER_KEEPALIVE:
		if (n > 1 + OX_KEEPALIVE_MAX_ECHO)
			return -OX_DROP_BAD_INNER;
		/* The ACK echoes the KEEPALIVE's bytes. */
		pt[0] = OX_INNER_ACK;
		return RELAY_OPEN_REPLY;
	case OX_INNER_DISCONNECT:
		return RELAY_OPEN_END;
	case OX_INNER_BATCH:
		return RELAY_OPEN_BATCH;
	case OX_INNER_CONFIG_REQUEST:
		/* A later client may say more after the kind: ignored. */
		if (n > 1 + OX_KEEPALIVE_MAX_ECHO)
			return -OX_DROP_BAD_INNER;
		return RELAY_OPEN_CONFIG;
	default:
		return RELAY_OPEN_PACKET;
	}
}

/* The CONFIG answering a CONFIG_REQUEST: --dns, parsed at start. */
static uint16_t
oxt_config(const struct srv_relay *r, uint8_t *pt)
{
	return (uint16_t)ox_config_put(&r->config, pt);
}

static int
oxt_hs_respond(struct srv_relay *r, struct ox_hs_server *hs, struct ox_responder *resp,
	       const struct ox_tunnel_addr *addr, uint32_t index, uint64_t now, uint8_t *out,
	       struct ox_keypair *kp)
{
	struct ox_hs_payload pl;
	int ret;

	memset(&pl, 0, sizeof(pl));
	pl.v4 = addr->v4;
	memcpy(pl.v6, addr->v6, 16);
	pl.v4_prefix = r->srv->pool_conf.v4_prefix;
	pl.v6_prefix = r->srv->pool_conf.v6_prefix;
	pl.mtu = r->srv->conf.mtu;
	pl.keepalive_s = r->srv->conf.keepalive;
	ret = ox_hs_respond_step(hs, resp, &pl, index, now, out, kp);
	return ret < 0 ? -OX_DROP_CRYPTO : ret == 1 ? 0 : OX_RESPONSE_LEN;
}

const struct relay_proto relay_proto_oxtunnel = {
	.name = "oxtunnel",
	.data_hdr_len = OX_DATA_HDR_LEN,
	.data_tail_max = OX_TAG_LEN,
	.passive_keepalive = false, /* clients ask with KEEPALIVE, the relay ACKs */
	.match = ox_match,
	.classify = oxt_classify,
	.opened = oxt_opened,
	.next_packet = ox_batch_next,
	.config = oxt_config,
	.hs_consume = relay_hs_consume,
	.hs_respond = oxt_hs_respond,
};
