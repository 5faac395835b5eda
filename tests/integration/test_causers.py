"""
Every process on a user of its own: the master, the ca process, and each
worker type run as distinct system users made for the test (useradd),
the ca in a chroot of its own.  Read from /proc: no two kinds share a
uid, the ca runs as the user and in the chroot of its block, sandboxed;
and clients are still served over TLS, whose handshakes only the ca can
sign.  A reload that changes the ca's user replaces the ca process, and
the master is paired with the new one.  A ca user that does not exist
is refused with the file and line that named it.
"""

import os
import pwd
import re
import subprocess

import pytest

from conftest import (CA_BLOCK, MEZITED, MEZITED_TLS, Daemon, healthz,
                      http_get, run, wait_for)
from test_sandbox import assert_sandboxed, children, kind_of, status

OSSL = MEZITED_TLS == "openssl"
# One user per kind of process, made (and removed) by the test.
USERS = {"master": "mzcumaster", "ca": "mzcuca", "https": "mzcuwww",
         "auth": "mzcuauth", "ssh": "mzcussh", "tunnel": "mzcutun"}
CA_OTHER = "mzcuca2"    # the ca's user after a reload
KINDS = ("master", "https", "auth", "ssh", "tunnel") + (
    ("ca",) if OSSL else ())
BLOCKS = {"master": "master", "ca": "ca", "https": "worker https",
          "auth": "worker auth", "ssh": "worker ssh",
          "tunnel": "worker tunnel"}

needs_ca = pytest.mark.skipif(
    not OSSL, reason="the libtls build has no ca process")


@pytest.fixture(scope="module")
def users():
    """System users without a home or a shell; only those this test made
    are removed."""
    made = []
    try:
        for name in list(USERS.values()) + [CA_OTHER]:
            try:
                pwd.getpwnam(name)
            except KeyError:
                run(["useradd", "-r", "-M", "-d", "/nonexistent",
                     "-s", "/usr/sbin/nologin", name])
                made.append(name)
        yield {k: pwd.getpwnam(v) for k, v in USERS.items()}
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True,
                           timeout=60)


def own_users(text, ca_user=USERS["ca"]):
    """The configuration with each block's user "nobody" replaced by the
    kind's own."""
    for kind, block in BLOCKS.items():
        user = ca_user if kind == "ca" else USERS[kind]
        text, n = re.subn(
            r'(\n%s \{\n(?:\t[^\n]*\n)*?\tuser )"nobody"' % block,
            r'\1"%s"' % user, text)
        assert n == (0 if kind == "ca" and not OSSL else 1), (kind, text)
    return text


def ca_chroot_of(d):
    """A chroot for the ca alone, beside the daemon's others."""
    path = os.path.join(d.dir, "ca-root")
    if not os.path.isdir(path):
        os.mkdir(path)
        os.chown(path, 0, 0)
        os.chmod(path, 0o755)
    return path


@pytest.fixture
def daemon_users(users, pki, htdocs):
    d = Daemon(pki, htdocs)
    try:
        block = CA_BLOCK % ca_chroot_of(d) if OSSL else ""
        d.write_conf(text=own_users(d.conf_text(ca=block)))
        d.start(timeout=60)
        yield d
        d.stop(check=True)
    finally:
        d.stop(check=False)
        d.cleanup()


def uids(pid):
    """The real, effective, saved and filesystem uids, and the gids."""
    st = status(pid)
    return set(st["Uid"].split()), set(st["Gid"].split())


def by_kind(d):
    """{kind: [pid, ...]} of the supervisor's children."""
    seen = {}
    for pid in children(d.pid):
        seen.setdefault(kind_of(pid), []).append(pid)
    return seen


def test_each_kind_runs_as_its_own_user(daemon_users, users):
    d = daemon_users
    seen = by_kind(d)
    assert sorted(seen) == sorted(KINDS), seen
    kind_uid = {}
    for kind, pids in seen.items():
        for pid in pids:
            # Set up once filtered: the filter comes after the user.
            wait_for(lambda: status(pid)["Seccomp"] == "2", 30,
                     what="%s's sandbox" % kind)
            u, g = uids(pid)
            assert u == {str(users[kind].pw_uid)}, (kind, pid, u)
            assert g == {str(users[kind].pw_gid)}, (kind, pid, g)
            kind_uid.setdefault(kind, set()).update(u)
    # No two kinds share a uid, so none may trace or signal another.
    for a in kind_uid:
        for b in kind_uid:
            if a != b:
                assert not kind_uid[a] & kind_uid[b], (a, b, kind_uid)
    # The ssh worker's session processes run as its user too.
    (ssh,) = seen["ssh"]
    spares = wait_for(lambda: children(ssh), 10, what="spare sessions")
    for pid in spares:
        wait_for(lambda: status(pid)["Seccomp"] != "0", 30,
                 what="the session's sandbox")
        assert uids(pid)[0] == {str(users["ssh"].pw_uid)}, pid
    st, body, _ = http_get(d.port, "/small.txt")
    assert st == 200 and body == b"hello from the static root\n", st


@needs_ca
def test_ca_runs_as_its_user_in_its_chroot(daemon_users, users):
    """The ca is the configured user, confined to its own chroot and
    sandboxed; a fresh TLS handshake (the master holds no key: see
    test_caproc) still completes, signed by it."""
    d = daemon_users
    (ca,) = by_kind(d)["ca"]
    assert uids(ca)[0] == {str(users["ca"].pw_uid)}
    assert_sandboxed(ca, ca_chroot_of(d))
    assert os.path.realpath(os.readlink("/proc/%d/root" % ca)) == \
        os.path.realpath(ca_chroot_of(d))
    # The masters' is elsewhere: the ca's chroot is its own.
    for master in by_kind(d)["master"]:
        assert os.path.realpath(os.readlink("/proc/%d/root" % master)) == \
            os.path.realpath(d.empty)
    for _ in range(5):
        assert healthz(d.port), "a handshake failed"
    assert "refused" not in d.log() and "did not answer" not in d.log(), \
        d.log_tail()
    # mezited -nv shows the block as read.
    r = run([MEZITED, "-nv", "-f", d.conf])
    assert 'ca {\n\tuser "%s"\n\tchroot "%s"\n}' % (
        USERS["ca"], ca_chroot_of(d)) in r.stdout, r.stdout


@needs_ca
def test_reload_with_another_ca_user_replaces_the_ca(daemon_users, users):
    """A reload that changes the ca's user starts a new ca as that user,
    pairs it with the master, and the old one exits once the master has
    let go of it; handshakes go on being signed."""
    d = daemon_users
    (old,) = by_kind(d)["ca"]
    masters = sorted(by_kind(d)["master"])
    other = pwd.getpwnam(CA_OTHER)
    mark = d.log_size()
    block = CA_BLOCK % ca_chroot_of(d)
    d.write_conf(text=own_users(d.conf_text(ca=block), ca_user=CA_OTHER))
    r = d.mezctl("reload")
    assert r.returncode == 0, r.stdout + r.stderr
    d.wait_log(r"ca\.0: replaced", timeout=30, start=mark)
    d.wait_log(r"ca\.0 paired with master\.0", timeout=30, start=mark)
    wait_for(lambda: not os.path.exists("/proc/%d" % old), 30,
             what="the old ca to exit")
    (new,) = wait_for(lambda: by_kind(d).get("ca"), 30, what="the new ca")
    assert new != old
    # Its filter is the last step of its setup: the user is set by then.
    wait_for(lambda: status(new)["Seccomp"] == "2", 30,
             what="the new ca's sandbox")
    assert uids(new)[0] == {str(other.pw_uid)}
    assert_sandboxed(new, ca_chroot_of(d))
    # No master was restarted: each took the new ca's channel.
    assert sorted(by_kind(d)["master"]) == masters
    for _ in range(5):
        assert healthz(d.port), "a handshake failed after the reload"
    tail = d.log()[mark:]
    assert "killed by signal" not in tail, d.log_tail()
    assert "no ca process" not in tail, d.log_tail()


def test_missing_ca_user_is_refused_with_its_line(users, pki, htdocs):
    """As root, mezited -n checks that the ca's user exists and names the
    line of its user statement; a libtls build, which has no ca, only
    warns that the block is unused."""
    d = Daemon(pki, htdocs)
    try:
        block = 'ca {\n\tuser "mzcu-nosuch"\n\tchroot "%s"\n}' % d.empty
        text = d.conf_text(ca=block)
        d.write_conf(text=text)
        lines = text.split("\n")
        ca_line = lines.index("ca {") + 1
        user_line = lines.index('\tuser "mzcu-nosuch"') + 1
        r = run([MEZITED, "-n", "-f", d.conf], check=False)
        if OSSL:
            assert r.returncode == 1, r.stderr
            assert "%s:%d: ca: user mzcu-nosuch does not exist" % (
                d.conf, user_line) in r.stderr, r.stderr
        else:
            assert r.returncode == 0, r.stderr
            assert "%s:%d: ca: a libtls build has no ca process" % (
                d.conf, ca_line) in r.stderr, r.stderr
        # Without a block, the default user _mezca is needed (OpenSSL
        # build), and named with the file alone; it does not exist here.
        try:
            pwd.getpwnam("_mezca")
        except KeyError:
            d.write_conf(text=d.conf_text(ca=""))
            r = run([MEZITED, "-n", "-f", d.conf], check=False)
            if OSSL:
                assert r.returncode == 1, r.stderr
                assert "%s: ca: user _mezca does not exist" % d.conf \
                    in r.stderr, r.stderr
            else:
                assert r.returncode == 0, r.stderr
    finally:
        d.cleanup()
