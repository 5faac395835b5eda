"""
Hostile TLS clients: what a client can make the master pay for, and what
it can make a worker believe.  After each, a normal client is served.

  - key exchanges that cost the server far more than the client
  - a session cut short without close_notify (truncation)
  - floods of connections that never finish their handshake (memory)
  - more clients than the master has descriptors for
  - descriptors the supervisor was started with
"""

import re
import subprocess

import pytest

from conftest import http_get


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
