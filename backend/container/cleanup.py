"""Ending containers for good: recording a dead one as exited (reconcile) and removing one.

Everything that lists or acts on containers reconciles first, so a container whose supervisor or CLI
was killed, or that a reboot ended, is never shown running and never keeps what it held.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.container.launch import Launch
from rustainer.backend.container.liveness import (
    is_alive,
    is_starting,
    owner_alive,
    reopen_cgroup,
    supervisor_of,
    wait_until_exited,
)
from rustainer.backend.container.state import (
    CREATED,
    DAMAGED,
    EXITED,
    RUNNING,
    ContainerState,
    StateStore,
    boot_id,
)
from rustainer.backend.errors import ContainerNotFoundError, RustainerError
from rustainer.backend.util.record import replace


def reconcile(store: StateStore, state: ContainerState) -> ContainerState:
    """Make a recorded "running" container that is gone (its supervisor or CLI was killed, or the host
    rebooted) an exited one, and release what it held. Everything that lists or acts on containers
    calls this first, so there are no running ghosts.

    Two kinds of entry are removed outright (ContainerNotFoundError is raised: there is no such
    container any more): a start whose owner died before the container ran (status "created", its
    creator gone: a kill -9 of the CLI, the supervisor or the host in the middle of a start), and a
    ``--rm`` container whose owner died (nobody else would ever remove it)."""
    if state.status == CREATED:
        if state.owner_pid is None or owner_alive(state):
            return state  # being started
        still = _remove_abandoned(store, state)
        if still is not None:
            return reconcile(store, still)
        raise ContainerNotFoundError(f"no such container: {state.name}", container=state.name)
    if state.status != RUNNING or is_alive(state) or owner_alive(state):
        return state  # running, or its owner is about to record the end itself
    # The owner may have recorded the end (and exited) since ``state`` was read: read it again. Now
    # that the owner is seen gone, whatever it wrote is on disk, so this read cannot miss it.
    try:
        state = store.load(state.id)
    except RustainerError:
        return replace(state, status=EXITED, pid=None)  # ended and removed meanwhile (``--rm``)
    if state.status != RUNNING:
        return state
    launch = Launch(store, state)
    manager = reopen_cgroup(state) if state.boot_id == boot_id() else None
    if manager is not None and manager.exists():
        manager.kill_all(9)  # stragglers, e.g. an exec'd process outside the PID namespace's reach
        launch.cgroup = manager
    oom = launch.oom_killed()
    launch.release()
    code = state.exit_code if state.exit_code is not None else 137
    why = "the host rebooted" if state.boot_id != boot_id() else "its supervisor or CLI was killed"
    if state.spec.remove:
        launch.discard()  # --rm: its owner would have removed it
        raise ContainerNotFoundError(f"no such container: {state.name}", container=state.name)
    state = store.update(state, status=EXITED, pid=None, supervisor_pid=None, exit_code=code, oom_killed=oom,
                         finished_at=state.finished_at or time.time(), error=f"lost: {why}")
    return state


def _remove_abandoned(store: StateStore, state: ContainerState) -> ContainerState | None:
    """A start whose owner died half-way: end what it forked (in its cgroup), and undo every step
    it may have reached - cgroup (found by its default name if it was not recorded yet), network
    lease and links, state entry, name and folder - each even if another fails. None once it is
    gone; the current state if it was not abandoned after all (a supervisor took it over)."""
    me = os.getpid()
    from rustainer.backend.linux.procfs import start_time

    taken = store.take_over(state, (me, start_time(me) or 0))
    if taken is None:
        # Gone, or a supervisor took the start over from its dead CLI: not abandoned after all.
        try:
            return store.load(state.id)
        except ContainerNotFoundError:
            return None
    state = taken
    launch = Launch(store, state)
    manager = reopen_cgroup(state)
    if manager is None and state.boot_id == boot_id():
        from rustainer.backend.cgroups.detect import open_manager

        try:
            manager = open_manager(state.short_id, driver=state.spec.cgroup_driver, parent=state.spec.cgroup_parent)
        except RustainerError:
            manager = None
    if manager is not None and manager.exists():
        manager.kill_all(9)
        launch.cgroup = manager
    launch.remove_everything()
    return None


def _stop_through_supervisor(store: StateStore, state: ContainerState) -> bool:
    """Ask a detached container's supervisor to end it and clean up; False if there is none."""
    import signal

    supervisor = supervisor_of(state)
    if supervisor is None:
        return False
    os.kill(supervisor, signal.SIGTERM)
    return wait_until_exited(store, state, 10.0)


def remove_container(store: StateStore, state: ContainerState, *, force: bool = False) -> None:
    """``rm``: refuse a live container unless forced; release what is left; forget it."""
    if state.status == DAMAGED:
        _remove_damaged(store, state, force=force)
        return
    try:
        state = reconcile(store, state)
    except ContainerNotFoundError:
        return  # abandoned: reconciling removed it
    if is_alive(state) or is_starting(state):
        if not force:
            raise RustainerError(f"container {state.name} is running: stop it first or use rm -f")
        if _stop_through_supervisor(store, state):
            try:
                state = store.load(state.id)
            except RustainerError:
                return  # it was started with --rm: the supervisor removed it already
        else:
            manager = reopen_cgroup(state)
            assert manager is not None and state.pid is not None
            try:
                os.kill(state.pid, 9)
            except ProcessLookupError:
                pass
            manager.kill_all(9)
    launch = Launch(store, state)
    launch.cgroup = reopen_cgroup(state)
    if launch.cgroup is not None and not launch.cgroup.exists():
        launch.cgroup = None
    launch.remove_everything()


def _remove_damaged(store: StateStore, state: ContainerState, *, force: bool) -> None:
    """A container whose state cannot be read: what it may hold is found where rustainer puts it by
    default (its cgroup ``rustainer-<id>`` beside ours, its leases by id). Processes still running
    in that cgroup are ended only with ``-f``."""
    from rustainer.backend.cgroups.detect import open_manager
    from rustainer.backend.network import manager as networks
    from rustainer.backend.network.store import NetworkStore

    def end_cgroup() -> None:
        cgroup = open_manager(state.short_id)
        if not cgroup.exists():
            return
        if cgroup.pids() and not force:
            raise RustainerError(f"container {state.name} (damaged state) still has processes: use rm -f",
                                 container=state.name)
        cgroup.kill_all(9)
        cgroup.remove()

    def leave_networks() -> None:
        net_store = NetworkStore(store.root)
        for name in net_store.names():
            if state.id in networks.member_ids(store.root, name):
                networks.leave(store.root, name, state.id)

    end_cgroup()  # refused while it runs and -f was not given: then nothing else is touched
    leave_networks()
    store.delete(state)  # last: if anything above failed, the entry stays and rm can be retried

