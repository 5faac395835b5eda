"""
Many clients at once: every one is served, and sessions are spread over
the preforked https workers.
"""

import json
import os
import resource
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from conftest import http_get, tls_connect, wait_for

CLIENTS = 200


def test_200_concurrent_clients_all_succeed_on_both_workers(daemon):
    barrier = threading.Barrier(CLIENTS, timeout=30)

    def one(i):
        barrier.wait()          # start all handshakes together
        st, body, lport = http_get(daemon.port, "/api/v1/whoami",
                                   timeout=30)
        return st, body, lport

    with ThreadPoolExecutor(max_workers=CLIENTS) as ex:
        results = list(ex.map(one, range(CLIENTS)))

    assert len(results) == CLIENTS
    bad = [(st, body[:100]) for st, body, _ in results if st != 200]
    assert not bad, "%d of %d failed: %s" % (len(bad), CLIENTS, bad[:5])
    sessions = [(json.loads(body), lport) for _, body, lport in results]
    for me, lport in sessions:
        assert me["worker"] == "https"
        assert me["client"] == {"address": "127.0.0.1", "port": lport}
    ids = {me["id"] for me, _ in sessions}
    assert len(ids) == CLIENTS, "connection ids not unique"
    https_pids = {w["pid"] for n, w in daemon.workers().items()
                  if n.startswith("https.")}
    seen = {me["worker_pid"] for me, _ in sessions}
    assert seen == https_pids, "load not spread: %s vs %s" % (seen,
                                                             https_pids)
    assert len(seen) == 2
    assert daemon.healthz()


BURST = 800


def test_burst_waits_for_a_backed_up_only_worker(make_daemon):
    """A worker with 256 handoffs queued is passed over for another of its
    type, never refused while it is the only one: with the only https
    worker stopped, a burst that queues hundreds of handoffs for it is
    served in full once it runs again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < BURST + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(hard, BURST + 1024), hard))
    d = make_daemon(prefork=1)
    pid = d.worker_pid("https.0")
    # The daemon's readiness probe may have come before the worker.
    c0 = d.mezctl_json("show", "status")["connections"]
    log0 = d.log_size()
    socks = []

    def one(i):
        s = tls_connect(d.port, alpn=["http/1.1"], timeout=60)
        s.sendall(b"GET /api/v1/whoami HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        return s

    os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(max_workers=32) as ex:
            socks = list(ex.map(one, range(BURST)))
        # Every session is handed over (or would have been refused) by now.

        def routed():
            c = d.mezctl_json("show", "status")["connections"]
            return c["total"] - c0["total"] >= BURST and \
                c["handshakes"] == 0
        wait_for(routed, 30, what="all handshakes")
    finally:
        os.kill(pid, signal.SIGCONT)

    bad = []
    for s in socks:
        with s:
            s.settimeout(30)
            data = b""
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
            except (OSError, socket.timeout) as e:
                bad.append(repr(e))
                continue
            if not data.startswith(b"HTTP/1.1 200"):
                bad.append(data[:60])
    assert not bad, "%d of %d not served: %s" % (len(bad), BURST, bad[:5])
    assert "worker is running, closing" not in d.log()[log0:]
    assert d.status()["connections"]["route_failures"] == \
        c0["route_failures"]
