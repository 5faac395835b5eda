/*
 * Unary gRPC calls over HTTP/2 (nghttp2) on a TLS connection.
 *
 * A call is one request stream: HEADERS (POST, the method's path,
 * content-type application/grpc, te trailers), then one DATA frame
 * or more carrying the request as one gRPC message (a flag byte that
 * is 0, for uncompressed, its length as 4 bytes big-endian, and the
 * protobuf bytes).  The reply is HEADERS (:status 200), DATA with one
 * message of at most RPC_MAXMSG bytes, and trailers with grpc-status
 * and grpc-message; or, for an error, a single HEADERS carrying the
 * status ("Trailers-Only").
 *
 * nghttp2 copies what it sends into its own buffers unless told not
 * to.  Requests carry secrets (a password), so the DATA frames are
 * sent with NGHTTP2_DATA_FLAG_NO_COPY, straight from the framed
 * request into the output buffer here, and both are wiped.
 */

#include <sys/types.h>

#include <ctype.h>
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "msh.h"
#include "rpc.h"

#define RPC_OUTBUF	(32 * 1024)	/* more than a frame of 16 KiB */
#define RPC_MAXHEADERS	(64 * 1024)	/* a reply's header bytes */
#define RPC_RAWMSGLEN	1024		/* grpc-message as it comes */
#define FRAMEHD		5		/* a gRPC message's prefix */
#define H2_FRAMEHD	9		/* an HTTP/2 frame's header */

struct call {
	int32_t					 id;	/* 0: none */
	const ProtobufCMessageDescriptor	*reply_type;

	uint8_t		*req;		/* the framed request */
	size_t		 reqlen;
	size_t		 reqsent;
	int		 sent;		/* all of it is in out[] */

	uint8_t		*body;		/* the reply's DATA */
	size_t		 bodylen;
	size_t		 bodycap;
	size_t		 hdrbytes;
	int		 http_status;
	int		 ctype_bad;
	int		 have_status;
	int		 grpc_status;
	char		 grpc_message[RPC_RAWMSGLEN];
	size_t		 grpc_messagelen;

	int		 closed;
	uint32_t	 error_code;	/* RST_STREAM's, if any */
	const char	*fail;		/* why a callback gave up */
};

struct rpc {
	struct conn	*conn;
	nghttp2_session	*h2;
	uint8_t		 out[RPC_OUTBUF];
	size_t		 outlen;
	struct call	 call;
};

static const char *const grpc_codes[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
	"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"
};

static ssize_t	 on_send(nghttp2_session *, const uint8_t *, size_t, int,
		    void *);
static int	 on_send_data(nghttp2_session *, nghttp2_frame *,
		    const uint8_t *, size_t, nghttp2_data_source *, void *);
static ssize_t	 on_read_request(nghttp2_session *, int32_t, uint8_t *,
		    size_t, uint32_t *, nghttp2_data_source *, void *);
static int	 on_header(nghttp2_session *, const nghttp2_frame *,
		    const uint8_t *, size_t, const uint8_t *, size_t, uint8_t,
		    void *);
static int	 on_data(nghttp2_session *, uint8_t, int32_t, const uint8_t *,
		    size_t, void *);
static int	 on_stream_close(nghttp2_session *, int32_t, uint32_t,
		    void *);
static int	 rpc_flush(struct rpc *);
static void	 rpc_run(struct rpc *, int);
static void	 call_clear(struct call *);
static size_t	 utf8_len(const unsigned char *, size_t, unsigned int *);

const char *
grpc_code_name(int code)
{
	if (code < 0 || (size_t)code >= sizeof(grpc_codes) /
	    sizeof(grpc_codes[0]))
		return ("unknown status");
	return (grpc_codes[code]);
}

/*
 * The one message of a reply's body.  NULL if it is one whole,
 * uncompressed message of at most RPC_MAXMSG bytes, or why not.
 */
const char *
grpc_frame_parse(const uint8_t *buf, size_t len, const uint8_t **msg,
    size_t *msglen)
{
	uint32_t	 n;

	if (len == 0)
		return ("no message");
	if (len < FRAMEHD)
		return ("truncated message");
	if (buf[0] == 1)
		return ("compressed message");
	if (buf[0] != 0)
		return ("bad message flags");
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
	    (uint32_t)buf[3] << 8 | buf[4];
	if (n > RPC_MAXMSG)
		return ("message too large");
	if (n > len - FRAMEHD)
		return ("truncated message");
	if (n < len - FRAMEHD)
		return ("more than one message");
	*msg = buf + FRAMEHD;
	*msglen = n;
	return (NULL);
}

/*
 * The length of the valid UTF-8 sequence at s (1 to 4 bytes) and its
 * code point, or 0 if there is none: no overlong forms, surrogates or
 * code points past U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *s, size_t n, unsigned int *cp)
{
	unsigned int	 c, min;
	size_t		 len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return (1);
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		c = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		c = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		c = s[0] & 0x07;
		min = 0x10000;
	} else
		return (0);
	if (len > n)
		return (0);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return (0);
	*cp = c;
	return (len);
}

/*
 * Copy a string from the network for a terminal: valid UTF-8 only,
 * each control character (C0, DEL, C1) or invalid byte made a '?',
 * cut to what fits in out (never in the middle of a character).
 */
void
printable(const char *in, size_t inlen, char *out, size_t outlen)
{
	const unsigned char	*s = (const unsigned char *)in;
	unsigned int		 cp;
	size_t			 i = 0, o = 0, k;

	if (outlen == 0)
		return;
	while (i < inlen) {
		if ((k = utf8_len(s + i, inlen - i, &cp)) == 0 ||
		    cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
			if (o + 1 >= outlen)
				break;
			out[o++] = '?';
			i += k == 0 ? 1 : k;
			continue;
		}
		if (o + k >= outlen)
			break;
		memcpy(out + o, s + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
}

/*
 * grpc-message is UTF-8 with its unsafe bytes percent-encoded; a '%'
 * not followed by two hex digits stands for itself.
 */
void
grpc_message_decode(const char *in, size_t inlen, char *out, size_t outlen)
{
	char		 raw[RPC_RAWMSGLEN];
	char		 hex[3];
	size_t		 i, o;

	for (i = o = 0; i < inlen && o < sizeof(raw); i++, o++) {
		if (in[i] == '%' && i + 2 < inlen &&
		    isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			hex[0] = in[i + 1];
			hex[1] = in[i + 2];
			hex[2] = '\0';
			raw[o] = (char)strtoul(hex, NULL, 16);
			i += 2;
		} else
			raw[o] = in[i];
	}
	printable(raw, o, out, outlen);
}

/* nghttp2 hands over what it sends: into out[], which is wiped. */
static ssize_t
on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
    void *arg)
{
	struct rpc	*r = arg;
	size_t		 n;

	if ((n = sizeof(r->out) - r->outlen) == 0)
		return (NGHTTP2_ERR_WOULDBLOCK);
	if (n > len)
		n = len;
	memcpy(r->out + r->outlen, data, n);
	r->outlen += n;
	return (n);
}

/* How much of the request the next DATA frame carries. */
static ssize_t
on_read_request(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct call	*c = &((struct rpc *)arg)->call;
	size_t		 n;

	if ((n = c->reqlen - c->reqsent) > len)
		n = len;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (c->reqsent + n == c->reqlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (n);
}

/* A DATA frame of the request: its header, then its part, into out[]. */
static int
on_send_data(nghttp2_session *s, nghttp2_frame *f, const uint8_t *hd,
    size_t len, nghttp2_data_source *src, void *arg)
{
	struct rpc	*r = arg;
	struct call	*c = &r->call;

	if (f->data.padlen > 0 || len > c->reqlen - c->reqsent ||
	    H2_FRAMEHD + len > sizeof(r->out))
		return (NGHTTP2_ERR_CALLBACK_FAILURE);
	if (H2_FRAMEHD + len > sizeof(r->out) - r->outlen)
		return (NGHTTP2_ERR_WOULDBLOCK);
	memcpy(r->out + r->outlen, hd, H2_FRAMEHD);
	memcpy(r->out + r->outlen + H2_FRAMEHD, c->req + c->reqsent, len);
	r->outlen += H2_FRAMEHD + len;
	c->reqsent += len;
	if (c->reqsent == c->reqlen)
		c->sent = 1;
	return (0);
}

#define HDR_IS(n, nl, s)	((nl) == strlen(s) && \
			    memcmp((n), (s), (nl)) == 0)

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
    void *arg)
{
	struct call	*c = &((struct rpc *)arg)->call;
	size_t		 i;

	if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != c->id)
		return (0);
	/* As HTTP/2 counts a header list: 32 bytes more per field. */
	if ((c->hdrbytes += namelen + valuelen + 32) > RPC_MAXHEADERS) {
		c->fail = "the reply's headers are too large";
		return (NGHTTP2_ERR_CALLBACK_FAILURE);
	}
	if (f->headers.cat == NGHTTP2_HCAT_RESPONSE &&
	    HDR_IS(name, namelen, ":status")) {
		/* nghttp2 has checked that it is 3 digits. */
		c->http_status = (value[0] - '0') * 100 +
		    (value[1] - '0') * 10 + (value[2] - '0');
	} else if (f->headers.cat == NGHTTP2_HCAT_RESPONSE &&
	    HDR_IS(name, namelen, "content-type")) {
		/* application/grpc, maybe +proto or ;parameters */
		if (valuelen < 16 || memcmp(value, "application/grpc", 16) !=
		    0 || (valuelen > 16 && value[16] != '+' &&
		    value[16] != ';'))
			c->ctype_bad = 1;
	} else if (HDR_IS(name, namelen, "grpc-status")) {
		if (valuelen == 0 || valuelen > 3) {
			c->fail = "malformed grpc-status";
			return (NGHTTP2_ERR_CALLBACK_FAILURE);
		}
		c->grpc_status = 0;
		for (i = 0; i < valuelen; i++) {
			if (!isdigit(value[i])) {
				c->fail = "malformed grpc-status";
				return (NGHTTP2_ERR_CALLBACK_FAILURE);
			}
			c->grpc_status = c->grpc_status * 10 + value[i] - '0';
		}
		c->have_status = 1;
	} else if (HDR_IS(name, namelen, "grpc-message")) {
		/* Longer ones are cut. */
		if (valuelen > sizeof(c->grpc_message))
			valuelen = sizeof(c->grpc_message);
		memcpy(c->grpc_message, value, valuelen);
		c->grpc_messagelen = valuelen;
	}
	return (0);
}

static int
on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
    size_t len, void *arg)
{
	struct call	*c = &((struct rpc *)arg)->call;
	uint8_t		*p;
	size_t		 cap;

	if (id != c->id)
		return (0);
	if (len > FRAMEHD + RPC_MAXMSG - c->bodylen) {
		c->fail = "the reply is too large";
		return (NGHTTP2_ERR_CALLBACK_FAILURE);
	}
	if (c->bodylen + len > c->bodycap) {
		cap = c->bodycap == 0 ? 4096 : c->bodycap * 2;
		if (cap < c->bodylen + len)
			cap = c->bodylen + len;
		if (cap > FRAMEHD + RPC_MAXMSG)
			cap = FRAMEHD + RPC_MAXMSG;
		if ((p = realloc(c->body, cap)) == NULL)
			err(1, NULL);
		c->body = p;
		c->bodycap = cap;
	}
	memcpy(c->body + c->bodylen, data, len);
	c->bodylen += len;
	return (0);
}

static int
on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code,
    void *arg)
{
	struct call	*c = &((struct rpc *)arg)->call;

	if (id == c->id) {
		c->closed = 1;
		c->error_code = error_code;
	}
	return (0);
}

/*
 * A session on the connection.  Its first bytes (the preface and our
 * SETTINGS) leave with the first call.
 */
struct rpc *
rpc_open(struct conn *conn)
{
	nghttp2_session_callbacks	*cb;
	nghttp2_settings_entry		 set[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, RPC_MAXHEADERS },
	};
	struct rpc			*r;
	int				 rv;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		err(1, NULL);
	r->conn = conn;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		errx(1, "nghttp2_session_callbacks_new");
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    on_stream_close);
	rv = nghttp2_session_client_new(&r->h2, cb, r);
	nghttp2_session_callbacks_del(cb);
	if (rv != 0)
		errx(1, "nghttp2_session_client_new: %s", nghttp2_strerror(rv));
	if ((rv = nghttp2_submit_settings(r->h2, NGHTTP2_FLAG_NONE, set,
	    sizeof(set) / sizeof(set[0]))) != 0)
		errx(1, "nghttp2_submit_settings: %s", nghttp2_strerror(rv));
	return (r);
}

/*
 * Say goodbye (GOAWAY) and free the session; the connection stays.
 * The calls are over: a proxy that does not hear the goodbye changes
 * nothing, and is not reported.
 */
void
rpc_close(struct rpc *r)
{
	if (r == NULL)
		return;
	if (nghttp2_session_terminate_session(r->h2, NGHTTP2_NO_ERROR) == 0)
		(void)rpc_flush(r);
	nghttp2_session_del(r->h2);
	call_clear(&r->call);
	explicit_bzero(r->out, sizeof(r->out));
	free(r);
}

static void
call_clear(struct call *c)
{
	if (c->req != NULL) {
		explicit_bzero(c->req, c->reqlen);
		free(c->req);
	}
	free(c->body);
	memset(c, 0, sizeof(*c));
}

/*
 * Send all that nghttp2 has to send now.  0: sent; -1: the connection
 * failed (conn_error()).
 */
static int
rpc_flush(struct rpc *r)
{
	int	 rv;

	for (;;) {
		if ((rv = nghttp2_session_send(r->h2)) != 0)
			errx(1, "%s: HTTP/2: %s", r->conn->name,
			    nghttp2_strerror(rv));
		if (r->outlen == 0)
			return (0);
		rv = conn_write(r->conn, r->out, r->outlen);
		explicit_bzero(r->out, r->outlen);
		r->outlen = 0;
		if (rv == -1)
			return (-1);
	}
}

/* Exchange frames until the request is sent, or the call is over. */
static void
rpc_run(struct rpc *r, int until_sent)
{
	struct call	*c = &r->call;
	uint8_t		 buf[16384];
	ssize_t		 n, rv;

	for (;;) {
		if (rpc_flush(r) == -1)
			errx(1, "%s: %s", r->conn->name,
			    conn_error(r->conn));
		if (c->closed || (until_sent && c->sent))
			return;
		if (!nghttp2_session_want_read(r->h2))
			errx(1, "%s: the HTTP/2 session has ended",
			    r->conn->name);
		if ((n = conn_read(r->conn, buf, sizeof(buf))) == -1)
			errx(1, "%s: %s", r->conn->name,
			    conn_error(r->conn));
		if (n == 0)
			errx(1, "%s: the proxy closed the connection",
			    r->conn->name);
		if ((rv = nghttp2_session_mem_recv(r->h2, buf, n)) < 0)
			errx(1, "%s: %s", r->conn->name, c->fail != NULL ?
			    c->fail : nghttp2_strerror(rv));
	}
}

void
rpc_send(struct rpc *r, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req)
{
	const ProtobufCMethodDescriptor	*md;
	struct call			*c = &r->call;
	nghttp2_data_provider		 prd;
	char				 path[256], timeout[16];
	size_t				 len;
	int32_t				 id;

	if (c->id != 0)
		errx(1, "rpc_send: a call is in progress");
	if ((md = protobuf_c_service_descriptor_get_method_by_name(svc,
	    method)) == NULL || req->descriptor != md->input)
		errx(1, "rpc_send: no method %s taking %s", method,
		    req->descriptor->name);
	if ((size_t)snprintf(path, sizeof(path), "/%s/%s", svc->name,
	    md->name) >= sizeof(path))
		errx(1, "rpc_send: %s: name too long", method);
	/* What is left of the deadline, for the server (gRPC's unit m). */
	snprintf(timeout, sizeof(timeout), "%dm", conn_timeleft(r->conn));

	if ((len = protobuf_c_message_get_packed_size(req)) > RPC_MAXMSG)
		errx(1, "%s: the request is too large", method);
	if ((c->req = malloc(FRAMEHD + len)) == NULL)
		err(1, NULL);
	c->req[0] = 0;
	c->req[1] = len >> 24;
	c->req[2] = len >> 16;
	c->req[3] = len >> 8;
	c->req[4] = len;
	if (protobuf_c_message_pack(req, c->req + FRAMEHD) != len)
		errx(1, "%s: cannot encode the request", method);
	c->reqlen = FRAMEHD + len;
	c->reply_type = md->output;

#define NV(n, v)	{ (uint8_t *)(n), (uint8_t *)(v), strlen(n), \
			    strlen(v), NGHTTP2_NV_FLAG_NONE }
	{
		nghttp2_nv	 nva[] = {
			NV(":method", "POST"),
			NV(":scheme", "https"),
			NV(":path", path),
			NV(":authority", r->conn->name),
			NV("content-type", "application/grpc"),
			NV("te", "trailers"),
			NV("grpc-timeout", timeout),
			NV("user-agent", "msh/" MSH_VERSION),
		};

		prd.source.ptr = NULL;
		prd.read_callback = on_read_request;
		if ((id = nghttp2_submit_request(r->h2, NULL, nva,
		    sizeof(nva) / sizeof(nva[0]), &prd, NULL)) < 0)
			errx(1, "%s: HTTP/2: %s", r->conn->name,
			    nghttp2_strerror(id));
	}
#undef NV
	c->id = id;
	rpc_run(r, 1);
	/* Sent (or refused early): the request's bytes go now. */
	explicit_bzero(c->req, c->reqlen);
	free(c->req);
	c->req = NULL;
	c->reqlen = c->reqsent = 0;
}

ProtobufCMessage *
rpc_wait(struct rpc *r, struct rpc_status *st)
{
	struct call		*c = &r->call;
	ProtobufCMessage	*reply = NULL;
	const uint8_t		*msg;
	const char		*why;
	size_t			 msglen;

	if (c->id == 0)
		errx(1, "rpc_wait: no call in progress");
	rpc_run(r, 0);

	if (!c->have_status) {
		if (c->error_code != NGHTTP2_NO_ERROR)
			errx(1, "%s: the proxy reset the call (%s)",
			    r->conn->name,
			    nghttp2_http2_strerror(c->error_code));
		if (c->http_status != 200)
			errx(1, "%s: HTTP status %d: not a gRPC service",
			    r->conn->name, c->http_status);
		errx(1, "%s: the reply has no gRPC status", r->conn->name);
	}
	if (c->http_status != 200)
		errx(1, "%s: HTTP status %d", r->conn->name, c->http_status);
	/* A missing content-type is forgiven, a wrong one is not. */
	if (c->ctype_bad)
		errx(1, "%s: the reply is not gRPC", r->conn->name);

	memset(st, 0, sizeof(*st));
	st->code = c->grpc_status;
	grpc_message_decode(c->grpc_message, c->grpc_messagelen, st->message,
	    sizeof(st->message));
	if (st->code == GRPC_OK) {
		if ((why = grpc_frame_parse(c->body, c->bodylen, &msg,
		    &msglen)) != NULL)
			errx(1, "%s: malformed reply: %s", r->conn->name, why);
		if ((reply = protobuf_c_message_unpack(c->reply_type, NULL,
		    msglen, msg)) == NULL)
			errx(1, "%s: malformed reply: not a %s", r->conn->name,
			    c->reply_type->name);
	}
	call_clear(c);
	return (reply);
}

ProtobufCMessage *
rpc_call(struct rpc *r, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req, struct rpc_status *st)
{
	rpc_send(r, svc, method, req);
	return (rpc_wait(r, st));
}
