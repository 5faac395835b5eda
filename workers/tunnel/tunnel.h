/*
 * The tunnel worker: agents' reverse tunnels (tunnel.proto), and the
 * streams to nodes it opens for other processes.
 *
 * session.c speaks HTTP/2 to the agents, as the client; tunnel.c is the
 * process: the registry of nodes, the dial requests, and the messages
 * to and from the supervisor.
 */

#ifndef MEZITE_TUNNEL_H
#define MEZITE_TUNNEL_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>

#include "meta.h"
#include "proc.h"
#include "tunnel.pb-c.h"

#define TUNNEL_KEEPALIVE	15	/* seconds between pings, default */
#define TUNNEL_KEEPALIVE_TIMEOUT 45	/* seconds of silence, default */
#define TUNNEL_DIAL_TIMEOUT	10	/* seconds for the agent to answer */
#define TUNNEL_STREAMS_MAX	1024	/* streams per session */
#define TUNNEL_STREAMS_TOTAL	16384	/* streams in the worker */
#define TUNNEL_HELLO_MAX	(64 * 1024)	/* a Hello's body */
#define TUNNEL_LABELS_MAX	32
#define TUNNEL_SERVICES_MAX	64
#define TUNNEL_NAME_MAX		64	/* a node's or a service's name */
#define TUNNEL_REASON_MAX	256	/* mezite-reason kept, bytes */
#define TUNNEL_CLUSTERS_MAX	64	/* trusted clusters, as mezited.conf */

struct tsession;
struct tstream;

/* A dial request on its way: answered once, then freed. */
struct tdial {
	TAILQ_ENTRY(tdial)	 entry;
	/*
	 * Where the answer goes: the supervisor's channel, which lives as
	 * long as the worker does; a channel that can close before it
	 * (another worker's) must take its dials with it.
	 */
	struct proc_chan	*chan;
	uint32_t		 peerid;	/* the asker's cookie */
	char			 node[TUNNEL_NAME_MAX + 1];
	char			 service[TUNNEL_NAME_MAX + 1];
	char			 requester[64];
	int64_t			 deadline;	/* ms, monotonic */
	struct tstream		*stream;	/* NULL once answered */
};

struct tunnel_cb {
	/* The Hello came and is valid: -1 refuses the session. */
	int	(*online)(struct tsession *);
	/* The session is gone; it was online if online() took it. */
	void	(*offline)(struct tsession *);
	/* The session's descriptor is closed. */
	void	(*closed)(const Mezite__ConnMeta *);
	/* A dial's answer; fd is the stream (DIAL_OK) or -1. */
	void	(*answer)(struct tdial *, Mezite__DialError, const char *,
		    int);
};

struct tunnel_limits {
	unsigned int	 keepalive;		/* seconds */
	unsigned int	 keepalive_timeout;	/* seconds */
};

/* session.c */
void		 session_init(const struct tunnel_limits *,
		    const struct tunnel_cb *);
struct tsession	*session_accept(int, Mezite__ConnMeta *, int);
int		 session_dial(struct tsession *, struct tdial *);
void		 session_cancel(struct tdial *);
void		 session_goaway(struct tsession *, const char *);
void		 session_end(struct tsession *, const char *);
void		 session_tick(void);
void		 session_drain(void);
unsigned int	 session_count(void);
unsigned int	 session_streams_total(void);
/* What a session is, as the registry sees it. */
const char	*session_name(const struct tsession *);
const char	*session_key(const struct tsession *);
uint64_t	 session_id(const struct tsession *);
int		 session_cluster(const struct tsession *);
const Mezite__Tunnel__V1__Hello *session_hello(const struct tsession *);
const Mezite__ConnMeta *session_meta(const struct tsession *);
void		 session_counters(const struct tsession *, uint32_t *,
		    uint64_t *, uint64_t *);
int64_t		 session_since(const struct tsession *);
int		 hello_valid(const Mezite__Tunnel__V1__Hello *, char *,
		    size_t);
int		 name_valid(const char *);

/* tunnel.c */
__dead void	 tunnel(unsigned int, const char *, const char *);

#endif /* MEZITE_TUNNEL_H */
