"""
Routing at the TLS layer: ALPN, the default route, routes without a
worker, and certificate selection by SNI.
"""

import json
import ssl
import subprocess

import pytest

from conftest import (get_json, peer_cert_der, pem_to_der, run, tls_connect,
                      wait_for)


def curl(d, path, *args):
    """curl -k; returns the body and curl's %{...} write-out values."""
    wfmt = "\n@@W %{http_code} %{http_version} %{local_port}"
    r = run(["curl", "-sS", "-k", "--max-time", "20", "-w", wfmt] +
            list(args) + [d.url + path], check=False)
    assert r.returncode == 0, "curl failed (%d): %s" % (r.returncode,
                                                       r.stderr)
    body, sep, tail = r.stdout.rpartition("\n@@W ")
    assert sep, r.stdout[-300:]
    code, version, lport = tail.split()
    return {"body": body, "http_code": code, "http_version": version,
            "local_port": int(lport)}


@pytest.mark.parametrize("flag,version", [("--http2", "2"),
                                          ("--http1.1", "1.1")])
def test_curl_gets_status_page(daemon, flag, version):
    wo = curl(daemon, "/", flag)
    assert wo["http_code"] == "200"
    assert wo["http_version"] == version
    page = wo["body"]
    assert "Mezite" in page
    assert "Connections by route" in page
    assert "Processes" in page


@pytest.mark.parametrize("flag,alpn", [("--http2", "h2"),
                                       ("--http1.1", "http/1.1")])
def test_whoami_shows_alpn_and_real_client_address(daemon, flag, alpn):
    wo = curl(daemon, "/api/v1/whoami", flag)
    assert wo["http_code"] == "200"
    me = json.loads(wo["body"])
    assert me["alpn"] == alpn
    assert me["worker"] == "https"
    assert me["mode"] == "relay"
    assert me["client"]["address"] == "127.0.0.1"
    assert me["client"]["port"] == wo["local_port"]
    assert me["local"]["port"] == daemon.port
    assert me["worker_pid"] in [w["pid"] for n, w in daemon.workers().items()
                                if n.startswith("https.")]


def s_client_request(port, request, extra=()):
    """Send request through openssl s_client; return its stdout (bytes)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-quiet", "-noservername"] + list(extra)
    r = subprocess.run(cmd, input=request, capture_output=True, timeout=20)
    return r


@pytest.mark.parametrize("extra", [[], ["-alpn", "foo"]],
                         ids=["no-alpn", "unknown-alpn"])
def test_s_client_without_known_alpn_lands_on_default_route(daemon, extra):
    req = b"GET /api/v1/whoami HTTP/1.0\r\nHost: localhost\r\n\r\n"
    r = s_client_request(daemon.port, req, extra)
    out = r.stdout
    assert out.startswith(b"HTTP/1."), (out[:300], r.stderr[-500:])
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", head
    me = json.loads(body)
    assert me["worker"] == "https"
    assert me["alpn"] == ""
    assert me["sni"] == ""


# Each worker type can be left out (prefork 0): its sessions are closed.
MEZITE_IDS = [("mezite-ssh", "ssh")]


@pytest.mark.parametrize("alpn,worker", MEZITE_IDS,
                         ids=[a for a, _ in MEZITE_IDS])
def test_mezite_alpn_without_worker_closes_cleanly(make_daemon, alpn,
                                                   worker):
    daemon = make_daemon(edit=lambda t: t.replace(
        'worker ssh {\n\tuser "nobody"\n}',
        'worker ssh {\n\tprefork 0\n}'))
    before = daemon.status()["connections"]["route_failures"]
    mark = daemon.log_size()
    s = tls_connect(daemon.port, alpn=[alpn, "h2"])
    try:
        assert s.selected_alpn_protocol() == alpn
        s.settimeout(10)
        # A clean close is close_notify: recv returns b"".  A TCP close
        # without it raises SSLEOFError (suppress_ragged_eofs=False), a
        # reset raises ConnectionResetError.
        assert s.recv(1024) == b""
    finally:
        s.close()
    daemon.wait_log(r"alpn %s sni localhost: no %s worker is running, "
                    r"closing" % (alpn, worker), start=mark)
    after = wait_for(
        lambda: (lambda n: n if n > before else None)(
            daemon.status()["connections"]["route_failures"]),
        5, what="route_failures to increase")
    assert after == before + 1
    assert daemon.healthz()


def cert_text(der):
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                        "-subject", "-ext", "subjectAltName"],
                       input=der, capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def s_client_cert(port, servername):
    args = ["-servername", servername] if servername else ["-noservername"]
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port] + args,
                       input=b"", capture_output=True, timeout=20)
    pem = r.stdout.decode()
    a = pem.find("-----BEGIN CERTIFICATE-----")
    b = pem.find("-----END CERTIFICATE-----")
    assert a >= 0 and b > a, "no certificate from s_client: %s" % r.stderr
    return ssl.PEM_cert_to_DER_cert(pem[a:b + 25])


def test_sni_alt_selects_alt_certificate(daemon):
    der = s_client_cert(daemon.port, "alt.test")
    text = cert_text(der)
    assert "CN = alt.test" in text
    assert "DNS:alt.test" in text
    assert der == pem_to_der(daemon.alt_cert)


@pytest.mark.parametrize("servername", ["localhost", None],
                         ids=["sni-localhost", "no-sni"])
def test_sni_localhost_or_none_gets_default_certificate(daemon, servername):
    der = s_client_cert(daemon.port, servername)
    text = cert_text(der)
    assert "CN = localhost" in text
    assert "DNS:localhost" in text
    assert der == pem_to_der(daemon.cert)
    # Python's client agrees
    assert peer_cert_der(daemon.port, sni=servername) == der


@pytest.mark.parametrize("sni,expect", [("alt.test", "alt.test"),
                                        ("localhost", "localhost"),
                                        (None, "")])
def test_whoami_reports_sni(daemon, sni, expect):
    me = get_json(daemon.port, "/api/v1/whoami", sni=sni)
    assert me["sni"] == expect
