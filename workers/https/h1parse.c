/*
 * What the HTTP/1.1 layer parses of a client's bytes, before h2o does or
 * instead of it: the end of a request head, what the head says of the
 * body (rewritten so that h2o sees none), and a chunked body.
 */

#include <sys/types.h>

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "h1parse.h"

static int
header_is(const char *p, size_t len, const char *name)
{
	return (len == strlen(name) && strncasecmp(p, name, len) == 0);
}

/*
 * The end of a request head in buf[0..len): the head's length through
 * the empty line that ends it, 0 if that has not arrived, -1 if the head
 * is longer than max.  *scan, 0 for a new head, keeps how far there was
 * no end, so that a head arriving in pieces is looked over once.
 */
ssize_t
h1_head_end(const char *buf, size_t len, size_t max, size_t *scan)
{
	size_t	 i, lim;

	lim = len < max ? len : max;
	for (i = *scan > 2 ? *scan - 2 : 0; i < lim; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < lim && buf[i + 1] == '\n')
			return (i + 2);
		if (i + 2 < lim && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return (i + 3);
	}
	*scan = lim;
	return (len > max ? -1 : 0);
}

/*
 * A complete head: note a body, and hide it from h2o by rewriting, in
 * place and to the same length, Content-Length to zeros and
 * Transfer-Encoding to a Content-Length of 0.  A head h2o will
 * refuse is left as it is.  One that could have h2o read a body we do
 * not see, with two lengths, two codings, or a length and a coding, is
 * refused: -1, and the head is left half rewritten.  (h2o takes the
 * last Transfer-Encoding, else the first Content-Length.)
 */
int
h1_head_rewrite(char *head, size_t len, struct h1_framing *f)
{
	char		*line, *end, *colon, *v, *te = NULL, *tv = NULL;
	char		*tend = NULL, *cl = NULL, *clend = NULL;
	uint64_t	 length = 0;
	size_t		 n;

	memset(f, 0, sizeof(*f));
	/* Past the request line, and an empty line before it (h2o's too). */
	n = 0;
	if (len >= 2 && head[0] == '\r' && head[1] == '\n')
		n = 2;
	else if (len >= 1 && head[0] == '\n')
		n = 1;
	for (line = memchr(head + n, '\n', len - n); line != NULL &&
	    (size_t)(line - head) + 1 < len; line = end) {
		line++;
		if ((end = memchr(line, '\n', head + len - line)) == NULL)
			break;
		if ((colon = memchr(line, ':', end - line)) == NULL)
			continue;
		for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		n = end - v;
		if (n > 0 && v[n - 1] == '\r')
			n--;
		if (header_is(line, colon - line, "expect") &&
		    header_is(v, n, "100-continue")) {
			/* Ours to send, if the body is wanted. */
			memcpy(line, "X-Expc", 6);
			f->expect = 1;
		} else if (header_is(line, colon - line, "transfer-encoding")) {
			if (te != NULL)
				return (-1);
			te = line;
			tv = v;
			tend = v + n;
		} else if (header_is(line, colon - line, "content-length")) {
			if (cl != NULL)
				return (-1);
			cl = v;
			clend = v + n;
		}
	}
	if (te != NULL) {
		if (cl != NULL)
			return (-1);
		if (!header_is(tv, tend - tv, "chunked"))
			return (0);	/* h2o says 400 */
		f->chunked = 1;
		/*
		 * The 0 after spaces, which h2o skips: as many zeros could
		 * be more digits than it reads.
		 */
		memcpy(te, "Content-Length:", 15);
		memset(te + 15, ' ', tend - te - 16);
		tend[-1] = '0';
		return (0);
	}
	if (cl == NULL)
		return (0);
	/*
	 * Read as h2o_strtosize() reads it, 1 to 19 digits and nothing
	 * else, so that we take every length h2o would and no other.
	 */
	if (clend == cl || clend - cl > 19)
		return (0);	/* h2o says 400 */
	for (v = cl; v < clend; v++) {
		if (*v < '0' || *v > '9')
			return (0);	/* h2o says 400 */
		length = length * 10 + (*v - '0');
	}
	f->length = length;
	memset(cl, '0', clend - cl);
	return (0);
}

/*
 * Chunked transfer coding, from p[0..len): up to the end of the body, or
 * through the first piece of chunk data, which the caller passes on.
 * Returns the bytes used, the data among them at p[*off] for *datalen
 * bytes (0: none); H1_CHUNK_BAD if malformed, H1_CHUNK_TOO_LARGE if a
 * chunk's size is past max.
 */
ssize_t
h1_chunked(struct h1_chunked *c, uint64_t max, const char *p, size_t len,
    size_t *off, size_t *datalen)
{
	size_t	 i = 0, n;
	int	 ch, d;

	*off = *datalen = 0;
	while (i < len && c->state != CHUNK_DONE) {
		ch = (unsigned char)p[i];
		switch (c->state) {
		case CHUNK_SIZE:
			if (ch >= '0' && ch <= '9')
				d = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				d = ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				d = ch - 'A' + 10;
			else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->state = CHUNK_EXT;
				i++;
				continue;
			} else if (ch == '\r') {
				i++;
				continue;
			} else if (ch == '\n') {
				if (!c->digit)
					return (H1_CHUNK_BAD);
				c->state = c->left > 0 ? CHUNK_DATA :
				    CHUNK_TRAILER_START;
				i++;
				continue;
			} else
				return (H1_CHUNK_BAD);
			/* Past max is too large, and so it cannot wrap. */
			if ((uint64_t)d > max || c->left > (max - d) / 16)
				return (H1_CHUNK_TOO_LARGE);
			c->left = c->left * 16 + d;
			c->digit = 1;
			i++;
			break;
		case CHUNK_EXT:
			if (ch == '\n') {
				if (!c->digit)
					return (H1_CHUNK_BAD);
				c->state = c->left > 0 ? CHUNK_DATA :
				    CHUNK_TRAILER_START;
			}
			i++;
			break;
		case CHUNK_DATA:
			n = len - i < c->left ? len - i : c->left;
			c->left -= n;
			if (c->left == 0)
				c->state = CHUNK_DATA_END;
			*off = i;
			*datalen = n;
			return (i + n);
		case CHUNK_DATA_END:
			if (ch == '\n') {
				c->state = CHUNK_SIZE;
				c->digit = 0;
			} else if (ch != '\r')
				return (H1_CHUNK_BAD);
			i++;
			break;
		case CHUNK_TRAILER_START:
			c->state = ch == '\n' ? CHUNK_DONE : ch == '\r' ?
			    CHUNK_TRAILER_START : CHUNK_TRAILER;
			i++;
			break;
		case CHUNK_TRAILER:
			if (ch == '\n')
				c->state = CHUNK_TRAILER_START;
			i++;
			break;
		case CHUNK_DONE:
			break;
		}
	}
	return (i);
}
