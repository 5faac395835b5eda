"""
Client certificates: verified against "tls client ca", optional, and
handed to the worker as the session's identity.
"""

import hashlib
import json
import ssl
import subprocess

import pytest

from conftest import (MEZITED_TLS, _finish, _start, get_json, http_get, run,
                      tls_connect)


@pytest.fixture(scope="module")
def mtls_daemon(pki, htdocs, request):
    d = _start(pki, htdocs, client_ca=True)
    yield d
    _finish(d, request)


def curl_whoami(d, *args):
    r = run(["curl", "-sS", "-k", "--max-time", "10"] + list(args) +
            [d.url + "/api/v1/whoami"], check=False)
    return r


def test_client_cert_identity_reaches_worker(mtls_daemon, pki):
    d = mtls_daemon
    r = curl_whoami(d, "--cert", pki.client_cert, "--key", pki.client_key)
    assert r.returncode == 0, r.stderr
    me = json.loads(r.stdout)
    cert = me["certificate"]
    assert cert is not None, me
    assert "CN=alice" in cert["subject"]
    assert "Mezite Test CA" in cert["issuer"]
    der = subprocess.run(["openssl", "x509", "-in", pki.client_cert,
                          "-outform", "DER"], capture_output=True,
                         check=True).stdout
    assert cert["fingerprint"] == "SHA256:" + hashlib.sha256(der).hexdigest()
    # The key's hash: of the DER SubjectPublicKeyInfo.
    spki = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER",
                           "-in", pki.client_key], capture_output=True,
                          check=True).stdout
    assert cert["key"] == "SHA256:" + hashlib.sha256(spki).hexdigest()
    assert "alice.example" in cert["sans"]
    # the certificate is valid for 3 days from its creation
    assert cert["not_after"] - cert["not_before"] == 3 * 86400
    assert me["client"]["address"] == "127.0.0.1"


def test_no_client_cert_gives_null_certificate(mtls_daemon):
    r = curl_whoami(mtls_daemon)
    assert r.returncode == 0, r.stderr
    me = json.loads(r.stdout)
    assert "certificate" in me
    assert me["certificate"] is None


def test_python_client_cert_over_h1(mtls_daemon, pki):
    me = get_json(mtls_daemon.port, "/api/v1/whoami", cert=pki.client_cert,
                  key=pki.client_key)
    assert "CN=alice" in me["certificate"]["subject"]
    assert me["alpn"] == "http/1.1"


def test_client_cert_from_unknown_ca_fails_and_daemon_keeps_serving(
        mtls_daemon, pki):
    d = mtls_daemon
    mark = d.log_size()
    r = curl_whoami(d, "--cert", pki.rogue_cert, "--key", pki.rogue_key)
    assert r.returncode != 0, "rogue cert accepted: %s" % r.stdout
    assert "mallory" not in r.stdout
    d.wait_log(r"handshake failed", start=mark)
    assert d.healthz()
    me = get_json(d.port, "/api/v1/whoami", cert=pki.client_cert,
                  key=pki.client_key)
    assert "CN=alice" in me["certificate"]["subject"]


def test_client_cert_ignored_without_any_ca(make_daemon, pki):
    """Without "tls client ca" and without an auth worker (whose CAs the
    master would verify against), a presented certificate is not asked
    for, and none reaches the worker."""
    d = make_daemon(edit=lambda t: t.replace(
        'worker auth {\n\tuser "nobody"\n}',
        'worker auth {\n\tprefork 0\n}'))
    r = curl_whoami(d, "--cert", pki.client_cert, "--key", pki.client_key)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["certificate"] is None


def test_client_cert_of_an_unknown_ca_is_refused(daemon, pki):
    """With the auth worker's CAs the master asks for a certificate; one
    that none of them issued fails the handshake, as with "tls client
    ca": a certificate presented is verified, never ignored."""
    r = curl_whoami(daemon, "--cert", pki.client_cert, "--key",
                    pki.client_key)
    assert r.returncode != 0, r.stdout
    daemon.wait_log(r"certificate verify failed")
    assert curl_whoami(daemon).returncode == 0


@pytest.mark.parametrize("alpn", ["mezite-tunnel", "mezite-cluster-tunnel"])
def test_tunnel_protocols_require_a_certificate_at_the_handshake(daemon,
                                                                 alpn):
    """An agent's tunnel without a client certificate fails the TLS
    handshake itself (alert certificate_required), where other protocols
    may go without one."""
    if MEZITED_TLS == "libtls":
        pytest.skip("libtls asks for a certificate or not for every "
                    "session alike; the tunnel worker refuses those "
                    "without one")
    s = tls_connect(daemon.port, alpn=[alpn])
    try:
        # TLS 1.3: the client learns of the alert on its first read.
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            s.recv(1)
    finally:
        s.close()
    st, body, _ = http_get(daemon.port, "/healthz")
    assert (st, body) == (200, b"ok\n")
    daemon.wait_log(r"handshake failed: .*peer did not return a "
                    r"certificate", timeout=5)


def test_trusted_cluster_certificate_names_the_cluster(make_daemon, pki):
    """A certificate that a trusted cluster's CA issued is verified, and
    names that cluster to the workers by the name it is trusted under;
    it does not open the operators' status page, and no other cluster's
    name can be claimed with it."""
    d = make_daemon(client_ca=True, edit=lambda t: t.replace(
        "\tstatus allow 127.0.0.1\n", "") +
        'trusted cluster "east" ca "%s"\n' % pki.rogue_ca)
    r = curl_whoami(d, "--cert", pki.rogue_cert, "--key", pki.rogue_key)
    assert r.returncode == 0, r.stderr
    cert = json.loads(r.stdout)["certificate"]
    assert (cert["kind"], cert["name"]) == ("cluster", "east"), cert
    assert cert["serial"]
    st = run(["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}",
              "--cert", pki.rogue_cert, "--key", pki.rogue_key,
              d.url + "/api/v1/status"]).stdout
    assert st == "403"
    # The operators' CA still opens it, and names no cluster.
    r = curl_whoami(d, "--cert", pki.client_cert, "--key", pki.client_key)
    assert json.loads(r.stdout)["certificate"]["kind"] == ""
