"""Removing folder trees without ``shutil`` (whose import pulls ``fnmatch`` and ``re``)."""

from __future__ import annotations

import errno
import os
import stat


def remove_tree(path: str) -> None:
    """Like ``shutil.rmtree(path, ignore_errors=False)`` but never follows symlinks and tolerates absence.

    Works on descriptors (``dir_fd``), so a symlink planted inside the tree is unlinked, never
    followed out of it. Another process may still write into the tree (a supervisor saving its
    state while ``rm -f`` removes it): entries that vanish meanwhile are fine, and a folder that
    gained an entry is cleared again (a few times) before it is removed.
    """
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        for attempt in range(5):
            _clear(fd)
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError as err:
                if err.errno != errno.ENOTEMPTY or attempt == 4:
                    raise
    finally:
        os.close(fd)


def _clear(dir_fd: int) -> None:
    with os.scandir(dir_fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        try:
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
        except FileNotFoundError:
            pass  # gone meanwhile (renamed into place or removed by its writer)
