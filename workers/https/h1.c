/*
 * HTTP/1.1, ahead of h2o.  Before h2o parses a request head, the head is
 * found and its Content-Length or Transfer-Encoding rewritten in place
 * to a Content-Length of 0, so that h2o hands the request over with
 * no body.  The handler then reads the body from the socket itself: a
 * digest's is hashed as it comes; one past what its resource takes is
 * read to its end and refused (413), and the connection goes on.
 *
 * A head longer than HEAD_MAX gets 431; one with two body lengths or
 * codings, 400.
 */

#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>
#include <string.h>

#include <h2o.h>
#include <h2o/http1.h>

#include "h1parse.h"
#include "https.h"

static void	 h1_read(h2o_socket_t *, const char *);
static void	 h1_body_read(h2o_socket_t *, const char *);
static void	 h1_body_timeout(h2o_timeout_entry_t *);
static void	 h1_next(struct session *);

/* h2o's read callback, wrapped in ours. */
void
h1_accept(struct session *s, h2o_accept_ctx_t *accept_ctx,
    struct timeval now)
{
	s->h1_timer.cb = h1_body_timeout;
	h2o_http1_accept(accept_ctx, s->sock, now);
	s->h2o_read = s->sock->_cb.read;
	s->sock->_cb.read = h1_read;
}

/*
 * Make the request h2o will answer one with no body, and "Connection:
 * close": for a head too long.  It takes the place of what h2o has seen
 * of the head, no shorter, since h2o goes on parsing where it left off.
 */
static void
h1_replace(struct session *s, int status)
{
	static const char	 pre[] = "GET / HTTP/1.1\r\nConnection: close"
	    "\r\nX-Padding: ";
	h2o_buffer_t		*in = s->sock->input;
	size_t			 len;

	len = sizeof(pre) - 1 + 4;
	if (len < s->h1_fed)
		len = s->h1_fed;
	if (in->size < len)
		(void)h2o_buffer_reserve(&s->sock->input, len - in->size);
	in = s->sock->input;
	memcpy(in->bytes, pre, sizeof(pre) - 1);
	memset(in->bytes + sizeof(pre) - 1, 'x', len - (sizeof(pre) - 1) - 4);
	memcpy(in->bytes + len - 4, "\r\n\r\n", 4);
	in->size = len;
	s->h1_head = len;
	s->h1_reject = status;
}

static void
h1_read(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	h2o_buffer_t	*in = sock->input;
	ssize_t		 end;

	if (err == NULL && s->h1_head == 0 && s->h1_reading == NULL) {
		if ((end = h1_head_end(in->bytes, in->size, HEAD_MAX,
		    &s->h1_scan)) == -1)
			h1_replace(s, 431);
		else if (end > 0) {
			s->h1_head = end;
			if (h1_head_rewrite(in->bytes, end,
			    &s->h1_framing) == -1) {
				h1_next(s);
				h1_replace(s, 400);
			}
		}
	}
	reading = s;
	s->h2o_read(sock, err);
	if (reading == NULL)
		return;		/* closed */
	reading = NULL;
	if (s->h1_reading == NULL)
		s->h1_fed = sock->input->size;
}

/*
 * After each turn of the loop: h2o sets its own read callback again
 * when a response is done; put ours back before the next read.
 */
void
h1_rewrap(void)
{
	struct session	*s;

	LIST_FOREACH(s, &sessions, entry) {
		if (s->h2 != NULL || s->sock->_cb.read == NULL ||
		    s->sock->_cb.read == h1_read ||
		    s->sock->_cb.read == h1_body_read)
			continue;
		s->h2o_read = s->sock->_cb.read;
		s->sock->_cb.read = h1_read;
	}
}

/* The request h2o is done with: the next head is yet to be found. */
static void
h1_next(struct session *s)
{
	s->h1_scan = s->h1_fed = s->h1_head = 0;
	memset(&s->h1_framing, 0, sizeof(s->h1_framing));
}

/*
 * Take the body bytes that have arrived, which follow the head in h2o's
 * input: h2o will drop the head when the response is done.  Bytes past
 * the body (a pipelined request) are dropped, and the connection closed
 * after the response.
 */
static void
h1_take(struct session *s, struct body *b)
{
	h2o_buffer_t	*in = s->sock->input;
	char		*p;
	size_t		 avail, n, off, datalen;
	ssize_t		 used;

	if (in->size <= s->h1_head)
		return;
	p = in->bytes + s->h1_head;
	avail = in->size - s->h1_head;
	if (b->chunked) {
		for (n = 0; n < avail && !b->done; n += used) {
			used = h1_chunked(&b->chunk, body_limit, p + n,
			    avail - n, &off, &datalen);
			if (used == H1_CHUNK_TOO_LARGE)
				b->status = 413;
			if (used < 0 || (datalen > 0 &&
			    body_data(b, p + n + off, datalen) == -1)) {
				if (b->status == 0)
					b->status = 400;
				b->abort = 1;
				break;
			}
			if (b->chunk.state == CHUNK_DONE)
				b->done = 1;
		}
	} else {
		n = avail < b->left ? avail : b->left;
		(void)body_data(b, p, n);
		b->left -= n;
		if (b->left == 0)
			b->done = 1;
	}
	if (b->abort || (b->done && n < avail))
		b->req->http1_is_persistent = 0;
	in->size = s->h1_head;
}

static void
h1_body_end(struct session *s, struct body *b)
{
	h2o_timeout_unlink(&s->h1_timer);
	h2o_socket_read_stop(s->sock);
	if (!b->done) {
		b->req->http1_is_persistent = 0;
		if (b->status == 0)
			b->status = 400;
	}
	if (s->h1_writing) {
		s->h1_ended = 1;	/* answered once 100 Continue is out */
		return;
	}
	s->h1_ended = 0;
	s->h1_reading = NULL;
	h1_next(s);
	digest_respond(b->req, b);
}

static void
h1_continue_sent(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	struct body	*b = s->h1_reading;

	s->h1_writing = 0;
	if (b != NULL && (err != NULL || s->h1_ended))
		h1_body_end(s, b);
}

static void
h1_body_read(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	struct body	*b = s->h1_reading;

	if (b == NULL)
		return;
	if (err == NULL)
		h1_take(s, b);
	if (err != NULL || b->done || b->abort) {
		h1_body_end(s, b);
		return;
	}
	h2o_timeout_unlink(&s->h1_timer);
	h2o_timeout_link(loop, &body_timeout, &s->h1_timer);
}

static void
h1_body_timeout(h2o_timeout_entry_t *entry)
{
	struct session	*s = H2O_STRUCT_FROM_MEMBER(struct session, h1_timer,
	    entry);

	if (s->h1_reading != NULL) {
		s->h1_reading->status = 408;
		h1_body_end(s, s->h1_reading);
	}
}


/* The request h1_replace() made: answer it, and close. */
static void
h1_rejected(struct session *s, h2o_req_t *req)
{
	int	 status = s->h1_reject;

	s->h1_reject = 0;
	h1_next(s);
	if (status == 431)
		h2o_send_error_generic(req, status,
		    "Request Header Fields Too Large",
		    "request header fields too large\n",
		    H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
	else
		h2o_send_error_generic(req, status, "Bad Request",
		    "ambiguous request body\n",
		    H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
}

/*
 * An HTTP/1.1 request whose body h2o was not shown: refuse it, read its
 * body, or let it be served; 0 if it is taken care of.  The body is read
 * for a digest, and thrown away, up to DISCARD_MAX, when refused (413),
 * so that the connection goes on; a small body for another resource
 * that has not all come yet, or is chunked, is left unread and the
 * connection closes after the response.
 */
int
h1_request(struct session *s, h2o_req_t *req)
{
	struct body	*b;
	size_t		 head = s->h1_head;
	int		 chunked = s->h1_framing.chunked;
	uint64_t	 length = s->h1_framing.length;

	static const h2o_iovec_t continue100 =
	    { H2O_STRLIT("HTTP/1.1 100 Continue\r\n\r\n") };
	int		 expect = s->h1_framing.expect;
	h2o_buffer_t	*in = s->sock->input;

	if (s->h1_reject != 0) {
		h1_rejected(s, req);
		return (0);
	}
	h1_next(s);
	if (head == 0 || (!chunked && length == 0))
		return (-1);
	if ((b = body_get(s, req)) == NULL)
		return (-1);
	if (b->kind == BODY_SMALL) {
		/* Dropped if it is all here; else the connection closes. */
		if (!chunked && length <= body_cap(b) &&
		    in->size - head >= length) {
			memmove(in->bytes + head, in->bytes + head + length,
			    in->size - head - length);
			in->size -= length;
			return (-1);
		}
		if (chunked || length <= body_cap(b)) {
			req->http1_is_persistent = 0;
			return (-1);
		}
		/* Too large: read to its end and refused, as below. */
	}
	if (b->kind != BODY_DIGEST || (!chunked && length > body_cap(b)))
		b->status = 413;
	/*
	 * A client that waits for 100 Continue is answered at once when
	 * refused; another has its body thrown away first, so that it
	 * reads the answer rather than a reset, up to DISCARD_MAX.
	 */
	if (b->status != 0 && (expect || (!chunked && length > DISCARD_MAX))) {
		req->http1_is_persistent = 0;
		body_error(req, b->status);
		return (0);
	}
	b->chunked = chunked;
	b->left = length;
	s->h1_head = head;
	s->h1_reading = b;
	if (expect) {
		s->h1_writing = 1;
		h2o_socket_write(s->sock, (h2o_iovec_t *)&continue100, 1,
		    h1_continue_sent);
	}
	h1_take(s, b);
	if (b->done || b->abort) {
		h1_body_end(s, b);
		return (0);
	}
	h2o_socket_read_start(s->sock, h1_body_read);
	h2o_timeout_link(loop, &body_timeout, &s->h1_timer);
	return (0);
}

