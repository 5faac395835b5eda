/*
 * The sandbox of each process, one function per kind.
 *
 * Every child loads what it needs, chroots, drops its capability
 * bounding set, its groups and its user (proc_drop() in proc.c), sets
 * no_new_privs, and then comes here, at the point of its start after
 * which it opens nothing more (or only files under one directory).
 *
 * Linux: Landlock first, where the kernel has it (5.13 and later): no
 * filesystem access at all, or what is under the one directory the
 * process needs; no TCP bind or connect; no signals out of the
 * sandbox.  Then a seccomp-bpf allowlist whose default action kills the
 * whole process.  With MEZITE_SANDBOX_DEBUG=1 in the environment the
 * default action traps instead: a SIGSYS handler logs the system call
 * by number and name, then the process dies of SIGSYS all the same.
 *
 * The sanitizer build's runtime reports through calls the processes
 * themselves never make; it gets them only when the compiler says it
 * instruments (__SANITIZE_ADDRESS__).
 *
 * OpenBSD: pledge and unveil, with the same intent.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <termios.h>
#endif

#include "log.h"
#include "sandbox.h"

#if defined(__OpenBSD__) || defined(__linux__)
static void	 selftest(const char *);
#endif

#ifdef __OpenBSD__

static void
unveil_or_die(const char *path, const char *perm)
{
	if (unveil(path, perm) == -1)
		fatal("unveil %s", path != NULL ? path : "(lock)");
}

void
sandbox_nnp(void)
{
	/* Nothing gains privilege at exec on OpenBSD once pledged. */
}

void
sandbox_master(void)
{
	unveil_or_die(NULL, NULL);
	if (pledge("stdio inet recvfd sendfd", NULL) == -1)
		fatal("pledge");
	selftest("master");
}

void
sandbox_ca(void)
{
	unveil_or_die(NULL, NULL);
	if (pledge("stdio recvfd", NULL) == -1)
		fatal("pledge");
	selftest("ca");
}

void
sandbox_https(const char *root)
{
	if (root != NULL && root[0] != '\0')
		unveil_or_die(root, "r");
	unveil_or_die(NULL, NULL);
	if (pledge("stdio rpath inet recvfd sendfd", NULL) == -1)
		fatal("pledge");
	selftest("https");
}

void
sandbox_auth(const char *state)
{
	unveil_or_die(state, "rwc");
	unveil_or_die(NULL, NULL);
	if (pledge("stdio rpath wpath cpath flock fattr inet unix recvfd "
	    "sendfd", NULL) == -1)
		fatal("pledge");
	selftest("auth");
}

void
sandbox_tunnel(void)
{
	unveil_or_die(NULL, NULL);
	if (pledge("stdio inet unix recvfd sendfd", NULL) == -1)
		fatal("pledge");
	selftest("tunnel");
}

void
sandbox_ssh(int dial)
{
	(void)dial;		/* "inet" covers the static targets */
	unveil_or_die(NULL, NULL);
	if (pledge("stdio proc inet unix recvfd sendfd", NULL) == -1)
		fatal("pledge");
	selftest("ssh");
}

void
sandbox_ssh_session(void)
{
	if (pledge("stdio inet recvfd", NULL) == -1)
		fatal("pledge");
}

static void
selftest(const char *name)
{
	const char	*want = getenv(SANDBOX_SELFTEST_ENV);

	if (want == NULL || strcmp(want, name) != 0)
		return;
	log_warnx("sandbox self-test: calling execve");
	(void)execl("/nonexistent", "selftest", (char *)NULL);
	fatal("sandbox self-test: execve");
}

#elif defined(__linux__)

/* Landlock's definitions newer than Debian 12's headers. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)
#endif
#define LL_ACCESS_NET_BIND_TCP		(1ULL << 0)
#define LL_ACCESS_NET_CONNECT_TCP	(1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)
#define LL_SCOPE_SIGNAL			(1ULL << 1)

/* The ruleset's attributes as of ABI 6; older kernels take a prefix. */
struct ll_ruleset_attr {
	uint64_t	 handled_access_fs;
	uint64_t	 handled_access_net;
	uint64_t	 scoped;
};

#define LL_READ		(LANDLOCK_ACCESS_FS_READ_FILE | \
			    LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_WRITE	(LANDLOCK_ACCESS_FS_WRITE_FILE | \
			    LANDLOCK_ACCESS_FS_REMOVE_FILE | \
			    LANDLOCK_ACCESS_FS_MAKE_REG | \
			    LANDLOCK_ACCESS_FS_TRUNCATE)

/* The name of each system call, for the debug mode's handler. */
#define SYSCALL_NAMES	512
static const char	*syscall_names[SYSCALL_NAMES];
static pid_t		 sandbox_pid;

/*
 * Landlock: nothing of the filesystem but what is under path (none if
 * NULL) with the given rights, no TCP bind, and no TCP connect unless
 * dial.  A kernel without it is not an error.
 */
static void
landlock(const char *path, uint64_t access, int dial)
{
	struct ll_ruleset_attr			 attr;
	struct landlock_path_beneath_attr	 pb;
	size_t					 size;
	long					 abi;
	int					 rfd, fd;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		if (errno == ENOSYS || errno == EOPNOTSUPP)
			return;
		fatal("landlock_create_ruleset");
	}

	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE |
	    LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
	    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
	    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
	    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
	    LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
	size = sizeof(attr.handled_access_fs);
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 4) {
		/* No process binds a TCP socket; few connect one. */
		attr.handled_access_net = LL_ACCESS_NET_BIND_TCP;
		if (!dial)
			attr.handled_access_net |= LL_ACCESS_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}

	if ((rfd = syscall(SYS_landlock_create_ruleset, &attr, size, 0)) ==
	    -1)
		fatal("landlock_create_ruleset");
	if (path != NULL) {
		if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1)
			fatal("landlock: %s", path);
		memset(&pb, 0, sizeof(pb));
		pb.allowed_access = access & attr.handled_access_fs;
		pb.parent_fd = fd;
		if (syscall(SYS_landlock_add_rule, rfd,
		    LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == -1)
			fatal("landlock_add_rule %s", path);
		close(fd);
	}
	if (syscall(SYS_landlock_restrict_self, rfd, 0) == -1)
		fatal("landlock_restrict_self");
	close(rfd);
}

/* Async-signal-safe: the trapped call, to the log, then death. */
static void
sigsys(int sig, siginfo_t *info, void *uctx)
{
	struct sigaction	 sa;
	sigset_t		 set;
	char			 line[128], num[16];
	const char		*name = "unknown";
	size_t			 i = sizeof(num) - 1;
	int			 nr = info->si_syscall;
	unsigned int		 n = nr < 0 ? 0 : (unsigned int)nr;

	num[i] = '\0';
	do {
		num[--i] = '0' + n % 10;
		n /= 10;
	} while (n > 0 && i > 0);
	if (nr >= 0 && nr < SYSCALL_NAMES && syscall_names[nr] != NULL)
		name = syscall_names[nr];
	line[0] = '\0';
	(void)strlcat(line, "sandbox: system call ", sizeof(line));
	(void)strlcat(line, num + i, sizeof(line));
	(void)strlcat(line, " (", sizeof(line));
	(void)strlcat(line, name, sizeof(line));
	(void)strlcat(line, ") not allowed", sizeof(line));
	log_sigsafe(LOG_CRIT, line);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGSYS, &sa, NULL);
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGSYS);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	(void)raise(SIGSYS);
	_exit(128 + SIGSYS);
}

static int
debug_mode(void)
{
	const char	*v = getenv(SANDBOX_DEBUG_ENV);

	return (v != NULL && strcmp(v, "1") == 0);
}

static void
debug_init(void)
{
	struct sigaction	 sa;
	int			 i;

	for (i = 0; i < SYSCALL_NAMES; i++)
		if (syscall_names[i] == NULL)
			syscall_names[i] = seccomp_syscall_resolve_num_arch(
			    SCMP_ARCH_NATIVE, i);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys;
	sa.sa_flags = SA_SIGINFO;
	(void)sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		fatal("sigaction SIGSYS");
}

/* A rule, or nothing if the call does not exist on this architecture. */
static void
rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
    unsigned int n, ...)
{
	struct scmp_arg_cmp	 cmp[3];
	va_list			 ap;
	unsigned int		 i;
	int			 nr, r;

	if ((nr = seccomp_syscall_resolve_name(name)) == __NR_SCMP_ERROR)
		return;
	if (n > sizeof(cmp) / sizeof(cmp[0]))
		fatalx("sandbox: %s: too many arguments", name);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		cmp[i] = va_arg(ap, struct scmp_arg_cmp);
	va_end(ap);
	if ((r = seccomp_rule_add_array(ctx, action, nr, n, cmp)) < 0)
		fatalx("sandbox: %s: %s", name, strerror(-r));
}

static void
allow(scmp_filter_ctx ctx, const char *const *names)
{
	for (; *names != NULL; names++)
		rule(ctx, SCMP_ACT_ALLOW, *names, 0);
}

/* What every process does: memory, time, its descriptors, its loop. */
static const char *const base_calls[] = {
	"read", "readv", "write", "writev", "pread64", "close", "fstat",
	"newfstatat", "lseek", "fcntl", "dup", "dup2", "dup3",
	"brk", "munmap", "mremap", "madvise",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"exit", "exit_group", "restart_syscall",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "clock_gettime", "clock_getres", "gettimeofday", "time",
	"nanosleep", "clock_nanosleep", "sched_yield", "futex", "getrandom",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll",
	"ppoll", "select", "pselect6", "pipe2", "eventfd2",
	"recvmsg", "sendmsg", "recvfrom", "sendto", "shutdown",
	"getsockopt", "setsockopt", "getsockname", "getpeername",
	NULL
};

/* The sanitizers' runtime: reports, stack traces, its own memory. */
static const char *const sanitizer_calls[] = {
	"mmap", "mprotect", "openat", "readlink", "readlinkat", "getdents64",
	"sched_getaffinity", "prctl", "uname", "prlimit64", "getrlimit",
	"setrlimit", "clone", "wait4", "kill", "tgkill", "mincore",
	"getcwd", "sysinfo", NULL
};

static scmp_filter_ctx
filter_new(void)
{
	scmp_filter_ctx	 ctx;
	uint32_t	 def = SCMP_ACT_KILL_PROCESS;

	if (debug_mode()) {
		debug_init();
		def = SCMP_ACT_TRAP;
	}
	if ((ctx = seccomp_init(def)) == NULL)
		fatalx("seccomp_init");
	/* no_new_privs is ours to set, and is set already. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
		fatalx("seccomp_attr_set");
	sandbox_pid = getpid();

	allow(ctx, base_calls);
	/* Memory, never executable: no code is loaded after the start. */
	rule(ctx, SCMP_ACT_ALLOW, "mmap", 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rule(ctx, SCMP_ACT_ALLOW, "mprotect", 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Its own limits, read only. */
	rule(ctx, SCMP_ACT_ALLOW, "getrlimit", 0);
	rule(ctx, SCMP_ACT_ALLOW, "prlimit64", 2,
	    SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0));
	/* Sockets it already has, and pairs of local ones. */
	rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONBIO));
	/* isatty(), from stdio: not a terminal. */
	rule(ctx, SCMP_ACT_ERRNO(ENOTTY), "ioctl", 1,
	    SCMP_A1(SCMP_CMP_EQ, TCGETS));
	/* Threads are refused politely; a fork is the ssh worker's own. */
	rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0);
	/* Files: none, unless the process says otherwise. */
	rule(ctx, SCMP_ACT_ERRNO(EACCES), "open", 0);
	return (ctx);
}

/* Signals to itself only (abort(), raise()). */
static void
allow_self_signals(scmp_filter_ctx ctx)
{
	rule(ctx, SCMP_ACT_ALLOW, "kill", 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sandbox_pid));
	rule(ctx, SCMP_ACT_ALLOW, "tgkill", 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sandbox_pid));
}

static void
filter_load(scmp_filter_ctx ctx, int files, const char *name)
{
	int	 r;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
	allow(ctx, sanitizer_calls);
	files = 1;
#else
	(void)sanitizer_calls;
#endif
	if (!files)
		rule(ctx, SCMP_ACT_ERRNO(EACCES), "openat", 0);
	if ((r = seccomp_load(ctx)) < 0)
		fatalx("%s: seccomp_load: %s", name, strerror(-r));
	seccomp_release(ctx);
	log_debug("sandboxed");
	selftest(name);
}

void
sandbox_nnp(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
}

/*
 * The master: TLS on the sockets the supervisor gave it, kernel TLS set
 * up with setsockopt, sessions passed on to workers.
 */
void
sandbox_master(void)
{
	scmp_filter_ctx	 ctx;

	sandbox_nnp();
	landlock(NULL, 0, 0);
	ctx = filter_new();
	allow_self_signals(ctx);
	rule(ctx, SCMP_ACT_ALLOW, "accept4", 0);
	rule(ctx, SCMP_ACT_ALLOW, "accept", 0);
	filter_load(ctx, 0, "master");
}

/*
 * The ca process: signatures for the master over the channels the
 * supervisor gives it, and nothing else.
 */
void
sandbox_ca(void)
{
	scmp_filter_ctx	 ctx;

	sandbox_nnp();
	landlock(NULL, 0, 0);
	ctx = filter_new();
	allow_self_signals(ctx);
	filter_load(ctx, 0, "ca");
}

/* The https worker: its sessions, and files under its root, read only. */
void
sandbox_https(const char *root)
{
	scmp_filter_ctx	 ctx;
	int		 files = root != NULL && root[0] != '\0';

	sandbox_nnp();
	landlock(files ? root : NULL, LL_READ, 0);
	ctx = filter_new();
	allow_self_signals(ctx);
	if (files) {
		rule(ctx, SCMP_ACT_ALLOW, "openat", 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT |
		    O_TRUNC | O_APPEND, O_RDONLY));
		rule(ctx, SCMP_ACT_ERRNO(EACCES), "openat", 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY));
		rule(ctx, SCMP_ACT_ERRNO(EACCES), "openat", 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR));
		rule(ctx, SCMP_ACT_ALLOW, "sendfile", 0);
	}
	filter_load(ctx, files, "https");
}

/* The auth worker: its store and CAs, in its state directory. */
void
sandbox_auth(const char *state)
{
	static const char *const calls[] = {
		"openat", "pwrite64", "fsync", "fdatasync", "ftruncate",
		"fallocate", "unlink", "unlinkat", "rename", "renameat",
		"renameat2", "access", "faccessat", "faccessat2", "getcwd",
		"readlink", "readlinkat", "lstat", "stat", "statx", "fchmod",
		"fchown", "umask", "flock", NULL
	};
	scmp_filter_ctx	 ctx;

	sandbox_nnp();
	landlock(state, LL_READ | LL_WRITE, 0);
	ctx = filter_new();
	allow_self_signals(ctx);
	allow(ctx, calls);
	filter_load(ctx, 1, "auth");
}

/* The tunnel worker: agents' sessions, streams to local pairs. */
void
sandbox_tunnel(void)
{
	scmp_filter_ctx	 ctx;

	sandbox_nnp();
	landlock(NULL, 0, 0);
	ctx = filter_new();
	allow_self_signals(ctx);
	filter_load(ctx, 0, "tunnel");
}

/*
 * The ssh worker forks its session processes, signals and reaps them;
 * each session adds a tighter filter of its own.  With dial, it also
 * connects TCP sockets to its static targets.
 */
void
sandbox_ssh(int dial)
{
	static const char *const calls[] = {
		"wait4", "kill", "tgkill", "close_range", "set_robust_list",
		"alarm", "setitimer", "seccomp", NULL
	};
	scmp_filter_ctx	 ctx;

	sandbox_nnp();
	landlock(NULL, 0, dial);
	ctx = filter_new();
	allow(ctx, calls);
	if (dial) {
		rule(ctx, SCMP_ACT_ALLOW, "socket", 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
		rule(ctx, SCMP_ACT_ALLOW, "socket", 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET6),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
		rule(ctx, SCMP_ACT_ALLOW, "connect", 0);
	}
	/* fork(), never a thread. */
	rule(ctx, SCMP_ACT_ALLOW, "clone", 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	/* A session setting its own, and its title. */
	rule(ctx, SCMP_ACT_ALLOW, "prctl", 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS));
	rule(ctx, SCMP_ACT_ALLOW, "prctl", 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP));
	rule(ctx, SCMP_ACT_ALLOW, "prctl", 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	filter_load(ctx, 0, "ssh");
}

/*
 * A session process: one SSH connection, its channels' streams, its
 * worker.  No fork, no signals but to itself, no new filter.
 */
void
sandbox_ssh_session(void)
{
	scmp_filter_ctx	 ctx;

	ctx = filter_new();
	allow_self_signals(ctx);
	rule(ctx, SCMP_ACT_ALLOW, "alarm", 0);
	rule(ctx, SCMP_ACT_ALLOW, "setitimer", 0);
	rule(ctx, SCMP_ACT_ALLOW, "prctl", 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	filter_load(ctx, 0, "ssh-session");
}

/*
 * The test hook: the named process, once sandboxed, tries what no
 * process may do.  The filter kills it; the supervisor restarts it.
 */
static void
selftest(const char *name)
{
	const char	*want = getenv(SANDBOX_SELFTEST_ENV);

	if (want == NULL || strcmp(want, name) != 0)
		return;
	log_warnx("sandbox self-test: calling execve");
	(void)execl("/nonexistent", "selftest", (char *)NULL);
	fatal("sandbox self-test: execve was allowed");
}

#else

void
sandbox_nnp(void)
{
}

void
sandbox_master(void)
{
}

void
sandbox_ca(void)
{
}

void
sandbox_https(const char *root)
{
}

void
sandbox_auth(const char *state)
{
}

void
sandbox_tunnel(void)
{
}

void
sandbox_ssh(int dial)
{
}

void
sandbox_ssh_session(void)
{
}

#endif
