/*
 * The auth worker's certificate authorities: see ca.h.
 *
 * Several auth workers may open the same CA at once, and any of them
 * may die at any point, the first time too.  So a CA is opened under an
 * exclusive flock(2) on <kind>-ca.lock, and is created, when it has no
 * certificate, by writing each file to a temporary name that nobody
 * else can have opened (O_EXCL, O_NOFOLLOW, mode 0600), syncing it,
 * and renaming it into place: the key first, the certificate last,
 * each rename synced in the directory before the next step.  A file
 * under its final name is therefore always whole, and a certificate
 * means that its key is there too.  A key without a certificate is the
 * trace of a creation that did not finish: nothing was ever issued
 * with it, and a new CA replaces it.  Temporary files are never read.
 */

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "log.h"

#define CA_FILE_MAX	(64 * 1024)	/* bytes of a key or certificate */
#define CA_SERIAL_BYTES	16		/* 128 bits, the top one clear */
#define CA_YEARS	10		/* a CA certificate's lifetime */
#define CA_BACKDATE	60		/* seconds, against clock skew */
#define CA_FILENAME	32

#define CA_NAMECHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
			"abcdefghijklmnopqrstuvwxyz" \
			"0123456789._@-"
#define CA_URI_ROLE	"mezite:role:"
#define CA_URI_NODE	"mezite:node:"

struct ca {
	const char	*kind;		/* "user", "host" */
	int		 host;		/* the host CA */
	EVP_PKEY	*key;
	X509		*cert;
	char		*pem;		/* cert, NUL-terminated */
	size_t		 pemlen;
};

/* A CA's directory, open, and the names of its files there. */
struct ca_dir {
	const char	*path;
	int		 fd;
	char		 key[CA_FILENAME];
	char		 crt[CA_FILENAME];
	char		 lock[CA_FILENAME];
	char		 keytmp[CA_FILENAME];
	char		 crttmp[CA_FILENAME];
};

/* An extension given as OpenSSL's configuration would say it. */
struct ca_ext {
	int		 nid;
	const char	*value;
};

static const struct ca_ext ca_exts_ca[] = {
	{ NID_basic_constraints,	"critical,CA:TRUE,pathlen:0" },
	{ NID_key_usage,		"critical,keyCertSign,cRLSign" },
	{ NID_subject_key_identifier,	"hash" },
};

static void	 ca_sslerr(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2)));
static int	 ca_nopass(char *, int, int, void *);
static int	 ca_name_ok(const char *);
static const char *ca_time(const ASN1_TIME *, char *, size_t);
static int	 ca_dir_open(struct ca_dir *, const char *, const char *);
static int	 ca_lock(const struct ca_dir *);
static int	 ca_file_read(const struct ca_dir *, const char *, int,
		    char **, size_t *);
static int	 ca_tmp_create(const struct ca_dir *, const char *);
static int	 ca_tmp_commit(const struct ca_dir *, int, const char *,
		    const char *);
static int	 ca_write_all(int, const char *, size_t);
static int	 ca_load(struct ca *, const struct ca_dir *);
static int	 ca_check(const struct ca *, const struct ca_dir *);
static int	 ca_create(struct ca *, const struct ca_dir *);
static int	 ca_save(const struct ca *, const struct ca_dir *);
static X509_NAME *ca_subject(const char *);
static int	 ca_serial(X509 *, char *);
static int	 ca_add_exts(X509 *, X509 *, const struct ca_ext *, size_t);
static int	 ca_add_leaf_exts(X509 *, X509 *, EVP_PKEY *);
static int	 ca_add_san(X509 *, const char *, const char *const *,
		    size_t);
static int	 ca_pem(X509 *, char **, size_t *);
static int	 ca_pubkey(const uint8_t *, size_t, EVP_PKEY **);

/* Log what failed, with OpenSSL's reason, and forget OpenSSL's errors. */
static void
ca_sslerr(const char *fmt, ...)
{
	char		 what[512], why[256];
	const char	*reason;
	unsigned long	 e;
	va_list		 ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		(void)strlcpy(what, fmt, sizeof(what));
	va_end(ap);

	if ((e = ERR_peek_last_error()) == 0)
		(void)strlcpy(why, "unknown error", sizeof(why));
	else if ((reason = ERR_reason_error_string(e)) != NULL)
		(void)strlcpy(why, reason, sizeof(why));
	else
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	log_warnx("%s: %s", what, why);
}

/* Keys are not encrypted: never ask for a passphrase. */
static int
ca_nopass(char *buf, int size, int rwflag, void *arg)
{
	return (0);
}

static int
ca_name_ok(const char *s)
{
	size_t	 n;

	if (s == NULL)
		return (0);
	n = strnlen(s, CA_NAME_MAX + 1);
	if (n == 0 || n > CA_NAME_MAX)
		return (0);
	return (strspn(s, CA_NAMECHARS) == n);
}

/* A certificate's time for a log line. */
static const char *
ca_time(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm	 tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
		ERR_clear_error();
		(void)strlcpy(buf, "an unreadable time", len);
	}
	return (buf);
}

static int
ca_dir_open(struct ca_dir *d, const char *path, const char *kind)
{
	memset(d, 0, sizeof(*d));
	d->path = path;
	d->fd = -1;
	if (snprintf(d->key, sizeof(d->key), "%s-ca.key", kind) < 0 ||
	    snprintf(d->crt, sizeof(d->crt), "%s-ca.crt", kind) < 0 ||
	    snprintf(d->lock, sizeof(d->lock), "%s-ca.lock", kind) < 0 ||
	    snprintf(d->keytmp, sizeof(d->keytmp), "%s.tmp", d->key) < 0 ||
	    snprintf(d->crttmp, sizeof(d->crttmp), "%s.tmp", d->crt) < 0) {
		log_warn("%s: %s CA file names", path, kind);
		return (-1);
	}
	if ((d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("%s", path);
		return (-1);
	}
	return (0);
}

/* Wait for the CA's lock; the descriptor holds it until it is closed. */
static int
ca_lock(const struct ca_dir *d)
{
	struct stat	 st;
	int		 fd;

	if ((fd = openat(d->fd, d->lock, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s/%s", d->path, d->lock);
		return (-1);
	}
	if (fstat(fd, &st) == -1) {
		log_warn("%s/%s", d->path, d->lock);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("%s/%s: not a regular file", d->path, d->lock);
		goto fail;
	}
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			log_warn("%s/%s: flock", d->path, d->lock);
			goto fail;
		}
	}
	return (fd);
 fail:
	if (close(fd) == -1)
		log_warn("%s/%s: close", d->path, d->lock);
	return (-1);
}

/*
 * Read the file name of the CA's directory: a regular file of the
 * effective user, not reached through a symbolic link, that no one else
 * may write, nor read either if it is secret.  0 with the contents in a
 * buffer of CA_FILE_MAX bytes (secret: to be wiped), 1 if there is no
 * such file, -1 on any other failure (logged).
 */
static int
ca_file_read(const struct ca_dir *d, const char *name, int secret,
    char **bufp, size_t *lenp)
{
	struct stat	 st;
	mode_t		 deny;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, ret = -1;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = openat(d->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return (1);
		if (errno == ELOOP)
			log_warnx("%s/%s: is a symbolic link", d->path, name);
		else
			log_warn("%s/%s", d->path, name);
		return (-1);
	}
	if (fstat(fd, &st) == -1) {
		log_warn("%s/%s", d->path, name);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("%s/%s: not a regular file", d->path, name);
		goto done;
	}
	if (st.st_uid != geteuid()) {
		log_warnx("%s/%s: owned by uid %lu, not by uid %lu", d->path,
		    name, (unsigned long)st.st_uid, (unsigned long)geteuid());
		goto done;
	}
	deny = secret ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);
	if ((st.st_mode & deny) != 0) {
		log_warnx("%s/%s: mode %04o: group or others may %s it",
		    d->path, name, (unsigned int)(st.st_mode & 07777),
		    secret ? "access" : "write");
		goto done;
	}
	if (st.st_size > CA_FILE_MAX) {
		log_warnx("%s/%s: larger than %d bytes", d->path, name,
		    CA_FILE_MAX);
		goto done;
	}

	if ((buf = malloc(CA_FILE_MAX)) == NULL) {
		log_warn("%s/%s", d->path, name);
		goto done;
	}
	for (;;) {
		if (len == CA_FILE_MAX) {
			log_warnx("%s/%s: larger than %d bytes", d->path,
			    name, CA_FILE_MAX);
			goto done;
		}
		if ((n = read(fd, buf + len, CA_FILE_MAX - len)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%s/%s: read", d->path, name);
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
		freezero(buf, CA_FILE_MAX);
	if (close(fd) == -1) {
		log_warn("%s/%s: close", d->path, name);
		if (ret == 0) {
			freezero(*bufp, CA_FILE_MAX);
			*bufp = NULL;
			*lenp = 0;
			ret = -1;
		}
	}
	return (ret);
}

/* Create the temporary file tmp afresh, for the owner alone. */
static int
ca_tmp_create(const struct ca_dir *d, const char *tmp)
{
	int	 fd;

	/* Whatever a crash left here was never read: we hold the lock. */
	if (unlinkat(d->fd, tmp, 0) == -1 && errno != ENOENT) {
		log_warn("%s/%s: unlink", d->path, tmp);
		return (-1);
	}
	if ((fd = openat(d->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		log_warn("%s/%s", d->path, tmp);
		return (-1);
	}
	/* The mode whatever the umask. */
	if (fchmod(fd, 0600) == -1) {
		log_warn("%s/%s: chmod", d->path, tmp);
		if (close(fd) == -1)
			log_warn("%s/%s: close", d->path, tmp);
		if (unlinkat(d->fd, tmp, 0) == -1)
			log_warn("%s/%s: unlink", d->path, tmp);
		return (-1);
	}
	return (fd);
}

/*
 * Put the temporary file tmp, written on fd, on disk under its name, and
 * close fd.  On failure tmp is gone.
 */
static int
ca_tmp_commit(const struct ca_dir *d, int fd, const char *tmp,
    const char *name)
{
	int	 ret = -1;

	if (fsync(fd) == -1) {
		log_warn("%s/%s: fsync", d->path, tmp);
		if (close(fd) == -1)
			log_warn("%s/%s: close", d->path, tmp);
		goto done;
	}
	if (close(fd) == -1) {
		log_warn("%s/%s: close", d->path, tmp);
		goto done;
	}
	if (renameat(d->fd, tmp, d->fd, name) == -1) {
		log_warn("%s/%s: rename to %s", d->path, tmp, name);
		goto done;
	}
	if (fsync(d->fd) == -1) {
		log_warn("%s: fsync", d->path);
		return (-1);
	}
	ret = 0;
 done:
	if (ret == -1 && unlinkat(d->fd, tmp, 0) == -1 && errno != ENOENT)
		log_warn("%s/%s: unlink", d->path, tmp);
	return (ret);
}

static int
ca_write_all(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		buf += n;
		len -= n;
	}
	return (0);
}

struct ca *
ca_open(const char *dir, const char *kind)
{
	struct ca_dir	 d;
	struct ca	*ca = NULL;
	struct stat	 st;
	char		*buf;
	size_t		 len;
	int		 lockfd = -1, r, ok = 0;

	if (strcmp(kind, "user") != 0 && strcmp(kind, "host") != 0) {
		log_warnx("%s: no CA of kind \"%s\"", dir, kind);
		return (NULL);
	}
	if (ca_dir_open(&d, dir, kind) == -1)
		goto done;
	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		log_warn("%s", __func__);
		goto done;
	}
	ca->host = strcmp(kind, "host") == 0;
	ca->kind = ca->host ? "host" : "user";

	if ((lockfd = ca_lock(&d)) == -1)
		goto done;

	if ((r = ca_file_read(&d, d.crt, 0, &buf, &len)) == -1)
		goto done;
	if (r == 1) {
		if (fstatat(d.fd, d.key, &st, AT_SYMLINK_NOFOLLOW) == 0)
			log_warnx("%s/%s: no certificate %s: a creation was "
			    "interrupted; creating the %s CA anew", dir, d.key,
			    d.crt, kind);
		else if (errno != ENOENT) {
			log_warn("%s/%s", dir, d.key);
			goto done;
		}
		if (ca_create(ca, &d) == -1 || ca_save(ca, &d) == -1)
			goto done;
		log_info("%s: created the %s CA", dir, kind);
	} else {
		ca->pem = buf;
		ca->pemlen = len;
		if (ca_load(ca, &d) == -1 || ca_check(ca, &d) == -1)
			goto done;
	}
	ok = 1;
 done:
	if (lockfd != -1 && close(lockfd) == -1)
		log_warn("%s/%s: close", dir, d.lock);
	if (d.fd != -1 && close(d.fd) == -1)
		log_warn("%s: close", dir);
	if (!ok) {
		ca_free(ca);
		return (NULL);
	}
	return (ca);
}

/*
 * The certificate is in ca->pem, as read from its file: parse it, load
 * the key, and keep the certificate in the form issued certificates see
 * it, one PEM block and nothing more.
 */
static int
ca_load(struct ca *ca, const struct ca_dir *d)
{
	BIO	*b = NULL;
	char	*buf = NULL;
	size_t	 len;
	int	 r, ret = -1;

	if ((b = BIO_new_mem_buf(ca->pem, ca->pemlen)) == NULL) {
		ca_sslerr("%s/%s", d->path, d->crt);
		goto done;
	}
	if ((ca->cert = PEM_read_bio_X509(b, NULL, ca_nopass, NULL)) == NULL) {
		ca_sslerr("%s/%s: no certificate", d->path, d->crt);
		goto done;
	}
	BIO_free(b);
	b = NULL;
	free(ca->pem);
	ca->pem = NULL;
	if (ca_pem(ca->cert, &ca->pem, &ca->pemlen) == -1)
		goto done;

	if ((r = ca_file_read(d, d->key, 1, &buf, &len)) == -1)
		goto done;
	if (r == 1) {
		log_warnx("%s/%s: missing, yet its certificate %s is there",
		    d->path, d->key, d->crt);
		goto done;
	}
	if ((b = BIO_new_mem_buf(buf, len)) == NULL) {
		ca_sslerr("%s/%s", d->path, d->key);
		goto done;
	}
	if ((ca->key = PEM_read_bio_PrivateKey(b, NULL, ca_nopass,
	    NULL)) == NULL) {
		ca_sslerr("%s/%s: no private key", d->path, d->key);
		goto done;
	}
	ret = 0;
 done:
	BIO_free(b);
	if (buf != NULL)
		freezero(buf, CA_FILE_MAX);
	return (ret);
}

/* Is what was loaded a CA of this kind that may sign now? */
static int
ca_check(const struct ca *ca, const struct ca_dir *d)
{
	X509_NAME	*want = NULL;
	char		 group[64], cn[32], when[64];
	uint32_t	 flags;
	time_t		 now;
	int		 ret = -1;

	if (!EVP_PKEY_is_a(ca->key, "EC") ||
	    EVP_PKEY_get_group_name(ca->key, group, sizeof(group),
	    NULL) != 1 || OBJ_sn2nid(group) != NID_X9_62_prime256v1) {
		ERR_clear_error();
		log_warnx("%s/%s: not an ECDSA P-256 key", d->path, d->key);
		goto done;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		ERR_clear_error();
		log_warnx("%s/%s: not the certificate of the key in %s",
		    d->path, d->crt, d->key);
		goto done;
	}
	flags = X509_get_extension_flags(ca->cert);
	if ((flags & EXFLAG_INVALID) != 0 || (flags & EXFLAG_CA) == 0) {
		log_warnx("%s/%s: not a CA certificate (basicConstraints "
		    "CA:TRUE)", d->path, d->crt);
		goto done;
	}
	if (snprintf(cn, sizeof(cn), "Mezite %s CA", ca->kind) < 0 ||
	    (want = ca_subject(cn)) == NULL) {
		ca_sslerr("%s/%s", d->path, d->crt);
		goto done;
	}
	if (X509_NAME_cmp(X509_get_subject_name(ca->cert), want) != 0) {
		log_warnx("%s/%s: not the certificate of the %s CA "
		    "(O=Mezite, CN=%s)", d->path, d->crt, ca->kind, cn);
		goto done;
	}
	now = time(NULL);
	if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(ca->cert), now) != -1) {
		log_warnx("%s/%s: not valid before %s", d->path, d->crt,
		    ca_time(X509_get0_notBefore(ca->cert), when,
		    sizeof(when)));
		goto done;
	}
	if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(ca->cert), now) != 1) {
		log_warnx("%s/%s: expired on %s", d->path, d->crt,
		    ca_time(X509_get0_notAfter(ca->cert), when,
		    sizeof(when)));
		goto done;
	}
	ret = 0;
 done:
	X509_NAME_free(want);
	ERR_clear_error();
	return (ret);
}

/* A new key and its self-signed certificate, in memory. */
static int
ca_create(struct ca *ca, const struct ca_dir *d)
{
	X509_NAME	*name = NULL;
	struct tm	 tm;
	char		 cn[32];
	time_t		 now, end;
	int		 ret = -1;

	if ((ca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
	    "P-256")) == NULL) {
		ca_sslerr("%s/%s: key generation", d->path, d->key);
		goto done;
	}

	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL) {
		log_warn("%s: gmtime", __func__);
		goto done;
	}
	tm.tm_year += CA_YEARS;
	if ((end = timegm(&tm)) == -1) {
		log_warn("%s: timegm", __func__);
		goto done;
	}

	if (snprintf(cn, sizeof(cn), "Mezite %s CA", ca->kind) < 0 ||
	    (name = ca_subject(cn)) == NULL ||
	    (ca->cert = X509_new()) == NULL ||
	    X509_set_version(ca->cert, X509_VERSION_3) != 1 ||
	    ca_serial(ca->cert, NULL) == -1 ||
	    X509_set_subject_name(ca->cert, name) != 1 ||
	    X509_set_issuer_name(ca->cert, name) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(ca->cert),
	    now - CA_BACKDATE) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(ca->cert), end) == NULL ||
	    X509_set_pubkey(ca->cert, ca->key) != 1 ||
	    ca_add_exts(ca->cert, ca->cert, ca_exts_ca,
	    sizeof(ca_exts_ca) / sizeof(ca_exts_ca[0])) == -1 ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0 ||
	    ca_pem(ca->cert, &ca->pem, &ca->pemlen) == -1) {
		ca_sslerr("%s/%s: the %s CA certificate", d->path, d->crt,
		    ca->kind);
		goto done;
	}
	ret = 0;
 done:
	X509_NAME_free(name);
	return (ret);
}

/* Write a new CA's files: the key first, the certificate last. */
static int
ca_save(const struct ca *ca, const struct ca_dir *d)
{
	BIO	*b;
	int	 fd;

	if ((fd = ca_tmp_create(d, d->keytmp)) == -1)
		return (-1);
	if ((b = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL ||
	    PEM_write_bio_PrivateKey(b, ca->key, NULL, NULL, 0, NULL,
	    NULL) != 1 || BIO_flush(b) != 1) {
		ca_sslerr("%s/%s", d->path, d->keytmp);
		BIO_free(b);
		if (close(fd) == -1)
			log_warn("%s/%s: close", d->path, d->keytmp);
		if (unlinkat(d->fd, d->keytmp, 0) == -1)
			log_warn("%s/%s: unlink", d->path, d->keytmp);
		return (-1);
	}
	BIO_free(b);
	if (ca_tmp_commit(d, fd, d->keytmp, d->key) == -1)
		return (-1);

	if ((fd = ca_tmp_create(d, d->crttmp)) == -1)
		return (-1);
	if (ca_write_all(fd, ca->pem, ca->pemlen) == -1) {
		log_warn("%s/%s: write", d->path, d->crttmp);
		if (close(fd) == -1)
			log_warn("%s/%s: close", d->path, d->crttmp);
		if (unlinkat(d->fd, d->crttmp, 0) == -1)
			log_warn("%s/%s: unlink", d->path, d->crttmp);
		return (-1);
	}
	return (ca_tmp_commit(d, fd, d->crttmp, d->crt));
}

void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->pem);
	free(ca);
}

const char *
ca_cert_pem(const struct ca *ca, size_t *len)
{
	*len = ca->pemlen;
	return (ca->pem);
}

/* "O=Mezite, CN=<cn>" */
static X509_NAME *
ca_subject(const char *cn)
{
	X509_NAME	*n;

	if ((n = X509_NAME_new()) == NULL)
		return (NULL);
	if (X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_ASC,
	    (const unsigned char *)"Mezite", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1) {
		X509_NAME_free(n);
		return (NULL);
	}
	return (n);
}

/*
 * Give x a new serial: 128 random bits, positive and not zero.  Its
 * digits go to hex (CA_SERIAL_LEN bytes) unless hex is NULL.
 */
static int
ca_serial(X509 *x, char *hex)
{
	static const char	 digits[] = "0123456789abcdef";
	uint8_t			 b[CA_SERIAL_BYTES];
	BIGNUM			*bn;
	size_t			 i, n;
	int			 nib, ret = -1;

	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return (-1);
		b[0] &= 0x7f;
		for (i = 0; i < sizeof(b) && b[i] == 0; i++)
			;
	} while (i == sizeof(b));

	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		return (-1);
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto done;
	if (hex != NULL) {
		for (i = 0, n = 0; i < 2 * sizeof(b); i++) {
			nib = i % 2 ? b[i / 2] & 0x0f : b[i / 2] >> 4;
			if (n == 0 && nib == 0)
				continue;
			hex[n++] = digits[nib];
		}
		hex[n] = '\0';
	}
	ret = 0;
 done:
	BN_free(bn);
	return (ret);
}

static int
ca_add_exts(X509 *x, X509 *issuer, const struct ca_ext *exts, size_t n)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	size_t		 i;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		if ((ext = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid,
		    exts[i].value)) == NULL)
			return (-1);
		if (X509_add_ext(x, ext, -1) != 1) {
			X509_EXTENSION_free(ext);
			return (-1);
		}
		X509_EXTENSION_free(ext);
	}
	return (0);
}

/* An issued certificate's extensions, but for its names. */
static int
ca_add_leaf_exts(X509 *x, X509 *issuer, EVP_PKEY *pk)
{
	const struct ca_ext	 exts[] = {
		{ NID_basic_constraints,	"critical,CA:FALSE" },
		{ NID_key_usage,		EVP_PKEY_is_a(pk, "RSA") ?
		    "critical,digitalSignature,keyEncipherment" :
		    "critical,digitalSignature" },
		{ NID_ext_key_usage,		"clientAuth" },
		{ NID_subject_key_identifier,	"hash" },
		{ NID_authority_key_identifier,	"keyid:always" },
	};

	return (ca_add_exts(x, issuer, exts, sizeof(exts) / sizeof(exts[0])));
}

/* One URI subject alternative name prefix<v> for each of the n in v. */
static int
ca_add_san(X509 *x, const char *prefix, const char *const *v, size_t n)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gen;
	ASN1_IA5STRING	*uri;
	char		 buf[sizeof(CA_URI_ROLE) + CA_NAME_MAX];
	size_t		 i;
	int		 len, ret = -1;

	if ((gens = GENERAL_NAMES_new()) == NULL)
		return (-1);
	for (i = 0; i < n; i++) {
		len = snprintf(buf, sizeof(buf), "%s%s", prefix, v[i]);
		if (len < 0 || (size_t)len >= sizeof(buf))
			goto done;
		if ((uri = ASN1_IA5STRING_new()) == NULL)
			goto done;
		if (ASN1_STRING_set(uri, buf, len) != 1 ||
		    (gen = GENERAL_NAME_new()) == NULL) {
			ASN1_IA5STRING_free(uri);
			goto done;
		}
		GENERAL_NAME_set0_value(gen, GEN_URI, uri);
		if (sk_GENERAL_NAME_push(gens, gen) == 0) {
			GENERAL_NAME_free(gen);
			goto done;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto done;
	ret = 0;
 done:
	GENERAL_NAMES_free(gens);
	return (ret);
}

/* x in PEM, in a NUL-terminated buffer of *len bytes. */
static int
ca_pem(X509 *x, char **pem, size_t *len)
{
	BIO	*b;
	char	*data;
	long	 n;
	int	 ret = -1;

	*pem = NULL;
	*len = 0;
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return (-1);
	if (PEM_write_bio_X509(b, x) != 1 ||
	    (n = BIO_get_mem_data(b, &data)) <= 0)
		goto done;
	if ((*pem = malloc(n + 1)) == NULL) {
		log_warn("%s", __func__);
		goto done;
	}
	memcpy(*pem, data, n);
	(*pem)[n] = '\0';
	*len = n;
	ret = 0;
 done:
	BIO_free(b);
	return (ret);
}

/*
 * Parse a public key offered for certification: a DER
 * SubjectPublicKeyInfo, all of the bytes given, of a kind the CA
 * certifies, that passes OpenSSL's public key checks (an EC point on
 * its curve, an RSA modulus and exponent that make sense).  0, CA_BADKEY
 * or -1 (logged).
 */
static int
ca_pubkey(const uint8_t *spki, size_t len, EVP_PKEY **pkeyp)
{
	const unsigned char	*p = spki;
	EVP_PKEY		*pk = NULL;
	EVP_PKEY_CTX		*pctx = NULL;
	const char		*why;
	char			 group[64];
	int			 nid, bits, ret = CA_BADKEY;

	*pkeyp = NULL;
	if (spki == NULL || len == 0 || len > CA_SPKI_MAX) {
		why = "empty or too long";
		goto done;
	}
	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL) {
		why = "undecodable";
		goto done;
	}
	if (p != spki + len) {
		why = "bytes after the SubjectPublicKeyInfo";
		goto done;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group),
		    NULL) != 1) {
			why = "an EC key without a named curve";
			goto done;
		}
		nid = OBJ_sn2nid(group);
		if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1) {
			why = "an EC key on a curve other than P-256, P-384";
			goto done;
		}
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits < 2048 || bits > 8192) {
			why = "an RSA key of fewer than 2048 or more than "
			    "8192 bits";
			goto done;
		}
	} else if (!EVP_PKEY_is_a(pk, "ED25519")) {
		why = "not an EC, Ed25519 or RSA key";
		goto done;
	}
	if ((pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL) {
		ca_sslerr("%s", __func__);
		ret = -1;
		goto done;
	}
	if (EVP_PKEY_public_check(pctx) != 1) {
		why = "it fails the public key check";
		goto done;
	}
	*pkeyp = pk;
	pk = NULL;
	ret = 0;
 done:
	if (ret == CA_BADKEY)
		log_debug("%s: key refused: %s", __func__, why);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return (ret);
}

int
ca_issue(struct ca *ca, const uint8_t *spki, size_t spkilen,
    const char *name, const char *const *roles, size_t nroles,
    time_t not_before, time_t not_after, char serial[CA_SERIAL_LEN],
    char **pem, size_t *pemlen)
{
	EVP_PKEY	*pk = NULL;
	X509		*x = NULL;
	X509_NAME	*subj = NULL;
	char		 hex[CA_SERIAL_LEN];
	size_t		 i;
	int		 r, ret = -1;

	*pem = NULL;
	*pemlen = 0;
	serial[0] = '\0';

	if (!ca_name_ok(name)) {
		log_warnx("%s CA: refusing to certify a name that is not 1 "
		    "to %d letters, digits, '.', '_', '@', '-'", ca->kind,
		    CA_NAME_MAX);
		return (-1);
	}
	if (ca->host && nroles != 0) {
		log_warnx("host CA: %s: a host certificate carries no roles",
		    name);
		return (-1);
	}
	if (nroles > CA_ROLES_MAX) {
		log_warnx("user CA: %s: %zu roles, more than %d", name, nroles,
		    CA_ROLES_MAX);
		return (-1);
	}
	for (i = 0; i < nroles; i++) {
		if (!ca_name_ok(roles[i])) {
			log_warnx("%s CA: %s: a role that is not 1 to %d "
			    "letters, digits, '.', '_', '@', '-'", ca->kind,
			    name, CA_NAME_MAX);
			return (-1);
		}
	}
	r = ASN1_TIME_cmp_time_t(X509_get0_notAfter(ca->cert), not_after);
	if (not_before >= not_after || r < 0) {
		ERR_clear_error();
		log_warnx("%s CA: %s: validity %lld to %lld is empty or "
		    "outlasts the CA", ca->kind, name, (long long)not_before,
		    (long long)not_after);
		return (-1);
	}

	if ((r = ca_pubkey(spki, spkilen, &pk)) != 0)
		return (r);

	if ((subj = ca_subject(name)) == NULL ||
	    (x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    ca_serial(x, hex) == -1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    X509_set_subject_name(x, subj) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL ||
	    X509_set_pubkey(x, pk) != 1 ||
	    ca_add_leaf_exts(x, ca->cert, pk) == -1)
		goto fail;
	if (ca->host)
		r = ca_add_san(x, CA_URI_NODE, &name, 1);
	else if (nroles > 0)
		r = ca_add_san(x, CA_URI_ROLE, roles, nroles);
	if (r == -1 ||
	    X509_sign(x, ca->key, EVP_sha256()) <= 0 ||
	    ca_pem(x, pem, pemlen) == -1)
		goto fail;
	(void)strlcpy(serial, hex, CA_SERIAL_LEN);
	ret = 0;
	goto done;
 fail:
	ca_sslerr("%s CA: certificate for %s", ca->kind, name);
 done:
	EVP_PKEY_free(pk);
	X509_free(x);
	X509_NAME_free(subj);
	return (ret);
}
