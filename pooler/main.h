/*
 * main.h
 *		Start-up's reload and shutdown, for main.c's own use; the layers
 *		reach them through process.h.
 */
#ifndef APS_MAIN_H
#define APS_MAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "process.h"

extern bool pooler_reload(char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void pooler_shutdown(bool immediate);

#endif /* APS_MAIN_H */
