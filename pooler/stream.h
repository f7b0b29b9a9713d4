/*
 * stream.h
 *		Buffered, non-blocking socket I/O: the one layer that reads and
 *		writes sockets.
 */
#ifndef APS_STREAM_H
#define APS_STREAM_H

#include <stdbool.h>
#include <stddef.h>

/* Flow control: stop reading one side while the other has this much queued,
 * and resume once it is down to FLOW_LOW. */
#define FLOW_HIGH (512 * 1024)
#define FLOW_LOW  (64 * 1024)

struct event;
struct evbuffer;

typedef void (*StreamFn)(void *arg);
typedef void (*StreamEventFn)(void *arg, const char *why);

typedef struct Stream
{
	int				 fd;
	bool			 own_fd; /* close fd in stream_close */
	struct event	*rev;	 /* readable (persistent) */
	struct event	*wev;	 /* writable, only while output waits */
	struct evbuffer *in;
	struct evbuffer *out;
	StreamFn		 on_read;  /* new bytes in in */
	StreamFn		 on_drain; /* out went below FLOW_LOW after waiting */
	StreamEventFn	 on_event; /* end of stream or error */
	void			*arg;
	bool			 reading; /* rev is added */
	bool			 writing; /* wev is added */
	bool			 broken;  /* a write failed: reported via rev */
} Stream;

extern bool stream_init(Stream *st, int fd, bool own_fd, StreamFn on_read,
						StreamFn on_drain, StreamEventFn on_event, void *arg)
	__attribute__((warn_unused_result));
extern void	  stream_close(Stream *st);
extern void	  stream_read(Stream *st, bool on);
extern void	  stream_flush(Stream *st);
extern size_t stream_pending(const Stream *st);

#endif /* APS_STREAM_H */
