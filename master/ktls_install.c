/*
 * The master's half of kernel TLS.
 *
 * libtls exposes no traffic secrets, so an offloaded session is driven
 * through libssl.  OpenSSL 3.0 has no call that returns the TLS 1.3
 * application traffic secrets either; its keylog callback is the only
 * place they appear.  The callback keeps them with the SSL object, and
 * after the handshake the key and IV of each direction are derived with
 * HKDF-Expand-Label (RFC 8446, 7.1 and 7.3).
 *
 * The handoff is safe only when OpenSSL holds no record it has read
 * past Finished: with read-ahead off (ossl_relay() turns it on only for
 * sessions that stay to be relayed) it reads exactly one record at a
 * time, and SSL_has_pending() must be 0.  Records the
 * client sent after Finished then wait in the socket and the kernel
 * decrypts them with the RX key, from sequence number 0.
 */

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "ktls_install.h"

#ifdef __linux__
#include <linux/tls.h>
#endif

static int	 ktls_exidx = -1;

static void
secrets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	if (ptr != NULL) {
		explicit_bzero(ptr, sizeof(struct ktls_secrets));
		free(ptr);
	}
}

static int
unhex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t	 n = 0;
	int	 hi, lo;

	while (isxdigit((unsigned char)s[0]) && isxdigit((unsigned char)s[1])) {
		if (n == max)
			return (-1);
		hi = isdigit((unsigned char)s[0]) ? s[0] - '0' :
		    tolower((unsigned char)s[0]) - 'a' + 10;
		lo = isdigit((unsigned char)s[1]) ? s[1] - '0' :
		    tolower((unsigned char)s[1]) - 'a' + 10;
		out[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	if (*s != '\0' && *s != '\n')
		return (-1);
	*len = n;
	return (0);
}

static struct ktls_secrets *
secrets_of(const SSL *ssl)
{
	struct ktls_secrets	*ks;

	if ((ks = SSL_get_ex_data(ssl, ktls_exidx)) == NULL) {
		if ((ks = calloc(1, sizeof(*ks))) == NULL)
			return (NULL);
		if (SSL_set_ex_data((SSL *)ssl, ktls_exidx, ks) != 1) {
			free(ks);
			return (NULL);
		}
	}
	return (ks);
}

/* "LABEL <client random> <secret>", one line per secret. */
static void
keylog(const SSL *ssl, const char *line)
{
	struct ktls_secrets	*ks;
	const char		*p;
	int			 client;

	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
		client = 1;
	else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0)
		client = 0;
	else
		return;

	if ((ks = secrets_of(ssl)) == NULL)
		return;
	if ((p = strchr(line + 24, ' ')) == NULL ||
	    unhex(p + 1, client ? ks->client : ks->server, KTLS_SECRET_MAX,
	    client ? &ks->client_len : &ks->server_len) == -1) {
		if (client)
			ks->client_len = 0;
		else
			ks->server_len = 0;
	}
}

/*
 * Count the TLS 1.3 session tickets sent: OpenSSL writes each
 * NewSessionTicket in a record of its own, under the server's
 * application key, so their number is the sequence number the kernel
 * must start sending at.  A secrets record that could not be made
 * leaves the session without secrets: it is relayed.
 */
static void
ticket_count(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
	struct ktls_secrets	*ks;

	if (!write_p || content_type != SSL3_RT_HANDSHAKE || len == 0 ||
	    *(const uint8_t *)buf != SSL3_MT_NEWSESSION_TICKET ||
	    SSL_version(ssl) != TLS1_3_VERSION)
		return;
	if ((ks = secrets_of(ssl)) != NULL)
		ks->tickets++;
}

uint64_t
ktls_tickets_sent(const SSL *ssl)
{
	struct ktls_secrets	*ks;

	if ((ks = SSL_get_ex_data(ssl, ktls_exidx)) == NULL)
		return (0);
	return (ks->tickets);
}

/* Capture secrets, and count tickets, on every session of the context. */
int
ktls_ctx_init(SSL_CTX *ctx)
{
	if (ktls_exidx == -1 && (ktls_exidx = SSL_get_ex_new_index(0, NULL,
	    NULL, NULL, secrets_free)) == -1)
		return (-1);
	SSL_CTX_set_keylog_callback(ctx, keylog);
	SSL_CTX_set_msg_callback(ctx, ticket_count);
	return (0);
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446, 7.1. */
int
ktls_hkdf_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen,
    const char *label, uint8_t *out, size_t len)
{
	EVP_PKEY_CTX	*pctx;
	uint8_t		 info[2 + 1 + 255 + 1];
	size_t		 llen = strlen(label), ilen, olen = len;
	int		 ok;

	if (6 + llen > 255 || len > 0xffff)
		return (-1);
	info[0] = (uint8_t)(len >> 8);
	info[1] = (uint8_t)len;
	info[2] = (uint8_t)(6 + llen);
	memcpy(info + 3, "tls13 ", 6);
	memcpy(info + 9, label, llen);
	info[9 + llen] = 0;		/* empty context */
	ilen = 10 + llen;

	if ((pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL)) == NULL)
		return (-1);
	ok = EVP_PKEY_derive_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_mode(pctx,
	    EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_md(pctx, md) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_key(pctx, secret, (int)slen) == 1 &&
	    EVP_PKEY_CTX_add1_hkdf_info(pctx, info, (int)ilen) == 1 &&
	    EVP_PKEY_derive(pctx, out, &olen) == 1 && olen == len;
	EVP_PKEY_CTX_free(pctx);
	return (ok ? 0 : -1);
}

/* The key and IV for one direction from its traffic secret. */
int
ktls_derive(const SSL *ssl, const uint8_t *secret, size_t slen,
    struct ktls_keys *k)
{
#ifdef __linux__
	const SSL_CIPHER	*cipher;
	const EVP_MD		*md;

	memset(k, 0, sizeof(*k));
	if ((cipher = SSL_get_current_cipher(ssl)) == NULL ||
	    (md = SSL_CIPHER_get_handshake_digest(cipher)) == NULL)
		return (-1);
	switch (SSL_CIPHER_get_id(cipher) & 0xffff) {
	case 0x1301:		/* TLS_AES_128_GCM_SHA256 */
		k->cipher = TLS_CIPHER_AES_GCM_128;
		k->key_len = 16;
		break;
	case 0x1302:		/* TLS_AES_256_GCM_SHA384 */
		k->cipher = TLS_CIPHER_AES_GCM_256;
		k->key_len = 32;
		break;
	case 0x1303:		/* TLS_CHACHA20_POLY1305_SHA256 */
		k->cipher = TLS_CIPHER_CHACHA20_POLY1305;
		k->key_len = 32;
		break;
	default:
		return (-1);
	}
	if ((size_t)EVP_MD_get_size(md) != slen ||
	    ktls_hkdf_expand_label(md, secret, slen, "key", k->key,
	    k->key_len) == -1 ||
	    ktls_hkdf_expand_label(md, secret, slen, "iv", k->iv,
	    sizeof(k->iv)) == -1) {
		explicit_bzero(k, sizeof(*k));
		return (-1);
	}
	return (0);
#else
	return (-1);
#endif
}

/*
 * Move a completed TLS 1.3 session into the kernel.  tx_seq is the
 * number of records already sent under the server's application key
 * (the session tickets); tx_done says OpenSSL has installed the sending
 * side itself.  Returns 0 on success; -1 if nothing was
 * changed and the session can go on in userspace; -2 if the socket was
 * half moved and must be closed.  The reason is in err.
 */
int
ktls_offload(int fd, SSL *ssl, uint64_t tx_seq, int tx_done, char *err,
    size_t errlen)
{
#ifdef __linux__
	struct ktls_secrets	*ks;
	struct ktls_keys	 tx, rx;
	int			 ret = -1;

	if (SSL_version(ssl) != TLS1_3_VERSION) {
		(void)snprintf(err, errlen, "not TLS 1.3");
		return (-1);
	}
	if (SSL_has_pending(ssl)) {
		(void)snprintf(err, errlen, "records read past Finished");
		return (-1);
	}
	if ((ks = SSL_get_ex_data(ssl, ktls_exidx)) == NULL ||
	    ks->client_len == 0 || ks->server_len == 0) {
		(void)snprintf(err, errlen, "no traffic secrets");
		return (-1);
	}
	if (ktls_derive(ssl, ks->server, ks->server_len, &tx) == -1 ||
	    ktls_derive(ssl, ks->client, ks->client_len, &rx) == -1) {
		(void)snprintf(err, errlen, "cipher %s not offloadable",
		    SSL_get_cipher_name(ssl));
		goto done;
	}
	tx.seq = tx_seq;
	rx.seq = 0;
	/*
	 * With SSL_OP_ENABLE_KTLS, OpenSSL 3.0 already moved the sending
	 * side of a TLS 1.3 session (not the receiving one): only RX is
	 * left to do then.
	 */
	if (!tx_done) {
		if (ktls_attach(fd) == -1) {
			(void)snprintf(err, errlen, "TCP_ULP: %s",
			    strerror(errno));
			goto done;
		}
		/* From here on the socket is the kernel's. */
		ret = -2;
		if (ktls_set(fd, TLS_TX, &tx) == -1) {
			(void)snprintf(err, errlen, "TLS_TX: %s",
			    strerror(errno));
			goto done;
		}
	}
	ret = -2;
	if (ktls_set(fd, TLS_RX, &rx) == -1) {
		(void)snprintf(err, errlen, "TLS_RX: %s", strerror(errno));
		goto done;
	}
	ret = 0;
 done:
	explicit_bzero(&tx, sizeof(tx));
	explicit_bzero(&rx, sizeof(rx));
	return (ret);
#else
	(void)snprintf(err, errlen, "kernel TLS is only supported on Linux");
	return (-1);
#endif
}
