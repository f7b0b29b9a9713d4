/*
 * buf.h
 *		The byte buffers of the relay path: one contiguous run of bytes per
 *		buffer, memory only while there is something in it.
 *
 * Every socket has two (what was read, what waits to be written).  A
 * message is always in one piece, so parsing reads it in place; a buffer
 * that empties gives its memory back at once, to a small pool of
 * standard-sized blocks the next read or message takes it from.  An idle
 * client therefore holds no buffer memory, and a transaction on the relay
 * path allocates nothing.  (libevent's evbuffers, used before, cost a
 * malloc and a free per chain and several hundred instructions per message
 * in bookkeeping; see docs/design.md.)
 *
 * A buffer that cannot grow (out of memory) drops what it was given and
 * remembers it in oom: the owner of the stream fails the connection rather
 * than send a message with a hole in it.
 */
#ifndef APS_BUF_H
#define APS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The standard block: what a read asks the kernel for, at most. */
#define BUF_BLOCK (16 * 1024)

typedef struct Buf
{
	uint8_t *data; /* NULL while empty */
	size_t	 off;  /* the first byte not consumed */
	size_t	 len;  /* bytes from off */
	size_t	 cap;  /* bytes allocated at data */
	bool	 oom;  /* something was dropped for lack of memory */
} Buf;

static inline size_t
buf_len(const Buf *b)
{
	return b->len;
}

/* The first unconsumed byte (buf_len(b) of them follow); valid until b changes. */
static inline uint8_t *
buf_data(const Buf *b)
{
	return b->data ? b->data + b->off : NULL;
}

extern void buf_release(Buf *b);

/* Consume n bytes (all of them if n >= buf_len(b)). */
static inline void
buf_drain(Buf *b, size_t n)
{
	if (n >= b->len)
		buf_release(b);
	else
	{
		b->off += n;
		b->len -= n;
	}
}

extern bool		buf_add(Buf *b, const void *p, size_t n);
extern bool		buf_move_slow(Buf *src, Buf *dst, size_t n);
extern size_t	buf_remove(Buf *b, void *out, size_t n);
extern uint8_t *buf_reserve(Buf *b, size_t want, size_t *avail);
extern uint8_t *buf_append_space(Buf *b, size_t n);

/*
 * Move the first n bytes of src to the end of dst.  When dst holds nothing
 * and src gives everything (a whole batch of messages), the memory itself
 * changes hands.  false if dst could not take them: they are consumed from
 * src all the same (and dst->oom is set).
 */
static inline bool
buf_move(Buf *src, Buf *dst, size_t n)
{
	if (n >= src->len && src->len > 0 && dst->data == NULL)
	{
		dst->data = src->data;
		dst->off = src->off;
		dst->len = src->len;
		dst->cap = src->cap;
		src->data = NULL;
		src->off = src->len = src->cap = 0;
		return true;
	}
	return buf_move_slow(src, dst, n);
}

/* Count n bytes written into the space buf_reserve gave. */
static inline void
buf_commit(Buf *b, size_t n)
{
	b->len += n;
}

#endif /* APS_BUF_H */
