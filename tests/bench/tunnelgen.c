/*
 * tunnelgen: idle agent tunnels, for the benchmark's memory figure of
 * the tunnel worker, in C so that thousands of them cost the servers
 * and not the client.
 *
 *	tunnelgen hold -a ADDR:PORT -c host-ca.crt -k host-ca.key
 *	    -n per-batch [-p conc] [-N name-prefix] [-b batches] [-t secs]
 *	    [-S sni] [-T]
 *		Opens per-batch tunnels as agents would, prints
 *		"ready open=N hello=H failed=F ..." once each of them is
 *		open and has answered its hello (or after secs, 120 by
 *		default), waits for a line on stdin, opens as many again,
 *		prints, and so on for batches batches (2); then waits for a
 *		line or EOF, closes everything and exits.  EOF at any wait
 *		ends it too.  At most conc tunnels (64) are being set up at
 *		once: TCP connect, TLS handshake, hello.
 *	-T	TLS only, for a server that does not speak the tunnel
 *		protocol (HAProxy in TCP mode, as the peer of the memory
 *		figure): the same agent credentials and handshake, ALPN
 *		mezite-tunnel offered and required, then nothing is sent;
 *		whatever comes is read and dropped.  A tunnel is set up
 *		when its handshake is done, and hello stays 0.
 *
 * Each tunnel is an agent of its own: a fresh ECDSA P-256 key and a node
 * certificate signed by the given host CA, made in memory (CN prefix and
 * a number, "bench-1", "bench-2", ...; O Mezite; EKU clientAuth; valid
 * from a minute ago for a day; a random serial), then TLS 1.3 with ALPN
 * mezite-tunnel, then the agent's side of tunnel.proto: the same
 * SETTINGS and connection window as mezd, 200 and a Hello (the node's
 * name, version "tunnelgen", one service "ssh") on the proxy's first
 * stream, a PING ACK for every PING, RST_STREAM (REFUSED_STREAM) for any
 * other stream, and nothing else.  A GOAWAY closes the tunnel.
 *
 * The HTTP/2 side is a responder written here, not an nghttp2 session:
 * an agent that only answers needs no HPACK decoder (the proxy's header
 * blocks are skipped unread, the answer uses the static table only), and
 * each tunnel then costs this process its TLS session (with released
 * buffers) and a struct tun of under 1 KiB, about 26 KiB in all, where
 * an nghttp2 session would add its own, its 16 KiB output frame buffer
 * among them.  Ten thousand tunnels take about 260 MiB here, beside the
 * servers being measured.
 *
 * Output is one line per batch on stdout; failures are counted, never
 * fatal:
 *	ready open=N hello=H failed=F batch=B secs=S connect=C refused=R
 *	    closed=X
 * open: tunnels whose TLS handshake is done and which are still open;
 * hello: those of them whose hello has gone out (none with -T);
 * failed: all that failed so far, which the last three split: the TCP
 * connection failed; the handshake failed, or the tunnel ended before it
 * was set up (a refused certificate shows here, after the handshake in
 * TLS 1.3); the tunnel ended after it was set up (its hello sent, or
 * with -T its handshake done).
 */

#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define IOBUF		16384	/* one TLS record */
#define MAXEVENTS	256
#define OUTMAX		512	/* per tunnel: HTTP/2 frames not yet sent */
#define PREFIXMAX	48	/* of a node's name, which is at most 64 */
#define HELLOMAX	128	/* a Hello: 66 + 11 + 5 bytes at most */
#define ALPN		"mezite-tunnel"
#define VERSION		"tunnelgen"
#define SERVICE		"ssh"

/* HTTP/2 (RFC 9113) as far as an agent that only answers needs it. */
#define PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN	(sizeof(PREFACE) - 1)
#define FRAME_HDR	9
#define MAX_FRAME	16384	/* SETTINGS_MAX_FRAME_SIZE: the default */
#define F_DATA		0x0
#define F_HEADERS	0x1
#define F_RST_STREAM	0x3
#define F_SETTINGS	0x4
#define F_PING		0x6
#define F_GOAWAY	0x7
#define F_WINDOW_UPDATE	0x8
#define F_CONTINUATION	0x9
#define FL_END_STREAM	0x1
#define FL_ACK		0x1
#define FL_END_HEADERS	0x4
#define REFUSED_STREAM	0x7
/* What mezd says in its SETTINGS, and its connection window. */
#define AGENT_STREAMS	1024
#define AGENT_WINDOW	(256 * 1024)
#define AGENT_HEADERS	(16 * 1024)
#define AGENT_CONN_WIN	(8 * 1024 * 1024)
#define DEFAULT_WINDOW	65535

enum tstate { T_CONNECT, T_HS, T_UP };
enum fail { F_CONNECT, F_REFUSED, F_CLOSED, F_NFAIL };

struct tun {
	TAILQ_ENTRY(tun)	 entry;
	int			 fd;
	SSL			*ssl;
	enum tstate		 st;
	uint32_t		 events;
	int			 wantw;		/* SSL_write wants EPOLLOUT */
	int			 hello;		/* 1 queued, 2 sent */
	int			 ready;		/* set up: no longer in setup */
	int32_t			 hello_sid;	/* 0 until the first stream */
	char			 name[PREFIXMAX + 16];

	/* Input: the preface, then frames, whose payload is skipped. */
	size_t			 pre;
	uint8_t			 hdr[FRAME_HDR];
	size_t			 hlen;
	uint32_t		 flen, fgot;
	uint8_t			 pay[8];	/* a PING's */

	uint8_t			 out[OUTMAX];
	size_t			 outlen;
};
TAILQ_HEAD(tuns, tun);

static struct sockaddr_in	 addr;
static const char		*sni = "localhost";
static const char		*prefix = "bench-";
static SSL_CTX			*ctx;
static X509			*ca_cert;
static EVP_PKEY			*ca_key;
static int			 ep = -1;
static struct tuns		 tuns = TAILQ_HEAD_INITIALIZER(tuns);
static unsigned long		 serialno;	/* names: prefix + number */
static long			 started, nopen, nhello, setup;
static long			 failed[F_NFAIL];
static uint8_t			 iobuf[IOBUF];
static char			 stdin_tag;	/* epoll's data for stdin */
static long			 lines;		/* read, not yet waited for */
static int			 tlsonly;	/* -T: no tunnel protocol */

static void	die(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2), __noreturn__));

static double
now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return (0);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "tunnelgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	ERR_print_errors_fp(stderr);
	exit(1);
}

static long
number(const char *s, long min, long max, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		die("bad %s", what);
	return (v);
}

/* ------------------------------------------------------------------ */
/* The host CA, the TLS context, and an agent's credentials. */

static void
load_ca(const char *crt, const char *key)
{
	FILE	*f;

	if ((f = fopen(crt, "r")) == NULL)
		die("%s: cannot open", crt);
	ca_cert = PEM_read_X509(f, NULL, NULL, NULL);
	(void)fclose(f);
	if (ca_cert == NULL)
		die("%s: no certificate", crt);
	if ((f = fopen(key, "r")) == NULL)
		die("%s: cannot open", key);
	ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	(void)fclose(f);
	if (ca_key == NULL)
		die("%s: no private key", key);
	if (X509_check_private_key(ca_cert, ca_key) != 1)
		die("%s: not the key of the CA certificate", key);
}

static void
mkctx(void)
{
	static const unsigned char	 wire[] = "\x0d" ALPN;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
	    !SSL_CTX_set1_groups_list(ctx, "X25519") ||
	    SSL_CTX_set_alpn_protos(ctx, wire, sizeof(wire) - 1) != 0)
		die("TLS client setup failed");
	/* The benchmark's server certificate is its own, self-signed. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Idle tunnels give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	int		 rv;

	X509V3_set_ctx(&v3, ca_cert, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value)) == NULL)
		return (-1);
	rv = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return (rv);
}

/* A node's key and certificate, as the host CA would issue them. */
static int
node_creds(const char *name, X509 **xp, EVP_PKEY **kp)
{
	EVP_PKEY	*k;
	X509		*x = NULL;
	X509_NAME	*subj = NULL;
	BIGNUM		*bn = NULL;
	int		 rv = -1;

	if ((k = EVP_EC_gen("P-256")) == NULL)
		return (-1);
	if ((x = X509_new()) == NULL ||
	    (subj = X509_NAME_new()) == NULL ||
	    (bn = BN_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_NAME_add_entry_by_NID(subj, NID_organizationName,
	    MBSTRING_ASC, (const unsigned char *)"Mezite", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)name, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, subj) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, k) != 1 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") == -1 ||
	    add_ext(x, NID_ext_key_usage, "clientAuth") == -1 ||
	    add_ext(x, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, NID_authority_key_identifier, "keyid:always") == -1 ||
	    X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto done;
	*xp = x;
	*kp = k;
	x = NULL;
	k = NULL;
	rv = 0;
 done:
	BN_free(bn);
	X509_NAME_free(subj);
	X509_free(x);
	EVP_PKEY_free(k);
	return (rv);
}

/* A protobuf string field; every one here is under 128 bytes. */
static size_t
pb_string(uint8_t *b, size_t off, size_t len, int field, const char *s)
{
	size_t	 n = strlen(s);

	if (n > 127 || off + 2 + n > len)
		return (len + 1);
	b[off] = (uint8_t)(field << 3 | 2);
	b[off + 1] = (uint8_t)n;
	memcpy(b + off + 2, s, n);
	return (off + 2 + n);
}

/* The agent's Hello (proto/tunnel.proto): node, version, services. */
static size_t
hello_encode(uint8_t *b, size_t len, const char *node)
{
	size_t	 off = 0;

	if ((off = pb_string(b, off, len, 1, node)) > len ||
	    (off = pb_string(b, off, len, 2, VERSION)) > len ||
	    (off = pb_string(b, off, len, 4, SERVICE)) > len)
		return (0);
	return (off);
}

/* ------------------------------------------------------------------ */
/* Tunnels. */

static void
tun_events(struct tun *t, uint32_t want)
{
	struct epoll_event	 ev;

	if (want == t->events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = t;
	if (epoll_ctl(ep, t->events ? (want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL) :
	    EPOLL_CTL_ADD, t->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	t->events = want;
}

/* Gone: a failure unless why is F_NFAIL (closed by us at the end). */
static void
tun_end(struct tun *t, enum fail why)
{
	if (t->events)
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, t->fd, NULL);
	/* At the end, a close_notify if the socket takes it at once. */
	if (why == F_NFAIL && t->st == T_UP && SSL_shutdown(t->ssl) < 0)
		ERR_clear_error();
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	(void)close(t->fd);
	if (t->st == T_UP)
		nopen--;
	if (t->hello == 2)
		nhello--;
	if (!t->ready)
		setup--;
	if (why != F_NFAIL)
		failed[why]++;
	TAILQ_REMOVE(&tuns, t, entry);
	free(t);
}

/* Queue one frame; -1 if the proxy lets too much pile up. */
static int
out_frame(struct tun *t, uint8_t type, uint8_t flags, uint32_t sid,
    const uint8_t *payload, size_t len)
{
	uint8_t	*p;

	if (len > MAX_FRAME || t->outlen + FRAME_HDR + len > sizeof(t->out))
		return (-1);
	p = t->out + t->outlen;
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(sid >> 24 & 0x7f);
	p[6] = (uint8_t)(sid >> 16);
	p[7] = (uint8_t)(sid >> 8);
	p[8] = (uint8_t)sid;
	if (len > 0)
		memcpy(p + FRAME_HDR, payload, len);
	t->outlen += FRAME_HDR + len;
	return (0);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_setting(uint8_t *p, uint16_t id, uint32_t v)
{
	p[0] = (uint8_t)(id >> 8);
	p[1] = (uint8_t)id;
	put32(p + 2, v);
}

/* The server's preface: SETTINGS, and the connection's window. */
static int
tun_preface(struct tun *t)
{
	uint8_t	 set[4 * 6], win[4];

	put_setting(set, 0x3, AGENT_STREAMS);	/* MAX_CONCURRENT_STREAMS */
	put_setting(set + 6, 0x4, AGENT_WINDOW); /* INITIAL_WINDOW_SIZE */
	put_setting(set + 12, 0x2, 0);		/* ENABLE_PUSH */
	put_setting(set + 18, 0x6, AGENT_HEADERS); /* MAX_HEADER_LIST_SIZE */
	put32(win, AGENT_CONN_WIN - DEFAULT_WINDOW);
	if (out_frame(t, F_SETTINGS, 0, 0, set, sizeof(set)) == -1 ||
	    out_frame(t, F_WINDOW_UPDATE, 0, 0, win, sizeof(win)) == -1)
		return (-1);
	return (0);
}

/*
 * A request's header block is complete.  The first stream is the
 * hello: 200, content-type application/x-protobuf, the Hello.  Any
 * other is refused.  The header block itself is never decoded.
 */
static int
tun_request(struct tun *t, uint32_t sid)
{
	static const uint8_t	 head[] = {
		0x88,			/* :status 200, static index 8 */
		0x0f, 0x10, 22,		/* content-type, static index 31 */
		'a', 'p', 'p', 'l', 'i', 'c', 'a', 't', 'i', 'o', 'n', '/',
		'x', '-', 'p', 'r', 'o', 't', 'o', 'b', 'u', 'f',
	};
	uint8_t			 hello[HELLOMAX], rst[4];
	size_t			 n;

	if (t->hello_sid != 0) {
		put32(rst, REFUSED_STREAM);
		return (out_frame(t, F_RST_STREAM, 0, sid, rst, sizeof(rst)));
	}
	t->hello_sid = (int32_t)sid;
	if ((n = hello_encode(hello, sizeof(hello), t->name)) == 0 ||
	    out_frame(t, F_HEADERS, FL_END_HEADERS, sid, head,
	    sizeof(head)) == -1 ||
	    out_frame(t, F_DATA, FL_END_STREAM, sid, hello, n) == -1)
		return (-1);
	t->hello = 1;
	return (0);
}

/* A frame has come whole (its payload skipped but for a PING's). */
static int
tun_frame(struct tun *t)
{
	uint8_t		 type = t->hdr[3], flags = t->hdr[4];
	uint32_t	 sid;

	sid = ((uint32_t)t->hdr[5] << 24 | (uint32_t)t->hdr[6] << 16 |
	    (uint32_t)t->hdr[7] << 8 | t->hdr[8]) & 0x7fffffff;
	switch (type) {
	case F_HEADERS:
	case F_CONTINUATION:
		if ((flags & FL_END_HEADERS) && sid != 0)
			return (tun_request(t, sid));
		return (0);
	case F_SETTINGS:
		if (flags & FL_ACK)
			return (0);
		return (out_frame(t, F_SETTINGS, FL_ACK, 0, NULL, 0));
	case F_PING:
		if (t->flen != sizeof(t->pay))
			return (-1);
		if (flags & FL_ACK)
			return (0);
		return (out_frame(t, F_PING, FL_ACK, 0, t->pay,
		    sizeof(t->pay)));
	case F_GOAWAY:
		return (-1);
	default:
		/* DATA, RST_STREAM, WINDOW_UPDATE, ...: nothing to do. */
		return (0);
	}
}

/* What the proxy sent; -1 if it is not what a proxy would send. */
static int
tun_input(struct tun *t, const uint8_t *p, size_t n)
{
	size_t	 m;

	while (n > 0) {
		if (t->pre < PREFACE_LEN) {
			m = PREFACE_LEN - t->pre < n ? PREFACE_LEN - t->pre : n;
			if (memcmp(p, PREFACE + t->pre, m) != 0)
				return (-1);
			t->pre += m;
		} else if (t->hlen < FRAME_HDR) {
			m = FRAME_HDR - t->hlen < n ? FRAME_HDR - t->hlen : n;
			memcpy(t->hdr + t->hlen, p, m);
			t->hlen += m;
			if (t->hlen == FRAME_HDR) {
				t->flen = (uint32_t)t->hdr[0] << 16 |
				    (uint32_t)t->hdr[1] << 8 | t->hdr[2];
				t->fgot = 0;
				if (t->flen > MAX_FRAME)
					return (-1);
				if (t->flen == 0) {
					t->hlen = 0;
					if (tun_frame(t) == -1)
						return (-1);
				}
			}
		} else {
			m = t->flen - t->fgot < n ? t->flen - t->fgot : n;
			if (t->fgot < sizeof(t->pay))
				memcpy(t->pay + t->fgot, p,
				    sizeof(t->pay) - t->fgot < m ?
				    sizeof(t->pay) - t->fgot : m);
			t->fgot += m;
			if (t->fgot == t->flen) {
				t->hlen = 0;
				if (tun_frame(t) == -1)
					return (-1);
			}
		}
		p += m;
		n -= m;
	}
	return (0);
}

/* Send what is queued, as far as the socket takes it. */
static int
tun_flush(struct tun *t)
{
	int	 r;

	t->wantw = 0;
	while (t->outlen > 0) {
		if ((r = SSL_write(t->ssl, t->out, (int)t->outlen)) > 0) {
			memmove(t->out, t->out + r, t->outlen - r);
			t->outlen -= r;
			continue;
		}
		switch (SSL_get_error(t->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
			t->wantw = 1;
			break;
		case SSL_ERROR_WANT_READ:
			break;
		default:
			ERR_clear_error();
			return (-1);
		}
		break;
	}
	if (t->outlen == 0 && t->hello == 1) {
		t->hello = 2;
		t->ready = 1;
		nhello++;
		setup--;
	}
	tun_events(t, EPOLLIN | (t->wantw ? EPOLLOUT : 0));
	return (0);
}

/* An open tunnel: read all there is, answer, send. */
static void
tun_io(struct tun *t)
{
	int	 r, rw = 0;

	for (;;) {
		if ((r = SSL_read(t->ssl, iobuf, sizeof(iobuf))) > 0) {
			if (!tlsonly &&
			    tun_input(t, iobuf, (size_t)r) == -1) {
				tun_end(t, t->ready ? F_CLOSED : F_REFUSED);
				return;
			}
			continue;
		}
		switch (SSL_get_error(t->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_WANT_WRITE:
			rw = 1;
			break;
		default:
			/* Closed, or refused after the handshake. */
			ERR_clear_error();
			tun_end(t, t->ready ? F_CLOSED : F_REFUSED);
			return;
		}
		break;
	}
	if (tun_flush(t) == -1) {
		tun_end(t, t->ready ? F_CLOSED : F_REFUSED);
		return;
	}
	if (rw)
		tun_events(t, EPOLLIN | EPOLLOUT);
}

static void
tun_drive(struct tun *t)
{
	const unsigned char	*a;
	unsigned int		 alen;
	socklen_t		 len;
	int			 r, err;

	switch (t->st) {
	case T_CONNECT:
		len = sizeof(err);
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) ==
		    -1 || err != 0) {
			tun_end(t, F_CONNECT);
			return;
		}
		t->st = T_HS;
		/* FALLTHROUGH */
	case T_HS:
		if ((r = SSL_do_handshake(t->ssl)) != 1) {
			switch (SSL_get_error(t->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				tun_events(t, EPOLLIN);
				return;
			case SSL_ERROR_WANT_WRITE:
				tun_events(t, EPOLLOUT);
				return;
			default:
				ERR_clear_error();
				tun_end(t, F_REFUSED);
				return;
			}
		}
		SSL_get0_alpn_selected(t->ssl, &a, &alen);
		if (alen != sizeof(ALPN) - 1 || memcmp(a, ALPN, alen) != 0) {
			tun_end(t, F_REFUSED);
			return;
		}
		t->st = T_UP;
		nopen++;
		if (tlsonly) {
			t->ready = 1;
			setup--;
		} else if (tun_preface(t) == -1) {
			tun_end(t, F_REFUSED);
			return;
		}
		/* FALLTHROUGH */
	case T_UP:
		tun_io(t);
		return;
	}
}

static void
tun_start(void)
{
	struct tun	*t;
	X509		*x = NULL;
	EVP_PKEY	*k = NULL;
	int		 on = 1;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		die("calloc");
	t->fd = -1;
	TAILQ_INSERT_TAIL(&tuns, t, entry);
	started++;
	setup++;
	(void)snprintf(t->name, sizeof(t->name), "%s%lu", prefix,
	    ++serialno);
	if (node_creds(t->name, &x, &k) == -1)
		die("cannot make a node certificate for %s", t->name);
	if ((t->ssl = SSL_new(ctx)) == NULL ||
	    SSL_use_certificate(t->ssl, x) != 1 ||
	    SSL_use_PrivateKey(t->ssl, k) != 1 ||
	    SSL_set_tlsext_host_name(t->ssl, sni) != 1)
		die("TLS setup failed for %s", t->name);
	/* The session holds what it needs of them. */
	X509_free(x);
	EVP_PKEY_free(k);
	if ((t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		tun_end(t, F_CONNECT);
		return;
	}
	(void)setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (SSL_set_fd(t->ssl, t->fd) != 1)
		die("SSL_set_fd");
	SSL_set_connect_state(t->ssl);
	t->st = T_CONNECT;
	if (connect(t->fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 &&
	    errno != EINPROGRESS) {
		tun_end(t, F_CONNECT);
		return;
	}
	tun_events(t, EPOLLOUT);
}

/* ------------------------------------------------------------------ */
/* The loop: batches, and the waits between them. */

/*
 * Read stdin once: the lines in it are counted, to be taken one per
 * wait.  -1 at EOF or on an error.
 */
static int
stdin_read(void)
{
	char	 buf[256], *p, *e;
	ssize_t	 r;

	if ((r = read(STDIN_FILENO, buf, sizeof(buf))) == -1)
		return (errno == EINTR || errno == EAGAIN ? 0 : -1);
	if (r == 0)
		return (-1);
	for (p = buf, e = buf + r; (p = memchr(p, '\n', e - p)) != NULL; p++)
		lines++;
	return (0);
}

/* One turn of the loop; -1 if stdin, when watched, ended. */
static int
turn(int ms)
{
	struct epoll_event	 evs[MAXEVENTS];
	int			 i, n, rv = 0;

	if ((n = epoll_wait(ep, evs, MAXEVENTS, ms)) == -1) {
		if (errno == EINTR)
			return (0);
		die("epoll_wait: %s", strerror(errno));
	}
	for (i = 0; i < n; i++) {
		if (evs[i].data.ptr != &stdin_tag)
			tun_drive(evs[i].data.ptr);
		else if (stdin_read() == -1)
			rv = -1;
	}
	return (rv);
}

/* Serve the tunnels until a line comes on stdin; 0 at EOF. */
static int
wait_line(void)
{
	struct epoll_event	 ev;
	int			 eof = 0;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &stdin_tag;
	if (lines == 0 && epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO,
	    &ev) == -1) {
		if (errno != EPERM)
			die("epoll_ctl stdin: %s", strerror(errno));
		/* A file, which is always readable. */
		while (lines == 0 && !eof)
			eof = stdin_read() == -1;
	} else if (lines == 0) {
		while (lines == 0 && !eof)
			eof = turn(1000) == -1;
		if (epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL) == -1)
			die("epoll_ctl stdin: %s", strerror(errno));
	}
	if (lines == 0)
		return (0);
	lines--;
	return (1);
}

static void
batch(long per, long conc, double secs, int b)
{
	double	 t0 = now(), deadline = t0 + secs;
	long	 limit = started + per;

	for (;;) {
		while (setup < conc && started < limit)
			tun_start();
		if (started == limit && setup == 0)
			break;
		if (now() >= deadline)
			break;
		(void)turn(100);
	}
	printf("ready open=%ld hello=%ld failed=%ld batch=%d secs=%.1f "
	    "connect=%ld refused=%ld closed=%ld\n", nopen, nhello,
	    failed[F_CONNECT] + failed[F_REFUSED] + failed[F_CLOSED], b,
	    now() - t0, failed[F_CONNECT], failed[F_REFUSED],
	    failed[F_CLOSED]);
	if (fflush(stdout) == EOF)
		die("stdout: %s", strerror(errno));
}

static void
mode_hold(long per, long conc, long batches, double secs)
{
	struct tun	*t;
	long		 b;

	for (b = 1; b <= batches; b++) {
		batch(per, conc, secs, (int)b);
		if (!wait_line())
			break;
	}
	while ((t = TAILQ_FIRST(&tuns)) != NULL)
		tun_end(t, F_NFAIL);
}

/* Descriptors for every tunnel, and a few. */
static void
fd_limit(rlim_t need)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need;	/* root may raise it */
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
			die("getrlimit: %s", strerror(errno));
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			die("setrlimit: %s", strerror(errno));
		fprintf(stderr, "tunnelgen: open file limit %llu, below the "
		    "%llu wanted: the rest fail\n",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)need);
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: tunnelgen hold -a addr:port -c host-ca.crt "
	    "-k host-ca.key -n per-batch\n"
	    "\t[-p conc] [-N name-prefix] [-b batches] [-t secs] [-S sni] "
	    "[-T]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char	*a = NULL, *crt = NULL, *key = NULL;
	char		 host[64], *p;
	long		 per = 0, conc = 64, batches = 2, port;
	double		 secs = 120;
	int		 ch;

	if (argc < 2 || strcmp(argv[1], "hold") != 0)
		usage();
	optind = 2;
	while ((ch = getopt(argc, argv, "a:b:c:k:N:n:p:S:Tt:")) != -1) {
		switch (ch) {
		case 'a':
			a = optarg;
			break;
		case 'b':
			batches = number(optarg, 1, 1000, "batch count");
			break;
		case 'c':
			crt = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'N':
			prefix = optarg;
			break;
		case 'n':
			per = number(optarg, 1, 1000000, "batch size");
			break;
		case 'p':
			conc = number(optarg, 1, 100000, "concurrency");
			break;
		case 'S':
			sni = optarg;
			break;
		case 'T':
			tlsonly = 1;
			break;
		case 't':
			secs = (double)number(optarg, 1, 86400, "timeout");
			break;
		default:
			usage();
		}
	}
	if (optind != argc || a == NULL || crt == NULL || key == NULL ||
	    per == 0)
		usage();
	if (strlen(prefix) > PREFIXMAX)
		die("name prefix longer than %d bytes", PREFIXMAX);
	if (strlen(a) >= sizeof(host))
		usage();
	memcpy(host, a, strlen(a) + 1);
	if ((p = strrchr(host, ':')) == NULL)
		usage();
	*p++ = '\0';
	port = number(p, 1, 65535, "port");
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		usage();

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal: %s", strerror(errno));
	fd_limit((rlim_t)per * batches + 64);
	load_ca(crt, key);
	mkctx();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	mode_hold(per, conc, batches, secs);
	return (0);
}
