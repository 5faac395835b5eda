/*
 * The OpenSSH command lines and configuration that take ssh(1) to a node
 * through the proxy's bastion.
 *
 * ssh reaches the node by a direct-tcpip channel of a second ssh, the
 * one to the bastion, which reaches the bastion through "msh proxy":
 *
 *	ssh -o 'ProxyCommand=J' [options] [login@]node [command]
 *
 * where J, run by the user's shell, is
 *
 *	ssh -o 'ProxyCommand=M' -o User=U -o HostKeyAlias=A
 *	    -o UserKnownHostsFile=K -o StrictHostKeyChecking=accept-new
 *	    -W %h:%p A
 *
 * and M is "msh proxy host port".  ProxyJump cannot carry the jump
 * host's own ProxyCommand on a command line, hence the explicit -W.
 *
 * A string put in those lines passes through three interpreters, each
 * with its own quoting: the shell that runs a ProxyCommand (single
 * quotes), ssh's expansion of %-tokens in ProxyCommand and
 * UserKnownHostsFile ('%' written "%%") and ssh's splitting of option
 * arguments (double quotes).  M is inside J: its '%' is doubled once for
 * each ssh that expands it.
 */

#include <sys/types.h>

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msh.h"
#include "sshcmd.h"

/* What the shell takes as it is, unquoted. */
#define SH_SAFE		"abcdefghijklmnopqrstuvwxyz" \
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-"
/* ssh(1)'s options that take an argument (OpenSSH 9). */
#define SSH_ARGOPTS	"BbcDEeFIiJLlmOoPpQRSWw"

static void	 sb_add(struct strbuf *, const char *, size_t);
static void	 sb_puts(struct strbuf *, const char *);
static char	*sb_end(struct strbuf *);

static void
sb_add(struct strbuf *sb, const char *s, size_t len)
{
	size_t	 cap;
	char	*p;

	if (len > SIZE_MAX / 2 - sb->len - 1)
		errx(1, "string too long");
	if (sb->len + len + 1 > sb->cap) {
		cap = sb->cap == 0 ? 128 : sb->cap;
		while (cap < sb->len + len + 1)
			cap *= 2;
		if ((p = realloc(sb->buf, cap)) == NULL)
			err(1, NULL);
		sb->buf = p;
		sb->cap = cap;
	}
	memcpy(sb->buf + sb->len, s, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

static void
sb_puts(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

/* The string built, to free; the buffer is empty again. */
static char *
sb_end(struct strbuf *sb)
{
	char	*s;

	if (sb->buf == NULL)
		sb_add(sb, "", 0);
	s = sb->buf;
	memset(sb, 0, sizeof(*sb));
	return (s);
}

/*
 * s as one word for a POSIX shell: as it is if it has nothing the shell
 * would take apart, else in single quotes, each single quote in it
 * written '\''.
 */
char *
sh_quote(const char *s)
{
	struct strbuf	 sb = { 0 };
	const char	*q;

	if (*s != '\0' && strspn(s, SH_SAFE) == strlen(s)) {
		sb_puts(&sb, s);
		return (sb_end(&sb));
	}
	sb_puts(&sb, "'");
	while ((q = strchr(s, '\'')) != NULL) {
		sb_add(&sb, s, q - s);
		sb_puts(&sb, "'\\''");
		s = q + 1;
	}
	sb_puts(&sb, s);
	sb_puts(&sb, "'");
	return (sb_end(&sb));
}

/* s with each '%' doubled, for ssh's expansion of %-tokens. */
char *
pct_escape(const char *s)
{
	struct strbuf	 sb = { 0 };
	const char	*q;

	while ((q = strchr(s, '%')) != NULL) {
		sb_add(&sb, s, q - s + 1);
		sb_puts(&sb, "%");
		s = q + 1;
	}
	sb_puts(&sb, s);
	return (sb_end(&sb));
}

/*
 * s as one argument of an ssh_config option: as it is if it is plain,
 * else in double quotes, with '"' and '\' escaped by a '\'.
 */
char *
cfg_quote(const char *s)
{
	struct strbuf	 sb = { 0 };

	if (*s != '\0' && strspn(s, SH_SAFE) == strlen(s)) {
		sb_puts(&sb, s);
		return (sb_end(&sb));
	}
	sb_puts(&sb, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sb_puts(&sb, "\\");
		sb_add(&sb, s, 1);
	}
	sb_puts(&sb, "\"");
	return (sb_end(&sb));
}

/*
 * What the strings of a jump may not hold to be put in these lines: a
 * newline ends an ssh_config line.  NULL if they are fine, or why
 * not.
 */
const char *
jump_check(const struct jump *j)
{
	const char	*v[] = { j->ssh, j->msh, j->host, j->port, j->user,
			    j->alias, j->known };
	size_t		 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i] == NULL || *v[i] == '\0')
			return ("an empty name");
		if (strpbrk(v[i], "\n\r") != NULL)
			return ("a name with a line break");
	}
	if ((j->cafile != NULL && strpbrk(j->cafile, "\n\r") != NULL) ||
	    (j->idfile != NULL && strpbrk(j->idfile, "\n\r") != NULL) ||
	    (j->certfile != NULL && strpbrk(j->certfile, "\n\r") != NULL))
		return ("a name with a line break");
	return (NULL);
}

/* The bastion's name for ssh: "mezite-" and the proxy, ':' made '_'. */
void
jump_alias(const struct proxy *p, char *buf, size_t len)
{
	size_t	 i;

	if (strcmp(p->port, MSH_PORT) == 0)
		(void)snprintf(buf, len, "mezite-%s", p->host);
	else
		(void)snprintf(buf, len, "mezite-%s-%s", p->host, p->port);
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == ':')
			buf[i] = '_';
}

/* The words of "msh proxy", without the host and port. */
static void
proxy_words(struct strbuf *sb, const struct jump *j)
{
	char	*q;

	q = sh_quote(j->msh);
	sb_puts(sb, q);
	free(q);
	sb_puts(sb, " proxy");
	if (j->cafile != NULL) {
		q = sh_quote(j->cafile);
		sb_puts(sb, " -C ");
		sb_puts(sb, q);
		free(q);
	}
}

/* M: msh proxy host port, for a shell, before ssh's %-expansion. */
char *
jump_proxycmd(const struct jump *j)
{
	struct strbuf	 sb = { 0 };
	char		*q;

	proxy_words(&sb, j);
	sb_puts(&sb, " ");
	q = sh_quote(j->host);
	sb_puts(&sb, q);
	free(q);
	sb_puts(&sb, " ");
	q = sh_quote(j->port);
	sb_puts(&sb, q);
	free(q);
	return (sb_end(&sb));
}

/* " -o 'name=value'", %-escaped for the ssh that runs the line. */
static void
add_opt(struct strbuf *sb, const char *name, const char *value)
{
	struct strbuf	 o = { 0 };
	char		*opt, *q, *e;

	sb_puts(&o, name);
	sb_puts(&o, "=");
	sb_puts(&o, value);
	opt = sb_end(&o);
	q = sh_quote(opt);
	e = pct_escape(q);
	sb_puts(sb, " -o ");
	sb_puts(sb, e);
	free(e);
	free(q);
	free(opt);
}

/*
 * J: the ssh to the bastion that forwards its standard input and output
 * to %h:%p, as the ProxyCommand of the ssh to the node (%-escaped for
 * it, with %h:%p left for it to expand).
 */
char *
jump_command(const struct jump *j)
{
	struct strbuf	 sb = { 0 };
	char		*m, *me, *known, *kq, *q, *e;

	q = sh_quote(j->ssh);
	e = pct_escape(q);
	sb_puts(&sb, e);
	free(e);
	free(q);

	/* M is expanded by the ssh to the bastion too. */
	m = jump_proxycmd(j);
	me = pct_escape(m);
	add_opt(&sb, "ProxyCommand", me);
	free(me);
	free(m);

	q = cfg_quote(j->user);
	add_opt(&sb, "User", q);
	free(q);
	q = cfg_quote(j->alias);
	add_opt(&sb, "HostKeyAlias", q);
	free(q);
	known = pct_escape(j->known);
	kq = cfg_quote(known);
	add_opt(&sb, "UserKnownHostsFile", kq);
	free(kq);
	free(known);
	add_opt(&sb, "StrictHostKeyChecking", "accept-new");

	sb_puts(&sb, " -W %h:%p ");
	q = sh_quote(j->alias);
	e = pct_escape(q);
	sb_puts(&sb, e);
	free(e);
	free(q);
	return (sb_end(&sb));
}

/*
 * Split msh ssh's arguments: ssh's options, as ssh(1) reads them, up to
 * the destination, except -p, which names the proxy here.  Each of
 * ssh's options is kept with its argument; -J is refused, the jump being
 * msh's.  On success, *proxyarg is -p's argument or NULL, opts[] (room
 * for argc) holds the options to pass on and *nopts their number, and
 * the destination's index is returned.  -1 and *why on failure.
 */
int
ssh_split(int argc, char *argv[], const char **proxyarg, char **opts,
    int *nopts, const char **why)
{
	const char	*a;
	char		*cut;
	int		 i, j, n = 0;

	*proxyarg = NULL;
	*why = NULL;
	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		for (j = 1; a[j] != '\0'; j++) {
			if (a[j] == 'J') {
				*why = "-J: msh makes the jump to the proxy";
				goto fail;
			}
			if (strchr(SSH_ARGOPTS, a[j]) == NULL)
				continue;	/* a flag */
			if (a[j + 1] == '\0' && i + 1 == argc) {
				*why = "an option without its argument";
				goto fail;
			}
			if (a[j] != 'p') {
				/* The option and its argument, as given. */
				opts[n++] = (char *)a;
				if (a[j + 1] == '\0')
					opts[n++] = argv[++i];
				goto next;
			}
			/* -p: the proxy; the flags before it go on. */
			*proxyarg = a[j + 1] != '\0' ? a + j + 1 : argv[++i];
			if (j > 1) {
				if ((cut = strndup(a, j)) == NULL)
					err(1, NULL);
				opts[n++] = cut;
			}
			goto next;
		}
		opts[n++] = (char *)a;
 next:
		;
	}
	if (i >= argc) {
		*why = "no destination";
		goto fail;
	}
	*nopts = n;
	return (i);
 fail:
	*nopts = n;
	return (-1);
}

/*
 * "name=value" for a file, as ssh reads an option's argument: '%'
 * doubled against its %-tokens, quoted against its splitting.
 */
static char *
file_opt(const char *name, const char *path)
{
	struct strbuf	 sb = { 0 };
	char		*e, *q;

	e = pct_escape(path);
	q = cfg_quote(e);
	sb_puts(&sb, name);
	sb_puts(&sb, "=");
	sb_puts(&sb, q);
	free(q);
	free(e);
	return (sb_end(&sb));
}

/*
 * ssh's whole command line: ssh, the jump, the login's SSH key and
 * certificate for the node (which the node's sshd takes if it trusts
 * the proxy's SSH user CA), the options given, and from
 * the destination on the rest of the arguments as given, NULL-ended.
 * It is for execvp(3): nothing of it is freed.
 */
char **
ssh_argv(const struct jump *j, char **opts, int nopts, int argc,
    char *argv[], int dest)
{
	struct strbuf	 sb = { 0 };
	char		**v, *jc;
	int		 n = 0, i;

	if ((v = calloc(3 + 4 + nopts + (argc - dest) + 1,
	    sizeof(*v))) == NULL)
		err(1, NULL);
	if ((v[n++] = strdup(j->ssh)) == NULL)
		err(1, NULL);
	if ((v[n++] = strdup("-o")) == NULL)
		err(1, NULL);
	jc = jump_command(j);
	sb_puts(&sb, "ProxyCommand=");
	sb_puts(&sb, jc);
	free(jc);
	v[n++] = sb_end(&sb);
	if (j->idfile != NULL) {
		if ((v[n++] = strdup("-o")) == NULL)
			err(1, NULL);
		v[n++] = file_opt("IdentityFile", j->idfile);
	}
	if (j->certfile != NULL) {
		if ((v[n++] = strdup("-o")) == NULL)
			err(1, NULL);
		v[n++] = file_opt("CertificateFile", j->certfile);
	}
	for (i = 0; i < nopts; i++)
		v[n++] = opts[i];
	for (i = dest; i < argc; i++)
		v[n++] = argv[i];
	v[n] = NULL;
	return (v);
}

/*
 * An ssh_config block: the bastion, then the nodes (names or patterns)
 * reached through it.  -1 if it could not be written.
 */
int
config_write(FILE *fp, const struct jump *j, char **hosts, size_t nhosts)
{
	struct strbuf	 sb = { 0 };
	char		*known, *kq, *cmd, *words, *q;
	size_t		 i;

	proxy_words(&sb, j);
	words = sb_end(&sb);
	/* %h %p are left for ssh: the proxy's HostName and Port. */
	cmd = pct_escape(words);
	free(words);
	known = pct_escape(j->known);
	kq = cfg_quote(known);

	fprintf(fp, "# Mezite proxy %s:%s as user %s, from msh config\n",
	    j->host, j->port, j->user);
	fprintf(fp, "Host %s\n", j->alias);
	fprintf(fp, "\tHostName %s\n", j->host);
	fprintf(fp, "\tPort %s\n", j->port);
	fprintf(fp, "\tUser %s\n", j->user);
	fprintf(fp, "\tProxyCommand %s %%h %%p\n", cmd);
	fprintf(fp, "\tHostKeyAlias %s\n", j->alias);
	fprintf(fp, "\tUserKnownHostsFile %s\n", kq);
	fprintf(fp, "\tStrictHostKeyChecking accept-new\n");
	free(cmd);
	free(kq);
	free(known);
	if (nhosts > 0) {
		fprintf(fp, "\nHost");
		for (i = 0; i < nhosts; i++)
			fprintf(fp, " %s", hosts[i]);
		fprintf(fp, "\n\tProxyJump %s\n", j->alias);
		if (j->idfile != NULL) {
			q = pct_escape(j->idfile);
			kq = cfg_quote(q);
			fprintf(fp, "\tIdentityFile %s\n", kq);
			free(kq);
			free(q);
		}
		if (j->certfile != NULL) {
			q = pct_escape(j->certfile);
			kq = cfg_quote(q);
			fprintf(fp, "\tCertificateFile %s\n", kq);
			free(kq);
			free(q);
		}
	}
	if (fflush(fp) == EOF || ferror(fp))
		return (-1);
	return (0);
}

/*
 * A node's name or a pattern fit for a Host line: letters, digits and
 * ".-_@" (and "*?!" for a pattern), nothing that ssh_config would split
 * or take as a token.
 */
int
host_pattern_valid(const char *s, int pattern)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > HOSTLEN)
		return (0);
	return (strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == n ||
	    (pattern && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-*?!") == n));
}
