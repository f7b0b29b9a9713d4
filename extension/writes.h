/*-------------------------------------------------------------------------
 *
 * writes.h
 *		Rows written per table, counted by the executor hooks.
 *
 * See writes.c for what is counted and the locking rules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_WRITES_H
#define APS_WRITES_H

#include "datatype/timestamp.h"
#include "executor/execdesc.h"
#include "nodes/parsenodes.h"

/* Rows written to one table since the last reset. */
typedef struct ApsTableWrites
{
	Oid	  dbid;
	Oid	  relid;
	int64 inserted;	 /* INSERT, MERGE's inserts, ON CONFLICT upserts */
	int64 updated;	 /* UPDATE, MERGE's updates */
	int64 deleted;	 /* DELETE, MERGE's deletes */
	int64 copied;	 /* COPY FROM */
	int64 truncated; /* TRUNCATEs naming it */
} ApsTableWrites;

extern void aps_writes_request(void);
extern void aps_writes_startup(void);
extern void aps_writes_count_execution(QueryDesc *qd, uint64 rows,
									   TimestampTz at);
extern void aps_writes_count_copy(CopyStmt *stmt, uint64 rows, TimestampTz at);
extern void aps_writes_count_truncate(TruncateStmt *stmt, TimestampTz at);
extern uint64	   aps_writes_in_minutes(Oid dbid, const Oid *relids, int n,
										 int64 first, int64 last);
extern TimestampTz aps_writes_since(void);
extern List		  *aps_writes_snapshot(Oid dbid, TimestampTz *since);
extern void		   aps_writes_reset(void);

#endif /* APS_WRITES_H */
