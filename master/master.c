/*
 * The master: accepts, terminates TLS, routes by ALPN and SNI, and hands
 * each session to a worker (handoff.c), in the kernel or relayed
 * (relay.c).
 *
 * One libevent loop serves every connection; nothing here blocks.  This
 * file is the process: its configuration, its channels to the
 * supervisor and the workers, accepting, the handshake, and status.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include "casign.h"
#include "certid.h"
#include "log.h"
#include "master.h"
#include "meta.h"
#include "sandbox.h"
#include "tickets.h"
#include "tls_ossl.h"
#include "util.h"

#define ACCEPT_BATCH	32
#define TRIM_MIN	256		/* connections at the peak, to trim */
#define FD_SCAN		256		/* at start, descriptors below this */
#define FD_SPARE	4		/* kept free for the unforeseen */
#define FD_WARN_EVERY	10		/* seconds between "full" lines */
#define MASTER_MAXSIZE	(256 * 1024)	/* keys come from the supervisor */

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	int			 fd;
	struct event		 ev;
	/* What every connection it accepts shares (listener_add). */
	int			 wildcard;	/* local address per conn */
	int			 nodelay;	/* inherited by its conns */
	struct sockaddr_storage	 local;		/* when not a wildcard */
};

static void	 parent_closed(struct proc_chan *);
static void	 worker_closed(struct proc_chan *);
static void	 pending_free(void);
static void	 master_tick(int, short, void *);

static int	 conn_cmp(struct conn *, struct conn *);

static const struct proc_peer	 master_from_parent;

RB_GENERATE_STATIC(conn_tree, conn, node, conn_cmp)
static void	 master_configure(void);
static void	 master_drain(void);
static void	 master_sig(int, short, void *);
static void	 listener_add(int);
static void	 listeners_pause(int);
static void	 master_accept(int, short, void *);
static void	 accept_resume(int, short, void *);
static void	 mem_trim(int, short, void *);
static void	 fd_limit_read(void);
static int	 fd_room(void);
static void	 worker_remove(struct worker *);
static void	 status_fill(Mezite__Status *);
static void	 ctl_show_connections(uint32_t);

struct workers			 workers = TAILQ_HEAD_INITIALIZER(workers);
struct master_stats		 mstats;
const struct route_rule		*rules;
size_t				 nrules;
enum proc_type			 default_worker = PROC_HTTPS;
const struct timeval		*handshake_tv;
const struct timeval		*idle_tv;

static struct event_base	*evbase;
static struct proc_chan		 parent;
static struct srvctx		*srv;		/* for new connections */
static Mezite__MasterConfig	*mconf;		/* the running config */
static struct route_rule	*rules_buf;
static Mezite__MasterConfig	*pending;	/* being received */
static Mezite__Keypair		**pending_kp;
static size_t			 pending_nkp;
static Mezite__ProcInfo		*self_info;
static TAILQ_HEAD(, listener)	 listeners =
				    TAILQ_HEAD_INITIALIZER(listeners);
static struct conns		 conns = TAILQ_HEAD_INITIALIZER(conns);
static struct event		 acceptev;	/* resume, or look again */
static const struct timeval	 accept_tv = { 1, 0 };
static struct event		 trimev;	/* give memory back */
static const struct timeval	 trim_tv = { 1, 0 };
static struct event		 tickev;
static struct conn_tree		 conn_ids = RB_INITIALIZER(&conn_ids);
static unsigned int		 nconns;
static unsigned int		 nconns_peak;	/* since the last trim */
static unsigned int		 nhandshakes;
static unsigned int		 nlisteners;
static uint64_t			 ktls_ended;	/* kernel sessions gone */
static unsigned int		 fd_limit;	/* RLIMIT_NOFILE */
static unsigned int		 fd_base;	/* open before the rest came */
static int			 accept_paused;
static int			 accept_backoff;	/* after EMFILE: wait */
static int			 draining;
static uint64_t			 next_id = 1;
static int64_t			 master_started;

void
master(const char *user, const char *root)
{
	struct event	 ev_sigterm, ev_sigint, ev_sighup;
	int		 fd;

	master_started = time_now();
	if (tls_init() == -1)
		fatalx("tls_init");
	if (fd_nonblock(PROC_PARENT_FD) == -1)
		fatal("fd_nonblock");

	proc_drop("master", user, root);
	ossl_set_revoked(certid_revoked);
	sandbox_master();

	evbase = event_init();
	signal_set(&ev_sigterm, SIGTERM, master_sig, NULL);
	signal_set(&ev_sigint, SIGINT, master_sig, NULL);
	signal_set(&ev_sighup, SIGHUP, master_sig, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal_add(&ev_sighup, NULL);
	signal(SIGPIPE, SIG_IGN);
	evtimer_set(&acceptev, accept_resume, NULL);
	evtimer_set(&trimev, mem_trim, NULL);
	evtimer_set(&tickev, master_tick, NULL);
	master_tick(-1, 0, NULL);

	if (proc_chan_event(&parent, PROC_PARENT_FD, &master_from_parent,
	    "supervisor", NULL, parent_closed) == -1)
		fatal("supervisor channel");
	/* Ticket keys, and with libtls private keys, come this way. */
	imsgbuf_set_wipe(&parent.ibuf);

	/* Standard ones, the channels, the event loop's: nothing else yet. */
	for (fd = 0; fd < FD_SCAN; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			fd_base++;
	fd_limit_read();

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


void
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
		/* With OpenSSL the ca process holds the keys: none came. */
		if (pending_kp[i]->key.len > 0)
			explicit_bzero(pending_kp[i]->key.data,
			    pending_kp[i]->key.len);
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
	free(rules_buf);
	rules = rules_buf = nrules_p;
	nrules = pending->n_routes;
	default_worker = w;
	pb_free(mconf);
	mconf = pending;
	pending = NULL;
	pending_free();
	proxy_configure(mconf->proxy_from, mconf->n_proxy_from);

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

	if (certid_set_cas(mconf->auth_user_ca.data, mconf->auth_user_ca.len,
	    mconf->auth_host_ca.data, mconf->auth_host_ca.len) == -1)
		log_warnx("the auth worker's CA certificates are unusable; "
		    "its users and nodes are not recognised");
	if (certid_set_clusters(mconf->clusters, mconf->n_clusters) == -1) {
		log_warnx("a trusted cluster's CA certificate is unusable; "
		    "no cluster is recognised");
		(void)certid_set_clusters(NULL, 0);
	}

	source_limits(mconf->max_conn_per_source ? mconf->max_conn_per_source :
	    MAX_CONN_PER_SOURCE, mconf->conn_rate_per_source ?
	    mconf->conn_rate_per_source : CONN_RATE_PER_SOURCE);

	log_debug("configured: %zu routes, default %s, alpn \"%s\", %s",
	    nrules, proc_name(default_worker),
	    mconf->n_alpn ? mconf->alpn[0] : "",
	    mconf->ktls ? "kTLS" : "relay");
	fd_limit_read();
	listeners_pause(0);
}

/* The supervisor: trusted, so anything wrong from it is fatal. */
static int
master_conf_begin(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	pending_free();
	pending = msg;
	return (1);
}

static int
master_conf_keypair(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Keypair	*kp, **nkp;

	if (pending == NULL)
		return (-1);
	kp = pb_unpack(&mezite__keypair__descriptor, imsg);
	pb_wipe(imsg);
	if (kp == NULL)
		return (-1);
	if ((nkp = reallocarray(pending_kp, pending_nkp + 1,
	    sizeof(*nkp))) == NULL)
		fatal(__func__);
	pending_kp = nkp;
	pending_kp[pending_nkp++] = kp;
	return (0);
}

/*
 * The session ticket keys, at start and at each rotation: they replace
 * the ones held, which are wiped.  None: tickets are off.
 */
static int
master_ticket_keys(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ticket_keys	 tk;

	if (imsg_get_data(imsg, &tk, sizeof(tk)) == -1) {
		pb_wipe(imsg);
		return (-1);
	}
	pb_wipe(imsg);
	if (tk.n > 2) {
		explicit_bzero(&tk, sizeof(tk));
		return (-1);
	}
	/*
	 * The libtls engine resumes nothing: libretls, given ticket keys,
	 * sends no ticket at all.
	 */
	if (MASTER_ENGINE_OSSL)
		ossl_set_ticket_keys(&tk);
	log_debug("session ticket keys: %u live", tk.n);
	explicit_bzero(&tk, sizeof(tk));
	return (0);
}

/* The ca process's signing channel, new with either of us. */
static int
master_ca_channel(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	ca_client_set(imsg_get_fd(imsg));
	return (0);
}

static int
master_conf_end(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	if (pending == NULL)
		return (-1);
	master_configure();
	return (0);
}

/* The auth worker's revoked certificates, through the supervisor. */
static int
master_revoked(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Revoked	*r = msg;

	if (certid_set_revoked(r->serials, r->n_serials) == -1)
		fatal("%s", __func__);
	log_debug("%zu certificates revoked", r->n_serials);
	return (0);
}

static int
master_procs(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	pb_free(self_info);
	self_info = msg;
	return (1);
}

static int
master_listener(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	listener_add(imsg_get_fd(imsg));
	return (0);
}

static int
master_worker_up(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__ProcInfo	*pi = msg;
	struct worker		*w;
	char			 name[32];
	int			 fd;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal(__func__);
	if (proc_lookup(pi->type, &w->type) == -1 || !PROC_IS_WORKER(w->type)) {
		free(w);
		return (-1);
	}
	w->instance = pi->instance;
	w->pid = pi->pid;
	w->started = pi->started;
	w->restarts = pi->restarts;
	fd = imsg_get_fd(imsg);
	(void)snprintf(name, sizeof(name), "%s.%u", proc_name(w->type),
	    w->instance);
	if (fd_nonblock(fd) == -1 || proc_chan_event(&w->chan, fd,
	    &master_from_worker, name, w, worker_closed) == -1)
		fatal("%s: channel", name);
	TAILQ_INSERT_TAIL(&workers, w, entry);
	log_debug("worker %s up, pid %d", name, (int)w->pid);
	return (0);
}

static int
master_drain_msg(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	master_drain();
	return (0);
}

static int
master_ctl_status(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Status	 st;

	status_fill(&st);
	if (proc_compose_pb(ch, IMSG_CTL_STATUS, imsg_get_id(imsg), -1,
	    &st.base) == -1 ||
	    proc_compose(ch, IMSG_CTL_END, imsg_get_id(imsg), -1, NULL, 0) == -1)
		fatal("compose status");
	status_parts_free(&st);
	return (0);
}

/* The supervisor asks whether our loop still turns. */
static int
master_ping(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	if (proc_compose(ch, IMSG_PONG, 0, -1, NULL, 0) == -1)
		fatal("compose pong");
	return (0);
}

static int
master_ctl_connections(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	ctl_show_connections(imsg_get_id(imsg));
	return (0);
}

static void
parent_closed(struct proc_chan *ch)
{
	fatalx("the supervisor went away");
}

/* A worker is less trusted: anything wrong closes its channel. */
static int
master_conn_done(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__ConnDone	*done = msg;
	struct worker		*w = ch->arg;
	struct conn		*c;

	if ((c = conn_find(done->id)) != NULL && c->worker == w &&
	    c->state == CONN_KTLS)
		conn_free(c);
	return (0);
}

/*
 * A worker's status request.  A worker has one on its way at a time,
 * and asks again only after two seconds without an answer; while it is
 * slow to take what we send it, it gets none, so that a worker that
 * asks without reading cannot make us queue replies.
 */
static int
master_status_req(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Status	 st;

	if (proc_queued(ch) >= WORKER_QUEUE_MAX) {
		log_debug("%s: status request ignored: %u messages wait for "
		    "it", ch->name, proc_queued(ch));
		return (0);
	}
	status_fill(&st);
	if (proc_compose_pb(ch, IMSG_STATUS, imsg_get_id(imsg), -1,
	    &st.base) == -1)
		log_warn("%s: status", ch->name);
	status_parts_free(&st);
	return (0);
}

static int
master_handoff_ack(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct worker	*w = ch->arg;
	uint32_t	 n;

	if (imsg_get_data(imsg, &n, sizeof(n)) == -1 || n > w->unacked)
		return (-1);
	worker_acked(w, n);
	return (0);
}

/*
 * A worker's channel closed: it left, or it sent what it must not and
 * we closed it.  A worker forgets a master whose channel closes and
 * goes on serving the others, so in the second case the supervisor is
 * told, and replaces it.
 */
static void
worker_closed(struct proc_chan *ch)
{
	struct worker		*w = ch->arg;
	Mezite__WorkerStuck	 ws = MEZITE__WORKER_STUCK__INIT;

	if (!draining && !ch->eof && !ch->gone) {
		ws.pid = w->pid;
		if (proc_compose_pb(&parent, IMSG_WORKER_CUT, 0, -1,
		    &ws.base) == -1)
			log_warn("%s: report", ch->name);
	}
	worker_remove(w);
}

static const struct proc_msg master_parent_msgs[] = {
	{ IMSG_CONF_MASTER, PROC_LEN_PB, &mezite__master_config__descriptor,
	    PROC_FD_NONE, master_conf_begin },
	/* Unpacked by the handler, which wipes the key's bytes. */
	{ IMSG_CONF_KEYPAIR, PROC_LEN_ANY, NULL,
	    PROC_FD_NONE, master_conf_keypair },
	{ IMSG_CONF_END, 0, NULL, PROC_FD_NONE, master_conf_end },
	{ IMSG_CA_CHANNEL, 0, NULL, PROC_FD_NEEDED, master_ca_channel },
	{ IMSG_TICKET_KEYS, sizeof(struct ticket_keys), NULL, PROC_FD_NONE,
	    master_ticket_keys },
	{ IMSG_PROCS, PROC_LEN_PB, &mezite__proc_info__descriptor,
	    PROC_FD_NONE, master_procs },
	{ IMSG_LISTENER, 0, NULL, PROC_FD_NEEDED, master_listener },
	{ IMSG_WORKER_UP, PROC_LEN_PB, &mezite__proc_info__descriptor,
	    PROC_FD_NEEDED, master_worker_up },
	{ IMSG_DRAIN, 0, NULL, PROC_FD_NONE, master_drain_msg },
	{ IMSG_AUTH_REVOKED, PROC_LEN_PB, &mezite__revoked__descriptor,
	    PROC_FD_NONE, master_revoked },
	{ IMSG_LOG_VERBOSE, sizeof(int), NULL, PROC_FD_NONE,
	    proc_log_verbose },
	{ IMSG_CTL_SHOW_STATUS, 0, NULL, PROC_FD_NONE, master_ctl_status },
	{ IMSG_CTL_SHOW_CONNECTIONS, 0, NULL, PROC_FD_NONE,
	    master_ctl_connections },
	{ IMSG_PING, 0, NULL, PROC_FD_NONE, master_ping },
};

static const struct proc_msg master_worker_msgs[] = {
	{ IMSG_CONN_DONE, PROC_LEN_PB, &mezite__conn_done__descriptor,
	    PROC_FD_NONE, master_conn_done },
	{ IMSG_STATUS_REQ, 0, NULL, PROC_FD_NONE, master_status_req },
	{ IMSG_HANDOFF_ACK, sizeof(uint32_t), NULL, PROC_FD_NONE,
	    master_handoff_ack },
};

static const struct proc_peer master_from_parent = {
	"the supervisor", 1, master_parent_msgs, nitems(master_parent_msgs),
	0, MASTER_MAXSIZE, 1
};

/*
 * Always read: acknowledgements must come in however many handoffs
 * wait for the worker.
 */
const struct proc_peer master_from_worker = {
	"a worker", 0, master_worker_msgs, nitems(master_worker_msgs),
	0, 0, 0
};

static void
worker_remove(struct worker *w)
{
	struct conn	*c, *tc;

	log_debug("worker %s gone", w->chan.name);
	TAILQ_FOREACH_SAFE(c, &conns, entry, tc) {
		if (c->worker != w)
			continue;
		c->worker = NULL;
		/* Its kernel sessions died with it, or will not be told of. */
		if (c->state == CONN_KTLS)
			conn_free(c);
	}
	TAILQ_REMOVE(&workers, w, entry);
	proc_chan_clear(&w->chan);
	free(w);
}

/* The worker took n more handoffs: it is alive. */
void
worker_acked(struct worker *w, uint32_t n)
{
	w->unacked -= n;
	w->waiting = master_now_ms();
	if (w->stuck) {
		log_warnx("%s takes its sessions again", w->chan.name);
		w->stuck = 0;
	}
}

/*
 * Once a second: sessions refused for want of a worker are counted in
 * the log, and a worker that has left handoffs untaken for
 * WORKER_STUCK_MS is passed over for new sessions; one that stays so
 * for WORKER_KILL_MS is reported to the supervisor, which replaces it.
 */
static void
master_tick(int fd, short event, void *arg)
{
	static const struct timeval	 tv = { 1, 0 };
	static uint64_t			 refused;
	Mezite__WorkerStuck		 ws;
	struct worker			*w;
	int64_t				 now = master_now_ms(), late;

	TAILQ_FOREACH(w, &workers, entry) {
		if (w->unacked == 0)
			continue;
		late = now - w->waiting;
		if (!w->stuck && late >= WORKER_STUCK_MS) {
			w->stuck = 1;
			log_warnx("%s has not taken a session for %lld ms "
			    "(%u waiting); passing it over", w->chan.name,
			    (long long)late, w->unacked);
		}
		if (w->stuck == 1 && late >= WORKER_KILL_MS) {
			w->stuck = 2;
			mezite__worker_stuck__init(&ws);
			ws.pid = w->pid;
			ws.waiting_ms = late;
			if (proc_compose_pb(&parent, IMSG_WORKER_STUCK, 0, -1,
			    &ws.base) == -1)
				log_warn("%s: report", w->chan.name);
		}
	}
	/* Refused sessions are logged once a second, not one by one. */
	if (mstats.route_failures > refused) {
		log_warnx("%llu sessions closed in the last second: no worker "
		    "of their type could take them",
		    (unsigned long long)(mstats.route_failures - refused));
		refused = mstats.route_failures;
	}
	source_tick(now);
	/* Paused when full: a handshake has become old enough to shed. */
	if (accept_paused && !accept_backoff && !draining && mconf != NULL &&
	    source_sheddable(now, mconf->max_connections))
		listeners_pause(0);
	evtimer_add(&tickev, &tv);
}

int64_t
master_now_ms(void)
{
	struct timeval	 tv;

	if (event_base_gettimeofday_cached(evbase, &tv) == -1)
		return (0);
	return ((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
}



/*
 * A listening socket from the supervisor.  What its connections share
 * is learnt once: its address, unless it is bound to a wildcard, and
 * whether they inherit TCP_NODELAY from it, as they do on Linux and the
 * BSDs.
 */
static void
listener_add(int fd)
{
	struct listener		*l;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	socklen_t		 len;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal(__func__);
	l->fd = fd;
	if (fd_nonblock(fd) == -1)
		fatal("%s: fd_nonblock", __func__);
	len = sizeof(l->local);
	if (getsockname(fd, (struct sockaddr *)&l->local, &len) == -1) {
		log_warn("listener: getsockname");
		l->wildcard = 1;
	} else if (l->local.ss_family == AF_INET) {
		sin = (struct sockaddr_in *)&l->local;
		l->wildcard = sin->sin_addr.s_addr == INADDR_ANY;
	} else if (l->local.ss_family == AF_INET6) {
		sin6 = (struct sockaddr_in6 *)&l->local;
		l->wildcard = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
	} else
		l->wildcard = 1;
	len = sizeof(l->nodelay);
	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &l->nodelay,
	    &len) == -1)
		l->nodelay = 0;
	event_set(&l->ev, fd, EV_READ | EV_PERSIST, master_accept, l);
	TAILQ_INSERT_TAIL(&listeners, l, entry);
	nlisteners++;
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

/*
 * A second after accept(2) failed for want of resources, or, while
 * descriptors are short, every second: descriptors may also come back
 * without a connection ending, as hand-offs queued to a worker leave.
 */
static void
accept_resume(int fd, short event, void *arg)
{
	accept_backoff = 0;
	if (!accept_paused || nconns >= mconf->max_connections)
		return;
	if (fd_room())
		listeners_pause(0);
	else
		evtimer_add(&acceptev, &accept_tv);
}

static void
fd_limit_read(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit");
	fd_limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT_MAX ?
	    UINT_MAX : (unsigned int)rl.rlim_cur;
}

/*
 * Whether a connection accepted now would have the descriptors it needs
 * up to its hand-off, so that none is dropped after its handshake for
 * want of a socket pair.  Counted are the descriptors the master holds
 * or has promised: those it started with, the listeners, a channel per
 * worker and a descriptor per hand-off queued to it; per connection its
 * socket and the end of the socket pair a relayed session keeps, none
 * for a session in the kernel, and for one still in its handshake the
 * other end of its pair too, held until the worker has it.  A new one
 * needs three, and a few stay spare.
 */
static int
fd_room(void)
{
	struct worker	*w;
	uint64_t	 n, nktls;

	if ((nktls = mstats.ktls_total - ktls_ended) > nconns)
		nktls = nconns;		/* cannot be; never count below 0 */
	n = (uint64_t)fd_base + nlisteners + 2 * (nconns - nktls) +
	    nhandshakes;
	TAILQ_FOREACH(w, &workers, entry)
		n += 1 + proc_queued(&w->chan);
	return (n + 3 + FD_SPARE <= fd_limit);
}

/*
 * Close a connection refused at accept: with a reset, so that no state
 * of it lingers here.
 */
static void
accept_refuse(int s)
{
	struct linger	 l = { 1, 0 };

	if (setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == -1)
		log_warn("SO_LINGER");
	close(s);
}

/*
 * Full, with max connections or as many descriptors as there is room
 * for: stop accepting, or, while some connections are in their
 * handshake, take one more to see whose it is.  A handshake then gives
 * way to it if source_victim() finds one (load shedding: the source
 * with the most half-open connections loses its oldest, so that one
 * source cannot keep the others out); if none does, it waits with the
 * others, one over the limit, and accepting stops until a connection
 * ends or a handshake becomes old enough to shed.
 */
static int
accept_full(void)
{
	static int64_t	 max_warned, fd_warned;
	int		 fd_short = 0;

	if (nconns >= mconf->max_connections) {
		if (time_now() - max_warned >= FD_WARN_EVERY) {
			log_warnx("max connections (%u) reached, %u in their "
			    "handshake", mconf->max_connections, nhandshakes);
			max_warned = time_now();
		}
	} else if (!fd_room()) {
		if (time_now() - fd_warned >= FD_WARN_EVERY) {
			log_warnx("open file limit (%u) reached with %u "
			    "connections, %u in their handshake", fd_limit,
			    nconns, nhandshakes);
			fd_warned = time_now();
		}
		fd_short = 1;
	} else
		return (0);
	if (nhandshakes > 0)
		return (1);
	listeners_pause(1);
	/* Resumed as connections end, or hand-offs leave. */
	if (fd_short && !evtimer_pending(&acceptev, NULL))
		evtimer_add(&acceptev, &accept_tv);
	return (-1);
}

/* Close a connection in its handshake to make room for another. */
static void
conn_shed(struct conn *c, int64_t now)
{
	char		 addr[ADDRSTRLEN];
	struct linger	 l = { 1, 0 };

	log_debug("conn %llu: %s: shed, in its handshake for %lld ms",
	    (unsigned long long)c->id, addr_str((struct sockaddr *)&c->peer,
	    addr, sizeof(addr)), (long long)(now - c->hs_since));
	if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == -1)
		log_warn("SO_LINGER");
	conn_free(c);
}

/*
 * Per connection the kernel is asked for nothing it can be spared: the
 * peer's address comes with accept4(2); the local address is the
 * listener's unless it is bound to a wildcard; TCP_NODELAY is set on the
 * connection only if the listener does not have it already.
 */
static void
master_accept(int fd, short event, void *arg)
{
	struct listener		*l = arg;
	struct sockaddr_storage	 peer;
	struct conn		*c, *v;
	socklen_t		 len;
	int64_t			 now;
	int			 s, i, on = 1, full;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		if ((full = accept_full()) == -1)
			return;
		len = sizeof(peer);
		if ((s = accept4(fd, (struct sockaddr *)&peer, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
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
				accept_backoff = 1;
				evtimer_add(&acceptev, &accept_tv);
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
		c->fd = s;
		c->state = CONN_HANDSHAKE;
		memcpy(&c->peer, &peer, sizeof(c->peer));
		now = master_now_ms();
		/* A balancer's client is counted once its header names it. */
		if (!proxy_trusted(&c->peer) && source_add(c, now) != 0) {
			accept_refuse(s);
			free(c);
			continue;
		}
		/*
		 * Ids stay unique across masters and their restarts, and
		 * name the master that made them (master.h): a worker
		 * tells the end of a kernel session to that master alone.
		 */
		c->id = CONN_ID_MAKE(self_info ? CONN_ID_ORIGIN(
		    self_info->instance, self_info->restarts) : 0, next_id++);
		c->pfd = -1;
		c->started = time_now();
		c->wtype = PROC_MAX;		/* not routed yet */
		c->fd_rd = c->pfd_rd = 1;
		if (!l->wildcard)
			memcpy(&c->local, &l->local, sizeof(c->local));
		else {
			len = sizeof(c->local);
			if (getsockname(s, (struct sockaddr *)&c->local,
			    &len) == -1)
				c->local.ss_family = AF_UNSPEC;
		}
		if (!l->nodelay && setsockopt(s, IPPROTO_TCP, TCP_NODELAY,
		    &on, sizeof(on)) == -1)
			log_warn("TCP_NODELAY");
		event_set(&c->fdev, s, 0, conn_io, c);
		evtimer_set(&c->timer, conn_timeout, c);
		TAILQ_INSERT_TAIL(&conns, c, entry);
		RB_INSERT(conn_tree, &conn_ids, c);
		if (++nconns > nconns_peak)
			nconns_peak = nconns;
		nhandshakes++;
		mstats.total++;

		/* The handshake starts when the client's first bytes come. */
		c->srv = srv;
		srv->refs++;
		if (proxy_accept(c) == -1) {
			conn_free(c);
			continue;
		}
		evtimer_add(&c->timer, handshake_tv);
		conn_set_events(c, EV_READ, 0);

		if (!full)
			continue;
		if ((v = source_victim(c, now, mconf->max_connections)) !=
		    NULL) {
			sstats.shed++;
			conn_shed(v, now);
			continue;
		}
		listeners_pause(1);
		if (fd_room() == 0 && !evtimer_pending(&acceptev, NULL))
			evtimer_add(&acceptev, &accept_tv);
		return;
	}
}

/*
 * The engine's side of a connection, made once the client has sent
 * something: until then a connection holds no TLS state, and a flood of
 * connections that send nothing costs little more than their sockets.
 */
static int
conn_engine(struct conn *c)
{
	if (c->srv->ossl != NULL) {
		if ((c->ssl = ossl_accept(c->srv->ossl, c->fd)) == NULL) {
			log_warnx("SSL_new: %s", ossl_error());
			return (-1);
		}
	} else if (tls_accept_socket(c->srv->tls, &c->tls, c->fd) == -1) {
		log_warnx("tls_accept_socket: %s", tls_error(c->srv->tls));
		return (-1);
	}
	return (0);
}

/*
 * The client's address is known: the TCP peer's (src NULL), or the one
 * a trusted balancer's PROXY header names, with the address the client
 * called (dst).  This is the one place it is set, once per connection,
 * before the TLS handshake: the logs, the handoff's metadata and show
 * connections see it from here on, and the per-source limits count a
 * balancer's client from here (others from accept).  -1: close the
 * connection.
 */
int
conn_set_peer(struct conn *c, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst)
{
	char	 addr[ADDRSTRLEN], lb[ADDRSTRLEN];

	if (src != NULL) {
		c->peer = *src;
		c->local = *dst;
		log_debug("conn %llu: %s: via %s", (unsigned long long)c->id,
		    addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr)),
		    addr_str((struct sockaddr *)&c->balancer, lb, sizeof(lb)));
	}
	if (c->balancer.ss_family != AF_UNSPEC &&
	    source_add(c, master_now_ms()) != 0)
		return (-1);
	return (0);
}

void
conn_handshake(struct conn *c)
{
	char	 addr[ADDRSTRLEN];

	if (c->pp != NULL) {
		switch (proxy_read(c)) {
		case 0:
			return;
		case -1:
			mstats.handshake_failures++;
			conn_free(c);
			return;
		}
	}
	if (c->ssl == NULL && c->tls == NULL && conn_engine(c) == -1) {
		conn_free(c);
		return;
	}
	switch (eng_handshake(c)) {
	case TLS_WANT_POLLIN:
		conn_set_events(c, EV_READ, 0);
		return;
	case TLS_WANT_POLLOUT:
		conn_set_events(c, EV_WRITE, 0);
		return;
	case 0:
		nhandshakes--;
		if (eng_resumed(c))
			log_debug("conn %llu: %s: session resumed",
			    (unsigned long long)c->id, addr_str((struct
			    sockaddr *)&c->peer, addr, sizeof(addr)));
		source_handshake_done(c);
		c->state = CONN_RELAY;
		evtimer_del(&c->timer);
		conn_route(c);
		return;
	default:
		mstats.handshake_failures++;
		log_debug("conn %llu: %s: handshake failed: %s",
		    (unsigned long long)c->id,
		    addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr)),
		    eng_error(c));
		conn_free(c);
		return;
	}
}


static int
conn_cmp(struct conn *a, struct conn *b)
{
	return (a->id < b->id ? -1 : a->id > b->id);
}

struct conn *
conn_find(uint64_t id)
{
	struct conn	 key;

	key.id = id;
	return (RB_FIND(conn_tree, &conn_ids, &key));
}

void
conn_free(struct conn *c)
{
	char	 addr[ADDRSTRLEN];

	if (c->state == CONN_HANDSHAKE)
		nhandshakes--;
	else if (c->state == CONN_KTLS)
		ktls_ended++;
	source_del(c);
	if (c->wtype != PROC_MAX) {
		mstats.route_active[c->wtype]--;
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
	free(c->pp);
	free(c->alpn);
	free(c->sni);
	TAILQ_REMOVE(&conns, c, entry);
	RB_REMOVE(conn_tree, &conn_ids, c);
	free(c);
	nconns--;

	/* Half of many connections have gone: give their memory back. */
	if (nconns_peak >= TRIM_MIN && nconns <= nconns_peak / 2 &&
	    !evtimer_pending(&trimev, NULL))
		evtimer_add(&trimev, &trim_tv);

	if (accept_paused && !accept_backoff &&
	    nconns < mconf->max_connections && fd_room())
		listeners_pause(0);
	if (draining && nconns == 0) {
		log_debug("drained");
		exit(0);
	}
}

/*
 * Thousands of connections that came and went together, as in a flood
 * of handshakes left to time out, leave the heap fragmented: the chunks
 * they held are free, but glibc's malloc keeps the pages they lie in
 * (5,000 half-done handshakes left 206 MB behind, and lowering the mmap
 * threshold only made it 143 MB).  malloc_trim() gives every free page
 * back.  It runs a second after the number of connections has fallen to
 * half its peak, and again each time it halves since, down to a few
 * hundred: what is left untrimmed is never more than these held.
 */
static void
mem_trim(int fd, short event, void *arg)
{
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
	nconns_peak = nconns;
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
	st->connections_total = mstats.total;
	st->connections_active = nconns;
	st->handshakes_active = nhandshakes;
	st->handshake_failures = mstats.handshake_failures;
	st->route_failures = mstats.route_failures;
	st->bytes_in = mstats.bytes_in;
	st->bytes_out = mstats.bytes_out;
	st->draining = draining;
	st->ktls_total = mstats.ktls_total;
	st->relay_total = mstats.relay_total;
	st->ktls = mconf != NULL && mconf->ktls;
	st->source_refused = sstats.refused_conns + sstats.refused_rate;
	st->shed = sstats.shed;
	st->sources = sstats.sources;

	if ((routes = calloc(PROC_MAX, sizeof(*routes))) == NULL ||
	    (rs = calloc(PROC_MAX, sizeof(*rs))) == NULL)
		fatal(__func__);
	for (t = PROC_HTTPS; PROC_IS_WORKER(t); t++) {
		mezite__route_stats__init(&rs[i]);
		rs[i].worker = (char *)proc_name(t);
		rs[i].total = mstats.route_total[t];
		rs[i].active = mstats.route_active[t];
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
	pi[i].instance = self_info ? self_info->instance : 0;
	pi[i].pid = getpid();
	pi[i].started = master_started;
	pi[i].restarts = self_info ? self_info->restarts : 0;
	pi[i].connections = nconns;
	pi[i].total = mstats.total;
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
		pi[i].total = w->total;
		procs[i] = &pi[i];
		i++;
	}
	st->n_procs = i;
	st->procs = procs;
}

static void
ctl_show_connections(uint32_t peerid)
{
	Mezite__ConnInfo	 ci;
	struct pb_addr		 client, balancer;
	struct conn		*c;

	TAILQ_FOREACH(c, &conns, entry) {
		mezite__conn_info__init(&ci);
		ci.id = c->id;
		addr_to_pb((struct sockaddr *)&c->peer, &client);
		ci.client = &client.pb;
		if (c->balancer.ss_family != AF_UNSPEC) {
			addr_to_pb((struct sockaddr *)&c->balancer, &balancer);
			ci.balancer = &balancer.pb;
		}
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
		if (proc_compose_pb(&parent, IMSG_CTL_CONN, peerid, -1,
		    &ci.base) == -1)
			fatal("%s: compose", __func__);
	}
	if (proc_compose(&parent, IMSG_CTL_END, peerid, -1, NULL, 0) == -1)
		fatal("%s: compose", __func__);
}
