/*
 * fuzz.h
 *		What the libFuzzer targets share: the entry point and the check
 *		that turns a broken invariant into a crash.
 */
#ifndef APS_FUZZ_H
#define APS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define lengthof(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A broken invariant aborts: libFuzzer saves the input that did it (see
 * run.sh for where) and the run fails.  The message names the check.
 */
#define FUZZ_CHECK(cond)                                                      \
	do                                                                        \
	{                                                                         \
		if (!(cond))                                                          \
		{                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,        \
					__LINE__, #cond);                                         \
			abort();                                                          \
		}                                                                     \
	} while (0)

extern int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* APS_FUZZ_H */
