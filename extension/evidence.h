/*-------------------------------------------------------------------------
 *
 * evidence.h
 *		Shared-memory table of index evidence, one entry per statement.
 *
 * The executor side (advisor.c) records what sampled runs of a statement
 * did without an index: filters on sequential scans, join keys over full
 * scans, sorts over scans.  The read side (advice.c) turns the evidence into
 * candidate indexes and proves them with a hypothetical re-plan of the
 * statement's representative execution, kept here too.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_EVIDENCE_H
#define APS_EVIDENCE_H

#include "nodes/pg_list.h"

#define APS_EV_MAX_COLS		8	 /* columns per evidence item */
#define APS_EV_MAX_ITEMS	8	 /* evidence items per statement */
#define APS_PARAMS_LEN		1024 /* bytes of parameter values kept */
#define APS_SEARCH_PATH_LEN 256	 /* bytes of search_path kept */

/* What an evidence item is about. */
typedef enum ApsEvKind
{
	APS_EV_WHERE = 0,	   /* scan filter on columns without an index */
	APS_EV_JOIN = 1,	   /* join key of a full or filtered inner scan */
	APS_EV_ORDER = 2,	   /* sort over a scan (with its equality columns) */
	APS_EV_UNINDEXABLE = 3 /* filter no btree can serve (one column) */
} ApsEvKind;

/* Role and direction of one column of an item (bit flags). */
#define APS_COL_EQ			0x01 /* equality (=, IN, IS NULL) */
#define APS_COL_RANGE		0x02 /* <, <=, >, >= */
#define APS_COL_ORDER		0x04 /* sort key */
#define APS_COL_DESC		0x08 /* sort key, descending */
#define APS_COL_NULLS_FIRST 0x10 /* sort key, NULLS FIRST */

/* One piece of evidence: a relation, its columns, and the work measured. */
typedef struct ApsEvItem
{
	Oid	   relid; /* base table (the root of a partition tree) */
	uint8  kind;  /* ApsEvKind */
	uint8  ncols; /* columns used in attnum[] and flags[] */
	int16  attnum[APS_EV_MAX_COLS];
	uint8  flags[APS_EV_MAX_COLS];
	Oid	   opno;		  /* APS_EV_UNINDEXABLE: the operator */
	uint8  why;			  /* APS_EV_UNINDEXABLE: ApsUnindexable */
	int64  scans;		  /* scans (loops) seen */
	double rows_read;	  /* rows the scans read */
	double rows_filtered; /* rows read and then thrown away */
} ApsEvItem;

/* Why a filter is not indexable by a btree. */
typedef enum ApsUnindexable
{
	APS_UNIDX_OPERATOR = 0, /* operator in no btree operator family */
	APS_UNIDX_LEADING_WILDCARD =
		1 /* LIKE / ILIKE pattern starts with % or _ */
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

/* A statement's evidence as copied out for readers. */
typedef struct ApsEvSnapshot
{
	Oid		  userid;
	Oid		  dbid;
	uint64	  queryid;
	int		  nitems;
	ApsEvItem items[APS_EV_MAX_ITEMS];
	ApsSample sample; /* text is palloc'd */
} ApsEvSnapshot;

extern void	 aps_evidence_request(void);
extern void	 aps_evidence_startup(void);
extern bool	 aps_evidence_wants_sample(Oid userid, Oid dbid, uint64 queryid,
									   double waste, bool params_known);
extern void	 aps_evidence_record(Oid userid, Oid dbid, uint64 queryid,
								 const ApsEvItem *items, int nitems,
								 double waste, const ApsSample *sample);
extern List *aps_evidence_snapshot(Oid dbid);
extern void	 aps_evidence_reset(void);

#endif /* APS_EVIDENCE_H */
