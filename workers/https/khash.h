/*
 * <h2o/http2_internal.h> includes klib's "khash.h" for one member of
 * its connection structure, a pointer to the stream table, and for one
 * inline lookup.  libh2o does not install that header.  We need the
 * structures' layout, not the table: this declares the table as an
 * opaque type, which leaves the layout as it is.
 *
 * The inline lookup, h2o_http2_conn_get_stream(), must not be used: it
 * refers to a function that is declared here and defined nowhere, so a
 * call to it fails to link instead of misbehaving.
 */

#ifndef MEZITE_KHASH_H
#define MEZITE_KHASH_H

typedef unsigned int	khiter_t;

#define khash_t(name)			struct mezite_kh_##name
#define KHASH_MAP_INIT_INT64(name, type)
#define kh_get(name, h, k)		mezite_khash_unavailable()
#define kh_end(h)			mezite_khash_unavailable()
#define kh_val(h, i)			\
	((void *)(unsigned long)mezite_khash_unavailable())

khiter_t	mezite_khash_unavailable(void);

#endif /* MEZITE_KHASH_H */
