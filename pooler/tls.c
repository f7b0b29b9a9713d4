/*
 * tls.c
 *		TLS settings made real with OpenSSL.
 *
 * Towards clients the pooler is a TLS server: tls_load builds one SSL_CTX
 * from client_tls_* (certificate chain, key, and for verify-ca and
 * verify-full the CA that client certificates must chain to), and every
 * client handshake starts from the context in force when its SSLRequest
 * came.  RELOAD builds a new context and swaps it in only when the whole
 * configuration is good; sessions already open keep a reference to the one
 * they started with (OpenSSL counts them), so freeing the old one is safe.
 *
 * Towards servers libpq does TLS itself (server_tls_* become sslmode,
 * sslrootcert, sslcert and sslkey), so here the files are only loaded once
 * to check them: a bad file is then an error at start-up, in --check and
 * at RELOAD, naming the file, the line and the key, instead of a failed
 * login for every server later.
 *
 * The choices for clients follow PostgreSQL's server: TLS 1.2 or later, no
 * renegotiation, no session tickets or cache (a pooler's clients reconnect
 * rarely, and resumption would bypass a CA reloaded since).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "log.h"
#include "tls.h"

SSL_CTX *tls_client_ctx = NULL;

/* The reason of OpenSSL's latest error, for a message. */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char	 *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown OpenSSL error";
}

/* Report a failed load of file (named by key) and clear OpenSSL's errors. */
static bool
load_failed(const Config *cfg, const char *key, const char *what,
			const char *file, char *err, size_t errlen)
{
	config_key_error(cfg, key, err, errlen, "could not load %s \"%s\": %s",
					 what, file, ssl_reason());
	ERR_clear_error();
	return false;
}

/*
 * Load a certificate (chain) and its private key into ctx and check that
 * they belong together.
 */
static bool
load_pair(SSL_CTX *ctx, const Config *cfg, const char *cert_key,
		  const char *cert, const char *key_key, const char *key, char *err,
		  size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return load_failed(cfg, cert_key, "certificate", cert, err, errlen);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
	{
		int r = ERR_GET_REASON(ERR_peek_last_error());

		/* OpenSSL already compared it with the certificate. */
		if (r != X509_R_KEY_VALUES_MISMATCH && r != X509_R_KEY_TYPE_MISMATCH)
			return load_failed(cfg, key_key, "private key", key, err, errlen);
	}
	else if (SSL_CTX_check_private_key(ctx) == 1)
		return true;
	config_key_error(cfg, key_key, err, errlen,
					 "private key \"%s\" does not match %s \"%s\"", key,
					 cert_key, cert);
	ERR_clear_error();
	return false;
}

/* The context for clients, or NULL with err set. */
static SSL_CTX *
client_ctx_new(const Config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
	{
		snprintf(err, errlen, "%s: could not create a TLS context: %s",
				 cfg->path, ssl_reason());
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (!load_pair(ctx, cfg, "client_tls_cert_file", cfg->client_tls_cert_file,
				   "client_tls_key_file", cfg->client_tls_key_file, err,
				   errlen))
		goto fail;
	if (cfg->client_tls_ca_file[0] != '\0')
	{
		STACK_OF(X509_NAME) * names;

		if (SSL_CTX_load_verify_locations(ctx, cfg->client_tls_ca_file,
										  NULL) != 1)
		{
			load_failed(cfg, "client_tls_ca_file", "CA file",
						cfg->client_tls_ca_file, err, errlen);
			goto fail;
		}
		/* Tell clients which CAs we accept, so they pick the right cert. */
		names = SSL_load_client_CA_file(cfg->client_tls_ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		ERR_clear_error();
	}
	if (cfg->client_tls_sslmode >= SSLMODE_VERIFY_CA)
		SSL_CTX_set_verify(
			ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Load what libpq will load for servers, to find bad files now. */
static bool
check_server_files(const Config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	bool	 ok = true;

	if (cfg->server_tls_ca_file[0] == '\0' &&
		cfg->server_tls_cert_file[0] == '\0')
		return true;
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
	{
		snprintf(err, errlen, "%s: could not create a TLS context: %s",
				 cfg->path, ssl_reason());
		ERR_clear_error();
		return false;
	}
	if (cfg->server_tls_ca_file[0] != '\0' &&
		SSL_CTX_load_verify_locations(ctx, cfg->server_tls_ca_file, NULL) != 1)
		ok = load_failed(cfg, "server_tls_ca_file", "CA file",
						 cfg->server_tls_ca_file, err, errlen);
	if (ok && cfg->server_tls_cert_file[0] != '\0')
		ok = load_pair(ctx, cfg, "server_tls_cert_file",
					   cfg->server_tls_cert_file, "server_tls_key_file",
					   cfg->server_tls_key_file, err, errlen);
	SSL_CTX_free(ctx);
	return ok;
}

/*
 * Check every TLS file cfg names and build the client context: *client_ctx
 * is NULL when client_tls_sslmode = disable.  Nothing is installed: the
 * caller does that once the rest of the configuration is good too.
 */
bool
tls_load(const Config *cfg, SSL_CTX **client_ctx, char *err, size_t errlen)
{
	*client_ctx = NULL;
	if (!check_server_files(cfg, err, errlen))
		return false;
	if (cfg->client_tls_sslmode == SSLMODE_DISABLE)
		return true;
	*client_ctx = client_ctx_new(cfg, err, errlen);
	return *client_ctx != NULL;
}

/* Use ctx (may be NULL) for new clients; the old context is let go. */
void
tls_set_client_ctx(SSL_CTX *ctx)
{
	if (tls_client_ctx)
		SSL_CTX_free(tls_client_ctx);
	tls_client_ctx = ctx;
}

/* "TLSv1.3/TLS_AES_256_GCM_SHA384", or "" before or without TLS. */
void
tls_describe(SSL *ssl, char *buf, size_t len)
{
	if (ssl == NULL || !SSL_is_init_finished(ssl))
	{
		snprintf(buf, len, "%s", "");
		return;
	}
	snprintf(buf, len, "%s/%s", SSL_get_version(ssl),
			 SSL_get_cipher_name(ssl));
}

/*
 * The common name of the peer's verified certificate.  False if there is no
 * certificate, no common name, or one with a NUL in it (which could make
 * "admin\0.evil" pass for "admin").
 */
bool
tls_peer_common_name(SSL *ssl, char *buf, size_t len)
{
	X509			*cert;
	X509_NAME		*name;
	X509_NAME_ENTRY *entry;
	ASN1_STRING		*data;
	int				 i;
	int				 n;

	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL)
		return false;
	name = X509_get_subject_name(cert);
	i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return false;
	entry = X509_NAME_get_entry(name, i);
	data = X509_NAME_ENTRY_get_data(entry);
	n = ASN1_STRING_length(data);
	if (n < 0 || (size_t) n >= len ||
		memchr(ASN1_STRING_get0_data(data), '\0', (size_t) n) != NULL)
		return false;
	memcpy(buf, ASN1_STRING_get0_data(data), (size_t) n);
	buf[n] = '\0';
	return true;
}
