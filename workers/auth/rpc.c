/*
 * The auth service's methods (proto/auth.proto) and the standard health
 * check.  Each runs to its end in the gRPC layer's callback and answers
 * with grpc_reply() or grpc_error().
 *
 * Failed logins are counted per user and per client address (an IPv6
 * client by its /64): past a few, each further failure doubles the time
 * before that user or address may try again, and attempts before then
 * are refused without a password check.  An unknown user costs the same
 * password check as a known one, so that the time of an answer does not
 * tell whether a user exists.  Passwords are wiped once checked and are
 * never logged.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "auth.h"
#include "ca.h"
#include "grpc.h"
#include "log.h"
#include "meta.h"
#include "passwd.h"
#include "ratelimit.h"
#include "sshcert.h"
#include "sshkey.h"
#include "util.h"

#define SKEW		60	/* certificates are valid from a minute ago */
#define THROTTLED_AUDITS 10	/* refusals audited, a second at most */

/* The client's address for the log, and its key for the rate limits. */
struct client {
	char	 addr[INET6_ADDRSTRLEN];
	char	 key[INET6_ADDRSTRLEN + 8];
};

static void
client_get(const Mezite__ConnMeta *meta, struct client *cl)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct in6_addr		 net;
	socklen_t		 len;

	(void)strlcpy(cl->addr, "unknown", sizeof(cl->addr));
	(void)strlcpy(cl->key, "addr:unknown", sizeof(cl->key));
	if (meta->client == NULL || addr_from_pb(meta->client, &ss, &len) == -1)
		return;
	if (addr_host((struct sockaddr *)&ss, cl->addr, sizeof(cl->addr)) ==
	    NULL)
		return;
	if (ss.ss_family == AF_INET6) {
		/* One client often has a whole /64. */
		net = sin6->sin6_addr;
		memset(net.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &net, cl->key + 5,
		    sizeof(cl->key) - 5) != NULL) {
			memcpy(cl->key, "addr:", 5);
			return;
		}
	}
	(void)snprintf(cl->key, sizeof(cl->key), "addr:%s", cl->addr);
}

/*
 * Refused for too many failures: 1 with the error sent.  A refusal costs
 * the client nothing, so a flood of them could cost the store a synced
 * write each: at most THROTTLED_AUDITS a second are audited, the next
 * one saying how many were not.
 */
static int
throttled(struct grpc_call *call, const char *userkey, const char *addrkey,
    const char *name, const char *addr)
{
	static time_t		 second;
	static unsigned int	 audited, unsaid;
	unsigned int		 u = 0, a = 0;
	time_t			 now = time(NULL);

	if ((userkey == NULL ||
	    ratelimit_check(aenv.rl_user, userkey, now, &u) == 0) &&
	    ratelimit_check(aenv.rl_addr, addrkey, now, &a) == 0)
		return (0);
	if (a > u)
		u = a;
	if (now != second) {
		second = now;
		audited = 0;
	}
	if (audited < THROTTLED_AUDITS) {
		audited++;
		auth_audit("login.throttled", name, addr, 0,
		    "retry in %us; %u more refused, not audited", u, unsaid);
		unsaid = 0;
	} else
		unsaid++;
	grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
	    "too many failed attempts; retry in %u seconds", u);
	return (1);
}

static const char *
ca_error(int rv)
{
	return (rv == CA_BADKEY ? "public key: not an ECDSA P-256 or P-384, "
	    "Ed25519 or RSA (2048 to 8192 bits) SubjectPublicKeyInfo" :
	    "the certificate authority failed");
}

/* Certify key for name with ca, and record it: 0, or an error sent. */
static int
certify(struct grpc_call *call, struct ca *ca, const char *kind,
    const ProtobufCBinaryData *key, const char *name,
    const struct store_strv *roles, struct store_cert *sc, char **pem,
    size_t *pemlen)
{
	time_t	 now = time(NULL);
	int	 rv;

	memset(sc, 0, sizeof(*sc));
	sc->not_before = now - SKEW;
	sc->not_after = now + aenv.cert_ttl;
	if ((rv = ca_issue(ca, key->data, key->len, name,
	    (const char *const *)(roles ? roles->v : NULL),
	    roles ? roles->n : 0, sc->not_before, sc->not_after, sc->serial,
	    pem, pemlen)) != 0) {
		grpc_error(call, rv == CA_BADKEY ? GRPC_INVALID_ARGUMENT :
		    GRPC_INTERNAL, "%s", ca_error(rv));
		return (-1);
	}
	(void)strlcpy(sc->kind, kind, sizeof(sc->kind));
	sc->name = (char *)name;
	if (store_cert_add(aenv.store, sc) == -1) {
		free(*pem);
		grpc_error(call, GRPC_INTERNAL, "the store failed");
		return (-1);
	}
	return (0);
}

static void
rpc_login(struct grpc_call *call, const ProtobufCMessage *msg)
{
	Mezite__Auth__V1__LoginRequest	*req = (void *)msg;
	Mezite__Auth__V1__LoginResponse	 res =
	    MEZITE__AUTH__V1__LOGIN_RESPONSE__INIT;
	struct store_user		 u;
	struct store_cert		 sc;
	struct client			 cl;
	char				 userkey[AUTH_NAME_MAX + 8];
	char				*pem = NULL, *sshcert = NULL;
	char				 sshnote[SSHAUTH_REASON_MAX];
	char				 why[SSHAUTH_REASON_MAX];
	uint8_t				 sshkey[SSHCERT_ED25519_LEN];
	const char			*capem;
	uint64_t			 sshserial = 0;
	size_t				 pemlen, calen;
	int				 found, ok, wantssh;

	client_get(grpc_call_meta(call), &cl);
	if (!auth_name_valid(req->user) ||
	    strlen(req->password) > AUTH_PASSWORD_MAX ||
	    req->public_key.len == 0 || req->public_key.len > AUTH_SPKI_MAX) {
		explicit_bzero(req->password, strlen(req->password));
		grpc_error(call, GRPC_INVALID_ARGUMENT, "%s",
		    !auth_name_valid(req->user) ? "user: not a valid name" :
		    req->public_key.len == 0 ||
		    req->public_key.len > AUTH_SPKI_MAX ?
		    "public_key: missing or too long" :
		    "password: too long");
		return;
	}
	/* The SSH key to certify too, if any: only Ed25519. */
	wantssh = req->ssh_public_key[0] != '\0';
	if (wantssh && (strlen(req->ssh_public_key) > SSHKEY_LINE_MAX ||
	    sshcert_key_from_line(req->ssh_public_key, sshkey, why,
	    sizeof(why)) == -1)) {
		explicit_bzero(req->password, strlen(req->password));
		grpc_error(call, GRPC_INVALID_ARGUMENT, "ssh_public_key: %s",
		    strlen(req->ssh_public_key) > SSHKEY_LINE_MAX ?
		    "too long" : why);
		return;
	}
	(void)snprintf(userkey, sizeof(userkey), "user:%s", req->user);
	if (throttled(call, userkey, cl.key, req->user, cl.addr)) {
		explicit_bzero(req->password, strlen(req->password));
		return;
	}

	memset(&u, 0, sizeof(u));
	switch (store_user_get(aenv.store, req->user, &u)) {
	case 0:
		found = 1;
		break;
	case STORE_NOTFOUND:
		found = 0;
		break;
	default:
		explicit_bzero(req->password, strlen(req->password));
		grpc_error(call, GRPC_INTERNAL, "the store failed");
		return;
	}
	/* The same work whether the user exists or not. */
	ok = passwd_check(req->password, found ? u.hash : NULL) == 1 && found;
	explicit_bzero(req->password, strlen(req->password));
	if (!ok) {
		ratelimit_fail(aenv.rl_user, userkey, time(NULL));
		ratelimit_fail(aenv.rl_addr, cl.key, time(NULL));
		auth_audit("login.failed", req->user, cl.addr, 0, "%s",
		    found ? "wrong password" : "no such user");
		grpc_error(call, GRPC_UNAUTHENTICATED,
		    "wrong user or password");
		goto done;
	}
	ratelimit_success(aenv.rl_user, userkey);

	if (certify(call, aenv.user_ca, "user", &req->public_key, u.name,
	    &u.roles, &sc, &pem, &pemlen) == -1) {
		auth_audit("login.failed", req->user, cl.addr, 0,
		    "no certificate issued");
		goto done;
	}
	capem = ca_cert_pem(aenv.user_ca, &calen);
	res.certificate.data = (uint8_t *)pem;
	res.certificate.len = pemlen;
	res.ca_certificate.data = (uint8_t *)capem;
	res.ca_certificate.len = calen;
	res.user = u.name;
	res.roles = u.roles.v;
	res.n_roles = u.roles.n;
	res.not_after = sc.not_after;
	res.serial = sc.serial;
	if (wantssh) {
		if (sshlogin_certify(aenv.ssh_ca, aenv.store, &u, sshkey, &sc,
		    &sshcert, &sshserial, sshnote, sizeof(sshnote)) == 0)
			res.ssh_certificate = sshcert;
		else
			res.ssh_certificate_note = sshnote;
	}
	auth_audit("login", u.name, cl.addr, 1, "certificate %s until %lld%s%s",
	    sc.serial, (long long)sc.not_after, wantssh ? "; " : "",
	    !wantssh ? "" : sshcert != NULL ? "with an SSH certificate" :
	    sshnote);
	if (sshcert != NULL)
		log_info("login %s: SSH certificate serial %llu", u.name,
		    (unsigned long long)sshserial);
	grpc_reply(call, &res.base);
	free(pem);
	free(sshcert);
 done:
	if (found)
		store_user_clear(&u);
}

static int
sha256_hex_ok(const char *s)
{
	return (strlen(s) == 2 * AUTH_TOKEN_BYTES &&
	    strspn(s, "0123456789abcdef") == 2 * AUTH_TOKEN_BYTES);
}

/* Why a node's labels are refused, or NULL. */
static const char *
labels_check(Mezite__Auth__V1__Label **l, size_t n)
{
	size_t	 i;

	if (n > AUTH_LABELS_MAX)
		return ("labels: too many");
	for (i = 0; i < n; i++)
		if (l[i] == NULL || !auth_name_valid(l[i]->key) ||
		    strlen(l[i]->value) > AUTH_LABEL_MAX ||
		    strchr(l[i]->value, '\n') != NULL)
			return ("labels: a key is not a valid name, or a "
			    "value is too long");
	return (NULL);
}

/* Labels as the store keeps them, "key=value", into an empty sv. */
static int
labels_strv(Mezite__Auth__V1__Label **l, size_t n, struct store_strv *sv)
{
	size_t	 i, len;

	if (n > 0 && (sv->v = calloc(n, sizeof(*sv->v))) == NULL)
		return (-1);
	for (i = 0; i < n; i++) {
		len = strlen(l[i]->key) + strlen(l[i]->value) + 2;
		if ((sv->v[i] = malloc(len)) == NULL)
			return (-1);
		(void)snprintf(sv->v[i], len, "%s=%s", l[i]->key,
		    l[i]->value);
		sv->n++;
	}
	return (0);
}

/* The answer to Join and Renew: the host certificate and both CAs. */
static void
host_reply(struct grpc_call *call, const char *name,
    const struct store_cert *sc, char *pem, size_t pemlen)
{
	Mezite__Auth__V1__JoinResponse	 res =
	    MEZITE__AUTH__V1__JOIN_RESPONSE__INIT;
	size_t				 len;

	res.certificate.data = (uint8_t *)pem;
	res.certificate.len = pemlen;
	res.ca_certificate.data = (uint8_t *)ca_cert_pem(aenv.host_ca, &len);
	res.ca_certificate.len = len;
	res.user_ca_certificate.data =
	    (uint8_t *)ca_cert_pem(aenv.user_ca, &len);
	res.user_ca_certificate.len = len;
	res.node = (char *)name;
	res.not_after = sc->not_after;
	res.serial = (char *)sc->serial;
	grpc_reply(call, &res.base);
}

static void
rpc_join(struct grpc_call *call, const ProtobufCMessage *msg)
{
	Mezite__Auth__V1__JoinRequest	*req = (void *)msg;
	struct store_node		 node;
	struct store_cert		 sc;
	struct client			 cl;
	uint8_t				 hash[SHA256_DIGEST_LENGTH];
	char				*pem = NULL;
	const char			*why = NULL;
	size_t				 pemlen;
	int				 rv;

	client_get(grpc_call_meta(call), &cl);
	if (!auth_name_valid(req->node))
		why = "node: not a valid name";
	else if (req->public_key.len == 0 ||
	    req->public_key.len > AUTH_SPKI_MAX)
		why = "public_key: missing or too long";
	else
		why = labels_check(req->labels, req->n_labels);
	if (why != NULL) {
		grpc_error(call, GRPC_INVALID_ARGUMENT, "%s", why);
		return;
	}
	if (throttled(call, NULL, cl.key, req->node, cl.addr))
		return;

	/* A token is 64 hex digits; anything else cannot be one. */
	rv = STORE_NOTFOUND;
	if (sha256_hex_ok(req->token)) {
		SHA256((const uint8_t *)req->token, strlen(req->token), hash);
		rv = store_token_use(aenv.store, hash, req->node, time(NULL));
	}
	explicit_bzero(req->token, strlen(req->token));
	if (rv == -1) {
		grpc_error(call, GRPC_INTERNAL, "the store failed");
		return;
	}
	if (rv != 0) {
		ratelimit_fail(aenv.rl_addr, cl.key, time(NULL));
		auth_audit("join.failed", req->node, cl.addr, 0, "%s",
		    rv == STORE_CONFLICT ? "token used, expired or for "
		    "another node" : "no such token");
		grpc_error(call, GRPC_UNAUTHENTICATED,
		    "join token invalid, used or expired");
		return;
	}

	if (certify(call, aenv.host_ca, "node", &req->public_key, req->node,
	    NULL, &sc, &pem, &pemlen) == -1) {
		auth_audit("join.failed", req->node, cl.addr, 0,
		    "no certificate issued; the token is spent");
		return;
	}
	memset(&node, 0, sizeof(node));
	node.name = req->node;
	node.joined = time(NULL);
	(void)strlcpy(node.serial, sc.serial, sizeof(node.serial));
	if (labels_strv(req->labels, req->n_labels, &node.labels) == -1 ||
	    store_node_put(aenv.store, &node) == -1) {
		grpc_error(call, GRPC_INTERNAL, "the store failed");
		goto done;
	}
	host_reply(call, req->node, &sc, pem, pemlen);
	auth_audit("join", req->node, cl.addr, 1, "certificate %s until %lld",
	    sc.serial, (long long)sc.not_after);
 done:
	node.name = NULL;
	store_node_clear(&node);
	free(pem);
}

/*
 * A new certificate for the node whose certificate the session shows,
 * with the same name.  A node's renewals are rate-limited as failed
 * logins are, so that it cannot fill the store with certificates.
 */
static void
rpc_renew(struct grpc_call *call, const ProtobufCMessage *msg)
{
	Mezite__Auth__V1__RenewRequest	*req = (void *)msg;
	const Mezite__PeerCert		*pc = grpc_call_meta(call)->cert;
	struct store_node		 node;
	struct store_cert		 old, sc;
	struct client			 cl;
	char				 key[AUTH_NAME_MAX + 8];
	char				*pem = NULL;
	const char			*why;
	size_t				 pemlen;
	time_t				 now = time(NULL);
	unsigned int			 wait = 0;
	int				 rv;

	client_get(grpc_call_meta(call), &cl);
	if (pc == NULL || strcmp(pc->kind, "node") != 0) {
		grpc_error(call, GRPC_PERMISSION_DENIED,
		    "Renew needs a node certificate (mezd)");
		return;
	}
	if (req->public_key.len == 0 || req->public_key.len > AUTH_SPKI_MAX)
		why = "public_key: missing or too long";
	else
		why = labels_check(req->labels, req->n_labels);
	if (why != NULL) {
		grpc_error(call, GRPC_INVALID_ARGUMENT, "%s", why);
		return;
	}
	/* The handshake checked it; a long session may outlive it. */
	why = NULL;
	if (pc->not_after <= now)
		why = "the certificate has expired";
	else if ((rv = store_cert_get(aenv.store, pc->serial, &old)) == -1) {
		grpc_error(call, GRPC_INTERNAL, "the store failed");
		return;
	} else if (rv != 0)
		why = "the certificate is not one this proxy issued";
	else {
		if (old.revoked != 0)
			why = "the certificate is revoked";
		else if (strcmp(old.kind, "node") != 0 ||
		    strcmp(old.name, pc->name) != 0)
			why = "the certificate is not this node's";
		store_cert_clear(&old);
	}
	if (why != NULL) {
		auth_audit("renew.failed", pc->name, cl.addr, 0, "%s: %s",
		    pc->serial, why);
		grpc_error(call, GRPC_PERMISSION_DENIED, "%s", why);
		return;
	}
	/* Renewals count as failures do: a few at once, then slower. */
	(void)snprintf(key, sizeof(key), "renew:%s", pc->name);
	if (ratelimit_check(aenv.rl_user, key, now, &wait) == -1) {
		grpc_error(call, GRPC_RESOURCE_EXHAUSTED,
		    "too many renewals; retry in %u seconds", wait);
		return;
	}
	ratelimit_fail(aenv.rl_user, key, now);
	if ((rv = store_node_get(aenv.store, pc->name, &node)) != 0) {
		if (rv == -1)
			grpc_error(call, GRPC_INTERNAL, "the store failed");
		else
			grpc_error(call, GRPC_PERMISSION_DENIED,
			    "no such node");
		return;
	}
	if (certify(call, aenv.host_ca, "node", &req->public_key, pc->name,
	    NULL, &sc, &pem, &pemlen) == -1) {
		auth_audit("renew.failed", pc->name, cl.addr, 0,
		    "no certificate issued");
		goto done;
	}
	(void)strlcpy(node.serial, sc.serial, sizeof(node.serial));
	store_strv_clear(&node.labels);
	if (labels_strv(req->labels, req->n_labels, &node.labels) == -1 ||
	    store_node_put(aenv.store, &node) == -1) {
		grpc_error(call, GRPC_INTERNAL, "the store failed");
		goto done;
	}
	host_reply(call, pc->name, &sc, pem, pemlen);
	auth_audit("renew", pc->name, cl.addr, 1,
	    "certificate %s until %lld, replacing %s", sc.serial,
	    (long long)sc.not_after, pc->serial);
 done:
	store_node_clear(&node);
	free(pem);
}

static void
rpc_whoami(struct grpc_call *call, const ProtobufCMessage *msg)
{
	Mezite__Auth__V1__WhoAmIResponse res =
	    MEZITE__AUTH__V1__WHO_AM_IRESPONSE__INIT;
	const Mezite__ConnMeta		*meta = grpc_call_meta(call);
	const Mezite__PeerCert		*pc = meta->cert;
	struct store_user		 u;
	struct client			 cl;
	int				 have_user = 0;

	client_get(meta, &cl);
	res.address = cl.addr;
	if (pc != NULL && pc->kind[0] != '\0') {
		res.kind = pc->kind;
		res.name = pc->name;
		res.fingerprint = pc->fingerprint;
		res.serial = pc->serial;
		res.not_after = pc->not_after;
		memset(&u, 0, sizeof(u));
		if (strcmp(pc->kind, "user") == 0 &&
		    store_user_get(aenv.store, pc->name, &u) == 0) {
			have_user = 1;
			res.roles = u.roles.v;
			res.n_roles = u.roles.n;
		}
	}
	grpc_reply(call, &res.base);
	if (have_user)
		store_user_clear(&u);
}

static void
rpc_list_nodes(struct grpc_call *call, const ProtobufCMessage *msg)
{
	Mezite__Auth__V1__ListNodesResponse res =
	    MEZITE__AUTH__V1__LIST_NODES_RESPONSE__INIT;
	const Mezite__PeerCert		*pc = grpc_call_meta(call)->cert;
	Mezite__Auth__V1__Node		*nodes = NULL, **np = NULL;
	Mezite__Auth__V1__Label		*lab = NULL, **labp = NULL;
	struct store_user		 u;
	struct store_role		*roles = NULL, r;
	struct store_node		*all = NULL;
	struct store_strv		*logins = NULL;
	const struct store_strv		*services;
	size_t				 nall = 0, nroles = 0, nlab = 0, i, k;
	time_t				 since;
	int				 online;
	char				*eq;

	if (pc == NULL || strcmp(pc->kind, "user") != 0) {
		grpc_error(call, GRPC_PERMISSION_DENIED,
		    "ListNodes needs a user certificate (msh login)");
		return;
	}
	memset(&u, 0, sizeof(u));
	if (store_user_get(aenv.store, pc->name, &u) != 0) {
		grpc_error(call, GRPC_PERMISSION_DENIED, "no such user");
		return;
	}
	if ((roles = calloc(u.roles.n + 1, sizeof(*roles))) == NULL)
		goto fail;
	for (i = 0; i < u.roles.n; i++) {
		memset(&r, 0, sizeof(r));
		if (store_role_get(aenv.store, u.roles.v[i], &r) == 0)
			roles[nroles++] = r;
	}
	if (store_node_list(aenv.store, &all, &nall) == -1)
		goto fail;
	for (i = 0; i < nall; i++)
		nlab += all[i].labels.n;
	if ((nodes = calloc(nall + 1, sizeof(*nodes))) == NULL ||
	    (np = calloc(nall + 1, sizeof(*np))) == NULL ||
	    (logins = calloc(nall + 1, sizeof(*logins))) == NULL ||
	    (lab = calloc(nlab + 1, sizeof(*lab))) == NULL ||
	    (labp = calloc(nlab + 1, sizeof(*labp))) == NULL)
		goto fail;
	nlab = 0;
	for (i = 0; i < nall; i++) {
		if (rbac_node_logins(roles, nroles, &all[i], &logins[i]) == -1)
			goto fail;
		if (logins[i].n == 0)
			continue;
		mezite__auth__v1__node__init(&nodes[res.n_nodes]);
		nodes[res.n_nodes].name = all[i].name;
		nodes[res.n_nodes].logins = logins[i].v;
		nodes[res.n_nodes].n_logins = logins[i].n;
		nodes[res.n_nodes].joined = all[i].joined;
		if (nodes_get(all[i].name, &online, &since, &services)) {
			nodes[res.n_nodes].online = online;
			nodes[res.n_nodes].since = since;
			nodes[res.n_nodes].services = services->v;
			nodes[res.n_nodes].n_services = services->n;
		}
		/* "key=value", split where it is: all is ours. */
		nodes[res.n_nodes].labels = labp + nlab;
		for (k = 0; k < all[i].labels.n; k++) {
			if ((eq = strchr(all[i].labels.v[k], '=')) == NULL)
				continue;
			*eq = '\0';
			mezite__auth__v1__label__init(&lab[nlab]);
			lab[nlab].key = all[i].labels.v[k];
			lab[nlab].value = eq + 1;
			labp[nlab] = &lab[nlab];
			nlab++;
			nodes[res.n_nodes].n_labels++;
		}
		np[res.n_nodes] = &nodes[res.n_nodes];
		res.n_nodes++;
	}
	res.nodes = np;
	grpc_reply(call, &res.base);
	goto done;
 fail:
	grpc_error(call, GRPC_INTERNAL, "the store failed");
 done:
	for (i = 0; logins != NULL && i < nall; i++)
		store_strv_clear(&logins[i]);
	free(logins);
	free(labp);
	free(lab);
	free(np);
	free(nodes);
	store_node_free(all, nall);
	for (k = 0; k < nroles; k++)
		store_role_clear(&roles[k]);
	free(roles);
	store_user_clear(&u);
}

static void
rpc_health(struct grpc_call *call, const ProtobufCMessage *msg)
{
	Grpc__Health__V1__HealthCheckRequest	*req = (void *)msg;
	Grpc__Health__V1__HealthCheckResponse	 res =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (req->service[0] != '\0' &&
	    strcmp(req->service, "mezite.auth.v1.Auth") != 0) {
		grpc_error(call, GRPC_NOT_FOUND, "unknown service");
		return;
	}
	res.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	grpc_reply(call, &res.base);
}

const struct grpc_method auth_methods[] = {
	{ "/mezite.auth.v1.Auth/Login",
	    &mezite__auth__v1__login_request__descriptor, rpc_login },
	{ "/mezite.auth.v1.Auth/Join",
	    &mezite__auth__v1__join_request__descriptor, rpc_join },
	{ "/mezite.auth.v1.Auth/WhoAmI",
	    &mezite__auth__v1__who_am_irequest__descriptor, rpc_whoami },
	{ "/mezite.auth.v1.Auth/ListNodes",
	    &mezite__auth__v1__list_nodes_request__descriptor,
	    rpc_list_nodes },
	{ "/mezite.auth.v1.Auth/Renew",
	    &mezite__auth__v1__renew_request__descriptor, rpc_renew },
	{ "/grpc.health.v1.Health/Check",
	    &grpc__health__v1__health_check_request__descriptor, rpc_health },
};
const size_t auth_nmethods = sizeof(auth_methods) / sizeof(auth_methods[0]);
