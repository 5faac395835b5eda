# Mezite: single-port access proxy.
#
#	make		build mezited, mezctl and msh
#	make deps	install what building and make demo need (Debian)
#	make demo	start mezited in the foreground on 127.0.0.1:8443
#	make check	install test dependencies, build, run every test
#	make bench	install the bench's peers, build, run the benchmarks
#	make fuzz	run each fuzz target for FUZZ_LONG seconds (300)
#	make check-fresh	make demo, then make check, on a fresh Debian 12
#	make install	PREFIX=/usr/local DESTDIR=
#
# CFLAGS (default -O2 -g), CPPFLAGS and LDFLAGS are the builder's own; the
# flags Mezite cannot build without are kept apart, in MEZITE_CFLAGS and
# MEZITE_LDFLAGS, so that "make CFLAGS=-O0" still finds its headers.

PREFIX ?=	/usr/local
SBINDIR ?=	$(PREFIX)/sbin
BINDIR ?=	$(PREFIX)/bin
MANDIR ?=	$(PREFIX)/share/man
SYSCONFDIR ?=	/etc
DESTDIR ?=

CC ?=		cc
YACC ?=		byacc
PROTOC_C ?=	protoc-c
PKG_CONFIG ?=	pkg-config

# Asked of pkg-config only when a rule needs them: after make deps has
# installed the libraries, and never for targets that compile nothing.
LIBS_PC =	libbsd-overlay libtls libcrypto libevent libprotobuf-c libseccomp
PC_CFLAGS =	$(shell $(PKG_CONFIG) --cflags $(LIBS_PC))
PC_LIBS =	$(shell $(PKG_CONFIG) --libs $(LIBS_PC))
H2O_CFLAGS =	-DH2O_USE_LIBUV=0 $(shell $(PKG_CONFIG) --cflags libh2o-evloop)
H2O_LIBS =	$(shell $(PKG_CONFIG) --libs libh2o-evloop)
CHECK_CFLAGS =	$(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS =	$(shell $(PKG_CONFIG) --libs check)

WARNINGS =	-Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		-Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
		-Wno-unused-parameter
CFLAGS ?=	-O2 -g
LDFLAGS ?=
MEZITE_CFLAGS =	-std=c11 -D_GNU_SOURCE -DLIBBSD_OPENBSD_VIS $(WARNINGS) \
		-I. -Icommon -Imaster -Iproto $(PC_CFLAGS)
MEZITE_LDFLAGS =

# The master's TLS engine: openssl (libssl; kTLS, relay) or libtls (relay).
TLS ?=		openssl
ifeq ($(TLS),libtls)
MEZITE_CFLAGS +=	-DMEZITE_TLS_LIBTLS
else ifneq ($(TLS),openssl)
$(error TLS must be openssl or libtls)
endif

# Who holds the TLS private keys in the OpenSSL build: the ca process, or
# the master (as in the libtls build); the bench compares the two.
KEYS ?=		ca
ifeq ($(KEYS),master)
MEZITE_CFLAGS +=	-DMEZITE_KEYS_IN_MASTER
else ifneq ($(KEYS),ca)
$(error KEYS must be ca or master)
endif

ifeq ($(SANITIZE),1)
MEZITE_CFLAGS +=	-fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined
MEZITE_LDFLAGS +=	-fsanitize=address,undefined
endif

# The builder's flags come last, so that they may override ours.
ALL_CFLAGS =	$(MEZITE_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS =	$(MEZITE_LDFLAGS) $(LDFLAGS)

VERSION =	0.1
FUZZ_TIME ?=	5
FUZZ_LONG ?=	300
# HEAVY=no leaves out the integration tests marked heavy (a minute's
# outage, a hundred agents, 50 MB each way): make check-fresh passes it,
# since the machine's own make check has just run them.
HEAVY ?=	yes
ifeq ($(HEAVY),no)
INTEGRATION_MARK =	-m "not heavy"
endif
# INTEGRATION_TESTS: the files of tests/integration to run; default all.
INTEGRATION_TESTS ?=
# The libtls build differs from the default one in the master's TLS
# engine alone, which then relays every session.  Its run takes the
# suites that go through that engine in every way a client can (routing,
# client certificates, transfers, floods, limits, reloads, agents and
# the bastion), and leaves out those of the workers' own protocols and
# of the control socket, which the default build has just run.
LIBTLS_TESTS =	$(addprefix tests/integration/, test_routing.py \
		test_clientcert.py test_transfer.py test_hostile_tls.py \
		test_limits.py test_drain.py test_faults.py test_concurrency.py \
		test_hostile_https.py test_tunnel.py test_ssh.py \
		test_proxyproto.py test_tlsscan.py test_prefork.py)

PROTO_C =	proto/mezite.pb-c.c
PROTO_H =	proto/mezite.pb-c.h
# The auth service's API, and the standard gRPC health service.
AUTH_PROTO_C =	proto/auth.pb-c.c proto/health.pb-c.c
AUTH_PROTO_H =	$(AUTH_PROTO_C:.c=.h)
# The stream layer between mezd and the tunnel worker.
TUNNEL_PROTO_C =	proto/tunnel.pb-c.c
TUNNEL_PROTO_H =	$(TUNNEL_PROTO_C:.c=.h)
AUTH_LIBS_PC =	libnghttp2 sqlite3 libcrypt
AUTH_CFLAGS =	$(shell $(PKG_CONFIG) --cflags $(AUTH_LIBS_PC))
AUTH_LIBS =	$(shell $(PKG_CONFIG) --libs $(AUTH_LIBS_PC))
# msh speaks gRPC to the auth worker: nghttp2, and no database; its TLS
# client (msh/tlsc.c, mezd's too) is libssl's, to resume TLS 1.3.
MSH_LIBS =	$(shell $(PKG_CONFIG) --libs libnghttp2 libssl)

COMMON_SRCS =	common/imsg.c common/log.c common/proc.c common/util.c \
		common/meta.c common/sbuf.c common/worker.c common/ktls.c \
		common/sandbox.c \
		$(PROTO_C)
MASTER_SRCS =	master/mezited.c master/parse.c master/config.c \
		master/printconf.c master/route.c master/master.c \
		master/engine.c master/handoff.c master/relay.c \
		master/control.c master/ktls_install.c master/tls_ossl.c \
		master/certid.c master/proxyproto.c master/proxy.c \
		master/source.c master/ca.c master/sni.c
HTTPS_SRCS =	workers/https/https.c workers/https/body.c workers/https/h2.c \
		workers/https/h2parse.c workers/https/h1.c \
		workers/https/h1parse.c
AUTH_SRCS =	workers/auth/auth.c workers/auth/rpc.c workers/auth/admin.c \
		workers/auth/rbac.c workers/auth/ca.c \
		workers/auth/store_sqlite.c workers/auth/passwd.c \
		workers/auth/ratelimit.c workers/auth/nodes.c \
		workers/auth/sshkey.c workers/auth/sshauth.c \
		workers/auth/sshcert.c workers/auth/sshlogin.c \
		common/sshwire.c
# The tunnel worker: agents' reverse tunnels (nghttp2, as the client).
TUNNEL_SRCS =	workers/tunnel/tunnel.c workers/tunnel/session.c
# The ssh worker: a libssh bastion, a process per session.
SSH_SRCS =	workers/ssh/ssh.c workers/ssh/session.c
SSH_LIBS =	$(shell $(PKG_CONFIG) --libs libssh)
MEZCTL_SRCS =	mezctl/mezctl.c mezctl/parser.c mezctl/admin.c \
		mezctl/nodes.c mezctl/sessions.c
# msh.c is the commands; the rest is what a test may link.
MSH_LIB_SRCS =	msh/dial.c msh/home.c msh/keys.c msh/known.c msh/rpc.c \
		msh/sshid.c msh/tlsc.c common/sshwire.c
# The ssh commands' pieces: msh alone, and its test, link them.
MSH_SSH_SRCS =	msh/bridge.c msh/sshcmd.c
MSH_SRCS =	msh/msh.c $(MSH_SSH_SRCS) $(MSH_LIB_SRCS)
# mezd: the agent.  Its parsers alone are what the tests link.
MEZD_LIB_SRCS =	mezd/config.c mezd/httpproxy.c mezd/backoff.c
MEZD_SRCS =	mezd/mezd.c mezd/join.c mezd/tunnel.c $(MEZD_LIB_SRCS)

# The gRPC layer of the auth worker: unary gRPC over HTTP/2 (nghttp2) on
# handed-over sessions, and its message framing.  The auth worker and
# the layer's test server (tests/grpc/grpc_testd) link it.
GRPC_SRCS =	workers/auth/grpc.c workers/auth/grpcframe.c
GRPC_OBJS =	$(GRPC_SRCS:.c=.o)
GRPC_LIBS =	$(shell $(PKG_CONFIG) --libs libnghttp2)

COMMON_OBJS =	$(COMMON_SRCS:.c=.o)
MASTER_OBJS =	$(MASTER_SRCS:.c=.o)
HTTPS_OBJS =	$(HTTPS_SRCS:.c=.o)
AUTH_OBJS =	$(AUTH_SRCS:.c=.o)
TUNNEL_OBJS =	$(TUNNEL_SRCS:.c=.o)
SSH_OBJS =	$(SSH_SRCS:.c=.o)
MEZCTL_OBJS =	$(MEZCTL_SRCS:.c=.o)
MSH_LIB_OBJS =	$(MSH_LIB_SRCS:.c=.o) proto/auth.pb-c.o
MSH_SSH_OBJS =	$(MSH_SSH_SRCS:.c=.o)
MSH_OBJS =	msh/msh.o $(MSH_SSH_OBJS) $(MSH_LIB_OBJS)
MEZD_LIB_OBJS =	$(MEZD_LIB_SRCS:.c=.o)
MEZD_OBJS =	$(MEZD_SRCS:.c=.o)

SBIN_PROGS =	master/mezited mezctl/mezctl mezd/mezd
BIN_PROGS =	msh/msh
PROGS =		$(SBIN_PROGS) $(BIN_PROGS)
MANS =		man/mezited.8 man/mezited.conf.5 man/mezctl.8 man/msh.1 \
		man/mezd.8

UNIT_TESTS =	tests/unit/check_imsg tests/unit/check_meta \
		tests/unit/check_route tests/unit/check_parse \
		tests/unit/check_ktls tests/unit/check_proc \
		tests/unit/check_msh tests/unit/check_store \
		tests/unit/check_passwd tests/unit/check_ratelimit \
		tests/unit/check_rbac \
		tests/unit/check_mezctl_parser \
		tests/unit/check_grpcframe \
		tests/unit/check_mezd
KTLS_OBJS =	master/ktls_install.o common/ktls.o
FUZZ_TARGETS =	tests/fuzz/fuzz_imsg tests/fuzz/fuzz_meta tests/fuzz/fuzz_parse \
		tests/fuzz/fuzz_proc tests/fuzz/fuzz_h1head \
		tests/fuzz/fuzz_h1chunked tests/fuzz/fuzz_h2block \
		tests/fuzz/fuzz_hpackint tests/fuzz/fuzz_grpcframe \
		tests/fuzz/fuzz_grpc tests/fuzz/fuzz_authreq \
		tests/fuzz/fuzz_tunnel tests/fuzz/fuzz_connectresp \
		tests/fuzz/fuzz_sshkey tests/fuzz/fuzz_proxyproto \
		tests/fuzz/fuzz_sshcert tests/fuzz/fuzz_casign \
		tests/fuzz/fuzz_session tests/fuzz/fuzz_sni

.PHONY: all clean check check-unit check-config check-man check-fuzz fuzz \
	check-grpc check-integration check-sanitize check-libtls \
	check-valgrind check-ktls check-bench check-fresh demo deps \
	deps-check deps-bench install bench

all: $(PROGS)

%.o: %.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(PROTO_C) $(PROTO_H): proto/mezite.proto
	cd proto && $(PROTOC_C) --c_out=. mezite.proto

proto/%.pb-c.c proto/%.pb-c.h: proto/%.proto
	cd proto && $(PROTOC_C) --c_out=. $*.proto

master/parse.c: master/parse.y
	$(YACC) -o $@ master/parse.y

$(COMMON_OBJS) $(MASTER_OBJS) $(HTTPS_OBJS) $(MEZCTL_OBJS): $(PROTO_H) \
	common/*.h master/mezited.h master/master.h

$(MEZCTL_OBJS): mezctl/*.h

$(HTTPS_OBJS): MEZITE_CFLAGS += $(H2O_CFLAGS) -Iworkers/https
$(HTTPS_OBJS): workers/https/*.h

msh/msh.o $(MSH_SSH_OBJS) $(MSH_LIB_SRCS:.c=.o): $(AUTH_PROTO_H) msh/msh.h \
	msh/rpc.h msh/bridge.h msh/sshcmd.h msh/tlsc.h common/sshwire.h

$(AUTH_OBJS): $(PROTO_H) $(AUTH_PROTO_H) common/*.h master/mezited.h \
	workers/auth/*.h
$(AUTH_OBJS): MEZITE_CFLAGS += $(AUTH_CFLAGS) -Iworkers/auth
$(GRPC_OBJS): MEZITE_CFLAGS += -Iworkers/auth
$(GRPC_OBJS): $(PROTO_H) $(AUTH_PROTO_H) common/*.h workers/auth/*.h

$(TUNNEL_OBJS): $(PROTO_H) $(TUNNEL_PROTO_H) common/*.h workers/tunnel/*.h
$(TUNNEL_OBJS): MEZITE_CFLAGS += $(AUTH_CFLAGS) -Iworkers/tunnel

$(SSH_OBJS): $(PROTO_H) common/*.h master/mezited.h workers/ssh/*.h
$(SSH_OBJS): MEZITE_CFLAGS += -Iworkers/ssh

# The parser generated by yacc is not ours to lint.
master/parse.o: MEZITE_CFLAGS += -Wno-unused-but-set-variable \
		-Wno-unused-function

master/mezited: $(MASTER_OBJS) $(HTTPS_OBJS) $(AUTH_OBJS) $(GRPC_OBJS) \
	$(TUNNEL_OBJS) $(SSH_OBJS) $(AUTH_PROTO_C:.c=.o) \
	$(TUNNEL_PROTO_C:.c=.o) $(COMMON_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(H2O_LIBS) $(AUTH_LIBS) -lssl \
		$(SSH_LIBS) \
		$(shell $(PKG_CONFIG) --libs libbsd-ctor)

mezctl/mezctl: $(MEZCTL_OBJS) common/imsg.o common/log.o common/util.o \
	common/meta.o common/sbuf.o $(PROTO_C:.c=.o)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS)

msh/msh: $(MSH_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(MSH_LIBS)

# mezd dials and calls Join and Renew with msh's client.
$(MEZD_OBJS): $(AUTH_PROTO_H) $(TUNNEL_PROTO_H) mezd/mezd.h msh/msh.h \
	msh/rpc.h common/log.h
$(MEZD_OBJS): MEZITE_CFLAGS += -Imsh -Imezd
mezd/mezd: $(MEZD_OBJS) $(MSH_LIB_OBJS) $(TUNNEL_PROTO_C:.c=.o) common/log.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(MSH_LIBS)

# Unit tests: one Check suite per module.
TEST_OBJS =	common/imsg.o common/log.o common/util.o common/meta.o \
		common/proc.o $(PROTO_C:.c=.o)
# config_check builds the master's TLS context: the engines come along.
CONF_OBJS =	master/parse.o master/config.o master/printconf.o \
		master/route.o master/engine.o master/tls_ossl.o master/sni.o \
		master/ktls_install.o common/ktls.o master/ca.o common/sandbox.o

tests/unit/%.o: tests/unit/%.c $(PROTO_H) $(AUTH_PROTO_H) common/*.h \
	master/mezited.h msh/msh.h msh/rpc.h msh/sshcmd.h
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

tests/unit/check_imsg: tests/unit/check_imsg.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
tests/unit/check_meta: tests/unit/check_meta.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
tests/unit/check_route: tests/unit/check_route.o $(CONF_OBJS) $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) -lssl
tests/unit/check_parse: tests/unit/check_parse.o $(CONF_OBJS) $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) -lssl
tests/unit/check_proc: tests/unit/check_proc.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
tests/unit/check_msh: tests/unit/check_msh.o msh/sshcmd.o $(MSH_LIB_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(MSH_LIBS) $(CHECK_LIBS)
tests/unit/check_mezd.o: MEZITE_CFLAGS += -Imsh
tests/unit/check_mezd.o: mezd/mezd.h
tests/unit/check_mezd: tests/unit/check_mezd.o $(MEZD_LIB_OBJS) \
	$(MSH_LIB_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(MSH_LIBS) $(CHECK_LIBS)
tests/unit/check_ktls: tests/unit/check_ktls.o $(KTLS_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) -lssl
# mezctl's command line alone: the parser needs libbsd only.
tests/unit/check_mezctl_parser.o: mezctl/parser.h
tests/unit/check_mezctl_parser.o: MEZITE_CFLAGS += -Imezctl
tests/unit/check_mezctl_parser: tests/unit/check_mezctl_parser.o \
	mezctl/parser.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs libbsd-overlay) $(CHECK_LIBS)

# The auth worker's modules, each with what it alone needs.
AUTH_TESTS_OBJS = tests/unit/check_store.o tests/unit/check_passwd.o \
		tests/unit/check_ratelimit.o tests/unit/check_rbac.o \
		tests/unit/check_sshauth.o tests/unit/check_sshcert.o
$(AUTH_TESTS_OBJS): workers/auth/*.h
$(AUTH_TESTS_OBJS): MEZITE_CFLAGS += $(AUTH_CFLAGS) -Iworkers/auth
tests/unit/check_store: tests/unit/check_store.o workers/auth/store_sqlite.o \
	$(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) $(AUTH_LIBS)
tests/unit/check_passwd: tests/unit/check_passwd.o workers/auth/passwd.o \
	$(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) $(AUTH_LIBS)
tests/unit/check_ratelimit: tests/unit/check_ratelimit.o \
	workers/auth/ratelimit.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
tests/unit/check_rbac: tests/unit/check_rbac.o workers/auth/rbac.o \
	workers/auth/store_sqlite.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) $(AUTH_LIBS)
# Users' SSH keys, and the ssh worker's questions.
tests/unit/check_sshauth: tests/unit/check_sshauth.o workers/auth/sshauth.o \
	workers/auth/sshkey.o workers/auth/rbac.o workers/auth/store_sqlite.o \
	$(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) $(AUTH_LIBS)
UNIT_TESTS +=	tests/unit/check_sshauth
# The SSH user CA and its certificates, read back by ssh-keygen.
tests/unit/check_sshcert: tests/unit/check_sshcert.o workers/auth/sshcert.o \
	workers/auth/sshkey.o common/sshwire.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
UNIT_TESTS +=	tests/unit/check_sshcert
tests/unit/check_grpcframe.o: MEZITE_CFLAGS += -Iworkers/auth
tests/unit/check_grpcframe.o: workers/auth/grpcframe.h
tests/unit/check_grpcframe: tests/unit/check_grpcframe.o \
	workers/auth/grpcframe.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)

# The tunnel worker's checks of a Hello.
tests/unit/check_tunnel.o: MEZITE_CFLAGS += -Iworkers/tunnel
tests/unit/check_tunnel.o: workers/tunnel/tunnel.h $(TUNNEL_PROTO_H)
tests/unit/check_tunnel: tests/unit/check_tunnel.o workers/tunnel/session.o \
	$(TUNNEL_PROTO_C:.c=.o) common/ktls.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS) $(GRPC_LIBS)
UNIT_TESTS +=	tests/unit/check_tunnel

$(KTLS_OBJS): common/ktls.h master/ktls_install.h

# The auth worker's CAs.  UNIT_TESTS grows here, before check-unit and
# check-valgrind name it as their prerequisites.
tests/unit/check_ca.o: MEZITE_CFLAGS += -Iworkers/auth
tests/unit/check_ca.o: workers/auth/ca.h
tests/unit/check_ca: tests/unit/check_ca.o workers/auth/ca.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
UNIT_TESTS +=	tests/unit/check_ca

# The PROXY protocol header reader, alone.
tests/unit/check_proxyproto.o: master/proxyproto.h
tests/unit/check_proxyproto: tests/unit/check_proxyproto.o \
	master/proxyproto.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
UNIT_TESTS +=	tests/unit/check_proxyproto
# The master's per-source accounting.
tests/unit/check_source.o: master/master.h
tests/unit/check_source: tests/unit/check_source.o master/source.o \
	$(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
UNIT_TESTS +=	tests/unit/check_source
# The ca process's request check.
tests/unit/check_casign.o: master/casign.h
tests/unit/check_casign: tests/unit/check_casign.o master/ca.o \
	common/sandbox.o $(TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(CHECK_LIBS)
UNIT_TESTS +=	tests/unit/check_casign

# kTLS end to end; needs a kernel with TLS support (check-ktls boots one).
tests/ktls/ktls_echo: tests/ktls/ktls_echo.o $(KTLS_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) -lssl
tests/ktls/ktls_echo.o: common/ktls.h master/ktls_install.h

# The gRPC layer's test server: the layer alone on plaintext HTTP/2,
# with the health service and a method of its own (test.proto).
GRPC_TEST_OBJS = tests/grpc/grpc_testd.o tests/grpc/test.pb-c.o \
		$(GRPC_OBJS) proto/health.pb-c.o common/log.o common/util.o \
		common/ktls.o common/meta.o common/imsg.o $(PROTO_C:.c=.o)

tests/grpc/%.pb-c.c tests/grpc/%.pb-c.h: tests/grpc/%.proto
	cd tests/grpc && $(PROTOC_C) --c_out=. $*.proto

tests/grpc/grpc_testd.o tests/grpc/test.pb-c.o: MEZITE_CFLAGS += \
		-Iworkers/auth -Itests/grpc
tests/grpc/grpc_testd.o: $(PROTO_H) $(AUTH_PROTO_H) tests/grpc/test.pb-c.h \
	common/*.h workers/auth/*.h

tests/grpc/grpc_testd: $(GRPC_TEST_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PC_LIBS) $(GRPC_LIBS)

# Fuzz targets (libFuzzer, clang), built apart from the main objects.
FUZZ_CC ?=	clang
# UBSan reports and goes on unless told to stop: a report would pass.
FUZZ_CFLAGS ?=	-g -O1
ALL_FUZZ_CFLAGS = -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -std=c11 \
		-D_GNU_SOURCE -I. -Icommon -Imaster -Iproto $(PC_CFLAGS) \
		$(FUZZ_CFLAGS)
FUZZ_COMMON =	common/imsg.c common/log.c common/util.c common/meta.c \
		common/proc.c $(PROTO_C)
FUZZ_CONF =	master/parse.c master/config.c master/printconf.c \
		master/route.c master/engine.c master/tls_ossl.c master/sni.c \
		master/ktls_install.c common/ktls.c master/ca.c \
		common/sandbox.c

tests/fuzz/fuzz_imsg: tests/fuzz/fuzz_imsg.c tests/fuzz/fuzz.c $(FUZZ_COMMON)
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -o $@ $^ $(PC_LIBS)
tests/fuzz/fuzz_meta: tests/fuzz/fuzz_meta.c $(FUZZ_COMMON)
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -o $@ $^ $(PC_LIBS)
tests/fuzz/fuzz_casign: tests/fuzz/fuzz_casign.c $(FUZZ_COMMON) master/ca.c \
	common/sandbox.c
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -o $@ $^ $(PC_LIBS) -lssl
tests/fuzz/fuzz_parse: tests/fuzz/fuzz_parse.c $(FUZZ_COMMON) $(FUZZ_CONF)
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -o $@ $^ $(PC_LIBS) -lssl
tests/fuzz/fuzz_proc: tests/fuzz/fuzz_proc.c tests/fuzz/fuzz.c $(FUZZ_COMMON)
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -o $@ $^ $(PC_LIBS)

# The https worker's parsers of client bytes, and the HPACK integers it
# writes from a client's values.  They do no arithmetic that should
# wrap, so a wrap is an error too.  fuzz_h1head holds the rewritten
# head up to libh2o's own parser.
FUZZ_HTTPS =	-Iworkers/https -fsanitize=unsigned-integer-overflow

tests/fuzz/fuzz_h1head: tests/fuzz/fuzz_h1head.c workers/https/h1parse.c \
	workers/https/h1parse.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) $(FUZZ_HTTPS) -o $@ $(filter %.c,$^) \
		$(PC_LIBS) $(H2O_LIBS)
tests/fuzz/fuzz_h1chunked: tests/fuzz/fuzz_h1chunked.c \
	workers/https/h1parse.c workers/https/h1parse.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) $(FUZZ_HTTPS) -o $@ $(filter %.c,$^) \
		$(PC_LIBS)
tests/fuzz/fuzz_h2block: tests/fuzz/fuzz_h2block.c workers/https/h2parse.c \
	workers/https/h2parse.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) $(FUZZ_HTTPS) -o $@ $(filter %.c,$^)
tests/fuzz/fuzz_hpackint: tests/fuzz/fuzz_hpackint.c \
	workers/https/h2parse.c workers/https/h2parse.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) $(FUZZ_HTTPS) -o $@ $(filter %.c,$^)

# The tunnel worker's sessions, fed an agent's bytes.
tests/fuzz/fuzz_tunnel: tests/fuzz/fuzz_tunnel.c workers/tunnel/session.c \
	common/log.c common/util.c common/ktls.c common/meta.c common/imsg.c \
	$(PROTO_C) $(TUNNEL_PROTO_C) workers/tunnel/tunnel.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -Iworkers/tunnel \
		-fsanitize=unsigned-integer-overflow -o $@ $(filter %.c,$^) \
		$(PC_LIBS) $(GRPC_LIBS)

# The gRPC layer: its framing of messages, and a whole session fed a
# client's bytes, with the test server's methods.
FUZZ_GRPC =	-Iworkers/auth -Itests/grpc -fsanitize=unsigned-integer-overflow

tests/fuzz/fuzz_grpcframe: tests/fuzz/fuzz_grpcframe.c \
	workers/auth/grpcframe.c workers/auth/grpcframe.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) $(FUZZ_GRPC) -o $@ $(filter %.c,$^)
tests/fuzz/fuzz_grpc: tests/fuzz/fuzz_grpc.c $(GRPC_SRCS) common/log.c \
	common/util.c common/ktls.c common/meta.c common/imsg.c $(PROTO_C) \
	proto/health.pb-c.c tests/grpc/test.pb-c.c workers/auth/grpc.h \
	workers/auth/grpcframe.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) $(FUZZ_GRPC) -o $@ $(filter %.c,$^) \
		$(PC_LIBS) $(GRPC_LIBS)

# The auth worker's request messages, and the role patterns ListNodes
# matches.
tests/fuzz/fuzz_authreq: tests/fuzz/fuzz_authreq.c workers/auth/rbac.c \
	workers/auth/store_sqlite.c common/log.c $(PROTO_C) $(AUTH_PROTO_C) \
	workers/auth/auth.h workers/auth/store.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -Iworkers/auth $(AUTH_CFLAGS) -o $@ \
		$(filter %.c,$^) $(PC_LIBS) $(AUTH_LIBS)

# The auth worker's reader of users' SSH public keys.
tests/fuzz/fuzz_sshkey: tests/fuzz/fuzz_sshkey.c workers/auth/sshkey.c \
	workers/auth/sshkey.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -Iworkers/auth \
		-fsanitize=unsigned-integer-overflow -o $@ $(filter %.c,$^) \
		$(PC_LIBS) -lcrypto

# The SSH certificate exchange: the auth worker's reader of the key a
# login sends, msh's of the certificate line the proxy answers with.
tests/fuzz/fuzz_sshcert: tests/fuzz/fuzz_sshcert.c workers/auth/sshcert.c \
	workers/auth/sshkey.c msh/sshid.c common/sshwire.c common/log.c \
	workers/auth/sshcert.h workers/auth/sshkey.h common/sshwire.h msh/msh.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -Iworkers/auth \
		-fsanitize=unsigned-integer-overflow -o $@ $(filter %.c,$^) \
		$(PC_LIBS) -lcrypto

# mezd's parser of an HTTP proxy's answer to CONNECT.
tests/fuzz/fuzz_connectresp: tests/fuzz/fuzz_connectresp.c \
	mezd/httpproxy.c msh/dial.c msh/known.c msh/home.c msh/tlsc.c \
	mezd/mezd.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -Imezd -Imsh \
		-fsanitize=unsigned-integer-overflow -o $@ $(filter %.c,$^) \
		$(PC_LIBS) -lssl -lcrypto

# msh's reader of its session file.
tests/fuzz/fuzz_session: tests/fuzz/fuzz_session.c msh/dial.c \
	msh/known.c msh/home.c msh/tlsc.c msh/msh.h msh/tlsc.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -Imsh \
		-fsanitize=unsigned-integer-overflow -o $@ $(filter %.c,$^) \
		$(PC_LIBS) -lssl -lcrypto

# What to install on Debian: building and make demo (deps), make check
# (deps-check, a superset of the others) and make bench (deps-bench).
# The targets that need them install them first and only then build, in
# a make of their own, so that pkg-config is asked once the libraries
# are there.
deps:
	@sh scripts/deps.sh build

deps-check:
	@sh scripts/deps.sh check

deps-bench:
	@sh scripts/deps.sh bench

check: deps-check
	$(MAKE) all $(UNIT_TESTS)
	$(MAKE) check-unit check-valgrind check-config check-man check-fuzz \
		check-grpc check-integration check-sanitize check-libtls \
		check-ktls check-bench

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t; done

check-config: master/mezited
	@sh tests/config/run.sh

# The gRPC layer alone: a real gRPC client, and a raw HTTP/2 one.
# GRPC_TESTD in the environment runs it against another build.
check-grpc: tests/grpc/grpc_testd
	cd tests/grpc && PYTHONDONTWRITEBYTECODE=1 \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider

# The same lint on every machine, whatever manual pages it has.
check-man:
	@sh scripts/check-man.sh $(MANS)

# The PROXY protocol header a balancer sends before the client's bytes.
tests/fuzz/fuzz_proxyproto: tests/fuzz/fuzz_proxyproto.c \
	master/proxyproto.c master/proxyproto.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -fsanitize=unsigned-integer-overflow \
		-o $@ $(filter %.c,$^)

# The server name of a ClientHello, read before OpenSSL reads it.
tests/fuzz/fuzz_sni: tests/fuzz/fuzz_sni.c master/sni.c master/sni.h
	$(FUZZ_CC) $(ALL_FUZZ_CFLAGS) -fsanitize=unsigned-integer-overflow \
		-o $@ $(filter %.c,$^)

# A short smoke run of each target (FUZZ_TIME seconds); the whole log
# only when one fails.
# -print_funcs=0: naming a newly covered function starts the sanitizers'
# symbolizer, whose pipe the targets' descriptor checks would take for a
# leak.
check-fuzz: $(FUZZ_TARGETS)
	@set -e; for t in $(FUZZ_TARGETS); do \
		n=$${t##*/}; mkdir -p tests/fuzz/corpus/$$n; \
		if ./$$t -max_total_time=$(FUZZ_TIME) -print_funcs=0 \
		    tests/fuzz/corpus/$$n \
		    tests/fuzz/seeds/$$n > tests/fuzz/corpus/$$n.log 2>&1; \
		then echo "fuzz: $$n: $$(grep -E '^Done' \
		    tests/fuzz/corpus/$$n.log)"; \
		else cat tests/fuzz/corpus/$$n.log; exit 1; fi; \
	done

# Each target for FUZZ_LONG seconds; what they find stays in the corpus.
fuzz: $(FUZZ_TARGETS)
	@$(MAKE) -s check-fuzz FUZZ_TIME=$(FUZZ_LONG)

# The unit suites in one process each, under valgrind (VALGRIND_TESTS:
# all); a failing one's output is shown as it was.
VALGRIND_TESTS ?=	$(UNIT_TESTS)
check-valgrind: $(VALGRIND_TESTS)
	@set -e; out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	for t in $(VALGRIND_TESTS); do \
		CK_FORK=no MEZITE_VALGRIND=1 valgrind -q --error-exitcode=1 \
		    --leak-check=full --errors-for-leak-kinds=definite \
		    ./$$t > "$$out" 2>&1 || { cat "$$out"; \
		    echo "valgrind: $$t failed"; exit 1; }; \
		echo "valgrind: $$t clean"; \
	done

# Boot Debian's kernel under qemu and run the kTLS tests inside it.
check-ktls: tests/ktls/ktls_echo $(PROGS)
	@sh scripts/vm-run.sh \
	    'tests/ktls/ktls_echo && tests/ktls/ktls_echo keyupdate && \
	    tests/ktls/ktls_echo tickets && \
	    cd tests/ktls && PYTHONDONTWRITEBYTECODE=1 \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider'

# The integration suite against an ASan+UBSan build, and against a build
# of the master on libtls (LIBTLS_TESTS).  VARIANT_TESTS=files runs only
# those.  The sanitizer build runs check-unit, check-config and check-grpc
# too, unless VARIANT_UNIT=no.
check-sanitize:
	@VARIANT_TESTS="$(VARIANT_TESTS)" VARIANT_UNIT="$(VARIANT_UNIT)" \
	    sh scripts/check-variant.sh sanitize

check-libtls:
	@VARIANT_TESTS="$(or $(VARIANT_TESTS),$(LIBTLS_TESTS))" \
	    sh scripts/check-variant.sh libtls

check-integration: $(PROGS)
	cd tests/integration && /usr/bin/python3 -m pytest -q -x \
	    $(INTEGRATION_MARK) $(INTEGRATION_TESTS)

demo: deps
	$(MAKE) all
	@sh scripts/demo.sh

# Side-by-side benchmarks against HAProxy and h2o; not part of check.
bench: deps-bench
	$(MAKE) all
	@sh tests/bench/run.sh

# The whole bench with small loads, the kTLS part in its VM included:
# that it runs, measures everything, judges every target and leaves
# nothing behind.  Its figures are not judged.
check-bench: $(PROGS)
	@out=$$(mktemp -d /tmp/mezite-check-bench.XXXXXX) && \
	BENCH_QUICK=1 BENCH_OUT=$$out/out.txt sh tests/bench/run.sh \
	    > $$out/log 2>&1 && \
	/usr/bin/python3 tests/bench/check.py $$out/out.txt; \
	rc=$$?; [ $$rc -eq 0 ] || cat $$out/log; rm -rf $$out; exit $$rc

# make demo and make check, each the first thing run in a fresh Debian 12
# root made for the purpose, in a clone of this tree's HEAD (as root;
# about 20 minutes).  Not part of check, which it runs, nor of .ci/run: it
# is run before a change to the packages or the build is merged.
check-fresh: deps-check
	@sh scripts/check-fresh.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/mezite
	install -m 0555 $(SBIN_PROGS) $(DESTDIR)$(SBINDIR)
	install -m 0555 $(BIN_PROGS) $(DESTDIR)$(BINDIR)
	install -m 0444 man/msh.1 $(DESTDIR)$(MANDIR)/man1
	install -m 0444 man/mezited.conf.5 $(DESTDIR)$(MANDIR)/man5
	install -m 0444 man/mezited.8 man/mezctl.8 man/mezd.8 \
		$(DESTDIR)$(MANDIR)/man8
	test -e $(DESTDIR)$(SYSCONFDIR)/mezite/mezited.conf || \
		install -m 0644 etc/mezited.conf $(DESTDIR)$(SYSCONFDIR)/mezite
	test -e $(DESTDIR)$(SYSCONFDIR)/mezd.conf || \
		install -m 0644 etc/mezd.conf $(DESTDIR)$(SYSCONFDIR)

clean:
	rm -f $(PROGS) $(UNIT_TESTS) $(FUZZ_TARGETS) master/parse.c \
		tests/ktls/ktls_echo tests/grpc/grpc_testd \
		tests/grpc/*.pb-c.[ch] \
		$(PROTO_C) $(PROTO_H) $(AUTH_PROTO_C) $(AUTH_PROTO_H) \
		$(TUNNEL_PROTO_C) $(TUNNEL_PROTO_H) \
		*/*.o */*/*.o
	rm -rf tests/fuzz/corpus
