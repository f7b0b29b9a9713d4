/*
 * check.h
 *		The one assertion macro of the C unit tests: counts checks and
 *		failures instead of stopping at the first.
 */
#ifndef APS_CHECK_H
#define APS_CHECK_H

#include <stdio.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                           \
	do                                                                        \
	{                                                                         \
		checks++;                                                             \
		if (!(cond))                                                          \
		{                                                                     \
			failures++;                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
					#cond);                                                   \
		}                                                                     \
	} while (0)

#endif /* APS_CHECK_H */
