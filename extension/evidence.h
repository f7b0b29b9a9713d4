/*-------------------------------------------------------------------------
 *
 * evidence.h
 *		Shared-memory table of index evidence, one entry per statement.
 *
 * The executor side (advisor.c) records what sampled runs of a statement
 * did without a fitting index: filters on sequential scans, join keys over
 * full scans, sorts over scans, index and bitmap scans that threw rows
 * away, index scans that fetched many heap rows for a few columns, lossy
 * bitmaps.  The read side (advice.c) turns the evidence into candidate
 * indexes and proves them with a hypothetical re-plan of the statement's
 * representative execution, kept here too.
 *
 * A column of an item is a table column (attnum > 0) or an expression of
 * the table's columns (attnum < 0: -1 - its slot among the entry's
 * expressions, kept as nodeToString text with Vars of varno 1, and known
 * by a hash of its tree, so that a run whose expressions the entry has
 * needs no text).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_EVIDENCE_H
#define APS_EVIDENCE_H

#include "nodes/pg_list.h"

#define APS_EV_MAX_COLS		8	 /* columns per evidence item */
#define APS_EV_MAX_ITEMS	8	 /* evidence items per statement */
#define APS_EV_MAX_EXPRS	4	 /* expressions per statement */
#define APS_EV_EXPR_AREA	2048 /* bytes of expression text per statement */
#define APS_EV_MAX_CONSTS	2  /* columns compared with one value, per item */
#define APS_EV_CONST_LEN	32 /* bytes of such a value kept */
#define APS_PARAMS_LEN		1024 /* bytes of parameter values kept */
#define APS_SEARCH_PATH_LEN 256	 /* bytes of search_path kept */

/* What an evidence item is about. */
typedef enum ApsEvKind
{
	APS_EV_WHERE = 0,		/* scan filter on columns without an index */
	APS_EV_JOIN = 1,		/* join key of a full or filtered inner scan */
	APS_EV_ORDER = 2,		/* sort over a scan (with its equality columns) */
	APS_EV_UNINDEXABLE = 3, /* filter no btree can serve (one column) */
	APS_EV_RESIDUAL = 4,	/* index or bitmap scan that threw rows away */
	APS_EV_COVERING = 5,	/* index scan that fetched heap rows for a few
							 * columns: keys, then APS_COL_INCLUDE ones */
	APS_EV_LOSSY = 6		/* bitmap heap scan with lossy pages */
} ApsEvKind;

/* Role and direction of one column of an item (bit flags). */
#define APS_COL_EQ			0x01 /* equality (=, IN, IS NULL) */
#define APS_COL_RANGE		0x02 /* <, <=, >, >= */
#define APS_COL_ORDER		0x04 /* sort key */
#define APS_COL_DESC		0x08 /* sort key, descending */
#define APS_COL_NULLS_FIRST 0x10 /* sort key, NULLS FIRST */
#define APS_COL_INCLUDE		0x20 /* non-key column (INCLUDE) */

/*
 * An equality column of an item compared with one value on the runs seen:
 * the value, if small enough, for a partial index WHERE col = value.
 */
typedef struct ApsEvConst
{
	int8  col;	  /* index in the item's attnum[]; -1: slot unused */
	bool  varies; /* runs compared the column with other values */
	bool  byval;  /* value[] holds a Datum (else the bytes of a varlena
				   * without header, or of a fixed-length type) */
	uint8 len;	  /* bytes in value[] */
	Oid	  type;	  /* type of the value */
	Oid	  opno;	  /* the equality operator, column on the left */
	Oid	  collid; /* its input collation */
	char  value[APS_EV_CONST_LEN];
} ApsEvConst;

/* One piece of evidence: a relation, its columns, and the work measured. */
typedef struct ApsEvItem
{
	Oid		   relid; /* base table (the root of a partition tree) */
	uint8	   kind;  /* ApsEvKind */
	uint8	   ncols; /* columns used in attnum[] and flags[] */
	int16	   attnum[APS_EV_MAX_COLS];
	uint8	   flags[APS_EV_MAX_COLS];
	Oid		   opno;	  /* APS_EV_UNINDEXABLE: the operator */
	Oid		   funcid;	  /* APS_EV_UNINDEXABLE: a non-immutable function */
	uint8	   why;		  /* APS_EV_UNINDEXABLE: ApsUnindexable */
	Oid		   indexid;	  /* _RESIDUAL, _COVERING, _LOSSY: index used */
	int64	   runs;	  /* sampled runs that added to it */
	int64	   scans;	  /* scans (loops) seen */
	double	   rows_read; /* rows the scans read (_COVERING: heap rows) */
	double	   rows_filtered; /* rows read and then thrown away (_COVERING:
						   * heap rows fetched; _LOSSY: removed by the
						   * recheck) */
	double	   lossy_pages;	  /* _LOSSY: lossy heap pages */
	double	   exact_pages;	  /* _LOSSY: exact heap pages */
	ApsEvConst consts[APS_EV_MAX_CONSTS];
} ApsEvItem;

/* Why a filter is not indexable by a btree. */
typedef enum ApsUnindexable
{
	APS_UNIDX_OPERATOR = 0, /* operator in no btree operator family */
	APS_UNIDX_LEADING_WILDCARD =
		1,				  /* LIKE / ILIKE pattern starts with % or _ */
	APS_UNIDX_MUTABLE = 2 /* expression calls a non-immutable function */
} ApsUnindexable;

/*
 * The statement a representative execution ran, for re-planning: its own
 * text (with literals), the parameter values as text, the search_path.
 */
typedef struct ApsSample
{
	Oid	 userid;		/* who ran it: re-planned as this user */
	int	 nparams;		/* -1: values unknown (re-plan generically) */
	int	 text_len;		/* -1: no text kept */
	bool too_long;		/* longer than apiscale.max_query_length */
	bool path_too_long; /* search_path too long to keep */
	char search_path[APS_SEARCH_PATH_LEN];
	/* settings that decide how literals read */
	char datestyle[32];
	char intervalstyle[32];
	char timezone[64];
	char std_strings[4];
	/* nparams times: Oid type, int32 len (-1 = NULL), len bytes + NUL */
	char  params[APS_PARAMS_LEN];
	int	  params_len;
	char *text; /* points into the entry (or a palloc'd copy) */
} ApsSample;

/*
 * The expressions one run's items refer to (a column -1 - i is the i-th):
 * the hash of each tree, and its text where the caller made it.
 */
typedef struct ApsEvExprs
{
	int	   n;
	uint64 hash[APS_EV_MAX_EXPRS];
	char  *text[APS_EV_MAX_EXPRS]; /* NULL until made */
} ApsEvExprs;

/* What aps_evidence_record did. */
typedef enum ApsEvRecorded
{
	APS_EV_RECORDED,	 /* added (or dropped: no room) */
	APS_EV_WANTS_SAMPLE, /* not yet: call again with this run's sample */
	APS_EV_WANTS_TEXTS	 /* not yet: call again with the texts made */
} ApsEvRecorded;

/* A statement's evidence as copied out for readers. */
typedef struct ApsEvSnapshot
{
	Oid		  userid;
	Oid		  dbid;
	uint64	  queryid;
	int		  nitems;
	ApsEvItem items[APS_EV_MAX_ITEMS];
	ApsSample sample; /* text is palloc'd */
	int		  nexprs;
	char	 *exprs[APS_EV_MAX_EXPRS]; /* palloc'd nodeToString texts */
} ApsEvSnapshot;

extern void			 aps_evidence_request(void);
extern void			 aps_evidence_startup(void);
extern ApsEvRecorded aps_evidence_record(Oid userid, Oid dbid, uint64 queryid,
										 const ApsEvItem *items, int nitems,
										 const ApsEvExprs *exprs, double waste,
										 bool			  params_known,
										 const ApsSample *sample);
extern List			*aps_evidence_snapshot(Oid dbid);
extern void			 aps_evidence_reset(void);
extern uint32		 aps_evidence_generation(void);

#endif /* APS_EVIDENCE_H */
