"""
mezctl over the control socket: show, reload, log level, and who may do
what.
"""

import json
import os
import re

import pytest

from conftest import _Conn, client_context, http_get, run, tls_connect


def test_show_status_text(daemon):
    r = daemon.mezctl("show", "status")
    assert r.returncode == 0, r.stderr
    assert "connections:" in r.stdout
    assert re.search(r"^https\s+\d+\s+\d+", r.stdout, re.M), r.stdout


def test_show_status_json(daemon):
    st = daemon.mezctl_json("show", "status")
    assert isinstance(st, dict)
    for k in ("version", "uptime", "connections", "bytes", "routes",
              "processes"):
        assert k in st, k
    assert "https" in [r["worker"] for r in st["routes"]]
    assert st["draining"] is False


def test_show_workers_lists_master_and_both_https(daemon):
    r = daemon.mezctl("show", "workers")
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[1:]
            if ln.strip()}
    n = daemon.params["masters"]
    masters = ["master"] if n == 1 else ["master.%d" % i for i in range(n)]
    for name in masters + ["https.0", "https.1"]:
        assert name in rows, r.stdout
        assert rows[name][-1] == "running", r.stdout
    ws = daemon.workers()
    assert set(ws) >= set(masters + ["https.0", "https.1"])
    for name in masters + ["https.0", "https.1"]:
        assert ws[name]["pid"] == int(rows[name][1])
        assert os.path.exists("/proc/%d" % ws[name]["pid"])


@pytest.fixture
def idle_conn(daemon):
    """A TLS connection left open (keep-alive) after one HTTP/1.1
    request; yields (socket, whoami of that very connection)."""
    c = _Conn(daemon.port, client_context(["http/1.1"]), "localhost", 10)
    c.connect()
    c.request("GET", "/api/v1/whoami", headers={"Host": "localhost"})
    r = c.getresponse()
    assert r.status == 200
    me = json.loads(r.read())
    assert not r.will_close
    yield c.sock, me
    c.close()


def test_show_connections_lists_idle_connection(daemon, idle_conn):
    s, me = idle_conn
    lport = s.getsockname()[1]
    assert me["client"]["port"] == lport
    conns = daemon.mezctl_json("show", "connections")
    assert isinstance(conns, list)
    mine = [c for c in conns if c["id"] == me["id"]]
    assert mine, "connection %d not listed: %s" % (me["id"], conns)
    c = mine[0]
    assert c["client"] == {"address": "127.0.0.1", "port": lport}
    assert c["alpn"] == "http/1.1"
    assert c["sni"] == "localhost"
    assert c["worker"] == "https"
    assert c["worker_pid"] == me["worker_pid"]
    assert c["bytes_in"] > 0 and c["bytes_out"] > 0
    # the text form names it too
    r = daemon.mezctl("show", "connections")
    assert r.returncode == 0
    assert "127.0.0.1:%d" % lport in r.stdout, r.stdout


def _without_age(text):
    """show connections' rows with the AGE column (the 8th) left out:
    it counts seconds, and may tick between two calls."""
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    assert rows and rows[0][7] == "AGE", text
    return [r[:7] + r[8:] for r in rows]


def test_prefix_sh_co_is_show_connections(daemon, idle_conn):
    s, me = idle_conn
    r = daemon.mezctl("sh", "co")
    assert r.returncode == 0, r.stderr
    full = daemon.mezctl("show", "connections")
    assert full.returncode == 0, full.stderr
    assert _without_age(r.stdout) == _without_age(full.stdout)
    assert "127.0.0.1:%d" % s.getsockname()[1] in r.stdout
    assert json.loads(daemon.mezctl("sh", "co", json_out=True).stdout)


@pytest.mark.parametrize("args,why", [
    (["frobnicate"], "unknown argument"),
    (["show", "bogus"], "unknown argument"),
    (["log", "loud"], "unknown argument"),
    ([""], "ambiguous argument"),
    (["show", ""], "ambiguous argument"),
    (["show", "status", "x"], "superfluous argument"),
    (["log"], "missing argument"),
], ids=["unknown", "show-unknown", "log-unknown", "ambiguous",
        "show-ambiguous", "superfluous", "missing"])
def test_bad_words_exit_1(daemon, args, why):
    r = daemon.mezctl(*args)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert why in r.stderr
    assert r.stdout == ""


def test_reload(fresh_daemon):
    d = fresh_daemon
    mark = d.log_size()
    r = d.mezctl("reload")
    assert r.returncode == 0, r.stderr
    assert "reload request sent" in r.stdout + r.stderr
    d.wait_log(r"configuration reloaded", start=mark)
    assert d.healthz()


def test_log_brief_and_verbose(make_daemon):
    # Without an ssh worker, whose refused sessions mark the log.
    d = make_daemon(edit=lambda t: t.replace(
        'worker ssh {\n\tuser "nobody"\n}',
        'worker ssh {\n\tprefork 0\n}'))
    debug_line = r"conn \d+: 127\.0\.0\.1:%d: alpn http/1\.1 sni localhost -> "

    def ssh_marker(start):
        """A refused session, which the master counts in a warning
        (both levels) within a second."""
        s = tls_connect(d.port, alpn=["mezite-ssh"])
        s.settimeout(10)
        assert s.recv(10) == b""
        s.close()
        d.wait_log(r"sessions closed in the last second: no worker",
                   start=start)

    mark = d.log_size()
    r = d.mezctl("log", "brief")
    assert r.returncode == 0, r.stderr
    d.wait_log(r"log level brief", start=mark)
    st, _, lport = http_get(d.port, "/healthz")
    assert st == 200
    ssh_marker(mark)    # master's lines arrive in order: A's would be in
    assert not re.search(debug_line % lport, d.log()[mark:]), \
        "debug line logged at log level brief"

    mark = d.log_size()
    r = d.mezctl("log", "verbose")
    assert r.returncode == 0, r.stderr
    d.wait_log(r"log level verbose", start=mark)
    st, _, lport = http_get(d.port, "/healthz")
    assert st == 200
    d.wait_log(debug_line % lport, start=mark)


def test_group_member_gets_read_only_access(daemon):
    # "nobody" is in "nogroup" (its primary group): show works ...
    r = daemon.mezctl("show", "status", user="nobody")
    assert r.returncode == 0, r.stderr
    assert "connections:" in r.stdout
    r = daemon.mezctl("show", "workers", user="nobody", json_out=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)
    # ... reload does not.
    mark = daemon.log_size()
    r = daemon.mezctl("reload", user="nobody")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "permission denied" in (r.stdout + r.stderr).lower()
    assert "reloading" not in daemon.log()[mark:]
    r = daemon.mezctl("log", "brief", user="nobody")
    assert r.returncode == 1, (r.stdout, r.stderr)


def test_user_outside_group_is_refused(daemon):
    r = daemon.mezctl("show", "status", user="daemon")
    assert r.returncode != 0
    assert "connections:" not in r.stdout


def test_group_held_only_at_runtime_is_not_enough(daemon):
    """Access goes by the peer's effective gid or by membership in the
    group database: a process that only holds nogroup as a runtime
    supplementary group (its user is no member) passes the socket's
    file mode but is refused by the daemon."""
    mark = daemon.log_size()
    r = run(["setpriv", "--reuid=daemon", "--regid=daemon",
             "--groups=nogroup", daemon.mezctl_for_others(), "-s",
             daemon.sock, "show", "status"], check=False)
    assert r.returncode != 0, r.stdout
    assert "connections:" not in r.stdout
    daemon.wait_log(r"control: refused uid 1\b", start=mark)
