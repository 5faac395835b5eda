/*
 * Roles and names: which logins a role allows on which nodes, by name
 * and label patterns, and the names users, roles and nodes may have.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define V(...)	((char *[]){ __VA_ARGS__ })
#define SV(...)	((struct store_strv){ V(__VA_ARGS__), \
		    sizeof(V(__VA_ARGS__)) / sizeof(char *) })
#define NONE	((struct store_strv){ NULL, 0 })

static struct store_role
role(struct store_strv logins, struct store_strv nodes,
    struct store_strv labels)
{
	struct store_role	 r;

	memset(&r, 0, sizeof(r));
	r.name = "r";
	r.logins = logins;
	r.nodes = nodes;
	r.labels = labels;
	return (r);
}

static struct store_node
node(const char *name, struct store_strv labels)
{
	struct store_node	 n;

	memset(&n, 0, sizeof(n));
	n.name = (char *)name;
	n.labels = labels;
	return (n);
}

START_TEST(test_empty_role_allows_nothing)
{
	struct store_role	 r = role(SV("root"), NONE, NONE);
	struct store_node	 n = node("web-1", NONE);

	ck_assert_int_eq(rbac_role_allows(&r, &n), 0);
}
END_TEST

START_TEST(test_node_patterns)
{
	struct store_role	 r = role(SV("ubuntu"), SV("web-*", "db-[12]"),
				    NONE);
	struct store_node	 a = node("web-7", NONE), b = node("db-2", NONE);
	struct store_node	 c = node("db-3", NONE), d = node("xweb-1", NONE);

	ck_assert_int_eq(rbac_role_allows(&r, &a), 1);
	ck_assert_int_eq(rbac_role_allows(&r, &b), 1);
	ck_assert_int_eq(rbac_role_allows(&r, &c), 0);
	ck_assert_int_eq(rbac_role_allows(&r, &d), 0);
}
END_TEST

START_TEST(test_every_label_pattern_must_match)
{
	struct store_role	 r = role(SV("pg"), NONE,
				    SV("env=prod", "tier=d*"));
	struct store_node	 both = node("x", SV("tier=db", "env=prod"));
	struct store_node	 one = node("x", SV("env=prod"));
	struct store_node	 wrong = node("x", SV("env=dev", "tier=db"));
	/* The key is matched whole, not as a pattern or a prefix. */
	struct store_node	 key = node("x", SV("environment=prod",
				    "tier=db"));

	ck_assert_int_eq(rbac_role_allows(&r, &both), 1);
	ck_assert_int_eq(rbac_role_allows(&r, &one), 0);
	ck_assert_int_eq(rbac_role_allows(&r, &wrong), 0);
	ck_assert_int_eq(rbac_role_allows(&r, &key), 0);
}
END_TEST

START_TEST(test_names_and_labels_together)
{
	struct store_role	 r = role(SV("a"), SV("web-*"), SV("env=prod"));
	struct store_node	 ok = node("web-1", SV("env=prod"));
	struct store_node	 name = node("db-1", SV("env=prod"));
	struct store_node	 label = node("web-1", SV("env=dev"));

	ck_assert_int_eq(rbac_role_allows(&r, &ok), 1);
	ck_assert_int_eq(rbac_role_allows(&r, &name), 0);
	ck_assert_int_eq(rbac_role_allows(&r, &label), 0);
}
END_TEST

START_TEST(test_logins_of_several_roles_once_each)
{
	struct store_role	 r[3];
	struct store_node	 n = node("web-1", SV("env=prod"));
	struct store_strv	 l;

	r[0] = role(SV("ubuntu", "deploy"), SV("web-*"), NONE);
	r[1] = role(SV("root"), SV("db-*"), NONE);
	r[2] = role(SV("deploy", "root"), NONE, SV("env=prod"));
	ck_assert_int_eq(rbac_node_logins(r, 3, &n, &l), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.v[0], "ubuntu");
	ck_assert_str_eq(l.v[1], "deploy");
	ck_assert_str_eq(l.v[2], "root");
	store_strv_clear(&l);
	ck_assert_int_eq(rbac_node_logins(r, 0, &n, &l), 0);
	ck_assert_uint_eq(l.n, 0);
	store_strv_clear(&l);
}
END_TEST

/* Service patterns; none allow "ssh" alone. */
START_TEST(test_services)
{
	struct store_role	 r = role(SV("root"), SV("*"), NONE);

	ck_assert_int_eq(rbac_role_allows_service(&r, "ssh"), 1);
	ck_assert_int_eq(rbac_role_allows_service(&r, "5432"), 0);
	ck_assert_int_eq(rbac_role_allows_service(&r, "sshd"), 0);
	r.services = SV("54[0-9][0-9]", "http*");
	ck_assert_int_eq(rbac_role_allows_service(&r, "5432"), 1);
	ck_assert_int_eq(rbac_role_allows_service(&r, "https"), 1);
	ck_assert_int_eq(rbac_role_allows_service(&r, "54321"), 0);
	/* Named, ssh is one service among others. */
	ck_assert_int_eq(rbac_role_allows_service(&r, "ssh"), 0);
}
END_TEST

START_TEST(test_names)
{
	char	 long_name[AUTH_NAME_MAX + 2];

	ck_assert_int_eq(auth_name_valid("alice"), 1);
	ck_assert_int_eq(auth_name_valid("a.b-c_d@e"), 1);
	ck_assert_int_eq(auth_name_valid(""), 0);
	ck_assert_int_eq(auth_name_valid("-rf"), 0);
	ck_assert_int_eq(auth_name_valid(".hidden"), 0);
	ck_assert_int_eq(auth_name_valid("a b"), 0);
	ck_assert_int_eq(auth_name_valid("a/b"), 0);
	ck_assert_int_eq(auth_name_valid("caf\xc3\xa9"), 0);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[AUTH_NAME_MAX] = '\0';
	ck_assert_int_eq(auth_name_valid(long_name), 1);
	long_name[AUTH_NAME_MAX] = 'a';
	long_name[AUTH_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(auth_name_valid(long_name), 0);
}
END_TEST

static Suite *
rbac_suite(void)
{
	Suite	*s = suite_create("rbac");
	TCase	*tc = tcase_create("rbac");

	tcase_add_test(tc, test_empty_role_allows_nothing);
	tcase_add_test(tc, test_node_patterns);
	tcase_add_test(tc, test_every_label_pattern_must_match);
	tcase_add_test(tc, test_names_and_labels_together);
	tcase_add_test(tc, test_logins_of_several_roles_once_each);
	tcase_add_test(tc, test_services);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(rbac_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
