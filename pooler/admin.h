/*
 * admin.h
 *		The admin console: the virtual database "apiscale".
 */
#ifndef APS_ADMIN_H
#define APS_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

struct Client;

extern void admin_welcome(struct Client *c);
extern bool admin_handle(struct Client *c, char type, uint32_t len);

#endif /* APS_ADMIN_H */
