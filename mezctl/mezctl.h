/*
 * mezctl: what its files share.
 */

#ifndef MEZCTL_H
#define MEZCTL_H

#include "imsg.h"
#include "parser.h"

#define REPLY_TIMEOUT	10000		/* ms */

/* admin.c: the auth worker's store */
int	 admin_op(enum actions);
int	 admin_password(enum actions);
void	 admin_send(struct imsgbuf *, const struct parse_result *, int);
int	 admin_show(struct imsg *, const struct parse_result *, int);
int	 admin_keys_add(struct imsgbuf *, const struct parse_result *, int);

/* nodes.c: show nodes, connect */
void	 nodes_send(struct imsgbuf *, const struct parse_result *);
void	 nodes_header(void);
int	 nodes_show(struct imsg *, const char *, int, int *);
int	 nodes_connect(struct imsg *, const struct parse_result *, int *);
int	 nodes_copy(int);

/* sessions.c: show sessions, kill session */
void	 sessions_send(struct imsgbuf *, const struct parse_result *);
void	 sessions_header(void);
int	 sessions_show(struct imsg *, int, int *);

#endif /* MEZCTL_H */
