/*
 * Protobuf payloads on imsg channels, and the session metadata a worker
 * receives with each handed-off descriptor.
 */

#ifndef MEZITE_META_H
#define MEZITE_META_H

#include <sys/types.h>
#include <sys/socket.h>

#include <protobuf-c/protobuf-c.h>

#include "imsg.h"
#include "mezite.pb-c.h"

/* Holds the bytes behind a Mezite__Address built from a sockaddr. */
struct pb_addr {
	Mezite__Address	 pb;
	uint8_t		 bytes[16];
};

int	 pb_compose(struct imsgbuf *, uint32_t, uint32_t, int,
	    const ProtobufCMessage *);
void	*pb_unpack(const ProtobufCMessageDescriptor *, struct imsg *);
void	 pb_free(void *);
void	 pb_wipe(struct imsg *);

void	 addr_to_pb(const struct sockaddr *, struct pb_addr *);
int	 addr_from_pb(const Mezite__Address *, struct sockaddr_storage *,
	    socklen_t *);

Mezite__ConnMeta *meta_decode(const void *, size_t);
int	 meta_valid(const Mezite__ConnMeta *);

#endif /* MEZITE_META_H */
