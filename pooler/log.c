/*
 * log.c
 *		Logging to stderr or a log file, one line per event, with a level.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

LogLevel	 log_level = LOG_INFO;
static FILE *log_file = NULL; /* NULL: stderr */

static const char *const level_names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

bool
log_level_parse(const char *s, LogLevel *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
	{
		if (strcasecmp(s, level_names[i]) == 0)
		{
			*out = (LogLevel) i;
			return true;
		}
	}
	return false;
}

const char *
log_level_to_str(LogLevel level)
{
	return level_names[level];
}

/* Send log lines to path (appending), or to stderr if path is empty. */
bool
log_open(const char *path, char *err, size_t errlen)
{
	FILE *f;

	if (path == NULL || path[0] == '\0')
	{
		if (log_file)
			fclose(log_file);
		log_file = NULL;
		return true;
	}
	f = fopen(path, "a");
	if (f == NULL)
	{
		snprintf(err, errlen, "could not open log file \"%s\": %s", path,
				 strerror(errno));
		return false;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_file)
		fclose(log_file);
	log_file = f;
	return true;
}

static void
log_vwrite(LogLevel level, const char *fmt, va_list ap)
{
	FILE		  *out = log_file ? log_file : stderr;
	struct timeval tv;
	struct tm	   tm;
	char		   ts[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(out, "%s.%03d [%d] %s: ", ts, (int) (tv.tv_usec / 1000),
			(int) getpid(), level_names[level]);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
}

void
log_msg(LogLevel level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

/* strdup that treats running out of memory as fatal; NULL stays NULL. */
char *
xstrdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		fatal("out of memory");
	return d;
}

/* Log and exit: start-up failures, and running out of memory. */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
