/*
 * msh: log in to a Mezite proxy and use what it gives access to.
 *
 *	msh login [-C cafile] [-F fd] [-p proxy] [user]
 *	msh logout
 *	msh status [-C cafile] [-p proxy]
 *	msh ls [-j] [-C cafile] [-p proxy]
 *	msh proxy [-C cafile] [-p proxy] [host port]
 *	msh ssh [-p proxy] [ssh options] [login@]node [command]
 *	msh config [-C cafile] [-n pattern] [-p proxy]
 */

#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <readpassphrase.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "msh.h"
#include "bridge.h"
#include "rpc.h"
#include "sshcmd.h"
#include "tlsc.h"
#include "auth.pb-c.h"

#define EXIT_SSH	255	/* ssh(1)'s own failures, and msh proxy's */
#define MAXPATTERNS	64	/* msh config -n */

struct cmd {
	const char	*name;
	int		(*fn)(int, char *[]);
};

/* The user's login, as kept in the Mezite directory. */
struct login {
	char		*certpem;
	size_t		 certlen;
	char		*keypem;	/* NULL unless asked for */
	size_t		 keylen;
	struct certinfo	 ci;
};

/*
 * What msh exits with when it fails: 1, or 255 for proxy and ssh, as
 * ssh(1) does and its ProxyCommand should.  msh's own code (dialing,
 * the checks of ~/.mezite) says errx(1, ...); exit_hook() turns that
 * into fail_status unless the command has succeeded (done).  And the
 * flags of standard input and output, for msh proxy to put back.
 */
static int	 fail_status = 1;
static int	 done;
static int	 stdin_flags = -1, stdout_flags = -1;

__dead static void	 usage(void);
static int		 cmd_login(int, char *[]);
static int		 cmd_logout(int, char *[]);
static int		 cmd_status(int, char *[]);
static void		 proxy_find(struct home *, const char *,
			    struct proxy *);
static const char	*ca_find(const char *);
static void		 password_tty(const char *, const struct proxy *,
			    char *, size_t);
static void		 password_fd(const char *, char *, size_t);
static void		 print_roles(FILE *, char **, size_t);
static void		 login_failed(const struct rpc_status *);
static int		 cmd_ls(int, char *[]);
static int		 cmd_proxy(int, char *[]);
static int		 cmd_ssh(int, char *[]);
static int		 cmd_config(int, char *[]);
static void		 exit_hook(void);
static void		 fail_with(int, const char *);
static void		 login_load(struct home *, struct login *, int);
static void		 login_free(struct login *);
static void		 dial_login(struct conn *, struct dial *,
			    struct home *, const struct proxy *,
			    const char *, const char *, const struct login *);
static Mezite__Auth__V1__ListNodesResponse
			*list_nodes(struct home *, const struct proxy *,
			    const char *, const struct login *);
static void		 print_json(const char *);
static void		 print_list(char **, size_t, char *, size_t);
static char		*self_path(const char *);
static void		 jump_fill(struct jump *, struct home *,
			    const struct proxy *, const struct login *,
			    const char *, char *, size_t);

static const struct cmd	 cmds[] = {
	{ "login",	cmd_login },
	{ "logout",	cmd_logout },
	{ "status",	cmd_status },
	{ "ls",		cmd_ls },
	{ "proxy",	cmd_proxy },
	{ "ssh",	cmd_ssh },
	{ "config",	cmd_config },
};

__dead static void
usage(void)
{
	fprintf(stderr,
	    "usage: %s login [-C cafile] [-F fd] [-p host[:port]] [user]\n"
	    "       %s logout\n"
	    "       %s status [-C cafile] [-p host[:port]]\n"
	    "       %s ls [-j] [-C cafile] [-p host[:port]]\n"
	    "       %s proxy [-C cafile] [-p host[:port]] [host port]\n"
	    "       %s ssh [-p host[:port]] [ssh-options] [login@]node "
	    "[command ...]\n"
	    "       %s config [-C cafile] [-n pattern] [-p host[:port]]\n",
	    getprogname(), getprogname(), getprogname(), getprogname(),
	    getprogname(), getprogname(), getprogname());
	exit(1);
}

int
main(int argc, char *argv[])
{
	size_t	 i;

	/* A proxy that goes away mid-write is an error, not a signal. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		err(1, "signal");
	if (argc < 2)
		usage();
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		/* getopt(3) names argv[0] in its complaints: msh. */
		argv[1] = argv[0];
		return (cmds[i].fn(argc - 1, argv + 1));
	}
	usage();
}

/*
 * The proxy: -p, else $MEZITE_PROXY, else the one of the last login.
 */
static void
proxy_find(struct home *h, const char *arg, struct proxy *p)
{
	const char	*why;
	char		*buf = NULL;
	size_t		 len;
	int		 rv;

	if (arg == NULL && (arg = getenv("MEZITE_PROXY")) != NULL &&
	    *arg == '\0')
		arg = NULL;
	if (arg == NULL) {
		if (h == NULL || (rv = home_read(h, FILE_PROXY, MODE_FILE,
		    &buf, &len)) == 1)
			errx(1, "no proxy: use -p");
		if (rv == -1)
			exit(1);
		buf[strcspn(buf, "\n")] = '\0';
		arg = buf;
	}
	if ((why = proxy_parse(arg, p)) != NULL)
		errx(1, "proxy %s: %s", arg, why);
	free(buf);
}

/* The CA file to verify the proxy with: -C, else $MEZITE_CA, or none. */
static const char *
ca_find(const char *arg)
{
	if (arg == NULL && (arg = getenv("MEZITE_CA")) != NULL &&
	    *arg == '\0')
		arg = NULL;
	return (arg);
}

/*
 * The password, up to PASSLEN bytes, into buf of PASSLEN + 2 bytes:
 * one to tell a longer one, one for the NUL.
 */

/* From the terminal, without echo. */
static void
password_tty(const char *user, const struct proxy *p, char *buf,
    size_t len)
{
	char	 prompt[USERLEN + PROXYLEN + 32];

	snprintf(prompt, sizeof(prompt), "Password for %s at %s: ", user,
	    p->name);
	if (readpassphrase(prompt, buf, len, RPP_REQUIRE_TTY) == NULL) {
		if (errno == ENOTTY || errno == ENXIO)
			errx(1, "no terminal to read the password from; "
			    "see -F");
		err(1, "cannot read the password");
	}
	if (strlen(buf) > PASSLEN) {
		explicit_bzero(buf, len);
		errx(1, "the password is too long");
	}
}

/*
 * The first line of a descriptor, read a byte at a time so that
 * nothing after it is taken from a shared file.
 */
static void
password_fd(const char *arg, char *buf, size_t len)
{
	const char	*errstr;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd;
	char		 ch;

	fd = strtonum(arg, 0, INT_MAX, &errstr);
	if (errstr != NULL)
		errx(1, "descriptor %s is %s", arg, errstr);
	for (;;) {
		if ((r = read(fd, &ch, 1)) == -1) {
			if (errno == EINTR)
				continue;
			explicit_bzero(buf, len);
			err(1, "reading the password from descriptor %d", fd);
		}
		if (r == 0 || ch == '\n')
			break;
		if (ch == '\0' || n == PASSLEN) {
			explicit_bzero(buf, len);
			errx(1, "the password on descriptor %d is %s", fd,
			    ch == '\0' ? "not text" : "too long");
		}
		buf[n++] = ch;
	}
	buf[n] = '\0';
	explicit_bzero(&ch, sizeof(ch));
}

static void
print_roles(FILE *fp, char **roles, size_t n)
{
	char	 buf[256];
	size_t	 i;

	if (n == 0) {
		fprintf(fp, "no roles");
		return;
	}
	for (i = 0; i < n; i++) {
		printable(roles[i], strlen(roles[i]), buf, sizeof(buf));
		fprintf(fp, "%s%s", i > 0 ? ", " : "", buf);
	}
}

static void
login_failed(const struct rpc_status *st)
{
	switch (st->code) {
	case GRPC_UNAUTHENTICATED:
		errx(1, "login failed: %s", st->message[0] != '\0' ?
		    st->message : "wrong user or password");
	case GRPC_RESOURCE_EXHAUSTED:
		errx(1, "login refused: %s", st->message[0] != '\0' ?
		    st->message : "too many failures; try again later");
	default:
		errx(1, "login failed: %s%s%s", grpc_code_name(st->code),
		    st->message[0] != '\0' ? ": " : "", st->message);
	}
}

static int
cmd_login(int argc, char *argv[])
{
	Mezite__Auth__V1__LoginRequest	 req;
	Mezite__Auth__V1__LoginResponse	*res;
	struct home			 home;
	struct proxy			 proxy;
	struct dial			 d;
	struct conn			 conn;
	struct certinfo			 ci;
	struct rpc_status		 st;
	struct passwd			*pw;
	struct rpc			*r;
	struct sshid			 sid;
	EVP_PKEY			*key;
	X509				*cert, *ca;
	const char			*proxyarg = NULL, *cafile = NULL;
	const char			*fdarg = NULL, *user;
	char				 pass[PASSLEN + 2];
	char				 name[USERLEN + 1];
	char				 when[64], line[PROXYLEN + 1];
	char				*sshpub, *sshpriv, note[256];
	uint8_t				*spki;
	size_t				 spkilen, sshprivlen;
	int				 ch, sshcert;

	while ((ch = getopt(argc, argv, "C:F:p:")) != -1) {
		switch (ch) {
		case 'C':
			cafile = optarg;
			break;
		case 'F':
			fdarg = optarg;
			break;
		case 'p':
			proxyarg = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		usage();

	if (argc == 1)
		user = argv[0];
	else if ((user = getenv("USER")) == NULL || *user == '\0') {
		if ((pw = getpwuid(getuid())) == NULL)
			errx(1, "who are you? (uid %u)", (unsigned)getuid());
		user = pw->pw_name;
	}
	if (*user == '\0' || strlen(user) > USERLEN)
		errx(1, "user name empty or too long");
	cafile = ca_find(cafile);

	if (home_open(&home, 1) != 0)
		exit(1);
	proxy_find(&home, proxyarg, &proxy);
	/* Find out now, not once the password is sent, what cannot be kept. */
	if (home_replaceable(&home, FILE_SESSION) == -1 ||
	    home_replaceable(&home, FILE_KEY) == -1 ||
	    home_replaceable(&home, FILE_CERT) == -1 ||
	    home_replaceable(&home, FILE_CA) == -1 ||
	    home_replaceable(&home, FILE_PROXY) == -1 ||
	    home_replaceable(&home, FILE_SSHKEY) == -1 ||
	    home_replaceable(&home, FILE_SSHPUB) == -1 ||
	    home_replaceable(&home, FILE_SSHCERT) == -1)
		exit(1);

	if (fdarg != NULL)
		password_fd(fdarg, pass, sizeof(pass));
	else
		password_tty(user, &proxy, pass, sizeof(pass));
	if (pass[0] == '\0')
		errx(1, "empty password");

	if ((key = key_new()) == NULL)
		errx(1, "cannot make a key pair");
	if (key_spki(key, &spki, &spkilen) == -1)
		errx(1, "cannot encode the public key");
	/* The nodes' key: the proxy certifies it for the role's logins. */
	if (sshid_new(&sid) == -1 ||
	    (sshpub = sshid_public(&sid, user)) == NULL)
		errx(1, "cannot make an SSH key pair");

	memset(&d, 0, sizeof(d));
	d.proxy = &proxy;
	d.alpn = ALPN_AUTH;
	d.cafile = cafile;
	d.home = &home;
	conn_dial(&conn, &d);

	mezite__auth__v1__login_request__init(&req);
	req.user = (char *)user;
	req.password = pass;
	req.public_key.data = spki;
	req.public_key.len = spkilen;
	req.ssh_public_key = sshpub;
	r = rpc_open(&conn);
	rpc_send(r, &mezite__auth__v1__auth__descriptor, "Login", &req.base);
	explicit_bzero(pass, sizeof(pass));
	res = (Mezite__Auth__V1__LoginResponse *)rpc_wait(r, &st);
	rpc_close(r);
	conn_close(&conn);
	OPENSSL_free(spki);
	if (res == NULL)
		login_failed(&st);

	/*
	 * A session resumes as the certificate it was made with: the one
	 * kept goes with the certificate it no longer matches.
	 */
	if (home_remove(&home, FILE_SESSION) == -1)
		exit(1);

	/* What is kept must be what the key can use. */
	if ((cert = cert_load((const char *)res->certificate.data,
	    res->certificate.len)) == NULL || cert_info(cert, &ci) == -1)
		errx(1, "%s: the certificate from the proxy is unusable",
		    proxy.name);
	if (!cert_matches_key(cert, key))
		errx(1, "%s: the certificate from the proxy is for "
		    "another key", proxy.name);
	if ((ca = cert_load((const char *)res->ca_certificate.data,
	    res->ca_certificate.len)) == NULL || !cert_signed_by(cert, ca))
		errx(1, "%s: the proxy's user CA did not sign the certificate",
		    proxy.name);

	/* A certificate is a line; none is not a failure: say why. */
	sshcert = res->ssh_certificate[0] != '\0';
	if (sshcert && !sshid_cert_valid(res->ssh_certificate,
	    strlen(res->ssh_certificate)))
		errx(1, "%s: the SSH certificate from the proxy is unusable",
		    proxy.name);
	if (sshid_private(&sid, user, &sshpriv, &sshprivlen) == -1)
		errx(1, "cannot encode the SSH private key");
	sshid_clear(&sid);
	if (home_write(&home, FILE_SSHKEY, sshpriv, sshprivlen) == -1)
		exit(1);
	freezero(sshpriv, sshprivlen);
	if ((size_t)snprintf(note, sizeof(note), "%s\n", sshpub) >=
	    sizeof(note) || home_write(&home, FILE_SSHPUB, note,
	    strlen(note)) == -1)
		errx(1, "%s/%s: cannot write it", home.path, FILE_SSHPUB);
	free(sshpub);
	if (sshcert) {
		if ((sshpub = malloc(strlen(res->ssh_certificate) + 2)) ==
		    NULL)
			err(1, NULL);
		(void)snprintf(sshpub, strlen(res->ssh_certificate) + 2,
		    "%s\n", res->ssh_certificate);
		if (home_write(&home, FILE_SSHCERT, sshpub,
		    strlen(sshpub)) == -1)
			exit(1);
		free(sshpub);
	} else if (home_remove(&home, FILE_SSHCERT) == -1)
		exit(1);

	if (key_save(&home, FILE_KEY, key) == -1 ||
	    home_write(&home, FILE_CERT, res->certificate.data,
	    res->certificate.len) == -1 ||
	    home_write(&home, FILE_CA, res->ca_certificate.data,
	    res->ca_certificate.len) == -1)
		exit(1);
	snprintf(line, sizeof(line), "%s\n", proxy.name);
	if (home_write(&home, FILE_PROXY, line, strlen(line)) == -1)
		exit(1);

	printable(ci.name, strlen(ci.name), name, sizeof(name));
	printf("logged in as %s (", name);
	if (ci.nroles > 0)
		printf("roles: ");
	print_roles(stdout, ci.roles, ci.nroles);
	printf(") until %s\n", fmt_time(ci.not_after, when, sizeof(when)));
	if (!sshcert) {
		printable(res->ssh_certificate_note,
		    strlen(res->ssh_certificate_note), note, sizeof(note));
		warnx("%s", note[0] != '\0' ? note :
		    "no SSH certificate from the proxy");
	}

	certinfo_free(&ci);
	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(key);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	home_close(&home);
	return (0);
}

static int
cmd_logout(int argc, char *argv[])
{
	struct home	 home;
	const char	*files[] = { FILE_SESSION, FILE_KEY, FILE_CERT,
			    FILE_CA, FILE_SSHKEY, FILE_SSHPUB, FILE_SSHCERT };
	size_t		 i;
	int		 rv, removed = 0, failed = 0;

	if (getopt(argc, argv, "") != -1)
		usage();
	if (argc != optind)
		usage();
	if ((rv = home_open(&home, 0)) == -1)
		exit(1);
	if (rv == 1) {
		printf("not logged in\n");
		return (0);
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		switch (home_remove(&home, files[i])) {
		case 0:
			removed = 1;
			break;
		case -1:
			failed = 1;
			break;
		}
	}
	home_close(&home);
	if (failed)
		return (1);
	printf("%s\n", removed ? "logged out" : "not logged in");
	return (0);
}

static int
cmd_status(int argc, char *argv[])
{
	Mezite__Auth__V1__WhoAmIRequest	 req;
	Mezite__Auth__V1__WhoAmIResponse	*res;
	struct home			 home;
	struct proxy			 proxy;
	struct dial			 d;
	struct conn			 conn;
	struct certinfo			 ci;
	struct rpc_status		 st;
	struct rpc			*r;
	EVP_PKEY			*key;
	X509				*cert;
	const char			*proxyarg = NULL, *cafile = NULL;
	char				*certpem, *keypem;
	char				 name[USERLEN + 1], when[64];
	char				 buf[256];
	size_t				 certlen, keylen;
	int				 ch, rv, expired;

	while ((ch = getopt(argc, argv, "C:p:")) != -1) {
		switch (ch) {
		case 'C':
			cafile = optarg;
			break;
		case 'p':
			proxyarg = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();
	cafile = ca_find(cafile);

	if ((rv = home_open(&home, 0)) == -1)
		exit(1);
	if (rv == 1 || (rv = home_read(&home, FILE_CERT, MODE_FILE, &certpem,
	    &certlen)) == 1) {
		printf("not logged in\n");
		return (1);
	}
	if (rv == -1)
		exit(1);
	if ((rv = home_read(&home, FILE_KEY, MODE_SECRET, &keypem,
	    &keylen)) == 1)
		errx(1, "%s/%s is missing: log in again", home.path,
		    FILE_KEY);
	if (rv == -1)
		exit(1);

	if ((cert = cert_load(certpem, certlen)) == NULL ||
	    cert_info(cert, &ci) == -1)
		errx(1, "%s/%s is not a Mezite certificate", home.path,
		    FILE_CERT);
	if ((key = key_load(keypem, keylen)) == NULL)
		errx(1, "%s/%s is not a private key", home.path, FILE_KEY);
	if (!cert_matches_key(cert, key))
		errx(1, "%s/%s is not the key of %s: log in again", home.path,
		    FILE_KEY, FILE_CERT);
	EVP_PKEY_free(key);
	X509_free(cert);

	expired = ci.not_after <= time(NULL);
	printable(ci.name, strlen(ci.name), name, sizeof(name));
	printf("user:        %s\n", name);
	printf("roles:       ");
	print_roles(stdout, ci.roles, ci.nroles);
	printf("\n%s %s\n", expired ? "expired:    " : "valid until:",
	    fmt_time(ci.not_after, when, sizeof(when)));
	printf("certificate: %s\n", ci.hash);
	proxy_find(&home, proxyarg, &proxy);
	printf("proxy:       %s\n", proxy.name);
	if (expired) {
		fflush(stdout);
		errx(1, "the certificate has expired: log in again");
	}
	fflush(stdout);

	memset(&d, 0, sizeof(d));
	d.proxy = &proxy;
	d.alpn = ALPN_AUTH;
	d.cafile = cafile;
	d.home = &home;
	d.cert = certpem;
	d.certlen = certlen;
	d.key = keypem;
	d.keylen = keylen;
	d.certhash = ci.hash;
	conn_dial(&conn, &d);
	explicit_bzero(keypem, keylen);
	free(keypem);
	free(certpem);

	mezite__auth__v1__who_am_irequest__init(&req);
	r = rpc_open(&conn);
	res = (Mezite__Auth__V1__WhoAmIResponse *)rpc_call(r,
	    &mezite__auth__v1__auth__descriptor, "WhoAmI", &req.base, &st);
	rpc_close(r);
	conn_close(&conn);
	if (res == NULL)
		errx(1, "%s: WhoAmI: %s%s%s", proxy.name,
		    grpc_code_name(st.code), st.message[0] != '\0' ? ": " : "",
		    st.message);

	rv = 0;
	if (res->kind[0] == '\0') {
		printf("server sees: no certificate\n");
		rv = 1;
	} else {
		printable(res->kind, strlen(res->kind), buf, sizeof(buf));
		printf("server sees: %s ", buf);
		printable(res->name, strlen(res->name), buf, sizeof(buf));
		printf("%s (", buf);
		if (res->n_roles > 0)
			printf("roles: ");
		print_roles(stdout, res->roles, res->n_roles);
		printf(")");
		if (res->address[0] != '\0') {
			printable(res->address, strlen(res->address), buf,
			    sizeof(buf));
			printf(" from %s", buf);
		}
		printf("\n");
		if (strcasecmp(res->fingerprint, ci.hash) != 0) {
			printable(res->fingerprint, strlen(res->fingerprint),
			    buf, sizeof(buf));
			printf("server sees another certificate: %s\n", buf);
			rv = 1;
		}
	}
	certinfo_free(&ci);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	home_close(&home);
	return (rv);
}

/* See fail_status. */
static void
exit_hook(void)
{
	if (stdin_flags != -1)
		(void)fcntl(STDIN_FILENO, F_SETFL, stdin_flags);
	if (stdout_flags != -1)
		(void)fcntl(STDOUT_FILENO, F_SETFL, stdout_flags);
	if (!done && fail_status != 1)
		_exit(fail_status);
}

/*
 * From now on msh fails with status, its messages named prog ("msh
 * proxy"): err(3) says the name glibc keeps, getprogname(3) libbsd's.
 */
static void
fail_with(int status, const char *prog)
{
	fail_status = status;
	if (atexit(exit_hook) != 0)
		errx(1, "atexit failed");
#ifdef __GLIBC__
	program_invocation_short_name = (char *)prog;
#endif
	setprogname(prog);
}

/*
 * The login kept in the Mezite directory, its key too if with_key: exit
 * if there is none, it is broken or has expired.
 */
static void
login_load(struct home *h, struct login *l, int with_key)
{
	X509		*cert;
	EVP_PKEY	*key;
	char		 when[64];
	int		 rv;

	memset(l, 0, sizeof(*l));
	if ((rv = home_open(h, 0)) == -1)
		exit(1);
	if (rv == 1 || (rv = home_read(h, FILE_CERT, MODE_FILE, &l->certpem,
	    &l->certlen)) == 1)
		errx(1, "not logged in: run msh login");
	if (rv == -1)
		exit(1);
	if ((cert = cert_load(l->certpem, l->certlen)) == NULL ||
	    cert_info(cert, &l->ci) == -1)
		errx(1, "%s/%s is not a Mezite certificate: run msh login",
		    h->path, FILE_CERT);
	if (l->ci.not_after <= time(NULL))
		errx(1, "the certificate expired at %s: run msh login",
		    fmt_time(l->ci.not_after, when, sizeof(when)));
	if (with_key) {
		if ((rv = home_read(h, FILE_KEY, MODE_SECRET, &l->keypem,
		    &l->keylen)) == 1)
			errx(1, "%s/%s is missing: run msh login", h->path,
			    FILE_KEY);
		if (rv == -1)
			exit(1);
		if ((key = key_load(l->keypem, l->keylen)) == NULL)
			errx(1, "%s/%s is not a private key", h->path,
			    FILE_KEY);
		if (!cert_matches_key(cert, key))
			errx(1, "%s/%s is not the key of %s: run msh login",
			    h->path, FILE_KEY, FILE_CERT);
		EVP_PKEY_free(key);
	}
	X509_free(cert);
}

static void
login_free(struct login *l)
{
	if (l->keypem != NULL) {
		explicit_bzero(l->keypem, l->keylen);
		free(l->keypem);
	}
	free(l->certpem);
	certinfo_free(&l->ci);
	memset(l, 0, sizeof(*l));
}

/* Dial the proxy for alpn with the login's certificate. */
static void
dial_login(struct conn *c, struct dial *d, struct home *h,
    const struct proxy *p, const char *alpn, const char *cafile,
    const struct login *l)
{
	memset(d, 0, sizeof(*d));
	d->proxy = p;
	d->alpn = alpn;
	d->cafile = cafile;
	d->home = h;
	d->cert = l->certpem;
	d->certlen = l->certlen;
	d->key = l->keypem;
	d->keylen = l->keylen;
	d->certhash = l->ci.hash;
	conn_dial(c, d);
}

/* The nodes the user may log in to, as the proxy says. */
static Mezite__Auth__V1__ListNodesResponse *
list_nodes(struct home *h, const struct proxy *p, const char *cafile,
    const struct login *l)
{
	Mezite__Auth__V1__ListNodesRequest	 req;
	Mezite__Auth__V1__ListNodesResponse	*res;
	struct dial				 d;
	struct conn				 conn;
	struct rpc_status			 st;
	struct rpc				*r;

	dial_login(&conn, &d, h, p, ALPN_AUTH, cafile, l);
	mezite__auth__v1__list_nodes_request__init(&req);
	r = rpc_open(&conn);
	res = (Mezite__Auth__V1__ListNodesResponse *)rpc_call(r,
	    &mezite__auth__v1__auth__descriptor, "ListNodes", &req.base, &st);
	rpc_close(r);
	conn_close(&conn);
	if (res == NULL) {
		if (st.code == GRPC_UNAUTHENTICATED ||
		    st.code == GRPC_PERMISSION_DENIED)
			errx(1, "%s: %s: run msh login", p->name,
			    st.message[0] != '\0' ? st.message :
			    grpc_code_name(st.code));
		errx(1, "%s: ListNodes: %s%s%s", p->name,
		    grpc_code_name(st.code), st.message[0] != '\0' ? ": " : "",
		    st.message);
	}
	return (res);
}

/* A JSON string. */
static void
print_json(const char *s)
{
	const unsigned char	*p;

	putchar('"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* "a,b,c" of printable strings into buf, or "-". */
static void
print_list(char **v, size_t n, char *buf, size_t len)
{
	char	 one[256];
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		printable(v[i], strlen(v[i]), one, sizeof(one));
		if (i > 0)
			(void)strlcat(buf, ",", len);
		(void)strlcat(buf, one, len);
	}
	if (buf[0] == '\0')
		(void)strlcpy(buf, "-", len);
}

static int
cmd_ls(int argc, char *argv[])
{
	Mezite__Auth__V1__ListNodesResponse	*res;
	const Mezite__Auth__V1__Node		*n;
	struct home				 home;
	struct proxy				 proxy;
	struct login				 l;
	const char				*proxyarg = NULL;
	const char				*cafile = NULL;
	char					**kv;
	char					 name[HOSTLEN + 1];
	char					 online[64];
	char					 labels[1024], logins[1024];
	char					 services[1024], when[64];
	size_t					 i, k, width = 4;
	int					 ch, json = 0;

	while ((ch = getopt(argc, argv, "C:jp:")) != -1) {
		switch (ch) {
		case 'C':
			cafile = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'p':
			proxyarg = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();
	cafile = ca_find(cafile);
	login_load(&home, &l, 1);
	proxy_find(&home, proxyarg, &proxy);
	res = list_nodes(&home, &proxy, cafile, &l);
	login_free(&l);
	home_close(&home);

	if (json) {
		printf("[");
		for (i = 0; i < res->n_nodes; i++) {
			n = res->nodes[i];
			printf("%s{\"name\":", i > 0 ? "," : "");
			print_json(n->name);
			printf(",\"online\":%s,\"since\":%lld,\"joined\":%lld,"
			    "\"labels\":{", n->online ? "true" : "false",
			    (long long)n->since, (long long)n->joined);
			for (k = 0; k < n->n_labels; k++) {
				printf("%s", k > 0 ? "," : "");
				print_json(n->labels[k]->key);
				printf(":");
				print_json(n->labels[k]->value);
			}
			printf("},\"logins\":[");
			for (k = 0; k < n->n_logins; k++) {
				printf("%s", k > 0 ? "," : "");
				print_json(n->logins[k]);
			}
			printf("],\"services\":[");
			for (k = 0; k < n->n_services; k++) {
				printf("%s", k > 0 ? "," : "");
				print_json(n->services[k]);
			}
			printf("]}");
		}
		printf("]\n");
	} else {
		for (i = 0; i < res->n_nodes; i++)
			if (strlen(res->nodes[i]->name) > width)
				width = strlen(res->nodes[i]->name);
		if (width > 32)
			width = 32;
		printf("%-*s %-26s %-20s %-16s %s\n", (int)width, "NODE",
		    "ONLINE", "LABELS", "LOGINS", "SERVICES");
		for (i = 0; i < res->n_nodes; i++) {
			n = res->nodes[i];
			printable(n->name, strlen(n->name), name,
			    sizeof(name));
			if (n->online)
				(void)strlcpy(online, "yes", sizeof(online));
			else if (n->since > 0)
				(void)snprintf(online, sizeof(online),
				    "since %s", fmt_time(n->since, when,
				    sizeof(when)));
			else
				(void)strlcpy(online, "no", sizeof(online));
			if ((kv = calloc(n->n_labels + 1, sizeof(*kv))) ==
			    NULL)
				err(1, NULL);
			for (k = 0; k < n->n_labels; k++)
				if (asprintf(&kv[k], "%s=%s",
				    n->labels[k]->key,
				    n->labels[k]->value) == -1)
					err(1, NULL);
			print_list(kv, n->n_labels, labels, sizeof(labels));
			for (k = 0; k < n->n_labels; k++)
				free(kv[k]);
			free(kv);
			print_list(n->logins, n->n_logins, logins,
			    sizeof(logins));
			print_list(n->services, n->n_services, services,
			    sizeof(services));
			printf("%-*s %-26s %-20s %-16s %s\n", (int)width, name,
			    online, labels, logins, services);
		}
	}
	protobuf_c_message_free_unpacked(&res->base, NULL);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(1, "stdout");
	return (0);
}

static int
cmd_proxy(int argc, char *argv[])
{
	struct home	 home;
	struct proxy	 proxy;
	struct login	 l;
	struct dial	 d;
	struct conn	 conn;
	const char	*proxyarg = NULL, *cafile = NULL, *why;
	char		 arg[PROXYLEN + 8], errbuf[512];
	int		 ch;

	fail_with(EXIT_SSH, "msh proxy");
	while ((ch = getopt(argc, argv, "C:p:")) != -1) {
		switch (ch) {
		case 'C':
			cafile = optarg;
			break;
		case 'p':
			proxyarg = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 0 && argc != 2)
		usage();
	cafile = ca_find(cafile);
	login_load(&home, &l, 1);
	if (argc == 2) {
		/* OpenSSH's %h %p: a bare host, v6 addresses unbracketed. */
		if ((size_t)snprintf(arg, sizeof(arg), strchr(argv[0], ':') !=
		    NULL ? "[%s]:%s" : "%s:%s", argv[0], argv[1]) >=
		    sizeof(arg))
			errx(1, "host name too long");
		if ((why = proxy_parse(arg, &proxy)) != NULL)
			errx(1, "proxy %s: %s", arg, why);
	} else
		proxy_find(&home, proxyarg, &proxy);

	dial_login(&conn, &d, &home, &proxy, ALPN_SSH, cafile, &l);
	login_free(&l);

	if (bridge_nonblock(STDIN_FILENO, &stdin_flags) == -1)
		err(1, "standard input");
	if (bridge_nonblock(STDOUT_FILENO, &stdout_flags) == -1)
		err(1, "standard output");
	if (bridge(&conn, STDIN_FILENO, STDOUT_FILENO, errbuf,
	    sizeof(errbuf)) == -1)
		errx(1, "%s: %s", proxy.name, errbuf);
	/* What is left of the session goes unheard: it has ended. */
	if (conn.tls != NULL) {
		conn_keep(&conn);
		tlsc_free(conn.tls);
		conn.tls = NULL;
	}
	conn_close(&conn);
	home_close(&home);
	done = 1;
	return (0);
}

/* msh's own absolute path, to run it again as a ProxyCommand. */
static char *
self_path(const char *argv0)
{
	char	 buf[PATH_MAX];
	char	*p;
	ssize_t	 n;

	if ((n = readlink("/proc/self/exe", buf, sizeof(buf) - 1)) > 0 &&
	    (size_t)n < sizeof(buf) - 1 && buf[0] == '/') {
		buf[n] = '\0';
		if ((p = strdup(buf)) == NULL)
			err(1, NULL);
		return (p);
	}
	if (strchr(argv0, '/') != NULL && (p = realpath(argv0, NULL)) !=
	    NULL)
		return (p);
	errx(1, "cannot tell where msh is: run it by its path");
}

/*
 * The bastion's jump: msh's path, the proxy, the user, the alias and
 * the known hosts file in the Mezite directory (absolute: ssh may run
 * elsewhere).
 */
static void
jump_fill(struct jump *j, struct home *h, const struct proxy *p,
    const struct login *l, const char *argv0, char *alias, size_t aliaslen)
{
	struct stat	 sb;
	char		*dir, *known, *path;
	const char	*why;

	memset(j, 0, sizeof(*j));
	if ((j->ssh = getenv("MSH_SSH")) == NULL || *j->ssh == '\0')
		j->ssh = "ssh";
	j->msh = self_path(argv0);
	j->host = p->host;
	j->port = p->port;
	j->user = l->ci.name;
	jump_alias(p, alias, aliaslen);
	j->alias = alias;
	if ((dir = realpath(h->path, NULL)) == NULL)
		err(1, "%s", h->path);
	if (asprintf(&known, "%s/%s", dir, FILE_SSH_KNOWN) == -1)
		err(1, NULL);
	j->known = known;
	/* The login's SSH key and certificate, for the node's sshd. */
	if (fstatat(h->fd, FILE_SSHKEY, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if ((why = mode_check(&sb, h->uid, MODE_SECRET)) != NULL)
			errx(1, "%s/%s %s", h->path, FILE_SSHKEY, why);
		if (asprintf(&path, "%s/%s", dir, FILE_SSHKEY) == -1)
			err(1, NULL);
		j->idfile = path;
		if (fstatat(h->fd, FILE_SSHCERT, &sb,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			if ((why = mode_check(&sb, h->uid, MODE_FILE)) != NULL)
				errx(1, "%s/%s %s", h->path, FILE_SSHCERT,
				    why);
			if (asprintf(&path, "%s/%s", dir, FILE_SSHCERT) == -1)
				err(1, NULL);
			j->certfile = path;
		}
	}
	free(dir);
	if (!host_pattern_valid(j->user, 0))
		errx(1, "user name %s: not one for ssh", j->user);
	if ((why = jump_check(j)) != NULL)
		errx(1, "cannot run ssh with %s", why);
}

static int
cmd_ssh(int argc, char *argv[])
{
	struct home	 home;
	struct proxy	 proxy;
	struct login	 l;
	struct jump	 j;
	const char	*proxyarg, *why;
	char		 alias[HOSTLEN + 16];
	char		**opts, **v;
	int		 dest, nopts;

	fail_with(EXIT_SSH, "msh ssh");
	if ((opts = calloc(argc + 1, sizeof(*opts))) == NULL)
		err(1, NULL);
	if ((dest = ssh_split(argc - 1, argv + 1, &proxyarg, opts, &nopts,
	    &why)) == -1) {
		warnx("%s", why);
		usage();
	}
	login_load(&home, &l, 0);
	proxy_find(&home, proxyarg, &proxy);
	jump_fill(&j, &home, &proxy, &l, argv[0], alias, sizeof(alias));
	home_close(&home);

	v = ssh_argv(&j, opts, nopts, argc - 1, argv + 1, dest);
	(void)fflush(stdout);
	execvp(j.ssh, v);
	err(1, "%s", j.ssh);
}

static int
cmd_config(int argc, char *argv[])
{
	Mezite__Auth__V1__ListNodesResponse	*res = NULL;
	struct home				 home;
	struct proxy				 proxy;
	struct login				 l;
	struct jump				 j;
	const char				*proxyarg = NULL;
	const char				*cafile = NULL, *ca;
	char					*hosts[MAXPATTERNS], **hv;
	char					 alias[HOSTLEN + 16];
	size_t					 nhosts = 0, i;
	int					 ch;

	while ((ch = getopt(argc, argv, "C:n:p:")) != -1) {
		switch (ch) {
		case 'C':
			cafile = optarg;
			break;
		case 'n':
			if (nhosts == MAXPATTERNS)
				errx(1, "too many patterns");
			if (!host_pattern_valid(optarg, 1))
				errx(1, "%s: not a pattern of node names",
				    optarg);
			hosts[nhosts++] = optarg;
			break;
		case 'p':
			proxyarg = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();
	/* The ProxyCommand may run anywhere: the CA file's whole path. */
	if ((ca = ca_find(cafile)) != NULL &&
	    (cafile = realpath(ca, NULL)) == NULL)
		err(1, "%s", ca);
	login_load(&home, &l, nhosts == 0);
	proxy_find(&home, proxyarg, &proxy);
	jump_fill(&j, &home, &proxy, &l, argv[0], alias, sizeof(alias));
	j.cafile = cafile;

	hv = hosts;
	if (nhosts == 0) {
		res = list_nodes(&home, &proxy, cafile, &l);
		if ((hv = calloc(res->n_nodes + 1, sizeof(*hv))) == NULL)
			err(1, NULL);
		for (i = 0; i < res->n_nodes; i++) {
			if (host_pattern_valid(res->nodes[i]->name, 0))
				hv[nhosts++] = res->nodes[i]->name;
			else
				warnx("node %zu: a name ssh_config cannot "
				    "hold; left out", i + 1);
		}
	}
	home_close(&home);
	if (config_write(stdout, &j, hv, nhosts) == -1)
		err(1, "stdout");
	login_free(&l);
	if (res != NULL) {
		free(hv);
		protobuf_c_message_free_unpacked(&res->base, NULL);
	}
	return (0);
}
