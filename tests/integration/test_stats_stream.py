"""``rustainer stats`` streaming (no ``--no-stream``): a new sample every second until interrupted,
like ``docker stats``; what it does when the containers it shows end or go (root, real kernel)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pexpect
import pytest

from helpers import CLI

pytestmark = pytest.mark.root
CLEAR = "\x1b[H\x1b[J"  # each refresh starts by homing the cursor and clearing the screen
BUSY = ("sh", "-c", "while :; do :; done")


def refreshes(text: str) -> list[list[list[str]]]:
    """The complete refreshes seen so far (the last one may still be arriving), as split rows."""
    frames = text.split(CLEAR)[1:-1]
    return [[line.split() for line in frame.replace("\r", "").splitlines() if line.strip()] for frame in frames]


def test_stream_refreshes_every_second_and_keeps_an_ended_container(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("busy", *BUSY, opts=("-m", "48M"))
    stream = pexpect.spawn(CLI[0], [*CLI[1:], "stats", "busy"], env=dict(os.environ), encoding="utf-8",
                           timeout=1, dimensions=(24, 120))
    seen = ""

    def wait_refreshes(count: int, deadline: float = 15.0) -> list[list[list[str]]]:
        nonlocal seen
        end = time.monotonic() + deadline
        while len(refreshes(seen)) < count and time.monotonic() < end:
            try:
                seen += stream.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                pass
        frames = refreshes(seen)
        assert len(frames) >= count, f"only {len(frames)} refreshes in {deadline} s: {seen!r}"
        return frames

    try:
        started_at = time.monotonic()
        frames = wait_refreshes(3)
        elapsed = time.monotonic() - started_at
        assert elapsed >= 1.5, "three samples of one second each cannot come faster"  # each samples 1 s
        for frame in frames[:3]:
            assert frame[0][:3] == ["NAME", "ID", "CPU"] and len(frame) == 2, frame
            name, _id, cpu, used, _slash, limit, _pct, pids = frame[1]
            assert name == "busy" and limit == "48M" and pids == "2", frame  # the init and the loop
            assert float(cpu.rstrip("%")) > 5 and used != "-", frame  # a busy loop, from its cgroup
        # Removed while shown: the stream goes on, with dashes in its row (docker shows "--").
        cli("rm", "-f", "busy", check_rc=0)
        count = len(refreshes(seen))
        frames = wait_refreshes(count + 3)
        last = frames[-1]
        assert last[1][:2] == frames[0][1][:2] and last[1][2:] == ["-", "-", "/", "-", "-", "-"], last
        assert stream.isalive()
        stream.sendintr()  # Ctrl-C ends it, quietly
        stream.expect(pexpect.EOF, timeout=10)
    finally:
        if stream.isalive():
            stream.kill(signal.SIGKILL)
        stream.close(force=True)
    assert stream.exitstatus == 130 and "Traceback" not in seen


def test_stream_of_all_follows_containers_coming_and_going(cli, started) -> None:  # type: ignore[no-untyped-def]
    """Without names: the running containers of each moment (JSON, one array per sample, on a pipe)."""
    started("one", *BUSY)
    proc = subprocess.Popen([*CLI, "stats", "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buffered = b""

    def next_sample(deadline: float = 10.0) -> list[dict]:  # type: ignore[type-arg]
        nonlocal buffered
        assert proc.stdout is not None
        end = time.monotonic() + deadline
        while b"\n]\n" not in buffered and not buffered.startswith(b"[]\n"):
            left = end - time.monotonic()
            assert left > 0, f"no sample within {deadline} s: {buffered!r}"
            if select.select([proc.stdout], [], [], left)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"the stream ended: {proc.stderr.read() if proc.stderr else ''}"
                buffered += chunk
        if buffered.startswith(b"[]\n"):
            sample, buffered = b"[]", buffered[3:]
        else:
            sample, _, buffered = buffered.partition(b"\n]\n")
            sample += b"]"
        return json.loads(sample)  # type: ignore[no-any-return]

    def names_until(want: set[str], deadline: float = 20.0) -> list[dict]:  # type: ignore[type-arg]
        end = time.monotonic() + deadline
        while True:
            sample = next_sample()
            if {r["name"] for r in sample} == want or time.monotonic() > end:
                assert {r["name"] for r in sample} == want, sample
                return sample

    try:
        sample = names_until({"one"})
        # The busy loop shows in a sample (on a loaded machine its first second may get little CPU).
        end = time.monotonic() + 20
        while not sample[0]["cpu_percent"] > 5 and time.monotonic() < end:
            sample = names_until({"one"})
        assert sample[0]["cpu_percent"] > 5 and sample[0]["pids"] == 2
        started("two", "sleep", "300")
        sample = names_until({"one", "two"})
        assert {r["name"]: r["pids"] for r in sample} == {"one": 2, "two": 2}  # each: the init, sleep
        cli("rm", "-f", "one", check_rc=0)
        names_until({"two"})
        cli("rm", "-f", "two", check_rc=0)
        names_until(set())  # nothing running: it goes on, with empty samples (docker does too)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130 and err == b""


@pytest.mark.parametrize("verb", [("stats", "held"), ("logs", "-f", "held")])
def test_ctrl_c_ends_a_stream_started_with_sigint_ignored(cli, started, verb: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """A background job of a shell without job control (``cmd &`` in a script, and every process it
    starts, a test run among them) begins with SIGINT ignored, which Python then leaves ignored:
    the streams that run until Ctrl-C take it back, as docker's CLI does."""
    started("held", "sh", "-c", "echo started; sleep 300")
    stream = pexpect.spawn(CLI[0], [*CLI[1:], *verb], env=dict(os.environ), encoding="utf-8", timeout=15,
                           dimensions=(24, 120), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        stream.expect("NAME" if verb[0] == "stats" else "started")
        stream.sendintr()
        stream.expect(pexpect.EOF, timeout=10)
    finally:
        if stream.isalive():
            stream.kill(signal.SIGKILL)
        stream.close(force=True)
    assert stream.exitstatus == 130 and "Traceback" not in (stream.before or "")


def test_stream_into_a_closed_pipe_ends_quietly(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("piped", "sleep", "300")
    stats = subprocess.Popen([*CLI, "stats", "piped"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert stats.stdout is not None
    assert select.select([stats.stdout], [], [], 15)[0], "no first sample"
    assert stats.stdout.read1(65536).startswith(CLEAR.encode())
    stats.stdout.close()  # like `rustainer stats | head -2` once head has its lines
    try:
        _, err = stats.communicate(timeout=15)
    finally:
        if stats.poll() is None:
            stats.kill()
            stats.communicate(timeout=10)
    assert stats.returncode == 0 and err == b""


def test_stream_errors_on_unknown_or_stopped_names_at_once(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("stopped", "true")
    unknown = cli("stats", "nosuch", timeout=10)
    assert unknown.returncode == 125 and "no such container" in unknown.stderr and unknown.stdout == ""
    deadline = time.monotonic() + 10
    while json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout)[0]["status"] != "exited":
        assert time.monotonic() < deadline, "the container did not end"
        time.sleep(0.05)
    stopped = cli("stats", "stopped", timeout=10)
    assert stopped.returncode == 125 and "not running" in stopped.stderr
