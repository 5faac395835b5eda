"""
TLS session resumption: tickets sealed with the supervisor's keys, for
TLS 1.3 and TLS 1.2, with and without client certificates; keys that
rotate, survive a restart of the master, and can be turned off.
"""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import (MEZITED_TLS, _finish, _start, client_context,
                      recv_all, wait_for)
from test_auth import add_user, login, ok

pytestmark = pytest.mark.skipif(
    MEZITED_TLS != "openssl",
    reason="the libtls engine resumes no session")

REQUEST = b"GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n"


def s_client(d, sess, version, resume=False, extra=()):
    """openssl s_client asking /healthz; the session is written to sess,
    or, with resume, offered from it.  Returns what s_client printed."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
           "-servername", "localhost", "-alpn", "http/1.1", "-ign_eof",
           version] + list(extra)
    cmd += ["-sess_in", sess] if resume else ["-sess_out", sess]
    r = subprocess.run(cmd, input=REQUEST % b"/healthz",
                       capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert "\r\n\r\nok" in out, out[-2000:] + r.stderr.decode()
    return out


def fetch(d, ctx, path, session=None, timeout=10):
    """One HTTP/1.0 request on its own TLS connection:
    (status, body, the session, whether it was resumed)."""
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    with ctx.wrap_socket(raw, server_hostname="localhost",
                         session=session) as s:
        s.sendall(REQUEST % path.encode())
        data = recv_all(s)
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        return status, body.strip(), s.session, s.session_reused


@pytest.fixture(scope="module")
def mtls_daemon(pki, htdocs, request):
    d = _start(pki, htdocs, client_ca=True)
    yield d
    _finish(d, request)


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_openssl_client_resumes(mtls_daemon, tmp_path, version):
    sess = str(tmp_path / "sess.pem")
    first = s_client(mtls_daemon, sess, version)
    assert "New, TLSv1." in first
    assert "TLS session ticket lifetime hint: 14400" in first, first
    again = s_client(mtls_daemon, sess, version, resume=True)
    assert "Reused, TLSv1.%s" % version[-1] in again, again


def test_python_session_is_reused(mtls_daemon):
    ctx = client_context(alpn=["http/1.1"])
    st, body, sess, reused = fetch(mtls_daemon, ctx, "/healthz")
    assert (st, body, reused) == (200, b"ok", False)
    assert sess is not None and sess.has_ticket
    st, body, _, reused = fetch(mtls_daemon, ctx, "/healthz", sess)
    assert (st, body, reused) == (200, b"ok", True)


def whoami(d, ctx, session=None):
    st, body, sess, reused = fetch(d, ctx, "/api/v1/whoami", session)
    assert st == 200, body
    return json.loads(body)["certificate"], sess, reused


def test_client_certificate_identity_survives_resumption(mtls_daemon, pki):
    ctx = client_context(alpn=["http/1.1"], cert=pki.client_cert,
                         key=pki.client_key)
    me, sess, reused = whoami(mtls_daemon, ctx)
    assert not reused and me is not None
    again, _, reused = whoami(mtls_daemon, ctx, sess)
    assert reused
    assert again == me
    # Without a certificate nobody is named, resumed or not.
    anon = client_context(alpn=["http/1.1"])
    me, sess, _ = whoami(mtls_daemon, anon)
    assert me is None
    me, _, reused = whoami(mtls_daemon, anon, sess)
    assert reused and me is None


def refused(d, ctx, session=None):
    """Whether a request on a new connection (resuming session, if
    given) gets no answer: the handshake or the session was refused."""
    try:
        st, _, _, _ = fetch(d, ctx, "/api/v1/whoami", session)
    except (OSError, ValueError):
        return True
    return st == 0


def test_revoked_certificate_does_not_resume(fresh_daemon, pki, tmp_path):
    d = fresh_daemon
    add_user(d, "rita")
    res, cert, key = login(d, pki, tmp_path, "rita")
    ctx = client_context(alpn=["http/1.1"], cert=cert, key=key)
    me, sess, _ = whoami(d, ctx)
    assert (me["kind"], me["name"]) == ("user", "rita")
    # The ticket resumes while the certificate is good.
    me, _, reused = whoami(d, ctx, sess)
    assert reused and me["name"] == "rita"
    ok(d.mezctl("cert", "revoke", res.serial))
    wait_for(lambda: refused(d, ctx), 10, interval=0.2,
             what="the revoked certificate refused")
    mark = d.log_size()
    assert refused(d, ctx, sess)
    # Refused after the resumption, not by verification (which says
    # "certificate verify failed").
    d.wait_log(r"handshake failed: .*alert certificate revoked", start=mark)


def short_lived_client(pki, tmp_path, seconds):
    """A client certificate of the test CA that expires in seconds."""
    with open(pki.ca, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(pki.ca_key, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, "brief")]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(seconds=seconds))
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cpath, kpath = tmp_path / "brief.pem", tmp_path / "brief.key"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(kpath, 0o600)
    return str(cpath), str(kpath), cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc)


def test_expired_certificate_does_not_resume(mtls_daemon, pki, tmp_path):
    """A ticket outlives the client certificate it was issued with: the
    resumption is refused once the certificate has expired, as a full
    handshake would be."""
    d = mtls_daemon
    cert, key, end = short_lived_client(pki, tmp_path, 4)
    ctx = client_context(alpn=["http/1.1"], cert=cert, key=key)
    me, sess, _ = whoami(d, ctx)
    assert "brief" in json.dumps(me), me
    me, _, reused = whoami(d, ctx, sess)
    assert reused
    left = (end - datetime.datetime.now(datetime.timezone.utc)
            ).total_seconds()
    time.sleep(max(left, 0) + 1.5)
    mark = d.log_size()
    assert refused(d, ctx, sess)
    d.wait_log(r"handshake failed: .*alert certificate expired", start=mark)
    # Without the ticket, verification refuses it too.
    assert refused(d, ctx)


def rotations(d, start):
    return len(re.findall(r"session ticket key rotated",
                          d.log()[start:]))


def test_ticket_of_a_retired_key_gets_a_full_handshake(make_daemon,
                                                       tmp_path):
    d = make_daemon(extra="tls ticket lifetime 1\n")
    sess = str(tmp_path / "sess.pem")
    mark = d.log_size()
    first = s_client(d, sess, "-tls1_3")
    assert "TLS session ticket lifetime hint: 2" in first, first
    # The key that sealed it stops sealing, then stops opening; one
    # more rotation leaves time for the master to have heard.
    wait_for(lambda: rotations(d, mark) >= 3, 30, interval=0.2,
             what="three key rotations")
    again = s_client(d, sess, "-tls1_3", resume=True)
    assert "New, TLSv1.3" in again and "Reused" not in again, again


def reload_with(d, extra):
    """Reload with extra configuration; return once every master holds
    the keys that the reload made."""
    d.write_conf(extra=extra)
    mark = d.log_size()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"configuration reloaded", 30, mark)
    wait_for(lambda: len(re.findall(
        r"master(?:\.\d+)?\[\d+\]: session ticket keys: 2 live",
        d.log()[mark:])) >= d.params["masters"], 30,
        what="every master holding the new keys")


def test_previous_key_opens_and_renews_then_retires(fresh_daemon,
                                                    tmp_path):
    """A new lifetime starts a new key, so reloads rotate on demand: the
    ticket's key, now the previous one, still opens it; one rotation
    more and it is refused."""
    d = fresh_daemon
    sess = str(tmp_path / "sess.pem")
    first = s_client(d, sess, "-tls1_3")
    assert first.count("Post-Handshake New Session Ticket arrived") == 2
    again = s_client(d, sess, "-tls1_3", resume=True)
    assert "Reused, TLSv1.3" in again, again
    # A new ticket after each resumption: a client may use each once.
    assert again.count("Post-Handshake New Session Ticket arrived") == 1
    reload_with(d, "tls ticket lifetime 3h\n")
    again = s_client(d, sess, "-tls1_3", resume=True)
    assert "Reused, TLSv1.3" in again, again
    assert again.count("Post-Handshake New Session Ticket arrived") == 1
    reload_with(d, "tls ticket lifetime 4h\n")
    again = s_client(d, sess, "-tls1_3", resume=True)
    assert "New, TLSv1.3" in again and "Reused" not in again, again


def test_tickets_survive_a_restart_of_the_master(fresh_daemon, tmp_path):
    d = fresh_daemon
    sess = str(tmp_path / "sess.pem")
    s_client(d, sess, "-tls1_3")
    master = d.worker_pid("master")
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: d.running().get("master", {}).get("pid") not in
             (None, master) and d.healthz(), 30, interval=0.2,
             what="the master restarted")
    again = s_client(d, sess, "-tls1_3", resume=True)
    assert "Reused, TLSv1.3" in again, again


def test_tickets_no_sends_none(make_daemon, tmp_path):
    d = make_daemon(extra="tls tickets no\n")
    sess = str(tmp_path / "sess.pem")
    for version in ("-tls1_3", "-tls1_2"):
        if os.path.exists(sess):
            os.unlink(sess)
        first = s_client(d, sess, version)
        assert "TLS session ticket" not in first, first
        # TLS 1.3 leaves s_client nothing to keep.
        if os.path.exists(sess):
            again = s_client(d, sess, version, resume=True)
            assert "Reused" not in again, again
    ctx = client_context(alpn=["http/1.1"])
    _, _, sess, _ = fetch(d, ctx, "/healthz")
    assert not sess.has_ticket

