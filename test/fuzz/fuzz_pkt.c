/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: lib/pkt's outer frame parser, and the reply built from
 * whatever it accepts. The input is copied into an exact-size buffer so a
 * read or write past the frame is caught by ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ox_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ox_pkt p, q;
	uint16_t old_w, new_w;
	uint8_t *buf;
	int r;

	if (size < 2)
		return 0;
	/* First two bytes choose the port, so the fuzzer can reach the end. */
	buf = malloc(size - 2 ? size - 2 : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 2, size - 2);
	r = ox_pkt_parse(buf, (uint32_t)(size - 2), (uint16_t)(data[0] << 8 | data[1]), &p);
	if (r == 0) {
		/* Whatever the bytes, the checksum check only tells a form or
		 * refuses. */
		r = ox_pkt_csum_check(&p);
		if (r < 0 && r != -OX_PKT_DROP_BAD_UDP_CSUM)
			abort();
		if (p.payload_off + (uint32_t)p.payload_len > size - 2 || p.frame_len > size - 2)
			abort();
		ox_pkt_reply(&p);
		if (p.payload_len >= 4) {
			memcpy(&old_w, buf + p.payload_off + 2, 2);
			buf[p.payload_off + 3] ^= 1;
			memcpy(&new_w, buf + p.payload_off + 2, 2);
			ox_pkt_csum_update(&p, old_w, new_w);
		}
		/* A reply of an accepted frame must itself be valid. */
		if (ox_pkt_parse(buf, p.frame_len, 0, &q) != 0)
			abort();
	} else if (r <= -OX_PKT_DROP_MAX || r == 0) {
		abort();
	}
	free(buf);
	return 0;
}
