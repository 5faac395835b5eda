"""
mezd, the agent: it joins a real mezited with a token from mezctl, then
keeps its tunnel to a fake proxy written here.  The fake is what the
tunnel worker is to mezd (proto/tunnel.proto): a TLS server with ALPN
mezite-tunnel that requires the host certificate mezd got, and the
HTTP/2 client on that connection (python3-h2): it asks for the hello
and opens CONNECT streams.

Run as root (mezd drops to "nobody"):
    cd tests/integration && /usr/bin/python3 -m pytest -q test_mezd_agent.py
"""

import base64
import datetime
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hyperframe.frame
import pytest

from authclient import pb as pb_modules
from conftest import free_port, run, wait_for
from tunnelkit import MEZD, TcpService

HELLO_PATH = "/mezite.tunnel.v1/hello"

def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)


NOBODY = 65534


# --------------------------------------------------------------------------
# the agent


class Mezd:
    """mezd -d -v with a configuration of its own, in a directory that
    "nobody" may read."""

    def __init__(self, workdir, ca, proxy_port, name="node-1",
                 token=None, services=(), labels=(), keepalive=None,
                 state=None, extra="", env=None):
        self.dir = workdir
        self.state = state or os.path.join(workdir, "state")
        self.conf = os.path.join(workdir, "mezd.conf")
        self.logfile = os.path.join(workdir, "mezd.log")
        lines = ['proxy "localhost:%d"' % proxy_port,
                 'ca "%s"' % ca,
                 'name "%s"' % name,
                 'state directory "%s"' % self.state,
                 'user nobody']
        if token:
            lines.append('token "%s"' % token)
        for k, v in labels:
            lines.append('label %s "%s"' % (k, v))
        for n, target in services:
            lines.append("service %s %s" % (n, target))
        if keepalive:
            lines.append("keepalive %d" % keepalive[0])
            lines.append("keepalive timeout %d" % keepalive[1])
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        os.chmod(self.conf, 0o600)
        self.env = {"PATH": "/usr/bin:/bin"}
        self.env.update(env or {})
        self.proc = None

    def start(self):
        r = run([MEZD, "-n", "-f", self.conf], check=False, env=self.env)
        assert r.returncode == 0, r.stderr
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen([MEZD, "-d", "-v", "-f", self.conf],
                                     stdout=self.log_fh,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env=self.env)
        return self

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log_fh.close()
        rc = self.proc.returncode
        self.proc = None
        return rc


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="mezd-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def joined(daemon, pki):
    """A state directory that a real Join filled: key.pem, cert.pem and
    the host CA (ca.pem); with the proxy's CA beside it."""
    d = tempfile.mkdtemp(prefix="mezd-join-")
    os.chmod(d, 0o755)
    ca = os.path.join(d, "proxy-ca.pem")
    shutil.copyfile(pki.ca, ca)
    os.chmod(ca, 0o644)
    r = daemon.mezctl("-j", "token", "create", "node", "node-1")
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    tok = json.loads(r.stdout)
    if isinstance(tok, list):
        tok = tok[0]
    m = Mezd(d, ca, daemon.port, token=tok["secret"],
             labels=[("env", "test")]).start()
    try:
        wait_for(lambda: os.path.exists(os.path.join(m.state, "cert.pem")),
                 30, interval=0.1, what="mezd to join")
        wait_for(lambda: "joined as node-1" in m.log(), 10,
                 what="mezd to say it joined")
    finally:
        m.stop()
    yield d, ca, os.path.join(d, "state"), m.log()
    shutil.rmtree(d, ignore_errors=True)


def agent(workdir, joined, proxy_port, **kw):
    """A mezd with a copy of the joined state, for the fake proxy."""
    _, ca, state, _ = joined
    mine = os.path.join(workdir, "state")
    shutil.copytree(state, mine)
    chown_tree(mine, NOBODY, NOBODY)
    shutil.copyfile(ca, os.path.join(workdir, "proxy-ca.pem"))
    os.chmod(os.path.join(workdir, "proxy-ca.pem"), 0o644)
    return Mezd(workdir, os.path.join(workdir, "proxy-ca.pem"), proxy_port,
                **kw)


# --------------------------------------------------------------------------
# the fake proxy: TLS server, HTTP/2 client


class Tunnel:
    def __init__(self, sock):
        self.sock = sock
        # h2 4.1 wants :path and :scheme in every request, CONNECT's
        # too (RFC 9113, 8.5, has neither): no checks of what we send.
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8",
                                        validate_outbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        self.h2.update_settings({
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        self.h2.increment_flow_control_window(8 << 20)
        self.data = {}
        self.ended = set()
        self.resets = {}
        self.responses = {}
        self.goaway = False
        self.closed = False
        self.inbuf = bytearray()
        self.ack = True         # acknowledge DATA as it comes
        self.flush()

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def pump(self, timeout=0.2):
        """Read what came within timeout; False once the peer closed."""
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            self.closed = True
            return False
        if not b:
            self.closed = True
            return False
        # h2 takes a GOAWAY for the end of the connection and sends no
        # more: mezd's is noted here, and h2 does not see it.
        self.inbuf.extend(b)
        keep = bytearray()
        while len(self.inbuf) >= 9:
            n = int.from_bytes(self.inbuf[0:3], "big") + 9
            if len(self.inbuf) < n:
                break
            frame, self.inbuf = self.inbuf[:n], self.inbuf[n:]
            if frame[3] == 0x7:
                self.goaway = True
            else:
                keep.extend(frame)
        for ev in self.h2.receive_data(bytes(keep)):
            if isinstance(ev, h2.events.ResponseReceived):
                self.responses[ev.stream_id] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self.data.setdefault(ev.stream_id, bytearray()).extend(
                    ev.data)
                if ev.flow_controlled_length and self.ack:
                    self.h2.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = True
        self.flush()
        return True

    def until(self, pred, timeout=10, what="the tunnel"):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)
            if not self.pump() and not pred():
                raise AssertionError("the tunnel closed waiting for " +
                                     what)

    def hello(self, name="node-1"):
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                   (":path", HELLO_PATH),
                                   (":authority", name)], end_stream=True)
        self.flush()
        self.until(lambda: sid in self.ended, what="the hello")
        assert self.responses[sid][":status"] == "200"
        assert self.responses[sid]["content-type"] == \
            "application/x-protobuf"
        h = pb_modules()["tunnel"].Hello()
        h.ParseFromString(bytes(self.data.get(sid, b"")))
        return h

    def connect(self, service):
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [(b":method", b"CONNECT"),
                                   (b":authority", service.encode())])
        self.flush()
        self.until(lambda: sid in self.responses or sid in self.resets,
                   what="the answer to CONNECT")
        return sid, self.responses.get(sid, {})

    def send(self, sid, data, end=False):
        """All of data, as the stream's window allows."""
        off = 0
        while off < len(data):
            win = min(self.h2.local_flow_control_window(sid),
                      self.h2.max_outbound_frame_size)
            if win <= 0:
                self.pump(0.05)
                continue
            chunk = data[off:off + win]
            self.h2.send_data(sid, chunk)
            off += len(chunk)
            self.flush()
            self.pump(0)
        if end:
            self.h2.end_stream(sid)
            self.flush()

    def send_goaway(self):
        """The proxy's GOAWAY, as the tunnel worker sends it when it
        stops: no stream of mezd's (push is off) to keep.  Written raw,
        as h2 takes its own GOAWAY for the end of the connection."""
        self.flush()
        f = hyperframe.frame.GoAwayFrame(0)
        f.last_stream_id = 0
        f.error_code = 0
        self.sock.sendall(f.serialize())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class FakeProxy:
    """Listens on 127.0.0.1 with the proxy's certificate and wants the
    host CA's client certificate; accept() returns a Tunnel."""

    def __init__(self, pki, host_ca):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.cert, pki.key)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(host_ca)
        self.ctx.set_alpn_protocols(["mezite-tunnel"])
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0

    def accept(self, timeout=15):
        self.lsock.settimeout(timeout)
        raw, _ = self.lsock.accept()
        raw.settimeout(10)
        s = self.ctx.wrap_socket(raw, server_side=True)
        assert s.selected_alpn_protocol() == "mezite-tunnel"
        pc = s.getpeercert()
        peer = dict(x[0] for x in pc["subject"])
        self.accepted += 1
        t = Tunnel(s)
        t.peer_cn = peer.get("commonName")
        t.peer_serial = int(pc["serialNumber"], 16)
        return t

    def close(self):
        self.lsock.close()


@pytest.fixture
def echo():
    """A TCP echo service's port: echoes until EOF, then half-closes."""
    svc = TcpService("echo")
    yield svc.port
    svc.close()


@pytest.fixture
def setup(workdir, joined, pki, echo):
    """(fake proxy, started agent factory)."""
    made = []
    host_ca = os.path.join(joined[2], "ca.pem")
    fake = FakeProxy(pki, host_ca)

    def start(**kw):
        kw.setdefault("services", [("echo", "127.0.0.1:%d" % echo),
                                   ("closed", "127.0.0.1:%d" % free_port())])
        kw.setdefault("labels", [("env", "test"), ("role", "db")])
        m = agent(workdir, joined, kw.pop("port", fake.port), **kw).start()
        made.append(m)
        return m
    yield fake, start
    for m in made:
        rc = m.stop()
        log = m.log()
        assert "fatal" not in log, log
        assert rc == 0, log
    fake.close()


# --------------------------------------------------------------------------


def test_join_then_hello_names_the_services_and_labels(joined, setup):
    d, ca, state, log = joined
    # the files of a real Join, the key for mezd's eyes only
    assert os.stat(os.path.join(state, "key.pem")).st_mode & 0o077 == 0
    r = run(["openssl", "verify", "-CAfile", os.path.join(state, "ca.pem"),
             "-purpose", "sslclient", os.path.join(state, "cert.pem")],
            check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    fake, start = setup
    start()
    t = fake.accept()
    assert t.peer_cn == "node-1"
    h = t.hello()
    assert h.node == "node-1"
    assert h.version == "0.1"
    assert [(lb.key, lb.value) for lb in h.labels] == [("env", "test"),
                                                       ("role", "db")]
    assert list(h.services) == ["echo", "closed"]
    t.close()


def test_connect_carries_megabytes_intact(setup):
    fake, start = setup
    start()
    t = fake.accept()
    t.hello()
    sid, hdrs = t.connect("echo")
    assert hdrs[":status"] == "200"
    size = 4 << 20
    data = os.urandom(size)
    t.send(sid, data, end=True)
    t.until(lambda: sid in t.ended, timeout=60, what="the echo's end")
    got = bytes(t.data[sid])
    assert len(got) == size
    assert hashlib.sha256(got).hexdigest() == \
        hashlib.sha256(data).hexdigest()
    t.close()


def test_connect_to_an_unknown_or_closed_service_is_refused(setup):
    fake, start = setup
    start()
    t = fake.accept()
    t.hello()
    sid, hdrs = t.connect("nosuch")
    assert hdrs[":status"] == "404"
    assert hdrs.get("mezite-reason")
    sid, hdrs = t.connect("closed")
    assert hdrs[":status"] == "502"
    assert "refused" in hdrs.get("mezite-reason", "")
    # the tunnel still serves
    sid, hdrs = t.connect("echo")
    assert hdrs[":status"] == "200"
    t.close()


def test_closed_tunnel_is_dialled_again(setup):
    fake, start = setup
    start()
    t = fake.accept()
    t.hello()
    t.close()
    # served the hello: the backoff starts again at 1 s at most
    t0 = time.monotonic()
    t2 = fake.accept(timeout=10)
    assert time.monotonic() - t0 < 5
    assert t2.hello().node == "node-1"
    t2.close()


def test_goaway_dials_at_once_and_the_old_tunnel_finishes(setup):
    fake, start = setup
    m = start()
    t = fake.accept()
    t.hello()
    sid, hdrs = t.connect("echo")
    assert hdrs[":status"] == "200"
    t.send_goaway()
    t0 = time.monotonic()
    t2 = fake.accept(timeout=5)
    assert time.monotonic() - t0 < 2
    t2.hello()
    # the old stream goes on to its end
    payload = os.urandom(100000)
    t.send(sid, payload, end=True)
    t.until(lambda: sid in t.ended, what="the old stream's end")
    assert bytes(t.data[sid]) == payload
    # and then mezd closes the old connection
    t.until(lambda: t.closed, timeout=10, what="the old tunnel to close")
    assert "drained" in m.log()
    t2.close()


def test_silent_proxy_is_dropped_within_the_keepalive_timeout(setup):
    fake, start = setup
    start(keepalive=(1, 3))
    t = fake.accept()
    t.hello()
    # while answered, the tunnel stays (pings every second)
    end = time.monotonic() + 4
    while time.monotonic() < end:
        assert t.pump(0.2), "mezd dropped a tunnel that answers"
    t0 = time.monotonic()
    # silence: read nothing, answer nothing.  The last frame mezd heard,
    # the answer to its last ping, came up to a ping interval and a tick
    # of its clock (2 s) before; then the timeout (3 s), a tick (1 s) and
    # the backoff after a hello (up to 1 s).
    t2 = fake.accept(timeout=15)
    waited = time.monotonic() - t0
    assert 3 - 2 - 0.1 <= waited <= 3 + 1 + 1 + 1.5, waited
    t2.hello()
    t.close()
    t2.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def sink_and_flood():
    """Two services: one that never reads, one that writes without end."""
    socks, stop = [], threading.Event()
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(4)
    flood = socket.socket()
    flood.bind(("127.0.0.1", 0))
    flood.listen(4)

    def serve_flood():
        flood.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = flood.accept()
            except socket.timeout:
                continue
            socks.append(c)
            c.settimeout(0.2)
            block = b"f" * 65536
            while not stop.is_set():
                try:
                    c.send(block)
                except socket.timeout:
                    continue
                except OSError:
                    break
    th = threading.Thread(target=serve_flood, daemon=True)
    th.start()
    yield sink.getsockname()[1], flood.getsockname()[1]
    stop.set()
    th.join()
    for s in socks + [sink, flood]:
        s.close()


def test_streams_are_bounded_by_their_windows(setup, sink_and_flood):
    fake, start = setup
    sink, flood = sink_and_flood
    m = start(services=[("sink", "127.0.0.1:%d" % sink),
                        ("flood", "127.0.0.1:%d" % flood)])
    t = fake.accept()
    t.hello()
    before = rss_kb(m.proc.pid)
    # to a service that does not read: the window closes and stays shut
    sid, hdrs = t.connect("sink")
    assert hdrs[":status"] == "200"
    sent, block = 0, b"s" * 16384
    stalled_since = None
    while sent < 64 << 20:
        win = min(t.h2.local_flow_control_window(sid), len(block))
        if win > 0:
            t.h2.send_data(sid, block[:win])
            t.flush()
            sent += win
            stalled_since = None
        elif stalled_since is None:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > 1.5:
            break
        t.pump(0.01)
    assert sent < 64 << 20, "mezd took 64 MB a service never read"
    # from a service that writes without end, to a proxy that does not
    # acknowledge: mezd stops reading it at the window
    t.ack = False
    sid2, hdrs = t.connect("flood")
    assert hdrs[":status"] == "200"
    end = time.monotonic() + 3
    while time.monotonic() < end:
        t.pump(0.1)
    got = len(t.data.get(sid2, b""))
    assert 0 < got <= 1 << 20, got     # its window, and not a byte more
    grown = rss_kb(m.proc.pid) - before
    assert grown < 8 * 1024, "mezd grew by %d KiB" % grown
    t.close()


# --------------------------------------------------------------------------
# through an HTTP CONNECT proxy


class ConnectProxy:
    """A tiny HTTP proxy that knows CONNECT and one user."""

    def __init__(self, user="u", password="p w"):
        self.want = "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.requests = []
        self.stop = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        self.ls.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            b = c.recv(1)
            if not b:
                c.close()
                return
            head += b
        lines = head.decode().split("\r\n")
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        self.requests.append((lines[0], hdrs))
        method, target, _ = lines[0].split(" ")
        if hdrs.get("proxy-authorization") != self.want:
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Basic realm=\"t\"\r\n\r\n")
            c.close()
            return
        host, port = target.rsplit(":", 1)
        try:
            up = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, c), daemon=True).start()

    def close(self):
        self.stop.set()
        self.ls.close()


def test_tunnel_through_https_proxy_with_basic_auth(setup):
    fake, start = setup
    px = ConnectProxy()
    try:
        start(env={"HTTPS_PROXY":
                   "http://u:p%%20w@127.0.0.1:%d" % px.port})
        t = fake.accept()
        assert t.hello().node == "node-1"
        line, hdrs = px.requests[0]
        assert line == "CONNECT localhost:%d HTTP/1.1" % fake.port
        assert hdrs["host"] == "localhost:%d" % fake.port
        t.close()
    finally:
        px.close()


def test_wrong_proxy_credentials_are_reported(setup):
    fake, start = setup
    px = ConnectProxy()
    try:
        m = start(env={"https_proxy": "http://u:bad@127.0.0.1:%d" %
                       px.port})
        wait_for(lambda: "407" in m.log(), 10, what="the 407 in the log")
        assert "Proxy Authentication Required" in m.log()
    finally:
        px.close()


def test_no_proxy_bypasses_the_proxy(setup):
    fake, start = setup
    px = ConnectProxy()
    try:
        start(env={"HTTPS_PROXY": "http://u:p%%20w@127.0.0.1:%d" % px.port,
                   "NO_PROXY": "example.com,.localhost"})
        t = fake.accept()
        t.hello()
        assert px.requests == []
        t.close()
    finally:
        px.close()


# --------------------------------------------------------------------------
# Renew: the fake proxy serves the auth service too, with a host CA of
# the test's own, and certifies the key mezd sends for a while.


class HostCA:
    def __init__(self, d):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        self.x509, self.hashes, self.ser, self.ec = x509, hashes, \
            serialization, ec
        self.NameOID = NameOID
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "Test Host CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True,
                                                          path_length=None),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.path = os.path.join(d, "host-ca.pem")
        with open(self.path, "wb") as f:
            f.write(self.pem)

    def issue(self, pub, name, before, after):
        """A host certificate for pub, valid from now-before to
        now+after seconds."""
        x509 = self.x509
        now = datetime.datetime.now(datetime.timezone.utc)
        subj = x509.Name([
            x509.NameAttribute(self.NameOID.ORGANIZATION_NAME, "Mezite"),
            x509.NameAttribute(self.NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder()
                .subject_name(subj).issuer_name(self.cert.subject)
                .public_key(pub)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(seconds=before))
                .not_valid_after(now + datetime.timedelta(seconds=after))
                .add_extension(x509.ExtendedKeyUsage(
                    [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                    critical=False)
                .sign(self.key, self.hashes.SHA256()))
        return cert

    def node_state(self, state, name, before, after):
        """A state directory with a key and a certificate of it."""
        os.makedirs(state, 0o700)
        key = self.ec.generate_private_key(self.ec.SECP256R1())
        cert = self.issue(key.public_key(), name, before, after)
        files = {
            "key.pem": key.private_bytes(
                self.ser.Encoding.PEM, self.ser.PrivateFormat.PKCS8,
                self.ser.NoEncryption()),
            "cert.pem": cert.public_bytes(self.ser.Encoding.PEM),
            "ca.pem": self.pem}
        for n, b in files.items():
            p = os.path.join(state, n)
            with open(p, "wb") as f:
                f.write(b)
            os.chmod(p, 0o600)
        chown_tree(state, NOBODY, NOBODY)
        return cert


def serve_renew(s, ca, lifetime=3600):
    """One unary Renew call on an accepted mezite-auth connection; the
    request and the certificate sent back."""
    from cryptography.hazmat.primitives.serialization import \
        load_der_public_key
    pb = pb_modules()["auth"]
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=False,
                                         header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    body, path, done = bytearray(), None, None
    s.settimeout(10)
    while done is None:
        b = s.recv(65536)
        assert b, "the Renew call ended early"
        for ev in conn.receive_data(b):
            if isinstance(ev, h2.events.RequestReceived):
                path = dict(ev.headers)[":path"]
            elif isinstance(ev, h2.events.DataReceived):
                body.extend(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length,
                                               ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                done = ev.stream_id
        s.sendall(conn.data_to_send())
    assert path == "/mezite.auth.v1.Auth/Renew"
    req = pb.RenewRequest()
    req.ParseFromString(bytes(body[5:]))
    cert = ca.issue(load_der_public_key(req.public_key), "node-1", 60,
                    lifetime)
    res = pb.JoinResponse(
        certificate=cert.public_bytes(ca.ser.Encoding.PEM),
        ca_certificate=ca.pem, node="node-1", serial="1")
    msg = res.SerializeToString()
    conn.send_headers(done, [(":status", "200"),
                             ("content-type", "application/grpc")])
    conn.send_data(done, b"\0" + len(msg).to_bytes(4, "big") + msg)
    conn.send_headers(done, [("grpc-status", "0")], end_stream=True)
    s.sendall(conn.data_to_send())
    # until mezd hangs up
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    return req, cert


def test_renew_then_a_new_tunnel_while_the_old_one_drains(workdir, pki,
                                                          echo):
    ca = HostCA(workdir)
    state = os.path.join(workdir, "state")
    # 30 s of life, 17 s gone: renewed at 2/3, 3 s from now
    old = ca.node_state(state, "node-1", 17, 13)
    fake = FakeProxy(pki, ca.path)
    fake.ctx.set_alpn_protocols(["mezite-tunnel", "mezite-auth"])
    shutil.copyfile(pki.ca, os.path.join(workdir, "proxy-ca.pem"))
    os.chmod(os.path.join(workdir, "proxy-ca.pem"), 0o644)
    m = Mezd(workdir, os.path.join(workdir, "proxy-ca.pem"), fake.port,
             services=[("echo", "127.0.0.1:%d" % echo)],
             labels=[("env", "test")]).start()
    try:
        raw = None
        t1 = fake.accept()
        assert t1.peer_serial == old.serial_number
        t1.hello()
        sid, hdrs = t1.connect("echo")
        assert hdrs[":status"] == "200"
        # the Renew call, presenting the old certificate
        fake.lsock.settimeout(15)
        raw, _ = fake.lsock.accept()
        s = fake.ctx.wrap_socket(raw, server_side=True)
        assert s.selected_alpn_protocol() == "mezite-auth"
        assert int(s.getpeercert()["serialNumber"], 16) == \
            old.serial_number
        req, new = serve_renew(s, ca)
        assert [(lb.key, lb.value) for lb in req.labels] == [("env",
                                                              "test")]
        # for the key it holds: the tunnel worker knows it by its key
        from cryptography.hazmat.primitives import serialization as ser
        assert req.public_key == old.public_key().public_bytes(
            ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
        # a new tunnel with the new certificate
        t2 = fake.accept()
        assert t2.peer_serial == new.serial_number
        t2.hello()
        # the old one is told to go, and finishes its stream
        t1.until(lambda: t1.goaway, what="mezd's GOAWAY on the old tunnel")
        payload = os.urandom(200000)
        t1.send(sid, payload, end=True)
        t1.until(lambda: sid in t1.ended, what="the old stream's end")
        assert bytes(t1.data[sid]) == payload
        t1.until(lambda: t1.closed, what="the old tunnel to close")
        with open(os.path.join(state, "cert.pem"), "rb") as f:
            assert f.read() == new.public_bytes(ca.ser.Encoding.PEM)
        assert os.stat(os.path.join(state, "key.pem")).st_mode & 0o077 == 0
        assert "certificate renewed" in m.log()
        t2.close()
    finally:
        rc = m.stop()
        fake.close()
    assert rc == 0, m.log()


def test_join_through_https_proxy(daemon, pki, workdir):
    import json
    r = daemon.mezctl("-j", "token", "create", "node", "node-2")
    assert r.returncode == 0, r.stdout + r.stderr
    tok = json.loads(r.stdout)
    if isinstance(tok, list):
        tok = tok[0]
    ca = os.path.join(workdir, "proxy-ca.pem")
    shutil.copyfile(pki.ca, ca)
    os.chmod(ca, 0o644)
    px = ConnectProxy()
    m = Mezd(workdir, ca, daemon.port, name="node-2", token=tok["secret"],
             env={"https_proxy": "http://u:p%%20w@127.0.0.1:%d" % px.port})
    try:
        m.start()
        wait_for(lambda: "joined as node-2" in m.log(), 30,
                 what="mezd to join through the proxy")
        assert px.requests[0][0] == "CONNECT localhost:%d HTTP/1.1" % \
            daemon.port
    finally:
        rc = m.stop()
        px.close()
    assert rc == 0, m.log()
    r = run(["openssl", "x509", "-noout", "-subject", "-in",
             os.path.join(m.state, "cert.pem")])
    assert "node-2" in r.stdout
