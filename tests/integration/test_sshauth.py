"""
The auth worker's answers to the ssh workers: an auth worker started
alone on a daemon's store, its supervisor's channel (fd 3) held by the
test, which sends what the supervisor forwards from an ssh worker
(IMSG_SSH_AUTH, IMSG_SSH_ACCESS, IMSG_AUDIT) and reads the replies.
The daemon's own auth worker shares the store, and mezctl sets it up.
"""

import importlib
import os
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import MEZITED, run, wait_for
from test_auth import PASSWORD, add_user, joined, login, ok
from test_hostile_ipc import imsg_types
from test_userkeys import keygen, write

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")
HDR = struct.Struct("=IIII")       # type, length with header, peerid, pid

_mod = []


def mz():
    """mezite.proto's generated module."""
    if not _mod:
        out = tempfile.mkdtemp(prefix="mezite-pb-ssh")
        subprocess.run(["protoc", "--python_out=" + out, "-I", PROTO,
                        "mezite.proto"], check=True)
        sys.path.insert(0, out)
        _mod.append(importlib.import_module("mezite_pb2"))
    return _mod[0]


class AuthAlone:
    """An auth worker with the test as its supervisor."""

    def __init__(self, d, logpath):
        self.types = imsg_types()
        self.sock, theirs = socket.socketpair()
        fd = theirs.fileno()
        self.log = open(logpath, "w")
        self.proc = subprocess.Popen(
            [MEZITED, "-d", "-v", "-P", "auth", "-I", "7", "-u", "nobody",
             "-c", os.path.join(d.state, "auth")],
            preexec_fn=lambda: os.dup2(fd, 3), close_fds=False,
            stdout=self.log, stderr=self.log)
        theirs.close()
        self.buf = b""
        wc = mz().WorkerConfig(state="/", cert_ttl=3600, idle_timeout=60)
        self.send("IMSG_CONF_WORKER", wc)
        # Configured once it tells its CAs.
        self.wait("IMSG_AUTH_CA")

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def send(self, name, msg, peerid=0, raw=None):
        data = msg.SerializeToString() if raw is None else raw
        self.sock.sendall(HDR.pack(self.types[name], HDR.size + len(data),
                                   peerid, 0) + data)

    def recv(self, timeout=10):
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HDR.size:
                t, n, peerid, _ = HDR.unpack_from(self.buf)
                n &= 0x7fffffff
                if len(self.buf) >= n:
                    data = self.buf[HDR.size:n]
                    self.buf = self.buf[n:]
                    return t, peerid, data
            left = end - time.monotonic()
            assert left > 0, "no message from the auth worker"
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                chunk = self.sock.recv(65536)
                assert chunk, "the auth worker closed its channel"
                self.buf += chunk

    def wait(self, name, timeout=10):
        while True:
            t, peerid, data = self.recv(timeout)
            if t == self.types[name]:
                return peerid, data

    def ask(self, req_name, reply_name, msg, peerid):
        self.send(req_name, msg, peerid)
        got, data = self.wait(reply_name)
        assert got == peerid
        return mz().SshReply.FromString(data)

    def login(self, user, key="", cert=None, peerid=11):
        m = mz()
        req = m.SshAuthRequest(user=user, public_key=key, session=5,
                               client=m.Address(family=socket.AF_INET,
                                                addr=bytes([192, 0, 2, 9]),
                                                port=4022))
        if cert is not None:
            req.cert.CopyFrom(cert)
        return self.ask("IMSG_SSH_AUTH", "IMSG_SSH_AUTH_REPLY", req, peerid)

    def access(self, user, node, service="ssh", peerid=12):
        m = mz()
        req = m.SshAccessRequest(user=user, node=node, service=service,
                                 session=5,
                                 client=m.Address(family=socket.AF_INET,
                                                  addr=bytes([192, 0, 2, 9]),
                                                  port=4022))
        return self.ask("IMSG_SSH_ACCESS", "IMSG_SSH_ACCESS_REPLY", req,
                        peerid)


@pytest.fixture
def alone(fresh_daemon, tmp_path):
    a = AuthAlone(fresh_daemon, str(tmp_path / "auth-alone.log"))
    yield a
    a.close()


def user_cert(path):
    """A user certificate as the master describes it to workers."""
    out = run(["openssl", "x509", "-in", path, "-noout", "-serial",
               "-enddate", "-subject", "-nameopt", "sep_multiline"]).stdout
    serial = re.search(r"serial=([0-9A-F]+)", out).group(1).lower()
    serial = serial.lstrip("0") or "0"
    cn = re.search(r"CN=(\S+)", out).group(1)
    end = re.search(r"notAfter=(.*)", out).group(1)
    not_after = int(time.mktime(time.strptime(end, "%b %d %H:%M:%S %Y %Z")))
    return mz().PeerCert(kind="user", name=cn, serial=serial,
                         not_after=not_after - time.timezone), serial


def test_login_with_a_registered_key(fresh_daemon, alone, tmp_path):
    d = fresh_daemon
    ok(d.mezctl("role", "add", "dev", "login", "ubuntu", "node", "web-*"))
    add_user(d, "alice", roles=["dev"])
    kd = tmp_path / "k"
    kd.mkdir()
    mine, _, _ = keygen(str(kd), "ed25519", comment="alice@laptop")
    other, _, _ = keygen(str(kd), "ecdsa", 256)
    ok(d.mezctl("user", "key", "add", "alice",
                write(tmp_path, "keys", [mine])))
    key = " ".join(mine.split()[:2])

    r = alone.login("alice", key, peerid=41)
    assert r.allowed and r.reason == "" and list(r.roles) == ["dev"]
    for user, k in (("alice", " ".join(other.split()[:2])),
                    ("bob", key), ("alice", "ssh-ed25519 AAAA")):
        r = alone.login(user, k, peerid=42)
        assert not r.allowed and r.reason == "no such user or key"
        assert list(r.roles) == []
    # Deleted, the key no longer logs in.
    ok(d.mezctl("user", "key", "del", "alice", key))
    r = alone.login("alice", key)
    assert not r.allowed and r.reason == "no such user or key"


def test_login_with_the_users_certificate(fresh_daemon, alone, pki,
                                          tmp_path):
    d = fresh_daemon
    add_user(d, "carol")
    _, certpath, _ = login(d, pki, tmp_path, "carol")
    pc, serial = user_cert(certpath)
    r = alone.login("carol", cert=pc)
    assert r.allowed, r.reason
    # Another user's name, no certificate, a node's: not hers.
    add_user(d, "dave")
    assert alone.login("dave", cert=pc).reason == "no such user or key"
    assert alone.login("carol").reason == "no such user or key"
    pc.kind = "node"
    assert alone.login("carol", cert=pc).reason == "no such user or key"
    pc.kind = "user"
    ok(d.mezctl("cert", "revoke", serial))
    r = alone.login("carol", cert=pc)
    assert not r.allowed and r.reason == "the certificate is revoked"


def test_access_to_nodes_and_denials_audited(fresh_daemon, alone, pki,
                                             tmp_path):
    d = fresh_daemon
    ok(d.mezctl("role", "add", "web", "login", "ubuntu", "node", "web-*",
                "label", "env=prod"))
    add_user(d, "erin", roles=["web"])
    add_user(d, "fred")
    joined(d, pki, tmp_path, "web-1", [("env", "prod")])
    joined(d, pki, tmp_path, "web-2", [("env", "dev")])

    r = alone.access("erin", "web-1", peerid=77)
    assert r.allowed and r.reason == "" and list(r.roles) == ["web"]
    for user, node, service, why in (
            ("erin", "web-2", "ssh", "access to node web-2 denied"),
            ("erin", "web-9", "ssh", "access to node web-9 denied"),
            ("fred", "web-1", "ssh", "access to node web-1 denied"),
            ("nobody-known", "web-1", "ssh", "access to node web-1 denied"),
            ("erin", "web-1", "http", "service http is not allowed")):
        r = alone.access(user, node, service)
        assert not r.allowed and r.reason == why, (user, node, r.reason)

    events = [e for e in d.mezctl_json("show", "audit", "limit", "100")
              if e["type"] == "ssh.denied"]
    assert len(events) == 5, events
    assert all(not e["success"] and e["address"] == "192.0.2.9:4022"
               for e in events)
    assert events[0]["name"] == "erin"
    assert events[0]["detail"] == \
        "node web-2 service ssh: access to node web-2 denied"
    assert events[4]["detail"] == \
        "node web-1 service http: service http is not allowed"

    # Roles as they are now: the role changed, the answer too.
    ok(d.mezctl("role", "add", "web", "login", "ubuntu", "node", "db-*"))
    assert not alone.access("erin", "web-1").allowed


def test_audit_events_of_ssh_workers(fresh_daemon, alone):
    d = fresh_daemon
    m = mz()
    before = int(time.time())
    alone.send("IMSG_AUDIT", m.AuditEvent(
        type="ssh.login", name="gina", address="192.0.2.9:4022",
        success=True, detail="key SHA256:abc"))
    alone.send("IMSG_AUDIT", m.AuditEvent(
        type="ssh.session", name="gina", time=1000, detail="ended"))
    # Refused: not an ssh event, a field too long, bytes that do not
    # decode.  The channel stays.
    alone.send("IMSG_AUDIT", m.AuditEvent(type="login", name="forged"))
    alone.send("IMSG_AUDIT", m.AuditEvent(type="ssh.login",
                                          name="x" * 65))
    alone.send("IMSG_AUDIT", m.AuditEvent(type="ssh.login", name="forged",
                                          detail="d" * 1025))
    alone.send("IMSG_AUDIT", None, raw=b"\xff\xff\xff")
    alone.send("IMSG_SSH_AUTH", None, raw=b"\xff\xff\xff", peerid=9)
    got, data = alone.wait("IMSG_SSH_AUTH_REPLY")
    assert got == 9
    r = m.SshReply.FromString(data)
    assert not r.allowed and r.reason == "malformed request"
    assert alone.login("gina", "ssh-ed25519 AAAA").reason == \
        "no such user or key"

    def stored():
        return [e for e in d.mezctl_json("show", "audit", "limit", "100")
                if e["type"].startswith("ssh.")]
    evs = wait_for(lambda: len(stored()) >= 2 and stored(), 10,
                   what="the events stored")
    assert [(e["type"], e["name"]) for e in evs] == \
        [("ssh.login", "gina"), ("ssh.session", "gina")]
    assert evs[0]["success"] and evs[0]["address"] == "192.0.2.9:4022"
    assert evs[0]["detail"] == "key SHA256:abc"
    # No time, or one far off: the auth worker's.
    for e in evs:
        assert before - 5 <= e["time"] <= int(time.time()) + 5
    assert not [e for e in d.mezctl_json("show", "audit", "limit", "100")
                if "forged" in e["name"] or e["name"].startswith("xxx")]
