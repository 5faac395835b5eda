/*
 * Protobuf payloads on imsg channels, and the session metadata a worker
 * receives with each handed-off descriptor.
 *
 * A payload that does not unpack, or that unpacks to values a sender
 * could not have meant (an address of the wrong length, a port out of
 * range), is refused here so that no caller has to check it again.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"

#define PB_STACKBUF	4096

/* Pack a message and queue it; the fd, if any, goes with it. */
int
pb_compose(struct imsgbuf *ibuf, uint32_t type, uint32_t peerid, int fd,
    const ProtobufCMessage *msg)
{
	uint8_t	 stackbuf[PB_STACKBUF], *buf = stackbuf;
	size_t	 len;
	int	 ret;

	len = protobuf_c_message_get_packed_size(msg);
	if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL) {
		if (fd != -1)
			close(fd);
		return (-1);
	}
	if (protobuf_c_message_pack(msg, buf) != len) {
		if (buf != stackbuf)
			free(buf);
		if (fd != -1)
			close(fd);
		errno = EINVAL;
		return (-1);
	}
	ret = imsg_compose(ibuf, type, peerid, 0, fd, len ? buf : NULL, len);
	explicit_bzero(buf, len);	/* keypairs travel this way */
	if (buf != stackbuf)
		free(buf);
	return (ret);
}

/* Unpack an imsg's payload; NULL if it is malformed. */
void *
pb_unpack(const ProtobufCMessageDescriptor *desc, struct imsg *imsg)
{
	size_t	 len = imsg_get_len(imsg);

	return (protobuf_c_message_unpack(desc, NULL, len,
	    len ? imsg->data : (const uint8_t *)""));
}

void
pb_free(void *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
}

void
addr_to_pb(const struct sockaddr *sa, struct pb_addr *a)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	mezite__address__init(&a->pb);
	a->pb.family = sa->sa_family;
	a->pb.addr.data = a->bytes;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		memcpy(a->bytes, &sin->sin_addr, 4);
		a->pb.addr.len = 4;
		a->pb.port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(a->bytes, &sin6->sin6_addr, 16);
		a->pb.addr.len = 16;
		a->pb.port = ntohs(sin6->sin6_port);
		break;
	default:
		a->pb.family = AF_UNIX;
		a->pb.addr.len = 0;
		a->pb.port = 0;
		break;
	}
}

int
addr_from_pb(const Mezite__Address *a, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;

	memset(ss, 0, sizeof(*ss));
	if (a == NULL || a->port > 65535)
		return (-1);
	switch (a->family) {
	case AF_INET:
		if (a->addr.len != 4)
			return (-1);
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->addr.data, 4);
		sin->sin_port = htons((uint16_t)a->port);
		*sslen = sizeof(*sin);
		return (0);
	case AF_INET6:
		if (a->addr.len != 16)
			return (-1);
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->addr.data, 16);
		sin6->sin6_port = htons((uint16_t)a->port);
		*sslen = sizeof(*sin6);
		return (0);
	case AF_UNIX:
		if (a->addr.len != 0 || a->port != 0)
			return (-1);
		sun->sun_family = AF_UNIX;
		*sslen = sizeof(sun->sun_family);
		return (0);
	default:
		return (-1);
	}
}

/* Is this metadata something a correct master could have sent? */
int
meta_valid(const Mezite__ConnMeta *m)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;

	if (m->id == 0 || m->client == NULL || m->local == NULL)
		return (0);
	if (addr_from_pb(m->client, &ss, &sslen) == -1 ||
	    addr_from_pb(m->local, &ss, &sslen) == -1)
		return (0);
	if (m->mode != MEZITE__HANDOFF_MODE__RELAY &&
	    m->mode != MEZITE__HANDOFF_MODE__KTLS)
		return (0);
	if (m->cert != NULL && strncmp(m->cert->fingerprint, "SHA256:", 7))
		return (0);
	return (1);
}

Mezite__ConnMeta *
meta_decode(const void *data, size_t len)
{
	Mezite__ConnMeta	*m;

	m = mezite__conn_meta__unpack(NULL, len,
	    len ? data : (const uint8_t *)"");
	if (m == NULL)
		return (NULL);
	if (!meta_valid(m)) {
		mezite__conn_meta__free_unpacked(m, NULL);
		return (NULL);
	}
	return (m);
}

/* Wipe a received payload that held a secret (a key, a password). */
void
pb_wipe(struct imsg *imsg)
{
	if (imsg_get_len(imsg) > 0)
		explicit_bzero(imsg->data, imsg_get_len(imsg));
}

#ifndef MINIMUM
#define MINIMUM(a, b)	(((a) < (b)) ? (a) : (b))
#endif
#ifndef MAXIMUM
#define MAXIMUM(a, b)	(((a) > (b)) ? (a) : (b))
#endif

static uint64_t
sum64(uint64_t a, uint64_t b)
{
	return (a > UINT64_MAX - b ? UINT64_MAX : a + b);
}

static uint32_t
sum32(uint32_t a, uint32_t b)
{
	return (a > UINT32_MAX - b ? UINT32_MAX : a + b);
}

/*
 * Several masters' status answers as one: counters added, routes added
 * by worker type, each process listed once (by type, instance and pid)
 * with the connections every master counts for it: a worker serves
 * every master, and each master lists itself and its workers.  The
 * earliest master start, the latest clock, draining or kTLS if any is.
 * The strings stay the answers': free out with status_parts_free()
 * before them.
 */
int
status_merge(Mezite__Status *out, Mezite__Status *const *in, size_t n)
{
	Mezite__RouteStats	*rs, **routes;
	Mezite__ProcInfo	*pi, **procs;
	const Mezite__Status	*st;
	size_t			 i, j, k, nr = 0, np = 0;

	for (i = 0; i < n; i++) {
		nr += in[i]->n_routes;
		np += in[i]->n_procs;
	}
	rs = NULL;
	pi = NULL;
	routes = NULL;
	procs = NULL;
	if ((nr > 0 && (rs = calloc(nr, sizeof(*rs))) == NULL) ||
	    (routes = calloc(nr + 1, sizeof(*routes))) == NULL ||
	    (np > 0 && (pi = calloc(np, sizeof(*pi))) == NULL) ||
	    (procs = calloc(np + 1, sizeof(*procs))) == NULL) {
		free(rs);
		free(routes);
		free(pi);
		return (-1);
	}
	*out = *in[0];
	out->n_routes = out->n_procs = 0;
	out->routes = routes;
	out->procs = procs;
	for (i = 0; i < n; i++) {
		st = in[i];
		if (i > 0) {
			out->now = MAXIMUM(out->now, st->now);
			out->master_started = MINIMUM(out->master_started,
			    st->master_started);
			out->connections_total = sum64(out->connections_total,
			    st->connections_total);
			out->connections_active =
			    sum32(out->connections_active,
			    st->connections_active);
			out->handshake_failures =
			    sum64(out->handshake_failures,
			    st->handshake_failures);
			out->route_failures = sum64(out->route_failures,
			    st->route_failures);
			out->bytes_in = sum64(out->bytes_in, st->bytes_in);
			out->bytes_out = sum64(out->bytes_out, st->bytes_out);
			out->handshakes_active = sum32(out->handshakes_active,
			    st->handshakes_active);
			out->draining = out->draining || st->draining;
			out->ktls_total = sum64(out->ktls_total,
			    st->ktls_total);
			out->relay_total = sum64(out->relay_total,
			    st->relay_total);
			out->ktls = out->ktls || st->ktls;
			out->source_refused = sum64(out->source_refused,
			    st->source_refused);
			out->shed = sum64(out->shed, st->shed);
			out->sources = sum32(out->sources, st->sources);
		}
		for (j = 0; j < st->n_routes; j++) {
			for (k = 0; k < out->n_routes; k++)
				if (strcmp(routes[k]->worker,
				    st->routes[j]->worker) == 0)
					break;
			if (k == out->n_routes) {
				rs[k] = *st->routes[j];
				routes[out->n_routes++] = &rs[k];
				continue;
			}
			rs[k].total = sum64(rs[k].total, st->routes[j]->total);
			rs[k].active = sum32(rs[k].active,
			    st->routes[j]->active);
		}
		for (j = 0; j < st->n_procs; j++) {
			for (k = 0; k < out->n_procs; k++)
				if (strcmp(procs[k]->type,
				    st->procs[j]->type) == 0 &&
				    procs[k]->instance ==
				    st->procs[j]->instance &&
				    procs[k]->pid == st->procs[j]->pid)
					break;
			if (k == out->n_procs) {
				pi[k] = *st->procs[j];
				procs[out->n_procs++] = &pi[k];
				continue;
			}
			pi[k].connections = sum32(pi[k].connections,
			    st->procs[j]->connections);
			pi[k].total = sum64(pi[k].total, st->procs[j]->total);
		}
	}
	return (0);
}

/* How many of the processes are masters. */
int
procs_masters(Mezite__ProcInfo *const *procs, size_t n)
{
	size_t	 i;
	int	 masters = 0;

	for (i = 0; i < n; i++)
		if (strcmp(procs[i]->type, "master") == 0)
			masters++;
	return (masters);
}

/*
 * A process's name as people read it: "master" while it is the only
 * one, else "master.1", and always "https.0".
 */
void
proc_label(const Mezite__ProcInfo *pi, int masters, char *buf, size_t len)
{
	if (strcmp(pi->type, "master") == 0 && masters <= 1)
		(void)strlcpy(buf, pi->type, len);
	else
		(void)snprintf(buf, len, "%.16s.%u", pi->type, pi->instance);
}

/*
 * The arrays of a Status whose routes and processes each sit in one
 * block behind the first pointer: status_merge()'s, and the master's.
 */
void
status_parts_free(Mezite__Status *st)
{
	if (st->n_routes > 0)
		free(st->routes[0]);
	free(st->routes);
	if (st->n_procs > 0)
		free(st->procs[0]);
	free(st->procs);
}
