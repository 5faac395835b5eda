"""
Many clients at once: every one is served, and sessions are spread over
the preforked https workers.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from conftest import http_get

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
