"""
The tunnel worker, through a real mezited: a fake agent (python3-h2 on
the server side of HTTP/2, as tunnel.proto reverses the roles) on TLS
with ALPN mezite-tunnel and a host certificate from a real Join, and
mezctl show nodes and connect.
"""
import os
import signal
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest

from authclient import Client, keypair, pb as pb_modules
from conftest import MEZCTL, MEZITED, healthz, run, tls_connect, wait_for

HELLO_PATH = "/mezite.tunnel.v1/hello"


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def join(d, pki, tmp_path, node, name=None):
    """A host certificate for node from a real Join: (cert, key)."""
    name = name or node
    tok = d.mezctl_json("token", "create", "node", node)
    if isinstance(tok, list):
        tok = tok[0]
    key, spki = keypair(str(tmp_path), name)
    with Client(d.port, pki.ca) as c:
        res = c.join(tok["secret"], node, spki)
    cert = os.path.join(str(tmp_path), name + ".crt")
    with open(cert, "wb") as f:
        f.write(res.certificate)
    return cert, key


class Agent:
    """A fake mezd: answers the hello with a Hello naming hello_node
    (unless silent), and CONNECT to "echo" by echoing; any other service
    is refused with 404 and a mezite-reason."""

    def __init__(self, port, cert, key, node, hello_node=None, silent=False,
                 services=("echo",)):
        self.node = node
        self.hello_node = hello_node or node
        self.silent = silent
        self.services = services
        self.closed = threading.Event()
        self.online = threading.Event()     # the hello was answered
        self.goaway = threading.Event()
        self.echo = set()
        self.sock = tls_connect(port, alpn=["mezite-tunnel"], cert=cert,
                                key=key, timeout=30)
        assert self.sock.selected_alpn_protocol() == "mezite-tunnel"
        # h2 4.1 wants :scheme and :path on every request, which RFC
        # 9113 (8.5) leaves out of CONNECT: its check of what comes in
        # is off, as a server that serves CONNECT must have it.
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=False, header_encoding="utf-8",
                validate_inbound_headers=False))
        if not silent:
            self.conn.initiate_connection()
            self.sock.sendall(self.conn.data_to_send())
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def hello(self):
        pb = pb_modules()["tunnel"]
        h = pb.Hello(node=self.hello_node, version="0.1",
                     services=list(self.services))
        h.labels.add(key="env", value="test")
        return h.SerializeToString()

    def request(self, ev):
        hd = dict(ev.headers)
        sid = ev.stream_id
        if hd.get(":method") == "GET" and hd.get(":path") == HELLO_PATH:
            body = self.hello()
            self.conn.send_headers(sid, [
                (":status", "200"),
                ("content-type", "application/x-protobuf"),
                ("content-length", str(len(body)))])
            self.conn.send_data(sid, body, end_stream=True)
            self.online.set()
        elif hd.get(":method") == "CONNECT" and \
                hd.get(":authority") == "echo":
            self.conn.send_headers(sid, [(":status", "200")])
            self.echo.add(sid)
        else:
            self.conn.send_headers(sid, [
                (":status", "404"),
                ("mezite-reason", "no service %s" % hd.get(":authority"))],
                end_stream=True)

    def run(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                if self.silent:
                    continue
                for ev in self.conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        self.request(ev)
                    elif isinstance(ev, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(
                            ev.flow_controlled_length, ev.stream_id)
                        if ev.stream_id in self.echo and ev.data:
                            self.conn.send_data(ev.stream_id, ev.data)
                    elif isinstance(ev, h2.events.StreamEnded):
                        if ev.stream_id in self.echo:
                            self.conn.end_stream(ev.stream_id)
                            self.echo.discard(ev.stream_id)
                    elif isinstance(ev, h2.events.StreamReset):
                        self.echo.discard(ev.stream_id)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        self.goaway.set()
                out = self.conn.data_to_send()
                if out:
                    self.sock.sendall(out)
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed.set()

    def close(self):
        # shutdown, not only close: it wakes the thread blocked in recv,
        # which would otherwise keep the connection open.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        self.sock.close()


def nodes(d):
    return {n["name"]: n for n in d.mezctl_json("show", "nodes")}


def wait_online(d, name, timeout=10):
    wait_for(lambda: nodes(d).get(name, {}).get("online"), timeout,
             what="node %s online" % name)


def connect(d, node, service, data, timeout=30):
    return subprocess.run([MEZCTL, "-s", d.sock, "connect", node, service],
                          input=data, capture_output=True, timeout=timeout)


@pytest.fixture
def agents():
    made = []
    yield made
    for a in made:
        a.close()


def test_node_online_and_echo(daemon, pki, tmp_path, agents):
    cert, key = join(daemon, pki, tmp_path, "web1")
    agents.append(Agent(daemon.port, cert, key, "web1"))
    wait_online(daemon, "web1")
    n = nodes(daemon)["web1"]
    assert n["services"] == ["echo"]
    assert n["labels"] == {"env": "test"}
    assert n["version"] == "0.1"
    assert n["kind"] == "node"
    assert n["worker"] == "tunnel.0"
    r = ok(daemon.mezctl("show", "nodes"))
    line = [x for x in r.stdout.splitlines() if x.startswith("web1 ")]
    assert line and "online" in line[0] and "env=test" in line[0], r.stdout

    data = b"through the tunnel\n" * 1000
    r = connect(daemon, "web1", "echo", data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    n = nodes(daemon)["web1"]
    assert n["bytes_in"] >= len(data) and n["bytes_out"] >= len(data)
    assert healthz(daemon.port)


def test_unknown_service_is_refused_with_the_reason(daemon, pki, tmp_path,
                                                     agents):
    cert, key = join(daemon, pki, tmp_path, "web2")
    agents.append(Agent(daemon.port, cert, key, "web2"))
    wait_online(daemon, "web2")
    r = connect(daemon, "web2", "nope", b"")
    assert r.returncode == 1
    assert b"no service nope" in r.stderr, r.stderr
    assert healthz(daemon.port)


def test_unknown_node(daemon):
    r = connect(daemon, "nosuch", "echo", b"")
    assert r.returncode == 1
    assert b"mezctl: node nosuch: no such node" in r.stderr, r.stderr
    assert healthz(daemon.port)


def test_offline_node(daemon, pki, tmp_path):
    cert, key = join(daemon, pki, tmp_path, "gone1")
    a = Agent(daemon.port, cert, key, "gone1")
    try:
        wait_online(daemon, "gone1")
    finally:
        a.close()
    wait_for(lambda: not nodes(daemon)["gone1"]["online"], 10,
             what="gone1 offline")
    r = connect(daemon, "gone1", "echo", b"")
    assert r.returncode == 1
    assert b"offline" in r.stderr, r.stderr
    assert healthz(daemon.port)


def test_same_name_other_key_is_refused(daemon, pki, tmp_path, agents):
    cert, key = join(daemon, pki, tmp_path, "db1")
    first = Agent(daemon.port, cert, key, "db1")
    agents.append(first)
    wait_online(daemon, "db1")
    cert2, key2 = join(daemon, pki, tmp_path, "db1", name="db1-other")
    start = daemon.log_size()
    second = Agent(daemon.port, cert2, key2, "db1")
    agents.append(second)
    assert second.closed.wait(10), "the second agent was not disconnected"
    daemon.wait_log(r"node db1 is held by another key", start=start)
    assert not first.closed.is_set()
    assert nodes(daemon)["db1"]["online"]
    r = connect(daemon, "db1", "echo", b"still the first\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"still the first\n"
    assert healthz(daemon.port)


def test_hello_naming_another_node_is_disconnected(daemon, pki, tmp_path,
                                                   agents):
    cert, key = join(daemon, pki, tmp_path, "liar1")
    a = Agent(daemon.port, cert, key, "liar1", hello_node="victim1")
    agents.append(a)
    assert a.closed.wait(10), "an agent lying in its Hello stayed"
    ns = nodes(daemon)
    assert "victim1" not in ns and "liar1" not in ns
    assert healthz(daemon.port)


@pytest.mark.parametrize("alpn,who,why", [
    ("mezite-tunnel", "user", "no node certificate"),
    ("mezite-cluster-tunnel", "node", "cluster tunnels are not configured")])
def test_refused_session_closes_cleanly(daemon, pki, tmp_path, alpn, who,
                                        why):
    """A user's certificate on a node's tunnel, or a cluster tunnel while
    no cluster is trusted: the session is closed, with close_notify.
    (Without any certificate the handshake itself fails.)"""
    if who == "user":
        from test_auth import add_user, login
        add_user(daemon, "refused-" + alpn)
        _, cert, key = login(daemon, pki, tmp_path, "refused-" + alpn)
    else:
        cert, key = join(daemon, pki, tmp_path, "refused-node")
    mark = daemon.log_size()
    s = tls_connect(daemon.port, alpn=[alpn], timeout=10, cert=cert,
                    key=key)
    try:
        assert s.selected_alpn_protocol() == alpn
        s.settimeout(10)
        assert s.recv(1024) == b""
    finally:
        s.close()
    daemon.wait_log(r"tunnel \d+ \([^)]*\): refused: %s" % why,
                    start=mark)
    assert healthz(daemon.port)


def keepalive_config(text):
    return text.replace('worker tunnel {\n', 'worker tunnel {\n'
                        '\tkeepalive 1\n\tkeepalive timeout 3\n', 1)


def test_silent_agent_is_dropped(make_daemon, pki, htdocs, tmp_path):
    # The keepalive keywords may not be in this build's grammar yet.
    from conftest import Daemon
    probe = Daemon(pki, htdocs)
    try:
        probe.write_conf(text=keepalive_config(probe.conf_text()))
        if run([MEZITED, "-n", "-f", probe.conf], check=False).returncode:
            pytest.skip("needs keepalive config")
    finally:
        probe.cleanup()
    d = make_daemon(edit=keepalive_config)
    cert, key = join(d, pki, tmp_path, "mute1")
    a = Agent(d.port, cert, key, "mute1", silent=True)
    try:
        t0 = time.monotonic()
        assert a.closed.wait(15), "a silent agent was kept"
        assert time.monotonic() - t0 >= 2
        assert "mute1" not in nodes(d)
    finally:
        a.close()
    assert healthz(d.port)


def test_draining_worker_tells_agents_to_go(fresh_daemon, pki, tmp_path):
    """SIGTERM to the tunnel worker: GOAWAY to every agent, which then
    connects again to the worker that takes its place."""
    d = fresh_daemon
    cert, key = join(d, pki, tmp_path, "drain1")
    a = Agent(d.port, cert, key, "drain1")
    try:
        wait_online(d, "drain1")
        pid = d.worker_pid("tunnel.0")
        os.kill(pid, signal.SIGTERM)
        assert a.goaway.wait(10), "no GOAWAY"
        assert a.closed.wait(10), "the session stayed"
    finally:
        a.close()
    wait_for(lambda: d.running().get("tunnel.0", {}).get("pid") not in
             (None, pid), 15, what="a new tunnel worker")
    b = Agent(d.port, cert, key, "drain1")
    try:
        wait_online(d, "drain1")
        r = connect(d, "drain1", "echo", b"again\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"again\n"
    finally:
        b.close()
    assert healthz(d.port)


def test_control_group_may_list_nodes_not_connect(daemon, pki, tmp_path,
                                                  agents):
    cert, key = join(daemon, pki, tmp_path, "ro1")
    agents.append(Agent(daemon.port, cert, key, "ro1"))
    wait_online(daemon, "ro1")
    r = daemon.mezctl("show", "nodes", user="nobody")
    assert r.returncode == 0, r.stderr
    assert "ro1" in r.stdout
    r = daemon.mezctl("connect", "ro1", "echo", user="nobody")
    assert r.returncode == 1
    assert "permission denied" in r.stderr
    assert healthz(daemon.port)
