/*
 * auth.c
 *		The auth_file ("user" "password" per line, as PgBouncer's userlist)
 *		and the md5 password exchange.  OpenSSL does the hashing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "log.h"

typedef struct AuthUser
{
	char			*name;
	char			*password; /* plain, or "md5" + md5(password + user) */
	struct AuthUser *next;
} AuthUser;

static AuthUser *users = NULL;

static void
free_users(AuthUser *u)
{
	while (u)
	{
		AuthUser *next = u->next;

		free(u->name);
		free(u->password);
		free(u);
		u = next;
	}
}

/* Read one "quoted" token ("" inside is a quote); NULL if none. */
static char *
read_quoted(const char **pp)
{
	const char *p = *pp;
	char	   *out;
	size_t		n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '"')
		return NULL;
	p++;
	out = malloc(strlen(p) + 1);
	if (out == NULL)
		fatal("out of memory");
	while (*p)
	{
		if (*p == '"')
		{
			if (p[1] == '"')
			{
				out[n++] = '"';
				p += 2;
				continue;
			}
			break;
		}
		out[n++] = *p++;
	}
	if (*p != '"')
	{
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*pp = p + 1;
	return out;
}

/* (Re)load the auth file; the old table stays on failure. */
bool
auth_load(const char *path, char *err, size_t errlen)
{
	FILE	 *f;
	char	  line[4096];
	int		  lineno = 0;
	AuthUser *list = NULL;

	if (path == NULL || path[0] == '\0')
	{
		free_users(users);
		users = NULL;
		return true;
	}
	f = fopen(path, "r");
	if (f == NULL)
	{
		snprintf(err, errlen, "%s: could not open: %s", path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f))
	{
		const char *p = line;
		AuthUser   *u;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '\n' || *p == ';' || *p == '#')
			continue;
		u = calloc(1, sizeof(AuthUser));
		if (u == NULL)
			fatal("out of memory");
		u->name = read_quoted(&p);
		u->password = u->name ? read_quoted(&p) : NULL;
		if (u->name == NULL || u->password == NULL)
		{
			snprintf(err, errlen, "%s:%d: expected \"user\" \"password\"",
					 path, lineno);
			free(u->name);
			free(u);
			free_users(list);
			fclose(f);
			return false;
		}
		u->next = list;
		list = u;
	}
	fclose(f);
	free_users(users);
	users = list;
	return true;
}

/* The stored password of user, or NULL if the user is not listed. */
const char *
auth_password(const char *user)
{
	for (AuthUser *u = users; u; u = u->next)
	{
		if (strcmp(u->name, user) == 0)
			return u->password;
	}
	return NULL;
}

/* out = lower-case hex md5(a || b) */
static void
md5_hex(const char *a, size_t alen, const void *b, size_t blen, char out[33])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int  dlen = 0;
	EVP_MD_CTX	 *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL) ||
		!EVP_DigestUpdate(ctx, a, alen) || !EVP_DigestUpdate(ctx, b, blen) ||
		!EVP_DigestFinal_ex(ctx, digest, &dlen))
		fatal("md5 is not available from OpenSSL");
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < dlen && i < 16; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
	out[32] = '\0';
}

/*
 * Does response (the client's PasswordMessage) answer the md5 challenge for
 * the stored password?  response = "md5" + md5(md5(password + user) + salt)
 */
bool
auth_md5_check(const char *user, const char *stored, const uint8_t salt[4],
			   const char *response)
{
	char inner[33];
	char expect[36];

	if (strncmp(stored, "md5", 3) == 0 && strlen(stored) == 35)
		memcpy(inner, stored + 3, 33);
	else
		md5_hex(stored, strlen(stored), user, strlen(user), inner);
	memcpy(expect, "md5", 3);
	md5_hex(inner, 32, salt, 4, expect + 3);
	return strlen(response) == 35 && CRYPTO_memcmp(expect, response, 35) == 0;
}

void
auth_random(void *buf, size_t len)
{
	if (RAND_bytes(buf, (int) len) != 1)
		fatal("could not generate random bytes");
}
