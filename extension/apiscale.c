/*-------------------------------------------------------------------------
 *
 * apiscale.c
 *		Entry point of the apiscale extension.
 *
 * apiscale watches every statement through the executor hooks and answers,
 * in SQL, which queries are slow (with percentiles and the plan of slow
 * runs) and what to do about it.  It must be loaded through
 * shared_preload_libraries: its statistics live in shared memory.
 *
  * Files: guc.c (parameters), hooks.c (observation), store.c (shared memory
 * and its locking rules), errors.c (failed statements, as the client sees
 * them), histogram.c (latency percentiles), antipattern.c
 * (SELECT *, unbounded results, OFFSET, N+1), signals.c (scaling signals
 * and their background worker), metrics.c (the same and the top
 * statements as Prometheus text), normalize.c
 * (query text), sqlfuncs.c (views), advisor.c (index evidence from
 * finished plans), evidence.c (its shared table), advice.c (candidates and
 * verdicts), hypo.c (hypothetical indexes and re-planning), compat.h
 * (version differences), writes.c (rows written per table, for the
 * write cost of an index), machine.c (the machine's CPUs and memory),
 * cache.c (caching evidence of read statements) and cache_advice.c
 * (apiscale.cache_advice), library.c (the file this copy was loaded from,
 * and the preloaded copy).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"

#include "advisor.h"
#include "cache.h"
#include "compat.h"
#include "errors.h"
#include "evidence.h"
#include "guc.h"
#include "hooks.h"
#include "library.h"
#include "signals.h"
#include "store.h"
#include "writes.h"

PG_MODULE_MAGIC;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

void _PG_init(void);

static void
aps_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	aps_store_request();
	aps_evidence_request();
	aps_signals_request();
	aps_writes_request();
	aps_errors_request();
	aps_cache_request();
}

static void
aps_shmem_startup(void)
{
	if (prev_shmem_startup)
		prev_shmem_startup();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	aps_store_startup();
	aps_evidence_startup();
	aps_signals_startup();
	aps_writes_startup();
	aps_errors_startup();
	aps_cache_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Module load.  Without shared_preload_libraries there is no shared memory
 * to use: we install nothing, and the SQL functions say why.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	aps_define_gucs();

	/* Other copies of the library, loaded by another name, defer to us. */
	aps_library_publish(apiscale_signals_main);

	/* We need query ids even when compute_query_id = auto. */
	EnableQueryId();

	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = aps_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = aps_shmem_startup;

	aps_install_hooks();
	aps_errors_install();
	aps_hypo_install();
	aps_signals_register_worker();
}
