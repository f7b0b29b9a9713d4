/*
 * log.c
 *		Logging to stderr or a log file, one line per event, with a level.
 *
 * A log file is written with one write(2) per line (O_APPEND), so that a
 * failed write is seen at once and costs nothing more than the line: a
 * full disk or a file that cannot be written (EIO, a read-only remount,
 * /dev/full) must never stop the pooler.  The first failure is said once
 * on stderr; the lines are lost until a write succeeds again, and the log
 * then says how many were lost (and stderr that it is back).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

LogLevel		log_level = LOG_INFO;
static int		log_fd = -1;		 /* -1: stderr */
static char	   *log_path = NULL;	 /* of log_fd */
static bool		log_failing = false; /* the last write failed */
static bool		log_partial = false; /* ... after writing part of a line */
static uint64_t log_lost = 0;		 /* lines lost since */

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
	int fd;

	if (path == NULL || path[0] == '\0')
	{
		if (log_fd >= 0)
			close(log_fd);
		log_fd = -1;
		free(log_path);
		log_path = NULL;
		log_failing = false;
		return true;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
	{
		snprintf(err, errlen, "could not open log file \"%s\": %s", path,
				 strerror(errno));
		return false;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	free(log_path);
	log_path = xstrdup(path);
	log_failing = false;
	log_partial = false;
	log_lost = 0;
	return true;
}

/* Write all of buf (len bytes) to fd; the bytes written go into *done. */
static bool
write_all(int fd, const char *buf, size_t len, size_t *done)
{
	*done = 0;
	while (*done < len)
	{
		ssize_t n = write(fd, buf + *done, len - *done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC; /* what a write of nothing means here */
			return false;
		}
		*done += (size_t) n;
	}
	return true;
}

/* "2026-11-28 12:00:00.000 [pid] LEVEL: " */
static int
line_prefix(char *buf, size_t len, LogLevel level)
{
	struct timeval tv;
	struct tm	   tm;
	char		   ts[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	return snprintf(buf, len, "%s.%03d [%d] %s: ", ts,
					(int) (tv.tv_usec / 1000), (int) getpid(),
					level_names[level]);
}

/*
 * One line to the log file; on failure, say so once on stderr.  After a
 * failure, the first line that goes through is preceded by one that says
 * how many were lost.
 */
static void
file_write(const char *line, size_t len)
{
	char   note[256];
	int	   n;
	size_t done;

	if (log_failing)
	{
		n = line_prefix(note, sizeof(note), LOG_WARNING);
		n += snprintf(note + n, sizeof(note) - (size_t) n,
					  "log file writable again: %llu lines were lost%s\n",
					  (unsigned long long) log_lost,
					  log_partial ? " (the line above was cut short)" : "");
		if (n >= (int) sizeof(note))
			n = (int) sizeof(note) - 1;
		/* a line cut short by the failure is ended first */
		if ((log_partial && !write_all(log_fd, "\n", 1, &done)) ||
			!write_all(log_fd, note, (size_t) n, &done))
		{
			log_lost++;
			log_partial |= done > 0;
			return;
		}
		log_failing = log_partial = false;
		log_lost = 0;
		fwrite(note, 1, (size_t) n, stderr);
	}
	if (write_all(log_fd, line, len, &done))
		return;
	log_failing = true;
	log_partial = done > 0;
	log_lost = 1;
	n = line_prefix(note, sizeof(note), LOG_WARNING);
	fprintf(stderr,
			"%scould not write to log file \"%s\": %s; the pooler goes on, "
			"and log lines are lost until the file can be written again "
			"(free some space, or set logfile elsewhere and RELOAD)\n",
			note, log_path, strerror(errno));
}

static void
log_vwrite(LogLevel level, const char *fmt, va_list ap)
{
	char	small[1024];
	char   *line = small;
	int		head;
	int		body;
	va_list copy;

	head = line_prefix(small, sizeof(small), level);
	va_copy(copy, ap);
	body = vsnprintf(small + head, sizeof(small) - (size_t) head, fmt, copy);
	va_end(copy);
	if (body < 0)
		body = 0;
	if ((size_t) (head + body + 1) >= sizeof(small))
	{
		/* a long line: format it again into a buffer of its size */
		line = malloc((size_t) head + (size_t) body + 2);
		if (line == NULL)
		{
			line = small;
			body = (int) sizeof(small) - head - 2;
		}
		else
		{
			memcpy(line, small, (size_t) head);
			vsnprintf(line + head, (size_t) body + 1, fmt, ap);
		}
	}
	line[head + body] = '\n';
	if (log_fd < 0)
		fwrite(line, 1, (size_t) (head + body + 1), stderr);
	else
		file_write(line, (size_t) (head + body + 1));
	if (line != small)
		free(line);
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
