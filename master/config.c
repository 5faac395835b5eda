/*
 * The configuration: defaults, the files it names, the checks a new one
 * must pass before any of it is applied, what the processes receive of
 * it, what changed between two of them, and freeing it.  Only the
 * supervisor holds one; children receive theirs as messages.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include "ktls.h"
#include "log.h"
#include "mezited.h"
#include "tickets.h"
#include "tls_ossl.h"

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
	[PROC_CA] =	CA_USER,
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
	return (t == PROC_MASTER || t == PROC_HTTPS || t == PROC_AUTH ||
	    t == PROC_SSH || t == PROC_TUNNEL);
}

/*
 * The auth worker's files (its database and CA keys) are in its own
 * directory of the state directory, which is also its chroot; so are
 * the ssh worker's (its host keys).
 */
void
config_state_dirs(struct mezited_conf *conf)
{
	struct proc_conf	*pc;

	pc = &conf->procs[PROC_AUTH];
	free(pc->chroot);
	if (asprintf(&pc->chroot, "%s/%s", conf->state_dir, AUTH_DIR) == -1)
		fatal("%s", __func__);
	pc = &conf->procs[PROC_SSH];
	free(pc->chroot);
	if (asprintf(&pc->chroot, "%s/%s", conf->state_dir, SSH_DIR) == -1)
		fatal("%s", __func__);
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
	conf->tls_tickets = 1;
	conf->ticket_lifetime = TICKET_LIFETIME_DEFAULT;
	conf->handshake_timeout = TIMEOUT_HANDSHAKE;
	conf->idle_timeout = TIMEOUT_IDLE;
	conf->drain_timeout = TIMEOUT_DRAIN;
	conf->max_connections = MAX_CONNECTIONS;
	conf->max_conn_per_source = MAX_CONN_PER_SOURCE;
	conf->conn_rate_per_source = CONN_RATE_PER_SOURCE;
	for (t = PROC_MASTER; t < PROC_MAX; t++) {
		conf->procs[t].user = xstrdup(default_users[t]);
		conf->procs[t].chroot = xstrdup(DEFAULT_CHROOT);
		if (PROC_IS_WORKER(t) && config_proc_available(t))
			conf->procs[t].prefork = DEFAULT_PREFORK;
	}
	/* Several would each keep their own count of failed logins. */
	conf->procs[PROC_AUTH].prefork = AUTH_PREFORK;
	conf->procs[PROC_TUNNEL].prefork = TUNNEL_PREFORK;
	/* One worker; its sessions are processes of their own. */
	conf->procs[PROC_SSH].prefork = SSH_PREFORK;
	conf->procs[PROC_SSH].max_sessions = SSH_SESSIONS;
	conf->procs[PROC_AUTH].cert_ttl = CERT_TTL;
	conf->procs[PROC_TUNNEL].keepalive = KEEPALIVE_INTERVAL;
	conf->procs[PROC_TUNNEL].keepalive_timeout = KEEPALIVE_TIMEOUT;
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
	size_t			 i;
	int			 t;

	if (conf == NULL)
		return;
	while ((la = TAILQ_FIRST(&conf->listeners)) != NULL) {
		TAILQ_REMOVE(&conf->listeners, la, entry);
		listen_addr_close(la);
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
		free(conf->procs[t].user_at);
		free(conf->procs[t].chroot_at);
		free(conf->procs[t].root);
		free(conf->procs[t].status_allow);
		free(conf->procs[t].targets);
	}
	free(conf->path);
	free(conf->client_ca_file);
	free(conf->client_ca);
	free(conf->proxy_from);
	for (i = 0; i < conf->nclusters; i++) {
		free(conf->clusters[i].name);
		free(conf->clusters[i].ca_file);
		free(conf->clusters[i].ca);
	}
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

/*
 * Follow the file's rules with the built-in table, less any rule the
 * file already wrote out for the same identifier and worker.
 */
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

/* The ssh worker's static targets, as config_worker_pb() last told them. */
static Mezite__SshTarget	 ssh_targets[SSH_TARGETS_MAX];
static Mezite__SshTarget	*ssh_ptargets[SSH_TARGETS_MAX];

/*
 * What a worker of the type is told at start.  The message points into
 * conf and into nets, which has room for STATUS_ALLOW_MAX networks, and,
 * for the ssh worker, into ssh_targets until the next call.
 */

void
config_worker_pb(struct mezited_conf *conf, enum proc_type type,
    Mezite__WorkerConfig *wc, Mezite__Network *nets, Mezite__Network **pnets)
{
	struct proc_conf	*pc = &conf->procs[type];
	size_t			 i;

	mezite__worker_config__init(wc);
	wc->root = pc->root ? pc->root : "";
	wc->idle_timeout = conf->idle_timeout;
	if (type == PROC_AUTH || type == PROC_SSH) {
		wc->cert_ttl = pc->cert_ttl;
		/* Chrooted there when we are root. */
		wc->state = geteuid() == 0 ? "/" : pc->chroot;
	}
	if (type == PROC_SSH) {
		wc->max_sessions = pc->max_sessions;
		for (i = 0; i < pc->ntargets && i < SSH_TARGETS_MAX; i++) {
			mezite__ssh_target__init(&ssh_targets[i]);
			ssh_targets[i].name = pc->targets[i].name;
			ssh_targets[i].address = pc->targets[i].address;
			ssh_targets[i].port = pc->targets[i].port;
			ssh_ptargets[i] = &ssh_targets[i];
		}
		wc->ssh_targets = ssh_ptargets;
		wc->n_ssh_targets = i;
	}
	if (type == PROC_TUNNEL) {
		wc->keepalive = pc->keepalive;
		wc->keepalive_timeout = pc->keepalive_timeout;
		wc->trusted_clusters = conf->cluster_names;
		wc->n_trusted_clusters = conf->nclusters;
	}
	if (type != PROC_HTTPS)
		return;
	wc->body_limit = pc->body_limit;
	wc->body_memory = pc->body_memory;
	wc->max_streams = pc->max_streams;
	for (i = 0; i < pc->nstatus_allow && i < STATUS_ALLOW_MAX; i++) {
		mezite__network__init(&nets[i]);
		nets[i].addr.data = pc->status_allow[i].addr;
		nets[i].addr.len = pc->status_allow[i].family == AF_INET ?
		    4 : 16;
		nets[i].prefix = pc->status_allow[i].prefix;
		pnets[i] = &nets[i];
	}
	wc->status_allow = pnets;
	wc->n_status_allow = i;
}

void
config_master_pb(struct mezited_conf *conf, int64_t started,
    struct conf_pb *cp)
{
	struct route_rule	*rules = NULL;
	struct route		*r;
	struct keypair		*k;
	size_t			 n = 0, i, alen;

	memset(cp, 0, sizeof(*cp));
	TAILQ_FOREACH(r, &conf->routes, entry)
		n++;
	TAILQ_FOREACH(k, &conf->keypairs, entry)
		cp->nkp++;
	if ((cp->routes = calloc(n + 1, sizeof(*cp->routes))) == NULL ||
	    (cp->rp = calloc(n + 1, sizeof(*cp->rp))) == NULL ||
	    (rules = calloc(n + 1, sizeof(*rules))) == NULL ||
	    (cp->kp = calloc(cp->nkp + 1, sizeof(*cp->kp))) == NULL ||
	    (cp->kpp = calloc(cp->nkp + 1, sizeof(*cp->kpp))) == NULL)
		fatal(__func__);

	i = 0;
	TAILQ_FOREACH(r, &conf->routes, entry) {
		mezite__route__init(&cp->routes[i]);
		cp->routes[i].alpn = r->alpn ? r->alpn : "";
		cp->routes[i].sni = r->sni ? r->sni : "";
		cp->routes[i].worker = (char *)proc_name(r->worker);
		cp->rp[i] = &cp->routes[i];
		rules[i].alpn = r->alpn;
		rules[i].sni = r->sni;
		rules[i].worker = r->worker;
		i++;
	}
	alen = route_alpn_list(rules, n, NULL, 0) + 1;
	if ((cp->alpn = malloc(alen)) == NULL)
		fatal(__func__);
	route_alpn_list(rules, n, cp->alpn, alen);
	free(rules);

	i = 0;
	TAILQ_FOREACH(k, &conf->keypairs, entry) {
		mezite__keypair__init(&cp->kp[i]);
		cp->kp[i].name = k->name;
		cp->kp[i].cert.data = k->cert;
		cp->kp[i].cert.len = k->cert_len;
		cp->kp[i].key.data = k->key;
		cp->kp[i].key.len = k->key_len;
		cp->kpp[i] = &cp->kp[i];
		i++;
	}

	mezite__master_config__init(&cp->mc);
	cp->mc.n_routes = n;
	cp->mc.routes = cp->rp;
	cp->mc.default_worker = (char *)proc_name(conf->default_worker);
	cp->mc.n_alpn = 1;
	cp->mc.alpn = &cp->alpn;
	cp->mc.handshake_timeout = conf->handshake_timeout;
	cp->mc.idle_timeout = conf->idle_timeout;
	cp->mc.drain_timeout = conf->drain_timeout;
	cp->mc.max_connections = conf->max_connections;
	cp->mc.max_conn_per_source = conf->max_conn_per_source;
	cp->mc.conn_rate_per_source = conf->conn_rate_per_source;
	cp->mc.tls_protocols = conf->tls_protocols;
	cp->mc.tls_ciphers = conf->tls_ciphers;
	cp->mc.tls_groups = conf->tls_groups;
	cp->mc.client_ca.data = conf->client_ca;
	cp->mc.client_ca.len = conf->client_ca_len;
	cp->mc.started = started;
	cp->mc.ktls = conf->ktls_on;
	cp->mc.tls_tickets = conf->tls_tickets;
	cp->mc.ticket_lifetime = conf->ticket_lifetime;

	if (conf->nproxy_from > 0) {
		if ((cp->pf = calloc(conf->nproxy_from,
		    sizeof(*cp->pf))) == NULL ||
		    (cp->pfp = calloc(conf->nproxy_from,
		    sizeof(*cp->pfp))) == NULL)
			fatal(__func__);
		for (i = 0; i < conf->nproxy_from; i++) {
			mezite__network__init(&cp->pf[i]);
			cp->pf[i].addr.data = conf->proxy_from[i].addr;
			cp->pf[i].addr.len =
			    conf->proxy_from[i].family == AF_INET ? 4 : 16;
			cp->pf[i].prefix = conf->proxy_from[i].prefix;
			cp->pfp[i] = &cp->pf[i];
		}
		cp->mc.n_proxy_from = conf->nproxy_from;
		cp->mc.proxy_from = cp->pfp;
	}

	/* Trusted clusters' CAs verify their proxies' certificates too. */
	if (conf->nclusters == 0)
		return;
	if ((cp->tc = calloc(conf->nclusters, sizeof(*cp->tc))) == NULL ||
	    (cp->tcp = calloc(conf->nclusters, sizeof(*cp->tcp))) == NULL)
		fatal(__func__);
	alen = conf->client_ca_len;
	for (i = 0; i < conf->nclusters; i++) {
		mezite__trusted_cluster__init(&cp->tc[i]);
		cp->tc[i].name = conf->clusters[i].name;
		cp->tc[i].ca.data = conf->clusters[i].ca;
		cp->tc[i].ca.len = conf->clusters[i].ca_len;
		cp->tcp[i] = &cp->tc[i];
		alen += conf->clusters[i].ca_len + 1;
	}
	cp->mc.clusters = cp->tcp;
	cp->mc.n_clusters = conf->nclusters;
	if ((cp->cas = malloc(alen)) == NULL)
		fatal(__func__);
	n = conf->client_ca_len;
	if (n > 0)
		memcpy(cp->cas, conf->client_ca, n);
	for (i = 0; i < conf->nclusters; i++) {
		memcpy(cp->cas + n, conf->clusters[i].ca,
		    conf->clusters[i].ca_len);
		n += conf->clusters[i].ca_len;
		cp->cas[n++] = '\n';
	}
	cp->mc.client_ca.data = cp->cas;
	cp->mc.client_ca.len = n;
}

void
config_master_pb_free(struct conf_pb *cp)
{
	free(cp->cas);
	free(cp->pf);
	free(cp->pfp);
	free(cp->tc);
	free(cp->tcp);
	free(cp->alpn);
	free(cp->routes);
	free(cp->rp);
	free(cp->kp);
	free(cp->kpp);
}

/*
 * Refuse a configuration the processes could not run with, before any
 * of it is applied: certificates and keys that the master's TLS engine
 * will not load, users and chroots that do not exist.
 */
/*
 * Build the TLS context in a child of ours: the keys are parsed there,
 * and what TLS libraries leave of them in memory they free without
 * wiping dies with it.  The supervisor never holds a parsed key.
 */
static int
config_check_tls(struct conf_pb *cp, char *err, size_t errlen)
{
	struct ossl_server	*o;
	struct tls		*t;
	ssize_t			 n;
	size_t			 len = 0;
	pid_t			 pid;
	int			 fds[2], status;

	if (pipe2(fds, O_CLOEXEC) == -1) {
		(void)snprintf(err, errlen, "pipe: %s", strerror(errno));
		return (-1);
	}
	switch (pid = fork()) {
	case -1:
		(void)snprintf(err, errlen, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return (-1);
	case 0:
		close(fds[0]);
		if (MASTER_ENGINE_OSSL) {
			o = ossl_server_build(&cp->mc, cp->kpp, cp->nkp, err,
			    errlen);
			if (o == NULL &&
			    write(fds[1], err, strnlen(err, errlen)) == -1)
				_exit(2);
			_exit(o == NULL);
		}
		t = master_tls_build(&cp->mc, cp->kpp, cp->nkp, err, errlen);
		if (t == NULL &&
		    write(fds[1], err, strnlen(err, errlen)) == -1)
			_exit(2);
		_exit(t == NULL);
	}
	close(fds[1]);
	while (len < errlen - 1 &&
	    (n = read(fds[0], err + len, errlen - 1 - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += n;
	}
	err[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			(void)snprintf(err, errlen, "waitpid: %s",
			    strerror(errno));
			return (-1);
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return (0);
	if (len == 0)
		(void)snprintf(err, errlen, "tls context check failed");
	return (-1);
}

int
config_check(struct mezited_conf *conf)
{
	struct conf_pb		 cp;
	struct proc_conf	*pc;
	struct stat		 st;
	char			 err[256];
	int			 type, ok = 1;

	config_state_dirs(conf);

	/* Ask the kernel itself; a module may have come or gone. */
	conf->ktls_on = 0;
	if (conf->ktls != KTLS_NO && !MASTER_ENGINE_OSSL) {
		if (conf->ktls == KTLS_YES) {
			log_warnx("%s: ktls yes: this mezited is built on "
			    "libtls, which cannot give sessions to the kernel",
			    conf->path);
			ok = 0;
		}
	} else if (conf->ktls != KTLS_NO) {
		switch (ktls_probe(err, sizeof(err))) {
		case 1:
			conf->ktls_on = 1;
			break;
		case 0:
			if (conf->ktls == KTLS_YES) {
				log_warnx("%s: ktls yes: %s", conf->path, err);
				ok = 0;
			} else
				log_debug("ktls auto: %s; relaying", err);
			break;
		default:
			log_warnx("%s: ktls: %s", conf->path, err);
			ok = 0;
			break;
		}
	}

	/* A context built the way the master will build it. */
	config_master_pb(conf, 0, &cp);
	if (config_check_tls(&cp, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", conf->path, err);
		ok = 0;
	}
	config_master_pb_free(&cp);

	if (geteuid() != 0)
		return (ok ? 0 : -1);
	for (type = PROC_MASTER; type < PROC_MAX; type++) {
		pc = &conf->procs[type];
		if (type == PROC_CA ? !MASTER_ENGINE_OSSL :
		    type != PROC_MASTER && pc->prefork == 0)
			continue;
		if (getpwnam(pc->user) == NULL) {
			log_warnx("%s: %s: user %s does not exist",
			    pc->user_at ? pc->user_at : conf->path,
			    proc_name(type), pc->user);
			ok = 0;
		}
		/* The supervisor makes these workers' directories. */
		if (type == PROC_AUTH || type == PROC_SSH)
			continue;
		if (stat(pc->chroot, &st) == -1 || !S_ISDIR(st.st_mode)) {
			log_warnx("%s: %s: chroot %s is not a directory",
			    pc->chroot_at ? pc->chroot_at : conf->path,
			    proc_name(type), pc->chroot);
			ok = 0;
		}
	}
	return (ok ? 0 : -1);
}

/* The supervisor's sockets for the address, one per master or shared. */
void
listen_addr_close(struct listen_addr *la)
{
	int	 i;

	for (i = 0; i < la->nfds; i++)
		if (la->fds[i] != -1 && (i == 0 || la->fds[i] != la->fds[0]))
			close(la->fds[i]);
	la->nfds = 0;
}

static int
str_changed(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != b);
	return (strcmp(a, b) != 0);
}

int
config_proc_changed(struct proc_conf *a, struct proc_conf *b)
{
	return (str_changed(a->user, b->user) ||
	    str_changed(a->chroot, b->chroot) || str_changed(a->root, b->root));
}

/* Whether a worker of the type must be replaced to follow b. */
int
config_worker_changed(enum proc_type type, struct mezited_conf *a,
    struct mezited_conf *b)
{
	struct proc_conf	*pa = &a->procs[type], *pb = &b->procs[type];
	size_t			 i;

	if (config_proc_changed(pa, pb) || a->idle_timeout != b->idle_timeout ||
	    pa->cert_ttl != pb->cert_ttl || pa->keepalive != pb->keepalive ||
	    pa->keepalive_timeout != pb->keepalive_timeout ||
	    pa->max_sessions != pb->max_sessions ||
	    pa->ntargets != pb->ntargets || (pa->ntargets > 0 &&
	    memcmp(pa->targets, pb->targets, pa->ntargets *
	    sizeof(*pa->targets)) != 0))
		return (1);
	if (type == PROC_TUNNEL) {
		if (a->nclusters != b->nclusters)
			return (1);
		for (i = 0; i < a->nclusters; i++)
			if (strcmp(a->cluster_names[i], b->cluster_names[i]))
				return (1);
	}
	return (pa->body_limit != pb->body_limit ||
	    pa->body_memory != pb->body_memory ||
	    pa->max_streams != pb->max_streams ||
	    pa->nstatus_allow != pb->nstatus_allow ||
	    (pa->nstatus_allow > 0 && memcmp(pa->status_allow,
	    pb->status_allow, pa->nstatus_allow *
	    sizeof(*pa->status_allow)) != 0));
}

int
config_listeners_same(struct mezited_conf *a, struct mezited_conf *b)
{
	struct listen_addr	*la, *lb;

	lb = TAILQ_FIRST(&b->listeners);
	TAILQ_FOREACH(la, &a->listeners, entry) {
		if (lb == NULL || la->sslen != lb->sslen ||
		    memcmp(&la->ss, &lb->ss, la->sslen) != 0)
			return (0);
		lb = TAILQ_NEXT(lb, entry);
	}
	return (lb == NULL);
}
