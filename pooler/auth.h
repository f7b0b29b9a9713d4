/*
 * auth.h
 *		auth_file and password checks.
 */
#ifndef APS_AUTH_H
#define APS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern bool auth_load(const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern const char *auth_password(const char *user);
extern bool		   auth_md5_check(const char *user, const char *stored,
								  const uint8_t salt[4], const char *response);
extern void		   auth_random(void *buf, size_t len);

#endif /* APS_AUTH_H */
