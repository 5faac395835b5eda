/*
 * Kernel TLS key derivation, against the RFC 8448 "Simple 1-RTT
 * Handshake" trace, and the probe on this kernel.
 */

#include <check.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "ktls_install.h"

/* RFC 8448, section 3: server application traffic keys. */
static const uint8_t	 srv_secret[32] = {
	0xa1, 0x1a, 0xf9, 0xf0, 0x55, 0x31, 0xf8, 0x56, 0xad, 0x47, 0x11,
	0x6b, 0x45, 0xa9, 0x50, 0x32, 0x82, 0x04, 0xb4, 0xf4, 0x4b, 0xfb,
	0x6b, 0x3a, 0x4b, 0x4f, 0x1f, 0x3f, 0xcb, 0x63, 0x16, 0x43
};
static const uint8_t	 srv_key[16] = {
	0x9f, 0x02, 0x28, 0x3b, 0x6c, 0x9c, 0x07, 0xef, 0xc2, 0x6b, 0xb9,
	0xf2, 0xac, 0x92, 0xe3, 0x56
};
static const uint8_t	 srv_iv[12] = {
	0xcf, 0x78, 0x2b, 0x88, 0xdd, 0x83, 0x54, 0x9a, 0xad, 0xf1, 0xe9,
	0x84
};

START_TEST(rfc8448_server_keys)
{
	uint8_t	 key[16], iv[12];

	ck_assert_int_eq(ktls_hkdf_expand_label(EVP_sha256(), srv_secret,
	    sizeof(srv_secret), "key", key, sizeof(key)), 0);
	ck_assert_mem_eq(key, srv_key, sizeof(key));
	ck_assert_int_eq(ktls_hkdf_expand_label(EVP_sha256(), srv_secret,
	    sizeof(srv_secret), "iv", iv, sizeof(iv)), 0);
	ck_assert_mem_eq(iv, srv_iv, sizeof(iv));
}
END_TEST

START_TEST(label_too_long)
{
	uint8_t	 out[16];
	char	 label[256];

	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	ck_assert_int_eq(ktls_hkdf_expand_label(EVP_sha256(), srv_secret,
	    sizeof(srv_secret), label, out, sizeof(out)), -1);
}
END_TEST

START_TEST(probe_answers)
{
	char	 err[256] = "";
	int	 r;

	/* Either way the probe must answer, and say why when it is no. */
	r = ktls_probe(err, sizeof(err));
	ck_assert(r == 0 || r == 1);
	if (r == 0)
		ck_assert_ptr_nonnull(strstr(err, "TLS"));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("ktls");
	TCase	*tc = tcase_create("ktls");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, rfc8448_server_keys);
	tcase_add_test(tc, label_too_long);
	tcase_add_test(tc, probe_answers);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
