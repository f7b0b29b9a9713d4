/*-------------------------------------------------------------------------
 *
 * histogram.c
 *		Log-linear latency histogram: bucket mapping and percentiles.
 *
 * See histogram.h for the layout and the error bound.  These functions are
 * pure: the caller owns the locking (store.c holds the entry's spinlock).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "port/pg_bitutils.h"
#include "utils/float.h"

#include "histogram.h"

#define APS_HIST_HALVE_AT ((uint32) 1 << 31)

/*
 * Map a duration in milliseconds to its bucket index.
 */
int
aps_hist_bucket(double ms)
{
	uint64 us;
	int	   bit;

	if (!(ms > 0.0)) /* also catches NaN */
		return 0;
	if (ms * 1000.0 >= (double) ((uint64) 1 << APS_HIST_MAX_BIT))
		return APS_HIST_BUCKETS - 1;

	us = (uint64) (ms * 1000.0);
	if (us < APS_HIST_SUB)
		return (int) us;

	bit = pg_leftmost_one_pos64(us); /* APS_HIST_SUB_BITS .. MAX_BIT-1 */
	return APS_HIST_SUB + (bit - APS_HIST_SUB_BITS) * APS_HIST_SUB +
		   (int) ((us >> (bit - APS_HIST_SUB_BITS)) & (APS_HIST_SUB - 1));
}

/*
 * Middle of a bucket, in microseconds.
 */
double
aps_hist_bucket_middle_us(int idx)
{
	int	   octave;
	int	   sub;
	double width;

	if (idx < APS_HIST_SUB)
		return idx + 0.5;

	octave = (idx - APS_HIST_SUB) / APS_HIST_SUB + APS_HIST_SUB_BITS;
	sub = (idx - APS_HIST_SUB) % APS_HIST_SUB;
	width = ldexp(1.0, octave - APS_HIST_SUB_BITS);
	return (APS_HIST_SUB + sub) * width + width / 2.0;
}

/*
 * Upper bound of a bucket, in microseconds: every duration it holds is
 * shorter.  The last bucket holds everything longer too: infinity.
 */
double
aps_hist_bucket_upper_us(int idx)
{
	int	   octave;
	int	   sub;
	double width;

	if (idx >= APS_HIST_BUCKETS - 1)
		return get_float8_infinity();
	if (idx < APS_HIST_SUB)
		return idx + 1;

	octave = (idx - APS_HIST_SUB) / APS_HIST_SUB + APS_HIST_SUB_BITS;
	sub = (idx - APS_HIST_SUB) % APS_HIST_SUB;
	width = ldexp(1.0, octave - APS_HIST_SUB_BITS);
	return (APS_HIST_SUB + sub + 1) * width;
}

/*
 * Count one duration.  Halves the whole histogram first when the target
 * bucket is about to overflow.
 */
void
aps_hist_add(ApsHistogram *hist, double ms)
{
	aps_hist_add_at(hist, aps_hist_bucket(ms));
}

/*
 * Count one duration in bucket idx (aps_hist_bucket's), halving every
 * bucket first if it would pass 2^31.
 */
void
aps_hist_add_at(ApsHistogram *hist, int idx)
{
	if (unlikely(hist->counts[idx] >= APS_HIST_HALVE_AT))
	{
		for (int i = 0; i < APS_HIST_BUCKETS; i++)
			hist->counts[i] = (hist->counts[i] + 1) / 2;
	}
	hist->counts[idx]++;
}

/*
 * The value at the given fraction (0..1] by the nearest-rank definition
 * (the same one percentile_disc uses), in milliseconds, clamped to the
 * observed [min_ms, max_ms].  Returns NaN for an empty histogram.
 */
double
aps_hist_percentile(const ApsHistogram *hist, double fraction, double min_ms,
					double max_ms)
{
	uint64 total = 0;
	uint64 rank;
	uint64 seen = 0;

	for (int i = 0; i < APS_HIST_BUCKETS; i++)
		total += hist->counts[i];
	if (total == 0)
		return get_float8_nan();

	rank = (uint64) ceil(fraction * (double) total);
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;

	for (int i = 0; i < APS_HIST_BUCKETS; i++)
	{
		seen += hist->counts[i];
		if (seen >= rank)
		{
			double ms = aps_hist_bucket_middle_us(i) / 1000.0;

			if (i == APS_HIST_BUCKETS - 1 || ms > max_ms)
				ms = max_ms;
			if (ms < min_ms)
				ms = min_ms;
			return ms;
		}
	}
	return max_ms; /* not reached */
}
