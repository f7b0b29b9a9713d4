/*
 * test_session.c
 *		Unit tests of session-state keywords and tags, settings sync SQL
 *		(pooler/session.c), prepared-statement bookkeeping
 *		(pooler/prepared.c) and the request queue (pooler/request.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepared.h"
#include "request.h"
#include "intern.h"
#include "session.h"

#include "check.h"

/* session_keywords with standard_conforming_strings on */
static uint32_t
kw(const char *sql)
{
	return session_keywords(sql, false) & ~(uint32_t) KW_BACKSLASH;
}

static void
test_keywords(void)
{
	CHECK(kw("CREATE TEMP TABLE t (a int)") == (KW_TEMP | KW_CREATE_INTO));
	CHECK(kw("select * from t") == 0);
	CHECK(kw("UNLISTEN *") == KW_STAR);
	CHECK(kw("unlisten chan") == 0);
	/* words inside literals, quoted names and comments do not count */
	CHECK(kw("select 'temp', \"hold\" -- local\n") == 0);
	CHECK(kw("select /* temp */ $$temp$$, $x$ hold $x$") == 0);
	CHECK(kw("SELECT temperature FROM t") == 0);
	CHECK(kw("select pg_advisory_lock(1)") == KW_ADVLOCK);
	CHECK(kw("select pg_advisory_xact_lock(1)") == 0);
	CHECK(kw("SELECT pg_advisory_unlock_all()") == KW_UNLOCK_ALL);
	CHECK(kw("declare c cursor with hold for select 1") == KW_HOLD);
	CHECK(kw("set local work_mem = '1MB'") == KW_LOCAL);
	/* CREATE counts only as the first word of a statement */
	CHECK(kw("select 1; create table x()") == KW_CREATE_INTO);
	CHECK(kw("select create_x()") == 0);
	CHECK(kw("'unterminated") == 0);
}

/* SET and RESET are read by position: what they set, to what */
static void
test_set_reset(void)
{
	CHECK(kw("SET work_mem = '9MB'") == 0);
	/* LOCAL as a setting's prefix is no SET LOCAL */
	CHECK(kw("SET local.x = 1") == 0);
	CHECK(kw("SET search_path = local") == 0);
	CHECK(kw("SET LOCAL ROLE alice") == (KW_LOCAL | KW_ROLE));
	CHECK(kw("SET ROLE alice") == KW_ROLE);
	CHECK(kw("set session role alice") == KW_ROLE);
	CHECK(kw("SET \"role\" = 'alice'") == KW_ROLE);
	CHECK(kw("SET role TO alice") == KW_ROLE);
	CHECK(kw("SET my.role = 'x'") == 0);
	CHECK(kw("SET ROLE NONE") == (KW_ROLE | KW_TO_DEFAULT));
	CHECK(kw("SET ROLE 'none'") == (KW_ROLE | KW_TO_DEFAULT));
	CHECK(kw("SET role = DEFAULT") == (KW_ROLE | KW_TO_DEFAULT));
	CHECK(kw("SET ROLE 'NONE'") == KW_ROLE); /* a role named NONE */
	CHECK(kw("SET SESSION AUTHORIZATION bob") == KW_SESSION_AUTH);
	CHECK(kw("SET SESSION SESSION AUTHORIZATION bob") == KW_SESSION_AUTH);
	CHECK(kw("SET LOCAL SESSION AUTHORIZATION bob") ==
		  (KW_LOCAL | KW_SESSION_AUTH));
	CHECK(kw("SET SESSION AUTHORIZATION DEFAULT") ==
		  (KW_SESSION_AUTH | KW_TO_DEFAULT));
	CHECK(kw("set session_authorization to default") ==
		  (KW_SESSION_AUTH | KW_TO_DEFAULT));
	CHECK(kw("SET TimeZone = 'UTC'") == KW_TRACKED);
	CHECK(kw("SET \"timezone\" = 'UTC'") == KW_TRACKED);
	CHECK(kw("set time zone local") == KW_TRACKED);
	CHECK(kw("SET NAMES 'UTF8'") == KW_TRACKED);
	/* a tracked name as the value is not SET of it */
	CHECK(kw("SET search_path = timezone") == 0);
	CHECK(kw("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE") ==
		  KW_TRANSACTION);
	CHECK(kw("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY") ==
		  KW_CHARACTERISTICS);
	CHECK(kw("RESET ALL") == KW_ALL);
	CHECK(kw("/* x */ reset all") == KW_ALL);
	CHECK(kw("RESET \"all\"") == 0);
	CHECK(kw("RESET ROLE") == KW_ROLE);
	CHECK(kw("RESET SESSION AUTHORIZATION") == KW_SESSION_AUTH);
	CHECK(kw("RESET session_authorization") == KW_SESSION_AUTH);
	CHECK(kw("RESET my.role") == 0);
	CHECK(kw("RESET work_mem") == 0);
}

/* DEALLOCATE or PREPARE of an "_aps_" name, however it is written */
static void
test_pooler_names(void)
{
	CHECK(kw("DEALLOCATE _aps_1") == KW_POOLER_DEALLOC);
	CHECK(kw("deallocate prepare _APS_1") == KW_POOLER_DEALLOC);
	CHECK(kw("/* x */ DEALLOCATE _aps_1") == KW_POOLER_DEALLOC);
	CHECK(kw("/* a /* nested */ comment */ DEALLOCATE _aps_1") ==
		  KW_POOLER_DEALLOC);
	CHECK(kw("SELECT 1; DEALLOCATE _aps_1") == KW_POOLER_DEALLOC);
	CHECK(kw("-- x\nDEALLOCATE\n\t\"_aps_1\"") == KW_POOLER_DEALLOC);
	CHECK(kw("DEALLOCATE U&\"\\005faps_1\"") == KW_POOLER_DEALLOC);
	CHECK(kw("DEALLOCATE U&\"\\+00005faps_1\"") == KW_POOLER_DEALLOC);
	CHECK(kw("DEALLOCATE U&\"!005faps_1\" UESCAPE '!'") == KW_POOLER_DEALLOC);
	CHECK(kw("DEALLOCATE U&\"mine\"") == 0);
	CHECK(kw("PREPARE _aps_7 AS SELECT 1") == KW_POOLER_PREPARE);
	CHECK(kw("DEALLOCATE \"_APS_1\"") == 0); /* another name */
	CHECK(kw("DEALLOCATE mine") == 0);
	CHECK(kw("DEALLOCATE ALL") == 0);
	CHECK(kw("SELECT '_aps_1'; EXECUTE _aps_1") == 0);
	/* statements PostgreSQL sees may not hide inside what looks quoted */
	CHECK(kw("SELECT E'\\''; DEALLOCATE _aps_1; -- '") == KW_POOLER_DEALLOC);
	CHECK(kw("/* /* */ ' */ DEALLOCATE _aps_1; -- '") == KW_POOLER_DEALLOC);
	CHECK(kw("SELECT $\xc3\xa9$'$\xc3\xa9$; DEALLOCATE _aps_1; --'") ==
		  KW_POOLER_DEALLOC);
	CHECK(
		kw("SELECT $aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaa$ x $aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaa$; DEALLOCATE _aps_1") ==
		KW_POOLER_DEALLOC);
	/* with standard_conforming_strings off, '\'' is one literal */
	CHECK(session_keywords("SELECT '\\''; DEALLOCATE _aps_1; -- '", false) ==
		  KW_BACKSLASH);
	CHECK(session_keywords("SELECT '\\''; DEALLOCATE _aps_1; -- '", true) ==
		  KW_POOLER_DEALLOC);
}

static void
test_statements_split(void)
{
	uint32_t k[4];

	/* one mask per statement that has words; empty ones do not count */
	CHECK(session_statement_keywords(
			  "SET work_mem = '9MB'; SET application_name "
			  "= 'web';;",
			  false, k, 4) == 2);
	CHECK(k[0] == 0 && k[1] == KW_TRACKED);
	/* semicolons in literals and dollar quotes do not split */
	CHECK(session_statement_keywords("select ';'; do $$ begin; end $$", false,
									 k, 4) == 2);
	/* past max, the rest is counted into the last */
	CHECK(session_statement_keywords("select 1; select 2; create temp table "
									 "t()",
									 false, k, 2) == 2);
	CHECK(k[1] == (KW_TEMP | KW_CREATE_INTO));
	CHECK(session_statement_keywords("", false, k, 4) == 0);
	CHECK(session_statement_keywords(" ; -- x\n", false, k, 4) == 0);
}

/*
 * Plain statements (no quotes, comments, dollar quotes, inner semicolons)
 * take a shorter loop: it must say what the full scan says.
 */
static void
test_plain_path(void)
{
	static const char *const texts[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
		"UPDATE pgbench_accounts SET abalance = abalance + -4021 WHERE aid = 1",
		"select pg_advisory_lock(1)",
		"SELECT pg_try_advisory_lock_shared(1, 2)",
		"select pg_advisory_unlock_all()",
		"SELECT * INTO TEMP t FROM x",
		"select * into temporary t from x",
		"create temp table t (a int) on commit drop",
		"CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS",
		"create temp table t (a int) on  commit\tdrop;  ",
		"create temp table t (a int) on commit (drop)",
		"CREATE TABLE pg_temp.t (a int)",
		"declare c cursor with hold for select 1",
		"insert into t select 1",
		"create index on t (a)",
		"SET x = 1",
		"reset all",
		"unlisten *",
		"listen x",
		"  ",
		"; ",
		"select 1;  \n",
		"select 1;select 2",
		"select $1::int + $2",
		"select a$b, $1 from t",
		"select 1.5e3, 2.x, 3create",
		"select 1 - 2 / 3",
		"select 1 -- x",
		"select /* x */ 1",
		"select 'on commit drop'",
		"select \"temp\" from t",
		"select E'\\'",
		"SELECT $$ x $$",
		"with t as (select 1) select * from t",
		"select \xc3\xa9temp, temp\xc3\xa9 from t",
		"(select 1)",
		"1 temp",
	};
	uint32_t k[4];
	uint32_t full[4];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
	{
		for (int esc = 0; esc < 2; esc++)
		{
			int n = session_statement_keywords(texts[i], esc, k, 4);
			int m = session_statement_keywords_full(texts[i], esc, full, 4);

			CHECK(n == m);
			if (n != m || memcmp(k, full, sizeof(uint32_t) * (size_t) n) != 0)
			{
				printf("plain path differs for \"%s\"\n", texts[i]);
				CHECK(false);
			}
		}
	}
	/* what the plain path found, checked against the bits themselves */
	CHECK(session_statement_keywords("select pg_advisory_lock(1)", false, k,
									 4) == 1 &&
		  k[0] == KW_ADVLOCK);
	CHECK(session_statement_keywords("create temp table t (a int) on commit "
									 "drop",
									 false, k, 4) == 1 &&
		  k[0] == (KW_CREATE_INTO | KW_TEMP | KW_COMMIT_DROP));
	CHECK(session_statement_keywords("SELECT 1 FROM t", false, k, 4) == 1 &&
		  k[0] == 0);
}

static void
test_tags(void)
{
	TagEffect e;

	session_tag_effect("LISTEN", 0, &e);
	CHECK(e.pin == PIN_LISTEN);
	session_tag_effect("UNLISTEN", 0, &e);
	CHECK(e.unpin == 0);
	session_tag_effect("UNLISTEN", KW_STAR, &e);
	CHECK(e.unpin == PIN_LISTEN);
	session_tag_effect("SET", 0, &e);
	CHECK(e.pin == PIN_SET);
	session_tag_effect("SET", KW_LOCAL, &e);
	CHECK(e.pin == 0);
	session_tag_effect("SET", KW_TRACKED, &e);
	CHECK(e.pin == 0);
	/* SET TRANSACTION ends with it; SET SESSION CHARACTERISTICS does not */
	session_tag_effect("SET",
					   kw("SET TRANSACTION ISOLATION LEVEL "
						  "SERIALIZABLE"),
					   &e);
	CHECK(e.pin == 0);
	session_tag_effect("SET",
					   kw("SET SESSION CHARACTERISTICS AS "
						  "TRANSACTION READ ONLY"),
					   &e);
	CHECK(e.pin == PIN_SET);
	/* the identity has pins of its own, which RESET ALL leaves */
	session_tag_effect("SET", kw("SET ROLE alice"), &e);
	CHECK(e.pin == PIN_ROLE && e.unpin == 0);
	session_tag_effect("SET", kw("SET LOCAL ROLE alice"), &e);
	CHECK(e.pin == 0 && e.unpin == 0);
	session_tag_effect("SET", kw("SET ROLE NONE"), &e);
	CHECK(e.pin == 0 && e.unpin == PIN_ROLE);
	session_tag_effect("SET", kw("SET SESSION AUTHORIZATION bob"), &e);
	CHECK(e.pin == PIN_AUTH);
	session_tag_effect("SET", kw("SET SESSION AUTHORIZATION DEFAULT"), &e);
	CHECK(e.pin == 0 && e.unpin == PIN_AUTH);
	session_tag_effect("RESET", kw("RESET ALL"), &e);
	CHECK(e.unpin == PIN_SET && e.reset);
	session_tag_effect("RESET", kw("RESET ROLE"), &e);
	CHECK(e.unpin == PIN_ROLE);
	session_tag_effect("RESET", kw("RESET SESSION AUTHORIZATION"), &e);
	CHECK(e.unpin == PIN_AUTH);
	session_tag_effect("RESET", kw("RESET work_mem"), &e);
	CHECK(e.unpin == 0 && e.reset);
	/* a temporary table by schema, and one that ends with the transaction */
	session_tag_effect("CREATE TABLE", kw("create table pg_temp.x (a int)"),
					   &e);
	CHECK(e.pin == PIN_TEMP);
	session_tag_effect("CREATE TABLE",
					   kw("CREATE TEMP TABLE x (a int) ON COMMIT DROP"), &e);
	CHECK(e.pin == 0);
	session_tag_effect("CREATE TABLE",
					   kw("CREATE TEMP TABLE x (a int) ON COMMIT DELETE ROWS"),
					   &e);
	CHECK(e.pin == PIN_TEMP);
	session_tag_effect("CREATE TABLE", KW_TEMP, &e);
	CHECK(e.pin == PIN_TEMP);
	session_tag_effect("CREATE TABLE", 0, &e);
	CHECK(e.pin == 0);
	session_tag_effect("SELECT 3", KW_TEMP | KW_CREATE_INTO, &e);
	CHECK(e.pin == PIN_TEMP);
	session_tag_effect("SELECT 3", KW_TEMP, &e);
	CHECK(e.pin == 0);
	session_tag_effect("SELECT 1", KW_ADVLOCK, &e);
	CHECK(e.pin == PIN_ADVISORY);
	session_tag_effect("DISCARD ALL", 0, &e);
	CHECK(e.unpin == 0xff && e.dealloc_all && e.reset);
	session_tag_effect("DEALLOCATE ALL", 0, &e);
	CHECK(e.unpin == PIN_PREPARE && e.dealloc_all);
	session_tag_effect("DECLARE CURSOR", 0, &e);
	CHECK(e.pin == 0);
	session_tag_effect("DECLARE CURSOR", KW_HOLD, &e);
	CHECK(e.pin == PIN_CURSOR);
	session_tag_effect("PREPARE", 0, &e);
	CHECK(e.pin == PIN_PREPARE);
}

static void
test_sync_sql(void)
{
	Settings want = {0};
	Settings have = {0};
	char	*sql;

	settings_set(&have, "TimeZone", "UTC");
	settings_set(&have, "DateStyle", "ISO, MDY");
	settings_set(&have, "work_mem", "4MB"); /* another client's */
	settings_set(&want, "TimeZone", "Europe/Paris");
	settings_set(&want, "datestyle", "ISO, MDY");
	settings_set(&want, "search_path", "a, b'c\\d");
	sql = session_sync_sql(&want, &have);
	CHECK(sql != NULL);
	CHECK(strcmp(sql, "SELECT pg_catalog.set_config(E'TimeZone', "
					  "E'Europe/Paris', false), "
					  "pg_catalog.set_config(E'search_path', "
					  "E'a, b''c\\\\d', false);RESET \"work_mem\";") == 0);
	free(sql);
	/* now they agree, and their fingerprints too, in any order */
	CHECK(session_sync_sql(&want, &have) == NULL);
	CHECK(settings_fingerprint(&want) == settings_fingerprint(&have));
	settings_set(&have, "TimeZone", "UTC");
	CHECK(settings_fingerprint(&want) != settings_fingerprint(&have));
	settings_set(&have, "timezone", "Europe/Paris");
	CHECK(settings_fingerprint(&want) == settings_fingerprint(&have));
	CHECK(strcmp(settings_get(&have, "TIMEZONE"), "Europe/Paris") == 0);
	settings_remove_untracked(&have);
	CHECK(settings_get(&have, "search_path") == NULL &&
		  settings_get(&have, "TimeZone") != NULL);
	settings_free(&want);
	settings_free(&have);
}

/* Settings share their strings, and give them back with the last user. */
static void
test_settings_shared(void)
{
	size_t	 base = intern_count();
	Settings a = {0};
	Settings b = {0};

	for (int i = 0; i < 20; i++) /* grows past its first block */
	{
		char name[32];

		snprintf(name, sizeof(name), "app.s%d", i);
		settings_set(&a, name, "v");
		settings_set(&b, name, "v");
	}
	CHECK(a.n == 20 && b.n == 20);
	CHECK(settings_get(&a, "app.s7") == settings_get(&b, "app.s7"));
	CHECK(intern_count() == base + 21); /* 20 names, one value */
	settings_set(&a, "app.s7", "w");
	CHECK(strcmp(settings_get(&a, "app.s7"), "w") == 0);
	CHECK(strcmp(settings_get(&b, "app.s7"), "v") == 0);
	CHECK(strcmp(settings_get(&a, "APP.S19"), "v") == 0);
	CHECK(intern_count() == base + 22);
	settings_free(&a);
	CHECK(intern_count() == base + 21);
	settings_free(&b);
	CHECK(intern_count() == base);
}

/*
 * The login path: strings interned once (as a pool keeps the server's
 * parameters) are added by reference, in the room reserved for them, and
 * given back like any other; names are still found in any case, and the
 * first-letter filter lets through what strcasecmp must decide.
 */
static void
test_settings_add(void)
{
	size_t		base = intern_count();
	const char *tz = intern_get("TimeZone");
	const char *utc = intern_get("UTC");
	const char *at = intern_get("@x"); /* '@' | 0x20 is '`' */
	Settings	s = {0};

	CHECK(intern_count() == base + 3);
	settings_set(&s, "application_name", "psql"); /* from start-up */
	settings_reserve(&s, s.n + 2);
	CHECK(s.cap == 3);
	settings_add(&s, tz, utc);
	settings_add(&s, at, utc);
	CHECK(s.n == 3 && s.cap == 3); /* no growth past the reservation */
	CHECK(settings_get(&s, "timezone") == utc);
	CHECK(settings_get(&s, "TIMEZONE") == utc);
	CHECK(settings_get(&s, "@x") == utc);
	CHECK(settings_get(&s, "`x") == NULL);
	CHECK(settings_get(&s, "@X") == utc);
	CHECK(settings_get(&s, "") == NULL);
	CHECK(settings_get(&s, "Application_Name") != NULL);
	settings_reserve(&s, 2); /* never shrinks */
	CHECK(s.cap == 3 && s.n == 3);
	CHECK(session_tracked_name("timezone") != NULL &&
		  strcmp(session_tracked_name("timezone"), "TimeZone") == 0);
	CHECK(session_tracked_name("`imezone") == NULL);
	CHECK(session_tracked_name("") == NULL);
	/* the caller's references and s's are separate */
	intern_put(tz);
	intern_put(utc);
	intern_put(at);
	CHECK(intern_count() == base + 5); /* s still holds them */
	settings_free(&s);
	CHECK(intern_count() == base);
}

static void
test_deallocate(void)
{
	char buf[64];

	CHECK(stmt_parse_deallocate("DEALLOCATE _pg3_0", buf, sizeof(buf)) &&
		  strcmp(buf, "_pg3_0") == 0);
	CHECK(stmt_parse_deallocate("  deallocate prepare Foo ;  ", buf,
								sizeof(buf)) &&
		  strcmp(buf, "foo") == 0);
	CHECK(stmt_parse_deallocate("DEALLOCATE \"My \"\"S\"", buf, sizeof(buf)) &&
		  strcmp(buf, "My \"S") == 0);
	CHECK(!stmt_parse_deallocate("DEALLOCATE ALL", buf, sizeof(buf)));
	CHECK(!stmt_parse_deallocate("DEALLOCATE a; SELECT 1", buf, sizeof(buf)));
	CHECK(!stmt_parse_deallocate("DEALLOCATEx a", buf, sizeof(buf)));
	CHECK(!stmt_parse_deallocate("DEALLOCATE \"\"", buf, sizeof(buf)));
	CHECK(!stmt_parse_deallocate("DEALLOCATE", buf, sizeof(buf)));
}

static void
test_statements(void)
{
	static const uint8_t body_a[] = "select 1\0\0";
	static const uint8_t body_b[] = "select 2\0\0";
	Statement			*a = stmt_intern(body_a, sizeof(body_a) - 1, "");
	Statement			*a2 = stmt_intern(body_a, sizeof(body_a) - 1, "");
	Statement			*b = stmt_intern(body_b, sizeof(body_b) - 1, "");
	/* the same text under another search_path is another statement */
	Statement *a3 = stmt_intern(body_a, sizeof(body_a) - 1, "sb");
	StmtMap	   map = {0};
	StmtCache  cache;
	char	   name[STMT_NAME_LEN];

	CHECK(a == a2 && a != b && a != a3 && a->refs == 2 && stmt_count() == 3);
	stmt_unref(a3);
	stmt_server_name(a, name);
	{
		char want[STMT_NAME_LEN];

		snprintf(want, sizeof(want), "_aps_%llu", (unsigned long long) a->id);
		CHECK(strcmp(name, want) == 0);
	}
	{
		Statement big = {.id = UINT64_MAX};

		stmt_server_name(&big, name);
		CHECK(strcmp(name, "_aps_18446744073709551615") == 0);
		big.id = 0;
		stmt_server_name(&big, name);
		CHECK(strcmp(name, "_aps_0") == 0);
	}
	stmt_map_put(&map, "x", a);
	stmt_map_put(&map, "y", b);
	CHECK(stmt_map_get(&map, "x") == a && stmt_map_get(&map, "z") == NULL);
	stmt_cache_init(&cache);
	stmt_cache_add(&cache, a);
	stmt_cache_add(&cache, b);
	CHECK(stmt_cache_oldest(&cache) == a);
	CHECK(stmt_cache_get(&cache, a) != NULL); /* a is now the newest */
	CHECK(stmt_cache_oldest(&cache) == b);
	stmt_cache_remove(&cache, b);
	CHECK(stmt_cache_get(&cache, b) == NULL && cache.n == 1);
	/* many names: the tables grow */
	for (int i = 0; i < 1000; i++)
	{
		char n[16];

		snprintf(n, sizeof(n), "s%d", i);
		stmt_map_put(&map, n, b);
	}
	CHECK(map.n == 1002 && stmt_map_get(&map, "s999") == b);
	CHECK(stmt_map_remove(&map, "s5") && !stmt_map_remove(&map, "s5"));
	stmt_map_clear(&map);
	stmt_cache_clear(&cache);
	stmt_unref(a);
	stmt_unref(a2);
	stmt_unref(b);
	CHECK(stmt_count() == 0);
}

/*
 * The request queue: first in, first out across the ring's wrap and its
 * growth; an emptied queue starts again at its first entry, so that a
 * server answering one request per transaction keeps using one entry.
 */
static void
test_request_queue(void)
{
	RequestQueue q;
	Request		*first;

	memset(&q, 0, sizeof(q));
	first = rq_push(&q, RQ_QUERY, 0);
	CHECK(first == &q.items[0] && rq_head(&q) == first);
	rq_pop(&q);
	CHECK(rq_empty(&q));
	for (int i = 0; i < 40; i++)
	{
		CHECK(rq_push(&q, RQ_QUERY, 0) == first);
		rq_pop(&q);
	}

	/* wrap: pop some, push past the end of the ring */
	for (int i = 0; i < 10; i++)
		rq_push(&q, RQ_PARSE, 0)->keywords = (uint32_t) i;
	for (int i = 0; i < 6; i++)
		rq_pop(&q);
	for (int i = 10; i < 20; i++)
		rq_push(&q, RQ_BIND, 0)->keywords = (uint32_t) i;
	CHECK(q.count == 14 && q.cap == 16);
	/* and grow while wrapped */
	for (int i = 20; i < 30; i++)
		rq_push(&q, RQ_SYNC, 0)->keywords = (uint32_t) i;
	CHECK(q.count == 24 && q.cap == 32);
	for (int i = 6; i < 30; i++)
	{
		CHECK(rq_head(&q) != NULL && rq_head(&q)->keywords == (uint32_t) i);
		rq_pop(&q);
	}
	CHECK(rq_empty(&q) && rq_head(&q) == NULL);
	CHECK(rq_push(&q, RQ_QUERY, 0) == &q.items[0]);
	rq_clear(&q);
	CHECK(q.items == NULL && q.count == 0);
}

int
main(void)
{
	test_keywords();
	test_set_reset();
	test_pooler_names();
	test_statements_split();
	test_plain_path();
	test_tags();
	test_sync_sql();
	test_settings_shared();
	test_settings_add();
	test_deallocate();
	test_statements();
	test_request_queue();
	printf("test_session: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
