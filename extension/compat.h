/*-------------------------------------------------------------------------
 *
 * compat.h
 *		The one place where apiscale deals with PostgreSQL version
 *		differences.
 *
 * apiscale is built and tested against PostgreSQL 15.  Everything that is
 * known to differ between 13 and 17 is funnelled through the macros below so
 * that the rest of the code is written once, against the 15 API, and never
 * needs an #if inside a parameter list.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_COMPAT_H
#define APS_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "apiscale needs PostgreSQL 15 or later (shmem_request_hook)"
#endif

/* Parallel-safe random number in [0, 1). */
#include "common/pg_prng.h"
#define aps_random_fraction() pg_prng_double(&pg_global_prng_state)

/* Query jumbling moved from utils/ to nodes/ in 16. */
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

/* ExplainState lives in its own header from 18 on. */
#if PG_VERSION_NUM >= 180000
#include "commands/explain_state.h"
#include "commands/explain_format.h"
#endif
#include "commands/explain.h"

/*
 * The columns a statement reads from a range table entry: in the entry up
 * to 15, in its RTEPermissionInfo from 16 on.
 */
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#define aps_rte_selected_cols(pstmt, rte)                                     \
	((rte)->perminfoindex > 0                                                 \
		 ? getRTEPermissionInfo((pstmt)->permInfos, (rte))->selectedCols      \
		 : NULL)
#else
#define aps_rte_selected_cols(pstmt, rte) ((rte)->selectedCols)
#endif

#endif /* APS_COMPAT_H */
