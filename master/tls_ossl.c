/*
 * The master's OpenSSL engine.
 *
 * It mirrors what the libtls engine does with the same configuration:
 * one context per keypair, the first the default and the others chosen
 * by SNI against the names in their certificate; ALPN chosen by the
 * server's order of preference, none if the client offers nothing on
 * the list; client certificates verified when presented, required by
 * a few protocols.  The keypair is chosen from the ClientHello's bytes,
 * before OpenSSL opens a ticket: a session resumes only with the
 * keypair, and the client CAs, it was made with.  Tickets are sealed
 * with the supervisor's keys (tickets.h); those sent under the
 * application key are counted, and their count is the record sequence
 * handed to the kernel.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "casign.h"
#include "ktls_install.h"
#include "sni.h"
#include "tickets.h"
#include "tls_ossl.h"

/* Tickets a full TLS 1.3 handshake issues; OpenSSL sends one on resumption. */
#define TICKETS_PER_HANDSHAKE	2

struct ossl_server {
	SSL_CTX		**ctx;		/* one per keypair, [0] the default */
	X509		**leaf;
	size_t		 n;
	unsigned char	*alpn;		/* wire format, in preference order */
	size_t		 alpn_len;
	int		 ktls;		/* sessions may go to the kernel */
	int		 verify;	/* client certificates are verified */
};

/*
 * Protocols whose clients must show a certificate: an agent's tunnel
 * without one fails the handshake (certificate_required), not later.
 */
static const char *const alpn_cert_required[] = {
	"mezite-tunnel",
	"mezite-cluster-tunnel",
};

static int	 verify_cb(int, X509_STORE_CTX *);

/*
 * The socket of a relayed session, as OpenSSL sees it.  Reads note
 * whether they emptied the socket, so that the relay does not try it
 * again before epoll says so.  Records to the client gather in a buffer:
 * one pass of the relay often writes several (a 64 KiB read from the
 * worker is four), and they leave in one send(2) when the pass ends or
 * the buffer is full.  The buffer exists only while it holds something.
 */
struct relay_bio {
	int		 fd;
	int		 eof;		/* read(2) said end of file */
	int		 drained;	/* the last read(2) emptied the socket */
	uint8_t		*buf;		/* records not sent yet */
	size_t		 off, len;
};

/* Four whole records, with their headers, tags and padding. */
#define OBUF_SIZE	(4 * SSL3_RT_MAX_ENCRYPTED_LENGTH)
/* Read ahead this much: four records in one read(2). */
#define RBUF_SIZE	(4 * SSL3_RT_MAX_ENCRYPTED_LENGTH)

static BIO_METHOD	*relay_method;
static int		(*cert_revoked)(X509 *);
/* The supervisor's, the same for every context: n == 0 until they come. */
static struct ticket_keys	 tkeys;
static int		 relay_type;
static char		 ossl_errbuf[256];

/* The text of OpenSSL's last error, "unknown" if there is none. */
const char *
ossl_error(void)
{
	unsigned long	 e;

	if ((e = ERR_peek_last_error()) == 0)
		return (errno ? strerror(errno) : "unknown error");
	ERR_error_string_n(e, ossl_errbuf, sizeof(ossl_errbuf));
	return (ossl_errbuf);
}

/*
 * Choose the keypair whose certificate names the ClientHello's server
 * name, the first one if none does.  This runs before OpenSSL looks at
 * a ticket, so the ticket is checked against that keypair's session id
 * context (sid_ctx_of()); OpenSSL's servername callback would come
 * after a TLS 1.3 ticket had been taken, in the default's context.  A
 * server_name OpenSSL would refuse is left for it to refuse.
 */
static int
client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct ossl_server	*srv = arg;
	const unsigned char	*ext;
	size_t			 len, i;
	char			 name[SNI_HOST_MAX + 1];

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext,
	    &len) != 1 || sni_host(ext, len, name, sizeof(name)) == -1)
		return (SSL_CLIENT_HELLO_SUCCESS);
	for (i = 0; i < srv->n; i++) {
		if (X509_check_host(srv->leaf[i], name, 0, 0, NULL) != 1)
			continue;
		if (SSL_get_SSL_CTX(ssl) != srv->ctx[i] &&
		    SSL_set_SSL_CTX(ssl, srv->ctx[i]) == NULL) {
			*alert = SSL_AD_INTERNAL_ERROR;
			return (SSL_CLIENT_HELLO_ERROR);
		}
		break;
	}
	return (SSL_CLIENT_HELLO_SUCCESS);
}

/*
 * The server name is acknowledged, the context already chosen: without
 * this callback OpenSSL takes none, and a TLS 1.2 session would keep
 * no name to be routed by when it resumes.
 */
static int
servername_cb(SSL *ssl, int *alert, void *arg)
{
	return (SSL_TLSEXT_ERR_OK);
}

static int
alpn_needs_cert(const unsigned char *p, unsigned int len)
{
	size_t	 i;

	for (i = 0; i < sizeof(alpn_cert_required) /
	    sizeof(alpn_cert_required[0]); i++)
		if (strlen(alpn_cert_required[i]) == len &&
		    memcmp(alpn_cert_required[i], p, len) == 0)
			return (1);
	return (0);
}

/*
 * The first protocol of our list that the client offers.  It is chosen
 * before the server asks for a certificate, so that the choice can make
 * one required.
 */
static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct ossl_server	*srv = arg;
	size_t			 i, j;

	for (i = 0; i < srv->alpn_len; i += 1 + srv->alpn[i]) {
		for (j = 0; j < inlen; j += 1 + in[j]) {
			if (j + 1 + in[j] > inlen)
				return (SSL_TLSEXT_ERR_NOACK);
			if (in[j] == srv->alpn[i] && memcmp(in + j + 1,
			    srv->alpn + i + 1, in[j]) == 0) {
				*out = in + j + 1;
				*outlen = in[j];
				if (srv->verify && alpn_needs_cert(*out,
				    *outlen))
					SSL_set_verify(ssl, SSL_VERIFY_PEER |
					    SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
					    verify_cb);
				return (SSL_TLSEXT_ERR_OK);
			}
		}
	}
	return (SSL_TLSEXT_ERR_NOACK);
}

/* "h2,http/1.1" to the length-prefixed wire format. */
static int
alpn_wire(const char *list, unsigned char **out, size_t *outlen)
{
	unsigned char	*w;
	const char	*p, *q;
	size_t		 n = 0, len = strlen(list);

	*out = NULL;
	*outlen = 0;
	if (len == 0)
		return (0);
	if ((w = malloc(len + 1)) == NULL)
		return (-1);
	for (p = list; *p != '\0'; p = *q ? q + 1 : q) {
		if ((q = strchr(p, ',')) == NULL)
			q = p + strlen(p);
		if (q == p || q - p > 255) {
			free(w);
			return (-1);
		}
		w[n++] = (unsigned char)(q - p);
		memcpy(w + n, p, q - p);
		n += q - p;
	}
	*out = w;
	*outlen = n;
	return (0);
}

/*
 * libtls's named cipher sets, as OpenSSL cipher strings for TLS 1.2.
 * The libtls engine passes these too: built on OpenSSL (libretls), its
 * own "secure" also admits AES-CCM with 8-byte tags.
 */
const char *
ossl_ciphers(const char *s)
{
	if (strcasecmp(s, "secure") == 0 || strcasecmp(s, "default") == 0)
		return ("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20");
	if (strcasecmp(s, "compat") == 0)
		return ("HIGH:!aNULL");
	if (strcasecmp(s, "legacy") == 0)
		return ("HIGH:MEDIUM:!aNULL");
	if (strcasecmp(s, "insecure") == 0 || strcasecmp(s, "all") == 0)
		return ("ALL:!aNULL:!eNULL");
	return (s);
}

static int
protocols_map(const char *s, int *min, int *max)
{
	static const struct {
		uint32_t	 bit;
		int		 version;
	} v[] = {
		{ TLS_PROTOCOL_TLSv1_0,	TLS1_VERSION },
		{ TLS_PROTOCOL_TLSv1_1,	TLS1_1_VERSION },
		{ TLS_PROTOCOL_TLSv1_2,	TLS1_2_VERSION },
		{ TLS_PROTOCOL_TLSv1_3,	TLS1_3_VERSION },
	};
	uint32_t	 protocols;
	size_t		 i;

	if (tls_config_parse_protocols(&protocols, s) == -1)
		return (-1);
	*min = *max = 0;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if ((protocols & v[i].bit) == 0)
			continue;
		if (*min == 0)
			*min = v[i].version;
		*max = v[i].version;
	}
	return (*min == 0 ? -1 : 0);
}

static X509_STORE *
store_from_pem(const uint8_t *pem, size_t len, STACK_OF(X509_NAME) **names)
{
	X509_STORE	*st;
	X509		*x;
	BIO		*bio;
	int		 n = 0;

	if ((st = X509_STORE_new()) == NULL ||
	    (*names = sk_X509_NAME_new_null()) == NULL ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		X509_STORE_free(st);
		return (NULL);
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1 ||
		    sk_X509_NAME_push(*names,
		    X509_NAME_dup(X509_get_subject_name(x))) <= 0) {
			X509_free(x);
			goto fail;
		}
		X509_free(x);
		n++;
	}
	ERR_clear_error();		/* the end of the PEM stream */
	BIO_free(bio);
	if (n == 0) {
		X509_STORE_free(st);
		sk_X509_NAME_pop_free(*names, X509_NAME_free);
		return (NULL);
	}
	return (st);
 fail:
	BIO_free(bio);
	X509_STORE_free(st);
	sk_X509_NAME_pop_free(*names, X509_NAME_free);
	return (NULL);
}

static int
keypair_load(SSL_CTX *ctx, const Mezite__Keypair *kp, X509 **leaf)
{
	EVP_PKEY	*pkey = NULL;
	X509		*x;
	BIO		*bio;
	int		 ok = 0;

	if ((bio = BIO_new_mem_buf(kp->cert.data, (int)kp->cert.len)) == NULL)
		return (-1);
	if ((*leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, *leaf) != 1)
		goto done;
	/* The rest of the file is the chain. */
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			goto done;
		}
	ERR_clear_error();
	BIO_free(bio);
	bio = NULL;
	if (kp->key.len == 0) {
		/* The master's: the ca process signs. */
		if ((pkey = ca_client_key(*leaf)) == NULL ||
		    SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
			goto done;
	} else if ((bio = BIO_new_mem_buf(kp->key.data,
	    (int)kp->key.len)) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto done;
	ok = 1;
 done:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return (ok ? 0 : -1);
}

/* Who says whether a client certificate was revoked. */
void
ossl_set_revoked(int (*fn)(X509 *))
{
	cert_revoked = fn;
}

/*
 * The supervisor's session ticket keys, for every context, the running
 * ones and those built later.  The old ones are wiped.
 */
void
ossl_set_ticket_keys(const struct ticket_keys *tk)
{
	explicit_bzero(&tkeys, sizeof(tkeys));
	memcpy(&tkeys, tk, sizeof(tkeys));
}

static int
ticket_mac_init(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
	OSSL_PARAM	 params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return (EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1);
}

/*
 * Seal a ticket with the current key, or open one with whichever live
 * key its name says: 0 (a full handshake) for a key that is gone; 2
 * (open it, and issue new ones) for the previous key, and in TLS 1.3
 * always, where clients should use a ticket only once (RFC 8446, C.4)
 * and would otherwise run out after the first two resumptions.
 */
static int
ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct ticket_key	*k;
	uint32_t		 i;

	if (tkeys.n == 0)
		return (0);
	if (enc) {
		k = &tkeys.key[0];
		memcpy(name, k->name, TICKET_NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(
		    EVP_aes_256_cbc())) != 1 ||
		    EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) != 1 || ticket_mac_init(hctx, k) == -1)
			return (-1);
		return (1);
	}
	for (i = 0; i < tkeys.n; i++) {
		k = &tkeys.key[i];
		if (memcmp(name, k->name, TICKET_NAME_LEN) != 0)
			continue;
		if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) != 1 || ticket_mac_init(hctx, k) == -1)
			return (-1);
		return (i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2);
	}
	return (0);
}

/*
 * The session id context of a keypair's context: resumption only with
 * the certificate the session was made with, and within the same
 * client CAs, so that a ticket is taken neither under another name nor
 * by a configuration that would not have verified its certificate.
 */
static int
sid_ctx_of(const Mezite__MasterConfig *mc, X509 *leaf, unsigned char *out)
{
	EVP_MD_CTX	*md;
	unsigned char	 fp[EVP_MAX_MD_SIZE];
	unsigned int	 fplen;
	int		 ok;

	if (X509_digest(leaf, EVP_sha256(), fp, &fplen) != 1 ||
	    (md = EVP_MD_CTX_new()) == NULL)
		return (-1);
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, fp, fplen) == 1 &&
	    EVP_DigestUpdate(md, mc->client_ca.data, mc->client_ca.len) == 1 &&
	    EVP_DigestFinal_ex(md, out, NULL) == 1;
	EVP_MD_CTX_free(md);
	return (ok ? 0 : -1);
}

/* A revoked client certificate fails the handshake with its alert. */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	X509	*x;

	if (ok && cert_revoked != NULL &&
	    X509_STORE_CTX_get_error_depth(xs) == 0 &&
	    (x = X509_STORE_CTX_get_current_cert(xs)) != NULL &&
	    cert_revoked(x)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
		return (0);
	}
	return (ok);
}

struct ossl_server *
ossl_server_build(const Mezite__MasterConfig *mc, Mezite__Keypair **kp,
    size_t nkp, char *err, size_t errlen)
{
	struct ossl_server	*srv;
	STACK_OF(X509_NAME)	*names = NULL;
	X509_STORE		*store = NULL;
	unsigned char		 sid_ctx[SHA256_DIGEST_LENGTH];
	int			 min, max, tickets;
	size_t			 i;

	if (nkp == 0) {
		(void)snprintf(err, errlen, "no tls keypair");
		return (NULL);
	}
	if (protocols_map(mc->tls_protocols, &min, &max) == -1) {
		(void)snprintf(err, errlen, "tls protocols \"%s\": invalid",
		    mc->tls_protocols);
		return (NULL);
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL ||
	    (srv->ctx = calloc(nkp, sizeof(*srv->ctx))) == NULL ||
	    (srv->leaf = calloc(nkp, sizeof(*srv->leaf))) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		goto fail;
	}
	srv->n = nkp;
	srv->ktls = mc->ktls;
	if (alpn_wire(mc->n_alpn > 0 ? mc->alpn[0] : "", &srv->alpn,
	    &srv->alpn_len) == -1) {
		(void)snprintf(err, errlen, "alpn: invalid list");
		goto fail;
	}
	if (mc->client_ca.len > 0 && (store = store_from_pem(mc->client_ca.data,
	    mc->client_ca.len, &names)) == NULL) {
		(void)snprintf(err, errlen, "tls client ca: no certificate");
		goto fail;
	}

	tickets = mc->tls_tickets && mc->ticket_lifetime > 0;

	for (i = 0; i < nkp; i++) {
		SSL_CTX	*ctx;

		if ((ctx = srv->ctx[i] = SSL_CTX_new(TLS_server_method())) ==
		    NULL)
			goto sslfail;
		if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
		    SSL_CTX_set_max_proto_version(ctx, max) != 1 ||
		    SSL_CTX_set_cipher_list(ctx,
		    ossl_ciphers(mc->tls_ciphers)) != 1 ||
		    SSL_CTX_set_num_tickets(ctx,
		    tickets ? TICKETS_PER_HANDSHAKE : 0) != 1 ||
		    (mc->ktls && ktls_ctx_init(ctx) == -1))
			goto sslfail;
		if (SSL_CTX_set1_groups_list(ctx, mc->tls_groups) != 1) {
			(void)snprintf(err, errlen, "tls groups \"%s\": %s",
			    mc->tls_groups, ossl_error());
			goto fail;
		}
		/*
		 * Not SSL_OP_IGNORE_UNEXPECTED_EOF: an end of stream
		 * without close_notify must not look like a clean one.
		 */
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
		    SSL_OP_NO_RENEGOTIATION);
		/*
		 * Stateless tickets sealed with the supervisor's keys, the
		 * same on every context; resumption in TLS 1.3 keeps its
		 * (EC)DHE (no SSL_OP_ALLOW_NO_DHE_KEX).  A ticket is good
		 * for at most two key lifetimes.
		 */
		if (tickets) {
			SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET |
			    SSL_OP_ALLOW_NO_DHE_KEX);
			if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx,
			    ticket_cb) != 1)
				goto sslfail;
			(void)SSL_CTX_set_timeout(ctx,
			    2 * (long)mc->ticket_lifetime);
		} else
			SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		if (mc->ktls)
			SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
		/* Idle sessions give their record buffers back. */
		SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
		    SSL_MODE_RELEASE_BUFFERS);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, srv);
		SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, srv);
		if (store != NULL) {
			STACK_OF(X509_NAME)	*dup;

			SSL_CTX_set1_cert_store(ctx, store);
			if ((dup = SSL_dup_CA_list(names)) == NULL)
				goto sslfail;
			SSL_CTX_set_client_CA_list(ctx, dup);
			/* Verified when presented, required by a few ALPNs. */
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
			srv->verify = 1;
		}
		if (keypair_load(ctx, kp[i], &srv->leaf[i]) == -1) {
			(void)snprintf(err, errlen, "tls keypair \"%s\": %s",
			    kp[i]->name, ossl_error());
			goto fail;
		}
		if (sid_ctx_of(mc, srv->leaf[i], sid_ctx) == -1 ||
		    SSL_CTX_set_session_id_context(ctx, sid_ctx,
		    sizeof(sid_ctx)) != 1)
			goto sslfail;
	}
	X509_STORE_free(store);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	return (srv);

 sslfail:
	(void)snprintf(err, errlen, "tls: %s", ossl_error());
 fail:
	X509_STORE_free(store);
	if (names != NULL)
		sk_X509_NAME_pop_free(names, X509_NAME_free);
	ossl_server_free(srv);
	return (NULL);
}

void
ossl_server_free(struct ossl_server *srv)
{
	size_t	 i;

	if (srv == NULL)
		return;
	for (i = 0; i < srv->n; i++) {
		SSL_CTX_free(srv->ctx ? srv->ctx[i] : NULL);
		X509_free(srv->leaf ? srv->leaf[i] : NULL);
	}
	free(srv->ctx);
	free(srv->leaf);
	free(srv->alpn);
	free(srv);
}

SSL *
ossl_accept(struct ossl_server *srv, int fd)
{
	SSL	*ssl;

	if ((ssl = SSL_new(srv->ctx[0])) == NULL)
		return (NULL);
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return (NULL);
	}
	SSL_set_accept_state(ssl);
	return (ssl);
}

/* Whether sessions of this context are to go to the kernel. */
int
ossl_ktls(const struct ossl_server *srv)
{
	return (srv->ktls);
}

/* Send what is buffered: 0 when all is out, -1 with errno (EAGAIN). */
static int
relay_bio_send(struct relay_bio *r)
{
	ssize_t	 w;

	while (r->len > 0) {
		if ((w = send(r->fd, r->buf + r->off, r->len,
		    MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		r->off += w;
		r->len -= w;
	}
	free(r->buf);
	r->buf = NULL;
	r->off = 0;
	return (0);
}

static int
relay_bio_read(BIO *b, char *buf, int len)
{
	struct relay_bio	*r = BIO_get_data(b);
	ssize_t			 n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return (0);
	while ((n = read(r->fd, buf, len)) == -1 && errno == EINTR)
		;
	r->drained = n < len;
	if (n == 0)
		r->eof = 1;
	else if (n == -1 && errno == EAGAIN)
		BIO_set_retry_read(b);
	return ((int)n);
}

static int
relay_bio_write(BIO *b, const char *data, int dlen)
{
	struct relay_bio	*r = BIO_get_data(b);
	size_t			 len = dlen;

	BIO_clear_retry_flags(b);
	if (dlen <= 0)
		return (0);
	if (r->len + len > OBUF_SIZE && relay_bio_send(r) == -1) {
		if (errno != EAGAIN)
			return (-1);
		if (r->len + len > OBUF_SIZE) {
			BIO_set_retry_write(b);
			return (-1);
		}
	}
	if (len > OBUF_SIZE)
		len = OBUF_SIZE;	/* not a record: take what fits */
	if (r->buf == NULL) {
		if ((r->buf = malloc(OBUF_SIZE)) == NULL)
			return (-1);
	} else if (r->off + r->len + len > OBUF_SIZE) {
		memmove(r->buf, r->buf + r->off, r->len);
		r->off = 0;
	}
	memcpy(r->buf + r->off + r->len, data, len);
	r->len += len;
	return ((int)len);
}

static long
relay_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct relay_bio	*r = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		/* OpenSSL flushes its alerts; a short send is finished later. */
		return (relay_bio_send(r) == 0 || errno == EAGAIN);
	case BIO_CTRL_WPENDING:
		return ((long)r->len);
	case BIO_CTRL_EOF:
		return (r->eof);
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = r->fd;
		return (r->fd);
	default:
		return (0);
	}
}

static int
relay_bio_destroy(BIO *b)
{
	struct relay_bio	*r = BIO_get_data(b);

	if (r != NULL) {
		free(r->buf);
		free(r);
		BIO_set_data(b, NULL);
	}
	return (1);
}

static BIO *
relay_bio_new(int fd)
{
	struct relay_bio	*r;
	BIO			*b;

	if (relay_method == NULL) {
		if ((relay_type = BIO_get_new_index()) == -1)
			return (NULL);
		relay_type |= BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
		if ((relay_method = BIO_meth_new(relay_type,
		    "mezite relay")) == NULL)
			return (NULL);
		if (BIO_meth_set_read(relay_method, relay_bio_read) != 1 ||
		    BIO_meth_set_write(relay_method, relay_bio_write) != 1 ||
		    BIO_meth_set_ctrl(relay_method, relay_bio_ctrl) != 1 ||
		    BIO_meth_set_destroy(relay_method,
		    relay_bio_destroy) != 1) {
			BIO_meth_free(relay_method);
			relay_method = NULL;
			return (NULL);
		}
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (NULL);
	if ((b = BIO_new(relay_method)) == NULL) {
		free(r);
		return (NULL);
	}
	r->fd = fd;
	BIO_set_data(b, r);
	BIO_set_init(b, 1);
	return (b);
}

static struct relay_bio *
relay_bio_of(SSL *ssl)
{
	BIO	*b = SSL_get_wbio(ssl);

	if (relay_method == NULL || b == NULL ||
	    BIO_method_type(b) != relay_type)
		return (NULL);
	return (BIO_get_data(b));
}

/*
 * The session stays here to be relayed: read ahead, several records a
 * read(2), through a struct relay_bio.  Not before: what OpenSSL has
 * read ahead cannot go to the kernel, nor can what it would write
 * through the kernel's TLS be buffered here.
 */
int
ossl_relay(SSL *ssl, int fd)
{
	BIO	*b;

	/* Tickets are counted for the kernel only: not per record here. */
	SSL_set_msg_callback(ssl, NULL);
	SSL_set_read_ahead(ssl, 1);
	SSL_set_default_read_buffer_len(ssl, RBUF_SIZE);
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)) ||
	    BIO_get_ktls_recv(SSL_get_rbio(ssl)))
		return (0);
	if ((b = relay_bio_new(fd)) == NULL)
		return (-1);
	SSL_set_bio(ssl, b, b);
	return (0);
}

/*
 * Send the records that the relay's pass gathered: 0 when all are out,
 * TLS_WANT_POLLOUT if the socket is full, -1 if it is broken.
 */
int
ossl_flush(SSL *ssl)
{
	struct relay_bio	*r;

	if ((r = relay_bio_of(ssl)) == NULL || relay_bio_send(r) == 0)
		return (0);
	return (errno == EAGAIN ? TLS_WANT_POLLOUT : -1);
}

/*
 * Whether the socket was empty at the last read and OpenSSL holds
 * nothing more: reading again would only fail with EAGAIN.
 */
int
ossl_drained(SSL *ssl)
{
	struct relay_bio	*r;

	return ((r = relay_bio_of(ssl)) != NULL && r->drained &&
	    !SSL_has_pending(ssl));
}

/*
 * libtls's return conventions for an OpenSSL result: 0 is the client's
 * close_notify, OSSL_ABORTED an end of stream without it.
 */
static int
ossl_result(SSL *ssl, int ret)
{
	unsigned long	 e;

	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return (TLS_WANT_POLLIN);
	case SSL_ERROR_WANT_WRITE:
		return (TLS_WANT_POLLOUT);
	case SSL_ERROR_ZERO_RETURN:
		return (0);
	case SSL_ERROR_SSL:
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			return (OSSL_ABORTED);
		return (-1);
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && errno == 0)
			return (OSSL_ABORTED);
		return (-1);
	default:
		return (-1);
	}
}

/* Anything but a wait is a failure, outside of reading. */
static int
ossl_fail(int ret)
{
	return (ret == TLS_WANT_POLLIN || ret == TLS_WANT_POLLOUT ? ret : -1);
}

/*
 * A resumed session skips verification: its client certificate, kept
 * in the ticket, is checked again here against the clock, which may
 * have passed its end since the ticket was issued, and against the
 * revoked serials.  A session made without one is refused for a
 * protocol that requires one: no certificate is asked for on
 * resumption.
 */
static int
ossl_resumed_refused(SSL *ssl)
{
	X509	*x;

	if (!SSL_session_reused(ssl))
		return (0);
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL) {
		/*
		 * A session made without a certificate, resumed for a
		 * protocol that requires one (alpn_cb()).
		 */
		if ((SSL_get_verify_mode(ssl) &
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT) == 0)
			return (0);
		ERR_raise_data(ERR_LIB_SSL,
		    SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, "resumed session");
		return (1);
	}
	/* -1: earlier than now; 0: not a time we can read. */
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		ERR_raise_data(ERR_LIB_SSL,
		    SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, "resumed session");
		return (1);
	}
	if (cert_revoked == NULL || !cert_revoked(x))
		return (0);
	ERR_raise_data(ERR_LIB_SSL, SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED,
	    "resumed session");
	return (1);
}

int
ossl_handshake(SSL *ssl)
{
	int	 ret;

	ERR_clear_error();
	errno = 0;
	if ((ret = SSL_do_handshake(ssl)) == 1)
		return (ossl_resumed_refused(ssl) ? -1 : 0);
	return (ossl_fail(ossl_result(ssl, ret)));
}

/*
 * Read what has come: the records already read ahead come along, and
 * the socket is asked only once.  An error after some data is seen on
 * the next call.
 */
ssize_t
ossl_read(SSL *ssl, void *buf, size_t len)
{
	size_t	 n = 0;
	int	 ret;

	do {
		ERR_clear_error();
		errno = 0;
		if ((ret = SSL_read(ssl, (uint8_t *)buf + n,
		    len - n > INT_MAX ? INT_MAX : (int)(len - n))) <= 0)
			break;
		n += ret;
	} while (n < len && SSL_has_pending(ssl));
	if (n > 0)
		return (n);
	return (ossl_result(ssl, ret));
}

ssize_t
ossl_write(SSL *ssl, const void *buf, size_t len)
{
	int	 ret;

	ERR_clear_error();
	errno = 0;
	if ((ret = SSL_write(ssl, buf, len > INT_MAX ? INT_MAX : (int)len)) >
	    0)
		return (ret);
	return (ossl_fail(ossl_result(ssl, ret)));
}

/*
 * Send close_notify, after what the relay still holds for the client;
 * the peer's is not waited for.  Through a struct relay_bio, the alert
 * goes into an empty buffer, so once SSL_shutdown() has been called it
 * only has to be sent: calling it again would wait for the peer's.
 */
int
ossl_close(SSL *ssl)
{
	int	 ret;

	if ((ret = ossl_flush(ssl)) != 0)
		return (ret);
	if (relay_bio_of(ssl) != NULL &&
	    (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return (0);
	ERR_clear_error();
	errno = 0;
	if ((ret = SSL_shutdown(ssl)) >= 0)
		return (ossl_flush(ssl));
	return (ossl_fail(ossl_result(ssl, ret)));
}

/*
 * Put a completed session in the kernel.  TLS 1.3 keys come from the
 * captured traffic secrets; for TLS 1.2, OpenSSL installed them itself
 * during the handshake if it could, and both directions must be there.
 * Returns 0 on success, -1 if the session stays in userspace (err says
 * why), -2 if it can no longer be used at all.
 */
int
ossl_offload(int fd, SSL *ssl, char *err, size_t errlen)
{
	if (SSL_version(ssl) == TLS1_2_VERSION) {
		if (BIO_get_ktls_send(SSL_get_wbio(ssl)) &&
		    BIO_get_ktls_recv(SSL_get_rbio(ssl)))
			return (0);
		(void)snprintf(err, errlen, "TLS 1.2 keys not offloaded for "
		    "%s", SSL_get_cipher_name(ssl));
		/* With only one direction in the kernel, neither side works. */
		if (BIO_get_ktls_send(SSL_get_wbio(ssl)) ||
		    BIO_get_ktls_recv(SSL_get_rbio(ssl)))
			return (-2);
		return (-1);
	}
	/* The session tickets went out under the application key. */
	return (ktls_offload(fd, ssl, ktls_tickets_sent(ssl),
	    BIO_get_ktls_send(SSL_get_wbio(ssl)), err, errlen));
}
