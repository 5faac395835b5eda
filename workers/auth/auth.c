/*
 * The auth worker: Mezite's identity service.
 *
 * It alone opens the store (users, roles, join tokens, certificates
 * issued, nodes, audit events: store.h) and holds the private keys of
 * the two certificate authorities (ca.c), in its own directory of the
 * state directory, which is also its chroot.  Sessions come from the
 * master (ALPN mezite-auth, or h2 on a name routed to the auth worker)
 * and speak gRPC (grpc.c, rpc.c); mezctl's requests come through the
 * supervisor (admin.c), and so do the ssh workers' questions and audit
 * events (sshauth.c).
 *
 * It tells the supervisor its CA certificates when it starts, and the
 * serials of revoked certificates whenever they change: the master
 * verifies client certificates against the first and refuses the second.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "ca.h"
#include "grpc.h"
#include "log.h"
#include "meta.h"
#include "mezited.h"
#include "ratelimit.h"
#include "sandbox.h"
#include "sshcert.h"
#include "util.h"
#include "worker.h"

#define AUTH_TICK		1	/* seconds */
#define AUTH_REVOKED_EVERY	60	/* the list loses expired serials */
#define AUTH_MAX_STREAMS	100	/* per connection */
#define AUTH_MESSAGE_MAX	(64 * 1024)
#define AUTH_MEMORY		(16 * 1024 * 1024)
#define ADMIN_PART		(12 * 1024)	/* an admin reply's part */

struct auth_env		 aenv;

static void	 auth_configure(const Mezite__WorkerConfig *);
static void	 auth_watch(struct proc_chan *);
static void	 auth_unwatch(struct proc_chan *);
static void	 auth_handoff(int, Mezite__ConnMeta *);
static void	 auth_status(const Mezite__Status *);
static void	 auth_drain(void);
static void	 auth_closed(const Mezite__ConnMeta *);
static void	 auth_tick(int, short, void *);
static int	 auth_admin(struct proc_chan *, struct imsg *, void *);
static int	 auth_node_state(struct proc_chan *, struct imsg *, void *);
static int	 auth_ssh_login(struct proc_chan *, struct imsg *, void *);
static int	 auth_ssh_access(struct proc_chan *, struct imsg *, void *);
static int	 auth_ssh_audit(struct proc_chan *, struct imsg *, void *);
static void	 admin_send(struct proc_chan *, uint32_t,
		    Mezite__AdminReply *);

static const struct proc_msg auth_parent_msgs[] = {
	/* Unpacked by the handler, which wipes the password's bytes. */
	{ IMSG_ADMIN, PROC_LEN_ANY, NULL, PROC_FD_NONE, auth_admin },
	{ IMSG_NODE_STATE, PROC_LEN_PB, &mezite__node_state__descriptor,
	    PROC_FD_NONE, auth_node_state },
	/*
	 * An ssh worker's, forwarded as they came: unpacked by the
	 * handlers, which drop what does not decode rather than the
	 * supervisor's channel.
	 */
	{ IMSG_SSH_AUTH, PROC_LEN_ANY, NULL, PROC_FD_NONE, auth_ssh_login },
	{ IMSG_SSH_ACCESS, PROC_LEN_ANY, NULL, PROC_FD_NONE, auth_ssh_access },
	{ IMSG_AUDIT, PROC_LEN_ANY, NULL, PROC_FD_NONE, auth_ssh_audit },
};

static const struct worker_cb auth_cb = {
	.configure = auth_configure,
	.watch = auth_watch,
	.unwatch = auth_unwatch,
	.handoff = auth_handoff,
	.status = auth_status,
	.drain = auth_drain,
	.parent_msgs = auth_parent_msgs,
	.nparent_msgs = nitems(auth_parent_msgs),
};

static struct event	 tickev;
static int		 draining;
static time_t		 revoked_sent;

__dead void
auth(unsigned int instance, const char *user, const char *root)
{
	struct timeval	 tv = { AUTH_TICK, 0 };

	event_init();
	worker_init(PROC_AUTH, instance, user, root, &auth_cb);
	evtimer_set(&tickev, auth_tick, NULL);
	evtimer_add(&tickev, &tv);
	event_dispatch();
	fatalx("event loop ended");
}

static void
auth_configure(const Mezite__WorkerConfig *wc)
{
	static struct grpc_service	 svc;
	Mezite__AuthCA			 ca = MEZITE__AUTH_CA__INIT;
	char				 path[PATH_MAX];
	const char			*pem;
	size_t				 len;

	len = strlen(wc->state);
	if (snprintf(path, sizeof(path), "%s%s%s", wc->state,
	    len > 0 && wc->state[len - 1] == '/' ? "" : "/", AUTH_DB) >=
	    (int)sizeof(path))
		fatalx("auth directory %s: path too long", wc->state);
	if ((aenv.store = store_open(path)) == NULL)
		fatalx("cannot open the store %s", path);
	if (passwd_init() == -1)
		fatalx("cannot make password hashes");
	if ((aenv.user_ca = ca_open(wc->state, "user")) == NULL ||
	    (aenv.host_ca = ca_open(wc->state, "host")) == NULL)
		fatalx("cannot open the certificate authorities in %s",
		    wc->state);
	if ((aenv.ssh_ca = sshca_open(wc->state)) == NULL)
		fatalx("cannot open the SSH user CA in %s", wc->state);
	if ((aenv.rl_user = ratelimit_new(AUTH_RATE_KEYS, AUTH_USER_FREE,
	    AUTH_DELAY_MAX)) == NULL ||
	    (aenv.rl_addr = ratelimit_new(AUTH_RATE_KEYS, AUTH_ADDR_FREE,
	    AUTH_DELAY_MAX)) == NULL)
		fatal("%s", __func__);
	aenv.cert_ttl = wc->cert_ttl ? wc->cert_ttl : CERT_TTL;

	svc.methods = auth_methods;
	svc.nmethods = auth_nmethods;
	svc.max_message = AUTH_MESSAGE_MAX;
	svc.max_streams = AUTH_MAX_STREAMS;
	svc.memory = AUTH_MEMORY;
	svc.idle_timeout = wc->idle_timeout;
	svc.closed = auth_closed;
	grpc_init(&svc);

	pem = ca_cert_pem(aenv.user_ca, &len);
	ca.user_ca.data = (uint8_t *)pem;
	ca.user_ca.len = len;
	pem = ca_cert_pem(aenv.host_ca, &len);
	ca.host_ca.data = (uint8_t *)pem;
	ca.host_ca.len = len;
	if (proc_compose_pb(worker_parent(), IMSG_AUTH_CA, 0, -1,
	    &ca.base) == -1)
		fatal("%s: compose", __func__);
	auth_push_revoked();
	log_debug("serving, store %s", path);
	sandbox_auth(wc->state);
}

/* The runtime's channels are driven by libevent, as ours are. */
static void
auth_watch(struct proc_chan *ch)
{
	proc_chan_event_watch(ch);
}

static void
auth_unwatch(struct proc_chan *ch)
{
	/* proc_chan_clear() takes the channel out of the loop. */
}

static void
auth_handoff(int fd, Mezite__ConnMeta *meta)
{
	if (draining || aenv.store == NULL) {
		close(fd);
		mezite__conn_meta__free_unpacked(meta, NULL);
		return;
	}
	(void)grpc_accept(fd, meta);
}

static void
auth_status(const Mezite__Status *st)
{
	/* The auth worker asks the master nothing. */
}

static void
auth_drain(void)
{
	draining = 1;
	grpc_drain();
}

static void
auth_closed(const Mezite__ConnMeta *meta)
{
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS)
		worker_conn_done(meta->id);
}

static void
auth_tick(int fd, short event, void *arg)
{
	struct timeval	 tv = { AUTH_TICK, 0 };

	if (worker_terminated() || draining) {
		if (grpc_sessions() == 0)
			worker_exit();
	}
	if (aenv.store != NULL &&
	    time(NULL) - revoked_sent >= AUTH_REVOKED_EVERY)
		auth_push_revoked();
	evtimer_add(&tickev, &tv);
}

/*
 * The serials of revoked certificates that have not expired: the master
 * refuses them at the handshake.  The whole list each time; it is small,
 * since certificates are short-lived.
 */
void
auth_push_revoked(void)
{
	Mezite__Revoked		 r = MEZITE__REVOKED__INIT;
	struct store_strv	 sv = { NULL, 0 };

	revoked_sent = time(NULL);
	if (store_cert_revoked(aenv.store, revoked_sent, &sv) == -1)
		return;
	if (sv.n > REVOKED_MAX) {
		log_warnx("%zu unexpired certificates are revoked; the "
		    "master is told of %d only", sv.n, REVOKED_MAX);
		sv.n = REVOKED_MAX;
	}
	r.serials = sv.v;
	r.n_serials = sv.n;
	if (proc_compose_pb(worker_parent(), IMSG_AUTH_REVOKED, 0, -1,
	    &r.base) == -1)
		log_warn("%s: compose", __func__);
	store_strv_clear(&sv);
}

/* A mezctl request; the supervisor has checked who may make it. */
static int
auth_admin(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AdminRequest	*req;
	Mezite__AdminReply	 reply = MEZITE__ADMIN_REPLY__INIT;

	req = pb_unpack(&mezite__admin_request__descriptor, imsg);
	pb_wipe(imsg);
	if (req == NULL)
		return (-1);
	if (aenv.store == NULL)
		reply.error = "the auth worker is not configured yet";
	else
		admin_request(req, &reply);
	explicit_bzero(req->password, strlen(req->password));
	/* The reply may point into the request. */
	admin_send(ch, imsg_get_id(imsg), &reply);
	admin_reply_free(&reply);
	pb_free(req);
	return (0);
}

/* A node's agent came or went, as a tunnel worker saw it. */
static int
auth_node_state(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	nodes_update(msg);
	return (0);
}

/* The client's address, as the audit shows it. */
static void
ssh_client(const Mezite__Address *a, char *buf, size_t size)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	if (a == NULL || addr_from_pb(a, &ss, &len) == -1)
		(void)strlcpy(buf, "unknown", size);
	else
		(void)addr_str((struct sockaddr *)&ss, buf, size);
}

static void
ssh_reply(struct proc_chan *ch, uint32_t type, uint32_t id,
    const struct sshauth_result *r)
{
	Mezite__SshReply	 reply = MEZITE__SSH_REPLY__INIT;

	reply.allowed = r->allowed;
	reply.reason = (char *)r->reason;
	if (r->allowed) {
		reply.roles = r->roles.v;
		reply.n_roles = r->roles.n;
	}
	if (proc_compose_pb(ch, type, id, -1, &reply.base) == -1)
		log_warn("%s: compose", __func__);
}

/*
 * May a user log in?  Not audited here: the ssh worker asks of each key
 * the client offers, and audits the login's outcome itself.
 */
static int
auth_ssh_login(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SshAuthRequest	*req;
	struct sshauth_result	 r;

	memset(&r, 0, sizeof(r));
	if ((req = pb_unpack(&mezite__ssh_auth_request__descriptor,
	    imsg)) == NULL) {
		log_warnx("ssh: a malformed login request");
		(void)strlcpy(r.reason, "malformed request", sizeof(r.reason));
	} else if (aenv.store == NULL)
		(void)strlcpy(r.reason, "the auth worker is not configured "
		    "yet", sizeof(r.reason));
	else if (sshauth_login(aenv.store, req, time(NULL), &r) == -1)
		(void)strlcpy(r.reason, "the auth store failed",
		    sizeof(r.reason));
	ssh_reply(ch, IMSG_SSH_AUTH_REPLY, imsg_get_id(imsg), &r);
	sshauth_result_clear(&r);
	pb_free(req);
	return (0);
}

/* May a user reach a node's service?  Every denial is audited. */
static int
auth_ssh_access(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__SshAccessRequest	*req;
	struct sshauth_result		 r;
	char				 addr[ADDRSTRLEN];
	char				 user[AUTH_NAME_MAX + 1];
	char				 node[AUTH_NAME_MAX + 1];
	char				 service[AUTH_NAME_MAX + 1];

	memset(&r, 0, sizeof(r));
	if ((req = pb_unpack(&mezite__ssh_access_request__descriptor,
	    imsg)) == NULL) {
		log_warnx("ssh: a malformed access request");
		(void)strlcpy(r.reason, "malformed request", sizeof(r.reason));
	} else if (aenv.store == NULL)
		(void)strlcpy(r.reason, "the auth worker is not configured "
		    "yet", sizeof(r.reason));
	else {
		if (sshauth_access(aenv.store, req, &r) == -1)
			(void)strlcpy(r.reason, "the auth store failed",
			    sizeof(r.reason));
		if (!r.allowed) {
			/* The names are the client's, as it sent them. */
			ssh_client(req->client, addr, sizeof(addr));
			sshauth_quote(req->user, user, sizeof(user));
			sshauth_quote(req->node, node, sizeof(node));
			sshauth_quote(req->service, service, sizeof(service));
			auth_audit("ssh.denied", user, addr, 0,
			    "%s %s service %s: %s", req->static_target ?
			    "static target" : "node", node, service,
			    r.reason);
		}
	}
	ssh_reply(ch, IMSG_SSH_ACCESS_REPLY, imsg_get_id(imsg), &r);
	sshauth_result_clear(&r);
	pb_free(req);
	return (0);
}

/*
 * An ssh worker's audit event: stored if it is one (sshauth_event()),
 * logged and dropped if not.  Only the ssh workers' come this way.
 */
static int
auth_ssh_audit(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__AuditEvent	*e;
	struct store_event	 ev;
	const char		*why;

	if ((e = pb_unpack(&mezite__audit_event__descriptor, imsg)) == NULL) {
		log_warnx("ssh: a malformed audit event, dropped");
		return (0);
	}
	if (sshauth_event(e, time(NULL), &ev, &why) == -1)
		log_warnx("ssh: an audit event dropped: %s", why);
	else if (aenv.store == NULL)
		log_warnx("ssh: audit: %s %s: not stored, no store yet",
		    ev.type, ev.name);
	else {
		log_info("audit: %s %s%s%s%s%s", ev.type, ev.name,
		    *ev.address ? " from " : "", ev.address,
		    *ev.detail ? ": " : "", ev.detail);
		if (store_event_add(aenv.store, &ev) == -1)
			log_warnx("audit: %s %s: not stored", ev.type,
			    ev.name);
	}
	pb_free(e);
	return (0);
}

/*
 * Send a reply in parts of at most ADMIN_PART bytes, whatever the length
 * of its list: the reply's one non-empty repeated field is sent a slice
 * at a time, each part but the last saying that more follow.
 */
static void
admin_send(struct proc_chan *ch, uint32_t id, Mezite__AdminReply *reply)
{
	const ProtobufCMessageDescriptor *d = reply->base.descriptor;
	const ProtobufCFieldDescriptor	*f = NULL;
	ProtobufCMessage		**v = NULL;
	size_t				*np = NULL, n = 0, i, start, size;
	unsigned int			 k;

	for (k = 0; k < d->n_fields; k++) {
		if (d->fields[k].label != PROTOBUF_C_LABEL_REPEATED ||
		    d->fields[k].type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		np = (size_t *)((char *)reply + d->fields[k].quantifier_offset);
		if (*np > 0) {
			f = &d->fields[k];
			n = *np;
			v = *(ProtobufCMessage ***)((char *)reply + f->offset);
			break;
		}
	}
	start = 0;
	do {
		/* An entry costs its bytes, a tag and a length. */
		for (i = start, size = 0; i < n; i++) {
			size += protobuf_c_message_get_packed_size(v[i]) + 8;
			if (size > ADMIN_PART && i > start)
				break;
		}
		if (f != NULL) {
			*(ProtobufCMessage ***)((char *)reply + f->offset) =
			    v + start;
			*np = i - start;
		}
		reply->more = i < n;
		if (proc_compose_pb(ch, IMSG_ADMIN_REPLY, id, -1,
		    &reply->base) == -1) {
			log_warn("%s: compose", __func__);
			break;
		}
		start = i;
	} while (start < n);
	if (f != NULL) {
		*(ProtobufCMessage ***)((char *)reply + f->offset) = v;
		*np = n;
	}
}

/*
 * An audit event: to the store, and to the log.  A store that cannot
 * take it is logged; the event is not lost from the log.
 */
void
auth_audit(const char *type, const char *name, const char *address,
    int success, const char *fmt, ...)
{
	struct store_event	 ev;
	va_list			 ap;
	char			 detail[256];

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	memset(&ev, 0, sizeof(ev));
	ev.time = time(NULL);
	ev.type = (char *)type;
	ev.name = (char *)(name ? name : "");
	ev.address = (char *)(address ? address : "");
	ev.success = success;
	ev.detail = detail;
	log_info("audit: %s %s%s%s%s%s", type, ev.name,
	    *ev.address ? " from " : "", ev.address,
	    *detail ? ": " : "", detail);
	if (store_event_add(aenv.store, &ev) == -1)
		log_warnx("audit: %s %s: not stored", type, ev.name);
}
