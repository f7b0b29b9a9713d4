/*-------------------------------------------------------------------------
 *
 * library.c
 *		Which file this copy of apiscale was loaded from, and which copy
 *		was preloaded.
 *
 * A process can hold two copies of apiscale: the one
 * shared_preload_libraries loaded (which created the shared memory and
 * installed the hooks), and another file loaded by name later, when that
 * name leads elsewhere: the signals worker's library name, or the SQL
 * functions' $libdir/apiscale, while the server preloads a copy outside
 * $libdir (a build directory) or a file since replaced by a reinstall.  The
 * second copy's static state is empty: it never ran the shared-memory
 * start-up.  The library is linked with -Bsymbolic, so that each copy calls
 * its own functions and sees its own state, never half of each.
 *
 * The preloaded copy names its own file as the worker's library (the
 * postmaster's children then find it already loaded, by that name), and
 * announces itself in a rendezvous variable, which a second copy reads to
 * hand the worker over or to say, in an error, what was loaded from where.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>

#include "fmgr.h"

#include "library.h"

#define APS_RENDEZVOUS "apiscale preloaded library"

/* What the preloaded copy announces; in that copy's static storage. */
static ApsLibrary preloaded;

/*
 * The file this copy was loaded from, as it was given to dlopen() (the
 * name the dynamic loader of PostgreSQL keeps), or NULL if unknown.
 */
const char *
aps_library_path(void)
{
	Dl_info info;

	if (dladdr((void *) aps_library_path, &info) == 0 ||
		info.dli_fname == NULL)
		return NULL;
	return info.dli_fname;
}

/*
 * Announce this copy as the preloaded one.  Called from _PG_init in the
 * postmaster, before any child is started: the children inherit both the
 * rendezvous variable and this copy.
 */
void
aps_library_publish(bgworker_main_type signals_main)
{
	const char *path = aps_library_path();

	strlcpy(preloaded.path, path ? path : "?", sizeof(preloaded.path));
	preloaded.signals_main = signals_main;
	*find_rendezvous_variable(APS_RENDEZVOUS) = &preloaded;
}

/* The preloaded copy of this process, or NULL if there is none. */
const ApsLibrary *
aps_library_preloaded(void)
{
	return (const ApsLibrary *) *find_rendezvous_variable(APS_RENDEZVOUS);
}
