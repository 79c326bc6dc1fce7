"""Interactive use in a real pty (pexpect): the shell, the seed's default mode, window size."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pexpect
import pytest

from helpers import CLI

pytestmark = pytest.mark.root

CPUS_ALLOWED = "$(grep Cpus_allowed_list /proc/self/status | cut -f2)"


def spawn(*args: str, cwd: str | None = None, dimensions: tuple[int, int] = (24, 80)) -> pexpect.spawn:
    return pexpect.spawn(CLI[0], [*CLI[1:], *args], cwd=cwd, env=dict(os.environ, TERM="xterm"),
                         encoding="utf-8", timeout=10, dimensions=dimensions)


def ask(child: pexpect.spawn, expr: str) -> str:
    """Echo a shell expression between markers the terminal's echo of the command line cannot match."""
    child.sendline(f'echo "<<"{expr}">>"')
    child.expect(r'<<([^<>"]*)>>')
    return str(child.match.group(1))


def stop(child: pexpect.spawn) -> None:
    """Clean-up for a test that failed half-way: leave the shell the normal way (a killed CLI leaks)."""
    if child.isalive():
        try:
            child.sendline("exit 0")
            child.expect(pexpect.EOF, timeout=10)
        except pexpect.ExceptionPexpect:
            pass
    child.close(force=True)


def finish(child: pexpect.spawn, code: int) -> int | None:
    child.sendline(f"exit {code}")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus  # type: ignore[no-any-return]


def test_busybox_shell(rroot: Path, busybox_rootfs: Path) -> None:
    child = spawn("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh")
    try:
        child.expect(r"[#$] ")  # a prompt
        assert ask(child, "$((6*7))") == "42"
        assert ask(child, "$(test -t 0 && echo yes)") == "yes"
        assert finish(child, 5) == 5
    finally:
        stop(child)


@pytest.mark.parametrize("opts", [(), ("-it",)], ids=["default", "docker-it"])
def test_tty_names_a_pts_device(rroot: Path, busybox_rootfs: Path, opts: tuple[str, ...]) -> None:
    child = spawn("run", *opts, "--rm", "--rootfs", str(busybox_rootfs), "--", "sh")
    try:
        out = ask(child, "$(tty)")
        code = finish(child, 0)
    finally:
        stop(child)
    assert code == 0
    assert out.startswith("/dev/pts/"), out


def test_window_size_is_copied(rroot: Path, busybox_rootfs: Path) -> None:
    child = spawn("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh", dimensions=(30, 100))
    try:
        assert ask(child, "$(stty size)") == "30 100"
        assert finish(child, 0) == 0
    finally:
        stop(child)


def test_the_command_starts_with_the_callers_window_size(rroot: Path, busybox_rootfs: Path) -> None:
    # The size travels in the start's go, set on the pty before the command runs: a command that
    # reads it at once (no shell, no prompt in between) sees it, not 0 0.
    child = spawn("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "stty", "size", dimensions=(33, 97))
    try:
        child.expect(pexpect.EOF)
        assert child.before.strip() == "33 97"
    finally:
        stop(child)


def test_default_mode(rroot: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "here"
    cwd.mkdir()
    folder = cwd / "container"
    first_cpu = min(os.sched_getaffinity(0))
    child = spawn(cwd=str(cwd))
    try:
        child.expect(r"rustainer: container (\S+) \| cpus (\S+) \| memory (\S+) \| directory (\S+)\r*\n")
        name, cpus, memory, directory = child.match.groups()
        assert (cpus, memory, directory) == (str(first_cpu), "512M", str(folder))
        assert ask(child, "$(pwd)") == str(folder)
        assert folder.is_dir()  # exists on the host while the shell runs
        ask(child, "$(echo hello > made-inside)done")
        assert (folder / "made-inside").read_text() == "hello\n"
        assert ask(child, "$(hostname)") == name
        assert ask(child, CPUS_ALLOWED) == str(first_cpu)
        assert finish(child, 0) == 0
    finally:
        stop(child)
    assert not folder.exists()  # removed with everything the container created
    assert list(cwd.iterdir()) == []


def test_default_mode_keeps_an_existing_folder(rroot: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    child = spawn("-d", str(mine), cwd=str(tmp_path))
    try:
        child.expect(r"directory (\S+)\r*\n")
        assert child.match.group(1) == str(mine)
        assert ask(child, "$(cat keep.txt)") == "precious"
        ask(child, "$(echo new > new.txt)done")
        assert finish(child, 3) == 3
    finally:
        stop(child)
    assert (mine / "keep.txt").read_text() == "precious" and (mine / "new.txt").read_text() == "new\n"
    assert not (tmp_path / "container").exists()


def test_default_mode_honours_cpus_and_memory(rroot: Path, tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    want = str(cpus[-1]) if len(cpus) == 1 else f"{cpus[0]}-{cpus[1]}"
    child = spawn("-c", ",".join(map(str, cpus[:2])), "-m", "256m", cwd=str(tmp_path))
    try:
        child.expect(r"\| cpus (\S+) \| memory (\S+) \|")
        assert child.match.groups() == (want, "256M")
        assert ask(child, CPUS_ALLOWED) == want
        assert finish(child, 0) == 0
    finally:
        stop(child)
    assert not (tmp_path / "container").exists()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_signalled_cli_takes_its_container_along(rroot: Path, busybox_rootfs: Path, signum: int) -> None:
    """A closed terminal or a kill of the CLI stops the container (the signal is forwarded to it:
    see test_signals.py) and removes all it made."""
    import subprocess
    import time

    from helpers import CLI

    proc = subprocess.Popen([*CLI, "run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sleep", "60"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not any('"running"' in p.read_text() for p in (rroot / "containers").glob("*/state.json")):
            assert time.monotonic() < deadline and proc.poll() is None, "the container never started"
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    # Forwarded once the container runs (then it ends of it, silently); a signal that lands while
    # its command is still being started aborts the start, and says so.
    assert err in ("", f"rustainer: stopped by signal {signum}; the container was stopped and cleaned up\n"), err
    assert list((rroot / "containers").iterdir()) == []
