"""
Chaos under load: while downloads over HTTP/1.1 and HTTP/2 and echo
ssh sessions through an agent's tunnel run, workers are killed with SIGKILL
at random for a minute.  The master never dies, the port never refuses a
connection, every transfer either completes intact or fails (never a
short or corrupt success), and afterwards no descriptor or process is
left over and a normal client is served.
"""

import hashlib
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from conftest import proc_pgrp_members, sha256_file, wait_for
from test_faults import ConnectLoop
from tunnelkit import MEZCTL, Mezd, Sshd, TcpService, wait_online

pytestmark = pytest.mark.heavy

CHAOS_SECS = float(os.environ.get("CHAOS_SECS", "60"))
ECHO_SIZE = 2 * 1024 * 1024

CONF = """
worker tunnel {
	keepalive 1
	keepalive timeout 3
}
"""


class Loop(threading.Thread):
    """Runs one() until stopped; counts what succeeded and what failed,
    and keeps what failed in a way no transfer may: a wrong result
    reported as a success."""

    def __init__(self, one):
        super().__init__(daemon=True)
        self.one = one
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.wrong = []

    def run(self):
        while not self.stop.is_set():
            try:
                r = self.one()
            except (OSError, subprocess.TimeoutExpired):
                r = False
            if r is True:
                self.ok += 1
            elif r is False:
                self.failed += 1
            else:
                self.wrong.append(r)
            time.sleep(0.02)


def download(d, files, tmp, proto):
    def one():
        out = os.path.join(tmp, "dl-%s" % proto)
        if os.path.exists(out):
            os.unlink(out)
        p = subprocess.run(["curl", "-sS", "-k", proto, "--max-time", "60",
                            "-o", out, d.url + "/big.bin"],
                           capture_output=True, timeout=90)
        if p.returncode != 0:
            return False
        got = sha256_file(out)
        if got != files["big.bin"]:
            return "curl %s exited 0 with %d bytes, sha256 %s" % (
                proto, os.path.getsize(out), got)
        return True
    return one


def ssh_through_tunnel(d, sshd, node):
    """Bytes up to the node's sshd and their digest back, by OpenSSH's
    ssh with mezctl connect as its ProxyCommand.  (mezctl connect alone
    cannot tell a stream cut after its own half-close from one that
    ended, so it is not the judge here; ssh is.)"""
    data = os.urandom(ECHO_SIZE)
    want = hashlib.sha256(data).hexdigest()

    def one():
        p = sshd.ssh(d, node, "sha256sum", input=data, timeout=90)
        if p.returncode != 0:
            return False
        got = p.stdout.split(b" ")[0].decode()
        if got != want:
            return "ssh exited 0 with sha256 %s of %s" % (got, want)
        return True
    return one


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def settled(d, names):
    """Every worker of names running, and the port serving."""
    ws = d.running()
    return all(n in ws for n in names) and d.healthz()


def test_workers_killed_at_random_under_load(make_daemon, htdocs, tmp_path):
    d = make_daemon(extra=CONF)
    files = htdocs[1]
    echo = TcpService("echo")
    sshd = Sshd()
    agent = Mezd(d, "chaos-1", {"echo": echo.addr, "ssh": sshd.addr})
    try:
        agent.start()
        wait_online(d, "chaos-1")
        names = sorted(n for n in d.running() if n != "master")
        master = d.worker_pid("master")
        pgid = os.getpgid(d.pid)
        # What the daemon holds at rest, to compare with afterwards.
        procs0 = len(proc_pgrp_members(pgid))
        fds0 = fd_count(master)

        loops = [Loop(download(d, files, str(tmp_path), "--http1.1")),
                 Loop(download(d, files, str(tmp_path), "--http2")),
                 Loop(ssh_through_tunnel(d, sshd, "chaos-1")),
                 Loop(ssh_through_tunnel(d, sshd, "chaos-1"))]
        conn = ConnectLoop(d.port)
        for t in loops + [conn]:
            t.start()

        rng = random.Random(os.getpid())
        kills = []
        end = time.monotonic() + CHAOS_SECS
        while time.monotonic() < end:
            time.sleep(rng.uniform(0.5, 2.0))
            victim = rng.choice(names)
            pid = d.running().get(victim, {}).get("pid")
            if not pid:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                kills.append(victim)
            except ProcessLookupError:
                pass
            assert d.worker_pid("master") == master, "the master died"

        for t in loops + [conn]:
            t.stop.set()
        for t in loops + [conn]:
            t.join(120)
            assert not t.is_alive(), "a transfer loop did not end"

        assert len(kills) >= CHAOS_SECS / 3, kills
        assert not conn.errors, "the port refused %d of %d connects: " \
            "%s" % (len(conn.errors), conn.ok + len(conn.errors),
                    conn.errors[:3])
        for t in loops:
            assert not t.wrong, t.wrong[:3]
            assert t.ok > 0, "no transfer of a loop completed " \
                "(%d failed)" % t.failed
        assert os.path.exists("/proc/%d" % master)
        assert d.worker_pid("master") == master

        # Afterwards: every worker back, the agent online, and no
        # descriptor or process more than at rest.
        # A worker killed again soon after each restart waits longer
        # each time, up to a minute (the supervisor's backoff).
        wait_for(lambda: settled(d, names), 90, what="every worker back")
        wait_online(d, "chaos-1", timeout=30)
        wait_for(lambda: len(proc_pgrp_members(pgid)) == procs0, 30,
                 what="the daemon's processes back to %d (now %d)" % (
                     procs0, len(proc_pgrp_members(pgid))))
        wait_for(lambda: fd_count(master) <= fds0, 30,
                 what="the master's descriptors back to %d (now %d)" % (
                     fds0, fd_count(master)))

        # A normal client, both ways.
        out = str(tmp_path / "after")
        subprocess.run(["curl", "-sS", "-k", "-o", out, d.url + "/big.bin"],
                       check=True, timeout=60)
        assert sha256_file(out) == files["big.bin"]
        data = os.urandom(1 << 20)
        p = subprocess.run([MEZCTL, "-s", d.sock, "connect", "chaos-1",
                            "echo"], input=data, capture_output=True,
                           timeout=60)
        assert p.returncode == 0 and p.stdout == data, p.stderr
    finally:
        agent.cleanup()
        sshd.close()
        echo.close()
