"""cgroup v2 (unified) driver: one directory, controllers enabled top-down.

On cgroup2 a controller's files only appear in a child when the parent lists it in
``cgroup.subtree_control``, and a non-root cgroup that has processes cannot enable domain
controllers for its children ("no internal processes", EBUSY). The caller's own cgroup has
processes (the caller itself), so without ``--cgroup-parent`` the container's cgroup goes:

- beneath the caller's cgroup when that is the root (exempt from the rule) or has no processes;
- otherwise *beside* it, in its parent, when that parent has no processes of its own (a systemd
  service's slice, a delegated unit whose owner moved itself into a leaf), as runc and systemd
  keep processes in leaves; only controllers are added to that parent's ``subtree_control``;
- otherwise beneath it, and a limit that needs a controller fails with a message naming
  ``--cgroup-parent``.

Parents that ``create`` had to make (``--cgroup-parent`` that did not exist) are recorded and
removed with the container when nothing else is beneath them. Threaded cgroups cannot hold a
container (its domain controllers, memory and pids, are not threaded): refused with a message.
"""

from __future__ import annotations

import errno
import os

from rustainer.backend.cgroups.base import (
    CPU_PERIOD_US,
    DEFAULT_ROOT,
    CgroupManager,
    CgroupStats,
    cgroup_dirname,
    check_made_parents,
    check_stored_paths,
    clean_parent,
    make_dir,
    make_parents,
    read_int,
    read_keyed,
    read_optional,
    read_pids,
    read_self_cgroup,
    remove_dir,
    remove_parents,
    rollback,
    under,
    write_value,
)
from rustainer.backend.errors import CgroupError
from rustainer.backend.spec import Resources, format_cpus, parse_cpus
from rustainer.backend.util.rollback import fault

STATS_CONTROLLERS = ("cpu", "memory", "pids")  # enabled when available, so stats work without limits


def required_controllers(r: Resources) -> list[str]:
    needed = []
    if r.cpus is not None:
        needed.append("cpuset")
    if r.cpu_quota is not None:
        needed.append("cpu")
    if r.memory is not None:
        needed.append("memory")
    if r.pids_limit is not None:
        needed.append("pids")
    return needed


class V2Manager(CgroupManager):
    driver = "v2"

    def __init__(
        self,
        name: str,
        parent: str | None = None,
        *,
        root: str = DEFAULT_ROOT,
        proc_self_cgroup: str | None = None,
        paths: dict[str, str] | None = None,
        leaf: str | None = None,
        made_parents: tuple[str, ...] = (),
    ) -> None:
        """``leaf`` overrides the directory name (the systemd driver reads its units' dirs)."""
        self.name = name
        self.root = root.rstrip("/") or "/"
        self._leaf = leaf or cgroup_dirname(name)
        self._own: str | None = None  # the caller's cgroup, when the placement is ours to choose
        if paths is not None:
            self._path = check_stored_paths(paths, self._leaf, self.root)["unified"]
        elif parent is not None:
            self._path = under(self.root, clean_parent(parent), self._leaf)
        else:
            self._own = read_self_cgroup(proc_self_cgroup).get("", "/")
            self._path = under(self.root, self._own, self._leaf)
        self.made_parents = check_made_parents(made_parents, self.paths(), self.root)

    def paths(self) -> dict[str, str]:
        return {"unified": self._path}

    def _file(self, leaf: str) -> str:
        return self._path + "/" + leaf

    def clone_target(self) -> str | None:
        return self._path

    # ---- lifecycle ---------------------------------------------------------------------------

    def create(self, resources: Resources) -> None:
        if self._own is not None:
            self._path = self._placement(self._own)
        made: list[str] = []
        try:
            required = required_controllers(resources)
            existing = os.path.dirname(self._path)
            while not os.path.isdir(existing) and existing != os.path.dirname(existing):
                existing = os.path.dirname(existing)
            self._check_domain(existing)
            self._enable(existing, required)  # before anything is made: nothing to roll back
            self.made_parents = tuple(make_parents(self._path, made, lambda level: self._enable(level, required)))
            make_dir(self._path, self.name)
            made.append(self._path)
            self._apply(resources, reset=False)
        except BaseException:
            rollback(made)
            self.made_parents = ()
            raise

    def _placement(self, own: str) -> str:
        """Where a container goes without --cgroup-parent (see the module's docstring)."""
        own = own.rstrip("/")
        if not own or not read_pids(self.root + own + "/cgroup.procs"):
            return under(self.root, own, self._leaf)
        beside = os.path.dirname(own)
        if beside == "/" or not read_pids(self.root + beside + "/cgroup.procs"):
            return under(self.root, beside, self._leaf)
        return under(self.root, own, self._leaf)

    def _check_domain(self, level: str) -> None:
        kind = read_optional(level + "/cgroup.type")
        if kind is not None and kind not in ("domain", "domain threaded"):
            raise CgroupError(
                f"cgroup {level} is {kind} (cgroup.type): a container needs a domain cgroup for its "
                "memory and pids limits; choose another --cgroup-parent"
            )

    def _enable(self, level: str, required: list[str]) -> None:
        """Make ``required`` (and, if possible, the stats controllers) available to ``level``'s children."""
        available = (read_optional(level + "/cgroup.controllers") or "").split()
        missing = [c for c in required if c not in available]
        if missing:
            raise CgroupError(
                f"the {', '.join(missing)} cgroup controller is not available in {level} "
                f"(available: {' '.join(available) or 'none'}): enable it in the parent's "
                "cgroup.subtree_control or choose another --cgroup-parent"
            )
        enabled = (read_optional(level + "/cgroup.subtree_control") or "").split()
        wanted = [c for c in (*required, *STATS_CONTROLLERS) if c in available and c not in enabled]
        wanted = list(dict.fromkeys(wanted))
        if not wanted:
            return
        try:
            write_value(level + "/cgroup.subtree_control", " ".join("+" + c for c in wanted), "cgroup.subtree_control")
        except CgroupError as err:
            busy = isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.EBUSY
            if not required and busy:
                return  # only the stats controllers: run without them rather than fail
            if busy:
                raise CgroupError(
                    f"cannot enable {' '.join(wanted)} in {level}: it has processes of its own "
                    "(cgroup2's no-internal-processes rule); use --cgroup-parent to place the "
                    "container in an empty cgroup"
                ) from err.__cause__
            raise

    def add(self, pid: int) -> None:
        try:
            write_value(self._file("cgroup.procs"), str(pid), "the container's process")
        except CgroupError as err:
            if not os.path.exists(f"/proc/{pid}"):
                raise CgroupError(f"process {pid} exited before it could join cgroup {self._path}") from err
            raise

    def update(self, resources: Resources) -> None:
        # a limit that was not set at create time may need its controller now
        missing = [c for c in required_controllers(resources) if c not in self._controllers()]
        if missing:
            # top-down from the nearest ancestor that has them: the parents between may have been
            # made without them (a --cgroup-parent made for a container without that limit)
            chain = [os.path.dirname(self._path)]
            while chain[-1] != self.root and chain[-1].startswith(self.root + "/") and not set(missing) <= set(
                    (read_optional(chain[-1] + "/cgroup.controllers") or "").split()):
                chain.append(os.path.dirname(chain[-1]))
            for level in reversed(chain):
                self._enable(level, missing)
        self._apply(resources, reset=True)

    def _controllers(self) -> list[str]:
        return (read_optional(self._file("cgroup.controllers")) or "").split()

    def _apply(self, r: Resources, *, reset: bool) -> None:
        have = self._controllers()
        if "cpuset" in have and (r.cpus is not None or reset):
            fault("limit-cpus")  # the test suite fails an update half-way (see util.rollback)
            # "" means inherit the parent's CPUs
            write_value(self._file("cpuset.cpus"), format_cpus(r.cpus) if r.cpus else "", "cpuset.cpus (the CPU list)")
        if "memory" in have and (r.memory is not None or reset):
            fault("limit-memory")
            write_value(self._file("memory.max"), "max" if r.memory is None else str(r.memory), "memory.max")
            if os.path.exists(self._file("memory.swap.max")):
                swap = "max" if r.memory is None else "0"  # the limit covers memory+swap, like v1's memsw
                write_value(self._file("memory.swap.max"), swap, "memory.swap.max")
        if "cpu" in have and (r.cpu_quota is not None or reset):
            fault("limit-cpu-quota")
            quota = "max" if r.cpu_quota is None else str(max(1000, round(r.cpu_quota * CPU_PERIOD_US)))
            write_value(self._file("cpu.max"), f"{quota} {CPU_PERIOD_US}", "cpu.max (the CPU quota)")
        if "pids" in have and (r.pids_limit is not None or reset):
            fault("limit-pids")
            write_value(self._file("pids.max"), "max" if r.pids_limit is None else str(r.pids_limit), "pids.max")

    def remove(self) -> None:
        remove_dir(self._path)
        remove_parents(self.made_parents)

    def kill_all(self, sig: int = 9) -> None:
        if sig == 9 and os.path.exists(self._file("cgroup.kill")):  # Linux >= 5.14, includes descendants
            write_value(self._file("cgroup.kill"), "1", "cgroup.kill")
            return
        super().kill_all(sig)

    # ---- reading -----------------------------------------------------------------------------

    def pids(self) -> list[int]:
        return read_pids(self._file("cgroup.procs"))

    def read_limits(self) -> Resources:
        mem = read_optional(self._file("memory.max"))
        cpus = read_optional(self._file("cpuset.cpus"))
        cpu_max = (read_optional(self._file("cpu.max")) or "max").split()
        pids = read_optional(self._file("pids.max"))
        quota = None
        if cpu_max and cpu_max[0] != "max":
            period = int(cpu_max[1]) if len(cpu_max) > 1 else CPU_PERIOD_US
            quota = int(cpu_max[0]) / period
        return Resources(
            cpus=parse_cpus(cpus) if cpus else None,
            memory=int(mem) if mem and mem != "max" else None,
            cpu_quota=quota,
            pids_limit=int(pids) if pids and pids != "max" else None,
        )

    def stats(self) -> CgroupStats:
        limit = read_optional(self._file("memory.max"))
        usage_usec = read_keyed(self._file("cpu.stat")).get("usage_usec")
        return CgroupStats(
            memory_usage=read_int(self._file("memory.current")),
            memory_limit=int(limit) if limit and limit != "max" else None,
            cpu_usage_ns=usage_usec * 1000 if usage_usec is not None else None,
            pids_current=read_int(self._file("pids.current")),
            oom_kills=read_keyed(self._file("memory.events")).get("oom_kill"),
        )

    def oom_killed(self) -> bool:
        return read_keyed(self._file("memory.events")).get("oom_kill", 0) > 0
