/*
 * Unit tests for master/source.c: connections counted by source, the
 * per-source limits, and which handshake gives way when the master is
 * full.  Each test starts by forgetting the sources the ones before
 * left (check-valgrind runs them in one process) and ends with its
 * connections closed.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/master.h"

/* A connection from addr, in its handshake, counted at now (ms). */
static struct conn *
conn_from(const char *addr, int64_t now, int *res)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct conn		*c;

	ck_assert_ptr_nonnull(c = calloc(1, sizeof(*c)));
	c->state = CONN_HANDSHAKE;
	if (strchr(addr, ':') != NULL) {
		sin6 = (struct sockaddr_in6 *)&c->peer;
		sin6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
	} else {
		sin = (struct sockaddr_in *)&c->peer;
		sin->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	}
	*res = source_add(c, now);
	if (*res != 0) {
		free(c);
		return (NULL);
	}
	return (c);
}

static struct conn *
add_ok(const char *addr, int64_t now)
{
	struct conn	*c;
	int		 res;

	c = conn_from(addr, now, &res);
	ck_assert_int_eq(res, 0);
	return (c);
}

static int
add_res(const char *addr, int64_t now)
{
	struct conn	*c;
	int		 res;

	if ((c = conn_from(addr, now, &res)) != NULL) {
		source_del(c);
		free(c);
	}
	return (res);
}

/* Limits for this test, and a table without sources. */
static void
fresh(unsigned int per_source, unsigned int rate)
{
	source_limits(per_source, rate);
	source_tick(1000000000000LL);
	ck_assert_uint_eq(sstats.sources, 0);
}

static void
del(struct conn *c)
{
	source_del(c);
	free(c);
}

START_TEST(test_per_source_limit)
{
	struct conn	*c[3];
	uint64_t	 refused;
	int		 i;

	fresh(3, 1000);
	refused = sstats.refused_conns;
	for (i = 0; i < 3; i++)
		c[i] = add_ok("192.0.2.1", 0);
	ck_assert_int_eq(add_res("192.0.2.1", 0), SOURCE_OVER_CONNS);
	ck_assert_uint_eq(sstats.refused_conns, refused + 1);
	/* Another address has a count of its own. */
	ck_assert_int_eq(add_res("192.0.2.2", 0), 0);
	del(c[1]);
	ck_assert_int_eq(add_res("192.0.2.1", 0), 0);
	del(c[0]);
	del(c[2]);
}
END_TEST

START_TEST(test_source_prefixes)
{
	struct conn	*a, *b;

	fresh(1, 1000);
	/* One IPv6 /64 is one source; the next /64 another. */
	a = add_ok("2001:db8:1:2::1", 0);
	ck_assert_int_eq(add_res("2001:db8:1:2:ffff::9", 0),
	    SOURCE_OVER_CONNS);
	ck_assert_int_eq(add_res("2001:db8:1:3::1", 0), 0);
	/* An IPv4-mapped address is its IPv4 address; /32 for IPv4. */
	b = add_ok("198.51.100.7", 0);
	ck_assert_int_eq(add_res("::ffff:198.51.100.7", 0),
	    SOURCE_OVER_CONNS);
	ck_assert_int_eq(add_res("198.51.100.8", 0), 0);
	del(a);
	del(b);
}
END_TEST

START_TEST(test_rate)
{
	uint64_t	 refused;
	int		 i;

	fresh(1000, 10);
	refused = sstats.refused_rate;
	/* A second's worth at once, then nothing... */
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(add_res("192.0.2.1", 1000), 0);
	ck_assert_int_eq(add_res("192.0.2.1", 1000), SOURCE_OVER_RATE);
	ck_assert_int_eq(add_res("192.0.2.1", 1050), SOURCE_OVER_RATE);
	/* ...until a tenth of a second has brought one more. */
	ck_assert_int_eq(add_res("192.0.2.1", 1100), 0);
	ck_assert_int_eq(add_res("192.0.2.1", 1100), SOURCE_OVER_RATE);
	ck_assert_uint_eq(sstats.refused_rate, refused + 3);
	/* Other sources are not held back. */
	ck_assert_int_eq(add_res("192.0.2.2", 1100), 0);
	/* Refused attempts cost nothing: a second later, all ten. */
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(add_res("192.0.2.1", 2200), 0);
}
END_TEST

START_TEST(test_forgotten_when_refilled)
{
	fresh(1000, 10);
	ck_assert_int_eq(add_res("192.0.2.1", 0), 0);
	ck_assert_int_eq(add_res("192.0.2.2", 0), 0);
	ck_assert_uint_eq(sstats.sources, 2);
	/* A tenth of a second refills the one token each took. */
	source_tick(50);
	ck_assert_uint_eq(sstats.sources, 2);
	source_tick(100);
	ck_assert_uint_eq(sstats.sources, 0);
}
END_TEST

START_TEST(test_table_bounded)
{
	char		 addr[32];
	unsigned int	 i;

	fresh(1000, 10);
	/* Sources without connections: the oldest make way. */
	for (i = 0; i < 10000; i++) {
		(void)snprintf(addr, sizeof(addr), "10.%u.%u.1", i >> 8,
		    i & 0xff);
		ck_assert_int_eq(add_res(addr, 0), 0);
	}
	ck_assert_uint_le(sstats.sources, 4096);
}
END_TEST

START_TEST(test_victim_from_the_biggest_source)
{
	struct conn	*hog[5], *c;
	int		 i;

	fresh(1000, 1000);
	for (i = 0; i < 5; i++)
		hog[i] = add_ok("192.0.2.1", i);
	c = add_ok("192.0.2.2", 10);
	/* The hog's oldest gives way, however young. */
	ck_assert_ptr_eq(source_victim(c, 10, 100), hog[0]);
	del(hog[0]);
	ck_assert_ptr_eq(source_victim(c, 10, 100), hog[1]);
	/* A handshake that is over is not a candidate. */
	source_handshake_done(hog[1]);
	ck_assert_ptr_eq(source_victim(c, 10, 100), hog[2]);
	del(hog[1]);
	del(c);
	for (i = 2; i < 5; i++)
		del(hog[i]);
}
END_TEST

START_TEST(test_victim_same_source)
{
	struct conn	*a, *b, *c;

	fresh(1000, 1000);
	a = add_ok("192.0.2.1", 0);
	b = add_ok("192.0.2.1", 100);
	c = add_ok("192.0.2.1", 200);
	/* Young handshakes of its own source: none, it waits. */
	ck_assert_ptr_null(source_victim(c, 200, 100));
	ck_assert_int_eq(source_sheddable(200, 100), 0);
	/* The oldest once it has lasted two seconds. */
	ck_assert_ptr_eq(source_victim(c, 2000, 100), a);
	ck_assert_int_eq(source_sheddable(2000, 100), 1);
	/* More than half of max connections: the newcomer itself. */
	ck_assert_ptr_eq(source_victim(c, 200, 5), c);
	ck_assert_int_eq(source_sheddable(200, 5), 1);
	del(a);
	del(b);
	del(c);
}
END_TEST

START_TEST(test_victim_counts_move)
{
	struct conn	*a[200], *b[100], *c;
	int		 i;

	/* Past the first allocation of the lists by count. */
	fresh(1000, 1000);
	for (i = 0; i < 200; i++)
		a[i] = add_ok("192.0.2.1", i);
	for (i = 0; i < 100; i++)
		b[i] = add_ok("192.0.2.2", i);
	c = add_ok("192.0.2.3", 300);
	ck_assert_ptr_eq(source_victim(c, 300, 1000), a[0]);
	/* With fewer left than the other, the other source gives way. */
	for (i = 0; i < 150; i++)
		del(a[i]);
	ck_assert_ptr_eq(source_victim(c, 300, 1000), b[0]);
	for (i = 0; i < 100; i++)
		del(b[i]);
	ck_assert_ptr_eq(source_victim(c, 300, 1000), a[150]);
	for (i = 150; i < 200; i++)
		del(a[i]);
	ck_assert_ptr_null(source_victim(c, 300, 1000));
	del(c);
}
END_TEST

static Suite *
source_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("source");

	tc = tcase_create("limits");
	tcase_add_test(tc, test_per_source_limit);
	tcase_add_test(tc, test_source_prefixes);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_forgotten_when_refilled);
	tcase_add_test(tc, test_table_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("shedding");
	tcase_add_test(tc, test_victim_from_the_biggest_source);
	tcase_add_test(tc, test_victim_same_source);
	tcase_add_test(tc, test_victim_counts_move);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(source_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
