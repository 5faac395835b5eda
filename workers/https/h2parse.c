/*
 * What the HTTP/2 layer reads of a client's frames before h2o does, and
 * the one piece of HPACK it writes itself.
 */

#include <sys/types.h>

#include <stdint.h>

#include "h2parse.h"

/*
 * The complete frames at the start of p[0..len), as h2o is about to
 * parse them: the header blocks (HEADERS and its CONTINUATIONs) are
 * measured, across calls in *b.  Returns 1 if one grows past max, with
 * *cut the offset of the frame that takes it there, else 0.  The frames
 * must be those h2o has yet to take: a frame seen twice is counted
 * twice.
 */
int
h2_block_scan(struct h2_block *b, const uint8_t *p, size_t len, size_t max,
    size_t *cut)
{
	const uint8_t	*f;
	size_t		 off = 0, flen;

	while (len - off >= H2_FRAME_HEADER) {
		f = p + off;
		flen = (size_t)f[0] << 16 | f[1] << 8 | f[2];
		if (len - off - H2_FRAME_HEADER < flen)
			break;
		if (f[3] == H2_FRAME_HEADERS ||
		    f[3] == H2_FRAME_CONTINUATION) {
			if (f[3] == H2_FRAME_HEADERS) {
				b->len = 0;
				b->id = ((uint32_t)f[5] << 24 | f[6] << 16 |
				    f[7] << 8 | f[8]) & 0x7fffffff;
			}
			b->len += flen;
			if (b->len > max) {
				*cut = off;
				return (1);
			}
			if (f[4] & H2_FLAG_END_HEADERS)
				b->len = 0;
		}
		off += H2_FRAME_HEADER + flen;
	}
	return (0);
}

/*
 * An HPACK integer with an n-bit prefix, the flags in first (RFC 7541,
 * 5.1), into dst, which has room for HPACK_INT_MAX bytes.  Its length.
 */
size_t
hpack_int(uint8_t *dst, uint8_t first, int n, uint32_t v)
{
	uint32_t	 max = (1U << n) - 1;
	size_t		 len = 0;

	if (v < max) {
		dst[len++] = first | v;
		return (len);
	}
	dst[len++] = first | max;
	for (v -= max; v >= 128; v >>= 7)
		dst[len++] = 0x80 | (v & 0x7f);
	dst[len++] = v;
	return (len);
}
