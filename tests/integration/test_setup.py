"""
How mezited is set up and run: privilege drop, a non-root run, make demo,
make install and the sample configuration.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import (MEZITED, TOP, free_port, get_json, healthz, run,
                      wait_for)


def _proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f
                    if ":\t" in line)


def test_children_drop_to_their_user_and_chroot(daemon):
    """As root every child runs as its configured user, in its chroot,
    with no supplementary groups; the supervisor stays root."""
    nobody = pwd.getpwnam("nobody")
    for name, root in (("master", daemon.empty), ("https.0", daemon.www),
                       ("https.1", daemon.www)):
        pid = daemon.worker_pid(name)
        st = _proc_status(pid)
        assert st["Uid"].split() == [str(nobody.pw_uid)] * 4, (name, st)
        assert st["Gid"].split() == [str(nobody.pw_gid)] * 4, (name, st)
        assert st["Groups"].strip() in ("", str(nobody.pw_gid)), st
        assert os.readlink("/proc/%d/root" % pid) == root, name
    assert _proc_status(daemon.pid)["Uid"].split()[0] == "0"


def _stack(pid):
    with open("/proc/%d/maps" % pid) as f:
        return [l for l in f if "[stack]" in l][0].split()[0]


def test_children_are_reexecuted_with_their_role(daemon):
    """Each child is a fresh exec of mezited, titled with its role, so
    that it gets an address layout of its own rather than a fork's copy
    of the supervisor's."""
    with open("/proc/sys/kernel/randomize_va_space") as f:
        aslr = f.read().strip() != "0"
    for name in ("master", "https.0", "https.1"):
        pid = daemon.worker_pid(name)
        assert os.readlink("/proc/%d/exe" % pid) == \
            os.path.realpath(MEZITED)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            title = f.read().replace(b"\0", b" ").decode()
        assert name.split(".")[0] in title, title
        if aslr:
            assert _stack(pid) != _stack(daemon.pid), name


def _nonroot_tree(pki):
    """Files a non-root mezited can use: its own copy of the key, and of
    mezited itself, since the tree's may be where only its owner can
    reach it (a home directory is 0700)."""
    d = tempfile.mkdtemp(prefix="mzu", dir="/tmp")
    nobody = pwd.getpwnam("nobody")
    for src, name in ((pki.cert, "cert.pem"), (pki.key, "key.pem"),
                      (MEZITED, "mezited")):
        shutil.copyfile(src, os.path.join(d, name))
    os.chmod(os.path.join(d, "key.pem"), 0o600)
    os.chmod(os.path.join(d, "mezited"), 0o755)
    for name in os.listdir(d) + [""]:
        os.chown(os.path.join(d, name), nobody.pw_uid, nobody.pw_gid)
    os.chmod(d, 0o755)
    return d, nobody


def test_runs_without_root(pki):
    """Without root the process split stays; users and chroots are
    skipped with one warning."""
    d, nobody = _nonroot_tree(pki)
    port = free_port()
    conf = os.path.join(d, "mezited.conf")
    with open(conf, "w") as f:
        f.write('listen on 127.0.0.1 port %d\n'
                'tls keypair "default" {\n\tcertificate "%s/cert.pem"\n'
                '\tkey "%s/key.pem"\n}\ncontrol socket "%s/ctl.sock"\n'
                'worker https {\n\tstatus allow 127.0.0.1\n}\n'
                % (port, d, d, d))
    os.chown(conf, nobody.pw_uid, nobody.pw_gid)
    log = open(os.path.join(d, "log"), "wb")
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup",
                          "--clear-groups", os.path.join(d, "mezited"),
                          "-d", "-f", conf],
                         stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        wait_for(lambda: healthz(port, 2), 10, interval=0.1,
                 what="/healthz")
        # prefork auto: a master per online CPU, each in the status
        masters = min(os.sysconf("SC_NPROCESSORS_ONLN"), 64)
        want = sorted(["https", "https", "tunnel"] + ["master"] * masters)
        st = wait_for(lambda: (lambda s: s if sorted(
            x["type"] for x in s["processes"]) == want else None)(
            get_json(port, "/api/v1/status")), 10, interval=0.1,
            what="%d masters in the status" % masters)
        for x in st["processes"]:
            assert _proc_status(x["pid"])["Uid"].split()[0] == \
                str(nobody.pw_uid)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        log.close()
        with open(os.path.join(d, "log")) as f:
            text = f.read()
        shutil.rmtree(d, ignore_errors=True)
    assert p.returncode == 0, text
    assert text.count("not running as root") == 1, text


@pytest.mark.build
def test_make_demo_serves(tmp_path):
    """make demo's script starts mezited in the foreground with its own
    certificate and state directory, and says what to try."""
    port = free_port()
    env = dict(os.environ, DEMO_PORT=str(port))
    out = open(tmp_path / "demo.log", "wb")
    p = subprocess.Popen(["sh", os.path.join(TOP, "scripts", "demo.sh")],
                         env=env, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        wait_for(lambda: healthz(port, 2), 15, interval=0.1,
                 what="the demo's /healthz")
        st = get_json(port, "/api/v1/status")
        assert st["connections"]["total"] >= 1
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=20)
        out.close()
    text = (tmp_path / "demo.log").read_text()
    assert "curl -k https://127.0.0.1:%d/" % port in text
    assert os.path.exists(os.path.join(TOP, "demo", "state"))
    assert p.returncode == 0, text


@pytest.mark.build
def test_make_install(tmp_path):
    """make install puts the programs, man pages and sample config under
    DESTDIR and PREFIX."""
    dest = tmp_path / "root"
    run(["make", "-s", "-C", TOP, "install", "DESTDIR=%s" % dest,
         "PREFIX=/usr/local"], timeout=300)
    for f in ("usr/local/sbin/mezited", "usr/local/sbin/mezctl",
              "usr/local/sbin/mezd", "usr/local/bin/msh",
              "usr/local/share/man/man8/mezited.8",
              "usr/local/share/man/man8/mezctl.8",
              "usr/local/share/man/man8/mezd.8",
              "usr/local/share/man/man1/msh.1",
              "usr/local/share/man/man5/mezited.conf.5",
              "etc/mezite/mezited.conf", "etc/mezd.conf"):
        assert (dest / f).exists(), f
    for f in ("sbin/mezited", "sbin/mezctl", "sbin/mezd", "bin/msh"):
        assert os.access(dest / "usr/local" / f, os.X_OK), f


@pytest.mark.heavy
@pytest.mark.build
def test_make_with_the_builders_own_cflags(tmp_path):
    """make CFLAGS=-O0 builds every program from a clean tree: the
    builder's flags come after ours and replace the optimisation, not
    the include paths and defines the libraries need."""
    src = tmp_path / "src"
    files = subprocess.run(["git", "-C", TOP, "ls-files", "-z"],
                           capture_output=True, check=True).stdout
    for f in files.decode().split("\0"):
        if f:
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(TOP, f), src / f)
    progs = ["master/mezited", "mezctl/mezctl", "mezd/mezd", "msh/msh"]
    r = run(["make", "-s", "-j2", "-C", str(src), "CFLAGS=-O0 -g"] + progs,
            check=False, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for p in progs:
        assert os.access(src / p, os.X_OK), p


def test_sample_config_parses(pki, tmp_path):
    """etc/mezited.conf is valid: with its certificate paths pointed at
    real files, mezited -n accepts it."""
    with open(os.path.join(TOP, "etc", "mezited.conf")) as f:
        text = f.read()
    paths = set(re.findall(r'"(/etc/mezite/[^"]+\.(?:pem|key))"', text))
    assert paths, "the sample names no certificate files"
    for p in paths:
        src = pki.key if p.endswith(".key") else pki.cert
        dst = tmp_path / os.path.basename(p)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o600)
        text = text.replace('"%s"' % p, '"%s"' % dst)
    # the sample's users and chroots need not exist on this machine
    text = re.sub(r'user "[^"]+"', 'user "nobody"', text)
    text = re.sub(r'chroot "[^"]+"', 'chroot "/"', text)
    conf = tmp_path / "mezited.conf"
    conf.write_text(text)
    r = run([MEZITED, "-n", "-f", str(conf)], check=False)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stderr
