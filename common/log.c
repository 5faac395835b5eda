/*
 * Logging for every Mezite process.
 *
 * The supervisor writes to stderr (-d) or syslog.  A child calls
 * log_setsink() with its datagram socket to the supervisor; from then on
 * each line is one datagram: a priority byte followed by the text.  The
 * send never blocks: a process that serves the network must not wait on
 * its log.  Lines the socket cannot take (some 200 KB of them are in
 * flight) are counted, and the count goes out before the next line that
 * can be sent.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	1024

static int		 log_debug_mode;	/* to stderr, not syslog */
static int		 log_verbose;
static int		 log_sink = -1;		/* child: socket to supervisor */
static const char	*log_procname;
static unsigned long long log_dropped;	/* lines the sink did not take */

void
log_init(int n_debug, int facility)
{
	log_debug_mode = n_debug;
	log_verbose = n_debug;
	log_procinit(getprogname());

	if (!log_debug_mode)
		openlog(getprogname(), LOG_PID | LOG_NDELAY, facility);

	tzset();
}

void
log_procinit(const char *procname)
{
	if (procname != NULL)
		log_procname = procname;
}

void
log_setsink(int fd)
{
	log_sink = fd;
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return (log_verbose);
}

static void
log_write(int pri, const char *proc, const char *line, int pid)
{
	if (log_debug_mode) {
		if (pid > 0)
			fprintf(stderr, "%s[%d]: %s\n", proc, pid, line);
		else
			fprintf(stderr, "%s\n", line);
		fflush(stderr);
	} else if (pid > 0)
		syslog(pri, "%s[%d]: %s", proc, pid, line);
	else
		syslog(pri, "%s", line);
}

void
log_relay(int pri, const char *proc, const char *line, int pid)
{
	if (pri == LOG_DEBUG && !log_verbose)
		return;
	log_write(pri, proc, line, pid);
}

/* One line to the supervisor: 0 if sent, -1 if it must be dropped. */
static int
log_send(const char *line)
{
	for (;;) {
		if (send(log_sink, line, 1 + strlen(line + 1),
		    MSG_NOSIGNAL | MSG_DONTWAIT) != -1)
			return (0);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == ENOBUFS)
			return (-1);
		/* The supervisor is gone: fall back to stderr. */
		log_sink = -1;
		fprintf(stderr, "%s: %s\n", log_procname, line + 1);
		return (0);
	}
}

void
vlog(int pri, const char *fmt, va_list ap)
{
	char	 line[LOG_LINE_MAX + 1];
	int	 saved_errno = errno;

	if (vsnprintf(line + 1, sizeof(line) - 1, fmt, ap) < 0)
		strlcpy(line + 1, "(unformattable log message)",
		    sizeof(line) - 1);

	if (log_sink != -1) {
		if (log_dropped > 0) {
			char	 note[96];

			note[0] = LOG_WARNING;
			(void)snprintf(note + 1, sizeof(note) - 1, "%llu log "
			    "lines dropped: the supervisor did not keep up",
			    log_dropped);
			if (log_send(note) == 0)
				log_dropped = 0;
		}
		line[0] = (char)pri;
		if (log_dropped > 0 || log_send(line) == -1)
			log_dropped++;
	} else
		log_write(pri, log_procname, line + 1, 0);

	errno = saved_errno;
}

/*
 * From a signal handler: one line as it is, to the supervisor or to
 * stderr, with nothing that is not async-signal-safe.
 */
void
log_sigsafe(int pri, const char *msg)
{
	char	 line[LOG_LINE_MAX + 1];
	size_t	 len;

	line[0] = (char)pri;
	len = strlcpy(line + 1, msg, sizeof(line) - 1);
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	if (log_sink != -1)
		(void)send(log_sink, line, 1 + len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	else {
		line[1 + len] = '\n';
		(void)write(STDERR_FILENO, line + 1, len + 1);
	}
}

void
logit(int pri, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(pri, fmt, ap);
	va_end(ap);
}

static void
vlog_errno(int pri, int code, const char *emsg, va_list ap)
{
	char	 fmt[LOG_LINE_MAX];

	int	 n;

	if (emsg == NULL) {
		logit(pri, "%s", strerror(code));
		return;
	}
	/* The message is a format: append the error to it, not to its output. */
	n = snprintf(fmt, sizeof(fmt), "%s: %s", emsg, strerror(code));
	vlog(pri, n < 0 || (size_t)n >= sizeof(fmt) ? emsg : fmt, ap);
}

void
log_warn(const char *emsg, ...)
{
	va_list	 ap;
	int	 saved_errno = errno;

	va_start(ap, emsg);
	vlog_errno(LOG_ERR, saved_errno, emsg, ap);
	va_end(ap);
	errno = saved_errno;
}

void
log_warnx(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vlog(LOG_ERR, emsg, ap);
	va_end(ap);
}

void
log_info(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vlog(LOG_INFO, emsg, ap);
	va_end(ap);
}

void
log_debug(const char *emsg, ...)
{
	va_list	 ap;

	if (log_verbose) {
		va_start(ap, emsg);
		vlog(LOG_DEBUG, emsg, ap);
		va_end(ap);
	}
}

static void
vfatalc(int code, const char *emsg, va_list ap)
{
	char		 s[LOG_LINE_MAX];
	const char	*sep = "";

	if (emsg != NULL) {
		(void)vsnprintf(s, sizeof(s), emsg, ap);
		sep = ": ";
	} else
		s[0] = '\0';
	if (code)
		logit(LOG_CRIT, "fatal in %s: %s%s%s", log_procname, s, sep,
		    strerror(code));
	else
		logit(LOG_CRIT, "fatal in %s%s%s", log_procname, sep, s);
}

void
fatal(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vfatalc(errno, emsg, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vfatalc(0, emsg, ap);
	va_end(ap);
	exit(1);
}
