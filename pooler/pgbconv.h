/*
 * pgbconv.h
 *		apiscale-pooler --from-pgbouncer: a pgbouncer.ini as apiscale's
 *		configuration.
 */
#ifndef APS_PGBCONV_H
#define APS_PGBCONV_H

#include <stdbool.h>
#include <stdio.h>

/*
 * Read the pgbouncer.ini at path, write the equivalent apiscale
 * configuration to out, and a warning to warn for every key it cannot
 * carry.  False (with an error on warn) if the file cannot be read, or if
 * what it says cannot be said safely in apiscale's terms.
 */
extern bool pgbconv_convert(const char *path, FILE *out, FILE *warn)
	__attribute__((warn_unused_result));

#endif /* APS_PGBCONV_H */
