/*
 * Routing a TLS session to a worker by its ALPN and SNI.
 */

#include <sys/types.h>

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "mezited.h"

#define MEZITE_ALPN_PREFIX	"mezite-"

/*
 * Whether a server name matches a pattern: equal ignoring case, or, for
 * "*.example.com", exactly one more non-empty label in front.
 */
int
route_sni_match(const char *pattern, const char *name)
{
	const char	*dot;

	if (pattern == NULL || name == NULL)
		return (0);
	if (pattern[0] == '*' && pattern[1] == '.') {
		if ((dot = strchr(name, '.')) == NULL || dot == name)
			return (0);
		return (strcasecmp(dot + 1, pattern + 2) == 0);
	}
	return (strcasecmp(pattern, name) == 0);
}

/*
 * The worker for a session: that of the first rule whose alpn (if set)
 * is the selected ALPN and whose sni (if set) matches the client's
 * server name.  A client that sent no SNI, or with which no ALPN was
 * selected (NULL), matches only rules that leave that field unset.
 */
enum proc_type
route_select(const struct route_rule *rules, size_t n, enum proc_type def,
    const char *alpn, const char *sni)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (rules[i].alpn != NULL &&
		    (alpn == NULL || strcmp(rules[i].alpn, alpn) != 0))
			continue;
		if (rules[i].sni != NULL &&
		    (sni == NULL || !route_sni_match(rules[i].sni, sni)))
			continue;
		return (rules[i].worker);
	}
	return (def);
}

/* Append s to buf strlcat-style; *total counts what would be there. */
static void
append(char *buf, size_t len, size_t *total, const char *s)
{
	size_t	 slen = strlen(s), room;

	if (*total + 1 < len) {
		room = len - 1 - *total;
		if (room > slen)
			room = slen;
		memcpy(buf + *total, s, room);
		buf[*total + room] = '\0';
	}
	*total += slen;
}

static int
seen_before(const struct route_rule *rules, size_t i)
{
	size_t	 j;

	for (j = 0; j < i; j++)
		if (rules[j].alpn != NULL &&
		    strcmp(rules[j].alpn, rules[i].alpn) == 0)
			return (1);
	return (0);
}

/*
 * The ALPN list for tls_config_set_alpn(): each id the rules name once,
 * ours ("mezite-...") first since both engines pick by the server's
 * order, then the others, each group in the order of first appearance.
 * Returns the length of the whole list, as strlcpy() does: >= len means
 * it was truncated.
 */
size_t
route_alpn_list(const struct route_rule *rules, size_t n, char *buf,
    size_t len)
{
	size_t	 i, total = 0;
	int	 pass, ours;

	if (len > 0)
		buf[0] = '\0';
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			if (rules[i].alpn == NULL)
				continue;
			ours = strncmp(rules[i].alpn, MEZITE_ALPN_PREFIX,
			    strlen(MEZITE_ALPN_PREFIX)) == 0;
			if (ours != (pass == 0) || seen_before(rules, i))
				continue;
			if (total > 0)
				append(buf, len, &total, ",");
			append(buf, len, &total, rules[i].alpn);
		}
	}
	return (total);
}
