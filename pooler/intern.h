/*
 * intern.h
 *		Shared, reference-counted copies of short strings.
 *
 * Every logged-in client keeps the session settings that follow it from
 * server to server (client_encoding, DateStyle, TimeZone, ...), and almost
 * every client of a pool has the same names and the same values.  A copy
 * of each per client cost more than the rest of an idle client (a malloc
 * chunk of at least 32 bytes per string, a dozen strings); interned, the
 * strings exist once and a client holds pointers to them.
 *
 * intern_get returns the shared copy of s (made on first use) and takes a
 * reference; intern_put gives one back, and the copy is freed with its last
 * reference.  Interned strings never change: to "change" one, get the new
 * value and put the old.  Two interned strings are equal iff their
 * pointers are.
 */
#ifndef APS_INTERN_H
#define APS_INTERN_H

#include <stddef.h>

extern const char *intern_get(const char *s);
extern const char *intern_ref(const char *s);
extern void		   intern_put(const char *s);

/* Distinct strings held (the unit tests check they are given back). */
extern size_t intern_count(void);

#endif /* APS_INTERN_H */
