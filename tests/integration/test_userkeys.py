"""
Users' SSH public keys through mezctl: user key add, list and del with
keys ssh-keygen made, the fingerprints it prints, the lines refused and
where, and who may do what.
"""

import os
import re
import subprocess

import pytest

from conftest import MEZCTL, run
from test_auth import add_user, ok


def keygen(d, kind, bits=None, comment=""):
    """A new key: (its authorized_keys line, type, fingerprint as
    ssh-keygen -l prints it)."""
    path = os.path.join(d, "k%d" % len(os.listdir(d)))
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment,
           "-f", path]
    if bits is not None:
        cmd += ["-b", str(bits)]
    run(cmd)
    with open(path + ".pub") as f:
        line = f.read().strip()
    out = run(["ssh-keygen", "-l", "-E", "sha256", "-f",
               path + ".pub"]).stdout
    fp = re.search(r"(SHA256:[A-Za-z0-9+/]{43})", out).group(1)
    return line, line.split()[0], fp


@pytest.fixture
def keydir(tmp_path):
    d = tmp_path / "made"
    d.mkdir()
    return str(d)


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def keys_of(daemon, user):
    return daemon.mezctl_json("user", "key", "list", user)


def test_add_list_every_type(daemon, keydir, tmp_path):
    add_user(daemon, "kira")
    made = [keygen(keydir, "ed25519", comment="kira@laptop"),
            keygen(keydir, "ecdsa", 256),
            keygen(keydir, "ecdsa", 384, comment="two words"),
            keygen(keydir, "ecdsa", 521),
            keygen(keydir, "rsa", 2048, comment="rsa")]
    f = write(tmp_path, "keys", ["# kira's keys", ""] +
              [m[0] for m in made] + ["   ", "  # the end"])
    r = ok(daemon.mezctl("user", "key", "add", "kira", f))
    for _, _, fp in made:
        assert "user kira: key %s added" % fp in r.stdout, r.stdout

    got = keys_of(daemon, "kira")
    assert [(k["type"], k["fingerprint"]) for k in got] == \
        [(t, fp) for _, t, fp in made]
    assert [k["comment"] for k in got] == \
        ["kira@laptop", "", "two words", "", "rsa"]
    assert all(k["user"] == "kira" and k["added"] > 0 for k in got)

    # The table: a header, and a row a key, with its fingerprint.
    r = ok(daemon.mezctl("user", "key", "list", "kira"))
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["USER", "TYPE", "FINGERPRINT", "ADDED"]
    assert len(lines) == 1 + len(made)
    for (_, t, fp), ln in zip(made, lines[1:]):
        assert ln.split()[:3] == ["kira", t, fp], ln

    # Every user's, kira's among them.
    every = daemon.mezctl_json("user", "key", "list")
    assert [k for k in every if k["user"] == "kira"] == got


def test_add_from_stdin(daemon, keydir):
    add_user(daemon, "lars")
    line, t, fp = keygen(keydir, "ed25519")
    r = subprocess.run([MEZCTL, "-s", daemon.sock, "user", "key", "add",
                        "lars", "-"], input=line + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert fp in r.stdout
    assert [k["fingerprint"] for k in keys_of(daemon, "lars")] == [fp]


def test_bad_lines_named_by_file_and_line(daemon, keydir, tmp_path):
    add_user(daemon, "mona")
    good, _, fp = keygen(keydir, "ed25519")
    short, _, _ = keygen(keydir, "rsa", 1024)
    blob = good.split()[1]
    f = write(tmp_path, "mixed", [
        "# a comment",
        short,                                          # 2
        'from="10.0.0.1" ' + good,                      # 3
        "ssh-dss " + blob,                              # 4
        "sk-ssh-ed25519@openssh.com " + blob,           # 5
        "ssh-ed25519-cert-v01@openssh.com " + blob,     # 6
        "ssh-rsa " + blob,                              # 7
        "ssh-ed25519 " + blob[:-4],                     # 8
        "hello",                                        # 9
        good,                                           # 10
        good,                                           # 11
    ])
    r = daemon.mezctl("user", "key", "add", "mona", f)
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr
    assert re.search(r"%s:2: .*1024 bits is too short" % re.escape(f), err)
    assert re.search(r"%s:3: options before the key type are not "
                     r"accepted" % re.escape(f), err)
    assert re.search(r"%s:4: unsupported key type ssh-dss" % re.escape(f),
                     err)
    assert re.search(r"%s:5: security keys .* not supported yet"
                     % re.escape(f), err)
    assert re.search(r"%s:6: certificates .* not supported yet"
                     % re.escape(f), err)
    assert re.search(r"%s:7: the key inside is not of type ssh-rsa"
                     % re.escape(f), err)
    assert re.search(r"%s:8: " % re.escape(f), err)
    assert re.search(r"%s:9: not a public key" % re.escape(f), err)
    assert re.search(r"%s:11: user mona has key %s already"
                     % (re.escape(f), re.escape(fp)), err)
    assert ":1:" not in err and ":10:" not in err, err
    # The good one went in, once.
    assert "user mona: key %s added" % fp in r.stdout
    assert [k["fingerprint"] for k in keys_of(daemon, "mona")] == [fp]


def test_del_by_fingerprint_or_key(daemon, keydir, tmp_path):
    add_user(daemon, "nils")
    a, _, fa = keygen(keydir, "ed25519")
    b, _, fb = keygen(keydir, "ecdsa", 256, comment="b")
    ok(daemon.mezctl("user", "key", "add", "nils",
                     write(tmp_path, "k", [a, b])))
    ok(daemon.mezctl("user", "key", "del", "nils", fa))
    assert [k["fingerprint"] for k in keys_of(daemon, "nils")] == [fb]
    r = daemon.mezctl("user", "key", "del", "nils", fa)
    assert r.returncode == 1 and "user nils has no key %s" % fa in r.stderr
    ok(daemon.mezctl("user", "key", "del", "nils", b))
    assert keys_of(daemon, "nils") == []
    r = daemon.mezctl("user", "key", "del", "nils", "SHA256:short")
    assert r.returncode == 1 and "invalid fingerprint" in r.stderr

    events = daemon.mezctl_json("show", "audit", "limit", "1000")
    mine = [(e["type"], e["detail"]) for e in events if e["name"] == "nils"]
    assert ("user.key.add", "ssh-ed25519 %s, by uid 0" % fa) in mine, mine
    assert ("user.key.del", "%s, by uid 0" % fa) in mine, mine
    assert ("user.key.del", "%s, by uid 0" % fb) in mine, mine


def test_keys_go_with_their_user(daemon, keydir, tmp_path):
    add_user(daemon, "olga")
    line, _, fp = keygen(keydir, "ed25519")
    ok(daemon.mezctl("user", "key", "add", "olga",
                     write(tmp_path, "k", [line])))
    ok(daemon.mezctl("user", "del", "olga"))
    assert not [k for k in daemon.mezctl_json("user", "key", "list")
                if k["user"] == "olga"]
    r = daemon.mezctl("user", "key", "list", "olga")
    assert r.returncode == 1 and "no such user: olga" in r.stderr
    add_user(daemon, "olga")
    assert keys_of(daemon, "olga") == []


def test_no_such_user_and_no_key(daemon, keydir, tmp_path):
    line, _, _ = keygen(keydir, "ed25519")
    r = daemon.mezctl("user", "key", "add", "nobody-here",
                      write(tmp_path, "k", [line]))
    assert r.returncode == 1 and "no such user: nobody-here" in r.stderr
    add_user(daemon, "pia")
    r = daemon.mezctl("user", "key", "add", "pia",
                      write(tmp_path, "empty", ["# nothing", ""]))
    assert r.returncode == 1 and "no key in it" in r.stderr
    r = daemon.mezctl("user", "key", "add", "pia",
                      str(tmp_path / "missing"))
    assert r.returncode == 1 and "missing" in r.stderr


def test_at_most_32_keys(daemon, keydir, tmp_path):
    add_user(daemon, "quinn")
    lines = [keygen(keydir, "ed25519")[0] for _ in range(33)]
    ok(daemon.mezctl("user", "key", "add", "quinn",
                     write(tmp_path, "k32", lines[:32])))
    r = daemon.mezctl("user", "key", "add", "quinn",
                      write(tmp_path, "k33", lines[32:]))
    assert r.returncode == 1
    assert "user quinn has 32 keys already" in r.stderr, r.stderr
    assert len(keys_of(daemon, "quinn")) == 32
    # A file of more than 32 keys says so where it goes over.
    r = daemon.mezctl("user", "key", "add", "quinn",
                      write(tmp_path, "k33all", lines))
    assert r.returncode == 1
    assert "k33all:33: more than 32 keys" in r.stderr, r.stderr


def test_control_group_may_list_keys_only(daemon, keydir, tmp_path):
    add_user(daemon, "rhea")
    line, _, fp = keygen(keydir, "ed25519")
    ok(daemon.mezctl("user", "key", "add", "rhea",
                     write(tmp_path, "k", [line])))
    r = daemon.mezctl("user", "key", "list", "rhea", user="nobody")
    assert r.returncode == 0, r.stderr
    assert fp in r.stdout
    r = subprocess.run(["runuser", "-u", "nobody", "--",
                        daemon.mezctl_for_others(), "-s", daemon.sock,
                        "user", "key", "add", "rhea", "-"],
                       input=keygen(keydir, "ed25519")[0] + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stdout
    assert "permission denied: only root" in r.stderr, r.stderr
    r = daemon.mezctl("user", "key", "del", "rhea", fp, user="nobody")
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stderr
    assert [k["fingerprint"] for k in keys_of(daemon, "rhea")] == [fp]
