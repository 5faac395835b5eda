"""
Large transfers through the relay keep every byte, both directions,
over HTTP/2 and HTTP/1.1.
"""

import hashlib
import json
import os
import socket

import pytest

from conftest import BIG_SIZE, client_context, run, sha256_file


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("upload") / "up.bin")
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(BIG_SIZE >> 20):
            b = os.urandom(1 << 20)
            h.update(b)
            f.write(b)
    return path, h.hexdigest()


HTTP = [("--http2", "2"), ("--http1.1", "1.1")]


@pytest.mark.parametrize("flag,version", HTTP, ids=["h2", "http1.1"])
def test_post_50mb_digest_keeps_sha256(daemon, upload, flag, version):
    path, digest = upload
    r = run(["curl", "-sS", "-k", flag, "--max-time", "60",
             "-H", "Content-Type: application/octet-stream",
             "--data-binary", "@" + path,
             "-w", "\n%{http_code} %{http_version}",
             daemon.url + "/api/v1/digest"], check=False, timeout=90)
    assert r.returncode == 0, r.stderr
    body, _, tail = r.stdout.rpartition("\n")
    assert tail.split() == ["200", version], r.stdout[-300:]
    got = json.loads(body)
    assert got["bytes"] == BIG_SIZE
    assert got["sha256"] == digest


@pytest.mark.parametrize("flag,version", HTTP, ids=["h2", "http1.1"])
def test_download_50mb_static_file_keeps_sha256(daemon, tmp_path, flag,
                                                version):
    out = str(tmp_path / "big.bin")
    r = run(["curl", "-sS", "-k", flag, "--max-time", "60", "-o", out,
             "-w", "%{http_code} %{http_version}",
             daemon.url + "/big.bin"], check=False, timeout=90)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["200", version]
    assert os.path.getsize(out) == BIG_SIZE
    assert sha256_file(out) == daemon.files["big.bin"]


def test_small_static_file_and_404(daemon):
    r = run(["curl", "-sS", "-k", "-w", "\n%{http_code}",
             daemon.url + "/small.txt"])
    assert r.stdout == "hello from the static root\n\n200"
    r = run(["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}",
             daemon.url + "/no-such-file"])
    assert r.stdout == "404"


def test_slow_reader_gets_the_end_and_close_notify(daemon, htdocs):
    """The worker answers and closes while the client's socket is full:
    the master still holds the end of the response when it must send
    close_notify.  The client gets every byte, then close_notify.  A
    small receive window keeps the master's socket full to the end."""
    _, files = htdocs
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(8)
    raw.connect(("127.0.0.1", daemon.port))
    s = client_context(["http/1.1"]).wrap_socket(
        raw, server_hostname="localhost", suppress_ragged_eofs=False)
    with s:
        s.sendall(b"GET /slow.bin HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        data = bytearray()
        while True:
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                pytest.fail("stalled after %d bytes" % len(data))
            if not b:
                break           # close_notify: a ragged EOF would raise
            data += b
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:100]
    assert hashlib.sha256(body).hexdigest() == files["slow.bin"]
