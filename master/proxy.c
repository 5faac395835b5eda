/*
 * The PROXY protocol on the master's connections.  A connection from a
 * network of "proxy protocol from" comes from a balancer and must begin
 * with a PROXY header (proxyproto.c) naming the client; until the header
 * is whole, nothing of TLS starts.  The header is read with MSG_PEEK
 * first and then exactly as far as it goes, so that the ClientHello
 * behind it stays in the socket for the TLS engine.  A connection from
 * anywhere else is taken as TLS from its first byte: a header there
 * fails the handshake.
 *
 * The handshake timeout, armed at accept, covers the header too.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "master.h"
#include "proxyproto.h"
#include "util.h"

/* The balancers' networks: in the running configuration. */
static Mezite__Network	**proxy_nets;
static size_t		  nproxy_nets;

/* A new configuration: connections accepted from now on see it. */
void
proxy_configure(Mezite__Network **nets, size_t n)
{
	proxy_nets = nets;
	nproxy_nets = n;
}

/* Whether the TCP peer is in a network of "proxy protocol from". */
int
proxy_trusted(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;
	const Mezite__Network		*n;
	const uint8_t			*a;
	size_t				 i, alen, bytes;
	unsigned int			 bits;

	if (ss->ss_family == AF_INET) {
		a = (const uint8_t *)&sin->sin_addr;
		alen = 4;
	} else if (ss->ss_family == AF_INET6) {
		a = (const uint8_t *)&sin6->sin6_addr;
		alen = 16;
		/* An IPv4 client on a dual-stack listener. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			a += 12;
			alen = 4;
		}
	} else
		return (0);
	for (i = 0; i < nproxy_nets; i++) {
		n = proxy_nets[i];
		if (n->addr.len != alen || n->prefix > alen * 8)
			continue;
		bytes = n->prefix / 8;
		bits = n->prefix % 8;
		if (memcmp(n->addr.data, a, bytes) != 0)
			continue;
		if (bits != 0 && ((n->addr.data[bytes] ^ a[bytes]) &
		    (0xff << (8 - bits))) != 0)
			continue;
		return (1);
	}
	return (0);
}

/*
 * A connection just accepted: from a balancer, it waits for its header;
 * from anyone else, its TCP peer is the client.  -1: close it.
 */
int
proxy_accept(struct conn *c)
{
	if (!proxy_trusted(&c->peer))
		return (conn_set_peer(c, NULL, NULL));
	if ((c->pp = malloc(PP_MAX)) == NULL) {
		log_warn(__func__);
		return (-1);
	}
	c->pplen = 0;
	c->balancer = c->peer;
	return (0);
}

/*
 * Read on in the header: 1 once it is whole and the client known, 0 to
 * wait for more of it, -1 to close the connection.
 */
int
proxy_read(struct conn *c)
{
	struct pp_header	 h;
	char			 addr[ADDRSTRLEN];
	ssize_t			 n, len;
	size_t			 take;

	addr_str((struct sockaddr *)&c->balancer, addr, sizeof(addr));
	if ((n = recv(c->fd, c->pp + c->pplen, PP_MAX - c->pplen,
	    MSG_PEEK)) == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return (0);
		log_warn("conn %llu: %s: PROXY header",
		    (unsigned long long)c->id, addr);
		return (-1);
	}
	if (n == 0) {
		/* Closed at once, it is the balancer's check of the port. */
		if (c->pplen == 0)
			log_debug("conn %llu: %s: closed before a PROXY "
			    "header", (unsigned long long)c->id, addr);
		else
			log_warnx("conn %llu: %s: closed within its PROXY "
			    "header", (unsigned long long)c->id, addr);
		return (-1);
	}
	len = pp_parse(c->pp, c->pplen + n, &h);
	if (len == PP_MALFORMED || (len == PP_MORE &&
	    c->pplen + n >= PP_MAX)) {
		log_warnx("conn %llu: %s: %s PROXY header from a trusted "
		    "balancer", (unsigned long long)c->id, addr,
		    c->pplen == 0 && c->pp[0] == 0x16 ?
		    "TLS instead of a" : "malformed");
		return (-1);
	}
	/* What the header takes of the bytes peeked; all, if unfinished. */
	take = len == PP_MORE ? (size_t)n : (size_t)len - c->pplen;
	if (recv(c->fd, c->pp + c->pplen, take, 0) != (ssize_t)take) {
		log_warn("conn %llu: %s: PROXY header",
		    (unsigned long long)c->id, addr);
		return (-1);
	}
	c->pplen += take;
	if (len == PP_MORE)
		return (0);

	free(c->pp);
	c->pp = NULL;
	if (h.proxied) {
		if (conn_set_peer(c, &h.src, &h.dst) == -1)
			return (-1);
	} else if (conn_set_peer(c, NULL, NULL) == -1)
		return (-1);
	return (1);
}
