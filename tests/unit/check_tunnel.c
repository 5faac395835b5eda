/*
 * The tunnel worker's checks of what an agent says of itself
 * (workers/tunnel/session.c): names of nodes and services, and the
 * bounds of a Hello.
 */

#include <sys/types.h>

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel.h"

START_TEST(names)
{
	char	 name[TUNNEL_NAME_MAX + 2];

	ck_assert_int_eq(name_valid("web1"), 1);
	ck_assert_int_eq(name_valid("db-1.example_x"), 1);
	ck_assert_int_eq(name_valid("A"), 1);
	ck_assert_int_eq(name_valid(""), 0);
	ck_assert_int_eq(name_valid("a b"), 0);
	ck_assert_int_eq(name_valid("a/b"), 0);
	ck_assert_int_eq(name_valid("a:22"), 0);
	ck_assert_int_eq(name_valid("caf\xc3\xa9"), 0);
	ck_assert_int_eq(name_valid("a\n"), 0);

	memset(name, 'x', sizeof(name));
	name[TUNNEL_NAME_MAX] = '\0';
	ck_assert_int_eq(name_valid(name), 1);
	name[TUNNEL_NAME_MAX] = 'x';
	name[TUNNEL_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(name_valid(name), 0);
}
END_TEST

static char *services[TUNNEL_SERVICES_MAX + 1];
static Mezite__Tunnel__V1__Label labels[TUNNEL_LABELS_MAX + 1];
static Mezite__Tunnel__V1__Label *plabels[TUNNEL_LABELS_MAX + 1];

/* A Hello of node web1 with n services and m labels, all valid. */
static void
hello_init(Mezite__Tunnel__V1__Hello *h, size_t n, size_t m)
{
	size_t	 i;

	mezite__tunnel__v1__hello__init(h);
	h->node = "web1";
	h->version = "0.1";
	for (i = 0; i < n; i++)
		services[i] = "ssh";
	h->services = services;
	h->n_services = n;
	for (i = 0; i < m; i++) {
		mezite__tunnel__v1__label__init(&labels[i]);
		labels[i].key = "env";
		labels[i].value = "prod";
		plabels[i] = &labels[i];
	}
	h->labels = plabels;
	h->n_labels = m;
}

START_TEST(hello_bounds)
{
	Mezite__Tunnel__V1__Hello	 h;
	char				 why[64];

	hello_init(&h, 0, 0);
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 1);
	hello_init(&h, TUNNEL_SERVICES_MAX, TUNNEL_LABELS_MAX);
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 1);

	hello_init(&h, TUNNEL_SERVICES_MAX + 1, 0);
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "65 services");
	hello_init(&h, 0, TUNNEL_LABELS_MAX + 1);
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "33 labels");

	hello_init(&h, 2, 0);
	services[1] = "a b";
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "bad service name");

	hello_init(&h, 0, 1);
	labels[0].key = "";
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "bad label");

	hello_init(&h, 0, 0);
	h.node = "";
	ck_assert_int_eq(hello_valid(&h, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "bad node name");
}
END_TEST

static Suite *
tunnel_suite(void)
{
	Suite	*s = suite_create("tunnel");
	TCase	*tc = tcase_create("hello");

	tcase_add_test(tc, names);
	tcase_add_test(tc, hello_bounds);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(tunnel_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
