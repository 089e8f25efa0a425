/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_TEST_H
#define OX_TEST_H
/* The checks of the table-driven unit tests: EXPECT counts and reports a
 * failure and goes on; ox_test_finish() prints the verdict. */
#include <stdio.h>

static int ox_test_failures;
static const char *ox_test_skipped; /* why a part could not run, or NULL */

/* A part of the test cannot run here: the whole test reports skipped (77)
 * unless something failed, never passed. */
#define SKIP_PART(...) \
	do { \
		static char ox_skip_why_[256]; \
		snprintf(ox_skip_why_, sizeof(ox_skip_why_), __VA_ARGS__); \
		printf("SKIP: %s\n", ox_skip_why_); \
		ox_test_skipped = ox_skip_why_; \
	} while (0)

#define EXPECT(cond, ...) \
	do { \
		if (!(cond)) { \
			ox_test_failures++; \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

/* Exit status for main(): 1 if a check failed, else 77 if a part was
 * skipped, else 0. */
static inline int
ox_test_finish(const char *name)
{
	if (ox_test_failures) {
		printf("%s: %d failure(s)\n", name, ox_test_failures);
		return 1;
	}
	if (ox_test_skipped != NULL) {
		printf("%s: every check that ran passed; skipped: %s\n", name, ox_test_skipped);
		return 77;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}

#endif /* OX_TEST_H */
