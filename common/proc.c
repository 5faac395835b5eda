/*
 * The process table, and what every child does before it serves.
 */

#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <event.h>

#include "log.h"
#include "proc.h"

static const char *const proc_names[PROC_MAX] = {
	[PROC_SUPERVISOR] =	"supervisor",
	[PROC_MASTER] =		"master",
	[PROC_HTTPS] =		"https",
	[PROC_AUTH] =		"auth",
	[PROC_SSH] =		"ssh",
	[PROC_TUNNEL] =		"tunnel",
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
 */
void
proc_drop(const char *procname, const char *user, const char *root)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		return;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("%s: unknown user %s", procname, user);
	if (chroot(root) == -1)
		fatal("%s: chroot %s", procname, root);
	if (chdir("/") == -1)
		fatal("%s: chdir /", procname);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("%s: cannot drop privileges to %s", procname, user);
	if (setuid(0) != -1)
		fatalx("%s: privileges were not dropped", procname);
}

int
imsgev_init(struct imsgev *iev, int fd, void *data,
    void (*handler)(int, short, void *))
{
	if (imsgbuf_init(&iev->ibuf, fd) == -1)
		return (-1);
	iev->handler = handler;
	iev->data = data;
	iev->events = 0;
	return (0);
}

/* Arm the channel: always readable, writable while messages wait. */
void
imsgev_add(struct imsgev *iev)
{
	short	 events = EV_READ;

	if (imsgbuf_queuelen(&iev->ibuf) > 0)
		events |= EV_WRITE;
	if (iev->events != 0)
		event_del(&iev->ev);
	iev->events = events;
	event_set(&iev->ev, iev->ibuf.fd, events, iev->handler, iev);
	event_add(&iev->ev, NULL);
}

/*
 * Do the I/O an event asked for.  Returns 1 while the channel lives,
 * 0 when the peer closed it, -1 on error; messages already buffered
 * can still be taken with imsg_get() either way.
 */
int
imsgev_io(struct imsgev *iev, short event)
{
	int	 n;

	if (event & EV_WRITE) {
		if (imsgbuf_write(&iev->ibuf) == -1)
			return (errno == EPIPE ? 0 : -1);
	}
	if (event & EV_READ) {
		if ((n = imsgbuf_read(&iev->ibuf)) != 1)
			return (n);
	}
	return (1);
}

int
imsgev_compose(struct imsgev *iev, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	int	 ret;

	ret = imsg_compose(&iev->ibuf, type, peerid, 0, fd, data, len);
	if (ret == 0)
		imsgev_add(iev);
	return (ret);
}

void
imsgev_clear(struct imsgev *iev)
{
	if (iev->events != 0)
		event_del(&iev->ev);
	iev->events = 0;
	if (iev->ibuf.fd != -1)
		close(iev->ibuf.fd);
	imsgbuf_clear(&iev->ibuf);
	iev->ibuf.fd = -1;
}
