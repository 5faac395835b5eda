"""
Many connections from one address that never finish their handshake
(slowloris): the per-source limits refuse them at accept, and when the
master is full it sheds them, so that clients from other addresses are
served at once rather than after the handshake timeout.

The flood comes from 127.0.0.2, the clients that must be served from
127.0.0.1: both are loopback addresses, and the master sees them as two
sources.
"""

import errno
import os
import resource
import socket
import time

import pytest

from conftest import client_hello, http_get, wait_for

FLOOD_SRC = "127.0.0.2"
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

# How long a client from another address may take, TLS handshake and
# request, while the flood is open: about a hundred times what it takes
# on an idle machine, and well under the handshake timeout (30 s here)
# that used to be the wait.
SERVED_WITHIN = 3.0
HANDSHAKE = 30


def raise_nofile(n):
    """Let this test hold n descriptors (the hard limit is the most)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip("needs %d descriptors, hard limit %d" % (n, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def flood(port, n, first=b"", src=FLOOD_SRC):
    """n connections from src, each sending first and no more.
    Connections the master resets at once are among them: it does so
    only after the kernel completed them; those reset before connect(2)
    returned are None."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            # The port is chosen at connect, per destination: more than
            # the ephemeral range's worth of sources would fit.
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((src, 0))
            s.settimeout(10)
            try:
                s.connect(("127.0.0.1", port))
            except ConnectionResetError:
                # Reset as connect(2) returned: refused at accept.
                s.close()
                socks[-1] = None
                continue
            if first:
                try:
                    s.send(first)
                except OSError as e:
                    # Reset already: refused at accept.
                    assert e.errno in (errno.ECONNRESET, errno.EPIPE), e
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        if s is not None:
            s.close()


def conn_status(d):
    return d.mezctl_json("show", "status")["connections"]


def timed_get(port):
    """/healthz over a new TLS connection from 127.0.0.1: seconds."""
    t0 = time.monotonic()
    st, body, _ = http_get(port, "/healthz", timeout=HANDSHAKE * 2)
    took = time.monotonic() - t0
    assert (st, body) == (200, b"ok\n")
    return took


@pytest.mark.heavy
def test_silent_flood_from_one_source_is_held_to_its_limit(make_daemon):
    """12,000 connections from one address that never send: the master
    keeps the 200 that max connections per source allows, resets the
    others as it accepts them, and a client from another address is
    served at once while all are open."""
    n, limit = 12000, 200
    raise_nofile(n + 1000)
    d = make_daemon(handshake=HANDSHAKE,
                    extra="max connections per source %d\n" % limit)
    master = d.worker_pid("master")
    fds_before = len(os.listdir("/proc/%d/fd" % master))
    before = conn_status(d)
    socks = flood(d.port, n)
    try:
        wait_for(lambda: conn_status(d)["source_refused"] -
                 before["source_refused"] >= n - limit, 30, interval=0.2,
                 what="the master to have accepted the flood")
        took = timed_get(d.port)
        st = conn_status(d)
        # The client's connection has gone by now, or is going.
        held = st["active"] - before["active"]
        assert limit <= held <= limit + 1, st
        # Seen from outside too: a descriptor for each, and a few more.
        fds = len(os.listdir("/proc/%d/fd" % master)) - fds_before
        assert limit <= fds <= limit + 8, "master holds %d more " \
            "descriptors" % fds
        assert st["source_refused"] - before["source_refused"] == \
            n - limit, st
        assert took < SERVED_WITHIN, \
            "served in %.2f s beside %d silent connections" % (took, n)
    finally:
        close_all(socks)
    print("12,000 silent: %d held, served in %.3f s" % (held, took))


def test_stalled_handshakes_are_shed_when_full(make_daemon):
    """2,000 connections from one address that send the first bytes of a
    ClientHello and stop, with max connections 500 and no per-source
    limit: the master stays full of them, but sheds them for a client
    from another address, which is served long before the handshake
    timeout would have made room."""
    n, maxconn = 2000, 500
    raise_nofile(n + 1000)
    d = make_daemon(handshake=HANDSHAKE,
                    extra="max connections %d\n" % maxconn)
    mark = d.log_size()
    before = conn_status(d)
    hello = client_hello(("http/1.1",))
    socks = flood(d.port, n, first=hello[:20])
    try:
        st = conn_status(d)
        # The premise: the flood filled the master.
        assert st["active"] >= maxconn, st
        assert st["handshakes"] >= maxconn, st
        took = timed_get(d.port)
        after = conn_status(d)
        assert after["shed"] > before["shed"], after
        assert after["active"] <= maxconn + 1, after
        assert took < SERVED_WITHIN, \
            "served in %.2f s beside %d stalled handshakes" % (took, n)
        # The "full" line is not repeated for each connection.
        assert d.log()[mark:].count("max connections (%d) reached" %
                                    maxconn) <= 2
    finally:
        close_all(socks)
    print("2,000 stalled: %d shed, served in %.3f s" % (
        after["shed"] - before["shed"], took))


def held_by_source(d):
    """The master's connections in their handshake, by client address."""
    out = {}
    for c in d.mezctl_json("show", "connections"):
        if c["state"] == "handshake":
            a = c["client"]["address"]
            out[a] = out.get(a, 0) + 1
    return out


def test_the_source_holding_most_gives_way(make_daemon):
    """With max connections 400 full of one address's stalled
    handshakes, a second address flooding too takes the first one's
    places until both hold about half; past that each one's newcomers
    are refused, and a third address is still served."""
    n, maxconn = 300, 400
    raise_nofile(2 * n + 1000)
    d = make_daemon(handshake=HANDSHAKE,
                    extra="max connections %d\n" % maxconn)
    hello = client_hello(("http/1.1",))
    socks = []
    try:
        socks += flood(d.port, n, first=hello[:20], src="127.0.0.2")
        socks += flood(d.port, n, first=hello[:20], src="127.0.0.3")
        wait_for(lambda: sum(held_by_source(d).values()) >= maxconn, 30,
                 interval=0.2, what="the master to be full")
        held = held_by_source(d)
        # 400 slots, 600 asking: each ends with its half, give or take
        # the newcomer that tipped the balance.
        assert abs(held.get("127.0.0.2", 0) - maxconn // 2) <= 1, held
        assert abs(held.get("127.0.0.3", 0) - maxconn // 2) <= 1, held
        took = timed_get(d.port)
        assert took < SERVED_WITHIN, \
            "served in %.2f s beside two floods" % took
    finally:
        close_all(socks)
    print("two floods: held %s, served in %.3f s" % (held, took))


def test_connection_rate_per_source(make_daemon):
    """A burst of connections from one address beyond max connection
    rate: the excess is reset at accept and logged in one line, and a
    client from another address, with an allowance of its own, is
    served."""
    rate, n = 20, 80
    # One master: several would each hold a share of the rate.
    d = make_daemon(handshake=HANDSHAKE, masters=1,
                    extra="max connection rate %d per source\n" % rate)
    mark = d.log_size()
    before = conn_status(d)
    socks = flood(d.port, n)
    try:
        def accepted():
            st = conn_status(d)
            return st["source_refused"] - before["source_refused"] + \
                st["active"] - before["active"] >= n
        wait_for(accepted, 30, interval=0.2,
                 what="the master to have accepted the burst")
        after = conn_status(d)
        refused = after["source_refused"] - before["source_refused"]
        held = after["active"] - before["active"]
        # The bucket refills at rate a second while the burst lasts:
        # allow it a few seconds' worth.
        assert refused + held == n, after
        assert held >= rate, after
        assert refused >= n - 4 * rate, \
            "%d of %d refused at %d a second" % (refused, n, rate)
        took = timed_get(d.port)
        # Refused connections are reset, the others are held open.
        reset = 0
        for s in socks:
            if s is None:
                reset += 1
                continue
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    reset += 1
            except ConnectionResetError:
                reset += 1
            except BlockingIOError:
                pass
        assert reset == refused, (reset, refused)
        lines = [ln for ln in d.log()[mark:].splitlines()
                 if "source %s:" % FLOOD_SRC in ln]
        assert len(lines) == 1, lines
        assert "max connection rate per source reached" in lines[0]
    finally:
        close_all(socks)
    print("rate %d/s: %d of %d refused, other source served in %.3f s" % (
        rate, refused, n, took))
