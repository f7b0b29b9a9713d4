/*
 * request.h
 *		The queue of requests a server has not answered yet.
 */
#ifndef APS_REQUEST_H
#define APS_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

struct Statement;

typedef enum ReqKind
{
	/* extended protocol: after an error, the server skips them to Sync */
	RQ_PARSE,	 /* answered by ParseComplete */
	RQ_BIND,	 /* BindComplete */
	RQ_DESCRIBE, /* [ParameterDescription] RowDescription or NoData */
	RQ_EXECUTE,	 /* CommandComplete, EmptyQuery or PortalSuspended */
	RQ_CLOSE,	 /* CloseComplete */
	/* answered by ReadyForQuery */
	RQ_SYNC,
	RQ_QUERY,
	RQ_FUNCTION,
	/* answered by the pooler itself, in turn */
	RQ_SYNTH
} ReqKind;

/* What the pooler answers for an RQ_SYNTH request. */
typedef enum SynthKind
{
	SY_PARSE_COMPLETE, /* the server already has the statement */
	SY_CLOSE_COMPLETE, /* the client forgot a name */
	SY_ERROR,		   /* an error (sqlstate, message in name) */
	SY_DEALLOCATE	   /* DEALLOCATE of a protocol-level name */
} SynthKind;

#define REQ_HIDDEN		   0x01 /* the pooler's own: answers not passed on */
#define REQ_HIDE_ERROR	   0x02 /* its error is not passed on either */
#define REQ_SETUP		   0x04 /* settings before the client's transaction */
#define REQ_CLIENT_NAME	   0x08 /* a client's named Parse (name is set) */
#define REQ_RETAG		   0x10 /* Execute of a DEALLOCATE we replaced */
#define REQ_USES_STMT	   0x20 /* Bind/Describe of stmt (no cache change) */
#define REQ_COPY_END_AFTER 0x40 /* the client ended a COPY after this one */

typedef struct Request
{
	uint8_t			  kind;		   /* ReqKind */
	uint8_t			  flags;	   /* REQ_* */
	uint32_t		  keywords;	   /* session_keywords() of Query/Execute */
	uint32_t		 *more;		   /* a Query of several statements: each's */
	uint8_t			  nmore;	   /* entries in more */
	uint8_t			  next;		   /* the next statement's CommandComplete */
	uint8_t			  synth;	   /* SynthKind */
	struct Statement *stmt;		   /* Parse: the statement prepared */
	char			 *name;		   /* the client's statement name */
	char			  sqlstate[6]; /* SY_ERROR */
} Request;

typedef struct RequestQueue
{
	Request *items;
	uint32_t head;
	uint32_t count;
	uint32_t cap;
} RequestQueue;

extern Request *rq_push(RequestQueue *q, ReqKind kind, uint8_t flags);
extern Request *rq_at(const RequestQueue *q, uint32_t i);
extern void		rq_pop(RequestQueue *q);
extern void		rq_remove_at(RequestQueue *q, uint32_t i);
extern void		rq_clear(RequestQueue *q);
extern bool		rq_is_extended(const Request *r);
extern void		rq_set_keywords(Request *r, const uint32_t *kw, int n);
extern uint32_t rq_next_keywords(Request *r);

/* The oldest request not yet answered, or NULL. */
static inline Request *
rq_head(const RequestQueue *q)
{
	return q->count ? &q->items[q->head] : NULL;
}

static inline bool
rq_empty(const RequestQueue *q)
{
	return q->count == 0;
}

#endif /* APS_REQUEST_H */
