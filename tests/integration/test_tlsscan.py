"""
The port as a TLS scanner sees it (sslscan): no protocol below TLS 1.2,
no cipher without forward secrecy or authenticated encryption, no weak
key exchange group, no compression, no renegotiation a client may start,
and not vulnerable to Heartbleed.  A normal client is served after.
"""

import subprocess
import xml.etree.ElementTree as ET

from conftest import healthz

# What a cipher may be made of: ECDHE or TLS 1.3's own key exchange,
# AEAD only, 128 bits at least.
AEAD = ("GCM", "CHACHA20", "POLY1305")


def scan(port):
    p = subprocess.run(["sslscan", "--no-colour", "--xml=-",
                        "127.0.0.1:%d" % port], capture_output=True,
                       timeout=180)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = p.stdout.decode(errors="replace")
    return ET.fromstring(out[out.index("<?xml"):])


def test_sslscan_finds_nothing_weak(daemon):
    doc = scan(daemon.port)
    test = doc.find("ssltest")
    assert test is not None, ET.tostring(doc)[:500]

    protos = {(p.get("type"), p.get("version")): p.get("enabled")
              for p in test.iter("protocol")}
    assert protos, "sslscan reported no protocols"
    on = sorted(k for k, v in protos.items() if v == "1")
    assert on and set(on) <= {("tls", "1.2"), ("tls", "1.3")}, on

    ciphers = [c for c in test.iter("cipher")
               if c.get("status") in ("accepted", "preferred")]
    assert ciphers, "sslscan found no cipher"
    for c in ciphers:
        name, ver = c.get("cipher"), c.get("sslversion")
        assert ver in ("TLSv1.2", "TLSv1.3"), (ver, name)
        assert int(c.get("bits")) >= 128, (ver, name)
        assert any(a in name for a in AEAD), "not AEAD: %s %s" % (ver,
                                                                 name)
        if ver == "TLSv1.2":
            assert name.startswith("ECDHE-"), "no forward secrecy: " + name

    for g in test.iter("group"):
        # Finite-field groups cost the server far more than the client.
        assert not g.get("name", "").startswith("ffdhe"), g.attrib
        assert int(g.get("bits", "128")) >= 128, g.attrib  # security bits

    comp = test.find("compression")
    if comp is not None:
        assert comp.get("supported") == "0", comp.attrib
    reneg = test.find("renegotiation")
    if reneg is not None:
        assert reneg.get("secure") != "0" or \
            reneg.get("supported") == "0", reneg.attrib
    for hb in test.iter("heartbleed"):
        assert hb.get("vulnerable") == "0", hb.attrib
    assert healthz(daemon.port)
