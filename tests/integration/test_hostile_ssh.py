"""
The ssh worker under attack: clients that open sessions and never log
in, a session that opens channels without end, a flood of channels to a
node that does not exist.  The bounds: max sessions session processes
(and four spares), SSH_CHANNELS_MAX (64) channels a session, and a
session that has had SSH_REFUSED_MAX (16) channels refused is
disconnected.  Each test ends with another user's session served.
"""

import os
import socket
import subprocess
import time

import pytest

from conftest import free_port, tls_connect, wait_for
from test_ssh import SSH_OPTS, TUNNEL_CONF, Bastion, audit, served

MAX_SESSIONS = 48


@pytest.fixture
def bastion(make_daemon, pki, tmp_path):
    b = Bastion(make_daemon(extra=TUNNEL_CONF + "worker ssh {\n"
                            "\tuser \"nobody\"\n\tmax sessions %d\n}\n" %
                            MAX_SESSIONS), pki, tmp_path)
    yield b
    b.close()


def ssh_worker_pid(d):
    return d.worker_pid("ssh.0")


def children(pid):
    """The processes whose parent is pid: the session processes."""
    kids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            kids.append(int(p))
    return kids


def proc_state(pid):
    try:
        with open("/proc/%d/cmdline" % pid) as f:
            cmd = f.read().replace("\0", " ").strip()
        with open("/proc/%d/wchan" % pid) as f:
            return "%d %s (%s)" % (pid, cmd, f.read())
    except OSError:
        return "%d gone" % pid


def pss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def test_sessions_that_never_log_in_do_not_lock_others_out(bastion):
    """500 sessions that send their version string and then nothing:
    no more than max sessions session processes exist at any time, the
    oldest that have not logged in make room for newer ones, and a user
    logs in and reaches the node meanwhile."""
    b = bastion
    wpid = ssh_worker_pid(b.d)
    socks = []
    try:
        for i in range(500):
            s = tls_connect(b.d.port, alpn=["mezite-ssh"])
            s.sendall(b"SSH-2.0-flood\r\n")
            socks.append(s)
            if i % 100 == 99:
                assert len(children(wpid)) <= MAX_SESSIONS + 4 + 2
        # the kernel's queues hold what the master has not handed over
        time.sleep(1)
        kids = children(wpid)
        assert len(kids) <= MAX_SESSIONS + 4 + 2, len(kids)
        pss = pss_kb(kids)
        # about 0.5 MiB a session process before login, measured here
        assert pss < len(kids) * 2048, (pss, len(kids))
        r = b.ssh("alice", "db-1", "echo through the flood")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"through the flood\n"
        assert len(b.d.mezctl_json("show", "sessions")) <= MAX_SESSIONS
    finally:
        for s in socks:
            s.close()
    # Each ends when its client has gone, or at the login grace (30 s)
    # at the latest.
    wait_for(lambda: len(children(wpid)) <= 4 + 1, 45,
             what="the session processes of the flood gone: %s" % (
                 [proc_state(k) for k in children(wpid)]))
    served(b)


def forward(b, user, target, port):
    """ssh -N -L: every connection to port is a direct-tcpip channel
    to target over one session."""
    return subprocess.Popen(
        ["ssh"] + SSH_OPTS + ["-N", "-o", "ExitOnForwardFailure=yes",
                              "-o", "ProxyCommand=" + b.proxy(user),
                              "-L", "127.0.0.1:%d:%s" % (port, target),
                              user + "@bastion"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_channel_flood_to_a_missing_node_is_cut_off(bastion):
    """Channels to a node that does not exist, as fast as ssh -L opens
    them: each is refused, the session is disconnected after 16, and
    the denials are in the audit log, a bounded number of them."""
    b = bastion
    port = free_port()
    p = forward(b, "alice", "nowhere-1:22", port)
    try:
        wait_for(lambda: listening(port) or p.poll() is not None, 15,
                 what="the forwarded port")
        opened = 0
        while p.poll() is None and opened < 2000:
            try:
                socket.create_connection(("127.0.0.1", port),
                                         timeout=2).close()
            except OSError:
                break
            opened += 1
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    events = audit(b.d, "alice")
    denied = [e for e in events if e["type"] == "ssh.denied"]
    assert 1 <= len(denied) <= 64, len(denied)
    assert any("refused channels" in e["detail"] for e in events), events
    served(b)


@pytest.mark.heavy
def test_10000_channels_on_one_session_are_bounded(bastion):
    """10,000 channels asked of one session, 500 held at a time: no
    more than 64 are open at once, the session is disconnected once
    16 more have been refused, and the worker's other users are
    served."""
    b = bastion
    port = free_port()
    p = forward(b, "alice", "db-1:22", port)
    most = 0
    try:
        wait_for(lambda: listening(port) or p.poll() is not None, 15,
                 what="the forwarded port")
        asked = 0
        while p.poll() is None and asked < 10000:
            held = []
            for _ in range(500):
                try:
                    held.append(socket.create_connection(
                        ("127.0.0.1", port), timeout=5))
                except OSError:
                    break
                asked += 1
            time.sleep(0.5)
            for s in b.d.mezctl_json("show", "sessions"):
                most = max(most, s["channels"])
            for s in held:
                s.close()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert most <= 64, most
    assert any("refused channels" in e["detail"]
               for e in audit(b.d, "alice"))
    served(b)
