/*
 * Writers of the SSH wire types into a bounded buffer: the SSH user CA's
 * certificates in the auth worker, and msh's own key files.
 */

#include <stdint.h>
#include <string.h>

#include "sshwire.h"

/* Writes go to buf, at most cap bytes of it. */
void
sshwire_init(struct sshwire *w, void *buf, size_t cap)
{
	w->p = buf;
	w->len = 0;
	w->cap = cap;
	w->err = 0;
}

void
sshwire_bytes(struct sshwire *w, const void *p, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return;
	}
	if (n == 0)
		return;
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

void
sshwire_u32(struct sshwire *w, uint32_t v)
{
	uint8_t	 b[4];

	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
	sshwire_bytes(w, b, sizeof(b));
}

void
sshwire_u64(struct sshwire *w, uint64_t v)
{
	sshwire_u32(w, (uint32_t)(v >> 32));
	sshwire_u32(w, (uint32_t)v);
}

/* A string: its length, then its bytes. */
void
sshwire_string(struct sshwire *w, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		w->err = 1;
		return;
	}
	sshwire_u32(w, (uint32_t)n);
	sshwire_bytes(w, p, n);
}

void
sshwire_cstring(struct sshwire *w, const char *s)
{
	sshwire_string(w, s, strlen(s));
}
