"""--init: a small PID 1 that reaps orphans and forwards signals (docker's --init), as root."""

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


@pytest.mark.parametrize("init", [False, True])
def test_orphans_are_reaped_only_with_an_init(cli, busybox_rootfs: Path, init: bool) -> None:
    # The subshell's child is orphaned at once and adopted by PID 1, which then is `sleep` (no init:
    # nobody reaps it) or rustainer's init (reaps it).
    opts = ["--init"] if init else []
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
    # The default command (the image's shell, like docker's default) is PID 1. bash reaps what it
    # adopts even while idle at its prompt: an exec'd process leaves an orphan behind, PID 1 inherits
    # it, and no zombie stays. (busybox ash, the shell of busybox and Alpine images, reaps only when
    # it next runs a command: there, and for commands like `sleep`, use --init; see the README.)
    cli("run", "--detach", "--name", "z", check_rc=0)
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
    out = cli("run", "--rm", "--init", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
              "cat /proc/1/comm; echo me=$$; readlink /proc/1/exe || echo hidden; exit 4")
    assert out.returncode == 4
    lines = out.stdout.split()
    assert lines[:2] == ["rustainer-init", "me=2"] and "hidden" in lines
    # SIGTERM to the container's PID 1 reaches the command (PID 1 without init would ignore it)
    cli("run", "--detach", "--name", "t", "--init", "--rootfs", str(busybox_rootfs), "--", "sleep", "60",
        check_rc=0)
    try:
        state = next(s for s in json.loads(cli("ps", "--format", "json", check_rc=0).stdout) if s["name"] == "t")
        import os
        import signal

        os.kill(state["pid"], signal.SIGTERM)
        assert wait_until(lambda: "exited (143)" in cli("ps", "-a", check_rc=0).stdout)
    finally:
        cli("rm", "-f", "t")
