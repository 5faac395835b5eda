/*
 * mezd: the agent on an internal host.  It keeps one tunnel to
 * mezited (ALPN mezite-tunnel, see proto/tunnel.proto) and serves the
 * streams the proxy opens over it to the local services it names.
 */

#ifndef MEZD_H
#define MEZD_H

#include <sys/types.h>
#include <sys/socket.h>

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>

#include "msh.h"	/* HOSTLEN, struct proxy, the dialer and the keys */

#define MEZD_VERSION	"0.1"
#define MEZD_CONF	"/etc/mezd.conf"
#define MEZD_STATEDIR	"/var/lib/mezd"
#define ALPN_TUNNEL	"mezite-tunnel"

#define NAMELEN		64		/* a node's, a service's name */
#define MAXLABELS	32		/* Hello.labels */
#define LABELKEYLEN	63
#define LABELVALLEN	255
#define MAXSERVICES	64		/* Hello.services */
#define TOKENLEN	255		/* a join token */
#define URLLEN		1023		/* the http proxy's URL */
#define CREDLEN		255		/* its user, its password */
#define LINELEN		4096		/* a line of mezd.conf */

#define KEEPALIVE	15		/* s between pings */
#define KEEPALIVE_TIMEOUT 45		/* s without a frame: drop */

/* The files of the state directory. */
#define FILE_HOSTCA	"ca.pem"	/* the host CA from JoinResponse */
#define FILE_USERCA	"user-ca.pem"

struct label {
	char		 key[LABELKEYLEN + 1];
	char		 value[LABELVALLEN + 1];
};

struct service {
	char		 name[NAMELEN + 1];
	char		 target[PROXYLEN];	/* as written */
	struct proxy	 addr;			/* host and port */
	struct sockaddr_storage ss;		/* resolved at start */
	socklen_t	 sslen;
};

/* An HTTP proxy for CONNECT: http://[user[:pass]@]host[:port][/] */
struct httpproxy {
	struct proxy	 addr;
	/* "Basic " credentials, base64 of user:pass: 4 * ceil(511 / 3) */
	char		 auth[4 * ((2 * CREDLEN + 1 + 2) / 3) + 1];
	int		 has_auth;
};

struct mezd_conf {
	char		 file[PATH_MAX];
	struct proxy	 proxy;
	int		 has_proxy;
	char		 ca[PATH_MAX];
	char		 name[NAMELEN + 1];
	char		 token[TOKENLEN + 1];	/* wiped once used */
	char		 tokenfile[PATH_MAX];
	int		 token_inline;
	char		 statedir[PATH_MAX];
	struct label	 labels[MAXLABELS];
	size_t		 nlabels;
	struct service	 services[MAXSERVICES];
	size_t		 nservices;
	int		 keepalive;
	int		 keepalive_timeout;
	char		 httpproxy_url[URLLEN + 1]; /* from the file */
	int		 has_httpproxy;
	char		 user[LOGIN_NAME_MAX];
};

/* config.c */
#define ERRLEN		(PATH_MAX + 256)	/* "file:line: message" */
int		 config_parse(const char *, const char *, size_t,
		    struct mezd_conf *, char *, size_t);
int		 config_load(const char *, struct mezd_conf *, char *,
		    size_t);
void		 config_clear(struct mezd_conf *);
void		 config_print(FILE *, const struct mezd_conf *);
int		 config_target(const char *, struct proxy *);

/* httpproxy.c: the URL, NO_PROXY, and the CONNECT exchange */
#define CONNRESP_MAX	8192		/* the proxy's answer's header */
#define CONNREQ_MAX	2048		/* our request */

struct connectresp {
	int		 status;
	size_t		 hdrlen;	/* the header's, blank line in */
	char		 line[128];	/* the status line, printable */
};

const char	*httpproxy_parse(const char *, struct httpproxy *);
int		 no_proxy_match(const char *, const char *, const char *);
int		 httpproxy_select(const struct mezd_conf *,
		    struct httpproxy *, char *, size_t);
int		 connectreq_build(const struct httpproxy *,
		    const struct proxy *, char *, size_t);
int		 connectresp_parse(const char *, size_t,
		    struct connectresp *, const char **);

/* join.c: Join and Renew, in a child of their own */
struct creds {
	char		*cert;		/* PEM */
	size_t		 certlen;
	char		*key;		/* PEM, wiped when freed */
	size_t		 keylen;
	time_t		 not_before;
	time_t		 not_after;
};

__dead void	 join_child(const struct mezd_conf *, struct home *,
		    const struct creds *);
int		 creds_load(const struct mezd_conf *, struct home *,
		    struct creds *, char *, size_t);
void		 creds_free(struct creds *);

/* tunnel.c */
struct event_base;
void		 tunnel_init(struct event_base *, const struct mezd_conf *,
		    const struct httpproxy *, int);
void		 tunnel_set_creds(const struct creds *);
void		 tunnel_start(void);
void		 tunnel_renewed(void);
void		 tunnel_shutdown(void);

/* backoff.c */
int		 backoff_ms(unsigned int *, int);

#endif /* MEZD_H */
