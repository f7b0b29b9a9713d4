/*
 * test_scram.c
 *		Unit tests of SCRAM-SHA-256 (pooler/scram.c): base64, secrets, the
 *		proof check, and whole exchanges, well-formed and not.
 *
 * Known answers come from outside this code: RFC 7677's example exchange,
 * and a secret that PostgreSQL 15 made for the password "pencil"
 * (SET password_encryption = 'scram-sha-256'; CREATE ROLE kat PASSWORD
 * 'pencil'; SELECT rolpassword FROM pg_authid WHERE rolname = 'kat').  The
 * client side of an exchange is computed here with OpenSSL directly, not
 * with the functions under test.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scram.h"

#include "check.h"

/* Made by PostgreSQL 15 for the password "pencil". */
static const char *PG_SECRET = "SCRAM-SHA-256$4096:Q3JttG5+F9tvGc3bqMfsQA==$"
							   "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=:"
							   "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=";
static const char *PG_SALT = "Q3JttG5+F9tvGc3bqMfsQA==";

/* RFC 7677, section 3. */
static const char *RFC_SALT = "W22ZaJ0SNY7soEsUEjb6gQ==";
static const char *RFC_CLIENT_FIRST_BARE = "n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char *RFC_SERVER_FIRST =
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char *RFC_CLIENT_FINAL_NO_PROOF =
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char *RFC_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char *RFC_SERVER_SIGNATURE =
	"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static char err[256];
static char final_err[256]; /* err of an exchange's last message */

/* base64 with OpenSSL, for comparing with what the server sent. */
static void
b64(const uint8_t *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *) out, in, (int) len);
}

/* What a client computes: proof and expected server signature. */
static void
client_side(const char *password, const uint8_t *salt, size_t salt_len,
			int iterations, const char *auth_message, uint8_t proof[32],
			uint8_t server_signature[32])
{
	uint8_t		 salted[32];
	uint8_t		 client_key[32];
	uint8_t		 stored_key[32];
	uint8_t		 server_key[32];
	uint8_t		 client_signature[32];
	unsigned int n;

	PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, (int) salt_len,
					  iterations, EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *) "Client Key", 10,
		 client_key, &n);
	EVP_Digest(client_key, 32, stored_key, &n, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), stored_key, 32, (const uint8_t *) auth_message,
		 strlen(auth_message), client_signature, &n);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ client_signature[i];
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *) "Server Key", 10,
		 server_key, &n);
	HMAC(EVP_sha256(), server_key, 32, (const uint8_t *) auth_message,
		 strlen(auth_message), server_signature, &n);
}

/* A SASLInitialResponse body: mechanism, length, data. */
static ScramStatus
send_initial(ScramState *st, const char *mech, const char *data)
{
	uint8_t	 body[1024];
	size_t	 mlen = strlen(mech) + 1;
	uint32_t dlen = htonl(data ? (uint32_t) strlen(data) : (uint32_t) -1);
	size_t	 len = mlen + 4 + (data ? strlen(data) : 0);

	memcpy(body, mech, mlen);
	memcpy(body + mlen, &dlen, 4);
	if (data)
		memcpy(body + mlen + 4, data, strlen(data));
	return scram_handle_message(st, body, len, err, sizeof(err));
}

static ScramStatus
send_response(ScramState *st, const char *data)
{
	return scram_handle_message(st, (const uint8_t *) data, strlen(data), err,
								sizeof(err));
}

static void
test_b64(void)
{
	uint8_t out[16];
	size_t	n = 99;

	CHECK(scram_b64_decode("QQ==", 4, out, sizeof(out), &n));
	CHECK(n == 1 && out[0] == 'A');
	CHECK(scram_b64_decode("QUI=", 4, out, sizeof(out), &n));
	CHECK(n == 2 && memcmp(out, "AB", 2) == 0);
	CHECK(scram_b64_decode("QUJD", 4, out, sizeof(out), &n));
	CHECK(n == 3 && memcmp(out, "ABC", 3) == 0);
	CHECK(scram_b64_decode("QUJDRA==", 8, out, sizeof(out), &n) && n == 4);
	/* refused: empty, bad length, misplaced or excess padding, spaces,
	 * characters outside the alphabet, too long for out */
	CHECK(!scram_b64_decode("", 0, out, sizeof(out), &n));
	CHECK(!scram_b64_decode("QQ=", 3, out, sizeof(out), &n));
	CHECK(!scram_b64_decode("Q===", 4, out, sizeof(out), &n));
	CHECK(!scram_b64_decode("QQ=A", 4, out, sizeof(out), &n));
	CHECK(!scram_b64_decode("=QQQ", 4, out, sizeof(out), &n));
	CHECK(!scram_b64_decode(" QQ=", 4, out, sizeof(out), &n));
	CHECK(!scram_b64_decode("QQ-_", 4, out, sizeof(out), &n));
	CHECK(!scram_b64_decode("QUJDRA==", 8, out, 5, &n));
}

static void
test_parse_secret(void)
{
	ScramSecret s;
	ScramSecret d;
	uint8_t		salt[18]; /* room for what padding stands for */
	size_t		n;

	CHECK(scram_is_secret(PG_SECRET));
	CHECK(!scram_is_secret("md5abc"));
	CHECK(!scram_is_secret(NULL));
	CHECK(scram_parse_secret(PG_SECRET, &s));
	CHECK(s.iterations == 4096 && s.salt_len == 16);
	CHECK(scram_b64_decode(PG_SALT, strlen(PG_SALT), salt, sizeof(salt), &n));
	CHECK(n == 16 && memcmp(s.salt, salt, 16) == 0);

	/* Known answer: our derivation gives PostgreSQL's keys. */
	CHECK(scram_derive_secret("pencil", s.salt, s.salt_len, s.iterations, &d));
	CHECK(memcmp(d.stored_key, s.stored_key, 32) == 0);
	CHECK(memcmp(d.server_key, s.server_key, 32) == 0);
	CHECK(
		scram_derive_secret("pencil!", s.salt, s.salt_len, s.iterations, &d));
	CHECK(memcmp(d.stored_key, s.stored_key, 32) != 0);

	/* A fresh secret has a random salt and PostgreSQL's defaults. */
	{
		ScramSecret a;
		ScramSecret b;

		CHECK(scram_make_secret("pencil", &a));
		CHECK(scram_make_secret("pencil", &b));
		CHECK(a.iterations == 4096 && a.salt_len == 16);
		CHECK(memcmp(a.salt, b.salt, 16) != 0);
		CHECK(memcmp(a.stored_key, b.stored_key, 32) != 0);
	}

	/* Malformed secrets. */
	CHECK(!scram_parse_secret("SCRAM-SHA-256$", &s));
	CHECK(!scram_parse_secret("SCRAM-SHA-1$4096:Q3JttG5+F9tvGc3bqMfsQA==$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=:"
							  "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=",
							  &s));
	CHECK(!scram_parse_secret("SCRAM-SHA-256$0:Q3JttG5+F9tvGc3bqMfsQA==$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=:"
							  "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=",
							  &s));
	CHECK(!scram_parse_secret("SCRAM-SHA-256$-1:Q3JttG5+F9tvGc3bqMfsQA==$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=:"
							  "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=",
							  &s));
	CHECK(
		!scram_parse_secret("SCRAM-SHA-256$99999999999:Q3JttG5+F9tvGc3bqMfs"
							"QA==$U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERx"
							"A=:nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=",
							&s));
	/* no salt */
	CHECK(!scram_parse_secret("SCRAM-SHA-256$4096:$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=:"
							  "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=",
							  &s));
	/* StoredKey one byte short */
	CHECK(!scram_parse_secret("SCRAM-SHA-256$4096:Q3JttG5+F9tvGc3bqMfsQA==$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAER==:"
							  "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8=",
							  &s));
	/* no ServerKey, trailing garbage */
	CHECK(!scram_parse_secret("SCRAM-SHA-256$4096:Q3JttG5+F9tvGc3bqMfsQA==$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=",
							  &s));
	CHECK(!scram_parse_secret("SCRAM-SHA-256$4096:Q3JttG5+F9tvGc3bqMfsQA==$"
							  "U9z8FN7n+TscmI4eC3DGnf8z5BNaho+mfwaYDOAERxA=:"
							  "nhBau4Vxg8PsLibf+rRxTNTEH4620/FXi6qK2ZDicW8= ",
							  &s));
}

/* RFC 7677's example: our proof check accepts its proof and signs alike. */
static void
test_rfc7677(void)
{
	ScramSecret s;
	uint8_t		salt[18];
	uint8_t		proof[33];
	uint8_t		sig[32];
	char		sig64[64];
	char		am[512];
	size_t		n;
	bool		verified = false;

	CHECK(
		scram_b64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt), &n));
	CHECK(scram_derive_secret("pencil", salt, n, 4096, &s));
	CHECK(scram_b64_decode(RFC_PROOF, strlen(RFC_PROOF), proof, sizeof(proof),
						   &n) &&
		  n == 32);
	snprintf(am, sizeof(am), "%s,%s,%s", RFC_CLIENT_FIRST_BARE,
			 RFC_SERVER_FIRST, RFC_CLIENT_FINAL_NO_PROOF);
	CHECK(scram_verify_proof(&s, am, strlen(am), proof, sig, &verified));
	CHECK(verified);
	b64(sig, 32, sig64);
	CHECK(strcmp(sig64, RFC_SERVER_SIGNATURE) == 0);

	proof[7] ^= 1;
	CHECK(scram_verify_proof(&s, am, strlen(am), proof, sig, &verified));
	CHECK(!verified);
}

/*
 * Run an exchange as a client with password: the gs2 header, a fixed
 * client nonce.  Returns the final status; the server-first-message is
 * checked against secret on the way.
 */
static ScramStatus
exchange(const ScramSecret *secret, const char *password, const char *gs2)
{
	ScramState *st = scram_start("kat", secret, NULL);
	const char *cnonce = "fyko+d2lbbFgONRv9qkxdawL";
	char		first[128];
	char		bare[128];
	char		server_first[256];
	char		final[512];
	char		am[1024];
	char		proof64[64];
	char		sig64[64];
	uint8_t		proof[32];
	uint8_t		sig[32];
	const char *nonce;
	ScramStatus status;

	snprintf(bare, sizeof(bare), "n=kat,r=%s", cnonce);
	snprintf(first, sizeof(first), "%s%s", gs2, bare);
	status = send_initial(st, SCRAM_MECHANISM, first);
	CHECK(status == SCRAM_CONTINUE);
	if (status != SCRAM_CONTINUE)
	{
		scram_free(st);
		return status;
	}
	snprintf(server_first, sizeof(server_first), "%.*s", (int) st->reply_len,
			 st->reply);
	/* r=<our nonce><24 characters of server nonce>,s=<salt>,i=4096 */
	CHECK(strncmp(server_first, "r=", 2) == 0);
	CHECK(strncmp(server_first + 2, cnonce, strlen(cnonce)) == 0);
	nonce = server_first + 2;
	CHECK(strcspn(nonce, ",") == strlen(cnonce) + 24);
	{
		char salt64[128];
		char expect[160];

		b64(secret->salt, secret->salt_len, salt64);
		snprintf(expect, sizeof(expect), ",s=%s,i=%d", salt64,
				 secret->iterations);
		CHECK(strcmp(nonce + strcspn(nonce, ","), expect) == 0);
	}

	snprintf(final, sizeof(final), "c=%s,r=%.*s",
			 gs2[0] == 'y' ? "eSws" : "biws", (int) strcspn(nonce, ","),
			 nonce);
	snprintf(am, sizeof(am), "%s,%s,%s", bare, server_first, final);
	client_side(password, secret->salt, secret->salt_len, secret->iterations,
				am, proof, sig);
	b64(proof, 32, proof64);
	b64(sig, 32, sig64);
	snprintf(final + strlen(final), sizeof(final) - strlen(final), ",p=%s",
			 proof64);
	status = send_response(st, final);
	snprintf(final_err, sizeof(final_err), "%s", err);
	if (status == SCRAM_OK)
	{
		char expect[80];

		snprintf(expect, sizeof(expect), "v=%s", sig64);
		CHECK(st->reply_len == strlen(expect) &&
			  memcmp(st->reply, expect, st->reply_len) == 0);
	}
	/* Nothing is read after the end. */
	CHECK(send_response(st, final) == SCRAM_ERROR);
	scram_free(st);
	return status;
}

static void
test_exchange(void)
{
	ScramSecret pg;
	ScramSecret plain;

	CHECK(scram_parse_secret(PG_SECRET, &pg));
	CHECK(exchange(&pg, "pencil", "n,,") == SCRAM_OK);
	CHECK(exchange(&pg, "pencil", "y,,") == SCRAM_OK);
	CHECK(exchange(&pg, "Pencil", "n,,") == SCRAM_FAILED);
	CHECK(strstr(final_err, "wrong password") != NULL);
	CHECK(exchange(&pg, "", "n,,") == SCRAM_FAILED);

	/* A secret derived from a plain password (what auth.c caches). */
	CHECK(scram_make_secret("s3cret", &plain));
	CHECK(exchange(&plain, "s3cret", "n,,") == SCRAM_OK);
	CHECK(exchange(&plain, "pencil", "n,,") == SCRAM_FAILED);
}

/* No initial response: an empty SASLContinue, then client-first. */
static void
test_no_initial_response(void)
{
	ScramState *st = scram_start("kat", NULL, "test");

	CHECK(send_initial(st, SCRAM_MECHANISM, NULL) == SCRAM_CONTINUE);
	CHECK(st->reply_len == 0);
	CHECK(send_response(st, "n,,n=,r=abc") == SCRAM_CONTINUE);
	CHECK(strncmp(st->reply, "r=abc", 5) == 0);
	scram_free(st);
}

/* The salt a doomed exchange shows for user. */
static void
mock_salt(const char *user, char *out, size_t outlen)
{
	ScramState *st = scram_start(user, NULL, "no such user");
	const char *s;

	CHECK(send_initial(st, SCRAM_MECHANISM, "n,,n=,r=abc") == SCRAM_CONTINUE);
	s = strstr(st->reply, ",s=");
	snprintf(out, outlen, "%.*s", s ? (int) strcspn(s + 1, ",") : 0,
			 s ? s + 1 : "");
	scram_free(st);
}

static void
test_doomed(void)
{
	ScramState *st = scram_start("ghost", NULL, "user \"ghost\" is unknown");
	char		a[64];
	char		b[64];
	char		c[64];
	char		final[256];
	const char *r;

	CHECK(send_initial(st, SCRAM_MECHANISM, "n,,n=ghost,r=abc") ==
		  SCRAM_CONTINUE);
	CHECK(strstr(st->reply, ",i=4096") != NULL);
	r = st->reply + 2;
	snprintf(final, sizeof(final),
			 "c=biws,r=%.*s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			 (int) strcspn(r, ","), r);
	CHECK(send_response(st, final) == SCRAM_FAILED);
	CHECK(strcmp(err, "user \"ghost\" is unknown") == 0);
	scram_free(st);

	/* Same user, same salt (like a real one); another user, another. */
	mock_salt("ghost", a, sizeof(a));
	mock_salt("ghost", b, sizeof(b));
	mock_salt("ghoul", c, sizeof(c));
	CHECK(strncmp(a, "s=", 2) == 0 && strlen(a) == 2 + 24);
	CHECK(strcmp(a, b) == 0);
	CHECK(strcmp(a, c) != 0);
}

/* First message: status and that err mentions what. */
static void
bad_first(const char *mech, const char *data, const char *what)
{
	ScramState *st = scram_start("kat", NULL, "test");

	CHECK(send_initial(st, mech, data) == SCRAM_MALFORMED);
	if (strstr(err, what) == NULL)
		fprintf(stderr, "error for \"%s\": \"%s\", expected \"%s\"\n", data,
				err, what);
	CHECK(strstr(err, what) != NULL);
	scram_free(st);
}

/* Final message after a good first one; %s in final is the nonce. */
static void
bad_final(const char *gs2, const char *final_fmt, const char *what)
{
	ScramState *st = scram_start("kat", NULL, "test");
	char		first[64];
	char		final[512];
	char		nonce[128];

	snprintf(first, sizeof(first), "%sn=,r=abc", gs2);
	CHECK(send_initial(st, SCRAM_MECHANISM, first) == SCRAM_CONTINUE);
	snprintf(nonce, sizeof(nonce), "%.*s", (int) strcspn(st->reply + 2, ","),
			 st->reply + 2);
	snprintf(final, sizeof(final), final_fmt, nonce);
	CHECK(send_response(st, final) == SCRAM_MALFORMED);
	if (strstr(err, what) == NULL)
		fprintf(stderr, "error for \"%s\": \"%s\", expected \"%s\"\n", final,
				err, what);
	CHECK(strstr(err, what) != NULL);
	scram_free(st);
}

#define PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static void
test_malformed(void)
{
	ScramState *st;
	uint8_t		body[64];

	bad_first("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc",
			  "invalid SASL authentication mechanism");
	bad_first("SCRAM-SHA-1", "n,,n=,r=abc",
			  "invalid SASL authentication mechanism");
	bad_first(SCRAM_MECHANISM, "p=tls-server-end-point,,n=,r=abc",
			  "channel binding");
	bad_first(SCRAM_MECHANISM, "x,,n=,r=abc", "channel-binding flag");
	bad_first(SCRAM_MECHANISM, "n,a=kat,n=,r=abc", "authorization");
	bad_first(SCRAM_MECHANISM, "n;,n=,r=abc", "expected \",\"");
	bad_first(SCRAM_MECHANISM, "n,,m=x,n=,r=abc", "mandatory extension");
	bad_first(SCRAM_MECHANISM, "n,,r=abc", "attribute \"n\"");
	bad_first(SCRAM_MECHANISM, "n,,n=kat", "expected \",\"");
	bad_first(SCRAM_MECHANISM, "n,,n=kat,x=abc", "attribute \"r\"");
	bad_first(SCRAM_MECHANISM, "n,,n=kat,r=", "nonce");
	bad_first(SCRAM_MECHANISM, "n,,n=kat,r=a\tb", "nonce");
	bad_first(SCRAM_MECHANISM, "n,,n=kat,r=abc,", "garbage");
	bad_first(SCRAM_MECHANISM, "n,,n=kat,r=abc,,", "garbage");
	bad_first(SCRAM_MECHANISM, "n,,n=kat,r=abc,x", "garbage");
	bad_first(SCRAM_MECHANISM, "", "channel-binding flag");
	bad_first(SCRAM_MECHANISM, "n", "expected \",\"");

	/* extensions after the nonce are allowed */
	st = scram_start("kat", NULL, "test");
	CHECK(send_initial(st, SCRAM_MECHANISM, "n,,n=kat,r=abc,x=1,y=") ==
		  SCRAM_CONTINUE);
	scram_free(st);

	/* SASLInitialResponse framing: no NUL after the mechanism, short
	 * length, length not matching, a NUL inside the data */
	st = scram_start("kat", NULL, "test");
	CHECK(scram_handle_message(st, (const uint8_t *) "SCRAM-SHA-256", 13, err,
							   sizeof(err)) == SCRAM_MALFORMED);
	scram_free(st);
	st = scram_start("kat", NULL, "test");
	CHECK(scram_handle_message(st, (const uint8_t *) "SCRAM-SHA-256\0\0\0", 16,
							   err, sizeof(err)) == SCRAM_MALFORMED);
	scram_free(st);
	memcpy(body, "SCRAM-SHA-256\0\0\0\0\x0cn,,n=,r=abc", 14 + 4 + 11);
	st = scram_start("kat", NULL, "test");
	CHECK(scram_handle_message(st, body, 14 + 4 + 11, err, sizeof(err)) ==
		  SCRAM_MALFORMED);
	CHECK(strstr(err, "data length") != NULL);
	scram_free(st);
	memcpy(body, "SCRAM-SHA-256\0\0\0\0\x0bn,,n=\0r=abc", 14 + 4 + 11);
	st = scram_start("kat", NULL, "test");
	CHECK(scram_handle_message(st, body, 14 + 4 + 11, err, sizeof(err)) ==
		  SCRAM_MALFORMED);
	CHECK(strstr(err, "NUL") != NULL);
	scram_free(st);
	/* the well-formed version of the same bytes */
	memcpy(body, "SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc", 14 + 4 + 11);
	st = scram_start("kat", NULL, "test");
	CHECK(scram_handle_message(st, body, 14 + 4 + 11, err, sizeof(err)) ==
		  SCRAM_CONTINUE);
	scram_free(st);

	bad_final("n,,", "c=eSws,r=%s,p=" PROOF, "channel-binding attribute");
	bad_final("y,,", "c=biws,r=%s,p=" PROOF, "channel-binding attribute");
	bad_final("n,,", "c=,r=%s,p=" PROOF, "channel-binding attribute");
	bad_final("n,,", "r=%s,p=" PROOF, "attribute \"c\"");
	bad_final("n,,", "c=biws,r=%sX,p=" PROOF, "nonce does not match");
	bad_final("n,,", "c=biws,r=abc,p=" PROOF "%.0s", "nonce does not match");
	bad_final("n,,", "c=biws,p=" PROOF "%.0s", "attribute \"r\"");
	bad_final("n,,", "c=biws,r=%s", "expected \",\"");
	bad_final("n,,", "c=biws,r=%s,", "attribute \"p\"");
	bad_final("n,,", "c=biws,r=%s,p=" PROOF ",x=1", "garbage after the proof");
	bad_final("n,,", "c=biws,r=%s,p=" PROOF ",", "garbage after the proof");
	bad_final("n,,", "c=biws,r=%s,p=", "proof");
	bad_final("n,,", "c=biws,r=%s,p=QUJD", "proof");
	bad_final("n,,", "c=biws,r=%s,p=" PROOF "QQ==", "proof");
	bad_final("n,,", "c=biws,r=%s,p=!!!!", "proof");

	/* extensions before the proof are allowed (and fail on the proof) */
	st = scram_start("kat", NULL, "doomed");
	CHECK(send_initial(st, SCRAM_MECHANISM, "n,,n=,r=abc") == SCRAM_CONTINUE);
	{
		char final[256];

		snprintf(final, sizeof(final), "c=biws,r=%.*s,x=1,p=" PROOF,
				 (int) strcspn(st->reply + 2, ","), st->reply + 2);
		CHECK(send_response(st, final) == SCRAM_FAILED);
	}
	scram_free(st);
}

int
main(void)
{
	test_b64();
	test_parse_secret();
	test_rfc7677();
	test_exchange();
	test_no_initial_response();
	test_doomed();
	test_malformed();
	printf("test_scram: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
