/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		Parser, executor and utility hooks: where statements are observed.
 *
 * Pipeline, per statement:
 *	post_parse_analyze	make sure the statement has an entry, with its
 *						normalized text (best made here, where the jumbler's
 *						constant locations are known); tell errors.c which
 *						statement of the client's query string is being
 *						processed (until it ends), for the text of a failure
 *	planner				track nesting: a function the planner runs (a STABLE
 *						one folded for an estimate) runs nested statements
 *	ExecutorStart		track nesting (initial partition pruning runs
 *						functions); attach a per-query state, which keeps the
 *						nesting level the execution started at; ask for
 *						per-node row counts (and timers if plan_timing) on
 *						sampled runs of statements that may turn slow, and
 *						for a query-level timer on every tracked run; count
 *						a statement refused as it starts (permission denied)
 *	ExecutorRun/Finish	track nesting; add up rows per run; count errors and
 *						cancellations on the way out of a failed run; on a
 *						read statement's sampled run, hash the result rows
 *						on their way to the client (cache.c's receiver)
 *	ExecutorEnd			add the run to its entry; keep the EXPLAIN ANALYZE
 *						text if the run was slow; on sampled runs whose plan
 *						may show a missing index, walk the plan for index
 *						evidence (advisor.c); add a read statement's run to
 *						its caching evidence (cache.c); count the rows an
 *						INSERT, UPDATE, DELETE or MERGE wrote (writes.c)
 *	ProcessUtility		track nesting for statements run by utility commands
 *						(DO, CALL, EXPLAIN, CREATE TABLE AS, ...), and the
 *						utility's place in the query string; count the rows
 *						COPY FROM loaded and the tables TRUNCATE emptied
 *
 * Failed statements: a failed execution counts in its entry's errors
 * here.  That the client's statement failed is counted once, in the
 * signals and in apiscale.errors, by errors.c, from the error the client
 * gets, whatever stage failed (parse, analysis, planning, execution); only
 * a backend without a client (a background worker) has its failed
 * top-level executions counted in the signals here instead.  For the text
 * of a failure, errors.c learns of each top-level statement at its parse
 * analysis, and of its end at the top-level ExecutorEnd or when a
 * top-level utility command returns.
 *
 * Every hook chains to the previous one.  Nesting depth is restored with
 * PG_FINALLY / PG_CATCH, so an error never leaves it wrong.  Parallel
 * workers are ignored: the leader accounts for the whole statement.
 *
 * A tracked execution has an ApsQueryState allocated in its executor memory
 * context; a reset callback on that context unlinks it, so the list of
 * active states never outlives the executions, whether they end normally or
 * by an error.  Whether an execution is a client's statement (level 0) is
 * decided at ExecutorStart and kept there: a statement a function started
 * can end, or fail, while nesting_level is back at 0 (a lazily evaluated SQL
 * function stopped early by its caller, a cursor closed at COMMIT).
 *
 * Cost on the fast path: one query-level Instrumentation (two clock reads
 * per ExecutorRun call), one PG_TRY (sigsetjmp) per planner call and per
 * executor hook, and one shared-lock lookup plus a spinlock at ExecutorEnd.
 * Per-node row counting (no clock reads) is added on sampled runs of
 * statements that are new to this backend or have come within half of
 * slow_query_ms; a statement that has always been fast does without.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/transam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "advisor.h"
#include "antipattern.h"
#include "cache.h"
#include "compat.h"
#include "errors.h"
#include "evidence.h"
#include "guc.h"
#include "hooks.h"
#include "hypo.h"
#include "normalize.h"
#include "signals.h"
#include "store.h"
#include "writes.h"

/*
 * Whether an execution counts rows per plan node (for the EXPLAIN ANALYZE
 * text of a slow run), and if not, why not.
 */
typedef enum ApsNodeCounts
{
	APS_NODES_COUNTED,	   /* per-node row counts (and timers) asked for */
	APS_NODES_NOT_NEEDED,  /* no plan will be captured anyway */
	APS_NODES_NOT_SAMPLED, /* left out by apiscale.sample_rate */
	APS_NODES_FAST_SO_FAR  /* always ran in under half of slow_query_ms */
} ApsNodeCounts;

/* What we know about one tracked execution. */
typedef struct ApsQueryState
{
	dlist_node	  node;		 /* in active_queries */
	QueryDesc	 *queryDesc; /* the execution */
	ApsKey		  key;		 /* its entry, with the user of ExecutorStart */
	int			  level;  /* nesting level at ExecutorStart; 0: a client's */
	uint64		  rows;	  /* es_processed summed over ExecutorRun calls */
	ApsNodeCounts counts; /* per-node row counting, or why not */
	bool		  advise; /* walk the finished plan for index evidence */
	bool		  read;	  /* a read statement, for the cache advice */
	bool		  write_txn;  /* its transaction had written when it began */
	ApsCacheDest *cache_dest; /* hashes this run's result, or NULL */
	MemoryContextCallback forget; /* unlinks us with the executor memory */
} ApsQueryState;

/* Saved hook values */
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static planner_hook_type			prev_planner = NULL;
static ExecutorStart_hook_type		prev_ExecutorStart = NULL;
static ExecutorRun_hook_type		prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type		prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type		prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type		prev_ProcessUtility = NULL;

/* Current nesting depth of planner, executor and utility calls */
static int nesting_level = 0;

/* Is the current top-level statement sampled for per-node instrumentation? */
static bool current_sampled = false;

/* Tracked executions in progress (a handful at most: nesting, cursors) */
static dlist_head active_queries = DLIST_STATIC_INIT(active_queries);

/*
 * The innermost utility statement being processed: statements it runs
 * (EXPLAIN's, COPY's) share its query string but carry no location of
 * their own.
 */
static const char *utility_source = NULL;
static int		   utility_location = -1;
static int		   utility_len = 0;

/* Prototypes */
static void			aps_post_parse_analyze(ParseState *pstate, Query *query,
										   JumbleState *jstate);
static PlannedStmt *aps_planner(Query *parse, const char *query_string,
								int cursorOptions, ParamListInfo boundParams);
static void			aps_ExecutorStart(QueryDesc *queryDesc, int eflags);
static void aps_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
							uint64 count, bool execute_once);
static void aps_ExecutorFinish(QueryDesc *queryDesc);
static void aps_ExecutorEnd(QueryDesc *queryDesc);
static void aps_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							   bool					 readOnlyTree,
							   ProcessUtilityContext context,
							   ParamListInfo		 params,
							   QueryEnvironment *queryEnv, DestReceiver *dest,
							   QueryCompletion *qc);

/*
 * Install the hooks.  Called once from _PG_init.
 */
void
aps_install_hooks(void)
{
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = aps_post_parse_analyze;
	prev_planner = planner_hook;
	planner_hook = aps_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = aps_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = aps_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = aps_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = aps_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = aps_ProcessUtility;
}

/* Are statements at this nesting level tracked right now? */
static inline bool
tracking(int level)
{
	return aps_enabled && aps_store_ready() && !IsParallelWorker() &&
		   !aps_replanning && (level == 0 || aps_track == APS_TRACK_ALL);
}

/* Decide, once per top-level statement, whether it is sampled. */
static inline void
decide_sampling(void)
{
	current_sampled =
		aps_sample_rate >= 1.0 ||
		(aps_sample_rate > 0.0 && aps_random_fraction() < aps_sample_rate);
}

static inline void
make_key(ApsKey *key, uint64 queryid)
{
	key->userid = GetUserId();
	key->dbid = MyDatabaseId;
	key->queryid = queryid;
}

/* Where the statement's text is, with the enclosing utility's bounds. */
static inline void
make_text_source(ApsTextSource *src, const char *source, int location, int len,
				 const JumbleState *jstate)
{
	if (source == utility_source && location <= 0 && len <= 0)
	{
		location = utility_location;
		len = utility_len;
	}
	src->source = source;
	src->location = location;
	src->len = len;
	src->jstate = jstate;
}

static void
query_state_forget(void *arg)
{
	dlist_delete(&((ApsQueryState *) arg)->node);
}

/* The state of a tracked execution, or NULL if it is not tracked. */
static ApsQueryState *
query_state(QueryDesc *queryDesc)
{
	dlist_iter iter;

	dlist_foreach(iter, &active_queries)
	{
		ApsQueryState *qs = dlist_container(ApsQueryState, node, iter.cur);

		if (qs->queryDesc == queryDesc)
			return qs;
	}
	return NULL;
}

/*
 * When rows being written now are written: the client's statement's start
 * (no clock read), or for a statement a function runs (whose statement
 * start is its caller's, perhaps a long procedure's) the time now.
 */
static inline TimestampTz
write_time(void)
{
	return nesting_level == 0 ? GetCurrentStatementStartTimestamp()
							  : GetCurrentTimestamp();
}

/*
 * post_parse_analyze: create the entry with the normalized text while the
 * constant locations are at hand.
 */
static void
aps_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	ApsKey		  key;
	ApsTextSource src;

	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);

	if (nesting_level == 0)
		aps_errors_statement(pstate->p_sourcetext, query->stmt_location,
							 query->stmt_len);

	if (!tracking(nesting_level) || query->utilityStmt != NULL ||
		query->queryId == UINT64CONST(0) || jstate == NULL)
		return;

	/* Where a read statement's constants are, for its cache key. */
	if (query->commandType == CMD_SELECT)
		aps_cache_note_parse(pstate->p_sourcetext, query->stmt_location,
							 query->queryId, jstate);

	make_key(&key, query->queryId);
	if (aps_store_known(&key, NULL, NULL))
		return;
	make_text_source(&src, pstate->p_sourcetext, query->stmt_location,
					 query->stmt_len, jstate);
	aps_store_ensure(&key, &src);
}

/*
 * planner: statements a function runs while the planner folds it (a STABLE
 * function evaluated for a selectivity estimate) are nested in the
 * statement being planned, not statements of the client.
 */
static PlannedStmt *
aps_planner(Query *parse, const char *query_string, int cursorOptions,
			ParamListInfo boundParams)
{
	PlannedStmt *result;

	nesting_level++;
	PG_TRY();
	{
		if (prev_planner)
			result =
				prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions,
									  boundParams);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
	return result;
}

/*
 * Count a failed execution of key's statement, started at nesting level
 * level, in its entry.  A client's statement that fails is counted in the
 * signals by errors.c, as its error reaches the client (so once, and not
 * when a function catches the error); a backend without a client counts
 * its failed top-level executions here.  Called from PG_CATCH: must not
 * throw.
 */
static void
count_failure(const ApsKey *key, int level)
{
	aps_store_record_error(key);
	if (level == 0 && !aps_errors_reach_client())
		aps_signals_add_error();
}

/*
 * ExecutorStart: choose the instrumentation, make sure the entry exists so
 * that a failure can be counted without creating anything, and attach our
 * state.  A statement refused here (ExecCheckRTPerms' "permission denied")
 * failed: it is counted, and as it gets no state, nothing counts it again.
 */
static void
aps_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	int	 level = nesting_level;
	bool track = tracking(nesting_level) &&
				 queryDesc->plannedstmt->queryId != UINT64CONST(0) &&
				 (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0;
	ApsNodeCounts  counts = APS_NODES_NOT_NEEDED;
	ApsQueryState *qs;
	MemoryContext  oldcxt;
	ApsKey		   key;
	bool		   known = false;
	bool		   fast = false;
	bool		   cached = false;
	bool		   advise = false;

	if (nesting_level == 0)
		decide_sampling();

	/*
	 * Per-node row counts cost a little on every row, so a statement that
	 * has always been far from slow (in this backend's memory) does without:
	 * should it turn slow, that run keeps an estimated plan and the next
	 * ones are counted.
	 */
	if (track)
	{
		make_key(&key, queryDesc->plannedstmt->queryId);
		known = aps_store_known(&key, &fast, &cached);
		if (!aps_capture_plans || aps_slow_query_ms < 0)
			counts = APS_NODES_NOT_NEEDED;
		else if (!current_sampled)
			counts = APS_NODES_NOT_SAMPLED;
		else if (fast)
			counts = APS_NODES_FAST_SO_FAR;
		else
			counts = APS_NODES_COUNTED;
	}

	/*
	 * The index advisor counts rows per node on sampled runs whose plan
	 * could show a missing index (a scan that throws rows away, of a table
	 * that is not known to be small), or only looks at the finished plan
	 * (see advisor.c).
	 */
	if (track && current_sampled && aps_index_advisor)
	{
		int wants = aps_advisor_plan_wants(queryDesc->plannedstmt);

		advise = wants != 0;
		if (wants & APS_ADVISE_COUNT)
		{
			queryDesc->instrument_options |= INSTRUMENT_ROWS;
			if (counts == APS_NODES_FAST_SO_FAR)
				counts = APS_NODES_COUNTED;
		}
	}

	if (counts == APS_NODES_COUNTED)
	{
		queryDesc->instrument_options |= INSTRUMENT_ROWS;
		if (aps_plan_timing)
			queryDesc->instrument_options |= INSTRUMENT_TIMER;
	}

	if (track && !known)
	{
		ApsTextSource src;

		make_text_source(&src, queryDesc->sourceText,
						 queryDesc->plannedstmt->stmt_location,
						 queryDesc->plannedstmt->stmt_len, NULL);
		aps_store_ensure(&key, &src);
	}

	/*
	 * Functions run at start-up (initial partition pruning) run nested
	 * statements.
	 */
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);
	}
	PG_CATCH();
	{
		nesting_level--;
		if (track)
			count_failure(&key, level);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;

	if (!track)
		return;

	oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
	/* A query-level timer and buffer counter. */
	if (queryDesc->totaltime == NULL)
		queryDesc->totaltime = InstrAlloc(1, INSTRUMENT_ALL, false);
	qs = palloc0(sizeof(ApsQueryState));
	qs->queryDesc = queryDesc;
	qs->key = key;
	qs->level = level;
	qs->counts = counts;
	qs->advise = advise;
	/* A read statement with caching evidence: hash this run's result? */
	qs->read = aps_cache_is_read(queryDesc->plannedstmt);
	if (qs->read)
	{
		/* Before it runs: FOR UPDATE takes a transaction id of its own. */
		qs->write_txn = TransactionIdIsValid(GetTopTransactionIdIfAny());
		if (cached && aps_cache_sample_run())
			qs->cache_dest = aps_cache_dest_create();
	}
	qs->forget.func = query_state_forget;
	qs->forget.arg = qs;
	MemoryContextRegisterResetCallback(queryDesc->estate->es_query_cxt,
									   &qs->forget);
	dlist_push_head(&active_queries, &qs->node);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Count a failed run of queryDesc.  Called from PG_CATCH: must not throw.
 */
static void
count_error(QueryDesc *queryDesc)
{
	ApsQueryState *qs = query_state(queryDesc);

	/*
	 * The key of ExecutorStart: an error leaves a SECURITY DEFINER
	 * function's user in place until the transaction aborts.
	 */
	if (qs != NULL)
		count_failure(&qs->key, qs->level);
}

static void
aps_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				bool execute_once)
{
	ApsQueryState *qs = query_state(queryDesc);
	/* A sampled run's rows pass through cache.c's receiver. */
	bool hashing = qs != NULL && qs->cache_dest != NULL &&
				   aps_cache_dest_begin(qs->cache_dest, queryDesc, count);

	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_CATCH();
	{
		nesting_level--;
		if (hashing)
			aps_cache_dest_end(qs->cache_dest, queryDesc, count);
		count_error(queryDesc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
	if (hashing)
		aps_cache_dest_end(qs->cache_dest, queryDesc, count);

	/* es_processed counts this run only (a portal may run many times). */
	if (qs != NULL)
		qs->rows += queryDesc->estate->es_processed;
}

static void
aps_ExecutorFinish(QueryDesc *queryDesc)
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		nesting_level--;
		count_error(queryDesc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
}

/*
 * EXPLAIN (ANALYZE when rows were counted per node) of a finished run, as text in
 * the current memory context.
 */
static char *
explain_run(QueryDesc *queryDesc, ApsNodeCounts counts, int *len)
{
	ExplainState *es = NewExplainState();
	bool		  analyzed = (counts == APS_NODES_COUNTED);

	es->analyze = analyzed;
	es->timing =
		analyzed && (queryDesc->instrument_options & INSTRUMENT_TIMER) != 0;
	es->summary = false;
	es->format = EXPLAIN_FORMAT_TEXT;

	ExplainBeginOutput(es);
	ExplainPrintPlan(es, queryDesc);
	if (analyzed)
		ExplainPrintTriggers(es, queryDesc);
	ExplainEndOutput(es);

	if (counts == APS_NODES_NOT_SAMPLED)
		appendStringInfoString(
			es->str,
			"\n(run not sampled by apiscale.sample_rate: estimates only)");
	else if (counts == APS_NODES_FAST_SO_FAR)
		appendStringInfoString(
			es->str, "\n(first slow run of a statement that had always run in "
					 "under half of apiscale.slow_query_ms: estimates only; "
					 "its next runs count rows per node)");

	/* No trailing newline. */
	while (es->str->len > 0 && es->str->data[es->str->len - 1] == '\n')
		es->str->data[--es->str->len] = '\0';

	*len = es->str->len;
	return es->str->data;
}

/*
 * Keep the plan of a slow run.  EXPLAIN looks things up in the catalogs,
 * and a lookup can fail (a function dropped by the statement itself): such
 * a failure must not turn the application's successful statement into an
 * error.  Outside parallel mode the EXPLAIN runs in a subtransaction that
 * is rolled back on error, releasing whatever it held; in parallel mode
 * (no subtransactions) the error is caught and dropped, as EXPLAIN's
 * failures are catalog lookups that hold nothing.  Either way a failure
 * only costs the plan, with a LOG line in the server log (not sent to the
 * application's client).
 */
static void
save_slow_plan(QueryDesc *queryDesc, const ApsKey *key, ApsNodeCounts counts)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		  subxact = !IsInParallelMode();
	MemoryContext plancxt = queryDesc->estate->es_query_cxt;

	if (subxact)
	{
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
	}

	PG_TRY();
	{
		char *plan;
		int	  len;

		MemoryContextSwitchTo(plancxt);
		plan = explain_run(queryDesc, counts, &len);
		MemoryContextSwitchTo(oldcxt);
		aps_store_save_plan(key, plan, len);

		if (subxact)
		{
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (subxact)
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		ereport(
			LOG,
			(errmsg("apiscale could not capture the plan of a slow run: %s",
					edata->message),
			 errhidestmt(true)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * ExecutorEnd: add the finished run to its entry.
 */
static void
aps_ExecutorEnd(QueryDesc *queryDesc)
{
	ApsQueryState *qs = query_state(queryDesc);

	if (qs != NULL && aps_enabled)
	{
		ApsKey			 key = qs->key; /* the user may differ by now */
		ApsExecution	 exec;
		ApsTextSource	 src;
		Instrumentation *total = queryDesc->totaltime;
		ApsRecorded		 rec;
		bool			 cached = false;

		/* Make sure the totals are final (this does not end the run). */
		InstrEndLoop(total);

		exec.duration_ms = total->total * 1000.0;
		exec.hist_bucket = aps_hist_bucket(exec.duration_ms);
		exec.rows = qs->rows;
		exec.shared_blks_hit = total->bufusage.shared_blks_hit;
		exec.shared_blks_read = total->bufusage.shared_blks_read;
		exec.slow = aps_slow_query_ms >= 0 &&
					exec.duration_ms >= (double) aps_slow_query_ms;
		exec.started = GetCurrentStatementStartTimestamp();
		exec.ended = exec.slow ? GetCurrentTimestamp() : 0;
		exec.unbounded = aps_result_unbounded(queryDesc);
		exec.offset_skipped = aps_offset_skipped(queryDesc);
		exec.nplus1_runs =
			aps_n_plus_one_calls > 0
				? aps_nplus1_count(queryDesc, key.queryid, qs->rows)
				: 0;

		make_text_source(&src, queryDesc->sourceText,
						 queryDesc->plannedstmt->stmt_location,
						 queryDesc->plannedstmt->stmt_len, NULL);
		aps_store_record(&key, &exec, &src, &rec);
		/*
		 * The signals count the statements clients send: the level is the
		 * one the execution started at, as a statement a function started
		 * may end at the client's level (a lazily evaluated SQL function
		 * stopped early ends in its caller's ExecutorEnd; a cursor a function
		 * opened may be closed at COMMIT).
		 */
		if (qs->level == 0)
			aps_signals_add(exec.started, exec.hist_bucket,
							exec.shared_blks_hit, exec.shared_blks_read);

		/*
		 * A read statement's caching evidence: when it ran (a statement a
		 * function runs has its caller's start time: the clock), and what
		 * its result hashed to on a sampled run.
		 */
		if (qs->read)
		{
			ApsCacheRun run;

			run.at = qs->level == 0 ? exec.started : GetCurrentTimestamp();
			run.duration_ms = exec.duration_ms;
			run.write_txn = qs->write_txn;
			run.hashed = qs->cache_dest != NULL &&
						 aps_cache_dest_result(qs->cache_dest, &run.result);
			cached =
				aps_cache_record(queryDesc, &key, rec.cache_slot, rec.calls,
								 &run, src.source, src.location, src.len) >= 0;
		}

		/* NaN (no entry) compares false: not known to be fast. */
		aps_store_set_fast(&key, rec.max_ms * 2.0 < (double) aps_slow_query_ms,
						   cached);

		if (exec.slow && aps_capture_plans && aps_max_plans > 0)
			save_slow_plan(queryDesc, &key, qs->counts);

		if (qs->advise && aps_index_advisor)
			aps_advisor_collect(queryDesc, src.source, src.location, src.len);
	}

	/*
	 * Rows written count for their table at every level, tracked or not:
	 * an index is maintained whoever writes.
	 */
	if (queryDesc->operation != CMD_SELECT && aps_enabled &&
		aps_store_ready() && !aps_replanning && queryDesc->estate != NULL)
		aps_writes_count_execution(
			queryDesc, qs != NULL ? qs->rows : queryDesc->estate->es_processed,
			write_time());

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);

	if (nesting_level == 0)
		aps_errors_statement_done();
}

/*
 * Commands that run their statement at the caller's level rather than
 * nested in it: PREPARE (whose statement is parsed, and gets its normalized
 * text, here) and EXECUTE of a prepared statement, and the cursor commands
 * (a cursor's query is started by DECLARE, run by FETCH and ended by CLOSE
 * or at commit, and is the client's own statement).
 */
static bool
utility_runs_at_same_level(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_PrepareStmt:
		case T_ExecuteStmt:
		case T_DeclareCursorStmt:
		case T_FetchStmt:
		case T_ClosePortalStmt:
			return true;
		default:
			return false;
	}
}

static void
aps_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	int			bump = utility_runs_at_same_level(pstmt->utilityStmt) ? 0 : 1;
	const char *save_source = utility_source;
	int			save_location = utility_location;
	int			save_len = utility_len;

	/* Statements run by a top-level DO or CALL are sampled with it. */
	if (nesting_level == 0)
		decide_sampling();

	utility_source = queryString;
	utility_location = pstmt->stmt_location;
	utility_len = pstmt->stmt_len;
	nesting_level += bump;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		nesting_level -= bump;
		utility_source = save_source;
		utility_location = save_location;
		utility_len = save_len;
	}
	PG_END_TRY();

	/* COPY FROM writes rows outside the executor, TRUNCATE empties tables. */
	if (IsA(pstmt->utilityStmt, CopyStmt) && qc != NULL && aps_enabled &&
		aps_store_ready())
		aps_writes_count_copy((CopyStmt *) pstmt->utilityStmt, qc->nprocessed,
							  write_time());
	else if (IsA(pstmt->utilityStmt, TruncateStmt) && aps_enabled &&
			 aps_store_ready() && !aps_replanning)
		aps_writes_count_truncate((TruncateStmt *) pstmt->utilityStmt,
								  write_time());

	/* Its failure keeps the statement for errors.c's report. */
	if (nesting_level == 0)
		aps_errors_statement_done();
}
