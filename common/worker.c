/*
 * The worker runtime.
 *
 * A worker has one channel to the supervisor (fd 3) and one to each
 * master that has run since it started: a master that is restarted
 * hands sessions over a new channel while the old one closes.  The
 * supervisor and the master are more privileged than the worker, so a
 * malformed message from either is fatal.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"
#include "util.h"
#include "worker.h"

struct wchan {
	struct imsgbuf		 ibuf;
	int			 parent;
	LIST_ENTRY(wchan)	 entry;
};

static void	 worker_sig(int);
static void	 worker_drain(void);
static struct wchan *wchan_new(int, int);

static LIST_HEAD(, wchan)	 masters = LIST_HEAD_INITIALIZER(masters);
static const struct worker_cb	*cb;
static const char		*wname;
static int			 configured;
static int			 draining;
static volatile sig_atomic_t	 terminated;

void
worker_init(enum proc_type type, unsigned int instance, const char *user,
    const char *root, const struct worker_cb *callbacks)
{
	static char		 name[32];
	struct sigaction	 sa;

	(void)snprintf(name, sizeof(name), "%s.%u", proc_name(type),
	    instance);
	wname = name;
	cb = callbacks;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1)
		fatal("sigaction");
	sa.sa_handler = worker_sig;
	if (sigaction(SIGTERM, &sa, NULL) == -1)
		fatal("sigaction");

	if (fd_nonblock(PROC_PARENT_FD) == -1)
		fatal("fd_nonblock");
	proc_drop(wname, user, root);

	cb->watch(PROC_PARENT_FD, wchan_new(PROC_PARENT_FD, 1));
}

static void
worker_sig(int sig)
{
	terminated = 1;
}

/* SIGTERM: the loop should stop taking work and leave. */
int
worker_terminated(void)
{
	if (terminated)
		worker_drain();
	return (terminated);
}

/*
 * Closing the master channels takes this worker out of the master's
 * rotation; sessions already handed over go on to their end.
 */
static void
worker_drain(void)
{
	struct wchan	*ch;

	if (draining)
		return;
	draining = 1;
	LIST_FOREACH(ch, &masters, entry)
		(void)shutdown(ch->ibuf.fd, SHUT_RDWR);
	cb->drain();
}

static struct wchan *
wchan_new(int fd, int parent)
{
	struct wchan	*ch;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		fatal(__func__);
	if (imsgbuf_init(&ch->ibuf, fd) == -1)
		fatal(__func__);
	imsgbuf_allow_fdpass(&ch->ibuf);
	ch->parent = parent;
	if (!parent)
		LIST_INSERT_HEAD(&masters, ch, entry);
	return (ch);
}

/* The loop stopped watching the channel and closes its descriptor. */
void
worker_chan_free(struct wchan *ch)
{
	if (!ch->parent)
		LIST_REMOVE(ch, entry);
	imsgbuf_clear(&ch->ibuf);
	free(ch);
}

static void
dispatch_parent(struct wchan *ch, struct imsg *imsg)
{
	Mezite__WorkerConfig	*wc;
	int			 fd, v;

	switch (imsg_get_type(imsg)) {
	case IMSG_CONF_WORKER:
		if (configured)
			break;		/* takes effect in new workers */
		if ((wc = pb_unpack(&mezite__worker_config__descriptor,
		    imsg)) == NULL)
			fatalx("malformed IMSG_CONF_WORKER");
		cb->configure(wc);
		pb_free(wc);
		configured = 1;
		break;
	case IMSG_MASTER_CHANNEL:
		if (!configured)
			fatalx("IMSG_MASTER_CHANNEL before configuration");
		if ((fd = imsg_get_fd(imsg)) == -1)
			fatalx("IMSG_MASTER_CHANNEL without fd");
		if (fd_nonblock(fd) == -1)
			fatal("fd_nonblock");
		cb->watch(fd, wchan_new(fd, 0));
		break;
	case IMSG_DRAIN:
		worker_drain();
		break;
	case IMSG_LOG_VERBOSE:
		if (imsg_get_data(imsg, &v, sizeof(v)) == -1)
			fatalx("bad IMSG_LOG_VERBOSE");
		log_setverbose(v);
		break;
	default:
		fatalx("unexpected message %u from the supervisor",
		    imsg_get_type(imsg));
	}
}

static void
dispatch_master(struct wchan *ch, struct imsg *imsg)
{
	Mezite__ConnMeta	*meta;
	Mezite__Status		*st;
	int			 fd;

	switch (imsg_get_type(imsg)) {
	case IMSG_HANDOFF:
		if ((fd = imsg_get_fd(imsg)) == -1)
			fatalx("IMSG_HANDOFF without a descriptor");
		if ((meta = meta_decode(imsg->data, imsg_get_len(imsg))) ==
		    NULL)
			fatalx("IMSG_HANDOFF with malformed metadata");
		if (fd_nonblock(fd) == -1)
			fatal("fd_nonblock");
		cb->handoff(fd, meta);
		break;
	case IMSG_STATUS:
		if ((st = pb_unpack(&mezite__status__descriptor,
		    imsg)) == NULL)
			fatalx("malformed IMSG_STATUS");
		cb->status(imsg_get_id(imsg), st);
		pb_free(st);
		break;
	default:
		fatalx("unexpected message %u from the master",
		    imsg_get_type(imsg));
	}
}

/*
 * Returns 0 while the channel lives, -1 once it is closed; the master's
 * channels close when it is restarted, the supervisor's only when the
 * daemon is gone, and then the worker leaves.
 */
int
worker_chan_read(struct wchan *ch)
{
	struct imsg	 imsg;
	ssize_t		 n;
	int		 r;

	if ((r = imsgbuf_read(&ch->ibuf)) == -1) {
		if (ch->parent)
			fatal("supervisor channel");
		log_warn("master channel");
		return (-1);
	}
	for (;;) {
		if ((n = imsg_get(&ch->ibuf, &imsg)) == -1)
			fatal("%s channel: imsg_get",
			    ch->parent ? "supervisor" : "master");
		if (n == 0)
			break;
		if (ch->parent)
			dispatch_parent(ch, &imsg);
		else
			dispatch_master(ch, &imsg);
		imsg_free(&imsg);
	}
	if (r == 0) {
		if (ch->parent)
			fatalx("the supervisor went away");
		log_debug("a master channel closed");
		return (-1);
	}
	return (0);
}

/* Ask a master for its status; the reply comes to cb->status. */
int
worker_status_request(uint32_t cookie)
{
	struct wchan	*ch;

	/* The newest channel is the live master's. */
	if ((ch = LIST_FIRST(&masters)) == NULL)
		return (-1);
	if (imsg_compose(&ch->ibuf, IMSG_STATUS_REQ, cookie, 0, -1, NULL,
	    0) == -1 || imsgbuf_flush(&ch->ibuf) == -1) {
		log_warn("%s", __func__);
		return (-1);
	}
	return (0);
}

/* A session this worker got with its socket (kTLS) has ended. */
void
worker_conn_done(uint64_t id)
{
	Mezite__ConnDone	 done = MEZITE__CONN_DONE__INIT;
	struct wchan		*ch;

	/* A master restarted since has never heard of the session. */
	if ((ch = LIST_FIRST(&masters)) == NULL)
		return;
	done.id = id;
	if (pb_compose(&ch->ibuf, IMSG_CONN_DONE, 0, -1, &done.base) == -1 ||
	    imsgbuf_flush(&ch->ibuf) == -1)
		log_warn("%s", __func__);
}
