/*
 * mezctl: control a running mezited over its control socket.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "meta.h"
#include "mezctl.h"
#include "proc.h"
#include "sbuf.h"
#include "util.h"

#define CONTROL_SOCKET	"/var/run/mezited.sock"
#define CONNECT_TIMEOUT	20000		/* ms: the tunnel worker waits 10 s */

__dead static void	 usage(void);
static void		 ctl_send(struct imsgbuf *, enum actions);
static int		 show(struct imsg *, const struct parse_result *);
static void		 show_status(const Mezite__Status *);
static void		 show_proc(const Mezite__ProcInfo *, int, int64_t);
static void		 show_procs(void);
static void		 show_conn(const Mezite__ConnInfo *, int64_t);

static int	 json;
static int	 nitems;		/* for JSON arrays */
static int	 stream = -1;	/* connect: the stream, once it came */
/* show workers: the processes, printed when all have come. */
static Mezite__ProcInfo	**procs;
static size_t		  nprocs, procs_cap;

__dead static void
usage(void)
{
	fprintf(stderr, "usage: %s [-j] [-p fd] [-s socket] command "
	    "[argument ...]\n", getprogname());
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	 sun;
	struct parse_result	*res;
	struct imsgbuf		 ibuf;
	struct imsg		 imsg;
	struct pollfd		 pfd;
	const char		*sockname = CONTROL_SOCKET;
	const char		*errstr;
	ssize_t			 n;
	int			 ch, fd, done = 0, rc = 0, pwfd = -1;

	while ((ch = getopt(argc, argv, "jp:s:")) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'p':
			pwfd = strtonum(optarg, 0, INT_MAX, &errstr);
			if (errstr != NULL)
				errx(1, "-p %s: descriptor is %s", optarg,
				    errstr);
			break;
		case 's':
			sockname = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if ((res = parse(argc, argv)) == NULL)
		exit(1);
	if (pwfd != -1 && !admin_password(res->action))
		errx(1, "-p: only user add and user passwd read a password");
	/* Checked before the socket could take its number. */
	if (pwfd != -1 && fcntl(pwfd, F_GETFD) == -1)
		err(1, "-p %d", pwfd);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, sockname, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(1, "socket name too long");
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		err(1, "connect: %s", sockname);
	if (imsgbuf_init(&ibuf, fd) == -1)
		err(1, "imsgbuf_init");
	if (imsgbuf_set_maxsize(&ibuf, IMSG_MAXSIZE_LIMIT) == -1)
		err(1, "imsgbuf_set_maxsize");
	/* connect's reply carries the stream. */
	if (res->action == CONNECT)
		imsgbuf_allow_fdpass(&ibuf);

	/* A file of keys: a request per key, each answered in turn. */
	if (res->action == USER_KEY_ADD) {
		rc = admin_keys_add(&ibuf, res, json);
		imsgbuf_clear(&ibuf);
		close(fd);
		return (rc);
	}
	if (admin_op(res->action) != MEZITE__ADMIN_OP__ADMIN_NONE)
		admin_send(&ibuf, res, pwfd);
	else if (res->action == SHOW_NODES || res->action == SHOW_CLUSTERS ||
	    res->action == CONNECT)
		nodes_send(&ibuf, res);
	else if (res->action == SHOW_SESSIONS || res->action == KILL_SESSION)
		sessions_send(&ibuf, res);
	else
		ctl_send(&ibuf, res->action);
	if (imsgbuf_flush(&ibuf) == -1) {
		/* As when it refuses a connection: too many of ours. */
		if (errno == EPIPE || errno == ECONNRESET)
			errx(1, "mezited closed the connection");
		err(1, "write");
	}

	if (json && (res->action == SHOW_WORKERS ||
	    res->action == SHOW_CONNECTIONS || res->action == SHOW_NODES ||
	    res->action == SHOW_CLUSTERS || res->action == SHOW_SESSIONS))
		printf("[");
	else if (res->action == SHOW_NODES || res->action == SHOW_CLUSTERS)
		nodes_header();
	else if (res->action == SHOW_SESSIONS)
		sessions_header();
	else if (res->action == SHOW_WORKERS)
		printf("%-12s %7s %8s %8s %-6s  %s\n", "PROCESS", "PID", "UP",
		    "RESTARTS", "PAIRED", "STATE");
	else if (res->action == SHOW_CONNECTIONS)
		printf("%-8s %-22s %-12s %-16s %-14s %7s %7s %6s %-9s %s\n",
		    "ID", "CLIENT", "ALPN", "SNI", "WORKER", "IN", "OUT", "AGE",
		    "STATE", "MODE");
	while (!done) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		switch (poll(&pfd, 1, res->action == CONNECT ?
		    CONNECT_TIMEOUT : REPLY_TIMEOUT)) {
		case -1:
			if (errno == EINTR)
				continue;
			err(1, "poll");
		case 0:
			errx(1, "no reply from mezited");
		}
		if ((n = imsgbuf_read(&ibuf)) == -1) {
			if (errno == ECONNRESET)
				errx(1, "mezited closed the connection");
			err(1, "read");
		}
		if (n == 0)
			errx(1, "mezited closed the connection");
		for (;;) {
			if ((n = imsg_get(&ibuf, &imsg)) == -1)
				errx(1, "malformed reply");
			if (n == 0)
				break;
			switch (show(&imsg, res)) {
			case 1:
				done = 1;
				break;
			case -1:
				done = 1;
				rc = 1;
				break;
			}
			imsg_free(&imsg);
			if (done)
				break;
		}
	}
	if (json && rc == 0 && (res->action == SHOW_WORKERS ||
	    res->action == SHOW_CONNECTIONS || res->action == SHOW_NODES ||
	    res->action == SHOW_CLUSTERS || res->action == SHOW_SESSIONS))
		printf("]\n");
	imsgbuf_clear(&ibuf);
	close(fd);
	if (stream != -1 && nodes_copy(stream) == -1)
		rc = 1;
	return (rc);
}

/* The requests the supervisor or the master answers. */
static void
ctl_send(struct imsgbuf *ibuf, enum actions action)
{
	uint32_t	 type;
	int		 v;

	switch (action) {
	case SHOW_STATUS:
		type = IMSG_CTL_SHOW_STATUS;
		break;
	case SHOW_WORKERS:
		type = IMSG_CTL_SHOW_WORKERS;
		break;
	case SHOW_CONNECTIONS:
		type = IMSG_CTL_SHOW_CONNECTIONS;
		break;
	case RELOAD:
		type = IMSG_CTL_RELOAD;
		break;
	case LOG_VERBOSE:
	case LOG_BRIEF:
		type = IMSG_CTL_LOG_VERBOSE;
		break;
	default:
		usage();
	}
	v = action == LOG_VERBOSE;
	if (imsg_compose(ibuf, type, 0, 0, -1, type == IMSG_CTL_LOG_VERBOSE ?
	    &v : NULL, type == IMSG_CTL_LOG_VERBOSE ? sizeof(v) : 0) == -1)
		err(1, "write");
}

/* 0: more to come, 1: done, -1: failed. */
static int
show(struct imsg *imsg, const struct parse_result *res)
{
	enum actions		 action = res->action;
	Mezite__Status		*st;
	Mezite__ProcInfo	*pi;
	Mezite__ConnInfo	*ci;
	Mezite__CtlError	*e;
	struct sbuf		 sb = { 0 };

	switch (imsg_get_type(imsg)) {
	case IMSG_CTL_END:
		if (action == SHOW_WORKERS && !json)
			show_procs();
		return (1);
	case IMSG_CTL_OK:
		if (action == RELOAD)
			printf("reload request sent\n");
		else if (action == LOG_VERBOSE || action == LOG_BRIEF)
			printf("logging changed to %s\n",
			    action == LOG_VERBOSE ? "verbose" : "brief");
		else if (action == KILL_SESSION) {
			printf("session %" PRIu64 " ended\n", res->session);
			return (0);	/* the end follows */
		}
		return (1);
	case IMSG_CTL_FAIL:
		if ((e = pb_unpack(&mezite__ctl_error__descriptor,
		    imsg)) == NULL)
			errx(1, "malformed reply");
		fprintf(stderr, "mezctl: %s\n", e->message);
		pb_free(e);
		return (-1);
	case IMSG_CTL_ADMIN_REPLY:
		return (admin_show(imsg, res, json));
	case IMSG_CTL_NODES:
		if (action != SHOW_NODES && action != SHOW_CLUSTERS)
			errx(1, "unexpected reply");
		return (nodes_show(imsg, action == SHOW_NODES ? "node" :
		    "cluster", json, &nitems));
	case IMSG_CTL_SESSIONS:
		if (action != SHOW_SESSIONS)
			errx(1, "unexpected reply");
		return (sessions_show(imsg, json, &nitems));
	case IMSG_CTL_CONNECT_REPLY:
		if (action != CONNECT)
			errx(1, "unexpected reply");
		return (nodes_connect(imsg, res, &stream));
	case IMSG_CTL_STATUS:
		if ((st = pb_unpack(&mezite__status__descriptor,
		    imsg)) == NULL)
			errx(1, "malformed reply");
		if (json) {
			json_status(&sb, st);
			if (sb.failed)
				errx(1, "out of memory");
			printf("%s\n", sb.buf);
			sbuf_free(&sb);
		} else
			show_status(st);
		pb_free(st);
		return (0);
	case IMSG_CTL_PROC:
		if ((pi = pb_unpack(&mezite__proc_info__descriptor,
		    imsg)) == NULL)
			errx(1, "malformed reply");
		if (json) {
			json_proc(&sb, pi, 0);
			printf("%s%s", nitems++ ? "," : "", sb.buf);
			sbuf_free(&sb);
			pb_free(pi);
			return (0);
		}
		/* Named once it is known how many masters there are. */
		if (nprocs == procs_cap) {
			procs_cap = procs_cap ? procs_cap * 2 : 16;
			if ((procs = reallocarray(procs, procs_cap,
			    sizeof(*procs))) == NULL)
				err(1, NULL);
		}
		procs[nprocs++] = pi;
		return (0);
	case IMSG_CTL_CONN:
		if ((ci = pb_unpack(&mezite__conn_info__descriptor,
		    imsg)) == NULL)
			errx(1, "malformed reply");
		if (json) {
			json_conn(&sb, ci);
			printf("%s%s", nitems++ ? "," : "", sb.buf);
			sbuf_free(&sb);
		} else
			show_conn(ci, time_now());
		pb_free(ci);
		return (0);
	default:
		errx(1, "unexpected reply %u", imsg_get_type(imsg));
	}
}

static void
show_status(const Mezite__Status *st)
{
	char	 up[32], mup[32], bin[32], bout[32], name[32];
	size_t	 i;
	int	 nmasters;

	printf("mezited %s, up %s, master up %s%s\n", st->version,
	    fmt_duration(st->now - st->started, up, sizeof(up)),
	    fmt_duration(st->now - st->master_started, mup, sizeof(mup)),
	    st->draining ? ", draining" : "");
	printf("connections: %u active, %u in handshake, %" PRIu64 " total\n",
	    st->connections_active, st->handshakes_active,
	    st->connections_total);
	printf("failed handshakes: %" PRIu64 ", no worker running: %" PRIu64
	    "\n", st->handshake_failures, st->route_failures);
	printf("refused over a per-source limit: %" PRIu64 ", handshakes "
	    "shed: %" PRIu64 ", sources: %u\n", st->source_refused, st->shed,
	    st->sources);
	printf("handoffs: %" PRIu64 " kTLS, %" PRIu64 " relayed (kTLS %s)\n",
	    st->ktls_total, st->relay_total, st->ktls ? "on" : "off");
	printf("relayed: %s in, %s out\n",
	    fmt_bytes(st->bytes_in, bin, sizeof(bin)),
	    fmt_bytes(st->bytes_out, bout, sizeof(bout)));

	printf("\n%-12s %8s %10s\n", "ROUTE", "ACTIVE", "TOTAL");
	for (i = 0; i < st->n_routes; i++)
		printf("%-12s %8u %10" PRIu64 "\n", st->routes[i]->worker,
		    st->routes[i]->active, st->routes[i]->total);

	printf("\n%-12s %7s %8s %8s %6s %10s\n", "PROCESS", "PID", "UP",
	    "RESTARTS", "CONNS", "TOTAL");
	nmasters = procs_masters(st->procs, st->n_procs);
	for (i = 0; i < st->n_procs; i++) {
		proc_label(st->procs[i], nmasters, name, sizeof(name));
		printf("%-12s %7d %8s %8u %6u %10" PRIu64 "\n", name,
		    st->procs[i]->pid, fmt_duration(st->now -
		    st->procs[i]->started, up, sizeof(up)),
		    st->procs[i]->restarts, st->procs[i]->connections,
		    st->procs[i]->total);
	}
}

static void
show_procs(void)
{
	int64_t	 now = time_now();
	size_t	 i;
	int	 nmasters;

	nmasters = procs_masters(procs, nprocs);
	for (i = 0; i < nprocs; i++) {
		show_proc(procs[i], nmasters, now);
		pb_free(procs[i]);
	}
	free(procs);
	procs = NULL;
	nprocs = procs_cap = 0;
}

static void
show_proc(const Mezite__ProcInfo *pi, int nmasters, int64_t now)
{
	char		 name[32], up[32], state[48];
	const char	*paired;
	int		 master;

	master = strcmp(pi->type, "master") == 0;
	proc_label(pi, nmasters, name, sizeof(name));
	paired = master || pi->pid == 0 ? "-" : pi->paired ? "yes" : "no";
	if (pi->pid != 0) {
		printf("%-12s %7d %8s %8u %-6s  %s\n", name, pi->pid,
		    fmt_duration(now - pi->started, up, sizeof(up)),
		    pi->restarts, paired, pi->draining ? "draining" : "running");
		return;
	}
	(void)snprintf(state, sizeof(state), "restarting in %s",
	    fmt_duration(pi->restart_at - now, up, sizeof(up)));
	printf("%-12s %7s %8s %8u %-6s  %s\n", name, "-", "-", pi->restarts,
	    paired, state);
}

static void
show_conn(const Mezite__ConnInfo *ci, int64_t now)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 client[ADDRSTRLEN], worker[32];
	char			 bin[16], bout[16], age[16], lb[ADDRSTRLEN + 5];

	if (addr_from_pb(ci->client, &ss, &sslen) == -1)
		strlcpy(client, "?", sizeof(client));
	else
		addr_str((struct sockaddr *)&ss, client, sizeof(client));
	/* Through a balancer (PROXY protocol): its address last. */
	lb[0] = '\0';
	if (ci->balancer != NULL &&
	    addr_from_pb(ci->balancer, &ss, &sslen) == 0) {
		(void)strlcpy(lb, " via ", sizeof(lb));
		addr_str((struct sockaddr *)&ss, lb + 5, sizeof(lb) - 5);
	}
	if (ci->worker[0] == '\0')
		strlcpy(worker, "-", sizeof(worker));
	else
		(void)snprintf(worker, sizeof(worker), "%.8s(%d)", ci->worker,
		    ci->worker_pid);
	printf("%-8" PRIu64 " %-22s %-12s %-16s %-14s %7s %7s %6s %-9s %s%s\n",
	    ci->id, client, ci->alpn[0] ? ci->alpn : "-",
	    ci->sni[0] ? ci->sni : "-", worker,
	    fmt_bytes(ci->bytes_in, bin, sizeof(bin)),
	    fmt_bytes(ci->bytes_out, bout, sizeof(bout)),
	    fmt_duration(now - ci->started, age, sizeof(age)), ci->state,
	    ci->mode == MEZITE__HANDOFF_MODE__KTLS ? "ktls" : "relay", lb);
}
