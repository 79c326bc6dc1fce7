"""Which shell a running container has: bash, else sh (the dashboard's second shell, ``exec``).

Looked up in the container's own root (``/proc/PID/root`` of its PID 1), in the usual folders of a
PATH, with the image's symlinks resolved as the container would (``/bin`` -> ``usr/bin`` in a
merged-/usr image, ``/bin/sh`` -> ``busybox``) but never leaving its root
(``rootfs.safepath.resolve_in_root``). Only a look: nothing is opened for writing or run here; the
shell found is then started by ``exec`` inside the container, where the image's own view decides.
"""

from __future__ import annotations

import os
import stat

from rustainer.backend.rootfs.safepath import resolve_in_root

SHELLS = ("bash", "sh")
PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def find_shell(pid: int, shells: tuple[str, ...] = SHELLS) -> str | None:
    """The path (inside the container) of the first of ``shells`` found executable, or None."""
    root = f"/proc/{pid}/root"
    for name in shells:
        for folder in PATH:
            path = f"{folder}/{name}"
            if _is_executable(root, path):
                return path
    return None


def _is_executable(root: str, path: str) -> bool:
    try:
        host = resolve_in_root(root, path)
        if host is None:
            return False
        st = os.stat(host, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
