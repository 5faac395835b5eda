"""
Hostile clients against the channels between mezited's processes: floods
that fill a queue, a control client that never reads, a worker stopped or
cut off from the master, the master killed under load, a supervisor out
of descriptors.  Every test ends with a normal client served.
"""

import os
import re
import resource
import signal
import socket
import struct
import threading
import time

from conftest import (HERE, http_get, proc_rss_kb, recv_all, run,
                      tls_connect, wait_for)


def imsg_types():
    """enum imsg_type from common/proc.h: name -> number."""
    with open(os.path.join(HERE, "..", "..", "common", "proc.h")) as f:
        text = f.read()
    body = text[text.index("enum imsg_type {"):]
    body = body[:body.index("};")]
    names = re.findall(r"^\s*(IMSG_[A-Z0-9_]+)\s*[,=]", body, re.M)
    return {n: i for i, n in enumerate(names)}


def paired(d):
    """Every running worker paired with the master, as mezctl says."""
    ws = d.mezctl_json("show", "workers")
    return all(w["paired"] for w in ws
               if w["type"] != "master" and w["pid"] and not w["draining"])


def serving(d):
    return d.healthz() and paired(d)


def h2load(d, path, n, c, m, extra=()):
    return run(["h2load", "-n", str(n), "-c", str(c), "-m", str(m)] +
               list(extra) + [d.url + path], check=False, timeout=120)


def test_status_flood_leaves_every_worker_paired(make_daemon):
    """Bursts of status requests through both workers fill the master's
    queues to them: back-pressure, never a dropped channel, and /healthz
    answers throughout."""
    d = make_daemon()
    log0 = d.log_size()
    pids = {n: w["pid"] for n, w in d.workers().items()}
    stop = threading.Event()
    health = []

    def probe():
        while not stop.is_set():
            try:
                health.append(http_get(d.port, "/healthz", timeout=10)[0])
            except OSError as e:
                health.append(repr(e))
            time.sleep(0.2)

    t = threading.Thread(target=probe)
    t.start()
    try:
        for _ in range(3):
            r = h2load(d, "/api/v1/status", 1600, 8, 100)
            assert "1600 succeeded, 0 failed" in r.stdout, r.stdout + r.stderr
    finally:
        stop.set()
        t.join()
    log = d.log()[log0:]
    assert "closing its channel" not in log, log[-3000:]
    assert "replacing it" not in log, log[-3000:]
    assert pids == {n: w["pid"] for n, w in d.workers().items()}
    bad = [h for h in health if h != 200]
    assert health and not bad, "healthz during the flood: %s" % bad[:5]
    assert serving(d)


def test_control_client_that_never_reads(make_daemon):
    """50,000 requests without reading a reply: the supervisor stops
    reading that client instead of queueing its replies, and serves
    mezctl meanwhile and after."""
    d = make_daemon()
    sup = d.pid
    rss0 = proc_rss_kb(sup)
    show_workers = imsg_types()["IMSG_CTL_SHOW_WORKERS"]
    msg = struct.pack("=IIII", show_workers, 16, 0, 0)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 20
    batch = msg * 1000
    # Until every request went, or none could for 2 s: the supervisor
    # stopped reading.
    progress = time.monotonic()
    while sent < 50000 and time.monotonic() < deadline and \
            time.monotonic() - progress < 2:
        try:
            n = s.send(batch[(sent % 1000) * 16:])
            sent += n // 16
            progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    # The supervisor stopped reading long before the 50,000th request.
    assert sent < 50000, "every request was taken: no back-pressure"
    r = d.mezctl("show", "workers")
    assert r.returncode == 0 and "https.0" in r.stdout, r.stderr
    grown = proc_rss_kb(sup) - rss0
    assert grown < 16 * 1024, "supervisor grew by %d KB" % grown
    s.close()
    wait_for(lambda: d.mezctl("show", "status").returncode == 0, 10,
             what="mezctl after the flood")
    assert serving(d)


def unix_peers(pid):
    """fd -> peer inode for the unix sockets of pid (ss -xp)."""
    out = run(["ss", "-xpn"]).stdout
    inode_fd = {}
    rx = re.compile(r"pid=%d,fd=(\d+)" % pid)
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].startswith("u_str"):
            continue
        for m in rx.finditer(line):
            inode_fd[int(f[5])] = (int(m.group(1)), int(f[7]))
    return inode_fd


def master_channel_fd(d, worker):
    """The worker's descriptor of its channel to the master."""
    master = d.workers()["master"]["pid"]
    mine = unix_peers(worker)
    theirs = unix_peers(master)
    for ino, (fd, peer) in mine.items():
        if peer in theirs:
            return fd
    raise AssertionError("no channel between %d and the master" % worker)


def test_worker_cut_off_by_the_master_is_replaced(make_daemon):
    """A worker writes garbage on its channel to the master (from inside
    the worker, with gdb): the master closes that channel, the
    supervisor hears of it and replaces the worker with a new one,
    paired with the master, and it serves.  The old one drains."""
    d = make_daemon()
    pid = d.worker_pid("https.0")
    fd = master_channel_fd(d, pid)
    log0 = d.log_size()
    run(["gdb", "-p", str(pid), "-batch", "-nx",
         "-ex", "call (long)write(%d, \"%s\", 16)" % (fd, "\\377" * 16)],
        timeout=60)
    d.wait_log(r"https\.0: malformed message from a worker; closing its "
               r"channel", start=log0)
    d.wait_log(r"https\.0 was cut off by master\.0; replacing it",
               start=log0)
    wait_for(lambda: d.workers()["https.0"]["pid"] != pid and paired(d),
             15, what="a new https.0, paired")
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 15,
             what="the old https.0 to drain and leave")
    assert serving(d)


def test_stopped_worker_while_master_fills_its_queue(make_daemon):
    """A worker stopped while the master queues sessions for it (the
    only worker: nowhere else to send them): the channel stays, and once
    the worker runs again, before the master gives up on it, every
    queued session is served."""
    d = make_daemon(prefork=1)
    pid = d.worker_pid("https.0")
    log0 = d.log_size()
    socks = []
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(300):
            s = tls_connect(d.port, alpn=["http/1.1"], timeout=30)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            socks.append(s)
    finally:
        os.kill(pid, signal.SIGCONT)
    bad = []
    for s in socks:
        with s:
            try:
                data = recv_all(s)
            except OSError as e:
                data = repr(e).encode()
            if not data.startswith(b"HTTP/1.1 200"):
                bad.append(data[:60])
    assert not bad, "%d of %d not served: %s" % (len(bad), len(socks),
                                                 bad[:3])
    assert d.workers()["https.0"]["pid"] == pid
    assert "closing its channel" not in d.log()[log0:]
    assert serving(d)


def test_stuck_worker_is_passed_over_then_replaced(make_daemon):
    """A stopped worker keeps no new sessions for longer than the
    detection time (2 s): they go to the other worker; and it is
    replaced after 10 s."""
    d = make_daemon()
    pid = d.worker_pid("https.0")
    other = d.worker_pid("https.1")
    log0 = d.log_size()
    os.kill(pid, signal.SIGSTOP)
    try:
        # Sessions until the master has noticed; some hang on https.0.
        deadline = time.monotonic() + 15
        socks = []
        while not re.search(r"https\.0 has not taken a session",
                            d.log()[log0:]):
            assert time.monotonic() < deadline, "stopped worker unnoticed"
            try:
                s = tls_connect(d.port, alpn=["http/1.1"])
                s.sendall(b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                socks.append(s)
            except OSError:
                pass
            time.sleep(0.05)
        # From now on every new session is served, by the other worker.
        for _ in range(20):
            st, body, _ = http_get(d.port, "/api/v1/whoami", timeout=5)
            assert st == 200 and b'"worker_pid":%d' % other in body
        d.wait_log(r"https\.0 has taken no session for \d+ ms; killing it",
                   timeout=20, start=log0)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        for s in socks:
            s.close()
    wait_for(lambda: d.workers()["https.0"]["pid"] not in (0, pid) and
             paired(d), 15, what="https.0 replaced and paired")
    assert serving(d)


def test_master_killed_while_clients_connect(make_daemon):
    """kill -9 of the master in the middle of a stream of clients: every
    session whose handshake completes is served, before and after; none
    is closed for want of a worker."""
    d = make_daemon()
    master = d.workers()["master"]["pid"]
    log0 = d.log_size()
    stop = threading.Event()
    results = []

    def client():
        while not stop.is_set():
            begun = time.monotonic()
            try:
                s = tls_connect(d.port, alpn=["http/1.1"], timeout=10)
            except OSError:
                continue
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = recv_all(s)
                results.append((begun, data.split(b"\r\n", 1)[0]))
            except OSError as e:
                results.append((begun, "after handshake: %r" % e))
            finally:
                s.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        os.kill(master, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: d.workers()["master"]["pid"] not in (0, master),
                 20, what="a new master")
        wait_for(lambda: paired(d), 15, what="workers paired")
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    # Sessions the old master had relayed died with it; any connection
    # begun after the kill waited for the new master.
    after = [r for t, r in results if t > killed]
    served = [r for r in after if r == b"HTTP/1.1 200 OK"]
    bad = [r for r in after if r != b"HTTP/1.1 200 OK"]
    assert served, results[-10:]
    assert not bad, "%d sessions not served: %s" % (len(bad), bad[:5])
    assert "worker is running, closing" not in d.log()[log0:]
    assert serving(d)


def test_supervisor_out_of_descriptors_recovers(make_daemon):
    """The supervisor cannot start a worker for want of descriptors: it
    says so, tries again, and recovers once descriptors are back."""
    d = make_daemon()
    sup = d.pid
    soft, hard = resource.prlimit(sup, resource.RLIMIT_NOFILE)
    pid = d.worker_pid("https.0")
    log0 = d.log_size()
    # Descriptors 0-2 are taken: no new one can be made.
    resource.prlimit(sup, resource.RLIMIT_NOFILE, (3, hard))
    try:
        os.kill(pid, signal.SIGKILL)
        d.wait_log(r"cannot start https\.0: Too many open files",
                   timeout=15, start=log0)
        d.wait_log(r"https\.0 could not be started, restarting in \d+s",
                   start=log0)
        assert d.pid == sup and d.proc.poll() is None
    finally:
        resource.prlimit(sup, resource.RLIMIT_NOFILE, (soft, hard))
    wait_for(lambda: d.workers()["https.0"]["pid"] not in (0, pid) and
             paired(d), 90, what="https.0 back and paired")
    assert serving(d)
