/*
 * The relay: plaintext between a TLS session and the worker's end of a
 * socketpair.  It moves up to 64 KiB a read and reads from one side only
 * when the other has taken everything, so a slow reader holds back its
 * writer instead of making the master buffer.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "util.h"

#define RELAY_BUFSZ	65536		/* four TLS records */
#define RELAY_ROUNDS	4		/* reads per turn, then yield */
#define LINGER_MAX	(1024 * 1024)	/* bytes read after close_notify */

static void	 relay_abort(struct conn *);
static void	 relay_worker_stopped(struct conn *);
static void	 conn_linger(struct conn *);
static void	 conn_watch(struct conn *, struct event *, int, short *,
		    short);

static const struct timeval	 linger_tv = { 2, 0 };
static uint8_t			 relay_buf[RELAY_BUFSZ];

/* Keep what the other side did not take: only that, and only meanwhile. */
static int
relay_keep(uint8_t **buf, size_t *off, size_t *len, const uint8_t *data,
    size_t n)
{
	free(*buf);
	if ((*buf = malloc(n)) == NULL)
		return (-1);
	memcpy(*buf, data, n);
	*off = 0;
	*len = n;
	return (0);
}

static void
relay_release(uint8_t **buf, size_t *off)
{
	/* Idle connections hold no buffers. */
	free(*buf);
	*buf = NULL;
	*off = 0;
}

/*
 * Send to the worker: the bytes it took, 0 if it must be waited for,
 * -1 if it stopped reading.
 */
static ssize_t
relay_to_worker(struct conn *c, const uint8_t *buf, size_t len,
    short *pfdw)
{
	ssize_t	 w;

	if ((w = send(c->pfd, buf, len, MSG_NOSIGNAL)) == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			relay_worker_stopped(c);
			return (-1);
		}
		w = 0;
	}
	if ((size_t)w < len)
		*pfdw |= EV_WRITE;
	return (w);
}

/*
 * Write to the client: the bytes it took, 0 if the engine must wait for
 * an event (added to *fdw), -1 if the session is broken.
 */
static ssize_t
relay_to_client(struct conn *c, const uint8_t *buf, size_t len, short *fdw)
{
	ssize_t	 w;
	size_t	 off = 0;

	/* The engine takes a record a call. */
	while (off < len) {
		switch ((w = eng_write(c, buf + off, len - off))) {
		case TLS_WANT_POLLIN:
			*fdw |= EV_READ;
			return (off);
		case TLS_WANT_POLLOUT:
			*fdw |= EV_WRITE;
			return (off);
		}
		if (w < 0) {
			log_debug("conn %llu: write: %s",
			    (unsigned long long)c->id, eng_error(c));
			return (-1);
		}
		c->bytes_out += w;
		mstats.bytes_out += w;
		off += w;
	}
	return (off);
}

/*
 * Move as much as both sides take, then wait for what blocked.  Called
 * for every event on either descriptor.  A record read from one side
 * goes straight out of the scratch buffer; only what the other side
 * does not take at once is kept, and not offered again before that side
 * is writable.  A side that came up empty is not read again before
 * libevent says it is readable: on a busy one-way stream that read would
 * fail on every record.
 */
void
conn_relay(struct conn *c)
{
	ssize_t	 n, w;
	short	 fdw, pfdw;
	int	 round, progress, kept;

	for (round = 0; round < RELAY_ROUNDS; round++) {
		progress = 0;
		fdw = pfdw = 0;

		if (c->state == CONN_CLOSING)
			goto closing;

		/* Client to worker. */
		kept = 0;
		if (c->uplen == 0 && !c->up_eof && !c->fd_rd)
			fdw |= EV_READ;
		else if (c->uplen == 0 && !c->up_eof) {
			n = eng_read(c, relay_buf, sizeof(relay_buf));
			if (n == TLS_WANT_POLLIN) {
				c->fd_rd = 0;
				fdw |= EV_READ;
			} else if (n == TLS_WANT_POLLOUT)
				fdw |= EV_WRITE;
			else if (n == ENG_ABORTED) {
				relay_abort(c);
				return;
			} else if (n < 0) {
				log_debug("conn %llu: read: %s",
				    (unsigned long long)c->id, eng_error(c));
				conn_free(c);
				return;
			} else if (n == 0) {
				c->up_eof = 1;
				progress = 1;
			} else {
				c->bytes_in += n;
				mstats.bytes_in += n;
				progress = 1;
				if (eng_drained(c))
					c->fd_rd = 0;
				if ((w = relay_to_worker(c, relay_buf, n,
				    &pfdw)) >= 0 && w < n) {
					if (relay_keep(&c->up, &c->upoff,
					    &c->uplen, relay_buf + w,
					    n - w) == -1)
						goto nomem;
					kept = 1;
				}
			}
		}
		if (c->uplen > 0 && !kept &&
		    (w = relay_to_worker(c, c->up + c->upoff, c->uplen,
		    &pfdw)) != 0) {
			/* w < 0: relay_worker_stopped() dropped the rest. */
			progress = 1;
			if (w > 0) {
				c->upoff += w;
				c->uplen -= w;
				if (c->uplen == 0)
					relay_release(&c->up, &c->upoff);
			}
		}
		if (c->up_eof && c->uplen == 0 && !c->up_shut) {
			(void)shutdown(c->pfd, SHUT_WR);
			c->up_shut = 1;
		}

		/* Worker to client. */
		kept = 0;
		if (c->downlen == 0 && !c->down_eof && !c->pfd_rd)
			pfdw |= EV_READ;
		else if (c->downlen == 0 && !c->down_eof) {
			n = recv(c->pfd, relay_buf, sizeof(relay_buf), 0);
			if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
				if (errno == EAGAIN)
					c->pfd_rd = 0;
				pfdw |= EV_READ;
			} else if (n <= 0) {
				c->down_eof = 1;
				progress = 1;
			} else {
				progress = 1;
				/* Short: the worker's end is empty for now. */
				if ((size_t)n < sizeof(relay_buf))
					c->pfd_rd = 0;
				if ((w = relay_to_client(c, relay_buf, n,
				    &fdw)) == -1) {
					conn_free(c);
					return;
				}
				if (w < n) {
					if (relay_keep(&c->down, &c->downoff,
					    &c->downlen, relay_buf + w,
					    n - w) == -1)
						goto nomem;
					kept = 1;
				}
			}
		}
		if (c->downlen > 0 && !kept) {
			if ((w = relay_to_client(c, c->down + c->downoff,
			    c->downlen, &fdw)) == -1) {
				conn_free(c);
				return;
			}
			if (w > 0) {
				c->downoff += w;
				c->downlen -= w;
				if (c->downlen == 0)
					relay_release(&c->down, &c->downoff);
				progress = 1;
			}
		}
		if (c->down_eof && c->downlen == 0) {
			/* The worker is done: close_notify, then close. */
			c->state = CONN_CLOSING;
			goto closing;
		}

		if (!progress)
			break;
	}

	/* What this pass wrote to the client leaves in one send(2). */
	switch (eng_flush(c)) {
	case 0:
		break;
	case TLS_WANT_POLLOUT:
		fdw |= EV_WRITE;
		break;
	default:
		log_debug("conn %llu: write: %s", (unsigned long long)c->id,
		    strerror(errno));
		conn_free(c);
		return;
	}
	if (round == RELAY_ROUNDS) {
		/* More to do; let other connections run first. */
		conn_set_events(c, 0, 0);
		event_active(&c->fdev, EV_WRITE, 1);
		return;
	}
	evtimer_add(&c->timer, idle_tv);
	conn_set_events(c, fdw, pfdw);
	return;

 closing:
	switch (eng_close(c)) {
	case TLS_WANT_POLLIN:
		conn_set_events(c, EV_READ, 0);
		evtimer_add(&c->timer, handshake_tv);
		return;
	case TLS_WANT_POLLOUT:
		conn_set_events(c, EV_WRITE, 0);
		evtimer_add(&c->timer, handshake_tv);
		return;
	case 0:
		conn_linger(c);
		return;
	default:
		conn_free(c);
		return;
	}

 nomem:
	log_warn("conn %llu: relay buffer", (unsigned long long)c->id);
	conn_free(c);
}

/*
 * The client's stream ended without close_notify: whoever cut it may
 * have cut what it was sending short, so it is no end of data.  The
 * worker's end is closed outright, never half-closed as after a
 * close_notify: its reads end, and what it would still write fails
 * (EPIPE), or its reads fail too (ECONNRESET) if we left some of its
 * output unread.  A client that closes this way after its last
 * response, as many do, has what it came for.
 */
static void
relay_abort(struct conn *c)
{
	char	 addr[ADDRSTRLEN];

	log_debug("conn %llu: %s: ended without close_notify, aborted",
	    (unsigned long long)c->id,
	    addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr)));
	conn_free(c);
}

/*
 * The worker takes no more input, usually because it has answered and
 * closed: what the client still sends is dropped, and what the worker
 * wrote before it closed is still delivered.
 */
static void
relay_worker_stopped(struct conn *c)
{
	log_debug("conn %llu: worker stopped reading: %s",
	    (unsigned long long)c->id, strerror(errno));
	relay_release(&c->up, &c->upoff);
	c->uplen = 0;
	c->up_eof = 1;
	c->up_shut = 1;
}

/*
 * After close_notify, read and drop what the client still sends until
 * it closes too.  Closing a socket with unread input makes the kernel
 * send a reset, and the reset makes the client's kernel discard the
 * reply the client has not read yet.
 */
static void
conn_linger(struct conn *c)
{
	if (c->pfd != -1) {
		event_del(&c->pfdev);
		close(c->pfd);
		c->pfd = -1;
		c->pfd_events = 0;
	}
	if (shutdown(c->fd, SHUT_WR) == -1) {
		conn_free(c);
		return;
	}
	c->state = CONN_LINGER;
	c->bytes_linger = 0;
	conn_set_events(c, EV_READ, 0);
	evtimer_add(&c->timer, &linger_tv);
}

static void
conn_linger_read(struct conn *c)
{
	ssize_t	 n;

	while ((n = read(c->fd, relay_buf, sizeof(relay_buf))) > 0) {
		c->bytes_linger += n;
		if (c->bytes_linger > LINGER_MAX) {
			conn_free(c);
			return;
		}
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		conn_set_events(c, EV_READ, 0);
		return;
	}
	conn_free(c);
}

void
conn_io(int fd, short event, void *arg)
{
	struct conn	*c = arg;

	if (event & EV_READ) {
		if (fd == c->fd)
			c->fd_rd = 1;
		else if (fd == c->pfd)
			c->pfd_rd = 1;
	}
	switch (c->state) {
	case CONN_HANDSHAKE:
		conn_handshake(c);
		break;
	case CONN_LINGER:
		conn_linger_read(c);
		break;
	default:
		conn_relay(c);
		break;
	}
}

void
conn_timeout(int fd, short event, void *arg)
{
	struct conn	*c = arg;
	char		 addr[ADDRSTRLEN];

	addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr));
	if (c->state == CONN_HANDSHAKE) {
		mstats.handshake_failures++;
		log_debug("conn %llu: %s: handshake timed out",
		    (unsigned long long)c->id, addr);
	} else
		log_debug("conn %llu: %s: idle timeout",
		    (unsigned long long)c->id, addr);
	conn_free(c);
}

/*
 * Wait for these events on the client's socket and on the worker's
 * end.  The events persist: a connection that keeps waiting for the same
 * thing, as a busy one mostly does, costs no epoll_ctl(2) per wakeup.
 */
void
conn_set_events(struct conn *c, short fdw, short pfdw)
{
	conn_watch(c, &c->fdev, c->fd, &c->fd_events, fdw);
	if (c->pfd != -1)
		conn_watch(c, &c->pfdev, c->pfd, &c->pfd_events, pfdw);
}

static void
conn_watch(struct conn *c, struct event *ev, int fd, short *cur, short want)
{
	if (*cur == want)
		return;
	event_del(ev);
	*cur = want;
	if (want) {
		event_set(ev, fd, want | EV_PERSIST, conn_io, c);
		event_add(ev, NULL);
	}
}
