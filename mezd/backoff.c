/*
 * The delays between tries: 1 s doubling up to a cap, with full
 * jitter, so that agents that lost the proxy together do not all come
 * back at the same moment.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>

#include "mezd.h"

/*
 * The next delay of a backoff at its try *n (then counted): uniform in
 * [0, min(2^n s, cap s)], in milliseconds.
 */
int
backoff_ms(unsigned int *n, int cap)
{
	int64_t	 top;

	top = (int64_t)1000 << (*n < 16 ? *n : 16);
	if (top > (int64_t)cap * 1000)
		top = (int64_t)cap * 1000;
	if (*n < 16)
		(*n)++;
	return (arc4random_uniform(top + 1));
}
