/*
 * The agent's identity: its key and host certificate in the state
 * directory, got by Join (with the one-time token) and kept by Renew.
 *
 * Both calls are msh's blocking dialer and gRPC client, run in a child
 * of their own (join_child()), so that the tunnel's event loop never
 * waits on them: the child makes a new key, calls, writes the files
 * (each replaced whole, key.pem mode 0600) and exits 0; any failure
 * ends it with a message and status 1.  The parent hears of it by
 * SIGCHLD and reads the files again (creds_load()).
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mezd.h"
#include "rpc.h"
#include "auth.pb-c.h"

#define CHILD_TIMEOUT	30		/* s: connect through CONNECT */

static int	 child_wait(int, short, time_t);
static int	 child_connect(const struct proxy *, time_t);
static int	 child_httpproxy(const struct httpproxy *,
		    const struct proxy *);

static int
child_wait(int fd, short events, time_t deadline)
{
	struct pollfd	 pfd;
	time_t		 left;
	int		 rv;

	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		if ((left = deadline - time(NULL)) <= 0)
			return (-1);
		if ((rv = poll(&pfd, 1, left * 1000)) == -1 && errno != EINTR)
			return (-1);
		if (rv > 0)
			return (0);
	}
}

/* A blocking-style connect with a deadline; the socket stays O_NONBLOCK. */
static int
child_connect(const struct proxy *p, time_t deadline)
{
	struct addrinfo	 hints, *res, *ai;
	socklen_t	 len;
	int		 e, fd = -1, soerr;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(p->host, p->port, &hints, &res)) != 0)
		errx(1, "%s: %s", p->name, gai_strerror(e));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && child_wait(fd, POLLOUT,
		    deadline) == 0) {
			len = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &len) == 0 && soerr == 0)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errx(1, "%s: cannot connect", p->name);
	return (fd);
}

/* A socket to mezited through the HTTP proxy's CONNECT. */
static int
child_httpproxy(const struct httpproxy *hp, const struct proxy *to)
{
	struct connectresp	 r;
	char			 buf[CONNRESP_MAX]; /* > CONNREQ_MAX */
	const char		*why;
	size_t			 len = 0, off = 0;
	time_t			 deadline = time(NULL) + CHILD_TIMEOUT;
	ssize_t			 n;
	int			 fd, rv, reqlen;

	fd = child_connect(&hp->addr, deadline);
	if ((reqlen = connectreq_build(hp, to, buf, CONNREQ_MAX)) == -1)
		errx(1, "CONNECT request too long");
	while (off < (size_t)reqlen) {
		if ((n = write(fd, buf + off, reqlen - off)) == -1) {
			if (errno == EAGAIN && child_wait(fd, POLLOUT,
			    deadline) == 0)
				continue;
			err(1, "http proxy %s", hp->addr.name);
		}
		off += n;
	}
	explicit_bzero(buf, reqlen);
	for (;;) {
		if ((n = read(fd, buf + len, sizeof(buf) - len)) == -1) {
			if (errno == EAGAIN && child_wait(fd, POLLIN,
			    deadline) == 0)
				continue;
			err(1, "http proxy %s", hp->addr.name);
		}
		if (n == 0)
			errx(1, "http proxy %s closed the connection",
			    hp->addr.name);
		len += n;
		if ((rv = connectresp_parse(buf, len, &r, &why)) == -1)
			errx(1, "http proxy %s: %s", hp->addr.name, why);
		if (rv == 1)
			break;
	}
	if (r.status != 200)
		errx(1, "http proxy %s: \"%s\"", hp->addr.name, r.line);
	if (r.hdrlen != len)
		errx(1, "http proxy %s: bytes after its response",
		    hp->addr.name);
	return (fd);
}

/*
 * The child: Join with the token if cur is NULL, Renew presenting cur
 * otherwise; then the files.  Never returns.
 */
__dead void
join_child(const struct mezd_conf *c, struct home *h, const struct creds *cur)
{
	Mezite__Auth__V1__JoinRequest	 jreq =
	    MEZITE__AUTH__V1__JOIN_REQUEST__INIT;
	Mezite__Auth__V1__RenewRequest	 rreq =
	    MEZITE__AUTH__V1__RENEW_REQUEST__INIT;
	Mezite__Auth__V1__Label		 lb[MAXLABELS], *lbp[MAXLABELS];
	Mezite__Auth__V1__JoinResponse	*res;
	struct httpproxy		 hp;
	struct rpc_status		 st;
	struct dial			 d;
	struct conn			 conn;
	struct rpc			*r;
	EVP_PKEY			*key;
	X509				*x;
	char				 errbuf[256];
	uint8_t				*spki;
	size_t				 spkilen, i;
	int				 rv;

	/*
	 * Renew keeps the key: the tunnel worker knows the same agent by
	 * it, and only the certificate file changes.
	 */
	if ((key = cur == NULL ? key_new() : key_load(cur->key,
	    cur->keylen)) == NULL)
		errx(1, "cannot %s the key", cur == NULL ? "make" : "read");
	if (key_spki(key, &spki, &spkilen) == -1)
		errx(1, "cannot encode the public key");
	for (i = 0; i < c->nlabels; i++) {
		mezite__auth__v1__label__init(&lb[i]);
		lb[i].key = (char *)c->labels[i].key;
		lb[i].value = (char *)c->labels[i].value;
		lbp[i] = &lb[i];
	}

	memset(&d, 0, sizeof(d));
	d.proxy = &c->proxy;
	d.alpn = ALPN_AUTH;
	d.cafile = c->ca;
	if ((rv = httpproxy_select(c, &hp, errbuf, sizeof(errbuf))) == -1)
		errx(1, "%s", errbuf);
	if (rv == 1) {
		d.have_fd = 1;
		d.fd = child_httpproxy(&hp, &c->proxy);
	}
	explicit_bzero(&hp, sizeof(hp));
	if (cur != NULL) {
		d.cert = cur->cert;
		d.certlen = cur->certlen;
		d.key = cur->key;
		d.keylen = cur->keylen;
	}
	conn_dial(&conn, &d);
	r = rpc_open(&conn);
	if (cur == NULL) {
		jreq.token = (char *)c->token;
		jreq.node = (char *)c->name;
		jreq.public_key.data = spki;
		jreq.public_key.len = spkilen;
		jreq.n_labels = c->nlabels;
		jreq.labels = lbp;
		rpc_send(r, &mezite__auth__v1__auth__descriptor, "Join",
		    &jreq.base);
	} else {
		rreq.public_key.data = spki;
		rreq.public_key.len = spkilen;
		rreq.n_labels = c->nlabels;
		rreq.labels = lbp;
		rpc_send(r, &mezite__auth__v1__auth__descriptor, "Renew",
		    &rreq.base);
	}
	res = (Mezite__Auth__V1__JoinResponse *)rpc_wait(r, &st);
	rpc_close(r);
	conn_close(&conn);
	if (res == NULL)
		errx(1, "%s: %s (%s)", cur == NULL ? "Join" : "Renew",
		    st.message, grpc_code_name(st.code));

	if (strcmp(res->node, c->name) != 0)
		errx(1, "the proxy certified \"%s\", not \"%s\"", res->node,
		    c->name);
	if ((x = cert_load((const char *)res->certificate.data,
	    res->certificate.len)) == NULL || !cert_matches_key(x, key))
		errx(1, "the certificate is not for our key");
	X509_free(x);
	/*
	 * The key first, after a Join: a crash between the two renames
	 * leaves a key without its certificate, which creds_load() refuses
	 * (and the agent joins again), never a certificate of a lost key
	 * in use.  A Renew writes the certificate alone.
	 */
	if ((cur == NULL && key_save(h, FILE_KEY, key) == -1) ||
	    home_write(h, FILE_HOSTCA, res->ca_certificate.data,
	    res->ca_certificate.len) == -1 ||
	    (res->user_ca_certificate.len > 0 && home_write(h, FILE_USERCA,
	    res->user_ca_certificate.data, res->user_ca_certificate.len) ==
	    -1) ||
	    home_write(h, FILE_CERT, res->certificate.data,
	    res->certificate.len) == -1)
		errx(1, "cannot write to %s", h->path);
	EVP_PKEY_free(key);
	free(spki);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	_exit(0);
}

void
creds_free(struct creds *cr)
{
	if (cr->key != NULL)
		freezero(cr->key, cr->keylen);
	free(cr->cert);
	memset(cr, 0, sizeof(*cr));
}

/*
 * The key and certificate of the state directory, if they are a pair,
 * name this node and have not expired.  0: loaded into cr; 1: none
 * there; -1: unusable, err says why.
 */
int
creds_load(const struct mezd_conf *c, struct home *h, struct creds *cr,
    char *err, size_t errlen)
{
	struct certinfo	 ci;
	struct tm	 tm;
	EVP_PKEY	*key = NULL;
	X509		*x = NULL;
	int		 rv = -1, r1, r2;

	memset(cr, 0, sizeof(*cr));
	r1 = home_read(h, FILE_CERT, MODE_FILE, &cr->cert, &cr->certlen);
	r2 = home_read(h, FILE_KEY, MODE_SECRET, &cr->key, &cr->keylen);
	if (r1 == 1 && r2 == 1) {
		creds_free(cr);
		return (1);
	}
	if (r1 != 0 || r2 != 0) {
		snprintf(err, errlen, "%s: %s or %s missing or unreadable",
		    h->path, FILE_CERT, FILE_KEY);
		goto done;
	}
	if ((x = cert_load(cr->cert, cr->certlen)) == NULL ||
	    (key = key_load(cr->key, cr->keylen)) == NULL) {
		snprintf(err, errlen, "%s: malformed %s or %s", h->path,
		    FILE_CERT, FILE_KEY);
		goto done;
	}
	if (!cert_matches_key(x, key)) {
		snprintf(err, errlen, "%s: %s is not for %s", h->path,
		    FILE_CERT, FILE_KEY);
		goto done;
	}
	if (cert_info(x, &ci) == -1) {
		snprintf(err, errlen, "%s: %s is not a Mezite certificate",
		    h->path, FILE_CERT);
		goto done;
	}
	certinfo_free(&ci);
	if (strcmp(ci.name, c->name) != 0) {
		snprintf(err, errlen, "%s: %s names \"%s\", not \"%s\"",
		    h->path, FILE_CERT, ci.name, c->name);
		goto done;
	}
	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1 ||
	    (cr->not_before = timegm(&tm)) == (time_t)-1) {
		snprintf(err, errlen, "%s: %s: malformed validity", h->path,
		    FILE_CERT);
		goto done;
	}
	cr->not_after = ci.not_after;
	if (cr->not_after <= time(NULL)) {
		snprintf(err, errlen, "%s: %s has expired", h->path,
		    FILE_CERT);
		goto done;
	}
	rv = 0;
 done:
	EVP_PKEY_free(key);
	X509_free(x);
	if (rv == -1)
		creds_free(cr);
	return (rv);
}
