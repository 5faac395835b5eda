"""
The PROXY protocol (v1 and v2) from trusted balancers only.

Loopback has many source addresses: the daemon trusts 127.0.0.2 as a
balancer, and a client bound to it before connecting plays one; a client
from 127.0.0.1 is anyone else.  The https worker's /api/v1/whoami shows
the client address the master handed over with the session, and
`mezctl show connections` what the master holds.
"""

import http.client
import json
import re
import socket
import ssl
import struct
import time

import pytest

from conftest import _finish, _start, client_context, healthz

BALANCER = "127.0.0.2"
TRUST = "proxy protocol from { %s 192.0.2.0/24 }\n" % BALANCER
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module")
def daemon(pki, htdocs, request):
    """A mezited that trusts 127.0.0.2 as a balancer.  The handshake
    timeout is long: the header is sent a byte at a time in one test."""
    d = _start(pki, htdocs, extra=TRUST, handshake=30)
    yield d
    _finish(d, request)


def connect(port, source=BALANCER, timeout=20):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def v1(src, sport, dport, dst="127.0.0.1"):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport,
                                          dport)).encode()


def v2_inet(src, sport, dport, dst="127.0.0.1", tlvs=b""):
    if ":" in src:
        addrs = (socket.inet_pton(socket.AF_INET6, src) +
                 socket.inet_pton(socket.AF_INET6, dst))
        fam = 0x21
    else:
        addrs = (socket.inet_pton(socket.AF_INET, src) +
                 socket.inet_pton(socket.AF_INET, dst))
        fam = 0x11
    blk = addrs + struct.pack("!HH", sport, dport) + tlvs
    return V2SIG + bytes([0x21, fam]) + struct.pack("!H", len(blk)) + blk


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


def whoami(sock):
    """TLS over sock, and /api/v1/whoami on a connection kept open:
    (the connection, the JSON)."""
    tls = client_context(["http/1.1"]).wrap_socket(
        sock, server_hostname="localhost")
    c = http.client.HTTPConnection("localhost")
    c.sock = tls
    c.request("GET", "/api/v1/whoami", headers={"Host": "localhost"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, (r.status, body)
    return c, json.loads(body)


def listed(d, conn_id):
    """The connection as show connections lists it, JSON and text."""
    conns = d.mezctl_json("show", "connections")
    mine = [c for c in conns if c["id"] == conn_id]
    assert mine, "connection %d not listed: %s" % (conn_id, conns)
    r = d.mezctl("show", "connections")
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines()
            if ln.split() and ln.split()[0] == str(conn_id)]
    assert line, r.stdout
    return mine[0], line[0]


def closed_by_server(s):
    """Whether the server closes s (reads until it does; the socket's
    timeout fails the test if it never does)."""
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def refused(d, sock, pattern, start):
    """sock is closed by the master, which says why in its log, and a
    normal client is served after."""
    assert closed_by_server(sock)
    sock.close()
    d.wait_log(pattern, timeout=20, start=start)
    assert healthz(d.port)


@pytest.mark.parametrize("header", ["v1", "v2"])
def test_ipv4_header_names_the_client(daemon, header):
    d = daemon
    s = connect(d.port)
    lport = s.getsockname()[1]
    make = v1 if header == "v1" else v2_inet
    s.sendall(make("203.0.113.7", 40001, d.port))
    c, me = whoami(s)
    try:
        assert me["client"] == {"address": "203.0.113.7", "port": 40001}
        assert me["local"] == {"address": "127.0.0.1", "port": d.port}
        info, line = listed(d, me["id"])
        assert info["client"] == {"address": "203.0.113.7", "port": 40001}
        assert info["balancer"] == {"address": BALANCER, "port": lport}
        assert "203.0.113.7:40001" in line
        assert "via %s:%d" % (BALANCER, lport) in line
    finally:
        c.close()


@pytest.mark.parametrize("header", ["v1", "v2"])
def test_ipv6_header_names_the_client(daemon, header):
    d = daemon
    s = connect(d.port)
    if header == "v1":
        s.sendall(v1("2001:db8::7", 40002, d.port, dst="2001:db8::1"))
    else:
        # With TLVs, which are skipped: ALPN, authority, a NOOP.
        s.sendall(v2_inet("2001:db8::7", 40002, d.port, dst="2001:db8::1",
                          tlvs=tlv(0x01, b"h2") +
                          tlv(0x02, b"example.com") + tlv(0x04, b"\0" * 7)))
    c, me = whoami(s)
    try:
        assert me["client"] == {"address": "2001:db8::7", "port": 40002}
        assert me["local"] == {"address": "2001:db8::1", "port": d.port}
        info, line = listed(d, me["id"])
        assert info["client"] == {"address": "2001:db8::7", "port": 40002}
        assert "[2001:db8::7]:40002" in line
    finally:
        c.close()


@pytest.mark.parametrize("header", [
    V2SIG + b"\x20\x00\x00\x00",                   # v2 LOCAL
    V2SIG + b"\x21\x00\x00\x00",                   # v2 UNSPEC
    b"PROXY UNKNOWN\r\n",
])
def test_header_without_client_keeps_the_tcp_peer(daemon, header):
    """A balancer's own connection (LOCAL, UNKNOWN) or one naming no
    address: the client is the TCP peer, the balancer itself."""
    s = connect(daemon.port)
    lport = s.getsockname()[1]
    s.sendall(header)
    c, me = whoami(s)
    c.close()
    assert me["client"] == {"address": BALANCER, "port": lport}


def test_header_a_byte_at_a_time(daemon):
    d = daemon
    s = connect(d.port)
    for b in v2_inet("198.51.100.9", 40003, d.port, tlvs=tlv(0x04, b"xy")):
        s.send(bytes([b]))
        time.sleep(0.005)
    c, me = whoami(s)
    c.close()
    assert me["client"] == {"address": "198.51.100.9", "port": 40003}
    s = connect(d.port)
    for b in v1("198.51.100.10", 40004, d.port):
        s.send(bytes([b]))
        time.sleep(0.005)
    c, me = whoami(s)
    c.close()
    assert me["client"] == {"address": "198.51.100.10", "port": 40004}


def test_trusted_source_without_header_is_closed(daemon):
    d = daemon
    start = d.log_size()
    s = connect(d.port)
    lport = s.getsockname()[1]
    with pytest.raises((ssl.SSLError, OSError)):
        client_context(["http/1.1"]).wrap_socket(
            s, server_hostname="localhost")
    s.close()
    d.wait_log(r"%s:%d: TLS instead of a PROXY header" % (
        re.escape(BALANCER), lport), timeout=20, start=start)
    assert healthz(d.port)


@pytest.mark.parametrize("garbage", [
    b"PROXY TCP4 203.0.113.7 127.0.0.1 70000 443\r\n",
    b"PROXY TCP4 not an address at all\r\n",
    b"PROXY " + b"x" * 120,
    b"GET / HTTP/1.1\r\n\r\n",
    V2SIG + b"\x21\x12\x00\x0c" + b"\0" * 12,      # datagrams
])
def test_trusted_source_with_garbage_header_is_closed(daemon, garbage):
    d = daemon
    start = d.log_size()
    s = connect(d.port)
    lport = s.getsockname()[1]
    s.sendall(garbage)
    refused(d, s, r"%s:%d: malformed PROXY header" % (
        re.escape(BALANCER), lport), start)


def test_v2_length_past_the_bound_is_closed_unread(daemon):
    """The fixed part alone says the header is too long: the master
    closes without waiting for the rest."""
    d = daemon
    start = d.log_size()
    s = connect(d.port)
    lport = s.getsockname()[1]
    s.sendall(V2SIG + b"\x21\x11" + struct.pack("!H", 12 + 513))
    refused(d, s, r"%s:%d: malformed PROXY header" % (
        re.escape(BALANCER), lport), start)


def test_v2_tlvs_up_to_the_bound_are_taken(daemon):
    d = daemon
    s = connect(d.port)
    s.sendall(v2_inet("203.0.113.8", 40005, d.port,
                      tlvs=tlv(0x04, b"\0" * (512 - 3))))
    c, me = whoami(s)
    c.close()
    assert me["client"] == {"address": "203.0.113.8", "port": 40005}


def test_untrusted_source_with_header_is_closed(daemon):
    """From 127.0.0.1, not a balancer: the header is taken as the
    beginning of TLS, and the handshake fails."""
    d = daemon
    start = d.log_size()
    s = connect(d.port, source="127.0.0.1")
    lport = s.getsockname()[1]
    s.sendall(v1("203.0.113.7", 40006, d.port))
    with pytest.raises((ssl.SSLError, OSError)):
        client_context(["http/1.1"]).wrap_socket(
            s, server_hostname="localhost")
    s.close()
    d.wait_log(r"127\.0\.0\.1:%d: handshake failed" % lport, timeout=20,
               start=start)
    assert healthz(d.port)
    # and the client of that connection never appears
    conns = d.mezctl_json("show", "connections")
    assert not [c for c in conns
                if (c["client"] or {}).get("address") == "203.0.113.7"]


def test_stalled_header_is_closed_by_the_handshake_timeout(make_daemon):
    d = make_daemon(extra=TRUST, handshake=1)
    start = d.log_size()
    s = connect(d.port, timeout=60)
    lport = s.getsockname()[1]
    s.sendall(v1("203.0.113.7", 40007, d.port)[:20])
    assert closed_by_server(s)
    s.close()
    d.wait_log(r"%s:%d: handshake timed out" % (re.escape(BALANCER),
                                                lport), timeout=20,
               start=start)
    assert healthz(d.port)


def test_ipv6_balancer_by_prefix(make_daemon):
    """A balancer on IPv6, trusted by a prefix (::/127 holds ::1); the
    IPv4 balancer of the other tests is nobody special here."""
    def edit(text):
        return re.sub(r"(listen on 127\.0\.0\.1 port (\d+)\n)",
                      r"\1listen on ::1 port \2\n", text) + \
            "proxy protocol from ::/127\n"
    d = make_daemon(edit=edit)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(("::1", d.port))
    lport = s.getsockname()[1]
    s.sendall(v2_inet("203.0.113.9", 40008, d.port))
    c, me = whoami(s)
    try:
        assert me["client"] == {"address": "203.0.113.9", "port": 40008}
        info, line = listed(d, me["id"])
        assert info["balancer"] == {"address": "::1", "port": lport}
        assert "via [::1]:%d" % lport in line
    finally:
        c.close()
    # Plain TLS from 127.0.0.2, which this daemon does not trust.
    s = connect(d.port)
    lport = s.getsockname()[1]
    c, me = whoami(s)
    c.close()
    assert me["client"] == {"address": BALANCER, "port": lport}


def test_per_source_limits_count_the_client_not_the_balancer(pki, htdocs,
                                                             request):
    """With at most 3 connections per source, the balancer holds 8 for
    8 clients; a fourth from one client is closed once its header names
    it, and the others stay open."""
    # One master: several would each hold a share of the 3.
    d = _start(pki, htdocs, handshake=30, masters=1,
               edit=lambda t: t.replace("max connections per source "
                                        "1000000",
                                        "max connections per source 3") +
               TRUST)
    socks = []
    try:
        for i in range(8):
            s = connect(d.port)
            s.sendall(v1("198.51.100.%d" % (i + 1), 40000 + i, 443))
            socks.append(s)
        same = []
        for i in range(4):
            s = connect(d.port)
            s.sendall(v1("198.51.100.77", 41000 + i, 443))
            same.append(s)
        # Over the limit: closed by the master, not by the timeout.
        assert closed_by_server(same[3])
        d.wait_log(r"198\.51\.100\.77.*max connections per source",
                   timeout=20)
        for s in socks + same[:3]:
            s.setblocking(False)
            try:
                assert s.recv(1) != b"", "a connection within the " \
                    "limits was closed"
            except BlockingIOError:
                pass            # open, waiting for its ClientHello
        st = d.mezctl_json("show", "status")["connections"]
        assert st["source_refused"] == 1, st
        assert healthz(d.port)
    finally:
        for s in socks + same:
            s.close()
        _finish(d, request)
