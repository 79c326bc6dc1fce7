"""systemd driver: per container, a transient slice holding its limits and, inside it, a transient
scope (``Delegate=yes``) holding its processes.

On a systemd host systemd owns the cgroup tree and expects to be its single writer, so units are
made and changed through D-Bus (``StartTransientUnit`` / ``SetUnitProperties`` /
``AttachProcessesToUnit`` / ``StopUnit`` on ``org.freedesktop.systemd1.Manager``), issued with
``busctl`` to avoid a D-Bus library dependency. The argv is built by pure functions so tests assert
the exact call; it runs through an injectable ``runner``.

Why a slice as well as the scope (``rustainer.slice/rustainer-rustainer_<name>.slice/rustainer-<name>.scope``
for the default parent; ``--cgroup-parent app.slice`` gives ``app.slice/app-rustainer_<name>.slice``):

- a scope cannot exist without a process, a slice can: ``create`` starts the slice with the limits,
  so they are in force before the container's first process joins, and whoever adds that process
  later (the ``--detach`` launcher re-opens the manager from state) needs no limits to pass on:
  the scope gets the same limits, read back from the slice (inside, ``/sys/fs/cgroup`` is the
  scope's cgroup, where programs look for their limits); ``update`` changes both;
- systemd stops a scope and removes its cgroup as soon as it is empty, i.e. with the container's
  last process, before its owner could read ``memory.events``; the slice's ``memory.events`` counts
  the scope's OOM kills (cgroup2 events are hierarchical) and stays until ``remove`` stops it;
- ``exec`` adds a process to the running scope (``AttachProcessesToUnit``) instead of starting a
  second unit of the same name.
Reading (limits, stats, OOM) goes straight to the slice's cgroup directory and the pids to the
scope's, whose paths follow from the unit names.
"""

from __future__ import annotations

import os

from rustainer.backend.cgroups.base import (
    DEFAULT_ROOT,
    CgroupManager,
    CgroupStats,
    cgroup_dirname,
)
from rustainer.backend.errors import CgroupError
from rustainer.backend.spec import Resources

TYPE_CHECKING = False  # typing's own flag would import typing at run time
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]

DEFAULT_SLICE = "rustainer.slice"
UINT64_MAX = (1 << 64) - 1  # systemd's "infinity" for MemoryMax, TasksMax, CPUQuotaPerSecUSec
START_TIMEOUT = 10.0  # seconds for systemd to run a start job (make the slice, move the pid)
_BUS = ["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"]
_SLICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:\\")


# ---- pure argv builders ------------------------------------------------------------------------


def unit_name(name: str) -> str:
    return cgroup_dirname(name) + ".scope"


def container_slice(parent: str, name: str) -> str:
    """The container's own slice beneath ``parent`` (``rustainer.slice`` -> ``rustainer-rustainer_web.slice``).

    systemd nests slices by dash-separated name prefixes, so the container's part has no dash of its
    own: ``rustainer_`` and the name with its dashes escaped (``\\x2d``) as systemd escapes them."""
    leaf = "rustainer_" + name.replace("-", "\\x2d")
    return (leaf if parent == "-.slice" else parent[: -len(".slice")] + "-" + leaf) + ".slice"


def check_slice(slice_: str) -> str:
    if not slice_.endswith(".slice") or not set(slice_) <= _SLICE_CHARS or slice_ == ".slice":
        raise CgroupError(f"invalid systemd slice {slice_!r}: with the systemd driver --cgroup-parent is a unit like my-app.slice")
    return slice_


def slice_path(slice_: str) -> str:
    """``a-b.slice`` -> ``a.slice/a-b.slice``: systemd nests slices by their dash-separated prefixes."""
    if slice_ == "-.slice":
        return ""
    stem = slice_[: -len(".slice")]
    parts = stem.split("-")
    return "/".join("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def cpus_bitmask(cpus: tuple[int, ...]) -> list[int]:
    """AllowedCPUs' ``ay``: byte i holds CPUs 8i..8i+7, lowest CPU in the lowest bit."""
    if not cpus:
        return []
    mask = [0] * (max(cpus) // 8 + 1)
    for cpu in cpus:
        mask[cpu // 8] |= 1 << (cpu % 8)
    return mask


def limit_properties(r: Resources, *, reset: bool) -> list[list[str]]:
    """(name, signature, values...) per property; ``reset`` lifts the limits that are ``None``."""
    props: list[list[str]] = []
    if r.memory is not None or reset:
        props.append(["MemoryMax", "t", str(UINT64_MAX if r.memory is None else r.memory)])
        props.append(["MemorySwapMax", "t", str(UINT64_MAX if r.memory is None else 0)])
    if r.cpus is not None or reset:
        mask = cpus_bitmask(r.cpus or ())  # empty: all CPUs
        props.append(["AllowedCPUs", "ay", str(len(mask)), *(str(b) for b in mask)])
    if r.cpu_quota is not None or reset:
        usec = UINT64_MAX if r.cpu_quota is None else max(10000, round(r.cpu_quota * 1_000_000))
        props.append(["CPUQuotaPerSecUSec", "t", str(usec)])
    if r.pids_limit is not None or reset:
        props.append(["TasksMax", "t", str(UINT64_MAX if r.pids_limit is None else r.pids_limit)])
    return props


def _flatten(props: list[list[str]]) -> list[str]:
    return [str(len(props)), *(item for prop in props for item in prop)]


def slice_argv(slice_: str, r: Resources, description: str) -> list[str]:
    props = [
        ["Description", "s", description],
        ["MemoryAccounting", "b", "true"],
        ["CPUAccounting", "b", "true"],
        ["TasksAccounting", "b", "true"],
        *limit_properties(r, reset=False),
    ]
    return [*_BUS, "StartTransientUnit", "ssa(sv)a(sa(sv))", slice_, "fail", *_flatten(props), "0"]


def start_argv(unit: str, slice_: str, pid: int, r: Resources, description: str) -> list[str]:
    props = [
        ["Description", "s", description],
        ["Slice", "s", slice_],
        ["Delegate", "b", "true"],  # the container may manage cgroups beneath its scope
        ["CollectMode", "s", "inactive-or-failed"],  # an OOM-failed scope must not linger
        ["PIDs", "au", "1", str(pid)],
        *limit_properties(r, reset=False),
    ]
    return [*_BUS, "StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail", *_flatten(props), "0"]


def attach_argv(unit: str, pid: int) -> list[str]:
    return [*_BUS, "AttachProcessesToUnit", "ssau", unit, "", "1", str(pid)]


def set_properties_argv(unit: str, r: Resources) -> list[str]:
    return [*_BUS, "SetUnitProperties", "sba(sv)", unit, "true", *_flatten(limit_properties(r, reset=True))]


def stop_argv(unit: str) -> list[str]:
    return [*_BUS, "StopUnit", "ss", unit, "fail"]


def _default_runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


# ---- the manager -------------------------------------------------------------------------------


class SystemdManager(CgroupManager):
    driver = "systemd"

    def __init__(
        self,
        name: str,
        parent: str | None = None,
        *,
        root: str = DEFAULT_ROOT,
        runner: Runner | None = None,
    ) -> None:
        self.name = name
        self.unit = unit_name(name)
        self.parent_slice = check_slice(parent or DEFAULT_SLICE)
        self.slice = container_slice(self.parent_slice, name)
        self.root = root.rstrip("/") or "/"
        self._run = runner or _default_runner
        rel = slice_path(self.slice)
        parent_rel, _, leaf = rel.rpartition("/")
        self._reader: CgroupManager  # the slice: limits, stats, OOM
        self._scope: CgroupManager  # the scope: processes
        if os.path.exists(self.root + "/cgroup.controllers"):  # unified host
            from rustainer.backend.cgroups.v2 import V2Manager

            self._reader = V2Manager(name, parent_rel, root=self.root, leaf=leaf)
            self._scope = V2Manager(name, rel, root=self.root, leaf=self.unit)
        else:  # hybrid or legacy: systemd mirrors the unit's path in each v1 hierarchy
            from rustainer.backend.cgroups.v1 import V1Manager

            self._reader = V1Manager(name, parent_rel, root=self.root, leaf=leaf)
            self._scope = V1Manager(name, rel, root=self.root, leaf=self.unit)

    def _call(self, argv: list[str], what: str, unit: str) -> str:
        try:
            done = self._run(argv)
        except FileNotFoundError as err:
            raise CgroupError("busctl is not installed: the systemd cgroup driver needs it (or use --cgroup-driver v1/v2)") from err
        except OSError as err:
            raise CgroupError(f"cannot run busctl to {what}: {err.strerror}", errno=err.errno) from err
        if done.returncode != 0:
            message = (done.stderr or done.stdout or "").strip().splitlines()
            raise CgroupError(f"systemd could not {what} {unit}: {message[-1] if message else 'busctl failed'}")
        return done.stdout or ""

    def paths(self) -> dict[str, str]:
        return self._reader.paths()

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        """systemd answers once the job is queued; what it does happens when the job runs."""
        import time

        deadline = time.monotonic() + START_TIMEOUT
        while not done():
            if time.monotonic() >= deadline:
                raise CgroupError(f"systemd did not {what} within {START_TIMEOUT:g}s")
            time.sleep(0.005)

    def create(self, resources: Resources) -> None:
        """Start the container's slice with its limits; the scope comes with the first process."""
        try:
            self._call(slice_argv(self.slice, resources, f"rustainer container {self.name}"), "start", self.slice)
        except CgroupError as err:
            if "already exists" in str(err) or "already loaded" in str(err):
                raise CgroupError(
                    f"systemd unit {self.slice} already exists: another container named {self.name!r} is running "
                    "or left it behind (systemctl stop it)"
                ) from err
            raise
        try:
            self._wait(self._reader.exists, f"make the cgroup of {self.slice}")
        except BaseException:
            self._stop(self.slice)
            raise

    def add(self, pid: int) -> None:
        """The container's first process starts the scope; later ones (exec) join it."""
        if self._scope.exists() and self._scope.pids():
            try:
                self._call(attach_argv(self.unit, pid), "add a process to", self.unit)
            except CgroupError:
                if not os.path.exists(f"/proc/{pid}"):
                    raise CgroupError(f"process {pid} exited before it could join {self.unit}") from None
                raise
        else:
            # The scope repeats the slice's limits, read back from it: inside, the container's
            # /sys/fs/cgroup is the scope's cgroup, where programs look for their limits.
            limits = self._reader.read_limits()
            try:
                self._call(start_argv(self.unit, self.slice, pid, limits, f"rustainer container {self.name}"),
                           "start", self.unit)
            except CgroupError as err:
                if "already exists" in str(err) or "already loaded" in str(err):
                    raise CgroupError(
                        f"systemd unit {self.unit} already exists: another container named {self.name!r} is running"
                    ) from err
                raise
        self._wait(lambda: pid in self._scope.pids(), f"move process {pid} into {self.unit}")

    def update(self, resources: Resources) -> None:
        self._call(set_properties_argv(self.slice, resources), "update", self.slice)
        if self._scope.exists():
            try:
                self._call(set_properties_argv(self.unit, resources), "update", self.unit)
            except CgroupError as err:
                if "not loaded" not in str(err) and "NoSuchUnit" not in str(err):
                    raise

    def read_limits(self) -> Resources:
        return self._reader.read_limits()

    def stats(self) -> CgroupStats:
        return self._reader.stats()

    def oom_killed(self) -> bool:
        return self._reader.oom_killed()

    def pids(self) -> list[int]:
        return self._scope.pids()

    def kill_all(self, sig: int = 9) -> None:
        self._reader.kill_all(sig)

    def _stop(self, unit: str) -> None:
        try:
            self._call(stop_argv(unit), "stop", unit)
        except CgroupError as err:
            if "not loaded" not in str(err) and "NoSuchUnit" not in str(err):
                raise

    def remove(self) -> None:
        """Refuse while processes remain, then stop the scope and the slice; systemd removes the
        directories (sub-cgroups made under Delegate= included)."""
        import time

        from rustainer.backend.cgroups import base

        deadline = time.monotonic() + base.REMOVE_TIMEOUT
        while self._scope.exists() and self.pids():
            if time.monotonic() >= deadline:
                shown = " ".join(str(p) for p in self.pids()[:8])
                raise CgroupError(f"{self.unit} still has processes ({shown}): stop the container before removing it")
            time.sleep(0.01)
        self._stop(self.unit)
        self._stop(self.slice)
        self._wait(lambda: not self.exists(), f"remove the cgroup of {self.slice}")
