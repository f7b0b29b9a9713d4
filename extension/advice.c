/*-------------------------------------------------------------------------
 *
 * advice.c
 *		apiscale.index_advice: candidate indexes from the evidence, proven
 *		by a hypothetical re-plan, ranked by measured waste.
 *
 * Everything here runs when someone reads the view, in the reader's
 * backend, never on the path of the application's statements.
 *
 * From evidence to advice:
 *	1. Each evidence item becomes a candidate btree: equality columns (in
 *	   column order), then one range column (the first, by column number);
 *	   for a sort, the equality columns of the scan and then the sort keys
 *	   with their directions; for a join, the join keys and then the scan's
 *	   equality columns.  Items on a partition count for its partitioned
 *	   root, columns mapped by name.
 *	2. Identical candidates are merged, and a candidate whose columns are a
 *	   prefix of another's (same directions for sort keys) is merged into
 *	   the longer one, which serves its queries too.
 *	3. Each candidate gets a verdict: table smaller than min_table_rows;
 *	   covered by an existing valid btree whose leading columns are the
 *	   candidate's (equality columns in any order; sort keys in the same or
 *	   the fully reversed direction); no statement to re-plan; re-plan
 *	   failed; planner would not use it; improvement below
 *	   min_improvement_pct; or recommended.  The re-plan uses the statement
 *	   with the most rows filtered among those the candidate serves.
 *	4. Filters no btree can serve are listed as "not indexable by btree".
 *
 * Who sees what: superusers and members of pg_read_all_stats get every
 * statement's evidence; anyone else only that of statements they ran
 * themselves (their re-plan runs as them anyway).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_operator.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "evidence.h"
#include "guc.h"
#include "hypo.h"
#include "store.h"

#define REASON_WHERE 0x01
#define REASON_JOIN	 0x02
#define REASON_ORDER 0x04

#define MAX_QUERYIDS 64 /* distinct queries remembered per candidate */

/* Verdicts compared by pointer */
static const char VERDICT_RECOMMENDED[] = "recommended";
static const char VERDICT_UNINDEXABLE[] = "not indexable by btree";
static const char VERDICT_SUPERSEDED[] =
	"another candidate serves the same statements better";

typedef struct Candidate
{
	Oid			   relid;
	int			   ncols;
	int16		   attnum[APS_EV_MAX_COLS];
	uint8		   flags[APS_EV_MAX_COLS];
	bool		   unindexable;
	Oid			   opno; /* unindexable: the operator */
	uint8		   why;	 /* unindexable: ApsUnindexable */
	int			   reasons;
	int			   nqueries;
	uint64		   queryids[MAX_QUERYIDS];
	int64		   scans;
	double		   rows_read;
	double		   rows_filtered;
	ApsEvSnapshot *example; /* statement with the most rows filtered */
	double		   example_filtered;
	bool		   merged; /* folded into another candidate */
	/* filled by the verdict pass */
	const char *verdict;
	char	   *detail;
	ApsReplan	rp;
} Candidate;

PG_FUNCTION_INFO_V1(apiscale_index_candidates);

static bool
role_is_order(uint8 f)
{
	return (f & APS_COL_ORDER) != 0 && (f & APS_COL_EQ) == 0;
}

static void
add_queryid(Candidate *c, uint64 queryid)
{
	for (int i = 0; i < c->nqueries; i++)
		if (c->queryids[i] == queryid)
			return;
	if (c->nqueries < MAX_QUERYIDS)
		c->queryids[c->nqueries++] = queryid;
}

static bool
has_queryid(const Candidate *c, uint64 queryid)
{
	for (int i = 0; i < c->nqueries; i++)
		if (c->queryids[i] == queryid)
			return true;
	return false;
}

/*
 * Fold b's measurements and queries into a.  same_work: b measured the
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
	for (int i = 0; i < b->nqueries; i++)
		add_queryid(a, b->queryids[i]);
	if (b->example != NULL &&
		(a->example == NULL || b->example_filtered > a->example_filtered))
	{
		a->example = b->example;
		a->example_filtered = b->example_filtered;
	}
}

static bool
same_columns(const Candidate *a, const Candidate *b)
{
	if (a->relid != b->relid || a->ncols != b->ncols ||
		a->unindexable != b->unindexable || a->opno != b->opno)
		return false;
	for (int i = 0; i < a->ncols; i++)
	{
		if (a->attnum[i] != b->attnum[i])
			return false;
		if ((a->flags[i] & (APS_COL_DESC | APS_COL_NULLS_FIRST)) !=
			(b->flags[i] & (APS_COL_DESC | APS_COL_NULLS_FIRST)))
			return false;
	}
	return true;
}

/* Is short's column list a leading part of long's? */
static bool
is_prefix(const Candidate *shorter, const Candidate *longer)
{
	if (shorter->relid != longer->relid || shorter->unindexable ||
		longer->unindexable || shorter->ncols >= longer->ncols)
		return false;
	for (int i = 0; i < shorter->ncols; i++)
	{
		if (shorter->attnum[i] != longer->attnum[i])
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

/* Build the candidate of one evidence item; false if there is none. */
static bool
candidate_from_item(const ApsEvSnapshot *snap, const ApsEvItem *it,
					Candidate *c)
{
	Oid root;
	int n = 0;

	memset(c, 0, sizeof(*c));
	if (get_rel_name(it->relid) == NULL)
		return false; /* dropped since */
	root = root_of(it->relid);
	c->relid = root;

	switch (it->kind)
	{
		case APS_EV_WHERE:
			c->reasons = REASON_WHERE;
			for (int i = 0; i < it->ncols; i++)
				if (it->flags[i] & APS_COL_EQ)
					c->attnum[n] = it->attnum[i], c->flags[n++] = APS_COL_EQ;
			for (int i = 0; i < it->ncols; i++)
				if (it->flags[i] & APS_COL_RANGE)
				{
					c->attnum[n] = it->attnum[i];
					c->flags[n++] = APS_COL_RANGE;
					break; /* one range column */
				}
			break;
		case APS_EV_JOIN:
			c->reasons = REASON_JOIN;
			for (int i = 0; i < it->ncols; i++)
				c->attnum[n] = it->attnum[i], c->flags[n++] = it->flags[i];
			break;
		case APS_EV_ORDER:
			c->reasons = REASON_ORDER;
			for (int i = 0; i < it->ncols; i++)
				c->attnum[n] = it->attnum[i], c->flags[n++] = it->flags[i];
			break;
		case APS_EV_UNINDEXABLE:
			c->reasons = REASON_WHERE;
			c->unindexable = true;
			c->opno = it->opno;
			c->why = it->why;
			c->attnum[n] = it->attnum[0], c->flags[n++] = 0;
			break;
		default:
			return false;
	}
	if (n == 0)
		return false;
	c->ncols = n;

	/* Columns of a partition, by name, in its root. */
	if (root != it->relid)
	{
		for (int i = 0; i < n; i++)
		{
			char *name = get_attname(it->relid, c->attnum[i], true);

			c->attnum[i] = name ? get_attnum(root, name) : InvalidAttrNumber;
			if (c->attnum[i] <= 0)
				return false;
		}
	}

	c->nqueries = 0;
	add_queryid(c, snap->queryid);
	c->scans = it->scans;
	c->rows_read = it->rows_read;
	c->rows_filtered = it->rows_filtered;
	c->example = (ApsEvSnapshot *) snap;
	c->example_filtered = it->rows_filtered;
	return true;
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

/* Access method of a relation (InvalidOid if it is gone). */
static Oid
rel_am(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid		  am;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	am = ((Form_pg_class) GETSTRUCT(tup))->relam;
	ReleaseSysCache(tup);
	return am;
}

/*
 * A valid, non-partial btree index of c's table whose leading key columns
 * are c's columns; its name, or NULL.
 */
static char *
covering_index(const Candidate *c)
{
	Relation  rel = relation_open(c->relid, AccessShareLock);
	List	 *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	char	 *found = NULL;
	int		  neq = 0;

	relation_close(rel, AccessShareLock);
	while (neq < c->ncols && !role_is_order(c->flags[neq]) &&
		   !(c->flags[neq] & APS_COL_RANGE))
		neq++;

	foreach (lc, indexes)
	{
		Oid		  indexoid = lfirst_oid(lc);
		HeapTuple tup =
			SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index idx;
		bool		  ok = true;
		bool		  isnull;
		Datum		  d;
		int2vector	 *options;
		int			  same_dir = 0, reversed = 0, norder = 0;

		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		if (!idx->indisvalid || !idx->indisready ||
			idx->indnkeyatts < c->ncols || rel_am(indexoid) != BTREE_AM_OID ||
			!heap_attisnull(tup, Anum_pg_index_indpred, NULL))
		{
			ReleaseSysCache(tup);
			continue;
		}
		d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indoption, &isnull);
		options = isnull ? NULL : (int2vector *) DatumGetPointer(d);

		/* The equality block: the same columns in any order. */
		for (int i = 0; i < neq && ok; i++)
		{
			bool in = false;

			for (int j = 0; j < neq; j++)
				if (idx->indkey.values[i] == c->attnum[j])
					in = true;
			ok = in;
		}
		for (int i = neq; i < c->ncols && ok; i++)
		{
			int16 opt = options ? options->values[i] : 0;
			bool  desc = (opt & INDOPTION_DESC) != 0;
			bool  nf = (opt & INDOPTION_NULLS_FIRST) != 0;

			if (idx->indkey.values[i] != c->attnum[i])
				ok = false;
			else if (role_is_order(c->flags[i]))
			{
				bool cdesc = (c->flags[i] & APS_COL_DESC) != 0;
				bool cnf = (c->flags[i] & APS_COL_NULLS_FIRST) != 0;

				norder++;
				if (desc == cdesc && nf == cnf)
					same_dir++;
				else if (desc != cdesc && nf != cnf)
					reversed++;
			}
		}
		/* Sort keys all the same way, or all reversed (a backward scan). */
		if (ok && norder > 0 && same_dir != norder && reversed != norder)
			ok = false;
		if (ok)
			found = get_rel_name(indexoid);
		ReleaseSysCache(tup);
		if (found)
			break;
	}
	list_free(indexes);
	return found;
}

/* "col", "col DESC", "col NULLS FIRST", ... */
static char *
column_text(Oid relid, int16 attnum, uint8 flags)
{
	StringInfoData buf;
	char		  *name = get_attname(relid, attnum, true);
	bool		   desc = (flags & APS_COL_DESC) != 0;
	bool		   nf = (flags & APS_COL_NULLS_FIRST) != 0;

	initStringInfo(&buf);
	appendStringInfoString(&buf, quote_identifier(name ? name : "?"));
	if (role_is_order(flags))
	{
		if (desc)
			appendStringInfoString(&buf, " DESC");
		if (desc && !nf)
			appendStringInfoString(&buf, " NULLS LAST");
		else if (!desc && nf)
			appendStringInfoString(&buf, " NULLS FIRST");
	}
	return buf.data;
}

static char *
make_ddl(const Candidate *c)
{
	StringInfoData buf;
	char		  *nsp = get_namespace_name(get_rel_namespace(c->relid));
	bool partitioned = get_rel_relkind(c->relid) == RELKIND_PARTITIONED_TABLE;

	initStringInfo(&buf);
	/* CONCURRENTLY is refused on partitioned tables. */
	appendStringInfo(&buf, "CREATE INDEX %sON %s (",
					 partitioned ? "" : "CONCURRENTLY ",
					 quote_qualified_identifier(nsp, get_rel_name(c->relid)));
	for (int i = 0; i < c->ncols; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(
			&buf, column_text(c->relid, c->attnum[i], c->flags[i]));
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
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

/* The verdict of one candidate; fills the re-plan numbers. */
static const char *
judge(Candidate *c, ApsReplan *rp, char **detail)
{
	char		  *covering;
	const char	  *text;
	bool		   generic;
	ApsHypoIndex   hypo;
	ApsEvSnapshot *ex = c->example;
	double		   rows;
	char		   relkind = get_rel_relkind(c->relid);

	memset(rp, 0, sizeof(*rp));
	*detail = NULL;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_PARTITIONED_TABLE)
		return "not a table";
	if (IsCatalogRelationOid(c->relid))
		return "system catalog";

	rows = table_rows(c->relid, c->scans > 0 ? c->rows_read / c->scans : 0);
	if (rows < (double) aps_min_table_rows)
	{
		*detail = psprintf("about %.0f rows", rows);
		return "table smaller than apiscale.min_table_rows";
	}

	covering = covering_index(c);
	if (covering != NULL)
	{
		*detail = psprintf("index %s", quote_identifier(covering));
		return "covered by an existing index";
	}

	if (ex == NULL || ex->sample.userid == InvalidOid)
		return "no statement to re-plan";
	if (ex->sample.text != NULL)
	{
		text = ex->sample.text;
		generic = ex->sample.nparams < 0;
	}
	else
	{
		ApsKey key;

		key.userid = ex->sample.userid;
		key.dbid = ex->dbid;
		key.queryid = ex->queryid;
		text = aps_store_get_query(&key);
		generic = true;
		if (text == NULL)
			return "no statement to re-plan";
	}

	memset(&hypo, 0, sizeof(hypo));
	hypo.relid = c->relid;
	hypo.ncols = c->ncols;
	for (int i = 0; i < c->ncols; i++)
	{
		hypo.attnum[i] = c->attnum[i];
		hypo.desc[i] =
			role_is_order(c->flags[i]) && (c->flags[i] & APS_COL_DESC) != 0;
		hypo.nulls_first[i] = role_is_order(c->flags[i]) &&
							  (c->flags[i] & APS_COL_NULLS_FIRST) != 0;
	}
	aps_replan(text, &ex->sample, generic, &hypo, rp);
	if (!rp->ok)
	{
		*detail = rp->error;
		return "re-plan failed";
	}
	if (generic)
		*detail = "re-planned with generic parameters";
	if (!rp->uses_index)
		return "planner would not use it";
	if (rp->cost_before <= 0 ||
		100.0 * (rp->cost_before - rp->cost_after) / rp->cost_before <
			aps_min_improvement_pct)
		return "improvement below apiscale.min_improvement_pct";
	return VERDICT_RECOMMENDED;
}

static char *
unindexable_detail(const Candidate *c)
{
	char *opname = get_opname(c->opno);

	if (c->why == APS_UNIDX_LEADING_WILDCARD)
		return psprintf("%s pattern starts with a wildcard: a btree cannot "
						"serve it (a pg_trgm GIN index can)",
						opname ? opname : "LIKE");
	return psprintf("operator %s is in no btree operator family",
					opname ? opname : "?");
}

static double
improvement_of(const Candidate *c)
{
	if (!c->rp.ok || c->rp.cost_before <= 0)
		return 0;
	return (c->rp.cost_before - c->rp.cost_after) / c->rp.cost_before;
}

static bool
same_queries(const Candidate *a, const Candidate *b)
{
	if (a->nqueries != b->nqueries)
		return false;
	for (int i = 0; i < a->nqueries; i++)
		if (!has_queryid(b, a->queryids[i]))
			return false;
	return true;
}

static int
nreasons(const Candidate *c)
{
	return ((c->reasons & REASON_WHERE) != 0) +
		   ((c->reasons & REASON_JOIN) != 0) +
		   ((c->reasons & REASON_ORDER) != 0);
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

/* "col, col DESC" */
static char *
columns_list(const Candidate *c)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < c->ncols; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(
			&buf, column_text(c->relid, c->attnum[i], c->flags[i]));
	}
	return buf.data;
}

/*
 * apiscale.index_candidates_internal(): every candidate with its verdict.
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

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	all_users =
		superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	snaps = aps_evidence_snapshot(MyDatabaseId);
	maxcands = Max(1, list_length(snaps) * APS_EV_MAX_ITEMS);
	cands = palloc0(sizeof(Candidate) * maxcands);

	/* 1. One candidate per item; identical ones merged. */
	foreach (lc, snaps)
	{
		ApsEvSnapshot *snap = lfirst(lc);

		if (!all_users && snap->sample.userid != GetUserId())
			continue;
		for (int i = 0; i < snap->nitems; i++)
		{
			Candidate c;
			bool	  merged = false;

			if (!candidate_from_item(snap, &snap->items[i], &c))
				continue;
			for (int j = 0; j < ncands && !merged; j++)
			{
				if (same_columns(&cands[j], &c))
				{
					absorb(&cands[j], &c, false);
					merged = true;
				}
			}
			if (!merged)
				cands[ncands++] = c;
		}
	}

	/* 2. Prefixes into the longer candidates that serve them. */
	for (int i = 0; i < ncands; i++)
	{
		int best = -1;

		for (int j = 0; j < ncands; j++)
		{
			if (j == i || cands[j].merged || !is_prefix(&cands[i], &cands[j]))
				continue;
			if (best < 0 || cands[j].rows_filtered > cands[best].rows_filtered)
				best = j;
		}
		if (best >= 0)
		{
			absorb(&cands[best], &cands[i], true);
			cands[i].merged = true;
		}
	}

	/* 3. Verdicts. */
	for (int i = 0; i < ncands; i++)
	{
		Candidate *c = &cands[i];

		if (c->merged)
			continue;
		CHECK_FOR_INTERRUPTS();
		memset(&c->rp, 0, sizeof(c->rp));
		c->detail = NULL;
		if (c->unindexable)
		{
			c->verdict = VERDICT_UNINDEXABLE;
			c->detail = unindexable_detail(c);
		}
		else
			c->verdict = judge(c, &c->rp, &c->detail);
	}

	/*
	 * 4. Of the recommended candidates of one table that serve the same
	 * statements (a filter and a join of one query, say), keep the one with
	 * the best improvement: one index per need.
	 */
	for (int i = 0; i < ncands; i++)
	{
		Candidate *a = &cands[i];

		if (a->merged || a->verdict != VERDICT_RECOMMENDED)
			continue;
		for (int j = 0; j < ncands; j++)
		{
			Candidate *b = &cands[j];

			if (j == i || b->merged || b->verdict != VERDICT_RECOMMENDED ||
				b->relid != a->relid || !same_queries(a, b))
				continue;
			if (better_candidate(b, j, a, i))
			{
				a->verdict = VERDICT_SUPERSEDED;
				a->detail = psprintf("in favour of (%s)", columns_list(b));
				break;
			}
		}
	}

	/* 5. Rows. */
	for (int i = 0; i < ncands; i++)
	{
		Candidate  *c = &cands[i];
		Datum		values[14];
		bool		nulls[14];
		List	   *cols = NIL;
		List	   *reasons = NIL;
		const char *verdict = c->verdict;
		char	   *detail = c->detail;
		ApsReplan	rp = c->rp;
		double		improvement = 0;

		if (c->merged)
			continue;
		memset(nulls, 0, sizeof(nulls));

		for (int k = 0; k < c->ncols; k++)
			cols = lappend(cols,
						   column_text(c->relid, c->attnum[k], c->flags[k]));
		if (c->reasons & REASON_WHERE)
			reasons = lappend(reasons, "where");
		if (c->reasons & REASON_JOIN)
			reasons = lappend(reasons, "join");
		if (c->reasons & REASON_ORDER)
			reasons = lappend(reasons, "order by");

		values[0] = ObjectIdGetDatum(c->relid);
		values[1] = text_array(cols);
		values[2] = text_array(reasons);
		if (c->unindexable)
			nulls[3] = true;
		else
			values[3] = CStringGetTextDatum(make_ddl(c));
		values[4] = Int64GetDatum(c->nqueries);
		values[5] = Int64GetDatum(c->scans);
		values[6] = Int64GetDatum((int64) c->rows_read);
		values[7] = Int64GetDatum((int64) c->rows_filtered);
		if (rp.ok)
		{
			improvement =
				rp.cost_before > 0
					? 100.0 * (rp.cost_before - rp.cost_after) / rp.cost_before
					: 0;
			values[8] = Float8GetDatum(rp.cost_before);
			values[9] = Float8GetDatum(rp.cost_after);
			values[10] = Float8GetDatum(round(improvement * 10.0) / 10.0);
		}
		else
			nulls[8] = nulls[9] = nulls[10] = true;
		if (c->example != NULL)
			values[11] = Int64GetDatum((int64) c->example->queryid);
		else
			nulls[11] = true;
		values[12] = CStringGetTextDatum(verdict);
		if (detail)
			values[13] = CStringGetTextDatum(detail);
		else
			nulls[13] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
