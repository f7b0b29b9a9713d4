/*
 * main.c
 *		apiscale-pooler: set-up, signals, reload and shutdown.
 *
 * main() sets things up in order, checks each step, and the event loop
 * does the rest.  The state every layer reads is in process.c; main.c
 * wires the layers together (the admin console into client.c, reload and
 * shutdown into process.c) and is included by none of them.  SIGHUP and the admin RELOAD re-read the configuration;
 * SIGTERM (and SHUTDOWN) stop accepting, let transactions in flight
 * finish, then exit; SIGINT exits at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "admin.h"
#include "auth.h"
#include "client.h"
#include "config.h"
#include "dbstats.h"
#include "hosts.h"
#include "http.h"
#include "log.h"
#include "main.h"
#include "monitor.h"
#include "notify.h"
#include "pgbconv.h"
#include "pool.h"
#include "timeouts.h"
#include "tls.h"

static char				  *config_path = NULL;
static const HostCallbacks host_callbacks = {
	.check_user = pool_check_user,
	.changed = pool_host_changed,
};
static bool no_client_left(void);

static const ProcessControl control = {
	.reload = pooler_reload,
	.shutdown = pooler_shutdown,
	.drained = no_client_left,
};
static const ConsoleHandlers console = {
	.welcome = admin_welcome,
	.handle = admin_handle,
};
static struct evconnlistener *tcp_listener = NULL;
static struct evconnlistener *unix_listener = NULL;
static char unix_path[sizeof(((struct sockaddr_un *) 0)->sun_path)];

static void
usage(FILE *out)
{
	fprintf(
		out,
		"apiscale-pooler " APS_VERSION
		": a PostgreSQL connection pooler with QueuePool semantics.\n"
		"\n"
		"Usage:\n"
		"  apiscale-pooler [-d] CONFIG   run with the given INI file\n"
		"  apiscale-pooler --check CONFIG  check the file and exit\n"
		"  apiscale-pooler --from-pgbouncer PGBOUNCER_INI\n"
		"                               print the equivalent configuration\n"
		"\n"
		"Options:\n"
		"  -d, --daemon     run in the background (needs logfile)\n"
		"      --check      validate CONFIG, print the first error, exit 0 or 1\n"
		"      --from-pgbouncer FILE  convert a pgbouncer.ini: the configuration\n"
		"                   on stdout, a warning on stderr for each key not\n"
		"                   carried; exit 1 if it cannot be converted\n"
		"  -h, --help       show this help and exit\n"
		"  -V, --version    show the version and exit\n"
		"\n"
		"Signals: SIGHUP reloads the pool settings, SIGTERM lets "
		"transactions in\nflight finish and exits, SIGINT exits at once.\n"
		"See pooler/apiscale-pooler.ini for every configuration key.\n");
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
		  int socklen, void *arg)
{
	client_accept(fd, addr, socklen);
}

static void
reenable_cb(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable((struct evconnlistener *) arg);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	log_error("accept failed: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE)
	{
		/* Out of descriptors: stop accepting for a moment. */
		struct timeval tv = {0, 100000};

		evconnlistener_disable(l);
		event_base_once(ev_base, -1, EV_TIMEOUT, reenable_cb, l, &tv);
	}
}

static struct evconnlistener *
listen_on(struct sockaddr *sa, int len, const char *what)
{
	struct evconnlistener *l;

	unsigned flags =
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;

	/* several instances on one TCP port: the kernel spreads the clients */
	if (cf.so_reuseport && sa->sa_family != AF_UNIX)
		flags |= LEV_OPT_REUSEABLE_PORT;
	l = evconnlistener_new_bind(ev_base, accept_cb, NULL, flags, 4096, sa,
								len);
	if (l == NULL)
		fatal("could not listen on %s: %s", what, strerror(errno));
	evconnlistener_set_error_cb(l, accept_error_cb);
	return l;
}

/*
 * tcp_defer_accept: the kernel holds a new TCP connection until its first
 * bytes (a StartupMessage, SSLRequest or CancelRequest: a PostgreSQL client
 * always speaks first) have come, or the seconds pass.  The listener then
 * reports a connection that can be read at once (client_accept does), which
 * in a reconnect storm saves a loop pass and a wake-up per connection.  A
 * connection that sends nothing reaches the pooler only when the kernel
 * stops holding it (the seconds, rounded up to its SYN-ACK retransmission
 * schedule: about a minute for 45), and until then does not count towards
 * max_client_conn.  PgBouncer sets the same, with 45 s.
 */
static void
set_defer_accept(void)
{
#ifdef TCP_DEFER_ACCEPT
	int secs = cf.tcp_defer_accept;

	if (tcp_listener &&
		setsockopt(evconnlistener_get_fd(tcp_listener), IPPROTO_TCP,
				   TCP_DEFER_ACCEPT, &secs, sizeof(secs)) != 0)
		log_warning("could not set TCP_DEFER_ACCEPT: %s", strerror(errno));
#endif
}

static void
start_listening(void)
{
	char what[300];

	if (cf.listen_addr[0] != '\0')
	{
		struct sockaddr_storage ss;
		int						sslen = sizeof(ss);
		char					spec[300];

		snprintf(spec, sizeof(spec), "%s:%d", cf.listen_addr, cf.listen_port);
		if (strchr(cf.listen_addr, ':'))
			snprintf(spec, sizeof(spec), "[%s]:%d", cf.listen_addr,
					 cf.listen_port);
		memset(&ss, 0, sizeof(ss));
		if (evutil_parse_sockaddr_port(spec, (struct sockaddr *) &ss, &sslen) <
			0)
			fatal("listen_addr: cannot parse \"%s\"", cf.listen_addr);
		tcp_listener = listen_on((struct sockaddr *) &ss, sslen, spec);
		set_defer_accept();
		log_info("listening on %s", spec);
	}
	if (cf.unix_socket_dir[0] != '\0')
	{
		struct sockaddr_un un;

		memset(&un, 0, sizeof(un));
		un.sun_family = AF_UNIX;
		if ((size_t) snprintf(unix_path, sizeof(unix_path), "%s/.s.PGSQL.%d",
							  cf.unix_socket_dir,
							  cf.listen_port) >= sizeof(unix_path))
			fatal("unix_socket_dir: path too long");
		snprintf(un.sun_path, sizeof(un.sun_path), "%s", unix_path);
		unlink(unix_path);
		snprintf(what, sizeof(what), "Unix socket %s", unix_path);
		unix_listener = listen_on((struct sockaddr *) &un, sizeof(un), what);
		chmod(unix_path, 0777);
		log_info("listening on %s", what);
	}
}

static void
stop_listening(void)
{
	if (tcp_listener)
		evconnlistener_free(tcp_listener);
	if (unix_listener)
	{
		evconnlistener_free(unix_listener);
		unlink(unix_path);
	}
	tcp_listener = unix_listener = NULL;
}

/*
 * Make room for max_client_conn clients plus the servers: raise the soft
 * open-files limit, or say why we cannot.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t		  need = (rlim_t) cf.max_client_conn + 200;

	if (cf.max_overflow >= 0)
		need += (rlim_t) (cf.pool_size + cf.max_overflow) * 4;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
	{
		log_warning("could not read the open-files limit: %s",
					strerror(errno));
		return;
	}
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
	{
		log_warning(
			"max_client_conn = %d needs %llu open files, but the hard "
			"limit is %llu: raising to that; more clients will be "
			"refused (raise the hard limit, e.g. LimitNOFILE= in systemd "
			"or ulimit -Hn as root)",
			cf.max_client_conn, (unsigned long long) need,
			(unsigned long long) rl.rlim_max);
		need = rl.rlim_max;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warning("could not raise the open-files limit to %llu: %s",
					(unsigned long long) need, strerror(errno));
	else
		log_info("open-files limit raised to %llu", (unsigned long long) need);
}

/*
 * Re-read the configuration.  Pool settings, auth, databases and logging
 * change at once, TLS settings for the connections made after; listen_*
 * and max_client_conn need a restart.
 */
bool
pooler_reload(char *err, size_t errlen)
{
	Config	 fresh;
	Config	 old;
	SSL_CTX *client_ctx;
	char	 e[600];

	if (!config_load(config_path, &fresh, e, sizeof(e)))
	{
		snprintf(err, errlen, "reload failed, keeping the old settings: %s",
				 e);
		log_error("%s", err);
		return false;
	}
	if (!auth_load(fresh.auth_file, e, sizeof(e)))
	{
		snprintf(err, errlen, "reload failed, keeping the old settings: %s",
				 e);
		log_error("%s", err);
		config_free(&fresh);
		return false;
	}
	if (!tls_load(&fresh, &client_ctx, e, sizeof(e)))
	{
		snprintf(err, errlen, "reload failed, keeping the old settings: %s",
				 e);
		log_error("%s", err);
		config_free(&fresh);
		return false;
	}
	/* Nothing fails from here on: the new TLS context can go in. */
	tls_set_client_ctx(client_ctx);
	if (strcmp(fresh.logfile, cf.logfile) != 0 &&
		!log_open(fresh.logfile, e, sizeof(e)))
		log_error("%s", e);
	auth_check_file_mode(fresh.auth_file);

	/* Keep what only a restart can change. */
	old = cf;
	free(fresh.listen_addr);
	fresh.listen_addr = old.listen_addr;
	old.listen_addr = NULL;
	free(fresh.unix_socket_dir);
	fresh.unix_socket_dir = old.unix_socket_dir;
	old.unix_socket_dir = NULL;
	free(fresh.pidfile);
	fresh.pidfile = old.pidfile;
	old.pidfile = NULL;
	fresh.listen_port = old.listen_port;
	fresh.max_client_conn = old.max_client_conn;
	cf = fresh;
	log_level = cf.log_level;
	hosts_configure(&cf);
	pool_refresh_config();
	timeouts_configure();
	set_defer_accept();
	config_free(&old);
	if (!http_configure(e, sizeof(e)))
	{
		/* SHOW CONFIG tells where it really serves */
		log_error("%s (the HTTP endpoint stays where it was)", e);
		free(cf.http_listen);
		cf.http_listen = xstrdup(http_bound());
	}
	monitor_reload();
	log_info("configuration reloaded: pool_size=%d max_overflow=%d "
			 "pool_timeout=%g pool_recycle=%g",
			 cf.pool_size, cf.max_overflow, cf.pool_timeout, cf.pool_recycle);
	return true;
}

/* Is a drain over?  (ProcessControl.drained) */
static bool
no_client_left(void)
{
	return n_clients == 0;
}

void
pooler_shutdown(bool immediate)
{
	Client *c;
	Client *next;

	if (immediate)
	{
		log_info("shutting down now");
		notify_systemd("STOPPING=1");
		event_base_loopbreak(ev_base);
		return;
	}
	if (shutting_down)
		return;
	log_info("shutting down once transactions in flight are done");
	notify_systemd("STOPPING=1");
	shutting_down = true;
	stop_listening();
	for (c = TAILQ_FIRST(&all_clients); c; c = next)
	{
		next = TAILQ_NEXT(c, all);
		if (c->server == NULL || c->admin)
			client_close(c, "57P01", "the pooler is shutting down");
	}
	pooler_check_shutdown();
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[700];

	switch (sig)
	{
		case SIGHUP:
			log_info("SIGHUP: reloading %s", config_path);
			notify_systemd("RELOADING=1");
			if (!pooler_reload(err, sizeof(err)))
				log_warning("SIGHUP: the old configuration stays in force");
			notify_systemd("READY=1");
			break;
		case SIGTERM:
			pooler_shutdown(false);
			break;
		case SIGINT:
			pooler_shutdown(true);
			break;
		default:
			log_warning("unexpected signal %d", (int) sig);
			break;
	}
}

static void
write_pidfile(void)
{
	FILE *f;

	if (cf.pidfile[0] == '\0')
		return;
	f = fopen(cf.pidfile, "w");
	if (f == NULL)
		fatal("could not write pid file \"%s\": %s", cf.pidfile,
			  strerror(errno));
	fprintf(f, "%d\n", (int) getpid());
	fclose(f);
}

static void
daemonize(void)
{
	pid_t pid = fork();
	int	  fd;

	if (pid < 0)
		fatal("could not fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		fatal("setsid failed: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0)
	{
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"daemon", no_argument, NULL, 'd'},
		{"check", no_argument, NULL, 'c'},
		{"from-pgbouncer", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	bool		  daemon_mode = false;
	bool		  check_only = false;
	char		  err[700];
	int			  opt;
	struct event *sig_hup, *sig_term, *sig_int;
	SSL_CTX		 *client_ctx;

	while ((opt = getopt_long(argc, argv, "dhV", longopts, NULL)) != -1)
	{
		switch (opt)
		{
			case 'd':
				daemon_mode = true;
				break;
			case 'c':
				check_only = true;
				break;
			case 'P':
				if (optind != argc)
				{
					usage(stderr);
					return 1;
				}
				return pgbconv_convert(optarg, stdout, stderr) ? 0 : 1;
			case 'h':
				usage(stdout);
				return 0;
			case 'V':
				printf("apiscale-pooler " APS_VERSION "\n");
				return 0;
			default:
				usage(stderr);
				return 1;
		}
	}
	if (optind != argc - 1)
	{
		usage(stderr);
		return 1;
	}
	config_path = argv[optind];

	if (!config_load(config_path, &cf, err, sizeof(err)))
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (!auth_load(cf.auth_file, err, sizeof(err)))
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (!tls_load(&cf, &client_ctx, err, sizeof(err)))
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check_only)
	{
		auth_check_file_mode(cf.auth_file);
		if (client_ctx)
			SSL_CTX_free(client_ctx);
		printf("%s: ok\n", config_path);
		return 0;
	}
	tls_set_client_ctx(client_ctx);
	if (daemon_mode && cf.logfile[0] == '\0')
	{
		fprintf(stderr,
				"%s: logfile: needed with -d (no terminal to log to)\n",
				config_path);
		return 1;
	}
	log_level = cf.log_level;
	if (!log_open(cf.logfile, err, sizeof(err)))
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	auth_check_file_mode(cf.auth_file);
	if (daemon_mode)
		daemonize();
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	ev_base = event_base_new();
	if (ev_base == NULL)
		fatal("could not create the event loop");
	process_set_control(&control);
	client_set_console(&console);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		pooler_started = (double) ts.tv_sec + ts.tv_nsec / 1e9;
	}
	start_listening();
	if (!http_configure(err, sizeof(err)))
		fatal("%s", err);
	hosts_configure(&cf);
	hosts_start(&host_callbacks);
	monitor_start();
	timeouts_configure();
	dbstats_start();
	write_pidfile();

	sig_hup = evsignal_new(ev_base, SIGHUP, signal_cb, NULL);
	sig_term = evsignal_new(ev_base, SIGTERM, signal_cb, NULL);
	sig_int = evsignal_new(ev_base, SIGINT, signal_cb, NULL);
	evsignal_add(sig_hup, NULL);
	evsignal_add(sig_term, NULL);
	evsignal_add(sig_int, NULL);

	log_info("apiscale-pooler " APS_VERSION " started: pool_mode=%s "
			 "pool_size=%d max_overflow=%d pool_timeout=%g pool_recycle=%g",
			 pool_mode_to_str(cf.pool_mode), cf.pool_size, cf.max_overflow,
			 cf.pool_timeout, cf.pool_recycle);
	notify_systemd("READY=1");
	/*
	 * One pass at a time: what a pass released goes out at its end.  The
	 * pass clock is read afresh in each pass (start-up read it too).
	 */
	pass_clock_reset();
	while (event_base_loop(ev_base, EVLOOP_ONCE) == 0 &&
		   !event_base_got_break(ev_base) && !event_base_got_exit(ev_base))
	{
		pool_end_of_pass();
		client_end_of_pass();
		pass_clock_reset();
	}

	log_info("exiting");
	stop_listening();
	monitor_stop();
	timeouts_stop();
	dbstats_stop();
	hosts_stop();
	http_stop();
	event_free(sig_hup);
	event_free(sig_term);
	event_free(sig_int);
	if (cf.pidfile[0] != '\0')
		unlink(cf.pidfile);
	tls_set_client_ctx(NULL);
	config_free(&cf);
	return 0;
}
