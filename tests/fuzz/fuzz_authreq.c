/*
 * The auth worker's request messages, as a client sends them: each of
 * the service's request types must decode or be refused, never crash
 * or leak.  A decoded role request's patterns are then matched against
 * a node made of the same bytes, as ListNodes matches roles.
 *
 * The first byte picks the message type; the rest is the message.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth.pb-c.h"
#include "health.pb-c.h"
#include "mezite.pb-c.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const ProtobufCMessageDescriptor *const types[] = {
	&mezite__auth__v1__login_request__descriptor,
	&mezite__auth__v1__join_request__descriptor,
	&mezite__auth__v1__who_am_irequest__descriptor,
	&mezite__auth__v1__list_nodes_request__descriptor,
	&grpc__health__v1__health_check_request__descriptor,
	&mezite__admin_request__descriptor,
	&mezite__auth__v1__renew_request__descriptor,
	&mezite__node_state__descriptor,
};

/* What ListNodes does with a role, on the request's own strings. */
static void
match(const Mezite__AdminRequest *req)
{
	struct store_role	 r;
	struct store_node	 n;
	struct store_strv	 logins;

	memset(&r, 0, sizeof(r));
	memset(&n, 0, sizeof(n));
	r.name = req->name;
	r.logins.v = req->logins;
	r.logins.n = req->n_logins;
	r.nodes.v = req->nodes;
	r.nodes.n = req->n_nodes;
	r.labels.v = req->labels;
	r.labels.n = req->n_labels;
	r.services.v = req->services;
	r.services.n = req->n_services;
	n.name = req->node;
	n.labels.v = req->roles;		/* "key=value" */
	n.labels.n = req->n_roles;
	if (rbac_node_logins(&r, 1, &n, &logins) == 0)
		store_strv_clear(&logins);
	(void)rbac_role_allows_service(&r, req->key);
	(void)auth_name_valid(req->name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const ProtobufCMessageDescriptor	*d;
	ProtobufCMessage			*m;

	if (len < 1)
		return (0);
	d = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	if ((m = protobuf_c_message_unpack(d, NULL, len - 1,
	    data + 1)) == NULL)
		return (0);
	if (d == &mezite__admin_request__descriptor &&
	    ((Mezite__AdminRequest *)m)->n_logins +
	    ((Mezite__AdminRequest *)m)->n_nodes +
	    ((Mezite__AdminRequest *)m)->n_labels +
	    ((Mezite__AdminRequest *)m)->n_roles < 64)
		match((Mezite__AdminRequest *)m);
	protobuf_c_message_free_unpacked(m, NULL);
	return (0);
}
