/*
 * The auth worker's certificate authorities.
 *
 * Two CAs, each an ECDSA P-256 key and a self-signed certificate: the
 * user CA certifies users' keys after a password login, the host CA
 * nodes' keys after a join token.  The keys never leave the auth worker;
 * the certificates go to the master, which verifies client certificates
 * against them.
 *
 * A CA lives in two files of its directory, both PEM, mode 0600, owned
 * by the worker's user: <kind>-ca.key (the private key, PKCS#8) and
 * <kind>-ca.crt (its certificate).  <kind>-ca.lock serializes the
 * processes that open the same CA; a key without a certificate is what
 * an interrupted creation leaves, and is replaced.
 *
 * Issued certificates say who holds the key as proto/auth.proto
 * describes: subject "O=Mezite, CN=<name>", a user's roles as URI
 * subject alternative names "mezite:role:<role>", a node's name as one
 * "mezite:node:<name>".
 */

#ifndef MEZITE_CA_H
#define MEZITE_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CA_BADKEY	1	/* the public key offered is not acceptable */

#define CA_NAME_MAX	64	/* bytes of a name or role */
#define CA_ROLES_MAX	64	/* roles in one certificate */
#define CA_SPKI_MAX	2048	/* bytes of a public key offered */
#define CA_SERIAL_LEN	41	/* hex serial: up to 40 digits and a NUL */

struct ca;

/*
 * The CA of this kind ("user" or "host") in dir, created on first use.
 * NULL on failure, the reason logged naming the file.
 */
struct ca	*ca_open(const char *dir, const char *kind);
/* Free the CA and its key. */
void		 ca_free(struct ca *);
/* The CA certificate in PEM, NUL-terminated, owned by the ca. */
const char	*ca_cert_pem(const struct ca *, size_t *len);

/*
 * Certify the public key spki (a DER SubjectPublicKeyInfo of spkilen
 * bytes) for name, valid from not_before to not_after.  A user
 * certificate carries the nroles roles; a host certificate none (nroles
 * is 0) but the node's name.  Names and roles are 1 to CA_NAME_MAX bytes
 * of letters, digits, '.', '_', '@' and '-'.
 *
 * On success, 0: serial holds the certificate's serial in lower-case hex
 * without leading zeros, and *pem a malloc'd NUL-terminated PEM
 * certificate of *pemlen bytes.  CA_BADKEY if the key is not one the
 * CA certifies: ECDSA on P-256 or P-384, Ed25519, or RSA of 2048 to 8192
 * bits.  -1 on any other failure (logged).
 */
int		 ca_issue(struct ca *, const uint8_t *spki, size_t spkilen,
		    const char *name, const char *const *roles, size_t nroles,
		    time_t not_before, time_t not_after,
		    char serial[CA_SERIAL_LEN], char **pem, size_t *pemlen);

#endif /* MEZITE_CA_H */
