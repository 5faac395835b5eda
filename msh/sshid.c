/*
 * The user's SSH identity for the nodes: an Ed25519 key pair that msh
 * login makes beside the TLS key, and the OpenSSH user certificate the
 * auth worker's SSH user CA signs for it.
 *
 * The private key is written in OpenSSH's own format (PROTOCOL.key,
 * "openssh-key-v1", unencrypted), which ssh(1) reads as it reads a key
 * of ssh-keygen's, in PEM armour of 70 base64 digits a line:
 *
 *	"openssh-key-v1" NUL
 *	string	cipher name	"none"
 *	string	KDF name	"none"
 *	string	KDF options	empty
 *	uint32	keys		1
 *	string	public key	string "ssh-ed25519", string key
 *	string	private part	uint32 check, uint32 check (the same),
 *				string "ssh-ed25519", string public key,
 *				string seed and public key (64 bytes),
 *				string comment, then 1, 2, 3... up to a
 *				multiple of 8 bytes
 *
 * Every buffer that held the private key is wiped.
 */

#include <sys/types.h>

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "msh.h"
#include "sshwire.h"

#define ED25519		"ssh-ed25519"
#define CERTTYPE	"ssh-ed25519-cert-v01@openssh.com"
#define PEM_BEGIN	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define PEM_END		"-----END OPENSSH PRIVATE KEY-----\n"
#define PEM_LINE	70
#define KEYBUF		1024		/* the key's bytes, unarmoured */
#define B64DIGITS	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
			"abcdefghijklmnopqrstuvwxyz0123456789+/="

static void	 w_pubblob(struct sshwire *, const uint8_t *);

/* An Ed25519 public key's blob. */
static void
w_pubblob(struct sshwire *w, const uint8_t *pub)
{
	sshwire_string(w, ED25519, strlen(ED25519));
	sshwire_string(w, pub, SSHID_KEYLEN);
}

int
sshid_new(struct sshid *id)
{
	EVP_PKEY	*k;
	size_t		 n;
	int		 rv = -1;

	memset(id, 0, sizeof(*id));
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
		return (-1);
	n = sizeof(id->pub);
	if (EVP_PKEY_get_raw_public_key(k, id->pub, &n) != 1 ||
	    n != sizeof(id->pub))
		goto done;
	n = sizeof(id->seed);
	if (EVP_PKEY_get_raw_private_key(k, id->seed, &n) != 1 ||
	    n != sizeof(id->seed))
		goto done;
	rv = 0;
 done:
	EVP_PKEY_free(k);
	if (rv == -1)
		explicit_bzero(id, sizeof(*id));
	return (rv);
}

void
sshid_clear(struct sshid *id)
{
	explicit_bzero(id, sizeof(*id));
}

/* "ssh-ed25519 base64 comment", to free; NULL on failure. */
char *
sshid_public(const struct sshid *id, const char *comment)
{
	struct sshwire	 w;
	uint8_t		 buf[KEYBUF];
	char		 b64[4 * ((KEYBUF + 2) / 3) + 1];
	char		*s;

	sshwire_init(&w, buf, sizeof(buf));
	w_pubblob(&w, id->pub);
	if (w.err)
		return (NULL);
	(void)EVP_EncodeBlock((unsigned char *)b64, w.p, (int)w.len);
	if (asprintf(&s, "%s %s %s", ED25519, b64, comment) == -1)
		return (NULL);
	return (s);
}

/*
 * The private key in openssh-key-v1 armour: 0 and *pem, a buffer of
 * *len bytes to wipe and free; -1 on failure.
 */
int
sshid_private(const struct sshid *id, const char *comment, char **pem,
    size_t *lenp)
{
	struct sshwire	 w, priv;
	uint8_t		 wbuf[KEYBUF], privbuf[KEYBUF];
	uint8_t		 both[2 * SSHID_KEYLEN];
	char		 b64[4 * ((KEYBUF + 2) / 3) + 1];
	char		*out = NULL;
	uint32_t	 check;
	size_t		 n, i, o, cap;
	uint8_t		 pad;
	int		 rv = -1;

	*pem = NULL;
	if (RAND_bytes((unsigned char *)&check, sizeof(check)) != 1)
		return (-1);
	memcpy(both, id->seed, SSHID_KEYLEN);
	memcpy(both + SSHID_KEYLEN, id->pub, SSHID_KEYLEN);
	sshwire_init(&w, wbuf, sizeof(wbuf));
	sshwire_init(&priv, privbuf, sizeof(privbuf));

	sshwire_u32(&priv, check);
	sshwire_u32(&priv, check);
	w_pubblob(&priv, id->pub);
	sshwire_string(&priv, both, sizeof(both));
	sshwire_string(&priv, comment, strlen(comment));
	for (pad = 1; priv.len % 8 != 0; pad++)
		sshwire_bytes(&priv, &pad, 1);

	sshwire_bytes(&w, "openssh-key-v1", sizeof("openssh-key-v1"));
	sshwire_string(&w, "none", 4);
	sshwire_string(&w, "none", 4);
	sshwire_string(&w, NULL, 0);
	sshwire_u32(&w, 1);
	sshwire_u32(&w, 4 + strlen(ED25519) + 4 + SSHID_KEYLEN);
	w_pubblob(&w, id->pub);
	sshwire_string(&w, priv.p, priv.len);
	if (w.err || priv.err)
		goto done;

	n = EVP_EncodeBlock((unsigned char *)b64, w.p, (int)w.len);
	cap = strlen(PEM_BEGIN) + n + n / PEM_LINE + 1 + strlen(PEM_END) + 1;
	if ((out = malloc(cap)) == NULL)
		goto done;
	o = strlcpy(out, PEM_BEGIN, cap);
	for (i = 0; i < n; i += PEM_LINE) {
		memcpy(out + o, b64 + i, n - i < PEM_LINE ? n - i : PEM_LINE);
		o += n - i < PEM_LINE ? n - i : PEM_LINE;
		out[o++] = '\n';
	}
	memcpy(out + o, PEM_END, strlen(PEM_END) + 1);
	o += strlen(PEM_END);
	*pem = out;
	*lenp = o;
	out = NULL;
	rv = 0;
 done:
	explicit_bzero(both, sizeof(both));
	explicit_bzero(privbuf, sizeof(privbuf));
	explicit_bzero(wbuf, sizeof(wbuf));
	explicit_bzero(b64, sizeof(b64));
	free(out);
	return (rv);
}

/*
 * Whether s is one line an OpenSSH certificate file may hold: the
 * Ed25519 certificate type, base64, and a comment of printable
 * characters.  The proxy's word is not otherwise checked here: ssh and
 * the node's sshd check the certificate itself.
 */
int
sshid_cert_valid(const char *s, size_t len)
{
	size_t	 t = strlen(CERTTYPE), n, i;

	if (len == 0 || len > SSHID_CERT_MAX || memchr(s, '\0', len) != NULL)
		return (0);
	if (len <= t + 1 || memcmp(s, CERTTYPE " ", t + 1) != 0)
		return (0);
	s += t + 1;
	len -= t + 1;
	for (n = 0; n < len && strchr(B64DIGITS, s[n]) != NULL; n++)
		;
	if (n == 0 || n % 4 != 0)
		return (0);
	for (i = n; i < len; i++)
		if (s[i] < ' ' || s[i] > '~')
			return (0);
	return (n == len || s[n] == ' ');
}
