/*
 * libFuzzer target for what the HTTP/1.1 layer makes of a request head
 * before h2o parses it: h1_head_end() and h1_head_rewrite() in
 * workers/https/h1parse.c.
 *
 * The input:
 *
 *	byte 0		the longest head allowed: 4 times its value, or
 *			64 KiB (HEAD_MAX) for 0
 *	byte 1		(its value % 32) + 1 is the size of each read
 *	the rest	the bytes as a client sends them
 *
 * The end of the head is looked for in what has arrived after each
 * byte, and after each read: it must be found as soon as it is there, at
 * the place a plain search finds it, and never past the longest allowed.
 *
 * The head is then rewritten in a buffer of exactly its length, so that
 * a write outside it is the sanitizer's to find.  The rewrite must keep
 * every line where it was, and a head rewritten once must say nothing
 * more of a body.  Last, the head before and after is given to the
 * parser h2o itself uses (libh2o's picohttpparser), and judged as h2o
 * 2.2.5 judges a body (lib/http1.c: the last Transfer-Encoding, else the
 * first Content-Length, read by h2o_strtosize()): after the rewrite h2o
 * must see no body; a head h2o refused must stay refused, one it took
 * stay taken; and what the rewrite reports of the body must be what h2o
 * would have read.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1parse.h"

#include "fuzz.h"

#define FUZZ_HEAD_MAX	(64 * 1024)
#define FUZZ_HEADERS	100	/* H2O_MAX_HEADERS */
#define FUZZ_AFTER	16	/* bytes after the head */

/*
 * libh2o exports its HTTP/1 parser and h2o_strtosize() but installs no
 * header for the parser: its interface, as picohttpparser.h has it.
 */
struct phr_header {
	const char	*name;		/* NULL: a continuation line */
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};
int	 phr_parse_request(const char *, size_t, const char **, size_t *,
	    const char **, size_t *, int *, struct phr_header *, size_t *,
	    size_t);
size_t	 h2o_strtosize(const char *, size_t);

/* What h2o 2.2.5 makes of a head. */
struct h2o_view {
	int		 parsed;	/* else it answers 400 */
	size_t		 len;		/* of the head */
	size_t		 nheaders;
	int		 refused;	/* the body's framing: 400 */
	int		 chunked;
	uint64_t	 length;
	int		 ncl, nte;	/* Content-Length, Transfer-Encoding */
};

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static ssize_t	 head_end_plain(const char *, size_t, size_t);
static void	 head_end_check(const char *, size_t, size_t, size_t);
static void	 h2o_view(const char *, size_t, struct h2o_view *);
static void	 rewrite_check(const char *, size_t, size_t);

/* The end of the head, found the plain way. */
static ssize_t
head_end_plain(const char *buf, size_t len, size_t max)
{
	size_t	 e, lim = len < max ? len : max;

	for (e = 2; e <= lim; e++) {
		if (buf[e - 1] != '\n')
			continue;
		if (buf[e - 2] == '\n')
			return (e);
		if (e >= 3 && buf[e - 2] == '\r' && buf[e - 3] == '\n')
			return (e);
	}
	return (len > max ? -1 : 0);
}

/* The bytes arrive step at a time; the end is found when it is there. */
static void
head_end_check(const char *buf, size_t len, size_t max, size_t step)
{
	ssize_t	 whole, r = 0;
	size_t	 scan = 0, k;

	whole = head_end_plain(buf, len, max);
	for (k = 0; k < len && r == 0; ) {
		k = len - k < step ? len : k + step;
		r = h1_head_end(buf, k, max, &scan);
		FUZZ_ASSERT(r >= -1 && (r <= 0 || (size_t)r <= k));
		FUZZ_ASSERT(scan <= k && scan <= max);
		FUZZ_ASSERT(r != 0 || k <= max);
	}
	FUZZ_ASSERT(r == whole);
	/* Found in the read that brought it, not a read later. */
	if (r > 0)
		FUZZ_ASSERT(k - r < step);
	else if (r == -1)
		FUZZ_ASSERT(k - (max + 1) < step);
}

/*
 * The head is followed by bytes that cannot end one, as h2o's parser
 * may need a few past the request line to judge it.
 */
static void
h2o_view(const char *head, size_t len, struct h2o_view *v)
{
	struct phr_header	 hdr[FUZZ_HEADERS];
	const struct phr_header	*entity = NULL;
	const char		*method, *path;
	char			*buf;
	size_t			 method_len, path_len, i;
	int			 minor, r;

	memset(v, 0, sizeof(*v));
	if ((buf = malloc(len + FUZZ_AFTER)) == NULL)
		abort();
	memcpy(buf, head, len);
	memset(buf + len, 'x', FUZZ_AFTER);
	v->nheaders = FUZZ_HEADERS;
	r = phr_parse_request(buf, len + FUZZ_AFTER, &method, &method_len,
	    &path, &path_len, &minor, hdr, &v->nheaders, 0);
	/* Our end of the head is h2o's: it never reads on past it. */
	FUZZ_ASSERT(r == -1 || r == (int)len);
	if (r < 0)
		goto done;
	v->parsed = 1;
	v->len = r;
	for (i = 0; i < v->nheaders; i++) {
		if (hdr[i].name == NULL)
			continue;
		if (hdr[i].name_len == 17 &&
		    strncasecmp(hdr[i].name, "transfer-encoding", 17) == 0) {
			v->nte++;
			entity = &hdr[i];
		} else if (hdr[i].name_len == 14 &&
		    strncasecmp(hdr[i].name, "content-length", 14) == 0) {
			if (v->ncl++ == 0 && v->nte == 0)
				entity = &hdr[i];
		}
	}
	if (entity == NULL)
		goto done;
	if (entity->name_len == 17) {
		if (entity->value_len == 7 &&
		    strncasecmp(entity->value, "chunked", 7) == 0)
			v->chunked = 1;
		else
			v->refused = 1;
	} else if ((v->length = h2o_strtosize(entity->value,
	    entity->value_len)) == SIZE_MAX) {
		v->refused = 1;
		v->length = 0;
	}
 done:
	free(buf);
}

static void
rewrite_check(const char *buf, size_t len, size_t max)
{
	struct h1_framing	 f, again;
	struct h2o_view		 before, after;
	char			*head, *twice;
	size_t			 i, scan = 0;
	int			 r;

	if ((head = malloc(len)) == NULL || (twice = malloc(len)) == NULL)
		abort();
	memcpy(head, buf, len);
	r = h1_head_rewrite(head, len, &f);
	FUZZ_ASSERT(r == 0 || r == -1);
	h2o_view(buf, len, &before);
	if (r == -1) {
		/* Two body lengths, which h2o would have read one of. */
		FUZZ_ASSERT(!before.parsed || before.ncl + before.nte >= 2);
		goto done;
	}

	/* Same lines, same end. */
	for (i = 0; i < len; i++) {
		FUZZ_ASSERT((buf[i] == '\n') == (head[i] == '\n'));
		FUZZ_ASSERT((buf[i] == '\r') == (head[i] == '\r'));
	}
	FUZZ_ASSERT(h1_head_end(head, len, max, &scan) == (ssize_t)len);

	/* Once is enough: the head says no more of a body. */
	memcpy(twice, head, len);
	FUZZ_ASSERT(h1_head_rewrite(twice, len, &again) == 0);
	FUZZ_ASSERT(memcmp(twice, head, len) == 0);
	FUZZ_ASSERT(again.length == 0 && !again.chunked && !again.expect);

	h2o_view(head, len, &after);
	FUZZ_ASSERT(before.parsed == after.parsed);
	if (!before.parsed)
		goto done;
	FUZZ_ASSERT(after.len == before.len &&
	    after.nheaders == before.nheaders);
	if (before.refused) {
		FUZZ_ASSERT(after.refused);
		goto done;
	}
	/* h2o reads no body, and we read the one it would have. */
	FUZZ_ASSERT(!after.refused && !after.chunked && after.length == 0);
	FUZZ_ASSERT(f.chunked == before.chunked);
	FUZZ_ASSERT(f.length == before.length);
 done:
	free(twice);
	free(head);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1_framing	 f;
	const char		*buf;
	char			*copy;
	size_t			 len, max, step, scan = 0;
	ssize_t			 end;

	if (size < 2)
		return (0);
	max = data[0] == 0 ? FUZZ_HEAD_MAX : data[0] * 4;
	step = data[1] % 32 + 1;
	buf = (const char *)data + 2;
	len = size - 2;

	head_end_check(buf, len, max, 1);
	head_end_check(buf, len, max, step);
	if ((end = h1_head_end(buf, len, max, &scan)) > 0)
		rewrite_check(buf, end, max);

	/* Whatever it is given, the rewrite stays within it. */
	if (len == 0)
		return (0);
	if ((copy = malloc(len)) == NULL)
		abort();
	memcpy(copy, buf, len);
	(void)h1_head_rewrite(copy, len, &f);
	free(copy);
	return (0);
}
