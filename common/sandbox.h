/*
 * The sandbox of each process: what it may still do once it has loaded
 * its files and dropped its privileges (common/proc.c).  On Linux a
 * seccomp-bpf allowlist that kills the process on anything else, and
 * Landlock where the kernel has it; on OpenBSD pledge and unveil.
 */

#ifndef MEZITE_SANDBOX_H
#define MEZITE_SANDBOX_H

/* In the environment: trap, log the system call, then die. */
#define SANDBOX_DEBUG_ENV	"MEZITE_SANDBOX_DEBUG"
/* In the environment: that process breaks its sandbox once it is in. */
#define SANDBOX_SELFTEST_ENV	"MEZITE_SANDBOX_SELFTEST"

void	 sandbox_nnp(void);
void	 sandbox_master(void);
void	 sandbox_ca(void);
void	 sandbox_https(const char *);
void	 sandbox_auth(const char *);
void	 sandbox_tunnel(void);
void	 sandbox_ssh(int);
void	 sandbox_ssh_session(void);

#endif /* MEZITE_SANDBOX_H */
