/*-------------------------------------------------------------------------
 *
 * antipattern.c
 *		What an API's statements do that does not scale: SELECT *, results
 *		without a LIMIT, deep OFFSET paging, N+1 loops.
 *
 * Detection rules (the counters live in each statement's entry, store.c):
 *
 *	select_star		the statement's own text has * or t.* in a target list
 *					(SELECT list, RETURNING list), in any SELECT of it: set
 *					operations, CTEs, sub selects in FROM and in expressions,
 *					except inside EXISTS (...).  count(*) is a function call,
 *					not a target *.  Decided once, when the statement gets
 *					its entry, from the raw parse tree of its text.
  *	unbounded_result  a SELECT whose plan has no Limit on top that returned
 *					more than apiscale.unbounded_rows rows to a client (not
 *					to CREATE TABLE AS, COPY or a function's loop).
 *	large_offset	a Limit on top of the plan whose OFFSET skipped more than
 *					apiscale.unbounded_rows rows.
 *	n_plus_one		the same statement run at least apiscale.n_plus_one_calls
 *					times in one transaction, each run returning at most one
 *					row (a run with more rows ends the streak for that
 *					transaction).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/execdesc.h"
#include "tcop/dest.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#include "antipattern.h"
#include "guc.h"

#define NPLUS1_SLOTS 64 /* statements followed per transaction */

/* Runs per statement in the current transaction (backend-local). */
typedef struct NPlus1Slot
{
	uint64 queryid;
	int	   runs;   /* runs so far, each with at most one row */
	bool   broken; /* a run returned more: no N+1 this transaction */
} NPlus1Slot;

static NPlus1Slot		  nplus1[NPLUS1_SLOTS];
static int				  nplus1_used = 0;
static LocalTransactionId nplus1_lxid = InvalidLocalTransactionId;

static bool star_walker(Node *node, void *context);

/*
 * The raw query inside a utility statement that runs one (PREPARE, EXPLAIN,
 * COPY (query) TO, DECLARE CURSOR, CREATE TABLE AS), or NULL: a statement
 * nested in one of these is known by the utility's text.
 */
Node *
aps_utility_query(Node *stmt)
{
	if (stmt == NULL)
		return NULL;
	switch (nodeTag(stmt))
	{
		case T_PrepareStmt:
			return ((PrepareStmt *) stmt)->query;
		case T_ExplainStmt:
			return ((ExplainStmt *) stmt)->query;
		case T_CopyStmt:
			return ((CopyStmt *) stmt)->query;
		case T_DeclareCursorStmt:
			return ((DeclareCursorStmt *) stmt)->query;
		case T_CreateTableAsStmt:
			return ((CreateTableAsStmt *) stmt)->query;
		default:
			return NULL;
	}
}

/* Does a target list hold a * or t.*? */
static bool
targets_have_star(List *targets)
{
	ListCell *lc;

	foreach (lc, targets)
	{
		ResTarget *rt = lfirst(lc);

		if (IsA(rt, ResTarget) && rt->val != NULL && IsA(rt->val, ColumnRef) &&
			IsA(llast(((ColumnRef *) rt->val)->fields), A_Star))
			return true;
	}
	return false;
}

static bool
star_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		/* Statements known by a utility's text: look at the query inside. */
		case T_PrepareStmt:
		case T_ExplainStmt:
		case T_CopyStmt:
		case T_DeclareCursorStmt:
		case T_CreateTableAsStmt:
			return star_walker(aps_utility_query(node), context);
		case T_SelectStmt:
			if (targets_have_star(((SelectStmt *) node)->targetList))
				return true;
			break;
		case T_InsertStmt:
			if (targets_have_star(((InsertStmt *) node)->returningList))
				return true;
			break;
		case T_UpdateStmt:
			if (targets_have_star(((UpdateStmt *) node)->returningList))
				return true;
			break;
		case T_DeleteStmt:
			if (targets_have_star(((DeleteStmt *) node)->returningList))
				return true;
			break;
		case T_SubLink:
			/* EXISTS (SELECT * ...) reads no column: not a finding. */
			if (((SubLink *) node)->subLinkType == EXISTS_SUBLINK)
				return star_walker(((SubLink *) node)->testexpr, context);
			break;
		default:
			break;
	}
	return raw_expression_tree_walker(node, star_walker, context);
}

/*
 * Does the statement's own text use * in a target list?  Parses the text
 * again (once per new statement).  The raw parser only allocates memory,
 * so its errors can be caught without a subtransaction; text it rejects
 * (a setting changed by an earlier statement of the same string) is "no".
 */
bool
aps_uses_select_star(const ApsTextSource *src)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext cxt;
	volatile bool star = false;
	ApsQuiet	  quiet;
	const char	 *start;
	const char	 *text;
	int			  loc = src->location;
	int			  len = src->len;

	if (src->source == NULL)
		return false;
	start = CleanQuerytext(src->source, &loc, &len);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "apiscale select star",
								ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(cxt);
	text = pnstrdup(start, len);
	aps_quiet(&quiet);
	PG_TRY();
	{
		List	 *raw = raw_parser(text, RAW_PARSE_DEFAULT);
		ListCell *lc;

		foreach (lc, raw)
		{
			if (star_walker(((RawStmt *) lfirst(lc))->stmt, NULL))
			{
				star = true;
				break;
			}
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		star = false;
	}
	PG_END_TRY();
	aps_unquiet(&quiet);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return star;
}

/* The plan's top node, through nodes that do not change the row count. */
static PlanState *
top_node(QueryDesc *qd)
{
	PlanState *ps = qd->planstate;

	while (ps != NULL &&
		   (IsA(ps, ResultState) || IsA(ps, GatherState) ||
			IsA(ps, GatherMergeState)) &&
		   outerPlanState(ps) != NULL)
		ps = outerPlanState(ps);
	return ps;
}

/* A SELECT whose result no LIMIT / FETCH bounds? */
bool
aps_result_unbounded(QueryDesc *qd)
{
	PlanState *top;

	if (qd->operation != CMD_SELECT || qd->plannedstmt->utilityStmt != NULL)
		return false;
	/*
	 * Only rows that go to a client: CREATE TABLE AS, COPY (...) TO and
	 * loops inside functions read everything on purpose.
	 */
	if (qd->dest == NULL || (qd->dest->mydest != DestRemote &&
							 qd->dest->mydest != DestRemoteExecute &&
							 qd->dest->mydest != DestRemoteSimple &&
							 qd->dest->mydest != DestTuplestore))
		return false;
	top = top_node(qd);
	if (top == NULL)
		return false;
	/* OFFSET alone, or LIMIT ALL / NULL at run time, bounds nothing. */
	return !IsA(top, LimitState) || ((LimitState *) top)->limitCount == NULL ||
		   ((LimitState *) top)->noCount;
}

/* Rows the top Limit's OFFSET skipped (0 if none). */
int64
aps_offset_skipped(QueryDesc *qd)
{
	PlanState  *top = top_node(qd);
	LimitState *limit;

	if (top == NULL || !IsA(top, LimitState))
		return 0;
	limit = (LimitState *) top;
	if (limit->limitOffset == NULL || limit->offset <= 0)
		return 0;
	/* What was skipped: the OFFSET, or every row if there were fewer. */
	return Min(limit->offset, limit->position);
}

/*
 * Count a finished run of queryid that returned rows rows in the current
 * transaction.  Returns how many runs in a row of it, each with at most
 * one row, this transaction has seen (0 once one returned more).
 */
int
aps_nplus1_count(QueryDesc *qd, uint64 queryid, uint64 rows)
{
	NPlus1Slot *slot = NULL;

	/* Reads only: a loop of single-row writes is what executemany does. */
	if (MyProc == NULL || qd->operation != CMD_SELECT)
		return 0;
	if (MyProc->lxid != nplus1_lxid)
	{
		nplus1_lxid = MyProc->lxid;
		nplus1_used = 0;
	}
	for (int i = 0; i < nplus1_used; i++)
	{
		if (nplus1[i].queryid == queryid)
		{
			slot = &nplus1[i];
			break;
		}
	}
	if (slot == NULL)
	{
		if (nplus1_used >= NPLUS1_SLOTS)
			return 0; /* documented limit: the first 64 statements */
		slot = &nplus1[nplus1_used++];
		slot->queryid = queryid;
		slot->runs = 0;
		slot->broken = false;
	}
	if (slot->broken)
		return 0;
	if (rows > 1)
	{
		slot->broken = true;
		return 0;
	}
	if (slot->runs < INT_MAX)
		slot->runs++;
	return slot->runs;
}
