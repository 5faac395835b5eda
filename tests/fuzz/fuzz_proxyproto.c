/*
 * The PROXY protocol header, as a trusted balancer (or anyone, should
 * it be misconfigured) sends it.  Beyond not crashing, the reader must
 * answer the same however the bytes come: every beginning of a header
 * is "more", and a beginning already refused stays refused.  A header
 * is never longer than PP_MAX, nor than what was read.
 */

#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct pp_header	 h, hp;
	ssize_t			 n, np;
	size_t			 i;

	n = pp_parse(data, len, &h);
	if (n > 0 && ((size_t)n > len || n > PP_MAX))
		abort();
	if (n > 0 && h.proxied && h.src.ss_family != AF_INET &&
	    h.src.ss_family != AF_INET6)
		abort();
	if (n > 0 && h.proxied && h.src.ss_family != h.dst.ss_family)
		abort();
	if (n == PP_MORE && len >= PP_MAX)
		abort();

	/* The same bytes, as they may have come: a prefix at a time. */
	for (i = 0; i < len && i <= PP_MAX; i++) {
		np = pp_parse(data, i, &hp);
		if (n > 0 && i < (size_t)n && np != PP_MORE)
			abort();
		if (n > 0 && i >= (size_t)n && np != n)
			abort();
		if (np == PP_MALFORMED && n != PP_MALFORMED)
			abort();
	}
	if (n > 0 && pp_parse(data, (size_t)n, &hp) == n &&
	    memcmp(&h, &hp, sizeof(h)) != 0)
		abort();
	return (0);
}
