/*-------------------------------------------------------------------------
 *
 * advice.c
 *		apiscale.index_advice: candidate indexes from the evidence, proven
 *		by a hypothetical re-plan, ranked by measured waste, weighed
 *		against the table's writes.
 *
 * Everything here runs when someone reads the view, in the reader's
 * backend, never on the path of the application's statements.
 *
 * From evidence to advice:
 *	1. Each evidence item becomes a candidate btree: equality columns and
 *	   expressions, then one range column (one candidate per range column
 *	   when there are several); for a sort, the scan's equality columns and
 *	   then the sort keys with their directions; for a join, the scan's
 *	   equality columns and then the join keys; for a scan through an index
 *	   that threw rows away, the filter's equality columns, the scan's own
 *	   keys or sort order, then one range column; for an index scan that
 *	   fetched heap rows for a few columns, the index's keys with those
 *	   columns to INCLUDE.  Items on a partition count for its partitioned
 *	   root, columns mapped by name.
 *	2. Identical candidates are merged, and a candidate whose columns are a
 *	   prefix of others' (same directions for sort keys) is merged into the
 *	   shortest of them, which serves its statements too.
 *	3. A candidate whose statements all compare an equality column with
 *	   one value (over at least APS_PARTIAL_MIN_RUNS sampled runs) gets a
 *	   partial variant (that column out of the keys,
 *	   WHERE column = value) when pg_statistic puts the value in at most
 *	   APS_PARTIAL_MAX_FRACTION of the rows, and a "value too common" row
 *	   when it does not.
 *	4. Each candidate gets a verdict: table smaller than min_table_rows;
 *	   covered by an existing index (existing.c); no statement to re-plan;
 *	   re-plan failed; planner would not use it; improvement below
 *	   min_improvement_pct; or recommended.  The re-plan uses the
 *	   statements the candidate serves, the most wasteful first, and judges
 *	   the sum of their costs; it runs with the indexes the table has, so
 *	   the improvement is measured against the plan that uses them.  A
 *	   partial variant is also re-planned generically, to say whether
 *	   prepared statements' generic plans can use it.
 *	5. Of the recommended full candidates of one table that serve exactly
 *	   the same statements, the best one stays recommended.
 *	6. The write cost: the table's rows written per second times what a
 *	   written row costs the index (hypo.c), against the cost the
 *	   re-planned statements save per second (their calls times the
 *	   improvement); where the writes cost more, "not worth it".
 *	7. Filters no btree can serve are listed as "not indexable by btree",
 *	   lossy bitmaps as what they are (work_mem).
 *
 * Who sees what, and who re-plans what: superusers and members of
 * pg_read_all_stats see every user's evidence, anyone else only that of
 * their own statements.  A statement is re-planned as the user who ran it;
 * only a superuser re-plans statements of other users (planning can run
 * that user's immutable functions, and a reader must not be able to make it
 * run code as someone else).
 *
 * Memory: each candidate is judged in its own memory context, reset after
 * it, so reading the view costs the plans of one candidate at a time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "advice.h"
#include "evidence.h"
#include "guc.h"
#include "hypo.h"
#include "store.h"
#include "writes.h"

#define APS_BTREE_WIDE			 1000 /* average key width (bytes) too wide to index */
#define APS_INCLUDE_WIDE		 64 /* average width (bytes) worth including */
#define APS_PARTIAL_MAX_FRACTION 0.05 /* a value this rare gets a partial */
#define APS_PARTIAL_MIN_RUNS	 3	  /* runs that make "always that value" */
#define MAX_PER_ITEM			 (APS_EV_MAX_COLS + 1) /* candidates from one item */

/* Columns of apiscale.index_candidates_internal() (1.0) and of 1.1's. */
#define CANDIDATE_COLS_1_0 14
#define CANDIDATE_COLS	   20

/* Verdicts compared by pointer */
static const char VERDICT_RECOMMENDED[] = "recommended";
static const char VERDICT_UNINDEXABLE[] = "not indexable by btree";
static const char VERDICT_SUPERSEDED[] =
	"another candidate serves the same statements better";
static const char VERDICT_NOT_WORTH[] = "not worth it";
static const char VERDICT_LOSSY[] = "lossy bitmap: work_mem too small";
static const char VERDICT_COMMON[] = "value too common for a partial index";
static const char VERDICT_WIDE_INCLUDE[] = "columns too wide to include";

/* Calls of a statement, from apiscale.queries. */
typedef struct CallsEntry
{
	ApsKey key;
	int64  calls;
} CallsEntry;

/* What every verdict of one read of the view needs. */
typedef struct Reading
{
	HTAB		 *calls;	   /* ApsKey -> CallsEntry */
	double		  calls_secs;  /* seconds the calls count over */
	List		 *writes;	   /* ApsTableWrites of this database */
	double		  writes_secs; /* seconds the writes count over */
	MemoryContext scratch;	   /* one candidate's plans */
} Reading;

PG_FUNCTION_INFO_V1(apiscale_index_candidates);

static bool
role_is_order(uint8 f)
{
	return (f & APS_COL_ORDER) != 0 && (f & APS_COL_EQ) == 0;
}

static bool
has_queryid(const Candidate *c, uint64 queryid)
{
	for (int i = 0; i < c->nqueries; i++)
		if (c->queryids[i] == queryid)
			return true;
	return false;
}

static void
add_queryid(Candidate *c, uint64 queryid)
{
	if (!has_queryid(c, queryid) && c->nqueries < APS_MAX_QUERYIDS)
		c->queryids[c->nqueries++] = queryid;
}

/* Keep snap among c's examples (the APS_MAX_EXAMPLES most wasteful). */
static void
add_example(Candidate *c, ApsEvSnapshot *snap, double filtered)
{
	int pos;

	for (int i = 0; i < c->nexamples; i++)
	{
		if (c->examples[i] == snap)
		{
			if (filtered <= c->example_filtered[i])
				return;
			/* remove, re-insert below at its new place */
			memmove(&c->examples[i], &c->examples[i + 1],
					sizeof(c->examples[0]) * (c->nexamples - i - 1));
			memmove(&c->example_filtered[i], &c->example_filtered[i + 1],
					sizeof(double) * (c->nexamples - i - 1));
			c->nexamples--;
			break;
		}
	}
	for (pos = 0; pos < c->nexamples; pos++)
		if (filtered > c->example_filtered[pos])
			break;
	if (pos >= APS_MAX_EXAMPLES)
		return;
	if (c->nexamples == APS_MAX_EXAMPLES)
		c->nexamples--;
	memmove(&c->examples[pos + 1], &c->examples[pos],
			sizeof(c->examples[0]) * (c->nexamples - pos));
	memmove(&c->example_filtered[pos + 1], &c->example_filtered[pos],
			sizeof(double) * (c->nexamples - pos));
	c->examples[pos] = snap;
	c->example_filtered[pos] = filtered;
	c->nexamples++;
}

/* Keep only the values a and b agree on. */
static void
intersect_consts(Candidate *a, const Candidate *b)
{
	int n = 0;

	for (int i = 0; i < a->nconsts; i++)
	{
		bool same = false;

		for (int j = 0; j < b->nconsts && !same; j++)
			same = a->consts[i].attnum == b->consts[j].attnum &&
				   a->consts[i].value.type == b->consts[j].value.type &&
				   a->consts[i].value.opno == b->consts[j].value.opno &&
				   a->consts[i].value.len == b->consts[j].value.len &&
				   memcmp(a->consts[i].value.value, b->consts[j].value.value,
						  a->consts[i].value.len) == 0;
		if (same)
			a->consts[n++] = a->consts[i];
	}
	a->nconsts = n;
}

/*
 * Fold b's measurements and statements into a.  same_work: b measured the
 * same scans as a when it serves no other statement (a filter and the sort
 * above it, say), so the larger numbers stand rather than the sum.
 */
static void
absorb(Candidate *a, const Candidate *b, bool same_work)
{
	bool subset = true;

	for (int i = 0; i < b->nqueries && subset; i++)
		subset = has_queryid(a, b->queryids[i]);
	a->reasons |= b->reasons;
	/* Runs of the same statements (its partitions, say) are not more runs. */
	if (subset)
		a->runs = Max(a->runs, b->runs);
	else
		a->runs += b->runs;
	if (same_work && subset)
	{
		a->scans = Max(a->scans, b->scans);
		a->rows_read = Max(a->rows_read, b->rows_read);
		a->rows_filtered = Max(a->rows_filtered, b->rows_filtered);
	}
	else
	{
		a->scans += b->scans;
		a->rows_read += b->rows_read;
		a->rows_filtered += b->rows_filtered;
	}
	a->lossy_pages += b->lossy_pages;
	a->exact_pages += b->exact_pages;
	if (!OidIsValid(a->indexid))
		a->indexid = b->indexid;
	intersect_consts(a, b);
	for (int i = 0; i < b->nqueries; i++)
		add_queryid(a, b->queryids[i]);
	for (int i = 0; i < b->nexamples; i++)
		add_example(a, b->examples[i], b->example_filtered[i]);
}

/* The same column (or expression) at i in a and j in b? */
static bool
same_column(const Candidate *a, int i, const Candidate *b, int j)
{
	if (a->attnum[i] != b->attnum[j])
		return false;
	return a->attnum[i] != 0 || equal(a->expr[i], b->expr[j]);
}

/*
 * Is one index on a's columns and one on b's the same index?  Same columns
 * in the same order (and the same included ones); the direction matters
 * only where both sort by the column (a range or equality column is served
 * either way).
 */
static bool
same_columns(const Candidate *a, const Candidate *b)
{
	if (a->relid != b->relid || a->ncols != b->ncols || a->nkey != b->nkey ||
		a->unindexable != b->unindexable || a->lossy != b->lossy ||
		a->opno != b->opno || a->funcid != b->funcid || a->partial_of >= 0 ||
		b->partial_of >= 0)
		return false;
	for (int i = 0; i < a->ncols; i++)
	{
		if (!same_column(a, i, b, i))
			return false;
		if (role_is_order(a->flags[i]) && role_is_order(b->flags[i]) &&
			(a->flags[i] & (APS_COL_DESC | APS_COL_NULLS_FIRST)) !=
				(b->flags[i] & (APS_COL_DESC | APS_COL_NULLS_FIRST)))
			return false;
	}
	return true;
}

/* a takes b's sort directions where b sorts and a does not. */
static void
adopt_directions(Candidate *a, const Candidate *b)
{
	for (int i = 0; i < a->nkey; i++)
		if (role_is_order(b->flags[i]) && !role_is_order(a->flags[i]))
			a->flags[i] = b->flags[i];
}

/* A plain candidate: keys only, not partial, an index to build. */
static bool
plain_candidate(const Candidate *c)
{
	return !c->unindexable && !c->lossy && c->nkey == c->ncols &&
		   c->partial_of < 0;
}

/* Is shorter's column list a leading part of longer's? */
static bool
is_prefix(const Candidate *shorter, const Candidate *longer)
{
	if (shorter->relid != longer->relid || !plain_candidate(shorter) ||
		!plain_candidate(longer) || shorter->ncols >= longer->ncols)
		return false;
	for (int i = 0; i < shorter->ncols; i++)
	{
		if (!same_column(shorter, i, longer, i))
			return false;
		if (role_is_order(shorter->flags[i]) &&
			(shorter->flags[i] & (APS_COL_DESC | APS_COL_NULLS_FIRST)) !=
				(longer->flags[i] & (APS_COL_DESC | APS_COL_NULLS_FIRST)))
			return false;
	}
	return true;
}

/* The partitioned root of relid (relid itself if not a partition). */
static Oid
root_of(Oid relid)
{
	List *ancestors;
	Oid	  root = relid;

	if (!get_rel_relispartition(relid))
		return relid;
	ancestors = get_partition_ancestors(relid);
	if (ancestors != NIL)
		root = llast_oid(ancestors);
	list_free(ancestors);
	return root;
}

/* A column of relid that exists and is not dropped? */
static bool
live_column(Oid relid, int16 attnum)
{
	HeapTuple tup;
	bool	  live;

	if (attnum <= 0)
		return false;
	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
						  Int16GetDatum(attnum));
	if (!HeapTupleIsValid(tup))
		return false;
	live = !((Form_pg_attribute) GETSTRUCT(tup))->attisdropped;
	ReleaseSysCache(tup);
	return live;
}

/* attnum of partition relid, as its root's (by name); 0 if none. */
static int16
root_attnum(Oid relid, Oid root, int16 attnum)
{
	char *name;

	if (relid == root)
		return attnum;
	name = get_attname(relid, attnum, true);
	return name ? get_attnum(root, name) : InvalidAttrNumber;
}

typedef struct RootVars
{
	Oid	 relid;
	Oid	 root;
	bool failed;
} RootVars;

static Node *
root_vars_mutator(Node *node, void *context)
{
	RootVars *m = (RootVars *) context;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var))
	{
		Var *v = (Var *) copyObject(node);

		v->varattno = root_attnum(m->relid, m->root, v->varattno);
		v->varattnosyn = v->varattno;
		if (v->varattno <= 0)
			m->failed = true;
		return (Node *) v;
	}
	return expression_tree_mutator(node, root_vars_mutator, context);
}

/*
 * Expression slot of snap, kept by a scan of relid, as an expression of
 * root's columns; NULL if it cannot be (a function dropped since, a column
 * the root lacks).
 */
static Node *
item_expr(ApsEvSnapshot *snap, int slot, Oid relid, Oid root)
{
	Node	*expr;
	RootVars m = {relid, root, false};

	if (slot < 0 || slot >= snap->nexprs)
		return NULL;
	expr = stringToNode(snap->exprs[slot]);
	if (relid != root)
		expr = root_vars_mutator(expr, &m);
	if (m.failed || !aps_expr_valid(expr))
		return NULL;
	return expr;
}

/*
 * The candidates of one evidence item (several for a filter with several
 * range columns: one per range column).  Returns how many were written to
 * out[].
 */
static int
candidates_from_item(ApsEvSnapshot *snap, const ApsEvItem *it, Candidate *out)
{
	Candidate base;
	Oid		  root;
	int		  n = 0;
	int		  nout = 0;
	int		  ranges[APS_EV_MAX_COLS]; /* positions in it */
	int		  nranges = 0;

	memset(&base, 0, sizeof(base));
	if (get_rel_name(it->relid) == NULL)
		return 0; /* dropped since */
	root = root_of(it->relid);
	base.relid = root;
	base.partial_of = -1;
	base.writes_per_s = -1;

	switch (it->kind)
	{
		case APS_EV_WHERE:
		case APS_EV_RESIDUAL:
			base.reasons = APS_REASON_WHERE;
			for (int i = 0; i < it->ncols; i++)
			{
				if (it->flags[i] & APS_COL_RANGE)
					ranges[nranges++] = i;
				else
				{
					if (role_is_order(it->flags[i]))
						base.reasons |= APS_REASON_ORDER;
					base.attnum[n] = it->attnum[i];
					base.flags[n++] = it->flags[i];
				}
			}
			break;
		case APS_EV_JOIN:
		case APS_EV_ORDER:
			base.reasons =
				it->kind == APS_EV_JOIN ? APS_REASON_JOIN : APS_REASON_ORDER;
			/* fall through */
		case APS_EV_COVERING:
		case APS_EV_LOSSY:
			if (it->kind == APS_EV_COVERING)
				base.reasons = APS_REASON_COVER;
			else if (it->kind == APS_EV_LOSSY)
			{
				base.reasons = APS_REASON_WHERE;
				base.lossy = true;
			}
			for (int i = 0; i < it->ncols; i++)
			{
				base.attnum[n] = it->attnum[i];
				base.flags[n++] = it->flags[i];
			}
			break;
		case APS_EV_UNINDEXABLE:
			base.reasons = APS_REASON_WHERE;
			base.unindexable = true;
			base.opno = it->opno;
			base.funcid = it->funcid;
			base.why = it->why;
			base.attnum[n] = it->attnum[0];
			base.flags[n++] = 0;
			break;
		default:
			return 0;
	}
	base.ncols = n;
	base.nkey = 0;
	while (base.nkey < n && !(base.flags[base.nkey] & APS_COL_INCLUDE))
		base.nkey++;
	base.indexid = it->indexid;
	base.lossy_pages = it->lossy_pages;
	base.exact_pages = it->exact_pages;
	base.nqueries = 0;
	add_queryid(&base, snap->queryid);
	base.runs = it->runs;
	base.scans = it->scans;
	base.rows_read = it->rows_read;
	base.rows_filtered = it->rows_filtered;
	add_example(&base, snap, it->rows_filtered);

	/* The values equality columns were always compared with. */
	for (int k = 0; k < APS_EV_MAX_CONSTS; k++)
	{
		const ApsEvConst *ec = &it->consts[k];
		int16			  attnum;

		if (ec->col < 0 || ec->col >= it->ncols || ec->varies ||
			it->attnum[ec->col] <= 0)
			continue;
		attnum = root_attnum(it->relid, root, it->attnum[ec->col]);
		if (attnum <= 0)
			continue;
		base.consts[base.nconsts].attnum = attnum;
		base.consts[base.nconsts].value = *ec;
		base.nconsts++;
	}

	/* One candidate per range column, after the equality columns. */
	if (nranges == 0)
		out[nout++] = base;
	for (int r = 0; r < nranges && n < APS_EV_MAX_COLS; r++)
	{
		out[nout] = base;
		out[nout].attnum[n] = it->attnum[ranges[r]];
		out[nout].flags[n] = APS_COL_RANGE;
		out[nout].ncols = out[nout].nkey = n + 1;
		nout++;
	}

	for (int k = 0; k < nout; k++)
	{
		Candidate *c = &out[k];

		if (c->ncols == 0 && !c->lossy)
			return 0;
		for (int i = 0; i < c->ncols; i++)
		{
			/* Expressions: Vars of the scanned relation, then the root's. */
			if (c->attnum[i] < 0)
			{
				c->expr[i] =
					item_expr(snap, -1 - c->attnum[i], it->relid, root);
				if (c->expr[i] == NULL)
					return 0;
				c->attnum[i] = 0;
				continue;
			}
			/* Columns of a partition, by name, in its root. */
			c->attnum[i] = root_attnum(it->relid, root, c->attnum[i]);
			if (!live_column(root, c->attnum[i]))
				return 0; /* dropped since */
		}
	}
	return nout;
}

/* Rows in relid, or in all its leaves if it is partitioned. */
static double
table_rows(Oid relid, double seen)
{
	List	 *rels;
	ListCell *lc;
	double	  total = 0;
	bool	  known = false;

	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		rels = find_all_inheritors(relid, NoLock, NULL);
	else
		rels = list_make1_oid(relid);
	foreach (lc, rels)
	{
		HeapTuple tup =
			SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		if (((Form_pg_class) GETSTRUCT(tup))->reltuples >= 0)
		{
			total += ((Form_pg_class) GETSTRUCT(tup))->reltuples;
			known = true;
		}
		ReleaseSysCache(tup);
	}
	list_free(rels);
	/* Never analyzed or vacuumed: what a full scan read. */
	return known ? Max(total, 0) : seen;
}

/*
 * Calls of the statements of this database (apiscale.queries), for the
 * reads an index would speed up.
 */
static void
collect_calls(const ApsEntrySnapshot *snap, void *arg)
{
	HTAB	   *calls = (HTAB *) arg;
	CallsEntry *e;
	bool		found;

	if (snap->key.dbid != MyDatabaseId)
		return;
	e = hash_search(calls, &snap->key, HASH_ENTER, &found);
	e->calls = (found ? e->calls : 0) + snap->c.calls;
}

/* Calls of ex's statement, or -1 if apiscale.queries no longer has it. */
static int64
calls_of(Reading *r, ApsEvSnapshot *ex)
{
	ApsKey		key;
	CallsEntry *e;

	memset(&key, 0, sizeof(key));
	key.userid = ex->userid;
	key.dbid = ex->dbid;
	key.queryid = ex->queryid;
	e = hash_search(r->calls, &key, HASH_FIND, NULL);
	return e ? e->calls : -1;
}

/* Rows written per second to relid and, if partitioned, its partitions. */
static double
writes_per_s(Reading *r, Oid relid)
{
	List	 *rels;
	ListCell *lc;
	double	  rows = 0;

	if (r->writes == NIL)
		return 0;
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		rels = find_all_inheritors(relid, NoLock, NULL);
	else
		rels = list_make1_oid(relid);
	foreach (lc, r->writes)
	{
		ApsTableWrites *w = lfirst(lc);

		if (list_member_oid(rels, w->relid))
			rows += w->inserted + w->updated + w->deleted + w->copied;
	}
	list_free(rels);
	return rows / r->writes_secs;
}

/* The text to re-plan for ex, or NULL with *why set. */
static const char *
replan_text(ApsEvSnapshot *ex, bool *generic, const char **why)
{
	ApsKey key;
	char  *text;

	if (ex->sample.path_too_long)
	{
		*why = "its search_path was too long to keep";
		return NULL;
	}
	if (ex->sample.text != NULL)
	{
		*generic = ex->sample.nparams < 0;
		return ex->sample.text;
	}
	if (ex->sample.too_long)
	{
		*why = "statement longer than apiscale.max_query_length";
		return NULL;
	}

	/* No text kept (capture_parameters off): the normalized text. */
	key.userid = ex->userid;
	key.dbid = ex->dbid;
	key.queryid = ex->queryid;
	text = aps_store_get_query(&key);
	*generic = true;
	if (text == NULL)
		*why = "statement no longer in apiscale.queries";
	return text;
}

/* The hypothetical index of candidate c. */
static void
make_hypo(const Candidate *c, ApsHypoIndex *hypo)
{
	memset(hypo, 0, sizeof(*hypo));
	hypo->relid = c->relid;
	hypo->ncols = c->ncols;
	hypo->nkey = c->nkey;
	for (int i = 0; i < c->ncols; i++)
	{
		hypo->attnum[i] = c->attnum[i];
		if (c->attnum[i] == 0)
			hypo->exprs = lappend(hypo->exprs, copyObject(c->expr[i]));
		hypo->desc[i] = i < c->nkey && role_is_order(c->flags[i]) &&
						(c->flags[i] & APS_COL_DESC) != 0;
		hypo->nulls_first[i] = i < c->nkey && role_is_order(c->flags[i]) &&
							   (c->flags[i] & APS_COL_NULLS_FIRST) != 0;
	}
	hypo->pred = copyObject(c->pred);
	hypo->pred_fraction = c->pred_fraction;
}

/*
 * Columns that cannot be indexed as they are: a type without a default
 * btree operator class, key values wider than a btree entry, INCLUDE
 * columns too wide to be worth copying into every entry.  The verdict, or
 * NULL.
 */
static const char *
unfit_columns(Relation rel, Candidate *c)
{
	int32 width = 0;

	for (int i = 0; i < c->ncols; i++)
	{
		Oid	  type;
		int32 w;

		if (c->attnum[i] > 0)
		{
			Form_pg_attribute att =
				TupleDescAttr(RelationGetDescr(rel), c->attnum[i] - 1);

			type = att->atttypid;
			w = get_attavgwidth(c->relid, c->attnum[i]);
		}
		else
		{
			type = exprType(c->expr[i]);
			w = get_typavgwidth(type, exprTypmod(c->expr[i]));
		}
		if (i >= c->nkey)
		{
			if (w > APS_INCLUDE_WIDE)
			{
				c->detail =
					psprintf("%s: %d bytes on average; an index-only "
							 "scan pays for narrow columns only "
							 "(at most %d bytes)",
							 aps_column_text(c, i), w, APS_INCLUDE_WIDE);
				return VERDICT_WIDE_INCLUDE;
			}
			continue;
		}
		if (!OidIsValid(GetDefaultOpClass(type, BTREE_AM_OID)))
		{
			c->detail = psprintf("type %s has no default btree operator class",
								 format_type_be(type));
			return VERDICT_UNINDEXABLE;
		}
		width += Max(w, 0);
	}

	/*
	 * A btree entry holds at most about a third of a page (2704 bytes):
	 * columns that wide on average cannot be indexed as they are.
	 */
	if (width > APS_BTREE_WIDE)
	{
		c->detail = psprintf("values are %d bytes wide on average; a btree "
							 "entry holds at most 2704: index a hash of "
							 "them (an expression index on md5(...))",
							 width);
		return VERDICT_UNINDEXABLE;
	}
	return NULL;
}

/*
 * The verdict of candidate c on table rel (locked by the caller); fills
 * c->rp, c->detail, c->replanned_queryid, the savings and the write cost.
 */
static const char *
judge(Reading *r, Relation rel, Candidate *c)
{
	char		*existing;
	double		 rows;
	char		 relkind = rel->rd_rel->relkind;
	ApsHypoIndex hypo;
	const char	*last_error = NULL;
	const char	*unfit;
	bool		 tried = false;
	bool		 others_only = false;
	bool		 generic_any = false;
	bool		 generic_unusable = false;

	memset(&c->rp, 0, sizeof(c->rp));
	c->detail = NULL;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_PARTITIONED_TABLE)
		return "not a table";
	if (IsCatalogRelation(rel))
		return "system catalog";
	unfit = unfit_columns(rel, c);
	if (unfit != NULL)
		return unfit;

	rows = table_rows(c->relid, c->scans > 0 ? c->rows_read / c->scans : 0);
	if (rows < (double) aps_min_table_rows)
	{
		c->detail = psprintf("about %.0f rows", rows);
		return "table smaller than apiscale.min_table_rows";
	}

	existing = aps_existing_index(rel, c);
	if (existing != NULL)
	{
		c->detail = psprintf("index %s", quote_identifier(existing));
		return "covered by an existing index";
	}

	make_hypo(c, &hypo);
	c->write_cost = aps_hypo_write_cost(rel, &hypo);

	/*
	 * Re-plan the statements the candidate serves, most wasteful first (up
	 * to APS_MAX_EXAMPLES), and judge the sum of their costs: an index that
	 * helps one statement a lot and another a little is judged on both.
	 */
	for (int e = 0; e < c->nexamples; e++)
	{
		ApsEvSnapshot *ex = c->examples[e];
		bool		   generic = false;
		const char	  *why = NULL;
		const char	  *text;
		ApsReplan	   rp;
		int64		   calls;

		if (ex->sample.userid == InvalidOid)
			continue;
		if (ex->userid != GetUserId() && !superuser())
		{
			others_only = true;
			continue;
		}
		if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(ex->userid)))
		{
			last_error = "the statement's user no longer exists";
			continue;
		}
		text = replan_text(ex, &generic, &why);
		if (text == NULL)
		{
			last_error = why;
			continue;
		}
		tried = true;
		aps_replan(text, &ex->sample, generic, &hypo, &rp);
		if (!rp.ok)
		{
			last_error = rp.error;
			continue;
		}
		if (!c->rp.ok)
		{
			c->rp = rp; /* the first one sets the example */
			c->replanned_queryid = ex->queryid;
		}
		else
		{
			c->rp.cost_before += rp.cost_before;
			c->rp.cost_after += rp.cost_after;
			c->rp.uses_index |= rp.uses_index;
			c->rp.uses_index_only |= rp.uses_index_only;
		}
		calls = calls_of(r, ex);
		if (calls >= 0)
		{
			c->savings_known = true;
			c->savings += calls * Max(0.0, rp.cost_before - rp.cost_after);
		}
		generic_any |= generic;

		/* A parameter's value: can a generic plan prove the predicate? */
		if (c->pred != NIL && !generic && ex->sample.nparams > 0 &&
			rp.uses_index)
		{
			ApsReplan grp;

			aps_replan(text, &ex->sample, true, &hypo, &grp);
			if (grp.ok && !grp.uses_index)
				generic_unusable = true;
		}
	}
	if (c->rp.ok)
	{
		aps_describe(rel, c, generic_any, generic_unusable);
		if (!c->rp.uses_index)
			return "planner would not use it";
		if (c->rp.cost_before <= 0 ||
			100.0 * (c->rp.cost_before - c->rp.cost_after) /
					c->rp.cost_before <
				aps_min_improvement_pct)
			return "improvement below apiscale.min_improvement_pct";
		return VERDICT_RECOMMENDED;
	}
	if (tried)
	{
		c->detail = (char *) last_error;
		return "re-plan failed";
	}
	if (others_only)
		return "not re-planned: statements of other users are re-planned "
			   "for superusers only";
	c->detail = (char *) last_error;
	return "no statement to re-plan";
}

static double
improvement_of(const Candidate *c)
{
	if (!c->rp.ok || c->rp.cost_before <= 0)
		return 0;
	return (c->rp.cost_before - c->rp.cost_after) / c->rp.cost_before;
}

static bool
queries_within(const Candidate *a, const Candidate *b)
{
	for (int i = 0; i < a->nqueries; i++)
		if (!has_queryid(b, a->queryids[i]))
			return false;
	return true;
}

/*
 * Are a and b two ways to serve the same need: indexes of one table with
 * the same leading column, for the same statements (or the statements of
 * one among those of the other)?  The leading column tells them apart from
 * the indexes one statement needs on two scans of the table (a self-join,
 * a UNION), which are both needed.
 */
static bool
alternatives(const Candidate *a, const Candidate *b)
{
	return a->relid == b->relid && a->attnum[0] == b->attnum[0] &&
		   (a->attnum[0] != 0 || equal(a->expr[0], b->expr[0])) &&
		   (queries_within(a, b) || queries_within(b, a));
}

static int
nreasons(const Candidate *c)
{
	return ((c->reasons & APS_REASON_WHERE) != 0) +
		   ((c->reasons & APS_REASON_JOIN) != 0) +
		   ((c->reasons & APS_REASON_ORDER) != 0) +
		   ((c->reasons & APS_REASON_COVER) != 0);
}

/*
 * Is b (at index bi) a better index than a (at ai) for the same statements?
 * A clearly better improvement wins (one point or more); then the one that
 * serves more needs (filter, join, sort); then fewer columns.
 */
static bool
better_candidate(const Candidate *b, int bi, const Candidate *a, int ai)
{
	double ib = improvement_of(b);
	double ia = improvement_of(a);

	if (fabs(ib - ia) >= 0.01)
		return ib > ia;
	if (nreasons(b) != nreasons(a))
		return nreasons(b) > nreasons(a);
	if (b->ncols != a->ncols)
		return b->ncols < a->ncols;
	return bi < ai;
}

/*
 * Are c's columns still columns of rel (now that it is locked: a column
 * dropped while we waited for the lock is gone)?
 */
static bool
columns_still_there(Relation rel, const Candidate *c)
{
	TupleDesc desc = RelationGetDescr(rel);

	for (int i = 0; i < c->ncols; i++)
		if (c->attnum[i] < 0 || c->attnum[i] > desc->natts ||
			(c->attnum[i] > 0 &&
			 TupleDescAttr(desc, c->attnum[i] - 1)->attisdropped) ||
			(c->attnum[i] == 0 && !aps_expr_valid(c->expr[i])))
			return false;
	return true;
}

/*
 * Judge candidate c in a memory context of its own (the plans of a re-plan
 * are large); what the row needs is copied to the caller's context.
 */
static void
judge_candidate(Reading *r, Candidate *c)
{
	MemoryContext outer = MemoryContextSwitchTo(r->scratch);
	Relation	  rel;
	const char	 *verdict;

	CHECK_FOR_INTERRUPTS();
	/* Hold the table while it is judged, and not after. */
	rel = try_relation_open(c->relid, AccessShareLock);
	if (rel == NULL)
		verdict = NULL; /* dropped meanwhile */
	else
	{
		verdict = columns_still_there(rel, c) ? judge(r, rel, c) : NULL;
		relation_close(rel, AccessShareLock);
	}
	MemoryContextSwitchTo(outer);
	c->verdict = verdict;
	c->detail = c->detail ? pstrdup(c->detail) : NULL;
	c->rp.error = c->rp.error ? pstrdup(c->rp.error) : NULL;
	MemoryContextReset(r->scratch);
}

/*
 * The partial variant of cands[i], if its statements all compare an
 * equality column with one value: that column out of the keys (unless it
 * is the only one), WHERE column = value, with the rarest such value.
 * Appended to *cands; a value too common gets a row saying so.
 */
static void
add_partial(Candidate **cands, int *ncands, int *maxcands, int i)
{
	Candidate *c = &(*cands)[i];
	Candidate *p;
	int		   best = -1;
	double	   best_fraction = 0;
	Node	  *clause;
	int		   drop = -1;

	if (!plain_candidate(c) || c->merged || c->nconsts == 0 ||
		c->runs < APS_PARTIAL_MIN_RUNS || get_rel_name(c->relid) == NULL)
		return;
	for (int k = 0; k < c->nconsts; k++)
	{
		double fraction;

		if (aps_value_fraction(c->relid, &c->consts[k], &fraction) &&
			(best < 0 || fraction < best_fraction))
		{
			best = k;
			best_fraction = fraction;
		}
	}
	if (best < 0)
		return;
	clause = aps_const_clause(c->relid, &c->consts[best]);
	if (clause == NULL)
		return;
	if (*ncands == *maxcands)
	{
		*maxcands *= 2;
		*cands = repalloc(*cands, sizeof(Candidate) * *maxcands);
		c = &(*cands)[i];
	}
	p = &(*cands)[(*ncands)++];
	*p = *c;
	p->partial_of = i;
	p->pred = list_make1(clause);
	p->pred_fraction = best_fraction;
	for (int j = 0; j < p->nkey; j++)
		if (p->attnum[j] == c->consts[best].attnum)
			drop = j;
	if (drop >= 0 && p->nkey > 1)
	{
		for (int j = drop; j < p->ncols - 1; j++)
		{
			p->attnum[j] = p->attnum[j + 1];
			p->flags[j] = p->flags[j + 1];
			p->expr[j] = p->expr[j + 1];
		}
		p->ncols--;
		p->nkey--;
	}
	if (best_fraction > APS_PARTIAL_MAX_FRACTION)
	{
		p->verdict = VERDICT_COMMON;
		p->detail =
			psprintf("%s holds for %.3g%% of the rows (pg_stats); "
					 "a partial index pays for at most %.0f%%",
					 aps_expr_text(p->relid, clause), 100.0 * best_fraction,
					 100.0 * APS_PARTIAL_MAX_FRACTION);
	}
}

/*
 * Weigh a recommended candidate's upkeep against what it saves: the
 * table's rows written per second times what a written row costs the
 * index, against the cost its re-planned statements save per second.
 */
static void
weigh_writes(Reading *r, Candidate *c)
{
	c->writes_per_s = writes_per_s(r, c->relid);
	if (!c->rp.ok)
		return;
	c->maintenance_per_s = c->writes_per_s * c->write_cost;
	if (!c->savings_known)
		return;
	c->savings_per_s = c->savings / r->calls_secs;
	if (c->verdict == VERDICT_RECOMMENDED && c->writes_per_s > 0 &&
		c->maintenance_per_s > c->savings_per_s)
	{
		c->verdict = VERDICT_NOT_WORTH;
		c->detail = psprintf(
			"%.1f rows written per second cost it about %.1f a second "
			"(%.2f per row, planner cost units); the reads save %.1f a "
			"second%s%s",
			c->writes_per_s, c->maintenance_per_s, c->write_cost,
			c->savings_per_s, c->detail ? "; " : "",
			c->detail ? c->detail : "");
	}
}

static Datum
text_array(List *strings)
{
	Datum	 *elems = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	int		  n = 0;
	ListCell *lc;

	foreach (lc, strings)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(
		construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The row of candidate c (natts: the columns the caller's version has). */
static void
put_row(ReturnSetInfo *rsinfo, int natts, Candidate *c, const char *ddl)
{
	Datum values[CANDIDATE_COLS];
	bool  nulls[CANDIDATE_COLS];
	List *cols = NIL;
	List *include = NIL;
	List *reasons = NIL;

	memset(nulls, 0, sizeof(nulls));
	for (int k = 0; k < c->ncols; k++)
	{
		if (k < c->nkey)
			cols = lappend(cols, aps_column_text(c, k));
		else
			include = lappend(include, aps_column_text(c, k));
	}
	if (c->reasons & APS_REASON_WHERE)
		reasons = lappend(reasons, "where");
	if (c->reasons & APS_REASON_JOIN)
		reasons = lappend(reasons, "join");
	if (c->reasons & APS_REASON_ORDER)
		reasons = lappend(reasons, "order by");
	if (c->reasons & APS_REASON_COVER)
		reasons = lappend(reasons, "index-only");

	values[0] = ObjectIdGetDatum(c->relid);
	values[1] = text_array(cols);
	values[2] = text_array(reasons);
	if (ddl == NULL)
		nulls[3] = true;
	else
		values[3] = CStringGetTextDatum(ddl);
	values[4] = Int64GetDatum(c->nqueries);
	values[5] = Int64GetDatum(c->scans);
	values[6] = Int64GetDatum((int64) c->rows_read);
	values[7] = Int64GetDatum((int64) c->rows_filtered);
	if (c->rp.ok)
	{
		values[8] = Float8GetDatum(c->rp.cost_before);
		values[9] = Float8GetDatum(c->rp.cost_after);
		values[10] = Float8GetDatum(round(improvement_of(c) * 1000.0) / 10.0);
	}
	else
		nulls[8] = nulls[9] = nulls[10] = true;
	if (c->replanned_queryid != 0)
		values[11] = Int64GetDatum((int64) c->replanned_queryid);
	else if (c->nexamples > 0)
		values[11] = Int64GetDatum((int64) c->examples[0]->queryid);
	else
		nulls[11] = true;
	values[12] = CStringGetTextDatum(c->verdict);
	if (c->detail)
		values[13] = CStringGetTextDatum(c->detail);
	else
		nulls[13] = true;
	/* 1.1 */
	if (include != NIL)
		values[14] = text_array(include);
	else
		nulls[14] = true;
	if (c->pred != NIL)
		values[15] = CStringGetTextDatum(
			aps_expr_text(c->relid, (Node *) make_ands_explicit(c->pred)));
	else
		nulls[15] = true;
	if (OidIsValid(c->indexid) && get_rel_name(c->indexid) != NULL)
		values[16] = ObjectIdGetDatum(c->indexid);
	else
		nulls[16] = true;
	if (c->writes_per_s >= 0)
		values[17] = Float8GetDatum(round(c->writes_per_s * 100.0) / 100.0);
	else
		nulls[17] = true;
	if (c->rp.ok && c->writes_per_s >= 0)
		values[18] =
			Float8GetDatum(round(c->maintenance_per_s * 100.0) / 100.0);
	else
		nulls[18] = true;
	if (c->rp.ok && c->savings_known)
		values[19] = Float8GetDatum(round(c->savings_per_s * 100.0) / 100.0);
	else
		nulls[19] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * apiscale.index_candidates_internal() (1.0) and
 * apiscale.index_candidates_v2() (1.1): every candidate with its verdict.
 * One function serves both: it fills the columns the caller's version
 * declares.
 */
Datum
apiscale_index_candidates(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		   all_users;
	List		  *snaps;
	ListCell	  *lc;
	Candidate	  *cands;
	int			   ncands = 0;
	int			   maxcands;
	int			   nbase;
	int			   natts;
	Reading		   r;
	HASHCTL		   info;
	int64		   nentries, evicted;
	TimestampTz	   reset_at, writes_since;
	TimestampTz	   now = GetCurrentTimestamp();

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	natts = rsinfo->setDesc->natts;
	if (natts != CANDIDATE_COLS && natts != CANDIDATE_COLS_1_0)
		elog(ERROR, "unexpected number of columns: %d", natts);
	all_users =
		superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	/* What the verdicts need: calls and writes, over their time. */
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ApsKey);
	info.entrysize = sizeof(CallsEntry);
	info.hcxt = CurrentMemoryContext;
	r.calls = hash_create("apiscale calls", 256, &info,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	aps_store_foreach(false, collect_calls, r.calls);
	aps_store_info(&nentries, &evicted, &reset_at);
	r.calls_secs = Max(1.0, (double) (now - reset_at) / USECS_PER_SEC);
	r.writes = aps_writes_snapshot(MyDatabaseId, &writes_since);
	r.writes_secs = Max(1.0, (double) (now - writes_since) / USECS_PER_SEC);

	snaps = aps_evidence_snapshot(MyDatabaseId);
	maxcands = 64;
	cands = palloc0(sizeof(Candidate) * maxcands);

	/* 1. Candidates of every item; identical ones merged. */
	foreach (lc, snaps)
	{
		ApsEvSnapshot *snap = lfirst(lc);

		if (!all_users && snap->userid != GetUserId())
			continue;
		for (int i = 0; i < snap->nitems; i++)
		{
			Candidate made[MAX_PER_ITEM];
			int nmade = candidates_from_item(snap, &snap->items[i], made);

			for (int k = 0; k < nmade; k++)
			{
				bool merged = false;

				for (int j = 0; j < ncands && !merged; j++)
				{
					if (same_columns(&cands[j], &made[k]))
					{
						adopt_directions(&cands[j], &made[k]);
						absorb(&cands[j], &made[k], false);
						merged = true;
					}
				}
				if (merged)
					continue;
				if (ncands == maxcands)
				{
					maxcands *= 2;
					cands = repalloc(cands, sizeof(Candidate) * maxcands);
				}
				cands[ncands++] = made[k];
			}
		}
	}

	/*
	 * 2. A prefix of other candidates into the shortest of them (the least
	 * change of index that serves both).
	 */
	for (int i = 0; i < ncands; i++)
	{
		int best = -1;

		for (int j = 0; j < ncands; j++)
		{
			if (j == i || cands[j].merged || !is_prefix(&cands[i], &cands[j]))
				continue;
			if (best < 0 || cands[j].ncols < cands[best].ncols ||
				(cands[j].ncols == cands[best].ncols &&
				 cands[j].rows_filtered > cands[best].rows_filtered))
				best = j;
		}
		if (best >= 0)
		{
			absorb(&cands[best], &cands[i], true);
			cands[i].merged = true;
		}
	}

	/* 3. Partial variants. */
	nbase = ncands;
	for (int i = 0; i < nbase; i++)
		add_partial(&cands, &ncands, &maxcands, i);

	/* 4. Verdicts. */
	r.scratch =
		AllocSetContextCreate(CurrentMemoryContext, "apiscale index candidate",
							  ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < ncands; i++)
	{
		Candidate *c = &cands[i];

		if (c->merged || c->verdict != NULL)
			continue;
		if (get_rel_name(c->relid) == NULL)
			c->merged = true; /* dropped meanwhile: no row */
		else if (c->unindexable)
		{
			c->verdict = VERDICT_UNINDEXABLE;
			c->detail = aps_unindexable_detail(c);
		}
		else if (c->lossy)
		{
			c->verdict = VERDICT_LOSSY;
			c->detail = aps_lossy_detail(c);
		}
		else
			judge_candidate(&r, c);
	}
	MemoryContextDelete(r.scratch);

	/*
	 * 5. Of the recommended full candidates of one table that serve the
	 * same statements (the filter, join and sort of one query), keep the
	 * best.  Partial and covering variants stand beside them.
	 */
	for (int i = 0; i < ncands; i++)
	{
		Candidate *a = &cands[i];

		if (a->merged || a->verdict != VERDICT_RECOMMENDED ||
			!plain_candidate(a))
			continue;
		for (int j = 0; j < ncands; j++)
		{
			Candidate *b = &cands[j];

			if (j == i || b->merged || b->verdict != VERDICT_RECOMMENDED ||
				!plain_candidate(b) || !alternatives(a, b))
				continue;
			if (better_candidate(b, j, a, i))
			{
				a->verdict = VERDICT_SUPERSEDED;
				a->detail = psprintf("in favour of (%s)",
									 aps_columns_list(b, 0, b->nkey));
				break;
			}
		}
	}

	/* 6. The write cost of what is left, and 7. the rows. */
	for (int i = 0; i < ncands; i++)
	{
		Candidate *c = &cands[i];
		char	  *ddl = NULL;
		bool	   buildable;

		if (c->merged || c->verdict == NULL)
			continue;
		buildable =
			c->verdict != VERDICT_UNINDEXABLE && c->verdict != VERDICT_LOSSY;
		/* No DDL for what no btree serves; no row for a vanished table. */
		if (buildable)
		{
			ddl = aps_make_ddl(c);
			if (ddl == NULL)
				continue;
			weigh_writes(&r, c);
		}
		put_row(rsinfo, natts, c, ddl);
	}
	return (Datum) 0;
}
