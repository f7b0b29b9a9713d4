/*
 * notify.c
 *		Telling systemd how start-up, reloads and shutdown are going.
 *
 * Under a unit with Type=notify, systemd sets NOTIFY_SOCKET to a Unix
 * datagram socket (a path, or an abstract name written with a leading @)
 * and waits for "READY=1" before it counts the service as started; during
 * a reload it expects "RELOADING=1" then "READY=1" again, and "STOPPING=1"
 * once shutdown begins.  That is sd_notify(3)'s protocol: one datagram of
 * newline-separated assignments.  Writing it here saves a library for one
 * sendto(); without NOTIFY_SOCKET (any other way of running the pooler)
 * nothing is sent.  A failure is logged and otherwise ignored: systemd
 * then times the start out and says so.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

/* Send state (e.g. "READY=1") to systemd, if it is listening. */
void
notify_systemd(const char *state)
{
	const char		  *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un un;
	socklen_t		   len;
	size_t			   n;
	int				   fd;

	if (path == NULL || path[0] == '\0')
		return;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(un.sun_path))
	{
		log_warning("NOTIFY_SOCKET \"%s\" is not a socket path: systemd is "
					"not told \"%s\"",
					path, state);
		return;
	}
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	memcpy(un.sun_path, path, n);
	if (path[0] == '@')
		un.sun_path[0] = '\0'; /* an abstract socket */
	len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		log_warning("could not tell systemd \"%s\": %s", state,
					strerror(errno));
		return;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &un,
			   len) < 0)
		log_warning("could not tell systemd \"%s\": %s", state,
					strerror(errno));
	close(fd);
}
