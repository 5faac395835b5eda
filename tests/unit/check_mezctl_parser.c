/*
 * mezctl's command line: what parse() makes of valid command lines, and
 * what it refuses, with the reason it gives.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parser.h"

#define WORDS_MAX	128

static char	 line[4096];
static char	*words[WORDS_MAX];
static char	 errtext[4096];

/* parse() on argv, what it wrote to stderr kept in errtext. */
static struct parse_result *
parse_argv(int argc, char *argv[])
{
	struct parse_result	*res;
	FILE			*tmp;
	size_t			 n;
	int			 saved;

	ck_assert_ptr_nonnull(tmp = tmpfile());
	ck_assert_int_eq(fflush(stderr), 0);
	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_int_ne(dup2(fileno(tmp), STDERR_FILENO), -1);
	res = parse(argc, argv);
	ck_assert_int_eq(fflush(stderr), 0);
	ck_assert_int_ne(dup2(saved, STDERR_FILENO), -1);
	close(saved);
	rewind(tmp);
	n = fread(errtext, 1, sizeof(errtext) - 1, tmp);
	errtext[n] = '\0';
	fclose(tmp);
	return (res);
}

/* A command line of words separated by blanks. */
static struct parse_result *
run(const char *s)
{
	char	*p, *w;
	int	 n = 0;

	ck_assert_uint_lt(strlen(s), sizeof(line));
	strlcpy(line, s, sizeof(line));
	for (p = line; (w = strsep(&p, " ")) != NULL;) {
		if (*w == '\0')
			continue;
		ck_assert_int_lt(n, WORDS_MAX - 1);
		words[n++] = w;
	}
	words[n] = NULL;
	return (parse_argv(n, words));
}

/* The line is refused, and the message names why. */
static void
refused(const char *s, const char *why)
{
	ck_assert_msg(run(s) == NULL, "\"%s\" was accepted", s);
	ck_assert_msg(strstr(errtext, why) != NULL,
	    "\"%s\": \"%s\" not in \"%s\"", s, why, errtext);
}

static struct parse_result *
accepted(const char *s, enum actions action)
{
	struct parse_result	*res;

	res = run(s);
	ck_assert_msg(res != NULL, "\"%s\" refused: %s", s, errtext);
	ck_assert_int_eq(res->action, action);
	return (res);
}

START_TEST(existing_commands)
{
	accepted("show", SHOW_STATUS);
	accepted("show status", SHOW_STATUS);
	accepted("show workers", SHOW_WORKERS);
	accepted("show connections", SHOW_CONNECTIONS);
	accepted("sh co", SHOW_CONNECTIONS);
	accepted("sh st", SHOW_STATUS);
	accepted("sh w", SHOW_WORKERS);
	accepted("reload", RELOAD);
	accepted("re", RELOAD);
	accepted("log verbose", LOG_VERBOSE);
	accepted("log b", LOG_BRIEF);
	refused("log", "missing argument");
	refused("frobnicate", "unknown argument: frobnicate");
	refused("show status x", "superfluous argument: x");
}
END_TEST

START_TEST(ambiguous_prefixes)
{
	char	*empty[] = { "show", "", NULL };

	/* reload and role, certs and connections, label and login. */
	refused("r", "ambiguous argument: r");
	refused("sh c", "ambiguous argument: c");
	refused("role add dev l ubuntu", "ambiguous argument: l");
	/* A prefix of a keyword where a value may also stand. */
	refused("role add dev login ubuntu no web-*", "ambiguous argument: no");
	refused("role add dev node web-* lab env=prod",
	    "ambiguous argument: lab");
	ck_assert_ptr_null(parse_argv(2, empty));
	ck_assert_ptr_nonnull(strstr(errtext, "ambiguous argument"));
}
END_TEST

START_TEST(user_commands)
{
	struct parse_result	*res;

	res = accepted("user add alice", USER_ADD);
	ck_assert_str_eq(res->name, "alice");
	ck_assert_uint_eq(res->roles.n, 0);

	res = accepted("u a alice ro dev ops", USER_ADD);
	ck_assert_str_eq(res->name, "alice");
	ck_assert_uint_eq(res->roles.n, 2);
	ck_assert_str_eq(res->roles.v[0], "dev");
	ck_assert_str_eq(res->roles.v[1], "ops");

	/* Nothing is left of the last command line. */
	res = accepted("user add bob", USER_ADD);
	ck_assert_uint_eq(res->roles.n, 0);

	res = accepted("user del alice", USER_DEL);
	ck_assert_str_eq(res->name, "alice");
	accepted("user list", USER_LIST);
	res = accepted("user passwd alice", USER_PASSWD);
	ck_assert_str_eq(res->name, "alice");

	res = accepted("user roles alice", USER_ROLES);
	ck_assert_str_eq(res->name, "alice");
	ck_assert_uint_eq(res->roles.n, 0);
	res = accepted("user r alice a b c", USER_ROLES);
	ck_assert_uint_eq(res->roles.n, 3);
	ck_assert_str_eq(res->roles.v[2], "c");
	/* After its keyword, any word is a role. */
	res = accepted("user add alice role role", USER_ADD);
	ck_assert_str_eq(res->roles.v[0], "role");
}
END_TEST

START_TEST(user_refused)
{
	char	*empty[] = { "user", "del", "", NULL };

	refused("user", "missing argument");
	refused("user add", "missing argument");
	refused("user add alice role", "missing argument");
	refused("user add alice bob", "unknown argument: bob");
	refused("user del", "missing argument");
	refused("user del alice bob", "superfluous argument: bob");
	refused("user passwd", "missing argument");
	refused("user roles", "missing argument");
	refused("user list all", "superfluous argument: all");
	ck_assert_ptr_null(parse_argv(3, empty));
	ck_assert_ptr_nonnull(strstr(errtext, "empty argument"));
}
END_TEST

START_TEST(too_many_values)
{
	char	 s[2048];
	int	 i;

	strlcpy(s, "user roles alice", sizeof(s));
	for (i = 0; i < PARSE_LIST_MAX; i++) {
		ck_assert_int_gt(snprintf(s + strlen(s), sizeof(s) - strlen(s),
		    " r%d", i), 0);
	}
	ck_assert_uint_eq(accepted(s, USER_ROLES)->roles.n, PARSE_LIST_MAX);
	strlcat(s, " one-more", sizeof(s));
	refused(s, "too many roles");
}
END_TEST

START_TEST(role_commands)
{
	struct parse_result	*res;

	res = accepted("role add dev", ROLE_ADD);
	ck_assert_str_eq(res->name, "dev");
	ck_assert_uint_eq(res->logins.n + res->nodes.n + res->labels.n, 0);

	res = accepted("role add dev login ubuntu root node web-* db-? "
	    "label env=prod tier=web* login admin", ROLE_ADD);
	ck_assert_uint_eq(res->logins.n, 3);
	ck_assert_str_eq(res->logins.v[0], "ubuntu");
	ck_assert_str_eq(res->logins.v[1], "root");
	ck_assert_str_eq(res->logins.v[2], "admin");
	ck_assert_uint_eq(res->nodes.n, 2);
	ck_assert_str_eq(res->nodes.v[0], "web-*");
	ck_assert_str_eq(res->nodes.v[1], "db-?");
	ck_assert_uint_eq(res->labels.n, 2);
	ck_assert_str_eq(res->labels.v[0], "env=prod");
	ck_assert_str_eq(res->labels.v[1], "tier=web*");

	/* Keywords by their prefixes, where nothing else may stand. */
	res = accepted("ro a dev lo ubuntu", ROLE_ADD);
	ck_assert_str_eq(res->logins.v[0], "ubuntu");
	/* The first value after its keyword may be any word. */
	res = accepted("role add dev login node node web-1", ROLE_ADD);
	ck_assert_uint_eq(res->logins.n, 1);
	ck_assert_str_eq(res->logins.v[0], "node");
	ck_assert_str_eq(res->nodes.v[0], "web-1");

	/* Service patterns, among the other lists. */
	res = accepted("role add dba node db-* service 54?? ssh login pg",
	    ROLE_ADD);
	ck_assert_uint_eq(res->services.n, 2);
	ck_assert_str_eq(res->services.v[0], "54??");
	ck_assert_str_eq(res->services.v[1], "ssh");
	ck_assert_uint_eq(res->logins.n, 1);
	res = accepted("role add dba se 5432 label env=prod", ROLE_ADD);
	ck_assert_uint_eq(res->services.n, 1);
	ck_assert_uint_eq(res->labels.n, 1);

	res = accepted("role del dev", ROLE_DEL);
	ck_assert_str_eq(res->name, "dev");
	accepted("role list", ROLE_LIST);
}
END_TEST

START_TEST(role_refused)
{
	refused("role add", "missing argument");
	refused("role add dev login", "missing argument");
	refused("role add dev login ubuntu node", "missing argument");
	refused("role add dev label env", "invalid label: env");
	refused("role add dev label =prod", "invalid label: =prod");
	refused("role add dev service", "missing argument");
	refused("role add dev ubuntu", "unknown argument: ubuntu");
	refused("role del", "missing argument");
	refused("role del dev ops", "superfluous argument: ops");
}
END_TEST

START_TEST(token_commands)
{
	struct parse_result	*res;

	res = accepted("token create", TOKEN_CREATE);
	ck_assert_uint_eq(res->ttl, 0);
	ck_assert_ptr_null(res->node);
	res = accepted("token create ttl 30m node db-1", TOKEN_CREATE);
	ck_assert_uint_eq(res->ttl, 1800);
	ck_assert_str_eq(res->node, "db-1");
	res = accepted("to c n db-1 t 1h", TOKEN_CREATE);
	ck_assert_uint_eq(res->ttl, 3600);
	ck_assert_str_eq(res->node, "db-1");
	ck_assert_uint_eq(accepted("token create ttl 90", TOKEN_CREATE)->ttl,
	    90);
	ck_assert_uint_eq(accepted("token create ttl 2d", TOKEN_CREATE)->ttl,
	    172800);
	accepted("token list", TOKEN_LIST);
	res = accepted("token revoke 0123456789abcdef", TOKEN_REVOKE);
	ck_assert_str_eq(res->name, "0123456789abcdef");
}
END_TEST

START_TEST(token_refused)
{
	const char	*bad[] = { "12x", "h", "0", "0h", "-1", "1.5h", "1hh",
			    "5w", "4294967296", "49711d" };
	char		 s[64];
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(s, sizeof(s), "token create ttl %s", bad[i]);
		refused(s, "invalid duration");
	}
	refused("token create ttl", "missing argument");
	refused("token create node", "missing argument");
	refused("token create ttl 1h ttl 2h", "ttl given twice");
	refused("token create node a node b", "node given twice");
	refused("token create db-1", "unknown argument: db-1");
	refused("token revoke", "missing argument");
	refused("token", "missing argument");
}
END_TEST

START_TEST(show_lists)
{
	struct parse_result	*res;

	ck_assert_uint_eq(accepted("show certs", SHOW_CERTS)->limit, 0);
	ck_assert_uint_eq(accepted("show certs limit 20", SHOW_CERTS)->limit,
	    20);
	ck_assert_uint_eq(accepted("sh a l 5", SHOW_AUDIT)->limit, 5);
	ck_assert_uint_eq(accepted("show audit limit 10000",
	    SHOW_AUDIT)->limit, 10000);
	(void)accepted("show ssh-ca", SHOW_SSH_CA);
	(void)accepted("sh ssh", SHOW_SSH_CA);
	refused("show ssh-ca x", "");
	refused("show audit limit 0", "invalid limit: 0");
	refused("show audit limit 10001", "invalid limit: 10001");
	refused("show audit limit x", "invalid limit: x");
	refused("show audit limit", "missing argument");
	refused("show audit 5", "unknown argument: 5");

	res = accepted("cert revoke 0A1B", CERT_REVOKE);
	ck_assert_str_eq(res->name, "0A1B");
	refused("cert revoke", "missing argument");
	refused("cert", "missing argument");
}
END_TEST

START_TEST(node_commands)
{
	struct parse_result	*res;

	accepted("show nodes", SHOW_NODES);
	accepted("sh n", SHOW_NODES);
	refused("show nodes web1", "superfluous argument: web1");
	accepted("show clusters", SHOW_CLUSTERS);
	accepted("sh cl", SHOW_CLUSTERS);

	res = accepted("connect web1 echo", CONNECT);
	ck_assert_str_eq(res->node, "web1");
	ck_assert_str_eq(res->service, "echo");
	res = accepted("con db-1 ssh", CONNECT);
	ck_assert_str_eq(res->node, "db-1");
	ck_assert_str_eq(res->service, "ssh");
	refused("connect", "missing argument");
	refused("connect web1", "missing argument");
	refused("connect web1 echo x", "superfluous argument: x");
	/* cert and connect */
	refused("c web1 echo", "ambiguous argument: c");
}
END_TEST

START_TEST(durations)
{
	uint32_t	 n;

	ck_assert_int_eq(parse_duration("1", &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(parse_duration("59s", &n), 0);
	ck_assert_uint_eq(n, 59);
	ck_assert_int_eq(parse_duration("1m", &n), 0);
	ck_assert_uint_eq(n, 60);
	ck_assert_int_eq(parse_duration("1H", &n), 0);
	ck_assert_uint_eq(n, 3600);
	ck_assert_int_eq(parse_duration("30d", &n), 0);
	ck_assert_uint_eq(n, 30 * 86400);
	ck_assert_int_eq(parse_duration("007", &n), 0);
	ck_assert_uint_eq(n, 7);
	ck_assert_int_eq(parse_duration("4294967295", &n), 0);
	ck_assert_uint_eq(n, 4294967295U);
	ck_assert_int_eq(parse_duration("71582788m", &n), 0);
	ck_assert_int_eq(parse_duration("71582789m", &n), -1);
	ck_assert_int_eq(parse_duration("4294967296", &n), -1);
	ck_assert_int_eq(parse_duration("99999999999999999999999", &n), -1);
	ck_assert_int_eq(parse_duration("", &n), -1);
	ck_assert_int_eq(parse_duration("s", &n), -1);
	ck_assert_int_eq(parse_duration("0s", &n), -1);
	ck_assert_int_eq(parse_duration("+1", &n), -1);
	ck_assert_int_eq(parse_duration("1m1s", &n), -1);
}
END_TEST

START_TEST(user_key_commands)
{
	struct parse_result	*res;

	res = accepted("user key add alice /home/alice/.ssh/id.pub",
	    USER_KEY_ADD);
	ck_assert_str_eq(res->name, "alice");
	ck_assert_str_eq(res->key, "/home/alice/.ssh/id.pub");
	res = accepted("user key add alice -", USER_KEY_ADD);
	ck_assert_str_eq(res->key, "-");
	res = accepted("u k d bob SHA256:42/eZmDly61fJwU7FQEX0iJNT9Jd4sDLtV6lz"
	    "kPjU30", USER_KEY_DEL);
	ck_assert_str_eq(res->name, "bob");
	ck_assert_str_eq(res->key, "SHA256:42/eZmDly61fJwU7FQEX0iJNT9Jd4sDLt"
	    "V6lzkPjU30");
	res = accepted("user key list", USER_KEY_LIST);
	ck_assert_ptr_null(res->name);
	res = accepted("user key list carol", USER_KEY_LIST);
	ck_assert_str_eq(res->name, "carol");
	refused("user key add alice", "missing argument");
	refused("user key add", "missing argument");
	refused("user key del alice", "missing argument");
	refused("user key list a b", "superfluous argument: b");
	refused("user key add alice f g", "superfluous argument: g");
	refused("user key", "missing argument");
}
END_TEST

static Suite *
mezctl_parser_suite(void)
{
	Suite	*s = suite_create("mezctl_parser");
	TCase	*tc = tcase_create("parser");

	tcase_add_test(tc, existing_commands);
	tcase_add_test(tc, ambiguous_prefixes);
	tcase_add_test(tc, node_commands);
	tcase_add_test(tc, user_commands);
	tcase_add_test(tc, user_refused);
	tcase_add_test(tc, user_key_commands);
	tcase_add_test(tc, too_many_values);
	tcase_add_test(tc, role_commands);
	tcase_add_test(tc, role_refused);
	tcase_add_test(tc, token_commands);
	tcase_add_test(tc, token_refused);
	tcase_add_test(tc, show_lists);
	tcase_add_test(tc, durations);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(mezctl_parser_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
