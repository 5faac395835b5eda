/*
 * mezited.conf(5): the grammar and its lexer.
 *
 * The layout follows OpenBSD's parse.y files: a hand-written lexer with
 * a sorted keyword table, include files, macros (name = "value" in the
 * file, -D name=value on the command line, $name outside quotes), and
 * errors reported as "file:line: message".  Parsing goes on after an
 * error so that one run reports all of them; parse_config() then
 * returns NULL.
 *
 * Strings the lexer returns live until the end of the parse (they may be
 * dropped by yacc's error recovery, which does not free them); a rule
 * that keeps one copies it.
 */

%{
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tls.h>

#include "log.h"
#include "mezited.h"
#include "tickets.h"
#include "tls_ossl.h"

#define INCLUDE_DEPTH_MAX	8	/* files open at once */
#define CONF_FILE_MAX		(1024 * 1024)	/* bytes read from a file */
#define STRING_MAX		8192	/* longest token */
#define TOKEN_TEXT_MAX		48	/* of a token quoted in an error */
#define ALPN_MAX		255	/* RFC 7301 */
#define SNI_MAX			255

struct file {
	TAILQ_ENTRY(file)	 entry;
	FILE			*stream;
	char			*name;
	dev_t			 dev;
	ino_t			 ino;
	int			 lineno;
	size_t			 nread;		/* at most CONF_FILE_MAX */
	int			 eof_nl;	/* sent the file's last '\n' */
	int			 inject_nl;	/* end the include statement */
	unsigned char		*unget;		/* pushed back, last on top */
	size_t			 ungetlen;
	size_t			 ungetsize;
	int			 expanding;	/* reading a macro's value */
	size_t			 expand_floor;	/* unget[] below: not macro */
};
TAILQ_HEAD(files, file);

struct sym {
	TAILQ_ENTRY(sym)	 entry;
	int			 persist;	/* -D: the file can't set */
	char			*name;
	char			*value;
};
TAILQ_HEAD(syms, sym);

/* A string handed out by the lexer; all are freed at the end. */
struct lexstr {
	SLIST_ENTRY(lexstr)	 entry;
	char			 s[];
};
SLIST_HEAD(lexstrs, lexstr);

typedef struct {
	union {
		int64_t		 number;
		char		*string;
	} v;
	int lineno;
} YYSTYPE;

int		 yyparse(void);
int		 yylex(void);
void		 yyerror(const char *);
static char	*lex_strdup(const char *);
static void	 vparse_error(const char *, int, const char *, va_list)
		    __attribute__((__format__ (printf, 3, 0)));
static void	 parse_error(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2)));
static void	 parse_error_at(const char *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));

static struct file	*pushfile(const char *, int);
static void		 popfile(void);
static void		 include_file(const char *);
static int		 symset(const char *, const char *, int);
static const char	*symget(const char *);
static int		 macro_name_ok(const char *);
static char		*xstrdup(const char *);
static int		 in_range(const char *, int64_t, int64_t, int64_t);
static int		 port_number(const char *);
static int		 worker_type(const char *);
static void		 listen_add(const char *, int);
static void		 keypair_begin(const char *);
static void		 keypair_file(int, const char *);
static void		 keypair_end(void);
static void		 client_ca(const char *);
static void		 cluster_add(const char *, const char *);
static int		 cluster_name_valid(const char *);
static void		 tls_protocols(const char *);
static void		 tls_ciphers(const char *);
static void		 tls_groups(const char *);
static void		 route_add(const char *, const char *, int);
static void		 proc_begin(int);
static void		 proc_user(const char *);
static void		 proc_chroot(const char *);
static void		 proc_root(const char *);
static void		 proc_prefork(int64_t);
static void		 proc_prefork_auto(void);
static int		 https_only(const char *);
static int64_t		 size_value(const char *, const char *, int64_t,
			    int64_t);
static int64_t		 duration_value(const char *, const char *, int64_t,
			    int64_t);
static int		 auth_only(const char *);
static int		 tunnel_only(const char *);
static int		 ssh_only(const char *);
static const char	*size_text(int64_t, char *, size_t);
static void		 status_allow(const char *);
static int		 net_parse(const char *, const char *,
			    struct status_net *);
static void		 net_add(const char *, struct status_net **, size_t *,
			    const struct status_net *);
static void		 proxy_from(const char *);
static void		 ssh_target(const char *, const char *, int64_t);
static void		 set_path(char **, const char *, const char *);
static void		 set_control_socket(const char *);

/*
 * Parser state: reset by parse_config() except for the -D macros, which
 * last as long as the process.
 */
static struct syms	 syms = TAILQ_HEAD_INITIALIZER(syms);
static struct files	 files = TAILQ_HEAD_INITIALIZER(files);
static struct files	 closed = TAILQ_HEAD_INITIALIZER(closed);
static struct lexstrs	 lexstrs = SLIST_HEAD_INITIALIZER(lexstrs);
static struct file	*file, *topfile;
static struct mezited_conf *conf;
static int		 errors;
static int		 resolve = 1;		/* parse_set_resolve() */
static struct keypair	*cur_kp;		/* NULL: ignore its options */
static const char	*cur_kp_file;
static int		 cur_kp_line;
static int		 cur_type;		/* -1: ignore its options */

/* What the lexer returned last, for error messages. */
static struct file	*lex_file;
static int		 lex_line;
static int		 lex_last;		/* token */
static char		 lex_text[TOKEN_TEXT_MAX];
static int		 lex_pos;		/* in its statement, from 0 */
static int		 lex_stmt_start = 1;
static int		 lex_first;		/* first of the statement */
static char		 lex_first_text[TOKEN_TEXT_MAX];
%}

%token	ALLOW ALPN BODY BRIEF CA CERTIFICATE CHROOT CIPHERS CLIENT CLUSTER
%token	CONNECTION CONNECTIONS PER RATE SOURCE
%token	CONTROL DEFAULT DIRECTORY DRAIN GROUP GROUPS HANDSHAKE IDLE INCLUDE KEY
%token	KEEPALIVE KEYPAIR
%token	AUTO KTLS NO YES
%token	LIFETIME TICKET TICKETS
%token	LIMIT LISTEN LOG MASTER MAX MEMORY ON PORT PREFORK PROTOCOLS ROOT ROUTE
%token	SESSIONS SNI SOCKET STATE STATUS STREAMS TARGET TIMEOUT TLS TO TRUSTED
%token	TTL USER
%token	VERBOSE WORKER
%token	FROM PROTOCOL PROXY
%token	ERROR
%token	<v.string>	STRING
%token	<v.number>	NUMBER
%type	<v.number>	port worker
%type	<v.string>	value
%type	<v.string>	size duration

%%

grammar		: /* empty */
		| grammar '\n'
		| grammar include '\n'
		| grammar varset '\n'
		| grammar main '\n'
		| grammar error '\n'		{ yyerrok; }
		;

include		: INCLUDE STRING		{ include_file($2); }
		;

value		: STRING
		| NUMBER			{
			char	 buf[32];

			(void)snprintf(buf, sizeof(buf), "%lld",
			    (long long)$1);
			$$ = lex_strdup(buf);
		}
		;

varset		: STRING '=' value		{
			if (!macro_name_ok($1))
				parse_error("invalid macro name \"%s\"", $1);
			else if (symset($1, $3, 0) == -1)
				fatal("symset");
		}
		;

optnl		: /* empty */
		| optnl '\n'
		;

main		: LISTEN ON STRING port		{
			if ($4 != -1)
				listen_add($3, $4);
		}
		| TLS KEYPAIR STRING		{ keypair_begin($3); }
		    optnl kpblock		{ keypair_end(); }
		| TLS CLIENT CA STRING		{ client_ca($4); }
		| TRUSTED CLUSTER STRING CA STRING {
			cluster_add($3, $5);
		}
		| TLS PROTOCOLS STRING		{ tls_protocols($3); }
		| TLS CIPHERS STRING		{ tls_ciphers($3); }
		| TLS GROUPS STRING		{ tls_groups($3); }
		| TLS TICKETS YES		{ conf->tls_tickets = 1; }
		| TLS TICKETS NO		{ conf->tls_tickets = 0; }
		| TLS TICKET LIFETIME duration	{
			int64_t	 n;

			if ((n = duration_value("tls ticket lifetime", $4,
			    TICKET_LIFETIME_MIN, TICKET_LIFETIME_MAX)) != -1)
				conf->ticket_lifetime = n;
		}
		| ROUTE ALPN STRING TO worker	{ route_add($3, NULL, $5); }
		| ROUTE SNI STRING TO worker	{ route_add(NULL, $3, $5); }
		| ROUTE ALPN STRING SNI STRING TO worker {
			route_add($3, $5, $7);
		}
		| ROUTE DEFAULT TO worker	{
			if ($4 != -1)
				conf->default_worker = $4;
		}
		| TIMEOUT HANDSHAKE NUMBER	{
			if (in_range("timeout handshake", $3, 1, TIMEOUT_MAX))
				conf->handshake_timeout = $3;
		}
		| TIMEOUT IDLE NUMBER		{
			if (in_range("timeout idle", $3, 1, TIMEOUT_MAX))
				conf->idle_timeout = $3;
		}
		| TIMEOUT DRAIN NUMBER		{
			if (in_range("timeout drain", $3, 1, TIMEOUT_MAX))
				conf->drain_timeout = $3;
		}
		| MAX CONNECTIONS NUMBER	{
			if (in_range("max connections", $3, 1,
			    MAX_CONNECTIONS_LIMIT))
				conf->max_connections = $3;
		}
		| MAX CONNECTIONS PER SOURCE NUMBER {
			if (in_range("max connections per source", $5, 1,
			    MAX_CONNECTIONS_LIMIT))
				conf->max_conn_per_source = $5;
		}
		| MAX CONNECTION RATE NUMBER PER SOURCE {
			if (in_range("max connection rate", $4, 1,
			    MAX_CONNECTIONS_LIMIT))
				conf->conn_rate_per_source = $4;
		}
		| MASTER			{ proc_begin(PROC_MASTER); }
		    optnl procblock
		| CA				{ proc_begin(PROC_CA); }
		    optnl procblock
		| WORKER worker			{ proc_begin($2); }
		    optnl procblock
		| STATE DIRECTORY STRING	{
			set_path(&conf->state_dir, "state directory", $3);
		}
		| CONTROL SOCKET STRING		{ set_control_socket($3); }
		| CONTROL GROUP STRING		{
			if (*$3 == '\0')
				parse_error("control group: empty name");
			else {
				free(conf->control_group);
				conf->control_group = xstrdup($3);
			}
		}
		| KTLS AUTO			{ conf->ktls = KTLS_AUTO; }
		| KTLS YES			{ conf->ktls = KTLS_YES; }
		| KTLS NO			{ conf->ktls = KTLS_NO; }
		| PROXY PROTOCOL FROM STRING	{ proxy_from($4); }
		| PROXY PROTOCOL FROM '{' proxylist '}'
		| LOG VERBOSE			{ conf->verbose = 1; }
		| LOG BRIEF			{ conf->verbose = 0; }
		;

port		: /* empty */			{ $$ = DEFAULT_PORT; }
		| PORT NUMBER			{
			$$ = in_range("port", $2, 1, 65535) ? $2 : -1;
		}
		| PORT STRING			{ $$ = port_number($2); }
		;

worker		: STRING			{ $$ = worker_type($1); }
		| MASTER			{ $$ = worker_type("master"); }
		;

/* The last option may share the line of the closing brace. */
kpblock		: '{' kpopts '}'
		| '{' kpopts kpopt '}'
		| '{' kpopts error '}'		{ yyerrok; }
		;

kpopts		: /* empty */
		| kpopts '\n'
		| kpopts kpopt '\n'
		| kpopts error '\n'		{ yyerrok; }
		;

kpopt		: CERTIFICATE STRING		{ keypair_file(0, $2); }
		| KEY STRING			{ keypair_file(1, $2); }
		;

procblock	: '{' procopts '}'
		| '{' procopts procopt '}'
		| '{' procopts error '}'	{ yyerrok; }
		;

procopts	: /* empty */
		| procopts '\n'
		| procopts procopt '\n'
		| procopts error '\n'		{ yyerrok; }
		;

procopt		: USER STRING			{ proc_user($2); }
		| CHROOT STRING			{ proc_chroot($2); }
		| PREFORK NUMBER		{ proc_prefork($2); }
		| PREFORK AUTO			{ proc_prefork_auto(); }
		| PREFORK STRING		{
			parse_error("prefork %s: must be a number%s", $2,
			    cur_type == PROC_MASTER ? ", or auto" : "");
		}
		| ROOT STRING			{ proc_root($2); }
		| BODY LIMIT size		{
			int64_t	 n;

			if (https_only("body limit") &&
			    (n = size_value("body limit", $3, BODY_LIMIT_MIN,
			    BODY_LIMIT_MAX)) != -1)
				conf->procs[cur_type].body_limit = n;
		}
		| BODY MEMORY size		{
			int64_t	 n;

			if (https_only("body memory") &&
			    (n = size_value("body memory", $3, BODY_MEMORY_MIN,
			    BODY_MEMORY_MAX)) != -1)
				conf->procs[cur_type].body_memory = n;
		}
		| MAX SESSIONS NUMBER		{
			if (ssh_only("max sessions") &&
			    in_range("max sessions", $3, 1, SSH_SESSIONS_LIMIT))
				conf->procs[cur_type].max_sessions = $3;
		}
		| MAX STREAMS NUMBER		{
			if (https_only("max streams") &&
			    in_range("max streams", $3, 1, MAX_STREAMS_LIMIT))
				conf->procs[cur_type].max_streams = $3;
		}
		| STATUS ALLOW STRING		{ status_allow($3); }
		| STATUS ALLOW '{' allowlist '}'
		| TARGET STRING STRING PORT NUMBER {
			ssh_target($2, $3, $5);
		}
		| CERTIFICATE TTL duration	{
			int64_t	 n;

			if (auth_only("certificate ttl") &&
			    (n = duration_value("certificate ttl", $3,
			    CERT_TTL_MIN, CERT_TTL_MAX)) != -1)
				conf->procs[cur_type].cert_ttl = n;
		}
		| KEEPALIVE duration		{
			int64_t	 n;

			if (tunnel_only("keepalive") &&
			    (n = duration_value("keepalive", $2,
			    KEEPALIVE_MIN, KEEPALIVE_MAX)) != -1)
				conf->procs[cur_type].keepalive = n;
		}
		| KEEPALIVE TIMEOUT duration	{
			int64_t	 n;

			if (tunnel_only("keepalive timeout") &&
			    (n = duration_value("keepalive timeout", $3,
			    KEEPALIVE_MIN, KEEPALIVE_TIMEOUT_MAX)) != -1)
				conf->procs[cur_type].keepalive_timeout = n;
		}
		;

/* Addresses in braces, separated by blanks or newlines. */
allowlist	: /* empty */
		| allowlist '\n'
		| allowlist STRING		{ status_allow($2); }
		;

proxylist	: /* empty */
		| proxylist '\n'
		| proxylist STRING		{ proxy_from($2); }
		;

/* A number of bytes, with an optional K, M or G: "64M". */
size		: NUMBER			{
			char	 buf[32];

			(void)snprintf(buf, sizeof(buf), "%lld",
			    (long long)$1);
			$$ = lex_strdup(buf);
		}
		| STRING
		;

/* Seconds, or a number with a unit: "12h". */
duration	: NUMBER			{
			char	 buf[32];

			(void)snprintf(buf, sizeof(buf), "%lld",
			    (long long)$1);
			$$ = lex_strdup(buf);
		}
		| STRING
		;

%%

/* Sorted: lookup() searches it with bsearch(). */
static const struct keyword {
	const char	*name;
	int		 token;
} keywords[] = {
	{ "allow",		ALLOW },
	{ "alpn",		ALPN },
	{ "auto",		AUTO },
	{ "body",		BODY },
	{ "brief",		BRIEF },
	{ "ca",			CA },
	{ "certificate",	CERTIFICATE },
	{ "chroot",		CHROOT },
	{ "ciphers",		CIPHERS },
	{ "client",		CLIENT },
	{ "cluster",		CLUSTER },
	{ "connection",		CONNECTION },
	{ "connections",	CONNECTIONS },
	{ "control",		CONTROL },
	{ "default",		DEFAULT },
	{ "directory",		DIRECTORY },
	{ "drain",		DRAIN },
	{ "from",		FROM },
	{ "group",		GROUP },
	{ "groups",		GROUPS },
	{ "handshake",		HANDSHAKE },
	{ "idle",		IDLE },
	{ "include",		INCLUDE },
	{ "keepalive",		KEEPALIVE },
	{ "key",		KEY },
	{ "keypair",		KEYPAIR },
	{ "ktls",		KTLS },
	{ "lifetime",		LIFETIME },
	{ "limit",		LIMIT },
	{ "listen",		LISTEN },
	{ "log",		LOG },
	{ "master",		MASTER },
	{ "max",		MAX },
	{ "memory",		MEMORY },
	{ "no",			NO },
	{ "on",			ON },
	{ "per",		PER },
	{ "port",		PORT },
	{ "prefork",		PREFORK },
	{ "protocol",		PROTOCOL },
	{ "protocols",		PROTOCOLS },
	{ "proxy",		PROXY },
	{ "rate",		RATE },
	{ "root",		ROOT },
	{ "route",		ROUTE },
	{ "sessions",		SESSIONS },
	{ "sni",		SNI },
	{ "socket",		SOCKET },
	{ "source",		SOURCE },
	{ "state",		STATE },
	{ "status",		STATUS },
	{ "streams",		STREAMS },
	{ "target",		TARGET },
	{ "ticket",		TICKET },
	{ "tickets",		TICKETS },
	{ "timeout",		TIMEOUT },
	{ "tls",		TLS },
	{ "to",			TO },
	{ "trusted",		TRUSTED },
	{ "ttl",		TTL },
	{ "user",		USER },
	{ "verbose",		VERBOSE },
	{ "worker",		WORKER },
	{ "yes",		YES },
};

static int
kw_cmp(const void *k, const void *e)
{
	return (strcmp(k, ((const struct keyword *)e)->name));
}

static int
lookup(const char *s)
{
	const struct keyword	*kw;

	kw = bsearch(s, keywords, sizeof(keywords) / sizeof(keywords[0]),
	    sizeof(keywords[0]), kw_cmp);
	return (kw != NULL ? kw->token : STRING);
}

static void
vparse_error(const char *name, int line, const char *fmt, va_list ap)
{
	char	*msg;

	errors++;
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("%s", __func__);
	log_warnx("%s:%d: %s", name, line, msg);
	free(msg);
}

/* An error at the token the lexer returned last. */
static void
parse_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vparse_error(lex_file->name, lex_line, fmt, ap);
	va_end(ap);
}

static void
parse_error_at(const char *name, int line, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vparse_error(name, line, fmt, ap);
	va_end(ap);
}

/*
 * Called by yacc.  A word at the start of a statement that is no keyword
 * is named as such; otherwise the token the parser choked on.
 */
void
yyerror(const char *msg)
{
	if (lex_last == ERROR)
		return;		/* the lexer said why */
	if (lex_pos == 0 && lex_last == STRING)
		parse_error("unknown keyword \"%s\"", lex_text);
	else if (lex_pos == 1 && lex_first == STRING && lex_last != '=')
		parse_error("unknown keyword \"%s\"", lex_first_text);
	else if (lex_last == '\n')
		parse_error("%s at end of line", msg);
	else if (lex_last == 0)
		parse_error("%s at end of file", msg);
	else
		parse_error("%s near \"%s\"", msg, lex_text);
}

/*
 * The lexer.
 */

static void
lungetc(int c)
{
	unsigned char	*p;
	size_t		 nsize;

	if (c == EOF)
		return;
	if (file->ungetlen == file->ungetsize) {
		nsize = file->ungetsize == 0 ? 64 : file->ungetsize * 2;
		if ((p = reallocarray(file->unget, nsize, 1)) == NULL)
			fatal("%s", __func__);
		file->unget = p;
		file->ungetsize = nsize;
	}
	file->unget[file->ungetlen++] = c;
}

/*
 * The next character of the current file.  Unless raw, a backslash at
 * the end of a line joins it to the next, reading as a blank.
 */
static int
lgetc(int raw)
{
	int	 c, next;

	if (file->expanding && file->ungetlen == file->expand_floor)
		file->expanding = 0;
	if (file->ungetlen > 0)
		return (file->unget[--file->ungetlen]);

	if (file->nread >= CONF_FILE_MAX)
		return (EOF);	/* longer than fstat said, as in /proc */
	c = getc(file->stream);
	file->nread++;
	if (c == '\\' && !raw) {
		next = getc(file->stream);
		file->nread++;
		if (next == '\n') {
			file->lineno++;
			return (' ');
		}
		lungetc(next);
	}
	return (c);
}

/* Skip the rest of a bad line, leaving its '\n' for the parser. */
static int
findeol(void)
{
	int	 c;

	while ((c = lgetc(1)) != '\n' && c != EOF)
		;
	lungetc(c);
	return (ERROR);
}

static void
token_text(char *dst, size_t len, const char *src)
{
	size_t	 n = 0;
	int	 r;

	for (; *src != '\0' && n + 1 < len; src++) {
		if (isprint((unsigned char)*src) && *src != '"')
			dst[n++] = *src;
		else {
			r = snprintf(dst + n, len - n, "\\x%02x",
			    (unsigned char)*src);
			if (r < 0 || (size_t)r >= len - n)
				break;
			n += r;
		}
	}
	dst[n] = '\0';
}

/* Note what is returned, for yyerror(). */
static int
lex_token(int token, const char *text)
{
	lex_last = token;
	token_text(lex_text, sizeof(lex_text), text);
	if (lex_stmt_start) {
		lex_pos = 0;
		lex_first = token;
		(void)strlcpy(lex_first_text, lex_text,
		    sizeof(lex_first_text));
	} else
		lex_pos++;
	lex_stmt_start = token == '\n' || token == '{';
	return (token);
}

static char *
lex_strdup(const char *s)
{
	struct lexstr	*ls;
	size_t		 len = strlen(s);

	if ((ls = malloc(sizeof(*ls) + len + 1)) == NULL)
		fatal("%s", __func__);
	memcpy(ls->s, s, len + 1);
	SLIST_INSERT_HEAD(&lexstrs, ls, entry);
	return (ls->s);
}

static int
in_word(int c)
{
	if (c == EOF || c == '\0')
		return (0);
	return (isalnum(c) || strchr("-_./:*@%+~,", c) != NULL);
}

static int
is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return (0);
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return (0);
	return (1);
}

static int
in_macro_name(int c)
{
	return (c != EOF && (isalnum(c) || c == '_'));
}

/*
 * Whether the word just read starts a line and is followed by '=': then
 * it names a macro even if it is a keyword ("port = 8443").
 */
static int
macro_def(void)
{
	char	 blanks[STRING_MAX];
	size_t	 n = 0;
	int	 c;

	if (!lex_stmt_start || lex_last == '{')
		return (0);
	while ((c = lgetc(0)) == ' ' || c == '\t')
		if (n < sizeof(blanks))
			blanks[n++] = c;
	lungetc(c);
	while (n > 0)
		lungetc((unsigned char)blanks[--n]);
	return (c == '=');
}

int
yylex(void)
{
	char		 buf[STRING_MAX];
	const char	*val, *errstr;
	char		*p;
	size_t		 len;
	int		 c, next, token;

	if (file->inject_nl) {
		file->inject_nl = 0;
		return (lex_token('\n', ""));
	}

top:
	while ((c = lgetc(0)) == ' ' || c == '\t')
		;
	lex_file = file;
	lex_line = yylval.lineno = file->lineno;

	if (c == '#')
		while ((c = lgetc(1)) != '\n' && c != EOF)
			;

	if (c == '$' && !file->expanding) {
		p = buf;
		while (in_macro_name(c = lgetc(0))) {
			if (p + 1 >= buf + sizeof(buf)) {
				parse_error("macro name too long");
				return (lex_token(findeol(), ""));
			}
			*p++ = c;
		}
		lungetc(c);
		*p = '\0';
		if (p == buf) {
			parse_error("$ without a macro name");
			return (lex_token(findeol(), "$"));
		}
		if ((val = symget(buf)) == NULL) {
			parse_error("macro \"%s\" is not defined", buf);
			return (lex_token(findeol(), buf));
		}
		file->expand_floor = file->ungetlen;
		for (len = strlen(val); len > 0; len--)
			lungetc((unsigned char)val[len - 1]);
		file->expanding = 1;
		goto top;
	}

	switch (c) {
	case EOF:
		if (ferror(file->stream)) {
			parse_error("read error");
			clearerr(file->stream);
		}
		if (!file->eof_nl) {
			/* A last line without its newline is complete. */
			file->eof_nl = 1;
			return (lex_token('\n', ""));
		}
		if (file == topfile)
			return (lex_token(0, ""));
		popfile();
		goto top;
	case '\n':
		file->lineno++;
		return (lex_token('\n', ""));
	case '\0':
		parse_error("NUL character in the file");
		return (lex_token(findeol(), ""));
	case '"':
		p = buf;
		for (;;) {
			c = lgetc(1);
			if (c == EOF || c == '\n') {
				parse_error("unterminated quoted string");
				lungetc(c);
				return (lex_token(ERROR, ""));
			}
			if (c == '\0') {
				parse_error("NUL character in a string");
				return (lex_token(findeol(), ""));
			}
			if (c == '"')
				break;
			if (c == '\\') {
				next = lgetc(1);
				if (next == '\n') {
					file->lineno++;
					continue;
				}
				if (next == '"' || next == '\\')
					c = next;
				else
					lungetc(next);
			}
			if (p + 1 >= buf + sizeof(buf)) {
				parse_error("string too long");
				return (lex_token(findeol(), ""));
			}
			*p++ = c;
		}
		*p = '\0';
		yylval.v.string = lex_strdup(buf);
		return (lex_token(STRING, buf));
	}

	if (in_word(c)) {
		p = buf;
		do {
			if (p + 1 >= buf + sizeof(buf)) {
				parse_error("string too long");
				return (lex_token(findeol(), ""));
			}
			*p++ = c;
		} while (in_word(c = lgetc(0)));
		lungetc(c);
		*p = '\0';
		/* A keyword names a macro, or is one's value: a string. */
		if (lex_last != '=' && (token = lookup(buf)) != STRING &&
		    !macro_def())
			return (lex_token(token, buf));
		if (is_number(buf)) {
			yylval.v.number = strtonum(buf, LLONG_MIN, LLONG_MAX,
			    &errstr);
			if (errstr != NULL) {
				parse_error("number %s is %s", buf, errstr);
				return (lex_token(findeol(), buf));
			}
			return (lex_token(NUMBER, buf));
		}
		yylval.v.string = lex_strdup(buf);
		return (lex_token(STRING, buf));
	}

	buf[0] = c;
	buf[1] = '\0';
	return (lex_token(c, buf));
}

/*
 * Files.
 */

/* Open a file to read; the top one if include is 0. */
static struct file *
pushfile(const char *name, int include)
{
	struct file	*nfile, *f;
	struct stat	 st;
	int		 fd, depth = 0;

	if ((fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		if (include)
			parse_error("include \"%s\": %s", name,
			    strerror(errno));
		else
			log_warn("%s", name);
		return (NULL);
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONF_FILE_MAX) {
		if (include)
			parse_error("include \"%s\": not a regular file of "
			    "at most %d bytes", name, CONF_FILE_MAX);
		else
			log_warnx("%s: not a regular file of at most %d bytes",
			    name, CONF_FILE_MAX);
		close(fd);
		return (NULL);
	}
	TAILQ_FOREACH(f, &files, entry) {
		depth++;
		if (f->dev == st.st_dev && f->ino == st.st_ino) {
			parse_error("include \"%s\": includes itself", name);
			close(fd);
			return (NULL);
		}
	}
	if (depth >= INCLUDE_DEPTH_MAX) {
		parse_error("include \"%s\": nested too deeply", name);
		close(fd);
		return (NULL);
	}

	if ((nfile = calloc(1, sizeof(*nfile))) == NULL ||
	    (nfile->name = strdup(name)) == NULL)
		fatal("%s", __func__);
	if ((nfile->stream = fdopen(fd, "r")) == NULL)
		fatal("%s: fdopen", __func__);
	nfile->dev = st.st_dev;
	nfile->ino = st.st_ino;
	nfile->lineno = 1;
	TAILQ_INSERT_TAIL(&files, nfile, entry);
	return (nfile);
}

/* Close the current file; its name stays valid for error messages. */
static void
popfile(void)
{
	struct file	*prev;

	prev = TAILQ_PREV(file, files, entry);
	TAILQ_REMOVE(&files, file, entry);
	fclose(file->stream);
	file->stream = NULL;
	free(file->unget);
	file->unget = NULL;
	file->ungetlen = file->ungetsize = 0;
	TAILQ_INSERT_TAIL(&closed, file, entry);
	file = prev;
}

static void
include_file(const char *name)
{
	struct file	*nfile;

	if ((nfile = pushfile(name, 1)) == NULL)
		return;
	file = nfile;
	/* The parser still needs the include statement's '\n'. */
	file->inject_nl = 1;
}

/*
 * Macros.
 */

static int
macro_name_ok(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return (0);
	for (; *s != '\0'; s++)
		if (!in_macro_name((unsigned char)*s))
			return (0);
	return (1);
}

static int
symset(const char *name, const char *value, int persist)
{
	struct sym	*sym;

	TAILQ_FOREACH(sym, &syms, entry)
		if (strcmp(name, sym->name) == 0)
			break;
	if (sym != NULL) {
		if (sym->persist && !persist)
			return (0);	/* -D wins over the file */
		TAILQ_REMOVE(&syms, sym, entry);
		free(sym->name);
		free(sym->value);
		free(sym);
	}
	if ((sym = calloc(1, sizeof(*sym))) == NULL)
		return (-1);
	if ((sym->name = strdup(name)) == NULL ||
	    (sym->value = strdup(value)) == NULL) {
		free(sym->name);
		free(sym);
		return (-1);
	}
	sym->persist = persist;
	TAILQ_INSERT_TAIL(&syms, sym, entry);
	return (0);
}

static const char *
symget(const char *name)
{
	struct sym	*sym;

	TAILQ_FOREACH(sym, &syms, entry)
		if (strcmp(name, sym->name) == 0)
			return (sym->value);
	return (NULL);
}

/* Forget the macros the file defined; keep those from -D. */
static void
symclear(void)
{
	struct sym	*sym, *next;

	for (sym = TAILQ_FIRST(&syms); sym != NULL; sym = next) {
		next = TAILQ_NEXT(sym, entry);
		if (sym->persist)
			continue;
		TAILQ_REMOVE(&syms, sym, entry);
		free(sym->name);
		free(sym->value);
		free(sym);
	}
}

/* -D name=value */
int
cmdline_symset(char *s)
{
	char	*eq, *name;
	size_t	 len;
	int	 ret;

	if ((eq = strchr(s, '=')) == NULL)
		return (-1);
	len = eq - s;
	if ((name = malloc(len + 1)) == NULL)
		return (-1);
	memcpy(name, s, len);
	name[len] = '\0';
	if (!macro_name_ok(name) || strchr(eq + 1, '\n') != NULL) {
		free(name);
		return (-1);
	}
	ret = symset(name, eq + 1, 1);
	free(name);
	return (ret);
}

/*
 * The statements.
 */

static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("%s", __func__);
	return (p);
}

static int
in_range(const char *what, int64_t n, int64_t min, int64_t max)
{
	if (n < min || n > max) {
		parse_error("%s %lld: must be between %lld and %lld", what,
		    (long long)n, (long long)min, (long long)max);
		return (0);
	}
	return (1);
}

/* A port given as a string: a number or a service name; -1 if bad. */
static int
port_number(const char *name)
{
	struct servent	*se;
	const char	*errstr;
	int		 port;

	if (is_number(name)) {
		port = strtonum(name, 1, 65535, &errstr);
		if (errstr != NULL) {
			parse_error("port %s: must be between 1 and 65535",
			    name);
			return (-1);
		}
		return (port);
	}
	if ((se = getservbyname(name, "tcp")) == NULL) {
		parse_error("port %s: unknown service", name);
		return (-1);
	}
	return (ntohs(se->s_port));
}

static int
worker_type(const char *name)
{
	enum proc_type	 t;

	if (proc_lookup(name, &t) == -1) {
		parse_error("unknown worker \"%s\"", name);
		return (-1);
	}
	if (!PROC_IS_WORKER(t)) {
		parse_error("%s is not a worker", name);
		return (-1);
	}
	return (t);
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->ss_family != b->ss_family)
		return (0);
	switch (a->ss_family) {
	case AF_INET:
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return (a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr);
	case AF_INET6:
		a6 = (const struct sockaddr_in6 *)a;
		b6 = (const struct sockaddr_in6 *)b;
		return (a6->sin6_port == b6->sin6_port &&
		    a6->sin6_scope_id == b6->sin6_scope_id &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0);
	}
	return (0);
}

/*
 * Add one address; a duplicate of an earlier statement's is an error,
 * one of this statement's (a name resolving twice) is dropped.
 */
static void
listen_one(struct listen_addrs *mine, const struct sockaddr *sa,
    socklen_t salen)
{
	struct listen_addr	*la, *o;
	char			 host[NI_MAXHOST], serv[NI_MAXSERV];

	if (salen > sizeof(la->ss))
		return;
	if ((la = calloc(1, sizeof(*la))) == NULL)
		fatal("%s", __func__);
	memcpy(&la->ss, sa, salen);
	la->sslen = salen;
	la->nfds = 0;

	if (getnameinfo(sa, salen, host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		(void)strlcpy(host, "?", sizeof(host));
		(void)strlcpy(serv, "?", sizeof(serv));
	}
	TAILQ_FOREACH(o, &conf->listeners, entry)
		if (same_addr(&o->ss, &la->ss)) {
			parse_error("listen on %s port %s: duplicate address",
			    host, serv);
			free(la);
			return;
		}
	TAILQ_FOREACH(o, mine, entry)
		if (same_addr(&o->ss, &la->ss)) {
			free(la);
			return;
		}
	TAILQ_INSERT_TAIL(mine, la, entry);
}

static void
listen_add(const char *host, int port)
{
	struct listen_addrs	 mine = TAILQ_HEAD_INITIALIZER(mine);
	struct listen_addr	*la;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct addrinfo		 hints, *res, *ai;
	char			 serv[16];
	int			 rv;

	if (strcmp(host, "*") == 0) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		sin.sin_port = htons(port);
		listen_one(&mine, (struct sockaddr *)&sin, sizeof(sin));
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_any;
		sin6.sin6_port = htons(port);
		listen_one(&mine, (struct sockaddr *)&sin6, sizeof(sin6));
	} else {
		(void)snprintf(serv, sizeof(serv), "%d", port);
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		if (!resolve)
			hints.ai_flags |= AI_NUMERICHOST;
		if ((rv = getaddrinfo(host, serv, &hints, &res)) != 0) {
			parse_error("listen on %s: %s", host,
			    gai_strerror(rv));
			return;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next)
			if (ai->ai_family == AF_INET ||
			    ai->ai_family == AF_INET6)
				listen_one(&mine, ai->ai_addr,
				    ai->ai_addrlen);
		freeaddrinfo(res);
	}
	while ((la = TAILQ_FIRST(&mine)) != NULL) {
		TAILQ_REMOVE(&mine, la, entry);
		TAILQ_INSERT_TAIL(&conf->listeners, la, entry);
	}
}

static void
keypair_begin(const char *name)
{
	struct keypair	*kp;

	cur_kp = NULL;
	cur_kp_file = lex_file->name;
	cur_kp_line = lex_line;
	if (*name == '\0') {
		parse_error("tls keypair: empty name");
		return;
	}
	TAILQ_FOREACH(kp, &conf->keypairs, entry)
		if (strcmp(kp->name, name) == 0) {
			parse_error("tls keypair \"%s\" is already defined",
			    name);
			return;
		}
	if ((kp = calloc(1, sizeof(*kp))) == NULL)
		fatal("%s", __func__);
	kp->name = xstrdup(name);
	TAILQ_INSERT_TAIL(&conf->keypairs, kp, entry);
	cur_kp = kp;
}

/* certificate (secret 0) or key (secret 1): read it now. */
static void
keypair_file(int secret, const char *path)
{
	char		 err[PATH_MAX + 128];
	const char	*what = secret ? "key" : "certificate";
	char		**pathp;
	uint8_t		**bufp;
	size_t		*lenp;

	if (cur_kp == NULL)
		return;
	pathp = secret ? &cur_kp->key_file : &cur_kp->cert_file;
	bufp = secret ? &cur_kp->key : &cur_kp->cert;
	lenp = secret ? &cur_kp->key_len : &cur_kp->cert_len;
	if (*pathp != NULL) {
		parse_error("tls keypair \"%s\": %s given twice",
		    cur_kp->name, what);
		return;
	}
	*pathp = xstrdup(path);
	if (config_load_pem(path, secret, bufp, lenp, err, sizeof(err)) == -1)
		parse_error("%s", err);
}

static void
keypair_end(void)
{
	if (cur_kp == NULL)
		return;
	if (cur_kp->cert_file == NULL)
		parse_error_at(cur_kp_file, cur_kp_line,
		    "tls keypair \"%s\": no certificate", cur_kp->name);
	if (cur_kp->key_file == NULL)
		parse_error_at(cur_kp_file, cur_kp_line,
		    "tls keypair \"%s\": no key", cur_kp->name);
	cur_kp = NULL;
}

static void
client_ca(const char *path)
{
	char	 err[PATH_MAX + 128];

	free(conf->client_ca_file);
	free(conf->client_ca);
	conf->client_ca = NULL;
	conf->client_ca_len = 0;
	conf->client_ca_file = xstrdup(path);
	if (config_load_pem(path, 0, &conf->client_ca, &conf->client_ca_len,
	    err, sizeof(err)) == -1)
		parse_error("%s", err);
}

/*
 * A trusted cluster: its proxies' certificates, issued by the CA in
 * path, may open mezite-cluster-tunnel under its name.
 */
static void
cluster_add(const char *name, const char *path)
{
	struct trusted_cluster	*tc;
	char			 err[PATH_MAX + 128];
	size_t			 i;

	if (!cluster_name_valid(name)) {
		parse_error("trusted cluster \"%s\": a name is 1 to %d "
		    "letters, digits, '.', '-' and '_'", name,
		    CLUSTER_NAME_MAX);
		return;
	}
	for (i = 0; i < conf->nclusters; i++)
		if (strcmp(conf->clusters[i].name, name) == 0) {
			parse_error("trusted cluster \"%s\" is already "
			    "defined", name);
			return;
		}
	if (conf->nclusters == CLUSTERS_MAX) {
		parse_error("trusted cluster \"%s\": more than %d", name,
		    CLUSTERS_MAX);
		return;
	}
	tc = &conf->clusters[conf->nclusters];
	memset(tc, 0, sizeof(*tc));
	if (config_load_pem(path, 0, &tc->ca, &tc->ca_len, err,
	    sizeof(err)) == -1) {
		parse_error("trusted cluster \"%s\": %s", name, err);
		return;
	}
	tc->name = xstrdup(name);
	tc->ca_file = xstrdup(path);
	conf->cluster_names[conf->nclusters++] = tc->name;
}

static int
cluster_name_valid(const char *s)
{
	size_t	 n = strlen(s);

	return (n > 0 && n <= CLUSTER_NAME_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") == n);
}

static void
tls_protocols(const char *s)
{
	uint32_t	 protocols;

	if (tls_config_parse_protocols(&protocols, s) == -1) {
		parse_error("tls protocols \"%s\": invalid", s);
		return;
	}
	free(conf->tls_protocols);
	conf->tls_protocols = xstrdup(s);
}

static void
tls_ciphers(const char *s)
{
	struct tls_config	*tc;
	const char		*err;

	if ((tc = tls_config_new()) == NULL)
		fatal("tls_config_new");
	if (tls_config_set_ciphers(tc, s) == -1) {
		err = tls_config_error(tc);
		parse_error("tls ciphers \"%s\": %s", s,
		    err != NULL ? err : "invalid");
	} else {
		free(conf->tls_ciphers);
		conf->tls_ciphers = xstrdup(s);
	}
	tls_config_free(tc);
}

/*
 * The key exchange groups both TLS engines know by these names.  The
 * finite-field ones cost the server a hundred times what X25519 does,
 * and the client next to nothing: they are not in the default list.
 */
static const char *const tls_group_names[] = {
	"X25519", "X448", "P-256", "P-384", "P-521",
	"ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192",
};
#define TLS_GROUPS_MAX	(sizeof(tls_group_names) / sizeof(tls_group_names[0]))

static void
tls_groups(const char *s)
{
	const char	*p, *q;
	size_t		 len, i, j, n = 0, seen[TLS_GROUPS_MAX];

	for (p = s;; p = q + 1) {
		if ((q = strchr(p, ':')) == NULL)
			q = p + strlen(p);
		if ((len = q - p) == 0) {
			parse_error("tls groups \"%s\": empty group name", s);
			return;
		}
		for (i = 0; i < TLS_GROUPS_MAX; i++)
			if (strlen(tls_group_names[i]) == len &&
			    strncmp(tls_group_names[i], p, len) == 0)
				break;
		if (i == TLS_GROUPS_MAX && memchr(p, ',', len) != NULL) {
			parse_error("tls groups \"%s\": separate groups with "
			    "colons", s);
			return;
		}
		if (i == TLS_GROUPS_MAX) {
			if (len > TOKEN_TEXT_MAX)
				len = TOKEN_TEXT_MAX;
			parse_error("tls groups \"%s\": unknown group \"%.*s\"",
			    s, (int)len, p);
			return;
		}
		/* Distinct names: n never exceeds TLS_GROUPS_MAX. */
		for (j = 0; j < n; j++)
			if (seen[j] == i) {
				parse_error("tls groups \"%s\": %s listed "
				    "twice", s, tls_group_names[i]);
				return;
			}
		seen[n++] = i;
		if (*q == '\0')
			break;
	}
	free(conf->tls_groups);
	conf->tls_groups = xstrdup(s);
}

static int
alpn_ok(const char *alpn)
{
	size_t	 len = strlen(alpn);

	if (len == 0 || len > ALPN_MAX) {
		parse_error("alpn \"%s\": must be 1 to %d bytes long", alpn,
		    ALPN_MAX);
		return (0);
	}
	if (strchr(alpn, ',') != NULL) {
		parse_error("alpn \"%s\": must not contain a comma", alpn);
		return (0);
	}
	return (1);
}

/* A host name, or "*." and one: a wildcard for exactly one label. */
static int
sni_ok(const char *sni)
{
	size_t		 len = strlen(sni);
	const char	*star;

	if (len == 0 || len > SNI_MAX) {
		parse_error("sni \"%s\": must be 1 to %d bytes long", sni,
		    SNI_MAX);
		return (0);
	}
	if ((star = strchr(sni, '*')) != NULL &&
	    (star != sni || sni[1] != '.' || sni[2] == '\0' ||
	    strchr(sni + 1, '*') != NULL)) {
		parse_error("sni \"%s\": a wildcard must be a whole first "
		    "label, as in \"*.example.com\"", sni);
		return (0);
	}
	return (1);
}

static void
route_add(const char *alpn, const char *sni, int worker)
{
	struct route	*r;

	if ((alpn != NULL && !alpn_ok(alpn)) || (sni != NULL && !sni_ok(sni)))
		return;
	if (worker == -1)
		return;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("%s", __func__);
	r->alpn = alpn != NULL ? xstrdup(alpn) : NULL;
	r->sni = sni != NULL ? xstrdup(sni) : NULL;
	r->worker = worker;
	TAILQ_INSERT_TAIL(&conf->routes, r, entry);
}

static void
proc_begin(int type)
{
	cur_type = type;
	/* Accepted, so that one file serves both builds. */
	if (type == PROC_CA && !MASTER_ENGINE_OSSL)
		log_warnx("%s:%d: ca: a libtls build has no ca process; "
		    "the block is unused", lex_file->name, lex_line);
}

/* Where a statement of the current block is: "file:line". */
static void
proc_where(char **dst)
{
	free(*dst);
	if (asprintf(dst, "%s:%d", lex_file->name, lex_line) == -1)
		fatal("%s", __func__);
}

static void
proc_user(const char *user)
{
	if (cur_type == -1)
		return;
	if (*user == '\0') {
		parse_error("user: empty name");
		return;
	}
	free(conf->procs[cur_type].user);
	conf->procs[cur_type].user = xstrdup(user);
	proc_where(&conf->procs[cur_type].user_at);
}

static void
proc_chroot(const char *path)
{
	if (cur_type == -1)
		return;
	if (cur_type == PROC_AUTH || cur_type == PROC_SSH) {
		parse_error("chroot: the %s worker's is its directory in "
		    "the state directory", proc_name(cur_type));
		return;
	}
	set_path(&conf->procs[cur_type].chroot, "chroot", path);
	proc_where(&conf->procs[cur_type].chroot_at);
}

static void
proc_root(const char *path)
{
	if (cur_type == -1)
		return;
	if (cur_type != PROC_HTTPS) {
		parse_error("root: only for the https worker");
		return;
	}
	set_path(&conf->procs[cur_type].root, "root", path);
}

static void
proc_prefork(int64_t n)
{
	if (cur_type == -1)
		return;
	if (cur_type == PROC_MASTER) {
		if (in_range("prefork", n, 1, PREFORK_MAX))
			conf->procs[cur_type].prefork = n;
		return;
	}
	if (!PROC_IS_WORKER(cur_type)) {
		parse_error("prefork: only for the master and the workers");
		return;
	}
	if (!in_range("prefork", n, 0, PREFORK_MAX))
		return;
	if (n > 0 && !config_proc_available(cur_type)) {
		parse_error("worker %s is not available in this version",
		    proc_name(cur_type));
		return;
	}
	conf->procs[cur_type].prefork = n;
}

/* The master's "prefork auto": one master per online CPU. */
static void
proc_prefork_auto(void)
{
	if (cur_type == -1)
		return;
	if (cur_type != PROC_MASTER) {
		parse_error("prefork auto: only for the master");
		return;
	}
	conf->procs[PROC_MASTER].prefork = 0;
}

/* Whether the block is the auth worker's; if not, say so. */
static int
auth_only(const char *what)
{
	if (cur_type == -1)
		return (0);
	if (cur_type != PROC_AUTH) {
		parse_error("%s: only for the auth worker", what);
		return (0);
	}
	return (1);
}

/* Whether the block is the ssh worker's; if not, say so. */
static int
ssh_only(const char *what)
{
	if (cur_type == -1)
		return (0);
	if (cur_type != PROC_SSH) {
		parse_error("%s: only for the ssh worker", what);
		return (0);
	}
	return (1);
}

/* Whether the block is the tunnel worker's; if not, say so. */
static int
tunnel_only(const char *what)
{
	if (cur_type == -1)
		return (0);
	if (cur_type != PROC_TUNNEL) {
		parse_error("%s: only for the tunnel worker", what);
		return (0);
	}
	return (1);
}

/* Whether the block is the https worker's; if not, say so. */
static int
https_only(const char *what)
{
	if (cur_type == -1)
		return (0);
	if (cur_type != PROC_HTTPS) {
		parse_error("%s: only for the https worker", what);
		return (0);
	}
	return (1);
}

/*
 * A size: decimal digits and an optional unit, K, M or G (also in lower
 * case), for 2^10, 2^20 and 2^30 bytes, from min to max.  -1 if bad.
 */
/* A size as the configuration writes it: 65536 is "64K". */
static const char *
size_text(int64_t n, char *buf, size_t len)
{
	static const char	 units[] = "GMK";
	int			 shift, i;

	for (i = 0, shift = 30; shift > 0; i++, shift -= 10)
		if (n > 0 && n % (1LL << shift) == 0) {
			(void)snprintf(buf, len, "%lld%c",
			    (long long)(n >> shift), units[i]);
			return (buf);
		}
	(void)snprintf(buf, len, "%lld", (long long)n);
	return (buf);
}

/*
 * Decimal digits and an optional unit from units, a string of unit
 * letters (either case) with their multipliers in mults: the value, or
 * -1 if s is not one.
 */
static int64_t
unit_number(const char *s, const char *units, const uint64_t *mults)
{
	const char	*p, *u;
	uint64_t	 n = 0, mult = 1;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return (-1);
		n = n * 10 + (*p - '0');
	}
	if (p == s)
		return (-1);
	if (*p != '\0') {
		if ((u = strchr(units, tolower((unsigned char)*p))) == NULL ||
		    *u == '\0' || p[1] != '\0')
			return (-1);
		mult = mults[u - units];
	}
	if (n > INT64_MAX / mult)
		return (-1);
	return ((int64_t)(n * mult));
}

static int64_t
size_value(const char *what, const char *s, int64_t min, int64_t max)
{
	static const uint64_t	 mults[] = { 1ULL << 10, 1ULL << 20,
				    1ULL << 30 };
	char			 lo[32], hi[32];
	int64_t			 n;

	if ((n = unit_number(s, "kmg", mults)) == -1) {
		parse_error("%s %s: not a size (a number, optionally "
		    "followed by K, M or G)", what, s);
		return (-1);
	}
	if (n < min || n > max) {
		parse_error("%s %s: must be between %s and %s", what, s,
		    size_text(min, lo, sizeof(lo)),
		    size_text(max, hi, sizeof(hi)));
		return (-1);
	}
	return (n);
}

/* A duration in seconds: a number, optionally followed by s, m, h or d. */
static int64_t
duration_value(const char *what, const char *s, int64_t min, int64_t max)
{
	static const uint64_t	 mults[] = { 1, 60, 3600, 86400 };
	int64_t			 n;

	if ((n = unit_number(s, "smhd", mults)) == -1) {
		parse_error("%s %s: not a duration (a number of seconds, "
		    "optionally followed by s, m, h or d)", what, s);
		return (-1);
	}
	if (n < min || n > max) {
		parse_error("%s %s: must be between %llds and %llds", what, s,
		    (long long)min, (long long)max);
		return (-1);
	}
	return (n);
}

/*
 * One network of "status allow" or "proxy protocol from" (what): an IPv4
 * or IPv6 address, optionally followed by "/" and a prefix length;
 * without one, the address alone.  Bits set past the prefix are an
 * error: they suggest a typing mistake.
 */
static int
net_parse(const char *what, const char *s, struct status_net *net)
{
	char			 addr[INET6_ADDRSTRLEN];
	const char		*slash, *errstr;
	size_t			 len, i, nbytes;
	unsigned int		 max, bits;
	int			 prefix;

	memset(net, 0, sizeof(*net));
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(addr)) {
		parse_error("%s %s: not an IPv4 or IPv6 address", what, s);
		return (-1);
	}
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		parse_error("%s %s: not an IPv4 or IPv6 address", what, s);
		return (-1);
	}
	net->prefix = max;
	if (slash != NULL) {
		if (!is_number(slash + 1) || slash[1] == '-') {
			parse_error("%s %s: the prefix length must be a number "
			    "from 0 to %u", what, s, max);
			return (-1);
		}
		prefix = strtonum(slash + 1, 0, max, &errstr);
		if (errstr != NULL) {
			parse_error("%s %s: the prefix length must be a number "
			    "from 0 to %u", what, s, max);
			return (-1);
		}
		net->prefix = prefix;
	}
	nbytes = max / 8;
	for (i = 0; i < nbytes; i++) {
		bits = net->prefix > i * 8 ? net->prefix - i * 8 : 0;
		if (bits >= 8)
			continue;
		if ((net->addr[i] & (0xff >> bits)) != 0) {
			parse_error("%s %s: address bits set past the prefix "
			    "length", what, s);
			return (-1);
		}
	}
	return (0);
}

/* Add net to a list of them, unless it is there already. */
static void
net_add(const char *what, struct status_net **list, size_t *n,
    const struct status_net *net)
{
	struct status_net	*nets;
	size_t			 i;

	for (i = 0; i < *n; i++)
		if ((*list)[i].family == net->family &&
		    (*list)[i].prefix == net->prefix &&
		    memcmp((*list)[i].addr, net->addr,
		    net->family == AF_INET ? 4 : 16) == 0)
			return;		/* said twice: once is enough */
	if (*n >= STATUS_ALLOW_MAX) {
		parse_error("%s: more than %d networks", what,
		    STATUS_ALLOW_MAX);
		return;
	}
	if ((nets = reallocarray(*list, *n + 1, sizeof(*nets))) == NULL)
		fatal("%s", __func__);
	nets[(*n)++] = *net;
	*list = nets;
}

static void
status_allow(const char *s)
{
	struct proc_conf	*pc;
	struct status_net	 net;

	if (!https_only("status allow"))
		return;
	pc = &conf->procs[cur_type];
	if (net_parse("status allow", s, &net) == 0)
		net_add("status allow", &pc->status_allow, &pc->nstatus_allow,
		    &net);
}

/* A balancer's network: its connections begin with a PROXY header. */
static void
proxy_from(const char *s)
{
	struct status_net	 net;

	if (net_parse("proxy protocol from", s, &net) == 0)
		net_add("proxy protocol from", &conf->proxy_from,
		    &conf->nproxy_from, &net);
}

/*
 * A static target of the ssh worker: a name as a node's, a numeric
 * address (the chrooted worker resolves none) and a port.
 */
static void
ssh_target(const char *name, const char *address, int64_t port)
{
	struct proc_conf	*pc;
	struct ssh_target	*t;
	struct in6_addr		 a6;
	struct in_addr		 a4;
	size_t			 i, n = strlen(name);

	if (!ssh_only("target"))
		return;
	pc = &conf->procs[cur_type];
	if (n == 0 || n > SSH_TARGET_NAME_MAX || name[0] == '-' ||
	    name[0] == '.' || strspn(name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") != n) {
		parse_error("target %s: a name of 1 to %d letters, digits, "
		    "'.', '_', '@' and '-'", name, SSH_TARGET_NAME_MAX);
		return;
	}
	if (inet_pton(AF_INET, address, &a4) != 1 &&
	    inet_pton(AF_INET6, address, &a6) != 1) {
		parse_error("target %s: %s is not a numeric IPv4 or IPv6 "
		    "address", name, address);
		return;
	}
	if (!in_range("target port", port, 1, 65535))
		return;
	for (i = 0; i < pc->ntargets; i++)
		if (strcmp(pc->targets[i].name, name) == 0) {
			parse_error("target %s: given twice", name);
			return;
		}
	if (pc->ntargets >= SSH_TARGETS_MAX) {
		parse_error("target: more than %d targets", SSH_TARGETS_MAX);
		return;
	}
	if ((t = reallocarray(pc->targets, pc->ntargets + 1,
	    sizeof(*t))) == NULL)
		fatal("%s", __func__);
	pc->targets = t;
	t = &pc->targets[pc->ntargets++];
	memset(t, 0, sizeof(*t));
	(void)strlcpy(t->name, name, sizeof(t->name));
	(void)strlcpy(t->address, address, sizeof(t->address));
	t->port = port;
}

static void
set_path(char **dst, const char *what, const char *path)
{
	if (*path == '\0') {
		parse_error("%s: empty path", what);
		return;
	}
	free(*dst);
	*dst = xstrdup(path);
}

static void
set_control_socket(const char *path)
{
	struct sockaddr_un	 sun;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		parse_error("control socket %s: path too long", path);
		return;
	}
	set_path(&conf->control_socket, "control socket", path);
}

/*
 * Whether parse_config() may look host names up (1, the default) or
 * takes numeric addresses only (0: no name service, as when fuzzing).
 */
void
parse_set_resolve(int on)
{
	resolve = on;
}

struct mezited_conf *
parse_config(const char *path)
{
	struct mezited_conf	*nconf;
	struct lexstr		*ls;
	struct proc_conf	*pc;
	struct file		*f;

	nconf = config_new();
	nconf->path = xstrdup(path);

	errors = 0;
	cur_kp = NULL;
	cur_type = -1;
	lex_file = NULL;
	lex_line = 0;
	lex_last = 0;
	lex_stmt_start = 1;
	if ((file = pushfile(path, 0)) == NULL) {
		config_free(nconf);
		return (NULL);
	}
	topfile = file;
	conf = nconf;

	yyparse();

	while (!TAILQ_EMPTY(&files)) {
		file = TAILQ_LAST(&files, files);
		popfile();
	}
	if (TAILQ_EMPTY(&conf->listeners)) {
		log_warnx("%s: no listen address", path);
		errors++;
	}
	if (TAILQ_EMPTY(&conf->keypairs)) {
		log_warnx("%s: no tls keypair", path);
		errors++;
	}
	pc = &conf->procs[PROC_TUNNEL];
	if (pc->keepalive_timeout <= pc->keepalive) {
		log_warnx("%s: worker tunnel: keepalive timeout %us must be "
		    "longer than keepalive %us", path, pc->keepalive_timeout,
		    pc->keepalive);
		errors++;
	}
	config_builtin_routes(conf);

	while ((f = TAILQ_FIRST(&closed)) != NULL) {
		TAILQ_REMOVE(&closed, f, entry);
		free(f->name);
		free(f);
	}
	while ((ls = SLIST_FIRST(&lexstrs)) != NULL) {
		SLIST_REMOVE_HEAD(&lexstrs, entry);
		free(ls);
	}
	symclear();
	file = topfile = lex_file = NULL;
	conf = NULL;

	if (errors) {
		config_free(nconf);
		return (NULL);
	}
	return (nconf);
}
