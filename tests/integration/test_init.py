"""The init: a small PID 1 that reaps orphans and forwards signals (docker's --init, our default;
--no-init makes the command PID 1), as root. The init is the host's static tini where it exists (set-up
installs it), else rustainer's own (the setup process staying as PID 1): both are tested here, the
second with RUSTAINER_TINI set empty."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def children_of_pid1(cli, name: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(state, command line) of each child of the container's PID 1 (zombies leave cgroup.procs, not
    their parent's list)."""
    state = next(s for s in json.loads(cli("ps", "--format", "json", check_rc=0).stdout) if s["name"] == name)
    pid1 = state["pid"]
    found = []
    for pid in Path(f"/proc/{pid1}/task/{pid1}/children").read_text().split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append((status.split("\nState:\t", 1)[1][0], cmdline))
    return found


def zombies_in(cli, name: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [child for child in children_of_pid1(cli, name) if child[0] == "Z"]


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(params=["tini", "own"])
def init_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each init test twice: with tini (the default) and with rustainer's own init."""
    if request.param == "own":
        monkeypatch.setenv("RUSTAINER_TINI", "")
    else:
        assert os.access("/usr/bin/tini-static", os.X_OK), "set-up installs tini (apt package tini)"
    return str(request.param)


@pytest.mark.parametrize("opts", [(), ("--init",), ("--no-init",)], ids=["default", "init", "no-init"])
def test_orphans_are_reaped_unless_the_init_is_turned_off(cli, busybox_rootfs: Path, opts: tuple[str, ...],
                                                          init_kind: str) -> None:
    # The subshell's child is orphaned at once and adopted by PID 1, which then is the init (reaps
    # it) or, with --no-init, `sleep` (nobody reaps it).
    init = "--no-init" not in opts
    cli("run", "--detach", "--name", "z", *opts, "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
        "(sleep 0.2 &); exec sleep 60", check_rc=0)
    try:
        if init:
            # The shell execs `sleep 60` only after the subshell ended, i.e. once PID 1 has adopted
            # the orphan: PID 1 with `sleep 60` as its only child means the orphan came and was reaped.
            assert wait_until(lambda: [c[1] for c in children_of_pid1(cli, "z")] == ["sleep 60"]), \
                children_of_pid1(cli, "z")
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
        cli("exec", "z", "sh", "-c", "(sleep 1 >/dev/null 2>&1 &); true", check_rc=0)
        # bash adopts the orphan (exec'd processes join the container's PID namespace under its PID 1);
        # once it has come and gone, nothing (not even a zombie) is left below bash
        assert wait_until(lambda: any(c[1] == "sleep 1" for c in children_of_pid1(cli, "z")), timeout=5)
        assert wait_until(lambda: children_of_pid1(cli, "z") == []), children_of_pid1(cli, "z")
    finally:
        cli("rm", "-f", "z")


def test_init_forwards_signals_and_keeps_the_exit_status(cli, busybox_rootfs: Path, init_kind: str) -> None:
    out = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
              "cat /proc/1/comm; tr '\\000' ' ' < /proc/1/cmdline; echo; echo me=$$; readlink /proc/1/exe || echo hidden; "
              "echo fds $(ls /proc/1/fd/) end; readlink /proc/1/fd/0 || echo unreadable; exit 4")
    assert out.returncode == 4
    lines = out.stdout.splitlines()
    assert lines[0] == "rustainer-init" and lines[2] == "me=2", lines
    assert "fds 0 1 2 end" in lines, lines  # PID 1 holds the container's stdio, nothing else
    if init_kind == "tini":  # tini, bound read-only into the container's own /dev
        assert lines[1].split()[:2] == ["/dev/rustainer-init", "--"] and lines[3] == "/dev/rustainer-init"
    else:  # the host's Python behind PID 1 stays out of sight: renamed, non-dumpable (no exe, no fd links)
        assert lines[1].strip() == "rustainer-init" and lines[3] == "hidden" and lines[5] == "unreadable", lines
    assert "python" not in out.stdout
    # SIGTERM to the container's PID 1 reaches the command (PID 1 without init would ignore it)
    cli("run", "--detach", "--name", "t", "--rootfs", str(busybox_rootfs), "--", "sleep", "60",
        check_rc=0)  # (the zygote started with the test's environment: the same init)
    try:
        state = next(s for s in json.loads(cli("ps", "--format", "json", check_rc=0).stdout) if s["name"] == "t")
        import os
        import signal

        os.kill(state["pid"], signal.SIGTERM)
        assert wait_until(lambda: "exited (143)" in cli("ps", "-a", check_rc=0).stdout)
    finally:
        cli("rm", "-f", "t")


def test_the_command_under_the_init_is_the_terminals_foreground(cli, init_kind: str) -> None:  # type: ignore[no-untyped-def]
    # The command's process group is the terminal's foreground one (job control and Ctrl-C work: see
    # test_interactive). tini leads the session that has the terminal (docker's --init); our own init
    # never takes it, and the command leads a session of its own. Checked from a detached container's log.
    cli("run", "--detach", "--name", "s", "--", "sh", "-c", "ps -e -o pid,pgid,sid,tpgid,tty,comm; echo done; sleep 60",
        check_rc=0)
    try:
        assert wait_until(lambda: "done" in cli("logs", "s", check_rc=0).stdout)
        rows = {row.split()[5]: row.split()[:5] for row in cli("logs", "s", check_rc=0).stdout.splitlines()[1:-1]}
        if init_kind == "tini":
            assert rows["rustainer-init"] == ["1", "1", "1", "2", "pts/0"], rows
            assert rows["sh"] == ["2", "2", "1", "2", "pts/0"], rows  # own group, the foreground one
        else:
            assert rows["rustainer-init"][2:] == ["1", "-1", "?"], rows  # its own session, no terminal
            assert rows["sh"] == ["2", "2", "2", "2", "pts/0"], rows  # leads session 2 with the terminal
    finally:
        cli("rm", "-f", "s")


def test_a_command_that_is_not_there_is_reported_by_the_init(cli, busybox_rootfs: Path, init_kind: str) -> None:
    for command, code, words in ((["nosuch"], 127, "not found"), (["/etc/passwd"], 126, "cannot execute")):
        out = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--", *command)
        assert out.returncode == code and words in out.stderr and out.stderr.count("\n") == 1, out


def test_init_and_no_init_together_are_refused(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("run", "--rm", "--init", "--no-init", "--", "true")
    assert out.returncode == 125 and "contradict" in out.stderr and out.stderr.count("\n") == 1


def test_the_init_passes_other_signals_on_too(cli, init_kind: str) -> None:  # type: ignore[no-untyped-def]
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


def test_a_file_the_kernel_cannot_execute_is_126(cli, tmp_path: Path, init_kind: str) -> None:  # type: ignore[no-untyped-def]
    # Executable, but neither ELF nor #!: only the exec itself finds that out. The own init finds it
    # after it let the parent go on (so that the command never sees the parent's pipe at PID 1), and
    # says so on stderr; tini hands the file to /bin/sh (glibc's execvp does for ENOEXEC).
    script = tmp_path / "script"
    script.write_text("echo ran-by-sh\n")
    script.chmod(0o755)
    for opts in ((), ("--no-init",)):
        out = cli("run", "--rm", "-d", str(tmp_path), *opts, "--", str(script))
        if init_kind == "tini" and not opts:
            assert out.returncode == 0 and out.stdout == "ran-by-sh\n", out
        else:
            assert out.returncode == 126 and out.stderr == f"rustainer: {script}: cannot execute: Exec format error\n", out
