/*
 * Backoff after failed logins, per key: "user:alice", "addr:192.0.2.1",
 * or for IPv6 the /64, "addr:2001:db8:1:2::/64".
 *
 * After free_failures consecutive failures, each further failure makes
 * the key wait 1, 2, 4, ... seconds, at most max_delay, before its next
 * attempt.  A success forgets the key.  At most max_keys keys are kept:
 * a new key pushes out the one idle longest.
 */

#ifndef MEZITE_RATELIMIT_H
#define MEZITE_RATELIMIT_H

#include <stddef.h>
#include <time.h>

#define RATELIMIT_KEY_MAX	80	/* bytes kept of a key, NUL included */
#define RATELIMIT_IDLE		(15 * 60) /* forgotten after max_delay + this */

struct ratelimit;

/* NULL on failure, or if max_keys is 0. */
struct ratelimit *ratelimit_new(size_t, unsigned int, unsigned int);

/*
 * 0 if an attempt for key may go on at now; -1 if not, with the seconds
 * to wait in *retry_after (if not NULL).  A refused attempt is no
 * failure: it never reached the password.
 */
int	 ratelimit_check(struct ratelimit *, const char *, time_t,
	    unsigned int *);
void	 ratelimit_fail(struct ratelimit *, const char *, time_t);
void	 ratelimit_success(struct ratelimit *, const char *);
size_t	 ratelimit_count(const struct ratelimit *);
void	 ratelimit_free(struct ratelimit *);

#endif /* MEZITE_RATELIMIT_H */
