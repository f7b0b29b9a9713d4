/*-------------------------------------------------------------------------
 *
 * advisor.c
 *		Index evidence from finished plans (the executor side of the index
 *		advisor).
 *
  * On a sampled execution whose plan has a sequential scan of a user table
 * not known to be smaller than apiscale.min_table_rows, ExecutorStart asks
 * for per-node row counts (no clock reads),
 * and at ExecutorEnd the finished plan state tree is walked:
 *
 *	WHERE	a Seq Scan whose filter removed rows: its equality and range
 *			quals on plain columns (=, IN, IS NULL, a boolean column; <,
 *			<=, >, >=), compared with a constant, a parameter or anything
 *			else that does not read the scanned row.
 *	JOIN	the join keys of a Nested Loop over a Seq Scan inner side (join
 *			filter or parameterized scan filter), and of a Hash or Merge
 *			Join for each side that is a Seq Scan.
 *	ORDER	a Sort whose keys are all columns of one Seq Scan below it
 *			(directly or through joins): the sort keys with their
 *			direction, after the scan's equality columns.  The input
 *			sorts of a Merge Join are join evidence instead.
 *	UNINDEXABLE  a filter no btree can serve: LIKE/ILIKE with a leading
 *			wildcard, operators in no btree operator family (<>, @>, ~ ...).
 *
 * Every node kind is walked (children, Append/MergeAppend members, bitmap
 * and custom children, subquery scans, and every init plan, sub plan and
 * CTE via es_subplanstates); nodes without instrumentation and shapes the
 * walker does not recognise add nothing.  Parallel workers are never
 * walked: the leader's nodes hold the workers' counts too.
 *
 * Nothing here looks up more than the btree interpretation of an operator
 * (cached per backend) and the output function of a built-in parameter
 * type; partitions are mapped to their root, and table sizes checked, when
 * the advice is read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/stratnum.h"
#include "access/detoast.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator_d.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "advisor.h"
#include "compat.h"
#include "evidence.h"
#include "guc.h"

#define OP_CACHE_SLOTS 256 /* power of two */
#define RESOLVE_DEPTH  32

/* btree strategy of an operator: 0 none, 1-5 btree, 6 "<>" */
#define STRAT_NONE 0
#define STRAT_NE   6

typedef struct Collect
{
	PlanState *parent;			/* of the node being visited */
	Bitmapset *initplan_params; /* set by init plans: constants for a scan */
	ApsEvItem  items[APS_EV_MAX_ITEMS];
	int		   nitems;
	double	   waste;
} Collect;

/* Columns a scan's filter compares, by role. */
typedef struct QualCols
{
	int	  neq;
	int16 eq[APS_EV_MAX_COLS];
	int	  nrange;
	int16 range[APS_EV_MAX_COLS];
	int	  njoin; /* compared with an outer row (PARAM_EXEC) */
	int16 join[APS_EV_MAX_COLS];
	int	  nunidx; /* filters no btree can serve */
	int16 unidx[APS_EV_MAX_COLS];
	Oid	  unidx_op[APS_EV_MAX_COLS];
	uint8 unidx_why[APS_EV_MAX_COLS];
} QualCols;

/* Backend-local cache: operator -> btree strategy. */
static Oid	 op_cache_oid[OP_CACHE_SLOTS];
static uint8 op_cache_strat[OP_CACHE_SLOTS];

static void walk(PlanState *ps, Collect *c, double limit_rows);

/* The btree strategy (any btree family) of opno, cached. */
static int
op_strategy(Oid opno)
{
	int	  slot = (int) (opno & (OP_CACHE_SLOTS - 1));
	List *interps;
	int	  strat = STRAT_NONE;

	if (op_cache_oid[slot] == opno && opno != InvalidOid)
		return op_cache_strat[slot];

	interps = get_op_btree_interpretation(opno);
	if (interps != NIL)
	{
		OpBtreeInterpretation *i = linitial(interps);

		strat = i->strategy;
		if (strat < 1 || strat > STRAT_NE)
			strat = STRAT_NONE;
		list_free_deep(interps);
	}
	op_cache_oid[slot] = opno;
	op_cache_strat[slot] = (uint8) strat;
	return strat;
}

static bool
is_like_op(Oid opno)
{
	switch (opno)
	{
		case OID_NAME_LIKE_OP:
		case OID_TEXT_LIKE_OP:
		case OID_BPCHAR_LIKE_OP:
		case OID_NAME_ICLIKE_OP:
		case OID_TEXT_ICLIKE_OP:
		case OID_BPCHAR_ICLIKE_OP:
		case OID_BYTEA_LIKE_OP:
			return true;
		default:
			return false;
	}
}

static inline Node *
strip(Node *n)
{
	while (n != NULL && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	return n;
}

/* A plain column of the scanned relation (varno scanrelid)? */
static inline bool
is_scan_column(Node *n, Index scanrelid)
{
	Var *v;

	n = strip(n);
	if (n == NULL || !IsA(n, Var))
		return false;
	v = (Var *) n;
	return v->varno == (int) scanrelid && v->varlevelsup == 0 &&
		   v->varattno > 0;
}

/*
 * Does node use a value from an outer row (a nested loop or correlated sub
 * plan parameter)?  context: the init plans' output parameters, which are
 * computed once and are constants to the scan.
 */
static bool
contains_exec_param_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return !bms_is_member(((Param *) node)->paramid,
							  (Bitmapset *) context);
	return expression_tree_walker(node, contains_exec_param_walker, context);
}

static void
add_col(int16 *cols, int *n, int16 attnum)
{
	for (int i = 0; i < *n; i++)
		if (cols[i] == attnum)
			return;
	if (*n < APS_EV_MAX_COLS)
		cols[(*n)++] = attnum;
}

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
 * The user table a Seq Scan reads, or InvalidOid (catalogs, views, and
 * small non-partition tables are skipped here; read time checks again).
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

/*
 * Sort a scan's filter quals into equality, range and join columns, and
 * record the ones no btree can serve.
 */
static void
classify_qual(Node *qual, Index scanrelid, QualCols *qc, Collect *c)
{
	qual = strip(qual);
	if (qual == NULL)
		return;

	if (IsA(qual, BoolExpr) && ((BoolExpr *) qual)->boolop == AND_EXPR)
	{
		ListCell *lc;

		foreach (lc, ((BoolExpr *) qual)->args)
			classify_qual(lfirst(lc), scanrelid, qc, c);
		return;
	}

	if (IsA(qual, OpExpr) && list_length(((OpExpr *) qual)->args) == 2)
	{
		OpExpr *op = (OpExpr *) qual;
		Node   *l = linitial(op->args);
		Node   *r = lsecond(op->args);
		Node   *col;
		Node   *other;
		int		strat;
		int16	attnum;

		if (is_scan_column(l, scanrelid) && !contain_var_clause(r))
			col = strip(l), other = r;
		else if (is_scan_column(r, scanrelid) && !contain_var_clause(l))
			col = strip(r), other = l;
		else
			return;
		attnum = ((Var *) col)->varattno;
		strat = op_strategy(op->opno);

		if (strat == BTEqualStrategyNumber)
		{
			if (contains_exec_param_walker(other, c->initplan_params))
				add_col(qc->join, &qc->njoin, attnum);
			else
				add_col(qc->eq, &qc->neq, attnum);
		}
		else if (strat >= BTLessStrategyNumber &&
				 strat <= BTGreaterStrategyNumber)
			add_col(qc->range, &qc->nrange, attnum);
		else
		{
			uint8 why = APS_UNIDX_OPERATOR;

			if (is_like_op(op->opno))
			{
				Node *pat = strip(other);

				/* Only a constant pattern tells; a fixed prefix is fine. */
				if (col != strip(l) || pat == NULL || !IsA(pat, Const) ||
					((Const *) pat)->constisnull)
					return;
				else
				{
					Const *k = (Const *) pat;
					char  *s;

					/* Text types only (a name is not a varlena). */
					if (k->consttype != TEXTOID && k->consttype != BPCHAROID &&
						k->consttype != VARCHAROID)
						return;
					s = TextDatumGetCString(k->constvalue);
					if (s[0] != '%' && s[0] != '_')
					{
						pfree(s);
						return;
					}
					pfree(s);
					why = APS_UNIDX_LEADING_WILDCARD;
				}
			}
			for (int i = 0; i < qc->nunidx; i++)
				if (qc->unidx[i] == attnum && qc->unidx_op[i] == op->opno)
					return;
			if (qc->nunidx < APS_EV_MAX_COLS)
			{
				qc->unidx[qc->nunidx] = attnum;
				qc->unidx_op[qc->nunidx] = op->opno;
				qc->unidx_why[qc->nunidx] = why;
				qc->nunidx++;
			}
		}
		return;
	}

	if (IsA(qual, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) qual;

		if (sa->useOr && list_length(sa->args) == 2 &&
			is_scan_column(linitial(sa->args), scanrelid) &&
			!contain_var_clause(lsecond(sa->args)) &&
			op_strategy(sa->opno) == BTEqualStrategyNumber)
			add_col(qc->eq, &qc->neq,
					((Var *) strip(linitial(sa->args)))->varattno);
		return;
	}

	if (IsA(qual, NullTest))
	{
		NullTest *nt = (NullTest *) qual;

		if (nt->nulltesttype == IS_NULL && !nt->argisrow &&
			is_scan_column((Node *) nt->arg, scanrelid))
			add_col(qc->eq, &qc->neq,
					((Var *) strip((Node *) nt->arg))->varattno);
		return;
	}

	if (IsA(qual, Var) && is_scan_column(qual, scanrelid) &&
		((Var *) qual)->vartype == BOOLOID)
		add_col(qc->eq, &qc->neq, ((Var *) qual)->varattno);
}

static void
classify_quals(List *quals, Index scanrelid, QualCols *qc, Collect *c)
{
	ListCell *lc;

	memset(qc, 0, sizeof(*qc));
	foreach (lc, quals)
		classify_qual(lfirst(lc), scanrelid, qc, c);
	qsort(qc->eq, qc->neq, sizeof(int16), cmp_int16);
	qsort(qc->range, qc->nrange, sizeof(int16), cmp_int16);
	qsort(qc->join, qc->njoin, sizeof(int16), cmp_int16);
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

	expr = strip(expr);
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
	PlanState *ps = &ss->ps;
	double	   rows, filtered, loops, read;
	Oid		   relid;
	QualCols   qc;
	ApsEvItem *it;

	if (ps->plan->qual == NIL || !node_counts(ps, &rows, &filtered, &loops))
		return;
	read = rows + filtered;
	if (filtered <= 0)
		return;
	relid = scan_relid(ss, read, loops);
	if (!OidIsValid(relid))
		return;
	classify_quals(ps->plan->qual, ((Scan *) ps->plan)->scanrelid, &qc, c);

	/*
	 * Filters no btree can serve are reported when they are all the scan
	 * has: then they are why it reads everything.
	 */
	if (qc.neq + qc.nrange + qc.njoin == 0)
	{
		for (int i = 0; i < qc.nunidx; i++)
		{
			it = new_item(c, relid, APS_EV_UNINDEXABLE);
			if (it == NULL)
				break;
			item_add_col(it, qc.unidx[i], 0);
			it->opno = qc.unidx_op[i];
			it->why = qc.unidx_why[i];
			it->scans = (int64) loops;
			it->rows_read = read;
			it->rows_filtered = filtered;
		}
		if (qc.nunidx > 0)
			c->waste += filtered;
		return;
	}

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
	else if (qc.neq + qc.nrange > 0)
	{
		it = new_item(c, relid, APS_EV_WHERE);
		if (it == NULL)
			return;
		for (int i = 0; i < qc.neq; i++)
			item_add_col(it, qc.eq[i], APS_COL_EQ);
		for (int i = 0; i < qc.nrange; i++)
			item_add_col(it, qc.range[i], APS_COL_RANGE);
	}
	else
		return;
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
	Sort	  *sort = (Sort *) ps->plan;
	PlanState *input = skip_passthrough(outerPlanState(ps));
	ScanState *scan = NULL;
	double	   rows, filtered, loops, read, sorted, sloops, sfilt;
	Oid		   relid;
	QualCols   qc;
	ApsEvItem *it;
	int16	   keys[APS_EV_MAX_COLS];
	uint8	   flags[APS_EV_MAX_COLS];

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
	memset(&qc, 0, sizeof(qc));
	if (scan->ps.plan->qual != NIL)
		classify_quals(scan->ps.plan->qual,
					   ((Scan *) scan->ps.plan)->scanrelid, &qc, c);
	it = new_item(c, relid, APS_EV_ORDER);
	if (it == NULL)
		return;
	for (int i = 0; i < qc.neq; i++)
		item_add_col(it, qc.eq[i], APS_COL_EQ);
	for (int i = 0; i < sort->numCols; i++)
		item_add_col(it, keys[i], flags[i]); /* an eq column stays eq */
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
	ScanState *scan = NULL;
	int16	   cols[APS_EV_MAX_COLS];
	int		   ncols = 0;
	ListCell  *lc;
	double	   rows, filtered, loops, read, jrows, jfilt, jloops;
	Oid		   relid;
	QualCols   qc;
	ApsEvItem *it;

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
		add_col(cols, &ncols, attnum);
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
	memset(&qc, 0, sizeof(qc));
	if (scan->ps.plan->qual != NIL)
		classify_quals(scan->ps.plan->qual,
					   ((Scan *) scan->ps.plan)->scanrelid, &qc, c);
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
			op_strategy(op->opno) != BTEqualStrategyNumber)
			continue;
		l = strip(linitial(op->args));
		r = strip(lsecond(op->args));
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

static void
visit_node(PlanState *ps, Collect *c, double limit_rows)
{
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
			visit_seqscan((ScanState *) ps, c);
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
 * Could this plan give evidence?  Every kind of evidence needs a Seq Scan of
 * a user table that is not too small, anywhere (sub plans included).
 * Decides whether a sampled run is instrumented at all.
 */
static bool
plan_wants_walker(Plan *plan, void *context)
{
	PlannedStmt *pstmt = (PlannedStmt *) context;

	if (plan == NULL)
		return false;
	if (IsA(plan, SeqScan))
	{
		Index rti = ((Scan *) plan)->scanrelid;

		if (rti > 0 && rti <= (Index) list_length(pstmt->rtable) &&
			big_enough(rt_fetch(rti, pstmt->rtable)->relid))
			return true;
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

bool
aps_advisor_plan_wants(PlannedStmt *pstmt)
{
	ListCell *lc;

	if (pstmt == NULL || pstmt->commandType == CMD_UTILITY)
		return false;
	if (plan_wants_walker(pstmt->planTree, pstmt))
		return true;
	foreach (lc, pstmt->subplans)
		if (plan_wants_walker(lfirst(lc), pstmt))
			return true;
	return false;
}

/*
 * A value's text in the ISO date style and the postgres interval style,
 * which read back the same under any DateStyle and IntervalStyle (the
 * session's own style may not: 'SQL, YMD' prints 01/02/2026).  The
 * output functions of built-in types raise no errors, and the styles are
 * plain variables, set back right after.
 */
static char *
print_portable(Oid typoutput, Datum value)
{
	int	  save_style = DateStyle;
	int	  save_order = DateOrder;
	int	  save_interval = IntervalStyle;
	char *str;

	DateStyle = USE_ISO_DATES;
	DateOrder = DATEORDER_YMD;
	IntervalStyle = INTSTYLE_POSTGRES;
	str = OidOutputFunctionCall(typoutput, value);
	DateStyle = save_style;
	DateOrder = save_order;
	IntervalStyle = save_interval;
	return str;
}

/* Is a parameter value small enough to print into a sample? */
static bool
value_fits(Oid type, Datum value)
{
	int16 typlen = get_typlen(type);

	if (typlen == -1)
		return toast_raw_datum_size(value) <= APS_PARAMS_LEN;
	if (typlen == -2)
		return strnlen(DatumGetCString(value), APS_PARAMS_LEN + 1) <=
			   APS_PARAMS_LEN;
	return true;
}

/*
 * Print the parameter values of params into sample (built-in types only:
 * their output functions cannot fail).  Leaves nparams -1 when the values
 * are not there to print.
 */
static void
sample_params(ParamListInfo params, ApsSample *s)
{
	int pos = 0;

	s->nparams = -1;
	s->params_len = 0;
	if (params == NULL)
	{
		s->nparams = 0;
		return;
	}
	if (params->paramFetch != NULL || params->numParams > 64)
		return;
	for (int i = 0; i < params->numParams; i++)
	{
		ParamExternData *p = &params->params[i];
		int32			 len = -1;
		char			*str = NULL;
		Oid				 typoutput;
		bool			 varlena;

		if (!OidIsValid(p->ptype) || p->ptype >= FirstGenbkiObjectId)
			return;
		/* A value too large to keep is not printed at all. */
		if (!p->isnull && !value_fits(p->ptype, p->value))
			return;
		if (!p->isnull)
		{
			getTypeOutputInfo(p->ptype, &typoutput, &varlena);
			str = print_portable(typoutput, p->value);
			len = (int32) strlen(str);
		}
		if (pos + (int) sizeof(Oid) + (int) sizeof(int32) + Max(len, 0) + 1 >
			APS_PARAMS_LEN)
			return;
		memcpy(s->params + pos, &p->ptype, sizeof(Oid));
		pos += sizeof(Oid);
		memcpy(s->params + pos, &len, sizeof(int32));
		pos += sizeof(int32);
		if (len >= 0)
		{
			memcpy(s->params + pos, str, len + 1);
			pos += len + 1;
		}
	}
	s->nparams = params->numParams;
	s->params_len = pos;
}

static void
keep_setting(char *dst, size_t size, const char *name)
{
	const char *value = GetConfigOption(name, true, false);

	/* A value that does not fit is not kept cut short: the reader's stands. */
	if (strlcpy(dst, value ? value : "", size) >= size)
		dst[0] = '\0';
}

/*
 * The statement's own text (src/loc/len: within the enclosing utility
 * statement's text, if any), its parameters and the settings its literals
 * were read with, for re-planning.
 */
static void
make_sample(QueryDesc *qd, const char *src, int loc, int len, ApsSample *s)
{
	memset(s, 0, sizeof(*s));
	s->userid = GetUserId();
	if (strlcpy(s->search_path,
				namespace_search_path ? namespace_search_path : "",
				sizeof(s->search_path)) >= sizeof(s->search_path))
	{
		/* Cut short it would name other schemas: not kept at all. */
		s->search_path[0] = '\0';
		s->path_too_long = true;
	}
	keep_setting(s->datestyle, sizeof(s->datestyle), "DateStyle");
	keep_setting(s->intervalstyle, sizeof(s->intervalstyle), "IntervalStyle");
	keep_setting(s->timezone, sizeof(s->timezone), "TimeZone");
	keep_setting(s->std_strings, sizeof(s->std_strings),
				 "standard_conforming_strings");
	s->text_len = -1;
	s->nparams = -1;
	if (!aps_capture_parameters || src == NULL)
		return;
	src = CleanQuerytext(src, &loc, &len);
	if (len >= aps_max_query_length)
	{
		s->too_long = true; /* the normalized text is cut short too */
		return;
	}
	s->text = pnstrdup(src, len);
	s->text_len = len;
	sample_params(qd->params, s);
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
 * Walk the finished plan of a sampled, instrumented run and record its
 * evidence.  Called from ExecutorEnd, before the executor is shut down.
 */
void
aps_advisor_collect(QueryDesc *qd, const char *source, int location, int len)
{
	Collect	   c;
	ListCell  *lc;
	ApsSample  sample;
	ApsSample *keep = NULL;
	uint64	   queryid = qd->plannedstmt->queryId;

	if (qd->planstate == NULL || qd->estate == NULL)
		return;
	memset(&c, 0, sizeof(c));
	initplan_params_walker(qd->plannedstmt->planTree, &c.initplan_params);
	foreach (lc, qd->plannedstmt->subplans)
		initplan_params_walker(lfirst(lc), &c.initplan_params);
	walk(qd->planstate, &c, -1);
	foreach (lc, qd->estate->es_subplanstates)
	{
		c.parent = NULL;
		walk((PlanState *) lfirst(lc), &c, -1);
	}
	if (c.nitems == 0)
	{
		bms_free(c.initplan_params);
		return;
	}

	if (aps_evidence_wants_sample(GetUserId(), MyDatabaseId, queryid, c.waste,
								  qd->params == NULL ||
									  qd->params->paramFetch == NULL))
	{
		make_sample(qd, source, location, len, &sample);
		keep = &sample;
	}
	aps_evidence_record(GetUserId(), MyDatabaseId, queryid, c.items, c.nitems,
						c.waste, keep);
	if (keep != NULL && keep->text != NULL)
		pfree(keep->text);
	bms_free(c.initplan_params);
}
