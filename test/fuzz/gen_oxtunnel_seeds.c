/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes the seed corpora of the lib/oxtunnel fuzz targets (datagram,
 * handshake, allowlist) with the same fixed keys the targets use:
 *   gen-oxtunnel-seeds OUT_DIR   (creates OUT_DIR/{datagram,handshake,allowlist})
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "ox_tunnel_private.h"

static const char *out;

static void
put(const char *target, const char *name, uint8_t sel, const void *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", out, target, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	if (sel != 0xff)
		fputc(sel, f);
	fwrite(p, 1, len, f);
	fclose(f);
}

static void
fixed_key(uint8_t k[OX_KEY_LEN], uint8_t base)
{
	for (int i = 0; i < OX_KEY_LEN; i++)
		k[i] = (uint8_t)(base + i);
}

/* A datagram seed: plain sealed with kp (its counter moves on). */
static void
put_sealed(struct ox_aead *a, struct ox_keypair *kp, const char *name, int sel, const void *plain,
	   size_t plen)
{
	static uint8_t pkt[2048];
	int len;

	memcpy(pkt + OX_DATA_HDR_LEN, plain, plen);
	len = ox_data_seal(a, kp, pkt, plen, 2);
	if (len < 0)
		exit(1);
	put("datagram", name, sel, pkt, (size_t)len);
}

int
main(int argc, char **argv)
{
	uint8_t spriv[32], spub[32], cpriv[32], cpub[32], pkt[2048], init[OX_INIT_LEN];
	uint8_t ts[12] = { 0x40, 0, 0, 0, 0x60, 0, 0, 0, 0, 0, 0, 1 };
	char b64[OX_KEY_B64_LEN + 1], b64c[OX_KEY_B64_LEN + 1], text[1024];
	struct ox_initiator in;
	struct ox_keypair kp;
	struct ox_batch b;
	struct ox_aead *a;
	uint8_t inner[60], k40[OX_KEY_LEN], k80[OX_KEY_LEN], batch[1024];

	if (argc != 2 || sodium_init() < 0)
		return 2;
	out = argv[1];
	mkdir(out, 0755);
	a = ox_aead_create(OX_AEAD_SODIUM);

	/* datagram: the sender's keys of fuzz_datagram.c */
	for (int i = 0; i < OX_KEY_LEN; i++) {
		k80[i] = (uint8_t)(0x80 + i);
		k40[i] = (uint8_t)(0x40 + i);
	}
	ox_keypair_init(&kp, k80, k40, 1, 1, 1, false);
	memset(inner, 0x45, sizeof(inner));
	ox_batch_init(&b, batch, sizeof(batch));
	ox_batch_add(&b, inner, 20);
	ox_batch_add(&b, inner, 60);
	put_sealed(a, &kp, "data-batch", 0, batch, ox_batch_finish(&b));
	put_sealed(a, &kp, "data-ip", 0, inner, 60);
	put_sealed(a, &kp, "data-keepalive", 0, inner, 0);
	put("datagram", "probe", 0, "OXPIprobe-payload", 17);
	put("datagram", "v1", 0, "OX\x09\0\0\0\0\x10\0control-payload", 25);
	put("datagram", "init-shaped", 0, "OX\x82\x01", 4);
	ox_batch_init(&b, pkt, 1024);
	ox_batch_add(&b, inner, 20);
	ox_batch_add(&b, inner, 40);
	put("datagram", "plain-batch", 1, pkt, ox_batch_finish(&b));
	put("datagram", "plain-ip", 1, inner, sizeof(inner));
	/* the same under WireGuard's wire (selector bit 1) */
	kp.wire = OX_WIRE_WIREGUARD;
	put_sealed(a, &kp, "wg-data-ip", 2, inner, 60);
	put_sealed(a, &kp, "wg-keepalive", 2, inner, 0);
	put("datagram", "wg-init-shaped", 2, "\x01\0\0\0", 4);
	put("datagram", "wg-plain-ip", 3, inner, 53);

	/* handshake: the fixed keys of fuzz_handshake.c */
	fixed_key(spriv, 0x01);
	fixed_key(cpriv, 0x21);
	ox_key_public(spub, spriv);
	ox_key_public(cpub, cpriv);
	ox_initiator_init(&in, cpriv, spub);
	ox_initiator_begin(&in, 7, ts, 1, init);
	put("handshake", "init", 0, init, sizeof(init));
	put("handshake", "init-remac", 4, init, sizeof(init));
	put("handshake", "init-load", 2, init, sizeof(init));
	put("handshake", "init-load-remac", 6, init, sizeof(init));
	memset(pkt, 0, OX_RESPONSE_LEN);
	ox_put_hdr(pkt, OX_MSG_RESPONSE);
	ox_put_le32(pkt + 4, 7);
	put("handshake", "response-shaped", 1, pkt, OX_RESPONSE_LEN);
	memset(pkt, 0, OX_COOKIE_LEN);
	ox_put_hdr(pkt, OX_MSG_COOKIE);
	ox_put_le32(pkt + 4, 7);
	put("handshake", "cookie-shaped", 1, pkt, OX_COOKIE_LEN);
	/* WireGuard's (selector bit 3) */
	ox_initiator_init_wire(&in, OX_WIRE_WIREGUARD, cpriv, spub, NULL);
	ox_initiator_begin(&in, 7, ts, 1, init);
	put("handshake", "wg-init", 8, init, sizeof(init));
	put("handshake", "wg-init-remac", 12, init, sizeof(init));
	put("handshake", "wg-init-load", 10, init, sizeof(init));
	memset(pkt, 0, OX_WG_RESPONSE_LEN);
	pkt[0] = OX_MSG_RESPONSE;
	ox_put_le32(pkt + 4, 9);
	ox_put_le32(pkt + 8, 7);
	put("handshake", "wg-response-shaped", 9, pkt, OX_WG_RESPONSE_LEN);
	memset(pkt, 0, OX_COOKIE_LEN);
	pkt[0] = OX_MSG_COOKIE;
	ox_put_le32(pkt + 4, 7);
	put("handshake", "wg-cookie-shaped", 9, pkt, OX_COOKIE_LEN);

	/* allowlist */
	ox_key_to_base64(b64, spub);
	ox_key_to_base64(b64c, cpub);
	snprintf(text, sizeof(text),
		 "# clients\n%s alice 100.64.0.5 fd6f:7869:647a::5\n"
		 "%s bob # note\n\n",
		 b64, b64c);
	put("allowlist", "two", 0xff, text, strlen(text));
	snprintf(text, sizeof(text), "%s\r\n", b64);
	put("allowlist", "crlf", 0xff, text, strlen(text));
	snprintf(text, sizeof(text), "%s carol psk=%s 100.64.0.9\n", b64, b64c);
	put("allowlist", "psk", 0xff, text, strlen(text));
	snprintf(text, sizeof(text), "%s 100.64.0.7\n%s 100.64.0.7\n", b64, b64c);
	put("allowlist", "dup-addr", 0xff, text, strlen(text));
	ox_aead_free(a);
	ox_initiator_wipe(&in);
	return 0;
}
