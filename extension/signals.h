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

/* The machine and the statements of the window, for apiscale.capacity. */
typedef struct ApsCapacityWindow
{
	int	   seconds;			/* apiscale.signal_window */
	double covered_s;		/* seconds the statement counts cover */
	uint64 statements;		/* clients' statements finished or failed */
	uint64 cpu_busy_ticks;	/* busy CPU ticks the samples measured */
	uint64 cpu_total_ticks; /* all CPU ticks they measured; 0: no data */
	uint64 cpu_statements;	/* statements of the seconds they measured */
	bool   has_memory;		/* memory_used_pct was measured */
	double memory_used_pct; /* mean used share of the machine's memory */
	bool   has_backends;	/* backends_max was sampled */
	int	   backends_max;	/* peak client backends of the samples */
} ApsCapacityWindow;

extern void				aps_signals_request(void);
extern void				aps_signals_startup(void);
extern void				aps_signals_register_worker(void);
extern PGDLLEXPORT void apiscale_signals_main(Datum arg);
extern void	  aps_signals_add(TimestampTz started, int hist_bucket, int64 hit,
							  int64 read);
extern void	  aps_signals_add_error(void);
extern void	  aps_signals_reset(void);
extern void	  aps_signals_read(ApsSignal		signals[APS_NSIGNALS],
							   ApsSignalWindow *window);
extern void	  aps_signals_capacity(ApsCapacityWindow *cw);
extern double aps_signals_time_ms(TimestampTz from);

#endif /* APS_SIGNALS_H */
