"""
The auth worker, through a real mezited, with a real gRPC client
(python3-grpcio) on the server name routed to it, msh on ALPN
mezite-auth, mezctl for users, roles and tokens, and openssl to check
what it issues.
"""

import json
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import threading
import time

import grpc

from authclient import (Client, RawH2, code_of, grpc_message, grpc_status,
                        keypair, pb)
from conftest import MEZCTL, MSH, healthz, run, tls_connect, wait_for

PASSWORD = "correct horse battery staple"


def mezctl_pw(d, password, *args, user=None):
    """mezctl with a password read from a pipe (password-fd)."""
    r, w = os.pipe()
    os.write(w, password.encode() + b"\n")
    os.close(w)
    try:
        cmd = [MEZCTL if user is None else d.mezctl_for_others(),
               "-s", d.sock, "-p", str(r)] + list(args)
        if user is not None:
            cmd = ["runuser", "-u", user, "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=30, pass_fds=(r,))
    finally:
        os.close(r)


def add_user(d, name, password=PASSWORD, roles=()):
    args = ["user", "add", name]
    if roles:
        args += ["role"] + list(roles)
    r = mezctl_pw(d, password, *args)
    assert r.returncode == 0, r.stderr


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def client(d, pki, cert=None, key=None):
    return Client(d.port, pki.ca, cert, key)


def login(d, pki, tmp_path, user, password=PASSWORD, name="client"):
    """Log in with a fresh key: (reply, cert path, key path)."""
    key, spki = keypair(str(tmp_path), name)
    with client(d, pki) as c:
        res = c.login(user, password, spki)
    cert = os.path.join(str(tmp_path), name + ".crt")
    with open(cert, "wb") as f:
        f.write(res.certificate)
    return res, cert, key


def auth_pid(d):
    return d.worker_pid("auth.0")


# --------------------------------------------------------------------------
# the service


def test_health_check_is_serving(daemon, pki):
    h = pb()["health"]
    with client(daemon, pki) as c:
        assert c.health().status == h.HealthCheckResponse.SERVING
        assert c.health("mezite.auth.v1.Auth").status == \
            h.HealthCheckResponse.SERVING
        code, _ = code_of(c.health, "no.such.Service")
    assert code == grpc.StatusCode.NOT_FOUND


def test_unknown_method_is_unimplemented(daemon, pki):
    h = pb()["health"]
    with client(daemon, pki) as c:
        code, msg = code_of(c.call, "/mezite.auth.v1.Auth/Nope",
                            h.HealthCheckRequest(),
                            h.HealthCheckResponse)
    assert code == grpc.StatusCode.UNIMPLEMENTED, msg


def test_login_issues_a_certificate_the_user_ca_verifies(fresh_daemon, pki,
                                                         tmp_path):
    d = fresh_daemon
    ok(d.mezctl("role", "add", "dev", "login", "ubuntu", "node", "web-*"))
    add_user(d, "alice", roles=["dev"])
    res, cert, _ = login(d, pki, tmp_path, "alice")
    assert res.user == "alice" and list(res.roles) == ["dev"]
    ca = str(tmp_path / "user-ca.pem")
    with open(ca, "wb") as f:
        f.write(res.ca_certificate)
    r = run(["openssl", "verify", "-CAfile", ca, "-purpose", "sslclient",
             cert], check=False)
    assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr
    text = run(["openssl", "x509", "-in", cert, "-noout", "-text"]).stdout
    assert re.search(r"Subject: O ?= ?Mezite, CN ?= ?alice", text), text
    assert "URI:mezite:role:dev" in text, text
    assert "TLS Web Client Authentication" in text, text
    # valid for the default 12 hours, from a minute ago
    assert abs(res.not_after - time.time() - 12 * 3600) < 120
    # the store says what was issued
    certs = d.mezctl_json("show", "certs")
    assert any(c["serial"] == res.serial and c["name"] == "alice" and
               c["kind"] == "user" for c in certs), certs


def test_wrong_password_or_user_is_unauthenticated(fresh_daemon, pki,
                                                   tmp_path):
    d = fresh_daemon
    add_user(d, "bob")
    _, spki = keypair(str(tmp_path))
    with client(d, pki) as c:
        code, msg = code_of(c.login, "bob", "wrong", spki)
        assert code == grpc.StatusCode.UNAUTHENTICATED, msg
        code2, msg2 = code_of(c.login, "nobody-here", "wrong", spki)
        assert code2 == grpc.StatusCode.UNAUTHENTICATED, msg2
        # the same answer: whether a user exists is not told
        assert msg == msg2
        # the right password with a key that is not one: no certificate
        code, msg = code_of(c.login, "bob", PASSWORD, b"not a key")
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert c.login("bob", PASSWORD, spki).user == "bob"
    # never the password, in the log or the audit
    assert "wrong" not in d.log().replace("wrong password", "")
    assert PASSWORD not in d.log()
    events = d.mezctl_json("show", "audit")
    assert [e["type"] for e in events if e["name"] == "bob"] == \
        ["user.add", "login.failed", "login.failed", "login"], events


def test_malformed_grpc_message_gets_an_error_and_the_worker_serves(daemon,
                                                                    pki):
    pid = auth_pid(daemon)
    c = RawH2(daemon.port)
    try:
        path = "/grpc.health.v1.Health/Check"
        # a length prefix of 4 GB: refused from its prefix alone
        big = c.wait(c.open(path, grpc_message(b"", length=0xffffffff)))
        # a compressed message, without a grpc-encoding
        comp = c.wait(c.open(path, grpc_message(b"", flag=1)))
        # bytes that are not the request message
        junk = c.wait(c.open(path, grpc_message(b"\xff\xff\xff")))
        # two messages on a unary call
        two = c.wait(c.open(path, grpc_message(b"") * 2))
        # a body ending inside the prefix
        cut = c.wait(c.open(path, b"\x00\x00"))
        good = c.wait(c.open(path, grpc_message(b"")))
    finally:
        c.close()
    assert grpc_status(big) == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    for st in (comp, junk, two, cut):
        assert grpc_status(st) not in (None, 0), st
    assert grpc_status(good) == 0 and good["data"].endswith(b"\x08\x01")
    with client(daemon, pki) as cl:
        assert cl.health().status == 1
    assert auth_pid(daemon) == pid


def test_whoami_sees_the_user_of_the_certificate(fresh_daemon, pki,
                                                 tmp_path):
    d = fresh_daemon
    ok(d.mezctl("role", "add", "ops", "login", "root", "node", "*"))
    add_user(d, "carol", roles=["ops"])
    res, cert, key = login(d, pki, tmp_path, "carol")
    with client(d, pki, cert, key) as c:
        who = c.whoami()
    assert (who.kind, who.name, list(who.roles)) == ("user", "carol",
                                                     ["ops"])
    assert who.serial == res.serial and who.address == "127.0.0.1"
    assert who.fingerprint.startswith("SHA256:")
    with client(d, pki) as c:
        anon = c.whoami()
    assert (anon.kind, anon.name) == ("", "")
    # The https worker is told too.
    r = run(["curl", "-sS", "-k", "--cert", cert, "--key", key,
             d.url + "/api/v1/whoami"])
    me = json.loads(r.stdout)["certificate"]
    assert (me["kind"], me["name"], me["serial"]) == ("user", "carol",
                                                      res.serial), me


def test_user_certificate_does_not_open_the_status_page(make_daemon, pki,
                                                        tmp_path):
    """The status page is the operators': a certificate of their CA (tls
    client ca) opens it, one the auth worker issued to a user does not."""
    d = make_daemon(client_ca=True, edit=lambda t: t.replace(
        "\tstatus allow 127.0.0.1\n", ""))
    add_user(d, "oscar")
    _, cert, key = login(d, pki, tmp_path, "oscar")

    def status_code(*args):
        return run(["curl", "-sS", "-k", "-o", "/dev/null", "-w",
                    "%{http_code}"] + list(args) +
                   [d.url + "/api/v1/status"]).stdout
    assert status_code("--cert", cert, "--key", key) == "403"
    assert status_code("--cert", pki.client_cert, "--key",
                       pki.client_key) == "200"
    assert status_code() == "403"


def token_create(d, *args):
    r = ok(d.mezctl("-j", "token", "create", *args))
    t = json.loads(r.stdout)
    if isinstance(t, list):
        t = t[0]
    return t


def test_join_token_works_once_and_never_twice(fresh_daemon, pki, tmp_path):
    d = fresh_daemon
    tok = token_create(d, "node", "db-1")
    assert re.fullmatch(r"[0-9a-f]{64}", tok["secret"])
    key, spki = keypair(str(tmp_path), "node")
    with client(d, pki) as c:
        res = c.join(tok["secret"], "db-1", spki, [("env", "prod")])
        code, msg = code_of(c.join, tok["secret"], "db-1", spki)
        assert code == grpc.StatusCode.UNAUTHENTICATED, msg
        # bound to its node name
        other = token_create(d, "node", "db-2")
        code, msg = code_of(c.join, other["secret"], "db-3", spki)
        assert code == grpc.StatusCode.UNAUTHENTICATED, msg
    assert res.node == "db-1"
    cert = str(tmp_path / "node.crt")
    ca = str(tmp_path / "host-ca.pem")
    with open(cert, "wb") as f:
        f.write(res.certificate)
    with open(ca, "wb") as f:
        f.write(res.ca_certificate)
    r = run(["openssl", "verify", "-CAfile", ca, "-purpose", "sslclient",
             cert], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    with client(d, pki, cert, key) as c:
        who = c.whoami()
    assert (who.kind, who.name) == ("node", "db-1")
    toks = {t["id"]: t for t in d.mezctl_json("token", "list")}
    assert toks[tok["id"]]["used"] > 0


def joined(d, pki, tmp_path, node, labels=()):
    """A node joined with a token: (cert file, key file, spki, reply)."""
    tok = token_create(d, "node", node)
    key, spki = keypair(str(tmp_path), node)
    with client(d, pki) as c:
        res = c.join(tok["secret"], node, spki, labels)
    cert = str(tmp_path / (node + ".crt"))
    with open(cert, "wb") as f:
        f.write(res.certificate)
    return cert, key, spki, res


def test_renew_gives_a_node_a_new_certificate(fresh_daemon, pki, tmp_path):
    """A node renews with its certificate: a new one for the same name,
    for a new key if it likes, with its labels replaced; a user's
    certificate, or none, may not renew."""
    d = fresh_daemon
    cert, key, spki, first = joined(d, pki, tmp_path, "web-1",
                                    [("env", "dev")])
    key2, spki2 = keypair(str(tmp_path), "web-1-next")
    with client(d, pki, cert, key) as c:
        res = c.renew(spki2, [("env", "prod")])
    assert res.node == "web-1"
    assert res.serial != first.serial
    assert res.not_after >= first.not_after
    cert2 = str(tmp_path / "web-1-next.crt")
    with open(cert2, "wb") as f:
        f.write(res.certificate)
    ca = str(tmp_path / "host-ca.pem")
    with open(ca, "wb") as f:
        f.write(res.ca_certificate)
    r = run(["openssl", "verify", "-CAfile", ca, "-purpose", "sslclient",
             cert2], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # The new certificate is for the new key, and names the node.
    with client(d, pki, cert2, key2) as c:
        who = c.whoami()
    assert (who.kind, who.name, who.serial) == ("node", "web-1", res.serial)
    certs = {c["serial"]: c for c in d.mezctl_json("show", "certs")}
    assert certs[res.serial]["name"] == "web-1"
    assert certs[res.serial]["kind"] == "node"
    assert any(e["type"] == "renew" and e["name"] == "web-1"
               for e in d.mezctl_json("show", "audit"))
    # Without a node certificate: refused.
    with client(d, pki) as c:
        code, msg = code_of(c.renew, spki2)
    assert code == grpc.StatusCode.PERMISSION_DENIED, msg
    add_user(d, "erin")
    _, ucert, ukey = login(d, pki, tmp_path, "erin")
    with client(d, pki, ucert, ukey) as c:
        code, msg = code_of(c.renew, spki2)
    assert code == grpc.StatusCode.PERMISSION_DENIED, msg


def test_renew_of_a_revoked_certificate_is_refused(fresh_daemon, pki,
                                                   tmp_path):
    d = fresh_daemon
    cert, key, spki, first = joined(d, pki, tmp_path, "db-9")
    with client(d, pki, cert, key) as c:
        # The session outlives the revocation; its Renew does not.
        c.whoami()
        ok(d.mezctl("cert", "revoke", first.serial))
        code, msg = code_of(c.renew, spki)
    assert code == grpc.StatusCode.PERMISSION_DENIED, msg
    assert "revoked" in msg


def test_renewals_are_rate_limited(fresh_daemon, pki, tmp_path):
    d = fresh_daemon
    cert, key, spki, _ = joined(d, pki, tmp_path, "db-10")
    codes = []
    with client(d, pki, cert, key) as c:
        for _ in range(8):
            codes.append(code_of(c.renew, spki))
    done = [m for k, m in codes if k == grpc.StatusCode.OK]
    slowed = [m for k, m in codes if k == grpc.StatusCode.RESOURCE_EXHAUSTED]
    # Five free, and a sixth that starts the wait, as for failed logins.
    assert len(done) == 6 and len(slowed) == 2, codes
    assert re.search(r"retry in \d+ seconds", slowed[0]), slowed


def test_expired_join_token_fails(fresh_daemon, pki, tmp_path):
    d = fresh_daemon
    tok = token_create(d, "ttl", "1s")
    _, spki = keypair(str(tmp_path))
    time.sleep(2.2)
    with client(d, pki) as c:
        code, msg = code_of(c.join, tok["secret"], "late", spki)
    assert code == grpc.StatusCode.UNAUTHENTICATED, msg


def test_repeated_wrong_passwords_are_slowed_down_and_audited(fresh_daemon,
                                                             pki, tmp_path):
    d = fresh_daemon
    add_user(d, "dave")
    _, spki = keypair(str(tmp_path))
    codes = []
    with client(d, pki) as c:
        for _ in range(20):
            codes.append(code_of(c.login, "dave", "guess", spki))
        unauth = [m for k, m in codes if k == grpc.StatusCode.UNAUTHENTICATED]
        slowed = [m for k, m in codes
                  if k == grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert len(unauth) + len(slowed) == 20, codes
        # a few are checked, then the user must wait
        assert 3 <= len(unauth) <= 8 and slowed, codes
        m = re.search(r"retry in (\d+) seconds", slowed[-1])
        assert m, slowed[-1]
        # the right password during the wait is refused too...
        code, _ = code_of(c.login, "dave", PASSWORD, spki)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        # ...and works once it is over
        time.sleep(int(m.group(1)) + 0.5)
        assert c.login("dave", PASSWORD, spki).user == "dave"
    types = [e["type"] for e in d.mezctl_json("show", "audit", "limit",
                                               "100")
             if e["name"] == "dave"]
    assert types.count("login.failed") == len(unauth)
    # refusals are audited up to ten a second
    assert types.count("login.throttled") >= min(len(slowed), 10)
    assert types[-1] == "login"


def test_revoked_certificate_is_refused_at_the_next_handshake(fresh_daemon,
                                                              pki, tmp_path):
    d = fresh_daemon
    add_user(d, "erin")
    res, cert, key = login(d, pki, tmp_path, "erin")
    with client(d, pki, cert, key) as c:
        assert c.whoami().name == "erin"
    ok(d.mezctl("cert", "revoke", res.serial))

    def refused():
        try:
            s = tls_connect(d.port, alpn=["h2"], sni="auth.test",
                            cert=cert, key=key)
        except (OSError, ValueError):
            return True
        try:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            return s.recv(1) == b""
        except OSError:
            return True
        finally:
            s.close()
    wait_for(refused, 10, interval=0.2, what="the certificate refused")
    d.wait_log(r"certificate revoked|certificate verify failed|"
               r"handshake failed")
    # Another certificate of the same user still works.
    _, cert2, key2 = login(d, pki, tmp_path, "erin", name="again")
    with client(d, pki, cert2, key2) as c:
        assert c.whoami().name == "erin"


def test_deleting_a_user_revokes_their_certificates(fresh_daemon, pki,
                                                    tmp_path):
    d = fresh_daemon
    add_user(d, "frank")
    _, cert, key = login(d, pki, tmp_path, "frank")
    ok(d.mezctl("user", "del", "frank"))

    def anonymous():
        try:
            with client(d, pki, cert, key) as c:
                c.whoami()
        except grpc.RpcError:
            return True
        return False
    wait_for(anonymous, 10, interval=0.2, what="frank's certificate refused")
    assert [c for c in d.mezctl_json("show", "certs")
            if c["name"] == "frank"][0]["revoked"] > 0


def test_control_group_may_list_but_not_change(daemon):
    r = daemon.mezctl("user", "list", user="nobody")
    assert r.returncode == 0, r.stderr
    r = mezctl_pw(daemon, PASSWORD, "user", "add", "mallory", user="nobody")
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stderr
    r = daemon.mezctl("token", "create", user="nobody")
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stderr


def test_list_nodes_shows_what_the_roles_allow(fresh_daemon, pki, tmp_path):
    d = fresh_daemon
    ok(d.mezctl("role", "add", "web", "login", "ubuntu", "node", "web-*"))
    ok(d.mezctl("role", "add", "prod-db", "login", "postgres", "root",
                "label", "env=prod", "tier=d*"))
    add_user(d, "ivan", roles=["web", "prod-db"])
    add_user(d, "judy")
    _, spki = keypair(str(tmp_path), "node")
    joins = [("web-1", []), ("web-2", [("env", "dev")]),
             ("db-1", [("env", "prod"), ("tier", "db")]),
             ("db-2", [("env", "dev"), ("tier", "db")])]
    with client(d, pki) as c:
        for name, labels in joins:
            tok = token_create(d, "node", name)
            c.join(tok["secret"], name, spki, labels)
    _, cert, key = login(d, pki, tmp_path, "ivan")
    with client(d, pki, cert, key) as c:
        listed = c.list_nodes().nodes
    nodes = {n.name: list(n.logins) for n in listed}
    assert nodes == {"web-1": ["ubuntu"], "web-2": ["ubuntu"],
                     "db-1": ["postgres", "root"]}, nodes
    labels = {n.name: sorted((x.key, x.value) for x in n.labels)
              for n in listed}
    assert labels == {"web-1": [], "web-2": [("env", "dev")],
                      "db-1": [("env", "prod"), ("tier", "db")]}, labels
    # a user without roles reaches nothing; a session without a user
    # certificate may not ask
    _, cert, key = login(d, pki, tmp_path, "judy", name="judy")
    with client(d, pki, cert, key) as c:
        assert list(c.list_nodes().nodes) == []
    with client(d, pki) as c:
        code, msg = code_of(c.list_nodes)
    assert code == grpc.StatusCode.PERMISSION_DENIED, msg


# --------------------------------------------------------------------------
# the store's life


def test_restart_keeps_users_roles_tokens_and_the_ca(fresh_daemon, pki,
                                                     tmp_path):
    d = fresh_daemon
    ok(d.mezctl("role", "add", "dev", "login", "ubuntu", "node", "web-*"))
    add_user(d, "grace", roles=["dev"])
    tok = token_create(d, "node", "web-1")
    first, cert, key = login(d, pki, tmp_path, "grace")
    d.stop()
    d.start()
    assert [u["name"] for u in d.mezctl_json("user", "list")] == ["grace"]
    assert [r["name"] for r in d.mezctl_json("role", "list")] == ["dev"]
    assert tok["id"] in [t["id"] for t in d.mezctl_json("token", "list")]
    again, _, _ = login(d, pki, tmp_path, "grace", name="again")
    assert again.ca_certificate == first.ca_certificate
    # the old certificate still names her
    with client(d, pki, cert, key) as c:
        assert c.whoami().name == "grace"
    _, spki = keypair(str(tmp_path), "node")
    with client(d, pki) as c:
        assert c.join(tok["secret"], "web-1", spki).node == "web-1"
    # the files: the auth user's alone
    nobody = pwd.getpwnam("nobody").pw_uid
    auth_dir = os.path.join(d.state, "auth")
    assert oct(os.stat(auth_dir).st_mode & 0o777) == "0o700"
    assert os.stat(auth_dir).st_uid == nobody
    for f in ("mezite.db", "user-ca.key", "host-ca.key"):
        st = os.stat(os.path.join(auth_dir, f))
        assert st.st_mode & 0o077 == 0 and st.st_uid == nobody, f


def test_kill_of_the_auth_worker_mid_login_loses_nothing_acknowledged(
        fresh_daemon, pki, tmp_path):
    d = fresh_daemon
    for i in range(4):
        add_user(d, "u%d" % i)
    _, spki = keypair(str(tmp_path))
    got, stop = [], threading.Event()

    def loop(user):
        with client(d, pki) as c:
            while not stop.is_set():
                try:
                    got.append(c.login(user, PASSWORD, spki).serial)
                except grpc.RpcError:
                    time.sleep(0.05)
    threads = [threading.Thread(target=loop, args=("u%d" % i,))
               for i in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(got) >= 8, 30, what="some logins")
        os.kill(auth_pid(d), signal.SIGKILL)
        wait_for(lambda: d.running().get("auth.0"), 15,
                 what="a new auth worker")
        n = len(got)
        wait_for(lambda: len(got) >= n + 8, 30, what="logins again")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    serials = {c["serial"] for c in d.mezctl_json("show", "certs", "limit",
                                                  "10000")}
    assert set(got) <= serials, set(got) - serials
    db = sqlite3.connect(os.path.join(d.state, "auth", "mezite.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    assert healthz(d.port)


# --------------------------------------------------------------------------
# msh, on ALPN mezite-auth


def msh(home, *args, password=None):
    env = dict(os.environ, MEZITE_HOME=home)
    env.pop("MEZITE_PROXY", None)
    fds = ()
    if password is not None:
        r, w = os.pipe()
        os.write(w, password.encode() + b"\n")
        os.close(w)
        args = ("login", "-F", str(r)) + args
        fds = (r,)
    try:
        return subprocess.run([MSH] + list(args), capture_output=True,
                              text=True, timeout=30, env=env, pass_fds=fds)
    finally:
        for fd in fds:
            os.close(fd)


def test_msh_login_then_status_sees_the_user(fresh_daemon, tmp_path):
    d = fresh_daemon
    add_user(d, "heidi")
    home = str(tmp_path / "mezite")
    r = msh(home, "-p", "127.0.0.1:%d" % d.port, "heidi", password=PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "heidi" in r.stdout
    for f in ("key.pem", "cert.pem"):
        assert os.stat(os.path.join(home, f)).st_mode & 0o077 == 0
    r = msh(home, "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"server sees: user heidi", r.stdout), r.stdout
    # the session that asked came in with ALPN mezite-auth
    assert re.search(r"alpn mezite-auth .*-> auth\.0", d.log())
    r = msh(home, "logout")
    assert r.returncode == 0
    assert not os.path.exists(os.path.join(home, "key.pem"))
