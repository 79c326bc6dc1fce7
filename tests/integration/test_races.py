"""Races (issue 14): commands that meet on one name, one network or one container at the same moment.

Each case starts several real CLI processes at once and checks that exactly the documented outcome
happens - one winner, the others a one-line error with exit 125 - with no traceback anywhere, and that
nothing is left once the survivors are removed (the per-test leak check: mounts, cgroups, links,
processes; and the root's own state, names and leases here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pexpect
import pytest

from helpers import CLI, ps, wait_for

pytestmark = pytest.mark.root

N = 6


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def popen(*args: str, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen[str]], timeout: float = 90) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def no_traceback(results: list[tuple[int, str, str]]) -> None:
    for rc, stdout, stderr in results:
        assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
        assert rc in (0, 125), (rc, stderr)
        if rc == 125:
            assert len(stderr.strip().splitlines()) == 1, stderr


def assert_root_empty(rroot: Path) -> None:
    for sub in ("containers", "names"):
        folder = rroot / sub
        assert not folder.exists() or os.listdir(folder) == [], (sub, os.listdir(folder))
    networks = rroot / "networks"
    for record in networks.glob("*.json") if networks.exists() else []:
        data = json.loads(record.read_text())
        assert data.get("leases", {}) == {}, data


@pytest.mark.parametrize("mode", ["detached", "foreground"])
def test_concurrent_starts_of_one_name_have_one_winner(cli, rroot: Path, busybox_rootfs: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    if mode == "detached":
        procs = [popen("run", "--detach", "--name", "same", "--rootfs", str(busybox_rootfs), "--", "sleep", "1000")
                 for _ in range(N)]
        results = finish(procs)
    else:
        # The winner runs ``cat`` until its stdin closes: close it once every loser has answered.
        procs = [popen("run", "-i", "--rm", "--name", "same", "--rootfs", str(busybox_rootfs), "--", "cat",
                       stdin=subprocess.PIPE) for _ in range(N)]
        wait_for(lambda: sum(p.poll() is not None for p in procs) >= N - 1, timeout=60, what="the losers")
        assert "same" in ps(cli)  # the winner still runs
        results = []
        for p in procs:
            stdout, stderr = p.communicate(input="", timeout=60)  # closes the winner's stdin
            results.append((p.returncode, stdout, stderr))
    no_traceback(results)
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    for rc, _out, err in results:
        if rc != 0:
            assert "is already in use" in err, err
    if mode == "detached":
        assert list(ps(cli)) == ["same"]
        cli("rm", "-f", "same", check_rc=0)
    assert_root_empty(rroot)


def test_concurrent_starts_on_one_network_get_distinct_addresses(cli, rroot: Path, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    links_before = set(os.listdir("/sys/class/net"))
    procs = [popen("run", "--detach", "--name", f"n{i}", "--rootfs", str(busybox_rootfs), "--network", "bridge",
                   "--", "sleep", "1000") for i in range(N)]
    results = finish(procs)
    try:
        no_traceback(results)
        assert all(rc == 0 for rc, _, _ in results), results
        info = json.loads(cli("network", "inspect", "bridge", check_rc=0).stdout)
        addresses = [c["address"] for c in info["containers"]]
        assert len(addresses) == N and len(set(addresses)) == N, addresses
        bridges = {n for n in set(os.listdir("/sys/class/net")) - links_before if n.startswith("rtn-")}
        assert bridges == {info["bridge"]}, bridges
    finally:
        for i in range(N):
            cli("rm", "-f", f"n{i}")
        cli("network", "rm", "bridge")
    assert_root_empty(rroot)


@pytest.mark.parametrize("running", [True, False], ids=["running", "exited"])
def test_concurrent_rm_of_one_container(cli, rroot: Path, busybox_rootfs: Path, running: bool) -> None:  # type: ignore[no-untyped-def]
    command = ("sleep", "1000") if running else ("true",)
    cli("run", "--detach", "--name", "gone", "--rootfs", str(busybox_rootfs), "--network", "bridge",
        "-p", f"127.0.0.1:{free_port()}:80", "--", *command, check_rc=0)
    if not running:
        wait_for(lambda: ps(cli)["gone"]["status"] == "exited", what="the container to end")
    results = finish([popen("rm", "-f", "gone") for _ in range(N)])
    no_traceback(results)
    assert any(rc == 0 for rc, _, _ in results), results
    for rc, _out, err in results:
        if rc != 0:
            assert "no such container" in err, err
    assert ps(cli) == {}
    cli("network", "rm", "bridge")
    assert_root_empty(rroot)


@pytest.mark.parametrize("mode", ["detached", "foreground"])
@pytest.mark.parametrize("delay_ms", [0, 30, 100])
def test_rm_f_during_a_start_leaves_nothing(cli, rroot: Path, busybox_rootfs: Path, mode: str, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    flags = ("--detach",) if mode == "detached" else ("--rm",)
    start = popen("run", *flags, "--name", "racer", "--rootfs", str(busybox_rootfs), "--network", "bridge",
                  "--", "sleep", "1000")
    time.sleep(delay_ms / 1000)  # not synchronisation: the point of the case is where rm -f lands
    removers = [popen("rm", "-f", "racer") for _ in range(2)]
    removed = finish(removers)
    if mode == "foreground" and start.poll() is None:
        # rm -f came before the name existed: the run goes on; end it the way a user would.
        wait_for(lambda: "racer" in ps(cli) or start.poll() is not None, what="the run to register")
        if start.poll() is None:
            cli("rm", "-f", "racer", check_rc=0)
    started = finish([start])
    no_traceback(removed)
    rc, _out, err = started[0]
    assert "Traceback" not in err, err
    assert rc in (0, 125, 137), (rc, err)  # started, refused (the name went), or killed by rm -f
    if rc == 125:
        assert len(err.strip().splitlines()) == 1, err
    for rc, _out, err in removed:
        assert rc == 0 or "no such container" in err, err
    # Whatever the order, one more rm -f (if it is still there) leaves nothing.
    if "racer" in ps(cli):
        cli("rm", "-f", "racer", check_rc=0)
    assert ps(cli) == {}
    cli("network", "rm", "bridge")
    assert_root_empty(rroot)


def test_several_attach_clients_at_once(cli, rroot: Path, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    cli("run", "--detach", "-it", "--name", "shared", "--rootfs", str(busybox_rootfs), "--", "sh", check_rc=0)
    clients = [pexpect.spawn(CLI[0], [*CLI[1:], "attach", "shared"], env=dict(os.environ), encoding="utf-8",
                             timeout=20, dimensions=(24, 80)) for _ in range(N)]
    try:
        clients[0].sendline("echo hello-$((6*7))")
        for c in clients:
            c.expect("hello-42")
        # All of them detach at once; the container goes on.
        for c in clients:
            c.send("\x10\x11")
        for c in clients:
            c.expect(pexpect.EOF)
        assert ps(cli)["shared"]["status"] == "running"
        # Clients dropped in the middle (kill -9) harm nobody.
        again = [pexpect.spawn(CLI[0], [*CLI[1:], "attach", "shared"], env=dict(os.environ), encoding="utf-8",
                               timeout=20) for _ in range(N)]
        clients += again
        again[0].sendline("echo again-$((6*7))")
        for c in again:
            c.expect("again-42")
        for c in again[1:]:
            c.kill(signal.SIGKILL)
        again[0].sendline("echo still-$((2*3))")
        again[0].expect("still-6")
        again[0].sendline("exit 3")
        again[0].expect(pexpect.EOF)
    finally:
        for c in clients:
            if c.isalive():
                c.kill(signal.SIGKILL)
            c.close(force=True)
    wait_for(lambda: ps(cli)["shared"]["status"] == "exited", what="the container to end")
    assert ps(cli)["shared"]["exit_code"] == 3
    cli("rm", "shared", check_rc=0)
    assert_root_empty(rroot)
