/*
 * Unary gRPC over HTTP/2: nghttp2 sessions on handed-over descriptors,
 * driven by libevent's global base.  What is served and what it may
 * cost is said in grpc.h.
 *
 * Each connection reads into one buffer of the process, which nghttp2
 * takes whole (nghttp2_session_mem_recv), then writes what nghttp2 has
 * queued through the send callback until the socket takes no more.
 * nghttp2's callbacks record, answer, and free a stream's call when
 * nghttp2 closes the stream; a connection is closed by the event
 * handler that found it done, once nghttp2 has returned, never from
 * inside a callback.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <event.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "ktls.h"
#include "log.h"
#include "util.h"
#include "grpcframe.h"
#include "grpc.h"

#define GRPC_PATH_MAX		256	/* a longer path names no method */
#define GRPC_PATH_SHOWN		128	/* of a path, in a message */
#define GRPC_ENCODING_MAX	32
#define GRPC_STATUS_MSG_MAX	256	/* grpc-message, before encoding */
#define GRPC_HPACK_TABLE	4096
#define GRPC_MAX_OUTBOUND_ACK	256	/* SETTINGS and PING ACKs queued */
#define GRPC_MAX_SETTINGS	16	/* entries in one SETTINGS frame */
#define GRPC_MAX_CONTINUATIONS	8	/* after one HEADERS frame */
#define GRPC_RESET_BURST	1000	/* client RST_STREAMs: nghttp2's */
#define GRPC_RESET_RATE		33	/* ... rate limit, per second */
#define GRPC_DRAIN_GRACE_MS	1000	/* from notice to GOAWAY */

#ifndef nitems
#define nitems(a)		(sizeof(a) / sizeof((a)[0]))
#endif

struct grpc_conn;

struct grpc_call {
	LIST_ENTRY(grpc_call)	 entry;
	struct grpc_conn	*conn;
	int32_t			 id;
	const struct grpc_method *method;

	/* The request's headers, as far as we look at them. */
	size_t			 hlist;		/* counted as HTTP/2 does */
	char			 path[GRPC_PATH_MAX];
	size_t			 pathlen;
	char			 encoding[GRPC_ENCODING_MAX];
	int			 post;
	int			 grpc_type;	/* content-type is gRPC */

	struct grpc_rx		 rx;
	size_t			 reserved;	/* of memory, for rx */
	int			 headers;	/* request headers checked */
	int			 ended;		/* the client's END_STREAM */
	int			 answered;

	uint8_t			*reply;		/* the framed reply */
	size_t			 replylen;
	size_t			 replyoff;	/* given to nghttp2 */
};

enum drain_state {
	DRAIN_NONE,
	DRAIN_NOTICE,		/* shutdown notice sent */
	DRAIN_GOAWAY,		/* GOAWAY with the last stream sent */
};

struct grpc_conn {
	LIST_ENTRY(grpc_conn)	 entry;
	int			 fd;
	int			 ktls;
	Mezite__ConnMeta	*meta;
	nghttp2_session		*h2;
	struct event		 ev;
	short			 events;	/* ev's, 0: not added */
	struct event		 timer;
	LIST_HEAD(, grpc_call)	 calls;
	unsigned int		 ncalls;	/* streams open */
	size_t			 replies;	/* reply bytes nghttp2 has not
						   taken yet */
	int64_t			 active;	/* last progress, ms */
	int			 blocked;	/* the socket took no more */
	int			 eof;		/* the client sends no more */
	int			 failed;	/* close now, nothing flushed */
	int			 idle_goaway;	/* idle: GOAWAY submitted */
	enum drain_state	 drain;
	int64_t			 drain_at;	/* notice sent, ms */
};

static void	 conn_io(int, short, void *);
static void	 conn_timer(int, short, void *);
static void	 conn_timer_arm(struct grpc_conn *);
static void	 conn_read(struct grpc_conn *);
static void	 conn_fatal(struct grpc_conn *, int);
static void	 conn_flush(struct grpc_conn *);
static void	 conn_update(struct grpc_conn *);
static void	 conn_close(struct grpc_conn *);
static void	 call_free(struct grpc_call *);
static void	 call_release(struct grpc_call *);
static void	 call_reply_free(struct grpc_call *);
static void	 call_headers(struct grpc_call *);
static void	 call_data(struct grpc_call *, const uint8_t *, size_t);
static void	 call_end(struct grpc_call *);
static void	 call_run(struct grpc_call *);
static void	 call_http(struct grpc_call *, const char *);
static void	 call_status(struct grpc_call *, enum grpc_status,
		    const char *, int);
static int	 call_answer(struct grpc_call *);
static int64_t	 mono_now(void);

static const struct grpc_service *service;
static nghttp2_session_callbacks *callbacks;
static nghttp2_option		*options;
static LIST_HEAD(, grpc_conn)	 conns = LIST_HEAD_INITIALIZER(conns);
static unsigned int		 nconns;
static size_t			 memory_used;	/* request bytes, all calls */
static int			 draining;
/* nghttp2 takes what is read whole: one buffer serves every session. */
static uint8_t			 readbuf[GRPC_READ_SIZE];

/* Milliseconds on the monotonic clock. */
static int64_t
mono_now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * Requests hold passwords: their messages are unpacked with an
 * allocator that wipes what it frees.
 */
union wipe_head {
	size_t		 size;
	max_align_t	 align;
};

static void *
wipe_alloc(void *arg, size_t size)
{
	union wipe_head	*h;

	if (size > SIZE_MAX - sizeof(*h))
		return (NULL);
	if ((h = malloc(sizeof(*h) + size)) == NULL)
		return (NULL);
	h->size = size;
	return (h + 1);
}

static void
wipe_free(void *arg, void *p)
{
	union wipe_head	*h;

	if (p == NULL)
		return;
	h = (union wipe_head *)p - 1;
	explicit_bzero(h, sizeof(*h) + h->size);
	free(h);
}

static ProtobufCAllocator wipe_allocator = {
	.alloc = wipe_alloc,
	.free = wipe_free,
	.allocator_data = NULL,
};

/* A header field for nghttp2, which copies it. */
static void
nv_set(nghttp2_nv *nv, const char *name, const char *value)
{
	nv->name = (uint8_t *)name;
	nv->namelen = strlen(name);
	nv->value = (uint8_t *)value;
	nv->valuelen = strlen(value);
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* nghttp2 callbacks */

static ssize_t
on_send(nghttp2_session *h2, const uint8_t *data, size_t len, int flags,
    void *arg)
{
	struct grpc_conn	*c = arg;
	ssize_t			 n;

	do {
		n = send(c->fd, data, len, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->blocked = 1;
			return (NGHTTP2_ERR_WOULDBLOCK);
		}
		log_debug("session %llu: send: %s",
		    (unsigned long long)c->meta->id, strerror(errno));
		c->failed = 1;
		return (NGHTTP2_ERR_CALLBACK_FAILURE);
	}
	if (c->ncalls > 0)
		c->active = mono_now();
	return (n);
}

static int
on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame,
    void *arg)
{
	struct grpc_conn	*c = arg;
	struct grpc_call	*call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return (0);
	if ((call = calloc(1, sizeof(*call))) == NULL) {
		log_warn("%s", __func__);
		return (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
	}
	if (nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id,
	    call) != 0) {
		free(call);
		return (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
	}
	call->conn = c;
	call->id = frame->hd.stream_id;
	grpc_rx_init(&call->rx);
	LIST_INSERT_HEAD(&c->calls, call, entry);
	c->ncalls++;
	c->active = mono_now();
	return (0);
}

static int
header_is(const uint8_t *p, size_t len, const char *s)
{
	return (len == strlen(s) && memcmp(p, s, len) == 0);
}

static int
on_header(nghttp2_session *h2, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct grpc_call	*call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return (0);	/* trailers: nothing in them for us */
	call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (call == NULL)
		return (0);

	/* Counted as SETTINGS_MAX_HEADER_LIST_SIZE is; kept no further. */
	if (call->hlist > GRPC_HEADER_LIST_MAX)
		return (0);
	call->hlist += namelen + valuelen + 32;
	if (call->hlist > GRPC_HEADER_LIST_MAX)
		return (0);

	if (header_is(name, namelen, ":method"))
		call->post = header_is(value, valuelen, "POST");
	else if (header_is(name, namelen, ":path")) {
		/* A path too long to keep is no method's. */
		call->pathlen = MIN(valuelen, sizeof(call->path) - 1);
		memcpy(call->path, value, call->pathlen);
		call->path[call->pathlen] = '\0';
		if (valuelen > call->pathlen)
			call->pathlen = SIZE_MAX;
	} else if (header_is(name, namelen, "content-type"))
		call->grpc_type =
		    (valuelen == strlen("application/grpc") &&
		    strncasecmp((const char *)value, "application/grpc",
		    valuelen) == 0) ||
		    (valuelen == strlen("application/grpc+proto") &&
		    strncasecmp((const char *)value, "application/grpc+proto",
		    valuelen) == 0);
	else if (header_is(name, namelen, "grpc-encoding")) {
		if (valuelen >= sizeof(call->encoding))
			valuelen = sizeof(call->encoding) - 1;
		memcpy(call->encoding, value, valuelen);
		call->encoding[valuelen] = '\0';
	}
	return (0);
}

static int
on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
	struct grpc_call	*call;

	if (frame->hd.type != NGHTTP2_HEADERS &&
	    frame->hd.type != NGHTTP2_DATA)
		return (0);
	call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (call == NULL)
		return (0);
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		call_headers(call);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		call_end(call);
	return (0);
}

static int
on_data_chunk_recv(nghttp2_session *h2, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct grpc_call	*call;

	if ((call = nghttp2_session_get_stream_user_data(h2, id)) != NULL)
		call_data(call, data, len);
	return (0);
}

/*
 * An answer sent before the client ended its stream: RST_STREAM
 * NO_ERROR follows it (RFC 9113 8.1), and what else the client sends
 * on the stream is dropped.
 */
static int
on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
	struct grpc_conn	*c = arg;
	struct grpc_call	*call;

	if (frame->hd.type == NGHTTP2_GOAWAY &&
	    frame->goaway.error_code != NGHTTP2_NO_ERROR)
		log_debug("session %llu: GOAWAY %s",
		    (unsigned long long)c->meta->id,
		    nghttp2_http2_strerror(frame->goaway.error_code));
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
		return (0);
	call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (call != NULL && !call->ended &&
	    nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, call->id,
	    NGHTTP2_NO_ERROR) != 0)
		log_warnx("%s: stream %d: cannot reset", __func__, call->id);
	return (0);
}

static int
on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error, void *arg)
{
	struct grpc_call	*call;

	if ((call = nghttp2_session_get_stream_user_data(h2, id)) == NULL)
		return (0);
	if (error != NGHTTP2_NO_ERROR)
		log_debug("session %llu: stream %d reset: %s",
		    (unsigned long long)call->conn->meta->id, id,
		    nghttp2_http2_strerror(error));
	(void)nghttp2_session_set_stream_user_data(h2, id, NULL);
	call_free(call);
	return (0);
}

/*
 * nghttp2's word on what it refused.  Of an invalid header field it
 * gives the name and value, which may be a credential: those are cut.
 */
static int
on_error(nghttp2_session *h2, int code, const char *msg, size_t len,
    void *arg)
{
	struct grpc_conn	*c = arg;
	const char		*field;

	if ((field = memmem(msg, len, ", name: [", 9)) != NULL)
		len = field - msg;
	log_debug("session %llu: %.*s", (unsigned long long)c->meta->id,
	    (int)MIN(len, 200), msg);
	return (0);
}

/* The framed reply, then the trailers with grpc-status 0. */
static ssize_t
reply_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct grpc_call	*call = src->ptr;
	nghttp2_nv		 trailer;
	size_t			 n;

	n = MIN(len, call->replylen - call->replyoff);
	memcpy(buf, call->reply + call->replyoff, n);
	call->replyoff += n;
	if (call->replyoff < call->replylen)
		return (n);

	*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	call_reply_free(call);
	nv_set(&trailer, "grpc-status", "0");
	if (nghttp2_submit_trailer(h2, id, &trailer, 1) != 0) {
		log_warnx("%s: stream %d: no trailers", __func__, id);
		return (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
	}
	return (n);
}

/* Calls */

static void
call_release(struct grpc_call *call)
{
	memory_used -= call->reserved;
	call->reserved = 0;
	grpc_rx_free(&call->rx);
}

static void
call_reply_free(struct grpc_call *call)
{
	if (call->reply == NULL)
		return;
	call->conn->replies -= call->replylen;
	explicit_bzero(call->reply, call->replylen);
	free(call->reply);
	call->reply = NULL;
	call->replylen = call->replyoff = 0;
}

static void
call_free(struct grpc_call *call)
{
	struct grpc_conn	*c = call->conn;

	call_release(call);
	call_reply_free(call);
	LIST_REMOVE(call, entry);
	c->ncalls--;
	c->active = mono_now();
	free(call);
}

static void
call_headers(struct grpc_call *call)
{
	size_t	 i;

	call->headers = 1;
	if (call->hlist > GRPC_HEADER_LIST_MAX) {
		call_status(call, GRPC_RESOURCE_EXHAUSTED,
		    "request headers over the limit", 0);
		return;
	}
	if (!call->post) {
		call_http(call, "405");
		return;
	}
	if (!call->grpc_type) {
		call_http(call, "415");
		return;
	}
	for (i = 0; i < service->nmethods; i++)
		if (call->pathlen == strlen(service->methods[i].path) &&
		    memcmp(call->path, service->methods[i].path,
		    call->pathlen) == 0) {
			call->method = &service->methods[i];
			return;
		}
	grpc_error(call, GRPC_UNIMPLEMENTED, "unknown method %.*s%s",
	    GRPC_PATH_SHOWN, call->path,
	    call->pathlen > GRPC_PATH_SHOWN ? "..." : "");
}

static void
call_data(struct grpc_call *call, const uint8_t *data, size_t len)
{
	enum grpc_rx_status	 st;
	size_t			 max, held;

	if (call->answered || !call->headers)
		return;

	/* Nothing is held past what the memory of all calls allows. */
	max = service->memory - memory_used;
	max = MIN(max, service->max_message);
	held = grpc_rx_held(&call->rx);
	st = grpc_rx_feed(&call->rx, data, len, max);
	if (grpc_rx_held(&call->rx) > held) {
		call->reserved = grpc_rx_held(&call->rx);
		memory_used += call->reserved;
	}

	switch (st) {
	case GRPC_RX_MORE:
	case GRPC_RX_DONE:
		break;
	case GRPC_RX_TOOBIG:
		if (call->rx.len > service->max_message)
			grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
			    "request message of %u bytes is over the limit "
			    "of %zu", call->rx.len, service->max_message);
		else
			grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
			    "server out of request memory");
		break;
	case GRPC_RX_NOMEM:
		grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		break;
	case GRPC_RX_COMPRESSED:
		if (call->encoding[0] != '\0' &&
		    strcmp(call->encoding, "identity") != 0)
			call_status(call, GRPC_UNIMPLEMENTED,
			    "compression not supported", 1);
		else
			grpc_error(call, GRPC_INTERNAL,
			    "compressed message without grpc-encoding");
		break;
	case GRPC_RX_BADFLAG:
		grpc_error(call, GRPC_INTERNAL, "bad compressed flag");
		break;
	case GRPC_RX_EXTRA:
		grpc_error(call, GRPC_UNIMPLEMENTED,
		    "more than one request message on a unary call");
		break;
	case GRPC_RX_EMPTY:
	case GRPC_RX_TRUNCATED:
		break;		/* grpc_rx_end()'s only */
	}
}

static void
call_end(struct grpc_call *call)
{
	call->ended = 1;
	if (call->answered || !call->headers)
		return;
	switch (grpc_rx_end(&call->rx)) {
	case GRPC_RX_DONE:
		/* A client that takes no replies is given no more. */
		if (call->conn->replies >= GRPC_REPLIES_MAX)
			grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
			    "replies wait on flow control");
		else
			call_run(call);
		break;
	case GRPC_RX_EMPTY:
		grpc_error(call, GRPC_UNIMPLEMENTED,
		    "no request message on a unary call");
		break;
	case GRPC_RX_TRUNCATED:
		grpc_error(call, GRPC_INTERNAL,
		    "request ends inside a message");
		break;
	default:
		break;		/* answered already */
	}
}

static void
call_run(struct grpc_call *call)
{
	const ProtobufCMessageDescriptor	*desc = call->method->request;
	ProtobufCMessage			*msg;

	msg = protobuf_c_message_unpack(desc, &wipe_allocator,
	    call->rx.len, call->rx.msg);
	if (msg == NULL) {
		call_release(call);
		grpc_error(call, GRPC_INVALID_ARGUMENT,
		    "request is not a valid %s", desc->name);
		return;
	}
	log_debug("session %llu: stream %d: %s",
	    (unsigned long long)call->conn->meta->id, call->id, call->path);
	call->method->call(call, msg);
	protobuf_c_message_free_unpacked(msg, &wipe_allocator);
	call_release(call);
	if (!call->answered) {
		log_warnx("%s: no answer", call->path);
		grpc_error(call, GRPC_UNKNOWN, "no answer");
	}
}

/* Whether the call may still be answered; it is from now on. */
static int
call_answer(struct grpc_call *call)
{
	if (call->answered) {
		log_warnx("%s: stream %d answered twice", call->path,
		    call->id);
		return (0);
	}
	call->answered = 1;
	return (1);
}

/* A plain HTTP answer, for clients that are not gRPC's. */
static void
call_http(struct grpc_call *call, const char *status)
{
	nghttp2_nv	 nva[2];
	size_t		 n = 0;

	if (!call_answer(call))
		return;
	nv_set(&nva[n++], ":status", status);
	if (strcmp(status, "405") == 0)
		nv_set(&nva[n++], "allow", "POST");
	call_release(call);
	log_debug("session %llu: stream %d: HTTP %s",
	    (unsigned long long)call->conn->meta->id, call->id, status);
	if (nghttp2_submit_response(call->conn->h2, call->id, nva, n,
	    NULL) != 0)
		log_warnx("%s: stream %d: cannot answer", __func__, call->id);
}

/*
 * Trailers-Only: a single HEADERS with the status, and END_STREAM.  The
 * message is percent-encoded: bytes outside space to '~', and '%'.
 */
static void
call_status(struct grpc_call *call, enum grpc_status status,
    const char *msg, int accept)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			 code[8], enc[GRPC_STATUS_MSG_MAX * 3 + 1];
	nghttp2_nv		 nva[5];
	const unsigned char	*p;
	size_t			 n = 0, e = 0;

	if (!call_answer(call))
		return;
	call_release(call);
	for (p = (const unsigned char *)msg; *p != '\0' &&
	    e + 3 < sizeof(enc); p++) {
		if (*p >= ' ' && *p <= '~' && *p != '%')
			enc[e++] = *p;
		else {
			enc[e++] = '%';
			enc[e++] = hex[*p >> 4];
			enc[e++] = hex[*p & 0xf];
		}
	}
	enc[e] = '\0';
	(void)snprintf(code, sizeof(code), "%d", (int)status);

	nv_set(&nva[n++], ":status", "200");
	nv_set(&nva[n++], "content-type", "application/grpc");
	nv_set(&nva[n++], "grpc-status", code);
	if (e > 0)
		nv_set(&nva[n++], "grpc-message", enc);
	if (accept)
		nv_set(&nva[n++], "grpc-accept-encoding", "identity");

	log_debug("session %llu: stream %d: status %d",
	    (unsigned long long)call->conn->meta->id, call->id, (int)status);
	if (nghttp2_submit_response(call->conn->h2, call->id, nva, n,
	    NULL) != 0)
		log_warnx("%s: stream %d: cannot answer", __func__, call->id);
}

void
grpc_error(struct grpc_call *call, enum grpc_status status, const char *fmt,
    ...)
{
	char		 msg[GRPC_STATUS_MSG_MAX];
	va_list		 ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	call_status(call, status, msg, 0);
}

void
grpc_reply(struct grpc_call *call, const ProtobufCMessage *msg)
{
	nghttp2_nv		 nva[2];
	nghttp2_data_provider	 prd;
	size_t			 size;
	uint8_t			*buf;

	if (call->answered) {
		(void)call_answer(call);
		return;
	}
	size = protobuf_c_message_get_packed_size(msg);
	if (size > UINT32_MAX) {
		log_warnx("%s: reply of %zu bytes", call->path, size);
		grpc_error(call, GRPC_INTERNAL, "reply too large");
		return;
	}
	if ((buf = malloc(GRPC_PREFIX_LEN + size)) == NULL) {
		log_warn("%s", __func__);
		grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	buf[0] = 0;
	buf[1] = size >> 24;
	buf[2] = size >> 16;
	buf[3] = size >> 8;
	buf[4] = size;
	if (protobuf_c_message_pack(msg, buf + GRPC_PREFIX_LEN) != size) {
		log_warnx("%s: reply packs short", call->path);
		free(buf);
		grpc_error(call, GRPC_INTERNAL, "reply does not pack");
		return;
	}
	(void)call_answer(call);
	call->reply = buf;
	call->replylen = GRPC_PREFIX_LEN + size;
	call->replyoff = 0;
	call->conn->replies += call->replylen;

	nv_set(&nva[0], ":status", "200");
	nv_set(&nva[1], "content-type", "application/grpc");
	memset(&prd, 0, sizeof(prd));
	prd.source.ptr = call;
	prd.read_callback = reply_read;
	if (nghttp2_submit_response(call->conn->h2, call->id, nva,
	    nitems(nva), &prd) != 0) {
		log_warnx("%s: stream %d: cannot answer", __func__, call->id);
		(void)nghttp2_submit_rst_stream(call->conn->h2,
		    NGHTTP2_FLAG_NONE, call->id, NGHTTP2_INTERNAL_ERROR);
	}
}

const Mezite__ConnMeta *
grpc_call_meta(const struct grpc_call *call)
{
	return (call->conn->meta);
}

const char *
grpc_call_method(const struct grpc_call *call)
{
	return (call->path);
}

/* Connections */

void
grpc_init(const struct grpc_service *svc)
{
	if (svc->max_message == 0 || svc->max_message > UINT32_MAX ||
	    svc->max_streams == 0 || svc->memory == 0 ||
	    svc->idle_timeout == 0)
		fatalx("%s: bad service limits", __func__);
	service = svc;

	if (callbacks != NULL)
		return;
	if (nghttp2_session_callbacks_new(&callbacks) != 0 ||
	    nghttp2_option_new(&options) != 0)
		fatalx("%s: out of memory", __func__);
	nghttp2_session_callbacks_set_send_callback(callbacks, on_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(callbacks,
	    on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
	    on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(callbacks,
	    on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
	    on_stream_close);
	nghttp2_session_callbacks_set_error_callback2(callbacks, on_error);

	/* nghttp2's checks of HTTP requests stay on. */
	nghttp2_option_set_no_http_messaging(options, 0);
	nghttp2_option_set_max_deflate_dynamic_table_size(options,
	    GRPC_HPACK_TABLE);
	nghttp2_option_set_max_outbound_ack(options, GRPC_MAX_OUTBOUND_ACK);
	nghttp2_option_set_max_settings(options, GRPC_MAX_SETTINGS);
	/* Debian's 1.52.0-1+deb12u2 and later. */
	nghttp2_option_set_max_continuations(options, GRPC_MAX_CONTINUATIONS);
	nghttp2_option_set_stream_reset_rate_limit(options, GRPC_RESET_BURST,
	    GRPC_RESET_RATE);
	nghttp2_option_set_no_closed_streams(options, 1);
}

int
grpc_accept(int fd, Mezite__ConnMeta *meta)
{
	nghttp2_settings_entry	 iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_HEADER_LIST_MAX },
		{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
	};
	struct grpc_conn	*c = NULL;

	if (service == NULL)
		fatalx("%s: grpc_init first", __func__);
	if (draining) {
		log_debug("session %llu: refused: draining",
		    (unsigned long long)meta->id);
		goto refuse;
	}
	if (fd_nonblock(fd) == -1) {
		log_warn("%s: nonblock", __func__);
		goto refuse;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("%s", __func__);
		goto refuse;
	}
	c->fd = fd;
	c->meta = meta;
	c->ktls = meta->mode == MEZITE__HANDOFF_MODE__KTLS;
	LIST_INIT(&c->calls);
	if (nghttp2_session_server_new2(&c->h2, callbacks, c, options) != 0) {
		log_warnx("%s: no session", __func__);
		goto refuse;
	}
	iv[0].value = service->max_streams;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv,
	    nitems(iv)) != 0) {
		log_warnx("%s: no settings", __func__);
		goto refuse;
	}

	event_set(&c->ev, fd, 0, conn_io, c);
	evtimer_set(&c->timer, conn_timer, c);
	c->active = mono_now();
	LIST_INSERT_HEAD(&conns, c, entry);
	nconns++;
	log_debug("session %llu: gRPC, %s", (unsigned long long)meta->id,
	    c->ktls ? "kernel TLS" : "relayed");
	conn_timer_arm(c);
	conn_flush(c);
	conn_update(c);
	return (0);

 refuse:
	if (c != NULL) {
		if (c->h2 != NULL)
			nghttp2_session_del(c->h2);
		free(c);
	}
	close(fd);
	mezite__conn_meta__free_unpacked(meta, NULL);
	return (-1);
}

static void
conn_io(int fd, short event, void *arg)
{
	struct grpc_conn	*c = arg;

	if (event & EV_WRITE)
		c->blocked = 0;
	if (event & EV_READ)
		conn_read(c);
	conn_flush(c);
	conn_update(c);
}

/*
 * Relayed, a read of 0 is the client's close_notify and an error its
 * abort.  In kernel TLS a record that is not data ends the session: a
 * close_notify as a clean end, anything else (another alert, a
 * KeyUpdate) as an abort; an end of the TCP stream without close_notify
 * is an abort too.  After a clean end, what is queued is still sent.
 */
static void
conn_read(struct grpc_conn *c)
{
	ssize_t		 n, rv;
	int		 type = KTLS_RT_DATA;

	if (c->ktls)
		n = ktls_recv(c->fd, readbuf, sizeof(readbuf), &type);
	else
		n = read(c->fd, readbuf, sizeof(readbuf));
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("session %llu: read: %s",
		    (unsigned long long)c->meta->id, strerror(errno));
		c->failed = 1;
		return;
	}
	if (n == 0) {
		log_debug("session %llu: %s", (unsigned long long)c->meta->id,
		    c->ktls ? "closed without close_notify" : "end");
		if (c->ktls)
			c->failed = 1;
		else
			c->eof = 1;
		return;
	}
	if (type != KTLS_RT_DATA) {
		if (type == KTLS_RT_ALERT && n == 2 && readbuf[1] == 0) {
			log_debug("session %llu: close_notify",
			    (unsigned long long)c->meta->id);
			c->eof = 1;
		} else {
			log_debug("session %llu: TLS record of type %d",
			    (unsigned long long)c->meta->id, type);
			c->failed = 1;
		}
		return;
	}

	if (c->ncalls > 0)
		c->active = mono_now();
	rv = nghttp2_session_mem_recv(c->h2, readbuf, n);
	explicit_bzero(readbuf, n);
	if (rv < 0)
		conn_fatal(c, rv);
}

/*
 * nghttp2 gave up on the session.  A flood or a client that does not
 * speak HTTP/2 is told so with GOAWAY, as far as the socket takes it
 * now; then the session is closed.
 */
static void
conn_fatal(struct grpc_conn *c, int rv)
{
	log_debug("session %llu: %s", (unsigned long long)c->meta->id,
	    nghttp2_strerror(rv));
	if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
		if (nghttp2_session_terminate_session(c->h2,
		    rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM :
		    NGHTTP2_PROTOCOL_ERROR) == 0)
			(void)nghttp2_session_send(c->h2);
	}
	c->failed = 1;
}

static void
conn_flush(struct grpc_conn *c)
{
	int	 rv;

	if (c->failed || c->blocked)
		return;
	if ((rv = nghttp2_session_send(c->h2)) != 0) {
		log_debug("session %llu: %s", (unsigned long long)c->meta->id,
		    nghttp2_strerror(rv));
		c->failed = 1;
	}
}

/*
 * Wait for what the session needs next, or close it: when nghttp2
 * wants neither to read nor to write, on the client's end once all is
 * sent, on an error.  While the socket takes no more output the
 * session is not read.
 */
static void
conn_update(struct grpc_conn *c)
{
	int	 want_read, want_write;
	short	 events = 0;

	if (c->failed) {
		conn_close(c);
		return;
	}
	want_read = !c->eof && nghttp2_session_want_read(c->h2);
	want_write = nghttp2_session_want_write(c->h2);
	if (!want_read && !want_write) {
		conn_close(c);
		return;
	}
	if (want_write && (c->blocked || !want_read))
		events = EV_WRITE;
	else
		events = EV_READ;
	if (events == c->events)
		return;
	if (c->events != 0 && event_del(&c->ev) == -1)
		fatalx("%s: event_del", __func__);
	c->events = events;
	if (events == 0)
		return;
	event_set(&c->ev, c->fd, events | EV_PERSIST, conn_io, c);
	if (event_add(&c->ev, NULL) == -1)
		fatalx("%s: event_add", __func__);
}

static void
conn_close(struct grpc_conn *c)
{
	struct grpc_call	*call;

	if (c->events != 0 && event_del(&c->ev) == -1)
		fatalx("%s: event_del", __func__);
	if (evtimer_pending(&c->timer, NULL) && evtimer_del(&c->timer) == -1)
		fatalx("%s: evtimer_del", __func__);
	nghttp2_session_del(c->h2);
	while ((call = LIST_FIRST(&c->calls)) != NULL)
		call_free(call);
	if (c->ktls && ktls_close_notify(c->fd) == -1)
		log_debug("session %llu: close_notify: %s",
		    (unsigned long long)c->meta->id, strerror(errno));
	if (close(c->fd) == -1)
		log_warn("%s: close", __func__);
	log_debug("session %llu: closed", (unsigned long long)c->meta->id);
	LIST_REMOVE(c, entry);
	nconns--;
	if (service->closed != NULL)
		service->closed(c->meta);
	mezite__conn_meta__free_unpacked(c->meta, NULL);
	free(c);
}

/*
 * The connection's clock: idle time, and the steps of a drain.  The
 * timer fires at the earliest of them, and at once when grpc_drain()
 * asks.
 */
static void
conn_timer_arm(struct grpc_conn *c)
{
	struct timeval	 tv;
	int64_t		 now, at;

	now = mono_now();
	at = c->active + (int64_t)service->idle_timeout * 1000;
	if (c->drain == DRAIN_NOTICE)
		at = MIN(at, c->drain_at + GRPC_DRAIN_GRACE_MS);
	if (draining && c->drain == DRAIN_NONE)
		at = now;
	at = MAX(at - now, 0);
	tv.tv_sec = at / 1000;
	tv.tv_usec = at % 1000 * 1000;
	if (evtimer_add(&c->timer, &tv) == -1)
		fatalx("%s: evtimer_add", __func__);
}

static void
conn_timer(int fd, short event, void *arg)
{
	struct grpc_conn	*c = arg;
	int64_t			 now;
	int			 rv;

	now = mono_now();
	if (now - c->active >= (int64_t)service->idle_timeout * 1000) {
		if (c->idle_goaway) {
			log_debug("session %llu: idle, GOAWAY not sent",
			    (unsigned long long)c->meta->id);
			c->failed = 1;
		} else {
			log_debug("session %llu: idle",
			    (unsigned long long)c->meta->id);
			c->idle_goaway = 1;
			c->active = now;
			rv = nghttp2_session_terminate_session(c->h2,
			    NGHTTP2_NO_ERROR);
			if (nghttp2_is_fatal(rv))
				c->failed = 1;
		}
	}
	/* A session that ends already (idle, GOAWAY) refuses these. */
	if (draining && c->drain == DRAIN_NONE) {
		rv = nghttp2_submit_shutdown_notice(c->h2);
		if (nghttp2_is_fatal(rv))
			c->failed = 1;
		c->drain = DRAIN_NOTICE;
		c->drain_at = now;
	} else if (c->drain == DRAIN_NOTICE &&
	    now >= c->drain_at + GRPC_DRAIN_GRACE_MS) {
		rv = nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(c->h2),
		    NGHTTP2_NO_ERROR, NULL, 0);
		if (nghttp2_is_fatal(rv))
			c->failed = 1;
		c->drain = DRAIN_GOAWAY;
	}
	if (!c->failed)
		conn_timer_arm(c);
	conn_flush(c);
	conn_update(c);
}

void
grpc_drain(void)
{
	struct grpc_conn	*c;

	if (draining)
		return;
	draining = 1;
	LIST_FOREACH(c, &conns, entry)
		conn_timer_arm(c);
}

unsigned int
grpc_sessions(void)
{
	return (nconns);
}
