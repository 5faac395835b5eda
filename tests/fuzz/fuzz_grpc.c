/*
 * libFuzzer target for the auth worker's gRPC layer, workers/auth/grpc.c:
 * a whole session, nghttp2 and all, fed a client's bytes.
 *
 * The input:
 *
 *	byte 0		bit 0: the session is handed over in kernel TLS mode
 *			(read with ktls_recv(), which on a socket pair
 *			reads plain data; close_notify then fails), bits
 *			1-7: the size of each write, 1 to 127 bytes, or 0
 *			for all at once
 *	the rest	what the client sends after the connection preface,
 *			at most 64 KiB of it
 *
 * The session is a socket pair's end given to grpc_accept(); the client
 * writes its bytes on the other end, reads and drops all the server
 * writes, and the event loop runs a round after each write.  When the
 * bytes are out (or the server reads no more) the client ends its
 * stream: the session must close within a bounded number of rounds,
 * call closed() once, and leave no event behind.  The service's limits
 * are small, so that refusals come early.  Leaked memory is libFuzzer's
 * to find; a leaked socket is found open after the run.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"
#include "grpc.h"
#include "health.pb-c.h"
#include "test.pb-c.h"

#include "fuzz.h"

#define FUZZ_MAXSTREAM	65536
#define FUZZ_RETRIES	16	/* rounds to wait for the server to read */
#define FUZZ_ROUNDS	1024	/* to close, once the client has ended */
#define FUZZ_REPLY_MAX	65536
#define FUZZ_FDSCAN	64

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 fuzz_check(struct grpc_call *, const ProtobufCMessage *);
static void	 fuzz_echo(struct grpc_call *, const ProtobufCMessage *);
static void	 fuzz_closed(const Mezite__ConnMeta *);

static const struct grpc_method fuzz_methods[] = {
	{ "/grpc.health.v1.Health/Check",
	    &grpc__health__v1__health_check_request__descriptor, fuzz_check },
	{ "/mezite.test.Test/Echo",
	    &mezite__test__echo_request__descriptor, fuzz_echo },
};

static const struct grpc_service fuzz_service = {
	.methods = fuzz_methods,
	.nmethods = sizeof(fuzz_methods) / sizeof(fuzz_methods[0]),
	.max_message = 1024,
	.max_streams = 8,
	.memory = 4096,
	.idle_timeout = 3600,
	.closed = fuzz_closed,
};

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static struct event_base	*base;
static int		 logfd[2] = { -1, -1 };	/* the log sink, far end */
static int		 lowfd = -1;
static int		 presock[FUZZ_FDSCAN];	/* sockets then, from lowfd */

static const Mezite__ConnMeta	*cur;	/* this run's session */
static int		 nclosed;

static int
is_socket(int fd)
{
	struct stat	 st;

	return (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode));
}

static int
fuzz_setup(void)
{
	int	 fd;

	if (base != NULL)
		return (0);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    logfd) == -1)
		return (-1);
	log_procinit("fuzz_grpc");
	log_setsink(logfd[0]);
	log_setverbose(1);
	if ((base = event_init()) == NULL)
		return (-1);
	grpc_init(&fuzz_service);
	if ((lowfd = dup(logfd[0])) == -1 || close(lowfd) == -1)
		return (-1);
	for (fd = lowfd; fd < lowfd + FUZZ_FDSCAN; fd++)
		presock[fd - lowfd] = is_socket(fd);
	return (0);
}

static void
fuzz_check(struct grpc_call *call, const ProtobufCMessage *m)
{
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)m;
	Grpc__Health__V1__HealthCheckResponse	 res =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	FUZZ_ASSERT(grpc_call_meta(call) == cur);
	FUZZ_ASSERT(strcmp(grpc_call_method(call), fuzz_methods[0].path) == 0);
	if (req->service[0] != '\0') {
		grpc_error(call, GRPC_NOT_FOUND, "unknown service %s",
		    req->service);
		return;
	}
	res.status =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	grpc_reply(call, &res.base);
}

/* As grpc_testd's, with a bounded reply. */
static void
fuzz_echo(struct grpc_call *call, const ProtobufCMessage *m)
{
	const Mezite__Test__EchoRequest	*req = (const void *)m;
	Mezite__Test__EchoReply		 res = MEZITE__TEST__ECHO_REPLY__INIT;
	uint8_t				*big = NULL;
	size_t				 len;

	FUZZ_ASSERT(grpc_call_meta(call) == cur);
	if (req->no_answer)
		return;
	if (req->status != 0) {
		grpc_error(call, req->status % 16 + 1, "%s", req->message);
		return;
	}
	res.data = req->data;
	if (req->reply_size > 0) {
		len = req->reply_size % FUZZ_REPLY_MAX;
		FUZZ_ASSERT((big = calloc(1, len + 1)) != NULL);
		res.data.data = big;
		res.data.len = len;
	}
	res.method = (char *)grpc_call_method(call);
	res.session = grpc_call_meta(call)->id;
	grpc_reply(call, &res.base);
	if (req->twice)
		grpc_error(call, GRPC_INTERNAL, "twice");
	free(big);
}

static void
fuzz_closed(const Mezite__ConnMeta *meta)
{
	FUZZ_ASSERT(meta == cur);
	nclosed++;
}

static Mezite__ConnMeta *
fuzz_meta(int ktls)
{
	Mezite__ConnMeta	 m = MEZITE__CONN_META__INIT, *meta;
	Mezite__Address		 a = MEZITE__ADDRESS__INIT;
	uint8_t			 addr[4] = { 127, 0, 0, 1 }, buf[256];
	size_t			 len;

	a.family = AF_INET;
	a.addr.data = addr;
	a.addr.len = sizeof(addr);
	a.port = 443;
	m.id = 1;
	m.worker = "auth";
	m.alpn = "h2";
	m.client = &a;
	m.local = &a;
	m.mode = ktls ? MEZITE__HANDOFF_MODE__KTLS : MEZITE__HANDOFF_MODE__RELAY;
	len = mezite__conn_meta__get_packed_size(&m);
	FUZZ_ASSERT(len <= sizeof(buf));
	FUZZ_ASSERT(mezite__conn_meta__pack(&m, buf) == len);
	FUZZ_ASSERT((meta = meta_decode(buf, len)) != NULL);
	return (meta);
}

/* A turn of the event loop, then the client reads what came. */
static void
fuzz_round(int fd)
{
	uint8_t	 buf[16384];

	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) != -1);
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/*
 * The sockets open are those open before the first run: none leaked,
 * none closed twice.  Other descriptors are not ours: the sanitizers
 * keep pipes to their symbolizer, opened when libFuzzer names a new
 * function.
 */
static void
fuzz_leakcheck(void)
{
	int	 fd;

	for (fd = lowfd; fd < lowfd + FUZZ_FDSCAN; fd++)
		FUZZ_ASSERT(is_socket(fd) == presock[fd - lowfd]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Mezite__ConnMeta	*meta;
	const uint8_t		*p;
	char			 line[64];
	size_t			 left, step, len, rounds;
	ssize_t			 n;
	int			 sv[2], tries = 0;

	if (size < 1)
		return (0);
	FUZZ_ASSERT(fuzz_setup() == 0);
	step = data[0] >> 1;
	if (step == 0)
		step = FUZZ_MAXSTREAM;
	p = data + 1;
	left = size - 1;
	if (left > FUZZ_MAXSTREAM)
		left = FUZZ_MAXSTREAM;

	/* sv[0] is the client's end, sv[1] the session's. */
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	meta = fuzz_meta(data[0] & 1);
	cur = meta;
	nclosed = 0;
	FUZZ_ASSERT(grpc_accept(sv[1], meta) == 0);
	FUZZ_ASSERT(send(sv[0], preface, sizeof(preface) - 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(preface) - 1);

	while (left > 0 && nclosed == 0) {
		len = left < step ? left : step;
		n = send(sv[0], p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			FUZZ_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EPIPE || errno == ECONNRESET);
			/* Full: the server reads no more until it can write. */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				break;
			if (++tries > FUZZ_RETRIES)
				break;
		} else {
			p += n;
			left -= n;
			tries = 0;
		}
		fuzz_round(sv[0]);
	}

	/* The client ends: the session must close. */
	(void)shutdown(sv[0], SHUT_WR);
	for (rounds = 0; nclosed == 0; rounds++) {
		FUZZ_ASSERT(rounds <= FUZZ_ROUNDS);
		fuzz_round(sv[0]);
	}
	FUZZ_ASSERT(nclosed == 1);
	FUZZ_ASSERT(grpc_sessions() == 0);
	/* And it left nothing in the event loop. */
	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) == 1);
	FUZZ_ASSERT(close(sv[0]) == 0);

	while (recv(logfd[1], line, sizeof(line), 0) > 0)
		;
	fuzz_leakcheck();
	return (0);
}
