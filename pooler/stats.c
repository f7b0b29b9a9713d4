/*
 * stats.c
 *		Counters the pooler keeps per pool for /metrics.
 *
 * Both run on the hot path (a histogram observation per transaction, an
 * error count per error sent), so neither allocates: the histogram has
 * fixed edges, the error table a fixed number of classes.
 */
#include <string.h>

#include "stats.h"

const double hist_edges[HIST_EDGES] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25,	0.5,   1,	   2.5,	  5,	10,	   30,	 60,
};

/* One observation of seconds (negative counts as 0). */
void
stats_observe(Histogram *h, double seconds)
{
	int i = 0;

	if (seconds < 0)
		seconds = 0;
	/* most observations are short: a linear scan from the low end */
	while (i < HIST_EDGES && seconds > hist_edges[i])
		i++;
	h->count[i]++;
	h->sum += seconds;
}

/*
 * One error with this SQLSTATE sent to a client.  Classes are few in
 * practice; once ERROR_CLASSES - 1 different ones were seen, the rest
 * count in the last slot (shown as class "other").
 */
void
stats_count_error(ErrorClasses *e, const char *sqlstate)
{
	char cls[3] = {'X', 'X', '\0'};

	if (sqlstate && sqlstate[0] && sqlstate[1])
	{
		cls[0] = sqlstate[0];
		cls[1] = sqlstate[1];
	}
	for (int i = 0; i < ERROR_CLASSES - 1; i++)
	{
		if (e->cls[i][0] == '\0')
			memcpy(e->cls[i], cls, 3);
		if (memcmp(e->cls[i], cls, 2) == 0)
		{
			e->n[i]++;
			return;
		}
	}
	e->n[ERROR_CLASSES - 1]++;
}
