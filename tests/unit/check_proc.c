/*
 * Unit tests for the privsep framework in common/proc.c.
 *
 * Every test drives one channel over a real AF_UNIX socketpair with a
 * real libevent base, the way the processes do: the test holds the far
 * end (the peer) and writes to it with a plain imsgbuf, or raw bytes when
 * the message must be malformed.  The channel's owner is this file: its
 * closed() frees the channel, so that valgrind sees any use of a channel
 * after its owner let go of it.  What the channel logs goes to a
 * datagram socketpair (log_setsink), where the tests read it back.
 *
 * Each test checks at its end that it left no descriptor open.
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"
#include "proc.h"
#include "util.h"

/* Message types of the test table. */
enum {
	T_PING = 1,		/* no payload */
	T_U32,			/* a uint32_t */
	T_PB,			/* ConnDone */
	T_FD,			/* no payload, a descriptor */
	T_ANY,			/* any payload */
	T_REFUSE,		/* the handler refuses it */
	T_KILL,			/* the handler kills the channel */
	T_REQ,			/* a uint32_t, answered with T_REPLY */
	T_HOLD,			/* the handler holds the channel */
	T_LOSSY,		/* a descriptor, or word that it was lost */
	T_NTYPES,
	T_UNKNOWN = 77,		/* in no table */
	T_REPLY = 100		/* channel -> peer */
};

#define T_HIGHWATER	4
#define T_REPLYSIZE	4096	/* a few fill the small socket buffer */
#define T_NREQ		64
#define T_ROUNDS	200	/* event loop rounds before giving up */
#define T_LOGMAX	32
#define T_LOGLINE	512

static int	 t_ping(struct proc_chan *, struct imsg *, void *);
static int	 t_u32(struct proc_chan *, struct imsg *, void *);
static int	 t_pb(struct proc_chan *, struct imsg *, void *);
static int	 t_fd(struct proc_chan *, struct imsg *, void *);
static int	 t_any(struct proc_chan *, struct imsg *, void *);
static int	 t_refuse(struct proc_chan *, struct imsg *, void *);
static int	 t_kill(struct proc_chan *, struct imsg *, void *);
static int	 t_req(struct proc_chan *, struct imsg *, void *);
static int	 t_hold(struct proc_chan *, struct imsg *, void *);
static int	 t_lossy(struct proc_chan *, struct imsg *, void *);
static void	 t_closed(struct proc_chan *);
static int	 t_nfds(void);
static int	 at_eof(int);
static void	 mkpipe(int [2]);
static void	 t_setup(const struct proc_peer *);
static void	 t_teardown(void);
static void	 t_loop(int);
static void	 t_loop_closed(void);
static void	 t_send(uint32_t, int, const void *, size_t);
static void	 t_flush(void);
static void	 t_sendraw(uint32_t, const void *, size_t);
static void	 t_log_drain(void);
static int	 t_log_count(int, const char *);
static void	 t_fatal_check(void);
static void	 t_fatal_setup(const char *);
static void	 t_fatal_survived(void) __attribute__((__noreturn__));
static Suite	*proc_suite(void);
static Suite	*proc_fatal_suite(void);

static const struct proc_msg t_msgs[] = {
	{ T_PING, 0, NULL, PROC_FD_NONE, t_ping },
	{ T_U32, sizeof(uint32_t), NULL, PROC_FD_NONE, t_u32 },
	{ T_PB, PROC_LEN_PB, &mezite__conn_done__descriptor, PROC_FD_NONE,
	    t_pb },
	{ T_FD, 0, NULL, PROC_FD_NEEDED, t_fd },
	{ T_ANY, PROC_LEN_ANY, NULL, PROC_FD_NONE, t_any },
	{ T_REFUSE, 0, NULL, PROC_FD_NONE, t_refuse },
	{ T_KILL, 0, NULL, PROC_FD_NONE, t_kill },
	{ T_REQ, sizeof(uint32_t), NULL, PROC_FD_NONE, t_req },
	{ T_HOLD, 0, NULL, PROC_FD_NONE, t_hold },
	{ T_LOSSY, 0, NULL, PROC_FD_NEEDED | PROC_FD_LOSSY, t_lossy },
};

/* A less privileged peer that may pass descriptors. */
static const struct proc_peer t_untrusted = {
	"the test peer", 0, t_msgs, nitems(t_msgs), 0, 0, 1
};

/* The same, not allowed to pass descriptors at all. */
static const struct proc_peer t_nofdpass = {
	"the test peer", 0, t_msgs, nitems(t_msgs), 0, 0, 0
};

/* The same, slowed down once T_HIGHWATER replies wait for it. */
static const struct proc_peer t_slow = {
	"the test peer", 0, t_msgs, nitems(t_msgs), T_HIGHWATER, 0, 1
};

/* A more privileged peer: its mistakes are fatal. */
static const struct proc_peer t_trusted = {
	"the test parent", 1, t_msgs, nitems(t_msgs), 0, 0, 1
};

/* Everything one test sees; reset by t_setup. */
static struct {
	struct event_base	*base;
	struct proc_chan	*ch;		/* NULL once closed() ran */
	struct imsgbuf		 pib;		/* the peer's end */
	int			 peer;		/* -1 once the peer left */
	int			 logfd[2];	/* [0] the sink, [1] we read */
	int			 nfds;		/* open before the test */
	int			 calls[T_NTYPES];
	int			 closed;
	uint32_t		 u32;		/* last T_U32 or T_REQ value */
	uint64_t		 pb_id;
	int			 pb_keep;	/* t_pb keeps its payload */
	Mezite__ConnDone	*kept;
	int			 fd_ok;		/* T_FD came with a live fd */
	int			 lost;		/* T_LOSSY came without */
	size_t			 any_len;
	int			 seen[T_NREQ];
	int			 nlog;
	int			 logpri[T_LOGMAX];
	char			 log[T_LOGMAX][T_LOGLINE];
} t;

static const char	*t_fatal_want;	/* what a fatal exit must say */

/*
 * Handlers.  Each checks what the framework promises it: its own live
 * channel, inside the dispatch loop, with the payload the table says.
 */

#define T_HANDLER_CHECK(ch, imsg) do {					\
	ck_assert_ptr_eq((ch), t.ch);					\
	ck_assert_int_eq((ch)->dead, 0);				\
	ck_assert_int_eq((ch)->dispatching, 1);				\
	ck_assert_uint_lt(imsg_get_type(imsg), T_NTYPES);		\
	t.calls[imsg_get_type(imsg)]++;					\
} while (0)

static int
t_ping(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	ck_assert_ptr_null(msg);
	ck_assert_uint_eq(imsg_get_len(imsg), 0);
	ck_assert_int_eq(imsg->fd, -1);
	return (0);
}

static int
t_u32(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	ck_assert_int_eq(imsg_get_data(imsg, &t.u32, sizeof(t.u32)), 0);
	return (0);
}

static int
t_pb(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__ConnDone	*cd = msg;

	T_HANDLER_CHECK(ch, imsg);
	ck_assert_ptr_nonnull(cd);
	ck_assert_ptr_eq(cd->base.descriptor, &mezite__conn_done__descriptor);
	t.pb_id = cd->id;
	if (t.pb_keep) {
		ck_assert_ptr_null(t.kept);
		t.kept = cd;
		return (1);
	}
	return (0);
}

static int
t_fd(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	ck_assert_int_ge(imsg->fd, 0);
	ck_assert_int_eq(fcntl(imsg->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	t.fd_ok = write(imsg->fd, "f", 1) == 1;
	/* Left in the imsg: the framework closes it. */
	return (0);
}

static int
t_any(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	ck_assert_ptr_null(msg);
	t.any_len = imsg_get_len(imsg);
	return (0);
}

static int
t_refuse(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	return (-1);
}

static int
t_kill(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	proc_chan_kill(ch, "killed by its own handler");
	ck_assert_int_eq(ch->dead, 1);
	/* Once is enough: a second kill says nothing and changes nothing. */
	proc_chan_kill(ch, "killed twice");
	ck_assert_int_eq(t.closed, 0);
	return (0);
}

static int
t_req(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	static unsigned char	 reply[T_REPLYSIZE];

	T_HANDLER_CHECK(ch, imsg);
	/* Back-pressure: no request is taken while the peer owes us. */
	ck_assert_uint_lt(proc_queued(ch), T_HIGHWATER);
	ck_assert_int_eq(imsg_get_data(imsg, &t.u32, sizeof(t.u32)), 0);
	ck_assert_uint_lt(t.u32, T_NREQ);
	t.seen[t.u32]++;
	memcpy(reply, &t.u32, sizeof(t.u32));
	ck_assert_int_eq(proc_compose(ch, T_REPLY, t.u32, -1, reply,
	    sizeof(reply)), 0);
	return (0);
}

static int
t_lossy(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	if (imsg_get_fd_lost(imsg)) {
		ck_assert_int_eq(imsg->fd, -1);
		t.lost++;
	} else
		ck_assert_int_ge(imsg->fd, 0);
	return (0);
}

static int
t_hold(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	T_HANDLER_CHECK(ch, imsg);
	ch->hold = 1;
	return (0);
}

/* The owner's closed(): called once, from the event loop, never inside. */
static void
t_closed(struct proc_chan *ch)
{
	ck_assert_ptr_eq(ch, t.ch);
	ck_assert_int_eq(ch->dead, 1);
	ck_assert_int_eq(ch->dispatching, 0);
	t.closed++;
	proc_chan_clear(ch);
	free(ch);
	t.ch = NULL;
}

/*
 * Helpers
 */

/* Descriptors open in this process. */
static int
t_nfds(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	ck_assert_ptr_nonnull(d = opendir("/proc/self/fd"));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	ck_assert_int_eq(closedir(d), 0);
	return (n);
}

/* True once every write end of the pipe has been closed. */
static int
at_eof(int rfd)
{
	char	 c;

	return (read(rfd, &c, 1) == 0);
}

/* A pipe whose read end does not block, for at_eof(). */
static void
mkpipe(int p[2])
{
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(fd_nonblock(p[0]), 0);
}

static void
t_setup(const struct proc_peer *peer)
{
	int	 sv[2];

	memset(&t, 0, sizeof(t));
	t.nfds = t_nfds();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, t.logfd), 0);
	ck_assert_int_eq(fd_nonblock(t.logfd[1]), 0);
	log_procinit("check_proc");
	log_setsink(t.logfd[0]);
	log_setverbose(1);

	ck_assert_ptr_nonnull(t.base = event_init());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(fd_nonblock(sv[0]), 0);
	t.peer = sv[1];
	ck_assert_int_eq(imsgbuf_init(&t.pib, t.peer), 0);
	ck_assert_ptr_nonnull(t.ch = calloc(1, sizeof(*t.ch)));
	ck_assert_int_eq(proc_chan_event(t.ch, sv[0], peer, "test.0", NULL,
	    t_closed), 0);
	ck_assert_int_eq(t.ch->events, EV_READ);
}

static void
t_teardown(void)
{
	if (t.ch != NULL) {
		proc_chan_clear(t.ch);
		free(t.ch);
		t.ch = NULL;
	}
	pb_free(t.kept);
	t.kept = NULL;
	imsgbuf_clear(&t.pib);
	if (t.peer != -1)
		ck_assert_int_eq(close(t.peer), 0);
	t.peer = -1;
	event_base_free(t.base);
	t.base = NULL;
	log_setsink(-1);
	ck_assert_int_eq(close(t.logfd[0]), 0);
	ck_assert_int_eq(close(t.logfd[1]), 0);
	ck_assert_int_eq(t_nfds(), t.nfds);
}

/* Run the event loop for a number of rounds that do not wait. */
static void
t_loop(int rounds)
{
	while (rounds-- > 0)
		ck_assert_int_ne(event_base_loop(t.base, EVLOOP_NONBLOCK), -1);
}

/* Run the event loop until the channel's owner is told it closed. */
static void
t_loop_closed(void)
{
	int	 i;

	for (i = 0; i < T_ROUNDS && t.closed == 0; i++)
		t_loop(1);
	ck_assert_int_eq(t.closed, 1);
	ck_assert_ptr_null(t.ch);
	/* And never again. */
	t_loop(5);
	ck_assert_int_eq(t.closed, 1);
}

/* Queue one message at the peer; t_flush sends what is queued at once. */
static void
t_send(uint32_t type, int fd, const void *data, size_t len)
{
	ck_assert_int_eq(imsg_compose(&t.pib, type, 0, 0, fd, data, len), 0);
}

static void
t_flush(void)
{
	ck_assert_int_eq(imsgbuf_flush(&t.pib), 0);
}

/* A message whose header says what the payload is: any bytes at all. */
static void
t_sendraw(uint32_t type, const void *data, size_t len)
{
	struct imsg_hdr	 hdr;
	unsigned char	 buf[256];

	ck_assert_uint_le(sizeof(hdr) + len, sizeof(buf));
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.len = sizeof(hdr) + len;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), data, len);
	ck_assert_int_eq(write(t.peer, buf, sizeof(hdr) + len),
	    (ssize_t)(sizeof(hdr) + len));
}

/* Collect what was logged: one datagram per line, priority first. */
static void
t_log_drain(void)
{
	char	 buf[T_LOGLINE];
	ssize_t	 n;

	while ((n = recv(t.logfd[1], buf, sizeof(buf) - 1, 0)) > 0) {
		ck_assert_int_lt(t.nlog, T_LOGMAX);
		buf[n] = '\0';
		t.logpri[t.nlog] = (unsigned char)buf[0];
		strlcpy(t.log[t.nlog], buf + 1, sizeof(t.log[0]));
		t.nlog++;
	}
	ck_assert_int_eq(n, -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Lines logged at pri or worse that contain needle (NULL: any). */
static int
t_log_count(int pri, const char *needle)
{
	int	 i, n = 0;

	t_log_drain();
	for (i = 0; i < t.nlog; i++)
		if (t.logpri[i] <= pri &&
		    (needle == NULL || strstr(t.log[i], needle) != NULL))
			n++;
	return (n);
}

/*
 * What the table accepts reaches its handler.
 */

START_TEST(test_accepted)
{
	Mezite__ConnDone	 cd = MEZITE__CONN_DONE__INIT;
	uint32_t		 v = 0xfeedbeef;
	int			 p[2];

	t_setup(&t_untrusted);
	mkpipe(p);
	cd.id = 42;
	t_send(T_PING, -1, NULL, 0);
	t_send(T_U32, -1, &v, sizeof(v));
	ck_assert_int_eq(pb_compose(&t.pib, T_PB, 0, -1, &cd.base), 0);
	t_send(T_FD, p[1], NULL, 0);
	t_send(T_ANY, -1, "anything", 8);
	t_send(T_ANY, -1, NULL, 0);
	t_flush();
	t_loop(5);

	ck_assert_ptr_nonnull(t.ch);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_U32], 1);
	ck_assert_uint_eq(t.u32, v);
	ck_assert_int_eq(t.calls[T_PB], 1);
	ck_assert_uint_eq(t.pb_id, 42);
	ck_assert_int_eq(t.calls[T_FD], 1);
	ck_assert(t.fd_ok);
	ck_assert_int_eq(t.calls[T_ANY], 2);
	ck_assert_uint_eq(t.any_len, 0);
	/* The descriptor the handler left was closed after it. */
	ck_assert_int_eq(read(p[0], &v, 1), 1);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(t.closed, 0);
	ck_assert_int_eq(t.ch->events, EV_READ);
	ck_assert_int_eq(t_log_count(LOG_WARNING, NULL), 0);

	ck_assert_int_eq(close(p[0]), 0);
	t_teardown();
}
END_TEST

/*
 * A type the table does not name closes the channel, after the loop.
 * Driven here by hand, to see that closed() waits for the event loop.
 */
START_TEST(test_unknown_type)
{
	t_setup(&t_untrusted);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_UNKNOWN, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();

	proc_chan_io(t.ch, 1, 0);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.ch->dead, 1);
	ck_assert_int_eq(t.ch->events, 0);
	ck_assert_int_eq(t.closed, 0);
	/* A dead channel does nothing more, whatever it is told. */
	proc_chan_io(t.ch, 1, 1);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.closed, 0);

	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t_log_count(LOG_ERR, "unexpected message"), 1);
	ck_assert_int_eq(t_log_count(LOG_ERR, "closing its channel"), 1);
	t_teardown();
}
END_TEST

/* The same driven by the event loop alone. */
START_TEST(test_unknown_type_evloop)
{
	t_setup(&t_untrusted);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_UNKNOWN, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_U32, -1, "four", 4);
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_U32], 0);
	ck_assert_int_eq(t_log_count(LOG_ERR, "unexpected message"), 1);
	t_teardown();
}
END_TEST

/* An exact size means exactly that size. */
START_TEST(test_wrong_size)
{
	static const size_t	 sizes[] = { 0, 1, 3, 5, 8, 100 };
	unsigned char		 buf[128];
	uint32_t		 v = 7;

	memset(buf, 0x5a, sizeof(buf));
	t_setup(&t_untrusted);
	t_send(T_U32, -1, &v, sizeof(v));
	t_send(T_U32, -1, buf, sizes[_i]);
	t_send(T_U32, -1, &v, sizeof(v));
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_U32], 1);
	ck_assert_uint_eq(t.u32, 7);
	ck_assert_int_eq(t_log_count(LOG_ERR, "expected 4"), 1);
	t_teardown();

	/* No payload is no payload. */
	t_setup(&t_untrusted);
	t_send(T_PING, -1, buf, sizes[_i] + 1);
	t_send(T_PING, -1, NULL, 0);
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 0);
	ck_assert_int_eq(t_log_count(LOG_ERR, "expected 0"), 1);
	t_teardown();
}
END_TEST

/* A protobuf payload must unpack as the table's message. */
START_TEST(test_bad_pb)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
	} bad[] = {
		{ "\x08", 1 },			/* the varint is cut */
		{ "\x08\xff", 2 },		/* still cut */
		{ "\x0f", 1 },			/* no such wire type */
		{ "\x0a\x05xy", 4 },		/* a string longer than left */
		{ "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11 },
	};

	t_setup(&t_untrusted);
	t_sendraw(T_PB, "\x08\x2a", 2);		/* id 42: fine */
	t_sendraw(T_PB, bad[_i].bytes, bad[_i].len);
	t_sendraw(T_PB, "\x08\x2b", 2);
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PB], 1);
	ck_assert_uint_eq(t.pb_id, 42);
	ck_assert_int_eq(t_log_count(LOG_ERR, "malformed"), 1);
	t_teardown();
}
END_TEST

/* An empty protobuf payload is a message with every field at default. */
START_TEST(test_empty_pb)
{
	t_setup(&t_untrusted);
	t.pb_id = 1;
	t_sendraw(T_PB, "", 0);
	t_loop(5);
	ck_assert_int_eq(t.calls[T_PB], 1);
	ck_assert_uint_eq(t.pb_id, 0);
	ck_assert_ptr_nonnull(t.ch);
	t_teardown();
}
END_TEST

/* A descriptor with a message that takes none: closed, and not leaked. */
START_TEST(test_fd_unwanted)
{
	int	 p[2];

	t_setup(&t_untrusted);
	mkpipe(p);
	t_send(T_PING, p[1], NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();
	ck_assert(!at_eof(p[0]));	/* in flight, not yet received */
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 0);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(t_log_count(LOG_ERR, "with a descriptor"), 1);
	ck_assert_int_eq(close(p[0]), 0);
	t_teardown();
}
END_TEST

/* From a peer that may not pass any, a descriptor is a broken stream. */
START_TEST(test_fd_no_fdpass)
{
	int	 p[2];

	t_setup(&t_nofdpass);
	mkpipe(p);
	t_send(T_FD, p[1], NULL, 0);
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_FD], 0);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(t_log_count(LOG_ERR, "malformed message"), 1);
	ck_assert_int_eq(close(p[0]), 0);
	t_teardown();
}
END_TEST

/*
 * A message that needs a descriptor and came without: closed.  A
 * descriptor that came with a later message, already received, is
 * closed with the channel.
 */
START_TEST(test_fd_missing)
{
	int	 p[2];

	t_setup(&t_untrusted);
	mkpipe(p);
	t_send(T_FD, -1, NULL, 0);
	t_send(T_FD, p[1], NULL, 0);
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_FD], 0);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(t_log_count(LOG_ERR, "without a descriptor"), 1);
	ck_assert_int_eq(close(p[0]), 0);
	t_teardown();
}
END_TEST

/*
 * Use up every descriptor but those open now (and t_fill[], closed by
 * t_fd_room): a descriptor passed to us is lost.
 */
static struct rlimit	 t_rl;
static int		 t_fill[4];

static void
t_fd_exhaust(void)
{
	struct rlimit	 low;
	int		 i;

	for (i = 0; i < 4; i++)
		ck_assert_int_ne(t_fill[i] = dup(t.peer), -1);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &t_rl), 0);
	low = t_rl;
	low.rlim_cur = t_fill[3] + 1;
	for (i = 0; i < 4; i++)
		ck_assert_int_lt(t_fill[i], (int)low.rlim_cur);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	/* Everything below the limit is taken. */
	for (i = 0; i < (int)low.rlim_cur; i++)
		ck_assert_int_ne(fcntl(i, F_GETFD), -1);
}

static void
t_fd_room(void)
{
	int	 i;

	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &t_rl), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(close(t_fill[i]), 0);
}

/*
 * A descriptor lost on the way in (none left): a message that allows
 * for it is handled without one, and the channel goes on in step; the
 * next descriptor goes to its own message.
 */
START_TEST(test_fd_lost)
{
	char	 c;
	int	 p[2], q[2];

	t_setup(&t_untrusted);
	mkpipe(p);
	mkpipe(q);
	t_send(T_LOSSY, p[1], NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_FD, q[1], NULL, 0);
	t_flush();
	/* One read: the first message and its descriptor. */
	t_fd_exhaust();
	proc_chan_io(t.ch, 1, 0);
	t_fd_room();
	t_loop(5);
	ck_assert_ptr_nonnull(t.ch);
	ck_assert_int_eq(t.calls[T_LOSSY], 1);
	ck_assert_int_eq(t.lost, 1);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_FD], 1);
	ck_assert_int_eq(t.fd_ok, 1);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(read(q[0], &c, 1), 1);
	ck_assert(at_eof(q[0]));
	ck_assert_int_eq(close(p[0]), 0);
	ck_assert_int_eq(close(q[0]), 0);
	t_teardown();
}
END_TEST

/* A message that does not allow for it: closed, as without its fd. */
START_TEST(test_fd_lost_refused)
{
	int	 p[2];

	t_setup(&t_untrusted);
	mkpipe(p);
	t_send(T_FD, p[1], NULL, 0);
	t_flush();
	t_fd_exhaust();
	proc_chan_io(t.ch, 1, 0);
	t_fd_room();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_FD], 0);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(t_log_count(LOG_ERR, "was lost"), 1);
	ck_assert_int_eq(close(p[0]), 0);
	t_teardown();
}
END_TEST

/* A handler's -1 closes the channel; what follows is not dispatched. */
START_TEST(test_handler_refuses)
{
	Mezite__ConnDone	 cd = MEZITE__CONN_DONE__INIT;

	t_setup(&t_untrusted);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_REFUSE, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	ck_assert_int_eq(pb_compose(&t.pib, T_PB, 0, -1, &cd.base), 0);
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_REFUSE], 1);
	ck_assert_int_eq(t.calls[T_PB], 0);
	ck_assert_int_eq(t_log_count(LOG_ERR, "refused"), 1);
	t_teardown();
}
END_TEST

/* A handler that returns 1 keeps the payload: the test frees it. */
START_TEST(test_handler_keeps)
{
	Mezite__ConnDone	 cd = MEZITE__CONN_DONE__INIT;

	t_setup(&t_untrusted);
	t.pb_keep = 1;
	cd.id = 0x1122334455667788ULL;
	ck_assert_int_eq(pb_compose(&t.pib, T_PB, 0, -1, &cd.base), 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();
	t_loop(5);
	ck_assert_int_eq(t.calls[T_PB], 1);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_ptr_nonnull(t.kept);
	/* Still ours after the loop and after the channel is gone. */
	ck_assert_uint_eq(t.kept->id, cd.id);
	proc_chan_kill(t.ch, "done");
	t_loop_closed();
	ck_assert_uint_eq(t.kept->id, cd.id);
	ck_assert_ptr_eq(t.kept->base.descriptor,
	    &mezite__conn_done__descriptor);
	pb_free(t.kept);
	t.kept = NULL;
	t_teardown();
}
END_TEST

/*
 * A handler that kills its own channel: the loop stops, nothing is
 * freed under it, and closed() comes once, later, from the event loop.
 */
START_TEST(test_kill_in_handler)
{
	t_setup(&t_untrusted);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_KILL, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_KILL, -1, NULL, 0);
	t_flush();

	proc_chan_io(t.ch, 1, 0);
	ck_assert_ptr_nonnull(t.ch);
	ck_assert_int_eq(t.ch->dead, 1);
	ck_assert_int_eq(t.ch->dispatching, 0);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_KILL], 1);
	ck_assert_int_eq(t.closed, 0);

	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_KILL], 1);
	ck_assert_int_eq(t_log_count(LOG_ERR, "killed by its own handler"),
	    1);
	ck_assert_int_eq(t_log_count(LOG_ERR, "twice"), 0);
	t_teardown();
}
END_TEST

/* The same with the event loop calling the handler. */
START_TEST(test_kill_in_handler_evloop)
{
	t_setup(&t_untrusted);
	t_send(T_KILL, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_KILL], 1);
	ck_assert_int_eq(t.calls[T_PING], 0);
	t_teardown();
}
END_TEST

/* A peer that leaves: what it sent is done, then the channel closes. */
START_TEST(test_eof)
{
	const struct proc_peer	*peers[] = { &t_untrusted, &t_trusted };
	uint32_t		 v = 5;

	t_setup(peers[_i]);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_U32, -1, &v, sizeof(v));
	t_flush();
	ck_assert_int_eq(close(t.peer), 0);
	t.peer = -1;
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 2);
	ck_assert_int_eq(t.calls[T_U32], 1);
	ck_assert_uint_eq(t.u32, 5);
	/* Leaving is no misbehaviour: not a word above debug. */
	ck_assert_int_eq(t_log_count(LOG_INFO, NULL), 0);
	ck_assert_int_eq(t_log_count(LOG_DEBUG, "channel closed"), 1);
	t_teardown();
}
END_TEST

/*
 * The same while the channel owes the peer a message, so that the
 * event loop finds the socket both readable and writable, and the write
 * fails first.
 */
START_TEST(test_eof_owed)
{
	const struct proc_peer	*peers[] = { &t_untrusted, &t_trusted };
	uint32_t		 v = 5;

	t_setup(peers[_i]);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_U32, -1, &v, sizeof(v));
	t_flush();
	ck_assert_int_eq(close(t.peer), 0);
	t.peer = -1;
	ck_assert_int_eq(proc_compose(t.ch, T_REPLY, 0, -1, "x", 1), 0);
	ck_assert_int_eq(t.ch->events, EV_READ | EV_WRITE);
	t_loop_closed();
	ck_assert_int_eq(t.calls[T_PING], 2);
	ck_assert_int_eq(t.calls[T_U32], 1);
	ck_assert_int_eq(t_log_count(LOG_INFO, NULL), 0);
	t_teardown();
}
END_TEST

/*
 * Back-pressure: once T_HIGHWATER replies wait for a peer that does not
 * read, the channel takes no more requests and stops reading; once the
 * peer reads, every request is answered, each exactly once, in order.
 */
START_TEST(test_highwater)
{
	struct imsg	 imsg;
	uint32_t	 i, v, next = 0;
	int		 taken, rounds, sndbuf = T_REPLYSIZE;

	t_setup(&t_slow);
	ck_assert_int_eq(setsockopt(t.ch->ibuf.fd, SOL_SOCKET, SO_SNDBUF,
	    &sndbuf, sizeof(sndbuf)), 0);
	for (i = 0; i < T_NREQ; i++)
		t_send(T_REQ, -1, &i, sizeof(i));
	t_flush();

	t_loop(20);
	taken = t.calls[T_REQ];
	ck_assert_int_gt(taken, 0);
	ck_assert_int_lt(taken, T_NREQ);
	ck_assert_uint_ge(proc_queued(t.ch), T_HIGHWATER);
	ck_assert_int_eq(proc_chan_wants_read(t.ch), 0);
	ck_assert_int_eq(t.ch->events & EV_READ, 0);
	ck_assert_int_eq(event_pending(&t.ch->ev, EV_READ, NULL), 0);
	ck_assert_int_ne(event_pending(&t.ch->ev, EV_WRITE, NULL), 0);
	/* It stays stopped, and the peer is not dropped for it. */
	t_loop(20);
	ck_assert_int_eq(t.calls[T_REQ], taken);
	ck_assert_int_eq(t.closed, 0);

	/* The peer reads. */
	ck_assert_int_eq(fd_nonblock(t.peer), 0);
	for (rounds = 0; next < T_NREQ && rounds < 10 * T_ROUNDS; rounds++) {
		ck_assert_int_eq(imsgbuf_read(&t.pib), 1);
		while (imsg_get(&t.pib, &imsg) > 0) {
			ck_assert_uint_eq(imsg_get_type(&imsg), T_REPLY);
			ck_assert_uint_eq(imsg_get_id(&imsg), next);
			ck_assert_uint_eq(imsg_get_len(&imsg), T_REPLYSIZE);
			memcpy(&v, imsg.data, sizeof(v));
			ck_assert_uint_eq(v, next);
			next++;
			imsg_free(&imsg);
		}
		t_loop(1);
	}
	ck_assert_uint_eq(next, T_NREQ);
	ck_assert_int_eq(t.calls[T_REQ], T_NREQ);
	for (i = 0; i < T_NREQ; i++)
		ck_assert_int_eq(t.seen[i], 1);
	ck_assert_uint_eq(proc_queued(t.ch), 0);
	ck_assert_int_eq(t.ch->events, EV_READ);
	ck_assert_int_eq(t.closed, 0);
	ck_assert_int_eq(t_log_count(LOG_INFO, NULL), 0);
	t_teardown();
}
END_TEST

/* The owner's hold pauses the channel the same way, until released. */
START_TEST(test_hold)
{
	t_setup(&t_untrusted);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_HOLD, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();

	t_loop(10);
	ck_assert_int_eq(t.calls[T_PING], 1);
	ck_assert_int_eq(t.calls[T_HOLD], 1);
	ck_assert_int_eq(t.ch->events & EV_READ, 0);
	ck_assert_int_eq(event_pending(&t.ch->ev, EV_READ, NULL), 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();
	t_loop(10);
	ck_assert_int_eq(t.calls[T_PING], 1);

	t.ch->hold = 0;
	proc_chan_io(t.ch, 0, 0);
	ck_assert_int_eq(t.calls[T_PING], 3);
	ck_assert_int_eq(t.ch->events, EV_READ);
	t_loop(10);
	ck_assert_int_eq(t.calls[T_PING], 4);

	/* Held while the peer leaves: quiet close once released. */
	t_send(T_HOLD, -1, NULL, 0);
	t_send(T_PING, -1, NULL, 0);
	t_flush();
	ck_assert_int_eq(close(t.peer), 0);
	t.peer = -1;
	t_loop(10);
	ck_assert_int_eq(t.calls[T_HOLD], 2);
	ck_assert_int_eq(t.calls[T_PING], 4);
	ck_assert_int_eq(t.closed, 0);
	t.ch->hold = 0;
	proc_chan_io(t.ch, 0, 0);
	ck_assert_int_eq(t.calls[T_PING], 5);
	t_loop_closed();
	ck_assert_int_eq(t_log_count(LOG_INFO, NULL), 0);
	t_teardown();
}
END_TEST

/* Composing on a dead channel fails and still takes the descriptor. */
START_TEST(test_compose_dead)
{
	Mezite__ConnDone	 cd = MEZITE__CONN_DONE__INIT;
	int			 p[2];

	t_setup(&t_untrusted);
	proc_chan_kill(t.ch, "killed by its owner");

	mkpipe(p);
	errno = 0;
	ck_assert_int_eq(proc_compose(t.ch, T_REPLY, 0, p[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(close(p[0]), 0);

	mkpipe(p);
	errno = 0;
	ck_assert_int_eq(proc_compose_pb(t.ch, T_REPLY, 0, p[1], &cd.base),
	    -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert(at_eof(p[0]));
	ck_assert_int_eq(close(p[0]), 0);

	errno = 0;
	ck_assert_int_eq(proc_compose(t.ch, T_REPLY, 0, -1, NULL, 0), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_uint_eq(proc_queued(t.ch), 0);

	t_loop_closed();
	ck_assert_int_eq(t_log_count(LOG_ERR, "killed by its owner"), 1);
	t_teardown();
}
END_TEST

/*
 * A trusted peer's bad message is fatal: fatalx exits 1.  These run in
 * a child of Check's and do not return.  Check's own failures exit 1
 * too, so the exit is vouched for by what was logged: fatalx's line
 * with the reason, or the exit status is changed to one that fails.
 */

static void
t_fatal_check(void)
{
	char	 buf[T_LOGLINE];
	ssize_t	 n;

	if (t_fatal_want == NULL)
		_exit(3);
	while ((n = recv(t.logfd[1], buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		if (buf[0] == LOG_CRIT && strstr(buf + 1, "fatal") != NULL &&
		    strstr(buf + 1, t_fatal_want) != NULL)
			return;
	}
	_exit(3);
}

static void
t_fatal_setup(const char *why)
{
	ck_assert_int_eq(atexit(t_fatal_check), 0);
	t_setup(&t_trusted);
	t_fatal_want = why;
}

static void
t_fatal_survived(void)
{
	fprintf(stderr, "a trusted peer's bad message was survived\n");
	_exit(2);
}

START_TEST(test_trusted_unknown)
{
	t_fatal_setup("unexpected message");
	t_send(T_UNKNOWN, -1, NULL, 0);
	t_flush();
	t_loop(T_ROUNDS);
	t_fatal_survived();
}
END_TEST

START_TEST(test_trusted_size)
{
	t_fatal_setup("expected 4");
	t_send(T_U32, -1, "abc", 3);
	t_flush();
	t_loop(T_ROUNDS);
	t_fatal_survived();
}
END_TEST

START_TEST(test_trusted_refused)
{
	t_fatal_setup("refused");
	t_send(T_REFUSE, -1, NULL, 0);
	t_flush();
	t_loop(T_ROUNDS);
	t_fatal_survived();
}
END_TEST

START_TEST(test_trusted_fd)
{
	int	 p[2];

	t_fatal_setup("with a descriptor");
	ck_assert_int_eq(pipe(p), 0);
	t_send(T_PING, p[1], NULL, 0);
	t_flush();
	t_loop(T_ROUNDS);
	t_fatal_survived();
}
END_TEST

static Suite *
proc_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("proc");

	tc = tcase_create("table");
	tcase_add_test(tc, test_accepted);
	tcase_add_test(tc, test_unknown_type);
	tcase_add_test(tc, test_unknown_type_evloop);
	tcase_add_loop_test(tc, test_wrong_size, 0, 6);
	tcase_add_loop_test(tc, test_bad_pb, 0, 5);
	tcase_add_test(tc, test_empty_pb);
	tcase_add_test(tc, test_fd_unwanted);
	tcase_add_test(tc, test_fd_no_fdpass);
	tcase_add_test(tc, test_fd_missing);
	/*
	 * valgrind keeps descriptors of its own above the limit it shows
	 * the program, where the kernel still puts a passed one: no
	 * descriptor is lost under it (make check-valgrind says so).
	 */
	if (getenv("MEZITE_VALGRIND") == NULL) {
		tcase_add_test(tc, test_fd_lost);
		tcase_add_test(tc, test_fd_lost_refused);
	}
	suite_add_tcase(s, tc);

	tc = tcase_create("handler");
	tcase_add_test(tc, test_handler_refuses);
	tcase_add_test(tc, test_handler_keeps);
	tcase_add_test(tc, test_kill_in_handler);
	tcase_add_test(tc, test_kill_in_handler_evloop);
	tcase_add_test(tc, test_compose_dead);
	suite_add_tcase(s, tc);

	tc = tcase_create("eof");
	tcase_add_loop_test(tc, test_eof, 0, 2);
	tcase_add_loop_test(tc, test_eof_owed, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("backpressure");
	tcase_add_test(tc, test_highwater);
	tcase_add_test(tc, test_hold);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	return (s);
}

static Suite *
proc_fatal_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("proc_fatal");
	tc = tcase_create("trusted");
	tcase_add_exit_test(tc, test_trusted_unknown, 1);
	tcase_add_exit_test(tc, test_trusted_size, 1);
	tcase_add_exit_test(tc, test_trusted_refused, 1);
	tcase_add_exit_test(tc, test_trusted_fd, 1);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(proc_suite());
	/*
	 * A test that exits takes the runner with it unless Check forks
	 * for each test: without fork (CK_FORK=no, as under valgrind) the
	 * fatal cases are left out.
	 */
	if (srunner_fork_status(sr) == CK_FORK)
		srunner_add_suite(sr, proc_fatal_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
