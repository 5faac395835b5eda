/*
 * A small blocking client for unary gRPC calls over HTTP/2, on a
 * connection made by conn_dial().
 *
 *	struct conn c;
 *	struct rpc *r;
 *	struct rpc_status st;
 *	ProtobufCMessage *reply;
 *
 *	conn_dial(&c, &dial);
 *	r = rpc_open(&c);
 *	reply = rpc_call(r, &mezite__auth__v1__auth__descriptor, "WhoAmI",
 *	    &req.base, &st);
 *	if (reply == NULL)
 *		errx(1, "%s (%s)", st.message, grpc_code_name(st.code));
 *	...
 *	protobuf_c_message_free_unpacked(reply, NULL);
 *	rpc_close(r);
 *	conn_close(&c);
 *
 * The method is named as in the service's descriptor, which gives the
 * path ("/mezite.auth.v1.Auth/WhoAmI") and the reply's type.  One call
 * at a time; several may follow one another on one rpc.  The call
 * ends with a gRPC status: rpc_call() returns the reply if it is OK
 * (st.code 0), NULL otherwise.  A failure below gRPC (the connection,
 * HTTP/2, a reply that is not gRPC) ends msh with a message naming
 * the proxy.
 *
 * rpc_send() and rpc_wait() are rpc_call() in two halves, for a
 * caller that wipes a secret of the request once it is sent.  The
 * request's bytes pass only through buffers that are wiped: rpc's own
 * framed copy and its output buffer, never nghttp2's.
 */

#ifndef MSH_RPC_H
#define MSH_RPC_H

#include <protobuf-c/protobuf-c.h>

#define RPC_MAXMSG	(1024 * 1024)	/* a message's bytes, each way */
#define RPC_MSGLEN	512		/* grpc-message, decoded */

/* The gRPC status codes msh tells apart. */
#define GRPC_OK			0
#define GRPC_INVALID_ARGUMENT	3
#define GRPC_PERMISSION_DENIED	7
#define GRPC_RESOURCE_EXHAUSTED	8
#define GRPC_UNIMPLEMENTED	12
#define GRPC_INTERNAL		13
#define GRPC_UNAVAILABLE	14
#define GRPC_UNAUTHENTICATED	16

struct rpc_status {
	int		 code;
	char		 message[RPC_MSGLEN];	/* printable, or "" */
};

struct conn;
struct rpc;

struct rpc		*rpc_open(struct conn *);
void			 rpc_close(struct rpc *);
ProtobufCMessage	*rpc_call(struct rpc *,
			    const ProtobufCServiceDescriptor *, const char *,
			    const ProtobufCMessage *, struct rpc_status *);
void			 rpc_send(struct rpc *,
			    const ProtobufCServiceDescriptor *, const char *,
			    const ProtobufCMessage *);
ProtobufCMessage	*rpc_wait(struct rpc *, struct rpc_status *);

/* The parts without I/O, for the tests. */
const char	*grpc_frame_parse(const uint8_t *, size_t, const uint8_t **,
		    size_t *);
void		 grpc_message_decode(const char *, size_t, char *, size_t);
const char	*grpc_code_name(int);
void		 printable(const char *, size_t, char *, size_t);

#endif /* MSH_RPC_H */
