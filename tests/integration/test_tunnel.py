"""
Reverse tunnels end to end: real agents (mezd) joined with tokens, a real
sshd and Python's http.server behind them, reached through the tunnel
worker with mezctl connect and OpenSSH's ssh.  Agents die, stop, lose
their path and their proxy; each test ends with the agents served again
and a normal client served.
"""

import hashlib
import os
import signal
import ssl
import subprocess
import threading
import time

import pytest

from conftest import (MEZITED_TLS, healthz, proc_rss_kb, run, tls_connect,
                      wait_for)
from authclient import Client
from test_auth import add_user, login, ok
from tunnelkit import (Balancer, FakeAgent, HttpServer, Sshd,
                       TcpService, Tinyproxy, connect, connect_popen,
                       http_get_via, nodes, wait_online)

TUNNEL_CONF = """
worker tunnel {
	keepalive 1
	keepalive timeout 3
}
"""

BIG = 50 * 1024 * 1024


@pytest.fixture
def tdaemon(make_daemon):
    return make_daemon(extra=TUNNEL_CONF)


@pytest.fixture
def echo():
    s = TcpService("echo")
    yield s
    s.close()


def served(d):
    assert healthz(d.port)


def test_agent_joins_registers_and_is_listed(tdaemon, agents, echo):
    d = tdaemon
    agents(d, "web-1", {"echo": echo.addr, "ssh": "127.0.0.1:22"},
           labels=[("env", "test")])
    wait_online(d, "web-1")
    n = nodes(d)["web-1"]
    assert sorted(n["services"]) == ["echo", "ssh"]
    assert n["labels"] == {"env": "test"}, n
    assert n["version"]
    assert n["kind"] == "node"
    r = connect(d, "web-1", "echo", b"hello through the tunnel\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello through the tunnel\n"
    served(d)


@pytest.mark.heavy
def test_list_nodes_says_which_nodes_are_online(tdaemon, agents, echo,
                                               pki, tmp_path):
    """The tunnel worker's registrations reach the auth worker: ListNodes
    says which nodes are online and what they serve, and still does
    after the auth worker was restarted (the tunnel worker tells it
    again) and after a node left."""
    d = tdaemon
    ok(d.mezctl("role", "add", "ops", "login", "root", "node", "ln-*"))
    add_user(d, "olga", roles=["ops"])
    agents(d, "ln-1", {"echo": echo.addr, "ssh": "127.0.0.1:22"})
    m2 = agents(d, "ln-2", {"echo": echo.addr})
    wait_online(d, "ln-1")
    wait_online(d, "ln-2")
    _, cert, key = login(d, pki, tmp_path, "olga")

    def listed():
        with Client(d.port, pki.ca, cert, key) as c:
            return {n.name: n for n in c.list_nodes().nodes}

    wait_for(lambda: all(n.online for n in listed().values()), 10,
             what="ListNodes to see both online")
    n = listed()["ln-1"]
    assert sorted(n.services) == ["echo", "ssh"] and n.since > 0, n
    os.kill(d.worker_pid("auth.0"), signal.SIGKILL)
    wait_for(lambda: d.running().get("auth.0") is not None, 20,
             what="the auth worker back")
    wait_for(lambda: all(n.online for n in listed().values()), 20,
             what="ListNodes to see both online again")
    m2.stop()
    wait_for(lambda: not listed()["ln-2"].online, 10,
             what="ListNodes to see ln-2 offline")
    assert listed()["ln-1"].online
    served(d)


def test_reload_replacing_the_tunnel_worker_moves_agents(tdaemon, agents,
                                                         echo):
    """A reload that changes the tunnel worker's options replaces it: the
    old one sends its agents a GOAWAY, and they are on the new one at
    once, not after a keepalive timeout."""
    d = tdaemon
    agents(d, "rl-1", {"echo": echo.addr}, keepalive=20, timeout=60)
    wait_online(d, "rl-1")
    old = d.worker_pid("tunnel.0")
    d.write_conf(extra=TUNNEL_CONF.replace("timeout 3", "timeout 4"))
    ok(d.mezctl("reload"))
    t0 = time.monotonic()

    def moved():
        n = nodes(d).get("rl-1")
        return n is not None and n["online"] and \
            d.running().get(n["worker"], {}).get("pid") != old
    wait_for(moved, 15, interval=0.2, what="rl-1 on the new tunnel worker")
    assert time.monotonic() - t0 < 15
    assert connect(d, "rl-1", "echo", b"moved").stdout == b"moved"
    served(d)


@pytest.mark.heavy
def test_ssh_and_http_behind_the_agent(tdaemon, agents):
    """OpenSSH's ssh reaches the node's sshd with mezctl connect as its
    ProxyCommand; a 50 MB file comes from http.server intact, and 50 MB
    go up to sshd intact."""
    d = tdaemon
    sshd = Sshd()
    web = HttpServer(BIG)
    try:
        agents(d, "db-1", {"ssh": sshd.addr, "web": web.addr})
        wait_online(d, "db-1")
        r = sshd.ssh(d, "db-1", "echo hello from $(hostname)")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(b"hello from "), r.stdout
        up = os.urandom(BIG)
        r = sshd.ssh(d, "db-1", "sha256sum", input=up, timeout=180)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0].decode() == hashlib.sha256(up).hexdigest()
        status, body = http_get_via(d, "db-1", "web", "/big")
        assert b" 200 " in status, status
        assert len(body) == BIG
        assert hashlib.sha256(body).hexdigest() == web.sha256
    finally:
        sshd.close()
        web.close()
    served(d)


@pytest.mark.heavy
def test_echo_50mb_both_ways_at_once(tdaemon, agents, echo):
    d = tdaemon
    agents(d, "n1", {"echo": echo.addr})
    wait_online(d, "n1")
    data = os.urandom(BIG)
    r = connect(d, "n1", "echo", data, timeout=180)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == BIG
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest()
    n = nodes(d)["n1"]
    assert n["bytes_in"] >= BIG and n["bytes_out"] >= BIG, n
    served(d)


def test_100_concurrent_streams_all_complete(tdaemon, agents, echo):
    """100 streams open at once through one tunnel, each echoing its own
    bytes.  Each is opened in turn (mezctl's control connection ends
    once it has its stream), then all carry their data together."""
    d = tdaemon
    agents(d, "n2", {"echo": echo.addr})
    wait_online(d, "n2")
    blobs = [os.urandom(100 * 1024 + i) for i in range(100)]
    procs = []
    for b in blobs:
        p = connect_popen(d, "n2", "echo", stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(b[:1])
        p.stdin.flush()
        assert p.stdout.read(1) == b[:1], p.stderr.read()
        procs.append(p)
    assert nodes(d)["n2"]["streams"] == 100
    outs = [None] * len(procs)

    def finish(i):
        outs[i] = procs[i].communicate(blobs[i][1:], timeout=120)
    threads = [threading.Thread(target=finish, args=(i,))
               for i in range(len(procs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    for p, b, o in zip(procs, blobs, outs):
        assert o is not None and p.returncode == 0, o
        assert b[:1] + o[0] == b
    served(d)


def test_stalled_reader_stalls_only_its_stream(tdaemon, agents, echo):
    """A stream from a service that sends without end, read by no one:
    flow control stops it at its window; the other streams go on, and
    neither the tunnel worker nor the agent holds more than a bounded
    amount for it."""
    d = tdaemon
    src = TcpService("source")
    try:
        m = agents(d, "n3", {"echo": echo.addr, "source": src.addr})
        wait_online(d, "n3")
        stalled = connect_popen(d, "n3", "source", stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            time.sleep(3)
            for i in range(5):
                r = connect(d, "n3", "echo", b"still here %d" % i,
                            timeout=20)
                assert r.stdout == b"still here %d" % i, r.stderr
            tunnel = d.worker_pid("tunnel.0")
            # The stalled stream holds its window (256 KiB) and the
            # pipe's and socket buffers, not the service's output.
            assert proc_rss_kb(tunnel) < 64 * 1024
            assert proc_rss_kb(m.proc.pid) < 64 * 1024
        finally:
            stalled.kill()
            stalled.wait(timeout=10)
    finally:
        src.close()
    served(d)


def test_service_not_configured_is_refused_by_the_agent(tdaemon, agents,
                                                        echo):
    d = tdaemon
    agents(d, "n4", {"echo": echo.addr})
    wait_online(d, "n4")
    r = connect(d, "n4", "ssh", b"x", timeout=20)
    assert r.returncode == 1
    assert b"service" in r.stderr, r.stderr
    r = connect(d, "nosuchnode", "ssh", b"x", timeout=20)
    assert r.returncode == 1
    assert b"no such node" in r.stderr, r.stderr
    served(d)


def test_killed_agent_goes_offline_and_comes_back(tdaemon, agents, echo):
    d = tdaemon
    m = agents(d, "n5", {"echo": echo.addr})
    wait_online(d, "n5")
    m.signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    t0 = time.monotonic()
    wait_online(d, "n5", timeout=5, online=False)
    assert time.monotonic() - t0 < 5
    r = connect(d, "n5", "echo", b"x", timeout=20)
    assert r.returncode == 1 and b"offline" in r.stderr, r.stderr
    m.start()
    wait_online(d, "n5", timeout=20)
    assert connect(d, "n5", "echo", b"back").stdout == b"back"
    served(d)


def test_stopped_agent_is_noticed_by_both_sides(tdaemon, agents, echo):
    """SIGSTOP: the agent answers no ping, so the tunnel worker drops it
    within its keepalive timeout; once it runs again, the agent sees that
    its tunnel is dead (its own keepalive timeout) and connects again,
    with no operator action."""
    d = tdaemon
    m = agents(d, "n6", {"echo": echo.addr})
    wait_online(d, "n6")
    m.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    wait_online(d, "n6", timeout=10, online=False)
    assert time.monotonic() - t0 < 3 + 2
    m.signal(signal.SIGCONT)
    wait_online(d, "n6", timeout=30)
    assert connect(d, "n6", "echo", b"again").stdout == b"again"
    served(d)


def test_killed_tunnel_worker_agents_reconnect(tdaemon, agents, echo):
    d = tdaemon
    agents(d, "n7", {"echo": echo.addr})
    agents(d, "n8", {"echo": echo.addr})
    wait_online(d, "n7")
    wait_online(d, "n8")
    old = d.worker_pid("tunnel.0")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: d.running().get("tunnel.0", {}).get("pid") not in
             (None, old), 20, what="the tunnel worker to be restarted")
    wait_online(d, "n7", timeout=40)
    wait_online(d, "n8", timeout=40)
    assert connect(d, "n7", "echo", b"7").stdout == b"7"
    assert connect(d, "n8", "echo", b"8").stdout == b"8"
    served(d)


def test_agent_through_an_https_proxy(tdaemon, agents, echo):
    """HTTPS_PROXY: the agent reaches mezited through tinyproxy, with
    basic authentication; NO_PROXY naming the proxy's address makes it go
    direct."""
    d = tdaemon
    p = Tinyproxy("agent", "s3cret")
    try:
        url = "http://agent:s3cret@127.0.0.1:%d" % p.port
        agents(d, "n9", {"echo": echo.addr}, env={"HTTPS_PROXY": url})
        wait_online(d, "n9")
        assert "CONNECT 127.0.0.1:%d" % d.port in p.log()
        assert connect(d, "n9", "echo", b"via").stdout == b"via"
        # Its join and its tunnel went through the proxy; the next
        # agent's go direct.
        before = p.log().count("CONNECT 127.0.0.1:%d" % d.port)
        assert before >= 2
        agents(d, "n10", {"echo": echo.addr},
               env={"https_proxy": url, "no_proxy": "127.0.0.1"})
        wait_online(d, "n10")
        assert p.log().count("CONNECT 127.0.0.1:%d" % d.port) == before
    finally:
        p.close()
    served(d)


def test_second_agent_with_the_same_name_is_refused(tdaemon, agents, echo):
    """Another key claiming a connected node's name is refused; the node
    keeps its tunnel."""
    d = tdaemon
    agents(d, "n11", {"echo": echo.addr})
    wait_online(d, "n11")
    first = nodes(d)["n11"]
    mark = d.log_size()
    agents(d, "n11", {"echo": echo.addr})
    d.wait_log(r"node n11 is held by another key", timeout=20, start=mark)
    assert nodes(d)["n11"]["serial"] == first["serial"]
    assert connect(d, "n11", "echo", b"first").stdout == b"first"
    served(d)


@pytest.mark.heavy
def test_sigterm_sends_every_agent_to_another_proxy(make_daemon, agents,
                                                    echo):
    """100 agents reach a mezited through a load balancer.  It stops
    (SIGTERM) while the balancer now sends new connections to a second
    mezited with the same CAs: every agent gets a GOAWAY and is on the
    second within seconds, far sooner than its keepalive timeout."""
    n = 100
    slow = TUNNEL_CONF.replace("keepalive 1", "keepalive 20").replace(
        "timeout 3", "timeout 60")
    a = make_daemon(extra=slow)
    b = make_daemon(extra=slow)
    # The second proxy takes the first's store and CAs.
    b.stop()
    run(["rm", "-rf", b.state])
    run(["cp", "-a", a.state, b.state])
    b.start()
    lb = Balancer(a.port)
    try:
        for i in range(n):
            agents(a, "fleet-%d" % i, {"echo": echo.addr}, keepalive=20,
                   timeout=60, port=lb.port)
        wait_for(lambda: online_count(a) == n, 120, interval=0.5,
                 what="every agent online on the first proxy")
        lb.target = b.port
        t0 = time.monotonic()
        a.stop()
        wait_for(lambda: online_count(b) == n, 30, interval=0.2,
                 what="every agent online on the second proxy")
        took = time.monotonic() - t0
        assert took < 20, took
        assert connect(b, "fleet-7", "echo", b"moved").stdout == b"moved"
    finally:
        lb.close()
    served(b)


@pytest.mark.heavy
def test_agent_down_and_back_after_the_proxy_was_away(tdaemon, agents,
                                                      echo):
    """mezited away for a minute: agents keep trying, and are all back
    within their backoff cap (30 s) of its return."""
    d = tdaemon
    for i in range(3):
        agents(d, "away-%d" % i, {"echo": echo.addr})
    wait_for(lambda: online_count(d) == 3, 30, what="agents online")
    d.stop()
    time.sleep(60)
    d.start()
    t0 = time.monotonic()
    wait_for(lambda: online_count(d) == 3, 45, interval=0.2,
             what="every agent back")
    assert time.monotonic() - t0 <= 30 + 5
    served(d)


@pytest.mark.heavy
def test_agent_renews_its_certificate_and_keeps_its_node(make_daemon,
                                                         agents, echo):
    """With certificates of a minute, mezd renews at two thirds of the
    lifetime (the minute of clock skew included) with Renew, for the
    same key, and moves to a new tunnel with the new certificate; the
    tunnel worker takes it as the same agent, and a stream open across
    the move keeps its bytes."""
    d = make_daemon(edit=lambda t: t.replace(
        'worker auth {\n', 'worker auth {\n\tcertificate ttl 60s\n', 1) +
        TUNNEL_CONF)
    m = agents(d, "renew-1", {"echo": echo.addr})
    wait_online(d, "renew-1")
    first = nodes(d)["renew-1"]["serial"]
    long = connect_popen(d, "renew-1", "echo", stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    long.stdin.write(b"before ")
    long.stdin.flush()
    assert long.stdout.read(7) == b"before "
    # 120 s of validity, renewed at 80: some 20 s after the join.
    wait_for(lambda: nodes(d)["renew-1"]["serial"] != first, 45,
             interval=0.5, what="the node on a renewed certificate")
    assert "certificate renewed" in m.log()
    assert nodes(d)["renew-1"]["online"]
    assert connect(d, "renew-1", "echo", b"after").stdout == b"after"
    out, err = long.communicate(b"and after the move", timeout=30)
    assert long.returncode == 0, err
    assert out == b"and after the move"
    events = d.mezctl_json("show", "audit")
    assert any(e["type"] == "renew" and e["name"] == "renew-1"
               for e in events)
    served(d)


def online_count(d):
    return sum(1 for v in nodes(d).values() if v["online"])


def host_ca(d):
    """The host CA's certificate and key, from the auth worker's files."""
    auth = os.path.join(d.state, "auth")
    return os.path.join(auth, "host-ca.crt"), os.path.join(auth,
                                                           "host-ca.key")


def sign_node_cert(d, tmp, name, not_before, not_after):
    """A node certificate from the host CA with the given validity (Unix
    times): what the auth worker would issue, but expired if we like."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
    crt, key = host_ca(d)
    with open(crt, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(key, "rb") as f:
        cakey = serialization.load_pem_private_key(f.read(), None)
    k = ec.generate_private_key(ec.SECP256R1())
    utc = datetime.timezone.utc
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mezite"),
                x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.fromtimestamp(not_before,
                                                              utc))
            .not_valid_after(datetime.datetime.fromtimestamp(not_after, utc))
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(cakey, hashes.SHA256()))
    cpath = os.path.join(tmp, name + ".crt")
    kpath = os.path.join(tmp, name + ".key")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
    return cpath, kpath


def tunnel_handshake(d, cert=None, key=None):
    """A TLS session with ALPN mezite-tunnel: what the first read gives
    (b"" for a close), or the TLS error it fails with."""
    s = tls_connect(d.port, alpn=["mezite-tunnel"], cert=cert, key=key)
    try:
        s.settimeout(10)
        return s.recv(1)
    except ssl.SSLError as e:
        return e
    finally:
        s.close()


def test_expired_or_foreign_certificates_are_refused(tdaemon, pki,
                                                     tmp_path):
    d = tdaemon
    if MEZITED_TLS == "libtls":
        pytest.skip("the handshake's alerts differ on libtls")
    now = int(time.time())
    good = sign_node_cert(d, str(tmp_path), "good", now - 60, now + 3600)
    old = sign_node_cert(d, str(tmp_path), "old", now - 7200, now - 3600)
    # Expired: the handshake fails.
    r = tunnel_handshake(d, *old)
    assert isinstance(r, ssl.SSLError) and "EXPIRED" in str(r), r
    # Another CA's: the handshake fails.
    r = tunnel_handshake(d, pki.rogue_cert, pki.rogue_key)
    assert isinstance(r, ssl.SSLError) and "UNKNOWN_CA" in str(r), r
    # None: the handshake fails.
    r = tunnel_handshake(d)
    assert isinstance(r, ssl.SSLError) and "CERTIFICATE_REQUIRED" in \
        str(r), r
    # A user's certificate, which the master verifies: the tunnel worker
    # closes the session.
    add_user(d, "uma")
    _, ucert, ukey = login(d, pki, tmp_path, "uma")
    mark = d.log_size()
    r = tunnel_handshake(d, ucert, ukey)
    assert r == b"" or isinstance(r, (ssl.SSLError, OSError)), r
    d.wait_log(r"tunnel\.0.*(not a node|no node certificate)", timeout=10,
               start=mark)
    # A valid one is taken: the tunnel worker speaks first (its preface).
    s = tls_connect(d.port, alpn=["mezite-tunnel"], cert=good[0],
                    key=good[1])
    try:
        s.settimeout(10)
        assert s.recv(24).startswith(b"PRI * HTTP/2.0")
    finally:
        s.close()
    served(d)


def test_trusted_cluster_opens_a_cluster_tunnel(make_daemon, pki, tmp_path,
                                                agents, echo):
    """A proxy of a trusted cluster opens mezite-cluster-tunnel with a
    certificate of that cluster's CA and is listed by mezctl show
    clusters under the name it is trusted by, not among the nodes; a
    node's certificate may not open a cluster tunnel, nor the cluster's a
    node's."""
    d = make_daemon(edit=lambda t: t + TUNNEL_CONF +
                    'trusted cluster "east" ca "%s"\n' % pki.rogue_ca)
    agents(d, "plain-1", {"echo": echo.addr})
    wait_online(d, "plain-1")
    east = (pki.rogue_cert, pki.rogue_key)
    c = FakeAgent(d, pki, str(tmp_path), "east", creds=east,
                  alpn="mezite-cluster-tunnel")
    try:
        def listed():
            r = d.mezctl_json("show", "clusters")
            return {n["name"]: n for n in r}
        c.pump(lambda: "east" in listed() and listed()["east"]["online"],
               timeout=15)
        assert listed()["east"]["kind"] == "cluster"
        assert "east" not in nodes(d)
        assert "plain-1" not in listed()
        # A dial reaches nodes only.
        r = connect(d, "east", "echo", b"x", timeout=20)
        assert r.returncode == 1 and b"no such node" in r.stderr, r.stderr
    finally:
        c.close()
    # The cluster's certificate on a node's tunnel, and a node's on a
    # cluster tunnel: both closed by the tunnel worker.
    mark = d.log_size()
    bad = FakeAgent(d, pki, str(tmp_path), "east", creds=east)
    try:
        assert bad.closed_by_peer(10)
    finally:
        bad.close()
    d.wait_log(r"refused: no node certificate", start=mark, timeout=10)
    served(d)
