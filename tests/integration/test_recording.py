"""Recording a detached container's session as asciicast v2 (root): ``rustainer record start|stop``,
``logs --asciicast``, and the files checked by Debian's ``asciinema`` (``cat`` and ``play`` need a
terminal: they run on a pexpect pty)."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pexpect
import pytest

from helpers import CLI, inspect, wait_for

pytestmark = pytest.mark.root

ASCIINEMA = shutil.which("asciinema")


def attach(name: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    return pexpect.spawn(CLI[0], [*CLI[1:], "attach", name], env=dict(os.environ), encoding="utf-8",
                         timeout=15, dimensions=(rows, cols))


def close(child: pexpect.spawn) -> None:
    if child.isalive():
        child.kill(signal.SIGKILL)
    child.close(force=True)


def asciinema(*args: str) -> str:
    """Run asciinema on a pty of its own (it reads /dev/tty); its output, after it exited with 0."""
    assert ASCIINEMA is not None, "asciinema is not installed (the test set-up command installs it)"
    child = pexpect.spawn(ASCIINEMA, list(args), encoding="utf-8", timeout=30, dimensions=(40, 120),
                          env={"PATH": os.environ["PATH"], "HOME": "/root", "TERM": "xterm-256color",
                               "LANG": "C.UTF-8"})
    try:
        child.expect(pexpect.EOF)
        output = child.before
    finally:
        close(child)
    assert child.exitstatus == 0, (args, child.exitstatus, output[-2000:])
    return str(output)


@pytest.fixture
def shell(cli, busybox_rootfs: Path):  # type: ignore[no-untyped-def]
    """A detached busybox shell called ``rec``; removed at the end."""
    cli("run", "--detach", "--name", "rec", "--rootfs", str(busybox_rootfs), "--", "sh", check_rc=0)
    try:
        yield "rec"
    finally:
        cli("rm", "-f", "rec")


def test_record_start_stop_export_and_asciinema_plays_it(cli, shell: str, tmp_path: Path) -> None:
    from rustainer.backend.terminal.asciicast import parse

    before = attach(shell)
    try:
        before.sendline("echo before-$((1+1))")
        before.expect("before-2")
    finally:
        before.send("\x10\x11")
        before.expect(pexpect.EOF)
        close(before)

    started = cli("record", "start", shell, check_rc=0)
    recording = Path(started.stdout.strip())
    state = inspect(cli, shell)
    assert recording == Path(os.environ["RUSTAINER_ROOT"]) / "containers" / state["id"] / "recording.cast"
    assert state["state"]["recording"] is True
    assert cli("record", "start", shell, check_rc=0).stdout.strip() == str(recording)  # already: goes on

    child = attach(shell, rows=30, cols=100)  # the attach resizes the pty: a resize event
    try:
        child.sendline("echo recorded-$((6*7))")
        child.expect("recorded-42")
        wait_for(lambda: b"recorded-42" in recording.read_bytes(), what="the output in the recording")
        out = tmp_path / "session.cast"
        assert cli("record", "stop", shell, str(out), check_rc=0).stdout == ""
        assert inspect(cli, shell)["state"]["recording"] is False
        child.sendline("echo after-$((3*3))")
        child.expect("after-9")
        wait_for(lambda: "after-9" in cli("logs", shell).stdout, what="the later output logged")
    finally:
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
        close(child)

    data = out.read_bytes()
    assert data == recording.read_bytes()
    header, events = parse(data)
    assert header["version"] == 2 and (header["width"], header["height"]) == (80, 24)
    assert isinstance(header["timestamp"], int) and header["title"] == shell
    assert header["env"] == {"TERM": os.environ.get("TERM") or "xterm-256color", "SHELL": "sh"}
    times = [t for t, _, _ in events]
    assert times == sorted(times) and times[0] < 1.0
    # the recording opens with the screen as it was (the earlier command on it), then what came
    assert events[0][1] == "o" and "before-2" in events[0][2]
    assert ("r", "100x30") in [(kind, text) for _, kind, text in events]
    output = "".join(text for _, kind, text in events if kind == "o")
    assert "recorded-42" in output and "after-9" not in output

    # the same bytes through logs --asciicast (a file, and stdout)
    again = tmp_path / "again.cast"
    cli("logs", "--asciicast", str(again), shell, check_rc=0)
    assert again.read_bytes() == data
    assert cli("logs", "--asciicast", "-", shell, check_rc=0).stdout.encode() == data

    # asciinema reads it: cat prints the output, play replays it (idle time capped) and ends with 0
    assert "recorded-42" in asciinema("cat", str(out))
    assert "recorded-42" in asciinema("play", "-i", "0.1", str(out))


def test_a_recording_ends_with_its_container_and_stays_until_rm(cli, shell: str, tmp_path: Path) -> None:
    from rustainer.backend.terminal.asciicast import parse

    cli("record", "start", shell, check_rc=0)
    child = attach(shell)
    try:
        child.sendline("printf 'caf\\303\\251 '; echo last-$((6+1)); exit 3")
        child.expect(pexpect.EOF)
    finally:
        close(child)
    wait_for(lambda: inspect(cli, shell)["state"]["status"] == "exited", what="the container to end")
    state = inspect(cli, shell)
    assert state["state"]["recording"] is False
    out = tmp_path / "end.cast"
    cli("logs", "--asciicast", str(out), shell, check_rc=0)
    _, events = parse(out.read_bytes())
    output = "".join(text for _, kind, text in events if kind == "o")
    assert "café last-7" in output and "\ufffd" not in output
    assert "last-7" in asciinema("cat", str(out))
    cli("rm", shell, check_rc=0)
    assert not (Path(os.environ["RUSTAINER_ROOT"]) / "containers" / state["id"]).exists()


def test_recording_errors_are_one_line(cli, shell: str, busybox_rootfs: Path, tmp_path: Path) -> None:
    def refused(*args: str) -> str:
        proc = cli(*args)
        assert proc.returncode == 125, (args, proc.returncode, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("rustainer: "), proc.stderr
        return proc.stderr

    assert "has no recording" in refused("logs", "--asciicast", str(tmp_path / "x.cast"), shell)
    assert not (tmp_path / "x.cast").exists()
    assert "no such container" in refused("record", "start", "nosuch")
    assert "unknown record action" in refused("record", "pause", shell)
    assert "record stop NAME [FILE]" in refused("record", "start", shell, "file")
    assert "leave out --follow" in refused("logs", "--asciicast", "-", "--tail", "3", shell)
    cli("record", "start", shell, check_rc=0)
    assert "cannot write" in refused("record", "stop", shell, str(tmp_path / "missing" / "x.cast"))
    cli("run", "--name", "fg", "--rootfs", str(busybox_rootfs), "--", "true", check_rc=0)
    try:
        assert "not running" in refused("record", "start", "fg")
    finally:
        cli("rm", "fg", check_rc=0)


def test_a_flood_is_recorded_whole_and_in_order(cli, busybox_rootfs: Path, rroot: Path) -> None:
    import socket

    from rustainer.backend.supervisor import protocol as P
    from rustainer.backend.terminal.asciicast import parse

    cli("run", "--detach", "--name", "flood", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
        "read go; seq 1 200000; echo FLOOD-END; exec sleep 600", check_rc=0)
    try:
        path = Path(cli("record", "start", "flood", check_rc=0).stdout.strip())
        sock = socket.socket(socket.AF_UNIX)
        with P.SocketPath(str(path.parent / "attach.sock")) as short:
            sock.connect(short)
        try:
            sock.sendall(P.hello(P.MODE_NONE) + P.frame(P.INPUT, b"\n"))
            # written behind the output: all of it once the supervisor has nothing more to read
            wait_for(lambda: b"FLOOD-END" in path.read_bytes(), what="the whole flood in the recording")
        finally:
            sock.close()
        cli("record", "stop", "flood", check_rc=0)
        _, events = parse(path.read_bytes())
        output = "".join(text for _, kind, text in events[1:] if kind == "o")
        expected = "\r\n".join(str(i) for i in range(1, 200001)) + "\r\nFLOOD-END\r\n"
        assert output.endswith(expected) and len(output) - len(expected) <= 2, output[:200]
        assert len(events) > 2  # timed as it came, not one event at the end
    finally:
        cli("rm", "-f", "flood")
