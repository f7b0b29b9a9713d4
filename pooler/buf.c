/*
 * buf.c
 *		Contiguous byte buffers with a pool of standard blocks (see buf.h).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/*
 * Blocks kept for reuse: enough for the buffers of a few hundred busy
 * connections; past that an emptied block goes back to malloc.
 */
#define POOL_MAX 256

static uint8_t *pool[POOL_MAX];
static int		npool;

/* Give b's memory back; b is empty afterwards (oom stays as it was). */
void
buf_release(Buf *b)
{
	if (b->data)
	{
		if (b->cap == BUF_BLOCK && npool < POOL_MAX)
			pool[npool++] = b->data;
		else
			free(b->data);
	}
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

/* Memory for an empty b: a standard block, or more if need is larger. */
static bool
buf_alloc(Buf *b, size_t need)
{
	size_t cap = need <= BUF_BLOCK ? BUF_BLOCK : need;

	if (cap == BUF_BLOCK && npool > 0)
		b->data = pool[--npool];
	else if ((b->data = malloc(cap)) == NULL)
		return false;
	b->cap = cap;
	b->off = b->len = 0;
	return true;
}

/*
 * Make room for need more bytes after the last one: move the bytes to the
 * front if that is enough (and worth it), else grow.
 */
static bool
buf_room(Buf *b, size_t need)
{
	size_t	 cap;
	uint8_t *p;

	if (b->data == NULL)
		return buf_alloc(b, need);
	if (b->cap - b->off - b->len >= need)
		return true;
	if (b->cap - b->len >= need && b->off > 0)
	{
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		return true;
	}
	if (b->len + need < b->len)
		return false; /* overflow */
	cap = b->cap * 2;
	while (cap < b->len + need)
		cap *= 2;
	if (b->off > 0)
	{
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if (b->cap == BUF_BLOCK && npool < POOL_MAX)
	{
		/* leave the block in the pool, take a bigger one */
		if ((p = malloc(cap)) == NULL)
			return false;
		memcpy(p, b->data, b->len);
		pool[npool++] = b->data;
	}
	else if ((p = realloc(b->data, cap)) == NULL)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

/*
 * n bytes added at the end of b, for the caller to fill; NULL (and b->oom
 * set) if there is no memory for them.
 */
uint8_t *
buf_append_space(Buf *b, size_t n)
{
	uint8_t *p;

	if (!buf_room(b, n))
	{
		b->oom = true;
		return NULL;
	}
	p = b->data + b->off + b->len;
	b->len += n;
	return p;
}

/* Append n bytes; false (and b->oom set) if they could not be. */
bool
buf_add(Buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (n == 0)
		return true;
	dst = buf_append_space(b, n);
	if (dst == NULL)
		return false;
	memcpy(dst, p, n);
	return true;
}

/* buf_move when the memory cannot just change hands: a copy. */
bool
buf_move_slow(Buf *src, Buf *dst, size_t n)
{
	bool ok;

	if (n > src->len)
		n = src->len;
	if (n == 0)
		return true;
	if (n == src->len && dst->len == 0)
	{
		buf_release(dst); /* memory without bytes: give src's instead */
		return buf_move(src, dst, n);
	}
	ok = buf_add(dst, buf_data(src), n);
	buf_drain(src, n);
	return ok;
}

/* Copy out and consume up to n bytes; returns how many. */
size_t
buf_remove(Buf *b, void *out, size_t n)
{
	if (n > b->len)
		n = b->len;
	if (n > 0)
		memcpy(out, buf_data(b), n);
	buf_drain(b, n);
	return n;
}

/*
 * Space at the end of b for a read of up to want bytes: *avail of them at
 * the pointer returned (at least a quarter of want, unless memory ran
 * out: NULL).  buf_commit counts what was read.
 */
uint8_t *
buf_reserve(Buf *b, size_t want, size_t *avail)
{
	size_t tail;

	if (b->data)
	{
		tail = b->cap - b->off - b->len;
		if (tail < want / 4 && !buf_room(b, want / 4))
			return NULL;
	}
	else if (!buf_alloc(b, want))
		return NULL;
	tail = b->cap - b->off - b->len;
	*avail = tail < want ? tail : want;
	return b->data + b->off + b->len;
}
