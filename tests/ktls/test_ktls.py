"""
Sessions handed over in the kernel (kTLS): run inside a VM booting
Debian's kernel, whose tls module this machine's kernel lacks.
"""

import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from mezite_fixtures import (SLOW_RATE, client_context, healthz, run,
                             sha256_file, tls_connect, wait_for)

KTLS_ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "ktls_echo")
SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
          "TLS_CHACHA20_POLY1305_SHA256"]


@pytest.fixture(scope="module")
def kdaemon(pki, htdocs, request):
    from mezite_fixtures import _start, _finish
    d = _start(pki, htdocs, extra="ktls yes\n")
    yield d
    _finish(d, request)


def curl_json(d, path, *args):
    r = run(["curl", "-sSk", "--noproxy", "*"] + list(args) +
            [d.url + path])
    return json.loads(r.stdout)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("proto", ["--http2", "--http1.1"])
def test_each_suite_goes_to_the_kernel(kdaemon, suite, proto):
    """Every TLS 1.3 suite the kernel supports is handed over with the
    socket, and the metadata says so."""
    before = kdaemon.status()
    w = curl_json(kdaemon, "/api/v1/whoami", proto, "--tlsv1.3",
                  "--tls13-ciphers", suite)
    assert w["mode"] == "ktls", w
    assert w["tls"]["cipher"] == suite
    assert w["tls"]["version"] == "TLSv1.3"
    assert w["alpn"] == ("h2" if proto == "--http2" else "http/1.1")
    after = kdaemon.status()
    assert after["handoffs"]["ktls"] > before["handoffs"]["ktls"]
    # The master is out of the data path.
    assert after["bytes"] == {"in": 0, "out": 0}, after


def test_tls12_goes_to_the_kernel(kdaemon):
    """TLS 1.2: OpenSSL installs the keys itself; both directions."""
    w = curl_json(kdaemon, "/api/v1/whoami", "--http1.1", "--tls-max",
                  "1.2")
    assert w["tls"]["version"] == "TLSv1.2"
    assert w["mode"] == "ktls", w


def test_status_says_ktls(kdaemon):
    st = kdaemon.status()
    assert st["ktls"] is True
    out = kdaemon.mezctl("show", "status").stdout
    assert "kTLS on" in out


def test_download_and_upload_keep_their_sha256(kdaemon, htdocs, tmp_path):
    """20 MB each way through a kernel session."""
    src = os.path.join(htdocs[0], "slow.bin")
    out = tmp_path / "down.bin"
    run(["curl", "-sSk", "--http2", "-o", str(out),
         kdaemon.url + "/slow.bin"], timeout=300)
    assert sha256_file(out) == sha256_file(src)
    r = run(["curl", "-sSk", "--http1.1", "--data-binary", "@" + src,
             kdaemon.url + "/api/v1/digest"], timeout=300)
    assert json.loads(r.stdout)["sha256"] == sha256_file(src)
    assert kdaemon.status()["bytes"] == {"in": 0, "out": 0}


def get_over(d, ctx, path, session=None):
    """GET path over HTTP/1.0 on a connection of its own, resuming
    session if given: (headers, body, the session, whether resumed)."""
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    with ctx.wrap_socket(raw, server_hostname="localhost",
                         suppress_ragged_eofs=False,
                         session=session) as s:
        s.sendall(b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path.encode())
        data = bytearray()
        while True:
            try:
                chunk = s.recv(1 << 16)
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        return head, body, s.session, s.session_reused


def test_resumed_session_goes_to_the_kernel(kdaemon, htdocs):
    """A session resumed from a ticket is handed over like a full one,
    and 20 MB come through it intact.  The full handshake sent its
    tickets under the application key before the handover."""
    src = os.path.join(htdocs[0], "slow.bin")
    ctx = client_context(alpn=["http/1.1"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    head, body, sess, reused = get_over(kdaemon, ctx, "/healthz")
    assert b" 200 " in head and not reused
    assert sess.has_ticket
    before = kdaemon.status()["handoffs"]["ktls"]
    head, body, _, reused = get_over(kdaemon, ctx, "/slow.bin", sess)
    assert reused and b" 200 " in head, head
    assert hashlib.sha256(body).hexdigest() == sha256_file(src)
    assert kdaemon.status()["handoffs"]["ktls"] > before
    assert kdaemon.status()["bytes"] == {"in": 0, "out": 0}


def test_show_connections_says_kernel(kdaemon):
    """An open kernel session is listed, in mode ktls."""
    s = tls_connect(kdaemon.port, alpn=["http/1.1"])
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200" in s.recv(4096)
        conns = kdaemon.mezctl_json("show", "connections")
        mine = [c for c in conns
                if c["client"]["port"] == s.getsockname()[1]]
        assert mine and mine[0]["mode"] == "ktls", conns
        assert mine[0]["state"] == "kernel"
    finally:
        s.close()


def test_server_close_sends_close_notify(kdaemon):
    """When the worker ends the session, the client gets close_notify:
    a ragged EOF would raise here."""
    ctx = client_context(alpn=["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", kdaemon.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost",
                        suppress_ragged_eofs=False)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close"
              b"\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert b"200 OK" in data
    s.close()


def test_client_close_notify_is_answered(kdaemon):
    """The client's close_notify reaches the worker as the end of the
    session, and is answered: unwrap() waits for the server's."""
    s = tls_connect(kdaemon.port, alpn=["http/1.1"])
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in s.recv(4096)
    s.settimeout(10)
    s.unwrap()
    s.close()


def test_keyupdate_closes_only_that_session(kdaemon, htdocs, tmp_path):
    """A client KeyUpdate cannot be followed by this kernel: that session
    is closed, and a download running beside it completes."""
    src = os.path.join(htdocs[0], "slow.bin")
    out = tmp_path / "beside.bin"
    dl = subprocess.Popen(["curl", "-sSk", "--http1.1", "--limit-rate",
                           SLOW_RATE, "-o", str(out),
                           kdaemon.url + "/slow.bin"])
    try:
        time.sleep(0.5)
        p = subprocess.run([KTLS_ECHO, "keyupdate-to", str(kdaemon.port)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "PASS" in p.stdout
        assert dl.wait(timeout=120) == 0
    finally:
        if dl.poll() is None:
            dl.kill()
    assert sha256_file(out) == sha256_file(src)
    assert healthz(kdaemon.port)


def test_auth_worker_serves_sessions_in_the_kernel(kdaemon, pki, tmp_path):
    """The auth worker reads kernel sessions with ktls_recv: a standard
    gRPC client's Health and Login (ALPN h2, by server name), and msh's
    login and status (ALPN mezite-auth), with the master out of the
    data path."""
    sys.path.insert(0, os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "integration"))
    from authclient import Client, keypair
    from test_auth import PASSWORD, add_user, msh

    add_user(kdaemon, "kate")
    before = kdaemon.status()
    _, spki = keypair(str(tmp_path))
    with Client(kdaemon.port, pki.ca) as c:
        assert c.health().status == 1
        assert c.login("kate", PASSWORD, spki).user == "kate"
    home = str(tmp_path / "mezite")
    r = msh(home, "-p", "127.0.0.1:%d" % kdaemon.port, "kate",
            password=PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    r = msh(home, "status")
    assert r.returncode == 0 and "server sees: user kate" in r.stdout, \
        r.stdout + r.stderr
    after = kdaemon.status()
    assert after["handoffs"]["ktls"] >= before["handoffs"]["ktls"] + 3
    assert after["bytes"] == {"in": 0, "out": 0}, after
    assert "-> auth.0" in kdaemon.log()


def test_tunnel_worker_serves_agents_in_the_kernel(pki, htdocs, tmp_path):
    """An agent's tunnel handed over in the kernel: the tunnel worker
    reads it with ktls_recv, and a stream through it keeps its bytes
    with the master out of the data path."""
    sys.path.insert(0, os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "integration"))
    from mezite_fixtures import _start, _finish
    from tunnelkit import Mezd, TcpService, connect, wait_online

    d = _start(pki, htdocs, extra="ktls yes\nworker tunnel {\n"
               "\tkeepalive 1\n\tkeepalive timeout 5\n}\n")
    echo = TcpService("echo")
    m = Mezd(d, "kernel-1", {"echo": echo.addr}, keepalive=1, timeout=5)
    try:
        m.start()
        wait_online(d, "kernel-1", timeout=60)
        data = os.urandom(4 * 1024 * 1024)
        r = connect(d, "kernel-1", "echo", data, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout == data
        st = d.status()
        assert st["handoffs"]["ktls"] >= 2, st
        assert st["bytes"] == {"in": 0, "out": 0}, st
        assert "-> tunnel.0" in d.log()
    finally:
        m.cleanup()
        echo.close()
        _finish(d, None)


def msh_login(d, home, user):
    """msh login of user into the home, trusting the proxy on first
    use; the password on a descriptor, as a script gives it."""
    from mezite_fixtures import MSH
    from test_auth import PASSWORD

    r, w = os.pipe()
    os.write(w, PASSWORD.encode() + b"\n")
    os.close(w)
    try:
        res = subprocess.run([MSH, "login", "-F", str(r), "-p",
                              "127.0.0.1:%d" % d.port, user],
                             capture_output=True, timeout=60, pass_fds=(r,),
                             env=dict(os.environ, MEZITE_HOME=home))
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr


def test_ssh_bastion_in_the_kernel(pki, htdocs, tmp_path):
    """The ssh worker with its session in the kernel: libssh reads and
    writes the kTLS socket; ssh's exit status comes back and scp keeps
    4 MiB intact both ways, with the master out of the data path.  The
    jump host is reached as users reach it, with msh proxy after msh
    login as its ProxyCommand."""
    sys.path.insert(0, os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "integration"))
    from mezite_fixtures import MSH, _start, _finish
    from test_ssh import Bastion

    d = _start(pki, htdocs, extra="ktls yes\nworker tunnel {\n"
               "\tkeepalive 1\n\tkeepalive timeout 5\n}\n")
    b = None
    try:
        b = Bastion(d, pki, tmp_path)
        home = str(tmp_path / "msh")
        msh_login(d, home, "alice")
        proxy = "env MEZITE_HOME=%s %s proxy 127.0.0.1 %d" % (
            home, MSH, d.port)
        b.proxy = lambda user=None: proxy
        r = b.ssh("alice", "db-1", "echo in the kernel; exit 5",
                  timeout=120)
        assert r.returncode == 5, r.stderr
        assert r.stdout == b"in the kernel\n"
        data = os.urandom(4 * 1024 * 1024)
        up = tmp_path / "up.bin"
        up.write_bytes(data)
        argv = b.ssh_argv("alice", "db-1", "x")[1:-2]
        remote = "/tmp/mezite-ktls-scp-%d" % os.getpid()
        r = subprocess.run(["scp", "-q"] + argv + [str(up),
                                                   "root@db-1:" + remote],
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        down = tmp_path / "down.bin"
        r = subprocess.run(["scp", "-q"] + argv + ["root@db-1:" + remote,
                                                   str(down)],
                           capture_output=True, timeout=300)
        os.unlink(remote)
        assert r.returncode == 0, r.stderr
        assert sha256_file(str(down)) == sha256_file(str(up))
        st = d.status()
        assert st["bytes"] == {"in": 0, "out": 0}, st
        assert "-> ssh.0" in d.log()
    finally:
        if b is not None:
            b.close()
        _finish(d, None)


def test_two_masters_hand_over_and_hear_each_end(pki, htdocs, request):
    """With two masters, sessions of both go to the kernel, and each
    session's end reaches the master that handed it over (by the master
    named in its id): both count none active afterwards."""
    from mezite_fixtures import _start, _finish
    d = _start(pki, htdocs, extra="ktls yes\n", masters=2)
    try:
        for _ in range(16):
            w = curl_json(d, "/api/v1/whoami", "--http1.1")
            assert w["mode"] == "ktls", w

        def settled():
            st = d.mezctl_json("show", "status")
            ms = [p for p in st["processes"] if p["type"] == "master"]
            return st if len(ms) == 2 and all(
                m["connections"] == 0 for m in ms) else None
        st = wait_for(settled, 20, what="every session's end heard")
        ms = {p["instance"]: p for p in st["processes"]
              if p["type"] == "master"}
        assert ms[0]["total"] > 0 and ms[1]["total"] > 0, ms
        assert st["handoffs"]["ktls"] >= 16, st["handoffs"]
        assert st["connections"]["active"] == 0, st["connections"]
    finally:
        _finish(d, request)
