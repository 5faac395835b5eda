/*
 * Connections by their source: the client's address, an IPv4 address
 * (/32) or an IPv6 /64, an IPv4-mapped IPv6 address counting as the
 * IPv4 one.
 *
 * Each source has a count of its connections, limited by "max
 * connections per source", and a token bucket for new ones, limited by
 * "max connection rate N per source": it holds one second's worth of
 * tokens and fills at N a second.  A source is remembered while it has
 * connections and, once it has none, until its bucket is full again; of
 * those without connections at most SOURCE_IDLE_MAX are kept, the least
 * recently seen forgotten first (forgetting one only gives it a full
 * bucket).  The table is so never larger than the connections plus
 * SOURCE_IDLE_MAX.
 *
 * For load shedding, the connections still in their handshake are kept
 * in order of arrival, both in all and per source, and the sources by
 * how many such connections each has (lists per count, as an LFU cache
 * keeps them), so that finding the source with the most handshakes and
 * its oldest is constant work.
 *
 * The accounting reads nothing but c->peer, once it is the client's:
 * source_add() is called at accept for a client that connects itself,
 * and by conn_set_peer() for a balancer's once its PROXY header has
 * named the client.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "master.h"
#include "util.h"

#define SOURCE_IDLE_MAX		4096	/* remembered without a connection */
#define SOURCE_LOG_EVERY	10000	/* ms between two lines about a source */
#define SOURCE_LOG_MAX		20	/* such lines a second, in all */
#define SHED_AGE_MS		2000	/* a handshake this old may be shed */

struct source {
	RB_ENTRY(source)	 node;
	TAILQ_ENTRY(source)	 idle;		/* no connection: LRU */
	TAILQ_ENTRY(source)	 bycount;	/* in hscount[nhs] */
	struct conns_hs		 hs;		/* in handshake, oldest first */
	sa_family_t		 family;
	uint8_t			 addr[16];	/* masked */
	unsigned int		 nconns;
	unsigned int		 nhs;
	int64_t			 tokens;	/* thousandths */
	int64_t			 filled;	/* ms, when tokens was right */
	int64_t			 logged;	/* ms */
	uint64_t		 refused;	/* since the last line */
};
RB_HEAD(source_tree, source);
TAILQ_HEAD(sources, source);

static int	 source_cmp(struct source *, struct source *);
static int	 source_key(const struct sockaddr_storage *, struct source *);
static void	 source_refill(struct source *, int64_t);
static void	 source_forget(struct source *);
static void	 source_refused(struct source *, const char *, int64_t);
static void	 hs_count(struct source *, int);

RB_GENERATE_STATIC(source_tree, source, node, source_cmp)

struct source_stats		 sstats;

static struct source_tree	 sources = RB_INITIALIZER(&sources);
static struct sources		 idle = TAILQ_HEAD_INITIALIZER(idle);
static unsigned int		 nidle;
static struct conns_hs		 handshakes = TAILQ_HEAD_INITIALIZER(handshakes);
static struct sources		*hscount;	/* [n]: sources with n */
static unsigned int		 nhscount;	/* allocated */
static unsigned int		 hsmax;		/* highest n with a source */
static unsigned int		 max_per_source = MAX_CONN_PER_SOURCE;
static unsigned int		 rate_per_source = CONN_RATE_PER_SOURCE;
static unsigned int		 log_lines;	/* this second */
static uint64_t			 log_skipped;

static int
source_cmp(struct source *a, struct source *b)
{
	if (a->family != b->family)
		return (a->family < b->family ? -1 : 1);
	return (memcmp(a->addr, b->addr, sizeof(a->addr)));
}

/* The key of an address: -1 for one that is neither IPv4 nor IPv6. */
static int
source_key(const struct sockaddr_storage *ss, struct source *key)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	memset(key->addr, 0, sizeof(key->addr));
	switch (ss->ss_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)ss;
		key->family = AF_INET;
		memcpy(key->addr, &sin->sin_addr, sizeof(sin->sin_addr));
		return (0);
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			key->family = AF_INET;
			memcpy(key->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			key->family = AF_INET6;
			memcpy(key->addr, &sin6->sin6_addr, 8);	/* /64 */
		}
		return (0);
	default:
		return (-1);
	}
}

void
source_limits(unsigned int per_source, unsigned int rate)
{
	max_per_source = per_source;
	rate_per_source = rate;
}

static void
source_refill(struct source *s, int64_t now)
{
	int64_t	 full = (int64_t)rate_per_source * 1000;

	if (now > s->filled) {
		s->tokens += (now - s->filled) * rate_per_source;
		s->filled = now;
	}
	if (s->tokens > full)
		s->tokens = full;
}

static void
source_forget(struct source *s)
{
	TAILQ_REMOVE(&idle, s, idle);
	nidle--;
	RB_REMOVE(source_tree, &sources, s);
	sstats.sources--;
	free(s);
}

/* A line about a refused connection, at most one per source and interval. */
static void
source_refused(struct source *s, const char *why, int64_t now)
{
	char	 host[ADDRSTRLEN];

	s->refused++;
	if (s->logged != 0 && now - s->logged < SOURCE_LOG_EVERY)
		return;
	if (log_lines >= SOURCE_LOG_MAX) {
		log_skipped++;
		return;
	}
	log_lines++;
	s->logged = now;
	memset(host, 0, sizeof(host));
	if (s->family == AF_INET)
		(void)snprintf(host, sizeof(host), "%u.%u.%u.%u",
		    s->addr[0], s->addr[1], s->addr[2], s->addr[3]);
	else
		(void)snprintf(host, sizeof(host), "%x:%x:%x:%x::/64",
		    s->addr[0] << 8 | s->addr[1], s->addr[2] << 8 | s->addr[3],
		    s->addr[4] << 8 | s->addr[5], s->addr[6] << 8 | s->addr[7]);
	log_warnx("source %s: %llu connections refused: %s (%u open)", host,
	    (unsigned long long)s->refused, why, s->nconns);
	s->refused = 0;
}

/*
 * Move a source from one count of handshakes to the next.  The lists'
 * heads move when the array grows, so they are then built again.
 */
static void
hs_count(struct source *s, int delta)
{
	struct sources	*n;
	struct source	*t;
	unsigned int	 i;

	if (s->nhs > 0)
		TAILQ_REMOVE(&hscount[s->nhs], s, bycount);
	s->nhs += delta;
	if (s->nhs >= nhscount) {
		i = nhscount == 0 ? 64 : nhscount * 2;
		if ((n = reallocarray(hscount, i, sizeof(*n))) == NULL)
			fatal(__func__);
		hscount = n;
		nhscount = i;
		for (i = 0; i < nhscount; i++)
			TAILQ_INIT(&hscount[i]);
		RB_FOREACH(t, source_tree, &sources)
			if (t->nhs > 0 && t != s)
				TAILQ_INSERT_TAIL(&hscount[t->nhs], t, bycount);
	}
	if (s->nhs > 0)
		TAILQ_INSERT_TAIL(&hscount[s->nhs], s, bycount);
	if (s->nhs > hsmax)
		hsmax = s->nhs;
	while (hsmax > 0 && TAILQ_EMPTY(&hscount[hsmax]))
		hsmax--;
}

/*
 * Count a new connection against its source: 0, or SOURCE_OVER_CONNS or
 * SOURCE_OVER_RATE, and then the caller closes it and it is not counted.
 */
int
source_add(struct conn *c, int64_t now)
{
	struct source	 key, *s;

	if (source_key(&c->peer, &key) == -1)
		return (0);		/* not a network address */
	if ((s = RB_FIND(source_tree, &sources, &key)) == NULL) {
		if (nidle >= SOURCE_IDLE_MAX)
			source_forget(TAILQ_FIRST(&idle));
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			log_warn(__func__);
			return (0);	/* let it in uncounted */
		}
		s->family = key.family;
		memcpy(s->addr, key.addr, sizeof(s->addr));
		s->tokens = (int64_t)rate_per_source * 1000;
		s->filled = now;
		TAILQ_INIT(&s->hs);
		RB_INSERT(source_tree, &sources, s);
		TAILQ_INSERT_TAIL(&idle, s, idle);
		nidle++;
		sstats.sources++;
	} else if (s->nconns == 0) {
		/* Seen again: the last to forget. */
		TAILQ_REMOVE(&idle, s, idle);
		TAILQ_INSERT_TAIL(&idle, s, idle);
	}
	source_refill(s, now);
	if (s->nconns >= max_per_source) {
		sstats.refused_conns++;
		source_refused(s, "max connections per source reached", now);
		return (SOURCE_OVER_CONNS);
	}
	if (s->tokens < 1000) {
		sstats.refused_rate++;
		source_refused(s, "max connection rate per source reached",
		    now);
		return (SOURCE_OVER_RATE);
	}
	s->tokens -= 1000;
	if (s->nconns++ == 0) {
		TAILQ_REMOVE(&idle, s, idle);
		nidle--;
	}
	c->src = s;
	if (c->state == CONN_HANDSHAKE) {
		c->hs_since = now;
		TAILQ_INSERT_TAIL(&handshakes, c, hs_all);
		TAILQ_INSERT_TAIL(&s->hs, c, hs_src);
		c->hs_queued = 1;
		hs_count(s, 1);
	}
	return (0);
}

/* The connection's handshake is over, or it is. */
void
source_handshake_done(struct conn *c)
{
	if (!c->hs_queued)
		return;
	TAILQ_REMOVE(&handshakes, c, hs_all);
	TAILQ_REMOVE(&c->src->hs, c, hs_src);
	c->hs_queued = 0;
	hs_count(c->src, -1);
}

void
source_del(struct conn *c)
{
	struct source	*s = c->src;

	if (s == NULL)
		return;
	source_handshake_done(c);
	c->src = NULL;
	if (--s->nconns == 0) {
		TAILQ_INSERT_TAIL(&idle, s, idle);
		nidle++;
	}
}

/*
 * With every slot taken, which connection should give way to c, just
 * accepted: another, c itself, or NULL for none, and then c waits with
 * the listeners paused.  In order:
 *
 * 1. The oldest handshake of the source with the most handshakes, if
 *    that source holds more of them than c's source even counting c:
 *    a source holding many never keeps one with few out.
 * 2. c, if its source holds more than half of max connections in their
 *    handshake: with any other client about, that is more than its
 *    share, and refusing the newcomer costs least.
 * 3. The oldest handshake of all, if it has lasted SHED_AGE_MS: a
 *    client's handshake takes milliseconds, and one that has waited
 *    this long for its client is more likely an attack's than a slow
 *    client's.
 *
 * A new connection never gives way to a handshake just begun of its
 * own source, so the clients of a single busy address wait in the
 * listen queue, as they did before.
 */
struct conn *
source_victim(struct conn *c, int64_t now, unsigned int max)
{
	struct source	*top;
	struct conn	*v;

	if (c->src != NULL && hsmax > 0) {
		top = TAILQ_FIRST(&hscount[hsmax]);
		if (top != c->src && top->nhs > c->src->nhs &&
		    (v = TAILQ_FIRST(&top->hs)) != NULL)
			return (v);
		if (c->src->nhs > max / 2)
			return (c);
	}
	if ((v = TAILQ_FIRST(&handshakes)) != NULL && v != c &&
	    now - v->hs_since >= SHED_AGE_MS)
		return (v);
	return (NULL);
}

/* Whether a connection accepted now would find one to give way to it. */
int
source_sheddable(int64_t now, unsigned int max)
{
	struct conn	*v;

	return (hsmax > max / 2 ||
	    ((v = TAILQ_FIRST(&handshakes)) != NULL &&
	    now - v->hs_since >= SHED_AGE_MS));
}

/*
 * Once a second: forget the sources without a connection whose buckets
 * are full again and that were not named in the log a moment ago.
 */
void
source_tick(int64_t now)
{
	struct source	*s, *ts;

	TAILQ_FOREACH_SAFE(s, &idle, idle, ts) {
		source_refill(s, now);
		if (s->tokens >= (int64_t)rate_per_source * 1000 &&
		    (s->logged == 0 || now - s->logged >= SOURCE_LOG_EVERY))
			source_forget(s);
	}
	if (log_skipped > 0)
		log_warnx("%llu more connections refused by the per-source "
		    "limits", (unsigned long long)log_skipped);
	log_skipped = 0;
	log_lines = 0;
}
