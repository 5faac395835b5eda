/*
 * HTTP/2, ahead of h2o.  After h2o has read from the socket, each stream
 * still receiving its body is looked at, through h2o's own structures
 * from <h2o/http2_internal.h>: a body for /api/v1/digest is hashed and
 * taken out of h2o's buffer; any other is left there, up to
 * SMALL_BODY_MAX and within the worker's "body memory".  A body past its
 * limit gets a 413 response and RST_STREAM (NO_ERROR) at once.
 *
 * Before h2o parses what was read, a header block past HEAD_MAX is cut
 * and answered 431.  Our SETTINGS lower h2o's stream limit to "max
 * streams"; the HPACK dynamic table size update that libh2o 2.2.5 never
 * sends is put in by an output filter.
 */

#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "h2parse.h"
#include "log.h"
#include "https.h"

#define H2_STREAMS_SEEN		256	/* streams looked at per read */
#define H2_PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static void	 h2_read(h2o_socket_t *, const char *);

/*
 * ALPN was settled by the master; h2 starts with the preface.  h2o's
 * read callback is wrapped in ours.
 */
void
h2_accept(struct session *s, h2o_accept_ctx_t *accept_ctx,
    struct timeval now)
{
	s->hpack_size = H2O_HTTP2_SETTINGS_HOST.header_table_size;
	h2o_http2_accept(accept_ctx, s->sock, now);
	s->h2 = s->sock->data;
	s->h2_expect0 = s->h2->_read_expect;
	s->h2o_read = s->sock->_cb.read;
	s->sock->_cb.read = h2_read;
}

static void
h2_frame(h2o_http2_conn_t *conn, uint8_t type, uint8_t flags, uint32_t id,
    const void *payload, size_t len)
{
	h2o_iovec_t	 buf;

	buf = h2o_buffer_reserve(&conn->_write.buf,
	    H2O_HTTP2_FRAME_HEADER_SIZE + len);
	h2o_http2_encode_frame_header((uint8_t *)buf.base, len, type, flags,
	    id);
	if (len > 0)
		memcpy(buf.base + H2O_HTTP2_FRAME_HEADER_SIZE, payload, len);
	conn->_write.buf->size += H2O_HTTP2_FRAME_HEADER_SIZE + len;
}

/*
 * The peer lowered SETTINGS_HEADER_TABLE_SIZE: the next header block we
 * send must start with a dynamic table size update (RFC 7541, 4.2),
 * which libh2o 2.2.5 never sends, and h2o must index no more than the
 * new size.  Possible only while h2o's table is empty, as it is before
 * the first response.  Returns the update's length in dst, 0 if none.
 */
static size_t
hpack_update(struct session *s, h2o_http2_conn_t *conn, uint8_t *dst)
{
	h2o_hpack_header_table_t	*t = &conn->_output_header_table;
	uint32_t			 want;

	want = conn->peer_settings.header_table_size;
	if (want >= s->hpack_size || t->num_entries != 0)
		return (0);
	s->hpack_size = want;
	t->hpack_capacity = want;
	return (hpack_int(dst, 0x20, 5, want));
}

/*
 * Answer a stream still receiving its body, then reset it: a response
 * with no body, made here as h2o has no request to answer yet, and
 * RST_STREAM with NO_ERROR so that the client stops sending (RFC 9113,
 * 8.1).
 */
static void
h2_refuse(struct session *s, h2o_http2_stream_t *stream, int status)
{
	h2o_http2_conn_t	*conn = s->h2;
	uint8_t			 block[16], rst[4] = { 0, 0, 0, 0 };
	size_t			 len;
	int			 n;

	len = hpack_update(s, conn, block);
	/* :status, literal without indexing, static name 8 */
	block[len++] = 0x08;
	block[len++] = 3;
	n = snprintf((char *)block + len, sizeof(block) - len, "%03d",
	    status);
	if (n != 3)
		fatalx("%s: status %d", __func__, status);
	len += 3;
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_HEADERS,
	    H2O_HTTP2_FRAME_FLAG_END_HEADERS | H2O_HTTP2_FRAME_FLAG_END_STREAM,
	    stream->stream_id, block, len);
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_RST_STREAM, 0, stream->stream_id,
	    rst, sizeof(rst));
	h2o_http2_conn_request_write(conn);
	h2o_http2_stream_reset(conn, stream);
}

/* Streams refused with REFUSED_STREAM, past "max streams". */
static void
h2_refuse_stream(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream)
{
	uint8_t	 rst[4] = { 0, 0, 0, 7 };	/* REFUSED_STREAM */

	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_RST_STREAM, 0, stream->stream_id,
	    rst, sizeof(rst));
	h2o_http2_conn_request_write(conn);
	h2o_http2_stream_reset(conn, stream);
}

/*
 * The streams of a connection that are receiving their body, from
 * h2o's priority tree, which holds every stream it knows.
 */
static size_t
h2_receiving(h2o_http2_conn_t *conn, h2o_http2_stream_t **out, size_t max)
{
	h2o_http2_scheduler_node_t	*node = &conn->scheduler;
	h2o_http2_scheduler_openref_t	*ref;
	h2o_http2_stream_t		*stream;
	h2o_linklist_t			*l = node->_all_refs.next;
	size_t				 n = 0;

	for (;;) {
		if (l == &node->_all_refs) {
			if (node == &conn->scheduler)
				break;
			ref = H2O_STRUCT_FROM_MEMBER(
			    h2o_http2_scheduler_openref_t, node, node);
			node = node->_parent;
			l = ref->_all_link.next;
			continue;
		}
		ref = H2O_STRUCT_FROM_MEMBER(h2o_http2_scheduler_openref_t,
		    _all_link, l);
		stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t,
		    _refs.scheduler, ref);
		if (stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY &&
		    stream->_req_body != NULL && n < max)
			out[n++] = stream;
		node = &ref->node;
		l = node->_all_refs.next;
	}
	return (n);
}

/* Take what h2o has gathered of a stream's body. */
static void
h2_body(struct session *s, h2o_http2_stream_t *stream)
{
	struct body	*b;
	size_t		 avail, cl;

	if ((b = body_get(s, &stream->req)) == NULL)
		return;
	avail = stream->_req_body->size;
	cl = stream->_expected_content_length;
	if (b->status == 0 && cl != SIZE_MAX && b->seen + cl > body_cap(b))
		b->status = 413;
	if (b->status == 0 && b->kind != BODY_DIGEST) {
		/* Kept by h2o for the handler, if there is room. */
		if (avail <= body_cap(b) && body_hold(b, avail) == 0)
			return;
		b->status = 413;
		body_release(b);
	}
	/*
	 * Hashed, or thrown away once refused: the refusal is answered
	 * when the body ends, as most clients cannot take an answer while
	 * they send.  One that goes on too long is answered and reset now.
	 */
	if (avail > 0) {
		(void)body_data(b, stream->_req_body->bytes, avail);
		/* What h2o checks against Content-Length goes with it. */
		h2o_buffer_consume(&stream->_req_body, avail);
		if (cl != SIZE_MAX)
			stream->_expected_content_length -= avail;
	}
	if (b->abort)
		h2_refuse(s, stream, b->status);
}

static void
h2_after_read(struct session *s)
{
	h2o_http2_conn_t	*conn = s->h2;
	h2o_http2_stream_t	*streams[H2_STREAMS_SEEN];
	uint8_t			 settings[6];
	size_t			 i, n, last;

	if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
		return;
	/*
	 * h2o's SETTINGS allow 100 streams, and it sends them once it has
	 * the preface; ours, after them, lower that to "max streams".
	 */
	if (!s->h2_settings && conn->_read_expect != s->h2_expect0) {
		s->h2_settings = 1;
		settings[0] = 0;
		settings[1] = 3;	/* SETTINGS_MAX_CONCURRENT_STREAMS */
		settings[2] = max_streams >> 24;
		settings[3] = max_streams >> 16;
		settings[4] = max_streams >> 8;
		settings[5] = max_streams;
		h2_frame(conn, H2O_HTTP2_FRAME_TYPE_SETTINGS, 0, 0, settings,
		    sizeof(settings));
		h2o_http2_conn_request_write(conn);
	}
	n = h2_receiving(conn, streams, H2_STREAMS_SEEN);
	/*
	 * A client may open more before it has our SETTINGS: refuse the
	 * newest, which it has sent the least of.
	 */
	while (n > 0 && conn->num_streams.pull.open > max_streams) {
		for (i = 1, last = 0; i < n; i++)
			if (streams[i]->stream_id > streams[last]->stream_id)
				last = i;
		h2_refuse_stream(conn, streams[last]);
		streams[last] = streams[--n];
	}
	for (i = 0; i < n; i++)
		h2_body(s, streams[i]);
}

/*
 * Before h2o parses the frames read: a header block (HEADERS and its
 * CONTINUATIONs) that grows past HEAD_MAX is cut where it does.  h2o
 * would take 408 KiB, then refuse the stream and fail the connection
 * on the next CONTINUATION.  The header compression state cannot be
 * kept without decoding the block, so the stream gets 431 and the
 * connection GOAWAY (RFC 9113, 10.5.1); h2o closes it once they are
 * sent.  Returns 1 if the block was cut.
 */
static int
h2_headers_check(struct session *s)
{
	h2o_buffer_t	*in = s->sock->input;
	size_t		 off = 0, cut;

	if (s->h2->_read_expect == s->h2_expect0) {
		/* The preface, if it is all here; h2o checks it. */
		if (in->size < sizeof(H2_PREFACE) - 1)
			return (0);
		off = sizeof(H2_PREFACE) - 1;
	}
	if (h2_block_scan(&s->h2_block, (const uint8_t *)in->bytes + off,
	    in->size - off, HEAD_MAX, &cut) == 0)
		return (0);
	in->size = off + cut;
	return (1);
}

static void
h2_too_large(struct session *s)
{
	h2o_http2_conn_t	*conn = s->h2;
	uint8_t			 block[16], goaway[8];
	uint32_t		 last = conn->pull_stream_ids.max_open;
	size_t			 len;

	s->h2_dead = 1;
	if (conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED)
		return;
	len = hpack_update(s, conn, block);
	block[len++] = 0x08;	/* :status, as in h2_refuse() */
	block[len++] = 3;
	memcpy(block + len, "431", 3);
	len += 3;
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_HEADERS,
	    H2O_HTTP2_FRAME_FLAG_END_HEADERS | H2O_HTTP2_FRAME_FLAG_END_STREAM,
	    s->h2_block.id, block, len);
	goaway[0] = last >> 24;
	goaway[1] = last >> 16;
	goaway[2] = last >> 8;
	goaway[3] = last;
	goaway[4] = goaway[5] = goaway[6] = 0;
	goaway[7] = 9;		/* COMPRESSION_ERROR */
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_GOAWAY, 0, 0, goaway,
	    sizeof(goaway));
	conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
	h2o_http2_conn_request_write(conn);
}

static void
h2_read(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	int		 cut = 0;

	if (err == NULL && s->h2_dead) {
		sock->input->size = 0;	/* h2o closes once it has written */
		return;
	}
	if (err == NULL)
		cut = h2_headers_check(s);
	reading = s;
	s->h2o_read(sock, err);
	if (reading == NULL)
		return;		/* closed */
	reading = NULL;
	if (err != NULL)
		return;
	if (cut)
		h2_too_large(s);
	else
		h2_after_read(s);
}

/* Draining: GOAWAY to each HTTP/2 connection with no stream open. */
void
h2_drain_idle(void)
{
	struct session		*s;
	h2o_http2_conn_t	*conn;
	uint8_t			 goaway[8];
	uint32_t		 last;

	LIST_FOREACH(s, &sessions, entry) {
		if ((conn = s->h2) == NULL ||
		    conn->state != H2O_HTTP2_CONN_STATE_OPEN ||
		    conn->num_streams.pull.open != 0 ||
		    conn->num_streams.push.open != 0)
			continue;
		last = conn->pull_stream_ids.max_open;
		goaway[0] = last >> 24;
		goaway[1] = last >> 16;
		goaway[2] = last >> 8;
		goaway[3] = last;
		memset(goaway + 4, 0, 4);	/* NO_ERROR */
		h2_frame(conn, H2O_HTTP2_FRAME_TYPE_GOAWAY, 0, 0, goaway,
		    sizeof(goaway));
		/* h2o closes it once that is written. */
		conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
		h2o_http2_conn_request_write(conn);
	}
}

/*
 * An output filter for HTTP/2 responses while a dynamic table size
 * update is due: h2o writes the response's HEADERS, then the update is
 * put at the start of their header block.
 */
struct hpack_ostream {
	h2o_ostream_t	 super;
	struct session	*s;
};

static void
hpack_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
    size_t bufcnt, h2o_send_state_t state)
{
	struct hpack_ostream	*os = (struct hpack_ostream *)self;
	h2o_http2_conn_t	*conn = (h2o_http2_conn_t *)req->conn;
	h2o_http2_stream_t	*stream;
	struct session		*s = os->s;
	uint8_t			 upd[8], *f;
	size_t			 at, len, n;

	stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
	at = conn->_write.buf->size;
	h2o_ostream_send_next(self, req, bufs, bufcnt, state);
	if (s->hpack_size == conn->peer_settings.header_table_size ||
	    conn->_write.buf->size < at + H2O_HTTP2_FRAME_HEADER_SIZE)
		return;
	f = (uint8_t *)conn->_write.buf->bytes + at;
	len = h2o_http2_decode24u(f);
	if (f[3] != H2O_HTTP2_FRAME_TYPE_HEADERS ||
	    (h2o_http2_decode32u(f + 5) & 0x7fffffff) != stream->stream_id)
		return;
	/* The capacity was lowered when the response began. */
	n = hpack_int(upd, 0x20, 5, conn->peer_settings.header_table_size);
	if (len + n > conn->peer_settings.max_frame_size)
		return;
	s->hpack_size = conn->peer_settings.header_table_size;
	(void)h2o_buffer_reserve(&conn->_write.buf, n);
	f = (uint8_t *)conn->_write.buf->bytes + at;
	memmove(f + H2O_HTTP2_FRAME_HEADER_SIZE + n,
	    f + H2O_HTTP2_FRAME_HEADER_SIZE,
	    conn->_write.buf->size - at - H2O_HTTP2_FRAME_HEADER_SIZE);
	memcpy(f + H2O_HTTP2_FRAME_HEADER_SIZE, upd, n);
	(void)h2o_http2_encode24u(f, len + n);
	conn->_write.buf->size += n;
}

void
hpack_filter(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	struct hpack_ostream	*os;
	struct session		*s;
	h2o_http2_conn_t	*conn;

	if (req->version >= 0x200 && (s = req_session(req)) != NULL &&
	    s->h2 != NULL && (conn = s->h2)->peer_settings.header_table_size <
	    s->hpack_size && conn->_output_header_table.num_entries == 0) {
		/* h2o must not index what the peer cannot hold. */
		conn->_output_header_table.hpack_capacity =
		    conn->peer_settings.header_table_size;
		os = (struct hpack_ostream *)h2o_add_ostream(req, sizeof(*os),
		    slot);
		os->super.do_send = hpack_do_send;
		os->s = s;
		slot = &os->super.next;
	}
	h2o_setup_next_ostream(req, slot);
}

/*
 * A request h2o has whole: one whose body was refused, or one whose body
 * came whole in one read and is too large, is answered here; 0 if it
 * was.
 */
int
h2_request(struct session *s, h2o_req_t *req)
{
	struct body	*b;

	if ((b = body_find(s, req)) == NULL && req->entity.len == 0)
		return (-1);
	/* Refused, or a body that came whole in one read. */
	if ((b != NULL || (b = body_get(s, req)) != NULL) &&
	    b->kind != BODY_DIGEST && (b->status != 0 ||
	    req->entity.len > body_cap(b))) {
		body_error(req, b->status != 0 ? b->status : 413);
		return (0);
	}
	return (-1);
}
