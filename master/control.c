/*
 * The control socket, served by the supervisor for mezctl.
 *
 * A client is let in when getpeereid() says it is root or the daemon's
 * own user; members of the control group (its effective gid) may use
 * the read-only show and list requests.  Requests the master or an auth
 * worker answers are forwarded with the client's id as peer id, and the
 * replies are routed back by it.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <event.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"
#include "mezited.h"

#define CONTROL_BACKLOG		16
#define CONTROL_MAX_PER_UID	8
#define CONTROL_MAX		64
#define CONTROL_HIGHWATER	1024	/* replies queued: read no more */

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;
	uint32_t		 id;
	uid_t			 uid;
	int			 readonly;
	pid_t			 waiting;	/* who owes the held reply */
	struct proc_chan	 chan;
};

static void	 control_accept(int, short, void *);
static void	 control_closed(struct proc_chan *);
static void	 control_done(struct ctl_conn *, uint32_t);

static const struct proc_peer	 control_peer;

static TAILQ_HEAD(, ctl_conn)	 ctl_conns = TAILQ_HEAD_INITIALIZER(ctl_conns);
static const struct control_cb	*ctl_cb;
static struct event		 ctl_ev;
static struct event		 ctl_pauseev;
static int			 ctl_fd = -1;
static gid_t			 ctl_gid = (gid_t)-1;
static uint32_t			 ctl_nextid;
static unsigned int		 ctl_count;

int
control_init(const char *path, const char *group)
{
	struct sockaddr_un	 sun;
	struct group		*gr;
	mode_t			 old_umask, mode = 0600;
	int			 fd;

	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL) {
			log_warnx("control group %s: no such group", group);
			return (-1);
		}
		ctl_gid = gr->gr_gid;
		mode = 0660;
	}

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		return (-1);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		log_warn("control socket %s", path);
		return (-1);
	}

	/* A socket left by a dead daemon may go; a live one may not. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_warnx("control socket %s: in use by a running mezited",
		    path);
		close(fd);
		return (-1);
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_warn("control socket %s: unlink", path);
		close(fd);
		return (-1);
	}

	old_umask = umask(S_IXUSR | S_IXGRP | S_IRWXO);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("control socket %s: bind", path);
		umask(old_umask);
		close(fd);
		return (-1);
	}
	umask(old_umask);
	if (chmod(path, mode) == -1 ||
	    (group != NULL && chown(path, (uid_t)-1, ctl_gid) == -1)) {
		log_warn("control socket %s: permissions", path);
		close(fd);
		(void)unlink(path);
		return (-1);
	}
	if (listen(fd, CONTROL_BACKLOG) == -1) {
		log_warn("control socket %s: listen", path);
		close(fd);
		(void)unlink(path);
		return (-1);
	}
	ctl_fd = fd;
	return (0);
}

void
control_listen(const struct control_cb *cb)
{
	ctl_cb = cb;
	event_set(&ctl_ev, ctl_fd, EV_READ | EV_PERSIST, control_accept, NULL);
	event_add(&ctl_ev, NULL);
	evtimer_set(&ctl_pauseev, control_accept, NULL);
}

void
control_cleanup(const char *path)
{
	if (ctl_fd == -1)
		return;
	event_del(&ctl_ev);
	evtimer_del(&ctl_pauseev);
	close(ctl_fd);
	ctl_fd = -1;
	(void)unlink(path);
}

/* Is the peer in the control group, by its gid or its user's groups? */
static int
control_member(uid_t uid, gid_t gid)
{
	struct passwd	*pw;
	gid_t		 groups[NGROUPS_MAX + 1];
	int		 i, n = NGROUPS_MAX + 1;

	if (ctl_gid == (gid_t)-1)
		return (0);
	if (gid == ctl_gid)
		return (1);
	if ((pw = getpwuid(uid)) == NULL ||
	    getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return (0);
	for (i = 0; i < n; i++)
		if (groups[i] == ctl_gid)
			return (1);
	return (0);
}

static void
control_accept(int fd, short event, void *arg)
{
	struct ctl_conn	*c, *o;
	struct timeval	 tv = { 1, 0 };
	uid_t		 uid;
	gid_t		 gid;
	unsigned int	 peruid = 0;
	char		 name[48];
	int		 s;

	if (ctl_fd == -1)
		return;
	if (event & EV_TIMEOUT) {
		event_add(&ctl_ev, NULL);
		return;
	}
	if ((s = accept4(ctl_fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) == -1) {
		if (errno == ENFILE || errno == EMFILE) {
			/* Out of descriptors: pause instead of spinning. */
			event_del(&ctl_ev);
			evtimer_add(&ctl_pauseev, &tv);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control: accept");
		return;
	}
	if (getpeereid(s, &uid, &gid) == -1) {
		log_warn("control: getpeereid");
		close(s);
		return;
	}
	if (uid != 0 && uid != geteuid() && !control_member(uid, gid)) {
		log_warnx("control: refused uid %u", (unsigned int)uid);
		close(s);
		return;
	}
	TAILQ_FOREACH(o, &ctl_conns, entry)
		if (o->uid == uid)
			peruid++;
	if (peruid >= CONTROL_MAX_PER_UID || ctl_count >= CONTROL_MAX) {
		log_warnx("control: too many connections from uid %u",
		    (unsigned int)uid);
		close(s);
		return;
	}

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn(__func__);
		close(s);
		return;
	}
	/* The high bit is the supervisor's, for the workers' requests. */
	do {
		c->id = ++ctl_nextid & ~CTL_ID_WORKER;
	} while (c->id == 0);
	c->uid = uid;
	c->readonly = uid != 0 && uid != geteuid();
	(void)snprintf(name, sizeof(name), "control client uid %u",
	    (unsigned int)uid);
	if (proc_chan_event(&c->chan, s, &control_peer, name, c,
	    control_closed) == -1) {
		log_warn(__func__);
		close(s);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&ctl_conns, c, entry);
	ctl_count++;
}

static struct ctl_conn *
control_find(uint32_t id)
{
	struct ctl_conn	*c;

	TAILQ_FOREACH(c, &ctl_conns, entry)
		if (c->id == id)
			return (c);
	return (NULL);
}

static void
control_closed(struct proc_chan *ch)
{
	struct ctl_conn	*c = ch->arg;

	TAILQ_REMOVE(&ctl_conns, c, entry);
	proc_chan_clear(&c->chan);
	free(c);
	ctl_count--;
}

static void
control_fail(struct ctl_conn *c, const char *msg)
{
	Mezite__CtlError	 e;

	mezite__ctl_error__init(&e);
	e.message = (char *)msg;
	control_reply_pb(IMSG_CTL_FAIL, c->id, &e.base);
}

/*
 * Requests the master answers.  A client has one of them on its way at
 * a time: the next waits in its socket until the last reply is in.
 */
static int
control_forward(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;

	ch->hold = 1;
	c->waiting = ctl_cb->forward(imsg_get_type(imsg), c->id, NULL, 0);
	return (0);
}

/* Whether an admin request only reads the store. */
static int
admin_readonly(Mezite__AdminOp op)
{
	switch (op) {
	case MEZITE__ADMIN_OP__USER_LIST:
	case MEZITE__ADMIN_OP__ROLE_LIST:
	case MEZITE__ADMIN_OP__TOKEN_LIST:
	case MEZITE__ADMIN_OP__CERT_LIST:
	case MEZITE__ADMIN_OP__AUDIT_LIST:
	case MEZITE__ADMIN_OP__USER_KEY_LIST:
	case MEZITE__ADMIN_OP__SSH_CA:
		return (1);
	default:
		return (0);
	}
}

/*
 * Requests an auth worker answers: the store's users, roles, tokens,
 * certificates and audit events.  Members of the control group may only
 * list.  The request may hold a password: its bytes are wiped here.
 */
static int
control_admin(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AdminRequest	*req = msg;
	struct ctl_conn		*c = ch->arg;

	pb_wipe(imsg);
	if (c->readonly && !admin_readonly(req->op))
		control_fail(c, "permission denied: only root may change "
		    "the auth store");
	else {
		req->uid = c->uid;
		ch->hold = 1;
		c->waiting = ctl_cb->admin(c->id, req);
	}
	explicit_bzero(req->password, strlen(req->password));
	return (0);
}

static int
control_workers(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;

	ctl_cb->workers(c->id);
	return (0);
}

static int
control_reload(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;

	if (c->readonly)
		control_fail(c, "permission denied");
	else if (ctl_cb->reload() == -1)
		control_fail(c, "reload failed; the running configuration "
		    "is kept (see the log)");
	else
		control_reply(IMSG_CTL_OK, c->id, NULL, 0);
	return (0);
}

static int
control_verbose(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;
	int		 v;

	if (imsg_get_data(imsg, &v, sizeof(v)) == -1 || v < 0 || v > 2)
		return (-1);
	if (c->readonly)
		control_fail(c, "permission denied");
	else {
		ctl_cb->verbose(v);
		control_reply(IMSG_CTL_OK, c->id, NULL, 0);
	}
	return (0);
}

/* The nodes the tunnel workers know; any client may see them. */
static int
control_nodes(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;

	ch->hold = 1;
	c->waiting = ctl_cb->nodes(c->id);
	return (0);
}

/*
 * A stream to a node's service, which comes back as a descriptor: only
 * for clients that may write, since it reaches inside the network.
 */
static int
control_connect(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__DialRequest	*req = msg;
	struct ctl_conn		*c = ch->arg;
	char			 who[64], *theirs;

	if (c->readonly) {
		control_fail(c, "permission denied: only root may connect "
		    "to nodes");
		return (0);
	}
	(void)snprintf(who, sizeof(who), "mezctl uid %u",
	    (unsigned int)c->uid);
	theirs = req->requester;
	req->requester = who;
	ch->hold = 1;
	c->waiting = ctl_cb->connect(c->id, req);
	req->requester = theirs;	/* the message's to free */
	return (0);
}

/* The live SSH sessions; any client may see them. */
static int
control_sessions(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;

	ch->hold = 1;
	c->waiting = ctl_cb->sessions(c->id);
	return (0);
}

/* End an SSH session: only for clients that may write. */
static int
control_kill_session(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_conn	*c = ch->arg;
	uint64_t	 id;

	if (c->readonly) {
		control_fail(c, "permission denied: only root may end "
		    "sessions");
		return (0);
	}
	memcpy(&id, imsg->data, sizeof(id));
	ch->hold = 1;
	c->waiting = ctl_cb->kill(c->id, id);
	return (0);
}

static const struct proc_msg control_msgs[] = {
	{ IMSG_CTL_SHOW_STATUS, 0, NULL, PROC_FD_NONE, control_forward },
	{ IMSG_CTL_SHOW_CONNECTIONS, 0, NULL, PROC_FD_NONE, control_forward },
	{ IMSG_CTL_SHOW_WORKERS, 0, NULL, PROC_FD_NONE, control_workers },
	{ IMSG_CTL_RELOAD, 0, NULL, PROC_FD_NONE, control_reload },
	{ IMSG_CTL_LOG_VERBOSE, sizeof(int), NULL, PROC_FD_NONE,
	    control_verbose },
	{ IMSG_CTL_ADMIN, PROC_LEN_PB, &mezite__admin_request__descriptor,
	    PROC_FD_NONE, control_admin },
	{ IMSG_CTL_SHOW_NODES, 0, NULL, PROC_FD_NONE, control_nodes },
	{ IMSG_CTL_CONNECT, PROC_LEN_PB, &mezite__dial_request__descriptor,
	    PROC_FD_NONE, control_connect },
	{ IMSG_CTL_SHOW_SESSIONS, 0, NULL, PROC_FD_NONE, control_sessions },
	{ IMSG_CTL_KILL_SESSION, sizeof(uint64_t), NULL, PROC_FD_NONE,
	    control_kill_session },
};

/*
 * A client that asks and does not read its replies stops being read
 * once CONTROL_HIGHWATER replies wait for it: its requests wait in its
 * own socket, and nothing it does grows the supervisor's memory.
 */
static const struct proc_peer control_peer = {
	"a control client", 0, control_msgs, nitems(control_msgs),
	CONTROL_HIGHWATER, 0, 0
};

/* A child went away: the answers it owed will not come. */
void
control_gone(pid_t pid)
{
	struct ctl_conn	*c;

	TAILQ_FOREACH(c, &ctl_conns, entry)
		if (c->chan.hold && c->waiting == pid)
			control_fail(c, "the process answering went away");
}

void
control_reply(uint32_t type, uint32_t id, const void *data, size_t len)
{
	struct ctl_conn	*c;

	if ((c = control_find(id)) == NULL)
		return;		/* it has gone meanwhile */
	if (proc_compose(&c->chan, type, 0, -1, data, len) == -1) {
		proc_chan_kill(&c->chan, "reply: %s", strerror(errno));
		return;
	}
	control_done(c, type);
}

/* A reply with a descriptor, which is closed if the client has gone. */
void
control_reply_fd(uint32_t type, uint32_t id, const void *data, size_t len,
    int fd)
{
	struct ctl_conn	*c;

	if ((c = control_find(id)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	if (proc_compose(&c->chan, type, 0, fd, data, len) == -1) {
		proc_chan_kill(&c->chan, "reply: %s", strerror(errno));
		return;
	}
	control_done(c, type);
}

/* Another process now owes the client its answer. */
void
control_waiting(uint32_t id, pid_t pid)
{
	struct ctl_conn	*c;

	if ((c = control_find(id)) != NULL && c->chan.hold)
		c->waiting = pid;
}

void
control_reply_pb(uint32_t type, uint32_t id, const ProtobufCMessage *msg)
{
	struct ctl_conn	*c;

	if ((c = control_find(id)) == NULL)
		return;
	if (proc_compose_pb(&c->chan, type, 0, -1, msg) == -1) {
		proc_chan_kill(&c->chan, "reply: %s", strerror(errno));
		return;
	}
	control_done(c, type);
}

/* The last reply to a forwarded request: take the client's next one. */
static void
control_done(struct ctl_conn *c, uint32_t type)
{
	if (!c->chan.hold || (type != IMSG_CTL_END && type != IMSG_CTL_FAIL &&
	    type != IMSG_CTL_CONNECT_REPLY))
		return;
	c->chan.hold = 0;
	c->waiting = 0;
	if (!c->chan.dispatching)
		proc_chan_io(&c->chan, 0, 0);
}
