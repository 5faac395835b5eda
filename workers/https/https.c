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
 * first, on both protocols, and h2o sees little of the bodies:
 *
 *  - HTTP/2: after h2o has read from the socket, each stream still
 *    receiving its body is looked at (through h2o's own structures, from
 *    <h2o/http2_internal.h>).  A body for /api/v1/digest is hashed and
 *    taken out of h2o's buffer; any other is left there, up to
 *    SMALL_BODY_MAX and within the worker's "body memory".  A body past
 *    its limit gets a 413 response and RST_STREAM (NO_ERROR) at once.
 *  - HTTP/1.1: before h2o parses a request head, the head is found and
 *    its Content-Length or Transfer-Encoding rewritten in place to a
 *    Content-Length of zeros, so that h2o hands the request over with
 *    no body.  The handler then reads the body from the socket itself:
 *    a digest's is hashed as it comes; another request with a body is
 *    answered and the connection closed after it.
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
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <openssl/evp.h>

#include "ktls.h"
#include "log.h"
#include "meta.h"
#include "mezited.h"
#include "sbuf.h"
#include "util.h"
#include "worker.h"

#define STATUS_TIMEOUT_MS	2000
#define HEAD_MAX		(64 * 1024)	/* a request's header section */
#define SMALL_BODY_MAX		4096	/* a body for anything but digest */
#define SOCKET_RCVBUF		(256 * 1024)	/* kTLS: what one read takes */
#define H2_STREAMS_SEEN		256	/* streams looked at per read */
#define DISCARD_MAX		(64 * 1024 * 1024)	/* after a refusal */
#define H2_PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

enum body_kind {
	BODY_NONE,		/* the resource takes no body */
	BODY_SMALL,		/* kept whole, up to SMALL_BODY_MAX */
	BODY_DIGEST,		/* hashed as it comes */
};

enum chunk_state {
	CHUNK_SIZE,
	CHUNK_EXT,
	CHUNK_DATA,
	CHUNK_DATA_END,
	CHUNK_TRAILER_START,
	CHUNK_TRAILER,
	CHUNK_DONE,
};

struct session;

/* A request body being received; lives in the request's pool. */
struct body {
	LIST_ENTRY(body)	 entry;
	struct session		*s;
	h2o_req_t		*req;
	enum body_kind		 kind;
	EVP_MD_CTX		*md;		/* BODY_DIGEST */
	uint64_t		 seen;		/* bytes of body so far */
	uint64_t		 discarded;	/* since it was refused */
	size_t			 held;		/* counted in body_held */
	int			 status;	/* non-zero: refused so */
	int			 abort;		/* too much: answer, close */
	/* HTTP/1.1: read by us */
	int			 chunked;
	uint64_t		 left;		/* of the chunk, or the body */
	enum chunk_state	 chunk;
	int			 digits;
	int			 done;
};

struct session {
	LIST_ENTRY(session)	 entry;
	Mezite__ConnMeta	*meta;
	h2o_socket_t		*sock;
	int			 ktls_fd;	/* our hold on a kTLS socket */
	h2o_socket_cb		 h2o_read;	/* h2o's read callback */
	LIST_HEAD(, body)	 bodies;
	/* HTTP/2 */
	h2o_http2_conn_t	*h2;
	ssize_t			(*h2_expect0)(h2o_http2_conn_t *,
				    const uint8_t *, size_t, const char **);
	int			 h2_settings;	/* ours sent */
	size_t			 hpack_size;	/* table size the peer knows */
	size_t			 h2_block;	/* header block so far */
	uint32_t		 h2_block_id;	/* of this stream */
	int			 h2_dead;	/* 431 sent: input dropped */
	/* HTTP/1.1: the head of the request h2o is to parse */
	size_t			 h1_scan;	/* no head end before this */
	size_t			 h1_fed;	/* input h2o last parsed */
	size_t			 h1_head;	/* the head's length; 0: none */
	int			 h1_chunked;	/* the head announced a body */
	uint64_t		 h1_length;
	int			 h1_expect;	/* 100-continue, kept from h2o */
	int			 h1_writing;	/* our 100 Continue is going */
	int			 h1_ended;	/* answer once it is out */
	int			 h1_reject;	/* answer the request so */
	struct body		*h1_reading;	/* the body we are reading */
	h2o_timeout_entry_t	 h1_timer;
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
static void	 h1_read(h2o_socket_t *, const char *);
static void	 h1_body_read(h2o_socket_t *, const char *);
static void	 h1_body_timeout(h2o_timeout_entry_t *);
static void	 h1_rewrap(void);
static void	 h1_next(struct session *);
static void	 h2_drain_idle(void);
static void	 h2_read(h2o_socket_t *, const char *);
static void	 hpack_filter(h2o_filter_t *, h2o_req_t *, h2o_ostream_t **);
static void	 digest_respond(h2o_req_t *, struct body *);

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

/* Limits, from the configuration. */
static uint64_t			 body_limit;
static uint64_t			 body_memory;
static unsigned int		 max_streams;
static struct status_net	*status_nets;
static size_t			 nstatus_nets;
static h2o_timeout_t		 body_timeout;	/* "timeout idle" */

static size_t			 body_held;	/* bytes, all bodies */
static struct session		*reading;	/* in h2o's read callback */

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
	s->hpack_size = H2O_HTTP2_SETTINGS_HOST.header_table_size;
	s->h1_timer.cb = h1_body_timeout;
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
	if (strcmp(meta->alpn, "h2") == 0) {
		h2o_http2_accept(&accept_ctx, s->sock, now);
		s->h2 = s->sock->data;
		s->h2_expect0 = s->h2->_read_expect;
		s->h2o_read = s->sock->_cb.read;
		s->sock->_cb.read = h2_read;
	} else {
		h2o_http1_accept(&accept_ctx, s->sock, now);
		s->h2o_read = s->sock->_cb.read;
		s->sock->_cb.read = h1_read;
	}
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

/*
 * Bodies.
 */

/* The normalized path of a request h2o has not routed yet. */
static h2o_iovec_t
raw_path(h2o_req_t *req)
{
	const char	*q;
	size_t		 len, query_at, *norm;

	len = req->input.path.len;
	if ((q = memchr(req->input.path.base, '?', len)) != NULL)
		len = q - req->input.path.base;
	norm = NULL;
	return (h2o_url_normalize_path(&req->pool, req->input.path.base, len,
	    &query_at, &norm));
}

static enum body_kind
body_kind(h2o_req_t *req, h2o_iovec_t path)
{
	if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/v1/digest")))
		return (h2o_memis(req->input.method.base,
		    req->input.method.len, H2O_STRLIT("POST")) ?
		    BODY_DIGEST : BODY_NONE);
	if (h2o_memis(path.base, path.len, H2O_STRLIT("/")) ||
	    h2o_memis(path.base, path.len, H2O_STRLIT("/healthz")) ||
	    (path.len >= 5 && memcmp(path.base, "/api/", 5) == 0))
		return (BODY_NONE);
	return (BODY_SMALL);
}

/* The most a body may be. */
static uint64_t
body_cap(const struct body *b)
{
	switch (b->kind) {
	case BODY_DIGEST:
		return (body_limit);
	case BODY_SMALL:
		return (SMALL_BODY_MAX < body_limit ? SMALL_BODY_MAX :
		    body_limit);
	default:
		return (0);
	}
}

static void
body_release(struct body *b)
{
	body_held -= b->held;
	b->held = 0;
}

static void
body_dispose(void *arg)
{
	struct body	*b = arg;

	body_release(b);
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
	LIST_REMOVE(b, entry);
	if (b->s->h1_reading == b)
		b->s->h1_reading = NULL;
}

static struct body *
body_find(struct session *s, h2o_req_t *req)
{
	struct body	*b;

	LIST_FOREACH(b, &s->bodies, entry)
		if (b->req == req)
			return (b);
	return (NULL);
}

/* The body of req, new if need be; NULL if out of memory. */
static struct body *
body_get(struct session *s, h2o_req_t *req)
{
	struct body	*b;

	if ((b = body_find(s, req)) != NULL)
		return (b);
	b = h2o_mem_alloc_shared(&req->pool, sizeof(*b), body_dispose);
	memset(b, 0, sizeof(*b));
	b->s = s;
	b->req = req;
	b->kind = body_kind(req, raw_path(req));
	if (b->kind == BODY_DIGEST) {
		if ((b->md = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
			log_warnx("%s: digest", __func__);
			b->status = 500;
		}
	}
	LIST_INSERT_HEAD(&s->bodies, b, entry);
	return (b);
}

/*
 * Body bytes: hashed for a digest, counted for the others.  Past the
 * limit the body is refused, and what comes after thrown away; -1 once
 * that is more than DISCARD_MAX.
 */
static int
body_data(struct body *b, const void *p, size_t len)
{
	if (b->status == 0 && b->seen + len > body_cap(b))
		b->status = 413;
	if (b->status != 0) {
		b->discarded += len;
		if (b->discarded > DISCARD_MAX)
			b->abort = 1;
		return (b->abort ? -1 : 0);
	}
	b->seen += len;
	if (b->md != NULL && EVP_DigestUpdate(b->md, p, len) != 1)
		b->status = 500;
	return (0);
}

/*
 * HTTP/2.
 */

static void
h2_frame(h2o_http2_conn_t *conn, uint8_t type, uint8_t flags, uint32_t id,
    const void *payload, size_t len)
{
	h2o_iovec_t	 buf;

	buf = h2o_buffer_reserve(&conn->_write.buf,
	    H2O_HTTP2_FRAME_HEADER_SIZE + len);
	h2o_http2_encode_frame_header((uint8_t *)buf.base, len, type, flags,
	    id);
	if (len > 0)
		memcpy(buf.base + H2O_HTTP2_FRAME_HEADER_SIZE, payload, len);
	conn->_write.buf->size += H2O_HTTP2_FRAME_HEADER_SIZE + len;
}

/* An HPACK integer with an n-bit prefix, the flags in first. */
static size_t
hpack_int(uint8_t *dst, uint8_t first, int n, uint32_t v)
{
	uint32_t	 max = (1U << n) - 1;
	size_t		 len = 0;

	if (v < max) {
		dst[len++] = first | v;
		return (len);
	}
	dst[len++] = first | max;
	for (v -= max; v >= 128; v >>= 7)
		dst[len++] = 0x80 | (v & 0x7f);
	dst[len++] = v;
	return (len);
}

/*
 * The peer lowered SETTINGS_HEADER_TABLE_SIZE: the next header block we
 * send must start with a dynamic table size update (RFC 7541, 4.2),
 * which libh2o 2.2.5 never sends, and h2o must index no more than the
 * new size.  Possible only while h2o's table is empty, as it is before
 * the first response.  Returns the update's length in dst, 0 if none.
 */
static size_t
hpack_update(struct session *s, h2o_http2_conn_t *conn, uint8_t *dst)
{
	h2o_hpack_header_table_t	*t = &conn->_output_header_table;
	uint32_t			 want;

	want = conn->peer_settings.header_table_size;
	if (want >= s->hpack_size || t->num_entries != 0)
		return (0);
	s->hpack_size = want;
	t->hpack_capacity = want;
	return (hpack_int(dst, 0x20, 5, want));
}

/*
 * Answer a stream still receiving its body, then reset it: a response
 * with no body, made here as h2o has no request to answer yet, and
 * RST_STREAM with NO_ERROR so that the client stops sending (RFC 9113,
 * 8.1).
 */
static void
h2_refuse(struct session *s, h2o_http2_stream_t *stream, int status)
{
	h2o_http2_conn_t	*conn = s->h2;
	uint8_t			 block[16], rst[4] = { 0, 0, 0, 0 };
	size_t			 len;
	int			 n;

	len = hpack_update(s, conn, block);
	/* :status, literal without indexing, static name 8 */
	block[len++] = 0x08;
	block[len++] = 3;
	n = snprintf((char *)block + len, sizeof(block) - len, "%03d",
	    status);
	if (n != 3)
		fatalx("%s: status %d", __func__, status);
	len += 3;
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_HEADERS,
	    H2O_HTTP2_FRAME_FLAG_END_HEADERS | H2O_HTTP2_FRAME_FLAG_END_STREAM,
	    stream->stream_id, block, len);
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_RST_STREAM, 0, stream->stream_id,
	    rst, sizeof(rst));
	h2o_http2_conn_request_write(conn);
	h2o_http2_stream_reset(conn, stream);
}

/* Streams refused with REFUSED_STREAM, past "max streams". */
static void
h2_refuse_stream(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream)
{
	uint8_t	 rst[4] = { 0, 0, 0, 7 };	/* REFUSED_STREAM */

	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_RST_STREAM, 0, stream->stream_id,
	    rst, sizeof(rst));
	h2o_http2_conn_request_write(conn);
	h2o_http2_stream_reset(conn, stream);
}

/*
 * The streams of a connection that are receiving their body, from
 * h2o's priority tree, which holds every stream it knows.
 */
static size_t
h2_receiving(h2o_http2_conn_t *conn, h2o_http2_stream_t **out, size_t max)
{
	h2o_http2_scheduler_node_t	*node = &conn->scheduler;
	h2o_http2_scheduler_openref_t	*ref;
	h2o_http2_stream_t		*stream;
	h2o_linklist_t			*l = node->_all_refs.next;
	size_t				 n = 0;

	for (;;) {
		if (l == &node->_all_refs) {
			if (node == &conn->scheduler)
				break;
			ref = H2O_STRUCT_FROM_MEMBER(
			    h2o_http2_scheduler_openref_t, node, node);
			node = node->_parent;
			l = ref->_all_link.next;
			continue;
		}
		ref = H2O_STRUCT_FROM_MEMBER(h2o_http2_scheduler_openref_t,
		    _all_link, l);
		stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t,
		    _refs.scheduler, ref);
		if (stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY &&
		    stream->_req_body != NULL && n < max)
			out[n++] = stream;
		node = &ref->node;
		l = node->_all_refs.next;
	}
	return (n);
}

/* Take what h2o has gathered of a stream's body. */
static void
h2_body(struct session *s, h2o_http2_stream_t *stream)
{
	struct body	*b;
	size_t		 avail, cl;

	if ((b = body_get(s, &stream->req)) == NULL)
		return;
	avail = stream->_req_body->size;
	cl = stream->_expected_content_length;
	if (b->status == 0 && cl != SIZE_MAX && b->seen + cl > body_cap(b))
		b->status = 413;
	if (b->status == 0 && b->kind != BODY_DIGEST) {
		/* Kept by h2o for the handler, if there is room. */
		if (avail > body_cap(b))
			b->status = 413;
		else if (body_held - b->held + avail > body_memory) {
			log_debug("body memory full: %zu bytes held",
			    body_held);
			b->status = 413;
		} else {
			body_held = body_held - b->held + avail;
			b->held = avail;
			return;
		}
		body_release(b);
	}
	/*
	 * Hashed, or thrown away once refused: the refusal is answered
	 * when the body ends, as most clients cannot take an answer while
	 * they send.  One that goes on too long is answered and reset now.
	 */
	if (avail > 0) {
		(void)body_data(b, stream->_req_body->bytes, avail);
		/* What h2o checks against Content-Length goes with it. */
		h2o_buffer_consume(&stream->_req_body, avail);
		if (cl != SIZE_MAX)
			stream->_expected_content_length -= avail;
	}
	if (b->abort)
		h2_refuse(s, stream, b->status);
}

static void
h2_after_read(struct session *s)
{
	h2o_http2_conn_t	*conn = s->h2;
	h2o_http2_stream_t	*streams[H2_STREAMS_SEEN];
	uint8_t			 settings[6];
	size_t			 i, n, last;

	if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
		return;
	/*
	 * h2o's SETTINGS allow 100 streams, and it sends them once it has
	 * the preface; ours, after them, lower that to "max streams".
	 */
	if (!s->h2_settings && conn->_read_expect != s->h2_expect0) {
		s->h2_settings = 1;
		settings[0] = 0;
		settings[1] = 3;	/* SETTINGS_MAX_CONCURRENT_STREAMS */
		settings[2] = max_streams >> 24;
		settings[3] = max_streams >> 16;
		settings[4] = max_streams >> 8;
		settings[5] = max_streams;
		h2_frame(conn, H2O_HTTP2_FRAME_TYPE_SETTINGS, 0, 0, settings,
		    sizeof(settings));
		h2o_http2_conn_request_write(conn);
	}
	n = h2_receiving(conn, streams, H2_STREAMS_SEEN);
	/*
	 * A client may open more before it has our SETTINGS: refuse the
	 * newest, which it has sent the least of.
	 */
	while (n > 0 && conn->num_streams.pull.open > max_streams) {
		for (i = 1, last = 0; i < n; i++)
			if (streams[i]->stream_id > streams[last]->stream_id)
				last = i;
		h2_refuse_stream(conn, streams[last]);
		streams[last] = streams[--n];
	}
	for (i = 0; i < n; i++)
		h2_body(s, streams[i]);
}

/*
 * Before h2o parses the frames read: a header block (HEADERS and its
 * CONTINUATIONs) that grows past HEAD_MAX is cut where it does.  h2o
 * would take 408 KiB, then refuse the stream and fail the connection
 * on the next CONTINUATION.  The header compression state cannot be
 * kept without decoding the block, so the stream gets 431 and the
 * connection GOAWAY (RFC 9113, 10.5.1); h2o closes it once they are
 * sent.  Returns 1 if the block was cut.
 */
static int
h2_headers_check(struct session *s)
{
	h2o_buffer_t	*in = s->sock->input;
	const uint8_t	*f;
	size_t		 off = 0, len;

	if (s->h2->_read_expect == s->h2_expect0) {
		/* The preface, if it is all here; h2o checks it. */
		if (in->size < sizeof(H2_PREFACE) - 1)
			return (0);
		off = sizeof(H2_PREFACE) - 1;
	}
	while (in->size - off >= H2O_HTTP2_FRAME_HEADER_SIZE) {
		f = (const uint8_t *)in->bytes + off;
		len = h2o_http2_decode24u(f);
		if (in->size - off - H2O_HTTP2_FRAME_HEADER_SIZE < len)
			break;
		if (f[3] == H2O_HTTP2_FRAME_TYPE_HEADERS ||
		    f[3] == H2O_HTTP2_FRAME_TYPE_CONTINUATION) {
			if (f[3] == H2O_HTTP2_FRAME_TYPE_HEADERS) {
				s->h2_block = 0;
				s->h2_block_id = h2o_http2_decode32u(f + 5) &
				    0x7fffffff;
			}
			s->h2_block += len;
			if (s->h2_block > HEAD_MAX) {
				in->size = off;
				return (1);
			}
			if (f[4] & H2O_HTTP2_FRAME_FLAG_END_HEADERS)
				s->h2_block = 0;
		}
		off += H2O_HTTP2_FRAME_HEADER_SIZE + len;
	}
	return (0);
}

static void
h2_too_large(struct session *s)
{
	h2o_http2_conn_t	*conn = s->h2;
	uint8_t			 block[16], goaway[8];
	uint32_t		 last = conn->pull_stream_ids.max_open;
	size_t			 len;

	s->h2_dead = 1;
	if (conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED)
		return;
	len = hpack_update(s, conn, block);
	block[len++] = 0x08;	/* :status, as in h2_refuse() */
	block[len++] = 3;
	memcpy(block + len, "431", 3);
	len += 3;
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_HEADERS,
	    H2O_HTTP2_FRAME_FLAG_END_HEADERS | H2O_HTTP2_FRAME_FLAG_END_STREAM,
	    s->h2_block_id, block, len);
	goaway[0] = last >> 24;
	goaway[1] = last >> 16;
	goaway[2] = last >> 8;
	goaway[3] = last;
	goaway[4] = goaway[5] = goaway[6] = 0;
	goaway[7] = 9;		/* COMPRESSION_ERROR */
	h2_frame(conn, H2O_HTTP2_FRAME_TYPE_GOAWAY, 0, 0, goaway,
	    sizeof(goaway));
	conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
	h2o_http2_conn_request_write(conn);
}

static void
h2_read(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	int		 cut = 0;

	if (err == NULL && s->h2_dead) {
		sock->input->size = 0;	/* h2o closes once it has written */
		return;
	}
	if (err == NULL)
		cut = h2_headers_check(s);
	reading = s;
	s->h2o_read(sock, err);
	if (reading == NULL)
		return;		/* closed */
	reading = NULL;
	if (err != NULL)
		return;
	if (cut)
		h2_too_large(s);
	else
		h2_after_read(s);
}

/* Draining: GOAWAY to each HTTP/2 connection with no stream open. */
static void
h2_drain_idle(void)
{
	struct session		*s;
	h2o_http2_conn_t	*conn;
	uint8_t			 goaway[8];
	uint32_t		 last;

	LIST_FOREACH(s, &sessions, entry) {
		if ((conn = s->h2) == NULL ||
		    conn->state != H2O_HTTP2_CONN_STATE_OPEN ||
		    conn->num_streams.pull.open != 0 ||
		    conn->num_streams.push.open != 0)
			continue;
		last = conn->pull_stream_ids.max_open;
		goaway[0] = last >> 24;
		goaway[1] = last >> 16;
		goaway[2] = last >> 8;
		goaway[3] = last;
		memset(goaway + 4, 0, 4);	/* NO_ERROR */
		h2_frame(conn, H2O_HTTP2_FRAME_TYPE_GOAWAY, 0, 0, goaway,
		    sizeof(goaway));
		/* h2o closes it once that is written. */
		conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
		h2o_http2_conn_request_write(conn);
	}
}

/*
 * An output filter for HTTP/2 responses while a dynamic table size
 * update is due: h2o writes the response's HEADERS, then the update is
 * put at the start of their header block.
 */
struct hpack_ostream {
	h2o_ostream_t	 super;
	struct session	*s;
};

static void
hpack_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
    size_t bufcnt, h2o_send_state_t state)
{
	struct hpack_ostream	*os = (struct hpack_ostream *)self;
	h2o_http2_conn_t	*conn = (h2o_http2_conn_t *)req->conn;
	h2o_http2_stream_t	*stream;
	struct session		*s = os->s;
	uint8_t			 upd[8], *f;
	size_t			 at, len, n;

	stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
	at = conn->_write.buf->size;
	h2o_ostream_send_next(self, req, bufs, bufcnt, state);
	if (s->hpack_size == conn->peer_settings.header_table_size ||
	    conn->_write.buf->size < at + H2O_HTTP2_FRAME_HEADER_SIZE)
		return;
	f = (uint8_t *)conn->_write.buf->bytes + at;
	len = h2o_http2_decode24u(f);
	if (f[3] != H2O_HTTP2_FRAME_TYPE_HEADERS ||
	    (h2o_http2_decode32u(f + 5) & 0x7fffffff) != stream->stream_id)
		return;
	/* The capacity was lowered when the response began. */
	n = hpack_int(upd, 0x20, 5, conn->peer_settings.header_table_size);
	if (len + n > conn->peer_settings.max_frame_size)
		return;
	s->hpack_size = conn->peer_settings.header_table_size;
	(void)h2o_buffer_reserve(&conn->_write.buf, n);
	f = (uint8_t *)conn->_write.buf->bytes + at;
	memmove(f + H2O_HTTP2_FRAME_HEADER_SIZE + n,
	    f + H2O_HTTP2_FRAME_HEADER_SIZE,
	    conn->_write.buf->size - at - H2O_HTTP2_FRAME_HEADER_SIZE);
	memcpy(f + H2O_HTTP2_FRAME_HEADER_SIZE, upd, n);
	(void)h2o_http2_encode24u(f, len + n);
	conn->_write.buf->size += n;
}

static void
hpack_filter(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	struct hpack_ostream	*os;
	struct session		*s;
	h2o_http2_conn_t	*conn;

	if (req->version >= 0x200 && (s = req_session(req)) != NULL &&
	    s->h2 != NULL && (conn = s->h2)->peer_settings.header_table_size <
	    s->hpack_size && conn->_output_header_table.num_entries == 0) {
		/* h2o must not index what the peer cannot hold. */
		conn->_output_header_table.hpack_capacity =
		    conn->peer_settings.header_table_size;
		os = (struct hpack_ostream *)h2o_add_ostream(req, sizeof(*os),
		    slot);
		os->super.do_send = hpack_do_send;
		os->s = s;
		slot = &os->super.next;
	}
	h2o_setup_next_ostream(req, slot);
}

/*
 * HTTP/1.1.
 */

/*
 * Make the request h2o will answer one with no body, and "Connection:
 * close": for a head too long.  It takes the place of what h2o has seen
 * of the head, no shorter, since h2o goes on parsing where it left off.
 */
static void
h1_replace(struct session *s, int status)
{
	static const char	 pre[] = "GET / HTTP/1.1\r\nConnection: close"
	    "\r\nX-Padding: ";
	h2o_buffer_t		*in = s->sock->input;
	size_t			 len;

	len = sizeof(pre) - 1 + 4;
	if (len < s->h1_fed)
		len = s->h1_fed;
	if (in->size < len)
		(void)h2o_buffer_reserve(&s->sock->input, len - in->size);
	in = s->sock->input;
	memcpy(in->bytes, pre, sizeof(pre) - 1);
	memset(in->bytes + sizeof(pre) - 1, 'x', len - (sizeof(pre) - 1) - 4);
	memcpy(in->bytes + len - 4, "\r\n\r\n", 4);
	in->size = len;
	s->h1_head = len;
	s->h1_reject = status;
}

static int
header_is(const char *p, size_t len, const char *name)
{
	return (len == strlen(name) && strncasecmp(p, name, len) == 0);
}

/*
 * A complete head: note a body, and hide it from h2o by rewriting, in
 * place and to the same length, Content-Length to zeros and
 * Transfer-Encoding to a Content-Length of zeros.  A head h2o will
 * refuse is left as it is.  One that would have h2o read a body we do
 * not see, with two lengths or a length and chunked, is refused: 400.
 */
static int
h1_head(struct session *s, char *head, size_t len)
{
	char		*line, *end, *colon, *v, *te = NULL, *tend = NULL;
	char		*cl = NULL, *clend = NULL, num[20];
	const char	*errstr;
	size_t		 n;

	for (line = memchr(head, '\n', len); line != NULL &&
	    (size_t)(line - head) + 1 < len; line = end) {
		line++;
		if ((end = memchr(line, '\n', head + len - line)) == NULL)
			break;
		if ((colon = memchr(line, ':', end - line)) == NULL)
			continue;
		for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		n = end - v;
		if (n > 0 && v[n - 1] == '\r')
			n--;
		if (header_is(line, colon - line, "expect") &&
		    header_is(v, n, "100-continue")) {
			/* Ours to send, if the body is wanted. */
			memcpy(line, "X-Expc", 6);
			s->h1_expect = 1;
		} else if (header_is(line, colon - line, "transfer-encoding")) {
			if (te != NULL)
				return (400);
			if (!header_is(v, n, "chunked"))
				return (0);	/* h2o says 400 */
			te = line;
			tend = v + n;
		} else if (header_is(line, colon - line, "content-length")) {
			if (cl != NULL)
				return (400);
			cl = v;
			clend = v + n;
		}
	}
	if (te != NULL) {
		if (cl != NULL)
			return (400);
		s->h1_chunked = 1;
		memcpy(te, "Content-Length: ", 16);
		memset(te + 16, '0', tend - te - 16);
		return (0);
	}
	if (cl == NULL || clend - cl > 19)
		return (0);	/* none, or h2o says 400 or 413 */
	memcpy(num, cl, clend - cl);
	num[clend - cl] = '\0';
	s->h1_length = strtonum(num, 0, LLONG_MAX, &errstr);
	if (errstr != NULL) {
		s->h1_length = 0;
		return (0);	/* h2o says 400 */
	}
	memset(cl, '0', clend - cl);
	return (0);
}

/* Find the end of the head in what has arrived; bytes through it. */
static size_t
h1_head_end(struct session *s)
{
	h2o_buffer_t	*in = s->sock->input;
	size_t		 i;

	i = s->h1_scan > 2 ? s->h1_scan - 2 : 0;
	for (; i < in->size; i++) {
		if (in->bytes[i] != '\n')
			continue;
		if (i + 1 < in->size && in->bytes[i + 1] == '\n')
			return (i + 2);
		if (i + 2 < in->size && in->bytes[i + 1] == '\r' &&
		    in->bytes[i + 2] == '\n')
			return (i + 3);
	}
	s->h1_scan = in->size;
	return (0);
}

static void
h1_read(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	size_t		 end;

	if (err == NULL && s->h1_head == 0 && s->h1_reading == NULL) {
		if ((end = h1_head_end(s)) > HEAD_MAX ||
		    (end == 0 && sock->input->size > HEAD_MAX))
			h1_replace(s, 431);
		else if (end > 0) {
			s->h1_head = end;
			if (h1_head(s, sock->input->bytes, end) != 0) {
				h1_next(s);
				h1_replace(s, 400);
			}
		}
	}
	reading = s;
	s->h2o_read(sock, err);
	if (reading == NULL)
		return;		/* closed */
	reading = NULL;
	if (s->h1_reading == NULL)
		s->h1_fed = sock->input->size;
}

/*
 * After each turn of the loop: h2o sets its own read callback again
 * when a response is done; put ours back before the next read.
 */
static void
h1_rewrap(void)
{
	struct session	*s;

	LIST_FOREACH(s, &sessions, entry) {
		if (s->h2 != NULL || s->sock->_cb.read == NULL ||
		    s->sock->_cb.read == h1_read ||
		    s->sock->_cb.read == h1_body_read)
			continue;
		s->h2o_read = s->sock->_cb.read;
		s->sock->_cb.read = h1_read;
	}
}

/* The request h2o is done with: the next head is yet to be found. */
static void
h1_next(struct session *s)
{
	s->h1_scan = s->h1_fed = s->h1_head = 0;
	s->h1_chunked = s->h1_expect = 0;
	s->h1_length = 0;
}

/* Chunked transfer coding: pass the data on; -1 if malformed. */
static int
h1_chunked(struct body *b, const char *p, size_t len, size_t *used)
{
	size_t	 i = 0, n;
	int	 c, d;

	while (i < len && b->chunk != CHUNK_DONE) {
		c = (unsigned char)p[i];
		switch (b->chunk) {
		case CHUNK_SIZE:
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else if (c == ';' || c == ' ' || c == '\t') {
				b->chunk = CHUNK_EXT;
				i++;
				continue;
			} else if (c == '\r') {
				i++;
				continue;
			} else if (c == '\n') {
				if (b->digits == 0)
					return (-1);
				b->chunk = b->left > 0 ? CHUNK_DATA :
				    CHUNK_TRAILER_START;
				i++;
				continue;
			} else
				return (-1);
			if (b->left > (body_limit >> 4) + 1) {
				b->status = 413;
				return (-1);
			}
			b->left = b->left * 16 + d;
			b->digits++;
			i++;
			break;
		case CHUNK_EXT:
			if (c == '\n') {
				if (b->digits == 0)
					return (-1);
				b->chunk = b->left > 0 ? CHUNK_DATA :
				    CHUNK_TRAILER_START;
			}
			i++;
			break;
		case CHUNK_DATA:
			n = len - i < b->left ? len - i : b->left;
			if (body_data(b, p + i, n) == -1)
				return (-1);
			b->left -= n;
			i += n;
			if (b->left == 0)
				b->chunk = CHUNK_DATA_END;
			break;
		case CHUNK_DATA_END:
			if (c == '\n') {
				b->chunk = CHUNK_SIZE;
				b->digits = 0;
			} else if (c != '\r')
				return (-1);
			i++;
			break;
		case CHUNK_TRAILER_START:
			b->chunk = c == '\n' ? CHUNK_DONE : c == '\r' ?
			    CHUNK_TRAILER_START : CHUNK_TRAILER;
			i++;
			break;
		case CHUNK_TRAILER:
			if (c == '\n')
				b->chunk = CHUNK_TRAILER_START;
			i++;
			break;
		case CHUNK_DONE:
			break;
		}
	}
	*used = i;
	if (b->chunk == CHUNK_DONE)
		b->done = 1;
	return (0);
}

/*
 * Take the body bytes that have arrived, which follow the head in h2o's
 * input: h2o will drop the head when the response is done.  Bytes past
 * the body (a pipelined request) are dropped, and the connection closed
 * after the response.
 */
static void
h1_take(struct session *s, struct body *b)
{
	h2o_buffer_t	*in = s->sock->input;
	char		*p;
	size_t		 avail, n;

	if (in->size <= s->h1_head)
		return;
	p = in->bytes + s->h1_head;
	avail = in->size - s->h1_head;
	if (b->chunked) {
		if (h1_chunked(b, p, avail, &n) == -1) {
			if (b->status == 0)
				b->status = 400;
			b->abort = 1;
		}
	} else {
		n = avail < b->left ? avail : b->left;
		(void)body_data(b, p, n);
		b->left -= n;
		if (b->left == 0)
			b->done = 1;
	}
	if (b->abort || (b->done && n < avail))
		b->req->http1_is_persistent = 0;
	in->size = s->h1_head;
}

static void
h1_body_end(struct session *s, struct body *b)
{
	h2o_timeout_unlink(&s->h1_timer);
	h2o_socket_read_stop(s->sock);
	if (!b->done) {
		b->req->http1_is_persistent = 0;
		if (b->status == 0)
			b->status = 400;
	}
	if (s->h1_writing) {
		s->h1_ended = 1;	/* answered once 100 Continue is out */
		return;
	}
	s->h1_ended = 0;
	s->h1_reading = NULL;
	h1_next(s);
	digest_respond(b->req, b);
}

static void
h1_continue_sent(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	struct body	*b = s->h1_reading;

	s->h1_writing = 0;
	if (b != NULL && (err != NULL || s->h1_ended))
		h1_body_end(s, b);
}

static void
h1_body_read(h2o_socket_t *sock, const char *err)
{
	struct session	*s = sock->on_close.data;
	struct body	*b = s->h1_reading;

	if (b == NULL)
		return;
	if (err == NULL)
		h1_take(s, b);
	if (err != NULL || b->done || b->abort) {
		h1_body_end(s, b);
		return;
	}
	h2o_timeout_unlink(&s->h1_timer);
	h2o_timeout_link(loop, &body_timeout, &s->h1_timer);
}

static void
h1_body_timeout(h2o_timeout_entry_t *entry)
{
	struct session	*s = H2O_STRUCT_FROM_MEMBER(struct session, h1_timer,
	    entry);

	if (s->h1_reading != NULL) {
		s->h1_reading->status = 408;
		h1_body_end(s, s->h1_reading);
	}
}

static void
body_error(h2o_req_t *req, int status)
{
	int	 close = H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION;

	switch (status) {
	case 400:
		h2o_send_error_generic(req, 400, "Bad Request",
		    "malformed request body\n", close);
		break;
	case 408:
		h2o_send_error_generic(req, 408, "Request Timeout",
		    "request body timed out\n", close);
		break;
	case 413:
		h2o_send_error_generic(req, 413, "Payload Too Large",
		    "request body too large\n", close);
		break;
	default:
		h2o_send_error_generic(req, 500, "Internal Server Error",
		    "digest failed\n", close);
		break;
	}
}

/*
 * An HTTP/1.1 request whose body h2o was not shown: refuse it, read its
 * body, or let it be served; 0 if it is taken care of.  The body is read
 * for a digest only; for anything else, the connection closes after the
 * response, the body unread.
 */
static int
h1_request(struct session *s, h2o_req_t *req)
{
	struct body	*b;
	size_t		 head = s->h1_head;
	int		 chunked = s->h1_chunked;
	uint64_t	 length = s->h1_length;

	static const h2o_iovec_t continue100 =
	    { H2O_STRLIT("HTTP/1.1 100 Continue\r\n\r\n") };
	int		 expect = s->h1_expect;
	h2o_buffer_t	*in = s->sock->input;

	h1_next(s);
	if (head == 0 || (!chunked && length == 0))
		return (-1);
	if ((b = body_get(s, req)) == NULL)
		return (-1);
	if (b->kind == BODY_SMALL) {
		/* Dropped if it is all here; else the connection closes. */
		if (!chunked && length <= body_cap(b) &&
		    in->size - head >= length) {
			memmove(in->bytes + head, in->bytes + head + length,
			    in->size - head - length);
			in->size -= length;
			return (-1);
		}
		req->http1_is_persistent = 0;
		if (chunked || length <= body_cap(b))
			return (-1);
	}
	if (b->kind != BODY_DIGEST || (!chunked && length > body_cap(b)))
		b->status = 413;
	/*
	 * A client that waits for 100 Continue is answered at once when
	 * refused; another has its body thrown away first, so that it
	 * reads the answer rather than a reset, up to DISCARD_MAX.
	 */
	if (b->status != 0 && (expect || (!chunked && length > DISCARD_MAX))) {
		req->http1_is_persistent = 0;
		body_error(req, b->status);
		return (0);
	}
	b->chunked = chunked;
	b->left = length;
	s->h1_head = head;
	s->h1_reading = b;
	if (expect) {
		s->h1_writing = 1;
		h2o_socket_write(s->sock, (h2o_iovec_t *)&continue100, 1,
		    h1_continue_sent);
	}
	h1_take(s, b);
	if (b->done || b->abort) {
		h1_body_end(s, b);
		return (0);
	}
	h2o_socket_read_start(s->sock, h1_body_read);
	h2o_timeout_link(loop, &body_timeout, &s->h1_timer);
	return (0);
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

static void
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

/* Whether the client may see the status: a certificate, or a network. */
static int
status_allowed(struct session *s)
{
	const Mezite__Address	*a;
	const struct status_net	*n;
	size_t			 i, len, bytes;
	unsigned int		 bits;

	if (s->meta->cert != NULL)
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
	struct body	*b;
	struct pending	*p;
	struct sbuf	 sb = { 0 };
	int		 get, status;

	if ((s = req_session(req)) == NULL) {
		h2o_send_error_500(req, "Internal Server Error",
		    "no session\n", 0);
		return (0);
	}
	if (s->h2 == NULL) {
		if ((status = s->h1_reject) != 0) {
			s->h1_reject = 0;
			h1_next(s);
			if (status == 431)
				h2o_send_error_generic(req, status,
				    "Request Header Fields Too Large",
				    "request header fields too large\n",
				    H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
			else
				h2o_send_error_generic(req, status,
				    "Bad Request", "ambiguous request body\n",
				    H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
			return (0);
		}
		if (h1_request(s, req) == 0)
			return (0);
	} else if ((b = body_find(s, req)) != NULL ||
	    req->entity.len > 0) {
		/* Refused, or a body that came whole in one read. */
		if ((b != NULL || (b = body_get(s, req)) != NULL) &&
		    b->kind != BODY_DIGEST && (b->status != 0 ||
		    req->entity.len > body_cap(b))) {
			body_error(req, b->status != 0 ? b->status : 413);
			return (0);
		}
	}

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
