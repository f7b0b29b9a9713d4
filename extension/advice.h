/*-------------------------------------------------------------------------
 *
 * advice.h
 *		Candidate indexes of apiscale.index_advice, shared by advice.c (the
 *		pipeline from evidence to verdicts) and existing.c (what the
 *		catalogs say about a candidate: existing indexes, statistics, the
 *		text of its DDL).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_ADVICE_H
#define APS_ADVICE_H

#include "utils/relcache.h"

#include "evidence.h"
#include "hypo.h"

#define APS_REASON_WHERE 0x01
#define APS_REASON_JOIN	 0x02
#define APS_REASON_ORDER 0x04
#define APS_REASON_COVER 0x08 /* an index-only scan instead of heap fetches */

#define APS_MAX_QUERYIDS 64 /* distinct queries remembered per candidate */
#define APS_MAX_EXAMPLES 4	/* statements tried for the re-plan */

/* A column compared with one value by every statement of a candidate. */
typedef struct ApsCandConst
{
	int16	   attnum; /* the candidate table's column */
	ApsEvConst value;  /* value, operator, collation (col unused) */
} ApsCandConst;

typedef struct Candidate
{
	Oid	   relid;
	int	   ncols;					/* key and INCLUDE columns */
	int	   nkey;					/* key columns */
	int16  attnum[APS_EV_MAX_COLS]; /* 0: an expression, expr[i] */
	uint8  flags[APS_EV_MAX_COLS];
	Node  *expr[APS_EV_MAX_COLS]; /* Vars of varno 1 */
	bool   unindexable;
	bool   lossy;	/* a lossy bitmap: work_mem, not an index */
	Oid	   opno;	/* unindexable: the operator */
	Oid	   funcid;	/* unindexable: a function that is not immutable */
	uint8  why;		/* unindexable: ApsUnindexable */
	Oid	   indexid; /* index the scans used (residual, covering, lossy) */
	int	   reasons;
	int	   nqueries;
	uint64 queryids[APS_MAX_QUERYIDS];
	int64  runs;
	int64  scans;
	double rows_read;
	double rows_filtered;
	double lossy_pages;
	double exact_pages;
	/* values every statement compared an equality column with */
	int			 nconsts;
	ApsCandConst consts[APS_EV_MAX_CONSTS];
	/* a partial index: the variant of candidate partial_of */
	int	   partial_of; /* -1: not a partial variant */
	List  *pred;	   /* implicit-AND clauses, Vars of varno 1 */
	double pred_fraction;
	/* statements to re-plan, most rows filtered first */
	int			   nexamples;
	ApsEvSnapshot *examples[APS_MAX_EXAMPLES];
	double		   example_filtered[APS_MAX_EXAMPLES];
	bool		   merged; /* folded into another candidate */
	/* filled by the verdict pass */
	const char *verdict;
	char	   *detail;
	ApsReplan	rp;
	uint64		replanned_queryid; /* statement the re-plan used */
	bool		savings_known;	   /* calls of the re-planned statements */
	double		savings;		   /* cost they saved over their calls */
	double		write_cost;		   /* upkeep per written row */
	double		writes_per_s;	   /* of the table, -1 if not judged */
	double		maintenance_per_s;
	double		savings_per_s;
} Candidate;

/* existing.c */
extern char *aps_existing_index(Relation rel, const Candidate *c);
extern bool	 aps_value_fraction(Oid relid, const ApsCandConst *k,
								double *fraction);
extern Node *aps_const_clause(Oid relid, const ApsCandConst *k);
extern char *aps_column_text(const Candidate *c, int i);
extern char *aps_columns_list(const Candidate *c, int from, int to);
extern char *aps_expr_text(Oid relid, Node *expr);
extern char *aps_make_ddl(const Candidate *c);
extern bool	 aps_expr_valid(Node *expr);
extern void	 aps_describe(Relation rel, Candidate *c, bool generic,
						  bool generic_unusable);
extern char *aps_unindexable_detail(const Candidate *c);
extern char *aps_lossy_detail(const Candidate *c);

#endif /* APS_ADVICE_H */
