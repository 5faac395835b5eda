"""
Hostile TLS clients: what a client can make the master pay for, and what
it can make a worker believe.  After each, a normal client is served.

  - key exchanges that cost the server far more than the client
  - a session cut short without close_notify (truncation)
  - floods of connections that never finish their handshake (memory)
  - more clients than the master has descriptors for
  - descriptors the supervisor was started with
"""

import hashlib
import json
import os
import re
import resource
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import (ASAN_BUILD, MEZITED_TLS, client_hello, http_get,
                      proc_rss_kb, tls_connect, wait_for)


def s_client(port, *args, timeout=20):
    """openssl s_client -brief with these options; (rc, its output)."""
    r = subprocess.run(["openssl", "s_client", "-brief", "-connect",
                        "127.0.0.1:%d" % port, "-servername", "localhost"] +
                       list(args), input=b"", capture_output=True,
                       timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def assert_served(d):
    st, body, _ = http_get(d.port, "/healthz", timeout=30)
    assert (st, body) == (200, b"ok\n")


# --------------------------------------------------------------------------
# key exchange groups


def test_ffdhe_key_exchange_is_refused_by_default(daemon):
    """A finite-field group costs the master about 100 times what X25519
    does; it is not offered unless configured."""
    rc, out = s_client(daemon.port, "-groups", "ffdhe2048")
    assert rc != 0, out
    assert "CONNECTION ESTABLISHED" not in out, out
    assert_served(daemon)


@pytest.mark.parametrize("group,shown", [("X25519", "X25519"),
                                         ("P-256", "prime256v1")])
def test_elliptic_curve_groups_are_accepted(daemon, group, shown):
    rc, out = s_client(daemon.port, "-groups", group)
    assert rc == 0, out
    assert "CONNECTION ESTABLISHED" in out, out
    assert re.search(r"Server Temp Key: .*%s" % shown, out), out
    assert_served(daemon)


def test_configured_groups_allow_ffdhe(make_daemon):
    d = make_daemon(extra='tls groups "X25519:ffdhe2048"\n')
    rc, out = s_client(d.port, "-groups", "ffdhe2048")
    assert rc == 0, out
    assert "CONNECTION ESTABLISHED" in out, out
    # Only what is listed: P-384 is a default but not in this list.
    rc, out = s_client(d.port, "-groups", "P-384")
    assert rc != 0, out
    assert_served(d)


# --------------------------------------------------------------------------
# truncation: a session that ends without close_notify


# Within HTTP/2's initial flow-control window: no WINDOW_UPDATE to wait for.
BODY = 48 * 1024


def half_close_raw(s):
    """Send the client's FIN with no close_notify before it: shut down
    the TCP socket under the TLS session for writing.  The TLS session
    can still read what the server sends."""
    raw = socket.socket(fileno=os.dup(s.fileno()))
    try:
        raw.shutdown(socket.SHUT_WR)
    finally:
        raw.close()


def relayed_in(d, lport):
    """Bytes the master has relayed from the client on this port."""
    for c in d.mezctl_json("show", "connections"):
        if c["client"]["port"] == lport:
            return c["bytes_in"]
    return 0


def read_to_end(s, timeout=15):
    """What the server sends until it closes, cleanly or not."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ssl.SSLError, ConnectionResetError):
        pass
    except socket.timeout:
        raise AssertionError("the server kept the truncated session "
                             "open; got %r" % data[:200])
    return data


def close_both_ways(s, timeout=15):
    """Send our close_notify, then read until the server's.  TLS 1.3
    closes one direction at a time: the server may still send records
    (an HTTP/2 WINDOW_UPDATE, say) that crossed our close_notify, which
    SSL_shutdown alone would take for a protocol error.  What the server
    sends after its answer without being asked is read first, until it
    has been quiet for a moment: SSL_shutdown, which reads right after
    sending ours, must not find it either."""
    s.settimeout(0.5)
    try:
        while s.recv(65536):
            pass
    except ssl.SSLZeroReturnError:
        pass                    # the server closed first: unwrap answers
    except (socket.timeout, TimeoutError):
        pass
    s.setblocking(False)
    try:
        s.unwrap()
        return                  # the server's close_notify was already in
    except ssl.SSLWantReadError:
        pass                    # ours is sent; the server's is to come
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except ssl.SSLZeroReturnError:
        return
    raise AssertionError("the server closed without close_notify")


def h2_frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + \
        struct.pack(">BBI", ftype, flags, stream) + payload


def hpack_literal(index, value):
    """A header field without indexing, its name from the static table."""
    v = value.encode()
    assert index < 15 and len(v) < 127
    return bytes([index, len(v)]) + v


def upload(kind, body, whole):
    """(ALPN, bytes) of a POST of body to the digest endpoint over
    HTTP/1.1 with Content-Length, chunked, or HTTP/2; all of it if whole,
    else the request and half the body."""
    part = body if whole else body[:len(body) // 2]
    if kind == "content-length":
        return ("http/1.1",
                b"POST /api/v1/digest HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + part)
    if kind == "chunked":
        return ("http/1.1",
                b"POST /api/v1/digest HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" +
                b"%x\r\n%s\r\n" % (len(part), part) +
                (b"0\r\n\r\n" if whole else b""))
    length = str(len(body))
    block = (b"\x83"                        # :method POST
             b"\x87" +                      # :scheme https
             hpack_literal(4, "/api/v1/digest") +
             hpack_literal(1, "localhost") +
             b"\x0f\x0d" + bytes([len(length)]) +
             length.encode())               # content-length
    out = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
           h2_frame(4, 0, 0, b"") +          # SETTINGS
           h2_frame(1, 4, 1, block))         # HEADERS, END_HEADERS
    for i in range(0, len(part), 16384):
        last = whole and i + 16384 >= len(part)
        out += h2_frame(0, 1 if last else 0, 1, part[i:i + 16384])
    return "h2", out


KINDS = ["content-length", "chunked", "h2"]


def response_ended(kind, got):
    """Has the whole response to upload() arrived?  Over HTTP/2 the frame
    that ends the stream may come after the one carrying the digest, and
    a close_notify sent before it would meet data the server may still
    send (TLS 1.3 closes one direction at a time)."""
    if kind != "h2":
        return re.search(rb"\{[^{}]*\}", got) is not None
    off = 0
    while off + 9 <= len(got):
        n = int.from_bytes(got[off:off + 3], "big")
        ftype, flags = got[off + 3], got[off + 4]
        stream = int.from_bytes(got[off + 5:off + 9], "big") & 0x7fffffff
        if off + 9 + n > len(got):
            break
        if stream == 1 and ftype in (0, 1) and flags & 1:
            return True
        off += 9 + n
    return False


@pytest.mark.parametrize("kind", KINDS)
def test_whole_upload_then_close_notify_gets_the_digest(daemon, kind):
    """The clean end is unchanged: the whole body, the digest back, then
    close_notify both ways.  (And the requests below are well formed.)"""
    body = os.urandom(BODY)
    alpn, data = upload(kind, body, True)
    s = tls_connect(daemon.port, alpn=[alpn])
    try:
        s.sendall(data)
        s.settimeout(15)
        got = b""
        while not response_ended(kind, got):
            b = s.recv(65536)
            assert b, "closed before the digest: %r" % got[:300]
            got += b
        close_both_ways(s)
    finally:
        s.close()
    digest = json.loads(re.search(rb"\{[^{}]*\}", got).group(0))
    assert digest == {"bytes": len(body),
                      "sha256": hashlib.sha256(body).hexdigest()}
    assert_served(daemon)


@pytest.mark.parametrize("kind", KINDS)
def test_fin_without_close_notify_mid_upload_is_an_abort(daemon, kind):
    """Half the body, then a TCP FIN with no close_notify: the worker must
    not take the end of the stream for the end of the body.  No digest
    comes back, and the master logs the session as aborted."""
    alpn, data = upload(kind, os.urandom(BODY), False)
    mark = daemon.log_size()
    s = tls_connect(daemon.port, alpn=[alpn])
    try:
        assert s.selected_alpn_protocol() == alpn
        lport = s.getsockname()[1]
        s.sendall(data)
        # The worker has it all, by the master's count, before the FIN.
        wait_for(lambda: relayed_in(daemon, lport) >= len(data), 15,
                 what="the master to relay the upload")
        half_close_raw(s)
        got = read_to_end(s)
    finally:
        s.close()
    assert b"sha256" not in got, got[:300]
    daemon.wait_log(r"conn \d+: 127\.0\.0\.1:%d: ended without "
                    r"close_notify, aborted" % lport, start=mark)
    assert_served(daemon)


# --------------------------------------------------------------------------
# memory after floods of connections that never finish their handshake


FLOOD = 5000
RSS_AFTER_KB = 32 * 1024        # the master's RSS once a flood has gone
# AddressSanitizer keeps freed chunks in quarantine, and rounds each
# connection (with its redzones) up to a size class: 5,000 connections
# leave a few more MiB behind, whatever malloc_trim() gives back.
if ASAN_BUILD:
    RSS_AFTER_KB = 40 * 1024


def raise_nofile(n):
    """Let this test hold n descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        assert hard >= n, "the test needs %d descriptors, hard limit %d" % (
            n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def conn_status(d):
    return d.mezctl_json("show", "status")["connections"]


def flood_then_measure(d, hold):
    """Open FLOOD connections, each set up by hold(sock), and keep them
    until the handshake timeout has closed every one.  Returns the
    master's RSS in KiB before, at the peak, and once the connections
    are gone, when it is within RSS_AFTER_KB or 10 s have passed."""
    master = d.worker_pid("master")
    raise_nofile(FLOOD + 1024)
    before = conn_status(d)["handshake_failures"]
    socks = []
    start = proc_rss_kb(master)
    peak = [start]

    def timed_out():
        peak[0] = max(peak[0], proc_rss_kb(master))
        st = conn_status(d)
        return st["handshake_failures"] - before >= FLOOD and \
            st["handshakes"] == 0
    try:
        for i in range(FLOOD):
            s = socket.create_connection(("127.0.0.1", d.port), 30)
            socks.append(s)
            hold(s)
            if i % 500 == 0:
                peak[0] = max(peak[0], proc_rss_kb(master))
        wait_for(timed_out, 120, interval=0.2,
                 what="the handshake timeout to close the flood")
    finally:
        for s in socks:
            s.close()
    try:
        wait_for(lambda: proc_rss_kb(master) < RSS_AFTER_KB, 10,
                 interval=0.2, what="the master's memory to come back")
    except AssertionError:
        pass
    after = proc_rss_kb(master)
    assert d.worker_pid("master") == master, "the master was restarted"
    print("master RSS: start %d KiB, peak %d KiB, after %d KiB" % (
        start, peak[0], after))
    return start, peak[0], after


def test_memory_comes_back_after_a_silent_flood(make_daemon):
    """Thousands of connections that send nothing: each costs the master
    little while it waits, and all of it comes back once the handshake
    timeout has closed them."""
    d = make_daemon(extra="max connections 10000\n")
    start, peak, after = flood_then_measure(d, lambda s: None)
    # Each holds no TLS state yet: 8 KiB is a fifth of a handshake's.
    assert peak - start < FLOOD * 8, \
        "master RSS grew by %d KiB for %d silent connections" % (
            peak - start, FLOOD)
    assert after < RSS_AFTER_KB, \
        "master RSS %d KiB after the flood (peak %d KiB)" % (after, peak)
    assert_served(d)


@pytest.mark.skipif(ASAN_BUILD, reason="AddressSanitizer's allocator")
def test_memory_comes_back_after_a_stalled_handshake_flood(make_daemon):
    """Thousands of connections that send a ClientHello and no more: the
    master answers each and holds its half-done handshake, the most a
    connection costs before it is a session; once the handshake timeout
    has closed them, the master gives that memory back."""
    d = make_daemon(extra="max connections 10000\n")
    hello = client_hello(("http/1.1",))
    _, peak, after = flood_then_measure(d, lambda s: s.sendall(hello))
    assert after < RSS_AFTER_KB, \
        "master RSS %d KiB after the flood (peak %d KiB)" % (after, peak)
    assert_served(d)


# --------------------------------------------------------------------------
# descriptors


NOFILE = 64                     # the daemon's open-file limit
CLIENTS = 60                    # about twice the sessions that fit in it


def test_more_clients_than_descriptors_wait_and_are_served(make_daemon):
    """With more clients than the master has descriptors for, no session
    is dropped after its handshake: the master stops accepting while it
    lacks the descriptors a session needs, the kernel queues the others,
    and they are served as the first ones leave."""
    d = make_daemon(prlimit_nofile=NOFILE)
    master = d.worker_pid("master")
    with open("/proc/%d/limits" % master) as f:
        assert re.search(r"Max open files\s+%d\s+%d" % (NOFILE, NOFILE),
                         f.read())
    mark = d.log_size()
    release = threading.Event()
    lock = threading.Lock()
    served, failed = [], []

    def client(i):
        try:
            s = tls_connect(d.port, alpn=["http/1.1"], timeout=90)
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                          b"\r\n")
                got = b""
                while not got.endswith(b"\r\n0\r\n\r\n"):  # chunked
                    b = s.recv(4096)
                    if not b:
                        break
                    got += b
                ok = got.startswith(b"HTTP/1.1 200") and \
                    got.endswith(b"\r\n\r\n3\r\nok\n\r\n0\r\n\r\n")
                with lock:
                    (served if ok else failed).append((i, got[:60]))
                # Hold the session, and its descriptors, until told.
                release.wait(60)
            finally:
                s.close()
        except Exception as e:   # noqa: BLE001 - every failure counts
            with lock:
                failed.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        # The first sessions are served and held, the others wait: the
        # count stops growing short of CLIENTS.
        last = [-1, time.monotonic()]

        def settled():
            with lock:
                n = len(served) + len(failed)
            if n != last[0]:
                last[:] = [n, time.monotonic()]
            return n == CLIENTS or (n > 0 and
                                    time.monotonic() - last[1] >= 2)
        wait_for(settled, 60, interval=0.1, what="the first sessions")
        with lock:
            held = len(served)
        assert held < CLIENTS, "the limit never bit: all %d served at " \
            "once" % CLIENTS
    finally:
        release.set()
    for t in threads:
        t.join(120)
    assert not failed, "%d of %d clients failed (%d held at first): %s" % (
        len(failed), CLIENTS, held, failed[:5])
    assert len(served) == CLIENTS
    log = d.log()[mark:]
    assert "Too many open files" not in log, log[-2000:]
    assert d.worker_pid("master") == master, "the master was restarted"
    print("%d sessions held at first, all %d served" % (held, CLIENTS))
    assert_served(d)


# --------------------------------------------------------------------------
# descriptors the supervisor was started with


def open_fds(pid):
    """What each descriptor of a process refers to."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            pass                # closed meanwhile
    return out


def test_inherited_descriptor_is_closed_and_not_passed_on(make_daemon):
    """A descriptor left open by whatever started mezited, such as a
    shell's pipe, is closed by the supervisor and reaches no child."""
    r, w = os.pipe()
    try:
        pipe = "pipe:[%d]" % os.fstat(r).st_ino
        d = make_daemon(pass_fds=(r,))
        procs = {"supervisor": d.pid}
        procs.update({n: p["pid"] for n, p in d.running().items()})
        # and the masters, https.0, .1, auth.0, ssh.0, tunnel.0 (and
        # ca.0 with the OpenSSL engine)
        assert len(set(procs.values())) == 6 + d.params["masters"] + (
            MEZITED_TLS == "openssl"), procs
        # and the ssh worker's spare session processes
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rindex(")") + 2:].split()[1]) == procs["ssh.0"]:
                procs["session %s" % pid] = int(pid)
        assert len(set(procs.values())) > 6 + d.params["masters"], procs
        for name, pid in procs.items():
            fds = open_fds(pid)
            assert pipe not in fds.values(), \
                "%s (pid %d) holds the inherited pipe: %s" % (name, pid, fds)
    finally:
        os.close(r)
        os.close(w)
    assert_served(d)
