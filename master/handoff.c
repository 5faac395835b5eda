/*
 * The hand-off: choose the worker for a handshaken session, describe
 * the session in its metadata, and pass it over, with the session's
 * keys in the kernel and the TCP socket itself (kTLS), or as one end of
 * a socketpair that the master relays for.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certid.h"
#include "log.h"
#include "master.h"
#include "meta.h"
#include "tls_ossl.h"
#include "util.h"

static void	 conn_ktls_done(struct conn *);

/*
 * The worker of a type with the fewest sessions; ties go round-robin so
 * that short sessions still spread.  One that is slow to take its
 * handoffs, or has taken none for WORKER_STUCK_MS, is passed over while
 * another can; if all are, the least backed up one still gets the
 * session, up to a hard limit that keeps a hung worker from collecting
 * the master's descriptors.
 */
static int
worker_running(enum proc_type type)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &workers, entry)
		if (w->type == type)
			return (1);
	return (0);
}

static struct worker *
worker_pick(enum proc_type type)
{
	static unsigned int	 rr;
	struct worker		*w, *best = NULL, *least = NULL;
	unsigned int		 i = 0, n = 0, start, q;

	TAILQ_FOREACH(w, &workers, entry)
		if (w->type == type)
			n++;
	if (n == 0)
		return (NULL);
	start = rr++ % n;
	TAILQ_FOREACH(w, &workers, entry) {
		if (w->type != type)
			continue;
		q = proc_queued(&w->chan);
		if (q < WORKER_QUEUE_HARD && (least == NULL ||
		    q < proc_queued(&least->chan)))
			least = w;
		if (q >= WORKER_QUEUE_MAX || w->stuck) {
			i++;
			continue;
		}
		if (best == NULL || w->active < best->active ||
		    (w->active == best->active && i == start))
			best = w;
		i++;
	}
	return (best != NULL ? best : least);
}

#define SHA256_TEXT	(sizeof("SHA256:") + 2 * SHA256_DIGEST_LENGTH)

/* What a worker learns of a client certificate. */
struct peer {
	Mezite__PeerCert	 pc;
	char			*subject;
	char			*issuer;
	char			 fingerprint[SHA256_TEXT];
	char			 key[SHA256_TEXT];
	char			**sans;
	char			 name[CERTID_NAME_MAX + 1];
	char			 serial[CERTID_SERIAL_MAX];
};

static int64_t
asn1_time(const ASN1_TIME *t)
{
	struct tm	 tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return (0);
	return ((int64_t)timegm(&tm));
}

/* "SHA256:" and the digest in lower-case hex. */
static void
sha256_text(const unsigned char *md, unsigned int len, char *buf)
{
	unsigned int	 i;

	(void)strlcpy(buf, "SHA256:", SHA256_TEXT);
	for (i = 0; i < len && i < 32; i++)
		(void)snprintf(buf + 7 + 2 * i, 3, "%02x", md[i]);
}

/*
 * The hash of the certificate's DER SubjectPublicKeyInfo: what stays the
 * same when a certificate is renewed for the same key.
 */
static void
key_fill(X509 *x, char *buf)
{
	unsigned char	*der = NULL;
	unsigned char	 md[SHA256_DIGEST_LENGTH];
	int		 len;

	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
		return;
	if (SHA256(der, len, md) != NULL)
		sha256_text(md, sizeof(md), buf);
	OPENSSL_free(der);
}

static void
peer_fill(X509 *x, struct peer *p)
{
	GENERAL_NAMES		*names;
	const GENERAL_NAME	*gn;
	const unsigned char	*s;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;
	int			 k, n, slen;

	memset(p, 0, sizeof(*p));
	mezite__peer_cert__init(&p->pc);
	p->subject = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
	p->issuer = X509_NAME_oneline(X509_get_issuer_name(x), NULL, 0);
	p->pc.subject = p->subject ? p->subject : "";
	p->pc.issuer = p->issuer ? p->issuer : "";
	if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32)
		sha256_text(md, mdlen, p->fingerprint);
	p->pc.fingerprint = p->fingerprint;
	key_fill(x, p->key);
	p->pc.key = p->key;
	p->pc.not_before = asn1_time(X509_get0_notBefore(x));
	p->pc.not_after = asn1_time(X509_get0_notAfter(x));
	/* Whom it names, if the auth worker issued it. */
	p->pc.kind = p->pc.name = p->pc.serial = "";
	if ((p->pc.kind = (char *)certid_kind(x)) == NULL ||
	    certid_serial(x, p->serial, sizeof(p->serial)) == -1)
		p->pc.kind = "";
	else if (strcmp(p->pc.kind, "cluster") == 0) {
		/* A cluster is the name it is trusted under. */
		(void)strlcpy(p->name, certid_cluster(x), sizeof(p->name));
		p->pc.name = p->name;
		p->pc.serial = p->serial;
	} else if (certid_name(x, p->name, sizeof(p->name)) == -1)
		p->pc.kind = "";
	else {
		p->pc.name = p->name;
		p->pc.serial = p->serial;
	}

	if ((names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL)) == NULL)
		return;
	n = sk_GENERAL_NAME_num(names);
	if (n > 0 && (p->sans = calloc(n, sizeof(char *))) != NULL) {
		for (k = 0; k < n; k++) {
			gn = sk_GENERAL_NAME_value(names, k);
			if (gn->type != GEN_DNS && gn->type != GEN_EMAIL &&
			    gn->type != GEN_URI)
				continue;
			s = ASN1_STRING_get0_data(gn->d.ia5);
			slen = ASN1_STRING_length(gn->d.ia5);
			if (slen <= 0 || memchr(s, '\0', slen) != NULL)
				continue;
			if ((p->sans[p->pc.n_sans] = strndup((const char *)s,
			    slen)) != NULL)
				p->pc.n_sans++;
		}
		p->pc.sans = p->sans;
	}
	GENERAL_NAMES_free(names);
}

static void
peer_free(struct peer *p)
{
	size_t	 i;

	for (i = 0; i < p->pc.n_sans; i++)
		free(p->sans[i]);
	free(p->sans);
	OPENSSL_free(p->subject);
	OPENSSL_free(p->issuer);
}

/*
 * Put the session in the kernel if the engine allows: 1 if it went
 * (the socket now belongs to the handoff), 0 if it stays with us, -1
 * if the attempt left the socket unusable.
 */
static int
conn_offload(struct conn *c)
{
	char	 err[128];

	if (c->ssl == NULL || !ossl_ktls(c->srv->ossl))
		return (0);
	switch (ossl_offload(c->fd, c->ssl, err, sizeof(err))) {
	case 0:
		return (1);
	case -1:
		log_debug("conn %llu: relaying: %s", (unsigned long long)c->id,
		    err);
		return (0);
	default:
		log_warnx("conn %llu: kTLS: %s", (unsigned long long)c->id,
		    err);
		return (-1);
	}
}

/* Choose the worker and hand the session over. */
void
conn_route(struct conn *c)
{
	Mezite__ConnMeta	 m;
	struct peer		 peer;
	struct pb_addr		 client, local;
	X509			*x;
	char			 addr[ADDRSTRLEN];
	int			 sp[2], hfd, off;

	if (eng_names(c) == -1) {
		log_warn(__func__);
		conn_free(c);
		return;
	}
	addr_str((struct sockaddr *)&c->peer, addr, sizeof(addr));
	/* The libtls engine cannot refuse it during the handshake. */
	if ((x = eng_peer(c)) != NULL && certid_revoked(x)) {
		log_info("conn %llu: %s: certificate revoked, closing",
		    (unsigned long long)c->id, addr);
		X509_free(x);
		conn_free(c);
		return;
	}
	c->wtype = route_select(rules, nrules, default_worker, c->alpn,
	    c->sni);
	mstats.route_total[c->wtype]++;
	mstats.route_active[c->wtype]++;

	if ((c->worker = worker_pick(c->wtype)) == NULL) {
		mstats.route_failures++;
		log_debug("conn %llu: %s: alpn %s sni %s: %s %s worker is "
		    "running, closing", (unsigned long long)c->id, addr,
		    c->alpn ? c->alpn : "-", c->sni ? c->sni : "-",
		    worker_running(c->wtype) ? "no responsive" : "no",
		    proc_name(c->wtype));
		X509_free(x);
		c->state = CONN_CLOSING;
		conn_relay(c);
		return;
	}

	mezite__conn_meta__init(&m);
	m.id = c->id;
	m.worker = (char *)proc_name(c->wtype);
	m.alpn = c->alpn ? c->alpn : "";
	m.sni = c->sni ? c->sni : "";
	addr_to_pb((struct sockaddr *)&c->peer, &client);
	addr_to_pb((struct sockaddr *)&c->local, &local);
	m.client = &client.pb;
	m.local = &local.pb;
	m.tls_version = (char *)eng_version(c);
	m.tls_cipher = (char *)eng_cipher(c);
	m.started = c->started;
	if (x != NULL) {
		peer_fill(x, &peer);
		X509_free(x);
		m.cert = &peer.pc;
	}

	if ((off = conn_offload(c)) == -1) {
		if (m.cert != NULL)
			peer_free(&peer);
		conn_free(c);
		return;
	}
	if (off) {
		/* The kernel has the session; the worker gets the socket. */
		m.mode = MEZITE__HANDOFF_MODE__KTLS;
		hfd = c->fd;
		sp[0] = -1;
	} else {
		m.mode = MEZITE__HANDOFF_MODE__RELAY;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, sp) == -1) {
			log_warn("conn %llu: socketpair",
			    (unsigned long long)c->id);
			if (m.cert != NULL)
				peer_free(&peer);
			conn_free(c);
			return;
		}
		hfd = sp[1];
	}

	if (proc_compose_pb(&c->worker->chan, IMSG_HANDOFF, 0, hfd,
	    &m.base) == -1) {
		log_warn("conn %llu: handoff", (unsigned long long)c->id);
		c->worker = NULL;
		if (off) {
			c->fd = -1;		/* closed by pb_compose */
			conn_free(c);
		} else {
			close(sp[0]);
			c->state = CONN_CLOSING;
		}
	} else {
		if (c->worker->unacked++ == 0)
			c->worker->waiting = master_now_ms();
		c->worker->active++;
		c->worker->total++;
		c->worker_pid = c->worker->pid;
		c->mode = m.mode;
		log_debug("conn %llu: %s: alpn %s sni %s -> %s.%u%s",
		    (unsigned long long)c->id, addr, c->alpn ? c->alpn : "-",
		    c->sni ? c->sni : "-", proc_name(c->wtype),
		    c->worker->instance, off ? " (kTLS)" : "");
		if (off) {
			mstats.ktls_total++;
			conn_ktls_done(c);
		} else {
			mstats.relay_total++;
			if (c->ssl != NULL && ossl_relay(c->ssl, c->fd) == -1)
				log_warnx("conn %llu: relay buffer: %s",
				    (unsigned long long)c->id, ossl_error());
			c->pfd = sp[0];
			c->state = CONN_RELAY;
			event_set(&c->pfdev, c->pfd, 0, conn_io, c);
		}
	}
	if (m.cert != NULL)
		peer_free(&peer);
	if (!off)
		conn_relay(c);
}

/*
 * The session went to the worker with its socket.  The conn stays, with
 * no descriptor and no engine, so that it is listed and counted until
 * the worker reports its end.
 */
static void
conn_ktls_done(struct conn *c)
{
	event_del(&c->fdev);
	c->fd_events = 0;
	evtimer_del(&c->timer);
	SSL_set_quiet_shutdown(c->ssl, 1);
	SSL_free(c->ssl);
	c->ssl = NULL;
	srvctx_unref(c->srv);
	c->srv = NULL;
	c->fd = -1;			/* the handoff closes it */
	c->state = CONN_KTLS;
}
