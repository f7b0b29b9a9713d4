/*
 * auth.c
 *		The auth_file ("user" "password" per line, as PgBouncer's userlist)
 *		and the md5 password exchange.  OpenSSL does the hashing.
 *
 * A stored password is one of three kinds (auth_secret_kind): plain, an md5
 * hash ("md5" + md5(password + user)), or a SCRAM secret as PostgreSQL
 * keeps it ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>").
 * SCRAM secrets are parsed when the file is loaded, and a malformed one
 * fails the load with its line: a typo must not silently turn a secret
 * into a plain password.  For a plain password, SCRAM needs a secret too:
 * it is derived at the user's first SCRAM login (random salt, 4096
 * iterations, like PostgreSQL) and kept until the file is reloaded, so
 * that the event loop pays for PBKDF2 once per user, not once per login.
 * An md5 hash cannot serve SCRAM at all.
 *
 * No SASLprep: a plain password is used byte for byte.  Clients prepare
 * the password (RFC 4013) before hashing; for ASCII that changes nothing,
 * but a non-ASCII password that normalization changes will not match, so
 * we warn about non-ASCII plain passwords.  A secret made by PostgreSQL
 * holds the prepared password and always works.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "log.h"
#include "scram.h"

typedef struct AuthUser
{
	char			*name;
	char			*password; /* as written in the file */
	AuthSecretKind	 kind;
	ScramSecret		*scram; /* parsed SCRAM secret; for a plain password,
							* derived at the first SCRAM login; or NULL */
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
		if (u->scram)
			OPENSSL_cleanse(u->scram, sizeof(ScramSecret));
		free(u->scram);
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
		u->kind = auth_secret_kind(u->password);
		if (u->kind == AUTH_SECRET_SCRAM)
		{
			u->scram = malloc(sizeof(ScramSecret));
			if (u->scram == NULL)
				fatal("out of memory");
			if (!scram_parse_secret(u->password, u->scram))
			{
				snprintf(err, errlen,
						 "%s:%d: malformed SCRAM secret for user \"%s\" "
						 "(expected SCRAM-SHA-256$<iterations>:<salt>$"
						 "<StoredKey>:<ServerKey>, as in pg_authid)",
						 path, lineno, u->name);
				u->next = list;
				free_users(u);
				fclose(f);
				return false;
			}
		}
		u->next = list;
		list = u;
	}
	fclose(f);
	free_users(users);
	users = list;
	return true;
}

static AuthUser *
find_user(const char *user)
{
	for (AuthUser *u = users; u; u = u->next)
	{
		if (strcmp(u->name, user) == 0)
			return u;
	}
	return NULL;
}

/* The stored password of user, or NULL if the user is not listed. */
const char *
auth_password(const char *user)
{
	AuthUser *u = find_user(user);

	return u ? u->password : NULL;
}

/* What kind of stored password is this?  (The rules PostgreSQL uses.) */
AuthSecretKind
auth_secret_kind(const char *stored)
{
	if (strncmp(stored, "md5", 3) == 0 && strlen(stored) == 35 &&
		strspn(stored + 3, "0123456789abcdef") == 32)
		return AUTH_SECRET_MD5;
	if (scram_is_secret(stored))
		return AUTH_SECRET_SCRAM;
	return AUTH_SECRET_PLAIN;
}

/*
 * The SCRAM secret of user, into out.  False if there is none, with
 * *why_not saying why (for the log, never for the client).
 */
bool
auth_scram_secret(const char *user, ScramSecret *out, const char **why_not)
{
	AuthUser *u = find_user(user);

	if (u == NULL)
	{
		*why_not = "the user is not in auth_file";
		return false;
	}
	if (u->kind == AUTH_SECRET_MD5)
	{
		*why_not = "auth_file holds an md5 hash for the user, which SCRAM "
				   "cannot use: store a plain password or a SCRAM secret";
		return false;
	}
	if (u->scram == NULL)
	{
		ScramSecret *s = malloc(sizeof(ScramSecret));

		if (s == NULL)
			fatal("out of memory");
		if (!scram_make_secret(u->password, s))
		{
			free(s);
			*why_not = "could not derive a SCRAM secret from the password";
			return false;
		}
		for (const char *p = u->password; *p; p++)
		{
			if ((unsigned char) *p >= 0x80)
			{
				log_warning("auth_file: the password of user \"%s\" is not "
							"ASCII and is used without SASLprep: a client "
							"whose SASLprep changes it fails SCRAM (a SCRAM "
							"secret made by PostgreSQL does not have this "
							"problem)",
							u->name);
				break;
			}
		}
		u->scram = s;
	}
	*out = *u->scram;
	return true;
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

	switch (auth_secret_kind(stored))
	{
		case AUTH_SECRET_MD5:
			memcpy(inner, stored + 3, 33);
			break;
		case AUTH_SECRET_PLAIN:
			md5_hex(stored, strlen(stored), user, strlen(user), inner);
			break;
		default:
			/* A SCRAM secret cannot answer md5: client.c asks for SCRAM. */
			return false;
	}
	memcpy(expect, "md5", 3);
	md5_hex(inner, 32, salt, 4, expect + 3);
	return strlen(response) == 35 && CRYPTO_memcmp(expect, response, 35) == 0;
}

/*
 * Warn if users other than the file's owner may read or write the
 * auth_file: it holds passwords, or hashes and secrets that stand for them
 * (an md5 hash logs in as well as the password; a SCRAM secret lets its
 * holder pose as the server).  At start-up, --check and each reload.
 */
void
auth_check_file_mode(const char *path)
{
	struct stat sb;

	if (path == NULL || path[0] == '\0' || stat(path, &sb) != 0)
		return;
	if ((sb.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) == 0)
		return;
	log_warning("auth_file \"%s\" can be %s by other users (mode %04o): it "
				"holds passwords or what stands for them; make it readable "
				"by the pooler's user only (chmod 600)",
				path, (sb.st_mode & (S_IRGRP | S_IROTH)) ? "read" : "written",
				(unsigned) (sb.st_mode & 07777));
}

/*
 * Random bytes for cancel keys and MD5 salts, drawn from OpenSSL's
 * generator a block at a time.  A RAND_bytes call has a fixed cost (a
 * lock, a fork check, parameter look-ups, a cipher block) that, paid for
 * the four bytes of each client's cancel key, was 3% of the pooler's time
 * in a reconnect storm (perf, docs/benchmarks.md).  Bytes handed out are
 * wiped from the block.  Only the event loop's thread calls this, and the
 * block is first filled after start-up's fork (daemonize).
 */
static uint8_t random_block[256];
static size_t  random_left = 0; /* unused bytes at the block's end */

void
auth_random(void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len > 0)
	{
		uint8_t *from;
		size_t	 n;

		if (random_left == 0)
		{
			if (RAND_bytes(random_block, sizeof(random_block)) != 1)
				fatal("could not generate random bytes");
			random_left = sizeof(random_block);
		}
		n = len < random_left ? len : random_left;
		from = random_block + sizeof(random_block) - random_left;
		memcpy(out, from, n);
		explicit_bzero(from, n);
		random_left -= n;
		out += n;
		len -= n;
	}
}
