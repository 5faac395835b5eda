#!/usr/bin/python3
"""
Check what a quick run of the bench (make check-bench) produced: every
measurement of every server in every run, numbers where numbers belong,
every target judged, and no server left running.  The figures of a quick
run mean little and are not judged here.

usage: check.py OUT        (the BENCH_OUT of the run: OUT, OUT.json,
                           OUT.ssh.json, OUT.tunnels.json and, from the
                           VM, OUT.ktls.json and OUT.tunnels-vm.json)
"""

import json
import os
import re
import sys

ALL = ["mezited", "haproxy>h2o", "h2o", "haproxy>sink", "sink"]
HTTP = ["mezited", "haproxy>h2o", "h2o"]
FIGURES = {
    "conn": (ALL + ["mezited-km"], ["cpu", "rate"]),
    "resume": (["mezited", "haproxy>h2o"], ["cpu", "rate"]),
    "lat": (ALL, ["p50", "p99", "p999"]),
    "down": (ALL, ["cpu", "rate"]),
    "up": (ALL, ["cpu", "rate"]),
    "h2": (HTTP, ["cpu", "rate"]),
    "mem": (ALL, ["kb"]),
}
# Two of them (master prefork 2 against HAProxy nbthread 2) only with a
# mezited whose master forks; the table says when it cannot.
TARGETS = 13
MP = ["mezited-p2", "haproxy2>h2o"]
MP_ABSENT = "this mezited has no prefork for its master"
RUNS = 3
KTLS_SERVERS = ["mezited-ktls", "mezited-relay", "h2o"]

errors = []

SSH_PATHS = ["mezited", "ssh -J"]
SSH_TARGETS = 2


def fail(msg):
    errors.append(msg)


def check_ssh(out, text):
    """The bastion against an OpenSSH jump host (sshbench.py): every
    scp each way on each path, intact, at a sane rate; the sessions
    timed; both targets judged."""
    try:
        with open(out + ".ssh.json") as f:
            js = json.load(f)
    except (OSError, ValueError) as e:
        fail("ssh figures: %s" % e)
        return
    runs, size = js.get("runs", {}), js.get("size", 0)
    if size < 32 << 20:
        fail("ssh: scp of %r bytes, want at least 32 MiB" % size)
    for meas in ("up", "down"):
        for p in SSH_PATHS:
            rs = runs.get(meas, {}).get(p, [])
            if len(rs) < RUNS:
                fail("ssh %s %s: %d runs, want %d" % (meas, p, len(rs),
                                                      RUNS))
            for i, r in enumerate(rs):
                if r.get("sha256") is not True:
                    fail("ssh %s %s run %d: not intact" % (meas, p, i))
                # Loopback: above 0.1 MB/s, below 100 GB/s, and some CPU.
                if not 0.1 < r.get("rate", 0) < 1e5 or \
                        not r.get("cpu", 0) > 0:
                    fail("ssh %s %s run %d: %r" % (meas, p, i, r))
    for p in SSH_PATHS:
        rs = runs.get("setup", {}).get(p, [])
        if not rs or len(rs[0].get("times", [])) < 5:
            fail("ssh setup %s: too few sessions timed" % p)
            continue
        for r in rs:
            if not 1 < r.get("ms", 0) < 30000 or not r.get("cpu", 0) > 0:
                fail("ssh setup %s: %r" % (p, r))
    for d in ("upload", "download"):
        if not re.search(r"^  scp MB/s, %s, >= OpenSSH jump host: "
                         r"mezited [\d.]+, ssh -J [\d.]+, [\d.]+x  "
                         r"(met|MISSED)$" % d, text, re.M):
            fail("the ssh %s target is not judged" % d)
    if not re.search(r"^  \d+ of %d ssh targets met$" % SSH_TARGETS, text,
                     re.M):
        fail("no summary of the ssh targets")


def check_idle(what, r, n, mode=None, agents=True):
    """Idle tunnels (tunnels.py hold): every one open, routed and, for
    mezited, online and handed off in mode; figures present."""
    bs = r.get("batches", [])
    if len(bs) != 2:
        fail("%s: %d batches, want 2" % (what, len(bs)))
        return
    for i, b in enumerate(bs):
        want = n // 2 * (i + 1)
        if b.get("open") != want or b.get("routed") != want or \
                b.get("failed") != 0:
            fail("%s batch %d: open %s, routed %s, failed %s; want %d" % (
                what, i + 1, b.get("open"), b.get("routed"),
                b.get("failed"), want))
        if agents and b.get("hello") != want:
            fail("%s batch %d: %s hellos, want %d" % (
                what, i + 1, b.get("hello"), want))
    for k in ("per", "per_rss", "pss", "goal_pss"):
        v = r.get(k)
        if not isinstance(v, (int, float)) or v <= 0:
            fail("%s: %s = %r" % (what, k, v))
    if not sum(r.get("cpu_us", {}).values()) > 0:
        fail("%s: no CPU per set-up" % what)
    if not r.get("alive"):
        fail("%s: the server died" % what)
    if not agents:
        return
    if r.get("online") != n or r.get("nodes") != n:
        fail("%s: %s of %s nodes online, want %d" % (
            what, r.get("online"), r.get("nodes"), n))
    if r.get("modes") != {mode: n}:
        fail("%s: hand-off modes %r, want %d %s" % (what, r.get("modes"),
                                                     n, mode))
    tcp = n if mode == "ktls" else 0
    if r.get("tunnel_tcp") != tcp:
        fail("%s: the tunnel worker holds %s TCP sockets, want %d" % (
            what, r.get("tunnel_tcp"), tcp))
    # With kTLS the master keeps nothing of a tunnel: its share may
    # measure 0.
    for role in ("master", "tunnel"):
        v = r.get("kb", {}).get(role)
        if not isinstance(v, (int, float)) or v < 0 or \
                (v == 0 and (role == "tunnel" or mode != "ktls")):
            fail("%s: no memory for the %s" % (what, role))


def check_tunnels(out, text):
    try:
        with open(out + ".tunnels.json") as f:
            t = json.load(f)
    except (OSError, ValueError) as e:
        fail("tunnel figures: %s" % e)
        return
    n = t.get("n", 0)
    if n < 2:
        fail("tunnels: n = %r" % n)
    idle = t.get("idle", {})
    check_idle("idle mezited", idle.get("mezited", {}), n, "relay")
    check_idle("idle haproxy", idle.get("haproxy", {}), n, agents=False)
    st = t.get("stream", {})
    for who, parts in (("mez", ("mezited", "mezd")), ("hap", ("haproxy",))):
        for d in ("down", "up"):
            runs = st.get(who, {}).get(d, [])
            if len(runs) < RUNS:
                fail("stream %s %s: %d runs, want %d" % (who, d, len(runs),
                                                         RUNS))
            for i, r in enumerate(runs):
                if r.get("bytes") != st.get("bytes") or \
                        not r.get("rate", 0) > 0:
                    fail("stream %s %s run %d: %r" % (who, d, i, r))
                for p in parts:
                    if not sum(v for k, v in r.items()
                               if k.startswith("cpu:%s:" % p)) > 0:
                        fail("stream %s %s run %d: no CPU for %s" % (
                            who, d, i, p))
    if not re.search(r"^  10,000 idle tunnels in <= 100 MB of mezited PSS, "
                     r"relay: \d+ MB.*  (met|MISSED)$", text, re.M):
        fail("the relay tunnel target is not judged")

    try:
        with open(out + ".tunnels-vm.json") as f:
            v = json.load(f)
    except (OSError, ValueError) as e:
        fail("tunnel figures from the VM: %s" % e)
        return
    for mode in ("ktls", "relay"):
        check_idle("idle mezited-%s (VM)" % mode, v.get(mode, {}),
                   v.get("n", 0), mode)
    if not re.search(r"^  10,000 idle tunnels in <= 100 MB of mezited PSS, "
                     r"kTLS: \d+ MB.*  (met|MISSED)$", text, re.M):
        fail("the kTLS tunnel target is not judged")


def main():
    out = sys.argv[1]
    with open(out + ".json") as f:
        res = json.load(f)
    with open(out) as f:
        text = f.read()

    figures = dict(FIGURES)
    targets = TARGETS
    if "mp" in res or MP_ABSENT not in text:
        figures["mp"] = (MP, ["cpu", "rate"])
    else:
        targets -= 2
    for meas, (servers, keys) in figures.items():
        if meas not in res:
            fail("%s: not measured" % meas)
            continue
        for s in servers:
            runs = res[meas].get(s)
            if runs is None or len(runs) < RUNS:
                fail("%s %s: %s runs, want %d" % (
                    meas, s, None if runs is None else len(runs), RUNS))
                continue
            for i, r in enumerate(runs):
                for k in keys:
                    v = r.get(k)
                    if not isinstance(v, (int, float)) or v <= 0:
                        fail("%s %s run %d: %s = %r" % (meas, s, i, k, v))
    # The sessions really went where the rows say.
    for r in res.get("conn", {}).get("mezited", []):
        if r.get("alpn") != "http/1.1" or r.get("cipher") != \
                "TLS_AES_128_GCM_SHA256":
            fail("conn mezited: %r" % r)
    # Resumed connections resumed, but for the odd one whose ticket was
    # not in yet; full ones did not.
    for s in FIGURES["resume"][0]:
        for r in res.get("resume", {}).get(s, []):
            if not r.get("resumed", 0) >= 0.9:
                fail("resume %s: %r resumed" % (s, r.get("resumed")))
    for r in res.get("mp", {}).get("mezited-p2", []):
        if r.get("alpn") != "http/1.1" or r.get("cipher") != \
                "TLS_AES_128_GCM_SHA256":
            fail("mp mezited-p2: %r" % r)
    # The ca process signed mezited's handshakes, and the master those
    # of the build with the keys in it.
    for r in res.get("conn", {}).get("mezited", []):
        if not r.get("role:ca", 0) > 0:
            fail("conn mezited: no CPU in the ca process: %r" % r)
    for r in res.get("conn", {}).get("mezited-km", []):
        if "role:ca" in r:
            fail("conn mezited-km: a ca process ran: %r" % r)
    for r in res.get("mem", {}).get("mezited", []):
        if r.get("routed") != r.get("open"):
            fail("mem mezited: %s of %s routed" % (r.get("routed"),
                                                   r.get("open")))
    # An upload to a static file: h2o's file handler answers 405 once it
    # has the body; mezited's worker, which takes bodies only for
    # /api/v1/digest, reads it to its end and answers 413.
    for meas, want in (("down", {}), ("up", {"mezited": "413"})):
        for s in HTTP:
            status = want.get(s, "200" if meas == "down" else "405")
            for r in res.get(meas, {}).get(s, []):
                if r.get("status") != status:
                    fail("%s %s: HTTP status %r" % (meas, s, r.get("status")))

    # The main table's targets alone: the sections after it judge their
    # own, below.
    main_targets = text.split("== targets", 1)[-1].split("\n\n", 1)[0]
    verdicts = re.findall(r"^  (\S.*?)\s{2,}.*\s(met|MISSED|not measured)$",
                          main_targets, re.M)
    if len(verdicts) != targets:
        fail("%d targets judged, want %d" % (len(verdicts), targets))
    for what, v in verdicts:
        if v == "not measured":
            fail("target not measured: %s" % what)
    if not re.search(r"^  \d+ of %d targets met$" % targets, text, re.M):
        fail("no summary of the targets")

    # HTTP/2 with kTLS, from the VM.
    try:
        with open(out + ".ktls.json") as f:
            kt = json.load(f)
    except (OSError, ValueError) as e:
        fail("kTLS figures: %s" % e)
        kt = {"runs": {}}
    for s in KTLS_SERVERS:
        runs = kt["runs"].get(s, [])
        if len(runs) < RUNS:
            fail("ktls %s: %d runs, want %d" % (s, len(runs), RUNS))
        for i, r in enumerate(runs):
            if not r.get("rate", 0) > 0 or not r.get("cpu", 0) > 0:
                fail("ktls %s run %d: %r" % (s, i, r))
    if not re.search(r"^  HTTP/2 req/s >= 0\.9 x h2o direct: mezited-ktls "
                     r"\d+, h2o \d+, [\d.]+x  (met|MISSED)$", text, re.M):
        fail("the kTLS target is not judged")

    check_ssh(out, text)
    check_tunnels(out, text)

    # run.sh stops every server it started: no process may still run
    # from, in, or chrooted to a bench work directory (mezited's children
    # rename themselves, hence the links).
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        where = []
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                where.append(f.read().replace(b"\0", b" ").decode(
                    errors="replace"))
            for link in ("root", "cwd", "exe"):
                where.append(os.readlink("/proc/%s/%s" % (pid, link)))
        except OSError:
            continue
        if any("/mezite-bench." in w for w in where):
            fail("left running: %s %s" % (pid, where[0].strip()))

    if errors:
        for e in errors:
            print("bench check: " + e)
        sys.exit(1)
    print("bench check: %d measurements x %d runs, %d targets judged; "
          "HTTP/2 with kTLS in the VM, %d servers x %d runs; idle tunnels "
          "and streams, and idle tunnels in the VM" % (
              len(figures), RUNS, targets, len(KTLS_SERVERS), RUNS))
    print("bench check: ssh: scp each way and new sessions, %d paths, "
          "%d targets judged" % (len(SSH_PATHS), SSH_TARGETS))


if __name__ == "__main__":
    main()
