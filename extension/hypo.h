/*-------------------------------------------------------------------------
 *
 * hypo.h
 *		Hypothetical btree indexes and the re-plan that proves them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_HYPO_H
#define APS_HYPO_H

#include "utils/relcache.h"

#include "evidence.h"

#define APS_HYPO_MAX_COLS APS_EV_MAX_COLS

/*
 * The OID the hypothetical index goes by in plans.  It is never looked up:
 * the index only lives in the planner's IndexOptInfo list while a statement
 * is re-planned.
 */
#define APS_HYPO_INDEX_OID ((Oid) 4294967040U)

/*
 * A candidate btree index: nkey key columns, then INCLUDE columns.  A
 * column is a table column, or (attnum 0) the next expression of exprs.
 * Expressions and the predicate have Vars of varno 1 and the table's
 * attnos.
 */
typedef struct ApsHypoIndex
{
	Oid	   relid; /* table (or partitioned table) */
	int	   ncols; /* key and included columns */
	int	   nkey;  /* key columns */
	int16  attnum[APS_HYPO_MAX_COLS];
	bool   desc[APS_HYPO_MAX_COLS];
	bool   nulls_first[APS_HYPO_MAX_COLS];
	List  *exprs;		  /* expressions of the attnum 0 columns */
	List  *pred;		  /* partial index: implicit-AND clauses, or NIL */
	double pred_fraction; /* share of the table's rows pred keeps */
} ApsHypoIndex;

/* What a re-plan found. */
typedef struct ApsReplan
{
	bool   ok;				/* both plans made */
	double cost_before;		/* total cost without the index */
	double cost_after;		/* total cost with it */
	bool   uses_index;		/* the plan with it scans it */
	bool   uses_index_only; /* ... with an index-only scan */
	char  *error;			/* why not ok */
} ApsReplan;

extern bool aps_replanning;

extern void aps_replan(const char *text, const ApsSample *sample, bool generic,
					   const ApsHypoIndex *hypo, ApsReplan *out);
extern double aps_hypo_write_cost(Relation rel, const ApsHypoIndex *hypo);

#endif /* APS_HYPO_H */
