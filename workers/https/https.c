/*
 * The https worker: HTTP/1.1 and HTTP/2 on libh2o for sessions the
 * master has already decrypted.
 *
 *	/			status page (HTML)
 *	/healthz		"ok" while the worker takes sessions
 *	/api/v1/status		the status page's data as JSON
 *	/api/v1/whoami		the caller's session as the master saw it
 *	/api/v1/digest		POST: length and SHA-256 of the request body
 *	anything else		static files under "root", if configured
 *
 * A session handed over with kernel TLS is served on its socket like
 * any other; h2o reads and writes plaintext there.
 * Status comes from the master; a request waits for its reply, for two
 * seconds at most.  Only clients with a verified certificate, or from
 * the networks of "status allow", may see it.
 *
 * Request bodies.  libh2o 2.2.5 has no streaming request body: it calls
 * a handler once the whole body is in memory.  So the read path is ours
 * first, on both protocols, and h2o sees little of the bodies: h2.c
 * looks over what h2o reads of HTTP/2 streams, h1.c reads HTTP/1.1
 * bodies itself, and body.c keeps the accounts of both.
 *
 * A request head longer than HEAD_MAX gets 431.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/evp.h>

#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "mezited.h"
#include "sbuf.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "https.h"

#define STATUS_TIMEOUT_MS	2000
#define SOCKET_RCVBUF		(256 * 1024)	/* kTLS: what one read takes */


enum status_kind {
	STATUS_HTML,
	STATUS_JSON,
};

struct pending {
	LIST_ENTRY(pending)	 entry;
	h2o_req_t		*req;		/* NULL once answered */
	enum status_kind	 kind;
	uint64_t		 deadline;
};


static void	 https_configure(const Mezite__WorkerConfig *);
static void	 https_watch(struct proc_chan *);
static void	 https_unwatch(struct proc_chan *);
static void	 chans_reap(void);
static void	 https_handoff(int, Mezite__ConnMeta *);
static void	 https_status(const Mezite__Status *);
static void	 https_drain(void);
static int	 on_req(h2o_handler_t *, h2o_req_t *);

static const struct worker_cb https_cb = {
	.configure = https_configure,
	.watch = https_watch,
	.unwatch = https_unwatch,
	.handoff = https_handoff,
	.status = https_status,
	.drain = https_drain,
};

static h2o_globalconf_t		 config;
static h2o_context_t		 ctx;
static h2o_accept_ctx_t		 accept_ctx;
h2o_evloop_t			*loop;
struct sessions			 sessions = LIST_HEAD_INITIALIZER(sessions);
static LIST_HEAD(, pending)	 pendings = LIST_HEAD_INITIALIZER(pendings);
static unsigned int		 nsessions;
/* To free after the loop: the supervisor's and every master's. */
static struct proc_chan		*dead_chans[1 + WORKER_MASTERS_MAX];
static int			 draining;

/* Limits, from the configuration. */
uint64_t			 body_limit;
uint64_t			 body_memory;
unsigned int			 max_streams;
static struct status_net	*status_nets;
static size_t			 nstatus_nets;
h2o_timeout_t			 body_timeout;	/* "timeout idle" */

struct session			*reading;	/* in h2o's read callback */

void
https(unsigned int instance, const char *user, const char *root)
{
	struct pending	*p, *tp;

	loop = h2o_evloop_create();
	worker_init(PROC_HTTPS, instance, user, root, &https_cb);

	while (!(draining && nsessions == 0)) {
		(void)h2o_evloop_run(loop, 500);
		(void)worker_terminated();
		chans_reap();
		h1_rewrap();
		if (draining)
			h2_drain_idle();

		/* Answer status requests the master did not. */
		LIST_FOREACH_SAFE(p, &pendings, entry, tp) {
			if (h2o_now(loop) < p->deadline)
				continue;
			LIST_REMOVE(p, entry);
			h2o_send_error_503(p->req, "Service Unavailable",
			    "status unavailable\n", 0);
			p->req = NULL;
		}
	}
	log_debug("drained");
	worker_exit();
}

static void
https_configure(const Mezite__WorkerConfig *wc)
{
	h2o_hostconf_t		*hostconf;
	h2o_pathconf_t		*pathconf;
	h2o_handler_t		*handler;

	h2o_filter_t		*filter;
	size_t			 i;
	uint64_t		 idle_ms;

	body_limit = wc->body_limit;
	body_memory = wc->body_memory;
	max_streams = wc->max_streams;
	if (body_limit == 0 || body_memory == 0 || max_streams == 0 ||
	    max_streams > MAX_STREAMS_LIMIT || wc->idle_timeout == 0)
		fatalx("bad worker configuration");
	if (wc->n_status_allow > 0 && (status_nets = calloc(
	    wc->n_status_allow, sizeof(*status_nets))) == NULL)
		fatal(__func__);
	for (i = 0; i < wc->n_status_allow; i++) {
		if (wc->status_allow[i]->addr.len != 4 &&
		    wc->status_allow[i]->addr.len != 16)
			fatalx("bad status network");
		status_nets[i].family = wc->status_allow[i]->addr.len == 4 ?
		    AF_INET : AF_INET6;
		memcpy(status_nets[i].addr, wc->status_allow[i]->addr.data,
		    wc->status_allow[i]->addr.len);
		status_nets[i].prefix = wc->status_allow[i]->prefix;
	}
	nstatus_nets = wc->n_status_allow;

	/*
	 * h2o moves large buffers to a file in /tmp, which the chroot
	 * lacks; none of ours should grow that large.
	 */
	h2o_socket_buffer_mmap_settings.threshold = SIZE_MAX / 2;

	h2o_config_init(&config);
	config.server_name = h2o_iovec_init(H2O_STRLIT("mezite"));
	/* Embedded libh2o caches no open files; every GET reopened one. */
	config.filecache.capacity = 32;
	/*
	 * We refuse bodies before h2o would (it answers HTTP/2 with
	 * RST_STREAM, not 413); this only bounds what h2o could gather in
	 * one read past our checks.
	 */
	config.max_request_entity_size = body_limit + (16 << 20);
	/* h2o's own idle timers would close sessions after 10 s. */
	idle_ms = (uint64_t)wc->idle_timeout * 1000;
	config.http1.req_timeout = idle_ms;
	config.http2.idle_timeout = idle_ms;
	/* HTTP/2 is chosen by ALPN in the master, never by Upgrade. */
	config.http1.upgrade_to_http2 = 0;
	config.http2.max_concurrent_requests_per_connection = max_streams;
	hostconf = h2o_config_register_host(&config,
	    h2o_iovec_init(H2O_STRLIT("default")), 65535);

	/* Our handler answers first and declines what it does not serve. */
	pathconf = h2o_config_register_path(hostconf, "/", 0);
	handler = h2o_create_handler(pathconf, sizeof(*handler));
	handler->on_req = on_req;
	/* Responses h2o makes before routing use the fallback path. */
	filter = h2o_create_filter(pathconf, sizeof(*filter));
	filter->on_setup_ostream = hpack_filter;
	filter = h2o_create_filter(&hostconf->fallback_path, sizeof(*filter));
	filter->on_setup_ostream = hpack_filter;
	if (wc->root[0] != '\0') {
		if (h2o_file_register(pathconf, wc->root, NULL, NULL, 0) ==
		    NULL)
			fatalx("root %s: cannot serve files", wc->root);
		log_debug("serving files from %s", wc->root);
	}

	h2o_context_init(&ctx, loop, &config);
	accept_ctx.ctx = &ctx;
	accept_ctx.hosts = config.hosts;
	h2o_timeout_init(loop, &body_timeout, idle_ms);
	sandbox_https(wc->root);
}

/*
 * The runtime's channels on h2o's loop.  h2o only says when one is
 * readable (DONT_READ: the runtime calls recvmsg() itself, for the
 * descriptors) or writable; a channel found dead is freed after the
 * loop's turn, never from inside its own dispatch.
 */
static void
chan_readable(h2o_socket_t *sock, const char *err)
{
	proc_chan_io(sock->data, 1, 0);
}

static void
chan_writable(h2o_socket_t *sock, const char *err)
{
	struct proc_chan	*ch = sock->data;

	sock->_cb.write = NULL;
	proc_chan_io(ch, 0, 1);
}

static void
chan_arm(struct proc_chan *ch)
{
	h2o_socket_t	*sock = ch->arg;
	size_t		 i;

	if (ch->dead) {
		for (i = 0; i < nitems(dead_chans); i++)
			if (dead_chans[i] == ch || dead_chans[i] == NULL) {
				dead_chans[i] = ch;
				return;
			}
		fatalx("%s: too many channels", __func__);
	}
	if (proc_chan_wants_write(ch) && sock->_cb.write == NULL)
		h2o_socket_notify_write(sock, chan_writable);
}

static void
chans_reap(void)
{
	struct proc_chan	*ch;
	size_t			 i;

	for (i = 0; i < nitems(dead_chans); i++) {
		if ((ch = dead_chans[i]) == NULL)
			continue;
		dead_chans[i] = NULL;
		ch->closed(ch);
	}
}

static void
https_watch(struct proc_chan *ch)
{
	h2o_socket_t	*sock;

	sock = h2o_evloop_socket_create(loop, ch->ibuf.fd,
	    H2O_SOCKET_FLAG_DONT_READ);
	sock->data = ch;
	ch->arg = sock;
	ch->arm = chan_arm;
	h2o_socket_read_start(sock, chan_readable);
	chan_arm(ch);
}

/* h2o closes the descriptor with its socket. */
static void
https_unwatch(struct proc_chan *ch)
{
	h2o_socket_t	*sock = ch->arg;

	h2o_socket_read_stop(sock);
	h2o_socket_close(sock);
	ch->ibuf.fd = -1;
}

static void
session_closed(void *arg)
{
	struct session	*s = arg;

	/*
	 * h2o has closed its descriptor of a kernel TLS session: a read
	 * met a record that is not data (the client's close_notify, or a
	 * KeyUpdate this kernel cannot follow), or the session ended here.
	 * Either way send our close_notify before the socket goes.
	 */
	if (s->ktls_fd != -1) {
		(void)ktls_close_notify(s->ktls_fd);
		close(s->ktls_fd);
		worker_conn_done(s->meta->id);
	}
	if (reading == s)
		reading = NULL;
	h2o_timeout_unlink(&s->h1_timer);
	LIST_REMOVE(s, entry);
	mezite__conn_meta__free_unpacked(s->meta, NULL);
	free(s);
	nsessions--;
}

static void
https_handoff(int fd, Mezite__ConnMeta *meta)
{
	struct sockaddr_storage	 ss;
	struct session		*s;
	struct timeval		 now;
	socklen_t		 sslen;
	int			 on;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn(__func__);
		close(fd);
		mezite__conn_meta__free_unpacked(meta, NULL);
		return;
	}
	s->meta = meta;
	s->ktls_fd = -1;
	LIST_INIT(&s->bodies);
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS) {
		if ((s->ktls_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
			log_warn("%s: dup", __func__);
			close(fd);
			mezite__conn_meta__free_unpacked(meta, NULL);
			free(s);
			return;
		}
		/*
		 * h2o reads all the socket holds at once: keep that small.
		 * A relayed session's socket pair is bounded by the master.
		 */
		on = SOCKET_RCVBUF;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &on,
		    sizeof(on)) == -1)
			log_warn("%s: SO_RCVBUF", __func__);
	}
	s->sock = h2o_evloop_socket_create(loop, fd, 0);
	if (addr_from_pb(meta->client, &ss, &sslen) == 0)
		h2o_socket_setpeername(s->sock, (struct sockaddr *)&ss, sslen);
	s->sock->on_close.cb = session_closed;
	s->sock->on_close.data = s;
	LIST_INSERT_HEAD(&sessions, s, entry);
	nsessions++;

	gettimeofday(&now, NULL);
	/*
	 * ALPN was settled by the master; h2 starts with the preface.
	 * Either way h2o's read callback is wrapped in ours.
	 */
	if (strcmp(meta->alpn, "h2") == 0)
		h2_accept(s, &accept_ctx, now);
	else
		h1_accept(s, &accept_ctx, now);
}

/*
 * HTTP/1.1 connections close after their current response.  libh2o
 * 2.2.5's HTTP/2 graceful shutdown can cut the last response short, so
 * HTTP/2 connections are left to finish, and each is sent GOAWAY and
 * closed once it has no stream open (h2_drain_idle()), rather than left
 * to idle out after timeout idle.
 */
static void
https_drain(void)
{
	draining = 1;
	if (ctx.loop == NULL)
		return;
	ctx.shutdown_requested = 1;
	if (config.http1.callbacks.request_shutdown != NULL)
		config.http1.callbacks.request_shutdown(&ctx);
}

struct session *
req_session(h2o_req_t *req)
{
	h2o_socket_t	*sock;

	if (req->conn->callbacks->get_socket == NULL ||
	    (sock = req->conn->callbacks->get_socket(req->conn)) == NULL ||
	    sock->on_close.cb != session_closed)
		return (NULL);
	return (sock->on_close.data);
}

static void
respond(h2o_req_t *req, int status, const char *type, struct sbuf *sb)
{
	if (sb->failed) {
		sbuf_free(sb);
		h2o_send_error_500(req, "Internal Server Error",
		    "out of memory\n", 0);
		return;
	}
	req->res.status = status;
	req->res.reason = status == 200 ? "OK" : "Error";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
	    NULL, type, strlen(type));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL,
	    NULL, H2O_STRLIT("no-store"));
	h2o_send_inline(req, sb->buf ? sb->buf : "", sb->len);
	sbuf_free(sb);
}

static int
whoami(h2o_req_t *req)
{
	struct session		*s;
	Mezite__ConnMeta	*m;
	Mezite__PeerCert	*pc;
	struct sbuf		 sb = { 0 };
	size_t			 i;

	if ((s = req_session(req)) == NULL)
		return (-1);
	m = s->meta;
	sbuf_printf(&sb, "{\"id\":%" PRIu64 ",\"client\":", m->id);
	json_address(&sb, m->client);
	sbuf_puts(&sb, ",\"local\":");
	json_address(&sb, m->local);
	sbuf_puts(&sb, ",\"alpn\":");
	sbuf_json(&sb, m->alpn);
	sbuf_puts(&sb, ",\"sni\":");
	sbuf_json(&sb, m->sni);
	sbuf_puts(&sb, ",\"tls\":{\"version\":");
	sbuf_json(&sb, m->tls_version);
	sbuf_puts(&sb, ",\"cipher\":");
	sbuf_json(&sb, m->tls_cipher);
	sbuf_printf(&sb, "},\"mode\":\"%s\",\"worker\":",
	    m->mode == MEZITE__HANDOFF_MODE__KTLS ? "ktls" : "relay");
	sbuf_json(&sb, m->worker);
	sbuf_printf(&sb, ",\"worker_pid\":%d,\"certificate\":", (int)getpid());
	if ((pc = m->cert) == NULL)
		sbuf_puts(&sb, "null");
	else {
		sbuf_puts(&sb, "{\"subject\":");
		sbuf_json(&sb, pc->subject);
		sbuf_puts(&sb, ",\"issuer\":");
		sbuf_json(&sb, pc->issuer);
		sbuf_puts(&sb, ",\"fingerprint\":");
		sbuf_json(&sb, pc->fingerprint);
		sbuf_puts(&sb, ",\"key\":");
		sbuf_json(&sb, pc->key);
		sbuf_puts(&sb, ",\"sans\":[");
		for (i = 0; i < pc->n_sans; i++) {
			if (i > 0)
				sbuf_puts(&sb, ",");
			sbuf_json(&sb, pc->sans[i]);
		}
		sbuf_printf(&sb, "],\"not_before\":%" PRId64
		    ",\"not_after\":%" PRId64, pc->not_before,
		    pc->not_after);
		/* Whom the auth worker's certificate names: "" otherwise. */
		sbuf_puts(&sb, ",\"kind\":");
		sbuf_json(&sb, pc->kind);
		sbuf_puts(&sb, ",\"name\":");
		sbuf_json(&sb, pc->name);
		sbuf_puts(&sb, ",\"serial\":");
		sbuf_json(&sb, pc->serial);
		sbuf_puts(&sb, "}");
	}
	sbuf_puts(&sb, "}\n");
	respond(req, 200, "application/json", &sb);
	return (0);
}

void
digest_respond(h2o_req_t *req, struct body *b)
{
	unsigned char	 sum[EVP_MAX_MD_SIZE];
	unsigned int	 sumlen, i;
	struct sbuf	 sb = { 0 };

	if (b->status == 0 && EVP_DigestFinal_ex(b->md, sum, &sumlen) != 1)
		b->status = 500;
	if (b->status != 0) {
		body_error(req, b->status);
		return;
	}
	sbuf_printf(&sb, "{\"bytes\":%" PRIu64 ",\"sha256\":\"", b->seen);
	for (i = 0; i < sumlen; i++)
		sbuf_printf(&sb, "%02x", sum[i]);
	sbuf_puts(&sb, "\"}\n");
	respond(req, 200, "application/json", &sb);
}

/* What h2o gathered of the body, after all we took of it before. */
static int
digest(h2o_req_t *req, struct session *s)
{
	struct body	*b;

	if ((b = body_get(s, req)) == NULL) {
		h2o_send_error_500(req, "Internal Server Error",
		    "out of memory\n", 0);
		return (0);
	}
	if (req->entity.len > 0)
		(void)body_data(b, req->entity.base, req->entity.len);
	digest_respond(req, b);
	return (0);
}

/*
 * Whether the client may see the status: a certificate of the operators'
 * CA (tls client ca), not one the auth worker issued to a user or node;
 * or an allowed network.
 */
static int
status_allowed(struct session *s)
{
	const Mezite__Address	*a;
	const struct status_net	*n;
	size_t			 i, len, bytes;
	unsigned int		 bits;

	if (s->meta->cert != NULL && s->meta->cert->kind[0] == '\0')
		return (1);
	if ((a = s->meta->client) == NULL)
		return (0);
	len = a->family == AF_INET ? 4 : a->family == AF_INET6 ? 16 : 0;
	if (len == 0 || a->addr.len != len)
		return (0);
	for (i = 0; i < nstatus_nets; i++) {
		n = &status_nets[i];
		if (n->family != (int)a->family)
			continue;
		bytes = n->prefix / 8;
		bits = n->prefix % 8;
		if (memcmp(n->addr, a->addr.data, bytes) != 0)
			continue;
		if (bits != 0 && ((n->addr[bytes] ^ a->addr.data[bytes]) &
		    (0xff << (8 - bits))) != 0)
			continue;
		return (1);
	}
	return (0);
}

static void
pending_dispose(void *arg)
{
	struct pending	*p = arg;

	if (p->req != NULL) {
		LIST_REMOVE(p, entry);
		p->req = NULL;
	}
}

static int
path_is(h2o_req_t *req, const char *path)
{
	return (h2o_memis(req->path_normalized.base, req->path_normalized.len,
	    path, strlen(path)));
}

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct session	*s;
	struct pending	*p;
	struct sbuf	 sb = { 0 };
	int		 get;

	if ((s = req_session(req)) == NULL) {
		h2o_send_error_500(req, "Internal Server Error",
		    "no session\n", 0);
		return (0);
	}
	/* The request's body first: refused, read, or left to h2o. */
	if (s->h2 == NULL ? h1_request(s, req) == 0 :
	    h2_request(s, req) == 0)
		return (0);

	get = h2o_memis(req->method.base, req->method.len,
	    H2O_STRLIT("GET")) || h2o_memis(req->method.base,
	    req->method.len, H2O_STRLIT("HEAD"));

	if (path_is(req, "/healthz")) {
		if (!get)
			goto not_allowed;
		if (draining) {
			h2o_send_error_503(req, "Service Unavailable",
			    "draining\n", 0);
			return (0);
		}
		sbuf_puts(&sb, "ok\n");
		respond(req, 200, "text/plain", &sb);
		return (0);
	}
	if (path_is(req, "/api/v1/whoami")) {
		if (!get)
			goto not_allowed;
		if (whoami(req) == -1)
			h2o_send_error_500(req, "Internal Server Error",
			    "no session\n", 0);
		return (0);
	}
	if (path_is(req, "/api/v1/digest")) {
		if (!h2o_memis(req->method.base, req->method.len,
		    H2O_STRLIT("POST")))
			goto not_allowed;
		return (digest(req, s));
	}
	if (path_is(req, "/") || path_is(req, "/api/v1/status")) {
		if (!get)
			goto not_allowed;
		if (!status_allowed(s)) {
			h2o_send_error_403(req, "Forbidden", "forbidden\n", 0);
			return (0);
		}
		p = h2o_mem_alloc_shared(&req->pool, sizeof(*p),
		    pending_dispose);
		p->req = req;
		p->kind = path_is(req, "/") ? STATUS_HTML : STATUS_JSON;
		p->deadline = h2o_now(loop) + STATUS_TIMEOUT_MS;
		LIST_INSERT_HEAD(&pendings, p, entry);
		if (worker_status_request() == -1) {
			LIST_REMOVE(p, entry);
			p->req = NULL;
			h2o_send_error_503(req, "Service Unavailable",
			    "status unavailable\n", 0);
		}
		return (0);
	}
	if (req->path_normalized.len >= 5 &&
	    memcmp(req->path_normalized.base, "/api/", 5) == 0) {
		h2o_send_error_404(req, "Not Found", "not found\n", 0);
		return (0);
	}
	/* Static files, if a root is configured; else h2o answers 404. */
	return (-1);

 not_allowed:
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
	    H2O_STRLIT("GET, HEAD"));
	h2o_send_error_generic(req, 405, "Method Not Allowed",
	    "method not allowed\n", 0);
	return (0);
}

static void
status_html(struct sbuf *sb, const Mezite__Status *st)
{
	char	 up[32], bin[32], bout[32], name[32];
	size_t	 i;
	int	 masters;

	sbuf_add(sb, H2O_STRLIT("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<title>Mezite status</title>\n"
	    "<style>\nbody{font-family:sans-serif;margin:2em;color:#222}\n"
	    "table{border-collapse:collapse;margin-bottom:1.5em}\n"
	    "th,td{border:1px solid #ccc;padding:.3em .8em;"
	    "text-align:left}\nth{background:#f2f2f2}\n</style>\n"
	    "</head>\n<body>\n<h1>Mezite</h1>\n"));
	sbuf_add(sb, H2O_STRLIT("<p>Version "));
	sbuf_html(sb, st->version);
	sbuf_printf(sb, ", up %s%s.</p>\n",
	    fmt_duration(st->now - st->started, up, sizeof(up)),
	    st->draining ? ", draining" : "");

	sbuf_printf(sb, "<h2>Connections</h2>\n<table>\n"
	    "<tr><th>active</th><td>%u</td></tr>\n"
	    "<tr><th>in handshake</th><td>%u</td></tr>\n"
	    "<tr><th>total</th><td>%" PRIu64 "</td></tr>\n"
	    "<tr><th>failed handshakes</th><td>%" PRIu64 "</td></tr>\n"
	    "<tr><th>no worker running</th><td>%" PRIu64 "</td></tr>\n"
	    "<tr><th>relayed in / out</th><td>%s / %s</td></tr>\n",
	    st->connections_active, st->handshakes_active,
	    st->connections_total, st->handshake_failures,
	    st->route_failures, fmt_bytes(st->bytes_in, bin, sizeof(bin)),
	    fmt_bytes(st->bytes_out, bout, sizeof(bout)));
	sbuf_printf(sb, "<tr><th>handed over in the kernel / relayed</th>"
	    "<td>%" PRIu64 " / %" PRIu64 " (kTLS %s)</td></tr>\n</table>\n",
	    st->ktls_total, st->relay_total, st->ktls ? "on" : "off");

	sbuf_add(sb, H2O_STRLIT("<h2>Connections by route</h2>\n<table>\n"
	    "<tr><th>worker</th><th>active</th><th>total</th></tr>\n"));
	for (i = 0; i < st->n_routes; i++) {
		sbuf_add(sb, H2O_STRLIT("<tr><td>"));
		sbuf_html(sb, st->routes[i]->worker);
		sbuf_printf(sb, "</td><td>%u</td><td>%" PRIu64
		    "</td></tr>\n", st->routes[i]->active,
		    st->routes[i]->total);
	}
	sbuf_add(sb, H2O_STRLIT("</table>\n"));

	sbuf_add(sb, H2O_STRLIT("<h2>Processes</h2>\n<table>\n<tr><th>process"
	    "</th><th>pid</th><th>up</th><th>restarts</th>"
	    "<th>connections</th><th>total</th></tr>\n"));
	masters = procs_masters(st->procs, st->n_procs);
	for (i = 0; i < st->n_procs; i++) {
		proc_label(st->procs[i], masters, name, sizeof(name));
		sbuf_add(sb, H2O_STRLIT("<tr><td>"));
		sbuf_html(sb, name);
		sbuf_printf(sb, "</td><td>%d</td><td>%s</td><td>%u</td>"
		    "<td>%u</td><td>%" PRIu64 "</td></tr>\n", st->procs[i]->pid,
		    fmt_duration(st->now - st->procs[i]->started, up,
		    sizeof(up)), st->procs[i]->restarts,
		    st->procs[i]->connections, st->procs[i]->total);
	}
	sbuf_add(sb, H2O_STRLIT("</table>\n</body>\n</html>\n"));
}

/* The master's answer: it serves every request waiting for one. */
static void
https_status(const Mezite__Status *st)
{
	struct pending	*p;
	struct sbuf	 sb;
	h2o_req_t	*req;

	while ((p = LIST_FIRST(&pendings)) != NULL) {
		LIST_REMOVE(p, entry);
		req = p->req;
		p->req = NULL;
		memset(&sb, 0, sizeof(sb));
		if (p->kind == STATUS_JSON) {
			json_status(&sb, st);
			sbuf_puts(&sb, "\n");
			respond(req, 200, "application/json", &sb);
		} else {
			status_html(&sb, st);
			respond(req, 200, "text/html; charset=utf-8", &sb);
		}
	}
}
