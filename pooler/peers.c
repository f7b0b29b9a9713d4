/*
 * peers.c
 *		Several apiscale-pooler instances behind one address (so_reuseport,
 *		or a load balancer): cancel requests find the instance whose key
 *		they carry.
 *
 * A client's cancel request may reach any instance, not the one it is
 * connected to.  So, with peer_id set, each instance puts its id in the
 * upper 16 bits of the process id of the BackendKeyData it gives its
 * clients (the lower 16 bits and the 32-bit secret key tell its clients
 * apart).  An instance that gets a cancel request naming another id
 * forwards the 16 bytes, as they came, to that peer ([peers] section);
 * the peer finds its client as if the request had come to it.  A peer
 * never forwards a request naming its own id, so a request is forwarded
 * at most once when the ids are set consistently.  PgBouncer 1.19 does the
 * same with its own key layout.
 *
 * Forwarding connects and writes, which may block (name resolution, a
 * slow peer): it runs in a short-lived thread, as PQcancel does for
 * servers, and reports nothing back.
 */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "peers.h"

#define CANCEL_CODE 80877102 /* PostgreSQL's CancelRequest */

/* The process id a client of this instance is given. */
uint32_t
peers_key_pid(uint32_t client_id)
{
	if (cf.peer_id == 0)
		return client_id;
	return ((uint32_t) cf.peer_id << 16) | (client_id & 0xffff);
}

typedef struct Forward
{
	char	host[256];
	char	port[16];
	int		peer;
	uint8_t packet[16];
} Forward;

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static void *
forward_thread(void *arg)
{
	Forward			*f = (Forward *) arg;
	struct addrinfo	 hints;
	struct addrinfo *res = NULL;
	struct timeval	 tv = {5, 0};
	int				 fd = -1;
	int				 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(f->host, f->port, &hints, &res);
	if (rc != 0)
		log_warning("cancel for peer %d: could not resolve %s: %s", f->peer,
					f->host, gai_strerror(rc));
	else if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0 ||
			 setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
			 connect(fd, res->ai_addr, res->ai_addrlen) != 0 ||
			 write(fd, f->packet, sizeof(f->packet)) != sizeof(f->packet))
		log_warning("cancel for peer %d: could not send it to %s:%s", f->peer,
					f->host, f->port);
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	free(f);
	return NULL;
}

/*
 * A cancel request (pid, key) arrived here: if pid names another peer,
 * send it there and return true; false if it is this instance's (or no
 * peers are set up).
 */
bool
peers_forward_cancel(uint32_t pid, uint32_t key)
{
	int				  target = (int) (pid >> 16);
	Forward			 *f;
	pthread_t		  t;
	const PeerConfig *peer;

	if (cf.peer_id == 0 || target == cf.peer_id)
		return false;
	for (peer = cf.peers; peer; peer = peer->next)
	{
		if (peer->id == target)
			break;
	}
	if (peer == NULL)
	{
		log_warning("cancel request for peer %d, which is not in [peers]",
					target);
		return true;
	}
	f = calloc(1, sizeof(Forward));
	if (f == NULL)
		fatal("out of memory");
	snprintf(f->host, sizeof(f->host), "%s", peer->host);
	snprintf(f->port, sizeof(f->port), "%s", peer->port);
	f->peer = target;
	put_u32(f->packet, 16);
	put_u32(f->packet + 4, CANCEL_CODE);
	put_u32(f->packet + 8, pid);
	put_u32(f->packet + 12, key);
	log_info("cancel request forwarded to peer %d (%s:%s)", target, peer->host,
			 peer->port);
	if (pthread_create(&t, NULL, forward_thread, f) != 0)
	{
		log_warning("cancel for peer %d: could not start a thread", target);
		free(f);
		return true;
	}
	pthread_detach(t);
	return true;
}
