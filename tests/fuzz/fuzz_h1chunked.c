/*
 * libFuzzer target for the decoder of a chunked request body,
 * h1_chunked() in workers/https/h1parse.c.
 *
 * The input:
 *
 *	byte 0		the largest chunk allowed, one of maxes[]
 *	the rest	the body as a client sends it
 *
 * The body is decoded whole, a byte at a time, and cut in two at every
 * point (at some points only, for a long body), the way it may come off
 * the socket.  Checked: each call uses what it was given and no more,
 * and moves on; the data it reports lies within what it used; the data
 * of the whole body is never more than the body; no chunk is taken
 * larger than allowed; and every way of cutting the body gives the same
 * data, the same end (done, malformed, too large, or waiting for more)
 * and the same state.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1parse.h"

#include "fuzz.h"

#define FUZZ_CUTS_ALL	512	/* cut at every point up to this length */
#define FUZZ_CUTS	32	/* else at this many */

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One way of decoding the body. */
struct run {
	struct h1_chunked	 c;
	uint64_t		 max;
	char			*data;		/* what it decoded */
	size_t			 datalen;
	size_t			 used;		/* of the body, in all */
	ssize_t			 error;		/* 0, or how it failed */
};

static const uint64_t maxes[] = {
	0, 1, 15, 16, 17, 4096, 64 << 20, 64ULL << 30, UINT64_MAX - 31,
	UINT64_MAX
};

static void	 run_init(struct run *, uint64_t, size_t);
static void	 run_feed(struct run *, const char *, size_t, size_t);
static void	 run_same(const struct run *, const struct run *);

static void
run_init(struct run *r, uint64_t max, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
	/* One byte more, so that a body of none is still an allocation. */
	if ((r->data = malloc(len + 1)) == NULL)
		abort();
}

/* The next piece of a body of len bytes in all, as a read brings it. */
static void
run_feed(struct run *r, const char *p, size_t n, size_t len)
{
	size_t	 at = 0, off, datalen;
	ssize_t	 used;

	while (r->error == 0 && at < n && r->c.state != CHUNK_DONE) {
		used = h1_chunked(&r->c, r->max, p + at, n - at, &off,
		    &datalen);
		if (used < 0) {
			FUZZ_ASSERT(used == H1_CHUNK_BAD ||
			    used == H1_CHUNK_TOO_LARGE);
			r->error = used;
			break;
		}
		FUZZ_ASSERT(used > 0 && (size_t)used <= n - at);
		if (datalen > 0) {
			FUZZ_ASSERT(off < (size_t)used &&
			    datalen <= (size_t)used - off);
			FUZZ_ASSERT(r->datalen + datalen <= len);
			memcpy(r->data + r->datalen, p + at + off, datalen);
			r->datalen += datalen;
		}
		at += used;
		r->used += used;
		FUZZ_ASSERT(r->c.state >= CHUNK_SIZE &&
		    r->c.state <= CHUNK_DONE);
		FUZZ_ASSERT(r->c.state != CHUNK_DATA || r->c.left > 0);
		FUZZ_ASSERT(r->c.left <= r->max);
	}
	FUZZ_ASSERT(r->used <= len && r->datalen <= r->used);
}

static void
run_same(const struct run *a, const struct run *b)
{
	FUZZ_ASSERT(a->error == b->error);
	FUZZ_ASSERT(a->datalen == b->datalen);
	FUZZ_ASSERT(memcmp(a->data, b->data, a->datalen) == 0);
	FUZZ_ASSERT(a->c.state == b->c.state);
	FUZZ_ASSERT(a->c.left == b->c.left);
	FUZZ_ASSERT(a->c.digit == b->c.digit);
	/* Where a failure was found depends on the cuts, not the rest. */
	if (a->error == 0)
		FUZZ_ASSERT(a->used == b->used);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run	 whole, cut;
	const char	*body;
	uint64_t	 max;
	size_t		 len, i, k, ncuts;

	if (size < 1)
		return (0);
	max = maxes[data[0] % (sizeof(maxes) / sizeof(maxes[0]))];
	body = (const char *)data + 1;
	len = size - 1;

	run_init(&whole, max, len);
	run_feed(&whole, body, len, len);
	if (whole.error == 0 && whole.c.state != CHUNK_DONE)
		FUZZ_ASSERT(whole.used == len);

	/* A byte at a time. */
	run_init(&cut, max, len);
	for (i = 0; i < len; i++)
		run_feed(&cut, body + i, 1, len);
	run_same(&whole, &cut);
	free(cut.data);

	/* In two. */
	ncuts = len <= FUZZ_CUTS_ALL ? len + 1 : FUZZ_CUTS;
	for (i = 0; i < ncuts; i++) {
		k = len <= FUZZ_CUTS_ALL ? i : len / (FUZZ_CUTS - 1) * i;
		if (k > len)
			k = len;
		run_init(&cut, max, len);
		run_feed(&cut, body, k, len);
		run_feed(&cut, body + k, len - k, len);
		run_same(&whole, &cut);
		free(cut.data);
	}
	free(whole.data);
	return (0);
}
