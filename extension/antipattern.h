/*-------------------------------------------------------------------------
 *
 * antipattern.h
 *		SELECT *, unbounded results, deep OFFSET paging, N+1 loops.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_ANTIPATTERN_H
#define APS_ANTIPATTERN_H

#include "executor/execdesc.h"

#include "normalize.h"

extern Node *aps_utility_query(Node *stmt);
extern bool	 aps_uses_select_star(const ApsTextSource *src);
extern bool	 aps_result_unbounded(QueryDesc *qd);
extern int64 aps_offset_skipped(QueryDesc *qd);
extern int	 aps_nplus1_count(QueryDesc *qd, uint64 queryid, uint64 rows);

#endif /* APS_ANTIPATTERN_H */
