/*
 * process.h
 *		Process-wide state: the configuration in force, the event loop, the
 *		clock and the shutdown state.  The ground floor every layer may
 *		read; it includes no layer above it.
 */
#ifndef APS_PROCESS_H
#define APS_PROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct event_base;

extern Config			  cf; /* the configuration in force */
extern struct event_base *ev_base;
extern bool	  shutting_down;  /* SIGTERM / SHUTDOWN: no new transactions */
extern double pooler_started; /* wall-clock seconds at start */

extern double mono_now(void);

/*
 * The clock as of this event loop pass, for the stamps of the relay path
 * (see process.c); main.c calls pass_clock_reset between passes.
 */
extern double pass_now(void);
extern void	  pass_clock_reset(void);

/*
 * What start-up (main.c) does on request of a layer that may not call up
 * to it: reload the configuration, shut down, and tell whether a drain is
 * over (no client left).
 */
typedef struct ProcessControl
{
	bool (*reload)(char *err, size_t errlen);
	void (*shutdown)(bool immediate);
	bool (*drained)(void);
} ProcessControl;

extern void process_set_control(const ProcessControl *control);
extern bool process_reload(char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void process_shutdown(bool immediate);
/* While shutting down: end the event loop once the drain is over. */
extern void pooler_check_shutdown(void);

#endif /* APS_PROCESS_H */
