/*
 * mezd's parsers: mezd.conf, the HTTP proxy's URL, NO_PROXY, and the
 * HTTP proxy's answer to CONNECT; and the backoff's bounds.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mezd/mezd.h"

#define GOOD \
	"# an agent\n" \
	"proxy \"proxy.example.com:8443\"\n" \
	"ca \"/etc/mezd/ca.pem\"   # the proxy's CA\n" \
	"name \"db-1\"\n" \
	"token \"s3cr\\\"et\"\n" \
	"state directory \"/var/db/mezd\"\n" \
	"label env \"prod\"\n" \
	"label \"team\" \"data base\"\n" \
	"service ssh 127.0.0.1:22\n" \
	"\tservice web [::1]:8080\n" \
	"keepalive 10\n" \
	"keepalive timeout 30\n" \
	"http proxy \"http://u:p@px.example.com:3128\"\n" \
	"user _mezd\n"

static int
parse(const char *text, struct mezd_conf *c, char *err, size_t errlen)
{
	return (config_parse("t.conf", text, strlen(text), c, err, errlen));
}

START_TEST(conf_good)
{
	struct mezd_conf	 c;
	char			 err[ERRLEN];

	ck_assert_msg(parse(GOOD, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.proxy.host, "proxy.example.com");
	ck_assert_str_eq(c.proxy.port, "8443");
	ck_assert_str_eq(c.ca, "/etc/mezd/ca.pem");
	ck_assert_str_eq(c.name, "db-1");
	ck_assert_str_eq(c.token, "s3cr\"et");
	ck_assert_int_eq(c.token_inline, 1);
	ck_assert_str_eq(c.statedir, "/var/db/mezd");
	ck_assert_uint_eq(c.nlabels, 2);
	ck_assert_str_eq(c.labels[1].key, "team");
	ck_assert_str_eq(c.labels[1].value, "data base");
	ck_assert_uint_eq(c.nservices, 2);
	ck_assert_str_eq(c.services[0].name, "ssh");
	ck_assert_str_eq(c.services[0].addr.host, "127.0.0.1");
	ck_assert_str_eq(c.services[0].addr.port, "22");
	ck_assert_str_eq(c.services[1].addr.host, "::1");
	ck_assert_str_eq(c.services[1].target, "[::1]:8080");
	ck_assert_int_eq(c.keepalive, 10);
	ck_assert_int_eq(c.keepalive_timeout, 30);
	ck_assert_int_eq(c.has_httpproxy, 1);
	ck_assert_str_eq(c.user, "_mezd");
	config_clear(&c);
	ck_assert_str_eq(c.token, "");
}
END_TEST

START_TEST(conf_defaults)
{
	struct mezd_conf	 c;
	char			 err[ERRLEN];

	ck_assert_msg(parse("proxy p\nca \"c\"\nname n\n", &c, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.proxy.port, "443");
	ck_assert_str_eq(c.statedir, "/var/lib/mezd");
	ck_assert_int_eq(c.keepalive, 15);
	ck_assert_int_eq(c.keepalive_timeout, 45);
	ck_assert_str_eq(c.token, "");
	ck_assert_uint_eq(c.nservices, 0);
}
END_TEST

static const struct {
	const char	*text;
	const char	*err;
} bad[] = {
	{ "proxy p\nca c\nname n\nbogus 1\n",
	    "t.conf:4: syntax error at \"bogus\"" },
	{ "proxy p\nproxy q\n", "t.conf:2: proxy given twice" },
	{ "proxy \"p:0\"\n", "t.conf:1: proxy: invalid port" },
	{ "proxy \"p\n", "t.conf:1: unterminated quoted string" },
	{ "proxy \"p\"x\n", "t.conf:1: junk after a quoted string" },
	{ "ca \"a\\nb\"\n", "t.conf:1: invalid escape in a quoted string" },
	{ "name \"a b\"\n", "t.conf:1: name: letters, digits, '.', '-' and "
	    "'_', at most 64" },
	{ "\n\nservice ssh 127.0.0.1\n",
	    "t.conf:3: service: target must be host:port" },
	{ "service ssh h:1\nservice ssh h:2\n",
	    "t.conf:2: service: name given twice" },
	{ "service s/x h:1\n", "t.conf:1: service: invalid name" },
	{ "keepalive 0\n", "t.conf:1: keepalive: 1 to 3600 seconds" },
	{ "keepalive timeout x\n",
	    "t.conf:1: keepalive timeout: 2 to 86400 seconds" },
	{ "http proxy \"https://p:1\"\n",
	    "t.conf:1: http proxy: only http:// proxies are supported" },
	{ "state directory \"rel\"\n",
	    "t.conf:1: state directory: not an absolute path" },
	{ "token \"a\"\ntoken file \"/t\"\n", "t.conf:2: token given twice" },
	{ "label a 1\nlabel a 2\n", "t.conf:2: label: key given twice" },
	{ "a b c d e f g h i\n", "t.conf:1: too many words" },
	{ "ca c\nname n\n", "t.conf: no proxy given" },
	{ "proxy p\nname n\n", "t.conf: no ca given" },
	{ "proxy p\nca c\n", "t.conf: no name given" },
	{ "proxy p\nca c\nname n\nkeepalive 30\nkeepalive timeout 30\n",
	    "t.conf: keepalive timeout must be longer than keepalive" },
};

START_TEST(conf_bad)
{
	struct mezd_conf	 c;
	char			 err[ERRLEN];

	ck_assert_int_eq(parse(bad[_i].text, &c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, bad[_i].err);
}
END_TEST

START_TEST(conf_limits)
{
	struct mezd_conf	 c;
	char			 err[ERRLEN], *text, *p;
	size_t			 i, len = 65 * 40 + 64;

	/* 64 services are fine, the 65th is not. */
	ck_assert_ptr_nonnull(text = calloc(1, len));
	p = text;
	for (i = 0; i < 65; i++)
		p += snprintf(p, len - (p - text), "service s%zu h:%zu\n", i,
		    i + 1);
	ck_assert_int_eq(parse(text, &c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "t.conf:65: more than 64 services");
	free(text);

	/* A line too long. */
	ck_assert_ptr_nonnull(text = malloc(LINELEN + 10));
	memset(text, 'a', LINELEN + 9);
	text[LINELEN + 9] = '\0';
	ck_assert_int_eq(parse(text, &c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "t.conf:1: line too long");
	free(text);
}
END_TEST

START_TEST(conf_files)
{
	struct mezd_conf	 c;
	char			 dir[] = "/tmp/check_mezd.XXXXXX";
	char			 conf[128], tok[128], text[512];
	char			 err[ERRLEN];
	char			 want[256];
	int			 fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/mezd.conf", dir);
	snprintf(tok, sizeof(tok), "%s/token", dir);

	/* A token file others may read is refused. */
	ck_assert_int_ge(fd = open(tok, O_WRONLY | O_CREAT, 0644), 0);
	ck_assert_int_eq(write(fd, "abc123\n", 7), 7);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	close(fd);
	snprintf(text, sizeof(text), "proxy p\nca c\nname n\n"
	    "token file \"%s\"\n", tok);
	ck_assert_int_ge(fd = open(conf, O_WRONLY | O_CREAT, 0644), 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(config_load(conf, &c, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: holds a secret and is accessible "
	    "by group or others", tok);
	ck_assert_str_eq(err, want);
	/* Mode 0600: read, the newline left out. */
	ck_assert_int_eq(chmod(tok, 0600), 0);
	ck_assert_msg(config_load(conf, &c, err, sizeof(err)) == 0, "%s",
	    err);
	ck_assert_str_eq(c.token, "abc123");
	config_clear(&c);

	/* A token in the file itself: the file must be private. */
	ck_assert_int_ge(fd = open(conf, O_WRONLY | O_TRUNC), 0);
	ck_assert_int_eq(write(fd, "proxy p\nca c\nname n\ntoken t\n", 28),
	    28);
	close(fd);
	ck_assert_int_eq(config_load(conf, &c, err, sizeof(err)), -1);
	ck_assert_int_eq(chmod(conf, 0600), 0);
	ck_assert_msg(config_load(conf, &c, err, sizeof(err)) == 0, "%s",
	    err);
	config_clear(&c);

	unlink(conf);
	unlink(tok);
	rmdir(dir);
}
END_TEST

START_TEST(url_parse)
{
	struct httpproxy	 hp;

	ck_assert_ptr_null(httpproxy_parse("http://px:3128", &hp));
	ck_assert_str_eq(hp.addr.host, "px");
	ck_assert_str_eq(hp.addr.port, "3128");
	ck_assert_int_eq(hp.has_auth, 0);
	ck_assert_ptr_null(httpproxy_parse("HTTP://Px.Example/", &hp));
	ck_assert_str_eq(hp.addr.host, "px.example");
	ck_assert_str_eq(hp.addr.port, "80");
	ck_assert_ptr_null(httpproxy_parse("http://[::1]:8080", &hp));
	ck_assert_str_eq(hp.addr.host, "::1");
	ck_assert_str_eq(hp.addr.port, "8080");
	ck_assert_ptr_null(httpproxy_parse("http://[::1]", &hp));
	ck_assert_str_eq(hp.addr.port, "80");
	/* user:pass, percent-decoded, in base64 */
	ck_assert_ptr_null(httpproxy_parse("http://alice:p%40ss@px:1", &hp));
	ck_assert_int_eq(hp.has_auth, 1);
	ck_assert_str_eq(hp.auth, "YWxpY2U6cEBzcw==");	/* alice:p@ss */
	ck_assert_ptr_null(httpproxy_parse("http://bob@px:1", &hp));
	ck_assert_str_eq(hp.auth, "Ym9iOg==");		/* bob: */

	ck_assert_str_eq(httpproxy_parse("https://px:1", &hp),
	    "only http:// proxies are supported");
	ck_assert_str_eq(httpproxy_parse("px:1", &hp), "not an http:// URL");
	ck_assert_str_eq(httpproxy_parse("http://px:1/path", &hp),
	    "a path after the host");
	ck_assert_str_eq(httpproxy_parse("http://", &hp), "no host");
	ck_assert_str_eq(httpproxy_parse("http://u@", &hp), "no host");
	ck_assert_str_eq(httpproxy_parse("http://px:99999", &hp),
	    "invalid port");
	ck_assert_str_eq(httpproxy_parse("http://u:%4@px", &hp),
	    "malformed or too long user or password");
	ck_assert_str_eq(httpproxy_parse("http://u:%00@px", &hp),
	    "malformed or too long user or password");
	ck_assert_str_eq(httpproxy_parse("http://a@b@px", &hp),
	    "'@' in the host");
}
END_TEST

START_TEST(no_proxy)
{
	ck_assert_int_eq(no_proxy_match("*", "any.where", "443"), 1);
	ck_assert_int_eq(no_proxy_match("", "a", "443"), 0);
	ck_assert_int_eq(no_proxy_match("example.com", "example.com", "1"), 1);
	ck_assert_int_eq(no_proxy_match("example.com", "a.example.com", "1"),
	    1);
	ck_assert_int_eq(no_proxy_match(".example.com", "example.com", "1"),
	    1);
	ck_assert_int_eq(no_proxy_match(".example.com", "b.a.Example.COM",
	    "1"), 1);
	/* a suffix, not a label: no */
	ck_assert_int_eq(no_proxy_match("example.com", "badexample.com", "1"),
	    0);
	ck_assert_int_eq(no_proxy_match("a.example.com", "example.com", "1"),
	    0);
	/* lists, blanks, ports */
	ck_assert_int_eq(no_proxy_match("foo, bar ,baz", "bar", "1"), 1);
	ck_assert_int_eq(no_proxy_match("foo,,baz", "bar", "1"), 0);
	ck_assert_int_eq(no_proxy_match("px:8443", "px", "8443"), 1);
	ck_assert_int_eq(no_proxy_match("px:8443", "px", "443"), 0);
	ck_assert_int_eq(no_proxy_match("10.0.0.1", "10.0.0.1", "443"), 1);
	ck_assert_int_eq(no_proxy_match("10.0.0.1", "10.0.0.11", "443"), 0);
	ck_assert_int_eq(no_proxy_match("::1", "::1", "443"), 1);
	ck_assert_int_eq(no_proxy_match("[::1]:443", "::1", "443"), 1);
	ck_assert_int_eq(no_proxy_match("[::1]:80", "::1", "443"), 0);
	ck_assert_int_eq(no_proxy_match("[::1", "::1", "443"), 0);
	ck_assert_int_eq(no_proxy_match("*.example.com", "a.example.com",
	    "1"), 0);
}
END_TEST

START_TEST(select_env)
{
	struct mezd_conf	 c;
	struct httpproxy	 hp;
	char			 err[ERRLEN];

	ck_assert_int_eq(parse("proxy \"mz.example.com:443\"\nca c\nname n\n",
	    &c, err, sizeof(err)), 0);
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	ck_assert_int_eq(httpproxy_select(&c, &hp, err, sizeof(err)), 0);
	setenv("HTTPS_PROXY", "http://px:3128", 1);
	ck_assert_int_eq(httpproxy_select(&c, &hp, err, sizeof(err)), 1);
	ck_assert_str_eq(hp.addr.name, "px:3128");
	setenv("https_proxy", "http://lower:1", 1);
	ck_assert_int_eq(httpproxy_select(&c, &hp, err, sizeof(err)), 1);
	ck_assert_str_eq(hp.addr.name, "lower:1");
	setenv("NO_PROXY", ".example.com", 1);
	ck_assert_int_eq(httpproxy_select(&c, &hp, err, sizeof(err)), 0);
	setenv("no_proxy", "other", 1);
	ck_assert_int_eq(httpproxy_select(&c, &hp, err, sizeof(err)), 1);
	setenv("https_proxy", "socks5://x", 1);
	ck_assert_int_eq(httpproxy_select(&c, &hp, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "https_proxy: only http:// proxies are "
	    "supported");
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
}
END_TEST

START_TEST(connect_request)
{
	struct httpproxy	 hp;
	struct proxy		 to;
	char			 buf[CONNREQ_MAX];

	ck_assert_ptr_null(proxy_parse("mz.example.com:8443", &to));
	ck_assert_ptr_null(httpproxy_parse("http://u:p@px:1", &hp));
	ck_assert_int_gt(connectreq_build(&hp, &to, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "CONNECT mz.example.com:8443 HTTP/1.1\r\n"
	    "Host: mz.example.com:8443\r\n"
	    "Proxy-Authorization: Basic dTpw\r\n"
	    "User-Agent: mezd/" MEZD_VERSION "\r\n\r\n");
	ck_assert_ptr_null(proxy_parse("[::1]:8443", &to));
	ck_assert_ptr_null(httpproxy_parse("http://px:1", &hp));
	ck_assert_int_gt(connectreq_build(&hp, &to, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "CONNECT [::1]:8443 HTTP/1.1\r\n"
	    "Host: [::1]:8443\r\nUser-Agent: mezd/" MEZD_VERSION "\r\n\r\n");
	ck_assert_int_eq(connectreq_build(&hp, &to, buf, 20), -1);
}
END_TEST

START_TEST(connect_response)
{
	struct connectresp	 r;
	const char		*why, *s;
	char			*big;

	s = "HTTP/1.1 200 Connection established\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), 1);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.hdrlen, strlen(s));
	ck_assert_str_eq(r.line, "HTTP/1.1 200 Connection established");

	/* incomplete, a byte at a time */
	ck_assert_int_eq(connectresp_parse(s, 5, &r, &why), 0);
	ck_assert_int_eq(connectresp_parse(s, strlen(s) - 1, &r, &why), 0);

	s = "HTTP/1.0 407 Proxy Authentication Required\n"
	    "Proxy-Authenticate: Basic realm=\"x\"\n\nbody";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), 1);
	ck_assert_int_eq(r.status, 407);
	ck_assert_uint_eq(r.hdrlen, strlen(s) - 4);
	ck_assert_str_eq(r.line, "HTTP/1.0 407 Proxy Authentication Required");

	s = "HTTP/1.1 200\r\nVia: x\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), 1);
	ck_assert_int_eq(r.status, 200);

	s = "SSH-2.0-OpenSSH\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	ck_assert_str_eq(why, "malformed status line");
	ck_assert_int_eq(connectresp_parse("SSH-2", 5, &r, &why), -1);
	ck_assert_str_eq(why, "not an HTTP response");
	s = "HTTP/1.1 2x0 OK\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	s = "HTTP/1.1 099 OK\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	s = "HTTP/2.0 200 OK\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	s = "HTTP/1.1 200 OK\r\nno colon\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	ck_assert_str_eq(why, "malformed header line");
	s = "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	ck_assert_str_eq(why, "folded header line");
	s = "HTTP/1.1 200 O\001K\r\n\r\n";
	ck_assert_int_eq(connectresp_parse(s, strlen(s), &r, &why), -1);
	ck_assert_str_eq(why, "control character in the response");

	/* 8 KiB of header and no end: refused, not waited for */
	ck_assert_ptr_nonnull(big = malloc(CONNRESP_MAX + 100));
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	memset(big + 17, 'a', CONNRESP_MAX + 100 - 17);
	ck_assert_int_eq(connectresp_parse(big, CONNRESP_MAX, &r, &why), -1);
	ck_assert_str_eq(why, "response header too long");
	ck_assert_int_eq(connectresp_parse(big, CONNRESP_MAX + 100, &r, &why),
	    -1);
	free(big);
}
END_TEST

START_TEST(backoff)
{
	unsigned int	 n = 0, i;
	int		 ms;

	/* 1 s, 2 s, 4 s ... at most 30 s, never below 0 */
	for (i = 0; i < 40; i++) {
		ms = backoff_ms(&n, 30);
		ck_assert_int_ge(ms, 0);
		ck_assert_int_le(ms, i < 5 ? 1000 << i : 30000);
	}
}
END_TEST

static Suite *
mezd_suite(void)
{
	Suite	*s = suite_create("mezd");
	TCase	*tc = tcase_create("mezd");

	tcase_add_test(tc, conf_good);
	tcase_add_test(tc, conf_defaults);
	tcase_add_loop_test(tc, conf_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, conf_limits);
	tcase_add_test(tc, conf_files);
	tcase_add_test(tc, url_parse);
	tcase_add_test(tc, no_proxy);
	tcase_add_test(tc, select_env);
	tcase_add_test(tc, connect_request);
	tcase_add_test(tc, connect_response);
	tcase_add_test(tc, backoff);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(mezd_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
