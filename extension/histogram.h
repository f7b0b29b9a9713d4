/*-------------------------------------------------------------------------
 *
 * histogram.h
 *		Compact log-linear latency histogram.
 *
 * Durations are kept in whole microseconds.  Values below 16 us get one
 * bucket each; above that every power of two [2^k, 2^(k+1)) is cut into 16
 * equal sub-buckets, up to 2^32 us (about 71.6 minutes); anything longer
 * lands in the last bucket.  A percentile is reported as the middle of the
 * bucket that holds it, clamped to the observed [min, max], so its error is
 * at most half a sub-bucket: 1/32 = 3.125% of the true value (0.5 us below
 * 16 us).  464 buckets of 4 bytes = 1856 bytes per statement.
 *
 * When a bucket would pass 2^31, every bucket is halved (rounding up, so no
 * non-empty bucket becomes empty): proportions, hence percentiles, survive
 * and recent runs weigh a little more than ancient ones.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_HISTOGRAM_H
#define APS_HISTOGRAM_H

#define APS_HIST_SUB_BITS 4
#define APS_HIST_SUB	  (1 << APS_HIST_SUB_BITS) /* sub-buckets per octave */
#define APS_HIST_MAX_BIT  32 /* values >= 2^32 us are clamped */
#define APS_HIST_BUCKETS                                                      \
	(APS_HIST_SUB + (APS_HIST_MAX_BIT - APS_HIST_SUB_BITS) * APS_HIST_SUB)

typedef struct ApsHistogram
{
	uint32 counts[APS_HIST_BUCKETS];
} ApsHistogram;

extern int	  aps_hist_bucket(double ms);
extern void	  aps_hist_add(ApsHistogram *hist, double ms);
extern void	  aps_hist_add_at(ApsHistogram *hist, int idx);
extern double aps_hist_bucket_middle_us(int idx);
extern double aps_hist_bucket_upper_us(int idx);
extern double aps_hist_percentile(const ApsHistogram *hist, double fraction,
								  double min_ms, double max_ms);

#endif /* APS_HISTOGRAM_H */
