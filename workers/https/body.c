/*
 * Request bodies, on either protocol: what each resource may take, the
 * digest's hash, the bodies held in memory for h2o (all of them within
 * "body memory"), and the answer to a body refused.
 */

#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>
#include <string.h>

#include <h2o.h>
#include <openssl/evp.h>

#include "log.h"
#include "https.h"

static size_t			 body_held;	/* bytes, all bodies */

/* The normalized path of a request h2o has not routed yet. */
static h2o_iovec_t
raw_path(h2o_req_t *req)
{
	const char	*q;
	size_t		 len, query_at, *norm;

	len = req->input.path.len;
	if ((q = memchr(req->input.path.base, '?', len)) != NULL)
		len = q - req->input.path.base;
	norm = NULL;
	return (h2o_url_normalize_path(&req->pool, req->input.path.base, len,
	    &query_at, &norm));
}

static enum body_kind
body_kind(h2o_req_t *req, h2o_iovec_t path)
{
	if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/v1/digest")))
		return (h2o_memis(req->input.method.base,
		    req->input.method.len, H2O_STRLIT("POST")) ?
		    BODY_DIGEST : BODY_NONE);
	if (h2o_memis(path.base, path.len, H2O_STRLIT("/")) ||
	    h2o_memis(path.base, path.len, H2O_STRLIT("/healthz")) ||
	    (path.len >= 5 && memcmp(path.base, "/api/", 5) == 0))
		return (BODY_NONE);
	return (BODY_SMALL);
}

/* The most a body may be. */
uint64_t
body_cap(const struct body *b)
{
	switch (b->kind) {
	case BODY_DIGEST:
		return (body_limit);
	case BODY_SMALL:
		return (SMALL_BODY_MAX < body_limit ? SMALL_BODY_MAX :
		    body_limit);
	default:
		return (0);
	}
}

/* Count len bytes of b as held for h2o; -1 if body memory is full. */
int
body_hold(struct body *b, size_t len)
{
	if (body_held - b->held + len > body_memory) {
		log_debug("body memory full: %zu bytes held", body_held);
		return (-1);
	}
	body_held = body_held - b->held + len;
	b->held = len;
	return (0);
}

void
body_release(struct body *b)
{
	body_held -= b->held;
	b->held = 0;
}

static void
body_dispose(void *arg)
{
	struct body	*b = arg;

	body_release(b);
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
	LIST_REMOVE(b, entry);
	if (b->s->h1_reading == b)
		b->s->h1_reading = NULL;
}

struct body *
body_find(struct session *s, h2o_req_t *req)
{
	struct body	*b;

	LIST_FOREACH(b, &s->bodies, entry)
		if (b->req == req)
			return (b);
	return (NULL);
}

/* The body of req, new if need be; NULL if out of memory. */
struct body *
body_get(struct session *s, h2o_req_t *req)
{
	struct body	*b;

	if ((b = body_find(s, req)) != NULL)
		return (b);
	b = h2o_mem_alloc_shared(&req->pool, sizeof(*b), body_dispose);
	memset(b, 0, sizeof(*b));
	b->s = s;
	b->req = req;
	b->kind = body_kind(req, raw_path(req));
	if (b->kind == BODY_DIGEST) {
		if ((b->md = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
			log_warnx("%s: digest", __func__);
			b->status = 500;
		}
	}
	LIST_INSERT_HEAD(&s->bodies, b, entry);
	return (b);
}

/*
 * Body bytes: hashed for a digest, counted for the others.  Past the
 * limit the body is refused, and what comes after thrown away; -1 once
 * that is more than DISCARD_MAX.
 */
int
body_data(struct body *b, const void *p, size_t len)
{
	if (b->status == 0 && b->seen + len > body_cap(b))
		b->status = 413;
	if (b->status != 0) {
		b->discarded += len;
		if (b->discarded > DISCARD_MAX)
			b->abort = 1;
		return (b->abort ? -1 : 0);
	}
	b->seen += len;
	if (b->md != NULL && EVP_DigestUpdate(b->md, p, len) != 1)
		b->status = 500;
	return (0);
}

void
body_error(h2o_req_t *req, int status)
{
	int	 close;

	/* HTTP/1.1 goes on only where the body was read to its end. */
	close = req->http1_is_persistent ? 0 :
	    H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION;

	switch (status) {
	case 400:
		h2o_send_error_generic(req, 400, "Bad Request",
		    "malformed request body\n", close);
		break;
	case 408:
		h2o_send_error_generic(req, 408, "Request Timeout",
		    "request body timed out\n", close);
		break;
	case 413:
		h2o_send_error_generic(req, 413, "Payload Too Large",
		    "request body too large\n", close);
		break;
	default:
		h2o_send_error_generic(req, 500, "Internal Server Error",
		    "digest failed\n", close);
		break;
	}
}
