/*
 * The host name a ClientHello's server_name extension carries, read
 * from its bytes as OpenSSL will read them, before OpenSSL does: the
 * master chooses the keypair, and with it the sessions it resumes,
 * before a ticket is opened.
 */

#include <string.h>

#include "sni.h"

/*
 * The server_name extension's data: a list (2 bytes of length) of one
 * entry, a name type (0, host_name) and the name (2 bytes of length),
 * which fills the list.  The name is copied to out, NUL-terminated:
 * 0; or -1 for anything else (no name, another type, a name too long
 * or holding a NUL, bytes left over), as OpenSSL would refuse it.
 */
int
sni_host(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t	 list, n;

	if (len < 2)
		return (-1);
	list = (size_t)p[0] << 8 | p[1];
	if (list != len - 2 || list < 3 || p[2] != 0)
		return (-1);
	n = (size_t)p[3] << 8 | p[4];
	if (n == 0 || n != list - 3 || n > SNI_HOST_MAX || n >= outlen ||
	    memchr(p + 5, '\0', n) != NULL)
		return (-1);
	memcpy(out, p + 5, n);
	out[n] = '\0';
	return (0);
}
