/*
 * The master's half of kernel TLS: capture a TLS 1.3 session's traffic
 * secrets during an OpenSSL handshake and install the keys derived from
 * them on the socket.
 */

#ifndef MEZITE_KTLS_INSTALL_H
#define MEZITE_KTLS_INSTALL_H

#include <openssl/ssl.h>

#include "ktls.h"

int	 ktls_ctx_init(SSL_CTX *);
int	 ktls_hkdf_expand_label(const EVP_MD *, const uint8_t *, size_t,
	    const char *, uint8_t *, size_t);
int	 ktls_derive(const SSL *, const uint8_t *, size_t, struct ktls_keys *);
int	 ktls_offload(int, SSL *, uint64_t, int, char *, size_t);
uint64_t ktls_tickets_sent(const SSL *);

#endif /* MEZITE_KTLS_INSTALL_H */
