"""The init: a small PID 1 that reaps orphans and forwards signals (docker's --init, our default;
--no-init makes the command PID 1), as root."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def zombies_in(cli, name: str) -> list[int]:  # type: ignore[no-untyped-def]
    """Zombie children of the container's PID 1 (zombies leave cgroup.procs, not their parent's list)."""
    state = next(s for s in json.loads(cli("ps", "--format", "json", check_rc=0).stdout) if s["name"] == name)
    pid1 = state["pid"]
    found = []
    for pid in Path(f"/proc/{pid1}/task/{pid1}/children").read_text().split():
        try:
            if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                found.append(int(pid))
        except FileNotFoundError:
            continue
    return found


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("opts", [(), ("--init",), ("--no-init",)], ids=["default", "init", "no-init"])
def test_orphans_are_reaped_unless_the_init_is_turned_off(cli, busybox_rootfs: Path, opts: tuple[str, ...]) -> None:
    # The subshell's child is orphaned at once and adopted by PID 1, which then is rustainer's init
    # (reaps it) or, with --no-init, `sleep` (nobody reaps it).
    init = "--no-init" not in opts
    cli("run", "--detach", "--name", "z", *opts, "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
        "(sleep 0.2 &); exec sleep 60", check_rc=0)
    try:
        time.sleep(0.3)  # let the orphan exit; then its zombie must disappear (init) or stay (none)
        if init:
            assert wait_until(lambda: zombies_in(cli, "z") == [])
        else:
            assert wait_until(lambda: zombies_in(cli, "z") != [])
    finally:
        cli("rm", "-f", "z")


def test_the_host_views_default_shell_as_pid_1_reaps_orphans(cli) -> None:  # type: ignore[no-untyped-def]
    # With --no-init the default command (the image's shell) is PID 1. bash reaps what it adopts even
    # while idle at its prompt: an exec'd process leaves an orphan behind, PID 1 inherits it, and no
    # zombie stays. (busybox ash, the shell of busybox and Alpine images, reaps only when it next runs
    # a command, and `sleep` never: the reason the init is the default; see the README.)
    cli("run", "--detach", "--name", "z", "--no-init", check_rc=0)
    try:
        pid1 = next(s for s in json.loads(cli("ps", "--format", "json", check_rc=0).stdout) if s["name"] == "z")["pid"]
        if Path(f"/proc/{pid1}/comm").read_text().strip() != "bash":
            pytest.skip("the host view's default shell is not bash here")
        cli("exec", "z", "sh", "-c", "(sleep 0.2 &); true", check_rc=0)
        time.sleep(0.3)  # let the orphan exit; a zombie of it must not stay
        assert wait_until(lambda: zombies_in(cli, "z") == []), zombies_in(cli, "z")
    finally:
        cli("rm", "-f", "z")


def test_init_forwards_signals_and_keeps_the_exit_status(cli, busybox_rootfs: Path) -> None:
    out = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
              "cat /proc/1/comm; tr -d '\\000' < /proc/1/cmdline; echo; echo me=$$; readlink /proc/1/exe || echo hidden; "
              "echo fds $(ls /proc/1/fd/) end; readlink /proc/1/fd/0 || echo unreadable; exit 4")
    assert out.returncode == 4
    lines = out.stdout.split()
    # The host's Python behind PID 1 stays out of sight: renamed, non-dumpable (no exe, no fd links),
    # holding stdio only.
    assert lines[:3] == ["rustainer-init", "rustainer-init", "me=2"] and "hidden" in lines, lines
    assert "fds 0 1 2 end" in " ".join(lines) and "unreadable" in lines, lines
    assert "python" not in out.stdout
    # SIGTERM to the container's PID 1 reaches the command (PID 1 without init would ignore it)
    cli("run", "--detach", "--name", "t", "--rootfs", str(busybox_rootfs), "--", "sleep", "60",
        check_rc=0)
    try:
        state = next(s for s in json.loads(cli("ps", "--format", "json", check_rc=0).stdout) if s["name"] == "t")
        import os
        import signal

        os.kill(state["pid"], signal.SIGTERM)
        assert wait_until(lambda: "exited (143)" in cli("ps", "-a", check_rc=0).stdout)
    finally:
        cli("rm", "-f", "t")


def test_the_command_under_the_init_has_the_terminal_and_its_own_session(cli) -> None:  # type: ignore[no-untyped-def]
    # PID 1 never takes the pty as controlling terminal; the command leads its own session with it
    # (job control and Ctrl-C work: see test_interactive). Checked from a detached container's log.
    cli("run", "--detach", "--name", "s", "--", "sh", "-c", "ps -e -o pid,sid,tty,comm; echo done; sleep 60",
        check_rc=0)
    try:
        assert wait_until(lambda: "done" in cli("logs", "s", check_rc=0).stdout)
        rows = {row.split()[3]: row.split()[:3] for row in cli("logs", "s", check_rc=0).stdout.splitlines()[1:-1]}
        assert rows["sh"] == ["2", "2", "pts/0"], rows  # leads session 2, pty as controlling terminal
        assert rows["rustainer-init"][1:] == ["1", "?"], rows  # PID 1: its own session, no terminal
    finally:
        cli("rm", "-f", "s")


def test_a_command_that_is_not_there_is_reported_by_the_init(cli, busybox_rootfs: Path) -> None:
    for command, code, words in ((["nosuch"], 127, "not found"), (["/etc/passwd"], 126, "cannot execute")):
        out = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--", *command)
        assert out.returncode == code and words in out.stderr and out.stderr.count("\n") == 1, out


def test_init_and_no_init_together_are_refused(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("run", "--rm", "--init", "--no-init", "--", "true")
    assert out.returncode == 125 and "contradict" in out.stderr and out.stderr.count("\n") == 1


def test_the_init_passes_other_signals_on_too(cli) -> None:  # type: ignore[no-untyped-def]
    # `kill -s USR1` reaches the command's handler, not just the init (tini forwards it too).
    cli("run", "--detach", "--name", "u", "--", "sh", "-c",
        "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done", check_rc=0)
    try:
        assert wait_until(lambda: "ready" in cli("logs", "u", check_rc=0).stdout)
        cli("kill", "-s", "USR1", "u", check_rc=0)
        assert wait_until(lambda: "got-usr1" in cli("logs", "u", check_rc=0).stdout)
        assert "running" in cli("ps", check_rc=0).stdout  # the init did not end on it
    finally:
        cli("rm", "-f", "u")
