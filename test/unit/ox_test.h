/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TEST_H
#define OX_TEST_H
/* The checks of the table-driven unit tests: EXPECT counts and reports a
 * failure and goes on; ox_test_finish() prints the verdict. */
#include <stdio.h>

static int ox_test_failures;

#define EXPECT(cond, ...) do { \
	if (!(cond)) { \
		ox_test_failures++; \
		printf("FAIL %s:%d: ", __FILE__, __LINE__); \
		printf(__VA_ARGS__); \
		printf("\n"); \
	} \
} while (0)

/* Exit status for main(): 0 if every check held. */
static inline int
ox_test_finish(const char *name)
{
	if (ox_test_failures) {
		printf("%s: %d failure(s)\n", name, ox_test_failures);
		return 1;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}

#endif /* OX_TEST_H */
