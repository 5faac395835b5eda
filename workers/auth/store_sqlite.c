/*
 * The auth worker's store on SQLite 3: one file, in WAL mode, its
 * schema versioned in PRAGMA user_version.
 *
 * Every call is one transaction.  A change begins with BEGIN IMMEDIATE:
 * of two processes sharing the file, the second waits (up to
 * STORE_BUSY_MS) for the first to commit, and then reads what the first
 * wrote before it decides anything; that is what makes a join token
 * usable once.  A read of several statements begins with a plain BEGIN,
 * so that it sees one state of the file.  Statements are prepared once
 * per handle, their values always bound, never written into the SQL.
 *
 * Durability: synchronous=FULL syncs the write-ahead log at every
 * commit, so a call that returned 0 survives the loss of the process and
 * of the machine.  NORMAL, the usual WAL choice, would survive the first
 * only: the last commits could roll back at a power cut.  An auth store
 * writes little (logins are bound by the password hash's cost), so the
 * sync per commit is cheap here.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

#define STORE_BUSY_MS	5000	/* wait for another process's transaction */
#define STORE_TEXT_MAX	4096	/* hashes, patterns, event text */
#define STORE_SERIAL_MAX 40	/* hex digits of a serial */
#define STORE_ID_LEN	16	/* hex digits of a token id */

/*
 * Migration N takes the schema from version N-1 to N, in one
 * transaction with the bump of user_version.  Append, never edit: a
 * file at version N has run the first N of them.
 */
static const char *const store_migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE users ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  password_changed INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE user_roles ("
	"  user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
	"  role TEXT NOT NULL,"
	"  UNIQUE (user, role)"
	") STRICT;"
	"CREATE INDEX user_roles_role ON user_roles (role);"
	"CREATE TABLE roles ("
	"  name TEXT PRIMARY KEY NOT NULL"
	") STRICT;"
	"CREATE TABLE role_rules ("
	"  role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('login', 'node', 'label')),"
	"  value TEXT NOT NULL,"
	"  UNIQUE (role, kind, value)"
	") STRICT;"
	"CREATE TABLE tokens ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
	"  node TEXT,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  used INTEGER NOT NULL DEFAULT 0"
	") STRICT;"
	"CREATE TABLE certs ("
	"  serial TEXT PRIMARY KEY NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('user', 'node')),"
	"  name TEXT NOT NULL,"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  revoked INTEGER NOT NULL DEFAULT 0"
	") STRICT;"
	"CREATE INDEX certs_name ON certs (kind, name);"
	"CREATE INDEX certs_issued ON certs (not_before);"
	"CREATE INDEX certs_revoked ON certs (not_after) WHERE revoked != 0;"
	"CREATE TABLE nodes ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  serial TEXT NOT NULL,"
	"  joined INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE node_labels ("
	"  node TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,"
	"  label TEXT NOT NULL,"
	"  UNIQUE (node, label)"
	") STRICT;"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  address TEXT NOT NULL DEFAULT '',"
	"  success INTEGER NOT NULL,"
	"  detail TEXT NOT NULL DEFAULT ''"
	") STRICT;",
	/* 2: users' SSH public keys. */
	"CREATE TABLE user_keys ("
	"  user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
	"  type TEXT NOT NULL,"
	"  blob TEXT NOT NULL,"
	"  fingerprint TEXT NOT NULL,"
	"  comment TEXT NOT NULL DEFAULT '',"
	"  added INTEGER NOT NULL,"
	"  UNIQUE (user, fingerprint)"
	") STRICT;",
	/*
	 * 3: roles' service patterns.  A CHECK cannot be altered, so the
	 * rules move to a table that allows the new kind.
	 */
	"CREATE TABLE role_rules_3 ("
	"  role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL"
	"    CHECK (kind IN ('login', 'node', 'label', 'service')),"
	"  value TEXT NOT NULL,"
	"  UNIQUE (role, kind, value)"
	") STRICT;"
	"INSERT INTO role_rules_3 (role, kind, value)"
	"  SELECT role, kind, value FROM role_rules;"
	"DROP TABLE role_rules;"
	"ALTER TABLE role_rules_3 RENAME TO role_rules;",
};
#define STORE_VERSION	((int)(sizeof(store_migrations) / \
			    sizeof(store_migrations[0])))

enum store_q {
	Q_VERSION,
	Q_USER_FIND,
	Q_USER_ADD,
	Q_USER_GET,
	Q_USER_LIST,
	Q_USER_DEL,
	Q_USER_PASSWD,
	Q_USER_ROLES,
	Q_USER_ROLES_DEL,
	Q_USER_ROLE_ADD,
	Q_USER_ROLE_DROP,
	Q_KEY_COUNT,
	Q_KEY_FIND,
	Q_KEY_ADD,
	Q_KEY_GET,
	Q_KEY_DEL,
	Q_KEY_LIST,
	Q_ROLE_ADD,
	Q_ROLE_GET,
	Q_ROLE_LIST,
	Q_ROLE_DEL,
	Q_RULES,
	Q_RULES_DEL,
	Q_RULE_ADD,
	Q_TOKEN_FIND,
	Q_TOKEN_ADD,
	Q_TOKEN_GET,
	Q_TOKEN_USE,
	Q_TOKEN_DEL,
	Q_TOKEN_LIST,
	Q_CERT_FIND,
	Q_CERT_ADD,
	Q_CERT_GET,
	Q_CERT_REVOKE,
	Q_CERT_REVOKE_NAME,
	Q_CERT_LIST,
	Q_CERT_REVOKED,
	Q_NODE_PUT,
	Q_NODE_LIST,
	Q_NODE_GET,
	Q_LABELS,
	Q_LABELS_DEL,
	Q_LABEL_ADD,
	Q_EVENT_ADD,
	Q_EVENT_LIST,
	Q_MAX
};

static const char *const store_sql[Q_MAX] = {
	[Q_VERSION] = "PRAGMA user_version",
	[Q_USER_FIND] = "SELECT 1 FROM users WHERE name = ?1",
	[Q_USER_ADD] = "INSERT INTO users (name, hash, created,"
	    " password_changed) VALUES (?1, ?2, ?3, ?3)",
	[Q_USER_GET] = "SELECT name, hash, created, password_changed"
	    " FROM users WHERE name = ?1",
	[Q_USER_LIST] = "SELECT name, hash, created, password_changed"
	    " FROM users ORDER BY name",
	[Q_USER_DEL] = "DELETE FROM users WHERE name = ?1",
	[Q_USER_PASSWD] = "UPDATE users SET hash = ?2, password_changed = ?3"
	    " WHERE name = ?1",
	[Q_USER_ROLES] = "SELECT role FROM user_roles WHERE user = ?1"
	    " ORDER BY rowid",
	[Q_USER_ROLES_DEL] = "DELETE FROM user_roles WHERE user = ?1",
	[Q_USER_ROLE_ADD] = "INSERT OR IGNORE INTO user_roles (user, role)"
	    " VALUES (?1, ?2)",
	[Q_USER_ROLE_DROP] = "DELETE FROM user_roles WHERE role = ?1",
	[Q_KEY_COUNT] = "SELECT count(*) FROM user_keys WHERE user = ?1",
	[Q_KEY_FIND] = "SELECT 1 FROM user_keys WHERE user = ?1"
	    " AND fingerprint = ?2",
	[Q_KEY_ADD] = "INSERT INTO user_keys (user, type, blob, fingerprint,"
	    " comment, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_KEY_GET] = "SELECT user, type, blob, fingerprint, comment, added"
	    " FROM user_keys WHERE user = ?1 AND fingerprint = ?2",
	[Q_KEY_DEL] = "DELETE FROM user_keys WHERE user = ?1"
	    " AND fingerprint = ?2",
	[Q_KEY_LIST] = "SELECT user, type, blob, fingerprint, comment, added"
	    " FROM user_keys WHERE ?1 IS NULL OR user = ?1"
	    " ORDER BY user, added, rowid",
	[Q_ROLE_ADD] = "INSERT OR IGNORE INTO roles (name) VALUES (?1)",
	[Q_ROLE_GET] = "SELECT name FROM roles WHERE name = ?1",
	[Q_ROLE_LIST] = "SELECT name FROM roles ORDER BY name",
	[Q_ROLE_DEL] = "DELETE FROM roles WHERE name = ?1",
	[Q_RULES] = "SELECT kind, value FROM role_rules WHERE role = ?1"
	    " ORDER BY rowid",
	[Q_RULES_DEL] = "DELETE FROM role_rules WHERE role = ?1",
	[Q_RULE_ADD] = "INSERT OR IGNORE INTO role_rules (role, kind, value)"
	    " VALUES (?1, ?2, ?3)",
	[Q_TOKEN_FIND] = "SELECT 1 FROM tokens WHERE id = ?1 OR hash = ?2",
	[Q_TOKEN_ADD] = "INSERT INTO tokens (id, hash, node, created, expires,"
	    " used) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_TOKEN_GET] = "SELECT id, node, expires, used FROM tokens"
	    " WHERE hash = ?1",
	[Q_TOKEN_USE] = "UPDATE tokens SET used = ?2 WHERE id = ?1"
	    " AND used = 0",
	[Q_TOKEN_DEL] = "DELETE FROM tokens WHERE id = ?1",
	[Q_TOKEN_LIST] = "SELECT id, node, created, expires, used FROM tokens"
	    " ORDER BY created, id",
	[Q_CERT_FIND] = "SELECT 1 FROM certs WHERE serial = ?1",
	[Q_CERT_ADD] = "INSERT INTO certs (serial, kind, name, not_before,"
	    " not_after, revoked) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_CERT_GET] = "SELECT serial, kind, name, not_before, not_after,"
	    " revoked FROM certs WHERE serial = ?1",
	[Q_CERT_REVOKE] = "UPDATE certs SET revoked = ?2 WHERE serial = ?1"
	    " AND revoked = 0",
	[Q_CERT_REVOKE_NAME] = "UPDATE certs SET revoked = ?3"
	    " WHERE kind = ?1 AND name = ?2 AND revoked = 0"
	    " AND not_after > ?3",
	[Q_CERT_LIST] = "SELECT serial, kind, name, not_before, not_after,"
	    " revoked FROM certs ORDER BY not_before DESC, rowid DESC"
	    " LIMIT ?1",
	[Q_CERT_REVOKED] = "SELECT serial FROM certs WHERE revoked != 0"
	    " AND not_after > ?1 ORDER BY serial",
	[Q_NODE_PUT] = "INSERT INTO nodes (name, serial, joined)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE"
	    " SET serial = excluded.serial, joined = excluded.joined",
	[Q_NODE_LIST] = "SELECT name, serial, joined FROM nodes ORDER BY name",
	[Q_NODE_GET] = "SELECT name, serial, joined FROM nodes WHERE name = ?1",
	[Q_LABELS] = "SELECT label FROM node_labels WHERE node = ?1"
	    " ORDER BY rowid",
	[Q_LABELS_DEL] = "DELETE FROM node_labels WHERE node = ?1",
	[Q_LABEL_ADD] = "INSERT OR IGNORE INTO node_labels (node, label)"
	    " VALUES (?1, ?2)",
	[Q_EVENT_ADD] = "INSERT INTO events (time, type, name, address,"
	    " success, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_EVENT_LIST] = "SELECT time, type, name, address, success, detail"
	    " FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?1)"
	    " ORDER BY id",
};

struct store {
	sqlite3		*db;
	char		*path;
	const char	*op;		/* the call under way, for the log */
	sqlite3_stmt	*q[Q_MAX];	/* prepared when first used */
};

/* Never a value: SQLite's messages name columns, not their contents. */
static void
store_err(struct store *s, const char *what)
{
	log_warnx("%s: %s: %s: %s", s->path, s->op, what,
	    sqlite3_errmsg(s->db));
}

static int
store_exec(struct store *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_err(s, what);
		return (-1);
	}
	return (0);
}

/* The statement q, prepared, reset and without bindings. */
static sqlite3_stmt *
q_get(struct store *s, enum store_q q)
{
	if (s->q[q] == NULL) {
		if (sqlite3_prepare_v3(s->db, store_sql[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->q[q], NULL) != SQLITE_OK) {
			store_err(s, "prepare");
			s->q[q] = NULL;
			return (NULL);
		}
		return (s->q[q]);
	}
	/* A failed step was logged when it happened. */
	(void)sqlite3_reset(s->q[q]);
	if (sqlite3_clear_bindings(s->q[q]) != SQLITE_OK) {
		store_err(s, "clear bindings");
		return (NULL);
	}
	return (s->q[q]);
}

/* SQLITE_ROW, SQLITE_DONE, or -1. */
static int
q_step(struct store *s, sqlite3_stmt *st)
{
	int	 rc;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW || rc == SQLITE_DONE)
		return (rc);
	store_err(s, "step");
	return (-1);
}

/* Run a statement that returns no row. */
static int
q_run(struct store *s, sqlite3_stmt *st)
{
	int	 rc;

	if ((rc = q_step(s, st)) == SQLITE_ROW)
		log_warnx("%s: a row where none was expected", s->op);
	return (rc == SQLITE_DONE ? 0 : -1);
}

static int
b_text(struct store *s, sqlite3_stmt *st, int i, const char *v)
{
	int	 rc;

	if (v == NULL)
		rc = sqlite3_bind_null(st, i);
	else
		rc = sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		store_err(s, "bind");
		return (-1);
	}
	return (0);
}

/* At most max bytes of v: what the store keeps of a longer text. */
static int
b_textn(struct store *s, sqlite3_stmt *st, int i, const char *v, size_t max)
{
	if (sqlite3_bind_text(st, i, v, (int)strnlen(v, max),
	    SQLITE_STATIC) != SQLITE_OK) {
		store_err(s, "bind");
		return (-1);
	}
	return (0);
}

static int
b_int(struct store *s, sqlite3_stmt *st, int i, int64_t v)
{
	if (sqlite3_bind_int64(st, i, v) != SQLITE_OK) {
		store_err(s, "bind");
		return (-1);
	}
	return (0);
}

static int
b_hash(struct store *s, sqlite3_stmt *st, int i, const uint8_t *h)
{
	if (sqlite3_bind_blob(st, i, h, 32, SQLITE_STATIC) != SQLITE_OK) {
		store_err(s, "bind");
		return (-1);
	}
	return (0);
}

/* A LIMIT: 0 is none. */
static int
b_limit(struct store *s, sqlite3_stmt *st, int i, unsigned int limit)
{
	return (b_int(s, st, i, limit == 0 ? -1 : (int64_t)limit));
}

/*
 * Column i as a new string.  The file is not trusted to hold what this
 * code wrote: a NULL reads as "", and a text longer than max is refused
 * rather than handed to a caller that relies on the bound.
 */
static int
c_str(struct store *s, sqlite3_stmt *st, int i, size_t max, char **out)
{
	const unsigned char	*t;
	const char		*col;
	int			 len;

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		t = (const unsigned char *)"";
		len = 0;
	} else {
		if ((t = sqlite3_column_text(st, i)) == NULL) {
			store_err(s, "column");
			return (-1);
		}
		len = sqlite3_column_bytes(st, i);
	}
	if (len < 0 || (size_t)len > max) {
		if ((col = sqlite3_column_name(st, i)) == NULL)
			col = "?";
		log_warnx("%s: column %s holds %d bytes, more than %zu",
		    s->op, col, len, max);
		return (-1);
	}
	if ((*out = strndup((const char *)t, len)) == NULL) {
		log_warn("%s", s->op);
		return (-1);
	}
	return (0);
}

/* Column i into buf of size bytes, refused if it does not fit. */
static int
c_buf(struct store *s, sqlite3_stmt *st, int i, char *buf, size_t size)
{
	char	*t;

	if (c_str(s, st, i, size - 1, &t) == -1)
		return (-1);
	(void)strlcpy(buf, t, size);
	free(t);
	return (0);
}

/* Column i as a string, NULL if it is NULL. */
static int
c_str_null(struct store *s, sqlite3_stmt *st, int i, size_t max, char **out)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		*out = NULL;
		return (0);
	}
	return (c_str(s, st, i, max, out));
}

static time_t
c_time(sqlite3_stmt *st, int i)
{
	return ((time_t)sqlite3_column_int64(st, i));
}

static int
tx_begin(struct store *s, int write)
{
	return (store_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", "begin"));
}

/*
 * End the transaction: commit if rv is 0, roll back otherwise.  Returns
 * rv, or -1 if the commit failed.
 */
static int
tx_end(struct store *s, int rv)
{
	size_t	 i;

	/* No statement may hold the snapshot, or a bound pointer, past. */
	for (i = 0; i < Q_MAX; i++) {
		if (s->q[i] == NULL)
			continue;
		(void)sqlite3_reset(s->q[i]);
		(void)sqlite3_clear_bindings(s->q[i]);
	}
	if (rv == 0) {
		if (store_exec(s, "COMMIT", "commit") == 0)
			return (0);
		rv = -1;
	}
	if (!sqlite3_get_autocommit(s->db) &&
	    store_exec(s, "ROLLBACK", "rollback") == -1)
		rv = -1;
	return (rv);
}

/* 1 if q bound with key finds a row, 0 if not, -1 on failure. */
static int
q_exists(struct store *s, enum store_q q, const char *key)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = q_get(s, q)) == NULL || b_text(s, st, 1, key) == -1 ||
	    (rc = q_step(s, st)) == -1)
		return (-1);
	return (rc == SQLITE_ROW);
}

/* Input checks: the caller validates, the store refuses what it cannot keep. */

static int
text_ok(struct store *s, const char *v, size_t min, size_t max,
    const char *what)
{
	size_t	 len;

	if (v == NULL || (len = strnlen(v, max + 1)) < min || len > max) {
		log_warnx("%s: %s missing or of a length outside %zu-%zu",
		    s->op, what, min, max);
		return (-1);
	}
	return (0);
}

static int
name_ok(struct store *s, const char *v, const char *what)
{
	return (text_ok(s, v, 1, STORE_NAME_MAX, what));
}

static int
strv_ok(struct store *s, const struct store_strv *sv, size_t max,
    const char *what)
{
	size_t	 i;

	if (sv == NULL || sv->n == 0)
		return (0);
	if (sv->v == NULL) {
		log_warnx("%s: %s: no strings", s->op, what);
		return (-1);
	}
	for (i = 0; i < sv->n; i++)
		if (text_ok(s, sv->v[i], 1, max, what) == -1)
			return (-1);
	return (0);
}

/* min to max lower case hex digits; a serial has no leading zero. */
static int
hex_valid(const char *v, size_t min, size_t max, int serial)
{
	size_t	 i;

	if (v == NULL)
		return (0);
	for (i = 0; i <= max && v[i] != '\0'; i++)
		if ((v[i] < '0' || v[i] > '9') && (v[i] < 'a' || v[i] > 'f'))
			return (0);
	if (i < min || i > max || (serial && v[0] == '0' && i > 1))
		return (0);
	return (1);
}

static int
id_ok(struct store *s, const char *id)
{
	if (!hex_valid(id, STORE_ID_LEN, STORE_ID_LEN, 0)) {
		log_warnx("%s: a token id is %d lower case hex digits", s->op,
		    STORE_ID_LEN);
		return (-1);
	}
	return (0);
}

static int
serial_ok(struct store *s, const char *serial)
{
	if (!hex_valid(serial, 1, STORE_SERIAL_MAX, 1)) {
		log_warnx("%s: a serial is lower case hex without leading "
		    "zeros, at most %d digits", s->op, STORE_SERIAL_MAX);
		return (-1);
	}
	return (0);
}

/* 0 means "not yet" in used and revoked: a time must be after it. */
static int
time_ok(struct store *s, time_t t)
{
	if (t <= 0) {
		log_warnx("%s: time %lld is not after the epoch", s->op,
		    (long long)t);
		return (-1);
	}
	return (0);
}

/*
 * Room for element n of an array of cap elements of size bytes, the new
 * ones zeroed; NULL on failure, arr untouched.
 */
static void *
grow(struct store *s, void *arr, size_t *cap, size_t n, size_t size)
{
	void	*p;
	size_t	 ncap;

	if (n < *cap)
		return (arr);
	ncap = *cap == 0 ? 8 : *cap * 2;
	if ((p = reallocarray(arr, ncap, size)) == NULL) {
		log_warn("%s", s->op);
		return (NULL);
	}
	memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
	*cap = ncap;
	return (p);
}

static int
strv_push(struct store *s, struct store_strv *sv, size_t *cap, char *str)
{
	char	**v;

	if ((v = grow(s, sv->v, cap, sv->n, sizeof(*sv->v))) == NULL) {
		free(str);
		return (-1);
	}
	sv->v = v;
	sv->v[sv->n++] = str;
	return (0);
}

/* Every row's first column of the bound statement st into sv. */
static int
strv_rows(struct store *s, sqlite3_stmt *st, size_t max,
    struct store_strv *sv)
{
	char	*str;
	size_t	 cap = 0;
	int	 rc;

	memset(sv, 0, sizeof(*sv));
	while ((rc = q_step(s, st)) == SQLITE_ROW)
		if (c_str(s, st, 0, max, &str) == -1 ||
		    strv_push(s, sv, &cap, str) == -1)
			break;
	if (rc != SQLITE_DONE) {
		store_strv_clear(sv);
		return (-1);
	}
	return (0);
}

/* The strings q yields for key. */
static int
strv_get(struct store *s, enum store_q q, const char *key, size_t max,
    struct store_strv *sv)
{
	sqlite3_stmt	*st;

	memset(sv, 0, sizeof(*sv));
	if ((st = q_get(s, q)) == NULL || b_text(s, st, 1, key) == -1)
		return (-1);
	return (strv_rows(s, st, max, sv));
}

/* Insert (key, each string of sv) with q. */
static int
strv_put(struct store *s, enum store_q q, const char *key,
    const struct store_strv *sv)
{
	sqlite3_stmt	*st;
	size_t		 i;

	for (i = 0; sv != NULL && i < sv->n; i++)
		if ((st = q_get(s, q)) == NULL ||
		    b_text(s, st, 1, key) == -1 ||
		    b_text(s, st, 2, sv->v[i]) == -1 || q_run(s, st) == -1)
			return (-1);
	return (0);
}

/*
 * Reading rows into structures: a row reader fills the zeroed entry it
 * is given from st's row; a clear frees what an entry holds, whether
 * the reader filled it in full or failed half way, and zeroes it.
 */

/* Clear each of the n entries of size bytes of arr, and free arr. */
static void
entries_free(void *arr, size_t n, size_t size, void (*clear)(void *))
{
	size_t	 i;

	for (i = 0; arr != NULL && i < n; i++)
		clear((char *)arr + i * size);
	free(arr);
}

/*
 * In a read transaction, the row q finds for key, read by row into p:
 * 0, STORE_NOTFOUND or -1, p cleared unless 0.
 */
static int
row_get(struct store *s, enum store_q q, const char *key,
    int (*row)(struct store *, sqlite3_stmt *, void *),
    void (*clear)(void *), void *p)
{
	sqlite3_stmt	*st;
	int		 rv;

	if (tx_begin(s, 0) == -1)
		return (-1);
	if ((st = q_get(s, q)) == NULL ||
	    b_text(s, st, 1, key) == -1 || (rv = q_step(s, st)) == -1)
		rv = -1;
	else if (rv == SQLITE_DONE)
		rv = STORE_NOTFOUND;
	else
		rv = row(s, st, p);
	if ((rv = tx_end(s, rv)) != 0)
		clear(p);
	return (rv);
}

static int	 list_run(struct store *, enum store_q, const unsigned int *,
		    const char *const *, size_t,
		    int (*)(struct store *, sqlite3_stmt *, void *),
		    void (*)(void *), void **, size_t *);

/*
 * In a read transaction, every row of q, each read by row into an entry
 * of size bytes of a new array: *v, *n entries.  limit, unless NULL, is
 * bound to q's LIMIT ?1.  On failure, -1, with what was read cleared and
 * freed, *v NULL and *n 0.
 */
static int
list_get(struct store *s, enum store_q q, const unsigned int *limit,
    size_t size, int (*row)(struct store *, sqlite3_stmt *, void *),
    void (*clear)(void *), void **v, size_t *n)
{
	return (list_run(s, q, limit, NULL, size, row, clear, v, n));
}

/* list_get, with *key (which may be NULL) bound to ?1 if key is not NULL. */
static int
list_run(struct store *s, enum store_q q, const unsigned int *limit,
    const char *const *key, size_t size,
    int (*row)(struct store *, sqlite3_stmt *, void *),
    void (*clear)(void *), void **v, size_t *n)
{
	sqlite3_stmt	*st;
	char		*arr = NULL, *p;
	size_t		 cap = 0, i = 0;
	int		 rc;

	*v = NULL;
	*n = 0;
	if (tx_begin(s, 0) == -1)
		return (-1);
	if ((st = q_get(s, q)) == NULL ||
	    (limit != NULL && b_limit(s, st, 1, *limit) == -1) ||
	    (key != NULL && b_text(s, st, 1, *key) == -1))
		rc = -1;
	else
		while ((rc = q_step(s, st)) == SQLITE_ROW) {
			if ((p = grow(s, arr, &cap, i, size)) == NULL) {
				rc = -1;
				break;
			}
			arr = p;
			/* Counted before it is read: a failed one is cleared. */
			if (row(s, st, arr + i++ * size) == -1) {
				rc = -1;
				break;
			}
		}
	if (tx_end(s, rc == SQLITE_DONE ? 0 : -1) == -1) {
		entries_free(arr, i, size, clear);
		return (-1);
	}
	*v = arr;
	*n = i;
	return (0);
}

/* Opening, and the schema. */

/*
 * Create the file, mode 0600 whatever the umask, if it is not there;
 * refuse one that others may read.  SQLite is then never the one to
 * create it.
 */
static int
store_create(const char *path)
{
	struct stat	 sb;
	char		 dir[PATH_MAX];
	int		 fd, dfd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		if (errno != EEXIST) {
			log_warn("%s", path);
			return (-1);
		}
		if (lstat(path, &sb) == -1) {
			log_warn("%s", path);
			return (-1);
		}
		if (!S_ISREG(sb.st_mode)) {
			log_warnx("%s: not a regular file", path);
			return (-1);
		}
		if ((sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
			log_warnx("%s: mode %04o: group or others may read "
			    "the password hashes; chmod 600 it", path,
			    (unsigned int)(sb.st_mode & 07777));
			return (-1);
		}
		return (0);
	}
	if (fchmod(fd, 0600) == -1 || fsync(fd) == -1) {
		log_warn("%s", path);
		(void)close(fd);
		return (-1);
	}
	if (close(fd) == -1) {
		log_warn("%s", path);
		return (-1);
	}

	/* The new name is durable once its directory is synced. */
	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		log_warnx("%s: path too long", path);
		return (-1);
	}
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_warn("%s: directory", path);
		return (-1);
	}
	if (fsync(dfd) == -1) {
		log_warn("%s: directory", path);
		(void)close(dfd);
		return (-1);
	}
	(void)close(dfd);
	return (0);
}

/* Run a pragma that answers one row; its answer into buf. */
static int
store_pragma(struct store *s, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt	*st;
	const char	*t;
	int		 rv = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_err(s, sql);
		return (-1);
	}
	if (q_step(s, st) == SQLITE_ROW &&
	    (t = (const char *)sqlite3_column_text(st, 0)) != NULL &&
	    strlcpy(buf, t, size) < size)
		rv = 0;
	else
		log_warnx("%s: %s: no answer", s->op, sql);
	(void)sqlite3_finalize(st);
	return (rv);
}

/* Set a pragma and read it back: that it took, not only that it ran. */
static int
store_set(struct store *s, const char *set, const char *get,
    const char *want)
{
	char	 got[32];

	if (store_exec(s, set, set) == -1 ||
	    store_pragma(s, get, got, sizeof(got)) == -1)
		return (-1);
	if (strcasecmp(got, want) != 0) {
		log_warnx("%s: %s: %s, not %s", s->path, get, got, want);
		return (-1);
	}
	return (0);
}

static int
store_version(struct store *s)
{
	sqlite3_stmt	*st;
	int		 v;

	if ((st = q_get(s, Q_VERSION)) == NULL || q_step(s, st) != SQLITE_ROW)
		return (-1);
	v = sqlite3_column_int(st, 0);
	(void)sqlite3_reset(st);
	if (v < 0) {
		log_warnx("%s: schema version %d is not one of mezited's",
		    s->path, v);
		return (-1);
	}
	if (v > STORE_VERSION) {
		log_warnx("%s: schema version %d is newer than this "
		    "mezited's %d: refused", s->path, v, STORE_VERSION);
		return (-1);
	}
	return (v);
}

/*
 * Bring the schema to STORE_VERSION, one migration per transaction.  The
 * version is read again inside each, so that of two processes opening a
 * new file at once, one migrates and the other finds it done.
 */
static int
store_migrate(struct store *s)
{
	char	 bump[64];
	int	 v, rv, from = -1;

	for (;;) {
		if (tx_begin(s, 1) == -1)
			return (-1);
		if ((v = store_version(s)) == -1 || v == STORE_VERSION)
			return (tx_end(s, v == -1 ? -1 : 0));
		if (from == -1)
			from = v;
		/* The version is ours, not a value from outside. */
		(void)snprintf(bump, sizeof(bump), "PRAGMA user_version = %d",
		    v + 1);
		rv = 0;
		if (store_exec(s, store_migrations[v], "migrate") == -1 ||
		    store_exec(s, bump, "migrate") == -1)
			rv = -1;
		if (tx_end(s, rv) == -1) {
			log_warnx("%s: migration to version %d failed",
			    s->path, v + 1);
			return (-1);
		}
		/* A new file is made at the current version, not migrated. */
		if (from == 0)
			log_debug("%s: schema version %d", s->path, v + 1);
		else
			log_info("%s: schema migrated from version %d to %d",
			    s->path, v, v + 1);
	}
}

struct store *
store_open(const char *path)
{
	struct store	*s;
	int		 rc, on;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->path = strdup(path)) == NULL) {
		log_warn("%s", __func__);
		free(s);
		return (NULL);
	}
	s->op = __func__;
	if (store_create(path) == -1)
		goto fail;

	/*
	 * Not SQLITE_OPEN_CREATE: the file is there, and had it gone since,
	 * SQLite would make it again with the umask's mode.
	 */
	if ((rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
	    SQLITE_OPEN_EXRESCODE, NULL)) != SQLITE_OK) {
		log_warnx("%s: %s", path, s->db != NULL ?
		    sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}

	/*
	 * The schema is this code's: no SQL function with side effects may
	 * run from it, and no statement may write it except as SQL DDL.
	 */
	if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0,
	    &on) != SQLITE_OK || on != 0 ||
	    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1,
	    &on) != SQLITE_OK || on != 1) {
		store_err(s, "db_config");
		goto fail;
	}
	if (sqlite3_busy_timeout(s->db, STORE_BUSY_MS) != SQLITE_OK) {
		store_err(s, "busy_timeout");
		goto fail;
	}

	/*
	 * secure_delete zeroes what a deletion frees (a user's hash) in the
	 * file; journal_size_limit truncates the log when it restarts, so
	 * that old copies of those pages do not linger in it either.
	 */
	if (store_set(s, "PRAGMA journal_mode = WAL", "PRAGMA journal_mode",
	    "wal") == -1 ||
	    store_set(s, "PRAGMA synchronous = FULL", "PRAGMA synchronous",
	    "2") == -1 ||
	    store_set(s, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys",
	    "1") == -1 ||
	    store_set(s, "PRAGMA secure_delete = ON", "PRAGMA secure_delete",
	    "1") == -1 ||
	    store_set(s, "PRAGMA journal_size_limit = 0",
	    "PRAGMA journal_size_limit", "0") == -1)
		goto fail;

	if (store_migrate(s) == -1)
		goto fail;
	return (s);

 fail:
	store_close(s);
	return (NULL);
}

void
store_close(struct store *s)
{
	size_t	 i;

	if (s == NULL)
		return;
	s->op = __func__;
	for (i = 0; i < Q_MAX; i++)
		(void)sqlite3_finalize(s->q[i]);
	/* With every statement finalized, close cannot be busy. */
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		store_err(s, "close");
	free(s->path);
	free(s);
}

int
store_schema_version(struct store *s)
{
	int	 v;

	s->op = __func__;
	if (tx_begin(s, 0) == -1)
		return (-1);
	v = store_version(s);
	if (tx_end(s, v == -1 ? -1 : 0) == -1)
		return (-1);
	return (v);
}

/* Users. */

static int
user_roles_put(struct store *s, const char *name,
    const struct store_strv *roles)
{
	sqlite3_stmt	*st;

	if ((st = q_get(s, Q_USER_ROLES_DEL)) == NULL ||
	    b_text(s, st, 1, name) == -1 || q_run(s, st) == -1)
		return (-1);
	return (strv_put(s, Q_USER_ROLE_ADD, name, roles));
}

int
store_user_add(struct store *s, const char *name, const char *hash,
    const struct store_strv *roles, time_t now)
{
	sqlite3_stmt	*st;
	int		 rv;

	s->op = __func__;
	if (name_ok(s, name, "name") == -1 ||
	    text_ok(s, hash, 1, STORE_TEXT_MAX, "hash") == -1 ||
	    strv_ok(s, roles, STORE_NAME_MAX, "role") == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((rv = q_exists(s, Q_USER_FIND, name)) == 1)
		rv = STORE_EXISTS;
	else if (rv == 0) {
		if ((st = q_get(s, Q_USER_ADD)) == NULL ||
		    b_text(s, st, 1, name) == -1 ||
		    b_text(s, st, 2, hash) == -1 ||
		    b_int(s, st, 3, now) == -1 || q_run(s, st) == -1 ||
		    user_roles_put(s, name, roles) == -1)
			rv = -1;
	}
	return (tx_end(s, rv));
}

/* The user of st's row, and its roles. */
static int
user_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_user	*u = p;

	if (c_str(s, st, 0, STORE_NAME_MAX, &u->name) == -1 ||
	    c_str(s, st, 1, STORE_TEXT_MAX, &u->hash) == -1)
		return (-1);
	u->created = c_time(st, 2);
	u->password_changed = c_time(st, 3);
	return (strv_get(s, Q_USER_ROLES, u->name, STORE_NAME_MAX,
	    &u->roles));
}

/* store_user_clear, in the type the row helpers call. */
static void
user_clear(void *u)
{
	store_user_clear(u);
}

int
store_user_get(struct store *s, const char *name, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	s->op = __func__;
	if (name_ok(s, name, "name") == -1)
		return (-1);
	return (row_get(s, Q_USER_GET, name, user_row, user_clear, u));
}

int
store_user_del(struct store *s, const char *name, time_t now)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (name_ok(s, name, "name") == -1 || time_ok(s, now) == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	/*
	 * Her roles and keys go with her (ON DELETE CASCADE); her
	 * certificates too.
	 */
	if ((st = q_get(s, Q_USER_DEL)) == NULL ||
	    b_text(s, st, 1, name) == -1 || q_run(s, st) == -1)
		rv = -1;
	else if (sqlite3_changes(s->db) == 0)
		rv = STORE_NOTFOUND;
	else if ((st = q_get(s, Q_CERT_REVOKE_NAME)) == NULL ||
	    b_text(s, st, 1, "user") == -1 || b_text(s, st, 2, name) == -1 ||
	    b_int(s, st, 3, now) == -1 || q_run(s, st) == -1)
		rv = -1;
	return (tx_end(s, rv));
}

int
store_user_passwd(struct store *s, const char *name, const char *hash,
    time_t now)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (name_ok(s, name, "name") == -1 ||
	    text_ok(s, hash, 1, STORE_TEXT_MAX, "hash") == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_USER_PASSWD)) == NULL ||
	    b_text(s, st, 1, name) == -1 || b_text(s, st, 2, hash) == -1 ||
	    b_int(s, st, 3, now) == -1 || q_run(s, st) == -1)
		rv = -1;
	else if (sqlite3_changes(s->db) == 0)
		rv = STORE_NOTFOUND;
	return (tx_end(s, rv));
}

int
store_user_roles(struct store *s, const char *name,
    const struct store_strv *roles)
{
	int	 rv;

	s->op = __func__;
	if (name_ok(s, name, "name") == -1 ||
	    strv_ok(s, roles, STORE_NAME_MAX, "role") == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((rv = q_exists(s, Q_USER_FIND, name)) == 0)
		rv = STORE_NOTFOUND;
	else if (rv == 1)
		rv = user_roles_put(s, name, roles);
	return (tx_end(s, rv));
}

int
store_user_list(struct store *s, struct store_user **users, size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	rv = list_get(s, Q_USER_LIST, NULL, sizeof(**users), user_row,
	    user_clear, &v, n);
	*users = v;
	return (rv);
}

void
store_user_clear(struct store_user *u)
{
	free(u->name);
	if (u->hash != NULL)
		freezero(u->hash, strlen(u->hash));
	store_strv_clear(&u->roles);
	memset(u, 0, sizeof(*u));
}

void
store_user_free(struct store_user *u, size_t n)
{
	entries_free(u, n, sizeof(*u), user_clear);
}

/* Users' SSH public keys. */

static int
key_ok(struct store *s, const struct store_key *k)
{
	if (name_ok(s, k->user, "user") == -1 ||
	    text_ok(s, k->type, 1, sizeof(k->type) - 1, "type") == -1 ||
	    text_ok(s, k->blob, 1, STORE_TEXT_MAX * 2, "key") == -1 ||
	    text_ok(s, k->fingerprint, sizeof(k->fingerprint) - 1,
	    sizeof(k->fingerprint) - 1, "fingerprint") == -1 ||
	    text_ok(s, k->comment, 0, STORE_TEXT_MAX, "comment") == -1)
		return (-1);
	return (0);
}

int
store_key_add(struct store *s, const struct store_key *k)
{
	sqlite3_stmt	*st;
	int		 rv;

	s->op = __func__;
	if (key_ok(s, k) == -1 || tx_begin(s, 1) == -1)
		return (-1);
	if ((rv = q_exists(s, Q_USER_FIND, k->user)) == 0)
		rv = STORE_NOTFOUND;
	else if (rv == 1) {
		rv = 0;
		if ((st = q_get(s, Q_KEY_FIND)) == NULL ||
		    b_text(s, st, 1, k->user) == -1 ||
		    b_text(s, st, 2, k->fingerprint) == -1 ||
		    (rv = q_step(s, st)) == -1)
			rv = -1;
		else if (rv == SQLITE_ROW)
			rv = STORE_EXISTS;
		else if ((st = q_get(s, Q_KEY_COUNT)) == NULL ||
		    b_text(s, st, 1, k->user) == -1 ||
		    q_step(s, st) != SQLITE_ROW)
			rv = -1;
		else if (sqlite3_column_int64(st, 0) >= STORE_KEYS_MAX)
			rv = STORE_CONFLICT;
		else if ((st = q_get(s, Q_KEY_ADD)) == NULL ||
		    b_text(s, st, 1, k->user) == -1 ||
		    b_text(s, st, 2, k->type) == -1 ||
		    b_text(s, st, 3, k->blob) == -1 ||
		    b_text(s, st, 4, k->fingerprint) == -1 ||
		    b_text(s, st, 5, k->comment) == -1 ||
		    b_int(s, st, 6, k->added) == -1 || q_run(s, st) == -1)
			rv = -1;
		else
			rv = 0;
	}
	return (tx_end(s, rv));
}

/* The key of st's row. */
static int
key_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_key	*k = p;

	if (c_str(s, st, 0, STORE_NAME_MAX, &k->user) == -1 ||
	    c_buf(s, st, 1, k->type, sizeof(k->type)) == -1 ||
	    c_str(s, st, 2, STORE_TEXT_MAX * 2, &k->blob) == -1 ||
	    c_buf(s, st, 3, k->fingerprint, sizeof(k->fingerprint)) == -1 ||
	    c_str(s, st, 4, STORE_TEXT_MAX, &k->comment) == -1)
		return (-1);
	k->added = c_time(st, 5);
	return (0);
}

/* store_key_clear, in the type the row helpers call. */
static void
key_clear(void *k)
{
	store_key_clear(k);
}

int
store_key_get(struct store *s, const char *user, const char *fingerprint,
    struct store_key *k)
{
	sqlite3_stmt	*st;
	int		 rv;

	memset(k, 0, sizeof(*k));
	s->op = __func__;
	if (name_ok(s, user, "user") == -1 ||
	    text_ok(s, fingerprint, 1, sizeof(k->fingerprint) - 1,
	    "fingerprint") == -1 || tx_begin(s, 0) == -1)
		return (-1);
	if ((st = q_get(s, Q_KEY_GET)) == NULL ||
	    b_text(s, st, 1, user) == -1 ||
	    b_text(s, st, 2, fingerprint) == -1 || (rv = q_step(s, st)) == -1)
		rv = -1;
	else if (rv == SQLITE_DONE)
		rv = STORE_NOTFOUND;
	else
		rv = key_row(s, st, k);
	if ((rv = tx_end(s, rv)) != 0)
		store_key_clear(k);
	return (rv);
}

int
store_key_del(struct store *s, const char *user, const char *fingerprint)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (name_ok(s, user, "user") == -1 ||
	    text_ok(s, fingerprint, 1, STORE_TEXT_MAX, "fingerprint") == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_KEY_DEL)) == NULL ||
	    b_text(s, st, 1, user) == -1 ||
	    b_text(s, st, 2, fingerprint) == -1 || q_run(s, st) == -1)
		rv = -1;
	else if (sqlite3_changes(s->db) == 0)
		rv = STORE_NOTFOUND;
	return (tx_end(s, rv));
}

int
store_key_list(struct store *s, const char *user, struct store_key **keys,
    size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	if (user != NULL && name_ok(s, user, "user") == -1) {
		*keys = NULL;
		*n = 0;
		return (-1);
	}
	rv = list_run(s, Q_KEY_LIST, NULL, &user, sizeof(**keys), key_row,
	    key_clear, &v, n);
	*keys = v;
	return (rv);
}

void
store_key_clear(struct store_key *k)
{
	free(k->user);
	free(k->blob);
	free(k->comment);
	memset(k, 0, sizeof(*k));
}

void
store_key_free(struct store_key *k, size_t n)
{
	entries_free(k, n, sizeof(*k), key_clear);
}

/* Roles. */

/* role_rules.kind, in the order of a role's lists. */
#define ROLE_KINDS	4
static const char *const role_kinds[ROLE_KINDS] = {
	"login", "node", "label", "service"
};

int
store_role_put(struct store *s, const struct store_role *r)
{
	const struct store_strv	*sv[ROLE_KINDS] = {
		&r->logins, &r->nodes, &r->labels, &r->services
	};
	sqlite3_stmt		*st;
	size_t			 k, i;
	int			 rv = 0;

	s->op = __func__;
	if (name_ok(s, r->name, "name") == -1 ||
	    strv_ok(s, &r->logins, STORE_NAME_MAX, "login") == -1 ||
	    strv_ok(s, &r->nodes, STORE_TEXT_MAX, "node") == -1 ||
	    strv_ok(s, &r->labels, STORE_TEXT_MAX, "label") == -1 ||
	    strv_ok(s, &r->services, STORE_TEXT_MAX, "service") == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_ROLE_ADD)) == NULL ||
	    b_text(s, st, 1, r->name) == -1 || q_run(s, st) == -1 ||
	    (st = q_get(s, Q_RULES_DEL)) == NULL ||
	    b_text(s, st, 1, r->name) == -1 || q_run(s, st) == -1)
		rv = -1;
	for (k = 0; rv == 0 && k < ROLE_KINDS; k++)
		for (i = 0; rv == 0 && i < sv[k]->n; i++)
			if ((st = q_get(s, Q_RULE_ADD)) == NULL ||
			    b_text(s, st, 1, r->name) == -1 ||
			    b_text(s, st, 2, role_kinds[k]) == -1 ||
			    b_text(s, st, 3, sv[k]->v[i]) == -1 ||
			    q_run(s, st) == -1)
				rv = -1;
	return (tx_end(s, rv));
}

/* The role of st's row, and its rules. */
static int
role_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_role	*r = p;
	struct store_strv	*sv[ROLE_KINDS] = {
		&r->logins, &r->nodes, &r->labels, &r->services
	};
	sqlite3_stmt		*rs;
	const char		*kind;
	char			*value;
	size_t			 cap[ROLE_KINDS] = { 0 }, k;
	int			 rc;

	if (c_str(s, st, 0, STORE_NAME_MAX, &r->name) == -1 ||
	    (rs = q_get(s, Q_RULES)) == NULL ||
	    b_text(s, rs, 1, r->name) == -1)
		return (-1);
	while ((rc = q_step(s, rs)) == SQLITE_ROW) {
		if ((kind = (const char *)sqlite3_column_text(rs, 0)) == NULL)
			kind = "";
		for (k = 0; k < ROLE_KINDS; k++)
			if (strcmp(kind, role_kinds[k]) == 0)
				break;
		if (k == ROLE_KINDS) {
			log_warnx("%s: role %s: a rule of unknown kind",
			    s->op, r->name);
			return (-1);
		}
		if (c_str(s, rs, 1, STORE_TEXT_MAX, &value) == -1 ||
		    strv_push(s, sv[k], &cap[k], value) == -1)
			return (-1);
	}
	return (rc == SQLITE_DONE ? 0 : -1);
}

/* store_role_clear, in the type the row helpers call. */
static void
role_clear(void *r)
{
	store_role_clear(r);
}

int
store_role_get(struct store *s, const char *name, struct store_role *r)
{
	memset(r, 0, sizeof(*r));
	s->op = __func__;
	if (name_ok(s, name, "name") == -1)
		return (-1);
	return (row_get(s, Q_ROLE_GET, name, role_row, role_clear, r));
}

int
store_role_del(struct store *s, const char *name)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (name_ok(s, name, "name") == -1 || tx_begin(s, 1) == -1)
		return (-1);
	/*
	 * Its rules go with it (ON DELETE CASCADE), and so do its users'
	 * memberships: a role made later under the same name must not
	 * find users given the old one.
	 */
	if ((st = q_get(s, Q_ROLE_DEL)) == NULL ||
	    b_text(s, st, 1, name) == -1 || q_run(s, st) == -1)
		rv = -1;
	else if (sqlite3_changes(s->db) == 0)
		rv = STORE_NOTFOUND;
	else if ((st = q_get(s, Q_USER_ROLE_DROP)) == NULL ||
	    b_text(s, st, 1, name) == -1 || q_run(s, st) == -1)
		rv = -1;
	return (tx_end(s, rv));
}

int
store_role_list(struct store *s, struct store_role **roles, size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	rv = list_get(s, Q_ROLE_LIST, NULL, sizeof(**roles), role_row,
	    role_clear, &v, n);
	*roles = v;
	return (rv);
}

void
store_role_clear(struct store_role *r)
{
	free(r->name);
	store_strv_clear(&r->logins);
	store_strv_clear(&r->nodes);
	store_strv_clear(&r->labels);
	store_strv_clear(&r->services);
	memset(r, 0, sizeof(*r));
}

void
store_role_free(struct store_role *r, size_t n)
{
	entries_free(r, n, sizeof(*r), role_clear);
}

/* Join tokens. */

int
store_token_add(struct store *s, const uint8_t hash[32],
    const struct store_token *t)
{
	sqlite3_stmt	*st;
	int		 rv;

	s->op = __func__;
	if (id_ok(s, t->id) == -1 ||
	    (t->node != NULL && name_ok(s, t->node, "node") == -1) ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_TOKEN_FIND)) == NULL ||
	    b_text(s, st, 1, t->id) == -1 || b_hash(s, st, 2, hash) == -1 ||
	    (rv = q_step(s, st)) == -1)
		rv = -1;
	else if (rv == SQLITE_ROW)
		rv = STORE_EXISTS;
	else if ((st = q_get(s, Q_TOKEN_ADD)) == NULL ||
	    b_text(s, st, 1, t->id) == -1 || b_hash(s, st, 2, hash) == -1 ||
	    b_text(s, st, 3, t->node) == -1 ||
	    b_int(s, st, 4, t->created) == -1 ||
	    b_int(s, st, 5, t->expires) == -1 ||
	    b_int(s, st, 6, t->used) == -1 || q_run(s, st) == -1)
		rv = -1;
	else
		rv = 0;
	return (tx_end(s, rv));
}

/*
 * Inside BEGIN IMMEDIATE, no other connection writes between the read
 * and the mark: the loser of two uses finds the token used.
 */
int
store_token_use(struct store *s, const uint8_t hash[32], const char *node,
    time_t now)
{
	sqlite3_stmt	*st;
	const char	*bound;
	char		 id[STORE_ID_LEN + 1];
	int		 rv;

	s->op = __func__;
	if ((node != NULL && name_ok(s, node, "node") == -1) ||
	    time_ok(s, now) == -1 || tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_TOKEN_GET)) == NULL ||
	    b_hash(s, st, 1, hash) == -1 || (rv = q_step(s, st)) == -1) {
		rv = -1;
		goto done;
	}
	if (rv == SQLITE_DONE) {
		rv = STORE_NOTFOUND;
		goto done;
	}
	if (c_buf(s, st, 0, id, sizeof(id)) == -1) {
		rv = -1;
		goto done;
	}
	/* Out of memory must not read as "bound to no name". */
	bound = NULL;
	if (sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    (bound = (const char *)sqlite3_column_text(st, 1)) == NULL) {
		store_err(s, "column");
		rv = -1;
		goto done;
	}
	if (sqlite3_column_int64(st, 3) != 0 ||
	    c_time(st, 2) <= now ||
	    (bound != NULL && (node == NULL || strcmp(bound, node) != 0))) {
		rv = STORE_CONFLICT;
		goto done;
	}
	/* Done with the row (and bound) before the row changes. */
	(void)sqlite3_reset(st);
	if ((st = q_get(s, Q_TOKEN_USE)) == NULL ||
	    b_text(s, st, 1, id) == -1 || b_int(s, st, 2, now) == -1 ||
	    q_run(s, st) == -1)
		rv = -1;
	else if (sqlite3_changes(s->db) != 1)
		rv = STORE_CONFLICT;
	else
		rv = 0;
 done:
	return (tx_end(s, rv));
}

int
store_token_revoke(struct store *s, const char *id)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (id == NULL) {
		log_warnx("%s: no id", s->op);
		return (-1);
	}
	/* No token was stored under what is not an id. */
	if (!hex_valid(id, STORE_ID_LEN, STORE_ID_LEN, 0))
		return (STORE_NOTFOUND);
	if (tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_TOKEN_DEL)) == NULL ||
	    b_text(s, st, 1, id) == -1 || q_run(s, st) == -1)
		rv = -1;
	else if (sqlite3_changes(s->db) == 0)
		rv = STORE_NOTFOUND;
	return (tx_end(s, rv));
}

/* The token of st's row. */
static int
token_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_token	*t = p;

	if (c_buf(s, st, 0, t->id, sizeof(t->id)) == -1 ||
	    c_str_null(s, st, 1, STORE_NAME_MAX, &t->node) == -1)
		return (-1);
	t->created = c_time(st, 2);
	t->expires = c_time(st, 3);
	t->used = c_time(st, 4);
	return (0);
}

/* store_token_clear, in the type the row helpers call. */
static void
token_clear(void *t)
{
	store_token_clear(t);
}

int
store_token_list(struct store *s, struct store_token **tokens, size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	rv = list_get(s, Q_TOKEN_LIST, NULL, sizeof(**tokens), token_row,
	    token_clear, &v, n);
	*tokens = v;
	return (rv);
}

void
store_token_clear(struct store_token *t)
{
	free(t->node);
	memset(t, 0, sizeof(*t));
}

void
store_token_free(struct store_token *t, size_t n)
{
	entries_free(t, n, sizeof(*t), token_clear);
}

/* Certificates. */

/* The certificate of st's row. */
static int
cert_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_cert	*c = p;

	if (c_buf(s, st, 0, c->serial, sizeof(c->serial)) == -1 ||
	    c_buf(s, st, 1, c->kind, sizeof(c->kind)) == -1 ||
	    c_str(s, st, 2, STORE_NAME_MAX, &c->name) == -1)
		return (-1);
	c->not_before = c_time(st, 3);
	c->not_after = c_time(st, 4);
	c->revoked = c_time(st, 5);
	return (0);
}

/* store_cert_clear, in the type the row helpers call. */
static void
cert_clear(void *c)
{
	store_cert_clear(c);
}

static int
kind_ok(struct store *s, const char *kind)
{
	if (kind == NULL ||
	    (strcmp(kind, "user") != 0 && strcmp(kind, "node") != 0)) {
		log_warnx("%s: kind is neither user nor node", s->op);
		return (-1);
	}
	return (0);
}

int
store_cert_add(struct store *s, const struct store_cert *c)
{
	sqlite3_stmt	*st;
	int		 rv;

	s->op = __func__;
	if (serial_ok(s, c->serial) == -1 || kind_ok(s, c->kind) == -1 ||
	    name_ok(s, c->name, "name") == -1 || tx_begin(s, 1) == -1)
		return (-1);
	if ((rv = q_exists(s, Q_CERT_FIND, c->serial)) == 1)
		rv = STORE_EXISTS;
	else if (rv == 0 && ((st = q_get(s, Q_CERT_ADD)) == NULL ||
	    b_text(s, st, 1, c->serial) == -1 ||
	    b_text(s, st, 2, c->kind) == -1 ||
	    b_text(s, st, 3, c->name) == -1 ||
	    b_int(s, st, 4, c->not_before) == -1 ||
	    b_int(s, st, 5, c->not_after) == -1 ||
	    b_int(s, st, 6, c->revoked) == -1 || q_run(s, st) == -1))
		rv = -1;
	return (tx_end(s, rv));
}

int
store_cert_get(struct store *s, const char *serial, struct store_cert *c)
{
	memset(c, 0, sizeof(*c));
	s->op = __func__;
	if (serial == NULL) {
		log_warnx("%s: no serial", s->op);
		return (-1);
	}
	if (!hex_valid(serial, 1, STORE_SERIAL_MAX, 1))
		return (STORE_NOTFOUND);
	return (row_get(s, Q_CERT_GET, serial, cert_row, cert_clear, c));
}

/* A certificate revoked already keeps the time it was first revoked. */
int
store_cert_revoke(struct store *s, const char *serial, time_t now)
{
	sqlite3_stmt	*st;
	int		 rv;

	s->op = __func__;
	if (serial == NULL) {
		log_warnx("%s: no serial", s->op);
		return (-1);
	}
	if (time_ok(s, now) == -1)
		return (-1);
	if (!hex_valid(serial, 1, STORE_SERIAL_MAX, 1))
		return (STORE_NOTFOUND);
	if (tx_begin(s, 1) == -1)
		return (-1);
	if ((rv = q_exists(s, Q_CERT_FIND, serial)) == 0)
		rv = STORE_NOTFOUND;
	else if (rv == 1 && ((st = q_get(s, Q_CERT_REVOKE)) == NULL ||
	    b_text(s, st, 1, serial) == -1 || b_int(s, st, 2, now) == -1 ||
	    q_run(s, st) == -1))
		rv = -1;
	else if (rv == 1)
		rv = 0;
	return (tx_end(s, rv));
}

int
store_cert_revoke_name(struct store *s, const char *kind, const char *name,
    time_t now)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (kind_ok(s, kind) == -1 || name_ok(s, name, "name") == -1 ||
	    time_ok(s, now) == -1 || tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_CERT_REVOKE_NAME)) == NULL ||
	    b_text(s, st, 1, kind) == -1 || b_text(s, st, 2, name) == -1 ||
	    b_int(s, st, 3, now) == -1 || q_run(s, st) == -1)
		rv = -1;
	return (tx_end(s, rv));
}

int
store_cert_list(struct store *s, unsigned int limit, struct store_cert **certs,
    size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	rv = list_get(s, Q_CERT_LIST, &limit, sizeof(**certs), cert_row,
	    cert_clear, &v, n);
	*certs = v;
	return (rv);
}

int
store_cert_revoked(struct store *s, time_t now, struct store_strv *serials)
{
	sqlite3_stmt	*st;
	int		 rv;

	memset(serials, 0, sizeof(*serials));
	s->op = __func__;
	if (tx_begin(s, 0) == -1)
		return (-1);
	if ((st = q_get(s, Q_CERT_REVOKED)) == NULL ||
	    b_int(s, st, 1, now) == -1)
		rv = -1;
	else
		rv = strv_rows(s, st, STORE_SERIAL_MAX, serials);
	if ((rv = tx_end(s, rv)) != 0)
		store_strv_clear(serials);
	return (rv);
}

void
store_cert_clear(struct store_cert *c)
{
	free(c->name);
	memset(c, 0, sizeof(*c));
}

void
store_cert_free(struct store_cert *c, size_t n)
{
	entries_free(c, n, sizeof(*c), cert_clear);
}

/* Nodes. */

int
store_node_put(struct store *s, const struct store_node *nd)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (name_ok(s, nd->name, "name") == -1 ||
	    serial_ok(s, nd->serial) == -1 ||
	    strv_ok(s, &nd->labels, STORE_TEXT_MAX, "label") == -1 ||
	    tx_begin(s, 1) == -1)
		return (-1);
	if ((st = q_get(s, Q_NODE_PUT)) == NULL ||
	    b_text(s, st, 1, nd->name) == -1 ||
	    b_text(s, st, 2, nd->serial) == -1 ||
	    b_int(s, st, 3, nd->joined) == -1 || q_run(s, st) == -1 ||
	    (st = q_get(s, Q_LABELS_DEL)) == NULL ||
	    b_text(s, st, 1, nd->name) == -1 || q_run(s, st) == -1 ||
	    strv_put(s, Q_LABEL_ADD, nd->name, &nd->labels) == -1)
		rv = -1;
	return (tx_end(s, rv));
}

/* The node of st's row, and its labels. */
static int
node_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_node	*nd = p;

	if (c_str(s, st, 0, STORE_NAME_MAX, &nd->name) == -1 ||
	    c_buf(s, st, 1, nd->serial, sizeof(nd->serial)) == -1 ||
	    strv_get(s, Q_LABELS, nd->name, STORE_TEXT_MAX,
	    &nd->labels) == -1)
		return (-1);
	nd->joined = c_time(st, 2);
	return (0);
}

/* store_node_clear, in the type the row helpers call. */
static void
node_clear(void *nd)
{
	store_node_clear(nd);
}

int
store_node_list(struct store *s, struct store_node **nodes, size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	rv = list_get(s, Q_NODE_LIST, NULL, sizeof(**nodes), node_row,
	    node_clear, &v, n);
	*nodes = v;
	return (rv);
}

int
store_node_get(struct store *s, const char *name, struct store_node *nd)
{
	memset(nd, 0, sizeof(*nd));
	s->op = __func__;
	if (name_ok(s, name, "name") == -1)
		return (-1);
	return (row_get(s, Q_NODE_GET, name, node_row, node_clear, nd));
}

void
store_node_clear(struct store_node *nd)
{
	free(nd->name);
	store_strv_clear(&nd->labels);
	memset(nd, 0, sizeof(*nd));
}

void
store_node_free(struct store_node *nd, size_t n)
{
	entries_free(nd, n, sizeof(*nd), node_clear);
}

/* Audit events. */

static const char *
empty(const char *v)
{
	return (v == NULL ? "" : v);
}

int
store_event_add(struct store *s, const struct store_event *e)
{
	sqlite3_stmt	*st;
	int		 rv = 0;

	s->op = __func__;
	if (name_ok(s, e->type, "type") == -1 || tx_begin(s, 1) == -1)
		return (-1);
	/* An event is kept, cut short, rather than lost for its length. */
	if ((st = q_get(s, Q_EVENT_ADD)) == NULL ||
	    b_int(s, st, 1, e->time) == -1 ||
	    b_text(s, st, 2, e->type) == -1 ||
	    b_textn(s, st, 3, empty(e->name), STORE_TEXT_MAX) == -1 ||
	    b_textn(s, st, 4, empty(e->address), STORE_TEXT_MAX) == -1 ||
	    b_int(s, st, 5, e->success != 0) == -1 ||
	    b_textn(s, st, 6, empty(e->detail), STORE_TEXT_MAX) == -1 ||
	    q_run(s, st) == -1)
		rv = -1;
	return (tx_end(s, rv));
}

/* The event of st's row. */
static int
event_row(struct store *s, sqlite3_stmt *st, void *p)
{
	struct store_event	*e = p;

	e->time = c_time(st, 0);
	e->success = sqlite3_column_int(st, 4) != 0;
	if (c_str(s, st, 1, STORE_NAME_MAX, &e->type) == -1 ||
	    c_str(s, st, 2, STORE_TEXT_MAX, &e->name) == -1 ||
	    c_str(s, st, 3, STORE_TEXT_MAX, &e->address) == -1 ||
	    c_str(s, st, 5, STORE_TEXT_MAX, &e->detail) == -1)
		return (-1);
	return (0);
}

/* store_event_clear, in the type the row helpers call. */
static void
event_clear(void *e)
{
	store_event_clear(e);
}

int
store_event_list(struct store *s, unsigned int limit,
    struct store_event **events, size_t *n)
{
	void	*v;
	int	 rv;

	s->op = __func__;
	rv = list_get(s, Q_EVENT_LIST, &limit, sizeof(**events), event_row,
	    event_clear, &v, n);
	*events = v;
	return (rv);
}

void
store_event_clear(struct store_event *e)
{
	free(e->type);
	free(e->name);
	free(e->address);
	free(e->detail);
	memset(e, 0, sizeof(*e));
}

void
store_event_free(struct store_event *e, size_t n)
{
	entries_free(e, n, sizeof(*e), event_clear);
}

void
store_strv_clear(struct store_strv *sv)
{
	size_t	 i;

	for (i = 0; sv->v != NULL && i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}
