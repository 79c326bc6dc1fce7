"""The supervisor's pure parts: frames in any chunking, detach keys, the rotating log, log tails."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rustainer.backend.container.logfile import RotatingLog, log_files
from rustainer.backend.container.logs import tail_bytes
from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.supervisor import protocol as P
from rustainer.backend.supervisor.client import DetachMatcher, parse_detach_keys


def test_frames_survive_any_chunking() -> None:
    frames = [(P.HELLO, b"r\x00\x18\x00\x50"), (P.INPUT, b"hello"), (P.INPUT, b""),
              (P.RESIZE, b"\x00\x18\x00\x50"), (P.INPUT, bytes(range(256)) * 50), (P.DETACH, b"")]
    stream = b"".join(P.frame(k, v) for k, v in frames)
    rng = random.Random(7)
    for _ in range(50):
        decoder = P.Decoder(P.FROM_CLIENT)
        got = []
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 40)
            got += decoder.feed(stream[pos:pos + step])
            pos += step
        assert got == frames


def test_oversized_frame_is_refused() -> None:
    with pytest.raises(P.ProtocolError):
        P.Decoder(P.FROM_SUPERVISOR).feed(b"O" + (P.MAX_FRAME + 1).to_bytes(4, "big"))


def test_hello_and_resize_carry_the_size() -> None:
    (kind, payload), = P.Decoder(P.FROM_CLIENT).feed(P.hello(P.MODE_REPAINT, 30, 100))
    assert kind == P.HELLO and P.parse_hello(payload) == (P.MODE_REPAINT, 30, 100)
    assert P.parse_hello(P.MODE_NONE) == (P.MODE_NONE, 0, 0)  # the size is optional
    (kind, payload), = P.Decoder(P.FROM_CLIENT).feed(P.resize(40, 120))
    assert kind == P.RESIZE and P.parse_size(payload) == (40, 120)
    (kind, payload), = P.Decoder(P.FROM_SUPERVISOR).feed(P.frame(P.EXIT, b"137"))
    assert kind == P.EXIT and P.parse_exit(payload) == 137


def _raw(kind: bytes, payload: bytes, length: int | None = None) -> bytes:
    return kind + (len(payload) if length is None else length).to_bytes(4, "big") + payload


@pytest.mark.parametrize(("accepts", "data"), [
    (P.FROM_CLIENT, b"garbage, not a frame"),
    (P.FROM_CLIENT, _raw(P.RESIZE, b"\x00\x18")),  # short: once a struct.error that ended the supervisor
    (P.FROM_CLIENT, _raw(P.RESIZE, b"\x00\x18\x00\x50\x00")),
    (P.FROM_CLIENT, _raw(P.RESIZE, b"\x10\x01\x00\x50")),  # 4097 rows
    (P.FROM_CLIENT, _raw(P.HELLO, b"")),
    (P.FROM_CLIENT, _raw(P.HELLO, b"x")),
    (P.FROM_CLIENT, _raw(P.HELLO, b"r\x00\x18")),
    (P.FROM_CLIENT, _raw(P.DETACH, b"x")),
    (P.FROM_CLIENT, _raw(P.INPUT, b"", P.MAX_INPUT + 1)),  # refused at the header, before the payload
    (P.FROM_CLIENT, _raw(P.OUTPUT, b"x")),  # the other side's kinds
    (P.FROM_SUPERVISOR, _raw(P.INPUT, b"x")),
    (P.FROM_SUPERVISOR, _raw(P.EXIT, b"")),
    (P.FROM_SUPERVISOR, _raw(P.EXIT, b"-1")),
    (P.FROM_SUPERVISOR, _raw(P.EXIT, b"256")),
    (P.FROM_SUPERVISOR, _raw(P.EXIT, b"\xd9\xa3")),  # not ASCII digits
    (P.FROM_SUPERVISOR, _raw(P.SNAPSHOT, b"", 0xFFFFFFFF)),
])
def test_every_broken_frame_is_a_protocol_error(accepts: dict[bytes, tuple[int, int]], data: bytes) -> None:
    good = P.frame(P.INPUT, b"ok") if accepts is P.FROM_CLIENT else P.frame(P.OUTPUT, b"ok")
    decoder = P.Decoder(accepts)
    assert decoder.feed(good) == [(good[:1], b"ok")]
    with pytest.raises(P.ProtocolError):
        decoder.feed(data)


@pytest.mark.parametrize(("spec", "keys"), [("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a,d", b"\x01d"),
                                            ("ctrl-\\", b"\x1c"), ("ctrl-@,q", b"\x00q")])
def test_detach_keys_parse_docker_format(spec: str, keys: bytes) -> None:
    assert parse_detach_keys(spec) == keys


@pytest.mark.parametrize("spec", ["", "ctrl-", "ctrl-pp", "alt-x", "ctrl-1"])
def test_bad_detach_keys_are_refused(spec: str) -> None:
    with pytest.raises(InvalidSpecError):
        parse_detach_keys(spec)


def test_detach_matcher_passes_everything_but_the_sequence() -> None:
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"ls\r") == (b"ls\r", False)
    assert m.feed(b"\x10") == (b"", False)  # held: it may be the start of the sequence
    assert m.feed(b"a") == (b"\x10a", False)  # not the sequence: both go to the shell at once
    assert m.feed(b"\x10\x10") == (b"\x10", False)
    assert m.flush() == b"\x10"  # a lone prefix goes through after the pause
    assert m.feed(b"x\x10\x11y") == (b"x", True)


def test_rotating_log_caps_and_keeps_order(tmp_path: Path) -> None:
    path = str(tmp_path / "container.log")
    log = RotatingLog(path, max_bytes=100, keep=2)
    for i in range(60):
        log.write(f"line {i:03d}\n".encode())
    log.close()
    files = log_files(path, keep=2)
    assert files == [f"{path}.2", f"{path}.1", path]
    assert all(Path(f).stat().st_size <= 100 for f in files)
    joined = b"".join(Path(f).read_bytes() for f in files).decode().splitlines()
    numbers = [int(line.split()[1]) for line in joined]
    assert numbers == list(range(numbers[0], 60)) and numbers[0] > 0  # oldest dropped, order kept


def test_tail_reads_across_rotated_files(tmp_path: Path) -> None:
    path = str(tmp_path / "container.log")
    log = RotatingLog(path, max_bytes=50, keep=3)
    for i in range(20):
        log.write(f"l{i}\n".encode())
    log.close()
    assert tail_bytes(path, 3) == b"l17\nl18\nl19\n"
    assert tail_bytes(path, 0) == b""
    assert tail_bytes(path, None).endswith(b"l19\n")
    assert tail_bytes(str(tmp_path / "missing.log"), 5) == b""
