/*
 * Unary gRPC over HTTP/2 (nghttp2) on sessions handed over by the
 * master, on libevent's global base.
 *
 * A call is served once its request stream has ended: the request must
 * be a POST of content-type application/grpc or application/grpc+proto
 * (else HTTP 415, no gRPC status; a method other than POST gets 405),
 * to a path of the method table (else UNIMPLEMENTED), carrying exactly
 * one uncompressed message.  The handler runs to completion and answers
 * with grpc_reply() or grpc_error().  What the layer answers itself:
 *
 *	UNIMPLEMENTED		unknown path; no message, or more than one
 *				(request cardinality, as gRPC's
 *				statuscodes.md has it); a compressed message
 *				in a grpc-encoding we do not support
 *	INTERNAL		the stream ends inside a message; a
 *				compressed flag without grpc-encoding, or
 *				neither 0 nor 1
 *	INVALID_ARGUMENT	the message does not unpack as the method's
 *				request type
 *	RESOURCE_EXHAUSTED	a message longer than max_message, said as
 *				soon as its prefix is read; the request
 *				memory of all connections used up; request
 *				headers above GRPC_HEADER_LIST_MAX; a call
 *				whose connection holds GRPC_REPLIES_MAX of
 *				replies that flow control keeps back
 *	UNKNOWN			the handler returned without an answer
 *
 * An error answered before the client ended its stream is followed by
 * RST_STREAM NO_ERROR, and the rest of the stream is dropped unread.
 * grpc-timeout is ignored: handlers do not wait.
 *
 * Memory.  Per connection: at most max_streams streams open
 * (SETTINGS_MAX_CONCURRENT_STREAMS, enforced by nghttp2 from our first
 * SETTINGS on, before the client acknowledges it; streams above it are
 * refused with RST_STREAM REFUSED_STREAM and hold nothing but that
 * frame until it is sent).  Of each stream's headers only :path (256
 * bytes) and grpc-encoding (32) are kept, and a header list above
 * GRPC_HEADER_LIST_MAX (SETTINGS_MAX_HEADER_LIST_SIZE, counted here:
 * nghttp2 does not) is refused.  HPACK tables of 4096 bytes each way.
 * Replies that flow control keeps back: a handler runs only while they
 * are below GRPC_REPLIES_MAX, so they reach that and one reply more
 * (the handler's size) at most.  While the socket takes no more output
 * the connection is not read, so what nghttp2 queues for a client that
 * does not read (RST_STREAM, WINDOW_UPDATE, ACKs) grows by what one
 * read of GRPC_READ_SIZE bytes asks for at most.
 *
 * All connections: request messages held at once, memory bytes in all;
 * a message that would go past it is refused (RESOURCE_EXHAUSTED)
 * before any of it is held.  A message is held from its prefix (its
 * whole length is reserved then) to its handler's return; its unpacked
 * form lives during the handler only, one handler at a time.  One read
 * buffer of GRPC_READ_SIZE serves all connections.
 *
 * Time.  A connection with no stream open for idle_timeout seconds, or
 * whose open streams move no byte either way for that long, is sent
 * GOAWAY and closed; one whose GOAWAY cannot leave within a second
 * idle_timeout is closed as it is.
 *
 * Floods: nghttp2's own limits are set (outbound SETTINGS and PING ACKs
 * queued, SETTINGS entries per frame, CONTINUATION frames per header
 * block, and the RST_STREAM rate of CVE-2023-44487), and nghttp2's HTTP
 * checks of requests stay on.
 *
 * Sessions handed over in kernel TLS (mode KTLS) are read with
 * ktls_recv(): a record that is not data (close_notify, KeyUpdate) ends
 * the session, which sends close_notify before the socket is closed.
 */

#ifndef MEZITE_GRPC_H
#define MEZITE_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "mezite.pb-c.h"

#define GRPC_HEADER_LIST_MAX	(16 * 1024)
#define GRPC_REPLIES_MAX	(256 * 1024)	/* unsent, per connection */
#define GRPC_READ_SIZE		(16 * 1024)

enum grpc_status {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};

struct grpc_call;

struct grpc_method {
	const char				*path;	/* "/pkg.Svc/Method" */
	const ProtobufCMessageDescriptor	*request;
	/*
	 * Answer with grpc_reply() or grpc_error() before returning; the
	 * call and the request are gone once it returns.
	 */
	void	(*call)(struct grpc_call *, const ProtobufCMessage *);
};

struct grpc_service {
	const struct grpc_method *methods;
	size_t			  nmethods;
	size_t			  max_message;	/* one request message, bytes */
	uint32_t		  max_streams;	/* concurrent, per connection */
	size_t			  memory;	/* request bytes held, all
						   connections */
	unsigned int		  idle_timeout;	/* seconds */
	/*
	 * A session ended: its descriptor is closed (a KTLS session's
	 * after our close_notify); meta is freed when this returns.
	 */
	void			(*closed)(const Mezite__ConnMeta *);
};

/* The service is kept, not copied; it lives as long as the process. */
void	 grpc_init(const struct grpc_service *);
/*
 * Serve a handed-off session: takes fd and meta (freed with
 * mezite__conn_meta__free_unpacked).  Returns -1 if refused (while
 * draining, or out of memory), fd then closed and meta freed, and
 * closed() not called.  Returns 0 otherwise, closed() to come: it may
 * come before grpc_accept() returns, if the socket is dead already.
 */
int	 grpc_accept(int, Mezite__ConnMeta *);
void	 grpc_reply(struct grpc_call *, const ProtobufCMessage *);
void	 grpc_error(struct grpc_call *, enum grpc_status, const char *, ...)
	    __attribute__((__format__ (printf, 3, 4)));
const Mezite__ConnMeta *grpc_call_meta(const struct grpc_call *);
const char *grpc_call_method(const struct grpc_call *);
/* Stop: GOAWAY on every connection, each closed once its streams are done. */
void	 grpc_drain(void);
/* Sessions open. */
unsigned int grpc_sessions(void);

#endif /* MEZITE_GRPC_H */
