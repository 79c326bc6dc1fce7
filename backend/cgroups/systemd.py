"""systemd driver: the container is a transient scope ``rustainer-<name>.scope`` in a slice.

On a systemd host systemd owns the cgroup tree and expects to be its single writer, so limits go
through D-Bus (``StartTransientUnit`` / ``SetUnitProperties`` / ``StopUnit`` on
``org.freedesktop.systemd1.Manager``), issued with ``busctl`` to avoid a D-Bus library dependency.
The argv is built by pure functions so tests assert the exact call; it runs through an injectable
``runner``. A scope cannot exist without a process, so ``create`` only remembers the limits and
``add(pid)`` starts the unit with ``PIDs=[pid]``. Reading (limits, stats, pids) goes straight to the
scope's cgroup directory, whose path follows from the slice and unit names.
"""

from __future__ import annotations

import os

from rustainer.backend.cgroups.base import (
    DEFAULT_ROOT,
    CgroupManager,
    CgroupStats,
    cgroup_dirname,
    remove_dir,
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
START_TIMEOUT = 5.0  # seconds for systemd to run the start job and move the pid
_BUS = ["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"]
_SLICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:\\")


# ---- pure argv builders ------------------------------------------------------------------------


def unit_name(name: str) -> str:
    return cgroup_dirname(name) + ".scope"


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


def start_argv(unit: str, slice_: str, pid: int, r: Resources, description: str) -> list[str]:
    props = [
        ["Description", "s", description],
        ["Slice", "s", slice_],
        ["Delegate", "b", "true"],  # the container may manage cgroups beneath its scope
        ["CollectMode", "s", "inactive-or-failed"],  # an OOM-failed scope must not linger
        ["PIDs", "au", "1", str(pid)],
        ["MemoryAccounting", "b", "true"],
        ["CPUAccounting", "b", "true"],
        ["TasksAccounting", "b", "true"],
        *limit_properties(r, reset=False),
    ]
    return [*_BUS, "StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail", *_flatten(props), "0"]


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
        self.slice = check_slice(parent or DEFAULT_SLICE)
        self.root = root.rstrip("/") or "/"
        self._run = runner or _default_runner
        self._resources = Resources()
        rel = slice_path(self.slice)
        self._reader: CgroupManager
        if os.path.exists(self.root + "/cgroup.controllers"):  # unified host
            from rustainer.backend.cgroups.v2 import V2Manager

            self._reader = V2Manager(name, rel, root=self.root, leaf=self.unit)
        else:  # hybrid or legacy: systemd mirrors the unit's path in each v1 hierarchy
            from rustainer.backend.cgroups.v1 import V1Manager

            self._reader = V1Manager(name, rel, root=self.root, leaf=self.unit)

    def _call(self, argv: list[str], what: str) -> str:
        try:
            done = self._run(argv)
        except FileNotFoundError as err:
            raise CgroupError("busctl is not installed: the systemd cgroup driver needs it (or use --cgroup-driver v1/v2)") from err
        except OSError as err:
            raise CgroupError(f"cannot run busctl to {what}: {err.strerror}", errno=err.errno) from err
        if done.returncode != 0:
            message = (done.stderr or done.stdout or "").strip().splitlines()
            raise CgroupError(f"systemd could not {what} {self.unit}: {message[-1] if message else 'busctl failed'}")
        return done.stdout or ""

    def paths(self) -> dict[str, str]:
        return self._reader.paths()

    def create(self, resources: Resources) -> None:
        """Only remembers the limits: systemd creates the scope's cgroup when add() starts it."""
        self._resources = resources

    def add(self, pid: int) -> None:
        argv = start_argv(self.unit, self.slice, pid, self._resources, f"rustainer container {self.name}")
        try:
            self._call(argv, "start")
        except CgroupError as err:
            if "already exists" in str(err) or "already loaded" in str(err):
                raise CgroupError(
                    f"systemd unit {self.unit} already exists: another container named {self.name!r} is running"
                ) from err
            raise
        # StartTransientUnit returns once the job is queued; the pid moves when it runs
        import time

        deadline = time.monotonic() + START_TIMEOUT
        while pid not in self._reader.pids():
            if time.monotonic() >= deadline:
                raise CgroupError(f"systemd did not move process {pid} into {self.unit} within {START_TIMEOUT:g}s")
            time.sleep(0.005)

    def update(self, resources: Resources) -> None:
        self._call(set_properties_argv(self.unit, resources), "update")
        self._resources = resources

    def read_limits(self) -> Resources:
        return self._reader.read_limits()

    def stats(self) -> CgroupStats:
        return self._reader.stats()

    def oom_killed(self) -> bool:
        return self._reader.oom_killed()

    def pids(self) -> list[int]:
        return self._reader.pids()

    def kill_all(self, sig: int = 9) -> None:
        self._reader.kill_all(sig)

    def remove(self) -> None:
        """Refuse while processes remain, then stop the unit; systemd removes the directories."""
        import time

        from rustainer.backend.cgroups import base

        deadline = time.monotonic() + base.REMOVE_TIMEOUT
        while self.exists() and self.pids():
            if time.monotonic() >= deadline:
                shown = " ".join(str(p) for p in self.pids()[:8])
                raise CgroupError(f"{self.unit} still has processes ({shown}): stop the container before removing it")
            time.sleep(0.01)
        try:
            self._call(stop_argv(self.unit), "stop")
        except CgroupError as err:
            if "not loaded" not in str(err) and "NoSuchUnit" not in str(err):
                raise
        # an empty scope is usually gone already; sub-cgroups made under Delegate= may remain
        for path in self.paths().values():
            remove_dir(path)
