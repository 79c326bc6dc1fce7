"""Signals to a foreground ``rustainer run`` (issue 14): SIGINT, SIGTERM and SIGHUP are forwarded to
the container's PID 1 (docker's sig-proxy; the init passes them on), and the run ends with the
container's own status; after SIGHUP a container that does not end is killed once a grace period
passes, so a closed terminal never leaves an orphan. Each case runs the CLI in a real pty (pexpect),
with plain pipes to the container or with a terminal (-t), and checks that nothing is left."""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path

import pexpect
import psutil
import pytest

from helpers import CLI, ended, ps, wait_for

pytestmark = pytest.mark.root

SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP}
_marks = itertools.count(7_100_001)


def marker() -> str:
    return str(next(_marks) + os.getpid() % 1000 * 10_000)


def command(sig: str, trapping: bool, mark: str) -> str:
    """A shell that says it is ready, then waits; trapping: it ends itself with 40 + the signal."""
    trap = f"trap 'echo got-{sig}; exit $((40 + {SIGNALS[sig]}))' {sig}; " if trapping else ""
    wait = f"while :; do sleep 0.{mark[-2:]}1; done" if trapping else f"exec sleep {mark}"
    return f"{trap}echo ready-$((1+1)); {wait}"


def leftovers(mark: str) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"]) if mark in "".join(p.info["cmdline"] or [])]


def spawn(rootfs: Path, script: str, *opts: str, **env: str) -> pexpect.spawn:
    return pexpect.spawn(CLI[0], [*CLI[1:], "run", "--rm", *opts, "--name", "sig", "--rootfs", str(rootfs), "--",
                                  "sh", "-c", script], env=dict(os.environ, TERM="xterm", **env),
                         encoding="utf-8", timeout=20)


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
@pytest.mark.parametrize("trapping", [True, False], ids=["trapping", "plain"])
@pytest.mark.parametrize("sig", list(SIGNALS))
def test_a_signal_is_forwarded_and_the_run_ends_with_the_container(cli, rroot: Path, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                                   sig: str, trapping: bool, tty: bool) -> None:
    mark = marker()
    child = spawn(busybox_rootfs, command(sig, trapping, mark), *(("-t",) if tty else ()))
    try:
        child.expect("ready-2")
        child.kill(SIGNALS[sig])
        if trapping:
            child.expect(f"got-{sig}")
        child.expect(pexpect.EOF)
        child.close()
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)
            child.close(force=True)
    expected = 40 + SIGNALS[sig] if trapping else 128 + SIGNALS[sig]
    assert child.exitstatus == expected, (child.exitstatus, child.signalstatus, child.before)
    assert "Traceback" not in (child.before or "")
    assert ps(cli) == {}
    wait_for(lambda: not leftovers(mark), timeout=5, what="the container's processes to go")


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
def test_a_closed_terminal_never_leaves_an_orphan(cli, rroot: Path, busybox_rootfs: Path, tty: bool) -> None:  # type: ignore[no-untyped-def]
    """The container ignores SIGHUP: it is killed once the grace period passes (shortened here)."""
    mark = marker()
    child = spawn(busybox_rootfs, f"trap '' HUP; echo ready-$((1+1)); exec sleep {mark}", *(("-t",) if tty else ()),
                  RUSTAINER_HANGUP_GRACE="1")
    try:
        child.expect("ready-2")
    except BaseException:
        child.kill(signal.SIGKILL)
        raise
    cli_pid = child.pid
    # The terminal goes: closing its master makes the kernel hang up the CLI's session (SIGHUP alone;
    # pexpect's close() would follow with SIGINT, which the container does not ignore, and give up
    # after 0.1 s on a busy machine).
    child.ptyproc.fileobj.close()
    wait_for(lambda: ended(cli_pid),
             timeout=15, what="the CLI to end")
    os.waitpid(cli_pid, 0)
    wait_for(lambda: not leftovers(mark), timeout=10, what="the container's processes to go")
    assert ps(cli) == {}


def test_a_signal_during_the_start_aborts_it(cli, rroot: Path, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    """Before the container runs, SIGTERM ends the start, undone like any failure (no orphan)."""
    import subprocess

    mark = marker()
    proc = subprocess.Popen([*CLI, "run", "--rm", "--name", "sig", "--rootfs", str(busybox_rootfs), "--network",
                             "bridge", "--", "sleep", mark], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, RUSTAINER_TEST_JOIN_DELAY="1"))
    wait_for(lambda: (rroot / "names" / "sig").exists(), what="the start to reserve its name")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert proc.returncode in (143, 128 + 15), (proc.returncode, err)
    assert ps(cli) == {}
    wait_for(lambda: not leftovers(mark), timeout=5, what="the container's processes to go")


def test_a_signal_its_pid1_would_not_get_ends_the_run(cli, rroot: Path, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    """--no-init: ``sleep`` as PID 1 has no handler, so the kernel would drop a forwarded SIGTERM and
    the run would wait on; the run ends the container instead (128+N, one line, nothing left)."""
    mark = marker()
    child = spawn(busybox_rootfs, f"echo ready-$((1+1)); exec sleep {mark}", "--no-init")
    try:
        child.expect("ready-2")
        wait_for(lambda: leftovers(mark), what="sleep to be PID 1")
        child.kill(signal.SIGTERM)
        child.expect(pexpect.EOF)
        child.close()
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)
            child.close(force=True)
    assert child.exitstatus == 128 + signal.SIGTERM, (child.exitstatus, child.before)
    assert "stopped by signal 15" in (child.before or "")
    assert ps(cli) == {}
    wait_for(lambda: not leftovers(mark), timeout=5, what="the container's processes to go")
