"""
Faults: garbage on the TLS port, stalled handshakes, dead processes and
reloads.  After each, mezited must go on serving.
"""

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (SLOW_RATE, client_hello, get_json,
                      make_keypair, peer_cert_der, pem_to_der, sha256_file,
                      wait_for)


def wait_closed(s, timeout):
    """Read until the peer closes; return seconds it took.  A reset
    counts as closed too."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("server did not close the connection "
                             "within %.1fs" % timeout)
    return time.monotonic() - t0


def counter(d, name):
    return d.status()["connections"][name]


def wait_counter_above(d, name, before, timeout=5):
    return wait_for(
        lambda: (lambda n: n if n > before else None)(counter(d, name)),
        timeout, what="%s to grow above %d" % (name, before))


# --------------------------------------------------------------------------
# garbage and stalls


def test_plaintext_http_on_tls_port_is_closed(daemon):
    before = counter(daemon, "handshake_failures")
    with socket.create_connection(("127.0.0.1", daemon.port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        took = wait_closed(s, 5)
    # refused at once, not left to the handshake timeout
    assert took < 1.5
    assert wait_counter_above(daemon, "handshake_failures", before) == \
        before + 1
    assert daemon.healthz()


def test_64k_random_bytes_are_closed(daemon):
    before = counter(daemon, "handshake_failures")
    junk = os.urandom(64 * 1024)
    with socket.create_connection(("127.0.0.1", daemon.port), 5) as s:
        try:
            s.sendall(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass            # closed on us mid-send: fine
        wait_closed(s, 5)
    wait_counter_above(daemon, "handshake_failures", before)
    assert daemon.healthz()


def test_stalled_half_clienthello_times_out_while_others_are_served(daemon):
    before = counter(daemon, "handshake_failures")
    hello = client_hello()
    s = socket.create_connection(("127.0.0.1", daemon.port), 5)
    try:
        s.sendall(hello[:len(hello) // 2])
        t0 = time.monotonic()
        # While it stalls, others are served ...
        for _ in range(3):
            assert daemon.healthz()
            assert get_json(daemon.port, "/api/v1/whoami")["worker"] == \
                "https"
        # ... and the stalled one is still open.
        r, _, _ = select.select([s], [], [], 0)
        assert not r, "stalled connection closed too early (%.2fs)" % (
            time.monotonic() - t0)
        wait_closed(s, 6)
    finally:
        s.close()
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed <= 4.5, "closed after %.2fs, timeout is 2s" % (
        elapsed)
    assert wait_counter_above(daemon, "handshake_failures", before) == \
        before + 1
    assert daemon.healthz()


# --------------------------------------------------------------------------
# dead processes


def test_kill9_https_worker_is_restarted(fresh_daemon):
    d = fresh_daemon
    old = d.workers()["https.0"]
    other = d.workers()["https.1"]["pid"]
    assert old["restarts"] == 0
    os.kill(old["pid"], signal.SIGKILL)

    def restarted():
        w = d.workers()["https.0"]
        if w["pid"] and w["pid"] != old["pid"] and w["restarts"] >= 1:
            return w
    new = wait_for(restarted, 10, what="https.0 to be restarted")
    assert os.path.exists("/proc/%d" % new["pid"])
    d.wait_log(r"worker https\.0 up, pid %d" % new["pid"])
    text = d.mezctl("show", "workers").stdout
    line = [ln for ln in text.splitlines() if ln.startswith("https.0")]
    assert line and str(new["pid"]) in line[0] and "running" in line[0], \
        text
    # new requests succeed, on both workers
    pids = set()
    for _ in range(10):
        pids.add(get_json(d.port, "/api/v1/whoami")["worker_pid"])
    assert pids == {new["pid"], other}
    assert d.healthz()


class ConnectLoop(threading.Thread):
    """TCP connects to the port in a loop; records refusals."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.port), 5)
                s.close()
                self.ok += 1
            except OSError as e:
                self.errors.append(repr(e))
            time.sleep(0.01)


def test_kill9_master_is_restarted_and_port_never_refuses(fresh_daemon):
    d = fresh_daemon
    old = d.workers()["master"]
    loop = ConnectLoop(d.port)
    loop.start()
    try:
        wait_for(lambda: loop.ok >= 5, 5, what="connect loop to run")
        ok_at_kill = loop.ok
        os.kill(old["pid"], signal.SIGKILL)

        def restarted():
            w = d.workers()["master"]
            if w["pid"] and w["pid"] != old["pid"] and w["restarts"] >= 1:
                return w
        new = wait_for(restarted, 10, what="master to be restarted")
        wait_for(d.healthz, 10, what="/healthz after the master restart")
        wait_for(lambda: loop.ok >= ok_at_kill + 20, 5,
                 what="more connects after the restart")
    finally:
        loop.stop.set()
        loop.join(10)
    assert not loop.errors, "connects failed during the master restart: " \
        "%s" % loop.errors[:5]
    assert os.path.exists("/proc/%d" % new["pid"])
    for _ in range(5):
        me = get_json(d.port, "/api/v1/whoami")
        assert me["worker"] == "https"


def test_master_killed_while_supervisor_stopped_then_reload(fresh_daemon):
    """The supervisor is stopped while the master is killed and a reload
    is asked for: once it runs again it may see the master's channel
    close, the reload and the child's death in any order, and must not
    write to the dead master's channel.  It keeps running, restarts the
    master and serves."""
    d = fresh_daemon
    for _ in range(3):
        old = d.workers()["master"]["pid"]
        os.kill(d.pid, signal.SIGSTOP)
        try:
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: not os.path.exists("/proc/%d/status" % old) or
                     "zombie" in open("/proc/%d/status" % old).read(), 10,
                     what="the master to die")
            os.kill(d.pid, signal.SIGHUP)
        finally:
            os.kill(d.pid, signal.SIGCONT)
        wait_for(lambda: d.workers()["master"]["pid"] not in (None, 0, old),
                 30, interval=0.2, what="a new master")
        wait_for(d.healthz, 30, interval=0.2,
                 what="/healthz after the master restart")
    assert d.proc.poll() is None
    assert "fatal in supervisor" not in d.log()


# --------------------------------------------------------------------------
# reloads


def start_slow_download(d, out, extra=()):
    p = subprocess.Popen(
        ["curl", "-sS", "-k", "--limit-rate", SLOW_RATE, "--max-time",
         "30", "-o", out] + list(extra) + [d.url + "/slow.bin"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 256 *
             1024, 10, what="the slow download to start")
    assert p.poll() is None, "download finished too early"
    return p


def finish_download(p, out, want):
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 0, "curl exited %d: %s" % (p.returncode, stderr)
    assert sha256_file(out) == want


def test_sighup_new_certificate_keeps_running_download(fresh_daemon,
                                                       tmp_path):
    d = fresh_daemon
    old_der = peer_cert_der(d.port)
    assert old_der == pem_to_der(d.cert)
    # a fresh self-signed pair for localhost
    new_cert, new_key = make_keypair(str(tmp_path), "new", "/CN=localhost",
                                     "DNS:localhost,IP:127.0.0.1")
    new_der = pem_to_der(new_cert)
    assert new_der != old_der

    out = str(tmp_path / "slow.bin")
    p = start_slow_download(d, out)
    try:
        # overwrite in place: the key keeps its 0600 mode
        with open(new_cert, "rb") as f, open(d.cert, "wb") as g:
            g.write(f.read())
        with open(new_key, "rb") as f, open(d.key, "wb") as g:
            g.write(f.read())
        assert os.stat(d.key).st_mode & 0o777 == 0o600
        mark = d.log_size()
        os.kill(d.pid, signal.SIGHUP)
        d.wait_log(r"configuration reloaded", start=mark)
        assert p.poll() is None, \
            "download ended before the reload; test proves nothing"
        wait_for(lambda: peer_cert_der(d.port) == new_der, 5,
                 what="new connections to get the new certificate")
        assert p.poll() is None, \
            "download ended before the new certificate was seen"
        finish_download(p, out, d.files["slow.bin"])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert d.healthz()


@pytest.mark.parametrize("breakage", ["syntax", "key-mode"])
def test_sighup_with_bad_config_keeps_old_one(fresh_daemon, breakage):
    d = fresh_daemon
    der = peer_cert_der(d.port)
    pids = {n: w["pid"] for n, w in d.workers().items()}
    if breakage == "syntax":
        d.write_conf(d.conf_text() + "frobnicate the widgets\n")
        why = r"unknown keyword \"frobnicate\""
    else:
        os.chmod(d.key, 0o644)
        why = r"key\.pem"
    mark = d.log_size()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"reload of \S+ failed, keeping the running configuration",
               start=mark)
    assert re.search(why, d.log()[mark:]), d.log()[mark:]
    assert "configuration reloaded" not in d.log()[mark:]
    assert d.proc.poll() is None
    assert d.healthz()
    assert peer_cert_der(d.port) == der
    assert {n: w["pid"] for n, w in d.workers().items()} == pids
    # repair, so that teardown sees a normal daemon
    os.chmod(d.key, 0o600)
    d.write_conf()
