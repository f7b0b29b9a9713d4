/*
 * scram.h
 *		SCRAM-SHA-256 client authentication (RFC 5802, RFC 7677), as
 *		PostgreSQL speaks it: secrets, key derivation, and the exchange.
 */
#ifndef APS_SCRAM_H
#define APS_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN			 32 /* SHA-256 */
#define SCRAM_MAX_SALT_LEN		 64
#define SCRAM_DEFAULT_SALT_LEN	 16	  /* what PostgreSQL makes */
#define SCRAM_DEFAULT_ITERATIONS 4096 /* likewise */
#define SCRAM_MECHANISM			 "SCRAM-SHA-256"

/*
 * The body of AuthenticationSASL after its code: the mechanisms we offer,
 * each NUL-terminated, then an empty name.  No SCRAM-SHA-256-PLUS: we do
 * no channel binding.  Send sizeof(SCRAM_SASL_MECHANISMS) bytes.
 */
#define SCRAM_SASL_MECHANISMS SCRAM_MECHANISM "\0"

/* Authentication request codes (AuthenticationSASL and its followers). */
#define AUTH_REQ_SASL		   10
#define AUTH_REQ_SASL_CONTINUE 11
#define AUTH_REQ_SASL_FINAL	   12

/*
 * What the server keeps of a password: pg_authid.rolpassword's
 * "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", decoded.
 * It lets us verify a client, never recover the password.  ClientKey is
 * HMAC(SaltedPassword, "Client Key"), SaltedPassword = Hi(password, salt,
 * iterations).
 */
typedef struct ScramSecret
{
	int		iterations;
	size_t	salt_len;
	uint8_t salt[SCRAM_MAX_SALT_LEN];
	uint8_t stored_key[SCRAM_KEY_LEN]; /* H(ClientKey) */
	uint8_t server_key[SCRAM_KEY_LEN]; /* HMAC(SaltedPassword, "Server Key") */
} ScramSecret;

typedef enum ScramStatus
{
	SCRAM_CONTINUE,	 /* reply: send in AuthenticationSASLContinue */
	SCRAM_OK,		 /* proof verified; reply: AuthenticationSASLFinal */
	SCRAM_FAILED,	 /* wrong password or no usable secret (28P01); err
					  * says why, for the log only */
	SCRAM_MALFORMED, /* protocol violation (08P01); err is for the client */
	SCRAM_ERROR		 /* OpenSSL failed us; err says how */
} ScramStatus;

typedef enum ScramStep
{
	SCRAM_WANT_INITIAL,		 /* SASLInitialResponse */
	SCRAM_WANT_CLIENT_FIRST, /* SASLResponse: it had no initial response */
	SCRAM_WANT_CLIENT_FINAL, /* SASLResponse with client-final-message */
	SCRAM_FINISHED			 /* verified or failed: nothing more to read */
} ScramStep;

/* One client's exchange in progress. */
typedef struct ScramState
{
	ScramStep	step;
	ScramSecret secret;
	/* Why the exchange must fail whatever the client proves, or NULL. */
	char  *doomed;
	char  *mock_user;		  /* whose mock salt to show, when doomed */
	char   cbind_flag;		  /* 'n' or 'y' from the gs2 header */
	char  *client_first_bare; /* kept for the AuthMessage */
	char  *server_first;	  /* likewise */
	char  *nonce;			  /* client nonce + server nonce */
	char  *reply;			  /* what to send for the last message */
	size_t reply_len;
} ScramState;

extern bool scram_parse_secret(const char *text, ScramSecret *out)
	__attribute__((warn_unused_result));
extern bool scram_is_secret(const char *text);
extern bool scram_derive_secret(const char *password, const uint8_t *salt,
								size_t salt_len, int iterations,
								ScramSecret *out)
	__attribute__((warn_unused_result));
extern bool scram_make_secret(const char *password, ScramSecret *out)
	__attribute__((warn_unused_result));
extern bool scram_verify_proof(const ScramSecret *secret,
							   const char *auth_message, size_t len,
							   const uint8_t proof[SCRAM_KEY_LEN],
							   uint8_t		 server_signature[SCRAM_KEY_LEN],
							   bool			*verified)
	__attribute__((warn_unused_result));
extern bool scram_b64_decode(const char *in, size_t inlen, uint8_t *out,
							 size_t outcap, size_t *outlen)
	__attribute__((warn_unused_result));

extern ScramState *scram_start(const char *user, const ScramSecret *secret,
							   const char *doomed);
extern ScramStatus scram_handle_message(ScramState *st, const uint8_t *body,
										size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void		   scram_free(ScramState *st);
extern const char *scram_status_to_str(ScramStatus status);

#endif /* APS_SCRAM_H */
