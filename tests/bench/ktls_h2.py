#!/usr/bin/python3
"""
HTTP/2 requests through mezited with the session in the kernel (kTLS),
beside h2o terminating TLS itself and mezited relaying, in one run.

Run by tests/bench/run-ktls.sh inside a VM that boots a kernel with TLS
support (this machine's kernel may have none), as root.  Prints one table;
with OUT, also writes it to OUT.txt and the figures to OUT.json (the VM's
console is no place to read them back from).

usage: ktls_h2.py TOP [OUT]
"""

import json
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

TOP = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else None
MEZITED = os.environ.get("MEZITED", os.path.join(TOP, "master", "mezited"))
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
RUNS = max(3, int(os.environ.get("BENCH_RUNS", "3" if QUICK else "5")))
REQS = int(os.environ.get("BENCH_KTLS_H2_REQS", "5000" if QUICK else "30000"))
CONNS = int(os.environ.get("BENCH_H2_CONNS", "4"))
STREAMS = int(os.environ.get("BENCH_H2_STREAMS", "32"))
SUITE = "TLS_AES_128_GCM_SHA256"
HZ = os.sysconf("SC_CLK_TCK")


def log(msg):
    sys.stderr.write("ktls-h2: %s\n" % msg)
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu_s(root):
    """user+sys seconds of root and every process below it."""
    kids = {}
    ticks = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        f = st[st.rindex(")") + 2:].split()
        kids.setdefault(int(f[1]), []).append(int(p))
        ticks[int(p)] = int(f[11]) + int(f[12])
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += ticks.get(p, 0)
        todo.extend(kids.get(p, []))
    return total / HZ


class Server:
    def __init__(self, name, cmd, port, what):
        self.name, self.cmd, self.port, self.what = name, cmd, port, what
        self.proc = None

    def start(self, logdir):
        self.logf = open(os.path.join(logdir, self.name + ".log"), "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def get(port, path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n"
                       "Connection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait_ready(srv):
    last = None
    for _ in range(300):
        if srv.proc.poll() is not None:
            last = "exited with status %d" % srv.proc.returncode
            break
        try:
            st, body = get(srv.port, "/1k.bin")
            if st == 200 and len(body) == 1024:
                return
            last = "HTTP %d" % st
        except (OSError, ValueError, IndexError) as e:
            last = repr(e)
        time.sleep(0.1)
    raise SystemExit("ktls-h2: %s did not come up (%s); its log:\n%s" % (
        srv.name, last, open(srv.logf.name).read()[-2000:]))


def h2load(srv):
    cmd = ["h2load", "-n", str(REQS), "-c", str(CONNS), "-m", str(STREAMS),
           "-t", "1", "--tls13-ciphers=" + SUITE,
           "https://127.0.0.1:%d/1k.bin" % srv.port]
    c0 = tree_cpu_s(srv.proc.pid)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    cpu = tree_cpu_s(srv.proc.pid) - c0
    out = r.stdout
    fin = re.search(r"finished in [\d.]+(?:s|ms), ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, "
                   r"(\d+) succeeded", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    if r.returncode != 0 or not fin or not ok or int(ok.group(1)) < REQS or \
            not proto or proto.group(1) != "h2":
        raise SystemExit("ktls-h2: h2load against %s failed:\n%s%s" % (
            srv.name, out[-1500:], r.stderr[-500:]))
    return {"rate": float(fin.group(1)), "cpu": cpu * 1e6 / REQS}


def mezited_conf(d, name, port, cert, key, htdocs, ktls):
    empty, www = os.path.join(d, name, "empty"), os.path.join(d, name, "www")
    os.makedirs(empty)
    os.makedirs(os.path.join(www, "htdocs"))
    for f in os.listdir(htdocs):
        os.link(os.path.join(htdocs, f), os.path.join(www, "htdocs", f))
    for x in (os.path.join(d, name), empty, www, os.path.join(www, "htdocs")):
        os.chmod(x, 0o755)
    conf = os.path.join(d, name, "mezited.conf")
    with open(conf, "w") as f:
        f.write("""\
# Generated by tests/bench/ktls_h2.py.
listen on 127.0.0.1 port %d
tls keypair "bench" {
	certificate "%s"
	key "%s"
}
tls protocols "tlsv1.3"
ktls %s
# Every client comes from 127.0.0.1, faster than any one would.
max connections per source 1000000
max connection rate 1000000 per source
control socket "%s"
master {
	user "nobody"
	chroot "%s"
}
ca {
	user "nobody"
	chroot "%s"
}
worker https {
	prefork 1
	user "nobody"
	chroot "%s"
	root "/htdocs"
}
worker auth {
	prefork 0
}
worker tunnel {
	prefork 0
}
worker ssh {
	prefork 0
}
""" % (port, cert, key, "yes" if ktls else "no",
            os.path.join(d, name, "ctl.sock"), empty, empty, www))
    r = subprocess.run([MEZITED, "-n", "-f", conf], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit("ktls-h2: mezited refused %s:\n%s" % (conf,
                                                              r.stderr))
    return [MEZITED, "-d", "-f", conf]


def main():
    d = tempfile.mkdtemp(prefix="mezite-ktls-h2.")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   capture_output=True)
    os.chmod(key, 0o600)
    htdocs = os.path.join(d, "htdocs")
    os.makedirs(htdocs)
    with open(os.path.join(htdocs, "1k.bin"), "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(os.path.join(htdocs, "1k.bin"), 0o644)
    os.chmod(htdocs, 0o755)

    ports = []
    while len(ports) < 3:
        p = free_port()
        if p not in ports:
            ports.append(p)
    h2o_conf = os.path.join(d, "h2o.conf")
    with open(h2o_conf, "w") as f:
        f.write("""\
# Generated by tests/bench/ktls_h2.py.
listen:
  host: 127.0.0.1
  port: %d
  ssl:
    certificate-file: %s
    key-file: %s
    minimum-version: TLSv1.3
    ocsp-update-interval: 0
num-threads: 1
user: nobody
hosts:
  default:
    paths:
      /:
        file.dir: %s
""" % (ports[2], cert, key, htdocs))
    servers = [
        Server("mezited-ktls", mezited_conf(d, "ktls", ports[0], cert, key,
                                            htdocs, True), ports[0],
               "mezited, kTLS: the https worker (libh2o) owns the TCP "
               "socket; the kernel does the records"),
        Server("mezited-relay", mezited_conf(d, "relay", ports[1], cert,
                                             key, htdocs, False), ports[1],
               "mezited, relay: master (TLS) -> socketpair -> https worker"),
        Server("h2o", ["h2o", "-c", h2o_conf], ports[2],
               "h2o 2.2.5 terminating TLS itself (no hop)"),
    ]
    res = {s.name: [] for s in servers}
    try:
        for s in servers:
            s.start(d)
        for s in servers:
            wait_ready(s)
        st, body = get(ports[0], "/api/v1/whoami")
        mode = json.loads(body).get("mode") if st == 200 else None
        if mode != "ktls":
            raise SystemExit("ktls-h2: mezited-ktls hands off in %r mode"
                             % mode)
        for s in servers:           # warm up
            h2load(s)
        for i in range(RUNS):
            order = servers[i % 3:] + servers[:i % 3]
            for s in order:
                res[s.name].append(h2load(s))
                if s.proc.poll() is not None:
                    raise SystemExit("ktls-h2: %s died" % s.name)
    finally:
        for s in servers:
            s.stop()

    med = {n: {k: statistics.median(r[k] for r in runs)
               for k in ("rate", "cpu")} for n, runs in res.items()}
    lines = []
    w = lines.append
    w("== HTTP/2 requests with the session in the kernel: h2load, %d "
      "connections x %d streams, GET /1k.bin, %d requests a run" % (
          CONNS, STREAMS, REQS))
    w("   in a VM under emulation (TCG): absolute figures mean nothing, "
      "same-run ratios are what counts; median of %d runs" % RUNS)
    w("  %-14s %12s %14s   %s" % ("server", "server CPU", "rate",
                                  "mezited-ktls/this: CPU  rate"))
    base = med["mezited-ktls"]
    for s in servers:
        m = med[s.name]
        rat = "" if s.name == "mezited-ktls" else "%20.2fx %5.2fx" % (
            base["cpu"] / m["cpu"], base["rate"] / m["rate"])
        w("  %-14s %8.1f us/req %8.0f req/s %s" % (s.name, m["cpu"],
                                                   m["rate"], rat))
    for s in servers:
        w("  %-14s %s" % (s.name, s.what))
    # The emulated CPU's speed drifts over a run: compare each round's
    # two figures, taken side by side, and keep the median of those.
    pairs = [k["rate"] / h["rate"] for k, h in zip(res["mezited-ktls"],
                                                    res["h2o"])]
    ratio = statistics.median(pairs)
    w("== target with kTLS (reported, not enforced)")
    w("   the ratio is the median of each run's mezited-ktls/h2o: %s" %
      ", ".join("%.2f" % x for x in pairs))
    w("  HTTP/2 req/s >= 0.9 x h2o direct: mezited-ktls %.0f, h2o %.0f, "
      "%.2fx  %s" % (base["rate"], med["h2o"]["rate"], ratio,
                     "met" if ratio >= 0.9 else "MISSED"))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if OUT:
        with open(OUT + ".json", "w") as f:
            json.dump({"runs": res, "median": med, "pairs": pairs,
                       "ratio": ratio}, f, indent=1)
        with open(OUT + ".txt", "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
