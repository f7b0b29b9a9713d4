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

extern void aps_signals_request(void);
extern void aps_signals_startup(void);
extern void aps_signals_register_worker(void);
extern void aps_signals_add(TimestampTz started, double ms, int64 hit,
							int64 read);
extern void aps_signals_add_error(void);
extern void aps_signals_reset(void);

#endif /* APS_SIGNALS_H */
