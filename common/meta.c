/*
 * Protobuf payloads on imsg channels, and the session metadata a worker
 * receives with each handed-off descriptor.
 *
 * A payload that does not unpack, or that unpacks to values a sender
 * could not have meant (an address of the wrong length, a port out of
 * range), is refused here so that no caller has to check it again.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"

#define PB_STACKBUF	4096

/* Pack a message and queue it; the fd, if any, goes with it. */
int
pb_compose(struct imsgbuf *ibuf, uint32_t type, uint32_t peerid, int fd,
    const ProtobufCMessage *msg)
{
	uint8_t	 stackbuf[PB_STACKBUF], *buf = stackbuf;
	size_t	 len;
	int	 ret;

	len = protobuf_c_message_get_packed_size(msg);
	if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL) {
		if (fd != -1)
			close(fd);
		return (-1);
	}
	if (protobuf_c_message_pack(msg, buf) != len) {
		if (buf != stackbuf)
			free(buf);
		if (fd != -1)
			close(fd);
		errno = EINVAL;
		return (-1);
	}
	ret = imsg_compose(ibuf, type, peerid, 0, fd, len ? buf : NULL, len);
	explicit_bzero(buf, len);	/* keypairs travel this way */
	if (buf != stackbuf)
		free(buf);
	return (ret);
}

/* Unpack an imsg's payload; NULL if it is malformed. */
void *
pb_unpack(const ProtobufCMessageDescriptor *desc, struct imsg *imsg)
{
	size_t	 len = imsg_get_len(imsg);

	return (protobuf_c_message_unpack(desc, NULL, len,
	    len ? imsg->data : (const uint8_t *)""));
}

void
pb_free(void *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
}

void
addr_to_pb(const struct sockaddr *sa, struct pb_addr *a)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	mezite__address__init(&a->pb);
	a->pb.family = sa->sa_family;
	a->pb.addr.data = a->bytes;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		memcpy(a->bytes, &sin->sin_addr, 4);
		a->pb.addr.len = 4;
		a->pb.port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(a->bytes, &sin6->sin6_addr, 16);
		a->pb.addr.len = 16;
		a->pb.port = ntohs(sin6->sin6_port);
		break;
	default:
		a->pb.family = AF_UNIX;
		a->pb.addr.len = 0;
		a->pb.port = 0;
		break;
	}
}

int
addr_from_pb(const Mezite__Address *a, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;

	memset(ss, 0, sizeof(*ss));
	if (a == NULL || a->port > 65535)
		return (-1);
	switch (a->family) {
	case AF_INET:
		if (a->addr.len != 4)
			return (-1);
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->addr.data, 4);
		sin->sin_port = htons((uint16_t)a->port);
		*sslen = sizeof(*sin);
		return (0);
	case AF_INET6:
		if (a->addr.len != 16)
			return (-1);
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->addr.data, 16);
		sin6->sin6_port = htons((uint16_t)a->port);
		*sslen = sizeof(*sin6);
		return (0);
	case AF_UNIX:
		if (a->addr.len != 0 || a->port != 0)
			return (-1);
		sun->sun_family = AF_UNIX;
		*sslen = sizeof(sun->sun_family);
		return (0);
	default:
		return (-1);
	}
}

/* Is this metadata something a correct master could have sent? */
int
meta_valid(const Mezite__ConnMeta *m)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;

	if (m->id == 0 || m->client == NULL || m->local == NULL)
		return (0);
	if (addr_from_pb(m->client, &ss, &sslen) == -1 ||
	    addr_from_pb(m->local, &ss, &sslen) == -1)
		return (0);
	if (m->mode != MEZITE__HANDOFF_MODE__RELAY &&
	    m->mode != MEZITE__HANDOFF_MODE__KTLS)
		return (0);
	if (m->cert != NULL && strncmp(m->cert->fingerprint, "SHA256:", 7))
		return (0);
	return (1);
}

Mezite__ConnMeta *
meta_decode(const void *data, size_t len)
{
	Mezite__ConnMeta	*m;

	m = mezite__conn_meta__unpack(NULL, len,
	    len ? data : (const uint8_t *)"");
	if (m == NULL)
		return (NULL);
	if (!meta_valid(m)) {
		mezite__conn_meta__free_unpacked(m, NULL);
		return (NULL);
	}
	return (m);
}

/* Wipe a received payload that held a secret (a key, a password). */
void
pb_wipe(struct imsg *imsg)
{
	if (imsg_get_len(imsg) > 0)
		explicit_bzero(imsg->data, imsg_get_len(imsg));
}
