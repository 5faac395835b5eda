/*
 * msh proxy's bridge: standard input into the TLS session and the
 * session out to standard output, both at once, as OpenSSH's
 * ProxyCommand needs.
 *
 * One poll(2) loop waits on the three descriptors, all nonblocking, with
 * one buffer of BRIDGE_BUF bytes each way: a direction that cannot write
 * stops reading, so that a slow reader slows its writer and nothing
 * grows.  tlsc.c says what a TLS read or write waits for
 * (TLSC_WANT_POLLIN or TLSC_WANT_POLLOUT); the socket is polled for that
 * alone, and the call is tried again once it comes.
 *
 * The end of standard input is passed on as a close_notify (tlsc_close()
 * on a socket msh owns sends it and leaves the socket open), after which
 * the session is still read: TLS 1.3 closes each direction on its own.
 * The end of the session, a close_notify or the connection's close, ends
 * the bridge once what came before it is written out.
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "msh.h"
#include "bridge.h"
#include "tlsc.h"

#define BRIDGE_BUF	(32 * 1024)	/* each way */

struct dir {
	char		 buf[BRIDGE_BUF];
	size_t		 off;		/* written out */
	size_t		 len;		/* read in */
	int		 eof;		/* its source has ended */
};

static int	 bridge_fail(char *, size_t, const char *, const char *);
static short	 want(ssize_t);

static int
bridge_fail(char *errbuf, size_t errlen, const char *what, const char *why)
{
	(void)snprintf(errbuf, errlen, "%s: %s", what, why);
	return (-1);
}

/* The event a TLS call waits for. */
static short
want(ssize_t rv)
{
	return (rv == TLSC_WANT_POLLIN ? POLLIN : POLLOUT);
}

/*
 * Set a descriptor nonblocking; *saved keeps its flags to put back.
 */
int
bridge_nonblock(int fd, int *saved)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return (-1);
	*saved = fl;
	if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) ==
	    -1)
		return (-1);
	return (0);
}

/*
 * Bridge in and out with the session until the session ends.  0 when it
 * has ended and all it sent is written out; -1 and errbuf on failure.
 */
int
bridge(struct conn *c, int in, int out, char *errbuf, size_t errlen)
{
	struct dir	 up, down;		/* in to TLS, TLS to out */
	struct pollfd	 pfd[3];
	const char	*e;
	ssize_t		 n;
	short		 rwant = 0, wwant = 0, cwant = 0;
	int		 in_ready = 1, out_ready = 1, closed = 0;

	memset(&up, 0, sizeof(up));
	memset(&down, 0, sizeof(down));
	for (;;) {
		/* Standard input into up, when it is empty. */
		if (!up.eof && up.len == 0 && in_ready) {
			if ((n = read(in, up.buf, sizeof(up.buf))) == -1) {
				if (errno == EAGAIN)
					in_ready = 0;
				else if (errno != EINTR)
					return (bridge_fail(errbuf, errlen,
					    "standard input", strerror(errno)));
			} else if (n == 0)
				up.eof = 1;
			else {
				up.off = 0;
				up.len = n;
			}
		}
		/* up into the session. */
		if (up.len > up.off && wwant == 0) {
			n = tlsc_write(c->tls, up.buf + up.off,
			    up.len - up.off);
			if (n == TLSC_WANT_POLLIN || n == TLSC_WANT_POLLOUT)
				wwant = want(n);
			else if (n == -1) {
				e = tlsc_error(c->tls);
				return (bridge_fail(errbuf, errlen, "write",
				    e != NULL ? e : "failed"));
			} else if ((up.off += n) == up.len)
				up.off = up.len = 0;
		}
		/* The end of standard input: close_notify, once. */
		if (up.eof && up.len == 0 && !closed && cwant == 0) {
			n = tlsc_close(c->tls);
			if (n == TLSC_WANT_POLLIN || n == TLSC_WANT_POLLOUT)
				cwant = want(n);
			else
				/* A session the proxy ended: said below. */
				closed = 1;
		}
		/* The session into down, when it is empty. */
		if (!down.eof && down.len == 0 && rwant == 0) {
			n = tlsc_read(c->tls, down.buf, sizeof(down.buf));
			if (n == TLSC_WANT_POLLIN || n == TLSC_WANT_POLLOUT)
				rwant = want(n);
			else if (n == -1) {
				/* OpenSSL 3's words for a close without
				 * close_notify: an end all the same. */
				e = tlsc_error(c->tls);
				if (e == NULL || strstr(e, "unexpected eof") ==
				    NULL)
					return (bridge_fail(errbuf, errlen,
					    "read", e != NULL ? e : "failed"));
				down.eof = 1;
			} else if (n == 0)
				down.eof = 1;
			else {
				down.off = 0;
				down.len = n;
			}
		}
		/* down out to standard output. */
		if (down.len > down.off && out_ready) {
			if ((n = write(out, down.buf + down.off,
			    down.len - down.off)) == -1) {
				if (errno == EAGAIN)
					out_ready = 0;
				else if (errno != EINTR)
					return (bridge_fail(errbuf, errlen,
					    "standard output",
					    strerror(errno)));
			} else if ((down.off += n) == down.len)
				down.off = down.len = 0;
		}
		if (down.eof && down.len == 0)
			return (0);

		/* Wait for what is waited for; try again what can go on. */
		if ((!up.eof && up.len == 0 && in_ready) ||
		    (up.len > up.off && wwant == 0) ||
		    (up.eof && up.len == 0 && !closed && cwant == 0) ||
		    (!down.eof && down.len == 0 && rwant == 0) ||
		    (down.len > down.off && out_ready))
			continue;
		pfd[0].fd = !up.eof && up.len == 0 ? in : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = down.len > down.off ? out : -1;
		pfd[1].events = POLLOUT;
		pfd[2].fd = c->fd;
		pfd[2].events = rwant | wwant | cwant;
		if (pfd[2].events == 0)
			pfd[2].fd = -1;
		pfd[0].revents = pfd[1].revents = pfd[2].revents = 0;
		if (poll(pfd, 3, -1) == -1) {
			if (errno == EINTR)
				continue;
			return (bridge_fail(errbuf, errlen, "poll",
			    strerror(errno)));
		}
		if ((pfd[0].revents | pfd[1].revents | pfd[2].revents) &
		    POLLNVAL)
			return (bridge_fail(errbuf, errlen, "poll",
			    "a descriptor is not open"));
		/* A hang-up or error is for read or write to tell. */
		if (pfd[0].revents != 0)
			in_ready = 1;
		if (pfd[1].revents != 0)
			out_ready = 1;
		if (pfd[2].revents != 0)
			rwant = wwant = cwant = 0;
	}
}
