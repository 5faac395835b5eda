"""
msh ls, msh proxy, msh ssh and msh config.

msh ls asks a real mezited, with a real agent (mezd) joined.  msh proxy
is tried against TLS servers of the test's own on ALPN mezite-ssh, which
require the user's certificate from the auth worker's user CA: an echo
server (64 MB each way, by SHA-256), one that selects another protocol,
and a terminator in front of OpenSSH's sshd, standing for the bastion,
that real ssh reaches through msh ssh's command line.  msh ssh and msh
config are also run with MSH_SSH naming a fake ssh that records its
arguments, and the ProxyCommand it was given is run.
"""

import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from conftest import MSH, wait_for
from test_auth import PASSWORD, add_user, ok
from tunnelkit import Mezd, Sshd, TcpService, wait_online

USER = "root"            # sshd as the bastion lets root in with a key
BIG = 64 * 1024 * 1024


def msh(home, *args, env=None, input=None, stdin=None, stdout=None,
        timeout=60):
    e = dict(os.environ, MEZITE_HOME=home)
    for k in ("MEZITE_PROXY", "MEZITE_CA", "MSH_SSH"):
        e.pop(k, None)
    e.update(env or {})
    kw = {}
    if stdout is None:
        kw["capture_output"] = True
    else:
        kw["stdout"] = stdout
        kw["stderr"] = subprocess.PIPE
    if stdin is not None:
        kw["stdin"] = stdin
    elif input is None:
        kw["stdin"] = subprocess.DEVNULL
    return subprocess.run([MSH] + list(args), input=input, timeout=timeout,
                          env=e, **kw)


def login(d, home, user=USER):
    """msh login as user, with the password on a pipe."""
    r, w = os.pipe()
    os.write(w, PASSWORD.encode() + b"\n")
    os.close(w)
    try:
        res = subprocess.run(
            [MSH, "login", "-F", str(r), "-p", "127.0.0.1:%d" % d.port,
             user], capture_output=True, timeout=30, pass_fds=(r,),
            env=dict(os.environ, MEZITE_HOME=home))
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def site(daemon, tmp_path_factory):
    """The daemon with a role, a user having it, and a node online."""
    d = daemon
    ok(d.mezctl("role", "add", "sshers", "login", "root", "login", "deploy",
                "node", "ms-*"))
    add_user(d, USER, roles=["sshers"])
    echo = TcpService("echo")
    m = Mezd(d, "ms-web1", {"ssh": "127.0.0.1:22", "echo": echo.addr},
             labels=[("env", "test")]).start()
    try:
        wait_online(d, "ms-web1")
        # A home with a space, quotes and a '%', for the quoting.
        base = str(tmp_path_factory.mktemp("msh"))
        home = os.path.join(base, "it's a \"100%\" home")
        login(d, home)
        yield d, home
    finally:
        m.cleanup()
        echo.close()


# --------------------------------------------------------------------------
# TLS servers on ALPN mezite-ssh


class TlsServer:
    """A TLS server on a loopback port that requires a client
    certificate of the user CA and hands each connection to handle."""

    def __init__(self, pki, user_ca, handle, alpn=("mezite-ssh",)):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.cert, pki.key)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(user_ca)
        self.ctx.set_alpn_protocols(list(alpn))
        self.handle = handle
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.peers = []
        self.errors = []
        self.closing = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        try:
            s = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.errors.append(e)
            c.close()
            return
        try:
            self.peers.append((s.getpeercert()["subject"],
                               s.selected_alpn_protocol()))
            self.handle(s)
        except (ssl.SSLError, OSError) as e:
            self.errors.append(e)
        finally:
            s.close()

    def close(self):
        self.closing = True
        self.sock.close()


def echo_handler(s):
    """Echo until the client's close_notify, then close_notify back."""
    while True:
        b = s.recv(65536)
        if not b:
            break
        s.sendall(b)
    try:
        s.unwrap()
    except (ssl.SSLError, OSError):
        pass


def forward_handler(port):
    """Carry the session's bytes to and from 127.0.0.1:port."""
    def handle(s):
        t = socket.create_connection(("127.0.0.1", port))

        def up():
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    t.sendall(b)
            except OSError:
                pass
            try:
                t.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        th = threading.Thread(target=up, daemon=True)
        th.start()
        try:
            while True:
                b = t.recv(65536)
                if not b:
                    break
                s.sendall(b)
        except OSError:
            pass
        th.join(30)
        t.close()
    return handle


@pytest.fixture
def echo_tls(site, pki):
    _, home = site
    srv = TlsServer(pki, os.path.join(home, "ca.pem"), echo_handler)
    yield srv
    srv.close()


def big_file(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 1 << 20))
            f.write(b)
            h.update(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# --------------------------------------------------------------------------
# msh ls


def test_ls_lists_the_node_with_its_logins(site):
    d, home = site
    r = msh(home, "ls")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NODE", "ONLINE", "LABELS", "LOGINS",
                                "SERVICES"], lines
    row = [l for l in lines if l.startswith("ms-web1 ")]
    assert row, r.stdout
    f = row[0].split()
    assert f[1] == "yes" and f[2] == "env=test", f
    assert sorted(f[3].split(",")) == ["deploy", "root"], f
    assert sorted(f[4].split(",")) == ["echo", "ssh"], f


def test_ls_json(site):
    d, home = site
    r = msh(home, "ls", "-j")
    assert r.returncode == 0, r.stderr
    nodes = {n["name"]: n for n in json.loads(r.stdout)}
    n = nodes["ms-web1"]
    assert n["online"] is True and n["since"] > 0, n
    assert n["labels"] == {"env": "test"}
    assert sorted(n["logins"]) == ["deploy", "root"]
    assert sorted(n["services"]) == ["echo", "ssh"]


def test_ls_without_a_login_says_to_log_in(tmp_path):
    r = msh(str(tmp_path / "none"), "ls")
    assert r.returncode == 1
    assert b"not logged in: run msh login" in r.stderr, r.stderr


def test_ls_with_an_expired_certificate_says_to_log_in(site, tmp_path, pki):
    """A certificate past its time is refused before any connection."""
    _, home = site
    old = str(tmp_path / "old")
    os.mkdir(old, 0o700)
    shutil.copy(os.path.join(home, "key.pem"), old)
    with open(os.path.join(old, "key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, USER)])
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(
        name).public_key(key.public_key()).serial_number(1).not_valid_before(
        datetime.datetime(2020, 1, 1)).not_valid_after(
        datetime.datetime(2020, 1, 2)).sign(key, hashes.SHA256())
    with open(os.path.join(old, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    shutil.copy(os.path.join(home, "proxy"), old)
    r = msh(old, "ls")
    assert r.returncode == 1
    assert re.search(rb"expired .*run msh login", r.stderr), r.stderr


# --------------------------------------------------------------------------
# msh proxy


def test_proxy_carries_64_mb_both_ways(site, echo_tls, tmp_path):
    _, home = site
    src = str(tmp_path / "in")
    dst = str(tmp_path / "out")
    want = big_file(src, BIG)
    with open(src, "rb") as i, open(dst, "wb") as o:
        r = msh(home, "proxy", "127.0.0.1", str(echo_tls.port), stdin=i,
                stdout=o, timeout=300)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(dst) == BIG
    assert sha256_file(dst) == want
    # the server saw the user's certificate and its protocol
    subject, alpn = echo_tls.peers[-1]
    assert ((("commonName", USER),) in subject) and alpn == "mezite-ssh"
    # trusted on first use, as msh login trusts the proxy
    with open(os.path.join(home, "known_proxies")) as f:
        assert "127.0.0.1:%d SHA256:" % echo_tls.port in f.read()


def test_proxy_through_a_pipe_both_ways(site, echo_tls):
    """Pipes on both sides, written and read at once, as ssh does."""
    _, home = site
    e = dict(os.environ, MEZITE_HOME=home)
    p = subprocess.Popen([MSH, "proxy", "-p", "127.0.0.1:%d" % echo_tls.port],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    data = os.urandom(8 * 1024 * 1024)
    got = []
    t = threading.Thread(target=lambda: got.append(p.stdout.read()))
    t.start()
    p.stdin.write(data)
    p.stdin.close()
    t.join(120)
    assert p.wait(60) == 0, p.stderr.read()
    assert got[0] == data


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


def test_proxy_waits_without_spinning(site, echo_tls):
    """Idle both ways, msh proxy sleeps in poll(2)."""
    _, home = site
    e = dict(os.environ, MEZITE_HOME=home)
    p = subprocess.Popen([MSH, "proxy", "127.0.0.1", str(echo_tls.port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    try:
        p.stdin.write(b"ping\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"ping\n"
        t0 = cpu_ticks(p.pid)
        time.sleep(2)
        assert cpu_ticks(p.pid) - t0 <= 5    # 50 ms of CPU in 2 s
    finally:
        p.stdin.close()
    assert p.wait(30) == 0, p.stderr.read()


def test_proxy_ends_with_the_session(site, pki):
    """The server's end ends msh proxy, standard input still open, once
    what the server sent is written out."""
    _, home = site

    def bye(s):
        s.sendall(b"x" * 100000 + b"bye\n")
        s.unwrap()
    srv = TlsServer(pki, os.path.join(home, "ca.pem"), bye)
    e = dict(os.environ, MEZITE_HOME=home)
    p = subprocess.Popen([MSH, "proxy", "127.0.0.1", str(srv.port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    try:
        out = p.stdout.read()
        assert p.wait(30) == 0, p.stderr.read()
        assert out == b"x" * 100000 + b"bye\n"
    finally:
        p.stdin.close()
        srv.close()


def test_proxy_verifies_with_a_ca_file(site, echo_tls, pki):
    _, home = site
    r = msh(home, "proxy", "-C", pki.ca, "127.0.0.1", str(echo_tls.port),
            input=b"hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello\n"
    r = msh(home, "proxy", "-C", pki.rogue_ca, "127.0.0.1",
            str(echo_tls.port), input=b"hello\n")
    assert r.returncode == 255
    assert r.stderr.startswith(b"msh proxy: "), r.stderr


def test_proxy_refuses_a_changed_certificate(site, echo_tls, tmp_path):
    _, home = site
    other = str(tmp_path / "h")
    shutil.copytree(home, other)
    with open(os.path.join(other, "known_proxies"), "a") as f:
        f.write("127.0.0.1:%d SHA256:%s\n" % (echo_tls.port, "0" * 64))
    r = msh(other, "proxy", "127.0.0.1", str(echo_tls.port), input=b"x")
    assert r.returncode == 255
    assert b"has changed" in r.stderr, r.stderr
    assert r.stdout == b""


def test_proxy_refuses_a_server_without_mezite_ssh(site, pki):
    _, home = site
    srv = TlsServer(pki, os.path.join(home, "ca.pem"), echo_handler,
                    alpn=("h2",))
    try:
        r = msh(home, "proxy", "127.0.0.1", str(srv.port), input=b"x")
    finally:
        srv.close()
    assert r.returncode == 255
    assert re.search(rb"^msh proxy: 127\.0\.0\.1:\d+: the proxy does not "
                     rb"serve mezite-ssh", r.stderr), r.stderr


def test_proxy_without_a_login_fails_as_ssh_does(tmp_path):
    r = msh(str(tmp_path / "none"), "proxy", "127.0.0.1", "1")
    assert r.returncode == 255
    assert r.stderr == b"msh proxy: not logged in: run msh login\n"


# --------------------------------------------------------------------------
# msh ssh and msh config, with a fake ssh


FAKE_SSH = """#!/usr/bin/python3
import json, os, sys
with open(os.environ["FAKE_SSH_LOG"], "a") as f:
    f.write(json.dumps(sys.argv) + "\\n")
sys.exit(int(os.environ.get("FAKE_SSH_EXIT", "0")))
"""


@pytest.fixture
def fake_ssh(tmp_path):
    path = str(tmp_path / "fake-ssh")
    with open(path, "w") as f:
        f.write(FAKE_SSH)
    os.chmod(path, 0o755)
    log = str(tmp_path / "argv.log")
    env = {"MSH_SSH": path, "FAKE_SSH_LOG": log}

    def calls():
        with open(log) as f:
            return [json.loads(l) for l in f]
    return path, env, calls


def expand(s, tokens):
    """ssh's expansion of %-tokens."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "%":
            out.append(tokens[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def jump_of(argv, node, port="22"):
    """What the ssh to the node runs, as that ssh would: the words of
    the jump's ssh, its options by name, and its destination."""
    assert argv[1] == "-o" and argv[2].startswith("ProxyCommand="), argv
    cmd = expand(argv[2][len("ProxyCommand="):],
                 {"h": node, "p": port, "%": "%"})
    words = shlex.split(cmd)
    opts = {}
    i = 1
    while words[i] == "-o":
        k, v = words[i + 1].split("=", 1)
        opts[k] = v
        i += 2
    assert words[i:i + 2] == ["-W", "%s:%s" % (node, port)], words
    return words, opts, words[i + 2]


def test_ssh_command_line(site, fake_ssh, echo_tls):
    d, home = site
    path, env, calls = fake_ssh
    r = msh(home, "ssh", "-p", "127.0.0.1:%d" % echo_tls.port, "-v",
            "-o", "Port=2222", "-i", "/k ey", "-lfoo", "deploy@ms-web1",
            "ls", "-l", "a b", env=dict(env, FAKE_SSH_EXIT="7"))
    assert r.returncode == 7, r.stderr
    argv = calls()[-1]
    # the login's SSH key and certificate, for the node's sshd, first
    assert argv[3] == argv[5] == "-o", argv
    files = {}
    for o in argv[4], argv[6]:
        k, v = o.split("=", 1)
        files[k] = expand(shlex.split(v)[0], {"%": "%"})
    real = os.path.realpath(home)
    assert files == {"IdentityFile": os.path.join(real, "id_ed25519"),
                     "CertificateFile": os.path.join(
                         real, "id_ed25519-cert.pub")}
    assert argv[7:] == ["-v", "-o", "Port=2222", "-i", "/k ey", "-lfoo",
                        "deploy@ms-web1", "ls", "-l", "a b"], argv
    words, opts, dest = jump_of(argv, "ms-web1", "2222")
    alias = "mezite-127.0.0.1-%d" % echo_tls.port
    assert words[0] == path
    assert dest == alias
    assert opts["User"] == USER
    assert opts["HostKeyAlias"] == alias
    assert opts["StrictHostKeyChecking"] == "accept-new"
    # the known hosts file, as ssh splits and expands it
    known = expand(shlex.split(opts["UserKnownHostsFile"])[0], {"%": "%"})
    assert known == os.path.join(os.path.realpath(home), "ssh_known_hosts")
    # the jump's own ProxyCommand: msh proxy, by its whole path
    pc = expand(opts["ProxyCommand"], {"%": "%"})
    assert shlex.split(pc) == [os.path.realpath(MSH), "proxy", "127.0.0.1",
                               str(echo_tls.port)]
    # ... which, run by the shell, reaches the server
    e = dict(os.environ, MEZITE_HOME=home)
    res = subprocess.run(["sh", "-c", "exec " + pc], input=b"through sh\n",
                         capture_output=True, timeout=60, env=e)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"through sh\n"


def test_ssh_proxy_is_the_login_s_by_default(site, fake_ssh):
    d, home = site
    _, env, calls = fake_ssh
    r = msh(home, "ssh", "ms-web1", env=env)
    assert r.returncode == 0, r.stderr
    words, opts, dest = jump_of(calls()[-1], "ms-web1")
    pc = expand(opts["ProxyCommand"], {"%": "%"})
    assert shlex.split(pc)[2:] == ["127.0.0.1", str(d.port)]
    assert dest == "mezite-127.0.0.1-%d" % d.port


def test_ssh_refuses_a_jump_and_no_destination(site, fake_ssh):
    _, home = site
    _, env, calls = fake_ssh
    r = msh(home, "ssh", "-J", "x", "ms-web1", env=env)
    assert r.returncode == 255 and b"-J" in r.stderr, r.stderr
    r = msh(home, "ssh", "-v", env=env)
    assert r.returncode == 255 and b"no destination" in r.stderr
    r = msh(home, "ssh", "-o", env=env)
    assert r.returncode == 255
    assert not os.path.exists(env["FAKE_SSH_LOG"])


def test_config_for_the_listed_nodes(site, fake_ssh, echo_tls, tmp_path):
    d, home = site
    r = msh(home, "config")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    alias = "mezite-127.0.0.1-%d" % d.port
    assert "\nHost %s\n" % alias in text
    assert "\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n" % (d.port, USER) \
        in text
    assert "\tStrictHostKeyChecking accept-new\n" in text
    assert re.search(r"\nHost ms-web1\n\tProxyJump %s\n" % re.escape(alias),
                     text), text
    pc = re.search(r"\tProxyCommand (.*)\n", text).group(1)
    # ssh runs it with %h %p of the proxy's HostName and Port
    pc = expand(pc, {"h": "127.0.0.1", "p": str(echo_tls.port), "%": "%"})
    assert shlex.split(pc) == [os.path.realpath(MSH), "proxy", "127.0.0.1",
                               str(echo_tls.port)]
    # ssh itself reads the block: ssh -G says what it makes of it
    conf = str(tmp_path / "config")
    with open(conf, "w") as f:
        f.write(text)
    g = subprocess.run(["ssh", "-F", conf, "-G", "ms-web1"],
                       capture_output=True, text=True, timeout=30)
    assert g.returncode == 0, g.stderr
    assert "proxyjump %s" % alias in g.stdout.splitlines()
    # the login's SSH key and certificate, for the node's sshd (ssh -G
    # shows them before its %-expansion, as ssh_config has them)
    real = os.path.realpath(home).replace("%", "%%")
    assert "identityfile %s" % os.path.join(real, "id_ed25519") in \
        g.stdout.splitlines(), g.stdout
    assert "certificatefile %s" % os.path.join(
        real, "id_ed25519-cert.pub") in g.stdout.splitlines(), g.stdout
    g = subprocess.run(["ssh", "-F", conf, "-G", alias],
                       capture_output=True, text=True, timeout=30)
    assert g.returncode == 0, g.stderr
    got = dict(l.split(" ", 1) for l in g.stdout.splitlines() if " " in l)
    assert got["user"] == USER and got["port"] == str(d.port)
    # the home's quotes and '%' come through ssh's quoting and expansion
    assert got["userknownhostsfile"] == os.path.join(
        os.path.realpath(home), "ssh_known_hosts")
    assert got["hostkeyalias"] == alias
    assert got["stricthostkeychecking"] == "accept-new"


def test_config_with_a_pattern_needs_no_proxy(site):
    _, home = site
    r = msh(home, "config", "-n", "*.internal", "-n", "ms-*",
            "-p", "127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    assert b"\nHost *.internal ms-*\n" in r.stdout
    r = msh(home, "config", "-n", "a b")
    assert r.returncode == 1


# --------------------------------------------------------------------------
# real ssh, with sshd as the bastion behind a TLS terminator


@pytest.fixture
def bastion(site, pki):
    _, home = site
    sshd = Sshd()
    srv = TlsServer(pki, os.path.join(home, "ca.pem"),
                    forward_handler(sshd.port))
    agent_dir = tempfile.mkdtemp(prefix="msa", dir="/tmp")
    sock = os.path.join(agent_dir, "agent")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(sock), 10, what="ssh-agent")
        subprocess.run(["ssh-add", "-q", sshd.key], check=True,
                       env=dict(os.environ, SSH_AUTH_SOCK=sock),
                       capture_output=True, timeout=30)
        yield sshd, srv, sock
    finally:
        agent.terminate()
        agent.wait(10)
        srv.close()
        sshd.close()
        shutil.rmtree(agent_dir, ignore_errors=True)


def test_ssh_reaches_a_host_through_the_bastion(site, bastion):
    """OpenSSH's ssh, with msh ssh's command line: to the bastion (sshd
    behind TLS) by msh proxy, then by direct-tcpip to the node (the
    same sshd, by address); the bastion's key is kept in the Mezite
    directory."""
    _, home = site
    sshd, srv, sock = bastion
    known = os.path.join(home, "ssh_known_hosts")
    if os.path.exists(known):
        os.unlink(known)
    e = dict(os.environ, MEZITE_HOME=home, SSH_AUTH_SOCK=sock)
    e.pop("MSH_SSH", None)
    cmd = [MSH, "ssh", "-p", "127.0.0.1:%d" % srv.port, "-F", "/dev/null",
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
           "-o", "Port=%d" % sshd.port, "root@127.0.0.1",
           "echo", "hello", "from", "'the node'"]
    r = subprocess.run(cmd, capture_output=True, timeout=60, env=e,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from the node\n"
    # (hashed or not, as the system's HashKnownHosts says)
    k = subprocess.run(["ssh-keygen", "-F", "mezite-127.0.0.1-%d" % srv.port,
                        "-f", known], capture_output=True, timeout=30)
    assert k.returncode == 0 and b"ssh-ed25519" in k.stdout, k
    # the exit status is the command's
    r = subprocess.run(cmd[:-4] + ["exit 3"], capture_output=True,
                       timeout=60, env=e, stdin=subprocess.DEVNULL)
    assert r.returncode == 3, r.stderr
