/*
 * grpc_testd: the auth worker's gRPC layer alone, for test_grpc.py.
 *
 *	grpc_testd [-v] [-i idle] [-M memory] [-m max_message] [-p port]
 *	    [-s max_streams]
 *
 * Listens on 127.0.0.1 (port 0: one the kernel picks) and serves every
 * connection as a relayed session of plaintext HTTP/2 (prior knowledge).
 * Prints "port N" once it listens.  On SIGTERM it drains (grpc_drain())
 * and exits once the last session has closed.
 *
 * Methods:
 *	/grpc.health.v1.Health/Check	SERVING for "" and
 *					"mezite.auth.v1.Auth", NOT_FOUND
 *					for any other service
 *	/mezite.test.Test/Echo		see tests/grpc/test.proto
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"
#include "util.h"
#include "grpc.h"
#include "health.pb-c.h"
#include "test.pb-c.h"

static void	 health_check(struct grpc_call *, const ProtobufCMessage *);
static void	 echo(struct grpc_call *, const ProtobufCMessage *);
static void	 closed(const Mezite__ConnMeta *);
static void	 on_accept(int, short, void *);
static void	 on_term(int, short, void *);
static void	 usage(void) __attribute__((__noreturn__));

static const struct grpc_method methods[] = {
	{ "/grpc.health.v1.Health/Check",
	    &grpc__health__v1__health_check_request__descriptor,
	    health_check },
	{ "/mezite.test.Test/Echo",
	    &mezite__test__echo_request__descriptor, echo },
};

static struct grpc_service	 service = {
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.max_message = 64 * 1024,
	.max_streams = 100,
	.memory = 16 * 1024 * 1024,
	.idle_timeout = 60,
	.closed = closed,
};

static struct event	 listen_ev;
static int		 listen_fd = -1;
static uint64_t		 next_id = 1;
static int		 stopping;

static void
usage(void)
{
	fprintf(stderr, "usage: grpc_testd [-v] [-i idle] [-M memory] "
	    "[-m max_message] [-p port] [-s max_streams]\n");
	exit(1);
}

static void
health_check(struct grpc_call *call, const ProtobufCMessage *m)
{
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)m;
	Grpc__Health__V1__HealthCheckResponse	 res =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (strcmp(req->service, "") != 0 &&
	    strcmp(req->service, "mezite.auth.v1.Auth") != 0) {
		grpc_error(call, GRPC_NOT_FOUND, "unknown service %s",
		    req->service);
		return;
	}
	res.status =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	grpc_reply(call, &res.base);
}

static void
echo(struct grpc_call *call, const ProtobufCMessage *m)
{
	const Mezite__Test__EchoRequest	*req = (const void *)m;
	const Mezite__ConnMeta		*meta = grpc_call_meta(call);
	Mezite__Test__EchoReply		 res = MEZITE__TEST__ECHO_REPLY__INIT;
	struct sockaddr_storage		 ss;
	socklen_t			 sslen;
	char				 client[ADDRSTRLEN];
	uint8_t				*big = NULL;

	if (req->no_answer)
		return;
	if (req->status != 0) {
		grpc_error(call, req->status, "%s", req->message);
		return;
	}
	res.data = req->data;
	if (req->reply_size > 0) {
		if ((big = calloc(1, req->reply_size)) == NULL) {
			grpc_error(call, GRPC_RESOURCE_EXHAUSTED, "no memory");
			return;
		}
		memset(big, 'x', req->reply_size);
		res.data.data = big;
		res.data.len = req->reply_size;
	}
	res.method = (char *)grpc_call_method(call);
	if (addr_from_pb(meta->client, &ss, &sslen) == 0)
		res.client = (char *)addr_str((struct sockaddr *)&ss, client,
		    sizeof(client));
	res.session = meta->id;
	grpc_reply(call, &res.base);
	if (req->twice)
		grpc_reply(call, &res.base);
	free(big);
}

static void
closed(const Mezite__ConnMeta *meta)
{
	if (stopping && grpc_sessions() == 0)
		(void)event_loopexit(NULL);
}

static void
on_accept(int fd, short event, void *arg)
{
	Mezite__ConnMeta	 m = MEZITE__CONN_META__INIT, *meta;
	struct sockaddr_storage	 ss, ls;
	socklen_t		 sslen = sizeof(ss), lslen = sizeof(ls);
	struct pb_addr		 client, local;
	uint8_t			 buf[512];
	size_t			 len;
	int			 s, on = 1;

	if ((s = accept4(fd, (struct sockaddr *)&ss, &sslen,
	    SOCK_CLOEXEC)) == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept");
		return;
	}
	if (getsockname(s, (struct sockaddr *)&ls, &lslen) == -1 ||
	    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1) {
		log_warn("accept");
		close(s);
		return;
	}

	/* The metadata as a master would pass it. */
	addr_to_pb((struct sockaddr *)&ss, &client);
	addr_to_pb((struct sockaddr *)&ls, &local);
	m.id = next_id++;
	m.worker = "auth";
	m.alpn = "h2";
	m.client = &client.pb;
	m.local = &local.pb;
	m.mode = MEZITE__HANDOFF_MODE__RELAY;
	if ((len = mezite__conn_meta__get_packed_size(&m)) > sizeof(buf))
		fatalx("meta too large");
	(void)mezite__conn_meta__pack(&m, buf);
	if ((meta = meta_decode(buf, len)) == NULL)
		fatalx("meta does not decode");
	(void)grpc_accept(s, meta);
}

static void
on_term(int sig, short event, void *arg)
{
	if (stopping)
		return;
	stopping = 1;
	log_debug("draining");
	(void)event_del(&listen_ev);
	close(listen_fd);
	grpc_drain();
	if (grpc_sessions() == 0)
		(void)event_loopexit(NULL);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	struct event		 term_ev, int_ev;
	const char		*errstr;
	int			 ch, verbose = 0, port = 0, on = 1;

	while ((ch = getopt(argc, argv, "i:M:m:p:s:v")) != -1) {
		switch (ch) {
		case 'i':
			service.idle_timeout = strtonum(optarg, 1, 3600,
			    &errstr);
			if (errstr != NULL)
				errx(1, "idle timeout %s", errstr);
			break;
		case 'M':
			service.memory = strtonum(optarg, 1, 1LL << 32,
			    &errstr);
			if (errstr != NULL)
				errx(1, "memory %s", errstr);
			break;
		case 'm':
			service.max_message = strtonum(optarg, 1, UINT32_MAX,
			    &errstr);
			if (errstr != NULL)
				errx(1, "max message %s", errstr);
			break;
		case 'p':
			port = strtonum(optarg, 0, 65535, &errstr);
			if (errstr != NULL)
				errx(1, "port %s", errstr);
			break;
		case 's':
			service.max_streams = strtonum(optarg, 1, 100000,
			    &errstr);
			if (errstr != NULL)
				errx(1, "max streams %s", errstr);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();

	log_init(1, LOG_DAEMON);
	log_setverbose(verbose);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal");
	(void)event_init();
	grpc_init(&service);

	if ((listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1)
		fatal("SO_REUSEADDR");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		fatal("bind");
	if (listen(listen_fd, 128) == -1)
		fatal("listen");
	if (getsockname(listen_fd, (struct sockaddr *)&sin, &slen) == -1)
		fatal("getsockname");
	event_set(&listen_ev, listen_fd, EV_READ | EV_PERSIST, on_accept,
	    NULL);
	if (event_add(&listen_ev, NULL) == -1)
		fatalx("event_add");
	signal_set(&term_ev, SIGTERM, on_term, NULL);
	signal_set(&int_ev, SIGINT, on_term, NULL);
	if (signal_add(&term_ev, NULL) == -1 || signal_add(&int_ev, NULL) == -1)
		fatalx("signal_add");

	printf("port %d\n", ntohs(sin.sin_port));
	if (fflush(stdout) == EOF)
		fatal("stdout");

	if (event_dispatch() == -1)
		fatalx("event_dispatch");
	(void)signal_del(&term_ev);
	(void)signal_del(&int_ev);
	log_debug("exiting");
	return (0);
}
