/*
 * Roles: which logins a user may use on which nodes; and the names that
 * users, roles and nodes may have.
 *
 * A role allows its logins on a node when the node's name matches one of
 * the role's node patterns, if it has any, and the node's labels satisfy
 * every one of its label patterns, if it has any ("env=prod", "team=*":
 * the key is matched exactly, the value as an fnmatch(3) pattern).  A
 * role with neither node nor label patterns allows nothing: access is
 * granted, never assumed.
 *
 * On the nodes it allows, a role allows the services whose names match
 * one of its service patterns; a role without service patterns allows
 * "ssh" alone, the least it can be good for.
 */

#include <sys/types.h>

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static int
name_matches(const struct store_strv *patterns, const char *name)
{
	size_t	 i;

	for (i = 0; i < patterns->n; i++)
		if (fnmatch(patterns->v[i], name, 0) == 0)
			return (1);
	return (0);
}

/* Does the node have a label "key=value" that "key=pattern" matches? */
static int
label_matches(const char *pattern, const struct store_strv *labels)
{
	const char	*eq, *leq;
	size_t		 klen, i;

	if ((eq = strchr(pattern, '=')) == NULL)
		return (0);
	klen = eq - pattern;
	for (i = 0; i < labels->n; i++) {
		if ((leq = strchr(labels->v[i], '=')) == NULL ||
		    (size_t)(leq - labels->v[i]) != klen ||
		    strncmp(labels->v[i], pattern, klen) != 0)
			continue;
		if (fnmatch(eq + 1, leq + 1, 0) == 0)
			return (1);
	}
	return (0);
}

int
rbac_role_allows(const struct store_role *r, const struct store_node *n)
{
	size_t	 i;

	if (r->nodes.n == 0 && r->labels.n == 0)
		return (0);
	if (r->nodes.n > 0 && !name_matches(&r->nodes, n->name))
		return (0);
	for (i = 0; i < r->labels.n; i++)
		if (!label_matches(r->labels.v[i], &n->labels))
			return (0);
	return (1);
}

int
rbac_role_allows_service(const struct store_role *r, const char *service)
{
	if (r->services.n == 0)
		return (strcmp(service, "ssh") == 0);
	return (name_matches(&r->services, service));
}

static int
strv_has(const struct store_strv *sv, const char *s)
{
	size_t	 i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return (1);
	return (0);
}

/*
 * The logins the roles allow on the node, each once, in the order the
 * roles name them: malloc'd in logins (store_strv_clear() frees them).
 */
int
rbac_node_logins(const struct store_role *roles, size_t nroles,
    const struct store_node *node, struct store_strv *logins)
{
	size_t	 i, k;
	char	**v, *s;

	logins->v = NULL;
	logins->n = 0;
	for (i = 0; i < nroles; i++) {
		if (!rbac_role_allows(&roles[i], node))
			continue;
		for (k = 0; k < roles[i].logins.n; k++) {
			if (strv_has(logins, roles[i].logins.v[k]))
				continue;
			if ((v = reallocarray(logins->v, logins->n + 1,
			    sizeof(*v))) == NULL)
				goto fail;
			logins->v = v;
			if ((s = strdup(roles[i].logins.v[k])) == NULL)
				goto fail;
			logins->v[logins->n++] = s;
		}
	}
	return (0);
 fail:
	store_strv_clear(logins);
	return (-1);
}

/*
 * A user, role or node name: 1 to AUTH_NAME_MAX letters, digits, '.',
 * '_', '@' and '-', not starting with '-' or '.'.
 */
int
auth_name_valid(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > AUTH_NAME_MAX || *s == '-' || *s == '.')
		return (0);
	return (strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == n);
}
