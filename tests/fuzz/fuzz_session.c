/*
 * libFuzzer target for msh's reader of its session file,
 * session_parse() in msh/dial.c.  The file is the user's own, but it
 * is read before anything is verified and may have been damaged.
 *
 * The input is the file.  What the parser accepts must be whole: the
 * proxy, the certificate's and the CA's hashes within the buffer,
 * NUL-terminated and of their bounds, and the session a non-empty tail
 * of the buffer of at most TLSC_SESSION_MAX bytes.  An accepted session
 * is then given to the TLS client, as msh does.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msh.h"
#include "tlsc.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
inside(const char *p, const char *buf, size_t len)
{
	return (p >= buf && p < buf + len + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char	*proxy, *certhash, *trust, *pem;
	struct tlsc	*t;
	char		*buf, err[256];
	size_t		 pemlen;

	/* A copy of its own size and a NUL, as home_read() gives it. */
	if ((buf = malloc(len + 1)) == NULL)
		return (0);
	memcpy(buf, data, len);
	buf[len] = '\0';
	if (session_parse(buf, len, &proxy, &certhash, &trust, &pem,
	    &pemlen) == 0) {
		if (!inside(proxy, buf, len) || !inside(certhash, buf, len) ||
		    !inside(trust, buf, len) || !inside(pem, buf, len))
			abort();
		if (strlen(proxy) == 0 || strlen(proxy) >= PROXYLEN ||
		    strlen(certhash) != HASHLEN ||
		    (strcmp(trust, "known") != 0 && strlen(trust) != HASHLEN))
			abort();
		if (pemlen == 0 || pemlen > TLSC_SESSION_MAX ||
		    pem + pemlen != buf + len)
			abort();
		if ((t = tlsc_client("mezite-auth", NULL, NULL, 0, NULL, 0,
		    err, sizeof(err))) == NULL)
			abort();
		(void)tlsc_set_session(t, pem, pemlen);
		tlsc_free(t);
	}
	free(buf);
	return (0);
}
