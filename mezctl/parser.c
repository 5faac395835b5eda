/*
 * mezctl command line: keyword tables, unambiguous prefixes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

enum token_type {
	ENDTOKEN,
	NOTOKEN,
	KEYWORD,
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

static const struct token t_main[] = {
	{ KEYWORD,	"log",		NONE,		t_log },
	{ KEYWORD,	"reload",	RELOAD,		NULL },
	{ KEYWORD,	"show",		SHOW_STATUS,	t_show },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_show[] = {
	{ NOTOKEN,	"",		NONE,		NULL },
	{ KEYWORD,	"connections",	SHOW_CONNECTIONS, NULL },
	{ KEYWORD,	"status",	SHOW_STATUS,	NULL },
	{ KEYWORD,	"workers",	SHOW_WORKERS,	NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static const struct token t_log[] = {
	{ KEYWORD,	"brief",	LOG_BRIEF,	NULL },
	{ KEYWORD,	"verbose",	LOG_VERBOSE,	NULL },
	{ ENDTOKEN,	"",		NONE,		NULL }
};

static struct parse_result	 res;

static const struct token	*match_token(const char *,
				    const struct token *);
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
	else if (word != NULL)
		fprintf(stderr, "unknown argument: %s\n", word);
	else
		fprintf(stderr, "missing argument:\n");
	return (NULL);
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
		case KEYWORD:
			fprintf(stderr, "  %s\n", table[i].keyword);
			break;
		default:
			break;
		}
	}
}
