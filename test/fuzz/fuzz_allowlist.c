/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the allow-list parser (and, through it, base64 keys and
 * address literals). Every accepted list is checked to be sorted, unique
 * and findable; a reload over it must carry its entries' state.
 */
#include <stdlib.h>
#include <string.h>

#include "ox_tunnel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ox_allowlist al, again;
	char err[256];
	char *text;
	uint32_t i;

	text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	if (ox_allowlist_parse(&al, text, size, NULL, 1000, err, sizeof(err)) == 0) {
		for (i = 0; i < al.n; i++) {
			if (i > 0 && memcmp(al.e[i - 1].key, al.e[i].key, OX_KEY_LEN) >= 0)
				abort();
			if (ox_allowlist_find(&al, al.e[i].key) != &al.e[i])
				abort();
			al.e[i].last_init[0] = (uint8_t)(i + 1);
		}
		if (ox_allowlist_parse(&again, text, size, &al, 1000, err, sizeof(err)) != 0)
			abort();
		for (i = 0; i < again.n; i++)
			if (again.e[i].last_init[0] != (uint8_t)(i + 1))
				abort();
		ox_allowlist_free(&again);
		ox_allowlist_free(&al);
	} else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
		abort(); /* every refusal says why */
	}
	free(text);
	return 0;
}
