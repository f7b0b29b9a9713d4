/*-------------------------------------------------------------------------
 *
 * quals.c
 *		What a scan's quals compare, sorted by the role an index column
 *		could play (the index advisor's reading of a filter).
 *
 * A qual counts when one side is a column of the scanned table, or an
 * expression of its columns alone (lower(email), payload->>'id'), and the
 * other side does not read the scanned row: a constant, a parameter, an
 * init plan's value, or a value from an outer row (a join).  Equality and
 * range operators of a btree operator family give equality and range
 * columns; LIKE with a leading wildcard and operators no btree serves are
 * "unindexable", and so is an expression that calls a function that is not
 * immutable (no index can hold its result).
 *
 * Expressions are known by a hash of their tree, and kept (when the
 * evidence table first meets one) as nodeToString text with the scan's
 * Vars renumbered to varno 1 and every location cleared, so that one
 * expression reads the same from any statement.  A column compared for equality with one value
 * (a constant, or a parameter whose value is at hand) keeps the value, for
 * partial indexes.
 *
 * Called at ExecutorEnd: nothing here looks up more than an operator's
 * btree interpretation (cached per backend), an expression's volatility
 * (cached per backend until pg_proc changes) and a type's length, and
 * nothing raises errors of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type_d.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "quals.h"

#define OP_CACHE_SLOTS		256 /* power of two */
#define MUTABLE_CACHE_SLOTS 64	/* power of two */

/* Backend-local cache: operator -> btree strategy. */
static Oid	 op_cache_oid[OP_CACHE_SLOTS];
static uint8 op_cache_strat[OP_CACHE_SLOTS];

/*
 * Backend-local cache: expression hash -> the function that makes it not
 * immutable (InvalidOid: none), emptied when pg_proc changes (ALTER
 * FUNCTION ... IMMUTABLE).
 */
typedef struct MutableSlot
{
	uint64 hash;
	bool   used;
	bool mutable;
	Oid funcid;
} MutableSlot;

static MutableSlot mutable_cache[MUTABLE_CACHE_SLOTS];
static bool		   mutable_cache_watched = false;

/* An expression of the scanned table's columns alone? */
typedef struct ExprCheck
{
	Index scanrelid;
	int	  nvars;
} ExprCheck;

/* The btree strategy (any btree family) of opno, cached. */
int
aps_op_strategy(Oid opno)
{
	int	  slot = (int) (opno & (OP_CACHE_SLOTS - 1));
	List *interps;
	int	  strat = APS_STRAT_NONE;

	if (op_cache_oid[slot] == opno && opno != InvalidOid)
		return op_cache_strat[slot];

	interps = get_op_btree_interpretation(opno);
	if (interps != NIL)
	{
		OpBtreeInterpretation *i = linitial(interps);

		strat = i->strategy;
		if (strat < 1 || strat > APS_STRAT_NE)
			strat = APS_STRAT_NONE;
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

/* A plain column of the scanned relation (varno scanrelid)? */
static inline bool
is_scan_column(Node *n, Index scanrelid)
{
	Var *v;

	n = aps_strip(n);
	if (n == NULL || !IsA(n, Var))
		return false;
	v = (Var *) n;
	return v->varno == (int) scanrelid && v->varlevelsup == 0 &&
		   v->varattno > 0;
}

static bool
scan_expr_walker(Node *node, ExprCheck *ck)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var *v = (Var *) node;

		if (v->varno != (int) ck->scanrelid || v->varlevelsup != 0 ||
			v->varattno <= 0)
			return true;
		ck->nvars++;
		return false;
	}
	/* Values from elsewhere, and what an index expression cannot hold. */
	if (IsA(node, Param) || IsA(node, SubLink) || IsA(node, SubPlan) ||
		IsA(node, AlternativeSubPlan) || IsA(node, Aggref) ||
		IsA(node, WindowFunc) || IsA(node, GroupingFunc) ||
		IsA(node, PlaceHolderVar) || IsA(node, CurrentOfExpr))
		return true;
	return expression_tree_walker(node, scan_expr_walker, ck);
}

/*
 * An expression (not a plain column) of the scanned relation's columns and
 * nothing else?
 */
static bool
is_scan_expr(Node *n, Index scanrelid)
{
	ExprCheck ck;

	n = aps_strip(n);
	if (n == NULL || IsA(n, Var) || IsA(n, Const))
		return false;
	ck.scanrelid = scanrelid;
	ck.nvars = 0;
	return !scan_expr_walker(n, &ck) && ck.nvars > 0 &&
		   !expression_returns_set(n);
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

static bool
mutable_func_checker(Oid func_id, void *context)
{
	if (func_volatile(func_id) != PROVOLATILE_IMMUTABLE)
	{
		*(Oid *) context = func_id;
		return true;
	}
	return false;
}

/* The first function in node that is not immutable, if any. */
static bool
first_mutable_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, mutable_func_checker, context))
		return true;
	return expression_tree_walker(node, first_mutable_walker, context);
}

static void
mutable_cache_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	memset(mutable_cache, 0, sizeof(mutable_cache));
}

/*
 * Does expr (of hash) call something that is not immutable, and which
 * function (InvalidOid if it is not a function: a SQL value function, say)?
 * Cached per backend.
 */
static bool
expr_mutable(uint64 hash, Node *expr, Oid *funcid)
{
	MutableSlot *slot = &mutable_cache[hash & (MUTABLE_CACHE_SLOTS - 1)];

	if (!mutable_cache_watched)
	{
		CacheRegisterSyscacheCallback(PROCOID, mutable_cache_reset, (Datum) 0);
		mutable_cache_watched = true;
	}
	if (!slot->used || slot->hash != hash)
	{
		slot->funcid = InvalidOid;
		slot->mutable = contain_mutable_functions(expr);
		if (slot->mutable)
			first_mutable_walker(expr, &slot->funcid);
		slot->hash = hash;
		slot->used = true;
	}
	*funcid = slot->funcid;
	return slot->mutable;
}

/*
 * "... :location 17 ..." -> "... :location -1 ...": the same expression
 * reads the same wherever it stood in the statement's text.
 */
static char *
clear_locations(const char *s)
{
	static const char key[] = ":location ";
	StringInfoData	  buf;
	const char		 *p;

	initStringInfo(&buf);
	while ((p = strstr(s, key)) != NULL)
	{
		p += sizeof(key) - 1;
		appendBinaryStringInfo(&buf, s, p - s);
		appendStringInfoString(&buf, "-1");
		if (*p == '-')
			p++;
		while (*p >= '0' && *p <= '9')
			p++;
		s = p;
	}
	appendStringInfoString(&buf, s);
	return buf.data;
}

/*
 * A hash of an expression tree: node kinds, columns, functions, operators,
 * types and constant values, not the range table index of the Vars nor
 * the locations; one expression hashes the same from any statement.
 */
static bool
expr_hash_walker(Node *node, void *context)
{
	uint64 *h = (uint64 *) context;

#define MIX(v) (*h = hash_combine64(*h, (uint64) (v)))
	if (node == NULL)
	{
		MIX(0);
		return false;
	}
	MIX(nodeTag(node));
	switch (nodeTag(node))
	{
		case T_Var:
			MIX(((Var *) node)->varattno);
			MIX(((Var *) node)->vartype);
			MIX(((Var *) node)->varcollid);
			break;
		case T_Const:
		{
			Const *c = (Const *) node;

			MIX(c->consttype);
			MIX(c->constcollid);
			MIX(c->constisnull);
			if (!c->constisnull)
				MIX(datum_image_hash(c->constvalue, c->constbyval,
									 c->constlen));
			break;
		}
		case T_FuncExpr:
			MIX(((FuncExpr *) node)->funcid);
			MIX(((FuncExpr *) node)->funcresulttype);
			MIX(((FuncExpr *) node)->inputcollid);
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			MIX(((OpExpr *) node)->opno);
			MIX(((OpExpr *) node)->inputcollid);
			break;
		case T_ScalarArrayOpExpr:
			MIX(((ScalarArrayOpExpr *) node)->opno);
			MIX(((ScalarArrayOpExpr *) node)->useOr);
			break;
		case T_BoolExpr:
			MIX(((BoolExpr *) node)->boolop);
			break;
		case T_RelabelType:
			MIX(((RelabelType *) node)->resulttype);
			MIX(((RelabelType *) node)->resultcollid);
			break;
		case T_CoerceViaIO:
			MIX(((CoerceViaIO *) node)->resulttype);
			break;
		case T_FieldSelect:
			MIX(((FieldSelect *) node)->fieldnum);
			break;
		case T_NullTest:
			MIX(((NullTest *) node)->nulltesttype);
			break;
		case T_SQLValueFunction:
			MIX(((SQLValueFunction *) node)->op);
			break;
		default:
			/* Other kinds: their tag and their children. */
			break;
	}
#undef MIX
	return expression_tree_walker(node, expr_hash_walker, context);
}

/*
 * The code of expression expr (of the scan's columns) in cx->exprs: -1 -
 * its slot, or 0 if there is no room.  Its text is made only if the
 * evidence table asks for it (aps_exprs_make_texts).
 */
static int16
expr_code(ApsQualContext *cx, Node *expr)
{
	ApsExprSet *set = cx->exprs;
	uint64		hash = 0;

	expr = aps_strip(expr);
	if (set == NULL)
		return 0;
	(void) expr_hash_walker(expr, &hash);
	for (int i = 0; i < set->ev.n; i++)
		if (set->ev.hash[i] == hash)
			return (int16) (-1 - i);
	if (set->ev.n >= APS_EV_MAX_EXPRS)
		return 0;
	set->ev.hash[set->ev.n] = hash;
	set->ev.text[set->ev.n] = NULL;
	set->expr[set->ev.n] = expr;
	set->varno[set->ev.n] = cx->scanrelid;
	return (int16) (-1 - set->ev.n++);
}

/*
 * The texts of set's expressions, as evidence.c keeps them: Vars of varno
 * 1, locations cleared.  One too long to keep (over half an entry's area)
 * gets none, and the items that use it are left out.
 */
void
aps_exprs_make_texts(ApsExprSet *set)
{
	for (int i = 0; i < set->ev.n; i++)
	{
		Node *copy;
		char *raw;

		if (set->ev.text[i] != NULL)
			continue;
		copy = copyObject(set->expr[i]);
		ChangeVarNodes(copy, set->varno[i], 1, 0);
		raw = nodeToString(copy);
		set->ev.text[i] = clear_locations(raw);
		if (strlen(set->ev.text[i]) >= APS_EV_EXPR_AREA / 2)
			set->ev.text[i] = "";
	}
}

static void
add_code(int16 *codes, int *n, int16 code)
{
	if (aps_code_in(codes, *n, code))
		return;
	if (*n < APS_EV_MAX_COLS)
		codes[(*n)++] = code;
}

bool
aps_code_in(const int16 *codes, int n, int16 code)
{
	for (int i = 0; i < n; i++)
		if (codes[i] == code)
			return true;
	return false;
}

static void
add_unindexable(ApsQualCols *qc, int16 code, Oid opno, Oid funcid, uint8 why)
{
	for (int i = 0; i < qc->nunidx; i++)
		if (qc->unidx[i] == code && qc->unidx_op[i] == opno &&
			qc->unidx_why[i] == why)
			return;
	if (qc->nunidx < APS_EV_MAX_COLS)
	{
		qc->unidx[qc->nunidx] = code;
		qc->unidx_op[qc->nunidx] = opno;
		qc->unidx_func[qc->nunidx] = funcid;
		qc->unidx_why[qc->nunidx] = why;
		qc->nunidx++;
	}
}

/*
 * Remember that column attnum is compared by opno (column on the left)
 * with the value of other, if other is a constant or a parameter whose
 * value is known.
 */
static void
note_const(ApsQualCols *qc, ApsQualContext *cx, int16 attnum, Oid opno,
		   Oid collid, Node *other)
{
	ApsQualConst *k;

	other = aps_strip(other);
	if (qc->nconsts >= APS_EV_MAX_COLS || other == NULL || !OidIsValid(opno))
		return;
	k = &qc->consts[qc->nconsts];
	if (IsA(other, Const))
	{
		Const *c = (Const *) other;

		if (c->constisnull)
			return;
		k->type = c->consttype;
		k->typlen = c->constlen;
		k->byval = c->constbyval;
		k->value = c->constvalue;
	}
	else if (IsA(other, Param) &&
			 ((Param *) other)->paramkind == PARAM_EXTERN &&
			 cx->params != NULL && cx->params->paramFetch == NULL)
	{
		Param			*p = (Param *) other;
		ParamExternData *prm;

		if (p->paramid < 1 || p->paramid > cx->params->numParams)
			return;
		prm = &cx->params->params[p->paramid - 1];
		if (prm->isnull || prm->ptype != p->paramtype)
			return;
		k->type = prm->ptype;
		get_typlenbyval(k->type, &k->typlen, &k->byval);
		k->value = prm->value;
	}
	else
		return;
	k->code = attnum;
	k->opno = opno;
	k->collid = collid;
	qc->nconsts++;
}

/* An operator qual: "side op other" with side a column or an expression. */
static void
classify_opexpr(OpExpr *op, ApsQualContext *cx, ApsQualCols *qc)
{
	Node *l = linitial(op->args);
	Node *r = lsecond(op->args);
	Node *col;
	Node *other;
	bool  left;
	int	  strat;
	int16 code;
	Oid	  funcid = InvalidOid;

	if (is_scan_column(l, cx->scanrelid) && !contain_var_clause(r))
		col = aps_strip(l), other = r, left = true;
	else if (is_scan_column(r, cx->scanrelid) && !contain_var_clause(l))
		col = aps_strip(r), other = l, left = false;
	else if (is_scan_expr(l, cx->scanrelid) && !contain_var_clause(r))
		col = aps_strip(l), other = r, left = true;
	else if (is_scan_expr(r, cx->scanrelid) && !contain_var_clause(l))
		col = aps_strip(r), other = l, left = false;
	else
		return;

	if (IsA(col, Var))
		code = ((Var *) col)->varattno;
	else
	{
		code = expr_code(cx, col);
		if (code == 0)
			return;
		/* An index holds immutable values only. */
		if (expr_mutable(cx->exprs->ev.hash[-1 - code], col, &funcid))
		{
			add_unindexable(qc, code, op->opno, funcid, APS_UNIDX_MUTABLE);
			return;
		}
	}
	strat = aps_op_strategy(op->opno);

	if (strat == BTEqualStrategyNumber)
	{
		if (contains_exec_param_walker(other, cx->initplan_params))
			add_code(qc->join, &qc->njoin, code);
		else
		{
			add_code(qc->eq, &qc->neq, code);
			if (code > 0)
				note_const(qc, cx, code,
						   left ? op->opno : get_commutator(op->opno),
						   op->inputcollid, other);
		}
	}
	else if (strat >= BTLessStrategyNumber && strat <= BTGreaterStrategyNumber)
		add_code(qc->range, &qc->nrange, code);
	else
	{
		uint8 why = APS_UNIDX_OPERATOR;

		if (is_like_op(op->opno))
		{
			Node  *pat = aps_strip(other);
			Const *k;
			char  *s;
			bool   leading;

			/* Only a constant pattern tells; a fixed prefix is fine. */
			if (!left || pat == NULL || !IsA(pat, Const) ||
				((Const *) pat)->constisnull)
				return;
			k = (Const *) pat;
			/* Text types only (a name is not a varlena). */
			if (k->consttype != TEXTOID && k->consttype != BPCHAROID &&
				k->consttype != VARCHAROID)
				return;
			s = TextDatumGetCString(k->constvalue);
			leading = s[0] == '%' || s[0] == '_';
			pfree(s);
			if (!leading)
				return;
			why = APS_UNIDX_LEADING_WILDCARD;
		}
		add_unindexable(qc, code, op->opno, InvalidOid, why);
	}
}

static void
classify_qual(Node *qual, ApsQualContext *cx, ApsQualCols *qc)
{
	qual = aps_strip(qual);
	if (qual == NULL)
		return;

	if (IsA(qual, BoolExpr) && ((BoolExpr *) qual)->boolop == AND_EXPR)
	{
		ListCell *lc;

		foreach (lc, ((BoolExpr *) qual)->args)
			classify_qual(lfirst(lc), cx, qc);
		return;
	}

	if (IsA(qual, OpExpr) && list_length(((OpExpr *) qual)->args) == 2)
	{
		classify_opexpr((OpExpr *) qual, cx, qc);
		return;
	}

	if (IsA(qual, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) qual;
		Node			  *side;
		int16			   code = 0;

		if (!sa->useOr || list_length(sa->args) != 2 ||
			contain_var_clause(lsecond(sa->args)) ||
			aps_op_strategy(sa->opno) != BTEqualStrategyNumber)
			return;
		side = linitial(sa->args);
		if (is_scan_column(side, cx->scanrelid))
			code = ((Var *) aps_strip(side))->varattno;
		else if (is_scan_expr(side, cx->scanrelid))
		{
			Oid funcid;

			code = expr_code(cx, side);
			if (code != 0 && expr_mutable(cx->exprs->ev.hash[-1 - code],
										  aps_strip(side), &funcid))
				code = 0;
		}
		if (code != 0)
			add_code(qc->eq, &qc->neq, code);
		return;
	}

	if (IsA(qual, NullTest))
	{
		NullTest *nt = (NullTest *) qual;

		if (nt->nulltesttype == IS_NULL && !nt->argisrow &&
			is_scan_column((Node *) nt->arg, cx->scanrelid))
			add_code(qc->eq, &qc->neq,
					 ((Var *) aps_strip((Node *) nt->arg))->varattno);
		return;
	}

	if (IsA(qual, Var) && is_scan_column(qual, cx->scanrelid) &&
		((Var *) qual)->vartype == BOOLOID)
		add_code(qc->eq, &qc->neq, ((Var *) qual)->varattno);
}

static int
cmp_int16(const void *a, const void *b)
{
	return (int) *(const int16 *) a - (int) *(const int16 *) b;
}

/*
 * Sort a scan's quals into equality, range and join columns and
 * expressions, and record the ones no btree can serve.  Each list is in
 * column-number order, expressions first.
 */
void
aps_classify_quals(List *quals, ApsQualContext *cx, ApsQualCols *qc)
{
	ListCell *lc;

	memset(qc, 0, sizeof(*qc));
	foreach (lc, quals)
		classify_qual(lfirst(lc), cx, qc);
	qsort(qc->eq, qc->neq, sizeof(int16), cmp_int16);
	qsort(qc->range, qc->nrange, sizeof(int16), cmp_int16);
	qsort(qc->join, qc->njoin, sizeof(int16), cmp_int16);
}

/* Keep k's value in ec if it is small enough; false if not. */
static bool
keep_value(ApsEvConst *ec, const ApsQualConst *k)
{
	if (k->byval)
	{
		memcpy(ec->value, &k->value, sizeof(Datum));
		ec->len = sizeof(Datum);
	}
	else if (k->typlen > 0 && k->typlen <= APS_EV_CONST_LEN)
	{
		memcpy(ec->value, DatumGetPointer(k->value), k->typlen);
		ec->len = (uint8) k->typlen;
	}
	else if (k->typlen == -1)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(k->value);
		Size			len;

		if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
			return false;
		len = VARSIZE_ANY_EXHDR(v);
		if (len > APS_EV_CONST_LEN)
			return false;
		memcpy(ec->value, VARDATA_ANY(v), len);
		ec->len = (uint8) len;
	}
	else
		return false;
	ec->byval = k->byval;
	ec->type = k->type;
	ec->opno = k->opno;
	ec->collid = k->collid;
	ec->varies = false;
	return true;
}

/*
 * The values the first APS_EV_MAX_CONSTS equality columns of it were
 * compared with on this run (those compared with one known, small value).
 */
void
aps_item_set_consts(ApsEvItem *it, const ApsQualCols *qc)
{
	int n = 0;

	for (int i = 0; i < APS_EV_MAX_CONSTS; i++)
		it->consts[i].col = -1;
	for (int i = 0; i < it->ncols && n < APS_EV_MAX_CONSTS; i++)
	{
		if (!(it->flags[i] & APS_COL_EQ) || it->attnum[i] <= 0)
			continue;
		for (int j = 0; j < qc->nconsts; j++)
		{
			if (qc->consts[j].code != it->attnum[i])
				continue;
			if (keep_value(&it->consts[n], &qc->consts[j]))
				it->consts[n++].col = (int8) i;
			break;
		}
	}
}
