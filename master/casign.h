/*
 * The ca process: it holds the TLS private keys and signs handshake
 * digests for the master, which holds only the certificates.
 */

#ifndef MEZITE_CASIGN_H
#define MEZITE_CASIGN_H

#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CA_KEYID_LEN	32	/* SHA-256 of the public key's DER */
#define CA_DATA_MAX	1024	/* an 8192-bit RSA block */
#define CA_TIMEOUT	2000	/* ms the master waits for a signature */

enum ca_op {
	CA_ECDSA = 1,		/* data: a digest; sig: DER */
	CA_RSA_PKCS1,		/* data: a digest of type nid */
	CA_RSA_PSS		/* data: the PSS-encoded block (EM) */
};

/* One request and its answer: a datagram each on a SOCK_SEQPACKET pair. */
struct ca_req {
	uint32_t	 id;		/* echoed in the answer */
	uint32_t	 op;		/* enum ca_op */
	uint32_t	 nid;		/* CA_RSA_PKCS1: the digest's */
	uint32_t	 len;
	uint8_t		 key[CA_KEYID_LEN];
	uint8_t		 data[CA_DATA_MAX];
};

struct ca_rep {
	uint32_t	 id;
	int32_t		 len;		/* -1: refused or failed */
	uint8_t		 sig[CA_DATA_MAX];
};

__attribute__((__noreturn__))
void		 ca(const char *, const char *);
int		 ca_keyid(EVP_PKEY *, uint8_t [CA_KEYID_LEN]);
int		 ca_req_check(const struct ca_req *, EVP_PKEY *,
		    const char **);

/* The master's side. */
void		 ca_client_set(int);
EVP_PKEY	*ca_client_key(X509 *);

#endif /* MEZITE_CASIGN_H */
