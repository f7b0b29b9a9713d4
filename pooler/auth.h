/*
 * auth.h
 *		auth_file and password checks.
 */
#ifndef APS_AUTH_H
#define APS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scram.h"

/* The kinds of password auth_file may hold. */
typedef enum AuthSecretKind
{
	AUTH_SECRET_PLAIN, /* the password itself */
	AUTH_SECRET_MD5,   /* "md5" + md5(password + user) */
	AUTH_SECRET_SCRAM  /* "SCRAM-SHA-256$...", as in pg_authid */
} AuthSecretKind;

extern bool auth_load(const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern const char	 *auth_password(const char *user);
extern AuthSecretKind auth_secret_kind(const char *stored);
extern bool			  auth_scram_secret(const char *user, ScramSecret *out,
										const char **why_not)
	__attribute__((warn_unused_result));
extern bool auth_md5_check(const char *user, const char *stored,
						   const uint8_t salt[4], const char *response);
extern void auth_random(void *buf, size_t len);
extern void auth_check_file_mode(const char *path);

#endif /* APS_AUTH_H */
