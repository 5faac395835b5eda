/*
 * The two readers of the SSH certificate exchange: the auth worker's of
 * the public key line a client sends with Login, and msh's of the
 * certificate line the proxy answers with.  Any bytes are read or
 * refused, never crash; a key the auth worker takes is certified, and
 * msh takes that certificate's line.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "msh/msh.h"
#include "sshcert.h"
#include "sshkey.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const prin[] = { "root" };
	static char	 line[SSHKEY_LINE_MAX + 2];
	static EVP_PKEY	*ca;
	struct sshcert	 c;
	char		 err[256], *cert;
	size_t		 n;

	(void)sshid_cert_valid((const char *)data, len);
	if (ca == NULL && (ca = EVP_PKEY_Q_keygen(NULL, NULL,
	    "ED25519")) == NULL)
		abort();
	if (len > SSHKEY_LINE_MAX + 1)
		len = SSHKEY_LINE_MAX + 1;
	memcpy(line, data, len);
	line[len] = '\0';
	memset(&c, 0, sizeof(c));
	if (sshcert_key_from_line(line, c.key, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		return (0);
	}
	c.key_id = "fuzz";
	c.principals = prin;
	c.nprincipals = 1;
	c.valid_before = UINT64_MAX;
	if (sshcert_sign(ca, &c, "fuzz", &cert, &n) == -1 ||
	    strlen(cert) != n || sshid_cert_valid(cert, n) != 1)
		abort();
	free(cert);
	return (0);
}
