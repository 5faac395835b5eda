/*
 * Identities in client certificates issued by the auth worker's CAs.
 */

#ifndef MEZITE_CERTID_H
#define MEZITE_CERTID_H

#include <sys/types.h>

#include <stdint.h>

#include <openssl/x509.h>

#include "mezite.pb-c.h"

#define CERTID_NAME_MAX		64
#define CERTID_SERIAL_MAX	(2 * 20 + 1)	/* RFC 5280: 20 octets */
#define CERTID_CLUSTERS_MAX	64

int		 certid_set_cas(const uint8_t *, size_t, const uint8_t *,
		    size_t);
int		 certid_set_revoked(char **, size_t);
int		 certid_set_clusters(Mezite__TrustedCluster **, size_t);
const char	*certid_cluster(X509 *);
const char	*certid_kind(X509 *);
int		 certid_name(X509 *, char *, size_t);
int		 certid_serial(X509 *, char *, size_t);
int		 certid_revoked(X509 *);

#endif /* MEZITE_CERTID_H */
