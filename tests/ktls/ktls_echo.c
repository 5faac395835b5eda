/*
 * kTLS end to end on a real kernel: an OpenSSL client talks TLS 1.3 to a
 * server that hands the session to the kernel with ktls_offload() after
 * the handshake and then speaks only through the socket, as a worker
 * does (ktls_recv, write, ktls_close_notify).
 *
 *	ktls_echo		every suite, echo and close_notify both ways
 *	ktls_echo keyupdate	a client KeyUpdate ends that session cleanly
 *	ktls_echo tickets	every suite, the server sending two session
 *				tickets before the handover: the kernel's
 *				TX sequence starts at the count of them
 *	ktls_echo keyupdate-to port
 *				the same against mezited on 127.0.0.1:port:
 *				one HTTP/1.1 request is answered, then after
 *				a KeyUpdate the session ends unanswered
 *
 * The client writes right after Finished, before the server has
 * installed its keys: those bytes must arrive intact.  Exit status 0:
 * passed, 77: this kernel has no TLS support, 1: failed.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "ktls_install.h"

#define ECHO_BYTES	(1024 * 1024)
#define CHUNK		16384
#define EARLY		"sent right after Finished"

#define TICKETS		2

static EVP_PKEY	*pkey;
static X509	*cert;
static int	 tickets;	/* the server sends TICKETS first */

static void
make_cert(void)
{
	X509_NAME	*name;

	if ((pkey = EVP_EC_gen("P-256")) == NULL || (cert = X509_new()) == NULL)
		errx(1, "key");
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, pkey);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	if (X509_sign(cert, pkey, EVP_sha256()) == 0)
		errx(1, "sign");
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		p += w;
		n -= w;
	}
	return (0);
}

/* The worker's side: plain socket I/O after the offload. */
static int
server(int lfd, const char *suite, int keyupdate)
{
	SSL_CTX		*ctx;
	SSL		*ssl;
	uint8_t		 buf[CHUNK + 64];
	char		 why[128];
	ssize_t		 n;
	int		 fd, type, saw_close = 0, saw_keyupdate = 0;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, suite) != 1 ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_set_num_tickets(ctx, tickets ? TICKETS : 0) != 1 ||
	    ktls_ctx_init(ctx) == -1)
		errx(1, "server ctx");
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		err(1, "accept");
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_accept(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		errx(1, "SSL_accept");
	}
	/* Each ticket was a record under the application key. */
	if (ktls_tickets_sent(ssl) != (tickets ? TICKETS : 0)) {
		warnx("%s: %llu tickets counted", suite,
		    (unsigned long long)ktls_tickets_sent(ssl));
		return (1);
	}
	if (ktls_offload(fd, ssl, ktls_tickets_sent(ssl), 0, why,
	    sizeof(why)) != 0) {
		warnx("%s: offload: %s", suite, why);
		return (1);
	}
	SSL_set_quiet_shutdown(ssl, 1);
	SSL_free(ssl);
	SSL_CTX_free(ctx);

	for (;;) {
		if ((n = ktls_recv(fd, buf, sizeof(buf), &type)) == -1) {
			if (errno == EINTR)
				continue;
			warn("%s: ktls_recv", suite);
			return (1);
		}
		if (n == 0)
			break;
		if (type == KTLS_RT_DATA) {
			if (write_all(fd, buf, n) == -1) {
				warn("%s: write", suite);
				return (1);
			}
		} else if (type == KTLS_RT_ALERT && n == 2 && buf[1] == 0) {
			/* close_notify: answer it, then close. */
			if (ktls_close_notify(fd) == -1) {
				warn("%s: close_notify", suite);
				return (1);
			}
			saw_close = 1;
			break;
		} else if (type == KTLS_RT_HANDSHAKE && n >= 1 &&
		    buf[0] == 24) {
			/* KeyUpdate: this kernel cannot rekey; end here. */
			saw_keyupdate = 1;
			(void)ktls_send_alert(fd, 1, 0);
			break;
		} else {
			warnx("%s: unexpected record type %d", suite, type);
			return (1);
		}
	}
	close(fd);
	if (keyupdate ? !saw_keyupdate : !saw_close) {
		warnx("%s: session ended without %s", suite,
		    keyupdate ? "a KeyUpdate" : "close_notify");
		return (1);
	}
	return (0);
}

/* A TLS 1.3 client session to 127.0.0.1:port. */
static SSL *
dial(int port, const char *suite, const char *alpn, SSL_CTX **ctxp, int *fdp)
{
	struct sockaddr_in	 sin;
	SSL_CTX			*ctx;
	SSL			*ssl;
	int			 fd;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    (suite != NULL && SSL_CTX_set_ciphersuites(ctx, suite) != 1) ||
	    (alpn != NULL && SSL_CTX_set_alpn_protos(ctx,
	    (const unsigned char *)alpn, strlen(alpn)) != 0))
		errx(1, "client ctx");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(1, "connect");
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1)
		errx(1, "SSL_connect");
	*ctxp = ctx;
	*fdp = fd;
	return (ssl);
}

static int
client(int port, const char *suite, int keyupdate)
{
	SSL_CTX			*ctx;
	SSL			*ssl;
	uint8_t			*out, in[CHUNK];
	size_t			 off, got;
	int			 fd, n, ret;

	ssl = dial(port, suite, NULL, &ctx, &fd);

	/* Before the server has even looked at its keys. */
	if (SSL_write(ssl, EARLY, sizeof(EARLY)) != sizeof(EARLY))
		errx(1, "early write");
	for (got = 0; got < sizeof(EARLY); got += n)
		if ((n = SSL_read(ssl, in + got, sizeof(EARLY) - got)) <= 0)
			errx(1, "%s: early echo", suite);
	if (memcmp(in, EARLY, sizeof(EARLY)) != 0)
		errx(1, "%s: early bytes changed", suite);

	if ((out = malloc(ECHO_BYTES)) == NULL ||
	    RAND_bytes(out, ECHO_BYTES) != 1)
		errx(1, "random");
	for (off = 0; off < ECHO_BYTES; off += CHUNK) {
		if (SSL_write(ssl, out + off, CHUNK) != CHUNK)
			errx(1, "%s: write", suite);
		for (got = 0; got < CHUNK; got += n)
			if ((n = SSL_read(ssl, in + got, CHUNK - got)) <= 0)
				errx(1, "%s: read at %zu", suite, off);
		if (memcmp(in, out + off, CHUNK) != 0)
			errx(1, "%s: echo differs at %zu", suite, off);
	}
	free(out);

	if (keyupdate) {
		if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 ||
		    SSL_write(ssl, "x", 1) != 1)
			errx(1, "%s: key update", suite);
		/* The server ends the session: no echo of "x". */
		n = SSL_read(ssl, in, sizeof(in));
		ret = n <= 0 ? 0 : 1;
	} else {
		/* close_notify both ways: 1 once the peer's has arrived. */
		if ((n = SSL_shutdown(ssl)) == 0)
			n = SSL_shutdown(ssl);
		ret = n == 1 ? 0 : 1;
		if (ret)
			warnx("%s: no close_notify from the server", suite);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return (ret);
}

static int
run(const char *suite, int keyupdate)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	pid_t			 pid;
	int			 lfd, status, srv;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) == -1)
		err(1, "listen");
	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		close(lfd);
		_exit(client(ntohs(sin.sin_port), suite, keyupdate));
	}
	srv = server(lfd, suite, keyupdate);
	close(lfd);
	if (waitpid(pid, &status, 0) == -1)
		err(1, "waitpid");
	if (srv != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("FAIL %s%s%s\n", suite, keyupdate ? " keyupdate" : "",
		    tickets ? " tickets" : "");
		return (1);
	}
	printf("PASS %s%s%s\n", suite, keyupdate ? " keyupdate" : "",
	    tickets ? " tickets" : "");
	return (0);
}

/* A KeyUpdate sent to a server that hands sessions to the kernel. */
static int
keyupdate_to(int port)
{
	static const char	 req[] =
	    "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
	SSL_CTX			*ctx;
	SSL			*ssl;
	char			 buf[4096];
	int			 fd, n, got = 0;

	ssl = dial(port, NULL, "\x08http/1.1", &ctx, &fd);
	if (SSL_write(ssl, req, sizeof(req) - 1) != sizeof(req) - 1)
		errx(1, "write");
	while (got < 12 && (n = SSL_read(ssl, buf + got,
	    sizeof(buf) - 1 - got)) > 0)
		got += n;
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		errx(1, "first request: %s", buf);
	/* Let the rest of the answer arrive, then update our keys. */
	usleep(200000);
	while (SSL_pending(ssl) > 0 && SSL_read(ssl, buf, sizeof(buf)) > 0)
		;
	if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 ||
	    SSL_write(ssl, req, sizeof(req) - 1) != sizeof(req) - 1)
		errx(1, "key update");
	for (;;) {
		n = SSL_read(ssl, buf, sizeof(buf) - 1);
		if (n <= 0)
			break;
		buf[n] = '\0';
		if (strstr(buf, "HTTP/1.1") != NULL) {
			printf("FAIL keyupdate-to: answered after KeyUpdate\n");
			return (1);
		}
	}
	printf("PASS keyupdate-to: session ended after KeyUpdate\n");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return (0);
}

int
main(int argc, char *argv[])
{
	static const char	*suites[] = { "TLS_AES_128_GCM_SHA256",
	    "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256" };
	char			 why[256];
	size_t			 i;
	int			 fails = 0, keyupdate;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "keyupdate-to") == 0)
		return (keyupdate_to(atoi(argv[2])));
	keyupdate = argc > 1 && strcmp(argv[1], "keyupdate") == 0;
	tickets = argc > 1 && strcmp(argv[1], "tickets") == 0;
	if (ktls_probe(why, sizeof(why)) != 1) {
		printf("SKIP: %s\n", why);
		return (77);
	}
	make_cert();
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		fails += run(suites[i], keyupdate);
	return (fails ? 1 : 0);
}
