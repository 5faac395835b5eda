/*
 * mezd.conf: one statement a line, words separated by blanks, "quoted
 * strings" with \" and \\, and # comments.
 *
 * The agent's grammar is flat (no blocks, no macros, no includes), so
 * a line splitter is all it takes; unlike a yacc parser it keeps no
 * global state, and the tests call it on a buffer.  Every error is
 * "file:line: message".
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mezd.h"

#define MAXWORDS	8		/* words on a line */
#define CONF_MAXFILE	(256 * 1024)	/* the configuration file */

struct line {
	char		 buf[LINELEN + 1];	/* words, NUL-separated */
	char		*w[MAXWORDS];
	int		 n;
};

static int	 conf_err(char *, size_t, const char *, int, const char *,
		    ...) __attribute__((__format__ (printf, 5, 6)));
static const char *split(const char *, size_t, struct line *);
static int	 valid_name(const char *, size_t);
static const char *statement(struct mezd_conf *, struct line *);
static const char *read_file(const char *, int, char **, size_t *);
static void	 print_quoted(FILE *, const char *);

static int
conf_err(char *err, size_t errlen, const char *file, int lineno,
    const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (lineno > 0)
		snprintf(err, errlen, "%s:%d: %s", file, lineno, msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return (-1);
}

/* Split one line (no newline in it) into words.  NULL or why not. */
static const char *
split(const char *s, size_t len, struct line *l)
{
	size_t	 i = 0, o = 0;
	int	 quoted;

	l->n = 0;
	if (len > LINELEN)
		return ("line too long");
	for (;;) {
		while (i < len && (s[i] == ' ' || s[i] == '\t' ||
		    s[i] == '\r'))
			i++;
		if (i == len || s[i] == '#')
			return (NULL);
		if (l->n == MAXWORDS)
			return ("too many words");
		l->w[l->n++] = &l->buf[o];
		quoted = 0;
		if (s[i] == '"') {
			quoted = 1;
			i++;
		}
		for (;;) {
			if (i == len) {
				if (quoted)
					return ("unterminated quoted string");
				break;
			}
			if (quoted && s[i] == '"') {
				i++;
				if (i < len && s[i] != ' ' && s[i] != '\t' &&
				    s[i] != '\r' && s[i] != '#')
					return ("junk after a quoted string");
				break;
			}
			if (!quoted && (s[i] == ' ' || s[i] == '\t' ||
			    s[i] == '\r' || s[i] == '#'))
				break;
			if (!quoted && s[i] == '"')
				return ("quote inside a word");
			if (quoted && s[i] == '\\') {
				if (i + 1 == len || (s[i + 1] != '"' &&
				    s[i + 1] != '\\'))
					return ("invalid escape in a quoted "
					    "string");
				i++;
			}
			if (s[i] == '\0' || (iscntrl((unsigned char)s[i]) &&
			    s[i] != '\t'))
				return ("control character");
			l->buf[o++] = s[i++];
		}
		l->buf[o++] = '\0';	/* o <= len + MAXWORDS <= LINELEN */
	}
}

/* Letters, digits, '.', '-' and '_', 1 to max bytes. */
static int
valid_name(const char *s, size_t max)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > max)
		return (0);
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return (0);
	return (1);
}

/* host:port or [v6]:port, with the port required. */
int
config_target(const char *s, struct proxy *p)
{
	const char	*c;

	if (*s == '[') {
		if (strstr(s, "]:") == NULL)
			return (-1);
	} else if ((c = strchr(s, ':')) == NULL || strchr(c + 1, ':') != NULL)
		return (-1);
	return (proxy_parse(s, p) == NULL ? 0 : -1);
}

static int
num(const char *s, int min, int max, int *v)
{
	const char	*errstr;

	*v = strtonum(s, min, max, &errstr);
	return (errstr == NULL ? 0 : -1);
}

/* One statement.  NULL or what is wrong with it. */
static const char *
statement(struct mezd_conf *c, struct line *l)
{
	static char	 why[128];
	struct service	*sv;
	struct label	*lb;
	const char	*e;
	size_t		 i;
	int		 n;

	if (strcmp(l->w[0], "proxy") == 0 && l->n == 2) {
		if (c->has_proxy)
			return ("proxy given twice");
		if ((e = proxy_parse(l->w[1], &c->proxy)) != NULL) {
			snprintf(why, sizeof(why), "proxy: %s", e);
			return (why);
		}
		c->has_proxy = 1;
	} else if (strcmp(l->w[0], "ca") == 0 && l->n == 2) {
		if (c->ca[0] != '\0')
			return ("ca given twice");
		if (l->w[1][0] == '\0' ||
		    strlcpy(c->ca, l->w[1], sizeof(c->ca)) >= sizeof(c->ca))
			return ("ca: invalid file name");
	} else if (strcmp(l->w[0], "name") == 0 && l->n == 2) {
		if (c->name[0] != '\0')
			return ("name given twice");
		if (!valid_name(l->w[1], NAMELEN))
			return ("name: letters, digits, '.', '-' and '_', "
			    "at most 64");
		strlcpy(c->name, l->w[1], sizeof(c->name));
	} else if (strcmp(l->w[0], "token") == 0 &&
	    (l->n == 2 || (l->n == 3 && strcmp(l->w[1], "file") == 0))) {
		if (c->token[0] != '\0' || c->tokenfile[0] != '\0')
			return ("token given twice");
		if (l->n == 2) {
			if (l->w[1][0] == '\0' || strlcpy(c->token, l->w[1],
			    sizeof(c->token)) >= sizeof(c->token))
				return ("token: empty or too long");
			c->token_inline = 1;
		} else if (l->w[2][0] == '\0' || strlcpy(c->tokenfile,
		    l->w[2], sizeof(c->tokenfile)) >= sizeof(c->tokenfile))
			return ("token file: invalid file name");
	} else if (strcmp(l->w[0], "state") == 0 && l->n == 3 &&
	    strcmp(l->w[1], "directory") == 0) {
		if (l->w[2][0] != '/' || strlcpy(c->statedir, l->w[2],
		    sizeof(c->statedir)) >= sizeof(c->statedir))
			return ("state directory: not an absolute path");
	} else if (strcmp(l->w[0], "label") == 0 && l->n == 3) {
		if (c->nlabels == MAXLABELS)
			return ("more than 32 labels");
		if (!valid_name(l->w[1], LABELKEYLEN))
			return ("label: invalid key");
		if (strlen(l->w[2]) > LABELVALLEN)
			return ("label: value too long");
		for (i = 0; i < c->nlabels; i++)
			if (strcmp(c->labels[i].key, l->w[1]) == 0)
				return ("label: key given twice");
		lb = &c->labels[c->nlabels++];
		strlcpy(lb->key, l->w[1], sizeof(lb->key));
		strlcpy(lb->value, l->w[2], sizeof(lb->value));
	} else if (strcmp(l->w[0], "service") == 0 && l->n == 3) {
		if (c->nservices == MAXSERVICES)
			return ("more than 64 services");
		if (!valid_name(l->w[1], NAMELEN))
			return ("service: invalid name");
		for (i = 0; i < c->nservices; i++)
			if (strcmp(c->services[i].name, l->w[1]) == 0)
				return ("service: name given twice");
		sv = &c->services[c->nservices];
		if (config_target(l->w[2], &sv->addr) == -1)
			return ("service: target must be host:port");
		strlcpy(sv->name, l->w[1], sizeof(sv->name));
		strlcpy(sv->target, sv->addr.name, sizeof(sv->target));
		c->nservices++;
	} else if (strcmp(l->w[0], "keepalive") == 0 && l->n == 2) {
		if (num(l->w[1], 1, 3600, &n) == -1)
			return ("keepalive: 1 to 3600 seconds");
		c->keepalive = n;
	} else if (strcmp(l->w[0], "keepalive") == 0 && l->n == 3 &&
	    strcmp(l->w[1], "timeout") == 0) {
		if (num(l->w[2], 2, 86400, &n) == -1)
			return ("keepalive timeout: 2 to 86400 seconds");
		c->keepalive_timeout = n;
	} else if (strcmp(l->w[0], "http") == 0 && l->n == 3 &&
	    strcmp(l->w[1], "proxy") == 0) {
		struct httpproxy	 hp;

		if (c->has_httpproxy)
			return ("http proxy given twice");
		e = httpproxy_parse(l->w[2], &hp);
		explicit_bzero(&hp, sizeof(hp));
		if (e != NULL) {
			snprintf(why, sizeof(why), "http proxy: %s", e);
			return (why);
		}
		strlcpy(c->httpproxy_url, l->w[2], sizeof(c->httpproxy_url));
		c->has_httpproxy = 1;
	} else if (strcmp(l->w[0], "user") == 0 && l->n == 2) {
		if (l->w[1][0] == '\0' || strlcpy(c->user, l->w[1],
		    sizeof(c->user)) >= sizeof(c->user))
			return ("user: invalid name");
	} else {
		snprintf(why, sizeof(why), "syntax error at \"%.32s\"",
		    l->w[0]);
		return (why);
	}
	return (NULL);
}

/*
 * Parse a whole configuration from buf (named file in messages) into
 * c.  0: parsed and complete; -1: the first error in err.
 */
int
config_parse(const char *file, const char *buf, size_t len,
    struct mezd_conf *c, char *err, size_t errlen)
{
	struct line	*l;
	const char	*p = buf, *end = buf + len, *nl, *why;
	int		 lineno = 0, rv = -1;

	memset(c, 0, sizeof(*c));
	strlcpy(c->file, file, sizeof(c->file));
	strlcpy(c->statedir, MEZD_STATEDIR, sizeof(c->statedir));
	c->keepalive = KEEPALIVE;
	c->keepalive_timeout = KEEPALIVE_TIMEOUT;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (conf_err(err, errlen, file, 0, "%s", strerror(errno)));

	while (p < end) {
		lineno++;
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		if ((why = split(p, nl - p, l)) != NULL) {
			conf_err(err, errlen, file, lineno, "%s", why);
			goto done;
		}
		if (l->n > 0 && (why = statement(c, l)) != NULL) {
			conf_err(err, errlen, file, lineno, "%s", why);
			goto done;
		}
		p = nl + 1;
	}
	if (!c->has_proxy)
		conf_err(err, errlen, file, 0, "no proxy given");
	else if (c->ca[0] == '\0')
		conf_err(err, errlen, file, 0, "no ca given");
	else if (c->name[0] == '\0')
		conf_err(err, errlen, file, 0, "no name given");
	else if (c->keepalive_timeout <= c->keepalive)
		conf_err(err, errlen, file, 0,
		    "keepalive timeout must be longer than keepalive");
	else
		rv = 0;
 done:
	explicit_bzero(l, sizeof(*l));
	free(l);
	if (rv == -1)
		config_clear(c);
	return (rv);
}

/*
 * A whole file, at most CONF_MAXFILE bytes; secret: refused if others
 * may read it.  NULL or why not.
 */
static const char *
read_file(const char *path, int secret, char **bufp, size_t *lenp)
{
	static char	 why[128];
	struct stat	 sb;
	char		*buf;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	*bufp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (strerror(errno));
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return ("not a regular file");
	}
	if (secret && (sb.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return ("holds a secret and is accessible by group or "
		    "others");
	}
	if (secret && sb.st_uid != 0 && sb.st_uid != geteuid()) {
		close(fd);
		return ("holds a secret and belongs to another user");
	}
	if ((buf = malloc(CONF_MAXFILE + 1)) == NULL) {
		close(fd);
		return (strerror(errno));
	}
	for (;;) {
		if ((n = read(fd, buf + len, CONF_MAXFILE + 1 - len)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(why, sizeof(why), "%s", strerror(errno));
			freezero(buf, CONF_MAXFILE + 1);
			close(fd);
			return (why);
		}
		if (n == 0)
			break;
		if ((len += n) > CONF_MAXFILE) {
			freezero(buf, CONF_MAXFILE + 1);
			close(fd);
			return ("file too large");
		}
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return (NULL);
}

/*
 * Parse the file, then read the token file it names.  A file holding
 * a token must not be readable by others.
 */
int
config_load(const char *path, struct mezd_conf *c, char *err, size_t errlen)
{
	const char	*why;
	char		*buf;
	size_t		 len, i;
	int		 rv;

	if ((why = read_file(path, 0, &buf, &len)) != NULL)
		return (conf_err(err, errlen, path, 0, "%s", why));
	rv = config_parse(path, buf, len, c, err, errlen);
	freezero(buf, CONF_MAXFILE + 1);
	if (rv == -1)
		return (-1);
	if (c->token_inline && (why = read_file(path, 1, &buf, &len)) !=
	    NULL) {
		config_clear(c);
		return (conf_err(err, errlen, path, 0, "%s", why));
	}
	if (c->token_inline)
		freezero(buf, CONF_MAXFILE + 1);
	if (c->tokenfile[0] != '\0') {
		if ((why = read_file(c->tokenfile, 1, &buf, &len)) != NULL) {
			conf_err(err, errlen, c->tokenfile, 0, "%s", why);
			config_clear(c);
			return (-1);
		}
		while (len > 0 && isspace((unsigned char)buf[len - 1]))
			len--;
		for (i = 0; i < len; i++)
			if (!isgraph((unsigned char)buf[i]))
				break;
		if (len == 0 || len > TOKENLEN || i < len) {
			freezero(buf, CONF_MAXFILE + 1);
			conf_err(err, errlen, c->tokenfile, 0,
			    "not a token (one word, at most %d bytes)",
			    TOKENLEN);
			config_clear(c);
			return (-1);
		}
		memcpy(c->token, buf, len);
		c->token[len] = '\0';
		freezero(buf, CONF_MAXFILE + 1);
	}
	return (0);
}

void
config_clear(struct mezd_conf *c)
{
	explicit_bzero(c->token, sizeof(c->token));
	explicit_bzero(c->httpproxy_url, sizeof(c->httpproxy_url));
}

/* A word in quotes, as split() reads it back. */
static void
print_quoted(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

/* The configuration as it was understood, for -nv; secrets left out. */
void
config_print(FILE *fp, const struct mezd_conf *c)
{
	size_t	 i;

	fprintf(fp, "proxy \"%s\"\n", c->proxy.name);
	fprintf(fp, "ca \"%s\"\n", c->ca);
	fprintf(fp, "name \"%s\"\n", c->name);
	if (c->tokenfile[0] != '\0')
		fprintf(fp, "token file \"%s\"\n", c->tokenfile);
	else if (c->token_inline)
		fprintf(fp, "token \"********\"\n");
	fprintf(fp, "state directory \"%s\"\n", c->statedir);
	for (i = 0; i < c->nlabels; i++) {
		fprintf(fp, "label %s ", c->labels[i].key);
		print_quoted(fp, c->labels[i].value);
		fputc('\n', fp);
	}
	for (i = 0; i < c->nservices; i++)
		fprintf(fp, "service %s %s\n", c->services[i].name,
		    c->services[i].target);
	fprintf(fp, "keepalive %d\n", c->keepalive);
	fprintf(fp, "keepalive timeout %d\n", c->keepalive_timeout);
	if (c->has_httpproxy)
		fprintf(fp, "http proxy \"********\"\n");
	if (c->user[0] != '\0')
		fprintf(fp, "user %s\n", c->user);
}
