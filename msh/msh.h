/*
 * msh: the user's command line client of mezited.
 */

#ifndef MSH_H
#define MSH_H

#include <sys/types.h>
#include <sys/stat.h>

#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#ifndef __dead
#define __dead		__attribute__((__noreturn__))
#endif

#define MSH_VERSION	"0.1"
#define MSH_TIMEOUT	30		/* s: connect to last reply */
#define MSH_PORT	"443"
#define ALPN_AUTH	"mezite-auth"

#define HOSTLEN		253		/* the longest DNS name */
#define PROXYLEN	(HOSTLEN + 2 + 1 + 5 + 1)	/* "[host]:port" */
#define USERLEN		64		/* LoginRequest.user */
#define PASSLEN		511		/* LoginRequest.password */
#define HASHLEN		(7 + 64)	/* "SHA256:" and 64 hex digits */

/* The files of the user's Mezite directory. */
#define FILE_KEY	"key.pem"
#define FILE_CERT	"cert.pem"
#define FILE_CA		"ca.pem"
#define FILE_PROXY	"proxy"
#define FILE_KNOWN	"known_proxies"
#define FILE_SESSION	"session"	/* the TLS session to resume */
/* The SSH identity for the nodes, as ssh(1) names a key's files. */
#define FILE_SSHKEY	"id_ed25519"
#define FILE_SSHPUB	"id_ed25519.pub"
#define FILE_SSHCERT	"id_ed25519-cert.pub"

/* home.c: the user's Mezite directory, ~/.mezite */
struct home {
	int		 fd;
	uid_t		 uid;
	char		 path[1024];
};

enum mode_kind {
	MODE_DIR,		/* the directory itself */
	MODE_FILE,		/* a file others may read */
	MODE_SECRET		/* a file only its owner may read */
};

#define HOME_MAXFILE	(1024 * 1024)

int		 home_open(struct home *, int);
void		 home_close(struct home *);
int		 home_read(struct home *, const char *, enum mode_kind,
		    char **, size_t *);
int		 home_replaceable(struct home *, const char *);
int		 home_write(struct home *, const char *, const void *,
		    size_t);
int		 home_remove(struct home *, const char *);
const char	*mode_check(const struct stat *, uid_t, enum mode_kind);

/* dial.c: a TLS connection to the proxy */
struct proxy {
	char		 host[HOSTLEN + 1];
	char		 port[6];
	char		 name[PROXYLEN];	/* host:port, [v6]:port */
};

struct dial {
	const struct proxy	*proxy;
	const char		*alpn;
	const char		*cafile;	/* NULL: trust on first use */
	struct home		*home;		/* its known_proxies */
	const char		*cert;		/* client cert, PEM */
	size_t			 certlen;
	const char		*key;		/* and its key */
	size_t			 keylen;
	const char		*certhash;	/* its hash: keep the session */
	int			 have_fd;	/* use fd, already connected */
	int			 fd;		/* (e.g. through a proxy) */
};

struct tlsc;

struct conn {
	int			 fd;
	struct tlsc		*tls;
	struct home		*home;		/* to keep the session in */
	char			 certhash[HASHLEN + 1];
	char			 trust[HASHLEN + 1];	/* trust_id() */
	char			 name[PROXYLEN];
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	char			 error[256];	/* the last failure */
};

const char	*proxy_parse(const char *, struct proxy *);
void		 conn_dial(struct conn *, const struct dial *);
ssize_t		 conn_read(struct conn *, void *, size_t);
int		 conn_write(struct conn *, const void *, size_t);
const char	*conn_error(struct conn *);
int		 conn_timeleft(struct conn *);
void		 conn_keep(struct conn *);
void		 conn_close(struct conn *);
int		 session_parse(char *, size_t, const char **, const char **,
		    const char **, const char **, size_t *);

/* known.c: the proxies' certificates seen before, known_proxies */
enum known {
	KNOWN_NEW,		/* no line names the proxy */
	KNOWN_MATCH,		/* a line names it with this certificate */
	KNOWN_CHANGED		/* its lines name other certificates */
};

int		 hash_valid(const char *);
enum known	 known_lookup(const char *, const char *, const char *,
		    size_t *);
void		 known_check(struct home *, const char *, const char *);

/* keys.c: the user's key pair and certificate */
struct certinfo {
	char		 name[USERLEN + 1];
	char		**roles;
	size_t		 nroles;
	time_t		 not_after;
	char		 hash[HASHLEN + 1];
};

EVP_PKEY	*key_new(void);
int		 key_spki(EVP_PKEY *, uint8_t **, size_t *);
int		 key_save(struct home *, const char *, EVP_PKEY *);
EVP_PKEY	*key_load(const char *, size_t);
X509		*cert_load(const char *, size_t);
int		 cert_info(X509 *, struct certinfo *);
void		 certinfo_free(struct certinfo *);
int		 cert_matches_key(X509 *, EVP_PKEY *);
int		 cert_signed_by(X509 *, X509 *);
const char	*fmt_time(time_t, char *, size_t);

/* sshid.c: the SSH key pair and certificate for the nodes */
#define SSHID_KEYLEN	32		/* Ed25519 */
#define SSHID_CERT_MAX	(64 * 1024)

struct sshid {
	uint8_t		 pub[SSHID_KEYLEN];
	uint8_t		 seed[SSHID_KEYLEN];
};

int		 sshid_new(struct sshid *);
void		 sshid_clear(struct sshid *);
char		*sshid_public(const struct sshid *, const char *);
int		 sshid_private(const struct sshid *, const char *, char **,
		    size_t *);
int		 sshid_cert_valid(const char *, size_t);

#endif /* MSH_H */
