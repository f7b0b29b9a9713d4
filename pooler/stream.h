/*
 * stream.h
 *		Buffered, non-blocking socket I/O, in plain text or through TLS: the
 *		one layer that reads and writes sockets.
 */
#ifndef APS_STREAM_H
#define APS_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/event_struct.h>

/* Flow control: stop reading one side while the other has this much queued,
 * and resume once it is down to FLOW_LOW. */
#define FLOW_HIGH (512 * 1024)

/*
 * A CopyData or DataRow at least this long that has not all come yet is
 * passed on as it arrives (streamed), not held whole.
 */
#define STREAM_MIN (64 * 1024)
#define FLOW_LOW   (64 * 1024)

#include "buf.h"

struct ssl_st;	   /* OpenSSL's SSL */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct StreamTls;  /* stream.c */

typedef void (*StreamFn)(void *arg);
typedef void (*StreamEventFn)(void *arg, const char *why);

typedef struct Stream
{
	int				  fd;
	bool			  own_fd;	/* close fd in stream_close */
	struct event	 *rev;		/* readable (persistent): &rev_storage */
	struct event	 *wev;		/* writable, only while output waits */
	Buf				  in;		/* plain text read */
	Buf				  out;		/* plain text not yet written */
	StreamFn		  on_read;	/* new bytes in in */
	StreamFn		  on_drain; /* out went below FLOW_LOW after waiting */
	StreamEventFn	  on_event; /* end of stream or error */
	void			 *arg;
	bool			  reading; /* rev is added */
	bool			  writing; /* wev is added */
	bool			  broken;  /* a write failed: reported via rev */
	int				  errnum;  /* its errno (0: unknown), for the report */
	struct StreamTls *tls;	   /* NULL: plain text */
	/* Every stream reads, so its read event lives here (event_assign),
	 * saving a malloc chunk per connection; a Stream never moves. */
	struct event rev_storage;
} Stream;

/*
 * fd must be non-blocking already: the listener accepts with SOCK_NONBLOCK
 * and libpq's sockets are (a fcntl per client was a system call in each
 * connection of a reconnect storm).
 */
extern bool stream_init(Stream *st, int fd, bool own_fd, StreamFn on_read,
						StreamFn on_drain, StreamEventFn on_event, void *arg)
	__attribute__((warn_unused_result));
extern void	  stream_close(Stream *st);
extern void	  stream_read(Stream *st, bool on);
extern void	  stream_read_now(Stream *st);
extern void	  stream_flush(Stream *st);
extern size_t stream_pending(const Stream *st);
extern void	  stream_shutdown(Stream *st);

/*
 * Switch a plain-text stream to TLS as the server of the handshake (a
 * client's SSLRequest was answered 'S').  What is queued goes out first, in
 * plain text; false if that cannot be done at once, if unread input waits
 * (it would be plain text smuggled in ahead of the handshake), or on a lack
 * of memory.  The handshake then runs while the stream reads.
 */
extern bool stream_tls_accept(Stream *st, struct ssl_ctx_st *ctx)
	__attribute__((warn_unused_result));

/*
 * Go on through a TLS session someone else opened (libpq, at login).  The
 * stream does not free ssl; whoever owns it must outlive the stream.
 */
extern bool stream_tls_adopt(Stream *st, struct ssl_st *ssl)
	__attribute__((warn_unused_result));

/* The stream's TLS session, or NULL for plain text. */
extern struct ssl_st *stream_ssl(const Stream *st);

#endif /* APS_STREAM_H */
