/*
 * msh's pieces without a proxy: known_proxies, the proxy's name, gRPC
 * reply framing and grpc-message, the checks on ~/.mezite and its
 * files, what msh reads from a user certificate, and the ssh command
 * lines and configuration of msh ssh and msh config.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "msh/msh.h"
#include "msh/rpc.h"
#include "msh/sshcmd.h"

#define H1	"SHA256:00112233445566778899aabbccddeeff" \
		"00112233445566778899aabbccddeeff"
#define H2	"SHA256:ffeeddccbbaa99887766554433221100" \
		"ffeeddccbbaa99887766554433221100"

START_TEST(known_new_match_changed)
{
	size_t	 line;

	ck_assert_int_eq(known_lookup("", "p:443", H1, &line), KNOWN_NEW);
	ck_assert_int_eq(known_lookup("p:443 " H1 "\n", "p:443", H1, &line),
	    KNOWN_MATCH);
	ck_assert_int_eq(known_lookup("# c\n\nq:443 " H1 "\np:443 " H2 "\n",
	    "p:443", H1, &line), KNOWN_CHANGED);
	ck_assert_uint_eq(line, 4);
	/* Another port is another proxy; a name is matched whole. */
	ck_assert_int_eq(known_lookup("p:8443 " H2 "\np:4430 " H2 "\n"
	    "xp:443 " H2 "\n", "p:443", H1, &line), KNOWN_NEW);
	ck_assert_int_eq(known_lookup("p:443 " H2, "p:44", H2, &line),
	    KNOWN_NEW);
}
END_TEST

START_TEST(known_several_lines)
{
	size_t	 line;

	/* A certificate and its successor: either one matches. */
	ck_assert_int_eq(known_lookup("p:443 " H2 "\np:443 " H1 "\n",
	    "p:443", H1, &line), KNOWN_MATCH);
	ck_assert_int_eq(known_lookup("p:443 " H2 "\np:443 " H1 "\n",
	    "p:443", H2, &line), KNOWN_MATCH);
}
END_TEST

START_TEST(known_forms)
{
	size_t	 line;
	char	 upper[] = "P:443 " H1 "\n";
	size_t	 i;

	/* Case, tabs, CRLF, no final newline, trailing blanks. */
	for (i = 13; upper[i] != '\n'; i++)
		upper[i] = toupper((unsigned char)upper[i]);
	ck_assert_int_eq(known_lookup(upper, "p:443", H1, &line),
	    KNOWN_MATCH);
	ck_assert_int_eq(known_lookup("  p:443\t" H1 " \r\n", "p:443", H1,
	    &line), KNOWN_MATCH);
	ck_assert_int_eq(known_lookup("p:443 " H1, "p:443", H1, &line),
	    KNOWN_MATCH);
	ck_assert_int_eq(known_lookup("[::1]:443 " H1 "\n", "[::1]:443", H1,
	    &line), KNOWN_MATCH);
}
END_TEST

START_TEST(known_malformed)
{
	size_t	 line;

	/* Malformed lines pin nothing: the proxy is new, not changed. */
	ck_assert_int_eq(known_lookup(
	    "p:443\n"
	    "p:443 SHA256:0011\n"
	    "p:443 " H2 " extra\n"
	    "p:443 " H2 "0\n"
	    "p:443 MD5:00112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff0\n"
	    "p:443 SHA256:zz112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff\n"
	    "#p:443 " H2 "\n",
	    "p:443", H1, &line), KNOWN_NEW);
}
END_TEST

START_TEST(hash_forms)
{
	ck_assert(hash_valid(H1));
	ck_assert(hash_valid("SHA256:00112233445566778899AABBCCDDEEFF"
	    "00112233445566778899aabbccddeeff"));
	ck_assert(!hash_valid(""));
	ck_assert(!hash_valid("SHA256:"));
	ck_assert(!hash_valid(H1 "0"));
	ck_assert(!hash_valid("sha256:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff"));
	ck_assert(!hash_valid("SHA256:0011223344556677889 aabbccddeeff"
	    "00112233445566778899aabbccddeeff"));
}
END_TEST

/* A session file's parts, and what is not one. */
static int
session_try(const char *text, const char **proxy, const char **cert,
    const char **trust, const char **pem, size_t *pemlen, char *buf,
    size_t len)
{
	ck_assert_uint_lt(strlen(text), len);
	strlcpy(buf, text, len);
	return (session_parse(buf, strlen(buf), proxy, cert, trust, pem,
	    pemlen));
}

START_TEST(session_files)
{
	const char	*proxy, *cert, *trust, *pem;
	char		 buf[1024];
	size_t		 pemlen;

	ck_assert_int_eq(session_try("mezite-session 1\nproxy a.example:443"
	    "\ncert " H1 "\nca known\nPEM\n", &proxy, &cert, &trust, &pem,
	    &pemlen, buf, sizeof(buf)), 0);
	ck_assert_str_eq(proxy, "a.example:443");
	ck_assert_str_eq(cert, H1);
	ck_assert_str_eq(trust, "known");
	ck_assert_uint_eq(pemlen, 4);
	ck_assert(strncmp(pem, "PEM\n", 4) == 0);
	ck_assert_int_eq(session_try("mezite-session 1\nproxy [::1]:8443"
	    "\ncert " H1 "\nca " H1 "\nx", &proxy, &cert, &trust, &pem,
	    &pemlen, buf, sizeof(buf)), 0);
	ck_assert_str_eq(trust, H1);

	/* Another version, a line missing or out of order, no session. */
	ck_assert_int_eq(session_try("mezite-session 2\nproxy a:1\ncert "
	    H1 "\nca known\nx", &proxy, &cert, &trust, &pem, &pemlen, buf,
	    sizeof(buf)), -1);
	ck_assert_int_eq(session_try("mezite-session 1\ncert " H1
	    "\nproxy a:1\nca known\nx", &proxy, &cert, &trust, &pem,
	    &pemlen, buf, sizeof(buf)), -1);
	ck_assert_int_eq(session_try("mezite-session 1\nproxy a:1\ncert "
	    H1 "\nx", &proxy, &cert, &trust, &pem, &pemlen, buf,
	    sizeof(buf)), -1);
	ck_assert_int_eq(session_try("mezite-session 1\nproxy a:1\ncert "
	    H1 "\nca known\n", &proxy, &cert, &trust, &pem, &pemlen, buf,
	    sizeof(buf)), -1);
	ck_assert_int_eq(session_try("mezite-session 1\nproxy \ncert "
	    H1 "\nca known\nx", &proxy, &cert, &trust, &pem, &pemlen, buf,
	    sizeof(buf)), -1);
	/* A hash that is not one, for the certificate or the CA. */
	ck_assert_int_eq(session_try("mezite-session 1\nproxy a:1\ncert "
	    "SHA256:00\nca known\nx", &proxy, &cert, &trust, &pem, &pemlen,
	    buf, sizeof(buf)), -1);
	ck_assert_int_eq(session_try("mezite-session 1\nproxy a:1\ncert "
	    H1 "\nca none\nx", &proxy, &cert, &trust, &pem, &pemlen, buf,
	    sizeof(buf)), -1);
	/* A NUL inside: the length is the file's, not the string's. */
	strlcpy(buf, "mezite-session 1\nproxy a:1\ncert " H1
	    "\nca known\nx", sizeof(buf));
	ck_assert_int_eq(session_parse(buf, strlen(buf) + 1, &proxy, &cert,
	    &trust, &pem, &pemlen), -1);
}
END_TEST

static void
proxy_ok(const char *in, const char *host, const char *port,
    const char *name)
{
	struct proxy	 p;
	const char	*why;

	why = proxy_parse(in, &p);
	ck_assert_msg(why == NULL, "%s: %s", in, why);
	ck_assert_str_eq(p.host, host);
	ck_assert_str_eq(p.port, port);
	ck_assert_str_eq(p.name, name);
}

START_TEST(proxy_names)
{
	struct proxy	 p;
	char		 longname[300];

	proxy_ok("proxy.example.com", "proxy.example.com", "443",
	    "proxy.example.com:443");
	proxy_ok("Proxy.Example.COM:8443", "proxy.example.com", "8443",
	    "proxy.example.com:8443");
	proxy_ok("127.0.0.1:08443", "127.0.0.1", "8443", "127.0.0.1:8443");
	proxy_ok("[::1]:8443", "::1", "8443", "[::1]:8443");
	proxy_ok("[2001:DB8::1]", "2001:db8::1", "443", "[2001:db8::1]:443");
	proxy_ok("::1", "::1", "443", "[::1]:443");

	ck_assert_ptr_nonnull(proxy_parse("", &p));
	ck_assert_ptr_nonnull(proxy_parse(":443", &p));
	ck_assert_ptr_nonnull(proxy_parse("host:", &p));
	ck_assert_ptr_nonnull(proxy_parse("host:0", &p));
	ck_assert_ptr_nonnull(proxy_parse("host:65536", &p));
	ck_assert_ptr_nonnull(proxy_parse("host:+443", &p));
	ck_assert_ptr_nonnull(proxy_parse("host: 443", &p));
	ck_assert_ptr_nonnull(proxy_parse("host:https", &p));
	ck_assert_ptr_nonnull(proxy_parse("[::1", &p));
	ck_assert_ptr_nonnull(proxy_parse("[::1]x", &p));
	ck_assert_ptr_nonnull(proxy_parse("[host]:443", &p));
	ck_assert_ptr_nonnull(proxy_parse("ho st", &p));
	ck_assert_ptr_nonnull(proxy_parse("host/x:443", &p));
	ck_assert_ptr_nonnull(proxy_parse("user@host", &p));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_ptr_nonnull(proxy_parse(longname, &p));
}
END_TEST

START_TEST(frame_parse)
{
	const uint8_t	 one[] = { 0, 0, 0, 0, 3, 'a', 'b', 'c' };
	const uint8_t	 empty[] = { 0, 0, 0, 0, 0 };
	const uint8_t	 comp[] = { 1, 0, 0, 0, 1, 'a' };
	const uint8_t	 flag[] = { 2, 0, 0, 0, 1, 'a' };
	const uint8_t	 two[] = { 0, 0, 0, 0, 1, 'a',
			    0, 0, 0, 0, 1, 'b' };
	const uint8_t	 big[] = { 0, 0, 0x10, 0, 1 };
	const uint8_t	*msg;
	size_t		 len;

	ck_assert_ptr_null(grpc_frame_parse(one, sizeof(one), &msg, &len));
	ck_assert_uint_eq(len, 3);
	ck_assert_ptr_eq(msg, one + 5);
	ck_assert_ptr_null(grpc_frame_parse(empty, sizeof(empty), &msg,
	    &len));
	ck_assert_uint_eq(len, 0);

	ck_assert_str_eq(grpc_frame_parse(NULL, 0, &msg, &len),
	    "no message");
	ck_assert_str_eq(grpc_frame_parse(one, 4, &msg, &len),
	    "truncated message");
	ck_assert_str_eq(grpc_frame_parse(one, 7, &msg, &len),
	    "truncated message");
	ck_assert_str_eq(grpc_frame_parse(comp, sizeof(comp), &msg, &len),
	    "compressed message");
	ck_assert_str_eq(grpc_frame_parse(flag, sizeof(flag), &msg, &len),
	    "bad message flags");
	ck_assert_str_eq(grpc_frame_parse(two, sizeof(two), &msg, &len),
	    "more than one message");
	/* 1 MiB + 1 announced: refused before any of it is wanted. */
	ck_assert_str_eq(grpc_frame_parse(big, sizeof(big), &msg, &len),
	    "message too large");
}
END_TEST

static void
decode_is(const char *in, size_t outlen, const char *want)
{
	char	 out[RPC_MSGLEN];

	ck_assert_uint_le(outlen, sizeof(out));
	grpc_message_decode(in, strlen(in), out, outlen);
	ck_assert_str_eq(out, want);
}

START_TEST(message_decode)
{
	decode_is("", RPC_MSGLEN, "");
	decode_is("wrong user or password", RPC_MSGLEN,
	    "wrong user or password");
	decode_is("retry%20after%2010%3A05", RPC_MSGLEN, "retry after 10:05");
	decode_is("100%25 sure", RPC_MSGLEN, "100% sure");
	/* A '%' without two hex digits stands for itself. */
	decode_is("100% sure %zz %4", RPC_MSGLEN, "100% sure %zz %4");
	decode_is("%", RPC_MSGLEN, "%");
	decode_is("r%C3%A9sum%c3%a9", RPC_MSGLEN, "r\xc3\xa9sum\xc3\xa9");
	/* Control characters, C1 ones and bad UTF-8 are not printed. */
	decode_is("a%1B[31mb%0Ac%07d%7Fe", RPC_MSGLEN, "a?[31mb?c?d?e");
	decode_is("a%C2%85b%C2%9Bc", RPC_MSGLEN, "a?b?c");
	decode_is("a%FFb%C3c%E2%82d", RPC_MSGLEN, "a?b?c??d");
	decode_is("%C0%80%ED%A0%80", RPC_MSGLEN, "?????");
	decode_is("a\x1b" "b", RPC_MSGLEN, "a?b");
	/* Cut to fit, never inside a character. */
	decode_is("abcdef", 4, "abc");
	decode_is("ab%C3%A9", 4, "ab");
	decode_is("ab%C3%A9", 5, "ab\xc3\xa9");
}
END_TEST

START_TEST(message_long)
{
	char	 in[4096], out[RPC_MSGLEN];

	memset(in, 'x', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	grpc_message_decode(in, strlen(in), out, sizeof(out));
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
}
END_TEST

START_TEST(code_names)
{
	ck_assert_str_eq(grpc_code_name(0), "OK");
	ck_assert_str_eq(grpc_code_name(GRPC_RESOURCE_EXHAUSTED),
	    "RESOURCE_EXHAUSTED");
	ck_assert_str_eq(grpc_code_name(GRPC_UNAUTHENTICATED),
	    "UNAUTHENTICATED");
	ck_assert_str_eq(grpc_code_name(17), "unknown status");
	ck_assert_str_eq(grpc_code_name(-1), "unknown status");
}
END_TEST

static struct stat
st_make(mode_t mode, uid_t uid)
{
	struct stat	 sb;

	memset(&sb, 0, sizeof(sb));
	sb.st_mode = mode;
	sb.st_uid = uid;
	return (sb);
}

START_TEST(modes)
{
	struct stat	 sb;

	sb = st_make(S_IFDIR | 0700, 1000);
	ck_assert_ptr_null(mode_check(&sb, 1000, MODE_DIR));
	sb = st_make(S_IFDIR | 0755, 1000);
	ck_assert_ptr_null(mode_check(&sb, 1000, MODE_DIR));
	sb = st_make(S_IFDIR | 0770, 1000);
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_DIR),
	    "is writable by group or others");
	sb = st_make(S_IFDIR | 01777, 1000);
	ck_assert_ptr_nonnull(mode_check(&sb, 1000, MODE_DIR));
	sb = st_make(S_IFDIR | 0700, 0);
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_DIR),
	    "belongs to another user");
	sb = st_make(S_IFREG | 0700, 1000);
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_DIR),
	    "is not a directory");
	sb = st_make(S_IFLNK | 0777, 1000);
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_DIR),
	    "is a symbolic link");

	sb = st_make(S_IFREG | 0644, 1000);
	ck_assert_ptr_null(mode_check(&sb, 1000, MODE_FILE));
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_SECRET),
	    "is accessible by group or others");
	sb = st_make(S_IFREG | 0604, 1000);
	ck_assert_ptr_nonnull(mode_check(&sb, 1000, MODE_SECRET));
	sb = st_make(S_IFREG | 0600, 1000);
	ck_assert_ptr_null(mode_check(&sb, 1000, MODE_SECRET));
	sb = st_make(S_IFREG | 0602, 1000);
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_FILE),
	    "is writable by group or others");
	sb = st_make(S_IFREG | 0600, 1001);
	ck_assert_ptr_nonnull(mode_check(&sb, 1000, MODE_SECRET));
	sb = st_make(S_IFIFO | 0600, 1000);
	ck_assert_str_eq(mode_check(&sb, 1000, MODE_FILE),
	    "is not a regular file");
	sb = st_make(S_IFDIR | 0700, 1000);
	ck_assert_ptr_nonnull(mode_check(&sb, 1000, MODE_FILE));
}
END_TEST

static char	 tmpdir[64];
static char	 homedir[128];

static void
home_setup(void)
{
	ck_assert_uint_lt(strlcpy(tmpdir, "/tmp/check_msh.XXXXXX",
	    sizeof(tmpdir)), sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_lt(snprintf(homedir, sizeof(homedir), "%s/home", tmpdir),
	    (int)sizeof(homedir));
	ck_assert_int_eq(setenv("MEZITE_HOME", homedir, 1), 0);
}

static void
home_teardown(void)
{
	char	 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(home_files)
{
	struct home	 h;
	struct stat	 sb;
	char		*buf, path[256];
	size_t		 len;

	ck_assert_int_eq(home_open(&h, 0), 1);
	ck_assert_int_eq(home_open(&h, 1), 0);
	ck_assert_int_eq(stat(homedir, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0700);

	ck_assert_int_eq(home_read(&h, "proxy", MODE_FILE, &buf, &len), 1);
	ck_assert_int_eq(home_write(&h, "proxy", "p:443\n", 6), 0);
	ck_assert_int_eq(home_read(&h, "proxy", MODE_FILE, &buf, &len), 0);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(buf, "p:443\n");
	free(buf);
	snprintf(path, sizeof(path), "%s/proxy", homedir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);

	/* Replaced whole, no temporary file left. */
	ck_assert_int_eq(home_write(&h, "proxy", "q:1\n", 4), 0);
	ck_assert_int_eq(home_read(&h, "proxy", MODE_SECRET, &buf, &len), 0);
	ck_assert_str_eq(buf, "q:1\n");
	free(buf);
	snprintf(path, sizeof(path), "ls -A %s | grep -q '^\\.'", homedir);
	ck_assert_int_ne(system(path), 0);

	/* Others may read a certificate, not a key. */
	snprintf(path, sizeof(path), "%s/proxy", homedir);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(home_read(&h, "proxy", MODE_FILE, &buf, &len), 0);
	free(buf);
	ck_assert_int_eq(home_read(&h, "proxy", MODE_SECRET, &buf, &len), -1);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(chmod(path, 0664), 0);
	ck_assert_int_eq(home_read(&h, "proxy", MODE_FILE, &buf, &len), -1);

	ck_assert_int_eq(home_remove(&h, "proxy"), 0);
	ck_assert_int_eq(home_remove(&h, "proxy"), 1);
	home_close(&h);
}
END_TEST

START_TEST(home_links)
{
	struct home	 h;
	char		*buf, path[256], target[256];
	size_t		 len;
	int		 fd;

	ck_assert_int_eq(home_open(&h, 1), 0);
	snprintf(target, sizeof(target), "%s/elsewhere", tmpdir);
	ck_assert_int_ne(fd = open(target, O_WRONLY | O_CREAT, 0600), -1);
	close(fd);
	snprintf(path, sizeof(path), "%s/cert.pem", homedir);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(home_read(&h, "cert.pem", MODE_FILE, &buf, &len),
	    -1);
	ck_assert_int_eq(home_replaceable(&h, "cert.pem"), -1);
	ck_assert_int_eq(home_write(&h, "cert.pem", "x", 1), -1);
	ck_assert_int_eq(home_replaceable(&h, "key.pem"), 0);
	snprintf(path, sizeof(path), "%s/ca.pem", homedir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(home_replaceable(&h, "ca.pem"), -1);
	home_close(&h);

	/* The directory itself: not a link, not writable by others. */
	ck_assert_int_eq(chmod(homedir, 0770), 0);
	ck_assert_int_eq(home_open(&h, 0), -1);
	ck_assert_int_eq(chmod(homedir, 0700), 0);
	snprintf(path, sizeof(path), "%s/link", tmpdir);
	ck_assert_int_eq(symlink(homedir, path), 0);
	ck_assert_int_eq(setenv("MEZITE_HOME", path, 1), 0);
	ck_assert_int_eq(home_open(&h, 1), -1);
}
END_TEST

/* A user certificate as the auth worker makes one, self-signed here. */
static X509 *
cert_make(EVP_PKEY *key, const char *cn, const char *sans, long secs)
{
	X509		*x;
	X509_NAME	*n;
	X509_EXTENSION	*ext;

	ck_assert_ptr_nonnull(x = X509_new());
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	n = X509_get_subject_name(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	    (const unsigned char *)"Mezite", -1, -1, 0), 1);
	if (cn != NULL)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN",
		    MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, n), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), secs));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	if (sans != NULL) {
		ck_assert_ptr_nonnull(ext = X509V3_EXT_conf_nid(NULL, NULL,
		    NID_subject_alt_name, sans));
		ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return (x);
}

START_TEST(cert_fields)
{
	EVP_PKEY	*key, *other;
	X509		*x, *y;
	struct certinfo	 ci;
	time_t		 now = time(NULL);

	ck_assert_ptr_nonnull(key = key_new());
	ck_assert_ptr_nonnull(other = key_new());
	x = cert_make(key, "alice", "URI:mezite:role:admin,DNS:alice.example,"
	    "URI:https://example.com/,URI:mezite:role:dev,URI:mezite:role:",
	    3600);
	ck_assert_int_eq(cert_info(x, &ci), 0);
	ck_assert_str_eq(ci.name, "alice");
	ck_assert_uint_eq(ci.nroles, 2);
	ck_assert_str_eq(ci.roles[0], "admin");
	ck_assert_str_eq(ci.roles[1], "dev");
	ck_assert(ci.not_after >= now + 3590 && ci.not_after <= now + 3610);
	ck_assert(hash_valid(ci.hash));
	certinfo_free(&ci);

	ck_assert(cert_matches_key(x, key));
	ck_assert(!cert_matches_key(x, other));
	ck_assert(cert_signed_by(x, x));
	y = cert_make(other, "bob", NULL, 60);
	ck_assert(!cert_signed_by(x, y));
	ck_assert_int_eq(cert_info(y, &ci), 0);
	ck_assert_uint_eq(ci.nroles, 0);
	certinfo_free(&ci);
	X509_free(y);

	/* No common name: not a Mezite certificate. */
	y = cert_make(other, NULL, NULL, 60);
	ck_assert_int_eq(cert_info(y, &ci), -1);
	certinfo_free(&ci);
	X509_free(y);

	X509_free(x);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(key_files)
{
	struct home	 h;
	EVP_PKEY	*key, *back;
	X509		*x, *y;
	BIO		*bio;
	char		*buf, *pem;
	uint8_t		*der;
	const uint8_t	*p;
	size_t		 len;
	long		 plen;

	ck_assert_int_eq(home_open(&h, 1), 0);
	ck_assert_ptr_nonnull(key = key_new());
	ck_assert_int_eq(key_spki(key, &der, &len), 0);
	p = der;
	ck_assert_ptr_nonnull(back = d2i_PUBKEY(NULL, &p, len));
	ck_assert_int_eq(EVP_PKEY_eq(key, back), 1);
	EVP_PKEY_free(back);
	OPENSSL_free(der);

	ck_assert_int_eq(key_save(&h, "key.pem", key), 0);
	ck_assert_int_eq(home_read(&h, "key.pem", MODE_SECRET, &buf, &len),
	    0);
	ck_assert_ptr_nonnull(strstr(buf, "-----BEGIN PRIVATE KEY-----"));
	ck_assert_ptr_nonnull(back = key_load(buf, len));
	ck_assert_int_eq(EVP_PKEY_eq(key, back), 1);
	free(buf);

	x = cert_make(key, "alice", NULL, 60);
	ck_assert_ptr_nonnull(bio = BIO_new(BIO_s_mem()));
	ck_assert_int_eq(PEM_write_bio_X509(bio, x), 1);
	ck_assert_int_gt(plen = BIO_get_mem_data(bio, &pem), 0);
	ck_assert_ptr_nonnull(y = cert_load(pem, plen));
	ck_assert(cert_matches_key(y, back));
	ck_assert_ptr_null(cert_load("junk", 4));
	ck_assert_ptr_null(key_load(pem, plen));

	BIO_free(bio);
	X509_free(y);
	X509_free(x);
	EVP_PKEY_free(back);
	EVP_PKEY_free(key);
	home_close(&h);
}
END_TEST

START_TEST(times)
{
	char	 buf[64];

	ck_assert_str_eq(fmt_time(1796119200, buf, sizeof(buf)),
	    "2026-12-01 10:00 UTC");
}
END_TEST

/* What /bin/sh makes of a word: printf '%s' WORD. */
static char *
sh_eval(const char *word)
{
	char	 cmd[4096], *out;
	FILE	*fp;
	size_t	 n;

	ck_assert_int_lt(snprintf(cmd, sizeof(cmd), "printf '%%s' %s", word),
	    (int)sizeof(cmd));
	ck_assert_ptr_nonnull(fp = popen(cmd, "r"));
	ck_assert_ptr_nonnull(out = calloc(1, 4096));
	n = fread(out, 1, 4095, fp);
	out[n] = '\0';
	ck_assert_int_eq(pclose(fp), 0);
	return (out);
}

START_TEST(shell_quoting)
{
	const char	*words[] = { "plain", "/usr/local/bin/msh", "a b",
			    "it's", "'", "''", "a'b'c", "\"x\"", "$HOME",
			    "`id`", "a\\b", "100%", "*", "~", "x;y", "\t",
			    "new\nline", "" };
	char		*q, *back;
	size_t		 i;

	q = sh_quote("plain");
	ck_assert_str_eq(q, "plain");
	free(q);
	q = sh_quote("");
	ck_assert_str_eq(q, "''");
	free(q);
	q = sh_quote("it's");
	ck_assert_str_eq(q, "'it'\\''s'");
	free(q);
	q = sh_quote("a b");
	ck_assert_str_eq(q, "'a b'");
	free(q);
	/* Whatever the word, the shell gives it back as it was. */
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		q = sh_quote(words[i]);
		back = sh_eval(q);
		ck_assert_str_eq(back, words[i]);
		free(back);
		free(q);
	}
}
END_TEST

START_TEST(percent_and_config_quoting)
{
	char	*q;

	q = pct_escape("a%b%%c");
	ck_assert_str_eq(q, "a%%b%%%%c");
	free(q);
	q = pct_escape("none");
	ck_assert_str_eq(q, "none");
	free(q);
	q = cfg_quote("/home/a/.mezite/ssh_known_hosts");
	ck_assert_str_eq(q, "/home/a/.mezite/ssh_known_hosts");
	free(q);
	q = cfg_quote("/a b/\"c\"\\d");
	ck_assert_str_eq(q, "\"/a b/\\\"c\\\"\\\\d\"");
	free(q);
}
END_TEST

START_TEST(alias_and_patterns)
{
	struct proxy	 p;
	char		 a[HOSTLEN + 16];

	ck_assert_ptr_null(proxy_parse("Proxy.example.com", &p));
	jump_alias(&p, a, sizeof(a));
	ck_assert_str_eq(a, "mezite-proxy.example.com");
	ck_assert_ptr_null(proxy_parse("[::1]:8443", &p));
	jump_alias(&p, a, sizeof(a));
	ck_assert_str_eq(a, "mezite-__1-8443");
	ck_assert(host_pattern_valid("web-1.internal", 0));
	ck_assert(host_pattern_valid("alice@corp", 0));
	ck_assert(!host_pattern_valid("*.internal", 0));
	ck_assert(host_pattern_valid("*.internal", 1));
	ck_assert(host_pattern_valid("!db?", 1));
	ck_assert(!host_pattern_valid("a b", 1));
	ck_assert(!host_pattern_valid("a,b", 1));
	ck_assert(!host_pattern_valid("", 1));
	ck_assert(!host_pattern_valid("\"x\"", 1));
}
END_TEST

/* ssh_split() on a NULL-ended list: the destination's index. */
static int
split(char **argv, const char **proxy, char **opts, int *nopts,
    const char **why)
{
	int	 argc;

	for (argc = 0; argv[argc] != NULL; argc++)
		;
	return (ssh_split(argc, argv, proxy, opts, nopts, why));
}

START_TEST(ssh_options)
{
	char		*a1[] = { "-p", "px:8443", "-v", "-o", "Port=2222",
			    "-i", "k", "-lroot", "web", "ls", "-l", NULL };
	char		*a2[] = { "-vAp", "px", "-C", "web", NULL };
	char		*a3[] = { "-ppx", "--", "-web", "cmd", NULL };
	char		*a4[] = { "-J", "other", "web", NULL };
	char		*a5[] = { "-v", NULL };
	char		*a6[] = { "-v", "-o", NULL };
	char		*a7[] = { "-vJx", "web", NULL };
	char		*opts[16];
	const char	*proxy, *why;
	int		 n, d;

	ck_assert_int_eq(d = split(a1, &proxy, opts, &n, &why), 8);
	ck_assert_str_eq(proxy, "px:8443");
	ck_assert_int_eq(n, 6);
	ck_assert_str_eq(opts[0], "-v");
	ck_assert_str_eq(opts[1], "-o");
	ck_assert_str_eq(opts[2], "Port=2222");
	ck_assert_str_eq(opts[3], "-i");
	ck_assert_str_eq(opts[4], "k");
	ck_assert_str_eq(opts[5], "-lroot");

	/* -p in a cluster: the flags before it go on. */
	ck_assert_int_eq(d = split(a2, &proxy, opts, &n, &why), 3);
	ck_assert_str_eq(proxy, "px");
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(opts[0], "-vA");
	ck_assert_str_eq(opts[1], "-C");
	free(opts[0]);

	/* "--" ends the options and goes on to ssh. */
	ck_assert_int_eq(d = split(a3, &proxy, opts, &n, &why), 2);
	ck_assert_str_eq(proxy, "px");
	ck_assert_int_eq(n, 0);

	ck_assert_int_eq(split(a4, &proxy, opts, &n, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "-J"));
	ck_assert_int_eq(split(a7, &proxy, opts, &n, &why), -1);
	ck_assert_int_eq(split(a5, &proxy, opts, &n, &why), -1);
	ck_assert_str_eq(why, "no destination");
	ck_assert_int_eq(split(a6, &proxy, opts, &n, &why), -1);
}
END_TEST

static const struct jump jump_test = {
	.ssh = "ssh",
	.msh = "/opt/my msh/msh",
	.host = "proxy.example.com",
	.port = "443",
	.user = "alice",
	.alias = "mezite-proxy.example.com",
	.known = "/home/al's/100%/ssh_known_hosts",
};

START_TEST(ssh_command_line)
{
	char	*argv[] = { "-v", "root@web", "uptime", NULL };
	char	*opts[] = { "-v" };
	char	**v, *m;

	ck_assert_ptr_null(jump_check(&jump_test));
	m = jump_proxycmd(&jump_test);
	ck_assert_str_eq(m, "'/opt/my msh/msh' proxy proxy.example.com 443");
	free(m);

	v = ssh_argv(&jump_test, opts, 1, 3, argv, 1);
	ck_assert_str_eq(v[0], "ssh");
	ck_assert_str_eq(v[1], "-o");
	ck_assert_str_eq(v[2], "ProxyCommand=ssh"
	    " -o 'ProxyCommand='\\''/opt/my msh/msh'\\'' proxy "
	    "proxy.example.com 443'"
	    " -o User=alice"
	    " -o HostKeyAlias=mezite-proxy.example.com"
	    " -o 'UserKnownHostsFile=\"/home/al'\\''s/100%%%%/"
	    "ssh_known_hosts\"'"
	    " -o StrictHostKeyChecking=accept-new"
	    " -W %h:%p mezite-proxy.example.com");
	ck_assert_str_eq(v[3], "-v");
	ck_assert_str_eq(v[4], "root@web");
	ck_assert_str_eq(v[5], "uptime");
	ck_assert_ptr_null(v[6]);
	/* What ssh_argv() made; the rest is argv's. */
	free(v[0]);
	free(v[1]);
	free(v[2]);
	free(v);
}
END_TEST

START_TEST(ssh_config_block)
{
	struct jump	 j = jump_test;
	char		*hosts[] = { "web-1", "*.internal" };
	char		 buf[4096];
	FILE		*fp;
	size_t		 n;

	j.cafile = "/etc/ca.pem";
	ck_assert_ptr_nonnull(fp = fmemopen(buf, sizeof(buf), "w"));
	ck_assert_int_eq(config_write(fp, &j, hosts, 2), 0);
	n = ftell(fp);
	fclose(fp);
	buf[n] = '\0';
	ck_assert_str_eq(buf,
	    "# Mezite proxy proxy.example.com:443 as user alice, "
	    "from msh config\n"
	    "Host mezite-proxy.example.com\n"
	    "\tHostName proxy.example.com\n"
	    "\tPort 443\n"
	    "\tUser alice\n"
	    "\tProxyCommand '/opt/my msh/msh' proxy -C /etc/ca.pem %h %p\n"
	    "\tHostKeyAlias mezite-proxy.example.com\n"
	    "\tUserKnownHostsFile \"/home/al's/100%%/ssh_known_hosts\"\n"
	    "\tStrictHostKeyChecking accept-new\n"
	    "\n"
	    "Host web-1 *.internal\n"
	    "\tProxyJump mezite-proxy.example.com\n");

	j.known = "/a\nb";
	ck_assert_ptr_nonnull(jump_check(&j));
}
END_TEST

/* The login's SSH key and certificate go to the ssh to the node. */
START_TEST(ssh_identity)
{
	struct jump	 j = jump_test;
	char		*argv[] = { "root@web", NULL };
	char		*hosts[] = { "web-1" };
	char		**v, buf[4096];
	FILE		*fp;
	size_t		 n;

	j.idfile = "/home/al's/100%/id_ed25519";
	j.certfile = "/home/al's/100%/id_ed25519-cert.pub";
	ck_assert_ptr_null(jump_check(&j));
	v = ssh_argv(&j, NULL, 0, 1, argv, 0);
	ck_assert_str_eq(v[3], "-o");
	ck_assert_str_eq(v[4], "IdentityFile=\"/home/al's/100%%/id_ed25519\"");
	ck_assert_str_eq(v[5], "-o");
	ck_assert_str_eq(v[6], "CertificateFile=\"/home/al's/100%%/"
	    "id_ed25519-cert.pub\"");
	ck_assert_str_eq(v[7], "root@web");
	ck_assert_ptr_null(v[8]);
	for (n = 0; n < 7; n++)
		free(v[n]);
	free(v);

	ck_assert_ptr_nonnull(fp = fmemopen(buf, sizeof(buf), "w"));
	ck_assert_int_eq(config_write(fp, &j, hosts, 1), 0);
	n = ftell(fp);
	fclose(fp);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "Host web-1\n"
	    "\tProxyJump mezite-proxy.example.com\n"
	    "\tIdentityFile \"/home/al's/100%%/id_ed25519\"\n"
	    "\tCertificateFile \"/home/al's/100%%/id_ed25519-cert.pub\"\n"));

	/* No certificate: the key alone. */
	j.certfile = NULL;
	v = ssh_argv(&j, NULL, 0, 1, argv, 0);
	ck_assert_str_eq(v[5], "root@web");
	for (n = 0; n < 5; n++)
		free(v[n]);
	free(v);
	j.certfile = "/a\nb";
	ck_assert_ptr_nonnull(jump_check(&j));
}
END_TEST

/*
 * The private key as OpenSSH reads it: ssh-keygen -y gives back the
 * public line, and the certificate lines msh keeps.
 */
START_TEST(ssh_key_files)
{
	struct sshid	 id;
	char		 dir[] = "/tmp/check_msh_sshid.XXXXXX";
	char		 path[256], cmd[512], out[512], *pub, *pem;
	size_t		 len;
	FILE		*fp;
	int		 fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(sshid_new(&id), 0);
	ck_assert_ptr_nonnull(pub = sshid_public(&id, "alice"));
	ck_assert_int_eq(strncmp(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
	    37), 0);
	ck_assert_int_eq(sshid_private(&id, "alice", &pem, &len), 0);
	ck_assert_uint_eq(strlen(pem), len);
	ck_assert_int_eq(strncmp(pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n",
	    36), 0);
	(void)snprintf(path, sizeof(path), "%s/id_ed25519", dir);
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600),
	    0);
	ck_assert_int_eq(write(fd, pem, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
	(void)snprintf(cmd, sizeof(cmd), "ssh-keygen -y -f %s", path);
	ck_assert_ptr_nonnull(fp = popen(cmd, "r"));
	ck_assert_ptr_nonnull(fgets(out, sizeof(out), fp));
	ck_assert_int_eq(pclose(fp), 0);
	out[strcspn(out, "\n")] = '\0';
	ck_assert_str_eq(out, pub);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	freezero(pem, len);
	free(pub);
	sshid_clear(&id);

	ck_assert_int_eq(sshid_cert_valid("ssh-ed25519-cert-v01@openssh.com "
	    "AAAA alice", 43), 1);
	ck_assert_int_eq(sshid_cert_valid("ssh-ed25519-cert-v01@openssh.com "
	    "AAAA", 37), 1);
	ck_assert_int_eq(sshid_cert_valid("ssh-ed25519-cert-v01@openssh.com "
	    "AAA alice", 42), 0);
	ck_assert_int_eq(sshid_cert_valid("ssh-ed25519-cert-v01@openssh.com "
	    "AAAA al\nice", 44), 0);
	ck_assert_int_eq(sshid_cert_valid("ssh-ed25519 AAAA", 16), 0);
	ck_assert_int_eq(sshid_cert_valid("", 0), 0);
}
END_TEST

static Suite *
msh_suite(void)
{
	Suite	*s = suite_create("msh");
	TCase	*tc = tcase_create("msh");
	TCase	*th = tcase_create("home");

	tcase_add_test(tc, known_new_match_changed);
	tcase_add_test(tc, known_several_lines);
	tcase_add_test(tc, known_forms);
	tcase_add_test(tc, known_malformed);
	tcase_add_test(tc, hash_forms);
	tcase_add_test(tc, session_files);
	tcase_add_test(tc, proxy_names);
	tcase_add_test(tc, frame_parse);
	tcase_add_test(tc, message_decode);
	tcase_add_test(tc, message_long);
	tcase_add_test(tc, code_names);
	tcase_add_test(tc, modes);
	tcase_add_test(tc, cert_fields);
	tcase_add_test(tc, times);
	tcase_add_test(tc, shell_quoting);
	tcase_add_test(tc, percent_and_config_quoting);
	tcase_add_test(tc, alias_and_patterns);
	tcase_add_test(tc, ssh_options);
	tcase_add_test(tc, ssh_command_line);
	tcase_add_test(tc, ssh_config_block);
	tcase_add_test(tc, ssh_identity);
	tcase_add_test(tc, ssh_key_files);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(th, home_setup, home_teardown);
	tcase_add_test(th, home_files);
	tcase_add_test(th, home_links);
	tcase_add_test(th, key_files);
	suite_add_tcase(s, th);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(msh_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
