/*
 * The ssh worker's questions, answered from the store: may this user log
 * in, may she reach this node's service, and is this audit event one to
 * keep.  Each answer reads the store and does nothing else: the caller
 * (auth.c) replies, and audits what it must.
 *
 * A login is allowed with a public key registered for the user, or,
 * without a key, with the TLS client certificate the auth worker's user
 * CA issued to her, unexpired and unrevoked.  A denial does not say
 * whether the user or the key was unknown.
 *
 * Access to a node's service is allowed when one of the user's roles, as
 * they are now, allows both the node and the service (rbac.c): a role
 * without service patterns allows "ssh" alone.  A node that never joined
 * is refused as a node no role allows.
 */

#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "sshkey.h"

#define NO_LOGIN	"no such user or key"

static void
deny(struct sshauth_result *r, const char *fmt, ...)
    __attribute__((__format__ (printf, 2, 3)));

static void
deny(struct sshauth_result *r, const char *fmt, ...)
{
	va_list	 ap;

	r->allowed = 0;
	va_start(ap, fmt);
	(void)vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

/*
 * A name from a request as a reason or the audit may quote it: at most
 * AUTH_NAME_MAX bytes, blanks and bytes other than printable ASCII as
 * '?'.
 */
void
sshauth_quote(const char *s, char *buf, size_t size)
{
	size_t	 i;

	for (i = 0; i + 1 < size && i < AUTH_NAME_MAX && s[i] != '\0'; i++)
		buf[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
}

void
sshauth_result_clear(struct sshauth_result *r)
{
	store_strv_clear(&r->roles);
	memset(r, 0, sizeof(*r));
}

/*
 * Her certificate, as the store has it, unexpired and unrevoked?  -1 if
 * the store failed.
 */
static int
login_cert(struct store *st, const Mezite__SshAuthRequest *req,
    time_t now, struct sshauth_result *r)
{
	const Mezite__PeerCert	*pc = req->cert;
	struct store_cert	 c;
	int			 rv;

	if (pc == NULL || strcmp(pc->kind, "user") != 0 ||
	    strcmp(pc->name, req->user) != 0 || pc->serial[0] == '\0' ||
	    strlen(pc->serial) >= sizeof(c.serial)) {
		deny(r, NO_LOGIN);
		return (0);
	}
	if ((rv = store_cert_get(st, pc->serial, &c)) != 0) {
		deny(r, NO_LOGIN);
		return (rv == -1 ? -1 : 0);
	}
	if (strcmp(c.kind, "user") != 0 || strcmp(c.name, req->user) != 0)
		deny(r, NO_LOGIN);
	else if (c.revoked != 0)
		deny(r, "the certificate is revoked");
	else if (c.not_after <= now || pc->not_after <= now)
		deny(r, "the certificate has expired");
	else if (c.not_before > now)
		deny(r, "the certificate is not valid yet");
	else
		r->allowed = 1;
	store_cert_clear(&c);
	return (0);
}

/* Is the key offered one registered for her?  -1 if the store failed. */
static int
login_key(struct store *st, const Mezite__SshAuthRequest *req,
    struct sshauth_result *r)
{
	struct sshkey		 k;
	struct store_key	 sk;
	char			 err[128];
	int			 rv;

	if (sshkey_parse(req->public_key, &k, err, sizeof(err)) == -1) {
		deny(r, NO_LOGIN);
		return (0);
	}
	if ((rv = store_key_get(st, req->user, k.fingerprint, &sk)) != 0) {
		deny(r, NO_LOGIN);
		return (rv == -1 ? -1 : 0);
	}
	if (strcmp(sk.type, k.type) != 0 || strcmp(sk.blob, k.b64) != 0)
		deny(r, NO_LOGIN);
	else
		r->allowed = 1;
	store_key_clear(&sk);
	return (0);
}

/*
 * May req->user log in?  r says, with her roles when she may: 0, or -1
 * if the store failed (r denies then).
 */
int
sshauth_login(struct store *st, const Mezite__SshAuthRequest *req,
    time_t now, struct sshauth_result *r)
{
	struct store_user	 u;
	int			 rv;

	memset(r, 0, sizeof(*r));
	if (!auth_name_valid(req->user)) {
		deny(r, NO_LOGIN);
		return (0);
	}
	if ((rv = store_user_get(st, req->user, &u)) != 0) {
		deny(r, NO_LOGIN);
		return (rv == -1 ? -1 : 0);
	}
	if (req->public_key[0] == '\0')
		rv = login_cert(st, req, now, r);
	else
		rv = login_key(st, req, r);
	if (r->allowed) {
		r->roles = u.roles;
		memset(&u.roles, 0, sizeof(u.roles));
	}
	store_user_clear(&u);
	return (rv);
}

/*
 * May req->user reach req->service on req->node?  0, or -1 if the store
 * failed; r denies unless it says otherwise.  A static target (one of
 * the ssh worker's configuration) is no node of the store: it has its
 * name and no labels, so that only node patterns can match it.
 */
int
sshauth_access(struct store *st, const Mezite__SshAccessRequest *req,
    struct sshauth_result *r)
{
	struct store_user	 u;
	struct store_node	 n;
	struct store_role	 role;
	char			 q[AUTH_NAME_MAX + 1];
	size_t			 i;
	int			 rv, failed = 0, node_ok = 0;

	memset(r, 0, sizeof(*r));
	sshauth_quote(req->node, q, sizeof(q));
	deny(r, "access to node %s denied", q);
	if (!auth_name_valid(req->user) || !auth_name_valid(req->node))
		return (0);
	if (!auth_name_valid(req->service)) {
		sshauth_quote(req->service, q, sizeof(q));
		deny(r, "service %s is not allowed", q);
		return (0);
	}
	if ((rv = store_user_get(st, req->user, &u)) != 0)
		return (rv == -1 ? -1 : 0);
	memset(&n, 0, sizeof(n));
	if (req->static_target) {
		if ((n.name = strdup(req->node)) == NULL) {
			store_user_clear(&u);
			return (-1);
		}
	} else if ((rv = store_node_get(st, req->node, &n)) != 0) {
		store_user_clear(&u);
		return (rv == -1 ? -1 : 0);
	}
	for (i = 0; i < u.roles.n && !r->allowed; i++) {
		if ((rv = store_role_get(st, u.roles.v[i], &role)) == -1)
			failed = 1;
		if (rv != 0)
			continue;	/* deleted meanwhile */
		if (rbac_role_allows(&role, &n)) {
			node_ok = 1;
			if (rbac_role_allows_service(&role, req->service))
				r->allowed = 1;
		}
		store_role_clear(&role);
	}
	if (r->allowed) {
		r->reason[0] = '\0';
		r->roles = u.roles;
		memset(&u.roles, 0, sizeof(u.roles));
	} else if (node_ok) {
		sshauth_quote(req->service, q, sizeof(q));
		deny(r, "service %s is not allowed", q);
	}
	store_user_clear(&u);
	store_node_clear(&n);
	return (failed && !r->allowed ? -1 : 0);
}

/* A field of an event: at most max bytes, and no control characters. */
static int
field_ok(const char *s, size_t max)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] == 0x7f)
			return (0);
	return (1);
}

/*
 * An audit event the ssh worker sends: into ev, which points into e,
 * if it is one to keep; otherwise -1 and why.  Its type begins with
 * "ssh."; its time is the auth worker's if it has none or is off by
 * more than SSHAUTH_SKEW.
 */
int
sshauth_event(const Mezite__AuditEvent *e, time_t now,
    struct store_event *ev, const char **why)
{
	memset(ev, 0, sizeof(*ev));
	if (strncmp(e->type, "ssh.", 4) != 0 || e->type[4] == '\0' ||
	    !field_ok(e->type, SSHAUTH_TYPE_MAX)) {
		*why = "its type is not \"ssh.\" and more, up to 32 bytes";
		return (-1);
	}
	if (!field_ok(e->name, SSHAUTH_NAME_MAX) ||
	    !field_ok(e->address, SSHAUTH_ADDRESS_MAX)) {
		*why = "its name or address is too long or not printable";
		return (-1);
	}
	if (!field_ok(e->detail, SSHAUTH_DETAIL_MAX)) {
		*why = "its detail is too long or not printable";
		return (-1);
	}
	ev->time = e->time;
	if (e->time <= 0 || e->time > now + SSHAUTH_SKEW ||
	    e->time < now - SSHAUTH_SKEW)
		ev->time = now;
	ev->type = e->type;
	ev->name = e->name;
	ev->address = e->address;
	ev->success = e->success;
	ev->detail = e->detail;
	return (0);
}
