/*
 * The control socket, served by the supervisor for mezctl.
 *
 * A client is let in when getpeereid() says it is root or the daemon's
 * own user; members of the control group (its effective gid) may use
 * the read-only show requests.  Requests the master answers are
 * forwarded with the client's id as peer id, and the replies are routed
 * back by it.
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
#define CONTROL_QUEUE_MAX	(MAX_CONNECTIONS_LIMIT / 10)	/* replies */

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;
	uint32_t		 id;
	uid_t			 uid;
	int			 readonly;
	struct imsgev		 iev;
};

static void	 control_accept(int, short, void *);
static void	 control_dispatch(int, short, void *);
static void	 control_close(struct ctl_conn *);

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
	do {
		c->id = ++ctl_nextid;
	} while (c->id == 0);
	c->uid = uid;
	c->readonly = uid != 0 && uid != geteuid();
	if (imsgev_init(&c->iev, s, c, control_dispatch) == -1) {
		log_warn(__func__);
		close(s);
		free(c);
		return;
	}
	imsgev_add(&c->iev);
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
control_close(struct ctl_conn *c)
{
	TAILQ_REMOVE(&ctl_conns, c, entry);
	imsgev_clear(&c->iev);
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

static void
control_dispatch(int fd, short event, void *arg)
{
	struct imsgev	*iev = arg;
	struct ctl_conn	*c = iev->data;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 v;

	if (imsgev_io(iev, event) != 1) {
		control_close(c);
		return;
	}
	for (;;) {
		if ((n = imsg_get(&iev->ibuf, &imsg)) == -1) {
			control_close(c);
			return;
		}
		if (n == 0)
			break;

		if (c->readonly && imsg_get_type(&imsg) !=
		    IMSG_CTL_SHOW_STATUS && imsg_get_type(&imsg) !=
		    IMSG_CTL_SHOW_WORKERS && imsg_get_type(&imsg) !=
		    IMSG_CTL_SHOW_CONNECTIONS) {
			control_fail(c, "permission denied");
			imsg_free(&imsg);
			continue;
		}

		switch (imsg_get_type(&imsg)) {
		case IMSG_CTL_SHOW_STATUS:
		case IMSG_CTL_SHOW_CONNECTIONS:
			if (imsg_get_len(&imsg) != 0)
				goto bad;
			ctl_cb->forward(imsg_get_type(&imsg), c->id, NULL, 0);
			break;
		case IMSG_CTL_SHOW_WORKERS:
			if (imsg_get_len(&imsg) != 0)
				goto bad;
			ctl_cb->workers(c->id);
			break;
		case IMSG_CTL_RELOAD:
			if (imsg_get_len(&imsg) != 0)
				goto bad;
			if (ctl_cb->reload() == -1)
				control_fail(c, "reload failed; the running "
				    "configuration is kept (see the log)");
			else
				control_reply(IMSG_CTL_OK, c->id, NULL, 0);
			break;
		case IMSG_CTL_LOG_VERBOSE:
			if (imsg_get_data(&imsg, &v, sizeof(v)) == -1 ||
			    v < 0 || v > 2)
				goto bad;
			ctl_cb->verbose(v);
			control_reply(IMSG_CTL_OK, c->id, NULL, 0);
			break;
		default:
 bad:
			log_debug("control: bad request %u from uid %u",
			    imsg_get_type(&imsg), (unsigned int)c->uid);
			imsg_free(&imsg);
			control_close(c);
			return;
		}
		imsg_free(&imsg);
	}
	imsgev_add(iev);
}

/*
 * The client a reply goes to: NULL if it has gone meanwhile, or if it
 * asks and never reads, in which case it is dropped.
 */
static struct ctl_conn *
control_target(uint32_t id)
{
	struct ctl_conn	*c;

	if ((c = control_find(id)) == NULL)
		return (NULL);
	if (imsgbuf_queuelen(&c->iev.ibuf) >= CONTROL_QUEUE_MAX) {
		log_warnx("control: uid %u does not read its replies",
		    (unsigned int)c->uid);
		control_close(c);
		return (NULL);
	}
	return (c);
}

void
control_reply(uint32_t type, uint32_t id, const void *data, size_t len)
{
	struct ctl_conn	*c;

	if ((c = control_target(id)) == NULL)
		return;
	if (imsgev_compose(&c->iev, type, 0, -1, data, len) == -1) {
		log_warn("control: reply");
		control_close(c);
	}
}

void
control_reply_pb(uint32_t type, uint32_t id, const ProtobufCMessage *msg)
{
	struct ctl_conn	*c;

	if ((c = control_target(id)) == NULL)
		return;
	if (pb_compose(&c->iev.ibuf, type, 0, -1, msg) == -1) {
		log_warn("control: reply");
		control_close(c);
		return;
	}
	imsgev_add(&c->iev);
}
