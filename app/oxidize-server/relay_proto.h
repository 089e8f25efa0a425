/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef SRV_RELAY_PROTO_H
#define SRV_RELAY_PROTO_H
/*
 * The seam between a wire protocol and the relay.
 *
 * The relay knows sessions, owners, endpoints, other clients and the exit;
 * a protocol knows its bytes. A datagram to the port reaches the first
 * protocol whose match() takes its first bytes, and classify() says what it
 * is: a handshake message for the control thread (the cheap, stateless
 * checks done on the worker), or a DATA for the session of a receiver
 * index. On the session's owner the relay opens the DATA in place (in
 * stages over a burst, the same for every protocol), and opened() says what
 * it held: nothing to pass on, one inner packet, several, a reply to seal
 * back, or the end of the session. Any lcore seals for a session, in a
 * burst, the same for every protocol (its send key knows the wire); the
 * handshake engines judge and answer handshakes with hs_consume() and
 * hs_respond().
 *
 * A second wire protocol adds one file that fills a struct relay_proto and
 * one line in relay_protos[] (relay.c); nothing else branches on it.
 */
#include <stdbool.h>
#include <stdint.h>

#include "ox_addrpool.h"
#include "ox_tunnel.h"

struct srv_relay;
struct ox_session;

/* What classify() found. */
enum relay_msg {
	RELAY_MSG_HANDSHAKE = 1, /* for the control thread */
	RELAY_MSG_DATA = 2,	 /* for the session of *index */
};

/* What opened() found in an authenticated DATA. */
enum relay_open {
	RELAY_OPEN_EMPTY = 0,  /* nothing to pass on (key confirmation) */
	RELAY_OPEN_PACKET = 1, /* one inner IP packet */
	RELAY_OPEN_BATCH = 2,  /* several, walked with next_packet() */
	RELAY_OPEN_REPLY = 3,  /* a control reply, sealed back to the session */
	RELAY_OPEN_END = 4,    /* the client ends the session */
	RELAY_OPEN_CONFIG = 5, /* the client asks for its settings: config() */
};

struct relay_proto {
	const char *name;
	/* Bytes in front of a sealed plaintext, and at most behind it. */
	uint16_t data_hdr_len;
	uint16_t data_tail_max;
	/* The relay sends an empty DATA (opened() of it: RELAY_OPEN_EMPTY) to a
	 * session that sent packets and heard nothing back for
	 * PASSIVE_KEEPALIVE_NS, as a WireGuard responder does. */
	bool passive_keepalive;

	/* Worker: are these the first bytes of one of this protocol's messages? */
	bool (*match)(const uint8_t *d, size_t len);
	/* Worker: an enum relay_msg (with *index for DATA) or -OX_DROP_*. */
	int (*classify)(const struct srv_relay *r, const uint8_t *d, uint16_t len, uint32_t *index);
	/*
	 * Owner: what a DATA at d held, now that the relay opened it in place
	 * (ox_peer_open_prep/_done around one AEAD burst, the same for every
	 * protocol: the keypair knows its wire): n plaintext bytes at
	 * d + data_hdr_len. An enum relay_open, the plaintext to pass on at
	 * d + *pt_off, *pt_len bytes (may be rewritten in place); or -OX_DROP_*.
	 */
	int (*opened)(uint8_t *d, uint16_t n, uint16_t *pt_off, uint16_t *pt_len);
	/* Owner: the plaintext answering RELAY_OPEN_CONFIG written at pt (room
	 * for OX_CONFIG_MAX bytes): @return its length. NULL for a protocol
	 * whose opened() never asks. */
	uint16_t (*config)(const struct srv_relay *r, uint8_t *pt);
	/* Owner: the next packet of a RELAY_OPEN_BATCH plaintext (ox_batch_next());
	 * NULL for a protocol without batches. */
	int (*next_packet)(const uint8_t *pt, size_t len, size_t *off, const uint8_t **pkt,
			   size_t *pkt_len);
	/*
	 * A handshake engine: judge a handshake message from src with its own
	 * server of this protocol. 0: accepted, *resp filled; a positive
	 * length: an answer (a cookie reply) written over msg, to go back as it
	 * is; or -OX_DROP_*.
	 */
	int (*hs_consume)(struct srv_relay *r, struct ox_hs_server *hs, uint8_t *msg, uint16_t len,
			  const struct ox_src *src, uint64_t now, struct ox_responder *resp);
	/*
	 * A handshake engine: the response to an accepted handshake, giving the
	 * client addr and receiver index, written at out; the keypair for the
	 * session's owner. One X25519 a call (ox_hs_respond_step), the same
	 * arguments each time. @return the response's length, 0 to be called
	 * again, or -OX_DROP_*.
	 */
	int (*hs_respond)(struct srv_relay *r, struct ox_hs_server *hs, struct ox_responder *resp,
			  const struct ox_tunnel_addr *addr, uint32_t index, uint64_t now,
			  uint8_t *out, struct ox_keypair *kp);
};

/*
 * What both protocols' classify() do with a parsed message (an enum
 * ox_msg_type or a drop): DATA goes to its receiver index, an INIT whose
 * mac1 holds (check_mac1 under key) to the control thread, the rest is
 * unexpected at a server (relay_rx.c).
 */
int relay_classify(int type, const struct ox_msg *msg, const uint8_t *d, uint16_t len,
		   int (*check_mac1)(const uint8_t key[OX_KEY_LEN], const uint8_t *pkt, size_t len),
		   const uint8_t key[OX_KEY_LEN], uint32_t *index);

/* hs_consume() over an ox_hs_server: a cookie reply is written over msg
 * (relay_hs.c). */
int relay_hs_consume(struct srv_relay *r, struct ox_hs_server *hs, uint8_t *msg, uint16_t len,
		     const struct ox_src *src, uint64_t now, struct ox_responder *resp);

/* The protocols, in the order match() is asked (relay.c). */
#define RELAY_PROTO_MAX 2
extern const struct relay_proto *const relay_protos[RELAY_PROTO_MAX];

/* proto_oxtunnel.c, proto_wireguard.c */
extern const struct relay_proto relay_proto_oxtunnel;
extern const struct relay_proto relay_proto_wireguard;

/* The protocol whose message d starts, as its index in relay_protos[], or -1. */
static inline int
relay_proto_find(const uint8_t *d, uint16_t len)
{
	int i;

	for (i = 0; i < RELAY_PROTO_MAX; i++)
		if (relay_protos[i]->match(d, len))
			return i;
	return -1;
}

#endif /* SRV_RELAY_PROTO_H */
