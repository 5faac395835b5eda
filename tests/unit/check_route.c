/*
 * Unit tests for master/route.c: choosing a worker by ALPN and SNI, and
 * the ALPN list the master offers.
 */

#include <sys/types.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "master/mezited.h"

#define NRULES(r)	(sizeof(r) / sizeof((r)[0]))

static const struct route_rule builtin[] = {
	{ "mezite-auth",		NULL,	PROC_AUTH },
	{ "mezite-ssh",			NULL,	PROC_SSH },
	{ "mezite-tunnel",		NULL,	PROC_TUNNEL },
	{ "mezite-cluster-tunnel",	NULL,	PROC_TUNNEL },
	{ "h2",				NULL,	PROC_HTTPS },
	{ "http/1.1",			NULL,	PROC_HTTPS },
};

START_TEST(test_select_alpn)
{
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_HTTPS,
	    "mezite-auth", NULL), PROC_AUTH);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_HTTPS,
	    "mezite-cluster-tunnel", "x.example.com"), PROC_TUNNEL);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_AUTH,
	    "h2", NULL), PROC_HTTPS);
	/* Exact: no prefix, no case folding. */
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_AUTH,
	    "mezite-aut", NULL), PROC_AUTH);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_HTTPS,
	    "MEZITE-AUTH", NULL), PROC_HTTPS);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_HTTPS,
	    "mezite-authx", NULL), PROC_HTTPS);
}
END_TEST

START_TEST(test_select_sni)
{
	static const struct route_rule	 rules[] = {
		{ NULL,	"auth.example.com",	PROC_AUTH },
		{ NULL,	"*.tunnel.example.com",	PROC_TUNNEL },
	};

	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_HTTPS,
	    "h2", "auth.example.com"), PROC_AUTH);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_HTTPS,
	    NULL, "AUTH.Example.COM"), PROC_AUTH);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_HTTPS,
	    NULL, "www.example.com"), PROC_HTTPS);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_HTTPS,
	    "grpc-exp", "n1.tunnel.example.com"), PROC_TUNNEL);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_HTTPS,
	    NULL, "tunnel.example.com"), PROC_HTTPS);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_HTTPS,
	    NULL, "a.n1.tunnel.example.com"), PROC_HTTPS);
}
END_TEST

START_TEST(test_select_both)
{
	static const struct route_rule	 rules[] = {
		{ "h2",		"auth.example.com",	PROC_AUTH },
		{ "h2",		NULL,			PROC_HTTPS },
		{ "mezite-ssh",	"*.example.com",	PROC_SSH },
	};

	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_TUNNEL,
	    "h2", "auth.example.com"), PROC_AUTH);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_TUNNEL,
	    "h2", "www.example.com"), PROC_HTTPS);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_TUNNEL,
	    "http/1.1", "auth.example.com"), PROC_TUNNEL);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_TUNNEL,
	    "mezite-ssh", "node.example.com"), PROC_SSH);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_TUNNEL,
	    "mezite-ssh", "node.example.org"), PROC_TUNNEL);
}
END_TEST

/* A client without ALPN or SNI matches only rules not asking for it. */
START_TEST(test_select_null)
{
	static const struct route_rule	 rules[] = {
		{ "h2",		NULL,			PROC_HTTPS },
		{ NULL,		"auth.example.com",	PROC_AUTH },
		{ "mezite-ssh",	"ssh.example.com",	PROC_SSH },
		{ NULL,		"*.example.com",	PROC_TUNNEL },
	};

	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    NULL, NULL), PROC_MASTER);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    NULL, "auth.example.com"), PROC_AUTH);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    NULL, "ssh.example.com"), PROC_TUNNEL);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    "mezite-ssh", NULL), PROC_MASTER);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    "h2", NULL), PROC_HTTPS);
}
END_TEST

START_TEST(test_select_first_wins)
{
	static const struct route_rule	 rules[] = {
		{ NULL,	"*.example.com",	PROC_TUNNEL },
		{ NULL,	"auth.example.com",	PROC_AUTH },
		{ "h2",	NULL,			PROC_HTTPS },
		{ "h2",	NULL,			PROC_SSH },
	};

	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    "h2", "auth.example.com"), PROC_TUNNEL);
	ck_assert_int_eq(route_select(rules, NRULES(rules), PROC_MASTER,
	    "h2", "example.com"), PROC_HTTPS);
}
END_TEST

START_TEST(test_select_default)
{
	ck_assert_int_eq(route_select(NULL, 0, PROC_HTTPS, "h2", "x"),
	    PROC_HTTPS);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_AUTH,
	    NULL, NULL), PROC_AUTH);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_AUTH,
	    "grpc-exp", "auth.example.com"), PROC_AUTH);
	ck_assert_int_eq(route_select(builtin, NRULES(builtin), PROC_AUTH,
	    "", ""), PROC_AUTH);
}
END_TEST

START_TEST(test_sni_match)
{
	ck_assert(route_sni_match("example.com", "example.com"));
	ck_assert(route_sni_match("Example.COM", "eXample.com"));
	ck_assert(!route_sni_match("example.com", "example.co"));
	ck_assert(!route_sni_match("example.com", "www.example.com"));
	ck_assert(!route_sni_match("example.com", "example.com."));

	ck_assert(route_sni_match("*.example.com", "a.example.com"));
	ck_assert(route_sni_match("*.example.com", "Node-1.EXAMPLE.com"));
	ck_assert(!route_sni_match("*.example.com", "example.com"));
	ck_assert(!route_sni_match("*.example.com", "a.b.example.com"));
	ck_assert(!route_sni_match("*.example.com", ".example.com"));
	ck_assert(!route_sni_match("*.example.com", "aexample.com"));
	ck_assert(!route_sni_match("*.example.com", "a.example.org"));
	ck_assert(!route_sni_match("*.example.com", ""));

	ck_assert(!route_sni_match("example.com", NULL));
	ck_assert(!route_sni_match("*.example.com", NULL));
}
END_TEST

START_TEST(test_alpn_list_order)
{
	static const struct route_rule	 rules[] = {
		{ "h2",			NULL,		PROC_HTTPS },
		{ NULL,			"a.example",	PROC_AUTH },
		{ "mezite-ssh",		NULL,		PROC_SSH },
		{ "http/1.1",		NULL,		PROC_HTTPS },
		{ "h2",			"b.example",	PROC_AUTH },
		{ "mezite-auth",	NULL,		PROC_AUTH },
		{ "mezite-ssh",		"c.example",	PROC_SSH },
		{ "mezite",		NULL,		PROC_TUNNEL },
	};
	char	 buf[256];
	size_t	 n;

	n = route_alpn_list(rules, NRULES(rules), buf, sizeof(buf));
	ck_assert_str_eq(buf, "mezite-ssh,mezite-auth,h2,http/1.1,mezite");
	ck_assert_uint_eq(n, strlen(buf));

	n = route_alpn_list(builtin, NRULES(builtin), buf, sizeof(buf));
	ck_assert_str_eq(buf, "mezite-auth,mezite-ssh,mezite-tunnel,"
	    "mezite-cluster-tunnel,h2,http/1.1");
	ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

START_TEST(test_alpn_list_empty)
{
	static const struct route_rule	 rules[] = {
		{ NULL,	"a.example",	PROC_AUTH },
	};
	char	 buf[8];

	memset(buf, 'x', sizeof(buf));
	ck_assert_uint_eq(route_alpn_list(rules, NRULES(rules), buf,
	    sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	memset(buf, 'x', sizeof(buf));
	ck_assert_uint_eq(route_alpn_list(NULL, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_uint_eq(route_alpn_list(NULL, 0, NULL, 0), 0);
}
END_TEST

START_TEST(test_alpn_list_truncate)
{
	const char	*full = "mezite-auth,mezite-ssh,mezite-tunnel,"
			    "mezite-cluster-tunnel,h2,http/1.1";
	char		 buf[128];
	size_t		 len, n;

	/* Sizing call, as the master does it. */
	n = route_alpn_list(builtin, NRULES(builtin), NULL, 0);
	ck_assert_uint_eq(n, strlen(full));

	for (len = 1; len <= strlen(full) + 1; len++) {
		memset(buf, 'x', sizeof(buf));
		n = route_alpn_list(builtin, NRULES(builtin), buf, len);
		ck_assert_uint_eq(n, strlen(full));
		/* strlcpy: as much as fits, always terminated. */
		ck_assert_uint_eq(strlen(buf), len - 1);
		ck_assert(strncmp(buf, full, len - 1) == 0);
		ck_assert_int_eq(buf[len], 'x');
	}

	/* Exactly enough room. */
	n = route_alpn_list(builtin, NRULES(builtin), buf, strlen(full) + 1);
	ck_assert(n < strlen(full) + 1);
	ck_assert_str_eq(buf, full);
}
END_TEST

static Suite *
route_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("route");

	tc = tcase_create("select");
	tcase_add_test(tc, test_select_alpn);
	tcase_add_test(tc, test_select_sni);
	tcase_add_test(tc, test_select_both);
	tcase_add_test(tc, test_select_null);
	tcase_add_test(tc, test_select_first_wins);
	tcase_add_test(tc, test_select_default);
	suite_add_tcase(s, tc);

	tc = tcase_create("sni");
	tcase_add_test(tc, test_sni_match);
	suite_add_tcase(s, tc);

	tc = tcase_create("alpn_list");
	tcase_add_test(tc, test_alpn_list_order);
	tcase_add_test(tc, test_alpn_list_empty);
	tcase_add_test(tc, test_alpn_list_truncate);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(route_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
