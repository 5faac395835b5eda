/*
 * The ca process's request check: a request from the master, any bytes,
 * is accepted or refused against an EC and an RSA key, never crashes.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "casign.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static EVP_PKEY	*ec, *rsa;
	struct ca_req	 req;
	const char	*why;

	if (ec == NULL) {
		ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		if (ec == NULL || rsa == NULL)
			__builtin_trap();
	}
	/* What recv() leaves of a short datagram: the rest is ours. */
	memset(&req, 0, sizeof(req));
	memcpy(&req, data, len < sizeof(req) ? len : sizeof(req));
	(void)ca_req_check(&req, ec, &why);
	(void)ca_req_check(&req, rsa, &why);
	return (0);
}
