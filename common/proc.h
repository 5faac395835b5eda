/*
 * The process table and the messages processes exchange.
 */

#ifndef MEZITE_PROC_H
#define MEZITE_PROC_H

#include <sys/types.h>

#include <event.h>

#ifndef __dead
#define __dead		__attribute__((__noreturn__))
#endif

#include <protobuf-c/protobuf-c.h>

#include "imsg.h"

enum proc_type {
	PROC_SUPERVISOR,
	PROC_MASTER,
	PROC_HTTPS,
	PROC_AUTH,
	PROC_SSH,
	PROC_TUNNEL,
	PROC_CA,		/* holds the TLS private keys, signs */
	PROC_MAX
};

/* Worker types are the processes a route can name. */
#define PROC_IS_WORKER(t)	((t) >= PROC_HTTPS && (t) < PROC_CA)

/* Fixed descriptors in every child. */
#define PROC_PARENT_FD		3	/* imsg channel to the supervisor */
#define PROC_LOG_FD		4	/* log datagrams to the supervisor */

enum imsg_type {
	IMSG_NONE,
	/* supervisor -> child */
	IMSG_CONF_MASTER,	/* MasterConfig */
	IMSG_CONF_KEYPAIR,	/* Keypair */
	IMSG_CONF_END,		/* apply what came since IMSG_CONF_MASTER */
	IMSG_CONF_WORKER,	/* WorkerConfig */
	IMSG_LISTENER,		/* fd: a listening socket */
	IMSG_WORKER_UP,		/* fd: channel to a worker; ProcInfo */
	IMSG_MASTER_CHANNEL,	/* ProcInfo: the master; fd: a channel to it */
	IMSG_DRAIN,		/* stop taking work, exit when idle */
	IMSG_LOG_VERBOSE,	/* int */
	IMSG_PROCS,		/* ProcInfo: the master's own, for status */
	/* master -> worker */
	IMSG_HANDOFF,		/* fd: the session; ConnMeta */
	/* worker -> master */
	IMSG_CONN_DONE,		/* ConnDone */
	IMSG_STATUS_REQ,
	IMSG_STATUS,		/* Status */
	IMSG_HANDOFF_ACK,	/* uint32_t: handoffs taken since the last */
	/* master -> supervisor */
	IMSG_WORKER_STUCK,	/* WorkerStuck: takes no handoffs */
	IMSG_WORKER_CUT,	/* WorkerStuck: its channel closed; pid only */
	/* auth worker -> supervisor -> master */
	IMSG_AUTH_CA,		/* AuthCA: the CAs' certificates */
	IMSG_AUTH_REVOKED,	/* Revoked: serials refused at the handshake */
	/* supervisor <-> auth worker; peerid names the control client */
	IMSG_ADMIN,		/* AdminRequest */
	IMSG_ADMIN_REPLY,	/* AdminReply */
	/* control, forwarded by the supervisor; peerid names the client */
	IMSG_CTL_SHOW_STATUS,
	IMSG_CTL_SHOW_WORKERS,
	IMSG_CTL_SHOW_CONNECTIONS,
	IMSG_CTL_RELOAD,
	IMSG_CTL_LOG_VERBOSE,	/* int */
	IMSG_CTL_STATUS,	/* Status */
	IMSG_CTL_PROC,		/* ProcInfo */
	IMSG_CTL_CONN,		/* ConnInfo */
	IMSG_CTL_OK,
	IMSG_CTL_FAIL,		/* CtlError */
	IMSG_CTL_END,
	IMSG_CTL_ADMIN,		/* AdminRequest */
	IMSG_CTL_ADMIN_REPLY,	/* AdminReply */
	/* any process -> tunnel worker; peerid is the asker's cookie */
	IMSG_TUNNEL_DIAL,	/* DialRequest */
	IMSG_TUNNEL_DIAL_REPLY,	/* DialReply; fd: the stream, if DIAL_OK */
	/* tunnel worker -> supervisor -> auth worker */
	IMSG_NODE_STATE,	/* NodeState: a node came or went */
	IMSG_NODE_RESYNC,	/* supervisor -> tunnel: send every node */
	/* control, forwarded to the tunnel workers */
	IMSG_CTL_SHOW_NODES,
	IMSG_CTL_NODES,		/* NodeList, in parts */
	IMSG_CTL_CONNECT,	/* DialRequest */
	IMSG_CTL_CONNECT_REPLY,	/* DialReply; fd: the stream, if DIAL_OK */
	/*
	 * ssh worker -> supervisor -> auth worker, and back; peerid is the
	 * asker's cookie.  Every decision is the auth worker's.
	 */
	IMSG_SSH_AUTH,		/* SshAuthRequest */
	IMSG_SSH_AUTH_REPLY,	/* SshReply */
	IMSG_SSH_ACCESS,	/* SshAccessRequest */
	IMSG_SSH_ACCESS_REPLY,	/* SshReply */
	IMSG_AUDIT,		/* AuditEvent: stored by the auth worker */
	/* control, forwarded to the ssh workers */
	IMSG_CTL_SHOW_SESSIONS,
	IMSG_CTL_SESSIONS,	/* SessionList, in parts */
	IMSG_CTL_KILL_SESSION,	/* uint64_t: the session's id */
	/* ssh session process -> its worker */
	IMSG_SSH_SESSION,	/* SshSession: what it is doing now */
	/* supervisor -> master, ca: fd, the master's signing channel */
	IMSG_CA_CHANNEL,
	/* supervisor -> master: struct ticket_keys, on a wiped channel */
	IMSG_TICKET_KEYS,
	/* supervisor -> master, and its answer: the master's loop turns */
	IMSG_PING,
	IMSG_PONG,
	IMSG_MAX
};

/*
 * The privsep framework.
 *
 * Every pair of processes talks over a channel: an imsgbuf on a
 * socketpair, and the table of what the process accepts from that kind
 * of peer.  One dispatch loop serves every channel of every process:
 * it checks each message against the table (type, payload size or
 * protobuf type, descriptor) before a handler sees it, and has one rule
 * for a peer that misbehaves or goes away.  A bad message from a more
 * privileged peer is fatal; from a less privileged one it closes that
 * channel.  A channel is closed after the loop that found it dead, never
 * inside it: its owner's closed() runs from the event loop.  A peer that
 * leaves is no misbehaviour: what it sent before it left is done, what
 * is owed to it is lost, and then the channel closes.
 *
 * A full queue is back-pressure: while more than the peer's high-water
 * mark of messages wait to be sent on a channel, the loop takes no new
 * requests from it and stops reading it, so the peer is slowed by its
 * own socket, not disconnected.
 */

struct proc_chan;

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define PROC_LEN_PB	((size_t)-1)	/* payload: the protobuf message pb */
#define PROC_LEN_ANY	((size_t)-2)	/* the handler checks the payload */
#define PROC_FD_NONE	0
#define PROC_FD_NEEDED	1
#define PROC_FD_ANY	2		/* the handler checks */
/*
 * With PROC_FD_NEEDED or PROC_FD_ANY: if the descriptor was lost on the
 * way in (we had no descriptor left for it), the handler still gets the
 * message, with none, and imsg_get_fd_lost() true.  Without it, such a
 * message is refused like one that came without its descriptor.
 */
#define PROC_FD_LOSSY	0x10

struct proc_msg {
	uint32_t		 type;
	size_t			 len;		/* exact payload size, or PROC_LEN_PB */
	const ProtobufCMessageDescriptor *pb;
	int			 fd;		/* PROC_FD_* */
	/*
	 * Returns -1 if the message is wrong in a way the table cannot
	 * say, 1 if it keeps the unpacked payload (and frees it later),
	 * 0 otherwise.
	 */
	int			(*handler)(struct proc_chan *, struct imsg *,
				    void *);
};

/* What a process accepts from one kind of peer. */
struct proc_peer {
	const char		*name;
	int			 trusted;	/* more privileged than we are */
	const struct proc_msg	*msgs;
	size_t			 nmsgs;
	uint32_t		 highwater;	/* queued messages: pause */
	uint32_t		 maxsize;	/* largest message, 0: default */
	int			 fdpass;
};

struct proc_chan {
	struct imsgbuf		 ibuf;
	const struct proc_peer	*peer;
	char			 name[48];	/* for the log: "https.0" */
	void			*arg;		/* the owner's */
	/* The channel is dead and out of the loop: free it. */
	void			(*closed)(struct proc_chan *);
	/* Event loop glue: watch for what the channel wants now. */
	void			(*arm)(struct proc_chan *);
	int			 dead;
	int			 eof;
	int			 gone;		/* the peer left: sends are lost */
	int			 hold;		/* owner: take no requests now */
	int			 dispatching;
	/* libevent glue */
	struct event		 ev;
	short			 events;
	struct event		 deadev;
};

const char	*proc_name(enum proc_type);
int		 proc_lookup(const char *, enum proc_type *);
const char	*imsg_name(uint32_t);
void		 proc_drop(const char *, const char *, const char *);

int		 proc_chan_init(struct proc_chan *, int, const struct proc_peer *,
		    const char *, void *, void (*)(struct proc_chan *));
void		 proc_chan_io(struct proc_chan *, int, int);
void		 proc_chan_kill(struct proc_chan *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
void		 proc_chan_clear(struct proc_chan *);
int		 proc_chan_wants_write(struct proc_chan *);
int		 proc_chan_wants_read(struct proc_chan *);
int		 proc_compose(struct proc_chan *, uint32_t, uint32_t, int,
		    const void *, size_t);
int		 proc_compose_pb(struct proc_chan *, uint32_t, uint32_t, int,
		    const ProtobufCMessage *);
uint32_t	 proc_queued(struct proc_chan *);
int		 proc_log_verbose(struct proc_chan *, struct imsg *, void *);

/* The same channel driven by libevent. */
int		 proc_chan_event(struct proc_chan *, int,
		    const struct proc_peer *, const char *, void *,
		    void (*)(struct proc_chan *));
void		 proc_chan_event_watch(struct proc_chan *);

#endif /* MEZITE_PROC_H */
