"""The runtime's commands after ``create``: start, state, kill, delete, ps, pause, resume, update.

Each reads the container's record (``state.Store``) and the kernel; none keeps a process around.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.errors import ContainerStateError, InvalidSpecError
from rustainer.backend.oci.state import CREATED, PAUSED, RUNNING, STOPPED, Store, oci_state, status

START_TIMEOUT = 10.0

SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
           "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
           "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
           "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31}


def parse_signal(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
    name = text.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    if name.startswith("RTMIN"):
        rest = name[5:].lstrip("+")
        return 34 + (int(rest) if rest.isdigit() else 0)
    raise InvalidSpecError(f"unknown signal {text!r}")


def state(store: Store, cid: str) -> dict[str, object]:
    return oci_state(store, cid, store.load(cid))


def start(store: Store, cid: str) -> None:
    """Release the init: open ``exec.fifo`` for reading (the init's blocked open for writing then
    completes), read its byte, remove the fifo; then the ``poststart`` hooks."""
    data = store.load(cid)
    st = status(store, cid, data)
    if st != CREATED:
        raise ContainerStateError(f"cannot start a container that is {st}" if st != RUNNING
                                  else "cannot start an already running container")
    fifo = store.fifo(cid)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if os.read(fd, 1):
                    break
            except BlockingIOError:
                pass  # the init has the fifo open and is about to write
            if status(store, cid, data) == STOPPED:
                # it may have been released, run and ended since our read: its byte says so
                try:
                    if os.read(fd, 1):
                        break
                except BlockingIOError:
                    pass
                raise ContainerStateError(f"container {cid}'s init exited before it was started")
            if time.monotonic() > deadline:
                raise ContainerStateError(f"container {cid}'s init did not answer the start")
            time.sleep(0.001)
    finally:
        os.close(fd)
    os.unlink(fifo)
    from rustainer.backend.oci.hooks import run_hooks, stored_hooks

    hooks = stored_hooks(data, "poststart")
    if hooks:
        try:
            # as runc 1.1 tells them (the command may have ended already: its pid all the same)
            run_hooks(hooks, oci_state(store, cid, data) | {"status": CREATED, "pid": data["pid"]})
        except Exception as err:  # noqa: BLE001 - poststart failures are warnings (the spec)
            import sys

            print(f"rustainer-oci: warning: {err}", file=sys.stderr)


def kill(store: Store, cid: str, signal: int, *, all_processes: bool = False) -> None:
    from rustainer.backend.oci import cgroup as oci_cgroup

    data = store.load(cid)
    st = status(store, cid, data)
    if st == STOPPED and not all_processes:
        raise ContainerStateError("container not running")
    if all_processes:
        manager = oci_cgroup.reopen(data, cid)
        if manager is not None:
            manager.kill_all(signal)
            return
    pid = data["pid"]
    assert isinstance(pid, int)
    try:
        os.kill(pid, signal)
    except ProcessLookupError:
        raise ContainerStateError("container not running") from None


def delete(store: Store, cid: str, *, force: bool = False) -> None:
    """Remove a stopped container (``--force``: a running one is killed first)."""
    from rustainer.backend.oci import cgroup as oci_cgroup

    try:
        data = store.load(cid)
    except Exception:
        if force:
            store.remove(cid)
            return
        raise
    st = status(store, cid, data)
    manager = oci_cgroup.reopen(data, cid)
    if st == CREATED:
        force = True  # runc deletes a created container: its init never ran the command
    if st != STOPPED:
        if not force:
            raise ContainerStateError(f"cannot delete container {cid} that is not stopped: {st}")
        pid = data["pid"]
        assert isinstance(pid, int)
        if manager is not None:
            if st == PAUSED:
                oci_cgroup.freeze(data, False)
            manager.kill_all(9)
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        _wait_gone(store, cid, data)
    if manager is not None:
        _kill_rest(manager)
        manager.remove()
    from rustainer.backend.oci.hooks import run_hooks, stored_hooks

    hooks = stored_hooks(data, "poststop")
    store.remove(cid)
    if hooks:
        try:
            run_hooks(hooks, oci_state(store, cid, data) | {"status": STOPPED})
        except Exception as err:  # noqa: BLE001 - poststop failures are warnings (the spec)
            import sys

            print(f"rustainer-oci: warning: {err}", file=sys.stderr)


def _wait_gone(store: Store, cid: str, data: dict[str, object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while status(store, cid, data) != STOPPED and time.monotonic() < deadline:
        time.sleep(0.005)


def _kill_rest(manager: object) -> None:
    """Processes left in the cgroup (the init gone, with a shared PID namespace) are killed."""
    from rustainer.backend.cgroups.base import CgroupManager

    assert isinstance(manager, CgroupManager)
    try:
        if manager.pids():
            manager.kill_all(9)
    except Exception:  # noqa: BLE001 - the removal below reports what is left
        pass


def ps(store: Store, cid: str) -> list[int]:
    from rustainer.backend.oci import cgroup as oci_cgroup

    data = store.load(cid)
    manager = oci_cgroup.reopen(data, cid)
    return sorted(manager.pids()) if manager is not None else []


def pause(store: Store, cid: str, on: bool) -> None:
    from rustainer.backend.oci import cgroup as oci_cgroup

    data = store.load(cid)
    st = status(store, cid, data)
    if on and st != RUNNING and st != CREATED:
        raise ContainerStateError(f"container not running: {st}")
    if not on and st != PAUSED:
        raise ContainerStateError("container not paused")
    oci_cgroup.freeze(data, on)


def update(store: Store, cid: str, resources_file: str) -> None:
    from rustainer.backend.oci import cgroup as oci_cgroup
    from rustainer.backend.oci.config import parse_resources_file
    from rustainer.backend.util.record import replace

    data = store.load(cid)
    if status(store, cid, data) == STOPPED:
        raise ContainerStateError("container not running")
    manager = oci_cgroup.reopen(data, cid)
    if manager is None:
        raise ContainerStateError(f"container {cid} has no cgroup")
    r = parse_resources_file(resources_file)
    current = manager.read_limits()
    wanted = oci_cgroup.engine_resources(r)
    merged = replace(current, **{k: getattr(wanted, k) for k in ("memory", "cpus", "pids_limit")
                                 if getattr(wanted, k) is not None})
    manager.update(merged)
    oci_cgroup.apply_extra(manager, r)


def features() -> dict[str, object]:
    from rustainer.backend.oci.config import HOOK_KINDS, MOUNT_TYPES, MS, NAMESPACE_TYPES, PROPAGATION
    from rustainer.backend.oci.state import OCI_VERSION

    options = sorted({*MS, *PROPAGATION, *("r" + p for p in PROPAGATION)})
    from rustainer.backend.linux.capabilities import CAPS

    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION, "hooks": list(HOOK_KINDS), "mountOptions": options,
        "linux": {
            "namespaces": [n for n in NAMESPACE_TYPES if n not in ("user", "time")],
            "capabilities": ["CAP_" + c.upper() for c in CAPS],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                                     "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                                                     "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                                      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                        "archs": ["SCMP_ARCH_X86_64"]},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runc.version": "rustainer-oci", "mounts": ",".join(MOUNT_TYPES)},
    }
