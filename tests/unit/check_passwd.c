/*
 * Password hashes: yescrypt, right and wrong passwords, and the unknown
 * user who must cost what a known one does.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "passwd.h"

static double
now_s(void)
{
	struct timespec	 ts;

	ck_assert_int_eq(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

START_TEST(hash_is_yescrypt)
{
	char	 h[PASSWD_HASH_SIZE];

	ck_assert_int_eq(passwd_hash("correct horse", h, sizeof(h)), 0);
	ck_assert_int_eq(strncmp(h, "$y$", 3), 0);
	ck_assert_uint_gt(strlen(h), 40);
}
END_TEST

START_TEST(hash_salted)
{
	char	 a[PASSWD_HASH_SIZE], b[PASSWD_HASH_SIZE];

	ck_assert_int_eq(passwd_hash("correct horse", a, sizeof(a)), 0);
	ck_assert_int_eq(passwd_hash("correct horse", b, sizeof(b)), 0);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(check_right)
{
	char	 h[PASSWD_HASH_SIZE];

	ck_assert_int_eq(passwd_hash("correct horse", h, sizeof(h)), 0);
	ck_assert_int_eq(passwd_check("correct horse", h), 1);
}
END_TEST

START_TEST(check_wrong)
{
	char	 h[PASSWD_HASH_SIZE];

	ck_assert_int_eq(passwd_hash("correct horse", h, sizeof(h)), 0);
	ck_assert_int_eq(passwd_check("correct horsf", h), 0);
	ck_assert_int_eq(passwd_check("correct hors", h), 0);
	ck_assert_int_eq(passwd_check("", h), 0);
	ck_assert_int_eq(passwd_check(NULL, h), 0);
}
END_TEST

START_TEST(check_unknown_user)
{
	ck_assert_int_eq(passwd_check("correct horse", NULL), 0);
	ck_assert_int_eq(passwd_check("", NULL), 0);
}
END_TEST

/* A locked or broken hash matches nothing. */
START_TEST(check_unusable_hash)
{
	ck_assert_int_eq(passwd_check("x", "!"), 0);
	ck_assert_int_eq(passwd_check("x", "*"), 0);
	ck_assert_int_eq(passwd_check("x", ""), 0);
	ck_assert_int_eq(passwd_check("x", "$y$garbage"), 0);
}
END_TEST

START_TEST(too_long)
{
	char	 pw[PASSWD_MAX + 2], h[PASSWD_HASH_SIZE];

	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	ck_assert_int_eq(passwd_hash(pw, h, sizeof(h)), -1);
	ck_assert_str_eq(h, "");

	pw[PASSWD_MAX] = '\0';
	ck_assert_int_eq(passwd_hash(pw, h, sizeof(h)), 0);
	ck_assert_int_eq(passwd_check(pw, h), 1);
	/* One byte more, and it matches no hash, not even its own start. */
	pw[PASSWD_MAX] = 'p';
	ck_assert_int_eq(passwd_check(pw, h), 0);
}
END_TEST

START_TEST(out_too_small)
{
	char	 h[20];

	ck_assert_int_eq(passwd_hash("correct horse", h, sizeof(h)), -1);
	ck_assert_str_eq(h, "");
}
END_TEST

/*
 * The answer for a user who does not exist takes as long as for one who
 * does: compared as the best of a few runs each, within a factor of 1.5
 * (they do the same work; the margin is the machine's noise).  The time
 * is this thread's CPU time, which other work on the machine does not
 * stretch as it does the clock's.
 */
START_TEST(unknown_user_same_time)
{
	char	 h[PASSWD_HASH_SIZE];
	double	 t, known = 1e9, unknown = 1e9;
	int	 i;

	ck_assert_int_eq(passwd_init(), 0);
	ck_assert_int_eq(passwd_hash("correct horse", h, sizeof(h)), 0);
	for (i = 0; i < 5; i++) {
		t = now_s();
		ck_assert_int_eq(passwd_check("wrong horse", h), 0);
		if ((t = now_s() - t) < known)
			known = t;
		t = now_s();
		ck_assert_int_eq(passwd_check("wrong horse", NULL), 0);
		if ((t = now_s() - t) < unknown)
			unknown = t;
	}
	ck_assert_msg(unknown > known / 1.5 && unknown < known * 1.5,
	    "known user %.1f ms, unknown %.1f ms", known * 1e3, unknown * 1e3);
}
END_TEST

static Suite *
passwd_suite(void)
{
	Suite	*s = suite_create("passwd");
	TCase	*tc = tcase_create("passwd");

	/* Each hash is tens of milliseconds, and much more under valgrind. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hash_is_yescrypt);
	tcase_add_test(tc, hash_salted);
	tcase_add_test(tc, check_right);
	tcase_add_test(tc, check_wrong);
	tcase_add_test(tc, check_unknown_user);
	tcase_add_test(tc, check_unusable_hash);
	tcase_add_test(tc, too_long);
	tcase_add_test(tc, out_too_small);
	/*
	 * Under valgrind the times are those of its translation of the
	 * code, not of the code: make check-unit compares them natively.
	 */
	if (getenv("MEZITE_VALGRIND") == NULL)
		tcase_add_test(tc, unknown_user_same_time);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(passwd_suite());
	int	 failed;

	log_init(1, LOG_DAEMON);
	log_setverbose(0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
