/*
 * The tunnel worker: agents' reverse tunnels.
 *
 * Agents (mezd) connect with ALPN mezite-tunnel and their host
 * certificate; the master hands the session over and this worker speaks
 * tunnel.proto on it (session.c).  A node whose Hello came is online:
 * the registry maps its name to its session, and other processes ask
 * for streams to its services (IMSG_TUNNEL_DIAL), which come back as
 * one end of a socket pair.
 *
 * One worker holds the registry (TUNNEL_PREFORK is 1): a dial goes to
 * the worker that has the node, and the supervisor asks each in turn
 * when there are more.
 *
 * The registry says online and offline to the supervisor
 * (IMSG_NODE_STATE), which tells the auth workers, and again all that
 * is online when the supervisor asks (IMSG_NODE_RESYNC).  Nodes that
 * went offline are remembered (TUNNEL_OFFLINE_MAX of them, the oldest
 * forgotten first), so that a dial can say "offline" rather than "no
 * such node".
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

/* libbsd's sys/tree.h marks what RB_GENERATE_STATIC makes __unused. */
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif
#include <sys/tree.h>

#include <errno.h>
#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "tunnel.h"

#define TUNNEL_TICK		1	/* seconds */
#define TUNNEL_OFFLINE_MAX	4096	/* offline nodes remembered */
#define TUNNEL_DIALS_MAX	4096	/* dials waiting for an answer */
#define NODES_PART		(12 * 1024)	/* a NodeList's part */

/* A node the registry knows: online with its session, or offline. */
struct node {
	TAILQ_ENTRY(node)	 entry;		/* in the order they came */
	RB_ENTRY(node)		 byname;	/* by kind, then name */
	struct tsession		*session;	/* NULL: offline */
	Mezite__NodeState	*state;		/* unpacked: owns its strings */
};
TAILQ_HEAD(nodes, node);
RB_HEAD(node_tree, node);

/*
 * The nodes online, or those offline: in the order they came there (the
 * oldest offline one is forgotten first), and by name, so that a
 * registration or a dial among tens of thousands of nodes costs a
 * lookup, not a walk.
 */
struct registry {
	struct nodes		 list;
	struct node_tree	 tree;
};

static int
node_cmp(struct node *a, struct node *b)
{
	int	 c;

	if ((c = strcmp(a->state->kind, b->state->kind)) != 0)
		return (c);
	return (strcmp(a->state->name, b->state->name));
}

RB_GENERATE_STATIC(node_tree, node, byname, node_cmp)

static void	 tunnel_configure(const Mezite__WorkerConfig *);
static void	 tunnel_watch(struct proc_chan *);
static void	 tunnel_unwatch(struct proc_chan *);
static void	 tunnel_handoff(int, Mezite__ConnMeta *);
static void	 tunnel_status(const Mezite__Status *);
static void	 tunnel_drain(void);
static void	 tunnel_tick(int, short, void *);
static int	 tunnel_dial(struct proc_chan *, struct imsg *, void *);
static int	 tunnel_resync(struct proc_chan *, struct imsg *, void *);
static int	 tunnel_show_nodes(struct proc_chan *, struct imsg *, void *);
static int	 node_online(struct tsession *);
static void	 node_offline(struct tsession *);
static void	 dial_answer(struct tdial *, Mezite__DialError, const char *,
		    int);
static void	 dial_reply(struct proc_chan *, uint32_t, Mezite__DialError,
		    const char *, int);
static void	 session_closed(const Mezite__ConnMeta *);
static void	 node_send(struct node *);
static void	 node_free(struct node *);

static const struct proc_msg tunnel_parent_msgs[] = {
	{ IMSG_TUNNEL_DIAL, PROC_LEN_PB, &mezite__dial_request__descriptor,
	    PROC_FD_NONE, tunnel_dial },
	{ IMSG_NODE_RESYNC, 0, NULL, PROC_FD_NONE, tunnel_resync },
	{ IMSG_CTL_SHOW_NODES, 0, NULL, PROC_FD_NONE, tunnel_show_nodes },
};

static const struct worker_cb tunnel_wcb = {
	.configure = tunnel_configure,
	.watch = tunnel_watch,
	.unwatch = tunnel_unwatch,
	.handoff = tunnel_handoff,
	.status = tunnel_status,
	.drain = tunnel_drain,
	.parent_msgs = tunnel_parent_msgs,
	.nparent_msgs = nitems(tunnel_parent_msgs),
};

static const struct tunnel_cb tunnel_scb = {
	.online = node_online,
	.offline = node_offline,
	.closed = session_closed,
	.answer = dial_answer,
};

static struct tunnel_limits	 limits;
static struct registry		 online = {
	TAILQ_HEAD_INITIALIZER(online.list), RB_INITIALIZER(&online.tree)
};
static struct registry		 offline = {
	TAILQ_HEAD_INITIALIZER(offline.list), RB_INITIALIZER(&offline.tree)
};
static unsigned int		 noffline;
static TAILQ_HEAD(, tdial)	 dials = TAILQ_HEAD_INITIALIZER(dials);
static unsigned int		 ndials;
static struct event		 tickev;
static int			 configured;
static int			 draining;
static int			 cluster_ok;	/* trusted clusters are set */
static char			 clusters[TUNNEL_CLUSTERS_MAX][TUNNEL_NAME_MAX + 1];
static size_t			 nclusters;
static char			 wname[32];

__dead void
tunnel(unsigned int instance, const char *user, const char *root)
{
	struct timeval	 tv = { TUNNEL_TICK, 0 };

	(void)snprintf(wname, sizeof(wname), "tunnel.%u", instance);
	event_init();
	worker_init(PROC_TUNNEL, instance, user, root, &tunnel_wcb);
	evtimer_set(&tickev, tunnel_tick, NULL);
	evtimer_add(&tickev, &tv);
	event_dispatch();
	fatalx("event loop ended");
}

static void
tunnel_configure(const Mezite__WorkerConfig *wc)
{
	size_t	 i;

	limits.keepalive = wc->keepalive ? wc->keepalive : TUNNEL_KEEPALIVE;
	limits.keepalive_timeout = wc->keepalive_timeout ?
	    wc->keepalive_timeout : TUNNEL_KEEPALIVE_TIMEOUT;
	/*
	 * The master verifies a cluster tunnel's certificate chain
	 * against the trusted clusters' CAs (the supervisor adds them to
	 * its client CAs); without any, no cluster may connect.
	 */
	cluster_ok = wc->n_trusted_clusters > 0;
	for (i = 0; i < wc->n_trusted_clusters && i < nitems(clusters); i++)
		if (strlcpy(clusters[i], wc->trusted_clusters[i],
		    sizeof(clusters[i])) >= sizeof(clusters[i]))
			fatalx("trusted cluster %s: name too long",
			    wc->trusted_clusters[i]);
	nclusters = i;
	session_init(&limits, &tunnel_scb);
	sandbox_tunnel();
	configured = 1;
	log_debug("serving, keepalive %u, timeout %u", limits.keepalive,
	    limits.keepalive_timeout);
}

static int
cluster_trusted(const char *name)
{
	size_t	 i;

	for (i = 0; i < nclusters; i++)
		if (strcmp(clusters[i], name) == 0)
			return (1);
	return (0);
}

static void
tunnel_watch(struct proc_chan *ch)
{
	proc_chan_event_watch(ch);
}

static void
tunnel_unwatch(struct proc_chan *ch)
{
	/* proc_chan_clear() takes the channel out of the loop. */
}

static void
tunnel_status(const Mezite__Status *st)
{
	/* The tunnel worker asks the master nothing. */
}

static void
handoff_refuse(int fd, Mezite__ConnMeta *meta, const char *why)
{
	log_warnx("tunnel %llu (%s): refused: %s",
	    (unsigned long long)meta->id, meta->cert != NULL &&
	    meta->cert->name[0] != '\0' ? meta->cert->name : "no name", why);
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS) {
		(void)ktls_close_notify(fd);
		worker_conn_done(meta->id);
	}
	close(fd);
	mezite__conn_meta__free_unpacked(meta, NULL);
}

static void
tunnel_handoff(int fd, Mezite__ConnMeta *meta)
{
	int	 cluster;

	if (draining || !configured) {
		handoff_refuse(fd, meta, "draining");
		return;
	}
	cluster = strcmp(meta->alpn, "mezite-cluster-tunnel") == 0;
	if (!cluster && strcmp(meta->alpn, "mezite-tunnel") != 0) {
		handoff_refuse(fd, meta, "not a tunnel's ALPN");
		return;
	}
	if (cluster && !cluster_ok) {
		handoff_refuse(fd, meta, "cluster tunnels are not configured");
		return;
	}
	/*
	 * The master names the certificate: a node's from the auth
	 * worker's host CA, or a trusted cluster's from that cluster's CA.
	 */
	if (meta->cert == NULL || strcmp(meta->cert->kind, cluster ?
	    "cluster" : "node") != 0 || !name_valid(meta->cert->name)) {
		handoff_refuse(fd, meta, cluster ? "no trusted cluster's "
		    "certificate" : "no node certificate");
		return;
	}
	if (cluster && !cluster_trusted(meta->cert->name)) {
		handoff_refuse(fd, meta, "not a trusted cluster");
		return;
	}
	(void)session_accept(fd, meta, cluster);
}

static void
tunnel_drain(void)
{
	if (draining)
		return;
	draining = 1;
	log_info("draining: %u tunnels told to go", session_count());
	session_drain();
}

static void
tunnel_tick(int fd, short event, void *arg)
{
	struct timeval	 tv = { TUNNEL_TICK, 0 };
	struct tdial	*d;
	int64_t		 now;

	if (worker_terminated() || draining) {
		if (session_count() == 0)
			worker_exit();
	}
	if (configured)
		session_tick();
	/*
	 * Dials the node did not answer in time.  Cancelling one may close
	 * its session, which answers other dials: look again each time.
	 */
	now = time_now() * 1000;
	for (;;) {
		TAILQ_FOREACH(d, &dials, entry)
			if (now >= d->deadline)
				break;
		if (d == NULL)
			break;
		session_cancel(d);
		dial_answer(d, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE,
		    "the node did not answer in time", -1);
	}
	evtimer_add(&tickev, &tv);
}

/* Registry */

static struct node *
node_find(struct registry *r, const char *kind, const char *name)
{
	Mezite__NodeState	 ns = MEZITE__NODE_STATE__INIT;
	struct node		 key;

	ns.kind = (char *)kind;
	ns.name = (char *)name;
	key.state = &ns;
	return (RB_FIND(node_tree, &r->tree, &key));
}

static void
node_insert(struct registry *r, struct node *n)
{
	TAILQ_INSERT_TAIL(&r->list, n, entry);
	if (RB_INSERT(node_tree, &r->tree, n) != NULL)
		fatalx("%s: node %s twice", __func__, n->state->name);
}

static void
node_remove(struct registry *r, struct node *n)
{
	TAILQ_REMOVE(&r->list, n, entry);
	RB_REMOVE(node_tree, &r->tree, n);
}

/* A node's tunnel and a cluster's may have the same name. */
static const char *
session_kind(const struct tsession *s)
{
	return (session_cluster(s) ? "cluster" : "node");
}

/*
 * The node as a NodeState of its own: built on the session's Hello,
 * packed and unpacked so that it owns its strings and outlives the
 * session.
 */
static Mezite__NodeState *
node_state(struct tsession *s)
{
	const Mezite__Tunnel__V1__Hello	*h = session_hello(s);
	const Mezite__ConnMeta		*meta = session_meta(s);
	Mezite__NodeState		 ns = MEZITE__NODE_STATE__INIT;
	Mezite__NodeState		*copy;
	Mezite__Label			 labels[TUNNEL_LABELS_MAX];
	Mezite__Label			*plabels[TUNNEL_LABELS_MAX];
	uint8_t				*buf;
	size_t				 i, len;

	ns.name = h->node;
	ns.online = 1;
	ns.since = session_since(s);
	for (i = 0; i < h->n_labels && i < TUNNEL_LABELS_MAX; i++) {
		mezite__label__init(&labels[i]);
		labels[i].key = h->labels[i]->key;
		labels[i].value = h->labels[i]->value;
		plabels[i] = &labels[i];
	}
	ns.n_labels = i;
	ns.labels = plabels;
	ns.n_services = h->n_services;
	ns.services = h->services;
	ns.version = h->version;
	ns.address = meta->client;
	ns.serial = meta->cert->serial;
	ns.worker = wname;
	ns.kind = session_cluster(s) ? "cluster" : "node";

	len = mezite__node_state__get_packed_size(&ns);
	if ((buf = malloc(len)) == NULL)
		return (NULL);
	(void)mezite__node_state__pack(&ns, buf);
	copy = mezite__node_state__unpack(NULL, len, buf);
	free(buf);
	return (copy);
}

static void
node_free(struct node *n)
{
	mezite__node_state__free_unpacked(n->state, NULL);
	free(n);
}

/* The live counters of an online node. */
static void
node_refresh(struct node *n)
{
	if (n->session != NULL)
		session_counters(n->session, &n->state->streams,
		    &n->state->bytes_in, &n->state->bytes_out);
}

static void
node_send(struct node *n)
{
	node_refresh(n);
	if (proc_compose_pb(worker_parent(), IMSG_NODE_STATE, 0, -1,
	    &n->state->base) == -1)
		log_warn("%s: compose", __func__);
}

/*
 * A node's Hello came.  A name held by another session stays with it,
 * unless the newcomer has the same key: the same agent, connected
 * again (maybe with a renewed certificate), replaces its old session,
 * which is told GOAWAY and ends when its streams have: an agent whose
 * old tunnel hangs loses it at its keepalive timeout, one that moves to
 * a renewed certificate loses no stream.
 */
static int
node_online(struct tsession *s)
{
	struct node		*n, *o;
	struct tsession		*old;
	Mezite__NodeState	*ns;
	const char		*name = session_name(s);
	const char		*key = session_key(s);

	if ((ns = node_state(s)) == NULL) {
		log_warn("tunnel %llu: node %s", (unsigned long long)
		    session_id(s), name);
		return (-1);
	}
	if ((n = node_find(&online, session_kind(s), name)) != NULL) {
		old = n->session;
		if (key[0] == '\0' || strcmp(key, session_key(old)) != 0) {
			log_warnx("tunnel %llu: node %s is held by another "
			    "key (tunnel %llu)",
			    (unsigned long long)session_id(s), name,
			    (unsigned long long)session_id(old));
			mezite__node_state__free_unpacked(ns, NULL);
			return (-1);
		}
		log_info("tunnel %llu: node %s connected again; tunnel %llu "
		    "goes", (unsigned long long)session_id(s), name,
		    (unsigned long long)session_id(old));
		/* The old session's offline() finds the node not its. */
		mezite__node_state__free_unpacked(n->state, NULL);
		n->state = ns;
		n->session = s;
		session_goaway(old, "replaced");
	} else {
		if ((n = calloc(1, sizeof(*n))) == NULL) {
			log_warn("%s", __func__);
			mezite__node_state__free_unpacked(ns, NULL);
			return (-1);
		}
		n->state = ns;
		n->session = s;
		node_insert(&online, n);
		/* Online again: it is no longer remembered offline. */
		if ((o = node_find(&offline, session_kind(s), name)) !=
		    NULL) {
			node_remove(&offline, o);
			noffline--;
			node_free(o);
		}
	}
	log_info("tunnel %llu: node %s online%s, %zu services",
	    (unsigned long long)session_id(s), name,
	    session_cluster(s) ? " (cluster)" : "",
	    session_hello(s)->n_services);
	node_send(n);
	return (0);
}

/* The node's session went: it is remembered offline. */
static void
node_offline(struct tsession *s)
{
	struct node	*n, *o;

	if ((n = node_find(&online, session_kind(s), session_name(s))) ==
	    NULL ||
	    n->session != s)
		return;		/* replaced */
	node_refresh(n);
	node_remove(&online, n);
	n->session = NULL;
	n->state->online = 0;
	n->state->since = time_now();
	n->state->streams = 0;
	log_info("tunnel %llu: node %s offline",
	    (unsigned long long)session_id(s), n->state->name);
	node_send(n);
	if (noffline >= TUNNEL_OFFLINE_MAX &&
	    (o = TAILQ_FIRST(&offline.list)) != NULL) {
		node_remove(&offline, o);
		noffline--;
		node_free(o);
	}
	node_insert(&offline, n);
	noffline++;
}

static void
session_closed(const Mezite__ConnMeta *meta)
{
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS)
		worker_conn_done(meta->id);
}

/* Every online node, for the supervisor (an auth worker started). */
static int
tunnel_resync(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct node	*n;

	TAILQ_FOREACH(n, &online.list, entry)
		node_send(n);
	return (0);
}

/* Dials */

static void
dial_reply(struct proc_chan *ch, uint32_t peerid, Mezite__DialError error,
    const char *msg, int fd)
{
	Mezite__DialReply	 r = MEZITE__DIAL_REPLY__INIT;

	r.error = error;
	r.message = (char *)msg;
	if (proc_compose_pb(ch, IMSG_TUNNEL_DIAL_REPLY, peerid, fd,
	    &r.base) == -1)
		log_warn("%s: compose", __func__);
}

/* A stream's answer: to the channel the request came on. */
static void
dial_answer(struct tdial *d, Mezite__DialError error, const char *msg,
    int fd)
{
	if (error == MEZITE__DIAL_ERROR__DIAL_OK)
		log_info("stream to %s:%s for %s", d->node, d->service,
		    d->requester);
	else
		log_info("no stream to %s:%s for %s: %s", d->node,
		    d->service, d->requester, msg);
	dial_reply(d->chan, d->peerid, error, msg, fd);
	TAILQ_REMOVE(&dials, d, entry);
	ndials--;
	free(d);
}

/*
 * A stream to a node's service, asked on any channel: the answer goes
 * back on it with the asker's cookie.
 */
static int
tunnel_dial(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__DialRequest	*req = msg;
	struct tdial		*d;
	struct node		*n;
	uint32_t		 peerid = imsg_get_id(imsg);
	char			 why[128];

	if (!name_valid(req->node) || !name_valid(req->service)) {
		dial_reply(ch, peerid, MEZITE__DIAL_ERROR__DIAL_NO_NODE,
		    "bad node or service name", -1);
		return (0);
	}
	if ((n = node_find(&online, "node", req->node)) == NULL) {
		if (node_find(&offline, "node", req->node) != NULL)
			dial_reply(ch, peerid,
			    MEZITE__DIAL_ERROR__DIAL_OFFLINE,
			    "the node is offline", -1);
		else
			dial_reply(ch, peerid,
			    MEZITE__DIAL_ERROR__DIAL_NO_NODE,
			    "no such node is connected", -1);
		return (0);
	}
	if (draining || ndials >= TUNNEL_DIALS_MAX) {
		dial_reply(ch, peerid, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE,
		    draining ? "the tunnel worker is shutting down" :
		    "too many streams are being opened", -1);
		return (0);
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_warn("%s", __func__);
		dial_reply(ch, peerid, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE,
		    "out of memory", -1);
		return (0);
	}
	d->chan = ch;
	d->peerid = peerid;
	(void)strlcpy(d->node, req->node, sizeof(d->node));
	(void)strlcpy(d->service, req->service, sizeof(d->service));
	(void)strlcpy(d->requester, req->requester[0] != '\0' ?
	    req->requester : ch->name, sizeof(d->requester));
	d->deadline = (time_now() + TUNNEL_DIAL_TIMEOUT) * 1000;
	TAILQ_INSERT_TAIL(&dials, d, entry);
	ndials++;
	if (session_dial(n->session, d) == -1) {
		(void)snprintf(why, sizeof(why), "node %s takes no more "
		    "streams now", req->node);
		dial_answer(d, MEZITE__DIAL_ERROR__DIAL_UNAVAILABLE, why, -1);
	}
	return (0);
}

/* Nodes for mezctl show nodes */

/*
 * Send the nodes in parts of about NODES_PART bytes, each but the last
 * saying that more follow: online nodes, then offline ones.
 */
static int
tunnel_show_nodes(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__NodeList	 list = MEZITE__NODE_LIST__INIT;
	Mezite__NodeState	*part[256];
	struct nodes		*lists[2] = { &online.list, &offline.list };
	struct node		*n;
	size_t			 size = 0;
	uint32_t		 peerid = imsg_get_id(imsg);
	int			 i;

	list.nodes = part;
	for (i = 0; i < 2; i++)
		TAILQ_FOREACH(n, lists[i], entry) {
			node_refresh(n);
			size += mezite__node_state__get_packed_size(n->state)
			    + 8;
			if (list.n_nodes > 0 && (size > NODES_PART ||
			    list.n_nodes == nitems(part))) {
				list.more = 1;
				if (proc_compose_pb(ch, IMSG_CTL_NODES, peerid,
				    -1, &list.base) == -1) {
					log_warn("%s: compose", __func__);
					return (0);
				}
				list.n_nodes = 0;
				size = mezite__node_state__get_packed_size(
				    n->state) + 8;
			}
			part[list.n_nodes++] = n->state;
		}
	list.more = 0;
	if (proc_compose_pb(ch, IMSG_CTL_NODES, peerid, -1, &list.base) == -1)
		log_warn("%s: compose", __func__);
	return (0);
}
