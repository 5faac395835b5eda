/*
 * Identities in client certificates.
 *
 * The auth worker's two CAs issue users' and nodes' certificates.  The
 * master verifies a client certificate against every CA it trusts (the
 * configuration's client CA file too); this file says whether one of the
 * auth worker's CAs signed it, and so whom it names, and whether the
 * auth worker has revoked it.
 */

#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certid.h"
#include "log.h"

static X509	*user_ca, *host_ca;
static X509	*cluster_ca[CERTID_CLUSTERS_MAX];	/* trusted clusters */
static char	*cluster_name[CERTID_CLUSTERS_MAX];
static size_t	 nclusters;
static char	**revoked;		/* sorted */
static size_t	  nrevoked;

static X509 *
pem_cert(const uint8_t *pem, size_t len)
{
	BIO	*bio;
	X509	*x;

	if (len == 0 || len > INT32_MAX ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return (NULL);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return (x);
}

/* The auth worker's CA certificates (PEM); none if both are empty. */
int
certid_set_cas(const uint8_t *user, size_t ulen, const uint8_t *host,
    size_t hlen)
{
	X509	*u = NULL, *h = NULL;

	if (ulen > 0 || hlen > 0) {
		if ((u = pem_cert(user, ulen)) == NULL ||
		    (h = pem_cert(host, hlen)) == NULL) {
			X509_free(u);
			return (-1);
		}
	}
	X509_free(user_ca);
	X509_free(host_ca);
	user_ca = u;
	host_ca = h;
	return (0);
}

static int
issued_by(X509 *x, X509 *ca)
{
	EVP_PKEY	*k;

	return (ca != NULL && X509_check_issued(ca, x) == X509_V_OK &&
	    (k = X509_get0_pubkey(ca)) != NULL && X509_verify(x, k) == 1);
}

/*
 * The trusted clusters: their names and the PEM certificates of their
 * CAs.  All or none: on failure the old ones stay.
 */
int
certid_set_clusters(Mezite__TrustedCluster **tc, size_t n)
{
	X509	*x[CERTID_CLUSTERS_MAX];
	char	*nm[CERTID_CLUSTERS_MAX];
	size_t	 i, k;

	if (n > CERTID_CLUSTERS_MAX)
		return (-1);
	for (i = 0; i < n; i++) {
		if ((x[i] = pem_cert(tc[i]->ca.data, tc[i]->ca.len)) ==
		    NULL || (nm[i] = strdup(tc[i]->name)) == NULL) {
			if (x[i] != NULL)
				X509_free(x[i]);
			for (k = 0; k < i; k++) {
				X509_free(x[k]);
				free(nm[k]);
			}
			return (-1);
		}
	}
	for (k = 0; k < nclusters; k++) {
		X509_free(cluster_ca[k]);
		free(cluster_name[k]);
	}
	for (i = 0; i < n; i++) {
		cluster_ca[i] = x[i];
		cluster_name[i] = nm[i];
	}
	nclusters = n;
	return (0);
}

/* The name of the trusted cluster whose CA signed x, or NULL. */
const char *
certid_cluster(X509 *x)
{
	size_t	 i;

	for (i = 0; i < nclusters; i++)
		if (issued_by(x, cluster_ca[i]))
			return (cluster_name[i]);
	return (NULL);
}

/*
 * "user" or "node" if one of the auth worker's CAs signed x, "cluster"
 * if a trusted cluster's did, or NULL.
 */
const char *
certid_kind(X509 *x)
{
	if (issued_by(x, user_ca))
		return ("user");
	if (issued_by(x, host_ca))
		return ("node");
	if (certid_cluster(x) != NULL)
		return ("cluster");
	return (NULL);
}

/*
 * The certificate's serial as the auth worker writes it: lower-case hex
 * without leading zeros.
 */
int
certid_serial(X509 *x, char *buf, size_t len)
{
	BIGNUM	*bn;
	char	*hex, *p;
	int	 rv = -1;

	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) ==
	    NULL)
		return (-1);
	if ((hex = BN_bn2hex(bn)) != NULL) {
		for (p = hex; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'F')
				*p += 'a' - 'A';
		/* Whole octets: without the leading zero, as issued. */
		for (p = hex; p[0] == '0' && p[1] != '\0'; p++)
			;
		if (strlcpy(buf, p, len) < len)
			rv = 0;
		OPENSSL_free(hex);
	}
	BN_free(bn);
	return (rv);
}

/*
 * The common name, if it is one the auth worker could have issued:
 * letters, digits, '.', '_', '@' and '-', at most CERTID_NAME_MAX bytes.
 */
int
certid_name(X509 *x, char *buf, size_t len)
{
	X509_NAME		*name;
	const ASN1_STRING	*s;
	const unsigned char	*d;
	int			 i, n;

	if ((name = X509_get_subject_name(x)) == NULL ||
	    (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, NID_commonName, i) != -1)
		return (-1);
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	d = ASN1_STRING_get0_data(s);
	n = ASN1_STRING_length(s);
	if (n <= 0 || n > CERTID_NAME_MAX || (size_t)n >= len)
		return (-1);
	for (i = 0; i < n; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._@-", d[i]) == NULL || d[i] == '\0')
			return (-1);
	memcpy(buf, d, n);
	buf[n] = '\0';
	return (0);
}

static int
strp_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* The serials the auth worker has revoked: the whole list, each time. */
int
certid_set_revoked(char **serials, size_t n)
{
	char	**v;
	size_t	  i;

	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return (-1);
	for (i = 0; i < n; i++)
		if ((v[i] = strdup(serials[i])) == NULL) {
			while (i > 0)
				free(v[--i]);
			free(v);
			return (-1);
		}
	qsort(v, n, sizeof(*v), strp_cmp);
	for (i = 0; i < nrevoked; i++)
		free(revoked[i]);
	free(revoked);
	revoked = v;
	nrevoked = n;
	return (0);
}

/* Whether x is a certificate of the auth worker's that it revoked. */
int
certid_revoked(X509 *x)
{
	char	 serial[CERTID_SERIAL_MAX], *key = serial;

	if (nrevoked == 0 || certid_kind(x) == NULL ||
	    certid_serial(x, serial, sizeof(serial)) == -1)
		return (0);
	return (bsearch(&key, revoked, nrevoked, sizeof(*revoked),
	    strp_cmp) != NULL);
}
