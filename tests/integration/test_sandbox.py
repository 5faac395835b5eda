"""
The sandbox of every child (common/sandbox.c), read from /proc of a
running mezited: no_new_privs, a seccomp filter, an empty capability
bounding set, a user that is not root, the configured chroot; the ssh
worker's session processes stack a filter of their own.  The self-test
hook (MEZITE_SANDBOX_SELFTEST) makes one child break its sandbox: the
filter kills it with SIGSYS, the supervisor restarts it, and clients are
served again.  The rest of the suite runs every worker's real workload
under its filter, and fails on any process the filter kills.
"""

import os
import re
import subprocess

import pytest

from conftest import MEZITED_TLS, Daemon, healthz, http_get, wait_for
from test_ssh import TUNNEL_CONF, Bastion

# The ca process holds the keys of the OpenSSL build's master.
KINDS = ("master", "https", "auth", "tunnel", "ssh") + \
    (("ca",) if MEZITED_TLS == "openssl" else ())


def status(pid):
    """/proc/PID/status as a dict of its fields."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f
                    if ":\t" in line)


def children(pid):
    """The pids of a process's children."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


def kind_of(pid):
    """The kind of a child, from the title it sets: "https.0", ..."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        title = f.read().replace(b"\0", b" ").decode()
    m = re.search(r"\b(master|ca|https|auth|tunnel|ssh)\.\d+", title)
    return m.group(1) if m else title


def chroot_of(d, kind):
    """The chroot the test configuration gives each kind of process."""
    return {"master": d.empty, "ca": d.empty, "https": d.www,
            "tunnel": d.empty,
            "auth": os.path.join(d.state, "auth"),
            "ssh": os.path.join(d.state, "ssh")}[kind]


def assert_sandboxed(pid, root, filters=1):
    st = status(pid)
    assert st["NoNewPrivs"] == "1", (pid, st)
    assert st["Seccomp"] == "2", (pid, st)
    assert int(st["Seccomp_filters"]) == filters, (pid, st)
    assert int(st["CapBnd"], 16) == 0, (pid, st)
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
    uids = st["Uid"].split()
    assert "0" not in uids, (pid, st)
    assert "0" not in st["Gid"].split(), (pid, st)
    assert os.path.realpath(os.readlink("/proc/%d/root" % pid)) == \
        os.path.realpath(root), pid


def test_every_child_is_sandboxed(daemon):
    """Each child of the supervisor, and each of the ssh worker's spare
    session processes, is filtered, unprivileged and chrooted."""
    d = daemon
    kids = children(d.pid)
    seen = {}
    for pid in kids:
        kind = kind_of(pid)
        assert kind in KINDS, kind
        assert_sandboxed(pid, chroot_of(d, kind))
        seen.setdefault(kind, []).append(pid)
    assert sorted(seen) == sorted(KINDS), seen
    assert len(seen["https"]) == d.params["prefork"]
    # The supervisor itself re-executes children: not filtered.
    assert status(d.pid)["Seccomp"] == "0"

    (ssh,) = seen["ssh"]
    spares = wait_for(lambda: children(ssh), 10, what="spare sessions")
    for pid in spares:
        # The worker's filter, and the session's own on top of it.
        wait_for(lambda: status(pid)["Seccomp_filters"] == "2", 10,
                 what="the session's own filter")
        assert_sandboxed(pid, chroot_of(d, "ssh"), filters=2)


@pytest.fixture
def bastion(make_daemon, pki, tmp_path):
    b = Bastion(make_daemon(extra=TUNNEL_CONF), pki, tmp_path)
    yield b
    b.close()


def test_session_process_in_a_session_is_sandboxed(bastion):
    """During an SSH session, the process that serves it is under both
    filters, and so is every other child."""
    b = bastion
    p = subprocess.Popen(b.ssh_argv("alice", "db-1", "echo up; sleep 30"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        (s,) = b.d.mezctl_json("show", "sessions")
        assert_sandboxed(s["pid"], chroot_of(b.d, "ssh"), filters=2)
        for pid in children(b.d.pid):
            assert_sandboxed(pid, chroot_of(b.d, kind_of(pid)))
    finally:
        p.kill()
        p.communicate(timeout=20)
    r = b.ssh("alice", "db-1", "echo still here")
    assert r.returncode == 0 and r.stdout == b"still here\n", r.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_selftest_violation_kills_only_that_process(pki, htdocs, kind,
                                                    monkeypatch):
    """MEZITE_SANDBOX_SELFTEST=kind: that child, once sandboxed, calls
    execve; its filter kills it (SIGSYS), the supervisor restarts it,
    the restarted one is sandboxed and clients are served."""
    monkeypatch.setenv("MEZITE_SANDBOX_SELFTEST", kind)
    d = Daemon(pki, htdocs)
    try:
        d.start(timeout=60)
        d.wait_log(r"%s\.0 killed by signal 31 \(SIGSYS\), restarting" %
                   kind, timeout=30)
        d.wait_log(r"sandbox self-test: calling execve", timeout=5)
        key = "master" if kind == "master" else "%s.0" % kind
        pid = wait_for(lambda: d.running().get(key, {}).get("pid"), 60,
                       what="%s restarted" % key)
        assert_sandboxed(pid, chroot_of(d, kind))
        # The others went on: only one kill, and no other child died
        # unless the master took its workers with it.
        log = d.log()
        assert log.count("killed by signal") == 1, d.log_tail()
        wait_for(lambda: healthz(d.port, 5), 60, what="/healthz")
        st, body, _ = http_get(d.port, "/small.txt")
        assert st == 200 and body == b"hello from the static root\n", st
        # The self-test is for the first start only; in the debug mode
        # (MEZITE_SANDBOX_DEBUG=1) its one trap is logged by name.
        traps = re.findall(r"sandbox: system call \d+ \((\w+)\)", log)
        assert traps in ([], ["execve"]), traps
    finally:
        d.stop(check=False)
        d.cleanup()
