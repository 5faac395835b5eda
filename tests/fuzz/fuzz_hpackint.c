/*
 * libFuzzer target for the HPACK integers the HTTP/2 layer writes,
 * hpack_int() in workers/https/h2parse.c.  The value comes from the
 * client (the header table size of its SETTINGS), and the client must
 * read back what it sent.
 *
 * The input:
 *
 *	bytes 0-3	the value, big-endian
 *	byte 4		(its value % 8) + 1 is the prefix's width in bits
 *	byte 5		the flags, in the bits above the prefix
 *
 * The integer is written into a buffer of just HPACK_INT_MAX bytes,
 * then read back the way RFC 7541, 5.1 says a decoder reads it: the
 * same value, every byte used, the flags kept, and no byte more than
 * the value needs.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2parse.h"

#include "fuzz.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		*dst, first;
	uint64_t	 v, got;
	unsigned int	 max, shift;
	size_t		 len, i;
	int		 n;

	if (size < 6)
		return (0);
	v = (uint32_t)data[0] << 24 | data[1] << 16 | data[2] << 8 | data[3];
	n = data[4] % 8 + 1;
	max = (1U << n) - 1;
	first = data[5] & ~max;
	if ((dst = malloc(HPACK_INT_MAX)) == NULL)
		abort();
	len = hpack_int(dst, first, n, v);
	FUZZ_ASSERT(len >= 1 && len <= HPACK_INT_MAX);
	FUZZ_ASSERT((dst[0] & ~max & 0xff) == first);

	/* Read back. */
	got = dst[0] & max;
	i = 1;
	if (got == max) {
		shift = 0;
		do {
			FUZZ_ASSERT(i < len && shift <= 28);
			got += (uint64_t)(dst[i] & 0x7f) << shift;
			shift += 7;
		} while (dst[i++] & 0x80);
		/* No continuation that adds nothing. */
		FUZZ_ASSERT(i == 2 || dst[i - 1] != 0);
	}
	FUZZ_ASSERT(i == len);
	FUZZ_ASSERT(got == v);
	free(dst);
	return (0);
}
