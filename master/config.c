/*
 * The configuration: defaults, the files it names, and freeing it.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mezited.h"

/* The routes used when the file has no route rule at all. */
static const struct {
	const char	*alpn;
	enum proc_type	 worker;
} builtin_routes[] = {
	{ "mezite-auth",		PROC_AUTH },
	{ "mezite-ssh",			PROC_SSH },
	{ "mezite-tunnel",		PROC_TUNNEL },
	{ "mezite-cluster-tunnel",	PROC_TUNNEL },
	{ "h2",				PROC_HTTPS },
	{ "http/1.1",			PROC_HTTPS },
};

/* Users of the processes that have one; the supervisor stays root. */
static const char *const default_users[PROC_MAX] = {
	[PROC_MASTER] =	DEFAULT_USER,
	[PROC_HTTPS] =	"_mezwww",
	[PROC_AUTH] =	"_mezauth",
	[PROC_SSH] =	"_mezssh",
	[PROC_TUNNEL] =	"_meztun",
};

static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("%s", __func__);
	return (p);
}

/* Whether this version has the process: workers not written yet don't. */
int
config_proc_available(enum proc_type t)
{
	return (t == PROC_MASTER || t == PROC_HTTPS);
}

struct mezited_conf *
config_new(void)
{
	struct mezited_conf	*conf;
	int			 t;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		fatal("%s", __func__);
	TAILQ_INIT(&conf->listeners);
	TAILQ_INIT(&conf->keypairs);
	TAILQ_INIT(&conf->routes);
	conf->default_worker = PROC_HTTPS;
	conf->tls_protocols = xstrdup("secure");
	conf->tls_ciphers = xstrdup("secure");
	conf->tls_groups = xstrdup(TLS_GROUPS_DEFAULT);
	conf->handshake_timeout = TIMEOUT_HANDSHAKE;
	conf->idle_timeout = TIMEOUT_IDLE;
	conf->drain_timeout = TIMEOUT_DRAIN;
	conf->max_connections = MAX_CONNECTIONS;
	for (t = PROC_MASTER; t < PROC_MAX; t++) {
		conf->procs[t].user = xstrdup(default_users[t]);
		conf->procs[t].chroot = xstrdup(DEFAULT_CHROOT);
		if (PROC_IS_WORKER(t) && config_proc_available(t))
			conf->procs[t].prefork = DEFAULT_PREFORK;
	}
	conf->procs[PROC_HTTPS].body_limit = BODY_LIMIT;
	conf->procs[PROC_HTTPS].body_memory = BODY_MEMORY;
	conf->procs[PROC_HTTPS].max_streams = MAX_STREAMS;
	conf->state_dir = xstrdup(STATE_DIR);
	conf->control_socket = xstrdup(CONTROL_SOCKET);
	conf->verbose = 0;
	return (conf);
}

/*
 * Free the configuration, wiping private keys.  Listening sockets still
 * in it (fd != -1) are closed.
 */
void
config_free(struct mezited_conf *conf)
{
	struct listen_addr	*la;
	struct keypair		*kp;
	struct route		*r;
	int			 t;

	if (conf == NULL)
		return;
	while ((la = TAILQ_FIRST(&conf->listeners)) != NULL) {
		TAILQ_REMOVE(&conf->listeners, la, entry);
		if (la->fd != -1)
			close(la->fd);
		free(la);
	}
	while ((kp = TAILQ_FIRST(&conf->keypairs)) != NULL) {
		TAILQ_REMOVE(&conf->keypairs, kp, entry);
		free(kp->name);
		free(kp->cert_file);
		free(kp->key_file);
		free(kp->cert);
		if (kp->key != NULL) {
			explicit_bzero(kp->key, kp->key_len);
			free(kp->key);
		}
		free(kp);
	}
	while ((r = TAILQ_FIRST(&conf->routes)) != NULL) {
		TAILQ_REMOVE(&conf->routes, r, entry);
		free(r->alpn);
		free(r->sni);
		free(r);
	}
	for (t = 0; t < PROC_MAX; t++) {
		free(conf->procs[t].user);
		free(conf->procs[t].chroot);
		free(conf->procs[t].root);
		free(conf->procs[t].status_allow);
	}
	free(conf->path);
	free(conf->client_ca_file);
	free(conf->client_ca);
	free(conf->tls_protocols);
	free(conf->tls_ciphers);
	free(conf->tls_groups);
	free(conf->state_dir);
	free(conf->control_socket);
	free(conf->control_group);
	free(conf);
}

/*
 * Read a PEM file whole into *bufp (NUL-terminated; *lenp excludes the
 * NUL).  A secret file must belong to root or to us and be closed to
 * group and others.  The contents are not parsed: the master does that.
 * On error, -1 with the reason in errbuf.
 */
int
config_load_pem(const char *path, int secret, uint8_t **bufp, size_t *lenp,
    char *errbuf, size_t errlen)
{
	struct stat	 st;
	uint8_t		*buf = NULL;
	size_t		 size = 0, len = 0;
	ssize_t		 n;
	int		 fd;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		(void)snprintf(errbuf, errlen, "%s: %s", path,
		    strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) == -1) {
		(void)snprintf(errbuf, errlen, "%s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		(void)snprintf(errbuf, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (secret && st.st_uid != 0 && st.st_uid != geteuid()) {
		(void)snprintf(errbuf, errlen,
		    "%s: private key owned by uid %lu", path,
		    (unsigned long)st.st_uid);
		goto fail;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		(void)snprintf(errbuf, errlen, "%s: private key must not be "
		    "accessible by group or others", path);
		goto fail;
	}
	if (st.st_size > TLS_FILE_MAX) {
		(void)snprintf(errbuf, errlen, "%s: larger than %d bytes", path,
		    TLS_FILE_MAX);
		goto fail;
	}

	size = st.st_size;
	if ((buf = malloc(size + 1)) == NULL)
		fatal("%s", __func__);
	while (len < size) {
		if ((n = read(fd, buf + len, size - len)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			(void)snprintf(errbuf, errlen, "%s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;		/* shrank since fstat */
		len += n;
	}
	if (len == 0) {
		(void)snprintf(errbuf, errlen, "%s: empty file", path);
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	*bufp = buf;
	*lenp = len;
	return (0);

 fail:
	if (buf != NULL) {
		explicit_bzero(buf, size + 1);
		free(buf);
	}
	close(fd);
	return (-1);
}

/* Without any route rule, install the built-in table. */
void
config_builtin_routes(struct mezited_conf *conf)
{
	struct route	*r;
	size_t		 i;

	for (i = 0; i < sizeof(builtin_routes) / sizeof(builtin_routes[0]);
	    i++) {
		TAILQ_FOREACH(r, &conf->routes, entry)
			if (r->alpn != NULL && r->sni == NULL &&
			    strcmp(r->alpn, builtin_routes[i].alpn) == 0 &&
			    r->worker == builtin_routes[i].worker)
				break;
		if (r != NULL)
			continue;	/* written out already */
		if ((r = calloc(1, sizeof(*r))) == NULL)
			fatal("%s", __func__);
		r->alpn = xstrdup(builtin_routes[i].alpn);
		r->sni = NULL;
		r->worker = builtin_routes[i].worker;
		TAILQ_INSERT_TAIL(&conf->routes, r, entry);
	}
}
