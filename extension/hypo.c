/*-------------------------------------------------------------------------
 *
 * hypo.c
 *		Hypothetical btree indexes and the re-plan that proves them.
 *
 * A candidate index is shown to the planner through get_relation_info_hook
 * as one more IndexOptInfo of its table (and of each leaf partition of a
 * partitioned table, with the columns mapped by name), marked hypothetical:
 * nothing is written to the catalogs and nothing is built.  Its size is
 * estimated from the table's row count and the columns' average widths
 * (for a partial index, the share of rows its predicate keeps).  Columns
 * may be expressions, and INCLUDE columns may follow the keys.
 *
 * A statement is re-planned, never executed:
 *	- in a subtransaction that is always rolled back, so locks, GUC changes
 *	  and the user switch all end with it, and an error (a dropped table, a
 *	  changed column) only costs the candidate its proof;
 *	- as the user who ran it, inside a security-restricted operation, with
 *	  the search_path it ran with;
 *	- with the parameter values of its representative run bound as
 *	  constants (a custom plan), or generically when none were kept.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/amapi.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "parser/parse_type.h"
#include "storage/bufpage.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

#include "advisor.h"
#include "antipattern.h"
#include "hypo.h"

static get_relation_info_hook_type prev_get_relation_info = NULL;

/* The candidate shown to the planner right now, or NULL. */
static const ApsHypoIndex *active_hypo = NULL;

/* Are we re-planning (our own hooks leave such statements alone)? */
bool aps_replanning = false;

/*
 * Estimated size of an index of tuples entries of the given column widths:
 * pages and tree height.
 */
static void
estimate_size(const int32 *widths, int ncols, double tuples,
			  BlockNumber *pages, int *height)
{
	double width = MAXALIGN(sizeof(IndexTupleData));
	double per_page;
	double leaf_pages;
	double fanout;
	int	   h = 0;

	for (int i = 0; i < ncols; i++)
		width += widths[i];
	width = MAXALIGN((Size) width) + sizeof(ItemIdData);
	/* Leaf pages filled to the btree default of 90%. */
	per_page = Max(1.0, floor((BLCKSZ - SizeOfPageHeaderData) * 0.9 / width));
	leaf_pages = Max(1.0, ceil(Max(tuples, 0.0) / per_page));
	fanout = Max(2.0, per_page);
	for (double p = leaf_pages; p > 1.0; p = ceil(p / fanout))
		h++;
	*pages =
		(BlockNumber) Min(leaf_pages * 1.01 + h + 1, (double) MaxBlockNumber);
	*height = h;
}

/* Vars of varno 1 and hypo's table's attnos, made those of rel (relid). */
typedef struct MapVars
{
	Oid	  from;	 /* hypo's table */
	Oid	  to;	 /* the relation planned */
	Index varno; /* its range table index */
	bool  failed;
} MapVars;

static Node *
map_vars_mutator(Node *node, void *context)
{
	MapVars *m = (MapVars *) context;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0)
	{
		Var *v = (Var *) copyObject(node);

		if (m->from != m->to && v->varattno > 0)
		{
			char *name = get_attname(m->from, v->varattno, true);

			v->varattno = name ? get_attnum(m->to, name) : InvalidAttrNumber;
			if (v->varattno == InvalidAttrNumber)
				m->failed = true;
		}
		v->varno = m->varno;
		v->varnosyn = m->varno;
		v->varattnosyn = v->varattno;
		return (Node *) v;
	}
	return expression_tree_mutator(node, map_vars_mutator, context);
}

/* Average width of a column, or of an expression's type. */
static int32
column_width(Relation rel, AttrNumber attnum, Node *expr)
{
	int32 w;

	if (attnum > 0)
	{
		Form_pg_attribute att =
			TupleDescAttr(RelationGetDescr(rel), attnum - 1);

		w = get_attavgwidth(RelationGetRelid(rel), attnum);
		if (w <= 0)
			w = get_typavgwidth(att->atttypid, att->atttypmod);
		return w;
	}
	return get_typavgwidth(exprType(expr), exprTypmod(expr));
}

/*
 * Columns and expressions of hypo for relation (relid, planned as range
 * table index varno): cols[] (0 for an expression), exprs (in order), pred.
 * False if a column cannot be found there (a partition lacking it).
 */
static bool
map_columns(Relation relation, Oid relid, Index varno,
			const ApsHypoIndex *hypo, AttrNumber *cols, List **exprs,
			List **pred)
{
	TupleDesc desc = RelationGetDescr(relation);
	MapVars	  m = {hypo->relid, relid, varno, false};

	for (int i = 0; i < hypo->ncols; i++)
	{
		if (hypo->attnum[i] == 0)
		{
			cols[i] = 0;
			continue;
		}
		if (relid == hypo->relid)
			cols[i] = hypo->attnum[i];
		else
		{
			char *name = get_attname(hypo->relid, hypo->attnum[i], true);

			cols[i] = name ? get_attnum(relid, name) : InvalidAttrNumber;
		}
		if (cols[i] <= 0 || cols[i] > desc->natts ||
			TupleDescAttr(desc, cols[i] - 1)->attisdropped)
			return false;
	}
	*exprs = (List *) map_vars_mutator((Node *) hypo->exprs, &m);
	*pred = (List *) map_vars_mutator((Node *) hypo->pred, &m);
	return !m.failed;
}

/* Build the IndexOptInfo of hypo for relation rel (relid). */
static IndexOptInfo *
make_index(PlannerInfo *root, RelOptInfo *rel, Oid relid,
		   const ApsHypoIndex *hypo)
{
	Relation		relation = table_open(relid, NoLock);
	TupleDesc		desc = RelationGetDescr(relation);
	IndexOptInfo   *index = makeNode(IndexOptInfo);
	IndexAmRoutine *am = GetIndexAmRoutineByAmId(BTREE_AM_OID, false);
	int				n = hypo->ncols;
	int				nkey = hypo->nkey;
	AttrNumber		cols[APS_HYPO_MAX_COLS];
	int32			widths[APS_HYPO_MAX_COLS];
	List		   *exprs;
	List		   *pred;
	ListCell	   *next_expr;

	if (!map_columns(relation, relid, rel->relid, hypo, cols, &exprs, &pred))
	{
		table_close(relation, NoLock);
		return NULL;
	}
	next_expr = list_head(exprs);

	index->indexoid = APS_HYPO_INDEX_OID;
	index->reltablespace = relation->rd_rel->reltablespace;
	index->rel = rel;
	index->ncolumns = n;
	index->nkeycolumns = nkey;
	index->indexkeys = palloc(sizeof(int) * n);
	index->indexcollations = palloc(sizeof(Oid) * nkey);
	index->opfamily = palloc(sizeof(Oid) * nkey);
	index->opcintype = palloc(sizeof(Oid) * nkey);
	index->sortopfamily = palloc(sizeof(Oid) * nkey);
	index->reverse_sort = palloc(sizeof(bool) * nkey);
	index->nulls_first = palloc(sizeof(bool) * nkey);
	index->canreturn = palloc(sizeof(bool) * n);
	index->opclassoptions = palloc0(sizeof(bytea *) * n);
	index->indextlist = NIL;
	for (int i = 0; i < n; i++)
	{
		Expr *key;
		Oid	  type;
		Oid	  collation;

		if (cols[i] > 0)
		{
			Form_pg_attribute att = TupleDescAttr(desc, cols[i] - 1);

			key = (Expr *) makeVar(rel->relid, cols[i], att->atttypid,
								   att->atttypmod, att->attcollation, 0);
		}
		else
		{
			if (next_expr == NULL)
				goto fail;
			key = (Expr *) lfirst(next_expr);
			next_expr = lnext(exprs, next_expr);
		}
		type = exprType((Node *) key);
		collation = exprCollation((Node *) key);
		widths[i] = column_width(relation, cols[i], (Node *) key);
		index->indexkeys[i] = cols[i];
		index->canreturn[i] = true;
		index->indextlist = lappend(index->indextlist,
									makeTargetEntry(key, i + 1, NULL, false));
		if (i < nkey)
		{
			Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);

			if (!OidIsValid(opclass))
				goto fail;
			index->indexcollations[i] = collation;
			index->opfamily[i] = get_opclass_family(opclass);
			index->opcintype[i] = get_opclass_input_type(opclass);
			index->sortopfamily[i] = index->opfamily[i];
			index->reverse_sort[i] = hypo->desc[i];
			index->nulls_first[i] = hypo->nulls_first[i];
		}
	}
	/* A partial index holds the rows its predicate keeps. */
	index->tuples =
		Max(rel->tuples, 0.0) *
		(pred != NIL ? Min(Max(hypo->pred_fraction, 0.0), 1.0) : 1.0);
	estimate_size(widths, n, index->tuples, &index->pages,
				  &index->tree_height);
	index->relam = BTREE_AM_OID;
	index->indexprs = exprs;
	index->indpred = pred;
	index->predOK = false; /* check_index_predicates decides */
	index->unique = false;
	index->immediate = true;
	index->hypothetical = true;
	index->amcanorderbyop = am->amcanorderbyop;
	index->amoptionalkey = am->amoptionalkey;
	index->amsearcharray = am->amsearcharray;
	index->amsearchnulls = am->amsearchnulls;
	index->amhasgettuple = (am->amgettuple != NULL);
	index->amhasgetbitmap = (am->amgetbitmap != NULL);
	index->amcanparallel = am->amcanparallel;
	index->amcanmarkpos = (am->ammarkpos != NULL && am->amrestrpos != NULL);
	index->amcostestimate = am->amcostestimate;
	table_close(relation, NoLock);
	return index;

fail:
	table_close(relation, NoLock);
	return NULL;
}

/*
 * What a written row costs hypo's upkeep, in the planner's cost units: a
 * descent of the tree to its leaf (btcostestimate's descent cost), the
 * entry, and one page written, for the share of rows a partial index
 * holds.  A delete's entry is removed by VACUUM later, at about the same
 * cost.  rel is hypo's table, locked by the caller.
 */
double
aps_hypo_write_cost(Relation rel, const ApsHypoIndex *hypo)
{
	int32	  widths[APS_HYPO_MAX_COLS];
	ListCell *next_expr = list_head(hypo->exprs);
	double	  tuples = Max(rel->rd_rel->reltuples, 1.0);
	double	  share =
		   hypo->pred != NIL ? Min(Max(hypo->pred_fraction, 0.0), 1.0) : 1.0;
	BlockNumber pages;
	int			height;
	double		descent;

	for (int i = 0; i < hypo->ncols; i++)
	{
		Node *expr = NULL;

		if (hypo->attnum[i] == 0 && next_expr != NULL)
		{
			expr = lfirst(next_expr);
			next_expr = lnext(hypo->exprs, next_expr);
		}
		widths[i] = hypo->attnum[i] > 0 || expr != NULL
						? column_width(rel, hypo->attnum[i], expr)
						: 8;
	}
	estimate_size(widths, hypo->ncols, tuples * share, &pages, &height);
	descent = (ceil(log2(Max(tuples * share, 2.0))) + (height + 1) * 50.0) *
			  cpu_operator_cost;
	return share * (descent + cpu_index_tuple_cost + seq_page_cost);
}

static bool
is_target(Oid relid)
{
	List *ancestors;
	bool  found;

	if (relid == active_hypo->relid)
		return true;
	if (!get_rel_relispartition(relid))
		return false;
	ancestors = get_partition_ancestors(relid);
	found = list_member_oid(ancestors, active_hypo->relid);
	list_free(ancestors);
	return found;
}

static void
aps_get_relation_info(PlannerInfo *root, Oid relid, bool inhparent,
					  RelOptInfo *rel)
{
	if (prev_get_relation_info)
		prev_get_relation_info(root, relid, inhparent, rel);

	/*
	 * A partitioned parent is never scanned: its leaves get the index.  If
	 * a real relation happens to own our made-up OID, nothing is injected
	 * (the plan could not be told apart).
	 */
	if (active_hypo != NULL && !inhparent && is_target(relid) &&
		get_rel_relkind(APS_HYPO_INDEX_OID) == '\0')
	{
		IndexOptInfo *index = make_index(root, rel, relid, active_hypo);

		if (index != NULL)
			rel->indexlist = lappend(rel->indexlist, index);
	}
}

void
aps_hypo_install(void)
{
	prev_get_relation_info = get_relation_info_hook;
	get_relation_info_hook = aps_get_relation_info;
}

/*
 * Does plan (or a plan below it) scan the hypothetical index?  *only: with
 * an index-only scan.
 */
static bool
plan_uses_hypo(Plan *plan, void *context)
{
	bool *only = (bool *) context;

	if (plan == NULL)
		return false;
	switch (nodeTag(plan))
	{
		case T_IndexScan:
			return ((IndexScan *) plan)->indexid == APS_HYPO_INDEX_OID;
		case T_IndexOnlyScan:
			if (((IndexOnlyScan *) plan)->indexid != APS_HYPO_INDEX_OID)
				return false;
			*only = true;
			return true;
		case T_BitmapIndexScan:
			return ((BitmapIndexScan *) plan)->indexid == APS_HYPO_INDEX_OID;
		default:
			return aps_plan_tree_walker(plan, plan_uses_hypo, context);
	}
}

static bool
stmt_uses_hypo(PlannedStmt *pstmt, bool *only)
{
	ListCell *lc;

	*only = false;
	if (plan_uses_hypo(pstmt->planTree, only))
		return true;
	foreach (lc, pstmt->subplans)
		if (plan_uses_hypo(lfirst(lc), only))
			return true;
	return false;
}

/* Parameter values of a sample, bound as constants. */
static ParamListInfo
sample_param_list(const ApsSample *s, Oid **types)
{
	ParamListInfo params = makeParamList(s->nparams);
	int			  pos = 0;

	*types = palloc0(sizeof(Oid) * Max(s->nparams, 1));
	for (int i = 0; i < s->nparams; i++)
	{
		ParamExternData *p = &params->params[i];
		Oid				 type;
		int32			 len;

		if (pos + (int) (sizeof(Oid) + sizeof(int32)) > s->params_len)
			elog(ERROR, "corrupt parameter values of a sample");
		memcpy(&type, s->params + pos, sizeof(Oid));
		pos += sizeof(Oid);
		memcpy(&len, s->params + pos, sizeof(int32));
		pos += sizeof(int32);
		(*types)[i] = type;
		p->ptype = type;
		p->pflags = PARAM_FLAG_CONST;
		if (len < 0)
		{
			p->isnull = true;
			p->value = (Datum) 0;
		}
		else
		{
			Oid typinput, typioparam;

			if (pos + len + 1 > s->params_len)
				elog(ERROR, "corrupt parameter values of a sample");
			getTypeInputInfo(type, &typinput, &typioparam);
			p->isnull = false;
			p->value = OidInputFunctionCall(typinput, (char *) s->params + pos,
											typioparam, -1);
			pos += len + 1;
		}
	}
	return params;
}

/* The query inside nested utility statements (see aps_utility_query). */
static RawStmt *
unwrap_utility(RawStmt *stmt)
{
	Node *inner;

	for (int depth = 0; depth < 8; depth++)
	{
		RawStmt *raw;

		inner = aps_utility_query(stmt->stmt);
		if (inner == NULL)
			break;
		raw = makeNode(RawStmt);
		raw->stmt = inner;
		raw->stmt_location = stmt->stmt_location;
		raw->stmt_len = stmt->stmt_len;
		stmt = raw;
	}
	return stmt;
}

/* Parse, analyze and plan text; the hypothetical index if hypo is set. */
static PlannedStmt *
plan_text(const char *text, const ApsSample *s, bool generic,
		  const ApsHypoIndex *hypo)
{
	List		 *raw = pg_parse_query(text);
	RawStmt		 *stmt;
	List		 *queries;
	Query		 *query;
	ParamListInfo params = NULL;
	PlannedStmt	 *pstmt;
	Oid			 *prepared = NULL;
	int			  nprepared = 0;

	if (list_length(raw) != 1)
		ereport(ERROR, (errmsg("statement text holds %d statements",
							   list_length(raw))));
	stmt = linitial_node(RawStmt, raw);

	/*
	 * A statement prepared with PREPARE is known by the PREPARE's text: plan
	 * its query, with the declared parameter types.
	 */
	if (IsA(stmt->stmt, PrepareStmt))
	{
		PrepareStmt *prep = (PrepareStmt *) stmt->stmt;
		ListCell	*lc;

		nprepared = list_length(prep->argtypes);
		prepared = palloc0(sizeof(Oid) * Max(nprepared, 1));
		foreach (lc, prep->argtypes)
			prepared[foreach_current_index(lc)] =
				typenameTypeId(NULL, lfirst_node(TypeName, lc));
	}
	stmt = unwrap_utility(stmt);

	if (generic)
	{
		Oid *types = prepared;
		int	 ntypes = nprepared;

		queries = pg_analyze_and_rewrite_varparams(stmt, text, &types, &ntypes,
												   NULL);
	}
	else
	{
		Oid *types;

		params = sample_param_list(s, &types);
		queries = pg_analyze_and_rewrite_fixedparams(stmt, text, types,
													 s->nparams, NULL);
	}
	if (list_length(queries) != 1)
		ereport(ERROR, (errmsg("statement rewrites to %d queries",
							   list_length(queries))));
	query = linitial_node(Query, queries);
	if (query->commandType == CMD_UTILITY)
		ereport(ERROR, (errmsg("utility statements are not re-planned")));

	active_hypo = hypo;
	PG_TRY();
	{
		pstmt = pg_plan_query(query, text, CURSOR_OPT_PARALLEL_OK, params);
	}
	PG_FINALLY();
	{
		active_hypo = NULL;
	}
	PG_END_TRY();
	return pstmt;
}

static void
set_one(const char *name, const char *value)
{
	if (value[0] != '\0')
		(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * The settings the statement ran with.  pg_temp goes last in the
 * search_path: the reader's temporary objects must not stand in for the
 * application's tables (the statement's own temporary tables are not there
 * to re-plan anyway).
 */
static void
apply_settings(const ApsSample *s)
{
	StringInfoData path;
	char		  *raw = pstrdup(s->search_path);
	List		  *names = NIL;
	ListCell	  *lc;

	/*
	 * The statement's schemas, without any pg_temp it named (that would be
	 * the reader's temporary schema now), then pg_temp last.  "$user" is
	 * the statement's user here.  A path that does not split is dropped.
	 */
	initStringInfo(&path);
	if (SplitIdentifierString(raw, ',', &names))
	{
		foreach (lc, names)
		{
			const char *name = lfirst(lc);

			if (strncmp(name, "pg_temp", 7) == 0)
				continue;
			appendStringInfo(&path, "%s, ",
							 strcmp(name, "$user") == 0
								 ? "\"$user\""
								 : quote_identifier(name));
		}
	}
	appendStringInfoString(&path, "pg_temp");
	(void) set_config_option("search_path", path.data, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* Warnings about the statement's literals are not the reader's. */
	set_one("escape_string_warning", "off");
	set_one("DateStyle", s->datestyle);
	set_one("IntervalStyle", s->intervalstyle);
	set_one("TimeZone", s->timezone);
	set_one("standard_conforming_strings", s->std_strings);
}

/*
 * Re-plan the statement text (run by sample->userid) without and with the
 * hypothetical index hypo.  generic: parameters have no values (plan with
 * their types inferred).  Never throws; out->error says what went wrong.
 */
void
aps_replan(const char *text, const ApsSample *sample, bool generic,
		   const ApsHypoIndex *hypo, ApsReplan *out)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Oid			  save_userid;
	int			  save_sec;

	memset(out, 0, sizeof(*out));
	if (IsInParallelMode())
	{
		out->error = "cannot re-plan inside a parallel query";
		return;
	}
	GetUserIdAndSecContext(&save_userid, &save_sec);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		PlannedStmt *before;
		PlannedStmt *after;

		aps_replanning = true;
		SetUserIdAndSecContext(sample->userid,
							   save_sec | SECURITY_RESTRICTED_OPERATION |
								   SECURITY_LOCAL_USERID_CHANGE);
		NewGUCNestLevel();
		apply_settings(sample);

		before = plan_text(text, sample, generic, NULL);
		after = plan_text(text, sample, generic, hypo);
		out->cost_before = before->planTree->total_cost;
		out->cost_after = after->planTree->total_cost;
		out->uses_index = stmt_uses_hypo(after, &out->uses_index_only);
		out->ok = true;
		aps_replanning = false;

		/* Roll back: releases the locks, the GUC level and the user. */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		aps_replanning = false;
		active_hypo = NULL;
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* A cancel or a shutdown is the reader's, not the candidate's. */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
		{
			SetUserIdAndSecContext(save_userid, save_sec);
			ReThrowError(edata);
		}
		out->ok = false;
		out->error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	/* The rollback restored these; make sure. */
	SetUserIdAndSecContext(save_userid, save_sec);
}
