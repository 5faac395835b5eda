/*
 * The worker runtime.
 *
 * A worker has two channels: one to the supervisor (fd 3) and one to
 * the master, which the supervisor sends it.  Both are more privileged
 * than the worker, so a malformed message from either is fatal.  A
 * worker whose master channel closes (the master went away, or dropped
 * it) tells the supervisor, which starts another in its place, and
 * drains: sessions it holds go on to their end, then it leaves.
 *
 * The worker's event loop watches the channels the runtime gives it
 * (cb->watch), calls proc_chan_io() when one is ready, and arms them as
 * the channel's arm() asks; nothing here blocks.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATUS_RETRY	2	/* seconds: ask again if no answer came */
#define LOST_WARN_EVERY	10	/* seconds between "sessions lost" */

#include "log.h"
#include "meta.h"
#include "util.h"
#include "worker.h"

static void	 worker_sig(int);
static void	 worker_drain(void);
static void	 master_closed(struct proc_chan *);
static void	 parent_closed(struct proc_chan *);

static void	 parent_peer_init(void);
static const struct proc_peer	 worker_from_master;

static struct proc_peer		 worker_from_parent;
static struct proc_chan		 parent;
static struct proc_chan		*master;	/* NULL until paired */
static const struct worker_cb	*cb;
static char			 wname[32];
static int			 configured;
static int			 draining;
static struct timespec		 status_asked;	/* a request is on its way */
static int64_t			 lost_warned;	/* handoffs without their fd */
static unsigned long		 lost_since;
static volatile sig_atomic_t	 terminated;

void
worker_init(enum proc_type type, unsigned int instance, const char *user,
    const char *root, const struct worker_cb *callbacks)
{
	struct sigaction	 sa;

	(void)snprintf(wname, sizeof(wname), "%s.%u", proc_name(type),
	    instance);
	cb = callbacks;
	parent_peer_init();

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

	if (proc_chan_init(&parent, PROC_PARENT_FD, &worker_from_parent,
	    "supervisor", NULL, parent_closed) == -1)
		fatal("supervisor channel");
	cb->watch(&parent);
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
 * Closing the master channel takes this worker out of the master's
 * rotation; sessions already handed over go on to their end.
 */
static void
worker_drain(void)
{
	if (draining)
		return;
	draining = 1;
	if (master != NULL)
		(void)shutdown(master->ibuf.fd, SHUT_RDWR);
	cb->drain();
}

static void
parent_closed(struct proc_chan *ch)
{
	fatalx("the supervisor went away");
}

static void
master_closed(struct proc_chan *ch)
{
	if (ch == master) {
		master = NULL;
		if (!draining) {
			log_info("the master channel closed; draining");
			if (proc_compose(&parent, IMSG_MASTER_LOST, 0, -1, NULL,
			    0) == -1)
				log_warn("%s", __func__);
			worker_drain();
		}
	}
	cb->unwatch(ch);
	proc_chan_clear(ch);
	free(ch);
}

static int
worker_configure(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	if (configured)
		return (0);	/* takes effect in new workers */
	cb->configure(msg);
	configured = 1;
	return (0);
}

static int
worker_master_channel(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct proc_chan	*m;
	int			 fd = imsg_get_fd(imsg);

	if (!configured || master != NULL) {
		close(fd);
		return (-1);
	}
	if (fd_nonblock(fd) == -1)
		fatal("fd_nonblock");
	if ((m = malloc(sizeof(*m))) == NULL)
		fatal(__func__);
	if (proc_chan_init(m, fd, &worker_from_master, "master", NULL,
	    master_closed) == -1)
		fatal("master channel");
	master = m;
	cb->watch(m);
	return (0);
}

static int
worker_drain_msg(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	worker_drain();
	return (0);
}

/*
 * A session whose descriptor the kernel closed on the way in: we had
 * none left.  The session is over: the master sees its end of a relayed
 * one close, and hears of a kernel one here.  Said once, then counted,
 * so that a burst of them is one line every LOST_WARN_EVERY seconds.
 */
static void
worker_handoff_lost(Mezite__ConnMeta *meta)
{
	lost_since++;
	if (time_now() - lost_warned >= LOST_WARN_EVERY) {
		log_warnx("out of descriptors: %lu session%s handed over "
		    "closed (the last: %llu)", lost_since,
		    lost_since == 1 ? "" : "s",
		    (unsigned long long)meta->id);
		lost_warned = time_now();
		lost_since = 0;
	}
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS)
		worker_conn_done(meta->id);
	mezite__conn_meta__free_unpacked(meta, NULL);
}

/* A session: acknowledged at once, so the master knows we are alive. */
static int
worker_handoff(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__ConnMeta	*meta;
	uint32_t		 one = 1;
	int			 fd = imsg_get_fd(imsg);

	if ((meta = meta_decode(imsg->data, imsg_get_len(imsg))) == NULL) {
		if (fd != -1)
			close(fd);
		return (-1);
	}
	if (proc_compose(ch, IMSG_HANDOFF_ACK, 0, -1, &one, sizeof(one)) == -1)
		log_warn("%s: ack", __func__);
	if (imsg_get_fd_lost(imsg)) {
		worker_handoff_lost(meta);
		return (0);
	}
	if (fd_nonblock(fd) == -1)
		fatal("fd_nonblock");
	cb->handoff(fd, meta);
	return (0);
}

static int
worker_status(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	timespecclear(&status_asked);
	cb->status(msg);
	return (0);
}

static const struct proc_msg worker_parent_msgs[] = {
	{ IMSG_CONF_WORKER, PROC_LEN_PB, &mezite__worker_config__descriptor,
	    PROC_FD_NONE, worker_configure },
	{ IMSG_MASTER_CHANNEL, 0, NULL, PROC_FD_NEEDED,
	    worker_master_channel },
	{ IMSG_DRAIN, 0, NULL, PROC_FD_NONE, worker_drain_msg },
	{ IMSG_LOG_VERBOSE, sizeof(int), NULL, PROC_FD_NONE,
	    proc_log_verbose },
};

static const struct proc_msg worker_master_msgs[] = {
	{ IMSG_HANDOFF, PROC_LEN_ANY, NULL, PROC_FD_NEEDED | PROC_FD_LOSSY,
	    worker_handoff },
	{ IMSG_STATUS, PROC_LEN_PB, &mezite__status__descriptor,
	    PROC_FD_NONE, worker_status },
};

/* The supervisor's messages: every worker's, then this kind's. */
static void
parent_peer_init(void)
{
	struct proc_msg	*msgs;
	size_t		 n = nitems(worker_parent_msgs);

	if ((msgs = calloc(n + cb->nparent_msgs, sizeof(*msgs))) == NULL)
		fatal(__func__);
	memcpy(msgs, worker_parent_msgs, sizeof(worker_parent_msgs));
	if (cb->nparent_msgs > 0)
		memcpy(msgs + n, cb->parent_msgs,
		    cb->nparent_msgs * sizeof(*msgs));
	worker_from_parent.name = "the supervisor";
	worker_from_parent.trusted = 1;
	worker_from_parent.msgs = msgs;
	worker_from_parent.nmsgs = n + cb->nparent_msgs;
	worker_from_parent.fdpass = 1;
}

static const struct proc_peer worker_from_master = {
	"the master", 1, worker_master_msgs, nitems(worker_master_msgs),
	0, 0, 1
};

/*
 * Ask the master for its status; the reply comes to cb->status.  One
 * request is on its way at a time, however many clients ask: each
 * reply answers every one of them.  The master ignores a request while
 * it has much to send us, so one that found no answer is asked again.
 */
int
worker_status_request(void)
{
	struct timespec	 now, since;

	if (master == NULL) {
		errno = ENOTCONN;
		return (-1);
	}
	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		return (-1);
	timespecsub(&now, &status_asked, &since);
	if (timespecisset(&status_asked) && since.tv_sec < STATUS_RETRY)
		return (0);
	if (proc_compose(master, IMSG_STATUS_REQ, 0, -1, NULL, 0) == -1)
		return (-1);
	status_asked = now;
	return (0);
}

/* The channel to the supervisor, for what a kind of worker tells it. */
struct proc_chan *
worker_parent(void)
{
	return (&parent);
}

/*
 * The worker is done.  What it still owes the supervisor (that it lost
 * its master) goes out with one last write: the supervisor always reads.
 */
__dead void
worker_exit(void)
{
	if (imsgbuf_queuelen(&parent.ibuf) > 0 &&
	    imsgbuf_write(&parent.ibuf) == -1)
		log_warn("%s", __func__);
	exit(0);
}

/* A session this worker got with its socket (kTLS) has ended. */
void
worker_conn_done(uint64_t id)
{
	Mezite__ConnDone	 done = MEZITE__CONN_DONE__INIT;

	if (master == NULL)
		return;		/* that master has gone, and its records */
	done.id = id;
	if (proc_compose_pb(master, IMSG_CONN_DONE, 0, -1, &done.base) == -1)
		log_warn("%s", __func__);
}
