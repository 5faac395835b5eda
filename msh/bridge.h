/*
 * bridge.c: standard input and output to and from a TLS session, for
 * msh proxy.
 */

#ifndef MSH_BRIDGE_H
#define MSH_BRIDGE_H

struct conn;

int	 bridge_nonblock(int, int *);
int	 bridge(struct conn *, int, int, char *, size_t);

#endif /* MSH_BRIDGE_H */
