/*
 * timeouts.h
 *		idle_transaction_timeout, query_timeout, client_idle_timeout.
 */
#ifndef APS_TIMEOUTS_H
#define APS_TIMEOUTS_H

extern void timeouts_configure(void);
extern void timeouts_stop(void);

#endif /* APS_TIMEOUTS_H */
