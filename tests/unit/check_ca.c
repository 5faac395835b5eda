/*
 * The auth worker's CAs: their files on disk, what opening them refuses,
 * and the certificates they issue.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "log.h"

#define YEAR		(365 * 24 * 3600)

static char	 tmpdir[PATH_MAX];

static void
setup(void)
{
	ck_assert_uint_lt(strlcpy(tmpdir, "/tmp/check_ca.XXXXXX",
	    sizeof(tmpdir)), sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return (remove(path));
}

static void
teardown(void)
{
	ck_assert_int_eq(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static const char *
fpath(char *buf, const char *name)
{
	ck_assert_int_lt(snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name),
	    PATH_MAX);
	return (buf);
}

static char *
file_read(const char *name, size_t *len)
{
	char	 p[PATH_MAX], *buf;
	FILE	*f;
	long	 n;

	ck_assert_ptr_nonnull(f = fopen(fpath(p, name), "r"));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	ck_assert_int_ge(n = ftell(f), 0);
	rewind(f);
	ck_assert_ptr_nonnull(buf = malloc(n + 1));
	ck_assert_uint_eq(fread(buf, 1, n, f), (size_t)n);
	buf[n] = '\0';
	ck_assert_int_eq(fclose(f), 0);
	*len = n;
	return (buf);
}

static void
file_write(const char *name, const void *buf, size_t len, mode_t mode)
{
	char	 p[PATH_MAX];
	int	 fd;

	ck_assert_int_ge(fd = open(fpath(p, name), O_WRONLY | O_CREAT |
	    O_TRUNC, mode), 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

static int
file_exists(const char *name)
{
	char		 p[PATH_MAX];
	struct stat	 st;

	return (lstat(fpath(p, name), &st) == 0);
}

static mode_t
file_mode(const char *name)
{
	char		 p[PATH_MAX];
	struct stat	 st;

	ck_assert_int_eq(lstat(fpath(p, name), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	return (st.st_mode & 07777);
}

static struct ca *
ca_ok(const char *kind)
{
	struct ca	*ca;

	ck_assert_ptr_nonnull(ca = ca_open(tmpdir, kind));
	return (ca);
}

/* ca_open() refuses, and its log line says why, naming the file. */
static void
ca_refused(const char *kind, const char *file, const char *why)
{
	char	 log[4096], want[PATH_MAX];
	FILE	*f;
	size_t	 n;
	int	 saved;

	ck_assert_ptr_nonnull(f = tmpfile());
	ck_assert_int_eq(fflush(stderr), 0);
	ck_assert_int_ge(saved = dup(STDERR_FILENO), 0);
	ck_assert_int_eq(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
	ck_assert_ptr_null(ca_open(tmpdir, kind));
	ck_assert_int_eq(fflush(stderr), 0);
	ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	ck_assert_int_eq(close(saved), 0);
	rewind(f);
	n = fread(log, 1, sizeof(log) - 1, f);
	log[n] = '\0';
	ck_assert_int_eq(fclose(f), 0);
	fputs(log, stderr);
	ck_assert_msg(strstr(log, fpath(want, file)) != NULL,
	    "log does not name %s: %s", want, log);
	ck_assert_msg(strstr(log, why) != NULL, "log does not say \"%s\": %s",
	    why, log);
}

static X509 *
pem_x509(const char *pem, size_t len)
{
	BIO	*b;
	X509	*x;

	ck_assert_ptr_nonnull(b = BIO_new_mem_buf(pem, len));
	ck_assert_ptr_nonnull(x = PEM_read_bio_X509(b, NULL, NULL, NULL));
	BIO_free(b);
	return (x);
}

static X509 *
ca_x509(const struct ca *ca)
{
	const char	*pem;
	size_t		 len;

	ck_assert_ptr_nonnull(pem = ca_cert_pem(ca, &len));
	ck_assert_uint_eq(strlen(pem), len);
	return (pem_x509(pem, len));
}

/* "O=Mezite, CN=alice" */
static void
name_is(const X509_NAME *n, const char *want)
{
	BIO	*b;
	char	 buf[256];
	int	 len;

	ck_assert_ptr_nonnull(b = BIO_new(BIO_s_mem()));
	ck_assert_int_gt(X509_NAME_print_ex(b, n, 0,
	    XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ), 0);
	ck_assert_int_gt(len = BIO_read(b, buf, sizeof(buf) - 1), 0);
	buf[len] = '\0';
	BIO_free(b);
	ck_assert_str_eq(buf, want);
}

static int
ext_critical(X509 *x, int nid)
{
	int	 i;

	ck_assert_int_ge(i = X509_get_ext_by_NID(x, nid, -1), 0);
	ck_assert_int_eq(X509_get_ext_by_NID(x, nid, i), -1);
	return (X509_EXTENSION_get_critical(X509_get_ext(x, i)));
}

/* The serial's hex, lower case, without leading zeros. */
static void
serial_hex(X509 *x, char *buf, size_t len)
{
	const ASN1_INTEGER	*sn;
	BIGNUM			*bn;
	char			*hex, *p;

	sn = X509_get0_serialNumber(x);
	ck_assert_int_eq(ASN1_STRING_type(sn), V_ASN1_INTEGER);	/* > 0 */
	ck_assert_ptr_nonnull(bn = ASN1_INTEGER_to_BN(sn, NULL));
	ck_assert(!BN_is_zero(bn));
	ck_assert_int_le(BN_num_bits(bn), 127);
	ck_assert_ptr_nonnull(hex = BN_bn2hex(bn));
	for (p = hex; *p == '0'; p++)
		;
	ck_assert_uint_lt(strlcpy(buf, p, len), len);
	for (p = buf; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = *p - 'A' + 'a';
	OPENSSL_free(hex);
	BN_free(bn);
}

static void
serial_ok(const char *serial, X509 *x)
{
	char	 want[CA_SERIAL_LEN];

	ck_assert_uint_ge(strlen(serial), 1);
	ck_assert_uint_le(strlen(serial), 32);
	ck_assert_uint_eq(strspn(serial, "0123456789abcdef"), strlen(serial));
	ck_assert_int_ne(serial[0], '0');
	serial_hex(x, want, sizeof(want));
	ck_assert_str_eq(serial, want);
}

/* X509_verify_cert() of x against the CA alone, for this purpose. */
static int
verify_chain(X509 *x, X509 *cacert, int purpose)
{
	X509_STORE	*store;
	X509_STORE_CTX	*ctx;
	int		 r;

	ck_assert_ptr_nonnull(store = X509_STORE_new());
	ck_assert_int_eq(X509_STORE_add_cert(store, cacert), 1);
	ck_assert_ptr_nonnull(ctx = X509_STORE_CTX_new());
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
	ck_assert_int_eq(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	r = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return (r);
}

static uint8_t *
spki_of(EVP_PKEY *k, size_t *len)
{
	uint8_t	*der = NULL;
	int	 n;

	ck_assert_int_gt(n = i2d_PUBKEY(k, &der), 0);
	*len = n;
	return (der);
}

enum keykind { K_P256, K_P384, K_ED25519, K_RSA2048, K_NKINDS };

static EVP_PKEY *
keygen(enum keykind kind)
{
	EVP_PKEY	*k = NULL;

	switch (kind) {
	case K_P256:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case K_P384:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case K_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case K_RSA2048:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	default:
		ck_abort();
	}
	ck_assert_ptr_nonnull(k);
	return (k);
}

/* Issue a certificate that must be issued. */
static X509 *
issue(struct ca *ca, EVP_PKEY *k, const char *name, const char *const *roles,
    size_t nroles, time_t nb, time_t na, char *serial)
{
	uint8_t	*spki;
	size_t	 spkilen, pemlen;
	char	*pem;
	X509	*x;

	spki = spki_of(k, &spkilen);
	ck_assert_int_eq(ca_issue(ca, spki, spkilen, name, roles, nroles, nb,
	    na, serial, &pem, &pemlen), 0);
	ck_assert_ptr_nonnull(pem);
	ck_assert_uint_eq(strlen(pem), pemlen);
	x = pem_x509(pem, pemlen);
	free(pem);
	OPENSSL_free(spki);
	return (x);
}

/* The URI subject alternative names of x, exactly these. */
static void
san_is(X509 *x, const char *const *want, size_t n)
{
	GENERAL_NAMES		*gens;
	const GENERAL_NAME	*gen;
	const ASN1_STRING	*s;
	int			 crit, i;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (n == 0) {
		ck_assert_ptr_null(gens);
		ck_assert_int_eq(crit, -1);
		return;
	}
	ck_assert_ptr_nonnull(gens);
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(sk_GENERAL_NAME_num(gens), (int)n);
	for (i = 0; i < (int)n; i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		ck_assert_int_eq(gen->type, GEN_URI);
		s = gen->d.uniformResourceIdentifier;
		ck_assert_int_eq(ASN1_STRING_length(s), strlen(want[i]));
		ck_assert_mem_eq(ASN1_STRING_get0_data(s), want[i],
		    strlen(want[i]));
	}
	GENERAL_NAMES_free(gens);
}

/*
 * Replace the user CA's certificate with one of the same key and
 * subject: a CA or not, valid from nb to na.
 */
static void
recert(int isca, time_t nb, time_t na)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	X509_NAME	*n;
	EVP_PKEY	*key;
	X509		*x;
	BIO		*b;
	char		*buf, *pem;
	size_t		 len;
	long		 pemlen;

	buf = file_read("user-ca.key", &len);
	ck_assert_ptr_nonnull(b = BIO_new_mem_buf(buf, len));
	ck_assert_ptr_nonnull(key = PEM_read_bio_PrivateKey(b, NULL, NULL,
	    NULL));
	BIO_free(b);
	free(buf);

	ck_assert_ptr_nonnull(x = X509_new());
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	ck_assert_ptr_nonnull(n = X509_get_subject_name(x));
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	    (const unsigned char *)"Mezite", -1, -1, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Mezite user CA", -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, n), 1);
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(x), nb));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x), na));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ck_assert_ptr_nonnull(ext = X509V3_EXT_nconf_nid(NULL, &ctx,
	    NID_basic_constraints, isca ? "critical,CA:TRUE" :
	    "critical,CA:FALSE"));
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);

	ck_assert_ptr_nonnull(b = BIO_new(BIO_s_mem()));
	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	ck_assert_int_gt(pemlen = BIO_get_mem_data(b, &pem), 0);
	file_write("user-ca.crt", pem, pemlen, 0600);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(key);
}

/* The exit status of openssl verify -purpose sslclient. */
static int
openssl_verify(const char *cafile, const char *certfile)
{
	char	 ca[PATH_MAX], crt[PATH_MAX];
	pid_t	 pid;
	int	 status, fd;

	fpath(ca, cafile);
	fpath(crt, certfile);
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) == -1 ||
		    dup2(fd, STDOUT_FILENO) == -1 ||
		    dup2(fd, STDERR_FILENO) == -1)
			_exit(126);
		execlp("openssl", "openssl", "verify", "-x509_strict",
		    "-CAfile", ca, "-purpose", "sslclient", crt, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_ne(WEXITSTATUS(status), 127);
	return (WEXITSTATUS(status));
}

/*
 * The files on disk.
 */

START_TEST(test_create_files)
{
	struct ca	*ca;
	const char	*pem;
	char		*crt;
	size_t		 len, crtlen;

	ca = ca_ok("user");
	ck_assert_uint_eq(file_mode("user-ca.key"), 0600);
	ck_assert_uint_eq(file_mode("user-ca.crt"), 0600);
	ck_assert(!file_exists("user-ca.key.tmp"));
	ck_assert(!file_exists("user-ca.crt.tmp"));
	crt = file_read("user-ca.crt", &crtlen);
	pem = ca_cert_pem(ca, &len);
	ck_assert_uint_eq(len, crtlen);
	ck_assert_mem_eq(pem, crt, len);
	ck_assert_ptr_nonnull(strstr(crt, "-----BEGIN CERTIFICATE-----"));
	free(crt);
	crt = file_read("user-ca.key", &crtlen);
	ck_assert_ptr_nonnull(strstr(crt, "-----BEGIN PRIVATE KEY-----"));
	free(crt);
	ca_free(ca);
}
END_TEST

/* Files made whatever the umask. */
START_TEST(test_create_umask)
{
	struct ca	*ca;
	mode_t		 old;

	old = umask(0);
	ca = ca_open(tmpdir, "host");
	(void)umask(old);
	ck_assert_ptr_nonnull(ca);
	ck_assert_uint_eq(file_mode("host-ca.key"), 0600);
	ck_assert_uint_eq(file_mode("host-ca.crt"), 0600);
	ca_free(ca);
}
END_TEST

START_TEST(test_reopen)
{
	struct ca	*ca;
	const char	*pem;
	char		*first, *key, *key2;
	size_t		 len, len2, keylen, keylen2;

	ca = ca_ok("user");
	pem = ca_cert_pem(ca, &len);
	ck_assert_ptr_nonnull(first = strdup(pem));
	ca_free(ca);
	key = file_read("user-ca.key", &keylen);

	ca = ca_ok("user");
	pem = ca_cert_pem(ca, &len2);
	ck_assert_uint_eq(len, len2);
	ck_assert_str_eq(pem, first);
	key2 = file_read("user-ca.key", &keylen2);
	ck_assert_uint_eq(keylen, keylen2);
	ck_assert_mem_eq(key, key2, keylen);
	ca_free(ca);
	free(first);
	free(key);
	free(key2);
}
END_TEST

START_TEST(test_ca_cert)
{
	struct ca	*ca;
	X509		*x;
	EVP_PKEY	*pk;
	char		 group[32], serial[CA_SERIAL_LEN];
	uint32_t	 flags;
	time_t		 before, after;

	before = time(NULL);
	ca = ca_ok(_i == 0 ? "user" : "host");
	after = time(NULL);
	x = ca_x509(ca);
	name_is(X509_get_subject_name(x), _i == 0 ?
	    "O=Mezite, CN=Mezite user CA" : "O=Mezite, CN=Mezite host CA");
	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x),
	    X509_get_issuer_name(x)), 0);
	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
	serial_hex(x, serial, sizeof(serial));
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(x)), 1);

	ck_assert_ptr_nonnull(pk = X509_get0_pubkey(x));
	ck_assert(EVP_PKEY_is_a(pk, "EC"));
	ck_assert_int_eq(EVP_PKEY_get_group_name(pk, group, sizeof(group),
	    NULL), 1);
	ck_assert_str_eq(group, "prime256v1");

	/* A minute back; ten years on. */
	ck_assert_int_ge(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	    before - 60), 0);
	ck_assert_int_le(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	    after - 60), 0);
	ck_assert_int_ge(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	    before + 10 * YEAR), 0);
	ck_assert_int_le(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	    after + 10 * YEAR + 3 * 24 * 3600), 0);

	flags = X509_get_extension_flags(x);
	ck_assert((flags & EXFLAG_INVALID) == 0);
	ck_assert((flags & EXFLAG_CA) != 0);
	ck_assert_int_eq(X509_get_pathlen(x), 0);
	ck_assert_int_eq(ext_critical(x, NID_basic_constraints), 1);
	ck_assert_uint_eq(X509_get_key_usage(x), KU_KEY_CERT_SIGN |
	    KU_CRL_SIGN);
	ck_assert_int_eq(ext_critical(x, NID_key_usage), 1);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	ck_assert_int_eq(ext_critical(x, NID_subject_key_identifier), 0);
	ck_assert_int_eq(X509_get_ext_count(x), 3);

	X509_free(x);
	ca_free(ca);
}
END_TEST

static const mode_t key_modes[] = { 0640, 0620, 0604, 0602, 0610, 0601 };

START_TEST(test_key_mode)
{
	char	 p[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(chmod(fpath(p, "user-ca.key"), key_modes[_i]), 0);
	ca_refused("user", "user-ca.key", "group or others may access it");
}
END_TEST

START_TEST(test_key_symlink)
{
	char	 p[PATH_MAX], q[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(rename(fpath(p, "user-ca.key"),
	    fpath(q, "elsewhere.key")), 0);
	ck_assert_int_eq(symlink("elsewhere.key", fpath(p, "user-ca.key")),
	    0);
	ca_refused("user", "user-ca.key", "symbolic link");
}
END_TEST

START_TEST(test_key_not_regular)
{
	char	 p[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(unlink(fpath(p, "user-ca.key")), 0);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ca_refused("user", "user-ca.key", "not a regular file");
}
END_TEST

START_TEST(test_key_not_owned)
{
	char	 p[PATH_MAX];

	if (geteuid() != 0)
		return;		/* only root can give a file away */
	ca_free(ca_ok("user"));
	ck_assert_int_eq(chown(fpath(p, "user-ca.key"), 65534, 65534), 0);
	ca_refused("user", "user-ca.key", "owned by uid 65534");
}
END_TEST

/* The certificate is public: others may read it, not write it. */
START_TEST(test_cert_readable)
{
	char	 p[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(chmod(fpath(p, "user-ca.crt"), 0644), 0);
	ca_free(ca_ok("user"));
}
END_TEST

START_TEST(test_cert_writable)
{
	char	 p[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(chmod(fpath(p, "user-ca.crt"), 0620), 0);
	ca_refused("user", "user-ca.crt", "group or others may write it");
}
END_TEST

START_TEST(test_cert_symlink)
{
	char	 p[PATH_MAX], q[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(rename(fpath(p, "user-ca.crt"),
	    fpath(q, "elsewhere.crt")), 0);
	ck_assert_int_eq(symlink("elsewhere.crt", fpath(p, "user-ca.crt")),
	    0);
	ca_refused("user", "user-ca.crt", "symbolic link");
}
END_TEST

/* What a crash between the two renames leaves: a new CA replaces it. */
START_TEST(test_key_without_cert)
{
	struct ca	*ca;
	const char	*pem;
	char		 p[PATH_MAX], *first, *key, *key2;
	size_t		 len, keylen, keylen2;
	X509		*x;

	ca = ca_ok("user");
	ck_assert_ptr_nonnull(first = strdup(ca_cert_pem(ca, &len)));
	ca_free(ca);
	key = file_read("user-ca.key", &keylen);
	ck_assert_int_eq(unlink(fpath(p, "user-ca.crt")), 0);

	ca = ca_ok("user");
	pem = ca_cert_pem(ca, &len);
	ck_assert_str_ne(pem, first);
	key2 = file_read("user-ca.key", &keylen2);
	ck_assert(keylen != keylen2 || memcmp(key, key2, keylen) != 0);
	ck_assert_uint_eq(file_mode("user-ca.key"), 0600);
	ck_assert_uint_eq(file_mode("user-ca.crt"), 0600);
	ca_free(ca);

	/* And the new pair holds together. */
	ca = ca_ok("user");
	x = ca_x509(ca);
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(x)), 1);
	X509_free(x);
	ca_free(ca);
	free(first);
	free(key);
	free(key2);
}
END_TEST

START_TEST(test_cert_without_key)
{
	char	 p[PATH_MAX];

	ca_free(ca_ok("user"));
	ck_assert_int_eq(unlink(fpath(p, "user-ca.key")), 0);
	ca_refused("user", "user-ca.key", "missing");
	ck_assert(file_exists("user-ca.crt"));
}
END_TEST

START_TEST(test_key_mismatch)
{
	char	 p[PATH_MAX], *key;
	size_t	 len;

	ca_free(ca_ok("user"));
	ca_free(ca_ok("host"));
	key = file_read("host-ca.key", &len);
	ck_assert_int_eq(unlink(fpath(p, "user-ca.key")), 0);
	file_write("user-ca.key", key, len, 0600);
	free(key);
	ca_refused("user", "user-ca.crt", "not the certificate of the key");
}
END_TEST

START_TEST(test_cert_garbage)
{
	ca_free(ca_ok("user"));
	file_write("user-ca.crt", "not a certificate\n", 18, 0600);
	ca_refused("user", "user-ca.crt", "no certificate");
}
END_TEST

START_TEST(test_key_garbage)
{
	ca_free(ca_ok("user"));
	file_write("user-ca.key", "not a key\n", 10, 0600);
	ca_refused("user", "user-ca.key", "no private key");
}
END_TEST

START_TEST(test_cert_not_ca)
{
	time_t	 now = time(NULL);

	ca_free(ca_ok("user"));
	recert(0, now - 60, now + YEAR);
	ca_refused("user", "user-ca.crt", "not a CA certificate");
}
END_TEST

START_TEST(test_cert_expired)
{
	time_t	 now = time(NULL);

	ca_free(ca_ok("user"));
	recert(1, now - 2 * YEAR, now - YEAR);
	ca_refused("user", "user-ca.crt", "expired");
}
END_TEST

START_TEST(test_cert_not_yet)
{
	time_t	 now = time(NULL);

	ca_free(ca_ok("user"));
	recert(1, now + 3600, now + YEAR);
	ca_refused("user", "user-ca.crt", "not valid before");
}
END_TEST

/* The user CA's files under the host CA's names. */
START_TEST(test_cert_other_kind)
{
	char	*buf;
	size_t	 len;

	ca_free(ca_ok("user"));
	buf = file_read("user-ca.key", &len);
	file_write("host-ca.key", buf, len, 0600);
	free(buf);
	buf = file_read("user-ca.crt", &len);
	file_write("host-ca.crt", buf, len, 0600);
	free(buf);
	ca_refused("host", "host-ca.crt", "not the certificate of the host CA");
}
END_TEST

/* What a crash before a rename leaves is never read, and is cleared. */
START_TEST(test_stale_tmp)
{
	struct ca	*ca;
	char		 p[PATH_MAX], *buf;
	size_t		 len;

	file_write("target", "untouched\n", 10, 0600);
	ck_assert_int_eq(symlink("target", fpath(p, "user-ca.key.tmp")), 0);
	file_write("user-ca.crt.tmp", "-----BEGIN", 10, 0644);
	ca = ca_ok("user");
	ck_assert(!file_exists("user-ca.key.tmp"));
	ck_assert(!file_exists("user-ca.crt.tmp"));
	buf = file_read("target", &len);
	ck_assert_str_eq(buf, "untouched\n");
	free(buf);
	ck_assert_uint_eq(file_mode("user-ca.key"), 0600);
	ca_free(ca);
}
END_TEST

/* Processes that open a new CA at once all get the same one. */
START_TEST(test_race)
{
	struct ca	*ca;
	const char	*pem;
	char		 name[PATH_MAX], *first = NULL, *buf;
	size_t		 len, firstlen = 0;
	pid_t		 pids[8];
	int		 i, fd, status;

	for (i = 0; i < 8; i++) {
		ck_assert_int_ne(pids[i] = fork(), -1);
		if (pids[i] == 0) {
			if ((ca = ca_open(tmpdir, "user")) == NULL)
				_exit(1);
			/* No ck_assert here: this is not the test's process. */
			pem = ca_cert_pem(ca, &len);
			if (snprintf(name, sizeof(name), "%s/pem.%d", tmpdir,
			    i) >= (int)sizeof(name) ||
			    (fd = open(name, O_WRONLY | O_CREAT | O_EXCL,
			    0600)) == -1 ||
			    write(fd, pem, len) != (ssize_t)len ||
			    close(fd) == -1)
				_exit(1);
			ca_free(ca);
			_exit(0);
		}
	}
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status));
		ck_assert_int_eq(WEXITSTATUS(status), 0);
	}
	for (i = 0; i < 8; i++) {
		ck_assert_int_lt(snprintf(name, sizeof(name), "pem.%d", i),
		    (int)sizeof(name));
		buf = file_read(name, &len);
		if (first == NULL) {
			first = buf;
			firstlen = len;
			continue;
		}
		ck_assert_uint_eq(len, firstlen);
		ck_assert_mem_eq(buf, first, len);
		free(buf);
	}
	ca = ca_ok("user");
	ck_assert_str_eq(ca_cert_pem(ca, &len), first);
	ca_free(ca);
	free(first);
}
END_TEST

START_TEST(test_bad_kind)
{
	ck_assert_ptr_null(ca_open(tmpdir, "admin"));
	ck_assert_ptr_null(ca_open(tmpdir, "users"));
	ck_assert_ptr_null(ca_open(tmpdir, ""));
	ck_assert(!file_exists("admin-ca.key"));
}
END_TEST

START_TEST(test_no_dir)
{
	char	 p[PATH_MAX];

	ck_assert_ptr_null(ca_open(fpath(p, "missing"), "user"));
}
END_TEST

/*
 * Issued certificates.
 */

static const char *const key_names[] = {
	"P-256", "P-384", "Ed25519", "RSA-2048"
};

START_TEST(test_issue_user)
{
	static const char *const roles[] = { "admin", "dev.ops" };
	static const char *const uris[] = {
		"mezite:role:admin", "mezite:role:dev.ops"
	};
	struct ca	*ca;
	EVP_PKEY	*k;
	X509		*x, *cax;
	char		 serial[CA_SERIAL_LEN];
	uint32_t	 flags, ku;
	time_t		 now = time(NULL);

	ca = ca_ok("user");
	cax = ca_x509(ca);
	k = keygen(_i);
	x = issue(ca, k, "alice@example.com", roles, 2, now - 60, now + 3600,
	    serial);

	ck_assert_msg(X509_verify(x, X509_get0_pubkey(cax)) == 1, "%s",
	    key_names[_i]);
	ck_assert_int_eq(verify_chain(x, cax, X509_PURPOSE_SSL_CLIENT), 1);
	ck_assert_int_ne(verify_chain(x, cax, X509_PURPOSE_SSL_SERVER), 1);
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);

	name_is(X509_get_subject_name(x), "O=Mezite, CN=alice@example.com");
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(cax)), 0);
	san_is(x, uris, 2);
	serial_ok(serial, x);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	    now - 60), 0);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	    now + 3600), 0);

	flags = X509_get_extension_flags(x);
	ck_assert((flags & EXFLAG_INVALID) == 0);
	ck_assert((flags & EXFLAG_BCONS) != 0);
	ck_assert((flags & EXFLAG_CA) == 0);
	ck_assert_int_eq(ext_critical(x, NID_basic_constraints), 1);
	ku = KU_DIGITAL_SIGNATURE;
	if (_i == K_RSA2048)
		ku |= KU_KEY_ENCIPHERMENT;
	ck_assert_uint_eq(X509_get_key_usage(x), ku);
	ck_assert_int_eq(ext_critical(x, NID_key_usage), 1);
	ck_assert_uint_eq(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	ck_assert_int_eq(ext_critical(x, NID_ext_key_usage), 0);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	ck_assert_ptr_nonnull(X509_get0_authority_key_id(x));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
	    X509_get0_subject_key_id(cax)), 0);
	ck_assert_int_eq(X509_get_ext_count(x), 6);

	X509_free(x);
	X509_free(cax);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

START_TEST(test_issue_no_roles)
{
	struct ca	*ca;
	EVP_PKEY	*k;
	X509		*x, *cax;
	char		 serial[CA_SERIAL_LEN];
	time_t		 now = time(NULL);

	ca = ca_ok("user");
	cax = ca_x509(ca);
	k = keygen(K_P256);
	x = issue(ca, k, "bob", NULL, 0, now - 60, now + 3600, serial);
	name_is(X509_get_subject_name(x), "O=Mezite, CN=bob");
	san_is(x, NULL, 0);
	ck_assert_int_eq(verify_chain(x, cax, X509_PURPOSE_SSL_CLIENT), 1);
	X509_free(x);
	X509_free(cax);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

START_TEST(test_issue_host)
{
	static const char *const uris[] = { "mezite:node:web-1.dc_2" };
	struct ca	*user, *host;
	EVP_PKEY	*k;
	X509		*x, *hostx, *userx;
	char		 serial[CA_SERIAL_LEN];
	time_t		 now = time(NULL);

	user = ca_ok("user");
	host = ca_ok("host");
	userx = ca_x509(user);
	hostx = ca_x509(host);
	k = keygen(K_ED25519);
	x = issue(host, k, "web-1.dc_2", NULL, 0, now - 60, now + 3600,
	    serial);
	name_is(X509_get_subject_name(x), "O=Mezite, CN=web-1.dc_2");
	name_is(X509_get_issuer_name(x), "O=Mezite, CN=Mezite host CA");
	san_is(x, uris, 1);
	serial_ok(serial, x);
	ck_assert_uint_eq(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	ck_assert_int_eq(verify_chain(x, hostx, X509_PURPOSE_SSL_CLIENT), 1);
	ck_assert_int_ne(verify_chain(x, userx, X509_PURPOSE_SSL_CLIENT), 1);
	X509_free(x);
	X509_free(hostx);
	X509_free(userx);
	EVP_PKEY_free(k);
	ca_free(user);
	ca_free(host);
}
END_TEST

/* A host certificate names its node and nothing else. */
START_TEST(test_issue_host_roles)
{
	static const char *const roles[] = { "admin" };
	struct ca	*ca;
	EVP_PKEY	*k;
	uint8_t		*spki;
	size_t		 len, pemlen;
	char		 serial[CA_SERIAL_LEN], *pem;
	time_t		 now = time(NULL);

	ca = ca_ok("host");
	k = keygen(K_P256);
	spki = spki_of(k, &len);
	ck_assert_int_eq(ca_issue(ca, spki, len, "web1", roles, 1, now - 60,
	    now + 3600, serial, &pem, &pemlen), -1);
	ck_assert_ptr_null(pem);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

START_TEST(test_cas_differ)
{
	struct ca	*user, *host;
	X509		*ux, *hx, *x;
	EVP_PKEY	*k;
	char		 serial[CA_SERIAL_LEN];
	const char	*upem, *hpem;
	size_t		 ulen, hlen;
	time_t		 now = time(NULL);

	user = ca_ok("user");
	host = ca_ok("host");
	upem = ca_cert_pem(user, &ulen);
	hpem = ca_cert_pem(host, &hlen);
	ck_assert_str_ne(upem, hpem);
	ux = ca_x509(user);
	hx = ca_x509(host);
	ck_assert_int_ne(EVP_PKEY_eq(X509_get0_pubkey(ux),
	    X509_get0_pubkey(hx)), 1);
	ck_assert_int_ne(X509_NAME_cmp(X509_get_subject_name(ux),
	    X509_get_subject_name(hx)), 0);

	k = keygen(K_P256);
	x = issue(user, k, "alice", NULL, 0, now - 60, now + 3600, serial);
	ck_assert_int_ne(X509_verify(x, X509_get0_pubkey(hx)), 1);
	ck_assert_int_ne(verify_chain(x, hx, X509_PURPOSE_SSL_CLIENT), 1);
	ck_assert_int_eq(verify_chain(x, ux, X509_PURPOSE_SSL_CLIENT), 1);
	ERR_clear_error();

	X509_free(x);
	X509_free(ux);
	X509_free(hx);
	EVP_PKEY_free(k);
	ca_free(user);
	ca_free(host);
}
END_TEST

START_TEST(test_serials_differ)
{
	struct ca	*ca;
	EVP_PKEY	*k;
	X509		*a, *b;
	char		 sa[CA_SERIAL_LEN], sb[CA_SERIAL_LEN];
	time_t		 now = time(NULL);

	ca = ca_ok("user");
	k = keygen(K_P256);
	a = issue(ca, k, "alice", NULL, 0, now - 60, now + 3600, sa);
	b = issue(ca, k, "alice", NULL, 0, now - 60, now + 3600, sb);
	ck_assert_str_ne(sa, sb);
	ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
	    X509_get0_serialNumber(b)), 0);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

enum badkey {
	B_GARBAGE, B_TRAILING, B_TRUNCATED, B_RSA1024, B_OFFCURVE,
	B_SECP256K1, B_ED448, B_X25519, B_EMPTY, B_NULL, B_HUGE, B_NKINDS
};

START_TEST(test_issue_badkey)
{
	static const uint8_t	 garbage[] = "this is not a key at all";
	struct ca		*ca;
	EVP_PKEY		*k = NULL;
	uint8_t			*spki = NULL, *buf = NULL;
	const uint8_t		*p;
	size_t			 len = 0, pemlen;
	char			 serial[CA_SERIAL_LEN], *pem;
	time_t			 now = time(NULL);

	switch (_i) {
	case B_GARBAGE:
		p = garbage;
		len = sizeof(garbage);
		break;
	case B_TRAILING:
		k = keygen(K_P256);
		spki = spki_of(k, &len);
		ck_assert_ptr_nonnull(buf = malloc(len + 1));
		memcpy(buf, spki, len);
		buf[len++] = 0;
		p = buf;
		break;
	case B_TRUNCATED:
		k = keygen(K_P256);
		spki = spki_of(k, &len);
		p = spki;
		len--;
		break;
	case B_RSA1024:
		ck_assert_ptr_nonnull(k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
		    (size_t)1024));
		p = spki = spki_of(k, &len);
		break;
	case B_OFFCURVE:
		/* Y + 1 is not on the curve where Y is. */
		k = keygen(K_P256);
		spki = spki_of(k, &len);
		ck_assert_uint_eq(len, 91);
		ck_assert_int_eq(spki[26], 0x04);	/* uncompressed */
		spki[len - 1] ^= 1;
		p = spki;
		break;
	case B_SECP256K1:
		ck_assert_ptr_nonnull(k = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
		    "secp256k1"));
		p = spki = spki_of(k, &len);
		break;
	case B_ED448:
		ck_assert_ptr_nonnull(k = EVP_PKEY_Q_keygen(NULL, NULL,
		    "ED448"));
		p = spki = spki_of(k, &len);
		break;
	case B_X25519:
		ck_assert_ptr_nonnull(k = EVP_PKEY_Q_keygen(NULL, NULL,
		    "X25519"));
		p = spki = spki_of(k, &len);
		break;
	case B_EMPTY:
		p = garbage;
		len = 0;
		break;
	case B_NULL:
		p = NULL;
		len = 0;
		break;
	case B_HUGE:
		/* A key, but past the bound. */
		k = keygen(K_P256);
		spki = spki_of(k, &len);
		ck_assert_ptr_nonnull(buf = calloc(1, CA_SPKI_MAX + 1));
		memcpy(buf, spki, len);
		p = buf;
		len = CA_SPKI_MAX + 1;
		break;
	default:
		ck_abort();
	}

	ca = ca_ok("user");
	ck_assert_int_eq(ca_issue(ca, p, len, "alice", NULL, 0, now - 60,
	    now + 3600, serial, &pem, &pemlen), CA_BADKEY);
	ck_assert_ptr_null(pem);
	ck_assert_str_eq(serial, "");
	ck_assert_uint_eq(ERR_peek_error(), 0);
	ca_free(ca);
	OPENSSL_free(spki);
	free(buf);
	EVP_PKEY_free(k);
}
END_TEST

static const char *const bad_names[] = {
	"", "al ice", "alice/bob", "alice\n", "al:ice", "\xc3\xa4",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
};

START_TEST(test_issue_bad_name)
{
	struct ca	*ca;
	EVP_PKEY	*k;
	uint8_t		*spki;
	size_t		 len, pemlen;
	char		 serial[CA_SERIAL_LEN], *pem;
	time_t		 now = time(NULL);

	ca = ca_ok("user");
	k = keygen(K_P256);
	spki = spki_of(k, &len);
	ck_assert_int_eq(ca_issue(ca, spki, len, bad_names[_i], NULL, 0,
	    now - 60, now + 3600, serial, &pem, &pemlen), -1);
	ck_assert_ptr_null(pem);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

START_TEST(test_issue_bad_role)
{
	struct ca	*ca;
	EVP_PKEY	*k;
	uint8_t		*spki;
	size_t		 len, pemlen;
	char		 serial[CA_SERIAL_LEN], *pem;
	const char	*roles[2];
	time_t		 now = time(NULL);

	ca = ca_ok("user");
	k = keygen(K_P256);
	spki = spki_of(k, &len);
	roles[0] = "dev";
	roles[1] = bad_names[_i];
	ck_assert_int_eq(ca_issue(ca, spki, len, "alice", roles, 2,
	    now - 60, now + 3600, serial, &pem, &pemlen), -1);
	ck_assert_ptr_null(pem);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

/* The longest name and role, and as many roles as a certificate holds. */
START_TEST(test_issue_limits)
{
	static const char	 longest[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char		*roles[CA_ROLES_MAX + 1];
	struct ca		*ca;
	EVP_PKEY		*k;
	X509			*x, *cax;
	uint8_t			*spki;
	size_t			 i, len, pemlen;
	char			 serial[CA_SERIAL_LEN], *pem;
	time_t			 now = time(NULL);

	ck_assert_uint_eq(strlen(longest), CA_NAME_MAX);
	for (i = 0; i <= CA_ROLES_MAX; i++)
		roles[i] = longest;
	ca = ca_ok("user");
	cax = ca_x509(ca);
	k = keygen(K_P256);
	x = issue(ca, k, longest, roles, CA_ROLES_MAX, now - 60, now + 3600,
	    serial);
	ck_assert_int_eq(verify_chain(x, cax, X509_PURPOSE_SSL_CLIENT), 1);
	X509_free(x);

	spki = spki_of(k, &len);
	ck_assert_int_eq(ca_issue(ca, spki, len, "alice", roles,
	    CA_ROLES_MAX + 1, now - 60, now + 3600, serial, &pem, &pemlen),
	    -1);
	OPENSSL_free(spki);
	X509_free(cax);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

START_TEST(test_issue_bad_validity)
{
	struct ca	*ca;
	EVP_PKEY	*k;
	uint8_t		*spki;
	size_t		 len, pemlen;
	char		 serial[CA_SERIAL_LEN], *pem;
	time_t		 now = time(NULL);

	ca = ca_ok("user");
	k = keygen(K_P256);
	spki = spki_of(k, &len);
	/* Empty, backwards, and outlasting the CA. */
	ck_assert_int_eq(ca_issue(ca, spki, len, "alice", NULL, 0, now, now,
	    serial, &pem, &pemlen), -1);
	ck_assert_int_eq(ca_issue(ca, spki, len, "alice", NULL, 0, now + 60,
	    now, serial, &pem, &pemlen), -1);
	ck_assert_int_eq(ca_issue(ca, spki, len, "alice", NULL, 0, now - 60,
	    now + 11 * YEAR, serial, &pem, &pemlen), -1);
	ck_assert_ptr_null(pem);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
	ca_free(ca);
}
END_TEST

/* What the integration test does: openssl verify, purpose sslclient. */
START_TEST(test_openssl_verify)
{
	static const char *const roles[] = { "admin" };
	struct ca	*user, *host;
	EVP_PKEY	*k;
	uint8_t		*spki;
	size_t		 len, pemlen;
	char		 serial[CA_SERIAL_LEN], *pem;
	time_t		 now = time(NULL);

	user = ca_ok("user");
	host = ca_ok("host");
	k = keygen(_i);
	spki = spki_of(k, &len);
	ck_assert_int_eq(ca_issue(user, spki, len, "alice", roles, 1,
	    now - 60, now + 3600, serial, &pem, &pemlen), 0);
	file_write("alice.pem", pem, pemlen, 0600);
	free(pem);
	ck_assert_int_eq(ca_issue(host, spki, len, "web1", NULL, 0,
	    now - 60, now + 3600, serial, &pem, &pemlen), 0);
	file_write("web1.pem", pem, pemlen, 0600);
	free(pem);

	ck_assert_int_eq(openssl_verify("user-ca.crt", "alice.pem"), 0);
	ck_assert_int_eq(openssl_verify("host-ca.crt", "web1.pem"), 0);
	ck_assert_int_ne(openssl_verify("host-ca.crt", "alice.pem"), 0);
	ck_assert_int_ne(openssl_verify("user-ca.crt", "web1.pem"), 0);

	OPENSSL_free(spki);
	EVP_PKEY_free(k);
	ca_free(user);
	ca_free(host);
}
END_TEST

static Suite *
ca_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("ca");

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_create_files);
	tcase_add_test(tc, test_create_umask);
	tcase_add_test(tc, test_reopen);
	tcase_add_loop_test(tc, test_ca_cert, 0, 2);
	tcase_add_loop_test(tc, test_key_mode, 0,
	    sizeof(key_modes) / sizeof(key_modes[0]));
	tcase_add_test(tc, test_key_symlink);
	tcase_add_test(tc, test_key_not_regular);
	tcase_add_test(tc, test_key_not_owned);
	tcase_add_test(tc, test_cert_readable);
	tcase_add_test(tc, test_cert_writable);
	tcase_add_test(tc, test_cert_symlink);
	tcase_add_test(tc, test_key_without_cert);
	tcase_add_test(tc, test_cert_without_key);
	tcase_add_test(tc, test_key_mismatch);
	tcase_add_test(tc, test_cert_garbage);
	tcase_add_test(tc, test_key_garbage);
	tcase_add_test(tc, test_cert_not_ca);
	tcase_add_test(tc, test_cert_expired);
	tcase_add_test(tc, test_cert_not_yet);
	tcase_add_test(tc, test_cert_other_kind);
	tcase_add_test(tc, test_stale_tmp);
	tcase_add_test(tc, test_race);
	tcase_add_test(tc, test_bad_kind);
	tcase_add_test(tc, test_no_dir);
	suite_add_tcase(s, tc);

	tc = tcase_create("issue");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_issue_user, 0, K_NKINDS);
	tcase_add_test(tc, test_issue_no_roles);
	tcase_add_test(tc, test_issue_host);
	tcase_add_test(tc, test_issue_host_roles);
	tcase_add_test(tc, test_cas_differ);
	tcase_add_test(tc, test_serials_differ);
	tcase_add_loop_test(tc, test_issue_badkey, 0, B_NKINDS);
	tcase_add_loop_test(tc, test_issue_bad_name, 0,
	    sizeof(bad_names) / sizeof(bad_names[0]));
	tcase_add_loop_test(tc, test_issue_bad_role, 0,
	    sizeof(bad_names) / sizeof(bad_names[0]));
	tcase_add_test(tc, test_issue_limits);
	tcase_add_test(tc, test_issue_bad_validity);
	tcase_add_loop_test(tc, test_openssl_verify, 0, K_NKINDS);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	log_init(1, LOG_DAEMON);
	sr = srunner_create(ca_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
