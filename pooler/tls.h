/*
 * tls.h
 *		TLS settings made real: the OpenSSL context for client connections,
 *		checks of the files libpq will use towards servers, and what a
 *		session is, for the admin console and client certificates.
 */
#ifndef APS_TLS_H
#define APS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

/* The context new clients' handshakes use; NULL: client TLS is off. */
extern SSL_CTX *tls_client_ctx;

extern bool tls_load(const Config *cfg, SSL_CTX **client_ctx, char *err,
					 size_t errlen) __attribute__((warn_unused_result));
extern void tls_set_client_ctx(SSL_CTX *ctx);
extern void tls_describe(SSL *ssl, char *buf, size_t len);
extern bool tls_peer_common_name(SSL *ssl, char *buf, size_t len)
	__attribute__((warn_unused_result));

#endif /* APS_TLS_H */
