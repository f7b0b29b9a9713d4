/*
 * stream.c
 *		Buffered, non-blocking socket I/O.
 *
 * Writes go out at once (stream_flush, called at the end of each batch of
 * messages); only when the socket is full does the stream wait for it to
 * become writable.  Reads take what one read(2) gives, without asking the
 * kernel how much there is first.  This keeps the system calls per
 * forwarded message at one read and one write, where libevent's
 * bufferevents add two epoll_ctl and an ioctl.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "main.h"
#include "stream.h"

#define READ_SIZE (16 * 1024)

static void
stream_read_cb(evutil_socket_t fd, short what, void *arg)
{
	Stream				 *st = (Stream *) arg;
	struct evbuffer_iovec v;
	ssize_t				  n;

	if (st->broken)
	{
		st->on_event(st->arg, "could not send data");
		return;
	}
	if (evbuffer_reserve_space(st->in, READ_SIZE, &v, 1) < 1)
	{
		st->on_event(st->arg, "out of memory");
		return;
	}
	n = read(st->fd, v.iov_base,
			 v.iov_len < READ_SIZE ? v.iov_len : READ_SIZE);
	if (n > 0)
	{
		v.iov_len = (size_t) n;
		evbuffer_commit_space(st->in, &v, 1);
		st->on_read(st->arg);
	}
	else if (n == 0)
		st->on_event(st->arg, "connection closed");
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		st->on_event(st->arg, strerror(errno));
}

static void
stream_write_cb(evutil_socket_t fd, short what, void *arg)
{
	Stream *st = (Stream *) arg;

	stream_flush(st);
	if (!st->broken && st->on_drain &&
		evbuffer_get_length(st->out) <= FLOW_LOW)
		st->on_drain(st->arg);
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
	st->in = evbuffer_new();
	st->out = evbuffer_new();
	st->rev = event_new(ev_base, fd, EV_READ | EV_PERSIST, stream_read_cb, st);
	st->wev =
		event_new(ev_base, fd, EV_WRITE | EV_PERSIST, stream_write_cb, st);
	if (!st->in || !st->out || !st->rev || !st->wev)
	{
		stream_close(st);
		return false;
	}
	evutil_make_socket_nonblocking(fd);
	return true;
}

/* Stop everything and free; the fd is closed if the stream owns it. */
void
stream_close(Stream *st)
{
	if (st->rev)
		event_free(st->rev);
	if (st->wev)
		event_free(st->wev);
	if (st->in)
		evbuffer_free(st->in);
	if (st->out)
		evbuffer_free(st->out);
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
}

/* Write what the socket takes now; wait for it to be writable for the rest. */
void
stream_flush(Stream *st)
{
	while (evbuffer_get_length(st->out) > 0)
	{
		int n = evbuffer_write(st->out, st->fd);

		if (n > 0)
			continue;
		if (n < 0 &&
			(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		/* Report it from the read side, where the owner expects events. */
		st->broken = true;
		evbuffer_drain(st->out, evbuffer_get_length(st->out));
		event_active(st->rev, EV_READ, 0);
		break;
	}
	if (evbuffer_get_length(st->out) > 0)
	{
		if (!st->writing)
		{
			event_add(st->wev, NULL);
			st->writing = true;
		}
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
	return evbuffer_get_length(st->out);
}
