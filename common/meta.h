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

/*
 * A connection id names the master that made it (see master.h): the top
 * 32 bits are its origin, the master's instance and restart count, the
 * low 32 a serial number of that master's.  Ids stay unique across
 * masters and their restarts, and a worker knows from an id alone which
 * master handed the session over.
 */
#define CONN_ID_SERIAL_BITS	32
#define CONN_ID_RESTART_BITS	24		/* of the 32 origin bits */
#define CONN_ID_INSTANCE_MAX	255		/* the top 8 */
#define CONN_ID_ORIGIN(instance, restarts)				\
	((uint32_t)((instance) & CONN_ID_INSTANCE_MAX) <<		\
	CONN_ID_RESTART_BITS | ((restarts) &				\
	((1U << CONN_ID_RESTART_BITS) - 1)))
#define CONN_ID_MAKE(origin, serial)					\
	((uint64_t)(origin) << CONN_ID_SERIAL_BITS | (uint32_t)(serial))
#define CONN_ID_ORIGIN_OF(id)	((uint32_t)((id) >> CONN_ID_SERIAL_BITS))

Mezite__ConnMeta *meta_decode(const void *, size_t);
int	 meta_valid(const Mezite__ConnMeta *);

int	 status_merge(Mezite__Status *, Mezite__Status *const *, size_t);
void	 status_parts_free(Mezite__Status *);
int	 procs_masters(Mezite__ProcInfo *const *, size_t);
void	 proc_label(const Mezite__ProcInfo *, int, char *, size_t);

#endif /* MEZITE_META_H */
