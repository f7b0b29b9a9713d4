/*
 * prepared.h
 *		Named prepared statements in transaction pooling: what each client
 *		prepared, and what each server has prepared for the pool.
 */
#ifndef APS_PREPARED_H
#define APS_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/*
 * One statement (query text, parameter count and types), shared by every
 * client that prepared it under whatever name, and by every server cache
 * that holds it.  On servers it is always called "_aps_<id>".
 */
typedef struct Statement
{
	uint64_t		  id;
	uint32_t		  hash;
	int				  refs;		/* client names, server caches, requests */
	uint32_t		  keywords; /* session_keywords() of the query text */
	size_t			  bodylen;
	char			 *context; /* search_path it is planned with */
	struct Statement *next;	   /* hash chain of the global table */
	uint8_t			  body[];  /* as in the Parse message, after the name */
} Statement;

#define STMT_NAME_LEN 32

/* A client's name for a statement. */
typedef struct ClientStmt
{
	char			  *name;
	Statement		  *stmt;
	struct ClientStmt *next;
} ClientStmt;

typedef struct StmtMap
{
	ClientStmt **buckets;
	uint32_t	 nbuckets;
	uint32_t	 n;
} StmtMap;

/* A statement a server has prepared (or is being sent). */
typedef struct CachedStmt
{
	Statement *stmt;
	bool	   confirmed;		 /* its ParseComplete came */
	uint32_t   seg;				 /* the server's Sync count when it was sent */
	TAILQ_ENTRY(CachedStmt) lru; /* most recently used first */
	struct CachedStmt *next;	 /* hash chain */
} CachedStmt;

TAILQ_HEAD(CachedStmtList, CachedStmt);

typedef struct StmtCache
{
	CachedStmt			**buckets;
	uint32_t			  nbuckets;
	uint32_t			  n;
	struct CachedStmtList lru;
} StmtCache;

extern Statement *stmt_intern(const uint8_t *body, size_t bodylen,
							  const char *context);
extern void		  stmt_ref(Statement *st);
extern void		  stmt_unref(Statement *st);
extern void		  stmt_server_name(const Statement *st, char *buf);
extern uint32_t	  stmt_count(void);
extern bool stmt_parse_deallocate(const char *sql, char *buf, size_t buflen);

extern Statement *stmt_map_get(const StmtMap *m, const char *name);
extern void		  stmt_map_put(StmtMap *m, const char *name, Statement *st);
extern bool		  stmt_map_remove(StmtMap *m, const char *name);
extern void		  stmt_map_clear(StmtMap *m);

extern void		   stmt_cache_init(StmtCache *c);
extern CachedStmt *stmt_cache_get(StmtCache *c, const Statement *st);
extern CachedStmt *stmt_cache_add(StmtCache *c, Statement *st);
extern void		   stmt_cache_remove(StmtCache *c, const Statement *st);
extern Statement  *stmt_cache_oldest(const StmtCache *c);
extern void		   stmt_cache_clear(StmtCache *c);

#endif /* APS_PREPARED_H */
