/*
 * The auth worker: Mezite's identity service.
 */

#ifndef MEZITE_AUTH_H
#define MEZITE_AUTH_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

#include "auth.pb-c.h"
#include "health.pb-c.h"
#include "grpc.h"
#include "mezite.pb-c.h"
#include "passwd.h"
#include "store.h"

#define AUTH_DB			"mezite.db"	/* in the auth directory */
#define AUTH_NAME_MAX		64		/* users, roles, nodes */
#define AUTH_PASSWORD_MAX	PASSWD_MAX	/* what libxcrypt takes */
#define AUTH_SPKI_MAX		2048		/* a public key, DER */
#define AUTH_LABELS_MAX		32
#define AUTH_LABEL_MAX		128		/* a label's key or value */
#define AUTH_LIST_MAX		64		/* roles, logins, patterns */
#define AUTH_TOKEN_TTL		3600		/* join tokens, by default */
#define AUTH_TOKEN_TTL_MAX	(30 * 86400)
#define AUTH_TOKEN_BYTES	32		/* of randomness in a token */

/* Failed logins: free ones, then 1, 2, 4... seconds, up to a limit. */
#define AUTH_USER_FREE		5
#define AUTH_ADDR_FREE		20
#define AUTH_DELAY_MAX		300
#define AUTH_RATE_KEYS		65536		/* users, and addresses */

struct ca;
struct ratelimit;
struct sshca;

struct auth_env {
	struct store		*store;
	struct ca		*user_ca;
	struct ca		*host_ca;
	struct sshca		*ssh_ca;	/* sshcert.c */
	struct ratelimit	*rl_user;
	struct ratelimit	*rl_addr;
	unsigned int		 cert_ttl;
};

extern struct auth_env	 aenv;

/* auth.c */
void	 auth_audit(const char *, const char *, const char *, int,
	    const char *, ...) __attribute__((__format__ (printf, 5, 6)));
void	 auth_push_revoked(void);

/* nodes.c: which nodes are online, as the tunnel workers say */
void	 nodes_update(const Mezite__NodeState *);
int	 nodes_get(const char *, int *, time_t *,
	    const struct store_strv **);

/* rpc.c: the gRPC methods */
extern const struct grpc_method	 auth_methods[];
extern const size_t		 auth_nmethods;

/* admin.c: mezctl's requests, through the supervisor */
void	 admin_request(const Mezite__AdminRequest *, Mezite__AdminReply *);
void	 admin_reply_free(Mezite__AdminReply *);

/* sshauth.c: the ssh worker's questions */
#define SSHAUTH_REASON_MAX	256
#define SSHAUTH_TYPE_MAX	32	/* bytes of an audit event's fields */
#define SSHAUTH_NAME_MAX	64
#define SSHAUTH_ADDRESS_MAX	128
#define SSHAUTH_DETAIL_MAX	1024
#define SSHAUTH_SKEW		60	/* seconds an event's time may be off */

struct sshauth_result {
	int			 allowed;
	char			 reason[SSHAUTH_REASON_MAX];
	struct store_strv	 roles;		/* hers, when allowed */
};

int	 sshauth_login(struct store *, const Mezite__SshAuthRequest *, time_t,
	    struct sshauth_result *);
int	 sshauth_access(struct store *, const Mezite__SshAccessRequest *,
	    struct sshauth_result *);
int	 sshauth_event(const Mezite__AuditEvent *, time_t, struct store_event *,
	    const char **);
void	 sshauth_result_clear(struct sshauth_result *);
void	 sshauth_quote(const char *, char *, size_t);

/* rbac.c */
int	 auth_name_valid(const char *);
int	 rbac_role_allows(const struct store_role *, const struct store_node *);
int	 rbac_role_allows_service(const struct store_role *, const char *);
int	 rbac_node_logins(const struct store_role *, size_t,
	    const struct store_node *, struct store_strv *);

#endif /* MEZITE_AUTH_H */
