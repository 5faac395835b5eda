/*
 * Small helpers shared by every Mezite program.
 */

#ifndef MEZITE_UTIL_H
#define MEZITE_UTIL_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>

#define ADDRSTRLEN	(46 + 8)	/* "[v6]:port" */

int		 fd_nonblock(int);
const char	*addr_str(const struct sockaddr *, char *, size_t);
const char	*addr_host(const struct sockaddr *, char *, size_t);
int		 addr_port(const struct sockaddr *);
int64_t		 time_now(void);
int64_t		 time_mono(void);
const char	*fmt_duration(int64_t, char *, size_t);
const char	*fmt_bytes(uint64_t, char *, size_t);

#endif /* MEZITE_UTIL_H */
