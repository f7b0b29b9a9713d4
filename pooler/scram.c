/*
 * scram.c
 *		SCRAM-SHA-256 client authentication (RFC 5802, RFC 7677), as
 *		PostgreSQL speaks it.  OpenSSL does every hash, HMAC, PBKDF2 and
 *		base64; nothing cryptographic is written here by hand.
 *
 * The exchange, after AuthenticationSASL offered "SCRAM-SHA-256":
 *
 *	 client: SASLInitialResponse  "n,,n=,r=<cnonce>"		  client-first
 *	 server: SASLContinue		  "r=<cnonce><snonce>,s=<salt>,i=<n>"
 *	 client: SASLResponse		  "c=biws,r=<nonce>,p=<proof>" client-final
 *	 server: SASLFinal			  "v=<ServerSignature>", then AuthenticationOk
 *
 * The proof is ClientKey XOR HMAC(StoredKey, AuthMessage); knowing
 * StoredKey we recover ClientKey and check H(ClientKey) == StoredKey.  So
 * a secret (what pg_authid keeps) is enough: the plain password is never
 * needed.  AuthMessage = client-first-bare "," server-first ","
 * client-final-without-proof.
 *
 * As in PostgreSQL: the user name in client-first is ignored (the start-up
 * packet's user is the one authenticated); no channel binding is offered,
 * so the gs2 flag may be "n" or "y" (the client could bind but thinks we
 * cannot) and "p=" is refused; authorization identities are refused.
 *
 * An exchange for which there is no usable secret (unknown user, an md5
 * hash in auth_file) is "doomed": it runs to the end with a mock secret
 * and fails there, so that neither the messages nor their timing tell a
 * client whether the user exists.  The mock salt is an HMAC of the user
 * name under a key drawn once per process, so asking twice for the same
 * unknown user gives the same salt, like a real one.
 *
 * Not done: SASLprep (RFC 4013) of the password.  A secret made by
 * PostgreSQL already holds the prepared password, so it always works; a
 * plain password from auth_file is used as given (see auth.c).
 *
 * Messages are parsed from a NUL-terminated copy; every length comes from
 * the wire and is checked.  Errors for malformed messages are worded for
 * the client (they go out as 08P01); the reason of a failed proof is
 * worded for the log only: the client just hears that the password
 * authentication failed.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "scram.h"

#define SCRAM_NONCE_RAW_LEN 18 /* 24 characters in base64 */
#define SECRET_PREFIX		"SCRAM-SHA-256$"

/* HMAC key for mock salts; drawn at the first doomed exchange. */
static uint8_t mock_key[SCRAM_KEY_LEN];
static bool	   mock_key_ready = false;

/* ---------------------------------------------------------------------
 * base64 and primitives
 * ---------------------------------------------------------------------
 */

static bool
is_b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		   (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/*
 * Decode standard base64 (with padding) into out.  Stricter than
 * EVP_DecodeBlock, which skips surrounding white space, and counts the
 * bytes that padding stands for as decoded zeros: we refuse anything but
 * the alphabet, with '=' only at the end, and return the true length.
 * Empty input is refused: no field we decode may be empty.  out must have
 * room for inlen / 4 * 3 bytes, padding included, as DecodeBlock writes
 * them all.
 */
bool
scram_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
				 size_t *outlen)
{
	size_t pad = 0;
	int	   n;

	if (inlen == 0 || inlen % 4 != 0 || inlen > INT_MAX)
		return false;
	for (size_t i = 0; i < inlen; i++)
	{
		if (in[i] == '=')
		{
			if (i < inlen - 2)
				return false;
			pad++;
		}
		else if (pad > 0 || !is_b64_char(in[i]))
			return false;
	}
	if (inlen / 4 * 3 > outcap)
		return false;
	n = EVP_DecodeBlock(out, (const unsigned char *) in, (int) inlen);
	if (n < 0 || (size_t) n < pad)
		return false;
	*outlen = (size_t) n - pad;
	return true;
}

/* malloc'd NUL-terminated base64 of in. */
static char *
b64_encode(const uint8_t *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out == NULL)
		fatal("out of memory");
	EVP_EncodeBlock((unsigned char *) out, in, (int) len);
	return out;
}

static bool
hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
			uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	return HMAC(EVP_sha256(), key, (int) keylen, data, len, out, &outlen) !=
			   NULL &&
		   outlen == SCRAM_KEY_LEN;
}

static bool
sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	return EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) == 1 &&
		   outlen == SCRAM_KEY_LEN;
}

/* malloc'd printf. */
static char *xasprintf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char   *out;

	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		fatal("out of memory");
	va_end(ap);
	return out;
}

/* ---------------------------------------------------------------------
 * Secrets
 * ---------------------------------------------------------------------
 */

/* Does text claim to be a SCRAM secret (whether or not it parses)? */
bool
scram_is_secret(const char *text)
{
	return text != NULL &&
		   strncmp(text, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0;
}

/* Decode the base64 field [p, end) to exactly want bytes. */
static bool
decode_key(const char *p, const char *end, uint8_t *out, size_t want)
{
	uint8_t buf[SCRAM_KEY_LEN + 3];
	size_t	n;

	if (!scram_b64_decode(p, (size_t) (end - p), buf, sizeof(buf), &n) ||
		n != want)
		return false;
	memcpy(out, buf, want);
	return true;
}

/*
 * Parse "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", the
 * form of pg_authid.rolpassword.
 */
bool
scram_parse_secret(const char *text, ScramSecret *out)
{
	const char *p;
	const char *colon;
	const char *dollar;
	const char *colon2;
	char	   *end;
	long		iter;

	memset(out, 0, sizeof(*out));
	if (!scram_is_secret(text))
		return false;
	p = text + strlen(SECRET_PREFIX);
	if (!isdigit((unsigned char) *p))
		return false;
	iter = strtol(p, &end, 10);
	if (*end != ':' || iter < 1 || iter > INT_MAX)
		return false;
	out->iterations = (int) iter;

	colon = end;
	dollar = strchr(colon + 1, '$');
	if (dollar == NULL)
		return false;
	if (!scram_b64_decode(colon + 1, (size_t) (dollar - colon - 1), out->salt,
						  sizeof(out->salt), &out->salt_len) ||
		out->salt_len == 0)
		return false;

	colon2 = strchr(dollar + 1, ':');
	if (colon2 == NULL)
		return false;
	if (!decode_key(dollar + 1, colon2, out->stored_key, SCRAM_KEY_LEN) ||
		!decode_key(colon2 + 1, colon2 + 1 + strlen(colon2 + 1),
					out->server_key, SCRAM_KEY_LEN))
		return false;
	return true;
}

/*
 * The secret of password with this salt and iteration count:
 * SaltedPassword = Hi(password, salt, i) (PBKDF2 with HMAC-SHA-256),
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")),
 * ServerKey = HMAC(SaltedPassword, "Server Key").  The password is used as
 * given (no SASLprep).
 */
bool
scram_derive_secret(const char *password, const uint8_t *salt, size_t salt_len,
					int iterations, ScramSecret *out)
{
	uint8_t salted[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
	bool	ok;

	memset(out, 0, sizeof(*out));
	if (salt_len == 0 || salt_len > sizeof(out->salt) || iterations < 1 ||
		strlen(password) > INT_MAX)
		return false;
	out->iterations = iterations;
	out->salt_len = salt_len;
	memcpy(out->salt, salt, salt_len);
	ok =
		PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt,
						  (int) salt_len, iterations, EVP_sha256(),
						  SCRAM_KEY_LEN, salted) == 1 &&
		hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key) &&
		sha256(client_key, sizeof(client_key), out->stored_key) &&
		hmac_sha256(salted, sizeof(salted), "Server Key", 10, out->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

/* A fresh secret for password: a random salt, PostgreSQL's defaults. */
bool
scram_make_secret(const char *password, ScramSecret *out)
{
	uint8_t salt[SCRAM_DEFAULT_SALT_LEN];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return false;
	return scram_derive_secret(password, salt, sizeof(salt),
							   SCRAM_DEFAULT_ITERATIONS, out);
}

/*
 * Check a client proof against AuthMessage: *verified tells whether
 * H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey, and
 * server_signature gets HMAC(ServerKey, AuthMessage) either way (the work
 * is the same whatever the outcome).  False only if OpenSSL fails.
 */
bool
scram_verify_proof(const ScramSecret *secret, const char *auth_message,
				   size_t len, const uint8_t proof[SCRAM_KEY_LEN],
				   uint8_t server_signature[SCRAM_KEY_LEN], bool *verified)
{
	uint8_t client_signature[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t stored[SCRAM_KEY_LEN];
	bool	ok;

	*verified = false;
	ok = hmac_sha256(secret->stored_key, SCRAM_KEY_LEN, auth_message, len,
					 client_signature);
	if (ok)
	{
		for (int i = 0; i < SCRAM_KEY_LEN; i++)
			client_key[i] = proof[i] ^ client_signature[i];
		ok = sha256(client_key, sizeof(client_key), stored) &&
			 hmac_sha256(secret->server_key, SCRAM_KEY_LEN, auth_message, len,
						 server_signature);
		*verified = ok && CRYPTO_memcmp(stored, secret->stored_key,
										SCRAM_KEY_LEN) == 0;
	}
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

/*
 * A secret that no proof matches, with a salt that depends only on user:
 * what a doomed exchange shows the client.
 */
static bool
mock_secret(const char *user, ScramSecret *out)
{
	uint8_t mac[SCRAM_KEY_LEN];

	memset(out, 0, sizeof(*out));
	if (!mock_key_ready)
	{
		if (RAND_bytes(mock_key, sizeof(mock_key)) != 1)
			return false;
		mock_key_ready = true;
	}
	if (!hmac_sha256(mock_key, sizeof(mock_key), user, strlen(user), mac))
		return false;
	out->iterations = SCRAM_DEFAULT_ITERATIONS;
	out->salt_len = SCRAM_DEFAULT_SALT_LEN;
	memcpy(out->salt, mac, SCRAM_DEFAULT_SALT_LEN);
	/* Random keys: no proof can hash to an unknown StoredKey. */
	return RAND_bytes(out->stored_key, SCRAM_KEY_LEN) == 1 &&
		   RAND_bytes(out->server_key, SCRAM_KEY_LEN) == 1;
}

/* ---------------------------------------------------------------------
 * The exchange
 * ---------------------------------------------------------------------
 */

/*
 * Start an exchange for user.  With secret NULL the exchange is doomed
 * (doomed says why, for the log) and runs on a mock secret.
 */
ScramState *
scram_start(const char *user, const ScramSecret *secret, const char *doomed)
{
	ScramState *st = calloc(1, sizeof(ScramState));

	if (st == NULL)
		fatal("out of memory");
	st->step = SCRAM_WANT_INITIAL;
	if (secret != NULL)
		st->secret = *secret;
	else
	{
		/* The mock secret is made in client_first, which can fail. */
		st->doomed = xstrdup(doomed ? doomed : "no usable secret");
		st->mock_user = xstrdup(user);
	}
	return st;
}

void
scram_free(ScramState *st)
{
	if (st == NULL)
		return;
	OPENSSL_cleanse(&st->secret, sizeof(st->secret));
	free(st->doomed);
	free(st->mock_user);
	free(st->client_first_bare);
	free(st->server_first);
	free(st->nonce);
	free(st->reply);
	free(st);
}

const char *
scram_status_to_str(ScramStatus status)
{
	switch (status)
	{
		case SCRAM_CONTINUE:
			return "continue";
		case SCRAM_OK:
			return "ok";
		case SCRAM_FAILED:
			return "failed";
		case SCRAM_MALFORMED:
			return "malformed";
		case SCRAM_ERROR:
			return "error";
	}
	return "unknown";
}

static void
set_reply(ScramState *st, char *text)
{
	free(st->reply);
	st->reply = text;
	st->reply_len = strlen(text);
}

/*
 * Read the attribute "<name>=<value>" at *p; value runs to the next ',' or
 * the end, where *p is left.  False (with err) if the attribute is not
 * there.
 */
static bool
read_attr(const char **p, char name, const char *what, const char **val,
		  size_t *vlen, char *err, size_t errlen)
{
	const char *s = *p;

	if (s[0] != name || s[1] != '=')
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: expected attribute \"%c\" in %s",
				 name, what);
		return false;
	}
	s += 2;
	*val = s;
	*vlen = strcspn(s, ",");
	*p = s + *vlen;
	return true;
}

/* Step over the ',' at *p; false if there is none. */
static bool
read_comma(const char **p, const char *what, char *err, size_t errlen)
{
	if (**p != ',')
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: expected \",\" in %s, found %s",
				 what, **p ? "another character" : "its end");
		return false;
	}
	(*p)++;
	return true;
}

/*
 * Skip an extension attribute at *p (a letter, '=', anything up to ','),
 * leaving *p at the ',' or the end; false if there is none.
 */
static bool
skip_extension(const char **p)
{
	const char *s = *p;

	if (!isalpha((unsigned char) s[0]) || s[1] != '=')
		return false;
	*p = s + 2 + strcspn(s + 2, ",");
	return true;
}

/* RFC 5802 printable: 0x21..0x7e except ','. */
static bool
is_printable_nonce(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	}
	return true;
}

/* The data of a SASL message as a NUL-terminated copy; NULL if it has a
 * NUL inside. */
static char *
copy_data(const uint8_t *data, size_t len)
{
	char *s;

	if (memchr(data, '\0', len) != NULL)
		return NULL;
	s = malloc(len + 1);
	if (s == NULL)
		fatal("out of memory");
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/*
 * client-first-message: gs2 header, then client-first-message-bare
 * ([reserved-mext ","] username "," nonce ["," extensions]).  Answers with
 * server-first-message.
 */
static ScramStatus
client_first(ScramState *st, const char *msg, char *err, size_t errlen)
{
	const char *what = "client-first-message";
	const char *p = msg;
	const char *val;
	size_t		vlen;
	const char *cnonce;
	size_t		cnonce_len;
	uint8_t		raw_nonce[SCRAM_NONCE_RAW_LEN];
	char	   *snonce;
	char	   *salt;

	switch (*p)
	{
		case 'n':
		case 'y':
			st->cbind_flag = *p++;
			break;
		case 'p':
			snprintf(err, errlen,
					 "malformed SCRAM message: the client requires channel "
					 "binding, which this server does not offer");
			return SCRAM_MALFORMED;
		default:
			snprintf(err, errlen,
					 "malformed SCRAM message: unexpected channel-binding "
					 "flag in %s",
					 what);
			return SCRAM_MALFORMED;
	}
	if (!read_comma(&p, what, err, errlen))
		return SCRAM_MALFORMED;
	if (p[0] == 'a' && p[1] == '=')
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: authorization identities (a=) are "
				 "not supported");
		return SCRAM_MALFORMED;
	}
	if (!read_comma(&p, what, err, errlen))
		return SCRAM_MALFORMED;

	st->client_first_bare = xstrdup(p);
	if (p[0] == 'm' && p[1] == '=')
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: mandatory extensions (m=) are not "
				 "supported");
		return SCRAM_MALFORMED;
	}
	/* The user name is ignored: the start-up packet's is authenticated. */
	if (!read_attr(&p, 'n', what, &val, &vlen, err, errlen) ||
		!read_comma(&p, what, err, errlen) ||
		!read_attr(&p, 'r', what, &val, &vlen, err, errlen))
		return SCRAM_MALFORMED;
	if (!is_printable_nonce(val, vlen))
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: the client nonce is empty or "
				 "holds a character that is not printable");
		return SCRAM_MALFORMED;
	}
	cnonce = val;
	cnonce_len = vlen;
	while (*p != '\0')
	{
		p++; /* the ',' where read_attr or skip_extension stopped */
		if (!skip_extension(&p))
		{
			snprintf(err, errlen,
					 "malformed SCRAM message: garbage at the end of %s",
					 what);
			return SCRAM_MALFORMED;
		}
	}

	if (st->doomed && !mock_secret(st->mock_user, &st->secret))
	{
		snprintf(err, errlen, "could not make a mock SCRAM secret");
		return SCRAM_ERROR;
	}
	if (RAND_bytes(raw_nonce, sizeof(raw_nonce)) != 1)
	{
		snprintf(err, errlen, "could not generate a SCRAM nonce");
		return SCRAM_ERROR;
	}
	snonce = b64_encode(raw_nonce, sizeof(raw_nonce));
	salt = b64_encode(st->secret.salt, st->secret.salt_len);
	st->nonce = xasprintf("%.*s%s", (int) cnonce_len, cnonce, snonce);
	st->server_first =
		xasprintf("r=%s,s=%s,i=%d", st->nonce, salt, st->secret.iterations);
	free(snonce);
	free(salt);
	set_reply(st, xstrdup(st->server_first));
	st->step = SCRAM_WANT_CLIENT_FINAL;
	return SCRAM_CONTINUE;
}

/*
 * client-final-message: "c=" channel binding, "r=" nonce, extensions,
 * "p=" proof (last).  Verifies the proof; on success, answers with
 * server-final-message.
 */
static ScramStatus
client_final(ScramState *st, const char *msg, char *err, size_t errlen)
{
	const char *what = "client-final-message";
	const char *p = msg;
	const char *val;
	size_t		vlen;
	const char *proof_at;
	uint8_t		proof[SCRAM_KEY_LEN + 3];
	size_t		proof_len;
	uint8_t		server_signature[SCRAM_KEY_LEN];
	const char *expect_cbind;
	char	   *auth_message;
	char	   *sig;
	bool		verified;
	bool		ok;

	if (!read_attr(&p, 'c', what, &val, &vlen, err, errlen))
		return SCRAM_MALFORMED;
	/* base64 of the gs2 header, "n,," or "y,," (we refused any other). */
	expect_cbind = st->cbind_flag == 'y' ? "eSws" : "biws";
	if (vlen != strlen(expect_cbind) || memcmp(val, expect_cbind, vlen) != 0)
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: the channel-binding attribute "
				 "does not match the gs2 header of client-first-message");
		return SCRAM_MALFORMED;
	}
	if (!read_comma(&p, what, err, errlen) ||
		!read_attr(&p, 'r', what, &val, &vlen, err, errlen))
		return SCRAM_MALFORMED;
	if (vlen != strlen(st->nonce) || memcmp(val, st->nonce, vlen) != 0)
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: the nonce does not match the "
				 "one of server-first-message");
		return SCRAM_MALFORMED;
	}
	for (;;)
	{
		if (!read_comma(&p, what, err, errlen))
			return SCRAM_MALFORMED;
		if (p[0] == 'p' && p[1] == '=')
			break;
		if (!skip_extension(&p))
		{
			snprintf(err, errlen,
					 "malformed SCRAM message: expected attribute \"p\" in "
					 "%s",
					 what);
			return SCRAM_MALFORMED;
		}
	}
	proof_at = p;
	if (!read_attr(&p, 'p', what, &val, &vlen, err, errlen))
		return SCRAM_MALFORMED;
	if (*p != '\0')
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: garbage after the proof in %s",
				 what);
		return SCRAM_MALFORMED;
	}
	if (!scram_b64_decode(val, vlen, proof, sizeof(proof), &proof_len) ||
		proof_len != SCRAM_KEY_LEN)
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: the proof is not %d bytes in "
				 "base64",
				 SCRAM_KEY_LEN);
		return SCRAM_MALFORMED;
	}

	/* client-final-message-without-proof: msg up to the "," before "p=". */
	auth_message =
		xasprintf("%s,%s,%.*s", st->client_first_bare, st->server_first,
				  (int) (proof_at - 1 - msg), msg);
	ok = scram_verify_proof(&st->secret, auth_message, strlen(auth_message),
							proof, server_signature, &verified);
	free(auth_message);
	if (!ok)
	{
		snprintf(err, errlen, "could not compute the SCRAM signatures");
		return SCRAM_ERROR;
	}
	if (st->doomed)
	{
		snprintf(err, errlen, "%s", st->doomed);
		return SCRAM_FAILED;
	}
	if (!verified)
	{
		snprintf(err, errlen, "wrong password (the proof does not verify)");
		return SCRAM_FAILED;
	}
	sig = b64_encode(server_signature, sizeof(server_signature));
	set_reply(st, xasprintf("v=%s", sig));
	free(sig);
	return SCRAM_OK;
}

/*
 * SASLInitialResponse: mechanism name, int32 length (-1: none), data.
 * Without data, the client-first-message comes in the next SASLResponse,
 * after an empty SASLContinue.
 */
static ScramStatus
initial_response(ScramState *st, const uint8_t *body, size_t len, char *err,
				 size_t errlen)
{
	size_t		mlen = strnlen((const char *) body, len);
	int32_t		dlen;
	char	   *msg;
	ScramStatus status;

	if (mlen == len || len - mlen - 1 < 4)
	{
		snprintf(err, errlen, "malformed SASLInitialResponse message");
		return SCRAM_MALFORMED;
	}
	if (strcmp((const char *) body, SCRAM_MECHANISM) != 0)
	{
		snprintf(err, errlen,
				 "client selected an invalid SASL authentication mechanism");
		return SCRAM_MALFORMED;
	}
	body += mlen + 1;
	len -= mlen + 1;
	dlen = (int32_t) ((uint32_t) body[0] << 24 | (uint32_t) body[1] << 16 |
					  (uint32_t) body[2] << 8 | (uint32_t) body[3]);
	body += 4;
	len -= 4;
	if (dlen == -1 && len == 0)
	{
		set_reply(st, xstrdup(""));
		st->step = SCRAM_WANT_CLIENT_FIRST;
		return SCRAM_CONTINUE;
	}
	if (dlen < 0 || (size_t) dlen != len)
	{
		snprintf(err, errlen,
				 "malformed SASLInitialResponse message: the data length "
				 "does not match the message length");
		return SCRAM_MALFORMED;
	}
	msg = copy_data(body, len);
	if (msg == NULL)
	{
		snprintf(err, errlen,
				 "malformed SCRAM message: it contains a NUL byte");
		return SCRAM_MALFORMED;
	}
	status = client_first(st, msg, err, errlen);
	free(msg);
	return status;
}

/*
 * Handle the body (after type and length) of the client's next 'p'
 * message.  On SCRAM_CONTINUE and SCRAM_OK, st->reply holds what to send
 * (AuthenticationSASLContinue, AuthenticationSASLFinal).  Any status but
 * SCRAM_CONTINUE ends the exchange.
 */
ScramStatus
scram_handle_message(ScramState *st, const uint8_t *body, size_t len,
					 char *err, size_t errlen)
{
	ScramStatus status;
	char	   *msg;

	err[0] = '\0';
	switch (st->step)
	{
		case SCRAM_WANT_INITIAL:
			status = initial_response(st, body, len, err, errlen);
			break;
		case SCRAM_WANT_CLIENT_FIRST:
		case SCRAM_WANT_CLIENT_FINAL:
			msg = copy_data(body, len);
			if (msg == NULL)
			{
				snprintf(err, errlen,
						 "malformed SCRAM message: it contains a NUL byte");
				status = SCRAM_MALFORMED;
				break;
			}
			if (st->step == SCRAM_WANT_CLIENT_FIRST)
				status = client_first(st, msg, err, errlen);
			else
				status = client_final(st, msg, err, errlen);
			free(msg);
			break;
		default:
			snprintf(err, errlen,
					 "internal error: SCRAM message after the exchange "
					 "ended (step %d)",
					 (int) st->step);
			status = SCRAM_ERROR;
			break;
	}
	if (status != SCRAM_CONTINUE)
		st->step = SCRAM_FINISHED;
	return status;
}
