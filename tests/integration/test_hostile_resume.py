"""
Session resumption attacked as a hostile client would: forged and
oversized tickets by the thousand, replays of one ticket, tickets
carried to another name, another client certificate or another client
CA, early data, and msh's session file made into something else.  Each
attack ends with a normal client served.
"""

import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import (ASAN_BUILD, MEZITED_TLS, client_context,
                      proc_cpu_seconds, proc_rss_kb, recv_all,
                      wait_for)
from test_auth import add_user
from test_resume import REQUEST, fetch, s_client
from test_msh_ssh import login
from test_resume_clients import session_path, status

pytestmark = pytest.mark.skipif(
    MEZITED_TLS != "openssl",
    reason="the libtls engine resumes no session")

EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_EARLY_DATA = 42
HS_CLIENT_HELLO, HS_SERVER_HELLO = 1, 2
MAX_RECORD = 16384


def served(d):
    """A normal client, with nothing to resume, is served."""
    st, body, _, reused = fetch(d, client_context(alpn=["http/1.1"]),
                                "/healthz")
    assert (st, body, reused) == (200, b"ok", False)


# --------------------------------------------------------------------------
# ClientHellos by hand: a real one, taken apart, changed and put back


def u16(n):
    return n.to_bytes(2, "big")


def hello_of(ctx, session=None, sni="localhost"):
    """The handshake message (not the record) of the ClientHello that
    ctx sends, offering session if given."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni, session=session)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    rec = out.read()
    msg = b""
    while rec:
        assert rec[0] == 0x16, rec[:5]
        n = int.from_bytes(rec[3:5], "big")
        msg += rec[5:5 + n]
        rec = rec[5 + n:]
    assert msg[0] == HS_CLIENT_HELLO
    return msg


class Hello:
    """A ClientHello as its fixed part and its list of extensions."""

    def __init__(self, msg):
        body = msg[4:]
        p = 34
        p += 1 + body[p]                                # session id
        self.sid = body[35:p]
        p += 2 + int.from_bytes(body[p:p + 2], "big")   # cipher suites
        p += 1 + body[p]                                # compression
        self.fixed = body[:p]
        end = p + 2 + int.from_bytes(body[p:p + 2], "big")
        p += 2
        self.exts = []
        while p < end:
            t = int.from_bytes(body[p:p + 2], "big")
            n = int.from_bytes(body[p + 2:p + 4], "big")
            self.exts.append([t, body[p + 4:p + 4 + n]])
            p += 4 + n

    def ext(self, t):
        return [e for e in self.exts if e[0] == t][0][1]

    def set_ext(self, t, data):
        [e for e in self.exts if e[0] == t][0][1] = data

    def room(self, t):
        """The most bytes extension t may hold, the others as they are."""
        others = sum(4 + len(d) for e, d in self.exts if e != t)
        return 0xffff - others - 4

    def records(self):
        exts = b"".join(u16(t) + u16(len(d)) + d for t, d in self.exts)
        body = self.fixed + u16(len(exts)) + exts
        msg = bytes([HS_CLIENT_HELLO]) + len(body).to_bytes(3, "big") + body
        out = b""
        for i in range(0, len(msg), MAX_RECORD):
            part = msg[i:i + MAX_RECORD]
            out += b"\x16\x03\x01" + u16(len(part)) + part
        return out


def psk_parts(data):
    """pre_shared_key of a ClientHello: (the first identity, its
    obfuscated age, the binders list with its length)."""
    n = int.from_bytes(data[2:4], "big")
    ident = data[4:4 + n]
    age = data[4 + n:8 + n]
    assert int.from_bytes(data[0:2], "big") == 2 + n + 4, "one identity"
    return ident, age, data[8 + n:]


def psk_with(ticket, age, binders):
    ident = u16(len(ticket)) + ticket + age
    return u16(len(ident)) + ident + binders


def ticket_of(hello, tls13):
    if tls13:
        return psk_parts(hello.ext(EXT_PRE_SHARED_KEY))[0]
    return hello.ext(EXT_SESSION_TICKET)


def with_ticket(hello, tls13, ticket):
    """The records of hello offering ticket instead of its own."""
    if tls13:
        _, age, binders = psk_parts(hello.ext(EXT_PRE_SHARED_KEY))
        hello.set_ext(EXT_PRE_SHARED_KEY, psk_with(ticket, age, binders))
    else:
        hello.set_ext(EXT_SESSION_TICKET, ticket)
    return hello.records()


def largest(hello, tls13, real):
    """The largest ticket the hello can carry, starting with real's key
    name and IV so that the master authenticates all of it."""
    room = hello.room(EXT_PRE_SHARED_KEY if tls13 else EXT_SESSION_TICKET)
    if tls13:
        binders = psk_parts(hello.ext(EXT_PRE_SHARED_KEY))[2]
        room -= 2 + 2 + 4 + len(binders)
    return real[:32] + os.urandom(room - 32)


def flip(t, i):
    b = bytearray(t)
    b[i] ^= 0x01
    return bytes(b)


# OpenSSL's tickets: key name (16), IV (16), ciphertext, HMAC (32).
FORGERIES = {
    "key name": lambda t, h, v: flip(t, 3),
    "mac": lambda t, h, v: flip(t, len(t) - 1),
    "ciphertext": lambda t, h, v: flip(t, 40),
    "truncated": lambda t, h, v: t[:len(t) - 33],
    "name only": lambda t, h, v: t[:16],
    "largest": lambda t, h, v: largest(h, v, t),
}


def server_hello(port, records, timeout=30):
    """Send records as a ClientHello: ("hello", session id, extension
    types) of the ServerHello, ("alert", description) or ("closed",)."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(records)
        buf = b""
        while True:
            while len(buf) < 5 or len(buf) < 5 + int.from_bytes(
                    buf[3:5], "big"):
                b = s.recv(65536)
                if not b:
                    return ("closed",)
                buf += b
            typ, n = buf[0], int.from_bytes(buf[3:5], "big")
            frag, buf = buf[5:5 + n], buf[5 + n:]
            if typ == 21:
                return ("alert", frag[1])
            if typ != 22:
                continue
            assert frag[0] == HS_SERVER_HELLO, frag[:4]
            body = frag[4:]
            sid = body[35:35 + body[34]]
            p = 35 + body[34] + 3
            end = p + 2 + int.from_bytes(body[p:p + 2], "big")
            p += 2
            types = []
            while p < end:
                types.append(int.from_bytes(body[p:p + 2], "big"))
                p += 4 + int.from_bytes(body[p + 2:p + 4], "big")
            return ("hello", sid, types)


def resumed(answer, hello, tls13):
    """Whether the ServerHello took the ticket: in TLS 1.3 it names the
    PSK; in TLS 1.2 it echoes the session id the client made up for it
    (a full handshake's is empty: the master keeps no session cache)."""
    assert answer[0] == "hello", answer
    if tls13:
        return EXT_PRE_SHARED_KEY in answer[2]
    return len(answer[1]) > 0 and answer[1] == hello.sid


def ctx_for(tls13):
    ctx = client_context(alpn=["http/1.1"])
    v = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    return ctx


def real_hello(d, tls13):
    """A client's ClientHello offering the ticket it was just given."""
    ctx = ctx_for(tls13)
    _, _, sess, _ = fetch(d, ctx, "/healthz")
    assert sess.has_ticket
    return ctx, sess


VERSIONS = pytest.mark.parametrize("tls13", [True, False],
                                   ids=["tls1_3", "tls1_2"])


@VERSIONS
def test_real_ticket_by_hand_resumes(daemon, tls13):
    """The control: the hello as the client made it resumes, and in
    TLS 1.3 a binder that does not match the ticket is refused, which
    shows that the master opened that ticket."""
    ctx, sess = real_hello(daemon, tls13)
    h = Hello(hello_of(ctx, sess))
    assert resumed(server_hello(daemon.port, h.records()), h, tls13)
    if tls13:
        ticket, age, binders = psk_parts(h.ext(EXT_PRE_SHARED_KEY))
        h.set_ext(EXT_PRE_SHARED_KEY,
                  psk_with(ticket, age, flip(binders, len(binders) - 1)))
        answer = server_hello(daemon.port, h.records())
        assert answer[0] in ("alert", "closed"), answer
    served(daemon)


@VERSIONS
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_ticket_gets_a_full_handshake(daemon, tls13, forgery):
    ctx, sess = real_hello(daemon, tls13)
    h = Hello(hello_of(ctx, sess))
    forged = FORGERIES[forgery](ticket_of(h, tls13), h, tls13)
    answer = server_hello(daemon.port, with_ticket(h, tls13, forged))
    assert not resumed(answer, h, tls13), answer
    served(daemon)


# --------------------------------------------------------------------------
# openssl s_client's sessions, their tickets changed in the DER


def der_read(b, i):
    """(tag, start of the value, end of the value) of the DER at i."""
    tag, n = b[i], b[i + 1]
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i + 2:i + 2 + k], "big")
        return tag, i + 2 + k, i + 2 + k + n
    return tag, i + 2, i + 2 + n


def der(tag, value):
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    k = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | k]) + n.to_bytes(k, "big") + value


def der_children(b):
    """The TLVs of a SEQUENCE, as (tag, bytes) pairs."""
    tag, p, end = der_read(b, 0)
    assert tag == 0x30
    out = []
    while p < end:
        t, s, e = der_read(b, p)
        out.append((t, b[p:e]))
        p = e
    return out


PEM_TAG = "SSL SESSION PARAMETERS"
TICKET_TAG = 0xaa           # [10] EXPLICIT OCTET STRING: the ticket
MAX_EARLY_DATA_TAG = 0xaf   # [15] EXPLICIT INTEGER


def session_der(path):
    with open(path) as f:
        text = f.read()
    m = re.search(r"-----BEGIN %s-----\n(.*?)-----END" % PEM_TAG, text,
                  re.S)
    return base64.b64decode(m.group(1))


def session_write(path, children):
    b = der(0x30, b"".join(v for _, v in children))
    lines = base64.encodebytes(b).decode()
    with open(path, "w") as f:
        f.write("-----BEGIN %s-----\n%s-----END %s-----\n" % (
            PEM_TAG, lines, PEM_TAG))


def session_ticket(children):
    v = [v for t, v in children if t == TICKET_TAG][0]
    _, p, _ = der_read(v, 0)
    t, s, e = der_read(v, p)
    assert t == 0x04
    return v[s:e]


def session_with_ticket(children, ticket):
    return [(t, der(TICKET_TAG, der(0x04, ticket)) if t == TICKET_TAG
             else v) for t, v in children]


# The largest ticket s_client offers: its other extensions take a few
# hundred bytes of the ClientHello's 64 KiB.
S_CLIENT_FORGERIES = {
    "key name": lambda t: flip(t, 3),
    "mac": lambda t: flip(t, len(t) - 1),
    "ciphertext": lambda t: flip(t, 40),
    "truncated": lambda t: t[:len(t) - 33],
    "largest": lambda t: t[:32] + os.urandom(64000),
}


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
@pytest.mark.parametrize("forgery", sorted(S_CLIENT_FORGERIES))
def test_forged_session_completes_a_full_handshake(daemon, tmp_path,
                                                   version, forgery):
    """openssl s_client offers a forged ticket with the session's own
    secrets: the handshake is a full one, and the request is served."""
    sess = str(tmp_path / "sess.pem")
    s_client(daemon, sess, version)
    children = der_children(session_der(sess))
    ticket = session_ticket(children)
    assert len(ticket) > 64
    forged = S_CLIENT_FORGERIES[forgery](ticket)
    session_write(sess, session_with_ticket(children, forged))
    assert session_ticket(der_children(session_der(sess))) == forged
    out = s_client(daemon, sess, version, resume=True)
    assert "New, TLSv1.%s" % version[-1] in out and "Reused" not in out, out
    served(daemon)


# --------------------------------------------------------------------------
# a flood of forged tickets


FLOOD = 3000
# The master's RSS once the flood has gone, and what the flood may have
# added to it: a forged ticket is freed with its handshake (measured
# here: 10.4 MiB before, 10.6 MiB at most and after).
# AddressSanitizer's allocator keeps up to 256 MiB of freed memory in
# quarantine, which these handshakes fill: its RSS says nothing of ours.
RSS_AFTER_KB = 32 * 1024
RSS_GROWTH_KB = 8 * 1024
# CPU per forged hello: a full handshake's (X25519 and the ca process's
# signature), about 1 ms here; the bound leaves room for a noisy machine.
CPU_PER_HELLO = 0.02


def test_flood_of_forged_tickets_stays_bounded(make_daemon):
    """Thousands of ClientHellos with forged tickets, TLS 1.3 and 1.2,
    the largest among them: none resumes, and the master's CPU and
    memory stay those of as many full handshakes."""
    d = make_daemon()
    hellos = []
    for tls13 in (True, False):
        ctx, sess = real_hello(d, tls13)
        for name in sorted(FORGERIES):
            h = Hello(hello_of(ctx, sess))
            forged = FORGERIES[name](ticket_of(h, tls13), h, tls13)
            hellos.append((h, tls13, with_ticket(h, tls13, forged)))
    master = d.worker_pid("master")
    rss0, cpu0 = proc_rss_kb(master), proc_cpu_seconds(master)
    peak = [rss0]
    errors = []

    def send(k):
        try:
            for i in range(k, FLOOD, 4):
                h, tls13, rec = hellos[i % len(hellos)]
                answer = server_hello(d.port, rec)
                if resumed(answer, h, tls13):
                    errors.append((i, answer))
                if i % 200 == 0:
                    peak[0] = max(peak[0], proc_rss_kb(master))
        except Exception as e:      # noqa: reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    cpu = proc_cpu_seconds(master) - cpu0
    try:
        wait_for(lambda: proc_rss_kb(master) < RSS_AFTER_KB, 10,
                 interval=0.2, what="the master's memory to come back")
    except AssertionError:
        pass
    after = proc_rss_kb(master)
    print("master: RSS %d KiB before, %d at most, %d after; "
          "%.2f s CPU for %d forged hellos" % (rss0, peak[0], after, cpu,
                                              FLOOD))
    assert d.worker_pid("master") == master, "the master was restarted"
    if not ASAN_BUILD:
        assert after < RSS_AFTER_KB, (rss0, peak[0], after)
        assert after - rss0 < RSS_GROWTH_KB, (rss0, peak[0], after)
    assert cpu < FLOOD * CPU_PER_HELLO, cpu
    served(d)


# --------------------------------------------------------------------------
# replays


def test_one_ticket_offered_by_many_clients_at_once(daemon):
    """A TLS 1.3 ticket should be used once; clients that all offer the
    same one at once each get served, resumed or not."""
    ctx = ctx_for(True)
    _, _, sess, _ = fetch(daemon, ctx, "/healthz")
    results, errors = [], []

    def one():
        try:
            st, body, _, reused = fetch(daemon, ctx, "/healthz", sess)
            results.append((st, body, reused))
        except Exception as e:      # noqa: reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert len(results) == 32
    assert all(r[:2] == (200, b"ok") for r in results), results
    # Stateless tickets: the master keeps no record of one used.
    assert any(r[2] for r in results), results
    served(daemon)


def sni_fetch(d, ctx, sni, session=None):
    """(served, resumed, the certificate the session carries)."""
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni, session=session) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n" %
                  sni.encode())
        data = recv_all(s)
        return (data.endswith(b"\r\n\r\nok") or data.endswith(b"ok\n"),
                s.session_reused, s.getpeercert(binary_form=True),
                s.session)


@VERSIONS
def test_ticket_of_one_name_is_not_taken_under_another(daemon, tls13):
    """Each keypair resumes only its own sessions: a ticket made under
    one server name, offered under a name another certificate serves,
    gets a full handshake with that certificate."""
    ctx = ctx_for(tls13)
    ok, _, local, sess = sni_fetch(daemon, ctx, "localhost")
    assert ok
    ok, reused, alt, alt_sess = sni_fetch(daemon, ctx, "alt.test", sess)
    assert ok and not reused
    assert alt != local
    # Under its own name each resumes.
    ok, reused, cert, _ = sni_fetch(daemon, ctx, "alt.test", alt_sess)
    assert ok and reused and cert == alt
    ok, _, _, sess = sni_fetch(daemon, ctx, "localhost")
    ok, reused, cert, _ = sni_fetch(daemon, ctx, "localhost", sess)
    assert ok and reused and cert == local
    # And the other way, from a name that routes elsewhere.
    ok, reused, _, _ = sni_fetch(daemon, ctx, "localhost", alt_sess)
    assert ok and not reused
    served(daemon)


@pytest.fixture(scope="module")
def mtls_daemon(pki, htdocs, request):
    from conftest import _finish, _start
    d = _start(pki, htdocs, client_ca=True)
    yield d
    _finish(d, request)


def s_whoami(d, sess, version, out_sess, cert=None, key=None):
    """/api/v1/whoami through openssl s_client: (the certificate the
    server sees, whether the session was resumed)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
           "-servername", "localhost", "-alpn", "http/1.1", "-ign_eof",
           version, "-sess_out" if out_sess else "-sess_in", sess]
    if cert:
        cmd += ["-cert", cert, "-key", key]
    r = subprocess.run(cmd, input=REQUEST % b"/api/v1/whoami",
                       capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    body = out.partition("\r\n\r\n")[2]
    assert body.startswith("{"), out[-2000:]
    me = json.JSONDecoder().raw_decode(body)[0]["certificate"]
    return me, "Reused," in out


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_ticket_is_its_certificate_whatever_the_client_shows(
        mtls_daemon, pki, tmp_path, version):
    """A session is its client's, certificate and all: offered without
    the certificate it was made with, it resumes as that certificate;
    made without one, offered with one, it resumes as nobody.  No
    certificate is asked for on resumption, so none is taken."""
    d = mtls_daemon
    sess = str(tmp_path / "sess.pem")
    me, reused = s_whoami(d, sess, version, True, pki.client_cert,
                          pki.client_key)
    assert me is not None and not reused
    again, reused = s_whoami(d, sess, version, False)
    assert reused and again == me
    anon = str(tmp_path / "anon.pem")
    nobody, reused = s_whoami(d, anon, version, True)
    assert nobody is None and not reused
    again, reused = s_whoami(d, anon, version, False, pki.client_cert,
                             pki.client_key)
    assert reused and again is None
    served(d)


def s_client_alpn(d, sess, version, alpn, out_sess=False, cert=None,
                  key=None):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
           "-servername", "localhost", "-alpn", alpn, "-ign_eof", version,
           "-sess_out" if out_sess else "-sess_in", sess]
    if cert:
        cmd += ["-cert", cert, "-key", key]
    r = subprocess.run(cmd, input=b"", capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(
        errors="replace")


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_anonymous_ticket_does_not_open_a_protocol_that_needs_a_certificate(
        mtls_daemon, pki, tmp_path, version):
    """A session made without a certificate, resumed for an agent's
    tunnel, which requires one: refused in the handshake, as a full
    handshake without a certificate is, not handed to the worker."""
    d = mtls_daemon
    sess = str(tmp_path / "anon.pem")
    s_client(d, sess, version)
    mark = d.log_size()
    s_client_alpn(d, sess, version, "mezite-tunnel")
    d.wait_log(r"handshake failed: .*alert certificate required", start=mark)
    assert "-> tunnel" not in d.log()[mark:], d.log()[mark:]
    # A session made with a certificate resumes for the tunnel.
    cs = str(tmp_path / "cert.pem")
    s_client_alpn(d, cs, version, "mezite-tunnel", out_sess=True,
                  cert=pki.client_cert, key=pki.client_key)
    mark = d.log_size()
    out = s_client_alpn(d, cs, version, "mezite-tunnel")
    assert "Reused, TLSv1.%s" % version[-1] in out, out
    d.wait_log(r"alpn mezite-tunnel sni localhost -> tunnel", start=mark)
    served(d)


def test_ticket_does_not_resume_after_the_client_ca_changes(make_daemon,
                                                            pki, tmp_path):
    """A reload that changes "tls client ca" changes the session id
    context: the tickets made before it get a full handshake.  A
    reload that changes nothing keeps them."""
    d = make_daemon(client_ca=True)
    sess13, sess12 = str(tmp_path / "13.pem"), str(tmp_path / "12.pem")
    s_client(d, sess13, "-tls1_3")
    s_client(d, sess12, "-tls1_2")

    def reload():
        mark = d.log_size()
        os.kill(d.pid, signal.SIGHUP)
        d.wait_log(r"configuration reloaded", 30, mark)
        wait_for(lambda: len(re.findall(
            r"master(?:\.\d+)?\[\d+\]: configured: ", d.log()[mark:])) >=
            d.params["masters"], 30, what="every master configured")
    reload()
    for sess, v in ((sess13, "-tls1_3"), (sess12, "-tls1_2")):
        out = s_client(d, sess, v, resume=True)
        assert "Reused" in out, out
    d.write_conf(client_ca='tls client ca "%s"' % pki.rogue_ca)
    reload()
    for sess, v in ((sess13, "-tls1_3"), (sess12, "-tls1_2")):
        out = s_client(d, sess, v, resume=True)
        assert "New, TLSv1.%s" % v[-1] in out and "Reused" not in out, out
    served(d)


# --------------------------------------------------------------------------
# 0-RTT


def with_max_early_data(children, n):
    """The session as if the ticket had allowed n bytes of early data:
    the client then sends them."""
    field = (MAX_EARLY_DATA_TAG, der(MAX_EARLY_DATA_TAG,
                                     der(0x02, n.to_bytes(n.bit_length() // 8 + 1,
                                                        "big"))))
    out = [c for c in children if c[0] != MAX_EARLY_DATA_TAG]
    at = len([c for c in out if c[0] < MAX_EARLY_DATA_TAG])
    return out[:at] + [field] + out[at:]


def test_early_data_is_refused_and_not_served(daemon, tmp_path):
    """The master's tickets allow no early data (max_early_data 0): a
    client that sends some anyway, with a ticket the master opens, has
    it rejected; the request is served once, after the handshake, or
    not at all, never from the early data."""
    sess = str(tmp_path / "sess.pem")
    first = s_client(daemon, sess, "-tls1_3")
    assert "Max Early Data: 0" in first, first
    session_write(sess, with_max_early_data(
        der_children(session_der(sess)), 16384))
    early = tmp_path / "early"
    early.write_bytes(REQUEST % b"/early-data-marker")
    mark = daemon.log_size()
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % daemon.port,
         "-servername", "localhost", "-alpn", "http/1.1", "-tls1_3",
         "-ign_eof", "-sess_in", sess, "-early_data", str(early)],
        input=REQUEST % b"/healthz", capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert "Early data was rejected" in out, out[-3000:] + r.stderr.decode()
    assert "Reused, TLSv1.3" in out, out[-3000:]
    # The request sent after the handshake is served, once; the early
    # one is not.
    assert out.count("HTTP/1.") == 1, out[-3000:]
    assert "\r\n\r\nok" in out, out[-3000:]
    assert "early-data-marker" not in daemon.log()[mark:]
    served(daemon)


# --------------------------------------------------------------------------
# msh's session file, made into something else


@pytest.fixture
def home(tmp_path):
    return str(tmp_path / "mezite")


def spoil_huge(path):
    """A session file past the largest session (16 KiB of PEM): its
    header is right, its session too long to be one."""
    with open(path) as f:
        head = f.read().partition("-----BEGIN")[0]
    with open(path, "w") as f:
        f.write(head + "-----BEGIN SSL SESSION PARAMETERS-----\n" +
                ("A" * 64 + "\n") * 300)
    return "is not a session file", True


def spoil_sparse(path):
    """A file of a gigabyte, sparse: refused by its size, unread."""
    with open(path, "r+b") as f:
        f.truncate(1 << 30)
    return "is too large", True


def spoil_fifo(path):
    """A FIFO nobody writes to: opened without waiting for a writer."""
    os.unlink(path)
    os.mkfifo(path, 0o600)
    return "is not a regular file", False


def spoil_dev_zero(path):
    os.unlink(path)
    os.symlink("/dev/zero", path)
    return "is a symbolic link", False


def spoil_directory(path):
    os.unlink(path)
    os.mkdir(path, 0o700)
    return "is not a regular file", False


@pytest.mark.parametrize("spoil", [spoil_huge, spoil_sparse, spoil_fifo,
                                   spoil_dev_zero, spoil_directory])
def test_msh_refuses_a_session_file_that_is_not_one(daemon, home, spoil):
    """msh reads its session file bounded, without following a link or
    waiting on a FIFO: anything but a small regular file is refused with
    a word, the handshake is a full one, and the request is served.  A
    regular file is replaced by the new session; anything else is left
    as it is."""
    user = "hr-" + spoil.__name__.split("_", 1)[1].replace("_", "-")
    add_user(daemon, user)
    login(daemon, home, user)
    status(daemon, home, user)
    path = session_path(home)
    word, replaced = spoil(path)
    before = os.lstat(path)
    resumed_now, err = status(daemon, home, user)
    assert not resumed_now, err
    assert word in err, err
    if replaced:
        st = os.lstat(path)
        assert st.st_size < 16384 and st.st_mode & 0o777 == 0o600
        resumed_now, err = status(daemon, home, user)
        assert resumed_now and err == "", err
    else:
        assert "not replacing it" in err, err
        st = os.lstat(path)
        assert (st.st_mode, st.st_ino) == (before.st_mode, before.st_ino)
    served(daemon)
