/*
 * A growing text buffer, and the JSON renderings of status messages
 * shared by the https worker's API and mezctl -j.
 */

#ifndef MEZITE_SBUF_H
#define MEZITE_SBUF_H

#include <stddef.h>

#include "mezite.pb-c.h"

struct sbuf {
	char	*buf;
	size_t	 len;
	size_t	 size;
	int	 failed;	/* out of memory: the contents are incomplete */
};

void	 sbuf_add(struct sbuf *, const char *, size_t);
void	 sbuf_puts(struct sbuf *, const char *);
void	 sbuf_printf(struct sbuf *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	 sbuf_json(struct sbuf *, const char *);
void	 sbuf_html(struct sbuf *, const char *);
void	 sbuf_free(struct sbuf *);

void	 json_address(struct sbuf *, const Mezite__Address *);
void	 json_status(struct sbuf *, const Mezite__Status *);
void	 json_proc(struct sbuf *, const Mezite__ProcInfo *, int);
void	 json_conn(struct sbuf *, const Mezite__ConnInfo *);

#endif /* MEZITE_SBUF_H */
