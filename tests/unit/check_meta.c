/*
 * Handoff metadata: encode, decode, and refuse what a master could not
 * have sent.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta.h"
#include "util.h"

static void
sin_make(struct sockaddr_in *sin, const char *a, int port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, a, &sin->sin_addr), 1);
}

/* Pack a full ConnMeta the way the master does. */
static uint8_t *
meta_pack(size_t *len, int with_cert)
{
	Mezite__ConnMeta	 m;
	Mezite__PeerCert	 pc;
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	static struct pb_addr	 client, local;
	static char		*sans[] = { "alice.example", "alice@example.com" };
	uint8_t			*buf;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(50123);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr),
	    1);
	sin_make(&sin, "192.0.2.1", 443);
	addr_to_pb((struct sockaddr *)&sin6, &client);
	addr_to_pb((struct sockaddr *)&sin, &local);

	mezite__conn_meta__init(&m);
	m.id = 42;
	m.worker = "https";
	m.alpn = "h2";
	m.sni = "proxy.example.com";
	m.client = &client.pb;
	m.local = &local.pb;
	m.tls_version = "TLSv1.3";
	m.tls_cipher = "TLS_AES_256_GCM_SHA384";
	m.mode = MEZITE__HANDOFF_MODE__RELAY;
	m.started = 1700000000;
	if (with_cert) {
		mezite__peer_cert__init(&pc);
		pc.subject = "/O=Mezite/CN=alice";
		pc.issuer = "/CN=Mezite CA";
		pc.fingerprint = "SHA256:00112233445566778899aabbccddeeff"
		    "00112233445566778899aabbccddeeff";
		pc.n_sans = 2;
		pc.sans = sans;
		pc.not_before = 1700000000;
		pc.not_after = 1700086400;
		m.cert = &pc;
	}
	*len = mezite__conn_meta__get_packed_size(&m);
	ck_assert_ptr_nonnull(buf = malloc(*len));
	ck_assert_uint_eq(mezite__conn_meta__pack(&m, buf), *len);
	return (buf);
}

START_TEST(roundtrip)
{
	Mezite__ConnMeta	*m;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 buf[ADDRSTRLEN];
	uint8_t			*p;
	size_t			 len;

	p = meta_pack(&len, 1);
	ck_assert_ptr_nonnull(m = meta_decode(p, len));
	ck_assert_uint_eq(m->id, 42);
	ck_assert_str_eq(m->worker, "https");
	ck_assert_str_eq(m->alpn, "h2");
	ck_assert_str_eq(m->sni, "proxy.example.com");
	ck_assert_str_eq(m->tls_version, "TLSv1.3");
	ck_assert_int_eq(addr_from_pb(m->client, &ss, &sslen), 0);
	ck_assert_int_eq(sslen, sizeof(struct sockaddr_in6));
	ck_assert_str_eq(addr_str((struct sockaddr *)&ss, buf, sizeof(buf)),
	    "[2001:db8::7]:50123");
	ck_assert_int_eq(addr_from_pb(m->local, &ss, &sslen), 0);
	ck_assert_str_eq(addr_str((struct sockaddr *)&ss, buf, sizeof(buf)),
	    "192.0.2.1:443");
	ck_assert_ptr_nonnull(m->cert);
	ck_assert_str_eq(m->cert->subject, "/O=Mezite/CN=alice");
	ck_assert_uint_eq(m->cert->n_sans, 2);
	ck_assert_str_eq(m->cert->sans[1], "alice@example.com");
	ck_assert_int_eq(m->cert->not_after, 1700086400);
	mezite__conn_meta__free_unpacked(m, NULL);
	free(p);

	p = meta_pack(&len, 0);
	ck_assert_ptr_nonnull(m = meta_decode(p, len));
	ck_assert_ptr_null(m->cert);
	mezite__conn_meta__free_unpacked(m, NULL);
	free(p);
}
END_TEST

START_TEST(truncated)
{
	Mezite__ConnMeta	*m;
	uint8_t			*p;
	size_t			 len, i;

	/* Every proper prefix is refused or still valid, never a crash. */
	p = meta_pack(&len, 1);
	for (i = 0; i < len; i++) {
		if ((m = meta_decode(p, i)) != NULL) {
			ck_assert(meta_valid(m));
			mezite__conn_meta__free_unpacked(m, NULL);
		}
	}
	ck_assert_ptr_null(meta_decode(p, 0));
	ck_assert_ptr_null(meta_decode(p, 3));
	free(p);
}
END_TEST

START_TEST(garbage)
{
	static const uint8_t	 junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };

	ck_assert_ptr_null(meta_decode(junk, sizeof(junk)));
}
END_TEST

START_TEST(bad_address)
{
	Mezite__Address		 a = MEZITE__ADDRESS__INIT;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	uint8_t			 bytes[16] = { 0 };

	a.addr.data = bytes;
	a.family = AF_INET;
	a.addr.len = 16;		/* wrong length for v4 */
	ck_assert_int_eq(addr_from_pb(&a, &ss, &sslen), -1);
	a.family = AF_INET6;
	a.addr.len = 4;
	ck_assert_int_eq(addr_from_pb(&a, &ss, &sslen), -1);
	a.addr.len = 16;
	a.port = 70000;
	ck_assert_int_eq(addr_from_pb(&a, &ss, &sslen), -1);
	a.port = 443;
	ck_assert_int_eq(addr_from_pb(&a, &ss, &sslen), 0);
	a.family = 99;
	ck_assert_int_eq(addr_from_pb(&a, &ss, &sslen), -1);
	ck_assert_int_eq(addr_from_pb(NULL, &ss, &sslen), -1);
}
END_TEST

START_TEST(invalid_fields)
{
	Mezite__ConnMeta	*m;
	uint8_t			*p, *q;
	size_t			 len, qlen;

	/* A zero id, or a missing address, is not something we send. */
	p = meta_pack(&len, 0);
	ck_assert_ptr_nonnull(m = meta_decode(p, len));
	m->id = 0;
	qlen = mezite__conn_meta__get_packed_size(m);
	ck_assert_ptr_nonnull(q = malloc(qlen));
	mezite__conn_meta__pack(m, q);
	ck_assert_ptr_null(meta_decode(q, qlen));
	free(q);

	m->id = 1;
	m->mode = 7;
	qlen = mezite__conn_meta__get_packed_size(m);
	ck_assert_ptr_nonnull(q = malloc(qlen));
	mezite__conn_meta__pack(m, q);
	ck_assert_ptr_null(meta_decode(q, qlen));
	free(q);
	mezite__conn_meta__free_unpacked(m, NULL);
	free(p);
}
END_TEST

START_TEST(over_imsg)
{
	Mezite__ConnMeta	 m = MEZITE__CONN_META__INIT;
	Mezite__ConnMeta	*r;
	struct pb_addr		 a;
	struct sockaddr_in	 sin;
	struct imsgbuf		 w, rd;
	struct imsg		 imsg;
	int			 sp[2], pfd[2], fd;
	char			 c;

	/* The metadata travels with its descriptor, as a handoff does. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(imsgbuf_init(&w, sp[0]), 0);
	ck_assert_int_eq(imsgbuf_init(&rd, sp[1]), 0);
	imsgbuf_allow_fdpass(&rd);

	sin_make(&sin, "127.0.0.1", 5555);
	addr_to_pb((struct sockaddr *)&sin, &a);
	m.id = 9;
	m.client = &a.pb;
	m.local = &a.pb;
	ck_assert_int_eq(pb_compose(&w, 1, 0, pfd[0], &m.base), 0);
	ck_assert_int_eq(imsgbuf_flush(&w), 0);
	ck_assert_int_eq(imsgbuf_read(&rd), 1);
	ck_assert_int_gt(imsg_get(&rd, &imsg), 0);
	ck_assert_ptr_nonnull(r = meta_decode(imsg.data, imsg_get_len(&imsg)));
	ck_assert_uint_eq(r->id, 9);
	ck_assert_int_ne(fd = imsg_get_fd(&imsg), -1);
	ck_assert_int_eq(write(pfd[1], "x", 1), 1);
	ck_assert_int_eq(read(fd, &c, 1), 1);
	ck_assert_int_eq(c, 'x');
	close(fd);
	close(pfd[1]);
	mezite__conn_meta__free_unpacked(r, NULL);
	imsg_free(&imsg);
	imsgbuf_clear(&w);
	imsgbuf_clear(&rd);
	close(sp[0]);
	close(sp[1]);
}
END_TEST

/* Ids name their master: instance and restarts, apart from the serial. */
START_TEST(conn_id_origin)
{
	uint32_t	 a = CONN_ID_ORIGIN(0, 0), b = CONN_ID_ORIGIN(0, 1);
	uint32_t	 c = CONN_ID_ORIGIN(1, 0), d = CONN_ID_ORIGIN(255, 7);
	uint64_t	 id;

	ck_assert_uint_ne(a, b);
	ck_assert_uint_ne(a, c);
	ck_assert_uint_ne(b, c);
	/* The restart count wraps within its bits, not into the instance. */
	ck_assert_uint_eq(CONN_ID_ORIGIN(3, 1U << CONN_ID_RESTART_BITS),
	    CONN_ID_ORIGIN(3, 0));
	id = CONN_ID_MAKE(d, 0xffffffffU);
	ck_assert_uint_eq(CONN_ID_ORIGIN_OF(id), d);
	ck_assert_uint_eq(id >> 56, 255);
	ck_assert_uint_eq(id & 0xffffffffU, 0xffffffffU);
	/* A single master's first ids are what they were: restarts << 32. */
	ck_assert_uint_eq(CONN_ID_MAKE(CONN_ID_ORIGIN(0, 2), 5),
	    (uint64_t)2 << 32 | 5);
}
END_TEST

/* Two masters' answers summed; each process once. */
START_TEST(status_sum)
{
	Mezite__Status		 st[2], out, *in[2] = { &st[0], &st[1] };
	Mezite__RouteStats	 r[3], *r0[2] = { &r[0], &r[1] }, *r1[1] = {
	    &r[2] };
	Mezite__ProcInfo	 p[4], *p0[2] = { &p[0], &p[1] }, *p1[2] = {
	    &p[2], &p[3] };
	int			 i;

	for (i = 0; i < 2; i++)
		mezite__status__init(&st[i]);
	for (i = 0; i < 3; i++)
		mezite__route_stats__init(&r[i]);
	for (i = 0; i < 4; i++)
		mezite__proc_info__init(&p[i]);
	st[0].version = "1";
	st[0].connections_total = 10;
	st[0].connections_active = 3;
	st[0].master_started = 200;
	st[0].now = 300;
	st[0].bytes_in = UINT64_MAX - 1;
	st[1].connections_total = 5;
	st[1].connections_active = 1;
	st[1].master_started = 100;
	st[1].now = 301;
	st[1].bytes_in = 5;
	st[1].ktls = 1;
	r[0].worker = "https";
	r[0].total = 7;
	r[1].worker = "ssh";
	r[1].total = 1;
	r[2].worker = "https";
	r[2].total = 2;
	r[2].active = 1;
	st[0].routes = r0;
	st[0].n_routes = 2;
	st[1].routes = r1;
	st[1].n_routes = 1;
	p[0].type = "master";
	p[0].pid = 100;
	p[1].type = "https";
	p[1].pid = 200;
	p[1].connections = 2;
	p[1].total = UINT64_MAX - 1;
	p[2].type = "master";
	p[2].instance = 1;
	p[2].pid = 101;
	p[3].type = "https";
	p[3].pid = 200;
	p[3].connections = 4;
	p[3].total = 3;
	st[0].procs = p0;
	st[0].n_procs = 2;
	st[1].procs = p1;
	st[1].n_procs = 2;

	ck_assert_int_eq(status_merge(&out, in, 2), 0);
	ck_assert_str_eq(out.version, "1");
	ck_assert_uint_eq(out.connections_total, 15);
	ck_assert_uint_eq(out.connections_active, 4);
	ck_assert_int_eq(out.master_started, 100);
	ck_assert_int_eq(out.now, 301);
	ck_assert_uint_eq(out.bytes_in, UINT64_MAX);	/* saturates */
	ck_assert_int_eq(out.ktls, 1);
	ck_assert_uint_eq(out.n_routes, 2);
	ck_assert_str_eq(out.routes[0]->worker, "https");
	ck_assert_uint_eq(out.routes[0]->total, 9);
	ck_assert_uint_eq(out.routes[0]->active, 1);
	ck_assert_str_eq(out.routes[1]->worker, "ssh");
	ck_assert_uint_eq(out.n_procs, 3);
	ck_assert_int_eq(out.procs[0]->pid, 100);
	ck_assert_int_eq(out.procs[1]->pid, 200);
	ck_assert_uint_eq(out.procs[1]->connections, 6);
	ck_assert_uint_eq(out.procs[1]->total, UINT64_MAX);	/* saturates */
	ck_assert_int_eq(out.procs[2]->pid, 101);
	/* The answers are left as they were. */
	ck_assert_uint_eq(r[0].total, 7);
	ck_assert_uint_eq(p[1].connections, 2);
	status_parts_free(&out);

	/* One answer, with no routes and no processes. */
	st[1].n_routes = st[1].n_procs = 0;
	ck_assert_int_eq(status_merge(&out, &in[1], 1), 0);
	ck_assert_uint_eq(out.connections_total, 5);
	ck_assert_uint_eq(out.n_routes, 0);
	ck_assert_uint_eq(out.n_procs, 0);
	status_parts_free(&out);
}
END_TEST

static Suite *
meta_suite(void)
{
	Suite	*s = suite_create("meta");
	TCase	*tc = tcase_create("meta");

	tcase_add_test(tc, roundtrip);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, bad_address);
	tcase_add_test(tc, invalid_fields);
	tcase_add_test(tc, over_imsg);
	tcase_add_test(tc, conn_id_origin);
	tcase_add_test(tc, status_sum);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(meta_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
