/*
 * Backoff after failed logins: free failures, doubling, its cap, what
 * resets it, and a table that stays bounded and fast under a flood.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratelimit.h"

#define T0	1700000000

static struct ratelimit	*rl;

static void
teardown(void)
{
	ratelimit_free(rl);
	rl = NULL;
}

/* The wait check() asks for at now, 0 if none. */
static unsigned int
wait_at(const char *key, time_t now)
{
	unsigned int	 retry = 0;

	if (ratelimit_check(rl, key, now, &retry) == 0)
		return (0);
	ck_assert_uint_gt(retry, 0);
	return (retry);
}

START_TEST(new_needs_keys)
{
	ck_assert_ptr_null(ratelimit_new(0, 3, 60));
}
END_TEST

START_TEST(free_failures)
{
	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 3, 60));
	ck_assert_uint_eq(wait_at("user:alice", T0), 0);
	ratelimit_fail(rl, "user:alice", T0);
	ratelimit_fail(rl, "user:alice", T0);
	ratelimit_fail(rl, "user:alice", T0);
	ck_assert_uint_eq(wait_at("user:alice", T0), 0);
	ratelimit_fail(rl, "user:alice", T0);
	ck_assert_uint_eq(wait_at("user:alice", T0), 1);
	ck_assert_uint_eq(wait_at("user:bob", T0), 0);
}
END_TEST

START_TEST(doubling)
{
	time_t		 t = T0;
	unsigned int	 d, want;

	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 0, 3600));
	for (want = 1; want <= 64; want *= 2) {
		ratelimit_fail(rl, "addr:192.0.2.1", t);
		ck_assert_uint_eq(d = wait_at("addr:192.0.2.1", t), want);
		ck_assert_uint_eq(wait_at("addr:192.0.2.1", t + d - 1), 1);
		t += d;
		ck_assert_uint_eq(wait_at("addr:192.0.2.1", t), 0);
	}
}
END_TEST

START_TEST(cap)
{
	time_t		 t = T0;
	unsigned int	 want[] = { 1, 2, 4, 5, 5, 5 }, i;

	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 0, 5));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ratelimit_fail(rl, "user:alice", t);
		ck_assert_uint_eq(wait_at("user:alice", t), want[i]);
		t += want[i];
	}
	/* However many failures: the shift must not overflow. */
	for (i = 0; i < 100; i++)
		ratelimit_fail(rl, "user:alice", t);
	ck_assert_uint_eq(wait_at("user:alice", t), 5);
}
END_TEST

START_TEST(success_resets)
{
	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 1, 60));
	ratelimit_fail(rl, "user:alice", T0);
	ratelimit_fail(rl, "user:alice", T0);
	ratelimit_fail(rl, "user:alice", T0 + 1);
	ck_assert_uint_eq(wait_at("user:alice", T0 + 1), 2);
	ratelimit_success(rl, "user:alice");
	ck_assert_uint_eq(ratelimit_count(rl), 0);
	ck_assert_uint_eq(wait_at("user:alice", T0 + 1), 0);
	ratelimit_fail(rl, "user:alice", T0 + 1);
	ck_assert_uint_eq(wait_at("user:alice", T0 + 1), 0);
	ratelimit_success(rl, "user:nobody");
}
END_TEST

/* Refused attempts never reached a password: they are no failures. */
START_TEST(refused_not_counted)
{
	int	 i;

	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 0, 3600));
	ratelimit_fail(rl, "user:alice", T0);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(ratelimit_check(rl, "user:alice", T0, NULL),
		    -1);
	ck_assert_uint_eq(wait_at("user:alice", T0 + 1), 0);
	ratelimit_fail(rl, "user:alice", T0 + 1);
	ck_assert_uint_eq(wait_at("user:alice", T0 + 1), 2);
}
END_TEST

START_TEST(evicts_least_recent)
{
	ck_assert_ptr_nonnull(rl = ratelimit_new(3, 0, 60));
	ratelimit_fail(rl, "a", T0);
	ratelimit_fail(rl, "b", T0);
	ratelimit_fail(rl, "c", T0);
	/* An attempt on a, even refused, is activity: b is now the oldest. */
	ck_assert_uint_eq(wait_at("a", T0), 1);
	ratelimit_fail(rl, "d", T0);
	ck_assert_uint_eq(ratelimit_count(rl), 3);
	ck_assert_uint_eq(wait_at("a", T0), 1);
	ck_assert_uint_eq(wait_at("b", T0), 0);
	ck_assert_uint_eq(wait_at("c", T0), 1);
	ck_assert_uint_eq(wait_at("d", T0), 1);
}
END_TEST

START_TEST(idle_forgotten)
{
	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 0, 60));
	ratelimit_fail(rl, "a", T0);
	ratelimit_fail(rl, "b", T0 + 100);
	ck_assert_uint_eq(wait_at("z", T0 + 60 + RATELIMIT_IDLE), 0);
	ck_assert_uint_eq(ratelimit_count(rl), 2);
	ck_assert_uint_eq(wait_at("z", T0 + 60 + RATELIMIT_IDLE + 1), 0);
	ck_assert_uint_eq(ratelimit_count(rl), 1);
	/* a starts again from its free failures. */
	ratelimit_fail(rl, "a", T0 + 60 + RATELIMIT_IDLE + 1);
	ck_assert_uint_eq(wait_at("a", T0 + 60 + RATELIMIT_IDLE + 1), 1);
}
END_TEST

/* Keys that agree on their first RATELIMIT_KEY_MAX - 1 bytes are one. */
START_TEST(long_keys_cut)
{
	char	 a[200], b[200];

	memset(a, 'k', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[150] = 'z';
	ck_assert_ptr_nonnull(rl = ratelimit_new(100, 0, 60));
	ratelimit_fail(rl, a, T0);
	ck_assert_uint_eq(wait_at(b, T0), 1);
	ck_assert_uint_eq(ratelimit_count(rl), 1);
}
END_TEST

/*
 * Fail n distinct keys into a table of max_keys; the seconds of CPU it
 * took, which other work on the machine does not stretch.
 */
static double
flood(size_t max_keys, unsigned int n)
{
	struct timespec	 a, b;
	char		 key[32];
	unsigned int	 i;

	ck_assert_ptr_nonnull(rl = ratelimit_new(max_keys, 0, 60));
	ck_assert_int_eq(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a), 0);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "addr:10.%u.%u.%u", i >> 16,
		    (i >> 8) & 0xff, i & 0xff);
		(void)ratelimit_check(rl, key, T0, NULL);
		ratelimit_fail(rl, key, T0);
		ck_assert_uint_le(ratelimit_count(rl), max_keys);
	}
	ck_assert_int_eq(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b), 0);
	ck_assert_uint_eq(ratelimit_count(rl), n < max_keys ? n : max_keys);
	/* The newest keys are there, the oldest were pushed out. */
	ck_assert_uint_eq(wait_at(key, T0), 1);
	ck_assert_uint_eq(wait_at("addr:10.0.0.0", T0), 0);
	ratelimit_free(rl);
	rl = NULL;
	return ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
}

/*
 * 100000 new keys, each evicting another: a table 50 times larger may
 * cost a little more per call (a deeper tree, colder caches) but not 50
 * times more, as a scan of the table per eviction would.
 */
START_TEST(flood_bounded_and_fast)
{
	double	 small, large;

	small = flood(2000, 100000);
	large = flood(100000 / 2, 100000);
	ck_assert_msg(large < 5 * small + 0.05,
	    "2000 keys %.3f s, 50000 keys %.3f s", small, large);
	ck_assert_msg(large < 10, "50000 keys: %.3f s", large);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite	*s = suite_create("ratelimit");
	TCase	*tc = tcase_create("ratelimit");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, new_needs_keys);
	tcase_add_test(tc, free_failures);
	tcase_add_test(tc, doubling);
	tcase_add_test(tc, cap);
	tcase_add_test(tc, success_resets);
	tcase_add_test(tc, refused_not_counted);
	tcase_add_test(tc, evicts_least_recent);
	tcase_add_test(tc, idle_forgotten);
	tcase_add_test(tc, long_keys_cut);
	tcase_add_test(tc, flood_bounded_and_fast);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(ratelimit_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
