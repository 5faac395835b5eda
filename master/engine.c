/*
 * The master's TLS engines behind one interface.  A connection runs on
 * OpenSSL's libssl (tls_ossl.c), or on libtls in a build for it (make
 * TLS=libtls); both answer with libtls's conventions (TLS_WANT_POLLIN,
 * TLS_WANT_POLLOUT).  From eng_read(), 0 is the end of the client's
 * stream with close_notify, and ENG_ABORTED an end without it.
 */

#include <sys/types.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log.h"
#include "master.h"
#include "tls_ossl.h"

/*
 * Build a libtls server context (make TLS=libtls).  The supervisor calls
 * this too, to refuse certificates and keys that would not load before
 * it starts or reloads anything.
 */
struct tls *
master_tls_build(const Mezite__MasterConfig *mc, Mezite__Keypair **kp,
    size_t nkp, char *err, size_t errlen)
{
	struct tls_config	*tc;
	struct tls		*t = NULL;
	uint32_t		 protocols;
	size_t			 i;

	if ((tc = tls_config_new()) == NULL) {
		strlcpy(err, "tls_config_new failed", errlen);
		return (NULL);
	}
	if (tls_config_parse_protocols(&protocols, mc->tls_protocols) == -1 ||
	    tls_config_set_protocols(tc, protocols) == -1) {
		(void)snprintf(err, errlen, "tls protocols \"%s\": invalid",
		    mc->tls_protocols);
		goto fail;
	}
	if (tls_config_set_ciphers(tc, ossl_ciphers(mc->tls_ciphers)) == -1) {
		(void)snprintf(err, errlen, "tls ciphers \"%s\": %s",
		    mc->tls_ciphers, tls_config_error(tc));
		goto fail;
	}
	if (tls_config_set_ecdhecurves(tc, mc->tls_groups) == -1) {
		(void)snprintf(err, errlen, "tls groups \"%s\": %s",
		    mc->tls_groups, tls_config_error(tc));
		goto fail;
	}
	if (nkp == 0) {
		strlcpy(err, "no tls keypair", errlen);
		goto fail;
	}
	for (i = 0; i < nkp; i++) {
		if ((i == 0 ? tls_config_set_keypair_mem :
		    tls_config_add_keypair_mem)(tc, kp[i]->cert.data,
		    kp[i]->cert.len, kp[i]->key.data, kp[i]->key.len) == -1) {
			(void)snprintf(err, errlen, "tls keypair \"%s\": %s",
			    kp[i]->name, tls_config_error(tc));
			goto fail;
		}
	}
	if (mc->client_ca.len > 0) {
		if (tls_config_set_ca_mem(tc, mc->client_ca.data,
		    mc->client_ca.len) == -1) {
			(void)snprintf(err, errlen, "tls client ca: %s",
			    tls_config_error(tc));
			goto fail;
		}
		tls_config_verify_client_optional(tc);
	}
	if (mc->n_alpn > 0 && mc->alpn[0][0] != '\0' &&
	    tls_config_set_alpn(tc, mc->alpn[0]) == -1) {
		(void)snprintf(err, errlen, "alpn \"%s\": %s", mc->alpn[0],
		    tls_config_error(tc));
		goto fail;
	}
	if ((t = tls_server()) == NULL) {
		strlcpy(err, "tls_server failed", errlen);
		goto fail;
	}
	if (tls_configure(t, tc) == -1) {
		(void)snprintf(err, errlen, "tls: %s", tls_error(t));
		tls_free(t);
		t = NULL;
	}
 fail:
	/* The context keeps what it needs; wipe our copies of the keys. */
	tls_config_free(tc);
	return (t);
}

int
eng_handshake(struct conn *c)
{
	return (c->ssl != NULL ? ossl_handshake(c->ssl) :
	    tls_handshake(c->tls));
}

/* Is this tls_read() failure the client closing without close_notify? */
static int
tls_error_is_eof(struct tls *t)
{
	const char	*e = tls_error(t);

	return (e == NULL || strstr(e, "unexpected eof") != NULL ||
	    strstr(e, "EOF") != NULL);
}

ssize_t
eng_read(struct conn *c, void *buf, size_t len)
{
	ssize_t	 n;

	if (c->ssl != NULL) {
		n = ossl_read(c->ssl, buf, len);
		return (n == OSSL_ABORTED ? ENG_ABORTED : n);
	}
	if ((n = tls_read(c->tls, buf, len)) == -1 && tls_error_is_eof(c->tls))
		n = ENG_ABORTED;
	return (n);
}

ssize_t
eng_write(struct conn *c, const void *buf, size_t len)
{
	return (c->ssl != NULL ? ossl_write(c->ssl, buf, len) :
	    tls_write(c->tls, buf, len));
}

/* Whether the client's socket was found empty (OpenSSL relay only). */
int
eng_drained(struct conn *c)
{
	return (c->ssl != NULL && ossl_drained(c->ssl));
}

/* Send what the engine gathered for the client (OpenSSL relay only). */
int
eng_flush(struct conn *c)
{
	return (c->ssl != NULL ? ossl_flush(c->ssl) : 0);
}

int
eng_close(struct conn *c)
{
	return (c->ssl != NULL ? ossl_close(c->ssl) : tls_close(c->tls));
}

const char *
eng_error(struct conn *c)
{
	const char	*e;

	if (c->ssl != NULL)
		return (ossl_error());
	return ((e = tls_error(c->tls)) != NULL ? e : "unknown error");
}

/* ALPN and SNI as the session settled them, copied into the conn. */
int
eng_names(struct conn *c)
{
	const unsigned char	*p;
	const char		*alpn, *sni;
	unsigned int		 len;

	if (c->ssl != NULL) {
		SSL_get0_alpn_selected(c->ssl, &p, &len);
		if (len > 0 && (c->alpn = strndup((const char *)p, len)) ==
		    NULL)
			return (-1);
		sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	} else {
		if ((alpn = tls_conn_alpn_selected(c->tls)) != NULL &&
		    (c->alpn = strdup(alpn)) == NULL)
			return (-1);
		sni = tls_conn_servername(c->tls);
	}
	if (sni != NULL && (c->sni = strdup(sni)) == NULL)
		return (-1);
	return (0);
}

const char *
eng_version(struct conn *c)
{
	const char	*v;

	v = c->ssl != NULL ? SSL_get_version(c->ssl) :
	    tls_conn_version(c->tls);
	return (v != NULL ? v : "");
}

const char *
eng_cipher(struct conn *c)
{
	const char	*v;

	v = c->ssl != NULL ? SSL_get_cipher_name(c->ssl) :
	    tls_conn_cipher(c->tls);
	return (v != NULL ? v : "");
}

/* Whether the handshake resumed a session. */
int
eng_resumed(struct conn *c)
{
	return (c->ssl != NULL ? SSL_session_reused(c->ssl) :
	    tls_conn_session_resumed(c->tls) == 1);
}

/* The verified client certificate, if one was presented. */
X509 *
eng_peer(struct conn *c)
{
	const uint8_t	*pem;
	X509		*x = NULL;
	BIO		*bio;
	size_t		 len;

	if (c->ssl != NULL)
		return (SSL_get1_peer_certificate(c->ssl));
	if (!tls_peer_cert_provided(c->tls) ||
	    (pem = tls_peer_cert_chain_pem(c->tls, &len)) == NULL ||
	    len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return (NULL);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return (x);
}
