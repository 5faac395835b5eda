/*
 * SSH public keys of users, as authorized_keys lines write them.
 */

#ifndef MEZITE_SSHKEY_H
#define MEZITE_SSHKEY_H

#include <stddef.h>

#define SSHKEY_LINE_MAX		8192	/* bytes of a line, comment included */
#define SSHKEY_TYPE_MAX		32	/* bytes of a type name */
#define SSHKEY_BLOB_MAX		4096	/* bytes of a decoded key */
#define SSHKEY_B64_MAX		(4 * ((SSHKEY_BLOB_MAX + 2) / 3))
#define SSHKEY_COMMENT_MAX	255
#define SSHKEY_FP_LEN		50	/* "SHA256:" and 43 base64 digits */
#define SSHKEY_RSA_MIN		2048	/* bits of an RSA modulus */
#define SSHKEY_RSA_MAX		16384

struct sshkey {
	char		 type[SSHKEY_TYPE_MAX + 1];
	char		 b64[SSHKEY_B64_MAX + 1];
	char		 comment[SSHKEY_COMMENT_MAX + 1];
	char		 fingerprint[SSHKEY_FP_LEN + 1];
	unsigned int	 bits;
};

int	 sshkey_parse(const char *, struct sshkey *, char *, size_t);
int	 sshkey_fingerprint_valid(const char *);

#endif /* MEZITE_SSHKEY_H */
