/*
 * The worker runtime.
 *
 * A worker has a channel to the supervisor (fd 3) and one to each
 * master, which the supervisor sends it with the master's ProcInfo
 * (IMSG_MASTER_CHANNEL), at most WORKER_MASTERS_MAX of them.  All are
 * more privileged than the worker, so a malformed message from any is
 * fatal.  Sessions are taken from every master channel.  A master
 * channel that closes (that master went away, or dropped us) is
 * forgotten and the worker goes on serving: the sessions it holds are
 * its own, and the master that takes the dead one's place is paired
 * with it by the supervisor.
 *
 * A session's connection id names the master that handed it over (its
 * origin: see CONN_ID_ORIGIN in meta.h), so the end of a kernel session
 * is told to that master alone, and to none if it has gone: its records
 * went with it.
 *
 * A status request goes to every master; the answers are summed into
 * one Status (status_merge() in meta.c) and given to cb->status once
 * all have answered.  With one master, its answer is given as it came.
 *
 * Draining closes every master channel, which takes the worker out of
 * every master's rotation; sessions already handed over go on to their
 * end, then the worker leaves.
 *
 * The worker's event loop watches the channels the runtime gives it
 * (cb->watch), calls proc_chan_io() when one is ready, and arms them as
 * the channel's arm() asks; nothing here blocks.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
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

/* A channel to a master; the loop owns chan.arg. */
struct master_chan {
	struct proc_chan	 chan;		/* first: a proc_chan is one */
	unsigned int		 instance;
	uint32_t		 origin;	/* of the ids it makes */
	int			 asked;		/* owes a status answer */
	Mezite__Status		*answer;
};

static void	 status_done(void);

static struct proc_peer		 worker_from_parent;
static struct proc_chan		 parent;
static struct master_chan	*masters[WORKER_MASTERS_MAX];
static size_t			 nmasters;
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
 * Closing the master channels takes this worker out of every master's
 * rotation; sessions already handed over go on to their end.
 */
static void
worker_drain(void)
{
	size_t	 i;

	if (draining)
		return;
	draining = 1;
	for (i = 0; i < nmasters; i++)
		(void)shutdown(masters[i]->chan.ibuf.fd, SHUT_RDWR);
	cb->drain();
}

static void
parent_closed(struct proc_chan *ch)
{
	fatalx("the supervisor went away");
}

/*
 * A master went away, or dropped us: forget it.  What it handed over
 * goes on; a status request waits for it no longer.
 */
static void
master_closed(struct proc_chan *ch)
{
	struct master_chan	*m = (struct master_chan *)ch;
	size_t			 i;

	for (i = 0; i < nmasters; i++)
		if (masters[i] == m)
			break;
	if (i == nmasters)
		fatalx("%s: not a master channel", __func__);
	masters[i] = masters[--nmasters];
	masters[nmasters] = NULL;
	if (!draining)
		log_info("the channel to master.%u closed; %zu left",
		    m->instance, nmasters);
	cb->unwatch(ch);
	proc_chan_clear(ch);
	pb_free(m->answer);
	free(m);
	status_done();
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

/* A channel to a master, named by the master's ProcInfo. */
static int
worker_master_channel(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__ProcInfo	*pi = msg;
	struct master_chan	*m;
	char			 name[32];
	int			 fd = imsg_get_fd(imsg);

	if (!configured || strcmp(pi->type, proc_name(PROC_MASTER)) != 0 ||
	    pi->instance > CONN_ID_INSTANCE_MAX) {
		close(fd);
		return (-1);
	}
	if (draining || nmasters == WORKER_MASTERS_MAX) {
		if (!draining)
			log_warnx("more than %d masters: master.%u refused",
			    WORKER_MASTERS_MAX, pi->instance);
		close(fd);
		return (0);
	}
	if (fd_nonblock(fd) == -1)
		fatal("fd_nonblock");
	if ((m = calloc(1, sizeof(*m))) == NULL)
		fatal(__func__);
	m->instance = pi->instance;
	m->origin = CONN_ID_ORIGIN(pi->instance, pi->restarts);
	(void)snprintf(name, sizeof(name), "%s.%u", proc_name(PROC_MASTER),
	    pi->instance);
	if (proc_chan_init(&m->chan, fd, &worker_from_master, name, NULL,
	    master_closed) == -1)
		fatal("master channel");
	masters[nmasters++] = m;
	log_debug("paired with master.%u, pid %d", pi->instance, (int)pi->pid);
	cb->watch(&m->chan);
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

/* A master's answer; given on once every master asked has answered. */
static int
worker_status(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct master_chan	*m = (struct master_chan *)ch;

	if (!m->asked)
		return (0);	/* a late answer to a request asked again */
	m->asked = 0;
	pb_free(m->answer);
	m->answer = msg;
	status_done();
	return (1);
}

static const struct proc_msg worker_parent_msgs[] = {
	{ IMSG_CONF_WORKER, PROC_LEN_PB, &mezite__worker_config__descriptor,
	    PROC_FD_NONE, worker_configure },
	{ IMSG_MASTER_CHANNEL, PROC_LEN_PB, &mezite__proc_info__descriptor,
	    PROC_FD_NEEDED, worker_master_channel },
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
 * Ask every master for its status; the answers, summed, come to
 * cb->status.  One request is on its way at a time, however many
 * clients ask: each answer answers every one of them.  A master ignores
 * a request while it has much to send us, so one that found no answer
 * is asked again.
 */
int
worker_status_request(void)
{
	struct timespec	 now, since;
	size_t		 i;
	int		 sent = 0;

	if (nmasters == 0) {
		errno = ENOTCONN;
		return (-1);
	}
	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		return (-1);
	timespecsub(&now, &status_asked, &since);
	if (timespecisset(&status_asked) && since.tv_sec < STATUS_RETRY)
		return (0);
	if (!timespecisset(&status_asked))
		for (i = 0; i < nmasters; i++)
			masters[i]->asked = 1;
	for (i = 0; i < nmasters; i++) {
		if (!masters[i]->asked)
			continue;
		if (proc_compose(&masters[i]->chan, IMSG_STATUS_REQ, 0, -1,
		    NULL, 0) == -1) {
			log_warn("%s: master.%u", __func__,
			    masters[i]->instance);
			masters[i]->asked = 0;
			continue;
		}
		sent++;
	}
	if (sent == 0) {
		status_done();
		errno = ENOTCONN;
		return (-1);
	}
	status_asked = now;
	return (0);
}

/* Every master asked has answered, or gone: give the answers on. */
static void
status_done(void)
{
	Mezite__Status	*in[WORKER_MASTERS_MAX], merged;
	size_t		 i, n = 0;

	for (i = 0; i < nmasters; i++) {
		if (masters[i]->asked)
			return;
		if (masters[i]->answer != NULL)
			in[n++] = masters[i]->answer;
	}
	timespecclear(&status_asked);
	if (n == 1)
		cb->status(in[0]);
	else if (n > 1) {
		if (status_merge(&merged, in, n) == -1)
			fatal("%s", __func__);
		cb->status(&merged);
		status_parts_free(&merged);
	}
	for (i = 0; i < nmasters; i++) {
		pb_free(masters[i]->answer);
		masters[i]->answer = NULL;
	}
}

/* The channel to the supervisor, for what a kind of worker tells it. */
struct proc_chan *
worker_parent(void)
{
	return (&parent);
}

/*
 * The worker is done.  What it still owes the supervisor goes out with
 * one last write: the supervisor always reads.
 */
__dead void
worker_exit(void)
{
	if (imsgbuf_queuelen(&parent.ibuf) > 0 &&
	    imsgbuf_write(&parent.ibuf) == -1)
		log_warn("%s", __func__);
	exit(0);
}

/*
 * A session this worker got with its socket (kTLS) has ended: told to
 * the master that handed it over, if it is still there.
 */
void
worker_conn_done(uint64_t id)
{
	Mezite__ConnDone	 done = MEZITE__CONN_DONE__INIT;
	size_t			 i;

	for (i = 0; i < nmasters; i++)
		if (masters[i]->origin == CONN_ID_ORIGIN_OF(id))
			break;
	if (i == nmasters)
		return;		/* that master has gone, and its records */
	done.id = id;
	if (proc_compose_pb(&masters[i]->chan, IMSG_CONN_DONE, 0, -1,
	    &done.base) == -1)
		log_warn("%s", __func__);
}
