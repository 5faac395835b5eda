/*
 * mezctl: the nodes the tunnel workers know (show nodes), and a stream
 * to a node's service (connect).
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "meta.h"
#include "mezctl.h"
#include "proc.h"
#include "sbuf.h"
#include "util.h"

#define COPY_BUF	(16 * 1024)	/* each way */
#define LIST_SHOWN	48		/* services and labels, in a column */

void
nodes_send(struct imsgbuf *ibuf, const struct parse_result *res)
{
	Mezite__DialRequest	 req = MEZITE__DIAL_REQUEST__INIT;

	if (res->action == SHOW_NODES || res->action == SHOW_CLUSTERS) {
		if (imsg_compose(ibuf, IMSG_CTL_SHOW_NODES, 0, 0, -1, NULL,
		    0) == -1)
			err(1, "write");
		return;
	}
	req.node = res->node;
	req.service = res->service;
	if (pb_compose(ibuf, IMSG_CTL_CONNECT, 0, -1, &req.base) == -1)
		err(1, "write");
}

void
nodes_header(void)
{
	printf("%-20s %-7s %8s %7s %7s %7s %-24s %s\n", "NAME", "STATE",
	    "SINCE", "STREAMS", "IN", "OUT", "SERVICES", "LABELS");
}

static void
json_node(struct sbuf *sb, const Mezite__NodeState *ns)
{
	size_t	 i;

	sbuf_puts(sb, "{\"name\":");
	sbuf_json(sb, ns->name);
	sbuf_printf(sb, ",\"online\":%s,\"since\":%" PRId64 ",\"labels\":{",
	    ns->online ? "true" : "false", ns->since);
	for (i = 0; i < ns->n_labels; i++) {
		if (i > 0)
			sbuf_puts(sb, ",");
		sbuf_json(sb, ns->labels[i]->key);
		sbuf_puts(sb, ":");
		sbuf_json(sb, ns->labels[i]->value);
	}
	sbuf_puts(sb, "},\"services\":[");
	for (i = 0; i < ns->n_services; i++) {
		if (i > 0)
			sbuf_puts(sb, ",");
		sbuf_json(sb, ns->services[i]);
	}
	sbuf_puts(sb, "],\"version\":");
	sbuf_json(sb, ns->version);
	sbuf_puts(sb, ",\"address\":");
	json_address(sb, ns->address);
	sbuf_printf(sb, ",\"streams\":%u,\"bytes_in\":%" PRIu64
	    ",\"bytes_out\":%" PRIu64 ",\"serial\":", ns->streams,
	    ns->bytes_in, ns->bytes_out);
	sbuf_json(sb, ns->serial);
	sbuf_puts(sb, ",\"worker\":");
	sbuf_json(sb, ns->worker);
	sbuf_puts(sb, ",\"kind\":");
	sbuf_json(sb, ns->kind);
	sbuf_puts(sb, "}");
}

/* "a,b,c", cut with "..." past LIST_SHOWN bytes. */
static const char *
fmt_list(char **v, size_t n, char *buf, size_t len)
{
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			(void)strlcat(buf, ",", len);
		(void)strlcat(buf, v[i], len);
	}
	if (strlen(buf) > LIST_SHOWN)
		(void)strlcpy(buf + LIST_SHOWN - 3, "...",
		    len - LIST_SHOWN + 3);
	return (buf[0] != '\0' ? buf : "-");
}

static void
show_node(const Mezite__NodeState *ns)
{
	char	 since[32], bin[16], bout[16], services[1024], labels[1024];
	char	*kv[64];
	char	 pairs[64][132];
	size_t	 i, n;

	n = ns->n_labels < nitems(kv) ? ns->n_labels : nitems(kv);
	for (i = 0; i < n; i++) {
		(void)snprintf(pairs[i], sizeof(pairs[i]), "%s=%s",
		    ns->labels[i]->key, ns->labels[i]->value);
		kv[i] = pairs[i];
	}
	printf("%-20s %-7s %8s %7u %7s %7s %-24s %s\n", ns->name,
	    ns->online ? "online" : "offline",
	    fmt_duration(time_now() - ns->since, since, sizeof(since)),
	    ns->streams, fmt_bytes(ns->bytes_in, bin, sizeof(bin)),
	    fmt_bytes(ns->bytes_out, bout, sizeof(bout)),
	    fmt_list(ns->services, ns->n_services, services,
	    sizeof(services)), fmt_list(kv, n, labels, sizeof(labels)));
}

/* A part of the nodes: 0, more may come. */
int
nodes_show(struct imsg *imsg, const char *kind, int json, int *nshown)
{
	Mezite__NodeList	*nl;
	struct sbuf		 sb = { 0 };
	size_t			 i;

	if ((nl = pb_unpack(&mezite__node_list__descriptor, imsg)) == NULL)
		errx(1, "malformed reply");
	for (i = 0; i < nl->n_nodes; i++) {
		if (strcmp(nl->nodes[i]->kind, kind) != 0)
			continue;
		if (json) {
			json_node(&sb, nl->nodes[i]);
			if (sb.failed)
				errx(1, "out of memory");
			printf("%s%s", (*nshown)++ ? "," : "", sb.buf);
			sbuf_free(&sb);
		} else
			show_node(nl->nodes[i]);
	}
	pb_free(nl);
	return (0);
}

/*
 * Copy stdin to the stream and the stream to stdout until the stream's
 * read side ends; stdin's end is passed on as a half-close.  -1 if the
 * stream was cut rather than ended.
 */
static int
copy_stream(int s)
{
	struct pollfd	 pfd[2];
	char		 in[COPY_BUF], out[COPY_BUF];
	size_t		 inlen = 0, inoff = 0, outlen = 0, outoff = 0;
	ssize_t		 n;
	int		 stdin_eof = 0, s_eof = 0, shut = 0;

	for (;;) {
		if (stdin_eof && inlen == 0 && !shut) {
			if (shutdown(s, SHUT_WR) == -1 && errno != ENOTCONN)
				err(1, "shutdown");
			shut = 1;
		}
		if (s_eof && outlen == 0) {
			/*
			 * A stream that ended is half-closed to us until
			 * we end too; one that was cut (its node or its
			 * tunnel went) is closed, and takes nothing more.
			 */
			if (!shut && send(s, "", 0, MSG_NOSIGNAL) == -1 &&
			    errno == EPIPE) {
				warnx("the stream was cut");
				return (-1);
			}
			return (0);
		}
		pfd[0].fd = STDIN_FILENO;
		pfd[0].events = 0;
		if (!stdin_eof && inlen == 0)
			pfd[0].events |= POLLIN;
		pfd[1].fd = s;
		pfd[1].events = 0;
		if (!s_eof && outlen == 0)
			pfd[1].events |= POLLIN;
		if (inlen > 0)
			pfd[1].events |= POLLOUT;
		if (pfd[0].events == 0)
			pfd[0].fd = -1;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(STDIN_FILENO, in, sizeof(in));
			if (n == -1 && errno != EINTR && errno != EAGAIN)
				err(1, "stdin");
			if (n == 0)
				stdin_eof = 1;
			else if (n > 0) {
				inlen = n;
				inoff = 0;
			}
		}
		if ((pfd[1].revents & POLLOUT) && inlen > 0) {
			n = write(s, in + inoff, inlen);
			if (n == -1 && errno != EINTR && errno != EAGAIN)
				err(1, "stream");
			if (n > 0) {
				inoff += n;
				inlen -= n;
			}
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR) &&
		    !s_eof && outlen == 0) {
			n = read(s, out, sizeof(out));
			if (n == -1 && errno != EINTR && errno != EAGAIN)
				err(1, "stream");
			if (n == 0)
				s_eof = 1;
			else if (n > 0) {
				outlen = n;
				outoff = 0;
			}
		}
		while (outlen > 0) {
			n = write(STDOUT_FILENO, out + outoff, outlen);
			if (n == -1) {
				if (errno == EINTR)
					continue;
				err(1, "stdout");
			}
			outoff += n;
			outlen -= n;
		}
	}
}

/*
 * The stream, or why there is none: 1 with the stream in *streamp, -1
 * failed.  The caller closes the control connection first, then copies
 * (nodes_copy): a stream holds no place on the control socket.
 */
int
nodes_connect(struct imsg *imsg, const struct parse_result *res,
    int *streamp)
{
	Mezite__DialReply	*r;
	int			 fd = imsg_get_fd(imsg);

	if ((r = pb_unpack(&mezite__dial_reply__descriptor, imsg)) == NULL)
		errx(1, "malformed reply");
	if (r->error != MEZITE__DIAL_ERROR__DIAL_OK || fd == -1) {
		fprintf(stderr, "mezctl: node %s: %s\n", res->node,
		    r->message[0] != '\0' ? r->message : "no stream");
		if (fd != -1)
			close(fd);
		pb_free(r);
		return (-1);
	}
	pb_free(r);
	*streamp = fd;
	return (1);
}

/* Copy between stdin/stdout and the stream: 0, or -1 failed. */
int
nodes_copy(int fd)
{
	int	 rc = 0;

	/* Neither side waits on the other: poll says who may go on. */
	if (fd_nonblock(fd) == -1)
		err(1, "stream");
	if (copy_stream(fd) == -1)
		rc = -1;
	close(fd);
	return (rc);
}
