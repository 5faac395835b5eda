/*
 * libFuzzer target for the privsep framework in common/proc.c.
 *
 * The input is what a less trusted peer (a worker) writes on its channel
 * to the master, and how:
 *
 *	byte 0		flags: bit 0 lets the peer pass descriptors, bit 1
 *			has the peer read what the channel answers (else
 *			it never does: back-pressure), bits 2-3 pick the
 *			channel's maxsize
 *	bytes 1-4	chunk specs, used in turn: (low 7 bits) + 1 is the
 *			chunk's length, bit 7 sends /dev/null along with it
 *	the rest	the byte stream itself, at most 64 KiB of it
 *
 * The channel's table is the master's for a worker (CONN_DONE, a
 * protobuf; STATUS_REQ, no payload, answered with a reply; HANDOFF_ACK,
 * an exact size) with the two kinds of entry it lacks: CTL_FAIL, of any
 * size, checked by its handler, and HANDOFF, which needs a descriptor.
 * Some payloads make their handler refuse the message, keep it, kill
 * the channel or hold it.
 *
 * Each chunk is one sendmsg on a socketpair, then the event loop runs a
 * round.  When the stream is out (or the socket takes no more) the peer
 * closes its end, and the channel must close within a bounded number of
 * rounds.  Checked throughout: a handler runs only on a live channel in
 * its dispatch loop, with the payload the table promised, never while
 * the high-water mark of replies waits; closed() comes once, from the
 * event loop, and leaves no event behind.  Leaked memory is libFuzzer's
 * to find; a leaked descriptor is found open after the run.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"
#include "proc.h"

#include "fuzz.h"

#define FUZZ_SPECS	4
#define FUZZ_MAXSTREAM	65536
#define FUZZ_HIGHWATER	4
#define FUZZ_SNDBUF	4096	/* a few replies fill the channel's socket */
#define FUZZ_RETRIES	4	/* rounds to wait for room to send */
#define FUZZ_KEEP	8	/* payloads the handler keeps at most */
#define FUZZ_FDSCAN	64	/* more than a run can have open at once */
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	 fuzz_setup(void);
static void	 fuzz_handler_check(struct proc_chan *, struct imsg *);
static int	 fuzz_conn_done(struct proc_chan *, struct imsg *, void *);
static int	 fuzz_status_req(struct proc_chan *, struct imsg *, void *);
static int	 fuzz_handoff_ack(struct proc_chan *, struct imsg *, void *);
static int	 fuzz_ctl_fail(struct proc_chan *, struct imsg *, void *);
static int	 fuzz_handoff(struct proc_chan *, struct imsg *, void *);
static void	 fuzz_closed(struct proc_chan *);
static void	 fuzz_round(int, int);
static void	 fuzz_drain(int);
static void	 fuzz_leakcheck(void);

static const struct proc_msg fuzz_msgs[] = {
	{ IMSG_CONN_DONE, PROC_LEN_PB, &mezite__conn_done__descriptor,
	    PROC_FD_NONE, fuzz_conn_done },
	{ IMSG_STATUS_REQ, 0, NULL, PROC_FD_NONE, fuzz_status_req },
	{ IMSG_HANDOFF_ACK, sizeof(uint32_t), NULL, PROC_FD_NONE,
	    fuzz_handoff_ack },
	{ IMSG_CTL_FAIL, PROC_LEN_ANY, NULL, PROC_FD_NONE, fuzz_ctl_fail },
	{ IMSG_HANDOFF, PROC_LEN_ANY, NULL, PROC_FD_NEEDED, fuzz_handoff },
};

static const uint32_t maxsizes[] = { 0, 64, 256, 1024 };

static struct event_base *base;		/* one for every run */
static int	 nullfd = -1;		/* sent along with chunks */
static int	 logfd[2] = { -1, -1 };	/* the log sink, and its far end */
static int	 lowfd = -1;		/* lowest free before the first run */
static int	 preopen[FUZZ_FDSCAN];	/* open then, from lowfd up */

/* One run's channel and what happened to it. */
static struct proc_peer	 peer;
static struct proc_chan	*cur;		/* NULL once closed() freed it */
static int		 nclosed;
static void		*kept[FUZZ_KEEP];
static size_t		 nkept;

static int
fuzz_setup(void)
{
	int	 fd;

	if (base != NULL)
		return (0);
	if ((nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return (-1);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    logfd) == -1)
		return (-1);
	log_procinit("fuzz_proc");
	log_setsink(logfd[0]);
	log_setverbose(0);
	if ((base = event_init()) == NULL)
		return (-1);
	if ((lowfd = dup(nullfd)) == -1 || close(lowfd) == -1)
		return (-1);
	for (fd = lowfd; fd < lowfd + FUZZ_FDSCAN; fd++)
		preopen[fd - lowfd] = fcntl(fd, F_GETFD) != -1;
	return (0);
}

/* What every handler may count on. */
static void
fuzz_handler_check(struct proc_chan *ch, struct imsg *imsg)
{
	FUZZ_ASSERT(cur != NULL && ch == cur);
	FUZZ_ASSERT(!ch->dead && ch->dispatching && !ch->hold);
	/* No request while our replies wait, unless nothing waits for them. */
	FUZZ_ASSERT(ch->gone || proc_queued(ch) < FUZZ_HIGHWATER);
	FUZZ_ASSERT(imsg_get_len(imsg) + IMSG_HEADER_SIZE <=
	    (peer.maxsize != 0 ? peer.maxsize : MAX_IMSGSIZE));
}

/* The id says what to do: 0 is refused, an odd one is kept. */
static int
fuzz_conn_done(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__ConnDone	*cd = msg;

	fuzz_handler_check(ch, imsg);
	FUZZ_ASSERT(imsg->fd == -1);
	FUZZ_ASSERT(cd != NULL);
	FUZZ_ASSERT(cd->base.descriptor == &mezite__conn_done__descriptor);
	if (cd->id == 0)
		return (-1);
	if ((cd->id & 1) && nkept < FUZZ_KEEP) {
		kept[nkept++] = cd;
		return (1);
	}
	return (0);
}

static int
fuzz_status_req(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Status	 st = MEZITE__STATUS__INIT;

	fuzz_handler_check(ch, imsg);
	FUZZ_ASSERT(imsg->fd == -1 && msg == NULL);
	FUZZ_ASSERT(imsg_get_len(imsg) == 0);
	st.version = "fuzz";
	st.connections_total = imsg_get_id(imsg);
	FUZZ_ASSERT(proc_compose_pb(ch, IMSG_STATUS, imsg_get_id(imsg), -1,
	    &st.base) == 0);
	return (0);
}

/* 0 kills the channel from inside its handler, 1 holds it. */
static int
fuzz_handoff_ack(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	uint32_t	 n;

	fuzz_handler_check(ch, imsg);
	FUZZ_ASSERT(imsg->fd == -1 && msg == NULL);
	FUZZ_ASSERT(imsg_get_data(imsg, &n, sizeof(n)) == 0);
	switch (n) {
	case 0:
		proc_chan_kill(ch, "acknowledged nothing");
		FUZZ_ASSERT(ch->dead && nclosed == 0);
		proc_chan_kill(ch, "twice");
		break;
	case 1:
		ch->hold = 1;
		break;
	}
	return (0);
}

static int
fuzz_ctl_fail(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__CtlError	*e;

	fuzz_handler_check(ch, imsg);
	FUZZ_ASSERT(imsg->fd == -1 && msg == NULL);
	if ((e = pb_unpack(&mezite__ctl_error__descriptor, imsg)) == NULL)
		return (-1);
	pb_free(e);
	return (0);
}

/* Takes the descriptor; a payload of more than 64 bytes is refused. */
static int
fuzz_handoff(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	int	 fd;

	fuzz_handler_check(ch, imsg);
	FUZZ_ASSERT(peer.fdpass && msg == NULL);
	FUZZ_ASSERT((fd = imsg_get_fd(imsg)) != -1);
	FUZZ_ASSERT(fcntl(fd, F_GETFD) == FD_CLOEXEC);
	FUZZ_ASSERT(close(fd) == 0);
	return (imsg_get_len(imsg) > 64 ? -1 : 0);
}

static void
fuzz_closed(struct proc_chan *ch)
{
	FUZZ_ASSERT(ch == cur && nclosed == 0);
	FUZZ_ASSERT(ch->dead && !ch->dispatching);
	nclosed++;
	proc_chan_clear(ch);
	free(ch);
	cur = NULL;
}

/* The peer reads and drops what it was sent, descriptors and all. */
static void
fuzz_drain(int s)
{
	unsigned char	 buf[4096];
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr	 msg;
	struct iovec	 iov;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		if (recvmsg(s, &msg, MSG_DONTWAIT) <= 0)
			break;
		/* The channel sends the peer no descriptor. */
		FUZZ_ASSERT(msg.msg_controllen == 0);
	}
}

/*
 * One round of the event loop, and what the owner and the peer do
 * between rounds: the owner releases a channel it held, as the control
 * code does once a forwarded request is answered.
 */
static void
fuzz_round(int s, int peer_reads)
{
	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) != -1);
	if (cur != NULL && cur->hold) {
		cur->hold = 0;
		if (!cur->dispatching)
			proc_chan_io(cur, 0, 0);
	}
	if (peer_reads && s != -1)
		fuzz_drain(s);
}

/*
 * A run's descriptors take the lowest numbers free, from lowfd up: in
 * that window only what was open before the first run (inherited, say)
 * may be open after a run.
 */
static void
fuzz_leakcheck(void)
{
	int	 fd;

	for (fd = lowfd; fd < lowfd + FUZZ_FDSCAN; fd++)
		FUZZ_ASSERT((fcntl(fd, F_GETFD) != -1) ==
		    preopen[fd - lowfd]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*specs, *p;
	char		 line[64];
	size_t		 left, len, i, rounds;
	uint8_t		 flags;
	int		 sv[2], withfd, tries, sndbuf = FUZZ_SNDBUF;
	int		 peer_reads, sending = 1;

	if (size < 1 + FUZZ_SPECS)
		return (0);
	FUZZ_ASSERT(fuzz_setup() == 0);
	flags = data[0];
	specs = data + 1;
	p = data + 1 + FUZZ_SPECS;
	left = size - 1 - FUZZ_SPECS;
	if (left > FUZZ_MAXSTREAM)
		left = FUZZ_MAXSTREAM;
	peer_reads = (flags & 2) != 0;

	memset(&peer, 0, sizeof(peer));
	peer.name = "a worker";
	peer.msgs = fuzz_msgs;
	peer.nmsgs = nitems(fuzz_msgs);
	peer.highwater = FUZZ_HIGHWATER;
	peer.maxsize = maxsizes[(flags >> 2) & 3];
	peer.fdpass = flags & 1;
	nclosed = 0;
	nkept = 0;

	/* sv[0] is the peer's end, sv[1] the channel's. */
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	FUZZ_ASSERT(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	FUZZ_ASSERT(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    sizeof(sndbuf)) == 0);
	FUZZ_ASSERT((cur = calloc(1, sizeof(*cur))) != NULL);
	FUZZ_ASSERT(proc_chan_event(cur, sv[1], &peer, "worker.0", NULL,
	    fuzz_closed) == 0);

	for (i = 0; sending && left > 0; i++) {
		len = (specs[i % FUZZ_SPECS] & 0x7f) + 1;
		withfd = (specs[i % FUZZ_SPECS] & 0x80) != 0;
		if (len > left)
			len = left;
		for (tries = 0; fuzz_sendmsg(sv[0], p, len, withfd ? nullfd : -1) == -1;
		    tries++) {
			/* Full: give the channel rounds to make room. */
			FUZZ_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK);
			if (tries == FUZZ_RETRIES || cur == NULL) {
				sending = 0;
				break;
			}
			fuzz_round(sv[0], peer_reads);
		}
		p += len;
		left -= len;
		fuzz_round(sv[0], peer_reads);
		if (cur == NULL)
			sending = 0;
	}

	/* The peer leaves: the channel must notice, and close. */
	FUZZ_ASSERT(close(sv[0]) == 0);
	for (rounds = 0; cur != NULL; rounds++) {
		FUZZ_ASSERT(rounds <= size + 16);
		fuzz_round(-1, 0);
	}
	FUZZ_ASSERT(nclosed == 1);
	/* And it left nothing in the event loop. */
	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) == 1);
	FUZZ_ASSERT(nclosed == 1);

	for (i = 0; i < nkept; i++)
		pb_free(kept[i]);
	while (recv(logfd[1], line, sizeof(line), 0) > 0)
		;
	fuzz_leakcheck();
	return (0);
}
