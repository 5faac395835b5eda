"""
A role's logins, enforced by the node: msh login brings an OpenSSH user
certificate from the auth worker's SSH user CA, its principals the logins
of the user's roles, and msh ssh presents it to the node's sshd, which
trusts that CA (TrustedUserCAKeys, the line mezctl show ssh-ca prints)
and has no authorized key for anyone.  Real OpenSSH ssh and sshd, a real
agent (mezd); the two logins are real accounts made for the test.
"""

import os
import pwd
import re
import shutil
import subprocess
import tempfile

import grpc
import pytest
from cryptography import x509

from authclient import Client, code_of, keypair, pb
from conftest import MSH, free_port, run, wait_for
from test_auth import PASSWORD, add_user, ok
from tunnelkit import SSHD, Mezd, _listening, wait_online

LOGIN_X = "mzlogx"       # the role's login
LOGIN_Y = "mzlogy"       # an account the role does not name
LOGIN_Z = "mzlogz"       # the role's login after the change
NODE = "lg-1"


@pytest.fixture(scope="module")
def accounts():
    """Accounts for the logins, with a shell and no usable password (not
    "!": sshd without PAM takes that for a locked account)."""
    made = []
    for name in (LOGIN_X, LOGIN_Y, LOGIN_Z):
        try:
            pwd.getpwnam(name)
        except KeyError:
            run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", name])
            made.append(name)
    yield
    for name in made:
        subprocess.run(["userdel", "-r", name], capture_output=True)


class NodeSshd:
    """sshd on a loopback port that trusts only the SSH user CA: no
    authorized keys, no passwords; its log in a file."""

    def __init__(self, ca_line):
        self.dir = tempfile.mkdtemp(prefix="mzl", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        hostkey = os.path.join(self.dir, "host_ed25519")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey])
        ca = os.path.join(self.dir, "mezite_user_ca.pub")
        with open(ca, "w") as f:
            f.write(ca_line)
        self.logfile = os.path.join(self.dir, "sshd.log")
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\n"
                    "PidFile %s/sshd.pid\nAuthorizedKeysFile none\n"
                    "TrustedUserCAKeys %s\n"
                    "PermitRootLogin no\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\n"
                    "StrictModes no\nLogLevel VERBOSE\n" % (
                        self.port, hostkey, self.dir, ca))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-E", self.logfile,
                                      "-f", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port), 10, what="sshd")

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def msh_login(d, pki, home, user):
    r, w = os.pipe()
    os.write(w, PASSWORD.encode() + b"\n")
    os.close(w)
    try:
        res = subprocess.run(
            [MSH, "login", "-F", str(r), "-C", pki.ca,
             "-p", "127.0.0.1:%d" % d.port, user],
            capture_output=True, text=True, timeout=30, pass_fds=(r,),
            env=dict(os.environ, MEZITE_HOME=home))
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr
    return res


def msh_ssh(home, dest, command="true", verbose=False):
    env = dict(os.environ, MEZITE_HOME=home)
    env.pop("MSH_SSH", None)
    cmd = [MSH, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null",
           "-o", "LogLevel=%s" % ("DEBUG1" if verbose else "ERROR"),
           "-o", "IdentitiesOnly=yes", dest, command]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env=env, stdin=subprocess.DEVNULL)


def principals(certfile):
    """The principals ssh-keygen -L reads in a certificate."""
    out = run(["ssh-keygen", "-L", "-f", certfile]).stdout
    m = re.search(r"Principals:\s*\n((?:\s{16,}\S+\n)*)", out)
    assert m, out
    return m.group(1).split()


@pytest.fixture
def site(make_daemon, pki, accounts, tmp_path):
    d = make_daemon()
    r = ok(d.mezctl("show", "ssh-ca"))
    line = r.stdout
    assert re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]+=* \S+\n", line), line
    sshd = NodeSshd(line)
    agent = Mezd(d, NODE, {"ssh": sshd.addr}).start()
    try:
        wait_online(d, NODE)
        ok(d.mezctl("role", "add", "lg", "login", LOGIN_X, "node", "lg-*"))
        add_user(d, "carol", roles=["lg"])
        yield d, sshd, str(tmp_path / "home")
    finally:
        agent.cleanup()
        sshd.close()


def test_ssh_ca_is_the_same_after_a_restart_and_the_show_group_reads_it(
        fresh_daemon):
    d = fresh_daemon
    first = ok(d.mezctl("show", "ssh-ca")).stdout
    found = [os.path.join(dp, f) for dp, _, fs in os.walk(d.dir)
             for f in fs if f == "ssh-user-ca.key"]
    assert len(found) == 1, found
    key = found[0]
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert ok(d.mezctl("show", "ssh-ca", user="nobody")).stdout == first
    j = d.mezctl_json("show", "ssh-ca")
    assert j["public_key"] + "\n" == first
    pid = d.worker_pid("auth.0")
    os.kill(pid, 9)
    wait_for(lambda: d.running().get("auth.0", {}).get("pid") not in
             (None, pid), 30, what="auth worker restarted")
    assert ok(d.mezctl("show", "ssh-ca")).stdout == first


def test_role_login_reaches_the_node_another_is_refused(site, pki):
    d, sshd, home = site
    msh_login(d, pki, home, "carol")
    cert = os.path.join(home, "id_ed25519-cert.pub")
    assert principals(cert) == [LOGIN_X]
    out = run(["ssh-keygen", "-L", "-f", cert]).stdout
    assert "Key ID: \"mezite user carol tls-serial " in out, out

    res = msh_ssh(home, "%s@%s" % (LOGIN_X, NODE), "id -un")
    assert res.returncode == 0, res.stderr + sshd.log()
    assert res.stdout == LOGIN_X + "\n"

    res = msh_ssh(home, "%s@%s" % (LOGIN_Y, NODE), verbose=True)
    assert res.returncode == 255, res.stdout + res.stderr
    log = sshd.log()
    assert re.search(r"name is not a listed principal|"
                     r"not in the list of valid principals", log), log
    assert "Accepted publickey for %s" % LOGIN_Y not in log


def test_new_login_after_a_role_change_carries_the_new_logins(site, pki):
    d, sshd, home = site
    msh_login(d, pki, home, "carol")
    cert = os.path.join(home, "id_ed25519-cert.pub")
    assert principals(cert) == [LOGIN_X]
    ok(d.mezctl("role", "add", "lg", "login", LOGIN_Z, "login", LOGIN_Y,
                "node", "lg-*"))
    # The certificate held is not changed: its principals are the old.
    assert principals(cert) == [LOGIN_X]
    msh_login(d, pki, home, "carol")
    assert principals(cert) == [LOGIN_Z, LOGIN_Y]
    res = msh_ssh(home, "%s@%s" % (LOGIN_Z, NODE), "id -un")
    assert res.returncode == 0, res.stderr + sshd.log()
    assert res.stdout == LOGIN_Z + "\n"
    res = msh_ssh(home, "%s@%s" % (LOGIN_X, NODE))
    assert res.returncode == 255, res.stdout + res.stderr


def test_user_without_logins_gets_no_certificate_and_says_why(site, pki):
    d, sshd, home = site
    add_user(d, "dave")
    res = msh_login(d, pki, home, "dave")
    assert "no SSH certificate" in res.stderr and "no login" in res.stderr
    assert not os.path.exists(os.path.join(home, "id_ed25519-cert.pub"))
    assert os.path.exists(os.path.join(home, "id_ed25519"))
    # msh ls still goes through the proxy with the TLS certificate.
    env = dict(os.environ, MEZITE_HOME=home)
    r = subprocess.run([MSH, "ls"], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 0, r.stderr


def test_private_key_is_openssh_format_and_matches(site, pki):
    d, sshd, home = site
    msh_login(d, pki, home, "carol")
    key = os.path.join(home, "id_ed25519")
    assert os.stat(key).st_mode & 0o777 == 0o600
    with open(key) as f:
        assert f.readline() == "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    pub = run(["ssh-keygen", "-y", "-f", key]).stdout.split()[:2]
    with open(key + ".pub") as f:
        assert f.read().split()[:2] == pub
    out = run(["ssh-keygen", "-L", "-f", key + "-cert.pub"]).stdout
    assert "Public key: ED25519-CERT" in out


def test_login_certifies_only_ed25519_and_for_the_tls_window(
        daemon, pki, accounts, tmp_path):
    """Straight through gRPC: an ECDSA key line is refused before the
    password is looked at; an Ed25519 one is certified for the window
    of the TLS certificate of the same login, whose serial the key ID
    names."""
    d = daemon
    ok(d.mezctl("role", "add", "lgw", "login", LOGIN_X))
    add_user(d, "erin", roles=["lgw"])
    k = str(tmp_path / "k")
    run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", k])
    with open(k + ".pub") as f:
        ecdsa = f.read().strip()
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k + "e"])
    with open(k + "e.pub") as f:
        ed = f.read().strip()
    _, spki = keypair(str(tmp_path), "tls")
    a = pb()["auth"]
    with Client(d.port, pki.ca) as c:
        code, msg = code_of(c.auth, "Login", a.LoginRequest(
            user="erin", password="wrong", public_key=spki,
            ssh_public_key=ecdsa))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert "ssh_public_key" in msg and "ssh-ed25519" in msg, msg
        res = c.auth("Login", a.LoginRequest(
            user="erin", password=PASSWORD, public_key=spki,
            ssh_public_key=ed))
    assert res.ssh_certificate.startswith(
        "ssh-ed25519-cert-v01@openssh.com "), res
    assert res.ssh_certificate_note == ""
    with open(k + "e-cert.pub", "w") as f:
        f.write(res.ssh_certificate + "\n")
    out = run(["ssh-keygen", "-L", "-f", k + "e-cert.pub"],
              env=dict(os.environ, TZ="UTC")).stdout
    tls = x509.load_pem_x509_certificate(res.certificate)
    assert 'Key ID: "mezite user erin tls-serial %s"' % res.serial in out
    assert "Valid: from %s to %s" % (
        tls.not_valid_before.strftime("%Y-%m-%dT%H:%M:%S"),
        tls.not_valid_after.strftime("%Y-%m-%dT%H:%M:%S")) in out, out
    assert principals(k + "e-cert.pub") == [LOGIN_X]
