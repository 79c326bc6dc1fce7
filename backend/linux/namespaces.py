"""Forking into a PID namespace while the parent stays in its own.

Python 3.11 has no clone(); a PID namespace applies to the *children* of the process that enters it
(unshare or setns with CLONE_NEWPID sets "pid_for_children"). So the parent enters it just for one
fork and switches straight back, by a descriptor of its own namespace: every later fork (the relay,
subprocesses) happens in the host's namespace again.
"""

from __future__ import annotations

import gc
import os

from rustainer.backend.linux import syscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def fork_into_pid_namespace(child: Callable[[], None], target: int | None = None, *, sibling: bool = False) -> int:
    """Fork a process into a new PID namespace (``target`` None: it becomes its PID 1) or into the
    namespace ``target`` (a descriptor, for exec); it runs ``child()`` and never returns. Its pid.
    ``sibling``: it becomes our parent's child instead of ours (CLONE_PARENT; single-threaded
    callers only, see syscalls.clone_fork)."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if target is None:
            syscalls.unshare(syscalls.CLONE_NEWPID)
        else:
            syscalls.setns(target, syscalls.CLONE_NEWPID)
        try:
            pid = _frozen_fork(lambda: syscalls.clone_fork(syscalls.CLONE_PARENT)) if sibling else _frozen_fork(os.fork)
        except BaseException:
            syscalls.setns(own, syscalls.CLONE_NEWPID)
            raise
        if pid == 0:  # pragma: no cover - the child reports through its own pipe
            _run_and_exit(child, 125)
        syscalls.setns(own, syscalls.CLONE_NEWPID)
        return pid
    finally:
        os.close(own)


def fork_child(child: Callable[[], None], target: int | None = None, *, new_namespace: bool = True) -> int:
    """``fork_into_pid_namespace`` when a PID namespace is to be made (``new_namespace``) or
    joined (``target``), else a plain fork that stays in ours; the child runs ``child()`` and
    never returns. Our pid."""
    if new_namespace or target is not None:
        return fork_into_pid_namespace(child, target)
    pid = _frozen_fork(os.fork)
    if pid == 0:  # pragma: no cover - the child reports through its own pipe
        _run_and_exit(child, 1)
    return pid


def clone_into_pid_namespace(child: Callable[[], None], cgroup_fd: int, *, sibling: bool = False) -> int | None:
    """``fork_into_pid_namespace(child)`` with the new PID 1 started straight in the cgroup2
    directory ``cgroup_fd`` (clone3 with CLONE_INTO_CGROUP, Linux 5.7): nobody moves it there
    afterwards (a move waits on the kernel's global threadgroup lock). None where that cannot be
    done (an older kernel, a directory that is not cgroup2, other threads in this process): then
    nothing was started, and the caller forks and moves the child as before. ``sibling``: as for
    ``fork_into_pid_namespace``."""
    if not syscalls.single_threaded():
        return None
    flags = syscalls.CLONE_NEWPID | (syscalls.CLONE_PARENT if sibling else 0)
    try:
        pid = _frozen_fork(lambda: syscalls.fork_into_cgroup(flags, cgroup_fd))
    except OSError:
        return None
    if pid == 0:  # pragma: no cover - the child reports through its own pipe
        _run_and_exit(child, 125)
    return pid


def _run_and_exit(child: Callable[[], None], code: int) -> None:
    """In a forked child: run ``child()``, which should exec or exit by itself; if it returns or
    raises, leave with ``code`` (never back into the parent's code)."""
    try:
        child()
    finally:
        os._exit(code)


def _frozen_fork(fork: Callable[[], int]) -> int:
    """``fork()`` with every object that exists at the fork frozen for the child's garbage collector
    (``gc.freeze``), and given back to the parent's at once (``gc.unfreeze``: into its oldest
    generation, in constant time).

    Why: after a fork each page either process writes is copied (3-5 us each here), and a collection
    writes to the header of every object it looks at. The child (the container's setup, a copy of
    the whole CLI) allocates enough on its way to the exec to run one: a young-generation
    collection then looked at every object the parent had made since its start (most of its heap)
    and copied page after page; frozen, it sees only the child's own objects. A process whose heap
    is frozen already (a supervisor, forked from the launcher that froze its own: see
    supervisor.zygote) forks as it is: unfreezing would hand the launcher's shared objects to its
    collector.
    """
    if gc.get_freeze_count():
        return fork()
    gc.freeze()
    pid = -1
    try:
        pid = fork()
    finally:
        if pid != 0:
            gc.unfreeze()
    return pid
