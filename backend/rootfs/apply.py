"""Carry out a rootfs plan inside the container's (already private) mount namespace."""

from __future__ import annotations

import os
import stat

from rustainer.backend.errors import RootfsError
from rustainer.backend.linux import syscalls
from rustainer.backend.rootfs.plan import Op
from rustainer.backend.rootfs.safepath import fd_path, open_any, open_dir, open_parent

_O_PATH = getattr(os, "O_PATH", 0o10000000)


def apply_plan(root: str, ops: list[Op]) -> None:
    """Run every op; ``root`` is the host path of the (empty) folder that becomes ``/``."""
    old_umask = os.umask(0)
    root_fd = -1
    try:
        if ops and ops[0].target != "/":  # a plan for a root that is already there (the OCI runtime's late steps)
            root_fd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        for op in ops:
            if op.target == "/":
                _root_op(root, op)
                if root_fd >= 0:
                    os.close(root_fd)
                root_fd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                continue
            try:
                _apply(root_fd, op)
            except RootfsError:
                raise
            except OSError as err:
                raise RootfsError(f"setting up {op.target} in the container ({op.action}) failed: {err.strerror}", path=op.target, errno=err.errno) from err
    finally:
        os.umask(old_umask)
        if root_fd >= 0:
            os.close(root_fd)


def _root_op(root: str, op: Op) -> None:
    try:
        if op.cwd is not None:
            os.chdir(op.cwd)  # relative lower folders (an image's short links) resolve from here
        syscalls.mount(op.source, root, op.fstype, op.flags, op.data)
    except OSError as err:
        what = "the overlay root" if op.fstype == "overlay" else "the container root"
        raise RootfsError(f"mounting {what} failed: {err.strerror}", errno=err.errno) from err


def _exists(root_fd: int, path: str) -> bool:
    try:
        os.close(open_any(root_fd, path))
        return True
    except FileNotFoundError:
        return False


def _apply(root_fd: int, op: Op) -> None:
    if op.optional and not _exists(root_fd, op.target):
        return
    action = op.action
    if action == "mkdir":
        os.close(open_dir(root_fd, op.target, create=True, mode=op.mode))
    elif action == "symlink":
        parent, name = open_parent(root_fd, op.target, create=True)
        try:
            assert op.source is not None
            try:
                os.symlink(op.source, name, dir_fd=parent)
            except FileExistsError:
                if os.readlink(name, dir_fd=parent) != op.source:
                    raise
        finally:
            os.close(parent)
    elif action == "mknod":
        assert op.device is not None
        parent, name = open_parent(root_fd, op.target)
        try:
            kind = op.mode & 0o170000 or stat.S_IFCHR  # a character device unless the mode names another type
            os.mknod(name, (op.mode & 0o7777) | kind, os.makedev(*op.device), dir_fd=parent)
        finally:
            os.close(parent)
    elif action == "touch":
        _touch(root_fd, op)
    elif action == "mount":
        _with_fd(root_fd, op.target, lambda p: syscalls.mount(op.source, p, op.fstype, op.flags, op.data))
    elif action == "bind":
        assert op.source is not None
        src = os.open(op.source, _O_PATH | os.O_CLOEXEC)
        try:
            _with_fd(root_fd, op.target, lambda p: syscalls.mount(fd_path(src), p, None,
                                                                  syscalls.MS_BIND | syscalls.MS_REC))
        finally:
            os.close(src)
        _remount(root_fd, op.target, syscalls.MS_REMOUNT | syscalls.MS_BIND | op.flags)
    elif action == "overlay_dir":
        _overlay_dir(root_fd, op)
    elif action == "remount":
        _with_fd(root_fd, op.target, lambda p: syscalls.mount(None, p, None, op.flags))
    elif action == "mask_file":
        _with_fd(root_fd, op.target, lambda p: syscalls.mount("/dev/null", p, None, syscalls.MS_BIND))
    elif action == "mask":  # the OCI runtime's maskedPaths: a folder gets an empty read-only tmpfs (as runc
        # mounts it), anything else /dev/null
        fd = open_any(root_fd, op.target)
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        if is_dir:
            _with_fd(root_fd, op.target, lambda p: syscalls.mount("tmpfs", p, "tmpfs", syscalls.MS_RDONLY))
        else:
            _apply(root_fd, Op("mask_file", op.target))
    elif action == "readonly_keep":  # the OCI runtime's readonlyPaths: read-only, the mount's other flags kept
        _with_fd(root_fd, op.target, lambda p: syscalls.mount(p, p, None, syscalls.MS_BIND | syscalls.MS_REC))
        fd = open_any(root_fd, op.target)
        try:
            kept = os.fstatvfs(fd).f_flag & (syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
        finally:
            os.close(fd)
        _remount(root_fd, op.target, syscalls.MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY | kept)
    elif action == "mask_dir":
        _with_fd(root_fd, op.target, lambda p: syscalls.mount(
            "tmpfs", p, "tmpfs", syscalls.MS_RDONLY | syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC,
            "size=0,mode=0555"))
    elif action == "readonly":
        _with_fd(root_fd, op.target, lambda p: syscalls.mount(p, p, None, syscalls.MS_BIND | syscalls.MS_REC))
        _remount(root_fd, op.target, syscalls.MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY
                 | syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
    else:
        raise RootfsError(f"unknown rootfs operation {action!r}")


def _overlay_dir(root_fd: int, op: Op) -> None:
    """Cover folder ``op.target`` with an overlay of host folder ``op.source`` whose writable layer
    is a small tmpfs mounted there first (hidden under the overlay, held by it): what is written
    goes to memory, never to the host."""
    assert op.source is not None
    _with_fd(root_fd, op.target, lambda p: syscalls.mount("rustainer", p, "tmpfs", op.flags, "mode=0755,size=1m"))
    layer = open_dir(root_fd, op.target)
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(layer)  # fchdir works on O_PATH descriptors: upper and work relative to the tmpfs
        for name in ("upper", "work"):
            os.mkdir(name, 0o755)
        data = f"lowerdir={op.source},upperdir=upper,workdir=work"
        syscalls.mount("overlay", fd_path(layer), "overlay", op.flags, data)
    finally:
        os.fchdir(cwd)
        os.close(cwd)
        os.close(layer)


def _touch(root_fd: int, op: Op) -> None:
    """Make ``op.target`` a plain file if it is missing; a symlink there is replaced (in an overlay the
    unlink only hides the image's link in the writable layer), never followed."""
    parent, name = open_parent(root_fd, op.target, create=True)
    try:
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            os.unlink(name, dir_fd=parent)
            st = None
        if st is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(name, flags, op.mode & 0o777, dir_fd=parent))
        elif not stat.S_ISREG(st.st_mode):
            raise RootfsError(f"{op.target} in the container root is not a regular file")
    finally:
        os.close(parent)


def _with_fd(root_fd: int, path: str, fn: object) -> None:
    fd = open_any(root_fd, path)
    try:
        fn(fd_path(fd))  # type: ignore[operator]
    finally:
        os.close(fd)


def _remount(root_fd: int, path: str, flags: int) -> None:
    """Re-resolve after mounting so the remount addresses the new mount, not the folder beneath it."""
    _with_fd(root_fd, path, lambda p: syscalls.mount(None, p, None, flags))
