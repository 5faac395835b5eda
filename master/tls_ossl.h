/*
 * The master's OpenSSL engine.  It is the engine wherever mezited is
 * built on OpenSSL: libtls cannot give a session's keys to the kernel,
 * nor let an idle session give its record buffers back.  It takes the
 * same configuration as the libtls engine and answers the same way
 * (TLS_WANT_POLLIN, TLS_WANT_POLLOUT, 0 at end of stream).
 */

#ifndef MEZITE_TLS_OSSL_H
#define MEZITE_TLS_OSSL_H

#include <sys/types.h>

#include <openssl/ssl.h>

#include "mezite.pb-c.h"

/*
 * Which engine the master runs: OpenSSL's libssl unless the build asks
 * for libtls (make TLS=libtls), which can only relay.
 */
#ifdef MEZITE_TLS_LIBTLS
#define MASTER_ENGINE_OSSL	0
#else
#define MASTER_ENGINE_OSSL	1
#endif

/*
 * Whether a ca process holds the TLS private keys and signs for the
 * master: in the OpenSSL build, unless it is made to keep them in the
 * master as the libtls build must (make KEYS=master), which serves to
 * measure what the ca process costs.
 */
#if MASTER_ENGINE_OSSL && !defined(MEZITE_KEYS_IN_MASTER)
#define MASTER_KEYS_IN_CA	1
#else
#define MASTER_KEYS_IN_CA	0
#endif

/*
 * The client's stream ended without close_notify: an abort, which may
 * have cut what it sent short, and no end of data.  Apart from libtls's
 * TLS_WANT_POLLIN (-2) and TLS_WANT_POLLOUT (-3).
 */
#define OSSL_ABORTED		(-4)

struct ossl_server;

struct ossl_server	*ossl_server_build(const Mezite__MasterConfig *,
			    Mezite__Keypair **, size_t, char *, size_t);
void			 ossl_server_free(struct ossl_server *);
SSL			*ossl_accept(struct ossl_server *, int);
int			 ossl_ktls(const struct ossl_server *);
const char		*ossl_ciphers(const char *);
int			 ossl_relay(SSL *, int);
int			 ossl_flush(SSL *);
int			 ossl_drained(SSL *);
int			 ossl_handshake(SSL *);
ssize_t			 ossl_read(SSL *, void *, size_t);
ssize_t			 ossl_write(SSL *, const void *, size_t);
int			 ossl_close(SSL *);
const char		*ossl_error(void);
int			 ossl_offload(int, SSL *, char *, size_t);
void			 ossl_set_revoked(int (*)(X509 *));
struct ticket_keys;
void			 ossl_set_ticket_keys(const struct ticket_keys *);

#endif /* MEZITE_TLS_OSSL_H */
