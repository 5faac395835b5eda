/*
 * gRPC message framing on a request stream: the bytes of the DATA frames
 * of one call, each message a 1-byte compressed flag, a 4-byte
 * big-endian length and that many bytes.  A unary call carries exactly
 * one message.
 *
 * No I/O and no HTTP/2 here: the parser takes the stream's bytes as
 * they come, in pieces of any size, and says what it has.  It holds the
 * message alone, never more than the max given to each call of
 * grpc_rx_feed(), and allocates it once, when the prefix is whole and
 * the length allowed: rx->msg is then len bytes (NULL for a message of
 * 0 bytes).  Nothing is allocated for a length above max.
 */

#ifndef MEZITE_GRPCFRAME_H
#define MEZITE_GRPCFRAME_H

#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_LEN		5

enum grpc_rx_status {
	GRPC_RX_MORE,		/* all taken: the message is not whole yet */
	GRPC_RX_DONE,		/* one whole message, nothing after it */
	GRPC_RX_EMPTY,		/* grpc_rx_end(): no message at all */
	GRPC_RX_TRUNCATED,	/* grpc_rx_end(): the stream ends in one */
	GRPC_RX_TOOBIG,		/* its length is above max: rx->len */
	GRPC_RX_COMPRESSED,	/* its compressed flag is 1 */
	GRPC_RX_BADFLAG,	/* its compressed flag is neither 0 nor 1 */
	GRPC_RX_EXTRA,		/* bytes follow the message */
	GRPC_RX_NOMEM,		/* the message could not be allocated */
};

struct grpc_rx {
	uint8_t			 prefix[GRPC_PREFIX_LEN];
	size_t			 nprefix;	/* of prefix, so far */
	uint32_t		 len;		/* once the prefix is whole */
	uint8_t			*msg;		/* len bytes, or NULL */
	size_t			 have;		/* of msg, so far */
	enum grpc_rx_status	 status;	/* an error stays */
};

void			 grpc_rx_init(struct grpc_rx *);
/*
 * Take the next n bytes of the stream; max bounds the message's length.
 * Once an error is returned, every later call returns it again and
 * takes nothing.
 */
enum grpc_rx_status	 grpc_rx_feed(struct grpc_rx *, const uint8_t *,
			    size_t, size_t);
/* At the end of the stream: GRPC_RX_DONE, _EMPTY, _TRUNCATED or an error. */
enum grpc_rx_status	 grpc_rx_end(const struct grpc_rx *);
/* The bytes held, which grpc_rx_free() gives back. */
size_t			 grpc_rx_held(const struct grpc_rx *);
void			 grpc_rx_free(struct grpc_rx *);

#endif /* MEZITE_GRPCFRAME_H */
