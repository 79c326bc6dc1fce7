"""The start handshake's messages (pure functions; the handshake itself runs in every container test)."""

from __future__ import annotations

import os

import pytest

from rustainer.backend.process.handshake import READY, decode_go, encode_go, read_all, split_report


@pytest.mark.parametrize("size", [b"", bytes(range(8))])
@pytest.mark.parametrize("files", [(), ("/sys/fs/cgroup/memory/a/tasks",), ("/x/tasks", "/y b/tasks")])
def test_the_go_comes_back_as_it_was_sent(size: bytes, files: tuple[str, ...]) -> None:
    assert decode_go(encode_go(size, files)) == (size, files)


@pytest.mark.parametrize("data", [b"", b"1", b"0\x00", b"1\x08abc", b"x" * 20])
def test_anything_else_is_no_go(data: bytes) -> None:
    # EOF (the parent gave up) or a cut message must never start the container.
    assert decode_go(data) is None


def test_the_report_drops_the_ready_mark_only() -> None:
    assert split_report(READY) == b""
    assert split_report(READY + b"127\0sh: not found") == b"127\0sh: not found"
    assert split_report(b"125\0setup failed") == b"125\0setup failed"  # failed before it was ready


def test_read_all_reads_to_eof() -> None:
    r, w = os.pipe()
    os.write(w, b"a" * 5000)
    os.close(w)
    try:
        assert read_all(r) == b"a" * 5000
    finally:
        os.close(r)
