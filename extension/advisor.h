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

/* advisor.c: the executor side */
extern bool aps_advisor_plan_wants(PlannedStmt *pstmt);
extern void aps_advisor_collect(QueryDesc *qd, const char *source,
								int location, int len);
extern bool aps_plan_tree_walker(Plan *plan, bool (*walker)(Plan *, void *),
								 void *context);

/* hypo.c: hypothetical indexes and re-planning */
extern void aps_hypo_install(void);

#endif /* APS_ADVISOR_H */
