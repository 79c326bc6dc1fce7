"""Resolve paths inside a container root without ever following a symlink.

An image is untrusted: if its ``/proc`` were a symlink to ``/etc``, a naive ``mount`` onto
``root + "/proc"`` would cover the host's ``/etc`` (the class of bug behind several runc CVEs). We walk
one component at a time with ``O_PATH | O_NOFOLLOW`` from a descriptor of the root, refuse symlinks
and ``..``, and hand the kernel ``/proc/self/fd/N`` so the mount lands on exactly what we checked.
"""

from __future__ import annotations

import os
import stat

from rustainer.backend.errors import RootfsError

_O_PATH = getattr(os, "O_PATH", 0o10000000)
_DIR_FLAGS = _O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


def _parts(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise RootfsError(f"refusing path {path!r}: '..' is not allowed inside the container root")
    return parts


def _step(dir_fd: int, name: str, path: str, create: bool, mode: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(name, mode, dir_fd=dir_fd)
        except FileExistsError:
            pass
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except (NotADirectoryError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise RootfsError(f"refusing to follow the symlink {path!r} inside the container root") from None
        raise RootfsError(f"{path!r} inside the container root is not a directory") from None


def open_dir(root_fd: int, path: str, *, create: bool = False, mode: int = 0o755) -> int:
    """An O_PATH descriptor of directory ``path`` under ``root_fd``, creating missing parts if asked."""
    fd = os.dup(root_fd)
    try:
        for name in _parts(path):
            nxt = _step(fd, name, path, create, mode)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_parent(root_fd: int, path: str, *, create: bool = False) -> tuple[int, str]:
    """(descriptor of the parent directory, last component) for ``path`` under ``root_fd``."""
    parts = _parts(path)
    if not parts:
        raise RootfsError("the container root itself has no parent")
    return open_dir(root_fd, "/".join(parts[:-1]), create=create), parts[-1]


def open_any(root_fd: int, path: str) -> int:
    """An O_PATH descriptor of file or directory ``path`` (not a symlink) under ``root_fd``."""
    parent, name = open_parent(root_fd, path)
    try:
        fd = os.open(name, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    finally:
        os.close(parent)
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise RootfsError(f"refusing to follow the symlink {path!r} inside the container root")
    return fd


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def resolve_in_root(root: str, path: str, limit: int = 40) -> str | None:
    """Follow symlinks in ``path`` as if ``root`` were ``/`` (like RESOLVE_IN_ROOT): host path or None.

    Used only to *look* into an image (does it have a shell?), never to write or mount.
    """
    pending = [p for p in path.split("/") if p and p != "."]
    current: list[str] = []
    hops = 0
    while pending:
        name = pending.pop(0)
        if name == "..":
            if current:
                current.pop()
            continue
        candidate = os.path.join(root, *current, name)
        if os.path.islink(candidate):
            hops += 1
            if hops > limit:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            pending = [p for p in target.split("/") if p and p != "."] + pending
            continue
        if not os.path.lexists(candidate):
            return None
        current.append(name)
    return os.path.join(root, *current)
