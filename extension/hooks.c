/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		Parser, executor and utility hooks: where statements are observed.
 *
 * Pipeline, per statement:
 *	post_parse_analyze	make sure the statement has an entry, with its
 *						normalized text (only possible here, where the
 *						jumbler's constant locations are known)
 *	ExecutorStart		decide whether this run is sampled; ask for per-node
 *						row counts (and timers if plan_timing) on sampled
 *						runs, and for a query-level timer on every run
 *	ExecutorRun/Finish	track nesting; count errors and cancellations on
 *						the way out of a failed run
 *	ExecutorEnd			add the run to its entry; keep the EXPLAIN ANALYZE
 *						text if the run was slow
 *	ProcessUtility		track nesting for statements run by utility
 *						commands (DO, CALL, EXPLAIN, CREATE TABLE AS, ...)
 *
 * Every hook chains to the previous one.  Nesting depth is restored with
 * PG_FINALLY / PG_CATCH, so an error never leaves it wrong.  Parallel
 * workers are ignored: the leader accounts for the whole statement.
 *
 * Cost on the fast path: one query-level Instrumentation (two clock reads
 * per ExecutorRun call), per-node row counting without clock reads on
 * sampled runs when capture_plans is on, and one shared-lock lookup plus a
 * spinlock at ExecutorEnd.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "guc.h"
#include "hooks.h"
#include "normalize.h"
#include "store.h"

/* Saved hook values */
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static ExecutorStart_hook_type		prev_ExecutorStart = NULL;
static ExecutorRun_hook_type		prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type		prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type		prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type		prev_ProcessUtility = NULL;

/* Current nesting depth of executor and utility calls */
static int nesting_level = 0;

/* Is the current top-level statement sampled for per-node instrumentation? */
static bool current_sampled = false;

/* Prototypes */
static void aps_post_parse_analyze(ParseState *pstate, Query *query,
								   JumbleState *jstate);
static void aps_ExecutorStart(QueryDesc *queryDesc, int eflags);
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
	return aps_enabled && !IsParallelWorker() &&
		   (level == 0 || aps_track == APS_TRACK_ALL);
}

static inline void
make_key(ApsKey *key, uint64 queryid)
{
	key->userid = GetUserId();
	key->dbid = MyDatabaseId;
	key->queryid = queryid;
}

/* Is this queryDesc one we set up to track in aps_ExecutorStart? */
static inline bool
tracked_query(QueryDesc *queryDesc)
{
	return queryDesc->plannedstmt->queryId != UINT64CONST(0) &&
		   queryDesc->totaltime != NULL && tracking(nesting_level);
}

/*
 * post_parse_analyze: create the entry with the normalized text while the
 * constant locations are at hand.  Only for statements with constants;
 * the others get their (identical) text at ExecutorStart.
 */
static void
aps_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);

	if (!aps_store_ready() || !tracking(nesting_level) ||
		query->utilityStmt != NULL || query->queryId == UINT64CONST(0) ||
		jstate == NULL || jstate->clocations_count == 0)
		return;

	{
		ApsKey key;
		char  *text;
		int	   len;

		make_key(&key, query->queryId);
		if (aps_store_known(&key))
			return;

		text = aps_normalize_query(pstate->p_sourcetext, query->stmt_location,
								   query->stmt_len, jstate, &len);
		aps_store_ensure(&key, text, len, GetDatabaseEncoding());
		pfree(text);
	}
}

/*
 * ExecutorStart: choose the instrumentation, then make sure the entry
 * exists so that a failure later can be counted without creating anything.
 */
static void
aps_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool track = aps_store_ready() && tracking(nesting_level) &&
				 queryDesc->plannedstmt->queryId != UINT64CONST(0);

	if (nesting_level == 0)
		current_sampled = track && aps_sample_rate > 0.0 &&
						  (aps_sample_rate >= 1.0 ||
						   aps_random_fraction() < aps_sample_rate);

	if (track && current_sampled && aps_capture_plans &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
	{
		queryDesc->instrument_options |= INSTRUMENT_ROWS;
		if (aps_plan_timing)
			queryDesc->instrument_options |= INSTRUMENT_TIMER;
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (!track || (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0)
		return;

	/* A query-level timer and buffer counter, in the query's own context. */
	if (queryDesc->totaltime == NULL)
	{
		MemoryContext oldcxt;

		oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
		queryDesc->totaltime = InstrAlloc(1, INSTRUMENT_ALL, false);
		MemoryContextSwitchTo(oldcxt);
	}

	{
		ApsKey		key;
		const char *text;
		int			loc = queryDesc->plannedstmt->stmt_location;
		int			len = queryDesc->plannedstmt->stmt_len;

		make_key(&key, queryDesc->plannedstmt->queryId);
		if (!aps_store_known(&key))
		{
			text = CleanQuerytext(queryDesc->sourceText, &loc, &len);
			aps_store_ensure(&key, text, len, GetDatabaseEncoding());
		}
	}
}

/*
 * Count a failed run of queryDesc.  Called from PG_CATCH: must not throw.
 */
static void
count_error(QueryDesc *queryDesc)
{
	ApsKey key;

	if (!aps_store_ready() || !tracked_query(queryDesc))
		return;
	make_key(&key, queryDesc->plannedstmt->queryId);
	aps_store_record_error(&key);
}

static void
aps_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				bool execute_once)
{
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
		count_error(queryDesc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
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
 * EXPLAIN (ANALYZE when the run was sampled) of a finished run, as text,
 * allocated in the current memory context.
 */
static char *
explain_run(QueryDesc *queryDesc, int *len)
{
	ExplainState *es = NewExplainState();
	bool analyzed = (queryDesc->instrument_options & INSTRUMENT_ROWS) != 0;

	es->analyze = analyzed;
	es->timing =
		analyzed && (queryDesc->instrument_options & INSTRUMENT_TIMER) != 0;
	es->summary = false;
	es->format = EXPLAIN_FORMAT_TEXT;
	es->verbose = false;
	es->buffers = false;

	ExplainBeginOutput(es);
	ExplainPrintPlan(es, queryDesc);
	if (analyzed)
		ExplainPrintTriggers(es, queryDesc);
	ExplainEndOutput(es);

	if (!analyzed)
		appendStringInfoString(
			es->str,
			"\n(run not sampled by apiscale.sample_rate: estimates only)");

	/* No trailing newline. */
	while (es->str->len > 0 && es->str->data[es->str->len - 1] == '\n')
		es->str->data[--es->str->len] = '\0';

	*len = es->str->len;
	return es->str->data;
}

/*
 * ExecutorEnd: add the finished run to its entry.
 */
static void
aps_ExecutorEnd(QueryDesc *queryDesc)
{
	if (aps_store_ready() && tracked_query(queryDesc))
	{
		ApsKey			 key;
		ApsExecution	 exec;
		Instrumentation *total = queryDesc->totaltime;
		int				 loc = queryDesc->plannedstmt->stmt_location;
		int				 len = queryDesc->plannedstmt->stmt_len;
		const char		*text;

		/* Make sure the totals are final (this does not end the run). */
		InstrEndLoop(total);

		make_key(&key, queryDesc->plannedstmt->queryId);
		exec.duration_ms = total->total * 1000.0;
		exec.rows = queryDesc->estate->es_processed;
		exec.shared_blks_hit = total->bufusage.shared_blks_hit;
		exec.shared_blks_read = total->bufusage.shared_blks_read;
		exec.slow = aps_slow_query_ms >= 0 &&
					exec.duration_ms >= (double) aps_slow_query_ms;
		exec.started = GetCurrentStatementStartTimestamp();
		exec.ended = exec.slow ? GetCurrentTimestamp() : 0;

		text = CleanQuerytext(queryDesc->sourceText, &loc, &len);
		aps_store_record(&key, &exec, text, len, GetDatabaseEncoding());

		if (exec.slow && aps_capture_plans && aps_max_plans > 0)
		{
			MemoryContext oldcxt;
			char		 *plan;
			int			  planlen;

			oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
			plan = explain_run(queryDesc, &planlen);
			aps_store_save_plan(&key, plan, planlen);
			MemoryContextSwitchTo(oldcxt);
		}
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
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
	int bump = utility_runs_at_same_level(pstmt->utilityStmt) ? 0 : 1;

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
	}
	PG_END_TRY();
}
