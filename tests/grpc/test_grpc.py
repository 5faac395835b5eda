"""
The auth worker's gRPC layer (workers/auth/grpc.c) alone, served by
tests/grpc/grpc_testd on plaintext HTTP/2, spoken to by a real gRPC
client (grpcio) and by a raw HTTP/2 client (h2raw.py) for what grpcio
never sends.

GRPC_TESTD in the environment names another build of the server (e.g.
SANITIZE=1), GRPC_TESTD_WRAPPER a command to run it under (valgrind).
Any report of AddressSanitizer, UBSan or valgrind in its log fails the
test that stops it.  RSS is judged only for a build on the system's
allocator, run alone: AddressSanitizer's keeps freed memory in
quarantine, and valgrind's RSS is its own.
"""

import importlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest

from h2raw import (CANCEL, CONTINUATION, DATA, END_HEADERS, END_STREAM, H2,
                   HEADERS, NO_ERROR, PING, PROTOCOL_ERROR, REFUSED_STREAM,
                   SETTINGS_INITIAL_WINDOW_SIZE,
                   SETTINGS_MAX_CONCURRENT_STREAMS,
                   SETTINGS_MAX_HEADER_LIST_SIZE, data_frames, frame,
                   grpc_message, header_block, request_headers, rst_stream,
                   settings, window_update)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
TESTD = os.environ.get("GRPC_TESTD", os.path.join(HERE, "grpc_testd"))
WRAPPER = shlex.split(os.environ.get("GRPC_TESTD_WRAPPER", ""))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "Invalid read", "Invalid write",
                   "uninitialised", "definitely lost", "indirectly lost")

CHECK = "/grpc.health.v1.Health/Check"
ECHO = "/mezite.test.Test/Echo"

MAX_STREAMS = 100               # grpc_testd's default
MAX_MESSAGE = 64 * 1024         # grpc_testd's default

# How much a flood may add to a fresh server's RSS: some four times
# what was measured (10,000 streams: 100-164 KiB; a client that never
# reads: 420-470 KiB), for the allocator's whims.
FLOOD_RSS_BOUND_KB = 1024
STALLED_RSS_BOUND_KB = 2048


def _asan_build():
    r = subprocess.run(["ldd", TESTD], capture_output=True, text=True,
                       timeout=30)
    return "libasan" in r.stdout


ASAN_BUILD = _asan_build()
MEASURE_RSS = not ASAN_BUILD and not WRAPPER
SLOW = 10 if WRAPPER else 1     # valgrind runs it some 10 times slower


# --------------------------------------------------------------------------
# The server

class Server:
    def __init__(self, tmp_path, *args):
        self.log_path = os.path.join(str(tmp_path), "grpc_testd-%d.log" %
                                     time.monotonic_ns())
        self.log = open(self.log_path, "wb")
        verbose = ["-v"] if os.environ.get("GRPC_TESTD_VERBOSE") else []
        self.proc = subprocess.Popen(WRAPPER + [TESTD] + verbose +
                                     list(args), stdout=subprocess.PIPE,
                                     stderr=self.log)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("port "):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("grpc_testd did not start: %r\n%s" %
                                 (line, self.log_text()))
        self.port = int(line.split()[1])
        self.pid = self.proc.pid
        self.channels = []
        time.sleep(0.1 * SLOW)
        self.idle_fds = self.fds()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def wait_idle(self, timeout=10):
        """Every session the tests opened has been closed."""
        self.close_channels()
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.fds() <= self.idle_fds:
                return
            time.sleep(0.05)
        raise AssertionError("grpc_testd holds %d descriptors, %d idle" %
                             (self.fds(), self.idle_fds))

    def channel(self):
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        self.channels.append(ch)
        return ch

    def close_channels(self):
        for ch in self.channels:
            ch.close()
        self.channels = []

    def stop(self):
        """Drain (SIGTERM): the server must exit by itself, cleanly."""
        self.close_channels()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("grpc_testd did not drain:\n" +
                                     self.log_text())
        self.proc.stdout.close()
        self.log.close()
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text
        assert self.proc.returncode == 0, \
            "grpc_testd exited with %d:\n%s" % (self.proc.returncode, text)


class RssSampler:
    """The peak of a process's RSS while the block runs."""

    def __init__(self, testd):
        self.testd = testd
        self.idle = testd.rss_kb()
        self.peak = self.idle
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.testd.rss_kb())
            except (OSError, AssertionError):
                return
            time.sleep(0.005)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.testd.rss_kb())

    @property
    def grew(self):
        return self.peak - self.idle


@pytest.fixture(autouse=True)
def close_raw():
    """The raw connections of a test end with it, passed or not."""
    yield
    H2.close_all()


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Message classes, generated by protoc for this run."""
    out = tmp_path_factory.mktemp("pb")
    subprocess.run(["protoc", "-I", os.path.join(TOP, "proto"), "-I", HERE,
                    "--python_out", str(out), "health.proto", "test.proto"],
                   check=True)
    sys.path.insert(0, str(out))

    class PB:
        health = importlib.import_module("health_pb2")
        test = importlib.import_module("test_pb2")
    return PB


@pytest.fixture(scope="module")
def testd(tmp_path_factory):
    d = Server(tmp_path_factory.mktemp("testd"))
    yield d
    d.close_channels()
    if d.alive():
        d.wait_idle()
    d.stop()


@pytest.fixture
def make_testd(tmp_path):
    """A server of its own, with grpc_testd's arguments."""
    made = []

    def make(*args):
        d = Server(tmp_path, *args)
        made.append(d)
        return d
    yield make
    H2.close_all()
    for d in made:
        d.stop()


@pytest.fixture
def check(testd, pb):
    return testd.channel().unary_unary(
        CHECK, request_serializer=pb.health.HealthCheckRequest.
        SerializeToString, response_deserializer=pb.health.
        HealthCheckResponse.FromString)


def echo_stub(d, pb):
    return d.channel().unary_unary(
        ECHO, request_serializer=pb.test.EchoRequest.SerializeToString,
        response_deserializer=pb.test.EchoReply.FromString)


@pytest.fixture
def echo(testd, pb):
    return echo_stub(testd, pb)


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, timeout=10 * SLOW, **kw)
    return e.value.code(), e.value.details()


def served(d, pb):
    """A health check on a new connection answers SERVING."""
    ch = grpc.insecure_channel("127.0.0.1:%d" % d.port)
    try:
        stub = ch.unary_unary(
            CHECK, request_serializer=pb.health.HealthCheckRequest.
            SerializeToString, response_deserializer=pb.health.
            HealthCheckResponse.FromString)
        r = stub(pb.health.HealthCheckRequest(), timeout=10 * SLOW)
        return r.status == pb.health.HealthCheckResponse.SERVING
    finally:
        ch.close()


def status_of(s):
    """(HTTP status, grpc-status, grpc-message) of a Trailers-Only
    answer, or of a reply's trailers."""
    first, last = s.first(), s.last()
    return first.get(":status"), last.get("grpc-status"), \
        last.get("grpc-message")


def synced(h):
    """Everything sent so far on h has been read by the server: a PING
    comes back after it."""
    h.send(frame(PING, 0, 0, b"syncsync"))
    n = h.counts.get(PING, 0)
    assert h.pump(lambda: h.counts.get(PING, 0) > n), "no PING ACK"


# --------------------------------------------------------------------------
# A real client

def test_health_serving(check, pb):
    for name in ("", "mezite.auth.v1.Auth"):
        r = check(pb.health.HealthCheckRequest(service=name),
                  timeout=10 * SLOW)
        assert r.status == pb.health.HealthCheckResponse.SERVING


def test_health_unknown_service_is_not_found(check, pb):
    code, details = rpc_error(check, pb.health.HealthCheckRequest(
        service="no.such.Service"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "no.such.Service" in details


def test_unknown_method_is_unimplemented(testd):
    ch = testd.channel()
    for path in ("/grpc.health.v1.Health/Watch", "/no.Such/Method"):
        code, details = rpc_error(ch.unary_unary(path), b"")
        assert code == grpc.StatusCode.UNIMPLEMENTED
        assert path in details


def test_echo_sees_the_session(echo, pb):
    r = echo(pb.test.EchoRequest(data=b"hello"), timeout=10 * SLOW)
    assert r.data == b"hello"
    assert r.method == ECHO
    assert r.client.startswith("127.0.0.1:")
    assert r.session > 0


def test_handler_status_and_message(echo, pb):
    msg = "n\u00f6 100% \"sure\"\nsecond line"
    code, details = rpc_error(echo, pb.test.EchoRequest(status=7,
                                                        message=msg))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == msg


def test_handler_without_answer_is_unknown(echo, pb):
    code, _ = rpc_error(echo, pb.test.EchoRequest(no_answer=True))
    assert code == grpc.StatusCode.UNKNOWN


def test_handler_answering_twice_keeps_the_first(echo, pb):
    r = echo(pb.test.EchoRequest(data=b"once", twice=True),
             timeout=10 * SLOW)
    assert r.data == b"once"


def test_large_reply(echo, pb):
    """3 MB back (grpcio takes 4 at most): the reply waits on the
    client's flow control."""
    r = echo(pb.test.EchoRequest(reply_size=3 << 20), timeout=30 * SLOW)
    assert len(r.data) == 3 << 20


def test_message_at_and_over_the_limit(echo, pb):
    def sized(n):
        req = pb.test.EchoRequest(data=b"x" * (n - 4))
        assert req.ByteSize() == n
        return req
    r = echo(sized(MAX_MESSAGE), timeout=10 * SLOW)
    assert len(r.data) == MAX_MESSAGE - 4
    code, details = rpc_error(echo, sized(MAX_MESSAGE + 1))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_MESSAGE + 1) in details


def test_many_calls_on_one_connection(testd, echo, pb):
    """300 at once over one channel, 100 streams at most on it."""
    results = []

    def one(i):
        r = echo(pb.test.EchoRequest(data=b"%d" % i), timeout=30 * SLOW)
        results.append((i, r.data, r.session))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for i, _, _ in results) == list(range(300))
    assert all(d == b"%d" % i for i, d, _ in results)
    assert len({s for _, _, s in results}) == 1


def test_active_connection_outlives_idle_timeout(make_testd, pb):
    d = make_testd("-i", "1")
    echo = echo_stub(d, pb)
    sessions = set()
    end = time.monotonic() + 3
    while time.monotonic() < end:
        sessions.add(echo(pb.test.EchoRequest(), timeout=10 * SLOW).session)
        time.sleep(0.3)
    assert len(sessions) == 1


# --------------------------------------------------------------------------
# A raw client: what grpcio never sends

def test_raw_call(testd):
    h = H2(testd.port)
    s = h.wait(h.call(CHECK, grpc_message(b"")))
    assert s.first()[":status"] == "200"
    assert s.first()["content-type"] == "application/grpc"
    assert "grpc-status" not in s.first()
    assert len(s.headers) == 2 and s.last() == {"grpc-status": "0"}
    assert s.data == grpc_message(b"\x08\x01")         # SERVING
    assert s.ended_by == HEADERS        # the trailers, not the DATA
    h.close()


def test_raw_4gb_prefix(testd):
    """A prefix of 4 GB is refused as soon as it is read, with nothing
    held: the call gets RESOURCE_EXHAUSTED while the client has not
    ended its stream, then RST_STREAM NO_ERROR; the connection goes on."""
    h = H2(testd.port)
    rss = testd.rss_kb()
    sid = h.call(CHECK, grpc_message(b"", length=0xffffffff),
                 end_stream=False)
    s = h.wait(sid)
    assert status_of(s)[:2] == ("200", "8")
    assert "4294967295" in s.first()["grpc-message"]
    # Trailers-Only: one HEADERS, with END_STREAM.
    assert len(s.headers) == 1 and s.ended_by == HEADERS and not s.data
    assert s.first()["content-type"] == "application/grpc"
    assert h.pump(lambda: s.rst is not None)
    assert s.rst == NO_ERROR
    # The rest of the stream is dropped unread.
    h.send(frame(DATA, 0, sid, b"x" * 1000))
    s2 = h.wait(h.call(CHECK, grpc_message(b"")))
    assert status_of(s2) == ("200", "0", None)
    if MEASURE_RSS:
        assert testd.rss_kb() - rss < 1024
    h.close()


@pytest.mark.parametrize("encoding,code", [(None, "13"), ("gzip", "12"),
                                           ("identity", "13")])
def test_raw_compressed_flag(testd, encoding, code):
    h = H2(testd.port)
    extra = [("grpc-encoding", encoding)] if encoding else []
    s = h.wait(h.call(CHECK, grpc_message(b"\x1f\x8b", flag=1),
                      extra=extra))
    assert status_of(s)[:2] == ("200", code)
    if code == "12":
        assert s.first()["grpc-message"] == "compression not supported"
        assert s.first()["grpc-accept-encoding"] == "identity"
    h.close()


def test_raw_bad_compressed_flag(testd):
    h = H2(testd.port)
    s = h.wait(h.call(CHECK, grpc_message(b"", flag=2)))
    assert status_of(s)[:2] == ("200", "13")
    h.close()


def test_raw_two_messages(testd):
    """Request cardinality: UNIMPLEMENTED (gRPC's statuscodes.md), said
    at the first byte after the first message, whole or in pieces."""
    h = H2(testd.port)
    s = h.wait(h.call(CHECK, grpc_message(b"") + grpc_message(b"")))
    assert status_of(s)[:2] == ("200", "12")
    sid = h.call(CHECK, grpc_message(b""), end_stream=False)
    h.send(frame(DATA, 0, sid, b"\x00"))
    s = h.wait(sid)
    assert status_of(s)[:2] == ("200", "12")
    h.close()


def test_raw_no_message(testd):
    h = H2(testd.port)
    sid, f = h.open(request_headers(CHECK), end_stream=True)
    h.send(f)
    s = h.wait(sid)
    assert status_of(s)[:2] == ("200", "12")
    s = h.wait(h.call(CHECK, b""))
    assert status_of(s)[:2] == ("200", "12")
    h.close()


def test_raw_truncated_message(testd):
    h = H2(testd.port)
    for body in (b"\x00\x00", grpc_message(b"abcdefgh")[:-3]):
        s = h.wait(h.call(CHECK, body))
        assert status_of(s)[:2] == ("200", "13")
    h.close()


def test_raw_message_split_everywhere(testd, pb):
    """One message in DATA frames of one byte each."""
    h = H2(testd.port)
    body = grpc_message(pb.health.HealthCheckRequest(
        service="mezite.auth.v1.Auth").SerializeToString())
    sid, f = h.open(request_headers(CHECK))
    h.send(f + b"".join(frame(DATA, 0, sid, body[i:i + 1])
                        for i in range(len(body))) +
           frame(DATA, END_STREAM, sid))
    s = h.wait(sid)
    assert status_of(s) == ("200", "0", None)
    assert s.data == grpc_message(b"\x08\x01")
    h.close()


def test_raw_bad_protobuf_is_invalid_argument(testd):
    h = H2(testd.port)
    s = h.wait(h.call(CHECK, grpc_message(b"\xff\xff\xff")))
    assert status_of(s)[:2] == ("200", "3")
    h.close()


@pytest.mark.parametrize("ctype", ["text/plain", None,
                                   "application/grpc+json",
                                   "application/grpcx"])
def test_raw_wrong_content_type_is_415(testd, ctype):
    h = H2(testd.port)
    s = h.wait(h.call(CHECK, grpc_message(b""), content_type=ctype))
    assert s.first()[":status"] == "415"
    assert "grpc-status" not in s.first() and s.ended
    h.close()


def test_raw_grpc_proto_content_type(testd):
    h = H2(testd.port)
    s = h.wait(h.call(CHECK, grpc_message(b""),
                      content_type="application/grpc+proto"))
    assert status_of(s) == ("200", "0", None)
    h.close()


def test_raw_get_is_405(testd):
    h = H2(testd.port)
    sid, f = h.open(request_headers(CHECK, method="GET"), end_stream=True)
    h.send(f)
    s = h.wait(sid)
    assert s.first()[":status"] == "405"
    assert s.first()["allow"] == "POST"
    h.close()


def test_raw_unknown_path_is_percent_encoded(testd):
    h = H2(testd.port)
    s = h.wait(h.call("/no.Such/M%ethod", grpc_message(b"")))
    assert status_of(s) == ("200", "12", "unknown method /no.Such/M%25ethod")
    long_path = "/" + "a" * 1000
    s = h.wait(h.call(long_path, grpc_message(b"")))
    st = status_of(s)
    assert st[1] == "12" and st[2].endswith("...")
    h.close()


def test_raw_header_list_over_the_limit(testd):
    h = H2(testd.port)
    h.pump(lambda: h.server_settings is not None)
    assert h.server_settings[SETTINGS_MAX_HEADER_LIST_SIZE] == 16384
    assert h.server_settings[SETTINGS_MAX_CONCURRENT_STREAMS] == MAX_STREAMS
    block = header_block(request_headers(
        CHECK, extra=[("x-big-%d" % i, "v" * 4000) for i in range(5)]))
    sid = h.new_id()
    h.send(frame(HEADERS, 0, sid, block[:10000]) +
           frame(CONTINUATION, END_HEADERS, sid, block[10000:]) +
           frame(DATA, END_STREAM, sid, grpc_message(b"")))
    s = h.wait(sid)
    assert status_of(s)[:2] == ("200", "8")
    s = h.wait(h.call(CHECK, grpc_message(b"")))
    assert status_of(s)[1] == "0"
    h.close()


def test_raw_invalid_header_value_is_not_logged(make_testd):
    """nghttp2 names an invalid field's value when it refuses it (a
    trailing space here); the log, even verbose, does not."""
    d = make_testd("-v")
    h = H2(d.port)
    s = h.wait(h.call(CHECK, grpc_message(b""), extra=[
        ("authorization", "Bearer s3cr3t-t0ken ")]))
    assert s.rst is not None
    s = h.wait(h.call(CHECK, grpc_message(b"\x0a\x08p4ssw0rd")))
    assert status_of(s)[1] == "5"
    h.close()
    d.wait_idle()
    text = d.log_text()
    assert "Invalid HTTP header field" in text
    assert "s3cr3t" not in text and "p4ssw0rd" not in text


def test_raw_client_resets_do_not_leak(testd):
    """Streams reset at every stage of a call."""
    h = H2(testd.port)
    for stage in range(4):
        sid, f = h.open(request_headers(ECHO))
        data = [b"", grpc_message(b"")[:3], grpc_message(b"\x0a\x01x"),
                grpc_message(b"")][stage]
        h.send(f + (frame(DATA, END_STREAM if stage == 3 else 0, sid, data)
                    if data else b"") + rst_stream(sid))
    synced(h)
    s = h.wait(h.call(CHECK, grpc_message(b"")))
    assert status_of(s)[1] == "0"
    h.close()
    testd.wait_idle()


def test_raw_client_ends_its_side(testd):
    """A client that ends its side of the connection (in relay mode: its
    close_notify) right after its calls still gets their answers; a call
    it had not finished is dropped; then the session closes."""
    h = H2(testd.port)
    s1 = h.call(CHECK, grpc_message(b""))
    s2 = h.call(ECHO, grpc_message(b"\x0a\x05hello"))
    h.call(ECHO, grpc_message(b"\x0a\x05hello")[:4], end_stream=False)
    h.sock.shutdown(socket.SHUT_WR)
    assert h.wait_eof(timeout=10 * SLOW)
    assert status_of(h.stream(s1)) == ("200", "0", None)
    assert status_of(h.stream(s2)) == ("200", "0", None)
    testd.wait_idle()


def test_raw_protocol_error(testd, pb):
    """A connection error (DATA on stream 0): GOAWAY PROTOCOL_ERROR,
    then the session closes; the server goes on."""
    h = H2(testd.port)
    h.send(frame(DATA, 0, 0, b"x"))
    assert h.wait_eof(timeout=10 * SLOW)
    assert h.goaways and h.goaways[-1][1] == PROTOCOL_ERROR
    assert served(testd, pb)
    testd.wait_idle()


def test_raw_not_http2(testd, pb):
    """HTTP/1.1 where the preface should be: the session is closed."""
    sock = socket.create_connection(("127.0.0.1", testd.port), timeout=10)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(10 * SLOW)
    while sock.recv(4096):
        pass
    sock.close()
    assert served(testd, pb)
    testd.wait_idle()


def test_global_request_memory(make_testd, pb):
    """-M 64 KiB of request memory for all connections, 32 KiB a
    message: two half-sent messages of 32 KiB take it all, and a third
    call is refused before any of it is held; a reset and a completed
    call give theirs back.  (Messages that fit the client's first flow
    control window: the raw client sends without waiting for more.)"""
    d = make_testd("-m", "32768", "-M", "65536")
    big = pb.test.EchoRequest(data=b"x" * (32768 - 4)).SerializeToString()
    assert len(big) == 32768
    a, b, c = (H2(d.port, client_settings=[(SETTINGS_INITIAL_WINDOW_SIZE,
                                            1 << 20)]) for _ in range(3))
    for h in (a, b, c):
        h.send(window_update(0, 1 << 20))
    sa = a.call(ECHO, grpc_message(big)[:1000], end_stream=False)
    sb = b.call(ECHO, grpc_message(big)[:1000], end_stream=False)
    synced(a)
    synced(b)
    s = c.wait(c.call(ECHO, grpc_message(b"\x0a\x01x")))
    assert status_of(s)[:2] == ("200", "8")
    assert s.first()["grpc-message"] == "server out of request memory"
    # A message of 0 bytes holds nothing.
    s = c.wait(c.call(ECHO, grpc_message(b"")))
    assert status_of(s)[1] == "0"

    a.send(rst_stream(sa))
    synced(a)
    s = c.wait(c.call(ECHO, grpc_message(b"\x0a\x01x")))
    assert status_of(s)[1] == "0"

    b.send(data_frames(sb, grpc_message(big)[1000:]))
    s = b.wait(sb)
    assert status_of(s)[1] == "0"
    reply = pb.test.EchoReply.FromString(s.data[5:])
    assert reply.data == b"x" * (32768 - 4)
    s = c.wait(c.call(ECHO, grpc_message(big)))
    assert status_of(s)[1] == "0"


def test_replies_held_by_flow_control(testd, pb):
    """A client that reads but gives no flow control credit: the replies
    it cannot take stop at GRPC_REPLIES_MAX (256 KiB) and one more; the
    calls after them get RESOURCE_EXHAUSTED without running; once the
    client opens its window, all that was held arrives, and calls run
    again."""
    h = H2(testd.port, client_settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 0)])
    h.pump(lambda: h.server_settings is not None)
    body = grpc_message(pb.test.EchoRequest(
        reply_size=16384).SerializeToString())
    sids = [h.call(ECHO, body) for _ in range(24)]
    # (A PING's ACK would overtake the answers: nghttp2 sends it first.)
    h.pump(lambda: sum(h.stream(sid).done for sid in sids) >= 8)
    h.pump(timeout=0.5)
    refused = [sid for sid in sids if h.stream(sid).done]
    held = [sid for sid in sids if not h.stream(sid).done]
    for sid in refused:
        st = status_of(h.stream(sid))
        assert st[:2] == ("200", "8") and "flow control" in st[2]
    # 256 KiB of 16 KiB replies, and one more.
    assert len(held) == 16
    assert all(h.stream(sid).first()[":status"] == "200" for sid in held)
    h.send(settings((SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)) +
           window_update(0, 1 << 24))
    for sid in held:
        s = h.wait(sid)
        assert status_of(s) == ("200", "0", None)
        assert len(pb.test.EchoReply.FromString(s.data[5:]).data) == 16384
    s = h.wait(h.call(ECHO, body))
    assert status_of(s)[1] == "0"
    h.close()


# --------------------------------------------------------------------------
# Floods

def _send_in_thread(h, chunks):
    """Send from a thread, so that the test reads while the server
    answers; errors (the server closing on us) end the sending."""
    state = {"error": None, "sent": 0}

    def run():
        try:
            for c in chunks:
                h.send(c)
                state["sent"] += 1
        except OSError as e:
            state["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, state


def test_flood_10000_streams_before_settings_ack(make_testd, pb):
    """10,000 HEADERS opening streams, sent with the preface, before the
    client has seen (or will ever acknowledge) our SETTINGS: nghttp2
    refuses all but max_streams of them with REFUSED_STREAM, from our
    SETTINGS on; the RSS of a fresh server stays bounded; calls go on."""
    testd = make_testd()
    h = H2(testd.port, ack_settings=False)
    n = 10000
    frames, ids = [], []
    for _ in range(n):
        sid, f = h.open(request_headers(ECHO))
        frames.append(f)
        ids.append(sid)
    sampler = RssSampler(testd)
    with sampler:
        t, state = _send_in_thread(h, [b"".join(frames[i:i + 500])
                                       for i in range(0, n, 500)])
        time.sleep(0.5)         # not read: the refusals queue up
        refused = lambda: sum(1 for s in h.streams.values()
                              if s.rst == REFUSED_STREAM)
        h.pump(lambda: refused() >= n - MAX_STREAMS, timeout=60 * SLOW)
        t.join(30)
    assert state["error"] is None
    assert refused() == n - MAX_STREAMS
    open_ids = [sid for sid in ids if h.stream(sid).rst is None]
    assert open_ids == list(range(1, 2 * MAX_STREAMS, 2))
    print("10,000 streams: RSS %d KiB idle, peak +%d KiB" %
          (sampler.idle, sampler.grew))
    if MEASURE_RSS:
        assert sampler.grew < FLOOD_RSS_BOUND_KB
    assert served(testd, pb)
    # The streams it holds open still work.
    sid = open_ids[0]
    h.send(frame(DATA, END_STREAM, sid, grpc_message(b"\x0a\x02ok")))
    s = h.wait(sid)
    assert status_of(s)[1] == "0"
    h.close()
    testd.wait_idle()


def test_client_that_never_reads(make_testd, pb):
    """A client that opens every window, sends call after call for 16 KiB
    replies and never reads: once the socket takes no more, the server
    stops reading it too, and the memory of a fresh server stays
    bounded."""
    testd = make_testd()
    h = H2(testd.port, client_settings=[(SETTINGS_INITIAL_WINDOW_SIZE,
                                         (1 << 31) - 1)], rcvbuf=4096)
    h.send(window_update(0, (1 << 31) - 1 - 65535))
    body = grpc_message(pb.test.EchoRequest(
        reply_size=16384).SerializeToString())
    sampler = RssSampler(testd)
    sent = 0
    with sampler:
        h.sock.settimeout(2)
        try:
            while sent < 100000:
                sid, f = h.open(request_headers(ECHO))
                h.sock.sendall(f + frame(DATA, END_STREAM, sid, body))
                sent += 1
        except (TimeoutError, OSError):
            pass
    print("never reading: %d calls sent, RSS %d KiB idle, peak +%d KiB" %
          (sent, sampler.idle, sampler.grew))
    assert sent < 100000, "the server read everything"
    if MEASURE_RSS:
        assert sampler.grew < STALLED_RSS_BOUND_KB
    assert served(testd, pb)
    h.close()
    testd.wait_idle()


def test_rapid_reset(testd, pb):
    """HEADERS and RST_STREAM, 10,000 times (CVE-2023-44487): nghttp2's
    rate limit sends GOAWAY and the session ends; the server serves."""
    h = H2(testd.port)
    n = 10000
    chunks = []
    for i in range(0, n, 250):
        c = []
        for _ in range(250):
            sid, f = h.open(request_headers(ECHO))
            c.append(f + rst_stream(sid, CANCEL))
        chunks.append(b"".join(c))
    t, state = _send_in_thread(h, chunks)
    assert h.wait_eof(timeout=30 * SLOW)
    t.join(30)
    assert h.goaways, "no GOAWAY"
    print("rapid reset: GOAWAY %r after %d of %d bursts" %
          (h.goaways, state["sent"], len(chunks)))
    assert served(testd, pb)
    h.close()
    testd.wait_idle()


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_ack_flood(testd, pb, kind):
    """PINGs or SETTINGS, each asking for an ACK, never read: nghttp2
    counts the ACKs queued and the session is closed."""
    h = H2(testd.port)
    f = frame(PING, 0, 0, b"12345678") if kind == "ping" else settings()
    t, state = _send_in_thread(h, [f * 1000] * 20)
    t.join(30)
    assert h.wait_eof(timeout=30 * SLOW)
    assert served(testd, pb)
    h.close()
    testd.wait_idle()


# --------------------------------------------------------------------------
# Time

def test_idle_connection_is_closed(make_testd):
    d = make_testd("-i", "1")
    h = H2(d.port)
    start = time.monotonic()
    assert h.wait_eof(timeout=10 * SLOW)
    assert time.monotonic() - start >= 0.9
    assert h.goaways and h.goaways[-1][1] == NO_ERROR
    h.close()
    d.wait_idle()


def test_stalled_stream_is_closed(make_testd):
    """A stream that moves no byte for the idle timeout."""
    d = make_testd("-i", "1")
    h = H2(d.port)
    h.call(ECHO, grpc_message(b"abc")[:4], end_stream=False)
    assert h.wait_eof(timeout=10 * SLOW)
    assert h.goaways
    h.close()
    d.wait_idle()


def test_drain(make_testd, pb):
    """SIGTERM: a shutdown notice, GOAWAY naming the last stream a second
    later, the open call still answered, then close and exit."""
    d = make_testd()
    h = H2(d.port)
    body = grpc_message(pb.test.EchoRequest(data=b"late").
                        SerializeToString())
    sid = h.call(ECHO, body[:3], end_stream=False)
    synced(h)
    d.proc.send_signal(signal.SIGTERM)
    assert h.pump(lambda: len(h.goaways) >= 2, timeout=10 * SLOW)
    assert h.goaways[0][0] == (1 << 31) - 1
    assert h.goaways[1][0] == sid
    h.send(frame(DATA, END_STREAM, sid, body[3:]))
    s = h.wait(sid)
    assert status_of(s)[1] == "0"
    assert pb.test.EchoReply.FromString(s.data[5:]).data == b"late"
    assert h.wait_eof(timeout=10 * SLOW)
    h.close()
    assert d.proc.wait(timeout=10 * SLOW) == 0
