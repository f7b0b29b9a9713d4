/*
 * relay.h
 *		Passing a client's messages to its server (transaction pooling).
 */
#ifndef APS_RELAY_H
#define APS_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "server.h"

extern bool relay_message(Client *c, Server *s, char type, uint32_t len);
extern bool relay_refuse_named(Client *c, char type, uint32_t len);
extern bool relay_try_deallocate(Client *c, uint32_t len);
extern void relay_forget_portals(Client *c);

#endif /* APS_RELAY_H */
