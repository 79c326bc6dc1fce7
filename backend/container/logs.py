"""``rustainer logs``: the container's recorded output, whole, its tail, or followed live."""

from __future__ import annotations

import os
import time

from rustainer.backend.container.logfile import log_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from rustainer.backend.container.state import ContainerState, StateStore

POLL = 0.1


def require_log(state: ContainerState) -> None:
    """Only a supervisor logs: a foreground run's output went straight to its caller."""
    if not state.detached:
        from rustainer.backend.errors import ContainerStateError

        raise ContainerStateError(f"{state.name} ran in the foreground: its output went to the terminal "
                                  "that ran it and was not logged (containers started with --detach are)")


def tail_bytes(path: str, lines: int | None) -> bytes:
    """All recorded output (rotated copies first), or only its last ``lines`` lines."""
    data = b""
    for name in reversed(log_files(path)):
        with open(name, "rb") as f:
            data = f.read() + data
        if lines is not None and data.count(b"\n") > lines:
            break
    if lines is None:
        return data
    if lines == 0:
        return b""
    cut = len(data)
    if data.endswith(b"\n"):
        cut -= 1
    for _ in range(lines):
        cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            return data
    return data[cut + 1:]


def follow(store: StateStore, state: ContainerState, out: BinaryIO) -> None:
    """Print output as it is logged until the container has ended and everything is shown."""
    path = store.log_path(state.id)
    fd = _open(path)
    position = os.fstat(fd).st_size if fd >= 0 else 0
    last_check = 0.0
    running = True
    try:
        while True:
            fd, position, got = _read_new(path, fd, position, out)
            now = time.monotonic()
            if not got and now - last_check > 0.5:
                last_check = now
                try:
                    running = store.load(state.id).status == "running"
                except Exception:  # noqa: BLE001 - removed while we followed
                    running = False
                if not running:
                    _read_new(path, fd, position, out)
                    return
            if not got:
                time.sleep(POLL)
    finally:
        if fd >= 0:
            os.close(fd)


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1


def _read_new(path: str, fd: int, position: int, out: BinaryIO) -> tuple[int, int, bool]:
    got = False
    if fd < 0:
        fd = _open(path)
        position = 0
        if fd < 0:
            return fd, position, False
    while chunk := os.pread(fd, 65536, position):
        out.write(chunk)
        position += len(chunk)
        got = True
    if got:
        out.flush()
    try:
        st = os.stat(path)
        if st.st_ino != os.fstat(fd).st_ino:  # rotated: continue with the new file from its start
            os.close(fd)
            fd, position = _open(path), 0
            return fd, position, True
    except FileNotFoundError:
        pass
    return fd, position, got
