/*
 * The master process: what its files share.
 *
 *	master.c	the process: configuration, channels, accept,
 *			handshake, status
 *	engine.c	one interface over the TLS engines (OpenSSL's libssl
 *			in tls_ossl.c, or libtls)
 *	handoff.c	routing a session to a worker, its metadata, and the
 *			hand-off itself, in the kernel or relayed
 *	relay.c		the relay between a TLS session and a worker
 *	source.c	connections by their source address: per-source
 *			limits, and which handshake to shed when full
 */

#ifndef MEZITE_MASTER_H
#define MEZITE_MASTER_H

#include <sys/types.h>
#include <sys/queue.h>
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif
#include <sys/tree.h>
#include <sys/socket.h>

#include <event.h>
#include <stdint.h>
#include <tls.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mezited.h"

#define WORKER_QUEUE_MAX	256	/* handoffs waiting: prefer another */
#define WORKER_QUEUE_HARD	4096	/* ...and beyond this, refuse */
#define WORKER_STUCK_MS		2000	/* handoffs untaken: pass it over */
#define WORKER_KILL_MS		10000	/* ...and have it replaced */

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
	uint64_t		 total;		/* sessions handed to it */
	struct proc_chan	 chan;
	uint32_t		 unacked;	/* handoffs not yet taken */
	int64_t			 waiting;	/* since when, in ms */
	int			 stuck;		/* passed over */
};
TAILQ_HEAD(workers, worker);

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

struct source;

/*
 * A connection's id (CONN_ID_MAKE in meta.h), 64 bits:
 *
 *	63..56	the master's instance
 *	55..32	its restart count, modulo 2^24
 *	31..0	a serial number, from 1, of this master process
 *
 * The top 32 bits are the id's origin: unique across masters and their
 * restarts, so that an id never names two sessions, and a worker knows
 * which master to tell that a kernel session has ended.
 */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	RB_ENTRY(conn)		 node;		/* by id */
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
	struct sockaddr_storage	 peer;		/* client: conn_set_peer() */
	struct sockaddr_storage	 local;
	struct sockaddr_storage	 balancer;	/* PROXY protocol: TCP peer */
	uint8_t			*pp;		/* its header, while read */
	size_t			 pplen;
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
	/* source.c */
	struct source		*src;
	TAILQ_ENTRY(conn)	 hs_all;	/* handshakes, oldest first */
	TAILQ_ENTRY(conn)	 hs_src;	/* ...of its source */
	int			 hs_queued;	/* on those two */
	int64_t			 hs_since;	/* ms */
};
TAILQ_HEAD(conns, conn);
TAILQ_HEAD(conns_hs, conn);
RB_HEAD(conn_tree, conn);

/* Counters for status. */
struct master_stats {
	uint64_t		 total;
	uint64_t		 handshake_failures;
	uint64_t		 route_failures;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	uint64_t		 ktls_total;
	uint64_t		 relay_total;
	uint64_t		 route_total[PROC_MAX];
	unsigned int		 route_active[PROC_MAX];
};

/* Counters of source.c, for status. */
struct source_stats {
	uint64_t		 refused_conns;	/* max connections per source */
	uint64_t		 refused_rate;	/* max connection rate */
	uint64_t		 shed;		/* handshakes closed when full */
	unsigned int		 sources;	/* in the table */
};

/* master.c */
extern const struct proc_peer	 master_from_worker;
extern struct workers		 workers;
extern struct master_stats	 mstats;
extern const struct route_rule	*rules;
extern size_t			 nrules;
extern enum proc_type		 default_worker;
extern const struct timeval	*handshake_tv;
extern const struct timeval	*idle_tv;
void		 conn_handshake(struct conn *);
int		 conn_set_peer(struct conn *, const struct sockaddr_storage *,
		    const struct sockaddr_storage *);
void		 conn_free(struct conn *);
struct conn	*conn_find(uint64_t);
void		 worker_acked(struct worker *, uint32_t);
int64_t		 master_now_ms(void);
void		 srvctx_unref(struct srvctx *);

/*
 * eng_read(): the client's stream ended without close_notify, an abort
 * (0 is its close_notify).  Apart from TLS_WANT_POLLIN and _POLLOUT.
 */
#define ENG_ABORTED	(-4)

/* engine.c */
int		 eng_handshake(struct conn *);
ssize_t		 eng_read(struct conn *, void *, size_t);
ssize_t		 eng_write(struct conn *, const void *, size_t);
int		 eng_drained(struct conn *);
int		 eng_flush(struct conn *);
int		 eng_close(struct conn *);
const char	*eng_error(struct conn *);
int		 eng_names(struct conn *);
const char	*eng_version(struct conn *);
const char	*eng_cipher(struct conn *);
int		 eng_resumed(struct conn *);
X509		*eng_peer(struct conn *);

/* handoff.c */
void		 conn_route(struct conn *);

/* proxy.c */
void		 proxy_configure(Mezite__Network **, size_t);
int		 proxy_trusted(const struct sockaddr_storage *);
int		 proxy_accept(struct conn *);
int		 proxy_read(struct conn *);
/* source.c */
#define SOURCE_OVER_CONNS	1
#define SOURCE_OVER_RATE	2
extern struct source_stats	 sstats;
void		 source_limits(unsigned int, unsigned int);
int		 source_add(struct conn *, int64_t);
void		 source_del(struct conn *);
void		 source_handshake_done(struct conn *);
struct conn	*source_victim(struct conn *, int64_t, unsigned int);
int		 source_sheddable(int64_t, unsigned int);
void		 source_tick(int64_t);

/* relay.c */
void		 conn_relay(struct conn *);
void		 conn_io(int, short, void *);
void		 conn_timeout(int, short, void *);
void		 conn_set_events(struct conn *, short, short);

#endif /* MEZITE_MASTER_H */
