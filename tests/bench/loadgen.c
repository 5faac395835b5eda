/*
 * loadgen: the benchmark's client, in C so that it leaves the two cores
 * to the servers as far as a TLS client can.
 *
 *	loadgen conn -a ADDR:PORT -P http|sink [-R] [-c conc] [-n max]
 *	    [-t secs]
 *		New connections, each: TCP connect, full TLS 1.3 handshake,
 *		one small exchange, close.  http: "GET /64.bin" with
 *		"Connection: close", read to EOF; sink: "X 64", 64 bytes
 *		echoed, then the sink closes.  -R: resume instead: one
 *		connection first takes a ticket, and every connection offers
 *		the latest ticket the server sent (a TLS 1.3 ticket is meant
 *		for one use, and servers send a new one on resumption).
 *	loadgen lat -a ... -P ... [-n rounds] [-w warmup]
 *		Round trips on one connection: http: keep-alive
 *		"GET /64.bin" (64-byte body); sink: echo of 64 bytes.
 *	loadgen down -a ... -P ... -s size -r repeat [-u path]
 *		One connection receives repeat x size bytes: http: GET of a
 *		static file of that size, repeat times, keep-alive; sink: "D".
 *	loadgen up -a ... -P ... -s size -r repeat [-u path]
 *		One connection sends repeat x size bytes: http: POST of size
 *		bytes to path, repeat times, keep-alive; sink: "U".
 *	loadgen hold -a ... -P ... -n per-batch [-c conc]
 *		Opens per-batch connections (handshake only, then idle),
 *		prints "ready ...", waits for a line on stdin, opens as many
 *		again, prints, waits for a line or EOF, exits.
 *
 * Common options: -A alpn (default http/1.1 or mezite-bench), -C TLS 1.3
 * cipher suite (default TLS_AES_128_GCM_SHA256), -S server name.
 * Every mode prints one line of key=value pairs on stdout.
 */

#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define IOBUF		65536
#define MAXEVENTS	256

enum proto { P_HTTP, P_SINK };

static struct sockaddr_in	 addr;
static enum proto		 proto = P_HTTP;
static const char		*alpn;
static const char		*suites = "TLS_AES_128_GCM_SHA256";
static const char		*sni = "localhost";
static const char		*path;
static SSL_CTX			*ctx;
static unsigned long		 tickets;
static int			 resume;	/* -R */
static SSL_SESSION		*latest;	/* the ticket to offer */
static long			 resumed;
static uint8_t			 iobuf[IOBUF];

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	ERR_print_errors_fp(stderr);
	exit(1);
}

static int
newsess_cb(SSL *ssl, SSL_SESSION *sess)
{
	tickets++;
	if (!resume || !SSL_SESSION_is_resumable(sess))
		return (0);	/* not kept: every connection is a full one */
	if (latest != NULL)
		SSL_SESSION_free(latest);
	latest = sess;
	return (1);		/* ours now */
}

/*
 * Offer the latest ticket: a copy of its session for each connection,
 * for a handshake in flight changes the session it was given, and
 * connections that shared one would resume only some of the time.
 */
static int
offer(SSL *ssl)
{
	SSL_SESSION	*sess;
	int		 ok;

	if ((sess = SSL_SESSION_dup(latest)) == NULL)
		return (-1);
	ok = SSL_set_session(ssl, sess);
	SSL_SESSION_free(sess);
	return (ok ? 0 : -1);
}

static void
mkctx(void)
{
	unsigned char	 wire[256];
	size_t		 n;

	if (alpn == NULL)
		alpn = proto == P_HTTP ? "http/1.1" : "mezite-bench";
	if ((n = strlen(alpn)) == 0 || n > 200)
		die("bad alpn %s", alpn);
	wire[0] = (unsigned char)n;
	memcpy(wire + 1, alpn, n);

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, suites) ||
	    !SSL_CTX_set1_groups_list(ctx, "X25519") ||
	    SSL_CTX_set_alpn_protos(ctx, wire, (unsigned int)n + 1) != 0)
		die("TLS client setup failed (%s)", suites);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Count the tickets the server sends; keep the latest with -R. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, newsess_cb);
}

static void
describe(SSL *ssl)
{
	const unsigned char	*a;
	unsigned int		 alen;

	SSL_get0_alpn_selected(ssl, &a, &alen);
	printf("cipher=%s alpn=%.*s ", SSL_get_cipher_name(ssl), (int)alen,
	    alen ? (const char *)a : "-");
}

/* ------------------------------------------------------------------ */
/* Blocking, one connection. */

static SSL *
bconnect(void)
{
	SSL	*ssl;
	int	 fd, on = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1)
		die("connect: %s", strerror(errno));
	if ((ssl = SSL_new(ctx)) == NULL)
		die("SSL_new%s", "");
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, sni);
	if (latest != NULL && offer(ssl) == -1)
		die("SSL_set_session%s", "");
	if (SSL_connect(ssl) != 1)
		die("handshake failed%s", "");
	return (ssl);
}

static void
wall(SSL *ssl, const void *b, size_t n)
{
	const uint8_t	*p = b;
	int		 w;

	while (n > 0) {
		if ((w = SSL_write(ssl, p, n > 16384 ? 16384 : (int)n)) <= 0)
			die("write failed%s", "");
		p += w;
		n -= w;
	}
}

static size_t
rsome(SSL *ssl, void *b, size_t n)
{
	int	 r;

	if ((r = SSL_read(ssl, b, n > INT32_MAX ? INT32_MAX : (int)n)) > 0)
		return ((size_t)r);
	if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN)
		return (0);
	if (SSL_get_error(ssl, r) == SSL_ERROR_SYSCALL && errno == 0)
		return (0);
	die("read failed%s", "");
	return (0);
}

static void
rall(SSL *ssl, void *b, size_t n)
{
	uint8_t	*p = b;
	size_t	 r;

	while (n > 0) {
		if ((r = rsome(ssl, p, n)) == 0)
			die("early EOF%s", "");
		p += r;
		n -= r;
	}
}

/* Read buffer for HTTP responses on a keep-alive connection. */
static char	 hbuf[IOBUF];
static size_t	 hlen;

/*
 * Read one response; its body is dropped.  Returns the body length and
 * sets *status.  Only what the servers here send is understood: a
 * Content-Length, no chunking.
 */
static size_t
http_response(SSL *ssl, int *status)
{
	char	*end, *cl;
	size_t	 hdr, body, have, r;

	hbuf[hlen] = '\0';
	while ((end = strstr(hbuf, "\r\n\r\n")) == NULL) {
		if (hlen >= sizeof(hbuf) - 1)
			die("response header too long%s", "");
		if ((r = rsome(ssl, hbuf + hlen, sizeof(hbuf) - 1 - hlen)) == 0)
			die("EOF in response header%s", "");
		hlen += r;
		hbuf[hlen] = '\0';
	}
	hdr = end + 4 - hbuf;
	if (strncmp(hbuf, "HTTP/1.", 7) != 0 || hlen < 12)
		die("not an HTTP response: %.40s", hbuf);
	*status = atoi(hbuf + 9);
	for (cl = hbuf; (cl = strchr(cl, '\n')) != NULL && cl < end; cl++)
		if (strncasecmp(cl + 1, "content-length:", 15) == 0)
			break;
	if (cl == NULL || cl >= end)
		die("response without Content-Length: %.200s", hbuf);
	body = strtoull(cl + 16, NULL, 10);
	have = hlen - hdr;
	if (have >= body) {
		memmove(hbuf, hbuf + hdr + body, have - body);
		hlen = have - body;
		return (body);
	}
	hlen = 0;
	have = body - have;
	while (have > 0) {
		if ((r = rsome(ssl, iobuf, have < IOBUF ? have : IOBUF)) == 0)
			die("EOF in response body%s", "");
		have -= r;
	}
	return (body);
}

static void
put_hdr(uint8_t *h, char cmd, uint64_t n)
{
	int	 i;

	h[0] = (uint8_t)cmd;
	for (i = 0; i < 8; i++)
		h[1 + i] = (uint8_t)(n >> (56 - 8 * i));
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

static void
mode_lat(long rounds, long warmup)
{
	SSL	*ssl = bconnect();
	char	 req[256];
	uint8_t	 msg[64], back[64], h[9];
	double	*t, t0;
	long	 i;
	int	 n, status;

	if ((t = calloc(rounds, sizeof(*t))) == NULL)
		die("calloc%s", "");
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
	    path ? path : "/64.bin", sni);
	memset(msg, 'e', sizeof(msg));
	if (proto == P_SINK) {
		put_hdr(h, 'E', 0);
		wall(ssl, h, sizeof(h));
	}
	for (i = -warmup; i < rounds; i++) {
		t0 = now();
		if (proto == P_HTTP) {
			wall(ssl, req, n);
			if (http_response(ssl, &status) != 64 || status != 200)
				die("unexpected response to %s", req);
		} else {
			wall(ssl, msg, sizeof(msg));
			rall(ssl, back, sizeof(back));
		}
		if (i >= 0)
			t[i] = (now() - t0) * 1e6;
	}
	qsort(t, rounds, sizeof(*t), cmp_double);
	describe(ssl);
	printf("rounds=%ld p50_us=%.1f p99_us=%.1f p999_us=%.1f "
	    "min_us=%.1f max_us=%.1f\n", rounds, t[rounds / 2],
	    t[(long)(rounds * 0.99)], t[(long)(rounds * 0.999)], t[0],
	    t[rounds - 1]);
}

static void
mode_stream(int up, uint64_t size, long repeat)
{
	SSL		*ssl = bconnect();
	char		 req[512];
	uint8_t		 h[9], ack;
	uint64_t	 total = 0, left;
	double		 t0, t1;
	long		 i;
	int		 n, status = 0;
	size_t		 got;

	if (RAND_bytes(iobuf, sizeof(iobuf)) != 1)
		die("RAND_bytes%s", "");
	t0 = now();
	for (i = 0; i < repeat; i++) {
		if (proto == P_SINK) {
			put_hdr(h, up ? 'U' : 'D', size);
			wall(ssl, h, sizeof(h));
			if (up) {
				for (left = size; left > 0; left -= got) {
					got = left < 16384 ? left : 16384;
					wall(ssl, iobuf, got);
				}
				rall(ssl, &ack, 1);
			} else {
				for (left = size; left > 0; left -= got)
					if ((got = rsome(ssl, iobuf, left <
					    IOBUF ? left : IOBUF)) == 0)
						die("early EOF%s", "");
			}
			total += size;
			continue;
		}
		if (up) {
			n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\n"
			    "Host: %s\r\nContent-Type: application/"
			    "octet-stream\r\nContent-Length: %llu\r\n\r\n",
			    path ? path : "/upload.bin", sni,
			    (unsigned long long)size);
			wall(ssl, req, n);
			for (left = size; left > 0; left -= got) {
				got = left < 16384 ? left : 16384;
				wall(ssl, iobuf, got);
			}
			(void)http_response(ssl, &status);
			total += size;
		} else {
			n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n"
			    "Host: %s\r\n\r\n", path ? path : "/big.bin", sni);
			wall(ssl, req, n);
			if (http_response(ssl, &status) != size ||
			    status != 200)
				die("unexpected response to %s", req);
			total += size;
		}
	}
	t1 = now();
	describe(ssl);
	printf("bytes=%llu secs=%.4f mbps=%.2f status=%d\n",
	    (unsigned long long)total, t1 - t0, total / (t1 - t0) / 1e6,
	    status);
}

/* ------------------------------------------------------------------ */
/* Non-blocking: many connections. */

enum cstate { C_CONNECT, C_HS, C_WRITE, C_READ, C_IDLE };

struct slot {
	int		 fd;
	SSL		*ssl;
	enum cstate	 st;
	uint32_t	 events;
	size_t		 got;
	char		 head[16];
};

static int		 ep;
static int		 hold;
static long		 started, ok, failed, inflight;
static long		 limit;
static double		 deadline;
static char		 request[256];
static size_t		 reqlen;
static char		 first_desc[128];

static void
slot_end(struct slot *s, int success)
{
	if (s->events)
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	/*
	 * Ended as it should: say so without writing a close_notify, or
	 * SSL_free() marks the session, the latest ticket, not resumable.
	 */
	if (s->ssl != NULL && success)
		SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN |
		    SSL_RECEIVED_SHUTDOWN);
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	close(s->fd);
	free(s);
	inflight--;
	if (success)
		ok++;
	else
		failed++;
}

static void
slot_events(struct slot *s, uint32_t want)
{
	struct epoll_event	 ev;

	if (want == s->events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = s;
	if (epoll_ctl(ep, s->events ? (want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL) :
	    EPOLL_CTL_ADD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	s->events = want;
}

static int
ssl_want(struct slot *s, int r, uint32_t *want)
{
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		return (1);
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		return (1);
	default:
		ERR_clear_error();
		return (0);
	}
}

static void
slot_drive(struct slot *s)
{
	const unsigned char	*a;
	unsigned int		 alen;
	socklen_t		 len;
	uint32_t		 want = 0;
	int			 r, err;

	for (;;) {
		switch (s->st) {
		case C_CONNECT:
			len = sizeof(err);
			if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == -1 || err != 0)
				goto fail;
			if ((s->ssl = SSL_new(ctx)) == NULL)
				goto fail;
			SSL_set_fd(s->ssl, s->fd);
			SSL_set_tlsext_host_name(s->ssl, sni);
			SSL_set_connect_state(s->ssl);
			if (latest != NULL && offer(s->ssl) == -1)
				goto fail;
			s->st = C_HS;
			break;
		case C_HS:
			if ((r = SSL_do_handshake(s->ssl)) == 1) {
				if (SSL_session_reused(s->ssl))
					resumed++;
				if (first_desc[0] == '\0') {
					SSL_get0_alpn_selected(s->ssl, &a,
					    &alen);
					snprintf(first_desc, sizeof(first_desc),
					    "cipher=%s alpn=%.*s",
					    SSL_get_cipher_name(s->ssl),
					    (int)alen, alen ? (const char *)a :
					    "-");
				}
				if (hold) {
					/* Idle from now on; never read. */
					slot_events(s, 0);
					s->st = C_IDLE;
					inflight--;
					ok++;
					return;
				}
				s->st = C_WRITE;
				break;
			}
			if (!ssl_want(s, r, &want))
				goto fail;
			slot_events(s, want);
			return;
		case C_WRITE:
			if ((r = SSL_write(s->ssl, request, (int)reqlen)) > 0) {
				s->st = C_READ;
				break;
			}
			if (!ssl_want(s, r, &want))
				goto fail;
			slot_events(s, want);
			return;
		case C_READ:
			if ((r = SSL_read(s->ssl, iobuf, IOBUF)) > 0) {
				if (s->got < sizeof(s->head))
					memcpy(s->head + s->got, iobuf,
					    (size_t)r < sizeof(s->head) -
					    s->got ? (size_t)r :
					    sizeof(s->head) - s->got);
				s->got += r;
				break;
			}
			err = SSL_get_error(s->ssl, r);
			if (err == SSL_ERROR_ZERO_RETURN ||
			    (err == SSL_ERROR_SYSCALL && errno == 0)) {
				ERR_clear_error();
				/* EOF: the server closed after answering. */
				if (proto == P_HTTP ? (s->got > 12 &&
				    memcmp(s->head, "HTTP/1.1 200", 12) == 0) :
				    s->got == 64) {
					slot_end(s, 1);
					return;
				}
				goto fail;
			}
			if (!ssl_want(s, r, &want))
				goto fail;
			slot_events(s, want);
			return;
		case C_IDLE:
			return;
		}
	}
 fail:
	slot_end(s, 0);
}

static void
slot_start(void)
{
	struct slot	*s;
	int		 on = 1;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		die("calloc%s", "");
	if ((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	started++;
	inflight++;
	if (connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 &&
	    errno != EINPROGRESS) {
		slot_end(s, 0);
		return;
	}
	s->st = C_CONNECT;
	slot_events(s, EPOLLOUT);
}

/* Run until limit connections started and done, or the deadline. */
static void
engine(long conc)
{
	struct epoll_event	 evs[MAXEVENTS];
	double			 hard = deadline + 15;
	int			 i, n;

	for (;;) {
		while (inflight < conc && started < limit &&
		    now() < deadline)
			slot_start();
		if (inflight == 0)
			break;
		if (now() > hard) {
			failed += inflight;
			break;
		}
		if ((n = epoll_wait(ep, evs, MAXEVENTS, 200)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++)
			slot_drive(evs[i].data.ptr);
	}
}

/* One connection of mode conn, blocking, read to EOF. */
static void
prime(void)
{
	SSL	*ssl = bconnect();
	size_t	 got = 0, r;

	wall(ssl, request, reqlen);
	while ((r = rsome(ssl, iobuf, IOBUF)) > 0)
		got += r;
	if (got == 0)
		die("no answer to the first connection%s", "");
	(void)SSL_shutdown(ssl);
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
}

static void
mode_conn(long conc, long max, double secs)
{
	uint8_t	 h[9];
	double	 t0, t1;

	if (proto == P_HTTP)
		reqlen = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\n"
		    "Host: %s\r\nConnection: close\r\n\r\n",
		    path ? path : "/64.bin", sni);
	else {
		put_hdr(h, 'X', 64);
		memcpy(request, h, sizeof(h));
		memset(request + sizeof(h), 'x', 64);
		reqlen = sizeof(h) + 64;
	}
	if (resume) {
		/* A ticket before the clock starts; not counted. */
		prime();
		if (latest == NULL)
			die("no session ticket to resume with%s", "");
		tickets = 0;
	}
	limit = max;
	t0 = now();
	deadline = t0 + secs;
	engine(conc);
	t1 = now();
	printf("%s conns=%ld failed=%ld secs=%.4f rate=%.1f "
	    "tickets_per_conn=%.2f resumed=%ld\n", first_desc, ok, failed,
	    t1 - t0, ok / (t1 - t0), ok ? (double)tickets / ok : 0.0,
	    resumed);
}

static void
mode_hold(long conc, long per)
{
	char	 line[64];
	int	 batch;

	hold = 1;
	for (batch = 1; batch <= 2; batch++) {
		limit = started + per;
		deadline = now() + 60;
		engine(conc);
		printf("ready batch=%d open=%ld failed=%ld %s\n", batch, ok,
		    failed, first_desc);
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL)
			break;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadgen conn|lat|down|up|hold -a addr:port "
	    "[-P http|sink] [-A alpn] [-C suite] [-R] [-S sni] [-u path]\n"
	    "\t[-c conc] [-n count] [-t secs] [-w warmup] [-s size] "
	    "[-r repeat]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct rlimit	 rl;
	const char	*mode, *a = NULL;
	char		 host[64], *p;
	double		 secs = 5;
	uint64_t	 size = 0;
	long		 conc = 8, count = -1, warmup = 200, repeat = 1;
	int		 ch;

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((ch = getopt(argc, argv, "A:a:C:c:n:P:Rr:S:s:t:u:w:")) != -1) {
		switch (ch) {
		case 'A':
			alpn = optarg;
			break;
		case 'a':
			a = optarg;
			break;
		case 'C':
			suites = optarg;
			break;
		case 'c':
			conc = atol(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'P':
			if (strcmp(optarg, "http") == 0)
				proto = P_HTTP;
			else if (strcmp(optarg, "sink") == 0)
				proto = P_SINK;
			else
				usage();
			break;
		case 'R':
			resume = 1;
			break;
		case 'r':
			repeat = atol(optarg);
			break;
		case 'S':
			sni = optarg;
			break;
		case 's':
			size = strtoull(optarg, NULL, 10);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'u':
			path = optarg;
			break;
		case 'w':
			warmup = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (a == NULL || strlen(a) >= sizeof(host) ||
	    (p = strrchr(strcpy(host, a), ':')) == NULL)
		usage();
	*p++ = '\0';
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(p));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		usage();

	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	mkctx();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));

	if (strcmp(mode, "conn") == 0)
		mode_conn(conc, count > 0 ? count : 1000000, secs);
	else if (strcmp(mode, "lat") == 0)
		mode_lat(count > 0 ? count : 10000, warmup);
	else if (strcmp(mode, "down") == 0 || strcmp(mode, "up") == 0) {
		if (size == 0 || repeat < 1)
			usage();
		mode_stream(mode[0] == 'u', size, repeat);
	} else if (strcmp(mode, "hold") == 0)
		mode_hold(conc > 8 ? conc : 64, count > 0 ? count : 1000);
	else
		usage();
	return (0);
}
