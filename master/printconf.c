/*
 * Print the effective configuration, defaults included, one statement a
 * line: what mezited -nv shows.  The output is itself a configuration
 * that parses to the same output.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "mezited.h"
#include "tls_ossl.h"

/* A quoted string, with '"' and '\' escaped as the lexer reads them. */
static void
print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void
print_listen(FILE *f, const struct listen_addr *la)
{
	char	 host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)&la->ss, la->sslen,
	    host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		fprintf(f, "# listen on: unprintable address\n");
		return;
	}
	fprintf(f, "listen on %s port %s\n", host, serv);
}

static void
print_route(FILE *f, const struct route *r)
{
	fprintf(f, "route");
	if (r->alpn != NULL) {
		fprintf(f, " alpn ");
		print_string(f, r->alpn);
	}
	if (r->sni != NULL) {
		fprintf(f, " sni ");
		print_string(f, r->sni);
	}
	fprintf(f, " to %s\n", proc_name(r->worker));
}

/* A size in the largest unit that divides it: 65536 is "64K". */
static void
print_size(FILE *f, int64_t n)
{
	static const char	 units[] = "GMK";
	int			 shift, i;

	for (i = 0, shift = 30; shift > 0; i++, shift -= 10)
		if (n > 0 && n % (1LL << shift) == 0) {
			fprintf(f, "%" PRId64 "%c", n >> shift, units[i]);
			return;
		}
	fprintf(f, "%" PRId64, n);
}

/* Seconds in the largest unit that divides them: 43200 is "12h". */
static void
print_duration(FILE *f, const char *what, unsigned int n)
{
	static const struct {
		char		 unit;
		unsigned int	 secs;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 } };
	size_t	 i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (n > 0 && n % units[i].secs == 0) {
			fprintf(f, "%s %u%c\n", what, n / units[i].secs,
			    units[i].unit);
			return;
		}
	fprintf(f, "%s %us\n", what, n);
}

/* " { 10.0.0.0/8 ::1/128 }" */
static void
print_nets(FILE *f, const struct status_net *nets, size_t n)
{
	char	 addr[INET6_ADDRSTRLEN];
	size_t	 i;

	fprintf(f, " {");
	for (i = 0; i < n; i++) {
		if (inet_ntop(nets[i].family, nets[i].addr, addr,
		    sizeof(addr)) == NULL)
			(void)strlcpy(addr, "?", sizeof(addr));
		fprintf(f, " %s/%u", addr, nets[i].prefix);
	}
	fprintf(f, " }\n");
}

static void
print_https(FILE *f, const struct proc_conf *pc)
{
	fprintf(f, "\tbody limit ");
	print_size(f, pc->body_limit);
	fprintf(f, "\n\tbody memory ");
	print_size(f, pc->body_memory);
	fprintf(f, "\n\tmax streams %u\n", pc->max_streams);
	if (pc->nstatus_allow == 0)
		return;
	fprintf(f, "\tstatus allow");
	print_nets(f, pc->status_allow, pc->nstatus_allow);
}

static void
print_proc(FILE *f, const struct proc_conf *pc, enum proc_type type)
{
	size_t	 i;

	if (type == PROC_MASTER && pc->prefork == 0)
		fprintf(f, "\tprefork auto\n");
	else if (PROC_IS_WORKER(type) || type == PROC_MASTER)
		fprintf(f, "\tprefork %d\n", pc->prefork);
	fprintf(f, "\tuser ");
	print_string(f, pc->user);
	/* The auth and ssh workers' are their directories of the state. */
	if (type != PROC_AUTH && type != PROC_SSH) {
		fprintf(f, "\n\tchroot ");
		print_string(f, pc->chroot);
	}
	if (pc->root != NULL) {
		fprintf(f, "\n\troot ");
		print_string(f, pc->root);
	}
	fprintf(f, "\n");
	if (type == PROC_HTTPS)
		print_https(f, pc);
	if (type == PROC_AUTH)
		print_duration(f, "\tcertificate ttl", pc->cert_ttl);
	if (type == PROC_SSH) {
		fprintf(f, "\tmax sessions %u\n", pc->max_sessions);
		for (i = 0; i < pc->ntargets; i++) {
			fprintf(f, "\ttarget ");
			print_string(f, pc->targets[i].name);
			fputc(' ', f);
			print_string(f, pc->targets[i].address);
			fprintf(f, " port %u\n", pc->targets[i].port);
		}
	}
	if (type == PROC_TUNNEL) {
		print_duration(f, "\tkeepalive", pc->keepalive);
		print_duration(f, "\tkeepalive timeout", pc->keepalive_timeout);
	}
	fprintf(f, "}\n");
}

void
print_config(FILE *f, struct mezited_conf *conf)
{
	struct listen_addr	*la;
	struct keypair		*kp;
	struct route		*r;
	size_t			 i;
	int			 t;

	TAILQ_FOREACH(la, &conf->listeners, entry)
		print_listen(f, la);
	if (conf->nproxy_from > 0) {
		fprintf(f, "proxy protocol from");
		print_nets(f, conf->proxy_from, conf->nproxy_from);
	}

	TAILQ_FOREACH(kp, &conf->keypairs, entry) {
		fprintf(f, "tls keypair ");
		print_string(f, kp->name);
		fprintf(f, " {\n");
		if (kp->cert_file != NULL) {
			fprintf(f, "\tcertificate ");
			print_string(f, kp->cert_file);
			fprintf(f, "\n");
		}
		if (kp->key_file != NULL) {
			fprintf(f, "\tkey ");
			print_string(f, kp->key_file);
			fprintf(f, "\n");
		}
		fprintf(f, "}\n");
	}
	if (conf->client_ca_file != NULL) {
		fprintf(f, "tls client ca ");
		print_string(f, conf->client_ca_file);
		fprintf(f, "\n");
	}
	for (i = 0; i < conf->nclusters; i++) {
		fprintf(f, "trusted cluster ");
		print_string(f, conf->clusters[i].name);
		fprintf(f, " ca ");
		print_string(f, conf->clusters[i].ca_file);
		fprintf(f, "\n");
	}
	fprintf(f, "tls protocols ");
	print_string(f, conf->tls_protocols);
	fprintf(f, "\ntls ciphers ");
	print_string(f, conf->tls_ciphers);
	fprintf(f, "\ntls groups ");
	print_string(f, conf->tls_groups);
	fprintf(f, "\ntls tickets %s\n", conf->tls_tickets ? "yes" : "no");
	fprintf(f, "tls ticket lifetime %u\n", conf->ticket_lifetime);

	TAILQ_FOREACH(r, &conf->routes, entry)
		print_route(f, r);
	fprintf(f, "route default to %s\n", proc_name(conf->default_worker));

	fprintf(f, "timeout handshake %u\n", conf->handshake_timeout);
	fprintf(f, "timeout idle %u\n", conf->idle_timeout);
	fprintf(f, "timeout drain %u\n", conf->drain_timeout);
	fprintf(f, "max connections %u\n", conf->max_connections);
	fprintf(f, "max connections per source %u\n",
	    conf->max_conn_per_source);
	fprintf(f, "max connection rate %u per source\n",
	    conf->conn_rate_per_source);

	fprintf(f, "master {\n");
	print_proc(f, &conf->procs[PROC_MASTER], PROC_MASTER);
	/* A libtls build has no ca process: its block would go unused. */
	if (MASTER_ENGINE_OSSL) {
		fprintf(f, "ca {\n");
		print_proc(f, &conf->procs[PROC_CA], PROC_CA);
	}
	for (t = 0; t < PROC_MAX; t++) {
		if (!PROC_IS_WORKER(t))
			continue;
		fprintf(f, "worker %s {\n", proc_name(t));
		print_proc(f, &conf->procs[t], t);
	}

	fprintf(f, "state directory ");
	print_string(f, conf->state_dir);
	fprintf(f, "\ncontrol socket ");
	print_string(f, conf->control_socket);
	fprintf(f, "\n");
	if (conf->control_group != NULL) {
		fprintf(f, "control group ");
		print_string(f, conf->control_group);
		fprintf(f, "\n");
	}
	fprintf(f, "ktls %s\n", conf->ktls == KTLS_YES ? "yes" :
	    conf->ktls == KTLS_NO ? "no" : "auto");
	fprintf(f, "log %s\n", conf->verbose ? "verbose" : "brief");
}
