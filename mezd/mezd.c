/*
 * mezd: reads its configuration and its files, leaves root, gets a
 * host certificate if it has none (Join), keeps it fresh (Renew) and
 * keeps the tunnel to mezited up (tunnel.c).
 *
 * Join and Renew run in a child (join.c) so that the loop never blocks
 * on them; the child's standard error is a pipe whose lines the parent
 * logs when it hears, by SIGCHLD, that the child has ended.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event.h>

#include "log.h"
#include "mezd.h"

#define JOB_TIMEOUT	120		/* s: a Join or Renew child */
#define RENEW_CAP	60		/* s: the most between Renew tries */
#define JOIN_CAP	30		/* s: and between Join tries */
#define CHILD_MSGLEN	1024		/* what a child says, logged */

static struct mezd_conf	 conf;
static struct home	 state;		/* the state directory */
static struct creds	 creds;		/* the key and cert in use */
static int		 have_creds;
static struct httpproxy	 hproxy;
static struct event_base *base;
static struct event	*job_ev;	/* the next Join or Renew */
static struct event	*watchdog_ev;	/* a child taking too long */
static int		 job_renew;	/* what job_ev starts */
static unsigned int	 job_attempt;
static pid_t		 child = -1;
static int		 child_renew;
static int		 child_err = -1;	/* its stderr, read end */

static __dead void usage(void);
static void	 resolve_services(void);
static int	 dir_empty(const char *);
static void	 drop_privileges(void);
static void	 open_state(void);
static void	 job_later(int, int);
static void	 job_cb(int, short, void *);
static void	 spawn(int);
static void	 watchdog_cb(int, short, void *);
static void	 sigchld_cb(int, short, void *);
static void	 sigterm_cb(int, short, void *);
static void	 sighup_cb(int, short, void *);
static void	 child_done(int);
static void	 schedule_renew(void);

static __dead void
usage(void)
{
	fprintf(stderr, "usage: %s [-dnv] [-f file]\n", getprogname());
	exit(1);
}

/* The services' addresses, once, before the loop. */
static void
resolve_services(void)
{
	struct addrinfo	 hints, *res;
	struct service	*sv;
	size_t		 i;
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	for (i = 0; i < conf.nservices; i++) {
		sv = &conf.services[i];
		if ((e = getaddrinfo(sv->addr.host, sv->addr.port, &hints,
		    &res)) != 0)
			fatalx("service %s: %s: %s", sv->name, sv->target,
			    gai_strerror(e));
		memcpy(&sv->ss, res->ai_addr, res->ai_addrlen);
		sv->sslen = res->ai_addrlen;
		freeaddrinfo(res);
	}
}

static int
dir_empty(const char *path)
{
	struct dirent	*de;
	DIR		*d;
	int		 empty = 1;

	if ((d = opendir(path)) == NULL)
		return (0);
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return (empty);
}

/*
 * Root gives way to the configured user, after the files are read and
 * before the network: the state directory is made for that user.
 */
static void
drop_privileges(void)
{
	struct passwd	*pw;
	struct stat	 sb;

	if (geteuid() != 0) {
		if (conf.user[0] != '\0' && ((pw = getpwuid(geteuid())) ==
		    NULL || strcmp(pw->pw_name, conf.user) != 0))
			log_warnx("not root: running as uid %u, not as %s",
			    (unsigned int)geteuid(), conf.user);
		return;
	}
	if (conf.user[0] == '\0')
		fatalx("%s: no user given: mezd does not run as root",
		    conf.file);
	if ((pw = getpwnam(conf.user)) == NULL)
		fatalx("unknown user %s", conf.user);
	if (pw->pw_uid == 0)
		fatalx("user %s is root: mezd does not run as root",
		    conf.user);
	/*
	 * Made for the user, or given to it if root made it empty (and
	 * never a directory with other things in it, such as /var/lib).
	 */
	if (lstat(conf.statedir, &sb) == -1) {
		if (errno != ENOENT)
			fatal("%s", conf.statedir);
		if (mkdir(conf.statedir, 0700) == -1 ||
		    chown(conf.statedir, pw->pw_uid, pw->pw_gid) == -1)
			fatal("%s", conf.statedir);
	} else if (S_ISDIR(sb.st_mode) && sb.st_uid == 0 &&
	    dir_empty(conf.statedir) && (chown(conf.statedir, pw->pw_uid,
	    pw->pw_gid) == -1 || chmod(conf.statedir, 0700) == -1))
		fatal("%s", conf.statedir);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", conf.user);
#ifdef __linux__
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("PR_SET_NO_NEW_PRIVS");
#endif
}

static void
open_state(void)
{
	struct stat	 sb;
	const char	*why;

	memset(&state, 0, sizeof(state));
	state.uid = geteuid();
	if (strlcpy(state.path, conf.statedir, sizeof(state.path)) >=
	    sizeof(state.path))
		fatalx("%s: name too long", conf.statedir);
	if (mkdir(state.path, 0700) == -1 && errno != EEXIST)
		fatal("%s", state.path);
	if ((state.fd = open(state.path, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		fatal("%s", state.path);
	if (fstat(state.fd, &sb) == -1)
		fatal("%s", state.path);
	if ((why = mode_check(&sb, state.uid, MODE_DIR)) != NULL)
		fatalx("%s %s", state.path, why);
}

static void
job_later(int renew, int ms)
{
	struct timeval	 tv;

	job_renew = renew;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(job_ev, &tv) == -1)
		fatalx("evtimer_add");
}

static void
job_cb(int fd, short ev, void *arg)
{
	spawn(job_renew);
}

/* At 2/3 of the certificate's life. */
static void
schedule_renew(void)
{
	time_t	 at, now = time(NULL);

	at = creds.not_before + (creds.not_after - creds.not_before) * 2 / 3;
	log_info("certificate valid until %lld, renewed in %lld s",
	    (long long)creds.not_after, (long long)(at > now ? at - now : 0));
	job_later(1, at > now ? (at - now > INT_MAX / 1000 ? INT_MAX :
	    (int)(at - now) * 1000) : 0);
}

static void
spawn(int renew)
{
	struct timeval	 tv = { JOB_TIMEOUT, 0 };
	int		 p[2];

	if (child != -1)
		return;
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("pipe");
		job_later(renew, backoff_ms(&job_attempt, JOIN_CAP));
		return;
	}
	switch (child = fork()) {
	case -1:
		log_warn("fork");
		close(p[0]);
		close(p[1]);
		job_later(renew, backoff_ms(&job_attempt, JOIN_CAP));
		return;
	case 0:
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		/*
		 * Its own stderr, the state directory as fd 3, and no copy
		 * of the tunnels' sockets to keep them open.
		 */
		if (dup2(p[1], STDERR_FILENO) == -1 ||
		    (state.fd != 3 && dup2(state.fd, 3) == -1))
			_exit(1);
		state.fd = 3;
		closefrom(4);
		join_child(&conf, &state, renew ? &creds : NULL);
	}
	close(p[1]);
	child_err = p[0];
	child_renew = renew;
	log_info("%s", renew ? "renewing the certificate" :
	    "joining the cluster");
	if (evtimer_add(watchdog_ev, &tv) == -1)
		fatalx("evtimer_add");
}

static void
watchdog_cb(int fd, short ev, void *arg)
{
	if (child != -1) {
		log_warnx("%s took more than %d s: killed", child_renew ?
		    "Renew" : "Join", JOB_TIMEOUT);
		(void)kill(child, SIGKILL);
	}
}

static void
sigchld_cb(int sig, short ev, void *arg)
{
	char	 msg[CHILD_MSGLEN], *line, *next;
	ssize_t	 n;
	pid_t	 pid;
	int	 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != child)
			continue;
		child = -1;
		evtimer_del(watchdog_ev);
		/* It has exited: all it wrote is in the pipe. */
		if (fcntl(child_err, F_SETFL, O_NONBLOCK) == 0 &&
		    (n = read(child_err, msg, sizeof(msg) - 1)) > 0) {
			msg[n] = '\0';
			for (line = msg; line != NULL && *line != '\0';
			    line = next) {
				if ((next = strchr(line, '\n')) != NULL)
					*next++ = '\0';
				log_warnx("%s", line);
			}
		}
		close(child_err);
		child_err = -1;
		child_done(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void
child_done(int ok)
{
	struct creds	 cr;
	char		 why[ERRLEN];
	int		 renew = child_renew;

	if (ok && creds_load(&conf, &state, &cr, why, sizeof(why)) != 0) {
		log_warnx("after %s: %s", renew ? "Renew" : "Join", why);
		ok = 0;
	}
	if (!ok) {
		log_warnx("%s failed: trying again", renew ? "Renew" : "Join");
		job_later(renew, backoff_ms(&job_attempt, renew ? RENEW_CAP :
		    JOIN_CAP));
		return;
	}
	job_attempt = 0;
	if (have_creds)
		creds_free(&creds);
	creds = cr;
	have_creds = 1;
	tunnel_set_creds(&creds);
	if (!renew) {
		/* One use only: the token is of no more use to anyone. */
		explicit_bzero(conf.token, sizeof(conf.token));
		log_info("joined as %s", conf.name);
	} else
		log_info("certificate renewed");
	schedule_renew();
	if (renew)
		tunnel_renewed();
	else
		tunnel_start();
}

static void
sigterm_cb(int sig, short ev, void *arg)
{
	log_info("exiting on signal %d", sig);
	event_base_loopbreak(base);
}

static void
sighup_cb(int sig, short ev, void *arg)
{
	log_info("SIGHUP: the configuration is read at start only");
}

int
main(int argc, char *argv[])
{
	struct event	*sigev[4];
	const char	*file = MEZD_CONF;
	char		 why[ERRLEN];
	int		 ch, debug = 0, verbose = 0, noaction = 0;
	int		 rv, use_hp;

	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			break;
		case 'n':
			noaction = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	log_init(1, LOG_DAEMON);
	log_setverbose(verbose);
	if (config_load(file, &conf, why, sizeof(why)) == -1)
		fatalx("%s", why);
	if ((use_hp = httpproxy_select(&conf, &hproxy, why,
	    sizeof(why))) == -1)
		fatalx("%s", why);
	if (access(conf.ca, R_OK) == -1)
		fatal("%s", conf.ca);
	resolve_services();
	if (noaction) {
		if (verbose)
			config_print(stdout, &conf);
		fprintf(stderr, "configuration OK\n");
		config_clear(&conf);
		exit(0);
	}

	drop_privileges();
	open_state();
	if (access(conf.ca, R_OK) == -1)
		fatal("%s (as the user mezd runs as)", conf.ca);
	if (!debug) {
		if (daemon(0, 0) == -1)
			fatal("daemon");
		log_init(0, LOG_DAEMON);
		log_setverbose(verbose);
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal");

	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	tunnel_init(base, &conf, &hproxy, use_hp);
	if ((job_ev = evtimer_new(base, job_cb, NULL)) == NULL ||
	    (watchdog_ev = evtimer_new(base, watchdog_cb, NULL)) == NULL ||
	    (sigev[0] = evsignal_new(base, SIGCHLD, sigchld_cb, NULL)) ==
	    NULL ||
	    (sigev[1] = evsignal_new(base, SIGTERM, sigterm_cb, NULL)) ==
	    NULL ||
	    (sigev[2] = evsignal_new(base, SIGINT, sigterm_cb, NULL)) ==
	    NULL ||
	    (sigev[3] = evsignal_new(base, SIGHUP, sighup_cb, NULL)) == NULL)
		fatalx("event_new");
	for (ch = 0; ch < 4; ch++)
		if (evsignal_add(sigev[ch], NULL) == -1)
			fatalx("evsignal_add");

	if ((rv = creds_load(&conf, &state, &creds, why, sizeof(why))) == 0) {
		have_creds = 1;
		explicit_bzero(conf.token, sizeof(conf.token));
		tunnel_set_creds(&creds);
		schedule_renew();
		tunnel_start();
	} else {
		if (rv == -1)
			log_warnx("%s", why);
		if (conf.token[0] == '\0')
			fatalx("no usable certificate in %s, and no token "
			    "to join with", conf.statedir);
		spawn(0);
	}

	event_base_dispatch(base);

	tunnel_shutdown();
	if (child != -1)
		(void)kill(child, SIGTERM);
	for (ch = 0; ch < 4; ch++)
		event_free(sigev[ch]);
	event_free(job_ev);
	event_free(watchdog_ev);
	event_base_free(base);
	if (have_creds)
		creds_free(&creds);
	config_clear(&conf);
	explicit_bzero(&hproxy, sizeof(hproxy));
	return (0);
}
