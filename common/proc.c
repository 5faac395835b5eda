/*
 * The process table, what every child does before it serves, and the
 * privsep framework: the channels between processes and the one loop
 * that dispatches their messages (see proc.h).
 */

#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event.h>

#include "log.h"
#include "meta.h"
#include "proc.h"

static const char *const proc_names[PROC_MAX] = {
	[PROC_SUPERVISOR] =	"supervisor",
	[PROC_MASTER] =		"master",
	[PROC_HTTPS] =		"https",
	[PROC_AUTH] =		"auth",
	[PROC_SSH] =		"ssh",
	[PROC_TUNNEL] =		"tunnel",
	[PROC_CA] =		"ca",
};

const char *
proc_name(enum proc_type t)
{
	if (t >= PROC_MAX)
		return ("unknown");
	return (proc_names[t]);
}

int
proc_lookup(const char *name, enum proc_type *t)
{
	int	 i;

	for (i = 0; i < PROC_MAX; i++)
		if (strcmp(name, proc_names[i]) == 0) {
			*t = i;
			return (0);
		}
	return (-1);
}

/*
 * Drop to the process's user and chroot.  Files the process needs must
 * be open before this.  Without root there is nothing to drop; the
 * supervisor has warned about that once.
 *
 * The capability bounding set goes while we are still root: emptying
 * it takes CAP_SETPCAP, which setresuid() takes away.  Then
 * no_new_privs: nothing executed from here on could gain a privilege.
 * The process's filter comes later (sandbox.c), once it has loaded what
 * it needs.
 */
void
proc_drop(const char *procname, const char *user, const char *root)
{
	struct passwd	*pw;
	int		 cap, r;

	if (geteuid() != 0)
		return;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("%s: unknown user %s", procname, user);
	if (chroot(root) == -1)
		fatal("%s: chroot %s", procname, root);
	if (chdir("/") == -1)
		fatal("%s: chdir /", procname);
#ifdef PR_CAPBSET_DROP
	for (cap = 0; (r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0)) != -1; cap++)
		if (r == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			fatal("%s: cannot drop capability %d from the bounding "
			    "set (is CAP_SETPCAP in ours?)", procname, cap);
#else
	(void)cap;
	(void)r;
#endif
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("%s: cannot drop privileges to %s", procname, user);
	if (setuid(0) != -1)
		fatalx("%s: privileges were not dropped", procname);
#ifdef PR_SET_NO_NEW_PRIVS
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("%s: no_new_privs", procname);
#endif
}

static const char *const imsg_names[IMSG_MAX] = {
	[IMSG_NONE] =			"NONE",
	[IMSG_CONF_MASTER] =		"CONF_MASTER",
	[IMSG_CONF_KEYPAIR] =		"CONF_KEYPAIR",
	[IMSG_CONF_END] =		"CONF_END",
	[IMSG_CONF_WORKER] =		"CONF_WORKER",
	[IMSG_LISTENER] =		"LISTENER",
	[IMSG_WORKER_UP] =		"WORKER_UP",
	[IMSG_MASTER_CHANNEL] =		"MASTER_CHANNEL",
	[IMSG_DRAIN] =			"DRAIN",
	[IMSG_LOG_VERBOSE] =		"LOG_VERBOSE",
	[IMSG_PROCS] =			"PROCS",
	[IMSG_HANDOFF] =		"HANDOFF",
	[IMSG_CONN_DONE] =		"CONN_DONE",
	[IMSG_STATUS_REQ] =		"STATUS_REQ",
	[IMSG_STATUS] =			"STATUS",
	[IMSG_HANDOFF_ACK] =		"HANDOFF_ACK",
	[IMSG_WORKER_STUCK] =		"WORKER_STUCK",
	[IMSG_WORKER_CUT] =		"WORKER_CUT",
	[IMSG_AUTH_CA] =		"AUTH_CA",
	[IMSG_AUTH_REVOKED] =		"AUTH_REVOKED",
	[IMSG_ADMIN] =			"ADMIN",
	[IMSG_ADMIN_REPLY] =		"ADMIN_REPLY",
	[IMSG_CTL_SHOW_STATUS] =	"CTL_SHOW_STATUS",
	[IMSG_CTL_SHOW_WORKERS] =	"CTL_SHOW_WORKERS",
	[IMSG_CTL_SHOW_CONNECTIONS] =	"CTL_SHOW_CONNECTIONS",
	[IMSG_CTL_RELOAD] =		"CTL_RELOAD",
	[IMSG_CTL_LOG_VERBOSE] =	"CTL_LOG_VERBOSE",
	[IMSG_CTL_STATUS] =		"CTL_STATUS",
	[IMSG_CTL_PROC] =		"CTL_PROC",
	[IMSG_CTL_CONN] =		"CTL_CONN",
	[IMSG_CTL_OK] =			"CTL_OK",
	[IMSG_CTL_FAIL] =		"CTL_FAIL",
	[IMSG_CTL_END] =		"CTL_END",
	[IMSG_CTL_ADMIN] =		"CTL_ADMIN",
	[IMSG_CTL_ADMIN_REPLY] =	"CTL_ADMIN_REPLY",
	[IMSG_TUNNEL_DIAL] =		"TUNNEL_DIAL",
	[IMSG_TUNNEL_DIAL_REPLY] =	"TUNNEL_DIAL_REPLY",
	[IMSG_NODE_STATE] =		"NODE_STATE",
	[IMSG_NODE_RESYNC] =		"NODE_RESYNC",
	[IMSG_CTL_SHOW_NODES] =		"CTL_SHOW_NODES",
	[IMSG_CTL_NODES] =		"CTL_NODES",
	[IMSG_CTL_CONNECT] =		"CTL_CONNECT",
	[IMSG_CTL_CONNECT_REPLY] =	"CTL_CONNECT_REPLY",
	[IMSG_SSH_AUTH] =		"SSH_AUTH",
	[IMSG_SSH_AUTH_REPLY] =		"SSH_AUTH_REPLY",
	[IMSG_SSH_ACCESS] =		"SSH_ACCESS",
	[IMSG_SSH_ACCESS_REPLY] =	"SSH_ACCESS_REPLY",
	[IMSG_AUDIT] =			"AUDIT",
	[IMSG_CTL_SHOW_SESSIONS] =	"CTL_SHOW_SESSIONS",
	[IMSG_CTL_SESSIONS] =		"CTL_SESSIONS",
	[IMSG_CTL_KILL_SESSION] =	"CTL_KILL_SESSION",
	[IMSG_SSH_SESSION] =		"SSH_SESSION",
	[IMSG_CA_CHANNEL] =		"CA_CHANNEL",
	[IMSG_TICKET_KEYS] =		"TICKET_KEYS",
};

const char *
imsg_name(uint32_t type)
{
	if (type >= IMSG_MAX || imsg_names[type] == NULL)
		return ("unknown");
	return (imsg_names[type]);
}

int
proc_chan_init(struct proc_chan *ch, int fd, const struct proc_peer *peer,
    const char *name, void *arg, void (*closed)(struct proc_chan *))
{
	memset(ch, 0, sizeof(*ch));
	if (imsgbuf_init(&ch->ibuf, fd) == -1)
		return (-1);
	if (peer->maxsize != 0 &&
	    imsgbuf_set_maxsize(&ch->ibuf, peer->maxsize) == -1) {
		imsgbuf_clear(&ch->ibuf);
		return (-1);
	}
	if (peer->fdpass)
		imsgbuf_allow_fdpass(&ch->ibuf);
	ch->peer = peer;
	ch->arg = arg;
	ch->closed = closed;
	strlcpy(ch->name, name, sizeof(ch->name));
	return (0);
}

uint32_t
proc_queued(struct proc_chan *ch)
{
	return (imsgbuf_queuelen(&ch->ibuf));
}

/*
 * Back-pressure: the peer has not taken what we owe it, or the owner
 * waits for something before it takes more requests.
 */
static int
proc_chan_full(struct proc_chan *ch)
{
	return (ch->hold || (!ch->gone && ch->peer->highwater != 0 &&
	    imsgbuf_queuelen(&ch->ibuf) >= ch->peer->highwater));
}

int
proc_chan_wants_read(struct proc_chan *ch)
{
	return (!ch->dead && !ch->eof && !proc_chan_full(ch));
}

int
proc_chan_wants_write(struct proc_chan *ch)
{
	return (!ch->dead && !ch->gone && imsgbuf_queuelen(&ch->ibuf) > 0);
}

/*
 * The channel is dead: say why, once, and have the event loop call its
 * owner's closed() after whatever loop is running now.  A trusted peer
 * that misbehaves leaves nothing to recover: that is fatal.
 */
void
proc_chan_kill(struct proc_chan *ch, const char *fmt, ...)
{
	char	 why[256];
	va_list	 ap;

	if (ch->dead)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ch->dead = 1;
	if (ch->eof && why[0] == '\0')
		log_debug("%s: channel closed", ch->name);
	else if (ch->peer->trusted)
		fatalx("%s: %s", ch->name, why);
	else
		log_warnx("%s: %s; closing its channel", ch->name, why);
	if (ch->arm != NULL)
		ch->arm(ch);
}

/* Check a message against the table and hand it to its handler. */
static void
proc_chan_dispatch_one(struct proc_chan *ch, struct imsg *imsg)
{
	const struct proc_msg	*m = NULL;
	void			*payload = NULL;
	uint32_t		 type = imsg_get_type(imsg);
	size_t			 i, len = imsg_get_len(imsg);
	int			 fdrule;

	for (i = 0; i < ch->peer->nmsgs; i++)
		if (ch->peer->msgs[i].type == type) {
			m = &ch->peer->msgs[i];
			break;
		}
	if (m == NULL) {
		proc_chan_kill(ch, "unexpected message %s (%u) from %s",
		    imsg_name(type), type, ch->peer->name);
		return;
	}
	fdrule = m->fd & ~PROC_FD_LOSSY;
	if (imsg_get_fd_lost(imsg)) {
		if (fdrule == PROC_FD_NONE || !(m->fd & PROC_FD_LOSSY)) {
			proc_chan_kill(ch, "%s: its descriptor was lost: no "
			    "descriptor left", imsg_name(type));
			return;
		}
	} else if (fdrule != PROC_FD_ANY &&
	    (fdrule == PROC_FD_NEEDED) != (imsg->fd != -1)) {
		proc_chan_kill(ch, "%s %s a descriptor", imsg_name(type),
		    imsg->fd == -1 ? "without" : "with");
		return;
	}
	if (m->len == PROC_LEN_PB) {
		if ((payload = pb_unpack(m->pb, imsg)) == NULL) {
			proc_chan_kill(ch, "%s with a malformed %s (%zu bytes)",
			    imsg_name(type), m->pb->short_name, len);
			return;
		}
	} else if (m->len != PROC_LEN_ANY && len != m->len) {
		proc_chan_kill(ch, "%s of %zu bytes, expected %zu",
		    imsg_name(type), len, m->len);
		return;
	}
	switch (m->handler(ch, imsg, payload)) {
	case -1:
		proc_chan_kill(ch, "%s refused", imsg_name(type));
		break;
	case 1:
		return;		/* the handler keeps it */
	}
	pb_free(payload);
}

/*
 * The one dispatch loop: do the I/O the event loop found possible, then
 * take messages while the channel lives and its peer keeps up with our
 * replies.  What is left waits in the read buffer until it does.
 */
void
proc_chan_io(struct proc_chan *ch, int readable, int writable)
{
	struct imsg	 imsg;
	ssize_t		 n;

	if (ch->dead)
		return;
	if (writable && !ch->gone && imsgbuf_write(&ch->ibuf) == -1) {
		if (errno != EPIPE && errno != ECONNRESET) {
			proc_chan_kill(ch, "write: %s", strerror(errno));
			return;
		}
		/*
		 * The peer has left.  What we owe it is lost, but what it
		 * said before it left is read and done as at end of file,
		 * whether or not we happened to owe it something.
		 */
		ch->gone = 1;
	}
	if (readable && !ch->eof && !proc_chan_full(ch)) {
		switch (imsgbuf_read(&ch->ibuf)) {
		case -1:
			if (errno == EBADMSG)
				proc_chan_kill(ch, "malformed message from %s",
				    ch->peer->name);
			else if (errno == ECONNRESET)
				ch->eof = 1;
			else
				proc_chan_kill(ch, "read: %s",
				    strerror(errno));
			break;
		case 0:
			ch->eof = 1;
			break;
		}
	}

	ch->dispatching = 1;
	while (!ch->dead && !proc_chan_full(ch)) {
		if ((n = imsg_get(&ch->ibuf, &imsg)) == -1) {
			proc_chan_kill(ch, "malformed message from %s",
			    ch->peer->name);
			break;
		}
		if (n == 0)
			break;
		proc_chan_dispatch_one(ch, &imsg);
		imsg_free(&imsg);
	}
	ch->dispatching = 0;

	/* A peer that left has said all it will; what it said is done. */
	if (ch->eof && !ch->dead && !proc_chan_full(ch))
		proc_chan_kill(ch, "%s", "");
	if (ch->arm != NULL)
		ch->arm(ch);
}

/*
 * Whether a message may be queued on the channel: 1 if so; 0 if the
 * peer has gone, and the message is lost as what was queued when it
 * left; -1 (EPIPE) if the channel is dead.  The descriptor of a message
 * that is not queued is closed.
 */
static int
proc_chan_open(struct proc_chan *ch, int fd)
{
	if (!ch->dead && !ch->gone)
		return (1);
	if (fd != -1)
		close(fd);
	if (ch->gone && !ch->dead)
		return (0);
	errno = EPIPE;
	return (-1);
}

int
proc_compose(struct proc_chan *ch, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	int	 r;

	if ((r = proc_chan_open(ch, fd)) != 1)
		return (r);
	if (imsg_compose(&ch->ibuf, type, peerid, 0, fd, data, len) == -1)
		return (-1);
	if (ch->arm != NULL)
		ch->arm(ch);
	return (0);
}

int
proc_compose_pb(struct proc_chan *ch, uint32_t type, uint32_t peerid, int fd,
    const ProtobufCMessage *msg)
{
	int	 r;

	if ((r = proc_chan_open(ch, fd)) != 1)
		return (r);
	if (pb_compose(&ch->ibuf, type, peerid, fd, msg) == -1)
		return (-1);
	if (ch->arm != NULL)
		ch->arm(ch);
	return (0);
}

/* IMSG_LOG_VERBOSE, from the supervisor to every child. */
int
proc_log_verbose(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	int	 v;

	if (imsg_get_data(imsg, &v, sizeof(v)) == -1)
		return (-1);
	log_setverbose(v);
	return (0);
}

/* Release the channel's descriptor and buffers; the owner frees ch. */
void
proc_chan_clear(struct proc_chan *ch)
{
	if (ch->events != 0)
		event_del(&ch->ev);
	ch->events = 0;
	if (event_initialized(&ch->deadev))
		event_del(&ch->deadev);
	if (ch->ibuf.fd != -1)
		close(ch->ibuf.fd);
	imsgbuf_clear(&ch->ibuf);
	ch->ibuf.fd = -1;
	ch->dead = 1;
}

/* libevent glue */

static void
proc_event_io(int fd, short event, void *arg)
{
	proc_chan_io(arg, (event & EV_READ) != 0, (event & EV_WRITE) != 0);
}

static void
proc_event_dead(int fd, short event, void *arg)
{
	struct proc_chan	*ch = arg;

	ch->closed(ch);
}

static void
proc_event_arm(struct proc_chan *ch)
{
	short	 want = 0;

	if (ch->dead) {
		if (ch->events != 0)
			event_del(&ch->ev);
		ch->events = 0;
		if (!event_pending(&ch->deadev, EV_TIMEOUT, NULL))
			event_active(&ch->deadev, EV_TIMEOUT, 1);
		return;
	}
	if (proc_chan_wants_read(ch))
		want |= EV_READ;
	if (proc_chan_wants_write(ch))
		want |= EV_WRITE;
	if (want == ch->events)
		return;
	if (ch->events != 0)
		event_del(&ch->ev);
	ch->events = want;
	if (want != 0) {
		event_set(&ch->ev, ch->ibuf.fd, want | EV_PERSIST,
		    proc_event_io, ch);
		event_add(&ch->ev, NULL);
	}
}

/* Drive a channel that proc_chan_init() made with libevent. */
void
proc_chan_event_watch(struct proc_chan *ch)
{
	ch->arm = proc_event_arm;
	evtimer_set(&ch->deadev, proc_event_dead, ch);
	proc_event_arm(ch);
}

int
proc_chan_event(struct proc_chan *ch, int fd, const struct proc_peer *peer,
    const char *name, void *arg, void (*closed)(struct proc_chan *))
{
	if (proc_chan_init(ch, fd, peer, name, arg, closed) == -1)
		return (-1);
	proc_chan_event_watch(ch);
	return (0);
}
