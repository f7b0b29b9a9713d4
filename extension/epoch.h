/*-------------------------------------------------------------------------
 *
 * epoch.h
 *		Minutes of the wall clock, for counters kept per minute over the
 *		last hour (the cache advice, and the writes per table it weighs).
 *
 * An epoch is one minute of the wall clock (epoch e holds the times from
 * e * 60 s to (e + 1) * 60 s since 2000-01-01).  A ring of APS_EPOCHS
 * counters, indexed by e % APS_EPOCHS, holds the current minute and the
 * 60 before it.  A window of apiscale.signal_window seconds reads the
 * current minute and enough whole minutes before it, so it covers up to a
 * minute more than the setting (at least the current and the previous
 * minute).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_EPOCH_H
#define APS_EPOCH_H

#include "datatype/timestamp.h"

#define APS_EPOCH_SECS 60
#define APS_EPOCHS	   61 /* the current minute and a whole hour */

static inline int64
aps_epoch_of(TimestampTz ts)
{
	return ts / ((int64) APS_EPOCH_SECS * USECS_PER_SEC);
}

static inline TimestampTz
aps_epoch_start(int64 epoch)
{
	return epoch * APS_EPOCH_SECS * USECS_PER_SEC;
}

/* The first epoch of a window of seconds that ends now (in epoch now). */
static inline int64
aps_window_first_epoch(int64 now, int seconds)
{
	int whole = (seconds + APS_EPOCH_SECS - 1) / APS_EPOCH_SECS;

	return now - Min(whole, APS_EPOCHS - 1);
}

#endif /* APS_EPOCH_H */
