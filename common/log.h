/*
 * Logging: stderr in the foreground, syslog otherwise.  Children send
 * their lines to the supervisor, which writes them out; a child therefore
 * needs no /dev/log in its chroot.
 */

#ifndef MEZITE_LOG_H
#define MEZITE_LOG_H

#include <stdarg.h>

void	 log_init(int, int);
void	 log_procinit(const char *);
void	 log_setsink(int);
void	 log_setverbose(int);
int	 log_getverbose(void);
void	 logit(int, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	 vlog(int, const char *, va_list)
	    __attribute__((__format__ (printf, 2, 0)));
void	 log_warn(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_warnx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_info(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_debug(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2), __noreturn__));
void	 fatalx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2), __noreturn__));

/* One line from a signal handler. */
void	 log_sigsafe(int, const char *);

/* Write one line received from a child's sink. */
void	 log_relay(int, const char *, const char *, int);

#endif /* MEZITE_LOG_H */
