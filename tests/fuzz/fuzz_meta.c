/*
 * Handoff metadata and the other protobuf payloads a less trusted peer
 * can send: they must decode or be refused, never crash or leak.
 */

#include <stddef.h>
#include <stdint.h>

#include "meta.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	Mezite__ConnMeta	*m;
	Mezite__Status		*st;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;

	if ((m = meta_decode(data, len)) != NULL) {
		(void)addr_from_pb(m->client, &ss, &sslen);
		mezite__conn_meta__free_unpacked(m, NULL);
	}
	if ((st = mezite__status__unpack(NULL, len, data)) != NULL)
		mezite__status__free_unpacked(st, NULL);
	return (0);
}
