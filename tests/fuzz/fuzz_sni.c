/*
 * A ClientHello's server_name extension, as any client sends it.  A
 * name read is as long as the bytes say, holds no NUL, fits its buffer
 * and is the bytes it came from; a buffer too small for it refuses it.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char	 name[SNI_HOST_MAX + 1], small[8];
	size_t	 n;

	if (sni_host(data, len, name, sizeof(name)) == -1) {
		if (sni_host(data, len, small, sizeof(small)) != -1)
			abort();
		return (0);
	}
	n = strlen(name);
	if (n == 0 || n > SNI_HOST_MAX || len != n + 5 ||
	    memcmp(name, data + 5, n) != 0)
		abort();
	if (sni_host(data, len, small, sizeof(small)) != (n < sizeof(small) ?
	    0 : -1))
		abort();
	return (0);
}
