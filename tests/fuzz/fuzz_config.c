/*
 * fuzz_config.c
 *		libFuzzer target: the configuration file parser, pooler/config.c
 *		(inih does the lexing).
 *
 * The input is a whole configuration file, read from memory through
 * config_load_stream as config_load reads a file.  A file that loads must
 * give values within each key's bounds and [databases] entries with at
 * least one host and a port per host; and its [pooler] keys, written back
 * as SHOW CONFIG describes them, must load again to the same description
 * (a value the parser accepts but cannot give back, or gives back as
 * something else, is a bug).  A file that does not load must say why and
 * leave nothing behind.  LeakSanitizer checks both paths free everything.
 * (Keys that name files are read as config_load reads them: a fuzzer that
 * names a FIFO would hang here, and libFuzzer would report it.)
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

#include "fuzz.h"

/* http_metrics_databases names [databases] entries, which are not written
 * back: it is left out of the round trip. */
static bool
round_trips(const char *key)
{
	return strcmp(key, "http_metrics_databases") != 0;
}

static void
check_loaded(const Config *cfg)
{
	static const Config zero;
	const char		   *key;
	char				value[1024];
	bool				reloadable;
	char			   *text = NULL;
	size_t				textlen = 0;
	FILE			   *out;
	FILE			   *in;
	Config				again;
	char				err[700];

	FUZZ_CHECK(cfg->pool_size >= 1 && cfg->pool_size <= 100000);
	FUZZ_CHECK(cfg->max_overflow >= -1 && cfg->max_overflow <= 100000);
	FUZZ_CHECK(cfg->pool_timeout >= 0.001 && cfg->pool_timeout <= 86400);
	FUZZ_CHECK(cfg->pool_recycle == -1 ||
			   (cfg->pool_recycle >= -1 && cfg->pool_recycle <= 1e9));
	FUZZ_CHECK(cfg->listen_port >= 1 && cfg->listen_port <= 65535);
	FUZZ_CHECK(cfg->idle_transaction_timeout >= 0 && cfg->query_timeout >= 0 &&
			   cfg->client_idle_timeout >= 0);
	FUZZ_CHECK(cfg->listen_addr[0] != '\0' || cfg->unix_socket_dir[0] != '\0');
	FUZZ_CHECK(cfg->auth_type == AUTH_TRUST || cfg->auth_file[0] != '\0');
	for (const DbConfig *db = cfg->databases; db; db = db->next)
	{
		FUZZ_CHECK(db->name && db->host && db->port && db->dbname);
		FUZZ_CHECK(db->nhosts >= 1 && db->hosts && db->ports);
		for (int i = 0; i < db->nhosts; i++)
			FUZZ_CHECK(db->hosts[i][0] != '\0' && db->ports[i] != NULL);
		FUZZ_CHECK(config_find_db(cfg, db->name) == db);
	}

	/*
	 * [pooler] as SHOW CONFIG says it, loaded again.  Written "key=value":
	 * inih takes a ';' after a space for the start of a comment, so a value
	 * that begins with one (http_listen=;*:1 loads as ";*:1") only survives
	 * with nothing between the '=' and itself.
	 */
	out = open_memstream(&text, &textlen);
	FUZZ_CHECK(out != NULL);
	fputs("[pooler]\n", out);
	for (int i = 0;
		 config_describe(cfg, i, &key, value, sizeof(value), &reloadable); i++)
	{
		if (round_trips(key))
			fprintf(out, "%s=%s\n", key, value);
	}
	fclose(out);
	in = fmemopen(text, textlen, "r");
	FUZZ_CHECK(in != NULL);
	if (!config_load_stream(in, "again.ini", &again, err, sizeof(err)))
	{
		fprintf(stderr, "%s\n--- written back:\n%s", err, text);
		FUZZ_CHECK(!"what loaded does not load again");
	}
	fclose(in);
	for (int i = 0;
		 config_describe(cfg, i, &key, value, sizeof(value), &reloadable); i++)
	{
		const char *key2;
		char		value2[1024];
		bool		reloadable2;

		FUZZ_CHECK(config_describe(&again, i, &key2, value2, sizeof(value2),
								   &reloadable2));
		FUZZ_CHECK(strcmp(key, key2) == 0 && reloadable == reloadable2);
		if (round_trips(key) && strcmp(value, value2) != 0)
		{
			fprintf(stderr, "%s: \"%s\" loads again as \"%s\"\n", key, value,
					value2);
			FUZZ_CHECK(!"a value does not load again as itself");
		}
	}
	config_free(&again);
	FUZZ_CHECK(memcmp(&again, &zero, sizeof(zero)) == 0);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const Config zero;
	FILE			   *f;
	Config				cfg;
	char				err[700];

	if (size == 0)
		return 0;
	f = fmemopen((void *) data, size, "r");
	FUZZ_CHECK(f != NULL);
	memset(err, 'x', sizeof(err));
	if (config_load_stream(f, "fuzz.ini", &cfg, err, sizeof(err)))
	{
		check_loaded(&cfg);
		config_free(&cfg);
	}
	else
	{
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		FUZZ_CHECK(strncmp(err, "fuzz.ini", 8) == 0);
		FUZZ_CHECK(memcmp(&cfg, &zero, sizeof(zero)) == 0);
	}
	fclose(f);
	return 0;
}
