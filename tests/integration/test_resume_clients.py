"""
msh and mezd resume their TLS sessions: msh from a file beside the
user's certificate, bound to that certificate and proxy; mezd from
memory.  The master says "session resumed" at debug level for each
resumed handshake; the identity the server sees says which certificate
a session carried.  The libtls build of mezited issues no tickets:
there the clients are checked to work, not to resume.
"""

import os
import pwd
import re
import signal
import subprocess

import pytest

from conftest import MEZITED_TLS, MSH, sha256_file, wait_for
from test_auth import add_user
from test_msh_ssh import login
from tunnelkit import TcpService, connect, nodes, wait_online

RESUMES = MEZITED_TLS == "openssl"
RESUMED = r"master(?:\.\d+)?\[\d+\]: conn \d+: [^ ]+: session resumed"

TUNNEL_CONF = """
worker tunnel {
	keepalive 1
	keepalive timeout 3
}
"""


def msh(home, *args):
    env = dict(os.environ, MEZITE_HOME=home)
    for k in ("MEZITE_PROXY", "MEZITE_CA", "MSH_SSH"):
        env.pop(k, None)
    return subprocess.run([MSH] + list(args), capture_output=True,
                          text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def status(d, home, user):
    """msh status: the server must see user, with the certificate kept;
    (resumed, stderr).  Resumed is whether the master resumed a session
    during the command (None on the libtls build)."""
    mark = d.log_size()
    r = msh(home, "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "server sees: user %s " % user in r.stdout, r.stdout
    assert "server sees another certificate" not in r.stdout, r.stdout
    if not RESUMES:
        return None, r.stderr
    return re.search(RESUMED, d.log()[mark:]) is not None, r.stderr


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "mezite"
    return str(h)


def session_path(home):
    return os.path.join(home, "session")


def test_second_msh_command_resumes(daemon, home):
    add_user(daemon, "rs-alice")
    login(daemon, home, "rs-alice")
    assert not os.path.exists(session_path(home))
    resumed, _ = status(daemon, home, "rs-alice")
    assert not resumed
    if not RESUMES:
        return
    st = os.lstat(session_path(home))
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, os.getuid())
    with open(session_path(home)) as f:
        kept = f.read()
    assert re.match(r"mezite-session 1\nproxy 127.0.0.1:%d\n"
                    r"cert SHA256:[0-9a-f]{64}\nca known\n-----BEGIN"
                    % daemon.port, kept), kept
    assert "BEGIN SSL SESSION PARAMETERS" in kept
    resumed, err = status(daemon, home, "rs-alice")
    assert resumed, err
    # Each resumption brings a new ticket, and it is kept.
    resumed, err = status(daemon, home, "rs-alice")
    assert resumed, err
    assert not [n for n in os.listdir(home) if n.startswith(".session")]


def test_login_as_another_user_drops_the_session(daemon, home, tmp_path):
    add_user(daemon, "rs-bob")
    add_user(daemon, "rs-carol")
    login(daemon, home, "rs-bob")
    status(daemon, home, "rs-bob")
    if RESUMES:
        assert os.path.exists(session_path(home))
        with open(session_path(home), "rb") as f:
            bobs = f.read()
    login(daemon, home, "rs-carol")
    assert not os.path.exists(session_path(home))
    # The server sees the new certificate, not the one of the session.
    resumed, _ = status(daemon, home, "rs-carol")
    assert not resumed
    if not RESUMES:
        return
    # bob's session put back: bound to bob's certificate, not offered.
    with open(session_path(home), "wb") as f:
        f.write(bobs)
    os.chmod(session_path(home), 0o600)
    resumed, err = status(daemon, home, "rs-carol")
    assert "was made with another certificate: ignored" in err, err
    assert not resumed
    # And carol's own session, made just now, resumes.
    resumed, err = status(daemon, home, "rs-carol")
    assert resumed, err


def spoil_mode(path):
    os.chmod(path, 0o644)
    return "is accessible by group or others"


def spoil_owner(path):
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return "belongs to another user"


def spoil_text(path):
    with open(path, "r+b") as f:
        f.write(b"mezite-session 2")
    return "is not a session file: ignored"


def spoil_cert(path):
    with open(path) as f:
        text = f.read()
    text = re.sub(r"\ncert SHA256:[0-9a-f]{64}\n",
                  "\ncert SHA256:" + "ab" * 32 + "\n", text)
    with open(path, "w") as f:
        f.write(text)
    return "was made with another certificate: ignored"


def spoil_session(path):
    with open(path) as f:
        text = f.read()
    head, sep, pem = text.partition("-----BEGIN")
    lines = pem.split("\n")
    lines[2] = "A" * len(lines[2])
    with open(path, "w") as f:
        f.write(head + sep + "\n".join(lines))
    return None          # a full handshake, with or without a word


@pytest.mark.parametrize("spoil", [spoil_mode, spoil_owner, spoil_text,
                                   spoil_cert, spoil_session])
def test_spoiled_session_file_is_ignored(daemon, home, spoil):
    user = "rs-" + spoil.__name__.replace("_", "-")
    add_user(daemon, user)
    login(daemon, home, user)
    status(daemon, home, user)
    if not RESUMES:
        return
    word = spoil(session_path(home))
    resumed, err = status(daemon, home, user)
    assert not resumed, err
    if word is not None:
        assert word in err, err
        assert "ignored" in err, err
    # Replaced by a good one, the user's own, which resumes.
    st = os.lstat(session_path(home))
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, os.getuid())
    resumed, err = status(daemon, home, user)
    assert resumed, err
    assert err == "", err


def test_session_file_behind_a_symlink_is_neither_read_nor_written(
        daemon, home, tmp_path):
    add_user(daemon, "rs-link")
    login(daemon, home, "rs-link")
    status(daemon, home, "rs-link")
    if not RESUMES:
        return
    target = tmp_path / "elsewhere"
    os.rename(session_path(home), target)
    before = target.read_bytes()
    os.symlink(target, session_path(home))
    resumed, err = status(daemon, home, "rs-link")
    assert not resumed
    assert "is a symbolic link" in err, err
    assert target.read_bytes() == before
    assert os.path.islink(session_path(home))


def test_session_is_offered_only_to_be_verified_as_it_was(daemon, home,
                                                          pki):
    """Made with known_proxies, a session is not offered when the proxy
    is to be verified with a CA file: nothing is verified when it
    resumes.  A session made with the CA file resumes with it."""
    add_user(daemon, "rs-ca")
    login(daemon, home, "rs-ca")
    status(daemon, home, "rs-ca")
    mark = daemon.log_size()
    r = msh(home, "status", "-C", pki.ca)
    assert r.returncode == 0, r.stderr
    assert re.search(RESUMED, daemon.log()[mark:]) is None
    if not RESUMES:
        return
    with open(session_path(home)) as f:
        assert "\nca SHA256:%s\n" % sha256_file(pki.ca) in f.read()
    mark = daemon.log_size()
    r = msh(home, "status", "-C", pki.ca)
    assert r.returncode == 0, r.stderr
    assert re.search(RESUMED, daemon.log()[mark:]) is not None
    r = msh(home, "status", "-C", pki.rogue_ca)
    assert r.returncode != 0
    assert "server sees" not in r.stdout


def test_msh_proxy_keeps_and_resumes_the_session(daemon, home):
    """msh proxy, as ssh's ProxyCommand, to the bastion: its session
    is kept once the bridge ends, and the next one resumes it."""
    add_user(daemon, "rs-px")
    login(daemon, home, "rs-px")
    r = msh(home, "proxy")
    assert r.returncode == 0, r.stderr
    if not RESUMES:
        return
    assert os.path.exists(session_path(home))
    mark = daemon.log_size()
    r = msh(home, "proxy")
    assert r.returncode == 0, r.stderr
    assert re.search(RESUMED, daemon.log()[mark:]) is not None


def test_logout_removes_the_session(daemon, home):
    add_user(daemon, "rs-out")
    login(daemon, home, "rs-out")
    status(daemon, home, "rs-out")
    r = msh(home, "logout")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(session_path(home))


# --------------------------------------------------------------------------
# mezd


@pytest.fixture
def echo():
    s = TcpService("echo")
    yield s
    s.close()


def kill_master(d):
    """kill -9 the master; return once its successor serves."""
    old = d.worker_pid("master")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: d.running().get("master", {}).get("pid") not in
             (None, old) and d.healthz(), 30, interval=0.2,
             what="the master restarted")


def tunnels_up(m):
    return len(re.findall(r"tunnel \d+: up to", m.log()))


def test_mezd_resumes_after_the_master_is_killed(make_daemon, agents, echo):
    # One master, so that the kill cuts the tunnel it relays.
    d = make_daemon(extra=TUNNEL_CONF, masters=1)
    m = agents(d, "rs-n1", {"echo": echo.addr})
    wait_online(d, "rs-n1")
    assert "TLS session resumed" not in m.log()
    for _ in range(2):
        ups = tunnels_up(m)
        mark = d.log_size()
        kill_master(d)
        wait_for(lambda: tunnels_up(m) > ups, 60, interval=0.2,
                 what="the tunnel dialled again")
        wait_online(d, "rs-n1", timeout=30)
        assert connect(d, "rs-n1", "echo", b"again").stdout == b"again"
        if RESUMES:
            d.wait_log(RESUMED, 30, mark)
            assert "TLS session resumed" in m.log()


@pytest.mark.heavy
def test_mezd_renewal_drops_the_session(make_daemon, agents, echo):
    """Certificates of a minute, renewed at two thirds: the tunnel
    dialled with the renewed certificate is a full handshake (the
    tunnel worker sees the new serial), and its own session resumes
    afterwards."""
    d = make_daemon(edit=lambda t: t.replace(
        'worker auth {\n', 'worker auth {\n\tcertificate ttl 60s\n', 1) +
        TUNNEL_CONF)
    m = agents(d, "rs-n2", {"echo": echo.addr})
    wait_online(d, "rs-n2")
    first = nodes(d)["rs-n2"]["serial"]
    if RESUMES:
        # A session is kept: the tunnel dialled again resumes.
        mark = d.log_size()
        kill_master(d)
        wait_online(d, "rs-n2", timeout=30)
        d.wait_log(RESUMED, 30, mark)
    mark = d.log_size()
    wait_for(lambda: "certificate renewed" in m.log(), 60, interval=0.5,
             what="the certificate renewed")
    wait_for(lambda: nodes(d)["rs-n2"]["serial"] != first, 30,
             interval=0.5, what="the node on the renewed certificate")
    assert connect(d, "rs-n2", "echo", b"renewed").stdout == b"renewed"
    if not RESUMES:
        return
    assert "TLS session dropped: a new certificate" in m.log()
    # Nothing resumed since the renewal: not the old session.
    assert re.search(RESUMED, d.log()[mark:]) is None
    # The renewed certificate's session resumes, as that certificate.
    renewed = nodes(d)["rs-n2"]["serial"]
    mark = d.log_size()
    kill_master(d)
    wait_online(d, "rs-n2", timeout=30)
    d.wait_log(RESUMED, 30, mark)
    assert nodes(d)["rs-n2"]["serial"] == renewed
