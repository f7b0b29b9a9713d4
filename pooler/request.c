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

/* A new entry at the tail; its fields other than kind/flags are zero. */
Request *
rq_push(RequestQueue *q, ReqKind kind, uint8_t flags)
{
	Request *r;

	if (q->count == q->cap)
	{
		uint32_t cap = q->cap ? q->cap * 2 : 16;
		Request *items = malloc(sizeof(Request) * cap);

		if (items == NULL)
			fatal("out of memory");
		/* unwrap the ring into the new array */
		for (uint32_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->cap = cap;
		q->head = 0;
	}
	r = &q->items[(q->head + q->count) % q->cap];
	memset(r, 0, sizeof(*r));
	r->kind = (uint8_t) kind;
	r->flags = flags;
	q->count++;
	return r;
}

Request *
rq_head(const RequestQueue *q)
{
	return q->count ? &q->items[q->head] : NULL;
}

/* The i-th entry from the head. */
Request *
rq_at(const RequestQueue *q, uint32_t i)
{
	return i < q->count ? &q->items[(q->head + i) % q->cap] : NULL;
}

void
rq_pop(RequestQueue *q)
{
	Request *r = rq_head(q);

	if (r == NULL)
		return;
	if (r->stmt)
		stmt_unref(r->stmt);
	free(r->name);
	q->head = (q->head + 1) % q->cap;
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
