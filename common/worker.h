/*
 * The worker runtime: what every worker process shares, whatever event
 * loop it runs.  The loop watches the channels the runtime gives it,
 * calls proc_chan_io() when one is ready, and installs the channel's
 * arm() so that it knows what to wait for.
 */

#ifndef MEZITE_WORKER_H
#define MEZITE_WORKER_H

#include <sys/types.h>

#include "meta.h"
#include "proc.h"

#define WORKER_MASTERS_MAX	64	/* master channels at once */

struct worker_cb {
	/* The configuration, before any session; freed after the call. */
	void	(*configure)(const Mezite__WorkerConfig *);
	/* A new channel to watch; set its arm(). */
	void	(*watch)(struct proc_chan *);
	/* The channel is going: stop watching it. */
	void	(*unwatch)(struct proc_chan *);
	/* A session: the callee owns fd and meta (mezite__conn_meta__free). */
	void	(*handoff)(int, Mezite__ConnMeta *);
	/*
	 * The masters' status, summed over every master (see worker.c);
	 * st is freed after the call.
	 */
	void	(*status)(const Mezite__Status *);
	/* Stop taking sessions; exit once the last one has ended. */
	void	(*drain)(void);
	/* What else this kind of worker takes from the supervisor. */
	const struct proc_msg	*parent_msgs;
	size_t			 nparent_msgs;
};

void	 worker_init(enum proc_type, unsigned int, const char *,
	    const char *, const struct worker_cb *);
int	 worker_status_request(void);
struct proc_chan *worker_parent(void);
void	 worker_conn_done(uint64_t);
int	 worker_terminated(void);
__dead void worker_exit(void);

#endif /* MEZITE_WORKER_H */
