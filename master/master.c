/*
 * The master: accepts, terminates TLS, routes by ALPN and SNI, and hands
 * each session to a worker.
 *
 * One libevent loop serves every connection; nothing here blocks.  After
 * the handshake the master either puts the session's keys in the kernel
 * and passes the TCP socket itself to the chosen worker (kTLS), or makes
 * a socketpair, passes one end, and relays plaintext between the TLS
 * session and its own end.  The relay moves up to 64 KiB a read and
 * reads from one side only when the other has taken everything, so a
 * slow reader holds back its writer instead of making the master buffer.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <limits.h>
#include <event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "meta.h"
#include "tls_ossl.h"
#include "mezited.h"
#include "util.h"

#define RELAY_BUFSZ	65536		/* four TLS records */
#define RELAY_ROUNDS	4		/* reads per turn, then yield */
#define LINGER_MAX	(1024 * 1024)	/* bytes read after close_notify */
#define ACCEPT_BATCH	32
#define MASTER_MAXSIZE	(256 * 1024)	/* keys come from the supervisor */
#define WORKER_QUEUE_MAX	256	/* handoffs waiting: prefer another */
#define WORKER_QUEUE_HARD	4096	/* ...and beyond this, refuse */

enum conn_state {
	CONN_HANDSHAKE,
	CONN_RELAY,
	CONN_CLOSING,		/* sending close_notify */
	CONN_LINGER,		/* reading what the client still sends */
	CONN_KTLS,		/* in the kernel and the worker's hands */
};

struct worker {
	TAILQ_ENTRY(worker)	 entry;
	enum proc_type		 type;
	unsigned int		 instance;
	pid_t			 pid;
	int64_t			 started;
	unsigned int		 restarts;
	unsigned int		 active;
	struct imsgev		 iev;
};

/*
 * A server context and the connections accepted with it.  The SNI
 * callbacks read the server context during each handshake, so a reload
 * frees the old one only after its last connection has ended.
 */
struct srvctx {
	struct ossl_server	*ossl;		/* OpenSSL engine, or */
	struct tls		*tls;		/* libtls (make TLS=libtls) */
	unsigned int		 refs;
};

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	int			 fd;
	struct event		 ev;
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	uint64_t		 id;
	enum conn_state		 state;
	int			 fd;		/* client, TCP */
	struct srvctx		*srv;
	struct tls		*tls;
	SSL			*ssl;
	int			 mode;		/* Mezite__HandoffMode */
	int			 pfd;		/* our end towards the worker */
	short			 fd_events;
	short			 pfd_events;
	int			 fd_rd;		/* may be readable: try */
	int			 pfd_rd;
	struct event		 fdev;
	struct event		 pfdev;
	struct event		 timer;
	struct sockaddr_storage	 peer;
	struct sockaddr_storage	 local;
	char			*alpn;
	char			*sni;
	enum proc_type		 wtype;
	struct worker		*worker;
	pid_t			 worker_pid;
	/* relay: bytes read but not yet written on */
	uint8_t			*up;		/* client -> worker */
	size_t			 upoff, uplen;
	uint8_t			*down;		/* worker -> client */
	size_t			 downoff, downlen;
	int			 up_eof;	/* client sent no more */
	int			 up_shut;	/* told the worker so */
	int			 down_eof;	/* worker sent no more */
	size_t			 bytes_linger;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	int64_t			 started;
};

TAILQ_HEAD(conns, conn);

static void	 master_dispatch_parent(int, short, void *);
static void	 master_dispatch_worker(int, short, void *);
static void	 master_configure(void);
static void	 srvctx_unref(struct srvctx *);
static void	 master_drain(void);
static void	 master_sig(int, short, void *);
static void	 listener_add(int);
static void	 listeners_pause(int);
static void	 master_accept(int, short, void *);
static void	 accept_resume(int, short, void *);
static void	 conn_handshake(struct conn *);
static void	 conn_route(struct conn *);
static void	 conn_relay(struct conn *);
static void	 relay_worker_stopped(struct conn *);
static ssize_t	 relay_to_worker(struct conn *, const uint8_t *, size_t,
		    short *);
static ssize_t	 relay_to_client(struct conn *, const uint8_t *, size_t,
		    short *);
static void	 conn_ktls_done(struct conn *);
static int	 eng_handshake(struct conn *);
static const char *eng_error(struct conn *);
static void	 conn_linger(struct conn *);
static void	 conn_io(int, short, void *);
static void	 conn_timeout(int, short, void *);
static void	 conn_set_events(struct conn *, short, short);
static void	 conn_watch(struct conn *, struct event *, int, short *,
		    short);
static void	 conn_free(struct conn *);
static struct worker *worker_pick(enum proc_type);
static int	 worker_running(enum proc_type);
static void	 worker_remove(struct worker *);
static void	 status_fill(Mezite__Status *);
static void	 status_free(Mezite__Status *);
static void	 ctl_show_connections(uint32_t);

static struct event_base	*evbase;
static struct imsgev		 parent;
static struct srvctx		*srv;		/* for new connections */
static Mezite__MasterConfig	*mconf;		/* the running config */
static struct route_rule	*rules;
static size_t			 nrules;
static enum proc_type		 default_worker = PROC_HTTPS;
static Mezite__MasterConfig	*pending;	/* being received */
static Mezite__Keypair		**pending_kp;
static size_t			 pending_nkp;
static Mezite__ProcInfo		*self_info;
static TAILQ_HEAD(, worker)	 workers = TAILQ_HEAD_INITIALIZER(workers);
static TAILQ_HEAD(, listener)	 listeners =
				    TAILQ_HEAD_INITIALIZER(listeners);
static struct conns		 conns = TAILQ_HEAD_INITIALIZER(conns);
static struct event		 acceptev;	/* resume after EMFILE */
static const struct timeval	*handshake_tv;
static const struct timeval	*idle_tv;
static const struct timeval	 linger_tv = { 2, 0 };
static unsigned int		 nconns;
static unsigned int		 nhandshakes;
static int			 accept_paused;
static int			 draining;
static uint64_t			 next_id = 1;
static int64_t			 master_started;
static uint8_t			 relay_buf[RELAY_BUFSZ];

/* Counters for status. */
static uint64_t			 st_total;
static uint64_t			 st_handshake_failures;
static uint64_t			 st_route_failures;
static uint64_t			 st_bytes_in;
static uint64_t			 st_bytes_out;
static uint64_t			 st_ktls_total;
static uint64_t			 st_relay_total;
static uint64_t			 st_route_total[PROC_MAX];
static unsigned int		 st_route_active[PROC_MAX];

void
master(const char *user, const char *root)
{
	struct event	 ev_sigterm, ev_sigint, ev_sighup;

	master_started = time_now();
	if (tls_init() == -1)
		fatalx("tls_init");
	if (fd_nonblock(PROC_PARENT_FD) == -1)
		fatal("fd_nonblock");

	proc_drop("master", user, root);

	evbase = event_init();
	signal_set(&ev_sigterm, SIGTERM, master_sig, NULL);
	signal_set(&ev_sigint, SIGINT, master_sig, NULL);
	signal_set(&ev_sighup, SIGHUP, master_sig, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal_add(&ev_sighup, NULL);
	signal(SIGPIPE, SIG_IGN);
	evtimer_set(&acceptev, accept_resume, NULL);

	if (imsgev_init(&parent, PROC_PARENT_FD, NULL,
	    master_dispatch_parent) == -1)
		fatal("imsgev_init");
	imsgbuf_allow_fdpass(&parent.ibuf);
	if (imsgbuf_set_maxsize(&parent.ibuf, MASTER_MAXSIZE) == -1)
		fatal("imsgbuf_set_maxsize");
	imsgev_add(&parent);

	event_dispatch();
	exit(0);
}

static void
master_sig(int sig, short event, void *arg)
{
	switch (sig) {
	case SIGTERM:
		master_drain();
		break;
	default:
		/* The supervisor coordinates; ^C in -d reaches it too. */
		break;
	}
}

/*
 * Build a libtls server context (make TLS=libtls).  The supervisor calls
 * this too, to refuse certificates and keys that would not load before
 * it starts or reloads anything.
 */
struct tls *
master_tls_build(const Mezite__MasterConfig *mc, Mezite__Keypair **kp,
    size_t nkp, char *err, size_t errlen)
{
	struct tls_config	*tc;
	struct tls		*t = NULL;
	uint32_t		 protocols;
	size_t			 i;

	if ((tc = tls_config_new()) == NULL) {
		strlcpy(err, "tls_config_new failed", errlen);
		return (NULL);
	}
	if (tls_config_parse_protocols(&protocols, mc->tls_protocols) == -1 ||
	    tls_config_set_protocols(tc, protocols) == -1) {
		(void)snprintf(err, errlen, "tls protocols \"%s\": invalid",
		    mc->tls_protocols);
		goto fail;
	}
	if (tls_config_set_ciphers(tc, mc->tls_ciphers) == -1) {
		(void)snprintf(err, errlen, "tls ciphers \"%s\": %s",
		    mc->tls_ciphers, tls_config_error(tc));
		goto fail;
	}
	if (nkp == 0) {
		strlcpy(err, "no tls keypair", errlen);
		goto fail;
	}
	for (i = 0; i < nkp; i++) {
		if ((i == 0 ? tls_config_set_keypair_mem :
		    tls_config_add_keypair_mem)(tc, kp[i]->cert.data,
		    kp[i]->cert.len, kp[i]->key.data, kp[i]->key.len) == -1) {
			(void)snprintf(err, errlen, "tls keypair \"%s\": %s",
			    kp[i]->name, tls_config_error(tc));
			goto fail;
		}
	}
	if (mc->client_ca.len > 0) {
		if (tls_config_set_ca_mem(tc, mc->client_ca.data,
		    mc->client_ca.len) == -1) {
			(void)snprintf(err, errlen, "tls client ca: %s",
			    tls_config_error(tc));
			goto fail;
		}
		tls_config_verify_client_optional(tc);
	}
	if (mc->n_alpn > 0 && mc->alpn[0][0] != '\0' &&
	    tls_config_set_alpn(tc, mc->alpn[0]) == -1) {
		(void)snprintf(err, errlen, "alpn \"%s\": %s", mc->alpn[0],
		    tls_config_error(tc));
		goto fail;
	}
	if ((t = tls_server()) == NULL) {
		strlcpy(err, "tls_server failed", errlen);
		goto fail;
	}
	if (tls_configure(t, tc) == -1) {
		(void)snprintf(err, errlen, "tls: %s", tls_error(t));
		tls_free(t);
		t = NULL;
	}
 fail:
	/* The context keeps what it needs; wipe our copies of the keys. */
	tls_config_free(tc);
	return (t);
}

static void
srvctx_unref(struct srvctx *sc)
{
	if (sc == NULL || --sc->refs > 0)
		return;
	tls_free(sc->tls);
	ossl_server_free(sc->ossl);
	free(sc);
}

static void
pending_free(void)
{
	size_t	 i;

	for (i = 0; i < pending_nkp; i++) {
		explicit_bzero(pending_kp[i]->key.data, pending_kp[i]->key.len);
		pb_free(pending_kp[i]);
	}
	free(pending_kp);
	pending_kp = NULL;
	pending_nkp = 0;
	pb_free(pending);
	pending = NULL;
}

/* Apply the configuration that arrived since IMSG_CONF_MASTER. */
static void
master_configure(void)
{
	static struct timeval	 htv, itv;
	struct tls		*t = NULL;
	struct ossl_server	*o = NULL;
	struct route_rule	*nrules_p;
	enum proc_type		 w;
	char			 err[256];
	size_t			 i;

	if (MASTER_ENGINE_OSSL)
		o = ossl_server_build(pending, pending_kp, pending_nkp, err,
		    sizeof(err));
	else
		t = master_tls_build(pending, pending_kp, pending_nkp, err,
		    sizeof(err));
	if (t == NULL && o == NULL) {
		if (srv == NULL)
			fatalx("%s", err);
		log_warnx("new configuration refused, keeping the running "
		    "one: %s", err);
		pending_free();
		return;
	}

	if ((nrules_p = calloc(pending->n_routes + 1,
	    sizeof(*nrules_p))) == NULL)
		fatal(__func__);
	for (i = 0; i < pending->n_routes; i++) {
		if (proc_lookup(pending->routes[i]->worker, &w) == -1 ||
		    !PROC_IS_WORKER(w))
			fatalx("route to unknown worker %s",
			    pending->routes[i]->worker);
		nrules_p[i].alpn = pending->routes[i]->alpn[0] ?
		    pending->routes[i]->alpn : NULL;
		nrules_p[i].sni = pending->routes[i]->sni[0] ?
		    pending->routes[i]->sni : NULL;
		nrules_p[i].worker = w;
	}
	if (proc_lookup(pending->default_worker, &w) == -1 ||
	    !PROC_IS_WORKER(w))
		fatalx("default route to unknown worker %s",
		    pending->default_worker);

	srvctx_unref(srv);
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		fatal(__func__);
	srv->tls = t;
	srv->ossl = o;
	srv->refs = 1;
	free(rules);
	rules = nrules_p;
	nrules = pending->n_routes;
	default_worker = w;
	pb_free(mconf);
	mconf = pending;
	pending = NULL;
	pending_free();

	/* Common timeouts make re-arming a per-connection timer O(1). */
	htv.tv_sec = mconf->handshake_timeout;
	htv.tv_usec = 0;
	itv.tv_sec = mconf->idle_timeout;
	itv.tv_usec = 0;
	if ((handshake_tv = event_base_init_common_timeout(evbase,
	    &htv)) == NULL)
		handshake_tv = &htv;
	if ((idle_tv = event_base_init_common_timeout(evbase, &itv)) == NULL)
		idle_tv = &itv;

	log_debug("configured: %zu routes, default %s, alpn \"%s\", %s",
	    nrules, proc_name(default_worker),
	    mconf->n_alpn ? mconf->alpn[0] : "",
	    mconf->ktls ? "kTLS" : "relay");
	listeners_pause(0);
}

static void
master_dispatch_parent(int fd, short event, void *arg)
{
	struct imsgev		*iev = arg;
	struct imsg		 imsg;
	struct worker		*w;
	Mezite__ProcInfo	*pi;
	Mezite__Keypair		*kp, **nkp;
	ssize_t			 n;
	int			 v, alive;

	if ((alive = imsgev_io(iev, event)) == -1)
		fatal("parent channel");
	for (;;) {
		if ((n = imsg_get(&iev->ibuf, &imsg)) == -1)
			fatal("parent channel: imsg_get");
		if (n == 0)
			break;
		switch (imsg_get_type(&imsg)) {
		case IMSG_CONF_MASTER:
			pending_free();
			if ((pending = pb_unpack(&mezite__master_config__descriptor,
			    &imsg)) == NULL)
				fatalx("bad IMSG_CONF_MASTER");
			break;
		case IMSG_CONF_KEYPAIR:
			if (pending == NULL || (kp = pb_unpack(
			    &mezite__keypair__descriptor, &imsg)) == NULL)
				fatalx("bad IMSG_CONF_KEYPAIR");
			explicit_bzero(imsg.data, imsg_get_len(&imsg));
			if ((nkp = reallocarray(pending_kp, pending_nkp + 1,
			    sizeof(*nkp))) == NULL)
				fatal(__func__);
			pending_kp = nkp;
			pending_kp[pending_nkp++] = kp;
			break;
		case IMSG_CONF_END:
			if (pending == NULL)
				fatalx("IMSG_CONF_END without config");
			master_configure();
			break;
		case IMSG_PROCS:
			if ((pi = pb_unpack(&mezite__proc_info__descriptor,
			    &imsg)) == NULL)
				fatalx("bad IMSG_PROCS");
			pb_free(self_info);
			self_info = pi;
			break;
		case IMSG_LISTENER:
			if ((fd = imsg_get_fd(&imsg)) == -1)
				fatalx("IMSG_LISTENER without fd");
			listener_add(fd);
			break;
		case IMSG_WORKER_UP:
			if ((fd = imsg_get_fd(&imsg)) == -1 ||
			    (pi = pb_unpack(&mezite__proc_info__descriptor,
			    &imsg)) == NULL)
				fatalx("bad IMSG_WORKER_UP");
			if ((w = calloc(1, sizeof(*w))) == NULL)
				fatal(__func__);
			if (proc_lookup(pi->type, &w->type) == -1 ||
			    !PROC_IS_WORKER(w->type))
				fatalx("IMSG_WORKER_UP: bad type %s", pi->type);
			w->instance = pi->instance;
			w->pid = pi->pid;
			w->started = pi->started;
			w->restarts = pi->restarts;
			pb_free(pi);
			if (fd_nonblock(fd) == -1 ||
			    imsgev_init(&w->iev, fd, w,
			    master_dispatch_worker) == -1)
				fatal("IMSG_WORKER_UP");
			imsgev_add(&w->iev);
			TAILQ_INSERT_TAIL(&workers, w, entry);
			log_debug("worker %s.%u up, pid %d", proc_name(w->type),
			    w->instance, (int)w->pid);
			break;
		case IMSG_DRAIN:
			master_drain();
			break;
		case IMSG_LOG_VERBOSE:
			if (imsg_get_data(&imsg, &v, sizeof(v)) == -1)
				fatalx("bad IMSG_LOG_VERBOSE");
			log_setverbose(v);
			break;
		case IMSG_CTL_SHOW_STATUS: {
			Mezite__Status	 st;

			status_fill(&st);
			if (pb_compose(&iev->ibuf, IMSG_CTL_STATUS,
			    imsg_get_id(&imsg), -1, &st.base) == -1 ||
			    imsg_compose(&iev->ibuf, IMSG_CTL_END,
			    imsg_get_id(&imsg), 0, -1, NULL, 0) == -1)
				fatal("compose status");
			status_free(&st);
			break;
		}
		case IMSG_CTL_SHOW_CONNECTIONS:
			ctl_show_connections(imsg_get_id(&imsg));
			break;
		default:
			fatalx("unexpected message %u from the supervisor",
			    imsg_get_type(&imsg));
		}
		imsg_free(&imsg);
	}
	if (alive == 0)
		fatalx("supervisor went away");
	imsgev_add(iev);
}

/* A worker is less trusted: anything unexpected drops it. */
static void
master_dispatch_worker(int fd, short event, void *arg)
{
	struct imsgev	*iev = arg;
	struct worker	*w = iev->data;
	struct imsg	 imsg;
	struct conn	*c;
	Mezite__ConnDone *done;
	Mezite__Status	 st;
	ssize_t		 n;
	int		 alive;

	alive = imsgev_io(iev, event);
	for (;;) {
		if ((n = imsg_get(&iev->ibuf, &imsg)) == -1) {
			log_warnx("%s.%u: malformed message, dropping it",
			    proc_name(w->type), w->instance);
			alive = 0;
			break;
		}
		if (n == 0)
			break;
		switch (imsg_get_type(&imsg)) {
		case IMSG_CONN_DONE:
			if ((done = pb_unpack(&mezite__conn_done__descriptor,
			    &imsg)) == NULL)
				goto bad;
			TAILQ_FOREACH(c, &conns, entry)
				if (c->id == done->id && c->worker == w &&
				    c->state == CONN_KTLS)
					break;
			if (c != NULL)
				conn_free(c);
			pb_free(done);
			break;
		case IMSG_STATUS_REQ:
			if (imsg_get_len(&imsg) != 0)
				goto bad;
			/* A worker that asks but never reads is dropped. */
			if (imsgbuf_queuelen(&iev->ibuf) >= WORKER_QUEUE_MAX)
				goto bad;
			status_fill(&st);
			if (pb_compose(&iev->ibuf, IMSG_STATUS,
			    imsg_get_id(&imsg), -1, &st.base) == -1)
				log_warn("%s: compose", __func__);
			status_free(&st);
			break;
		default:
 bad:
			log_warnx("%s.%u: unexpected message %u, dropping it",
			    proc_name(w->type), w->instance,
			    imsg_get_type(&imsg));
			alive = 0;
			break;
		}
		imsg_free(&imsg);
		if (alive <= 0)
			break;
	}
	if (alive <= 0) {
		worker_remove(w);
		return;
	}
	imsgev_add(iev);
}

static void
worker_remove(struct worker *w)
{
	struct conn	*c, *tc;

	log_debug("worker %s.%u gone", proc_name(w->type), w->instance);
	TAILQ_FOREACH_SAFE(c, &conns, entry, tc) {
		if (c->worker != w)
			continue;
		c->worker = NULL;
		/* Its kernel sessions died with it, or will not be told of. */
		if (c->state == CONN_KTLS)
			conn_free(c);
	}
	TAILQ_REMOVE(&workers, w, entry);
	imsgev_clear(&w->iev);
	free(w);
}

/*
 * The worker of a type with the fewest sessions; ties go round-robin so
 * that short sessions still spread.  One that is slow to take its
 * handoffs is passed over while another can; if all are, the least
 * backed up one still gets the session, up to a hard limit that keeps a
 * hung worker from collecting the master's descriptors.
 */
static int
worker_running(enum proc_type type)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &workers, entry)
		if (w->type == type)
			return (1);
	return (0);
}

static struct worker *
worker_pick(enum proc_type type)
{
	static unsigned int	 rr;
	struct worker		*w, *best = NULL, *least = NULL;
	unsigned int		 i = 0, n = 0, start, q;

	TAILQ_FOREACH(w, &workers, entry)
		if (w->type == type)
			n++;
	if (n == 0)
		return (NULL);
	start = rr++ % n;
	TAILQ_FOREACH(w, &workers, entry) {
		if (w->type != type)
			continue;
		q = imsgbuf_queuelen(&w->iev.ibuf);
		if (q < WORKER_QUEUE_HARD && (least == NULL ||
		    q < imsgbuf_queuelen(&least->iev.ibuf)))
			least = w;
		if (q >= WORKER_QUEUE_MAX) {
			i++;
			continue;
		}
		if (best == NULL || w->active < best->active ||
		    (w->active == best->active && i == start))
			best = w;
		i++;
	}
	return (best != NULL ? best : least);
}

static void
listener_add(int fd)
{
	struct listener	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal(__func__);
	l->fd = fd;
	if (fd_nonblock(fd) == -1)
		fatal("%s: fd_nonblock", __func__);
	event_set(&l->ev, fd, EV_READ | EV_PERSIST, master_accept, l);
	TAILQ_INSERT_TAIL(&listeners, l, entry);
	if (srv != NULL && !accept_paused && !draining)
		event_add(&l->ev, NULL);
}

/* Stop or resume accepting on every listener. */
static void
listeners_pause(int pause)
{
	struct listener	*l;

	accept_paused = pause;
	TAILQ_FOREACH(l, &listeners, entry) {
		if (pause || draining || srv == NULL)
			event_del(&l->ev);
		else
			event_add(&l->ev, NULL);
	}
}

static void
accept_resume(int fd, short event, void *arg)
{
	if (nconns < mconf->max_connections)
		listeners_pause(0);
}

static void
master_accept(int fd, short event, void *arg)
{
	struct timeval	 tv = { 1, 0 };
	struct conn	*c;
	socklen_t	 len;
	int		 s, i, on = 1;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		if (nconns >= mconf->max_connections) {
			log_warnx("max connections (%u) reached, not "
			    "accepting", mconf->max_connections);
			listeners_pause(1);
			return;
		}
		if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			switch (errno) {
			case EAGAIN:
			case EINTR:
			case ECONNABORTED:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Back off rather than spin on the backlog. */
				log_warn("accept; pausing for a second");
				listeners_pause(1);
				evtimer_add(&acceptev, &tv);
				return;
			default:
				log_warn("accept");
				return;
			}
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			log_warn(__func__);
			close(s);
			return;
		}
		/*
		 * Ids stay unique across master restarts: a worker may
		 * still report the end of a kernel session an earlier
		 * master handed over.
		 */
		c->id = (uint64_t)(self_info ? self_info->restarts : 0) << 32 |
		    next_id++;
		c->fd = s;
		c->pfd = -1;
		c->started = time_now();
		c->state = CONN_HANDSHAKE;
		c->wtype = PROC_MAX;		/* not routed yet */
		c->fd_rd = c->pfd_rd = 1;
		len = sizeof(c->peer);
		if (getpeername(s, (struct sockaddr *)&c->peer, &len) == -1)
			c->peer.ss_family = AF_UNSPEC;
		len = sizeof(c->local);
		if (getsockname(s, (struct sockaddr *)&c->local, &len) == -1)
			c->local.ss_family = AF_UNSPEC;
		if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			log_warn("TCP_NODELAY");
		event_set(&c->fdev, s, 0, conn_io, c);
		evtimer_set(&c->timer, conn_timeout, c);
		TAILQ_INSERT_TAIL(&conns, c, entry);
		nconns++;
		nhandshakes++;
		st_total++;

		c->srv = srv;
		srv->refs++;
		if (srv->ossl != NULL) {
			if ((c->ssl = ossl_accept(srv->ossl, s)) == NULL) {
				log_warnx("SSL_new: %s", ossl_error());
				conn_free(c);
				continue;
			}
		} else if (tls_accept_socket(srv->tls, &c->tls, s) == -1) {
			log_warnx("tls_accept_socket: %s", tls_error(srv->tls));
			conn_free(c);
			continue;
		}
		evtimer_add(&c->timer, handshake_tv);
		conn_handshake(c);
	}
}

static void
conn_handshake(struct conn *c)
{
	char	 addr[ADDRSTRLEN];

	switch (eng_handshake(c)) {
	case TLS_WANT_POLLIN:
		conn_set_events(c, EV_READ, 0);
		return;
	case TLS_WANT_POLLOUT:
		conn_set_events(c, EV_WRITE, 0);
		return;
	case 0:
		nhandshakes--;
		c->state = CONN_RELAY;
		evtimer_del(&c->timer);
		conn_route(c);
		return;
	default:
		st_handshake_failures++;
		log_debug("conn %llu: %s: handshake failed: %s",
		    (unsigned long long)c->id,
		    addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr)),
		    eng_error(c));
		conn_free(c);
		return;
	}
}

/*
 * The engines.  A connection runs on OpenSSL, or on libtls in a build
 * for it; both answer with libtls's conventions, and 0 from eng_read()
 * is the end of the client's stream.
 */
static int
eng_handshake(struct conn *c)
{
	return (c->ssl != NULL ? ossl_handshake(c->ssl) :
	    tls_handshake(c->tls));
}

/* Is this tls_read() failure only the client closing without notice? */
static int
tls_error_is_eof(struct tls *t)
{
	const char	*e = tls_error(t);

	return (e == NULL || strstr(e, "unexpected eof") != NULL ||
	    strstr(e, "EOF") != NULL);
}

static ssize_t
eng_read(struct conn *c, void *buf, size_t len)
{
	ssize_t	 n;

	if (c->ssl != NULL)
		return (ossl_read(c->ssl, buf, len));
	if ((n = tls_read(c->tls, buf, len)) == -1 && tls_error_is_eof(c->tls))
		n = 0;
	return (n);
}

static ssize_t
eng_write(struct conn *c, const void *buf, size_t len)
{
	return (c->ssl != NULL ? ossl_write(c->ssl, buf, len) :
	    tls_write(c->tls, buf, len));
}

/* Whether the client's socket was found empty (OpenSSL relay only). */
static int
eng_drained(struct conn *c)
{
	return (c->ssl != NULL && ossl_drained(c->ssl));
}

/* Send what the engine gathered for the client (OpenSSL relay only). */
static int
eng_flush(struct conn *c)
{
	return (c->ssl != NULL ? ossl_flush(c->ssl) : 0);
}

static int
eng_close(struct conn *c)
{
	return (c->ssl != NULL ? ossl_close(c->ssl) : tls_close(c->tls));
}

static const char *
eng_error(struct conn *c)
{
	const char	*e;

	if (c->ssl != NULL)
		return (ossl_error());
	return ((e = tls_error(c->tls)) != NULL ? e : "unknown error");
}

/* ALPN and SNI as the session settled them, copied into the conn. */
static int
eng_names(struct conn *c)
{
	const unsigned char	*p;
	const char		*alpn, *sni;
	unsigned int		 len;

	if (c->ssl != NULL) {
		SSL_get0_alpn_selected(c->ssl, &p, &len);
		if (len > 0 && (c->alpn = strndup((const char *)p, len)) ==
		    NULL)
			return (-1);
		sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	} else {
		if ((alpn = tls_conn_alpn_selected(c->tls)) != NULL &&
		    (c->alpn = strdup(alpn)) == NULL)
			return (-1);
		sni = tls_conn_servername(c->tls);
	}
	if (sni != NULL && (c->sni = strdup(sni)) == NULL)
		return (-1);
	return (0);
}

static const char *
eng_version(struct conn *c)
{
	const char	*v;

	v = c->ssl != NULL ? SSL_get_version(c->ssl) :
	    tls_conn_version(c->tls);
	return (v != NULL ? v : "");
}

static const char *
eng_cipher(struct conn *c)
{
	const char	*v;

	v = c->ssl != NULL ? SSL_get_cipher_name(c->ssl) :
	    tls_conn_cipher(c->tls);
	return (v != NULL ? v : "");
}

/* The verified client certificate, if one was presented. */
static X509 *
eng_peer(struct conn *c)
{
	const uint8_t	*pem;
	X509		*x = NULL;
	BIO		*bio;
	size_t		 len;

	if (c->ssl != NULL)
		return (SSL_get1_peer_certificate(c->ssl));
	if (!tls_peer_cert_provided(c->tls) ||
	    (pem = tls_peer_cert_chain_pem(c->tls, &len)) == NULL ||
	    len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return (NULL);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return (x);
}

/* What a worker learns of a client certificate. */
struct peer {
	Mezite__PeerCert	 pc;
	char			*subject;
	char			*issuer;
	char			 fingerprint[sizeof("SHA256:") + 64];
	char			**sans;
};

static int64_t
asn1_time(const ASN1_TIME *t)
{
	struct tm	 tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return (0);
	return ((int64_t)timegm(&tm));
}

static void
peer_fill(X509 *x, struct peer *p)
{
	GENERAL_NAMES		*names;
	const GENERAL_NAME	*gn;
	const unsigned char	*s;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0, i;
	int			 k, n, slen;

	memset(p, 0, sizeof(*p));
	mezite__peer_cert__init(&p->pc);
	p->subject = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
	p->issuer = X509_NAME_oneline(X509_get_issuer_name(x), NULL, 0);
	p->pc.subject = p->subject ? p->subject : "";
	p->pc.issuer = p->issuer ? p->issuer : "";
	if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
		strlcpy(p->fingerprint, "SHA256:", sizeof(p->fingerprint));
		for (i = 0; i < mdlen; i++)
			(void)snprintf(p->fingerprint + 7 + 2 * i, 3, "%02x",
			    md[i]);
	}
	p->pc.fingerprint = p->fingerprint;
	p->pc.not_before = asn1_time(X509_get0_notBefore(x));
	p->pc.not_after = asn1_time(X509_get0_notAfter(x));

	if ((names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL)) == NULL)
		return;
	n = sk_GENERAL_NAME_num(names);
	if (n > 0 && (p->sans = calloc(n, sizeof(char *))) != NULL) {
		for (k = 0; k < n; k++) {
			gn = sk_GENERAL_NAME_value(names, k);
			if (gn->type != GEN_DNS && gn->type != GEN_EMAIL &&
			    gn->type != GEN_URI)
				continue;
			s = ASN1_STRING_get0_data(gn->d.ia5);
			slen = ASN1_STRING_length(gn->d.ia5);
			if (slen <= 0 || memchr(s, '\0', slen) != NULL)
				continue;
			if ((p->sans[p->pc.n_sans] = strndup((const char *)s,
			    slen)) != NULL)
				p->pc.n_sans++;
		}
		p->pc.sans = p->sans;
	}
	GENERAL_NAMES_free(names);
}

static void
peer_free(struct peer *p)
{
	size_t	 i;

	for (i = 0; i < p->pc.n_sans; i++)
		free(p->sans[i]);
	free(p->sans);
	OPENSSL_free(p->subject);
	OPENSSL_free(p->issuer);
}

/*
 * Put the session in the kernel if the engine allows: 1 if it went
 * (the socket now belongs to the handoff), 0 if it stays with us, -1
 * if the attempt left the socket unusable.
 */
static int
conn_offload(struct conn *c)
{
	char	 err[128];

	if (c->ssl == NULL || !ossl_ktls(c->srv->ossl))
		return (0);
	switch (ossl_offload(c->fd, c->ssl, err, sizeof(err))) {
	case 0:
		return (1);
	case -1:
		log_debug("conn %llu: relaying: %s", (unsigned long long)c->id,
		    err);
		return (0);
	default:
		log_warnx("conn %llu: kTLS: %s", (unsigned long long)c->id,
		    err);
		return (-1);
	}
}

/* Choose the worker and hand the session over. */
static void
conn_route(struct conn *c)
{
	Mezite__ConnMeta	 m;
	struct peer		 peer;
	struct pb_addr		 client, local;
	X509			*x;
	char			 addr[ADDRSTRLEN];
	int			 sp[2], hfd, off;

	if (eng_names(c) == -1) {
		log_warn(__func__);
		conn_free(c);
		return;
	}
	c->wtype = route_select(rules, nrules, default_worker, c->alpn,
	    c->sni);
	st_route_total[c->wtype]++;
	st_route_active[c->wtype]++;
	addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr));

	if ((c->worker = worker_pick(c->wtype)) == NULL) {
		st_route_failures++;
		log_info("conn %llu: %s: alpn %s sni %s: %s %s worker is "
		    "running, closing", (unsigned long long)c->id, addr,
		    c->alpn ? c->alpn : "-", c->sni ? c->sni : "-",
		    worker_running(c->wtype) ? "no responsive" : "no",
		    proc_name(c->wtype));
		c->state = CONN_CLOSING;
		conn_relay(c);
		return;
	}

	mezite__conn_meta__init(&m);
	m.id = c->id;
	m.worker = (char *)proc_name(c->wtype);
	m.alpn = c->alpn ? c->alpn : "";
	m.sni = c->sni ? c->sni : "";
	addr_to_pb((struct sockaddr *)&c->peer, &client);
	addr_to_pb((struct sockaddr *)&c->local, &local);
	m.client = &client.pb;
	m.local = &local.pb;
	m.tls_version = (char *)eng_version(c);
	m.tls_cipher = (char *)eng_cipher(c);
	m.started = c->started;
	if ((x = eng_peer(c)) != NULL) {
		peer_fill(x, &peer);
		X509_free(x);
		m.cert = &peer.pc;
	}

	if ((off = conn_offload(c)) == -1) {
		if (m.cert != NULL)
			peer_free(&peer);
		conn_free(c);
		return;
	}
	if (off) {
		/* The kernel has the session; the worker gets the socket. */
		m.mode = MEZITE__HANDOFF_MODE__KTLS;
		hfd = c->fd;
		sp[0] = -1;
	} else {
		m.mode = MEZITE__HANDOFF_MODE__RELAY;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, sp) == -1) {
			log_warn("conn %llu: socketpair",
			    (unsigned long long)c->id);
			if (m.cert != NULL)
				peer_free(&peer);
			conn_free(c);
			return;
		}
		hfd = sp[1];
	}

	if (pb_compose(&c->worker->iev.ibuf, IMSG_HANDOFF, 0, hfd,
	    &m.base) == -1) {
		log_warn("conn %llu: handoff", (unsigned long long)c->id);
		c->worker = NULL;
		if (off) {
			c->fd = -1;		/* closed by pb_compose */
			conn_free(c);
		} else {
			close(sp[0]);
			c->state = CONN_CLOSING;
		}
	} else {
		imsgev_add(&c->worker->iev);
		c->worker->active++;
		c->worker_pid = c->worker->pid;
		c->mode = m.mode;
		log_debug("conn %llu: %s: alpn %s sni %s -> %s.%u%s",
		    (unsigned long long)c->id, addr, c->alpn ? c->alpn : "-",
		    c->sni ? c->sni : "-", proc_name(c->wtype),
		    c->worker->instance, off ? " (kTLS)" : "");
		if (off) {
			st_ktls_total++;
			conn_ktls_done(c);
		} else {
			st_relay_total++;
			if (c->ssl != NULL && ossl_relay(c->ssl, c->fd) == -1)
				log_warnx("conn %llu: relay buffer: %s",
				    (unsigned long long)c->id, ossl_error());
			c->pfd = sp[0];
			c->state = CONN_RELAY;
			event_set(&c->pfdev, c->pfd, 0, conn_io, c);
		}
	}
	if (m.cert != NULL)
		peer_free(&peer);
	if (!off)
		conn_relay(c);
}

/*
 * The session went to the worker with its socket.  The conn stays, with
 * no descriptor and no engine, so that it is listed and counted until
 * the worker reports its end.
 */
static void
conn_ktls_done(struct conn *c)
{
	event_del(&c->fdev);
	c->fd_events = 0;
	evtimer_del(&c->timer);
	SSL_set_quiet_shutdown(c->ssl, 1);
	SSL_free(c->ssl);
	c->ssl = NULL;
	srvctx_unref(c->srv);
	c->srv = NULL;
	c->fd = -1;			/* the handoff closes it */
	c->state = CONN_KTLS;
}

/* Keep what the other side did not take: only that, and only meanwhile. */
static int
relay_keep(uint8_t **buf, size_t *off, size_t *len, const uint8_t *data,
    size_t n)
{
	free(*buf);
	if ((*buf = malloc(n)) == NULL)
		return (-1);
	memcpy(*buf, data, n);
	*off = 0;
	*len = n;
	return (0);
}

static void
relay_release(uint8_t **buf, size_t *off)
{
	/* Idle connections hold no buffers. */
	free(*buf);
	*buf = NULL;
	*off = 0;
}

/*
 * Send to the worker: the bytes it took, 0 if it must be waited for,
 * -1 if it stopped reading.
 */
static ssize_t
relay_to_worker(struct conn *c, const uint8_t *buf, size_t len,
    short *pfdw)
{
	ssize_t	 w;

	if ((w = send(c->pfd, buf, len, MSG_NOSIGNAL)) == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			relay_worker_stopped(c);
			return (-1);
		}
		w = 0;
	}
	if ((size_t)w < len)
		*pfdw |= EV_WRITE;
	return (w);
}

/*
 * Write to the client: the bytes it took, 0 if the engine must wait for
 * an event (added to *fdw), -1 if the session is broken.
 */
static ssize_t
relay_to_client(struct conn *c, const uint8_t *buf, size_t len, short *fdw)
{
	ssize_t	 w;
	size_t	 off = 0;

	/* The engine takes a record a call. */
	while (off < len) {
		switch ((w = eng_write(c, buf + off, len - off))) {
		case TLS_WANT_POLLIN:
			*fdw |= EV_READ;
			return (off);
		case TLS_WANT_POLLOUT:
			*fdw |= EV_WRITE;
			return (off);
		}
		if (w < 0) {
			log_debug("conn %llu: write: %s",
			    (unsigned long long)c->id, eng_error(c));
			return (-1);
		}
		c->bytes_out += w;
		st_bytes_out += w;
		off += w;
	}
	return (off);
}

/*
 * Move as much as both sides take, then wait for what blocked.  Called
 * for every event on either descriptor.  A record read from one side
 * goes straight out of the scratch buffer; only what the other side
 * does not take at once is kept, and not offered again before that side
 * is writable.  A side that came up empty is not read again before
 * libevent says it is readable: on a busy one-way stream that read would
 * fail on every record.
 */
static void
conn_relay(struct conn *c)
{
	ssize_t	 n, w;
	short	 fdw, pfdw;
	int	 round, progress, kept;

	for (round = 0; round < RELAY_ROUNDS; round++) {
		progress = 0;
		fdw = pfdw = 0;

		if (c->state == CONN_CLOSING)
			goto closing;

		/* Client to worker. */
		kept = 0;
		if (c->uplen == 0 && !c->up_eof && !c->fd_rd)
			fdw |= EV_READ;
		else if (c->uplen == 0 && !c->up_eof) {
			n = eng_read(c, relay_buf, sizeof(relay_buf));
			if (n == TLS_WANT_POLLIN) {
				c->fd_rd = 0;
				fdw |= EV_READ;
			} else if (n == TLS_WANT_POLLOUT)
				fdw |= EV_WRITE;
			else if (n < 0) {
				log_debug("conn %llu: read: %s",
				    (unsigned long long)c->id, eng_error(c));
				conn_free(c);
				return;
			} else if (n == 0) {
				c->up_eof = 1;
				progress = 1;
			} else {
				c->bytes_in += n;
				st_bytes_in += n;
				progress = 1;
				if (eng_drained(c))
					c->fd_rd = 0;
				if ((w = relay_to_worker(c, relay_buf, n,
				    &pfdw)) >= 0 && w < n) {
					if (relay_keep(&c->up, &c->upoff,
					    &c->uplen, relay_buf + w,
					    n - w) == -1)
						goto nomem;
					kept = 1;
				}
			}
		}
		if (c->uplen > 0 && !kept &&
		    (w = relay_to_worker(c, c->up + c->upoff, c->uplen,
		    &pfdw)) != 0) {
			/* w < 0: relay_worker_stopped() dropped the rest. */
			progress = 1;
			if (w > 0) {
				c->upoff += w;
				c->uplen -= w;
				if (c->uplen == 0)
					relay_release(&c->up, &c->upoff);
			}
		}
		if (c->up_eof && c->uplen == 0 && !c->up_shut) {
			(void)shutdown(c->pfd, SHUT_WR);
			c->up_shut = 1;
		}

		/* Worker to client. */
		kept = 0;
		if (c->downlen == 0 && !c->down_eof && !c->pfd_rd)
			pfdw |= EV_READ;
		else if (c->downlen == 0 && !c->down_eof) {
			n = recv(c->pfd, relay_buf, sizeof(relay_buf), 0);
			if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
				if (errno == EAGAIN)
					c->pfd_rd = 0;
				pfdw |= EV_READ;
			} else if (n <= 0) {
				c->down_eof = 1;
				progress = 1;
			} else {
				progress = 1;
				/* Short: the worker's end is empty for now. */
				if ((size_t)n < sizeof(relay_buf))
					c->pfd_rd = 0;
				if ((w = relay_to_client(c, relay_buf, n,
				    &fdw)) == -1) {
					conn_free(c);
					return;
				}
				if (w < n) {
					if (relay_keep(&c->down, &c->downoff,
					    &c->downlen, relay_buf + w,
					    n - w) == -1)
						goto nomem;
					kept = 1;
				}
			}
		}
		if (c->downlen > 0 && !kept) {
			if ((w = relay_to_client(c, c->down + c->downoff,
			    c->downlen, &fdw)) == -1) {
				conn_free(c);
				return;
			}
			if (w > 0) {
				c->downoff += w;
				c->downlen -= w;
				if (c->downlen == 0)
					relay_release(&c->down, &c->downoff);
				progress = 1;
			}
		}
		if (c->down_eof && c->downlen == 0) {
			/* The worker is done: close_notify, then close. */
			c->state = CONN_CLOSING;
			goto closing;
		}

		if (!progress)
			break;
	}

	/* What this pass wrote to the client leaves in one send(2). */
	switch (eng_flush(c)) {
	case 0:
		break;
	case TLS_WANT_POLLOUT:
		fdw |= EV_WRITE;
		break;
	default:
		log_debug("conn %llu: write: %s", (unsigned long long)c->id,
		    strerror(errno));
		conn_free(c);
		return;
	}
	if (round == RELAY_ROUNDS) {
		/* More to do; let other connections run first. */
		conn_set_events(c, 0, 0);
		event_active(&c->fdev, EV_WRITE, 1);
		return;
	}
	evtimer_add(&c->timer, idle_tv);
	conn_set_events(c, fdw, pfdw);
	return;

 closing:
	switch (eng_close(c)) {
	case TLS_WANT_POLLIN:
		conn_set_events(c, EV_READ, 0);
		evtimer_add(&c->timer, handshake_tv);
		return;
	case TLS_WANT_POLLOUT:
		conn_set_events(c, EV_WRITE, 0);
		evtimer_add(&c->timer, handshake_tv);
		return;
	case 0:
		conn_linger(c);
		return;
	default:
		conn_free(c);
		return;
	}

 nomem:
	log_warn("conn %llu: relay buffer", (unsigned long long)c->id);
	conn_free(c);
}

/*
 * The worker takes no more input, usually because it has answered and
 * closed: what the client still sends is dropped, and what the worker
 * wrote before it closed is still delivered.
 */
static void
relay_worker_stopped(struct conn *c)
{
	log_debug("conn %llu: worker stopped reading: %s",
	    (unsigned long long)c->id, strerror(errno));
	relay_release(&c->up, &c->upoff);
	c->uplen = 0;
	c->up_eof = 1;
	c->up_shut = 1;
}

/*
 * After close_notify, read and drop what the client still sends until
 * it closes too.  Closing a socket with unread input makes the kernel
 * send a reset, and the reset makes the client's kernel discard the
 * reply the client has not read yet.
 */
static void
conn_linger(struct conn *c)
{
	if (c->pfd != -1) {
		event_del(&c->pfdev);
		close(c->pfd);
		c->pfd = -1;
		c->pfd_events = 0;
	}
	if (shutdown(c->fd, SHUT_WR) == -1) {
		conn_free(c);
		return;
	}
	c->state = CONN_LINGER;
	c->bytes_linger = 0;
	conn_set_events(c, EV_READ, 0);
	evtimer_add(&c->timer, &linger_tv);
}

static void
conn_linger_read(struct conn *c)
{
	ssize_t	 n;

	while ((n = read(c->fd, relay_buf, sizeof(relay_buf))) > 0) {
		c->bytes_linger += n;
		if (c->bytes_linger > LINGER_MAX) {
			conn_free(c);
			return;
		}
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		conn_set_events(c, EV_READ, 0);
		return;
	}
	conn_free(c);
}

static void
conn_io(int fd, short event, void *arg)
{
	struct conn	*c = arg;

	if (event & EV_READ) {
		if (fd == c->fd)
			c->fd_rd = 1;
		else if (fd == c->pfd)
			c->pfd_rd = 1;
	}
	switch (c->state) {
	case CONN_HANDSHAKE:
		conn_handshake(c);
		break;
	case CONN_LINGER:
		conn_linger_read(c);
		break;
	default:
		conn_relay(c);
		break;
	}
}

static void
conn_timeout(int fd, short event, void *arg)
{
	struct conn	*c = arg;
	char		 addr[ADDRSTRLEN];

	addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr));
	if (c->state == CONN_HANDSHAKE) {
		st_handshake_failures++;
		log_debug("conn %llu: %s: handshake timed out",
		    (unsigned long long)c->id, addr);
	} else
		log_debug("conn %llu: %s: idle timeout",
		    (unsigned long long)c->id, addr);
	conn_free(c);
}

/*
 * Wait for these events on the client's socket and on the worker's
 * end.  The events persist: a connection that keeps waiting for the same
 * thing, as a busy one mostly does, costs no epoll_ctl(2) per wakeup.
 */
static void
conn_set_events(struct conn *c, short fdw, short pfdw)
{
	conn_watch(c, &c->fdev, c->fd, &c->fd_events, fdw);
	if (c->pfd != -1)
		conn_watch(c, &c->pfdev, c->pfd, &c->pfd_events, pfdw);
}

static void
conn_watch(struct conn *c, struct event *ev, int fd, short *cur, short want)
{
	if (*cur == want)
		return;
	event_del(ev);
	*cur = want;
	if (want) {
		event_set(ev, fd, want | EV_PERSIST, conn_io, c);
		event_add(ev, NULL);
	}
}

static void
conn_free(struct conn *c)
{
	char	 addr[ADDRSTRLEN];

	if (c->state == CONN_HANDSHAKE)
		nhandshakes--;
	if (c->wtype != PROC_MAX) {
		st_route_active[c->wtype]--;
		if (c->worker_pid != 0)
			log_debug("conn %llu: %s: closed, %llu bytes in, "
			    "%llu out", (unsigned long long)c->id,
			    addr_str((struct sockaddr *)&c->peer, addr,
			    sizeof(addr)), (unsigned long long)c->bytes_in,
			    (unsigned long long)c->bytes_out);
	}
	if (c->worker != NULL)
		c->worker->active--;
	event_del(&c->fdev);
	evtimer_del(&c->timer);
	if (c->pfd != -1) {
		event_del(&c->pfdev);
		close(c->pfd);
	}
	tls_free(c->tls);
	SSL_free(c->ssl);
	srvctx_unref(c->srv);
	if (c->fd != -1)
		close(c->fd);
	free(c->up);
	free(c->down);
	free(c->alpn);
	free(c->sni);
	TAILQ_REMOVE(&conns, c, entry);
	free(c);
	nconns--;

	if (accept_paused && !evtimer_pending(&acceptev, NULL) &&
	    nconns < mconf->max_connections)
		listeners_pause(0);
	if (draining && nconns == 0) {
		log_debug("drained");
		exit(0);
	}
}

/* Stop accepting; leave when the last session has ended. */
static void
master_drain(void)
{
	struct listener	*l;

	if (draining)
		return;
	draining = 1;
	while ((l = TAILQ_FIRST(&listeners)) != NULL) {
		event_del(&l->ev);
		close(l->fd);
		TAILQ_REMOVE(&listeners, l, entry);
		free(l);
	}
	log_debug("draining %u connections", nconns);
	if (nconns == 0)
		exit(0);
}

static void
status_fill(Mezite__Status *st)
{
	Mezite__ProcInfo	**procs, *pi;
	Mezite__RouteStats	**routes, *rs;
	struct worker		*w;
	size_t			 n = 1, i = 0;
	int			 t;

	mezite__status__init(st);
	st->version = MEZITED_VERSION;
	st->started = mconf ? mconf->started : master_started;
	st->now = time_now();
	st->master_started = master_started;
	st->connections_total = st_total;
	st->connections_active = nconns;
	st->handshakes_active = nhandshakes;
	st->handshake_failures = st_handshake_failures;
	st->route_failures = st_route_failures;
	st->bytes_in = st_bytes_in;
	st->bytes_out = st_bytes_out;
	st->draining = draining;
	st->ktls_total = st_ktls_total;
	st->relay_total = st_relay_total;
	st->ktls = mconf != NULL && mconf->ktls;

	if ((routes = calloc(PROC_MAX, sizeof(*routes))) == NULL ||
	    (rs = calloc(PROC_MAX, sizeof(*rs))) == NULL)
		fatal(__func__);
	for (t = PROC_HTTPS; t < PROC_MAX; t++) {
		mezite__route_stats__init(&rs[i]);
		rs[i].worker = (char *)proc_name(t);
		rs[i].total = st_route_total[t];
		rs[i].active = st_route_active[t];
		routes[i] = &rs[i];
		i++;
	}
	st->n_routes = i;
	st->routes = routes;

	TAILQ_FOREACH(w, &workers, entry)
		n++;
	if ((procs = calloc(n, sizeof(*procs))) == NULL ||
	    (pi = calloc(n, sizeof(*pi))) == NULL)
		fatal(__func__);
	i = 0;
	mezite__proc_info__init(&pi[i]);
	pi[i].type = "master";
	pi[i].pid = getpid();
	pi[i].started = master_started;
	pi[i].restarts = self_info ? self_info->restarts : 0;
	pi[i].connections = nconns;
	procs[i] = &pi[i];
	i++;
	TAILQ_FOREACH(w, &workers, entry) {
		mezite__proc_info__init(&pi[i]);
		pi[i].type = (char *)proc_name(w->type);
		pi[i].instance = w->instance;
		pi[i].pid = w->pid;
		pi[i].started = w->started;
		pi[i].restarts = w->restarts;
		pi[i].connections = w->active;
		procs[i] = &pi[i];
		i++;
	}
	st->n_procs = i;
	st->procs = procs;
}

static void
status_free(Mezite__Status *st)
{
	if (st->n_routes > 0)
		free(st->routes[0]);
	free(st->routes);
	if (st->n_procs > 0)
		free(st->procs[0]);
	free(st->procs);
}

static void
ctl_show_connections(uint32_t peerid)
{
	Mezite__ConnInfo	 ci;
	struct pb_addr		 client;
	struct conn		*c;

	TAILQ_FOREACH(c, &conns, entry) {
		mezite__conn_info__init(&ci);
		ci.id = c->id;
		addr_to_pb((struct sockaddr *)&c->peer, &client);
		ci.client = &client.pb;
		ci.alpn = c->alpn ? c->alpn : "";
		ci.sni = c->sni ? c->sni : "";
		ci.worker = c->state == CONN_HANDSHAKE ? "" :
		    (char *)proc_name(c->wtype);
		ci.worker_pid = c->worker_pid;
		ci.bytes_in = c->bytes_in;
		ci.bytes_out = c->bytes_out;
		ci.started = c->started;
		ci.state = c->state == CONN_HANDSHAKE ? "handshake" :
		    c->state == CONN_RELAY ? "relay" :
		    c->state == CONN_KTLS ? "kernel" : "closing";
		ci.mode = c->mode;
		if (pb_compose(&parent.ibuf, IMSG_CTL_CONN, peerid, -1,
		    &ci.base) == -1)
			fatal("%s: compose", __func__);
	}
	if (imsg_compose(&parent.ibuf, IMSG_CTL_END, peerid, 0, -1, NULL,
	    0) == -1)
		fatal("%s: compose", __func__);
	imsgev_add(&parent);
}
