"""
Hostile agents: a client with a valid host certificate that breaks the
stream layer's rules (pushes, streams it may not open, a connection
window past 2^31 - 1, data past its window) or stops reading.  The tunnel
worker closes that session alone, its memory stays bounded, and the
other agents and a normal client are served throughout.
"""

import struct
import subprocess
import threading
import time

import pytest

from conftest import healthz, proc_rss_kb, wait_for
from tunnelkit import (FakeAgent, Mezd, TcpService, connect, connect_popen,
                       frame, nodes, wait_online)

TUNNEL_CONF = """
worker tunnel {
	keepalive 1
	keepalive timeout 5
}
"""

@pytest.fixture
def tdaemon(make_daemon):
    return make_daemon(extra=TUNNEL_CONF)


@pytest.fixture
def good(tdaemon, pki, tmp_path):
    """A well-behaved real agent, which must be served throughout."""
    echo = TcpService("echo")
    m = Mezd(tdaemon, "good-1", {"echo": echo.addr}, keepalive=1,
             timeout=5).start()
    wait_online(tdaemon, "good-1")
    yield m
    m.cleanup()
    echo.close()


def still_served(d):
    r = connect(d, "good-1", "echo", b"fine", timeout=20)
    assert r.stdout == b"fine", r.stderr
    assert nodes(d)["good-1"]["online"]
    assert healthz(d.port)


def online(d, name):
    n = nodes(d).get(name)
    return n is not None and n["online"]


def fake(d, pki, tmp_path, name):
    a = FakeAgent(d, pki, str(tmp_path), name)
    a.pump(lambda: online(d, name), timeout=15)
    return a


@pytest.mark.parametrize("attack", ["push", "open-streams", "window",
                                    "settings-flood"])
def test_agent_breaking_the_rules_loses_only_its_session(tdaemon, good,
                                                         pki, tmp_path,
                                                         attack):
    d = tdaemon
    a = fake(d, pki, tmp_path, "bad-" + attack)
    try:
        if attack == "push":
            # Push is off: a PUSH_PROMISE is a connection error.
            a.s.sendall(frame(5, 4, 1, struct.pack(">I", 2) + b"\x82"))
        elif attack == "open-streams":
            # Only the proxy opens streams: 100,000 HEADERS from the
            # agent on streams of its own, as fast as it can write them.
            burst = b"".join(frame(1, 5, 2 * i + 1001, b"\x82\x84\x87")
                             for i in range(1000))
            try:
                for _ in range(100):
                    a.s.sendall(burst)
            except OSError:
                pass
        elif attack == "window":
            # The connection's window past 2^31 - 1.
            a.s.sendall(frame(8, 0, 0, struct.pack(">I", 0x7fffffff)) * 2)
        elif attack == "settings-flood":
            # SETTINGS, each asking for an ACK, never reading them.
            try:
                a.s.sendall(frame(4, 0, 0) * 100000)
            except OSError:
                pass
        assert a.closed_by_peer(10), "the session survived " + attack
        wait_for(lambda: not online(d, a.name), 10,
                 what="the bad agent offline")
    finally:
        a.close()
    assert proc_rss_kb(d.worker_pid("tunnel.0")) < 64 * 1024
    still_served(d)


def test_agent_that_never_reads_holds_bounded_memory(tdaemon, good, pki,
                                                     tmp_path):
    """A stream to an agent that accepted it and then reads nothing: the
    asker's writes stop at flow control and the socket buffers, the tunnel
    worker holds at most its bounds, and everyone else is served."""
    d = tdaemon
    a = fake(d, pki, tmp_path, "deaf-1")
    try:
        p = connect_popen(d, "deaf-1", "echo", stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        a.pump(lambda: a.connects, timeout=15)
        # From here the agent reads nothing.
        sent = [0]

        def feed():
            chunk = b"\0" * 65536
            try:
                for _ in range(64 * 16):        # 64 MiB at most
                    p.stdin.write(chunk)
                    sent[0] += len(chunk)
            except (BrokenPipeError, OSError, ValueError):
                pass
        t = threading.Thread(target=feed, daemon=True)
        t.start()
        time.sleep(4)
        assert sent[0] < 32 * 1024 * 1024, sent[0]
        rss = proc_rss_kb(d.worker_pid("tunnel.0"))
        assert rss < 64 * 1024, rss
        still_served(d)
        p.kill()
        p.wait(timeout=10)
    finally:
        a.close()
    still_served(d)


def test_agent_sending_past_its_window_is_closed(tdaemon, good, pki,
                                                 tmp_path):
    """DATA of the largest frame size, more than the stream's window,
    without waiting for WINDOW_UPDATE: a flow-control error for that
    session alone."""
    d = tdaemon
    a = fake(d, pki, tmp_path, "flood-1")
    try:
        p = connect_popen(d, "flood-1", "echo", stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        a.pump(lambda: a.connects, timeout=15)
        sid = a.connects[0]
        big = frame(0, 0, sid, b"\0" * 16384)
        try:
            for _ in range(4096):           # 64 MiB, window 256 KiB
                a.s.sendall(big)
        except OSError:
            pass
        assert a.closed_by_peer(10)
        p.kill()
        p.wait(timeout=10)
    finally:
        a.close()
    assert proc_rss_kb(d.worker_pid("tunnel.0")) < 64 * 1024
    still_served(d)


def test_same_agent_reconnecting_replaces_its_old_session(tdaemon, good,
                                                         pki, tmp_path):
    """The same key on a new session (an agent whose old tunnel hangs, or
    that renewed its certificate) takes the name over at once: the old
    session is closed, not left to its keepalive timeout."""
    d = tdaemon
    old = fake(d, pki, tmp_path, "again-1")
    mark = d.log_size()
    new = FakeAgent(d, pki, str(tmp_path), "again-1", same=old)
    try:
        new.pump(lambda: "node again-1 connected again" in
                 d.log()[mark:], timeout=15)
        assert old.closed_by_peer(5), "the old session stayed"
        assert nodes(d)["again-1"]["online"]
    finally:
        old.close()
        new.close()
    still_served(d)
