#!/usr/bin/python3
"""
Mezite side by side: mezited (relay mode) against HAProxy -> h2o, h2o
alone and an in-process TLS sink.  Started by tests/bench/run.sh, which
installs the peers, builds the helpers and prepares the work directory;
see tests/bench/README.md for what each row measures.

Python only orchestrates: it starts the servers, reads their CPU time and
memory from the kernel around each measurement, and runs the C client
(loadgen) or h2load, whose own CPU is not counted.  Nothing here is on a
measured path.
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

W = sys.argv[1]                          # work directory from run.sh
TOP = sys.argv[2]                        # the source tree
BIN = os.path.join(W, "bin")
# MEZITED in the environment benchmarks another build.
MEZITED = os.environ.get("MEZITED", os.path.join(TOP, "master", "mezited"))
# The same tree built with KEYS=master (run.sh makes it): the master signs
# its handshakes itself, which prices the ca process's round trip.
MEZITED_KM = os.environ.get("MEZITED_KM")
KM = "mezited-km"
# Two event loops a side for new connections: mezited's master in two
# processes against HAProxy in two threads, each with a backend of two.
MP = "mezited-p2"
HP2 = "haproxy2>h2o"
CONN_ONLY = (KM, MP, HP2)       # measured for new connections alone


# BENCH_QUICK=1: every load small, to check that the whole bench runs
# (make check-bench); the figures then mean little.
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"


def env_int(name, default, lo=None, quick=None):
    if QUICK and quick is not None:
        default = quick
    v = int(os.environ.get(name, default))
    return max(v, lo) if lo is not None else v


RUNS = env_int("BENCH_RUNS", 5, lo=3, quick=3)   # median of at least 3
CONN_SECS = float(os.environ.get("BENCH_CONN_SECS", "0.5" if QUICK else "3"))
CONN_CONC = env_int("BENCH_CONN_CONC", 8, lo=1)
MP_CONC = env_int("BENCH_MP_CONC", 32, lo=2)
BIG = 64 << 20                                   # the static file
DOWN_REPEAT = env_int("BENCH_DOWN_REPEAT", 4, lo=1, quick=1)  # x 64 MiB
UP_SIZE = 1 << 20                                # per POST
UP_REPEAT = env_int("BENCH_UP_REPEAT", 256, lo=1, quick=16)   # x 1 MiB
UP_WARM = 16 << 20               # warm-up POSTs: below h2o's 32 MiB temp-file
LAT_ROUNDS = env_int("BENCH_LAT_ROUNDS", 10000, lo=1000, quick=1000)
H2_REQS = env_int("BENCH_H2_REQS", 200000, lo=1000, quick=10000)
H2_CONNS = env_int("BENCH_H2_CONNS", 4, lo=1)
H2_STREAMS = env_int("BENCH_H2_STREAMS", 32, lo=1)
IDLE = env_int("BENCH_IDLE", 1000, lo=100, quick=100)
SUITE = "TLS_AES_128_GCM_SHA256"
MAX_SECS = env_int("BENCH_MAX_SECS", 780)
PROFILE = os.environ.get("BENCH_PROFILE", "0") == "1"

PKI = os.path.join(W, "pki")
CERT = os.path.join(PKI, "cert.pem")
KEY = os.path.join(PKI, "key.pem")
HTDOCS = os.path.join(W, "htdocs")
LOGS = os.path.join(W, "logs")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# CPU and memory of a process tree, from the kernel

def cgroup2_root():
    """A writable cgroup v2 hierarchy (pure v2 or the hybrid 'unified')."""
    if os.environ.get("BENCH_CGROUP_OFF") == "1":
        return None
    try:
        with open("/proc/mounts") as f:
            mounts = [l.split() for l in f]
    except OSError:
        return None
    for m in mounts:
        if m[2] != "cgroup2":
            continue
        d = os.path.join(m[1], os.environ.get(
            "BENCH_CGROUP", "mezite-bench.%d" % os.getpid()))
        try:
            os.mkdir(d)
            with open(os.path.join(d, "cpu.stat")) as f:
                f.read()
            return d
        except OSError:
            try:
                os.rmdir(d)
            except OSError:
                pass
    return None


CG_ROOT = None


def task_cpu_ns(pid):
    """On-CPU time (user+sys) of every thread of pid, in ns."""
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


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    rest = st[st.rindex(")") + 2:].split()
    return rest   # rest[0] state, rest[1] ppid, rest[2] pgrp


def tree_pids(root):
    """root and its live descendants, from the ppid links in /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            rest = proc_stat(int(d))
        except (OSError, ValueError):
            continue
        if rest[0] != "Z":
            kids.setdefault(int(rest[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Comp:
    """One server program: a process tree, in a cgroup of its own when
    the machine lets us make one."""

    def __init__(self, name, cmd, role_of=None):
        self.name = name
        self.cmd = cmd
        self.proc = None
        self.cg = None
        self.role_of = role_of or (lambda pid, root: name)
        self.logpath = os.path.join(LOGS, name + ".log")

    def start(self):
        if CG_ROOT:
            self.cg = os.path.join(CG_ROOT, self.name)
            os.mkdir(self.cg)
        cgprocs = os.path.join(self.cg, "cgroup.procs") if self.cg else None

        def pre():
            if cgprocs:
                with open(cgprocs, "w") as f:
                    f.write(str(os.getpid()))

        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True,
                                     preexec_fn=pre, cwd=W)
        with open(os.path.join(W, "pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        if self.proc is None:
            return []
        if self.cg:
            try:
                with open(os.path.join(self.cg, "cgroup.procs")) as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                return []
        return tree_pids(self.proc.pid)

    def cpu_ns(self):
        if self.cg:
            with open(os.path.join(self.cg, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v) * 1000
        return sum(task_cpu_ns(p) for p in self.pids())

    def cpu_by_role(self):
        out = {}
        for p in self.pids():
            r = self.role_of(p, self.proc.pid)
            out[r] = out.get(r, 0) + task_cpu_ns(p)
        return out

    def pss_kb(self):
        return sum(pss_kb(p) for p in self.pids())

    def pss_by_role(self):
        out = {}
        for p in self.pids():
            r = self.role_of(p, self.proc.pid)
            out[r] = out.get(r, 0) + pss_kb(p)
        return out

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the tree, by PID.
        for _ in range(50):
            left = [p for p in self.pids() if p != os.getpid()]
            if not left:
                break
            for p in left:
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


def mezited_role(pid, root):
    if pid == root:
        return "supervisor"
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cl = f.read().replace(b"\0", b" ").decode("ascii", "replace")
    except OSError:
        return "other"
    for r in ("master", "https"):
        if r in cl:
            return r
    # it signs the master's handshakes: part of their cost
    if "mezited: ca." in cl:
        return "ca"
    return "other"


class Server:
    """What a client talks to: one port, one or more programs behind it."""

    def __init__(self, name, comps, port, proto, alpn, what,
                 backend_port=None):
        self.name = name
        self.backend_port = backend_port
        self.comps = comps
        self.port = port
        self.proto = proto          # "http" or "sink"
        self.alpn = alpn
        self.what = what

    def cpu_ns(self):
        return sum(c.cpu_ns() for c in self.comps)

    def cpu_by_role(self):
        out = {}
        for c in self.comps:
            for r, v in c.cpu_by_role().items():
                out[r] = out.get(r, 0) + v
        return out

    def pss_kb(self):
        return sum(c.pss_kb() for c in self.comps)

    def pss_by_role(self):
        out = {}
        for c in self.comps:
            for r, v in c.pss_by_role().items():
                out[r] = out.get(r, 0) + v
        return out

    def alive(self):
        return all(c.alive() for c in self.comps)


# --------------------------------------------------------------------------
# Configurations


def setup_files():
    os.makedirs(HTDOCS, exist_ok=True)
    os.makedirs(LOGS, exist_ok=True)
    with open(os.path.join(HTDOCS, "64.bin"), "wb") as f:
        f.write(b"m" * 63 + b"\n")
    with open(os.path.join(HTDOCS, "1k.bin"), "wb") as f:
        f.write(os.urandom(1024))
    # POSTs go to an existing file: libh2o reads the whole body and the
    # file handler answers 405, the same code in every server here.
    with open(os.path.join(HTDOCS, "upload.bin"), "wb") as f:
        f.write(b"u\n")
    with open(os.path.join(HTDOCS, "big.bin"), "wb") as f:
        for _ in range(BIG >> 20):
            f.write(os.urandom(1 << 20))
    for n in os.listdir(HTDOCS):
        os.chmod(os.path.join(HTDOCS, n), 0o644)
    os.chmod(HTDOCS, 0o755)


def link_tree(src, dst):
    os.makedirs(dst, exist_ok=True)
    for n in os.listdir(src):
        try:
            os.link(os.path.join(src, n), os.path.join(dst, n))
        except OSError:
            shutil.copy2(os.path.join(src, n), os.path.join(dst, n))


def mezited_comp(port, name="mezited", binary=MEZITED, masters=1,
                 https=1):
    """mezited in relay mode; masters > 1 needs a build with the master's
    prefork (None if this one has not)."""
    d = os.path.join(W, name)
    empty, www = os.path.join(d, "empty"), os.path.join(d, "www")
    for x in (d, empty, www):
        os.makedirs(x, exist_ok=True)
        os.chmod(x, 0o755)
    link_tree(HTDOCS, os.path.join(www, "htdocs"))
    os.chmod(os.path.join(www, "htdocs"), 0o755)
    conf = os.path.join(d, "mezited.conf")
    text = """\
# Generated by tests/bench/bench.py.
{ktls}listen on 127.0.0.1 port {port}
tls keypair "bench" {{
	certificate "{cert}"
	key "{key}"
}}
tls protocols "tlsv1.3"
timeout handshake 10
timeout idle 300
timeout drain 2
max connections 8000
# Every client comes from 127.0.0.1, faster than any one would.
max connections per source 1000000
max connection rate 1000000 per source
control socket "{sock}"
master {{
{mprefork}	user "nobody"
	chroot "{empty}"
}}
{ca}worker https {{
	prefork {https}
	user "nobody"
	chroot "{www}"
	root "/htdocs"
}}
# The proxy and the https worker alone are measured.
worker auth {{
	prefork 0
}}
worker tunnel {{
	prefork 0
}}
worker ssh {{
	prefork 0
}}
"""
    args = dict(port=port, cert=CERT, key=KEY, empty=empty, www=www,
                sock=os.path.join(d, "ctl.sock"), https=https)
    # Relay mode, whatever the kernel could do; a build from before the
    # ktls setting relays anyway.  One from before the ca block runs its
    # ca process as the master's user.  The number of masters is always
    # said (the default is one per CPU); a build from before the master's
    # prefork has one.
    ca = 'ca {{\n\tuser "nobody"\n\tchroot "{empty}"\n}}\n'.format(**args)
    mp = "\tprefork %d\n" % masters
    for ktls, ca_block, mpre in (("ktls no\n", ca, mp),
                                 ("ktls no\n", ca, ""),
                                 ("ktls no\n", "", ""), ("", "", "")):
        if masters > 1 and not mpre:
            break
        with open(conf, "w") as f:
            f.write(text.format(ktls=ktls, ca=ca_block, mprefork=mpre,
                                **args))
        r = subprocess.run([binary, "-n", "-f", conf], capture_output=True,
                           text=True)
        if r.returncode == 0:
            break
    if r.returncode != 0 and masters > 1:
        log("%s left out: this mezited has no prefork for its master (%s)"
            % (name, (r.stdout + r.stderr).strip().splitlines()[-1:]))
        return None
    if r.returncode != 0:
        raise SystemExit("mezited refused the bench configuration:\n" +
                         r.stdout + r.stderr)
    c = Comp(name, [binary, "-d", "-f", conf], role_of=mezited_role)
    c.sock = os.path.join(d, "ctl.sock")
    return c


def haproxy_comp(port, h2o_port, sink_port, name="haproxy", nbthread=1):
    pem = os.path.join(PKI, "haproxy.pem")
    cfg = os.path.join(W, name + ".cfg")
    with open(cfg, "w") as f:
        f.write("""\
# Generated by tests/bench/bench.py: TLS 1.3 with ALPN, routed by
# ssl_fc_alpn in mode tcp to a local backend.
global
	maxconn 8000
	nbthread {nbthread}
	user nobody
	group nogroup
	ssl-default-bind-options ssl-min-ver TLSv1.3

defaults
	mode tcp
	timeout connect 5s
	timeout client 300s
	timeout server 300s

frontend tls
	bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1,mezite-bench
	use_backend h2o if {{ ssl_fc_alpn -i h2 http/1.1 }}
	use_backend sink if {{ ssl_fc_alpn -i mezite-bench }}

backend h2o
	server h2o 127.0.0.1:{h2o_port}

backend sink
	server sink 127.0.0.1:{sink_port}
""".format(port=port, pem=pem, h2o_port=h2o_port, sink_port=sink_port,
           nbthread=nbthread))
    r = subprocess.run(["haproxy", "-c", "-q", "-f", cfg],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("haproxy refused the bench configuration:\n" +
                         r.stdout + r.stderr)
    return Comp(name, ["haproxy", "-db", "-f", cfg])


def h2o_comp(name, port, tls, threads=1):
    cfg = os.path.join(W, name + ".conf")
    listen = "listen:\n  host: 127.0.0.1\n  port: %d\n" % port
    if tls:
        listen += ("  ssl:\n    certificate-file: %s\n    key-file: %s\n"
                   "    minimum-version: TLSv1.3\n"
                   "    ocsp-update-interval: 0\n" % (CERT, KEY))
    with open(cfg, "w") as f:
        f.write("# Generated by tests/bench/bench.py.\n" + listen + """\
num-threads: %d
max-connections: 20000
user: nobody
hosts:
  default:
    paths:
      /:
        file.dir: %s
""" % (threads, HTDOCS))
    r = subprocess.run(["h2o", "-t", "-c", cfg], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit("h2o refused the bench configuration:\n" +
                         r.stdout + r.stderr)
    return Comp(name, ["h2o", "-c", cfg])


def sink_comp(name, port, tls):
    cmd = [os.path.join(BIN, "tlssink"), "-l", "127.0.0.1:%d" % port]
    if tls:
        # Two session tickets per handshake, as HAProxy and h2o send by
        # default (mezited sends one).
        cmd += ["-c", CERT, "-k", KEY, "-t", "2"]
    return Comp(name, cmd)


# --------------------------------------------------------------------------
# Clients


def client_ctx(alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    return ctx


def https_get(port, path, alpn="http/1.1", timeout=3):
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                    context=client_ctx(alpn))
    try:
        c.request("GET", path, headers={"Host": "localhost"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def sink_ping(port, timeout=3):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = client_ctx("mezite-bench").wrap_socket(raw,
                                                server_hostname="localhost")
    try:
        s.sendall(b"X" + (4).to_bytes(8, "big") + b"ping")
        got = b""
        while len(got) < 4:
            b = s.recv(4 - len(got))
            if not b:
                break
            got += b
        return got == b"ping"
    finally:
        s.close()


def wait_ready(srv, timeout=20):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not srv.alive():
            break
        try:
            if srv.proto == "sink":
                if sink_ping(srv.port):
                    return
            else:
                st, body = https_get(srv.port, "/64.bin")
                if st == 200 and len(body) == 64:
                    return
                last = "HTTP %d" % st
        except Exception as e:   # noqa: BLE001 - not up yet
            last = repr(e)
        time.sleep(0.1)
    for c in srv.comps:
        log("--- %s log ---" % c.name)
        try:
            with open(c.logpath, errors="replace") as f:
                sys.stderr.write(f.read()[-3000:])
        except OSError:
            pass
    raise SystemExit("bench: %s did not come up (%s)" % (srv.name, last))


def kv(line):
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", line))


def loadgen(mode, srv, *args, timeout=120):
    cmd = [os.path.join(BIN, "loadgen"), mode, "-a",
           "127.0.0.1:%d" % srv.port, "-P", srv.proto, "-A", srv.alpn,
           "-C", SUITE] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return kv(r.stdout)


def settle():
    time.sleep(0.3)


class Meter:
    """Server CPU over one measurement: total and by role."""

    def __init__(self, srv):
        self.srv = srv

    def __enter__(self):
        self.t0 = self.srv.cpu_ns()
        self.r0 = self.srv.cpu_by_role()
        return self

    def __exit__(self, *exc):
        settle()
        self.cpu_us = (self.srv.cpu_ns() - self.t0) / 1000.0
        r1 = self.srv.cpu_by_role()
        self.roles = {k: (v - self.r0.get(k, 0)) / 1000.0
                      for k, v in r1.items()}
        return False


# --------------------------------------------------------------------------
# Measurements: each returns a dict of figures for one run


def m_conn(srv):
    with Meter(srv) as m:
        r = loadgen("conn", srv, "-c", CONN_CONC, "-t", CONN_SECS,
                    timeout=CONN_SECS + 60)
    n = int(r["conns"])
    if n == 0 or int(r["failed"]) > n // 100:
        raise RuntimeError("%s: %s conns, %s failed" % (
            srv.name, r["conns"], r["failed"]))
    out = {"cpu": m.cpu_us / n, "rate": float(r["rate"]),
           "tickets": float(r["tickets_per_conn"]),
           "cipher": r.get("cipher"), "alpn": r.get("alpn")}
    out.update({"role:" + k: v / n for k, v in m.roles.items()})
    return out


def m_resume(srv):
    """New connections that resume: each offers the latest ticket."""
    with Meter(srv) as m:
        r = loadgen("conn", srv, "-R", "-c", CONN_CONC, "-t", CONN_SECS,
                    timeout=CONN_SECS + 60)
    n = int(r["conns"])
    if n == 0 or int(r["failed"]) > n // 100:
        raise RuntimeError("%s: %s conns, %s failed" % (
            srv.name, r["conns"], r["failed"]))
    out = {"cpu": m.cpu_us / n, "rate": float(r["rate"]),
           "resumed": int(r["resumed"]) / n,
           "tickets": float(r["tickets_per_conn"])}
    out.update({"role:" + k: v / n for k, v in m.roles.items()})
    return out


def m_conn_mp(srv):
    """New connections, enough at a time to keep two loops busy, from
    two clients: one loadgen has one core's worth of handshakes."""
    cmd = [os.path.join(BIN, "loadgen"), "conn", "-a",
           "127.0.0.1:%d" % srv.port, "-P", srv.proto, "-A", srv.alpn,
           "-C", SUITE, "-c", str(max(1, MP_CONC // 2)), "-t",
           str(CONN_SECS)]
    with Meter(srv) as m:
        ps = [subprocess.Popen(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
        rs = []
        for p in ps:
            out, err = p.communicate(timeout=CONN_SECS + 60)
            if p.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd), err.strip()))
            rs.append(kv(out))
    n = sum(int(r["conns"]) for r in rs)
    failed = sum(int(r["failed"]) for r in rs)
    if n == 0 or failed > n // 100:
        raise RuntimeError("%s: %d conns, %d failed" % (srv.name, n, failed))
    r = rs[0]
    out = {"cpu": m.cpu_us / n,
           "rate": sum(float(x["rate"]) for x in rs),
           "cipher": r.get("cipher"), "alpn": r.get("alpn")}
    out.update({"role:" + k: v / n for k, v in m.roles.items()})
    return out


def m_stream(srv, up):
    if up:
        args = ("-s", UP_SIZE, "-r", UP_REPEAT)
    else:
        args = ("-s", BIG, "-r", DOWN_REPEAT)
    with Meter(srv) as m:
        r = loadgen("up" if up else "down", srv, *args, timeout=300)
    mb = int(r["bytes"]) / 1e6
    out = {"cpu": m.cpu_us / mb, "rate": float(r["mbps"]),
           "status": r.get("status")}
    out.update({"role:" + k: v / mb for k, v in m.roles.items()})
    return out


def m_lat(srv):
    r = loadgen("lat", srv, "-n", LAT_ROUNDS, "-w", 500, timeout=300)
    return {"p50": float(r["p50_us"]), "p99": float(r["p99_us"]),
            "p999": float(r["p999_us"])}


def m_h2(srv):
    cmd = ["h2load", "-n", str(H2_REQS), "-c", str(H2_CONNS), "-m",
           str(H2_STREAMS), "-t", "1", "--tls13-ciphers=" + SUITE,
           "https://127.0.0.1:%d/1k.bin" % srv.port]
    with Meter(srv) as m:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    out = r.stdout
    fin = re.search(r"finished in ([\d.]+)(?:s|ms), ([\d.]+) req/s", out)
    req = re.search(r"requests: \d+ total, \d+ started, \d+ done, "
                    r"(\d+) succeeded", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    if r.returncode != 0 or not fin or not req or int(req.group(1)) == 0:
        raise RuntimeError("h2load against %s failed:\n%s%s" % (
            srv.name, out[-1500:], r.stderr[-500:]))
    n = int(req.group(1))
    if n < H2_REQS * 0.99:
        raise RuntimeError("h2load against %s: %d of %d succeeded" % (
            srv.name, n, H2_REQS))
    if proto is None or proto.group(1) != "h2":
        raise RuntimeError("h2load against %s did not speak h2" % srv.name)
    res = {"cpu": m.cpu_us / n, "rate": float(fin.group(2))}
    res.update({"role:" + k: v / n for k, v in m.roles.items()})
    return res


def tcp_established(port):
    """Established TCP sockets whose local port is port (server side)."""
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


def routed(srv):
    """How many sessions reached the server's backend or worker."""
    if srv.backend_port:
        return tcp_established(srv.backend_port)
    if srv.name == "mezited":
        c = srv.comps[0]
        n = 0
        for p in c.pids():
            if mezited_role(p, c.proc.pid) != "https":
                continue
            try:
                for fd in os.listdir("/proc/%d/fd" % p):
                    if os.readlink("/proc/%d/fd/%s" % (p, fd)).startswith(
                            "socket:"):
                        n += 1
            except OSError:
                pass
        return n
    return None


def restart(srv):
    for c in srv.comps:
        c.stop()
        c.start()
    wait_ready(srv)


def refusals(srv):
    """Sessions mezited closed because no worker would take them."""
    if srv.name != "mezited":
        return None
    try:
        with open(srv.comps[0].logpath, errors="replace") as f:
            return f.read().count("worker is running, closing")
    except OSError:
        return 0


def m_mem(srv):
    # A fresh server each time: memory that earlier runs' connections
    # left in the allocators would be reused and hide the cost.
    restart(srv)
    # The readiness probe's session may still hold a socket in the worker
    # or at the backend for a moment: count from when it has gone.
    base = routed(srv)
    for _ in range(15):
        if base is None:
            break
        time.sleep(0.2)
        now, base = base, routed(srv)
        if now == base:
            break
    base = base or 0
    refused0 = refusals(srv)
    t0 = time.monotonic()
    cmd = [os.path.join(BIN, "loadgen"), "hold", "-a",
           "127.0.0.1:%d" % srv.port, "-P", srv.proto, "-A", srv.alpn,
           "-C", SUITE, "-n", str(IDLE), "-c", "64"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)

    def settled(target, before):
        # Until the server has routed them all, or the count has moved
        # and then stopped (sessions it refused); quickly, for h2o closes
        # idle connections after 10 s.  HAProxy may take most of a second
        # to connect to its backend, so no movement yet is no answer.
        deadline = time.monotonic() + 3
        r = routed(srv)
        last, since = r, time.monotonic()
        while (r is not None and r - base < target and
               time.monotonic() < deadline):
            time.sleep(0.1)
            r = routed(srv)
            if r != last:
                last, since = r, time.monotonic()
            elif r - base > before and time.monotonic() - since > 0.5:
                break
        time.sleep(0.3 if r is not None else 1.0)
        return None if r is None else r - base

    try:
        b1 = kv(p.stdout.readline())
        r1 = settled(int(b1.get("open", 0)), 0)
        pss1 = srv.pss_kb()
        roles1 = srv.pss_by_role()
        p.stdin.write("\n")
        p.stdin.flush()
        b2 = kv(p.stdout.readline())
        r2 = settled(int(b2.get("open", 0)), r1 or 0)
        pss2 = srv.pss_kb()
        roles2 = srv.pss_by_role()
        secs = time.monotonic() - t0
        alive = srv.alive()
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    n1, n2 = int(b1.get("open", 0)), int(b2.get("open", 0))
    if n1 < IDLE * 0.99 or n2 - n1 < IDLE * 0.99 or not alive:
        raise RuntimeError("%s: idle connections: %d then %d open" % (
            srv.name, n1, n2))
    # Per routed session where the server tells: a session the server
    # dropped costs it nothing.
    div = n2 - n1 if r2 is None else r2 - r1
    if div < IDLE // 2:
        raise RuntimeError("%s: only %d of the second %d sessions routed"
                           % (srv.name, div, n2 - n1))
    refused = refusals(srv)
    refused = None if refused is None else refused - refused0
    if refused:
        log("%s: %d idle connections open, %s routed, %d refused" % (
            srv.name, n2, r2, refused))
    elif r2 is not None and r2 < n2 * 0.99:
        log("%s: %d idle connections open, %d routed" % (srv.name, n2, r2))
    if secs > 9:
        log("%s: the idle test took %.1f s; h2o closes idle connections "
            "after 10 s" % (srv.name, secs))
    time.sleep(1.0)                # let the servers drop them
    out = {"kb": (pss2 - pss1) / div, "pss1": pss1, "pss2": pss2,
           "open": n2, "routed": r2, "secs": secs}
    if refused is not None:
        out["refused"] = refused
    out.update({"role:" + k: (v - roles1.get(k, 0)) / div
                for k, v in roles2.items()})
    return out


# --------------------------------------------------------------------------
# Table


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    return ("%%.%df" % nd) % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fr(x):
    return "-" if x is None else "%.2fx" % x


def build_id():
    try:
        r = subprocess.run(["git", "-C", TOP, "describe", "--always",
                            "--dirty"], capture_output=True, text=True,
                           timeout=10)
        rev = r.stdout.strip() if r.returncode == 0 else "?"
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    if "MEZITED" in os.environ:
        return "%s (from MEZITED)" % MEZITED
    return "%s, built from %s" % (MEZITED, rev)


BUILD = "?"


def main():
    global CG_ROOT, BUILD
    BUILD = build_id()
    t_start = time.monotonic()
    # A TERM (timeout, ^C in the shell) unwinds through the finally
    # below, which stops the servers.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    # As many descriptors as we may have (the hard limit may be fixed).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    CG_ROOT = cgroup2_root()
    log("server CPU from %s" % (
        "a cgroup v2 per program (%s)" % CG_ROOT if CG_ROOT else
        "/proc/<pid>/task/*/schedstat summed over each process tree"))
    setup_files()

    p = {k: free_port() for k in ("mez", "km", "hap", "h2o", "h2obe",
                                   "sink", "sinkbe", "mp", "hap2",
                                   "h2obe2")}
    comps = {
        "mezited": mezited_comp(p["mez"]),
        "haproxy": haproxy_comp(p["hap"], p["h2obe"], p["sinkbe"]),
        "h2o-be": h2o_comp("h2o-be", p["h2obe"], tls=False),
        "h2o": h2o_comp("h2o", p["h2o"], tls=True),
        "sink": sink_comp("sink", p["sink"], tls=True),
        "sink-be": sink_comp("sink-be", p["sinkbe"], tls=False),
    }
    if MEZITED_KM:
        comps[KM] = mezited_comp(p["km"], KM, MEZITED_KM)
    mp = mezited_comp(p["mp"], MP, masters=2, https=2)
    if mp is not None:
        comps[MP] = mp
        comps["haproxy2"] = haproxy_comp(p["hap2"], p["h2obe2"],
                                         p["sinkbe"], "haproxy2", 2)
        comps["h2o-be2"] = h2o_comp("h2o-be2", p["h2obe2"], tls=False,
                                    threads=2)
    servers = [
        Server("mezited", [comps["mezited"]], p["mez"], "http", "http/1.1",
               "mezited relay: master (TLS, route, relay) -> socketpair -> "
               "https worker (libh2o 2.2.5)"),
        Server("haproxy>h2o", [comps["haproxy"], comps["h2o-be"]], p["hap"],
               "http", "http/1.1",
               "HAProxy 2.6 TLS, mode tcp, ssl_fc_alpn -> h2o 2.2.5 "
               "cleartext on loopback TCP (the structural twin)",
               backend_port=p["h2obe"]),
        Server("h2o", [comps["h2o"]], p["h2o"], "http", "http/1.1",
               "h2o 2.2.5 terminating TLS itself (no hop, HTTP ideal)"),
        Server("haproxy>sink", [comps["haproxy"], comps["sink-be"]],
               p["hap"], "sink", "mezite-bench",
               "the same HAProxy frontend, ALPN mezite-bench -> plaintext "
               "tlssink (raw stream through one hop)",
               backend_port=p["sinkbe"]),
        Server("sink", [comps["sink"]], p["sink"], "sink", "mezite-bench",
               "tlssink: OpenSSL TLS 1.3 in-process, raw stream (no hop, "
               "stream ideal)"),
    ]
    # New connections only: the rest of its path is mezited's.
    if MEZITED_KM:
        servers.insert(1, Server(
            KM, [comps[KM]], p["km"], "http", "http/1.1",
            "the same mezited built with KEYS=master: the master signs "
            "its handshakes itself, no ca process"))
    if mp is not None:
        servers += [
            Server(MP, [comps[MP]], p["mp"], "http", "http/1.1",
                   "mezited with master { prefork 2 } (a listening socket "
                   "each, SO_REUSEPORT) and https prefork 2"),
            Server(HP2, [comps["haproxy2"], comps["h2o-be2"]], p["hap2"],
                   "http", "http/1.1",
                   "the haproxy>h2o pair with nbthread 2 and h2o "
                   "num-threads: 2", backend_port=p["h2obe2"]),
        ]
    by = {s.name: s for s in servers}
    try:
        for c in comps.values():
            c.start()
        for s in servers:
            wait_ready(s)
        st, body = https_get(p["mez"], "/api/v1/whoami")
        mode = json.loads(body).get("mode") if st == 200 else None
        if mode != "relay":
            raise SystemExit("bench: mezited is not in relay mode (%r)"
                             % mode)
        log("all servers up; mezited hands off in %s mode" % mode)

        results = {}

        only = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
        skipped = []

        def run(name, fn, names):
            # resumed and two-loop connections go with new connections
            if only and name not in only and not (
                    name in ("resume", "mp") and "conn" in only):
                return
            # Bounded in time: a busy machine loses measurements, not
            # the table.
            if time.monotonic() - t_start > MAX_SECS - 150:
                log("%s skipped: less than 150 s left of BENCH_MAX_SECS"
                    % name)
                skipped.append(name)
                return
            res = {n: [] for n in names}
            for i in range(RUNS):
                order = names[i % len(names):] + names[:i % len(names)]
                for n in order:
                    res[n].append(fn(by[n]))
                    if not by[n].alive():
                        raise SystemExit("bench: %s died during %s" % (
                            n, name))
            results[name] = res
            log("%s done (%.0f s so far)" % (name,
                                              time.monotonic() - t_start))

        allnames = [s.name for s in servers if s.name not in CONN_ONLY]
        http = ["mezited", "haproxy>h2o", "h2o"]
        # Warm up: file cache, allocators, the first handshakes.
        # Uploads: libh2o buffers a request body in a malloc'ed buffer
        # that it grows by doubling; until glibc has freed one large
        # mmap'ed chunk, its dynamic mmap threshold stays at 128 KiB and
        # every body is mmap'ed, faulted in page by page and unmapped
        # again (~10 ns per byte, in every libh2o server alike).  Two
        # large POSTs first, so that what we measure is the steady
        # state, not the allocator's first minutes.
        for s in servers:
            loadgen("conn", s, "-c", 4, "-t", 0.5, timeout=60)
            if s.name in CONN_ONLY:
                continue
            loadgen("down", s, "-s", BIG, "-r", 1, timeout=120)
            loadgen("up", s, "-s", UP_WARM, "-r", 2, timeout=120)

        run("conn", m_conn, allnames + ([KM] if MEZITED_KM else []))
        run("resume", m_resume, ["mezited", "haproxy>h2o"])
        if mp is not None:
            run("mp", m_conn_mp, [MP, HP2])
        run("lat", m_lat, allnames)
        run("down", lambda s: m_stream(s, False), allnames)
        run("up", lambda s: m_stream(s, True), allnames)
        run("h2", m_h2, http)
        run("mem", m_mem, allnames)
        prof = profile(by["mezited"], only) if PROFILE else None
        report(results, servers, time.monotonic() - t_start, skipped, prof)
    finally:
        for c in comps.values():
            c.stop()
        if CG_ROOT:
            try:
                os.rmdir(CG_ROOT)
            except OSError:
                pass


def profile(srv, only=()):
    """perf samples of the master and the https worker, one pass of each
    load (of those in only, if any); returns {measurement: {role: [report
    lines]}}."""
    if shutil.which("perf") is None:
        log("BENCH_PROFILE: no perf")
        return None
    c = srv.comps[0]
    roles = {}
    for p in c.pids():
        r = mezited_role(p, c.proc.pid)
        if r in ("master", "https"):
            roles[r] = p
    loads = [
        ("conn", lambda: loadgen("conn", srv, "-c", CONN_CONC, "-t", 3)),
        ("resume", lambda: loadgen("conn", srv, "-R", "-c", CONN_CONC,
                                   "-t", 3)),
        ("down", lambda: loadgen("down", srv, "-s", BIG, "-r", 4)),
        ("up", lambda: loadgen("up", srv, "-s", UP_SIZE, "-r", 256)),
        ("h2", lambda: m_h2(srv)),
    ]
    loads = [l for l in loads if not only or l[0] in only or
             (l[0] == "resume" and "conn" in only)]
    # The memory test restarted mezited: warm it up again, as before the
    # measurements.
    loadgen("conn", srv, "-c", 4, "-t", 0.5, timeout=60)
    loadgen("up", srv, "-s", UP_WARM, "-r", 2, timeout=120)
    out = {}
    pdir = os.environ.get("BENCH_OUT")
    pdir = os.path.dirname(os.path.abspath(pdir)) if pdir else W
    os.makedirs(pdir, exist_ok=True)
    for name, load in loads:
        recs = {}
        for r, pid in roles.items():
            data = os.path.join(pdir, "perf-%s-%s.data" % (name, r))
            recs[r] = (data, subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2999",
                 "-g", "-p", str(pid), "-o", data],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        try:
            load()
        finally:
            for data, p in recs.values():
                p.send_signal(signal.SIGINT)
            for data, p in recs.values():
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        out[name] = {}
        for r, (data, _) in recs.items():
            rep_ = subprocess.run(
                ["perf", "report", "-i", data, "--stdio", "--no-children",
                 "--sort", "dso,sym", "--percent-limit", "1"],
                capture_output=True, text=True, timeout=120)
            lines = [l.strip() for l in rep_.stdout.splitlines()
                     if re.match(r"^\s+[\d.]+%", l)]
            dso = subprocess.run(
                ["perf", "report", "-i", data, "--stdio", "--no-children",
                 "--sort", "dso"], capture_output=True, text=True,
                timeout=120)
            shares = [" ".join(l.split()[:2]) for l in dso.stdout.splitlines()
                      if re.match(r"^\s+[\d.]+%", l)]
            out[name][r] = ["by object: " + ", ".join(shares[:6])] + \
                lines[:12]
    if pdir == W and os.environ.get("BENCH_KEEP") != "1":
        log("perf data goes with the work directory; BENCH_OUT or "
            "BENCH_KEEP=1 keeps it")
    else:
        log("perf data in %s (perf report -i FILE)" % pdir)
    return out


def report(results, servers, elapsed, skipped=(), prof=None):
    out = []
    w = out.append
    R = results
    mez = "mezited"

    def m(meas, srv, key):
        return med(R[meas][srv], key) if srv in R.get(meas, {}) else None

    cipher = next((r.get("cipher") for v in R.get("conn", {}).values()
                   for r in v if r.get("cipher")), SUITE)
    w("")
    w("Mezite benchmark: mezited in relay mode side by side, on loopback")
    w("  %d cores shared with the clients; TLS 1.3 %s, X25519, one ECDSA "
      "P-256 certificate for all;" % (os.cpu_count(), cipher))
    w("  each figure is the median of %d runs, the servers taking turns "
      "within each run; %.0f s in all." % (RUNS, elapsed))
    w("  server CPU = user+sys of all of a server's processes (%s); "
      "client CPU is not counted." % (
          "a cgroup v2 each" if CG_ROOT else "/proc schedstat"))
    w("  mezited/this: below 1 means mezited uses less CPU, time or "
      "memory; for rates above 1 means mezited is faster.")
    w("")
    w("  mezited: %s" % BUILD)
    w("servers:")
    for s in servers:
        w("  %-13s %s" % (s.name, s.what))
    w("")
    sections = [
        ("conn", "new connections: TCP connect, full TLS 1.3 handshake, one "
         "small exchange, close; %d at a time for %g s" % (CONN_CONC,
                                                          CONN_SECS),
         "HTTP rows: GET /64.bin with Connection: close, read to EOF; "
         "sink rows: 64 bytes echoed, then the server closes",
         "us/conn", "conn/s"),
        ("resume", "resumed connections: as new connections, each offering "
         "the latest session ticket the server sent",
         "TLS 1.3 PSK with X25519: no certificate, no signature; "
         "HTTP rows as above", "us/conn", "conn/s"),
        ("mp", "new connections, two event loops a side: mezited's master "
         "in two processes against HAProxy in two threads; two clients, "
         "%d at a time each" % max(1, MP_CONC // 2), "each with a backend of two (https prefork 2, h2o "
         "num-threads: 2); GET /64.bin as above; mezited-p2/this",
         "us/conn", "conn/s"),
        ("down", "one long stream, server to client (download)",
         "HTTP rows: HTTP/1.1 GET of a 64 MiB static file, %d times on one "
         "keep-alive connection; sink rows: a raw TLS stream of the same "
         "size; MB = 10^6 bytes" % DOWN_REPEAT, "us/MB", "MB/s"),
        ("up", "one long stream, client to server (upload)",
         "HTTP rows: HTTP/1.1 POST of 1 MiB to a static file, %d times on "
         "one keep-alive connection (libh2o reads each body, the file "
         "handler answers 405); sink rows: a raw TLS stream; MB = 10^6 "
         "bytes" % UP_REPEAT, "us/MB", "MB/s"),
        ("h2", "HTTP/2 requests: h2load, %d connections x %d streams, GET "
         "/1k.bin" % (H2_CONNS, H2_STREAMS),
         "%d requests per run; CPU per request = server CPU over the run "
         "/ requests" % H2_REQS, "us/req", "req/s"),
    ]
    for meas, title, note, cu, ru in sections:
        if meas not in R:
            continue
        w("== " + title)
        w("   " + note)
        w("  %-13s %16s %16s   %s" % ("server", "server CPU", "rate",
                                       "mezited/this: CPU   rate"))
        lead = MP if meas == "mp" else mez
        mc, mr = m(meas, lead, "cpu"), m(meas, lead, "rate")
        for s in servers:
            if s.name not in R[meas]:
                continue
            c, r = m(meas, s.name, "cpu"), m(meas, s.name, "rate")
            rat = "" if s.name == lead else "%17s %6s" % (
                fr(ratio(mc, c)), fr(ratio(mr, r)))
            w("  %-13s %8s %-7s %8s %-7s   %s" % (
                s.name, fmt(c), cu, fmt(r), ru, rat))
        if meas == "resume":
            w("  %-13s %8s %-7s %8s %-7s   %17s %6s" % (
                "mezited full", fmt(m("conn", mez, "cpu")), cu,
                fmt(m("conn", mez, "rate")), ru,
                fr(ratio(mc, m("conn", mez, "cpu"))),
                fr(ratio(mr, m("conn", mez, "rate")))))
            w("   resumed, of all connections: " + ", ".join(
                "%s %.0f%%" % (k, 100 * m("resume", k, "resumed"))
                for k in R["resume"]))
        w("")
    if MP not in R.get("mp", {}):
        w("== new connections, two event loops a side: not measured, %s"
          % ("this mezited has no prefork for its master"
             if not any(s.name == MP for s in servers) else
             "for lack of time" if "mp" in skipped else "not asked for"))
        w("")

    if "lat" in R:
        w("== round trips on one connection: %d, after 500 not counted"
          % LAT_ROUNDS)
        w("   HTTP rows (no echo route in mezited): keep-alive HTTP/1.1 "
          "GET /64.bin, 64-byte body, the next request once the answer "
          "is in; sink rows: 64-byte echo")
        w("  %-13s %9s %9s %9s   %s" % ("server", "p50 us", "p99 us",
                                         "p99.9 us", "mezited/this: p50 "
                                         "  p99 p99.9"))
        b = [m("lat", mez, k) for k in ("p50", "p99", "p999")]
        for s in (s for s in servers if s.name in R["lat"]):
            a = [m("lat", s.name, k) for k in ("p50", "p99", "p999")]
            rat = "" if s.name == mez else " ".join(
                "%5s" % fr(ratio(x, y)) for x, y in zip(b, a))
            w("  %-13s %9s %9s %9s   %s" % (s.name, fmt(a[0]), fmt(a[1]),
                                            fmt(a[2]), rat))
        w("")

    if "mem" in R:
        w("== memory per idle routed connection: PSS summed over all of a "
          "server's processes")
        w("   a fresh server each run: open %d connections (handshake "
          "done, routed, no request), measure, open %d more, measure, "
          "divide" % (IDLE, IDLE))
        w("  %-13s %12s %14s %14s   %s" % (
            "server", "KiB/conn", "PSS at end", "routed/open",
            "mezited/this"))
        for s in (s for s in servers if s.name in R["mem"]):
            k = m("mem", s.name, "kb")
            rat = "" if s.name == mez else fr(ratio(m("mem", mez, "kb"), k))
            pss = m("mem", s.name, "pss2")
            rt, op = m("mem", s.name, "routed"), m("mem", s.name, "open")
            w("  %-13s %12s %10s KiB %14s   %s" % (
                s.name, fmt(k, 2), "-" if pss is None else "%.0f" % pss,
                "-" if rt is None else "%.0f/%.0f" % (rt, op), rat))
        ref = [r.get("refused", 0) for r in R["mem"].get(mez, [])]
        if any(ref):
            w("   mezited closed %s of each run's %d sessions with \"no "
              "https worker is running\"" % (
                  "/".join(str(x) for x in ref), 2 * IDLE))
            w("   (a full handoff queue to the worker during the burst); "
              "KiB/conn is per routed session")
        w("")

    w("== where it goes: per unit, by process (medians)")
    for meas, unit in (("conn", "us/conn"), ("resume", "us/conn"),
                       ("mp", "us/conn"), ("down", "us/MB"),
                       ("up", "us/MB"), ("h2", "us/req"),
                       ("mem", "KiB/idle conn")):
        for s in ("mezited", KM, MP, "haproxy>h2o", HP2, "haproxy>sink"):
            if s not in R.get(meas, {}):
                continue
            roles = sorted({k for r in R[meas][s] for k in r
                            if k.startswith("role:")})
            parts = ["%s %s" % (k[5:], fmt(m(meas, s, k))) for k in roles]
            w("  %-5s %-13s %s  (%s)" % (meas, s, ", ".join(parts), unit))
    if "conn" in R:
        w("  session tickets sent per new connection: " + ", ".join(
            "%s %s" % (k, fmt(m("conn", k, "tickets"), 1))
            for k in R["conn"]))
    w("")

    # Targets: reported, never enforced.
    hp, h2o = "haproxy>h2o", "h2o"
    rows = []

    def target(what, a, b, unit, le, factor=1.0):
        if a is None or b is None:
            ok = None
        else:
            ok = a <= b * factor if le else a >= b * factor
        rows.append((what, a, b, unit, ok))

    target("CPU per new connection <= HAProxy>h2o", m("conn", mez, "cpu"),
           m("conn", hp, "cpu"), "us", True)
    # What the master's round trip to the ca process adds to a handshake,
    # the signature itself being the same work in either process.
    target("CPU per new conn <= 1.1 x keys in master", m("conn", mez, "cpu"),
           m("conn", KM, "cpu"), "us", True, 1.1)
    # What resumption saves: no certificate, no signature.
    target("resumed CPU per conn <= 0.3 x full", m("resume", mez, "cpu"),
           m("conn", mez, "cpu"), "us", True, 0.3)
    # Two loops a side; left out with a build that cannot fork masters.
    if any(s.name == MP for s in servers):
        target("prefork 2: conn/s >= 1.2 x HAProxy nbthread 2",
               m("mp", MP, "rate"), m("mp", HP2, "rate"), "conn/s",
               False, 1.2)
        target("prefork 2: CPU/conn <= 0.8 x HAProxy nbthr. 2",
               m("mp", MP, "cpu"), m("mp", HP2, "cpu"), "us", True, 0.8)
    for meas, d in (("down", "download"), ("up", "upload")):
        target("CPU per MB, %s <= HAProxy>h2o" % d, m(meas, mez, "cpu"),
               m(meas, hp, "cpu"), "us/MB", True)
        target("MB/s, %s >= HAProxy>h2o" % d, m(meas, mez, "rate"),
               m(meas, hp, "rate"), "MB/s", False)
    target("round trip p99 <= HAProxy>h2o", m("lat", mez, "p99"),
           m("lat", hp, "p99"), "us", True)
    target("memory per idle routed conn <= HAProxy>h2o",
           m("mem", mez, "kb"), m("mem", hp, "kb"), "KiB", True)
    target("HTTP/2 CPU per request <= HAProxy>h2o", m("h2", mez, "cpu"),
           m("h2", hp, "cpu"), "us", True)
    target("HTTP/2 req/s >= 0.9 x h2o direct", m("h2", mez, "rate"),
           m("h2", h2o, "rate"), "req/s", False, 0.9)

    w("== targets (reported, not enforced)")
    w("  %-44s %9s %9s %-6s %6s  %s" % ("target", "mezited", "peer", "",
                                        "ratio", "verdict"))
    met = 0
    for what, a, b, unit, ok in rows:
        met += bool(ok)
        w("  %-44s %9s %9s %-6s %6s  %s" % (
            what, fmt(a), fmt(b), unit, fr(ratio(a, b)),
            "not measured" if ok is None else "met" if ok else "MISSED"))
    w("  %d of %d targets met" % (met, sum(r[4] is not None for r in rows)))
    if skipped:
        w("  not measured, for lack of time: " + ", ".join(skipped))
    if prof:
        w("")
        w("== profile of mezited (BENCH_PROFILE=1): perf cpu-clock samples, "
          "one pass of each load, top symbols")
        for meas, per in prof.items():
            for role, lines in per.items():
                w("  -- %s, %s" % (meas, role))
                for l in lines:
                    w("    " + re.sub(r"\s{2,}", "  ", l))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    dest = os.environ.get("BENCH_OUT")
    if dest:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        with open(dest, "w") as f:
            f.write(text)
        with open(dest + ".json", "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
