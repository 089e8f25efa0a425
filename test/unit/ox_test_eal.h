/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TEST_EAL_H
#define OX_TEST_EAL_H
/* EAL for unit tests that need DPDK's libraries but no device: no
 * hugepages, no PCI, no telemetry, no shared files, a prefix of their own. */
#include <stdio.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

/*
 * Start EAL on lcores LCORES ("0", "0-1") with MB megabytes.
 * @return 0, or 77 (skip) with the reason printed.
 */
static inline int
ox_test_eal_init(const char *argv0, const char *name, const char *lcores, const char *mb)
{
	/* Static: EAL may keep pointers into its arguments. */
	static char prefix[32], a0[256], l[16], m[16];
	static char a1[] = "--no-huge", a2[] = "-m", a4[] = "--no-pci", a5[] = "--file-prefix",
		    a6[] = "--no-telemetry", a7[] = "-l", a9[] = "--log-level",
		    a10[] = "lib.eal:error", a11[] = "--no-shconf";
	static char *eal[] = { a0, a1, a2, m, a4, a5, prefix, a6, a7, l, a9, a10, a11, NULL };

	snprintf(a0, sizeof(a0), "%s", argv0);
	snprintf(l, sizeof(l), "%s", lcores);
	snprintf(m, sizeof(m), "%s", mb);
	snprintf(prefix, sizeof(prefix), "%s%d", name, (int)getpid());
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal) < 0) {
		printf("SKIP: EAL cannot start here: %s\n", rte_strerror(rte_errno));
		return 77;
	}
	return 0;
}

#endif /* OX_TEST_EAL_H */
