/*
 * Password hashes with libxcrypt's yescrypt at its default cost.
 *
 * One hash costs tens of milliseconds of CPU and 16 MB of memory, which
 * is the point: it bounds how fast a stolen store can be searched, and
 * also how many logins per second one worker can check, so logins go
 * through the rate limiter (ratelimit.c) before they come here.
 *
 * struct crypt_data holds the password and derived material while
 * crypt_rn works: it is on the heap (some 32 KB), wiped, and freed.
 */

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "passwd.h"

_Static_assert(PASSWD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
    "libxcrypt hashes no password of PASSWD_MAX bytes");
_Static_assert(PASSWD_HASH_SIZE <= CRYPT_OUTPUT_SIZE,
    "PASSWD_HASH_SIZE is beyond what crypt writes");

#define PASSWD_PREFIX	"$y$"	/* yescrypt */

/*
 * The hash of a random password nobody knows, made once: what a check
 * for a user who does not exist spends its time on.
 */
static char	 passwd_dummy[PASSWD_HASH_SIZE];

static int
passwd_long(const char *password)
{
	return (strnlen(password, PASSWD_MAX + 1) > PASSWD_MAX);
}

/*
 * Hash password with setting (a salt, or a whole hash) into out: 0, or
 * -1 if crypt failed or the result does not fit.  crypt_rn answers NULL
 * on failure; the "*" test guards against an implementation that
 * answers with a failure token instead, as crypt(3) may.
 */
static int
passwd_crypt(const char *password, const char *setting, char *out,
    size_t outlen)
{
	struct crypt_data	*cd;
	const char		*h;
	int			 rv = -1;

	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		log_warn("%s", __func__);
		return (-1);
	}
	if ((h = crypt_rn(password, setting, cd, sizeof(*cd))) != NULL &&
	    h[0] != '*' && strlcpy(out, h, outlen) < outlen)
		rv = 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (rv == -1)
		explicit_bzero(out, outlen);
	return (rv);
}

int
passwd_hash(const char *password, char *out, size_t outlen)
{
	char	 salt[CRYPT_GENSALT_OUTPUT_SIZE];

	if (outlen > 0)
		out[0] = '\0';
	if (password == NULL || passwd_long(password)) {
		log_warnx("%s: no password, or longer than %d bytes",
		    __func__, PASSWD_MAX);
		return (-1);
	}
	/* Count 0 is the default cost; NULL asks libxcrypt for the salt. */
	if (crypt_gensalt_rn(PASSWD_PREFIX, 0, NULL, 0, salt,
	    sizeof(salt)) == NULL) {
		log_warn("%s: crypt_gensalt_rn", __func__);
		return (-1);
	}
	if (passwd_crypt(password, salt, out, outlen) == -1) {
		log_warnx("%s: crypt_rn failed", __func__);
		return (-1);
	}
	return (0);
}

int
passwd_init(void)
{
	unsigned char	 rnd[32];
	char		 pw[2 * sizeof(rnd) + 1];
	size_t		 i;
	int		 rv;

	if (passwd_dummy[0] != '\0')
		return (0);
	arc4random_buf(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++) {
		pw[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
		pw[2 * i + 1] = "0123456789abcdef"[rnd[i] & 0xf];
	}
	pw[2 * sizeof(rnd)] = '\0';
	rv = passwd_hash(pw, passwd_dummy, sizeof(passwd_dummy));
	explicit_bzero(rnd, sizeof(rnd));
	explicit_bzero(pw, sizeof(pw));
	return (rv);
}

/* The time of a check, spent on the dummy hash; always 0. */
static int
passwd_waste(const char *password)
{
	char	 h[PASSWD_HASH_SIZE];

	if (passwd_init() == 0)
		(void)passwd_crypt(password, passwd_dummy, h, sizeof(h));
	explicit_bzero(h, sizeof(h));
	return (0);
}

int
passwd_check(const char *password, const char *hash)
{
	char	 h[PASSWD_HASH_SIZE];
	size_t	 hlen, len;
	int	 match;

	/* Refused at once, whether the user exists or not. */
	if (password == NULL || passwd_long(password))
		return (0);
	if (hash == NULL)
		return (passwd_waste(password));
	/* A hash crypt cannot use (a locked "!", "*") costs the same. */
	if (passwd_crypt(password, hash, h, sizeof(h)) == -1)
		return (passwd_waste(password));

	/*
	 * The lengths are those of the format; the contents are secret.
	 * CRYPTO_memcmp is timingsafe_bcmp's contract (which libbsd 0.11
	 * lacks), in libcrypto that every Mezite program links.
	 */
	len = strlen(h);
	hlen = strnlen(hash, sizeof(h));
	match = len == hlen && CRYPTO_memcmp(h, hash, len) == 0;
	explicit_bzero(h, sizeof(h));
	return (match);
}
