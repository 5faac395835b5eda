/*
 * Unit tests for the configuration: master/parse.y, config.c and
 * printconf.c.  Run from the top directory: the files are those of the
 * golden tests in tests/config.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "master/mezited.h"

#define CONFDIR		"tests/config"

static char	 tmpdir[] = "/tmp/check_parse.XXXXXX";

/* Private keys must be 0600: git does not keep modes. */
static void
setup_modes(void)
{
	ck_assert_int_eq(chmod(CONFDIR "/key.pem", 0600), 0);
	ck_assert_int_eq(chmod(CONFDIR "/auth-key.pem", 0600), 0);
	ck_assert_int_eq(chmod(CONFDIR "/key-open.pem", 0644), 0);
}

static struct mezited_conf *
parse(const char *name)
{
	return (parse_config(name));
}

static int
port_of(const struct listen_addr *la)
{
	if (la->ss.ss_family == AF_INET)
		return (ntohs(((const struct sockaddr_in *)&la->ss)->sin_port));
	return (ntohs(((const struct sockaddr_in6 *)&la->ss)->sin6_port));
}

static size_t
count_routes(const struct mezited_conf *conf)
{
	const struct route	*r;
	size_t			 n = 0;

	TAILQ_FOREACH(r, &conf->routes, entry)
		n++;
	return (n);
}

static const struct route *
nth_route(const struct mezited_conf *conf, size_t i)
{
	const struct route	*r;

	TAILQ_FOREACH(r, &conf->routes, entry)
		if (i-- == 0)
			return (r);
	return (NULL);
}

/* print_config() into a malloc'ed string. */
static char *
printed(struct mezited_conf *conf)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f;

	ck_assert_ptr_nonnull(f = open_memstream(&buf, &len));
	print_config(f, conf);
	ck_assert_int_eq(fclose(f), 0);
	return (buf);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)),
	    (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

START_TEST(test_minimal_defaults)
{
	struct mezited_conf	*conf;
	struct listen_addr	*la;
	struct keypair		*kp;
	static const char	*alpn[] = { "mezite-auth", "mezite-ssh",
	    "mezite-tunnel", "mezite-cluster-tunnel", "h2", "http/1.1" };
	static const enum proc_type worker[] = { PROC_AUTH, PROC_SSH,
	    PROC_TUNNEL, PROC_TUNNEL, PROC_HTTPS, PROC_HTTPS };
	size_t			 i;

	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/01.conf"));
	ck_assert_str_eq(conf->path, CONFDIR "/01.conf");

	la = TAILQ_FIRST(&conf->listeners);
	ck_assert_ptr_nonnull(la);
	ck_assert_int_eq(la->ss.ss_family, AF_INET);
	ck_assert_int_eq(la->sslen, sizeof(struct sockaddr_in));
	ck_assert_int_eq(port_of(la), 8443);
	ck_assert_int_eq(la->nfds, 0);
	ck_assert_ptr_null(TAILQ_NEXT(la, entry));

	kp = TAILQ_FIRST(&conf->keypairs);
	ck_assert_ptr_nonnull(kp);
	ck_assert_str_eq(kp->name, "default");
	ck_assert_str_eq(kp->cert_file, CONFDIR "/cert.pem");
	ck_assert_str_eq(kp->key_file, CONFDIR "/key.pem");
	ck_assert_uint_gt(kp->cert_len, 0);
	ck_assert(strncmp((char *)kp->cert, "-----BEGIN CERTIFICATE-----",
	    27) == 0);
	ck_assert_uint_gt(kp->key_len, 0);
	ck_assert(strstr((char *)kp->key, "PRIVATE KEY") != NULL);
	ck_assert_ptr_null(TAILQ_NEXT(kp, entry));

	/* No route rule: the built-in table alone. */
	ck_assert_uint_eq(count_routes(conf), 6);
	for (i = 0; i < 6; i++) {
		ck_assert_str_eq(nth_route(conf, i)->alpn, alpn[i]);
		ck_assert_ptr_null(nth_route(conf, i)->sni);
		ck_assert_int_eq(nth_route(conf, i)->worker, worker[i]);
	}
	ck_assert_int_eq(conf->default_worker, PROC_HTTPS);

	ck_assert_ptr_null(conf->client_ca_file);
	ck_assert_ptr_null(conf->client_ca);
	ck_assert_str_eq(conf->tls_protocols, "secure");
	ck_assert_str_eq(conf->tls_ciphers, "secure");
	ck_assert_uint_eq(conf->handshake_timeout, TIMEOUT_HANDSHAKE);
	ck_assert_uint_eq(conf->idle_timeout, TIMEOUT_IDLE);
	ck_assert_uint_eq(conf->drain_timeout, TIMEOUT_DRAIN);
	ck_assert_uint_eq(conf->max_connections, MAX_CONNECTIONS);
	ck_assert_str_eq(conf->procs[PROC_MASTER].user, DEFAULT_USER);
	ck_assert_str_eq(conf->procs[PROC_MASTER].chroot, DEFAULT_CHROOT);
	ck_assert_str_eq(conf->procs[PROC_HTTPS].user, "_mezwww");
	ck_assert_str_eq(conf->procs[PROC_AUTH].user, "_mezauth");
	ck_assert_str_eq(conf->procs[PROC_SSH].user, "_mezssh");
	ck_assert_str_eq(conf->procs[PROC_TUNNEL].user, "_meztun");
	/* The ca process is nobody else's user, and in the empty chroot. */
	ck_assert_str_eq(conf->procs[PROC_CA].user, "_mezca");
	ck_assert_str_eq(conf->procs[PROC_CA].chroot, DEFAULT_CHROOT);
	ck_assert_ptr_null(conf->procs[PROC_CA].user_at);
	ck_assert_int_eq(conf->procs[PROC_HTTPS].prefork, DEFAULT_PREFORK);
	ck_assert_int_eq(conf->procs[PROC_AUTH].prefork, AUTH_PREFORK);
	ck_assert_uint_eq(conf->procs[PROC_AUTH].cert_ttl, CERT_TTL);
	ck_assert_int_eq(conf->procs[PROC_SSH].prefork, SSH_PREFORK);
	ck_assert_uint_eq(conf->procs[PROC_SSH].max_sessions, SSH_SESSIONS);
	ck_assert_int_eq(conf->procs[PROC_TUNNEL].prefork, TUNNEL_PREFORK);
	ck_assert_str_eq(conf->state_dir, STATE_DIR);
	ck_assert_str_eq(conf->control_socket, CONTROL_SOCKET);
	ck_assert_ptr_null(conf->control_group);
	ck_assert_int_eq(conf->verbose, 0);
	config_free(conf);
}
END_TEST

/* The ca block; where its user and chroot were set, for config_check(). */
START_TEST(test_ca_block)
{
	struct mezited_conf	*conf;

	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/14.conf"));
	ck_assert_str_eq(conf->procs[PROC_CA].user, "_signer");
	ck_assert_str_eq(conf->procs[PROC_CA].chroot, "/var/lib/mezite-ca");
	ck_assert_str_eq(conf->procs[PROC_CA].user_at, CONFDIR "/14.conf:9");
	ck_assert_str_eq(conf->procs[PROC_CA].chroot_at,
	    CONFDIR "/14.conf:10");
	ck_assert_str_eq(conf->procs[PROC_MASTER].user, "_front");
	ck_assert_str_eq(conf->procs[PROC_MASTER].user_at,
	    CONFDIR "/14.conf:12");
	ck_assert_ptr_null(conf->procs[PROC_MASTER].chroot_at);
	config_free(conf);
}
END_TEST

START_TEST(test_everything)
{
	struct mezited_conf	*conf;
	struct listen_addr	*la;
	const struct route	*r;
	static const int	 ports[] = { 8443, 8443, 443, 443, 443 };
	static const int	 families[] = { AF_INET, AF_INET6, AF_INET,
	    AF_INET6, AF_INET };
	size_t			 i = 0;

	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/02.conf"));
	TAILQ_FOREACH(la, &conf->listeners, entry) {
		ck_assert_uint_lt(i, 5);
		ck_assert_int_eq(la->ss.ss_family, families[i]);
		ck_assert_int_eq(port_of(la), ports[i]);
		i++;
	}
	ck_assert_uint_eq(i, 5);

	ck_assert_str_eq(conf->client_ca_file, CONFDIR "/cert.pem");
	ck_assert_uint_gt(conf->client_ca_len, 0);
	ck_assert_str_eq(conf->tls_protocols, "tlsv1.3");
	ck_assert_str_eq(conf->tls_ciphers, "compat");

	ck_assert_uint_eq(count_routes(conf), 8);
	r = nth_route(conf, 0);
	ck_assert_str_eq(r->alpn, "mezite-auth");
	ck_assert_ptr_null(r->sni);
	ck_assert_int_eq(r->worker, PROC_AUTH);
	r = nth_route(conf, 1);
	ck_assert_str_eq(r->alpn, "h2");
	ck_assert_str_eq(r->sni, "auth.example.com");
	ck_assert_int_eq(r->worker, PROC_AUTH);
	r = nth_route(conf, 2);
	ck_assert_ptr_null(r->alpn);
	ck_assert_str_eq(r->sni, "*.tunnel.example.com");
	ck_assert_int_eq(r->worker, PROC_TUNNEL);
	ck_assert_int_eq(conf->default_worker, PROC_HTTPS);

	ck_assert_uint_eq(conf->handshake_timeout, 5);
	ck_assert_uint_eq(conf->idle_timeout, 600);
	ck_assert_uint_eq(conf->drain_timeout, 45);	/* the last one */
	ck_assert_uint_eq(conf->max_connections, 500);
	ck_assert_str_eq(conf->procs[PROC_MASTER].user, "_mezmaster");
	ck_assert_str_eq(conf->procs[PROC_MASTER].chroot,
	    "/var/empty/master");
	ck_assert_int_eq(conf->procs[PROC_HTTPS].prefork, 4);
	ck_assert_str_eq(conf->procs[PROC_HTTPS].user, "_mezwww");
	ck_assert_int_eq(conf->procs[PROC_AUTH].prefork, 0);
	ck_assert_str_eq(conf->procs[PROC_AUTH].user, "_auth");
	ck_assert_uint_eq(conf->procs[PROC_AUTH].cert_ttl, 86400);
	/* Its chroot is its directory in the state directory. */
	config_state_dirs(conf);
	ck_assert_str_eq(conf->procs[PROC_AUTH].chroot,
	    "/var/db/mezite/" AUTH_DIR);
	ck_assert_str_eq(conf->procs[PROC_TUNNEL].chroot, "/var/empty/tunnel");
	ck_assert_str_eq(conf->state_dir, "/var/db/mezite");
	ck_assert_str_eq(conf->control_socket, "/var/run/mezite/control.sock");
	ck_assert_str_eq(conf->control_group, "wheel");
	ck_assert_int_eq(conf->verbose, 1);
	config_free(conf);
}
END_TEST

START_TEST(test_macros)
{
	struct mezited_conf	*conf;
	char			 d1[] = "port=9443", d2[] = "forks=8";

	ck_assert_int_eq(cmdline_symset(d1), 0);
	ck_assert_int_eq(cmdline_symset(d2), 0);
	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/03.conf"));
	ck_assert_int_eq(port_of(TAILQ_FIRST(&conf->listeners)), 9443);
	ck_assert_str_eq(TAILQ_FIRST(&conf->keypairs)->key_file,
	    CONFDIR "/key.pem");
	ck_assert_int_eq(conf->procs[PROC_HTTPS].prefork, 8);
	ck_assert_str_eq(conf->procs[PROC_HTTPS].user, "_www");
	config_free(conf);
}
END_TEST

START_TEST(test_cmdline_symset)
{
	char	 ok[] = "a_1=x y", empty[] = "b=", noeq[] = "abc";
	char	 badname[] = "1a=x", blank[] = "=x", space[] = "a b=x";
	char	 nl[] = "a=x\ny";

	ck_assert_int_eq(cmdline_symset(ok), 0);
	ck_assert_int_eq(cmdline_symset(empty), 0);
	ck_assert_int_eq(cmdline_symset(noeq), -1);
	ck_assert_int_eq(cmdline_symset(badname), -1);
	ck_assert_int_eq(cmdline_symset(blank), -1);
	ck_assert_int_eq(cmdline_symset(space), -1);
	ck_assert_int_eq(cmdline_symset(nl), -1);
}
END_TEST

START_TEST(test_include)
{
	struct mezited_conf	*conf;

	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/04.conf"));
	ck_assert_str_eq(TAILQ_FIRST(&conf->keypairs)->name, "default");
	ck_assert_uint_eq(conf->idle_timeout, 120);
	ck_assert_int_eq(conf->verbose, 1);
	config_free(conf);
}
END_TEST

START_TEST(test_sni_keypairs)
{
	struct mezited_conf	*conf;
	struct keypair		*kp;
	const struct route	*r;

	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/05.conf"));
	kp = TAILQ_FIRST(&conf->keypairs);
	ck_assert_str_eq(kp->name, "default");	/* first: the default */
	kp = TAILQ_NEXT(kp, entry);
	ck_assert_str_eq(kp->name, "auth");
	ck_assert_str_eq(kp->cert_file, CONFDIR "/auth-cert.pem");
	ck_assert_uint_gt(kp->key_len, 0);
	ck_assert_ptr_null(TAILQ_NEXT(kp, entry));

	ck_assert_uint_eq(count_routes(conf), 9);
	r = nth_route(conf, 0);
	ck_assert_ptr_null(r->alpn);
	ck_assert_str_eq(r->sni, "auth.example.com");
	r = nth_route(conf, 1);
	ck_assert_str_eq(r->alpn, "mezite-tunnel");
	ck_assert_int_eq(r->worker, PROC_TUNNEL);
	r = nth_route(conf, 2);
	ck_assert_str_eq(r->alpn, "h2");
	ck_assert_str_eq(r->sni, "*.example.com");
	ck_assert_int_eq(r->worker, PROC_HTTPS);
	r = nth_route(conf, 3);
	ck_assert_str_eq(r->sni, "*.EXAMPLE.org");	/* as given */
	config_free(conf);
}
END_TEST

START_TEST(test_builtin_and_default)
{
	struct mezited_conf	*conf;

	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/06.conf"));
	ck_assert_uint_eq(count_routes(conf), 6);
	ck_assert_int_eq(conf->default_worker, PROC_AUTH);
	config_free(conf);
}
END_TEST

/* Every good file: the printed configuration parses to itself. */
START_TEST(test_roundtrip)
{
	struct mezited_conf	*conf;
	glob_t			 g;
	char			 path[64], d1[] = "port=9443", d2[] = "forks=3";
	char			*first, *second;
	size_t			 i;
	FILE			*f;

	ck_assert_int_eq(cmdline_symset(d1), 0);
	ck_assert_int_eq(cmdline_symset(d2), 0);
	ck_assert_int_eq(glob(CONFDIR "/[0-9][0-9].conf", 0, NULL, &g), 0);
	ck_assert_uint_ge(g.gl_pathc, 6);
	(void)snprintf(path, sizeof(path), "%s/printed.conf", tmpdir);
	for (i = 0; i < g.gl_pathc; i++) {
		ck_assert_ptr_nonnull(conf = parse(g.gl_pathv[i]));
		first = printed(conf);
		config_free(conf);

		ck_assert_ptr_nonnull(f = fopen(path, "w"));
		ck_assert_int_ge(fputs(first, f), 0);
		ck_assert_int_eq(fclose(f), 0);
		conf = parse(path);
		ck_assert_msg(conf != NULL, "%s: printed config does not parse",
		    g.gl_pathv[i]);
		second = printed(conf);
		config_free(conf);
		ck_assert_str_eq(first, second);
		free(first);
		free(second);
	}
	globfree(&g);
}
END_TEST

/* Strings that need escaping survive printing and parsing again. */
START_TEST(test_roundtrip_quoting)
{
	struct mezited_conf	*conf;
	char			 path[64];
	char			*first, *second;
	FILE			*f;

	(void)snprintf(path, sizeof(path), "%s/quote.conf", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "listen on *\n"
	    "tls keypair \"a \\\"b\\\" \\\\c\" {\n"
	    "\tcertificate " CONFDIR "/cert.pem\n"
	    "\tkey \"" CONFDIR "/key.pem\" }\n"
	    "control group \"with space\"\n"
	    "state directory \"/odd\\\\dir/\\x\"\n");
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(conf = parse(path));
	ck_assert_str_eq(TAILQ_FIRST(&conf->keypairs)->name, "a \"b\" \\c");
	ck_assert_str_eq(conf->state_dir, "/odd\\dir/\\x");
	first = printed(conf);
	config_free(conf);

	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_ge(fputs(first, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(conf = parse(path));
	second = printed(conf);
	config_free(conf);
	ck_assert_str_eq(first, second);
	free(first);
	free(second);
}
END_TEST

START_TEST(test_bad_files)
{
	glob_t	 g;
	size_t	 i;

	ck_assert_int_eq(glob(CONFDIR "/bad-[0-9][0-9].conf", 0, NULL, &g),
	    0);
	ck_assert_uint_ge(g.gl_pathc, 12);
	for (i = 0; i < g.gl_pathc; i++)
		ck_assert_msg(parse(g.gl_pathv[i]) == NULL,
		    "%s parsed", g.gl_pathv[i]);
	globfree(&g);
	ck_assert_ptr_null(parse(CONFDIR "/nonexistent.conf"));
	ck_assert_ptr_null(parse(CONFDIR));
}
END_TEST

/* Errors leave nothing behind: a good parse after a bad one is clean. */
START_TEST(test_bad_then_good)
{
	struct mezited_conf	*conf;

	ck_assert_ptr_null(parse(CONFDIR "/bad-01.conf"));
	ck_assert_ptr_null(parse(CONFDIR "/bad-11.conf"));
	ck_assert_ptr_nonnull(conf = parse(CONFDIR "/01.conf"));
	ck_assert_uint_eq(conf->idle_timeout, TIMEOUT_IDLE);
	config_free(conf);
}
END_TEST

START_TEST(test_load_pem_secrecy)
{
	char		 path[64], err[256];
	uint8_t		*buf;
	size_t		 len;

	(void)snprintf(path, sizeof(path), "%s/key.pem", tmpdir);
	write_file(path, "-----BEGIN PRIVATE KEY-----\n", 0600);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(len, 28);
	ck_assert(memcmp(buf, "-----BEGIN", 10) == 0);
	ck_assert_int_eq(buf[len], '\0');
	free(buf);

	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), 0);
	free(buf);

	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), -1);
	ck_assert_ptr_null(buf);
	ck_assert(strstr(err, "private key must not be accessible by group "
	    "or others") != NULL);
	ck_assert(strncmp(err, path, strlen(path)) == 0);

	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(chmod(path, 0601), 0);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), -1);

	/* Not secret: any mode. */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(config_load_pem(path, 0, &buf, &len, err,
	    sizeof(err)), 0);
	free(buf);

	/* Owned by someone else: only root can make that here. */
	if (geteuid() == 0) {
		ck_assert_int_eq(chmod(path, 0600), 0);
		ck_assert_int_eq(chown(path, 1, 1), 0);
		ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
		    sizeof(err)), -1);
		ck_assert(strstr(err, "private key owned by uid 1") != NULL);
		ck_assert_int_eq(config_load_pem(path, 0, &buf, &len, err,
		    sizeof(err)), 0);
		free(buf);
	}
	ck_assert_int_eq(unlink(path), 0);
}
END_TEST

START_TEST(test_load_pem_errors)
{
	char		 path[64], err[256], *big;
	uint8_t		*buf;
	size_t		 len;

	(void)snprintf(path, sizeof(path), "%s/empty.pem", tmpdir);
	write_file(path, "", 0600);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), -1);
	ck_assert(strstr(err, "empty") != NULL);
	ck_assert_int_eq(unlink(path), 0);

	ck_assert_int_eq(config_load_pem(path, 0, &buf, &len, err,
	    sizeof(err)), -1);
	ck_assert(strstr(err, strerror(ENOENT)) != NULL);

	ck_assert_int_eq(config_load_pem(tmpdir, 0, &buf, &len, err,
	    sizeof(err)), -1);
	ck_assert(strstr(err, "not a regular file") != NULL);
	ck_assert_int_eq(config_load_pem("/dev/null", 0, &buf, &len, err,
	    sizeof(err)), -1);

	(void)snprintf(path, sizeof(path), "%s/big.pem", tmpdir);
	ck_assert_ptr_nonnull(big = malloc(TLS_FILE_MAX + 2));
	memset(big, 'A', TLS_FILE_MAX + 1);
	big[TLS_FILE_MAX + 1] = '\0';
	write_file(path, big, 0600);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), -1);
	big[TLS_FILE_MAX] = '\0';
	write_file(path, big, 0600);
	ck_assert_int_eq(config_load_pem(path, 1, &buf, &len, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(len, TLS_FILE_MAX);
	free(buf);
	free(big);
	ck_assert_int_eq(unlink(path), 0);
}
END_TEST

/* The parser reports a group-readable key and refuses the config. */
START_TEST(test_key_mode_in_config)
{
	struct mezited_conf	*conf;

	ck_assert_ptr_null(parse(CONFDIR "/bad-09.conf"));
	ck_assert_int_eq(chmod(CONFDIR "/key-open.pem", 0600), 0);
	conf = parse(CONFDIR "/bad-09.conf");
	ck_assert_int_eq(chmod(CONFDIR "/key-open.pem", 0644), 0);
	ck_assert_ptr_nonnull(conf);
	config_free(conf);
}
END_TEST

START_TEST(test_config_new_free)
{
	struct mezited_conf	*conf;

	ck_assert_ptr_nonnull(conf = config_new());
	ck_assert(TAILQ_EMPTY(&conf->listeners));
	ck_assert(TAILQ_EMPTY(&conf->routes));
	config_builtin_routes(conf);
	ck_assert_uint_eq(count_routes(conf), 6);
	config_free(conf);
	config_free(NULL);

	ck_assert_int_eq(config_proc_available(PROC_MASTER), 1);
	ck_assert_int_eq(config_proc_available(PROC_HTTPS), 1);
	ck_assert_int_eq(config_proc_available(PROC_AUTH), 1);
	ck_assert_int_eq(config_proc_available(PROC_SSH), 1);
	ck_assert_int_eq(config_proc_available(PROC_TUNNEL), 1);
	ck_assert_int_eq(config_proc_available(PROC_SUPERVISOR), 0);
}
END_TEST

/* Syntax corners that the golden files do not show. */
START_TEST(test_syntax_corners)
{
	struct mezited_conf	*conf;
	char			 path[64];
	FILE			*f;

	(void)snprintf(path, sizeof(path), "%s/corners.conf", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f,
	    "idle = 77	# a keyword as a macro name\n"
	    "lv = verbose	# ...and as a value\n"
	    "log $lv\n"
	    "tls keypair kp { certificate \"" CONFDIR "/cert.pem\"\n"
	    "key \"" CONFDIR "/key.pem\" }\n"
	    "listen on 127.0.0.1 port 1234\n"
	    "listen \\\n  on ::1 port 0001235\n"
	    "worker https { }\n"
	    "worker\thttps\n"
	    "{\n\n\tprefork 0\n\n}\n"
	    "max connections 1000000\n"
	    "timeout drain 86400\n"
	    "timeout idle $idle");
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(conf = parse(path));
	ck_assert_int_eq(port_of(TAILQ_FIRST(&conf->listeners)), 1234);
	ck_assert_int_eq(port_of(TAILQ_LAST(&conf->listeners,
	    listen_addrs)), 1235);
	ck_assert_int_eq(conf->procs[PROC_HTTPS].prefork, 0);
	ck_assert_uint_eq(conf->max_connections, 1000000);
	ck_assert_uint_eq(conf->drain_timeout, 86400);
	ck_assert_uint_eq(conf->idle_timeout, 77);
	ck_assert_int_eq(conf->verbose, 1);
	config_free(conf);
}
END_TEST

START_TEST(test_self_include)
{
	char	 path[64];
	FILE	*f;

	(void)snprintf(path, sizeof(path), "%s/loop.conf", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "include \"%s\"\n", path);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(parse(path));
}
END_TEST

static void
cleanup_tmpdir(void)
{
	static const char	*names[] = { "printed.conf", "quote.conf",
	    "corners.conf", "loop.conf", "key.pem", "empty.pem", "big.pem" };
	char			 path[64];
	size_t			 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(tmpdir);
}

static void
setup(void)
{
	setup_modes();
}

static Suite *
parse_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("parse");

	tc = tcase_create("good");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_everything);
	tcase_add_test(tc, test_ca_block);
	tcase_add_test(tc, test_macros);
	tcase_add_test(tc, test_cmdline_symset);
	tcase_add_test(tc, test_include);
	tcase_add_test(tc, test_sni_keypairs);
	tcase_add_test(tc, test_builtin_and_default);
	tcase_add_test(tc, test_syntax_corners);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_roundtrip_quoting);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_bad_files);
	tcase_add_test(tc, test_bad_then_good);
	tcase_add_test(tc, test_self_include);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_load_pem_secrecy);
	tcase_add_test(tc, test_load_pem_errors);
	tcase_add_test(tc, test_key_mode_in_config);
	tcase_add_test(tc, test_config_new_free);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return (EXIT_FAILURE);
	}
	/* Errors go to stderr: the expected ones show in the log. */
	log_init(1, LOG_DAEMON);

	sr = srunner_create(parse_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	cleanup_tmpdir();
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
