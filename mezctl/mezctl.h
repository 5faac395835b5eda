/*
 * mezctl: what its files share.
 */

#ifndef MEZCTL_H
#define MEZCTL_H

#include "imsg.h"
#include "parser.h"

/* admin.c: the auth worker's store */
int	 admin_op(enum actions);
int	 admin_password(enum actions);
void	 admin_send(struct imsgbuf *, const struct parse_result *, int);
int	 admin_show(struct imsg *, const struct parse_result *, int);

#endif /* MEZCTL_H */
