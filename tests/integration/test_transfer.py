"""
Large transfers through the relay keep every byte, both directions,
over HTTP/2 and HTTP/1.1.
"""

import hashlib
import json
import os

import pytest

from conftest import BIG_SIZE, run, sha256_file


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
