/*
 * Users' SSH keys and the ssh worker's questions: authorized_keys lines
 * read and checked, their fingerprints as ssh-keygen -l prints them;
 * logins with a key or a certificate, access to nodes, and the audit
 * events an ssh worker may send, against a store in a fresh directory.
 */

#include <sys/types.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth.h"
#include "log.h"
#include "sshkey.h"

#define T0	1700000000
#define A28	"aaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* Made by ssh-keygen -t TYPE; fingerprints by ssh-keygen -l. */
#define ED25519	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ67CeY8Hy0OQzyj4xAhzuYz" \
		"z7yrI8LKVL0DzphDlzyZ"
#define ED25519_FP "SHA256:42/eZmDly61fJwU7FQEX0iJNT9Jd4sDLtV6lzkPjU30"
#define P256	"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlz" \
		"dHAyNTYAAABBBCSbOgg20hHOk84+yfGkJ1Kp1gEfHMOdsDlOSAm7wkayiO18" \
		"hHZdpdfG0pZkbF3h/OKnog/VqBM0YtC+R/DhSwU="
#define P256_FP	"SHA256:t2/078gSNiSiH3yu3KW1OBNSNDyll0Oc7GZDT5ePCus"
#define P384	"ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlz" \
		"dHAzODQAAABhBIZ/6rd8+Aeg/DTzKY8j6qLm0CwbHhYLfN6C+gKf9/yvS41N" \
		"ca7SGZse8zjOajXMTPWhXTR4WWAmJjuO2TD0lWTrRAUCHz2A18aAztIBB4vJ" \
		"uPsOKorX3JsLPVPjjXmHRw=="
#define P384_FP	"SHA256:FcND4/LpqR7wfnEAPKR7Q7IvmiHtgClbsQb7EQ9m7CI"
#define P521	"ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlz" \
		"dHA1MjEAAACFBAHSO/X5+Zfl/545Ez7QFvxyXng+mwbTzUxGzvlpeduGXLh5" \
		"0+venXpqdME9dl4xdDlOmTEH0H9cEFk6fRrS8C6l5wFZEd18V80IkWaU9EdB" \
		"B7HalCnalxBcKyNfZ5xje1k1r7GJwQBuxUHDKVTIlk3YSfeVKKOnhMsUPMQU" \
		"1qgAy9cVrQ=="
#define P521_FP	"SHA256:4yFIAmH8WLSuFlw4R2cguGZucnp/UKdR3B4Bc+TADcA"
#define RSA2048	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDRkfnIf/ELUQQFkQlPQ+nD" \
		"hVG1s26bfcLeQ7RgrdeB0IncacAwM7Vw2pqvEKQNpGVteiKYF4qn9ED22K6B" \
		"diZrPnSVgzCPTAZOYWYbOpyPFHFtA0wWRAYYmDMMvOYNQBUeTc3itdZ59bF0" \
		"lma0PE5CH/blT7o4ZjYmF5vYl+kI+Atq/AjcU+O6LL0uwhDrfAAaLmyWJ8NN" \
		"4+qX0sGMvxKJCqONhmucshLXhZM1/7/qzEumcFAkbI5d6fN43MHeBR2qb21r" \
		"soLlLkdf2npXWVYkF65Rie9Ern9u5thBAaR+8RSaTZ1Wf06uPqn+ItLZelOX" \
		"pk5SCw5RvuMDLg8F/UvX"
#define RSA2048_FP "SHA256:azqUsCRCInypLh7LhS7149LxOXNqOVvkFqetLv7yHSE"
#define RSA1024	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDhNJCha9wsnRTOkXj8+QRo" \
		"oYc4YseKO4eZDVnAoZbccoXgOzHdMlIXgpL1inap59yZvH0s9q7uX62QmVzI" \
		"IqWqqYit3QLeoY5K2wdMolFKW6rqTMVWgUPsqjIr1dcjGIwN+0JoyFhxU338" \
		"vYecKITMaz9Rd7EtiV+xxHmdEgwHQQ=="
/* The ed25519 key's base64 alone. */
#define ED25519_B64 "AAAAC3NzaC1lZDI1NTE5AAAAIJ67CeY8Hy0OQzyj4xAhzuYzz7yrI8L" \
		"KVL0DzphDlzyZ"

static char			 dir[PATH_MAX];
static char			 db[PATH_MAX];
static struct store		*st;
static struct sshauth_result	 res;	/* the last answer */

/* The reason a line is refused, "" if it is not. */
static const char *
refused(const char *line)
{
	static char	 err[256];
	struct sshkey	 k;

	err[0] = '\0';
	if (sshkey_parse(line, &k, err, sizeof(err)) == 0)
		return ("");
	ck_assert_str_ne(err, "");
	return (err);
}

static void
fp_is(const char *line, const char *type, unsigned int bits, const char *fp)
{
	struct sshkey	 k;
	char		 err[256];

	if (sshkey_parse(line, &k, err, sizeof(err)) == -1)
		ck_abort_msg("%s: %s", type, err);
	ck_assert_str_eq(k.type, type);
	ck_assert_uint_eq(k.bits, bits);
	ck_assert_str_eq(k.fingerprint, fp);
	ck_assert_str_eq(k.comment, "");
	ck_assert(sshkey_fingerprint_valid(k.fingerprint));
}

START_TEST(key_types)
{
	fp_is(ED25519, "ssh-ed25519", 256, ED25519_FP);
	fp_is(P256, "ecdsa-sha2-nistp256", 256, P256_FP);
	fp_is(P384, "ecdsa-sha2-nistp384", 384, P384_FP);
	fp_is(P521, "ecdsa-sha2-nistp521", 521, P521_FP);
	fp_is(RSA2048, "ssh-rsa", 2048, RSA2048_FP);
}
END_TEST

START_TEST(key_comment_and_blanks)
{
	struct sshkey	 k;
	char		 err[256];

	ck_assert_int_eq(sshkey_parse("  \t" ED25519 "  alice@laptop  key 1 \t",
	    &k, err, sizeof(err)), 0);
	ck_assert_str_eq(k.comment, "alice@laptop  key 1");
	ck_assert_str_eq(k.b64, ED25519_B64);
	ck_assert_str_eq(k.fingerprint, ED25519_FP);
}
END_TEST

START_TEST(key_refused)
{
	char	 line[SSHKEY_LINE_MAX + 64];
	size_t	 n;

	ck_assert_ptr_nonnull(strstr(refused(RSA1024), "too short"));
	ck_assert_ptr_nonnull(strstr(refused("ssh-dss AAAAB3NzaC1kc3MAAACBA"),
	    "unsupported key type ssh-dss"));
	ck_assert_ptr_nonnull(strstr(refused("sk-ssh-ed25519@openssh.com "
	    ED25519_B64), "security keys"));
	ck_assert_ptr_nonnull(strstr(refused("sk-ecdsa-sha2-nistp256@"
	    "openssh.com AAAA"), "security keys"));
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519-cert-v01@openssh.com "
	    ED25519_B64), "certificates"));
	ck_assert_ptr_nonnull(strstr(refused("from=\"10.0.0.1\" " ED25519),
	    "options"));
	ck_assert_ptr_nonnull(strstr(refused("no-pty,command=\"x y\" " P256
	    " c"), "options"));
	ck_assert_ptr_nonnull(strstr(refused("restrict sk-ssh-ed25519@openssh"
	    ".com AAAA"), "options"));
	ck_assert_ptr_nonnull(strstr(refused("hello world"),
	    "not a public key"));
	ck_assert_ptr_nonnull(strstr(refused(""), "no key"));
	ck_assert_ptr_nonnull(strstr(refused("   "), "no key"));
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519"), "no key after"));
	/* The blob says ed25519, the line rsa. */
	ck_assert_ptr_nonnull(strstr(refused("ssh-rsa " ED25519_B64),
	    "not of type ssh-rsa"));
	/* Not base64, not padded, not canonical. */
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519 AAAA*AAA"),
	    "base64"));
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519 AAAAC3NzaC1lZDI1NT"
	    "E5AAAAIJ67CeY8Hy0OQzyj4xAhzuYzz7yrI8LKVL0DzphDlzy"), "base64"));
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519 AAAAC3NzaC1lZDI1NT"
	    "E5AAAAIJ67CeY8Hy0OQzyj4xAhzuYzz7yrI8LKVL0DzphDlzyZ="), "base64"));
	ck_assert_ptr_nonnull(strstr(refused(P256 "x"), "base64"));
	/* The ed25519 key cut short, and one with a byte after it. */
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519 AAAAC3NzaC1lZDI1NT"
	    "E5AAAAIJ67CeY8Hy0OQzyj4xAhzuYzz7yrI8LKVL0DzphDlzw="), "32 bytes"));
	ck_assert_ptr_nonnull(strstr(refused("ssh-ed25519 AAAAC3NzaC1lZDI1NT"
	    "E5AAAAIJ67CeY8Hy0OQzyj4xAhzuYzz7yrI8LKVL0DzphDlzyZAA=="),
	    "follow"));
	ck_assert_ptr_nonnull(strstr(refused(ED25519 " a\nb"), "control"));
	/* A comment, and a line, too long. */
	memset(line, 0, sizeof(line));
	n = strlcpy(line, ED25519 " ", sizeof(line));
	memset(line + n, 'c', SSHKEY_COMMENT_MAX + 1);
	ck_assert_ptr_nonnull(strstr(refused(line), "comment"));
	memset(line + n, 'c', sizeof(line) - n - 1);
	line[SSHKEY_LINE_MAX + 1] = '\0';
	ck_assert_ptr_nonnull(strstr(refused(line), "longer than"));
}
END_TEST

/* An ssh-rsa line, its modulus of n bytes: lead, then 0x01s. */
static const char *
rsa_line(size_t n, const uint8_t *lead, size_t nlead)
{
	static char	 line[SSHKEY_LINE_MAX];
	uint8_t		 blob[SSHKEY_BLOB_MAX];
	size_t		 len = 0;

	ck_assert_uint_lt(n + 32, sizeof(blob));
	memcpy(blob, "\0\0\0\7ssh-rsa\0\0\0\3\1\0\1", 18);
	len = 18;
	blob[len++] = n >> 24;
	blob[len++] = (n >> 16) & 0xff;
	blob[len++] = (n >> 8) & 0xff;
	blob[len++] = n & 0xff;
	memset(blob + len, 0x01, n);
	memcpy(blob + len, lead, nlead);
	len += n;
	memcpy(line, "ssh-rsa ", 8);
	ck_assert_int_gt(EVP_EncodeBlock((unsigned char *)line + 8, blob,
	    (int)len), 0);
	return (line);
}

START_TEST(key_rsa_sizes)
{
	struct sshkey	 k;
	char		 err[256];

	/* 16384 bits: a zero, then a byte with its high bit set. */
	ck_assert_int_eq(sshkey_parse(rsa_line(2049,
	    (const uint8_t *)"\0\x80", 2), &k, err, sizeof(err)), 0);
	ck_assert_uint_eq(k.bits, 16384);
	ck_assert_int_eq(sshkey_parse(rsa_line(257,
	    (const uint8_t *)"\0\x80", 2), &k, err, sizeof(err)), 0);
	ck_assert_uint_eq(k.bits, 2048);
	ck_assert_ptr_nonnull(strstr(refused(rsa_line(2049,
	    (const uint8_t *)"\x01", 1)), "longer than 16384"));
	ck_assert_ptr_nonnull(strstr(refused(rsa_line(256,
	    (const uint8_t *)"\x7f", 1)), "2047 bits is too short"));
	/* A zero it does not need, and a negative modulus. */
	ck_assert_ptr_nonnull(strstr(refused(rsa_line(257,
	    (const uint8_t *)"\0\x7f", 2)), "malformed"));
	ck_assert_ptr_nonnull(strstr(refused(rsa_line(256,
	    (const uint8_t *)"\x80", 1)), "malformed"));
}
END_TEST

START_TEST(fingerprint_valid)
{
	ck_assert(sshkey_fingerprint_valid(ED25519_FP));
	ck_assert(sshkey_fingerprint_valid(RSA2048_FP));
	ck_assert(!sshkey_fingerprint_valid("SHA256:"));
	ck_assert(!sshkey_fingerprint_valid("MD5:42/eZmDly61fJwU7FQEX0iJNT9J"
	    "d4sDLtV6lzkPjU30"));
	ck_assert(!sshkey_fingerprint_valid(ED25519_FP "="));
	ck_assert(!sshkey_fingerprint_valid("SHA256:42/eZmDly61fJwU7FQEX0iJN"
	    "T9Jd4sDLtV6lzkPjU3!"));
}
END_TEST

/* The store: alice (role dev, web nodes) with her ed25519 key. */

static void
store_setup(void)
{
	char			*rv[] = { "dev", "gone" };
	struct store_strv	 roles = { rv, 2 };
	char			*pv[] = { "web*" };
	char			*lv[] = { "env=prod" };
	char			*wl[] = { "env=prod" };
	char			*dl[] = { "env=test" };
	char			*dbn[] = { "web*", "db1" };
	char			*dbs[] = { "54[0-9][0-9]" };
	char			*dv[] = { "dba" };
	char			*ev[] = { "labelled" };
	struct store_role	 r;
	struct store_node	 n;
	struct store_cert	 c;
	struct store_key	 k;

	ck_assert_int_lt(snprintf(dir, sizeof(dir), "%s/check_sshauth.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp"),
	    (int)sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_lt(snprintf(db, sizeof(db), "%s/auth.db", dir),
	    (int)sizeof(db));
	ck_assert_ptr_nonnull(st = store_open(db));

	memset(&r, 0, sizeof(r));
	r.name = "dev";
	r.nodes.v = pv;
	r.nodes.n = 1;
	r.labels.v = lv;
	r.labels.n = 1;
	ck_assert_int_eq(store_role_put(st, &r), 0);
	/* Databases on web nodes and on the static target db1. */
	r.name = "dba";
	r.nodes.v = dbn;
	r.nodes.n = 2;
	r.labels.n = 0;
	r.services.v = dbs;
	r.services.n = 1;
	ck_assert_int_eq(store_role_put(st, &r), 0);
	/* Labels never match a static target. */
	r.name = "labelled";
	r.nodes.n = 0;
	r.labels.v = lv;
	r.labels.n = 1;
	r.services.n = 0;
	ck_assert_int_eq(store_role_put(st, &r), 0);
	r.labels.v = lv;
	r.services.v = NULL;
	r.name = "gone";
	r.nodes.v = NULL;
	r.nodes.n = 0;
	ck_assert_int_eq(store_role_put(st, &r), 0);
	ck_assert_int_eq(store_user_add(st, "alice", "$y$hash", &roles, T0),
	    0);
	/* A role she had, deleted since. */
	ck_assert_int_eq(store_role_del(st, "gone"), 0);
	roles.n = 0;
	ck_assert_int_eq(store_user_add(st, "bob", "$y$hash", &roles, T0), 0);
	roles.v = dv;
	roles.n = 1;
	ck_assert_int_eq(store_user_add(st, "dave", "$y$hash", &roles, T0), 0);
	roles.v = ev;
	ck_assert_int_eq(store_user_add(st, "erin", "$y$hash", &roles, T0), 0);

	memset(&n, 0, sizeof(n));
	n.name = "web1";
	n.labels.v = wl;
	n.labels.n = 1;
	strlcpy(n.serial, "10", sizeof(n.serial));
	n.joined = T0;
	ck_assert_int_eq(store_node_put(st, &n), 0);
	n.name = "web2";
	n.labels.v = dl;
	ck_assert_int_eq(store_node_put(st, &n), 0);

	memset(&c, 0, sizeof(c));
	strlcpy(c.kind, "user", sizeof(c.kind));
	c.name = "alice";
	c.not_before = T0 - 60;
	c.not_after = T0 + 3600;
	strlcpy(c.serial, "a1", sizeof(c.serial));
	ck_assert_int_eq(store_cert_add(st, &c), 0);
	strlcpy(c.serial, "a2", sizeof(c.serial));
	ck_assert_int_eq(store_cert_add(st, &c), 0);
	ck_assert_int_eq(store_cert_revoke(st, "a2", T0 - 1), 0);
	strlcpy(c.serial, "a3", sizeof(c.serial));
	c.not_after = T0 - 1;
	ck_assert_int_eq(store_cert_add(st, &c), 0);

	memset(&k, 0, sizeof(k));
	k.user = "alice";
	strlcpy(k.type, "ssh-ed25519", sizeof(k.type));
	k.blob = ED25519_B64;
	strlcpy(k.fingerprint, ED25519_FP, sizeof(k.fingerprint));
	k.comment = "";
	k.added = T0;
	ck_assert_int_eq(store_key_add(st, &k), 0);
}

static void
store_teardown(void)
{
	const char	*files[] = { "auth.db", "auth.db-wal", "auth.db-shm" };
	char		 p[PATH_MAX];
	size_t		 i;

	sshauth_result_clear(&res);
	store_close(st);
	st = NULL;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		ck_assert_int_lt(snprintf(p, sizeof(p), "%s/%s", dir,
		    files[i]), (int)sizeof(p));
		if (unlink(p) == -1 && errno != ENOENT)
			ck_abort_msg("unlink %s: %s", p, strerror(errno));
	}
	ck_assert_int_eq(rmdir(dir), 0);
}

/* A login's answer: its reason, "" if allowed. */
static const char *
login(const char *user, const char *key, const char *kind,
    const char *name, const char *serial, time_t not_after)
{
	struct sshauth_result		*r = &res;
	Mezite__SshAuthRequest		 req = MEZITE__SSH_AUTH_REQUEST__INIT;
	Mezite__PeerCert		 pc = MEZITE__PEER_CERT__INIT;

	req.user = (char *)user;
	req.public_key = (char *)key;
	if (kind != NULL) {
		pc.kind = (char *)kind;
		pc.name = (char *)name;
		pc.serial = (char *)serial;
		pc.not_after = not_after;
		req.cert = &pc;
	}
	sshauth_result_clear(r);
	ck_assert_int_eq(sshauth_login(st, &req, T0, r), 0);
	if (r->allowed) {
		ck_assert_str_eq(r->reason, "");
		/* Her roles, as the store has them. */
		ck_assert_uint_eq(r->roles.n, 1);
		ck_assert_str_eq(r->roles.v[0], "dev");
	} else
		ck_assert_uint_eq(r->roles.n, 0);
	return (r->reason);
}

START_TEST(login_key)
{
	ck_assert_str_eq(login("alice", ED25519, NULL, NULL, NULL, 0), "");
	/* A comment does no harm. */
	ck_assert_str_eq(login("alice", ED25519 " x", NULL, NULL, NULL, 0),
	    "");
	ck_assert_str_eq(login("alice", P256, NULL, NULL, NULL, 0),
	    "no such user or key");
	ck_assert_str_eq(login("bob", ED25519, NULL, NULL, NULL, 0),
	    "no such user or key");
	ck_assert_str_eq(login("carol", ED25519, NULL, NULL, NULL, 0),
	    "no such user or key");
	ck_assert_str_eq(login("-x", ED25519, NULL, NULL, NULL, 0),
	    "no such user or key");
	ck_assert_str_eq(login("alice", "garbage", NULL, NULL, NULL, 0),
	    "no such user or key");
	/* A key, whatever certificate comes with it. */
	ck_assert_str_eq(login("alice", P256, "user", "alice", "a1",
	    T0 + 3600), "no such user or key");
}
END_TEST

START_TEST(login_cert)
{
	ck_assert_str_eq(login("alice", "", "user", "alice", "a1", T0 + 3600),
	    "");
	ck_assert_str_eq(login("alice", "", NULL, NULL, NULL, 0),
	    "no such user or key");
	ck_assert_str_eq(login("alice", "", "node", "alice", "a1", T0 + 3600),
	    "no such user or key");
	ck_assert_str_eq(login("bob", "", "user", "alice", "a1", T0 + 3600),
	    "no such user or key");
	ck_assert_str_eq(login("alice", "", "user", "alice", "ff",
	    T0 + 3600), "no such user or key");
	ck_assert_str_eq(login("alice", "", "user", "alice", "a2", T0 + 3600),
	    "the certificate is revoked");
	ck_assert_str_eq(login("alice", "", "user", "alice", "a3", T0 - 1),
	    "the certificate has expired");
	/* The store's record rules, and the certificate's own too. */
	ck_assert_str_eq(login("alice", "", "user", "alice", "a1", T0),
	    "the certificate has expired");
	ck_assert_str_eq(login("carol", "", "user", "carol", "a1", T0 + 3600),
	    "no such user or key");
}
END_TEST

/* An access's answer: its reason, "" if allowed. */
static const char *
access_as(const char *user, const char *node, const char *service,
    int static_target)
{
	Mezite__SshAccessRequest	 req =
					    MEZITE__SSH_ACCESS_REQUEST__INIT;

	req.static_target = static_target;
	req.user = (char *)user;
	req.node = (char *)node;
	req.service = (char *)service;
	sshauth_result_clear(&res);
	ck_assert_int_eq(sshauth_access(st, &req, &res), 0);
	ck_assert_int_eq(res.allowed, res.reason[0] == '\0');
	return (res.reason);
}

static const char *
access_to(const char *user, const char *node, const char *service)
{
	return (access_as(user, node, service, 0));
}

START_TEST(access_nodes)
{
	ck_assert_str_eq(access_to("alice", "web1", "ssh"), "");
	/* Her role wants env=prod. */
	ck_assert_str_eq(access_to("alice", "web2", "ssh"),
	    "access to node web2 denied");
	/* Never joined: the same answer. */
	ck_assert_str_eq(access_to("alice", "web3", "ssh"),
	    "access to node web3 denied");
	ck_assert_str_eq(access_to("alice", "web1", "http"),
	    "service http is not allowed");
	ck_assert_str_eq(access_to("alice", "web1", "a b\n"),
	    "service a?b? is not allowed");
	ck_assert_str_eq(access_to("alice", "web1", ""),
	    "service  is not allowed");
	ck_assert_str_eq(access_to("bob", "web1", "ssh"),
	    "access to node web1 denied");
	ck_assert_str_eq(access_to("carol", "web1", "ssh"),
	    "access to node web1 denied");
	ck_assert_str_eq(access_to("alice", "../x", "ssh"),
	    "access to node ../x denied");
}
END_TEST

/* A role's services, on the nodes it allows; none: ssh alone. */
START_TEST(access_services)
{
	ck_assert_str_eq(access_to("dave", "web1", "5432"), "");
	ck_assert_str_eq(access_to("dave", "web2", "5433"), "");
	ck_assert_str_eq(access_to("dave", "web1", "ssh"),
	    "service ssh is not allowed");
	ck_assert_str_eq(access_to("dave", "web1", "80"),
	    "service 80 is not allowed");
	ck_assert_str_eq(access_to("alice", "web1", "5432"),
	    "service 5432 is not allowed");
	/* db1 never joined: no node of that name. */
	ck_assert_str_eq(access_to("dave", "db1", "5432"),
	    "access to node db1 denied");
}
END_TEST

/* A static target: its name, no labels. */
START_TEST(access_static)
{
	ck_assert_str_eq(access_as("dave", "db1", "5432", 1), "");
	ck_assert_str_eq(access_as("dave", "db1", "22", 1),
	    "service 22 is not allowed");
	ck_assert_str_eq(access_as("dave", "db2", "5432", 1),
	    "access to node db2 denied");
	/* web1 has env=prod as a node, and none as a static target. */
	ck_assert_str_eq(access_to("erin", "web1", "ssh"), "");
	ck_assert_str_eq(access_as("erin", "web1", "ssh", 1),
	    "access to node web1 denied");
	ck_assert_str_eq(access_as("alice", "web1", "ssh", 1),
	    "access to node web1 denied");
}
END_TEST

/* Roles as they are now: a role that changes, changes the answer. */
START_TEST(access_roles_now)
{
	struct store_role	 r;
	char			*pv[] = { "db*" };

	ck_assert_str_eq(access_to("alice", "web1", "ssh"), "");
	memset(&r, 0, sizeof(r));
	r.name = "dev";
	r.nodes.v = pv;
	r.nodes.n = 1;
	ck_assert_int_eq(store_role_put(st, &r), 0);
	ck_assert_str_eq(access_to("alice", "web1", "ssh"),
	    "access to node web1 denied");
}
END_TEST

static int
event(const char *type, const char *name, const char *address,
    const char *detail, int64_t t, time_t *got)
{
	Mezite__AuditEvent	 e = MEZITE__AUDIT_EVENT__INIT;
	struct store_event	 ev;
	const char		*why = NULL;
	int			 rv;

	e.type = (char *)type;
	e.name = (char *)name;
	e.address = (char *)address;
	e.detail = (char *)detail;
	e.time = t;
	e.success = 1;
	rv = sshauth_event(&e, T0, &ev, &why);
	if (rv == 0) {
		ck_assert_ptr_eq(ev.type, e.type);
		ck_assert_ptr_eq(ev.detail, e.detail);
		ck_assert_int_eq(ev.success, 1);
		*got = ev.time;
	} else
		ck_assert_ptr_nonnull(why);
	return (rv);
}

START_TEST(audit_events)
{
	char	 big[2048];
	time_t	 t;

	ck_assert_int_eq(event("ssh.login", "alice", "192.0.2.1:5555",
	    "key SHA256:x", T0 - 30, &t), 0);
	ck_assert_int_eq(t, T0 - 30);
	ck_assert_int_eq(event("ssh.login", "", "", "", 0, &t), 0);
	ck_assert_int_eq(t, T0);
	ck_assert_int_eq(event("ssh.session", "a", "b", "c", T0 + 61, &t), 0);
	ck_assert_int_eq(t, T0);
	ck_assert_int_eq(event("ssh.session", "a", "b", "c", T0 - 61, &t), 0);
	ck_assert_int_eq(t, T0);
	ck_assert_int_eq(event("ssh.session", "a", "b", "c", -5, &t), 0);
	ck_assert_int_eq(t, T0);

	ck_assert_int_eq(event("login", "a", "b", "c", 0, &t), -1);
	ck_assert_int_eq(event("ssh.", "a", "b", "c", 0, &t), -1);
	ck_assert_int_eq(event("sshx.login", "a", "b", "c", 0, &t), -1);
	ck_assert_int_eq(event("ssh." A28 "a", "a",
	    "b", "c", 0, &t), -1);
	ck_assert_int_eq(event("ssh." A28, "a",
	    "b", "c", 0, &t), 0);
	ck_assert_int_eq(event("ssh.login\n", "a", "b", "c", 0, &t), -1);
	ck_assert_int_eq(event("ssh.login", "a\tb", "b", "c", 0, &t), -1);

	memset(big, 'x', sizeof(big));
	big[64] = '\0';
	ck_assert_int_eq(event("ssh.login", big, "b", "c", 0, &t), 0);
	big[64] = 'x';
	big[65] = '\0';
	ck_assert_int_eq(event("ssh.login", big, "b", "c", 0, &t), -1);
	big[65] = 'x';
	big[128] = '\0';
	ck_assert_int_eq(event("ssh.login", "a", big, "c", 0, &t), 0);
	big[128] = 'x';
	big[129] = '\0';
	ck_assert_int_eq(event("ssh.login", "a", big, "c", 0, &t), -1);
	big[129] = 'x';
	big[1024] = '\0';
	ck_assert_int_eq(event("ssh.login", "a", "b", big, 0, &t), 0);
	big[1024] = 'x';
	big[1025] = '\0';
	ck_assert_int_eq(event("ssh.login", "a", "b", big, 0, &t), -1);
}
END_TEST

static Suite *
sshauth_suite(void)
{
	Suite	*s = suite_create("sshauth");
	TCase	*tc;

	tc = tcase_create("keys");
	tcase_add_test(tc, key_types);
	tcase_add_test(tc, key_comment_and_blanks);
	tcase_add_test(tc, key_refused);
	tcase_add_test(tc, key_rsa_sizes);
	tcase_add_test(tc, fingerprint_valid);
	tcase_add_test(tc, audit_events);
	suite_add_tcase(s, tc);

	tc = tcase_create("decisions");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_add_test(tc, login_key);
	tcase_add_test(tc, login_cert);
	tcase_add_test(tc, access_nodes);
	tcase_add_test(tc, access_roles_now);
	tcase_add_test(tc, access_services);
	tcase_add_test(tc, access_static);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(sshauth_suite());
	int	 failed;

	log_init(1, LOG_DAEMON);
	log_setverbose(0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
