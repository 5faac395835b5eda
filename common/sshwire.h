/*
 * Writers of the SSH wire types (RFC 4251, section 5) into a bounded
 * buffer.  Once anything does not fit, err is set and nothing more is
 * written, so a caller checks once, at the end.
 */

#ifndef MEZITE_SSHWIRE_H
#define MEZITE_SSHWIRE_H

#include <stddef.h>
#include <stdint.h>

struct sshwire {
	uint8_t		*p;
	size_t		 len;
	size_t		 cap;
	int		 err;
};

void	sshwire_init(struct sshwire *, void *, size_t);
void	sshwire_bytes(struct sshwire *, const void *, size_t);
void	sshwire_u32(struct sshwire *, uint32_t);
void	sshwire_u64(struct sshwire *, uint64_t);
void	sshwire_string(struct sshwire *, const void *, size_t);
void	sshwire_cstring(struct sshwire *, const char *);

#endif /* MEZITE_SSHWIRE_H */
