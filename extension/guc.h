/*-------------------------------------------------------------------------
 *
 * guc.h
 *		apiscale's configuration parameters (all under "apiscale.").
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_GUC_H
#define APS_GUC_H

/* Values of apiscale.track */
typedef enum ApsTrackLevel
{
	APS_TRACK_TOP, /* only statements issued by the client */
	APS_TRACK_ALL  /* also statements run inside functions */
} ApsTrackLevel;

extern bool	  aps_enabled;
extern int	  aps_max_queries;
extern int	  aps_max_query_length;
extern int	  aps_max_plans;
extern int	  aps_slow_query_ms;
extern bool	  aps_capture_plans;
extern bool	  aps_plan_timing;
extern int	  aps_track;
extern double aps_sample_rate;
extern bool	  aps_index_advisor;
extern int	  aps_min_table_rows;
extern double aps_min_improvement_pct;
extern bool	  aps_capture_parameters;
extern int	  aps_max_advice_queries;
extern int	  aps_unbounded_rows;
extern int	  aps_n_plus_one_calls;
extern int	  aps_signal_window;
extern double aps_warn_p95_ms;
extern double aps_warn_error_rate_pct;
extern double aps_warn_connection_pct;
extern double aps_warn_pool_pct;
extern double aps_warn_cache_hit_pct;
extern double aps_warn_cpu_pct;
extern double aps_warn_memory_pct;
extern int	  aps_metrics_top_queries;
extern int	  aps_max_cache_queries;
extern double aps_cache_sample_rate;
extern double aps_cache_staleness_pct;

extern void aps_define_gucs(void);

#endif /* APS_GUC_H */
