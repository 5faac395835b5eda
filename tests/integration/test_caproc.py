"""The ca process: the only one that holds the TLS private keys.

The master terminates TLS with certificates only and has the ca process
sign; its memory, read through /proc, holds no byte of the private key
after handshakes, while the ca process's does.  A ca process killed is
restarted and given the keys again, and the master goes on serving.
"""

import os
import re
import signal
import ssl
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import MEZITED_TLS, http_get, peer_cert_der, wait_for

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
