/*
 * mezctl's commands for the auth worker's store: users and their SSH
 * keys, roles, join tokens, issued certificates and audit events.
 *
 * Each command is one AdminRequest on the control socket.  The
 * supervisor checks who asks (only root and the daemon's user change
 * anything) and forwards it to an auth worker, whose AdminReply comes
 * back in one or more parts of a bounded size, followed by IMSG_CTL_END;
 * or IMSG_CTL_FAIL comes instead.
 */

#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <readpassphrase.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vis.h>

#include "meta.h"
#include "mezctl.h"
#include "proc.h"
#include "sbuf.h"
#include "util.h"

#define PASSWORD_MAX	511	/* bytes: the most the auth worker takes */
#define SERIAL_MAX	40	/* hex digits: 20 octets (RFC 5280) */
#define TIME_LEN	20	/* "YYYY-MM-DD HH:MM:SS" */
#define COLUMNS_MAX	8
#define KEY_LINE_MAX	8192	/* bytes: the most the auth worker takes */
#define KEYS_MAX	32	/* in a file: the most a user may have */

/* Rows of text, printed in aligned columns. */
struct table {
	size_t	  ncols;
	size_t	  nrows;
	char	**cells;	/* row after row, escaped for the terminal */
};

static const struct {
	enum actions	 action;
	Mezite__AdminOp	 op;
} admin_ops[] = {
	{ USER_ADD,	MEZITE__ADMIN_OP__USER_ADD },
	{ USER_DEL,	MEZITE__ADMIN_OP__USER_DEL },
	{ USER_LIST,	MEZITE__ADMIN_OP__USER_LIST },
	{ USER_PASSWD,	MEZITE__ADMIN_OP__USER_PASSWD },
	{ USER_ROLES,	MEZITE__ADMIN_OP__USER_ROLES },
	{ ROLE_ADD,	MEZITE__ADMIN_OP__ROLE_ADD },
	{ ROLE_DEL,	MEZITE__ADMIN_OP__ROLE_DEL },
	{ ROLE_LIST,	MEZITE__ADMIN_OP__ROLE_LIST },
	{ TOKEN_CREATE,	MEZITE__ADMIN_OP__TOKEN_CREATE },
	{ TOKEN_LIST,	MEZITE__ADMIN_OP__TOKEN_LIST },
	{ TOKEN_REVOKE,	MEZITE__ADMIN_OP__TOKEN_REVOKE },
	{ SHOW_CERTS,	MEZITE__ADMIN_OP__CERT_LIST },
	{ CERT_REVOKE,	MEZITE__ADMIN_OP__CERT_REVOKE },
	{ SHOW_AUDIT,	MEZITE__ADMIN_OP__AUDIT_LIST },
	{ USER_KEY_ADD,	MEZITE__ADMIN_OP__USER_KEY_ADD },
	{ USER_KEY_DEL,	MEZITE__ADMIN_OP__USER_KEY_DEL },
	{ USER_KEY_LIST, MEZITE__ADMIN_OP__USER_KEY_LIST },
	{ SHOW_SSH_CA,	MEZITE__ADMIN_OP__SSH_CA },
};

static void	 password_get(const char *, int, char *, size_t);
static void	 password_fd(int, char *, size_t);
static void	 serial_norm(const char *, char *, size_t);
static void	 show_done(const struct parse_result *);
static void	 show_users(const Mezite__AdminReply *, int);
static void	 show_roles(const Mezite__AdminReply *, int);
static void	 show_tokens(const Mezite__AdminReply *, int);
static void	 show_token_created(const Mezite__AdminReply *, int);
static void	 show_certs(const Mezite__AdminReply *, int);
static void	 show_events(const Mezite__AdminReply *, int);
static void	 show_keys(const Mezite__AdminReply *, int);
static void	 show_ssh_ca(const Mezite__AdminReply *, int);
static void	 json_key(struct sbuf *, const Mezite__AdminKey *);
static void	 json_strv(struct sbuf *, char **, size_t);
static void	 json_token(struct sbuf *, const Mezite__AdminToken *, int);
static void	 json_print(struct sbuf *);
static const char *join(struct sbuf *, char **, size_t);
static const char *fmt_time(int64_t, char *, size_t);
static char	*vis_dup(const char *);
static void	 table_init(struct table *, size_t);
static void	 table_row(struct table *, const char *const *);
static void	 table_print(struct table *);

/* The request an action makes of the auth worker, 0 if none. */
int
admin_op(enum actions action)
{
	size_t	 i;

	for (i = 0; i < nitems(admin_ops); i++)
		if (admin_ops[i].action == action)
			return (admin_ops[i].op);
	return (MEZITE__ADMIN_OP__ADMIN_NONE);
}

/* Whether an action sends a password. */
int
admin_password(enum actions action)
{
	return (action == USER_ADD || action == USER_PASSWD);
}

/*
 * Compose the request; read the password first if it needs one, from
 * descriptor pwfd if it is not -1, otherwise twice from the terminal.
 * The password's bytes are wiped once the message holds them.
 */
void
admin_send(struct imsgbuf *ibuf, const struct parse_result *res, int pwfd)
{
	Mezite__AdminRequest	 req = MEZITE__ADMIN_REQUEST__INIT;
	char			 pw[PASSWORD_MAX + 2];
	char			 serial[SERIAL_MAX + 1];
	int			 rv;

	req.op = admin_op(res->action);
	req.name = res->name != NULL ? res->name : "";
	req.roles = (char **)res->roles.v;
	req.n_roles = res->roles.n;
	req.logins = (char **)res->logins.v;
	req.n_logins = res->logins.n;
	req.nodes = (char **)res->nodes.v;
	req.n_nodes = res->nodes.n;
	req.labels = (char **)res->labels.v;
	req.n_labels = res->labels.n;
	req.services = (char **)res->services.v;
	req.n_services = res->services.n;
	req.ttl = res->ttl;
	req.node = res->node != NULL ? res->node : "";
	req.limit = res->limit;
	req.key = res->key != NULL ? res->key : "";
	if (res->action == CERT_REVOKE) {
		serial_norm(req.name, serial, sizeof(serial));
		req.serial = serial;
		req.name = "";
	}
	memset(pw, 0, sizeof(pw));
	if (admin_password(res->action)) {
		password_get(req.name, pwfd, pw, sizeof(pw));
		req.password = pw;
	}
	rv = pb_compose(ibuf, IMSG_CTL_ADMIN, 0, -1, &req.base);
	explicit_bzero(pw, sizeof(pw));
	if (rv == -1)
		err(1, "compose");
}

static void
password_get(const char *user, int fd, char *pw, size_t len)
{
	char	 again[PASSWORD_MAX + 2], prompt[128];
	int	 same;

	if (fd != -1)
		password_fd(fd, pw, len);
	else {
		(void)snprintf(prompt, sizeof(prompt), "Password for %.64s: ",
		    user);
		if (readpassphrase(prompt, pw, len, RPP_REQUIRE_TTY) == NULL ||
		    readpassphrase("Retype password: ", again, sizeof(again),
		    RPP_REQUIRE_TTY) == NULL) {
			explicit_bzero(pw, len);
			explicit_bzero(again, sizeof(again));
			if (errno == ENOTTY)
				errx(1, "no terminal to read the password "
				    "from; use -p");
			err(1, "password");
		}
		same = strcmp(pw, again) == 0;
		explicit_bzero(again, sizeof(again));
		if (!same) {
			explicit_bzero(pw, len);
			errx(1, "the passwords do not match");
		}
	}
	if (strlen(pw) > PASSWORD_MAX) {
		explicit_bzero(pw, len);
		errx(1, "the password is longer than %d bytes", PASSWORD_MAX);
	}
	if (pw[0] == '\0')
		errx(1, "the password is empty");
}

/*
 * The first line read from fd, without its newline.  One byte at a
 * time: what follows the line stays unread.  More than len - 1 bytes
 * leave pw full, for the caller to refuse.
 */
static void
password_fd(int fd, char *pw, size_t len)
{
	size_t	 n = 0;
	ssize_t	 r;
	char	 c = '\0';

	while (n < len - 1) {
		if ((r = read(fd, &c, 1)) == -1) {
			if (errno == EINTR)
				continue;
			explicit_bzero(pw, len);
			err(1, "password: descriptor %d", fd);
		}
		if (r == 0 || c == '\n')
			break;
		pw[n++] = c;
	}
	pw[n] = '\0';
	explicit_bzero(&c, sizeof(c));
}

/*
 * A serial as the store keeps it: hexadecimal, lower case, no leading
 * zeros.  openssl x509 -serial prints upper case.
 */
static void
serial_norm(const char *s, char *buf, size_t len)
{
	const char	*p = s;
	size_t		 i;

	while (p[0] == '0' && p[1] != '\0')
		p++;
	if (strlen(p) >= len || strspn(p, "0123456789abcdefABCDEF") !=
	    strlen(p))
		errx(1, "invalid serial: %s: up to %d hexadecimal digits", s,
		    SERIAL_MAX);
	for (i = 0; p[i] != '\0'; i++)
		buf[i] = p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i];
	buf[i] = '\0';
}

/* The parts of a reply, until the last. */
static Mezite__AdminReply	**parts;
static size_t			  nparts;

/*
 * One reply made of the parts: the first, its lists holding the entries
 * of every part's.  The arrays are malloc'd; the entries stay the parts'.
 */
static void
parts_join(Mezite__AdminReply *all)
{
	const ProtobufCMessageDescriptor *d = &mezite__admin_reply__descriptor;
	const ProtobufCFieldDescriptor	*f;
	ProtobufCMessage		**v, **pv;
	size_t				 n, pn, i;
	unsigned int			 k;

	*all = *parts[0];
	for (k = 0; k < d->n_fields; k++) {
		f = &d->fields[k];
		if (f->label != PROTOBUF_C_LABEL_REPEATED ||
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		for (i = 0, n = 0; i < nparts; i++)
			n += *(size_t *)((char *)parts[i] +
			    f->quantifier_offset);
		if ((v = calloc(n + 1, sizeof(*v))) == NULL)
			err(1, NULL);
		for (i = 0, n = 0; i < nparts; i++) {
			pn = *(size_t *)((char *)parts[i] +
			    f->quantifier_offset);
			pv = *(ProtobufCMessage ***)((char *)parts[i] +
			    f->offset);
			if (pn > 0)
				memcpy(v + n, pv, pn * sizeof(*v));
			n += pn;
		}
		*(size_t *)((char *)all + f->quantifier_offset) = n;
		*(ProtobufCMessage ***)((char *)all + f->offset) = v;
	}
}

static void
parts_free(Mezite__AdminReply *all)
{
	const ProtobufCMessageDescriptor *d = &mezite__admin_reply__descriptor;
	size_t				 i;
	unsigned int			 k;

	for (k = 0; all != NULL && k < d->n_fields; k++)
		if (d->fields[k].label == PROTOBUF_C_LABEL_REPEATED &&
		    d->fields[k].type == PROTOBUF_C_TYPE_MESSAGE)
			free(*(void **)((char *)all + d->fields[k].offset));
	for (i = 0; i < nparts; i++) {
		for (k = 0; k < parts[i]->n_tokens; k++)
			explicit_bzero(parts[i]->tokens[k]->secret,
			    strlen(parts[i]->tokens[k]->secret));
		pb_free(parts[i]);
	}
	free(parts);
	parts = NULL;
	nparts = 0;
}

/*
 * A part of the AdminReply: 0 once it is taken (and, the last, shown),
 * or -1 if the reply says the request failed.
 */
int
admin_show(struct imsg *imsg, const struct parse_result *res, int json)
{
	Mezite__AdminReply	*part, all, *r = &all, **np;
	char			*msg;
	int			 rv = 0;

	part = pb_unpack(&mezite__admin_reply__descriptor, imsg);
	/* It may hold a token's secret. */
	pb_wipe(imsg);
	if (part == NULL)
		errx(1, "malformed reply");
	if ((np = reallocarray(parts, nparts + 1, sizeof(*np))) == NULL)
		err(1, NULL);
	parts = np;
	parts[nparts++] = part;
	if (part->more && part->error[0] == '\0')
		return (0);
	parts_join(&all);
	if (r->error[0] != '\0') {
		msg = vis_dup(r->error);
		warnx("%s", msg);
		free(msg);
		rv = -1;
	} else {
		switch (res->action) {
		case USER_LIST:
			show_users(r, json);
			break;
		case ROLE_LIST:
			show_roles(r, json);
			break;
		case TOKEN_CREATE:
			show_token_created(r, json);
			break;
		case TOKEN_LIST:
			show_tokens(r, json);
			break;
		case SHOW_CERTS:
			show_certs(r, json);
			break;
		case SHOW_AUDIT:
			show_events(r, json);
			break;
		case USER_KEY_LIST:
			show_keys(r, json);
			break;
		case SHOW_SSH_CA:
			show_ssh_ca(r, json);
			break;
		default:
			show_done(res);
			break;
		}
	}
	parts_free(&all);
	return (rv);
}

/*
 * The SSH user CA's public key line, as the nodes' sshd read it in the
 * file TrustedUserCAKeys names: printed as it came, or refused.
 */
static void
show_ssh_ca(const Mezite__AdminReply *r, int json)
{
	struct sbuf	 sb = { 0 };
	const char	*s = r->ssh_ca;

	if (strncmp(s, "ssh-ed25519 ", 12) != 0 ||
	    strspn(s + 12, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/= -") != strlen(s + 12))
		errx(1, "malformed SSH CA key in the reply");
	if (json) {
		sbuf_puts(&sb, "{\"public_key\":");
		sbuf_json(&sb, s);
		sbuf_puts(&sb, "}");
		json_print(&sb);
	} else
		printf("%s\n", s);
}

/* What a request that changes the store did. */
static void
show_done(const struct parse_result *res)
{
	char	 serial[SERIAL_MAX + 1];

	switch (res->action) {
	case USER_ADD:
		printf("user %s added\n", res->name);
		break;
	case USER_DEL:
		printf("user %s deleted, its certificates revoked\n",
		    res->name);
		break;
	case USER_PASSWD:
		printf("password of user %s changed\n", res->name);
		break;
	case USER_ROLES:
		printf("roles of user %s %s\n", res->name,
		    res->roles.n > 0 ? "set" : "cleared");
		break;
	case ROLE_ADD:
		printf("role %s saved\n", res->name);
		break;
	case ROLE_DEL:
		printf("role %s deleted\n", res->name);
		break;
	case TOKEN_REVOKE:
		printf("token %s revoked\n", res->name);
		break;
	case USER_KEY_DEL:
		printf("key of user %s deleted\n", res->name);
		break;
	case CERT_REVOKE:
		serial_norm(res->name, serial, sizeof(serial));
		printf("certificate %s revoked\n", serial);
		break;
	default:
		break;
	}
}

static void
show_users(const Mezite__AdminReply *r, int json)
{
	const Mezite__AdminUser	*u;
	struct table		 t;
	struct sbuf		 sb = { 0 };
	char			 created[TIME_LEN], changed[TIME_LEN];
	const char		*row[4];
	size_t			 i;

	if (json) {
		sbuf_puts(&sb, "[");
		for (i = 0; i < r->n_users; i++) {
			u = r->users[i];
			sbuf_puts(&sb, i ? ",{\"name\":" : "{\"name\":");
			sbuf_json(&sb, u->name);
			sbuf_puts(&sb, ",\"roles\":");
			json_strv(&sb, u->roles, u->n_roles);
			sbuf_printf(&sb, ",\"created\":%" PRId64
			    ",\"password_changed\":%" PRId64 "}", u->created,
			    u->password_changed);
		}
		sbuf_puts(&sb, "]");
		json_print(&sb);
		return;
	}
	table_init(&t, 4);
	row[0] = "NAME";
	row[1] = "CREATED";
	row[2] = "PASSWORD CHANGED";
	row[3] = "ROLES";
	table_row(&t, row);
	for (i = 0; i < r->n_users; i++) {
		u = r->users[i];
		row[0] = u->name;
		row[1] = fmt_time(u->created, created, sizeof(created));
		row[2] = fmt_time(u->password_changed, changed,
		    sizeof(changed));
		row[3] = join(&sb, u->roles, u->n_roles);
		table_row(&t, row);
		sbuf_free(&sb);
	}
	table_print(&t);
}

static void
show_roles(const Mezite__AdminReply *r, int json)
{
	const Mezite__AdminRole	*ro;
	struct table		 t;
	struct sbuf		 sb = { 0 }, sn = { 0 }, sl = { 0 };
	struct sbuf		 ss = { 0 };
	const char		*row[5];
	size_t			 i;

	if (json) {
		sbuf_puts(&sb, "[");
		for (i = 0; i < r->n_roles; i++) {
			ro = r->roles[i];
			sbuf_puts(&sb, i ? ",{\"name\":" : "{\"name\":");
			sbuf_json(&sb, ro->name);
			sbuf_puts(&sb, ",\"logins\":");
			json_strv(&sb, ro->logins, ro->n_logins);
			sbuf_puts(&sb, ",\"nodes\":");
			json_strv(&sb, ro->nodes, ro->n_nodes);
			sbuf_puts(&sb, ",\"labels\":");
			json_strv(&sb, ro->labels, ro->n_labels);
			sbuf_puts(&sb, ",\"services\":");
			json_strv(&sb, ro->services, ro->n_services);
			sbuf_puts(&sb, "}");
		}
		sbuf_puts(&sb, "]");
		json_print(&sb);
		return;
	}
	table_init(&t, 5);
	row[0] = "NAME";
	row[1] = "LOGINS";
	row[2] = "NODES";
	row[3] = "LABELS";
	row[4] = "SERVICES";
	table_row(&t, row);
	for (i = 0; i < r->n_roles; i++) {
		ro = r->roles[i];
		row[0] = ro->name;
		row[1] = join(&sb, ro->logins, ro->n_logins);
		row[2] = join(&sn, ro->nodes, ro->n_nodes);
		row[3] = join(&sl, ro->labels, ro->n_labels);
		/* None: the bastion's least, ssh alone. */
		row[4] = ro->n_services > 0 ? join(&ss, ro->services,
		    ro->n_services) : "(ssh)";
		table_row(&t, row);
		sbuf_free(&sb);
		sbuf_free(&sn);
		sbuf_free(&sl);
		sbuf_free(&ss);
	}
	table_print(&t);
}

static void
show_tokens(const Mezite__AdminReply *r, int json)
{
	const Mezite__AdminToken	*tk;
	struct table			 t;
	struct sbuf			 sb = { 0 };
	char				 created[TIME_LEN];
	char				 expires[TIME_LEN], used[TIME_LEN];
	const char			*row[5];
	size_t				 i;

	if (json) {
		sbuf_puts(&sb, "[");
		for (i = 0; i < r->n_tokens; i++) {
			if (i > 0)
				sbuf_puts(&sb, ",");
			json_token(&sb, r->tokens[i], 0);
		}
		sbuf_puts(&sb, "]");
		json_print(&sb);
		return;
	}
	table_init(&t, 5);
	row[0] = "ID";
	row[1] = "NODE";
	row[2] = "CREATED";
	row[3] = "EXPIRES";
	row[4] = "USED";
	table_row(&t, row);
	for (i = 0; i < r->n_tokens; i++) {
		tk = r->tokens[i];
		row[0] = tk->id;
		row[1] = tk->node[0] != '\0' ? tk->node : "any";
		row[2] = fmt_time(tk->created, created, sizeof(created));
		row[3] = fmt_time(tk->expires, expires, sizeof(expires));
		row[4] = fmt_time(tk->used, used, sizeof(used));
		table_row(&t, row);
	}
	table_print(&t);
}

/* The one time a token's secret is shown. */
static void
show_token_created(const Mezite__AdminReply *r, int json)
{
	const Mezite__AdminToken	*tk;
	struct sbuf			 sb = { 0 };
	char				 expires[TIME_LEN], in[32];
	char				*id, *node, *secret;

	if (r->n_tokens != 1)
		errx(1, "malformed reply");
	tk = r->tokens[0];
	if (json) {
		json_token(&sb, tk, 1);
		json_print(&sb);
		return;
	}
	secret = vis_dup(tk->secret);
	id = vis_dup(tk->id);
	node = vis_dup(tk->node[0] != '\0' ? tk->node : "any");
	printf("token    %s\n", secret);
	printf("id       %s\n", id);
	printf("node     %s\n", node);
	printf("expires  %s (in %s)\n",
	    fmt_time(tk->expires, expires, sizeof(expires)),
	    fmt_duration(tk->expires - time_now(), in, sizeof(in)));
	freezero(secret, strlen(secret));
	free(id);
	free(node);
}

static void
show_certs(const Mezite__AdminReply *r, int json)
{
	const Mezite__AdminCert	*c;
	struct table		 t;
	struct sbuf		 sb = { 0 };
	char			 nb[TIME_LEN], na[TIME_LEN], rev[TIME_LEN];
	const char		*row[6];
	size_t			 i;

	if (json) {
		sbuf_puts(&sb, "[");
		for (i = 0; i < r->n_certs; i++) {
			c = r->certs[i];
			sbuf_puts(&sb, i ? ",{\"serial\":" : "{\"serial\":");
			sbuf_json(&sb, c->serial);
			sbuf_puts(&sb, ",\"kind\":");
			sbuf_json(&sb, c->kind);
			sbuf_puts(&sb, ",\"name\":");
			sbuf_json(&sb, c->name);
			sbuf_printf(&sb, ",\"not_before\":%" PRId64
			    ",\"not_after\":%" PRId64 ",\"revoked\":%" PRId64
			    "}", c->not_before, c->not_after, c->revoked);
		}
		sbuf_puts(&sb, "]");
		json_print(&sb);
		return;
	}
	table_init(&t, 6);
	row[0] = "SERIAL";
	row[1] = "KIND";
	row[2] = "NAME";
	row[3] = "NOT BEFORE";
	row[4] = "NOT AFTER";
	row[5] = "REVOKED";
	table_row(&t, row);
	for (i = 0; i < r->n_certs; i++) {
		c = r->certs[i];
		row[0] = c->serial;
		row[1] = c->kind;
		row[2] = c->name;
		row[3] = fmt_time(c->not_before, nb, sizeof(nb));
		row[4] = fmt_time(c->not_after, na, sizeof(na));
		row[5] = fmt_time(c->revoked, rev, sizeof(rev));
		table_row(&t, row);
	}
	table_print(&t);
}

static void
show_events(const Mezite__AdminReply *r, int json)
{
	const Mezite__AuditEvent	*e;
	struct table			 t;
	struct sbuf			 sb = { 0 };
	char				 when[TIME_LEN];
	const char			*row[6];
	size_t				 i;

	if (json) {
		sbuf_puts(&sb, "[");
		for (i = 0; i < r->n_events; i++) {
			e = r->events[i];
			sbuf_printf(&sb, "%s{\"time\":%" PRId64 ",\"type\":",
			    i ? "," : "", e->time);
			sbuf_json(&sb, e->type);
			sbuf_puts(&sb, ",\"name\":");
			sbuf_json(&sb, e->name);
			sbuf_puts(&sb, ",\"address\":");
			sbuf_json(&sb, e->address);
			sbuf_printf(&sb, ",\"success\":%s,\"detail\":",
			    e->success ? "true" : "false");
			sbuf_json(&sb, e->detail);
			sbuf_puts(&sb, "}");
		}
		sbuf_puts(&sb, "]");
		json_print(&sb);
		return;
	}
	table_init(&t, 6);
	row[0] = "TIME";
	row[1] = "TYPE";
	row[2] = "NAME";
	row[3] = "ADDRESS";
	row[4] = "SUCCESS";
	row[5] = "DETAIL";
	table_row(&t, row);
	for (i = 0; i < r->n_events; i++) {
		e = r->events[i];
		row[0] = fmt_time(e->time, when, sizeof(when));
		row[1] = e->type;
		row[2] = e->name[0] != '\0' ? e->name : "-";
		row[3] = e->address[0] != '\0' ? e->address : "-";
		row[4] = e->success ? "yes" : "no";
		row[5] = e->detail;
		table_row(&t, row);
	}
	table_print(&t);
}

static void
show_keys(const Mezite__AdminReply *r, int json)
{
	const Mezite__AdminKey	*k;
	struct table		 t;
	struct sbuf		 sb = { 0 };
	char			 added[TIME_LEN];
	const char		*row[5];
	size_t			 i;

	if (json) {
		sbuf_puts(&sb, "[");
		for (i = 0; i < r->n_keys; i++) {
			if (i > 0)
				sbuf_puts(&sb, ",");
			json_key(&sb, r->keys[i]);
		}
		sbuf_puts(&sb, "]");
		json_print(&sb);
		return;
	}
	table_init(&t, 5);
	row[0] = "USER";
	row[1] = "TYPE";
	row[2] = "FINGERPRINT";
	row[3] = "ADDED";
	row[4] = "COMMENT";
	table_row(&t, row);
	for (i = 0; i < r->n_keys; i++) {
		k = r->keys[i];
		row[0] = k->user;
		row[1] = k->type;
		row[2] = k->fingerprint;
		row[3] = fmt_time(k->added, added, sizeof(added));
		row[4] = k->comment[0] != '\0' ? k->comment : "-";
		table_row(&t, row);
	}
	table_print(&t);
}

static void
json_key(struct sbuf *sb, const Mezite__AdminKey *k)
{
	sbuf_puts(sb, "{\"user\":");
	sbuf_json(sb, k->user);
	sbuf_puts(sb, ",\"type\":");
	sbuf_json(sb, k->type);
	sbuf_puts(sb, ",\"fingerprint\":");
	sbuf_json(sb, k->fingerprint);
	sbuf_puts(sb, ",\"comment\":");
	sbuf_json(sb, k->comment);
	sbuf_printf(sb, ",\"added\":%" PRId64 "}", k->added);
}

/*
 * The next message on the control socket, waiting at most
 * REPLY_TIMEOUT for it.
 */
static void
reply_next(struct imsgbuf *ibuf, struct imsg *imsg)
{
	struct pollfd	 pfd;
	ssize_t		 n;

	for (;;) {
		if ((n = imsg_get(ibuf, imsg)) == -1)
			errx(1, "malformed reply");
		if (n > 0)
			return;
		pfd.fd = ibuf->fd;
		pfd.events = POLLIN;
		switch (poll(&pfd, 1, REPLY_TIMEOUT)) {
		case -1:
			if (errno == EINTR)
				continue;
			err(1, "poll");
		case 0:
			errx(1, "no reply from mezited");
		}
		if ((n = imsgbuf_read(ibuf)) == -1)
			err(1, "read");
		if (n == 0)
			errx(1, "mezited closed the connection");
	}
}

/*
 * Add one key, the line'th of file: 0 if it was, 1 if the auth worker
 * refused it, -1 if the request failed (permission denied, no auth
 * worker): no other key would fare better.
 */
static int
key_add(struct imsgbuf *ibuf, const struct parse_result *res, char *line,
    const char *file, unsigned long lineno, struct sbuf *js)
{
	Mezite__AdminRequest	 req = MEZITE__ADMIN_REQUEST__INIT;
	Mezite__AdminReply	*r = NULL;
	Mezite__CtlError	*e;
	struct imsg		 imsg;
	char			*msg;
	int			 rv = 0, done = 0;

	req.op = MEZITE__ADMIN_OP__USER_KEY_ADD;
	req.name = res->name;
	req.key = line;
	if (pb_compose(ibuf, IMSG_CTL_ADMIN, 0, -1, &req.base) == -1)
		err(1, "compose");
	if (imsgbuf_flush(ibuf) == -1)
		err(1, "write");
	while (!done) {
		reply_next(ibuf, &imsg);
		switch (imsg_get_type(&imsg)) {
		case IMSG_CTL_ADMIN_REPLY:
			pb_free(r);
			if ((r = pb_unpack(&mezite__admin_reply__descriptor,
			    &imsg)) == NULL)
				errx(1, "malformed reply");
			break;
		case IMSG_CTL_END:
			done = 1;
			break;
		case IMSG_CTL_FAIL:
			if ((e = pb_unpack(&mezite__ctl_error__descriptor,
			    &imsg)) == NULL)
				errx(1, "malformed reply");
			msg = vis_dup(e->message);
			warnx("%s", msg);
			free(msg);
			pb_free(e);
			rv = -1;
			done = 1;
			break;
		default:
			errx(1, "unexpected reply %u", imsg_get_type(&imsg));
		}
		imsg_free(&imsg);
	}
	if (rv == 0 && r == NULL)
		errx(1, "malformed reply");
	if (rv == 0 && r->error[0] != '\0') {
		msg = vis_dup(r->error);
		warnx("%s:%lu: %s", file, lineno, msg);
		free(msg);
		rv = 1;
	} else if (rv == 0) {
		if (r->n_keys != 1)
			errx(1, "malformed reply");
		if (js != NULL) {
			sbuf_puts(js, js->len > 1 ? "," : "");
			json_key(js, r->keys[0]);
		} else {
			msg = vis_dup(r->keys[0]->fingerprint);
			printf("user %s: key %s added\n", res->name, msg);
			free(msg);
		}
	}
	pb_free(r);
	return (rv);
}

/*
 * user key add USER FILE: each line of the file that is neither empty
 * nor a comment is a key, added in turn.  A key refused is reported
 * with its file and line, and the others are still added; the exit
 * status says whether any was refused.
 */
int
admin_keys_add(struct imsgbuf *ibuf, const struct parse_result *res,
    int json)
{
	struct sbuf	 js = { 0 };
	FILE		*f;
	const char	*file;
	char		*line = NULL, *p;
	size_t		 cap = 0;
	ssize_t		 len;
	unsigned long	 lineno = 0;
	int		 nkeys = 0, failed = 0, rv;

	if (strcmp(res->key, "-") == 0) {
		f = stdin;
		file = "(stdin)";
	} else {
		if ((f = fopen(res->key, "r")) == NULL)
			err(1, "%s", res->key);
		file = res->key;
	}
	if (json)
		sbuf_puts(&js, "[");
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r'))
			line[--len] = '\0';
		p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		if ((size_t)len != strlen(line)) {
			warnx("%s:%lu: the line holds a NUL byte", file,
			    lineno);
			failed = 1;
			continue;
		}
		if (len > KEY_LINE_MAX) {
			warnx("%s:%lu: the line is longer than %d bytes", file,
			    lineno, KEY_LINE_MAX);
			failed = 1;
			continue;
		}
		if (++nkeys > KEYS_MAX) {
			warnx("%s:%lu: more than %d keys, the most a user "
			    "may have", file, lineno, KEYS_MAX);
			failed = 1;
			break;
		}
		if ((rv = key_add(ibuf, res, p, file, lineno,
		    json ? &js : NULL)) == -1) {
			failed = 1;
			break;
		}
		if (rv == 1)
			failed = 1;
	}
	if (ferror(f))
		err(1, "%s", file);
	free(line);
	if (f != stdin)
		(void)fclose(f);
	if (nkeys == 0 && !failed) {
		warnx("%s: no key in it", file);
		failed = 1;
	}
	if (json) {
		sbuf_puts(&js, "]");
		json_print(&js);
	}
	return (failed);
}

static void
json_strv(struct sbuf *sb, char **v, size_t n)
{
	size_t	 i;

	sbuf_puts(sb, "[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sbuf_puts(sb, ",");
		sbuf_json(sb, v[i]);
	}
	sbuf_puts(sb, "]");
}

static void
json_token(struct sbuf *sb, const Mezite__AdminToken *tk, int secret)
{
	sbuf_puts(sb, "{\"id\":");
	sbuf_json(sb, tk->id);
	sbuf_puts(sb, ",\"node\":");
	sbuf_json(sb, tk->node);
	sbuf_printf(sb, ",\"created\":%" PRId64 ",\"expires\":%" PRId64
	    ",\"used\":%" PRId64, tk->created, tk->expires, tk->used);
	if (secret) {
		sbuf_puts(sb, ",\"secret\":");
		sbuf_json(sb, tk->secret);
	}
	sbuf_puts(sb, "}");
}

/* One JSON document, and the buffer wiped: it may hold a secret. */
static void
json_print(struct sbuf *sb)
{
	if (sb->failed)
		errx(1, "out of memory");
	printf("%s\n", sb->buf);
	explicit_bzero(sb->buf, sb->len);
	sbuf_free(sb);
}

/* A list as "a,b,c", or "-" if it is empty; sb holds the text. */
static const char *
join(struct sbuf *sb, char **v, size_t n)
{
	size_t	 i;

	if (n == 0)
		return ("-");
	for (i = 0; i < n; i++) {
		if (i > 0)
			sbuf_puts(sb, ",");
		sbuf_puts(sb, v[i]);
	}
	if (sb->failed)
		errx(1, "out of memory");
	return (sb->buf);
}

/* "YYYY-MM-DD HH:MM:SS" in UTC, or "-" for 0. */
static const char *
fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if (t == 0)
		(void)strlcpy(buf, "-", len);
	else if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		(void)strlcpy(buf, "?", len);
	return (buf);
}

/* A copy of s safe to print on a terminal. */
static char *
vis_dup(const char *s)
{
	char	*v;

	if (stravis(&v, s, VIS_OCTAL | VIS_CSTYLE | VIS_TAB | VIS_NL |
	    VIS_NOLOCALE) == -1)
		err(1, "stravis");
	return (v);
}

static void
table_init(struct table *t, size_t ncols)
{
	if (ncols == 0 || ncols > COLUMNS_MAX)
		errx(1, "%s: %zu columns", __func__, ncols);
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

static void
table_row(struct table *t, const char *const *cols)
{
	char	**cells;
	size_t	  i;

	if ((cells = reallocarray(t->cells, t->nrows + 1,
	    t->ncols * sizeof(*cells))) == NULL)
		err(1, "%s", __func__);
	t->cells = cells;
	for (i = 0; i < t->ncols; i++)
		cells[t->nrows * t->ncols + i] = vis_dup(cols[i]);
	t->nrows++;
}

/* Every column as wide as its widest cell; then the table is freed. */
static void
table_print(struct table *t)
{
	size_t	 width[COLUMNS_MAX] = { 0 };
	size_t	 r, c, n;
	char	*cell;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			n = strlen(t->cells[r * t->ncols + c]);
			if (n > width[c])
				width[c] = n;
		}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			cell = t->cells[r * t->ncols + c];
			if (c == t->ncols - 1)
				printf("%s\n", cell);
			else
				printf("%-*s  ", (int)width[c], cell);
			free(cell);
		}
	}
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
