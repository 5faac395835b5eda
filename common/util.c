/*
 * Small helpers shared by every Mezite program.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

int
fd_nonblock(int fd)
{
	int	 flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return (-1);
	if (flags & O_NONBLOCK)
		return (0);
	return (fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}

/* The host part of an address, "?" if it cannot be shown. */
const char *
addr_host(const struct sockaddr *sa, char *buf, size_t len)
{
	const void	*a;

	switch (sa->sa_family) {
	case AF_INET:
		a = &((const struct sockaddr_in *)sa)->sin_addr;
		break;
	case AF_INET6:
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		break;
	case AF_UNIX:
		strlcpy(buf, "local", len);
		return (buf);
	default:
		strlcpy(buf, "?", len);
		return (buf);
	}
	if (inet_ntop(sa->sa_family, a, buf, len) == NULL)
		strlcpy(buf, "?", len);
	return (buf);
}

int
addr_port(const struct sockaddr *sa)
{
	switch (sa->sa_family) {
	case AF_INET:
		return (ntohs(((const struct sockaddr_in *)sa)->sin_port));
	case AF_INET6:
		return (ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	default:
		return (0);
	}
}

/* "192.0.2.1:443" or "[2001:db8::1]:443". */
const char *
addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char	 host[ADDRSTRLEN];

	addr_host(sa, host, sizeof(host));
	if (sa->sa_family == AF_INET6)
		(void)snprintf(buf, len, "[%s]:%d", host, addr_port(sa));
	else if (sa->sa_family == AF_INET)
		(void)snprintf(buf, len, "%s:%d", host, addr_port(sa));
	else
		strlcpy(buf, host, len);
	return (buf);
}

int64_t
time_now(void)
{
	return ((int64_t)time(NULL));
}

/* Seconds on a clock that no one sets: for intervals. */
int64_t
time_mono(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((int64_t)ts.tv_sec);
}

/* "3d04h", "2h05m", "4m07s", "9s". */
const char *
fmt_duration(int64_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		(void)snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h",
		    secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		(void)snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m",
		    secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		(void)snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s",
		    secs / 60, secs % 60);
	else
		(void)snprintf(buf, len, "%" PRId64 "s", secs);
	return (buf);
}

/* "812B", "3.4K", "12.0M", "1.2G". */
const char *
fmt_bytes(uint64_t n, char *buf, size_t len)
{
	const char	*units = "KMGTPE";
	double		 v = (double)n;
	int		 i = -1;

	if (n < 1024) {
		(void)snprintf(buf, len, "%" PRIu64 "B", n);
		return (buf);
	}
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	(void)snprintf(buf, len, "%.1f%c", v, units[i]);
	return (buf);
}
