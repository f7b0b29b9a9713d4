/*-------------------------------------------------------------------------
 *
 * signals.c
 *		"Is it time to scale?": seven signals over a recent window.
 *
 * A ring of 10-second buckets in shared memory (one hour of them) holds,
 * per bucket: statements finished and failed, their shared-buffer hits and
 * reads, and a latency histogram; and what the background worker
 * "apiscale signals" samples every 10 seconds: CPU and memory use of the
 * machine (Linux /proc/stat and /proc/meminfo) and the number of client
 * backends.  apiscale.report_pool() keeps the latest numbers of each pool
 * a pooler reports.
 *
 * The signals describe the last apiscale.signal_window (5 minutes by
 * default): p95 of every statement finished in it, errors / statements,
 * peak client backends / max_connections, shared-buffer hit rate, mean CPU
 * and memory use, and the highest pool utilization reported in it.  A
 * signal with nothing to measure says "no data".
 *
 * The worker samples on the 10-second grid (at :00, :10, ... of the wall
 * clock), and each sample goes to the bucket of the 10 seconds it measured
 * (the one that just ended), so that a bucket's CPU time and its
 * statements describe the same seconds: apiscale.capacity divides one by
 * the other.  The current bucket has no sample until it ends.
 *
 * The worker also reads the signals after each sample and logs a change of
 * state: one WARNING line when a signal turns to warning, one LOG line
 * when it is back, once the new state has held for a full sample (two
 * consecutive samples), so that alerting on the server log needs nothing
 * more and does not flap.
 *
 * Cost on the hot path: one bucket found by the statement's start time,
 * and four atomic additions (a spinlock only when a bucket is recycled,
 * once per 10 s).  The error path adds two and allocates nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "histogram.h"
#include "library.h"
#include "machine.h"
#include "signals.h"
#include "store.h"

#define SIG_BUCKET_SECS	 10
#define SIG_NBUCKETS	 360 /* one hour */
#define SIG_MAX_POOLS	 32
#define SIG_POOL_NAME	 64
#define SIG_HOLD_SAMPLES 2 /* samples a new state must last to be logged */

typedef struct SigBucket
{
	pg_atomic_uint64 slot; /* 10-s slot number it holds; 0 = empty */
	pg_atomic_uint64 statements;
	pg_atomic_uint64 errors;
	pg_atomic_uint64 blks_hit;
	pg_atomic_uint64 blks_read;
	pg_atomic_uint32 hist[APS_HIST_BUCKETS];
	/* written by the worker, under SigShared.mutex */
	double cpu_sum;	  /* busy % of each sample, summed */
	int	   cpu_n;	  /* samples with a CPU figure */
	uint64 cpu_busy;  /* busy CPU ticks (all CPUs) the samples measured */
	uint64 cpu_total; /* all CPU ticks they measured */
	double mem_sum;
	int	   mem_n;
	int	   backends_max;
	int	   backends_n;
	double pool_pct_max; /* highest pool utilization reported */
	int	   pool_n;		 /* pool reports */
} SigBucket;

typedef struct SigPool
{
	bool		used;
	char		name[SIG_POOL_NAME];
	int			size;
	int			overflow;
	int			in_use;
	int			waiting;
	int64		timeouts;
	TimestampTz at;
} SigPool;

typedef struct SigShared
{
	slock_t		mutex; /* bucket recycling, worker fields, pools, since */
	TimestampTz since; /* start-up or the last reset */
	SigPool		pools[SIG_MAX_POOLS];
	SigBucket	buckets[SIG_NBUCKETS];
} SigShared;

static SigShared *sig = NULL;

PG_FUNCTION_INFO_V1(apiscale_scaling_signals);
PG_FUNCTION_INFO_V1(apiscale_report_pool);
PG_FUNCTION_INFO_V1(apiscale_pool_reports);

/* Empty a bucket's counts (its atomics already initialized). */
static void
clear_bucket(SigBucket *b)
{
	pg_atomic_write_u64(&b->statements, 0);
	pg_atomic_write_u64(&b->errors, 0);
	pg_atomic_write_u64(&b->blks_hit, 0);
	pg_atomic_write_u64(&b->blks_read, 0);
	for (int h = 0; h < APS_HIST_BUCKETS; h++)
		pg_atomic_write_u32(&b->hist[h], 0);
	b->cpu_sum = b->mem_sum = 0;
	b->cpu_n = b->mem_n = b->backends_max = b->backends_n = 0;
	b->cpu_busy = b->cpu_total = 0;
	b->pool_pct_max = 0;
	b->pool_n = 0;
}

void
aps_signals_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SigShared)));
}

void
aps_signals_startup(void)
{
	bool found;

	sig = ShmemInitStruct("apiscale signals", sizeof(SigShared), &found);
	if (!found)
	{
		SpinLockInit(&sig->mutex);
		sig->since = GetCurrentTimestamp();
		memset(sig->pools, 0, sizeof(sig->pools));
		for (int i = 0; i < SIG_NBUCKETS; i++)
		{
			SigBucket *b = &sig->buckets[i];

			pg_atomic_init_u64(&b->slot, 0);
			pg_atomic_init_u64(&b->statements, 0);
			pg_atomic_init_u64(&b->errors, 0);
			pg_atomic_init_u64(&b->blks_hit, 0);
			pg_atomic_init_u64(&b->blks_read, 0);
			for (int h = 0; h < APS_HIST_BUCKETS; h++)
				pg_atomic_init_u32(&b->hist[h], 0);
			clear_bucket(b);
		}
	}
}

/*
 * Register the worker, to be started from the file this copy was loaded
 * from: by the same name, the postmaster's children find this copy already
 * loaded.  By another name ("apiscale" from $libdir while the server
 * preloads a copy elsewhere) a child would load a second copy, whose worker
 * hands over to this one (apiscale_signals_main).  A path too long for
 * bgw_library_name leaves no other choice.
 */
void
aps_signals_register_worker(void)
{
	BackgroundWorker worker;
	const char		*path = aps_library_path();

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name,
			path != NULL && strlen(path) < BGW_MAXLEN ? path : "apiscale",
			BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "apiscale_signals_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "apiscale signals", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "apiscale signals", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

static inline uint64
slot_of(TimestampTz ts)
{
	/* 1 + so that slot 0 means "empty" */
	return 1 + (uint64) (ts / (USECS_PER_SEC * SIG_BUCKET_SECS));
}

/* The bucket of slot, recycled first if it still holds an older slot. */
static SigBucket *
bucket_for(uint64 slot)
{
	SigBucket *b = &sig->buckets[slot % SIG_NBUCKETS];

	if (pg_atomic_read_u64(&b->slot) != slot)
	{
		SpinLockAcquire(&sig->mutex);
		if (pg_atomic_read_u64(&b->slot) < slot)
		{
			clear_bucket(b);
			pg_atomic_write_u64(&b->slot, slot);
		}
		SpinLockRelease(&sig->mutex);
	}
	/* A statement that started before the bucket was recycled is not counted. */
	if (pg_atomic_read_u64(&b->slot) != slot)
		return NULL;
	return b;
}

/* A finished statement, of duration in histogram bucket hist_bucket. */
void
aps_signals_add(TimestampTz started, int hist_bucket, int64 hit, int64 read)
{
	SigBucket *b;

	if (sig == NULL)
		return;
	b = bucket_for(slot_of(started));
	if (b == NULL)
		return;
	pg_atomic_fetch_add_u64(&b->statements, 1);
	pg_atomic_fetch_add_u32(&b->hist[hist_bucket], 1);
	if (hit > 0)
		pg_atomic_fetch_add_u64(&b->blks_hit, (uint64) hit);
	if (read > 0)
		pg_atomic_fetch_add_u64(&b->blks_read, (uint64) read);
}

/* A failed statement.  Safe in PG_CATCH: no allocation, no error. */
void
aps_signals_add_error(void)
{
	SigBucket *b;

	if (sig == NULL)
		return;
	b = bucket_for(slot_of(GetCurrentStatementStartTimestamp()));
	if (b == NULL)
		return;
	pg_atomic_fetch_add_u64(&b->statements, 1);
	pg_atomic_fetch_add_u64(&b->errors, 1);
}

void
aps_signals_reset(void)
{
	if (sig == NULL)
		return;
	SpinLockAcquire(&sig->mutex);
	for (int i = 0; i < SIG_NBUCKETS; i++)
		pg_atomic_write_u64(&sig->buckets[i].slot, 0);
	memset(sig->pools, 0, sizeof(sig->pools));
	sig->since = GetCurrentTimestamp();
	SpinLockRelease(&sig->mutex);
}

/* ---- the worker ---------------------------------------------------- */

/* Client backends right now. */
static int
count_client_backends(void)
{
	int n = 0;
	int all = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= all; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);

		if (l != NULL && l->backendStatus.st_backendType == B_BACKEND)
			n++;
	}
	pgstat_clear_backend_activity_snapshot();
	return n;
}

/* What the previous sample read, to measure the time since. */
typedef struct SigLastSample
{
	TimestampTz at;	 /* 0 before the first sample */
	ApsCpuTimes cpu; /* total 0 if unknown */
} SigLastSample;

/*
 * One sample of the machine and the client backends, into the bucket of
 * the seconds it measured: the middle of the time since the previous
 * sample (on the 10-second grid, the bucket that just ended).  CPU use is
 * the busy share of the CPU ticks since the previous sample.
 */
static void
take_sample(SigLastSample *last)
{
	TimestampTz now = GetCurrentTimestamp();
	ApsCpuTimes cpu;
	bool		has_cpu = aps_machine_cpu_times(&cpu);
	int64		mem_total, mem_avail;
	bool		has_mem = aps_machine_memory(&mem_total, &mem_avail);
	int			backends = count_client_backends();
	TimestampTz measured =
		last->at > 0 && last->at < now ? last->at + (now - last->at) / 2 : now;
	SigBucket *b = bucket_for(slot_of(measured));
	uint64	   busy = 0, total = 0;

	if (has_cpu && last->cpu.total > 0 && cpu.total > last->cpu.total &&
		cpu.busy >= last->cpu.busy)
	{
		busy = cpu.busy - last->cpu.busy;
		total = cpu.total - last->cpu.total;
	}
	last->at = now;
	last->cpu = has_cpu ? cpu : (ApsCpuTimes){0, 0};

	if (b == NULL)
		return;
	SpinLockAcquire(&sig->mutex);
	if (total > 0)
	{
		b->cpu_sum += 100.0 * (double) busy / (double) total;
		b->cpu_n++;
		b->cpu_busy += busy;
		b->cpu_total += total;
	}
	if (has_mem)
	{
		b->mem_sum += 100.0 * (double) (mem_total - mem_avail) / mem_total;
		b->mem_n++;
	}
	b->backends_max = Max(b->backends_max, backends);
	b->backends_n++;
	SpinLockRelease(&sig->mutex);
}

/*
 * What the worker last announced of one signal in the server log, and for
 * how many consecutive samples it has read otherwise.
 */
typedef struct SigAlarm
{
	bool warning; /* announced in warning (a WARNING line was logged) */
	int	 streak;  /* consecutive samples that disagreed with it */
} SigAlarm;

/* A signal's number as the view shows it: at most two decimals. */
static char *
format_value(double value)
{
	char *str = psprintf("%.2f", round(value * 100.0) / 100.0);
	char *end = str + strlen(str) - 1;

	while (*end == '0')
		*end-- = '\0';
	if (*end == '.')
		*end = '\0';
	return str;
}

/*
 * Log the signals that changed state: one WARNING line when a signal turns
 * to warning, one LOG line when it is back.  A new state must be read at
 * SIG_HOLD_SAMPLES consecutive samples (SIG_BUCKET_SECS apart) before it
 * counts, so a signal that crosses its threshold for a moment does not
 * flap.  "No data" counts as not in warning.  Judged against the server's
 * settings (postgresql.conf, ALTER SYSTEM), as the worker reads them.
 */
static void
log_signal_changes(SigAlarm alarms[APS_NSIGNALS])
{
	ApsSignal signals[APS_NSIGNALS];

	aps_signals_read(signals, NULL);
	for (int i = 0; i < APS_NSIGNALS; i++)
	{
		ApsSignal *s = &signals[i];
		SigAlarm  *a = &alarms[i];

		if (s->warning == a->warning)
		{
			a->streak = 0;
			continue;
		}
		if (++a->streak < SIG_HOLD_SAMPLES)
			continue;
		a->warning = s->warning;
		a->streak = 0;
		if (s->warning)
			ereport(WARNING,
					(errmsg("apiscale: %s is %s, %s its threshold %s: %s",
							s->name, format_value(s->value),
							s->above_is_bad ? "above" : "below",
							format_value(s->threshold), s->action)));
		else if (s->has_data)
			ereport(LOG, (errmsg("apiscale: %s is back to %s (threshold %s)",
								 s->name, format_value(s->value),
								 format_value(s->threshold))));
		else
			ereport(LOG, (errmsg("apiscale: %s is back: no data in the "
								 "window (threshold %s)",
								 s->name, format_value(s->threshold))));
	}
}

/*
 * The background worker "apiscale signals": samples the machine and the
 * client backends at once, then on the SIG_BUCKET_SECS grid of the wall
 * clock, each sample into the bucket it measured, then logs the signals
 * that changed state.  Samples keep their cadence: a latch set early (a
 * reload) does not bring the next one forward.
 *
 * Run from a copy of the library that was not preloaded (it has no shared
 * state), it runs the preloaded copy's worker instead.
 */
void
apiscale_signals_main(Datum arg)
{
	SigLastSample last = {0, {0, 0}};
	SigAlarm	  alarms[APS_NSIGNALS];
	TimestampTz	  next;
	MemoryContext sample_cxt;

	if (sig == NULL)
	{
		const ApsLibrary *lib = aps_library_preloaded();

		if (lib == NULL || lib->signals_main == NULL)
			ereport(FATAL,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("apiscale signals worker started without the "
							"shared memory of a preloaded apiscale")));
		lib->signals_main(arg);
		proc_exit(0); /* not reached: the worker loops until it dies */
	}

	next = GetCurrentTimestamp();
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	memset(alarms, 0, sizeof(alarms));
	sample_cxt = AllocSetContextCreate(TopMemoryContext, "apiscale signals",
									   ALLOCSET_SMALL_SIZES);

	for (;;)
	{
		TimestampTz now;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		if (now >= next)
		{
			MemoryContext old = MemoryContextSwitchTo(sample_cxt);

			take_sample(&last);
			log_signal_changes(alarms);
			MemoryContextSwitchTo(old);
			MemoryContextReset(sample_cxt);

			/* The next boundary of the grid. */
			next = (now / (SIG_BUCKET_SECS * USECS_PER_SEC) + 1) *
				   (SIG_BUCKET_SECS * USECS_PER_SEC);
		}

		wait_ms = (long) ((next - now + 999) / 1000);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(wait_ms, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- reading ------------------------------------------------------- */

typedef struct SigWindow
{
	uint64		 statements, errors, hit, read;
	ApsHistogram hist;
	double		 cpu_sum, mem_sum, pool_pct_max;
	int			 cpu_n, mem_n, backends_max, backends_n, pool_n;
	uint64		 cpu_busy, cpu_total; /* CPU ticks the samples measured */
	uint64		 cpu_statements;	  /* statements of the buckets measured */
	TimestampTz	 start;				  /* of the oldest bucket read */
	TimestampTz	 since;				  /* start-up or the last reset */
} SigWindow;

/* When the bucket of slot begins. */
static inline TimestampTz
slot_start(uint64 slot)
{
	return (TimestampTz) (slot - 1) * USECS_PER_SEC * SIG_BUCKET_SECS;
}

static void
read_window(SigWindow *w, int seconds)
{
	uint64 now = slot_of(GetCurrentTimestamp());
	/* The current (partial) bucket and enough whole ones for the window. */
	int n = Min(SIG_NBUCKETS - 1,
				(seconds + SIG_BUCKET_SECS - 1) / SIG_BUCKET_SECS) +
			1;

	memset(w, 0, sizeof(*w));
	w->start = slot_start(now >= (uint64) n ? now - (n - 1) : 1);
	SpinLockAcquire(&sig->mutex);
	w->since = sig->since;
	SpinLockRelease(&sig->mutex);
	for (int i = 0; i < n && now > (uint64) i; i++)
	{
		uint64	   slot = now - i;
		SigBucket *b = &sig->buckets[slot % SIG_NBUCKETS];

		if (pg_atomic_read_u64(&b->slot) != slot)
			continue;
		w->statements += pg_atomic_read_u64(&b->statements);
		w->errors += pg_atomic_read_u64(&b->errors);
		w->hit += pg_atomic_read_u64(&b->blks_hit);
		w->read += pg_atomic_read_u64(&b->blks_read);
		for (int h = 0; h < APS_HIST_BUCKETS; h++)
		{
			uint64 sum =
				(uint64) w->hist.counts[h] + pg_atomic_read_u32(&b->hist[h]);

			w->hist.counts[h] = (uint32) Min(sum, (uint64) PG_UINT32_MAX);
		}
		SpinLockAcquire(&sig->mutex);
		w->cpu_sum += b->cpu_sum;
		w->cpu_n += b->cpu_n;
		w->mem_sum += b->mem_sum;
		w->mem_n += b->mem_n;
		w->backends_max = Max(w->backends_max, b->backends_max);
		w->backends_n += b->backends_n;
		w->pool_pct_max = Max(w->pool_pct_max, b->pool_pct_max);
		w->pool_n += b->pool_n;
		if (b->cpu_total > 0)
		{
			w->cpu_busy += b->cpu_busy;
			w->cpu_total += b->cpu_total;
			w->cpu_statements += pg_atomic_read_u64(&b->statements);
		}
		SpinLockRelease(&sig->mutex);
	}
}

/* Fill one signal; it warns past its threshold, only with data. */
static void
set_signal(ApsSignal *sig_out, const char *name, double value, bool has_data,
		   double threshold, bool above_is_bad, const char *action)
{
	sig_out->name = name;
	sig_out->action = action;
	sig_out->value = has_data ? value : 0;
	sig_out->threshold = threshold;
	sig_out->above_is_bad = above_is_bad;
	sig_out->has_data = has_data;
	sig_out->warning =
		has_data && (above_is_bad ? value > threshold : value < threshold);
}

/*
 * The seven signals over the last apiscale.signal_window, judged against
 * this process's apiscale.warn_* settings, in a fixed order; and, when
 * window is not NULL, the window's statement counts and histogram.
 */
void
aps_signals_read(ApsSignal signals[APS_NSIGNALS], ApsSignalWindow *window)
{
	SigWindow w;
	int		  i = 0;

	read_window(&w, aps_signal_window);

	set_signal(&signals[i++], "p95_response_time_ms",
			   aps_hist_percentile(&w.hist, 0.95, 0, DBL_MAX),
			   w.statements > w.errors, aps_warn_p95_ms, true,
			   "profile slow endpoints, add caching");
	set_signal(&signals[i++], "error_rate_pct",
			   w.statements > 0 ? 100.0 * w.errors / w.statements : 0,
			   w.statements > 0, aps_warn_error_rate_pct, true,
			   "investigate error logs immediately");
	set_signal(&signals[i++], "connection_utilization_pct",
			   MaxConnections > 0 ? 100.0 * w.backends_max / MaxConnections
								  : 0,
			   w.backends_n > 0 && MaxConnections > 0, aps_warn_connection_pct,
			   true, "increase pool size or add read replicas");
	set_signal(&signals[i++], "pool_utilization_pct", w.pool_pct_max,
			   w.pool_n > 0, aps_warn_pool_pct, true,
			   "increase pool size or add read replicas");
	set_signal(&signals[i++], "cache_hit_rate_pct",
			   w.hit + w.read > 0 ? 100.0 * w.hit / (w.hit + w.read) : 0,
			   w.hit + w.read > 0, aps_warn_cache_hit_pct, false,
			   "add memory / raise shared_buffers");
	set_signal(&signals[i++], "cpu_usage_pct",
			   w.cpu_n > 0 ? w.cpu_sum / w.cpu_n : 0, w.cpu_n > 0,
			   aps_warn_cpu_pct, true, "upgrade the server or add servers");
	set_signal(&signals[i++], "memory_usage_pct",
			   w.mem_n > 0 ? w.mem_sum / w.mem_n : 0, w.mem_n > 0,
			   aps_warn_memory_pct, true, "check for memory leaks, add RAM");
	Assert(i == APS_NSIGNALS);

	if (window != NULL)
	{
		window->seconds = aps_signal_window;
		window->statements = w.statements;
		window->errors = w.errors;
		window->hist = w.hist;
	}
}

/*
 * The machine and the statements over the last apiscale.signal_window, for
 * apiscale.capacity.
 */
void
aps_signals_capacity(ApsCapacityWindow *cw)
{
	SigWindow	w;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz from;

	read_window(&w, aps_signal_window);
	from = Max(w.start, w.since);
	memset(cw, 0, sizeof(*cw));
	cw->seconds = aps_signal_window;
	cw->covered_s = Max(0.0, (double) (now - from) / USECS_PER_SEC);
	cw->statements = w.statements;
	cw->cpu_busy_ticks = w.cpu_busy;
	cw->cpu_total_ticks = w.cpu_total;
	cw->cpu_statements = w.cpu_statements;
	cw->has_memory = w.mem_n > 0;
	cw->memory_used_pct = w.mem_n > 0 ? w.mem_sum / w.mem_n : 0;
	cw->has_backends = w.backends_n > 0;
	cw->backends_max = w.backends_max;
}

/*
 * Execution time, in ms, of the clients' statements that started at or
 * after from (to the bucket: the whole bucket from falls in) and finished,
 * estimated from the buckets' histograms (each duration at the middle of
 * its histogram bucket: within 3.125%).  At most the last hour.
 */
double
aps_signals_time_ms(TimestampTz from)
{
	uint64 now = slot_of(GetCurrentTimestamp());
	uint64 first = slot_of(from);
	double us = 0;

	if (sig == NULL)
		return 0;
	for (int i = 0; i < SIG_NBUCKETS - 1 && now > (uint64) i; i++)
	{
		uint64	   slot = now - i;
		SigBucket *b = &sig->buckets[slot % SIG_NBUCKETS];

		if (slot < first)
			break;
		if (pg_atomic_read_u64(&b->slot) != slot)
			continue;
		for (int h = 0; h < APS_HIST_BUCKETS; h++)
		{
			uint32 c = pg_atomic_read_u32(&b->hist[h]);

			if (c > 0)
				us += c * aps_hist_bucket_middle_us(h);
		}
	}
	return us / 1000.0;
}

/*
 * apiscale.scaling_signals_internal(): the seven signals.
 */
Datum
apiscale_scaling_signals(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ApsSignal	   signals[APS_NSIGNALS];

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	aps_signals_read(signals, NULL);

	for (int i = 0; i < APS_NSIGNALS; i++)
	{
		ApsSignal *s = &signals[i];
		Datum	   values[5];
		bool	   nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(s->name);
		if (s->has_data)
			values[1] = Float8GetDatum(round(s->value * 100.0) / 100.0);
		else
			nulls[1] = true;
		values[2] = Float8GetDatum(s->threshold);
		values[3] = CStringGetTextDatum(!s->has_data ? "no data"
										: s->warning ? "warning"
													 : "ok");
		values[4] = CStringGetTextDatum(s->action);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}

/*
 * apiscale.pool_reports_internal(): the latest report of each pool.
 */
Datum
apiscale_pool_reports(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SigPool		   pools[SIG_MAX_POOLS];

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	SpinLockAcquire(&sig->mutex);
	memcpy(pools, sig->pools, sizeof(pools));
	SpinLockRelease(&sig->mutex);
	for (int i = 0; i < SIG_MAX_POOLS; i++)
	{
		SigPool *p = &pools[i];
		Datum	 values[7];
		bool	 nulls[7] = {false, false, false, false, false, false, false};

		if (!p->used)
			continue;
		values[0] = CStringGetTextDatum(p->name);
		values[1] = Int32GetDatum(p->size);
		values[2] = Int32GetDatum(p->overflow);
		values[3] = Int32GetDatum(p->in_use);
		values[4] = Int32GetDatum(p->waiting);
		values[5] = Int64GetDatum(p->timeouts);
		values[6] = TimestampTzGetDatum(p->at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}

/*
 * apiscale.report_pool(pool, size, overflow, in_use, waiting, timeouts):
 * a pooler's latest numbers.
 */
Datum
apiscale_report_pool(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			size = PG_GETARG_INT32(1);
	int			overflow = PG_GETARG_INT32(2);
	int			in_use = PG_GETARG_INT32(3);
	int			waiting = PG_GETARG_INT32(4);
	int64		timeouts = PG_GETARG_INT64(5);
	TimestampTz now = GetCurrentTimestamp();
	int			slot = -1;

	aps_store_check_ready();
	if (size < 0 || in_use < 0 || waiting < 0 || timeouts < 0 || overflow < -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pool numbers must not be negative"),
				 errdetail("overflow may be -1 (no limit); size, in_use, "
						   "waiting and timeouts must be zero or more.")));
	if (overflow >= 0 && (double) in_use > (double) size + overflow)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("in_use (%d) is more than size + overflow (%d + %d)",
						in_use, size, overflow)));

	if (strlen(name) == 0 || strlen(name) >= SIG_POOL_NAME)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pool name must have 1 to %d bytes",
							   SIG_POOL_NAME - 1)));

	SpinLockAcquire(&sig->mutex);
	for (int i = 0; i < SIG_MAX_POOLS; i++)
		if (sig->pools[i].used && strcmp(sig->pools[i].name, name) == 0)
			slot = i;
	/* A new pool takes a free slot, else the one reported longest ago. */
	for (int i = 0; i < SIG_MAX_POOLS && slot < 0; i++)
		if (!sig->pools[i].used)
			slot = i;
	if (slot < 0)
	{
		slot = 0;
		for (int i = 1; i < SIG_MAX_POOLS; i++)
			if (sig->pools[i].at < sig->pools[slot].at)
				slot = i;
	}
	sig->pools[slot].used = true;
	strlcpy(sig->pools[slot].name, name, SIG_POOL_NAME);
	sig->pools[slot].size = size;
	sig->pools[slot].overflow = overflow;
	sig->pools[slot].in_use = in_use;
	sig->pools[slot].waiting = waiting;
	sig->pools[slot].timeouts = timeouts;
	sig->pools[slot].at = now;
	SpinLockRelease(&sig->mutex);

	/*
	 * The signal is the peak over the window: each bucket keeps the highest
	 * utilization reported in it.  With no overflow limit (-1) the pool's
	 * size is the reference (over 100% means connections beyond it).
	 */
	{
		double	   cap = (double) size + (overflow > 0 ? overflow : 0);
		double	   pct = cap > 0 ? 100.0 * in_use / cap : 0;
		SigBucket *b = bucket_for(slot_of(now));

		if (b != NULL && cap > 0)
		{
			SpinLockAcquire(&sig->mutex);
			b->pool_pct_max = Max(b->pool_pct_max, pct);
			b->pool_n++;
			SpinLockRelease(&sig->mutex);
		}
	}
	PG_RETURN_VOID();
}
