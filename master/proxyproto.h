/*
 * The PROXY protocol (HAProxy's, versions 1 and 2): the header a trusted
 * load balancer sends before the client's bytes, naming the client.
 */

#ifndef MEZITE_PROXYPROTO_H
#define MEZITE_PROXYPROTO_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#define PP_V1_MAX	107		/* the longest line, CRLF included */
#define PP_V2_HDR	16		/* signature, command, family, length */
#define PP_V2_ADDR_MAX	216		/* the largest address block (unix) */
#define PP_V2_TLV_MAX	512		/* TLVs past the addresses, skipped */
/* The most a header may take: what a connection must hold of it. */
#define PP_MAX		(PP_V2_HDR + PP_V2_ADDR_MAX + PP_V2_TLV_MAX)

#define PP_MALFORMED	(-1)
#define PP_MORE		0		/* a header's beginning: read on */

struct pp_header {
	int			 version;	/* 1 or 2 */
	int			 proxied;	/* 0: keep the TCP endpoints */
	struct sockaddr_storage	 src;		/* the client, if proxied */
	struct sockaddr_storage	 dst;		/* whom it called */
};

/*
 * The bytes read so far, from the connection's first: PP_MALFORMED if
 * they cannot begin a header, PP_MORE if they are the beginning of one,
 * else the length of the header, which fills *h.  Bytes past the header
 * are not looked at.
 */
ssize_t		 pp_parse(const uint8_t *, size_t, struct pp_header *);

#endif /* MEZITE_PROXYPROTO_H */
