/*
 * Which nodes are online: what the tunnel workers say of their agents,
 * through the supervisor.  Kept in memory only; a tunnel worker tells
 * every node again when an auth worker starts, and the supervisor says
 * when a tunnel worker has gone, taking its nodes with it.
 */

#include <sys/types.h>
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif
#include <sys/tree.h>

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"

#define NODES_MAX	(256 * 1024)	/* nodes remembered */
#define SERVICES_MAX	64		/* per node, as tunnel.proto says */

struct node_state {
	RB_ENTRY(node_state)	 entry;
	char			*name;
	char			*worker;	/* "tunnel.0" */
	int			 online;
	time_t			 since;
	struct store_strv	 services;
};

RB_HEAD(node_tree, node_state);

static int
node_cmp(struct node_state *a, struct node_state *b)
{
	return (strcmp(a->name, b->name));
}

RB_GENERATE_STATIC(node_tree, node_state, entry, node_cmp)

static struct node_tree	 nodes = RB_INITIALIZER(&nodes);
static size_t		 nnodes;

static void
services_set(struct node_state *n, char **v, size_t count)
{
	size_t	 i;

	store_strv_clear(&n->services);
	if (count > SERVICES_MAX)
		count = SERVICES_MAX;
	if (count == 0 || (n->services.v = calloc(count,
	    sizeof(*n->services.v))) == NULL)
		return;
	for (i = 0; i < count; i++) {
		if ((n->services.v[n->services.n] = strdup(v[i])) == NULL)
			return;
		n->services.n++;
	}
}

/*
 * A node came or went.  A state without a name is the supervisor's: the
 * tunnel worker it names has gone, and its nodes are offline.
 */
void
nodes_update(const Mezite__NodeState *ns)
{
	struct node_state	 key, *n;
	char			*worker;

	if (ns->name[0] == '\0') {
		RB_FOREACH(n, node_tree, &nodes)
			if (n->online && strcmp(n->worker, ns->worker) == 0) {
				n->online = 0;
				n->since = ns->since;
			}
		return;
	}
	key.name = ns->name;
	if ((n = RB_FIND(node_tree, &nodes, &key)) == NULL) {
		if (nnodes >= NODES_MAX) {
			log_warnx("node %s: %d nodes are known already; not "
			    "recorded", ns->name, NODES_MAX);
			return;
		}
		if ((n = calloc(1, sizeof(*n))) == NULL ||
		    (n->name = strdup(ns->name)) == NULL) {
			log_warn("%s", __func__);
			free(n);
			return;
		}
		RB_INSERT(node_tree, &nodes, n);
		nnodes++;
	}
	/* An offline report from a worker the node has left is old news. */
	if (!ns->online && n->online && n->worker != NULL &&
	    strcmp(n->worker, ns->worker) != 0)
		return;
	if ((worker = strdup(ns->worker)) == NULL) {
		log_warn("%s", __func__);
		return;
	}
	free(n->worker);
	n->worker = worker;
	n->online = ns->online;
	n->since = ns->since;
	services_set(n, ns->services, ns->n_services);
	log_debug("node %s %s via %s", n->name,
	    n->online ? "online" : "offline", n->worker);
}

/* What is known of the node's tunnel: 0 if nothing is. */
int
nodes_get(const char *name, int *online, time_t *since,
    const struct store_strv **services)
{
	struct node_state	 key, *n;

	key.name = (char *)name;
	if ((n = RB_FIND(node_tree, &nodes, &key)) == NULL)
		return (0);
	*online = n->online;
	*since = n->since;
	*services = &n->services;
	return (1);
}
