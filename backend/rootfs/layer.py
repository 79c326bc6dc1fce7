"""Reach a running container's writable layer from the host (for ``commit``).

The layer is a tmpfs that exists only in the container's mount namespace; its overlay upper folder
is bound read-only at ``LAYER_PATH`` there, under an empty read-only tmpfs (see rootfs/plan.py). A
forked helper enters that namespace, unshares a private copy of it (the container's mounts are
private: nothing done in the copy reaches the container), unmounts the cover in the copy, opens the
upper folder and hands the descriptor to us over a socket pair (SCM_RIGHTS), then exits. The
descriptor keeps that bind mount alive after the copy is gone; everything after is done through it,
relative to it, never by a path the container could redirect.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import RootfsError
from rustainer.backend.linux import syscalls
from rustainer.backend.rootfs.plan import LAYER_PATH


def open_upper(pid: int) -> int:
    """A read-only directory descriptor of the container's (whose PID 1 is ``pid``) overlay upper
    folder; the caller closes it."""
    import socket

    try:
        ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise RootfsError(f"cannot reach the container's mount namespace: {err.strerror}") from err
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        helper = os.fork()
        if helper == 0:  # pragma: no cover - the forked helper
            code = 1
            try:
                parent.close()
                syscalls.setns(ns, syscalls.CLONE_NEWNS)
                syscalls.unshare(syscalls.CLONE_NEWNS)
                # The copy's root and cwd are the container's root: LAYER_PATH is in its /dev, a
                # read-only tmpfs of ours the container can change nothing in.
                syscalls.umount2(LAYER_PATH, syscalls.MNT_DETACH)
                fd = os.open(LAYER_PATH, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                socket.send_fds(child, [b"L"], [fd])
                code = 0
            except BaseException as err:  # noqa: BLE001 - told to the parent as one line
                try:
                    child.sendall(b"E" + str(getattr(err, "strerror", None) or err).encode(errors="replace"))
                except OSError:
                    pass
            finally:
                os._exit(code)
        child.close()
        try:
            msg, fds, _flags, _addr = socket.recv_fds(parent, 4096, 1)
        finally:
            os.waitpid(helper, 0)
        if not fds:
            detail = msg[1:].decode(errors="replace") if msg.startswith(b"E") else "the helper ended"
            raise RootfsError(f"cannot reach the container's writable layer: {detail} (a container started "
                              "before rustainer could commit has to be started again)")
        return fds[0]
    finally:
        os.close(ns)
        parent.close()
        if child.fileno() >= 0:
            child.close()
