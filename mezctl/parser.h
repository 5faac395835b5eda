/*
 * mezctl command line: keyword tables, unambiguous prefixes.
 */

#ifndef MEZCTL_PARSER_H
#define MEZCTL_PARSER_H

enum actions {
	NONE,
	SHOW_STATUS,
	SHOW_WORKERS,
	SHOW_CONNECTIONS,
	RELOAD,
	LOG_VERBOSE,
	LOG_BRIEF,
};

struct parse_result {
	enum actions	 action;
};

struct parse_result	*parse(int, char *[]);

#endif /* MEZCTL_PARSER_H */
