"""Pick the cgroup driver for this host and build managers.

Detection reads ``/proc/self/mountinfo`` (Python has no ``statfs``; ctypes would cost more than
the one small read) and looks at the file system type mounted at the cgroup root:

- systemd is PID 1 (``/run/systemd/system`` exists and ``/proc/1/comm`` is ``systemd``):
  ``"systemd"``. It goes first because systemd wants to be the single writer of the tree it
  manages; on such hosts the caller's own cgroup is usually a session scope full of processes,
  where cgroup2's "no internal processes" rule would refuse nesting anyway.
- ``cgroup2`` at the root (unified): ``"v2"``.
- ``tmpfs`` with v1 hierarchies beneath it (legacy or hybrid): ``"v1"``.
"""

from __future__ import annotations

import os

from rustainer.backend.cgroups.base import DEFAULT_ROOT
from rustainer.backend.errors import CgroupError

TYPE_CHECKING = False  # typing's own flag would import typing at run time
if TYPE_CHECKING:
    from rustainer.backend.cgroups.base import CgroupManager
    from rustainer.backend.cgroups.systemd import Runner

DRIVERS = ("v1", "v2", "systemd")


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def mount_fstypes(mountinfo: str) -> dict[str, str]:
    """mount point -> file system type; the last mount on a point wins, as in the kernel."""
    result: dict[str, str] = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        fstype = right.split(" ", 1)[0]
        result[point] = fstype
    return result


def systemd_is_init(run_systemd: str = "/run/systemd/system", proc1_comm: str | None = None) -> bool:
    if not os.path.isdir(run_systemd):
        return False
    comm = proc1_comm if proc1_comm is not None else _read("/proc/1/comm")
    return (comm or "").strip() == "systemd"


def detect_driver(
    root: str = DEFAULT_ROOT,
    *,
    mountinfo: str | None = None,
    systemd: bool | None = None,
) -> str:
    """``"systemd"``, ``"v2"`` or ``"v1"`` for this host; inputs are injectable for tests."""
    if systemd is None:
        systemd = systemd_is_init()
    if systemd:
        return "systemd"
    if mountinfo is None:
        mountinfo = _read("/proc/self/mountinfo")
        if mountinfo is None:
            raise CgroupError("cannot read /proc/self/mountinfo to find the cgroup file system")
    root = root.rstrip("/") or "/"
    fstypes = mount_fstypes(mountinfo)
    fstype = fstypes.get(root)
    if fstype == "cgroup2":
        return "v2"
    prefix = root + "/"
    if fstype == "tmpfs" and any(p.startswith(prefix) and t == "cgroup" for p, t in fstypes.items()):
        return "v1"
    if fstype is None:
        raise CgroupError(f"no cgroup file system is mounted at {root}: mount cgroup2 or the v1 hierarchies")
    raise CgroupError(f"unrecognised cgroup layout at {root} ({fstype}): choose a driver with --cgroup-driver")


def open_manager(
    name: str,
    driver: str | None = None,
    parent: str | None = None,
    *,
    root: str = DEFAULT_ROOT,
    proc_self_cgroup: str | None = None,
    runner: Runner | None = None,
    paths: dict[str, str] | None = None,
    made_parents: tuple[str, ...] = (),
) -> CgroupManager:
    """The manager for container ``name``; touches nothing until ``create``/``add``.

    For a new container pass ``driver``/``parent`` from the spec (``None``: detect / the caller's
    own cgroup). To re-open later from another process, pass the stored ``driver`` and
    ``paths()`` (robust even if that process sits in a different cgroup), or the same
    ``parent`` when one was given.
    """
    if driver is None:
        driver = detect_driver(root)
    if driver == "v1":
        from rustainer.backend.cgroups.v1 import V1Manager

        return V1Manager(name, parent, root=root, proc_self_cgroup=proc_self_cgroup, paths=paths,
                         made_parents=made_parents)
    if driver == "v2":
        from rustainer.backend.cgroups.v2 import V2Manager

        return V2Manager(name, parent, root=root, proc_self_cgroup=proc_self_cgroup, paths=paths,
                         made_parents=made_parents)
    if driver == "systemd":
        from rustainer.backend.cgroups.systemd import SystemdManager

        return SystemdManager(name, parent, root=root, runner=runner)
    raise CgroupError(f"unknown cgroup driver {driver!r}: choose one of {', '.join(DRIVERS)}")
