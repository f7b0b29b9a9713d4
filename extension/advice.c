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
 *	   column order), then one range column (one candidate per range column
 *	   when there are several); for a sort, the scan's equality columns and
 *	   then the sort keys with their directions; for a join, the scan's
 *	   equality columns and then the join keys.  Items on a partition count
 *	   for its partitioned root, columns mapped by name.
 *	2. Identical candidates are merged, and a candidate whose columns are a
 *	   prefix of others' (same directions for sort keys) is merged into the
 *	   shortest of them, which serves its statements too.
 *	3. Each candidate gets a verdict: table smaller than min_table_rows;
 *	   covered by an existing valid btree whose leading columns are the
 *	   candidate's (equality columns in any order; sort keys in the same or
 *	   the fully reversed direction; same collations, default operator
 *	   classes); no statement to re-plan; re-plan failed; planner would not
 *	   use it; improvement below min_improvement_pct; or recommended.  The
 *	   re-plan uses the statement with the most rows filtered among those
 *	   the candidate serves, and the next ones if that one cannot be
 *	   re-planned.
 *	4. Of the recommended candidates of one table that serve exactly the
 *	   same statements, the best one stays recommended.
 *	5. Filters no btree can serve are listed as "not indexable by btree".
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

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_operator.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
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

#define MAX_QUERYIDS   64	/* distinct queries remembered per candidate */
#define APS_BTREE_WIDE 1000 /* average key width (bytes) too wide to index */
#define MAX_EXAMPLES   4	/* statements tried for the re-plan */
#define MAX_PER_ITEM   (APS_EV_MAX_COLS + 1) /* candidates from one item */

/* Verdicts compared by pointer */
static const char VERDICT_RECOMMENDED[] = "recommended";
static const char VERDICT_UNINDEXABLE[] = "not indexable by btree";
static const char VERDICT_SUPERSEDED[] =
	"another candidate serves the same statements better";

typedef struct Candidate
{
	Oid	   relid;
	int	   ncols;
	int16  attnum[APS_EV_MAX_COLS];
	uint8  flags[APS_EV_MAX_COLS];
	bool   unindexable;
	Oid	   opno; /* unindexable: the operator */
	uint8  why;	 /* unindexable: ApsUnindexable */
	int	   reasons;
	int	   nqueries;
	uint64 queryids[MAX_QUERYIDS];
	int64  scans;
	double rows_read;
	double rows_filtered;
	/* statements to re-plan, most rows filtered first */
	int			   nexamples;
	ApsEvSnapshot *examples[MAX_EXAMPLES];
	double		   example_filtered[MAX_EXAMPLES];
	bool		   merged; /* folded into another candidate */
	/* filled by the verdict pass */
	const char *verdict;
	char	   *detail;
	ApsReplan	rp;
	uint64		replanned_queryid; /* statement the re-plan used */
} Candidate;

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
	if (!has_queryid(c, queryid) && c->nqueries < MAX_QUERYIDS)
		c->queryids[c->nqueries++] = queryid;
}

/* Keep snap among c's examples (the MAX_EXAMPLES most wasteful). */
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
	if (pos >= MAX_EXAMPLES)
		return;
	if (c->nexamples == MAX_EXAMPLES)
		c->nexamples--;
	memmove(&c->examples[pos + 1], &c->examples[pos],
			sizeof(c->examples[0]) * (c->nexamples - pos));
	memmove(&c->example_filtered[pos + 1], &c->example_filtered[pos],
			sizeof(double) * (c->nexamples - pos));
	c->examples[pos] = snap;
	c->example_filtered[pos] = filtered;
	c->nexamples++;
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
	for (int i = 0; i < b->nexamples; i++)
		add_example(a, b->examples[i], b->example_filtered[i]);
}

/*
 * Is one index on a's columns and one on b's the same index?  Same columns
 * in the same order; the direction matters only where both sort by the
 * column (a range or equality column is served either way).
 */
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
	for (int i = 0; i < a->ncols; i++)
		if (role_is_order(b->flags[i]) && !role_is_order(a->flags[i]))
			a->flags[i] = b->flags[i];
}

/* Is shorter's column list a leading part of longer's? */
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
	int16	  ranges[APS_EV_MAX_COLS];
	int		  nranges = 0;

	memset(&base, 0, sizeof(base));
	if (get_rel_name(it->relid) == NULL)
		return 0; /* dropped since */
	root = root_of(it->relid);
	base.relid = root;

	switch (it->kind)
	{
		case APS_EV_WHERE:
			base.reasons = REASON_WHERE;
			for (int i = 0; i < it->ncols; i++)
			{
				if (it->flags[i] & APS_COL_EQ)
				{
					base.attnum[n] = it->attnum[i];
					base.flags[n++] = APS_COL_EQ;
				}
				else if (it->flags[i] & APS_COL_RANGE)
					ranges[nranges++] = it->attnum[i];
			}
			break;
		case APS_EV_JOIN:
		case APS_EV_ORDER:
			base.reasons =
				it->kind == APS_EV_JOIN ? REASON_JOIN : REASON_ORDER;
			for (int i = 0; i < it->ncols; i++)
			{
				base.attnum[n] = it->attnum[i];
				base.flags[n++] = it->flags[i];
			}
			break;
		case APS_EV_UNINDEXABLE:
			base.reasons = REASON_WHERE;
			base.unindexable = true;
			base.opno = it->opno;
			base.why = it->why;
			base.attnum[n] = it->attnum[0];
			base.flags[n++] = 0;
			break;
		default:
			return 0;
	}
	base.ncols = n;
	base.nqueries = 0;
	add_queryid(&base, snap->queryid);
	base.scans = it->scans;
	base.rows_read = it->rows_read;
	base.rows_filtered = it->rows_filtered;
	add_example(&base, snap, it->rows_filtered);

	/* One candidate per range column, after the equality columns. */
	if (nranges == 0)
		out[nout++] = base;
	for (int r = 0; r < nranges && n < APS_EV_MAX_COLS; r++)
	{
		out[nout] = base;
		out[nout].attnum[n] = ranges[r];
		out[nout].flags[n] = APS_COL_RANGE;
		out[nout].ncols = n + 1;
		nout++;
	}

	for (int k = 0; k < nout; k++)
	{
		Candidate *c = &out[k];

		if (c->ncols == 0)
			return 0;
		for (int i = 0; i < c->ncols; i++)
		{
			/* Columns of a partition, by name, in its root. */
			if (root != it->relid)
			{
				char *name = get_attname(it->relid, c->attnum[i], true);

				c->attnum[i] =
					name ? get_attnum(root, name) : InvalidAttrNumber;
			}
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
 * Does index column i (key attnum) index the table's column the way the
 * candidate needs: the column's own collation and the type's default btree
 * operator class?
 */
static bool
plain_index_column(Relation rel, Form_pg_index idx, oidvector *classes,
				   oidvector *collations, int i)
{
	Form_pg_attribute att;
	int16			  attnum = idx->indkey.values[i];

	if (attnum <= 0 || attnum > RelationGetDescr(rel)->natts)
		return false;
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	if (collations != NULL && collations->values[i] != att->attcollation)
		return false;
	if (classes != NULL &&
		classes->values[i] != GetDefaultOpClass(att->atttypid, BTREE_AM_OID))
		return false;
	return true;
}

/*
 * A valid, non-partial btree index of rel whose leading key columns are
 * c's columns; its name, or NULL.
 */
static char *
covering_index(Relation rel, const Candidate *c)
{
	List	 *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	char	 *found = NULL;
	int		  neq = 0;

	while (neq < c->ncols && !role_is_order(c->flags[neq]) &&
		   !(c->flags[neq] & APS_COL_RANGE))
		neq++;

	foreach (lc, indexes)
	{
		Oid			  indexoid = lfirst_oid(lc);
		HeapTuple	  tup;
		Form_pg_index idx;
		bool		  ok = true;
		bool		  isnull;
		Datum		  d;
		int2vector	 *options;
		oidvector	 *classes;
		oidvector	 *collations;
		int			  same_dir = 0, reversed = 0, norder = 0;

		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		if (!idx->indisvalid || !idx->indisready ||
			idx->indnkeyatts < c->ncols || rel_am(indexoid) != BTREE_AM_OID ||
			!heap_attisnull(tup, Anum_pg_index_indpred, NULL) ||
			!heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
		{
			ReleaseSysCache(tup);
			continue;
		}
		d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indoption, &isnull);
		options = isnull ? NULL : (int2vector *) DatumGetPointer(d);
		d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indclass, &isnull);
		classes = isnull ? NULL : (oidvector *) DatumGetPointer(d);
		d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indcollation,
							&isnull);
		collations = isnull ? NULL : (oidvector *) DatumGetPointer(d);

		for (int i = 0; i < c->ncols && ok; i++)
			ok = plain_index_column(rel, idx, classes, collations, i);

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
	appendStringInfoString(&buf, name ? quote_identifier(name) : "?");
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

/* The CREATE INDEX statement, or NULL if the table is gone. */
static char *
make_ddl(const Candidate *c)
{
	char *rel = get_rel_name(c->relid);
	char *nsp = get_namespace_name(get_rel_namespace(c->relid));

	if (rel == NULL || nsp == NULL)
		return NULL;
	/* CONCURRENTLY is refused on partitioned tables. */
	return psprintf("CREATE INDEX %sON %s (%s)",
					get_rel_relkind(c->relid) == RELKIND_PARTITIONED_TABLE
						? ""
						: "CONCURRENTLY ",
					quote_qualified_identifier(nsp, rel), columns_list(c));
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

/*
 * The verdict of candidate c on table rel (locked by the caller); fills
 * c->rp, c->detail and c->replanned_queryid.
 */
static const char *
judge(Relation rel, Candidate *c)
{
	char		*covering;
	double		 rows;
	char		 relkind = rel->rd_rel->relkind;
	ApsHypoIndex hypo;
	const char	*last_error = NULL;
	bool		 tried = false;
	bool		 others_only = false;

	memset(&c->rp, 0, sizeof(c->rp));
	c->detail = NULL;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_PARTITIONED_TABLE)
		return "not a table";
	if (IsCatalogRelation(rel))
		return "system catalog";

	for (int i = 0; i < c->ncols; i++)
	{
		Form_pg_attribute att =
			TupleDescAttr(RelationGetDescr(rel), c->attnum[i] - 1);

		if (!OidIsValid(GetDefaultOpClass(att->atttypid, BTREE_AM_OID)))
		{
			c->detail = psprintf("type %s has no default btree operator class",
								 format_type_be(att->atttypid));
			return VERDICT_UNINDEXABLE;
		}
	}

	/*
	 * A btree entry holds at most about a third of a page (2704 bytes):
	 * columns that wide on average cannot be indexed as they are.
	 */
	{
		int32 width = 0;

		for (int i = 0; i < c->ncols; i++)
			width += Max(get_attavgwidth(c->relid, c->attnum[i]), 0);
		if (width > APS_BTREE_WIDE)
		{
			c->detail =
				psprintf("values are %d bytes wide on average; a btree "
						 "entry holds at most 2704: index a hash of "
						 "them (an expression index on md5(...))",
						 width);
			return VERDICT_UNINDEXABLE;
		}
	}

	rows = table_rows(c->relid, c->scans > 0 ? c->rows_read / c->scans : 0);
	if (rows < (double) aps_min_table_rows)
	{
		c->detail = psprintf("about %.0f rows", rows);
		return "table smaller than apiscale.min_table_rows";
	}

	covering = covering_index(rel, c);
	if (covering != NULL)
	{
		c->detail = psprintf("index %s", quote_identifier(covering));
		return "covered by an existing index";
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

	/*
	 * Re-plan the statements the candidate serves, most wasteful first (up
	 * to MAX_EXAMPLES), and judge the sum of their costs: an index that
	 * helps one statement a lot and another a little is judged on both.
	 */
	for (int e = 0; e < c->nexamples; e++)
	{
		ApsEvSnapshot *ex = c->examples[e];
		bool		   generic = false;
		const char	  *why = NULL;
		const char	  *text;
		ApsReplan	   rp;

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
		}
		if (generic)
			c->detail = "re-planned with generic parameters";
	}
	if (c->rp.ok)
	{
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

static char *
unindexable_detail(const Candidate *c)
{
	char *opname = get_opname(c->opno);

	if (c->why == APS_UNIDX_LEADING_WILDCARD)
		return psprintf("%s pattern starts with a wildcard: a btree cannot "
						"serve it (a pg_trgm GIN index can)",
						opname ? opname : "LIKE");
	return psprintf("operator %s cannot drive a btree index scan",
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
		   (queries_within(a, b) || queries_within(b, a));
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

/*
 * Are c's columns still columns of rel (now that it is locked: a column
 * dropped while we waited for the lock is gone)?
 */
static bool
columns_still_there(Relation rel, const Candidate *c)
{
	TupleDesc desc = RelationGetDescr(rel);

	for (int i = 0; i < c->ncols; i++)
		if (c->attnum[i] <= 0 || c->attnum[i] > desc->natts ||
			TupleDescAttr(desc, c->attnum[i] - 1)->attisdropped)
			return false;
	return true;
}

/*
 * Judge candidate c in a memory context of its own (the plans of a re-plan
 * are large); what the row needs is copied to the caller's context.
 */
static void
judge_candidate(Candidate *c, MemoryContext scratch)
{
	MemoryContext outer = MemoryContextSwitchTo(scratch);
	Relation	  rel;
	const char	 *verdict;

	CHECK_FOR_INTERRUPTS();
	/* Hold the table while it is judged, and not after. */
	rel = try_relation_open(c->relid, AccessShareLock);
	if (rel == NULL)
		verdict = NULL; /* dropped meanwhile */
	else
	{
		verdict = columns_still_there(rel, c) ? judge(rel, c) : NULL;
		relation_close(rel, AccessShareLock);
	}
	MemoryContextSwitchTo(outer);
	c->verdict = verdict;
	c->detail = c->detail ? pstrdup(c->detail) : NULL;
	c->rp.error = c->rp.error ? pstrdup(c->rp.error) : NULL;
	MemoryContextReset(scratch);
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
	MemoryContext  scratch;

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	all_users =
		superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

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

	/* 3. Verdicts. */
	scratch =
		AllocSetContextCreate(CurrentMemoryContext, "apiscale index candidate",
							  ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < ncands; i++)
	{
		Candidate *c = &cands[i];

		if (c->merged)
			continue;
		if (c->unindexable)
		{
			c->verdict = VERDICT_UNINDEXABLE;
			c->detail = unindexable_detail(c);
			c->rp.ok = false;
			if (get_rel_name(c->relid) == NULL)
				c->verdict = NULL;
		}
		else
			judge_candidate(c, scratch);
	}
	MemoryContextDelete(scratch);

	/*
	 * 4. Of the recommended candidates of one table that serve the same
	 * statements (the filter, join and sort of one query), keep the best.
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
				!alternatives(a, b))
				continue;
			if (better_candidate(b, j, a, i))
			{
				a->verdict = VERDICT_SUPERSEDED;
				a->detail = psprintf("in favour of (%s)", columns_list(b));
				break;
			}
		}
	}

	/* 5. Rows (not for tables dropped meanwhile). */
	for (int i = 0; i < ncands; i++)
	{
		Candidate *c = &cands[i];
		Datum	   values[14];
		bool	   nulls[14];
		List	  *cols = NIL;
		List	  *reasons = NIL;
		char	  *ddl;

		if (c->merged || c->verdict == NULL)
			continue;
		/* No DDL for what no btree can serve; no row for a vanished table. */
		ddl = c->verdict == VERDICT_UNINDEXABLE ? NULL : make_ddl(c);
		if (c->verdict != VERDICT_UNINDEXABLE && ddl == NULL)
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
			values[10] =
				Float8GetDatum(round(improvement_of(c) * 1000.0) / 10.0);
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
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
