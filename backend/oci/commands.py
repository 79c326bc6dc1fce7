"""The runtime's commands after ``create``: start, state, kill, delete, ps, pause, resume, update.

Each reads the container's record (``state.Store``) and the kernel; none keeps a process around.

containerd's shim runs ``start``, ``delete`` and ``delete --force`` as new processes for every
container, so what they import is most of what they cost beyond the interpreter: the errors
module is imported where an error is raised, the hooks (and with them the config parser) only for
a container that has some, the cgroup drivers only when a cgroup is not simply empty (``quick``).
"""

from __future__ import annotations

import posix  # not os: see state.py
import time

from rustainer.backend.oci.state import CREATED, PAUSED, RUNNING, STOPPED, Store, is_dir, oci_state, status

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
    from rustainer.backend.errors import InvalidSpecError

    raise InvalidSpecError(f"unknown signal {text!r}")


def state(store: Store, cid: str) -> dict[str, object]:
    return oci_state(store, cid, store.load(cid))


def start(store: Store, cid: str) -> None:
    """Release the init: open ``exec.fifo`` for reading (the init's blocked open for writing then
    completes), read its byte, remove the fifo; then the ``poststart`` hooks."""
    data = store.load(cid)
    st = status(store, cid, data)
    if st != CREATED:
        raise _state_error(f"cannot start a container that is {st}" if st != RUNNING
                           else "cannot start an already running container")
    fifo = store.fifo(cid)
    fd = posix.open(fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if posix.read(fd, 1):
                    break
            except BlockingIOError:
                pass  # the init has the fifo open and is about to write
            if status(store, cid, data) == STOPPED:
                # it may have been released, run and ended since our read: its byte says so
                try:
                    if posix.read(fd, 1):
                        break
                except BlockingIOError:
                    pass
                raise _state_error(f"container {cid}'s init exited before it was started")
            if time.monotonic() > deadline:
                raise _state_error(f"container {cid}'s init did not answer the start")
            import select

            # woken by the init's byte (a 1 ms sleep here cost 1.1 ms or more of most starts); the
            # short timeout is for an init that dies without writing, which a fifo whose writer
            # was already there when we opened it does not report as a hang-up
            select.select([fd], [], [], 0.01)
    finally:
        posix.close(fd)
    posix.unlink(fifo)
    if has_hooks(data, "poststart"):
        from rustainer.backend.oci.hooks import run_hooks, stored_hooks

        hooks = stored_hooks(data, "poststart")
        try:
            # as runc 1.1 tells them (the command may have ended already: its pid all the same)
            run_hooks(hooks, oci_state(store, cid, data) | {"status": CREATED, "pid": data["pid"]})
        except Exception as err:  # noqa: BLE001 - poststart failures are warnings (the spec)
            import sys

            print(f"rustainer-oci: warning: {err}", file=sys.stderr)


def kill(store: Store, cid: str, signal: int, *, all_processes: bool = False) -> None:
    data = store.load(cid)
    st = status(store, cid, data)
    if st == STOPPED and not all_processes:
        raise _state_error("container not running")
    if all_processes:
        from rustainer.backend.oci import cgroup as oci_cgroup

        manager = oci_cgroup.reopen(data, cid)
        if manager is not None:
            manager.kill_all(signal)
            return
    pid = data["pid"]
    assert isinstance(pid, int)
    try:
        posix.kill(pid, signal)
    except ProcessLookupError:
        raise _state_error("container not running") from None


def delete(store: Store, cid: str, *, force: bool = False) -> None:
    """Remove a stopped container (``--force``: a running one is killed first)."""
    if force and not is_dir(store.dir(cid)):
        return  # the shim's cleanup after its delete: nothing to do, nothing to import
    try:
        data = store.load(cid)
    except Exception:
        if force:
            store.remove(cid)
            return
        raise
    st = status(store, cid, data)
    if st == CREATED:
        force = True  # runc deletes a created container: its init never ran the command
    if st != STOPPED or not remove_empty_cgroup(data):
        from rustainer.backend.oci import cgroup as oci_cgroup

        manager = oci_cgroup.reopen(data, cid)
        if st != STOPPED:
            if not force:
                raise _state_error(f"cannot delete container {cid} that is not stopped: {st}")
            pid = data["pid"]
            assert isinstance(pid, int)
            if manager is not None:
                if st == PAUSED:
                    oci_cgroup.freeze(data, False)
                manager.kill_all(9)
            try:
                posix.kill(pid, 9)
            except ProcessLookupError:
                pass
            _wait_gone(store, cid, data)
        if manager is not None:
            _kill_rest(manager)
            manager.remove()
    if not has_hooks(data, "poststop"):
        store.remove(cid)
        return
    from rustainer.backend.oci.hooks import run_hooks, stored_hooks

    hooks = stored_hooks(data, "poststop")  # read before the record goes
    store.remove(cid)
    try:
        run_hooks(hooks, oci_state(store, cid, data) | {"status": STOPPED})
    except Exception as err:  # noqa: BLE001 - poststop failures are warnings (the spec)
        import sys

        print(f"rustainer-oci: warning: {err}", file=sys.stderr)


def has_hooks(data: dict[str, object], kind: str) -> bool:
    """Whether the record holds hooks of ``kind``, without importing the hooks (and config) modules."""
    hooks = data.get("hooks")
    return isinstance(hooks, dict) and bool(hooks.get(kind))


def remove_empty_cgroup(data: dict[str, object]) -> bool:
    """The usual end of a stopped container: its cgroup folders are empty, and rmdir'ing each is all
    there is to do. Done here without the cgroup drivers (their import is most of a ``delete``);
    False when that is not the case (processes left, sub-cgroups, parents recorded, a path that
    is not the container's), and the caller goes through the drivers, which kill what is left and
    poll. Folders removed here before such a case are simply missing for the drivers."""
    paths = data.get("cgroup_paths")
    if not isinstance(paths, dict) or not paths:
        return True  # no cgroup
    if data.get("cgroup_parents"):
        return False
    leaf = "/" + str(data.get("cgroup_path", "")).rpartition("/")[2]
    folders = list(dict.fromkeys(str(p) for p in paths.values()))
    if leaf == "/" or any(not p.startswith("/sys/fs/cgroup/") or not p.endswith(leaf) or "/../" in p + "/"
                          for p in folders):
        return False  # the drivers' checks say why
    # the file the drivers read the cgroup's processes from (cgroup2's, or v1's first of these)
    procs = next((str(paths[c]) for c in ("unified", "pids", "memory", "cpu", "cpuset", "cpuacct") if c in paths),
                 None)
    if procs is not None:
        try:
            with open(procs + "/cgroup.procs") as fh:
                if fh.read().strip():
                    return False
        except FileNotFoundError:
            pass
        except OSError:
            return False
    for folder in reversed(folders):
        try:
            posix.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:
            return False
    return True


def _state_error(message: str) -> Exception:
    from rustainer.backend.errors import ContainerStateError

    return ContainerStateError(message)


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
        raise _state_error(f"container not running: {st}")
    if not on and st != PAUSED:
        raise _state_error("container not paused")
    oci_cgroup.freeze(data, on)


def update(store: Store, cid: str, resources_file: str) -> None:
    from rustainer.backend.oci import cgroup as oci_cgroup
    from rustainer.backend.oci.config import parse_resources_file
    from rustainer.backend.util.record import replace

    data = store.load(cid)
    if status(store, cid, data) == STOPPED:
        raise _state_error("container not running")
    manager = oci_cgroup.reopen(data, cid)
    if manager is None:
        raise _state_error(f"container {cid} has no cgroup")
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
