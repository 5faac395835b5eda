"""
kTLS outside the VM: on a kernel without TLS support (this machine's),
or in a build on libtls, `ktls auto` relays and `ktls yes` refuses to
start.  The kernel path itself is tested in a VM by make check-ktls
(tests/ktls/).
"""

import socket

from conftest import MEZITED, MEZITED_TLS, run


def kernel_has_tls():
    """The same probe mezited makes: the tls ULP on a connected socket."""
    with socket.socket() as l:
        l.bind(("127.0.0.1", 0))
        l.listen(1)
        with socket.create_connection(l.getsockname()) as c:
            a, _ = l.accept()
            with a:
                try:
                    a.setsockopt(socket.SOL_TCP, 31, b"tls")  # TCP_ULP
                    return True
                except OSError:
                    return False


def test_ktls_yes_needs_kernel_support(daemon):
    text = daemon.conf_text(extra="ktls yes\n")
    conf = daemon.conf + ".yes"
    with open(conf, "w") as f:
        f.write(text)
    r = run([MEZITED, "-n", "-f", conf], check=False)
    if MEZITED_TLS == "libtls":
        assert r.returncode == 1
        assert "ktls yes: this mezited is built on libtls" in r.stderr
        assert conf in r.stderr
    elif kernel_has_tls():
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1
        assert "ktls yes: the kernel has no TLS support" in r.stderr
        assert conf in r.stderr


def test_ktls_auto_relays_without_kernel_support(daemon):
    """The default, ktls auto: every session is relayed here, and the
    status says kTLS is off."""
    st = daemon.status()
    if kernel_has_tls() and MEZITED_TLS == "openssl":
        assert st["ktls"] is True
        return
    assert st["ktls"] is False
    assert st["handoffs"]["relay"] >= 1
    assert st["handoffs"]["ktls"] == 0
    assert "kTLS off" in daemon.mezctl("show", "status").stdout
