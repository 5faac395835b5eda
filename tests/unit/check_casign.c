/*
 * The ca process's request check: what a TLS handshake asks it to sign
 * is accepted, anything else a master could ask is refused.
 */

#include <sys/types.h>

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#include "master/casign.h"

static EVP_PKEY	*ec, *rsa;

static void
keys_setup(void)
{
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ck_assert_ptr_nonnull(ec);
	ck_assert_ptr_nonnull(rsa);
}

static void
keys_teardown(void)
{
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

static struct ca_req *
req_new(uint32_t op, uint32_t nid, uint32_t len)
{
	struct ca_req	*req;

	req = calloc(1, sizeof(*req));
	ck_assert_ptr_nonnull(req);
	req->op = op;
	req->nid = nid;
	req->len = len;
	memset(req->data, 0x5a, sizeof(req->data));
	return (req);
}

static int
check(EVP_PKEY *pkey, uint32_t op, uint32_t nid, uint32_t len)
{
	struct ca_req	*req = req_new(op, nid, len);
	const char	*why = NULL;
	int		 r;

	r = ca_req_check(req, pkey, &why);
	if (r == -1)
		ck_assert_ptr_nonnull(why);
	free(req);
	return (r);
}

START_TEST(test_ecdsa)
{
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 32), 0);
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 48), 0);
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 64), 0);
	/* SHA-1, MD5+SHA-1, a bare block, nothing */
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 20), -1);
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 36), -1);
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 256), -1);
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, 0), -1);
	ck_assert_int_eq(check(ec, CA_ECDSA, 0, CA_DATA_MAX + 1), -1);
	/* an EC key is not asked for RSA */
	ck_assert_int_eq(check(ec, CA_RSA_PKCS1, NID_sha256, 32), -1);
	ck_assert_int_eq(check(ec, CA_RSA_PSS, 0, 256), -1);
	ck_assert_int_eq(check(ec, 0, 0, 32), -1);
	ck_assert_int_eq(check(ec, 99, 0, 32), -1);
}
END_TEST

START_TEST(test_rsa_pkcs1)
{
	ck_assert_int_eq(check(rsa, CA_RSA_PKCS1, NID_sha256, 32), 0);
	ck_assert_int_eq(check(rsa, CA_RSA_PKCS1, NID_sha384, 48), 0);
	ck_assert_int_eq(check(rsa, CA_RSA_PKCS1, NID_sha512, 64), 0);
	ck_assert_int_eq(check(rsa, CA_RSA_PKCS1, NID_sha256, 48), -1);
	ck_assert_int_eq(check(rsa, CA_RSA_PKCS1, NID_sha1, 20), -1);
	ck_assert_int_eq(check(rsa, CA_RSA_PKCS1, NID_md5_sha1, 36), -1);
	ck_assert_int_eq(check(rsa, CA_ECDSA, 0, 32), -1);
}
END_TEST

START_TEST(test_rsa_pss)
{
	struct ca_req	*req = req_new(CA_RSA_PSS, 0, 256);
	const char	*why;

	/* 2048 bits: emBits 2047, the top bit clear, 0xbc last */
	req->data[0] = 0x7f;
	req->data[255] = 0xbc;
	ck_assert_int_eq(ca_req_check(req, rsa, &why), 0);
	/* a raw private operation on anything: refused */
	req->data[0] = 0x80;
	ck_assert_int_eq(ca_req_check(req, rsa, &why), -1);
	req->data[0] = 0x7f;
	req->data[255] = 0x01;
	ck_assert_int_eq(ca_req_check(req, rsa, &why), -1);
	req->data[255] = 0xbc;
	req->len = 255;
	ck_assert_int_eq(ca_req_check(req, rsa, &why), -1);
	req->len = 512;
	ck_assert_int_eq(ca_req_check(req, rsa, &why), -1);
	free(req);
}
END_TEST

START_TEST(test_keyid)
{
	uint8_t	 a[CA_KEYID_LEN], b[CA_KEYID_LEN], c[CA_KEYID_LEN];

	ck_assert_int_eq(ca_keyid(ec, a), 0);
	ck_assert_int_eq(ca_keyid(ec, b), 0);
	ck_assert_int_eq(ca_keyid(rsa, c), 0);
	ck_assert_mem_eq(a, b, sizeof(a));
	ck_assert(memcmp(a, c, sizeof(a)) != 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("casign");
	TCase	*tc = tcase_create("check");
	SRunner	*sr;
	int	 failed;

	tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_test(tc, test_ecdsa);
	tcase_add_test(tc, test_rsa_pkcs1);
	tcase_add_test(tc, test_rsa_pss);
	tcase_add_test(tc, test_keyid);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
