/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TEST_UTIL_H
#define OX_TEST_UTIL_H
/* Helpers of the lib/oxtunnel tests. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* Decode lowercase or uppercase hex; returns the byte count or -1. */
static inline int
hex_decode(uint8_t *out, size_t cap, const char *hex)
{
	size_t n;

	if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &n, NULL) != 0)
		return -1;
	return (int)n;
}

/* xorshift64*: reproducible test randomness. */
static inline uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

#endif /* OX_TEST_UTIL_H */
