/*
 * mezctl command line: keyword tables, unambiguous prefixes.
 *
 * Each table lists what may come at one place of the command line:
 * keywords, which may be abbreviated to a prefix no other keyword of the
 * table shares, and values (names, list members, numbers), shown as
 * "<what>".  A word that is a keyword of the table is that keyword; one
 * that is only a prefix of a keyword where a value may also stand is
 * ambiguous.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

enum token_type {
	ENDTOKEN,
	NOTOKEN,
	KEYWORD,
	/* Values; the keyword field says what is expected. */
	NAME,		/* the user, role, token or certificate */
	ROLE,		/* a role, added to the list */
	LOGIN,		/* a login, added to the list */
	NODEPATTERN,	/* a node name pattern, added to the list */
	LABEL,		/* "key=pattern", added to the list */
	SVCPATTERN,	/* a service name pattern, added to the list */
	NODE,		/* a node's name */
	SERVICE,	/* a node's service */
	KEYARG,		/* user key: a file, or a key, or a fingerprint */
	DURATION,	/* seconds, or a number and a unit */
	LIMIT,		/* a number of entries */
	SESSION,	/* a session's id */
};

struct token {
	enum token_type		 type;
	const char		*keyword;
	int			 value;
	const struct token	*next;
};

static const struct token t_main[];
static const struct token t_show[];
static const struct token t_log[];
static const struct token t_limit_opt[];
static const struct token t_limit[];
static const struct token t_cert[];
static const struct token t_serial[];
static const struct token t_user[];
static const struct token t_user_add[];
static const struct token t_user_add_opt[];
static const struct token t_user_roles[];
static const struct token t_username[];
static const struct token t_user_key[];
static const struct token t_key_add[];
static const struct token t_key_file[];
static const struct token t_key_del[];
static const struct token t_key_del_key[];
static const struct token t_key_list[];
static const struct token t_role_first[];
static const struct token t_roles[];
static const struct token t_role[];
static const struct token t_role_add[];
static const struct token t_role_opt[];
static const struct token t_login_first[];
static const struct token t_logins[];
static const struct token t_node_first[];
static const struct token t_nodes[];
static const struct token t_label_first[];
static const struct token t_labels[];
static const struct token t_service_first[];
static const struct token t_services[];
static const struct token t_rolename[];
static const struct token t_token[];
static const struct token t_token_opt[];
static const struct token t_token_node[];
static const struct token t_token_ttl[];
static const struct token t_token_id[];
static const struct token t_connect[];
static const struct token t_connect_service[];
static const struct token t_kill[];
static const struct token t_session_id[];

static const struct token t_main[] = {
	{ KEYWORD,	"cert",		NONE,		t_cert },
	{ KEYWORD,	"connect",	CONNECT,	t_connect },
	{ KEYWORD,	"kill",		NONE,		t_kill },
	{ KEYWORD,	"log",		NONE,		t_log },
	{ KEYWORD,	"reload",	RELOAD,		NULL },
	{ KEYWORD,	"role",		NONE,		t_role },
	{ KEYWORD,	"show",		SHOW_STATUS,	t_show },
	{ KEYWORD,	"token",	NONE,		t_token },
	{ KEYWORD,	"user",		NONE,		t_user },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_show[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"audit",	SHOW_AUDIT,	t_limit_opt },
	{ KEYWORD,	"certs",	SHOW_CERTS,	t_limit_opt },
	{ KEYWORD,	"clusters",	SHOW_CLUSTERS,	NULL },
	{ KEYWORD,	"connections",	SHOW_CONNECTIONS, NULL },
	{ KEYWORD,	"nodes",	SHOW_NODES,	NULL },
	{ KEYWORD,	"sessions",	SHOW_SESSIONS,	NULL },
	{ KEYWORD,	"ssh-ca",	SHOW_SSH_CA,	NULL },
	{ KEYWORD,	"status",	SHOW_STATUS,	NULL },
	{ KEYWORD,	"workers",	SHOW_WORKERS,	NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_kill[] = {
	{ KEYWORD,	"session",	KILL_SESSION,	t_session_id },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_session_id[] = {
	{ SESSION,	"<id>",		NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_log[] = {
	{ KEYWORD,	"brief",	LOG_BRIEF,	NULL },
	{ KEYWORD,	"verbose",	LOG_VERBOSE,	NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_limit_opt[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"limit",	NONE,		t_limit },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_limit[] = {
	{ LIMIT,	"<number>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_cert[] = {
	{ KEYWORD,	"revoke",	CERT_REVOKE,	t_serial },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_serial[] = {
	{ NAME,		"<serial>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_user[] = {
	{ KEYWORD,	"add",		USER_ADD,	t_user_add },
	{ KEYWORD,	"del",		USER_DEL,	t_username },
	{ KEYWORD,	"key",		NONE,		t_user_key },
	{ KEYWORD,	"list",		USER_LIST,	NULL },
	{ KEYWORD,	"passwd",	USER_PASSWD,	t_username },
	{ KEYWORD,	"roles",	USER_ROLES,	t_user_roles },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_user_add[] = {
	{ NAME,		"<user>",	NONE,		t_user_add_opt },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_user_add_opt[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"role",		NONE,		t_role_first },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

/* user roles NAME: no role at all clears them. */
static const struct token t_user_roles[] = {
	{ NAME,		"<user>",	NONE,		t_roles },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_username[] = {
	{ NAME,		"<user>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_user_key[] = {
	{ KEYWORD,	"add",		USER_KEY_ADD,	t_key_add },
	{ KEYWORD,	"del",		USER_KEY_DEL,	t_key_del },
	{ KEYWORD,	"list",		USER_KEY_LIST,	t_key_list },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_key_add[] = {
	{ NAME,		"<user>",	NONE,		t_key_file },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_key_file[] = {
	{ KEYARG,	"<file>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_key_del[] = {
	{ NAME,		"<user>",	NONE,		t_key_del_key },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_key_del_key[] = {
	{ KEYARG,	"<key>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

/* user key list [USER]: no user, every user's keys. */
static const struct token t_key_list[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ NAME,		"<user>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_role_first[] = {
	{ ROLE,		"<role>",	NONE,		t_roles },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_roles[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ ROLE,		"<role>",	NONE,		t_roles },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_role[] = {
	{ KEYWORD,	"add",		ROLE_ADD,	t_role_add },
	{ KEYWORD,	"del",		ROLE_DEL,	t_rolename },
	{ KEYWORD,	"list",		ROLE_LIST,	NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_role_add[] = {
	{ NAME,		"<role>",	NONE,		t_role_opt },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

/*
 * A role's lists, in any order, each keyword followed by one value or
 * more; the first value after its keyword may be any word.
 */
static const struct token t_role_opt[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"label",	NONE,		t_label_first },
	{ KEYWORD,	"login",	NONE,		t_login_first },
	{ KEYWORD,	"node",		NONE,		t_node_first },
	{ KEYWORD,	"service",	NONE,		t_service_first },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_login_first[] = {
	{ LOGIN,	"<login>",	NONE,		t_logins },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_logins[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"label",	NONE,		t_label_first },
	{ KEYWORD,	"login",	NONE,		t_login_first },
	{ KEYWORD,	"node",		NONE,		t_node_first },
	{ KEYWORD,	"service",	NONE,		t_service_first },
	{ LOGIN,	"<login>",	NONE,		t_logins },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_node_first[] = {
	{ NODEPATTERN,	"<pattern>",	NONE,		t_nodes },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_nodes[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"label",	NONE,		t_label_first },
	{ KEYWORD,	"login",	NONE,		t_login_first },
	{ KEYWORD,	"node",		NONE,		t_node_first },
	{ KEYWORD,	"service",	NONE,		t_service_first },
	{ NODEPATTERN,	"<pattern>",	NONE,		t_nodes },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_label_first[] = {
	{ LABEL,	"<key=pattern>", NONE,		t_labels },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_labels[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"label",	NONE,		t_label_first },
	{ KEYWORD,	"login",	NONE,		t_login_first },
	{ KEYWORD,	"node",		NONE,		t_node_first },
	{ KEYWORD,	"service",	NONE,		t_service_first },
	{ LABEL,	"<key=pattern>", NONE,		t_labels },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_service_first[] = {
	{ SVCPATTERN,	"<pattern>",	NONE,		t_services },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_services[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"label",	NONE,		t_label_first },
	{ KEYWORD,	"login",	NONE,		t_login_first },
	{ KEYWORD,	"node",		NONE,		t_node_first },
	{ KEYWORD,	"service",	NONE,		t_service_first },
	{ SVCPATTERN,	"<pattern>",	NONE,		t_services },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_rolename[] = {
	{ NAME,		"<role>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_token[] = {
	{ KEYWORD,	"create",	TOKEN_CREATE,	t_token_opt },
	{ KEYWORD,	"list",		TOKEN_LIST,	NULL },
	{ KEYWORD,	"revoke",	TOKEN_REVOKE,	t_token_id },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_token_opt[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"node",		NONE,		t_token_node },
	{ KEYWORD,	"ttl",		NONE,		t_token_ttl },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_token_node[] = {
	{ NODE,		"<node>",	NONE,		t_token_opt },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_token_ttl[] = {
	{ DURATION,	"<duration>",	NONE,		t_token_opt },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_token_id[] = {
	{ NAME,		"<id>",		NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_connect[] = {
	{ NODE,		"<node>",	NONE,		t_connect_service },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_connect_service[] = {
	{ SERVICE,	"<service>",	NONE,		NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static struct parse_result	 res;

static const struct token	*match_token(const char *,
				    const struct token *);
static int			 set_value(const struct token *, char *);
static int			 list_add(struct parse_list *, const char *,
				    char *);
static void			 show_valid_args(const struct token *);

struct parse_result *
parse(int argc, char *argv[])
{
	const struct token	*table = t_main;
	const struct token	*match;

	memset(&res, 0, sizeof(res));
	while (argc >= 0) {
		if ((match = match_token(argc ? argv[0] : NULL, table)) ==
		    NULL) {
			fprintf(stderr, "valid commands/args:\n");
			show_valid_args(table);
			return (NULL);
		}
		if (set_value(match, argc ? argv[0] : NULL) == -1)
			return (NULL);
		argc--;
		argv++;
		if (match->type == NOTOKEN || match->next == NULL)
			break;
		table = match->next;
	}
	if (argc > 0) {
		fprintf(stderr, "superfluous argument: %s\n", argv[0]);
		return (NULL);
	}
	return (&res);
}

/*
 * A duration: decimal seconds, or a number followed by s, m, h or d
 * (either case).  0 and more than fits in 32 bits are refused.
 */
int
parse_duration(const char *s, uint32_t *secs)
{
	const char	*p;
	uint64_t	 n = 0, mult = 1;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX)
			return (-1);
	}
	if (p == s)
		return (-1);
	switch (*p) {
	case '\0':
		break;
	case 's':
	case 'S':
		p++;
		break;
	case 'm':
	case 'M':
		mult = 60;
		p++;
		break;
	case 'h':
	case 'H':
		mult = 3600;
		p++;
		break;
	case 'd':
	case 'D':
		mult = 86400;
		p++;
		break;
	default:
		return (-1);
	}
	if (*p != '\0' || n == 0 || n > UINT32_MAX / mult)
		return (-1);
	*secs = (uint32_t)(n * mult);
	return (0);
}

static const struct token *
match_token(const char *word, const struct token *table)
{
	const struct token	*t = NULL;
	size_t			 i, n = 0;

	for (i = 0; table[i].type != ENDTOKEN; i++) {
		switch (table[i].type) {
		case NOTOKEN:
			if (word == NULL || strlen(word) == 0) {
				n++;
				t = &table[i];
			}
			break;
		case KEYWORD:
			if (word != NULL && strncmp(word, table[i].keyword,
			    strlen(word)) == 0) {
				n++;
				t = &table[i];
				if (strcmp(word, table[i].keyword) == 0) {
					/* An exact match wins. */
					n = 1;
					goto done;
				}
			}
			break;
		default:
			/* Any word may be a value; set_value() checks it. */
			if (word != NULL && word[0] != '\0') {
				n++;
				t = &table[i];
			}
			break;
		}
	}
 done:
	if (n == 1) {
		if (t->value != NONE)
			res.action = t->value;
		return (t);
	}
	if (n > 1)
		fprintf(stderr, "ambiguous argument: %s\n", word);
	else if (word != NULL && word[0] == '\0')
		fprintf(stderr, "empty argument\n");
	else if (word != NULL)
		fprintf(stderr, "unknown argument: %s\n", word);
	else
		fprintf(stderr, "missing argument:\n");
	return (NULL);
}

/* Keep the value a token stands for; -1 if it is not one. */
static int
set_value(const struct token *t, char *word)
{
	const char	*errstr;
	char		*eq;

	switch (t->type) {
	case NAME:
		res.name = word;
		break;
	case ROLE:
		return (list_add(&res.roles, "roles", word));
	case LOGIN:
		return (list_add(&res.logins, "logins", word));
	case NODEPATTERN:
		return (list_add(&res.nodes, "node patterns", word));
	case LABEL:
		if ((eq = strchr(word, '=')) == NULL || eq == word) {
			fprintf(stderr, "invalid label: %s: not "
			    "key=pattern\n", word);
			return (-1);
		}
		return (list_add(&res.labels, "labels", word));
	case SVCPATTERN:
		return (list_add(&res.services, "service patterns", word));
	case NODE:
		if (res.node != NULL) {
			fprintf(stderr, "node given twice\n");
			return (-1);
		}
		res.node = word;
		break;
	case SERVICE:
		res.service = word;
		break;
	case KEYARG:
		res.key = word;
		break;
	case DURATION:
		if (res.ttl != 0) {
			fprintf(stderr, "ttl given twice\n");
			return (-1);
		}
		if (parse_duration(word, &res.ttl) == -1) {
			fprintf(stderr, "invalid duration: %s: seconds, or a "
			    "number followed by s, m, h or d\n", word);
			return (-1);
		}
		break;
	case SESSION:
		res.session = strtonum(word, 1, LLONG_MAX, &errstr);
		if (errstr != NULL) {
			fprintf(stderr, "invalid session: %s: %s\n", word,
			    errstr);
			return (-1);
		}
		break;
	case LIMIT:
		res.limit = strtonum(word, 1, PARSE_LIMIT_MAX, &errstr);
		if (errstr != NULL) {
			fprintf(stderr, "invalid limit: %s: %s (1 to %d)\n",
			    word, errstr, PARSE_LIMIT_MAX);
			return (-1);
		}
		break;
	default:
		break;
	}
	return (0);
}

static int
list_add(struct parse_list *l, const char *what, char *word)
{
	if (l->n >= PARSE_LIST_MAX) {
		fprintf(stderr, "too many %s: at most %d\n", what,
		    PARSE_LIST_MAX);
		return (-1);
	}
	l->v[l->n++] = word;
	return (0);
}

static void
show_valid_args(const struct token *table)
{
	int	 i;

	for (i = 0; table[i].type != ENDTOKEN; i++) {
		switch (table[i].type) {
		case NOTOKEN:
			fprintf(stderr, "  <cr>\n");
			break;
		default:
			fprintf(stderr, "  %s\n", table[i].keyword);
			break;
		}
	}
}
