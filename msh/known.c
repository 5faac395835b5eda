/*
 * Trust on first use: the proxies' certificates seen before.
 *
 * Without a CA to verify the proxy against, msh remembers the SHA-256
 * of the certificate a proxy showed the first time, in known_proxies,
 * one line per proxy:
 *
 *	proxy.example.com:443 SHA256:<64 hex digits>
 *
 * and refuses to talk to that proxy when it shows another.  Blank
 * lines and lines starting with '#' are ignored, as are malformed
 * ones.  A proxy may have several lines (a certificate and its
 * successor); any of them matches.
 */

#include <sys/types.h>

#include <ctype.h>
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msh.h"

#define HASH_PREFIX	"SHA256:"

/* "SHA256:" and 64 hex digits, as tls_peer_cert_hash(3) writes it. */
int
hash_valid(const char *s)
{
	size_t	 i;

	if (strncmp(s, HASH_PREFIX, strlen(HASH_PREFIX)) != 0)
		return (0);
	s += strlen(HASH_PREFIX);
	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return (0);
	return (s[i] == '\0');
}

/*
 * What the text of known_proxies says of the proxy name showing the
 * certificate hash.  For KNOWN_CHANGED, *line is the first line
 * naming the proxy.
 */
enum known
known_lookup(const char *text, const char *name, const char *hash,
    size_t *line)
{
	const char	*p, *eol, *f1, *f2;
	char		 seen[HASHLEN + 1];
	size_t		 l1, l2, n = 0;
	enum known	 res = KNOWN_NEW;

	*line = 0;
	for (p = text; *p != '\0'; p = *eol == '\0' ? eol : eol + 1) {
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		n++;
		f1 = p;
		while (f1 < eol && (*f1 == ' ' || *f1 == '\t'))
			f1++;
		if (f1 == eol || *f1 == '#')
			continue;
		for (l1 = 0; f1 + l1 < eol && !isspace((unsigned char)f1[l1]);
		    l1++)
			;
		f2 = f1 + l1;
		while (f2 < eol && (*f2 == ' ' || *f2 == '\t'))
			f2++;
		for (l2 = 0; f2 + l2 < eol && !isspace((unsigned char)f2[l2]);
		    l2++)
			;
		/* Nothing but white space may follow the two fields. */
		if (l2 != HASHLEN || strspn(f2 + l2, " \t\r") !=
		    (size_t)(eol - (f2 + l2)))
			continue;
		memcpy(seen, f2, HASHLEN);
		seen[HASHLEN] = '\0';
		if (!hash_valid(seen))
			continue;
		if (l1 != strlen(name) || strncasecmp(f1, name, l1) != 0)
			continue;
		if (strcasecmp(seen, hash) == 0)
			return (KNOWN_MATCH);
		if (res == KNOWN_NEW) {
			res = KNOWN_CHANGED;
			*line = n;
		}
	}
	return (res);
}

/*
 * Check the certificate hash the proxy name showed against
 * known_proxies: go on if it matches, remember it if the proxy is new,
 * and exit if it has changed.
 */
void
known_check(struct home *h, const char *name, const char *hash)
{
	char		*text, *out;
	size_t		 len, olen, line;
	int		 rv, nl;

	if (!hash_valid(hash))
		errx(1, "%s: the proxy's certificate hash is malformed", name);
	if ((rv = home_read(h, FILE_KNOWN, MODE_FILE, &text, &len)) == -1)
		exit(1);
	if (rv == 1) {
		if ((text = strdup("")) == NULL)
			err(1, NULL);
		len = 0;
	}

	switch (known_lookup(text, name, hash, &line)) {
	case KNOWN_MATCH:
		free(text);
		return;
	case KNOWN_CHANGED:
		warnx("WARNING: the certificate of proxy %s has changed!",
		    name);
		warnx("It presents %s, not the certificate of line %zu of "
		    "%s/%s.", hash, line, h->path, FILE_KNOWN);
		warnx("Someone may be intercepting the connection; no "
		    "request was sent.");
		errx(1, "If the change is expected, remove the line from "
		    "%s/%s and try again.", h->path, FILE_KNOWN);
	case KNOWN_NEW:
		break;
	}

	nl = len > 0 && text[len - 1] != '\n';
	olen = len + nl + strlen(name) + 1 + strlen(hash) + 2;
	if ((out = malloc(olen)) == NULL)
		err(1, NULL);
	if ((size_t)snprintf(out, olen, "%s%s%s %s\n", text, nl ? "\n" : "",
	    name, hash) >= olen)
		errx(1, "%s: line too long", FILE_KNOWN);
	if (home_write(h, FILE_KNOWN, out, strlen(out)) == -1)
		exit(1);
	warnx("trusting proxy %s with certificate %s", name, hash);
	free(out);
	free(text);
}
