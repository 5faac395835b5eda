"""
Fixtures for the Mezite integration tests.

Everything here is real: a real mezited (supervisor, master, https workers,
chroots, privilege drop to "nobody") on a loopback port, spoken to with
real clients (curl, openssl s_client, Python's ssl module) and mezctl.

Fixtures:
  pki            session: CA, server, alt, client (alice) and rogue certs
  htdocs         session: static files for the https worker's root
  daemon         module:  a shared mezited for read-only tests
  fresh_daemon   function: a mezited per test, for destructive tests
  make_daemon    function: factory for daemons with custom configuration
"""

import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import http.client

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
# MEZITED / MEZCTL in the environment run the suite against other builds
# (e.g. SANITIZE=1 ones).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "killed by signal 11", "killed by signal 6",
                   "killed by signal 7", "killed by signal 8",
                   "killed by signal 31", "sandbox: system call")
MEZITED = os.environ.get("MEZITED", os.path.join(TOP, "master", "mezited"))
MEZCTL = os.environ.get("MEZCTL", os.path.join(TOP, "mezctl", "mezctl"))
MSH = os.environ.get("MSH", os.path.join(TOP, "msh", "msh"))
# The master's TLS engine in that build: openssl, or libtls (relay only).
MEZITED_TLS = os.environ.get("MEZITED_TLS", "openssl")


def _asan_build():
    r = subprocess.run(["ldd", MEZITED], capture_output=True, text=True,
                       timeout=30)
    return "libasan" in r.stdout


# A build on AddressSanitizer's allocator (make check-sanitize) keeps what
# is freed in quarantine (256 MB by default) and gives nothing back on
# malloc_trim(): there RSS says nothing of mezited's own memory bounds.
ASAN_BUILD = _asan_build()

BIG_SIZE = 50 * 1024 * 1024      # the 50 MB transfers
SLOW_SIZE = 20 * 1024 * 1024     # downloads kept running with --limit-rate
# Masters in each mezited the suites start (master { prefork }), unless
# a test says: the sanitizer run takes two.
MASTERS = int(os.environ.get("MEZITE_TEST_MASTERS", "1"))
SLOW_RATE = "4M"                 # ... so they last about 5 s

CONF_TEMPLATE = """\
listen on 127.0.0.1 port {port}
tls keypair "default" {{
	certificate "{cert}"
	key "{key}"
}}
tls keypair "alt" {{
	certificate "{alt_cert}"
	key "{alt_key}"
}}
tls keypair "auth" {{
	certificate "{auth_cert}"
	key "{auth_key}"
}}
route sni "auth.test" to auth
{client_ca}
timeout handshake {handshake}
timeout idle 60
timeout drain {drain}
max connections 1000
# The suites connect from one address, faster than a client would.
max connections per source 1000000
max connection rate 1000000 per source
control socket "{sock}"
control group "nogroup"
state directory "{state}"
master {{
	prefork {masters}
	user "nobody"
	chroot "{empty}"
}}
{ca}
worker https {{
	prefork {prefork}
	user "nobody"
	chroot "{www}"
	root "/htdocs"
	status allow 127.0.0.1
}}
worker auth {{
	user "nobody"
}}
worker tunnel {{
	user "nobody"
	chroot "{empty}"
}}
worker ssh {{
	user "nobody"
}}
"""

# The ca process's (OpenSSL builds only: libtls's has none, and warns).
CA_BLOCK = """\
ca {
	user "nobody"
	chroot "%s"
}"""


# --------------------------------------------------------------------------
# small helpers used by the tests


def run(cmd, check=True, timeout=60, **kw):
    """Run a command; return the CompletedProcess (text mode)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
            cmd, r.returncode, r.stdout, r.stderr))
    return r


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns something true; return that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:   # noqa: BLE001 - report the last one
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what,
                "" if last_exc is None else " (last error: %r)" % last_exc))
        time.sleep(interval)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def free_port():
    """A free port below the kernel's ephemeral range: the floods of the
    suite use thousands of ephemeral ports, and one of them taken as a
    client's local port would keep mezited from binding it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below %d" % low)


def client_context(alpn=None, cert=None, key=None):
    """A client TLS context that does not verify the server."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_connect(port, alpn=None, sni="localhost", timeout=10, **kw):
    """A handshaken TLS socket.  suppress_ragged_eofs=False: a close
    without close_notify raises instead of looking like a clean EOF."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return client_context(alpn, **kw).wrap_socket(
            raw, server_hostname=sni, suppress_ragged_eofs=False)
    except BaseException:
        raw.close()
        raise


def recv_all(s):
    """Everything the peer sends until it closes (or, on TLS, sends its
    close_notify)."""
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except ssl.SSLZeroReturnError:
            return data
        if not b:
            return data
        data += b


def client_hello(alpn=("h2", "http/1.1")):
    """The bytes of a real TLS ClientHello, to send by hand."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(list(alpn)).wrap_bio(
        inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[0] == 0x16 and len(hello) > 100
    return hello


class _Conn(http.client.HTTPConnection):
    """HTTP/1.1 over TLS to 127.0.0.1, with our own context and SNI."""

    def __init__(self, port, ctx, sni, timeout):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self._ctx = ctx
        self._sni = sni

    def connect(self):
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._ctx.wrap_socket(raw, server_hostname=self._sni)
        except BaseException:
            raw.close()
            raise


def http_get(port, path, alpn=("http/1.1",), sni="localhost", timeout=10,
             method="GET", body=None, **kw):
    """One request on a fresh TLS connection (HTTP/1.1).
    Returns (status, body bytes, local port)."""
    ctx = client_context(list(alpn) if alpn else None, **kw)
    c = _Conn(port, ctx, sni, timeout)
    try:
        c.connect()
        lport = c.sock.getsockname()[1]
        c.request(method, path, body=body,
                  headers={"Host": sni or "localhost"})
        r = c.getresponse()
        data = r.read()
        return r.status, data, lport
    finally:
        c.close()


def get_json(port, path, **kw):
    st, body, _ = http_get(port, path, **kw)
    assert st == 200, "%s: HTTP %d: %r" % (path, st, body[:200])
    return json.loads(body)


def healthz(port, timeout=10):
    st, body, _ = http_get(port, "/healthz", timeout=timeout)
    return st == 200 and body.strip() == b"ok"


def peer_cert_der(port, sni="localhost"):
    """DER of the certificate the server presents (sni None: no SNI)."""
    s = tls_connect(port, sni=sni)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def proc_pgrp_members(pgid):
    """Live (non-zombie) processes whose process group is pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        state, pgrp = rest[0], int(rest[2])
        if pgrp == pgid and state != "Z":
            out.append(int(d))
    return out


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    rest = st[st.rindex(")") + 2:].split()
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# --------------------------------------------------------------------------
# PKI


class PKI:
    pass


def _openssl(*args, cwd):
    run(["openssl"] + list(args), cwd=cwd)


def make_keypair(d, name, subj, san, ca=None, client=False):
    """An ECDSA P-256 key and certificate; signed by ca (a (cert, key)
    pair) or self-signed.  Returns (cert path, key path)."""
    key = os.path.join(d, name + ".key")
    crt = os.path.join(d, name + ".pem")
    csr = os.path.join(d, name + ".csr")
    ext = os.path.join(d, name + ".ext")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", key, cwd=d)
    os.chmod(key, 0o600)
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
        f.write("basicConstraints=critical,CA:FALSE\n")
        f.write("keyUsage=critical,digitalSignature\n")
        f.write("extendedKeyUsage=%s\n" %
                ("clientAuth" if client else "serverAuth"))
    _openssl("req", "-new", "-key", key, "-subj", subj, "-out", csr, cwd=d)
    if ca is None:
        _openssl("x509", "-req", "-in", csr, "-signkey", key, "-days", "3",
                 "-extfile", ext, "-out", crt, cwd=d)
    else:
        _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                 "-CAcreateserial", "-days", "3", "-extfile", ext,
                 "-out", crt, cwd=d)
    return crt, key


def make_ca(d, name, cn):
    key = os.path.join(d, name + ".key")
    crt = os.path.join(d, name + ".pem")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
             "-out", crt, "-days", "3", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    os.chmod(key, 0o600)
    return crt, key


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    p = PKI()
    p.dir = d
    p.ca, p.ca_key = make_ca(d, "ca", "Mezite Test CA")
    p.cert, p.key = make_keypair(
        d, "server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1",
        ca=(p.ca, p.ca_key))
    p.alt_cert, p.alt_key = make_keypair(
        d, "alt", "/CN=alt.test", "DNS:alt.test", ca=(p.ca, p.ca_key))
    # Standard gRPC clients reach the auth worker by this name.
    p.auth_cert, p.auth_key = make_keypair(
        d, "auth", "/CN=auth.test", "DNS:auth.test", ca=(p.ca, p.ca_key))
    p.client_cert, p.client_key = make_keypair(
        d, "alice", "/CN=alice",
        "DNS:alice.example,email:alice@example.com",
        ca=(p.ca, p.ca_key), client=True)
    rogue_ca = make_ca(d, "rogueca", "Rogue CA")
    p.rogue_ca = rogue_ca[0]
    p.rogue_cert, p.rogue_key = make_keypair(
        d, "mallory", "/CN=mallory", "DNS:mallory.example",
        ca=rogue_ca, client=True)
    return p


@pytest.fixture(scope="session")
def htdocs(tmp_path_factory):
    """Static files, copied into every daemon's https chroot."""
    d = str(tmp_path_factory.mktemp("htdocs"))
    files = {}
    for name, size in (("big.bin", BIG_SIZE), ("slow.bin", SLOW_SIZE),
                       ("small.txt", 0)):
        path = os.path.join(d, name)
        h = hashlib.sha256()
        with open(path, "wb") as f:
            if size == 0:
                data = b"hello from the static root\n"
                f.write(data)
                h.update(data)
            else:
                left = size
                while left:
                    b = os.urandom(min(left, 1 << 20))
                    f.write(b)
                    h.update(b)
                    left -= len(b)
        os.chmod(path, 0o644)
        files[name] = h.hexdigest()
    return d, files


# --------------------------------------------------------------------------
# the daemon


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class Daemon:
    """A running mezited in its own process group."""

    def __init__(self, pki, htdocs, client_ca=False, prefork=2,
                 handshake=2, drain=10, prlimit_nofile=None, extra="",
                 pass_fds=(), masters=None):
        self.pki = pki
        self.files = htdocs[1]
        # A private, world-searchable directory (0755) so that "nobody"
        # can reach the control socket; short path for sun_path.
        self.dir = tempfile.mkdtemp(prefix="mz", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.empty = os.path.join(self.dir, "empty")
        self.www = os.path.join(self.dir, "www")
        os.mkdir(self.empty)
        os.mkdir(self.www)
        # hard links: the files are large and nobody writes them
        shutil.copytree(htdocs[0], os.path.join(self.www, "htdocs"),
                        copy_function=_link_or_copy)
        for d in (self.empty, self.www, os.path.join(self.www, "htdocs")):
            os.chown(d, 0, 0)
            os.chmod(d, 0o755)
        # Own copies of the keypairs: tests overwrite them.
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        self.alt_cert = os.path.join(self.dir, "alt.pem")
        self.alt_key = os.path.join(self.dir, "alt.key")
        self.auth_cert = os.path.join(self.dir, "auth.pem")
        self.auth_key = os.path.join(self.dir, "auth.key")
        for src, dst in ((pki.cert, self.cert), (pki.key, self.key),
                         (pki.alt_cert, self.alt_cert),
                         (pki.alt_key, self.alt_key),
                         (pki.auth_cert, self.auth_cert),
                         (pki.auth_key, self.auth_key)):
            shutil.copyfile(src, dst)
        for k in (self.key, self.alt_key, self.auth_key):
            os.chmod(k, 0o600)
        # The auth worker's store and CAs are made in state/auth.
        self.state = os.path.join(self.dir, "state")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.conf = os.path.join(self.dir, "mezited.conf")
        self.logfile = os.path.join(self.dir, "mezited.log")
        self.port = free_port()
        self.params = dict(
            port=self.port, cert=self.cert, key=self.key,
            alt_cert=self.alt_cert, alt_key=self.alt_key,
            auth_cert=self.auth_cert, auth_key=self.auth_key,
            state=self.state,
            client_ca=('tls client ca "%s"' % pki.ca) if client_ca else "",
            handshake=handshake, drain=drain, sock=self.sock,
            empty=self.empty, www=self.www, prefork=prefork,
            masters=masters or MASTERS,
            ca=CA_BLOCK % self.empty if MEZITED_TLS == "openssl" else "")
        self.write_conf(extra=extra)
        self.prlimit_nofile = prlimit_nofile
        self.pass_fds = tuple(pass_fds)     # left open in the supervisor
        self.proc = None
        self.pgid = None

    # configuration ------------------------------------------------------

    def conf_text(self, **over):
        p = dict(self.params)
        extra = over.pop("extra", "")
        p.update(over)
        return CONF_TEMPLATE.format(**p) + extra

    def write_conf(self, text=None, **over):
        with open(self.conf, "w") as f:
            f.write(text if text is not None else self.conf_text(**over))

    # life cycle ---------------------------------------------------------

    def start(self, timeout=10):
        r = run([MEZITED, "-n", "-f", self.conf], check=False)
        if r.returncode != 0:
            raise AssertionError("mezited -n refused the test configuration:"
                                 "\n%s%s\n--- config ---\n%s" % (
                                     r.stdout, r.stderr, self.conf_text()))
        cmd = [MEZITED, "-d", "-v", "-f", self.conf]
        if self.prlimit_nofile:
            n = self.prlimit_nofile
            cmd = ["prlimit", "--nofile=%d:%d" % (n, n), "--"] + cmd
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log_fh,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     pass_fds=self.pass_fds,
                                     start_new_session=True, cwd=self.dir)
        self.pgid = self.proc.pid
        try:
            wait_for(lambda: self._alive() and healthz(self.port, 2),
                     timeout, interval=0.1, what="/healthz to answer")
            # both https workers registered with the master
            wait_for(lambda: len(re.findall(r"worker https\.\d+ up",
                                            self.log())) >=
                     self.params["prefork"] and len({
                         w["pid"] for w in self.running().values()}) ==
                     self.params["prefork"] + self.params["masters"] +
                     self.auth_prefork() +
                     self.tunnel_prefork() + self.ssh_prefork() +
                     (MEZITED_TLS == "openssl"),
                     timeout, interval=0.1, what="all workers running")
            # and the master verifies client certificates against the
            # auth worker's CAs, which it sends once its store is open
            if self.auth_prefork() > 0:
                wait_for(lambda: re.search(
                    r"auth\.\d+: client certificates of its CAs are "
                    r"accepted", self.log()), timeout, interval=0.1,
                    what="the auth worker's CAs")
        except BaseException:
            print(self.log_tail())
            self.stop(check=False)
            raise
        return self

    def auth_prefork(self):
        """Auth workers the configuration asks for: 1 unless it says."""
        with open(self.conf) as f:
            m = re.search(r"worker auth \{[^}]*prefork (\d+)", f.read())
        return int(m.group(1)) if m else 1

    def tunnel_prefork(self):
        """Tunnel workers the configuration asks for: 1 unless it says."""
        with open(self.conf) as f:
            m = re.search(r"worker tunnel \{[^}]*prefork (\d+)", f.read())
        return int(m.group(1)) if m else 1

    def ssh_prefork(self):
        """ssh workers the configuration asks for: 1 unless it says."""
        with open(self.conf) as f:
            m = re.search(r"worker ssh \{[^}]*prefork (\d+)", f.read())
        return int(m.group(1)) if m else 1

    def _alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("mezited exited with %d:\n%s" % (
                self.proc.returncode, self.log_tail()))
        return True

    def stop(self, check=True, timeout=20):
        """SIGTERM, wait, SIGKILL leftovers; assert the group is gone."""
        if self.proc is None:
            return
        leftovers = []
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    leftovers.append("supervisor did not exit on SIGTERM")
            try:
                wait_for(lambda: not proc_pgrp_members(self.pgid), 5,
                         what="the process group to empty")
            except AssertionError:
                leftovers.append("processes left in group %d: %s" % (
                    self.pgid, proc_pgrp_members(self.pgid)))
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.proc.poll() is None:
                self.proc.wait(timeout=5)
        finally:
            self.log_fh.close()
            self.proc = None
        # A sanitizer report or a crash fails the test that saw it, even
        # if the supervisor restarted the process and all went on.
        for bad in SANITIZER_MARKS:
            if bad in self.log():
                leftovers.append("log shows %r" % bad)
        if check and leftovers:
            raise AssertionError("; ".join(leftovers) + "\n" +
                                 self.log_tail())

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # observation --------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=60):
        lines = self.log().splitlines()
        return "--- mezited log (last %d lines) ---\n%s" % (
            n, "\n".join(lines[-n:]))

    def wait_log(self, pattern, timeout=10, start=0):
        """Wait for a regex in the log after offset start; return match."""
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log(), start), timeout,
                        what="log line /%s/" % pattern)

    def log_size(self):
        return len(self.log())

    def mezctl_for_others(self):
        """A copy of mezctl in the daemon's own directory (0755), for
        running as another user: the tree's binary may be where only its
        owner can reach it, as in a home directory (0700)."""
        path = os.path.join(self.dir, "mezctl")
        if not os.path.exists(path):
            shutil.copyfile(MEZCTL, path)
            os.chmod(path, 0o755)
        return path

    def mezctl(self, *args, json_out=False, user=None, timeout=10):
        """mezctl, as root or, with user, as that user."""
        cmd = [MEZCTL if user is None else self.mezctl_for_others()]
        if json_out:
            cmd.append("-j")
        cmd += ["-s", self.sock] + list(args)
        if user is not None:
            cmd = ["runuser", "-u", user, "--"] + cmd
        return run(cmd, check=False, timeout=timeout)

    def mezctl_json(self, *args):
        r = self.mezctl(*args, json_out=True)
        assert r.returncode == 0, "mezctl -j %s: %s%s" % (
            " ".join(args), r.stdout, r.stderr)
        return json.loads(r.stdout)

    def workers(self):
        """show workers, keyed as mezctl prints them: master (master.0,
        master.1 when there are several), https.0; with several masters
        "master" names master.0 too."""
        ws = self.mezctl_json("show", "workers")
        one = sum(w["type"] == "master" for w in ws) == 1
        r = {"master" if w["type"] == "master" and one else
             "%s.%d" % (w["type"], w["instance"]): w for w in ws}
        if "master.0" in r:
            r["master"] = r["master.0"]
        return r

    def running(self):
        """The processes that run, keyed as workers() keys them."""
        try:
            ws = self.workers()
        except Exception:   # noqa: BLE001 - not up yet
            return {}
        return {k: w for k, w in ws.items() if w.get("pid")}

    def worker_pid(self, name):
        return self.workers()[name]["pid"]

    def status(self):
        return get_json(self.port, "/api/v1/status")

    def healthz(self):
        return healthz(self.port)


def _start(pki, htdocs, edit=None, **kw):
    """A started Daemon; edit, if given, rewrites its configuration text
    before it starts."""
    d = Daemon(pki, htdocs, **kw)
    try:
        if edit is not None:
            d.write_conf(text=edit(d.conf_text()))
        d.start()
    except BaseException:
        d.cleanup()
        raise
    return d


def _finish(d, request):
    try:
        d.stop(check=True)
    finally:
        d.cleanup()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    # For a failing test, attach the tail of every daemon's log.
    if rep.when == "call" and rep.failed:
        for name in ("daemon", "fresh_daemon", "mtls_daemon"):
            d = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(d, Daemon) and os.path.exists(d.logfile):
                rep.sections.append(("mezited log (%s)" % name,
                                     d.log_tail(80)))
        for d in getattr(item, "_extra_daemons", []):
            if os.path.exists(d.logfile):
                rep.sections.append(("mezited log (extra)", d.log_tail(80)))


@pytest.fixture(scope="module")
def daemon(pki, htdocs, request):
    """A shared mezited for tests that leave it as they found it."""
    d = _start(pki, htdocs)
    yield d
    _finish(d, request)


@pytest.fixture
def fresh_daemon(pki, htdocs, request):
    """A mezited of its own, for tests that kill, reload or stop it."""
    d = _start(pki, htdocs)
    yield d
    _finish(d, request)


@pytest.fixture
def make_daemon(pki, htdocs, request):
    """Factory: make_daemon(edit=None, **Daemon kwargs) -> started
    Daemon; edit(text) -> text rewrites the configuration first."""
    made = []

    def make(edit=None, **kw):
        d = _start(pki, htdocs, edit, **kw)
        made.append(d)
        request.node._extra_daemons = made
        return d
    yield make
    errors = []
    for d in made:
        try:
            _finish(d, request)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def agents(request):
    """Factory of started agents (tunnelkit.Mezd), stopped and removed at
    the end; their logs are shown if the test failed."""
    from tunnelkit import Mezd
    made = []

    def make(*a, **kw):
        m = Mezd(*a, **kw)
        made.append(m)
        return m.start()
    yield make
    failed = getattr(request.node, "rep_call", None)
    for m in made:
        if failed is not None and failed.failed:
            print(m.log_tail())
        m.cleanup()
