/*
 * mezctl command line: keyword tables, unambiguous prefixes.
 */

#ifndef MEZCTL_PARSER_H
#define MEZCTL_PARSER_H

#include <stdint.h>

/* Values in one list: as many as the auth worker accepts. */
#define PARSE_LIST_MAX		64
/* The most entries a "limit" asks for. */
#define PARSE_LIMIT_MAX		10000

enum actions {
	NONE,
	SHOW_STATUS,
	SHOW_WORKERS,
	SHOW_CONNECTIONS,
	RELOAD,
	LOG_VERBOSE,
	LOG_BRIEF,
	/* The auth worker's store. */
	USER_ADD,
	USER_DEL,
	USER_LIST,
	USER_PASSWD,
	USER_ROLES,
	USER_KEY_ADD,
	USER_KEY_DEL,
	USER_KEY_LIST,
	ROLE_ADD,
	ROLE_DEL,
	ROLE_LIST,
	TOKEN_CREATE,
	TOKEN_LIST,
	TOKEN_REVOKE,
	SHOW_CERTS,
	CERT_REVOKE,
	SHOW_AUDIT,
	SHOW_SSH_CA,
	/* The tunnel workers' nodes, and the trusted clusters connected. */
	SHOW_NODES,
	SHOW_CLUSTERS,
	CONNECT,
	/* The ssh workers' sessions. */
	SHOW_SESSIONS,
	KILL_SESSION,
};

/* Values of a list, pointing into the command line. */
struct parse_list {
	char		*v[PARSE_LIST_MAX];
	size_t		 n;
};

struct parse_result {
	enum actions	 action;
	char		*name;		/* user, role, token id or serial */
	char		*node;		/* token create, connect: a node */
	char		*service;	/* connect: the node's service */
	char		*key;		/* user key: a file, "-", a key, or a
					   fingerprint */
	struct parse_list roles;
	struct parse_list logins;
	struct parse_list nodes;	/* node name patterns */
	struct parse_list labels;	/* "key=pattern" */
	struct parse_list services;	/* service name patterns */
	uint32_t	 ttl;		/* seconds; 0: not given */
	uint32_t	 limit;		/* 0: not given */
	uint64_t	 session;	/* kill session: its id */
};

struct parse_result	*parse(int, char *[]);
int			 parse_duration(const char *, uint32_t *);

#endif /* MEZCTL_PARSER_H */
