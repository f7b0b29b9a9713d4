/*-------------------------------------------------------------------------
 *
 * advisor.c
 *		Index evidence from finished plans (the executor side of the index
 *		advisor).
 *
 * On a sampled execution whose plan may show a missing index, ExecutorStart
 * asks for per-node row counts (no clock reads), and at ExecutorEnd the
 * finished plan state tree is walked.  What is recorded, per scan of a user
 * table not known to be smaller than apiscale.min_table_rows (quals.c says
 * which quals count and how):
 *
 *	WHERE	a Seq Scan whose filter removed rows: its equality and range
 *			columns and expressions.
 *	JOIN	the join keys of a Nested Loop over a Seq Scan inner side (join
 *			filter or parameterized scan filter), and of a Hash or Merge
 *			Join for each side that is a Seq Scan.
 *	ORDER	a Sort whose keys are all columns of one Seq Scan below it
 *			(directly or through joins): the sort keys with their
 *			direction, after the scan's equality columns.  The input
 *			sorts of a Merge Join are join evidence instead.
 *	RESIDUAL  an Index Scan or Index Only Scan whose filter removed rows,
 *			or a Bitmap Heap Scan whose filter (or recheck, without lossy
 *			pages) did: the filter's equality columns, then the scan's own
 *			equality keys, then, where the scan's order is used (a Limit
 *			above, a backward scan, or no key at all), the index's
 *			remaining columns as sort keys in the scan's direction, then
 *			the range columns.  The index in use is kept.
 *	COVERING  an Index Scan that fetched at least APS_COVER_MIN_ROWS heap
 *			rows per scan, of a table the statement reads at most
 *			APS_COVER_MAX_INCLUDE columns of beyond the index's (its range
 *			table entry's selected columns): the index's keys, then those
 *			columns to INCLUDE.
 *	LOSSY	a Bitmap Heap Scan that met lossy pages (its bitmap outgrew
 *			work_mem; BRIN indexes, lossy by design, excepted).
 *	UNINDEXABLE  a filter no btree can serve, on a scan that has nothing
 *			else to index: LIKE/ILIKE with a leading wildcard, operators
 *			in no btree operator family, expressions that are not
 *			immutable.
 *
 * Which runs are counted: plans with a Seq Scan of such a table, or an
 * Index Scan, Index Only Scan or Bitmap Heap Scan with a filter, count rows
 * per node on every sampled run.  A Bitmap Heap Scan without a filter is
 * only looked at (its lossy pages are counted anyway).  A plan whose only
 * evidence could be a covering index is counted on its first sampled run
 * in each backend (remembered per user and statement until evidence is
 * evicted or reset): the columns it reads do not change between runs.
 *
 * Every node kind is walked (children, Append/MergeAppend members, bitmap
 * and custom children, subquery scans, and every init plan, sub plan and
 * CTE via es_subplanstates); nodes without instrumentation and shapes the
 * walker does not recognise add nothing.  Parallel workers are never
 * walked: the leader's nodes hold the workers' counts too.  Index columns
 * are read from the index relations the executor has open; partitions are
 * mapped to their root, and table sizes checked, when the advice is read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/stratnum.h"
#include "catalog/catalog.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "advisor.h"
#include "compat.h"
#include "evidence.h"
#include "guc.h"
#include "quals.h"
#include "sample.h"

#define RESOLVE_DEPTH 32

/* Covering evidence: heap rows per scan, and columns to include at most. */
#define APS_COVER_MIN_ROWS	  10
#define APS_COVER_MAX_INCLUDE 3

/* Statements whose covering evidence this backend recorded. */
#define COVER_MEMO_SLOTS 256 /* power of two */

typedef struct Collect
{
	PlannedStmt	  *pstmt;  /* the plan walked */
	PlanState	  *parent; /* of the node being visited */
	ApsQualContext qcx;	   /* what classifying a scan's quals needs */
	ApsExprSet	   exprs;  /* expressions the items refer to */
	ApsEvItem	   items[APS_EV_MAX_ITEMS];
	int			   nitems;
	double		   waste;
	bool		   covering; /* a COVERING item was made */
} Collect;

/* The key columns of an index, as a scan in some direction reads them. */
typedef struct IndexKeys
{
	int	  nkeys;
	int16 key[APS_EV_MAX_COLS];	  /* table columns; 0 ends at an expression */
	uint8 order[APS_EV_MAX_COLS]; /* APS_COL_DESC / _NULLS_FIRST as read */
	uint8 own[APS_EV_MAX_COLS];	  /* the same, as the index stores them */
	int	  ninclude;
	int16 include[APS_EV_MAX_COLS];
} IndexKeys;

/* What plan_wants_walker found. */
typedef struct Wants
{
	PlannedStmt *pstmt;
	int			 flags;		  /* APS_ADVISE_* */
	Oid			 cover_relid; /* table of a covering-only candidate scan */
} Wants;

typedef struct CoverMemo
{
	uint64 queryid;
	Oid	   userid;
} CoverMemo;

static CoverMemo cover_memo[COVER_MEMO_SLOTS];
static uint32	 cover_memo_generation = 0;

static void walk(PlanState *ps, Collect *c, double limit_rows);

static int
cmp_int16(const void *a, const void *b)
{
	return (int) *(const int16 *) a - (int) *(const int16 *) b;
}

static ApsEvItem *
new_item(Collect *c, Oid relid, ApsEvKind kind)
{
	ApsEvItem *it;

	if (c->nitems >= APS_EV_MAX_ITEMS)
		return NULL;
	it = &c->items[c->nitems++];
	memset(it, 0, sizeof(*it));
	it->relid = relid;
	it->kind = (uint8) kind;
	it->runs = 1;
	for (int i = 0; i < APS_EV_MAX_CONSTS; i++)
		it->consts[i].col = -1;
	return it;
}

static void
item_add_col(ApsEvItem *it, int16 attnum, uint8 flags)
{
	for (int i = 0; i < it->ncols; i++)
		if (it->attnum[i] == attnum)
			return;
	if (it->ncols < APS_EV_MAX_COLS)
	{
		it->attnum[it->ncols] = attnum;
		it->flags[it->ncols] = flags;
		it->ncols++;
	}
}

/* Rows out, rows removed by the node's qual, and loops of a node. */
static bool
node_counts(PlanState *ps, double *rows, double *filtered, double *loops)
{
	Instrumentation *in = ps->instrument;

	if (in == NULL)
		return false;
	*rows = in->ntuples + in->tuplecount;
	*filtered = in->nfiltered1;
	*loops = in->nloops + (in->running ? 1 : 0);
	if (*loops < 1 && (*rows > 0 || *filtered > 0))
		*loops = 1;
	return true;
}

/*
 * The user table a scan reads, or InvalidOid (catalogs, views, and small
 * non-partition tables are skipped here; read time checks again).
 */
static Oid
scan_relid(ScanState *ss, double rows_read, double loops)
{
	Relation rel = ss->ss_currentRelation;
	double	 reltuples;

	if (rel == NULL)
		return InvalidOid;
	if (RelationGetRelid(rel) < FirstNormalObjectId || IsCatalogRelation(rel))
		return InvalidOid;
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_MATVIEW)
		return InvalidOid;
	reltuples = rel->rd_rel->reltuples;
	if (!rel->rd_rel->relispartition &&
		Max(reltuples, rows_read / Max(loops, 1.0)) <
			(double) aps_min_table_rows)
		return InvalidOid;
	return RelationGetRelid(rel);
}

/* Classify quals of scan (of its own table) into qc. */
static void
classify(Collect *c, ScanState *scan, List *quals, ApsQualCols *qc)
{
	c->qcx.scanrelid = ((Scan *) scan->ps.plan)->scanrelid;
	aps_classify_quals(quals, &c->qcx, qc);
}

/*
 * Filters no btree can serve are reported when they are all the scan has:
 * then they are why it throws rows away.  True if it had nothing else.
 */
static bool
report_unindexable(Collect *c, Oid relid, const ApsQualCols *qc, double loops,
				   double read, double filtered)
{
	if (qc->neq + qc->nrange + qc->njoin > 0)
		return false;
	for (int i = 0; i < qc->nunidx; i++)
	{
		ApsEvItem *it = new_item(c, relid, APS_EV_UNINDEXABLE);

		if (it == NULL)
			break;
		item_add_col(it, qc->unidx[i], 0);
		it->opno = qc->unidx_op[i];
		it->funcid = qc->unidx_func[i];
		it->why = qc->unidx_why[i];
		it->scans = (int64) loops;
		it->rows_read = read;
		it->rows_filtered = filtered;
	}
	if (qc->nunidx > 0)
		c->waste += filtered;
	return true;
}

/*
 * Follow an expression of ps's output down to the Seq Scan column it comes
 * from, through OUTER_VAR / INNER_VAR references.
 */
static bool
resolve_column(PlanState *ps, Node *expr, ScanState **scan, int16 *attnum,
			   int depth)
{
	Var			*v;
	PlanState	*child;
	List		*tlist;
	TargetEntry *tle;

	expr = aps_strip(expr);
	if (ps == NULL || expr == NULL || !IsA(expr, Var) || depth > RESOLVE_DEPTH)
		return false;
	v = (Var *) expr;
	if (v->varlevelsup != 0)
		return false;
	if (v->varno == OUTER_VAR)
		child = outerPlanState(ps);
	else if (v->varno == INNER_VAR)
		child = innerPlanState(ps);
	else
	{
		if (IsA(ps, SeqScanState) &&
			v->varno == (int) ((Scan *) ps->plan)->scanrelid &&
			v->varattno > 0)
		{
			*scan = (ScanState *) ps;
			*attnum = v->varattno;
			return true;
		}
		return false;
	}
	if (child == NULL || child->plan == NULL)
		return false;
	tlist = child->plan->targetlist;
	if (v->varattno < 1 || v->varattno > list_length(tlist))
		return false;
	tle = list_nth_node(TargetEntry, tlist, v->varattno - 1);
	return resolve_column(child, (Node *) tle->expr, scan, attnum, depth + 1);
}

/* Skip nodes that pass rows through unchanged. */
static PlanState *
skip_passthrough(PlanState *ps)
{
	while (ps != NULL && (IsA(ps, MaterialState) || IsA(ps, MemoizeState) ||
						  IsA(ps, GatherState) || IsA(ps, HashState)))
		ps = outerPlanState(ps);
	return ps;
}

/* Skip pass-through nodes and the sorts a Merge Join puts on its inputs. */
static PlanState *
skip_sorts(PlanState *ps)
{
	ps = skip_passthrough(ps);
	while (ps != NULL && IsA(ps, SortState))
		ps = skip_passthrough(outerPlanState(ps));
	return ps;
}

/* WHERE (and unindexable) evidence of one Seq Scan. */
static void
visit_seqscan(ScanState *ss, Collect *c)
{
	PlanState  *ps = &ss->ps;
	double		rows, filtered, loops, read;
	Oid			relid;
	ApsQualCols qc;
	ApsEvItem  *it;

	if (ps->plan->qual == NIL || !node_counts(ps, &rows, &filtered, &loops))
		return;
	read = rows + filtered;
	if (filtered <= 0)
		return;
	relid = scan_relid(ss, read, loops);
	if (!OidIsValid(relid))
		return;
	classify(c, ss, ps->plan->qual, &qc);
	if (report_unindexable(c, relid, &qc, loops, read, filtered))
		return;

	/* Columns compared with an outer row make JOIN evidence. */
	if (qc.njoin > 0)
	{
		it = new_item(c, relid, APS_EV_JOIN);
		if (it == NULL)
			return;
		/* The scan's own equality columns first: see join_side. */
		for (int i = 0; i < qc.neq; i++)
			item_add_col(it, qc.eq[i], APS_COL_EQ);
		for (int i = 0; i < qc.njoin; i++)
			item_add_col(it, qc.join[i], APS_COL_EQ);
	}
	else
	{
		it = new_item(c, relid, APS_EV_WHERE);
		if (it == NULL)
			return;
		for (int i = 0; i < qc.neq; i++)
			item_add_col(it, qc.eq[i], APS_COL_EQ);
		for (int i = 0; i < qc.nrange; i++)
			item_add_col(it, qc.range[i], APS_COL_RANGE);
	}
	aps_item_set_consts(it, &qc);
	it->scans = (int64) loops;
	it->rows_read = read;
	it->rows_filtered = filtered;
	c->waste += filtered;
}

/*
 * ORDER evidence: a Sort over a Seq Scan.  kept is the number of rows the
 * query kept of the sorted ones (a Limit's output), or -1.
 */
static void
visit_sort(PlanState *ps, Collect *c, double kept)
{
	Sort	   *sort = (Sort *) ps->plan;
	PlanState  *input = skip_passthrough(outerPlanState(ps));
	ScanState  *scan = NULL;
	double		rows, filtered, loops, read, sorted, sloops, sfilt;
	Oid			relid;
	ApsQualCols qc;
	ApsEvItem  *it;
	int16		keys[APS_EV_MAX_COLS];
	uint8		flags[APS_EV_MAX_COLS];

	/* A merge join's input sort is join evidence (see join_side). */
	if (input == NULL || sort->numCols < 1 ||
		sort->numCols > APS_EV_MAX_COLS ||
		(c->parent != NULL && IsA(c->parent, MergeJoinState)))
		return;
	for (int i = 0; i < sort->numCols; i++)
	{
		TargetEntry *tle;
		ScanState	*s = NULL;
		Oid			 opfamily, opcintype;
		int16		 strategy;

		if (sort->sortColIdx[i] < 1 ||
			sort->sortColIdx[i] > list_length(ps->plan->targetlist))
			return;
		tle = list_nth_node(TargetEntry, ps->plan->targetlist,
							sort->sortColIdx[i] - 1);
		/* Every key a column of one Seq Scan, wherever it is below. */
		if (!resolve_column(ps, (Node *) tle->expr, &s, &keys[i], 0) ||
			(scan != NULL && s != scan))
			return;
		scan = s;
		if (!get_ordering_op_properties(sort->sortOperators[i], &opfamily,
										&opcintype, &strategy))
			return;
		flags[i] = APS_COL_ORDER;
		if (strategy == BTGreaterStrategyNumber)
			flags[i] |= APS_COL_DESC;
		if (sort->nullsFirst[i])
			flags[i] |= APS_COL_NULLS_FIRST;
	}
	if (!node_counts(&scan->ps, &rows, &filtered, &loops) ||
		!node_counts(ps, &sorted, &sfilt, &sloops))
		return;
	read = rows + filtered;
	relid = scan_relid(scan, read, loops);
	if (!OidIsValid(relid))
		return;
	classify(c, scan, scan->ps.plan->qual, &qc);
	it = new_item(c, relid, APS_EV_ORDER);
	if (it == NULL)
		return;
	for (int i = 0; i < qc.neq; i++)
		item_add_col(it, qc.eq[i], APS_COL_EQ);
	for (int i = 0; i < sort->numCols; i++)
		item_add_col(it, keys[i], flags[i]); /* an eq column stays eq */
	aps_item_set_consts(it, &qc);
	it->scans = (int64) loops;
	it->rows_read = read;
	if (kept < 0)
		kept = sorted;
	it->rows_filtered = Max(0.0, read - kept);
	c->waste += it->rows_filtered;
}

/* JOIN evidence for one side of a hash or merge join. */
static void
join_side(PlanState *join, List *clauses, bool inner, Collect *c)
{
	ScanState  *scan = NULL;
	int16		cols[APS_EV_MAX_COLS];
	int			ncols = 0;
	ListCell   *lc;
	double		rows, filtered, loops, read, jrows, jfilt, jloops;
	Oid			relid;
	ApsQualCols qc;
	ApsEvItem  *it;

	foreach (lc, clauses)
	{
		OpExpr	  *op = lfirst(lc);
		ScanState *s = NULL;
		int16	   attnum;
		Node	  *side;

		if (!IsA(op, OpExpr) || list_length(op->args) != 2)
			continue;
		/* Each clause is "outer expr = inner expr". */
		side = inner ? lsecond(op->args) : linitial(op->args);
		if (!resolve_column(join, side, &s, &attnum, 0))
			continue;
		if (scan != NULL && s != scan)
			return; /* keys from several scans: not one index */
		scan = s;
		if (!aps_code_in(cols, ncols, attnum) && ncols < APS_EV_MAX_COLS)
			cols[ncols++] = attnum;
	}
	if (scan == NULL || ncols == 0 ||
		skip_sorts(inner ? innerPlanState(join) : outerPlanState(join)) !=
			&scan->ps)
		return;
	if (!node_counts(&scan->ps, &rows, &filtered, &loops) ||
		!node_counts(join, &jrows, &jfilt, &jloops))
		return;
	read = rows + filtered;
	relid = scan_relid(scan, read, loops);
	if (!OidIsValid(relid) || read <= jrows)
		return;
	classify(c, scan, scan->ps.plan->qual, &qc);
	qsort(cols, ncols, sizeof(int16), cmp_int16);
	it = new_item(c, relid, APS_EV_JOIN);
	if (it == NULL)
		return;
	/*
	 * The scan's equality columns, then the join keys: all are equality
	 * lookups in a nested loop over the index, and this order lets the
	 * same scan's WHERE candidate (a prefix) merge into this one.
	 */
	for (int i = 0; i < qc.neq; i++)
		item_add_col(it, qc.eq[i], APS_COL_EQ);
	for (int i = 0; i < ncols; i++)
		item_add_col(it, cols[i], APS_COL_EQ);
	aps_item_set_consts(it, &qc);
	it->scans = (int64) loops;
	it->rows_read = read;
	it->rows_filtered = read - jrows;
	c->waste += it->rows_filtered;
}

/* JOIN evidence of a Nested Loop whose join filter reads a Seq Scan. */
static void
visit_nestloop(PlanState *ps, Collect *c)
{
	NestLoop *nl = (NestLoop *) ps->plan;
	List	 *clauses = NIL;
	ListCell *lc;

	/* Join filter clauses "outer = inner" or "inner = outer". */
	foreach (lc, nl->join.joinqual)
	{
		OpExpr *op = lfirst(lc);
		Node   *l, *r;

		if (!IsA(op, OpExpr) || list_length(op->args) != 2 ||
			aps_op_strategy(op->opno) != BTEqualStrategyNumber)
			continue;
		l = aps_strip(linitial(op->args));
		r = aps_strip(lsecond(op->args));
		if (l && r && IsA(l, Var) && IsA(r, Var) &&
			((Var *) l)->varno == INNER_VAR && ((Var *) r)->varno == OUTER_VAR)
		{
			OpExpr *swapped = copyObject(op);

			swapped->args = list_make2(r, l);
			op = swapped;
		}
		clauses = lappend(clauses, op);
	}
	if (clauses != NIL)
		join_side(ps, clauses, true, c);
}

/*
 * The key and included columns of index relation irel, with the direction
 * a scan in direction dir reads each key in.  Keys stop at the first
 * expression.
 */
static void
index_keys(Relation irel, ScanDirection dir, IndexKeys *k)
{
	Form_pg_index idx = irel->rd_index;
	int			  nkey = idx->indnkeyatts;

	memset(k, 0, sizeof(*k));
	for (int i = 0; i < nkey && k->nkeys < APS_EV_MAX_COLS; i++)
	{
		int16 attnum = idx->indkey.values[i];
		int16 opt = irel->rd_indoption ? irel->rd_indoption[i] : 0;
		uint8 own = 0;

		if (attnum <= 0)
			break;
		if (opt & INDOPTION_DESC)
			own |= APS_COL_DESC;
		if (opt & INDOPTION_NULLS_FIRST)
			own |= APS_COL_NULLS_FIRST;
		k->key[k->nkeys] = attnum;
		k->own[k->nkeys] = own;
		/* A backward scan reads the other way round, nulls included. */
		k->order[k->nkeys] = ScanDirectionIsBackward(dir)
								 ? own ^ (APS_COL_DESC | APS_COL_NULLS_FIRST)
								 : own;
		k->nkeys++;
	}
	for (int i = nkey; i < idx->indnatts && k->ninclude < APS_EV_MAX_COLS; i++)
		if (idx->indkey.values[i] > 0)
			k->include[k->ninclude++] = idx->indkey.values[i];
}

/* A Var of INDEX_VAR (an index-only scan's) as the table's expression. */
static Node *
index_var_mutator(Node *node, void *context)
{
	List *indextlist = (List *) context;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == INDEX_VAR)
	{
		Var *v = (Var *) node;

		if (v->varattno >= 1 && v->varattno <= list_length(indextlist))
			return (Node *) copyObject(
				list_nth_node(TargetEntry, indextlist, v->varattno - 1)->expr);
	}
	return expression_tree_mutator(node, index_var_mutator, context);
}

/*
 * RESIDUAL evidence of a scan through an index that threw filtered rows
 * away: filter's equality columns, scan's equality keys, the index's order
 * when used, range columns.
 */
static void
residual_item(Collect *c, ScanState *ss, Oid relid, Oid indexid,
			  const IndexKeys *keys, bool ordered, List *filter,
			  List *keyquals, double loops, double read, double waste)
{
	ApsQualCols fq;
	ApsQualCols kq;
	ApsEvItem  *it;
	int16		range_key = 0;

	/*
	 * A filter with nothing to index is no evidence (unless it is only a
	 * BRIN recheck: then a btree on the keys is).
	 */
	classify(c, ss, filter, &fq);
	if (report_unindexable(c, relid, &fq, loops, read, waste) &&
		(filter != NIL || fq.nunidx > 0))
		return;
	classify(c, ss, keyquals, &kq);
	it = new_item(c, relid, APS_EV_RESIDUAL);
	if (it == NULL)
		return;
	for (int i = 0; i < fq.neq; i++)
		item_add_col(it, fq.eq[i], APS_COL_EQ);
	for (int i = 0; i < fq.njoin; i++)
		item_add_col(it, fq.join[i], APS_COL_EQ);
	if (keys != NULL)
	{
		/* The index's own order: equality keys, then a range or order. */
		for (int i = 0; i < keys->nkeys; i++)
		{
			int16 a = keys->key[i];

			if (aps_code_in(kq.eq, kq.neq, a) ||
				aps_code_in(kq.join, kq.njoin, a))
				item_add_col(it, a, APS_COL_EQ);
			else if (aps_code_in(kq.range, kq.nrange, a))
			{
				range_key = a;
				break;
			}
			else
			{
				for (int j = i; ordered && j < keys->nkeys; j++)
					item_add_col(it, keys->key[j],
								 APS_COL_ORDER | keys->order[j]);
				break;
			}
		}
	}
	else
	{
		/* A bitmap: no order, its keys in column order. */
		for (int i = 0; i < kq.neq; i++)
			item_add_col(it, kq.eq[i], APS_COL_EQ);
		for (int i = 0; i < kq.njoin; i++)
			item_add_col(it, kq.join[i], APS_COL_EQ);
		for (int i = 0; i < kq.nrange; i++)
			item_add_col(it, kq.range[i], APS_COL_RANGE);
	}
	for (int i = 0; i < fq.nrange; i++)
		item_add_col(it, fq.range[i], APS_COL_RANGE);
	if (range_key != 0)
		item_add_col(it, range_key, APS_COL_RANGE);
	if (it->ncols == 0)
	{
		c->nitems--; /* nothing to index: not evidence */
		return;
	}
	aps_item_set_consts(it, &fq);
	it->indexid = indexid;
	it->scans = (int64) loops;
	it->rows_read = read;
	it->rows_filtered = waste;
	c->waste += waste;
}

/*
 * COVERING evidence: an Index Scan that fetched heap rows for a few
 * columns the index lacks.  The columns the statement reads from the
 * table are those its range table entry says it selects (the scan's own
 * target list may be a "physical" one, every column, where its parent does
 * not care); a whole-row or system column reference rules it out.
 */
static void
covering_item(Collect *c, IndexScanState *is, Oid relid, const IndexKeys *keys,
			  double loops, double fetched)
{
	Index		   scanrelid = ((Scan *) is->ss.ps.plan)->scanrelid;
	RangeTblEntry *rte;
	Bitmapset	  *needed;
	int16		   extra[APS_EV_MAX_COLS];
	int			   nextra = 0;
	int			   col = -1;
	ApsEvItem	  *it;

	/* An expression key: not repeated here. */
	if (keys->nkeys == 0 ||
		keys->nkeys < is->iss_RelationDesc->rd_index->indnkeyatts ||
		scanrelid < 1 || scanrelid > (Index) list_length(c->pstmt->rtable))
		return;
	rte = rt_fetch(scanrelid, c->pstmt->rtable);
	needed = aps_rte_selected_cols(c->pstmt, rte);
	if (bms_is_empty(needed))
		return;
	while ((col = bms_next_member(needed, col)) >= 0)
	{
		int16 attnum = col + FirstLowInvalidHeapAttributeNumber;

		/* The whole row, or a system column: no index holds it. */
		if (attnum <= 0)
			return;
		if (aps_code_in(keys->key, keys->nkeys, attnum) ||
			aps_code_in(keys->include, keys->ninclude, attnum))
			continue;
		if (nextra >= APS_COVER_MAX_INCLUDE)
			return;
		extra[nextra++] = attnum;
	}
	if (nextra == 0 || keys->nkeys + keys->ninclude + nextra > APS_EV_MAX_COLS)
		return;
	it = new_item(c, relid, APS_EV_COVERING);
	if (it == NULL)
		return;
	for (int i = 0; i < keys->nkeys; i++)
		item_add_col(it, keys->key[i], APS_COL_ORDER | keys->own[i]);
	for (int i = 0; i < keys->ninclude; i++)
		extra[nextra++] = keys->include[i];
	qsort(extra, nextra, sizeof(int16), cmp_int16);
	for (int i = 0; i < nextra; i++)
		item_add_col(it, extra[i], APS_COL_INCLUDE);
	it->indexid = RelationGetRelid(is->iss_RelationDesc);
	it->scans = (int64) loops;
	it->rows_read = fetched;
	it->rows_filtered = fetched;
	c->covering = true;
	/* Not waste: it does not make this run the representative one. */
}

/* RESIDUAL and COVERING evidence of an Index Scan or Index Only Scan. */
static void
visit_indexscan(PlanState *ps, Collect *c, double limit_rows)
{
	ScanState	 *ss = (ScanState *) ps;
	Relation	  irel;
	List		 *filter = ps->plan->qual;
	List		 *keyquals;
	ScanDirection dir;
	bool		  by_op; /* ordered by an operator (KNN): not btree */
	double		  rows, filtered, loops;
	Oid			  relid;
	IndexKeys	  keys;

	if (IsA(ps, IndexScanState))
	{
		IndexScan *scan = (IndexScan *) ps->plan;

		irel = ((IndexScanState *) ps)->iss_RelationDesc;
		keyquals = scan->indexqualorig;
		dir = scan->indexorderdir;
		by_op = scan->indexorderby != NIL;
	}
	else
	{
		IndexOnlyScan *scan = (IndexOnlyScan *) ps->plan;

		irel = ((IndexOnlyScanState *) ps)->ioss_RelationDesc;
		/* Its quals read index columns: make them the table's. */
		keyquals = (List *) index_var_mutator((Node *) scan->indexqual,
											  scan->indextlist);
		filter = (List *) index_var_mutator((Node *) filter, scan->indextlist);
		dir = scan->indexorderdir;
		by_op = scan->indexorderby != NIL;
	}
	if (irel == NULL || irel->rd_index == NULL ||
		!node_counts(ps, &rows, &filtered, &loops) || loops < 1)
		return;
	relid = scan_relid(ss, rows + filtered, loops);
	if (!OidIsValid(relid))
		return;
	index_keys(irel, dir, &keys);

	if (filter != NIL && filtered > 0 && !by_op)
		residual_item(c, ss, relid, RelationGetRelid(irel), &keys,
					  ScanDirectionIsBackward(dir) || limit_rows >= 0 ||
						  keyquals == NIL,
					  filter, keyquals, loops, rows + filtered, filtered);
	if (IsA(ps, IndexScanState) && !by_op &&
		(rows + filtered) / loops >= APS_COVER_MIN_ROWS)
		covering_item(c, (IndexScanState *) ps, relid, &keys, loops,
					  rows + filtered);
}

/*
 * The index quals of the bitmap below a Bitmap Heap Scan (a Bitmap Index
 * Scan, or the members of a BitmapAnd; a BitmapOr's alternatives are no
 * keys), the first index's OID, and whether a BRIN index (lossy by design)
 * is among them.
 */
static List *
bitmap_keys(PlanState *source, Oid *indexid, bool *brin)
{
	List	   *quals = NIL;
	PlanState **members = &source;
	int			n = 1;

	*indexid = InvalidOid;
	*brin = false;
	if (source == NULL)
		return NIL;
	if (IsA(source, BitmapAndState))
	{
		members = ((BitmapAndState *) source)->bitmapplans;
		n = ((BitmapAndState *) source)->nplans;
	}
	for (int i = 0; i < n; i++)
	{
		BitmapIndexScanState *bis;

		if (members[i] == NULL || !IsA(members[i], BitmapIndexScanState))
			continue;
		bis = (BitmapIndexScanState *) members[i];
		quals = list_concat(
			quals,
			list_copy(((BitmapIndexScan *) bis->ss.ps.plan)->indexqualorig));
		if (bis->biss_RelationDesc == NULL)
			continue;
		if (!OidIsValid(*indexid))
			*indexid = RelationGetRelid(bis->biss_RelationDesc);
		if (bis->biss_RelationDesc->rd_rel->relam == BRIN_AM_OID)
			*brin = true;
	}
	return quals;
}

/* LOSSY and RESIDUAL evidence of a Bitmap Heap Scan. */
static void
visit_bitmapheapscan(BitmapHeapScanState *bs, Collect *c)
{
	PlanState *ps = &bs->ss.ps;
	double	   rows = 0, filtered = 0, loops = 1, rechecked = 0, waste;
	bool	   counted = node_counts(ps, &rows, &filtered, &loops);
	bool	   brin;
	bool	   lossy;
	Oid		   indexid;
	Oid		   relid;
	List	  *keyquals = bitmap_keys(outerPlanState(ps), &indexid, &brin);

	if (counted)
		rechecked = ps->instrument->nfiltered2;
	loops = Max(loops, 1.0);
	relid = scan_relid(&bs->ss, rows + filtered + rechecked, loops);
	if (!OidIsValid(relid))
		return;
	lossy = bs->lossy_pages > 0 && !brin;
	if (lossy)
	{
		ApsQualCols kq;
		ApsEvItem  *it = new_item(c, relid, APS_EV_LOSSY);

		if (it != NULL)
		{
			classify(c, &bs->ss, keyquals, &kq);
			for (int i = 0; i < kq.neq; i++)
				item_add_col(it, kq.eq[i], APS_COL_EQ);
			for (int i = 0; i < kq.nrange; i++)
				item_add_col(it, kq.range[i], APS_COL_RANGE);
			it->indexid = indexid;
			it->scans = (int64) loops;
			it->rows_read = rows + filtered + rechecked;
			it->rows_filtered = rechecked;
			it->lossy_pages = bs->lossy_pages;
			it->exact_pages = bs->exact_pages;
			c->waste += rechecked;
		}
	}
	/*
	 * A lossy bitmap's recheck is work_mem's doing, not an index's; rows
	 * a filter removed count with the filter's columns, and without a
	 * filter, only a BRIN index's recheck (a btree could do better).
	 */
	waste = filtered + (lossy ? 0 : rechecked);
	if (counted && waste > 0 && (ps->plan->qual != NIL || brin))
		residual_item(c, &bs->ss, relid, indexid, NULL, false, ps->plan->qual,
					  keyquals, loops, rows + filtered + rechecked, waste);
}

static void
visit_node(PlanState *ps, Collect *c, double limit_rows)
{
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
			visit_seqscan((ScanState *) ps, c);
			break;
		case T_IndexScanState:
		case T_IndexOnlyScanState:
			visit_indexscan(ps, c, limit_rows);
			break;
		case T_BitmapHeapScanState:
			visit_bitmapheapscan((BitmapHeapScanState *) ps, c);
			break;
		case T_SortState:
			visit_sort(ps, c, limit_rows);
			break;
		case T_NestLoopState:
			visit_nestloop(ps, c);
			break;
		case T_HashJoinState:
			join_side(ps, ((HashJoin *) ps->plan)->hashclauses, false, c);
			join_side(ps, ((HashJoin *) ps->plan)->hashclauses, true, c);
			break;
		case T_MergeJoinState:
			join_side(ps, ((MergeJoin *) ps->plan)->mergeclauses, false, c);
			join_side(ps, ((MergeJoin *) ps->plan)->mergeclauses, true, c);
			break;
		default:
			break;
	}
}

static void
walk_array(PlanState **members, int n, Collect *c)
{
	if (members == NULL)
		return;
	for (int i = 0; i < n; i++)
		if (members[i] != NULL)
			walk(members[i], c, -1);
}

/*
 * Visit ps and everything below it.  limit_rows is the output of a Limit
 * directly above (through Gather Merge), for the Sort it may sit on.
 */
static void
walk(PlanState *ps, Collect *c, double limit_rows)
{
	double child_limit = -1;

	if (ps == NULL || ps->plan == NULL)
		return;
	visit_node(ps, c, limit_rows);

	if (IsA(ps, LimitState) && ps->instrument != NULL)
	{
		double rows, filtered, loops;

		if (node_counts(ps, &rows, &filtered, &loops))
			child_limit = rows;
	}
	else if (IsA(ps, GatherMergeState))
		child_limit = limit_rows;

	c->parent = ps;
	walk(outerPlanState(ps), c, child_limit);
	c->parent = ps;
	walk(innerPlanState(ps), c, -1);
	c->parent = ps;

	switch (nodeTag(ps))
	{
		case T_AppendState:
			walk_array(((AppendState *) ps)->appendplans,
					   ((AppendState *) ps)->as_nplans, c);
			break;
		case T_MergeAppendState:
			walk_array(((MergeAppendState *) ps)->mergeplans,
					   ((MergeAppendState *) ps)->ms_nplans, c);
			break;
		case T_BitmapAndState:
			walk_array(((BitmapAndState *) ps)->bitmapplans,
					   ((BitmapAndState *) ps)->nplans, c);
			break;
		case T_BitmapOrState:
			walk_array(((BitmapOrState *) ps)->bitmapplans,
					   ((BitmapOrState *) ps)->nplans, c);
			break;
		case T_SubqueryScanState:
			walk(((SubqueryScanState *) ps)->subplan, c, -1);
			break;
		case T_CustomScanState:
		{
			ListCell *lc;

			foreach (lc, ((CustomScanState *) ps)->custom_ps)
				walk(lfirst(lc), c, -1);
		}
		break;
		default:
			break;
	}
}

/*
 * Could a scan of relid give evidence: a user table that is not known to be
 * smaller than apiscale.min_table_rows?  (A partition always could: its
 * partitioned table may be large.)
 */
static bool
big_enough(Oid relid)
{
	HeapTuple tup;
	bool	  big;

	if (relid < FirstNormalObjectId)
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	big = ((Form_pg_class) GETSTRUCT(tup))->relispartition ||
		  ((Form_pg_class) GETSTRUCT(tup))->reltuples < 0 ||
		  ((Form_pg_class) GETSTRUCT(tup))->reltuples >=
			  (float4) aps_min_table_rows;
	ReleaseSysCache(tup);
	return big;
}

/*
 * Could this plan give evidence?  Sets APS_ADVISE_COUNT for a scan whose
 * evidence needs row counts on every run (a Seq Scan of a table that may
 * be large, an index scan or bitmap heap scan with a filter), APS_ADVISE_LOOK
 * for a Bitmap Heap Scan without a filter (lossy pages are counted anyway),
 * and remembers a plain Index Scan expected to fetch APS_COVER_MIN_ROWS rows
 * per scan (covering evidence).  Table sizes are looked up only where that
 * decides something.
 */
static bool
plan_wants_walker(Plan *plan, void *context)
{
	Wants *w = (Wants *) context;
	Index  rti = 0;
	Oid	   relid;

	if (plan == NULL)
		return false;
	switch (nodeTag(plan))
	{
		case T_SeqScan:
			rti = ((Scan *) plan)->scanrelid;
			break;
		case T_IndexScan:
		case T_IndexOnlyScan:
			if (plan->qual != NIL)
				rti = ((Scan *) plan)->scanrelid;
			else if (IsA(plan, IndexScan) &&
					 plan->plan_rows >= APS_COVER_MIN_ROWS &&
					 !OidIsValid(w->cover_relid) &&
					 ((Scan *) plan)->scanrelid <=
						 (Index) list_length(w->pstmt->rtable))
				w->cover_relid =
					rt_fetch(((Scan *) plan)->scanrelid, w->pstmt->rtable)
						->relid;
			break;
		case T_BitmapHeapScan:
			if (plan->qual != NIL)
				rti = ((Scan *) plan)->scanrelid;
			else if (!(w->flags & APS_ADVISE_LOOK) &&
					 ((Scan *) plan)->scanrelid <=
						 (Index) list_length(w->pstmt->rtable) &&
					 big_enough(
						 rt_fetch(((Scan *) plan)->scanrelid, w->pstmt->rtable)
							 ->relid))
				w->flags |= APS_ADVISE_LOOK;
			break;
		default:
			break;
	}
	if (rti > 0 && rti <= (Index) list_length(w->pstmt->rtable))
	{
		relid = rt_fetch(rti, w->pstmt->rtable)->relid;
		if (big_enough(relid))
		{
			w->flags |= APS_ADVISE_COUNT;
			return true; /* nothing more to learn */
		}
	}
	return aps_plan_tree_walker(plan, plan_wants_walker, context);
}

/*
 * Call walker(child, context) for each child of plan: the outer and inner
 * plans, Append / MergeAppend / BitmapAnd / BitmapOr members, a subquery
 * scan's plan and a custom scan's plans.  Stops at, and returns, the first
 * true.  (Sub plans and init plans are in PlannedStmt.subplans.)
 */
bool
aps_plan_tree_walker(Plan *plan, bool (*walker)(Plan *, void *), void *context)
{
	List	 *members = NIL;
	ListCell *lc;

	if (plan == NULL)
		return false;
	switch (nodeTag(plan))
	{
		case T_Append:
			members = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			members = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_BitmapAnd:
			members = ((BitmapAnd *) plan)->bitmapplans;
			break;
		case T_BitmapOr:
			members = ((BitmapOr *) plan)->bitmapplans;
			break;
		case T_CustomScan:
			members = ((CustomScan *) plan)->custom_plans;
			break;
		case T_SubqueryScan:
			if (walker(((SubqueryScan *) plan)->subplan, context))
				return true;
			break;
		default:
			break;
	}
	foreach (lc, members)
		if (walker(lfirst(lc), context))
			return true;
	return walker(plan->lefttree, context) || walker(plan->righttree, context);
}

/* Has this backend recorded covering evidence of (userid, queryid)? */
static bool
cover_recorded(Oid userid, uint64 queryid, bool mark)
{
	uint32	   gen = aps_evidence_generation();
	CoverMemo *slot = &cover_memo[(queryid ^ userid) & (COVER_MEMO_SLOTS - 1)];

	if (gen != cover_memo_generation)
	{
		memset(cover_memo, 0, sizeof(cover_memo));
		cover_memo_generation = gen;
	}
	if (mark)
	{
		slot->queryid = queryid;
		slot->userid = userid;
		return true;
	}
	return slot->queryid == queryid && slot->userid == userid &&
		   OidIsValid(userid);
}

/*
 * What a sampled run of pstmt should do for the advisor: APS_ADVISE_COUNT
 * (count rows per node and walk the plan at ExecutorEnd), APS_ADVISE_LOOK
 * (walk it without counts), or 0.
 */
int
aps_advisor_plan_wants(PlannedStmt *pstmt)
{
	Wants	  w;
	ListCell *lc;

	if (pstmt == NULL || pstmt->commandType == CMD_UTILITY)
		return 0;
	w.pstmt = pstmt;
	w.flags = 0;
	w.cover_relid = InvalidOid;
	if (!plan_wants_walker(pstmt->planTree, &w))
	{
		foreach (lc, pstmt->subplans)
			if (plan_wants_walker(lfirst(lc), &w))
				break;
	}
	/* Covering evidence: on the first run in this backend only. */
	if (!(w.flags & APS_ADVISE_COUNT) && OidIsValid(w.cover_relid) &&
		!cover_recorded(GetUserId(), pstmt->queryId, false) &&
		big_enough(w.cover_relid))
		w.flags |= APS_ADVISE_COUNT;
	return w.flags;
}

/* Collects the output parameters of every init plan in plan and below. */
static bool
initplan_params_walker(Plan *plan, void *context)
{
	Bitmapset **params = (Bitmapset **) context;
	ListCell   *lc;

	if (plan == NULL)
		return false;
	foreach (lc, plan->initPlan)
	{
		SubPlan	 *sp = lfirst(lc);
		ListCell *lp;

		if (!IsA(sp, SubPlan))
			continue;
		foreach (lp, sp->setParam)
			*params = bms_add_member(*params, lfirst_int(lp));
	}
	return aps_plan_tree_walker(plan, initplan_params_walker, context);
}

/*
 * Walk the finished plan of a sampled run and record its evidence.  Called
 * from ExecutorEnd, before the executor is shut down.
 */
void
aps_advisor_collect(QueryDesc *qd, const char *source, int location, int len)
{
	Collect		  c;
	ListCell	 *lc;
	ApsSample	  sample;
	ApsSample	 *keep = NULL;
	uint64		  queryid = qd->plannedstmt->queryId;
	MemoryContext walkcxt;
	MemoryContext oldcxt;

	if (qd->planstate == NULL || qd->estate == NULL)
		return;

	/*
	 * What the walk allocates (expression copies and texts, translated
	 * quals, the sample) goes with this context: ExecutorEnd may run in a
	 * long-lived one (a function's, a portal's).
	 */
	walkcxt = AllocSetContextCreate(CurrentMemoryContext, "apiscale advisor",
									ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(walkcxt);
	memset(&c, 0, sizeof(c));
	c.pstmt = qd->plannedstmt;
	c.qcx.exprs = &c.exprs;
	if (qd->params != NULL && qd->params->paramFetch == NULL)
		c.qcx.params = qd->params;
	initplan_params_walker(qd->plannedstmt->planTree, &c.qcx.initplan_params);
	foreach (lc, qd->plannedstmt->subplans)
		initplan_params_walker(lfirst(lc), &c.qcx.initplan_params);
	walk(qd->planstate, &c, -1);
	foreach (lc, qd->estate->es_subplanstates)
	{
		c.parent = NULL;
		walk((PlanState *) lfirst(lc), &c, -1);
	}
	if (c.nitems > 0)
	{
		Oid	 userid = GetUserId();
		bool params_known =
			qd->params == NULL || qd->params->paramFetch == NULL;
		ApsEvRecorded done;

		/*
		 * Most runs add to a known entry under the shared lock; the first
		 * run, a more wasteful one and a new expression are asked for.
		 */
		done = aps_evidence_record(userid, MyDatabaseId, queryid, c.items,
								   c.nitems, &c.exprs.ev, c.waste,
								   params_known, NULL);
		if (done != APS_EV_RECORDED)
		{
			aps_exprs_make_texts(&c.exprs);
			if (done == APS_EV_WANTS_SAMPLE)
			{
				aps_sample_make(qd, source, location, len, &sample);
				keep = &sample;
			}
			done = aps_evidence_record(userid, MyDatabaseId, queryid, c.items,
									   c.nitems, &c.exprs.ev, c.waste,
									   params_known, keep);
			/* A reset in between: this run starts the entry over. */
			if (done == APS_EV_WANTS_SAMPLE)
			{
				aps_sample_make(qd, source, location, len, &sample);
				(void) aps_evidence_record(userid, MyDatabaseId, queryid,
										   c.items, c.nitems, &c.exprs.ev,
										   c.waste, params_known, &sample);
			}
		}
		if (c.covering)
			cover_recorded(userid, queryid, true);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(walkcxt);
}
