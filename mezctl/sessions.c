/*
 * mezctl: the SSH sessions of the ssh workers (show sessions), and the
 * end of one (kill session).
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "imsg.h"
#include "meta.h"
#include "mezctl.h"
#include "proc.h"
#include "sbuf.h"
#include "util.h"

void
sessions_send(struct imsgbuf *ibuf, const struct parse_result *res)
{
	if (res->action == KILL_SESSION) {
		if (imsg_compose(ibuf, IMSG_CTL_KILL_SESSION, 0, 0, -1,
		    &res->session, sizeof(res->session)) == -1)
			err(1, "write");
		return;
	}
	if (imsg_compose(ibuf, IMSG_CTL_SHOW_SESSIONS, 0, 0, -1, NULL, 0) ==
	    -1)
		err(1, "write");
}

void
sessions_header(void)
{
	printf("%-8s %-16s %-22s %6s %4s %7s %7s %-10s %s\n", "ID", "USER",
	    "CLIENT", "AGE", "CHAN", "IN", "OUT", "PROCESS", "TARGETS");
}

static void
json_session(struct sbuf *sb, const Mezite__SshSession *s)
{
	sbuf_printf(sb, "{\"id\":%" PRIu64 ",\"user\":", s->id);
	sbuf_json(sb, s->user);
	sbuf_puts(sb, ",\"client\":");
	json_address(sb, s->client);
	sbuf_printf(sb, ",\"started\":%" PRId64 ",\"worker\":", s->started);
	sbuf_json(sb, s->worker);
	sbuf_printf(sb, ",\"pid\":%u,\"channels\":%u,\"bytes_in\":%" PRIu64
	    ",\"bytes_out\":%" PRIu64 ",\"targets\":", s->pid, s->channels,
	    s->bytes_in, s->bytes_out);
	sbuf_json(sb, s->targets);
	sbuf_puts(sb, "}");
}

static void
show_session(const Mezite__SshSession *s, int64_t now)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 client[64], age[16], bin[16], bout[16];
	char			 proc[32];

	if (s->client == NULL || addr_from_pb(s->client, &ss, &sslen) == -1)
		(void)strlcpy(client, "?", sizeof(client));
	else
		(void)addr_str((struct sockaddr *)&ss, client, sizeof(client));
	(void)snprintf(proc, sizeof(proc), "%.6s/%u", s->worker, s->pid);
	printf("%-8" PRIu64 " %-16s %-22s %6s %4u %7s %7s %-10s %s\n", s->id,
	    s->user[0] != '\0' ? s->user : "-", client,
	    fmt_duration(now - s->started, age, sizeof(age)), s->channels,
	    fmt_bytes(s->bytes_in, bin, sizeof(bin)),
	    fmt_bytes(s->bytes_out, bout, sizeof(bout)), proc,
	    s->targets[0] != '\0' ? s->targets : "-");
}

/* A part of the list: 0, more may come (the end is IMSG_CTL_END). */
int
sessions_show(struct imsg *imsg, int json, int *nitems)
{
	Mezite__SessionList	*sl;
	struct sbuf		 sb = { 0 };
	size_t			 i;

	if ((sl = pb_unpack(&mezite__session_list__descriptor, imsg)) ==
	    NULL)
		errx(1, "malformed reply");
	for (i = 0; i < sl->n_sessions; i++) {
		if (json) {
			json_session(&sb, sl->sessions[i]);
			if (sb.failed)
				errx(1, "out of memory");
			printf("%s%s", (*nitems)++ ? "," : "", sb.buf);
			sbuf_free(&sb);
		} else
			show_session(sl->sessions[i], time_now());
	}
	pb_free(sl);
	return (0);
}
