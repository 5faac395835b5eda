/*
 * The HTTP/2 layer's work on bytes that needs no connection: the size
 * of the header blocks a client sends, and the HPACK integers we send
 * it.  Fuzzed alone (tests/fuzz/fuzz_h2block.c, fuzz_hpackint.c).
 */

#ifndef MEZITE_H2PARSE_H
#define MEZITE_H2PARSE_H

#include <sys/types.h>

#include <stdint.h>

#define H2_FRAME_HEADER		9	/* RFC 9113, 4.1 */
#define H2_FRAME_HEADERS	0x1
#define H2_FRAME_CONTINUATION	0x9
#define H2_FLAG_END_HEADERS	0x4
#define HPACK_INT_MAX		6	/* a 32-bit integer, prefix and all */

/* The header block being received; all zero at first. */
struct h2_block {
	size_t		 len;		/* so far */
	uint32_t	 id;		/* its stream */
};

int	 h2_block_scan(struct h2_block *, const uint8_t *, size_t, size_t,
	    size_t *);
size_t	 hpack_int(uint8_t *, uint8_t, int, uint32_t);

#endif /* MEZITE_H2PARSE_H */
