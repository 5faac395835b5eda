/*
 * The master's OpenSSL engine, used where sessions are handed over in
 * the kernel: libtls cannot give up a session's keys.  It takes the same
 * configuration as the libtls engine and answers the same way
 * (TLS_WANT_POLLIN, TLS_WANT_POLLOUT, 0 at end of stream).
 */

#ifndef MEZITE_TLS_OSSL_H
#define MEZITE_TLS_OSSL_H

#include <sys/types.h>

#include <openssl/ssl.h>

#include "mezite.pb-c.h"

struct ossl_server;

struct ossl_server	*ossl_server_build(const Mezite__MasterConfig *,
			    Mezite__Keypair **, size_t, char *, size_t);
void			 ossl_server_free(struct ossl_server *);
SSL			*ossl_accept(struct ossl_server *, int);
int			 ossl_handshake(SSL *);
ssize_t			 ossl_read(SSL *, void *, size_t);
ssize_t			 ossl_write(SSL *, const void *, size_t);
int			 ossl_close(SSL *);
const char		*ossl_error(void);
int			 ossl_offload(int, SSL *, char *, size_t);

#endif /* MEZITE_TLS_OSSL_H */
