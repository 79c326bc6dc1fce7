"""Crashes at any point (issue 14): kill -9 of the CLI, the launcher (zygote) or a supervisor at several
moments of a start, a stop and an rm, swept by delay.

Afterwards the next command (``ps``, ``run``, ``rm`` or ``network ls``) reconciles: the name can be
used again, and nothing is left - no state entry, name or lease, no nft table or link, no cgroup or
mount (the per-test leak check), and no process: the container's (found by a unique ``sleep``
argument, since an orphan is no longer our descendant) nor a supervisor (a fork of the launcher,
found by the root in its command line). The launcher being killed never breaks the next
``run --detach``.

The delays are where the kill lands, not synchronisation: each case polls for its outcome.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from helpers import CLI, ps, wait_for

pytestmark = pytest.mark.root

DELAYS_MS = (0, 10, 40, 80)
NEXT = ("ps", "run", "rm", "network-ls")
AFTER = {0: "ps", 10: "run", 20: "rm", 40: "network-ls", 80: "run"}  # which next command, by delay
_marks = itertools.count(4_000_001)


def marker() -> str:
    """A ``sleep`` argument no other process on the machine has."""
    return str(next(_marks) + os.getpid() % 1000 * 10_000)


def popen(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def kill9(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def zygote_pid(rroot: Path) -> int | None:
    from rustainer.backend.supervisor import zygote

    return zygote.running_pid(str(rroot))


def ours(rroot: Path, mark: str) -> list[psutil.Process]:
    """The container's processes (``sleep <mark>``) and supervisors of this root (not its launcher)."""
    found = []
    launcher = zygote_pid(rroot)
    root = str(rroot)
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if mark in argv or (proc.pid != launcher and any(root in a for a in argv)):
            found.append(proc)
    return found


def next_command(cli, how: str, busybox_rootfs: Path, name: str = "c") -> None:  # type: ignore[no-untyped-def]
    """The command that meets what the crash left; each must reconcile it (and never trace back).
    ``run`` takes ``name``: the crashed start's own, or another while that container may still be."""
    if how == "ps":
        proc = cli("ps", "-a")
    elif how == "run":
        proc = cli("run", "--rm", "--name", name, "--rootfs", str(busybox_rootfs), "--network", "bridge", "--", "true")
    elif how == "rm":
        proc = cli("rm", "-f", "c")
        assert proc.returncode == 0 or "no such container" in proc.stderr, proc.stderr
    else:
        proc = cli("network", "ls")
    assert "Traceback" not in proc.stderr, proc.stderr
    if how != "rm":
        assert proc.returncode == 0, proc.stderr


def assert_recovered(cli, rroot: Path, busybox_rootfs: Path, mark: str) -> None:  # type: ignore[no-untyped-def]
    """The name is free (a finished container is removed first, as a user would), and nothing is left."""
    left = ps(cli)
    if "c" in left:
        assert left["c"]["status"] in ("running", "exited"), left
        cli("rm", "-f", "c", check_rc=0)
    again = cli("run", "--rm", "--name", "c", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--", "true")
    assert again.returncode == 0, again.stderr
    assert ps(cli) == {}
    cli("network", "ls", check_rc=0)
    for sub in ("containers", "names"):
        folder = rroot / sub
        assert not folder.exists() or os.listdir(folder) == [], (sub, {e: os.listdir(folder / e) if (folder / e).is_dir() else (folder / e).read_text() for e in os.listdir(folder)})
    from rustainer.backend.network.store import NetworkStore

    networks = NetworkStore(str(rroot))
    for name in networks.names():
        assert (networks.load(name) or {}).get("leases", {}) == {}, networks.load(name)
    from rustainer.backend.network import ipam

    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert ipam.nft_table(str(rroot), "bridge") not in tables
    assert not os.path.exists(f"/sys/class/net/{ipam.bridge_name(str(rroot), 'bridge')}")
    wait_for(lambda: not ours(rroot, mark), timeout=10, what=f"no process left: {ours(rroot, mark)}")


def start_args(rootfs: Path, mark: str, *mode: str) -> tuple[str, ...]:
    return ("run", *mode, "--name", "c", "--rootfs", str(rootfs), "--network", "bridge", "--", "sleep", mark)


@pytest.mark.parametrize("delay_ms", DELAYS_MS)
def test_cli_killed_during_a_foreground_start(cli, rroot: Path, busybox_rootfs: Path, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    proc = popen(*start_args(busybox_rootfs, mark, "--rm"))
    time.sleep(delay_ms / 1000)
    kill9(proc.pid)
    proc.communicate(timeout=30)
    next_command(cli, AFTER[delay_ms], busybox_rootfs)
    assert_recovered(cli, rroot, busybox_rootfs, mark)


@pytest.mark.parametrize("delay_ms", DELAYS_MS)
def test_cli_killed_during_a_detached_start(cli, rroot: Path, busybox_rootfs: Path, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    proc = popen(*start_args(busybox_rootfs, mark, "--detach"))
    time.sleep(delay_ms / 1000)
    kill9(proc.pid)
    proc.communicate(timeout=30)
    next_command(cli, NEXT[(NEXT.index(AFTER[delay_ms]) + 1) % len(NEXT)], busybox_rootfs)
    assert_recovered(cli, rroot, busybox_rootfs, mark)


@pytest.mark.parametrize("delay_ms", (0, 20, 80))
def test_launcher_killed_during_a_detached_start(cli, rroot: Path, busybox_rootfs: Path, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    cli("run", "--detach", "--name", "warm", "--", "true", check_rc=0)  # the launcher is up
    launcher = zygote_pid(rroot)
    assert launcher is not None
    cli("rm", "-f", "warm", check_rc=0)
    mark = marker()
    proc = popen(*start_args(busybox_rootfs, mark, "--detach"))
    time.sleep(delay_ms / 1000)
    kill9(launcher)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 125), err
    assert b"Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    # The next detached run works (a new launcher), whatever the first one's fate.
    cli("rm", "-f", "c")
    cli("run", "--detach", "--name", "after", "--", "true", check_rc=0)
    assert zygote_pid(rroot) not in (None, launcher)
    wait_for(lambda: ps(cli)["after"]["status"] == "exited", what="the container after")
    cli("rm", "after", check_rc=0)
    assert_recovered(cli, rroot, busybox_rootfs, mark)


@pytest.mark.parametrize("delay_ms", (0, 10, 40, 80))
def test_supervisor_killed_during_a_detached_start(cli, rroot: Path, busybox_rootfs: Path, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    cli("run", "--detach", "--name", "warm", "--", "true", check_rc=0)
    launcher = zygote_pid(rroot)
    assert launcher is not None
    cli("rm", "-f", "warm", check_rc=0)
    mark = marker()
    proc = popen(*start_args(busybox_rootfs, mark, "--detach"))
    # The launcher's children: the supervisor (and, early on, its short-lived helper).
    supervisor = wait_for(lambda: psutil.Process(launcher).children(), what="the supervisor")
    time.sleep(delay_ms / 1000)
    for child in supervisor:
        kill9(child.pid)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 125), err
    assert b"Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    # Another name: a kill that lands once the container runs leaves it exited, holding "c" (a
    # bridge start now often gets that far in 80 ms); assert_recovered then frees and reuses "c".
    next_command(cli, AFTER[delay_ms], busybox_rootfs, name="c2")
    assert_recovered(cli, rroot, busybox_rootfs, mark)


def test_start_helper_killed_during_a_detached_start(cli, rroot: Path, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's start helper (see shim.start_in_helper) killed while the container sets
    itself up: the supervisor ends the container (cloned as its own child) and says so in one line,
    and nothing is left. RUSTAINER_TEST_JOIN_DELAY holds the setup after its go (the launcher this
    run starts inherits it), while the helper waits for the exec."""
    monkeypatch.setenv("RUSTAINER_TEST_JOIN_DELAY", "2")
    mark = marker()
    proc = popen(*start_args(busybox_rootfs, mark, "--detach"))

    def helper() -> psutil.Process | None:
        launcher = zygote_pid(rroot)
        if launcher is None:
            return None
        for supervisor in psutil.Process(launcher).children():
            for child in supervisor.children():
                # The container's PID 1 is the supervisor's child too: it has a pid in its own namespace.
                nspid = [line for line in Path(f"/proc/{child.pid}/status").read_text().splitlines()
                         if line.startswith("NSpid:")]
                if nspid and len(nspid[0].split()) == 2 and ours(rroot, mark) and _setup_waits(rroot):
                    return child
        return None

    helper_process = wait_for(helper, what="the start helper, waiting for the container's setup")
    kill9(helper_process.pid)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 125, err
    assert err.decode().strip().splitlines() == [
        "rustainer: the container's start was interrupted: its start helper ended (killed by signal 9)"], err
    assert_recovered(cli, rroot, busybox_rootfs, mark)


def _setup_waits(rroot: Path) -> bool:
    """Whether the container is recorded running (its go given: the setup now sleeps before its join)."""
    folder = rroot / "containers"
    for cid in os.listdir(folder) if folder.exists() else ():
        try:
            if json.loads((folder / cid / "state.json").read_text())["status"] == "running":
                return True
        except (OSError, ValueError, KeyError):
            pass
    return False


@pytest.mark.parametrize("verb", ["stop", "rm"])
@pytest.mark.parametrize("delay_ms", (0, 20, 80))
def test_cli_killed_during_stop_or_rm(cli, rroot: Path, busybox_rootfs: Path, verb: str, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    cli(*start_args(busybox_rootfs, mark, "--detach"), check_rc=0)
    proc = popen(*(("stop", "-t", "0", "c") if verb == "stop" else ("rm", "-f", "c")))
    time.sleep(delay_ms / 1000)
    kill9(proc.pid)
    proc.communicate(timeout=30)
    next_command(cli, AFTER[delay_ms], busybox_rootfs, name="other")
    assert_recovered(cli, rroot, busybox_rootfs, mark)


@pytest.mark.parametrize("delay_ms", (0, 20, 80))
def test_supervisor_killed_during_stop(cli, rroot: Path, busybox_rootfs: Path, delay_ms: int) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    cli(*start_args(busybox_rootfs, mark, "--detach"), check_rc=0)
    pid = json.loads(cli("inspect", "c", check_rc=0).stdout)[0]["state"]["supervisor_pid"]
    assert pid
    proc = popen("stop", "-t", "1", "c")
    time.sleep(delay_ms / 1000)
    kill9(pid)
    _out, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err
    assert proc.returncode in (0, 125) and len(err.strip().splitlines()) <= 1, err
    assert ps(cli)["c"]["status"] == "exited"
    assert_recovered(cli, rroot, busybox_rootfs, mark)
