/*
 * tlssink: the benchmark's stream endpoint.
 *
 * With -c/-k it terminates TLS 1.3 itself (OpenSSL) and is the "no hop"
 * reference for streams; without them it speaks plaintext and serves as
 * HAProxy's backend.  One thread, one epoll loop, non-blocking sockets.
 *
 * After the handshake the client sends a command header of 9 bytes,
 * a letter and a 64-bit big-endian length N:
 *
 *	D N	the sink sends N bytes, then waits for the next command
 *	U N	the sink reads and drops N bytes, answers "K", then waits
 *	E 0	echo: everything read is written back, until EOF
 *	X N	exchange: read N bytes, write them back, close
 *
 * An idle connection is one that sent no command.
 *
 *	tlssink -l 127.0.0.1:PORT [-c cert.pem -k key.pem] [-t tickets]
 */

#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define BUFSZ		16384		/* one TLS record */
#define MAXEVENTS	256

enum state { S_HANDSHAKE, S_CMD, S_DOWN, S_UP, S_ACK, S_ECHO, S_XREAD,
	S_XWRITE };

struct conn {
	int		 fd;
	SSL		*ssl;
	enum state	 st;
	uint32_t	 events;	/* registered with epoll */
	uint32_t	 want;		/* what blocked us */
	uint8_t		 hdr[9];
	size_t		 hlen;
	uint64_t	 left;
	uint8_t		*buf;		/* echo / exchange data, on demand */
	size_t		 blen, boff;
};

static int		 ep;
static SSL_CTX		*ctx;
static uint8_t		 scratch[BUFSZ];
static volatile sig_atomic_t quit;

static void
onterm(int sig)
{
	quit = 1;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* >0 bytes, 0 EOF, -1 error, -2 blocked (c->want set). */
static ssize_t
cread(struct conn *c, void *b, size_t n)
{
	ssize_t	 r;
	int	 e;

	if (c->ssl == NULL) {
		r = read(c->fd, b, n);
		if (r == -1 && (errno == EAGAIN || errno == EINTR)) {
			c->want = EPOLLIN;
			return (-2);
		}
		return (r);
	}
	r = SSL_read(c->ssl, b, (int)n);
	if (r > 0)
		return (r);
	switch ((e = SSL_get_error(c->ssl, (int)r))) {
	case SSL_ERROR_WANT_READ:
		c->want = EPOLLIN;
		return (-2);
	case SSL_ERROR_WANT_WRITE:
		c->want = EPOLLOUT;
		return (-2);
	case SSL_ERROR_ZERO_RETURN:
		return (0);
	default:
		ERR_clear_error();
		return (-1);
	}
}

static ssize_t
cwrite(struct conn *c, const void *b, size_t n)
{
	ssize_t	 r;

	if (c->ssl == NULL) {
		r = send(c->fd, b, n, MSG_NOSIGNAL);
		if (r == -1 && (errno == EAGAIN || errno == EINTR)) {
			c->want = EPOLLOUT;
			return (-2);
		}
		return (r);
	}
	r = SSL_write(c->ssl, b, (int)n);
	if (r > 0)
		return (r);
	switch (SSL_get_error(c->ssl, (int)r)) {
	case SSL_ERROR_WANT_READ:
		c->want = EPOLLIN;
		return (-2);
	case SSL_ERROR_WANT_WRITE:
		c->want = EPOLLOUT;
		return (-2);
	default:
		ERR_clear_error();
		return (-1);
	}
}

static void
conn_free(struct conn *c)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	free(c->buf);
	free(c);
}

static uint64_t
be64(const uint8_t *p)
{
	uint64_t v = 0;
	int	 i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (v);
}

/* Progress until something blocks; 0 to keep, -1 to close. */
static int
drive(struct conn *c)
{
	ssize_t	 n;
	size_t	 len;

	for (;;) {
		switch (c->st) {
		case S_HANDSHAKE:
			if ((n = SSL_do_handshake(c->ssl)) == 1) {
				c->st = S_CMD;
				break;
			}
			switch (SSL_get_error(c->ssl, (int)n)) {
			case SSL_ERROR_WANT_READ:
				c->want = EPOLLIN;
				return (0);
			case SSL_ERROR_WANT_WRITE:
				c->want = EPOLLOUT;
				return (0);
			default:
				ERR_clear_error();
				return (-1);
			}
		case S_CMD:
			n = cread(c, c->hdr + c->hlen, sizeof(c->hdr) - c->hlen);
			if (n == -2)
				return (0);
			if (n <= 0)
				return (-1);
			if ((c->hlen += n) < sizeof(c->hdr))
				break;
			c->hlen = 0;
			c->left = be64(c->hdr + 1);
			switch (c->hdr[0]) {
			case 'D':
				c->st = S_DOWN;
				break;
			case 'U':
				c->st = S_UP;
				break;
			case 'E':
				c->st = S_ECHO;
				break;
			case 'X':
				if (c->left == 0 || c->left > BUFSZ)
					return (-1);
				c->st = S_XREAD;
				break;
			default:
				return (-1);
			}
			if (c->st == S_ECHO || c->st == S_XREAD) {
				if (c->buf == NULL &&
				    (c->buf = malloc(BUFSZ)) == NULL)
					return (-1);
				c->blen = c->boff = 0;
			}
			break;
		case S_DOWN:
			if (c->left == 0) {
				c->st = S_CMD;
				break;
			}
			len = c->left < BUFSZ ? c->left : BUFSZ;
			if ((n = cwrite(c, scratch, len)) == -2)
				return (0);
			if (n < 0)
				return (-1);
			c->left -= n;
			break;
		case S_UP:
			if (c->left == 0) {
				c->st = S_ACK;
				break;
			}
			len = c->left < BUFSZ ? c->left : BUFSZ;
			if ((n = cread(c, scratch, len)) == -2)
				return (0);
			if (n <= 0)
				return (-1);
			c->left -= n;
			break;
		case S_ACK:
			if ((n = cwrite(c, "K", 1)) == -2)
				return (0);
			if (n < 0)
				return (-1);
			c->st = S_CMD;
			break;
		case S_ECHO:
			if (c->blen > 0) {
				n = cwrite(c, c->buf + c->boff, c->blen);
				if (n == -2)
					return (0);
				if (n < 0)
					return (-1);
				c->boff += n;
				c->blen -= n;
				break;
			}
			c->boff = 0;
			if ((n = cread(c, c->buf, BUFSZ)) == -2)
				return (0);
			if (n <= 0)
				return (-1);
			c->blen = n;
			break;
		case S_XREAD:
			if (c->blen == c->left) {
				c->st = S_XWRITE;
				break;
			}
			n = cread(c, c->buf + c->blen, c->left - c->blen);
			if (n == -2)
				return (0);
			if (n <= 0)
				return (-1);
			c->blen += n;
			break;
		case S_XWRITE:
			if (c->blen == 0) {
				if (c->ssl != NULL)
					(void)SSL_shutdown(c->ssl);
				return (-1);
			}
			n = cwrite(c, c->buf + c->boff, c->blen);
			if (n == -2)
				return (0);
			if (n < 0)
				return (-1);
			c->boff += n;
			c->blen -= n;
			break;
		}
	}
}

static void
conn_event(struct conn *c)
{
	struct epoll_event	 ev;

	c->want = 0;
	if (drive(c) == -1) {
		conn_free(c);
		return;
	}
	if (c->want != c->events) {
		memset(&ev, 0, sizeof(ev));
		ev.events = c->want;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
			conn_free(c);
			return;
		}
		c->events = c->want;
	}
	if (c->st != S_ECHO && c->st != S_XREAD && c->st != S_XWRITE &&
	    c->buf != NULL) {
		free(c->buf);
		c->buf = NULL;
	}
}

static void
do_accept(int lfd)
{
	struct epoll_event	 ev;
	struct conn		*c;
	int			 s, on = 1;

	for (;;) {
		if ((s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				perror("accept");
			return;
		}
		(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(s);
			continue;
		}
		c->fd = s;
		c->st = S_CMD;
		if (ctx != NULL) {
			if ((c->ssl = SSL_new(ctx)) == NULL) {
				close(s);
				free(c);
				continue;
			}
			SSL_set_fd(c->ssl, s);
			SSL_set_accept_state(c->ssl);
			c->st = S_HANDSHAKE;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		c->events = EPOLLIN;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == -1) {
			if (c->ssl != NULL)
				SSL_free(c->ssl);
			close(s);
			free(c);
			continue;
		}
		conn_event(c);
	}
}

/* Take whatever the client offers first: the sink speaks one thing. */
static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	if (inlen < 2 || in[0] == 0 || in[0] + 1u > inlen)
		return (SSL_TLSEXT_ERR_NOACK);
	*out = in + 1;
	*outlen = in[0];
	return (SSL_TLSEXT_ERR_OK);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	struct epoll_event	 ev, evs[MAXEVENTS];
	const char		*listen_on = NULL, *cert = NULL, *key = NULL;
	char			 host[64], *p;
	int			 ch, lfd, on = 1, i, n, tickets = 0;

	while ((ch = getopt(argc, argv, "c:k:l:t:")) != -1) {
		switch (ch) {
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'l':
			listen_on = optarg;
			break;
		case 't':
			tickets = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (listen_on == NULL || (cert == NULL) != (key == NULL) ||
	    strlen(listen_on) >= sizeof(host) ||
	    (p = strrchr(strcpy(host, listen_on), ':')) == NULL)
		goto usage;
	*p++ = '\0';

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(p));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		goto usage;

	if (cert != NULL) {
		if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
		    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
		    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key,
		    SSL_FILETYPE_PEM) != 1 || !SSL_CTX_check_private_key(ctx)) {
			ERR_print_errors_fp(stderr);
			return (1);
		}
		SSL_CTX_set_num_tickets(ctx, tickets);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	}

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, onterm);
	signal(SIGINT, onterm);

	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("bind");
	if (listen(lfd, 4096) == -1)
		die("listen");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		die("epoll_ctl");

	fprintf(stderr, "tlssink: listening on %s (%s)\n", listen_on,
	    ctx != NULL ? "TLS 1.3" : "plaintext");
	while (!quit) {
		if ((n = epoll_wait(ep, evs, MAXEVENTS, 500)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				do_accept(lfd);
			else
				conn_event(evs[i].data.ptr);
		}
	}
	return (0);

 usage:
	fprintf(stderr, "usage: tlssink -l addr:port [-c cert -k key] "
	    "[-t tickets]\n");
	return (2);
}
