"""The container's output log: appended as it comes, capped, rotated (like docker's json-file
``max-size``/``max-file``, but raw bytes so ``logs`` shows exactly what the terminal showed)."""

from __future__ import annotations

import os

DEFAULT_MAX_BYTES = 8 << 20
DEFAULT_KEEP = 2


class RotatingLog:
    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        while data:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            chunk, data = data[:room], data[room:]
            os.write(self._fd, chunk)
            self._size += len(chunk)

    def _rotate(self) -> None:
        os.close(self._fd)
        for i in range(self.keep, 0, -1):
            src = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = 0

    def close(self) -> None:
        os.close(self._fd)


def log_files(path: str, keep: int = DEFAULT_KEEP) -> list[str]:
    """The log and its rotated copies, oldest first."""
    files = [f"{path}.{i}" for i in range(keep, 0, -1)] + [path]
    return [f for f in files if os.path.exists(f)]
