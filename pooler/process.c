/*
 * process.c
 *		Process-wide state: the configuration in force, the event loop, the
 *		clock and the shutdown state.
 *
 * Every layer reads these; none of them belongs to a layer.  Keeping them
 * here rather than in main.c lets the layers read top-down (admin and http
 * over client over relay and pool over server over stream and protocol)
 * with main.c above them all, doing start-up only.  What only start-up can
 * do (reload, shut down, know that the clients are gone) is reached through
 * the ProcessControl main.c gives at start: a lower layer asks through it,
 * it does not call up.
 */
#include <stdio.h>
#include <time.h>

#include <event2/event.h>

#include "process.h"

Config			   cf;
struct event_base *ev_base = NULL;
bool			   shutting_down = false;
double			   pooler_started = 0;

static ProcessControl control;

/* Seconds on a clock that only goes forward. */
double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
process_set_control(const ProcessControl *c)
{
	control = *c;
}

bool
process_reload(char *err, size_t errlen)
{
	if (control.reload == NULL)
	{
		snprintf(err, errlen, "internal error: no reload at this point");
		return false;
	}
	return control.reload(err, errlen);
}

void
process_shutdown(bool immediate)
{
	if (control.shutdown)
		control.shutdown(immediate);
}

/* Exit once nobody is left, when shutting down. */
void
pooler_check_shutdown(void)
{
	if (shutting_down && control.drained && control.drained() && ev_base)
		event_base_loopexit(ev_base, NULL);
}
