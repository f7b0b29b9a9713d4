/*
 * main.h
 *		Process-wide state: the event loop, the configuration, the clock.
 */
#ifndef APS_MAIN_H
#define APS_MAIN_H

#include <stdbool.h>

#include "config.h"

struct event_base;

extern Config			  cf; /* the configuration in force */
extern struct event_base *ev_base;
extern bool	  shutting_down;  /* SIGTERM / SHUTDOWN: no new transactions */
extern double pooler_started; /* wall-clock seconds at start */

extern double mono_now(void);
extern bool	  pooler_reload(char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void pooler_shutdown(bool immediate);
extern void pooler_check_shutdown(void);

#endif /* APS_MAIN_H */
