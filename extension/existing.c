/*-------------------------------------------------------------------------
 *
 * existing.c
 *		What the catalogs say about a candidate index: whether an existing
 *		index already does its job, how common a value is (pg_statistic),
 *		and the text of its columns and of its CREATE INDEX.
 *
 * Runs when apiscale.index_candidates is read, in the reader's backend,
 * with the candidate's table locked by the caller (AccessShareLock).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "advice.h"

static bool
role_is_order(uint8 f)
{
	return (f & APS_COL_ORDER) != 0 && (f & APS_COL_EQ) == 0;
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

/* The existing index's key and predicate, as compared with a candidate. */
typedef struct IndexDef
{
	Form_pg_index idx;
	oidvector	 *classes;
	oidvector	 *collations;
	int2vector	 *options;
	List		 *exprs; /* RelationGetIndexExpressions, varno 1 */
} IndexDef;

/* The expression of index column pos (an attnum 0 column). */
static Node *
index_expr_at(const IndexDef *d, int pos)
{
	int n = 0;

	for (int i = 0; i < pos; i++)
		if (d->idx->indkey.values[i] == 0)
			n++;
	return n < list_length(d->exprs) ? list_nth(d->exprs, n) : NULL;
}

/*
 * Does index column pos index candidate column j the way the candidate
 * needs: the same column or expression, its own collation, the type's
 * default btree operator class?
 */
static bool
key_is(Relation rel, const IndexDef *d, int pos, const Candidate *c, int j)
{
	int16 attnum = d->idx->indkey.values[pos];
	Oid	  type;
	Oid	  collation;

	if (c->attnum[j] > 0)
	{
		Form_pg_attribute att;

		if (attnum != c->attnum[j] || attnum > RelationGetDescr(rel)->natts)
			return false;
		att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
		type = att->atttypid;
		collation = att->attcollation;
	}
	else
	{
		Node *expr = index_expr_at(d, pos);

		if (attnum != 0 || expr == NULL || !equal(expr, c->expr[j]))
			return false;
		type = exprType(expr);
		collation = exprCollation(expr);
	}
	if (d->collations != NULL && d->collations->values[pos] != collation)
		return false;
	if (d->classes != NULL &&
		d->classes->values[pos] != GetDefaultOpClass(type, BTREE_AM_OID))
		return false;
	return true;
}

/* Does index d serve candidate c (see aps_existing_index)? */
static bool
index_serves(Relation rel, const IndexDef *d, const Candidate *c)
{
	int neq = 0;
	int same_dir = 0, reversed = 0, norder = 0;

	while (neq < c->nkey && !role_is_order(c->flags[neq]) &&
		   !(c->flags[neq] & APS_COL_RANGE))
		neq++;

	/* The equality block: the same columns in any order. */
	for (int i = 0; i < neq; i++)
	{
		bool in = false;

		for (int j = 0; j < neq && !in; j++)
			in = key_is(rel, d, i, c, j);
		if (!in)
			return false;
	}
	for (int i = neq; i < c->nkey; i++)
	{
		int16 opt = d->options ? d->options->values[i] : 0;

		if (!key_is(rel, d, i, c, i))
			return false;
		if (role_is_order(c->flags[i]))
		{
			bool desc = (opt & INDOPTION_DESC) != 0;
			bool nf = (opt & INDOPTION_NULLS_FIRST) != 0;
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
	if (norder > 0 && same_dir != norder && reversed != norder)
		return false;

	/* INCLUDE columns: anywhere in the index. */
	for (int j = c->nkey; j < c->ncols; j++)
	{
		bool in = false;

		for (int i = 0; i < d->idx->indnatts && !in; i++)
			in = d->idx->indkey.values[i] == c->attnum[j];
		if (!in)
			return false;
	}
	return true;
}

/*
 * A valid btree index of rel that already does what candidate c would: its
 * leading key columns are c's keys (equality columns in any order, sort
 * keys in the same or the fully reversed direction, expressions equal),
 * with the columns' own collations and default operator classes, it holds
 * c's INCLUDE columns, and it has c's predicate (none for a full
 * candidate).  Its name, or NULL.
 */
char *
aps_existing_index(Relation rel, const Candidate *c)
{
	List	 *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	char	 *found = NULL;

	foreach (lc, indexes)
	{
		Oid		  indexoid = lfirst_oid(lc);
		HeapTuple tup;
		IndexDef  d;
		bool	  isnull;
		bool	  has_pred;
		bool	  has_exprs;
		bool	  ok = true;
		Datum	  v;

		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		if (!HeapTupleIsValid(tup))
			continue;
		d.idx = (Form_pg_index) GETSTRUCT(tup);
		has_pred = !heap_attisnull(tup, Anum_pg_index_indpred, NULL);
		has_exprs = !heap_attisnull(tup, Anum_pg_index_indexprs, NULL);
		if (!d.idx->indisvalid || !d.idx->indisready ||
			d.idx->indnkeyatts < c->nkey || rel_am(indexoid) != BTREE_AM_OID ||
			has_pred != (c->pred != NIL))
		{
			ReleaseSysCache(tup);
			continue;
		}
		v = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indoption, &isnull);
		d.options = isnull ? NULL : (int2vector *) DatumGetPointer(v);
		v = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indclass, &isnull);
		d.classes = isnull ? NULL : (oidvector *) DatumGetPointer(v);
		v = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indcollation,
							&isnull);
		d.collations = isnull ? NULL : (oidvector *) DatumGetPointer(v);
		d.exprs = NIL;
		if (has_exprs || has_pred)
		{
			Relation irel = index_open(indexoid, AccessShareLock);

			d.exprs = RelationGetIndexExpressions(irel);
			if (has_pred)
				ok = equal(RelationGetIndexPredicate(irel), c->pred);
			index_close(irel, AccessShareLock);
		}
		if (ok && index_serves(rel, &d, c))
			found = get_rel_name(indexoid);
		ReleaseSysCache(tup);
		if (found)
			break;
	}
	list_free(indexes);
	return found;
}

/* The value of k as a Datum of its type (palloc'd if by reference). */
static bool
const_datum(const ApsCandConst *k, Datum *value)
{
	int16 typlen;
	bool  byval;

	if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(k->value.type)))
		return false;
	get_typlenbyval(k->value.type, &typlen, &byval);
	if (byval != k->value.byval)
		return false;
	if (byval)
	{
		Datum d;

		if (k->value.len != sizeof(Datum))
			return false;
		memcpy(&d, k->value.value, sizeof(Datum));
		*value = d;
	}
	else if (typlen > 0)
	{
		char *p;

		if (typlen != k->value.len)
			return false;
		p = palloc(typlen);
		memcpy(p, k->value.value, typlen);
		*value = PointerGetDatum(p);
	}
	else if (typlen == -1)
	{
		struct varlena *p = palloc(VARHDRSZ + k->value.len);

		SET_VARSIZE(p, VARHDRSZ + k->value.len);
		memcpy(VARDATA(p), k->value.value, k->value.len);
		*value = PointerGetDatum(p);
	}
	else
		return false;
	return true;
}

/*
 * The share of relid's rows whose column k->attnum equals k's value, from
 * pg_statistic as the planner reads it: the value's frequency if it is a
 * most common value, else the rows left by the most common values and the
 * nulls spread over the other distinct values.  False without statistics.
 */
bool
aps_value_fraction(Oid relid, const ApsCandConst *k, double *fraction)
{
	HeapTuple		  tup;
	Form_pg_statistic st;
	AttStatsSlot	  sslot;
	FmgrInfo		  eqproc;
	Datum			  value;
	double			  sumcommon = 0.0;
	double			  mincommon = 1.0;
	int				  nmcv = 0;
	bool			  found = false;
	double			  freq = 0.0;
	double			  ndistinct;
	RegProcedure	  opcode = get_opcode(k->value.opno);
	bool inh = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;

	if (!RegProcedureIsValid(opcode) || !const_datum(k, &value))
		return false;
	tup = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
						  Int16GetDatum(k->attnum), BoolGetDatum(inh));
	if (!HeapTupleIsValid(tup))
		return false;
	st = (Form_pg_statistic) GETSTRUCT(tup);
	fmgr_info(opcode, &eqproc);
	if (get_attstatsslot(&sslot, tup, STATISTIC_KIND_MCV, InvalidOid,
						 ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS))
	{
		nmcv = sslot.nvalues;
		for (int i = 0; i < sslot.nvalues && i < sslot.nnumbers; i++)
		{
			sumcommon += sslot.numbers[i];
			mincommon = Min(mincommon, sslot.numbers[i]);
			if (!found &&
				DatumGetBool(FunctionCall2Coll(&eqproc, k->value.collid,
											   sslot.values[i], value)))
			{
				found = true;
				freq = sslot.numbers[i];
			}
		}
		free_attstatsslot(&sslot);
	}
	if (!found)
	{
		HeapTuple ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		double	  reltuples = 0;

		if (HeapTupleIsValid(ctup))
		{
			reltuples = ((Form_pg_class) GETSTRUCT(ctup))->reltuples;
			ReleaseSysCache(ctup);
		}
		ndistinct = st->stadistinct >= 0 ? st->stadistinct
										 : -st->stadistinct * reltuples;
		freq =
			(1.0 - sumcommon - st->stanullfrac) / Max(1.0, ndistinct - nmcv);
		/* Not a most common value: rarer than the rarest of them. */
		if (nmcv > 0)
			freq = Min(freq, mincommon);
		freq = Max(freq, 0.0);
	}
	ReleaseSysCache(tup);
	*fraction = Min(freq, 1.0);
	return true;
}

/*
 * The clause "column = value" of k on relid (Vars of varno 1), as the
 * planner writes the statement's own (binary-compatible casts included),
 * or NULL if it cannot be written.
 */
Node *
aps_const_clause(Oid relid, const ApsCandConst *k)
{
	HeapTuple		  tup;
	Form_pg_attribute att;
	Oid				  lefttype, righttype;
	Expr			 *left;
	Const			 *right;
	Datum			  value;
	int16			  typlen;
	bool			  byval;
	OpExpr			 *op;

	if (!SearchSysCacheExists1(OPEROID, ObjectIdGetDatum(k->value.opno)) ||
		!const_datum(k, &value))
		return NULL;
	op_input_types(k->value.opno, &lefttype, &righttype);
	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
						  Int16GetDatum(k->attnum));
	if (!HeapTupleIsValid(tup))
		return NULL;
	att = (Form_pg_attribute) GETSTRUCT(tup);
	left = (Expr *) makeVar(1, k->attnum, att->atttypid, att->atttypmod,
							att->attcollation, 0);
	/* A polymorphic operator (an enum's) takes the column as it is. */
	if (IsPolymorphicType(lefttype))
		lefttype = att->atttypid;
	if (IsPolymorphicType(righttype))
		righttype = k->value.type;
	if (att->atttypid != lefttype)
	{
		if (!IsBinaryCoercible(att->atttypid, lefttype))
		{
			ReleaseSysCache(tup);
			return NULL;
		}
		left = (Expr *) makeRelabelType(left, lefttype, -1, att->attcollation,
										COERCE_IMPLICIT_CAST);
	}
	ReleaseSysCache(tup);
	if (righttype != k->value.type)
		return NULL;
	get_typlenbyval(righttype, &typlen, &byval);
	right = makeConst(righttype, -1, get_typcollation(righttype), typlen,
					  value, false, byval);
	op = (OpExpr *) make_opclause(k->value.opno, BOOLOID, false, left,
								  (Expr *) right, InvalidOid, k->value.collid);
	op->opfuncid = get_opcode(k->value.opno);
	return (Node *) op;
}

static bool
func_missing(Oid funcid, void *context)
{
	return !SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(funcid));
}

static bool
expr_invalid_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, func_missing, NULL))
		return true;
	if (IsA(node, OpExpr) &&
		!SearchSysCacheExists1(OPEROID,
							   ObjectIdGetDatum(((OpExpr *) node)->opno)))
		return true;
	if (IsA(node, ScalarArrayOpExpr) &&
		!SearchSysCacheExists1(
			OPEROID, ObjectIdGetDatum(((ScalarArrayOpExpr *) node)->opno)))
		return true;
	return expression_tree_walker(node, expr_invalid_walker, context);
}

/*
 * Do the functions and operators of an expression kept in shared memory
 * still exist (it may be older than a DROP FUNCTION)?
 */
bool
aps_expr_valid(Node *expr)
{
	return expr != NULL && !expr_invalid_walker(expr, NULL);
}

/* An expression of relid's columns (Vars of varno 1) as SQL text. */
char *
aps_expr_text(Oid relid, Node *expr)
{
	char *rel = get_rel_name(relid);

	return deparse_expression(
		expr, deparse_context_for(rel ? rel : "?", relid), false, false);
}

/*
 * Column i of c: "col", "col DESC", "col NULLS FIRST", "lower(email)"...;
 * ddl: an expression in parentheses, as CREATE INDEX wants it.
 */
static char *
column_text(const Candidate *c, int i, bool ddl)
{
	StringInfoData buf;
	uint8		   flags = c->flags[i];
	bool		   desc = (flags & APS_COL_DESC) != 0;
	bool		   nf = (flags & APS_COL_NULLS_FIRST) != 0;

	initStringInfo(&buf);
	if (c->attnum[i] > 0)
	{
		char *name = get_attname(c->relid, c->attnum[i], true);

		appendStringInfoString(&buf, name ? quote_identifier(name) : "?");
	}
	else if (ddl)
		appendStringInfo(&buf, "(%s)", aps_expr_text(c->relid, c->expr[i]));
	else
		appendStringInfoString(&buf, aps_expr_text(c->relid, c->expr[i]));
	if (role_is_order(flags) && i < c->nkey)
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

char *
aps_column_text(const Candidate *c, int i)
{
	return column_text(c, i, false);
}

static char *
columns_text(const Candidate *c, int from, int to, bool ddl)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = from; i < to; i++)
	{
		if (i > from)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, column_text(c, i, ddl));
	}
	return buf.data;
}

/* "col, col DESC" of columns from..to-1. */
char *
aps_columns_list(const Candidate *c, int from, int to)
{
	return columns_text(c, from, to, false);
}

/* The CREATE INDEX statement, or NULL if the table is gone. */
char *
aps_make_ddl(const Candidate *c)
{
	char		  *rel = get_rel_name(c->relid);
	char		  *nsp = get_namespace_name(get_rel_namespace(c->relid));
	StringInfoData buf;

	if (rel == NULL || nsp == NULL)
		return NULL;
	initStringInfo(&buf);
	/* CONCURRENTLY is refused on partitioned tables. */
	appendStringInfo(&buf, "CREATE INDEX %sON %s (%s)",
					 get_rel_relkind(c->relid) == RELKIND_PARTITIONED_TABLE
						 ? ""
						 : "CONCURRENTLY ",
					 quote_qualified_identifier(nsp, rel),
					 columns_text(c, 0, c->nkey, true));
	if (c->ncols > c->nkey)
		appendStringInfo(&buf, " INCLUDE (%s)",
						 columns_text(c, c->nkey, c->ncols, true));
	if (c->pred != NIL)
		appendStringInfo(
			&buf, " WHERE %s",
			aps_expr_text(c->relid, (Node *) make_ands_explicit(c->pred)));
	return buf.data;
}

/* What the detail of a proven candidate says besides the verdict. */
void
aps_describe(Relation rel, Candidate *c, bool generic, bool generic_unusable)
{
	StringInfoData buf;
	char *index = OidIsValid(c->indexid) ? get_rel_name(c->indexid) : NULL;

	initStringInfo(&buf);
	if (c->reasons & APS_REASON_COVER)
	{
		BlockNumber pages = rel->rd_rel->relpages;

		appendStringInfo(&buf, "index-only scan instead of heap fetches");
		if (index != NULL)
			appendStringInfo(&buf, " through %s (it would replace it)",
							 quote_identifier(index));
		if (pages > 0)
			appendStringInfo(
				&buf, "; %.0f%% of the table's pages are all-visible",
				100.0 * Min(rel->rd_rel->relallvisible, pages) / pages);
		else
			appendStringInfoString(&buf, "; the table's all-visible share "
										 "is unknown (never vacuumed)");
	}
	else if (index != NULL)
		appendStringInfo(&buf, "beside index %s, which the statements use now",
						 quote_identifier(index));
	if (c->pred != NIL)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, "; ");
		appendStringInfo(&buf, "%s holds for %.2g%% of the rows (pg_stats)",
						 aps_expr_text(c->relid, linitial(c->pred)),
						 100.0 * c->pred_fraction);
		if (generic_unusable)
			appendStringInfoString(&buf, "; prepared statements' generic "
										 "plans cannot use it (the value is "
										 "a parameter there)");
	}
	if (generic)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, "; ");
		appendStringInfoString(&buf, "re-planned with generic parameters");
	}
	c->detail = buf.len > 0 ? buf.data : NULL;
}

char *
aps_unindexable_detail(const Candidate *c)
{
	char *opname = OidIsValid(c->opno) ? get_opname(c->opno) : NULL;

	if (c->why == APS_UNIDX_MUTABLE)
	{
		if (OidIsValid(c->funcid) && get_func_name(c->funcid) != NULL)
			return psprintf("function %s is not immutable: no index can "
							"hold its result",
							format_procedure(c->funcid));
		return psprintf("the expression is not immutable: no index can hold "
						"its result");
	}
	if (c->why == APS_UNIDX_LEADING_WILDCARD)
		return psprintf("%s pattern starts with a wildcard: a btree cannot "
						"serve it (a pg_trgm GIN index can)",
						opname ? opname : "LIKE");
	return psprintf("operator %s cannot drive a btree index scan",
					opname ? opname : "?");
}

char *
aps_lossy_detail(const Candidate *c)
{
	const char *work_mem = GetConfigOptionByName("work_mem", NULL, true);
	char *index = OidIsValid(c->indexid) ? get_rel_name(c->indexid) : NULL;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "%.0f of %.0f heap pages read through %s were lossy "
					 "(the bitmap outgrew work_mem)",
					 c->lossy_pages, c->lossy_pages + c->exact_pages,
					 index ? quote_identifier(index) : "an index");
	/* Rows are counted on runs that count them (a filter). */
	if (c->rows_filtered > 0)
		appendStringInfo(&buf,
						 ": the recheck read %.0f rows again and threw them "
						 "away",
						 c->rows_filtered);
	appendStringInfo(&buf,
					 "; raise work_mem (now %s) for these statements, not "
					 "an index",
					 work_mem ? work_mem : "?");
	return buf.data;
}
