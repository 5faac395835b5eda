/*
 * libFuzzer target for the parser of an HTTP proxy's answer to
 * CONNECT, connectresp_parse() in mezd/httpproxy.c: the proxy, or
 * whatever answers in its place, is not trusted.
 *
 * The input is the proxy's bytes.  They are parsed whole and at every
 * length before: a complete answer must stay complete, with the same
 * status and length, as bytes are added after it; its header must end
 * with a blank line within the bytes and within CONNRESP_MAX; its
 * status line must be printable and NUL-terminated; and a refusal
 * must not turn into a success once more bytes come.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mezd.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct connectresp	 r, first;
	const char		*why;
	char			*buf;
	size_t			 i;
	int			 rv, done = 0, refused = 0;

	/* A copy of its own size, so that ASan sees any read past it. */
	if ((buf = malloc(len == 0 ? 1 : len)) == NULL)
		return (0);
	memcpy(buf, data, len);
	memset(&first, 0, sizeof(first));
	for (i = 0; i <= len; i++) {
		rv = connectresp_parse(buf, i, &r, &why);
		if (rv == -1) {
			if (why == NULL)
				abort();
			if (done)
				abort();	/* complete, then refused */
			refused = 1;
			continue;
		}
		if (refused && rv != -1 && i <= CONNRESP_MAX)
			abort();	/* refused, then not */
		if (rv == 0) {
			if (done)
				abort();
			continue;
		}
		if (rv != 1 || r.hdrlen == 0 || r.hdrlen > i ||
		    r.hdrlen > CONNRESP_MAX || buf[r.hdrlen - 1] != '\n' ||
		    r.status < 100 || r.status > 999 ||
		    memchr(r.line, '\0', sizeof(r.line)) == NULL)
			abort();
		if (!done) {
			first = r;
			done = 1;
		} else if (r.status != first.status ||
		    r.hdrlen != first.hdrlen || strcmp(r.line, first.line) != 0)
			abort();
	}
	free(buf);
	return (0);
}
