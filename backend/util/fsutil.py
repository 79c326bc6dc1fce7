"""Removing folder trees without ``shutil`` (whose import pulls ``fnmatch`` and ``re``)."""

from __future__ import annotations

import os
import stat


def remove_tree(path: str) -> None:
    """Like ``shutil.rmtree(path, ignore_errors=False)`` but never follows symlinks and tolerates absence.

    Works on descriptors (``dir_fd``), so a symlink planted inside the tree is unlinked, never
    followed out of it.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _clear(fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _clear(dir_fd: int) -> None:
    with os.scandir(dir_fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        if is_dir:
            os.chmod(name, 0o700, dir_fd=dir_fd)  # overlayfs leaves work/work with mode 000
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                _clear(sub)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
