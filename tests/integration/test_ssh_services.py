"""
The bastion beyond a node's sshd: other services of a node (port P is the
mezd service named "P"), allowed by roles' service patterns; static
targets of the configuration, reached by address without an agent; and
a user certificate past its time.  OpenSSH's ssh -W and ssh jump through
the bastion as in test_ssh.py.
"""

import calendar
import os
import subprocess
import time

import pytest

from conftest import free_port, healthz, run, wait_for
from test_auth import add_user, ok
from test_ssh import SSH_OPTS, TUNNEL_CONF, Bastion, audit, served
from tunnelkit import Mezd, Sshd, TcpService, nodes, wait_online

PG = 5432	# the echo's service name on db-2, as a port


def ssh_w(b, user, target, data, verbose=False):
    """ssh -W target through the bastion b as user, data on stdin;
    verbose, the bastion's reasons are shown."""
    opts = [o if o != "LogLevel=ERROR" or not verbose else "LogLevel=DEBUG1"
            for o in SSH_OPTS]
    return subprocess.run(
        ["ssh"] + opts + ["-o", "IdentitiesOnly=yes",
                          "-o", "IdentityFile=/dev/null",
                          "-o", "ProxyCommand=" + b.proxy(user),
                          "-W", target, user + "@bastion"],
        input=data, capture_output=True, timeout=60)


class Services(Bastion):
    """The Bastion's db-1 (ssh only), and db-2 whose mezd also serves an
    echo as "5432"; roles: the Bastion's ops (db-*, no services) for
    alice, and dba (db-*, the services 54*) for carol."""

    def __init__(self, d, pki, tmp):
        super().__init__(d, pki, tmp)
        self.echo = TcpService("echo")
        self.agent2 = Mezd(d, "db-2", {"ssh": self.sshd.addr,
                                       str(PG): self.echo.addr}).start()
        wait_online(d, "db-2")
        ok(d.mezctl("role", "add", "dba", "node", "db-*",
                    "service", "54*"))
        add_user(d, "carol", roles=["dba"])

    def w(self, user, target, data, verbose=False):
        return ssh_w(self, user, target, data, verbose)

    def close(self):
        self.agent2.cleanup()
        self.echo.close()
        super().close()


@pytest.fixture
def services(make_daemon, pki, tmp_path):
    b = Services(make_daemon(extra=TUNNEL_CONF), pki, tmp_path)
    yield b
    b.close()


def test_role_list_shows_services(services):
    """role list: a role's service patterns, and ssh alone for one that
    names none."""
    roles = {r["name"]: r for r in services.d.mezctl_json("role", "list")}
    assert roles["dba"]["services"] == ["54*"]
    assert roles["ops"]["services"] == []
    out = ok(services.d.mezctl("role", "list")).stdout
    lines = out.splitlines()
    assert lines[0].split()[-1] == "SERVICES", out
    assert [ln.split()[-1] for ln in lines if ln.startswith("ops")] == \
        ["(ssh)"], out


def test_second_service_of_a_node_when_a_role_allows_it(services):
    """ssh -W db-2:5432 reaches the echo behind db-2's mezd for carol,
    whose role allows 54*; alice's role names no services: she is
    refused with the reason, the denial is audited, and she still
    reaches the node's sshd."""
    b = services
    data = os.urandom(256 << 10)
    r = b.w("carol", "db-2:%d" % PG, data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    wait_for(lambda: any(e["type"] == "ssh.session" and
                         "db-2:%d" % PG in e["detail"]
                         for e in audit(b.d, "carol")), 10,
             what="carol's session in the audit log")

    before = nodes(b.d)["db-2"]["bytes_in"]
    r = b.w("alice", "db-2:%d" % PG, b"hello", verbose=True)
    assert r.returncode != 0
    assert r.stdout == b""
    assert (b"Remote: db-2:%d: service %d is not allowed" % (PG, PG)) in \
        r.stderr, r.stderr
    wait_for(lambda: any(e["type"] == "ssh.denied" and not e["success"] and
                         "service %d" % PG in e["detail"]
                         for e in audit(b.d, "alice")), 10,
             what="alice's denial in the audit log")
    assert nodes(b.d)["db-2"]["bytes_in"] == before
    # a role without services: ssh, as before
    r = b.ssh("alice", "db-2", "echo via ssh")
    assert r.returncode == 0 and r.stdout == b"via ssh\n", r.stderr
    served(b)


def test_a_role_naming_services_allows_only_those(services):
    """carol's role names 54* alone: the node's sshd is not hers."""
    b = services
    r = b.w("carol", "db-2:22", b"", verbose=True)
    assert r.returncode != 0
    assert b"Remote: db-2:22: service ssh is not allowed" in r.stderr, \
        r.stderr
    served(b)


def test_service_the_node_does_not_offer_is_refused_and_audited(services):
    """db-1's mezd offers ssh alone: carol's 5432 there, which her role
    would allow, is refused by the agent, with why, and audited as a
    failed ssh.dial."""
    b = services
    r = b.w("carol", "db-1:%d" % PG, b"hello", verbose=True)
    assert r.returncode != 0
    assert r.stdout == b""
    assert (b"Remote: db-1:%d: no such service\r\n" % PG) in r.stderr or \
        (b"Remote: db-1:%d: no such service\n" % PG) in r.stderr, r.stderr
    wait_for(lambda: any(e["type"] == "ssh.dial" and not e["success"] and
                         "db-1:%d" % PG in e["detail"]
                         for e in audit(b.d, "carol")), 10,
             what="the failed dial in the audit log")
    served(b)


# --------------------------------------------------------------------------
# static targets


class Static(Bastion):
    """A Bastion whose ssh worker also has the static target legacy-1,
    an sshd on 127.0.0.1 behind no agent; roles: legacy (legacy-*, any
    service) for dave, tagged (the label env=prod, any service) for
    erin."""

    def __init__(self, make_daemon, pki, tmp):
        self.target = Sshd()
        self.dead = free_port()		# nothing listens there
        conf = TUNNEL_CONF + ("worker ssh {\n\ttarget legacy-1 127.0.0.1 "
                              "port %d\n\ttarget legacy-2 127.0.0.1 "
                              "port %d\n}\n" % (self.target.port,
                                                 self.dead))
        super().__init__(make_daemon(extra=conf), pki, tmp)
        ok(self.d.mezctl("role", "add", "legacy", "login", "root", "node",
                         "legacy-*", "service", "*"))
        ok(self.d.mezctl("role", "add", "tagged", "login", "root", "label",
                         "env=*", "service", "*"))
        add_user(self.d, "dave", roles=["legacy"])
        add_user(self.d, "erin", roles=["tagged"])

    def to_target(self, user, command, port=None, verbose=False):
        argv = self.ssh_argv(user, "legacy-1", command, verbose=verbose,
                             extra=["-p", str(port or self.target.port)])
        argv[argv.index("-i") + 1] = self.target.key
        return subprocess.run(argv, capture_output=True, timeout=60)

    def close(self):
        super().close()
        self.target.close()


@pytest.fixture
def static(make_daemon, pki, tmp_path):
    b = Static(make_daemon, pki, tmp_path)
    yield b
    b.close()


def test_static_target_reached_through_the_bastion(static):
    """dave's role allows legacy-*: ssh through the bastion reaches the
    sshd of the static target, which no mezd serves; his session is
    audited with it."""
    b = static
    r = b.to_target("dave", "echo static; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == b"static\n"
    wait_for(lambda: any(e["type"] == "ssh.session" and
                         "legacy-1:%d" % b.target.port in e["detail"]
                         for e in audit(b.d, "dave")), 10,
             what="dave's session in the audit log")
    served(b)


def test_static_target_refused_to_roles_that_do_not_name_it(static):
    """alice's role allows db-*, and erin's the label env=* (which the
    node db-1 has): neither reaches legacy-1, since labels never match
    a static target; each refusal is audited.  The target's other
    ports are no service of it."""
    b = static
    for user in ("alice", "erin"):
        r = b.to_target(user, "true", verbose=True)
        assert r.returncode == 255
        assert (b"Remote: legacy-1:%d: access to node legacy-1 denied" %
                b.target.port) in r.stderr, r.stderr
        wait_for(lambda: any(e["type"] == "ssh.denied" and
                             "static target legacy-1" in e["detail"]
                             for e in audit(b.d, user)), 10,
                 what="the denial in the audit log")
    # erin's label role does reach db-1, a node with env=prod
    r = b.ssh("erin", "db-1", "echo node")
    assert r.returncode == 0 and r.stdout == b"node\n", r.stderr
    r = b.to_target("dave", "true", port=22, verbose=True)
    assert r.returncode == 255
    assert b"static target legacy-1 is reached on port %d only" % \
        b.target.port in r.stderr, r.stderr
    served(b)


def test_static_target_that_refuses_is_audited(static):
    """legacy-2's port has no listener: the worker's connection is
    refused, the channel with it, and the failed ssh.dial is audited."""
    b = static
    r = ssh_w(b, "dave", "legacy-2:%d" % b.dead, b"x", verbose=True)
    assert r.returncode != 0
    assert (b"Remote: legacy-2:%d: connect: Connection refused" %
            b.dead) in r.stderr, r.stderr
    wait_for(lambda: any(e["type"] == "ssh.dial" and not e["success"] and
                         "legacy-2:%d" % b.dead in e["detail"]
                         for e in audit(b.d, "dave")), 10,
             what="the failed dial in the audit log")
    served(b)


# --------------------------------------------------------------------------
# an expired certificate


@pytest.mark.heavy
def test_expired_user_certificate_is_refused(make_daemon, pki, tmp_path):
    """A certificate of the auth worker's user CA that has expired (its
    ttl a minute) opens no bastion: the same ssh that worked before it
    expired fails, and the node sees no byte of it."""
    d = make_daemon(extra=TUNNEL_CONF + "worker auth {\n\tcertificate "
                    "ttl 60\n}\n")
    b = Bastion(d, pki, tmp_path)
    try:
        cert, _ = b.cert("alice")
        r = b.ssh("alice", "db-1", "echo fresh")
        assert r.returncode == 0 and r.stdout == b"fresh\n", r.stderr
        end = run(["openssl", "x509", "-noout", "-enddate", "-in",
                   cert]).stdout.strip().split("=", 1)[1]
        not_after = calendar.timegm(time.strptime(end,
                                                  "%b %d %H:%M:%S %Y GMT"))
        # past its end by a margin for the clocks' seconds
        while time.time() < not_after + 2:
            time.sleep(min(1, not_after + 2 - time.time()) + 0.01)
        before = nodes(d)["db-1"]["bytes_in"]
        r = b.ssh("alice", "db-1", "echo stale")
        assert r.returncode == 255, r.stderr
        assert r.stdout == b""
        assert nodes(d)["db-1"]["bytes_in"] == before
        assert healthz(d.port)
    finally:
        b.close()
