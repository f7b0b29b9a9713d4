/*
 * session.h
 *		What a client's session looks like to the server it borrows:
 *		settings that must follow it, and state that pins it to a server.
 */
#ifndef APS_SESSION_H
#define APS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Words of a statement's text that decide what its command tag means.  The
 * first group may stand anywhere in the statement; the second is read by
 * position in SET, RESET, UNLISTEN, DEALLOCATE and PREPARE statements.
 */
#define KW_TEMP		   0x01 /* TEMP or TEMPORARY */
#define KW_HOLD		   0x02 /* WITH HOLD */
#define KW_ADVLOCK	   0x04 /* a session-level advisory lock function */
#define KW_UNLOCK_ALL  0x08 /* pg_advisory_unlock_all */
#define KW_CREATE_INTO 0x10 /* starts with CREATE, or has INTO */
#define KW_COMMIT_DROP 0x20 /* ON COMMIT DROP */

#define KW_LOCAL		   0x100  /* SET LOCAL */
#define KW_ALL			   0x200  /* RESET ALL */
#define KW_STAR			   0x400  /* UNLISTEN * */
#define KW_TRACKED		   0x800  /* SET of a tracked parameter (TIME ZONE) */
#define KW_TRANSACTION	   0x1000 /* SET TRANSACTION */
#define KW_CHARACTERISTICS 0x2000 /* SET SESSION CHARACTERISTICS */
#define KW_ROLE			   0x4000 /* SET ROLE, RESET ROLE */
#define KW_SESSION_AUTH	   0x8000 /* SET / RESET SESSION AUTHORIZATION */
#define KW_TO_DEFAULT	   0x10000 /* SET ROLE NONE, ... AUTHORIZATION DEFAULT */
#define KW_POOLER_DEALLOC  0x20000 /* DEALLOCATE of a pooler's "_aps_" name */
#define KW_POOLER_PREPARE  0x40000 /* PREPARE of a pooler's "_aps_" name */
#define KW_BACKSLASH                                                          \
	0x80000 /* a plain '...' literal holds a backslash: read again if \
			 * standard_conforming_strings is off */

/* Statements of a Query that name an "_aps_" statement: refused. */
#define KW_POOLER_NAME (KW_POOLER_DEALLOC | KW_POOLER_PREPARE)

/* Session state that pins a client to its server (transaction pooling). */
#define PIN_LISTEN	 0x01
#define PIN_PREPARE	 0x02
#define PIN_CURSOR	 0x04
#define PIN_TEMP	 0x08
#define PIN_SET		 0x10
#define PIN_ADVISORY 0x20
#define PIN_ROLE	 0x40 /* SET ROLE: RESET ALL leaves it */
#define PIN_AUTH	 0x80 /* SET SESSION AUTHORIZATION: the same */

/* What one CommandComplete does to the session. */
typedef struct TagEffect
{
	uint8_t pin;		 /* state created */
	uint8_t unpin;		 /* state gone */
	bool	dealloc_all; /* every prepared statement is gone */
	bool	reset;		 /* settings went back to their defaults */
} TagEffect;

/* A list of settings, names compared case-insensitively. */
typedef struct Settings
{
	int			 n;
	int			 cap;
	const char **names;	   /* interned (intern.h); one allocation ... */
	const char **values;   /* ... with names: values = names + cap */
	uint64_t	 fp;	   /* settings_fingerprint() */
	bool		 fp_valid; /* fp is up to date */
} Settings;

extern uint32_t session_keywords(const char *sql, bool escapes);
extern int		session_statement_keywords_full(const char *sql, bool escapes,
												uint32_t *out, int max);
extern int		session_statement_keywords(const char *sql, bool escapes,
										   uint32_t *out, int max);
extern void		session_tag_effect(const char *tag, uint32_t keywords,
								   TagEffect *out);
extern const char *session_pins_to_str(uint8_t pins, char *buf, size_t len);

extern const char *session_tracked_name(const char *name);
extern const char *settings_get(const Settings *s, const char *name);
extern void		settings_set(Settings *s, const char *name, const char *value);
extern void		settings_add(Settings *s, const char *name, const char *value);
extern void		settings_reserve(Settings *s, int cap);
extern void		settings_remove_untracked(Settings *s);
extern void		settings_free(Settings *s);
extern char	   *session_sync_sql(const Settings *want, Settings *have);
extern uint64_t settings_fingerprint_compute(Settings *s);

/* A hash of the settings, kept until they change (every attach compares). */
static inline uint64_t
settings_fingerprint(Settings *s)
{
	return s->fp_valid ? s->fp : settings_fingerprint_compute(s);
}

#endif /* APS_SESSION_H */
