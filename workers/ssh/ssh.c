/*
 * The ssh worker: the bastion on ALPN mezite-ssh.
 *
 * Each SSH session runs in a process of its own (session.c), so that a
 * crash or a compromise of one touches no other.  This process takes
 * the master's handoffs and gives each to an idle session process: it
 * keeps SSH_SPARES of them forked ahead, so that a session waits for
 * no fork, and no more than max sessions at once.  When that many are
 * running, a new session takes the place of the oldest one that has
 * not logged in yet: clients that open sessions and never log in can
 * hold none of them for long, and a logged-in session is never cut
 * to make room.
 *
 * A session process parses everything its client sends; this process
 * does not trust it.  Its questions go through here to the supervisor,
 * and from there to the auth worker (may this user log in, may they
 * reach that node) and the tunnel worker (a stream to a node).  What
 * the session proved is put in here, from the handoff and from the
 * answers, whatever the session process says: the certificate, the
 * client's address, the user once the auth worker has let them in, and
 * streams only to the node and service the auth worker allowed.  A
 * session process that asks for anything else is killed.
 *
 * Static targets, hosts of the configuration reached by address rather
 * than through a node's mezd, are this process's too: it decides that a
 * name is one (and tells the auth worker so), and it makes the
 * connection, without blocking and within SSH_TARGET_WAIT seconds, and
 * passes the socket on as the tunnel worker's streams are passed on.
 * The addresses are numeric: this process, chrooted, resolves no names.
 *
 * The host keys are read, or made on first start, in the worker's own
 * directory (its chroot) before any session.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "ssh.h"

#define SESSIONS_PART	(12 * 1024)	/* a SessionList's part */
#define ASKS_MAX	4096		/* questions on their way */

/* A session process: spare, or serving one session. */
struct sess {
	TAILQ_ENTRY(sess)	 entry;
	pid_t			 pid;
	struct proc_chan	 chan;
	int			 busy;
	int			 killed;	/* by mezctl kill session */
	int			 evicted;	/* to make room, before login */
	Mezite__ConnMeta	*meta;		/* while busy */
	char			 address[64];	/* the client's */
	char			 user[SSH_USER_MAX + 1];  /* logged in */
	char			 tried[SSH_USER_MAX + 1]; /* asked for */
	struct {
		char		 node[65];
		char		 service[65];
		int		 is_static;	/* a static target */
	}			 grants[SSH_GRANTS_MAX];
	size_t			 ngrants;
	int64_t			 started;
	uint32_t		 channels;
	uint64_t		 bytes_in, bytes_out;
	char			 targets[SSH_TARGETS_LEN];
};
TAILQ_HEAD(sesss, sess);

/* A session process's question, on its way. */
struct ask {
	TAILQ_ENTRY(ask)	 entry;
	uint32_t		 id;		/* ours, to the supervisor */
	uint32_t		 type;
	struct sess		*s;
	uint32_t		 cookie;	/* the session process's */
	char			 node[65];	/* access: granted if allowed */
	char			 service[65];
	int			 is_static;
	char			 user[SSH_USER_MAX + 1];	/* auth */
	int			 fd;		/* to a static target */
	struct event		 ev;		/* its connect */
};
TAILQ_HEAD(asks, ask);

/* A static target of the configuration. */
struct starget {
	char			 name[65];
	char			 service[8];	/* "ssh", or the port */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
};

static void	 ssh_configure(const Mezite__WorkerConfig *);
static void	 ssh_watch(struct proc_chan *);
static void	 ssh_unwatch(struct proc_chan *);
static void	 ssh_handoff(int, Mezite__ConnMeta *);
static void	 ssh_status(const Mezite__Status *);
static void	 ssh_drain(void);
static void	 ssh_sigchld(int, short, void *);
static void	 ssh_tick(int, short, void *);
static int	 ssh_reply(struct proc_chan *, struct imsg *, void *);
static int	 ssh_dial_reply(struct proc_chan *, struct imsg *, void *);
static int	 ssh_show(struct proc_chan *, struct imsg *, void *);
static int	 ssh_kill(struct proc_chan *, struct imsg *, void *);
static void	 spares_fill(void);
static struct sess *sess_fork(void);
static void	 sess_free(struct sess *);
static void	 sess_evict(int64_t);
static void	 sess_closed(struct proc_chan *);
static void	 sess_audit(struct sess *, const char *, int, const char *);
static void	 asks_drop(struct sess *);
static int	 name_ok(const char *, size_t);
static void	 target_connected(int, short, void *);

static const struct proc_msg ssh_parent_msgs[] = {
	{ IMSG_SSH_AUTH_REPLY, PROC_LEN_PB, &mezite__ssh_reply__descriptor,
	    PROC_FD_NONE, ssh_reply },
	{ IMSG_SSH_ACCESS_REPLY, PROC_LEN_PB, &mezite__ssh_reply__descriptor,
	    PROC_FD_NONE, ssh_reply },
	{ IMSG_TUNNEL_DIAL_REPLY, PROC_LEN_PB, &mezite__dial_reply__descriptor,
	    PROC_FD_ANY | PROC_FD_LOSSY, ssh_dial_reply },
	{ IMSG_CTL_SHOW_SESSIONS, 0, NULL, PROC_FD_NONE, ssh_show },
	{ IMSG_CTL_KILL_SESSION, sizeof(uint64_t), NULL, PROC_FD_NONE,
	    ssh_kill },
};

static const struct worker_cb ssh_wcb = {
	.configure = ssh_configure,
	.watch = ssh_watch,
	.unwatch = ssh_unwatch,
	.handoff = ssh_handoff,
	.status = ssh_status,
	.drain = ssh_drain,
	.parent_msgs = ssh_parent_msgs,
	.nparent_msgs = nitems(ssh_parent_msgs),
};

static struct ssh_hostkeys	 hostkeys;
static struct sesss		 sesss = TAILQ_HEAD_INITIALIZER(sesss);
static unsigned int		 nspare, nbusy;
static unsigned int		 nevicted;	/* of nbusy, on their way out */
static int64_t			 evict_logged;
static unsigned int		 evict_count;
static unsigned int		 max_sessions;
static struct asks		 asks = TAILQ_HEAD_INITIALIZER(asks);
static unsigned int		 nasks;
static uint32_t			 ask_nextid;
static struct event		 chldev, tickev;
static int			 configured;
static int			 draining;
static int64_t			 full_logged;	/* "at max sessions", last */
static unsigned int		 full_refused;
static char			 wname[32];
static struct starget		 targets[SSH_TARGETS_MAX];
static size_t			 ntargets;

__dead void
ssh(unsigned int instance, const char *user, const char *root)
{
	(void)snprintf(wname, sizeof(wname), "ssh.%u", instance);
	event_init();
	worker_init(PROC_SSH, instance, user, root, &ssh_wcb);
	signal_set(&chldev, SIGCHLD, ssh_sigchld, NULL);
	signal_add(&chldev, NULL);
	evtimer_set(&tickev, ssh_tick, NULL);
	event_dispatch();
	fatalx("event loop ended");
}

/*
 * A host key of the type: read from its file, or made and written
 * there (with the public half beside it, for operators to publish).
 */
/* The public half, as in authorized_keys, for operators to publish. */
static void
hostkey_publish(ssh_key key, const char *path)
{
	FILE	*f;
	char	*b64 = NULL;

	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK ||
	    (f = fopen(path, "w")) == NULL) {
		log_warn("host key %s", path);
		ssh_string_free_char(b64);
		return;
	}
	fprintf(f, "%s %s mezited\n", ssh_key_type_to_char(ssh_key_type(key)),
	    b64);
	if (fclose(f) == EOF)
		log_warn("host key %s", path);
	ssh_string_free_char(b64);
}

static ssh_key
hostkey_load(const char *dir, const char *file, enum ssh_keytypes_e type,
    int bits)
{
	ssh_key		 key = NULL;
	char		 path[PATH_MAX], *hash = NULL;
	unsigned char	*h = NULL;
	size_t		 hlen;
	struct stat	 st;

	if ((size_t)snprintf(path, sizeof(path), "%s%s%s", dir,
	    dir[strlen(dir) - 1] == '/' ? "" : "/", file) >= sizeof(path))
		fatalx("%s/%s: path too long", dir, file);
	if (stat(path, &st) == 0) {
		if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL,
		    &key) != SSH_OK)
			fatalx("host key %s: cannot be read", path);
		if (ssh_key_type(key) != type)
			fatalx("host key %s: not a %s key", path,
			    ssh_key_type_to_char(type));
	} else if (errno != ENOENT)
		fatal("host key %s", path);
	else {
		if (ssh_pki_generate(type, bits, &key) != SSH_OK)
			fatalx("host key %s: cannot be made", path);
		if (ssh_pki_export_privkey_file(key, NULL, NULL, NULL,
		    path) != SSH_OK)
			fatalx("host key %s: cannot be written", path);
		log_info("made host key %s", path);
		if (strlcat(path, ".pub", sizeof(path)) < sizeof(path))
			hostkey_publish(key, path);
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &h,
	    &hlen) == 0 && (hash = ssh_get_fingerprint_hash(
	    SSH_PUBLICKEY_HASH_SHA256, h, hlen)) != NULL)
		log_info("host key %s: %s", ssh_key_type_to_char(type), hash);
	ssh_string_free_char(hash);
	ssh_clean_pubkey_hash(&h);
	return (key);
}

/*
 * The service a port is: 22 is a node's "ssh", any other its number in
 * decimal (a mezd service named "5432").
 */
static void
port_service(unsigned int port, char *buf, size_t len)
{
	if (port == 22)
		(void)strlcpy(buf, "ssh", len);
	else
		(void)snprintf(buf, len, "%u", port);
}

/* The static targets, as the supervisor checked them. */
static void
targets_configure(const Mezite__WorkerConfig *wc)
{
	const Mezite__SshTarget	*t;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct starget		*st;
	size_t			 i;

	if (wc->n_ssh_targets > SSH_TARGETS_MAX)
		fatalx("%zu static targets", wc->n_ssh_targets);
	memset(targets, 0, sizeof(targets));
	ntargets = 0;
	for (i = 0; i < wc->n_ssh_targets; i++) {
		t = wc->ssh_targets[i];
		st = &targets[ntargets];
		if (!name_ok(t->name, 64) || t->port == 0 || t->port > 65535)
			fatalx("static target %zu: bad name or port", i);
		(void)strlcpy(st->name, t->name, sizeof(st->name));
		port_service(t->port, st->service, sizeof(st->service));
		sin = (struct sockaddr_in *)&st->ss;
		sin6 = (struct sockaddr_in6 *)&st->ss;
		if (inet_pton(AF_INET, t->address, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(t->port);
			st->sslen = sizeof(*sin);
		} else if (inet_pton(AF_INET6, t->address,
		    &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(t->port);
			st->sslen = sizeof(*sin6);
		} else
			fatalx("static target %s: %s is not a numeric address",
			    t->name, t->address);
		ntargets++;
	}
}

static struct starget *
target_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < ntargets; i++)
		if (strcmp(targets[i].name, name) == 0)
			return (&targets[i]);
	return (NULL);
}

static void
ssh_configure(const Mezite__WorkerConfig *wc)
{
	mode_t	 mask;

	max_sessions = wc->max_sessions > 0 ? wc->max_sessions : 256;
	targets_configure(wc);
	mask = umask(077);
	if (wc->state[0] == '\0')
		fatalx("no state directory");
	hostkeys.keys[0] = hostkey_load(wc->state, "ssh_host_ed25519_key",
	    SSH_KEYTYPE_ED25519, 0);
	hostkeys.n = SSH_HOSTKEYS;
	(void)umask(mask);
	sandbox_ssh(ntargets > 0);
	configured = 1;
	spares_fill();
	log_debug("serving, at most %u sessions", max_sessions);
}

static void
ssh_watch(struct proc_chan *ch)
{
	proc_chan_event_watch(ch);
}

static void
ssh_unwatch(struct proc_chan *ch)
{
	/* proc_chan_clear() takes the channel out of the loop. */
}

static void
ssh_status(const Mezite__Status *st)
{
	/* The ssh worker asks the master nothing. */
}

/* Session processes */

/* Keep SSH_SPARES idle, within max sessions. */
static void
spares_fill(void)
{
	while (configured && !draining && nspare < SSH_SPARES &&
	    nspare + nbusy < max_sessions)
		if (sess_fork() == NULL)
			break;		/* tried again at the next tick */
}

static const struct proc_peer ssh_from_session;

static struct sess *
sess_fork(void)
{
	struct sess	*s;
	char		 name[48];
	int		 sp[2];
	pid_t		 pid;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("%s", __func__);
		return (NULL);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("%s: socketpair", __func__);
		free(s);
		return (NULL);
	}
	switch (pid = fork()) {
	case -1:
		log_warn("%s: fork", __func__);
		close(sp[0]);
		close(sp[1]);
		free(s);
		return (NULL);
	case 0:
		/*
		 * The session keeps its channel and the log socket, and
		 * nothing else of ours: not the supervisor's channel, the
		 * master's, or another session's.
		 */
		if (dup2(sp[1], SSH_SESSION_FD) == -1)
			_exit(1);
		closefrom(SSH_SESSION_FD + 1);
		close(PROC_PARENT_FD);
		(void)signal(SIGCHLD, SIG_DFL);
		(void)signal(SIGTERM, SIG_DFL);
		session_main(SSH_SESSION_FD, &hostkeys, wname);
	}
	close(sp[1]);
	s->pid = pid;
	s->chan.ibuf.fd = -1;
	(void)snprintf(name, sizeof(name), "session process %d", (int)pid);
	if (fd_nonblock(sp[0]) == -1 || proc_chan_event(&s->chan, sp[0],
	    &ssh_from_session, name, s, sess_closed) == -1) {
		log_warn("%s: channel", __func__);
		close(sp[0]);
		(void)kill(pid, SIGKILL);
		memset(&s->chan, 0, sizeof(s->chan));
		s->chan.ibuf.fd = -1;
		s->chan.dead = 1;	/* reaped by ssh_sigchld */
	}
	TAILQ_INSERT_TAIL(&sesss, s, entry);
	nspare++;
	return (s);
}

static struct sess *
sess_idle(void)
{
	struct sess	*s;

	TAILQ_FOREACH(s, &sesss, entry)
		if (!s->busy && !s->chan.dead)
			return (s);
	return (NULL);
}

static void
handoff_refuse(int fd, Mezite__ConnMeta *meta)
{
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS) {
		(void)ktls_close_notify(fd);
		worker_conn_done(meta->id);
	}
	close(fd);
	mezite__conn_meta__free_unpacked(meta, NULL);
}

/* A session from the master: to an idle session process. */
static void
ssh_handoff(int fd, Mezite__ConnMeta *meta)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct sess		*s;
	int64_t			 now = time_now();

	if (draining || !configured) {
		log_info("conn %llu: refused: draining",
		    (unsigned long long)meta->id);
		handoff_refuse(fd, meta);
		return;
	}
	if ((s = sess_idle()) == NULL) {
		if (nbusy - nevicted >= max_sessions)
			sess_evict(now);
		if (nbusy - nevicted < max_sessions)
			s = sess_fork();
	}
	if (s == NULL) {
		/* One line a minute, however many are refused. */
		full_refused++;
		if (now - full_logged >= 60) {
			log_warnx("at max sessions (%u): %u sessions refused",
			    max_sessions, full_refused);
			full_logged = now;
			full_refused = 0;
		}
		handoff_refuse(fd, meta);
		return;
	}
	if (proc_compose_pb(&s->chan, IMSG_HANDOFF, 0, fd,
	    &meta->base) == -1) {
		log_warn("conn %llu: to %s", (unsigned long long)meta->id,
		    s->chan.name);
		handoff_refuse(fd, meta);
		return;
	}
	s->busy = 1;
	s->meta = meta;
	s->started = now;
	if (meta->client != NULL &&
	    addr_from_pb(meta->client, &ss, &sslen) == 0)
		(void)addr_str((struct sockaddr *)&ss, s->address,
		    sizeof(s->address));
	else
		(void)strlcpy(s->address, "?", sizeof(s->address));
	nspare--;
	nbusy++;
	log_debug("conn %llu: session process %d, from %s",
	    (unsigned long long)meta->id, (int)s->pid, s->address);
	spares_fill();
}

/*
 * Room for one more session: the oldest one that has not logged in is
 * ended.  Logged-in sessions are not touched.
 */
static void
sess_evict(int64_t now)
{
	struct sess	*s, *oldest = NULL;

	TAILQ_FOREACH(s, &sesss, entry)
		if (s->busy && !s->evicted && s->user[0] == '\0' &&
		    (oldest == NULL || s->started < oldest->started))
			oldest = s;
	if (oldest == NULL)
		return;
	(void)kill(oldest->pid, SIGKILL);
	oldest->evicted = 1;
	nevicted++;
	/* One line a minute, however many. */
	evict_count++;
	if (now - evict_logged >= 60) {
		log_warnx("at max sessions (%u): %u sessions that had not "
		    "logged in were closed to make room", max_sessions,
		    evict_count);
		evict_logged = now;
		evict_count = 0;
	}
}

static void
sess_closed(struct proc_chan *ch)
{
	struct sess	*s = ch->arg;

	/* A session process that broke its channel is done with. */
	if (!ch->eof)
		(void)kill(s->pid, SIGKILL);
	proc_chan_clear(ch);
}

/*
 * The channel is cleared whether or not it died first: one that died
 * has its closed() still to come from the loop, which must not find
 * it freed.
 */
static void
sess_free(struct sess *s)
{
	asks_drop(s);
	proc_chan_clear(&s->chan);
	TAILQ_REMOVE(&sesss, s, entry);
	if (s->busy) {
		nbusy--;
		if (s->evicted)
			nevicted--;
		if (s->meta->mode == MEZITE__HANDOFF_MODE__KTLS)
			worker_conn_done(s->meta->id);
		mezite__conn_meta__free_unpacked(s->meta, NULL);
	} else
		nspare--;
	free(s);
}

static void
ssh_sigchld(int sig, short event, void *arg)
{
	struct sess	*s;
	char		 why[64];
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(s, &sesss, entry)
			if (s->pid == pid)
				break;
		if (s == NULL)
			continue;
		if (s->busy && s->evicted)
			log_debug("conn %llu: closed before login, to make "
			    "room", (unsigned long long)s->meta->id);
		else if (s->busy && (WIFSIGNALED(status) ||
		    WEXITSTATUS(status) != 0)) {
			if (s->killed)
				(void)strlcpy(why, "ended by mezctl kill "
				    "session", sizeof(why));
			else if (WIFEXITED(status) &&
			    WEXITSTATUS(status) == SSH_EXIT_GRACE)
				(void)snprintf(why, sizeof(why), "no login "
				    "within %d s", SSH_LOGIN_GRACE);
			else if (WIFSIGNALED(status))
				(void)snprintf(why, sizeof(why), "the session "
				    "process was killed by signal %d",
				    WTERMSIG(status));
			else
				(void)snprintf(why, sizeof(why), "the session "
				    "process exited with status %d",
				    WEXITSTATUS(status));
			log_warnx("conn %llu: %s", (unsigned long long)
			    s->meta->id, why);
			sess_audit(s, "ssh.session", 0, why);
		} else if (!s->busy && !draining && (WIFSIGNALED(status) ||
		    WEXITSTATUS(status) != 0))
			log_warnx("spare session process %d ended (status "
			    "%d)", (int)pid, status);
		sess_free(s);
	}
	if (pid == -1 && errno != ECHILD)
		log_warn("waitpid");
	if (draining && nbusy == 0)
		worker_exit();
	/* A spare that could not start is tried again in a second. */
	spares_fill();
	if (configured && !draining && nspare < SSH_SPARES &&
	    nspare + nbusy < max_sessions && !evtimer_pending(&tickev, NULL)) {
		struct timeval	 tv = { 1, 0 };

		evtimer_add(&tickev, &tv);
	}
}

static void
ssh_tick(int fd, short event, void *arg)
{
	spares_fill();
}

static void
ssh_drain(void)
{
	struct sess	*s;

	if (draining)
		return;
	draining = 1;
	log_info("draining: %u sessions", nbusy);
	/* Spares have nothing to finish. */
	TAILQ_FOREACH(s, &sesss, entry)
		if (!s->busy)
			(void)kill(s->pid, SIGTERM);
	if (nbusy == 0 && nspare == 0)
		worker_exit();
}

/* An audit event about the session, as this process knows it. */
static void
sess_audit(struct sess *s, const char *type, int success,
    const char *detail)
{
	Mezite__AuditEvent	 ev = MEZITE__AUDIT_EVENT__INIT;
	char			 text[1024];

	(void)snprintf(text, sizeof(text), "conn %llu: %s%s%s",
	    (unsigned long long)s->meta->id, detail,
	    s->targets[0] != '\0' ? "; reached " : "", s->targets);
	ev.time = time(NULL);
	ev.type = (char *)type;
	ev.name = s->user[0] != '\0' ? s->user : s->tried;
	ev.address = s->address;
	ev.success = success;
	ev.detail = text;
	if (proc_compose_pb(worker_parent(), IMSG_AUDIT, 0, -1,
	    &ev.base) == -1)
		log_warn("%s: compose", __func__);
}

/* Questions of session processes */

static int
name_ok(const char *p, size_t max)
{
	size_t	 n = strlen(p);

	return (n > 0 && n <= max && strspn(p, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == n);
}

static struct ask *
ask_new(struct sess *s, uint32_t type, uint32_t cookie)
{
	struct ask	*a;

	if (nasks >= ASKS_MAX || (a = calloc(1, sizeof(*a))) == NULL)
		return (NULL);
	a->id = ++ask_nextid;
	a->type = type;
	a->s = s;
	a->cookie = cookie;
	a->fd = -1;
	TAILQ_INSERT_TAIL(&asks, a, entry);
	nasks++;
	return (a);
}

static void
ask_free(struct ask *a)
{
	if (a->fd != -1) {
		if (event_initialized(&a->ev))
			event_del(&a->ev);
		close(a->fd);
	}
	TAILQ_REMOVE(&asks, a, entry);
	nasks--;
	free(a);
}

static struct ask *
ask_find(uint32_t type, uint32_t id)
{
	struct ask	*a;

	TAILQ_FOREACH(a, &asks, entry)
		if (a->id == id && a->type == type)
			return (a);
	return (NULL);
}

/* A session process went: answers for it are dropped when they come. */
static void
asks_drop(struct sess *s)
{
	struct ask	*a, *ta;

	TAILQ_FOREACH_SAFE(a, &asks, entry, ta)
		if (a->s == s)
			ask_free(a);
}

/* Too many questions on their way: say no at once. */
static void
ask_refuse(struct sess *s, uint32_t type, uint32_t cookie)
{
	Mezite__SshReply	 sr = MEZITE__SSH_REPLY__INIT;
	Mezite__DialReply	 dr = MEZITE__DIAL_REPLY__INIT;

	log_warnx("%s: too many questions on their way", s->chan.name);
	if (type == IMSG_TUNNEL_DIAL) {
		dr.error = MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE;
		dr.message = "the bastion is busy";
		(void)proc_compose_pb(&s->chan, IMSG_TUNNEL_DIAL_REPLY, cookie,
		    -1, &dr.base);
		return;
	}
	sr.reason = "the bastion is busy";
	(void)proc_compose_pb(&s->chan, type == IMSG_SSH_AUTH ?
	    IMSG_SSH_AUTH_REPLY : IMSG_SSH_ACCESS_REPLY, cookie, -1,
	    &sr.base);
}

/*
 * May the user log in?  The credential is the session's: the key the
 * client offered, or the certificate the master verified, which comes
 * from the handoff, not from the session process.
 */
static int
sess_auth(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SshAuthRequest	*req = msg;
	struct sess		*s = ch->arg;
	struct ask		*a;
	Mezite__PeerCert	*said_cert = req->cert;
	Mezite__Address		*said_client = req->client;
	int			 rv;

	if (!s->busy || s->user[0] != '\0' ||
	    !name_ok(req->user, SSH_USER_MAX) ||
	    strlen(req->public_key) > 16384)
		return (-1);
	(void)strlcpy(s->tried, req->user, sizeof(s->tried));
	if ((a = ask_new(s, IMSG_SSH_AUTH, imsg_get_id(imsg))) == NULL) {
		ask_refuse(s, IMSG_SSH_AUTH, imsg_get_id(imsg));
		return (0);
	}
	(void)strlcpy(a->user, req->user, sizeof(a->user));
	req->cert = s->meta->cert;
	req->client = s->meta->client;
	req->session = s->meta->id;
	rv = proc_compose_pb(worker_parent(), IMSG_SSH_AUTH, a->id, -1,
	    &req->base);
	req->cert = said_cert;		/* the message's to free */
	req->client = said_client;
	if (rv == -1) {
		log_warn("%s: compose", __func__);
		ask_free(a);
		ask_refuse(s, IMSG_SSH_AUTH, imsg_get_id(imsg));
	}
	return (0);
}

/* May the logged-in user reach the node's service? */
static int
sess_access(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SshAccessRequest	*req = msg;
	Mezite__SshReply		 sr = MEZITE__SSH_REPLY__INIT;
	struct sess			*s = ch->arg;
	struct ask			*a;
	struct starget			*st;
	char				 why[128], detail[256];
	Mezite__Address			*said_client = req->client;
	char				*said_user = req->user;
	int				 rv;

	if (!s->busy || s->user[0] == '\0' || !name_ok(req->node, 64) ||
	    !name_ok(req->service, 64))
		return (-1);
	st = target_find(req->node);
	if (st != NULL && strcmp(st->service, req->service) != 0) {
		/* Not the auth worker's to allow: there is no such thing. */
		(void)snprintf(why, sizeof(why), "static target %s is reached "
		    "on port %s only", st->name, strcmp(st->service, "ssh") ==
		    0 ? "22" : st->service);
		(void)snprintf(detail, sizeof(detail), "static target %s "
		    "service %s: %s", req->node, req->service, why);
		sess_audit(s, "ssh.denied", 0, detail);
		sr.reason = why;
		(void)proc_compose_pb(&s->chan, IMSG_SSH_ACCESS_REPLY,
		    imsg_get_id(imsg), -1, &sr.base);
		return (0);
	}
	if ((a = ask_new(s, IMSG_SSH_ACCESS, imsg_get_id(imsg))) == NULL) {
		ask_refuse(s, IMSG_SSH_ACCESS, imsg_get_id(imsg));
		return (0);
	}
	(void)strlcpy(a->node, req->node, sizeof(a->node));
	(void)strlcpy(a->service, req->service, sizeof(a->service));
	/* Ours to say, whatever the session process said. */
	a->is_static = req->static_target = st != NULL;
	req->user = s->user;
	req->client = s->meta->client;
	req->session = s->meta->id;
	rv = proc_compose_pb(worker_parent(), IMSG_SSH_ACCESS, a->id, -1,
	    &req->base);
	req->user = said_user;
	req->client = said_client;
	if (rv == -1) {
		log_warn("%s: compose", __func__);
		ask_free(a);
		ask_refuse(s, IMSG_SSH_ACCESS, imsg_get_id(imsg));
	}
	return (0);
}

/* A static target's answer to the session process that asked. */
static void
target_answer(struct ask *a, const char *why)
{
	Mezite__DialReply	 dr = MEZITE__DIAL_REPLY__INIT;
	int			 fd = -1;

	if (why == NULL) {
		fd = a->fd;		/* passed on, or closed by compose */
		a->fd = -1;
		dr.error = MEZITE__DIAL_ERROR__DIAL_OK;
		dr.message = "";
		log_info("conn %llu: connected to static target %s for %s",
		    (unsigned long long)a->s->meta->id, a->node, a->s->user);
	} else {
		dr.error = MEZITE__DIAL_ERROR__DIAL_REFUSED;
		dr.message = (char *)why;
		log_info("conn %llu: static target %s for %s: %s",
		    (unsigned long long)a->s->meta->id, a->node, a->s->user,
		    why);
	}
	if (proc_compose_pb(&a->s->chan, IMSG_TUNNEL_DIAL_REPLY, a->cookie,
	    fd, &dr.base) == -1) {
		log_warn("%s: compose", __func__);
		if (fd != -1)
			close(fd);
	}
	ask_free(a);
}

/*
 * A connection to a static target, made here rather than in the session
 * process, which may not make any: without blocking, and answered when
 * it is made, refused, or SSH_TARGET_WAIT seconds have passed.
 */
static void
target_dial(struct ask *a, const char *name)
{
	struct timeval	 tv = { SSH_TARGET_WAIT, 0 };
	struct starget	*st;
	char		 why[128];

	(void)strlcpy(a->node, name, sizeof(a->node));
	if ((st = target_find(name)) == NULL) {
		/* Gone with a new configuration: not this worker's. */
		target_answer(a, "no such static target");
		return;
	}
	if ((a->fd = socket(st->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		(void)snprintf(why, sizeof(why), "socket: %s",
		    strerror(errno));
		target_answer(a, why);
		return;
	}
	if (connect(a->fd, (struct sockaddr *)&st->ss, st->sslen) == 0) {
		target_answer(a, NULL);
		return;
	}
	if (errno != EINPROGRESS) {
		(void)snprintf(why, sizeof(why), "connect: %s",
		    strerror(errno));
		target_answer(a, why);
		return;
	}
	event_set(&a->ev, a->fd, EV_WRITE, target_connected, a);
	if (event_add(&a->ev, &tv) == -1) {
		target_answer(a, "event_add failed");
		return;
	}
}

static void
target_connected(int fd, short event, void *arg)
{
	struct ask	*a = arg;
	char		 why[128];
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (event & EV_TIMEOUT) {
		(void)snprintf(why, sizeof(why), "the target did not answer "
		    "within %d s", SSH_TARGET_WAIT);
		target_answer(a, why);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		(void)snprintf(why, sizeof(why), "connect: %s",
		    strerror(err));
		target_answer(a, why);
		return;
	}
	target_answer(a, NULL);
}

/* A stream to a node and service the auth worker allowed this session. */
static int
sess_dial(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__DialRequest	*req = msg;
	struct sess		*s = ch->arg;
	struct ask		*a;
	char			 who[128], *said = req->requester;
	size_t			 i;
	int			 rv;

	if (!s->busy || s->user[0] == '\0')
		return (-1);
	for (i = 0; i < s->ngrants; i++)
		if (strcmp(s->grants[i].node, req->node) == 0 &&
		    strcmp(s->grants[i].service, req->service) == 0)
			break;
	if (i == s->ngrants) {
		log_warnx("conn %llu: the session asked for a stream to "
		    "%s:%s, which it was not allowed", (unsigned long long)
		    s->meta->id, req->node, req->service);
		return (-1);
	}
	if ((a = ask_new(s, IMSG_TUNNEL_DIAL, imsg_get_id(imsg))) == NULL) {
		ask_refuse(s, IMSG_TUNNEL_DIAL, imsg_get_id(imsg));
		return (0);
	}
	if (s->grants[i].is_static) {
		target_dial(a, req->node);
		return (0);
	}
	(void)snprintf(who, sizeof(who), "%s conn %llu user %s", wname,
	    (unsigned long long)s->meta->id, s->user);
	req->requester = who;
	rv = proc_compose_pb(worker_parent(), IMSG_TUNNEL_DIAL, a->id, -1,
	    &req->base);
	req->requester = said;
	if (rv == -1) {
		log_warn("%s: compose", __func__);
		ask_free(a);
		ask_refuse(s, IMSG_TUNNEL_DIAL, imsg_get_id(imsg));
	}
	return (0);
}

/* What happened, for the auth worker's audit log: named by us. */
static int
sess_audit_msg(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AuditEvent	*ev = msg;
	struct sess		*s = ch->arg;

	if (!s->busy || strncmp(ev->type, "ssh.", 4) != 0 ||
	    strlen(ev->type) > 32 || strlen(ev->detail) > 900)
		return (-1);
	sess_audit(s, ev->type, ev->success, ev->detail);
	return (0);
}

/* What the session is doing now, for mezctl show sessions. */
static int
sess_state(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SshSession	*ss = msg;
	struct sess		*s = ch->arg;

	if (!s->busy)
		return (-1);
	s->channels = ss->channels;
	s->bytes_in = ss->bytes_in;
	s->bytes_out = ss->bytes_out;
	(void)strlcpy(s->targets, ss->targets, sizeof(s->targets));
	return (0);
}

static const struct proc_msg ssh_session_msgs[] = {
	{ IMSG_SSH_AUTH, PROC_LEN_PB, &mezite__ssh_auth_request__descriptor,
	    PROC_FD_NONE, sess_auth },
	{ IMSG_SSH_ACCESS, PROC_LEN_PB,
	    &mezite__ssh_access_request__descriptor, PROC_FD_NONE,
	    sess_access },
	{ IMSG_TUNNEL_DIAL, PROC_LEN_PB, &mezite__dial_request__descriptor,
	    PROC_FD_NONE, sess_dial },
	{ IMSG_AUDIT, PROC_LEN_PB, &mezite__audit_event__descriptor,
	    PROC_FD_NONE, sess_audit_msg },
	{ IMSG_SSH_SESSION, PROC_LEN_PB, &mezite__ssh_session__descriptor,
	    PROC_FD_NONE, sess_state },
};

/* Session processes parse the network's bytes: less privileged. */
static const struct proc_peer ssh_from_session = {
	"a session process", 0, ssh_session_msgs, nitems(ssh_session_msgs),
	0, 0, 0
};

/* Answers, through the supervisor */

/*
 * A decision of the auth worker's, for the session that asked: what
 * it allows is remembered here, so that the session can be held to it.
 */
static int
ssh_reply(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SshReply	*r = msg;
	struct ask		*a;
	struct sess		*s;
	uint32_t		 type = imsg_get_type(imsg);

	if ((a = ask_find(type == IMSG_SSH_AUTH_REPLY ? IMSG_SSH_AUTH :
	    IMSG_SSH_ACCESS, imsg_get_id(imsg))) == NULL)
		return (0);		/* its session is gone */
	s = a->s;
	if (r->allowed && type == IMSG_SSH_AUTH_REPLY)
		(void)strlcpy(s->user, a->user, sizeof(s->user));
	if (r->allowed && type == IMSG_SSH_ACCESS_REPLY &&
	    s->ngrants < SSH_GRANTS_MAX) {
		(void)strlcpy(s->grants[s->ngrants].node, a->node,
		    sizeof(s->grants[0].node));
		(void)strlcpy(s->grants[s->ngrants].service, a->service,
		    sizeof(s->grants[0].service));
		s->grants[s->ngrants].is_static = a->is_static;
		s->ngrants++;
	}
	if (proc_compose(&s->chan, type, a->cookie, -1, imsg->data,
	    imsg_get_len(imsg)) == -1)
		log_warn("%s: compose", __func__);
	ask_free(a);
	return (0);
}

static int
ssh_dial_reply(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__DialReply	*r = msg;
	Mezite__DialReply	 lost = MEZITE__DIAL_REPLY__INIT;
	struct ask		*a;
	int			 fd = imsg_get_fd(imsg);

	if ((a = ask_find(IMSG_TUNNEL_DIAL, imsg_get_id(imsg))) == NULL) {
		if (fd != -1)
			close(fd);
		return (0);
	}
	if (imsg_get_fd_lost(imsg) || (fd == -1 &&
	    r->error == MEZITE__DIAL_ERROR__DIAL_OK)) {
		lost.error = MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE;
		lost.message = "the bastion is out of descriptors";
		if (proc_compose_pb(&a->s->chan, IMSG_TUNNEL_DIAL_REPLY,
		    a->cookie, -1, &lost.base) == -1)
			log_warn("%s: compose", __func__);
	} else if (proc_compose(&a->s->chan, IMSG_TUNNEL_DIAL_REPLY,
	    a->cookie, fd, imsg->data, imsg_get_len(imsg)) == -1) {
		log_warn("%s: compose", __func__);
		if (fd != -1)
			close(fd);
	}
	ask_free(a);
	return (0);
}

/* Control */

static void
sessions_flush(Mezite__SessionList *sl, uint32_t peerid, int more)
{
	sl->more = more;
	if (proc_compose_pb(worker_parent(), IMSG_CTL_SESSIONS, peerid, -1,
	    &sl->base) == -1)
		log_warn("%s: compose", __func__);
	sl->n_sessions = 0;
}

/* mezctl show sessions: ours, in parts of a bounded size. */
static int
ssh_show(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SessionList	 sl = MEZITE__SESSION_LIST__INIT;
	Mezite__SshSession	 one[64], *p[64];
	struct sess		*s;
	size_t			 size = 0;

	sl.sessions = p;
	TAILQ_FOREACH(s, &sesss, entry) {
		if (!s->busy)
			continue;
		if (sl.n_sessions == nitems(one) || size > SESSIONS_PART) {
			sessions_flush(&sl, imsg_get_id(imsg), 1);
			size = 0;
		}
		mezite__ssh_session__init(&one[sl.n_sessions]);
		one[sl.n_sessions].id = s->meta->id;
		one[sl.n_sessions].user = s->user;
		one[sl.n_sessions].client = s->meta->client;
		one[sl.n_sessions].started = s->started;
		one[sl.n_sessions].worker = wname;
		one[sl.n_sessions].pid = s->pid;
		one[sl.n_sessions].channels = s->channels;
		one[sl.n_sessions].targets = s->targets;
		one[sl.n_sessions].bytes_in = s->bytes_in;
		one[sl.n_sessions].bytes_out = s->bytes_out;
		size += mezite__ssh_session__get_packed_size(
		    &one[sl.n_sessions]);
		p[sl.n_sessions] = &one[sl.n_sessions];
		sl.n_sessions++;
	}
	sessions_flush(&sl, imsg_get_id(imsg), 0);
	return (0);
}

/* mezctl kill session: ours ends; another worker's is not ours. */
static int
ssh_kill(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct sess	*s;
	uint64_t	 id;

	memcpy(&id, imsg->data, sizeof(id));
	TAILQ_FOREACH(s, &sesss, entry)
		if (s->busy && s->meta->id == id)
			break;
	if (s == NULL || s->killed) {
		(void)proc_compose(worker_parent(), IMSG_CTL_FAIL,
		    imsg_get_id(imsg), -1, NULL, 0);
		return (0);
	}
	log_info("conn %llu: session of %s ended by mezctl",
	    (unsigned long long)id, s->user[0] != '\0' ? s->user : "nobody");
	s->killed = 1;
	(void)kill(s->pid, SIGKILL);
	(void)proc_compose(worker_parent(), IMSG_CTL_OK, imsg_get_id(imsg),
	    -1, NULL, 0);
	return (0);
}
