/*
 * What the fuzz targets share.
 */

#ifndef MEZITE_FUZZ_H
#define MEZITE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* A broken invariant is a crash libFuzzer reports with its input. */
#define FUZZ_ASSERT(x)	do { if (!(x)) abort(); } while (0)

int	 fuzz_sendmsg(int, const uint8_t *, size_t, int);

#endif /* MEZITE_FUZZ_H */
