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

/*
 * mono_now() as first read in this event loop pass (0: not read yet).  The
 * relay path stamps a transaction three or four times (attach, detach,
 * pool_recycle on take and on release, the wait of a queued client); one
 * clock read per pass instead of one per stamp took 3.3 clock reads per
 * transaction down to 0.7 at 20 clients, and a tenth off the pooler's
 * user time (docs/benchmarks.md, fourth pass).  The price: every stamp of
 * a pass carries the time of its first one, so it may be as old as the
 * pass (tens of microseconds at 20 clients, a millisecond or two when a
 * pass serves hundreds of sockets, longer if a server connection's start
 * blocks on a name look-up).  For what is stamped that is no worse: a
 * message handled late in a pass was already there when the pass began,
 * so a wait or a transaction is measured from about when the pooler could
 * first have seen it.
 */
static double pass_clock = 0;

double
pass_now(void)
{
	if (pass_clock == 0)
		pass_clock = mono_now();
	return pass_clock;
}

void
pass_clock_reset(void)
{
	pass_clock = 0;
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
