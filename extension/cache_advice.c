/*-------------------------------------------------------------------------
 *
 * cache_advice.c
 *		apiscale.cache_advice: what to cache and for how long, measured.
 *
 * Built when the view is read, in the reader's backend, from the evidence
 * cache.c keeps per read statement and minute, over the last
 * apiscale.signal_window (its whole minutes and the current one):
 *
 * Hit rate at a TTL T.  A cache keyed by (statement, parameters) that
 * keeps each answer T seconds: in each window of T seconds, the first run
 * of a parameter set misses and the others hit, so the hit rate is 1 -
 * sets / runs within each window (the best case: the cache never evicts).
 * Where the windows start does not matter on average: a run whose set ran
 * r seconds before falls in the same window as that run with probability
 * 1 - r / T (0 when r >= T), so the expected hit rate is the sum of
 * max(0, 1 - r / T) over the runs, over the runs.  The runs' r are kept in
 * buckets whose edges are the TTLs the advice chooses from, with their
 * sums, so for each of those TTLs the sum is exact: count - sum / T per
 * bucket below T.  The first run of a set counts as a miss.
 *
 * Change interval.  The exposure (time between consecutive hashed results
 * of one set) over the changes seen: the mean time between changes of one
 * set's answer, as long as changes are rarer than the hashed runs.
 *
 * Category, in this order:
 *	not cacheable	FOR UPDATE/SHARE, a function whose result changes
 *					(volatile, or one that reads the clock), TABLESAMPLE,
 *					a temporary table, row-level security, or at least half
 *					its runs inside a transaction that had written
 *	real-time		one set's answer changed more often than once a minute
 *	static			no table it reads was written in the window and no
 *					answer changed
 *	user-specific	at least 10 sets, most of them seen once or twice
 *	semi-dynamic	the rest: its tables were written, its answers changed
 *					rarely or were not seen to change
 *
 * TTL: the top of the guide's range for the class (static a day,
 * semi-dynamic 15 minutes, user-specific 5 minutes, real-time 5 seconds),
 * shortened where a longer one would serve more than
 * apiscale.cache_staleness_pct of the answers stale: with changes at
 * random (Poisson) every C seconds on average and runs spread evenly over
 * an answer's life, the stale share at TTL T is 1 - (C / T)(1 - e^(-T/C)),
 * about T / 2C.  The TTL is the largest of aps_cache_ttls under that bound
 * (none under a second: do not cache).
 *
 * saved_pct: the hit rate at the TTL times the statement's share of the
 * execution time of every client statement in the window (the signals'
 * histograms, each duration at its bucket's middle: within 3.125%).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "guc.h"
#include "signals.h"
#include "sqlfuncs.h"
#include "store.h"
#include "writes.h"

PG_FUNCTION_INFO_V1(apiscale_cache_advice);

#define ADVICE_COLS 23

/* The hit rates the view shows besides the one at the TTL. */
static const int shown_ttls[] = {10, 60, 300, 900, 3600};

/* The top of the guide's range for each class, in seconds. */
#define TTL_STATIC		  86400
#define TTL_SEMI_DYNAMIC  900
#define TTL_USER_SPECIFIC 300
#define TTL_REAL_TIME	  5

/* A set's answer changing more often than this is real-time data. */
#define REAL_TIME_SECS 60.0

/* Sets a statement needs to be user-specific. */
#define USER_SPECIFIC_KEYS 10

/* The window being read. */
typedef struct Reading
{
	ReturnSetInfo *rsinfo;
	Oid			   reader;
	bool		   see_all;
	TimestampTz	   now;
	int64		   first, last;	  /* the window's minutes */
	TimestampTz	   start;		  /* of the first */
	TimestampTz	   cache_since;	  /* evidence reset */
	TimestampTz	   writes_since;  /* write counters reset */
	double		   total_ms;	  /* every client statement's time */
	double		   staleness_pct; /* apiscale.cache_staleness_pct */
} Reading;

/* One statement's minutes of the window, summed. */
typedef struct Sums
{
	uint64 calls, in_write_txn;
	double keyed, first, hashed, compared, changed; /* of the sample */
	double time_ms, exposure_s;
	double reuse_n[APS_CACHE_NREUSE];
	double reuse_s[APS_CACHE_NREUSE];
} Sums;

typedef enum Category
{
	CAT_NOT_CACHEABLE,
	CAT_REAL_TIME,
	CAT_STATIC,
	CAT_USER_SPECIFIC,
	CAT_SEMI_DYNAMIC
} Category;

static const char *const category_names[] = {
	"not cacheable", "real-time", "static", "user-specific", "semi-dynamic"};

static void
sum_minutes(const ApsCacheData *d, const Reading *r, Sums *s)
{
	memset(s, 0, sizeof(*s));
	for (int64 e = r->first; e <= r->last; e++)
	{
		const ApsCacheMinute *m = &d->minutes[e % APS_EPOCHS];

		if (m->epoch != e)
			continue;
		s->calls += m->calls;
		s->in_write_txn += m->in_write_txn;
		s->time_ms += m->time_ms;
		s->keyed += m->keyed;
		s->first += m->first;
		s->hashed += m->hashed;
		s->compared += m->compared;
		s->changed += m->changed;
		s->exposure_s += m->exposure_s;
		for (int b = 0; b < APS_CACHE_NREUSE; b++)
		{
			s->reuse_n[b] += m->reuse_n[b];
			s->reuse_s[b] += m->reuse_s[b];
		}
	}
}

/*
 * The expected hit rate at ttl seconds (see the top of the file): exact
 * for the buckets wholly below ttl, and for the bucket ttl falls in its
 * runs taken as spread evenly over the bucket.  NaN without keyed runs.
 */
static double
hit_rate(const Sums *s, double ttl)
{
	double hits = 0;
	double lo = 0;

	if (s->keyed < 0.5 || ttl <= 0)
		return get_float8_nan();
	for (int b = 0; b < APS_CACHE_NREUSE && lo < ttl; b++)
	{
		double hi = b < APS_CACHE_NTTLS ? aps_cache_ttls[b] : INFINITY;

		if (hi <= ttl)
			hits += s->reuse_n[b] - s->reuse_s[b] / ttl;
		else if (isfinite(hi))
			/* the integral of (1 - r / ttl) over [lo, ttl), per second */
			hits += s->reuse_n[b] * (ttl - lo) * (ttl - lo) /
					(2.0 * ttl * (hi - lo));
		else if (s->reuse_n[b] > 0.5)
		{
			/* the last bucket has no edge: its mean stands for its runs */
			double mean = s->reuse_s[b] / s->reuse_n[b];

			if (mean < ttl)
				hits += s->reuse_n[b] * (1.0 - mean / ttl);
		}
		lo = hi;
	}
	return Max(0.0, Min(1.0, hits / s->keyed));
}

/*
 * The largest TTL, as a multiple of the change interval, that serves at
 * most pct percent of answers stale: x with 1 - (1 - e^-x) / x = pct/100.
 */
static double
stale_bound(double pct)
{
	double lo = 0, hi = 1e6;
	double target = pct / 100.0;

	if (target <= 0)
		return 0;
	if (target >= 1)
		return INFINITY;
	for (int i = 0; i < 200; i++)
	{
		double x = (lo + hi) / 2;
		double stale = 1.0 - (1.0 - exp(-x)) / x;

		if (stale > target)
			hi = x;
		else
			lo = x;
	}
	return lo;
}

/* The largest TTL of aps_cache_ttls at most secs, or 0. */
static int
ttl_at_most(double secs)
{
	int ttl = 0;

	for (int i = 0; i < APS_CACHE_NTTLS; i++)
		if (aps_cache_ttls[i] <= secs)
			ttl = aps_cache_ttls[i];
	return ttl;
}

/* A TTL in words: "1 day", "15 min", "5 s". */
static char *
ttl_words(int secs)
{
	if (secs % 86400 == 0)
		return psprintf("%d day%s", secs / 86400, secs == 86400 ? "" : "s");
	if (secs % 3600 == 0)
		return psprintf("%d h", secs / 3600);
	if (secs % 60 == 0)
		return psprintf("%d min", secs / 60);
	return psprintf("%d s", secs);
}

/* A number of seconds, to two significant digits or so. */
static char *
secs_words(double secs)
{
	if (secs >= 3600)
		return psprintf("%.1f h", secs / 3600);
	if (secs >= 100)
		return psprintf("%.0f min", secs / 60);
	if (secs >= 10)
		return psprintf("%.0f s", secs);
	return psprintf("%.1f s", secs);
}

/* The parameter positions of a normalized text: "$1, $2", or NULL. */
static char *
positions(const char *query)
{
	StringInfoData buf;
	bool		   seen[256] = {false};
	int			   max = 0;

	for (const char *p = query; *p; p++)
	{
		int n = 0;

		if (*p != '$' || !isdigit((unsigned char) p[1]) ||
			(p > query &&
			 (isalnum((unsigned char) p[-1]) || p[-1] == '_' || p[-1] == '$')))
			continue;
		for (p++; isdigit((unsigned char) *p) && n < 1000; p++)
			n = n * 10 + (*p - '0');
		p--;
		if (n > 0 && n < 256)
		{
			seen[n] = true;
			max = Max(max, n);
		}
	}
	if (max == 0)
		return NULL;
	initStringInfo(&buf);
	for (int i = 1; i <= max; i++)
		if (seen[i])
			appendStringInfo(&buf, "%s$%d", buf.len > 0 ? ", " : "", i);
	return buf.data;
}

/* A relation's name for a sentence. */
static char *
rel_words(Oid relid)
{
	char *name = get_rel_name(relid);

	return name != NULL ? pstrdup(quote_identifier(name))
						: psprintf("%u", relid);
}

/* Why the statement's results cannot be cached, or NULL. */
static char *
not_cacheable(const ApsCacheProps *p, const Sums *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
#define REASON(...)                                                           \
	do                                                                        \
	{                                                                         \
		if (buf.len > 0)                                                      \
			appendStringInfoString(&buf, "; ");                               \
		appendStringInfo(&buf, __VA_ARGS__);                                  \
	} while (0)

	if (p->flags & APS_CACHE_LOCKS)
		REASON("FOR UPDATE/SHARE locks the rows it reads");
	if (p->flags & APS_CACHE_VOLATILE)
	{
		static const char *const svf_names[] = {
			[SVFOP_CURRENT_DATE] = "CURRENT_DATE",
			[SVFOP_CURRENT_TIME] = "CURRENT_TIME",
			[SVFOP_CURRENT_TIME_N] = "CURRENT_TIME",
			[SVFOP_CURRENT_TIMESTAMP] = "CURRENT_TIMESTAMP",
			[SVFOP_CURRENT_TIMESTAMP_N] = "CURRENT_TIMESTAMP",
			[SVFOP_LOCALTIME] = "LOCALTIME",
			[SVFOP_LOCALTIME_N] = "LOCALTIME",
			[SVFOP_LOCALTIMESTAMP] = "LOCALTIMESTAMP",
			[SVFOP_LOCALTIMESTAMP_N] = "LOCALTIMESTAMP"};

		if (p->sampling)
			REASON("TABLESAMPLE without REPEATABLE reads other rows each "
				   "time");
		else if (p->nextval)
			REASON("it takes a sequence's next value");
		else if (p->svf_op >= 0 && p->svf_op < lengthof(svf_names) &&
				 svf_names[p->svf_op] != NULL)
			REASON("%s reads the clock", svf_names[p->svf_op]);
		else
		{
			char *name = get_func_name(p->func);
			bool  clock =
				p->func == F_NOW || p->func == F_STATEMENT_TIMESTAMP ||
				p->func == F_TRANSACTION_TIMESTAMP ||
				p->func == F_AGE_TIMESTAMP || p->func == F_AGE_TIMESTAMPTZ;

			REASON("%s() %s", name ? name : "a function",
				   clock ? "reads the clock"
						 : "is volatile: its result may change at every call");
		}
	}
	if (p->flags & APS_CACHE_TEMP)
		REASON("it reads the temporary table %s", rel_words(p->rel));
	if (p->flags & APS_CACHE_RLS)
		REASON("row-level security applies to %s: its rows depend on the "
			   "user",
			   rel_words(p->rel));
	if (s->calls > 0 && s->in_write_txn * 2 >= s->calls)
		REASON("%.0f%% of its runs were inside a transaction that had "
			   "written, and saw its uncommitted rows",
			   100.0 * s->in_write_txn / s->calls);
#undef REASON
	return buf.len > 0 ? buf.data : NULL;
}

/* Datum of a double rounded to digits decimals, or NULL for NaN. */
static Datum
rounded(double v, int digits, bool *isnull)
{
	double scale = pow(10, digits);

	*isnull = isnan(v);
	return Float8GetDatum(*isnull ? 0 : round(v * scale) / scale);
}

/* One statement's row. */
static void
advice_row(const ApsCacheData *d, void *arg)
{
	Reading				*r = (Reading *) arg;
	const ApsCacheProps *p = &d->props;
	Datum				 values[ADVICE_COLS];
	bool				 nulls[ADVICE_COLS];
	Sums				 s;
	char				*query;
	bool				 visible;
	TimestampTz			 from;
	double				 covered_s, time_pct, change_s, writes_per_s;
	double				 est, saved;
	double				 share_sampled;
	uint64				 writes;
	int					 in_window = 0, few_runs = 0, ttl = 0, class_ttl = 0;
	int					 ntables = 0, i = 0;
	Datum				*tables;
	char				*reasons, *pos;
	Category			 cat;
	bool				 shortened = false;
	StringInfoData		 advice;

	sum_minutes(d, r, &s);
	if (s.calls == 0)
		return;
	query = aps_store_get_query(&d->owner);
	if (query == NULL)
		return; /* its entry was evicted: no text to show */
	visible = r->see_all || d->owner.userid == r->reader;

	from = Max(r->start, Max(d->since, r->cache_since));
	covered_s = Max(1.0, (double) (r->now - from) / USECS_PER_SEC);
	time_pct = 100.0 * s.time_ms / Max(r->total_ms, s.time_ms);
	change_s = s.changed > 0 ? s.exposure_s / s.changed : get_float8_nan();

	/* Sets seen in the window, and those seen at most twice. */
	for (int b = 0; b < APS_CACHE_KEY_BUCKETS; b++)
	{
		const ApsCacheKey *k = &d->keys[b];

		if (k->hash == 0 || k->last_seen < r->start)
			continue;
		in_window++;
		if (k->runs <= 2)
			few_runs++;
	}
	share_sampled =
		d->threshold == PG_UINT64_MAX
			? 1.0
			: ((double) d->threshold + 1.0) / 18446744073709551616.0;

	/* The tables' writes in the window. */
	writes = aps_writes_in_minutes(d->owner.dbid, p->tables, p->ntables,
								   r->first, r->last);
	writes_per_s =
		writes / Max(1.0, (double) (r->now - Max(r->start, r->writes_since)) /
							  USECS_PER_SEC);

	/* The category, in the order. */
	reasons = not_cacheable(p, &s);
	if (reasons != NULL)
		cat = CAT_NOT_CACHEABLE;
	else if (!isnan(change_s) && change_s < REAL_TIME_SECS)
		cat = CAT_REAL_TIME;
	else if (writes == 0 && s.changed == 0 &&
			 (p->flags & APS_CACHE_FOREIGN) == 0 && !p->more_tables)
		cat = CAT_STATIC;
	else if (in_window >= USER_SPECIFIC_KEYS && few_runs * 2 > in_window)
		cat = CAT_USER_SPECIFIC;
	else
		cat = CAT_SEMI_DYNAMIC;

	/* The TTL: the class's, shortened by the staleness budget. */
	switch (cat)
	{
		case CAT_NOT_CACHEABLE:
			break;
		case CAT_REAL_TIME:
			class_ttl = TTL_REAL_TIME;
			break;
		case CAT_STATIC:
			class_ttl = TTL_STATIC;
			break;
		case CAT_USER_SPECIFIC:
			class_ttl = TTL_USER_SPECIFIC;
			break;
		case CAT_SEMI_DYNAMIC:
			class_ttl = TTL_SEMI_DYNAMIC;
			break;
	}
	ttl = class_ttl;
	if (ttl > 0 && !isnan(change_s))
	{
		double bound = stale_bound(r->staleness_pct) * change_s;

		if (bound < ttl)
		{
			ttl = ttl_at_most(bound);
			shortened = true;
		}
	}
	est = ttl > 0 ? hit_rate(&s, ttl) : get_float8_nan();
	saved = ttl > 0 && !isnan(est) ? est * time_pct : 0;

	/* The advice, one sentence. */
	pos = positions(query);
	initStringInfo(&advice);
	if (ttl == 0 && (cat == CAT_REAL_TIME || cat == CAT_SEMI_DYNAMIC))
		appendStringInfo(&advice,
						 "Do not cache: the answer for one key changed every "
						 "%s, so even a 1 s TTL would serve more than %g%% of "
						 "answers stale.",
						 secs_words(change_s), r->staleness_pct);
	else
	{
		switch (cat)
		{
			case CAT_NOT_CACHEABLE:
				appendStringInfo(&advice, "Not cacheable: %s.", reasons);
				break;
			case CAT_REAL_TIME:
				appendStringInfo(
					&advice,
					"Real-time data: cache for at most %s keyed by %s, or "
					"not at all: the answer for one key changed every %s.",
					ttl_words(ttl), pos ? pos : "its text",
					secs_words(change_s));
				break;
			case CAT_STATIC:
				appendStringInfo(
					&advice,
					"Cache for %s keyed by %s: no table it reads was "
					"written in the window and no answer changed.",
					ttl_words(ttl), pos ? pos : "its text");
				break;
			case CAT_USER_SPECIFIC:
				appendStringInfo(
					&advice,
					"Per-user data: cache for %s keyed by %s, or "
					"invalidate on write: %.0f%% of its keys were "
					"seen once or twice.",
					ttl_words(ttl), pos ? pos : "its text",
					100.0 * few_runs / Max(in_window, 1));
				break;
			case CAT_SEMI_DYNAMIC:
				if (!isnan(change_s))
					appendStringInfo(
						&advice,
						"Cache for %s keyed by %s: its tables were "
						"written, and the answer for one key "
						"changed every %s.",
						ttl_words(ttl), pos ? pos : "its text",
						secs_words(change_s));
				else
					appendStringInfo(
						&advice,
						"Cache for %s keyed by %s: its tables were "
						"written, but %s.",
						ttl_words(ttl), pos ? pos : "its text",
						s.compared > 0 ? "no answer for one key was seen to "
										 "change"
									   : "no answer was compared yet "
										 "(apiscale.cache_sample_rate)");
				break;
		}
	}
	if (shortened && ttl > 0)
		appendStringInfo(&advice,
						 " Shortened from %s: a longer TTL would serve more "
						 "than %g%% of answers stale.",
						 ttl_words(class_ttl), r->staleness_pct);
	if (ttl > 0 && !isnan(est))
		appendStringInfo(
			&advice,
			" A cache would have answered %.0f%% of " UINT64_FORMAT
			" calls, %.1f%% of the database time.",
			100.0 * est, s.calls, saved);

	/* The tables shown: not the partitions of those shown. */
	tables = palloc(sizeof(Datum) * Max(p->ntables, 1));
	for (int t = 0; t < p->ntables; t++)
		if (!p->partition[t])
			tables[ntables++] = ObjectIdGetDatum(p->tables[t]);

	memset(nulls, 0, sizeof(nulls));
	values[i++] = Int64GetDatum((int64) d->owner.queryid);
	values[i++] = ObjectIdGetDatum(d->owner.userid);
	values[i++] = visible ? CStringGetTextDatum(query)
						  : CStringGetTextDatum(aps_no_privilege);
	values[i++] = Int64GetDatum((int64) s.calls);
	values[i] = rounded(s.calls / covered_s, 2, &nulls[i]);
	i++;
	values[i] = rounded(s.time_ms / s.calls, 3, &nulls[i]);
	i++;
	values[i] = rounded(time_pct, 2, &nulls[i]);
	i++;
	if (s.keyed > 0)
		values[i] = Int64GetDatum((int64) round(in_window / share_sampled));
	else
		nulls[i] = true;
	i++;
	values[i] = rounded(est, 3, &nulls[i]);
	i++;
	for (int t = 0; t < lengthof(shown_ttls); t++)
	{
		values[i] = rounded(hit_rate(&s, shown_ttls[t]), 3, &nulls[i]);
		i++;
	}
	values[i] = rounded(change_s, 2, &nulls[i]);
	i++;
	values[i++] = Int64GetDatum((int64) round(s.compared));
	values[i++] = PointerGetDatum(construct_array(
		tables, ntables, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT));
	values[i] = rounded(writes_per_s, 2, &nulls[i]);
	i++;
	values[i++] = CStringGetTextDatum(category_names[cat]);
	if (ttl > 0)
		values[i] = Int32GetDatum(ttl);
	else
		nulls[i] = true;
	i++;
	values[i] = rounded(saved, 2, &nulls[i]);
	i++;
	values[i++] =
		visible ? CStringGetTextDatum(psprintf("%s [key: %s]", query,
											   pos ? pos : "none, one answer"))
				: CStringGetTextDatum(aps_no_privilege);
	values[i++] = CStringGetTextDatum(advice.data);
	Assert(i == ADVICE_COLS);

	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, values,
						 nulls);
}

/*
 * apiscale.cache_advice_internal(): one row per read statement of the
 * current database that ran in the window.
 */
Datum
apiscale_cache_advice(PG_FUNCTION_ARGS)
{
	Reading r;

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	r.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (r.rsinfo->setDesc->natts != ADVICE_COLS)
		ereport(
			ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg(
				 "apiscale.cache_advice_internal returns %d columns, the function definition expects %d",
				 ADVICE_COLS, r.rsinfo->setDesc->natts),
			 errhint("Run ALTER EXTENSION apiscale UPDATE.")));
	r.reader = GetUserId();
	r.see_all = has_privs_of_role(r.reader, ROLE_PG_READ_ALL_STATS);
	r.now = GetCurrentTimestamp();
	r.last = aps_epoch_of(r.now);
	r.first = aps_window_first_epoch(r.last, aps_signal_window);
	r.start = aps_epoch_start(r.first);
	r.cache_since = aps_cache_since();
	r.writes_since = aps_writes_since();
	r.total_ms = aps_signals_time_ms(r.start);
	r.staleness_pct = aps_cache_staleness_pct;
	aps_cache_foreach(MyDatabaseId, advice_row, &r);
	return (Datum) 0;
}
