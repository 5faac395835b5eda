"""
A master's death takes no worker with it.  The workers and the ca
process serve every master; when the master is killed, the supervisor
starts another and pairs it with each of them.  They keep their pids,
and clients of every ALPN are served again: https, the gRPC auth
service, an agent's tunnel and ssh through the bastion.  A session the
dead master relayed ends for its client as an abort, and the worker
lets go of it: it drains at once afterwards.
"""

import os
import signal
import subprocess

from authclient import pb
from conftest import SLOW_RATE, get_json, http_get, tls_connect, wait_for
from test_auth import client
from test_ssh import TUNNEL_CONF, Bastion
from tunnelkit import wait_online

KINDS = ("https.0", "https.1", "auth.0", "ssh.0", "tunnel.0")


def tunnels_up(agent):
    return agent.log().count(": up to ")


def grpc_serving(d, pki):
    h = pb()["health"]
    with client(d, pki) as c:
        return c.health().status == h.HealthCheckResponse.SERVING


def test_kill9_master_keeps_workers_and_ca(make_daemon, pki, tmp_path):
    # A long drain: a session a worker failed to let go would hold the
    # stop at the end for a minute, past the stop's own wait.  One
    # master, whose every session the kill must cut (test_prefork kills
    # one of two).
    d = make_daemon(extra=TUNNEL_CONF, drain=60, masters=1)
    b = Bastion(d, pki, tmp_path)
    try:
        r = b.ssh("alice", "db-1", "echo before")
        assert r.returncode == 0 and r.stdout == b"before\n", r.stderr
        assert grpc_serving(d, pki)
        before = d.workers()
        keep = [k for k in KINDS + ("ca.0",) if k in before]
        assert set(KINDS) <= set(keep), before
        master = before["master"]["pid"]
        ups = tunnels_up(b.agent)

        # A relayed session held open, and a download under way.
        idle = tls_connect(d.port, alpn=["http/1.1"], timeout=30)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        out = str(tmp_path / "slow.out")
        curl = subprocess.Popen(
            ["curl", "-sS", "-k", "--http1.1", "--limit-rate", SLOW_RATE,
             "--max-time", "60", "-o", out, d.url + "/slow.bin"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0,
                 20, what="the download to start")

        log0 = d.log_size()
        os.kill(master, signal.SIGKILL)

        # The relayed sessions end with their master, as aborts.
        idle.settimeout(30)
        try:
            assert idle.recv(4096) == b""
        except ConnectionResetError:
            pass
        idle.close()
        _, err = curl.communicate(timeout=60)
        assert curl.returncode not in (0, 28), err

        def new_master():
            w = d.workers()["master"]
            if w["pid"] not in (None, 0, master):
                return w
        m = wait_for(new_master, 30, what="a new master")["pid"]
        for k in KINDS:
            # The new master may be paired before the old one's end is
            # read: one left, then.
            d.wait_log(r"%s\[\d+\]: the channel to master\.0 closed; "
                       r"[01] left" % k.replace(".", r"\."), start=log0,
                       timeout=30)
            d.wait_log(r"%s\[\d+\]: paired with master\.0, pid %d" %
                       (k.replace(".", r"\."), m), start=log0, timeout=30)
            d.wait_log(r"master\[%d\]: worker %s up, pid %d" %
                       (m, k.replace(".", r"\."), before[k]["pid"]),
                       start=log0, timeout=30)

        def all_paired():
            ws = d.workers()
            return all(ws[k]["paired"] for k in keep) and ws
        after = wait_for(all_paired, 30, what="every worker paired")
        for k in keep:
            assert after[k]["pid"] == before[k]["pid"], (k, before, after)
        log = d.log()[log0:]
        assert "replacing it" not in log, log[-3000:]
        assert "did not drain" not in log, log[-3000:]

        # Every ALPN is served again, by the same workers.
        wait_for(d.healthz, 30, what="/healthz from the new master")
        pids = {get_json(d.port, "/api/v1/whoami")["worker_pid"]
                for _ in range(10)}
        assert pids <= {before["https.0"]["pid"], before["https.1"]["pid"]}
        assert http_get(d.port, "/healthz", alpn=None)[0] == 200
        assert grpc_serving(d, pki)
        wait_for(lambda: tunnels_up(b.agent) > ups, 60,
                 what="the agent's tunnel back up")
        wait_online(d, "db-1", timeout=60)
        r = b.ssh("alice", "db-1", "echo after")
        assert r.returncode == 0 and r.stdout == b"after\n", r.stderr

        # The status page counts the new master, and its workers.
        status = d.status()
        procs = {(p["type"], p.get("pid")) for p in status["processes"]}
        assert ("master", m) in procs, status["processes"]
        for k in KINDS:
            assert (k.split(".")[0], before[k]["pid"]) in procs, procs
    finally:
        b.close()
    # No worker holds a session of the dead master: they drain at once.
    log1 = d.log_size()
    d.stop(timeout=30)
    assert "did not drain in time" not in d.log()[log1:]
