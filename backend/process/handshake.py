"""The start handshake between the parent and the container's PID 1 (its child), on two pipes.

The parent forks first, and both sides then work at once: the child builds its namespaces and root,
the parent creates the cgroup and records the container. Child -> parent, on the error pipe:
``READY`` once its namespaces exist (the parent may then plug in a network), then either nothing
(the exec closed the pipe: the command runs) or ``<exit code>\\0<message>``. Parent -> child, on the
sync pipe: the go (``encode_go``), or EOF if the parent gave up. Kept apart from ``child`` so the
parent needs none of the child's imports.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import CgroupError

READY = b"R"


def encode_go(window_size: bytes, join_files: tuple[str, ...] | list[str]) -> bytes:
    """The go: the terminal size for the container's pty (8 bytes of ``struct winsize``, or none)
    and the cgroup files the child writes ``0`` into to join it (none where the parent moved it)."""
    if len(window_size) > 255:
        raise ValueError("window size too long")
    return b"1" + bytes((len(window_size),)) + window_size + "\0".join(join_files).encode()


def decode_go(data: bytes) -> tuple[bytes, tuple[str, ...]] | None:
    """``encode_go``'s message back, or None for anything else (EOF: the parent gave up)."""
    if len(data) < 2 or data[:1] != b"1" or len(data) < 2 + data[1]:
        return None
    size = data[1]
    rest = data[2 + size:]
    return data[2:2 + size], tuple(rest.decode().split("\0")) if rest else ()


def split_report(data: bytes) -> bytes:
    """The child's failure report from all it wrote on the error pipe (empty: the exec worked)."""
    return data[1:] if data.startswith(READY) else data


def read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data


def open_join_files(paths: tuple[str, ...] | list[str]) -> tuple[int, ...]:
    """Open the cgroup files the go names (or an exec's child will write to), while the host's
    cgroup folders are still in reach; all closed again if one fails."""
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
    except OSError as err:
        for fd in fds:
            os.close(fd)
        raise CgroupError(f"cannot open {err.filename} to join the container's cgroup: {err.strerror}") \
            from err
    return tuple(fds)
