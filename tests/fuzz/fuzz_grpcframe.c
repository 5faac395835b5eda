/*
 * libFuzzer target for the gRPC message framing of unary calls,
 * grpc_rx_feed() in workers/auth/grpcframe.c.
 *
 * The input:
 *
 *	byte 0		the largest message allowed: 16 times its value
 *	byte 1		(its value % 64) + 1 is the size of each piece
 *	the rest	a request stream's bytes
 *
 * The stream is fed whole, a byte at a time, and in pieces of the size
 * above: each way must end in the same state, with the same message.
 * The state must be what the bytes say: a message, whole and the last
 * thing in the stream, no longer than allowed; a refusal that the
 * prefix explains, with nothing held; or a stream not yet done.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpcframe.h"

#include "fuzz.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
run(const uint8_t *data, size_t size, size_t max, size_t step,
    struct grpc_rx *rx)
{
	enum grpc_rx_status	 st = GRPC_RX_MORE;
	size_t			 off, n;

	grpc_rx_init(rx);
	for (off = 0; off < size; off += n) {
		n = size - off < step ? size - off : step;
		st = grpc_rx_feed(rx, data + off, n, max);
		FUZZ_ASSERT(st == rx->status || st == GRPC_RX_MORE);
		/* Held only as long as the prefix allows, and all of it. */
		FUZZ_ASSERT(grpc_rx_held(rx) == 0 ||
		    (grpc_rx_held(rx) == rx->len && rx->len <= max));
	}
	FUZZ_ASSERT(grpc_rx_end(rx) == (size == 0 ? GRPC_RX_EMPTY :
	    st == GRPC_RX_MORE ? GRPC_RX_TRUNCATED : st));
}

static void
check(const uint8_t *data, size_t size, size_t max, struct grpc_rx *rx)
{
	uint32_t	 len;

	if (size < GRPC_PREFIX_LEN) {
		FUZZ_ASSERT(grpc_rx_end(rx) == (size == 0 ? GRPC_RX_EMPTY :
		    GRPC_RX_TRUNCATED));
		FUZZ_ASSERT(rx->msg == NULL);
		return;
	}
	len = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
	    (uint32_t)data[3] << 8 | data[4];
	FUZZ_ASSERT(rx->len == len);
	switch (grpc_rx_end(rx)) {
	case GRPC_RX_COMPRESSED:
		FUZZ_ASSERT(data[0] == 1 && rx->msg == NULL);
		break;
	case GRPC_RX_BADFLAG:
		FUZZ_ASSERT(data[0] > 1 && rx->msg == NULL);
		break;
	case GRPC_RX_TOOBIG:
		FUZZ_ASSERT(data[0] == 0 && len > max && rx->msg == NULL);
		break;
	case GRPC_RX_DONE:
	case GRPC_RX_EXTRA:
		FUZZ_ASSERT(data[0] == 0 && len <= max);
		FUZZ_ASSERT(rx->have == len);
		FUZZ_ASSERT(len == 0 || memcmp(rx->msg,
		    data + GRPC_PREFIX_LEN, len) == 0);
		FUZZ_ASSERT((grpc_rx_end(rx) == GRPC_RX_DONE) ==
		    (size == GRPC_PREFIX_LEN + (size_t)len));
		break;
	case GRPC_RX_TRUNCATED:
		FUZZ_ASSERT(data[0] == 0 && len <= max);
		FUZZ_ASSERT(size < GRPC_PREFIX_LEN + (size_t)len);
		FUZZ_ASSERT(rx->have == size - GRPC_PREFIX_LEN);
		break;
	default:
		FUZZ_ASSERT(0);	/* malloc does not fail here */
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct grpc_rx	 whole, bytes, pieces;
	size_t		 max, step;

	if (size < 2)
		return (0);
	max = (size_t)data[0] * 16;
	step = data[1] % 64 + 1;
	data += 2;
	size -= 2;

	run(data, size, max, size > 0 ? size : 1, &whole);
	run(data, size, max, 1, &bytes);
	run(data, size, max, step, &pieces);
	check(data, size, max, &whole);
	FUZZ_ASSERT(grpc_rx_end(&whole) == grpc_rx_end(&bytes));
	FUZZ_ASSERT(grpc_rx_end(&whole) == grpc_rx_end(&pieces));
	FUZZ_ASSERT(whole.have == bytes.have && whole.have == pieces.have);
	FUZZ_ASSERT(grpc_rx_held(&whole) == grpc_rx_held(&bytes));
	FUZZ_ASSERT(grpc_rx_held(&whole) == grpc_rx_held(&pieces));
	FUZZ_ASSERT(whole.have == 0 ||
	    (memcmp(whole.msg, bytes.msg, whole.have) == 0 &&
	    memcmp(whole.msg, pieces.msg, whole.have) == 0));
	grpc_rx_free(&whole);
	grpc_rx_free(&bytes);
	grpc_rx_free(&pieces);
	FUZZ_ASSERT(whole.msg == NULL && grpc_rx_held(&whole) == 0);
	return (0);
}
