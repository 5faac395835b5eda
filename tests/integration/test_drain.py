"""
SIGTERM drains: established sessions finish, new ones are refused, and
the whole process tree exits cleanly.
"""

import signal
import socket
import time

import pytest

from conftest import proc_pgrp_members, wait_for
from test_faults import finish_download, start_slow_download


def sigterm(d):
    mark = d.log_size()
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log(r"draining for up to 10s", start=mark)
    return mark


def assert_clean_exit(d, mark):
    rc = d.proc.wait(timeout=15)
    assert rc == 0, "supervisor exited %d" % rc
    wait_for(lambda: not proc_pgrp_members(d.pgid), 5,
             what="no process left in the group")
    assert "terminated" in d.log()[mark:]
    assert "did not drain in time" not in d.log()[mark:]


@pytest.mark.parametrize("flag", ["--http2", "--http1.1"],
                         ids=["h2", "http1.1"])
def test_sigterm_lets_running_download_complete(fresh_daemon, tmp_path,
                                                flag):
    d = fresh_daemon
    out = str(tmp_path / "slow.bin")
    p = start_slow_download(d, out, [flag])
    try:
        mark = sigterm(d)
        finish_download(p, out, d.files["slow.bin"])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert_clean_exit(d, mark)


def test_sigterm_refuses_new_connections_while_draining(fresh_daemon,
                                                        tmp_path):
    d = fresh_daemon
    out = str(tmp_path / "slow.bin")
    p = start_slow_download(d, out, ["--http1.1"])
    accepted = []
    try:
        t0 = time.monotonic()
        mark = sigterm(d)

        def refused():
            try:
                s = socket.create_connection(("127.0.0.1", d.port), 1)
            except ConnectionRefusedError:
                return True
            accepted.append(time.monotonic() - t0)
            s.close()
            return False
        wait_for(refused, 3, interval=0.1,
                 what="new connections to be refused (connects kept "
                 "succeeding)")
        # The daemon was still draining: the download still ran.
        assert p.poll() is None, \
            "download ended before the port closed; test proves nothing"
        finish_download(p, out, d.files["slow.bin"])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert_clean_exit(d, mark)
