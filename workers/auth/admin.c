/*
 * mezctl's requests about the store: users and their SSH keys, roles,
 * join tokens, certificates and audit events.  The supervisor has
 * already checked that the client may make the request (only root
 * changes anything).
 * Every change is audited, naming the uid that asked.
 */

#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "auth.h"
#include "log.h"
#include "passwd.h"
#include "sshcert.h"
#include "sshkey.h"

#define AUDIT_DEFAULT	50	/* events listed unless told */
#define CERTS_DEFAULT	100
#define PATTERN_MAX	128	/* a node or label pattern */
#define LOGIN_MAX	32	/* a login name */

/* What the reply points to, freed by admin_reply_free(). */
static struct {
	struct store_user	*users;
	struct store_role	*roles;
	struct store_token	*tokens;
	struct store_cert	*certs;
	struct store_event	*events;
	struct store_key	*keys;
	size_t			 nusers, nroles, ntokens, ncerts, nevents;
	size_t			 nkeys;
	void			*pb;		/* the reply's messages */
	void			*pbp;		/* and the array of pointers */
	char			 secret[2 * AUTH_TOKEN_BYTES + 1];
	char			 id[17];
	char			 error[256];
} mem;

static const char *
admin_error(Mezite__AdminReply *reply, const char *fmt, ...)
    __attribute__((__format__ (printf, 2, 3)));

static const char *
admin_error(Mezite__AdminReply *reply, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(mem.error, sizeof(mem.error), fmt, ap);
	va_end(ap);
	reply->error = mem.error;
	return (mem.error);
}

static const char *
store_error(Mezite__AdminReply *reply, int rv, const char *what,
    const char *name)
{
	switch (rv) {
	case STORE_NOTFOUND:
		return (admin_error(reply, "no such %s: %s", what, name));
	case STORE_EXISTS:
		return (admin_error(reply, "%s %s exists", what, name));
	default:
		return (admin_error(reply, "the store failed (see the log)"));
	}
}

/* Names in a list: valid, few enough, and each an existing role if asked. */
static int
names_valid(Mezite__AdminReply *reply, const char *what, char **v, size_t n,
    int roles)
{
	struct store_role	 r;
	size_t			 i;
	int			 rv;

	if (n > AUTH_LIST_MAX) {
		admin_error(reply, "%s: at most %d", what, AUTH_LIST_MAX);
		return (0);
	}
	for (i = 0; i < n; i++) {
		if (!auth_name_valid(v[i])) {
			admin_error(reply, "%s: invalid name \"%.64s\"", what,
			    v[i]);
			return (0);
		}
		if (!roles)
			continue;
		memset(&r, 0, sizeof(r));
		if ((rv = store_role_get(aenv.store, v[i], &r)) != 0) {
			store_error(reply, rv, "role", v[i]);
			return (0);
		}
		store_role_clear(&r);
	}
	return (1);
}

/* A login on a node: a POSIX user name. */
static int
login_valid(const char *s)
{
	size_t	 n = strlen(s);

	return (n > 0 && n <= LOGIN_MAX && *s != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
}

static int
pattern_valid(const char *s, int label)
{
	size_t		 n = strlen(s);
	const char	*eq;

	if (n == 0 || n > PATTERN_MAX || strpbrk(s, "\n\r\t ") != NULL)
		return (0);
	if (!label)
		return (1);
	if ((eq = strchr(s, '=')) == NULL || eq == s)
		return (0);
	return (strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == (size_t)(eq - s));
}

static void
user_add(const Mezite__AdminRequest *req, Mezite__AdminReply *reply,
    int passwd_only)
{
	struct store_strv	 roles = { req->roles, req->n_roles };
	char			 hash[256];
	int			 rv;

	if (!auth_name_valid(req->name)) {
		admin_error(reply, "invalid user name");
		return;
	}
	if (req->password[0] == '\0' ||
	    strlen(req->password) > AUTH_PASSWORD_MAX) {
		admin_error(reply, "the password must have 1 to %d bytes",
		    AUTH_PASSWORD_MAX);
		return;
	}
	if (!passwd_only &&
	    !names_valid(reply, "roles", req->roles, req->n_roles, 1))
		return;
	if (passwd_hash(req->password, hash, sizeof(hash)) == -1) {
		admin_error(reply, "cannot hash the password");
		return;
	}
	rv = passwd_only ?
	    store_user_passwd(aenv.store, req->name, hash, time(NULL)) :
	    store_user_add(aenv.store, req->name, hash, &roles, time(NULL));
	explicit_bzero(hash, sizeof(hash));
	if (rv != 0) {
		store_error(reply, rv, "user", req->name);
		return;
	}
	auth_audit(passwd_only ? "user.passwd" : "user.add", req->name, "",
	    1, "by uid %u", req->uid);
}

static void
user_roles(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	struct store_strv	 roles = { req->roles, req->n_roles };
	int			 rv;

	if (!names_valid(reply, "roles", req->roles, req->n_roles, 1))
		return;
	if ((rv = store_user_roles(aenv.store, req->name, &roles)) != 0) {
		store_error(reply, rv, "user", req->name);
		return;
	}
	auth_audit("user.roles", req->name, "", 1, "by uid %u", req->uid);
}

static void
user_del(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	int	 rv;

	if ((rv = store_user_del(aenv.store, req->name, time(NULL))) != 0) {
		store_error(reply, rv, "user", req->name);
		return;
	}
	auth_audit("user.del", req->name, "", 1,
	    "by uid %u; certificates revoked", req->uid);
	auth_push_revoked();
}

static void
user_list(Mezite__AdminReply *reply)
{
	Mezite__AdminUser	*u, **up;
	size_t			 i;

	if (store_user_list(aenv.store, &mem.users, &mem.nusers) == -1 ||
	    (u = mem.pb = calloc(mem.nusers + 1, sizeof(*u))) == NULL ||
	    (up = mem.pbp = calloc(mem.nusers + 1, sizeof(*up))) == NULL) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	for (i = 0; i < mem.nusers; i++) {
		mezite__admin_user__init(&u[i]);
		u[i].name = mem.users[i].name;
		u[i].roles = mem.users[i].roles.v;
		u[i].n_roles = mem.users[i].roles.n;
		u[i].created = mem.users[i].created;
		u[i].password_changed = mem.users[i].password_changed;
		up[i] = &u[i];
	}
	reply->users = up;
	reply->n_users = mem.nusers;
}

/*
 * A key for a user: an authorized_keys line, without options.  The reply
 * holds the key as the store keeps it, for mezctl to show.
 */
static void
user_key_add(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	static Mezite__AdminKey		 ak;
	static Mezite__AdminKey		*akp;
	static struct sshkey		 k;
	struct store_key		 sk;
	char				 err[192];
	int				 rv;

	if (!auth_name_valid(req->name)) {
		admin_error(reply, "invalid user name");
		return;
	}
	if (sshkey_parse(req->key, &k, err, sizeof(err)) == -1) {
		admin_error(reply, "%s", err);
		return;
	}
	memset(&sk, 0, sizeof(sk));
	sk.user = req->name;
	(void)strlcpy(sk.type, k.type, sizeof(sk.type));
	sk.blob = k.b64;
	(void)strlcpy(sk.fingerprint, k.fingerprint, sizeof(sk.fingerprint));
	sk.comment = k.comment;
	sk.added = time(NULL);
	switch ((rv = store_key_add(aenv.store, &sk))) {
	case 0:
		break;
	case STORE_EXISTS:
		admin_error(reply, "user %s has key %s already", req->name,
		    k.fingerprint);
		return;
	case STORE_CONFLICT:
		admin_error(reply, "user %s has %d keys already, the most "
		    "a user may have", req->name, STORE_KEYS_MAX);
		return;
	default:
		store_error(reply, rv, "user", req->name);
		return;
	}
	mezite__admin_key__init(&ak);
	ak.user = req->name;
	ak.type = k.type;
	ak.fingerprint = k.fingerprint;
	ak.comment = k.comment;
	ak.added = sk.added;
	akp = &ak;
	reply->keys = &akp;
	reply->n_keys = 1;
	auth_audit("user.key.add", req->name, "", 1, "%s %s, by uid %u",
	    k.type, k.fingerprint, req->uid);
}

/* A user's key, named by its fingerprint or given whole. */
static void
user_key_del(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	struct sshkey	 k;
	const char	*fp;
	char		 err[192];
	int		 rv;

	if (!auth_name_valid(req->name)) {
		admin_error(reply, "invalid user name");
		return;
	}
	if (sshkey_fingerprint_valid(req->key))
		fp = req->key;
	else if (strncmp(req->key, "SHA256:", 7) == 0) {
		admin_error(reply, "invalid fingerprint: \"SHA256:\" and 43 "
		    "base64 digits, as ssh-keygen -l prints it");
		return;
	} else if (sshkey_parse(req->key, &k, err, sizeof(err)) == -1) {
		admin_error(reply, "%s", err);
		return;
	} else
		fp = k.fingerprint;
	if ((rv = store_key_del(aenv.store, req->name, fp)) != 0) {
		if (rv == STORE_NOTFOUND)
			admin_error(reply, "user %s has no key %s", req->name,
			    fp);
		else
			store_error(reply, rv, "user", req->name);
		return;
	}
	auth_audit("user.key.del", req->name, "", 1, "%s, by uid %u", fp,
	    req->uid);
}

/* The keys of a user, or of every user. */
static void
user_key_list(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	Mezite__AdminKey	*k, **kp;
	struct store_user	 u;
	const char		*name = NULL;
	size_t			 i;
	int			 rv;

	if (req->name[0] != '\0') {
		if (!auth_name_valid(req->name)) {
			admin_error(reply, "invalid user name");
			return;
		}
		if ((rv = store_user_get(aenv.store, req->name, &u)) != 0) {
			store_error(reply, rv, "user", req->name);
			return;
		}
		store_user_clear(&u);
		name = req->name;
	}
	if (store_key_list(aenv.store, name, &mem.keys, &mem.nkeys) == -1 ||
	    (k = mem.pb = calloc(mem.nkeys + 1, sizeof(*k))) == NULL ||
	    (kp = mem.pbp = calloc(mem.nkeys + 1, sizeof(*kp))) == NULL) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	for (i = 0; i < mem.nkeys; i++) {
		mezite__admin_key__init(&k[i]);
		k[i].user = mem.keys[i].user;
		k[i].type = mem.keys[i].type;
		k[i].fingerprint = mem.keys[i].fingerprint;
		k[i].comment = mem.keys[i].comment;
		k[i].added = mem.keys[i].added;
		kp[i] = &k[i];
	}
	reply->keys = kp;
	reply->n_keys = mem.nkeys;
}

static void
role_add(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	struct store_role	 r;
	size_t			 i;

	if (!auth_name_valid(req->name)) {
		admin_error(reply, "invalid role name");
		return;
	}
	if (req->n_logins > AUTH_LIST_MAX || req->n_nodes > AUTH_LIST_MAX ||
	    req->n_labels > AUTH_LIST_MAX || req->n_services > AUTH_LIST_MAX) {
		admin_error(reply, "at most %d logins, nodes, labels and "
		    "services",
		    AUTH_LIST_MAX);
		return;
	}
	for (i = 0; i < req->n_logins; i++)
		if (!login_valid(req->logins[i])) {
			admin_error(reply, "invalid login \"%.32s\"",
			    req->logins[i]);
			return;
		}
	for (i = 0; i < req->n_nodes; i++)
		if (!pattern_valid(req->nodes[i], 0)) {
			admin_error(reply, "invalid node pattern \"%.128s\"",
			    req->nodes[i]);
			return;
		}
	for (i = 0; i < req->n_labels; i++)
		if (!pattern_valid(req->labels[i], 1)) {
			admin_error(reply, "invalid label pattern \"%.128s\": "
			    "key=pattern", req->labels[i]);
			return;
		}
	for (i = 0; i < req->n_services; i++)
		if (!pattern_valid(req->services[i], 0)) {
			admin_error(reply, "invalid service pattern "
			    "\"%.128s\"", req->services[i]);
			return;
		}
	r.name = req->name;
	r.logins.v = req->logins;
	r.logins.n = req->n_logins;
	r.nodes.v = req->nodes;
	r.nodes.n = req->n_nodes;
	r.labels.v = req->labels;
	r.labels.n = req->n_labels;
	r.services.v = req->services;
	r.services.n = req->n_services;
	if (store_role_put(aenv.store, &r) != 0) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	auth_audit("role.add", req->name, "", 1, "by uid %u", req->uid);
}

static void
role_del(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	int	 rv;

	if ((rv = store_role_del(aenv.store, req->name)) != 0) {
		store_error(reply, rv, "role", req->name);
		return;
	}
	auth_audit("role.del", req->name, "", 1, "by uid %u", req->uid);
}

static void
role_list(Mezite__AdminReply *reply)
{
	Mezite__AdminRole	*r, **rp;
	size_t			 i;

	if (store_role_list(aenv.store, &mem.roles, &mem.nroles) == -1 ||
	    (r = mem.pb = calloc(mem.nroles + 1, sizeof(*r))) == NULL ||
	    (rp = mem.pbp = calloc(mem.nroles + 1, sizeof(*rp))) == NULL) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	for (i = 0; i < mem.nroles; i++) {
		mezite__admin_role__init(&r[i]);
		r[i].name = mem.roles[i].name;
		r[i].logins = mem.roles[i].logins.v;
		r[i].n_logins = mem.roles[i].logins.n;
		r[i].nodes = mem.roles[i].nodes.v;
		r[i].n_nodes = mem.roles[i].nodes.n;
		r[i].labels = mem.roles[i].labels.v;
		r[i].n_labels = mem.roles[i].labels.n;
		r[i].services = mem.roles[i].services.v;
		r[i].n_services = mem.roles[i].services.n;
		rp[i] = &r[i];
	}
	reply->roles = rp;
	reply->n_roles = mem.nroles;
}

/*
 * A join token: 32 random bytes in hex.  The store keeps only its
 * SHA-256; its id, the first 8 bytes of that hash in hex, names it in
 * lists and revocations.
 */
static void
token_create(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	static Mezite__AdminToken	 t;
	static Mezite__AdminToken	*tp;
	struct store_token		 st;
	uint8_t				 rnd[AUTH_TOKEN_BYTES];
	uint8_t				 hash[SHA256_DIGEST_LENGTH];
	unsigned int			 ttl = req->ttl ? req->ttl :
					    AUTH_TOKEN_TTL;
	size_t				 i;

	if (ttl > AUTH_TOKEN_TTL_MAX) {
		admin_error(reply, "ttl: at most %d seconds",
		    AUTH_TOKEN_TTL_MAX);
		return;
	}
	if (req->node[0] != '\0' && !auth_name_valid(req->node)) {
		admin_error(reply, "invalid node name");
		return;
	}
	arc4random_buf(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		(void)snprintf(mem.secret + 2 * i, 3, "%02x", rnd[i]);
	explicit_bzero(rnd, sizeof(rnd));
	SHA256((const uint8_t *)mem.secret, strlen(mem.secret), hash);

	memset(&st, 0, sizeof(st));
	for (i = 0; i < 8; i++)
		(void)snprintf(st.id + 2 * i, 3, "%02x", hash[i]);
	st.node = req->node[0] != '\0' ? req->node : NULL;
	st.created = time(NULL);
	st.expires = st.created + ttl;
	if (store_token_add(aenv.store, hash, &st) != 0) {
		explicit_bzero(mem.secret, sizeof(mem.secret));
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	mezite__admin_token__init(&t);
	(void)strlcpy(mem.id, st.id, sizeof(mem.id));
	t.id = mem.id;
	t.node = req->node;
	t.created = st.created;
	t.expires = st.expires;
	t.secret = mem.secret;
	tp = &t;
	reply->tokens = &tp;
	reply->n_tokens = 1;
	auth_audit("token.create", req->node, "", 1,
	    "id %s, until %lld, by uid %u", st.id, (long long)st.expires,
	    req->uid);
}

static void
token_list(Mezite__AdminReply *reply)
{
	Mezite__AdminToken	*t, **tp;
	size_t			 i;

	if (store_token_list(aenv.store, &mem.tokens, &mem.ntokens) == -1 ||
	    (t = mem.pb = calloc(mem.ntokens + 1, sizeof(*t))) == NULL ||
	    (tp = mem.pbp = calloc(mem.ntokens + 1, sizeof(*tp))) == NULL) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	for (i = 0; i < mem.ntokens; i++) {
		mezite__admin_token__init(&t[i]);
		t[i].id = mem.tokens[i].id;
		t[i].node = mem.tokens[i].node ? mem.tokens[i].node : "";
		t[i].created = mem.tokens[i].created;
		t[i].expires = mem.tokens[i].expires;
		t[i].used = mem.tokens[i].used;
		tp[i] = &t[i];
	}
	reply->tokens = tp;
	reply->n_tokens = mem.ntokens;
}

static void
token_revoke(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	int	 rv;

	if ((rv = store_token_revoke(aenv.store, req->name)) != 0) {
		store_error(reply, rv, "token", req->name);
		return;
	}
	auth_audit("token.revoke", "", "", 1, "id %.16s, by uid %u",
	    req->name, req->uid);
}

static void
cert_list(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	Mezite__AdminCert	*c, **cp;
	size_t			 i;

	if (store_cert_list(aenv.store, req->limit ? req->limit :
	    CERTS_DEFAULT, &mem.certs, &mem.ncerts) == -1 ||
	    (c = mem.pb = calloc(mem.ncerts + 1, sizeof(*c))) == NULL ||
	    (cp = mem.pbp = calloc(mem.ncerts + 1, sizeof(*cp))) == NULL) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	for (i = 0; i < mem.ncerts; i++) {
		mezite__admin_cert__init(&c[i]);
		c[i].serial = mem.certs[i].serial;
		c[i].kind = mem.certs[i].kind;
		c[i].name = mem.certs[i].name;
		c[i].not_before = mem.certs[i].not_before;
		c[i].not_after = mem.certs[i].not_after;
		c[i].revoked = mem.certs[i].revoked;
		cp[i] = &c[i];
	}
	reply->certs = cp;
	reply->n_certs = mem.ncerts;
}

static void
cert_revoke(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	int	 rv;

	if ((rv = store_cert_revoke(aenv.store, req->serial,
	    time(NULL))) != 0) {
		store_error(reply, rv, "certificate", req->serial);
		return;
	}
	auth_audit("cert.revoke", "", "", 1, "serial %.40s, by uid %u",
	    req->serial, req->uid);
	auth_push_revoked();
}

static void
audit_list(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	Mezite__AuditEvent	*e, **ep;
	size_t			 i;

	if (store_event_list(aenv.store, req->limit ? req->limit :
	    AUDIT_DEFAULT, &mem.events, &mem.nevents) == -1 ||
	    (e = mem.pb = calloc(mem.nevents + 1, sizeof(*e))) == NULL ||
	    (ep = mem.pbp = calloc(mem.nevents + 1, sizeof(*ep))) == NULL) {
		admin_error(reply, "the store failed (see the log)");
		return;
	}
	for (i = 0; i < mem.nevents; i++) {
		mezite__audit_event__init(&e[i]);
		e[i].time = mem.events[i].time;
		e[i].type = mem.events[i].type;
		e[i].name = mem.events[i].name;
		e[i].address = mem.events[i].address;
		e[i].success = mem.events[i].success;
		e[i].detail = mem.events[i].detail;
		ep[i] = &e[i];
	}
	reply->events = ep;
	reply->n_events = mem.nevents;
}

void
admin_request(const Mezite__AdminRequest *req, Mezite__AdminReply *reply)
{
	switch (req->op) {
	case MEZITE__ADMIN_OP__USER_ADD:
		user_add(req, reply, 0);
		break;
	case MEZITE__ADMIN_OP__USER_PASSWD:
		user_add(req, reply, 1);
		break;
	case MEZITE__ADMIN_OP__USER_DEL:
		user_del(req, reply);
		break;
	case MEZITE__ADMIN_OP__USER_LIST:
		user_list(reply);
		break;
	case MEZITE__ADMIN_OP__USER_ROLES:
		user_roles(req, reply);
		break;
	case MEZITE__ADMIN_OP__ROLE_ADD:
		role_add(req, reply);
		break;
	case MEZITE__ADMIN_OP__ROLE_DEL:
		role_del(req, reply);
		break;
	case MEZITE__ADMIN_OP__ROLE_LIST:
		role_list(reply);
		break;
	case MEZITE__ADMIN_OP__TOKEN_CREATE:
		token_create(req, reply);
		break;
	case MEZITE__ADMIN_OP__TOKEN_LIST:
		token_list(reply);
		break;
	case MEZITE__ADMIN_OP__TOKEN_REVOKE:
		token_revoke(req, reply);
		break;
	case MEZITE__ADMIN_OP__CERT_LIST:
		cert_list(req, reply);
		break;
	case MEZITE__ADMIN_OP__CERT_REVOKE:
		cert_revoke(req, reply);
		break;
	case MEZITE__ADMIN_OP__AUDIT_LIST:
		audit_list(req, reply);
		break;
	case MEZITE__ADMIN_OP__USER_KEY_ADD:
		user_key_add(req, reply);
		break;
	case MEZITE__ADMIN_OP__USER_KEY_DEL:
		user_key_del(req, reply);
		break;
	case MEZITE__ADMIN_OP__USER_KEY_LIST:
		user_key_list(req, reply);
		break;
	case MEZITE__ADMIN_OP__SSH_CA:
		/* The CA's public key line, for the nodes' sshd. */
		reply->ssh_ca = (char *)sshca_pubkey_line(aenv.ssh_ca);
		break;
	default:
		admin_error(reply, "unknown request %d", (int)req->op);
		break;
	}
}

void
admin_reply_free(Mezite__AdminReply *reply)
{
	store_user_free(mem.users, mem.nusers);
	store_role_free(mem.roles, mem.nroles);
	store_token_free(mem.tokens, mem.ntokens);
	store_cert_free(mem.certs, mem.ncerts);
	store_event_free(mem.events, mem.nevents);
	store_key_free(mem.keys, mem.nkeys);
	free(mem.pb);
	free(mem.pbp);
	explicit_bzero(mem.secret, sizeof(mem.secret));
	memset(&mem, 0, sizeof(mem));
}
