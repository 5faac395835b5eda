/*
 * gRPC message framing (workers/auth/grpcframe.c): one message of a
 * unary call, in pieces of any size, and what is refused.
 */

#include <sys/types.h>

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpcframe.h"

#define MAX	64

/* A framed message of len bytes, 'a', 'b', ...; returns its size. */
static size_t
framed(uint8_t *buf, uint8_t flag, uint32_t len)
{
	uint32_t	 i;

	buf[0] = flag;
	buf[1] = len >> 24;
	buf[2] = len >> 16;
	buf[3] = len >> 8;
	buf[4] = len;
	for (i = 0; i < len; i++)
		buf[GRPC_PREFIX_LEN + i] = 'a' + i % 26;
	return (GRPC_PREFIX_LEN + len);
}

static void
assert_message(const struct grpc_rx *rx, const uint8_t *buf, uint32_t len)
{
	ck_assert_uint_eq(rx->len, len);
	ck_assert_uint_eq(grpc_rx_held(rx), len);
	if (len == 0)
		ck_assert_ptr_null(rx->msg);
	else
		ck_assert_mem_eq(rx->msg, buf + GRPC_PREFIX_LEN, len);
}

START_TEST(whole)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[GRPC_PREFIX_LEN + 10];
	size_t		 n;

	n = framed(buf, 0, 10);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_EMPTY);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, n, MAX), GRPC_RX_DONE);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_DONE);
	assert_message(&rx, buf, 10);
	/* Nothing more is nothing. */
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, 0, MAX), GRPC_RX_DONE);
	grpc_rx_free(&rx);
	ck_assert_ptr_null(rx.msg);
	ck_assert_uint_eq(grpc_rx_held(&rx), 0);
}
END_TEST

/* Cut in two at every byte, and in pieces of every size. */
START_TEST(split_everywhere)
{
	struct grpc_rx		 rx;
	uint8_t			 buf[GRPC_PREFIX_LEN + 20];
	enum grpc_rx_status	 st;
	size_t			 n, cut, step, off;

	n = framed(buf, 0, 20);
	for (cut = 0; cut <= n; cut++) {
		grpc_rx_init(&rx);
		st = grpc_rx_feed(&rx, buf, cut, MAX);
		ck_assert_int_eq(st, cut == n ? GRPC_RX_DONE : GRPC_RX_MORE);
		if (cut < n)
			ck_assert_int_eq(grpc_rx_end(&rx), cut == 0 ?
			    GRPC_RX_EMPTY : GRPC_RX_TRUNCATED);
		/* Held from the prefix on, not before. */
		ck_assert_uint_eq(grpc_rx_held(&rx),
		    cut >= GRPC_PREFIX_LEN ? 20 : 0);
		st = grpc_rx_feed(&rx, buf + cut, n - cut, MAX);
		ck_assert_int_eq(st, GRPC_RX_DONE);
		assert_message(&rx, buf, 20);
		grpc_rx_free(&rx);
	}
	for (step = 1; step <= n; step++) {
		grpc_rx_init(&rx);
		for (off = 0; off < n; off += step) {
			st = grpc_rx_feed(&rx, buf + off,
			    off + step > n ? n - off : step, MAX);
			ck_assert_int_eq(st, off + step >= n ?
			    GRPC_RX_DONE : GRPC_RX_MORE);
		}
		assert_message(&rx, buf, 20);
		grpc_rx_free(&rx);
	}
}
END_TEST

START_TEST(empty_message)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[GRPC_PREFIX_LEN];

	framed(buf, 0, 0);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, 4, MAX), GRPC_RX_MORE);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_TRUNCATED);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf + 4, 1, MAX), GRPC_RX_DONE);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_DONE);
	assert_message(&rx, buf, 0);
	/* Even a max of 0 takes it. */
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, sizeof(buf), 0), GRPC_RX_DONE);
	grpc_rx_free(&rx);
}
END_TEST

START_TEST(exact_max)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[GRPC_PREFIX_LEN + MAX];
	size_t		 n;

	n = framed(buf, 0, MAX);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, n, MAX), GRPC_RX_DONE);
	assert_message(&rx, buf, MAX);
	grpc_rx_free(&rx);
}
END_TEST

/* Refused at the prefix, before a byte of the message is held. */
START_TEST(max_plus_one)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[GRPC_PREFIX_LEN + MAX + 1];
	size_t		 n;

	n = framed(buf, 0, MAX + 1);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, GRPC_PREFIX_LEN, MAX),
	    GRPC_RX_TOOBIG);
	ck_assert_uint_eq(rx.len, MAX + 1);
	ck_assert_ptr_null(rx.msg);
	ck_assert_uint_eq(grpc_rx_held(&rx), 0);
	/* The error stays, and nothing more is taken. */
	ck_assert_int_eq(grpc_rx_feed(&rx, buf + GRPC_PREFIX_LEN,
	    n - GRPC_PREFIX_LEN, MAX), GRPC_RX_TOOBIG);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_TOOBIG);
	ck_assert_uint_eq(grpc_rx_held(&rx), 0);
	grpc_rx_free(&rx);
}
END_TEST

/* A prefix of 4 GB costs nothing, whatever the limit below it. */
START_TEST(four_gigabytes)
{
	struct grpc_rx	 rx;
	const uint8_t	 prefix[] = { 0, 0xff, 0xff, 0xff, 0xff };
	const size_t	 maxes[] = { 0, MAX, 1 << 20, UINT32_MAX - 1 };
	size_t		 i;

	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		grpc_rx_init(&rx);
		ck_assert_int_eq(grpc_rx_feed(&rx, prefix, sizeof(prefix),
		    maxes[i]), GRPC_RX_TOOBIG);
		ck_assert_uint_eq(rx.len, UINT32_MAX);
		ck_assert_ptr_null(rx.msg);
		ck_assert_uint_eq(grpc_rx_held(&rx), 0);
		grpc_rx_free(&rx);
	}
}
END_TEST

START_TEST(compressed)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[GRPC_PREFIX_LEN + 10];
	size_t		 n;

	n = framed(buf, 1, 10);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, n, MAX), GRPC_RX_COMPRESSED);
	ck_assert_ptr_null(rx.msg);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_COMPRESSED);
	grpc_rx_free(&rx);

	/* The flag is 0 or 1, nothing else. */
	n = framed(buf, 0x80, 10);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, n, MAX), GRPC_RX_BADFLAG);
	ck_assert_ptr_null(rx.msg);
	grpc_rx_free(&rx);
}
END_TEST

/* A unary call has one message: a byte after it is one too many. */
START_TEST(two_messages)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[2 * (GRPC_PREFIX_LEN + 3)];
	size_t		 n;

	n = framed(buf, 0, 3);
	n += framed(buf + n, 0, 3);
	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, n, MAX), GRPC_RX_EXTRA);
	ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_EXTRA);
	grpc_rx_free(&rx);

	grpc_rx_init(&rx);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf, n / 2, MAX), GRPC_RX_DONE);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf + n / 2, 1, MAX),
	    GRPC_RX_EXTRA);
	ck_assert_int_eq(grpc_rx_feed(&rx, buf + n / 2 + 1, n / 2 - 1, MAX),
	    GRPC_RX_EXTRA);
	grpc_rx_free(&rx);
}
END_TEST

START_TEST(truncated)
{
	struct grpc_rx	 rx;
	uint8_t		 buf[GRPC_PREFIX_LEN + 10];
	size_t		 n, cut;

	n = framed(buf, 0, 10);
	for (cut = 1; cut < n; cut++) {
		grpc_rx_init(&rx);
		ck_assert_int_eq(grpc_rx_feed(&rx, buf, cut, MAX),
		    GRPC_RX_MORE);
		ck_assert_int_eq(grpc_rx_end(&rx), GRPC_RX_TRUNCATED);
		grpc_rx_free(&rx);
	}
}
END_TEST

static Suite *
grpcframe_suite(void)
{
	Suite	*s = suite_create("grpcframe");
	TCase	*tc = tcase_create("grpcframe");

	tcase_add_test(tc, whole);
	tcase_add_test(tc, split_everywhere);
	tcase_add_test(tc, empty_message);
	tcase_add_test(tc, exact_max);
	tcase_add_test(tc, max_plus_one);
	tcase_add_test(tc, four_gigabytes);
	tcase_add_test(tc, compressed);
	tcase_add_test(tc, two_messages);
	tcase_add_test(tc, truncated);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(grpcframe_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
