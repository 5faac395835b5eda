/*
 * Backoff after failed logins: a red-black tree of keys, for lookups in
 * O(log n), and a list of the same entries from least to most recently
 * active, for eviction and expiry in O(1).  No call walks the table: an
 * attacker who sends a new key every time costs each call one lookup,
 * one eviction and one insertion.  A tree rather than a hash table,
 * because the keys are the attacker's: no hash to collide on.
 *
 * An entry is 152 bytes on LP64 (the tree's links 32, the list's 16, two
 * times 16, the count 4, the key RATELIMIT_KEY_MAX with padding) plus
 * malloc's overhead: max_keys 100000 is some 17 MB.  An evicted entry is
 * reused for the key that pushed it out.
 *
 * A key longer than RATELIMIT_KEY_MAX - 1 bytes is cut: keys that share
 * their first bytes share one entry, which can only slow them down.
 */

#include <sys/types.h>
#include <sys/queue.h>
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif
#include <sys/tree.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

struct rl_entry {
	RB_ENTRY(rl_entry)	 tree;
	TAILQ_ENTRY(rl_entry)	 lru;
	time_t			 until;		/* refused before this */
	time_t			 last;		/* last attempt or failure */
	unsigned int		 failures;	/* consecutive */
	char			 key[RATELIMIT_KEY_MAX];
};
RB_HEAD(rl_tree, rl_entry);
TAILQ_HEAD(rl_lru, rl_entry);

struct ratelimit {
	struct rl_tree		 tree;
	struct rl_lru		 lru;		/* oldest activity first */
	size_t			 count;
	size_t			 max_keys;
	unsigned int		 free_failures;
	unsigned int		 max_delay;
	time_t			 idle;		/* forgotten after this long */
};

static int
rl_cmp(struct rl_entry *a, struct rl_entry *b)
{
	return (strcmp(a->key, b->key));
}

RB_GENERATE_STATIC(rl_tree, rl_entry, tree, rl_cmp)

struct ratelimit *
ratelimit_new(size_t max_keys, unsigned int free_failures,
    unsigned int max_delay)
{
	struct ratelimit	*rl;

	if (max_keys == 0 || (rl = calloc(1, sizeof(*rl))) == NULL)
		return (NULL);
	RB_INIT(&rl->tree);
	TAILQ_INIT(&rl->lru);
	rl->max_keys = max_keys;
	rl->free_failures = free_failures;
	rl->max_delay = max_delay;
	rl->idle = (time_t)max_delay + RATELIMIT_IDLE;
	return (rl);
}

static void
rl_remove(struct ratelimit *rl, struct rl_entry *e)
{
	RB_REMOVE(rl_tree, &rl->tree, e);
	TAILQ_REMOVE(&rl->lru, e, lru);
	rl->count--;
}

static struct rl_entry *
rl_find(struct ratelimit *rl, const char *key)
{
	struct rl_entry	 k;

	(void)strlcpy(k.key, key, sizeof(k.key));
	return (RB_FIND(rl_tree, &rl->tree, &k));
}

/*
 * Forget the entries idle past rl->idle: they are at the head of the
 * list.  Amortised O(1): each entry leaves once.  An entry that idle
 * waits for nothing, since its delay was at most max_delay.
 */
static void
rl_expire(struct ratelimit *rl, time_t now)
{
	struct rl_entry	*e;

	while ((e = TAILQ_FIRST(&rl->lru)) != NULL && now > e->last &&
	    now - e->last > rl->idle) {
		rl_remove(rl, e);
		free(e);
	}
}

/* The entry of a key not in the table, taken from the oldest if full. */
static struct rl_entry *
rl_new(struct ratelimit *rl, const char *key)
{
	struct rl_entry	*e = NULL;

	if (rl->count < rl->max_keys)
		e = malloc(sizeof(*e));
	if (e == NULL) {
		/* Full, or out of memory: the least recently active goes. */
		if ((e = TAILQ_FIRST(&rl->lru)) == NULL)
			return (NULL);
		rl_remove(rl, e);
	}
	memset(e, 0, sizeof(*e));
	(void)strlcpy(e->key, key, sizeof(e->key));
	RB_INSERT(rl_tree, &rl->tree, e);
	TAILQ_INSERT_TAIL(&rl->lru, e, lru);
	rl->count++;
	return (e);
}

static void
rl_touch(struct ratelimit *rl, struct rl_entry *e, time_t now)
{
	e->last = now;
	TAILQ_REMOVE(&rl->lru, e, lru);
	TAILQ_INSERT_TAIL(&rl->lru, e, lru);
}

int
ratelimit_check(struct ratelimit *rl, const char *key, time_t now,
    unsigned int *retry_after)
{
	struct rl_entry	*e;
	time_t		 wait;

	rl_expire(rl, now);
	if ((e = rl_find(rl, key)) == NULL)
		return (0);
	/* An attempt, refused or not, keeps the key from eviction. */
	rl_touch(rl, e, now);
	if (now >= e->until)
		return (0);
	wait = e->until - now;
	if (retry_after != NULL)
		*retry_after = wait > UINT_MAX ? UINT_MAX : (unsigned int)wait;
	return (-1);
}

void
ratelimit_fail(struct ratelimit *rl, const char *key, time_t now)
{
	struct rl_entry	*e;
	unsigned int	 n, delay;

	rl_expire(rl, now);
	if ((e = rl_find(rl, key)) != NULL)
		rl_touch(rl, e, now);
	else if ((e = rl_new(rl, key)) != NULL)
		e->last = now;
	else
		return;
	if (e->failures < UINT_MAX)
		e->failures++;
	if (e->failures <= rl->free_failures)
		return;

	/* The first failure past the free ones waits 1 s, and each 2x. */
	n = e->failures - rl->free_failures - 1;
	delay = n >= sizeof(delay) * CHAR_BIT - 1 ? rl->max_delay : 1U << n;
	if (delay > rl->max_delay)
		delay = rl->max_delay;
	e->until = now + delay;
}

void
ratelimit_success(struct ratelimit *rl, const char *key)
{
	struct rl_entry	*e;

	if ((e = rl_find(rl, key)) != NULL) {
		rl_remove(rl, e);
		free(e);
	}
}

size_t
ratelimit_count(const struct ratelimit *rl)
{
	return (rl->count);
}

void
ratelimit_free(struct ratelimit *rl)
{
	struct rl_entry	*e;

	if (rl == NULL)
		return;
	while ((e = TAILQ_FIRST(&rl->lru)) != NULL) {
		TAILQ_REMOVE(&rl->lru, e, lru);
		free(e);
	}
	free(rl);
}
