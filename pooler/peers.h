/*
 * peers.h
 *		Several apiscale-pooler instances on one port: cancel requests for
 *		a key another instance issued are forwarded to it.
 */
#ifndef APS_PEERS_H
#define APS_PEERS_H

#include <stdbool.h>
#include <stdint.h>

extern uint32_t peers_key_pid(uint32_t client_id);
extern bool		peers_forward_cancel(uint32_t pid, uint32_t key);

#endif /* APS_PEERS_H */
