/*
 * The TLS client of msh and mezd, on OpenSSL's libssl.
 *
 * It has libtls's shape (a context per connection, nonblocking calls
 * that ask to be called again when the socket is readable or
 * writable) and one thing more: it keeps the session the proxy's
 * tickets carry, to resume it on the next connection.  libtls cannot:
 * it saves its session when the handshake ends, and a TLS 1.3 server
 * sends its tickets only after that, so what libtls keeps never
 * resumes a TLS 1.3 connection.  Here the session is taken when a
 * ticket arrives (OpenSSL's new session callback), which for TLS 1.3
 * is during the first reads after the handshake.
 *
 * TLS 1.2 and 1.3 only; the proxy is verified against a CA file and
 * by name when one is given, else the caller checks the certificate
 * it showed (tlsc_peer_cert_hash()).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tlsc.h"

struct tlsc {
	SSL_CTX		*ctx;
	SSL		*ssl;
	SSL_SESSION	*sess;		/* the newest from a ticket */
	int		 offered;	/* a session was offered */
	int		 newsess;	/* a ticket came on this connection */
	int		 handshaken;
	char		 alpn[256];
	char		 hash[7 + 64 + 1];
	char		 error[256];
};

static int	 tlsc_fail(struct tlsc *, const char *);
static int	 tlsc_ssl_error(struct tlsc *, int, const char *);
static int	 tlsc_new_session(SSL *, SSL_SESSION *);
static int	 tlsc_keypair(struct tlsc *, const char *, size_t,
		    const char *, size_t);

/* The reason of the first error OpenSSL queued, or why. */
static int
tlsc_fail(struct tlsc *t, const char *why)
{
	unsigned long	 e;
	char		 buf[200];

	if ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(t->error, sizeof(t->error), "%s: %s", why,
		    ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : buf);
	} else
		snprintf(t->error, sizeof(t->error), "%s", why);
	ERR_clear_error();
	return (-1);
}

/* What an SSL call that returned rv asks for, as libtls says it. */
static int
tlsc_ssl_error(struct tlsc *t, int rv, const char *what)
{
	char	 why[64];
	int	 saved = errno;

	switch (SSL_get_error(t->ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return (TLSC_WANT_POLLIN);
	case SSL_ERROR_WANT_WRITE:
		return (TLSC_WANT_POLLOUT);
	case SSL_ERROR_ZERO_RETURN:
		return (0);
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(t->error, sizeof(t->error), "%s failed: %s",
			    what, saved != 0 ? strerror(saved) :
			    "unexpected eof");
			return (-1);
		}
		/* FALLTHROUGH */
	default:
		snprintf(why, sizeof(why), "%s failed", what);
		return (tlsc_fail(t, why));
	}
}

/* A ticket arrived: keep its session, the newest only. */
static int
tlsc_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tlsc	*t;

	if ((t = SSL_get_app_data(ssl)) == NULL ||
	    !SSL_SESSION_is_resumable(sess))
		return (0);
	SSL_SESSION_free(t->sess);
	t->sess = sess;
	t->newsess = 1;
	return (1);		/* it is ours now */
}

/* The client certificate (and its chain) and key, in PEM. */
static int
tlsc_keypair(struct tlsc *t, const char *cert, size_t certlen,
    const char *key, size_t keylen)
{
	BIO		*bio;
	X509		*x;
	EVP_PKEY	*pkey;
	int		 first = 1;

	if (certlen > INT_MAX || keylen > INT_MAX)
		return (tlsc_fail(t, "client certificate too large"));
	if ((bio = BIO_new_mem_buf(cert, certlen)) == NULL)
		return (tlsc_fail(t, "client certificate"));
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (first ? SSL_CTX_use_certificate(t->ctx, x) != 1 :
		    SSL_CTX_add0_chain_cert(t->ctx, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			return (tlsc_fail(t, "client certificate"));
		}
		if (first)
			X509_free(x);
		first = 0;
	}
	BIO_free(bio);
	ERR_clear_error();	/* the end of the PEM */
	if (first)
		return (tlsc_fail(t, "no client certificate"));

	if ((bio = BIO_new_mem_buf(key, keylen)) == NULL)
		return (tlsc_fail(t, "private key"));
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		return (tlsc_fail(t, "private key"));
	if (SSL_CTX_use_PrivateKey(t->ctx, pkey) != 1) {
		EVP_PKEY_free(pkey);
		return (tlsc_fail(t, "private key"));
	}
	EVP_PKEY_free(pkey);
	if (SSL_CTX_check_private_key(t->ctx) != 1)
		return (tlsc_fail(t, "the key is not the certificate's"));
	return (0);
}

/*
 * A client for the protocol alpn, verified with cafile (NULL: not
 * verified here), with a client certificate and key if cert is not
 * NULL.  NULL on failure, with why in err.
 */
struct tlsc *
tlsc_client(const char *alpn, const char *cafile, const char *cert,
    size_t certlen, const char *key, size_t keylen, char *err,
    size_t errlen)
{
	struct tlsc	*t;
	size_t		 len;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return (NULL);
	}
	len = strlen(alpn);
	if (len == 0 || len > 255) {
		tlsc_fail(t, "invalid ALPN");
		goto fail;
	}
	t->alpn[0] = len;
	memcpy(t->alpn + 1, alpn, len);

	if ((t->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
		tlsc_fail(t, "SSL_CTX_new");
		goto fail;
	}
	/* TLS 1.2: forward secrecy and AEAD only, as libtls's "secure". */
	if (SSL_CTX_set_cipher_list(t->ctx,
	    "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		tlsc_fail(t, "ciphers");
		goto fail;
	}
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(t->ctx, tlsc_new_session);
	if (SSL_CTX_set_alpn_protos(t->ctx, (const unsigned char *)t->alpn,
	    len + 1) != 0) {
		tlsc_fail(t, "ALPN");
		goto fail;
	}
	if (cafile != NULL) {
		if (SSL_CTX_load_verify_locations(t->ctx, cafile, NULL) !=
		    1) {
			tlsc_fail(t, cafile);
			goto fail;
		}
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	if (cert != NULL && tlsc_keypair(t, cert, certlen, key, keylen) ==
	    -1)
		goto fail;

	if ((t->ssl = SSL_new(t->ctx)) == NULL ||
	    SSL_set_app_data(t->ssl, t) != 1) {
		tlsc_fail(t, "SSL_new");
		goto fail;
	}
	return (t);
 fail:
	snprintf(err, errlen, "%s", t->error);
	tlsc_free(t);
	return (NULL);
}

/*
 * Offer a session (PEM) in the handshake.  -1 if it is not one that
 * can resume; the handshake is then a full one.
 */
int
tlsc_set_session(struct tlsc *t, const char *pem, size_t len)
{
	SSL_SESSION	*s;
	BIO		*bio;

	if (len > TLSC_SESSION_MAX)
		return (tlsc_fail(t, "session too large"));
	if ((bio = BIO_new_mem_buf(pem, len)) == NULL)
		return (tlsc_fail(t, "session"));
	s = PEM_read_bio_SSL_SESSION(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (s == NULL)
		return (tlsc_fail(t, "not a TLS session"));
	if (!SSL_SESSION_is_resumable(s) || SSL_set_session(t->ssl, s) !=
	    1) {
		SSL_SESSION_free(s);
		return (tlsc_fail(t, "the TLS session cannot resume"));
	}
	SSL_SESSION_free(s);
	t->offered = 1;
	return (0);
}

/* Shake hands on fd with servername, the name verified if verifying. */
int
tlsc_connect_socket(struct tlsc *t, int fd, const char *servername)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;
	X509_VERIFY_PARAM *vp;

	vp = SSL_get0_param(t->ssl);
	if (inet_pton(AF_INET, servername, &a4) == 1 ||
	    inet_pton(AF_INET6, servername, &a6) == 1) {
		/* No SNI for an address (RFC 6066, 3). */
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, servername) != 1)
			return (tlsc_fail(t, "server address"));
	} else if (SSL_set_tlsext_host_name(t->ssl, servername) != 1 ||
	    X509_VERIFY_PARAM_set1_host(vp, servername, 0) != 1)
		return (tlsc_fail(t, "server name"));
	if (SSL_set_fd(t->ssl, fd) != 1)
		return (tlsc_fail(t, "SSL_set_fd"));
	return (0);
}

/* 0: done; TLSC_WANT_POLLIN or _POLLOUT: again when ready; -1. */
int
tlsc_handshake(struct tlsc *t)
{
	int	 rv;

	ERR_clear_error();
	errno = 0;
	if ((rv = SSL_connect(t->ssl)) != 1) {
		if ((rv = tlsc_ssl_error(t, rv, "handshake")) == 0)
			rv = tlsc_fail(t, "handshake failed: closed");
		return (rv);
	}
	t->handshaken = 1;
	return (0);
}

/* Up to len bytes; 0 at close_notify; TLSC_WANT_*; -1. */
ssize_t
tlsc_read(struct tlsc *t, void *buf, size_t len)
{
	size_t	 n;
	int	 rv;

	ERR_clear_error();
	errno = 0;
	if ((rv = SSL_read_ex(t->ssl, buf, len, &n)) == 1)
		return (n);
	return (tlsc_ssl_error(t, rv, "read"));
}

/* Up to len bytes written; TLSC_WANT_*; -1. */
ssize_t
tlsc_write(struct tlsc *t, const void *buf, size_t len)
{
	size_t	 n;
	int	 rv;

	ERR_clear_error();
	errno = 0;
	if ((rv = SSL_write_ex(t->ssl, buf, len, &n)) == 1)
		return (n);
	if ((rv = tlsc_ssl_error(t, rv, "write")) == 0)
		rv = tlsc_fail(t, "write failed: closed");
	return (rv);
}

/* Send close_notify: 0 when sent; TLSC_WANT_*; -1. */
int
tlsc_close(struct tlsc *t)
{
	int	 rv;

	if (!t->handshaken)
		return (0);
	ERR_clear_error();
	errno = 0;
	if ((rv = SSL_shutdown(t->ssl)) >= 0)
		return (0);
	return (tlsc_ssl_error(t, rv, "shutdown"));
}

void
tlsc_free(struct tlsc *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	SSL_SESSION_free(t->sess);
	freezero(t, sizeof(*t));
}

const char *
tlsc_error(struct tlsc *t)
{
	return (t->error[0] != '\0' ? t->error : NULL);
}

/* The protocol the server selected, or NULL. */
const char *
tlsc_alpn_selected(struct tlsc *t)
{
	const unsigned char	*p;
	unsigned int		 len;

	SSL_get0_alpn_selected(t->ssl, &p, &len);
	if (p == NULL || len == 0 || len >= sizeof(t->alpn))
		return (NULL);
	memcpy(t->alpn, p, len);
	t->alpn[len] = '\0';
	return (t->alpn);
}

/* "SHA256:" and the hex of the server certificate's hash, or NULL. */
const char *
tlsc_peer_cert_hash(struct tlsc *t)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	X509		*x;

	if ((x = SSL_get0_peer_certificate(t->ssl)) == NULL ||
	    X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return (NULL);
	strlcpy(t->hash, "SHA256:", sizeof(t->hash));
	for (i = 0; i < mdlen; i++)
		snprintf(t->hash + 7 + 2 * i, 3, "%02x", md[i]);
	return (t->hash);
}

/* Whether the handshake resumed the session offered. */
int
tlsc_resumed(struct tlsc *t)
{
	return (t->handshaken && SSL_session_reused(t->ssl));
}

/* Whether a session was offered. */
int
tlsc_session_offered(struct tlsc *t)
{
	return (t->offered);
}

/* Whether a ticket brought a session since the last tlsc_session_pem(). */
int
tlsc_session_new(struct tlsc *t)
{
	return (t->newsess);
}

/*
 * The newest session from a ticket, in PEM (a secret: wipe it), or
 * NULL if there is none.
 */
char *
tlsc_session_pem(struct tlsc *t, size_t *lenp)
{
	BIO	*bio;
	char	*data, *pem;
	long	 len;

	*lenp = 0;
	if (t->sess == NULL)
		return (NULL);
	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		return (NULL);
	if (PEM_write_bio_SSL_SESSION(bio, t->sess) != 1 ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0 ||
	    len > TLSC_SESSION_MAX || (pem = malloc(len + 1)) == NULL) {
		BIO_free(bio);
		ERR_clear_error();
		return (NULL);
	}
	memcpy(pem, data, len);
	pem[len] = '\0';
	BIO_free(bio);
	*lenp = len;
	t->newsess = 0;
	return (pem);
}
