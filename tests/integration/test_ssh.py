"""
The ssh worker, the bastion on ALPN mezite-ssh: OpenSSH's ssh and scp jump
through it (-W, as ssh -J does) to a real sshd behind a real agent.  The
jump host is reached with openssl s_client as its ProxyCommand, which
presents the user's certificate from a real login, or none; msh's own
commands are tested in test_msh_ssh.py.  Each test ends with a normal
client served.
"""

import hashlib
import os
import pty
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import termios
import threading
import fcntl
import time

import pytest

from conftest import MSH, healthz, run, wait_for
from test_auth import PASSWORD, add_user, login, ok
from tunnelkit import Mezd, Sshd, wait_online

TUNNEL_CONF = """
worker tunnel {
	keepalive 1
	keepalive timeout 3
}
"""

SSH_OPTS = ["-F", "/dev/null", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]


class Bastion:
    """mezited with an agent "db-1" whose sshd lets root in, and users."""

    def __init__(self, d, pki, tmp):
        self.d, self.pki, self.tmp = d, pki, tmp
        self.sshd = Sshd()
        self.agent = Mezd(d, "db-1", {"ssh": self.sshd.addr},
                          labels=(("env", "prod"),)).start()
        wait_online(d, "db-1")
        ok(d.mezctl("role", "add", "ops", "login", "root", "node", "db-*"))
        ok(d.mezctl("role", "add", "web", "login", "www", "node", "web-*"))
        add_user(d, "alice", roles=["ops"])
        add_user(d, "bob", roles=["web"])
        self.certs = {}

    def cert(self, user):
        if user not in self.certs:
            _, cert, key = login(self.d, self.pki, self.tmp, user,
                                 name="client-" + user)
            self.certs[user] = (cert, key)
        return self.certs[user]

    def proxy(self, user=None):
        """The jump host's ProxyCommand: TLS, ALPN mezite-ssh, a cert."""
        cmd = ("openssl s_client -quiet -verify_quiet -alpn mezite-ssh "
               "-CAfile %s -connect 127.0.0.1:%d" % (self.pki.ca,
                                                     self.d.port))
        if user is not None:
            cert, key = self.cert(user)
            cmd += " -cert %s -key %s" % (cert, key)
        return cmd

    def jump(self, user, cert=True, key=None, verbose=False):
        """The node's ProxyCommand: ssh -W through the bastion as user;
        verbose, it shows the bastion's debug messages, which say why a
        channel was refused."""
        opts = " ".join(SSH_OPTS)
        if verbose:
            opts = opts.replace("LogLevel=ERROR", "LogLevel=DEBUG1")
        if key is not None:
            opts += " -o IdentitiesOnly=yes -i %s" % key
        else:
            opts += " -o IdentitiesOnly=yes -o IdentityFile=/dev/null"
        return "ssh %s -o 'ProxyCommand=%s' -W %%h:%%p %s@bastion" % (
            opts, self.proxy(user if cert else None), user)

    def ssh_argv(self, user, node, command, cert=True, key=None,
                 extra=(), verbose=False):
        return (["ssh"] + SSH_OPTS + ["-i", self.sshd.key,
                                      "-o", "IdentitiesOnly=yes",
                                      "-o", "ProxyCommand=" +
                                      self.jump(user, cert, key, verbose)] +
                list(extra) + ["root@" + node, command])

    def ssh(self, user, node, command, input=b"", timeout=60, **kw):
        return subprocess.run(self.ssh_argv(user, node, command, **kw),
                              input=input, capture_output=True,
                              timeout=timeout)

    def close(self):
        self.agent.cleanup()
        self.sshd.close()


@pytest.fixture
def bastion(make_daemon, pki, tmp_path):
    b = Bastion(make_daemon(extra=TUNNEL_CONF), pki, tmp_path)
    yield b
    b.close()


def audit(d, user):
    return [e for e in d.mezctl_json("show", "audit", "limit", "200")
            if e["name"] == user]


def sessions(d):
    return d.mezctl_json("show", "sessions")


def served(b):
    assert healthz(b.d.port)
    r = b.ssh("alice", "db-1", "echo still here")
    assert r.returncode == 0 and r.stdout == b"still here\n", r.stderr


def test_jump_carries_exit_status_and_stderr(bastion):
    """ssh -W through the bastion with the certificate of a login:
    the command's output, its stderr apart and its exit status come
    through; the login and the session are audited."""
    b = bastion
    r = b.ssh("alice", "db-1", "echo out; echo err >&2; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout == b"out\n"
    assert b"err" in r.stderr
    r = b.ssh("alice", "db-1", "true")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: any(e["type"] == "ssh.session"
                         for e in audit(b.d, "alice")), 10,
             what="the session's end in the audit log")
    events = audit(b.d, "alice")
    logins = [e for e in events if e["type"] == "ssh.login"]
    assert logins and all(e["success"] for e in logins), events
    assert "certificate" in logins[-1]["detail"], logins[-1]
    ends = [e for e in events if e["type"] == "ssh.session"]
    assert "db-1:ssh" in ends[-1]["detail"], ends[-1]
    assert healthz(b.d.port)


def test_registered_key_logs_in_and_a_wrong_one_is_refused(bastion,
                                                            tmp_path):
    """Without a certificate, only a key registered for the user opens
    the bastion (mezctl user key add); another key is refused, and so
    is the certificate of another user."""
    b = bastion
    good, bad = str(tmp_path / "good"), str(tmp_path / "bad")
    for k in (good, bad):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k])
    ok(b.d.mezctl("user", "key", "add", "alice", good + ".pub"))
    r = b.ssh("alice", "db-1", "echo by key", cert=False, key=good)
    assert r.returncode == 0 and r.stdout == b"by key\n", r.stderr
    r = b.ssh("alice", "db-1", "true", cert=False, key=bad)
    assert r.returncode == 255
    assert b"Permission denied" in r.stderr, r.stderr
    r = b.ssh("alice", "db-1", "true", cert=False)
    assert r.returncode == 255
    # bob's certificate names bob: it does not log in alice
    jump = b.jump("alice").replace(b.proxy("alice"), b.proxy("bob"))
    r = subprocess.run(["ssh"] + SSH_OPTS + ["-i", b.sshd.key,
                                             "-o", "ProxyCommand=" + jump,
                                             "root@db-1", "true"],
                       capture_output=True, timeout=60)
    assert r.returncode == 255 and b"Permission denied" in r.stderr
    failed = [e for e in audit(b.d, "alice")
              if e["type"] == "ssh.login" and not e["success"]]
    assert failed, audit(b.d, "alice")
    served(b)


def test_node_the_roles_do_not_allow_is_refused_and_audited(bastion):
    """bob's role allows web-* only: his jump to db-1 is refused with
    the reason shown, the denial is in the audit log, and no stream
    was dialled."""
    b = bastion
    r = b.ssh("bob", "db-1", "true", verbose=True)
    assert r.returncode == 255
    assert b"Remote: db-1:22: access to node db-1 denied" in r.stderr, \
        r.stderr
    wait_for(lambda: any(e["type"] == "ssh.denied"
                         for e in audit(b.d, "bob")), 10,
             what="the denial in the audit log")
    # a node that does not exist is refused the same way
    r = b.ssh("alice", "nowhere-1", "true")
    assert r.returncode == 255
    served(b)


def test_bastion_opens_no_shell_and_only_allowed_services(bastion):
    """A session channel (a shell, a command on the bastion) is refused
    with why; so is a port other than 22, the node's ssh service, to a
    user whose roles name no services (test_ssh_services.py has
    more)."""
    b = bastion
    r = subprocess.run(["ssh", "-o", "LogLevel=DEBUG1"] + SSH_OPTS + [
        "-o", "ProxyCommand=" + b.proxy("alice"), "alice@bastion", "id"],
        capture_output=True, timeout=60)
    assert r.returncode == 255
    assert b"opens no sessions" in r.stderr, r.stderr
    r = b.ssh("alice", "db-1", "true", extra=["-p", "2222"], verbose=True)
    assert r.returncode == 255
    assert b"Remote: db-1:2222: service 2222 is not allowed" in r.stderr, \
        r.stderr
    served(b)


@pytest.mark.heavy
def test_scp_64mb_both_ways_keeps_its_sha256(bastion, tmp_path):
    """scp through the jump, 64 MiB up and down, five times each: the
    digest is the file's every time."""
    b = bastion
    data = os.urandom(64 << 20)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    argv = b.ssh_argv("alice", "db-1", "x")[1:-2]
    for i in range(5):
        remote = "/tmp/mezite-scp-%d-%d" % (os.getpid(), i)
        r = subprocess.run(["scp", "-q"] + argv + [str(src),
                                                   "root@db-1:" + remote],
                           capture_output=True, timeout=180)
        assert r.returncode == 0, r.stderr
        back = tmp_path / ("down-%d.bin" % i)
        r = subprocess.run(["scp", "-q"] + argv + ["root@db-1:" + remote,
                                                   str(back)],
                           capture_output=True, timeout=180)
        os.unlink(remote)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(back.read_bytes()).hexdigest() == digest
        back.unlink()
    served(b)


def test_pty_session_follows_a_window_change(bastion):
    """A terminal through the jump: the node's pty has the client's
    size, and the new size after the client's window changes."""
    b = bastion
    argv = b.ssh_argv("alice", "db-1",
                      "stty size; read x; stty size", extra=["-tt"])
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execvp(argv[0], argv)
    out = b""

    def read_until(pattern, timeout=30):
        nonlocal out
        deadline = time.monotonic() + timeout
        while not re.search(pattern, out) and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return re.search(pattern, out)

    try:
        assert read_until(rb"24 80"), out
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0,
                                                        0))
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.5)
        os.write(fd, b"go\r")
        assert read_until(rb"40 132"), out
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    served(b)


@pytest.mark.heavy
def test_50_concurrent_sessions(bastion):
    """50 sessions at once, each in a session process of its own."""
    b = bastion
    procs = [subprocess.Popen(b.ssh_argv("alice", "db-1",
                                         "echo %d; sleep 1" % i),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for i in range(50)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out == b"%d\n" % i
    served(b)


def test_killed_session_process_ends_only_its_session(bastion):
    """kill -9 of one session's process: that session ends (and is
    audited so), the other one goes on; mezctl kill session ends a
    session too."""
    b = bastion
    long_ = []
    # one after the other, so that the first is the only one at first
    for t in (30, 4):
        p = subprocess.Popen(b.ssh_argv("alice", "db-1",
                                        "echo up; sleep %d; echo done" % t),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout.readline() == b"up\n"
        long_.append(p)
        if t == 30:
            (first,) = sessions(b.d)
    ss = sessions(b.d)
    assert len(ss) == 2 and all(s["user"] == "alice" for s in ss), ss
    assert all(s["channels"] == 1 and "db-1:ssh" in s["targets"]
               for s in ss), ss
    (victim,) = [s for s in ss if s["id"] == first["id"]]
    os.kill(victim["pid"], signal.SIGKILL)
    _, err = long_[0].communicate(timeout=20)
    assert long_[0].returncode != 0
    out, err = long_[1].communicate(timeout=30)
    assert long_[1].returncode == 0 and out == b"done\n", err
    wait_for(lambda: any("signal 9" in e["detail"]
                         for e in audit(b.d, "alice")), 10,
             what="the killed session in the audit log")

    p = subprocess.Popen(b.ssh_argv("alice", "db-1", "echo up; sleep 30"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"up\n"
    (s,) = sessions(b.d)
    r = b.d.mezctl("kill", "session", str(s["id"]))
    assert r.returncode == 0 and "ended" in r.stdout, r.stderr
    p.communicate(timeout=20)
    assert p.returncode != 0
    r = b.d.mezctl("kill", "session", str(s["id"]))
    assert r.returncode != 0 and "no such session" in r.stderr
    wait_for(lambda: sessions(b.d) == [], 10, what="no session left")
    served(b)


def test_revoked_certificate_is_refused(bastion):
    """A revoked certificate is refused at the TLS handshake: the jump
    host is never reached."""
    b = bastion
    cert, _ = b.cert("alice")
    serial = run(["openssl", "x509", "-noout", "-serial", "-in",
                  cert]).stdout.split("=")[1].strip().lower()
    r = b.ssh("alice", "db-1", "true")
    assert r.returncode == 0, r.stderr
    ok(b.d.mezctl("cert", "revoke", serial.lstrip("0")))
    wait_for(lambda: b.ssh("alice", "db-1", "true").returncode == 255, 10,
             what="the revoked certificate refused")
    b.certs.clear()
    served(b)


class TlsBridge:
    """A plain TCP port whose connections go on over TLS with ALPN
    mezite-ssh: for tools that only speak to a TCP port (ssh-audit)."""

    def __init__(self, port, cafile):
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ctx.set_alpn_protocols(["mezite-ssh"])
        self.target = port
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        try:
            raw = socket.create_connection(("127.0.0.1", self.target))
            s = self.ctx.wrap_socket(raw, server_hostname="localhost")
        except OSError:
            c.close()
            return
        socks = [c, s]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 30)
                if not r:
                    return
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        return
                    (s if x is c else c).sendall(data)
        except OSError:
            return
        finally:
            c.close()
            s.close()

    def close(self):
        self.ls.close()


def test_ssh_audit_finds_no_failure(bastion):
    """ssh-audit against the bastion: modern key exchange, host keys,
    ciphers and MACs only; nothing it would fail."""
    b = bastion
    bridge = TlsBridge(b.d.port, b.pki.ca)
    try:
        r = subprocess.run(["ssh-audit", "-n", "-p", str(bridge.port),
                            "127.0.0.1"], capture_output=True, text=True,
                           timeout=120)
    finally:
        bridge.close()
    assert "(gen) banner: SSH-2.0-libssh" in r.stdout, r.stdout + r.stderr
    fails = [line for line in r.stdout.splitlines() if "[fail]" in line]
    assert not fails, r.stdout
    served(b)


def test_control_group_may_list_sessions_not_end_them(bastion):
    b = bastion
    p = subprocess.Popen(b.ssh_argv("alice", "db-1", "echo up; sleep 20"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        r = b.d.mezctl("show", "sessions", user="nobody")
        assert r.returncode == 0 and "alice" in r.stdout, r.stderr
        (s,) = sessions(b.d)
        r = b.d.mezctl("kill", "session", str(s["id"]), user="nobody")
        assert r.returncode == 1 and "permission denied" in r.stderr
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
    served(b)


def test_msh_login_then_msh_ssh_through_the_bastion(bastion, tmp_path):
    """msh login, then msh ssh: OpenSSH, with msh proxy as the jump
    host's ProxyCommand, logs in to the ssh worker with the login's
    certificate and goes on to the node; the worker's host key is kept
    in msh's directory; msh ls lists the node with its logins."""
    b = bastion
    home = str(tmp_path / "home")
    env = dict(os.environ, MEZITE_HOME=home)
    env.pop("MSH_SSH", None)
    r, w = os.pipe()
    os.write(w, PASSWORD.encode() + b"\n")
    os.close(w)
    try:
        res = subprocess.run([MSH, "login", "-F", str(r), "-C", b.pki.ca,
                              "-p", "127.0.0.1:%d" % b.d.port, "alice"],
                             capture_output=True, timeout=30, pass_fds=(r,),
                             env=env)
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([MSH, "ls"], capture_output=True, text=True,
                         timeout=30, env=env)
    assert res.returncode == 0 and "db-1" in res.stdout, res.stderr
    assert "root" in res.stdout
    cmd = [MSH, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=no", "-o",
           "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
           "-o", "IdentitiesOnly=yes", "-i", b.sshd.key, "root@db-1",
           "echo via msh; exit 4"]
    res = subprocess.run(cmd, capture_output=True, timeout=60, env=env,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 4, res.stderr
    assert res.stdout == b"via msh\n"
    known = os.path.join(home, "ssh_known_hosts")
    with open(known) as f:
        assert "ssh-ed25519" in f.read()
    served(b)
