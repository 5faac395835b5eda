/*
 * Reaching mezited through an HTTP proxy: the proxy's URL, which
 * destinations NO_PROXY exempts, the CONNECT request and the parser of
 * the proxy's response.  Nothing here does I/O.
 */

#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mezd.h"

static int	 unpercent(const char *, size_t, char *, size_t);

/* %XX-decode s[0..len) into out (size outlen).  -1 if malformed. */
static int
unpercent(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < len; i++) {
		if (o + 1 >= outlen)
			return (-1);
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (i + 2 >= len)
			return (-1);
		if (!isxdigit((unsigned char)s[i + 1]) ||
		    !isxdigit((unsigned char)s[i + 2]))
			return (-1);
		hi = isdigit((unsigned char)s[i + 1]) ? s[i + 1] - '0' :
		    (tolower((unsigned char)s[i + 1]) - 'a' + 10);
		lo = isdigit((unsigned char)s[i + 2]) ? s[i + 2] - '0' :
		    (tolower((unsigned char)s[i + 2]) - 'a' + 10);
		if ((out[o++] = hi << 4 | lo) == '\0')
			return (-1);
		i += 2;
	}
	out[o] = '\0';
	return (0);
}

/*
 * http://[user[:password]@]host[:port][/] into hp; the port is 80
 * unless given.  NULL if fine, or why not.
 */
const char *
httpproxy_parse(const char *url, struct httpproxy *hp)
{
	char		 hostport[PROXYLEN], cred[2 * CREDLEN + 2];
	char		 user[CREDLEN + 1], pass[CREDLEN + 1];
	const char	*s, *at, *end, *colon, *e;
	size_t		 len;
	int		 n;

	memset(hp, 0, sizeof(*hp));
	if (strncasecmp(url, "http://", 7) != 0)
		return (strstr(url, "://") != NULL ? "only http:// proxies "
		    "are supported" : "not an http:// URL");
	s = url + 7;
	end = s + strcspn(s, "/?#");
	if (*end != '\0' && strcmp(end, "/") != 0)
		return ("a path after the host");
	if ((at = memchr(s, '@', end - s)) != NULL) {
		if (memchr(at + 1, '@', end - at - 1) != NULL)
			return ("'@' in the host");
		colon = memchr(s, ':', at - s);
		if (colon == NULL)
			colon = at;
		user[0] = pass[0] = '\0';
		if (unpercent(s, colon - s, user, sizeof(user)) == -1 ||
		    (colon < at && unpercent(colon + 1, at - colon - 1, pass,
		    sizeof(pass)) == -1)) {
			explicit_bzero(user, sizeof(user));
			explicit_bzero(pass, sizeof(pass));
			return ("malformed or too long user or password");
		}
		if (strchr(user, ':') != NULL) {
			explicit_bzero(user, sizeof(user));
			explicit_bzero(pass, sizeof(pass));
			return ("':' in the user name");
		}
		n = snprintf(cred, sizeof(cred), "%s:%s", user, pass);
		explicit_bzero(user, sizeof(user));
		explicit_bzero(pass, sizeof(pass));
		/* 511 bytes at most: 684 of base64, within hp->auth */
		EVP_EncodeBlock((unsigned char *)hp->auth,
		    (const unsigned char *)cred, n);
		explicit_bzero(cred, sizeof(cred));
		hp->has_auth = 1;
		s = at + 1;
	}
	len = end - s;
	if (len == 0)
		return ("no host");
	if (len >= sizeof(hostport) - 4)
		return ("host name too long");
	memcpy(hostport, s, len);
	hostport[len] = '\0';
	/* proxy_parse's default port is mezited's; a proxy's is 80. */
	if ((hostport[0] == '[' && strstr(hostport, "]:") == NULL) ||
	    (hostport[0] != '[' && strchr(hostport, ':') == NULL))
		strlcat(hostport, ":80", sizeof(hostport));
	if ((e = proxy_parse(hostport, &hp->addr)) != NULL) {
		explicit_bzero(hp, sizeof(*hp));
		return (e);
	}
	return (NULL);
}

/*
 * Whether the list (NO_PROXY: names separated by commas or blanks)
 * exempts host:port from the proxy.  "*" exempts everything; a name
 * matches itself and the names under it, with or without a leading
 * dot; an address matches itself; name:port only that port.
 * Case does not matter.
 */
int
no_proxy_match(const char *list, const char *host, const char *port)
{
	const char	*p = list;
	char		 ent[HOSTLEN + 9], *name, *eport, *c;
	size_t		 len, hlen, nlen;

	hlen = strlen(host);
	while (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	while (*p != '\0') {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			continue;
		if (len >= sizeof(ent)) {	/* longer than any name */
			p += len;
			continue;
		}
		memcpy(ent, p, len);
		ent[len] = '\0';
		p += len;
		if (strcmp(ent, "*") == 0)
			return (1);
		/* [v6]:port, [v6], name:port, name or a bare v6 */
		name = ent;
		eport = NULL;
		if (ent[0] == '[') {
			if ((c = strchr(ent, ']')) == NULL)
				continue;
			*c++ = '\0';
			name = ent + 1;
			if (*c == ':')
				eport = c + 1;
			else if (*c != '\0')
				continue;
		} else if ((c = strchr(ent, ':')) != NULL &&
		    strchr(c + 1, ':') == NULL) {
			*c = '\0';
			eport = c + 1;
		}
		if (eport != NULL && strcmp(eport, port) != 0)
			continue;
		while (*name == '.')
			name++;
		nlen = strlen(name);
		while (nlen > 0 && name[nlen - 1] == '.')
			nlen--;
		if (nlen == 0)
			continue;
		if (hlen == nlen && strncasecmp(host, name, nlen) == 0)
			return (1);
		if (hlen > nlen && host[hlen - nlen - 1] == '.' &&
		    strncasecmp(host + hlen - nlen, name, nlen) == 0)
			return (1);
	}
	return (0);
}

/*
 * The HTTP proxy to reach the proxy through: the configuration's, or
 * else https_proxy (HTTPS_PROXY) unless no_proxy (NO_PROXY) exempts
 * mezited.  1: hp is the one; 0: connect directly; -1: err says why.
 */
int
httpproxy_select(const struct mezd_conf *c, struct httpproxy *hp, char *err,
    size_t errlen)
{
	const char	*url, *np, *e, *var = "https_proxy";

	memset(hp, 0, sizeof(*hp));
	if (c->has_httpproxy)
		url = c->httpproxy_url;
	else {
		if ((url = getenv(var)) == NULL || *url == '\0') {
			var = "HTTPS_PROXY";
			url = getenv(var);
		}
		if (url == NULL || *url == '\0')
			return (0);
		if (((np = getenv("no_proxy")) != NULL && *np != '\0') ||
		    ((np = getenv("NO_PROXY")) != NULL && *np != '\0'))
			if (no_proxy_match(np, c->proxy.host, c->proxy.port))
				return (0);
	}
	if ((e = httpproxy_parse(url, hp)) != NULL) {
		snprintf(err, errlen, "%s: %s", c->has_httpproxy ?
		    "http proxy" : var, e);
		return (-1);
	}
	return (1);
}

/* CONNECT host:port, into buf.  The length, or -1 if it does not fit. */
int
connectreq_build(const struct httpproxy *hp, const struct proxy *to,
    char *buf, size_t len)
{
	int	 n;

	n = snprintf(buf, len, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
	    "%s%s%s"
	    "User-Agent: mezd/" MEZD_VERSION "\r\n\r\n", to->name, to->name,
	    hp->has_auth ? "Proxy-Authorization: Basic " : "",
	    hp->has_auth ? hp->auth : "", hp->has_auth ? "\r\n" : "");
	if (n < 0 || (size_t)n >= len)
		return (-1);
	return (n);
}

/*
 * The proxy's response to CONNECT, from the first len bytes it sent.
 * 0: incomplete, read more; 1: complete, r filled in (any status: the
 * caller wants 200); -1: malformed, *why says how.  At most
 * CONNRESP_MAX bytes of header are taken.
 */
int
connectresp_parse(const char *buf, size_t len, struct connectresp *r,
    const char **why)
{
	const char	*p, *end, *eol;
	size_t		 i, linelen;
	int		 first = 1;

	memset(r, 0, sizeof(*r));
	*why = NULL;
	if (len > CONNRESP_MAX)
		len = CONNRESP_MAX;
	p = buf;
	end = buf + len;
	for (;;) {
		if ((eol = memchr(p, '\n', end - p)) == NULL) {
			if (len == CONNRESP_MAX) {
				*why = "response header too long";
				return (-1);
			}
			/* What there is so far must still make sense. */
			if (first && (size_t)(end - p) >= 5 &&
			    strncmp(p, "HTTP/", 5) != 0) {
				*why = "not an HTTP response";
				return (-1);
			}
			return (0);
		}
		linelen = eol - p;
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
		for (i = 0; i < linelen; i++)
			if ((iscntrl((unsigned char)p[i]) && p[i] != '\t') ||
			    (unsigned char)p[i] >= 0x7f) {
				*why = "control character in the response";
				return (-1);
			}
		if (first) {
			/* HTTP/1.x SP 3DIGIT [SP reason] */
			if (linelen < 12 || strncmp(p, "HTTP/1.", 7) != 0 ||
			    (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
			    !isdigit((unsigned char)p[9]) ||
			    !isdigit((unsigned char)p[10]) ||
			    !isdigit((unsigned char)p[11]) ||
			    (linelen > 12 && p[12] != ' ')) {
				*why = "malformed status line";
				return (-1);
			}
			r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 +
			    (p[11] - '0');
			if (r->status < 100) {
				*why = "malformed status line";
				return (-1);
			}
			i = linelen < sizeof(r->line) ? linelen :
			    sizeof(r->line) - 1;
			memcpy(r->line, p, i);
			r->line[i] = '\0';
			first = 0;
		} else if (linelen == 0) {
			r->hdrlen = eol + 1 - buf;
			return (1);
		} else if (p[0] == ' ' || p[0] == '\t') {
			*why = "folded header line";
			return (-1);
		} else if (memchr(p, ':', linelen) == NULL ||
		    p[0] == ':') {
			*why = "malformed header line";
			return (-1);
		}
		p = eol + 1;
	}
}
