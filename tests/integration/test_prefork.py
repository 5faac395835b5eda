"""
Several masters (master { prefork N }): each accepts on a socket of its
own in one SO_REUSEPORT group, every worker serves every master, status
and connections are summed over them, max connections holds for the
whole daemon, and one master's death leaves the port accepting.
"""

import os
import signal
import socket
import ssl
import threading
import time

import pytest

from conftest import (MEZITED_TLS, client_context, get_json, healthz,
                      http_get, wait_for)
from test_resume import fetch

MASTERS = 2


def get(d, ctx=None, session=None, timeout=10):
    """/healthz on a connection of its own: (body, session, reused)."""
    _, body, sess, reused = fetch(d, ctx or client_context(
        alpn=["http/1.1"]), "/healthz", session, timeout)
    return body, sess, reused


def masters(d):
    """show status's masters: {instance: its process entry}."""
    st = d.mezctl_json("show", "status")
    return {p["instance"]: p for p in st["processes"]
            if p["type"] == "master"}


def all_paired(d):
    ws = d.workers()
    ms = {w["instance"]: w for w in ws.values() if w["type"] == "master"}
    return len(ms) == MASTERS and all(m["pid"] for m in ms.values()) and all(
        w["paired"] for w in ws.values()
        if w["type"] != "master" and w["pid"] and not w["draining"])


@pytest.fixture
def two(make_daemon):
    d = make_daemon(masters=MASTERS)
    wait_for(lambda: all_paired(d), 10, what="every worker paired")
    return d


def test_every_master_serves(two):
    d = two
    ws = d.workers()
    assert {"master.0", "master.1"} <= set(ws), sorted(ws)
    assert ws["master.0"]["pid"] != ws["master.1"]["pid"]
    for _ in range(60):
        assert get(d)[0] == b"ok"
    ms = masters(d)
    assert sorted(ms) == [0, 1], ms
    # The kernel spread the connections; each master counts its own.
    assert all(m["total"] > 0 for m in ms.values()), ms
    assert sum(m["total"] for m in ms.values()) >= 60
    st = d.mezctl_json("show", "status")
    assert st["connections"]["total"] == sum(m["total"]
                                            for m in ms.values())
    # The text names each master.
    out = d.mezctl("show", "status").stdout
    assert "master.0" in out and "master.1" in out, out
    out = d.mezctl("show", "workers").stdout
    assert "master.0" in out and "master.1" in out, out
    # The web status, as the https worker sums its masters' answers.
    web = get_json(d.port, "/api/v1/status")
    assert sorted(p["instance"] for p in web["processes"]
                  if p["type"] == "master") == [0, 1], web["processes"]
    st, page, _ = http_get(d.port, "/")
    assert st == 200 and b"<td>master.1</td>" in page, page[-2000:]


def test_connections_of_every_master_are_listed(two):
    d = two
    ctx = client_context(alpn=["http/1.1"])
    held = []
    try:
        for _ in range(30):
            raw = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            held.append(ctx.wrap_socket(raw, server_hostname="localhost"))
        conns = d.mezctl_json("show", "connections")
        ids = [c["id"] for c in conns]
        assert len(ids) >= len(held), conns
        assert len(set(ids)) == len(ids), ids
        # A connection's id names the master that took it (bits 63..56).
        assert {i >> 56 for i in ids} == {0, 1}, [hex(i) for i in ids]
    finally:
        for s in held:
            s.close()


def test_max_connections_hold_for_the_whole_daemon(make_daemon):
    """max connections 4 with two masters: each takes 2, so no more than
    4 handshakes complete however the kernel spreads them."""
    d = make_daemon(masters=MASTERS, edit=lambda t: t.replace(
        "max connections 1000\n", "max connections 4\n"))
    wait_for(lambda: all_paired(d), 10, what="every worker paired")
    ctx = client_context(alpn=["http/1.1"])
    done, lock, held = [], threading.Lock(), []

    def one():
        try:
            raw = socket.create_connection(("127.0.0.1", d.port), timeout=4)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except (OSError, ssl.SSLError):
            return
        with lock:
            done.append(s)

    try:
        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        held = list(done)
        assert 1 <= len(held) <= 4, len(held)
        st = d.mezctl_json("show", "status")
        assert st["connections"]["active"] <= 4 + MASTERS, st["connections"]
    finally:
        for s in held:
            s.close()
    # The ones kept waiting are served once there is room.
    wait_for(lambda: healthz(d.port, 5), 20, what="a client served")


def test_killed_master_leaves_the_port_accepting(two):
    """kill -9 of one master under a stream of new connections: no
    connection is refused, only those the dead master held fail, and
    it comes back paired with every worker."""
    d = two
    before = d.workers()
    victim = before["master.1"]["pid"]
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"ok": 0, "refused": 0, "cut": 0, "after": 0}
    killed = threading.Event()

    def load():
        ctx = client_context(alpn=["http/1.1"])
        while not stop.is_set():
            try:
                body = get(d, ctx, timeout=15)[0]
                what = "ok" if body == b"ok" else "cut"
            except ConnectionRefusedError:
                what = "refused"
            except (OSError, ssl.SSLError):
                what = "cut"
            with lock:
                counts[what] += 1
                if what == "ok" and killed.is_set():
                    counts["after"] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: counts["ok"] >= 40, 30, what="load running")
        os.kill(victim, signal.SIGKILL)
        killed.set()
        wait_for(lambda: d.workers().get("master.1", {}).get("pid")
                 not in (None, 0, victim), 30, what="master.1 restarted")
        wait_for(lambda: all_paired(d), 15, what="paired again")
        with lock:
            at = counts["after"]
        wait_for(lambda: counts["after"] >= at + 40, 30,
                 what="served after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert counts["refused"] == 0, counts
    # Only connections the dead master held can have been cut: at most
    # one per client thread.
    assert counts["cut"] <= len(threads), counts
    after = d.workers()
    for name, w in before.items():
        if not name.startswith("master"):
            assert after[name]["pid"] == w["pid"], name
    assert after["master.0"]["pid"] == before["master.0"]["pid"]
    # The new master takes its share again.
    for _ in range(40):
        assert get(d)[0] == b"ok"
    assert masters(d)[1]["total"] > 0


def test_stopped_master_is_replaced(two):
    """SIGSTOP of one master: its loop answers no ping, so the
    supervisor kills it and the next master takes the connections that
    waited in its socket.  No client is refused or left hanging."""
    d = two
    before = d.workers()
    victim = before["master.1"]["pid"]
    results, lock = [], threading.Lock()

    def one():
        try:
            what = "ok" if get(d, timeout=40)[0] == b"ok" else "cut"
        except ConnectionRefusedError:
            what = "refused"
        except (OSError, ssl.SSLError) as e:
            what = "cut: %r" % e
        with lock:
            results.append(what)

    os.kill(victim, signal.SIGSTOP)
    try:
        # Some of these land in the stopped master's socket and wait.
        threads = [threading.Thread(target=one) for _ in range(24)]
        for t in threads:
            t.start()
        wait_for(lambda: d.workers()["master.1"]["pid"]
                 not in (0, victim), 40, what="master.1 replaced")
        for t in threads:
            t.join(timeout=60)
    finally:
        try:
            os.kill(victim, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert results == ["ok"] * len(threads), results
    assert "master.1 has not answered for" in d.log()
    after = d.workers()
    assert after["master.0"]["pid"] == before["master.0"]["pid"]
    wait_for(lambda: all_paired(d), 15, what="paired again")


@pytest.mark.skipif(MEZITED_TLS != "openssl",
                    reason="the libtls engine resumes no session")
def test_a_session_resumes_on_either_master(two):
    d = two
    ctx = client_context(alpn=["http/1.1"])
    body, sess, reused = get(d, ctx)
    assert (body, reused) == (b"ok", False)
    start = {i: m["total"] for i, m in masters(d).items()}
    for _ in range(24):
        body, new, reused = get(d, ctx, session=sess)
        assert (body, reused) == (b"ok", True)
        sess = new
    end = {i: m["total"] for i, m in masters(d).items()}
    # Both masters opened tickets they may not have sealed themselves.
    assert all(end[i] > start[i] for i in start), (start, end)


def test_reload_keeps_the_number_of_masters(two):
    d = two
    pids = {n: w["pid"] for n, w in d.workers().items()
            if n.startswith("master")}
    d.write_conf(text=d.conf_text().replace("master {\n\tprefork 2\n",
                                            "master {\n\tprefork 3\n"))
    d.mezctl("reload")
    wait_for(lambda: "the number of masters changes only on restart"
             in d.log(), 10, what="the warning")
    time.sleep(0.5)
    assert {n: w["pid"] for n, w in d.workers().items()
            if n.startswith("master")} == pids
    assert healthz(d.port)
