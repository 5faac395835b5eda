"""
Hostile clients of the auth worker, through mezited.  Each test states
the memory the worker may grow by, and ends with a normal client served
and the store intact.

The bounds come from the worker's limits (grpc.h): at most 100 streams
per connection, 64 KiB per request message, 16 MiB of request messages
held across all connections, and no more read from a connection whose
replies its client does not take.
"""

import os
import socket
import sqlite3
import ssl
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from authclient import (AUTH_NAME, Client, RawH2, code_of, grpc_message,
                        grpc_status, keypair)
from conftest import ASAN_BUILD, proc_rss_kb, tls_connect
from test_auth import PASSWORD, add_user, auth_pid

HEALTH = "/grpc.health.v1.Health/Check"
# The worker's memory may grow by this much under each attack: a few
# MiB of allocator slack, never the size of what the client claims.
# AddressSanitizer's allocator keeps what is freed for a while: its
# builds are not measured.
RSS_SLACK_KB = 16 * 1024


def bounded(grew_kb, limit_kb=RSS_SLACK_KB):
    return grew_kb < limit_kb or ASAN_BUILD


def served(d, pki):
    with Client(d.port, pki.ca) as c:
        assert c.health().status == 1


def store_intact(d):
    db = sqlite3.connect(os.path.join(d.state, "auth", "mezite.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_4gb_length_prefix_costs_nothing(daemon, pki):
    pid = auth_pid(daemon)
    before = proc_rss_kb(pid)
    c = RawH2(daemon.port)
    try:
        sid = c.open(HEALTH, grpc_message(b"", length=0xffffffff),
                     end=False)
        st = c.wait(sid)
        assert grpc_status(st) == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        # What follows the refused prefix is dropped unread, not held.
        for _ in range(64):
            try:
                c.conn.send_data(sid, b"\0" * 16384)
            except Exception:       # noqa: BLE001 - the stream was reset
                break
            c.flush()
        ok = c.wait(c.open(HEALTH, grpc_message(b"")))
        assert grpc_status(ok) == 0
    finally:
        c.close()
    assert bounded(proc_rss_kb(pid) - before)
    assert auth_pid(daemon) == pid
    served(daemon, pki)


def test_10000_streams_on_one_connection(daemon, pki):
    """Ten thousand requests opened at once, before any server SETTINGS
    is read: those past the limit are refused, memory stays bounded,
    and the connection's other streams and other clients are served."""
    pid = auth_pid(daemon)
    before = proc_rss_kb(pid)
    s = tls_connect(daemon.port, alpn=["h2"], sni=AUTH_NAME, timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    # Each request is whole: HEADERS, then a DATA frame with the message.
    body = grpc_message(b"")
    for i in range(10000):
        sid = 1 + 2 * i
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"),
                                (":path", HEALTH),
                                (":authority", AUTH_NAME),
                                ("content-type", "application/grpc"),
                                ("te", "trailers")])
        conn.send_data(sid, body, end_stream=True)
    data = conn.data_to_send()
    answered = refused = 0
    peak = before
    done = set()
    off = 0
    goaway = None
    try:
        # One thread: a slice of the flood, then what the server sent,
        # so that neither side waits on the other.
        deadline = time.time() + 60
        while len(done) < 10000 and time.time() < deadline:
            if off < len(data):
                s.settimeout(30)
                s.sendall(data[off:off + 32768])
                off += 32768
            s.settimeout(0.05 if off < len(data) else 5)
            try:
                b = s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            if not b:
                break
            for ev in conn.receive_data(b):
                sid = getattr(ev, "stream_id", 0)
                if isinstance(ev, h2.events.StreamEnded):
                    answered += 1
                    done.add(sid)
                elif isinstance(ev, h2.events.StreamReset):
                    refused += 1
                    done.add(sid)
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    goaway = ev
                    deadline = 0
            out = conn.data_to_send()
            if out:
                s.settimeout(30)
                s.sendall(out)
            peak = max(peak, proc_rss_kb(pid))
    finally:
        s.close()
    # Some were served, the others refused, or the server gave up on
    # the connection (GOAWAY) past a rate of refusals.
    assert answered >= 100, (answered, refused, goaway)
    assert answered + refused == 10000 or goaway is not None, (
        answered, refused)
    assert bounded(peak - before), (before, peak)
    assert auth_pid(daemon) == pid
    served(daemon, pki)


def test_client_that_never_reads_its_replies(daemon, pki):
    """Requests keep coming and no reply is read: the worker stops
    reading that connection instead of queueing replies."""
    pid = auth_pid(daemon)
    before = proc_rss_kb(pid)
    c = RawH2(daemon.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(2)
    body = grpc_message(b"")
    sent = 0
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            # Open streams without waiting for the server's SETTINGS:
            # the local h2 state machine cannot tell how many it allows.
            try:
                for _ in range(50):
                    c.open(HEALTH, body, flush=False)
                c.sock.sendall(c.conn.data_to_send())
            except (socket.timeout, OSError, Exception):  # noqa: BLE001
                break
            sent += 50
    finally:
        rss = proc_rss_kb(pid)
        c.close()
    assert sent > 0
    assert bounded(rss - before), (before, rss, sent)
    served(daemon, pki)


def test_login_flood_from_200_connections(fresh_daemon, pki, tmp_path):
    """200 connections logging in as fast as they can, right and wrong
    passwords: the worker's memory stays bounded (yescrypt's 16 MiB is
    used one hash at a time), other clients are served during the
    flood, and the store is intact after it."""
    d = fresh_daemon
    add_user(d, "victim")
    add_user(d, "other", password="another password here")
    pid = auth_pid(d)
    before = proc_rss_kb(pid)
    _, spki = keypair(str(tmp_path))
    stop = threading.Event()
    results = {"ok": 0, "denied": 0, "other": 0}
    lock = threading.Lock()

    def flood(i):
        with Client(d.port, pki.ca) as c:
            while not stop.is_set():
                pw = PASSWORD if i % 2 else "wrong %d" % i
                code, msg = code_of(c.login, "victim", pw, spki)
                with lock:
                    if code == grpc.StatusCode.OK:
                        results["ok"] += 1
                    elif code in (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED):
                        results["denied"] += 1
                    else:
                        results["other"] += 1
                        results.setdefault("what", set()).add(
                            (code, msg[:80]))
    threads = [threading.Thread(target=flood, args=(i,))
               for i in range(200)]
    for t in threads:
        t.start()
    peak = before
    try:
        deadline = time.time() + 8
        while time.time() < deadline:
            peak = max(peak, proc_rss_kb(pid))
            time.sleep(0.2)
        # During the flood, the health check is answered.
        t0 = time.time()
        served(d, pki)
        during = time.time() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert results["denied"] > 0 and results["other"] == 0, results
    # yescrypt holds 16 MiB while it hashes; one hash at a time.
    assert bounded(peak - before, 32 * 1024 + RSS_SLACK_KB), (before, peak)
    assert during < 20, during
    assert auth_pid(d) == pid
    store_intact(d)
    users = [u["name"] for u in d.mezctl_json("user", "list")]
    assert users == ["other", "victim"]
    # The flood was audited: its failures, and its refusals.
    types = {e["type"] for e in d.mezctl_json("show", "audit", "limit",
                                               "1000")}
    assert {"login.failed", "login.throttled"} <= types, types
    served(d, pki)


@pytest.mark.parametrize("junk", [b"\x00" * 5 + os.urandom(64),
                                  os.urandom(4096)])
def test_garbage_instead_of_http2(daemon, pki, junk):
    """Bytes that are not HTTP/2 on ALPN mezite-auth: the session is
    closed, the worker goes on."""
    pid = auth_pid(daemon)
    s = tls_connect(daemon.port, alpn=["mezite-auth"])
    try:
        assert s.selected_alpn_protocol() == "mezite-auth"
        s.sendall(junk)
        s.settimeout(10)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    finally:
        s.close()
    assert auth_pid(daemon) == pid
    served(daemon, pki)


def test_slow_request_is_timed_out(make_daemon, pki):
    """A request that stops half-way holds its stream only until the
    idle timeout; the worker then closes the connection."""
    d = make_daemon(edit=lambda t: t.replace("timeout idle 60",
                                             "timeout idle 2"))
    c = RawH2(d.port)
    try:
        c.open(HEALTH, b"\x00\x00\x00", end=False)
        c.sock.settimeout(15)
        t0 = time.time()
        while c.pump():
            pass
        assert time.time() - t0 < 12
    finally:
        c.close()
    served(d, pki)
