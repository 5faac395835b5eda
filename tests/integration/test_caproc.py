"""The ca process: the only one that holds the TLS private keys.

The master terminates TLS with certificates only and has the ca process
sign; its memory, read through /proc, holds no byte of the private key
after handshakes, while the ca process's does.  A ca process killed is
restarted and given the keys again, and the master goes on serving; one
stopped costs the master a single wait, not one per handshake.
"""

import http.client
import os
import re
import signal
import ssl
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import (MEZITED_TLS, client_context, http_get, peer_cert_der,
                      tls_connect, wait_for)

pytestmark = pytest.mark.skipif(
    MEZITED_TLS != "openssl",
    reason="the libtls engine keeps the keys in the master")

RW = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) rw")


def key_needles(path):
    """The private key's bytes as a process could hold them: the raw
    scalar (either way round), its DER encodings, and a line of its PEM that only this key
    has."""
    with open(path, "rb") as f:
        pem = f.read()
    # a PKCS#8 file: its first lines hold the scalar
    key = serialization.load_pem_private_key(pem, password=None)
    n = (key.curve.key_size + 7) // 8
    scalar = key.private_numbers().private_value.to_bytes(n, "big")
    pkcs8 = key.private_bytes(serialization.Encoding.DER,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    sec1 = key.private_bytes(serialization.Encoding.DER,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
    lines = pem.split(b"\n")
    # OpenSSL's BIGNUMs keep it as little-endian words: reversed bytes
    return {"scalar": scalar, "scalar-bn": scalar[::-1], "pkcs8": pkcs8, "sec1": sec1,
            "pem-1": lines[1], "pem-2": lines[2]}


def memory_holds(pid, needles):
    """Which needles are in pid's readable, writable mappings.  Read in
    pieces; mappings of more than 4 GiB are AddressSanitizer's shadow,
    reserved, not data."""
    found = set()
    step, keep = 16 << 20, max(len(b) for b in needles.values())
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            m = RW.match(line)
            if m is None:
                continue
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            if hi - lo > 4 << 30:
                continue
            tail = b""
            for at in range(lo, hi, step):
                try:
                    mem.seek(at)
                    chunk = tail + mem.read(min(step, hi - at))
                except (OSError, OverflowError, ValueError):
                    tail = b""
                    continue
                for name, b in needles.items():
                    if b in chunk:
                        found.add(name)
                tail = chunk[-keep:]
    return found


def served(d):
    try:
        return http_get(d.port, "/", timeout=5)[0] == 200
    except Exception:   # noqa: BLE001 - not yet
        return False


def test_master_holds_no_private_key(daemon):
    """After handshakes the master's memory has no byte sequence of the
    key; the ca process's has (so the scan finds what is there)."""
    needles = key_needles(daemon.key)
    assert len(needles["scalar"]) == 32
    for _ in range(3):
        status, _, _ = http_get(daemon.port, "/")
        assert status == 200
    master = daemon.worker_pid("master")
    ca = daemon.worker_pid("ca.0")
    assert master != ca
    assert memory_holds(master, needles) == set()
    assert "scalar-bn" in memory_holds(ca, needles)


def test_supervisor_holds_no_private_key(daemon):
    """The supervisor reads the key files when it sends them and wipes
    what carried them."""
    needles = key_needles(daemon.key)
    assert memory_holds(daemon.pid, needles) == set()


def test_ca_killed_is_restarted(fresh_daemon):
    """kill -9 of the ca process: the supervisor restarts it and sends
    it the keys again; the master, still the same, serves after."""
    d = fresh_daemon
    assert served(d)
    master = d.worker_pid("master")
    old = d.worker_pid("ca.0")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: d.running().get("ca.0", {}).get("pid") not in
             (None, old), 30, what="a new ca process")
    wait_for(lambda: served(d), 30, interval=0.2,
             what="a handshake signed by the new ca process")
    assert d.worker_pid("master") == master
    assert "scalar-bn" in memory_holds(d.worker_pid("ca.0"),
                                    key_needles(d.key))
    assert "killed by signal 9" in d.log()


def test_ca_reload_new_key(fresh_daemon, tmp_path):
    """A reload with a new keypair: the ca process gets the new key and
    handshakes present the new certificate."""
    d = fresh_daemon
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
                    "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    with open(tmp_path / "k.pem", "rb") as f:
        key = f.read()
    with open(tmp_path / "c.pem", "rb") as f:
        cert = f.read()
    fd = os.open(d.key, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, key)
    os.close(fd)
    with open(d.cert, "wb") as f:
        f.write(cert)
    start = d.log_size()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"configuration reloaded", 30, start)
    want = ssl.PEM_cert_to_DER_cert(cert.decode())
    wait_for(lambda: peer_cert_der(d.port) == want, 30, interval=0.2,
             what="the new certificate")
    assert served(d)
    assert memory_holds(d.worker_pid("master"), key_needles(d.key)) == set()


def test_ca_stopped(fresh_daemon):
    """SIGSTOP of the ca process while new connections keep coming: the
    master waits for it once (2 s), then fails handshakes at once until
    it answers, so a session it relays is served all along instead of
    waiting 2 s behind each handshake.  After SIGCONT handshakes are
    signed again."""
    d = fresh_daemon
    keep = http.client.HTTPSConnection(
        "127.0.0.1", d.port, timeout=10,
        context=client_context(["http/1.1"]))
    keep.request("GET", "/healthz", headers={"Host": "localhost"})
    assert keep.getresponse().read().strip() == b"ok"
    ca = d.worker_pid("ca.0")
    start = d.log_size()
    done, tried, got = threading.Event(), [0], 0

    def newcomers():
        while not done.is_set():
            try:
                tls_connect(d.port, timeout=5).close()
            except (OSError, ssl.SSLError):
                pass
            tried[0] += 1

    os.kill(ca, signal.SIGSTOP)
    try:
        t = threading.Thread(target=newcomers)
        t.start()
        try:
            end = time.monotonic() + 8
            while time.monotonic() < end:
                keep.request("GET", "/healthz",
                             headers={"Host": "localhost"})
                r = keep.getresponse()
                assert r.status == 200 and r.read().strip() == b"ok"
                got += 1
        finally:
            done.set()
            t.join(30)
        log = d.log()[start:]
    finally:
        os.kill(ca, signal.SIGCONT)
    # Waiting at each handshake would allow 4 in 8 s, and as many
    # requests on the kept session.
    assert tried[0] > 20, "%d handshakes in 8 s" % tried[0]
    assert got > 50, "%d requests on the kept session in 8 s" % got
    # Once per master: each finds the ca stopped on its own.
    assert 1 <= log.count("did not answer") <= d.params["masters"], log
    keep.close()
    wait_for(lambda: served(d), 30, interval=0.2,
             what="a handshake signed after SIGCONT")
    d.wait_log(r"the ca process answers again", 10, start)
    assert d.worker_pid("ca.0") == ca

