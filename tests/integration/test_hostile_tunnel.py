"""
Hostile agents: a client with a valid host certificate that breaks the
stream layer's rules (pushes, streams it may not open, a connection
window past 2^31 - 1, data past its window) or stops reading.  The tunnel
worker closes that session alone, its memory stays bounded, and the
other agents and a normal client are served throughout.

And a hostile world around the tunnel worker: it is stopped (SIGSTOP)
while agents come and streams are open, it runs out of descriptors,
an agent with a hundred streams dies, dials come in floods, agents come
and go by the hundred.  Each test ends with a normal client served.
"""

import os
import re
import signal
import struct
import subprocess
import threading
import time

import pytest

from conftest import ASAN_BUILD, healthz, http_get, proc_rss_kb, wait_for
from test_tunnel import sign_node_cert
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


@pytest.fixture
def echo_svc():
    s = TcpService("echo")
    yield s
    s.close()


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


# --------------------------------------------------------------------------
# the world around the tunnel worker


def node_creds(d, tmp_path, name):
    """A node certificate from the host CA, as a Join would give."""
    now = int(time.time())
    return sign_node_cert(d, str(tmp_path), name, now - 60, now + 3600)


def open_stream(d, node, first):
    """mezctl connect to an echo service, with first echoed back."""
    p = connect_popen(d, node, "echo", stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(first)
    p.stdin.flush()
    assert p.stdout.read(len(first)) == first, p.stderr.read()
    return p


def finish(p, rest, timeout=30):
    """The stream's last bytes, echoed; how it ended."""
    out, err = p.communicate(rest, timeout=timeout)
    return out, err, p.returncode


def worker_fds(pid):
    """The descriptors a process holds: how many, and the highest."""
    fds = [int(f) for f in os.listdir("/proc/%d/fd" % pid)]
    return len(fds), max(fds)


def nofile(pid):
    """A process's RLIMIT_NOFILE, (soft, hard)."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open file limit for %d" % pid)


def set_nofile(pid, soft, hard):
    """prlimit, as the process's own user: root may lack CAP_SYS_RESOURCE
    (in a container), and the soft limit is the owner's to move below the
    hard one."""
    with open("/proc/%d/status" % pid) as f:
        uid = [int(x) for x in f.read().split("Uid:")[1].split()[:1]][0]
    cmd = ["prlimit", "--pid", str(pid), "--nofile=%d:%d" % (soft, hard)]
    if uid != os.getuid():
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" %
               _gid(pid), "--clear-groups", "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _gid(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(f.read().split("Gid:")[1].split()[0])


def test_stopped_tunnel_worker_resumes_where_it_was(tdaemon, good, pki,
                                                    tmp_path):
    """SIGSTOP of the tunnel worker for 3 s (under the keepalive
    timeouts, 5 s on both sides) while five streams are open, their
    clients still write, and five new agents connect: the master serves
    HTTPS meanwhile; after SIGCONT every stream completes with its bytes
    in order, the agents that waited are registered, and show nodes says
    so."""
    d = tdaemon
    pid = d.worker_pid("tunnel.0")
    streams = [open_stream(d, "good-1", b"before %d;" % i) for i in range(5)]
    creds = [node_creds(d, tmp_path, "late-%d" % i) for i in range(5)]
    late = []
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for i, p in enumerate(streams):
            p.stdin.write(b" during %d;" % i)
            p.stdin.flush()
        for i, c in enumerate(creds):
            late.append(FakeAgent(d, pki, str(tmp_path), "late-%d" % i,
                                  creds=c))
        # The master does not wait for its worker.
        assert healthz(d.port, timeout=2)
        st, body, _ = http_get(d.port, "/small.txt", timeout=2)
        assert st == 200 and body == b"hello from the static root\n"
        assert time.monotonic() - t0 < 3
        time.sleep(3 - (time.monotonic() - t0))
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        for i, p in enumerate(streams):
            out, err, rc = finish(p, b" after %d" % i)
            assert rc == 0, err
            assert out == b" during %d; after %d" % (i, i), out
        for a in late:
            a.pump(lambda: online(d, a.name), timeout=15)
        ns = nodes(d)
        assert all(ns["late-%d" % i]["online"] for i in range(5)), ns
        assert ns["good-1"]["online"]
        wait_for(lambda: nodes(d)["good-1"]["streams"] == 0, 10,
                 what="good-1's streams gone")
        assert d.worker_pid("tunnel.0") == pid
    finally:
        for a in late:
            a.close()
    still_served(d)


def test_stopped_tunnel_worker_past_the_keepalive(tdaemon, good, echo_svc):
    """SIGSTOP of the tunnel worker for 7 s, past an agent's keepalive
    timeout (3 s): the agent gives up its tunnel and connects again, its
    new session waits for the worker, and once the worker runs again the
    node is online on it, and served.  (The master replaces a worker
    that takes no session for 10 s: 7 s is under that.)"""
    d = tdaemon
    m = Mezd(d, "ka-1", {"echo": echo_svc.addr}, keepalive=1,
             timeout=3).start()
    try:
        wait_online(d, "ka-1")
        first = nodes(d)["ka-1"]["since"]
        pid = d.worker_pid("tunnel.0")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(7)
            assert healthz(d.port, timeout=2)
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: online(d, "ka-1"), 20, interval=0.2,
                 what="ka-1 online again")
        assert d.worker_pid("tunnel.0") == pid
        r = connect(d, "ka-1", "echo", b"back", timeout=20)
        assert r.stdout == b"back", r.stderr
        # On a new session: the old one ended with the agent's timeout.
        assert nodes(d)["ka-1"]["since"] > first
    finally:
        m.cleanup()
    still_served(d)


def test_tunnel_worker_out_of_descriptors(tdaemon, good, pki, tmp_path):
    """The tunnel worker's descriptor limit lowered (prlimit) to a little
    above what it holds, three streams open: the dials past it are
    refused at once with the reason, the worker says so once (then at
    most every 10 s), not once per dial; agents handed over while it has
    no descriptor left are closed by the master, the worker acks them
    and logs them once, and its channel to the master stays in step.
    The streams open meanwhile go on, and once they close or the limit
    is raised, dials succeed again."""
    d = tdaemon
    pid = d.worker_pid("tunnel.0")
    soft, hard = nofile(pid)
    streams = [open_stream(d, "good-1", b"s%d;" % i) for i in range(3)]
    extra = [node_creds(d, tmp_path, "nofd-%d" % i) for i in range(4)]
    mark = d.log_size()
    n, top = worker_fds(pid)
    # Two free: a stream's socket pair takes two, then keeps one.
    set_nofile(pid, max(top + 1, n + 2), hard)
    kept = []
    late = []
    try:
        refused = 0
        for i in range(6):
            p = connect_popen(d, "good-1", "echo", stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                p.stdin.write(b"x")
                p.stdin.flush()
            except BrokenPipeError:
                pass        # refused, and gone before it read
            if p.stdout.read(1) == b"x":
                kept.append(p)
                continue
            try:
                p.stdin.close()
            except BrokenPipeError:
                pass
            err = p.stderr.read()
            p.wait(timeout=20)
            assert p.returncode == 1, err
            assert b"out of descriptors" in err, err
            refused += 1
        assert refused >= 4 and len(kept) <= 2, (refused, len(kept))
        # Once, not once per refused dial.
        assert len(re.findall(r"streams refused: socketpair",
                              d.log()[mark:])) == 1, d.log_tail()
        # The last free descriptor, if any, goes to a session; the next
        # sessions find none.
        n, top = worker_fds(pid)
        if n < nofile(pid)[0]:
            a = FakeAgent(d, pki, str(tmp_path), "nofd-0", creds=extra[0])
            late.append(a)
            a.pump(lambda: online(d, "nofd-0"), timeout=15)
        for i in range(1, 4):
            a = FakeAgent(d, pki, str(tmp_path), "nofd-%d" % i,
                          creds=extra[i])
            late.append(a)
            assert a.closed_by_peer(10), "a session with no descriptor"
        assert len(re.findall(r"out of descriptors: \d+ sessions? handed "
                              r"over closed", d.log()[mark:])) == 1, \
            d.log_tail()
        assert d.worker_pid("tunnel.0") == pid
        # What was open goes on.
        for i, p in enumerate(streams):
            p.stdin.write(b" still %d;" % i)
            p.stdin.flush()
            assert p.stdout.read(len(b" still %d;" % i)) == \
                b" still %d;" % i
        assert healthz(d.port)
        # Streams that close give their descriptors back.
        for i, p in enumerate(streams):
            out, err, rc = finish(p, b" end")
            assert rc == 0 and out == b" end", err
        r = connect(d, "good-1", "echo", b"room again", timeout=20)
        assert r.returncode == 0 and r.stdout == b"room again", r.stderr
    finally:
        set_nofile(pid, soft, hard)
        for p in kept + streams:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for a in late:
            a.close()
    # The limit raised: many at once.
    more = [open_stream(d, "good-1", b"m%d;" % i) for i in range(20)]
    for i, p in enumerate(more):
        out, err, rc = finish(p, b"!")
        assert rc == 0 and out == b"!", err
    assert d.worker_pid("tunnel.0") == pid
    still_served(d)


def test_agent_killed_with_100_streams_open(tdaemon, good, echo_svc):
    """kill -9 of an agent with 100 streams open: every mezctl ends, with
    exit 1 and "the stream was cut" (not a hang, nor a clean end); the
    tunnel worker's memory comes back to within 8 MiB of where it was
    before the streams; the agent, started again, serves a new stream."""
    d = tdaemon
    m = Mezd(d, "many-1", {"echo": echo_svc.addr}, keepalive=1,
             timeout=5).start()
    try:
        wait_online(d, "many-1")
        pid = d.worker_pid("tunnel.0")
        assert connect(d, "many-1", "echo", b"warm").stdout == b"warm"
        before = proc_rss_kb(pid)
        streams = [open_stream(d, "many-1", b"%d;" % i)
                   for i in range(100)]
        # Some bytes in flight on each.
        for p in streams:
            p.stdin.write(b"x" * 4096)
            p.stdin.flush()
        assert nodes(d)["many-1"]["streams"] == 100
        m.signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        ends = [None] * len(streams)

        def end(i):
            # Its input stays open: a mezctl whose input has ended cannot
            # tell a cut stream from an ended one (mezctl(8)).
            p = streams[i]
            try:
                p.wait(timeout=20)
                ends[i] = (p.stdout.read(), p.stderr.read())
            except subprocess.TimeoutExpired:
                p.kill()
                ends[i] = ("hung", p.communicate()[1])
            p.stdin.close()
        threads = [threading.Thread(target=end, args=(i,))
                   for i in range(len(streams))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        for p, e in zip(streams, ends):
            assert e is not None and e[0] != "hung", e
            assert p.returncode == 1, e
            assert b"the stream was cut" in e[1] or \
                b"stream: " in e[1], e[1]
        wait_online(d, "many-1", timeout=10, online=False)
        # The worker gave back what the streams held.
        # (Not on AddressSanitizer's allocator, which keeps it.)
        if not ASAN_BUILD:
            wait_for(lambda: proc_rss_kb(pid) < before + 8 * 1024, 10,
                     what="the tunnel worker's memory back (was %d KiB, "
                     "now %d)" % (before, proc_rss_kb(pid)))
        m.start()
        wait_online(d, "many-1", timeout=30)
        r = connect(d, "many-1", "echo", b"fresh", timeout=20)
        assert r.returncode == 0 and r.stdout == b"fresh", r.stderr
    finally:
        m.cleanup()
    still_served(d)


def test_flood_of_dials_is_answered(tdaemon, good, pki, tmp_path):
    """Waves of 40 concurrent mezctl connect, 400 in all, to a node that
    does not exist and to a service the agent refuses: each ends within
    its 20 s with exit 1, with the right reason, or refused by the
    control socket (8 connections per user), so the dials waiting in the
    tunnel worker stay far under its table's bound (TUNNEL_DIALS_MAX,
    4096); its memory stays under 64 MiB.  Then dials to an agent that
    answers none: each answered within 15 s.  A normal dial succeeds at
    the end."""
    d = tdaemon
    pid = d.worker_pid("tunnel.0")
    answered = {"node": 0, "service": 0}
    for wave in range(10):
        procs = []
        for i in range(40):
            kind = "node" if i % 2 else "service"
            args = ("nosuch-%d" % i, "echo") if kind == "node" else \
                ("good-1", "nope-%d" % i)
            procs.append((kind, connect_popen(
                d, *args, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        for kind, p in procs:
            _, err = p.communicate(timeout=20)
            assert p.returncode == 1, err
            if kind == "node" and b"no such node" in err:
                answered["node"] += 1
            elif kind == "service" and b"no such service" in err:
                answered["service"] += 1
            else:
                assert b"closed the connection" in err or \
                    b"too many" in err, err
        assert proc_rss_kb(pid) < 64 * 1024
    assert answered["node"] >= 40 and answered["service"] >= 40, answered
    # Dials to an agent that answers none of them wait in the table, at
    # most 8 of root's: each is answered when the dial times out (10 s)
    # or the silent agent's session does (5 s), whichever comes first.
    a = fake(d, pki, tmp_path, "mute-1")
    try:
        t0 = time.monotonic()
        procs = [connect_popen(d, "mute-1", "echo",
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE) for _ in range(16)]
        for p in procs:
            _, err = p.communicate(timeout=20)
            assert p.returncode == 1, err
            assert re.search(rb"did not answer|tunnel closed|closed the "
                             rb"connection|too many|offline", err), err
        assert time.monotonic() - t0 < 15
    finally:
        a.close()
    assert d.worker_pid("tunnel.0") == pid
    still_served(d)


class ChurnAgent(FakeAgent):
    """A fake agent that notes when it has answered the hello."""
    helloed = False

    def on(self, ev):
        super().on(ev)
        if type(ev).__name__ == "RequestReceived":
            self.helloed = True


def test_agents_churning_by_the_hundred(tdaemon, good, pki, tmp_path):
    """600 agent sessions of 100 nodes, four at a time, each closed as
    soon as it connected (a third of them before their Hello, the rest
    after): the registry ends with no churned node online and at most
    the 100 remembered offline (the offline list is bounded at
    TUNNEL_OFFLINE_MAX, 4096), the tunnel worker's memory comes back to
    within 16 MiB of where it was, and a normal agent is served."""
    d = tdaemon
    pid = d.worker_pid("tunnel.0")
    creds = [node_creds(d, tmp_path, "churn-%d" % i) for i in range(100)]
    before = proc_rss_kb(pid)
    errors = []

    def churn(k):
        try:
            for i in range(k, 600, 4):
                n = i % 100
                a = ChurnAgent(d, pki, str(tmp_path), "churn-%d" % n,
                               creds=creds[n])
                try:
                    if i % 3:
                        a.pump(lambda: a.helloed, timeout=15)
                finally:
                    a.close()
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors

    def settled():
        ns = nodes(d)
        churned = [v for k, v in ns.items() if k.startswith("churn-")]
        return not any(v["online"] for v in churned) and churned
    churned = wait_for(settled, 20, interval=0.2,
                       what="every churned node offline")
    assert len(churned) <= 100
    assert d.worker_pid("tunnel.0") == pid
    # AddressSanitizer's allocator keeps what is freed (its quarantine).
    if not ASAN_BUILD:
        wait_for(lambda: proc_rss_kb(pid) < before + 16 * 1024, 10,
                 what="the tunnel worker's memory back (was %d KiB, "
                 "now %d)" % (before, proc_rss_kb(pid)))
    a = fake(d, pki, tmp_path, "after-churn")
    a.close()
    still_served(d)
