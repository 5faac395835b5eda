/*
 * The HTTP/1.1 layer's parsers of what a client sends: functions of
 * bytes and a small state, with no session and no h2o, so that each can
 * be fuzzed alone (tests/fuzz/fuzz_h1head.c, fuzz_h1chunked.c).
 */

#ifndef MEZITE_H1PARSE_H
#define MEZITE_H1PARSE_H

#include <sys/types.h>

#include <stdint.h>

/* What a request head says of its body. */
struct h1_framing {
	uint64_t	 length;	/* Content-Length */
	int		 chunked;	/* Transfer-Encoding: chunked */
	int		 expect;	/* 100-continue, hidden from h2o */
};

enum chunk_state {
	CHUNK_SIZE,
	CHUNK_EXT,
	CHUNK_DATA,
	CHUNK_DATA_END,
	CHUNK_TRAILER_START,
	CHUNK_TRAILER,
	CHUNK_DONE,
};

/* Where the decoder of a chunked body is; all zero at its start. */
struct h1_chunked {
	enum chunk_state	 state;
	uint64_t		 left;		/* of the chunk */
	int			 digit;		/* of its size, one seen */
};

#define H1_CHUNK_BAD		(-1)	/* malformed */
#define H1_CHUNK_TOO_LARGE	(-2)	/* a chunk larger than allowed */

ssize_t	 h1_head_end(const char *, size_t, size_t, size_t *);
int	 h1_head_rewrite(char *, size_t, struct h1_framing *);
ssize_t	 h1_chunked(struct h1_chunked *, uint64_t, const char *, size_t,
	    size_t *, size_t *);

#endif /* MEZITE_H1PARSE_H */
