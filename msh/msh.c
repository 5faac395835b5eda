/*
 * msh: log in to a Mezite proxy and use what it gives access to.
 *
 *	msh login [-C cafile] [-F fd] [-p proxy] [user]
 *	msh logout
 *	msh status [-C cafile] [-p proxy]
 */

#include <sys/types.h>

#include <err.h>
#include <errno.h>
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
#include "rpc.h"
#include "auth.pb-c.h"

struct cmd {
	const char	*name;
	int		(*fn)(int, char *[]);
};

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

static const struct cmd	 cmds[] = {
	{ "login",	cmd_login },
	{ "logout",	cmd_logout },
	{ "status",	cmd_status },
};

__dead static void
usage(void)
{
	fprintf(stderr,
	    "usage: %s login [-C cafile] [-F fd] [-p host[:port]] [user]\n"
	    "       %s logout\n"
	    "       %s status [-C cafile] [-p host[:port]]\n",
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
	EVP_PKEY			*key;
	X509				*cert, *ca;
	const char			*proxyarg = NULL, *cafile = NULL;
	const char			*fdarg = NULL, *user;
	char				 pass[PASSLEN + 2];
	char				 name[USERLEN + 1];
	char				 when[64], line[PROXYLEN + 1];
	uint8_t				*spki;
	size_t				 spkilen;
	int				 ch;

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
	if (home_replaceable(&home, FILE_KEY) == -1 ||
	    home_replaceable(&home, FILE_CERT) == -1 ||
	    home_replaceable(&home, FILE_CA) == -1 ||
	    home_replaceable(&home, FILE_PROXY) == -1)
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
	r = rpc_open(&conn);
	rpc_send(r, &mezite__auth__v1__auth__descriptor, "Login", &req.base);
	explicit_bzero(pass, sizeof(pass));
	res = (Mezite__Auth__V1__LoginResponse *)rpc_wait(r, &st);
	rpc_close(r);
	conn_close(&conn);
	OPENSSL_free(spki);
	if (res == NULL)
		login_failed(&st);

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
	const char	*files[] = { FILE_KEY, FILE_CERT, FILE_CA };
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
