/*
 * notify.h
 *		Telling systemd how start-up, reloads and shutdown are going
 *		(Type=notify), without libsystemd.
 */
#ifndef APS_NOTIFY_H
#define APS_NOTIFY_H

extern void notify_systemd(const char *state);

#endif /* APS_NOTIFY_H */
