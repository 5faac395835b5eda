/*
 * A TLS connection to the proxy, with one deadline for all of it.
 *
 * msh connects, shakes hands and calls in one bounded time
 * (MSH_TIMEOUT): the socket is nonblocking and every wait is a poll(2)
 * for what is left of that time.  The connection names its protocol
 * in ALPN and is refused unless the proxy selects it.  The proxy is
 * verified against a CA file if there is one, or else by the
 * certificate it showed before (known.c), before a request is sent.
 *
 * A failure to connect is fatal, as msh makes one connection and has
 * nothing to do without it; a failure to read or write is the caller's
 * to report (conn_error()), naming the proxy.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include "msh.h"

#define CLOSE_WAIT	1000		/* ms for the proxy's close */

static int	 conn_wait(struct conn *, short, const char *);
static int	 conn_fail(struct conn *, const char *, const char *);
static int	 conn_connect(struct conn *, const struct proxy *);

/*
 * host[:port], [v6 address]:port or a bare v6 address, into p.  NULL
 * if it is fine, or why not.
 */
const char *
proxy_parse(const char *s, struct proxy *p)
{
	const char	*host, *port = NULL, *e;
	const char	*errstr;
	long long	 pn;
	size_t		 hlen, i;

	memset(p, 0, sizeof(*p));
	host = s;
	if (*s == '[') {
		host = s + 1;
		if ((e = strchr(host, ']')) == NULL)
			return ("missing ']'");
		hlen = e - host;
		if (e[1] == ':')
			port = e + 2;
		else if (e[1] != '\0')
			return ("junk after ']'");
		if (memchr(host, ':', hlen) == NULL)
			return ("not an IPv6 address in brackets");
	} else if ((e = strchr(s, ':')) != NULL && strchr(e + 1, ':') ==
	    NULL) {
		hlen = e - s;
		port = e + 1;
	} else
		hlen = strlen(s);	/* a name, or a bare v6 address */

	if (hlen == 0)
		return ("no host");
	if (hlen > HOSTLEN)
		return ("host name too long");
	for (i = 0; i < hlen; i++) {
		if (!isalnum((unsigned char)host[i]) && host[i] != '-' &&
		    host[i] != '.' && host[i] != '_' && host[i] != ':')
			return ("invalid character in host");
		p->host[i] = tolower((unsigned char)host[i]);
	}
	p->host[hlen] = '\0';

	if (port == NULL)
		port = MSH_PORT;
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port))
		return ("invalid port");
	pn = strtonum(port, 1, 65535, &errstr);
	if (errstr != NULL)
		return ("invalid port");
	/* No leading zeros: one proxy, one name in known_proxies. */
	snprintf(p->port, sizeof(p->port), "%lld", pn);
	if ((size_t)snprintf(p->name, sizeof(p->name),
	    strchr(p->host, ':') != NULL ? "[%s]:%s" : "%s:%s", p->host,
	    p->port) >= sizeof(p->name))
		return ("host name too long");
	return (NULL);
}

/* Milliseconds left before the deadline, at least 0. */
int
conn_timeleft(struct conn *c)
{
	struct timespec	 now;
	long long	 ms;

	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		err(1, "clock_gettime");
	ms = (long long)(c->deadline.tv_sec - now.tv_sec) * 1000 +
	    (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return (ms < 0 ? 0 : ms);
}

/* Keep why the connection failed, for conn_error(). */
static int
conn_fail(struct conn *c, const char *what, const char *why)
{
	snprintf(c->error, sizeof(c->error), "%s%s%s", what != NULL ? what :
	    "", what != NULL ? ": " : "", why);
	return (-1);
}

/* "what: why" of the last failure of conn_read() or conn_write(). */
const char *
conn_error(struct conn *c)
{
	return (c->error);
}

/* Wait for the socket to be ready for events, until the deadline. */
static int
conn_wait(struct conn *c, short events, const char *what)
{
	struct pollfd	 pfd;
	int		 ms;

	pfd.fd = c->fd;
	pfd.events = events;
	for (;;) {
		if ((ms = conn_timeleft(c)) == 0)
			return (conn_fail(c, what, "timed out"));
		switch (poll(&pfd, 1, ms)) {
		case -1:
			if (errno == EINTR)
				continue;
			return (conn_fail(c, what, strerror(errno)));
		case 0:
			continue;
		default:
			return (0);
		}
	}
}

/* Connect to the first address of the proxy that answers. */
static int
conn_connect(struct conn *c, const struct proxy *p)
{
	struct addrinfo	 hints, *res, *ai;
	socklen_t	 len;
	int		 e, fd, soerr, saved = 0, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(p->host, p->port, &hints, &res)) != 0)
		errx(1, "%s: %s", c->name, e == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(e));

	for (ai = res, fd = -1; ai != NULL && fd == -1; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)) == -1) {
			saved = errno;
			continue;
		}
		c->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			if (conn_wait(c, POLLOUT, "connect") == -1)
				errx(1, "%s: %s", c->name, c->error);
			len = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &len) == -1)
				err(1, "getsockopt");
			if (soerr == 0)
				break;
			errno = soerr;
		}
		saved = errno;
		close(fd);
		c->fd = fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errx(1, "%s: connect: %s", c->name, strerror(saved));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		err(1, "setsockopt TCP_NODELAY");
	return (fd);
}

/*
 * Connect to the proxy, shake hands, check the protocol it selected
 * and verify it.  On return nothing has been sent but the handshake.
 */
void
conn_dial(struct conn *c, const struct dial *d)
{
	const char	*alpn, *hash;
	int		 rv;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	strlcpy(c->name, d->proxy->name, sizeof(c->name));
	if (clock_gettime(CLOCK_MONOTONIC, &c->deadline) == -1)
		err(1, "clock_gettime");
	c->deadline.tv_sec += MSH_TIMEOUT;

	if ((c->cfg = tls_config_new()) == NULL)
		err(1, "tls_config_new");
	if (tls_config_set_alpn(c->cfg, d->alpn) == -1)
		errx(1, "ALPN: %s", tls_config_error(c->cfg));
	if (d->cafile != NULL) {
		if (tls_config_set_ca_file(c->cfg, d->cafile) == -1)
			errx(1, "%s: %s", d->cafile, tls_config_error(c->cfg));
	} else {
		/* Verified below, by the hash, before a request is sent. */
		tls_config_insecure_noverifycert(c->cfg);
		tls_config_insecure_noverifyname(c->cfg);
	}
	if (d->cert != NULL && tls_config_set_keypair_mem(c->cfg,
	    (const uint8_t *)d->cert, d->certlen, (const uint8_t *)d->key,
	    d->keylen) == -1)
		errx(1, "client certificate: %s", tls_config_error(c->cfg));
	if ((c->tls = tls_client()) == NULL)
		err(1, "tls_client");
	if (tls_configure(c->tls, c->cfg) == -1)
		errx(1, "tls_configure: %s", tls_error(c->tls));

	if (d->have_fd)
		c->fd = d->fd;
	else
		conn_connect(c, d->proxy);
	if (tls_connect_socket(c->tls, c->fd, d->proxy->host) == -1)
		errx(1, "%s: %s", c->name, tls_error(c->tls));
	while ((rv = tls_handshake(c->tls)) != 0) {
		if ((rv == TLS_WANT_POLLIN && conn_wait(c, POLLIN,
		    "TLS handshake") == -1) || (rv == TLS_WANT_POLLOUT &&
		    conn_wait(c, POLLOUT, "TLS handshake") == -1))
			errx(1, "%s: %s", c->name, c->error);
		if (rv == -1)
			errx(1, "%s: TLS handshake: %s", c->name,
			    tls_error(c->tls));
	}
	/* The private key is in the TLS context now, not in the config. */
	tls_config_clear_keys(c->cfg);

	if ((alpn = tls_conn_alpn_selected(c->tls)) == NULL ||
	    strcmp(alpn, d->alpn) != 0)
		errx(1, "%s: the proxy does not serve %s", c->name, d->alpn);
	if (d->cafile == NULL) {
		if ((hash = tls_peer_cert_hash(c->tls)) == NULL)
			errx(1, "%s: the proxy showed no certificate",
			    c->name);
		known_check(d->home, c->name, hash);
	}
}

/* Up to len bytes; 0 at the end of the stream; -1 on failure. */
ssize_t
conn_read(struct conn *c, void *buf, size_t len)
{
	const char	*e;
	ssize_t		 n;

	for (;;) {
		if ((n = tls_read(c->tls, buf, len)) == TLS_WANT_POLLIN) {
			if (conn_wait(c, POLLIN, "read") == -1)
				return (-1);
		} else if (n == TLS_WANT_POLLOUT) {
			if (conn_wait(c, POLLOUT, "read") == -1)
				return (-1);
		} else if (n == -1) {
			/* OpenSSL 3's words for a close without close_notify */
			e = tls_error(c->tls);
			if (e != NULL && strstr(e, "unexpected eof") != NULL)
				return (0);
			/* libtls says what failed: "read failed: ..." */
			return (conn_fail(c, e != NULL ? NULL : "read",
			    e != NULL ? e : "failed"));
		} else
			return (n);
	}
}

/* All of buf; 0 when written, -1 on failure. */
int
conn_write(struct conn *c, const void *buf, size_t len)
{
	const char	*p = buf, *e;
	ssize_t		 n;

	while (len > 0) {
		if ((n = tls_write(c->tls, p, len)) == TLS_WANT_POLLIN) {
			if (conn_wait(c, POLLIN, "write") == -1)
				return (-1);
		} else if (n == TLS_WANT_POLLOUT) {
			if (conn_wait(c, POLLOUT, "write") == -1)
				return (-1);
		} else if (n == -1) {
			e = tls_error(c->tls);
			return (conn_fail(c, e != NULL ? NULL : "write",
			    e != NULL ? e : "failed"));
		} else {
			p += n;
			len -= n;
		}
	}
	return (0);
}

/*
 * Send close_notify, then wait a moment for the proxy to close its
 * end, so that bytes it sent last do not turn our close into a reset.
 * Failures here change nothing for the user and are not reported.
 */
void
conn_close(struct conn *c)
{
	struct pollfd	 pfd;
	struct timespec	 now;
	char		 buf[512];
	int		 rv, ms;

	/* At most CLOSE_WAIT more, whatever the deadline says. */
	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		err(1, "clock_gettime");
	now.tv_sec += CLOSE_WAIT / 1000;
	if (now.tv_sec < c->deadline.tv_sec || (now.tv_sec ==
	    c->deadline.tv_sec && now.tv_nsec < c->deadline.tv_nsec))
		c->deadline = now;
	if (c->tls != NULL) {
		while ((rv = tls_close(c->tls)) == TLS_WANT_POLLIN ||
		    rv == TLS_WANT_POLLOUT) {
			pfd.fd = c->fd;
			pfd.events = rv == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
			if ((ms = conn_timeleft(c)) == 0 ||
			    poll(&pfd, 1, ms) <= 0)
				break;
		}
		tls_free(c->tls);
		c->tls = NULL;
	}
	if (c->fd != -1) {
		if (shutdown(c->fd, SHUT_WR) == 0) {
			pfd.fd = c->fd;
			pfd.events = POLLIN;
			while ((ms = conn_timeleft(c)) > 0 && poll(&pfd, 1,
			    ms) > 0 && read(c->fd, buf, sizeof(buf)) > 0)
				;
		}
		close(c->fd);
		c->fd = -1;
	}
	if (c->cfg != NULL) {
		tls_config_free(c->cfg);
		c->cfg = NULL;
	}
}
