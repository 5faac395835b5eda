"""
What the master learns of a connection when it accepts it: the client's
address, the local address the client called, and TCP_NODELAY on the
socket.  The master takes the peer from accept4(2) and, for a listener
bound to one address, the local address from the listener once; a
wildcard listener asks the kernel per connection.
"""

import ctypes
import json
import os
import socket

import pytest

from conftest import client_context, free_port, recv_all

SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438


def whoami(host, port, family=socket.AF_INET):
    """GET /api/v1/whoami from host:port; returns (whoami, our address)."""
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.connect((host, port))
    mine = raw.getsockname()
    s = client_context(alpn=["http/1.1"]).wrap_socket(
        raw, server_hostname="localhost")
    try:
        s.sendall(b"GET /api/v1/whoami HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = recv_all(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body), mine


def test_listener_on_one_address(daemon):
    me, mine = whoami("127.0.0.1", daemon.port)
    assert me["client"] == {"address": "127.0.0.1", "port": mine[1]}
    assert me["local"] == {"address": "127.0.0.1", "port": daemon.port}


def test_listeners_of_two_masters(make_daemon):
    """Two masters, a listening socket each: every connection, whichever
    master takes it, has its addresses."""
    d = make_daemon(masters=2)
    for _ in range(8):
        me, mine = whoami("127.0.0.1", d.port)
        assert me["client"] == {"address": "127.0.0.1", "port": mine[1]}
        assert me["local"] == {"address": "127.0.0.1", "port": d.port}


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_listeners_on_one_address_each_family(make_daemon):
    """Two listeners bound to one address each: each connection gets its
    own listener's address, not the other's."""
    p6 = free_port()
    d = make_daemon(edit=lambda t: t.replace(
        "listen on 127.0.0.1 port", "listen on ::1 port %d\n"
        "listen on 127.0.0.1 port" % p6, 1))
    for _ in range(2):
        me, mine = whoami("::1", p6, socket.AF_INET6)
        assert me["client"] == {"address": "::1", "port": mine[1]}
        assert me["local"] == {"address": "::1", "port": p6}
        me, mine = whoami("127.0.0.1", d.port)
        assert me["client"] == {"address": "127.0.0.1", "port": mine[1]}
        assert me["local"] == {"address": "127.0.0.1", "port": d.port}


@pytest.mark.parametrize("masters", [1, 2])
def test_wildcard_listener_gives_the_address_called(make_daemon, masters):
    """On 0.0.0.0 the local address is the one each client called."""
    d = make_daemon(masters=masters, edit=lambda t: t.replace(
        "listen on 127.0.0.1 port", "listen on 0.0.0.0 port", 1))
    for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.2"):
        me, mine = whoami(host, d.port)
        assert me["client"] == {"address": "127.0.0.1", "port": mine[1]}
        assert me["local"] == {"address": host, "port": d.port}


def _master_socket(pids, peer):
    """A copy of a master's socket whose peer is peer (pidfd_getfd)."""
    for pid in pids:
        s = _socket_of(pid, peer)
        if s is not None:
            return s
    return None


def _socket_of(pid, peer):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        pytest.skip("pidfd_open: %s" % os.strerror(ctypes.get_errno()))
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (
                        pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                if ctypes.get_errno() == 38:      # ENOSYS
                    pytest.skip("no pidfd_getfd")
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.type == socket.SOCK_STREAM and \
                        s.getpeername() == peer:
                    return s
            except OSError:
                pass
            s.close()
    finally:
        os.close(pidfd)
    return None


def test_accepted_connection_has_nodelay(daemon):
    """Whether the master sets it or the socket has it from its listener,
    a connection in its handshake and a routed one have TCP_NODELAY."""
    pids = [w["pid"] for n, w in daemon.workers().items()
            if n.startswith("master")]
    raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    try:
        ours = raw.getsockname()
        s = None
        for _ in range(100):
            s = _master_socket(pids, ours)
            if s is not None:
                break
            raw.settimeout(0.05)
            try:
                raw.recv(1)
            except socket.timeout:
                pass
        assert s is not None, "the master holds no socket from %r" % (ours,)
        try:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert s.getsockname() == ("127.0.0.1", daemon.port)
        finally:
            s.close()
        raw.settimeout(10)
        tls = client_context(alpn=["http/1.1"]).wrap_socket(
            raw, server_hostname="localhost")
        s = _master_socket(pids, ours)
        assert s is not None
        try:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            s.close()
        tls.close()
    finally:
        raw.close()
