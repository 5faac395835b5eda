/*
 * SSH public keys of users: an authorized_keys line, "type base64
 * [comment]", read and checked, and its fingerprint as ssh-keygen -l
 * prints it ("SHA256:" and the unpadded base64 of the SHA-256 of the
 * decoded key).
 *
 * The types taken are ssh-ed25519, ecdsa-sha2-nistp256, -nistp384 and
 * -nistp521, and ssh-rsa of SSHKEY_RSA_MIN to SSHKEY_RSA_MAX bits.  The
 * key is decoded: the type it names must be the line's, its fields of
 * the sizes that type has, and nothing may follow them.  Security keys
 * (sk-...) and certificates (...-cert-v01@openssh.com) are refused for
 * now, as are options before the type: a key here is a key, and what
 * it may do is the user's roles' to say.
 *
 * The base64 must be the one ssh-keygen writes (padded, canonical), so
 * that one key has one text.  Every error is a sentence for the admin,
 * which quotes at most a short piece of the line.
 */

#include <sys/types.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "sshkey.h"

#define WS	" \t"

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const struct {
	const char	*type;
	const char	*curve;		/* ecdsa: the curve's name */
	size_t		 point;		/* ecdsa: an uncompressed point */
} sshkey_types[] = {
	{ "ssh-ed25519",		NULL,		0 },
	{ "ecdsa-sha2-nistp256",	"nistp256",	65 },
	{ "ecdsa-sha2-nistp384",	"nistp384",	97 },
	{ "ecdsa-sha2-nistp521",	"nistp521",	133 },
	{ "ssh-rsa",			NULL,		0 },
};
#define NTYPES	(sizeof(sshkey_types) / sizeof(sshkey_types[0]))

/* A decoded key, read field by field. */
struct blob {
	const uint8_t	*p;
	size_t		 left;
};

static int
fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((__format__ (printf, 3, 4)));

static int
fail(char *err, size_t len, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return (-1);
}

static int
type_index(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < NTYPES; i++)
		if (strlen(sshkey_types[i].type) == n &&
		    memcmp(sshkey_types[i].type, s, n) == 0)
			return ((int)i);
	return (-1);
}

/*
 * Strict base64: padded, canonical.  The decoded bytes into out, at most
 * size of them; -1 if the text is not that.
 */
static int
b64_decode(const char *s, size_t n, uint8_t *out, size_t size, size_t *len)
{
	const char	*d;
	uint32_t	 v;
	size_t		 i, k, o = 0, pad = 0;

	if (n == 0 || n % 4 != 0)
		return (-1);
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	if (n / 4 * 3 - pad > size)
		return (-1);
	for (i = 0; i < n; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++) {
			v <<= 6;
			if (i + k >= n - pad)
				continue;
			if (s[i + k] == '\0' ||
			    (d = strchr(b64_digits, s[i + k])) == NULL)
				return (-1);
			v |= (uint32_t)(d - b64_digits);
		}
		out[o++] = v >> 16;
		if (i + 4 < n || pad < 2)
			out[o++] = (v >> 8) & 0xff;
		if (i + 4 < n || pad < 1)
			out[o++] = v & 0xff;
		/* The bits padding leaves over must be zero. */
		if (i + 4 == n && ((pad == 1 && (v & 0xff) != 0) ||
		    (pad == 2 && (v & 0xffff) != 0)))
			return (-1);
	}
	*len = o;
	return (0);
}

/* A string field: its bytes and their length. */
static int
blob_string(struct blob *b, const uint8_t **p, size_t *n)
{
	uint32_t	 len;

	if (b->left < 4)
		return (-1);
	len = (uint32_t)b->p[0] << 24 | (uint32_t)b->p[1] << 16 |
	    (uint32_t)b->p[2] << 8 | b->p[3];
	if (len > b->left - 4)
		return (-1);
	*p = b->p + 4;
	*n = len;
	b->p += 4 + len;
	b->left -= 4 + len;
	return (0);
}

/*
 * An mpint that must be positive: its bits.  Two's complement: a
 * leading zero byte only before a byte whose high bit is set.
 */
static int
blob_mpint_bits(struct blob *b, unsigned int *bits)
{
	const uint8_t	*p;
	size_t		 n;
	unsigned int	 top;

	if (blob_string(b, &p, &n) == -1 || n == 0 || (p[0] & 0x80) != 0)
		return (-1);
	if (p[0] == 0) {
		if (n == 1 || (p[1] & 0x80) == 0)
			return (-1);
		p++;
		n--;
	}
	if (n > SSHKEY_RSA_MAX / 8)
		return (-1);
	for (top = 8; top > 0 && (p[0] & (1U << (top - 1))) == 0; top--)
		;
	*bits = (unsigned int)(n - 1) * 8 + top;
	return (0);
}

/* Does the decoded key hold a key of type t, and only that? */
static int
blob_check(const uint8_t *data, size_t len, int t, struct sshkey *k,
    char *err, size_t errlen)
{
	struct blob	 b = { data, len };
	const uint8_t	*p;
	size_t		 n;
	unsigned int	 ebits;

	if (blob_string(&b, &p, &n) == -1)
		return (fail(err, errlen, "the key is truncated"));
	if (n != strlen(sshkey_types[t].type) ||
	    memcmp(p, sshkey_types[t].type, n) != 0)
		return (fail(err, errlen, "the key inside is not of type %s",
		    sshkey_types[t].type));
	if (strcmp(sshkey_types[t].type, "ssh-ed25519") == 0) {
		if (blob_string(&b, &p, &n) == -1 || n != 32)
			return (fail(err, errlen, "an ssh-ed25519 key has "
			    "32 bytes"));
		k->bits = 256;
	} else if (sshkey_types[t].curve != NULL) {
		if (blob_string(&b, &p, &n) == -1 ||
		    n != strlen(sshkey_types[t].curve) ||
		    memcmp(p, sshkey_types[t].curve, n) != 0)
			return (fail(err, errlen, "the key's curve is not "
			    "%s", sshkey_types[t].curve));
		if (blob_string(&b, &p, &n) == -1 ||
		    n != sshkey_types[t].point || p[0] != 0x04)
			return (fail(err, errlen, "the key's point is not "
			    "an uncompressed point of %s",
			    sshkey_types[t].curve));
		k->bits = sshkey_types[t].point == 133 ? 521 :
		    (unsigned int)(sshkey_types[t].point - 1) * 4;
	} else {
		if (blob_mpint_bits(&b, &ebits) == -1 || ebits < 2)
			return (fail(err, errlen, "the RSA key's exponent "
			    "is malformed"));
		if (blob_mpint_bits(&b, &k->bits) == -1)
			return (fail(err, errlen, "the RSA key's modulus is "
			    "malformed, or longer than %d bits",
			    SSHKEY_RSA_MAX));
		if (k->bits < SSHKEY_RSA_MIN)
			return (fail(err, errlen, "an RSA key of %u bits is "
			    "too short: at least %d", k->bits,
			    SSHKEY_RSA_MIN));
	}
	if (b.left != 0)
		return (fail(err, errlen, "bytes follow the key"));
	return (0);
}

static void
fingerprint(const uint8_t *data, size_t len, char *fp)
{
	uint8_t		 md[SHA256_DIGEST_LENGTH];
	unsigned char	 out[48];
	size_t		 n;

	SHA256(data, len, md);
	n = (size_t)EVP_EncodeBlock(out, md, sizeof(md));
	while (n > 0 && out[n - 1] == '=')
		n--;
	(void)snprintf(fp, SSHKEY_FP_LEN + 1, "SHA256:%.*s", (int)n,
	    (const char *)out);
}

/* Why a first word that is not a type we take is refused. */
static int
type_refused(const char *line, size_t n, char *err, size_t errlen)
{
	const char	*cert = "-cert-v01@openssh.com";
	const char	*next;
	size_t		 clen = strlen(cert), nn;

	if (n > 3 && strncmp(line, "sk-", 3) == 0)
		return (fail(err, errlen, "security keys (%.*s) are not "
		    "supported yet", (int)(n < 40 ? n : 40), line));
	if (n > clen && memcmp(line + n - clen, cert, clen) == 0)
		return (fail(err, errlen, "certificates (%.*s) are not "
		    "supported yet", (int)(n < 40 ? n : 40), line));
	if (strncmp(line, "ssh-", 4) == 0 || strncmp(line, "ecdsa-", 6) == 0)
		return (fail(err, errlen, "unsupported key type %.*s: "
		    "ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa",
		    (int)(n < 40 ? n : 40), line));
	/* Options come before the type: is a type further on? */
	next = line + n;
	next += strspn(next, WS);
	nn = strcspn(next, WS);
	for (; *next != '\0'; next += nn, next += strspn(next, WS),
	    nn = strcspn(next, WS))
		if (type_index(next, nn) != -1 ||
		    (nn > 3 && strncmp(next, "sk-", 3) == 0))
			return (fail(err, errlen, "options before the key "
			    "type are not accepted"));
	return (fail(err, errlen, "not a public key: \"type base64 "
	    "[comment]\""));
}

/*
 * Read an authorized_keys line into k: 0, or -1 with the reason in err.
 * Leading and trailing blanks are ignored; the comment is the rest of
 * the line after the key, blanks inside it kept.
 */
int
sshkey_parse(const char *line, struct sshkey *k, char *err, size_t errlen)
{
	uint8_t		 data[SSHKEY_BLOB_MAX];
	const char	*p, *b64, *c;
	size_t		 n, i, blen, dlen, clen;
	unsigned char	 again[SSHKEY_B64_MAX + 1];
	int		 t;

	memset(k, 0, sizeof(*k));
	if (strnlen(line, SSHKEY_LINE_MAX + 1) > SSHKEY_LINE_MAX)
		return (fail(err, errlen, "the line is longer than %d bytes",
		    SSHKEY_LINE_MAX));
	for (i = 0; line[i] != '\0'; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') ||
		    (unsigned char)line[i] == 0x7f)
			return (fail(err, errlen, "the line holds a control "
			    "character"));
	p = line + strspn(line, WS);
	if (*p == '\0')
		return (fail(err, errlen, "no key"));
	n = strcspn(p, WS);
	if ((t = type_index(p, n)) == -1)
		return (type_refused(p, n, err, errlen));
	(void)strlcpy(k->type, sshkey_types[t].type, sizeof(k->type));

	b64 = p + n + strspn(p + n, WS);
	if ((blen = strcspn(b64, WS)) == 0)
		return (fail(err, errlen, "no key after the type %s",
		    k->type));
	if (blen > SSHKEY_B64_MAX)
		return (fail(err, errlen, "the key is longer than %d bytes",
		    SSHKEY_BLOB_MAX));
	if (b64_decode(b64, blen, data, sizeof(data), &dlen) == -1)
		return (fail(err, errlen, "the key is not in base64 as "
		    "ssh-keygen writes it"));
	/* One key, one text: what decodes must encode back the same. */
	if ((size_t)EVP_EncodeBlock(again, data, (int)dlen) != blen ||
	    memcmp(again, b64, blen) != 0)
		return (fail(err, errlen, "the key is not in base64 as "
		    "ssh-keygen writes it"));
	if (blob_check(data, dlen, t, k, err, errlen) == -1)
		return (-1);
	memcpy(k->b64, b64, blen);
	k->b64[blen] = '\0';

	c = b64 + blen + strspn(b64 + blen, WS);
	for (clen = strlen(c); clen > 0 && strchr(WS, c[clen - 1]) != NULL;
	    clen--)
		;
	if (clen > SSHKEY_COMMENT_MAX)
		return (fail(err, errlen, "the comment is longer than %d "
		    "bytes", SSHKEY_COMMENT_MAX));
	memcpy(k->comment, c, clen);
	k->comment[clen] = '\0';
	fingerprint(data, dlen, k->fingerprint);
	return (0);
}

/* "SHA256:" and 43 base64 digits, as ssh-keygen -l prints them. */
int
sshkey_fingerprint_valid(const char *s)
{
	size_t	 n = strlen(s);

	return (n == SSHKEY_FP_LEN && strncmp(s, "SHA256:", 7) == 0 &&
	    strspn(s + 7, b64_digits) == n - 7);
}
