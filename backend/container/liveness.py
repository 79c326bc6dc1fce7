"""Is a container running, and is whoever records its end still there? One place answers, from
the state, the container's cgroup and /proc (``linux.procfs``), for every verb, the dashboard and
the supervisor.

A recorded pid is trusted only together with what proves it is the same process: the boot id, the
cgroup it must be in, its recorded start time, or its parent.
"""

from __future__ import annotations

import time

from rustainer.backend.container.state import RUNNING, ContainerState, StateStore, boot_id
from rustainer.backend.errors import RustainerError
from rustainer.backend.linux import procfs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    from rustainer.backend.cgroups.base import CgroupManager


def reopen_cgroup(state: ContainerState) -> CgroupManager | None:
    """The container's cgroup manager from its stored driver and paths (None if it never had one)."""
    if state.cgroup_driver is None:
        return None
    from rustainer.backend.cgroups.detect import open_manager

    return open_manager(state.short_id, driver=state.cgroup_driver, parent=state.spec.cgroup_parent,
                        paths=dict(state.cgroup_paths) or None, made_parents=state.cgroup_parents)


def is_alive(state: ContainerState) -> bool:
    """Running for real: same boot, and the recorded pid is still in the container's cgroup."""
    if state.status != RUNNING or state.pid is None or state.boot_id != boot_id():
        return False
    manager = reopen_cgroup(state)
    try:
        return manager is not None and state.pid in manager.pids()
    except RustainerError:
        return False


def is_starting(state: ContainerState) -> bool:
    """Recorded running, but its PID 1 has not joined its cgroup yet: with cgroup v1 it joins itself
    once its root is built, after the owner recorded it running. Not a dead container: the owner is
    alive and the pid is still its child (so not a reused pid)."""
    if state.status != RUNNING or state.pid is None or not owner_alive(state):
        return False
    return procfs.parent(state.pid) == state.owner_pid and procfs.running(state.pid)


def process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (recorded to recognise it later)."""
    return procfs.start_time(pid)


def owner_alive(state: ContainerState) -> bool:
    """The CLI or supervisor that owns the container still runs (same boot, same process)."""
    if state.owner_pid is None or state.owner_start is None or state.boot_id != boot_id():
        return False
    return procfs.running(state.owner_pid, state.owner_start)


def supervisor_of(state: ContainerState) -> int | None:
    """The live supervisor's pid, checked as the parent of the container's PID 1 (never a reused pid)."""
    if not state.detached or state.supervisor_pid is None or state.pid is None:
        return None
    return state.supervisor_pid if procfs.parent(state.pid) == state.supervisor_pid else None


def owner_pid(state: ContainerState) -> int | None:
    """Who records the end: the supervisor, or for a foreground container its PID 1's parent (the CLI)."""
    if state.supervisor_pid is not None:
        return state.supervisor_pid
    if state.pid is None:
        return None
    ppid = procfs.parent(state.pid)
    return ppid if ppid else None


def pid_alive(pid: int | None) -> bool:
    """Exists and is not a zombie (a zombie owner will never record anything)."""
    return procfs.running(pid)


def wait_until_exited(store: StateStore, state: ContainerState, timeout: float) -> bool:
    """Poll the state until the owner recorded the end (or removed the container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if store.load(state.id).status != RUNNING:
                return True
        except RustainerError:
            return True
        time.sleep(0.02)
    return False
