/*
 * libFuzzer target for the tunnel worker's sessions,
 * workers/tunnel/session.c: a whole session, nghttp2 and all, fed the
 * bytes of a hostile agent.
 *
 * The input:
 *
 *	byte 0		bit 0: the session is handed over in kernel TLS mode
 *			(read with ktls_recv(), which on a socket pair
 *			reads plain data; close_notify then fails), bit 1:
 *			the registry refuses the node, bits 2-7: the size
 *			of each write, 1 to 63 bytes, or 0 for all at once
 *	the rest	what the agent sends after the proxy's connection
 *			preface (its SETTINGS first), at most 64 KiB of it
 *
 * The session is a socket pair's end given to session_accept(); the
 * agent writes its bytes on the other end, reads and drops all the
 * proxy writes, and the event loop runs a round after each write.  Once
 * the node is online a dial is made to its service "echo"; a stream
 * that comes of it is written to and half-closed, and closed at the
 * end.  When the bytes are out the agent ends its side: the session
 * must close within a bounded number of rounds, call closed() once,
 * take the node offline if it went online, answer the dial once, and
 * leave no event and no socket behind.  Leaked memory is libFuzzer's to
 * find.
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
#include "tunnel.h"

#include "fuzz.h"

#define FUZZ_MAXSTREAM	65536
#define FUZZ_RETRIES	16	/* rounds to wait for the proxy to read */
#define FUZZ_ROUNDS	1024	/* to close, once the agent has ended */
#define FUZZ_FDSCAN	64

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	 fuzz_online(struct tsession *);
static void	 fuzz_offline(struct tsession *);
static void	 fuzz_closed(const Mezite__ConnMeta *);
static void	 fuzz_answer(struct tdial *, Mezite__DialError, const char *,
		    int);

static const struct tunnel_limits fuzz_limits = { 3600, 3600 };

static const struct tunnel_cb fuzz_cb = {
	.online = fuzz_online,
	.offline = fuzz_offline,
	.closed = fuzz_closed,
	.answer = fuzz_answer,
};

static struct event_base	*base;
static int		 logfd[2] = { -1, -1 };	/* the log sink, far end */
static int		 lowfd = -1;
static int		 presock[FUZZ_FDSCAN];	/* sockets then, from lowfd */

/* This run's */
static const Mezite__ConnMeta	*cur;
static struct tsession	*online;
static int		 refuse, nonline, noffline, nclosed, nanswers;
static int		 dialed;		/* a dial was tried */
static int		 ndialed;	/* and made */
static int		 streamfd = -1;

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
	log_procinit("fuzz_tunnel");
	log_setsink(logfd[0]);
	log_setverbose(1);
	if ((base = event_init()) == NULL)
		return (-1);
	session_init(&fuzz_limits, &fuzz_cb);
	if ((lowfd = dup(logfd[0])) == -1 || close(lowfd) == -1)
		return (-1);
	for (fd = lowfd; fd < lowfd + FUZZ_FDSCAN; fd++)
		presock[fd - lowfd] = is_socket(fd);
	return (0);
}

static int
fuzz_online(struct tsession *s)
{
	const Mezite__Tunnel__V1__Hello	*h = session_hello(s);

	FUZZ_ASSERT(session_meta(s) == cur);
	FUZZ_ASSERT(online == NULL);
	/* What session.c lets through is within tunnel.proto's bounds. */
	FUZZ_ASSERT(strcmp(h->node, "web1") == 0);
	FUZZ_ASSERT(h->n_labels <= TUNNEL_LABELS_MAX);
	FUZZ_ASSERT(h->n_services <= TUNNEL_SERVICES_MAX);
	nonline++;
	if (refuse)
		return (-1);
	online = s;
	return (0);
}

static void
fuzz_offline(struct tsession *s)
{
	FUZZ_ASSERT(s == online);
	online = NULL;
	noffline++;
}

static void
fuzz_closed(const Mezite__ConnMeta *meta)
{
	FUZZ_ASSERT(meta == cur);
	nclosed++;
}

static void
fuzz_answer(struct tdial *d, Mezite__DialError error, const char *msg,
    int fd)
{
	static const char	 ping[] = "ping";

	FUZZ_ASSERT(d->stream == NULL);
	FUZZ_ASSERT((error == MEZITE__DIAL_ERROR__DIAL_OK) == (fd != -1));
	FUZZ_ASSERT(msg != NULL);
	nanswers++;
	if (fd != -1) {
		FUZZ_ASSERT(streamfd == -1);
		streamfd = fd;
		(void)send(fd, ping, sizeof(ping) - 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)shutdown(fd, SHUT_WR);
	}
	free(d);
}

static Mezite__ConnMeta *
fuzz_meta(int ktls)
{
	Mezite__ConnMeta	 m = MEZITE__CONN_META__INIT, *meta;
	Mezite__PeerCert	 c = MEZITE__PEER_CERT__INIT;
	Mezite__Address		 a = MEZITE__ADDRESS__INIT;
	uint8_t			 addr[4] = { 127, 0, 0, 1 }, buf[512];
	size_t			 len;

	a.family = AF_INET;
	a.addr.data = addr;
	a.addr.len = sizeof(addr);
	a.port = 443;
	c.kind = "node";
	c.name = "web1";
	c.serial = "01";
	c.key = "SHA256:00";
	c.fingerprint = "SHA256:01";
	m.id = 1;
	m.worker = "tunnel";
	m.alpn = "mezite-tunnel";
	m.client = &a;
	m.local = &a;
	m.cert = &c;
	m.mode = ktls ? MEZITE__HANDOFF_MODE__KTLS :
	    MEZITE__HANDOFF_MODE__RELAY;
	len = mezite__conn_meta__get_packed_size(&m);
	FUZZ_ASSERT(len <= sizeof(buf));
	FUZZ_ASSERT(mezite__conn_meta__pack(&m, buf) == len);
	FUZZ_ASSERT((meta = meta_decode(buf, len)) != NULL);
	return (meta);
}

/*
 * A turn of the event loop, then the agent reads what came; a node
 * online is dialed, once.
 */
static void
fuzz_round(int fd)
{
	struct tdial	*d;
	uint8_t		 buf[16384];

	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) != -1);
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	if (online != NULL && !dialed) {
		dialed = 1;
		FUZZ_ASSERT((d = calloc(1, sizeof(*d))) != NULL);
		(void)strlcpy(d->node, "web1", sizeof(d->node));
		(void)strlcpy(d->service, "echo", sizeof(d->service));
		(void)strlcpy(d->requester, "fuzz", sizeof(d->requester));
		if (session_dial(online, d) == -1)
			free(d);
		else
			ndialed++;
	}
}

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
	step = data[0] >> 2;
	if (step == 0)
		step = FUZZ_MAXSTREAM;
	p = data + 1;
	left = size - 1;
	if (left > FUZZ_MAXSTREAM)
		left = FUZZ_MAXSTREAM;

	/* sv[0] is the agent's end, sv[1] the session's. */
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	meta = fuzz_meta(data[0] & 1);
	cur = meta;
	refuse = (data[0] & 2) != 0;
	online = NULL;
	nonline = noffline = nclosed = nanswers = dialed = ndialed = 0;
	streamfd = -1;
	FUZZ_ASSERT(session_accept(sv[1], meta, 0) != NULL);

	while (left > 0 && nclosed == 0) {
		len = left < step ? left : step;
		n = send(sv[0], p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			FUZZ_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EPIPE || errno == ECONNRESET);
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

	/* The agent ends: the session must close. */
	(void)shutdown(sv[0], SHUT_WR);
	for (rounds = 0; nclosed == 0; rounds++) {
		FUZZ_ASSERT(rounds <= FUZZ_ROUNDS);
		fuzz_round(sv[0]);
	}
	FUZZ_ASSERT(nclosed == 1);
	FUZZ_ASSERT(session_count() == 0);
	FUZZ_ASSERT(session_streams_total() == 0);
	FUZZ_ASSERT(online == NULL);
	FUZZ_ASSERT(nonline <= 1);
	FUZZ_ASSERT(noffline == (nonline == 1 && !refuse));
	FUZZ_ASSERT(nanswers == ndialed);
	/* And it left nothing in the event loop. */
	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) == 1);
	if (streamfd != -1)
		FUZZ_ASSERT(close(streamfd) == 0);
	FUZZ_ASSERT(close(sv[0]) == 0);

	while (recv(logfd[1], line, sizeof(line), 0) > 0)
		;
	fuzz_leakcheck();
	return (0);
}
