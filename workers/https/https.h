/*
 * The https worker: what its files share.
 *
 *	https.c		the process: configuration, channels, sessions,
 *			the request handlers and the status pages
 *	body.c		request bodies: what each may be, how much of it
 *			is held, and the answer to one refused
 *	h2.c		HTTP/2: h2o's reading and writing, looked over
 *	h1.c		HTTP/1.1: the head rewritten, the body read by us
 *	h1parse.c	...and what it parses of the client's bytes
 *	h2parse.c	HTTP/2 frames measured, HPACK integers written
 */

#ifndef MEZITE_HTTPS_H
#define MEZITE_HTTPS_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>

#include <h2o.h>
#include <openssl/evp.h>

#include "h1parse.h"
#include "h2parse.h"
#include "meta.h"

#define HEAD_MAX		(64 * 1024)	/* a request's header section */
#define SMALL_BODY_MAX		4096	/* a body for anything but digest */
#define DISCARD_MAX		(64 * 1024 * 1024)	/* after a refusal */

/* From <h2o/http2_internal.h>, which only h2.c includes. */
typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;

enum body_kind {
	BODY_NONE,		/* the resource takes no body */
	BODY_SMALL,		/* kept whole, up to SMALL_BODY_MAX */
	BODY_DIGEST,		/* hashed as it comes */
};

struct session;

/* A request body being received; lives in the request's pool. */
struct body {
	LIST_ENTRY(body)	 entry;
	struct session		*s;
	h2o_req_t		*req;
	enum body_kind		 kind;
	EVP_MD_CTX		*md;		/* BODY_DIGEST */
	uint64_t		 seen;		/* bytes of body so far */
	uint64_t		 discarded;	/* since it was refused */
	size_t			 held;		/* counted in body_held */
	int			 status;	/* non-zero: refused so */
	int			 abort;		/* too much: answer, close */
	/* HTTP/1.1: read by us */
	int			 chunked;
	struct h1_chunked	 chunk;		/* chunked */
	uint64_t		 left;		/* of the body, if not */
	int			 done;
};

struct session {
	LIST_ENTRY(session)	 entry;
	Mezite__ConnMeta	*meta;
	h2o_socket_t		*sock;
	int			 ktls_fd;	/* our hold on a kTLS socket */
	h2o_socket_cb		 h2o_read;	/* h2o's read callback */
	LIST_HEAD(, body)	 bodies;
	/* HTTP/2 */
	h2o_http2_conn_t	*h2;
	ssize_t			(*h2_expect0)(h2o_http2_conn_t *,
				    const uint8_t *, size_t, const char **);
	int			 h2_settings;	/* ours sent */
	size_t			 hpack_size;	/* table size the peer knows */
	struct h2_block		 h2_block;	/* being received */
	int			 h2_dead;	/* 431 sent: input dropped */
	/* HTTP/1.1: the head of the request h2o is to parse */
	size_t			 h1_scan;	/* no head end before this */
	size_t			 h1_fed;	/* input h2o last parsed */
	size_t			 h1_head;	/* the head's length; 0: none */
	struct h1_framing	 h1_framing;	/* the body it announced */
	int			 h1_writing;	/* our 100 Continue is going */
	int			 h1_ended;	/* answer once it is out */
	int			 h1_reject;	/* answer the request so */
	struct body		*h1_reading;	/* the body we are reading */
	h2o_timeout_entry_t	 h1_timer;
};
LIST_HEAD(sessions, session);

/*
 * https.c: the loop, the sessions, and the limits from the
 * configuration, set once before the first session.  "reading" is the
 * session whose read callback h2o is in; h1.c and h2.c set it around
 * the call, and https.c clears it when that session closes under them.
 */
extern h2o_evloop_t		*loop;
extern struct sessions		 sessions;
extern struct session		*reading;
extern uint64_t			 body_limit;
extern uint64_t			 body_memory;
extern unsigned int		 max_streams;
extern h2o_timeout_t		 body_timeout;	/* "timeout idle" */
struct session	*req_session(h2o_req_t *);
void		 digest_respond(h2o_req_t *, struct body *);

/* body.c */
struct body	*body_find(struct session *, h2o_req_t *);
struct body	*body_get(struct session *, h2o_req_t *);
uint64_t	 body_cap(const struct body *);
int		 body_hold(struct body *, size_t);
void		 body_release(struct body *);
int		 body_data(struct body *, const void *, size_t);
void		 body_error(h2o_req_t *, int);

/* h2.c */
void		 h2_accept(struct session *, h2o_accept_ctx_t *,
		    struct timeval);
int		 h2_request(struct session *, h2o_req_t *);
void		 h2_drain_idle(void);
void		 hpack_filter(h2o_filter_t *, h2o_req_t *, h2o_ostream_t **);

/* h1.c */
void		 h1_accept(struct session *, h2o_accept_ctx_t *,
		    struct timeval);
int		 h1_request(struct session *, h2o_req_t *);
void		 h1_rewrap(void);

#endif /* MEZITE_HTTPS_H */
