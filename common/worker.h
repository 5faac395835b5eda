/*
 * The worker runtime: what every worker process shares, whatever event
 * loop it runs.  The loop watches the descriptors the runtime gives it
 * and calls worker_chan_read() when one is readable.
 */

#ifndef MEZITE_WORKER_H
#define MEZITE_WORKER_H

#include <sys/types.h>

#include "meta.h"
#include "proc.h"

struct wchan;

struct worker_cb {
	/* The configuration, before any session; freed after the call. */
	void	(*configure)(const Mezite__WorkerConfig *);
	/* A new channel to watch for reading. */
	void	(*watch)(int, struct wchan *);
	/* A session: the callee owns fd and meta (mezite__conn_meta__free). */
	void	(*handoff)(int, Mezite__ConnMeta *);
	/* A status reply; st is freed after the call. */
	void	(*status)(uint32_t, const Mezite__Status *);
	/* Stop taking sessions; exit once the last one has ended. */
	void	(*drain)(void);
};

void	 worker_init(enum proc_type, unsigned int, const char *,
	    const char *, const struct worker_cb *);
int	 worker_chan_read(struct wchan *);
void	 worker_chan_free(struct wchan *);
int	 worker_status_request(uint32_t);
void	 worker_conn_done(uint64_t);
int	 worker_terminated(void);

#endif /* MEZITE_WORKER_H */
