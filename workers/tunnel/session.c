/*
 * Tunnel sessions: one HTTP/2 connection per agent, on a handed-over
 * descriptor, with the roles of tunnel.proto (we are the client).
 *
 * The first stream is the hello; once its Hello is in and valid, the
 * registry (tunnel_cb.online) may take the session.  Every other stream
 * is a CONNECT to one of the agent's services, pumped to and from one
 * end of a socket pair whose other end goes to the asker.
 *
 * What a session may hold, and why it is bounded:
 *	- from the agent: HTTP/2 flow control.  A stream's window is
 *	  TS_STREAM_WINDOW and the connection's TS_CONN_WINDOW; bytes are
 *	  acknowledged (nghttp2_session_consume) only once written to the
 *	  local socket, so what waits for a slow local reader is at most
 *	  the stream's window, and the session's at most its window.
 *	- to the agent: each stream reads its local socket into a buffer
 *	  of TS_OUTBUF bytes, and only while the session's buffered
 *	  output (those buffers and what nghttp2 has queued) is under
 *	  TS_SESSION_PENDING.  An agent that does not read stops the
 *	  reading of its streams' sockets.
 *	- headers: TS_HEADER_LIST (SETTINGS_MAX_HEADER_LIST_SIZE); of
 *	  a response only :status and mezite-reason are kept.
 *	- the Hello: TUNNEL_HELLO_MAX bytes.
 * nghttp2 refuses the rest (pushes, flow-control overflow, floods of
 * SETTINGS, PING or RST_STREAM): a session error closes that session.
 *
 * A session is closed by the event handler or tick that found it done,
 * after nghttp2 has returned, never from inside a callback.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "ktls.h"
#include "log.h"
#include "util.h"
#include "tunnel.h"

#define NOFD_WARN_EVERY		10	/* seconds between "out of descriptors" */
#define TS_READ_SIZE		(16 * 1024)	/* one read of the agent */
#define TS_STREAM_WINDOW	(256 * 1024)	/* SETTINGS_INITIAL_WINDOW */
#define TS_CONN_WINDOW		(4 * 1024 * 1024)	/* the connection's */
#define TS_HEADER_LIST		(16 * 1024)	/* SETTINGS_MAX_HEADER_LIST */
#define TS_OUTBUF		(16 * 1024)	/* per stream, to the agent */
#define TS_SESSION_PENDING	(1024 * 1024)	/* to the agent, per session */
#define TS_HPACK_TABLE		4096
#define TS_MAX_OUTBOUND_ACK	256	/* SETTINGS and PING ACKs queued */
#define TS_MAX_SETTINGS		16	/* entries in one SETTINGS frame */
#define TS_MAX_CONTINUATIONS	8	/* after one HEADERS frame */
#define TS_HELLO_PATH		"/mezite.tunnel.v1/hello"

enum tstream_kind {
	TS_HELLO,
	TS_CONNECT,
};

struct tstream {
	TAILQ_ENTRY(tstream)	 entry;
	struct tsession		*s;
	enum tstream_kind	 kind;
	int32_t			 id;		/* 0: nghttp2 closed it */
	int			 status;	/* :status, 0 until it came */
	char			 reason[TUNNEL_REASON_MAX + 1];
	size_t			 hlist;		/* header bytes, as counted */
	struct tdial		*dial;		/* until answered */

	/* hello: the body */
	uint8_t			*body;
	size_t			 bodylen;
	int			 toobig;

	/* connect: our end of the socket pair */
	int			 fd;
	struct event		 ev;
	short			 events;
	uint8_t			 out[TS_OUTBUF];	/* to the agent */
	size_t			 outlen;
	int			 rd_eof;	/* the local side ended */
	int			 deferred;	/* the provider waits */
	uint8_t			*in;		/* to the local side */
	size_t			 inlen, insize;
	int			 peer_eof;	/* the agent ended */
	int			 shut;		/* SHUT_WR done */
	int			 abort;		/* reset: close at once */
};

enum tsession_state {
	TS_STATE_HELLO,		/* waiting for the Hello */
	TS_STATE_ONLINE,	/* registered */
	TS_STATE_GOAWAY,	/* GOAWAY sent: streams end, then it closes */
};

struct tsession {
	TAILQ_ENTRY(tsession)	 entry;
	int			 fd;
	int			 ktls;
	int			 cluster;
	Mezite__ConnMeta	*meta;
	nghttp2_session		*h2;
	enum tsession_state	 state;
	int			 registered;	/* online() took it */
	Mezite__Tunnel__V1__Hello *hello;
	TAILQ_HEAD(, tstream)	 streams;
	unsigned int		 nstreams;	/* CONNECT streams */
	size_t			 pending;	/* bytes in the streams' out */
	uint64_t		 bytes_in, bytes_out;
	int64_t			 started;	/* ms, monotonic */
	int64_t			 since;		/* seconds, the epoch */
	int64_t			 heard;		/* ms: the last bytes read */
	int64_t			 pinged;	/* ms */
	struct event		 ev;
	short			 events;
	int			 blocked;	/* the socket took no more */
	int			 eof;
	int			 failed;
	/*
	 * GOAWAY, once nghttp2 has returned: terminating a session inside
	 * its callbacks leaves it to parse the rest of the read as if it
	 * had not been, which it asserts against.
	 */
	int			 goaway_now;
};

static void	 session_io(int, short, void *);
static void	 session_read(struct tsession *);
static void	 session_flush(struct tsession *);
static void	 session_update(struct tsession *);
static void	 session_close(struct tsession *);
static void	 session_fatal(struct tsession *, int);
static void	 goaway_submit(struct tsession *, int);
static void	 stream_io(int, short, void *);
static void	 stream_arm(struct tstream *);
static void	 stream_free(struct tstream *);
static void	 stream_answer(struct tstream *, Mezite__DialError,
		    const char *, int);
static void	 stream_response(struct tstream *);
static void	 stream_hello(struct tstream *);
static void	 stream_reset(struct tstream *, uint32_t);
static int64_t	 mono_now(void);
static void	 stream_nofd(int);
static void	 stream_nofd_tick(void);

static const struct tunnel_limits *limits;
static const struct tunnel_cb	*cb;
static nghttp2_session_callbacks *callbacks;
static nghttp2_option		*options;
static TAILQ_HEAD(, tsession)	 sessions = TAILQ_HEAD_INITIALIZER(sessions);
static unsigned int		 nsessions;
static unsigned int		 nstreams_total;
static int			 draining;
static int64_t			 nofd_warned;	/* when it was last said */
static unsigned long		 nofd_refused;	/* streams refused since */
/* nghttp2 takes what is read whole: one buffer serves every session. */
static uint8_t			 readbuf[TS_READ_SIZE];

static int64_t
mono_now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static const char *
sname(const struct tsession *s)
{
	return (s->hello != NULL ? s->hello->node : s->meta->cert != NULL ?
	    s->meta->cert->name : "?");
}

static void
nv_set(nghttp2_nv *nv, const char *name, const char *value)
{
	nv->name = (uint8_t *)name;
	nv->namelen = strlen(name);
	nv->value = (uint8_t *)value;
	nv->valuelen = strlen(value);
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Names of nodes and services: 1..64 bytes of [A-Za-z0-9._-]. */
int
name_valid(const char *p)
{
	size_t	 n;

	for (n = 0; p[n] != '\0'; n++)
		if (n >= TUNNEL_NAME_MAX || !((p[n] >= 'a' && p[n] <= 'z') ||
		    (p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= '0' &&
		    p[n] <= '9') || p[n] == '.' || p[n] == '_' || p[n] == '-'))
			return (0);
	return (n > 0);
}

/* Whether a Hello is within the bounds of tunnel.proto; why not. */
int
hello_valid(const Mezite__Tunnel__V1__Hello *h, char *why, size_t len)
{
	size_t	 i;

	if (!name_valid(h->node)) {
		(void)snprintf(why, len, "bad node name");
		return (0);
	}
	if (strlen(h->version) > TUNNEL_NAME_MAX) {
		(void)snprintf(why, len, "version too long");
		return (0);
	}
	if (h->n_labels > TUNNEL_LABELS_MAX) {
		(void)snprintf(why, len, "%zu labels", h->n_labels);
		return (0);
	}
	for (i = 0; i < h->n_labels; i++)
		if (!name_valid(h->labels[i]->key) ||
		    strlen(h->labels[i]->value) > TUNNEL_NAME_MAX) {
			(void)snprintf(why, len, "bad label");
			return (0);
		}
	if (h->n_services > TUNNEL_SERVICES_MAX) {
		(void)snprintf(why, len, "%zu services", h->n_services);
		return (0);
	}
	for (i = 0; i < h->n_services; i++)
		if (!name_valid(h->services[i])) {
			(void)snprintf(why, len, "bad service name");
			return (0);
		}
	return (1);
}

/* nghttp2 callbacks */

static ssize_t
on_send(nghttp2_session *h2, const uint8_t *data, size_t len, int flags,
    void *arg)
{
	struct tsession	*s = arg;
	ssize_t		 n;

	do {
		n = send(s->fd, data, len, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->blocked = 1;
			return (NGHTTP2_ERR_WOULDBLOCK);
		}
		log_debug("tunnel %llu (%s): send: %s",
		    (unsigned long long)s->meta->id, sname(s),
		    strerror(errno));
		s->failed = 1;
		return (NGHTTP2_ERR_CALLBACK_FAILURE);
	}
	return (n);
}

static int
on_header(nghttp2_session *h2, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct tstream	*st;
	const char	*errstr;
	char		 num[4];
	size_t		 i;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_RESPONSE)
		return (0);
	st = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (st == NULL)
		return (0);
	st->hlist += namelen + valuelen + 32;
	if (st->hlist > TS_HEADER_LIST)
		return (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
	if (namelen == 7 && memcmp(name, ":status", 7) == 0 &&
	    valuelen == 3) {
		memcpy(num, value, 3);
		num[3] = '\0';
		st->status = strtonum(num, 100, 599, &errstr);
	} else if (namelen == 13 && memcmp(name, "mezite-reason", 13) == 0) {
		/* Shown to users and logged: printable ASCII only. */
		valuelen = MIN(valuelen, TUNNEL_REASON_MAX);
		for (i = 0; i < valuelen; i++)
			st->reason[i] = value[i] >= ' ' && value[i] <= '~' ?
			    value[i] : '?';
		st->reason[valuelen] = '\0';
	}
	return (0);
}

static int
on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
	struct tsession	*s = arg;
	struct tstream	*st;

	if (frame->hd.type == NGHTTP2_GOAWAY) {
		log_debug("tunnel %llu (%s): GOAWAY from the agent",
		    (unsigned long long)s->meta->id, sname(s));
		return (0);
	}
	if (frame->hd.type != NGHTTP2_HEADERS &&
	    frame->hd.type != NGHTTP2_DATA)
		return (0);
	st = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (st == NULL)
		return (0);
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    frame->headers.cat == NGHTTP2_HCAT_RESPONSE)
		stream_response(st);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		if (st->kind == TS_HELLO)
			stream_hello(st);
		else {
			st->peer_eof = 1;
			stream_arm(st);
		}
	}
	return (0);
}

static int
on_data_chunk_recv(nghttp2_session *h2, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct tsession	*s = arg;
	struct tstream	*st;
	uint8_t		*p;
	ssize_t		 n = 0;

	if ((st = nghttp2_session_get_stream_user_data(h2, id)) == NULL) {
		(void)nghttp2_session_consume(h2, id, len);
		return (0);
	}
	s->bytes_in += len;
	if (st->kind == TS_HELLO) {
		(void)nghttp2_session_consume(h2, id, len);
		if (st->toobig || st->bodylen + len > TUNNEL_HELLO_MAX) {
			st->toobig = 1;
			return (0);
		}
		if ((p = realloc(st->body, st->bodylen + len)) == NULL) {
			log_warn("%s", __func__);
			st->toobig = 1;
			return (0);
		}
		st->body = p;
		memcpy(st->body + st->bodylen, data, len);
		st->bodylen += len;
		return (0);
	}
	if (st->fd == -1 || st->abort) {
		(void)nghttp2_session_consume(h2, id, len);
		return (0);
	}
	/* Straight through when nothing waits; acknowledged when written. */
	if (st->inlen == 0) {
		do {
			n = write(st->fd, data, len);
		} while (n == -1 && errno == EINTR);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				stream_reset(st, NGHTTP2_CANCEL);
				(void)nghttp2_session_consume(h2, id, len);
				return (0);
			}
			n = 0;
		}
		if (n > 0)
			(void)nghttp2_session_consume(h2, id, n);
		data += n;
		len -= n;
	}
	if (len == 0)
		return (0);
	/* At most the stream's window waits: the agent has no more. */
	if (st->inlen + len > TS_STREAM_WINDOW) {
		stream_reset(st, NGHTTP2_FLOW_CONTROL_ERROR);
		(void)nghttp2_session_consume(h2, id, len);
		return (0);
	}
	if (st->inlen + len > st->insize) {
		if ((p = realloc(st->in, TS_STREAM_WINDOW)) == NULL) {
			log_warn("%s", __func__);
			stream_reset(st, NGHTTP2_INTERNAL_ERROR);
			(void)nghttp2_session_consume(h2, id, len);
			return (0);
		}
		st->in = p;
		st->insize = TS_STREAM_WINDOW;
	}
	memcpy(st->in + st->inlen, data, len);
	st->inlen += len;
	stream_arm(st);
	return (0);
}

static int
on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error, void *arg)
{
	struct tsession	*s = arg;
	struct tstream	*st;

	if ((st = nghttp2_session_get_stream_user_data(h2, id)) == NULL)
		return (0);
	(void)nghttp2_session_set_stream_user_data(h2, id, NULL);
	st->id = 0;
	if (error != NGHTTP2_NO_ERROR) {
		log_debug("tunnel %llu (%s): stream %d reset: %s",
		    (unsigned long long)s->meta->id, sname(s), id,
		    nghttp2_http2_strerror(error));
		st->abort = 1;
	}
	if (st->kind == TS_HELLO) {
		if (s->hello == NULL && s->state == TS_STATE_HELLO) {
			log_warnx("tunnel %llu (%s): the hello stream ended "
			    "without a Hello", (unsigned long long)s->meta->id,
			    sname(s));
			s->failed = 1;
		}
		stream_free(st);
		return (0);
	}
	if (st->dial != NULL)
		stream_answer(st, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE,
		    "the agent closed the stream", -1);
	/* What the agent sent is still written; then the stream goes. */
	if (st->abort || st->fd == -1 || st->inlen == 0)
		stream_free(st);
	else {
		st->peer_eof = 1;
		stream_arm(st);
	}
	return (0);
}

static int
on_error(nghttp2_session *h2, int code, const char *msg, size_t len,
    void *arg)
{
	struct tsession	*s = arg;

	log_debug("tunnel %llu (%s): %.*s", (unsigned long long)s->meta->id,
	    sname(s), (int)MIN(len, 200), msg);
	return (0);
}

/* The local side's bytes, as they come; EOF once it has ended. */
static ssize_t
stream_provide(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct tstream	*st = src->ptr;
	size_t		 n;

	if (st->outlen > 0) {
		n = MIN(len, st->outlen);
		memcpy(buf, st->out, n);
		memmove(st->out, st->out + n, st->outlen - n);
		st->outlen -= n;
		st->s->pending -= n;
		st->s->bytes_out += n;
		stream_arm(st);
		if (st->outlen == 0 && st->rd_eof)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (n);
	}
	if (st->rd_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (0);
	}
	st->deferred = 1;
	return (NGHTTP2_ERR_DEFERRED);
}

/* Streams */

static struct tstream *
stream_new(struct tsession *s, enum tstream_kind kind)
{
	struct tstream	*st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_warn("%s", __func__);
		return (NULL);
	}
	st->s = s;
	st->kind = kind;
	st->fd = -1;
	TAILQ_INSERT_TAIL(&s->streams, st, entry);
	if (kind == TS_CONNECT) {
		s->nstreams++;
		nstreams_total++;
	}
	return (st);
}

static void
stream_free(struct tstream *st)
{
	struct tsession	*s = st->s;

	if (st->dial != NULL)
		stream_answer(st, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE,
		    "the node's tunnel closed", -1);
	if (st->id != 0) {
		(void)nghttp2_session_set_stream_user_data(s->h2, st->id,
		    NULL);
		if (!st->abort)
			(void)nghttp2_submit_rst_stream(s->h2,
			    NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
	}
	if (st->events != 0 && event_del(&st->ev) == -1)
		fatalx("%s: event_del", __func__);
	if (st->fd != -1)
		close(st->fd);
	s->pending -= st->outlen;
	if (st->kind == TS_CONNECT) {
		s->nstreams--;
		nstreams_total--;
	}
	TAILQ_REMOVE(&s->streams, st, entry);
	free(st->body);
	free(st->in);
	free(st);
}

static void
stream_reset(struct tstream *st, uint32_t code)
{
	st->abort = 1;
	if (st->id != 0 && nghttp2_submit_rst_stream(st->s->h2,
	    NGHTTP2_FLAG_NONE, st->id, code) != 0)
		st->s->failed = 1;
	stream_arm(st);
}

static void
stream_answer(struct tstream *st, Mezite__DialError error, const char *msg,
    int fd)
{
	struct tdial	*d = st->dial;

	st->dial = NULL;
	d->stream = NULL;
	cb->answer(d, error, msg, fd);
}

/* The agent's answer to the hello or to a CONNECT. */
/*
 * No descriptor for a stream's socket pair: its dial is refused with
 * that reason.  The log says it when it starts, then at most every
 * NOFD_WARN_EVERY seconds how many streams were refused meanwhile, not
 * a line for each.
 */
static void
stream_nofd(int error)
{
	if (time_now() - nofd_warned < NOFD_WARN_EVERY) {
		nofd_refused++;
		return;
	}
	log_warnx("streams refused: socketpair: %s", strerror(error));
	nofd_warned = time_now();
}

static void
stream_nofd_tick(void)
{
	if (nofd_refused == 0 || time_now() - nofd_warned < NOFD_WARN_EVERY)
		return;
	log_warnx("%lu more streams refused for want of descriptors",
	    nofd_refused);
	nofd_refused = 0;
	nofd_warned = time_now();
}

static void
stream_response(struct tstream *st)
{
	struct tsession		*s = st->s;
	Mezite__DialError	 err;
	const char		*why;
	char			 msg[TUNNEL_REASON_MAX + 64];
	int			 sp[2];

	if (st->kind == TS_HELLO) {
		if (st->status != 200) {
			log_warnx("tunnel %llu (%s): hello answered %d",
			    (unsigned long long)s->meta->id, sname(s),
			    st->status);
			s->failed = 1;
		}
		return;
	}
	if (st->dial == NULL)
		return;
	if (st->status == 200) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sp) == -1) {
			stream_nofd(errno);
			stream_answer(st, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE,
			    "the tunnel worker is out of descriptors", -1);
			stream_reset(st, NGHTTP2_REFUSED_STREAM);
			return;
		}
		if (fd_nonblock(sp[0]) == -1)
			fatal("fd_nonblock");
		st->fd = sp[0];
		event_set(&st->ev, st->fd, 0, stream_io, st);
		stream_answer(st, MEZITE__DIAL_ERROR__DIAL_OK, "", sp[1]);
		stream_arm(st);
		return;
	}
	switch (st->status) {
	case 404:
		err = MEZITE__DIAL_ERROR__DIAL_REFUSED;
		why = "no such service";
		break;
	case 502:
		err = MEZITE__DIAL_ERROR__DIAL_REFUSED;
		why = "the service refused";
		break;
	case 503:
		err = MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE;
		why = "the node takes no more streams";
		break;
	case 504:
		err = MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE;
		why = "the service did not answer in time";
		break;
	default:
		err = MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE;
		why = "unexpected answer from the node";
		break;
	}
	/* The agent's reason, when it says more than its status. */
	if (st->reason[0] == '\0')
		(void)snprintf(msg, sizeof(msg), "%s (%d)", why, st->status);
	else if (strcmp(st->reason, why) == 0)
		(void)strlcpy(msg, why, sizeof(msg));
	else
		(void)snprintf(msg, sizeof(msg), "%s: %s", why, st->reason);
	stream_answer(st, err, msg, -1);
	stream_reset(st, NGHTTP2_CANCEL);
}

/* The hello's body is in: parse, check, and go online. */
static void
stream_hello(struct tstream *st)
{
	struct tsession			*s = st->s;
	Mezite__Tunnel__V1__Hello	*h;
	char				 why[64];

	if (s->state != TS_STATE_HELLO || st->status != 200)
		return;
	if (st->toobig) {
		log_warnx("tunnel %llu (%s): Hello over %d bytes",
		    (unsigned long long)s->meta->id, sname(s),
		    TUNNEL_HELLO_MAX);
		s->failed = 1;
		return;
	}
	h = mezite__tunnel__v1__hello__unpack(NULL, st->bodylen, st->body);
	if (h == NULL) {
		log_warnx("tunnel %llu (%s): malformed Hello",
		    (unsigned long long)s->meta->id, sname(s));
		s->failed = 1;
		return;
	}
	if (!hello_valid(h, why, sizeof(why))) {
		log_warnx("tunnel %llu (%s): Hello refused: %s",
		    (unsigned long long)s->meta->id, sname(s), why);
		mezite__tunnel__v1__hello__free_unpacked(h, NULL);
		s->failed = 1;
		return;
	}
	if (strcmp(h->node, s->meta->cert->name) != 0) {
		log_warnx("tunnel %llu (%s): Hello names node %s",
		    (unsigned long long)s->meta->id, sname(s), h->node);
		mezite__tunnel__v1__hello__free_unpacked(h, NULL);
		s->failed = 1;
		return;
	}
	s->hello = h;
	s->state = TS_STATE_ONLINE;
	s->since = time_now();
	/* Inside nghttp2: the GOAWAY goes out when it has returned. */
	if (cb->online(s) == -1)
		s->goaway_now = 1;
	else
		s->registered = 1;
}

/*
 * What the stream's socket should wait for: to read while the local
 * side goes on, its buffer has room, the agent's windows are open and
 * the session's output is under its bound; to write while bytes of the
 * agent's wait.  A window that opens, or output that drains, comes
 * with the agent's I/O, after which every stream is armed again.
 */
static void
stream_arm(struct tstream *st)
{
	struct tsession	*s = st->s;
	short		 events = 0;

	if (st->fd == -1)
		return;
	if (!st->abort) {
		if (st->id != 0 && !st->rd_eof && st->outlen < TS_OUTBUF &&
		    s->pending < TS_SESSION_PENDING && !s->blocked &&
		    nghttp2_session_get_stream_remote_window_size(s->h2,
		    st->id) > 0 &&
		    nghttp2_session_get_remote_window_size(s->h2) > 0)
			events |= EV_READ;
		if (st->inlen > 0)
			events |= EV_WRITE;
		else if (st->peer_eof && !st->shut) {
			(void)shutdown(st->fd, SHUT_WR);
			st->shut = 1;
		}
	}
	if (events == st->events)
		return;
	if (st->events != 0 && event_del(&st->ev) == -1)
		fatalx("%s: event_del", __func__);
	st->events = events;
	if (events == 0)
		return;
	event_set(&st->ev, st->fd, events | EV_PERSIST, stream_io, st);
	if (event_add(&st->ev, NULL) == -1)
		fatalx("%s: event_add", __func__);
}

static void
stream_io(int fd, short event, void *arg)
{
	struct tstream	*st = arg;
	struct tsession	*s = st->s;
	ssize_t		 n;

	if ((event & EV_WRITE) && st->inlen > 0) {
		do {
			n = write(st->fd, st->in, st->inlen);
		} while (n == -1 && errno == EINTR);
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			stream_reset(st, NGHTTP2_CANCEL);
		else if (n > 0) {
			memmove(st->in, st->in + n, st->inlen - n);
			st->inlen -= n;
			if (st->id != 0)
				(void)nghttp2_session_consume(s->h2, st->id,
				    n);
		}
	}
	if ((event & EV_READ) && !st->abort && st->outlen < TS_OUTBUF) {
		do {
			n = read(st->fd, st->out + st->outlen,
			    TS_OUTBUF - st->outlen);
		} while (n == -1 && errno == EINTR);
		if (n == 0)
			st->rd_eof = 1;
		else if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			stream_reset(st, NGHTTP2_CANCEL);
		else if (n > 0) {
			st->outlen += n;
			s->pending += n;
		}
		if (st->deferred && st->id != 0 && (n >= 0)) {
			st->deferred = 0;
			if (nghttp2_session_resume_data(s->h2, st->id) != 0)
				s->failed = 1;
		}
	}
	/* Reset, or ended both ways and all written: it is done. */
	if (st->abort || (st->id == 0 && st->inlen == 0)) {
		stream_free(st);
		st = NULL;
	} else
		stream_arm(st);
	session_flush(s);
	session_update(s);
}

/* Sessions */

void
session_init(const struct tunnel_limits *l, const struct tunnel_cb *c)
{
	limits = l;
	cb = c;
	if (callbacks != NULL)
		return;
	if (nghttp2_session_callbacks_new(&callbacks) != 0 ||
	    nghttp2_option_new(&options) != 0)
		fatalx("%s: out of memory", __func__);
	nghttp2_session_callbacks_set_send_callback(callbacks, on_send);
	nghttp2_session_callbacks_set_on_header_callback(callbacks,
	    on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
	    on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
	    on_stream_close);
	nghttp2_session_callbacks_set_error_callback2(callbacks, on_error);

	/* Bytes are acknowledged once written on (session_consume). */
	nghttp2_option_set_no_auto_window_update(options, 1);
	nghttp2_option_set_no_http_messaging(options, 0);
	nghttp2_option_set_max_deflate_dynamic_table_size(options,
	    TS_HPACK_TABLE);
	nghttp2_option_set_max_outbound_ack(options, TS_MAX_OUTBOUND_ACK);
	nghttp2_option_set_max_settings(options, TS_MAX_SETTINGS);
	nghttp2_option_set_max_continuations(options, TS_MAX_CONTINUATIONS);
	nghttp2_option_set_no_closed_streams(options, 1);
}

/*
 * A session from the master.  The agent's certificate must be a node's
 * (the master checked it against the host CA, or, for a cluster
 * tunnel, against the trusted clusters' CAs).
 */
struct tsession *
session_accept(int fd, Mezite__ConnMeta *meta, int cluster)
{
	nghttp2_settings_entry	 iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, TS_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, TS_HEADER_LIST },
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0 },
	};
	nghttp2_nv		 nva[4];
	nghttp2_data_provider	*none = NULL;
	struct tsession		*s = NULL;
	struct tstream		*st;
	int32_t			 id;

	if (draining) {
		log_info("tunnel %llu: refused: draining",
		    (unsigned long long)meta->id);
		goto refuse;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("%s", __func__);
		goto refuse;
	}
	s->fd = fd;
	s->meta = meta;
	s->cluster = cluster;
	s->ktls = meta->mode == MEZITE__HANDOFF_MODE__KTLS;
	TAILQ_INIT(&s->streams);
	if (nghttp2_session_client_new2(&s->h2, callbacks, s, options) != 0) {
		log_warnx("%s: no session", __func__);
		goto refuse;
	}
	if (nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, iv,
	    nitems(iv)) != 0 ||
	    nghttp2_submit_window_update(s->h2, NGHTTP2_FLAG_NONE, 0,
	    TS_CONN_WINDOW - NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) != 0) {
		log_warnx("%s: no settings", __func__);
		goto refuse;
	}
	if ((st = stream_new(s, TS_HELLO)) == NULL)
		goto refuse;
	nv_set(&nva[0], ":method", "GET");
	nv_set(&nva[1], ":scheme", "https");
	nv_set(&nva[2], ":authority", meta->cert->name);
	nv_set(&nva[3], ":path", TS_HELLO_PATH);
	if ((id = nghttp2_submit_request(s->h2, NULL, nva, nitems(nva), none,
	    st)) < 0) {
		log_warnx("%s: hello: %s", __func__, nghttp2_strerror(id));
		goto refuse;
	}
	st->id = id;

	s->started = s->heard = s->pinged = mono_now();
	event_set(&s->ev, fd, 0, session_io, s);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	nsessions++;
	log_debug("tunnel %llu (%s): %s, %s", (unsigned long long)meta->id,
	    meta->cert->name, cluster ? "cluster" : "node",
	    s->ktls ? "kernel TLS" : "relayed");
	session_flush(s);
	session_update(s);
	return (s);

 refuse:
	if (s != NULL) {
		while ((st = TAILQ_FIRST(&s->streams)) != NULL) {
			st->id = 0;
			stream_free(st);
		}
		if (s->h2 != NULL)
			nghttp2_session_del(s->h2);
		free(s);
	}
	close(fd);
	mezite__conn_meta__free_unpacked(meta, NULL);
	return (NULL);
}

static void
session_io(int fd, short event, void *arg)
{
	struct tsession	*s = arg;
	struct tstream	*st;

	if (event & EV_WRITE)
		s->blocked = 0;
	if (event & EV_READ)
		session_read(s);
	session_flush(s);
	/* Output went out: streams held by the bound may read again. */
	if (!s->failed)
		TAILQ_FOREACH(st, &s->streams, entry)
			stream_arm(st);
	session_update(s);
}

/* As grpc.c reads its sessions: close_notify is a clean end. */
static void
session_read(struct tsession *s)
{
	ssize_t		 n, rv;
	int		 type = KTLS_RT_DATA;

	if (s->ktls)
		n = ktls_recv(s->fd, readbuf, sizeof(readbuf), &type);
	else
		n = read(s->fd, readbuf, sizeof(readbuf));
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("tunnel %llu (%s): read: %s",
		    (unsigned long long)s->meta->id, sname(s),
		    strerror(errno));
		s->failed = 1;
		return;
	}
	if (n == 0) {
		log_debug("tunnel %llu (%s): %s",
		    (unsigned long long)s->meta->id, sname(s),
		    s->ktls ? "closed without close_notify" : "end");
		s->failed = 1;
		return;
	}
	if (type != KTLS_RT_DATA) {
		if (type == KTLS_RT_ALERT && n == 2 && readbuf[1] == 0)
			s->eof = 1;
		else
			s->failed = 1;
		return;
	}
	s->heard = mono_now();
	rv = nghttp2_session_mem_recv(s->h2, readbuf, n);
	if (rv < 0)
		session_fatal(s, rv);
	else if (s->goaway_now) {
		s->goaway_now = 0;
		goaway_submit(s, 1);
	}
}

static void
session_fatal(struct tsession *s, int rv)
{
	log_warnx("tunnel %llu (%s): %s; closing",
	    (unsigned long long)s->meta->id, sname(s), nghttp2_strerror(rv));
	if (rv == NGHTTP2_ERR_FLOODED &&
	    nghttp2_session_terminate_session(s->h2,
	    NGHTTP2_ENHANCE_YOUR_CALM) == 0)
		(void)nghttp2_session_send(s->h2);
	s->failed = 1;
}

static void
session_flush(struct tsession *s)
{
	int	 rv;

	if (s->failed || s->blocked)
		return;
	if ((rv = nghttp2_session_send(s->h2)) != 0) {
		log_debug("tunnel %llu (%s): %s",
		    (unsigned long long)s->meta->id, sname(s),
		    nghttp2_strerror(rv));
		s->failed = 1;
	}
}

/* Whether an ended stream still has the agent's bytes to write. */
static int
session_lingering(struct tsession *s)
{
	struct tstream	*st;

	TAILQ_FOREACH(st, &s->streams, entry)
		if (st->id == 0 && st->fd != -1 && st->inlen > 0 &&
		    !st->abort)
			return (1);
	return (0);
}

static void
session_update(struct tsession *s)
{
	int	 want_read, want_write;
	short	 events;

	if (s->failed) {
		session_close(s);
		return;
	}
	want_read = !s->eof && nghttp2_session_want_read(s->h2);
	want_write = nghttp2_session_want_write(s->h2);
	if (!want_read && !want_write) {
		/* Streams that ended still write what came to their end. */
		if (!session_lingering(s)) {
			session_close(s);
			return;
		}
	}
	events = 0;
	if (want_read)
		events |= EV_READ;
	if (want_write && s->blocked)
		events |= EV_WRITE;
	if (events == s->events)
		return;
	if (s->events != 0 && event_del(&s->ev) == -1)
		fatalx("%s: event_del", __func__);
	s->events = events;
	if (events == 0)
		return;
	event_set(&s->ev, s->fd, events | EV_PERSIST, session_io, s);
	if (event_add(&s->ev, NULL) == -1)
		fatalx("%s: event_add", __func__);
}

static void
session_close(struct tsession *s)
{
	struct tstream	*st;

	if (s->events != 0 && event_del(&s->ev) == -1)
		fatalx("%s: event_del", __func__);
	while ((st = TAILQ_FIRST(&s->streams)) != NULL) {
		st->id = 0;
		stream_free(st);
	}
	nghttp2_session_del(s->h2);
	if (s->ktls && ktls_close_notify(s->fd) == -1)
		log_debug("tunnel %llu: close_notify: %s",
		    (unsigned long long)s->meta->id, strerror(errno));
	if (close(s->fd) == -1)
		log_warn("%s: close", __func__);
	log_info("tunnel %llu (%s): closed", (unsigned long long)s->meta->id,
	    sname(s));
	TAILQ_REMOVE(&sessions, s, entry);
	nsessions--;
	if (s->registered)
		cb->offline(s);
	cb->closed(s->meta);
	if (s->hello != NULL)
		mezite__tunnel__v1__hello__free_unpacked(s->hello, NULL);
	mezite__conn_meta__free_unpacked(s->meta, NULL);
	free(s);
}

/*
 * GOAWAY (NO_ERROR): the agent connects again, and this session ends
 * once its streams have.  A session going away is no longer online.
 */
/*
 * GOAWAY (NO_ERROR), the agent's cue to connect again.  Streams in
 * flight go on, and the session closes when none is left; or, with
 * now, it closes once the GOAWAY is out.  A session going away is no
 * longer online.
 */
static void
goaway_submit(struct tsession *s, int now)
{
	int	 rv;

	if (s->registered) {
		s->registered = 0;
		cb->offline(s);
	}
	if (now)
		rv = nghttp2_session_terminate_session(s->h2,
		    NGHTTP2_NO_ERROR);
	else if (s->state != TS_STATE_GOAWAY)
		rv = nghttp2_submit_goaway(s->h2, NGHTTP2_FLAG_NONE, 0,
		    NGHTTP2_NO_ERROR, NULL, 0);
	else
		rv = 0;
	s->state = TS_STATE_GOAWAY;
	if (nghttp2_is_fatal(rv))
		s->failed = 1;
}

/* The session may be closed on return. */
void
session_goaway(struct tsession *s, const char *why)
{
	if (why != NULL)
		log_info("tunnel %llu (%s): GOAWAY: %s",
		    (unsigned long long)s->meta->id, sname(s), why);
	goaway_submit(s, 0);
	session_flush(s);
	session_update(s);
}

/* GOAWAY, and close: the session is gone on return. */
void
session_end(struct tsession *s, const char *why)
{
	if (why != NULL)
		log_info("tunnel %llu (%s): GOAWAY and close: %s",
		    (unsigned long long)s->meta->id, sname(s), why);
	goaway_submit(s, 1);
	session_flush(s);
	s->failed = 1;
	session_update(s);
}

/* Open a CONNECT stream for the dial; -1 if none can be opened now. */
int
session_dial(struct tsession *s, struct tdial *d)
{
	nghttp2_data_provider	 prd;
	nghttp2_nv		 nva[2];
	struct tstream		*st;
	uint32_t		 max;
	int32_t			 id;

	max = nghttp2_session_get_remote_settings(s->h2,
	    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (s->state != TS_STATE_ONLINE || s->nstreams >= TUNNEL_STREAMS_MAX ||
	    s->nstreams >= max || nstreams_total >= TUNNEL_STREAMS_TOTAL)
		return (-1);
	if ((st = stream_new(s, TS_CONNECT)) == NULL)
		return (-1);
	nv_set(&nva[0], ":method", "CONNECT");
	nv_set(&nva[1], ":authority", d->service);
	memset(&prd, 0, sizeof(prd));
	prd.source.ptr = st;
	prd.read_callback = stream_provide;
	if ((id = nghttp2_submit_request(s->h2, NULL, nva, nitems(nva), &prd,
	    st)) < 0) {
		log_warnx("tunnel %llu (%s): CONNECT: %s",
		    (unsigned long long)s->meta->id, sname(s),
		    nghttp2_strerror(id));
		stream_free(st);
		return (-1);
	}
	st->id = id;
	st->dial = d;
	d->stream = st;
	log_debug("tunnel %llu (%s): stream %d to %s for %s",
	    (unsigned long long)s->meta->id, sname(s), id, d->service,
	    d->requester);
	session_flush(s);
	session_update(s);
	return (0);
}

/* The dial timed out: its stream goes. */
void
session_cancel(struct tdial *d)
{
	struct tstream	*st = d->stream;
	struct tsession	*s;

	if (st == NULL)
		return;
	s = st->s;
	st->dial = NULL;
	d->stream = NULL;
	stream_free(st);
	session_flush(s);
	session_update(s);
}

/*
 * Once a second: pings, silence, the Hello's deadline, and
 * certificates that have expired.
 */
void
session_tick(void)
{
	struct tsession	*s, *next;
	int64_t		 now = mono_now();
	int64_t		 ka = (int64_t)limits->keepalive * 1000;
	int64_t		 kt = (int64_t)limits->keepalive_timeout * 1000;
	uint8_t		 opaque[8];

	stream_nofd_tick();
	memset(opaque, 0, sizeof(opaque));
	for (s = TAILQ_FIRST(&sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state == TS_STATE_HELLO && now - s->started >= kt) {
			log_warnx("tunnel %llu (%s): no Hello in %u seconds",
			    (unsigned long long)s->meta->id, sname(s),
			    limits->keepalive_timeout);
			s->failed = 1;
		} else if (now - s->heard >= kt) {
			log_warnx("tunnel %llu (%s): silent for %u seconds",
			    (unsigned long long)s->meta->id, sname(s),
			    limits->keepalive_timeout);
			s->failed = 1;
		} else if (s->state == TS_STATE_ONLINE &&
		    s->meta->cert->not_after != 0 &&
		    time_now() > s->meta->cert->not_after) {
			session_end(s, "the certificate has expired");
			continue;
		} else if (now - s->pinged >= ka) {
			s->pinged = now;
			if (nghttp2_submit_ping(s->h2, NGHTTP2_FLAG_NONE,
			    opaque) != 0)
				s->failed = 1;
		}
		session_flush(s);
		session_update(s);
	}
}

/* Every agent is told to go at once; streams in flight go on. */
void
session_drain(void)
{
	struct tsession	*s, *next;

	draining = 1;
	for (s = TAILQ_FIRST(&sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		session_goaway(s, NULL);
	}
}

unsigned int
session_count(void)
{
	return (nsessions);
}

unsigned int
session_streams_total(void)
{
	return (nstreams_total);
}

const char *
session_name(const struct tsession *s)
{
	return (s->hello->node);
}

const char *
session_key(const struct tsession *s)
{
	return (s->meta->cert->key);
}

uint64_t
session_id(const struct tsession *s)
{
	return (s->meta->id);
}

int
session_cluster(const struct tsession *s)
{
	return (s->cluster);
}

const Mezite__Tunnel__V1__Hello *
session_hello(const struct tsession *s)
{
	return (s->hello);
}

const Mezite__ConnMeta *
session_meta(const struct tsession *s)
{
	return (s->meta);
}

void
session_counters(const struct tsession *s, uint32_t *streams, uint64_t *in,
    uint64_t *out)
{
	*streams = s->nstreams;
	*in = s->bytes_in;
	*out = s->bytes_out;
}

int64_t
session_since(const struct tsession *s)
{
	return (s->since);
}
