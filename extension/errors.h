/*-------------------------------------------------------------------------
 *
 * errors.h
 *		Failed statements, by SQLSTATE.
 *
 * See errors.c for what counts, where it is seen and what it costs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_ERRORS_H
#define APS_ERRORS_H

extern void aps_errors_request(void);
extern void aps_errors_startup(void);
extern void aps_errors_install(void);

extern void aps_errors_statement(const char *source, int location, int len);
extern void aps_errors_statement_done(void);
extern bool aps_errors_reach_client(void);
extern void aps_errors_reset(void);

#endif /* APS_ERRORS_H */
