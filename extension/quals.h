/*-------------------------------------------------------------------------
 *
 * quals.h
 *		What a scan's quals compare, sorted by the role an index column
 *		could play.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_QUALS_H
#define APS_QUALS_H

#include "nodes/bitmapset.h"
#include "nodes/params.h"
#include "nodes/primnodes.h"
#include "nodes/pg_list.h"

#include "evidence.h"

/* btree strategy of an operator: 0 none, 1-5 btree, 6 "<>" */
#define APS_STRAT_NONE 0
#define APS_STRAT_NE   6

/*
 * The expressions a walk met: their hashes and (once made) texts, which
 * evidence.c keeps, and where they are in the plan; a column code -1 - i
 * stands for the i-th.
 */
typedef struct ApsExprSet
{
	ApsEvExprs ev;
	Node	  *expr[APS_EV_MAX_EXPRS];	/* the plan's own tree */
	Index	   varno[APS_EV_MAX_EXPRS]; /* its scan's range table index */
} ApsExprSet;

/* A column compared for equality with one value, on this run. */
typedef struct ApsQualConst
{
	int16 code;	  /* column (attnum) */
	Oid	  type;	  /* the value's type */
	int16 typlen; /* and its length */
	bool  byval;
	Oid	  opno;	  /* the equality operator, column on the left */
	Oid	  collid; /* its input collation */
	Datum value;
} ApsQualConst;

/*
 * Columns (attnum > 0) and expressions (-1 - slot) a scan's quals compare,
 * by role.
 */
typedef struct ApsQualCols
{
	int	  neq; /* equality (=, IN, IS NULL, a boolean column) */
	int16 eq[APS_EV_MAX_COLS];
	int	  nrange; /* <, <=, >, >= */
	int16 range[APS_EV_MAX_COLS];
	int	  njoin; /* equality with an outer row (PARAM_EXEC) */
	int16 join[APS_EV_MAX_COLS];
	int	  nunidx; /* filters no btree can serve */
	int16 unidx[APS_EV_MAX_COLS];
	Oid	  unidx_op[APS_EV_MAX_COLS];
	Oid	  unidx_func[APS_EV_MAX_COLS]; /* APS_UNIDX_MUTABLE: the function */
	uint8 unidx_why[APS_EV_MAX_COLS];
	int	  nconsts;
	ApsQualConst consts[APS_EV_MAX_COLS];
} ApsQualCols;

/* What classifying needs to know about the scan and the run. */
typedef struct ApsQualContext
{
	Index		  scanrelid;	   /* the scan's range table index */
	Bitmapset	 *initplan_params; /* PARAM_EXEC set by init plans */
	ParamListInfo params;		   /* PARAM_EXTERN values, or NULL */
	ApsExprSet	 *exprs;		   /* where expressions go */
} ApsQualContext;

/* n without the binary-compatible casts around it. */
static inline Node *
aps_strip(Node *n)
{
	while (n != NULL && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	return n;
}

extern int	aps_op_strategy(Oid opno);
extern void aps_classify_quals(List *quals, ApsQualContext *cx,
							   ApsQualCols *qc);
extern bool aps_code_in(const int16 *codes, int n, int16 code);
extern void aps_item_set_consts(ApsEvItem *it, const ApsQualCols *qc);
extern void aps_exprs_make_texts(ApsExprSet *set);

#endif /* APS_QUALS_H */
