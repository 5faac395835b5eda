/*
 * The auth worker's store: users, their SSH public keys, roles, join
 * tokens, issued certificates, nodes and audit events.
 *
 * One interface, one implementation per backend: SQLite (store_sqlite.c)
 * is the embedded default; a PostgreSQL backend would implement the same
 * operations.  Every change is one transaction: when a call returns 0,
 * the change is on disk.  Calls return 0 on success, STORE_NOTFOUND,
 * STORE_EXISTS or STORE_CONFLICT where the call says, and -1 on failure
 * (logged), after which nothing was changed.
 *
 * Strings returned in structures belong to the structure: *_clear()
 * frees those of one structure that a *_get() filled, *_free(p, n) those
 * of the n structures of an array a *_list() returned, and the array.
 * A *_get() that does not return 0 leaves nothing to free.
 *
 * A time given as "now" to a call that records it in used or revoked
 * must be after the epoch, since 0 there means "not yet".
 */

#ifndef MEZITE_STORE_H
#define MEZITE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STORE_NOTFOUND	1
#define STORE_EXISTS	2
#define STORE_CONFLICT	3	/* used, expired, or bound to another name */

#define STORE_NAME_MAX	64	/* user, role, node names */
#define STORE_KEYS_MAX	32	/* SSH public keys of one user */

struct store;

struct store_strv {
	char		**v;
	size_t		  n;
};

struct store_user {
	char		 *name;
	char		 *hash;		/* crypt(3) string */
	struct store_strv roles;
	time_t		  created;
	time_t		  password_changed;
};

struct store_key {
	char		 *user;
	char		  type[33];	/* "ssh-ed25519", ... */
	char		 *blob;		/* base64, as authorized_keys has it */
	char		  fingerprint[51];	/* "SHA256:" and 43 digits */
	char		 *comment;	/* may be "" */
	time_t		  added;
};

struct store_role {
	char		 *name;
	struct store_strv logins;
	struct store_strv nodes;	/* fnmatch(3) patterns on node names */
	struct store_strv labels;	/* "key=value", value fnmatch(3) */
	struct store_strv services;	/* fnmatch(3); none: "ssh" alone */
};

struct store_token {
	char		  id[17];	/* 16 hex digits */
	char		 *node;		/* NULL: any name */
	time_t		  created;
	time_t		  expires;
	time_t		  used;		/* 0: not yet */
};

struct store_cert {
	char		  serial[41];	/* hex, lower case, no leading zeros */
	char		  kind[8];	/* "user", "node" */
	char		 *name;
	time_t		  not_before;
	time_t		  not_after;
	time_t		  revoked;	/* 0: not revoked */
};

struct store_node {
	char		 *name;
	struct store_strv labels;	/* "key=value" */
	char		  serial[41];	/* its current host certificate */
	time_t		  joined;
};

struct store_event {
	time_t		  time;
	char		 *type;		/* "login", "login.failed", ... */
	char		 *name;		/* user or node, may be "" */
	char		 *address;	/* client address, may be "" */
	int		  success;
	char		 *detail;
};

/*
 * Open (creating if need be, mode 0600) the database at path, in WAL
 * mode, migrating its schema to the current version.  NULL on failure,
 * with the reason logged; a database of a newer schema is refused.
 */
struct store	*store_open(const char *);
void		 store_close(struct store *);
int		 store_schema_version(struct store *);

/*
 * Users.  user_add: STORE_EXISTS; others: STORE_NOTFOUND.  user_del
 * also revokes, at now, the user's unexpired certificates (kind "user").
 * A role list keeps its order; a name given twice is kept once.
 */
int	 store_user_add(struct store *, const char *, const char *,
	    const struct store_strv *, time_t);
int	 store_user_get(struct store *, const char *, struct store_user *);
int	 store_user_del(struct store *, const char *, time_t);
int	 store_user_passwd(struct store *, const char *, const char *, time_t);
int	 store_user_roles(struct store *, const char *,
	    const struct store_strv *);
/* All users, sorted by name; *n of them in *users. */
int	 store_user_list(struct store *, struct store_user **, size_t *);
void	 store_user_clear(struct store_user *);
void	 store_user_free(struct store_user *, size_t);

/*
 * Users' SSH public keys, checked by the caller (sshkey.c): the store
 * keeps them and finds them by user and fingerprint.  key_add:
 * STORE_NOTFOUND (no such user), STORE_EXISTS (she has that key),
 * STORE_CONFLICT (she has STORE_KEYS_MAX keys already).  key_del,
 * key_get: STORE_NOTFOUND.  key_list: the keys of one user, or of all
 * if user is NULL, by user and then as added.  A user's keys go with
 * her.
 */
int	 store_key_add(struct store *, const struct store_key *);
int	 store_key_get(struct store *, const char *, const char *,
	    struct store_key *);
int	 store_key_del(struct store *, const char *, const char *);
int	 store_key_list(struct store *, const char *, struct store_key **,
	    size_t *);
void	 store_key_clear(struct store_key *);
void	 store_key_free(struct store_key *, size_t);

/*
 * Roles.  role_put adds or replaces; role_del: STORE_NOTFOUND, and takes
 * the role from every user who had it.  role_list: sorted by name.
 */
int	 store_role_put(struct store *, const struct store_role *);
int	 store_role_get(struct store *, const char *, struct store_role *);
int	 store_role_del(struct store *, const char *);
int	 store_role_list(struct store *, struct store_role **, size_t *);
void	 store_role_clear(struct store_role *);
void	 store_role_free(struct store_role *, size_t);

/*
 * Join tokens, kept as the SHA-256 of the secret.  token_add stores a
 * new one; token_use marks the one whose secret hashes to hash as used
 * at now, for node, if it is unused, unexpired and either unbound or
 * bound to node: STORE_NOTFOUND, or STORE_CONFLICT (used, expired,
 * other node) otherwise; all in one transaction, so a token is used at
 * most once.  A node of NULL may use only an unbound token.  token_add:
 * STORE_EXISTS if the id or the hash is taken.  token_revoke deletes it
 * by id: STORE_NOTFOUND.  token_list: oldest first.
 */
int	 store_token_add(struct store *, const uint8_t[32],
	    const struct store_token *);
int	 store_token_use(struct store *, const uint8_t[32], const char *,
	    time_t);
int	 store_token_revoke(struct store *, const char *);
int	 store_token_list(struct store *, struct store_token **, size_t *);
void	 store_token_clear(struct store_token *);
void	 store_token_free(struct store_token *, size_t);

/*
 * Certificates issued.  cert_add: STORE_EXISTS; cert_get, cert_revoke:
 * STORE_NOTFOUND (a certificate revoked already keeps its time of
 * revocation).  revoke_name revokes every unexpired certificate of that
 * kind and name.  revoked lists the serials, sorted, of revoked
 * certificates not yet expired at now.  cert_list gives the newest limit
 * (0: all) by not_before, newest first.
 */
int	 store_cert_add(struct store *, const struct store_cert *);
int	 store_cert_get(struct store *, const char *, struct store_cert *);
int	 store_cert_revoke(struct store *, const char *, time_t);
int	 store_cert_revoke_name(struct store *, const char *, const char *,
	    time_t);
int	 store_cert_list(struct store *, unsigned int, struct store_cert **,
	    size_t *);
int	 store_cert_revoked(struct store *, time_t, struct store_strv *);
void	 store_cert_clear(struct store_cert *);
void	 store_cert_free(struct store_cert *, size_t);

/*
 * Nodes, added or replaced by a join; node_get: STORE_NOTFOUND;
 * node_list: sorted by name.
 */
int	 store_node_put(struct store *, const struct store_node *);
int	 store_node_get(struct store *, const char *, struct store_node *);
int	 store_node_list(struct store *, struct store_node **, size_t *);
void	 store_node_clear(struct store_node *);
void	 store_node_free(struct store_node *, size_t);

/*
 * Audit events; event_list gives the newest limit (0: all), oldest
 * first.  A name, address or detail longer than 4096 bytes is cut.
 */
int	 store_event_add(struct store *, const struct store_event *);
int	 store_event_list(struct store *, unsigned int, struct store_event **,
	    size_t *);
void	 store_event_clear(struct store_event *);
void	 store_event_free(struct store_event *, size_t);

void	 store_strv_clear(struct store_strv *);

#endif /* MEZITE_STORE_H */
