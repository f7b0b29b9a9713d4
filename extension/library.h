/*-------------------------------------------------------------------------
 *
 * library.h
 *		Which file this copy of apiscale was loaded from, and which copy
 *		was preloaded.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_LIBRARY_H
#define APS_LIBRARY_H

#include "postmaster/bgworker.h"

/* The preloaded copy, as it announces itself to other copies. */
typedef struct ApsLibrary
{
	char			   path[MAXPGPATH]; /* the file it was loaded from */
	bgworker_main_type signals_main;	/* its signals worker's entry */
} ApsLibrary;

extern const char		*aps_library_path(void);
extern void				 aps_library_publish(bgworker_main_type signals_main);
extern const ApsLibrary *aps_library_preloaded(void);

#endif /* APS_LIBRARY_H */
