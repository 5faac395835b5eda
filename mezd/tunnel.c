/*
 * The tunnel: one mTLS connection to mezited with ALPN mezite-tunnel,
 * on which mezd is the HTTP/2 server (proto/tunnel.proto).  It answers
 * the proxy's hello and serves each CONNECT stream from a connection
 * to the local service the stream names.
 *
 * A tunnel goes RESOLVE (evdns, so that no lookup blocks the loop) ->
 * CONNECT (each address in turn) -> [PROXYW -> PROXYR: an HTTP proxy's
 * CONNECT] -> HANDSHAKE -> UP.  Any failure drops it; the active
 * tunnel is then dialled again after a jittered backoff (1 s doubling
 * to 30 s, full jitter), reset once a tunnel has served the hello.  On
 * the proxy's GOAWAY, or when a renewed certificate is to be used, a
 * new tunnel is dialled at once and the old one serves its streams to
 * their end.
 *
 * The TLS session of the proxy's last ticket is kept in memory, never
 * on disk, with the hash of the certificate the tunnel was dialled
 * with, and offered when a tunnel is dialled again: a resumed handshake
 * costs the proxy no signature, which matters when every agent dials
 * again at once after the proxy was away.  It is offered only with that
 * certificate (a resumed session has the identity of the certificate it
 * was made with), and dropped when a certificate is renewed or
 * replaced, or when the proxy would not resume it.
 *
 * Memory is bounded by these, per object and in all:
 *	tunnels		MAXTUNNELS (the active one and those draining)
 *	per tunnel	OUTBUF of output, CONNRESP_MAX for the HTTP proxy,
 *			and what the proxy sent us but a target has not
 *			taken yet: at most CONN_WINDOW (flow control, as
 *			nothing is acknowledged before it is written on)
 *	streams		MAXSTREAMS in all tunnels (then 503), each with
 *			at most DOWNMAX read from its target and not yet
 *			sent, and at most STREAM_WINDOW received and not
 *			yet written to the target
 * so at most MAXSTREAMS * DOWNMAX + MAXTUNNELS * (CONN_WINDOW + OUTBUF
 * + CONNRESP_MAX) = 64 MiB + 32 MiB, plus nghttp2's own state.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <event.h>
#include <event2/dns.h>
#include <nghttp2/nghttp2.h>

#include "log.h"
#include "mezd.h"
#include "tlsc.h"
#include "tunnel.pb-c.h"

#define MAXTUNNELS	4
#define MAXSTREAMS	1024		/* CONNECT streams, all tunnels */
#define STREAM_WINDOW	(256 * 1024)	/* INITIAL_WINDOW_SIZE */
#define CONN_WINDOW	(8 * 1024 * 1024)
#define DOWNMAX		(64 * 1024)	/* read from a target */
#define OUTBUF		(32 * 1024)	/* TLS output of a tunnel */
#define MAXHEADERS	(16 * 1024)	/* MAX_HEADER_LIST_SIZE */
#define DIAL_TIMEOUT	30		/* s: resolve to handshake done */
#define TARGET_TIMEOUT	10		/* s: connect to a service */
#define LINGER_TIMEOUT	30		/* s: to finish a closed stream */
#define BACKOFF_CAP	30		/* s */
#define HELLO_PATH	"/mezite.tunnel.v1/hello"
#define SHA256_LEN	32

enum tstate {
	T_RESOLVE,
	T_CONNECT,
	T_PROXYW,
	T_PROXYR,
	T_HANDSHAKE,
	T_UP
};

enum sstate {
	S_NEW,
	S_HELLO,
	S_CONNECTING,
	S_OPEN,
	S_DONE			/* answered, reset or failed */
};

struct tun;

struct stream {
	TAILQ_ENTRY(stream)	 entry;
	struct tun		*t;	/* NULL: lingering, see on_close */
	int32_t			 id;
	enum sstate		 state;
	char			 method[16];
	char			 authority[NAMELEN + 1];
	char			 path[sizeof(HELLO_PATH)];
	int			 bad;	/* a header too long for these */
	const struct service	*svc;
	int			 counted;	/* in nstreams_all */
	size_t			 helloff;

	int			 fd;	/* the target */
	struct event		*rev, *wev;
	int			 reading;

	uint8_t			*up;	/* to the target: STREAM_WINDOW */
	size_t			 upoff, uplen, upcap;
	int			 up_eof, shut_wr;

	uint8_t			*down;	/* from it, DOWNMAX */
	size_t			 downoff, downlen;
	int			 down_eof, deferred;
	int64_t			 linger_until;
};
TAILQ_HEAD(streams, stream);

struct tun {
	TAILQ_ENTRY(tun)	 entry;
	unsigned int		 id;
	enum tstate		 state;
	int			 fd;
	struct tlsc		*tls;
	uint8_t			 certmd[SHA256_LEN];	/* dialled with */
	struct event		*rev, *wev;
	struct evdns_getaddrinfo_request *dnsreq;
	struct evutil_addrinfo	*ai, *next;
	const struct proxy	*dialto;
	int			 saved_errno;
	int64_t			 deadline;	/* ms, until UP */

	char			 pbuf[CONNRESP_MAX];
	size_t			 poff, plen;

	nghttp2_session		*h2;
	uint8_t			 out[OUTBUF];
	size_t			 outlen;
	const uint8_t		*pend;	/* nghttp2's, not yet in out */
	size_t			 pendlen;
	int64_t			 last_recv, last_ping;
	int			 hello;		/* served it */
	int			 draining;	/* out of service */
	int			 retire;	/* GOAWAY once replaced */
	int			 goaway;	/* the proxy's GOAWAY */
	struct streams		 streams;
};
TAILQ_HEAD(tuns, tun);

/* The agent's tunnels, and what they share. */
static struct event_base	*base;
static struct evdns_base	*dns;
static const struct mezd_conf	*conf;
static const struct httpproxy	*hproxy;	/* NULL: direct */
static const struct creds	*creds;
static uint8_t			*hello;	/* a packed Hello */
static size_t			 hellolen;
static struct tuns		 tuns = TAILQ_HEAD_INITIALIZER(tuns);
static struct tun		*active;	/* the one dialled again */
static size_t			 ntuns;
static unsigned int		 tun_ids;
static struct streams		 lingering =
				    TAILQ_HEAD_INITIALIZER(lingering);
static size_t			 nstreams_all;
static unsigned int		 attempt;	/* of the backoff */
static struct event		*reconnect_ev, *tick_ev;
static int			 stopping;
/* The session to resume, in PEM, and its certificate's hash. */
static char			*sess;
static size_t			 sesslen;
static uint8_t			 sesscert[SHA256_LEN];

static int64_t	 now_ms(void);
static void	 schedule(int);
static void	 reconnect_cb(int, short, void *);
static void	 tick_cb(int, short, void *);
static void	 tun_ev(int, short, void *);
static void	 tun_resolved(int, struct evutil_addrinfo *, void *);
static void	 tun_connect_next(struct tun *);
static void	 tun_connected(struct tun *);
static void	 tun_proxy(struct tun *);
static void	 tun_tls(struct tun *);
static void	 tun_handshake(struct tun *);
static void	 tun_up(struct tun *);
static void	 tun_io(struct tun *);
static int	 cert_md(uint8_t *);
static void	 session_drop(void);
static void	 session_keep(struct tun *);
static int	 tun_flush(struct tun *);
static void	 tun_drop(struct tun *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	 tun_free(struct tun *);
static void	 stream_free(struct stream *, int);
static void	 stream_request(struct tun *, struct stream *);
static void	 stream_refuse(struct stream *, int, const char *);
static void	 stream_connect(struct stream *);
static void	 stream_connect_cb(int, short, void *);
static void	 stream_connected(struct stream *);
static void	 stream_update_read(struct stream *);
static void	 stream_read_cb(int, short, void *);
static void	 stream_write_cb(int, short, void *);
static int	 stream_write_up(struct stream *);
static void	 stream_reset(struct stream *, uint32_t);

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
schedule(int ms)
{
	struct timeval	 tv;

	if (stopping)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(reconnect_ev, &tv) == -1)
		fatalx("evtimer_add");
}

static void
reconnect_cb(int fd, short ev, void *arg)
{
	tunnel_start();
}

/* Keepalive, and the deadlines of dialling and of lingering streams. */
static void
tick_cb(int fd, short ev, void *arg)
{
	struct tun	*t, *tt;
	struct stream	*s, *ts;
	int64_t		 now = now_ms();

	TAILQ_FOREACH_SAFE(t, &tuns, entry, tt) {
		if (t->state != T_UP) {
			if (now >= t->deadline)
				tun_drop(t, "timed out");
			continue;
		}
		if (now - t->last_recv >= (int64_t)conf->keepalive_timeout *
		    1000) {
			tun_drop(t, "no frame for %d s",
			    conf->keepalive_timeout);
			continue;
		}
		if (now - t->last_ping >= (int64_t)conf->keepalive * 1000) {
			t->last_ping = now;
			if (nghttp2_submit_ping(t->h2, NGHTTP2_FLAG_NONE,
			    NULL) != 0) {
				tun_drop(t, "cannot send a PING");
				continue;
			}
			(void)tun_flush(t);
		}
	}
	TAILQ_FOREACH_SAFE(s, &lingering, entry, ts)
		if (now >= s->linger_until)
			stream_free(s, 1);
}

void
tunnel_init(struct event_base *b, const struct mezd_conf *c,
    const struct httpproxy *hp, int use_hp)
{
	Mezite__Tunnel__V1__Hello	 h = MEZITE__TUNNEL__V1__HELLO__INIT;
	Mezite__Tunnel__V1__Label	 lb[MAXLABELS], *lbp[MAXLABELS];
	char				*svc[MAXSERVICES];
	struct timeval			 one = { 1, 0 };
	size_t				 i;

	base = b;
	conf = c;
	hproxy = use_hp ? hp : NULL;
	if ((dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) ==
	    NULL && (dns = evdns_base_new(base, 0)) == NULL)
		fatalx("evdns_base_new");
	if ((reconnect_ev = evtimer_new(base, reconnect_cb, NULL)) == NULL ||
	    (tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, NULL)) ==
	    NULL || event_add(tick_ev, &one) == -1)
		fatalx("event_new");

	h.node = (char *)c->name;
	h.version = MEZD_VERSION;
	for (i = 0; i < c->nlabels; i++) {
		mezite__tunnel__v1__label__init(&lb[i]);
		lb[i].key = (char *)c->labels[i].key;
		lb[i].value = (char *)c->labels[i].value;
		lbp[i] = &lb[i];
	}
	h.n_labels = c->nlabels;
	h.labels = lbp;
	for (i = 0; i < c->nservices; i++)
		svc[i] = (char *)c->services[i].name;
	h.n_services = c->nservices;
	h.services = svc;
	hellolen = mezite__tunnel__v1__hello__get_packed_size(&h);
	if ((hello = malloc(hellolen)) == NULL)
		fatal(NULL);
	if (mezite__tunnel__v1__hello__pack(&h, hello) != hellolen)
		fatalx("cannot encode the hello");
}

/* The SHA-256 of the certificate in use, into md.  -1 if none. */
static int
cert_md(uint8_t *md)
{
	unsigned int	 len;

	if (creds == NULL || EVP_Digest(creds->cert, creds->certlen, md,
	    &len, EVP_sha256(), NULL) != 1 || len != SHA256_LEN)
		return (-1);
	return (0);
}

static void
session_drop(void)
{
	if (sess != NULL)
		freezero(sess, sesslen);
	sess = NULL;
	sesslen = 0;
	explicit_bzero(sesscert, sizeof(sesscert));
}

/* Keep the session of a ticket that came on t, if one did. */
static void
session_keep(struct tun *t)
{
	char	*pem;
	size_t	 len;

	if (!tlsc_session_new(t->tls) ||
	    (pem = tlsc_session_pem(t->tls, &len)) == NULL)
		return;
	session_drop();
	sess = pem;
	sesslen = len;
	memcpy(sesscert, t->certmd, sizeof(sesscert));
}

/* A certificate to use from now on: no session of another one. */
void
tunnel_set_creds(const struct creds *cr)
{
	if (sess != NULL)
		log_debug("TLS session dropped: a new certificate");
	session_drop();
	creds = cr;
}

/* Dial a new active tunnel, unless there is one. */
void
tunnel_start(void)
{
	struct evutil_addrinfo	 hints;
	struct tun		*t, *old;

	if (stopping || active != NULL || creds == NULL)
		return;
	if (ntuns >= MAXTUNNELS) {
		/* The oldest drains no more. */
		TAILQ_FOREACH(old, &tuns, entry)
			if (old != active)
				break;
		if (old != NULL)
			tun_drop(old, "too many tunnels: closing the oldest");
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_warn("tunnel");
		schedule(backoff_ms(&attempt, BACKOFF_CAP));
		return;
	}
	t->id = ++tun_ids;
	t->fd = -1;
	t->state = T_RESOLVE;
	t->deadline = now_ms() + DIAL_TIMEOUT * 1000;
	TAILQ_INIT(&t->streams);
	TAILQ_INSERT_TAIL(&tuns, t, entry);
	ntuns++;
	active = t;
	t->dialto = hproxy != NULL ? &hproxy->addr : &conf->proxy;
	log_debug("tunnel %u: dialling %s%s%s", t->id, conf->proxy.name,
	    hproxy != NULL ? " through " : "", hproxy != NULL ?
	    hproxy->addr.name : "");

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	/*
	 * The callback may run before this returns (a numeric host, a
	 * failure), and may free t: t is not touched after unless the
	 * request is pending.
	 */
	{
		struct evdns_getaddrinfo_request	*req;

		req = evdns_getaddrinfo(dns, t->dialto->host,
		    t->dialto->port, &hints, tun_resolved, t);
		if (req != NULL)
			t->dnsreq = req;
	}
}

static void
tun_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct tun	*t = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;		/* t is gone */
	t->dnsreq = NULL;
	if (result != 0) {
		tun_drop(t, "%s: %s", t->dialto->name,
		    evutil_gai_strerror(result));
		return;
	}
	t->ai = t->next = res;
	tun_connect_next(t);
}

static void
tun_connect_next(struct tun *t)
{
	struct evutil_addrinfo	*ai;
	int			 fd;

	while ((ai = t->next) != NULL) {
		t->next = ai->ai_next;
		if (t->rev != NULL) {
			event_free(t->rev);
			event_free(t->wev);
			t->rev = t->wev = NULL;
		}
		if (t->fd != -1) {
			close(t->fd);
			t->fd = -1;
		}
		if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0)) == -1) {
			t->saved_errno = errno;
			continue;
		}
		t->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
		    errno != EINPROGRESS) {
			t->saved_errno = errno;
			continue;
		}
		if ((t->rev = event_new(base, fd, EV_READ | EV_PERSIST,
		    tun_ev, t)) == NULL || (t->wev = event_new(base, fd,
		    EV_WRITE, tun_ev, t)) == NULL)
			fatalx("event_new");
		t->state = T_CONNECT;
		if (event_add(t->wev, NULL) == -1)
			fatalx("event_add");
		return;
	}
	tun_drop(t, "connect to %s: %s", t->dialto->name,
	    strerror(t->saved_errno != 0 ? t->saved_errno : EHOSTUNREACH));
}

static void
tun_ev(int fd, short ev, void *arg)
{
	struct tun	*t = arg;

	switch (t->state) {
	case T_RESOLVE:
		break;
	case T_CONNECT:
		tun_connected(t);
		break;
	case T_PROXYW:
	case T_PROXYR:
		tun_proxy(t);
		break;
	case T_HANDSHAKE:
		tun_handshake(t);
		break;
	case T_UP:
		tun_io(t);
		break;
	}
}

static void
tun_connected(struct tun *t)
{
	socklen_t	 len = sizeof(int);
	int		 soerr, one = 1;

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	if (soerr != 0) {
		t->saved_errno = soerr;
		tun_connect_next(t);
		return;
	}
	if (setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == -1)
		log_warn("TCP_NODELAY");
	if (hproxy == NULL) {
		tun_tls(t);
		return;
	}
	if ((t->plen = connectreq_build(hproxy, &conf->proxy, t->pbuf,
	    CONNREQ_MAX)) == (size_t)-1) {
		tun_drop(t, "CONNECT request too long");
		return;
	}
	t->poff = 0;
	t->state = T_PROXYW;
	tun_proxy(t);
}

/* Send CONNECT to the HTTP proxy, and read its answer. */
static void
tun_proxy(struct tun *t)
{
	struct connectresp	 r;
	const char		*why;
	ssize_t			 n;
	int			 rv;

	if (t->state == T_PROXYW) {
		while (t->poff < t->plen) {
			n = send(t->fd, t->pbuf + t->poff, t->plen - t->poff,
			    MSG_NOSIGNAL);
			if (n == -1 && errno == EAGAIN) {
				if (event_add(t->wev, NULL) == -1)
					fatalx("event_add");
				return;
			}
			if (n == -1) {
				tun_drop(t, "http proxy %s: %s",
				    hproxy->addr.name, strerror(errno));
				return;
			}
			t->poff += n;
		}
		explicit_bzero(t->pbuf, t->plen);	/* the credentials */
		t->plen = 0;
		t->state = T_PROXYR;
		if (event_add(t->rev, NULL) == -1)
			fatalx("event_add");
		return;
	}
	/* Bytes after the header would be the TLS server's: none come. */
	n = read(t->fd, t->pbuf + t->plen, sizeof(t->pbuf) - t->plen);
	if (n == -1 && errno == EAGAIN)
		return;
	if (n == -1) {
		tun_drop(t, "http proxy %s: %s", hproxy->addr.name,
		    strerror(errno));
		return;
	}
	if (n == 0) {
		tun_drop(t, "http proxy %s closed the connection",
		    hproxy->addr.name);
		return;
	}
	t->plen += n;
	if ((rv = connectresp_parse(t->pbuf, t->plen, &r, &why)) == 0)
		return;
	if (rv == -1) {
		tun_drop(t, "http proxy %s: %s", hproxy->addr.name, why);
		return;
	}
	if (r.status != 200) {
		tun_drop(t, "http proxy %s refused CONNECT: \"%s\"",
		    hproxy->addr.name, r.line);
		return;
	}
	if (r.hdrlen != t->plen) {
		tun_drop(t, "http proxy %s: bytes after its response",
		    hproxy->addr.name);
		return;
	}
	if (event_del(t->rev) == -1)
		fatalx("event_del");
	tun_tls(t);
}

static void
tun_tls(struct tun *t)
{
	char	 err[256];

	if ((t->tls = tlsc_client(ALPN_TUNNEL, conf->ca, creds->cert,
	    creds->certlen, creds->key, creds->keylen, err,
	    sizeof(err))) == NULL) {
		tun_drop(t, "TLS: %s", err);
		return;
	}
	if (cert_md(t->certmd) == -1) {
		tun_drop(t, "TLS: cannot hash the certificate");
		return;
	}
	if (sess != NULL) {
		if (memcmp(sesscert, t->certmd, sizeof(sesscert)) != 0)
			session_drop();
		else if (tlsc_set_session(t->tls, sess, sesslen) == -1) {
			log_warnx("tunnel %u: TLS session: %s: dropped",
			    t->id, tlsc_error(t->tls));
			session_drop();
		}
	}
	if (tlsc_connect_socket(t->tls, t->fd, conf->proxy.host) == -1) {
		tun_drop(t, "TLS: %s", tlsc_error(t->tls));
		return;
	}
	t->state = T_HANDSHAKE;
	tun_handshake(t);
}

static void
tun_handshake(struct tun *t)
{
	const char	*alpn;
	int		 rv;

	if ((rv = tlsc_handshake(t->tls)) == TLSC_WANT_POLLIN) {
		if (event_add(t->rev, NULL) == -1)
			fatalx("event_add");
		return;
	}
	if (rv == TLSC_WANT_POLLOUT) {
		if (event_add(t->wev, NULL) == -1)
			fatalx("event_add");
		return;
	}
	if (rv == -1) {
		tun_drop(t, "%s: TLS handshake: %s", conf->proxy.name,
		    tlsc_error(t->tls));
		return;
	}
	if (tlsc_resumed(t->tls))
		log_debug("tunnel %u: TLS session resumed", t->id);
	else if (tlsc_session_offered(t->tls)) {
		/* The proxy would not: its keys changed, or it expired. */
		log_debug("tunnel %u: TLS session not resumed", t->id);
		session_drop();
	}
	if ((alpn = tlsc_alpn_selected(t->tls)) == NULL ||
	    strcmp(alpn, ALPN_TUNNEL) != 0) {
		tun_drop(t, "%s does not serve %s", conf->proxy.name,
		    ALPN_TUNNEL);
		return;
	}
	tun_up(t);
}

/* nghttp2's callbacks: the session's user data is its tunnel. */

static int
on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *arg)
{
	struct tun	*t = arg;
	struct stream	*s;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return (0);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
	s->t = t;
	s->id = f->hd.stream_id;
	s->fd = -1;
	TAILQ_INSERT_TAIL(&t->streams, s, entry);
	if (nghttp2_session_set_stream_user_data(h2, s->id, s) != 0) {
		TAILQ_REMOVE(&t->streams, s, entry);
		free(s);
		return (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
	}
	return (0);
}

static int
on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
    void *arg)
{
	struct stream	*s;
	char		*dst = NULL;
	size_t		 dstlen = 0;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    (s = nghttp2_session_get_stream_user_data(h2,
	    f->hd.stream_id)) == NULL)
		return (0);
#define IS(n)	(namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
	if (IS(":method")) {
		dst = s->method;
		dstlen = sizeof(s->method);
	} else if (IS(":authority")) {
		dst = s->authority;
		dstlen = sizeof(s->authority);
	} else if (IS(":path")) {
		dst = s->path;
		dstlen = sizeof(s->path);
	}
#undef IS
	if (dst == NULL)
		return (0);
	if (valuelen >= dstlen || memchr(value, '\0', valuelen) != NULL) {
		s->bad = 1;
		return (0);
	}
	memcpy(dst, value, valuelen);
	dst[valuelen] = '\0';
	return (0);
}

static void
update_all(struct tun *t)
{
	struct stream	*s;

	TAILQ_FOREACH(s, &t->streams, entry)
		stream_update_read(s);
}

static int
on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *arg)
{
	struct tun	*t = arg;
	struct stream	*s;

	t->last_recv = now_ms();
	s = f->hd.stream_id != 0 ? nghttp2_session_get_stream_user_data(h2,
	    f->hd.stream_id) : NULL;
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (s == NULL)
			break;
		if (f->headers.cat == NGHTTP2_HCAT_REQUEST &&
		    s->state == S_NEW)
			stream_request(t, s);
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
			s->up_eof = 1;
			if (s->state == S_OPEN)
				(void)stream_write_up(s);
		}
		break;
	case NGHTTP2_DATA:
		if (s != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			s->up_eof = 1;
			if (s->state == S_OPEN)
				(void)stream_write_up(s);
		}
		break;
	case NGHTTP2_WINDOW_UPDATE:
		if (s != NULL)
			stream_update_read(s);
		else if (f->hd.stream_id == 0)
			update_all(t);
		break;
	case NGHTTP2_SETTINGS:
		update_all(t);
		break;
	case NGHTTP2_GOAWAY:
		if (!t->goaway)
			log_info("tunnel %u: the proxy is going away",
			    t->id);
		t->goaway = 1;
		t->draining = 1;
		if (t == active) {
			active = NULL;
			schedule(0);
		}
		break;
	}
	return (0);
}

static int
on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct stream	*s;
	uint8_t		*p;
	size_t		 cap;

	if ((s = nghttp2_session_get_stream_user_data(h2, id)) == NULL ||
	    (s->state != S_CONNECTING && s->state != S_OPEN)) {
		/* Nobody to take them: acknowledged as they come. */
		(void)nghttp2_session_consume(h2, id, len);
		return (0);
	}
	if (s->upoff + s->uplen + len > s->upcap) {
		if (s->upoff > 0) {
			memmove(s->up, s->up + s->upoff, s->uplen);
			s->upoff = 0;
		}
		if (s->uplen + len > STREAM_WINDOW) {
			/* More than its window: flow control failed. */
			(void)nghttp2_session_consume(h2, id, len);
			stream_reset(s, NGHTTP2_FLOW_CONTROL_ERROR);
			return (0);
		}
		if (s->uplen + len > s->upcap) {
			cap = s->upcap == 0 ? 16384 : s->upcap;
			while (cap < s->uplen + len)
				cap *= 2;
			if (cap > STREAM_WINDOW)
				cap = STREAM_WINDOW;
			if ((p = realloc(s->up, cap)) == NULL) {
				(void)nghttp2_session_consume(h2, id, len);
				stream_reset(s, NGHTTP2_INTERNAL_ERROR);
				return (0);
			}
			s->up = p;
			s->upcap = cap;
		}
	}
	memcpy(s->up + s->upoff + s->uplen, data, len);
	s->uplen += len;
	if (s->state == S_OPEN)
		(void)stream_write_up(s);
	return (0);
}

static int
on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code,
    void *arg)
{
	struct stream	*s;

	if ((s = nghttp2_session_get_stream_user_data(h2, id)) == NULL)
		return (0);
	/* What the target never took goes back to the connection. */
	if (s->uplen > 0)
		(void)nghttp2_session_consume_connection(h2, s->uplen);
	if (error_code == NGHTTP2_NO_ERROR && s->state == S_OPEN &&
	    s->uplen > 0 && s->fd != -1) {
		/* Both sides ended; the target has yet to take the rest. */
		TAILQ_REMOVE(&s->t->streams, s, entry);
		s->t = NULL;
		s->linger_until = now_ms() + LINGER_TIMEOUT * 1000;
		if (s->rev != NULL)
			event_del(s->rev);
		s->reading = 0;
		TAILQ_INSERT_TAIL(&lingering, s, entry);
		return (0);
	}
	stream_free(s, error_code != NGHTTP2_NO_ERROR);
	return (0);
}

/*
 * A refusal has gone out whole: the proxy need send no more on that
 * stream (RFC 9113, 8.1: RST_STREAM with NO_ERROR after a complete
 * response).
 */
static int
on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *arg)
{
	struct stream	*s;

	if (f->hd.type == NGHTTP2_HEADERS &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (s = nghttp2_session_get_stream_user_data(h2,
	    f->hd.stream_id)) != NULL && s->state == S_DONE)
		(void)nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, s->id,
		    NGHTTP2_NO_ERROR);
	return (0);
}

/* The hello's body, or a target's bytes. */
static ssize_t
on_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct stream	*s = src->ptr;
	size_t		 n;

	if (s->state == S_HELLO) {
		n = hellolen - s->helloff;
		if (n > len)
			n = len;
		memcpy(buf, hello + s->helloff, n);
		s->helloff += n;
		if (s->helloff == hellolen)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (n);
	}
	if (s->downlen == 0) {
		if (s->down_eof) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return (0);
		}
		s->deferred = 1;
		stream_update_read(s);
		return (NGHTTP2_ERR_DEFERRED);
	}
	n = s->downlen < len ? s->downlen : len;
	memcpy(buf, s->down + s->downoff, n);
	s->downoff += n;
	s->downlen -= n;
	if (s->downlen == 0) {
		s->downoff = 0;
		if (s->down_eof)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
	}
	stream_update_read(s);
	return (n);
}

static void
tun_up(struct tun *t)
{
	nghttp2_session_callbacks	*cb;
	nghttp2_option			*opt;
	nghttp2_settings_entry		 set[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAXSTREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAXHEADERS },
	};
	struct tun			*o, *to;
	int				 rv;

	if (nghttp2_session_callbacks_new(&cb) != 0 ||
	    nghttp2_option_new(&opt) != 0)
		fatalx("nghttp2: out of memory");
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb,
	    on_frame_send);
	/* A stream's bytes are acknowledged once written on, not before. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	rv = nghttp2_session_server_new2(&t->h2, cb, t, opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (rv != 0) {
		tun_drop(t, "nghttp2: %s", nghttp2_strerror(rv));
		return;
	}
	if ((rv = nghttp2_submit_settings(t->h2, NGHTTP2_FLAG_NONE, set,
	    sizeof(set) / sizeof(set[0]))) != 0 ||
	    (rv = nghttp2_session_set_local_window_size(t->h2,
	    NGHTTP2_FLAG_NONE, 0, CONN_WINDOW)) != 0) {
		tun_drop(t, "nghttp2: %s", nghttp2_strerror(rv));
		return;
	}
	t->state = T_UP;
	t->last_recv = t->last_ping = now_ms();
	if (event_add(t->rev, NULL) == -1)
		fatalx("event_add");
	log_info("tunnel %u: up to %s", t->id, conf->proxy.name);

	/* Those kept for their streams until a successor was up. */
	TAILQ_FOREACH_SAFE(o, &tuns, entry, to) {
		if (o == t || !o->retire || o->state != T_UP)
			continue;
		o->retire = 0;
		o->draining = 1;
		if (nghttp2_submit_goaway(o->h2, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(o->h2),
		    NGHTTP2_NO_ERROR, NULL, 0) != 0)
			tun_drop(o, "cannot send GOAWAY");
		else
			(void)tun_flush(o);
	}
	(void)tun_flush(t);
}

static void
tun_io(struct tun *t)
{
	uint8_t		 buf[16384];
	const char	*e;
	ssize_t		 n, rv;

	/* Until libssl has nothing left: it may hold what poll cannot see. */
	for (;;) {
		if ((n = tlsc_read(t->tls, buf, sizeof(buf))) ==
		    TLSC_WANT_POLLIN)
			break;
		if (n == TLSC_WANT_POLLOUT) {
			if (event_add(t->wev, NULL) == -1)
				fatalx("event_add");
			break;
		}
		if (n == -1) {
			e = tlsc_error(t->tls);
			if (e != NULL && strstr(e, "unexpected eof") != NULL)
				tun_drop(t, "the proxy closed the connection");
			else
				tun_drop(t, "read: %s", e != NULL ? e : "?");
			return;
		}
		if (n == 0) {
			tun_drop(t, "the proxy closed the connection");
			return;
		}
		if ((rv = nghttp2_session_mem_recv(t->h2, buf, n)) < 0) {
			tun_drop(t, "HTTP/2: %s", nghttp2_strerror(rv));
			return;
		}
	}
	session_keep(t);
	(void)tun_flush(t);
}

/*
 * Send what nghttp2 has, as far as the connection takes it.  -1: the
 * tunnel is gone (dropped, or done draining).
 */
static int
tun_flush(struct tun *t)
{
	ssize_t		 n;
	size_t		 m;

	for (;;) {
		while (t->outlen < OUTBUF) {
			if (t->pendlen == 0) {
				n = nghttp2_session_mem_send(t->h2, &t->pend);
				if (n < 0) {
					tun_drop(t, "HTTP/2: %s",
					    nghttp2_strerror(n));
					return (-1);
				}
				if (n == 0)
					break;
				t->pendlen = n;
			}
			m = OUTBUF - t->outlen;
			if (m > t->pendlen)
				m = t->pendlen;
			memcpy(t->out + t->outlen, t->pend, m);
			t->outlen += m;
			t->pend += m;
			t->pendlen -= m;
		}
		if (t->outlen == 0)
			break;
		if ((n = tlsc_write(t->tls, t->out, t->outlen)) ==
		    TLSC_WANT_POLLOUT) {
			if (event_add(t->wev, NULL) == -1)
				fatalx("event_add");
			return (0);
		}
		if (n == TLSC_WANT_POLLIN)
			return (0);
		if (n == -1) {
			tun_drop(t, "write: %s", tlsc_error(t->tls));
			return (-1);
		}
		memmove(t->out, t->out + n, t->outlen - n);
		t->outlen -= n;
	}
	if (!nghttp2_session_want_read(t->h2) &&
	    !nghttp2_session_want_write(t->h2)) {
		if (t->draining)
			log_info("tunnel %u: drained", t->id);
		tun_drop(t, t->draining || stopping ? NULL :
		    "the HTTP/2 session ended");
		return (-1);
	}
	return (0);
}

/* Close a tunnel; dial again if it was the active one. */
static void
tun_drop(struct tun *t, const char *fmt, ...)
{
	va_list	 ap;
	char	 why[512];
	int	 was_active = (t == active);

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		log_warnx("tunnel %u: %s", t->id, why);
	}
	if (t->hello)
		attempt = 0;
	tun_free(t);
	if (was_active) {
		active = NULL;
		schedule(backoff_ms(&attempt, BACKOFF_CAP));
	}
}

static void
tun_free(struct tun *t)
{
	struct stream	*s;

	if (t == active)
		active = NULL;
	if (t->dnsreq != NULL)
		evdns_getaddrinfo_cancel(t->dnsreq);
	while ((s = TAILQ_FIRST(&t->streams)) != NULL)
		stream_free(s, 1);
	if (t->h2 != NULL)
		nghttp2_session_del(t->h2);
	if (t->rev != NULL)
		event_free(t->rev);
	if (t->wev != NULL)
		event_free(t->wev);
	if (t->tls != NULL) {
		session_keep(t);
		(void)tlsc_close(t->tls);	/* one try: a courtesy */
		tlsc_free(t->tls);
	}
	if (t->fd != -1)
		close(t->fd);
	if (t->ai != NULL)
		evutil_freeaddrinfo(t->ai);
	explicit_bzero(t->pbuf, sizeof(t->pbuf));
	TAILQ_REMOVE(&tuns, t, entry);
	ntuns--;
	free(t);
}

/* The proxy's request on a stream: hello, CONNECT or neither. */
static void
stream_request(struct tun *t, struct stream *s)
{
	nghttp2_data_provider	 prd;
	size_t			 i;
#define NV(n, v)	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, \
			    strlen(v), NGHTTP2_NV_FLAG_NONE }
	nghttp2_nv		 nva[] = {
		NV(":status", "200"),
		NV("content-type", "application/x-protobuf"),
	};
#undef NV

	if (s->bad) {
		stream_refuse(s, 400, "malformed request");
		return;
	}
	if (strcmp(s->method, "GET") == 0 && strcmp(s->path, HELLO_PATH) ==
	    0) {
		s->state = S_HELLO;
		prd.source.ptr = s;
		prd.read_callback = on_read;
		if (nghttp2_submit_response(t->h2, s->id, nva, 2, &prd) != 0)
			stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		t->hello = 1;
		attempt = 0;
		log_debug("tunnel %u: hello", t->id);
		return;
	}
	if (strcmp(s->method, "CONNECT") != 0) {
		stream_refuse(s, 400, "not a hello or a CONNECT");
		return;
	}
	for (i = 0; i < conf->nservices; i++)
		if (strcmp(conf->services[i].name, s->authority) == 0)
			break;
	if (i == conf->nservices) {
		stream_refuse(s, 404, "no such service");
		return;
	}
	if (nstreams_all >= MAXSTREAMS) {
		stream_refuse(s, 503, "too many streams");
		return;
	}
	s->svc = &conf->services[i];
	s->counted = 1;
	nstreams_all++;
	stream_connect(s);
}

/* A final answer without a body, then done with the stream. */
static void
stream_refuse(struct stream *s, int status, const char *reason)
{
	char		 st[4];
	nghttp2_nv	 nva[2];

	snprintf(st, sizeof(st), "%d", status);
	nva[0].name = (uint8_t *)":status";
	nva[0].namelen = 7;
	nva[0].value = (uint8_t *)st;
	nva[0].valuelen = 3;
	nva[0].flags = NGHTTP2_NV_FLAG_NONE;
	nva[1].name = (uint8_t *)"mezite-reason";
	nva[1].namelen = 13;
	nva[1].value = (uint8_t *)reason;
	nva[1].valuelen = strlen(reason);
	nva[1].flags = NGHTTP2_NV_FLAG_NONE;
	log_debug("tunnel %u: stream %d: %d %s", s->t->id, s->id, status,
	    reason);
	s->state = S_DONE;
	if (s->fd != -1) {
		if (s->rev != NULL)
			event_del(s->rev);
		if (s->wev != NULL)
			event_del(s->wev);
	}
	/* Once it is sent, on_frame_send resets what the proxy still sends. */
	if (nghttp2_submit_response(s->t->h2, s->id, nva, 2, NULL) != 0)
		stream_reset(s, NGHTTP2_INTERNAL_ERROR);
}

static void
stream_reset(struct stream *s, uint32_t code)
{
	s->state = S_DONE;
	if (s->rev != NULL)
		event_del(s->rev);
	if (s->wev != NULL)
		event_del(s->wev);
	s->reading = 0;
	if (s->t != NULL)
		(void)nghttp2_submit_rst_stream(s->t->h2, NGHTTP2_FLAG_NONE,
		    s->id, code);
}

static void
stream_connect(struct stream *s)
{
	struct timeval	 tv = { TARGET_TIMEOUT, 0 };
	const struct service *sv = s->svc;
	int		 fd;

	if ((fd = socket(sv->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		stream_refuse(s, 502, strerror(errno));
		return;
	}
	s->fd = fd;
	if (connect(fd, (const struct sockaddr *)&sv->ss, sv->sslen) == 0) {
		stream_connected(s);
		return;
	}
	if (errno != EINPROGRESS) {
		stream_refuse(s, 502, errno == ECONNREFUSED ?
		    "connection refused" : strerror(errno));
		return;
	}
	s->state = S_CONNECTING;
	if ((s->wev = event_new(base, fd, EV_WRITE, stream_connect_cb, s)) ==
	    NULL || event_add(s->wev, &tv) == -1)
		fatalx("event_new");
}

static void
stream_connect_cb(int fd, short ev, void *arg)
{
	struct stream	*s = arg;
	struct tun	*t = s->t;
	socklen_t	 len = sizeof(int);
	int		 soerr;

	if (ev & EV_TIMEOUT)
		stream_refuse(s, 504, "the service did not answer in time");
	else {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			soerr = errno;
		if (soerr == 0) {
			event_free(s->wev);
			s->wev = NULL;
			stream_connected(s);
		} else
			stream_refuse(s, 502, soerr == ECONNREFUSED ?
			    "connection refused" : strerror(soerr));
	}
	(void)tun_flush(t);
}

static void
stream_connected(struct stream *s)
{
	nghttp2_data_provider	 prd;
	nghttp2_nv		 nva[] = {
		{ (uint8_t *)":status", (uint8_t *)"200", 7, 3,
		    NGHTTP2_NV_FLAG_NONE },
	};
	int			 one = 1;

	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((s->down = malloc(DOWNMAX)) == NULL) {
		stream_refuse(s, 502, "out of memory");
		return;
	}
	if ((s->rev = event_new(base, s->fd, EV_READ | EV_PERSIST,
	    stream_read_cb, s)) == NULL || (s->wev = event_new(base, s->fd,
	    EV_WRITE, stream_write_cb, s)) == NULL)
		fatalx("event_new");
	s->state = S_OPEN;
	prd.source.ptr = s;
	prd.read_callback = on_read;
	if (nghttp2_submit_response(s->t->h2, s->id, nva, 1, &prd) != 0) {
		stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	log_debug("tunnel %u: stream %d: connected to %s (%s)", s->t->id,
	    s->id, s->svc->name, s->svc->target);
	stream_update_read(s);
	if (s->uplen > 0 || s->up_eof)
		(void)stream_write_up(s);
}

/*
 * Read the target only while the bytes read and not sent are fewer
 * than DOWNMAX and than the stream's send window can take.
 */
static void
stream_update_read(struct stream *s)
{
	int32_t	 win;
	int	 want;

	want = s->state == S_OPEN && s->t != NULL && !s->down_eof &&
	    s->downlen < DOWNMAX;
	if (want) {
		win = nghttp2_session_get_stream_remote_window_size(s->t->h2,
		    s->id);
		want = win > 0 && (size_t)win > s->downlen;
	}
	if (want && !s->reading) {
		if (event_add(s->rev, NULL) == -1)
			fatalx("event_add");
		s->reading = 1;
	} else if (!want && s->reading) {
		if (event_del(s->rev) == -1)
			fatalx("event_del");
		s->reading = 0;
	}
}

static void
stream_read_cb(int fd, short ev, void *arg)
{
	struct stream	*s = arg;
	struct tun	*t = s->t;
	ssize_t		 n;

	if (s->downoff > 0 && s->downlen > 0) {
		memmove(s->down, s->down + s->downoff, s->downlen);
		s->downoff = 0;
	} else if (s->downlen == 0)
		s->downoff = 0;
	n = read(fd, s->down + s->downlen, DOWNMAX - s->downlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		log_debug("tunnel %u: stream %d: read: %s", t->id, s->id,
		    strerror(errno));
		stream_reset(s, NGHTTP2_CONNECT_ERROR);
	} else {
		if (n == 0)
			s->down_eof = 1;
		s->downlen += n;
		if (s->deferred) {
			s->deferred = 0;
			(void)nghttp2_session_resume_data(t->h2, s->id);
		}
		stream_update_read(s);
	}
	(void)tun_flush(t);
}

/*
 * Write what the proxy sent on to the target, acknowledging it as it
 * goes; half-close when the proxy has.  -1: the stream was reset.
 */
static int
stream_write_up(struct stream *s)
{
	ssize_t	 n;

	while (s->uplen > 0) {
		n = send(s->fd, s->up + s->upoff, s->uplen, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (event_add(s->wev, NULL) == -1)
				fatalx("event_add");
			return (0);
		}
		if (n == -1) {
			if (s->t == NULL) {
				stream_free(s, 1);
				return (-1);
			}
			stream_reset(s, NGHTTP2_CONNECT_ERROR);
			return (-1);
		}
		s->upoff += n;
		s->uplen -= n;
		if (s->t != NULL)
			(void)nghttp2_session_consume(s->t->h2, s->id, n);
	}
	s->upoff = 0;
	if (s->up_eof && !s->shut_wr) {
		s->shut_wr = 1;
		(void)shutdown(s->fd, SHUT_WR);
	}
	if (s->t == NULL) {
		stream_free(s, 0);
		return (-1);
	}
	return (0);
}

static void
stream_write_cb(int fd, short ev, void *arg)
{
	struct stream	*s = arg;
	struct tun	*t = s->t;

	if (stream_write_up(s) == -1 && t == NULL)
		return;		/* a lingering stream, now freed */
	if (t != NULL)
		(void)tun_flush(t);
}

/* abort: reset the target's connection rather than close it. */
static void
stream_free(struct stream *s, int abort)
{
	struct linger	 l = { 1, 0 };

	if (s->t != NULL)
		TAILQ_REMOVE(&s->t->streams, s, entry);
	else
		TAILQ_REMOVE(&lingering, s, entry);
	if (s->rev != NULL)
		event_free(s->rev);
	if (s->wev != NULL)
		event_free(s->wev);
	if (s->fd != -1) {
		if (abort)
			(void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l,
			    sizeof(l));
		close(s->fd);
	}
	if (s->counted)
		nstreams_all--;
	free(s->up);
	free(s->down);
	free(s);
}

/* A renewed certificate: a new tunnel, then the old one drains. */
void
tunnel_renewed(void)
{
	if (sess != NULL)
		log_debug("TLS session dropped: the certificate was renewed");
	session_drop();
	if (active != NULL && active->state == T_UP) {
		active->retire = 1;
		active = NULL;
	}
	schedule(0);
}

void
tunnel_shutdown(void)
{
	struct tun	*t;
	struct stream	*s;

	stopping = 1;
	while ((t = TAILQ_FIRST(&tuns)) != NULL) {
		/* A GOAWAY if it goes out at once; tun_flush may drop t. */
		if (t->state == T_UP && nghttp2_submit_goaway(t->h2,
		    NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(
		    t->h2), NGHTTP2_NO_ERROR, NULL, 0) == 0 &&
		    tun_flush(t) == -1)
			continue;
		tun_free(t);
	}
	session_drop();
	while ((s = TAILQ_FIRST(&lingering)) != NULL)
		stream_free(s, 1);
	if (reconnect_ev != NULL)
		event_free(reconnect_ev);
	if (tick_ev != NULL)
		event_free(tick_ev);
	reconnect_ev = tick_ev = NULL;
	if (dns != NULL)
		evdns_base_free(dns, 1);
	dns = NULL;
	free(hello);
	hello = NULL;
}
