"""Acting on containers that already run: stop, kill, inspect, stats, top, update.

A container is owned by the process that started it (the foreground CLI, or the supervisor of a
detached one): only the owner reaps its PID 1 and records how it ended. So these verbs signal and
then *wait for the record*, and only call ``reconcile()`` themselves once the owner is gone - doing
it while the owner is still finishing would release the container twice and lose its exit code.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.container.liveness import owner_pid, pid_alive
from rustainer.backend.container.state import CREATED, RUNNING, ContainerState, StateStore
from rustainer.backend.errors import (
    ContainerNotFoundError,
    ContainerStateError,
    InvalidSpecError,
    RustainerError,
)
from rustainer.backend.linux import procfs
from rustainer.backend.util.record import record
from rustainer.backend.util.rollback import fault

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from rustainer.backend.cgroups.base import CgroupManager, CgroupStats
    from rustainer.backend.spec import Resources

DEFAULT_STOP_TIMEOUT = 10.0
START_TIMEOUT = 60.0  # seconds rm -f waits for a start in progress to end
RECORD_TIMEOUT = 10.0  # seconds an owner may take to record the end after SIGKILL
_POLL = 0.02


# ---- finding containers ----------------------------------------------------------------------------


def resolve(store: StateStore, ref: str) -> ContainerState:
    """By name or id, with a dead owner's "running" entry already turned into an exited one."""
    from rustainer.backend.container.cleanup import reconcile

    return reconcile(store, store.find(ref))


def require_running(store: StateStore, ref: str, verb: str) -> ContainerState:
    from rustainer.backend.container.liveness import is_alive

    state = resolve(store, ref)
    if not is_alive(state):
        raise ContainerStateError(f"cannot {verb} container {state.name}: it is not running ({state.status})", container=state.name)
    return state


def manager_of(state: ContainerState) -> CgroupManager:
    from rustainer.backend.container.liveness import reopen_cgroup

    manager = reopen_cgroup(state)
    if manager is None:
        raise ContainerStateError(f"container {state.name} has no cgroup", container=state.name)
    return manager


# ---- stop / kill --------------------------------------------------------------------------------------


def parse_signal(text: str) -> int:
    """``KILL``, ``SIGKILL``, ``kill`` or ``9`` -> 9 (docker's spellings)."""
    import signal

    raw = text.strip()
    if raw.isascii() and raw.isdigit():
        number = int(raw)
        if 1 <= number <= signal.SIGRTMAX:
            return number
        raise InvalidSpecError(f"invalid signal {text!r}: numbers go from 1 to {int(signal.SIGRTMAX)}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidSpecError(f"invalid signal {text!r}: use a name like TERM, SIGHUP or a number") from None


def _wait_recorded(store: StateStore, state: ContainerState, owner: int | None,
                   deadline: float) -> ContainerState | None:
    """Poll until the owner records the end (or removes the entry: None); reconcile a dead owner's
    entry ourselves. Returns the running state if the deadline passes first."""
    from rustainer.backend.container.cleanup import reconcile

    while True:
        try:
            current = store.load(state.id)
        except ContainerNotFoundError:
            return None  # --rm: the owner removed it
        if current.status != RUNNING:
            return current
        if not pid_alive(owner):
            # Re-read: the owner may have recorded the end just before it exited.
            try:
                return reconcile(store, store.load(state.id))
            except ContainerNotFoundError:
                return None
        if time.monotonic() >= deadline:
            return current
        time.sleep(_POLL)


def _signal_pid1(state: ContainerState, sig: int) -> None:
    assert state.pid is not None
    try:
        os.kill(state.pid, sig)
    except ProcessLookupError:
        pass


def stop(store: StateStore, ref: str, timeout: float = DEFAULT_STOP_TIMEOUT) -> ContainerState | None:
    """SIGTERM to PID 1, then SIGKILL to the whole cgroup after ``timeout``; returns once the end is
    recorded (None if the container was removed on exit). A stopped container is left as it is.

    A PID 1 without a SIGTERM handler ignores it (the kernel protects a namespace's init), so a
    plain ``sleep`` only stops through the SIGKILL; that is docker's behaviour too.

    A failure on the way leaves the container either running (nothing was done, or only SIGTERM
    sent: ``stop`` again) or exited; an owner that could not release all the container held records
    it as ``unreleased`` and ``stop`` says so (exit 125): ``rm`` releases the rest.
    """
    from rustainer.backend.container.liveness import is_alive

    state = resolve(store, ref)
    if not is_alive(state):
        return state
    owner = owner_pid(state)
    manager = manager_of(state)
    fault("stop-signal")
    _signal_pid1(state, 15)
    ended = _wait_recorded(store, state, owner, time.monotonic() + max(timeout, 0.0))
    if ended is None or ended.status != RUNNING:
        return _released(ended)
    return _released(_kill_and_wait(store, state, owner, manager))


def _released(state: ContainerState | None) -> ContainerState | None:
    """``state``, unless its owner could not release what it held: then that is the error."""
    if state is not None and state.unreleased:
        from rustainer.backend.container.launch import unreleased_error

        raise unreleased_error(state)
    return state


def _kill_and_wait(store: StateStore, state: ContainerState, owner: int | None,
                   manager: CgroupManager) -> ContainerState | None:
    fault("stop-kill")
    _signal_pid1(state, 9)
    _kill_cgroup(manager)
    ended = _wait_recorded(store, state, owner, time.monotonic() + RECORD_TIMEOUT)
    if ended is not None and ended.status == RUNNING:
        raise RustainerError(f"container {state.name} was killed but its owner (pid {owner}) has not recorded "
                             f"its end after {RECORD_TIMEOUT:.0f} s")
    return ended


def kill(store: StateStore, ref: str, sig: int = 9) -> ContainerState:
    """Send ``sig`` to the container's PID 1 (docker's ``kill``); SIGKILL also reaches the whole cgroup.

    Returns at once: the owner records the end, if the signal ends it.
    """
    state = require_running(store, ref, "kill")
    _signal_pid1(state, sig)
    if sig == 9:
        _kill_cgroup(manager_of(state))
    return state


def _kill_cgroup(manager: CgroupManager) -> None:
    """SIGKILL every process of the cgroup. One its owner is removing (ENODEV) or removed is fine:
    PID 1 got its SIGKILL already, and its end takes the rest of the PID namespace with it."""
    try:
        manager.kill_all(9)
    except RustainerError:
        pass


def remove(store: StateStore, ref: str, *, force: bool = False) -> None:
    """``rm``; with ``force`` a running container is killed first and its owner left to record the end,
    so the owner never writes to an entry that has gone from under it."""
    from rustainer.backend.container.cleanup import reconcile, remove_container
    from rustainer.backend.container.liveness import is_alive, is_starting

    found = store.find(ref)
    try:
        state = reconcile(store, found)
    except ContainerNotFoundError:
        return  # an abandoned start (or a lost --rm container): reconciling removed it
    if state.status == CREATED and state.owner_pid is not None:
        # Being started (reconcile leaves a start alone while its owner lives): removing its entry
        # now would pull it from under the starter. rm -f waits for the start to end either way.
        if not force:
            raise ContainerStateError(f"container {state.name} is starting: wait for it or use rm -f",
                                      container=state.name)
        started = _wait_started(store, state)
        if started is None:
            return
        state = started
    if is_alive(state) or is_starting(state):
        if not force:
            raise ContainerStateError(f"container {state.name} is running: stop it first or use rm -f", container=state.name)
        fault("rm-kill")
        ended = _kill_and_wait(store, state, owner_pid(state), manager_of(state))
        if ended is None:
            return  # it was a --rm container: its owner removed it
        state = ended
    remove_container(store, state, force=force)


def _wait_started(store: StateStore, state: ContainerState) -> ContainerState | None:
    """Poll until a start in progress has ended (running, failed, or abandoned: reconciled); None if
    the entry is gone."""
    from rustainer.backend.container.cleanup import reconcile

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            current = reconcile(store, store.load(state.id))
        except ContainerNotFoundError:
            return None
        if current.status != CREATED:
            return current
        if time.monotonic() >= deadline:
            raise ContainerStateError(f"container {state.name} is still starting after {START_TIMEOUT:.0f} s",
                                      container=state.name)
        time.sleep(_POLL)


# ---- inspect -----------------------------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds")


def _limits_dict(r: Resources) -> dict[str, Any]:
    from rustainer.backend.spec import format_cpus

    return {"cpus": format_cpus(r.cpus) if r.cpus else None, "memory": r.memory, "cpu_quota": r.cpu_quota,
            "pids_limit": r.pids_limit}


def inspect(store: StateStore, ref: str) -> dict[str, Any]:
    """docker inspect's content in rustainer's terms: what was asked (spec), what happened (state),
    and, while it runs, what the kernel enforces (limits read back from the cgroup) and its pids."""
    from rustainer.backend.container.liveness import is_alive
    from rustainer.backend.util.record import asdict

    state = resolve(store, ref)
    running = is_alive(state)
    pids: list[int] = []
    limits = None
    if running:
        manager = manager_of(state)
        try:
            pids = sorted(manager.pids())
            limits = _limits_dict(manager.read_limits())
        except RustainerError:
            pass  # it ended while we looked
    return {
        "id": state.id,
        "name": state.name,
        "spec": asdict(state.spec),
        "state": {
            "status": state.status,
            "running": running,
            "pid": state.pid,
            "exit_code": state.exit_code,
            "oom_killed": state.oom_killed,
            "error": state.error,
            "unreleased": state.unreleased,
            "detached": state.detached,
            "supervisor_pid": state.supervisor_pid,
            "recording": state.recording and running,
            "created_at": state.created_at,
            "started_at": state.started_at,
            "finished_at": state.finished_at,
            "created": iso(state.created_at),
            "started": iso(state.started_at),
            "finished": iso(state.finished_at),
        },
        "pids": pids,
        "cgroup": {"driver": state.cgroup_driver, "paths": dict(state.cgroup_paths)},
        "limits": limits,
        "log_path": store.log_path(state.id),
        "directory_created": state.directory_created,
    }


# ---- stats / top -----------------------------------------------------------------------------------


def sample_stats(store: StateStore, refs: list[str] | None, interval: float = 1.0) -> list[dict[str, Any]]:
    """CPU % over ``interval`` (cpuacct deltas: 100 % = one CPU busy), memory and pids, from each
    container's own cgroup counters; every container is sampled over the same interval."""
    from rustainer.backend.container.liveness import is_alive

    if refs:
        states = [require_running(store, ref, "show stats of") for ref in refs]
    else:
        states = [s for s in (resolve(store, s.id) for s in store.list()) if is_alive(s)]
    managers = [manager_of(s) for s in states]
    first = [_stats_or_none(m) for m in managers]
    t0 = time.monotonic()
    if states:
        time.sleep(interval)
    elapsed_ns = (time.monotonic() - t0) * 1e9
    rows = []
    for state, manager, before in zip(states, managers, first, strict=True):
        after = _stats_or_none(manager)
        if after is None or before is None:
            continue  # it ended while we sampled
        cpu = None
        if after.cpu_usage_ns is not None and before.cpu_usage_ns is not None and elapsed_ns > 0:
            cpu = max(0.0, (after.cpu_usage_ns - before.cpu_usage_ns) / elapsed_ns * 100)
        rows.append({"name": state.name, "id": state.short_id, "cpu_percent": cpu,
                     "memory_usage": after.memory_usage, "memory_limit": after.memory_limit,
                     "pids": after.pids_current, "oom_kills": after.oom_kills})
    return rows


@record
class Counters:
    """One reading of a running container's cgroup: cumulative CPU time (a rate needs two readings),
    memory in use and the limits the kernel enforces (read back, not taken from the spec)."""

    cpu_usage_ns: int | None = None
    memory_usage: int | None = None  # bytes
    memory_limit: int | None = None  # bytes, None when unlimited
    cpus: tuple[int, ...] | None = None  # the enforced cpuset, None when all
    pids: int | None = None


def read_counters(state: ContainerState) -> Counters | None:
    """The container's counters now, or None when it has no cgroup (any more)."""
    from rustainer.backend.container.liveness import reopen_cgroup

    manager = reopen_cgroup(state)
    if manager is None:
        return None
    try:
        stats = manager.stats()
        limits = manager.read_limits()
    except RustainerError:
        return None  # it ended while we looked
    return Counters(cpu_usage_ns=stats.cpu_usage_ns, memory_usage=stats.memory_usage,
                    memory_limit=limits.memory if limits.memory is not None else stats.memory_limit,
                    cpus=limits.cpus, pids=stats.pids_current)


def _stats_or_none(manager: CgroupManager) -> CgroupStats | None:
    try:
        return manager.stats()
    except RustainerError:
        return None


def top(store: StateStore, ref: str) -> list[dict[str, Any]]:
    """The container's processes from its cgroup's pid list, with their pids inside the container."""
    import pwd

    state = require_running(store, ref, "list the processes of")
    rows = []
    for pid in manager_of(state).pids():
        status = procfs.status(pid)
        if not status:
            continue  # gone meanwhile
        nspid = status.get("NSpid", "").split()
        uid = int(status.get("Uid", "0").split()[0] or 0)
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        args = procfs.cmdline(pid)
        if args is None:
            continue
        cmdline = b" ".join(args).decode(errors="replace")
        rows.append({"pid": pid, "container_pid": int(nspid[-1]) if nspid else None, "user": user,
                     "command": cmdline or f"[{status.get('Name', '?')}]"})
    rows.sort(key=lambda r: (r["container_pid"] is None, r["container_pid"] or 0, r["pid"]))
    return rows


# ---- update --------------------------------------------------------------------------------------------


def update(store: StateStore, ref: str, *, memory: str | None = None, cpus: str | None = None,
           cpu_quota: str | None = None, pids_limit: str | None = None) -> ContainerState:
    """Change limits of a running container through its own cgroup driver; the stored spec follows,
    so ``inspect`` shows the new values. Limits not given keep what the kernel enforces now."""
    from rustainer.backend import spec as S
    from rustainer.backend.container.config import available_cpus
    from rustainer.backend.util.record import replace

    changes: dict[str, Any] = {}
    if memory is not None:
        changes["memory"] = S.parse_memory_limit(memory)
    if cpus is not None:
        changes["cpus"] = S.parse_cpus(cpus)
        S.check_cpus_available(changes["cpus"], available_cpus())
    if cpu_quota is not None:
        changes["cpu_quota"] = S.parse_cpu_quota(cpu_quota, len(available_cpus()))
    if pids_limit is not None:
        changes["pids_limit"] = S.parse_pids_limit(pids_limit)
    if not changes:
        raise InvalidSpecError("nothing to update: give -m, -c, --cpu-quota or --pids-limit")
    state = require_running(store, ref, "update")
    manager = manager_of(state)
    before = manager.read_limits()
    try:
        # One limit after another (each its own cgroup file): a failure half-way, or in recording
        # the new spec, puts back every limit as it was read here, so the kernel and the record
        # never disagree.
        manager.update(replace(before, **changes))
        fault("update-record")
        # Re-read just before writing: the owner may have written meanwhile (it keeps the rest).
        current = store.load(state.id)
        spec = replace(current.spec, resources=replace(current.spec.resources, **changes))
        return store.update(current, spec=spec)
    except BaseException:
        try:
            manager.update(before)
        except RustainerError:
            pass  # the error that made us restore is the one to report
        raise


# ---- ps ----------------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def uptime(state: ContainerState, now: float | None = None) -> str:
    """``ps``'s UPTIME column: time since start, or how long ago it ended (STATUS has the code)."""
    now = time.time() if now is None else now
    if state.status == RUNNING and state.started_at is not None:
        return human_duration(now - state.started_at)
    if state.finished_at is not None:
        return f"{human_duration(now - state.finished_at)} ago"
    return "-"
