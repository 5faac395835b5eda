"""
Resource limits: a client that stops reading must not make the master
buffer the response, and running out of descriptors must not make the
master spin.
"""

import hashlib
import re
import socket
import time

from conftest import (ASAN_BUILD, BIG_SIZE, get_json, proc_cpu_seconds,
                      proc_rss_kb, tls_connect, wait_for)


def test_stalled_reader_does_not_grow_master_memory(daemon):
    master = daemon.worker_pid("master")
    # What the first sessions allocate once is not growth.
    for _ in range(3):
        assert daemon.healthz()
    rss_before = proc_rss_kb(master)
    s = tls_connect(daemon.port, alpn=["http/1.1"])
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        s.settimeout(10)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        assert m and int(m.group(1)) == BIG_SIZE, head
        # Read a little, then stop reading for 3 s.
        while len(body) < 256 * 1024:
            body += s.recv(65536)
        peak = rss_before
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            peak = max(peak, proc_rss_kb(master))
            time.sleep(0.1)
        grew_kb = peak - rss_before
        assert grew_kb < 8 * 1024 or ASAN_BUILD, \
            "master RSS grew by %d KiB while the client stalled" % grew_kb
        # Resume: the whole file arrives intact.
        h = hashlib.sha256(body)
        n = len(body)
        while n < BIG_SIZE:
            b = s.recv(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        assert n == BIG_SIZE, "got %d of %d bytes" % (n, BIG_SIZE)
        assert h.hexdigest() == daemon.files["big.bin"]
    finally:
        s.close()
    assert daemon.healthz()


def test_out_of_descriptors_master_does_not_spin(make_daemon):
    d = make_daemon(prlimit_nofile=64, handshake=30)
    master = d.worker_pid("master")
    with open("/proc/%d/limits" % master) as f:
        assert re.search(r"Max open files\s+64\s+64", f.read())
    mark = d.log_size()
    idle = []
    try:
        for _ in range(100):
            idle.append(socket.create_connection(("127.0.0.1", d.port), 5))
        # The premise: the master did run out of descriptors, or stopped
        # accepting as it was about to.
        d.wait_log(r"Too many open files|open file limit \(64\) reached",
                   start=mark, timeout=5)
        cpu0 = proc_cpu_seconds(master)
        t0 = time.monotonic()
        wait_for(lambda: time.monotonic() - t0 >= 2, 3, interval=0.1)
        used = proc_cpu_seconds(master) - cpu0
        assert used < 0.5, "master used %.2fs CPU in 2s at EMFILE" % used
        assert d.worker_pid("master") == master, "master was restarted"
    finally:
        for s in idle:
            s.close()
    # With the descriptors back, requests succeed again.
    wait_for(lambda: d.healthz(), 10, interval=0.2,
             what="/healthz after closing the idle connections")
    assert get_json(d.port, "/api/v1/whoami")["worker"] == "https"
