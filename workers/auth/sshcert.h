/*
 * The SSH user CA: OpenSSH user certificates for the nodes' sshd.
 *
 * One Ed25519 key, ssh-user-ca.key (PKCS#8 PEM, mode 0600, owned by the
 * worker's user) beside the TLS CAs' files, created on first use under
 * the lock ssh-user-ca.lock, as ca.c creates those.  A node whose sshd
 * names the CA's public key line in TrustedUserCAKeys lets a holder of
 * one of its certificates log in as one of the certificate's principals.
 *
 * Certificates are ssh-ed25519-cert-v01@openssh.com (OpenSSH's
 * PROTOCOL.certkeys) of Ed25519 keys, for users (type 1), with no
 * critical option and the extensions permit-port-forwarding and
 * permit-pty, encoded here and signed with libcrypto.
 */

#ifndef MEZITE_SSHCERT_H
#define MEZITE_SSHCERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define SSHCERT_ED25519_LEN	32		/* an Ed25519 public key */
#define SSHCERT_KEYID_MAX	256
#define SSHCERT_PRINCIPALS_MAX	256
#define SSHCERT_PRINCIPAL_MAX	64
#define SSHCERT_BLOB_MAX	(32 * 1024)	/* a certificate, decoded */
#define SSHCERT_TYPE		"ssh-ed25519-cert-v01@openssh.com"
#define SSHCERT_TYPE_USER	1

struct sshca;

/* What a certificate says; the CA adds its key and signature. */
struct sshcert {
	uint8_t			 key[SSHCERT_ED25519_LEN];
	uint8_t			 nonce[32];
	uint64_t		 serial;
	const char		*key_id;
	const char *const	*principals;
	size_t			 nprincipals;
	uint64_t		 valid_after;	/* seconds since the epoch */
	uint64_t		 valid_before;
};

/* The SSH user CA in dir, created on first use; NULL on failure (logged). */
struct sshca	*sshca_open(const char *dir);
void		 sshca_free(struct sshca *);
/* "ssh-ed25519 base64 mezite-ssh-user-ca", NUL-terminated, no newline. */
const char	*sshca_pubkey_line(const struct sshca *);
EVP_PKEY	*sshca_key(const struct sshca *);

/*
 * The public key of an authorized_keys line of type ssh-ed25519 into
 * key: 0, or -1 with a sentence in err.
 */
int		 sshcert_key_from_line(const char *,
		    uint8_t [SSHCERT_ED25519_LEN], char *, size_t);

/*
 * Sign c with the Ed25519 key ca: 0 and *line, a malloc'd
 * NUL-terminated "type base64 comment" line of *len bytes without a
 * newline; -1 on failure (logged).  c's nonce and serial are its
 * caller's (see sshcert_random()).
 */
int		 sshcert_sign(EVP_PKEY *, const struct sshcert *,
		    const char *comment, char **line, size_t *len);
/* A fresh random nonce and a random, non-zero serial into c. */
int		 sshcert_random(struct sshcert *);

/* sshlogin.c: the certificate of a login, from the store's roles. */
struct store;
struct store_cert;
struct store_strv;
struct store_user;

int		 sshlogin_principals(struct store *,
		    const struct store_strv *, struct store_strv *);
int		 sshlogin_certify(struct sshca *, struct store *,
		    const struct store_user *,
		    const uint8_t [SSHCERT_ED25519_LEN],
		    const struct store_cert *, char **, uint64_t *, char *,
		    size_t);

#endif /* MEZITE_SSHCERT_H */
