/*
 * libFuzzer target for the measure of HTTP/2 header blocks,
 * h2_block_scan() in workers/https/h2parse.c.
 *
 * The input:
 *
 *	byte 0		the largest header block allowed: 4 times its
 *			value, or 64 KiB (HEAD_MAX) for 255
 *	byte 1		(its value % 64) + 1 is the size of each read
 *	the rest	the frames a client sends, after the preface
 *
 * The frames are read as the worker reads them: after each read the
 * scan looks at what h2o has yet to take, and h2o then takes every
 * complete frame.  Read whole, a byte at a time, and in reads of the
 * size above, the frames must be cut at the same place or not at all,
 * and leave the same block behind.  A cut must fall on a HEADERS or
 * CONTINUATION frame that takes its block past the largest allowed.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2parse.h"

#include "fuzz.h"

#define FUZZ_HEAD_MAX	(64 * 1024)

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* How one way of reading ended. */
struct run {
	struct h2_block	 b;
	int		 cut;
	size_t		 at;		/* where, in the whole stream */
};

static size_t	 frame_len(const uint8_t *, size_t);
static void	 run_reads(const uint8_t *, size_t, size_t, size_t,
		    struct run *);

/* The length of the complete frame at p, or 0 if it is not all there. */
static size_t
frame_len(const uint8_t *p, size_t len)
{
	size_t	 flen;

	if (len < H2_FRAME_HEADER)
		return (0);
	flen = H2_FRAME_HEADER + ((size_t)p[0] << 16 | p[1] << 8 | p[2]);
	return (flen <= len ? flen : 0);
}

static void
run_reads(const uint8_t *stream, size_t len, size_t max, size_t step,
    struct run *r)
{
	const uint8_t	*f;
	uint8_t		*buf;
	size_t		 taken = 0, have = 0, n, cut;

	memset(r, 0, sizeof(*r));
	while (have < len) {
		have = len - have < step ? len : have + step;
		/* What h2o has yet to take, in a buffer of just that. */
		if ((buf = malloc(have > taken ? have - taken : 1)) == NULL)
			abort();
		memcpy(buf, stream + taken, have - taken);
		r->cut = h2_block_scan(&r->b, buf, have - taken, max, &cut);
		free(buf);
		FUZZ_ASSERT(r->cut == 0 || r->cut == 1);
		if (r->cut) {
			FUZZ_ASSERT(cut < have - taken);
			r->at = taken + cut;
			f = stream + r->at;
			FUZZ_ASSERT(frame_len(f, have - r->at) != 0);
			FUZZ_ASSERT(f[3] == H2_FRAME_HEADERS ||
			    f[3] == H2_FRAME_CONTINUATION);
			FUZZ_ASSERT(r->b.len > max);
			return;
		}
		FUZZ_ASSERT(r->b.len <= max);
		/* h2o takes the complete frames. */
		while ((n = frame_len(stream + taken, have - taken)) != 0)
			taken += n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run	 whole, bytes, reads;
	size_t		 max, step;

	if (size < 2)
		return (0);
	max = data[0] == 255 ? FUZZ_HEAD_MAX : data[0] * 4;
	step = data[1] % 64 + 1;
	data += 2;
	size -= 2;

	run_reads(data, size, max, size > 0 ? size : 1, &whole);
	run_reads(data, size, max, 1, &bytes);
	run_reads(data, size, max, step, &reads);
	FUZZ_ASSERT(whole.cut == bytes.cut && whole.cut == reads.cut);
	FUZZ_ASSERT(whole.at == bytes.at && whole.at == reads.at);
	FUZZ_ASSERT(whole.b.len == bytes.b.len && whole.b.len == reads.b.len);
	FUZZ_ASSERT(whole.b.id == bytes.b.id && whole.b.id == reads.b.id);
	return (0);
}
