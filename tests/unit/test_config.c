/*
 * test_config.c
 *		Unit tests of the configuration parser (pooler/config.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "check.h"

static char path[] = "/tmp/aps-config-XXXXXX";

static bool
load(const char *text, Config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	return config_load(path, cfg, err, errlen);
}

int
main(void)
{
	Config cfg;
	char   err[700];
	char   expect[800];
	int	   fd = mkstemp(path);

	close(fd);

	CHECK(load("[databases]\n"
			   "appdb = host=10.0.0.1 port=5433 dbname=real\n"
			   "other =\n"
			   "[pooler]\n"
			   "pool_size = 5\nmax_overflow = -1\npool_timeout = 0.5\n"
			   "pool_recycle = -1\npool_mode = session\nauth_type = trust\n",
			   &cfg, err, sizeof(err)));
	CHECK(cfg.pool_size == 5 && cfg.max_overflow == -1);
	CHECK(cfg.pool_timeout == 0.5 && cfg.pool_recycle == -1);
	CHECK(cfg.pool_mode == POOL_SESSION);
	CHECK(cfg.listen_port == 6432); /* default */
	{
		DbConfig *db = config_find_db(&cfg, "appdb");
		DbConfig *other = config_find_db(&cfg, "other");

		CHECK(db && strcmp(db->host, "10.0.0.1") == 0 &&
			  strcmp(db->port, "5433") == 0 &&
			  strcmp(db->dbname, "real") == 0);
		CHECK(other && strcmp(other->dbname, "other") == 0 &&
			  strcmp(other->port, "5432") == 0);
		CHECK(config_find_db(&cfg, "nope") == NULL);
	}
	config_free(&cfg);

	/*
	 * Indented lines are the lines they look like, not continuations of
	 * the key above (inih's multi-line values): an indented key is a key,
	 * an indented line without '=' a syntax error at its line.
	 */
	CHECK(load("[pooler]\n"
			   "unix_socket_dir = /tmp\n"
			   "  pool_size = 7\n"
			   "\tmax_overflow = 3\n"
			   "[databases]\n"
			   "   appdb = host=10.0.0.2\n",
			   &cfg, err, sizeof(err)));
	CHECK(strcmp(cfg.unix_socket_dir, "/tmp") == 0);
	CHECK(cfg.pool_size == 7 && cfg.max_overflow == 3);
	CHECK(config_find_db(&cfg, "appdb") != NULL);
	config_free(&cfg);
	CHECK(!load("[pooler]\n"
				"unix_socket_dir = /tmp\n"
				" t  ;c\n",
				&cfg, err, sizeof(err)));
	snprintf(expect, sizeof(expect), "%s:3: syntax error", path);
	CHECK(strcmp(err, expect) == 0);

	/* auth_type: PostgreSQL's names, any case; SHOW CONFIG's spelling. */
	CHECK(load("[pooler]\nauth_type = SCRAM-SHA-256\nauth_file = /u\n", &cfg,
			   err, sizeof(err)));
	CHECK(cfg.auth_type == AUTH_SCRAM_SHA_256);
	CHECK(strcmp(auth_type_to_str(cfg.auth_type), "scram-sha-256") == 0);
	config_free(&cfg);
	CHECK(load("[pooler]\nauth_type = md5\nauth_file = /u\n", &cfg, err,
			   sizeof(err)));
	CHECK(cfg.auth_type == AUTH_MD5);
	CHECK(strcmp(auth_type_to_str(cfg.auth_type), "md5") == 0);
	config_free(&cfg);

	/* Errors name file, line and key. */
	CHECK(!load("[pooler]\npool_size = 5\npool_size_typo = 3\n", &cfg, err,
				sizeof(err)));
	snprintf(expect, sizeof(expect), "%s:3: pool_size_typo: unknown key",
			 path);
	CHECK(strncmp(err, expect, strlen(expect)) == 0);

	CHECK(!load("[pooler]\n\npool_size = lots\n", &cfg, err, sizeof(err)));
	snprintf(expect, sizeof(expect), "%s:3: pool_size: invalid value \"lots\"",
			 path);
	CHECK(strncmp(err, expect, strlen(expect)) == 0);

	CHECK(!load("[pooler]\npool_timeout = 0\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, ":2: pool_timeout: invalid value") != NULL);

	CHECK(!load("[pooler]\nmax_overflow = -2\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, "max_overflow: invalid value") != NULL);

	CHECK(!load("[pooler]\npool_mode = statement\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, "pool_mode: invalid value \"statement\"") != NULL);

	CHECK(!load("[databases]\nx = host=a bogus=1\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, ":2: x: unknown connection key \"bogus\"") != NULL);

	CHECK(!load("[mystery]\nkey = 1\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, ":2: key: key in unknown section [mystery]") != NULL);

	CHECK(!load("[pooler]\nauth_type = md5\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, "auth_file: needed for auth_type = md5") != NULL);
	CHECK(!load("[pooler]\nauth_type = scram-sha-256\n", &cfg, err,
				sizeof(err)));
	CHECK(strstr(err, "auth_file: needed for auth_type = scram-sha-256") !=
		  NULL);
	CHECK(!load("[pooler]\nauth_type = scram\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, "expected trust, md5 or scram-sha-256") != NULL);

	CHECK(!load("[pooler\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, ":1: syntax error") != NULL);

	/* TLS modes: libpq's names, any case; defaults disable and prefer. */
	CHECK(load("[pooler]\nserver_tls_sslmode = Verify-Full\n", &cfg, err,
			   sizeof(err)));
	CHECK(cfg.server_tls_sslmode == SSLMODE_VERIFY_FULL);
	CHECK(cfg.client_tls_sslmode == SSLMODE_DISABLE);
	{
		const char *key;
		char		value[64];
		bool		reloadable;
		bool		found = false;

		for (int i = 0;
			 config_describe(&cfg, i, &key, value, sizeof(value), &reloadable);
			 i++)
		{
			if (strcmp(key, "server_tls_sslmode") == 0)
			{
				found = strcmp(value, "verify-full") == 0 && reloadable;
			}
		}
		CHECK(found);
	}
	config_free(&cfg);
	CHECK(load("[pooler]\n", &cfg, err, sizeof(err)));
	CHECK(cfg.server_tls_sslmode == SSLMODE_PREFER);
	config_free(&cfg);

	CHECK(!load("[pooler]\nclient_tls_sslmode = sometimes\n", &cfg, err,
				sizeof(err)));
	CHECK(strstr(err, ":2: client_tls_sslmode: invalid value \"sometimes\"") !=
		  NULL);

	/*
	 * Checks made after parsing still name the line of their key: comments,
	 * blank lines and an indented line are counted.
	 */
	CHECK(!load(
		"; comment\n[pooler]\n\n# another\nadmin_users = a\n  stats_users = b\n"
		"client_tls_sslmode = require\n",
		&cfg, err, sizeof(err)));
	snprintf(expect, sizeof(expect),
			 "%s:7: client_tls_sslmode: require needs client_tls_key_file",
			 path);
	CHECK(strncmp(err, expect, strlen(expect)) == 0);

	CHECK(!load("[pooler]\nserver_tls_cert_file = /etc/hostname\n", &cfg, err,
				sizeof(err)));
	CHECK(strstr(err, ":2: server_tls_cert_file: server_tls_key_file and "
					  "server_tls_cert_file go together") != NULL);

	CHECK(!load("[pooler]\nserver_tls_ca_file = /nonexistent/ca.crt\n", &cfg,
				err, sizeof(err)));
	CHECK(strstr(err, ":2: server_tls_ca_file: could not read "
					  "\"/nonexistent/ca.crt\"") != NULL);

	/* scale-out: host lists, roles, per-database and per-user settings */
	CHECK(load(
		"[databases]\n"
		"app = host=a,b,c port=5432,5433,5434 target_session_attrs=read-write "
		"pool_size=3 pool_mode=session\n"
		"app_ro = host=a,b port=6000 target_session_attrs=prefer-standby "
		"max_overflow=-1\n"
		"[users]\n"
		"alice = pool_size=7 pool_timeout=2.5\n"
		"[peers]\n"
		"2 = host=10.0.0.2 port=6432\n"
		"[pooler]\n"
		"pool_size = 5\nmax_overflow = 4\nload_balance_hosts = round-robin\n"
		"so_reuseport = on\npeer_id = 1\nmax_replica_lag = 8\n",
		&cfg, err, sizeof(err)));
	{
		DbConfig	*app = config_find_db(&cfg, "app");
		DbConfig	*ro = config_find_db(&cfg, "app_ro");
		PoolSettings s;

		CHECK(app && app->nhosts == 3 && strcmp(app->hosts[2], "c") == 0 &&
			  strcmp(app->ports[1], "5433") == 0);
		CHECK(app->target == TSA_READ_WRITE);
		CHECK(ro && ro->nhosts == 2 && strcmp(ro->ports[1], "6000") == 0 &&
			  ro->target == TSA_PREFER_STANDBY);
		s = config_pool_settings(&cfg, app, "bob");
		CHECK(s.pool_size == 3 && s.max_overflow == 4 &&
			  s.pool_mode == POOL_SESSION);
		s = config_pool_settings(&cfg, app, "alice");
		CHECK(s.pool_size == 7 && s.pool_timeout == 2.5);
		s = config_pool_settings(&cfg, ro, "bob");
		CHECK(s.pool_size == 5 && s.max_overflow == -1 &&
			  s.pool_mode == POOL_TRANSACTION);
		CHECK(cfg.load_balance_hosts == LB_ROUND_ROBIN && cfg.so_reuseport &&
			  cfg.peer_id == 1 && cfg.max_replica_lag == 8);
		CHECK(cfg.peers && cfg.peers->id == 2 &&
			  strcmp(cfg.peers->host, "10.0.0.2") == 0);
	}
	config_free(&cfg);
	CHECK(!load("[databases]\nx = host=a,b,c port=1,2\n", &cfg, err,
				sizeof(err)));
	CHECK(strstr(err, "2 ports for 3 hosts") != NULL);
	{
		char line[1024] = "[databases]\nx = host=h";

		for (int i = 1; i < 65; i++)
			strcat(line, ",h");
		strcat(line, "\n");
		CHECK(!load(line, &cfg, err, sizeof(err)));
		CHECK(strstr(err, "65 hosts, at most 64") != NULL);
		/* a line inih would cut in two is refused as such */
		snprintf(line, sizeof(line),
				 "[databases]\nx = host=a dbname=%0220d pool_size=3\n", 0);
		CHECK(!load(line, &cfg, err, sizeof(err)));
		CHECK(strstr(err, ":2: line longer than") != NULL);
	}
	CHECK(!load("[databases]\nx = host=a target_session_attrs=writable\n",
				&cfg, err, sizeof(err)));
	CHECK(strstr(err, "target_session_attrs: invalid value") != NULL);
	CHECK(!load("[databases]\nx = host=a pool_size=zero\n", &cfg, err,
				sizeof(err)));
	CHECK(strstr(err, "pool_size: invalid value") != NULL);
	CHECK(!load("[users]\nbob = host=a\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, "unknown key \"host\"") != NULL);
	CHECK(!load("[peers]\nzero = host=a port=1\n", &cfg, err, sizeof(err)));
	CHECK(strstr(err, "peer_id") != NULL);
	CHECK(!load("[pooler]\nload_balance_hosts = random\n", &cfg, err,
				sizeof(err)));

	unlink(path);
	CHECK(!config_load(path, &cfg, err, sizeof(err)));
	CHECK(strstr(err, "could not open") != NULL);

	printf("test_config: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
