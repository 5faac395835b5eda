#!/usr/bin/python3
"""
Agent tunnels: what idle tunnels cost mezited in memory, beside HAProxy
holding as many mutually authenticated TLS connections, and what one
stream through a tunnel costs, beside the same bytes through HAProxy in
TCP mode.  See tests/bench/README.md, "Agent tunnels".

	tunnels.py host WORK TOP [OUT]
		From run.sh, after bench.py: idle tunnels in relay mode and
		HAProxy's idle connections, then the streams.  WORK is run.sh's
		work directory (bin/, pki/, pids); prints a table, and with
		OUT writes it to OUT.txt and the figures to OUT.json.
	tunnels.py vm TOP TUNNELGEN OUT
		From run-ktls.sh, inside the VM whose kernel has TLS: idle
		tunnels with ktls yes, then with ktls no; writes OUT.txt and
		OUT.json.

Self-contained (it imports nothing from bench.py, which reads its own
arguments): the VM runs it too.  Python only orchestrates and reads
/proc around each measurement; tunnelgen, loadgen, tlssink and mezctl do
the work.
"""

import json
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else ""
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"


def env_int(name, default, quick, lo=1):
    return max(lo, int(os.environ.get(name, quick if QUICK else default)))


RUNS = env_int("BENCH_RUNS", 5, 3, lo=3)
TUNNELS = env_int("BENCH_TUNNELS", 10000, 400, lo=2)
VM_TUNNELS = env_int("BENCH_VM_TUNNELS", 400, 100, lo=2)
STREAM_MIB = env_int("BENCH_STREAM_MIB", 256, 16)
VM_LAST_START = 400             # s since the VM booted
GOAL = 10000                    # tunnels, in ...
GOAL_BYTES = 100 * 10 ** 6      # ... at most 100 MB of PSS
SUITE = "TLS_AES_256_GCM_SHA384"
NAMES = "idle-"                 # tunnelgen's nodes; the stream's is not
STREAM_NODE = "bench-stream"
CG_ROOT = None


def log(msg):
    sys.stderr.write("tunnels: %s\n" % msg)
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fd_limit():
    """As many descriptors as this process may have: the hard limit
    (root without CAP_SYS_RESOURCE cannot raise it).  Children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
        return 65536
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard


def cap_tunnels(n, limit):
    """Relay mode holds two descriptors per tunnel in the master (TCP
    and socketpair), HAProxy two per connection: n within the limit,
    in two equal batches."""
    most = (limit - 256) // 2 // 100 * 100
    return max(2, min(n, most)) // 2 * 2


# --------------------------------------------------------------------------
# Processes, their roles, memory and CPU, from /proc


def children_of():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        if rest[0] != "Z":
            kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def tree(root):
    kids, out, todo = children_of(), [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rollup(pid):
    """(PSS, RSS) in KiB."""
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def cpu_ns(pid):
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for t in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def mezited_role(pid):
    """mezited's processes name themselves "mezited: tunnel.0"."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cl = f.read().split(b"\0")[0].decode("ascii", "replace")
    except OSError:
        return "gone"
    m = re.match(r"mezited: (\w+)", cl)
    return m.group(1) if m else "other"


class Prog:
    """One program's process tree, in a cgroup of its own when the
    machine allows (run.sh's cleanup empties them), by PID otherwise."""

    def __init__(self, name, cmd, logdir, role=None, env=None):
        self.name, self.cmd, self.env = name, cmd, env
        self.logpath = os.path.join(logdir, name + ".log")
        self.role = role or (lambda pid: name)
        self.proc = None
        self.cg = None

    def start(self, pidfile=None):
        if CG_ROOT:
            self.cg = os.path.join(CG_ROOT, "tunnels-" + self.name)
            os.mkdir(self.cg)
        procs = os.path.join(self.cg, "cgroup.procs") if self.cg else None

        def pre():
            if procs:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True,
                                     preexec_fn=pre, env=self.env)
        if pidfile:
            with open(pidfile, "a") as f:
                f.write("%d\n" % self.proc.pid)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        if self.proc is None:
            return []
        return tree(self.proc.pid)

    def by_role(self, fn):
        out = {}
        for p in self.pids():
            r = "supervisor" if p == self.proc.pid and \
                self.role is mezited_role else self.role(p)
            v = fn(p)
            if isinstance(v, tuple):
                o = out.get(r, (0, 0))
                out[r] = tuple(a + b for a, b in zip(o, v))
            else:
                out[r] = out.get(r, 0) + v
        return out

    def mem(self):
        return self.by_role(rollup)

    def cpu(self):
        return self.by_role(cpu_ns)

    def log_tail(self, n=3000):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
        for _ in range(50):
            left = [p for p in self.pids() if p != os.getpid()]
            if self.cg:
                try:
                    with open(os.path.join(self.cg, "cgroup.procs")) as f:
                        left += [int(x) for x in f.read().split()]
                except OSError:
                    pass
            if not left:
                break
            for p in set(left):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.logf.close()
        if self.cg:
            for _ in range(20):
                try:
                    os.rmdir(self.cg)
                    break
                except OSError:
                    time.sleep(0.1)


def cgroup_root():
    """The cgroup v2 directory run.sh cleans up (BENCH_CGROUP), if any."""
    name = os.environ.get("BENCH_CGROUP")
    if not name or os.environ.get("BENCH_CGROUP_OFF") == "1":
        return None
    try:
        with open("/proc/mounts") as f:
            mounts = [l.split() for l in f]
    except OSError:
        return None
    for m in mounts:
        if m[2] != "cgroup2":
            continue
        d = os.path.join(m[1], name)
        try:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "cgroup.procs")) as f:
                f.read()
            return d
        except OSError:
            continue
    return None


def sockets(pid):
    """Socket inodes open in pid."""
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                l = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if l.startswith("socket:["):
                out.add(l[8:-1])
    except OSError:
        pass
    return out


def tcp_inodes():
    out = set()
    for t in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(t) as f:
                next(f)
                for line in f:
                    out.add(line.split()[9])
        except OSError:
            pass
    return out


def tcp_established(port):
    """Established TCP sockets whose local port is port."""
    n = 0
    for t in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(t) as f:
                next(f)
                for line in f:
                    x = line.split()
                    if x[3] == "01" and int(x[1].rsplit(":", 1)[1],
                                            16) == port:
                        n += 1
        except OSError:
            pass
    return n


def slab_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def kv(line):
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", line))


# --------------------------------------------------------------------------
# mezited


class Mezited:
    def __init__(self, top, d, port, cert, key, ktls, maxconn):
        self.top, self.dir, self.port = top, d, port
        self.mezited = os.environ.get("MEZITED",
                                      os.path.join(top, "master", "mezited"))
        self.mezctl = os.path.join(top, "mezctl", "mezctl")
        empty = os.path.join(d, "empty")
        www = os.path.join(d, "www")
        for x in (d, empty, www, os.path.join(www, "htdocs")):
            os.makedirs(x, exist_ok=True)
            os.chmod(x, 0o755)
        self.sock = os.path.join(d, "ctl.sock")
        self.state = os.path.join(d, "state")
        self.ca = os.path.join(self.state, "auth", "host-ca.crt")
        self.ca_key = os.path.join(self.state, "auth", "host-ca.key")
        self.conf = os.path.join(d, "mezited.conf")
        with open(self.conf, "w") as f:
            f.write("""\
# Generated by tests/bench/tunnels.py.
ktls {ktls}
listen on 127.0.0.1 port {port}
tls keypair "bench" {{
	certificate "{cert}"
	key "{key}"
}}
tls protocols "tlsv1.3"
timeout handshake 30
timeout idle 600
timeout drain 2
max connections {maxconn}
# Every client comes from 127.0.0.1, faster than any one would.
max connections per source 1000000
max connection rate 1000000 per source
control socket "{sock}"
state directory "{state}"
master {{
	user "nobody"
	chroot "{empty}"
}}
ca {{
	user "nobody"
	chroot "{empty}"
}}
worker https {{
	prefork 1
	user "nobody"
	chroot "{www}"
	root "/htdocs"
}}
worker auth {{
	user "nobody"
}}
worker tunnel {{
	user "nobody"
	chroot "{empty}"
}}
worker ssh {{
	prefork 0
}}
""".format(ktls="yes" if ktls else "no", port=port, cert=cert, key=key,
           maxconn=maxconn, sock=self.sock, state=self.state, empty=empty,
           www=www))
        r = subprocess.run([self.mezited, "-n", "-f", self.conf],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("tunnels: mezited refused %s:\n%s%s" % (
                self.conf, r.stdout, r.stderr))
        self.prog = Prog("mezited-" + ("ktls" if ktls else "relay"),
                         [self.mezited, "-d", "-f", self.conf], d,
                         role=mezited_role)

    def start(self, pidfile=None, timeout=60):
        """Up once the auth worker has made its CAs (slow under
        emulation) and the control socket answers."""
        self.prog.start(pidfile)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.prog.alive():
                break
            if os.path.exists(self.ca) and os.path.exists(self.ca_key):
                try:
                    self.ctl_json("show", "nodes")
                    roles = set(self.prog.mem())
                    if {"master", "tunnel", "auth"} <= roles:
                        time.sleep(0.5)
                        return self
                except (RuntimeError, ValueError):
                    pass
            time.sleep(0.2)
        raise SystemExit("tunnels: mezited did not come up; its log:\n" +
                         self.prog.log_tail())

    def ctl_json(self, *args, timeout=60):
        r = subprocess.run([self.mezctl, "-s", self.sock, "-j"] +
                           list(args), capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("mezctl %s: %s" % (" ".join(args),
                                                  r.stderr.strip()))
        return json.loads(r.stdout or "null")

    def worker_pid(self, role):
        for p in self.prog.pids():
            if p != self.prog.proc.pid and mezited_role(p) == role:
                return p
        return None

    def routed(self):
        """Sockets the tunnel worker holds: a tunnel each, and its
        channels."""
        p = self.worker_pid("tunnel")
        return len(sockets(p)) if p else 0

    def tunnel_tcp(self):
        """Of those, TCP sockets: a tunnel each in kTLS mode."""
        p = self.worker_pid("tunnel")
        return len(sockets(p) & tcp_inodes()) if p else 0

    def nodes_online(self, prefix):
        nodes = self.ctl_json("show", "nodes")
        ours = [n for n in nodes if n.get("name", "").startswith(prefix)]
        return sum(1 for n in ours if n.get("online")), len(ours)

    def modes(self):
        """Tunnel connections the master holds, by hand-off mode."""
        out = {}
        for c in self.ctl_json("show", "connections"):
            if c.get("alpn") == "mezite-tunnel":
                m = c.get("mode", "?")
                out[m] = out.get(m, 0) + 1
        return out


# --------------------------------------------------------------------------
# Idle tunnels


def roles_sum(d):
    return sum(v[0] for v in d.values()), sum(v[1] for v in d.values())


def hold(prog, port, ca, ca_key, n, tlsonly, routed, tunnelgen,
         after=None, secs=60):
    """Open n idle tunnels in two batches with tunnelgen; after each,
    once routed() has caught up, the PSS and RSS of prog by role and the
    CPU it spent since the batch began.  after(), if given, runs once
    the second batch is measured (checks that may allocate)."""
    per = n // 2
    cmd = [tunnelgen, "hold", "-a", "127.0.0.1:%d" % port, "-c", ca, "-k",
           ca_key, "-n", str(per), "-p", "64", "-b", "2", "-t", str(secs),
           "-N", NAMES] + (["-T"] if tlsonly else [])
    base = routed()
    mem0, slab0 = prog.mem(), slab_kb()
    out = {"n": n, "base_pss": roles_sum(mem0)[0],
           "base_rss": roles_sum(mem0)[1], "batches": []}
    gen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    try:
        for b in (1, 2):
            c0, t0 = prog.cpu(), time.monotonic()
            line = gen.stdout.readline()
            if not line:
                raise RuntimeError("tunnelgen ended: %s" % " ".join(cmd))
            r = kv(line)
            want = int(r.get("open", 0))
            # Until every open tunnel has reached the worker or backend,
            # or the count has stood still for a second.
            last, since = routed() - base, time.monotonic()
            deadline = time.monotonic() + 30
            while last < want and time.monotonic() < deadline:
                time.sleep(0.2)
                x = routed() - base
                if x != last:
                    last, since = x, time.monotonic()
                elif time.monotonic() - since > 1.0:
                    break
            time.sleep(0.5)
            c1, secs = prog.cpu(), time.monotonic() - t0
            mem = prog.mem()
            out["batches"].append({
                "open": want, "hello": int(r.get("hello", 0)),
                "failed": int(r.get("failed", 0)), "routed": routed() - base,
                "secs": secs, "gen_secs": float(r.get("secs", 0)),
                "pss": {k: v[0] for k, v in mem.items()},
                "rss": {k: v[1] for k, v in mem.items()},
                "cpu_ms": {k: (v - c0.get(k, 0)) / 1e6
                           for k, v in c1.items()},
                "slab": slab_kb() - slab0})
            if b == 1:
                gen.stdin.write("\n")
                gen.stdin.flush()
        if after:
            out.update(after())
        out["alive"] = prog.alive()
    finally:
        try:
            gen.stdin.close()
        except OSError:
            pass
        try:
            gen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            gen.kill()
            gen.wait()
    b1, b2 = out["batches"]
    div = b2["routed"] - b1["routed"]
    if div <= 0 or not out["alive"]:
        raise RuntimeError("%s: %d then %d routed, %s" % (
            prog.name, b1["routed"], b2["routed"],
            "alive" if out["alive"] else "dead"))
    roles = sorted(set(b2["pss"]) | set(b1["pss"]))
    out["kb"] = {r: (b2["pss"].get(r, 0) - b1["pss"].get(r, 0)) / div
                 for r in roles}
    out["kb_rss"] = {r: (b2["rss"].get(r, 0) - b1["rss"].get(r, 0)) / div
                     for r in roles}
    out["cpu_us"] = {r: b2["cpu_ms"].get(r, 0) * 1000 / div
                     for r in roles}
    out["pss"], out["rss"] = sum(b2["pss"].values()), sum(b2["rss"].values())
    out["per"] = sum(out["kb"].values())
    out["per_rss"] = sum(out["kb_rss"].values())
    out["slab_per"] = (b2["slab"] - b1["slab"]) / div
    # The whole for GOAL tunnels: measured, or the measured total plus
    # (or less) the per-tunnel figure for the difference.
    out["goal_pss"] = out["pss"] + (GOAL - b2["open"]) * out["per"]
    out["goal_rss"] = out["rss"] + (GOAL - b2["open"]) * out["per_rss"]
    out["goal_measured"] = b2["open"] == GOAL
    return out


def idle_mezited(m, n, tunnelgen, secs=60):
    def after():
        on, total = m.nodes_online(NAMES)
        return {"online": on, "nodes": total, "modes": m.modes(),
                "tunnel_tcp": m.tunnel_tcp()}
    return hold(m.prog, m.port, m.ca, m.ca_key, n, False, m.routed,
                tunnelgen, after, secs)


# --------------------------------------------------------------------------
# Streams


class Mezd:
    """A real agent, joined with a token, serving the backend."""

    def __init__(self, top, d, m, backend, pki_cert):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        state = os.path.join(d, "state")
        os.makedirs(state, exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(state, nobody.pw_uid, nobody.pw_gid)
        os.chmod(state, 0o700)
        ca = os.path.join(d, "ca.pem")
        shutil.copyfile(pki_cert, ca)
        os.chmod(ca, 0o644)
        tok = m.ctl_json("token", "create", "node", STREAM_NODE)
        if isinstance(tok, list):
            tok = tok[0]
        conf = os.path.join(d, "mezd.conf")
        with open(conf, "w") as f:
            f.write("""\
# Generated by tests/bench/tunnels.py.
proxy "127.0.0.1:%d"
ca "%s"
name "%s"
token "%s"
state directory "%s"
user "nobody"
keepalive 15
keepalive timeout 45
service sink %s
""" % (m.port, ca, STREAM_NODE, tok["secret"], state, backend))
        os.chmod(conf, 0o600)
        mezd = os.environ.get("MEZD", os.path.join(top, "mezd", "mezd"))
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("https_proxy", "no_proxy")}
        self.prog = Prog("mezd", [mezd, "-d", "-f", conf], d, env=env)


def mez_stream(m, up, nbytes):
    """One stream through the tunnel with mezctl connect: the sink's
    "D" (download) or "U" (upload) command, nbytes."""
    p = subprocess.Popen([m.mezctl, "-s", m.sock, "connect", STREAM_NODE,
                          "sink"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, bufsize=0)
    try:
        t0 = time.monotonic()
        if up:
            p.stdin.write(b"U" + nbytes.to_bytes(8, "big"))
            chunk = bytes(1 << 20)
            left = nbytes
            while left > 0:
                k = p.stdin.write(chunk[:min(left, len(chunk))])
                left -= k
            ack = p.stdout.read(1)
            got = nbytes if ack == b"K" else 0
        else:
            p.stdin.write(b"D" + nbytes.to_bytes(8, "big"))
            got, buf = 0, bytearray(1 << 20)
            while got < nbytes:
                k = p.stdout.readinto(buf)
                if not k:
                    break
                got += k
        secs = time.monotonic() - t0
        p.stdin.close()
        rest = p.stdout.read()
        p.wait(timeout=30)
    except BaseException:
        p.kill()
        p.wait()
        raise
    if got != nbytes or rest or p.returncode != 0:
        raise RuntimeError("mezctl connect: %d of %d bytes, %d more, "
                           "exit %s" % (got, nbytes, len(rest),
                                        p.returncode))
    return got, secs


def hap_stream(loadgen, port, up, nbytes):
    r = subprocess.run([loadgen, "up" if up else "down", "-a",
                        "127.0.0.1:%d" % port, "-P", "sink", "-A",
                        "mezite-bench", "-C", SUITE, "-s", str(nbytes),
                        "-r", "1"], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise RuntimeError("loadgen: %s" % r.stderr.strip())
    x = kv(r.stdout)
    got = int(x.get("bytes", 0))
    if got != nbytes:
        raise RuntimeError("loadgen: %d of %d bytes" % (got, nbytes))
    return got, got / 1e6 / float(x["mbps"])


def metered(progs, fn):
    """fn's bytes, rate and the CPU per MB of each of progs ({label:
    Prog}) by process, as "cpu:LABEL:ROLE"."""
    c0 = {n: p.cpu() for n, p in progs.items()}
    got, secs = fn()
    time.sleep(0.3)
    mb = got / 1e6
    out = {"rate": mb / secs, "bytes": got}
    for n, p in progs.items():
        for k, v in p.cpu().items():
            out["cpu:%s:%s" % (n, k)] = (v - c0[n].get(k, 0)) / 1e3 / mb
    return out


def cpu_of(run, name=None):
    return sum(v for k, v in run.items() if k.startswith("cpu:") and
               (name is None or k.split(":")[1] == name))


# --------------------------------------------------------------------------
# Tables


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def z(v):
    """A figure for a table: noise around nothing is 0.0, not -0.0."""
    return 0.0 if abs(v) < 0.05 else v


def fr(x):
    return "-" if x is None else "%.2fx" % x


MEZ_ROLES = ["supervisor", "master", "https", "auth", "tunnel"]


def verdict(ok):
    return "met" if ok else "MISSED"


def mib(kb):
    return kb * 1024 / 1e6


def view(r, roles):
    """A hold result restricted to some of its processes."""
    v = dict(r)
    b2 = r["batches"][1]
    v["per"] = sum(r["kb"].get(k, 0) for k in roles)
    v["per_rss"] = sum(r["kb_rss"].get(k, 0) for k in roles)
    v["pss"] = sum(b2["pss"].get(k, 0) for k in roles)
    v["goal_pss"] = v["pss"] + (GOAL - b2["open"]) * v["per"]
    return v


def idle_rows(w, rows, peer=None):
    """rows: (name, hold result); peer: the name to divide by."""
    w("  %-18s %9s %9s %9s %12s %14s %8s  %s" % (
        "server", "KiB/tun", "RSS/tun", "PSS MB", "at 10,000 MB",
        "routed/open", "online", "mezited/this" if peer else ""))
    for name, r in rows:
        b1, b2 = r["batches"]
        on = "%d" % r["online"] if "online" in r else "-"
        w("  %-18s %9.1f %9.1f %9.1f %10.1f %s %14s %8s  %s" % (
            name, r["per"], r["per_rss"], mib(r["pss"]),
            mib(r["goal_pss"]), " " if r["goal_measured"] else "*",
            "%d/%d" % (b2["routed"], b2["open"]), on,
            fr(rows[0][1]["per"] / r["per"]) if peer and
            name != rows[0][0] and r["per"] > 0 else ""))


def stream_figures(s):
    """{path: {direction: (MB/s or None, us/MB)}}, medians: the rate
    belongs to a path as a whole, the CPU also to its parts."""
    out = {}
    for label, who, part in (("mezited+mezd", "mez", None),
                             ("mezited", "mez", "mezited"),
                             ("mezd", "mez", "mezd"),
                             ("haproxy", "hap", None)):
        out[label] = {}
        for d in ("down", "up"):
            runs = s[who][d]
            out[label][d] = (med(r["rate"] for r in runs)
                             if part is None else None,
                             med(cpu_of(r, part) for r in runs))
    return out


def report_host(res, n, limit):
    out = []
    w = out.append
    per = n // 2
    w("")
    w("== agent tunnels: memory of idle tunnels, mezited relay vs HAProxy "
      "holding as many mTLS connections")
    w("   tunnelgen: per tunnel an agent (node certificate of mezited's "
      "host CA, TLS 1.3, ALPN mezite-tunnel);")
    w("   to mezited it speaks the agent's side of tunnel.proto (preface, "
      "hello, PING ACKs); to HAProxy (verify required, same")
    w("   certificate and CA, mode tcp, a plaintext backend) the handshake "
      "only.  Two batches of %d, fresh servers;" % per)
    w("   per tunnel = growth over the second batch / its tunnels routed; "
      "PSS and RSS summed over the processes.")
    if n < GOAL:
        w("   * at 10,000: the total at %d plus %d x per tunnel (the "
          "descriptor limit, %d, allows no more:" % (n, GOAL - n, limit))
        w("     relay mode holds two per tunnel in the master, HAProxy two "
          "per connection)")
    rel, hap = res["idle"]["mezited"], res["idle"]["haproxy"]
    rows = [("mezited relay", rel), ("haproxy", view(hap, ["haproxy"])),
            ("haproxy+backend", hap)]
    idle_rows(w, rows, peer=True)
    w("  by process, KiB/tunnel PSS (RSS):")
    for name, r, order in (("mezited relay", rel, MEZ_ROLES),
                           ("haproxy+backend", hap, ["haproxy", "backend"])):
        w("    %-16s %s" % (name, ", ".join(
            "%s %.1f (%.1f)" % (k, z(r["kb"][k]), z(r["kb_rss"][k]))
            for k in order if k in r["kb"])))
    w("  CPU per tunnel set up (second batch; mezited: TLS, hand-off, "
      "HTTP/2, hello, node registered; HAProxy: TLS, backend connect):")
    for name, r, order in (("mezited relay", rel, MEZ_ROLES),
                           ("haproxy+backend", hap, ["haproxy", "backend"])):
        w("    %-16s %6.0f us  (%s)" % (name, sum(r["cpu_us"].values()),
                                      ", ".join("%s %.0f" % (
                                          k, r["cpu_us"][k]) for k in order
                                          if k in r["cpu_us"])))
    w("    mezited/haproxy+backend: %s" % fr(
        sum(rel["cpu_us"].values()) / sum(hap["cpu_us"].values())
        if sum(hap["cpu_us"].values()) > 0 else None))
    w("")

    s = res["stream"]
    w("== one stream through a tunnel vs HAProxy mode tcp: %d MiB each way "
      "a run, median of %d runs" % (STREAM_MIB, RUNS))
    w("   tunnel: mezctl connect (stdin/stdout) -> mezited relay (tunnel "
      "worker: HTTP/2 stream; master: TLS) -> mezd")
    w("   -> plaintext TCP -> tlssink.  HAProxy: loadgen (TLS) -> HAProxy "
      "-> plaintext TCP -> the same tlssink.")
    w("   TLS 1.3 %s on both links.  CPU = user+sys per MB (10^6 bytes) of "
      "the named processes; clients and" % s["suite"])
    w("   backend not counted.  Bytes checked: counted on arrival, and the "
      "sink's K after an upload.")
    w("  %-16s %10s %11s %10s %11s   %s" % (
        "path", "down MB/s", "down us/MB", "up MB/s", "up us/MB",
        "this/haproxy: down rate CPU, up rate CPU"))
    fig = stream_figures(s)
    hd = fig["haproxy"]
    for label in ("mezited+mezd", "mezited", "mezd", "haproxy"):
        f = fig[label]
        rat = "" if label == "haproxy" else "   %18s %5s %9s %5s" % (
            fr(f["down"][0] / hd["down"][0]) if f["down"][0] else "",
            fr(f["down"][1] / hd["down"][1]),
            fr(f["up"][0] / hd["up"][0]) if f["up"][0] else "",
            fr(f["up"][1] / hd["up"][1]))
        w("  %-16s %10s %11.0f %10s %11.0f%s" % (
            label, "-" if f["down"][0] is None else "%.0f" % f["down"][0],
            f["down"][1], "-" if f["up"][0] is None else
            "%.0f" % f["up"][0], f["up"][1], rat))
    for d in ("down", "up"):
        roles = {}
        for r in s["mez"][d]:
            for k in r:
                if k.startswith("cpu:mezited:"):
                    roles.setdefault(k[12:], []).append(r[k])
        w("  %-4s mezited by process, us/MB: %s" % (d, ", ".join(
            "%s %.0f" % (k, med(roles[k])) for k in MEZ_ROLES
            if k in roles)))
    w("")
    w("== tunnel targets (reported, not enforced)")
    ok = rel["goal_pss"] * 1024 <= GOAL_BYTES
    w("  10,000 idle tunnels in <= 100 MB of mezited PSS, relay: %.0f MB%s"
      "  %s" % (mib(rel["goal_pss"]), "" if rel["goal_measured"] else
                " (from %d)" % n, verdict(ok)))
    w("  (kTLS: from the VM, below)")
    return "\n".join(out) + "\n"


def report_vm(res):
    out = []
    w = out.append
    n = res["n"]
    k, r = res.get("ktls"), res.get("relay")
    w("")
    w("== agent tunnels with the session in the kernel (in the VM): memory "
      "of idle tunnels, ktls yes vs ktls no")
    w("   tunnelgen as on the host, two batches of %d; * at 10,000: "
      "projected from the total at %d and the per-tunnel figure" % (
          n // 2, n))
    w("   kernel slab: growth of the VM's Slab per tunnel over the second "
      "batch, both ends' sockets included")
    w("  %-18s %9s %9s %9s %12s %14s %8s %8s" % (
        "server", "KiB/tun", "RSS/tun", "PSS MB", "at 10,000 MB",
        "routed/open", "online", "slab/tun"))
    for name, x in (("mezited-ktls", k), ("mezited-relay", r)):
        if x is None:
            w("  %-18s not measured: too little of the VM's time left" %
              name)
            continue
        b2 = x["batches"][1]
        w("  %-18s %9.1f %9.1f %9.1f %10.1f * %14s %8d %8.1f" % (
            name, x["per"], x["per_rss"], mib(x["pss"]), mib(x["goal_pss"]),
            "%d/%d" % (b2["routed"], b2["open"]), x["online"],
            x["slab_per"]))
    w("  mezited-ktls/relay per tunnel: %s" % fr(
        k["per"] / r["per"] if k and r and r["per"] else None))
    for name, x in (("mezited-ktls", k), ("mezited-relay", r)):
        if x is None:
            continue
        w("  %-14s KiB/tunnel by process: %s; CPU per set-up us: %s" % (
            name, ", ".join("%s %.1f" % (q, z(x["kb"][q]))
                            for q in MEZ_ROLES if q in x["kb"]),
            ", ".join("%s %.0f" % (q, x["cpu_us"][q]) for q in MEZ_ROLES
                      if q in x["cpu_us"] and x["cpu_us"][q] >= 0.5)))
    w("== tunnel target with kTLS (reported, not enforced)")
    if k is None:
        w("  10,000 idle tunnels in <= 100 MB of mezited PSS, kTLS: "
          "not measured")
    else:
        w("  10,000 idle tunnels in <= 100 MB of mezited PSS, kTLS: %.0f "
          "MB (projected from %d)  %s" % (mib(k["goal_pss"]), n,
                                          verdict(k["goal_pss"] * 1024 <=
                                                  GOAL_BYTES)))
    return "\n".join(out) + "\n"


def write_out(prefix, text, res):
    if not prefix:
        return
    with open(prefix + ".txt", "w") as f:
        f.write(text)
    with open(prefix + ".json", "w") as f:
        json.dump(res, f, indent=1)


# --------------------------------------------------------------------------
# The two modes


def haproxy_cfg(d, port, sport, backend, pem, ca, maxconn):
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""\
# Generated by tests/bench/tunnels.py: agents' mTLS connections held in
# mode tcp, and a TLS frontend for the streams, to one plaintext backend.
global
	maxconn {maxconn}
	nbthread 1
	user nobody
	group nogroup
	ssl-default-bind-options ssl-min-ver TLSv1.3

defaults
	mode tcp
	timeout connect 5s
	timeout client 600s
	timeout server 600s

frontend agents
	bind 127.0.0.1:{port} ssl crt {pem} ca-file {ca} verify required alpn mezite-tunnel
	default_backend sink

frontend stream
	bind 127.0.0.1:{sport} ssl crt {pem} alpn mezite-bench
	default_backend sink

backend sink
	server sink {backend}
""".format(maxconn=maxconn, port=port, sport=sport, pem=pem, ca=ca,
           backend=backend))
    r = subprocess.run(["haproxy", "-c", "-q", "-f", cfg],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("tunnels: haproxy refused %s:\n%s%s" % (
            cfg, r.stdout, r.stderr))
    return cfg


def wait_port(port, prog, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and prog.alive():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("tunnels: %s did not come up:\n%s" % (
        prog.name, prog.log_tail()))


def cipher_of(port):
    """The TLS 1.3 suite a server picks from OpenSSL's default offer,
    which is mezd's (libtls)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["mezite-tunnel"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.cipher()[0]


def main_host():
    global CG_ROOT, SUITE
    W, TOP = sys.argv[2], sys.argv[3]
    OUT = sys.argv[4] if len(sys.argv) > 4 else None
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    limit = fd_limit()
    n = cap_tunnels(TUNNELS, limit)
    CG_ROOT = cgroup_root()
    BIN, PKI = os.path.join(W, "bin"), os.path.join(W, "pki")
    cert, key = os.path.join(PKI, "cert.pem"), os.path.join(PKI, "key.pem")
    pids = os.path.join(W, "pids")
    d = os.path.join(W, "tun")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    t0 = time.monotonic()
    res = {"n": n, "fd_limit": limit, "idle": {}, "stream": {}}
    progs = []
    try:
        # Idle tunnels, relay mode.
        m = Mezited(TOP, os.path.join(d, "mezited"), free_port(), cert,
                    key, False, n + 50)
        progs.append(m.prog)
        m.start(pids)
        log("idle tunnels: mezited relay, 2 x %d" % (n // 2))
        res["idle"]["mezited"] = idle_mezited(m, n, os.path.join(
            BIN, "tunnelgen"))
        # The host CA, for HAProxy's verify.
        ca = os.path.join(d, "host-ca.crt")
        shutil.copyfile(m.ca, ca)

        # HAProxy holding as many agents' connections, fresh.
        bport, hport, sport = free_port(), free_port(), free_port()
        sink = Prog("backend", [os.path.join(BIN, "tlssink"), "-l",
                                "127.0.0.1:%d" % bport], d)
        progs.append(sink)
        sink.start(pids)
        wait_port(bport, sink)
        cfg = haproxy_cfg(d, hport, sport, "127.0.0.1:%d" % bport,
                          os.path.join(PKI, "haproxy.pem"), ca, n + 50)
        hap = Prog("haproxy", ["haproxy", "-db", "-f", cfg], d)
        progs.append(hap)
        hap.start(pids)
        wait_port(sport, hap)
        both = Prog("haproxy+backend", [], d)
        both.pids = lambda: hap.pids() + sink.pids()
        both.by_role = lambda fn: {**hap.by_role(fn), **sink.by_role(fn)}
        both.alive = lambda: hap.alive() and sink.alive()
        log("idle connections: haproxy, 2 x %d" % (n // 2))
        res["idle"]["haproxy"] = hold(
            both, hport, m.ca, m.ca_key, n, True,
            lambda: tcp_established(bport), os.path.join(BIN, "tunnelgen"))

        # One stream: mezd serving the sink, and HAProxy to it.
        log("streams: %d MiB each way, %d runs" % (STREAM_MIB, RUNS))
        deadline = time.monotonic() + 30
        while m.routed() > 8 and time.monotonic() < deadline:
            time.sleep(0.2)           # the idle tunnels gone
        mezd = Mezd(TOP, os.path.join(d, "mezd"), m,
                    "127.0.0.1:%d" % bport, cert)
        progs.append(mezd.prog)
        mezd.prog.start(pids)
        deadline = time.monotonic() + 30
        while m.nodes_online(STREAM_NODE) != (1, 1):
            if time.monotonic() > deadline or not mezd.prog.alive():
                raise SystemExit("tunnels: mezd did not come online:\n" +
                                 mezd.prog.log_tail())
            time.sleep(0.2)
        SUITE = cipher_of(m.port)
        nbytes = STREAM_MIB << 20
        lg = os.path.join(BIN, "loadgen")
        # Warm up: the first stream of each.
        mez_stream(m, False, 8 << 20)
        hap_stream(lg, sport, False, 8 << 20)
        s = {w: {"down": [], "up": []} for w in ("mez", "hap")}
        for i in range(RUNS):
            order = ["mez", "hap"] if i % 2 == 0 else ["hap", "mez"]
            for who in order:
                for up in (False, True):
                    dirn = "up" if up else "down"
                    if who == "mez":
                        r = metered({"mezited": m.prog,
                                     "mezd": mezd.prog},
                                    lambda: mez_stream(m, up, nbytes))
                    else:
                        r = metered({"haproxy": hap}, lambda: hap_stream(
                            lg, sport, up, nbytes))
                    s[who][dirn].append(r)
            for p in (m.prog, mezd.prog, hap, sink):
                if not p.alive():
                    raise SystemExit("tunnels: %s died" % p.name)
        s["suite"] = SUITE
        s["bytes"] = nbytes
        res["stream"] = s
    finally:
        for p in reversed(progs):
            p.stop()
    res["secs"] = time.monotonic() - t0
    text = report_host(res, n, limit)
    sys.stdout.write(text)
    sys.stdout.flush()
    write_out(OUT, text, res)
    log("done in %.0f s" % res["secs"])


def main_vm():
    TOP, tunnelgen, OUT = sys.argv[2], sys.argv[3], sys.argv[4]
    fd_limit()
    n = cap_tunnels(VM_TUNNELS, 65536)
    d = tempfile.mkdtemp(prefix="mezite-tunnels.")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   capture_output=True)
    os.chmod(key, 0o600)
    res = {"n": n}
    t0 = time.monotonic()
    for name, ktls in (("ktls", True), ("relay", False)):
        # vm-run.sh powers the VM off after 600 s: a part that might not
        # end by then is left out, and the table says so.
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
        if up > VM_LAST_START:
            log("mezited %s not measured: the VM has run %.0f s" % (name,
                                                                  up))
            continue
        m = Mezited(TOP, os.path.join(d, name), free_port(), cert, key,
                    ktls, n + 50)
        try:
            m.start(timeout=150)
            log("idle tunnels in the VM: mezited %s, 2 x %d" % (name,
                                                                n // 2))
            res[name] = idle_mezited(m, n, tunnelgen, secs=300)
        finally:
            m.prog.stop()
    res["secs"] = time.monotonic() - t0
    text = report_vm(res)
    sys.stdout.write(text)
    write_out(OUT, text, res)
    log("done in %.0f s" % res["secs"])


if __name__ == "__main__":
    if MODE == "host" and len(sys.argv) in (4, 5):
        main_host()
    elif MODE == "vm" and len(sys.argv) == 5:
        main_vm()
    else:
        sys.exit("usage: tunnels.py host WORK TOP [OUT] | "
                 "tunnels.py vm TOP TUNNELGEN OUT")
