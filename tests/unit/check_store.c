/*
 * The auth worker's store on SQLite: the file, its schema, and every
 * call, each in a fresh directory.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

#define T0	1700000000	/* now, in these tests */

static char		 dir[PATH_MAX];
static char		 db[PATH_MAX];
static struct store	*st;

static void
path_in(char *buf, size_t size, const char *name)
{
	ck_assert_int_lt(snprintf(buf, size, "%s/%s", dir, name), (int)size);
}

static void
dir_setup(void)
{
	ck_assert_int_lt(snprintf(dir, sizeof(dir), "%s/check_store.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp"),
	    (int)sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	path_in(db, sizeof(db), "auth.db");
	st = NULL;
}

static void
dir_teardown(void)
{
	const char	*files[] = { "auth.db", "auth.db-wal", "auth.db-shm",
	    "link" };
	char		 p[PATH_MAX];
	size_t		 i;

	store_close(st);
	st = NULL;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		path_in(p, sizeof(p), files[i]);
		if (unlink(p) == -1 && errno != ENOENT)
			ck_abort_msg("unlink %s: %s", p, strerror(errno));
	}
	ck_assert_int_eq(rmdir(dir), 0);
}

/* A fresh directory with the store open in it. */
static void
store_setup(void)
{
	dir_setup();
	ck_assert_ptr_nonnull(st = store_open(db));
}

/* The file seen through a connection of its own, as sqlite3(1) would. */
static sqlite3 *
raw_open(void)
{
	sqlite3	*h;

	ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_busy_timeout(h, 5000), SQLITE_OK);
	return (h);
}

static void
raw_exec(sqlite3 *h, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
		ck_abort_msg("%s: %s", sql, err);
}

/* The text of the first column of the first row of sql. */
static void
raw_text(sqlite3 *h, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt	*s;

	ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_ptr_nonnull(sqlite3_column_text(s, 0));
	strlcpy(buf, (const char *)sqlite3_column_text(s, 0), size);
	ck_assert_int_eq(sqlite3_finalize(s), SQLITE_OK);
}

static void
hash_of(uint8_t h[32], int seed)
{
	int	 i;

	for (i = 0; i < 32; i++)
		h[i] = (uint8_t)(seed * 31 + i);
}

static void
user_add(const char *name, const char *role)
{
	char			*v[1];
	struct store_strv	 roles = { v, 0 };

	if (role != NULL) {
		v[0] = (char *)role;
		roles.n = 1;
	}
	ck_assert_int_eq(store_user_add(st, name, "$y$j9T$salt$hash", &roles,
	    T0), 0);
}

static void
cert_add(const char *serial, const char *kind, const char *name,
    time_t not_before, time_t not_after)
{
	struct store_cert	 c;

	memset(&c, 0, sizeof(c));
	strlcpy(c.serial, serial, sizeof(c.serial));
	strlcpy(c.kind, kind, sizeof(c.kind));
	c.name = (char *)name;
	c.not_before = not_before;
	c.not_after = not_after;
	ck_assert_int_eq(store_cert_add(st, &c), 0);
}

static time_t
cert_revoked_at(const char *serial)
{
	struct store_cert	 c;
	time_t			 t;

	ck_assert_int_eq(store_cert_get(st, serial, &c), 0);
	t = c.revoked;
	store_cert_clear(&c);
	return (t);
}

static void
token_add(int seed, const char *id, const char *node, time_t expires)
{
	struct store_token	 t;
	uint8_t			 h[32];

	memset(&t, 0, sizeof(t));
	strlcpy(t.id, id, sizeof(t.id));
	t.node = (char *)node;
	t.created = T0;
	t.expires = expires;
	hash_of(h, seed);
	ck_assert_int_eq(store_token_add(st, h, &t), 0);
}

static int
token_use(int seed, const char *node, time_t now)
{
	uint8_t	 h[32];

	hash_of(h, seed);
	return (store_token_use(st, h, node, now));
}

/* The file. */

START_TEST(open_creates)
{
	struct stat	 sb;

	ck_assert_int_eq(stat(db, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	ck_assert_int_eq(store_schema_version(st), 3);
}
END_TEST

START_TEST(reopen_keeps_data)
{
	struct store_user	 u;

	user_add("alice", "dev");
	store_close(st);
	ck_assert_ptr_nonnull(st = store_open(db));
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_str_eq(u.name, "alice");
	ck_assert_uint_eq(u.roles.n, 1);
	ck_assert_str_eq(u.roles.v[0], "dev");
	store_user_clear(&u);
	ck_assert_int_eq(store_schema_version(st), 3);
}
END_TEST

/* 0600 whatever the umask, and the log SQLite makes beside it too. */
START_TEST(mode_0600)
{
	struct stat	 sb;
	char		 wal[PATH_MAX];
	mode_t		 old;

	old = umask(0);
	st = store_open(db);
	umask(old);
	ck_assert_ptr_nonnull(st);
	user_add("alice", NULL);
	ck_assert_int_eq(stat(db, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	path_in(wal, sizeof(wal), "auth.db-wal");
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
}
END_TEST

/* A umask that takes the owner's write bit away does not either. */
START_TEST(mode_0600_tight_umask)
{
	struct stat	 sb;
	mode_t		 old;

	old = umask(0277);
	st = store_open(db);
	umask(old);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(stat(db, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	user_add("alice", NULL);
}
END_TEST

START_TEST(mode_loose_refused)
{
	store_close(st);
	st = NULL;
	ck_assert_int_eq(chmod(db, 0640), 0);
	ck_assert_ptr_null(st = store_open(db));
}
END_TEST

START_TEST(symlink_refused)
{
	char	 link[PATH_MAX];

	path_in(link, sizeof(link), "link");
	ck_assert_int_eq(symlink(db, link), 0);
	ck_assert_ptr_null(store_open(link));
}
END_TEST

START_TEST(not_a_database)
{
	int	 fd;

	ck_assert_int_ne(fd = open(db, O_WRONLY | O_CREAT | O_EXCL, 0600), -1);
	ck_assert_int_eq(write(fd, "not sqlite, not at all, no no no no no no "
	    "no no no no no no no no no no no no no no no no no no no no no",
	    100), 100);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_ptr_null(st = store_open(db));
}
END_TEST

START_TEST(wal_on)
{
	sqlite3	*h;
	char	 mode[16];

	h = raw_open();
	raw_text(h, "PRAGMA journal_mode", mode, sizeof(mode));
	ck_assert_str_eq(mode, "wal");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
}
END_TEST

/* An empty file, as a crash right after its creation leaves it. */
START_TEST(migrate_empty_file)
{
	sqlite3	*h;
	char	 v[16];
	int	 fd;

	ck_assert_int_ne(fd = open(db, O_WRONLY | O_CREAT | O_EXCL, 0600), -1);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_ptr_nonnull(st = store_open(db));
	ck_assert_int_eq(store_schema_version(st), 3);
	h = raw_open();
	raw_text(h, "PRAGMA user_version", v, sizeof(v));
	ck_assert_str_eq(v, "3");
	raw_text(h, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
	    " AND name IN ('users', 'user_roles', 'roles', 'role_rules',"
	    " 'tokens', 'certs', 'nodes', 'node_labels', 'events',"
	    " 'user_keys')", v, sizeof(v));
	ck_assert_str_eq(v, "10");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
	user_add("alice", NULL);
}
END_TEST

START_TEST(newer_version_refused)
{
	sqlite3	*h;

	store_close(st);
	st = NULL;
	h = raw_open();
	raw_exec(h, "PRAGMA user_version = 99");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
	ck_assert_ptr_null(st = store_open(db));
}
END_TEST

/*
 * A file whose schema this code did not write: NULL where text belongs
 * reads as "", and text beyond the bounds is refused, not returned.
 */
START_TEST(distrusts_the_file)
{
	struct store_user	 u, *users;
	sqlite3			*h;
	size_t			 n;
	int			 fd;

	ck_assert_int_ne(fd = open(db, O_WRONLY | O_CREAT | O_EXCL, 0600), -1);
	ck_assert_int_eq(close(fd), 0);
	h = raw_open();
	raw_exec(h, "CREATE TABLE users (name, hash, created,"
	    " password_changed); CREATE TABLE user_roles (user, role);"
	    " CREATE TABLE roles (name PRIMARY KEY);"
	    " CREATE TABLE role_rules (role, kind,"
	    " value);"
	    " INSERT INTO users VALUES ('alice', NULL, NULL, NULL);"
	    " INSERT INTO user_roles VALUES ('alice', NULL);"
	    " PRAGMA user_version = 1");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);

	ck_assert_ptr_nonnull(st = store_open(db));
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_str_eq(u.hash, "");
	ck_assert_int_eq(u.created, 0);
	ck_assert_uint_eq(u.roles.n, 1);
	ck_assert_str_eq(u.roles.v[0], "");
	store_user_clear(&u);

	h = raw_open();
	raw_exec(h, "INSERT INTO users VALUES (printf('%0100d', 7), 'h', 1, 1)");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
	ck_assert_int_eq(store_user_list(st, &users, &n), -1);
	ck_assert_ptr_null(users);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* secure_delete: a deleted user's hash is not left in the file. */
START_TEST(deleted_hash_wiped)
{
	struct store_strv	 none = { NULL, 0 };
	char			 buf[65536];
	const char		*secret = "$y$j9T$wipe-me-please$0123456789";
	ssize_t			 r;
	int			 fd;

	ck_assert_int_eq(store_user_add(st, "alice", secret, &none, T0), 0);
	ck_assert_int_eq(store_user_del(st, "alice", T0), 0);
	store_close(st);		/* checkpoints the log into the file */
	st = NULL;
	ck_assert_int_ne(fd = open(db, O_RDONLY), -1);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		ck_assert_ptr_null(memmem(buf, r, secret, strlen(secret)));
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* Users. */

START_TEST(user_add_get)
{
	char			*v[] = { "dev", "ops", "dev" };
	struct store_strv	 roles = { v, 3 };
	struct store_user	 u;

	ck_assert_int_eq(store_user_add(st, "alice", "$y$hash", &roles, T0),
	    0);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_str_eq(u.name, "alice");
	ck_assert_str_eq(u.hash, "$y$hash");
	ck_assert_int_eq(u.created, T0);
	ck_assert_int_eq(u.password_changed, T0);
	ck_assert_uint_eq(u.roles.n, 2);
	ck_assert_str_eq(u.roles.v[0], "dev");
	ck_assert_str_eq(u.roles.v[1], "ops");
	store_user_clear(&u);
	ck_assert_ptr_null(u.name);
}
END_TEST

START_TEST(user_add_exists)
{
	struct store_user	 u;

	user_add("alice", "dev");
	ck_assert_int_eq(store_user_add(st, "alice", "$y$other", NULL, T0 + 1),
	    STORE_EXISTS);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_str_eq(u.hash, "$y$j9T$salt$hash");
	ck_assert_uint_eq(u.roles.n, 1);
	store_user_clear(&u);
}
END_TEST

START_TEST(user_get_notfound)
{
	struct store_user	 u;

	ck_assert_int_eq(store_user_get(st, "nobody", &u), STORE_NOTFOUND);
	ck_assert_ptr_null(u.name);
	ck_assert_ptr_null(u.hash);
}
END_TEST

START_TEST(user_bad_name)
{
	char	 longname[STORE_NAME_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(store_user_add(st, longname, "$y$h", NULL, T0), -1);
	ck_assert_int_eq(store_user_add(st, "", "$y$h", NULL, T0), -1);
	ck_assert_int_eq(store_user_add(st, "alice", NULL, NULL, T0), -1);
	longname[STORE_NAME_MAX] = '\0';
	ck_assert_int_eq(store_user_add(st, longname, "$y$h", NULL, T0), 0);
}
END_TEST

START_TEST(user_passwd)
{
	struct store_user	 u;

	user_add("alice", NULL);
	ck_assert_int_eq(store_user_passwd(st, "alice", "$y$new", T0 + 60), 0);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_str_eq(u.hash, "$y$new");
	ck_assert_int_eq(u.created, T0);
	ck_assert_int_eq(u.password_changed, T0 + 60);
	store_user_clear(&u);
	ck_assert_int_eq(store_user_passwd(st, "bob", "$y$new", T0),
	    STORE_NOTFOUND);
}
END_TEST

START_TEST(user_roles)
{
	char			*v[] = { "ops", "audit" };
	struct store_strv	 roles = { v, 2 }, none = { NULL, 0 };
	struct store_user	 u;

	user_add("alice", "dev");
	ck_assert_int_eq(store_user_roles(st, "alice", &roles), 0);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_uint_eq(u.roles.n, 2);
	ck_assert_str_eq(u.roles.v[0], "ops");
	ck_assert_str_eq(u.roles.v[1], "audit");
	store_user_clear(&u);

	ck_assert_int_eq(store_user_roles(st, "alice", &none), 0);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_uint_eq(u.roles.n, 0);
	store_user_clear(&u);
	ck_assert_int_eq(store_user_roles(st, "bob", &roles), STORE_NOTFOUND);
}
END_TEST

START_TEST(user_del)
{
	struct store_user	 u;

	user_add("alice", "dev");
	ck_assert_int_eq(store_user_del(st, "alice", T0), 0);
	ck_assert_int_eq(store_user_get(st, "alice", &u), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_del(st, "alice", T0), STORE_NOTFOUND);

	/* Her roles went with her. */
	user_add("alice", NULL);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_uint_eq(u.roles.n, 0);
	store_user_clear(&u);
}
END_TEST

START_TEST(user_del_revokes_certs)
{
	user_add("alice", NULL);
	cert_add("a1", "user", "alice", T0 - 100, T0 + 3600);
	cert_add("a2", "user", "alice", T0 - 50, T0 + 7200);
	cert_add("a3", "user", "alice", T0 - 7200, T0 - 3600);	/* expired */
	cert_add("a4", "node", "alice", T0 - 100, T0 + 3600);	/* a node */
	cert_add("b1", "user", "bob", T0 - 100, T0 + 3600);
	ck_assert_int_eq(store_cert_revoke(st, "a2", T0 - 10), 0);

	ck_assert_int_eq(store_user_del(st, "alice", T0), 0);
	ck_assert_int_eq(cert_revoked_at("a1"), T0);
	ck_assert_int_eq(cert_revoked_at("a2"), T0 - 10);
	ck_assert_int_eq(cert_revoked_at("a3"), 0);
	ck_assert_int_eq(cert_revoked_at("a4"), 0);
	ck_assert_int_eq(cert_revoked_at("b1"), 0);
}
END_TEST

START_TEST(user_list_sorted)
{
	struct store_user	*u;
	size_t			 n;

	ck_assert_int_eq(store_user_list(st, &u, &n), 0);
	ck_assert_uint_eq(n, 0);
	store_user_free(u, n);

	user_add("carol", "ops");
	user_add("alice", "dev");
	user_add("bob", NULL);
	ck_assert_int_eq(store_user_list(st, &u, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(u[0].name, "alice");
	ck_assert_str_eq(u[0].roles.v[0], "dev");
	ck_assert_str_eq(u[1].name, "bob");
	ck_assert_uint_eq(u[1].roles.n, 0);
	ck_assert_str_eq(u[2].name, "carol");
	ck_assert_str_eq(u[2].roles.v[0], "ops");
	store_user_free(u, n);
}
END_TEST

/* Roles. */

static void
role_put(const char *name, char *login, char *node, char *label)
{
	struct store_role	 r;

	memset(&r, 0, sizeof(r));
	r.name = (char *)name;
	r.logins.v = &login;
	r.logins.n = login != NULL;
	r.nodes.v = &node;
	r.nodes.n = node != NULL;
	r.labels.v = &label;
	r.labels.n = label != NULL;
	ck_assert_int_eq(store_role_put(st, &r), 0);
}

START_TEST(role_put_get)
{
	char			*logins[] = { "root", "deploy" };
	char			*nodes[] = { "web*", "db?" };
	char			*labels[] = { "env=prod" };
	char			*services[] = { "ssh", "54[0-9][0-9]" };
	struct store_role	 r = { "ops", { logins, 2 }, { nodes, 2 },
	    { labels, 1 }, { services, 2 } }, g;

	ck_assert_int_eq(store_role_put(st, &r), 0);
	ck_assert_int_eq(store_role_get(st, "ops", &g), 0);
	ck_assert_str_eq(g.name, "ops");
	ck_assert_uint_eq(g.logins.n, 2);
	ck_assert_str_eq(g.logins.v[0], "root");
	ck_assert_str_eq(g.logins.v[1], "deploy");
	ck_assert_uint_eq(g.nodes.n, 2);
	ck_assert_str_eq(g.nodes.v[0], "web*");
	ck_assert_str_eq(g.nodes.v[1], "db?");
	ck_assert_uint_eq(g.labels.n, 1);
	ck_assert_str_eq(g.labels.v[0], "env=prod");
	ck_assert_uint_eq(g.services.n, 2);
	ck_assert_str_eq(g.services.v[0], "ssh");
	ck_assert_str_eq(g.services.v[1], "54[0-9][0-9]");
	store_role_clear(&g);
}
END_TEST

START_TEST(role_put_replaces)
{
	struct store_role	 g;

	role_put("ops", "root", "web*", "env=prod");
	role_put("ops", "deploy", NULL, NULL);
	ck_assert_int_eq(store_role_get(st, "ops", &g), 0);
	ck_assert_uint_eq(g.logins.n, 1);
	ck_assert_str_eq(g.logins.v[0], "deploy");
	ck_assert_uint_eq(g.nodes.n, 0);
	ck_assert_uint_eq(g.labels.n, 0);
	store_role_clear(&g);
}
END_TEST

START_TEST(role_notfound)
{
	struct store_role	 g;

	ck_assert_int_eq(store_role_get(st, "ops", &g), STORE_NOTFOUND);
	ck_assert_ptr_null(g.name);
	ck_assert_int_eq(store_role_del(st, "ops"), STORE_NOTFOUND);
}
END_TEST

START_TEST(role_del_takes_it_from_users)
{
	struct store_role	 g;
	struct store_user	 u;

	role_put("ops", "root", NULL, NULL);
	role_put("dev", "dev", NULL, NULL);
	user_add("alice", "ops");
	ck_assert_int_eq(store_role_del(st, "ops"), 0);
	ck_assert_int_eq(store_role_get(st, "ops", &g), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_uint_eq(u.roles.n, 0);
	store_user_clear(&u);

	/* A new role of that name is not hers. */
	role_put("ops", "root", NULL, NULL);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_uint_eq(u.roles.n, 0);
	store_user_clear(&u);
	ck_assert_int_eq(store_role_get(st, "dev", &g), 0);
	store_role_clear(&g);
}
END_TEST

START_TEST(role_list_sorted)
{
	struct store_role	*r;
	size_t			 n;

	role_put("ops", "root", NULL, NULL);
	role_put("audit", NULL, "*", NULL);
	ck_assert_int_eq(store_role_list(st, &r, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(r[0].name, "audit");
	ck_assert_str_eq(r[0].nodes.v[0], "*");
	ck_assert_str_eq(r[1].name, "ops");
	ck_assert_str_eq(r[1].logins.v[0], "root");
	store_role_free(r, n);
}
END_TEST

/* Join tokens. */

START_TEST(token_used_once)
{
	struct store_token	*t;
	size_t			 n;

	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	ck_assert_int_eq(token_use(1, "web1", T0 + 10), 0);
	ck_assert_int_eq(token_use(1, "web1", T0 + 11), STORE_CONFLICT);
	ck_assert_int_eq(token_use(1, "web2", T0 + 12), STORE_CONFLICT);
	ck_assert_int_eq(store_token_list(st, &t, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(t[0].used, T0 + 10);
	store_token_free(t, n);
}
END_TEST

START_TEST(token_notfound)
{
	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	ck_assert_int_eq(token_use(2, "web1", T0), STORE_NOTFOUND);
}
END_TEST

START_TEST(token_expired)
{
	struct store_token	*t;
	size_t			 n;

	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	ck_assert_int_eq(token_use(1, "web1", T0 + 3600), STORE_CONFLICT);
	ck_assert_int_eq(store_token_list(st, &t, &n), 0);
	ck_assert_int_eq(t[0].used, 0);
	store_token_free(t, n);
}
END_TEST

START_TEST(token_bound_to_node)
{
	token_add(1, "0123456789abcdef", "web1", T0 + 3600);
	ck_assert_int_eq(token_use(1, "web2", T0), STORE_CONFLICT);
	ck_assert_int_eq(token_use(1, NULL, T0), STORE_CONFLICT);
	ck_assert_int_eq(token_use(1, "web1", T0), 0);
}
END_TEST

START_TEST(token_add_exists)
{
	struct store_token	 t;
	uint8_t			 h[32];

	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	memset(&t, 0, sizeof(t));
	strlcpy(t.id, "0123456789abcdef", sizeof(t.id));
	t.expires = T0 + 3600;
	hash_of(h, 2);
	ck_assert_int_eq(store_token_add(st, h, &t), STORE_EXISTS);
	strlcpy(t.id, "fedcba9876543210", sizeof(t.id));
	hash_of(h, 1);
	ck_assert_int_eq(store_token_add(st, h, &t), STORE_EXISTS);
	strlcpy(t.id, "not hex at all!!", sizeof(t.id));
	hash_of(h, 3);
	ck_assert_int_eq(store_token_add(st, h, &t), -1);
}
END_TEST

START_TEST(token_revoke)
{
	struct store_token	*t;
	size_t			 n;

	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	ck_assert_int_eq(store_token_revoke(st, "0123456789abcdef"), 0);
	ck_assert_int_eq(token_use(1, "web1", T0), STORE_NOTFOUND);
	ck_assert_int_eq(store_token_revoke(st, "0123456789abcdef"),
	    STORE_NOTFOUND);
	ck_assert_int_eq(store_token_revoke(st, "nonsense"), STORE_NOTFOUND);
	ck_assert_int_eq(store_token_list(st, &t, &n), 0);
	ck_assert_uint_eq(n, 0);
	store_token_free(t, n);
}
END_TEST

START_TEST(token_list)
{
	struct store_token	*t;
	struct store_token	 tk;
	uint8_t			 h[32];
	size_t			 n;

	memset(&tk, 0, sizeof(tk));
	strlcpy(tk.id, "00000000000000bb", sizeof(tk.id));
	tk.created = T0 + 5;
	tk.expires = T0 + 60;
	hash_of(h, 9);
	ck_assert_int_eq(store_token_add(st, h, &tk), 0);
	token_add(1, "00000000000000aa", "web1", T0 + 3600);
	ck_assert_int_eq(store_token_list(st, &t, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(t[0].id, "00000000000000aa");
	ck_assert_str_eq(t[0].node, "web1");
	ck_assert_int_eq(t[0].created, T0);
	ck_assert_int_eq(t[0].expires, T0 + 3600);
	ck_assert_str_eq(t[1].id, "00000000000000bb");
	ck_assert_ptr_null(t[1].node);
	store_token_free(t, n);
}
END_TEST

/* One file, two handles: what one used, the other cannot. */
START_TEST(token_two_handles)
{
	struct store	*other;
	uint8_t		 h[32];

	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	ck_assert_ptr_nonnull(other = store_open(db));
	hash_of(h, 1);
	ck_assert_int_eq(store_token_use(other, h, "web1", T0), 0);
	ck_assert_int_eq(token_use(1, "web2", T0), STORE_CONFLICT);
	ck_assert_int_eq(store_token_use(other, h, "web1", T0),
	    STORE_CONFLICT);
	store_close(other);
}
END_TEST

/*
 * Processes racing for one token, each with a handle of its own, all
 * let go at once: exactly one wins, every other finds it used.
 */
#define RACERS	8

START_TEST(token_race)
{
	struct store	*mine;
	pid_t		 pid[RACERS];
	uint8_t		 h[32];
	char		 node[16];
	int		 go[2], ready[2], i, status, won = 0, lost = 0, rv;
	char		 c;

	token_add(1, "0123456789abcdef", NULL, T0 + 3600);
	store_close(st);		/* no handle crosses a fork */
	st = NULL;
	hash_of(h, 1);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(ready), 0);
	for (i = 0; i < RACERS; i++) {
		ck_assert_int_ne(pid[i] = fork(), -1);
		if (pid[i] != 0)
			continue;
		close(go[1]);
		close(ready[0]);
		if ((mine = store_open(db)) == NULL)
			_exit(10);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 0)
			_exit(11);
		snprintf(node, sizeof(node), "web%d", i);
		rv = store_token_use(mine, h, node, T0);
		store_close(mine);
		_exit(rv == 0 ? 0 : rv == STORE_CONFLICT ? 1 : 12);
	}
	close(go[0]);
	close(ready[1]);
	for (i = 0; i < RACERS; i++)
		ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(go[1]);			/* all of them, now */
	for (i = 0; i < RACERS; i++) {
		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert(WIFEXITED(status));
		if (WEXITSTATUS(status) == 0)
			won++;
		else if (WEXITSTATUS(status) == 1)
			lost++;
	}
	close(ready[0]);
	ck_assert_int_eq(won, 1);
	ck_assert_int_eq(lost, RACERS - 1);
}
END_TEST

/* Certificates. */

START_TEST(cert_add_get)
{
	struct store_cert	 c;

	cert_add("1f", "user", "alice", T0, T0 + 3600);
	ck_assert_int_eq(store_cert_get(st, "1f", &c), 0);
	ck_assert_str_eq(c.serial, "1f");
	ck_assert_str_eq(c.kind, "user");
	ck_assert_str_eq(c.name, "alice");
	ck_assert_int_eq(c.not_before, T0);
	ck_assert_int_eq(c.not_after, T0 + 3600);
	ck_assert_int_eq(c.revoked, 0);
	store_cert_clear(&c);
}
END_TEST

START_TEST(cert_exists_notfound)
{
	struct store_cert	 c;

	cert_add("1f", "user", "alice", T0, T0 + 3600);
	memset(&c, 0, sizeof(c));
	strlcpy(c.serial, "1f", sizeof(c.serial));
	strlcpy(c.kind, "node", sizeof(c.kind));
	c.name = "web1";
	ck_assert_int_eq(store_cert_add(st, &c), STORE_EXISTS);
	ck_assert_int_eq(store_cert_get(st, "2f", &c), STORE_NOTFOUND);
	ck_assert_ptr_null(c.name);
	ck_assert_int_eq(store_cert_get(st, "XYZ", &c), STORE_NOTFOUND);
	ck_assert_int_eq(store_cert_revoke(st, "2f", T0), STORE_NOTFOUND);

	/* Not the serial's format, or not a kind. */
	strlcpy(c.serial, "01f", sizeof(c.serial));
	ck_assert_int_eq(store_cert_add(st, &c), -1);
	strlcpy(c.serial, "2f", sizeof(c.serial));
	strlcpy(c.kind, "host", sizeof(c.kind));
	ck_assert_int_eq(store_cert_add(st, &c), -1);
}
END_TEST

START_TEST(cert_revoke)
{
	cert_add("1f", "user", "alice", T0, T0 + 3600);
	ck_assert_int_eq(store_cert_revoke(st, "1f", T0 + 5), 0);
	ck_assert_int_eq(cert_revoked_at("1f"), T0 + 5);
	/* Revoked again, it keeps the first time. */
	ck_assert_int_eq(store_cert_revoke(st, "1f", T0 + 9), 0);
	ck_assert_int_eq(cert_revoked_at("1f"), T0 + 5);
	ck_assert_int_eq(store_cert_revoke(st, "1f", 0), -1);
}
END_TEST

START_TEST(cert_revoke_name)
{
	cert_add("a1", "node", "web1", T0 - 10, T0 + 3600);
	cert_add("a2", "node", "web1", T0 - 7200, T0 - 1);	/* expired */
	cert_add("a3", "user", "web1", T0 - 10, T0 + 3600);
	cert_add("a4", "node", "web2", T0 - 10, T0 + 3600);
	ck_assert_int_eq(store_cert_revoke_name(st, "node", "web1", T0), 0);
	ck_assert_int_eq(cert_revoked_at("a1"), T0);
	ck_assert_int_eq(cert_revoked_at("a2"), 0);
	ck_assert_int_eq(cert_revoked_at("a3"), 0);
	ck_assert_int_eq(cert_revoked_at("a4"), 0);
	ck_assert_int_eq(store_cert_revoke_name(st, "node", "none", T0), 0);
}
END_TEST

/* Only what is revoked and not yet expired: the master's deny list. */
START_TEST(cert_revoked_list)
{
	struct store_strv	 sv;

	cert_add("a1", "user", "alice", T0 - 100, T0 + 100);
	cert_add("b2", "user", "bob", T0 - 100, T0 + 100);
	cert_add("c3", "node", "web1", T0 - 100, T0 + 50);
	cert_add("d4", "user", "carol", T0 - 100, T0 + 100);
	ck_assert_int_eq(store_cert_revoke(st, "b2", T0), 0);
	ck_assert_int_eq(store_cert_revoke(st, "c3", T0), 0);
	ck_assert_int_eq(store_cert_revoke(st, "a1", T0), 0);

	ck_assert_int_eq(store_cert_revoked(st, T0, &sv), 0);
	ck_assert_uint_eq(sv.n, 3);
	ck_assert_str_eq(sv.v[0], "a1");
	ck_assert_str_eq(sv.v[1], "b2");
	ck_assert_str_eq(sv.v[2], "c3");
	store_strv_clear(&sv);

	ck_assert_int_eq(store_cert_revoked(st, T0 + 50, &sv), 0);
	ck_assert_uint_eq(sv.n, 2);
	ck_assert_str_eq(sv.v[0], "a1");
	ck_assert_str_eq(sv.v[1], "b2");
	store_strv_clear(&sv);

	ck_assert_int_eq(store_cert_revoked(st, T0 + 100, &sv), 0);
	ck_assert_uint_eq(sv.n, 0);
	store_strv_clear(&sv);
}
END_TEST

START_TEST(cert_list_newest_first)
{
	struct store_cert	*c;
	size_t			 n;

	cert_add("a1", "user", "alice", T0, T0 + 100);
	cert_add("a3", "user", "alice", T0 + 20, T0 + 100);
	cert_add("a2", "user", "alice", T0 + 10, T0 + 100);
	ck_assert_int_eq(store_cert_list(st, 2, &c, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(c[0].serial, "a3");
	ck_assert_str_eq(c[1].serial, "a2");
	store_cert_free(c, n);
	ck_assert_int_eq(store_cert_list(st, 0, &c, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(c[2].serial, "a1");
	ck_assert_str_eq(c[2].name, "alice");
	store_cert_free(c, n);
}
END_TEST

/* Nodes. */

START_TEST(node_put_list)
{
	char			*l1[] = { "env=prod", "os=debian" };
	struct store_node	 web = { "web1", { l1, 2 }, "1a", T0 };
	struct store_node	 db1 = { "db1", { NULL, 0 }, "2b", T0 + 1 };
	struct store_node	*nd;
	size_t			 n;

	ck_assert_int_eq(store_node_put(st, &web), 0);
	ck_assert_int_eq(store_node_put(st, &db1), 0);
	ck_assert_int_eq(store_node_list(st, &nd, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(nd[0].name, "db1");
	ck_assert_uint_eq(nd[0].labels.n, 0);
	ck_assert_str_eq(nd[1].name, "web1");
	ck_assert_str_eq(nd[1].serial, "1a");
	ck_assert_int_eq(nd[1].joined, T0);
	ck_assert_uint_eq(nd[1].labels.n, 2);
	ck_assert_str_eq(nd[1].labels.v[0], "env=prod");
	ck_assert_str_eq(nd[1].labels.v[1], "os=debian");
	store_node_free(nd, n);
}
END_TEST

START_TEST(node_put_replaces)
{
	char			*l1[] = { "env=prod", "os=debian" };
	char			*l2[] = { "env=dev" };
	struct store_node	 web = { "web1", { l1, 2 }, "1a", T0 };
	struct store_node	*nd;
	size_t			 n;

	ck_assert_int_eq(store_node_put(st, &web), 0);
	web.labels.v = l2;
	web.labels.n = 1;
	strlcpy(web.serial, "3c", sizeof(web.serial));
	web.joined = T0 + 99;
	ck_assert_int_eq(store_node_put(st, &web), 0);
	ck_assert_int_eq(store_node_list(st, &nd, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(nd[0].serial, "3c");
	ck_assert_int_eq(nd[0].joined, T0 + 99);
	ck_assert_uint_eq(nd[0].labels.n, 1);
	ck_assert_str_eq(nd[0].labels.v[0], "env=dev");
	store_node_free(nd, n);
}
END_TEST

START_TEST(node_get)
{
	char			*l1[] = { "env=prod" };
	struct store_node	 web = { "web1", { l1, 1 }, "1a", T0 };
	struct store_node	 nd;

	ck_assert_int_eq(store_node_get(st, "web1", &nd), STORE_NOTFOUND);
	ck_assert_int_eq(store_node_put(st, &web), 0);
	ck_assert_int_eq(store_node_get(st, "web1", &nd), 0);
	ck_assert_str_eq(nd.name, "web1");
	ck_assert_str_eq(nd.serial, "1a");
	ck_assert_int_eq(nd.joined, T0);
	ck_assert_uint_eq(nd.labels.n, 1);
	ck_assert_str_eq(nd.labels.v[0], "env=prod");
	store_node_clear(&nd);
	ck_assert_int_eq(store_node_get(st, "web2", &nd), STORE_NOTFOUND);
}
END_TEST

/* Audit events. */

static void
event_add(time_t t, const char *type, const char *name, int success)
{
	struct store_event	 e;

	memset(&e, 0, sizeof(e));
	e.time = t;
	e.type = (char *)type;
	e.name = (char *)name;
	e.address = "192.0.2.1";
	e.success = success;
	e.detail = "via password";
	ck_assert_int_eq(store_event_add(st, &e), 0);
}

START_TEST(event_list_order_limit)
{
	struct store_event	*e;
	size_t			 n;
	char			 name[8];
	int			 i;

	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		event_add(T0 + i, i % 2 ? "login.failed" : "login", name,
		    i % 2 == 0);
	}
	ck_assert_int_eq(store_event_list(st, 3, &e, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(e[0].name, "u2");
	ck_assert_str_eq(e[1].name, "u3");
	ck_assert_str_eq(e[2].name, "u4");
	ck_assert_int_eq(e[0].time, T0 + 2);
	ck_assert_str_eq(e[1].type, "login.failed");
	ck_assert_int_eq(e[1].success, 0);
	ck_assert_int_eq(e[2].success, 1);
	ck_assert_str_eq(e[2].address, "192.0.2.1");
	ck_assert_str_eq(e[2].detail, "via password");
	store_event_free(e, n);
	ck_assert_int_eq(store_event_list(st, 0, &e, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(e[0].name, "u0");
	store_event_free(e, n);
}
END_TEST

START_TEST(event_empty_and_long)
{
	struct store_event	 in, *e;
	char			*big;
	size_t			 n;

	ck_assert_ptr_nonnull(big = malloc(10000));
	memset(big, 'x', 9999);
	big[9999] = '\0';
	memset(&in, 0, sizeof(in));
	in.time = T0;
	in.type = "token.create";
	ck_assert_int_eq(store_event_add(st, &in), 0);
	in.detail = big;
	ck_assert_int_eq(store_event_add(st, &in), 0);
	free(big);
	ck_assert_int_eq(store_event_list(st, 0, &e, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(e[0].name, "");
	ck_assert_str_eq(e[0].address, "");
	ck_assert_str_eq(e[0].detail, "");
	ck_assert_uint_eq(strlen(e[1].detail), 4096);
	store_event_free(e, n);
	in.type = NULL;
	ck_assert_int_eq(store_event_add(st, &in), -1);
}
END_TEST

/* Users' SSH keys. */

/* A key of user's, its fingerprint made of seed: the store checks none. */
static int
key_add(const char *user, int seed, time_t added)
{
	struct store_key	 k;

	memset(&k, 0, sizeof(k));
	k.user = (char *)user;
	strlcpy(k.type, "ssh-ed25519", sizeof(k.type));
	k.blob = "AAAAC3NzaC1lZDI1NTE5AAAAIJ67CeY8Hy0OQzyj4xAhzuYzz7yrI8LKVL0"
	    "DzphDlzyZ";
	(void)snprintf(k.fingerprint, sizeof(k.fingerprint),
	    "SHA256:%043d", seed);
	k.comment = seed == 1 ? "alice@laptop" : "";
	k.added = added;
	return (store_key_add(st, &k));
}

static void
fp_of(int seed, char *buf, size_t size)
{
	ck_assert_int_lt(snprintf(buf, size, "SHA256:%043d", seed),
	    (int)size);
}

START_TEST(key_add_get)
{
	struct store_key	 k;
	char			 fp[51];

	user_add("alice", NULL);
	ck_assert_int_eq(key_add("alice", 1, T0), 0);
	fp_of(1, fp, sizeof(fp));
	ck_assert_int_eq(store_key_get(st, "alice", fp, &k), 0);
	ck_assert_str_eq(k.user, "alice");
	ck_assert_str_eq(k.type, "ssh-ed25519");
	ck_assert_str_eq(k.fingerprint, fp);
	ck_assert_str_eq(k.comment, "alice@laptop");
	ck_assert_int_eq(k.added, T0);
	ck_assert_ptr_nonnull(strstr(k.blob, "AAAAC3"));
	store_key_clear(&k);
	fp_of(2, fp, sizeof(fp));
	ck_assert_int_eq(store_key_get(st, "alice", fp, &k), STORE_NOTFOUND);
	ck_assert_ptr_null(k.user);
}
END_TEST

START_TEST(key_exists_notfound)
{
	user_add("alice", NULL);
	user_add("bob", NULL);
	ck_assert_int_eq(key_add("carol", 1, T0), STORE_NOTFOUND);
	ck_assert_int_eq(key_add("alice", 1, T0), 0);
	ck_assert_int_eq(key_add("alice", 1, T0 + 1), STORE_EXISTS);
	/* Another user may have the same key. */
	ck_assert_int_eq(key_add("bob", 1, T0), 0);
	ck_assert_int_eq(key_add("", 2, T0), -1);
}
END_TEST

START_TEST(key_limit)
{
	int	 i;

	user_add("alice", NULL);
	user_add("bob", NULL);
	for (i = 0; i < STORE_KEYS_MAX; i++)
		ck_assert_int_eq(key_add("alice", 100 + i, T0 + i), 0);
	ck_assert_int_eq(key_add("alice", 1, T0), STORE_CONFLICT);
	/* A duplicate is that first. */
	ck_assert_int_eq(key_add("alice", 100, T0), STORE_EXISTS);
	ck_assert_int_eq(key_add("bob", 1, T0), 0);
}
END_TEST

START_TEST(key_del)
{
	struct store_key	*k;
	size_t			 n;
	char			 fp[51];

	user_add("alice", NULL);
	ck_assert_int_eq(key_add("alice", 1, T0), 0);
	ck_assert_int_eq(key_add("alice", 2, T0), 0);
	fp_of(1, fp, sizeof(fp));
	ck_assert_int_eq(store_key_del(st, "bob", fp), STORE_NOTFOUND);
	ck_assert_int_eq(store_key_del(st, "alice", fp), 0);
	ck_assert_int_eq(store_key_del(st, "alice", fp), STORE_NOTFOUND);
	ck_assert_int_eq(store_key_list(st, "alice", &k, &n), 0);
	ck_assert_uint_eq(n, 1);
	fp_of(2, fp, sizeof(fp));
	ck_assert_str_eq(k[0].fingerprint, fp);
	store_key_free(k, n);
}
END_TEST

START_TEST(key_gone_with_user)
{
	struct store_key	*k;
	size_t			 n;

	user_add("alice", NULL);
	ck_assert_int_eq(key_add("alice", 1, T0), 0);
	ck_assert_int_eq(store_user_del(st, "alice", T0), 0);
	ck_assert_int_eq(store_key_list(st, NULL, &k, &n), 0);
	ck_assert_uint_eq(n, 0);
	store_key_free(k, n);
	/* A new alice does not find the old one's keys. */
	user_add("alice", NULL);
	ck_assert_int_eq(store_key_list(st, "alice", &k, &n), 0);
	ck_assert_uint_eq(n, 0);
	store_key_free(k, n);
	ck_assert_int_eq(key_add("alice", 1, T0), 0);
}
END_TEST

START_TEST(key_list_order)
{
	struct store_key	*k;
	size_t			 n;

	user_add("bob", NULL);
	user_add("alice", NULL);
	ck_assert_int_eq(key_add("bob", 1, T0), 0);
	ck_assert_int_eq(key_add("alice", 3, T0 + 5), 0);
	ck_assert_int_eq(key_add("alice", 2, T0 + 1), 0);
	ck_assert_int_eq(store_key_list(st, NULL, &k, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(k[0].user, "alice");
	ck_assert_int_eq(k[0].added, T0 + 1);
	ck_assert_str_eq(k[1].user, "alice");
	ck_assert_int_eq(k[1].added, T0 + 5);
	ck_assert_str_eq(k[2].user, "bob");
	store_key_free(k, n);
	ck_assert_int_eq(store_key_list(st, "bob", &k, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(k[0].user, "bob");
	store_key_free(k, n);
	ck_assert_int_eq(store_key_list(st, "carol", &k, &n), 0);
	ck_assert_uint_eq(n, 0);
	store_key_free(k, n);
}
END_TEST

/* A store of version 1, from before keys: migrated, its users kept. */
START_TEST(key_migration)
{
	struct store_user	 u;
	sqlite3			*h;
	char			 v[16];

	user_add("alice", "dev");
	store_close(st);
	st = NULL;
	h = raw_open();
	raw_exec(h, "DROP TABLE user_keys; PRAGMA user_version = 1");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);

	ck_assert_ptr_nonnull(st = store_open(db));
	ck_assert_int_eq(store_schema_version(st), 3);
	ck_assert_int_eq(store_user_get(st, "alice", &u), 0);
	ck_assert_uint_eq(u.roles.n, 1);
	store_user_clear(&u);
	ck_assert_int_eq(key_add("alice", 1, T0), 0);
	h = raw_open();
	raw_text(h, "SELECT count(*) FROM user_keys", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
}
END_TEST

/*
 * A store of version 2, whose role rules allow no services: migrated
 * in place, its roles' rules kept, and services may be added.
 */
START_TEST(service_migration)
{
	struct store_role	 g;
	sqlite3			*h;
	char			*sv[] = { "5432" };
	char			 v[16];

	role_put("ops", "root", "web*", "env=prod");
	store_close(st);
	st = NULL;
	h = raw_open();
	raw_exec(h, "CREATE TABLE rr2 ("
	    "  role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,"
	    "  kind TEXT NOT NULL CHECK (kind IN ('login', 'node', 'label')),"
	    "  value TEXT NOT NULL,"
	    "  UNIQUE (role, kind, value)"
	    ") STRICT;"
	    "INSERT INTO rr2 SELECT role, kind, value FROM role_rules;"
	    "DROP TABLE role_rules;"
	    "ALTER TABLE rr2 RENAME TO role_rules;"
	    "PRAGMA user_version = 2");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);

	ck_assert_ptr_nonnull(st = store_open(db));
	ck_assert_int_eq(store_schema_version(st), 3);
	ck_assert_int_eq(store_role_get(st, "ops", &g), 0);
	ck_assert_uint_eq(g.logins.n, 1);
	ck_assert_str_eq(g.logins.v[0], "root");
	ck_assert_uint_eq(g.nodes.n, 1);
	ck_assert_str_eq(g.nodes.v[0], "web*");
	ck_assert_uint_eq(g.labels.n, 1);
	ck_assert_str_eq(g.labels.v[0], "env=prod");
	ck_assert_uint_eq(g.services.n, 0);
	store_role_clear(&g);

	g.name = "ops";
	g.services.v = sv;
	g.services.n = 1;
	ck_assert_int_eq(store_role_put(st, &g), 0);
	ck_assert_int_eq(store_role_get(st, "ops", &g), 0);
	ck_assert_uint_eq(g.services.n, 1);
	ck_assert_str_eq(g.services.v[0], "5432");
	store_role_clear(&g);
	/* Deleting a role still takes its rules. */
	ck_assert_int_eq(store_role_del(st, "ops"), 0);
	h = raw_open();
	raw_text(h, "SELECT count(*) FROM role_rules", v, sizeof(v));
	ck_assert_str_eq(v, "0");
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite	*s = suite_create("store");
	TCase	*tc;

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_add_test(tc, open_creates);
	tcase_add_test(tc, reopen_keeps_data);
	tcase_add_test(tc, mode_loose_refused);
	tcase_add_test(tc, symlink_refused);
	tcase_add_test(tc, wal_on);
	tcase_add_test(tc, newer_version_refused);
	tcase_add_test(tc, deleted_hash_wiped);
	suite_add_tcase(s, tc);

	/* These open the file themselves. */
	tc = tcase_create("file before open");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, mode_0600);
	tcase_add_test(tc, mode_0600_tight_umask);
	tcase_add_test(tc, not_a_database);
	tcase_add_test(tc, migrate_empty_file);
	tcase_add_test(tc, distrusts_the_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("users");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_add_test(tc, user_add_get);
	tcase_add_test(tc, user_add_exists);
	tcase_add_test(tc, user_get_notfound);
	tcase_add_test(tc, user_bad_name);
	tcase_add_test(tc, user_passwd);
	tcase_add_test(tc, user_roles);
	tcase_add_test(tc, user_del);
	tcase_add_test(tc, user_del_revokes_certs);
	tcase_add_test(tc, user_list_sorted);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_add_test(tc, key_add_get);
	tcase_add_test(tc, key_exists_notfound);
	tcase_add_test(tc, key_limit);
	tcase_add_test(tc, key_del);
	tcase_add_test(tc, key_gone_with_user);
	tcase_add_test(tc, key_list_order);
	tcase_add_test(tc, key_migration);
	tcase_add_test(tc, service_migration);
	suite_add_tcase(s, tc);

	tc = tcase_create("roles");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_add_test(tc, role_put_get);
	tcase_add_test(tc, role_put_replaces);
	tcase_add_test(tc, role_notfound);
	tcase_add_test(tc, role_del_takes_it_from_users);
	tcase_add_test(tc, role_list_sorted);
	suite_add_tcase(s, tc);

	tc = tcase_create("tokens");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, token_used_once);
	tcase_add_test(tc, token_notfound);
	tcase_add_test(tc, token_expired);
	tcase_add_test(tc, token_bound_to_node);
	tcase_add_test(tc, token_add_exists);
	tcase_add_test(tc, token_revoke);
	tcase_add_test(tc, token_list);
	tcase_add_test(tc, token_two_handles);
	tcase_add_test(tc, token_race);
	suite_add_tcase(s, tc);

	tc = tcase_create("certs");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_add_test(tc, cert_add_get);
	tcase_add_test(tc, cert_exists_notfound);
	tcase_add_test(tc, cert_revoke);
	tcase_add_test(tc, cert_revoke_name);
	tcase_add_test(tc, cert_revoked_list);
	tcase_add_test(tc, cert_list_newest_first);
	suite_add_tcase(s, tc);

	tc = tcase_create("nodes and events");
	tcase_add_checked_fixture(tc, store_setup, dir_teardown);
	tcase_add_test(tc, node_put_list);
	tcase_add_test(tc, node_put_replaces);
	tcase_add_test(tc, node_get);
	tcase_add_test(tc, event_list_order_limit);
	tcase_add_test(tc, event_empty_and_long);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(store_suite());
	int	 failed;

	/* The store's warnings to stderr, next to the failures they explain. */
	log_init(1, LOG_DAEMON);
	log_setverbose(0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
