/*
 * The PROXY protocol header reader: versions 1 and 2, whole and a byte
 * at a time, its bounds, and what it refuses.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

static const uint8_t	 v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* The header's length, after checking every shorter prefix is "more". */
static ssize_t
parse_all(const void *buf, size_t len, struct pp_header *h)
{
	struct pp_header	 tmp;
	ssize_t			 n;
	size_t			 i;

	n = pp_parse(buf, len, h);
	for (i = 0; n > 0 && i < (size_t)n; i++)
		ck_assert_int_eq(pp_parse(buf, i, &tmp), PP_MORE);
	return (n);
}

static void
check_in(const struct sockaddr_storage *ss, const char *addr, int port)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;
	char				 s[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		ck_assert_ptr_nonnull(inet_ntop(AF_INET, &sin->sin_addr, s,
		    sizeof(s)));
		ck_assert_int_eq(ntohs(sin->sin_port), port);
	} else {
		ck_assert_int_eq(ss->ss_family, AF_INET6);
		ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &sin6->sin6_addr, s,
		    sizeof(s)));
		ck_assert_int_eq(ntohs(sin6->sin6_port), port);
	}
	ck_assert_str_eq(s, addr);
}

/* A version 2 header: command, family and protocol, block. */
static size_t
v2(uint8_t *buf, uint8_t vc, uint8_t fp, const void *blk, size_t blen)
{
	memcpy(buf, v2sig, sizeof(v2sig));
	buf[12] = vc;
	buf[13] = fp;
	buf[14] = blen >> 8;
	buf[15] = blen & 0xff;
	memcpy(buf + 16, blk, blen);
	return (16 + blen);
}

START_TEST(test_v1_tcp4)
{
	const char		*s = "PROXY TCP4 192.0.2.1 198.51.100.1 "
				    "56324 443\r\n\x16\x03\x01";
	struct pp_header	 h;

	ck_assert_int_eq(parse_all(s, strlen(s), &h), strlen(s) - 3);
	ck_assert_int_eq(h.version, 1);
	ck_assert_int_eq(h.proxied, 1);
	check_in(&h.src, "192.0.2.1", 56324);
	check_in(&h.dst, "198.51.100.1", 443);
}
END_TEST

START_TEST(test_v1_tcp6)
{
	const char		*s = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
	struct pp_header	 h;

	ck_assert_int_eq(parse_all(s, strlen(s), &h), strlen(s));
	ck_assert_int_eq(h.proxied, 1);
	check_in(&h.src, "2001:db8::1", 65535);
	check_in(&h.dst, "::1", 0);
}
END_TEST

START_TEST(test_v1_unknown)
{
	const char		*a = "PROXY UNKNOWN\r\n";
	const char		*b = "PROXY UNKNOWN  whatever  \r\nxyz";
	struct pp_header	 h;

	ck_assert_int_eq(parse_all(a, strlen(a), &h), strlen(a));
	ck_assert_int_eq(h.version, 1);
	ck_assert_int_eq(h.proxied, 0);
	ck_assert_int_eq(parse_all(b, strlen(b), &h), strlen(b) - 3);
	ck_assert_int_eq(h.proxied, 0);
}
END_TEST

START_TEST(test_v1_longest)
{
	char			 s[256];
	struct pp_header	 h;
	const char		*f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

	/* 104 bytes, the longest a valid address line takes. */
	(void)snprintf(s, sizeof(s), "PROXY TCP6 %s %s 65535 65535\r\n", f, f);
	ck_assert_int_eq(parse_all(s, strlen(s), &h), strlen(s));
	/* UNKNOWN may fill the 107. */
	memset(s, 'x', sizeof(s));
	memcpy(s, "PROXY UNKNOWN ", 14);
	memcpy(s + 105, "\r\n", 2);
	ck_assert_int_eq(parse_all(s, 107, &h), 107);
	/* One more, and there is no line ending within the bound. */
	memset(s, 'x', sizeof(s));
	memcpy(s, "PROXY UNKNOWN ", 14);
	ck_assert_int_eq(pp_parse((uint8_t *)s, 106, &h), PP_MORE);
	ck_assert_int_eq(pp_parse((uint8_t *)s, 107, &h), PP_MALFORMED);
	memcpy(s + 106, "\r\n", 2);
	ck_assert_int_eq(pp_parse((uint8_t *)s, 108, &h), PP_MALFORMED);
}
END_TEST

START_TEST(test_v1_bad)
{
	static const char	*bad[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\n",
		"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 \r\n",
		"PROXY TCP4  192.0.2.1 198.51.100.1 56324 443\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.1 -1 443\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.1 0443 443\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.1 1 443\r\n",
		"PROXY TCP6 192.0.2.1 2001:db8::1 1 443\r\n",
		"PROXY TCP5 192.0.2.1 198.51.100.1 1 443\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.1 1 443\rx\n",
		"PROXY TCP4 192.0.2.1\t198.51.100.1 1 443\r\n",
		"PROXY\r\n",
		"proxy TCP4 192.0.2.1 198.51.100.1 1 443\r\n",
		"PROXYTCP4 192.0.2.1 198.51.100.1 1 443\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"GET / HTTP/1.1\r\n",
	};
	struct pp_header	 h;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pp_parse((const uint8_t *)bad[i], strlen(bad[i]),
		    &h) == PP_MALFORMED, "accepted: %s", bad[i]);
}
END_TEST

/* What cannot begin a header is refused at once, not read on. */
START_TEST(test_early)
{
	struct pp_header	 h;

	ck_assert_int_eq(pp_parse((const uint8_t *)"", 0, &h), PP_MORE);
	ck_assert_int_eq(pp_parse((const uint8_t *)"\x16", 1, &h),
	    PP_MALFORMED);
	ck_assert_int_eq(pp_parse((const uint8_t *)"PROX", 4, &h), PP_MORE);
	ck_assert_int_eq(pp_parse((const uint8_t *)"PROXI", 5, &h),
	    PP_MALFORMED);
	ck_assert_int_eq(pp_parse((const uint8_t *)"\r\n\r\n", 4, &h),
	    PP_MORE);
	ck_assert_int_eq(pp_parse((const uint8_t *)"\r\n\r\r", 4, &h),
	    PP_MALFORMED);
}
END_TEST

START_TEST(test_v2_tcp4_tlv)
{
	uint8_t			 blk[64], buf[128];
	struct pp_header	 h;
	size_t			 len;

	memcpy(blk, "\xcb\x00\x71\x07\x7f\x00\x00\x01\x9c\x40\x01\xbb", 12);
	memcpy(blk + 12, "\x01\x00\x02h2\x04\x00\x00", 8);
	len = v2(buf, 0x21, 0x11, blk, 20);
	buf[len] = 0x16;		/* the ClientHello that follows */
	ck_assert_int_eq(parse_all(buf, len + 1, &h), len);
	ck_assert_int_eq(h.version, 2);
	ck_assert_int_eq(h.proxied, 1);
	check_in(&h.src, "203.0.113.7", 40000);
	check_in(&h.dst, "127.0.0.1", 443);
}
END_TEST

START_TEST(test_v2_tcp6)
{
	uint8_t			 blk[36], buf[64];
	struct pp_header	 h;
	size_t			 len;

	memset(blk, 0, sizeof(blk));
	memcpy(blk, "\x20\x01\x0d\xb8", 4);
	blk[15] = 7;
	blk[31] = 1;
	memcpy(blk + 32, "\x9c\x40\x01\xbb", 4);
	len = v2(buf, 0x21, 0x21, blk, 36);
	ck_assert_int_eq(parse_all(buf, len, &h), len);
	ck_assert_int_eq(h.proxied, 1);
	check_in(&h.src, "2001:db8::7", 40000);
	check_in(&h.dst, "::1", 443);
}
END_TEST

START_TEST(test_v2_keep_peer)
{
	uint8_t			 blk[PP_V2_ADDR_MAX], buf[PP_MAX];
	struct pp_header	 h;
	size_t			 len;

	memset(blk, 0, sizeof(blk));
	/* LOCAL: the balancer's own check. */
	len = v2(buf, 0x20, 0x00, blk, 0);
	ck_assert_int_eq(parse_all(buf, len, &h), 16);
	ck_assert_int_eq(h.version, 2);
	ck_assert_int_eq(h.proxied, 0);
	/* LOCAL with a family and its addresses: both ignored. */
	len = v2(buf, 0x20, 0x11, blk, 12);
	ck_assert_int_eq(parse_all(buf, len, &h), len);
	ck_assert_int_eq(h.proxied, 0);
	/* PROXY, UNSPEC family or transport. */
	len = v2(buf, 0x21, 0x00, blk, 0);
	ck_assert_int_eq(parse_all(buf, len, &h), len);
	ck_assert_int_eq(h.proxied, 0);
	len = v2(buf, 0x21, 0x10, blk, 12);
	ck_assert_int_eq(parse_all(buf, len, &h), len);
	ck_assert_int_eq(h.proxied, 0);
	/* Unix sockets. */
	len = v2(buf, 0x21, 0x31, blk, PP_V2_ADDR_MAX);
	ck_assert_int_eq(parse_all(buf, len, &h), len);
	ck_assert_int_eq(h.proxied, 0);
}
END_TEST

START_TEST(test_v2_bounds)
{
	uint8_t			 blk[PP_MAX], buf[PP_MAX + 32];
	struct pp_header	 h;
	size_t			 len, i;

	memset(blk, 0, sizeof(blk));
	/* TLVs of exactly PP_V2_TLV_MAX bytes: one NOOP. */
	blk[12] = 0x04;
	blk[13] = (PP_V2_TLV_MAX - 3) >> 8;
	blk[14] = (PP_V2_TLV_MAX - 3) & 0xff;
	len = v2(buf, 0x21, 0x11, blk, 12 + PP_V2_TLV_MAX);
	ck_assert_int_eq(parse_all(buf, len, &h), len);
	/* One byte more is refused from the fixed part alone. */
	len = v2(buf, 0x21, 0x11, blk, 12 + PP_V2_TLV_MAX + 1);
	ck_assert_int_eq(pp_parse(buf, 16, &h), PP_MALFORMED);
	for (i = 0; i < 16; i++)
		ck_assert_int_eq(pp_parse(buf, i, &h), PP_MORE);
	/* The largest length there is. */
	buf[14] = buf[15] = 0xff;
	ck_assert_int_eq(pp_parse(buf, 16, &h), PP_MALFORMED);
	/* The largest header there may be. */
	len = v2(buf, 0x21, 0x31, blk, PP_V2_ADDR_MAX + PP_V2_TLV_MAX);
	buf[16 + PP_V2_ADDR_MAX] = 0x04;
	buf[16 + PP_V2_ADDR_MAX + 1] = (PP_V2_TLV_MAX - 3) >> 8;
	buf[16 + PP_V2_ADDR_MAX + 2] = (PP_V2_TLV_MAX - 3) & 0xff;
	ck_assert_int_eq(len, PP_MAX);
	ck_assert_int_eq(parse_all(buf, len, &h), PP_MAX);
}
END_TEST

START_TEST(test_v2_bad)
{
	uint8_t			 blk[64], buf[128];
	struct pp_header	 h;
	size_t			 len;

	memset(blk, 0, sizeof(blk));
	/* Version 1 in the binary form, version 3. */
	len = v2(buf, 0x11, 0x11, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	len = v2(buf, 0x31, 0x11, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	/* Command 2, family 4, transport 3. */
	len = v2(buf, 0x22, 0x11, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	len = v2(buf, 0x21, 0x41, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	len = v2(buf, 0x21, 0x13, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	/* Datagrams. */
	len = v2(buf, 0x21, 0x12, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	/* Addresses shorter than their family's. */
	len = v2(buf, 0x21, 0x11, blk, 11);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	len = v2(buf, 0x21, 0x21, blk, 12);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	/* A TLV that runs past the block, or a piece of one. */
	memcpy(blk + 12, "\x01\x00\x05h2", 5);
	len = v2(buf, 0x21, 0x11, blk, 17);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	len = v2(buf, 0x21, 0x11, blk, 14);
	ck_assert_int_eq(pp_parse(buf, len, &h), PP_MALFORMED);
	/* A signature wrong in its last byte. */
	len = v2(buf, 0x21, 0x11, blk, 12);
	buf[11] = 'X';
	ck_assert_int_eq(pp_parse(buf, 12, &h), PP_MALFORMED);
}
END_TEST

static Suite *
proxyproto_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("proxyproto");

	tc = tcase_create("v1");
	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_longest);
	tcase_add_test(tc, test_v1_bad);
	tcase_add_test(tc, test_early);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_test(tc, test_v2_tcp4_tlv);
	tcase_add_test(tc, test_v2_tcp6);
	tcase_add_test(tc, test_v2_keep_peer);
	tcase_add_test(tc, test_v2_bounds);
	tcase_add_test(tc, test_v2_bad);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(proxyproto_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
