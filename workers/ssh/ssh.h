/*
 * The ssh worker: the bastion on ALPN mezite-ssh.
 *
 * ssh.c is the worker process: it takes the master's handoffs, keeps
 * spare session processes, gives each session to one of them, and
 * carries their questions to the supervisor.  session.c is a session
 * process: libssh on one handed-off session, for its whole life.
 */

#ifndef MEZITE_SSH_H
#define MEZITE_SSH_H

#include <sys/types.h>

#include <libssh/libssh.h>

#include "meta.h"
#include "proc.h"

#define SSH_SPARES		4	/* idle session processes, at most */
#define SSH_SESSION_FD		5	/* a session's channel to its worker */
#define SSH_LOGIN_GRACE		30	/* seconds to log in */
#define SSH_EXIT_GRACE		3	/* a session's status: it did not */
#define SSH_REFUSED_MAX		16	/* refused channels, then goodbye */
#define SSH_AUTH_TRIES		6	/* refused credentials, then goodbye */
#define SSH_CHANNELS_MAX	64	/* open at once, per session */
#define SSH_CHANNEL_BUF		(64 * 1024)	/* toward a node, per channel */
#define SSH_ASK_WAIT		30	/* seconds for the worker's answer */
#define SSH_GRANTS_MAX		16	/* node:service allowed, per session */
#define SSH_TARGETS_LEN		256	/* "node:service, ..." kept */
#define SSH_HOSTKEYS		1	/* ed25519 */
#define SSH_USER_MAX		64	/* a user's name, as the auth worker's */
#define SSH_TARGETS_MAX		64	/* static targets, configured */
#define SSH_TARGET_WAIT		10	/* seconds to connect to one */

/*
 * The host keys, in the worker's directory (its chroot), made on first
 * start: ed25519 alone, which every current client has.  ECDSA keys are
 * on NIST curves, which ssh-audit fails.
 */
struct ssh_hostkeys {
	ssh_key		 keys[SSH_HOSTKEYS];
	size_t		 n;
};

/* ssh.c */
__dead void	 ssh(unsigned int, const char *, const char *);

/* session.c */
__dead void	 session_main(int, struct ssh_hostkeys *, const char *);

#endif /* MEZITE_SSH_H */
