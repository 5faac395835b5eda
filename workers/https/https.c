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
 * seconds at most.
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
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <openssl/evp.h>

#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "mezited.h"
#include "sbuf.h"
#include "util.h"
#include "worker.h"

#define STATUS_TIMEOUT_MS	2000
#define MAX_REQUEST_BODY	(64 * 1024 * 1024)

struct session {
	LIST_ENTRY(session)	 entry;
	Mezite__ConnMeta	*meta;
	h2o_socket_t		*sock;
	int			 ktls_fd;	/* our hold on a kTLS socket */
};

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
static h2o_evloop_t		*loop;
static LIST_HEAD(, session)	 sessions = LIST_HEAD_INITIALIZER(sessions);
static LIST_HEAD(, pending)	 pendings = LIST_HEAD_INITIALIZER(pendings);
static unsigned int		 nsessions;
static struct proc_chan		*dead_chans[2];	/* to free after the loop */
static int			 draining;

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

	/*
	 * h2o moves large request bodies to a file in /tmp, which the
	 * chroot lacks; keep them in memory, up to the body limit.
	 */
	h2o_socket_buffer_mmap_settings.threshold = MAX_REQUEST_BODY * 2;

	h2o_config_init(&config);
	config.server_name = h2o_iovec_init(H2O_STRLIT("mezite"));
	/* Embedded libh2o caches no open files; every GET reopened one. */
	config.filecache.capacity = 32;
	config.max_request_entity_size = MAX_REQUEST_BODY;
	hostconf = h2o_config_register_host(&config,
	    h2o_iovec_init(H2O_STRLIT("default")), 65535);

	/* Our handler answers first and declines what it does not serve. */
	pathconf = h2o_config_register_path(hostconf, "/", 0);
	handler = h2o_create_handler(pathconf, sizeof(*handler));
	handler->on_req = on_req;
	if (wc->root[0] != '\0') {
		if (h2o_file_register(pathconf, wc->root, NULL, NULL, 0) ==
		    NULL)
			fatalx("root %s: cannot serve files", wc->root);
		log_debug("serving files from %s", wc->root);
	}

	h2o_context_init(&ctx, loop, &config);
	accept_ctx.ctx = &ctx;
	accept_ctx.hosts = config.hosts;
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

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn(__func__);
		close(fd);
		mezite__conn_meta__free_unpacked(meta, NULL);
		return;
	}
	s->meta = meta;
	s->ktls_fd = -1;
	if (meta->mode == MEZITE__HANDOFF_MODE__KTLS &&
	    (s->ktls_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("%s: dup", __func__);
		close(fd);
		mezite__conn_meta__free_unpacked(meta, NULL);
		free(s);
		return;
	}
	s->sock = h2o_evloop_socket_create(loop, fd, 0);
	if (addr_from_pb(meta->client, &ss, &sslen) == 0)
		h2o_socket_setpeername(s->sock, (struct sockaddr *)&ss, sslen);
	s->sock->on_close.cb = session_closed;
	s->sock->on_close.data = s;
	LIST_INSERT_HEAD(&sessions, s, entry);
	nsessions++;

	gettimeofday(&now, NULL);
	/* ALPN was settled by the master; h2 starts with the preface. */
	if (strcmp(meta->alpn, "h2") == 0)
		h2o_http2_accept(&accept_ctx, s->sock, now);
	else
		h2o_http1_accept(&accept_ctx, s->sock, now);
}

/*
 * HTTP/1.1 connections close after their current response.  libh2o
 * 2.2.5's HTTP/2 graceful shutdown can cut the last response short, so
 * HTTP/2 connections are left to finish and idle out (10 s).
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

static struct session *
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
		sbuf_puts(&sb, ",\"sans\":[");
		for (i = 0; i < pc->n_sans; i++) {
			if (i > 0)
				sbuf_puts(&sb, ",");
			sbuf_json(&sb, pc->sans[i]);
		}
		sbuf_printf(&sb, "],\"not_before\":%" PRId64
		    ",\"not_after\":%" PRId64 "}", pc->not_before,
		    pc->not_after);
	}
	sbuf_puts(&sb, "}\n");
	respond(req, 200, "application/json", &sb);
	return (0);
}

static int
digest(h2o_req_t *req)
{
	EVP_MD_CTX	*md;
	unsigned char	 sum[EVP_MAX_MD_SIZE];
	unsigned int	 sumlen, i;
	struct sbuf	 sb = { 0 };

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, req->entity.base, req->entity.len) != 1 ||
	    EVP_DigestFinal_ex(md, sum, &sumlen) != 1) {
		EVP_MD_CTX_free(md);
		h2o_send_error_500(req, "Internal Server Error",
		    "digest failed\n", 0);
		return (0);
	}
	EVP_MD_CTX_free(md);
	sbuf_printf(&sb, "{\"bytes\":%zu,\"sha256\":\"", req->entity.len);
	for (i = 0; i < sumlen; i++)
		sbuf_printf(&sb, "%02x", sum[i]);
	sbuf_puts(&sb, "\"}\n");
	respond(req, 200, "application/json", &sb);
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
	struct pending	*p;
	struct sbuf	 sb = { 0 };
	int		 get;

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
		return (digest(req));
	}
	if (path_is(req, "/") || path_is(req, "/api/v1/status")) {
		if (!get)
			goto not_allowed;
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
	    "<th>connections</th></tr>\n"));
	for (i = 0; i < st->n_procs; i++) {
		if (strcmp(st->procs[i]->type, "master") == 0)
			strlcpy(name, "master", sizeof(name));
		else
			(void)snprintf(name, sizeof(name), "%.16s.%u",
			    st->procs[i]->type, st->procs[i]->instance);
		sbuf_add(sb, H2O_STRLIT("<tr><td>"));
		sbuf_html(sb, name);
		sbuf_printf(sb, "</td><td>%d</td><td>%s</td><td>%u</td>"
		    "<td>%u</td></tr>\n", st->procs[i]->pid,
		    fmt_duration(st->now - st->procs[i]->started, up,
		    sizeof(up)), st->procs[i]->restarts,
		    st->procs[i]->connections);
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
