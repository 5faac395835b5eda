"""
What the tunnel tests stand up around a mezited: real agents (mezd) that
join with a token, and real services behind them (OpenSSH's sshd, Python's
http.server, small TCP servers), each on a loopback port of its own, each
stopped when its test ends.
"""

import hashlib
import os
import pwd
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import h2.config
import h2.connection
import h2.events

from authclient import Client, keypair, pb as pb_modules
from conftest import MEZCTL, TOP, free_port, run, tls_connect, wait_for

MEZD = os.environ.get("MEZD", os.path.join(TOP, "mezd", "mezd"))
SSHD = "/usr/sbin/sshd"


def token_create(d, node):
    """The secret of a join token for node."""
    t = d.mezctl_json("token", "create", "node", node)
    if isinstance(t, list):
        t = t[0]
    return t["secret"]


class Mezd:
    """A mezd for node name, joined to the daemon d with a token of its
    own, serving services ({name: "host:port"}), running as nobody."""

    def __init__(self, d, name, services, labels=(), keepalive=1,
                 timeout=3, extra="", env=None, port=None, token=True):
        self.d = d
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="mzd", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.state = os.path.join(self.dir, "state")
        os.mkdir(self.state, 0o700)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.state, nobody.pw_uid, nobody.pw_gid)
        self.ca = os.path.join(self.dir, "ca.pem")
        shutil.copyfile(d.pki.ca, self.ca)
        os.chmod(self.ca, 0o644)
        self.conf = os.path.join(self.dir, "mezd.conf")
        self.logfile = os.path.join(self.dir, "mezd.log")
        self.env = env
        lines = ['proxy "127.0.0.1:%d"' % (port or d.port),
                 'ca "%s"' % self.ca,
                 'name "%s"' % name,
                 'state directory "%s"' % self.state,
                 'user "nobody"',
                 "keepalive %d" % keepalive,
                 "keepalive timeout %d" % timeout]
        if token:
            lines.append('token "%s"' % token_create(d, name))
        for k, v in labels:
            lines.append('label %s "%s"' % (k, v))
        for svc, target in sorted(services.items()):
            lines.append("service %s %s" % (svc, target))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        os.chmod(self.conf, 0o600)
        self.proc = None

    def start(self):
        self.log_fh = open(self.logfile, "ab")
        env = dict(os.environ)
        for k in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
            env.pop(k, None)
        env.update(self.env or {})
        self.proc = subprocess.Popen([MEZD, "-d", "-v", "-f", self.conf],
                                     stdout=self.log_fh,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        return self

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self.log_fh.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=40):
        return "--- mezd %s log ---\n%s" % (
            self.name, "\n".join(self.log().splitlines()[-n:]))


def nodes(d):
    """mezctl show nodes, by name."""
    return {n["name"]: n for n in d.mezctl_json("show", "nodes")}


def wait_online(d, name, timeout=20, online=True):
    def state():
        n = nodes(d).get(name)
        return n is not None and bool(n.get("online")) == online
    wait_for(state, timeout, interval=0.1,
             what="node %s %s" % (name, "online" if online else "offline"))


def connect(d, node, service, data=b"", timeout=60, **kw):
    """mezctl connect: what came back, and how it ended."""
    return subprocess.run([MEZCTL, "-s", d.sock, "connect", node, service],
                          input=data, capture_output=True, timeout=timeout,
                          **kw)


def connect_popen(d, node, service, **kw):
    return subprocess.Popen([MEZCTL, "-s", d.sock, "connect", node,
                             service], **kw)


# --------------------------------------------------------------------------
# services behind agents


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Echo(socketserver.BaseRequestHandler):
    """Echoes until EOF, then half-closes; a reset (a stream the proxy
    reset) just ends it."""
    def handle(self):
        s = self.request
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                s.sendall(b)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Source(socketserver.BaseRequestHandler):
    """Sends without end, as fast as the stream takes it."""
    def handle(self):
        chunk = b"x" * 65536
        try:
            while True:
                self.request.sendall(chunk)
        except OSError:
            pass


class TcpService:
    """A TCP server on a loopback port: kind "echo" or "source"."""

    def __init__(self, kind):
        handler = {"echo": _Echo, "source": _Source}[kind]
        self.server = _Threaded(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HttpServer:
    """python3 -m http.server over a directory with one big file."""

    def __init__(self, size):
        self.dir = tempfile.mkdtemp(prefix="mzh", dir="/tmp")
        self.path = os.path.join(self.dir, "big")
        h = hashlib.sha256()
        with open(self.path, "wb") as f:
            left = size
            while left > 0:
                b = os.urandom(min(left, 1 << 20))
                h.update(b)
                f.write(b)
                left -= len(b)
        self.sha256 = h.hexdigest()
        self.size = size
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1",
             "--directory", self.dir, str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port), 10, what="http.server")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Sshd:
    """OpenSSH's sshd on a loopback port, letting root in with one key."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mzs", dir="/tmp")
        os.chmod(self.dir, 0o700)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.hostkey = os.path.join(self.dir, "host_ed25519")
        self.key = os.path.join(self.dir, "id_ed25519")
        for k in (self.hostkey, self.key):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k])
        auth = os.path.join(self.dir, "authorized_keys")
        shutil.copyfile(self.key + ".pub", auth)
        os.chmod(auth, 0o600)
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\n"
                    "PidFile %s/sshd.pid\nAuthorizedKeysFile %s\n"
                    "PermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\n"
                    "StrictModes no\nLogLevel ERROR\n"
                    "Subsystem sftp internal-sftp\n"
                    "MaxStartups 200\n" % (
                        self.port, self.hostkey, self.dir, auth))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port), 10, what="sshd")

    def ssh(self, d, node, command, input=b"", timeout=60):
        """ssh to the node through mezctl connect, as a ProxyCommand."""
        proxy = "%s -s %s connect %s ssh" % (MEZCTL, d.sock, node)
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-i", self.key,
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR",
             "-o", "ProxyCommand=" + proxy, "root@" + node, command],
            input=input, capture_output=True, timeout=timeout)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Tinyproxy:
    """tinyproxy on a loopback port, allowing CONNECT to any port (no ConnectPort line), with
    basic authentication if user and password are given."""

    def __init__(self, user=None, password=None):
        self.dir = tempfile.mkdtemp(prefix="mzp", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.logfile = os.path.join(self.dir, "tinyproxy.log")
        conf = os.path.join(self.dir, "tinyproxy.conf")
        nobody = pwd.getpwnam("nobody")
        open(self.logfile, "w").close()
        os.chown(self.logfile, nobody.pw_uid, nobody.pw_gid)
        with open(conf, "w") as f:
            f.write("User nobody\nGroup nogroup\nPort %d\n"
                    "Listen 127.0.0.1\nTimeout 600\nLogFile \"%s\"\n"
                    "LogLevel Connect\nMaxClients 100\n"
                    "Allow 127.0.0.1\n" % (
                        self.port, self.logfile))
            if user:
                f.write("BasicAuth %s %s\n" % (user, password))
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port), 10, what="tinyproxy")

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Balancer:
    """A TCP forwarder on a loopback port, as an L4 load balancer doing
    TCP passthrough: each connection goes to the target of the moment."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target),
                                             timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)
        except OSError:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


def _listening(port):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def http_get_via(d, node, service, path, timeout=120):
    """GET path over a stream; (status line, body)."""
    r = connect(d, node, service,
                b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path.encode(),
                timeout=timeout)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def sleep_until(t):
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


# --------------------------------------------------------------------------
# a fake agent, for what mezd would never do


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + \
        struct.pack(">BBI", ftype, flags, stream) + payload


class FakeAgent:
    """An agent in Python: a real join and host certificate, the stream
    layer spoken by python3-h2 until the test makes it misbehave."""

    def __init__(self, d, pki, tmp, name, services=("echo",), same=None,
                 creds=None, alpn="mezite-tunnel"):
        self.name = name
        self.services = list(services)
        if same is not None:
            # Another session of the same agent: its certificate and key.
            cert, key = same.cert, same.key
        elif creds is not None:
            cert, key = creds
        else:
            key, spki = keypair(tmp, name)
            with Client(d.port, pki.ca) as c:
                res = c.join(token_create(d, name), name, spki)
            cert = os.path.join(tmp, name + ".crt")
            with open(cert, "wb") as f:
                f.write(res.certificate)
        self.cert, self.key = cert, key
        self.s = tls_connect(d.port, alpn=[alpn], cert=cert, key=key)
        self.s.settimeout(10)
        # python3-h2 4.1 takes a CONNECT without :path (RFC 9113, 8.5)
        # for a malformed request: it checks no headers here.
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8",
            validate_inbound_headers=False))
        self.h2.initiate_connection()
        self.flush()
        self.connects = []

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.s.sendall(data)

    def pump(self, until, timeout=10):
        """Read and answer until until() is true."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("fake agent %s: timed out" % self.name)
            data = self.s.recv(65536)
            if not data:
                raise AssertionError("fake agent %s: closed" % self.name)
            for ev in self.h2.receive_data(data):
                self.on(ev)
            self.flush()

    def on(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            hdr = dict(ev.headers)
            if hdr.get(":method") == "GET":
                pb = pb_modules()["tunnel"]
                body = pb.Hello(node=self.name, version="fake",
                                services=self.services).SerializeToString()
                self.h2.send_headers(ev.stream_id, [
                    (":status", "200"),
                    ("content-type", "application/x-protobuf")])
                self.h2.send_data(ev.stream_id, body, end_stream=True)
            elif hdr.get(":method") == "CONNECT":
                self.h2.send_headers(ev.stream_id, [(":status", "200")])
                self.connects.append(ev.stream_id)

    def closed_by_peer(self, timeout=10):
        """Whether the proxy ends the session within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                data = self.s.recv(65536)
                if not data:
                    return True
        except (ssl.SSLError, ConnectionResetError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
