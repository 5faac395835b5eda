/*
 * A growing text buffer, and the JSON renderings of status messages
 * shared by the https worker's API and mezctl -j.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "sbuf.h"
#include "util.h"

void
sbuf_add(struct sbuf *sb, const char *s, size_t len)
{
	char	*n;
	size_t	 nsize;

	if (sb->failed)
		return;
	if (len >= SIZE_MAX / 2 - sb->len) {
		sb->failed = 1;
		return;
	}
	if (sb->len + len + 1 > sb->size) {
		nsize = sb->size ? sb->size : 1024;
		while (nsize < sb->len + len + 1)
			nsize *= 2;
		if ((n = realloc(sb->buf, nsize)) == NULL) {
			sb->failed = 1;
			return;
		}
		sb->buf = n;
		sb->size = nsize;
	}
	memcpy(sb->buf + sb->len, s, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void
sbuf_puts(struct sbuf *sb, const char *s)
{
	sbuf_add(sb, s, strlen(s));
}

void
sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	char	 tmp[512];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		sb->failed = 1;
		return;
	}
	sbuf_add(sb, tmp, n);
}

/* A JSON string; bytes outside printable ASCII are escaped. */
void
sbuf_json(struct sbuf *sb, const char *s)
{
	const unsigned char	*p;

	sbuf_add(sb, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			sbuf_printf(sb, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			sbuf_printf(sb, "\\u%04x", *p);
		else
			sbuf_add(sb, (const char *)p, 1);
	}
	sbuf_add(sb, "\"", 1);
}

void
sbuf_html(struct sbuf *sb, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			sbuf_puts(sb, "&lt;");
			break;
		case '>':
			sbuf_puts(sb, "&gt;");
			break;
		case '&':
			sbuf_puts(sb, "&amp;");
			break;
		case '"':
			sbuf_puts(sb, "&quot;");
			break;
		default:
			sbuf_add(sb, s, 1);
		}
	}
}

void
sbuf_free(struct sbuf *sb)
{
	free(sb->buf);
	memset(sb, 0, sizeof(*sb));
}

void
json_address(struct sbuf *sb, const Mezite__Address *a)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 host[ADDRSTRLEN];

	if (addr_from_pb(a, &ss, &sslen) == -1) {
		sbuf_puts(sb, "null");
		return;
	}
	sbuf_puts(sb, "{\"address\":");
	sbuf_json(sb, addr_host((struct sockaddr *)&ss, host, sizeof(host)));
	sbuf_printf(sb, ",\"port\":%d}", addr_port((struct sockaddr *)&ss));
}

/* The supervisor knows no connection counts; the master does. */
void
json_proc(struct sbuf *sb, const Mezite__ProcInfo *pi, int conns)
{
	sbuf_puts(sb, "{\"type\":");
	sbuf_json(sb, pi->type);
	sbuf_printf(sb, ",\"instance\":%u,\"pid\":%d,\"started\":%" PRId64
	    ",\"restarts\":%u", pi->instance, pi->pid, pi->started,
	    pi->restarts);
	if (conns)
		sbuf_printf(sb, ",\"connections\":%u,\"total\":%" PRIu64 "}",
		    pi->connections, pi->total);
	else
		sbuf_printf(sb, ",\"restart_at\":%" PRId64 ",\"paired\":%s"
		    ",\"draining\":%s}", pi->restart_at,
		    pi->paired ? "true" : "false",
		    pi->draining ? "true" : "false");
}

void
json_status(struct sbuf *sb, const Mezite__Status *st)
{
	size_t	 i;

	sbuf_puts(sb, "{\"version\":");
	sbuf_json(sb, st->version);
	sbuf_printf(sb, ",\"started\":%" PRId64 ",\"now\":%" PRId64
	    ",\"uptime\":%" PRId64 ",\"draining\":%s", st->started, st->now,
	    st->now - st->started, st->draining ? "true" : "false");
	sbuf_printf(sb, ",\"connections\":{\"total\":%" PRIu64
	    ",\"active\":%u,\"handshakes\":%u,\"handshake_failures\":%"
	    PRIu64 ",\"route_failures\":%" PRIu64 ",\"source_refused\":%"
	    PRIu64 ",\"shed\":%" PRIu64 ",\"sources\":%u}",
	    st->connections_total, st->connections_active,
	    st->handshakes_active, st->handshake_failures,
	    st->route_failures, st->source_refused, st->shed, st->sources);
	sbuf_printf(sb, ",\"bytes\":{\"in\":%" PRIu64 ",\"out\":%" PRIu64 "}",
	    st->bytes_in, st->bytes_out);
	sbuf_printf(sb, ",\"ktls\":%s,\"handoffs\":{\"ktls\":%" PRIu64
	    ",\"relay\":%" PRIu64 "}", st->ktls ? "true" : "false",
	    st->ktls_total, st->relay_total);
	sbuf_puts(sb, ",\"routes\":[");
	for (i = 0; i < st->n_routes; i++) {
		sbuf_puts(sb, i ? ",{\"worker\":" : "{\"worker\":");
		sbuf_json(sb, st->routes[i]->worker);
		sbuf_printf(sb, ",\"active\":%u,\"total\":%" PRIu64 "}",
		    st->routes[i]->active, st->routes[i]->total);
	}
	sbuf_puts(sb, "],\"processes\":[");
	for (i = 0; i < st->n_procs; i++) {
		if (i > 0)
			sbuf_puts(sb, ",");
		json_proc(sb, st->procs[i], 1);
	}
	sbuf_puts(sb, "]}");
}

void
json_conn(struct sbuf *sb, const Mezite__ConnInfo *ci)
{
	sbuf_printf(sb, "{\"id\":%" PRIu64 ",\"client\":", ci->id);
	json_address(sb, ci->client);
	sbuf_puts(sb, ",\"alpn\":");
	sbuf_json(sb, ci->alpn);
	sbuf_puts(sb, ",\"sni\":");
	sbuf_json(sb, ci->sni);
	sbuf_puts(sb, ",\"worker\":");
	sbuf_json(sb, ci->worker);
	sbuf_printf(sb, ",\"worker_pid\":%d,\"bytes_in\":%" PRIu64
	    ",\"bytes_out\":%" PRIu64 ",\"started\":%" PRId64 ",\"state\":",
	    ci->worker_pid, ci->bytes_in, ci->bytes_out, ci->started);
	sbuf_json(sb, ci->state);
	sbuf_printf(sb, ",\"mode\":\"%s\",\"balancer\":",
	    ci->mode == MEZITE__HANDOFF_MODE__KTLS ? "ktls" : "relay");
	json_address(sb, ci->balancer);
	sbuf_puts(sb, "}");
}
