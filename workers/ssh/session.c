/*
 * A session process: one SSH session, from its key exchange to its end,
 * and then the process ends too.
 *
 * It waits, forked ahead by its worker, for a session handed over on
 * its channel; then libssh speaks SSH on it.  A user logs in with the
 * identity of the TLS client certificate the master verified (the
 * "none" method, for the user the certificate names), or with a public
 * key registered for them; the auth worker decides either, through the
 * worker.  There is no shell here: the session may only open
 * direct-tcpip channels (what ssh -J, -W and -L open) to a node's
 * services or to a static target, each allowed by the auth worker and
 * carried by a stream the tunnel worker dials (or, for a static target,
 * a connection the worker makes).  Port 22 is a node's service "ssh";
 * any other port is the service named by its number in decimal.
 *
 * The process is one session's, so its questions to the worker wait for
 * their answers, and libssh's session blocks: a client that stops
 * reading stalls only itself.  Bytes are pumped by hand, not with
 * ssh_connector, which takes a closed window for an end of stream:
 * from a node toward the client only while the client's window is
 * open, and from the client toward a node only while SSH_CHANNEL_BUF
 * bytes are not yet waiting for the node, so that neither side can
 * make this process hold more than that per channel.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "sandbox.h"
#include "util.h"
#include "ssh.h"

#define SESSION_POLL_MS		1000
#define PUMP_READ		(32 * 1024)
#define SESSION_WRITE_WAIT	600	/* seconds a client may not read */

/* Modern algorithms only, as ssh-audit recommends. */
#define SSH_KEX		"curve25519-sha256,curve25519-sha256@libssh.org," \
			"diffie-hellman-group16-sha512," \
			"diffie-hellman-group18-sha512"
#define SSH_CIPHERS	"chacha20-poly1305@openssh.com," \
			"aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
			"aes256-ctr,aes192-ctr,aes128-ctr"
#define SSH_MACS	"hmac-sha2-256-etm@openssh.com," \
			"hmac-sha2-512-etm@openssh.com"
#define SSH_HOSTKEY_ALGOS "ssh-ed25519"

/* A direct-tcpip channel and the stream to its node. */
struct schan {
	TAILQ_ENTRY(schan)	 entry;
	ssh_channel		 ch;
	int			 fd;
	uint8_t			*buf;		/* from the client, for the node */
	size_t			 off, len;
	int			 node_eof;	/* the node sent its last byte */
	int			 eof_sent;	/* and the client was told */
	int			 shut;		/* the node was told the client's */
	char			 target[140];
	uint64_t		 in, out;	/* from the client, to it */
};
TAILQ_HEAD(schans, schan);

static struct {
	ssh_session		 ssh;
	ssh_event		 ev;
	struct imsgbuf		 ibuf;		/* to the worker */
	Mezite__ConnMeta	*meta;
	int			 fd;		/* the session's socket */
	const char		*wname;
	char			 user[SSH_USER_MAX + 1];	/* logged in */
	char			 method[160];	/* how */
	char			 pk_ok[8192];	/* the key the worker allowed */
	char			 pk_user[SSH_USER_MAX + 1];
	int			 authed;
	unsigned int		 tries;		/* refused credentials */
	unsigned int		 refused;	/* refused channels */
	uint32_t		 cookie;
	struct schans		 chans;
	unsigned int		 nchans;
	uint64_t		 bytes_in, bytes_out;	/* closed channels' */
	char			 targets[SSH_TARGETS_LEN];
	int			 changed;	/* the worker should know */
	int64_t			 started;
} S;

static void	*ask(uint32_t, const ProtobufCMessage *, uint32_t,
		    const ProtobufCMessageDescriptor *, int *);
static void	*await(uint32_t, uint32_t, const ProtobufCMessageDescriptor *,
		    int *);
static void	 audit(const char *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static void	 report(void);
static void	 pump(void);
static void	 schan_free(struct schan *);

static void
grace(int sig)
{
	_exit(SSH_EXIT_GRACE);
}

/*
 * A message to the worker, and its answer, whose type is want and
 * whose id is ours: the question's cookie.
 */
static void *
ask(uint32_t type, const ProtobufCMessage *m, uint32_t want,
    const ProtobufCMessageDescriptor *d, int *fdp)
{
	uint32_t	 id = ++S.cookie;

	if (pb_compose(&S.ibuf, type, id, -1, m) == -1 ||
	    imsgbuf_flush(&S.ibuf) == -1)
		fatal("to the worker");
	return (await(want, id, d, fdp));
}

/* The worker's next message, which must be of that type and id. */
static void *
await(uint32_t want, uint32_t id, const ProtobufCMessageDescriptor *d,
    int *fdp)
{
	struct imsg	 imsg;
	void		*r;
	ssize_t		 n;

	for (;;) {
		if ((n = imsg_get(&S.ibuf, &imsg)) == -1)
			fatal("from the worker");
		if (n > 0)
			break;
		if ((n = imsgbuf_read(&S.ibuf)) == -1 && errno != EINTR)
			fatal("from the worker");
		if (n == 0)
			fatalx("the worker went away");
	}
	if (imsg_get_type(&imsg) != want || imsg_get_id(&imsg) != id ||
	    (r = pb_unpack(d, &imsg)) == NULL)
		fatalx("a wrong answer from the worker: %s",
		    imsg_name(imsg_get_type(&imsg)));
	if (fdp != NULL)
		*fdp = imsg_get_fd(&imsg);
	else if (imsg_get_fd(&imsg) != -1)
		close(imsg_get_fd(&imsg));
	imsg_free(&imsg);
	return (r);
}

/* Something for the audit log; the worker names the user and address. */
static void
audit(const char *type, int success, const char *fmt, ...)
{
	Mezite__AuditEvent	 ev = MEZITE__AUDIT_EVENT__INIT;
	char			 detail[900];
	va_list			 ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ev.time = time(NULL);
	ev.type = (char *)type;
	ev.name = "";
	ev.address = "";
	ev.success = success;
	ev.detail = detail;
	if (pb_compose(&S.ibuf, IMSG_AUDIT, 0, -1, &ev.base) == -1 ||
	    imsgbuf_flush(&S.ibuf) == -1)
		fatal("to the worker");
}

/* The worker's idea of us, for mezctl show sessions. */
static void
report(void)
{
	Mezite__SshSession	 ss = MEZITE__SSH_SESSION__INIT;
	struct schan		*c;

	ss.channels = S.nchans;
	ss.bytes_in = S.bytes_in;
	ss.bytes_out = S.bytes_out;
	TAILQ_FOREACH(c, &S.chans, entry) {
		ss.bytes_in += c->in;
		ss.bytes_out += c->out;
	}
	ss.targets = S.targets;
	ss.user = "";
	ss.worker = "";
	if (pb_compose(&S.ibuf, IMSG_SSH_SESSION, 0, -1, &ss.base) == -1 ||
	    imsgbuf_flush(&S.ibuf) == -1)
		fatal("to the worker");
	S.changed = 0;
}

/* Authentication */

/*
 * May user log in with this credential?  key: "type base64", or NULL
 * for the certificate's identity.
 */
static int
may_login(const char *user, const char *key)
{
	Mezite__SshAuthRequest	 req = MEZITE__SSH_AUTH_REQUEST__INIT;
	Mezite__SshReply	*r;
	int			 ok;

	req.user = (char *)user;
	req.public_key = (char *)(key != NULL ? key : "");
	r = ask(IMSG_SSH_AUTH, &req.base, IMSG_SSH_AUTH_REPLY,
	    &mezite__ssh_reply__descriptor, NULL);
	ok = r->allowed;
	if (!ok)
		log_debug("conn %llu: %s refused: %s", (unsigned long long)
		    S.meta->id, user, r->reason);
	mezite__ssh_reply__free_unpacked(r, NULL);
	return (ok);
}

static void
logged_in(const char *user, const char *how)
{
	(void)strlcpy(S.user, user, sizeof(S.user));
	(void)strlcpy(S.method, how, sizeof(S.method));
	S.authed = 1;
}

static int
refused(void)
{
	S.tries++;
	return (SSH_AUTH_DENIED);
}

/*
 * "none": the TLS client certificate the master verified is the
 * credential, for the user it names and no other.
 */
static int
auth_none(ssh_session s, const char *user, void *arg)
{
	const Mezite__PeerCert	*pc = S.meta->cert;
	char			 how[160];

	if (pc == NULL || strcmp(pc->kind, "user") != 0)
		return (SSH_AUTH_DENIED);	/* no try spent */
	if (strcmp(pc->name, user) != 0 || !may_login(user, NULL))
		return (refused());
	(void)snprintf(how, sizeof(how), "certificate %s", pc->serial);
	logged_in(user, how);
	return (SSH_AUTH_SUCCESS);
}

/*
 * A public key: asked of the auth worker when the client offers it,
 * and taken once libssh has checked the client's signature with it.
 */
static int
auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
    char state, void *arg)
{
	char		 line[sizeof(S.pk_ok)], how[160], *b64 = NULL;
	char		*fp = NULL;
	unsigned char	*h = NULL;
	size_t		 hlen;
	const char	*type;

	if (state == SSH_PUBLICKEY_STATE_WRONG)
		return (refused());
	if ((type = ssh_key_type_to_char(ssh_key_type(key))) == NULL ||
	    ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		return (refused());
	if ((size_t)snprintf(line, sizeof(line), "%s %s", type, b64) >=
	    sizeof(line)) {
		ssh_string_free_char(b64);
		return (refused());
	}
	ssh_string_free_char(b64);
	/* The offer was allowed; the signature makes it a login. */
	if (strcmp(line, S.pk_ok) != 0 || strcmp(user, S.pk_user) != 0) {
		if (!may_login(user, line))
			return (refused());
		(void)strlcpy(S.pk_ok, line, sizeof(S.pk_ok));
		(void)strlcpy(S.pk_user, user, sizeof(S.pk_user));
	}
	if (state != SSH_PUBLICKEY_STATE_VALID)
		return (SSH_AUTH_SUCCESS);	/* PK_OK: sign with it */
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &h,
	    &hlen) == 0)
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, h,
		    hlen);
	(void)snprintf(how, sizeof(how), "publickey %s %s", type,
	    fp != NULL ? fp : "?");
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&h);
	logged_in(user, how);
	return (SSH_AUTH_SUCCESS);
}

/* Channels */

static int
node_name_ok(const char *p)
{
	size_t	 n = strlen(p);

	return (n > 0 && n <= 64 && strspn(p, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
}

/*
 * A channel refused.  libssh 0.10 cannot put why in the refusal, so it
 * goes before it as a debug message, which OpenSSH's ssh shows with -v
 * ("Remote: ..."); and to the log.
 */
static int
refuse(const char *fmt, ...)
{
	char	 why[256];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_info("conn %llu: %s: %s", (unsigned long long)S.meta->id,
	    S.user[0] != '\0' ? S.user : "before login", why);
	(void)ssh_send_debug(S.ssh, why, 1);
	S.refused++;
	return (1);		/* libssh refuses it */
}

static void
targets_add(const char *target)
{
	size_t	 n = strlen(S.targets);

	if (strstr(S.targets, target) != NULL)
		return;
	if (n + strlen(target) + 3 >= sizeof(S.targets))
		return;		/* shown as far as it goes */
	(void)snprintf(S.targets + n, sizeof(S.targets) - n, "%s%s",
	    n > 0 ? ", " : "", target);
}

/*
 * direct-tcpip to NODE:PORT: allowed by the auth worker, then a stream
 * from the tunnel worker (or the worker's connection to a static
 * target), and only then accepted, so that a refusal reaches the client
 * as a refused channel with its reason.
 */
static int
open_direct(ssh_message msg)
{
	Mezite__SshAccessRequest	 ar = MEZITE__SSH_ACCESS_REQUEST__INIT;
	Mezite__DialRequest		 dr = MEZITE__DIAL_REQUEST__INIT;
	Mezite__SshReply		*r;
	Mezite__DialReply		*d;
	struct schan			*c;
	ssh_channel			 ch;
	const char			*node;
	char				 service[8];
	int				 port, fd = -1, ok;

	node = ssh_message_channel_request_open_destination(msg);
	port = ssh_message_channel_request_open_destination_port(msg);
	if (node == NULL || !node_name_ok(node))
		return (refuse("%s: not a node's name", node ? node : "?"));
	if (port <= 0 || port > 65535)
		return (refuse("%s:%d: not a port", node, port));
	/* 22 is the node's sshd; another port, the service of its number. */
	if (port == 22)
		(void)strlcpy(service, "ssh", sizeof(service));
	else
		(void)snprintf(service, sizeof(service), "%d", port);
	if (S.nchans >= SSH_CHANNELS_MAX)
		return (refuse("%s:%d: too many channels are open (%d)",
		    node, port, SSH_CHANNELS_MAX));

	ar.user = "";
	ar.node = (char *)node;
	ar.service = service;
	r = ask(IMSG_SSH_ACCESS, &ar.base, IMSG_SSH_ACCESS_REPLY,
	    &mezite__ssh_reply__descriptor, NULL);
	ok = r->allowed;
	if (!ok) {
		(void)refuse("%s:%d: %s", node, port, r->reason[0] != '\0' ?
		    r->reason : "access denied");
		mezite__ssh_reply__free_unpacked(r, NULL);
		return (1);
	}
	mezite__ssh_reply__free_unpacked(r, NULL);

	dr.node = (char *)node;
	dr.service = service;
	dr.requester = "";
	d = ask(IMSG_TUNNEL_DIAL, &dr.base, IMSG_TUNNEL_DIAL_REPLY,
	    &mezite__dial_reply__descriptor, &fd);
	if (d->error != MEZITE__DIAL_ERROR__DIAL_OK || fd == -1) {
		(void)refuse("%s:%d: %s", node, port, d->message[0] != '\0' ?
		    d->message : "no stream to the node");
		audit("ssh.dial", 0, "%s:%s: %s", node, service, d->message);
		mezite__dial_reply__free_unpacked(d, NULL);
		if (fd != -1)
			close(fd);
		return (1);
	}
	mezite__dial_reply__free_unpacked(d, NULL);

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->buf = malloc(SSH_CHANNEL_BUF)) == NULL ||
	    fd_nonblock(fd) == -1) {
		log_warn("%s", __func__);
		if (c != NULL)
			free(c->buf);
		free(c);
		close(fd);
		return (1);
	}
	if ((ch = ssh_message_channel_request_open_reply_accept(msg)) ==
	    NULL) {
		log_warnx("conn %llu: %s:%s: the channel could not be "
		    "accepted", (unsigned long long)S.meta->id, node, service);
		free(c->buf);
		free(c);
		close(fd);
		return (1);
	}
	c->ch = ch;
	c->fd = fd;
	(void)snprintf(c->target, sizeof(c->target), "%s:%s", node, service);
	TAILQ_INSERT_TAIL(&S.chans, c, entry);
	S.nchans++;
	targets_add(c->target);
	S.changed = 1;
	log_info("conn %llu: %s reaches %s", (unsigned long long)S.meta->id,
	    S.user, c->target);
	return (0);
}

/* Everything but direct-tcpip is refused: this is no shell host. */
static int
on_message(ssh_session s, ssh_message msg, void *arg)
{
	if (!S.authed)
		return (1);
	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN) {
		if (ssh_message_subtype(msg) == SSH_CHANNEL_DIRECT_TCPIP)
			return (open_direct(msg));
		return (refuse("this bastion opens no sessions of its own: "
		    "reach a node through it with ssh -J"));
	}
	return (1);
}

static void
schan_free(struct schan *c)
{
	S.bytes_in += c->in;
	S.bytes_out += c->out;
	if (!ssh_channel_is_closed(c->ch))
		(void)ssh_channel_close(c->ch);
	ssh_channel_free(c->ch);
	close(c->fd);
	free(c->buf);
	TAILQ_REMOVE(&S.chans, c, entry);
	S.nchans--;
	S.changed = 1;
	free(c);
}

/*
 * One pass over the channels, outside libssh's callbacks: what the
 * client sent goes on to the node, what the node sent goes to the
 * client, ends are passed on, and finished channels are freed.
 */
static void
pump(void)
{
	struct schan	*c, *tc;
	uint8_t		 buf[PUMP_READ];
	uint32_t	 win;
	ssize_t		 n;
	int		 r;

	TAILQ_FOREACH_SAFE(c, &S.chans, entry, tc) {
		/* Client -> node: into the buffer while it has room. */
		while (c->len < SSH_CHANNEL_BUF &&
		    (r = ssh_channel_read_nonblocking(c->ch, c->buf + c->len,
		    SSH_CHANNEL_BUF - c->len, 0)) > 0) {
			c->len += r;
			c->in += r;
		}
		while (c->off < c->len) {
			n = write(c->fd, c->buf + c->off, c->len - c->off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN)
				break;
			if (n <= 0) {
				c->node_eof = 1;	/* the node went */
				c->off = c->len = 0;
				break;
			}
			c->off += n;
		}
		if (c->off == c->len)
			c->off = c->len = 0;
		if (c->len == 0 && !c->shut && (ssh_channel_is_eof(c->ch) ||
		    !ssh_channel_is_open(c->ch))) {
			(void)shutdown(c->fd, SHUT_WR);
			c->shut = 1;
		}

		/* Node -> client: as much as the client's window takes. */
		while (!c->node_eof && ssh_channel_is_open(c->ch) &&
		    (win = ssh_channel_window_size(c->ch)) > 0) {
			n = read(c->fd, buf, win < sizeof(buf) ? win :
			    sizeof(buf));
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN)
				break;
			if (n <= 0) {
				c->node_eof = 1;
				break;
			}
			if (ssh_channel_write(c->ch, buf, n) != n) {
				c->node_eof = 1;
				break;
			}
			c->out += n;
			S.changed = 1;
		}
		if (c->node_eof && !c->eof_sent && ssh_channel_is_open(c->ch)) {
			(void)ssh_channel_send_eof(c->ch);
			c->eof_sent = 1;
		}

		/*
		 * Done both ways; or the client closed it, and the node has
		 * had what it sent (or is gone).
		 */
		if ((c->eof_sent && c->shut) ||
		    (!ssh_channel_is_open(c->ch) && c->len == 0))
			schan_free(c);
	}
}

/* The main loop: libssh's socket, and every channel's stream. */
static void
serve(void)
{
	struct pollfd	 pfd[1 + SSH_CHANNELS_MAX];
	struct schan	*c;
	int64_t		 reported = 0;
	nfds_t		 n;

	for (;;) {
		pump();
		if (!ssh_is_connected(S.ssh))
			break;
		/* A client that keeps asking for what it may not have. */
		if (S.refused >= SSH_REFUSED_MAX) {
			log_warnx("conn %llu: %s: %u channels refused; "
			    "disconnecting", (unsigned long long)S.meta->id,
			    S.user, S.refused);
			audit("ssh.session", 0, "disconnected after %u refused "
			    "channels", S.refused);
			break;
		}
		if (S.changed && time_now() != reported) {
			report();
			reported = time_now();
		}
		pfd[0].fd = ssh_get_fd(S.ssh);
		pfd[0].events = POLLIN;
		n = 1;
		TAILQ_FOREACH(c, &S.chans, entry) {
			pfd[n].fd = c->fd;
			pfd[n].events = 0;
			if (!c->node_eof && ssh_channel_window_size(c->ch) > 0)
				pfd[n].events |= POLLIN;
			if (c->len > c->off)
				pfd[n].events |= POLLOUT;
			n++;
		}
		if (poll(pfd, n, SESSION_POLL_MS) == -1 && errno != EINTR)
			fatal("poll");
		/* Packets: data into the channels, new channels, closes. */
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    ssh_event_dopoll(S.ev, 0) == SSH_ERROR)
			break;
	}
}

/*
 * The channels first: ssh_disconnect() frees libssh's, which ours point
 * to.
 */
static void
session_end(void)
{
	int64_t	 secs = time_now() - S.started;

	while (!TAILQ_EMPTY(&S.chans))
		schan_free(TAILQ_FIRST(&S.chans));
	if (ssh_is_connected(S.ssh))
		ssh_disconnect(S.ssh);
	audit("ssh.session", 1, "%s, %llu s, %llu bytes from the client, "
	    "%llu to it", S.method, (long long)secs,
	    (unsigned long long)S.bytes_in, (unsigned long long)S.bytes_out);
	log_info("conn %llu: %s logged out after %lld s",
	    (unsigned long long)S.meta->id, S.user, (long long)secs);
}

static ssh_bind
bind_new(struct ssh_hostkeys *hk)
{
	ssh_bind	 b;
	bool		 no = false;
	size_t		 i;

	if ((b = ssh_bind_new()) == NULL)
		fatalx("ssh_bind_new");
	if (ssh_bind_options_set(b, SSH_BIND_OPTIONS_PROCESS_CONFIG,
	    &no) != SSH_OK ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_KEY_EXCHANGE,
	    SSH_KEX) != SSH_OK ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_CIPHERS_C_S,
	    SSH_CIPHERS) != SSH_OK ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_CIPHERS_S_C,
	    SSH_CIPHERS) != SSH_OK ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HMAC_C_S,
	    SSH_MACS) != SSH_OK ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HMAC_S_C,
	    SSH_MACS) != SSH_OK ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS,
	    SSH_HOSTKEY_ALGOS) != SSH_OK)
		fatalx("ssh bind options: %s", ssh_get_error(b));
	for (i = 0; i < hk->n; i++) {
		/* The bind takes the key; this process has no other use. */
		if (ssh_bind_options_set(b, SSH_BIND_OPTIONS_IMPORT_KEY,
		    hk->keys[i]) != SSH_OK)
			fatalx("host key: %s", ssh_get_error(b));
		hk->keys[i] = NULL;
	}
	return (b);
}

__dead void
session_main(int chan, struct ssh_hostkeys *hk, const char *wname)
{
	struct ssh_server_callbacks_struct	 cb;
	ssh_bind				 b;
	long					 write_wait = SESSION_WRITE_WAIT;
	int					 fd = -1;

	sandbox_ssh_session();
	S.wname = wname;
	TAILQ_INIT(&S.chans);
	setproctitle("%s spare session", wname);
	if (imsgbuf_init(&S.ibuf, chan) == -1)
		fatal("imsgbuf_init");
	imsgbuf_allow_fdpass(&S.ibuf);

	/* The session, when the worker has one for us. */
	S.meta = await(IMSG_HANDOFF, 0, &mezite__conn_meta__descriptor, &fd);
	if (fd == -1 || !meta_valid(S.meta))
		fatalx("a handoff without its session");
	S.fd = fd;
	S.started = time_now();
	setproctitle("%s session %llu", wname,
	    (unsigned long long)S.meta->id);
	(void)signal(SIGALRM, grace);
	alarm(SSH_LOGIN_GRACE);

	b = bind_new(hk);
	if ((S.ssh = ssh_new()) == NULL)
		fatalx("ssh_new");
	if (ssh_bind_accept_fd(b, S.ssh, fd) != SSH_OK)
		fatalx("conn %llu: %s", (unsigned long long)S.meta->id,
		    ssh_get_error(b));
	if (ssh_options_set(S.ssh, SSH_OPTIONS_TIMEOUT, &write_wait) != SSH_OK)
		fatalx("ssh_options_set: %s", ssh_get_error(S.ssh));
	memset(&cb, 0, sizeof(cb));
	cb.auth_none_function = auth_none;
	cb.auth_pubkey_function = auth_pubkey;
	ssh_callbacks_init(&cb);
	if (ssh_set_server_callbacks(S.ssh, &cb) != SSH_OK)
		fatalx("ssh_set_server_callbacks");
	ssh_set_auth_methods(S.ssh, SSH_AUTH_METHOD_PUBLICKEY);
	ssh_set_message_callback(S.ssh, on_message, NULL);
	if (ssh_handle_key_exchange(S.ssh) != SSH_OK) {
		log_debug("conn %llu: key exchange: %s",
		    (unsigned long long)S.meta->id, ssh_get_error(S.ssh));
		goto done;
	}
	if ((S.ev = ssh_event_new()) == NULL ||
	    ssh_event_add_session(S.ev, S.ssh) != SSH_OK)
		fatalx("ssh_event");

	while (!S.authed && S.tries < SSH_AUTH_TRIES)
		if (ssh_event_dopoll(S.ev, -1) == SSH_ERROR ||
		    !ssh_is_connected(S.ssh))
			break;
	if (!S.authed) {
		if (S.tries > 0)
			audit("ssh.login", 0, "%u credentials refused",
			    S.tries);
		if (ssh_is_connected(S.ssh))
			ssh_disconnect(S.ssh);
		goto done;
	}
	alarm(0);
	audit("ssh.login", 1, "%s", S.method);
	log_info("conn %llu: %s logged in (%s)",
	    (unsigned long long)S.meta->id, S.user, S.method);
	report();
	serve();
	session_end();
 done:
	if (S.meta->mode == MEZITE__HANDOFF_MODE__KTLS)
		(void)ktls_close_notify(fd);
	if (S.ev != NULL)
		ssh_event_free(S.ev);
	ssh_free(S.ssh);
	ssh_bind_free(b);
	exit(0);
}
