/*
 * A reader of the PROXY protocol header, versions 1 and 2, as HAProxy's
 * specification describes them (proxy-protocol.txt).  It holds no state
 * and allocates nothing: the caller hands it every byte of the header
 * read so far and it says whether they are a header, the beginning of
 * one, or neither.  A version 1 line is at most PP_V1_MAX bytes; a
 * version 2 header carries its length, and one whose TLVs take more than
 * PP_V2_TLV_MAX is refused as soon as the length is known.  TLVs are
 * checked to fit their block, and skipped.
 *
 * Where the header says the connection is the balancer's own (LOCAL, or
 * version 1's UNKNOWN) or names no internet address (UNSPEC, unix
 * sockets), the caller keeps the TCP endpoints, as the specification
 * asks.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "proxyproto.h"

#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_FAM_UNSPEC	0x0
#define V2_FAM_INET	0x1
#define V2_FAM_INET6	0x2
#define V2_FAM_UNIX	0x3
#define V2_PROTO_UNSPEC	0x0
#define V2_PROTO_STREAM	0x1
#define V2_PROTO_DGRAM	0x2

static const uint8_t	 v1_sig[] = "PROXY ";
static const uint8_t	 v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static ssize_t	 pp_v1(const uint8_t *, size_t, struct pp_header *);
static ssize_t	 pp_v2(const uint8_t *, size_t, struct pp_header *);

ssize_t
pp_parse(const uint8_t *buf, size_t len, struct pp_header *h)
{
	memset(h, 0, sizeof(*h));
	if (len == 0)
		return (PP_MORE);
	if (buf[0] == v1_sig[0])
		return (pp_v1(buf, len, h));
	if (buf[0] == v2_sig[0])
		return (pp_v2(buf, len, h));
	return (PP_MALFORMED);
}

/* A port: decimal, 0 to 65535, without a sign or a leading zero. */
static int
v1_port(const char *s, in_port_t *port)
{
	unsigned long	 n = 0;
	size_t		 i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 5)
		return (-1);
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		n = n * 10 + (s[i] - '0');
	}
	if (n > 65535)
		return (-1);
	*port = htons((in_port_t)n);
	return (0);
}

static int
v1_addr(int af, const char *a, const char *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		sin->sin_family = AF_INET;
		if (inet_pton(AF_INET, a, &sin->sin_addr) != 1 ||
		    v1_port(p, &sin->sin_port) == -1)
			return (-1);
	} else {
		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, a, &sin6->sin6_addr) != 1 ||
		    v1_port(p, &sin6->sin6_port) == -1)
			return (-1);
	}
	return (0);
}

/*
 * "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n", TCP6 likewise, or
 * "PROXY UNKNOWN" and anything up to the CRLF.
 */
static ssize_t
pp_v1(const uint8_t *buf, size_t len, struct pp_header *h)
{
	char		 line[PP_V1_MAX];
	char		*tok[6], *p;
	size_t		 i, end, n;
	int		 af;

	/* Up to the end of the line, each byte as it comes. */
	for (i = 0; i < len && i < PP_V1_MAX; i++) {
		if (i < sizeof(v1_sig) - 1 && buf[i] != v1_sig[i])
			return (PP_MALFORMED);
		if (buf[i] == '\n')
			break;
		if (buf[i] == '\r') {
			if (i + 1 < len && buf[i + 1] != '\n')
				return (PP_MALFORMED);
			continue;
		}
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return (PP_MALFORMED);
	}
	if (i == PP_V1_MAX)
		return (PP_MALFORMED);
	if (i == len)
		return (PP_MORE);
	/* buf[i] is the LF; a CR came before it. */
	if (i < sizeof(v1_sig) || buf[i - 1] != '\r')
		return (PP_MALFORMED);
	end = i + 1;
	memcpy(line, buf, i - 1);
	line[i - 1] = '\0';

	h->version = 1;
	if (strncmp(line, "PROXY UNKNOWN", 13) == 0 &&
	    (line[13] == '\0' || line[13] == ' '))
		return (end);

	/* Six words apart by one space each. */
	p = line;
	for (n = 0; n < 6 && p != NULL; n++)
		if (*(tok[n] = strsep(&p, " ")) == '\0')
			return (PP_MALFORMED);
	if (n != 6 || p != NULL)
		return (PP_MALFORMED);
	if (strcmp(tok[1], "TCP4") == 0)
		af = AF_INET;
	else if (strcmp(tok[1], "TCP6") == 0)
		af = AF_INET6;
	else
		return (PP_MALFORMED);
	if (v1_addr(af, tok[2], tok[4], &h->src) == -1 ||
	    v1_addr(af, tok[3], tok[5], &h->dst) == -1)
		return (PP_MALFORMED);
	h->proxied = 1;
	return (end);
}

static ssize_t
pp_v2(const uint8_t *buf, size_t len, struct pp_header *h)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	const uint8_t		*a;
	size_t			 i, blen, alen, off, tlen;
	int			 cmd, fam, proto;

	for (i = 0; i < len && i < sizeof(v2_sig); i++)
		if (buf[i] != v2_sig[i])
			return (PP_MALFORMED);
	if (len < PP_V2_HDR)
		return (PP_MORE);
	if ((buf[12] >> 4) != 2)
		return (PP_MALFORMED);
	cmd = buf[12] & 0xf;
	fam = buf[13] >> 4;
	proto = buf[13] & 0xf;
	blen = (size_t)buf[14] << 8 | buf[15];
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return (PP_MALFORMED);
	switch (fam) {
	case V2_FAM_UNSPEC:
		alen = 0;
		break;
	case V2_FAM_INET:
		alen = 12;
		break;
	case V2_FAM_INET6:
		alen = 36;
		break;
	case V2_FAM_UNIX:
		alen = PP_V2_ADDR_MAX;
		break;
	default:
		return (PP_MALFORMED);
	}
	if (proto > V2_PROTO_DGRAM)
		return (PP_MALFORMED);
	/* Known before the block comes: refuse it unread. */
	if (blen > alen + PP_V2_TLV_MAX)
		return (PP_MALFORMED);
	/* LOCAL: the family is ignored, and its addresses may be absent. */
	if (cmd == V2_CMD_PROXY && blen < alen)
		return (PP_MALFORMED);
	/* We serve streams: a datagram flow forwarded here is an error. */
	if (cmd == V2_CMD_PROXY && proto == V2_PROTO_DGRAM)
		return (PP_MALFORMED);
	if (len < PP_V2_HDR + blen)
		return (PP_MORE);

	/* The TLVs after the addresses: type, 16-bit length, value. */
	if (blen >= alen) {
		a = buf + PP_V2_HDR;
		for (off = alen; off < blen; off += 3 + tlen) {
			if (blen - off < 3)
				return (PP_MALFORMED);
			tlen = (size_t)a[off + 1] << 8 | a[off + 2];
			if (tlen > blen - off - 3)
				return (PP_MALFORMED);
		}
	}

	h->version = 2;
	if (cmd == V2_CMD_LOCAL || proto != V2_PROTO_STREAM)
		return (PP_V2_HDR + blen);
	a = buf + PP_V2_HDR;
	switch (fam) {
	case V2_FAM_INET:
		sin = (struct sockaddr_in *)&h->src;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		memcpy(&sin->sin_port, a + 8, 2);
		sin = (struct sockaddr_in *)&h->dst;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a + 4, 4);
		memcpy(&sin->sin_port, a + 10, 2);
		h->proxied = 1;
		break;
	case V2_FAM_INET6:
		sin6 = (struct sockaddr_in6 *)&h->src;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
		memcpy(&sin6->sin6_port, a + 32, 2);
		sin6 = (struct sockaddr_in6 *)&h->dst;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a + 16, 16);
		memcpy(&sin6->sin6_port, a + 34, 2);
		h->proxied = 1;
		break;
	default:
		/* UNSPEC, or unix sockets: no address of ours to show. */
		break;
	}
	return (PP_V2_HDR + blen);
}
