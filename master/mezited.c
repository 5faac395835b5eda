/*
 * mezited: the supervisor.
 *
 * It parses the configuration, binds the listening sockets, reads the
 * keys, and fork+re-execs one master and the workers, each with its role
 * on the command line, its channel on fd 3 and its log socket on fd 4.
 * It restarts a child that dies, with backoff, and keeps the listening
 * sockets open meanwhile so that the kernel queues new connections
 * instead of refusing them.  It takes no network input.
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <paths.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <tls.h>
#include <unistd.h>
#include <vis.h>

#include "casign.h"
#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "mezited.h"
#include "sandbox.h"
#include "tickets.h"
#include "tls_ossl.h"
#include "util.h"

#define BACKOFF_MAX		60	/* seconds between restarts, at most */
#define BACKOFF_RESET		60	/* a child that lived this long is fine */
#define SUPERVISOR_MAXSIZE	(256 * 1024)	/* keys travel to the master */
#define PAIR_RETRY		1	/* seconds, after a failed pairing */
#define LISTEN_GRACE		5	/* seconds a new master waits for workers */
#define NODES_WAIT		5	/* seconds: tunnel workers' nodes */
#define CTL_PENDING_MAX		64	/* show nodes, connect on their way */
#define TUNNEL_DIAL_WAIT	15	/* seconds: connect (the worker: 10) */
#define WREQ_MAX		1024	/* workers' requests on their way */
#define WREQ_WAIT		10	/* seconds for an auth worker's answer */
#define MASTERS_WAIT		5	/* seconds: show status, connections */
#define MASTER_PING		2	/* seconds between pings of a master */
#define MASTER_HANG		10	/* seconds unanswered: it is killed */
#define MASTER_BIT(m)		((uint64_t)1 << (m)->instance)

/*
 * Where the kernel spreads new connections over a group of sockets
 * bound to one address (SO_REUSEPORT on Linux), each master has its
 * own, kept here across its restarts; elsewhere they share one.
 */
#ifdef __linux__
#define LISTEN_PER_MASTER	1
#else
#define LISTEN_PER_MASTER	0
#endif

struct child {
	TAILQ_ENTRY(child)	 entry;
	enum proc_type		 type;
	unsigned int		 instance;
	pid_t			 pid;		/* 0 while not running */
	int64_t			 started;
	unsigned int		 restarts;
	unsigned int		 backoff;
	int64_t			 restart_at;
	int			 retired;	/* do not restart */
	uint64_t		 paired;	/* masters it has channels to */
	int			 listening;	/* a master with its sockets */
	int64_t			 ping_sent;	/* time_mono(): unanswered */
	struct proc_chan	 chan;
	int			 logfd;
	struct event		 logev;
	struct event		 restartev;
	struct event		 listenev;	/* a master's grace */
};
TAILQ_HEAD(children, child);

/*
 * A control request that other workers answer: show nodes (or show
 * sessions), asked of every tunnel (ssh) worker and ended when all have
 * answered or NODES_WAIT has passed; connect, asked of one tunnel
 * worker after another while they say they have no such node; kill
 * session, asked of every ssh worker until one has it.
 *
 * Or a request of an ssh worker (asker set): a login or access decision
 * that an auth worker makes (IMSG_SSH_AUTH, IMSG_SSH_ACCESS), or a
 * stream from a tunnel worker (IMSG_TUNNEL_DIAL).  Its peerid is ours,
 * with CTL_ID_WORKER set so that it is no control client's; the answer
 * goes back to the asker with its own cookie.
 */
struct ctl_pending {
	TAILQ_ENTRY(ctl_pending) entry;
	uint32_t		 type;		/* IMSG_CTL_SHOW_NODES, ... */
	uint32_t		 peerid;	/* the control client, or ours */
	unsigned int		 waiting;	/* show nodes: workers owing */
	pid_t			 asked;		/* connect: the worker asked */
	Mezite__DialRequest	*req;		/* connect */
	struct child		*asker;		/* an ssh worker's request */
	uint32_t		 cookie;	/* the asker's */
	uint64_t		 owing;		/* masters yet to answer */
	Mezite__Status		*parts[PREFORK_MAX];	/* their status */
	size_t			 nparts;
	struct event		 timer;
};
TAILQ_HEAD(ctl_pendings, ctl_pending);

__dead static void	 usage(void);
static void		 supervisor_sig(int, short, void *);
static void		 child_closed(struct proc_chan *);
static void		 pair_retry(int, short, void *);
static void		 master_listen(int, short, void *);
static void		 masters_listen(void);
static void		 masters_watch(int, short, void *);

static const struct proc_peer	 supervisor_from_master;
static const struct proc_peer	 supervisor_from_worker;
static const struct proc_peer	 supervisor_from_ca;
static const struct proc_peer	 supervisor_from_auth;
static const struct proc_peer	 supervisor_from_tunnel;
static const struct proc_peer	 supervisor_from_ssh;
static void		 supervisor_log(int, short, void *);
static void		 supervisor_restart(int, short, void *);
static void		 supervisor_shutdown(void);
static int		 supervisor_reload(void);
static void		 children_reconcile(void);
static struct child	*child_new(enum proc_type, unsigned int);
static void		 child_retire(struct child *);
static unsigned int	 instance_free(enum proc_type);
static void		 child_start(struct child *);
static void		 child_exited(struct child *, int);
static void		 child_close(struct child *);
static void		 child_free(struct child *);
static void		 child_backoff(struct child *, const char *);
static void		 child_pair(struct child *, struct child *);
static void		 master_pair_all(struct child *);
static int		 child_up(const struct child *);
static int		 master_up(const struct child *);
static uint64_t		 masters_up(void);
static unsigned int	 masters_count(const struct mezited_conf *);
static unsigned int	 master_share(unsigned int, const struct child *);
static void		 master_send_config(struct child *);
static void		 masters_send(void (*)(struct child *));
static void		 ca_send_keys(struct child *);
static void		 ca_pair(struct child *);
static int		 keys_read(struct mezited_conf *);
static void		 keys_forget(struct mezited_conf *);
static void		 master_send_listeners(struct child *);
static void		 proc_info(struct child *, Mezite__ProcInfo *);
static int		 listeners_bind(struct mezited_conf *);
static int		 listener_bind(struct listen_addr *, int);
static void		 fd_limit_raise(struct mezited_conf *);
static pid_t		 ctl_forward(uint32_t, uint32_t, const void *, size_t);
static void		 ctl_masters_end(struct ctl_pending *, struct child *);
static int		 supervisor_master_status(struct proc_chan *,
			    struct imsg *, void *);
static int		 supervisor_master_conn(struct proc_chan *,
			    struct imsg *, void *);
static int		 supervisor_master_end(struct proc_chan *,
			    struct imsg *, void *);
static struct ctl_pending *ctl_pending_new(uint32_t, uint32_t);
static pid_t		 ctl_admin(uint32_t, Mezite__AdminRequest *);
static int		 state_dir_prepare(enum proc_type);
static void		 master_send_revoked(struct child *);
static void		 ctl_workers(uint32_t);
static int		 ctl_reload(void);
static void		 ctl_verbose(int);
static void		 nodes_tell_auth(const Mezite__NodeState *);
static void		 nodes_gone(const char *);
static pid_t		 ctl_nodes(uint32_t);
static pid_t		 ctl_connect(uint32_t, Mezite__DialRequest *);
static void		 ctl_fail(uint32_t, const char *);
static void		 ctl_pending_free(struct ctl_pending *);
static void		 ctl_pending_gone(struct child *);
static int		 tunnel_dial_next(struct ctl_pending *, pid_t);
static pid_t		 ctl_sessions(uint32_t);
static pid_t		 ctl_kill(uint32_t, uint64_t);
static void		 wreq_answer(struct ctl_pending *, const char *);
static void		 ctl_pending_timeout(int, short, void *);
static void		 tickets_configure(void);
static void		 tickets_rotate(int, short, void *);
static void		 tickets_send(struct child *);

static struct mezited_conf	*env;
static struct children		 children = TAILQ_HEAD_INITIALIZER(children);
static struct child		*ca_child;
static unsigned int		 nmasters;	/* fixed from the start */
/* Session ticket keys: made here, in memory only, sent to the master. */
static struct ticket_keys	 tkeys;
static struct event		 tkeyev;
static unsigned int		 tkey_lifetime;	/* tkeyev's period */
static const char		*conffile = CONF_FILE;
/* The kind of child whose first start breaks its sandbox, for tests. */
static char			 selftest[16];
static char			 self[PATH_MAX];	/* for re-exec */
static int			 debug;
static int			 verbose;
static int			 cmdline_verbose;	/* -v overrides the file */
static int			 startdir = -1;		/* relative paths */
static int			 shutting_down;
static int64_t			 started;
static struct event		 shutdownev;
static struct event		 pairev;	/* retry failed pairings */
static const struct timeval	 pair_retry_tv = { PAIR_RETRY, 0 };
static const struct timeval	 listen_grace = { LISTEN_GRACE, 0 };
static struct event		 watchev;	/* the masters' pings */
static Mezite__AuthCA		*auth_ca;	/* as the auth worker sent it */
static Mezite__Revoked		*auth_revoked;
static struct ctl_pendings	 pendings = TAILQ_HEAD_INITIALIZER(pendings);
static unsigned int		 npendings;
static unsigned int		 nwreqs;	/* of them, workers' */
static uint32_t			 wreq_nextid;

static const struct control_cb ctl_cb = {
	.forward = ctl_forward,
	.admin = ctl_admin,
	.workers = ctl_workers,
	.reload = ctl_reload,
	.verbose = ctl_verbose,
	.nodes = ctl_nodes,
	.connect = ctl_connect,
	.sessions = ctl_sessions,
	.kill = ctl_kill,
};

__dead static void
usage(void)
{
	fprintf(stderr,
	    "usage: %s [-dnv] [-D macro=value] [-f file]\n", getprogname());
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct event	 ev_sigchld, ev_sighup, ev_sigterm, ev_sigint;
	const char	*role = NULL, *user = NULL, *root = NULL;
	const char	*errstr, *argv0 = argv[0], *s;
	enum proc_type	 type;
	unsigned int	 instance = 0;
	int		 ch, fd, noaction = 0;

	while ((ch = getopt(argc, argv, "c:dD:f:I:nP:u:v")) != -1) {
		switch (ch) {
		case 'c':
			root = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'D':
			if (cmdline_symset(optarg) < 0)
				errx(1, "could not parse macro definition %s",
				    optarg);
			break;
		case 'f':
			conffile = optarg;
			break;
		case 'I':
			instance = strtonum(optarg, 0, PREFORK_MAX, &errstr);
			if (errstr != NULL)
				errx(1, "instance %s: %s", optarg, errstr);
			break;
		case 'n':
			noaction = 1;
			break;
		case 'P':
			role = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	if (argc > 0)
		usage();

	/*
	 * The supervisor keeps nothing it inherited but the standard
	 * descriptors, which it makes sure are open: a stray one from
	 * whatever started it would live as long as the daemon, and a
	 * missing one would let a socket take its number.  A child is
	 * started with its channel on 3 and its log socket on 4, and
	 * nothing else, by child_start().
	 */
	if (role == NULL) {
		for (fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
			if (fcntl(fd, F_GETFD) == -1 &&
			    open(_PATH_DEVNULL, O_RDWR) != fd)
				err(1, "%s", _PATH_DEVNULL);
		closefrom(STDERR_FILENO + 1);
	}

	if (role != NULL) {
		/* A child, re-executed by the supervisor. */
		if (proc_lookup(role, &type) == -1 || type == PROC_SUPERVISOR ||
		    user == NULL || root == NULL)
			errx(1, "bad child invocation: %s", role);
		log_init(1, LOG_DAEMON);
		log_setverbose(verbose);
		log_setsink(PROC_LOG_FD);
		log_procinit(role);
		setproctitle("%s.%u", role, instance);
		switch (type) {
		case PROC_MASTER:
			master(user, root);
		case PROC_HTTPS:
			https(instance, user, root);
		case PROC_AUTH:
			auth(instance, user, root);
		case PROC_SSH:
			ssh(instance, user, root);
		case PROC_TUNNEL:
			tunnel(instance, user, root);
		case PROC_CA:
			ca(user, root);
		default:
			fatalx("%s: not available in this version", role);
		}
		/* NOTREACHED */
	}

	log_init(1, LOG_DAEMON);
	log_setverbose(verbose);
	log_procinit("supervisor");

	/* Ours to hand to one child, once; not every child's. */
	if ((s = getenv(SANDBOX_SELFTEST_ENV)) != NULL) {
		(void)strlcpy(selftest, s, sizeof(selftest));
		if (unsetenv(SANDBOX_SELFTEST_ENV) == -1)
			err(1, "unsetenv");
	}

	if (tls_init() == -1)
		errx(1, "tls_init failed");
	if ((env = parse_config(conffile)) == NULL || config_check(env) == -1)
		exit(1);
	/* Read again when sent: the ca process is where they live. */
	keys_forget(env);
	if (noaction) {
		if (verbose)
			print_config(stdout, env);
		else
			fprintf(stderr, "configuration OK\n");
		config_free(env);
		exit(0);
	}
	cmdline_verbose = verbose;
	if (verbose == 0 && env->verbose)
		verbose = env->verbose;

	if (strchr(argv0, '/') == NULL) {
		ssize_t	 n = readlink("/proc/self/exe", self,
		    sizeof(self) - 1);
		if (n == -1)
			err(1, "cannot find my own path for re-exec; "
			    "run mezited with its full path");
		self[n] = '\0';
	} else if (realpath(argv0, self) == NULL)
		err(1, "%s", argv0);

	if (geteuid() != 0)
		log_warnx("not running as root: processes keep uid %u and "
		    "no chroot is used", (unsigned int)geteuid());

	/* Reloads read relative paths from where we were started. */
	if ((startdir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		err(1, "open current directory");
	nmasters = masters_count(env);
	if (listeners_bind(env) == -1)
		exit(1);
	if (env->control_socket[0] != '/') {
		char	 cwd[PATH_MAX], *abs;

		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    asprintf(&abs, "%s/%s", cwd, env->control_socket) == -1)
			err(1, "control socket path");
		free(env->control_socket);
		env->control_socket = abs;
	}
	if (control_init(env->control_socket, env->control_group) == -1)
		exit(1);

	log_init(debug, LOG_DAEMON);
	log_setverbose(verbose);
	log_procinit("supervisor");
	if (!debug && daemon(0, 0) == -1)
		fatal("daemon");
	setproctitle("supervisor");
	fd_limit_raise(env);

	started = time_now();
	event_init();

	signal_set(&ev_sigchld, SIGCHLD, supervisor_sig, NULL);
	signal_set(&ev_sighup, SIGHUP, supervisor_sig, NULL);
	signal_set(&ev_sigterm, SIGTERM, supervisor_sig, NULL);
	signal_set(&ev_sigint, SIGINT, supervisor_sig, NULL);
	signal_add(&ev_sigchld, NULL);
	signal_add(&ev_sighup, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal(SIGPIPE, SIG_IGN);

	evtimer_set(&pairev, pair_retry, NULL);
	evtimer_set(&tkeyev, tickets_rotate, NULL);
	evtimer_set(&watchev, masters_watch, NULL);
	masters_watch(-1, 0, NULL);
	tickets_configure();
	control_listen(&ctl_cb);
	children_reconcile();
	log_info("started, version %s, %s", MEZITED_VERSION, conffile);

	event_dispatch();

	control_cleanup(env->control_socket);
	log_info("terminated");
	return (0);
}

/*
 * Make the children match the configuration: the masters (their number
 * fixed at start, as their sockets are), prefork workers of each type.
 * Extra workers are told to drain.
 */
static void
children_reconcile(void)
{
	struct child	*c, *tc;
	unsigned int	 have[PROC_MAX] = { 0 };
	int		 t;

	TAILQ_FOREACH_SAFE(c, &children, entry, tc) {
		if (c->retired)
			continue;
		if (c->type != PROC_MASTER && c->type != PROC_CA &&
		    c->instance >= (unsigned int)env->procs[c->type].prefork) {
			log_info("%s.%u: no longer configured",
			    proc_name(c->type), c->instance);
			child_retire(c);
			continue;
		}
		have[c->type]++;
	}
	if (ca_child == NULL && MASTER_KEYS_IN_CA) {
		ca_child = child_new(PROC_CA, 0);
		child_start(ca_child);
	}
	while (have[PROC_MASTER] < nmasters) {
		c = child_new(PROC_MASTER, instance_free(PROC_MASTER));
		have[PROC_MASTER]++;
		child_start(c);
	}
	for (t = PROC_HTTPS; t < PROC_MAX; t++) {
		while (have[t] < (unsigned int)env->procs[t].prefork) {
			c = child_new(t, instance_free(t));
			have[t]++;
			child_start(c);
		}
	}
}

/* The lowest instance number no live child of the type holds. */
static unsigned int
instance_free(enum proc_type type)
{
	struct child	*c;
	unsigned int	 i;

	for (i = 0;; i++) {
		TAILQ_FOREACH(c, &children, entry)
			if (c->type == type && !c->retired && c->instance == i)
				break;
		if (c == NULL)
			return (i);
	}
}

/* A running child drains and is not restarted; a waiting one goes. */
static void
child_retire(struct child *c)
{
	c->retired = 1;
	if (c->pid != 0) {
		(void)proc_compose(&c->chan, IMSG_DRAIN, 0, -1, NULL, 0);
		return;
	}
	child_free(c);
}

/* Forget a child that does not run and will not be restarted. */
static void
child_free(struct child *c)
{
	evtimer_del(&c->restartev);
	evtimer_del(&c->listenev);
	if (c == ca_child)
		ca_child = NULL;
	TAILQ_REMOVE(&children, c, entry);
	free(c);
}

static struct child *
child_new(enum proc_type type, unsigned int instance)
{
	struct child	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal(__func__);
	c->type = type;
	c->instance = instance;
	c->chan.ibuf.fd = -1;
	c->chan.dead = 1;
	c->logfd = -1;
	evtimer_set(&c->restartev, supervisor_restart, c);
	evtimer_set(&c->listenev, master_listen, c);
	TAILQ_INSERT_TAIL(&children, c, entry);
	return (c);
}

static void
child_start(struct child *c)
{
	struct proc_conf	*pc = &env->procs[c->type];
	Mezite__WorkerConfig	 wc;
	Mezite__Network		 nets[STATUS_ALLOW_MAX];
	Mezite__Network		*pnets[STATUS_ALLOW_MAX];
	struct child		*w;
	char			 inst[16], name[32];
	char			*argv[16];
	int			 chan[2] = { -1, -1 }, logs[2] = { -1, -1 };
	int			 argc = 0;
	pid_t			 pid;

	(void)snprintf(name, sizeof(name), "%s.%u", proc_name(c->type),
	    c->instance);
	if ((c->type == PROC_AUTH || c->type == PROC_SSH) &&
	    state_dir_prepare(c->type) == -1) {
		child_backoff(c, "has no directory");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) == -1 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, logs) == -1 ||
	    fd_nonblock(chan[0]) == -1)
		goto fail;

	(void)snprintf(inst, sizeof(inst), "%u", c->instance);
	argv[argc++] = self;
	argv[argc++] = "-P";
	argv[argc++] = (char *)proc_name(c->type);
	argv[argc++] = "-I";
	argv[argc++] = inst;
	argv[argc++] = "-u";
	argv[argc++] = pc->user;
	argv[argc++] = "-c";
	argv[argc++] = pc->chroot;
	if (verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;

	switch (pid = fork()) {
	case -1:
		goto fail;
	case 0:
		/* Descriptors 3 and 4, nothing else, survive the exec. */
		if (dup2(chan[1], PROC_PARENT_FD) == -1 ||
		    dup2(logs[1], PROC_LOG_FD) == -1)
			_exit(1);
		closefrom(PROC_LOG_FD + 1);
		signal(SIGPIPE, SIG_DFL);
		if (strcmp(selftest, proc_name(c->type)) == 0 &&
		    setenv(SANDBOX_SELFTEST_ENV, selftest, 1) == -1)
			_exit(1);
		execv(self, argv);
		_exit(127);
	}

	close(chan[1]);
	close(logs[1]);
	if (strcmp(selftest, proc_name(c->type)) == 0)
		selftest[0] = '\0';
	c->pid = pid;
	c->started = time_now();
	c->restart_at = 0;
	c->paired = 0;
	c->ping_sent = 0;
	if (proc_chan_event(&c->chan, chan[0], c->type == PROC_MASTER ?
	    &supervisor_from_master : c->type == PROC_AUTH ?
	    &supervisor_from_auth : c->type == PROC_TUNNEL ?
	    &supervisor_from_tunnel : c->type == PROC_SSH ?
	    &supervisor_from_ssh : c->type == PROC_CA ?
	    &supervisor_from_ca : &supervisor_from_worker, name, c,
	    child_closed) == -1)
		fatal("%s: channel", name);
	/* Keys (private keys, ticket keys) travel on these: wipe them. */
	if (c->type == PROC_CA || c->type == PROC_MASTER)
		imsgbuf_set_wipe(&c->chan.ibuf);
	c->logfd = logs[0];
	event_set(&c->logev, c->logfd, EV_READ | EV_PERSIST, supervisor_log,
	    c);
	event_add(&c->logev, NULL);

	log_debug("started %s, pid %d", name, (int)pid);

	if (verbose)
		(void)proc_compose(&c->chan, IMSG_LOG_VERBOSE, 0, -1, &verbose,
		    sizeof(verbose));

	if (c->type == PROC_CA) {
		ca_send_keys(c);
		TAILQ_FOREACH(w, &children, entry)
			if (master_up(w))
				ca_pair(w);
	} else if (c->type == PROC_MASTER) {
		master_send_config(c);
		tickets_send(c);
		master_send_revoked(c);
		/*
		 * A master gets its listeners once every worker type has
		 * a worker paired with it, so that it routes no session
		 * before there is somewhere to send it; or after a grace
		 * period, so that one broken worker type does not keep
		 * the others off the network.
		 */
		c->listening = 0;
		evtimer_add(&c->listenev, &listen_grace);
		/*
		 * The workers and the ca serve every master: pair them
		 * (their bits for this one were cleared when it exited).
		 */
		master_pair_all(c);
	} else {
		config_worker_pb(env, c->type, &wc, nets, pnets);
		if (proc_compose_pb(&c->chan, IMSG_CONF_WORKER, 0, -1,
		    &wc.base) == -1)
			fatal("%s: compose", __func__);
		TAILQ_FOREACH(w, &children, entry)
			if (master_up(w))
				child_pair(w, c);
		/* A new auth worker learns of the nodes online. */
		if (c->type == PROC_AUTH)
			TAILQ_FOREACH(w, &children, entry)
				if (w->type == PROC_TUNNEL && w->pid != 0 &&
				    !w->chan.dead && proc_compose(&w->chan,
				    IMSG_NODE_RESYNC, 0, -1, NULL, 0) == -1)
					log_warn("%s: resync", __func__);
	}
	masters_listen();
	return;

 fail:
	/* Out of descriptors or processes: not fatal, try again later. */
	log_warn("cannot start %s", name);
	if (chan[0] != -1) {
		close(chan[0]);
		close(chan[1]);
	}
	if (logs[0] != -1) {
		close(logs[0]);
		close(logs[1]);
	}
	child_backoff(c, "could not be started");
}

/*
 * Whether a child runs and can be written to.  One whose channel has
 * closed may not have been reaped yet: what is sent to it would fail,
 * and its successor gets everything when it starts.
 */
static int
child_up(const struct child *c)
{
	return (c != NULL && c->pid != 0 && !c->chan.dead);
}

static int
master_up(const struct child *c)
{
	return (c->type == PROC_MASTER && child_up(c));
}

/* The masters that run, as bits of their instances. */
static uint64_t
masters_up(void)
{
	struct child	*c;
	uint64_t	 up = 0;

	TAILQ_FOREACH(c, &children, entry)
		if (master_up(c))
			up |= MASTER_BIT(c);
	return (up);
}

/* prefork auto: one master per online CPU. */
static unsigned int
masters_count(const struct mezited_conf *conf)
{
	long	 n;

	if (conf->procs[PROC_MASTER].prefork > 0)
		return (conf->procs[PROC_MASTER].prefork);
	if ((n = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		n = 1;
	return (n > PREFORK_MAX ? PREFORK_MAX : (unsigned int)n);
}

/*
 * A master's share of a limit: the whole divided evenly, the remainder
 * to the first masters, and at least one, so that no master's socket
 * holds connections it may never take.
 */
static unsigned int
master_share(unsigned int total, const struct child *m)
{
	unsigned int	 n;

	n = total / nmasters + (m->instance < total % nmasters);
	return (n > 0 ? n : 1);
}

/*
 * Give the master and a worker a channel of their own: the worker gets
 * its handoffs there, the master learns who the worker is.  A pairing
 * that fails for want of descriptors is tried again every PAIR_RETRY
 * seconds; `mezctl show workers` says which workers are unpaired.
 */
static void
child_pair(struct child *m, struct child *w)
{
	Mezite__ProcInfo	 pi, mi;
	int			 sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("cannot pair %s with %s, retrying", w->chan.name,
		    m->chan.name);
		if (!evtimer_pending(&pairev, NULL))
			evtimer_add(&pairev, &pair_retry_tv);
		return;
	}
	proc_info(w, &pi);
	proc_info(m, &mi);
	if (proc_compose_pb(&m->chan, IMSG_WORKER_UP, 0, sp[0],
	    &pi.base) == -1 ||
	    proc_compose_pb(&w->chan, IMSG_MASTER_CHANNEL, 0, sp[1],
	    &mi.base) == -1) {
		log_warn("cannot pair %s with %s", w->chan.name, m->chan.name);
		return;
	}
	w->paired |= MASTER_BIT(m);
	log_debug("%s paired with %s", w->chan.name, m->chan.name);
}

/* Pair a running master with every running worker, and the ca. */
static void
master_pair_all(struct child *m)
{
	struct child	*w;

	TAILQ_FOREACH(w, &children, entry)
		if (w->type != PROC_MASTER && w->type != PROC_CA &&
		    child_up(w) && !w->retired &&
		    !(w->paired & MASTER_BIT(m)))
			child_pair(m, w);
	if (ca_child != NULL && !(ca_child->paired & MASTER_BIT(m)))
		ca_pair(m);
}

static void
pair_retry(int fd, short event, void *arg)
{
	struct child	*m;

	if (shutting_down)
		return;
	TAILQ_FOREACH(m, &children, entry)
		if (master_up(m))
			master_pair_all(m);
	masters_listen();
}

/*
 * A master whose loop does not turn (stopped, or stuck in a loop) holds
 * its socket's share of new connections without taking them: one that
 * has not answered a ping for MASTER_HANG seconds is killed, and its
 * successor takes what waits in the socket.
 */
static void
masters_watch(int fd, short event, void *arg)
{
	struct timeval	 tv = { MASTER_PING, 0 };
	struct child	*m;
	int64_t		 now = time_mono();

	TAILQ_FOREACH(m, &children, entry) {
		if (!master_up(m) || shutting_down)
			continue;
		if (m->ping_sent != 0) {
			if (now - m->ping_sent < MASTER_HANG)
				continue;
			log_warnx("%s has not answered for %llds; killing it",
			    m->chan.name, (long long)(now - m->ping_sent));
			kill(m->pid, SIGKILL);
			m->ping_sent = 0;
			continue;
		}
		if (proc_compose(&m->chan, IMSG_PING, 0, -1, NULL, 0) == 0)
			m->ping_sent = now;
	}
	evtimer_add(&watchev, &tv);
}

/* The master's loop turns. */
static int
supervisor_master_pong(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct child	*m = ch->arg;

	m->ping_sent = 0;
	return (0);
}

static void
masters_listen(void)
{
	struct child	*m;

	TAILQ_FOREACH(m, &children, entry)
		if (master_up(m))
			master_listen(-1, 0, m);
}

/*
 * Send a master its listeners when every configured worker type has a
 * worker paired with it, or when the grace period (a timer call) is
 * over.
 */
static void
master_listen(int fd, short event, void *arg)
{
	struct child	*m = arg, *c;
	int		 t, have[PROC_MAX] = { 0 };

	if (!master_up(m) || m->listening)
		return;
	if (!(event & EV_TIMEOUT)) {
		TAILQ_FOREACH(c, &children, entry)
			if (c->type != PROC_MASTER && !c->retired &&
			    (c->paired & MASTER_BIT(m)))
				have[c->type] = 1;
		for (t = PROC_HTTPS; t < PROC_MAX; t++)
			if (env->procs[t].prefork > 0 && !have[t])
				return;
	} else
		log_warnx("%s: not every worker type is up after %ds; "
		    "accepting anyway", m->chan.name, LISTEN_GRACE);
	evtimer_del(&m->listenev);
	m->listening = 1;
	master_send_listeners(m);
}

static void
proc_info(struct child *c, Mezite__ProcInfo *pi)
{
	uint64_t	 up;

	mezite__proc_info__init(pi);
	pi->type = (char *)proc_name(c->type);
	pi->instance = c->instance;
	pi->pid = c->pid;
	pi->started = c->started;
	pi->restarts = c->restarts;
	pi->restart_at = c->restart_at;
	/* A worker or the ca: paired with every master that runs. */
	up = masters_up();
	pi->paired = c->type != PROC_MASTER && up != 0 &&
	    (c->paired & up) == up;
	pi->draining = c->retired;
}

/*
 * The master's configuration.  Client certificates are verified against
 * the CA file the configuration names and the auth worker's CAs, once
 * it has sent them.
 */
static void
master_send_config(struct child *c)
{
	struct conf_pb		 cp;
	Mezite__ProcInfo	 pi;
	uint8_t			*cas = NULL;
	size_t			 i, len;

	/* Without a ca process, the master signs. */
	if (!MASTER_KEYS_IN_CA && keys_read(env) == -1)
		fatalx("the master's keys cannot be read");
	config_master_pb(env, started, &cp);
	/* Limits for the whole daemon: each master holds its share. */
	cp.mc.max_connections = master_share(env->max_connections, c);
	cp.mc.max_conn_per_source = master_share(env->max_conn_per_source, c);
	cp.mc.conn_rate_per_source = master_share(env->conn_rate_per_source,
	    c);
	if (auth_ca != NULL) {
		len = cp.mc.client_ca.len + auth_ca->user_ca.len +
		    auth_ca->host_ca.len;
		if ((cas = malloc(len)) == NULL)
			fatal(__func__);
		if (cp.mc.client_ca.len > 0)
			memcpy(cas, cp.mc.client_ca.data, cp.mc.client_ca.len);
		memcpy(cas + cp.mc.client_ca.len, auth_ca->user_ca.data,
		    auth_ca->user_ca.len);
		memcpy(cas + cp.mc.client_ca.len + auth_ca->user_ca.len,
		    auth_ca->host_ca.data, auth_ca->host_ca.len);
		cp.mc.client_ca.data = cas;
		cp.mc.client_ca.len = len;
		cp.mc.auth_user_ca = auth_ca->user_ca;
		cp.mc.auth_host_ca = auth_ca->host_ca;
	}
	if (proc_compose_pb(&c->chan, IMSG_CONF_MASTER, 0, -1,
	    &cp.mc.base) == -1)
		fatal("%s: compose", __func__);
	free(cas);
	for (i = 0; i < cp.nkp; i++)
		if (proc_compose_pb(&c->chan, IMSG_CONF_KEYPAIR, 0, -1,
		    &cp.kp[i].base) == -1)
			fatal("%s: compose keypair %s", __func__,
			    cp.kp[i].name);
	if (proc_compose(&c->chan, IMSG_CONF_END, 0, -1, NULL, 0) == -1)
		fatal("%s: compose", __func__);
	config_master_pb_free(&cp);
	keys_forget(env);

	proc_info(c, &pi);
	if (proc_compose_pb(&c->chan, IMSG_PROCS, 0, -1, &pi.base) == -1)
		fatal("%s: compose", __func__);
}

/* What every running master is sent: its configuration, keys, ... */
static void
masters_send(void (*send)(struct child *))
{
	struct child	*m;

	TAILQ_FOREACH(m, &children, entry)
		if (master_up(m))
			send(m);
}

/*
 * The private keys, read from their files again each time they are sent
 * (start, reload, a restart of the ca process) and wiped after.
 */
static int
keys_read(struct mezited_conf *conf)
{
	struct keypair	*k;
	char		 err[PATH_MAX + 128];
	int		 ret = 0;

	if (fchdir(startdir) == -1) {
		log_warn("cannot return to the start directory");
		return (-1);
	}
	TAILQ_FOREACH(k, &conf->keypairs, entry) {
		if (k->key != NULL)
			continue;
		if (config_load_pem(k->key_file, 1, &k->key, &k->key_len, err,
		    sizeof(err)) == -1) {
			log_warnx("tls keypair \"%s\": %s", k->name, err);
			ret = -1;
		}
	}
	if (chdir("/") == -1)
		fatal("chdir /");
	return (ret);
}

static void
keys_forget(struct mezited_conf *conf)
{
	struct keypair	*k;

	TAILQ_FOREACH(k, &conf->keypairs, entry) {
		if (k->key == NULL)
			continue;
		explicit_bzero(k->key, k->key_len);
		free(k->key);
		k->key = NULL;
		k->key_len = 0;
	}
}

/*
 * The ca process's keys.  A key that cannot be read now (replaced by a
 * bad file since the last check) is left out: handshakes with it fail,
 * the others go on.
 */
static void
ca_send_keys(struct child *c)
{
	struct conf_pb	 cp;
	size_t		 i;

	(void)keys_read(env);
	config_master_pb(env, started, &cp);
	for (i = 0; i < cp.nkp; i++) {
		if (cp.kp[i].key.len == 0)
			continue;
		cp.kp[i].cert.len = 0;		/* the key names itself */
		if (proc_compose_pb(&c->chan, IMSG_CONF_KEYPAIR, 0, -1,
		    &cp.kp[i].base) == -1)
			fatal("%s: compose keypair %s", __func__,
			    cp.kp[i].name);
	}
	if (proc_compose(&c->chan, IMSG_CONF_END, 0, -1, NULL, 0) == -1)
		fatal("%s: compose", __func__);
	config_master_pb_free(&cp);
	keys_forget(env);
}

/*
 * A signing channel of their own between the master and the ca process,
 * when both run: given again when either is restarted.
 */
static void
ca_pair(struct child *m)
{
	int	 sp[2];

	if (!child_up(ca_child) || !child_up(m) || !MASTER_KEYS_IN_CA)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("cannot pair the ca process with the master, "
		    "retrying");
		if (!evtimer_pending(&pairev, NULL))
			evtimer_add(&pairev, &pair_retry_tv);
		return;
	}
	if (proc_compose(&ca_child->chan, IMSG_CA_CHANNEL, 0, sp[0],
	    NULL, 0) == -1 ||
	    proc_compose(&m->chan, IMSG_CA_CHANNEL, 0, sp[1],
	    NULL, 0) == -1) {
		log_warn("cannot pair the ca process with %s", m->chan.name);
		return;
	}
	ca_child->paired |= MASTER_BIT(m);
	log_debug("%s paired with %s", ca_child->chan.name, m->chan.name);
}

/*
 * A master gets its own copies of its sockets; ours stay open across
 * its restarts, and the kernel queues its share of new connections
 * meanwhile.  One that cannot be copied now is sent when the master is
 * next restarted: the others still serve.
 */
static void
master_send_listeners(struct child *c)
{
	struct listen_addr	*la;
	int			 fd;

	TAILQ_FOREACH(la, &env->listeners, entry) {
		if (c->instance >= (unsigned int)la->nfds)
			continue;
		if ((fd = fcntl(la->fds[c->instance], F_DUPFD_CLOEXEC,
		    0)) == -1) {
			log_warn("%s: listener", __func__);
			continue;
		}
		if (proc_compose(&c->chan, IMSG_LISTENER, 0, fd, NULL, 0) == -1)
			log_warn("%s: compose", __func__);
	}
}

static void
master_send_revoked(struct child *c)
{
	if (auth_revoked != NULL && proc_compose_pb(&c->chan,
	    IMSG_AUTH_REVOKED, 0, -1, &auth_revoked->base) == -1)
		log_warn("%s: compose", __func__);
}

/*
 * The auth worker's CA certificates: the master verifies client
 * certificates against them.  Every auth worker sends the same ones
 * when it starts; the master is reconfigured when they change.
 */
static int
supervisor_auth_ca(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AuthCA	*ca = msg;

	if (ca->user_ca.len == 0 || ca->host_ca.len == 0 ||
	    ca->user_ca.len > TLS_FILE_MAX || ca->host_ca.len > TLS_FILE_MAX)
		return (-1);
	if (auth_ca != NULL && auth_ca->user_ca.len == ca->user_ca.len &&
	    auth_ca->host_ca.len == ca->host_ca.len &&
	    memcmp(auth_ca->user_ca.data, ca->user_ca.data,
	    ca->user_ca.len) == 0 && memcmp(auth_ca->host_ca.data,
	    ca->host_ca.data, ca->host_ca.len) == 0)
		return (0);
	pb_free(auth_ca);
	auth_ca = ca;
	log_debug("%s: client certificates of its CAs are accepted",
	    ch->name);
	masters_send(master_send_config);
	return (1);
}

/* Revoked certificates: the master refuses them at the handshake. */
static int
supervisor_auth_revoked(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Revoked	*r = msg;

	if (r->n_serials > REVOKED_MAX)
		return (-1);
	pb_free(auth_revoked);
	auth_revoked = r;
	masters_send(master_send_revoked);
	return (1);
}

/* An auth worker's answer to a mezctl request, or a part of it. */
static int
supervisor_admin_reply(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AdminReply	*r = msg;

	control_reply(IMSG_CTL_ADMIN_REPLY, imsg_get_id(imsg), imsg->data,
	    imsg_get_len(imsg));
	if (!r->more)
		control_reply(IMSG_CTL_END, imsg_get_id(imsg), NULL, 0);
	pb_wipe(imsg);	/* a token */
	return (0);
}

/* A worker that leaves its sessions untaken: replace it. */
static int
supervisor_worker_stuck(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__WorkerStuck	*ws = msg;
	struct child		*c;

	TAILQ_FOREACH(c, &children, entry)
		if (c->type != PROC_MASTER && c->pid == ws->pid &&
		    c->pid != 0)
			break;
	if (c == NULL)
		return (0);		/* gone meanwhile */
	log_warnx("%s has taken no session for %lld ms; killing it",
	    c->chan.name, (long long)ws->waiting_ms);
	kill(c->pid, SIGKILL);
	return (0);
}

/*
 * The master closed a worker's channel: the worker sent it what it must
 * not.  The worker would go on serving the other masters; it drains
 * what it holds instead, and a new one takes its place.  One that is
 * leaving anyway, or has left, is no news.
 */
static int
supervisor_worker_cut(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__WorkerStuck	*ws = msg;
	struct child		*c;

	if (shutting_down || ws->pid <= 0)
		return (0);
	TAILQ_FOREACH(c, &children, entry)
		if (c->type != PROC_MASTER && c->type != PROC_CA &&
		    c->pid == ws->pid && !c->chan.dead)
			break;
	if (c == NULL || c->retired)
		return (0);
	log_info("%s was cut off by %s; replacing it", c->chan.name,
	    ch->name);
	child_retire(c);
	children_reconcile();
	return (0);
}

/*
 * A node came or went: every auth worker is told, with the tunnel
 * worker named as we know it, whatever it said.
 */
static int
supervisor_node_state(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__NodeState	*ns = msg;
	char			*said = ns->worker;

	ns->worker = ch->name;
	nodes_tell_auth(ns);
	ns->worker = said;		/* freed with the message */
	return (0);
}

static void
nodes_tell_auth(const Mezite__NodeState *ns)
{
	struct child	*c;

	TAILQ_FOREACH(c, &children, entry)
		if (c->type == PROC_AUTH && c->pid != 0 && !c->chan.dead &&
		    proc_compose_pb(&c->chan, IMSG_NODE_STATE, 0, -1,
		    &ns->base) == -1)
			log_warn("%s: compose", __func__);
}

/* A tunnel worker has gone, and the nodes it held with it. */
static void
nodes_gone(const char *worker)
{
	Mezite__NodeState	 ns = MEZITE__NODE_STATE__INIT;

	ns.worker = (char *)worker;
	ns.since = time(NULL);
	nodes_tell_auth(&ns);
}

static struct ctl_pending *
ctl_pending_find(uint32_t type, uint32_t peerid)
{
	struct ctl_pending	*p;

	TAILQ_FOREACH(p, &pendings, entry)
		if (p->type == type && p->peerid == peerid)
			return (p);
	return (NULL);
}

/*
 * A part of one worker's answer to a list asked of every worker of a
 * kind (show nodes, show sessions): passed on; the last part of the
 * last worker ends the client's answer.
 */
static void
ctl_list_part(uint32_t asked, struct imsg *imsg, int more)
{
	struct ctl_pending	*p;

	if ((p = ctl_pending_find(asked, imsg_get_id(imsg))) == NULL)
		return;		/* too late */
	control_reply(imsg_get_type(imsg), p->peerid, imsg->data,
	    imsg_get_len(imsg));
	if (!more && --p->waiting == 0) {
		control_reply(IMSG_CTL_END, p->peerid, NULL, 0);
		ctl_pending_free(p);
	}
}

static int
supervisor_nodes(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__NodeList	*nl = msg;

	ctl_list_part(IMSG_CTL_SHOW_NODES, imsg, nl->more);
	return (0);
}

/*
 * A tunnel worker's answer to connect: the stream to the client, or
 * why not; a worker without the node passes the request on to the next.
 */
static int
supervisor_dial_reply(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__DialReply	*r = msg;
	struct child		*c = ch->arg;
	struct ctl_pending	*p;
	int			 fd = imsg_get_fd(imsg);

	p = ctl_pending_find(imsg_get_id(imsg) & CTL_ID_WORKER ?
	    IMSG_TUNNEL_DIAL : IMSG_CTL_CONNECT, imsg_get_id(imsg));
	/* The stream came, and we had no descriptor left to take it. */
	if (imsg_get_fd_lost(imsg)) {
		if (p != NULL && p->asker != NULL)
			wreq_answer(p, "the supervisor is out of descriptors");
		else if (p != NULL) {
			ctl_fail(p->peerid, "the supervisor is out of "
			    "descriptors");
			ctl_pending_free(p);
		}
		return (0);
	}
	if ((fd != -1) != (r->error == MEZITE__DIAL_ERROR__DIAL_OK)) {
		if (fd != -1)
			close(fd);
		return (-1);
	}
	if (p == NULL) {
		if (fd != -1)
			close(fd);
		return (0);
	}
	if (r->error == MEZITE__DIAL_ERROR__DIAL_NO_NODE &&
	    tunnel_dial_next(p, c->pid) == 0)
		return (0);
	if (p->asker != NULL) {
		if (proc_compose(&p->asker->chan, IMSG_TUNNEL_DIAL_REPLY,
		    p->cookie, fd, imsg->data, imsg_get_len(imsg)) == -1) {
			log_warn("%s: compose", __func__);
			if (fd != -1)
				close(fd);
		}
	} else
		control_reply_fd(IMSG_CTL_CONNECT_REPLY, p->peerid, imsg->data,
		    imsg_get_len(imsg), fd);
	ctl_pending_free(p);
	return (0);
}

/*
 * An auth worker's decision for an ssh worker: back to the one that
 * asked, with its cookie.
 */
static int
supervisor_ssh_reply(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_pending	*p;
	uint32_t		 type = imsg_get_type(imsg);

	if ((p = ctl_pending_find(type == IMSG_SSH_AUTH_REPLY ?
	    IMSG_SSH_AUTH : IMSG_SSH_ACCESS, imsg_get_id(imsg))) == NULL)
		return (0);		/* too late, or the asker is gone */
	if (proc_compose(&p->asker->chan, type, p->cookie, -1, imsg->data,
	    imsg_get_len(imsg)) == -1)
		log_warn("%s: compose", __func__);
	ctl_pending_free(p);
	return (0);
}

static int
supervisor_sessions(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SessionList	*sl = msg;

	ctl_list_part(IMSG_CTL_SHOW_SESSIONS, imsg, sl->more);
	return (0);
}

/* An ssh worker ended the session (OK), or has no such one (FAIL). */
static int
supervisor_killed(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ctl_pending	*p;

	if ((p = ctl_pending_find(IMSG_CTL_KILL_SESSION,
	    imsg_get_id(imsg))) == NULL)
		return (0);
	if (imsg_get_type(imsg) == IMSG_CTL_OK) {
		control_reply(IMSG_CTL_OK, p->peerid, NULL, 0);
		control_reply(IMSG_CTL_END, p->peerid, NULL, 0);
		ctl_pending_free(p);
	} else if (--p->waiting == 0) {
		ctl_fail(p->peerid, "no such session");
		ctl_pending_free(p);
	}
	return (0);
}

static struct child *
auth_running(void)
{
	struct child	*c;

	TAILQ_FOREACH(c, &children, entry)
		if (c->type == PROC_AUTH && c->pid != 0 && !c->retired &&
		    !c->chan.dead)
			return (c);
	return (NULL);
}

/*
 * A request of an ssh worker's that another worker answers.  The
 * supervisor only routes it: the ssh worker has put in what its
 * session proved, and the answer is the other worker's.
 */
static struct ctl_pending *
wreq_new(struct child *asker, uint32_t type, uint32_t cookie)
{
	struct ctl_pending	*p;

	if (nwreqs >= WREQ_MAX || (p = calloc(1, sizeof(*p))) == NULL) {
		log_warnx("%s: %s's request dropped: %u on their way",
		    __func__, asker->chan.name, nwreqs);
		return (NULL);
	}
	p->type = type;
	p->asker = asker;
	p->cookie = cookie;
	do {
		p->peerid = ++wreq_nextid | CTL_ID_WORKER;
	} while (ctl_pending_find(type, p->peerid) != NULL);
	evtimer_set(&p->timer, ctl_pending_timeout, p);
	TAILQ_INSERT_TAIL(&pendings, p, entry);
	npendings++;
	nwreqs++;
	return (p);
}

/* The request will not be answered: say no, and why, to its asker. */
static void
wreq_answer(struct ctl_pending *p, const char *why)
{
	Mezite__SshReply	 sr = MEZITE__SSH_REPLY__INIT;
	Mezite__DialReply	 dr = MEZITE__DIAL_REPLY__INIT;
	int			 rv;

	if (p->type == IMSG_TUNNEL_DIAL) {
		dr.error = MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE;
		dr.message = (char *)why;
		rv = proc_compose_pb(&p->asker->chan, IMSG_TUNNEL_DIAL_REPLY,
		    p->cookie, -1, &dr.base);
	} else {
		sr.reason = (char *)why;
		rv = proc_compose_pb(&p->asker->chan, p->type == IMSG_SSH_AUTH ?
		    IMSG_SSH_AUTH_REPLY : IMSG_SSH_ACCESS_REPLY, p->cookie, -1,
		    &sr.base);
	}
	if (rv == -1)
		log_warn("%s: compose", __func__);
	ctl_pending_free(p);
}

/* A login or an access decision: an auth worker's to make. */
static int
supervisor_ssh_ask(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct timeval		 tv = { WREQ_WAIT, 0 };
	struct ctl_pending	*p;
	struct child		*a;

	if ((p = wreq_new(ch->arg, imsg_get_type(imsg),
	    imsg_get_id(imsg))) == NULL)
		return (0);	/* the session's own timeout ends it */
	if ((a = auth_running()) == NULL) {
		wreq_answer(p, "no auth worker is running");
		return (0);
	}
	if (proc_compose(&a->chan, p->type, p->peerid, -1, imsg->data,
	    imsg_get_len(imsg)) == -1) {
		log_warn("%s: compose", __func__);
		wreq_answer(p, "the auth worker cannot be asked");
		return (0);
	}
	p->asked = a->pid;
	evtimer_add(&p->timer, &tv);
	return (0);
}

/* A stream to a node: a tunnel worker's, as for mezctl connect. */
static int
supervisor_ssh_dial(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct timeval		 tv = { TUNNEL_DIAL_WAIT, 0 };
	struct ctl_pending	*p;

	if ((p = wreq_new(ch->arg, IMSG_TUNNEL_DIAL,
	    imsg_get_id(imsg))) == NULL)
		return (0);
	if ((p->req = mezite__dial_request__unpack(NULL, imsg_get_len(imsg),
	    imsg->data)) == NULL) {
		wreq_answer(p, "out of memory");
		return (0);
	}
	if (tunnel_dial_next(p, 0) == -1) {
		wreq_answer(p, "no tunnel worker is running");
		return (0);
	}
	evtimer_add(&p->timer, &tv);
	return (0);
}

/*
 * An ssh worker's audit event, for an auth worker to store.  With none
 * running, the log keeps it.
 */
static int
supervisor_audit(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AuditEvent	*ev = msg;
	struct child		*a;

	if ((a = auth_running()) != NULL && proc_compose(&a->chan,
	    IMSG_AUDIT, 0, -1, imsg->data, imsg_get_len(imsg)) == 0)
		return (0);
	log_info("audit (no auth worker to store it): %s %s %s %s%s%s",
	    ev->type, ev->success ? "ok" : "failed", ev->name, ev->address,
	    ev->detail[0] != '\0' ? ": " : "", ev->detail);
	return (0);
}

static void
child_closed(struct proc_chan *ch)
{
	struct child	*c = ch->arg;

	/* A child that broke its channel is not to be trusted further. */
	if (!ch->eof && c->pid != 0)
		kill(c->pid, SIGKILL);
	proc_chan_clear(ch);
}

static const struct proc_msg supervisor_master_msgs[] = {
	{ IMSG_CTL_STATUS, PROC_LEN_PB, &mezite__status__descriptor,
	    PROC_FD_NONE, supervisor_master_status },
	{ IMSG_CTL_CONN, PROC_LEN_ANY, NULL, PROC_FD_NONE,
	    supervisor_master_conn },
	{ IMSG_CTL_END, 0, NULL, PROC_FD_NONE, supervisor_master_end },
	{ IMSG_PONG, 0, NULL, PROC_FD_NONE, supervisor_master_pong },
	{ IMSG_WORKER_STUCK, PROC_LEN_PB, &mezite__worker_stuck__descriptor,
	    PROC_FD_NONE, supervisor_worker_stuck },
	{ IMSG_WORKER_CUT, PROC_LEN_PB, &mezite__worker_stuck__descriptor,
	    PROC_FD_NONE, supervisor_worker_cut },
};

static const struct proc_msg supervisor_auth_msgs[] = {
	{ IMSG_AUTH_CA, PROC_LEN_PB, &mezite__auth_ca__descriptor,
	    PROC_FD_NONE, supervisor_auth_ca },
	{ IMSG_AUTH_REVOKED, PROC_LEN_PB, &mezite__revoked__descriptor,
	    PROC_FD_NONE, supervisor_auth_revoked },
	{ IMSG_ADMIN_REPLY, PROC_LEN_PB, &mezite__admin_reply__descriptor,
	    PROC_FD_NONE, supervisor_admin_reply },
	{ IMSG_SSH_AUTH_REPLY, PROC_LEN_PB, &mezite__ssh_reply__descriptor,
	    PROC_FD_NONE, supervisor_ssh_reply },
	{ IMSG_SSH_ACCESS_REPLY, PROC_LEN_PB, &mezite__ssh_reply__descriptor,
	    PROC_FD_NONE, supervisor_ssh_reply },
};

static const struct proc_msg supervisor_ssh_msgs[] = {
	{ IMSG_SSH_AUTH, PROC_LEN_PB, &mezite__ssh_auth_request__descriptor,
	    PROC_FD_NONE, supervisor_ssh_ask },
	{ IMSG_SSH_ACCESS, PROC_LEN_PB,
	    &mezite__ssh_access_request__descriptor, PROC_FD_NONE,
	    supervisor_ssh_ask },
	{ IMSG_TUNNEL_DIAL, PROC_LEN_PB, &mezite__dial_request__descriptor,
	    PROC_FD_NONE, supervisor_ssh_dial },
	{ IMSG_AUDIT, PROC_LEN_PB, &mezite__audit_event__descriptor,
	    PROC_FD_NONE, supervisor_audit },
	{ IMSG_CTL_SESSIONS, PROC_LEN_PB, &mezite__session_list__descriptor,
	    PROC_FD_NONE, supervisor_sessions },
	{ IMSG_CTL_OK, 0, NULL, PROC_FD_NONE, supervisor_killed },
	{ IMSG_CTL_FAIL, 0, NULL, PROC_FD_NONE, supervisor_killed },
};

static const struct proc_msg supervisor_tunnel_msgs[] = {
	{ IMSG_NODE_STATE, PROC_LEN_PB, &mezite__node_state__descriptor,
	    PROC_FD_NONE, supervisor_node_state },
	{ IMSG_CTL_NODES, PROC_LEN_PB, &mezite__node_list__descriptor,
	    PROC_FD_NONE, supervisor_nodes },
	{ IMSG_TUNNEL_DIAL_REPLY, PROC_LEN_PB, &mezite__dial_reply__descriptor,
	    PROC_FD_ANY | PROC_FD_LOSSY, supervisor_dial_reply },
};

/* Children are less privileged: a bad message closes their channel. */
static const struct proc_peer supervisor_from_master = {
	"the master", 0, supervisor_master_msgs,
	nitems(supervisor_master_msgs), 0, SUPERVISOR_MAXSIZE, 0
};

/* The ca process sends nothing: anything from it closes its channel. */
static const struct proc_peer supervisor_from_ca = {
	"the ca process", 0, NULL, 0, 0, 0, 0
};

static const struct proc_peer supervisor_from_worker = {
	"a worker", 0, NULL, 0, 0, 0, 0
};

static const struct proc_peer supervisor_from_auth = {
	"an auth worker", 0, supervisor_auth_msgs,
	nitems(supervisor_auth_msgs), 0, SUPERVISOR_MAXSIZE, 0
};

static const struct proc_peer supervisor_from_ssh = {
	"an ssh worker", 0, supervisor_ssh_msgs,
	nitems(supervisor_ssh_msgs), 0, 0, 0
};

/* Streams come from tunnel workers as descriptors. */
static const struct proc_peer supervisor_from_tunnel = {
	"a tunnel worker", 0, supervisor_tunnel_msgs,
	nitems(supervisor_tunnel_msgs), 0, SUPERVISOR_MAXSIZE, 1
};

/* One datagram per line: a priority byte, then the text. */
static void
supervisor_log(int fd, short event, void *arg)
{
	struct child	*c = arg;
	char		 buf[2048], line[4 * sizeof(buf)], name[32];
	ssize_t		 n;

	while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		/* A child's text may hold anything; show it safely. */
		(void)strnvis(line, buf + 1, sizeof(line), VIS_SAFE | VIS_OCTAL);
		if (c->type == PROC_MASTER && nmasters == 1)
			strlcpy(name, "master", sizeof(name));
		else
			(void)snprintf(name, sizeof(name), "%s.%u",
			    proc_name(c->type), c->instance);
		log_relay(buf[0] & LOG_PRIMASK, name, line, (int)c->pid);
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		event_del(&c->logev);
		close(c->logfd);
		c->logfd = -1;
	}
}

static void
supervisor_sig(int sig, short event, void *arg)
{
	struct child	*c;
	pid_t		 pid;
	int		 status;

	switch (sig) {
	case SIGCHLD:
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			TAILQ_FOREACH(c, &children, entry)
				if (c->pid == pid)
					break;
			if (c != NULL)
				child_exited(c, status);
		}
		break;
	case SIGHUP:
		log_info("reloading %s", conffile);
		(void)supervisor_reload();
		break;
	case SIGTERM:
	case SIGINT:
		supervisor_shutdown();
		break;
	}
}

static void
child_close(struct child *c)
{
	/* Take what the child said before it died, then forget it. */
	proc_chan_io(&c->chan, 1, 0);
	proc_chan_clear(&c->chan);
	if (c->logfd != -1) {
		/* Take what the child wrote before it died. */
		supervisor_log(c->logfd, EV_READ, c);
		if (c->logfd != -1) {
			event_del(&c->logev);
			close(c->logfd);
			c->logfd = -1;
		}
	}
	c->pid = 0;
}

static void
child_exited(struct child *c, int status)
{
	struct child	*w;
	char		 name[32], why[64];
	int64_t		 lived = time_now() - c->started;

	control_gone(c->pid);
	ctl_pending_gone(c);
	child_close(c);
	(void)snprintf(name, sizeof(name), "%s.%u", proc_name(c->type),
	    c->instance);
	if (WIFSIGNALED(status))
		(void)snprintf(why, sizeof(why), "killed by signal %d (SIG%s)",
		    WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?
		    sigabbrev_np(WTERMSIG(status)) : "?");
	else
		(void)snprintf(why, sizeof(why), "exited with status %d",
		    WEXITSTATUS(status));

	if (c->type == PROC_TUNNEL)
		nodes_gone(name);
	if (shutting_down || c->retired) {
		log_debug("%s %s", name, why);
		child_free(c);
		if (shutting_down && TAILQ_EMPTY(&children))
			event_loopexit(NULL);
		return;
	}

	/* Restart at once after a long life. */
	if (lived >= BACKOFF_RESET)
		c->backoff = 0;
	child_backoff(c, why);
	if (c->type == PROC_MASTER) {
		/*
		 * Its workers and the ca lost their channels to it and
		 * forgot it; they go on serving what they hold, and the
		 * next master is paired with each of them.  The others
		 * go on accepting; its socket queues its share.
		 */
		c->listening = 0;
		evtimer_del(&c->listenev);
		TAILQ_FOREACH(w, &children, entry)
			w->paired &= ~MASTER_BIT(c);
	}
}

/* Start the child again, later each time it keeps failing. */
static void
child_backoff(struct child *c, const char *why)
{
	struct timeval	 tv = { c->backoff, 0 };

	c->backoff = c->backoff ? c->backoff * 2 : 1;
	if (c->backoff > BACKOFF_MAX)
		c->backoff = BACKOFF_MAX;
	c->restart_at = time_now() + tv.tv_sec;
	log_warnx("%s.%u %s, restarting in %llds", proc_name(c->type),
	    c->instance, why, (long long)tv.tv_sec);
	evtimer_add(&c->restartev, &tv);
}

static void
supervisor_restart(int fd, short event, void *arg)
{
	struct child	*c = arg;

	if (shutting_down || c->retired)
		return;
	c->restarts++;
	child_start(c);
}

static void
supervisor_deadline(int fd, short event, void *arg)
{
	struct child	*c;

	TAILQ_FOREACH(c, &children, entry)
		if (c->pid != 0) {
			log_warnx("%s.%u did not drain in time, killing it",
			    proc_name(c->type), c->instance);
			kill(c->pid, SIGKILL);
		}
}

/*
 * Stop accepting, let established sessions finish for up to the drain
 * timeout, then end whatever is left.
 */
static void
supervisor_shutdown(void)
{
	struct listen_addr	*la;
	struct child	*c, *tc;
	struct timeval	 tv;

	if (shutting_down)
		return;
	shutting_down = 1;
	log_info("draining for up to %us", env->drain_timeout);
	control_cleanup(env->control_socket);

	/* New connections are refused from now on, not queued. */
	TAILQ_FOREACH(la, &env->listeners, entry)
		listen_addr_close(la);

	TAILQ_FOREACH_SAFE(c, &children, entry, tc) {
		if (c->pid != 0) {
			(void)proc_compose(&c->chan, IMSG_DRAIN, 0, -1, NULL, 0);
			continue;
		}
		child_free(c);
	}
	if (TAILQ_EMPTY(&children)) {
		event_loopexit(NULL);
		return;
	}
	tv.tv_sec = env->drain_timeout;
	tv.tv_usec = 0;
	evtimer_set(&shutdownev, supervisor_deadline, NULL);
	evtimer_add(&shutdownev, &tv);
}

/*
 * Reparse; on success new certificates and routes apply to new
 * connections and worker counts are adjusted.  Listening addresses and
 * the control socket stay as they were started.
 */
static int
supervisor_reload(void)
{
	struct mezited_conf	*nconf;
	struct listen_addr	*la, *ola;
	struct child		*c, *tc, *old_ca;
	int			 ca_changed;

	if (shutting_down)
		return (-1);
	if (fchdir(startdir) == -1) {
		log_warn("reload: cannot return to the start directory");
		return (-1);
	}
	nconf = parse_config(conffile);
	if (chdir("/") == -1)
		fatal("chdir /");
	if (nconf == NULL || config_check(nconf) == -1) {
		if (nconf != NULL)
			config_free(nconf);
		log_warnx("reload of %s failed, keeping the running "
		    "configuration", conffile);
		return (-1);
	}
	keys_forget(nconf);
	if (!config_listeners_same(env, nconf))
		log_warnx("listen addresses change only on restart");
	if (strcmp(env->control_socket, nconf->control_socket) != 0)
		log_warnx("control socket changes only on restart");

	/* Keep the running listeners and control socket. */
	while ((la = TAILQ_FIRST(&nconf->listeners)) != NULL) {
		TAILQ_REMOVE(&nconf->listeners, la, entry);
		free(la);
	}
	while ((ola = TAILQ_FIRST(&env->listeners)) != NULL) {
		TAILQ_REMOVE(&env->listeners, ola, entry);
		TAILQ_INSERT_TAIL(&nconf->listeners, ola, entry);
	}
	free(nconf->control_socket);
	if ((nconf->control_socket = strdup(env->control_socket)) == NULL)
		fatal(__func__);
	if (config_proc_changed(&env->procs[PROC_MASTER],
	    &nconf->procs[PROC_MASTER]))
		log_warnx("master user and chroot change only on restart");
	if (masters_count(nconf) != nmasters)
		log_warnx("the number of masters changes only on restart: "
		    "%u run", nmasters);
	ca_changed = config_proc_changed(&env->procs[PROC_CA],
	    &nconf->procs[PROC_CA]);

	/* Workers whose setup changed are replaced; the old ones drain. */
	TAILQ_FOREACH_SAFE(c, &children, entry, tc) {
		if (c->type == PROC_MASTER || c->type == PROC_CA ||
		    c->retired || !config_worker_changed(c->type, env, nconf))
			continue;
		log_info("%s.%u: replaced", proc_name(c->type), c->instance);
		child_retire(c);
	}
	config_free(env);
	env = nconf;
	if (cmdline_verbose == 0 && verbose != env->verbose)
		ctl_verbose(env->verbose);
	fd_limit_raise(env);

	/*
	 * The ca first: the master's new certificates name its keys.  A
	 * ca whose user or chroot changed is replaced: the new one has
	 * the keys and the master's channel before the old one drains,
	 * which it does once the master has let go of its channel.
	 */
	if (ca_child != NULL && ca_changed) {
		old_ca = ca_child;
		log_info("%s.%u: replaced", proc_name(old_ca->type),
		    old_ca->instance);
		ca_child = child_new(PROC_CA, 0);
		child_start(ca_child);
		child_retire(old_ca);
	} else if (child_up(ca_child))
		ca_send_keys(ca_child);
	masters_send(master_send_config);
	tickets_configure();
	children_reconcile();
	log_info("configuration reloaded");
	return (0);
}

/*
 * The master holds two descriptors per relayed connection; take what
 * the hard limit allows and say so if it is still too little.
 */
static void
fd_limit_raise(struct mezited_conf *conf)
{
	struct rlimit	 rl;
	rlim_t		 need;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit");
	}
	need = (rlim_t)(conf->max_connections / nmasters + 1) * 2 + 64;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warnx("open file limit %llu is below the %llu that max "
		    "connections %u needs in each of %u masters; accepting "
		    "pauses when it is reached", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)need, conf->max_connections, nmasters);
}

/*
 * A socket per master and address, in one SO_REUSEPORT group, or one
 * socket for all.  The group is bound by root, so only root could join
 * it.
 */
static int
listeners_bind(struct mezited_conf *conf)
{
	struct listen_addr	*la;
	unsigned int		 i, n;
	int			 fd;

	n = LISTEN_PER_MASTER ? nmasters : 1;
	TAILQ_FOREACH(la, &conf->listeners, entry) {
		for (i = 0; i < n; i++) {
			if ((fd = listener_bind(la, n > 1)) == -1) {
				listen_addr_close(la);
				return (-1);
			}
			la->fds[la->nfds++] = fd;
		}
		for (; i < nmasters; i++)
			la->fds[la->nfds++] = la->fds[0];
	}
	return (0);
}

static int
listener_bind(struct listen_addr *la, int reuseport)
{
	char	 buf[ADDRSTRLEN];
	int	 fd, on = 1;

	addr_str((struct sockaddr *)&la->ss, buf, sizeof(buf));
	if ((fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		log_warn("listen on %s: socket", buf);
		return (-1);
	}
	/* Accepted connections inherit TCP_NODELAY: no call each. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)) == -1) ||
	    (la->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		log_warn("listen on %s: setsockopt", buf);
		close(fd);
		return (-1);
	}
	if (bind(fd, (struct sockaddr *)&la->ss, la->sslen) == -1) {
		log_warn("listen on %s", buf);
		close(fd);
		return (-1);
	}
	if (listen(fd, SOMAXCONN) == -1) {
		log_warn("listen on %s: listen", buf);
		close(fd);
		return (-1);
	}
	return (fd);
}

static void
ctl_fail(uint32_t peerid, const char *msg)
{
	Mezite__CtlError	 e;

	mezite__ctl_error__init(&e);
	e.message = (char *)msg;
	control_reply_pb(IMSG_CTL_FAIL, peerid, &e.base);
}

/*
 * show status, show connections: asked of every master.  Their status
 * answers become one (status_merge(), each master among the processes);
 * their connections are passed on as they come.  A master that dies or
 * does not answer within MASTERS_WAIT seconds is left out.
 */
static pid_t
ctl_forward(uint32_t type, uint32_t peerid, const void *data, size_t len)
{
	struct timeval		 tv = { MASTERS_WAIT, 0 };
	struct ctl_pending	*p;
	struct child		*m;

	if ((p = ctl_pending_new(type, peerid)) == NULL)
		return (0);
	TAILQ_FOREACH(m, &children, entry) {
		if (!master_up(m))
			continue;
		if (proc_compose(&m->chan, type, peerid, -1, data,
		    len) == -1) {
			log_warn("%s: compose", __func__);
			continue;
		}
		p->owing |= MASTER_BIT(m);
	}
	if (p->owing == 0) {
		ctl_fail(peerid, "no master is running");
		ctl_pending_free(p);
		return (0);
	}
	evtimer_add(&p->timer, &tv);
	return (0);
}

/*
 * A master has answered all it will (m), or none owes more (m NULL):
 * once none does, the client has its answer.
 */
static void
ctl_masters_end(struct ctl_pending *p, struct child *m)
{
	Mezite__Status	 st;

	if (m != NULL)
		p->owing &= ~MASTER_BIT(m);
	else
		p->owing = 0;
	if (p->owing != 0)
		return;
	if (p->type == IMSG_CTL_SHOW_CONNECTIONS)
		control_reply(IMSG_CTL_END, p->peerid, NULL, 0);
	else if (p->nparts == 0)
		ctl_fail(p->peerid, "no master answered");
	else if (status_merge(&st, p->parts, p->nparts) == -1) {
		log_warn("%s", __func__);
		ctl_fail(p->peerid, "out of memory");
	} else {
		control_reply_pb(IMSG_CTL_STATUS, p->peerid, &st.base);
		control_reply(IMSG_CTL_END, p->peerid, NULL, 0);
		status_parts_free(&st);
	}
	ctl_pending_free(p);
}

/* A master's status, kept until every master has answered. */
static int
supervisor_master_status(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct child		*m = ch->arg;
	struct ctl_pending	*p;

	p = ctl_pending_find(IMSG_CTL_SHOW_STATUS, imsg_get_id(imsg));
	if (p == NULL || !(p->owing & MASTER_BIT(m)) ||
	    p->nparts == nitems(p->parts))
		return (0);		/* too late */
	p->parts[p->nparts++] = msg;
	return (1);
}

/* A connection a master holds: passed on to the client. */
static int
supervisor_master_conn(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct child		*m = ch->arg;
	struct ctl_pending	*p;

	p = ctl_pending_find(IMSG_CTL_SHOW_CONNECTIONS, imsg_get_id(imsg));
	if (p != NULL && (p->owing & MASTER_BIT(m)))
		control_reply(IMSG_CTL_CONN, p->peerid, imsg->data,
		    imsg_get_len(imsg));
	return (0);
}

/* A master's last answer to show status or show connections. */
static int
supervisor_master_end(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct child		*m = ch->arg;
	struct ctl_pending	*p;

	if ((p = ctl_pending_find(IMSG_CTL_SHOW_STATUS,
	    imsg_get_id(imsg))) == NULL &&
	    (p = ctl_pending_find(IMSG_CTL_SHOW_CONNECTIONS,
	    imsg_get_id(imsg))) == NULL)
		return (0);
	if (p->owing & MASTER_BIT(m))
		ctl_masters_end(p, m);
	return (0);
}

/*
 * Requests about the auth store go to an auth worker, the first running
 * one: they all share the store.
 */
static pid_t
ctl_admin(uint32_t peerid, Mezite__AdminRequest *req)
{
	struct child	*c;

	TAILQ_FOREACH(c, &children, entry)
		if (c->type == PROC_AUTH && c->pid != 0 && !c->retired &&
		    !c->chan.dead)
			break;
	if (c == NULL) {
		ctl_fail(peerid, "no auth worker is running");
		return (0);
	}
	if (proc_compose_pb(&c->chan, IMSG_ADMIN, peerid, -1,
	    &req->base) == -1) {
		log_warn("%s: compose", __func__);
		ctl_fail(peerid, "cannot reach the auth worker");
		return (0);
	}
	return (c->pid);
}

/*
 * The auth worker's directory, its chroot: made if missing, and kept
 * its user's alone (mode 0700).  The state directory above it is made
 * too, owned by root.
 */
/*
 * The directory of the state directory that is a worker's own and its
 * chroot (the auth worker's store, the ssh worker's host keys): made,
 * and its owner and mode set, before the worker starts.
 */
static int
state_dir_prepare(enum proc_type type)
{
	struct proc_conf	*pc = &env->procs[type];
	struct passwd		*pw = NULL;
	struct stat		 st;
	const char		*name = proc_name(type);

	if (geteuid() == 0 && (pw = getpwnam(pc->user)) == NULL) {
		log_warnx("%s: user %s does not exist", name, pc->user);
		return (-1);
	}
	if (mkdir(env->state_dir, 0755) == -1 && errno != EEXIST) {
		log_warn("state directory %s", env->state_dir);
		return (-1);
	}
	if (mkdir(pc->chroot, 0700) == -1 && errno != EEXIST) {
		log_warn("%s: %s", name, pc->chroot);
		return (-1);
	}
	if (lstat(pc->chroot, &st) == -1) {
		log_warn("%s: %s", name, pc->chroot);
		return (-1);
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx("%s: %s is not a directory", name, pc->chroot);
		return (-1);
	}
	if ((pw != NULL && (st.st_uid != pw->pw_uid ||
	    st.st_gid != pw->pw_gid) &&
	    chown(pc->chroot, pw->pw_uid, pw->pw_gid) == -1) ||
	    ((st.st_mode & 07777) != 0700 && chmod(pc->chroot, 0700) == -1)) {
		log_warn("%s: %s", name, pc->chroot);
		return (-1);
	}
	return (0);
}

static void
ctl_workers(uint32_t peerid)
{
	Mezite__ProcInfo	 pi;
	struct child		*c;

	TAILQ_FOREACH(c, &children, entry) {
		proc_info(c, &pi);
		control_reply_pb(IMSG_CTL_PROC, peerid, &pi.base);
	}
	control_reply(IMSG_CTL_END, peerid, NULL, 0);
}

static int
ctl_reload(void)
{
	log_info("reload requested by mezctl");
	return (supervisor_reload());
}

static void
ctl_verbose(int v)
{
	struct child	*c;

	verbose = v;
	log_setverbose(v);
	TAILQ_FOREACH(c, &children, entry)
		if (c->pid != 0)
			(void)proc_compose(&c->chan, IMSG_LOG_VERBOSE, 0, -1, &v,
			    sizeof(v));
	log_info("log level %s", v ? "verbose" : "brief");
}

static void
ctl_pending_free(struct ctl_pending *p)
{
	if (evtimer_pending(&p->timer, NULL))
		evtimer_del(&p->timer);
	TAILQ_REMOVE(&pendings, p, entry);
	npendings--;
	if (p->asker != NULL)
		nwreqs--;
	if (p->req != NULL)
		mezite__dial_request__free_unpacked(p->req, NULL);
	while (p->nparts > 0)
		pb_free(p->parts[--p->nparts]);
	free(p);
}

/*
 * A child went away: what it was asked will not be answered, and what
 * it asked needs no answer.
 */
static void
ctl_pending_gone(struct child *c)
{
	struct ctl_pending	*p, *tp;

	TAILQ_FOREACH_SAFE(p, &pendings, entry, tp) {
		if (p->asker == c)
			ctl_pending_free(p);
		else if (p->asker != NULL && p->asked == c->pid)
			wreq_answer(p, c->type == PROC_AUTH ?
			    "the auth worker went away" :
			    "the tunnel worker went away");
		else if (p->type == IMSG_CTL_CONNECT && p->asked == c->pid)
			ctl_pending_free(p);
		else if (c->type == PROC_MASTER &&
		    (p->owing & MASTER_BIT(c)))
			ctl_masters_end(p, c);
	}
}

/* Not every worker answered in time: end it. */
static void
ctl_pending_timeout(int fd, short event, void *arg)
{
	struct ctl_pending	*p = arg;

	if (p->asker != NULL) {
		wreq_answer(p, p->type == IMSG_TUNNEL_DIAL ?
		    "the tunnel worker did not answer" :
		    "the auth worker did not answer");
		return;
	}
	if (p->type == IMSG_CTL_SHOW_STATUS ||
	    p->type == IMSG_CTL_SHOW_CONNECTIONS) {
		log_warnx("a master did not answer %s in %ds",
		    p->type == IMSG_CTL_SHOW_STATUS ? "show status" :
		    "show connections", MASTERS_WAIT);
		ctl_masters_end(p, NULL);
		return;
	}
	if (p->type == IMSG_CTL_SHOW_NODES ||
	    p->type == IMSG_CTL_SHOW_SESSIONS)
		control_reply(IMSG_CTL_END, p->peerid, NULL, 0);
	else if (p->type == IMSG_CTL_KILL_SESSION)
		ctl_fail(p->peerid, "the ssh worker did not answer");
	else
		ctl_fail(p->peerid, "the tunnel worker did not answer");
	ctl_pending_free(p);
}

static struct ctl_pending *
ctl_pending_new(uint32_t type, uint32_t peerid)
{
	struct ctl_pending	*p;

	if (npendings >= CTL_PENDING_MAX) {
		ctl_fail(peerid, "too many requests are on their way");
		return (NULL);
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warn("%s", __func__);
		ctl_fail(peerid, "out of memory");
		return (NULL);
	}
	p->type = type;
	p->peerid = peerid;
	evtimer_set(&p->timer, ctl_pending_timeout, p);
	TAILQ_INSERT_TAIL(&pendings, p, entry);
	npendings++;
	return (p);
}

static int
tunnel_running(struct child *c)
{
	return (c->type == PROC_TUNNEL && c->pid != 0 && !c->retired &&
	    !c->chan.dead);
}

/* show nodes: every tunnel worker answers with its nodes. */
static pid_t
ctl_nodes(uint32_t peerid)
{
	struct timeval		 tv = { NODES_WAIT, 0 };
	struct ctl_pending	*p;
	struct child		*c;
	pid_t			 first = 0;

	if ((p = ctl_pending_new(IMSG_CTL_SHOW_NODES, peerid)) == NULL)
		return (0);
	TAILQ_FOREACH(c, &children, entry) {
		if (!tunnel_running(c))
			continue;
		if (proc_compose(&c->chan, IMSG_CTL_SHOW_NODES, peerid, -1,
		    NULL, 0) == -1) {
			log_warn("%s: compose", __func__);
			continue;
		}
		p->waiting++;
		if (first == 0)
			first = c->pid;
	}
	if (p->waiting == 0) {
		control_reply(IMSG_CTL_END, peerid, NULL, 0);
		ctl_pending_free(p);
		return (0);
	}
	evtimer_add(&p->timer, &tv);
	return (first);
}

/*
 * Ask the next running tunnel worker after the one with pid after (0:
 * the first): 0 if one was asked, -1 if none is left.
 */
static int
tunnel_dial_next(struct ctl_pending *p, pid_t after)
{
	struct child	*c;
	int		 past = after == 0;

	TAILQ_FOREACH(c, &children, entry) {
		if (!past) {
			past = c->pid == after;
			continue;
		}
		if (!tunnel_running(c))
			continue;
		if (proc_compose_pb(&c->chan, IMSG_TUNNEL_DIAL, p->peerid, -1,
		    &p->req->base) == -1) {
			log_warn("%s: compose", __func__);
			continue;
		}
		p->asked = c->pid;
		if (p->asker == NULL)
			control_waiting(p->peerid, c->pid);
		return (0);
	}
	return (-1);
}

/* connect: a stream to a node's service, for a client that may write. */
static pid_t
ctl_connect(uint32_t peerid, Mezite__DialRequest *req)
{
	struct timeval		 tv = { TUNNEL_DIAL_WAIT, 0 };
	struct ctl_pending	*p;
	uint8_t			*buf;
	size_t			 len;

	if ((p = ctl_pending_new(IMSG_CTL_CONNECT, peerid)) == NULL)
		return (0);
	/* A copy of its own, to ask the next worker. */
	len = mezite__dial_request__get_packed_size(req);
	if ((buf = malloc(len)) == NULL) {
		ctl_fail(peerid, "out of memory");
		ctl_pending_free(p);
		return (0);
	}
	(void)mezite__dial_request__pack(req, buf);
	p->req = mezite__dial_request__unpack(NULL, len, buf);
	free(buf);
	if (p->req == NULL) {
		ctl_fail(peerid, "out of memory");
		ctl_pending_free(p);
		return (0);
	}
	if (tunnel_dial_next(p, 0) == -1) {
		ctl_fail(peerid, "no tunnel worker is running");
		ctl_pending_free(p);
		return (0);
	}
	evtimer_add(&p->timer, &tv);
	return (p->asked);
}

static int
ssh_running(struct child *c)
{
	return (c->type == PROC_SSH && c->pid != 0 && !c->retired &&
	    !c->chan.dead);
}

/*
 * show sessions, kill session: asked of every ssh worker; the answers
 * are counted in waiting.
 */
static pid_t
ctl_ssh_ask(uint32_t type, uint32_t peerid, const void *data, size_t len)
{
	struct timeval		 tv = { NODES_WAIT, 0 };
	struct ctl_pending	*p;
	struct child		*c;
	pid_t			 first = 0;

	if ((p = ctl_pending_new(type, peerid)) == NULL)
		return (0);
	TAILQ_FOREACH(c, &children, entry) {
		if (!ssh_running(c))
			continue;
		if (proc_compose(&c->chan, type, peerid, -1, data, len) ==
		    -1) {
			log_warn("%s: compose", __func__);
			continue;
		}
		p->waiting++;
		if (first == 0)
			first = c->pid;
	}
	if (p->waiting == 0) {
		if (type == IMSG_CTL_SHOW_SESSIONS)
			control_reply(IMSG_CTL_END, peerid, NULL, 0);
		else
			ctl_fail(peerid, "no such session");
		ctl_pending_free(p);
		return (0);
	}
	evtimer_add(&p->timer, &tv);
	return (first);
}

static pid_t
ctl_sessions(uint32_t peerid)
{
	return (ctl_ssh_ask(IMSG_CTL_SHOW_SESSIONS, peerid, NULL, 0));
}

static pid_t
ctl_kill(uint32_t peerid, uint64_t id)
{
	return (ctl_ssh_ask(IMSG_CTL_KILL_SESSION, peerid, &id, sizeof(id)));
}

/*
 * Session ticket keys, made from the system's random generator and kept
 * in memory only: a restarted master is sent the live ones again, so
 * its tickets stay good; a restarted supervisor makes new ones.  Each
 * lifetime a new key seals and the one before only opens, so a ticket
 * resumes for between one and two lifetimes.
 */
static void
tickets_configure(void)
{
	if (!env->tls_tickets) {
		if (tkeys.n == 0)
			return;
		evtimer_del(&tkeyev);
		explicit_bzero(&tkeys, sizeof(tkeys));
		masters_send(tickets_send);
		log_debug("session tickets off, their keys wiped");
		return;
	}
	/* A new lifetime starts with a new key. */
	if (tkeys.n > 0 && tkey_lifetime == env->ticket_lifetime)
		return;
	tickets_rotate(-1, 0, NULL);
}

static void
tickets_rotate(int fd, short event, void *arg)
{
	struct timeval	 tv;

	memcpy(&tkeys.key[1], &tkeys.key[0], sizeof(tkeys.key[1]));
	arc4random_buf(&tkeys.key[0], sizeof(tkeys.key[0]));
	if (tkeys.n < 2)
		tkeys.n++;
	tkey_lifetime = env->ticket_lifetime;
	timerclear(&tv);
	tv.tv_sec = tkey_lifetime;
	evtimer_add(&tkeyev, &tv);
	masters_send(tickets_send);
	log_debug("session ticket key rotated, %u live", tkeys.n);
}

/* The channel is wiped: the copy queued for it is zeroed once sent. */
static void
tickets_send(struct child *c)
{
	if (proc_compose(&c->chan, IMSG_TICKET_KEYS, 0, -1, &tkeys,
	    sizeof(tkeys)) == -1)
		fatal("%s: compose", __func__);
}
