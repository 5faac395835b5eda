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

#include "imsg.h"

enum proc_type {
	PROC_SUPERVISOR,
	PROC_MASTER,
	PROC_HTTPS,
	PROC_AUTH,
	PROC_SSH,
	PROC_TUNNEL,
	PROC_MAX
};

/* Worker types are the processes a route can name. */
#define PROC_IS_WORKER(t)	((t) >= PROC_HTTPS && (t) < PROC_MAX)

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
	IMSG_MASTER_CHANNEL,	/* fd: channel to the master */
	IMSG_DRAIN,		/* stop taking work, exit when idle */
	IMSG_LOG_VERBOSE,	/* int */
	IMSG_PROCS,		/* ProcInfo: the master's own, for status */
	/* master -> worker */
	IMSG_HANDOFF,		/* fd: the session; ConnMeta */
	/* worker -> master */
	IMSG_CONN_DONE,		/* ConnDone */
	IMSG_STATUS_REQ,
	IMSG_STATUS,		/* Status */
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
	IMSG_MAX
};

/* An imsg channel driven by libevent. */
struct imsgev {
	struct imsgbuf	 ibuf;
	struct event	 ev;
	void		(*handler)(int, short, void *);
	void		*data;
	short		 events;
};

const char	*proc_name(enum proc_type);
int		 proc_lookup(const char *, enum proc_type *);
void		 proc_drop(const char *, const char *, const char *);

int		 imsgev_init(struct imsgev *, int, void *,
		    void (*)(int, short, void *));
void		 imsgev_add(struct imsgev *);
int		 imsgev_io(struct imsgev *, short);
int		 imsgev_compose(struct imsgev *, uint32_t, uint32_t, int,
		    const void *, size_t);
void		 imsgev_clear(struct imsgev *);

#endif /* MEZITE_PROC_H */
