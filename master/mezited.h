/*
 * mezited: supervisor, master and configuration.
 */

#ifndef MEZITED_H
#define MEZITED_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>

#include "proc.h"
#include "mezite.pb-c.h"


#define MEZITED_VERSION		"0.1"
#define CONF_FILE		"/etc/mezite/mezited.conf"
#define CONTROL_SOCKET		"/var/run/mezited.sock"
#define STATE_DIR		"/var/mezite"
#define DEFAULT_PORT		443
#define DEFAULT_USER		"_mezite"
#define CA_USER			"_mezca"	/* the ca process's */
#define DEFAULT_CHROOT		"/var/empty"
#define DEFAULT_PREFORK		2
#define PREFORK_MAX		64
#define TIMEOUT_HANDSHAKE	10
#define TIMEOUT_IDLE		300
#define TIMEOUT_DRAIN		30
#define TIMEOUT_MAX		86400
#define MAX_CONNECTIONS		10000
#define MAX_CONNECTIONS_LIMIT	1000000
#define MAX_CONN_PER_SOURCE	1000	/* a NAT'd office stays below */
#define CONN_RATE_PER_SOURCE	200	/* new connections a second */
#define TLS_FILE_MAX		(64 * 1024)	/* a PEM file we read */
#define TLS_GROUPS_DEFAULT	"X25519:P-256:P-384"	/* no finite field */

/* The https worker's limits: see mezited.conf(5). */
#define BODY_LIMIT		(64LL << 20)	/* one request body */
#define BODY_LIMIT_MIN		(1LL << 10)
#define BODY_LIMIT_MAX		(64LL << 30)
#define BODY_MEMORY		(16LL << 20)	/* bodies held, per worker */
#define BODY_MEMORY_MIN		(8LL << 10)
#define BODY_MEMORY_MAX		(4LL << 30)
#define MAX_STREAMS		32		/* per HTTP/2 connection */
#define MAX_STREAMS_LIMIT	100		/* what libh2o allows */
#define STATUS_ALLOW_MAX	256		/* networks in the list */

/* The auth worker: see mezited.conf(5). */
#define AUTH_PREFORK		1
#define AUTH_DIR		"auth"		/* in the state directory */
#define CERT_TTL		(12 * 3600)	/* seconds */
#define CERT_TTL_MIN		60
#define CERT_TTL_MAX		(30 * 86400)
/* Tunnels: a ping every KEEPALIVE s, and one silent that long is dead. */
#define KEEPALIVE_INTERVAL	15
#define KEEPALIVE_TIMEOUT	45
#define KEEPALIVE_MIN		1
#define KEEPALIVE_MAX		3600
#define KEEPALIVE_TIMEOUT_MAX	(3 * KEEPALIVE_MAX)
#define REVOKED_MAX		4096		/* unexpired revoked serials */
/* The ssh worker: see mezited.conf(5). */
#define SSH_PREFORK		1
#define SSH_DIR			"ssh"		/* in the state directory */
#define SSH_SESSIONS		256		/* session processes, per worker */
#define SSH_SESSIONS_LIMIT	16384

/*
 * The tunnel worker: one, since the registry of nodes lives in one
 * worker (a dial goes to the worker that holds the node).
 */
#define TUNNEL_PREFORK		1

struct listen_addr {
	TAILQ_ENTRY(listen_addr) entry;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	/*
	 * The supervisor's: a socket per master, in the SO_REUSEPORT
	 * group of the address, or one socket all masters share.
	 */
	int			 fds[PREFORK_MAX];
	int			 nfds;
};
TAILQ_HEAD(listen_addrs, listen_addr);

struct keypair {
	TAILQ_ENTRY(keypair)	 entry;
	char			*name;
	char			*cert_file;
	char			*key_file;
	uint8_t			*cert;		/* file contents */
	size_t			 cert_len;
	uint8_t			*key;		/* secret: wiped on free */
	size_t			 key_len;
};
TAILQ_HEAD(keypairs, keypair);

struct route {
	TAILQ_ENTRY(route)	 entry;
	char			*alpn;		/* NULL: any */
	char			*sni;		/* NULL: any */
	enum proc_type		 worker;
};
TAILQ_HEAD(routes, route);

/* A rule as route_select() sees it. */
struct route_rule {
	const char		*alpn;
	const char		*sni;
	enum proc_type		 worker;
};

/* A network allowed to see the status resources. */
struct status_net {
	int			 family;	/* AF_INET or AF_INET6 */
	uint8_t			 addr[16];	/* network order */
	unsigned int		 prefix;	/* length in bits */
};

/*
 * A static target of the ssh workers: a host reached by address, not
 * through a node's mezd.  Numeric, as the chrooted worker resolves no
 * names.
 */
#define SSH_TARGETS_MAX		64
#define SSH_TARGET_NAME_MAX	64
struct ssh_target {
	char			 name[SSH_TARGET_NAME_MAX + 1];
	char			 address[INET6_ADDRSTRLEN];
	unsigned int		 port;
};

struct proc_conf {
	char			*user;
	char			*chroot;
	char			*user_at;	/* "file:line" set, or NULL */
	char			*chroot_at;
	int			 prefork;	/* the master's 0: auto */
	char			*root;		/* https: static files */
	int64_t			 body_limit;	/* https: bytes */
	int64_t			 body_memory;	/* https: bytes */
	unsigned int		 max_streams;	/* https */
	struct status_net	*status_allow;	/* https */
	size_t			 nstatus_allow;
	unsigned int		 cert_ttl;	/* auth: seconds */
	unsigned int		 keepalive;	/* tunnel: seconds */
	unsigned int		 keepalive_timeout; /* tunnel: seconds */
	unsigned int		 max_sessions;	/* ssh */
	struct ssh_target	*targets;	/* ssh */
	size_t			 ntargets;
};

enum ktls_mode {
	KTLS_AUTO,		/* when the kernel supports it */
	KTLS_YES,		/* required: refuse to start without it */
	KTLS_NO,
};

/* Another cluster whose proxies may open mezite-cluster-tunnel. */
#define CLUSTERS_MAX		64
#define CLUSTER_NAME_MAX	64
struct trusted_cluster {
	char			*name;
	char			*ca_file;
	uint8_t			*ca;		/* PEM */
	size_t			 ca_len;
};

struct mezited_conf {
	char			*path;
	struct listen_addrs	 listeners;
	struct keypairs		 keypairs;
	struct routes		 routes;
	enum proc_type		 default_worker;
	char			*client_ca_file;
	uint8_t			*client_ca;
	size_t			 client_ca_len;
	struct trusted_cluster	 clusters[CLUSTERS_MAX];
	char			*cluster_names[CLUSTERS_MAX];
	size_t			 nclusters;
	char			*tls_protocols;
	char			*tls_ciphers;
	char			*tls_groups;
	int			 tls_tickets;
	unsigned int		 ticket_lifetime; /* seconds a key seals */
	unsigned int		 handshake_timeout;
	unsigned int		 idle_timeout;
	unsigned int		 drain_timeout;
	unsigned int		 max_connections;
	unsigned int		 max_conn_per_source;
	unsigned int		 conn_rate_per_source;
	struct proc_conf	 procs[PROC_MAX];
	char			*state_dir;
	char			*control_socket;
	char			*control_group;
	enum ktls_mode		 ktls;
	int			 ktls_on;	/* wanted, and the kernel can */
	struct status_net	*proxy_from;	/* PROXY protocol balancers */
	size_t			 nproxy_from;
	int			 verbose;
};

/* parse.y */
struct mezited_conf	*parse_config(const char *);
int			 cmdline_symset(char *);
void			 parse_set_resolve(int);

/* The master's configuration as the messages that carry it. */
struct conf_pb {
	Mezite__MasterConfig	 mc;
	Mezite__Route		*routes;
	Mezite__Route		**rp;
	Mezite__Keypair		*kp;
	Mezite__Keypair		**kpp;
	size_t			 nkp;
	char			*alpn;
	Mezite__TrustedCluster	*tc;
	Mezite__TrustedCluster	**tcp;
	uint8_t			*cas;		/* client_ca and clusters' */
	Mezite__Network		*pf;		/* proxy_from */
	Mezite__Network		**pfp;
};

/* config.c */
struct mezited_conf	*config_new(void);
void			 config_free(struct mezited_conf *);
int			 config_load_pem(const char *, int, uint8_t **,
			    size_t *, char *, size_t);
void			 config_builtin_routes(struct mezited_conf *);
void			 config_state_dirs(struct mezited_conf *);
int			 config_proc_available(enum proc_type);
int			 config_check(struct mezited_conf *);
void			 config_master_pb(struct mezited_conf *, int64_t,
			    struct conf_pb *);
void			 config_master_pb_free(struct conf_pb *);
void			 config_worker_pb(struct mezited_conf *, enum proc_type,
			    Mezite__WorkerConfig *, Mezite__Network *,
			    Mezite__Network **);
void			 listen_addr_close(struct listen_addr *);
int			 config_proc_changed(struct proc_conf *,
			    struct proc_conf *);
int			 config_worker_changed(enum proc_type,
			    struct mezited_conf *, struct mezited_conf *);
int			 config_listeners_same(struct mezited_conf *,
			    struct mezited_conf *);

/* printconf.c */
void			 print_config(FILE *, struct mezited_conf *);

/* route.c */
enum proc_type		 route_select(const struct route_rule *, size_t,
			    enum proc_type, const char *, const char *);
int			 route_sni_match(const char *, const char *);
size_t			 route_alpn_list(const struct route_rule *, size_t,
			    char *, size_t);

/* Process entry points: role, then user and chroot to drop to. */
__dead void		 master(const char *, const char *);
__dead void		 https(unsigned int, const char *, const char *);
__dead void		 auth(unsigned int, const char *, const char *);
__dead void		 ssh(unsigned int, const char *, const char *);
__dead void		 tunnel(unsigned int, const char *, const char *);


/* engine.c */
struct tls		*master_tls_build(const Mezite__MasterConfig *,
			    Mezite__Keypair **, size_t, char *, size_t);

/* control.c: the control socket, served by the supervisor */
/* Control clients' ids never have it; workers' requests always do. */
#define CTL_ID_WORKER		0x80000000U

struct control_cb {
	/* Pass a request on; the pid of the process to answer, or 0. */
	pid_t	(*forward)(uint32_t, uint32_t, const void *, size_t);
	pid_t	(*admin)(uint32_t, Mezite__AdminRequest *);
	void	(*workers)(uint32_t);
	int	(*reload)(void);
	void	(*verbose)(int);
	/* Tunnel workers' requests: the pid of one asked, or 0. */
	pid_t	(*nodes)(uint32_t);
	pid_t	(*connect)(uint32_t, Mezite__DialRequest *);
	/* ssh workers' requests: the pid of one asked, or 0. */
	pid_t	(*sessions)(uint32_t);
	pid_t	(*kill)(uint32_t, uint64_t);
};
int			 control_init(const char *, const char *);
void			 control_listen(const struct control_cb *);
void			 control_reply(uint32_t, uint32_t, const void *,
			    size_t);
void			 control_reply_pb(uint32_t, uint32_t,
			    const ProtobufCMessage *);
void			 control_reply_fd(uint32_t, uint32_t, const void *,
			    size_t, int);
void			 control_waiting(uint32_t, pid_t);
void			 control_cleanup(const char *);
void			 control_gone(pid_t);

#endif /* MEZITED_H */
