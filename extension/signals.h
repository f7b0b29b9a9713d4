/*-------------------------------------------------------------------------
 *
 * signals.h
 *		Scaling signals over a recent window, and pool reports.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_SIGNALS_H
#define APS_SIGNALS_H

#include "datatype/timestamp.h"

#include "histogram.h"

#define APS_NSIGNALS 7

/* One signal as read over the window, in the unit its name says. */
typedef struct ApsSignal
{
	const char *name;		  /* e.g. "p95_response_time_ms" */
	const char *action;		  /* what to do when it warns */
	double		value;		  /* meaningless unless has_data */
	double		threshold;	  /* the apiscale.warn_* setting */
	bool		above_is_bad; /* warns above the threshold, else below */
	bool		has_data;	  /* false: "no data" */
	bool		warning;	  /* has_data and past the threshold */
} ApsSignal;

/* The statements of the window, for apiscale.metrics(). */
typedef struct ApsSignalWindow
{
	int			 seconds;	 /* apiscale.signal_window */
	uint64		 statements; /* finished or failed */
	uint64		 errors;	 /* failed */
	ApsHistogram hist;		 /* durations of the finished ones */
} ApsSignalWindow;

extern void				aps_signals_request(void);
extern void				aps_signals_startup(void);
extern void				aps_signals_register_worker(void);
extern PGDLLEXPORT void apiscale_signals_main(Datum arg);
extern void aps_signals_add(TimestampTz started, double ms, int64 hit,
							int64 read);
extern void aps_signals_add_error(void);
extern void aps_signals_reset(void);
extern void aps_signals_read(ApsSignal		  signals[APS_NSIGNALS],
							 ApsSignalWindow *window);

#endif /* APS_SIGNALS_H */
