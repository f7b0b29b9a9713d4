/*-------------------------------------------------------------------------
 *
 * advisor.h
 *		Index evidence from finished plans, and the index advice built
 *		from it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_ADVISOR_H
#define APS_ADVISOR_H

#include "executor/execdesc.h"
#include "nodes/plannodes.h"

/* What a sampled run does for the advisor (aps_advisor_plan_wants). */
#define APS_ADVISE_COUNT 0x01 /* count rows per node, walk at the end */
#define APS_ADVISE_LOOK	 0x02 /* walk at the end, without counts */

/* advisor.c: the executor side */
extern int	aps_advisor_plan_wants(PlannedStmt *pstmt);
extern void aps_advisor_collect(QueryDesc *qd, const char *source,
								int location, int len);
extern bool aps_plan_tree_walker(Plan *plan, bool (*walker)(Plan *, void *),
								 void *context);

/* hypo.c: hypothetical indexes and re-planning */
extern void aps_hypo_install(void);

#endif /* APS_ADVISOR_H */
