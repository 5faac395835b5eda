/*
 * gRPC message framing of a unary call's request stream.
 */

#include <sys/types.h>
#include <sys/param.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpcframe.h"

void
grpc_rx_init(struct grpc_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	rx->status = GRPC_RX_MORE;
}

enum grpc_rx_status
grpc_rx_feed(struct grpc_rx *rx, const uint8_t *p, size_t n, size_t max)
{
	size_t	 take;

	if (rx->status != GRPC_RX_MORE && rx->status != GRPC_RX_DONE)
		return (rx->status);
	if (n == 0)
		return (rx->status);
	if (rx->status == GRPC_RX_DONE)
		return (rx->status = GRPC_RX_EXTRA);

	if (rx->nprefix < GRPC_PREFIX_LEN) {
		take = MIN(n, GRPC_PREFIX_LEN - rx->nprefix);
		memcpy(rx->prefix + rx->nprefix, p, take);
		rx->nprefix += take;
		p += take;
		n -= take;
		if (rx->nprefix < GRPC_PREFIX_LEN)
			return (GRPC_RX_MORE);

		rx->len = (uint32_t)rx->prefix[1] << 24 |
		    (uint32_t)rx->prefix[2] << 16 |
		    (uint32_t)rx->prefix[3] << 8 | rx->prefix[4];
		if (rx->prefix[0] == 1)
			return (rx->status = GRPC_RX_COMPRESSED);
		if (rx->prefix[0] != 0)
			return (rx->status = GRPC_RX_BADFLAG);
		if (rx->len > max)
			return (rx->status = GRPC_RX_TOOBIG);
		if (rx->len > 0 && (rx->msg = malloc(rx->len)) == NULL)
			return (rx->status = GRPC_RX_NOMEM);
	}

	take = MIN(n, rx->len - rx->have);
	if (take > 0) {
		memcpy(rx->msg + rx->have, p, take);
		rx->have += take;
		n -= take;
	}
	if (rx->have < rx->len)
		return (GRPC_RX_MORE);
	rx->status = n > 0 ? GRPC_RX_EXTRA : GRPC_RX_DONE;
	return (rx->status);
}

enum grpc_rx_status
grpc_rx_end(const struct grpc_rx *rx)
{
	if (rx->status != GRPC_RX_MORE)
		return (rx->status);
	return (rx->nprefix == 0 ? GRPC_RX_EMPTY : GRPC_RX_TRUNCATED);
}

size_t
grpc_rx_held(const struct grpc_rx *rx)
{
	return (rx->msg != NULL ? rx->len : 0);
}

/* Messages hold passwords: wiped before they go. */
void
grpc_rx_free(struct grpc_rx *rx)
{
	if (rx->msg != NULL)
		explicit_bzero(rx->msg, rx->len);
	free(rx->msg);
	rx->msg = NULL;
}
