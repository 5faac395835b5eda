/*
 * The auth worker's reader of authorized_keys lines, as mezctl sends
 * them and as the ssh worker passes on a client's key: any bytes must be
 * read or refused, never crash, and a key read must read the same again
 * from its type and base64 alone.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sshkey.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char	 line[SSHKEY_LINE_MAX + 2];
	static char	 again[SSHKEY_LINE_MAX + 2];
	struct sshkey	 k, k2;
	char		 err[256];

	if (len > SSHKEY_LINE_MAX + 1)
		len = SSHKEY_LINE_MAX + 1;
	memcpy(line, data, len);
	line[len] = '\0';
	(void)sshkey_fingerprint_valid(line);
	if (sshkey_parse(line, &k, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		return (0);
	}
	if (!sshkey_fingerprint_valid(k.fingerprint))
		abort();
	(void)snprintf(again, sizeof(again), "%s %s", k.type, k.b64);
	if (sshkey_parse(again, &k2, err, sizeof(err)) == -1 ||
	    strcmp(k.fingerprint, k2.fingerprint) != 0 ||
	    strcmp(k.b64, k2.b64) != 0 || k.bits != k2.bits ||
	    k2.comment[0] != '\0')
		abort();
	return (0);
}
