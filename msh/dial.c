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
 *
 * With a client certificate, the session the proxy's tickets carry is
 * kept in the Mezite directory, bound to that certificate and proxy,
 * and offered on the next connection: a resumed handshake costs the
 * proxy no signature.  A resumed session carries the identity of the
 * certificate it was made with, so a session is used only with the
 * certificate and proxy it names.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msh.h"
#include "tlsc.h"

#define CLOSE_WAIT	1000		/* ms for the proxy's close */
#define SESSION_MAGIC	"mezite-session 1\n"

static int	 conn_wait(struct conn *, short, const char *);
static int	 conn_fail(struct conn *, const char *, const char *);
static int	 conn_connect(struct conn *, const struct proxy *);
static void	 session_offer(struct conn *, const struct dial *);
static int	 trust_id(const char *, char *, size_t);

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

	if ((c->tls = tlsc_client(d->alpn, d->cafile, d->cert, d->certlen,
	    d->key, d->keylen, c->error, sizeof(c->error))) == NULL)
		errx(1, "%s", c->error);
	if (d->cert != NULL && d->certhash != NULL && d->home != NULL &&
	    trust_id(d->cafile, c->trust, sizeof(c->trust)) == 0) {
		c->home = d->home;
		strlcpy(c->certhash, d->certhash, sizeof(c->certhash));
		session_offer(c, d);
	}

	if (d->have_fd)
		c->fd = d->fd;
	else
		conn_connect(c, d->proxy);
	if (tlsc_connect_socket(c->tls, c->fd, d->proxy->host) == -1)
		errx(1, "%s: %s", c->name, tlsc_error(c->tls));
	while ((rv = tlsc_handshake(c->tls)) != 0) {
		if ((rv == TLSC_WANT_POLLIN && conn_wait(c, POLLIN,
		    "TLS handshake") == -1) || (rv == TLSC_WANT_POLLOUT &&
		    conn_wait(c, POLLOUT, "TLS handshake") == -1))
			errx(1, "%s: %s", c->name, c->error);
		if (rv == -1)
			errx(1, "%s: TLS handshake: %s", c->name,
			    tlsc_error(c->tls));
	}

	if ((alpn = tlsc_alpn_selected(c->tls)) == NULL ||
	    strcmp(alpn, d->alpn) != 0)
		errx(1, "%s: the proxy does not serve %s", c->name, d->alpn);
	if (d->cafile == NULL) {
		if ((hash = tlsc_peer_cert_hash(c->tls)) == NULL)
			errx(1, "%s: the proxy showed no certificate",
			    c->name);
		known_check(d->home, c->name, hash);
	}
}

/*
 * What the proxy was verified with, as the session file names it: the
 * CA file's SHA-256 ("SHA256:hex"), or "known" for known_proxies.  A
 * resumed handshake verifies nothing, so a session is offered only to
 * be verified as it was when it was made.  -1: the CA file cannot be
 * read, and no session is kept.
 */
static int
trust_id(const char *cafile, char *buf, size_t len)
{
	unsigned char	 md[EVP_MAX_MD_SIZE], data[8192];
	unsigned int	 mdlen, i;
	EVP_MD_CTX	*ctx;
	ssize_t		 n;
	int		 fd, rv = -1;

	if (cafile == NULL)
		return (strlcpy(buf, "known", len) < len ? 0 : -1);
	if (len < HASHLEN + 1)
		return (-1);
	if ((fd = open(cafile, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto done;
	while ((n = read(fd, data, sizeof(data))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto done;
		}
		if (EVP_DigestUpdate(ctx, data, n) != 1)
			goto done;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto done;
	strlcpy(buf, "SHA256:", len);
	for (i = 0; i < mdlen; i++)
		snprintf(buf + 7 + 2 * i, 3, "%02x", md[i]);
	rv = 0;
 done:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return (rv);
}

/*
 * The session file: a line of magic, the proxy ("proxy host:port"),
 * the client certificate ("cert SHA256:hex") and what verified the
 * proxy ("ca SHA256:hex" or "ca known", trust_id()) when it was made,
 * then the session in PEM.  Parse buf, NUL-terminated: 0 and the parts
 * (pointers into buf, the lines' ends overwritten with NULs), or -1 if
 * it is not a session file.
 */
int
session_parse(char *buf, size_t len, const char **proxy,
    const char **certhash, const char **trust, const char **pem,
    size_t *pemlen)
{
	char	*p, *e;

	if (strlen(buf) != len || strncmp(buf, SESSION_MAGIC,
	    strlen(SESSION_MAGIC)) != 0)
		return (-1);
	p = buf + strlen(SESSION_MAGIC);
	if (strncmp(p, "proxy ", 6) != 0 || (e = strchr(p, '\n')) == NULL)
		return (-1);
	*e = '\0';
	*proxy = p + 6;
	if (strlen(*proxy) == 0 || strlen(*proxy) >= PROXYLEN)
		return (-1);
	p = e + 1;
	if (strncmp(p, "cert ", 5) != 0 || (e = strchr(p, '\n')) == NULL)
		return (-1);
	*e = '\0';
	*certhash = p + 5;
	if (!hash_valid(*certhash))
		return (-1);
	p = e + 1;
	if (strncmp(p, "ca ", 3) != 0 || (e = strchr(p, '\n')) == NULL)
		return (-1);
	*e = '\0';
	*trust = p + 3;
	if (strcmp(*trust, "known") != 0 && !hash_valid(*trust))
		return (-1);
	p = e + 1;
	*pem = p;
	*pemlen = len - (p - buf);
	if (*pemlen == 0 || *pemlen > TLSC_SESSION_MAX)
		return (-1);
	return (0);
}

/*
 * Offer the kept session if it was made with this certificate, to this
 * proxy, verified as this one will be.  A session file that is not the
 * user's alone, or not a session, is ignored: the handshake is then a
 * full one.
 */
static void
session_offer(struct conn *c, const struct dial *d)
{
	const char	*proxy, *certhash, *trust, *pem;
	char		*buf;
	size_t		 len, pemlen;
	int		 rv;

	if ((rv = home_read(c->home, FILE_SESSION, MODE_SECRET, &buf,
	    &len)) == 1)
		return;
	if (rv == -1) {
		warnx("%s/%s ignored", c->home->path, FILE_SESSION);
		return;
	}
	if (session_parse(buf, len, &proxy, &certhash, &trust, &pem,
	    &pemlen) == -1)
		warnx("%s/%s is not a session file: ignored", c->home->path,
		    FILE_SESSION);
	else if (strcmp(certhash, c->certhash) != 0)
		warnx("%s/%s was made with another certificate: ignored",
		    c->home->path, FILE_SESSION);
	else if (strcmp(proxy, d->proxy->name) == 0 &&
	    strcmp(trust, c->trust) == 0 &&
	    tlsc_set_session(c->tls, pem, pemlen) == -1)
		warnx("%s/%s: %s: ignored", c->home->path, FILE_SESSION,
		    tlsc_error(c->tls));
	freezero(buf, len);
}

/*
 * Keep the session of a ticket the proxy sent on this connection, or
 * remove the one offered if the proxy would not resume it.  Failures
 * are warned of and change nothing else.
 */
void
conn_keep(struct conn *c)
{
	char	*pem, *buf;
	size_t	 pemlen, len;

	if (c->home == NULL || c->tls == NULL)
		return;
	if (!tlsc_session_new(c->tls)) {
		if (tlsc_session_offered(c->tls) && !tlsc_resumed(c->tls))
			(void)home_remove(c->home, FILE_SESSION);
		return;
	}
	if ((pem = tlsc_session_pem(c->tls, &pemlen)) == NULL)
		return;
	len = strlen(SESSION_MAGIC) + 6 + strlen(c->name) + 6 +
	    strlen(c->certhash) + 4 + strlen(c->trust) + 1 + pemlen + 1;
	if ((buf = malloc(len)) != NULL) {
		(void)snprintf(buf, len, "%sproxy %s\ncert %s\nca %s\n%s",
		    SESSION_MAGIC, c->name, c->certhash, c->trust, pem);
		(void)home_write(c->home, FILE_SESSION, buf, strlen(buf));
		freezero(buf, len);
	}
	freezero(pem, pemlen);
	c->home = NULL;		/* once */
}

/* Up to len bytes; 0 at the end of the stream; -1 on failure. */
ssize_t
conn_read(struct conn *c, void *buf, size_t len)
{
	const char	*e;
	ssize_t		 n;

	for (;;) {
		if ((n = tlsc_read(c->tls, buf, len)) == TLSC_WANT_POLLIN) {
			if (conn_wait(c, POLLIN, "read") == -1)
				return (-1);
		} else if (n == TLSC_WANT_POLLOUT) {
			if (conn_wait(c, POLLOUT, "read") == -1)
				return (-1);
		} else if (n == -1) {
			/* OpenSSL's words for a close without close_notify */
			e = tlsc_error(c->tls);
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
		if ((n = tlsc_write(c->tls, p, len)) == TLSC_WANT_POLLIN) {
			if (conn_wait(c, POLLIN, "write") == -1)
				return (-1);
		} else if (n == TLSC_WANT_POLLOUT) {
			if (conn_wait(c, POLLOUT, "write") == -1)
				return (-1);
		} else if (n == -1) {
			e = tlsc_error(c->tls);
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
		conn_keep(c);
		while ((rv = tlsc_close(c->tls)) == TLSC_WANT_POLLIN ||
		    rv == TLSC_WANT_POLLOUT) {
			pfd.fd = c->fd;
			pfd.events = rv == TLSC_WANT_POLLIN ? POLLIN : POLLOUT;
			if ((ms = conn_timeleft(c)) == 0 ||
			    poll(&pfd, 1, ms) <= 0)
				break;
		}
		tlsc_free(c->tls);
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
}
