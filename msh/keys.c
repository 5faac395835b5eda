/*
 * The user's key pair and certificate.
 *
 * msh makes the key pair itself, an ECDSA P-256 key, and sends the
 * auth worker only its public half; the private key goes from memory
 * to key.pem (PKCS#8, mode 0600) and nowhere else.
 */

#include <sys/types.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "msh.h"

#define ROLE_PREFIX	"mezite:role:"
#define ROLELEN		128		/* longer ones are left out */
#define MAXROLES	256

EVP_PKEY *
key_new(void)
{
	return (EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
}

/* The public key as DER SubjectPublicKeyInfo, in a buffer to free. */
int
key_spki(EVP_PKEY *key, uint8_t **derp, size_t *lenp)
{
	unsigned char	*der = NULL;
	int		 len;

	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return (-1);
	*derp = der;
	*lenp = len;
	return (0);
}

/*
 * Write the private key as PKCS#8 PEM.  The memory BIO holding it is
 * wiped when freed (OpenSSL clears a BUF_MEM on free).
 */
int
key_save(struct home *h, const char *name, EVP_PKEY *key)
{
	BIO	*bio;
	char	*pem;
	long	 len;
	int	 rv = -1;

	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		return (-1);
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
	    NULL) == 1 && (len = BIO_get_mem_data(bio, &pem)) > 0)
		rv = home_write(h, name, pem, len);
	else
		warnx("cannot encode the private key");
	BIO_free(bio);
	return (rv);
}

/* A PEM private key from memory, or NULL. */
EVP_PKEY *
key_load(const char *pem, size_t len)
{
	BIO		*bio;
	EVP_PKEY	*key;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, len)) == NULL)
		return (NULL);
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return (key);
}

/* The first PEM certificate of the buffer, or NULL. */
X509 *
cert_load(const char *pem, size_t len)
{
	BIO	*bio;
	X509	*x;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, len)) == NULL)
		return (NULL);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return (x);
}

/*
 * What a Mezite user certificate says: its subject's common name, the
 * roles in its "mezite:role:" URIs, its expiry and its SHA-256.
 * 0: filled in (free with certinfo_free); -1: not such a certificate.
 */
int
cert_info(X509 *x, struct certinfo *ci)
{
	GENERAL_NAMES		*sans;
	const GENERAL_NAME	*gn;
	const ASN1_STRING	*s;
	X509_NAME		*subj;
	struct tm		 tm;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen, i;
	char			**roles;
	int			 n, len, idx;

	memset(ci, 0, sizeof(*ci));

	if ((subj = X509_get_subject_name(x)) == NULL ||
	    (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) < 0 ||
	    (s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj,
	    idx))) == NULL)
		return (-1);
	len = ASN1_STRING_length(s);
	if (len <= 0 || len > USERLEN ||
	    memchr(ASN1_STRING_get0_data(s), '\0', len) != NULL)
		return (-1);
	memcpy(ci->name, ASN1_STRING_get0_data(s), len);
	ci->name[len] = '\0';

	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
	    (ci->not_after = timegm(&tm)) == (time_t)-1)
		return (-1);

	if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return (-1);
	strlcpy(ci->hash, "SHA256:", sizeof(ci->hash));
	for (i = 0; i < mdlen; i++)
		snprintf(ci->hash + 7 + 2 * i, 3, "%02x", md[i]);

	if ((sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL)) == NULL)
		return (0);
	for (n = 0; n < sk_GENERAL_NAME_num(sans); n++) {
		gn = sk_GENERAL_NAME_value(sans, n);
		if (gn->type != GEN_URI)
			continue;
		s = gn->d.uniformResourceIdentifier;
		len = ASN1_STRING_length(s);
		if (len <= (int)strlen(ROLE_PREFIX) || len > ROLELEN ||
		    strncmp((const char *)ASN1_STRING_get0_data(s),
		    ROLE_PREFIX, strlen(ROLE_PREFIX)) != 0 ||
		    memchr(ASN1_STRING_get0_data(s), '\0', len) != NULL)
			continue;
		if (ci->nroles >= MAXROLES)
			break;
		if ((roles = reallocarray(ci->roles, ci->nroles + 1,
		    sizeof(*roles))) == NULL)
			err(1, NULL);
		ci->roles = roles;
		if ((roles[ci->nroles] = strndup((const char *)
		    ASN1_STRING_get0_data(s) + strlen(ROLE_PREFIX),
		    len - strlen(ROLE_PREFIX))) == NULL)
			err(1, NULL);
		ci->nroles++;
	}
	GENERAL_NAMES_free(sans);
	return (0);
}

void
certinfo_free(struct certinfo *ci)
{
	size_t	 i;

	for (i = 0; i < ci->nroles; i++)
		free(ci->roles[i]);
	free(ci->roles);
	ci->roles = NULL;
	ci->nroles = 0;
}

/* 1 if the certificate is for the key, 0 if not. */
int
cert_matches_key(X509 *x, EVP_PKEY *key)
{
	return (X509_check_private_key(x, key) == 1);
}

/* 1 if ca issued and signed the certificate, 0 if not. */
int
cert_signed_by(X509 *x, X509 *ca)
{
	EVP_PKEY	*pub;

	if (X509_check_issued(ca, x) != X509_V_OK ||
	    (pub = X509_get0_pubkey(ca)) == NULL)
		return (0);
	return (X509_verify(x, pub) == 1);
}

/* "2026-12-01 10:00 UTC" */
const char *
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm	 tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		strlcpy(buf, "?", len);
	return (buf);
}
