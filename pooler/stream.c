/*
 * stream.c
 *		Buffered, non-blocking socket I/O, in plain text or through TLS.
 *
 * Writes go out at once (stream_flush, called at the end of each batch of
 * messages); only when the socket is full does the stream wait for it to
 * become writable.  Reads take what one recv(2) gives, without asking the
 * kernel how much there is first.  This keeps the system calls per
 * forwarded message at one recv and one send, where libevent's
 * bufferevents add two epoll_ctl and an ioctl.  recv and send, not read
 * and write: every stream is a socket, and the socket calls skip the file
 * layer's checks (about 50 ns a call over TCP loopback on the bench VM;
 * MSG_NOSIGNAL also makes a peer gone EPIPE without needing SIGPIPE
 * ignored).
 *
 * TLS keeps that design and that contract: in holds plain text read, out
 * plain text not yet handed to OpenSSL, and the owner sees the same
 * callbacks.  stream_flush encrypts what is queued at once, in records of
 * up to 16 kB (a batch of small messages is one record and one write); the
 * read callback calls SSL_read with read-ahead on, so a batch usually costs
 * one system call to read, as in plain text (OpenSSL's socket BIO reads
 * with read(2)).  A TLS stream has its own event callbacks:
 * the plain-text path is the code above the TLS section, unchanged, plus a
 * pointer test in stream_flush and stream_read.
 *
 * libevent's bufferevent_openssl was the other candidate.  In libevent 2.1
 * it encrypts and sends on every evbuffer_add to its output (a record and
 * a send(2) per message we build, and the write event added and deleted
 * each time), cannot send close_notify after its output drains, and would
 * have put a second buffering model beside this one.
 *
 * Rules a TLS stream keeps:
 * - OpenSSL may hold bytes the kernel no longer signals (read-ahead, or a
 *   read that stopped at its budget).  So the read callback goes on while
 *   OpenSSL has bytes buffered, and switching reading back on with bytes
 *   buffered activates the read event by hand.
 * - A read may need a write (a TLS 1.3 key update answered into a full
 *   socket): the stream waits for writable, then reads again.  A write that
 *   needs a read only happens with renegotiation, which the client context
 *   refuses and PostgreSQL never starts: it fails the stream.
 * - Errors are reported from the read side, as in plain text, after the
 *   bytes that came before them.
 * - The handshake (stream_tls_accept) runs while the stream reads; output
 *   queued meanwhile waits for it.
 * - An adopted session (stream_tls_adopt) belongs to libpq: its BIO reads
 *   and writes through the PGconn, so the PGconn must outlive the stream,
 *   and the stream never frees it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "process.h"
#include "stream.h"

#define READ_SIZE BUF_BLOCK

/* The largest TLS record: one SSL_write each. */
#define TLS_RECORD (16 * 1024)

/* Plain text taken from OpenSSL per read callback, for fairness. */
#define TLS_READ_BUDGET (64 * 1024)

typedef struct StreamTls
{
	SSL *ssl;
	bool own_ssl;		/* SSL_free in stream_close */
	bool established;	/* handshake done */
	bool hs_want_write; /* the handshake waits for writable */
	bool read_blocked;	/* SSL_read waits for writable */
	int	 pending_write; /* length of an SSL_write to retry, or 0 */
	char failure[200];	/* why the stream broke */
} StreamTls;

static void
stream_read_cb(evutil_socket_t fd, short what, void *arg)
{
	Stream	*st = (Stream *) arg;
	uint8_t *p;
	size_t	 avail;
	ssize_t	 n;

	if (st->broken)
	{
		static char why[128];

		/* ETIMEDOUT: tcp_user_timeout, or no answer to keepalive probes */
		if (st->errnum != 0)
			snprintf(why, sizeof(why), "could not send data: %s",
					 strerror(st->errnum));
		else
			snprintf(why, sizeof(why), "%s",
					 st->out.oom ? "out of memory" : "could not send data");
		st->on_event(st->arg, why);
		return;
	}
	p = buf_reserve(&st->in, READ_SIZE, &avail);
	if (p == NULL)
	{
		st->on_event(st->arg, "out of memory");
		return;
	}
	n = recv(st->fd, p, avail, 0);
	if (n > 0)
	{
		buf_commit(&st->in, (size_t) n);
		st->on_read(st->arg);
		return;
	}
	if (buf_len(&st->in) == 0)
		buf_release(&st->in); /* an idle stream holds no memory */
	if (n == 0)
		st->on_event(st->arg, "connection closed");
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		st->on_event(st->arg, strerror(errno));
}

static void
stream_write_cb(evutil_socket_t fd, short what, void *arg)
{
	Stream *st = (Stream *) arg;

	stream_flush(st);
	if (!st->broken && st->on_drain && buf_len(&st->out) <= FLOW_LOW)
		st->on_drain(st->arg);
}

static void tls_flush(Stream *st);
static void tls_write_cb(evutil_socket_t fd, short what, void *arg);
static void tls_read_cb(evutil_socket_t fd, short what, void *arg);

/*
 * Wait for st's socket to be writable, making the event on first use.
 * Without memory for it the stream is broken, reported from the read side
 * as a failed write is.
 */
static void
add_wev(Stream *st)
{
	if (st->wev == NULL)
	{
		st->wev = event_new(ev_base, st->fd, EV_WRITE | EV_PERSIST,
							st->tls ? tls_write_cb : stream_write_cb, st);
		if (st->wev == NULL)
		{
			st->broken = true;
			buf_release(&st->out);
			event_active(st->rev, EV_READ, 0);
			return;
		}
	}
	event_add(st->wev, NULL);
	st->writing = true;
}

bool
stream_init(Stream *st, int fd, bool own_fd, StreamFn on_read,
			StreamFn on_drain, StreamEventFn on_event, void *arg)
{
	memset(st, 0, sizeof(*st));
	st->fd = fd;
	st->own_fd = own_fd;
	st->on_read = on_read;
	st->on_drain = on_drain;
	st->on_event = on_event;
	st->arg = arg;
	/* wev comes with the first write the kernel does not take at once
	 * (add_wev): most clients never have one, and an idle client's memory
	 * is mostly its events */
	if (event_assign(&st->rev_storage, ev_base, fd, EV_READ | EV_PERSIST,
					 stream_read_cb, st) != 0)
	{
		stream_close(st);
		return false;
	}
	st->rev = &st->rev_storage;
	return true;
}

/*
 * Read as if the socket had been reported readable, for a socket that most
 * likely has bytes waiting (a client accepted after TCP_DEFER_ACCEPT): it
 * saves the loop pass that would report them.  Nothing there costs a read
 * that fails with EAGAIN.  The callbacks run as from the loop, and may close
 * the stream's owner.
 */
void
stream_read_now(Stream *st)
{
	if (st->tls)
		tls_read_cb(st->fd, EV_READ, st);
	else
		stream_read_cb(st->fd, EV_READ, st);
}

/* Stop everything and free; the fd is closed if the stream owns it. */
void
stream_close(Stream *st)
{
	if (st->rev)
		event_del(st->rev); /* also out of the active queue */
	if (st->wev)
		event_free(st->wev);
	buf_release(&st->in);
	buf_release(&st->out);
	if (st->tls)
	{
		if (st->tls->own_ssl)
			SSL_free(st->tls->ssl);
		free(st->tls);
	}
	if (st->own_fd && st->fd >= 0)
		close(st->fd);
	memset(st, 0, sizeof(*st));
	st->fd = -1;
}

void
stream_read(Stream *st, bool on)
{
	if (on == st->reading)
		return;
	if (on)
		event_add(st->rev, NULL);
	else
		event_del(st->rev);
	st->reading = on;
	/* Bytes OpenSSL holds, or a failure, will not wake the socket up. */
	if (on && st->tls && (st->broken || SSL_has_pending(st->tls->ssl)))
		event_active(st->rev, EV_READ, 0);
}

/* Write what the socket takes now; wait for it to be writable for the rest. */
void
stream_flush(Stream *st)
{
	if (st->tls)
	{
		tls_flush(st);
		return;
	}
	if (st->out.oom && !st->broken)
	{
		/* a message lost part of itself: nothing more may go out */
		st->broken = true;
		buf_release(&st->out);
		event_active(st->rev, EV_READ, 0);
	}
	while (buf_len(&st->out) > 0)
	{
		ssize_t n =
			send(st->fd, buf_data(&st->out), buf_len(&st->out), MSG_NOSIGNAL);

		if (n > 0)
		{
			buf_drain(&st->out, (size_t) n);
			continue;
		}
		if (n < 0 &&
			(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		/* Report it from the read side, where the owner expects events. */
		st->broken = true;
		st->errnum = n < 0 ? errno : 0;
		buf_release(&st->out);
		event_active(st->rev, EV_READ, 0);
		break;
	}
	if (buf_len(&st->out) > 0)
	{
		if (!st->writing)
			add_wev(st);
	}
	else if (st->writing)
	{
		event_del(st->wev);
		st->writing = false;
	}
}

size_t
stream_pending(const Stream *st)
{
	return buf_len(&st->out);
}

/*
 * No more output: close_notify for TLS, then the end of the byte stream.
 * What the peer still sends is read as before.
 */
void
stream_shutdown(Stream *st)
{
	/* OpenSSL forbids SSL_shutdown before the handshake or after a failure. */
	if (st->tls && st->tls->established && !st->broken)
	{
		ERR_clear_error();
		(void) SSL_shutdown(st->tls->ssl); /* lost if the socket is full */
	}
	shutdown(st->fd, SHUT_WR);
}

/* ---------------------------------------------------------------- TLS -- */

/* Add or remove the write event as the TLS state needs it. */
static void
tls_update_wev(Stream *st)
{
	StreamTls *t = st->tls;
	bool	   want;

	if (t->established)
		want = t->read_blocked || buf_len(&st->out) > 0;
	else
		want = t->hs_want_write;
	if (want == st->writing)
		return;
	if (want)
		add_wev(st);
	else
	{
		event_del(st->wev);
		st->writing = false;
	}
}

/* Put why an OpenSSL call failed into t->failure, after prefix. */
static void
tls_set_failure(StreamTls *t, const char *prefix, int err, int ret)
{
	unsigned long e = ERR_peek_last_error();
	const char	 *why;

	switch (err)
	{
		case SSL_ERROR_ZERO_RETURN:
			why = "connection closed";
			break;
		case SSL_ERROR_SYSCALL:
			why =
				ret == 0 || errno == 0 ? "connection closed" : strerror(errno);
			break;
		case SSL_ERROR_SSL:
			if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
				why = "connection closed";
			else
				why = ERR_reason_error_string(e);
			if (why == NULL)
				why = "TLS protocol error";
			break;
		case SSL_ERROR_WANT_READ:
			why = "TLS renegotiation is not supported";
			break;
		default:
			why = "unexpected TLS state";
			break;
	}
	snprintf(t->failure, sizeof(t->failure), "%s%s%s", prefix ? prefix : "",
			 prefix ? ": " : "", why);
	ERR_clear_error();
}

/* A write failed or the session broke: drop the output, report it later. */
static void
tls_break(Stream *st)
{
	st->broken = true;
	buf_release(&st->out);
	event_active(st->rev, EV_READ, 0);
}

/* One step of the handshake; false if it failed (see t->failure). */
static bool
tls_handshake(Stream *st)
{
	StreamTls *t = st->tls;
	int		   r;
	int		   err;

	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
	{
		t->established = true;
		t->hs_want_write = false;
		tls_flush(st); /* what was queued meanwhile */
		return true;
	}
	err = SSL_get_error(t->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
	{
		t->hs_want_write = err == SSL_ERROR_WANT_WRITE;
		tls_update_wev(st);
		return true;
	}
	tls_set_failure(t, "TLS handshake failed", err, r);
	return false;
}

/*
 * Encrypt and write what is queued, a record at a time, until the socket
 * is full.  A record OpenSSL could not finish is retried with the same
 * length, as it requires; the bytes are still at the front of out.
 */
static void
tls_flush(Stream *st)
{
	StreamTls *t = st->tls;

	if (st->out.oom && !st->broken)
	{
		snprintf(t->failure, sizeof(t->failure), "out of memory");
		tls_break(st);
	}
	if (st->broken)
		buf_release(&st->out);
	while (t->established && buf_len(&st->out) > 0)
	{
		size_t len = buf_len(&st->out);
		int	   n;
		int	   err;

		if (t->pending_write > 0)
			len = (size_t) t->pending_write;
		else if (len > TLS_RECORD)
			len = TLS_RECORD;
		ERR_clear_error();
		n = SSL_write(t->ssl, buf_data(&st->out), (int) len);
		if (n > 0)
		{
			t->pending_write = 0;
			buf_drain(&st->out, (size_t) n);
			continue;
		}
		err = SSL_get_error(t->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE)
		{
			t->pending_write = (int) len;
			break;
		}
		tls_set_failure(t, "could not send data", err, n);
		tls_break(st);
		break;
	}
	tls_update_wev(st);
}

static void
tls_read_cb(evutil_socket_t fd, short what, void *arg)
{
	Stream	  *st = (Stream *) arg;
	StreamTls *t = st->tls;
	size_t	   got = 0;
	bool	   failed = false;

	if (st->broken)
	{
		st->on_event(st->arg,
					 t->failure[0] ? t->failure : "could not send data");
		return;
	}
	if (!t->established)
	{
		if (!tls_handshake(st))
		{
			st->on_event(st->arg, t->failure);
			return;
		}
		if (!t->established)
			return;
		if (st->broken)
		{
			st->on_event(st->arg, t->failure);
			return;
		}
		/* Records may have come with the last flight: read on. */
	}
	if (t->read_blocked)
	{
		t->read_blocked = false;
		tls_update_wev(st);
	}
	while (got < TLS_READ_BUDGET)
	{
		uint8_t *p;
		size_t	 avail;
		int		 n;
		int		 err;

		if ((p = buf_reserve(&st->in, READ_SIZE, &avail)) == NULL)
		{
			snprintf(t->failure, sizeof(t->failure), "out of memory");
			failed = true;
			break;
		}
		ERR_clear_error();
		n = SSL_read(t->ssl, p, (int) avail);
		if (n > 0)
		{
			buf_commit(&st->in, (size_t) n);
			got += (size_t) n;
			/* Nothing buffered: the kernel will tell us about the rest. */
			if (!SSL_has_pending(t->ssl))
				break;
			continue;
		}
		err = SSL_get_error(t->ssl, n);
		if (err == SSL_ERROR_WANT_READ)
			break;
		if (err == SSL_ERROR_WANT_WRITE)
		{
			t->read_blocked = true;
			tls_update_wev(st);
			break;
		}
		tls_set_failure(t, NULL, err, n);
		failed = true;
		break;
	}
	if (buf_len(&st->in) == 0)
		buf_release(&st->in);
	if (failed && got == 0)
	{
		st->on_event(st->arg, t->failure);
		return;
	}
	/* The owner may free st in on_read: arrange what comes next first. */
	if (failed)
		tls_break(st);
	else if (got >= TLS_READ_BUDGET && SSL_has_pending(t->ssl))
		event_active(st->rev, EV_READ, 0);
	if (got > 0)
		st->on_read(st->arg);
}

static void
tls_write_cb(evutil_socket_t fd, short what, void *arg)
{
	Stream	  *st = (Stream *) arg;
	StreamTls *t = st->tls;

	if (!t->established)
	{
		if (!tls_handshake(st))
			st->on_event(st->arg, t->failure);
		else if (t->established && st->reading)
			event_active(st->rev, EV_READ, 0);
		return;
	}
	if (t->read_blocked)
	{
		t->read_blocked = false;
		if (st->reading)
			event_active(st->rev, EV_READ, 0);
	}
	tls_flush(st);
	if (!st->broken && st->on_drain && buf_len(&st->out) <= FLOW_LOW)
		st->on_drain(st->arg);
}

/* Give st the TLS state t: its own event callbacks, read-ahead. */
static bool
tls_attach(Stream *st, StreamTls *t)
{
	bool reading = st->reading;

	event_del(st->rev);
	if (event_assign(st->rev, ev_base, st->fd, EV_READ | EV_PERSIST,
					 tls_read_cb, st) != 0)
	{
		/* not for a socket event on a base: the stream fails */
		if (t->own_ssl)
			SSL_free(t->ssl);
		free(t);
		st->reading = false;
		return false;
	}
	/* A record retried may be at another address after the buffer moved. */
	SSL_set_mode(t->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_read_ahead(t->ssl, 1);
	if (st->wev)
		event_free(st->wev); /* made again with TLS's callback (add_wev) */
	st->wev = NULL;
	st->reading = false;
	st->writing = false;
	st->tls = t;
	if (reading)
		stream_read(st, true);
	tls_update_wev(st);
	return true;
}

bool
stream_tls_accept(Stream *st, SSL_CTX *ctx)
{
	StreamTls *t;

	if (st->tls)
		return false;
	stream_flush(st);
	if (st->broken || buf_len(&st->out) > 0 || buf_len(&st->in) > 0)
		return false;
	t = calloc(1, sizeof(StreamTls));
	if (t == NULL)
		return false;
	t->ssl = SSL_new(ctx);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, st->fd) != 1)
	{
		if (t->ssl)
			SSL_free(t->ssl);
		free(t);
		return false;
	}
	t->own_ssl = true;
	/* Idle clients are most clients: give their buffers back. */
	SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_accept_state(t->ssl);
	return tls_attach(st, t);
}

bool
stream_tls_adopt(Stream *st, SSL *ssl)
{
	StreamTls *t;

	if (st->tls || ssl == NULL)
		return false;
	t = calloc(1, sizeof(StreamTls));
	if (t == NULL)
		return false;
	t->ssl = ssl;
	t->own_ssl = false;
	t->established = true;
	return tls_attach(st, t);
}

SSL *
stream_ssl(const Stream *st)
{
	return st->tls ? st->tls->ssl : NULL;
}
