/*
 * sshcmd.c: the OpenSSH command lines and configuration that reach a
 * node through the proxy's SSH bastion.
 */

#ifndef MSH_SSHCMD_H
#define MSH_SSHCMD_H

#include <stdio.h>

#define ALPN_SSH	"mezite-ssh"
#define FILE_SSH_KNOWN	"ssh_known_hosts"

struct strbuf {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

/* The bastion, as the ssh commands name it. */
struct jump {
	const char	*ssh;		/* the ssh program */
	const char	*msh;		/* msh's absolute path */
	const char	*cafile;	/* msh proxy -C, or NULL */
	const char	*host;		/* the proxy */
	const char	*port;
	const char	*user;		/* the Mezite user */
	const char	*alias;		/* the bastion, to ssh */
	const char	*known;		/* its known_hosts file */
	const char	*idfile;	/* the nodes' key, or NULL */
	const char	*certfile;	/* and its certificate, or NULL */
};

char		*sh_quote(const char *);
char		*pct_escape(const char *);
char		*cfg_quote(const char *);
const char	*jump_check(const struct jump *);
void		 jump_alias(const struct proxy *, char *, size_t);
char		*jump_proxycmd(const struct jump *);
char		*jump_command(const struct jump *);
int		 ssh_split(int, char *[], const char **, char **, int *,
		    const char **);
char		**ssh_argv(const struct jump *, char **, int, int, char *[],
		    int);
int		 config_write(FILE *, const struct jump *, char **, size_t);
int		 host_pattern_valid(const char *, int);

#endif /* MSH_SSHCMD_H */
