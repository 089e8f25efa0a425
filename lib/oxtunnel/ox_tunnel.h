/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TUNNEL_H
#define OX_TUNNEL_H
/**
 * @file
 * OxTunnel v2: framing, Noise IK handshake, per-packet AEAD, replay window,
 * rekey limits and handshake DoS defences. The normative description is
 * doc/oxtunnel.md; every constant below is named there.
 *
 * Pure C11 on libsodium and OpenSSL libcrypto, no DPDK: the server calls it
 * on mbuf data in place, the standard-UDP client links it too.
 *
 * Functions that judge untrusted bytes return a length or message type
 * (>= 0) or a negative enum ox_drop, so the caller counts the drop under
 * its name. Functions that set things up return 0 or -errno.
 *
 * Threading: see each structure. In short, the handshake objects (struct
 * ox_hs_server, ox_initiator, ox_responder, ox_allowlist) have one writer, the
 * control thread; a keypair's send side is safe from any number of threads
 * (atomic counter), its receive side (replay window) has one writer.
 *
 * One header per concept: ox_wire.h (framing, keys), ox_aead.h, ox_data.h
 * (keypairs, replay, DATA), ox_allowlist.h (and timestamps), ox_handshake.h,
 * ox_rng.h (random bytes for handshakes);
 * this one includes them all.
 */
#include "ox_aead.h"
#include "ox_allowlist.h"
#include "ox_data.h"
#include "ox_handshake.h"
#include "ox_rng.h"
#include "ox_wire.h"

#endif /* OX_TUNNEL_H */
