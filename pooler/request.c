/*
 * request.c
 *		The queue of requests a server has not answered yet.
 *
 * Every message a client (or the pooler) sends that the server will
 * answer gets an entry, in order; each answer the server sends completes
 * the entry at the head (see server.c for which message completes which).
 * Some entries are answered by the pooler itself (RQ_SYNTH): their answer
 * is written to the client when they reach the head, so that it comes in
 * the right place among the server's answers.  A server goes back to the
 * pool only when its queue is empty.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "prepared.h"
#include "request.h"
#include "session.h"

/* A new entry at the tail; its fields other than kind/flags are zero. */
Request *
rq_push(RequestQueue *q, ReqKind kind, uint8_t flags)
{
	Request *r;

	if (q->count == q->cap)
	{
		/* a power of two: positions wrap with a mask */
		uint32_t cap = q->cap ? q->cap * 2 : 16;
		Request *items = malloc(sizeof(Request) * cap);

		if (items == NULL)
			fatal("out of memory");
		/* unwrap the ring into the new array */
		for (uint32_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) & (q->cap - 1)];
		free(q->items);
		q->items = items;
		q->cap = cap;
		q->head = 0;
	}
	r = &q->items[(q->head + q->count) & (q->cap - 1)];
	memset(r, 0, sizeof(*r));
	r->kind = (uint8_t) kind;
	r->flags = flags;
	q->count++;
	return r;
}

/* The i-th entry from the head. */
Request *
rq_at(const RequestQueue *q, uint32_t i)
{
	return i < q->count ? &q->items[(q->head + i) & (q->cap - 1)] : NULL;
}

void
rq_pop(RequestQueue *q)
{
	Request *r = rq_head(q);

	if (r == NULL)
		return;
	if (r->stmt)
		stmt_unref(r->stmt);
	if (r->name)
		free(r->name);
	if (r->more)
		free(r->more);
	/*
	 * An emptied queue starts again at the first entry: a server answers
	 * one request per transaction in the common case, and a ring walking
	 * on would touch a new cache line every few transactions (16 entries of
	 * every server's queue, well beyond the first-level cache over 20
	 * servers; docs/benchmarks.md, eighth pass).
	 */
	q->count--;
	q->head = q->count == 0 ? 0 : (q->head + 1) & (q->cap - 1);
}

/* Take the i-th entry (not the head) out; those after it move up. */
void
rq_remove_at(RequestQueue *q, uint32_t i)
{
	Request *r = rq_at(q, i);

	if (r == NULL || i == 0)
		return;
	if (r->stmt)
		stmt_unref(r->stmt);
	free(r->name);
	free(r->more);
	for (uint32_t j = i; j + 1 < q->count; j++)
		q->items[(q->head + j) & (q->cap - 1)] =
			q->items[(q->head + j + 1) & (q->cap - 1)];
	q->count--;
}

void
rq_clear(RequestQueue *q)
{
	while (q->count)
		rq_pop(q);
	free(q->items);
	memset(q, 0, sizeof(*q));
}

/* Does an error answering r make the server skip to the next Sync? */
bool
rq_is_extended(const Request *r)
{
	return r->kind <= RQ_CLOSE;
}

/* A Query's keywords, kw[i] for its i-th statement (see session.c). */
void
rq_set_keywords(Request *r, const uint32_t *kw, int n)
{
	r->keywords = n > 0 ? kw[0] : 0;
	if (n > 1)
	{
		r->more = malloc(sizeof(uint32_t) * (size_t) n);
		if (r->more == NULL)
			fatal("out of memory");
		memcpy(r->more, kw, sizeof(uint32_t) * (size_t) n);
		r->nmore = (uint8_t) n;
	}
}

/* The keywords of the statement whose CommandComplete has come. */
uint32_t
rq_next_keywords(Request *r)
{
	uint32_t kw;

	if (r->more == NULL)
		return r->keywords;
	kw = r->more[r->next < r->nmore ? r->next : r->nmore - 1];
	if (r->next < 255)
		r->next++;
	return kw;
}
