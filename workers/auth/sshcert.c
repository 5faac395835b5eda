/*
 * The SSH user CA and the certificates it signs: see sshcert.h.
 *
 * A certificate is written with a small bounded buffer writer of the
 * SSH wire types (RFC 4251: uint32, uint64, string) in the order of
 * OpenSSH's PROTOCOL.certkeys:
 *
 *	string	"ssh-ed25519-cert-v01@openssh.com"
 *	string	nonce
 *	string	pk			the user's Ed25519 key
 *	uint64	serial
 *	uint32	type			1: user
 *	string	key id
 *	string	valid principals	strings, one after the other
 *	uint64	valid after
 *	uint64	valid before
 *	string	critical options	none
 *	string	extensions		name and empty data, sorted by name
 *	string	reserved		empty
 *	string	signature key		the CA's public key blob
 *	string	signature		"ssh-ed25519" and the 64 bytes
 *
 * the signature being over every byte before it.
 *
 * The CA's key file is created and read as ca.c does its own: under an
 * exclusive flock(2), written to a temporary name with O_EXCL and mode
 * 0600, synced and renamed, and read only if it is a regular file of the
 * effective user that no one else may access.
 */

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "log.h"
#include "sshcert.h"
#include "sshkey.h"
#include "sshwire.h"

#define SSHCA_KEY	"ssh-user-ca.key"
#define SSHCA_TMP	"ssh-user-ca.key.tmp"
#define SSHCA_LOCK	"ssh-user-ca.lock"
#define SSHCA_COMMENT	"mezite-ssh-user-ca"
#define SSHCA_FILE_MAX	(16 * 1024)
#define ED25519_TYPE	"ssh-ed25519"
#define ED25519_SIGLEN	64
/* The CA's public key blob: two strings. */
#define ED25519_BLOBLEN	(4 + sizeof(ED25519_TYPE) - 1 + 4 + \
			    SSHCERT_ED25519_LEN)
#define B64_LEN(n)	(4 * (((n) + 2) / 3))

struct sshca {
	EVP_PKEY	*key;
	char		*line;
};

static int	 ed25519_blob(EVP_PKEY *, uint8_t [ED25519_BLOBLEN]);
static char	*b64_line(const char *, const uint8_t *, size_t,
		    const char *, size_t *);
static int	 sshca_read(const char *, int, char **, size_t *);
static int	 sshca_create(const char *, int, EVP_PKEY **);

/* An Ed25519 key's public blob: string "ssh-ed25519", string key. */
static int
ed25519_blob(EVP_PKEY *key, uint8_t blob[ED25519_BLOBLEN])
{
	struct sshwire	 w;
	uint8_t		 pub[SSHCERT_ED25519_LEN];
	size_t		 len = sizeof(pub);

	if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 ||
	    len != sizeof(pub)) {
		ERR_clear_error();
		return (-1);
	}
	sshwire_init(&w, blob, ED25519_BLOBLEN);
	sshwire_cstring(&w, ED25519_TYPE);
	sshwire_string(&w, pub, sizeof(pub));
	return (w.err || w.len != ED25519_BLOBLEN ? -1 : 0);
}

/* "type base64[ comment]", malloc'd; NULL on failure. */
static char *
b64_line(const char *type, const uint8_t *blob, size_t bloblen,
    const char *comment, size_t *lenp)
{
	size_t	 tl = strlen(type), cl = comment ? strlen(comment) : 0;
	size_t	 cap, n;
	char	*s;

	if (bloblen > SSHCERT_BLOB_MAX)
		return (NULL);
	cap = tl + 1 + B64_LEN(bloblen) + 1 + cl + 1;
	if ((s = malloc(cap)) == NULL)
		return (NULL);
	memcpy(s, type, tl);
	s[tl] = ' ';
	n = tl + 1;
	n += EVP_EncodeBlock((unsigned char *)s + n, blob, (int)bloblen);
	if (cl > 0) {
		s[n++] = ' ';
		memcpy(s + n, comment, cl);
		n += cl;
	}
	s[n] = '\0';
	if (lenp != NULL)
		*lenp = n;
	return (s);
}

int
sshcert_key_from_line(const char *line, uint8_t key[SSHCERT_ED25519_LEN],
    char *err, size_t errlen)
{
	struct sshkey	 k;
	uint8_t		 blob[SSHKEY_BLOB_MAX + 3];
	size_t		 b64len;
	int		 n;

	if (sshkey_parse(line, &k, err, errlen) == -1)
		return (-1);
	if (strcmp(k.type, ED25519_TYPE) != 0) {
		(void)snprintf(err, errlen, "a key of type %s: only %s keys "
		    "are certified", k.type, ED25519_TYPE);
		return (-1);
	}
	/* sshkey_parse() took the base64 as canonical and padded. */
	b64len = strlen(k.b64);
	if (B64_LEN(ED25519_BLOBLEN) != b64len ||
	    (n = EVP_DecodeBlock(blob, (const unsigned char *)k.b64,
	    (int)b64len)) < (int)ED25519_BLOBLEN ||
	    memcmp(blob, "\0\0\0\013" ED25519_TYPE "\0\0\0\040", 19) != 0) {
		(void)snprintf(err, errlen, "not an %s key", ED25519_TYPE);
		return (-1);
	}
	memcpy(key, blob + 4 + 11 + 4, SSHCERT_ED25519_LEN);
	return (0);
}

int
sshcert_random(struct sshcert *c)
{
	do {
		if (RAND_bytes(c->nonce, sizeof(c->nonce)) != 1 ||
		    RAND_bytes((unsigned char *)&c->serial,
		    sizeof(c->serial)) != 1) {
			ERR_clear_error();
			log_warnx("%s: no random bytes", __func__);
			return (-1);
		}
	} while (c->serial == 0);
	return (0);
}

int
sshcert_sign(EVP_PKEY *ca, const struct sshcert *c, const char *comment,
    char **linep, size_t *lenp)
{
	static const char *const exts[] = {	/* sorted */
		"permit-port-forwarding",
		"permit-pty",
	};
	struct sshwire	 w, sub;
	uint8_t		*wp = NULL, *subp = NULL;
	EVP_MD_CTX	*md = NULL;
	uint8_t		 cablob[ED25519_BLOBLEN], sig[ED25519_SIGLEN];
	size_t		 i, siglen = sizeof(sig), n;
	int		 ret = -1;

	*linep = NULL;
	if (c->nprincipals > SSHCERT_PRINCIPALS_MAX ||
	    strlen(c->key_id) > SSHCERT_KEYID_MAX) {
		log_warnx("%s: too many principals or key id too long",
		    __func__);
		return (-1);
	}
	if ((wp = malloc(SSHCERT_BLOB_MAX)) == NULL ||
	    (subp = malloc(SSHCERT_BLOB_MAX)) == NULL) {
		log_warn("%s", __func__);
		goto done;
	}
	sshwire_init(&w, wp, SSHCERT_BLOB_MAX);
	sshwire_init(&sub, subp, SSHCERT_BLOB_MAX);
	if (ed25519_blob(ca, cablob) == -1) {
		log_warnx("%s: the CA key is not an Ed25519 key", __func__);
		goto done;
	}

	sshwire_cstring(&w, SSHCERT_TYPE);
	sshwire_string(&w, c->nonce, sizeof(c->nonce));
	sshwire_string(&w, c->key, sizeof(c->key));
	sshwire_u64(&w, c->serial);
	sshwire_u32(&w, SSHCERT_TYPE_USER);
	sshwire_cstring(&w, c->key_id);
	for (i = 0; i < c->nprincipals; i++) {
		n = strlen(c->principals[i]);
		if (n == 0 || n > SSHCERT_PRINCIPAL_MAX) {
			log_warnx("%s: principal %zu: empty or too long",
			    __func__, i);
			goto done;
		}
		sshwire_string(&sub, c->principals[i], n);
	}
	sshwire_string(&w, sub.p, sub.len);
	sshwire_u64(&w, c->valid_after);
	sshwire_u64(&w, c->valid_before);
	sshwire_string(&w, NULL, 0);			/* critical options */
	sub.len = 0;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		sshwire_cstring(&sub, exts[i]);
		sshwire_string(&sub, NULL, 0);
	}
	sshwire_string(&w, sub.p, sub.len);
	sshwire_string(&w, NULL, 0);			/* reserved */
	sshwire_string(&w, cablob, sizeof(cablob));
	if (w.err || sub.err) {
		log_warnx("%s: the certificate is over %d bytes", __func__,
		    SSHCERT_BLOB_MAX);
		goto done;
	}

	/* Ed25519 signs the message itself: no digest. */
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, NULL, NULL, ca) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, w.p, w.len) != 1 ||
	    siglen != sizeof(sig)) {
		ERR_clear_error();
		log_warnx("%s: signing failed", __func__);
		goto done;
	}
	sub.len = 0;
	sshwire_cstring(&sub, ED25519_TYPE);
	sshwire_string(&sub, sig, siglen);
	sshwire_string(&w, sub.p, sub.len);
	if (w.err || sub.err) {
		log_warnx("%s: the certificate is over %d bytes", __func__,
		    SSHCERT_BLOB_MAX);
		goto done;
	}
	if ((*linep = b64_line(SSHCERT_TYPE, w.p, w.len, comment,
	    lenp)) == NULL) {
		log_warn("%s", __func__);
		goto done;
	}
	ret = 0;
 done:
	EVP_MD_CTX_free(md);
	free(wp);
	free(subp);
	return (ret);
}

/*
 * The key file, opened in the directory dfd: 0 with its bytes in a
 * buffer of SSHCA_FILE_MAX to wipe, 1 if there is none, -1 if it may
 * not be used (logged).
 */
static int
sshca_read(const char *dir, int dfd, char **bufp, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, ret = -1;

	*bufp = NULL;
	if ((fd = openat(dfd, SSHCA_KEY, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return (1);
		log_warn("%s/%s", dir, SSHCA_KEY);
		return (-1);
	}
	if (fstat(fd, &st) == -1) {
		log_warn("%s/%s", dir, SSHCA_KEY);
		goto done;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0 ||
	    st.st_size > SSHCA_FILE_MAX) {
		log_warnx("%s/%s: not a regular file of uid %lu that only "
		    "its owner may access, of at most %d bytes", dir,
		    SSHCA_KEY, (unsigned long)geteuid(), SSHCA_FILE_MAX);
		goto done;
	}
	if ((buf = malloc(SSHCA_FILE_MAX)) == NULL) {
		log_warn("%s/%s", dir, SSHCA_KEY);
		goto done;
	}
	for (;;) {
		if (len == SSHCA_FILE_MAX) {
			log_warnx("%s/%s: too long", dir, SSHCA_KEY);
			goto done;
		}
		if ((n = read(fd, buf + len, SSHCA_FILE_MAX - len)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%s/%s: read", dir, SSHCA_KEY);
			goto done;
		}
		if (n == 0)
			break;
		len += n;
	}
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	ret = 0;
 done:
	if (buf != NULL)
		freezero(buf, SSHCA_FILE_MAX);
	(void)close(fd);
	return (ret);
}

/* A new key, saved under its name in dfd. */
static int
sshca_create(const char *dir, int dfd, EVP_PKEY **keyp)
{
	EVP_PKEY	*key = NULL;
	BIO		*b = NULL;
	char		*pem;
	long		 len;
	ssize_t		 n;
	int		 fd = -1, ret = -1;

	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    (b = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL,
	    NULL) != 1 || (len = BIO_get_mem_data(b, &pem)) <= 0) {
		ERR_clear_error();
		log_warnx("%s/%s: key generation failed", dir, SSHCA_KEY);
		goto done;
	}
	if (unlinkat(dfd, SSHCA_TMP, 0) == -1 && errno != ENOENT) {
		log_warn("%s/%s: unlink", dir, SSHCA_TMP);
		goto done;
	}
	if ((fd = openat(dfd, SSHCA_TMP, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 || fchmod(fd, 0600) == -1) {
		log_warn("%s/%s", dir, SSHCA_TMP);
		goto done;
	}
	while (len > 0) {
		if ((n = write(fd, pem, len)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%s/%s: write", dir, SSHCA_TMP);
			goto done;
		}
		pem += n;
		len -= n;
	}
	if (fsync(fd) == -1) {
		log_warn("%s/%s: fsync", dir, SSHCA_TMP);
		goto done;
	}
	if (close(fd) == -1) {
		fd = -1;
		log_warn("%s/%s: close", dir, SSHCA_TMP);
		goto done;
	}
	fd = -1;
	if (renameat(dfd, SSHCA_TMP, dfd, SSHCA_KEY) == -1 ||
	    fsync(dfd) == -1) {
		log_warn("%s/%s: rename", dir, SSHCA_TMP);
		goto done;
	}
	*keyp = key;
	key = NULL;
	ret = 0;
 done:
	if (fd != -1)
		(void)close(fd);
	if (ret == -1)
		(void)unlinkat(dfd, SSHCA_TMP, 0);
	BIO_free(b);		/* a secure-heap BIO: wiped */
	EVP_PKEY_free(key);
	return (ret);
}

struct sshca *
sshca_open(const char *dir)
{
	struct sshca	*ca = NULL;
	uint8_t		 blob[ED25519_BLOBLEN];
	BIO		*b = NULL;
	char		*buf = NULL;
	size_t		 len = 0;
	int		 dfd = -1, lockfd = -1, r, ok = 0;

	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		log_warn("%s", __func__);
		return (NULL);
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("%s", dir);
		goto done;
	}
	if ((lockfd = openat(dfd, SSHCA_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s/%s", dir, SSHCA_LOCK);
		goto done;
	}
	while (flock(lockfd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			log_warn("%s/%s: flock", dir, SSHCA_LOCK);
			goto done;
		}
	}
	if ((r = sshca_read(dir, dfd, &buf, &len)) == -1)
		goto done;
	if (r == 1) {
		if (sshca_create(dir, dfd, &ca->key) == -1)
			goto done;
		log_info("%s: created the SSH user CA", dir);
	} else {
		if ((b = BIO_new_mem_buf(buf, len)) == NULL ||
		    (ca->key = PEM_read_bio_PrivateKey(b, NULL, NULL,
		    NULL)) == NULL || !EVP_PKEY_is_a(ca->key, "ED25519")) {
			ERR_clear_error();
			log_warnx("%s/%s: not an Ed25519 private key", dir,
			    SSHCA_KEY);
			goto done;
		}
	}
	if (ed25519_blob(ca->key, blob) == -1 ||
	    (ca->line = b64_line(ED25519_TYPE, blob, sizeof(blob),
	    SSHCA_COMMENT, NULL)) == NULL) {
		log_warnx("%s/%s: cannot encode its public key", dir,
		    SSHCA_KEY);
		goto done;
	}
	ok = 1;
 done:
	BIO_free(b);
	if (buf != NULL)
		freezero(buf, SSHCA_FILE_MAX);
	if (lockfd != -1)
		(void)close(lockfd);
	if (dfd != -1)
		(void)close(dfd);
	if (!ok) {
		sshca_free(ca);
		return (NULL);
	}
	return (ca);
}

void
sshca_free(struct sshca *ca)
{
	if (ca == NULL)
		return;
	EVP_PKEY_free(ca->key);
	free(ca->line);
	free(ca);
}

const char *
sshca_pubkey_line(const struct sshca *ca)
{
	return (ca->line);
}

EVP_PKEY *
sshca_key(const struct sshca *ca)
{
	return (ca->key);
}
