/*
 * The SSH user CA and its certificates: the CA's key file, the keys it
 * takes, and certificates as OpenSSH's ssh-keygen -L reads them (which
 * also checks the CA's signature).
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "sshcert.h"

#define OUT_MAX		(64 * 1024)

static char	 tmpdir[PATH_MAX];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return (remove(path));
}

static void
setup(void)
{
	ck_assert_uint_lt(strlcpy(tmpdir, "/tmp/check_sshcert.XXXXXX",
	    sizeof(tmpdir)), sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	ck_assert_int_eq(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void
path_of(char *buf, const char *name)
{
	ck_assert_int_lt(snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name),
	    PATH_MAX);
}

static void
write_file(const char *name, const char *text)
{
	char	 path[PATH_MAX];
	FILE	*fp;

	path_of(path, name);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_ge(fprintf(fp, "%s\n", text), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* What a command prints, with TZ=UTC; its exit status in *status. */
static char *
cmd_out(const char *cmd, int *status)
{
	char	*out;
	size_t	 n = 0, r;
	FILE	*fp;

	ck_assert_int_eq(setenv("TZ", "UTC", 1), 0);
	ck_assert_ptr_nonnull(out = calloc(1, OUT_MAX));
	ck_assert_ptr_nonnull(fp = popen(cmd, "r"));
	while ((r = fread(out + n, 1, OUT_MAX - 1 - n, fp)) > 0)
		n += r;
	*status = pclose(fp);
	return (out);
}

/* ssh-keygen -l's SHA256 fingerprint of the key line in file name. */
static void
fingerprint(const char *name, char *fp, size_t len)
{
	char	 cmd[PATH_MAX + 64], path[PATH_MAX], *out, *s, *e;
	int	 st;

	path_of(path, name);
	(void)snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f %s", path);
	out = cmd_out(cmd, &st);
	ck_assert_int_eq(st, 0);
	ck_assert_ptr_nonnull(s = strstr(out, "SHA256:"));
	e = strchr(s, ' ');
	ck_assert_ptr_nonnull(e);
	*e = '\0';
	ck_assert_uint_lt(strlcpy(fp, s, len), len);
	free(out);
}

/* An Ed25519 key's public line. */
static void
publine(EVP_PKEY *k, char *line, size_t len, uint8_t raw[32])
{
	uint8_t	 blob[51];
	char	 b64[80];
	size_t	 n = 32;

	ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
	memcpy(blob, "\0\0\0\013ssh-ed25519\0\0\0\040", 19);
	memcpy(blob + 19, raw, 32);
	(void)EVP_EncodeBlock((unsigned char *)b64, blob, sizeof(blob));
	ck_assert_int_lt(snprintf(line, len, "ssh-ed25519 %s test", b64),
	    (int)len);
}

START_TEST(test_cert_fields_as_ssh_keygen_reads_them)
{
	static const char *const prin[] = { "deploy", "root", "web-1" };
	struct sshcert	 c;
	EVP_PKEY	*ca, *user;
	uint8_t		 raw[32];
	char		 line[256], cafp[64], userfp[64], path[PATH_MAX];
	char		 cmd[PATH_MAX + 64], want[256], *cert, *out, *p;
	int		 st;

	ck_assert_ptr_nonnull(ca = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	ck_assert_ptr_nonnull(user = EVP_PKEY_Q_keygen(NULL, NULL,
	    "ED25519"));
	publine(ca, line, sizeof(line), raw);
	write_file("ca.pub", line);
	publine(user, line, sizeof(line), raw);
	write_file("user.pub", line);
	fingerprint("ca.pub", cafp, sizeof(cafp));
	fingerprint("user.pub", userfp, sizeof(userfp));

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(sshcert_key_from_line(line, c.key, want,
	    sizeof(want)), 0);
	ck_assert_mem_eq(c.key, raw, 32);
	ck_assert_int_eq(sshcert_random(&c), 0);
	c.serial = 1234567890123456789ULL;
	c.key_id = "mezite user alice tls-serial 1f";
	c.principals = prin;
	c.nprincipals = 3;
	c.valid_after = 1764536400;	/* 2025-11-30 21:00:00 UTC */
	c.valid_before = 1764579600;	/* 2025-12-01 09:00:00 UTC */
	ck_assert_int_eq(sshcert_sign(ca, &c, "alice", &cert, NULL), 0);
	ck_assert_str_eq(strchr(cert, ' ') + 1 + strcspn(strchr(cert, ' ') +
	    1, " "), " alice");
	write_file("user-cert.pub", cert);

	path_of(path, "user-cert.pub");
	(void)snprintf(cmd, sizeof(cmd), "ssh-keygen -L -f %s", path);
	out = cmd_out(cmd, &st);
	ck_assert_msg(st == 0, "ssh-keygen -L failed: %s", out);
	ck_assert_ptr_nonnull(strstr(out, "Type: ssh-ed25519-cert-v01@openssh"
	    ".com user certificate\n"));
	(void)snprintf(want, sizeof(want), "Public key: ED25519-CERT %s\n",
	    userfp);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	(void)snprintf(want, sizeof(want), "Signing CA: ED25519 %s "
	    "(using ssh-ed25519)\n", cafp);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "Key ID: \"mezite user alice "
	    "tls-serial 1f\"\n"));
	ck_assert_ptr_nonnull(strstr(out, "Serial: 1234567890123456789\n"));
	ck_assert_msg(strstr(out, "Valid: from 2025-11-30T21:00:00 to "
	    "2025-12-01T09:00:00\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "Principals: \n"
	    "                deploy\n"
	    "                root\n"
	    "                web-1\n"
	    "        Critical Options: (none)\n"
	    "        Extensions: \n"
	    "                permit-port-forwarding\n"
	    "                permit-pty\n") != NULL, "%s", out);
	free(out);

	/* A byte of the signature changed: ssh-keygen refuses it. */
	p = &cert[strlen(cert) - strlen(" alice") - 6];
	*p = *p == 'A' ? 'B' : 'A';
	write_file("bad-cert.pub", cert);
	path_of(path, "bad-cert.pub");
	(void)snprintf(cmd, sizeof(cmd), "ssh-keygen -L -f %s 2>&1", path);
	out = cmd_out(cmd, &st);
	ck_assert_msg(st != 0, "a bad signature was read: %s", out);
	free(out);

	free(cert);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(user);
}
END_TEST

START_TEST(test_no_principal_too_long)
{
	char		 longp[SSHCERT_PRINCIPAL_MAX + 2];
	const char	*prin[1] = { longp };
	struct sshcert	 c;
	EVP_PKEY	*ca;
	char		*cert = NULL;

	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_ptr_nonnull(ca = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	memset(&c, 0, sizeof(c));
	c.key_id = "x";
	c.principals = prin;
	c.nprincipals = 1;
	ck_assert_int_eq(sshcert_sign(ca, &c, "x", &cert, NULL), -1);
	ck_assert_ptr_null(cert);
	EVP_PKEY_free(ca);
}
END_TEST

START_TEST(test_ca_created_once_mode_0600_reused)
{
	struct sshca	*ca;
	struct stat	 sb;
	char		 path[PATH_MAX], *first;

	ck_assert_ptr_nonnull(ca = sshca_open(tmpdir));
	ck_assert_ptr_nonnull(first = strdup(sshca_pubkey_line(ca)));
	ck_assert_int_eq(strncmp(first, "ssh-ed25519 ", 12), 0);
	sshca_free(ca);
	path_of(path, "ssh-user-ca.key");
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	ck_assert_ptr_nonnull(ca = sshca_open(tmpdir));
	ck_assert_str_eq(sshca_pubkey_line(ca), first);
	sshca_free(ca);

	/* Others may read it: refused, not used. */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_ptr_null(sshca_open(tmpdir));
	/* Not a key: refused, not replaced. */
	ck_assert_int_eq(chmod(path, 0600), 0);
	write_file("ssh-user-ca.key", "not a key");
	ck_assert_ptr_null(sshca_open(tmpdir));
	free(first);
}
END_TEST

START_TEST(test_only_ed25519_lines)
{
	uint8_t	 key[32];
	char	 err[256];

	/* Keys as ssh-keygen writes them: ECDSA P-256 is refused. */
	ck_assert_int_eq(sshcert_key_from_line("ecdsa-sha2-nistp256 AAAAE2Vj"
	    "ZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBML/cTRNZ2ZWyGMxe8Ks"
	    "YaHjKEBujyIBBOjS1fCmuwGNv6qR9npYAraF863AXGXMa1Q0it1SX58Hu+izBY8k"
	    "oSE= x", key, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "only ssh-ed25519"));
	ck_assert_int_eq(sshcert_key_from_line("ssh-ed25519 AAAA x", key,
	    err, sizeof(err)), -1);
	ck_assert_int_eq(sshcert_key_from_line("", key, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(sshcert_key_from_line("ssh-ed25519 AAAAC3NzaC1lZDI1"
	    "NTE5AAAAIOSty0Dne+44ofM34MOclufUBvKcipINu9o4z38zCIPK c", key,
	    err, sizeof(err)), 0);
	ck_assert_uint_eq(key[0], 0xe4);
	ck_assert_uint_eq(key[31], 0xca);
}
END_TEST

static Suite *
sshcert_suite(void)
{
	Suite	*s = suite_create("sshcert");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cert_fields_as_ssh_keygen_reads_them);
	tcase_add_test(tc, test_no_principal_too_long);
	tcase_add_test(tc, test_ca_created_once_mode_0600_reused);
	tcase_add_test(tc, test_only_ed25519_lines);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	log_init(1, LOG_DAEMON);
	sr = srunner_create(sshcert_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
